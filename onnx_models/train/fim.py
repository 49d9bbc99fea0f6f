"""The fill-in-the-middle transform (Bavarian et al. 2022) and the packing of training sequences.

Training text is spelled exactly as completion/prompt.py spells an inference prompt, so the
model learns the prompts it will be sent:
    PSM:  [context]<pre><filename>path\\n{prefix up to its line start}<suf>{suffix}<mid>{middle}
    SPM:  [context]<suf>{suffix}<pre><filename>path\\n{prefix up to its line start}<mid>{middle}
    L2R:  [context]<filename>path\\n{text}
each followed by `<|endoftext|>`; the middle starts with the text of the cursor's line before
the cursor (the prompt puts that after the middle token so the cache survives typing), and
`[context]` is an optional snippet of another file framed as completion.context frames it.
No PyTorch here: this module turns strings into token ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tokenizers import Tokenizer

from onnx_models.manifest import FimSpec

ENDOFTEXT = "<|endoftext|>"
FILENAME = "<filename>"
# SmolLM2's unused special tokens (ids 7-9) that the LoRA model takes over as its FIM tokens;
# the built tokenizer.json renames them (onnx_models/adapter.py).
REUSED_FIM = FimSpec(prefix="<gh_stars>", suffix="<issue_start>", middle="<issue_comment>")


@dataclass(frozen=True)
class FimOptions:
    fim_rate: float = 0.7  # share of chunks turned into FIM examples, the rest stay L2R
    spm_rate: float = 0.5  # share of FIM examples in SPM order, the rest PSM
    line_span_rate: float = 0.5  # share of FIM middles that are whole lines, the rest char spans
    context_rate: float = 0.25  # share of examples preceded by a snippet of another file
    context_lines: int = 12
    chunk_chars: int = 1600  # files are cut, at line ends, into chunks of at most this


@dataclass(frozen=True)
class Example:
    """One training example as text: `head` is scored as context, `middle` is what a FIM
    prompt asks for (for L2R examples, head is empty and middle is the whole text)."""

    head: str
    middle: str
    is_fim: bool


def chunks(text: str, max_chars: int) -> list[str]:
    """`text` cut at line ends into pieces of at most `max_chars` (a longer line stays whole)."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if current and len(current) + len(line) > max_chars:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return pieces


def split_span(text: str, rng: random.Random, line_aligned: bool) -> tuple[str, str, str]:
    """(prefix, middle, suffix): a random span of whole lines, or of characters."""
    if line_aligned:
        bounds = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        if bounds[-1] != len(text):
            bounds.append(len(text))
    else:
        bounds = range(len(text) + 1)
    start, end = sorted(rng.choice(bounds) for _ in range(2))
    return text[:start], text[start:end], text[end:]


def fim_example(
    path: str, prefix: str, middle: str, suffix: str, fim: FimSpec, order: str
) -> Example:
    """The prompt prompt.py builds for a cursor at the end of `prefix`, and its answer."""
    line_start = prefix.rfind("\n") + 1
    stable, line_prefix = prefix[:line_start], prefix[line_start:]
    header = f"{FILENAME}{path}\n" if path else ""
    if order == "spm":
        head = f"{fim.suffix}{suffix}{fim.prefix}{header}{stable}{fim.middle}"
    else:
        head = f"{fim.prefix}{header}{stable}{fim.suffix}{suffix}{fim.middle}"
    return Example(head, line_prefix + middle, is_fim=True)


def examples(
    path: str,
    text: str,
    rng: random.Random,
    options: FimOptions,
    fim: FimSpec = REUSED_FIM,
    context: str = "",
) -> Iterator[Example]:
    """The examples of one file: its chunks, each FIM-transformed with probability fim_rate."""
    for chunk in chunks(text, options.chunk_chars):
        if rng.random() < options.fim_rate:
            parts = split_span(chunk, rng, rng.random() < options.line_span_rate)
            order = "spm" if rng.random() < options.spm_rate else "psm"
            example = fim_example(path, *parts, fim=fim, order=order)
        else:
            example = Example("", f"{FILENAME}{path}\n{chunk}", is_fim=False)
        if context and rng.random() < options.context_rate:
            example = Example(context + example.head, example.middle, example.is_fim)
        yield example


def context_snippet(path: str, text: str, rng: random.Random, lines: int) -> str:
    """A few lines of another file, framed as completion.context renders repository context."""
    all_lines = text.split("\n")
    start = rng.randrange(max(len(all_lines) - lines, 1))
    body = "\n".join(all_lines[start : start + lines]).rstrip("\n")
    return f"{FILENAME}{path}\n{body}\n" if body.strip() else ""


@dataclass(frozen=True)
class TokenizedExample:
    ids: list[int]
    scored: list[bool]  # True on the middle's tokens and the closing `<|endoftext|>`
    is_fim: bool


def tokenize(tokenizer: Tokenizer, example: Example) -> TokenizedExample:
    # The FIM tokens are special, so the text splits at them anyway: encoding head and
    # middle apart gives the same ids as encoding the whole prompt at once.
    head = tokenizer.encode(example.head, add_special_tokens=False).ids if example.head else []
    middle = tokenizer.encode(example.middle, add_special_tokens=False).ids
    eot = tokenizer.token_to_id(ENDOFTEXT)
    ids = head + middle + [eot]
    scored = [False] * len(head) + [True] * (len(middle) + 1)
    return TokenizedExample(ids, scored, example.is_fim)


@dataclass(frozen=True)
class Sequence:
    ids: list[int]
    scored: list[bool]


def pack(stream: Iterable[TokenizedExample], length: int) -> Iterator[Sequence]:
    """Fixed-length sequences cut from the examples laid end to end (an example that does not
    fit continues in the next sequence, as in GPT-style packing)."""
    ids: list[int] = []
    scored: list[bool] = []
    for example in stream:
        ids += example.ids
        scored += example.scored
        while len(ids) >= length:
            yield Sequence(ids[:length], scored[:length])
            ids, scored = ids[length:], scored[length:]


def training_examples(
    files: Iterable[tuple[str, str, str]],
    rng: random.Random,
    options: FimOptions,
    fim: FimSpec = REUSED_FIM,
) -> Iterator[Example]:
    """Examples of `files` ((source, path, text) triples), each possibly preceded by a snippet
    of the last file seen from the same source (the nearest thing to a repository neighbour)."""
    last: dict[str, tuple[str, str]] = {}
    for source, path, text in files:
        context = ""
        if source in last:
            context = context_snippet(*last[source], rng, options.context_lines)
        yield from examples(path, text, rng, options, fim, context)
        last[source] = (path, text)
