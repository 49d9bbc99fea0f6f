"""What a bench ran on, so that two reports can be told apart: cores, CPU, memory, load, the
software versions, and the model and execution provider the server reported.

Latency means little without this: the same commit is several times slower on a busy
two-core runner than on a quiet workstation. Read from the standard library and /proc only.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from lsp_server import __version__


@dataclass(frozen=True)
class MachineDescription:
    cpu_count: int | None  # logical cores of the machine
    usable_cores: int | None  # cores this process may run on (affinity, containers)
    cpu_model: str
    memory_bytes: int | None
    load_average: tuple[float, float, float] | None  # at the start of the bench
    platform: str
    python: str
    nexttoken: str
    onnxruntime: str
    model: str  # as the server reported it ("" when it did not)
    model_folder: str
    execution_provider: str

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_count": self.cpu_count,
            "usable_cores": self.usable_cores,
            "cpu_model": self.cpu_model,
            "memory_bytes": self.memory_bytes,
            "load_average": list(self.load_average) if self.load_average else None,
            "platform": self.platform,
            "python": self.python,
            "nexttoken": self.nexttoken,
            "onnxruntime": self.onnxruntime,
            "model": self.model,
            "model_folder": self.model_folder,
            "execution_provider": self.execution_provider,
        }


def describe_machine(
    server_model: dict[str, Any] | None,
    load_average: tuple[float, float, float] | None,
) -> MachineDescription:
    model = server_model or {}
    return MachineDescription(
        cpu_count=os.cpu_count(),
        usable_cores=_usable_cores(),
        cpu_model=_cpu_model(),
        memory_bytes=_memory_bytes(),
        load_average=load_average,
        platform=platform.platform(),
        python=sys.version.split()[0],
        nexttoken=__version__,
        onnxruntime=_version_of("onnxruntime") or _version_of("onnxruntime-gpu"),
        model=str(model.get("name", "")),
        model_folder=str(model.get("folder", "")),
        execution_provider=str(model.get("execution_provider", "")),
    )


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def _usable_cores() -> int | None:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""
