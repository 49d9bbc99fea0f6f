"""Tree-sitter at the cursor: which mode a completion gets, and whether a completion parses.

`cursor_mode` reads the parse of the text around the cursor and answers `line` (finish the
line), `block` (write lines), or `none` (suggest nothing): inside a comment or string when
those are switched off, or in the middle of a word. `SyntaxCheck` parses the document with a
completion inserted, and cuts the completion back to its longest prefix that adds no ERROR or
MISSING node to the document's parse without it.

Only a window around the cursor is parsed (whole top-level lines where it can), so the cost
does not grow with the file. Without a grammar for the language, the text rules of
`completion.stops` decide the mode and every completion passes the check. This module reads
text and trees; it never sees tokens or the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Language, Node, Parser, Point, Tree

from completion.cursor import CursorContext
from completion.languages import CompletionLanguage
from completion.stops import LINE_END_CLOSERS, BracketLexer, decide_mode

CursorMode = Literal["line", "block", "none"]

# How much text around the cursor is parsed: enough to hold the enclosing definitions of
# ordinary code, little enough that a parse stays near a millisecond.
WINDOW_BEFORE_CHARS = 12_000
WINDOW_AFTER_CHARS = 3_000
# Parses spent looking for a clean cut; each is an incremental reparse (well under 1 ms).
MAX_CHECK_PARSES = 8

# Node types across the grammars in completion.languages.
_STRING_TYPES = frozenset(
    {
        "string",
        "string_content",
        "string_literal",
        "raw_string_literal",
        "interpreted_string_literal",
        "template_string",
        "char_literal",
        "character_literal",
        "rune_literal",
        "text_block",
        "system_lib_string",
    }
)
_COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
# Code inside a string: f-string and template-literal substitutions.
_CODE_IN_STRING_TYPES = frozenset({"interpolation", "template_substitution"})
_WORD_CHAR = re.compile(r"\w")


@dataclass(frozen=True)
class ModeOptions:
    complete_in_comments: bool = True
    complete_in_strings: bool = True


@dataclass(frozen=True)
class CursorSyntax:
    mode: CursorMode
    reason: str  # why this mode, for logs and tests: "blank_line", "opener", "in_string", ...
    in_string: bool = False
    in_comment: bool = False


@dataclass(frozen=True)
class SyntaxWindow:
    """The text parsed around the cursor: `before` ends at the cursor, `after` starts there."""

    before: str
    after: str
    # One parse per grammar, shared by the mode decision and the syntax check.
    _trees: dict[int, Tree] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def around(cls, ctx: CursorContext) -> SyntaxWindow:
        return cls(_tail_from_top_level(ctx.prefix), _head_to_top_level(ctx.suffix))

    def parse(self, grammar: Language) -> Tree:
        tree = self._trees.get(id(grammar))
        if tree is None:
            tree = Parser(grammar).parse((self.before + self.after).encode())
            self._trees[id(grammar)] = tree
        return tree


def cursor_mode(
    language: CompletionLanguage | None,
    ctx: CursorContext,
    options: ModeOptions = ModeOptions(),
    window: SyntaxWindow | None = None,
) -> CursorSyntax:
    """The mode for a completion at the cursor; see the module docstring."""
    if _WORD_CHAR.match(ctx.line_suffix[:1]):
        return CursorSyntax("none", "mid_word")  # typing inside a word: nothing fits
    grammar = language.grammar() if language else None
    in_string = in_comment = False
    tree: Tree | None = None
    window = window or SyntaxWindow.around(ctx)
    if grammar is not None:
        tree = window.parse(grammar)
        in_string, in_comment = _inside_literal(tree, len(window.before.encode()))
    unsure = tree is None or tree.root_node.has_error
    if language is not None and unsure and not (in_string or in_comment):
        # A string the parser could not close (no auto-closed quote) is still being typed.
        lexer = BracketLexer(language)
        lexer.scan(ctx.line_prefix)
        in_string = bool(lexer.string_at_line_end)
    if in_comment:
        if not options.complete_in_comments:
            return CursorSyntax("none", "in_comment", in_comment=True)
        return CursorSyntax("line", "in_comment", in_comment=True)
    if in_string:
        if not options.complete_in_strings:
            return CursorSyntax("none", "in_string", in_string=True)
        return CursorSyntax("line", "in_string", in_string=True)
    text_mode = decide_mode(ctx.line_prefix, ctx.line_suffix)
    head = ctx.line_prefix.rstrip()
    rest = ctx.line_suffix.strip()
    if head.endswith("{") and rest.startswith("}") and not rest.strip(LINE_END_CLOSERS):
        return CursorSyntax("block", "empty_body")  # `{|}`: the editor closed the brace
    if text_mode == "line":
        if rest.strip(LINE_END_CLOSERS + " \t"):
            return CursorSyntax("line", "code_after_cursor")
        return CursorSyntax("line", "before_closers" if rest else "end_of_line")
    if not head:
        return CursorSyntax("block", "blank_line")
    if (
        head.endswith(":")
        and language is not None
        and language.block_probe
        and grammar is not None
        and not _opens_block(grammar, language, ctx, window)
    ):
        return CursorSyntax("line", "not_a_block")  # a dict value, slice, lambda, ...
    return CursorSyntax("block", "opener")


def _inside_literal(tree: Tree, cursor: int) -> tuple[bool, bool]:
    """(in a string, in a comment) at byte offset `cursor` of the parsed text."""
    node: Node | None = tree.root_node.descendant_for_byte_range(max(cursor - 1, 0), cursor)
    while node is not None:
        start, end = node.start_byte, node.end_byte
        if node.type in _CODE_IN_STRING_TYPES and start < cursor < end:
            return False, False
        if node.type in _COMMENT_TYPES and start < cursor <= end:
            text = node.text or b""
            runs_to_line_end = not text.startswith(b"/*")
            if cursor < end or runs_to_line_end:
                return False, True
        if node.type in _STRING_TYPES and start < cursor < end:
            return True, False
        node = node.parent
    return False, False


def _opens_block(
    grammar: Language, language: CompletionLanguage, ctx: CursorContext, window: SyntaxWindow
) -> bool:
    """Whether the ":" before the cursor opens a block: a probe statement on the next line,
    one level deeper, parses as the first statement of a block that starts there."""
    indent = ctx.line_prefix[: len(ctx.line_prefix) - len(ctx.line_prefix.lstrip())]
    unit = "\t" if indent.startswith("\t") else "    "
    lead = window.before + "\n" + indent + unit
    probe = lead + language.block_probe + "\n"
    tree = Parser(grammar).parse((probe + _next_lines(window.after)).encode())
    at = len(lead.encode())
    node: Node | None = tree.root_node.descendant_for_byte_range(at, at + 1)
    while node is not None:
        if node.type == language.block_node:
            # The parser may also recover by folding the broken line into a header above
            # ("def f(self): d = {'k':" + block): then an ERROR precedes the block.
            header = node.parent.children if node.parent else []
            broken = any(c.is_error for c in header if c.end_byte <= node.start_byte)
            return node.start_byte >= at and not broken
        if node.is_error:
            return False
        node = node.parent
    return False


def _next_lines(after: str) -> str:
    """The text after the cursor from its next line on."""
    newline = after.find("\n")
    return after[newline + 1 :] if newline >= 0 else ""


def _tail_from_top_level(prefix: str) -> str:
    """The end of `prefix`, at most WINDOW_BEFORE_CHARS, starting at a line that begins at
    column 0 with code, so the parse starts outside any block where one can."""
    if len(prefix) <= WINDOW_BEFORE_CHARS:
        return prefix
    start = len(prefix) - WINDOW_BEFORE_CHARS
    first_break = prefix.find("\n", start - 1)
    candidate = first_break + 1 if first_break >= 0 else start
    for match in re.finditer(r"\n(?=[^\s)\]}])", prefix[candidate - 1 :]):
        return prefix[candidate - 1 + match.end() :]
    return prefix[candidate:]


def _head_to_top_level(suffix: str) -> str:
    if len(suffix) <= WINDOW_AFTER_CHARS:
        return suffix
    cut = suffix.rfind("\n", 0, WINDOW_AFTER_CHARS)
    return suffix[: cut + 1] if cut >= 0 else suffix[:WINDOW_AFTER_CHARS]


def count_errors(node: Node) -> int:
    """ERROR and MISSING nodes under `node`, visiting only subtrees that hold one."""
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            count += 1
        if current.has_error:
            stack.extend(current.children)
    return count


def _point_after(text: bytes, start: Point) -> Point:
    """Where a parse position ends up after `text` is inserted at `start`."""
    lines = text.count(b"\n")
    if not lines:
        return Point(start.row, start.column + len(text))
    return Point(start.row + lines, len(text) - text.rfind(b"\n") - 1)


class SyntaxCheck:
    """Parses the window with candidate completions inserted at the cursor, incrementally on
    the parse of the window without one."""

    def __init__(self, grammar: Language, window: SyntaxWindow) -> None:
        self._parser = Parser(grammar)
        self._before = window.before.encode()
        self._after = window.after.encode()
        self._tree = window.parse(grammar)
        self.baseline_errors = count_errors(self._tree.root_node)
        self._cursor_point = _point_after(self._before, Point(0, 0))

    def errors_with(self, insert: str, replaced_chars: int = 0) -> int:
        """Errors in the window with `insert` at the cursor, replacing that many characters of
        the text after it."""
        inserted = insert.encode()
        removed = len(self._after.decode()[:replaced_chars].encode())
        tree = self._tree.copy()
        start = len(self._before)
        tree.edit(
            start_byte=start,
            old_end_byte=start + removed,
            new_end_byte=start + len(inserted),
            start_point=self._cursor_point,
            old_end_point=_point_after(self._after[:removed], self._cursor_point),
            new_end_point=_point_after(inserted, self._cursor_point),
        )
        new = self._parser.parse(self._before + inserted + self._after[removed:], tree)
        return count_errors(new.root_node)

    def longest_clean(self, text: str, replaced_chars: int, cuts: Iterable[int]) -> int:
        """The longest length among `len(text)` and `cuts` at which the completion adds no
        error; 0 when none of the first MAX_CHECK_PARSES candidates is clean. The text
        after the cursor is replaced by `replaced_chars` only for the full completion."""
        candidates = sorted({len(text), *(c for c in cuts if 0 < c < len(text))}, reverse=True)
        for parses, cut in enumerate(candidates):
            if parses >= MAX_CHECK_PARSES:
                break
            replaced = replaced_chars if cut == len(text) else 0
            if self.errors_with(text[:cut], replaced) <= self.baseline_errors:
                return cut
        return 0


def cut_points(text: str, block: bool) -> list[int]:
    """Where a completion may be cut back to: ends of lines in a block, and in a single line
    the ends of words and closing brackets."""
    if block and "\n" in text:
        points = [m.start() for m in re.finditer(r"\n", text)]
        return [p for p in points if text[:p].strip()]
    return [m.end() for m in re.finditer(r"\w+|[)\]}\"'`]", text)]
