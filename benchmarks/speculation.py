"""Prompt-lookup speculation against plain greedy decoding, position by position.

Positions are drawn (seeded) from standard-library modules; at each, the 512 tokens before it
are prefilled (not timed), then `--tokens` greedy tokens are decoded plainly and with prompt
lookup, in alternating order. Reported: the median and spread of the per-position decode
speed-up, tokens per forward pass, and whether every position gave the same tokens (the
speculation must be lossless).

With `--typed N`, the next request at each position is measured instead: the user typed the
first N suggested tokens, so the prompt grows by them while the cache still holds the rest of
the previous suggestion. Both arms use prompt lookup; "continued" keeps that cache (its tokens
become the first draft), "cut" drops what follows the new prompt first. Timed: the whole
request for the remaining tokens.

    python benchmarks/speculation.py --positions 24 --tokens 48 --json out.json
    python benchmarks/speculation.py --positions 24 --tokens 16 --typed 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from stdlib_windows import stdlib_windows  # benchmarks/, beside this script

from onnx_models.engine import Engine
from onnx_models.install import ensure_model

CONTEXT = 512


def run(
    engine: Engine, window: list[int], tokens: int, speculate: bool
) -> tuple[float, int, tuple]:
    engine.rewind(0)
    engine.prefill(window)  # not timed: the decode is what speculation changes
    g = engine.generate(
        window, max_new_tokens=tokens, stop_token_ids=frozenset(), speculate=speculate
    )
    return g.decode_ms, g.forward_passes, g.tokens


def run_typed(
    engine: Engine, window: list[int], tokens: int, typed: int, keep_cache: bool
) -> tuple[float, int, tuple]:
    engine.rewind(0)
    first = engine.generate(
        window, max_new_tokens=tokens, stop_token_ids=frozenset(), speculate=True
    )
    prompt = window + list(first.tokens[:typed])
    if not keep_cache:
        engine.rewind(len(prompt))
    t0 = time.perf_counter()
    g = engine.generate(
        prompt, max_new_tokens=tokens - typed, stop_token_ids=frozenset(), speculate=True
    )
    # The prompt's own pass counts too, where there was one (none for a continued cache).
    passes = g.forward_passes + (g.prefill.prefilled_tokens > 0)
    return (time.perf_counter() - t0) * 1000, passes, g.tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the default model)")
    parser.add_argument("--positions", type=int, default=24)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--typed", type=int, default=0, help="measure the request after N typed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    engine = Engine.load(args.model or ensure_model())
    # Arm names: the baseline first, then the variant.
    policies = ["cut", "continued"] if args.typed else ["plain", "lookup"]
    rows = []
    for i, window in enumerate(
        stdlib_windows(engine.tokenizer, args.positions, args.seed, CONTEXT, CONTEXT)
    ):
        order = policies if i % 2 == 0 else policies[::-1]
        row: dict[str, tuple[float, int, tuple]] = {}
        for policy in order:
            if args.typed:
                keep = policy == "continued"
                row[policy] = run_typed(engine, window, args.tokens, args.typed, keep)
            else:
                row[policy] = run(engine, window, args.tokens, speculate=policy == "lookup")
        rows.append(row)
        print(
            f"{i + 1}/{args.positions}: "
            + ", ".join(f"{p} {row[p][0]:.0f} ms / {row[p][1]} passes" for p in policies),
            flush=True,
        )
    base, variant = policies
    speedups = [r[base][0] / r[variant][0] for r in rows]
    summary = {
        "positions": len(rows),
        "tokens": args.tokens,
        "typed": args.typed,
        f"{base}_ms_median": statistics.median(r[base][0] for r in rows),
        f"{variant}_ms_median": statistics.median(r[variant][0] for r in rows),
        "speedup_median": statistics.median(speedups),
        "speedup_min": min(speedups),
        "speedup_max": max(speedups),
        # The timed passes: with --typed the prompt's pass too, otherwise decode passes only
        # (the prefill is not timed).
        "forward_passes": {p: sum(r[p][1] for r in rows) for p in policies},
        "tokens_decoded": {p: sum(len(r[p][2]) for r in rows) for p in policies},
        "same_tokens": sum(r[variant][2] == r[base][2] for r in rows),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
