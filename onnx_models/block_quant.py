"""Block quantisation of linear weights, 32 weights per block, for onnxruntime's MatMulNBits.

4-bit in the Q4_1 form: w = scale * q + minimum. GGUF's Q4_1 tensors already have this form,
so they are carried over bit for bit; any other weight is quantised to it from float32. The
graph runs it with MatMulNBits (zero point 0) plus one small MatMul for the block minimums.

8-bit symmetric: w = scale * (q - 128), scale = absmax / 127; MatMulNBits' default zero point
for 8 bits is 128, so it needs no extra term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 32
Q8_ZERO_POINT = 128
Q4_1_BLOCK_BYTES = 2 + 2 + BLOCK // 2  # f16 scale, f16 minimum, 32 nibbles


@dataclass(frozen=True)
class BlockQuant:
    """A linear weight of shape [out, in] as 4-bit blocks along `in`."""

    q: np.ndarray  # uint8 [out, in / 32, 32], values 0..15
    scale: np.ndarray  # float32 [out, in / 32]
    minimum: np.ndarray  # float32 [out, in / 32]

    @property
    def shape(self) -> tuple[int, int]:
        return self.q.shape[0], self.q.shape[1] * BLOCK

    def dequantize(self) -> np.ndarray:
        w = self.q * self.scale[..., None] + self.minimum[..., None]
        return w.reshape(self.shape).astype(np.float32)

    def packed(self) -> np.ndarray:
        """MatMulNBits' layout: two weights a byte, the even-indexed one in the low nibble."""
        return (self.q[..., 0::2] | (self.q[..., 1::2] << 4)).astype(np.uint8)

    def rows(self, order: np.ndarray) -> BlockQuant:
        return BlockQuant(self.q[order], self.scale[order], self.minimum[order])

    @staticmethod
    def concat(parts: list[BlockQuant]) -> BlockQuant:
        return BlockQuant(
            np.concatenate([p.q for p in parts]),
            np.concatenate([p.scale for p in parts]),
            np.concatenate([p.minimum for p in parts]),
        )


def from_q4_1_bytes(raw: np.ndarray, out_features: int) -> BlockQuant:
    """Read GGUF Q4_1 rows: per block f16 d, f16 m, then 16 bytes whose low nibbles hold
    weights 0..15 and high nibbles weights 16..31."""
    blocks = raw.reshape(out_features, -1, Q4_1_BLOCK_BYTES)
    scale = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    minimum = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = blocks[..., 4:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.uint8)
    return BlockQuant(q, scale, minimum)


def quantize(w: np.ndarray) -> BlockQuant:
    """Min/max 4-bit quantisation of a float weight [out, in] (in divisible by 32)."""
    out_features, in_features = w.shape
    if in_features % BLOCK:
        raise ValueError(f"in_features {in_features} is not a multiple of {BLOCK}")
    blocks = w.reshape(out_features, in_features // BLOCK, BLOCK).astype(np.float32)
    lo = blocks.min(axis=-1)
    hi = blocks.max(axis=-1)
    scale = (hi - lo) / 15.0
    safe = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.rint((blocks - lo[..., None]) / safe[..., None]), 0, 15).astype(np.uint8)
    return BlockQuant(q, scale.astype(np.float32), lo.astype(np.float32))


@dataclass(frozen=True)
class BlockQuant8:
    """A linear weight of shape [out, in] as symmetric 8-bit blocks along `in`."""

    q: np.ndarray  # uint8 [out, in / 32, 32], the weight is scale * (q - 128)
    scale: np.ndarray  # float32 [out, in / 32]

    @property
    def shape(self) -> tuple[int, int]:
        return self.q.shape[0], self.q.shape[1] * BLOCK

    def dequantize(self) -> np.ndarray:
        w = (self.q.astype(np.float32) - Q8_ZERO_POINT) * self.scale[..., None]
        return w.reshape(self.shape)

    @staticmethod
    def concat(parts: list[BlockQuant8]) -> BlockQuant8:
        return BlockQuant8(
            np.concatenate([p.q for p in parts]), np.concatenate([p.scale for p in parts])
        )


def quantize_q8(w: np.ndarray) -> BlockQuant8:
    """Absmax 8-bit quantisation of a float weight [out, in] (in divisible by 32)."""
    out_features, in_features = w.shape
    if in_features % BLOCK:
        raise ValueError(f"in_features {in_features} is not a multiple of {BLOCK}")
    blocks = w.reshape(out_features, in_features // BLOCK, BLOCK).astype(np.float32)
    scale = np.abs(blocks).max(axis=-1) / 127.0
    safe = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.rint(blocks / safe[..., None]), -127, 127) + Q8_ZERO_POINT
    return BlockQuant8(q.astype(np.uint8), scale.astype(np.float32))
