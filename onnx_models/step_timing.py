"""Whether a model's step graph pays on this CPU, decided when the model is built.

onnxruntime's one-row MatMulNBits kernels with int8 activations decoded 2.2x faster than the
float32 ones on an AVX2 CPU and 1.1x faster on an AVX-512 one (benchmarks/README.md, "Two
graphs"), while the step graph's session holds a second copy of the weights (~260 MB for the
default model). So one-row decode steps of both graphs are timed here, interleaved, on the
machine that builds the model, and the step graph is kept only where it is clearly faster.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from onnx_models.engine import Engine

# Below this the second copy of the weights buys too little.
MIN_SPEEDUP = 1.3
CACHED = 256  # tokens cached before the timed steps, as after a short prompt
STEPS = 8  # timed steps a round, per graph
ROUNDS = 3


@dataclass(frozen=True)
class StepTiming:
    prefill_graph_ms: float  # median one-row step
    step_graph_ms: float

    @property
    def speedup(self) -> float:
        return self.prefill_graph_ms / self.step_graph_ms

    @property
    def pays(self) -> bool:
        return self.speedup >= MIN_SPEEDUP

    def summary(self) -> str:
        return (
            f"step {self.step_graph_ms:.1f} ms against {self.prefill_graph_ms:.1f} ms "
            f"({self.speedup:.2f}x; kept from {MIN_SPEEDUP}x)"
        )


def time_step_graph(folder: Path, threads: int | None = None) -> StepTiming | None:
    """Median one-row step of `folder`'s prefill graph and of its step graph; None where the
    engine does not run the step graph (on a GPU)."""
    engine = Engine.load(folder, threads=threads)
    if not engine.decode_on_step_graph:
        return None
    # Any tokens will do: the cost of a pass does not depend on which.
    vocab = engine.manifest.vocab_size
    prompt = [(7 + 31 * i) % vocab for i in range(CACHED)]
    engine.prefill(prompt)
    samples: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(ROUNDS):
        for on_step_graph in (False, True) if round_ % 2 == 0 else (True, False):
            engine.decode_on_step_graph = on_step_graph
            engine.rewind(CACHED)
            engine.step(prompt[0])  # the first pass of a session after the other's: not timed
            for i in range(STEPS):
                t0 = time.perf_counter()
                engine.step(prompt[i + 1])
                samples[on_step_graph].append((time.perf_counter() - t0) * 1000)
    return StepTiming(statistics.median(samples[False]), statistics.median(samples[True]))
