"""The languages the index understands: one row per language, and its compiled grammar.

A row names the grammar wheel (a per-language PyPI package such as `tree-sitter-python`,
imported on first use), the file extensions and LSP language ids that select it, its query
file in `indexer/queries/` (definitions, imports and references), its comment syntax, its
block style and how its import sources map to files. Adding a language is one row here and
one query file. This module only describes and loads; it never walks, parses files or stores.

A grammar wheel that is missing makes `load` return None, and files of that language are
skipped with one log line: the index degrades, it never fails.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from tree_sitter import Language, Query

log = logging.getLogger(__name__)

QUERY_DIR = Path(__file__).parent / "queries"

BlockStyle = Literal["indent", "brackets"]
# How an import's source names a file: dotted modules (Python), relative paths (JS/TS),
# package folders (Go), `crate::` paths (Rust), dotted packages with one class per file
# (Java), `#include "path"` (C, C++).
ImportStyle = Literal["python", "javascript", "go", "rust", "java", "include"]


@dataclass(frozen=True)
class IndexLanguage:
    name: str
    module: str  # the grammar wheel's module, e.g. "tree_sitter_python"
    function: str  # its function returning the grammar, e.g. "language"
    extensions: tuple[str, ...]
    language_ids: tuple[str, ...]
    query_file: str  # file name in indexer/queries/
    line_comment: str
    block_comment: tuple[str, str] | None
    block_style: BlockStyle
    import_style: ImportStyle
    # How deep in the syntax tree the query looks for definitions and imports: deep enough
    # for a method of a class in a namespace, not into function bodies, whose locals are not
    # indexed anyway (and walking them is most of a query's time).
    definition_depth: int


LANGUAGES: tuple[IndexLanguage, ...] = (
    IndexLanguage(
        name="python",
        module="tree_sitter_python",
        function="language",
        extensions=(".py", ".pyi"),
        language_ids=("python",),
        query_file="python.scm",
        line_comment="#",
        block_comment=None,
        block_style="indent",
        import_style="python",
        definition_depth=5,
    ),
    IndexLanguage(
        name="javascript",
        module="tree_sitter_javascript",
        function="language",
        extensions=(".js", ".jsx", ".mjs", ".cjs"),
        language_ids=("javascript", "javascriptreact"),
        query_file="javascript.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="javascript",
        definition_depth=6,
    ),
    IndexLanguage(
        name="typescript",
        module="tree_sitter_typescript",
        function="language_typescript",
        extensions=(".ts", ".mts", ".cts"),
        language_ids=("typescript",),
        query_file="typescript.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="javascript",
        definition_depth=6,
    ),
    IndexLanguage(
        name="tsx",
        module="tree_sitter_typescript",
        function="language_tsx",
        extensions=(".tsx",),
        language_ids=("typescriptreact",),
        query_file="typescript.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="javascript",
        definition_depth=6,
    ),
    IndexLanguage(
        name="go",
        module="tree_sitter_go",
        function="language",
        extensions=(".go",),
        language_ids=("go",),
        query_file="go.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="go",
        definition_depth=5,
    ),
    IndexLanguage(
        name="rust",
        module="tree_sitter_rust",
        function="language",
        extensions=(".rs",),
        language_ids=("rust",),
        query_file="rust.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="rust",
        definition_depth=6,
    ),
    IndexLanguage(
        name="java",
        module="tree_sitter_java",
        function="language",
        extensions=(".java",),
        language_ids=("java",),
        query_file="java.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="java",
        definition_depth=7,
    ),
    IndexLanguage(
        name="c",
        module="tree_sitter_c",
        function="language",
        extensions=(".c", ".h"),
        language_ids=("c",),
        query_file="c.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="include",
        definition_depth=5,
    ),
    IndexLanguage(
        name="cpp",
        module="tree_sitter_cpp",
        function="language",
        extensions=(".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx", ".ipp"),
        language_ids=("cpp",),
        query_file="cpp.scm",
        line_comment="//",
        block_comment=("/*", "*/"),
        block_style="brackets",
        import_style="include",
        definition_depth=8,
    ),
)

_BY_EXTENSION = {ext: row for row in LANGUAGES for ext in row.extensions}
_BY_ID = {language_id: row for row in LANGUAGES for language_id in row.language_ids}

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def language_for_path(path: str | PurePosixPath) -> IndexLanguage | None:
    return _BY_EXTENSION.get(PurePosixPath(str(path)).suffix.lower())


def language_for_id(language_id: str) -> IndexLanguage | None:
    return _BY_ID.get(language_id)


def indexed_extensions() -> frozenset[str]:
    return frozenset(_BY_EXTENSION)


@dataclass(frozen=True)
class LoadedLanguage:
    """A row with its grammar and compiled query, shared by every thread (parsers are not:
    each thread makes its own, see `indexer.extract`)."""

    row: IndexLanguage
    grammar: Language
    # The query file split in two: definitions and imports (run over whole files while
    # indexing) and references (run over the lines around a cursor). Separate, because the
    # catch-all `(identifier) @reference` pattern would otherwise cost every indexed file a
    # match per identifier.
    symbols_query: Query
    references_query: Query
    # Words the grammar treats as keywords (its anonymous, identifier-shaped node kinds):
    # never looked up as symbols, never counted as a chunk's identifiers.
    keywords: frozenset[str]


def load(row: IndexLanguage) -> LoadedLanguage | None:
    return _load(row)


@functools.cache
def _load(row: IndexLanguage) -> LoadedLanguage | None:
    try:
        grammar = Language(getattr(importlib.import_module(row.module), row.function)())
    except (ImportError, AttributeError, ValueError) as exc:
        log.warning(
            "no grammar for %s from %s (%s): its files are not indexed", row.name, row.module, exc
        )
        return None
    source = (QUERY_DIR / row.query_file).read_text(encoding="utf-8")
    symbols_query, references_query = Query(grammar, source), Query(grammar, source)
    encoded = source.encode("utf-8")
    for index in range(symbols_query.pattern_count):
        start, end = (
            symbols_query.start_byte_for_pattern(index),
            symbols_query.end_byte_for_pattern(index),
        )
        if b"@reference" in encoded[start:end]:
            symbols_query.disable_pattern(index)
        else:
            references_query.disable_pattern(index)
    keywords = frozenset(
        kind
        for kind_id in range(grammar.node_kind_count)
        if not grammar.node_kind_is_named(kind_id)
        and grammar.node_kind_is_visible(kind_id)
        and (kind := grammar.node_kind_for_id(kind_id)) is not None
        and IDENTIFIER.fullmatch(kind)
    )
    return LoadedLanguage(row, grammar, symbols_query, references_query, keywords)
