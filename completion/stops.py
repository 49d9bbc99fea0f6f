"""Stop criteria: decide, as the completion grows token by token, where it is complete.

Two modes, chosen from the cursor's line by `decide_mode`:

- `line`: the cursor is inside a line of code; the completion ends at the first newline.
- `block`: the cursor is on an empty line or after a block opener; the completion may span lines
  and ends where the block the cursor is in ends, at a blank line before the next statement at
  the same level, at a markdown fence, when the model starts repeating itself, or at a line cap.
  Where a block ends depends on the language's block style: by indentation (Python), or by the
  bracket that balances the opener (C-like languages: a lexer counts brackets outside strings
  and comments, so `} else {` continues and `});` ends the block).

`StopCriteria.feed` takes the text decoded since the last call and answers whether to stop and
how much of everything fed so far to keep, so generation ends at the first token that makes the
answer knowable. This module sees text only: no tokens, no model, no editor state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from completion.languages import CompletionLanguage

StopMode = Literal["line", "block"]

# A block completion longer than this is rarely accepted whole, and each line costs decode time;
# it also matches what the default budget of 64 new tokens produces for typical code.
DEFAULT_MAX_LINES = 8
DEFAULT_TAB_SIZE = 4
# A repeated group of lines with fewer visible characters than this ("}", "pass", "end") is
# ordinary code, not the model looping.
REPEAT_MIN_CHARS = 8
_MAX_REPEAT_GROUP = 3

# Text after the cursor that still lets the completion finish the line: closing brackets, quotes
# and the punctuation that follows them.
LINE_END_CLOSERS = ")]}>\"'`;,:."
# The cursor line ending in one of these opens a block the completion should write.
# Keyword openers (Ruby's "do", Lua's "then") would be further rows.
BLOCK_OPENERS: tuple[str, ...] = (":", "{", "(", "[", "=>")
_CLOSING_BRACKETS = ")]}"
_OPENING_BRACKETS = "([{"
_FENCE = "```"
# A one-character literal in C-like languages ('x', '\\n', '\\u{1F600}'); a quote that starts
# none is a Rust lifetime or label ('a).
_CHAR_LITERAL = re.compile(r"'(?:\\[^']{1,10}|[^'\\])'")


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop, and how many characters of all text fed so far form the completion."""

    stop: bool
    keep_chars: int
    reason: str = ""  # "newline", "dedent", "close", "blank_line", "line_cap", "fence", ...


def decide_mode(prefix_line: str, suffix_line: str) -> StopMode:
    """Pick the mode from the cursor line's text before (`prefix_line`) and after the cursor.

    Rest-of-line when real code follows the cursor or the cursor sits after code; a block when
    the line is blank up to the cursor, or ends in a block opener with nothing after it.
    """
    if suffix_line.strip().strip(LINE_END_CLOSERS).strip():
        return "line"
    if not prefix_line.strip():
        return "block"
    if prefix_line.rstrip().endswith(BLOCK_OPENERS) and not suffix_line.strip():
        return "block"
    return "line"


class BracketLexer:
    """Bracket depth through code, one complete line at a time, skipping strings and comments.

    Only the depth is counted, not which bracket closes which: the model writes balanced code
    or the syntax check removes it later; the stop rules need to know when a block closes.
    Strings that may span lines (triple quotes, template literals, Go raw strings) and block
    comments carry over to the next line; other strings end at the line's end.
    """

    def __init__(self, language: CompletionLanguage | None = None) -> None:
        self._quotes = language.string_quotes if language else "\"'"
        self._char_quote = language.char_quote if language else ""
        self._line_comment = language.line_comment if language else "#"
        self._block_comments = language.block_comments if language else False
        self.depth = 0
        self._open_string = ""  # the delimiter of a string still open at the last line's end
        self._in_block_comment = False
        # The delimiter of the string open where the last line ended, even a one-line string
        # (at a cursor: the user is typing inside it).
        self.string_at_line_end = ""

    @property
    def in_code(self) -> bool:
        """Whether the next line starts in code (not inside a string or comment)."""
        return not self._open_string and not self._in_block_comment

    def scan(self, line: str) -> int:
        """Advance over one line; returns the lowest depth reached in it."""
        low = self.depth
        index, end = 0, len(line)
        while index < end:
            if self._in_block_comment:
                close = line.find("*/", index)
                if close < 0:
                    break
                self._in_block_comment = False
                index = close + 2
                continue
            if self._open_string:
                index = self._skip_string(line, index)
                continue
            char = line[index]
            if self._line_comment and line.startswith(self._line_comment, index):
                break
            if self._block_comments and line.startswith("/*", index):
                self._in_block_comment = True
                index += 2
            elif char in self._quotes:
                delimiter = char * 3 if line.startswith(char * 3, index) else char
                self._open_string = delimiter
                index += len(delimiter)
            elif char == self._char_quote:
                literal = _CHAR_LITERAL.match(line, index)
                index = literal.end() if literal else index + 1
            else:
                if char in _OPENING_BRACKETS:
                    self.depth += 1
                elif char in _CLOSING_BRACKETS:
                    self.depth -= 1
                    low = min(low, self.depth)
                index += 1
        self.string_at_line_end = self._open_string
        if self._open_string in ("'", '"'):
            self._open_string = ""  # a one-line string left open ends with its line
        return low

    def _skip_string(self, line: str, index: int) -> int:
        delimiter = self._open_string
        while index < len(line):
            if line[index] == "\\":
                index += 2
            elif line.startswith(delimiter, index):
                self._open_string = ""
                return index + len(delimiter)
            else:
                index += 1
        return index


