"""The SQLite store: written and read back, kept per workspace, rebuilt when it cannot be
trusted (another schema version, another workspace, not a database)."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from indexer.extract import Chunk, FileEntry, Import, Symbol
from indexer.store import (
    SCHEMA_VERSION,
    FileState,
    IndexStore,
    StoreReader,
    store_path_for,
)

ENTRY = FileEntry(
    path="pkg/model.py",
    language="python",
    module="pkg.model",
    symbols=(
        Symbol("Cart", "class", "pkg.model.Cart", "", 3, 9, "class Cart:", "A cart."),
        Symbol("add", "method", "pkg.model.Cart.add", "Cart", 5, 6, "def add(self):", ""),
    ),
    imports=(Import("os", "", "", 0),),
    chunks=(Chunk(0, 9),),
)


def test_written_entries_read_back(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "ws", tmp_path / "index.sqlite3")
    store.write([(ENTRY, FileState(123, 456))])
    reader = StoreReader(store.path)
    record = reader.file("pkg/model.py")
    assert record is not None and (record.module, record.mtime_ns, record.size) == (
        "pkg.model",
        123,
        456,
    )
    [cart] = reader.symbols_named(["Cart"])
    assert cart.symbol == ENTRY.symbols[0] and cart.path == "pkg/model.py"
    assert [s.symbol.name for s in reader.symbols_in([record.id], parent="Cart")] == ["add"]
    assert reader.imports_of(record.id) == list(ENTRY.imports)
    assert reader.chunks_of(record.id) == list(ENTRY.chunks)
    # Indexing a file again replaces what it held, and bumps its version.
    store.write([(FileEntry("pkg/model.py", "python", "pkg.model", (), (), ()), FileState(1, 1))])
    again = reader.file("pkg/model.py")
    assert again is not None and again.version > record.version
    assert reader.symbols_named(["Cart"]) == []
    store.delete(["pkg/model.py"])
    assert reader.file("pkg/model.py") is None
    store.close()


def test_top_level_lookups_skip_member_rows(tmp_path: Path) -> None:
    """`close` as a method in many files must not be read when only top-level names count."""
    store = IndexStore(tmp_path / "ws", tmp_path / "index.sqlite3")
    method = Symbol("close", "method", "m.File.close", "File", 1, 2, "def close(self):", "")
    function = Symbol("close", "function", "m.close", "", 4, 5, "def close(f):", "")
    entries = [FileEntry(f"m{i}.py", "python", f"m{i}", (method,), (), ()) for i in range(50)] + [
        FileEntry("m.py", "python", "m", (function,), (), ())
    ]
    store.write([(entry, FileState(1, 1)) for entry in entries])
    reader = StoreReader(store.path)
    statements: list[str] = []
    reader._db().set_trace_callback(statements.append)  # the SQL as run, values inlined
    assert [s.path for s in reader.symbols_named(["close"], members=False)] == ["m.py"]
    plan = reader._db().execute(f"EXPLAIN QUERY PLAN {statements[-1]}").fetchall()
    assert len(reader.symbols_named(["close"])) == 51
    assert any("top_level_symbols_by_name" in row[-1] for row in plan), plan
    store.close()


def test_each_workspace_has_its_own_store_in_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NEXTTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    first, second = store_path_for(tmp_path / "a"), store_path_for(tmp_path / "b")
    assert first != second
    assert first.parent == tmp_path / "cache" / "index"


def test_a_store_of_another_schema_version_is_rebuilt(tmp_path: Path, caplog) -> None:
    path = tmp_path / "index.sqlite3"
    store = IndexStore(tmp_path, path)
    store.write([(ENTRY, FileState(1, 1))])
    store.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with caplog.at_level(logging.WARNING):
        rebuilt = IndexStore(tmp_path, path)
    assert "schema version" in rebuilt.rebuilt_because
    assert any("rebuilding" in record.message for record in caplog.records)
    assert rebuilt.file_states() == {}


def test_a_store_of_another_workspace_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    IndexStore(tmp_path / "one", path).close()
    store = IndexStore(tmp_path / "two", path)
    assert "another workspace" in store.rebuilt_because


@pytest.mark.parametrize("garbage", [b"not a database at all" * 100, b""])
def test_a_corrupt_store_is_rebuilt(tmp_path: Path, garbage: bytes, caplog) -> None:
    path = tmp_path / "index.sqlite3"
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING):
        store = IndexStore(tmp_path, path)
    store.write([(ENTRY, FileState(1, 1))])
    assert set(store.file_states()) == {"pkg/model.py"}
    if garbage:
        assert store.rebuilt_because
        assert any("rebuilding" in record.message for record in caplog.records)


def test_old_stores_of_other_workspaces_are_pruned(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    folder.mkdir()
    stale = folder / "gone-0123.sqlite3"
    stale.write_bytes(b"")
    os.utime(stale, (0, 0))
    fresh = folder / "other-4567.sqlite3"
    fresh.write_bytes(b"")
    IndexStore(tmp_path / "ws", folder / "ws.sqlite3").close()
    assert not stale.exists() and fresh.exists()
