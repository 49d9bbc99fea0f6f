"""Where built models and downloads live: the per-user cache folder, never the repository."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "NEXTTOKEN_CACHE_DIR"


def cache_root() -> Path:
    """The cache folder; `NEXTTOKEN_CACHE_DIR` overrides the platform default."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("nexttoken", appauthor=False))


def models_dir() -> Path:
    return cache_root() / "models"


def downloads_dir() -> Path:
    return cache_root() / "downloads"
