"""Repository context for a completion: what other files of the workspace the model sees.

Two halves. `ContextRetriever.retrieve` (in the server, per request) asks the workspace index
for (a) the definitions of the names used around the cursor and of the names the file
imports, resolved to workspace files, with a class's members when the cursor follows
`value.`, and (b) the chunks of recently opened or edited files most similar to the text
around the cursor (Jaccard over identifier sets, as Copilot's neighbouring tabs). It returns
scored `ContextSnippet`s. `render_repo_context` (in the pipeline, which has the tokenizer)
packs the best of them into a token budget and writes them out, file by file, framed with
the model's `<file_sep>`/`<filename>` and `<repo_name>` tokens where the manifest has them and
with path comments otherwise, in an order that depends on what they are, not on their scores,
so the text placed before the file stays put (and cached) while the user types.

This module never blocks on the index (it reads what the store holds now), never reads a file
the index does not hold, and lets no line the secret filter flags into a snippet.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from tokenizers import Tokenizer
from tree_sitter import Node, QueryCursor

from completion.cursor import InvalidPositionError, split_at
from completion.request import CompletionRequest, ContextSnippet
from indexer.extract import TYPE_KINDS, Import, Symbol, parser_for
from indexer.index import WorkspaceIndex
from indexer.languages import (
    IDENTIFIER,
    IndexLanguage,
    LoadedLanguage,
    language_for_id,
    language_for_path,
    load,
)
from indexer.resolve import WorkspacePaths, resolve_import
from indexer.store import FileRecord, StoredSymbol, StoreReader
from onnx_models.manifest import ModelManifest

log = logging.getLogger(__name__)

# Prompt order, most stable first: what the file imports changes least, the chunks similar to
# the cursor's surroundings change when the cursor moves to other lines, the definitions of
# the names next to the cursor change as names are typed, and a member list appears at a dot.
LAYER_IMPORTED = 0
LAYER_SIMILAR = 1
LAYER_NEARBY = 2
LAYER_MEMBERS = 3

# Languages that see each other's definitions.
_FAMILIES = {"typescript": "js", "tsx": "js", "javascript": "js", "c": "c", "cpp": "c"}
# Languages where a name used without an import can only be a local or a builtin: looking
# it up across the workspace would find unrelated definitions that share the name.
_IMPORT_SCOPED = frozenset({"python", "javascript", "typescript", "tsx"})
# Languages whose files in one folder share a namespace without importing each other.
_FOLDER_SCOPED = frozenset({"go", "java"})
_MEMBER_KINDS = frozenset({"method", "field"})
# Kinds whose members may be defined in other files of the folder (Go's methods, C++'s
# out-of-class definitions).
_SPREAD_KINDS = frozenset({"struct", "type", "interface"})
_MEMBERS_CACHED = 512
_SELF_NAMES = frozenset({"self", "this", "cls"})
_MEMBER_ACCESS = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\.|->|::)\s*[A-Za-z_0-9]*$")
# What the "..." line between two snippets of one file costs, at most.
_GAP_TOKENS = 4
_RETURN_TYPE = re.compile(
    r"(?:->\s*|\)\s*:\s*|\)\s+\*?)&?(?:mut\s+)?([A-Za-z_][A-Za-z0-9_]*)[^()]*$"
)


@dataclass(frozen=True)
class ContextOptions:
    lines_before: int = 30  # the window around the cursor whose names are looked up
    lines_after: int = 5
    max_names: int = 40  # distinct names from the window, nearest first
    max_definitions: int = 16
    max_members: int = 40  # of one class, in a member list
    max_imported_members: int = 8  # of a class imported but not used near the cursor
    max_module_symbols: int = 30  # of one module, at `module.`
    # A name defined (top level) in more files than this, and not imported, is too
    # ambiguous to guess which one is meant.
    max_files_per_name: int = 2
    # Similar chunks: Jaccard over identifier sets, from this many recent documents.
    similar_chunks: int = 4
    min_similarity: float = 0.12
    recent_documents: int = 10


@dataclass(frozen=True)
class _Use:
    """A name in the window around the cursor."""

    name: str
    distance: int  # lines from the cursor
    qualifier: str  # the name before the dot when it is `qualifier.name`, else ""


@dataclass(frozen=True)
class _Binding:
    """What an import makes a local name stand for."""

    files: tuple[str, ...]
    name: str  # the imported name; "" when it is a module (or package)


@dataclass(frozen=True)
class _FileFacts:
    bindings: dict[str, _Binding]
    own_names: frozenset[str]  # top-level names the file defines
    own_types: tuple[Symbol, ...]  # its classes (structs, ...), outer first


@dataclass(frozen=True)
class _ChunkMasks:
    """A file's chunks with their identifier sets as bit masks over the file's own
    identifiers: `(mask & wanted).bit_count()` counts the identifiers a chunk shares with the
    cursor's window in one step, where intersecting sets built a set per chunk (hundreds of
    chunks per request)."""

    bits: dict[str, int]  # identifier -> its bit
    chunks: tuple[tuple[int, int, int, int], ...]  # start line, end line, mask, identifiers


@dataclass
class _Candidate:
    snippet: ContextSnippet
    end_line: int


LineFilter = Callable[[str], bool]  # True for a line that must not be shown


class ContextRetriever:
    def __init__(
        self,
        index: WorkspaceIndex,
        options: ContextOptions | None = None,
    ) -> None:
        self.index = index
        self.options = options or ContextOptions()
        self._chunk_cache: OrderedDict[tuple[str, int], _ChunkMasks] = OrderedDict()
        # By path and version, with the paths snapshot the imports were resolved against.
        self._facts_cache: OrderedDict[tuple[str, int], tuple[WorkspacePaths, _FileFacts]] = (
            OrderedDict()
        )
        # A class's members, by its file's version: the names near the cursor come back
        # request after request, and a class without members reads its whole file.
        self._members_cache: OrderedDict[tuple[str, int, Symbol], tuple[Symbol, ...]] = (
            OrderedDict()
        )
        self._cache_lock = threading.Lock()

    def retrieve(
        self, request: CompletionRequest, path: str | None = None
    ) -> tuple[ContextSnippet, ...]:
        """Scored snippets for the request, best first; () when the index has nothing yet.

        `path` is the file's path relative to the index's root when `request.path` is not."""
        reader = self.index.reader
        path = request.path if path is None else path
        if reader is None or not path:
            return ()
        try:
            return self._retrieve(reader, request, path)
        except sqlite3.Error as exc:
            # The store is being rebuilt under us: this request goes without context.
            log.warning("context retrieval skipped: %s", exc)
            reader.reset()
            return ()
        except InvalidPositionError:
            return ()

    # -- the steps -------------------------------------------------------------------------

    def _retrieve(
        self, reader: StoreReader, request: CompletionRequest, path: str
    ) -> tuple[ContextSnippet, ...]:
        row = language_for_id(request.language_id) or language_for_path(path)
        cursor = split_at(request.text, request.position)
        prefix, suffix, line_prefix = cursor.prefix, cursor.suffix, cursor.line_prefix
        before = prefix.rsplit("\n", self.options.lines_before + 1)
        after = suffix.split("\n", self.options.lines_after + 1)[: self.options.lines_after]
        window_before = "\n".join(before[1:] if len(before) > self.options.lines_before else before)
        facts = self._facts(reader, path, row)

        candidates: list[_Candidate] = []
        member_access = _MEMBER_ACCESS.search(line_prefix)
        if member_access is not None:
            candidates += self._members(
                reader,
                member_access.group(1),
                path,
                row,
                facts.bindings,
                facts.own_types,
                prefix,
                request.position.line,
            )
        uses = _uses(row, window_before, "\n".join(after), line_prefix, self.options.max_names)
        candidates += self._definitions(reader, path, row, uses, facts.bindings, facts.own_names)
        candidates += self._similar_chunks(reader, path, window_before + "\n" + "\n".join(after))
        return _deduplicated(candidates)

    def _facts(self, reader: StoreReader, path: str, row: IndexLanguage | None) -> _FileFacts:
        """What the index knows of the file itself, kept while neither it nor the set of
        workspace files changes (resolving imports is the costly part)."""
        record = reader.file(path)
        if record is None:
            return _FileFacts({}, frozenset(), ())
        paths = self.index.paths
        key = (path, record.version)
        with self._cache_lock:
            cached = self._facts_cache.get(key)
        # The snapshot itself, not its `id()`: a freed snapshot's id is reused by a later one,
        # which made facts resolved against an older set of files (even an empty one, before
        # the first pass published its paths) pass for current.
        if cached is not None and cached[0] is paths:
            return cached[1]
        own = [stored.symbol for stored in reader.symbols_in([record.id])]
        bindings = import_bindings(path, reader.imports_of(record.id), row, paths)
        facts = _FileFacts(
            bindings=_through_reexports(reader, bindings, row, paths),
            own_names=frozenset(symbol.name for symbol in own if not symbol.parent),
            own_types=tuple(symbol for symbol in own if symbol.kind in TYPE_KINDS),
        )
        with self._cache_lock:
            self._facts_cache[key] = (paths, facts)
            while len(self._facts_cache) > 4 * self.options.recent_documents:
                self._facts_cache.popitem(last=False)
        return facts

    def _definitions(
        self,
        reader: StoreReader,
        path: str,
        row: IndexLanguage | None,
        uses: list[_Use],
        bindings: dict[str, _Binding],
        own_names: set[str],
    ) -> list[_Candidate]:
        family = _family(row.name if row else "")
        wanted: dict[str, float] = {}  # name -> best proximity
        lookup_files: dict[str, tuple[str, ...] | None] = {}  # name -> files to look in
        for use in uses:
            files: tuple[str, ...] | None
            if use.qualifier:
                binding = bindings.get(use.qualifier)
                if binding is None or binding.name:
                    continue  # `value.member`: members come with the value's class
                target, files = use.name, binding.files
            elif use.name in bindings:
                binding = bindings[use.name]
                if not binding.name:
                    continue  # a module: its names are listed at `module.`
                target, files = binding.name, binding.files
            elif use.name in own_names:
                continue  # defined in this file, which the model sees anyway
            elif row is not None and row.name in _IMPORT_SCOPED:
                continue  # not imported: a local or a builtin
            elif row is not None and row.name in _FOLDER_SCOPED:
                target, files = use.name, paths_in(self.index.paths, path.rpartition("/")[0])
            else:
                target, files = use.name, None  # anywhere, when not ambiguous
            if target not in wanted:
                lookup_files[target] = files
            proximity = 1.0 / (1.0 + use.distance / 8.0)
            wanted[target] = max(wanted.get(target, 0.0), proximity)
        # Imported names not used near the cursor: the file's own vocabulary, shown once.
        imported: dict[str, tuple[str, ...]] = {
            binding.name: binding.files
            for binding in bindings.values()
            if binding.name and binding.name not in wanted
        }
        names = list(wanted) + list(imported)
        if not names:
            return []
        found: dict[str, list[StoredSymbol]] = {}
        for stored in reader.symbols_named(names, limit=40 * len(names), members=False):
            found.setdefault(stored.symbol.name, []).append(stored)
        candidates: list[_Candidate] = []
        for name in names:
            if name in wanted:
                files, score, layer = lookup_files[name], 3.0 * wanted[name], LAYER_NEARBY
            else:
                files, score, layer = imported[name], 1.0, LAYER_IMPORTED
            chosen = _choose_definitions(
                found.get(name, []), files, path, family, self.options.max_files_per_name
            )
            for stored in chosen[:2]:
                candidates.append(self._definition_snippet(reader, stored, score, layer))
            if len(candidates) >= self.options.max_definitions:
                break
        return candidates

    def _definition_snippet(
        self, reader: StoreReader, stored: StoredSymbol, score: float, layer: int
    ) -> _Candidate:
        symbol = stored.symbol
        row = language_for_path(stored.path)
        if symbol.kind in TYPE_KINDS:
            members = self._members_of(reader, stored)
            if layer == LAYER_IMPORTED:
                # Imported but not used nearby: its shape, not its whole surface.
                members = members[: self.options.max_imported_members]
            text = _outline(row, symbol, members, with_doc=True)
        else:
            container = self._container_of(reader, stored)
            text = (
                _outline(row, container, [symbol], with_doc=True)
                if container
                else (_member_line(row, symbol, with_doc=True, indent=""))
            )
        return self._candidate(stored.path, symbol.start_line, symbol.end_line, text, score, layer)

    def _members(
        self,
        reader: StoreReader,
        receiver: str,
        path: str,
        row: IndexLanguage | None,
        bindings: dict[str, _Binding],
        own_types: tuple[Symbol, ...],
        prefix: str,
        cursor_line: int,
    ) -> list[_Candidate]:
        """What `receiver.` can be followed by: a module's names or a class's members."""
        family = _family(row.name if row else "")
        binding = bindings.get(receiver)
        if binding is not None and not binding.name:
            return self._module_listing(reader, binding.files, receiver)
        type_names: list[str] = []
        if receiver in _SELF_NAMES:
            enclosing = [s for s in own_types if s.start_line <= cursor_line <= s.end_line]
            if enclosing:
                # Its own members are in this file already; its bases' are not.
                type_names = _base_names(enclosing[-1], row)
        elif binding is not None:
            type_names = [binding.name]
        else:
            type_names = [receiver] + _inferred_types(receiver, prefix, row)
        if not type_names:
            return []
        found: dict[str, list[StoredSymbol]] = {}
        for stored in reader.symbols_named(type_names, limit=200, members=False):
            found.setdefault(stored.symbol.name, []).append(stored)
        for name in type_names:
            files = bindings[name].files if name in bindings else None
            types = [s for s in found.get(name, []) if s.symbol.kind in TYPE_KINDS]
            chosen = _choose_definitions(
                types, files, path, family, self.options.max_files_per_name
            )
            if chosen:
                stored = chosen[0]
                members = self._members_of(reader, stored)
                text = _outline(
                    language_for_path(stored.path), stored.symbol, members, with_doc=True
                )
                return [
                    self._candidate(
                        stored.path,
                        stored.symbol.start_line,
                        stored.symbol.end_line,
                        text,
                        10.0,
                        LAYER_MEMBERS,
                    )
                ]
            # A function's return type: `cart = make_cart()` then `cart.`.
            functions = [s for s in found.get(name, []) if s.symbol.kind == "function"]
            for function in _choose_definitions(functions, files, path, family, 1):
                returned = _RETURN_TYPE.search(function.symbol.signature)
                if returned and returned.group(1) not in type_names:
                    type_names.append(returned.group(1))
                    return self._members(
                        reader, returned.group(1), path, row, bindings, own_types, "", cursor_line
                    )
        return []

    def _module_listing(
        self, reader: StoreReader, files: tuple[str, ...], alias: str
    ) -> list[_Candidate]:
        records = list(reader.files_at(files).values())
        symbols = reader.symbols_in([record.id for record in records], parent="")
        candidates = []
        for record in records:
            own = [s.symbol for s in symbols if s.path == record.path]
            own = [s for s in own if not s.name.startswith("_")][: self.options.max_module_symbols]
            if not own:
                continue
            row = language_for_path(record.path)
            text = "\n".join(_member_line(row, symbol, with_doc=False, indent="") for symbol in own)
            last = max(symbol.end_line for symbol in own)
            candidates.append(self._candidate(record.path, 0, last, text, 10.0, LAYER_MEMBERS))
        return candidates

    def _members_of(self, reader: StoreReader, stored: StoredSymbol) -> list[Symbol]:
        symbol = stored.symbol
        chain = f"{symbol.parent}.{symbol.name}" if symbol.parent else symbol.name
        record = reader.file(stored.path)
        if record is None:
            return []
        # Members from other files too (below) would need their versions in the key.
        key = None if symbol.kind in _SPREAD_KINDS else (stored.path, record.version, symbol)
        if key is not None:
            with self._cache_lock:
                cached = self._members_cache.get(key)
                if cached is not None:
                    self._members_cache.move_to_end(key)
                    return list(cached)
        file_ids = [record.id]
        if symbol.kind in _SPREAD_KINDS:
            # Go's methods, C++'s out-of-class definitions: in other files of the folder.
            folder = stored.path.rpartition("/")[0]
            siblings = [p for p in paths_in(self.index.paths, folder) if p != stored.path][:8]
            file_ids += [r.id for r in reader.files_at(siblings).values()]
        members = [s.symbol for s in reader.symbols_in(file_ids, parent=chain)]
        if not members:
            # A typedef'd struct: its fields belong to the struct it wraps.
            inside = reader.symbols_in([record.id])
            members = [
                s.symbol
                for s in inside
                if s.symbol.parent and symbol.start_line <= s.symbol.start_line <= symbol.end_line
            ]
        public = [m for m in members if not m.name.startswith("__") or m.name == "__init__"]
        public = public[: self.options.max_members]
        if key is not None:
            with self._cache_lock:
                self._members_cache[key] = tuple(public)
                while len(self._members_cache) > _MEMBERS_CACHED:
                    self._members_cache.popitem(last=False)
        return public

    def _container_of(self, reader: StoreReader, stored: StoredSymbol) -> Symbol | None:
        symbol = stored.symbol
        if not symbol.parent:
            return None
        record = reader.file(stored.path)
        if record is None:
            return None
        outer, _, name = symbol.parent.rpartition(".")
        for candidate in reader.symbols_in([record.id], parent=outer):
            found = candidate.symbol
            if found.name == name and found.start_line <= symbol.start_line <= found.end_line:
                return found
        return None

    def _similar_chunks(self, reader: StoreReader, path: str, window: str) -> list[_Candidate]:
        target = _identifier_set(window)
        if not target:
            return []
        scored: list[tuple[float, str, int, int]] = []
        recent = [p for p in self.index.recent_documents() if p != path]
        recent = recent[-self.options.recent_documents :]
        records = reader.files_at(recent)
        for other in reversed(recent):
            record = records.get(other)
            if record is None:
                continue
            masks = self._chunk_masks(reader, record)
            wanted = 0
            for name in target & masks.bits.keys():
                wanted |= masks.bits[name]
            if not wanted:
                continue
            for start, end, mask, size in masks.chunks:
                shared = (mask & wanted).bit_count()
                if not shared:
                    continue
                # |A ∪ B| from the sizes: no union set built per chunk.
                similarity = shared / (len(target) + size - shared)
                if similarity >= self.options.min_similarity:
                    scored.append((similarity, other, start, end))
        scored.sort(key=lambda item: -item[0])
        candidates = []
        for similarity, other, start, end in scored[: self.options.similar_chunks]:
            text = self.index.text_of(other)
            if text is None:
                continue
            chunk = "\n".join(text.split("\n")[start : end + 1]).rstrip()
            candidates.append(
                self._candidate(other, start, end, chunk, 2.0 * similarity, LAYER_SIMILAR)
            )
        return candidates

    def _chunk_masks(self, reader: StoreReader, record: FileRecord) -> _ChunkMasks:
        path = record.path
        key = (path, record.version)
        with self._cache_lock:
            cached = self._chunk_cache.get(key)
            if cached is not None:
                self._chunk_cache.move_to_end(key)
                return cached
        text = self.index.text_of(path)
        if text is None:
            return _ChunkMasks({}, ())
        lines = text.split("\n")
        bits: dict[str, int] = {}
        chunks = []
        for chunk in reader.chunks_of(record.id):
            identifiers = _identifier_set("\n".join(lines[chunk.start_line : chunk.end_line + 1]))
            mask = 0
            for name in identifiers:
                bit = bits.get(name)
                if bit is None:
                    bit = bits[name] = 1 << len(bits)
                mask |= bit
            chunks.append((chunk.start_line, chunk.end_line, mask, len(identifiers)))
        masks = _ChunkMasks(bits, tuple(chunks))
        with self._cache_lock:
            self._chunk_cache[key] = masks
            while len(self._chunk_cache) > 4 * self.options.recent_documents:
                self._chunk_cache.popitem(last=False)
        return masks

    def _candidate(
        self, path: str, start: int, end: int, text: str, score: float, layer: int
    ) -> _Candidate:
        return _Candidate(ContextSnippet(path, start, text, score, layer), end)


# -- helpers ---------------------------------------------------------------------------------


def paths_in(paths: WorkspacePaths, folder: str) -> tuple[str, ...]:
    return paths.by_folder.get(folder, ())


def _family(language: str) -> str:
    return _FAMILIES.get(language, language)


def import_bindings(
    path: str, imports: list[Import], row: IndexLanguage | None, paths: WorkspacePaths
) -> dict[str, _Binding]:
    """What each name the file imports stands for, for the imports that resolve to files of
    the workspace."""
    if row is None:
        return {}
    bindings: dict[str, _Binding] = {}
    for found in imports:
        local = found.local_name
        if not local:
            continue
        files = resolve_import(path, found, row.import_style, paths)
        if not files:
            continue
        name = "" if found.name in ("", "*") else found.name
        if name and len(files) == 1 and _module_stem(files[0]) == name:
            name = ""  # `from pkg import mod`: a module after all
        if name == "default":
            name = local  # `import Cart from "./cart"`: the default export is usually named so
        bindings[local] = _Binding(files, name)
    return bindings


def _through_reexports(
    reader: StoreReader,
    bindings: dict[str, _Binding],
    row: IndexLanguage | None,
    paths: WorkspacePaths,
) -> dict[str, _Binding]:
    """Bindings whose files do not define the imported name, followed one import further:
    `from pkg import Name` where pkg/__init__.py imports Name from pkg/impl.py."""
    named = {local: b for local, b in bindings.items() if b.name}
    if not named or row is None:
        return bindings
    defined = {
        (s.path, s.symbol.name)
        for s in reader.symbols_named([b.name for b in named.values()], members=False)
    }
    followed = dict(bindings)
    for local, binding in named.items():
        if any((path, binding.name) in defined for path in binding.files):
            continue
        records = reader.files_at(binding.files)
        for path, record in records.items():
            for found in reader.imports_of(record.id):
                if found.local_name == binding.name and found.name:
                    files = resolve_import(path, found, row.import_style, paths)
                    if files:
                        followed[local] = _Binding(files, found.name)
    return followed


def _module_stem(path: str) -> str:
    """The name a file is imported by: `money` for money.py and for money/__init__.py."""
    pure = PurePosixPath(path)
    return pure.parent.name if pure.stem in ("__init__", "index", "mod") else pure.stem


def _uses(
    row: IndexLanguage | None, before: str, after: str, line_prefix: str, limit: int
) -> list[_Use]:
    """Names in the window, nearest to the cursor first, without the word being typed."""
    partial = re.search(r"[A-Za-z_0-9]+$", line_prefix)
    typed = len(partial.group(0)) if partial is not None else 0
    cursor_row = before.count("\n")
    text = before[: len(before) - typed] + "\n" + after
    loaded = load(row) if row is not None else None
    found: dict[str, _Use] = {}
    for name, line, qualifier in _names(loaded, text):
        if loaded is not None and name in loaded.keywords:
            continue
        distance = cursor_row - line if line <= cursor_row else line - cursor_row
        use = _Use(name, distance, qualifier)
        key = f"{qualifier}.{name}"
        if key not in found or found[key].distance > distance:
            found[key] = use
    return sorted(found.values(), key=lambda use: use.distance)[:limit]


def _names(loaded: LoadedLanguage | None, text: str) -> Iterable[tuple[str, int, str]]:
    """(name, line, qualifier) for the names in `text`: by the language's references query
    when there is a grammar, by a regular expression otherwise."""
    if loaded is None:
        for number, line in enumerate(text.split("\n")):
            for match in IDENTIFIER.finditer(line):
                yield match.group(0), number, ""
        return
    source = text.encode("utf-8", "surrogatepass")
    root = parser_for(loaded).parse(source).root_node
    captures = QueryCursor(loaded.references_query).captures(root)
    # Naming a thing in an import is not using it (imported names have a layer of their
    # own). Imports are top-level statements (a Go import block is one).
    imports = [
        (child.start_byte, child.end_byte)
        for child in root.named_children
        if "import" in child.type or child.type in ("use_declaration", "preproc_include")
    ]

    def in_import(node: Node) -> bool:
        return any(start <= node.start_byte < end for start, end in imports)

    # In source order: the query cursor's capture order varies between calls, and ties
    # between equally scored snippets must not change the prompt from one keystroke to the next.
    members = sorted(captures.get("reference.member", []), key=_start)
    member_starts = {node.start_byte for node in members}
    for node in sorted(captures.get("reference", []), key=_start):
        if node.start_byte not in member_starts and not in_import(node):
            yield _node_text(node), node.start_point.row, ""
    for node in members:
        if not in_import(node):
            yield _node_text(node), node.start_point.row, _qualifier(node)


def _start(node: Node) -> int:
    return node.start_byte


def _node_text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""


def _qualifier(node: Node) -> str:
    """The simple name before `.name` (`model` in `model.Item`); "?" for anything longer,
    which no import binds."""
    sibling = node.prev_named_sibling
    text = _node_text(sibling) if sibling is not None else ""
    return text if IDENTIFIER.fullmatch(text) else "?"


def _inferred_types(receiver: str, prefix: str, row: IndexLanguage | None) -> list[str]:
    """Type names a variable (`receiver`, an identifier) was given in the text before the
    cursor, the latest first."""
    recent = prefix[-16_000:]
    found: list[tuple[int, str]] = []
    for after_name in _TYPE_AFTER_NAME:
        found += _typed_after_name(recent, receiver, after_name)
    found += _declared_before_name(recent, receiver)
    loaded = load(row) if row is not None else None
    keywords = loaded.keywords if loaded is not None else frozenset()
    names = [name for _, name in sorted(found, reverse=True) if name not in keywords]
    return list(dict.fromkeys(names))[:3]


# What follows a variable's name where it gives the variable a type.
_TYPE_AFTER_NAME = (
    # Python, TypeScript, Rust annotations: `cart: Cart`, `cart: &mut Cart`
    re.compile(r"\s*:\s*&?(?:mut\s+)?([A-Za-z_][\w.]*)"),
    # constructor calls and literals: `cart = Cart(`, `cart := &Cart{`, `new Cart(`
    re.compile(r"\s*:?=\s*(?:new\s+|&)?([A-Za-z_][\w.]*)\s*[({]"),
    # Go parameters and vars: `cart *Cart`, `var cart Cart`
    re.compile(r"\s+\*?([A-Z]\w*)"),
)


def _typed_after_name(
    text: str, receiver: str, after_name: re.Pattern[str]
) -> list[tuple[int, str]]:
    r"""(start, type name) of the matches `re.finditer(rf"\b{receiver}{after_name}", text)`
    would give. A pattern per name cost a compilation per new name, and a pattern that starts
    with `\b` is tried at every position of the 16,000 characters; a string search visits
    only the name's occurrences."""
    found: list[tuple[int, str]] = []
    at = text.find(receiver)
    while at != -1:
        # `\b` before a name that starts with a word character: no word character before it.
        match = (
            None if at and _is_word(text[at - 1]) else after_name.match(text, at + len(receiver))
        )
        if match is None:
            at = text.find(receiver, at + 1)
        else:
            found.append((at, match.group(1).rpartition(".")[2]))
            at = text.find(receiver, match.end())  # finditer's matches do not overlap
    return found


