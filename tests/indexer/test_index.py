"""The workspace index as it runs: a background thread, a store on disk, real watchdog events
and open documents. Tests wait on the index's own change notifications, never on sleeps."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import indexer.index as index_module
from indexer.index import IndexOptions, IndexProgress, WorkspaceIndex
from indexer.walk import WalkOptions

WAIT_S = 20.0


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def where(index: WorkspaceIndex, name: str) -> set[str]:
    assert index.reader is not None
    return {s.path for s in index.reader.symbols_named([name])}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write(root, "shop/model.py", "class Cart:\n    def add(self, item):\n        pass\n")
    write(root, "shop/money.py", "def cents(x):\n    return int(x * 100)\n")
    write(root, "web/app.ts", "export function render(): void {}\n")
    write(root, "assets/blob.py", "x = 1\x00\x00\x00\n")
    return root


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[WorkspaceIndex] = []

    def start_index(root: Path, **options) -> WorkspaceIndex:
        options.setdefault("store_folder", tmp_path / "stores")
        index = WorkspaceIndex(root, IndexOptions(**options))
        index.start()
        started.append(index)
        assert index.wait_ready(WAIT_S), "the first pass did not finish"
        assert not index.failure
        return index

    yield start_index
    for index in started:
        index.stop()


def test_first_pass_then_a_warm_start_reads_only_what_changed(project: Path, start) -> None:
    index = start(project)
    assert index.summary is not None
    assert (index.summary.files, index.summary.indexed, index.summary.skipped) == (4, 3, 1)
    assert where(index, "Cart") == {"shop/model.py"}
    assert where(index, "render") == {"web/app.ts"}
    index.stop()

    write(project, "shop/money.py", "def cents(x):\n    return round(x * 100)\n\nFEE = 3\n")
    (project / "web" / "app.ts").unlink()
    again = start(project)
    assert again.summary is not None
    assert (again.summary.indexed, again.summary.removed) == (1, 1)
    assert where(again, "FEE") == {"shop/money.py"}
    assert where(again, "render") == set()
    assert where(again, "Cart") == {"shop/model.py"}  # kept from the store, not read again


def test_watchdog_events_update_the_index(project: Path, start) -> None:
    index = start(project)
    write(project, "shop/tax.py", "def vat(x):\n    return x\n")
    assert index.wait_for(lambda: where(index, "vat") == {"shop/tax.py"}, WAIT_S)

    write(project, "shop/tax.py", "def vat_rate():\n    return 20\n")
    assert index.wait_for(lambda: where(index, "vat_rate") == {"shop/tax.py"}, WAIT_S)
    assert where(index, "vat") == set()

    os.replace(project / "shop" / "tax.py", project / "shop" / "taxes.py")
    assert index.wait_for(lambda: where(index, "vat_rate") == {"shop/taxes.py"}, WAIT_S)

    (project / "shop" / "money.py").unlink()
    assert index.wait_for(lambda: where(index, "cents") == set(), WAIT_S)

    # An editor's atomic save: a temporary file renamed over the original.
    write(project, "shop/.model.py.tmp", "class Basket:\n    pass\n")
    os.replace(project / "shop" / ".model.py.tmp", project / "shop" / "model.py")
    assert index.wait_for(lambda: where(index, "Basket") == {"shop/model.py"}, WAIT_S)
    assert where(index, "Cart") == set()
    assert index.update_latencies_ms  # measured from the event


def test_folders_created_moved_and_deleted(project: Path, start) -> None:
    index = start(project)
    staging = project.parent / "staging"
    write(staging, "billing/invoice.py", "class Invoice:\n    pass\n")
    write(staging, "billing/lines/line.py", "class Line:\n    pass\n")
    shutil.move(str(staging / "billing"), str(project / "billing"))
    assert index.wait_for(
        lambda: (
            where(index, "Invoice") == {"billing/invoice.py"}
            and where(index, "Line") == {"billing/lines/line.py"}
        ),
        WAIT_S,
    )
    shutil.rmtree(project / "billing")
    assert index.wait_for(lambda: where(index, "Invoice") | where(index, "Line") == set(), WAIT_S)


def test_a_new_gitignore_drops_what_it_ignores(project: Path, start) -> None:
    index = start(project)
    write(project, ".gitignore", "web/\n")
    assert index.wait_for(lambda: where(index, "render") == set(), WAIT_S)
    assert where(index, "Cart") == {"shop/model.py"}


def test_ignored_and_secret_files_stay_out_when_they_change(project: Path, start) -> None:
    index = start(project)
    write(project, "node_modules/lib/index.js", "export function leftPad() {}\n")
    write(project, ".env", "TOKEN=abc\n")
    write(project, "shop/later.py", "def marker():\n    pass\n")
    # Events are handled in order of their quiet time: once the last file is in, the others
    # were seen (and refused) too.
    assert index.wait_for(lambda: where(index, "marker") == {"shop/later.py"}, WAIT_S)
    assert where(index, "leftPad") == set()
    assert index.paths.paths == {
        "shop/model.py",
        "shop/money.py",
        "web/app.ts",
        "assets/blob.py",
        "shop/later.py",
    }


def test_open_documents_win_over_the_disk_until_closed(project: Path, start) -> None:
    index = start(project, document_debounce_ms=0)
    model = project / "shop" / "model.py"
    index.document_changed(model, "class Draft:\n    pass\n")
    assert index.wait_for(lambda: where(index, "Draft") == {"shop/model.py"}, WAIT_S)
    assert index.text_of("shop/model.py") == "class Draft:\n    pass\n"
    assert index.recent_documents() == ["shop/model.py"]
    index.forget_recent_documents()
    assert index.recent_documents() == []

    # Saving something else to disk meanwhile changes nothing: the editor's text wins.
    generation = index.generation
    write(project, "shop/model.py", "class OnDisk:\n    pass\n")
    assert index.wait_for(lambda: index.generation > generation, WAIT_S)
    assert where(index, "OnDisk") == set() and where(index, "Draft") == {"shop/model.py"}

    index.document_closed(model)
    assert index.wait_for(lambda: where(index, "OnDisk") == {"shop/model.py"}, WAIT_S)
    assert where(index, "Draft") == set()

    # An unsaved new document is indexed too; one in an ignored folder is not.
    index.document_changed(project / "shop" / "new.py", "def fresh():\n    pass\n")
    index.document_changed(project / "node_modules" / "x.py", "def hidden():\n    pass\n")
    assert index.wait_for(lambda: where(index, "fresh") == {"shop/new.py"}, WAIT_S)
    assert where(index, "hidden") == set()


def test_an_open_document_is_indexed_again_only_when_its_text_changed(project: Path, start) -> None:
    # Indexing the same text again would only bump the file's version, which keys the caches
    # of completion requests (and parsing it competes with them for the interpreter).
    generated = "# Code generated by protoc. DO NOT EDIT.\ndef made():\n    pass\n"
    write(project, "shop/made.py", generated)
    index = start(project, document_debounce_ms=0)
    assert index.reader is not None
    reader = index.reader

    def version(relative: str) -> int:
        record = reader.file(relative)
        assert record is not None
        return record.version

    def edit(relative: str, text: str) -> None:
        generation = index.generation
        index.document_changed(project / relative, text)
        assert index.wait_for(lambda: index.generation > generation, WAIT_S)

    on_disk = version("shop/model.py")
    edit("shop/model.py", (project / "shop" / "model.py").read_text())  # opened as saved
    assert version("shop/model.py") == on_disk
    edit("shop/model.py", "class Draft:\n    pass\n")
    drafted = version("shop/model.py")
    assert drafted > on_disk and where(index, "Draft") == {"shop/model.py"}
    edit("shop/model.py", "class Draft:\n    pass\n")  # a change event without a change
    assert version("shop/model.py") == drafted
    edit("shop/model.py", (project / "shop" / "model.py").read_text())  # undone
    assert version("shop/model.py") > drafted and where(index, "Cart") == {"shop/model.py"}
    # A file skipped on disk (generated) holds no symbols; the same text as a document does.
    assert where(index, "made") == set()
    edit("shop/made.py", generated)
    assert where(index, "made") == {"shop/made.py"}


def test_progress_is_reported_and_ends(project: Path, start) -> None:
    reports: list[IndexProgress] = []
    index = WorkspaceIndex(
        project,
        IndexOptions(store_folder=project.parent / "stores"),
        on_progress=reports.append,
    )
    index.start()
    try:
        assert index.wait_ready(WAIT_S)
    finally:
        index.stop()
    assert reports[0] == IndexProgress(0, 4, "indexing 4 files")
    assert reports[-1].finished and reports[-1].done == 4


def test_many_files_go_to_worker_processes(tmp_path: Path, start, monkeypatch) -> None:
    root = tmp_path / "big"
    for number in range(80):
        write(root, f"pkg/m{number}.py", f"def f{number}(x):\n    return x + {number}\n")
    monkeypatch.setattr(index_module, "POOL_MIN_BYTES", 0)
    index = start(root, workers=2)
    assert index.summary is not None
    assert (index.summary.workers, index.summary.indexed) == (2, 80)
    assert where(index, "f79") == {"pkg/m79.py"}


def test_a_store_that_cannot_be_written_turns_the_index_off(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    index = WorkspaceIndex(tmp_path, IndexOptions(store_folder=blocker / "stores"))
    index.start()
    assert index.wait_ready(WAIT_S)
    index.stop()
    assert "cannot open the index store" in index.failure
    assert index.reader is None


def test_a_huge_folder_is_indexed_only_in_part(tmp_path: Path, start, caplog) -> None:
    root = tmp_path / "home"
    for number in range(12):
        write(root, f"f{number:02}.py", f"def f{number}():\n    pass\n")
    index = start(root, walk=WalkOptions(max_files=10))
    assert index.summary is not None and index.summary.files == 10
    assert any("more than 10 indexable files" in r.message for r in caplog.records)
