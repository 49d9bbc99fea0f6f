"""Build the model's prompt from the text around the cursor, under a token budget.

Parts are ordered by stability so the engine's KV cache keeps them while the user types: the
repository context (other files, see completion.context) first, then the file's header, then
the text before the cursor, whose only changing part is its end. Where the file is longer
than the budget, the prefix keeps starting at the line the document's previous prompt started
at while that serves (`previous_cut`), so that moving the cursor does not move the prompt's
start.
With FIM tokens in the manifest, the prefix section ends at the start of the cursor's line and
that line's text before the cursor follows the middle token (the PSM trick from design.md).
A model is data: nothing here branches on the model's family.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass

from tokenizers import Tokenizer

from onnx_models.manifest import ModelManifest

# Cut the prefix only at line numbers that are multiples of this, so the start of the prompt
# (and with it the whole KV cache) stays put while the file grows by a few lines.
CUT_ALIGNMENT_LINES = 16
# A document's previous cut is kept while the prefix after it fits the budget and fills at
# least this share of it: the cursor can move up (or down, within the budget) without moving
# the prompt's start, which would cost the whole file's part of the prefill.
KEPT_CUT_MIN_FILL = 0.75
# When a document's cut has to move forward, it moves this share of the budget further than
# needed, so that the next lines typed or moved over do not move it again.
RECUT_SLACK = 0.125


@dataclass(frozen=True)
class PromptBudget:
    prefix_tokens: int = 1024
    suffix_tokens: int = 256
    # The most of `prefix_tokens` that repository context may take; what it leaves unused
    # stays with the prefix. (Its size changes only when its text does, and then the cache
    # of everything after it is gone anyway: a moving cut point costs nothing more.)
    context_tokens: int = 384


@dataclass(frozen=True)
class Prompt:
    """Prompt text that always ends exactly at the cursor (the model continues from there)."""

    text: str
    prefix_chars_dropped: int  # characters of the document cut from the front
    cut_line: int = 0  # the document's line the kept prefix starts at (for `previous_cut`)


def _keep_tail(
    tokenizer: Tokenizer, text: str, budget: int, previous_cut: int | None = None
) -> tuple[str, int, int]:
    """A line-aligned tail of `text` within `budget` tokens, the chars dropped and the line it
    starts at: the document's `previous_cut` line while it still serves (see
    KEPT_CUT_MIN_FILL), else the longest tail from an aligned line."""
    if not text:
        return text, 0, 0
    enc = tokenizer.encode(text, add_special_tokens=False)
    total = len(enc)
    if total <= budget:
        return text, 0, 0
    offsets = enc.offsets  # built anew on every access: once per prompt
    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    if previous_cut is not None and 0 < previous_cut < len(line_starts):
        start = line_starts[previous_cut]
        kept = total - bisect_left(offsets, (start, start))
        if budget * KEPT_CUT_MIN_FILL <= kept <= budget:
            return text[start:], start, previous_cut
    # A document seen before is being typed in or moved through: leave room for that.
    target = budget - int(budget * RECUT_SLACK) if previous_cut is not None else budget
    first_kept_char = offsets[total - max(target, 1)][0]
    # Move the cut forward to an aligned line start at or after `first_kept_char`.
    for number, start in enumerate(line_starts):
        if start >= first_kept_char and number % CUT_ALIGNMENT_LINES == 0:
            return text[start:], start, number
    # No aligned line fits (few, very long lines): cut at the token boundary.
    line = bisect_right(line_starts, first_kept_char) - 1
    return text[first_kept_char:], first_kept_char, line


def _keep_head(tokenizer: Tokenizer, text: str, budget: int) -> str:
    enc = tokenizer.encode(text, add_special_tokens=False)
    if len(enc.ids) <= budget:
        return text
    end = enc.offsets[budget - 1][1] if budget > 0 else 0
    cut = text.rfind("\n", 0, end)
    return text[: cut + 1] if cut >= 0 else text[:end]


class PrefixCuts:
    """Per document, the line its last prompt's prefix started at (`Prompt.cut_line`), for
    the next prompt's `previous_cut`."""

    def __init__(self, documents: int = 64) -> None:
        self.documents = documents
        self._lines: OrderedDict[str, int] = OrderedDict()

    def get(self, path: str) -> int | None:
        return self._lines.get(path) if path else None

    def remember(self, path: str, line: int) -> None:
        if not path:
            return
        self._lines[path] = line
        self._lines.move_to_end(path)
        while len(self._lines) > self.documents:
            self._lines.popitem(last=False)

    def forget(self) -> None:
        self._lines.clear()


# How the file's path is shown to the model, by preference; "none" shows no path.
FRAMINGS = ("filename", "file_sep", "none")


def file_header(manifest: ModelManifest, path: str, framing: str = "filename") -> str:
    """Frame the file with its path using the model's own file token, if it has that token."""
    if not path or framing == "none":
        return ""
    token = manifest.special_tokens.get(framing)
    return f"{token}{path}\n" if token else ""


def build_prompt(
    tokenizer: Tokenizer,
    manifest: ModelManifest,
    *,
    prefix: str,
    suffix: str,
    line_prefix: str,
    path: str = "",
    budget: PromptBudget = PromptBudget(),
    framing: str = "filename",
    repo_context: str = "",
    previous_cut: int | None = None,
) -> Prompt:
    """The prompt; `repo_context` (packed into `budget.context_tokens` by
    completion.context) goes first, and takes its size out of the prefix's budget.
    `previous_cut`: the `cut_line` of the last prompt for this document, if any."""
    header = file_header(manifest, path, framing)
    context_size = (
        len(tokenizer.encode(repo_context, add_special_tokens=False).ids) if repo_context else 0
    )
    prefix_budget = budget.prefix_tokens - min(context_size, budget.context_tokens)
    kept_prefix, dropped, cut_line = _keep_tail(
        tokenizer, prefix, max(prefix_budget, 1), previous_cut
    )
    fim = manifest.fim
    if fim is None:
        return Prompt(repo_context + header + kept_prefix, dropped, cut_line)
    # Everything but the current line's typed text stays cached while the user types on it.
    stable = kept_prefix[: len(kept_prefix) - len(line_prefix)]
    kept_suffix = _keep_head(tokenizer, suffix, budget.suffix_tokens)
    if fim.order == "spm":
        text = f"{fim.suffix}{kept_suffix}{fim.prefix}{header}{stable}{fim.middle}{line_prefix}"
    else:
        text = f"{fim.prefix}{header}{stable}{fim.suffix}{kept_suffix}{fim.middle}{line_prefix}"
    return Prompt(repo_context + text, dropped, cut_line)