def _is_word(char: str) -> bool:
    r"""Whether `re`'s `\w` matches the character (Unicode letters and digits, `_`)."""
    return char.isalnum() or char == "_"


# C-family declarations and parameters (`Cart cart =`, `Cart* cart;`, `(Cart cart)`) up to
# the variable's name: the type, its `<...>`, and all the blanks, `*` and `&` after them (the
# lookahead: a name never starts with one, so no shorter run can precede it).
_DECLARATION_HEAD = re.compile(r"\b([A-Za-z_]\w*)(?:<[^<>]*>)?(?:\s*[*&]+\s*|\s+)(?![\s*&])")
_DECLARATION_END = re.compile(r"\s*[=;,)]")


def _declared_before_name(text: str, receiver: str) -> list[tuple[int, str]]:
    r"""(start, type name) of the matches of the C-family declaration pattern
    `\b([A-Za-z_]\w*)(?:<[^<>]*>)?(?:\s*[*&]+\s*|\s+){receiver}\s*[=;,)]` in `text`, as
    finditer gives them, without compiling that pattern per name: its type, `<...>` and
    blanks can end only where a name can start, so `_DECLARATION_HEAD` then the name then
    `_DECLARATION_END` match where it does. It starts at the type, so the engine would try
    it at every position of the text. Each of its matches
    ends at an occurrence of the name that follows whitespace, `*` or `&` and precedes `=`,
    `;`, `,` or `)`, and starts within the words, blanks and `*&` (or the `<...>` and the
    word before it) just before that occurrence: only those positions are tried, in order,
    as finditer would."""
    spans: list[tuple[int, int]] = []
    at = text.find(receiver, 1)
    while at != -1:
        before = text[at - 1]
        if (before.isspace() or before in "*&") and _DECLARATION_END.match(
            text, at + len(receiver)
        ):
            start = _run_start(text, at)
            if start > 0 and text[start - 1] == ">":
                opening = text.rfind("<", 0, start - 1)
                if opening >= 0:
                    start = _run_start(text, opening)
            spans.append((start, at))
        at = text.find(receiver, at + 1)
    if not spans:
        return []
    found: list[tuple[int, str]] = []
    searched_to = 0  # finditer goes on after its last match
    for start, end in sorted(spans):
        at = max(start, searched_to)
        while at < end:
            head = _DECLARATION_HEAD.match(text, at)
            ending = None
            if head is not None and text.startswith(receiver, head.end()):
                ending = _DECLARATION_END.match(text, head.end() + len(receiver))
            if head is None or ending is None:
                at += 1
            else:
                found.append((at, head.group(1).rpartition(".")[2]))
                at = ending.end()
            searched_to = at
    return found


