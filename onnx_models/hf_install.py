"""`nexttoken model install PATH`: import a local Hugging Face checkpoint folder into the model
cache, with the same lock, staging and reuse as a registry model (install.py).
"""

from __future__ import annotations

from pathlib import Path

from onnx_models.architectures import UnsupportedArchitectureError
from onnx_models.decoder_weights import WeightsError
from onnx_models.graph_builder import GraphOptions
from onnx_models.hf_import import build_hf_model_folder
from onnx_models.install import (
    DEFAULT_GRAPH,
    ModelInstallError,
    building,
    is_installed,
    model_dir_for,
)
from onnx_models.manifest import ManifestError, ModelManifest
from onnx_models.progress import console_progress, silent
from onnx_models.registry import KNOWN_MODELS


def _built_from(folder: Path) -> str | None:
    try:
        return ModelManifest.load(folder).source.get("checkpoint")
    except ManifestError:
        return None


def install_checkpoint(
    checkpoint: Path,
    *,
    name: str | None = None,
    progress: bool = False,
    force: bool = False,
    options: GraphOptions = DEFAULT_GRAPH,
) -> Path:
    """Return the model folder built from `checkpoint`, building it first when needed."""
    checkpoint = checkpoint.resolve()
    name = name or checkpoint.name
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ModelInstallError(f"{name!r} cannot name a model folder; pass --name NAME")
    if name in KNOWN_MODELS:
        raise ModelInstallError(f"{name!r} is a registry model; pass --name with another name")
    folder = model_dir_for(name, options)
    built_from = _built_from(folder)
    if built_from not in (None, str(checkpoint)) and not force:
        raise ModelInstallError(
            f"{folder} holds a model imported from {built_from}; pass --name with another name, "
            f"or --force to replace it"
        )
    if not force and is_installed(folder, options):
        return folder
    try:
        with building(folder, "import", str(checkpoint)):
            if not force and is_installed(folder, options):  # another process built it
                return folder
            build_hf_model_folder(
                checkpoint,
                folder,
                name=name,
                progress=console_progress() if progress else silent,
                options=options,
            )
    except (WeightsError, UnsupportedArchitectureError) as exc:
        raise ModelInstallError(f"cannot import {checkpoint}: {exc}") from exc
    return folder
