"""Write a decoder-only transformer as an ONNX graph directly from numpy weights.

The graph uses onnxruntime's CPU contrib operators the way onnxruntime-genai's builder does:
packed QKV projection, GroupQueryAttention with fused rotary embedding and a KV cache whose
past and present tensors may be bound to one buffer, SkipSimplifiedLayerNormalization that
fuses the residual add, and an LM head applied to the last position only. It must not import
PyTorch.

Inputs:  input_ids int64 [batch, seq], seqlens_k int32 [batch] (total length - 1),
         total_sequence_length int32 [], num_logits int64 [1] (how many trailing positions
         get logits: 1 for decoding, more to verify speculated tokens),
         past_key.{i}/past_value.{i} float32 [batch, kv_heads, max_seq, head_dim] (int8
         with GraphOptions.kv_cache "int8")
Outputs: logits float32 [batch, num_logits, vocab], present_key.{i}/present_value.{i}

Linear weights are float32 MatMuls, or 4-bit or 8-bit blocks run by MatMulNBits (see
block_quant.py); a quantised LM head may have its best logits recomputed against the float
weights (GraphOptions.rescore). The block's shape (RMSNorm or LayerNorm, gated or plain MLP,
activation) comes from the DecoderConfig as data; each kind is a row in a table here, not a
per-family branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_models.block_quant import (
    BLOCK,
    BlockQuant,
    integer_zero_points,
    pack_zero_points,
    quantize,
    quantize_symmetric,
    requantize,
)
from onnx_models.decoder_weights import DecoderConfig, LayerWeights, LinearWeight, rotary_inv_freq

OPSET = 17
MS_DOMAIN = "com.microsoft"
# q4sym: symmetric 4-bit blocks as onnxruntime-genai's int4 graphs hold them (lossy: requantised
# from the float weights; block_quant.quantize_symmetric).
WEIGHT_FORMATS = ("fp32", "q4", "q8", "q4sym")
KV_CACHE_FORMATS = ("fp32", "int8")
# 8-bit MatMulNBits always gets int8 activations: onnxruntime's CPU kernel has no fast path
# for 8-bit weights with float32 activations (measured 20-40x slower than 4 bits; README).
INT8_ACTIVATIONS = 4
# Fused norm operators by norm kind: (without skip, with skip). LayerNorm takes a bias input.
FUSED_NORMS = {
    "rms": ("SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization"),
    "layer": ("LayerNormalization", "SkipLayerNormalization"),
}


@dataclass(frozen=True)
class GraphOptions:
    """Variants of the same graph, chosen by measurement (see benchmarks/README.md)."""

    # "gqa": onnxruntime's contrib operators (GroupQueryAttention with past and present in one
    # buffer, fused norms); "portable": standard ONNX operators only, the cache grows by Concat.
    attention: str = "gqa"
    weights: str = "fp32"  # one of WEIGHT_FORMATS, for the decoder blocks' linear layers
    lm_head: str = "fp32"  # one of WEIGHT_FORMATS
    # MatMulNBits accuracy level of 4-bit weights: 0 keeps activations in float32 (exact), 4
    # uses int8 ones. 8-bit weights always use int8 activations (INT8_ACTIVATIONS).
    accuracy_level: int = 0
    # With a quantised head: how many of its top tokens get their logits recomputed against
    # the float head weights (0: none). int8 activations move a logit by up to ~2, which
    # reorders near ties; recomputing the top few keeps the head's speed and float32's choice.
    rescore: int = 0
    # "int8": GroupQueryAttention keeps keys and values as int8 with static per-channel scales
    # (calibrated on real text when the model is built; kv_calibration.py): a quarter of the
    # cache's memory and of the bytes attention reads per token.
    kv_cache: str = "fp32"
    # A second graph over the same weights file for decode steps (engine.py), its 4-bit blocks
    # at this accuracy level. MatMulNBits' one-row kernels with int8 activations are 2.2x
    # faster than float32 ones on an AVX2 CPU and 1.1x on an AVX-512 one, while the prompt's
    # passes stay on float32 activations (benchmarks/README.md, "Two graphs"). None: one graph
    # for every pass.
    step_accuracy_level: int | None = None
    # Keep the step graph only where its steps measured faster on the building machine
    # (step_timing.py); False: always.
    step_timed: bool = False

    def __post_init__(self) -> None:
        for name in ("weights", "lm_head"):
            value = getattr(self, name)
            if value not in WEIGHT_FORMATS:
                raise ValueError(
                    f"{name} must be one of {', '.join(WEIGHT_FORMATS)}, not {value!r}"
                )
        if self.attention not in ("gqa", "portable"):
            raise ValueError(f"attention must be 'gqa' or 'portable', not {self.attention!r}")
        if self.attention == "portable" and {self.weights, self.lm_head} != {"fp32"}:
            raise ValueError("the portable graph uses standard operators only: no q4/q8 weights")
        if self.rescore < 0 or (self.rescore and self.lm_head == "fp32"):
            raise ValueError("rescore needs a quantised lm_head (not fp32) and a count >= 0")
        if self.kv_cache not in KV_CACHE_FORMATS:
            raise ValueError(f"kv_cache must be 'fp32' or 'int8', not {self.kv_cache!r}")
        if self.kv_cache != "fp32" and self.attention != "gqa":
            raise ValueError("an int8 KV cache needs the gqa graph (GroupQueryAttention)")
        if self.step_accuracy_level is not None and (
            self.weights != "q4" or self.step_accuracy_level == self.accuracy_level
        ):
            raise ValueError(
                "a step graph needs 4-bit weights (q4) at another accuracy level than the "
                "prefill graph's"
            )
        if self.step_timed and self.step_accuracy_level is None:
            raise ValueError("step_timed needs a step graph (step_accuracy_level)")

    @property
    def shared_kv_buffer(self) -> bool:
        return self.attention == "gqa"

    def label(self) -> str:
        label = f"{self.attention}-{self.weights}-head_{self.lm_head}-acc{self.accuracy_level}"
        label += f"-rescore{self.rescore}" if self.rescore else ""
        label += "-kv8" if self.kv_cache == "int8" else ""
        if self.step_accuracy_level is not None:
            label += f"-step{self.step_accuracy_level}" + ("-timed" if self.step_timed else "")
        return label


@dataclass
class _Graph:
    options: GraphOptions = field(default_factory=GraphOptions)
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _block_sums: dict[str, str] = field(default_factory=dict)

    def weight(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs):
        name = f"{op}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def block_sums(self, x: str, in_features: int) -> str:
        """Sums of `x` over each 32-wide block of its last axis (shared by the linears of x)."""
        if x not in self._block_sums:
            shape = self.weight(
                f"{x}.blocks.shape", np.array([0, 0, in_features // BLOCK, BLOCK], dtype=np.int64)
            )
            blocks = self.node("Reshape", [x, shape], [f"{x}.blocks"])
            axes = self.weight(f"{x}.blocks.axes", np.array([-1], dtype=np.int64))
            self._block_sums[x] = self.node(
                "ReduceSum", [blocks, axes], [f"{x}.block_sums"], keepdims=0
            )
        return self._block_sums[x]

    def const(self, name: str, values: list[int] | list[float], dtype=np.int64) -> str:
        return self.weight(name, np.array(values, dtype=dtype))

    def norm(
        self,
        x: str,
        kind: str,
        weight: np.ndarray,
        bias: np.ndarray | None,
        eps: float,
        name: str,
        skip: str | None = None,
    ) -> tuple[str, str]:
        """(normed, residual): the norm of x (+ skip), and x (+ skip) for the next residual.
        `kind` is "rms" (weight only) or "layer" (LayerNorm: mean removed, weight and bias)."""
        inputs = [self.weight(f"{name}.weight", weight)]
        if kind == "layer":
            beta = bias if bias is not None else np.zeros_like(weight)
            inputs.append(self.weight(f"{name}.bias", beta))
        plain_op, skip_op = FUSED_NORMS[kind]
        if self.options.attention == "gqa" and skip is not None:
            out, _, _, summed = self.node(
                skip_op,
                [x, skip, *inputs],
                [f"{name}.out", "", "", f"{name}.sum"],
                domain=MS_DOMAIN,
                epsilon=eps,
            )
            return out, summed
        summed = x if skip is None else self.node("Add", [x, skip], [f"{name}.sum"])
        if self.options.attention == "gqa" or kind == "layer":
            # LayerNormalization is a standard operator since opset 17; the simplified one is
            # onnxruntime's (registered in the default domain).
            out = self.node(plain_op, [summed, *inputs], [f"{name}.out"], axis=-1, epsilon=eps)
            return out, summed
        square = self.node("Mul", [summed, summed], [f"{name}.sq"])
        mean = self.node(
            "ReduceMean", [square], [f"{name}.mean"], axes=[-1], keepdims=1
        )  # opset 17: axes is an attribute
        shifted = self.node(
            "Add", [mean, self.const(f"{name}.eps", [eps], np.float32)], [f"{name}.var"]
        )
        inv = self.node(
            "Reciprocal", [self.node("Sqrt", [shifted], [f"{name}.std"])], [f"{name}.inv"]
        )
        scaled = self.node("Mul", [summed, inv], [f"{name}.scaled"])
        return self.node("Mul", [scaled, inputs[0]], [f"{name}.out"]), summed

    def add_bias(self, x: str, bias: np.ndarray | None, name: str) -> str:
        if bias is None:
            return x
        return self.node("Add", [x, self.weight(f"{name}.bias", bias)], [f"{name}.biased"])

    def linear(self, x: str, w: LinearWeight, name: str) -> str:
        """x @ w.T for w [out, in]; 4- or 8-bit blocks as MatMulNBits + the block minimums'
        term."""
        if not isinstance(w, BlockQuant):
            return self.node("MatMul", [x, self.weight(f"{name}.weight", w.T)], [name])
        out_features, in_features = w.shape
        n_blocks = in_features // BLOCK
        # 8-bit blocks keep the minimum term even when whole (a Q8_0 head's are): whole zero
        # points there gained nothing and cost 44 MiB (benchmarks/README.md, "Weight formats").
        integer = integer_zero_points(w) if w.bits == 4 else None
        zero_points = pack_zero_points(
            integer if integer is not None else np.zeros((out_features, n_blocks), np.uint8),
            w.bits,
        )
        scaled = self.node(
            "MatMulNBits",
            [
                x,
                self.weight(f"{name}.q{w.bits}", w.packed()),
                self.weight(f"{name}.scales", w.scale.reshape(-1)),
                self.weight(f"{name}.zero_points", zero_points),
            ],
            [name if integer is not None else f"{name}.scaled"],
            domain=MS_DOMAIN,
            K=in_features,
            N=out_features,
            bits=w.bits,
            block_size=BLOCK,
            accuracy_level=self.options.accuracy_level if w.bits == 4 else INT8_ACTIVATIONS,
        )
        if integer is not None:  # w = scale * (q - zero point): MatMulNBits alone
            return scaled
        # w = scale * q + minimum, so x @ w.T = MatMulNBits(x) + block_sums(x) @ minimum.T
        offset = self.node(
            "MatMul",
            [self.block_sums(x, in_features), self.weight(f"{name}.minimum", w.minimum.T)],
            [f"{name}.offset"],
        )
        return self.node("Add", [scaled, offset], [name])


def _rescore_top(g: _Graph, last: str, approx: str, float_head: str, count: int) -> str:
    """logits: `approx` with its top `count` entries recomputed as `last` . float_head[token]
    (a gather of `count` rows and a small batched MatMul: ~0.5 % of the head's work)."""
    _, top = g.node(
        "TopK",
        [approx, g.const("rescore.k", [count])],
        ["rescore.values", "rescore.ids"],
        axis=-1,
        sorted=0,
    )
    rows = g.node("Gather", [float_head, top], ["rescore.rows"])  # [batch, n, count, hidden]
    column = g.node("Unsqueeze", [last, g.const("rescore.axis", [-1])], ["rescore.column"])
    exact = g.node("MatMul", [rows, column], ["rescore.exact4d"])  # [batch, n, count, 1]
    exact = g.node("Squeeze", [exact, g.const("rescore.squeeze", [-1])], ["rescore.exact"])
    return g.node("ScatterElements", [approx, top, exact], ["logits"], axis=-1)


def rotary_caches(cfg: DecoderConfig) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables [context, head_dim/2] for the half-split (non-interleaved) rotary layout."""
    angles = np.outer(np.arange(cfg.context_length, dtype=np.float64), rotary_inv_freq(cfg))
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def build_decoder(
    cfg: DecoderConfig,
    embedding: np.ndarray,
    layers: Callable[[int], LayerWeights],
    final_norm: np.ndarray,
    lm_head: np.ndarray | None,
    on_layer: Callable[[int], None] = lambda i: None,
    options: GraphOptions | None = None,
    final_norm_bias: np.ndarray | None = None,
    kv_scales: np.ndarray | None = None,
) -> onnx.ModelProto:
    """Build the graph; `layers(i)` yields block i's weights (float32, or blocks where the
    source stores them so; quantised here as options.weights says) so only one block is in
    memory at a time, and `on_layer(i)` reports progress. An int8 KV cache needs `kv_scales`
    [layers, 2 (key, value), kv_heads, head_dim] (kv_calibration.py)."""
    g = _Graph(options or GraphOptions())
    int8_kv = g.options.kv_cache == "int8"
    expected = (cfg.num_layers, 2, cfg.num_kv_heads, cfg.head_dim)
    if int8_kv and (kv_scales is None or kv_scales.shape != expected):
        raise ValueError(f"an int8 KV cache needs kv_scales of shape {expected}")
    eps = cfg.norm_eps
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
        if g.options.weights != "fp32":
            w = _quantized(w, g.options.weights)
        p = f"layers.{i}"
        normed, residual = g.norm(
            hidden if i == 0 else mlp_out,
            cfg.norm,
            w.attn_norm,
            w.attn_norm_bias,
            eps,
            f"{p}.attn_norm",
            skip=None if i == 0 else residual,
        )
        qkv = g.linear(normed, _concat([w.q, w.k, w.v]), f"{p}.qkv")
        if w.q_bias is not None:
            qkv = g.add_bias(qkv, np.concatenate([w.q_bias, w.k_bias, w.v_bias]), f"{p}.qkv")
        attn = (
            _gqa_attention(g, cfg, qkv, i, kv_scales[i] if int8_kv else None)
            if g.options.attention == "gqa"
            else _portable_attention(g, cfg, qkv, i)
        )
        attn_out = g.add_bias(g.linear(attn, w.o, f"{p}.o"), w.o_bias, f"{p}.o")

        normed2, residual = g.norm(
            attn_out, cfg.norm, w.ffn_norm, w.ffn_norm_bias, eps, f"{p}.ffn_norm", skip=residual
        )
        hidden_act = MLPS[cfg.mlp](g, cfg, w, normed2, p)
        mlp_out = g.add_bias(g.linear(hidden_act, w.down, f"{p}.down"), w.down_bias, f"{p}.down")
        on_layer(i)

    final, _ = g.norm(
        mlp_out, cfg.norm, final_norm, final_norm_bias, eps, "final_norm", skip=residual
    )
    # Only the trailing positions' logits are needed: slice before the (large) LM head.
    starts = g.node("Neg", ["num_logits"], ["slice.starts"])
    ends = g.weight("slice.ends", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    axes = g.weight("slice.axes", np.array([1], dtype=np.int64))
    last = g.node("Slice", [final, starts, ends, axes], ["last_hidden"])
    head = embedding if lm_head is None else lm_head
    if g.options.lm_head != "fp32":
        rescore = min(g.options.rescore, cfg.vocab_size)
        quantized = _quantize_as(g.options.lm_head, head)
        approx = g.linear(last, quantized, "logits.approx" if rescore else "logits")
        if rescore:
            float_head = emb if lm_head is None else g.weight("lm_head.weight", lm_head)
            _rescore_top(g, last, approx, float_head, rescore)
    else:
        # Gemm reads the [vocab, hidden] weight transposed in place, so a tied embedding is
        # stored once; it wants 2-D input.
        flat_shape = g.weight("flat.shape", np.array([-1, cfg.hidden_size], dtype=np.int64))
        flat = g.node("Reshape", [last, flat_shape], ["last_hidden_2d"])
        head_name = emb if lm_head is None else g.weight("lm_head.weight", lm_head)
        logits_2d = g.node("Gemm", [flat, head_name], ["logits_2d"], transB=1)
        batch_positions = g.node("Shape", [last], ["last_hidden.bk"], start=0, end=2)
        vocab = g.weight("logits.vocab", np.array([cfg.vocab_size], dtype=np.int64))
        out_shape = g.node("Concat", [batch_positions, vocab], ["logits.shape"], axis=0)
        g.node("Reshape", [logits_2d, out_shape], ["logits"])

    past_len = "max_sequence_length" if g.options.shared_kv_buffer else "past_sequence_length"
    present_len = "max_sequence_length" if g.options.shared_kv_buffer else "total_sequence_length"
    past_shape = ["batch", cfg.num_kv_heads, past_len, cfg.head_dim]
    present_shape = ["batch", cfg.num_kv_heads, present_len, cfg.head_dim]
    cache_type = TensorProto.INT8 if int8_kv else TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["batch"]),
        helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, []),
        helper.make_tensor_value_info("num_logits", TensorProto.INT64, [1]),
    ]
    outputs = [
        helper.make_tensor_value_info(
            "logits", TensorProto.FLOAT, ["batch", "num_logits", cfg.vocab_size]
        )
    ]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}.{i}", cache_type, past_shape))
            outputs.append(
                helper.make_tensor_value_info(f"present_{kind}.{i}", cache_type, present_shape)
            )
    graph = helper.make_graph(g.nodes, "nexttoken_decoder", inputs, outputs, g.initializers)
    uses_ms = any(n.domain == MS_DOMAIN for n in g.nodes)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)]
        + ([helper.make_opsetid(MS_DOMAIN, 1)] if uses_ms else []),
        producer_name="nexttoken",
    )
    model.ir_version = 9
    return model


def _gqa_attention(
    g: _Graph, cfg: DecoderConfig, qkv: str, i: int, kv_scales: np.ndarray | None
) -> str:
    """onnxruntime's GroupQueryAttention: rotary inside, past and present one shared buffer;
    with `kv_scales` [2, kv_heads, head_dim] the cache holds int8 (symmetric, per channel)."""
    inputs = [
        qkv,
        "",
        "",
        f"past_key.{i}",
        f"past_value.{i}",
        "seqlens_k",
        "total_sequence_length",
        "rotary.cos",
        "rotary.sin",
    ]
    quant: dict[str, object] = {}
    if kv_scales is not None:
        shape = (1, cfg.num_kv_heads, 1, cfg.head_dim)
        # Inputs 9-11 (position ids, attention bias, head sink) stay unset.
        inputs += ["", "", ""] + [
            g.weight(f"layers.{i}.{kind}_scale", kv_scales[j].reshape(shape).astype(np.float32))
            for j, kind in enumerate(("k", "v"))
        ]
        quant = dict(k_quant_type="PER_CHANNEL", v_quant_type="PER_CHANNEL", kv_cache_bit_width=8)
    attn, _, _ = g.node(
        "GroupQueryAttention",
        inputs,
        [f"layers.{i}.attn", f"present_key.{i}", f"present_value.{i}"],
        domain=MS_DOMAIN,
        num_heads=cfg.num_heads,
        kv_num_heads=cfg.num_kv_heads,
        do_rotary=1,
        rotary_interleaved=0,
        scale=float(1.0 / np.sqrt(cfg.head_dim)),
        **quant,
    )
    return attn


def _portable_positions(g: _Graph, cfg: DecoderConfig) -> tuple[str, str, str]:
    """cos, sin [seq, head_dim/2] at this call's positions, and the causal mask [seq, total]:
    computed once, shared by all layers."""
    if "rope.cos" in {o for n in g.nodes for o in n.output}:
        return "rope.cos", "rope.sin", "attn.mask"
    total = g.node("Cast", ["total_sequence_length"], ["total.i64"], to=TensorProto.INT64)
    seq = g.node("Shape", ["input_ids"], ["seq.len"], start=1, end=2)
    seq_scalar = g.node("Squeeze", [seq, g.const("axis0", [0])], ["seq.scalar"])
    past = g.node("Sub", [total, seq_scalar], ["past.len"])
    one = g.weight("one", np.array(1, dtype=np.int64))
    zero = g.weight("zero", np.array(0, dtype=np.int64))
    positions = g.node("Range", [past, total, one], ["positions"])
    cos = g.node("Gather", ["rotary.cos", positions], ["rope.cos"])
    sin = g.node("Gather", ["rotary.sin", positions], ["rope.sin"])
    rows = g.node("Unsqueeze", [positions, g.const("axis1", [1])], ["mask.rows"])
    cols = g.node("Range", [zero, total, one], ["mask.cols"])
    future = g.node("Greater", [cols, rows], ["mask.future"])
    g.node(
        "Where",
        [future, g.const("neg_inf", [-1e30], np.float32), g.const("zero_f", [0.0], np.float32)],
        ["attn.mask"],
    )
    return cos, sin, "attn.mask"


def _portable_attention(g: _Graph, cfg: DecoderConfig, qkv: str, i: int) -> str:
    """Causal attention with standard operators: rotary, Concat onto the past, repeated KV
    heads, softmax; the present cache is a new tensor each call (hence the fallback)."""
    p = f"layers.{i}"
    hd, heads, kv_heads = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
    cos, sin, mask = _portable_positions(g, cfg)
    split = g.const(f"{p}.qkv.split", [heads * hd, kv_heads * hd, kv_heads * hd])
    q, k, v = g.node("Split", [qkv, split], [f"{p}.q", f"{p}.k", f"{p}.v"], axis=-1)

    def heads_first(x: str, n: int, name: str) -> str:
        shaped = g.node("Reshape", [x, g.const(f"{name}.shape", [0, 0, n, hd])], [f"{name}.bshd"])
        return g.node("Transpose", [shaped], [f"{name}.bhsd"], perm=[0, 2, 1, 3])

    def rotate(x: str, name: str) -> str:
        half = g.const(f"{name}.halves", [hd // 2, hd // 2])
        x1, x2 = g.node("Split", [x, half], [f"{name}.x1", f"{name}.x2"], axis=-1)
        a = g.node(
            "Sub",
            [g.node("Mul", [x1, cos], [f"{name}.x1c"]), g.node("Mul", [x2, sin], [f"{name}.x2s"])],
            [f"{name}.a"],
        )
        b = g.node(
            "Add",
            [g.node("Mul", [x2, cos], [f"{name}.x2c"]), g.node("Mul", [x1, sin], [f"{name}.x1s"])],
            [f"{name}.b"],
        )
        return g.node("Concat", [a, b], [f"{name}.rot"], axis=-1)

    q = rotate(heads_first(q, heads, f"{p}.q"), f"{p}.q")
    k = rotate(heads_first(k, kv_heads, f"{p}.k"), f"{p}.k")
    v = heads_first(v, kv_heads, f"{p}.v")
    k_all = g.node("Concat", [f"past_key.{i}", k], [f"present_key.{i}"], axis=2)
    v_all = g.node("Concat", [f"past_value.{i}", v], [f"present_value.{i}"], axis=2)

    def repeat_kv(x: str, name: str) -> str:
        group = heads // kv_heads
        if group == 1:
            return x
        wide = g.node("Unsqueeze", [x, g.const(f"{name}.ax2", [2])], [f"{name}.u"])
        shape = g.node("Shape", [wide], [f"{name}.ushape"])
        target = g.node(
            "Mul", [shape, g.const(f"{name}.repeats", [1, 1, group, 1, 1])], [f"{name}.target"]
        )
        expanded = g.node("Expand", [wide, target], [f"{name}.e"])
        return g.node(
            "Reshape", [expanded, g.const(f"{name}.merge", [0, heads, -1, hd])], [f"{name}.rep"]
        )

    k_rep = repeat_kv(k_all, f"{p}.k_all")
    v_rep = repeat_kv(v_all, f"{p}.v_all")
    k_t = g.node("Transpose", [k_rep], [f"{p}.kT"], perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [q, k_t], [f"{p}.scores"])
    scale = g.const(f"{p}.scale", [1.0 / np.sqrt(hd)], np.float32)
    scaled = g.node("Mul", [scores, scale], [f"{p}.scores_scaled"])
    masked = g.node("Add", [scaled, mask], [f"{p}.scores_masked"])
    probs = g.node("Softmax", [masked], [f"{p}.probs"], axis=-1)
    ctx = g.node("MatMul", [probs, v_rep], [f"{p}.ctx"])
    ctx_t = g.node("Transpose", [ctx], [f"{p}.ctx_bshd"], perm=[0, 2, 1, 3])
    return g.node("Reshape", [ctx_t, g.const(f"{p}.ctx.shape", [0, 0, heads * hd])], [f"{p}.attn"])


def _silu(g: _Graph, x: str, name: str) -> str:
    return g.node("Mul", [x, g.node("Sigmoid", [x], [f"{name}.sig"])], [name])


def _gelu(g: _Graph, x: str, name: str) -> str:
    """0.5 x (1 + erf(x / sqrt 2)); onnxruntime's Gelu where contrib operators are allowed."""
    if g.options.attention == "gqa":
        return g.node("Gelu", [x], [name], domain=MS_DOMAIN)
    scaled = g.node("Mul", [x, g.const(f"{name}.k", [1 / np.sqrt(2)], np.float32)], [f"{name}.z"])
    return _half_x_one_plus(g, x, g.node("Erf", [scaled], [f"{name}.erf"]), name)


