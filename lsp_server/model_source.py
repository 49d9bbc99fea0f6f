"""Which model folder a server or a `nexttoken complete` run uses, and loading the pipeline.

The order: a folder given explicitly (`--model`, or the client's `modelDir` setting), then the
environment variable NEXTTOKEN_MODEL_DIR, then the default model, which `ensure_model()` builds
into the user cache the first time and finds there afterwards. Loading is slow (seconds): callers
run it off the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path

from completion.pipeline import CompletionPipeline
from onnx_models.engine import ModelLoadError
from onnx_models.install import ModelInstallError, ensure_model

MODEL_DIR_ENV = "NEXTTOKEN_MODEL_DIR"

# What a bad or missing model raises; their messages are written for the user.
MODEL_ERRORS: tuple[type[Exception], ...] = (ModelLoadError, ModelInstallError)


def resolve_model_dir(model_dir: str = "") -> Path:
    """The folder to load; builds the default model when nothing else is configured."""
    if model_dir:
        return Path(model_dir).expanduser()
    from_env = os.environ.get(MODEL_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return ensure_model()


def load_pipeline(model_dir: str = "") -> CompletionPipeline:
    return CompletionPipeline.load(resolve_model_dir(model_dir))
