"""Block quantisation of linear weights for onnxruntime's MatMulNBits: w = scale * q + minimum,
32 weights per block, q of 4 or 8 bits.

GGUF's Q4_1 tensors already have this form, so they are carried over bit for bit; any other
weight is quantised to it from float32 (min/max per block). 8 bits hold a Q4_1 block exactly
too (its 16 levels are every 17th of 256), and a dequantised Q8_0 block (absmax / 127 steps)
is kept on its own grid. The graph runs it with MatMulNBits (zero point 0) plus one small
MatMul for the block minimums, unless every minimum is a whole number of steps below zero
(symmetric blocks): then those numbers are MatMulNBits' own zero points and the extra MatMul
goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 32
Q4_1_BLOCK_BYTES = 2 + 2 + BLOCK // 2  # f16 scale, f16 minimum, 32 nibbles


@dataclass(frozen=True)
class BlockQuant:
    """A linear weight of shape [out, in] as `bits`-bit blocks along `in`."""

    q: np.ndarray  # uint8 [out, in / 32, 32], values 0 .. 2**bits - 1
    scale: np.ndarray  # float32 [out, in / 32]
    minimum: np.ndarray  # float32 [out, in / 32]
    bits: int = 4

    @property
    def shape(self) -> tuple[int, int]:
        return self.q.shape[0], self.q.shape[1] * BLOCK

    def dequantize(self) -> np.ndarray:
        w = self.q * self.scale[..., None] + self.minimum[..., None]
        return w.reshape(self.shape).astype(np.float32)

    def packed(self) -> np.ndarray:
        """MatMulNBits' layout: 4 bits as two weights a byte, the even-indexed one in the low
        nibble; 8 bits as one a byte."""
        if self.bits == 8:
            return self.q
        return (self.q[..., 0::2] | (self.q[..., 1::2] << 4)).astype(np.uint8)

    def rows(self, order: np.ndarray) -> BlockQuant:
        return BlockQuant(self.q[order], self.scale[order], self.minimum[order], self.bits)

    @staticmethod
    def concat(parts: list[BlockQuant]) -> BlockQuant:
        return BlockQuant(
            np.concatenate([p.q for p in parts]),
            np.concatenate([p.scale for p in parts]),
            np.concatenate([p.minimum for p in parts]),
            parts[0].bits,
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


def quantize(w: np.ndarray, bits: int = 4) -> BlockQuant:
    """Min/max quantisation of a float weight [out, in] (in divisible by 32) to `bits` bits."""
    out_features, in_features = w.shape
    if in_features % BLOCK:
        raise ValueError(f"in_features {in_features} is not a multiple of {BLOCK}")
    levels = (1 << bits) - 1
    blocks = w.reshape(out_features, in_features // BLOCK, BLOCK).astype(np.float32)
    lo = blocks.min(axis=-1)
    hi = blocks.max(axis=-1)
    scale = (hi - lo) / levels
    safe = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.rint((blocks - lo[..., None]) / safe[..., None]), 0, levels).astype(np.uint8)
    out = BlockQuant(q, scale.astype(np.float32), lo.astype(np.float32), bits)
    return _keep_q8_0_grid(blocks, out) if bits == 8 else out


def quantize_symmetric(w: np.ndarray) -> BlockQuant:
    """4-bit round-to-nearest about zero, as onnxruntime's quantiser makes onnxruntime-genai's
    int4 graphs: a block's value of largest magnitude (the negative one on a tie, whose
    positive twin then clips to 7 steps) gets code 0, so step = value / -8 and
    w = step * (code - 8); halves round up. Lossy where `quantize` keeps each block's minimum
    and maximum (on the default model, +9.6 % next-token NLL against fp32 where the Q4_1
    blocks cost +0.08 %; benchmarks/README.md): it exists to run the same weights as those
    graphs."""
    out_features, in_features = w.shape
    if in_features % BLOCK:
        raise ValueError(f"in_features {in_features} is not a multiple of {BLOCK}")
    blocks = w.reshape(out_features, in_features // BLOCK, BLOCK).astype(np.float32)
    hi, lo = blocks.max(axis=-1), blocks.min(axis=-1)
    scale = np.where(hi > -lo, hi, lo) / np.float32(-8)
    safe = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.floor(blocks / safe[..., None] + np.float32(0.5)) + 8, 0, 15).astype(np.uint8)
    return BlockQuant(q, scale.astype(np.float32), (-8 * scale).astype(np.float32), 4)


def integer_zero_points(w: BlockQuant) -> np.ndarray | None:
    """Each block's z with minimum == -z * scale exactly and z a code (MatMulNBits' zero
    point), as uint8 [out, in / 32]; None when any block has no such z."""
    safe = np.where(w.scale == 0, 1.0, w.scale)
    z = np.rint(-w.minimum / safe)
    exact = (z >= 0) & (z < (1 << w.bits)) & ((-z * w.scale).astype(np.float32) == w.minimum)
    return z.astype(np.uint8) if exact.all() else None


def pack_zero_points(z: np.ndarray, bits: int) -> np.ndarray:
    """MatMulNBits' zero-point layout: per row, 4-bit points two a byte (the even-indexed block
    in the low nibble, an odd count padded), 8-bit ones a byte each."""
    if bits == 8:
        return z.reshape(-1)
    if z.shape[1] % 2:
        z = np.concatenate([z, np.zeros((z.shape[0], 1), dtype=np.uint8)], axis=1)
    return (z[:, 0::2] | (z[:, 1::2] << 4)).astype(np.uint8).reshape(-1)


def _keep_q8_0_grid(blocks: np.ndarray, out: BlockQuant) -> BlockQuant:
    """Blocks whose values are whole multiples of absmax / 127 (a dequantised GGUF Q8_0 block:
    those products and quotients are exact in float32) take that step, so they stay exact; a
    min/max grid of 255 steps would move them by up to half a step."""
    step = np.abs(blocks).max(axis=-1) / 127
    safe = np.where(step == 0, 1.0, step)
    k = blocks / safe[..., None]
    on_grid = np.all(k == np.rint(k), axis=-1) & (step > 0)
    if not on_grid.any():
        return out
    q = np.where(on_grid[..., None], np.rint(k) + 128, out.q).astype(np.uint8)
    scale = np.where(on_grid, step, out.scale).astype(np.float32)
    minimum = np.where(on_grid, -128 * step, out.minimum).astype(np.float32)
    return BlockQuant(q, scale, minimum, 8)


def requantize(w: BlockQuant, bits: int) -> BlockQuant:
    """The same blocks with `bits`-bit codes; 4 -> 8 bits is exact (every 17th level)."""
    if w.bits == bits:
        return w
    if (w.bits, bits) == (4, 8):
        return BlockQuant(w.q * np.uint8(17), w.scale / 17, w.minimum, 8)
    return quantize(w.dequantize(), bits)
