"""Which tree-sitter grammar and which block rules a completion uses, per language.

One row per language: the LSP language ids and file extensions that select it, the grammar
(a per-language PyPI wheel, imported on first use), and how its blocks end (by indentation or
by a balancing bracket). Adding a language is adding a row. This table serves completion only
(mode, stops, the syntax check); the indexer keeps its own.

A grammar whose wheel is missing makes `grammar()` return None; callers then fall back to the
text rules in `completion.stops`, never fail a request.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from tree_sitter import Language

log = logging.getLogger(__name__)

BlockStyle = Literal["indent", "brackets"]


@dataclass(frozen=True)
class CompletionLanguage:
    name: str
    module: str  # the grammar wheel's module, e.g. "tree_sitter_python"
    function: str  # its function that returns the grammar, e.g. "language"
    language_ids: tuple[str, ...]
    extensions: tuple[str, ...]
    block_style: BlockStyle = "brackets"
    # A statement that, put on its own indented line after a line ending in ":", parses as the
    # body of a block exactly when that ":" opens one (not a dict value, slice or lambda).
    block_probe: str = ""
    block_node: str = "block"
    # For the lexer that counts brackets in generated text: string quotes, the quote of
    # one-character literals ('x' in C, Go, Java, Rust: a lone "'" there is a Rust lifetime),
    # the line comment and whether /* */ comments exist.
    string_quotes: str = '"'
    char_quote: str = "'"
    line_comment: str = "//"
    block_comments: bool = True

    def grammar(self) -> Language | None:
        return _load_grammar(self.module, self.function)


# JavaScript and TypeScript: template literals are strings too, and "'" quotes any length.
_JS_QUOTES = "\"'`"

LANGUAGES: tuple[CompletionLanguage, ...] = (
    CompletionLanguage(
        "python",
        "tree_sitter_python",
        "language",
        language_ids=("python",),
        extensions=(".py", ".pyi", ".pyw"),
        block_style="indent",
        block_probe="pass",
        string_quotes="\"'",
        char_quote="",
        line_comment="#",
        block_comments=False,
    ),
    CompletionLanguage(
        "javascript",
        "tree_sitter_javascript",
        "language",
        language_ids=("javascript", "javascriptreact"),
        extensions=(".js", ".mjs", ".cjs", ".jsx"),
        string_quotes=_JS_QUOTES,
        char_quote="",
    ),
    CompletionLanguage(
        "typescript",
        "tree_sitter_typescript",
        "language_typescript",
        language_ids=("typescript",),
        extensions=(".ts", ".mts", ".cts"),
        string_quotes=_JS_QUOTES,
        char_quote="",
    ),
    CompletionLanguage(
        "tsx",
        "tree_sitter_typescript",
        "language_tsx",
        language_ids=("typescriptreact",),
        extensions=(".tsx",),
        string_quotes=_JS_QUOTES,
        char_quote="",
    ),
    CompletionLanguage(
        "go",
        "tree_sitter_go",
        "language",
        language_ids=("go",),
        extensions=(".go",),
        string_quotes='"`',
    ),
    CompletionLanguage(
        "rust",
        "tree_sitter_rust",
        "language",
        language_ids=("rust",),
        extensions=(".rs",),
    ),
    CompletionLanguage(
        "java",
        "tree_sitter_java",
        "language",
        language_ids=("java",),
        extensions=(".java",),
    ),
    CompletionLanguage(
        "c",
        "tree_sitter_c",
        "language",
        language_ids=("c",),
        extensions=(".c", ".h"),
    ),
)

_BY_ID = {language_id: row for row in LANGUAGES for language_id in row.language_ids}
_BY_EXTENSION = {ext: row for row in LANGUAGES for ext in row.extensions}


def language_for(language_id: str = "", path: str = "") -> CompletionLanguage | None:
    """The row for an LSP language id, else for the file's extension; None when unknown."""
    if language_id in _BY_ID:
        return _BY_ID[language_id]
    suffix = PurePosixPath(path.replace("\\", "/")).suffix.lower()
    return _BY_EXTENSION.get(suffix)


@functools.cache
def _load_grammar(module: str, function: str) -> Language | None:
    try:
        return Language(getattr(importlib.import_module(module), function)())
    except (ImportError, AttributeError, ValueError) as exc:
        log.warning("no grammar from %s.%s (%s): text rules only", module, function, exc)
        return None
