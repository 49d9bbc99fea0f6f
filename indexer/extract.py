"""One source file into its index entry: symbols, imports and chunks.

Text in, frozen values out, with the language's tree-sitter grammar and query file
(`indexer/queries/`). Nothing here reads the disk, touches the store or knows about other
files: resolving an import to a file is `indexer.resolve`'s job.

Parsing releases the GIL (tree-sitter works in C), so several threads may extract at once;
each thread keeps its own parsers, which are not thread-safe.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath

from tree_sitter import Node, Parser, QueryCursor

from indexer.languages import IDENTIFIER, LoadedLanguage

# Kinds whose members are stored with them as parent ("Cart" for Cart.add).
CONTAINER_KINDS = frozenset(
    {"class", "interface", "struct", "enum", "trait", "impl", "namespace", "module"}
)
_NAMESPACES = frozenset({"namespace", "module"})
# A type alias may wrap a definition (C's `typedef struct cart {...} cart_t;`): what it wraps
# is no local, but its members belong to the struct, not to the alias.
_WRAPPERS = frozenset({"type"})
# Kinds whose members a `value.` position lists.
TYPE_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "type"})
# Container-only captures: an `impl Cart` block gives its methods a parent, but is not itself
# a definition (the struct is).
_NOT_SYMBOLS = frozenset({"impl"})

# Chunks are runs of whole top-level definitions (or, inside a big class, whole members) of
# at most this many lines: a chunk that ends mid-function is a poor example to show a model.
CHUNK_MAX_LINES = 30
SIGNATURE_MAX_CHARS = 200
_OPENERS = (b"{", b"(", b";", b",")
_STRING_QUOTES = re.compile(r"^[rRbBuUfF]*(?:\"{3}|'{3}|\"|')|(?:\"{3}|'{3}|\"|')$")
_COMMENT_MARKERS = re.compile(r"^\s*(?:/\*+!?|//[/!]?|#+|\*+(?!/))\s?")


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str  # "class", "function", "method", "field", "variable", "struct", ...
    qualified_name: str  # module prefix (where the language has one), parents, name
    parent: str  # containers within the file, dotted ("Cart", "shop.Basket"); "" at top level
    start_line: int  # 0-based, inclusive
    end_line: int
    signature: str  # the definition's head on one line, up to its body
    doc: str  # first line of its docstring or of the comment just above it


@dataclass(frozen=True)
class Import:
    source: str  # as written: "pkg.mod", "..util", "./item", "github.com/a/b", "crate::x"
    name: str  # the imported name; "" when the module itself is imported, "*" for all names
    alias: str  # the local name when it differs, else ""
    line: int

    @property
    def local_name(self) -> str:
        """The name the importing file uses for it ("" for a wildcard)."""
        if self.alias:
            return self.alias
        if self.name == "*":
            return ""
        if self.name:
            return self.name
        # A module imported whole: `import os.path` binds os, `import "x/y/model"` model.
        source = self.source.strip("./")
        for separator in ("::", "/", "."):
            if separator in source:
                return source.split(separator)[0 if separator == "." else -1]
        return source


@dataclass(frozen=True)
class Chunk:
    start_line: int  # 0-based, inclusive
    end_line: int


@dataclass(frozen=True)
class FileEntry:
    path: str  # workspace-relative, with forward slashes
    language: str
    module: str
    symbols: tuple[Symbol, ...]
    imports: tuple[Import, ...]
    chunks: tuple[Chunk, ...]


@dataclass
class _Definition:
    node: Node
    start: int
    end: int
    kind: str
    name: str
    container: str
    doc: Node | None
    pattern: int


_parsers = threading.local()


def parser_for(language: LoadedLanguage) -> Parser:
    """This thread's parser for the language."""
    cache: dict[str, Parser] | None = getattr(_parsers, "by_language", None)
    if cache is None:
        cache = _parsers.by_language = {}
    parser = cache.get(language.row.name)
    if parser is None:
        parser = cache[language.row.name] = Parser(language.grammar)
    return parser


