"""Turn a peft checkpoint of onnx_models.train.lora into the adapter nexttoken ships.

    python -m onnx_models.train.export ~/.cache/nexttoken/train/smollm2-fim/latest \\
        onnx_models/adapters/smollm2-fim

Writes float16 `adapter.safetensors` and `adapter.json` (see onnx_models/adapter.py).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from onnx_models.adapter import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    AdapterConfig,
    FimTokenRole,
    read_safetensors,
    write_safetensors,
)
from onnx_models.install import sha256_of
from onnx_models.train.fim import REUSED_FIM
from onnx_models.train.lora import GGUF

FIM_SPELLINGS = {"prefix": "<fim_prefix>", "suffix": "<fim_suffix>", "middle": "<fim_middle>"}
_LORA_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+_proj)\.(lora_[AB])\.weight$")
_TOKENS_KEY = "embed_tokens.token_adapter.trainable_tokens_delta"
MAX_FILE_BYTES = 16 * 1024 * 1024


def adapter_tensors(peft_tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """peft's state dict renamed to the shipped adapter's names, in float16."""
    tensors: dict[str, np.ndarray] = {}
    for key, value in peft_tensors.items():
        if match := _LORA_KEY.search(key):
            layer, projection, part = match.groups()
            tensors[f"layers.{layer}.{projection}.{part}"] = value.astype(np.float16)
        elif key.endswith(_TOKENS_KEY):
            tensors["embed_tokens.rows"] = value.astype(np.float16)
        else:
            raise ValueError(f"unexpected tensor {key} in the peft checkpoint")
    return tensors


def export(checkpoint: Path, out: Path) -> AdapterConfig:
    peft_config = json.loads((checkpoint / "adapter_config.json").read_text())
    tensors = adapter_tensors(read_safetensors(checkpoint / "adapter_model.safetensors"))
    token_ids = peft_config["trainable_token_indices"]["embed_tokens"]
    reused = (REUSED_FIM.prefix, REUSED_FIM.suffix, REUSED_FIM.middle)
    roles = {
        f"fim_{role}": FimTokenRole(id=token_id, reused=old, spelling=FIM_SPELLINGS[role])
        for role, token_id, old in zip(
            ("prefix", "suffix", "middle"), token_ids, reused, strict=True
        )
    }
    trained = checkpoint / "trained_tokens.txt"
    config = AdapterConfig(
        rank=int(peft_config["r"]),
        alpha=float(peft_config["lora_alpha"]),
        targets=tuple(sorted(peft_config["target_modules"])),
        fim_order="psm",
        base_sha256=sha256_of(GGUF),
        training_tokens=int(trained.read_text()) if trained.is_file() else 0,
        **roles,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / ADAPTER_WEIGHTS, tensors)
    (out / ADAPTER_CONFIG).write_text(config.to_json() + "\n", encoding="utf-8")
    size = (out / ADAPTER_WEIGHTS).stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{out / ADAPTER_WEIGHTS} is {size} bytes, over the 16 MB limit")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    config = export(args.checkpoint.resolve(), args.out)
    print(f"{args.out}: rank {config.rank}, {config.training_tokens} training tokens")


if __name__ == "__main__":
    main()
