"""Architectures as data: one row per family maps its weight names and hyperparameter keys.

Adding a family that shares the Llama block shape (Qwen2, Mistral, ...) is one row here; the
graph builder has no per-family branches.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerWeightNames:
    """GGUF tensor names of one decoder block; `{i}` is the block index."""

    attn_norm: str = "blk.{i}.attn_norm.weight"
    q: str = "blk.{i}.attn_q.weight"
    k: str = "blk.{i}.attn_k.weight"
    v: str = "blk.{i}.attn_v.weight"
    o: str = "blk.{i}.attn_output.weight"
    q_bias: str | None = None
    k_bias: str | None = None
    v_bias: str | None = None
    ffn_norm: str = "blk.{i}.ffn_norm.weight"
    gate: str = "blk.{i}.ffn_gate.weight"
    up: str = "blk.{i}.ffn_up.weight"
    down: str = "blk.{i}.ffn_down.weight"


@dataclass(frozen=True)
class ArchitectureSpec:
    """How to read one family's GGUF file into the common decoder shape."""

    gguf_name: str
    embed: str = "token_embd.weight"
    # Absent in the file means the LM head is tied to the embedding.
    lm_head: str = "output.weight"
    final_norm: str = "output_norm.weight"
    layer: LayerWeightNames = LayerWeightNames()
    # llama.cpp's converter reorders Q/K rows of Llama-family checkpoints for its interleaved
    # rotary kernel; we undo that so the graph uses the Hugging Face (half-split) rotary layout.
    rope_rows_permuted: bool = False
    default_rope_theta: float = 10000.0


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "llama": ArchitectureSpec(gguf_name="llama", rope_rows_permuted=True),
    "qwen2": ArchitectureSpec(
        gguf_name="qwen2",
        layer=LayerWeightNames(
            q_bias="blk.{i}.attn_q.bias",
            k_bias="blk.{i}.attn_k.bias",
            v_bias="blk.{i}.attn_v.bias",
        ),
        default_rope_theta=1000000.0,
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
