"""A shipped LoRA adapter, merged into a model's weights when its folder is built (numpy only).

An adapter folder holds `adapter.json` (rank, alpha, targets, the FIM token mapping, training
facts, the base weights' sha256) and `adapter.safetensors` (float16): for each adapted linear
layer `layers.{i}.{proj}.lora_A` [rank, in] and `.lora_B` [out, rank], so that
W' = W + (alpha / rank) B A; and `embed_tokens.rows` [n, hidden], the trained embedding rows of
the special tokens reused as FIM tokens (tied to the LM head, so its rows too).
The merged weights are float32; for a q4 or q8 graph the graph builder quantises them afresh.
It never imports PyTorch; training and export live in onnx_models.train.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from onnx_models.decoder_weights import DecoderConfig, DecoderWeights, LayerWeights
from onnx_models.manifest import FimSpec, ModelManifest

ADAPTER_CONFIG = "adapter.json"
ADAPTER_WEIGHTS = "adapter.safetensors"
# LayerWeights field of each Hugging Face projection name.
PROJECTIONS = {
    "q_proj": "q",
    "k_proj": "k",
    "v_proj": "v",
    "o_proj": "o",
    "gate_proj": "gate",
    "up_proj": "up",
    "down_proj": "down",
}
_DTYPES = {"F16": np.float16, "F32": np.float32}


class AdapterError(Exception):
    """The adapter folder is missing, malformed or made for other base weights."""


@dataclass(frozen=True)
class FimTokenRole:
    """A special token of the base vocabulary that the adapter trained as a FIM token."""

    id: int
    reused: str  # its spelling in the base tokenizer
    spelling: str  # its spelling in the built tokenizer.json and manifest


@dataclass(frozen=True)
class AdapterConfig:
    rank: int
    alpha: float
    targets: tuple[str, ...]
    fim_prefix: FimTokenRole
    fim_suffix: FimTokenRole
    fim_middle: FimTokenRole
    fim_order: str
    base_sha256: str  # of the GGUF file the adapter was trained on
    training_tokens: int

    @property
    def fim_roles(self) -> tuple[FimTokenRole, FimTokenRole, FimTokenRole]:
        return self.fim_prefix, self.fim_suffix, self.fim_middle

    @property
    def fim(self) -> FimSpec:
        p, s, m = (role.spelling for role in self.fim_roles)
        return FimSpec(prefix=p, suffix=s, middle=m, order=self.fim_order)

    def to_json(self) -> str:
        raw = {k: v for k, v in self.__dict__.items() if not k.startswith("fim_")}
        raw["targets"] = list(self.targets)
        raw["fim_order"] = self.fim_order
        for role in ("prefix", "suffix", "middle"):
            raw[f"fim_{role}"] = getattr(self, f"fim_{role}").__dict__
        return json.dumps(raw, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AdapterConfig:
        raw = json.loads(text)
        roles = {
            f"fim_{r}": FimTokenRole(**raw.pop(f"fim_{r}")) for r in ("prefix", "suffix", "middle")
        }
        return cls(**{**raw, **roles, "targets": tuple(raw["targets"])})


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file (8-byte header length, JSON header, raw data)."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        out[name] = np.frombuffer(data[base + start : base + end], dtype=dtype).reshape(
            info["shape"]
        )
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    names = {np.dtype(v): k for k, v in _DTYPES.items()}
    header: dict[str, object] = {}
    offset = 0
    blobs = []
    for name, array in sorted(tensors.items()):
        blob = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": names[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # keeps the data 8-byte aligned
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


@dataclass(frozen=True)
class Adapter:
    config: AdapterConfig
    tensors: dict[str, np.ndarray]

    @classmethod
    def load(cls, folder: Path) -> Adapter:
        try:
            config = AdapterConfig.from_json((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            tensors = read_safetensors(folder / ADAPTER_WEIGHTS)
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise AdapterError(f"cannot read the adapter in {folder}: {exc}") from exc
        return cls(config, tensors)

    @staticmethod
    def identity(folder: Path) -> str:
        """Names the adapter's weights in a manifest, so a model built from older ones is
        rebuilt: the folder's name and the sha256 of adapter.safetensors, shortened."""
        digest = hashlib.sha256((folder / ADAPTER_WEIGHTS).read_bytes()).hexdigest()
        return f"{folder.name}@{digest[:16]}"

    def check_base(self, weights_file: Path) -> None:
        """Refuse base weights other than those the adapter was trained on."""
        digest = hashlib.sha256()
        with weights_file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        if self.config.base_sha256 and digest.hexdigest() != self.config.base_sha256:
            raise AdapterError(
                f"{weights_file.name} is not the file this adapter was trained on "
                f"(sha256 {self.config.base_sha256})"
            )

    @property
    def scale(self) -> float:
        return self.config.alpha / self.config.rank

    def delta(self, layer: int, projection: str) -> np.ndarray | None:
        """(alpha / rank) B A for one projection, or None when it is not adapted."""
        a = self.tensors.get(f"layers.{layer}.{projection}.lora_A")
        b = self.tensors.get(f"layers.{layer}.{projection}.lora_B")
        if a is None or b is None:
            return None
        return self.scale * (b.astype(np.float32) @ a.astype(np.float32))

    def merge_layer(self, layer: int, weights: LayerWeights) -> LayerWeights:
        """The block's float32 weights with the adapter's deltas added."""
        changes = {}
        for projection, field in PROJECTIONS.items():
            delta = self.delta(layer, projection)
            if delta is None:
                continue
            w = getattr(weights, field)
            if w is None or w.shape != delta.shape:
                raise AdapterError(f"layer {layer} {projection}: adapter does not fit the base")
            changes[field] = w + delta
        return replace(weights, **changes)

    def merge_embedding(self, embedding: np.ndarray) -> np.ndarray:
        rows = self.tensors["embed_tokens.rows"].astype(np.float32)
        merged = embedding.copy()
        merged[[role.id for role in self.config.fim_roles]] = rows
        return merged


