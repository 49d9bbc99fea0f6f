"""Plain values that cross from the protocol layer into completion and back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """Zero-based line and character, characters counted in UTF-16 code units as in LSP."""

    line: int
    character: int


@dataclass(frozen=True)
class ContextSnippet:
    """Text from another file of the workspace that the prompt may show before the file."""

    path: str  # workspace-relative, forward slashes
    start_line: int  # where `text` starts in that file (0-based): orders snippets of a file
    text: str
    score: float  # higher is more useful; packing into the budget goes by it
    layer: int  # prompt order, most stable first (see completion.context)


@dataclass(frozen=True)
class CompletionRequest:
    text: str
    position: Position
    path: str = ""  # workspace-relative (or absolute) file path, used to frame the prompt
    language_id: str = ""
    max_new_tokens: int = 64
    # The workspace folder the file belongs to: its `.env`-type files' values are never shown
    # to the model nor suggested. Empty: no workspace known.
    workspace: str = ""
    # Repository context from the workspace index, best first (completion.context), and the
    # workspace's name for the model's `<repo_name>` token.
    context: tuple[ContextSnippet, ...] = ()
    repo_name: str = ""


@dataclass(frozen=True)
class CompletionStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    prefill_ms: float = 0.0  # with what was prefilled during the debounce (`warmed_tokens`)
    decode_ms: float = 0.0
    total_ms: float = 0.0  # from the end of the debounce: the warming is not in it
    warmed_tokens: int = 0  # prompt tokens prefilled while the server waited out the debounce
    stop_reason: str = ""  # "none" when the cursor's mode is none: nothing is suggested there
    mode: str = ""  # "line", "block" or "none"
    mode_reason: str = ""  # why that mode: "blank_line", "opener", "in_comment", "mid_word", ...
    adjusted: str = ""  # what post-processing did: "syntax_cut", "repeats_prefix", "secret", ...


@dataclass(frozen=True)
class CompletionResult:
    """Text to insert and the range it replaces (start == end for a pure insertion)."""

    insert_text: str
    start: Position
    end: Position
    stats: CompletionStats = field(default_factory=CompletionStats)
