"""Engine behaviour with the real model: speculation, sampling, deadlines, cancellation; on the
prefill graph alone, where every pass runs one graph (the step graph's: test_step_graph.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from onnx_models.engine import Engine, GenerationCancelled
from onnx_models.prompt_lookup import PromptLookup
from onnx_models.sampling import SamplingParams, sampler

REPETITIVE = """def area_of_square(side):
    return side * side


def area_of_rectangle(width, height):
    return width * height


def area_of_triangle(base, height):
    return base * height / 2


def area_of_"""


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine.load(model_dir, step_graph=False)


def test_prompt_lookup_drafts_what_followed_the_last_ngram() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 6, 1, 2, 3], max_draft=4)
    assert lookup.draft() == [4, 5, 6, 1]
    lookup.extend([9])
    assert lookup.draft() == []


def test_speculation_gives_the_greedy_tokens_in_fewer_passes(engine: Engine) -> None:
    ids = engine.tokenizer.encode(REPETITIVE).ids
    engine.rewind(0)
    plain = engine.generate(ids, max_new_tokens=40, stop_token_ids=frozenset())
    engine.rewind(0)
    fast = engine.generate(ids, max_new_tokens=40, stop_token_ids=frozenset(), speculate=True)
    assert fast.tokens == plain.tokens
    assert plain.forward_passes == len(plain.tokens) - 1
    assert fast.forward_passes < plain.forward_passes
    # The cache holds exactly the prompt and the emitted tokens but the last.
    assert engine.cached_tokens == ids + list(fast.tokens[:-1])


PLAIN = """import os


def read_settings(path):
    with open(path) as handle:
"""


def test_typing_the_start_of_a_suggestion_continues_from_the_cache(engine: Engine) -> None:
    ids = engine.tokenizer.encode(PLAIN).ids
    engine.rewind(0)
    first = engine.generate(ids, max_new_tokens=16, stop_token_ids=frozenset(), speculate=True)
    assert first.continued_tokens == 0
    typed = ids + list(first.tokens[:2])  # the user typed the first two suggested tokens
    again = engine.generate(typed, max_new_tokens=14, stop_token_ids=frozenset(), speculate=True)
    engine.rewind(0)
    plain = engine.generate(typed, max_new_tokens=14, stop_token_ids=frozenset())
    assert again.tokens == plain.tokens == first.tokens[2:]
    # The cache held 13 generated tokens after the new prompt, and the rows they and the 14th
    # were chosen from: chosen again without a forward pass.
    assert again.continued_tokens == 13
    assert (again.prefill.prefilled_tokens, again.forward_passes) == (0, 0)
    assert plain.forward_passes == 13
    # What the cache holds after a prompt it holds whole (nothing after an empty one) ...
    assert engine.continuation(typed) == list(plain.tokens[:-1]) and engine.continuation([]) == []
    # ... and an empty prompt is refused as ever, whatever the cache holds.
    with pytest.raises(ValueError, match="empty prompt"):
        engine.generate([], max_new_tokens=4, speculate=True)


def test_a_continuation_the_picker_does_not_choose_again_changes_nothing(engine: Engine) -> None:
    ids = engine.tokenizer.encode(PLAIN).ids
    engine.rewind(0)
    plain = engine.generate(ids, max_new_tokens=12, stop_token_ids=frozenset())
    engine.rewind(0)
    hot = sampler(SamplingParams(temperature=2.0, seed=3))
    sampled = engine.generate(ids, max_new_tokens=12, stop_token_ids=frozenset(), pick=hot)
    assert sampled.tokens[0] != plain.tokens[0]
    # The sampled tokens and their rows are cached: greedy picks from the prompt's row differ
    # at once, so they go and the decode runs as from the prompt alone.
    fast = engine.generate(ids, max_new_tokens=12, stop_token_ids=frozenset(), speculate=True)
    assert fast.continued_tokens == len(sampled.tokens) - 1
    assert fast.tokens == plain.tokens
    assert engine.cached_tokens == ids + list(fast.tokens[:-1])
    # Tokens cached without the rows they would be chosen from (a longer prompt's) are not
    # offered: the prompt's last token runs again.
    wrong = engine.tokenizer.encode(" raise SystemExit(3) # unrelated").ids
    engine.rewind(0)
    engine.prefill(ids + wrong)
    assert engine.continuation(ids) == []
    kept = engine.generate(ids, max_new_tokens=12, stop_token_ids=frozenset(), speculate=True)
    assert kept.continued_tokens == 0 and kept.prefill.prefilled_tokens == 1
    assert kept.tokens == plain.tokens


def test_sampling_is_reproducible_by_seed(engine: Engine) -> None:
    ids = engine.tokenizer.encode("def parse_config(path):\n").ids
    params = SamplingParams(temperature=1.0, top_k=40, top_p=0.95, seed=11)
    runs = [engine.generate(ids, max_new_tokens=12, pick=sampler(params)).tokens for _ in range(2)]
    assert runs[0] == runs[1]
    others = {
        engine.generate(
            ids, max_new_tokens=12, pick=sampler(SamplingParams(temperature=1.0, seed=s))
        ).tokens
        for s in range(4)
    }
    assert len(others) > 1


def test_cancellation_between_steps(engine: Engine) -> None:
    ids = engine.tokenizer.encode(REPETITIVE).ids
    calls = iter([False, False, True])
    with pytest.raises(GenerationCancelled):
        engine.generate(ids, max_new_tokens=30, cancelled=lambda: next(calls))
    # Still usable, and the prompt stays cached, with the logits after it.
    stats = engine.prefill(ids)
    assert (stats.reused_tokens, stats.prefilled_tokens) == (len(ids), 0)


def test_a_prompt_held_whole_needs_no_forward_pass(engine: Engine) -> None:
    ids = engine.tokenizer.encode(REPETITIVE).ids
    engine.rewind(0)
    engine.prefill(ids)
    after_prefill = engine.logits.copy()
    # As the server's warming leaves it before the generation: nothing to run again.
    stats = engine.prefill(ids)
    assert (stats.reused_tokens, stats.prefilled_tokens) == (len(ids), 0)
    assert (engine.logits == after_prefill).all()
    # After decoding, the cache holds more than the prompt (the next keystroke's prompt is the
    # same when token healing takes the typed character off again): the generated tokens go,
    # and the prompt's kept logits come back without a pass (running its last token again
    # would give logits ~1e-4 away).
    first = engine.generate(ids, max_new_tokens=4, stop_token_ids=frozenset())
    assert len(engine.cached_tokens) > len(ids)
    stats = engine.prefill(ids)
    assert (stats.reused_tokens, stats.prefilled_tokens) == (len(ids), 0)
    assert engine.cached_tokens == ids
    assert (engine.logits == after_prefill).all()
    again = engine.generate(ids, max_new_tokens=4, stop_token_ids=frozenset())
    assert again.tokens == first.tokens
    assert (again.prefill.reused_tokens, again.prefill.prefilled_tokens) == (len(ids), 0)
    # A rewind into the prompt drops the kept logits: its tail is computed again.
    engine.rewind(len(ids) - 2)
    stats = engine.prefill(ids)
    assert (stats.reused_tokens, stats.prefilled_tokens) == (len(ids) - 2, 2)
    assert abs(engine.logits - after_prefill).max() < 1e-3


def test_kept_prompt_logits_belong_to_the_prompt_they_were_kept_for(engine: Engine) -> None:
    ids = engine.tokenizer.encode(REPETITIVE).ids
    engine.rewind(0)
    engine.prefill(ids)
    engine.generate(ids, max_new_tokens=3, stop_token_ids=frozenset())
    # A shorter prompt held whole is not the one whose logits were kept: one pass.
    shorter = ids[:-1]
    stats = engine.prefill(shorter)
    assert (stats.reused_tokens, stats.prefilled_tokens) == (len(shorter) - 1, 1)
    reference = Engine(engine.model_dir, engine.manifest, engine.session, engine.tokenizer)
    reference.prefill(shorter)
    assert abs(engine.logits - reference.logits).max() < 1e-3
    # A row stays while the tokens before it do: after a longer prompt's request, `ids` (held
    # whole) needs no pass, and gets its own logits back, not the longer prompt's.
    engine.prefill(ids)
    longer = ids + engine.tokenizer.encode("\n").ids
    engine.generate(longer, max_new_tokens=2)
    stats = engine.prefill(ids)
    assert (stats.reused_tokens, stats.prefilled_tokens) == (len(ids), 0)
    reference.rewind(0)
    reference.prefill(ids)
    assert abs(engine.logits - reference.logits).max() < 1e-3


def test_prefill_stops_between_chunks_and_keeps_what_it_did(engine: Engine) -> None:
    ids = engine.tokenizer.encode(REPETITIVE).ids
    assert len(ids) > 48
    engine.rewind(0)
    checks = iter([False, False, True])
    with pytest.raises(GenerationCancelled):
        engine.prefill(ids, chunk=16, cancelled=lambda: next(checks))
    assert engine.cached_tokens == ids[:32]
    stats = engine.prefill(ids, chunk=16)
    assert (stats.reused_tokens, stats.prefilled_tokens) == (32, len(ids) - 32)