def _run_start(text: str, end: int) -> int:
    r"""The start of the characters before `end` that are word characters (as `\w`), blanks
    (as `\s`), `*` or `&`."""
    start = end
    while start > 0:
        char = text[start - 1]
        if not (char.isalnum() or char.isspace() or char in "_*&"):
            break
        start -= 1
    return start


def _base_names(symbol: Symbol, row: IndexLanguage | None) -> list[str]:
    """The classes a class extends, from its signature."""
    signature = symbol.signature
    head, _, rest = signature.partition(symbol.name)
    del head
    loaded = load(row) if row is not None else None
    keywords = loaded.keywords if loaded is not None else frozenset()
    names = [n for n in IDENTIFIER.findall(rest) if n not in keywords and n[:1].isupper()]
    return list(dict.fromkeys(names))[:3]


def _choose_definitions(
    found: list[StoredSymbol],
    files: tuple[str, ...] | None,
    path: str,
    family: str,
    max_files: int,
) -> list[StoredSymbol]:
    """The definitions a name most likely refers to: in the files its import names, else
    top-level ones of the same language family in few enough files, nearest folder first."""
    found = [s for s in found if s.path != path]
    if files is not None:
        allowed = set(files)
        return [s for s in found if s.path in allowed and not s.symbol.parent] or [
            s for s in found if s.path in allowed
        ]
    # Not imported: any definition but a member (which belongs to its class), so one in a
    # namespace (C++, Rust modules) counts.
    found = [
        s for s in found if s.symbol.kind not in _MEMBER_KINDS and _family(s.language) == family
    ]
    if len({s.path for s in found}) > max_files:
        return []
    folder = path.rpartition("/")[0]
    return sorted(found, key=lambda s: (_folder_distance(folder, s.path), s.path))