def _gelu_tanh(g: _Graph, x: str, name: str) -> str:
    """0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))); onnxruntime's FastGelu where contrib
    operators are allowed."""
    if g.options.attention == "gqa":
        return g.node("FastGelu", [x], [name], domain=MS_DOMAIN)
    cube = g.node("Mul", [x, g.node("Mul", [x, x], [f"{name}.x2"])], [f"{name}.x3"])
    cubic = g.node("Mul", [cube, g.const(f"{name}.c", [0.044715], np.float32)], [f"{name}.cx3"])
    poly = g.node("Add", [x, cubic], [f"{name}.poly"])
    k = g.const(f"{name}.k", [np.sqrt(2 / np.pi)], np.float32)
    scaled = g.node("Mul", [poly, k], [f"{name}.z"])
    return _half_x_one_plus(g, x, g.node("Tanh", [scaled], [f"{name}.tanh"]), name)


def _half_x_one_plus(g: _Graph, x: str, curve: str, name: str) -> str:
    half_x = g.node("Mul", [x, g.const(f"{name}.half", [0.5], np.float32)], [f"{name}.hx"])
    one_plus = g.node("Add", [curve, g.const(f"{name}.one", [1.0], np.float32)], [f"{name}.1p"])
    return g.node("Mul", [half_x, one_plus], [name])


