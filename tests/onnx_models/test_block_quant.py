"""4-bit blocks: GGUF Q4_1 carried bit for bit, and the MatMulNBits graph equal to float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize

from onnx_models.block_quant import BlockQuant, from_q4_1_bytes, quantize
from onnx_models.engine import Engine
from onnx_models.graph_builder import GraphOptions
from onnx_models.model_builder import build_model_folder


def test_q4_1_tensors_are_read_exactly(gguf_path: Path) -> None:
    reader = GGUFReader(str(gguf_path))
    tensor = next(t for t in reader.tensors if t.tensor_type == GGMLQuantizationType.Q4_1)
    blocks = from_q4_1_bytes(tensor.data, tensor.data.shape[0])
    np.testing.assert_array_equal(blocks.dequantize(), dequantize(tensor.data, tensor.tensor_type))


def test_quantize_round_trips_within_half_a_step() -> None:
    w = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    blocks = quantize(w)
    step = blocks.scale.repeat(32, axis=1)
    assert np.all(np.abs(blocks.dequantize() - w) <= step / 2 + 1e-6)
    assert blocks.packed().shape == (8, 2, 16)
    assert BlockQuant.concat([blocks, blocks]).shape == (16, 64)


@pytest.fixture(scope="module")
def q4_engine(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("q4") / "model"
    options = GraphOptions(weights="q4", lm_head="fp32", accuracy_level=0)
    build_model_folder(gguf_path, folder, name="smollm2-q4", family="smollm2", options=options)
    return Engine.load(folder)


def test_q4_graph_computes_what_the_float_graph_computes(q4_engine: Engine, model_dir: Path):
    fp32 = Engine.load(model_dir)
    ids = fp32.tokenizer.encode("import json\n\n\ndef load(path):\n    with open(path) as f:\n").ids
    fp32.prefill(ids)
    q4_engine.prefill(ids)
    # Same Q4_1 weights, float activations: only summation order differs.
    np.testing.assert_allclose(q4_engine.logits, fp32.logits, atol=2e-3, rtol=0)
    a = fp32.generate(ids, max_new_tokens=16, stop_token_ids=frozenset())
    b = q4_engine.generate(ids, max_new_tokens=16, stop_token_ids=frozenset())
    assert a.tokens == b.tokens
