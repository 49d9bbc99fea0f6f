"""Decode speed of our engine against onnxruntime-genai's generator on the same int4 weights,
in one process, interleaved round by round (both use the same onnxruntime library there).

Our graph is built with `--weights q4sym --lm-head q4sym --accuracy-level 4`, which holds the
weights genai's model builder makes from the same float checkpoint (benchmarks/README.md).
Run it with the peers' Python, which has onnxruntime-genai, and this repository on the path:

    PYTHONPATH=. /work/venv-peers/bin/python benchmarks/genai_same_weights.py \\
        --ours ~/.cache/nexttoken/models/smollm2-gqa-q4sym-head_q4sym-acc4 \\
        --genai /work/peers/genai-int4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime_genai as og

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import common_prefix, prompt_text  # noqa: E402

from onnx_models.engine import Engine  # noqa: E402

PROMPT_TOKENS = 512
CONTEXT = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", type=Path, required=True, help="our model folder")
    parser.add_argument("--genai", type=Path, required=True, help="onnxruntime-genai folder")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    ours = Engine.load(args.ours)
    genai = og.Model(str(args.genai))
    ids = ours.tokenizer.encode(prompt_text(), add_special_tokens=False).ids[:PROMPT_TOKENS]
    outputs: dict[str, list[int]] = {}

    def run_ours() -> float:
        ours.rewind(0)
        ours.prefill(ids)
        token, out = int(np.argmax(ours.logits)), []
        t0 = time.perf_counter()
        for _ in range(args.tokens):
            out.append(token)
            ours.step(token)
            token = int(np.argmax(ours.logits))
        outputs["ours"] = out
        return (time.perf_counter() - t0) * 1000 / args.tokens

    def run_genai() -> float:
        params = og.GeneratorParams(genai)
        params.set_search_options(max_length=CONTEXT)
        gen = og.Generator(genai, params)
        gen.append_tokens(ids)
        gen.generate_next_token()  # the first token comes from the prefill, as for ours
        t0 = time.perf_counter()
        for _ in range(args.tokens):
            gen.generate_next_token()
        ms = (time.perf_counter() - t0) * 1000 / args.tokens
        outputs["genai"] = list(gen.get_sequence(0))[len(ids) : len(ids) + args.tokens]
        return ms

    arms: list[tuple[str, Callable[[], float]]] = [("ours", run_ours), ("genai", run_genai)]
    samples: dict[str, list[float]] = {name: [] for name, _ in arms}
    for r in range(args.rounds):
        for name, run in arms if r % 2 == 0 else arms[::-1]:
            samples[name].append(run())
    for name, values in samples.items():
        print(
            f"{name}: {statistics.median(values):.2f} ms/token (rounds: "
            + ", ".join(f"{v:.1f}" for v in values)
            + ")"
        )
    ratios = [a / b for a, b in zip(samples["ours"], samples["genai"], strict=True)]
    print(
        f"ours / genai, paired by round: median {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f})"
    )
    same = common_prefix(outputs["ours"], outputs["genai"])
    print(f"greedy tokens equal before the first difference: {same} of {args.tokens}")


if __name__ == "__main__":
    main()
