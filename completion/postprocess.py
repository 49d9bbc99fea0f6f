"""Post-processing: turn what the stop rules kept into the text the editor shows.

The model is a left-to-right model; it sees little or nothing of the text after the cursor, so
it often types what is already there: the brackets and quotes the editor closed, the rest of
the line, the next lines. Here the completion loses that overlap, or takes over the editor's
auto-closed brackets through the replaced range; loses trailing whitespace; is dropped when it
is only whitespace, repeats the lines just before the cursor or loops; and is indented like the
document. Pure functions of text: no parse, no model, no editor state.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from completion.cursor import CursorContext
from completion.languages import CompletionLanguage
from completion.stops import DEFAULT_TAB_SIZE, LINE_END_CLOSERS, REPEAT_MIN_CHARS, indent_width

_PAIRS = {")": "(", "]": "[", "}": "{"}
_OPENERS = frozenset(_PAIRS.values())
# Lines before the cursor compared with the start of a completion, for "repeats the prefix".
_PREFIX_LINES_COMPARED = 3
# A completion holding the same chunk this many times in a row is looping ("a, a, a, a").
_LOOP_REPEATS = 4
_LOOP = re.compile(r"(.{4,40}?)\1{" + str(_LOOP_REPEATS - 1) + ",}", re.DOTALL)


@dataclass(frozen=True)
class Suggestion:
    """The text to insert, and how many characters after the cursor (on its line) it
    replaces; `dropped` says why `text` is empty, when it is."""

    text: str
    replace_chars: int = 0
    dropped: str = ""


def postprocess(
    text: str,
    ctx: CursorContext,
    *,
    block: bool,
    language: CompletionLanguage | None = None,
    in_string: bool = False,
    tab_size: int = DEFAULT_TAB_SIZE,
) -> Suggestion:
    """The suggestion for completion `text` at the cursor described by `ctx`."""
    text = strip_trailing_whitespace(text)
    if not text.strip():
        return Suggestion("", dropped="whitespace")
    if block:
        text = fix_indentation(text, ctx, tab_size)
    if _loops(text):
        return Suggestion("", dropped="loop")
    if repeats_prefix(text, ctx):
        return Suggestion("", dropped="repeats_prefix")
    text = trim_next_lines(text, ctx.suffix, ctx.line_prefix)
    text, replace = take_over_line_suffix(text, ctx.line_suffix, language, in_string)
    if not text.strip():
        return Suggestion("", dropped="duplicates_suffix")
    return Suggestion(text, replace)


def strip_trailing_whitespace(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def document_indent_unit(prefix: str, tab_size: int = DEFAULT_TAB_SIZE) -> str:
    """The document's indentation step: a tab, or the most common increase in spaces between
    consecutive indented lines (4 spaces when the prefix does not tell)."""
    tabs = spaces = 0
    steps: Counter[int] = Counter()
    previous = 0
    for line in prefix[-20_000:].split("\n")[-400:]:
        if not line.strip():
            continue
        lead = _leading(line)
        if lead.startswith("\t"):
            tabs += 1
        elif lead:
            spaces += 1
        width = indent_width(line, tab_size)
        if width > previous:
            steps[width - previous] += 1
        previous = width
    if tabs > spaces:
        return "\t"
    step = steps.most_common(1)[0][0] if steps else tab_size
    return " " * (step if 2 <= step <= 8 else tab_size)


def fix_indentation(text: str, ctx: CursorContext, tab_size: int = DEFAULT_TAB_SIZE) -> str:
    """Indent a block completion like the document: when the user already typed the line's
    indentation, indentation the model adds on the first line moves every line back; and
    leading tabs and spaces follow the document's habit."""
    lines = text.split("\n")
    if ctx.line_prefix and not ctx.line_prefix.strip():
        extra = _leading(lines[0])
        if extra:
            lines = [lines[0][len(extra) :]] + [
                line[len(extra) :] if line.startswith(extra) else line for line in lines[1:]
            ]
    unit = document_indent_unit(ctx.prefix, tab_size)
    converted = [lines[0]] + [_reindent(line, unit, tab_size) for line in lines[1:]]
    return "\n".join(converted)