# The activations a DecoderConfig may name.
ACTIVATIONS: dict[str, Callable[[_Graph, str, str], str]] = {
    "silu": _silu,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
}


def _gated_mlp(g: _Graph, cfg: DecoderConfig, w: LayerWeights, x: str, p: str) -> str:
    """act(gate) * up, with gate and up as one packed linear."""
    assert w.gate is not None
    gate_up = g.linear(x, _concat([w.gate, w.up]), f"{p}.gate_up")
    split = g.weight(f"{p}.split", np.array([cfg.intermediate_size] * 2, dtype=np.int64))
    gate, up = g.node("Split", [gate_up, split], [f"{p}.gate", f"{p}.up"], axis=-1)
    return g.node("Mul", [ACTIVATIONS[cfg.activation](g, gate, f"{p}.act_gate"), up], [f"{p}.act"])


def _plain_mlp(g: _Graph, cfg: DecoderConfig, w: LayerWeights, x: str, p: str) -> str:
    """act(up + bias)."""
    up = g.add_bias(g.linear(x, w.up, f"{p}.up"), w.up_bias, f"{p}.up")
    return ACTIVATIONS[cfg.activation](g, up, f"{p}.act")


# The MLP kinds a DecoderConfig may name: each maps the normed input to the down projection's
# input.
MLPS: dict[str, Callable[[_Graph, DecoderConfig, LayerWeights, str, str], str]] = {
    "gated": _gated_mlp,
    "plain": _plain_mlp,
}
QUANT_BITS = {"q4": 4, "q8": 8}


