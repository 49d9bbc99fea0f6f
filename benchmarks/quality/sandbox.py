"""Run untrusted programs (a model's completion plus a problem's tests): one isolated Python
process each, in its own temporary folder, with a wall-clock limit and resource limits.

Isolation: `python -I` (no environment variables, user site or current folder on the path), an
environment holding only PATH and a locale, stdin closed, output captured, a new session so a
timeout kills the whole process group. The limits (address space, CPU seconds, file size, no
core files) are set as hard limits by a launcher inside the child before the program's first
line runs, rather than by `preexec_fn`, which is unsafe in a parent that runs threads
(onnxruntime's). This stops accidents (loops, runaway memory, stray files), not an attacker: the
program can still read files and use the network.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    wall_s: float = 5.0
    cpu_s: int = 5
    memory_bytes: int = 2 << 30
    file_bytes: int = 16 << 20


@dataclass(frozen=True)
class Outcome:
    passed: bool
    status: str  # "passed", "failed" (non-zero exit), "timeout"
    seconds: float
    detail: str = ""  # the last line of stderr, for a failure


_LAUNCHER = """\
import resource, runpy, sys
for name, value in ((resource.RLIMIT_AS, {memory}), (resource.RLIMIT_CPU, {cpu}),
                    (resource.RLIMIT_FSIZE, {fsize}), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(name, (value, value))
sys.argv = ["program.py"]
runpy.run_path("program.py", run_name="__main__")
"""


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    launcher = _LAUNCHER.format(
        memory=limits.memory_bytes, cpu=limits.cpu_s, fsize=limits.file_bytes
    )
    with tempfile.TemporaryDirectory(prefix="nexttoken-check-") as folder:
        Path(folder, "program.py").write_text(source, encoding="utf-8")
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", launcher],
            cwd=folder,
            env={"PATH": os.defpath, "LC_ALL": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = process.communicate(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return Outcome(False, "timeout", time.perf_counter() - start)
        seconds = time.perf_counter() - start
    if process.returncode == 0:
        return Outcome(True, "passed", seconds)
    lines = err.decode(errors="replace").strip().splitlines()
    return Outcome(
        False, "failed", seconds, lines[-1][:200] if lines else f"rc {process.returncode}"
    )


def run_programs(
    sources: Iterable[str], limits: Limits = Limits(), workers: int = 2
) -> list[Outcome]:
    """Outcomes in the order of `sources`; a program that occurs twice runs once."""
    sources = list(sources)
    unique = list(dict.fromkeys(sources))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = dict(
            zip(unique, pool.map(lambda s: run_program(s, limits), unique), strict=True)
        )
    return [outcomes[s] for s in sources]
