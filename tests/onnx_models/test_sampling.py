"""Sampling draws from softmax(logits / T) within top-k and top-p, reproducibly by seed."""

from __future__ import annotations

from collections import Counter

import numpy as np

from onnx_models.sampling import SamplingParams, greedy, noisy_picker, sampler

LOGITS = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))


def draws(params: SamplingParams, count: int = 4000) -> Counter[int]:
    pick = sampler(params)
    return Counter(pick(LOGITS, step) for step in range(count))


def test_temperature_zero_is_greedy() -> None:
    assert sampler(SamplingParams()) is greedy


def test_draws_follow_the_softmax() -> None:
    counts = draws(SamplingParams(temperature=1.0, seed=3))
    for token, p in enumerate([0.5, 0.3, 0.15, 0.05]):
        assert abs(counts[token] / 4000 - p) < 0.03, counts


def test_top_k_and_top_p_cut_the_tail() -> None:
    assert set(draws(SamplingParams(temperature=1.0, top_k=2, seed=1))) == {0, 1}
    # 0.5 + 0.3 reach top_p = 0.8: the third token never appears.
    assert set(draws(SamplingParams(temperature=1.0, top_p=0.8, seed=1))) == {0, 1}


def test_a_seed_reproduces_its_draws() -> None:
    params = SamplingParams(temperature=1.0, seed=5)
    assert draws(params, 200) == draws(params, 200)
    pick, other_pick = sampler(params), sampler(SamplingParams(temperature=1.0, seed=6))
    assert [pick(LOGITS, i) for i in range(50)] != [other_pick(LOGITS, i) for i in range(50)]


def test_a_constraint_in_the_pick_still_applies() -> None:
    def only_odd(logits: np.ndarray, step: int) -> int:
        masked = logits.copy()
        masked[::2] = -np.inf
        return int(np.argmax(masked))

    pick = noisy_picker(SamplingParams(temperature=1.0, top_k=1, seed=0), only_odd)
    # Top-k keeps token 0 only; the constraint forbids it, and token 1 is still choosable.
    assert {pick(LOGITS, i) for i in range(20)} == {1}