def extract(path: str, text: str, language: LoadedLanguage) -> FileEntry:
    source = text.encode("utf-8", "surrogatepass")
    root = parser_for(language).parse(source).root_node
    definitions: dict[tuple[int, int, str], _Definition] = {}
    imports: dict[Import, None] = {}
    cursor = QueryCursor(language.symbols_query)
    cursor.set_max_start_depth(language.row.definition_depth)
    for pattern, captures in cursor.matches(root):
        definition = _definition(pattern, captures)
        if definition is not None:
            key = (definition.start, definition.end, definition.name)
            # Several patterns may match one node (Go's struct and catch-all type patterns):
            # the query file lists the more specific first.
            if key not in definitions or definitions[key].pattern > pattern:
                definitions[key] = definition
            continue
        found = _import(captures)
        if found is not None:
            imports[found] = None
    module = _module_name(path, language, root)
    symbols = _symbols(sorted(definitions.values(), key=_outer_first), source, module, language)
    chunks = _chunks(root, text.count("\n") + 1)
    return FileEntry(path, language.row.name, module, symbols, tuple(imports), chunks)


def _outer_first(definition: _Definition) -> tuple[int, int, int]:
    return (definition.start, -definition.end, definition.pattern)


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text is not None else ""


def _definition(pattern: int, captures: dict[str, list[Node]]) -> _Definition | None:
    for capture, nodes in captures.items():
        if capture.startswith("definition."):
            names = captures.get("name")
            if not names:
                return None
            node = nodes[0]
            container = captures.get("container")
            doc = captures.get("doc")
            return _Definition(
                node=node,
                start=node.start_byte,
                end=node.end_byte,
                kind=capture[len("definition.") :],
                name=_text(names[0]),
                container=_text(container[0]) if container else "",
                doc=doc[0] if doc else None,
                pattern=pattern,
            )
    return None


def _import(captures: dict[str, list[Node]]) -> Import | None:
    sources = captures.get("import.source")
    if not sources:
        return None
    names = captures.get("import.name")
    aliases = captures.get("import.alias")
    default = captures.get("import.default")
    if default:
        name, alias = "default", _text(default[0])
    else:
        name = "*" if "import.wildcard" in captures else (_text(names[0]) if names else "")
        alias = _text(aliases[0]) if aliases else ""
    return Import(_text(sources[0]), name, alias, sources[0].start_point.row)


def _symbols(
    definitions: list[_Definition], source: bytes, module: str, language: LoadedLanguage
) -> tuple[Symbol, ...]:
    symbols: list[Symbol] = []
    enclosing: list[_Definition] = []
    for definition in definitions:
        while enclosing and definition.end > enclosing[-1].end:
            enclosing.pop()
        # Definitions inside a function body are its locals, not the file's API.
        if enclosing and enclosing[-1].kind not in CONTAINER_KINDS | _WRAPPERS:
            continue
        containers = [outer for outer in enclosing if outer.kind in CONTAINER_KINDS]
        chain = [outer.name for outer in containers]
        if definition.container:
            chain.append(definition.container)
        parent = ".".join(chain)
        kind = definition.kind
        if kind == "function" and (
            definition.container or (containers and containers[-1].kind not in _NAMESPACES)
        ):
            kind = "method"
        if kind not in _NOT_SYMBOLS:
            node = definition.node
            symbols.append(
                Symbol(
                    name=definition.name,
                    kind=kind,
                    qualified_name=".".join(filter(None, (module, parent, definition.name))),
                    parent=parent,
                    start_line=node.start_point.row,
                    end_line=_last_row(node),
                    signature=_signature(node, source),
                    doc=_doc(definition, language),
                )
            )
        enclosing.append(definition)
    return tuple(symbols)