def _reindent(line: str, unit: str, tab_size: int) -> str:
    lead = _leading(line)
    if not lead:
        return line
    if unit == "\t" and " " in lead:
        width = indent_width(line, tab_size)
        return "\t" * (width // tab_size) + " " * (width % tab_size) + line[len(lead) :]
    if unit != "\t" and "\t" in lead:
        # A tab is one indentation step of the document.
        width = indent_width(line, tab_size) // tab_size * len(unit)
        return " " * width + line[len(lead) :]
    return line


def _loops(text: str) -> bool:
    return _LOOP.search(text) is not None


def _substantial(line: str) -> bool:
    return len("".join(line.split())) >= REPEAT_MIN_CHARS


def repeats_prefix(text: str, ctx: CursorContext) -> bool:
    """Whether the completion starts by repeating the last lines before the cursor: the model
    copying what it just read, a loop the stop rules cannot see from inside the completion."""
    before = [line.strip() for line in ctx.prefix[-4000:].split("\n")[:-1][-40:] if line.strip()]
    recent = before[-_PREFIX_LINES_COMPARED:]
    lines = text.split("\n")
    first = (ctx.line_prefix + lines[0]).strip()
    if first and first != ctx.line_prefix.strip():
        candidates = [first, *(line.strip() for line in lines[1:] if line.strip())]
    else:
        candidates = [line.strip() for line in lines[1:] if line.strip()]
    if not candidates or not _substantial(candidates[0]):
        return False
    return candidates[0] in recent and (len(candidates) == 1 or candidates[0] == recent[-1])


def trim_next_lines(text: str, suffix: str, line_prefix: str = "") -> str:
    """Cut a multi-line completion where it starts re-typing the lines after the cursor's
    line: its last lines equal the first lines below, or a substantial line equals the first
    line below (the model copying the suffix and going on)."""
    lines = text.split("\n")
    if len(lines) < 2:
        return text
    below = _first_lines(suffix, len(lines))
    if not below:
        return text
    for index in range(1, len(lines)):
        tail = [line.rstrip() for line in lines[index:] if line.strip()]
        if not tail:
            break
        copies_tail = tail == below[: len(tail)]
        copies_start = _substantial(tail[0]) and tail[0] == below[0]
        if copies_tail or copies_start:
            return strip_trailing_whitespace("\n".join(lines[:index]))
    return text


def _first_lines(suffix: str, count: int) -> list[str]:
    """The first `count` non-blank lines after the cursor's line, without splitting the whole
    rest of the file."""
    lines: list[str] = []
    start = suffix.find("\n") + 1
    while start > 0 and len(lines) < count:
        end = suffix.find("\n", start)
        line = suffix[start : end if end >= 0 else len(suffix)].rstrip()
        if line.strip():
            lines.append(line)
        start = end + 1
    return lines


def unmatched_closers(text: str, quotes: str, cursor_quote: str = "") -> list[int]:
    """Offsets in `text` of the closing brackets it does not open itself, and of the quote
    that ends the string the cursor is in (`cursor_quote`, empty when it is in none)."""
    found: list[int] = []
    stack: list[str] = []
    quote = cursor_quote
    in_cursor_string = bool(cursor_quote)
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                if in_cursor_string:
                    found.append(index)
                    in_cursor_string = False
                quote = ""
        elif char in quotes:
            quote = char
        elif char in _OPENERS:
            stack.append(char)
        elif char in _PAIRS:
            if stack and stack[-1] == _PAIRS[char]:
                stack.pop()
            elif not stack:
                found.append(index)
            # A closer that mismatches an open bracket is left to the syntax check.
        index += 1
    return found


def take_over_line_suffix(
    text: str, line_suffix: str, language: CompletionLanguage | None, in_string: bool
) -> tuple[str, int]:
    """Resolve the overlap of the completion with the rest of the cursor's line.

    Only closers the completion does not open itself count as overlap: `len(a)` before the
    `)` of `print(|)` keeps its `)`. A one-line completion that ends by typing the start of
    the rest (auto-closed `)`, `")`, `];`, or the whole rest) loses that part: a pure
    insertion. Otherwise, when the rest is only closers and the completion closes the same
    brackets in the middle or on a line of its own (`n - 1) + f(n - 2))` before `))`, the
    `}` of a block written into `{|}`), the range grows over them so they are not doubled.
    Returns the text and how many characters of `line_suffix` it replaces."""
    rest = line_suffix.strip()
    if not rest:
        return text, 0
    quotes = language.string_quotes if language else "\"'"
    quote = next((char for char in line_suffix if char in quotes), "") if in_string else ""
    found = unmatched_closers(text, quotes, quote)
    if "\n" not in text:
        owed = unmatched_closers(rest, quotes, quote)
        if text.rstrip().endswith(rest) and len(found) >= len(owed):
            return text.rstrip()[: -len(rest)].rstrip(), 0
        if found and line_suffix.lstrip().startswith(text[found[0] :].rstrip()):
            return text[: found[0]], 0
    if rest.strip(LINE_END_CLOSERS + " \t"):
        return text, 0  # code follows the cursor: the syntax check judges the result
    closers = [i for i, char in enumerate(line_suffix) if char in _PAIRS or char == quote]
    matched = 0
    for at, suffix_at in zip(found, closers, strict=False):
        if text[at] != line_suffix[suffix_at]:
            break
        matched += 1
    if not matched:
        return text, 0
    end = closers[matched - 1] + 1
    # The completion also typed the punctuation that follows those closers (";").
    typed_after = text[found[matched - 1] + 1 :].rstrip()
    if typed_after and line_suffix[end:].startswith(typed_after):
        end += len(typed_after)
    return text, end
