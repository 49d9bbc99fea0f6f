"""The pipeline with the real shipped model: prompt, healing, decode, stops, range."""

from __future__ import annotations

from pathlib import Path

import pytest

from completion.candidates import complete_candidates
from completion.cursor import InvalidPositionError
from completion.pipeline import CompletionCancelled, CompletionPipeline
from completion.request import CompletionRequest, Position

STACK = '''class Stack:
    """A last-in, first-out stack."""

    def __init__(self) -> None:
        self.items: list[int] = []

    def push(self, item: int) -> None:
        self.items.append(item)

    def is_empty(self) -> bool:
'''
STACK += "        \n"  # the user has typed the body's indentation


@pytest.fixture(scope="module")
def pipeline(model_dir: Path) -> CompletionPipeline:
    return CompletionPipeline.load(model_dir)


def test_block_completion_at_empty_method_body(pipeline: CompletionPipeline) -> None:
    result = pipeline.complete(CompletionRequest(STACK, Position(10, 8), path="stack.py"))
    assert "self.items" in result.insert_text
    # Inserted at the cursor, after the indentation the user already typed.
    assert not result.insert_text.startswith(" ")
    assert (result.start, result.end) == (Position(10, 8), Position(10, 8))
    assert result.stats.generated_tokens > 0


def test_rest_of_line_stops_at_end_of_line(pipeline: CompletionPipeline) -> None:
    text = "import os\n\n\ndef list_files(folder):\n    return os.li"
    result = pipeline.complete(CompletionRequest(text, Position(4, 16), path="files.py"))
    assert result.insert_text
    assert "\n" not in result.insert_text
    assert result.stats.stop_reason in {"newline", "end"}


def test_second_keystroke_reuses_the_cache(pipeline: CompletionPipeline) -> None:
    text = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a"
    pipeline.complete(CompletionRequest(text, Position(5, 12)))
    again = pipeline.complete(CompletionRequest(text + " ", Position(5, 13)))
    assert again.stats.reused_tokens >= again.stats.prompt_tokens - 3


def test_a_cursor_move_up_a_long_file_reuses_the_cached_prompt(
    pipeline: CompletionPipeline,
) -> None:
    """The prompt keeps the file's prefix from where the previous prompt started it, so a
    move up the file needs no prefill beyond the healed tail."""
    lines = [f"def step_{n}(value):\n    return value * {n} + {n % 7}\n" for n in range(200)]
    text = "".join(lines)
    rows = text.split("\n")
    down, up = (Position(row, len(rows[row]) - 3) for row in (371, 363))  # before " + n"
    pipeline.prefix_cuts.forget()
    first = pipeline.complete(CompletionRequest(text, down, path="steps.py"))
    assert first.stats.prompt_tokens > 800  # the prefix was cut to the budget
    moved = pipeline.complete(CompletionRequest(text, up, path="steps.py"))
    assert moved.stats.reused_tokens >= moved.stats.prompt_tokens - 3
    # Cut afresh, the prefix would start higher up the file and be prefilled again.
    pipeline.complete(CompletionRequest(text, down, path="other.py"))
    pipeline.prefix_cuts.forget()
    fresh = pipeline.complete(CompletionRequest(text, up, path="other.py"))
    assert fresh.stats.reused_tokens < 20


def test_candidates_after_the_first_run_no_pass_for_the_prompt(
    pipeline: CompletionPipeline,
) -> None:
    """Every candidate of an explicit invoke has the same prompt: the first leaves its logits
    kept, so the sampled ones start decoding at once (the cache holds the first suggestion
    after the prompt, which each drops)."""
    text = "def greet(name):\n    message = \n"
    results = complete_candidates(pipeline, CompletionRequest(text, Position(1, 14)), n=3)
    assert len(results) >= 2
    prompt = results[0].stats.prompt_tokens
    assert results[0].stats.reused_tokens < prompt  # the first one prefilled
    for later in results[1:]:
        assert later.stats.prompt_tokens == prompt
        assert later.stats.reused_tokens == prompt


