"""The portable graph (standard ONNX operators only) computes what the contrib-op graph does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from onnx_models.engine import Engine
from onnx_models.graph_builder import GraphOptions
from onnx_models.model_builder import build_model_folder


@pytest.fixture(scope="module")
def portable_dir(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("portable") / "model"
    options = GraphOptions(attention="portable")
    build_model_folder(
        gguf_path, folder, name="smollm2-portable", family="smollm2", options=options
    )
    return folder


def test_portable_graph_uses_only_standard_operators(portable_dir: Path) -> None:
    graph = onnx.load(str(portable_dir / "model.onnx"), load_external_data=False).graph
    assert {node.domain for node in graph.node} <= {""}
    assert "SimplifiedLayerNormalization" not in {node.op_type for node in graph.node}


def test_portable_graph_matches_the_contrib_graph(portable_dir: Path, fp32_model_dir: Path):
    fast, portable = Engine.load(fp32_model_dir), Engine.load(portable_dir)
    assert not portable.manifest.kv.shared_buffer
    ids = fast.tokenizer.encode("class Queue:\n    def __init__(self):\n        self.items = ").ids
    fast.prefill(ids)
    portable.prefill(ids)
    np.testing.assert_allclose(portable.logits, fast.logits, atol=1e-3, rtol=0)
    a = fast.generate(ids, max_new_tokens=12, stop_token_ids=frozenset())
    b = portable.generate(ids, max_new_tokens=12, stop_token_ids=frozenset(), speculate=True)
    assert a.tokens == b.tokens
    # Rewinding the concatenated cache keeps it consistent.
    portable.rewind(5)
    portable.prefill(ids)
    fast.prefill(ids)
    np.testing.assert_allclose(portable.logits, fast.logits, atol=1e-3, rtol=0)


def test_portable_graph_continues_a_cached_suggestion(portable_dir: Path) -> None:
    """The concatenated cache rewinds by copying; a continued draft must still verify."""
    portable = Engine.load(portable_dir)
    ids = portable.tokenizer.encode("def total(prices):\n    return sum(").ids
    first = portable.generate(ids, max_new_tokens=8, stop_token_ids=frozenset(), speculate=True)
    typed = ids + list(first.tokens[:2])
    again = portable.generate(typed, max_new_tokens=6, stop_token_ids=frozenset(), speculate=True)
    assert again.continued_tokens == 5
    assert again.tokens == first.tokens[2:]
    assert portable.cached_tokens == typed + list(again.tokens[:-1])
