"""The `nexttoken` command line: argument parsing, clear errors, and `serve --tcp`."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

from lsp_server.cli import (
    CliError,
    FileLocation,
    build_parser,
    cursor_offset,
    install_options,
    main,
    parse_host_port,
    parse_location,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_location_splits_from_the_right() -> None:
    assert parse_location("src/a.py:3:7") == FileLocation(Path("src/a.py"), 3, 7)
    assert parse_location(r"C:\src\a.py:10:1") == FileLocation(Path(r"C:\src\a.py"), 10, 1)


@pytest.mark.parametrize("spec", ["a.py", "a.py:3", ":3:4", "a.py:x:1", "a.py:0:1", "a.py:1:0"])
def test_bad_location_is_a_usage_error(spec: str) -> None:
    with pytest.raises(CliError) as error:
        parse_location(spec)
    assert error.value.exit_code == 2


def test_host_port() -> None:
    assert parse_host_port("127.0.0.1:2087") == ("127.0.0.1", 2087)
    assert parse_host_port("[::1]:0") == ("::1", 0)
    for bad in ["2087", "host:", "host:port", "host:70000"]:
        with pytest.raises(CliError):
            parse_host_port(bad)


def test_cursor_offset_counts_characters_from_one() -> None:
    text = "é = 1\nname = 'x'\n"
    assert cursor_offset(text, FileLocation(Path("a.py"), 1, 2)) == 1
    assert cursor_offset(text, FileLocation(Path("a.py"), 2, 11)) == len("é = 1\nname = 'x'")
    with pytest.raises(CliError, match="COL can be 1 to 11"):
        cursor_offset(text, FileLocation(Path("a.py"), 2, 12))
    with pytest.raises(CliError, match="has 3 lines; line 4 is past the end"):
        cursor_offset(text, FileLocation(Path("a.py"), 4, 1))


def test_complete_on_unreadable_file_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["complete", f"{tmp_path / 'missing.py'}:1:1"]) == 1
    assert "cannot read" in capsys.readouterr().err

    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes(b"x = '\xe9'\n")
    assert main(["complete", f"{latin1}:1:1"]) == 1
    assert "not UTF-8" in capsys.readouterr().err


def test_complete_with_a_bad_location_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.py"
    source.write_text("x = 1\n", encoding="utf-8")
    assert main(["complete", f"{source}:1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nexttoken complete: error:")
    assert "COL can be 1 to 6" in err


def test_model_install_of_an_unknown_model_names_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["model", "install", "no-such-model"]) == 1
    assert "smollm2" in capsys.readouterr().err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("nexttoken ")
    for command in (["serve"], ["complete"], ["model", "install"]):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        assert "usage: nexttoken" in capsys.readouterr().out


async def test_serve_over_tcp(tmp_path: Path) -> None:
    # Port 0: the system picks a free port, and pygls logs the one it got.
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lsp_server",
        "serve",
        "--tcp",
        "127.0.0.1:0",
        "--model",
        str(tmp_path / "no-model-here"),
        "--log-level",
        "info",
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        port = await asyncio.wait_for(_served_port(server), timeout=60)
        assert server.stderr is not None
        # Keep reading the log, so a full pipe never blocks the server.
        drained = asyncio.ensure_future(server.stderr.read())
        client: LanguageClient = make_test_lsp_client()
        await client.start_tcp("127.0.0.1", port)
        await client.initialize_session(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(), root_uri=tmp_path.as_uri()
            )
        )
        result = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=(tmp_path / "a.py").as_uri()),
                position=types.Position(line=0, character=0),
            )
        )
        assert result is not None and list(result.items) == []
        [error] = client.messages
        assert "does not exist" in error.message
        await client.shutdown_session()
        await client.stop()
        assert await asyncio.wait_for(server.wait(), timeout=30) == 0
        await drained
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def _served_port(server: asyncio.subprocess.Process) -> int:
    assert server.stderr is not None
    while line := await server.stderr.readline():
        if match := re.search(rb"Serving on \('127\.0\.0\.1', (\d+)\)", line):
            return int(match.group(1))
    raise AssertionError("the server exited without listening")


def test_model_install_rejects_impossible_graph_options(capsys: pytest.CaptureFixture[str]):
    assert main(["model", "install", "--attention", "portable"]) == 2
    assert "no q4/q8 weights" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "step"),
    [
        ([], (4, True)),  # kept where it times faster
        (["--step-graph", "int8"], (4, False)),
        (["--step-graph", "none"], (None, False)),
        (["--weights", "q8"], (None, False)),  # int8 steps are 4-bit MatMulNBits kernels
        (["--accuracy-level", "4"], (None, False)),  # int8 activations everywhere already
    ],
)
def test_model_install_offers_a_step_graph_where_the_graph_can_have_one(
    flags: list[str], step: tuple[int | None, bool]
) -> None:
    options = install_options(build_parser().parse_args(["model", "install", *flags]))
    assert (options.step_accuracy_level, options.step_timed) == step


def test_model_install_prints_the_built_default(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "install"]) == 0
    assert capsys.readouterr().out.strip() == str(model_dir)


def test_complete_with_a_workspace_puts_repository_context_in_the_prompt(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("NEXTTOKEN_CACHE_DIR", str(tmp_path / "cache"))  # the index's store
    root = tmp_path / "shop_project"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "model.py").write_text(
        "class Cart:\n"
        "    def add_item(self, name: str, price: float) -> None:\n"
        "        self.total = price\n\n\n"
        "def make_cart() -> Cart:\n"
        "    return Cart()\n"
    )
    checkout = root / "shop" / "checkout.py"
    checkout.write_text("from shop.model import make_cart\n\ncart = make_cart()\ncart.\n")
    command = ["complete", f"{checkout}:4:6", "--model", str(model_dir), "--max-new-tokens", "4"]

    def prompt_tokens(extra: list[str]) -> tuple[int, str]:
        assert main([*command, *extra]) == 0
        err = capsys.readouterr().err
        match = re.search(r"prompt (\d+) tokens", err)
        assert match, err
        return int(match.group(1)), err

    alone, err = prompt_tokens([])
    assert "context" not in err
    with_context, err = prompt_tokens(["--workspace", str(root)])
    snippets = re.search(r"context (\d+) snippets", err)
    assert snippets and int(snippets.group(1)) >= 1, err
    assert with_context > alone  # Cart's members and make_cart, from model.py
    assert list((tmp_path / "cache" / "index").glob("*.sqlite3"))