def indent_width(line: str, tab_size: int = DEFAULT_TAB_SIZE) -> int:
    """Columns of leading whitespace, a tab advancing to the next multiple of `tab_size`."""
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += tab_size - width % tab_size
        else:
            break
    return width


class StopCriteria:
    """Stop rules for one completion; feed it decoded text as it arrives.

    `prefix_line` is the cursor line's text before the cursor: the first generated line
    continues it, and its indentation is where a block starts. `language` selects the block
    style (indentation when None) and how the bracket lexer reads strings and comments. Once a
    decision to stop is made it is final; later calls return it again.
    """

    def __init__(
        self,
        mode: StopMode,
        prefix_line: str = "",
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        tab_size: int = DEFAULT_TAB_SIZE,
        language: CompletionLanguage | None = None,
    ) -> None:
        self.mode: StopMode = mode
        self.brackets = language is not None and language.block_style == "brackets"
        # Without a language the lexer would guess at quotes and comments: no lexer then.
        self._lexer = BracketLexer(language) if language is not None else None
        self.max_lines = max_lines
        self.tab_size = tab_size
        self._prefix_line = prefix_line
        # After code (an opener): the block is the lines indented deeper than the cursor line.
        # On a blank line: the block is the lines at least as deep as the first line written.
        self._after_code = bool(prefix_line.strip())
        self._header_indent = indent_width(prefix_line, tab_size)
        self._block_indent: int | None = None
        self._text = ""
        self._line_start = 0  # where the line being generated starts in _text
        self._lines: list[str] = []  # completed lines, the first one including prefix_line
        self._line_ends: list[int] = []  # index in _text of the newline that ends each line
        self._blank_since_code = False
        self._text_lines = 0  # completed lines with visible text, for the cap
        self._close_at_line_end = False
        self._decision: StopDecision | None = None

    @classmethod
    def for_cursor(
        cls,
        prefix_line: str,
        suffix_line: str,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        language: CompletionLanguage | None = None,
    ) -> StopCriteria:
        mode = decide_mode(prefix_line, suffix_line)
        return cls(mode, prefix_line, max_lines=max_lines, language=language)

    @property
    def text(self) -> str:
        """Everything fed so far."""
        return self._text

    def feed(self, new_text: str) -> StopDecision:
        if self._decision is not None:
            return self._decision
        self._text += new_text
        while self._decision is None:
            newline = self._text.find("\n", self._line_start)
            if newline < 0:
                break
            self._complete_line(newline)
        if self._decision is None:
            self._check_line_start(len(self._lines), self._current_line(), complete=False)
        return self._decision or StopDecision(False, len(self._text))

    def finish(self, cut_off: bool = False) -> StopDecision:
        """The completion when generation ended for another reason: an end-of-text token
        (`cut_off=False`) or the token budget (`cut_off=True`: in block mode a partial last
        line is dropped when complete lines come before it, half a statement being worse than
        none)."""
        if self._decision is not None:
            return self._decision
        if self.mode == "line":
            return StopDecision(True, len(self._text), "end")
        end = len(self._text)
        if cut_off and self._text_lines and self._line_start < end:
            end = self._line_ends[-1]
        return StopDecision(True, _trimmed(self._text, end), "cut_off" if cut_off else "end")

    def _current_line(self) -> str:
        line = self._text[self._line_start :]
        return self._prefix_line + line if not self._lines else line

    def _complete_line(self, newline: int) -> None:
        index = len(self._lines)
        line = (self._prefix_line if index == 0 else "") + self._text[self._line_start : newline]
        line = line.removesuffix("\r")
        if self.mode == "line":
            self._stop(_end_of_content(self._text, newline), "newline")
            return
        self._check_line_start(index, line, complete=True)
        if self._decision is not None:
            return
        generated_part = line[len(self._prefix_line) :] if index == 0 else line
        low = self._lexer.scan(generated_part) if self._lexer is not None else 0
        if self.brackets and not self._after_code and low < 0:
            # A closer mid-line ("foo(); }") ends a block this completion did not open.
            self._stop_before_line(index, "close_outer")
            return
        self._lines.append(line)
        self._line_ends.append(newline)
        self._line_start = newline + 1
        if generated_part.strip():
            self._text_lines += 1
        if self.brackets and self._after_code and self._lexer and self._lexer.depth < 0:
            # The opener's block is balanced and the line ends outside it ("}", "});" but not
            # "} else {"): the rest of the line belongs to the completion, nothing after it.
            self._stop(_end_of_content(self._text, newline), "close")
        elif self._close_at_line_end:
            self._stop(_end_of_content(self._text, newline), "close")
        elif self._text_lines >= self.max_lines:
            self._stop(_end_of_content(self._text, newline), "line_cap")
        else:
            self._check_repetition()

    def _check_line_start(self, index: int, line: str, *, complete: bool) -> None:
        """Rules that the start of a line decides: fence, dedent, blank line, closing line."""
        if self.mode == "line" or (index == 0 and self._after_code):
            return
        if self._lexer is not None and not self._lexer.in_code:
            return  # the line starts inside a string or comment: its indentation means nothing
        stripped = line.strip()
        if not stripped:
            if complete and self._block_indent is not None:
                self._blank_since_code = True
            return
        if stripped.startswith(_FENCE):
            self._stop_before_line(index, "fence")
            return
        if not complete and _FENCE.startswith(stripped):
            return  # "`" or "``" so far: wait for the next character
        indent = indent_width(line, self.tab_size)
        if self.brackets and self._lexer is not None:
            if self._after_code:
                return  # the balancing bracket ends the block, whatever the indentation
            if self._lexer.depth == 0 and stripped[0] in _CLOSING_BRACKETS:
                self._stop_before_line(index, "close_outer")
                return
        if self._after_code:
            if indent > self._header_indent:
                return
            if indent == self._header_indent and stripped[0] in _CLOSING_BRACKETS:
                # "}" / ")" closing the opener's block belongs to the completion; stop after it.
                self._close_at_line_end = True
                return
            self._stop_before_line(index, "dedent")
            return
        if self._block_indent is None:
            self._block_indent = indent
        elif indent < self._block_indent:
            self._stop_before_line(index, "dedent")
        elif self._blank_since_code and indent <= self._block_indent:
            self._stop_before_line(index, "blank_line")
        elif complete:
            self._blank_since_code = False

    def _check_repetition(self) -> None:
        lines = self._lines
        for size in range(1, _MAX_REPEAT_GROUP + 1):
            if len(lines) < 2 * size:
                break
            group = lines[-size:]
            if group != lines[-2 * size : -size]:
                continue
            if sum(len("".join(line.split())) for line in group) >= REPEAT_MIN_CHARS:
                self._stop_before_line(len(lines) - size, "repetition")
                return

    def _stop_before_line(self, index: int, reason: str) -> None:
        end = self._line_ends[index - 1] if index > 0 else 0
        self._stop(_trimmed(self._text, end), reason)

    def _stop(self, keep: int, reason: str) -> None:
        self._decision = StopDecision(True, keep, reason)


def _end_of_content(text: str, newline: int) -> int:
    """The end of a line's content: its newline, or the "\\r" of a "\\r\\n"."""
    return newline - 1 if newline > 0 and text[newline - 1] == "\r" else newline


def _trimmed(text: str, end: int) -> int:
    """`end` moved back over trailing whitespace and blank lines."""
    return len(text[:end].rstrip())
