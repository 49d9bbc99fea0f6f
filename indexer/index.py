"""The workspace index: a background thread that keeps the store in step with the workspace.

`WorkspaceIndex.start` returns at once. Its thread opens (or rebuilds) the store, starts
watching the folder, and makes a first pass: files whose `stat` changed since the store last
saw them are read again (in worker processes when there are many, so the first index of a big
workspace uses every core while the server's own threads stay free), files that are gone are
dropped. Afterwards watchdog events (create, modify, delete, move, of files and folders) and
the text of open documents arrive as pending paths; each waits a short quiet time (debounce)
and is then indexed again. An open document's text wins over its file on disk until it is
closed.

Nothing here blocks a caller: requests read the store through `reader` (their own
connection) and the snapshots `paths` and `text_of`; they never wait for the index thread.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from indexer.extract import FileEntry
from indexer.jobs import ReadResult, entry_from_text, lower_priority, read_file, read_files
from indexer.resolve import WorkspacePaths
from indexer.store import FileState, IndexStore, StoreReader, StoreUnavailable, store_path_for
from indexer.walk import (
    SKIPPED_FOLDERS,
    FoundFile,
    WalkOptions,
    WorkspaceRules,
    looks_indexable,
)

log = logging.getLogger(__name__)

# Files indexed again in one transaction during a pass, and per worker-process task.
BATCH_FILES = 32
# Below this much source the first pass stays in the index thread: starting processes costs
# more than it saves.
POOL_MIN_BYTES = 2 * 1024 * 1024
RECENT_DOCUMENTS = 20
# A path edited without pause is indexed at the latest this long after its first change.
MAX_DEBOUNCE_S = 2.0
# How many update latencies are kept for `update_latencies_ms`.
LATENCY_HISTORY = 2000

_FULL_PASS = "\x00full"
_FOLDER = "\x00folder:"
# Overlay text is unsaved: the stored state must never match the file on disk, so the next
# pass (or the next start) reads the disk again once the document is closed.
_UNSAVED = FileState(-1, -1)


@dataclass(frozen=True)
class IndexOptions:
    walk: WalkOptions = field(default_factory=WalkOptions)
    # Quiet time after a file event before the file is read again: an editor's save is
    # several events (truncate, write, close, or a rename) within a few milliseconds.
    debounce_ms: int = 10
    # Quiet time after an edit of an open document: typing changes it on every keystroke.
    document_debounce_ms: int = 300
    # Processes for the first pass; 0 means one per CPU, 1 keeps it in the index thread.
    workers: int = 0
    # Worker processes give way to the server (and the editor) while they index.
    worker_niceness: int = 5
    store_folder: Path | None = None  # None: `<cache>/index`


@dataclass(frozen=True)
class IndexProgress:
    done: int
    total: int
    message: str
    finished: bool = False


@dataclass(frozen=True)
class PassSummary:
    """What the first pass (or a later full pass) did."""

    files: int  # indexable files found
    indexed: int  # read again because new or changed
    removed: int
    skipped: int  # read but not indexed: binary, generated, minified, huge
    bytes_read: int
    seconds: float
    workers: int  # processes used (0: the index thread itself)


@dataclass
class _Pending:
    due: float
    since: float  # when the first event for it arrived (perf_counter)
    from_event: bool


ProgressCallback = Callable[[IndexProgress], None]


class WorkspaceIndex:
    def __init__(
        self,
        root: Path,
        options: IndexOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.options = options or IndexOptions()
        self.rules = WorkspaceRules(root, self.options.walk)
        self.root = self.rules.root
        self._on_progress = on_progress
        self._store: IndexStore | None = None
        self.reader: StoreReader | None = None
        self.paths = WorkspacePaths.of(())
        self._known_paths: set[str] = set()
        self.summary: PassSummary | None = None
        self.failure = ""
        self.update_latencies_ms: deque[float] = deque(maxlen=LATENCY_HISTORY)

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: dict[str, _Pending] = {}
        self._overlay: dict[str, str] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._disk_texts: dict[str, tuple[int, str]] = {}
        # The text each open document's stored entry was extracted from, with the version the
        # store gave that entry (index thread only): see `_holds`.
        self._overlay_indexed: dict[str, tuple[str, int]] = {}
        self._admitted: dict[str, bool] = {}
        self._stopping = False
        self._ready = threading.Event()
        self._updated = threading.Condition()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nexttoken-index", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        observer = self._observer
        if observer is not None:
            observer.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if observer is not None:
            observer.join(timeout)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the first pass to finish (or fail); True when it did in time."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def generation(self) -> int:
        """Grows with every change written to the store."""
        return self._generation

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until `condition()` holds, checking it after each change to the store."""
        deadline = time.monotonic() + timeout
        with self._updated:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or not self._updated.wait(left):
                    return condition()
        return True

    # -- open documents --------------------------------------------------------------------

    def document_changed(self, path: Path, text: str) -> None:
        """An opened or edited document: its text is what the index shows from now on."""
        relative = self.rules.relative(path)
        if relative is None or not self._admits_document(relative):
            return
        with self._wake:
            self._overlay[relative] = text
            self._recent.pop(relative, None)
            self._recent[relative] = None
            while len(self._recent) > RECENT_DOCUMENTS:
                self._recent.popitem(last=False)
            self._schedule(relative, self.options.document_debounce_ms, from_event=False)

    def document_closed(self, path: Path) -> None:
        relative = self.rules.relative(path)
        if relative is None:
            return
        with self._wake:
            if self._overlay.pop(relative, None) is not None:
                self._schedule(relative, 0, from_event=False)

    def forget_recent_documents(self) -> None:
        """Start the list of recent documents afresh (a new editor session, a benchmark
        case that must not see the last one's tabs)."""
        with self._lock:
            self._recent.clear()

    def recent_documents(self) -> list[str]:
        """Recently opened or edited documents, the latest last."""
        with self._lock:
            return list(self._recent)

    def text_of(self, relative: str) -> str | None:
        """A file's text as the index sees it: the open document's, else the disk's."""
        with self._lock:
            text = self._overlay.get(relative)
        if text is not None:
            return text
        absolute = self.root / relative
        try:
            mtime = absolute.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._disk_texts.get(relative)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            text = absolute.read_bytes().decode("utf-8", "replace")
        except OSError:
            return None
        if len(self._disk_texts) > 4 * RECENT_DOCUMENTS:
            self._disk_texts.clear()
        self._disk_texts[relative] = (mtime, text)
        return text

    def _admits_document(self, relative: str) -> bool:
        """The path rules of the walk, without its disk checks: the document may be unsaved.
        Kept per path: it is asked on every keystroke."""
        admitted = self._admitted.get(relative)
        if admitted is None:
            folder, _, name = relative.rpartition("/")
            admitted = (
                self.rules.admits_name(name)
                and self.rules.admits_folder(folder)
                and not self.rules.ignored(relative, is_folder=False)
            )
            if len(self._admitted) > 1024:
                self._admitted.clear()
            self._admitted[relative] = admitted
        return admitted

    # -- pending work ----------------------------------------------------------------------

    def _schedule(self, key: str, delay_ms: int, *, from_event: bool) -> None:
        """Queue `key` (a path, a folder or a full pass); call with the lock held."""
        now = time.perf_counter()
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(now + delay_ms / 1000, now, from_event)
        else:
            pending.due = min(now + delay_ms / 1000, pending.since + MAX_DEBOUNCE_S)
            pending.from_event = pending.from_event or from_event
        self._wake.notify()

    def on_filesystem_event(self, event: FileSystemEvent) -> None:
        """From watchdog's thread: turn an event into pending work."""
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path]
        if event.event_type == "moved":
            paths.append(event.dest_path)
        for raw in paths:
            relative = self.rules.relative(os.fsdecode(raw))
            if relative is None:
                continue
            parts = relative.split("/")
            if any(part in SKIPPED_FOLDERS for part in parts[:-1]):
                continue
            with self._wake:
                if parts[-1] == ".gitignore":
                    self.rules.forget_ignore_files()
                    self._admitted.clear()
                    self._schedule(_FULL_PASS, self.options.debounce_ms, from_event=True)
                elif event.is_directory:
                    # A folder that appears (or is renamed into view) is walked; one that goes
                    # is walked too, finding nothing, which drops what the store held under it.
                    if event.event_type != "modified" and (
                        event.event_type == "deleted" or self.rules.admits_folder(relative)
                    ):
                        self._schedule(
                            _FOLDER + relative, self.options.debounce_ms, from_event=True
                        )
                elif self.rules.admits_name(parts[-1]):
                    self._schedule(relative, self.options.debounce_ms, from_event=True)

    def _next_work(self) -> dict[str, _Pending] | None:
        with self._wake:
            while not self._stopping:
                if self._pending:
                    now = time.perf_counter()
                    due = {key: p for key, p in self._pending.items() if p.due <= now}
                    if due:
                        for key in due:
                            del self._pending[key]
                        return due
                    self._wake.wait(min(p.due for p in self._pending.values()) - now)
                else:
                    self._wake.wait()
        return None

    # -- the index thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._store = IndexStore(self.root, self._store_path())
            except StoreUnavailable as exc:
                self.failure = str(exc)
                log.error("%s: the workspace index is off", exc)
                return
            self.reader = StoreReader(self._store.path)
            self._publish_paths(set(self._store.file_states()))
            self._watch()
            self.summary = self._full_pass()
            self._ready.set()
            while (work := self._next_work()) is not None:
                try:
                    self._apply(work)
                except sqlite3.DatabaseError as exc:
                    self._rebuild(str(exc))
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("the workspace index stopped")
        finally:
            self._ready.set()
            if self._store is not None:
                self._store.close()
            self._notify_updated()

    def _rebuild(self, reason: str) -> None:
        """The store broke under us (deleted, corrupted, disk trouble): start it afresh."""
        log.warning("index store %s failed (%s): rebuilding it", self._store_path(), reason)
        if self._store is not None:
            with contextlib.suppress(sqlite3.Error):
                self._store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._store_path()}{suffix}").unlink(missing_ok=True)
        self._store = IndexStore(self.root, self._store_path())
        if self.reader is not None:
            self.reader.reset()
        self._known_paths = set()
        self._overlay_indexed.clear()  # the new store numbers versions afresh
        self.summary = self._full_pass()

    def _store_path(self) -> Path:
        return store_path_for(self.root, self.options.store_folder)

    def _watch(self) -> None:
        observer = Observer()
        handler = _EventForwarder(self)
        try:
            observer.schedule(handler, str(self.root), recursive=True)
            observer.daemon = True
            observer.start()
        except OSError as exc:  # inotify limits, a vanished folder
            log.warning(
                "cannot watch %s (%s): the index updates only for open documents", self.root, exc
            )
            return
        self._observer = observer

    def _apply(self, work: dict[str, _Pending]) -> None:
        assert self._store is not None
        if _FULL_PASS in work:
            self._full_pass()
        for key in work:
            if key.startswith(_FOLDER):
                self._folder_pass(key[len(_FOLDER) :])
        files = [key for key in work if not key.startswith("\x00")]
        written: list[tuple[FileEntry, FileState]] = []
        gone: list[str] = []
        with self._lock:
            overlay = {path: self._overlay[path] for path in files if path in self._overlay}
        for path in files:
            if path in overlay:
                if not self._holds(path, overlay[path]):
                    written.append((entry_from_text(path, overlay[path]), _UNSAVED))
                continue
            self._overlay_indexed.pop(path, None)
            result = read_file(str(self.root), path, self.options.walk.max_file_bytes)
            if result is None or not self.rules.admits(path):
                gone.append(path)
            else:
                written.append((result.entry, FileState(result.mtime_ns, result.size)))
        self._store.write(written)
        self._store.delete(gone)
        for entry, state in written:
            indexed = self._store.indexed_as(entry.path) if state == _UNSAVED else None
            if indexed is not None:
                self._overlay_indexed[entry.path] = (overlay[entry.path], indexed[1])
        self._publish_paths((self._known_paths | {e.path for e, _ in written}) - set(gone))
        done = time.perf_counter()
        for path in files:
            if work[path].from_event:
                self.update_latencies_ms.append((done - work[path].since) * 1000)
        self._notify_updated()

    def _holds(self, path: str, text: str) -> bool:
        """Whether the store's entry of `path` was extracted from exactly `text`: a document
        opened as it is on disk, or an open document edited back to the text last indexed.
        Indexing it again would change nothing but its version, which keys the caches of
        completion requests: they would redo their work (and wait for the GIL while this
        thread parses) for the same content."""
        assert self._store is not None
        indexed = self._store.indexed_as(path)
        if indexed is None:
            return False
        state, version = indexed
        if state == _UNSAVED:
            return self._overlay_indexed.get(path) == (text, version)
        return self._indexed_disk_text(path, state) == text

    def _indexed_disk_text(self, path: str, state: FileState) -> str | None:
        """The file's text when it is still what the store read (same `stat`) and was indexed
        (not skipped as huge, binary, generated or minified, which stores an empty entry)."""
        if not self.rules.admits(path):  # replaced by a link out of the workspace since
            return None
        try:
            with open(self.root / path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if FileState(info.st_mtime_ns, info.st_size) != state:
                    return None
                data = handle.read(self.options.walk.max_file_bytes + 1)
        except OSError:
            return None
        if len(data) > self.options.walk.max_file_bytes:
            return None
        text = data.decode("utf-8", "replace")
        return None if looks_indexable(text) else text

    def _full_pass(self) -> PassSummary:
        limit = self.options.walk.max_files
        found = list(itertools.islice(self.rules.walk(), limit + 1))
        if len(found) > limit:
            # A home folder opened as a workspace: index a part rather than the whole disk.
            log.warning(
                "%s holds more than %d indexable files: indexing the first %d (see "
                "the indexExclude setting)",
                self.root,
                limit,
                limit,
            )
            found = found[:limit]
        return self._pass(found, folder=None)

    def _folder_pass(self, folder: str) -> PassSummary:
        return self._pass(self.rules.walk(folder), folder=folder)

    def _pass(self, found_files: Iterable[FoundFile], folder: str | None) -> PassSummary:
        assert self._store is not None
        started = time.perf_counter()
        found = {found.path: found for found in found_files}
        if folder is None:
            stored = self._store.file_states()
        else:
            stored = {
                p: s for p, s in self._store.file_states().items() if p.startswith(folder + "/")
            }
        with self._lock:
            overlay = dict(self._overlay)
        removed = [path for path in stored if path not in found and path not in overlay]
        changed = [
            found_file
            for path, found_file in found.items()
            if path not in overlay
            and stored.get(path) != FileState(found_file.mtime_ns, found_file.size)
        ]
        self._store.delete(removed)
        self._store.write(
            (entry_from_text(path, text), _UNSAVED)
            for path, text in overlay.items()
            if folder is None or path.startswith(folder + "/")
        )
        indexed, skipped, read_bytes, workers = self._index_files(changed)
        paths = (self._known_paths - set(removed)) | set(found) | set(overlay)
        self._publish_paths(paths)
        self._notify_updated()
        summary = PassSummary(
            files=len(found),
            indexed=indexed,
            removed=len(removed),
            skipped=skipped,
            bytes_read=read_bytes,
            seconds=time.perf_counter() - started,
            workers=workers,
        )
        log.info("index of %s%s: %s", self.root, f"/{folder}" if folder else "", summary)
        return summary

    def _index_files(self, files: list[FoundFile]) -> tuple[int, int, int, int]:
        """Read and store these files; returns (indexed, skipped, bytes, processes used)."""
        assert self._store is not None
        total = len(files)
        if not files:
            self._progress(0, 0, "index up to date", finished=True)
            return 0, 0, 0, 0
        self._progress(0, total, f"indexing {total} files")
        batches = [
            [found.path for found in files[start : start + BATCH_FILES]]
            for start in range(0, total, BATCH_FILES)
        ]
        workers = self._worker_count(files)
        root, limit = str(self.root), self.options.walk.max_file_bytes
        indexed = skipped = read_bytes = done = 0

        def store_batch(results: list[tuple[str, ReadResult | None]]) -> None:
            nonlocal indexed, skipped, read_bytes, done
            rows = []
            for _path, result in results:
                if result is None:
                    continue
                rows.append((result.entry, FileState(result.mtime_ns, result.size)))
                read_bytes += result.size
                skipped += bool(result.skipped)
                indexed += not result.skipped
            self._store.write(rows)  # type: ignore[union-attr]
            done += len(results)
            self._progress(done, total, f"indexed {done}/{total} files")

        remaining = batches
        if workers:
            try:
                remaining = self._in_processes(batches, workers, store_batch)
            except (OSError, RuntimeError, BrokenProcessPool) as exc:
                # No processes here (a frozen app, an unguarded __main__, a sandbox): the
                # index thread does the rest itself, slower but the same.
                log.warning("indexing in worker processes failed (%s): indexing in-thread", exc)
                workers = 0
        for batch in remaining:
            if self._stopping:
                break
            store_batch(read_files(root, batch, limit))
        self._progress(done, total, f"indexed {indexed} files", finished=True)
        return indexed, skipped, read_bytes, workers

    def _in_processes(
        self,
        batches: list[list[str]],
        workers: int,
        store_batch: Callable[[list[tuple[str, ReadResult | None]]], None],
    ) -> list[list[str]]:
        """Read the batches in worker processes, storing results in order; returns the
        batches left undone when the processes fail."""
        pool = ProcessPoolExecutor(
            max_workers=workers,
            # Not fork: the server has threads, and a forked child may inherit a lock held by
            # one of them.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=lower_priority,
            initargs=(self.options.worker_niceness,),
        )
        root, limit = str(self.root), self.options.walk.max_file_bytes
        done = 0
        try:
            futures: list[Future[list[tuple[str, ReadResult | None]]]] = [
                pool.submit(read_files, root, batch, limit) for batch in batches
            ]
            for future in futures:
                if self._stopping:
                    break
                store_batch(future.result())
                done += 1
        except (OSError, RuntimeError, BrokenProcessPool):
            pool.shutdown(wait=False, cancel_futures=True)
            if done == 0:
                raise
            log.warning("a worker process failed: indexing the rest in-thread", exc_info=True)
            return batches[done:]
        pool.shutdown(wait=not self._stopping, cancel_futures=True)
        return []

    def _worker_count(self, files: list[FoundFile]) -> int:
        requested = self.options.workers or (os.cpu_count() or 1)
        if requested <= 1 or sum(found.size for found in files) < POOL_MIN_BYTES:
            return 0
        return min(requested, len(files) // BATCH_FILES + 1)

    # -- telling others --------------------------------------------------------------------

    def _publish_paths(self, paths: set[str]) -> None:
        if paths != self._known_paths or not self.paths.paths and paths:
            self._known_paths = paths
            # Replaced whole: a request holding the old snapshot keeps a consistent one.
            self.paths = WorkspacePaths.of(paths)

    def _notify_updated(self) -> None:
        with self._updated:
            self._generation += 1
            self._updated.notify_all()

    def _progress(self, done: int, total: int, message: str, finished: bool = False) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(IndexProgress(done, total, message, finished))
        except Exception:  # a listener's bug must not stop the index
            log.exception("index progress listener failed")


class _EventForwarder(FileSystemEventHandler):
    def __init__(self, index: WorkspaceIndex) -> None:
        self._index = index

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._index.on_filesystem_event(event)