def _folder_distance(folder: str, path: str) -> int:
    mine = folder.split("/") if folder else []
    theirs = path.split("/")[:-1]
    common = 0
    for a, b in zip(mine, theirs, strict=False):
        if a != b:
            break
        common += 1
    return len(mine) + len(theirs) - 2 * common


def _identifier_set(text: str) -> frozenset[str]:
    return frozenset(name for name in IDENTIFIER.findall(text) if len(name) > 1)


def _deduplicated(candidates: list[_Candidate]) -> tuple[ContextSnippet, ...]:
    """Best first; a snippet overlapping a better one of the same file is dropped."""
    kept: list[_Candidate] = []
    for candidate in sorted(candidates, key=lambda c: -c.snippet.score):
        snippet = candidate.snippet
        if not snippet.text.strip():
            continue
        if any(
            k.snippet.path == snippet.path
            and k.snippet.start_line <= candidate.end_line
            and snippet.start_line <= k.end_line
            for k in kept
        ):
            continue
        kept.append(candidate)
    return tuple(c.snippet for c in kept)


# -- outlines --------------------------------------------------------------------------------


def _comment(row: IndexLanguage | None) -> str:
    return row.line_comment if row is not None else "#"


def _member_line(row: IndexLanguage | None, symbol: Symbol, *, with_doc: bool, indent: str) -> str:
    signature = symbol.signature
    indent_style = row is not None and row.block_style == "indent"
    if indent_style:
        if signature.endswith(":") and symbol.kind in ("function", "method", "class"):
            signature += " ..."
    else:
        signature = signature.rstrip("{ ").rstrip()
    line = f"{indent}{signature}"
    if with_doc and symbol.doc:
        line = f"{indent}{_comment(row)} {symbol.doc}\n{line}"
    return line