class AdaptedWeights:
    """Base weights as the adapter leaves them, in the shape model_builder reads."""

    def __init__(self, base: DecoderWeights, adapter: Adapter) -> None:
        if not base.config.tied_embeddings:
            raise AdapterError("adapters with FIM token rows need tied embeddings")
        self.base = base
        self.adapter = adapter

    @property
    def config(self) -> DecoderConfig:
        return self.base.config

    def layer(self, i: int, quantized: bool = False) -> LayerWeights:
        # Always float32: the base's blocks no longer hold the merged values, so the graph
        # builder quantises the merged weights afresh for a q4 or q8 graph.
        return self.adapter.merge_layer(i, self.base.layer(i, quantized=False))

    def embedding(self) -> np.ndarray:
        return self.adapter.merge_embedding(self.base.embedding())

    def lm_head(self) -> np.ndarray | None:
        return None  # tied: the merged embedding

    def final_norm(self) -> np.ndarray:
        return self.base.final_norm()

    def final_norm_bias(self) -> np.ndarray | None:
        return self.base.final_norm_bias()


def write_adapted_tokenizer(tokenizer: Tokenizer, config: AdapterConfig, path: Path) -> None:
    """Save `tokenizer` with the reused tokens spelled as their FIM roles (ids unchanged), so
    the manifest and the prompt builder use the FIM tokens like any FIM model's."""
    spelling = {role.reused: role.spelling for role in config.fim_roles}
    raw = json.loads(tokenizer.to_str())
    for added in raw.get("added_tokens", []):
        if added["content"] in spelling:
            added["content"] = spelling[added["content"]]
    vocab = raw["model"]["vocab"]
    for old, new in spelling.items():
        if old in vocab:
            vocab[new] = vocab.pop(old)
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")


def adapt_manifest(manifest: ModelManifest, config: AdapterConfig) -> ModelManifest:
    """The manifest of the merged model: its FIM tokens, under their new spelling also among
    the stop tokens (a FIM token never belongs in a middle)."""
    spelling = {role.reused: role.spelling for role in config.fim_roles}
    stops = tuple(spelling.get(t, t) for t in manifest.stop_tokens)
    return replace(manifest, fim=config.fim, stop_tokens=stops)
