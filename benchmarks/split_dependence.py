"""How often a suggestion depends on how its prompt reached the cache.

An engine with prefix caching sees the same prompt in different passes: cold, in prefill
chunks, or as keystrokes leave it, the last tokens one request at a time. float32 kernels give
logits ~1e-4 apart across such splits; int8 activations (the step graph's decode steps) turn
that into ~1 apart, which can change the greedy choice. For `--windows` windows drawn (seeded)
from standard-library modules, each engine decodes `--tokens` greedy tokens after a cold
prefill of the window and after the window arrived as typing leaves it (all but its last three
tokens, then one token a request), and counts the windows whose suggestions are the same (and
whose first tokens are).

    python benchmarks/split_dependence.py --windows 30
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stdlib_windows import stdlib_windows  # benchmarks/, beside this script

from onnx_models.engine import Engine
from onnx_models.install import ensure_model


def suggestion(engine: Engine, window: list[int], tokens: int, typed: bool) -> tuple[int, ...]:
    engine.rewind(0)
    if typed:
        for end in (-3, -2, -1):
            engine.prefill(window[:end])
    return engine.generate(window, max_new_tokens=tokens, stop_token_ids=frozenset()).tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the default model)")
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = args.model or ensure_model()
    engines = {
        "step graph": Engine.load(folder),
        "prefill graph alone": Engine.load(folder, step_graph=False),
    }
    if engines["step graph"].step_session is None:
        raise SystemExit(f"{folder} has no step graph: nothing to compare")
    drawn = stdlib_windows(engines["step graph"].tokenizer, args.windows, args.seed, 200, 600)
    same = {name: {"suggestion": 0, "first_token": 0} for name in engines}
    for i, window in enumerate(drawn):
        for name, engine in engines.items():
            cold = suggestion(engine, window, args.tokens, typed=False)
            typed = suggestion(engine, window, args.tokens, typed=True)
            same[name]["suggestion"] += cold == typed
            same[name]["first_token"] += cold[:1] == typed[:1]
        print(f"{i + 1}/{len(drawn)}: {same}", flush=True)
    summary = {"windows": len(drawn), "tokens": args.tokens, "same": same}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
