"""Token healing with the real SmolLM2 tokenizer: what is removed, and what may come next."""

from __future__ import annotations

import time

import numpy as np
import pytest
from tokenizers import Tokenizer, models

from completion.token_healing import (
    HealingConstraint,
    TokenByteTable,
    TokenHealer,
    TokenHealingError,
    strip_healed_prefix,
)


@pytest.fixture(scope="module")
def healer(smollm_tokenizer: Tokenizer) -> TokenHealer:
    return TokenHealer.for_tokenizer(smollm_tokenizer)


@pytest.mark.parametrize(
    ("prompt", "removed"),
    [
        ("def f():\n    ", "\n    "),  # newline + indent would merge with the next word's space
        ("x = calcul", " calcul"),  # mid-identifier: the whole word piece goes
        ("result = foo_ba", "ba"),
        ("print(", "("),  # "()" / "():" are tokens of their own
        ("foo.", "."),
        ("x = 1 ", " "),
        ("if x ==", " =="),
        ("x = 1\n\n", "\n\n"),
        ("s = '日本", "日本"),  # multi-byte characters spread over several tokens
    ],
)
def test_removes_the_last_piece(healer: TokenHealer, prompt: str, removed: str) -> None:
    healed = healer.heal_text(prompt)
    assert healed.removed_text == removed
    assert healer.tokenizer.decode(list(healed.prompt_ids)) + removed == prompt


def test_special_tokens_stay(healer: TokenHealer) -> None:
    assert healer.heal_text("<file_sep>").removed_ids == ()
    healed = healer.heal_text("<file_sep>src/a.py\n<|endoftext|>x")
    assert healed.removed_text == "x"
    assert healed.prompt_ids[-1] == 0


def test_empty_prompt(healer: TokenHealer) -> None:
    healed = healer.heal_text("")
    assert healed.prompt_ids == () and healed.removed_text == ""
    assert not healer.constraint(healed).active


def test_removal_is_capped(smollm_tokenizer: Tokenizer) -> None:
    healer = TokenHealer.for_tokenizer(smollm_tokenizer, max_removed_tokens=2)
    prompt = "x = supercalifragilisticexpialidocious"
    healed = healer.heal_text(prompt)
    assert len(healed.removed_ids) == 2
    assert smollm_tokenizer.decode(list(healed.prompt_ids)) + healed.removed_text == prompt


def test_never_removes_half_a_character(healer: TokenHealer) -> None:
    for prompt in ["s = '日本", "emoji = '🎉", "x = 'é", "naïve"]:
        healed = healer.heal_text(prompt)
        assert healer.table.bytes_of(healed.removed_ids) == healed.removed_text.encode()
        assert "\ufffd" not in healed.removed_text


@pytest.mark.parametrize(
    ("prompt", "continuation"),
    [
        ("def f():\n    ", "return 1\n"),
        ("x = calcul", "ate_total(a)"),
        ("print(", ")"),
        ("foo.", "bar()"),
        ("if x ==", " 1:"),
        ("s = 'caf", "é'"),
        ("x = 1 ", "+ 2"),
        ("for i in range(", "10):"),
    ],
)
def test_natural_tokenization_passes_the_constraint(
    healer: TokenHealer, prompt: str, continuation: str
) -> None:
    """The way the finished text tokenizes is a path the healed decoding may take."""
    healed = healer.heal_text(prompt)
    full = healer.tokenizer.encode(prompt + continuation).ids
    assert tuple(full[: len(healed.prompt_ids)]) == healed.prompt_ids
    constraint = healer.constraint(healed)
    generated = b""
    for token_id in full[len(healed.prompt_ids) :]:
        if not constraint.active:
            break
        allowed = constraint.allowed_ids()
        assert allowed is not None and token_id in set(allowed.tolist())
        constraint = constraint.advance(token_id)
        generated += healer.table.token_bytes[token_id]
    assert not constraint.active
    assert generated.decode().startswith(healed.removed_text)


@pytest.mark.parametrize("remaining", [" ", "\n    ", "calcul", "(", "<", "日本", "é", "\t\t"])
def test_allowed_ids_match_a_full_scan(healer: TokenHealer, remaining: str) -> None:
    want = remaining.encode()
    expected = {
        i
        for i, token in enumerate(healer.table.token_bytes)
        if token and (token.startswith(want) or want.startswith(token))
    }
    allowed = HealingConstraint(healer.table, want).allowed_ids()
    assert allowed is not None
    assert len(allowed) == len(expected) == len(set(allowed.tolist()))
    assert set(allowed.tolist()) == expected


