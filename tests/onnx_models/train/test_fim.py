"""The FIM transform writes what completion/prompt.py will send, and packing loses nothing."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from completion.prompt import build_prompt
from onnx_models.manifest import ModelManifest
from onnx_models.train.fim import (
    REUSED_FIM,
    Example,
    FimOptions,
    chunks,
    examples,
    fim_example,
    pack,
    split_span,
    tokenize,
)

SOURCE = '''import os


def read_lines(path):
    """Return the lines of a text file."""
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\\n") for line in fh]


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)
'''


@pytest.fixture(scope="module")
def fim_manifest(model_dir: Path) -> ModelManifest:
    return replace(ModelManifest.load(model_dir), fim=REUSED_FIM)


@pytest.mark.parametrize("order", ["psm", "spm"])
@pytest.mark.parametrize("cursor", [0, 41, 97, len(SOURCE)])
def test_fim_example_is_the_prompt_the_pipeline_builds(
    smollm_tokenizer: Tokenizer, fim_manifest: ModelManifest, order: str, cursor: int
) -> None:
    manifest = replace(fim_manifest, fim=replace(REUSED_FIM, order=order))
    end = min(cursor + 30, len(SOURCE))
    prefix, middle, suffix = SOURCE[:cursor], SOURCE[cursor:end], SOURCE[end:]
    line_prefix = prefix[prefix.rfind("\n") + 1 :]
    prompt = build_prompt(
        smollm_tokenizer,
        manifest,
        prefix=prefix,
        suffix=suffix,
        line_prefix=line_prefix,
        path="pkg/lines.py",
    )
    example = fim_example("pkg/lines.py", prefix, middle, suffix, REUSED_FIM, order)
    # The prompt ends at the cursor; the example goes on with the rest of the middle.
    assert example.head + example.middle == prompt.text + middle
    assert example.middle.startswith(line_prefix)


@pytest.mark.parametrize("line_aligned", [True, False])
def test_split_span_partitions_the_text(line_aligned: bool) -> None:
    rng = random.Random(0)
    for _ in range(200):
        prefix, middle, suffix = split_span(SOURCE, rng, line_aligned)
        assert prefix + middle + suffix == SOURCE
        if line_aligned:
            assert prefix == "" or prefix.endswith("\n")
            assert prefix + middle == "" or (prefix + middle).endswith("\n")


def test_chunks_cut_at_line_ends_within_the_limit() -> None:
    pieces = chunks(SOURCE, 60)
    assert "".join(pieces) == SOURCE
    assert len(pieces) > 3
    assert all(len(p) <= 60 and p.endswith("\n") for p in pieces)


@pytest.mark.parametrize("rate", [0.0, 0.5, 1.0])
def test_fim_rate_sets_the_share_of_fim_examples(rate: float) -> None:
    options = FimOptions(fim_rate=rate, chunk_chars=40)
    rng = random.Random(1)
    made = [e for _ in range(40) for e in examples("a.py", SOURCE, rng, options)]
    share = sum(e.is_fim for e in made) / len(made)
    assert abs(share - rate) < 0.1
    for e in made:
        if not e.is_fim:
            assert e.head == "" and e.middle.startswith("<filename>a.py\n")


def test_both_orders_and_both_span_kinds_occur() -> None:
    options = FimOptions(fim_rate=1.0, chunk_chars=10_000)
    rng = random.Random(2)
    heads = [e.head for _ in range(100) for e in examples("a.py", SOURCE, rng, options)]
    assert any(h.startswith(REUSED_FIM.prefix) for h in heads)
    assert any(h.startswith(REUSED_FIM.suffix) for h in heads)
    assert all(h.endswith(REUSED_FIM.middle) for h in heads)


def test_tokenize_matches_encoding_the_whole_text(smollm_tokenizer: Tokenizer) -> None:
    example = fim_example("a.py", SOURCE[:50], SOURCE[50:90], SOURCE[90:], REUSED_FIM, "psm")
    tokenized = tokenize(smollm_tokenizer, example)
    whole = smollm_tokenizer.encode(example.head + example.middle, add_special_tokens=False).ids
    assert tokenized.ids == whole + [smollm_tokenizer.token_to_id("<|endoftext|>")]
    first_scored = tokenized.scored.index(True)
    assert tokenized.ids[first_scored - 1] == smollm_tokenizer.token_to_id(REUSED_FIM.middle)
    assert all(tokenized.scored[first_scored:])
    # Each reused FIM token is one id.
    for token in (REUSED_FIM.prefix, REUSED_FIM.suffix, REUSED_FIM.middle):
        assert len(smollm_tokenizer.encode(token, add_special_tokens=False).ids) == 1


def test_pack_cuts_fixed_lengths_from_the_stream(smollm_tokenizer: Tokenizer) -> None:
    rng = random.Random(3)
    stream = [
        tokenize(smollm_tokenizer, e)
        for e in examples("a.py", SOURCE * 5, rng, FimOptions(chunk_chars=200))
    ]
    stream.append(tokenize(smollm_tokenizer, Example("", "tail", is_fim=False)))
    packed = list(pack(stream, 64))
    flat = [i for e in stream for i in e.ids]
    assert len(packed) == len(flat) // 64
    assert all(len(s.ids) == len(s.scored) == 64 for s in packed)
    assert [i for s in packed for i in s.ids] == flat[: len(packed) * 64]
