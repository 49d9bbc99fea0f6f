"""Write a decoder-only transformer as an ONNX graph directly from numpy weights.

The graph uses onnxruntime's CPU contrib operators the way onnxruntime-genai's builder does:
packed QKV projection, GroupQueryAttention with fused rotary embedding and a KV cache whose
past and present tensors may be bound to one buffer, SkipSimplifiedLayerNormalization that
fuses the residual add, and an LM head applied to the last position only. It must not import
PyTorch.

Inputs:  input_ids int64 [batch, seq], seqlens_k int32 [batch] (total length - 1),
         total_sequence_length int32 [] , past_key.{i}/past_value.{i} float32
         [batch, kv_heads, max_seq, head_dim]
Outputs: logits float32 [batch, vocab] (last position), present_key.{i}/present_value.{i}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_models.gguf_weights import DecoderConfig, LayerWeights

OPSET = 17
MS_DOMAIN = "com.microsoft"


@dataclass
class _Graph:
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    def weight(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs):
        name = f"{op}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs


def rotary_caches(cfg: DecoderConfig) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables [context, head_dim/2] for the half-split (non-interleaved) rotary layout."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, half, dtype=np.float64) * 2 / cfg.head_dim))
    angles = np.outer(np.arange(cfg.context_length, dtype=np.float64), inv_freq)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def build_decoder(
    cfg: DecoderConfig,
    embedding: np.ndarray,
    layers: Callable[[int], LayerWeights],
    final_norm: np.ndarray,
    lm_head: np.ndarray | None,
    on_layer: Callable[[int], None] = lambda i: None,
) -> onnx.ModelProto:
    """Build the graph; `layers(i)` yields block i's weights so only one block is dequantised
    at a time, and `on_layer(i)` reports progress."""
    g = _Graph()
    eps = cfg.rms_norm_eps
    emb = g.weight("embed.weight", embedding)
    cos, sin = rotary_caches(cfg)
    g.weight("rotary.cos", cos)
    g.weight("rotary.sin", sin)

    hidden = g.node("Gather", [emb, "input_ids"], ["embed.out"])
    residual = hidden
    normed = ""
    mlp_out = ""

    for i in range(cfg.num_layers):
        w = layers(i)
        p = f"layers.{i}"
        if i == 0:
            normed = g.node(
                "SimplifiedLayerNormalization",
                [hidden, g.weight(f"{p}.attn_norm", w.attn_norm)],
                [f"{p}.attn_norm.out"],
                axis=-1,
                epsilon=eps,
            )
        else:
            normed, _, _, residual = g.node(
                "SkipSimplifiedLayerNormalization",
                [mlp_out, residual, g.weight(f"{p}.attn_norm", w.attn_norm)],
                [f"{p}.attn_norm.out", "", "", f"{p}.residual_in"],
                domain=MS_DOMAIN,
                epsilon=eps,
            )

        qkv_w = np.concatenate([w.q, w.k, w.v], axis=0).T  # [hidden, (q + 2 kv) * head_dim]
        qkv = g.node("MatMul", [normed, g.weight(f"{p}.qkv.weight", qkv_w)], [f"{p}.qkv"])
        if w.q_bias is not None:
            bias = np.concatenate([w.q_bias, w.k_bias, w.v_bias])
            qkv = g.node("Add", [qkv, g.weight(f"{p}.qkv.bias", bias)], [f"{p}.qkv_b"])
        attn, _, _ = g.node(
            "GroupQueryAttention",
            [
                qkv,
                "",
                "",
                f"past_key.{i}",
                f"past_value.{i}",
                "seqlens_k",
                "total_sequence_length",
                "rotary.cos",
                "rotary.sin",
            ],
            [f"{p}.attn", f"present_key.{i}", f"present_value.{i}"],
            domain=MS_DOMAIN,
            num_heads=cfg.num_heads,
            kv_num_heads=cfg.num_kv_heads,
            do_rotary=1,
            rotary_interleaved=0,
            scale=float(1.0 / np.sqrt(cfg.head_dim)),
        )
        attn_out = g.node("MatMul", [attn, g.weight(f"{p}.o.weight", w.o.T)], [f"{p}.o"])

        normed2, _, _, residual = g.node(
            "SkipSimplifiedLayerNormalization",
            [attn_out, residual, g.weight(f"{p}.ffn_norm", w.ffn_norm)],
            [f"{p}.ffn_norm.out", "", "", f"{p}.residual_mid"],
            domain=MS_DOMAIN,
            epsilon=eps,
        )
        gate_up_w = np.concatenate([w.gate, w.up], axis=0).T
        gate_up = g.node(
            "MatMul", [normed2, g.weight(f"{p}.gate_up.weight", gate_up_w)], [f"{p}.gate_up"]
        )
        split = g.weight(f"{p}.split", np.array([cfg.intermediate_size] * 2, dtype=np.int64))
        gate, up = g.node("Split", [gate_up, split], [f"{p}.gate", f"{p}.up"], axis=-1)
        act = g.node("Mul", [gate, g.node("Sigmoid", [gate], [f"{p}.sig"])], [f"{p}.silu"])
        prod = g.node("Mul", [act, up], [f"{p}.act"])
        mlp_out = g.node("MatMul", [prod, g.weight(f"{p}.down.weight", w.down.T)], [f"{p}.down"])
        on_layer(i)

    final, _, _, _ = g.node(
        "SkipSimplifiedLayerNormalization",
        [mlp_out, residual, g.weight("final_norm", final_norm)],
        ["final_norm.out", "", "", "final.residual"],
        domain=MS_DOMAIN,
        epsilon=eps,
    )
    # Only the last position's logits are ever needed: slice before the LM head.
    starts = g.weight("slice.starts", np.array([-1], dtype=np.int64))
    ends = g.weight("slice.ends", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    axes = g.weight("slice.axes", np.array([1], dtype=np.int64))
    last = g.node("Slice", ["final_norm.out", starts, ends, axes], ["last_hidden"])
    flat_shape = g.weight("flat.shape", np.array([-1, cfg.hidden_size], dtype=np.int64))
    flat = g.node("Reshape", [last, flat_shape], ["last_hidden_2d"])
    if lm_head is None:
        g.node("Gemm", [flat, emb], ["logits"], transB=1)
    else:
        g.node("Gemm", [flat, g.weight("lm_head.weight", lm_head)], ["logits"], transB=1)
    del final

    kv_shape = ["batch", cfg.num_kv_heads, "max_sequence_length", cfg.head_dim]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["batch"]),
        helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, []),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "vocab"])]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(f"past_{kind}.{i}", TensorProto.FLOAT, kv_shape)
            )
            outputs.append(
                helper.make_tensor_value_info(f"present_{kind}.{i}", TensorProto.FLOAT, kv_shape)
            )
    graph = helper.make_graph(g.nodes, "nexttoken_decoder", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="nexttoken",
    )
    model.ir_version = 9
    return model


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save with all weights in one external-data file beside the graph (protobuf caps at 2 GB)."""
    data_name = path.name + ".data"
    (path.parent / data_name).unlink(missing_ok=True)
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_name,
        size_threshold=1024,
    )
