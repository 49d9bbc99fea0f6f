"""The persistent KV cache: one preallocated buffer per layer, shared by past and present.

The token ids whose keys and values are in the buffers are kept beside them, so a new prompt
is compared with them and only the tokens after the longest common prefix are prefilled.
Rewinding is a length change; growing doubles the buffers (the only copy ever made).
`ConcatKvCache` serves the portable graph, whose present tensors are new, longer arrays.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from onnx_models.manifest import KvLayout


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    # Compare in blocks first: prompts share long prefixes, and this runs on every keystroke.
    step = 64
    while i + step <= n and a[i : i + step] == b[i : i + step]:
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return i


def cache_names(layout: KvLayout) -> list[tuple[str, str]]:
    """(past input, present output) names of every cache tensor, in graph order."""
    pairs = []
    for i in range(layout.num_layers):
        for past, present in (
            (layout.past_key_name, layout.present_key_name),
            (layout.past_value_name, layout.present_value_name),
        ):
            pairs.append((past.format(layer=i), present.format(layer=i)))
    return pairs


class KvCache:
    shared = True

    def __init__(
        self,
        layout: KvLayout,
        max_length: int,
        initial_capacity: int = 1024,
        device: str = "cpu",
    ) -> None:
        self.layout = layout
        self.max_length = max_length
        self.device = device
        self.tokens: list[int] = []
        self.capacity = 0
        self._buffers: dict[str, np.ndarray] = {}
        self.values: dict[str, ort.OrtValue] = {}
        if device == "cpu":
            self._allocate(min(initial_capacity, max_length))
        else:
            self._allocate_on_device(max_length)

    def _allocate_on_device(self, capacity: int) -> None:
        """On an accelerator the whole context is allocated once: the cache never leaves the
        device and never needs to grow (device memory is not what limits a small model)."""
        lay = self.layout
        shape = [1, lay.num_kv_heads, capacity, lay.head_dim]
        dtype = np.dtype(lay.dtype).type
        self.values = {
            past: ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, self.device, 0)
            for past, _ in self.pairs()
        }
        self.capacity = capacity

    def _allocate(self, capacity: int) -> None:
        lay = self.layout
        shape = (1, lay.num_kv_heads, capacity, lay.head_dim)
        keep = len(self.tokens)
        new: dict[str, np.ndarray] = {}
        for past, _ in self.pairs():
            buf = np.zeros(shape, dtype=lay.dtype)
            if past in self._buffers and keep:
                buf[:, :, :keep, :] = self._buffers[past][:, :, :keep, :]
            new[past] = buf
        self._buffers = new
        # OrtValues wrap the numpy memory without copying; past and present bind to the same one.
        self.values = {name: ort.OrtValue.ortvalue_from_numpy(buf) for name, buf in new.items()}
        self.capacity = capacity

    def pairs(self) -> list[tuple[str, str]]:
        return cache_names(self.layout)

    def reserve(self, length: int) -> bool:
        """Make room for `length` tokens; returns True when the buffers were reallocated."""
        if length > self.max_length:
            raise ValueError(f"{length} tokens exceed the model's context of {self.max_length}")
        if length <= self.capacity:
            return False
        capacity = self.capacity
        while capacity < length:
            capacity *= 2
        self._allocate(min(capacity, self.max_length))
        return True

    def rewind(self, length: int) -> None:
        del self.tokens[length:]


class ConcatKvCache:
    """Cache for graphs that return the whole present tensor: it replaces the past each call,
    and rewinding copies the kept rows (the fallback graph's cost)."""

    shared = False

    def __init__(self, layout: KvLayout, max_length: int) -> None:
        self.layout = layout
        self.max_length = max_length
        self.tokens: list[int] = []
        empty = np.zeros((1, layout.num_kv_heads, 0, layout.head_dim), dtype=np.float32)
        self.values: dict[str, ort.OrtValue] = {
            past: ort.OrtValue.ortvalue_from_numpy(empty) for past, _ in self.pairs()
        }
        self._keep: dict[str, np.ndarray] = {}

    def pairs(self) -> list[tuple[str, str]]:
        return cache_names(self.layout)

    def reserve(self, length: int) -> bool:
        if length > self.max_length:
            raise ValueError(f"{length} tokens exceed the model's context of {self.max_length}")
        return False

    def replace(self, presents: dict[str, ort.OrtValue]) -> None:
        self.values.update(presents)

    def rewind(self, length: int) -> None:
        if length >= len(self.tokens):
            return
        del self.tokens[length:]
        for past in list(self.values):
            kept = np.ascontiguousarray(self.values[past].numpy()[:, :, :length, :])
            self._keep[past] = kept  # the OrtValue borrows this memory
            self.values[past] = ort.OrtValue.ortvalue_from_numpy(kept)