def _signature(node: Node, source: bytes) -> str:
    """The definition's head: from the start of its first line up to its body (or the end of
    that line), whitespace collapsed, so a signature split over lines reads as one."""
    # From the start of the line when only modifiers come before the node on it ("export",
    # "pub", Go's "type"), from the node itself when it shares a line with its container.
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    if any(bracket in source[line_start : node.start_byte] for bracket in _OPENERS):
        line_start = node.start_byte
    body = node.child_by_field_name("body")
    if body is not None and body.start_byte > node.start_byte:
        # Up to the last piece of the head: a comment between it and the body belongs to
        # neither (`class Options:  # see the docs`).
        end = body.start_byte
        for child in node.children:
            if child.start_byte >= body.start_byte:
                break
            if "comment" not in child.type:
                end = child.end_byte
    else:
        line_end = source.find(b"\n", node.start_byte)
        end = node.end_byte if line_end < 0 else min(line_end, node.end_byte)
    head = source[line_start : min(end, line_start + 4 * SIGNATURE_MAX_CHARS)]
    signature = " ".join(head.decode("utf-8", "replace").split())
    return signature[:SIGNATURE_MAX_CHARS]


def _doc(definition: _Definition, language: LoadedLanguage) -> str:
    if definition.doc is not None:
        return _first_line(_STRING_QUOTES.sub("", _text(definition.doc)))
    # A comment block right above the definition, or above the statement that wraps it on
    # the same line (`export class`, Go's `type X struct`).
    anchor = definition.node
    while (
        anchor.prev_named_sibling is None
        and anchor.parent is not None
        and anchor.parent.parent is not None
        and anchor.parent.start_point.row == anchor.start_point.row
    ):
        anchor = anchor.parent
    comment = anchor.prev_named_sibling
    if comment is None or "comment" not in comment.type:
        return ""
    if _last_row(comment) < anchor.start_point.row - 1:
        return ""  # a blank line between: the comment is about something else
    # Line comments stack up (Rust's ///, Go's //): the doc starts at the top of the run.
    while True:
        above = comment.prev_named_sibling
        if above is None or "comment" not in above.type:
            break
        if _last_row(above) < comment.start_point.row - 1:
            break
        comment = above
    return _first_line(_text(comment))


def _last_row(node: Node) -> int:
    """The last row holding the node's text (a line comment may end at the next row's 0)."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = _COMMENT_MARKERS.sub("", line).replace("*/", "").strip()
        if IDENTIFIER.search(line):
            return line[:SIGNATURE_MAX_CHARS]
    return ""


def _module_name(path: str, language: LoadedLanguage, root: Node) -> str:
    """The prefix of the file's qualified names: Python's dotted module, Go's and Java's
    package; empty for languages whose files share one namespace or name none."""
    style = language.row.import_style
    if style == "python":
        parts = list(PurePosixPath(path).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)
    if style in ("go", "java"):
        for child in root.named_children:
            if child.type in ("package_clause", "package_declaration"):
                named = child.named_children
                return _text(named[0]) if named else ""
    return ""


def _chunks(root: Node, line_count: int) -> tuple[Chunk, ...]:
    """Line ranges that start where a definition (or statement, or comment) starts."""
    starts = {0}

    def collect(node: Node, depth: int) -> None:
        for child in node.named_children:
            first, last = child.start_point.row, child.end_point.row
            starts.add(first)
            starts.add(last + 1)
            if depth < 2 and last - first >= CHUNK_MAX_LINES:
                body = child.child_by_field_name("body")
                collect(body if body is not None else child, depth + 1)

    collect(root, 0)
    bounds = sorted(start for start in starts if start < line_count) + [line_count]
    chunks: list[Chunk] = []
    first = 0
    for previous, start in zip(bounds, bounds[1:], strict=False):
        if start - first > CHUNK_MAX_LINES:
            if previous > first:
                chunks.append(Chunk(first, previous - 1))
                first = previous
            # One piece longer than a chunk: cut it into windows.
            while start - first > CHUNK_MAX_LINES:
                chunks.append(Chunk(first, first + CHUNK_MAX_LINES - 1))
                first += CHUNK_MAX_LINES
    if first < line_count:
        chunks.append(Chunk(first, line_count - 1))
    return tuple(chunks)
