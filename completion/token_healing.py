"""Token healing: repair the token boundary that the cursor cuts into the prompt.

A prompt that ends at the cursor often ends in a token the model would never have seen there:
"\\n    " is tokenized as one newline-plus-indent token although in real code the last space
joins the next word (" return"), and "calcul" is two tokens although the identifier the user is
typing is one (" calculate"). Conditioning on such a tail makes the model continue badly.

The fix: drop the last token(s), those of the last pre-tokenizer piece, from the prompt, and
while decoding allow only tokens whose bytes agree with the dropped text, until it is
regenerated; then the constraint is off. The caller strips the regenerated text again, so the
completion inserted at the cursor never repeats what is already there.

This module knows token ids, bytes and numpy arrays only: no model, no engine, no editor.
Byte-level BPE tokenizers (GPT-2 style, ByteLevel decoder) and SentencePiece-style ones with
byte fallback ("▁" for a space, "<0x0A>" for a byte: Llama 2, CodeLlama) are supported.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tokenizers import Tokenizer, decoders

from onnx_models.tokenizer_builder import byte_level_decoding

DEFAULT_MAX_REMOVED_TOKENS = 4
# Tokens read before the removed ones so that the pre-tokenizer sees the last piece's start.
_CONTEXT_TOKENS = 8
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class TokenHealingError(Exception):
    """The tokenizer cannot be healed for, or a token was fed that the constraint forbade."""


@dataclass(frozen=True, eq=False)
class TokenByteTable:
    """The bytes every token id stands for, indexed for prefix queries; built once per tokenizer.

    `token_bytes[i]` is empty for special tokens (they are markup, never text) and for ids the
    tokenizer does not know. `sorted_bytes`/`sorted_ids` list the text tokens in byte order, so
    all tokens that start with some bytes are one contiguous slice found by bisection.
    """

    token_bytes: tuple[bytes, ...]
    special_ids: frozenset[int]
    sorted_bytes: tuple[bytes, ...]
    sorted_ids: np.ndarray
    ids_by_bytes: dict[bytes, np.ndarray]

    @property
    def vocab_size(self) -> int:
        return len(self.token_bytes)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> TokenByteTable:
        token_bytes = _vocabulary_spelling(tokenizer)
        added = tokenizer.get_added_tokens_decoder()
        special_ids = frozenset(i for i, token in added.items() if token.special)
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        table = [b""] * size
        for text, index in tokenizer.get_vocab(with_added_tokens=True).items():
            if index in special_ids or index >= size:
                continue
            # Added (user-defined) tokens are stored as the literal text they match.
            table[index] = text.encode("utf-8") if index in added else token_bytes(text)
        order = sorted((b, i) for i, b in enumerate(table) if b)
        grouped: dict[bytes, list[int]] = {}
        for token, index in order:
            grouped.setdefault(token, []).append(index)
        return cls(
            token_bytes=tuple(table),
            special_ids=special_ids,
            sorted_bytes=tuple(b for b, _ in order),
            sorted_ids=np.fromiter((i for _, i in order), dtype=np.int64, count=len(order)),
            ids_by_bytes={b: np.asarray(ids, dtype=np.int64) for b, ids in grouped.items()},
        )

    def bytes_of(self, token_ids: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes[i] for i in token_ids)

    def ids_starting_with(self, prefix: bytes) -> np.ndarray:
        """Ids of all text tokens whose bytes begin with `prefix` (a view, do not modify)."""
        lo = bisect.bisect_left(self.sorted_bytes, prefix)
        upper = _prefix_successor(prefix)
        hi = (
            len(self.sorted_bytes)
            if upper is None
            else bisect.bisect_left(self.sorted_bytes, upper, lo=lo)
        )
        return self.sorted_ids[lo:hi]


def _prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`, if any."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True)
class HealedPrompt:
    """A prompt with its last piece dropped: decode from `prompt_ids`, regenerate `removed_text`."""

    prompt_ids: tuple[int, ...]
    removed_ids: tuple[int, ...]
    removed_text: str


@dataclass(frozen=True)
class HealingConstraint:
    """Which tokens may come next so that the output starts with the removed bytes.

    Immutable: `advance` returns the constraint for the following step, so a caller that
    rewinds decoding can keep the old one. Once `remaining` is empty it allows everything.
    """

    table: TokenByteTable = field(repr=False)
    remaining: bytes

    @property
    def active(self) -> bool:
        return bool(self.remaining)

    def allowed_ids(self) -> np.ndarray | None:
        """Allowed token ids (unsorted, no duplicates), or None when every token is allowed.

        A token is allowed if its bytes start with the remaining bytes (it finishes them and
        may go on), or are a non-empty proper prefix of them (it finishes a part of them).
        """
        if not self.remaining:
            return None
        # At most len(remaining) - 1 dictionary probes: the remaining text is a few characters.
        shorter = [
            ids
            for k in range(1, len(self.remaining))
            if (ids := self.table.ids_by_bytes.get(self.remaining[:k])) is not None
        ]
        longer = self.table.ids_starting_with(self.remaining)
        allowed = np.concatenate([*shorter, longer]) if shorter else longer
        # Nothing allowed cannot happen with a byte-level vocabulary (every byte is a token);
        # if it does, forcing all logits to -inf would be worse than not healing.
        return allowed if allowed.size else None

    def allowed_mask(self, size: int | None = None) -> np.ndarray | None:
        """Boolean mask over `size` logits (default: the vocabulary), or None when unconstrained."""
        allowed = self.allowed_ids()
        if allowed is None:
            return None
        mask = np.zeros(self.table.vocab_size if size is None else size, dtype=bool)
        mask[allowed[allowed < mask.size]] = True
        return mask

    def constrain_logits(self, logits: np.ndarray) -> np.ndarray:
        """Set the logits of forbidden tokens to -inf, in place; returns `logits`."""
        allowed = self.allowed_ids()
        if allowed is None:
            return logits
        allowed = allowed[allowed < logits.shape[-1]]
        # Save, fill, restore: a boolean-mask assignment over the whole vocabulary is ~10x slower.
        kept = logits[..., allowed]
        logits.fill(-np.inf)
        logits[..., allowed] = kept
        return logits

    def allowed_prefix(self, draft: list[int]) -> list[int]:
        """The leading tokens of `draft` that decoding under this constraint could choose (a
        speculative draft past them would be verified in vain)."""
        current = self
        for i, token_id in enumerate(draft):
            if not current.remaining:
                return draft
            after = current._after(token_id)
            if after is None:
                return draft[:i]
            current = after
        return draft

    def advance(self, token_id: int) -> HealingConstraint:
        """The constraint after `token_id` was chosen."""
        after = self._after(token_id)
        if after is None:
            token = self._bytes(token_id)
            raise TokenHealingError(
                f"token {token_id} ({token!r}) does not continue the healed text "
                f"{self.remaining!r}; mask the logits with constrain_logits before choosing"
            )
        return after

    def _bytes(self, token_id: int) -> bytes:
        return self.table.token_bytes[token_id] if token_id < self.table.vocab_size else b""

    def _after(self, token_id: int) -> HealingConstraint | None:
        """The constraint after `token_id`, or None when the constraint forbids it."""
        if not self.remaining:
            return self
        token = self._bytes(token_id)
        if token and token.startswith(self.remaining):
            return HealingConstraint(self.table, b"")
        if token and self.remaining.startswith(token):
            return HealingConstraint(self.table, self.remaining[len(token) :])
        return None


@dataclass(frozen=True, eq=False)
class TokenHealer:
    """Heals prompts for one tokenizer; build once per model (the table takes ~0.1 s)."""

    tokenizer: Tokenizer
    table: TokenByteTable
    max_removed_tokens: int = DEFAULT_MAX_REMOVED_TOKENS

    @classmethod
    def for_tokenizer(
        cls, tokenizer: Tokenizer, max_removed_tokens: int = DEFAULT_MAX_REMOVED_TOKENS
    ) -> TokenHealer:
        return cls(tokenizer, TokenByteTable.from_tokenizer(tokenizer), max_removed_tokens)

    def heal_text(self, prompt_text: str) -> HealedPrompt:
        """Tokenize a prompt that ends at the cursor (special tokens allowed) and heal it."""
        ids = self.tokenizer.encode(prompt_text, add_special_tokens=False).ids
        return self.heal_ids(ids)

    def heal_ids(self, prompt_ids: Sequence[int]) -> HealedPrompt:
        """Drop the tokens of the prompt's last pre-tokenizer piece (at least one, at most
        `max_removed_tokens`, never a special token, never half a character)."""
        ids = tuple(prompt_ids)
        count = self._tokens_to_remove(ids)
        kept, removed = ids[: len(ids) - count], ids[len(ids) - count :]
        text = self.table.bytes_of(removed).decode("utf-8", errors="replace")
        return HealedPrompt(prompt_ids=kept, removed_ids=removed, removed_text=text)

    def constraint(self, healed: HealedPrompt | str) -> HealingConstraint:
        """The decoding constraint that regenerates what `heal_*` removed."""
        if isinstance(healed, HealedPrompt):
            return HealingConstraint(self.table, self.table.bytes_of(healed.removed_ids))
        return HealingConstraint(self.table, healed.encode("utf-8"))

    def _tokens_to_remove(self, ids: tuple[int, ...]) -> int:
        # Only the last few tokens are looked at, and only those after the last special token:
        # markup stays in the prompt.
        lowest = max(0, len(ids) - self.max_removed_tokens - _CONTEXT_TOKENS)
        window_start = len(ids)
        while window_start > lowest and self._is_text(ids[window_start - 1]):
            window_start -= 1
        removable = len(ids) - window_start
        if removable == 0 or self.max_removed_tokens <= 0:
            return 0
        # The pre-tokenizer must read whole characters.
        while window_start < len(ids) - 1 and _starts_mid_character(
            self.table.token_bytes[ids[window_start]]
        ):
            window_start += 1
        count = min(self._last_piece_tokens(ids[window_start:]), self.max_removed_tokens)
        count = max(count, 1)
        # Never split a character: the removed bytes must decode on their own.
        while count < removable and _starts_mid_character(self.table.token_bytes[ids[-count]]):
            count += 1
        return count

    def _is_text(self, token_id: int) -> bool:
        return token_id < self.table.vocab_size and bool(self.table.token_bytes[token_id])

    def _last_piece_tokens(self, window: tuple[int, ...]) -> int:
        """How many of the window's last tokens lie in the pre-tokenizer's last piece."""
        tail = self.table.bytes_of(window)
        try:
            text = tail.decode("utf-8")
        except UnicodeDecodeError:
            return 1
        pre_tokenizer = self.tokenizer.pre_tokenizer
        pieces = pre_tokenizer.pre_tokenize_str(text) if pre_tokenizer is not None else []
        if not pieces:
            return 1
        piece_start = len(text[: pieces[-1][1][0]].encode("utf-8"))
        # Count tokens from the end until their start reaches the piece start.
        offset, count = len(tail), 0
        for token_id in reversed(window):
            offset -= len(self.table.token_bytes[token_id])
            count += 1
            if offset <= piece_start:
                break
        return count


def _vocabulary_spelling(tokenizer: Tokenizer) -> Callable[[str], bytes]:
    """How the tokenizer's vocabulary spells bytes: byte-level BPE maps each byte to a
    printable character; SentencePiece-style byte fallback writes "▁" for a space and
    "<0xHH>" for a byte it has no piece for."""
    if isinstance(tokenizer.decoder, decoders.ByteLevel):
        spelling = byte_level_decoding()

        def byte_level(text: str) -> bytes:
            if all(char in spelling for char in text):
                return bytes(spelling[char] for char in text)
            return text.encode("utf-8")

        return byte_level
    model = json.loads(tokenizer.to_str()).get("model", {})
    if model.get("byte_fallback"):

        def byte_fallback(text: str) -> bytes:
            match = _BYTE_TOKEN.fullmatch(text)
            return bytes([int(match.group(1), 16)]) if match else text.replace("▁", " ").encode()

        return byte_fallback
    raise TokenHealingError(
        "token healing needs a byte-level BPE tokenizer (ByteLevel decoder) or one with byte "
        f"fallback; this one decodes with {type(tokenizer.decoder).__name__}"
    )


def _starts_mid_character(token: bytes) -> bool:
    return bool(token) and (token[0] & 0xC0) == 0x80


def strip_healed_prefix(generated_text: str, removed_text: str) -> str:
    """The part of the generated text after the regenerated `removed_text`.

    While the model has not finished regenerating it, that part is empty. Text that does not
    agree with `removed_text` means decoding ran without the constraint: an error.
    """
    if generated_text.startswith(removed_text):
        return generated_text[len(removed_text) :]
    if removed_text.startswith(generated_text):
        return ""
    raise TokenHealingError(
        f"generated text {generated_text[:40]!r} does not begin with the healed text "
        f"{removed_text!r}"
    )
