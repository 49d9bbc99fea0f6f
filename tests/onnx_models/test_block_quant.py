"""4- and 8-bit blocks: GGUF Q4_1 carried bit for bit (also into 8 bits); the shipped
MatMulNBits graph equals float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize

from onnx_models.block_quant import BlockQuant, from_q4_1_bytes, quantize, requantize
from onnx_models.engine import Engine
from onnx_models.install import DEFAULT_GRAPH
from onnx_models.sampling import SAMPLED_TOP_K


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


def test_eight_bits_quarter_the_error_of_four_and_hold_q4_blocks_exactly() -> None:
    w = np.random.default_rng(1).standard_normal((8, 64)).astype(np.float32)
    q4, q8 = quantize(w, 4), quantize(w, 8)
    assert q8.packed().shape == (8, 2, 32)
    err4, err8 = np.abs(q4.dequantize() - w).max(), np.abs(q8.dequantize() - w).max()
    assert err8 <= q8.scale.max() / 2 + 1e-6
    assert err8 < err4 / 8  # 255 levels against 15
    np.testing.assert_allclose(requantize(q4, 8).dequantize(), q4.dequantize(), atol=1e-6)


def test_q8_0_tensors_stay_exact_in_eight_bits(gguf_reader: GGUFReader) -> None:
    tensor = next(t for t in gguf_reader.tensors if t.tensor_type == GGMLQuantizationType.Q8_0)
    w = np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)[:512]
    np.testing.assert_array_equal(quantize(w, 8).dequantize(), w)
    assert np.abs(quantize(w, 4).dequantize() - w).max() > 0  # 4 bits cannot hold them


def test_shipped_graph_stays_close_to_float(model_dir: Path, fp32_model_dir: Path) -> None:
    """The default (4-bit weights, float activations; 8-bit head whose best logits are
    recomputed in float32) gives what float32 gives where a choice is made."""
    shipped, fp32 = Engine.load(model_dir), Engine.load(fp32_model_dir)
    assert shipped.manifest.source["graph"] == DEFAULT_GRAPH.label()
    ids = fp32.tokenizer.encode("def mean(values):\n    return sum(values) / len(").ids
    shipped.prefill(ids)
    fp32.prefill(ids)
    ranked = np.argsort(-fp32.logits)
    best, tail = ranked[: SAMPLED_TOP_K // 2], ranked[4 * SAMPLED_TOP_K :]
    # Same Q4_1 weights, float activations: only summation order differs where it counts ...
    np.testing.assert_allclose(shipped.logits[best], fp32.logits[best], atol=2e-3, rtol=0)
    # ... and the far tail is the 8-bit head's estimate.
    assert 2e-3 < np.abs(shipped.logits[tail] - fp32.logits[tail]).max() < 4
    a = fp32.generate(ids, max_new_tokens=16, stop_token_ids=frozenset())
    b = shipped.generate(ids, max_new_tokens=16, stop_token_ids=frozenset())
    assert a.tokens == b.tokens
