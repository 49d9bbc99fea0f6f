"""Import a local Hugging Face checkpoint folder into a model folder: the graph from its
safetensors weights, its tokenizer.json (hf_tokenizer.py), a manifest from its tokenizer and
configs.
"""

from __future__ import annotations

from pathlib import Path

from onnx_models.graph_builder import GraphOptions
from onnx_models.hf_manifest import hf_manifest, tokenizer_json
from onnx_models.hf_tokenizer import write_tokenizer
from onnx_models.hf_weights import HfWeights
from onnx_models.model_builder import write_model_folder
from onnx_models.progress import ProgressCallback, silent


def build_hf_model_folder(
    checkpoint: Path,
    out_dir: Path,
    *,
    name: str,
    family: str | None = None,
    progress: ProgressCallback = silent,
    options: GraphOptions | None = None,
) -> Path:
    """Build `out_dir` from the checkpoint folder, replacing it only once complete."""
    options = options or GraphOptions()
    checkpoint = checkpoint.resolve()
    weights = HfWeights(checkpoint)
    tokenizer = tokenizer_json(checkpoint)  # fail before the slow graph build
    source = {"checkpoint": str(checkpoint), "graph": options.label()}
    return write_model_folder(
        weights,
        out_dir,
        write_tokenizer=lambda path: write_tokenizer(tokenizer, path),
        manifest=lambda: hf_manifest(
            checkpoint,
            weights.config,
            name=name,
            family=family or weights.spec.name,
            source=source,
            shared_kv_buffer=options.shared_kv_buffer,
        ),
        progress=progress,
        options=options,
    )
