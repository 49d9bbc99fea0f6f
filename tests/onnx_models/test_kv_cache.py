from __future__ import annotations

import numpy as np
import pytest

from onnx_models.kv_cache import KvCache, common_prefix_length
from onnx_models.manifest import KvLayout


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        ([], [1], 0),
        ([1, 2, 3], [1, 2, 4], 2),
        (list(range(200)), list(range(200)), 200),
        (list(range(130)), [*range(100), 7], 100),
    ],
)
def test_common_prefix_length(a: list[int], b: list[int], n: int) -> None:
    assert common_prefix_length(a, b) == n


def test_growing_keeps_cached_rows_and_rebinds() -> None:
    cache = KvCache(
        KvLayout(num_layers=2, num_kv_heads=1, head_dim=2), max_length=64, initial_capacity=4
    )
    buf = cache.values["past_key.0"].numpy()
    buf[0, 0, :3, :] = 7.0
    cache.tokens.extend([1, 2, 3])
    assert cache.reserve(4) is False
    assert cache.reserve(9) is True
    assert cache.capacity == 16
    grown = cache.values["past_key.0"].numpy()
    np.testing.assert_array_equal(grown[0, 0, :3, :], 7.0)
    with pytest.raises(ValueError, match="exceed the model's context"):
        cache.reserve(65)