def _outline(
    row: IndexLanguage | None, container: Symbol, members: Sequence[Symbol], *, with_doc: bool
) -> str:
    """A class (or struct, ...) as its head and its members' signatures."""
    indent_style = row is not None and row.block_style == "indent"
    head = container.signature
    lines = []
    if with_doc and container.doc:
        lines.append(f"{_comment(row)} {container.doc}")
    inside = [m for m in members if container.start_line <= m.start_line <= container.end_line]
    # Not `m not in inside`: comparing dataclasses field by field made this quadratic.
    outside = [m for m in members if not container.start_line <= m.start_line <= container.end_line]
    if indent_style:
        lines.append(head)
        lines += [_member_line(row, m, with_doc=False, indent="    ") for m in inside]
        if not inside:
            lines.append("    ...")
    else:
        lines.append(head.rstrip("{ ").rstrip() + " {")
        lines += [_member_line(row, m, with_doc=False, indent="    ") for m in inside]
        lines.append("}")
    lines += [_member_line(row, m, with_doc=False, indent="") for m in outside]
    return "\n".join(lines)


# -- rendering into the prompt ---------------------------------------------------------------


# A snippet's identity across renders: the same text from the same place.
_SnippetKey = tuple[str, int, str]
# Documents whose last rendered context is remembered.
_DOCUMENTS_REMEMBERED = 64


