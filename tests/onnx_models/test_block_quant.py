"""4- and 8-bit blocks: GGUF Q4_1 carried bit for bit (also into 8 bits); the shipped
MatMulNBits graph equals float32; symmetric blocks as onnxruntime-genai's int4 graphs hold them
run without the block minimums' term."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize
from onnx import TensorProto, helper

from onnx_models.block_quant import (
    BlockQuant,
    from_q4_1_bytes,
    integer_zero_points,
    pack_zero_points,
    quantize,
    quantize_symmetric,
    requantize,
)
from onnx_models.engine import Engine
from onnx_models.graph_builder import GraphOptions, _Graph
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
    # The prefill graph (the step graph's int8 steps: test_step_graph.py).
    shipped, fp32 = Engine.load(model_dir, step_graph=False), Engine.load(fp32_model_dir)
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


def test_symmetric_blocks_follow_onnxruntimes_int4_rules() -> None:
    w = np.random.default_rng(2).standard_normal((6, 64)).astype(np.float32)
    w[0, :32] = np.linspace(-1, 0.5, 32)  # the largest magnitude is negative
    w[1, :32] = np.linspace(-0.75, 0.75, 32)  # a tie: the negative end decides
    blocks = quantize_symmetric(w)
    back = blocks.dequantize().reshape(6, 2, 32)
    step = np.abs(blocks.scale)
    assert back[0, 0, 0] == -1.0 and blocks.q[0, 0, 0] == 0
    assert blocks.scale[1, 0] > 0 and back[1, 0, -1] == 7 * blocks.scale[1, 0]  # clipped
    # Round to nearest, but the side opposite the largest magnitude has 7 steps, not 8.
    err, half = np.abs(back - w.reshape(6, 2, 32)), step[..., None] / 2 + 1e-7
    clipped = blocks.q == 15
    assert np.all(err[~clipped] <= np.broadcast_to(half, err.shape)[~clipped])
    assert np.all(err <= 2 * half)
    np.testing.assert_array_equal(integer_zero_points(blocks), np.full((6, 2), 8, np.uint8))
    assert integer_zero_points(quantize(w)) is None  # min/max blocks keep a float minimum


def test_zero_points_pack_two_a_byte_low_nibble_first() -> None:
    z = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    np.testing.assert_array_equal(pack_zero_points(z, 4), [0x21, 0x03, 0x54, 0x06])
    np.testing.assert_array_equal(pack_zero_points(z, 8), [1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize("symmetric", [True, False])
def test_a_quantised_linear_computes_its_dequantised_weights(symmetric: bool) -> None:
    """Symmetric blocks run as MatMulNBits with zero points alone; min/max blocks add the
    block minimums' term. Both must give x @ w.T for the weights the blocks hold."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((96, 64)).astype(np.float32)
    blocks = quantize_symmetric(w) if symmetric else quantize(w)
    g = _Graph(GraphOptions(weights="q4"))
    out = g.linear("x", blocks, "y")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 64])]
    outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, "n", 96])]
    graph = helper.make_graph(g.nodes, "linear", inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    assert ("ReduceSum" in {n.op_type for n in g.nodes}) is not symmetric
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((1, 5, 64)).astype(np.float32)
    (y,) = session.run(None, {"x": x})
    np.testing.assert_allclose(y, x @ blocks.dequantize().T, atol=1e-4, rtol=1e-4)
