"""Build the model's prompt from the text around the cursor, under a token budget.

Parts are ordered by stability so the engine's KV cache keeps them while the user types: the
repository context (other files, see completion.context) first, then the file's header, then
the text before the cursor, whose only changing part is its end.
With FIM tokens in the manifest, the prefix section ends at the start of the cursor's line and
that line's text before the cursor follows the middle token (the PSM trick from design.md).
A model is data: nothing here branches on the model's family.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer

from onnx_models.manifest import ModelManifest

# Cut the prefix only at line numbers that are multiples of this, so the start of the prompt
# (and with it the whole KV cache) stays put while the file grows by a few lines.
CUT_ALIGNMENT_LINES = 16


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


def _keep_tail(tokenizer: Tokenizer, text: str, budget: int) -> tuple[str, int]:
    """The longest line-aligned tail of `text` within `budget` tokens, and the chars dropped."""
    if not text:
        return text, 0
    enc = tokenizer.encode(text, add_special_tokens=False)
    if len(enc.ids) <= budget:
        return text, 0
    first_kept_char = enc.offsets[len(enc.ids) - budget][0]
    # Move the cut forward to an aligned line start at or after `first_kept_char`.
    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    for number, start in enumerate(line_starts):
        if start >= first_kept_char and number % CUT_ALIGNMENT_LINES == 0:
            return text[start:], start
    # No aligned line fits (few, very long lines): cut at the token boundary.
    return text[first_kept_char:], first_kept_char


def _keep_head(tokenizer: Tokenizer, text: str, budget: int) -> str:
    enc = tokenizer.encode(text, add_special_tokens=False)
    if len(enc.ids) <= budget:
        return text
    end = enc.offsets[budget - 1][1] if budget > 0 else 0
    cut = text.rfind("\n", 0, end)
    return text[: cut + 1] if cut >= 0 else text[:end]


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
) -> Prompt:
    """The prompt; `repo_context` (packed into `budget.context_tokens` by
    completion.context) goes first, and takes its size out of the prefix's budget."""
    header = file_header(manifest, path, framing)
    context_size = (
        len(tokenizer.encode(repo_context, add_special_tokens=False).ids) if repo_context else 0
    )
    prefix_budget = budget.prefix_tokens - min(context_size, budget.context_tokens)
    kept_prefix, dropped = _keep_tail(tokenizer, prefix, max(prefix_budget, 1))
    fim = manifest.fim
    if fim is None:
        return Prompt(repo_context + header + kept_prefix, dropped)
    # Everything but the current line's typed text stays cached while the user types on it.
    stable = kept_prefix[: len(kept_prefix) - len(line_prefix)]
    kept_suffix = _keep_head(tokenizer, suffix, budget.suffix_tokens)
    if fim.order == "spm":
        text = f"{fim.suffix}{kept_suffix}{fim.prefix}{header}{stable}{fim.middle}{line_prefix}"
    else:
        text = f"{fim.prefix}{header}{stable}{fim.suffix}{kept_suffix}{fim.middle}{line_prefix}"
    return Prompt(repo_context + text, dropped)
