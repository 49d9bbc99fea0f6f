"""The server's settings: one frozen value, parsed from the client's JSON and validated once.

Clients send settings in `initializationOptions` and `workspace/didChangeConfiguration`, either
as `{"nexttoken": {...}}` or as the bare object. A bad value never stops the server: parsing
keeps the previous value for that field and returns a message naming the field, for the
server to show the user. This module only parses; it never talks to the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

SECTION = "nexttoken"

MAX_NEW_TOKENS_LIMIT = 1024
DEBOUNCE_MS_LIMIT = 5000
CANDIDATES_LIMIT = 8


@dataclass(frozen=True)
class ServerSettings:
    enabled: bool = True
    # Model folder; empty means NEXTTOKEN_MODEL_DIR, else the default model (built on first use).
    model_dir: str = ""
    max_new_tokens: int = 64
    # Wait this long before starting a generation, so a burst of keystrokes runs only the last.
    debounce_ms: int = 0
    # With debounce_ms 0: wait from the typing rhythm and recent latency (lsp_server/debounce.py).
    # Off by default: a newer keystroke preempts a generation between decode steps and prefill
    # chunks and reuses its cache, so waiting only added latency (benchmarks/README.md).
    adaptive_debounce: bool = False
    # Suggestions offered on an explicit invoke (triggerKind Invoked); typing gets one.
    candidates: int = 3
    # The workspace index (indexer/), the source of repository context in prompts, and
    # gitignore-style patterns it skips on top of .gitignore.
    index: bool = True
    index_exclude: tuple[str, ...] = ()
    # "local": the ONNX engine here; "remote": an OpenAI-compatible /v1/completions server
    # (docs/self-hosting.md). Prompting, stops and the secret filter run here either way.
    backend: str = "local"
    remote_url: str = ""
    remote_model: str = ""
    # The NAME of the environment variable that holds the API key; the key never sits here.
    remote_api_key_env: str = ""
    # When the remote server fails or its circuit is open, complete with the local model.
    remote_fallback: bool = True


@dataclass(frozen=True)
class ParsedSettings:
    settings: ServerSettings
    problems: tuple[str, ...] = ()


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _integer_between(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        # JSON has no integer type of its own: accept 32.0, refuse 32.5, true and "32".
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return check


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError('expected a list of gitignore-style patterns, e.g. ["data/", "*.gen.ts"]')
    return tuple(item for item in value if item.strip())


def _folder(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a folder path (a string)")
    return str(Path(value).expanduser()) if value.strip() else ""


def _backend(value: Any) -> str:
    if value not in ("local", "remote"):
        raise ValueError('expected "local" or "remote"')
    return str(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
        raise ValueError("expected an http:// or https:// URL, e.g. http://gpu-box:8000/v1")
    if "@" in value.split("/")[2 if "//" in value else 0]:
        raise ValueError("credentials do not belong in the URL: name them in remoteApiKeyEnv")
    return value.strip()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value.strip()


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Settings whose invalid value is not repeated in the message: it may be a pasted secret.
_NOT_ECHOED = frozenset({"remoteApiKeyEnv", "remoteUrl"})


def _env_name(value: Any) -> str:
    # A name, so that a key pasted here by mistake is refused rather than stored and logged.
    if not isinstance(value, str) or (value and not _ENV_NAME.fullmatch(value)):
        raise ValueError("expected the name of an environment variable, e.g. NEXTTOKEN_API_KEY")
    return value


# JSON name -> (field of ServerSettings, validator returning the field's value)
_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "enabled": ("enabled", _boolean),
    "modelDir": ("model_dir", _folder),
    "maxNewTokens": ("max_new_tokens", _integer_between(1, MAX_NEW_TOKENS_LIMIT)),
    "debounceMs": ("debounce_ms", _integer_between(0, DEBOUNCE_MS_LIMIT)),
    "adaptiveDebounce": ("adaptive_debounce", _boolean),
    "candidates": ("candidates", _integer_between(1, CANDIDATES_LIMIT)),
    "index": ("index", _boolean),
    "indexExclude": ("index_exclude", _patterns),
    "backend": ("backend", _backend),
    "remoteUrl": ("remote_url", _url),
    "remoteModel": ("remote_model", _text),
    "remoteApiKeyEnv": ("remote_api_key_env", _env_name),
    "remoteFallback": ("remote_fallback", _boolean),
}


def client_section(raw: object) -> object | None:
    """Our part of a didChangeConfiguration payload, None when it carries nothing of ours.

    Clients send either every section they sync (`{"nexttoken": {...}, "python": {...}}`) or
    just ours, bare; another extension's section must not read as unknown settings of ours.
    """
    if not isinstance(raw, Mapping):
        return None
    if SECTION in raw:
        return raw[SECTION]
    return raw if any(name in _FIELDS for name in raw) else None


def parse_settings(raw: object, base: ServerSettings) -> ParsedSettings:
    """Settings from the client's JSON over `base`; fields left out or invalid keep `base`'s."""
    if raw is None:
        return ParsedSettings(base)
    if isinstance(raw, Mapping) and isinstance(raw.get(SECTION), Mapping):
        raw = raw[SECTION]
    if not isinstance(raw, Mapping):
        return ParsedSettings(base, (f"{SECTION} settings must be a JSON object, got {raw!r}",))

    changes: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if name not in _FIELDS:
            known = ", ".join(_FIELDS)
            problems.append(f"unknown setting {SECTION}.{name} (known settings: {known})")
            continue
        field_name, validate = _FIELDS[name]
        try:
            checked = validate(value)
        except ValueError as exc:
            kept = getattr(base, field_name)
            shown = "(value not shown)" if name in _NOT_ECHOED else repr(value)
            problems.append(f"invalid {SECTION}.{name} = {shown}: {exc}; using {kept!r}")
            continue
        # An empty model folder means "not set here", so the command line's --model still holds.
        if field_name == "model_dir" and not checked:
            continue
        changes[field_name] = checked
    return ParsedSettings(replace(base, **changes), tuple(problems))
