"""Architectures as data: one row per family maps its weight names (in GGUF files and in
Hugging Face checkpoints) and the block's shape (norm kind, MLP kind).

Adding a family that shares a known block shape (Mistral, ...) is one row here; the graph
builder has no per-family branches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LayerWeightNames:
    """Tensor names of one decoder block; `{i}` is the block index. A name that is None, or
    absent from the file, means the block has no such tensor (e.g. no bias)."""

    attn_norm: str
    q: str
    k: str
    v: str
    o: str
    ffn_norm: str
    gate: str | None
    up: str
    down: str
    q_bias: str | None = None
    k_bias: str | None = None
    v_bias: str | None = None
    o_bias: str | None = None
    up_bias: str | None = None
    down_bias: str | None = None
    attn_norm_bias: str | None = None
    ffn_norm_bias: str | None = None


@dataclass(frozen=True)
class TensorNames:
    """Where one file format keeps the model's tensors."""

    embed: str
    lm_head: str  # absent in the file means the LM head is tied to the embedding
    final_norm: str
    layer: LayerWeightNames
    final_norm_bias: str | None = None


GGUF_NAMES = TensorNames(
    embed="token_embd.weight",
    lm_head="output.weight",
    final_norm="output_norm.weight",
    final_norm_bias="output_norm.bias",
    layer=LayerWeightNames(
        attn_norm="blk.{i}.attn_norm.weight",
        q="blk.{i}.attn_q.weight",
        k="blk.{i}.attn_k.weight",
        v="blk.{i}.attn_v.weight",
        o="blk.{i}.attn_output.weight",
        ffn_norm="blk.{i}.ffn_norm.weight",
        gate="blk.{i}.ffn_gate.weight",
        up="blk.{i}.ffn_up.weight",
        down="blk.{i}.ffn_down.weight",
        q_bias="blk.{i}.attn_q.bias",
        k_bias="blk.{i}.attn_k.bias",
        v_bias="blk.{i}.attn_v.bias",
        o_bias="blk.{i}.attn_output.bias",
        up_bias="blk.{i}.ffn_up.bias",
        down_bias="blk.{i}.ffn_down.bias",
        attn_norm_bias="blk.{i}.attn_norm.bias",
        ffn_norm_bias="blk.{i}.ffn_norm.bias",
    ),
)

_HF_BLOCK = "model.layers.{i}"
HF_GATED_NAMES = TensorNames(
    embed="model.embed_tokens.weight",
    lm_head="lm_head.weight",
    final_norm="model.norm.weight",
    final_norm_bias="model.norm.bias",
    layer=LayerWeightNames(
        attn_norm=f"{_HF_BLOCK}.input_layernorm.weight",
        q=f"{_HF_BLOCK}.self_attn.q_proj.weight",
        k=f"{_HF_BLOCK}.self_attn.k_proj.weight",
        v=f"{_HF_BLOCK}.self_attn.v_proj.weight",
        o=f"{_HF_BLOCK}.self_attn.o_proj.weight",
        ffn_norm=f"{_HF_BLOCK}.post_attention_layernorm.weight",
        gate=f"{_HF_BLOCK}.mlp.gate_proj.weight",
        up=f"{_HF_BLOCK}.mlp.up_proj.weight",
        down=f"{_HF_BLOCK}.mlp.down_proj.weight",
        q_bias=f"{_HF_BLOCK}.self_attn.q_proj.bias",
        k_bias=f"{_HF_BLOCK}.self_attn.k_proj.bias",
        v_bias=f"{_HF_BLOCK}.self_attn.v_proj.bias",
        o_bias=f"{_HF_BLOCK}.self_attn.o_proj.bias",
        up_bias=f"{_HF_BLOCK}.mlp.up_proj.bias",
        down_bias=f"{_HF_BLOCK}.mlp.down_proj.bias",
        attn_norm_bias=f"{_HF_BLOCK}.input_layernorm.bias",
        ffn_norm_bias=f"{_HF_BLOCK}.post_attention_layernorm.bias",
    ),
)
HF_PLAIN_MLP_NAMES = replace(
    HF_GATED_NAMES,
    layer=replace(
        HF_GATED_NAMES.layer,
        gate=None,
        up=f"{_HF_BLOCK}.mlp.c_fc.weight",
        up_bias=f"{_HF_BLOCK}.mlp.c_fc.bias",
        down=f"{_HF_BLOCK}.mlp.c_proj.weight",
        down_bias=f"{_HF_BLOCK}.mlp.c_proj.bias",
    ),
)


@dataclass(frozen=True)
class ArchitectureSpec:
    """How to read one family's weights into the common decoder shape."""

    name: str  # GGUF's general.architecture and Hugging Face's model_type
    hf: TensorNames
    gguf: TensorNames = GGUF_NAMES
    norm: str = "rms"  # "rms" or "layer" (LayerNorm with bias)
    mlp: str = "gated"  # "gated" (gate, up, down) or "plain" (up, down)
    # Norm epsilon keys that differ between families (config.json; GGUF after "<name>.").
    hf_norm_eps_key: str = "rms_norm_eps"
    gguf_norm_eps_key: str = "attention.layer_norm_rms_epsilon"
    # llama.cpp's converter reorders Q/K rows of Llama-family checkpoints for its interleaved
    # rotary kernel; we undo that so the graph uses the Hugging Face (half-split) rotary layout.
    rope_rows_permuted: bool = False
    default_rope_theta: float = 10000.0
    default_activation: str = "silu"


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "llama": ArchitectureSpec(name="llama", hf=HF_GATED_NAMES, rope_rows_permuted=True),
    "qwen2": ArchitectureSpec(name="qwen2", hf=HF_GATED_NAMES, default_rope_theta=1000000.0),
    "starcoder2": ArchitectureSpec(
        name="starcoder2",
        hf=HF_PLAIN_MLP_NAMES,
        norm="layer",
        mlp="plain",
        hf_norm_eps_key="norm_epsilon",
        gguf_norm_eps_key="attention.layer_norm_epsilon",
        default_activation="gelu_tanh",
    ),
}


class UnsupportedArchitectureError(Exception):
    """The weights are of a family that has no row in ARCHITECTURES yet."""


def architecture(name: str) -> ArchitectureSpec:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise UnsupportedArchitectureError(
            f"architecture {name!r} is not supported yet (known: {known})"
        ) from None
