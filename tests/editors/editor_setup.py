"""Real editors for the editor-plugin tests: where editor-plugins/install-test-editors.sh put
them (a per-user cache folder), and a skip that names the reason when one is missing. CI runs
that script before the tests; a missing editor means it could not be installed here."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS = REPO_ROOT / "editor-plugins"
INSTALL_SCRIPT = "editor-plugins/install-test-editors.sh"
NEOVIM_VERSION = "0.11.4"
CODE_SERVER_VERSION = "4.139.1"
# NEXTTOKEN_UPDATE_SCREENSHOTS=1 copies the screenshots the tests take into docs/.
SCREENSHOTS_ENV = "NEXTTOKEN_UPDATE_SCREENSHOTS"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def editors_cache() -> Path:
    override = os.environ.get("NEXTTOKEN_TEST_EDITORS")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nexttoken-test-editors"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} is not installed ({path} is missing): run {INSTALL_SCRIPT}")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str, step: float = 0.05):
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def keep_screenshot(taken: Path, name: str) -> None:
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(taken.read_bytes())


def server_env(tmp_path: Path) -> dict[str, str]:
    """For the server an editor starts: this checkout's packages, stats in the test's folder."""
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {
        "PYTHONPATH": python_path,
        "NEXTTOKEN_STATS_FILE": str(tmp_path / "stats.json"),
    }
