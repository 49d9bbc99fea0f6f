"""Read a local Hugging Face checkpoint folder (config.json, *.safetensors) into the common
decoder shape, as float32 numpy arrays, without PyTorch.

Hugging Face's Q/K rows are already in the half-split rotary layout the graph uses, so unlike
GGUF nothing is permuted. The tokenizer is read elsewhere (hf_manifest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open

from onnx_models.architectures import ArchitectureSpec, UnsupportedArchitectureError, architecture
from onnx_models.decoder_weights import (
    DecoderConfig,
    RopeScaling,
    TensorSource,
    WeightsError,
)

CONFIG_FILE = "config.json"
SHARD_INDEX_FILE = "model.safetensors.index.json"
# Hugging Face activation names -> the graph's.
ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_new": "gelu_tanh",
    "gelu": "gelu",
}
# Rope types whose frequencies rotary_inv_freq reproduces exactly.
SUPPORTED_ROPE = ("default", "linear", "llama3")


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{path.parent} has no {path.name}") from None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {path}: {exc}") from exc


def _bf16_tensor(path: Path, name: str) -> np.ndarray:
    """numpy has no bfloat16: read the raw bits from the file and widen them to float32."""
    with path.open("rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        entry = json.loads(fh.read(header_len))[name]
    start, end = entry["data_offsets"]
    raw = np.fromfile(
        path, dtype=np.uint16, count=(end - start) // 2, offset=8 + header_len + start
    )
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])


def _rope_scaling(raw: dict | None, folder: Path) -> RopeScaling | None:
    kind = (raw or {}).get("rope_type") or (raw or {}).get("type") or "default"
    if kind not in SUPPORTED_ROPE:
        raise WeightsError(
            f"{folder.name}/config.json asks for rope scaling {kind!r}, which nexttoken cannot "
            f"reproduce (supported: {', '.join(SUPPORTED_ROPE)}); remove rope_scaling from "
            f"config.json to run within the original context length"
        )
    if kind == "default":
        return None
    assert raw is not None
    return RopeScaling(
        kind=kind,
        factor=float(raw["factor"]),
        low_freq_factor=float(raw.get("low_freq_factor", 1.0)),
        high_freq_factor=float(raw.get("high_freq_factor", 4.0)),
        original_context_length=int(raw.get("original_max_position_embeddings", 8192)),
    )


class HfWeights(TensorSource):
    """Lazy access to a checkpoint folder's config and tensors (read on demand)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        if not folder.is_dir():
            raise WeightsError(f"{folder} is not a folder")
        self.raw_config = read_json(folder / CONFIG_FILE)
        model_type = self.raw_config.get("model_type", "")
        try:
            self.spec: ArchitectureSpec = architecture(model_type)
        except UnsupportedArchitectureError as exc:
            raise UnsupportedArchitectureError(f"{folder.name}: model_type {exc}") from None
        self.names = self.spec.hf
        self._files = self._tensor_files()
        try:
            self.config = self._read_config()
        except KeyError as exc:
            raise WeightsError(f"{folder.name}/config.json has no {exc}") from None

    def _tensor_files(self) -> dict[str, Path]:
        index = self.folder / SHARD_INDEX_FILE
        if index.is_file():
            weight_map = read_json(index).get("weight_map", {})
            files = {name: self.folder / file for name, file in weight_map.items()}
            missing = sorted({p.name for p in files.values() if not p.is_file()})
            if missing:
                raise WeightsError(f"{index.name} names {', '.join(missing)}, which are missing")
            return files
        shards = sorted(self.folder.glob("*.safetensors"))
        if not shards:
            raise WeightsError(
                f"{self.folder} has no *.safetensors weights (PyTorch .bin checkpoints are not "
                f"read: convert them with transformers' save_pretrained first)"
            )
        files: dict[str, Path] = {}
        for shard in shards:
            with safe_open(shard, framework="np") as fh:
                files.update(dict.fromkeys(fh.keys(), shard))
        return files

    def _read_config(self) -> DecoderConfig:
        c = self.raw_config
        hidden = int(c["hidden_size"])
        heads = int(c["num_attention_heads"])
        rope = c.get("rope_parameters") or {}
        act = c.get("hidden_act", c.get("hidden_activation", self.spec.default_activation))
        if act not in ACTIVATIONS and act not in ACTIVATIONS.values():
            raise WeightsError(f"{self.folder.name}: activation {act!r} is not supported")
        if float(rope.get("partial_rotary_factor", c.get("partial_rotary_factor", 1.0))) != 1.0:
            raise WeightsError(f"{self.folder.name}: partial rotary embeddings are not supported")
        if c.get("mlp_bias"):
            raise WeightsError(f"{self.folder.name}: biases in a gated MLP are not supported")
        context = int(c.get("max_position_embeddings", 2048))
        window = c.get("sliding_window") if c.get("use_sliding_window", True) else None
        if window:
            # Within the window sliding attention is full attention: serve that much context.
            context = min(context, int(window))
        return DecoderConfig(
            architecture=self.spec.name,
            num_layers=int(c["num_hidden_layers"]),
            hidden_size=hidden,
            intermediate_size=int(c["intermediate_size"]),
            num_heads=heads,
            num_kv_heads=int(c.get("num_key_value_heads") or heads),
            head_dim=int(c.get("head_dim") or hidden // heads),
            vocab_size=int(self._shape(self.names.embed)[0]),
            context_length=context,
            rope_theta=float(
                rope.get("rope_theta", c.get("rope_theta", self.spec.default_rope_theta))
            ),
            norm_eps=float(c[self.spec.hf_norm_eps_key]),
            tied_embeddings=self.names.lm_head not in self._files
            or bool(c.get("tie_word_embeddings", False)),
            norm=self.spec.norm,
            mlp=self.spec.mlp,
            activation=ACTIVATIONS.get(act, act),
            rope_scaling=_rope_scaling(rope or c.get("rope_scaling"), self.folder),
        )

    def _shape(self, name: str) -> list[int]:
        with safe_open(self._file_of(name), framework="np") as fh:
            return list(fh.get_slice(name).get_shape())

    def _file_of(self, name: str) -> Path:
        try:
            return self._files[name]
        except KeyError:
            raise WeightsError(f"{self.folder.name} has no tensor {name!r}") from None

    def tensor(self, name: str) -> np.ndarray:
        path = self._file_of(name)
        with safe_open(path, framework="np") as fh:
            if fh.get_slice(name).get_dtype() == "BF16":
                return _bf16_tensor(path, name)
            array = fh.get_tensor(name)
        return np.ascontiguousarray(array, dtype=np.float32)

    def has(self, name: str) -> bool:
        return name in self._files
