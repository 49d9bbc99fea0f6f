"""The adaptive debounce (lsp_server/debounce.py), fed times instead of a clock."""

from __future__ import annotations

import pytest

from lsp_server.debounce import MAX_WAIT_MS, AdaptiveDebounce


def typed(debounce: AdaptiveDebounce, gap_s: float, keystrokes: int, start: float = 0.0) -> float:
    now = start
    for _ in range(keystrokes):
        debounce.request_arrived(now)
        now += gap_s
    return now


def test_no_wait_before_anything_is_known() -> None:
    debounce = AdaptiveDebounce()
    assert debounce.request_arrived(0.0).wait_ms == 0
    debounce.generation_finished(500)
    assert debounce.request_arrived(5.0).wait_ms == 0  # a pause is not a rhythm


def test_a_slow_model_waits_for_a_pause_in_fast_typing() -> None:
    debounce = AdaptiveDebounce()
    debounce.generation_finished(300)
    typed(debounce, 0.1, 6)
    state = debounce.state()
    assert state.typing_gap_ms == pytest.approx(100)
    assert state.latency_ms == 300
    assert state.wait_ms == pytest.approx(150)


def test_a_model_faster_than_the_typing_starts_at_once() -> None:
    debounce = AdaptiveDebounce()
    debounce.generation_finished(60)
    typed(debounce, 0.2, 6)
    assert debounce.state().wait_ms == 0


def test_the_wait_follows_the_rhythm_and_has_a_ceiling() -> None:
    debounce = AdaptiveDebounce()
    debounce.generation_finished(5000)
    now = typed(debounce, 0.08, 20)
    assert debounce.state().wait_ms == pytest.approx(120)
    typed(debounce, 0.9, 20, start=now + 0.9)  # slow, deliberate typing
    assert debounce.state().wait_ms == MAX_WAIT_MS
