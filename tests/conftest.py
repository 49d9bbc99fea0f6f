"""Shared fixtures: the real default model, built once per test run into the user cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from onnx_models.install import ensure_model
from onnx_models.paths import downloads_dir
from onnx_models.registry import DEFAULT_MODEL, KNOWN_MODELS


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The built default model (ONNX graph, tokenizer.json, manifest)."""
    return ensure_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def gguf_path(model_dir: Path) -> Path:
    """The default model's GGUF file, as downloaded and verified by the installer."""
    path = downloads_dir() / Path(KNOWN_MODELS[DEFAULT_MODEL].source.member).name
    assert path.is_file(), f"installer left no GGUF at {path}"
    return path
