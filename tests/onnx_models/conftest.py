"""Fixtures for tests that need the default model's tokenizer, built from its GGUF.

The GGUF itself comes from `gguf_path` in tests/conftest.py (downloaded and verified by the
installer), so where model files come from is decided in that one place.
tests/completion/conftest.py loads these fixtures from this file.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest
from tokenizers import Tokenizer

from onnx_models.tokenizer_builder import build_tokenizer


@pytest.fixture(scope="session")
def gguf_reader(gguf_path: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(gguf_path)


@pytest.fixture(scope="session")
def smollm_tokenizer(gguf_reader: gguf.GGUFReader) -> Tokenizer:
    return build_tokenizer(gguf_reader)