@dataclass(frozen=True)
class _Block:
    """One file's snippets as shown: the header, then the snippets in this order."""

    path: str
    snippets: tuple[ContextSnippet, ...]


def _key(snippet: ContextSnippet) -> _SnippetKey:
    return (snippet.path, snippet.start_line, snippet.text)


class ContextRenderer:
    """Packs snippets into a token budget and writes them out; keeps token counts of the
    snippets it has seen, since the same ones come back request after request.

    It also remembers, per document, the blocks it last wrote. The KV cache is reused up to
    the first token that differs from the previous prompt, and the context comes first: a
    cursor move that only reorders the snippets (a definition used near the cursor before and
    not now changes layer) or adds one would otherwise cost the whole prompt's prefill. So the
    blocks of the last render that are still wholly chosen keep their places at the front, and
    only what comes after them is laid out afresh. With `hold`, the snippets shown last time
    and still offered by the retriever (so their text is current) are also packed before new
    ones, except the cursor's own (the definitions of the names next to it, a member list),
    which come first: a move keeps the imported definitions and similar chunks it had."""

    def __init__(self, tokenizer: Tokenizer, manifest: ModelManifest, *, hold: bool = True) -> None:
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.hold = hold
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._shown: OrderedDict[tuple[str, str, str, int], tuple[_Block, ...]] = OrderedDict()

    def forget(self) -> None:
        """Forget what was shown for every document: the next render of each is fresh."""
        self._shown.clear()

    def _count_all(self, texts: list[str]) -> None:
        """Count the texts not seen yet in one batch (the tokenizer runs it in parallel)."""
        new = list(dict.fromkeys(text for text in texts if text not in self._counts))
        if len(new) > 1:
            for text, encoding in zip(
                new, self.tokenizer.encode_batch(new, add_special_tokens=False), strict=True
            ):
                self._counts[text] = len(encoding.ids)

    def count(self, text: str) -> int:
        cached = self._counts.get(text)
        if cached is None:
            cached = len(self.tokenizer.encode(text, add_special_tokens=False).ids)
            self._counts[text] = cached
            if len(self._counts) > 4096:
                self._counts.popitem(last=False)
        return cached

    def render(
        self,
        snippets: Sequence[ContextSnippet],
        budget_tokens: int,
        *,
        framing: str = "filename",
        repo_name: str = "",
        current_path: str = "",
        hidden_line: LineFilter | None = None,
    ) -> str:
        """The context text to put before the file: the best snippets that fit the budget,
        without the lines `hidden_line` flags; "" when nothing fits."""
        memory = (current_path, framing, repo_name, budget_tokens)
        if not snippets or budget_tokens <= 0:
            self._shown.pop(memory, None)
            return ""
        file_token = self.manifest.special_tokens.get(framing, "") if framing != "none" else ""
        repo_token = self.manifest.special_tokens.get("repo_name", "") if file_token else ""
        opening = f"{repo_token}{repo_name}" if repo_token and repo_name else ""
        # Without the model's file token, the file's own text needs a path comment too, or
        # it would read as the end of the last context file.
        closing = "" if file_token or not current_path else _file_header(current_path, "")
        offered = [_shown_part(snippet, hidden_line) for snippet in snippets]  # best first
        self._count_all([s.text for s in offered])
        before = self._shown.get(memory, ()) if current_path else ()
        if self.hold and before:
            # The cursor's own (definitions of the names next to it, a member list) first;
            # then what was shown before and is still offered, in the order it was shown,
            # so that if the budget runs out, the end of the old context gives way, not its
            # start; then the rest.
            wanted = {_key(s): s for s in offered}
            held = [wanted.get(key) for block in before for key in map(_key, block.snippets)]
            own = [s for s in offered if s.layer >= LAYER_NEARBY]
            offered = own + [s for s in held if s is not None] + offered
        used = sum(self.count(part) for part in (opening, closing) if part)
        chosen: dict[_SnippetKey, ContextSnippet] = {}
        headed: set[str] = set()
        for snippet in offered:
            if _key(snippet) in chosen:
                continue
            cost = self.count(snippet.text) + 1
            if snippet.path in headed:
                cost += _GAP_TOKENS
            else:
                cost += self.count(_file_header(snippet.path, file_token))
            if used + cost > budget_tokens or not snippet.text.strip():
                continue  # a smaller one further down may still fit
            used += cost
            headed.add(snippet.path)
            chosen[_key(snippet)] = snippet
        if not chosen:
            self._shown.pop(memory, None)
            return ""
        while True:
            blocks = _layout(before, chosen)
            text = opening + "".join(_write_block(block, file_token) for block in blocks) + closing
            if len(chosen) == 1 or not _splits_a_file(blocks) or self.count(text) <= budget_tokens:
                break
            # A file both in a kept block and among the new snippets has a second header,
            # which the packing did not count: the last snippet packed gives way.
            chosen.popitem()
        if current_path:
            self._shown[memory] = blocks
            self._shown.move_to_end(memory)
            while len(self._shown) > _DOCUMENTS_REMEMBERED:
                self._shown.popitem(last=False)
        return text