def test_special_tokens_are_never_allowed(healer: TokenHealer) -> None:
    allowed = set(HealingConstraint(healer.table, b"<").allowed_ids().tolist())
    assert not allowed & healer.table.special_ids
    assert healer.tokenizer.token_to_id("<") in allowed


def test_advance_consumes_and_switches_off(healer: TokenHealer) -> None:
    tok = healer.tokenizer.token_to_id
    constraint = healer.constraint("\n    ")
    constraint = constraint.advance(tok("Ċ"))
    assert constraint.remaining == b"    "
    constraint = constraint.advance(tok("ĠĠĠ"))
    assert constraint.remaining == b" "
    constraint = constraint.advance(tok("Ġreturn"))
    assert not constraint.active and constraint.allowed_ids() is None
    assert constraint.advance(tok("Ġx")) is constraint


def test_allowed_prefix_keeps_the_draft_tokens_decoding_could_choose(healer: TokenHealer) -> None:
    tok = healer.tokenizer.token_to_id
    draft = [tok("Ċ"), tok("ĠĠĠ"), tok("Ġreturn"), tok("Ġx")]
    assert healer.constraint("\n    ").allowed_prefix(draft) == draft
    assert healer.constraint("\n  x").allowed_prefix(draft) == draft[:1]
    assert healer.constraint(" calcul").allowed_prefix(draft) == []
    special = next(iter(healer.table.special_ids))
    assert healer.constraint("<").allowed_prefix([special]) == []


def test_advance_rejects_a_forbidden_token(healer: TokenHealer) -> None:
    with pytest.raises(TokenHealingError):
        healer.constraint(" calcul").advance(healer.tokenizer.token_to_id("Ġreturn"))


def test_constrain_logits_and_mask(healer: TokenHealer) -> None:
    constraint = healer.constraint(" calcul")
    padded_vocab = healer.table.vocab_size + 64  # models often pad the embedding matrix
    logits = np.random.default_rng(0).standard_normal(padded_vocab).astype(np.float32)
    best = int(np.argmax(constraint.constrain_logits(logits)))
    chosen = healer.table.token_bytes[best]
    assert chosen and (chosen.startswith(b" calcul") or b" calcul".startswith(chosen))
    mask = constraint.allowed_mask(padded_vocab)
    assert mask is not None and mask.shape == (padded_vocab,) and not mask[-64:].any()
    assert np.isfinite(logits[mask]).all() and np.isneginf(logits[~mask]).all()
    unconstrained = np.zeros(4, dtype=np.float32)
    assert HealingConstraint(healer.table, b"").constrain_logits(unconstrained) is unconstrained


def test_byte_table(healer: TokenHealer) -> None:
    table = healer.table
    assert table.token_bytes[healer.tokenizer.token_to_id("Ġ")] == b" "
    assert table.token_bytes[healer.tokenizer.token_to_id("ĊĠĠĠĠ")] == b"\n    "
    assert table.token_bytes[2] == b"" and 2 in table.special_ids
    assert table.vocab_size == 49152


def test_needs_a_byte_level_tokenizer() -> None:
    plain = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    with pytest.raises(TokenHealingError, match="byte-level"):
        TokenByteTable.from_tokenizer(plain)


def test_strip_healed_prefix() -> None:
    assert strip_healed_prefix("\n    return 1", "\n    ") == "return 1"
    assert strip_healed_prefix("\n  ", "\n    ") == ""
    assert strip_healed_prefix(" calculate()", " calcul") == "ate()"
    assert strip_healed_prefix("anything", "") == "anything"
    with pytest.raises(TokenHealingError):
        strip_healed_prefix(" return", " calcul")


@pytest.mark.parametrize("remaining", [" ", "\n    ", "calcul"])
def test_a_constrained_step_is_well_under_a_millisecond(
    healer: TokenHealer, remaining: str
) -> None:
    constraint = healer.constraint(remaining)
    logits = np.zeros(healer.table.vocab_size, dtype=np.float32)
    steps = 200
    start = time.perf_counter()
    for _ in range(steps):
        constraint.constrain_logits(logits)
    per_step = (time.perf_counter() - start) / steps
    # " " allows ~32k tokens and is the worst case (~0.2 ms); generous for slow CI machines.
    assert per_step < 2e-3
