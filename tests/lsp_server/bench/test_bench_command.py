"""`nexttoken bench` from the command line: a real server over stdio, real files.

The protocol tests use the scripted server (tests/lsp_server/scripted_server.py) because it
answers instantly and predictably; the rest run the real default model on this repository and
on a small project made here, with budgets that any machine meets (timing is never asserted,
only that the gate works: an impossible budget fails the command).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from lsp_server.bench.command import EXIT_OVER_BUDGET
from lsp_server.bench.figures import parse_budget
from lsp_server.cli import EXIT_FAILURE, EXIT_USAGE, build_parser, main
from onnx_models.manifest import ModelManifest

REPO = Path(__file__).resolve().parents[3]
SCRIPTED_SERVER = REPO / "tests" / "lsp_server" / "scripted_server.py"
# Lenient enough for a loaded two-core CI runner; the gate itself is tested with a budget no
# machine meets.
GENEROUS_BUDGET = "p50=120s,p99=300s,empty=100%"


def bench(*args: str | Path) -> int:
    return main(["bench", *map(str, args)])


# -- usage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--budget", "p50=fast"], "--budget: cannot read 'p50=fast'"),
        (["--budget", "p50=300"], "give latency a unit"),
        (["--test-cmd", "pytest"], "add --quality"),
        (["--quality", "--budget", "p50=1s"], "no meaning with --quality"),
    ],
)
def test_usage_mistakes_end_in_one_line(
    args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench(REPO, *args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("nexttoken bench: error: ")
    assert complaint in err


def test_a_workspace_that_is_not_a_folder(tmp_path: Path, capsys) -> None:
    assert bench(tmp_path / "missing") == EXIT_USAGE
    assert "is not a folder" in capsys.readouterr().err


def documented_commands() -> list[list[str]]:
    """Every `nexttoken bench` command line in docs/ci.md, continuation lines joined (a shell
    backslash, or a YAML folded block's lines at the same indentation)."""
    lines = (REPO / "docs" / "ci.md").read_text(encoding="utf-8").splitlines()
    commands = []
    for number, line in enumerate(lines):
        text = line.strip()
        if not text.startswith("nexttoken bench ") or text.startswith("nexttoken bench:"):
            continue
        indent = len(line) - len(text)
        parts = [text]
        for following in lines[number + 1 :]:
            continued = parts[-1].endswith("\\")
            # Indented: a YAML `run: >` block, whose lines at the same indentation fold into one.
            same_block = (
                indent > 0
                and following.strip()
                and len(following) - len(following.lstrip()) == indent
            )
            if not (continued or same_block):
                break
            parts.append(following.strip())
        words = shlex.split(" ".join(part.rstrip("\\") for part in parts))
        commands.append(words)
    return commands


def test_the_commands_in_the_ci_guide_are_valid() -> None:
    commands = documented_commands()
    assert len(commands) >= 3
    for words in commands:
        args = build_parser().parse_args(words[1:])
        if args.budget:
            parse_budget(args.budget)


@pytest.mark.parametrize(
    ("server", "complaint"),
    [
        ("/nonexistent/nexttoken-server", "cannot start the server"),
        (shlex.join([sys.executable, "-c", "print('not LSP'); raise SystemExit(3)"]), "did not"),
    ],
)
def test_a_server_that_does_not_start_fails_the_bench(
    tmp_path: Path, server: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text("value = compute(1, 2)\n")
    assert bench(tmp_path, "--positions", "1", "--server-cmd", server) == EXIT_FAILURE
    assert complaint in capsys.readouterr().err


# -- the editor's side of the protocol, against the scripted server ----------------------------


def test_typing_rebuilds_the_file_and_cancels_the_request_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    # The scripted pipeline decodes until cancelled once the text before the cursor ends in
    # WAIT: typing "T)" into "WAI" leaves a request in flight that the ")" must cancel.
    (workspace / "wait.py").write_text("WAIT)\n")
    shapes = "def area(width, height):\n    return width * height\n"
    (workspace / "shapes.py").write_text(shapes)
    model = tmp_path / "model"
    model.mkdir()
    server = shlex.join([sys.executable, str(SCRIPTED_SERVER), "--model", str(model)])
    out = tmp_path / "bench.json"
    args = ["--positions", "2", "--keystrokes", "2", "--typing-ms", "20", "--seed", "0"]
    assert bench(workspace, *args, "--server-cmd", server, "--json", out) == 0

    document = json.loads(out.read_text())
    by_file = {p["file"]: p for p in document["positions"]}
    assert (by_file["wait.py"]["line"], by_file["wait.py"]["column"]) == (1, 6)
    statuses = [r["status"] for r in by_file["wait.py"]["requests"]]
    assert statuses == ["answered", "cancelled", "answered"]
    for name, text in (("wait.py", "WAIT)\n"), ("shapes.py", shapes)):
        position = by_file[name]
        last = position["requests"][-1]
        # The scripted answer is <line:character|path|language|chars|max>: after the last
        # keystroke the server holds the whole file again, character for character.
        line, column = position["line"] - 1, position["column"] - 1
        assert last["suggestion"] == f"<{line}:{column}|{name}|python|{len(text)}|64>"
        assert last["stats"]["prompt_tokens"] == len(text)
    summary = document["summary"]
    # shapes.py's middle keystroke may be answered before or after the next key cancels it.
    assert summary["answered"] + summary["superseded"] + summary["cancelled"] == 6
    assert summary["answered"] >= 4
    assert summary["stats_reported"] == summary["answered"]
    assert summary["typing_through_hits"] == 0
    assert "2 positions in 2 files (python 2)" in capsys.readouterr().out


# -- the real model ---------------------------------------------------------------------------


def test_short_bench_on_this_repository_within_a_generous_budget(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, page = tmp_path / "bench.json", tmp_path / "bench.html"
    args = ["--positions", "2", "--keystrokes", "2", "--typing-ms", "50", "--seed", "8"]
    status = bench(
        REPO,
        *args,
        "--model",
        model_dir,
        "--budget",
        GENEROUS_BUDGET,
        "--json",
        out,
        "--report",
        page,
    )
    stdout = capsys.readouterr().out
    assert status == 0, stdout

    document = json.loads(out.read_text())
    assert (document["schema"], document["mode"]) == ("nexttoken-bench", "latency")
    assert document["budget"]["passed"] is True
    assert document["machine"]["model"] == ModelManifest.load(model_dir).name
    assert document["machine"]["execution_provider"].endswith("ExecutionProvider")
    # The positions began once the index had read the whole repository.
    assert document["index"]["state"] == "ready"
    assert document["index"]["files"] > 100
    summary = document["summary"]
    assert summary["requests"] == 2 * 3
    assert summary["stats_reported"] == summary["answered"]
    assert summary["peak_rss_bytes"] > 50 * 2**20
    for position in document["positions"]:
        assert (REPO / position["file"]).is_file()
        cold, *_, last = position["requests"]
        # The first request is awaited and the last one is never cancelled.
        assert cold["status"] == last["status"] == "answered"
        if cold["stats"]["prompt_tokens"] and last["stats"]["prompt_tokens"]:
            # Typing on after the cold request reuses its KV cache.
            assert last["stats"]["reused_tokens"] > 0
    assert "<svg" in page.read_text()
    assert re.search(r"^  cold\s+\d", stdout, re.MULTILINE)
    assert re.search(r"^  warm\s+\d", stdout, re.MULTILINE)


def test_an_impossible_budget_fails_naming_figure_value_budget_and_worst_position(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--positions", "1", "--keystrokes", "1", "--model", model_dir]
    assert bench(REPO, *args, "--budget", "p50=0.001ms") == EXIT_OVER_BUDGET
    err = capsys.readouterr().err
    match = re.search(
        r"^nexttoken bench: over budget: p50 = [\d,.]+ ms, over the budget of 0.001 ms; "
        r"worst: (\S+):(\d+):(\d+) \([\d,]+ ms\)",
        err,
        re.MULTILINE,
    )
    assert match, err
    assert (REPO / match.group(1)).is_file()


CALC = '''\
"""Small arithmetic helpers."""


def add(a, b):
    total = a + b
    return total


def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return high
    return value
'''

CALC_TESTS = """\
import unittest

from calc import add, clamp


class CalcTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_clamp(self):
        self.assertEqual(clamp(5, 0, 3), 3)
        self.assertEqual(clamp(-1, 0, 3), 0)
"""


def test_quality_fills_holes_and_runs_the_tests_in_a_copy(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "calc"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    (workspace / "test_calc.py").write_text(CALC_TESTS)
    (workspace / ".gitignore").write_text("scratch/\n")
    (workspace / "scratch").mkdir()
    (workspace / "scratch" / "big.py").write_text("x = 1\n")
    out = tmp_path / "quality.json"
    test_cmd = f"{shlex.quote(sys.executable)} -m unittest -q"
    args = ["--quality", "--holes", "2", "--seed", "1", "--model", model_dir, "--json", out]
    assert bench(workspace, *args, "--test-cmd", test_cmd) == 0

    document = json.loads(out.read_text())
    assert document["mode"] == "quality"
    holes = document["holes"]
    assert [hole["kind"] for hole in holes] == ["line", "block"]
    for hole in holes:
        assert hole["file"] in {"calc.py", "test_calc.py"}  # never the ignored scratch/
        assert hole["expected"] in (CALC if hole["file"] == "calc.py" else CALC_TESTS)
        if hole["similarity"] == 1.0:
            assert hole["exact"]
        assert isinstance(hole["syntax_ok"], bool)
        assert isinstance(hole["tests_passed"], bool)
        assert hole["stats"] is not None  # the server said what the fill cost
    tests = document["summary"]["tests"]
    assert tests["baseline_passed"] is True
    assert tests["runs"] == 2
    assert tests["passed"] == sum(hole["tests_passed"] for hole in holes)
    # The workspace itself was never touched: the tests ran in a copy.
    assert (workspace / "calc.py").read_text() == CALC
    assert "untouched copy passed" in capsys.readouterr().out