def _shown_part(snippet: ContextSnippet, hidden_line: LineFilter | None) -> ContextSnippet:
    if hidden_line is None:
        return snippet
    lines = snippet.text.split("\n")
    shown = [line for line in lines if not hidden_line(line)]
    return snippet if len(shown) == len(lines) else replace(snippet, text="\n".join(shown))


def _layout(
    before: Sequence[_Block], chosen: dict[_SnippetKey, ContextSnippet]
) -> tuple[_Block, ...]:
    """The previous render's blocks whose snippets are all still chosen, as long as they
    run unbroken from the front, then the rest in the fresh order."""
    kept: list[_Block] = []
    placed: set[_SnippetKey] = set()
    for block in before:
        keys = [_key(s) for s in block.snippets]
        if not all(key in chosen for key in keys):
            break
        kept.append(_Block(block.path, tuple(chosen[key] for key in keys)))
        placed.update(keys)
    rest = [snippet for key, snippet in chosen.items() if key not in placed]
    return (*kept, *_fresh_blocks(rest))


def _splits_a_file(blocks: Sequence[_Block]) -> bool:
    return len({block.path for block in blocks}) < len(blocks)


def _fresh_blocks(chosen: list[ContextSnippet]) -> list[_Block]:
    """One block per file; files in order of their most stable snippet, then path; snippets
    in file order. Nothing here depends on scores, so a snippet that stays chosen stays put."""
    by_file: dict[str, list[ContextSnippet]] = {}
    for snippet in chosen:
        by_file.setdefault(snippet.path, []).append(snippet)
    order = sorted(by_file, key=lambda path: (min(s.layer for s in by_file[path]), path))
    return [
        _Block(path, tuple(sorted(by_file[path], key=lambda s: (s.start_line, s.layer))))
        for path in order
    ]


def _file_header(path: str, file_token: str) -> str:
    if file_token:
        return f"{file_token}{path}\n"
    return f"{_comment(language_for_path(path))} {path}\n"


def _write_block(block: _Block, file_token: str) -> str:
    gap = f"\n{_comment(language_for_path(block.path))} ...\n"
    body = gap.join(part.text.rstrip("\n") for part in block.snippets)
    separator = "" if file_token else "\n"
    return f"{_file_header(block.path, file_token)}{body}\n{separator}"


def workspace_name(root: str) -> str:
    return PurePosixPath(root.replace("\\", "/")).name
