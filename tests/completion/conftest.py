"""Completion tests use the same model files as the onnx_models tests: load those fixtures.

They are loaded from tests/onnx_models/conftest.py by path, so where the GGUF comes from is still
decided in that one file.
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

gguf_path = _model_files.gguf_path
gguf_reader = _model_files.gguf_reader
smollm_tokenizer = _model_files.smollm_tokenizer
