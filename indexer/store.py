"""The index on disk: one SQLite file per workspace in the user cache folder.

The file is keyed by the workspace's resolved path (a hash names it, the path itself is
stored inside and checked), carries its schema version in `PRAGMA user_version`, and is
rebuilt from nothing, with one log line, when it is missing, of another version, of another
workspace, or not a database at all. WAL journaling lets readers (completion requests)
query while the indexer writes.

One `IndexStore` is written by one thread (the indexer's); `StoreReader` gives each reading
thread its own connection. This module stores and queries; it never parses or walks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.extract import Chunk, FileEntry, Import, Symbol
from onnx_models.paths import cache_root

log = logging.getLogger(__name__)

# 2: signatures end before a comment that follows them; 3: an index of non-member names
SCHEMA_VERSION = 3
# Stores of workspaces not opened for this long are deleted when a new store is made, and at
# most this many are kept: temporary folders opened once must not fill the cache.
STORE_MAX_AGE_S = 30 * 24 * 3600
MAX_STORES = 64

_NOT_MEMBER = "kind NOT IN ('method', 'field')"
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    language TEXT NOT NULL,
    module TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE symbols (
    file_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    qualified_name TEXT NOT NULL,
    parent TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX symbols_by_name ON symbols (name);
-- Names such as `close` or `read` have hundreds of method rows; a lookup of top-level names
-- must not read them all (its first touch of those pages cost 2-6 ms of a request).
CREATE INDEX top_level_symbols_by_name ON symbols (name) WHERE {_NOT_MEMBER};
CREATE INDEX symbols_by_file ON symbols (file_id);
CREATE TABLE imports (
    file_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE INDEX imports_by_file ON imports (file_id);
CREATE TABLE chunks (
    file_id INTEGER NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL
);
CREATE INDEX chunks_by_file ON chunks (file_id);
"""


class StoreUnavailable(Exception):
    """The store cannot be opened or created (unwritable cache folder, full disk)."""


def store_path_for(root: Path, folder: Path | None = None) -> Path:
    """Where the index of the workspace at `root` lives."""
    key = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:20]
    return (folder or cache_root() / "index") / f"{root.resolve().name or 'root'}-{key}.sqlite3"


def _prune(folder: Path, keep: Path) -> None:
    stores = []
    for path in folder.glob("*.sqlite3"):
        try:
            stores.append((path.stat().st_mtime, path))
        except OSError:
            continue
    stores.sort(reverse=True)
    now = time.time()
    for rank, (mtime, path) in enumerate(stores):
        if path != keep and (rank >= MAX_STORES - 1 or now - mtime > STORE_MAX_AGE_S):
            log.info("deleting the index store %s (unused)", path)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    language: str
    module: str
    mtime_ns: int
    size: int
    version: int  # grows each time the file is indexed again: keys caches of its content


@dataclass(frozen=True)
class StoredSymbol:
    path: str
    language: str
    symbol: Symbol


@dataclass(frozen=True)
class FileState:
    mtime_ns: int
    size: int


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=5
        )
    else:
        connection = sqlite3.connect(path, check_same_thread=False, timeout=5)
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


