"""Choosing the next token from logits: greedy, or sampled with temperature, top-k and top-p."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# pick(logits, step) -> token id
TokenPicker = Callable[[np.ndarray, int], int]
# Sampling looks at this many best tokens when top_k sets no smaller limit (the default graph
# computes these exactly: install.DEFAULT_GRAPH).
SAMPLED_TOP_K = 256
# Tokens outside the sampled set end up this far below it, but stay finite, so a constraint
# that sets forbidden tokens to -inf (token healing) never leaves nothing to choose.
_OUTSIDE_SAMPLE = 1e4


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0 means greedy
    top_k: int = 0  # 0: no limit
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def greedy(logits: np.ndarray, step: int) -> int:
    return int(np.argmax(logits))


def noisy_picker(params: SamplingParams, pick: TokenPicker = greedy) -> TokenPicker:
    """`pick` (an argmax, perhaps constrained) turned into a draw from softmax(logits / T)
    within top-k and top-p, by the Gumbel-max trick: the argmax of the scores plus Gumbel noise
    is such a draw, so a constraint that `pick` applies (token healing's) composes with it.
    Each picker owns its seeded generator, so a seed reproduces the same tokens."""
    rng = np.random.default_rng(params.seed)

    def sampled(logits: np.ndarray, step: int) -> int:
        # Work on the best few only: sorting 49k logits every step would be the cost.
        k = min(params.top_k or SAMPLED_TOP_K, logits.shape[-1])
        top = np.argpartition(logits, -k)[-k:]
        scores = logits[top].astype(np.float64) / params.temperature
        if params.top_p < 1.0:
            order = np.argsort(-scores)
            probs = np.exp(scores[order] - scores[order[0]])
            cumulative = np.cumsum(probs / probs.sum())
            keep = int(np.searchsorted(cumulative, params.top_p)) + 1
            top, scores = top[order[:keep]], scores[order[:keep]]
        noisy = logits.astype(np.float32) - _OUTSIDE_SAMPLE
        noisy[top] = scores + rng.gumbel(size=len(top))
        return pick(noisy, step)

    return sampled


def sampler(params: SamplingParams) -> TokenPicker:
    """The picker for `params`: greedy at temperature 0, else a seeded draw."""
    return greedy if params.greedy else noisy_picker(params)
