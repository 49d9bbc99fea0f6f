"""The engine's kept logits rows: bounded, dropped with the tokens before them."""

from __future__ import annotations

import numpy as np

from onnx_models.logit_rows import LogitRows


def row(value: float) -> np.ndarray:
    return np.full(5, value, dtype=np.float32)


def test_rows_are_copies_kept_by_the_tokens_before_them() -> None:
    rows = LogitRows(vocab_size=5, capacity=4)
    source = row(1.0)
    rows.put(10, source)
    source[:] = 9.0  # the engine's output buffer is overwritten by the next pass
    assert rows.get(10) is not None and (rows.get(10) == 1.0).all()
    assert rows.get(11) is None
    rows.put(10, row(2.0))  # a pass over the same tokens again replaces it in place
    assert (rows.get(10) == 2.0).all()


def test_a_rewind_drops_the_rows_after_more_tokens_than_it_keeps() -> None:
    rows = LogitRows(vocab_size=5, capacity=8)
    for after in range(10, 15):
        rows.put(after, row(after))
    assert rows.run(10, limit=10) == 4  # rows after 11, 12, 13, 14 tokens
    assert rows.run(10, limit=2) == 2
    rows.forget_above(12)
    assert [rows.get(a) is not None for a in range(10, 15)] == [True, True, True, False, False]
    assert rows.run(10, limit=10) == 2
    assert [float(r[0]) for r in rows.span(10, 3)] == [10.0, 11.0, 12.0]
    # Freed slots are used again without disturbing the rows kept.
    for after in range(13, 18):
        rows.put(after, row(after))
    assert [float(r[0]) for r in rows.span(10, 8)] == [float(a) for a in range(10, 18)]


def test_when_full_the_row_furthest_back_goes_first() -> None:
    rows = LogitRows(vocab_size=5, capacity=3)
    for after in (256, 512, 600):  # a prefill's chunk ends, then the prompt's row
        rows.put(after, row(after))
    rows.put(601, row(601))
    rows.put(602, row(602))
    assert rows.get(256) is None and rows.get(512) is None
    assert [float(r[0]) for r in rows.span(600, 3)] == [600.0, 601.0, 602.0]