class IndexStore:
    """The writer's side. Opens (or rebuilds) the store of `root` at `path`."""

    def __init__(self, root: Path, path: Path | None = None) -> None:
        self.root = root.resolve()
        self.path = path or store_path_for(self.root)
        self.rebuilt_because = ""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open()
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the index store {self.path}: {exc}") from exc
        self._version = self._max_version()

    def _open(self) -> sqlite3.Connection:
        reason = ""
        if self.path.exists():
            try:
                db = _connect(self.path)
                reason = self._problem(db)
                if not reason:
                    self._tune(db)
                    os.utime(self.path)  # in use: not a store to prune
                    return db
                db.close()
            except sqlite3.DatabaseError as exc:
                reason = f"unreadable ({exc})"
            log.warning("index store %s is %s: rebuilding it", self.path, reason)
            self.rebuilt_because = reason
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        _prune(self.path.parent, keep=self.path)
        db = _connect(self.path)
        self._tune(db)
        with db:
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta VALUES ('root', ?)", (str(self.root),))
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return db

    def _problem(self, db: sqlite3.Connection) -> str:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            return f"of schema version {version}, not {SCHEMA_VERSION}"
        row = db.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
        if row is None or row[0] != str(self.root):
            return f"of another workspace ({row[0] if row else 'none'})"
        return ""

    @staticmethod
    def _tune(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode = WAL")
        # An index can be rebuilt from the files: losing the last commits to a power cut is
        # cheaper than an fsync per update.
        db.execute("PRAGMA synchronous = OFF")

    def _max_version(self) -> int:
        row = self._db.execute("SELECT MAX(version) FROM files").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------------------

    def file_states(self) -> dict[str, FileState]:
        rows = self._db.execute("SELECT path, mtime_ns, size FROM files")
        return {path: FileState(mtime, size) for path, mtime, size in rows}

    def write(self, entries: Iterable[tuple[FileEntry, FileState]]) -> int:
        """Replace what the store holds for each file, in one transaction; returns how many."""
        count = 0
        with self._db:
            for entry, state in entries:
                self._replace(entry, state)
                count += 1
        return count

    def _replace(self, entry: FileEntry, state: FileState) -> None:
        db = self._db
        self._version += 1
        row = db.execute("SELECT id FROM files WHERE path = ?", (entry.path,)).fetchone()
        if row is None:
            file_id = db.execute(
                "INSERT INTO files (path, language, module, mtime_ns, size, version) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.path,
                    entry.language,
                    entry.module,
                    state.mtime_ns,
                    state.size,
                    self._version,
                ),
            ).lastrowid
        else:
            file_id = row[0]
            self._delete_contents(file_id)
            db.execute(
                "UPDATE files SET language = ?, module = ?, mtime_ns = ?, size = ?, version = ? "
                "WHERE id = ?",
                (entry.language, entry.module, state.mtime_ns, state.size, self._version, file_id),
            )
        db.executemany(
            "INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    file_id,
                    s.name,
                    s.kind,
                    s.qualified_name,
                    s.parent,
                    s.start_line,
                    s.end_line,
                    s.signature,
                    s.doc,
                )
                for s in entry.symbols
            ],
        )
        db.executemany(
            "INSERT INTO imports VALUES (?, ?, ?, ?, ?)",
            [(file_id, i.source, i.name, i.alias, i.line) for i in entry.imports],
        )
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?)",
            [(file_id, c.start_line, c.end_line) for c in entry.chunks],
        )

    def _delete_contents(self, file_id: int) -> None:
        for table in ("symbols", "imports", "chunks"):
            self._db.execute(f"DELETE FROM {table} WHERE file_id = ?", (file_id,))

    def delete(self, paths: Iterable[str]) -> int:
        count = 0
        with self._db:
            for path in paths:
                row = self._db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
                if row is not None:
                    self._delete_contents(row[0])
                    self._db.execute("DELETE FROM files WHERE id = ?", (row[0],))
                    count += 1
        return count

    def indexed_as(self, path: str) -> tuple[FileState, int] | None:
        """The `stat` a file's entry was stored with and the entry's version; None when the
        store holds no entry for it."""
        row = self._db.execute(
            "SELECT mtime_ns, size, version FROM files WHERE path = ?", (path,)
        ).fetchone()
        return (FileState(row[0], row[1]), row[2]) if row else None

    def paths_under(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        rows = self._db.execute(
            "SELECT path FROM files WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
        )
        return [row[0] for row in rows]


class StoreReader:
    """Queries for completion requests; each calling thread gets its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = _connect(self.path, readonly=True)
        return db

    def reset(self) -> None:
        """Forget this thread's connection (the store was rebuilt under it)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def file(self, path: str) -> FileRecord | None:
        row = (
            self._db()
            .execute(
                "SELECT id, path, language, module, mtime_ns, size, version FROM files "
                "WHERE path = ?",
                (path,),
            )
            .fetchone()
        )
        return FileRecord(*row) if row else None

    def files(self) -> list[FileRecord]:
        rows = self._db().execute(
            "SELECT id, path, language, module, mtime_ns, size, version FROM files"
        )
        return [FileRecord(*row) for row in rows]

    def imports_of(self, file_id: int) -> list[Import]:
        rows = self._db().execute(
            "SELECT source, name, alias, line FROM imports WHERE file_id = ? ORDER BY line",
            (file_id,),
        )
        return [Import(*row) for row in rows]

    def chunks_of(self, file_id: int) -> list[Chunk]:
        rows = self._db().execute(
            "SELECT start_line, end_line FROM chunks WHERE file_id = ? ORDER BY start_line",
            (file_id,),
        )
        return [Chunk(*row) for row in rows]

    def symbols_named(
        self, names: Sequence[str], limit: int = 200, *, members: bool = True
    ) -> list[StoredSymbol]:
        """Symbols with these names; without methods and fields unless `members`."""
        if not names:
            return []
        marks = ",".join("?" * len(names))
        query = f"{_SYMBOL_SELECT} WHERE s.name IN ({marks})"
        if not members:
            query += f" AND {_NOT_MEMBER}"  # the very term of the partial index, so it is used
        rows = self._db().execute(query + " ORDER BY s.name, s.rowid LIMIT ?", (*names, limit))
        return [_stored_symbol(row) for row in rows]

    def files_at(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        if not paths:
            return {}
        marks = ",".join("?" * len(paths))
        rows = self._db().execute(
            "SELECT id, path, language, module, mtime_ns, size, version FROM files "
            f"WHERE path IN ({marks})",
            tuple(paths),
        )
        return {row[1]: FileRecord(*row) for row in rows}

    def symbols_in(self, file_ids: Sequence[int], parent: str | None = None) -> list[StoredSymbol]:
        """Symbols of these files; only those under `parent` when it is given ("" for
        top-level ones)."""
        if not file_ids:
            return []
        marks = ",".join("?" * len(file_ids))
        query = f"{_SYMBOL_SELECT} WHERE s.file_id IN ({marks})"
        arguments: tuple[object, ...] = tuple(file_ids)
        if parent is not None:
            query += " AND s.parent = ?"
            arguments += (parent,)
        rows = self._db().execute(query + " ORDER BY s.file_id, s.start_line", arguments)
        return [_stored_symbol(row) for row in rows]


_SYMBOL_SELECT = (
    "SELECT f.path, f.language, s.name, s.kind, s.qualified_name, s.parent, s.start_line, "
    "s.end_line, s.signature, s.doc FROM symbols s JOIN files f ON f.id = s.file_id"
)


def _stored_symbol(row: tuple) -> StoredSymbol:  # type: ignore[type-arg]
    path, language, *fields = row
    return StoredSymbol(path, language, Symbol(*fields))
