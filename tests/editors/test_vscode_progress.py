"""The VS Code extension's status bar logic for the server's work-done progress
(editor-plugins/vscode/src/progress.ts), compiled as the .vsix ships it and run under Node:
several tasks at once (the model loading, one index per workspace folder) keep it busy until
the last ends, and a failed model load is not hidden by a task that ends after it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from editor_setup import INSTALL_SCRIPT, PLUGINS, require

COMPILED = PLUGINS / "vscode" / "out" / "progress.js"
MODEL = "nexttoken/model-load/"
INDEX = "nexttoken/index/"

# Replays [method, token, title or end message] calls and prints what each one shows.
REPLAY = """
const { ProgressTracker } = require(process.argv[1]);
const tracker = new ProgressTracker();
const calls = JSON.parse(process.argv[2]);
const shown = calls.map(([method, token, text]) => tracker[method](token, text));
console.log(JSON.stringify(shown.map((s) => s.kind === "busy" ? "busy: " + s.what : s.kind)));
"""


def replay(calls: list[tuple[str, str, str]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: run {INSTALL_SCRIPT}")
    compiled = require(COMPILED, "the compiled VS Code extension")
    done = subprocess.run(
        [node, "-e", REPLAY, str(compiled), json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_busy_until_the_last_task_ends() -> None:
    shown = replay(
        [
            ("begin", f"{MODEL}1", "nexttoken: loading model"),
            ("begin", f"{INDEX}1", "nexttoken: indexing"),
            ("begin", f"{INDEX}2", "nexttoken: indexing"),
            ("end", f"{INDEX}1", "shop: 3 files"),
            ("end", f"{INDEX}2", "billing: 3 files"),
            ("end", f"{MODEL}1", "ready"),
        ]
    )
    assert shown == [
        "busy: loading model",
        "busy: indexing",
        "busy: indexing",
        "busy: indexing",
        # Both folders indexed, the model still loading: not ready yet.
        "busy: loading model",
        "ready",
    ]


def test_a_failed_load_stays_shown_until_the_next_load() -> None:
    shown = replay(
        [
            ("begin", f"{MODEL}1", "nexttoken: loading model"),
            ("begin", f"{INDEX}1", "nexttoken: indexing"),
            ("end", f"{MODEL}1", "failed"),
            ("end", f"{INDEX}1", "shop: 3 files"),
            ("begin", f"{MODEL}2", "nexttoken: loading model"),
            ("end", f"{MODEL}2", "ready"),
        ]
    )
    assert shown == [
        "busy: loading model",
        "busy: indexing",
        "failed",
        "failed",
        "busy: loading model",
        "ready",
    ]