def test_warming_prefills_what_the_completion_then_runs(pipeline: CompletionPipeline) -> None:
    text = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a"
    # Not what the model suggests at `text` (" - b"): that would be continued from the cache.
    typed = CompletionRequest(text + " * 2 -", Position(5, 18))
    plain = pipeline.complete(typed)
    pipeline.complete(CompletionRequest(text, Position(5, 12)))
    pipeline.warm(typed, lambda: False)
    warmed = pipeline.complete(typed)
    assert warmed.insert_text == plain.insert_text
    stats = warmed.stats
    assert stats.prompt_tokens == plain.stats.prompt_tokens
    # The previous keystroke's cache served most of it; the warming prefilled the rest.
    assert 0 < stats.warmed_tokens <= 4
    assert stats.reused_tokens + stats.warmed_tokens == stats.prompt_tokens
    # A warming for another request is not mistaken for this one's.
    pipeline.warm(typed, lambda: False)
    other = pipeline.complete(CompletionRequest(text + " * 2 +", Position(5, 18)))
    assert other.stats.warmed_tokens == 0


def test_warming_keeps_a_cached_continuation(pipeline: CompletionPipeline) -> None:
    """When the cache holds the prompt and more (the previous suggestion's tokens), warming
    leaves it so, and the completion chooses those tokens again from the logits rows they
    were chosen from: not even the prompt's last token runs again."""
    text = "def add(a, b):\n    return a + b\n\n\ndef div(a, b):\n    return a"
    request = CompletionRequest(text, Position(5, 12))
    plain = pipeline.complete(request)
    held = pipeline.engine.cached_tokens
    assert len(held) > plain.stats.prompt_tokens  # the suggestion's tokens follow the prompt
    pipeline.warm(request, lambda: False)
    assert pipeline.engine.cached_tokens == held
    again = pipeline.complete(request)
    assert again.insert_text == plain.insert_text
    assert again.stats.reused_tokens == plain.stats.prompt_tokens
    assert again.stats.warmed_tokens == 0
    # Another request whose first token cannot be the cached one (" %" against " *") is
    # warmed: the cached suggestion after its prompt goes. Its prompt ends in the suggestion's
    # first token (" a", healed off the first request's prompt), whose row is kept: no pass.
    other = CompletionRequest(text + " %", Position(5, 14))
    pipeline.complete(request)
    pipeline.warm(other, lambda: False)
    other_ids = pipeline.engine.cached_tokens
    assert other_ids == held[: len(other_ids)] and len(other_ids) < len(held)
    result = pipeline.complete(other)
    assert result.stats.reused_tokens == result.stats.prompt_tokens == len(other_ids)
    assert result.insert_text != plain.insert_text


def test_cancellation_between_steps(pipeline: CompletionPipeline) -> None:
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 1  # the first check passes, the prefill's first chunk is cancelled

    with pytest.raises(CompletionCancelled):
        pipeline.complete(CompletionRequest(STACK, Position(10, 8)), cancelled)
    # The engine is still usable afterwards.
    assert pipeline.complete(CompletionRequest(STACK, Position(10, 8))).insert_text


def test_bad_positions_and_binary_text(pipeline: CompletionPipeline) -> None:
    with pytest.raises(InvalidPositionError):
        pipeline.complete(CompletionRequest("x = 1\n", Position(5, 0)))
    binary = pipeline.complete(CompletionRequest("ab\x00cd", Position(0, 2)))
    assert binary.insert_text == "" and binary.stats.stop_reason == "binary"


def test_wall_clock_budget_ends_at_the_first_line_end(model_dir: Path) -> None:
    from completion.pipeline import PipelineSettings

    slow = CompletionPipeline.load(model_dir, PipelineSettings(deadline_ms=0.0))
    full = CompletionPipeline.load(model_dir, PipelineSettings(deadline_ms=None))
    request = CompletionRequest(STACK, Position(10, 8), path="stack.py", max_new_tokens=48)
    cut, whole = slow.complete(request), full.complete(request)
    assert cut.stats.stop_reason == "deadline"
    assert cut.insert_text and "\n" not in cut.insert_text
    assert whole.insert_text.startswith(cut.insert_text)
