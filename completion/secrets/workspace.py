"""Files that hold credentials, and the secret values a workspace's `.env`-type files hold.

`is_secret_file` names the files whose text never enters a prompt (`.env*`, keys,
certificates with private parts, credential JSON). `WorkspaceSecrets` walks a workspace folder
for `.env`-type files and private key files, without following links out of it, and collects
the values that must never be emitted, whatever their shape: every value under a name that
says it is secret, and random-looking values under any name.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from pathlib import Path, PurePosixPath

from completion.secrets.checksums import character_classes, looks_random
from completion.secrets.rules import is_placeholder, is_secret_name

# File name patterns (lowercased) of files that are credentials themselves.
SECRET_FILE_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials*.json",
    "*credentials.json",
    "service-account*.json",
    "client_secret*.json",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
)
# Of those, the ones read for values: KEY=value files, and private keys.
_ENV_PATTERNS = (".env", ".env.*", "*.env", ".envrc")
_KEY_PATTERNS = ("*.pem", "*.key", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")
# Folders never entered: tools' caches and installed dependencies, not the user's secrets.
SKIPPED_FOLDERS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        "dist",
        "build",
        "target",
        ".next",
        ".cache",
    }
)
MAX_DEPTH = 8
MAX_ENTRIES = 50_000
MAX_FILE_BYTES = 256 * 1024
# A workspace is walked again after this long, to see new files; known files are re-read when
# they change (size or modification time).
RESCAN_SECONDS = 30.0

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<name>[A-Za-z_][\w.\-]*)\s*[=:]\s*(?P<value>.*)$")
_URL_PASSWORD = re.compile(r"://[^\s/:@]*:(?P<password>[^\s/@]+)@")
_PEM_BODY_LINE = re.compile(r"^[A-Za-z0-9+/=]{16,}$")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def is_secret_file(path: str) -> bool:
    """Whether a file is a credential store by its name (`.env`, `id_rsa`, `*.pem`, ...)."""
    name = PurePosixPath(path.replace("\\", "/")).name.lower()
    return bool(name) and _matches(name, SECRET_FILE_PATTERNS)


def env_values(text: str) -> set[str]:
    """The values of a `.env`-type file that are secrets: any value under a secret-sounding
    name, random-looking values under other names, and passwords inside URLs."""
    values: set[str] = set()
    for line in text.splitlines():
        match = _ENV_LINE.match(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        name, value = match.group("name"), _unquote(match.group("value"))
        if not value or is_placeholder(value):
            continue
        url = _URL_PASSWORD.search(value)
        if url and not is_placeholder(url.group("password")):
            values.add(url.group("password"))
            values.add(value)
        elif is_secret_name(name) or _random_looking(value):
            values.add(value)
    return values


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    # An unquoted value ends where a comment starts.
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _random_looking(value: str) -> bool:
    if len(value) < 12 or any(c.isspace() for c in value):
        return False
    return character_classes(value) >= 2 and looks_random(value, 3.0)


def key_file_values(text: str) -> set[str]:
    """The body lines of the private key blocks in a key file."""
    if "PRIVATE KEY" not in text:
        return set()
    values = set()
    inside = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN") and "PRIVATE KEY" in line:
            inside = True
        elif line.startswith("-----END"):
            inside = False
        elif inside and _PEM_BODY_LINE.match(line):
            values.add(line)
    return values


class WorkspaceSecrets:
    """The known secrets of one workspace folder, read on `refresh`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._scanned_at: float | None = None
        self._files: dict[Path, tuple[int, int]] = {}  # file -> (size, mtime_ns) when read
        self.files_read: list[Path] = []

    def stale(self) -> bool:
        if self._scanned_at is None or time.monotonic() - self._scanned_at > RESCAN_SECONDS:
            return True
        return any(_signature(path) != signature for path, signature in self._files.items())

    def refresh(self) -> set[str]:
        """Walk the folder again and read every `.env`-type and key file in it."""
        self._scanned_at = time.monotonic()
        values: set[str] = set()
        self._files = {}
        self.files_read = []
        for path, kind in self._candidate_files():
            signature = _signature(path)
            if signature is None or signature[0] > MAX_FILE_BYTES:
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            self._files[path] = signature
            self.files_read.append(path)
            values |= env_values(text) if kind == "env" else key_file_values(text)
        return values

    def _candidate_files(self) -> list[tuple[Path, str]]:
        root = self.root
        try:
            real_root = root.resolve(strict=True)
        except OSError:
            return []
        found: list[tuple[Path, str]] = []
        stack = [(root, 0)]
        entries = 0
        while stack:
            folder, depth = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    children = list(listing)
            except OSError:
                continue
            for entry in children:
                entries += 1
                if entries > MAX_ENTRIES:
                    return found
                name = entry.name.lower()
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if depth < MAX_DEPTH and entry.name not in SKIPPED_FOLDERS:
                            stack.append((Path(entry.path), depth + 1))
                        continue
                    kind = (
                        "env"
                        if _matches(name, _ENV_PATTERNS)
                        else ("key" if _matches(name, _KEY_PATTERNS) else "")
                    )
                    if not kind:
                        continue
                    path = Path(entry.path)
                    if entry.is_symlink():
                        # A link is read only when it stays inside the workspace.
                        target = path.resolve()
                        if not target.is_relative_to(real_root) or not target.is_file():
                            continue
                    elif not entry.is_file(follow_symlinks=False):
                        continue
                    found.append((path, kind))
                except OSError:
                    continue
        return found


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
