from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from completion.prompt import CUT_ALIGNMENT_LINES, PromptBudget, build_prompt
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


def test_fim_manifest_puts_current_line_after_middle_token(tokenizer, manifest) -> None:
    fim = replace(manifest, fim=FimSpec("<P>", "<S>", "<M>", "psm"))
    prompt = build_prompt(
        tokenizer, fim, prefix="a = 1\nb = f(", suffix=")\nc = 3\n", line_prefix="b = f("
    )
    assert prompt.text == "<P>a = 1\n<S>)\nc = 3\n<M>b = f("
    spm = replace(manifest, fim=FimSpec("<P>", "<S>", "<M>", "spm"))
    prompt = build_prompt(tokenizer, spm, prefix="a\nb", suffix="c", line_prefix="b")
    assert prompt.text == "<S>c<P>a\n<M>b"
