"""Completion tests use the tokenizer fixtures of tests/onnx_models/conftest.py.

That conftest is not on this folder's path, so it is loaded by file name; its fixtures then
depend on `gguf_path` in tests/conftest.py like they do there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "nexttoken_test_model_files", Path(__file__).parent.parent / "onnx_models" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_model_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_model_files)

gguf_reader = _model_files.gguf_reader
smollm_tokenizer = _model_files.smollm_tokenizer