def _quantize_as(fmt: str, x: LinearWeight) -> BlockQuant:
    """`x` in weight format `fmt` (Q4_1 blocks carried over exactly into q4 and q8)."""
    if fmt == "q4sym":
        return quantize_symmetric(x if isinstance(x, np.ndarray) else x.dequantize())
    bits = QUANT_BITS[fmt]
    return quantize(x, bits) if isinstance(x, np.ndarray) else requantize(x, bits)


def _quantized(w: LayerWeights, fmt: str) -> LayerWeights:
    """The block's linear weights in weight format `fmt`."""

    def blocks(x: LinearWeight | None) -> LinearWeight | None:
        return None if x is None else _quantize_as(fmt, x)

    return replace(
        w,
        q=blocks(w.q),
        k=blocks(w.k),
        v=blocks(w.v),
        o=blocks(w.o),
        gate=blocks(w.gate),
        up=blocks(w.up),
        down=blocks(w.down),
    )


def _concat(parts: list[LinearWeight]) -> LinearWeight:
    """Stack linears that read the same input into one wider linear (packed QKV, gate+up)."""
    if all(isinstance(p, BlockQuant) for p in parts):
        return BlockQuant.concat(parts)  # type: ignore[arg-type]
    dense = [p if isinstance(p, np.ndarray) else p.dequantize() for p in parts]
    return np.concatenate(dense, axis=0)


def save_step_graph(graph: Path, step_graph: Path, accuracy_level: int) -> None:
    """Write `graph` again as `step_graph` with its 4-bit MatMulNBits at `accuracy_level`; the
    weights stay in `graph`'s external-data file, which both graphs read."""
    model = onnx.load_model(str(graph), load_external_data=False)
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        attrs = {a.name: a for a in node.attribute}
        if attrs["bits"].i == 4:
            attrs["accuracy_level"].i = accuracy_level
    # Serialised as is: onnx.save_model would try to write the (unloaded) external data.
    step_graph.write_bytes(model.SerializeToString())


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
