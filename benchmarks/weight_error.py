"""How far each weight format's logits are from the float32 graph's, on the same real code.

For every graph variant (GraphOptions specs, built into the cache once), the same windows of
stdlib Python are fed token by token after a prefill; at each position the logits are
compared with the fp32 graph's: the largest absolute difference, over the whole vocabulary
and over fp32's top 40 tokens (what sampling draws from), and whether the top token agrees.
Then 16 greedy tokens from the end of each window: how many come before the first
that differs from fp32's; and how far the last logits move when the window is prefilled in
one call instead of token by token (int8 activations may differ between the two paths).
Also the mean negative log-likelihood of the text's own next tokens at the stepped positions,
beside fp32's. This measures the loss that quantising the weights adds, not the model's
quality (that is the quality bench's).

    python benchmarks/weight_error.py --variants weights=q4 weights=q8 weights=q4,lm_head=q8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import common_prefix, ours_model_dir, prompt_text  # noqa: E402

from onnx_models.engine import Engine  # noqa: E402

TOP = 40  # llama.cpp's default top-k


def window_logits(engine: Engine, ids: list[int], prefill: int) -> np.ndarray:
    """Logits after each token from `prefill` on, [len(ids) - prefill + 1, vocab]."""
    engine.rewind(0)
    engine.prefill(ids[:prefill])
    rows = [engine.logits.copy()]
    for token in ids[prefill:]:
        engine.step(token)
        rows.append(engine.logits.copy())
    return np.stack(rows)


def next_token_nll(rows: np.ndarray, window: list[int], prefill: int) -> list[float]:
    """-log p(the text's next token) after each stepped position."""
    targets = np.asarray(window[prefill:])
    logits = rows[: len(targets)].astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(axis=-1)) + top[:, 0]
    return (log_z - logits[np.arange(len(targets)), targets]).tolist()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["weights=q4", "weights=q8"])
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--prefill", type=int, default=192)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    reference = Engine.load(ours_model_dir("graph:weights=fp32"))
    ids = reference.tokenizer.encode(prompt_text()).ids
    span = args.prefill + args.steps
    stride = (len(ids) - span) // max(1, args.windows - 1)
    windows = [ids[i * stride : i * stride + span] for i in range(args.windows)]
    expected = [window_logits(reference, w, args.prefill) for w in windows]
    greedy = [reference.generate(w, max_new_tokens=16, stop_token_ids=frozenset()) for w in windows]
    fp32_nll = [
        x
        for w, e in zip(windows, expected, strict=True)
        for x in next_token_nll(e, w, args.prefill)
    ]

    results = {}
    for spec in args.variants:
        engine = Engine.load(ours_model_dir(f"graph:{spec}"))
        diffs, top_diffs, agree, split, top_split, nll = [], [], [], [], [], []
        for w, exp in zip(windows, expected, strict=True):
            got = window_logits(engine, w, args.prefill)
            diffs.append(np.abs(got - exp).max(axis=-1))
            top = np.argpartition(-exp, TOP, axis=-1)[:, :TOP]
            top_diffs.append(
                np.abs(np.take_along_axis(got, top, -1) - np.take_along_axis(exp, top, -1)).max(-1)
            )
            agree.append(got.argmax(axis=-1) == exp.argmax(axis=-1))
            nll += next_token_nll(got, w, args.prefill)
            engine.rewind(0)
            engine.prefill(w)
            split.append(float(np.abs(engine.logits - got[-1]).max()))
            top_split.append(float(np.abs(engine.logits[top[-1]] - got[-1][top[-1]]).max()))
        # Greedy tokens before the first that differs from fp32's, per window.
        same_greedy = [
            common_prefix(
                list(g.tokens),
                list(engine.generate(w, max_new_tokens=16, stop_token_ids=frozenset()).tokens),
            )
            for w, g in zip(windows, greedy, strict=True)
        ]
        d = np.concatenate(diffs)
        results[spec] = {
            "positions": int(d.size),
            "max_abs_logit_diff": float(d.max()),
            "median_max_abs_logit_diff": float(statistics.median(d.tolist())),
            f"top{TOP}_max_abs_logit_diff": float(np.concatenate(top_diffs).max()),
            "top1_agreement": float(np.concatenate(agree).mean()),
            "greedy_prefix_equal": f"{sum(same_greedy)}/{16 * len(windows)}",
            "prefill_vs_stepwise_max_diff": max(split),
            f"prefill_vs_stepwise_top{TOP}_max_diff": max(top_split),
            "next_token_nll": statistics.fmean(nll),
            "fp32_next_token_nll": statistics.fmean(fp32_nll),
        }
        print(spec, results[spec], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
