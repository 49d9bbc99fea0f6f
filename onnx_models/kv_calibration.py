"""Static scales for an int8 KV cache, from the keys and values the model computes on code.

onnxruntime's GroupQueryAttention keeps an int8 cache symmetric with one fixed scale per
layer, head and channel (no per-token scales on the CPU), so the scales are measured first:
the float cache is filled with real source, and each channel's largest |key| and |value|, with
headroom, maps to 127; anything larger saturates. The text is the Python standard library's own
source: the one body of code every machine that runs nexttoken has.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np

from onnx_models.engine import Engine
from onnx_models.kv_cache import cache_names

HEADROOM = 1.25  # unseen text may go past the calibration's largest value
WINDOW = 1024  # tokens a file contributes
FILES = 12


def calibration_files(count: int = FILES) -> list[Path]:
    """`count` standard-library modules spread over the alphabet: the same files every build,
    so rebuilding on one machine gives the same scales."""
    modules = sorted(p for p in Path(sysconfig.get_path("stdlib")).glob("*.py") if p.is_file())
    if not modules:
        raise RuntimeError("no Python standard library sources to calibrate the KV cache on")
    step = max(1, len(modules) // count)
    return modules[::step][:count]


def kv_scales(model_dir: Path, files: list[Path] | None = None) -> np.ndarray:
    """Per-channel scales [layers, 2 (key, value), kv_heads, head_dim] for the model in
    `model_dir`, whose graph keeps a float32 cache."""
    engine = Engine.load(model_dir)
    kv = engine.manifest.kv
    peak = np.zeros((kv.num_layers, 2, kv.num_kv_heads, kv.head_dim), dtype=np.float32)
    names = [past for past, _ in cache_names(kv)]
    for path in files or calibration_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        ids = engine.tokenizer.encode(text).ids[: min(WINDOW, engine.manifest.context_length - 1)]
        if len(ids) < 2:
            continue
        engine.rewind(0)
        engine.prefill(ids)
        for index, name in enumerate(names):
            values = engine.kv.values[name].numpy()[0, :, : len(ids)]  # [heads, tokens, dim]
            layer, kind = divmod(index, 2)
            np.maximum(peak[layer, kind], np.abs(values).max(axis=1), out=peak[layer, kind])
    if not peak.any():
        raise RuntimeError("KV calibration saw no text")
    # A channel that stayed at zero still needs a usable step.
    return np.maximum(peak * HEADROOM / 127, np.finfo(np.float32).tiny)
