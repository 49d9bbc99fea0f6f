"""The common decoder shape every weights reader (GGUF, Hugging Face) produces for the graph
builder: hyperparameters and one block's weights as float32 numpy arrays or quantised blocks.

It holds values only; reading files and building graphs happen elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from onnx_models.architectures import TensorNames
from onnx_models.block_quant import BlockQuant
from onnx_models.manifest import KvLayout, ModelManifest

# A linear layer's weight, [out, in]: dense float32, or 4-bit or 8-bit blocks.
LinearWeight = np.ndarray | BlockQuant


class WeightsError(Exception):
    """The weights cannot be read or lack what the architecture needs."""


@dataclass(frozen=True)
class RopeScaling:
    """How rotary frequencies are stretched for long contexts: "linear" divides positions by
    `factor`; "llama3" slows the low frequencies only (Llama 3.1's scheme)."""

    kind: str
    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_context_length: int = 8192


@dataclass(frozen=True)
class DecoderConfig:
    architecture: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    context_length: int
    rope_theta: float
    norm_eps: float
    tied_embeddings: bool
    norm: str = "rms"  # "rms" (RMSNorm, weight only) or "layer" (LayerNorm with bias)
    mlp: str = "gated"  # "gated": down(act(gate) * up); "plain": down(act(up))
    activation: str = "silu"  # "silu", "gelu_tanh" or "gelu"
    rope_scaling: RopeScaling | None = None

    def manifest(self, *, shared_kv_buffer: bool, **fields: Any) -> ModelManifest:
        """The manifest of a model of this shape; `fields` are the rest (name, tokens, ...)."""
        kv = KvLayout(
            num_layers=self.num_layers,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            shared_buffer=shared_kv_buffer,
        )
        return ModelManifest(
            architecture=self.architecture,
            context_length=self.context_length,
            vocab_size=self.vocab_size,
            kv=kv,
            **fields,
        )


@dataclass(frozen=True)
class LayerWeights:
    """One block's weights, Hugging Face layout: linear weights are (out, in)."""

    attn_norm: np.ndarray
    q: LinearWeight
    k: LinearWeight
    v: LinearWeight
    o: LinearWeight
    q_bias: np.ndarray | None
    k_bias: np.ndarray | None
    v_bias: np.ndarray | None
    ffn_norm: np.ndarray
    gate: LinearWeight | None  # None for a plain (non-gated) MLP
    up: LinearWeight
    down: LinearWeight
    o_bias: np.ndarray | None = None
    up_bias: np.ndarray | None = None
    down_bias: np.ndarray | None = None
    attn_norm_bias: np.ndarray | None = None
    ffn_norm_bias: np.ndarray | None = None


def rotary_inv_freq(cfg: DecoderConfig) -> np.ndarray:
    """Rotary inverse frequencies [head_dim / 2], float64, with the config's scaling applied."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, half, dtype=np.float64) * 2 / cfg.head_dim))
    scaling = cfg.rope_scaling
    if scaling is None:
        return inv_freq
    if scaling.kind == "linear":
        return inv_freq / scaling.factor
    # llama3: long wavelengths are divided by the factor, short ones kept, the band between
    # interpolated smoothly.
    wavelen = 2 * np.pi / inv_freq
    low_wavelen = scaling.original_context_length / scaling.low_freq_factor
    high_wavelen = scaling.original_context_length / scaling.high_freq_factor
    smooth = (scaling.original_context_length / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor
    )
    blended = (1 - smooth) * inv_freq / scaling.factor + smooth * inv_freq
    scaled = np.where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq)
    between = (wavelen <= low_wavelen) & (wavelen >= high_wavelen)
    return np.where(between, blended, scaled)


class TensorSource:
    """A weights file read as the common decoder shape: subclasses say how to read a tensor by
    name (`tensor`, `has`, and `linear` where the file holds blocks to keep) and whether the
    rotary rows of Q/K need reordering; the assembly of a block is the same for every format.
    """

    config: DecoderConfig
    names: TensorNames

    def tensor(self, name: str) -> np.ndarray:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def linear(self, name: str, quantized: bool) -> LinearWeight:
        """A weight [out, in]; a format that stores quantised blocks may keep them."""
        return self.tensor(name)

    def rotary_rows(self, w: LinearWeight, heads: int) -> LinearWeight:
        """Q/K rows (or biases) in the Hugging Face half-split rotary order."""
        return w

    def _optional(self, template: str | None, i: int) -> np.ndarray | None:
        if template is None:
            return None
        name = template.format(i=i)
        return self.tensor(name) if self.has(name) else None

    def layer(self, i: int, quantized: bool = False) -> LayerWeights:
        """Block i's weights; `quantized` keeps linear weights the file stores as blocks."""
        names = self.names.layer
        cfg = self.config

        def get(template: str) -> np.ndarray:
            return self.tensor(template.format(i=i))

        def lin(template: str) -> LinearWeight:
            return self.linear(template.format(i=i), quantized)

        def bias(template: str | None) -> np.ndarray | None:
            return self._optional(template, i)

        q_bias = bias(names.q_bias)
        k_bias = bias(names.k_bias)
        return LayerWeights(
            attn_norm=get(names.attn_norm),
            q=self.rotary_rows(lin(names.q), cfg.num_heads),
            k=self.rotary_rows(lin(names.k), cfg.num_kv_heads),
            v=lin(names.v),
            o=lin(names.o),
            q_bias=None if q_bias is None else self.rotary_rows(q_bias, cfg.num_heads),
            k_bias=None if k_bias is None else self.rotary_rows(k_bias, cfg.num_kv_heads),
            v_bias=bias(names.v_bias),
            ffn_norm=get(names.ffn_norm),
            gate=lin(names.gate) if cfg.mlp == "gated" and names.gate else None,
            up=lin(names.up),
            down=lin(names.down),
            o_bias=bias(names.o_bias),
            up_bias=bias(names.up_bias),
            down_bias=bias(names.down_bias),
            attn_norm_bias=bias(names.attn_norm_bias),
            ffn_norm_bias=bias(names.ffn_norm_bias),
        )

    def embedding(self) -> np.ndarray:
        return self.tensor(self.names.embed)

    def lm_head(self) -> np.ndarray | None:
        return None if self.config.tied_embeddings else self.tensor(self.names.lm_head)

    def final_norm(self) -> np.ndarray:
        return self.tensor(self.names.final_norm)

    def final_norm_bias(self) -> np.ndarray | None:
        name = self.names.final_norm_bias
        return self.tensor(name) if name and self.has(name) else None


class DecoderWeights(Protocol):
    """What the model builder reads from a weights source (GgufWeights, HfWeights)."""

    config: DecoderConfig

    def layer(self, i: int, quantized: bool = False) -> LayerWeights: ...
    def embedding(self) -> np.ndarray: ...
    def final_norm(self) -> np.ndarray: ...
    def final_norm_bias(self) -> np.ndarray | None: ...
    def lm_head(self) -> np.ndarray | None: ...
