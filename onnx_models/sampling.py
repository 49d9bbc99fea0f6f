"""Choosing the next token from logits: greedy, or sampled with temperature, top-k and top-p."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# pick(logits, step) -> token id
TokenPicker = Callable[[np.ndarray, int], int]


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


def sampler(params: SamplingParams) -> TokenPicker:
    """A picker for `params`; each picker owns its random generator (seeded, reproducible)."""
    if params.greedy:
        return greedy
    rng = np.random.default_rng(params.seed)

    def pick(logits: np.ndarray, step: int) -> int:
        # Work on the few best candidates only: sorting 49k logits every step is the cost.
        k = params.top_k or 256
        k = min(k, logits.shape[-1])
        top = np.argpartition(logits, -k)[-k:]
        scores = logits[top].astype(np.float64) / params.temperature
        order = np.argsort(-scores)
        top, scores = top[order], scores[order]
        probs = np.exp(scores - scores[0])
        probs /= probs.sum()
        if params.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(probs), params.top_p)) + 1
            top, probs = top[:keep], probs[:keep] / probs[:keep].sum()
        return int(top[rng.choice(len(top), p=probs)])

    return pick
