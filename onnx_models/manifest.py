"""The manifest: everything the engine and the prompt builder need to know about a built model.

A model family is data, not code: FIM tokens, stop tokens, context size and the KV-cache
layout live here, written by the builder and read by everything else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 2  # 2: graph takes num_logits, returns [batch, num_logits, vocab]


class ManifestError(Exception):
    """The model folder has no readable manifest, or one this version cannot use."""


@dataclass(frozen=True)
class FimSpec:
    """Fill-in-the-middle tokens and the order the model was trained with ("psm" or "spm")."""

    prefix: str
    suffix: str
    middle: str
    order: str = "psm"


@dataclass(frozen=True)
class KvLayout:
    """Shape of one layer's cache: (batch, kv_heads, sequence, head_dim), shared past/present."""

    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype: str = "float32"
    # True: past and present are one preallocated buffer (GroupQueryAttention); False: the
    # graph returns a longer present tensor each call (the portable graph).
    shared_buffer: bool = True
    past_key_name: str = "past_key.{layer}"
    past_value_name: str = "past_value.{layer}"
    present_key_name: str = "present_key.{layer}"
    present_value_name: str = "present_value.{layer}"


@dataclass(frozen=True)
class ModelManifest:
    name: str
    family: str
    architecture: str
    context_length: int
    vocab_size: int
    kv: KvLayout
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]
    # Names of special tokens the prompt builder may use (e.g. "file_sep", "filename", "repo_name").
    special_tokens: dict[str, str] = field(default_factory=dict)
    fim: FimSpec | None = None
    stop_tokens: tuple[str, ...] = ()
    graph_file: str = "model.onnx"
    # The graph for short passes (GraphOptions.step_accuracy_level), on graph_file's weights.
    step_graph_file: str | None = None
    tokenizer_file: str = "tokenizer.json"
    source: dict[str, str] = field(default_factory=dict)
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, folder: Path) -> Path:
        path = folder / MANIFEST_FILE
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> ModelManifest:
        path = folder / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ManifestError(f"no {MANIFEST_FILE} in model folder {folder}") from exc
        except (OSError, ValueError) as exc:
            raise ManifestError(f"cannot read {path}: {exc}") from exc
        if raw.get("manifest_version") != MANIFEST_VERSION:
            raise ManifestError(
                f"{path} has manifest version {raw.get('manifest_version')!r}, "
                f"this nexttoken reads version {MANIFEST_VERSION}; rebuild the model"
            )
        try:
            fim = FimSpec(**raw["fim"]) if raw.get("fim") else None
            return cls(
                name=raw["name"],
                family=raw["family"],
                architecture=raw["architecture"],
                context_length=int(raw["context_length"]),
                vocab_size=int(raw["vocab_size"]),
                kv=KvLayout(**raw["kv"]),
                bos_token_id=raw.get("bos_token_id"),
                eos_token_ids=tuple(raw["eos_token_ids"]),
                special_tokens=dict(raw.get("special_tokens", {})),
                fim=fim,
                stop_tokens=tuple(raw.get("stop_tokens", ())),
                graph_file=raw.get("graph_file", "model.onnx"),
                step_graph_file=raw.get("step_graph_file"),
                tokenizer_file=raw.get("tokenizer_file", "tokenizer.json"),
                source=dict(raw.get("source", {})),
                manifest_version=raw["manifest_version"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{path} is missing or has a bad field: {exc}") from exc
