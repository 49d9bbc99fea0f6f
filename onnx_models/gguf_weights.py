"""Read a GGUF file into float32 numpy weights and a decoder config, without PyTorch.

Quantised tensors (Q4_1, Q8_0, ...) are dequantised with the `gguf` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize

from onnx_models.architectures import ArchitectureSpec, architecture
from onnx_models.block_quant import BlockQuant, from_q4_1_bytes, quantize

# A linear layer's weight, [out, in]: dense float32 or 4-bit blocks.
LinearWeight = np.ndarray | BlockQuant


class WeightsError(Exception):
    """The weights file cannot be read or lacks what the architecture needs."""


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
    rms_norm_eps: float
    tied_embeddings: bool


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
    gate: LinearWeight
    up: LinearWeight
    down: LinearWeight


class GgufWeights:
    """Lazy access to a GGUF file's config, tensors (dequantised on demand) and metadata."""

    def __init__(self, path: Path) -> None:
        try:
            self.reader = GGUFReader(str(path))
        except Exception as exc:  # gguf raises ValueError/struct errors of many kinds
            raise WeightsError(f"{path} is not a readable GGUF file: {exc}") from exc
        self.path = path
        self._tensors = {t.name: t for t in self.reader.tensors}
        self.spec: ArchitectureSpec = architecture(self.field("general.architecture"))
        self.config = self._read_config()

    def field(self, key: str, default: object = None) -> object:
        f = self.reader.fields.get(key)
        if f is None:
            if default is None:
                raise WeightsError(f"{self.path.name} has no metadata key {key!r}")
            return default
        return f.contents()

    def _read_config(self) -> DecoderConfig:
        arch = self.spec.gguf_name
        hidden = int(self.field(f"{arch}.embedding_length"))
        heads = int(self.field(f"{arch}.attention.head_count"))
        vocab = int(self._tensors[self.spec.embed].shape[-1])
        return DecoderConfig(
            architecture=arch,
            num_layers=int(self.field(f"{arch}.block_count")),
            hidden_size=hidden,
            intermediate_size=int(self.field(f"{arch}.feed_forward_length")),
            num_heads=heads,
            num_kv_heads=int(self.field(f"{arch}.attention.head_count_kv", heads)),
            head_dim=int(self.field(f"{arch}.rope.dimension_count", hidden // heads)),
            vocab_size=vocab,
            context_length=int(self.field(f"{arch}.context_length")),
            rope_theta=float(self.field(f"{arch}.rope.freq_base", self.spec.default_rope_theta)),
            rms_norm_eps=float(self.field(f"{arch}.attention.layer_norm_rms_epsilon")),
            tied_embeddings=self.spec.lm_head not in self._tensors,
        )

    def tensor(self, name: str) -> np.ndarray:
        try:
            t = self._tensors[name]
        except KeyError:
            raise WeightsError(f"{self.path.name} has no tensor {name!r}") from None
        array = dequantize(t.data, t.tensor_type)
        return np.ascontiguousarray(array, dtype=np.float32)

    def linear(self, name: str, quantized: bool) -> LinearWeight:
        """A weight [out, in]; with `quantized`, as 4-bit blocks (Q4_1 tensors bit for bit)."""
        if not quantized:
            return self.tensor(name)
        t = self._tensors.get(name)
        if t is not None and t.tensor_type == GGMLQuantizationType.Q4_1:
            return from_q4_1_bytes(t.data, t.data.shape[0])
        return quantize(self.tensor(name))

    def _optional(self, template: str | None, i: int) -> np.ndarray | None:
        if template is None:
            return None
        name = template.format(i=i)
        return self.tensor(name) if name in self._tensors else None

    def _unpermute(self, w: LinearWeight, heads: int) -> LinearWeight:
        # Inverse of llama.cpp's reorder: rows (head, pair, 2) -> (head, 2, pair).
        if not self.spec.rope_rows_permuted:
            return w
        rows = w.shape[0]
        order = np.arange(rows).reshape(heads, rows // heads // 2, 2).swapaxes(1, 2).reshape(-1)
        return w.rows(order) if isinstance(w, BlockQuant) else w[order]

    def layer(self, i: int, quantized: bool = False) -> LayerWeights:
        """Block i's weights; `quantized` gives its linear weights as 4-bit blocks."""
        names = self.spec.layer
        cfg = self.config

        def get(template: str) -> np.ndarray:
            return self.tensor(template.format(i=i))

        def lin(template: str) -> LinearWeight:
            return self.linear(template.format(i=i), quantized)

        q_bias = self._optional(names.q_bias, i)
        k_bias = self._optional(names.k_bias, i)
        return LayerWeights(
            attn_norm=get(names.attn_norm),
            q=self._unpermute(lin(names.q), cfg.num_heads),
            k=self._unpermute(lin(names.k), cfg.num_kv_heads),
            v=lin(names.v),
            o=lin(names.o),
            q_bias=None if q_bias is None else self._unpermute(q_bias, cfg.num_heads),
            k_bias=None if k_bias is None else self._unpermute(k_bias, cfg.num_kv_heads),
            v_bias=self._optional(names.v_bias, i),
            ffn_norm=get(names.ffn_norm),
            gate=lin(names.gate),
            up=lin(names.up),
            down=lin(names.down),
        )

    def embedding(self) -> np.ndarray:
        return self.tensor(self.spec.embed)

    def lm_head(self) -> np.ndarray | None:
        return None if self.config.tied_embeddings else self.tensor(self.spec.lm_head)

    def final_norm(self) -> np.ndarray:
        return self.tensor(self.spec.final_norm)
