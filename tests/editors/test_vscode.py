"""The VS Code extension in real VS Code: code-server (VS Code in the browser) with the .vsix
installed, driven in Debian's Chromium by editor-plugins/vscode/test/code-server-e2e.mjs
(playwright-core). The extension starts the real server over stdio with the real model; the
test types in a Python file, sees Monaco's ghost text, accepts it with Tab, saves, and checks
the file on disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from editor_setup import (
    CODE_SERVER_VERSION,
    PLUGINS,
    editors_cache,
    free_port,
    keep_screenshot,
    require,
    server_env,
    wait_until,
)

EXTENSION = PLUGINS / "vscode"
DRIVER = EXTENSION / "test" / "code-server-e2e.mjs"
SOURCE = '''\
def fibonacci(n):
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


'''
TYPED = "first_ten = [fibonacci(i) for i in "

SETTINGS = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "update.mode": "none",
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "editor.minimap.enabled": False,
    # Only the inline suggestion may answer Tab: no word-based suggest widget, no auto-closing.
    "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
    "editor.suggestOnTriggerCharacters": False,
    "editor.wordBasedSuggestions": "off",
    "editor.autoClosingBrackets": "never",
    "editor.inlineSuggest.enabled": True,
    "files.autoSave": "off",
}


@pytest.fixture(scope="module")
def code_server() -> tuple[Path, Path]:
    """code-server's launcher and the Node 24 it runs on."""
    cache = editors_cache()
    launcher = require(
        cache / f"code-server-{CODE_SERVER_VERSION}" / "node_modules" / ".bin" / "code-server",
        f"code-server {CODE_SERVER_VERSION}",
    )
    node_file = require(cache / "code-server-node", "Node 24 for code-server")
    node_home = Path(node_file.read_text().strip())
    require(Path("/usr/bin/chromium"), "Debian's chromium")
    require(EXTENSION / "nexttoken.vsix", "the packaged extension (nexttoken.vsix)")
    require(EXTENSION / "node_modules" / "playwright-core", "playwright-core")
    return launcher, node_home


def test_ghost_text_is_accepted_with_tab_and_saved(
    code_server: tuple[Path, Path], model_dir: Path, tmp_path: Path
) -> None:
    launcher, node_home = code_server
    workspace = tmp_path / "project"
    workspace.mkdir()
    source = workspace / "fib.py"
    source.write_text(SOURCE)
    user_data, extensions = tmp_path / "user-data", tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    server_command = [sys.executable, "-m", "lsp_server", "serve", "--model", str(model_dir)]
    settings = {**SETTINGS, "nexttoken.serverCommand": server_command}
    (user_data / "User" / "settings.json").write_text(json.dumps(settings, indent=1))
    env = {
        **os.environ,
        **server_env(tmp_path),
        "PATH": f"{node_home / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    dirs = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    subprocess.run(
        [str(launcher), *dirs, "--install-extension", str(EXTENSION / "nexttoken.vsix")],
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )

    port = free_port()
    log = (tmp_path / "code-server.log").open("w")
    editor = subprocess.Popen(
        [
            str(launcher),
            *dirs,
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--auth",
            "none",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--config",
            str(tmp_path / "code-server.yaml"),
            str(workspace),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _healthy(port), 120, "code-server to answer on /healthz", step=0.5)
        screenshot = tmp_path / "vscode-suggestion.png"
        options = {
            "url": f"http://127.0.0.1:{port}/?folder={workspace}",
            "file": source.name,
            "type": TYPED,
            "screenshot": str(screenshot),
            "profile": str(tmp_path / "chromium-profile"),
        }
        driver = subprocess.run(
            ["node", str(DRIVER), json.dumps(options)],
            cwd=EXTENSION,
            capture_output=True,
            text=True,
            timeout=420,
        )
        assert driver.returncode == 0, driver.stderr + _tail(tmp_path / "code-server.log")
        ghost_text = json.loads(driver.stdout.strip().splitlines()[-1])["ghostText"]
        assert ghost_text.strip(), driver.stderr
        saved = wait_until(
            lambda: (text := source.read_text()) != SOURCE and text, 30, "the saved file"
        )
        last_line = saved.rstrip("\n").splitlines()[-1]
        # Monaco renders spaces in ghost text as no-break spaces.
        expected = TYPED + ghost_text.replace("\u00a0", " ").splitlines()[0]
        assert last_line.startswith(expected.rstrip()), (last_line, ghost_text)
        assert len(last_line) > len(TYPED)
        keep_screenshot(screenshot, "vscode-suggestion.png")
        print(f"\nVS Code accepted {ghost_text!r} after {TYPED!r}")
    finally:
        editor.terminate()
        try:
            editor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            editor.kill()
        log.close()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    return "\n--- code-server log ---\n" + "\n".join(path.read_text().splitlines()[-lines:])
