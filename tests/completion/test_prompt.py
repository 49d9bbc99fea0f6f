from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from completion.prompt import (
    CUT_ALIGNMENT_LINES,
    KEPT_CUT_MIN_FILL,
    RECUT_SLACK,
    PromptBudget,
    build_prompt,
)
from onnx_models.manifest import FimSpec, ModelManifest


@pytest.fixture(scope="module")
def manifest(model_dir: Path) -> ModelManifest:
    return ModelManifest.load(model_dir)


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Tokenizer:
    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def test_left_to_right_prompt_ends_at_cursor_with_file_header(tokenizer, manifest) -> None:
    prompt = build_prompt(
        tokenizer, manifest, prefix="x = 1\ny = ", suffix="2\n", line_prefix="y = ", path="a.py"
    )
    assert prompt.text == "<filename>a.py\nx = 1\ny = "


def test_long_prefix_is_cut_at_an_aligned_line_and_stays_put_while_typing(
    tokenizer, manifest
) -> None:
    body = "".join(f"value_{i} = compute({i}, 'some text')\n" for i in range(400))
    budget = PromptBudget(prefix_tokens=512)
    first = build_prompt(
        tokenizer, manifest, prefix=body + "re", suffix="", line_prefix="re", budget=budget
    )
    second = build_prompt(
        tokenizer, manifest, prefix=body + "res", suffix="", line_prefix="res", budget=budget
    )
    assert len(tokenizer.encode(first.text).ids) <= 512
    assert first.prefix_chars_dropped > 0
    dropped_lines = body[: first.prefix_chars_dropped].count("\n")
    assert dropped_lines % CUT_ALIGNMENT_LINES == 0
    # Same cut for both keystrokes: the cached prompt start is reused.
    assert second.text.startswith(first.text)


LINES = [f"value_{i} = compute({i}, 'some text')" for i in range(400)]
BUDGET = PromptBudget(prefix_tokens=2048)


def prompt_at(tokenizer, manifest, line: int, previous_cut: int | None = None):
    """The prompt with the cursor at the end of `line` of LINES."""
    prefix = "\n".join(LINES[: line + 1])
    return build_prompt(
        tokenizer,
        manifest,
        prefix=prefix,
        suffix="",
        line_prefix=LINES[line],
        budget=BUDGET,
        previous_cut=previous_cut,
    )


def tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def test_a_cursor_move_up_keeps_the_prompts_start(tokenizer, manifest) -> None:
    first = prompt_at(tokenizer, manifest, 300)
    assert first.cut_line > 0 and first.cut_line % CUT_ALIGNMENT_LINES == 0
    # 10 lines up, the prompt is the start of the one before: the cache holds all of it.
    moved = prompt_at(tokenizer, manifest, 290, previous_cut=first.cut_line)
    assert moved.cut_line == first.cut_line and first.text.startswith(moved.text)
    # Without the previous cut the prefix would start earlier, and nothing would be reused.
    fresh = prompt_at(tokenizer, manifest, 290)
    assert fresh.cut_line < first.cut_line and not first.text.startswith(fresh.text[:40])
    # Far enough up that the kept prefix would be under KEPT_CUT_MIN_FILL of the budget,
    # the prefix is cut afresh, further up.
    far = prompt_at(tokenizer, manifest, first.cut_line + 60, previous_cut=first.cut_line)
    assert far.cut_line < first.cut_line
    kept_tokens = tokens(tokenizer, "\n".join(LINES[first.cut_line : first.cut_line + 61]))
    assert kept_tokens < BUDGET.prefix_tokens * KEPT_CUT_MIN_FILL


def test_a_cut_that_must_move_forward_leaves_room_to_move_on(tokenizer, manifest) -> None:
    first = prompt_at(tokenizer, manifest, 300)
    # 40 lines down the prefix from the old cut no longer fits: a new cut, leaving slack.
    moved = prompt_at(tokenizer, manifest, 340, previous_cut=first.cut_line)
    assert moved.cut_line > first.cut_line and moved.cut_line % CUT_ALIGNMENT_LINES == 0
    assert tokens(tokenizer, moved.text) <= BUDGET.prefix_tokens * (1 - RECUT_SLACK)
    # The next lines keep that cut while the prefix fits.
    for line in range(341, 348):
        assert prompt_at(tokenizer, manifest, line, moved.cut_line).cut_line == moved.cut_line
    # A document seen for the first time gets the whole budget, as before.
    fresh = prompt_at(tokenizer, manifest, 340)
    assert fresh.cut_line < moved.cut_line
    assert tokens(tokenizer, fresh.text) > BUDGET.prefix_tokens * (1 - RECUT_SLACK)


def test_fim_manifest_puts_current_line_after_middle_token(tokenizer, manifest) -> None:
    fim = replace(manifest, fim=FimSpec("<P>", "<S>", "<M>", "psm"))
    prompt = build_prompt(
        tokenizer, fim, prefix="a = 1\nb = f(", suffix=")\nc = 3\n", line_prefix="b = f("
    )
    assert prompt.text == "<P>a = 1\n<S>)\nc = 3\n<M>b = f("
    spm = replace(manifest, fim=FimSpec("<P>", "<S>", "<M>", "spm"))
    prompt = build_prompt(tokenizer, spm, prefix="a\nb", suffix="c", line_prefix="b")
    assert prompt.text == "<S>c<P>a\n<M>b"
