"""Read a GGUF file into float32 numpy weights and a decoder config, without PyTorch.

Quantised tensors (Q4_1, Q8_0, ...) are dequantised with the `gguf` package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize

from onnx_models.architectures import ArchitectureSpec, architecture
from onnx_models.block_quant import BlockQuant, from_q4_1_bytes
from onnx_models.decoder_weights import (
    DecoderConfig,
    LinearWeight,
    TensorSource,
    WeightsError,
)


class GgufWeights(TensorSource):
    """Lazy access to a GGUF file's config, tensors (dequantised on demand) and metadata."""

    def __init__(self, path: Path) -> None:
        try:
            self.reader = GGUFReader(str(path))
        except Exception as exc:  # gguf raises ValueError/struct errors of many kinds
            raise WeightsError(f"{path} is not a readable GGUF file: {exc}") from exc
        self.path = path
        self._tensors = {t.name: t for t in self.reader.tensors}
        self.spec: ArchitectureSpec = architecture(self.field("general.architecture"))
        self.names = self.spec.gguf
        self.config = self._read_config()

    def field(self, key: str, default: object = None) -> object:
        f = self.reader.fields.get(key)
        if f is None:
            if default is None:
                raise WeightsError(f"{self.path.name} has no metadata key {key!r}")
            return default
        return f.contents()

    def _read_config(self) -> DecoderConfig:
        arch = self.spec.name
        hidden = int(self.field(f"{arch}.embedding_length"))
        heads = int(self.field(f"{arch}.attention.head_count"))
        vocab = int(self._tensors[self.names.embed].shape[-1])
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
            norm_eps=float(self.field(f"{arch}.{self.spec.gguf_norm_eps_key}")),
            tied_embeddings=self.names.lm_head not in self._tensors,
            norm=self.spec.norm,
            mlp=self.spec.mlp,
            activation=self.spec.default_activation,
        )

    def tensor(self, name: str) -> np.ndarray:
        try:
            t = self._tensors[name]
        except KeyError:
            raise WeightsError(f"{self.path.name} has no tensor {name!r}") from None
        array = dequantize(t.data, t.tensor_type)
        return np.ascontiguousarray(array, dtype=np.float32)

    def linear(self, name: str, quantized: bool) -> LinearWeight:
        """A weight [out, in]; with `quantized`, Q4_1 tensors as their 4-bit blocks, bit for
        bit (the graph builder quantises the rest)."""
        t = self._tensors.get(name)
        if quantized and t is not None and t.tensor_type == GGMLQuantizationType.Q4_1:
            return from_q4_1_bytes(t.data, t.data.shape[0])
        return self.tensor(name)

    def has(self, name: str) -> bool:
        return name in self._tensors

    def rotary_rows(self, w: LinearWeight, heads: int) -> LinearWeight:
        # Inverse of llama.cpp's reorder: rows (head, pair, 2) -> (head, 2, pair).
        if not self.spec.rope_rows_permuted:
            return w
        rows = w.shape[0]
        order = np.arange(rows).reshape(heads, rows // heads // 2, 2).swapaxes(1, 2).reshape(-1)
        return w.rows(order) if isinstance(w, BlockQuant) else w[order]
