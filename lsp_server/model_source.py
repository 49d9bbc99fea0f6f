"""Which model folder a server or a `nexttoken complete` run uses, and loading the pipeline.

The order: a folder given explicitly (`--model`, or the client's `modelDir` setting), then the
environment variable NEXTTOKEN_MODEL_DIR, then the default model, which `ensure_model()` builds
into the user cache the first time and finds there afterwards. Loading is slow (seconds): callers
run it off the event loop. With the `remote` backend the model folder is still loaded: its
tokenizer and manifest shape the prompt and the stops, and its engine is the fallback.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from completion.pipeline import CompletionPipeline
from completion.remote_backend import (
    RemoteBackendError,
    RemoteGenerator,
    RemoteSettings,
    redacted_url,
)
from lsp_server.settings import ServerSettings
from onnx_models.engine import ModelLoadError
from onnx_models.install import ModelInstallError, ensure_model

log = logging.getLogger(__name__)

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


def configure_backend(pipeline: object, settings: ServerSettings) -> str | None:
    """Point a loaded pipeline at the generator the settings choose (see
    completion.remote_backend); a problem for the user to fix, or None. Duck-typed: a test's
    scripted backend has no `remote` and is left alone."""
    if not hasattr(pipeline, "remote"):
        return None
    current = getattr(pipeline, "remote", None)
    if settings.backend != "remote":
        pipeline.remote = None  # type: ignore[attr-defined]
        return None
    if not settings.remote_url:
        pipeline.remote = None  # type: ignore[attr-defined]
        return "nexttoken.backend is remote but nexttoken.remoteUrl is empty; using the local model"
    remote = RemoteSettings(
        url=settings.remote_url,
        model=settings.remote_model,
        api_key_env=settings.remote_api_key_env,
        stop=tuple(getattr(getattr(pipeline, "manifest", None), "stop_tokens", ())),
    )
    pipeline.remote_fallback = settings.remote_fallback  # type: ignore[attr-defined]
    # Same server, same settings: keep the generator, and with it the circuit breaker's state.
    if isinstance(current, RemoteGenerator) and current.settings == remote:
        return None
    try:
        pipeline.remote = RemoteGenerator(remote)  # type: ignore[attr-defined]
    except RemoteBackendError as exc:
        pipeline.remote = None  # type: ignore[attr-defined]
        return f"{exc}; using the local model"
    fallback = "the local model" if settings.remote_fallback else "none"
    log.info("completions from %s (fallback: %s)", redacted_url(remote.url), fallback)
    return None
