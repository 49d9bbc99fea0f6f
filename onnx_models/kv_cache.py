"""The persistent KV cache: one preallocated buffer per layer, shared by past and present.

The token ids whose keys and values are in the buffers are kept beside them, so a new prompt
is compared with them and only the tokens after the longest common prefix are prefilled.
Rewinding is a length change; growing doubles the buffers (the only copy ever made).
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


class KvCache:
    def __init__(self, layout: KvLayout, max_length: int, initial_capacity: int = 1024) -> None:
        self.layout = layout
        self.max_length = max_length
        self.tokens: list[int] = []
        self.capacity = 0
        self._buffers: dict[str, np.ndarray] = {}
        self.values: dict[str, ort.OrtValue] = {}
        self._allocate(min(initial_capacity, max_length))

    def _names(self) -> list[tuple[str, str]]:
        lay = self.layout
        pairs = []
        for i in range(lay.num_layers):
            pairs.append((lay.past_key_name.format(layer=i), lay.present_key_name.format(layer=i)))
            pairs.append(
                (lay.past_value_name.format(layer=i), lay.present_value_name.format(layer=i))
            )
        return pairs

    def _allocate(self, capacity: int) -> None:
        lay = self.layout
        shape = (1, lay.num_kv_heads, capacity, lay.head_dim)
        keep = len(self.tokens)
        new: dict[str, np.ndarray] = {}
        for past, _ in self._names():
            buf = np.zeros(shape, dtype=np.float32)
            if past in self._buffers and keep:
                buf[:, :, :keep, :] = self._buffers[past][:, :, :keep, :]
            new[past] = buf
        self._buffers = new
        # OrtValues wrap the numpy memory without copying; past and present bind to the same one.
        self.values = {name: ort.OrtValue.ortvalue_from_numpy(buf) for name, buf in new.items()}
        self.capacity = capacity

    def pairs(self) -> list[tuple[str, str]]:
        """(past input name, present output name) for every cache tensor."""
        return self._names()

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

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._buffers.values())
