"""Several suggestions for one cursor, for an explicit invoke: the greedy one first, then
sampled ones (fixed seeds, so the same request gives the same list), without duplicates.

It reuses `CompletionPipeline.complete` whole (prompt, token healing, stops, post-processing,
syntax check) and changes only how the next token is chosen: a copy of the pipeline sees the
engine through `_SamplingEngine`, which replaces the pipeline's greedy choice with Gumbel-max
sampling (argmax over logits / temperature plus Gumbel noise is a draw from the softmax). The
pipeline's own choice still applies its token-healing constraint on top, so the sampled tokens
still agree with the text before the cursor. The prompt is the same for every candidate, so
the engine's KV cache makes each one after the first cost only its decode steps.

Not thread-safe, like the pipeline: call it from the one inference thread.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

from completion.pipeline import CompletionCancelled
from completion.request import CompletionRequest, CompletionResult
from onnx_models.sampling import SamplingParams, greedy, noisy_picker

# Sampled candidates: warm enough to differ from the greedy one, cool enough to stay sensible.
CANDIDATE_SAMPLING = SamplingParams(temperature=0.8, top_k=40, seed=0)
# Sampling may repeat a suggestion already found; give up after this many draws per candidate.
DRAWS_PER_CANDIDATE = 2


class _Pipeline(Protocol):
    def complete(
        self, request: CompletionRequest, cancelled: Callable[[], bool]
    ) -> CompletionResult: ...


class _SamplingEngine:
    """The engine, with each `generate` sampling instead of taking the best token."""

    def __init__(self, engine: Any, params: SamplingParams) -> None:
        self._engine = engine
        self._params = params

    def generate(self, prompt_ids: list[int], **options: Any) -> Any:
        options["pick"] = noisy_picker(self._params, options.get("pick", greedy))
        options["speculate"] = False  # drafts are verified only for a deterministic pick
        return self._engine.generate(prompt_ids, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def complete_candidates(
    pipeline: _Pipeline,
    request: CompletionRequest,
    n: int,
    cancelled: Callable[[], bool] = lambda: False,
    sampling: SamplingParams = CANDIDATE_SAMPLING,
) -> list[CompletionResult]:
    """Up to `n` results: the greedy one first (empty when there is nothing to suggest, its
    stats still worth logging), then distinct non-empty sampled ones; fewer when sampling
    finds nothing new. A pipeline without an engine (a test's script) gives its one answer.

    Raises CompletionCancelled like the pipeline.
    """
    first = pipeline.complete(request, cancelled)
    results = [first]
    engine = getattr(pipeline, "engine", None)
    # No suggestion where the greedy one has none: the cursor's mode said so, not the model.
    if n <= 1 or engine is None or not first.insert_text:
        return results
    seen = {first.insert_text.rstrip()}
    seed = sampling.seed or 0
    for _ in range((n - 1) * DRAWS_PER_CANDIDATE):
        if len(results) >= n:
            break
        if cancelled():
            raise CompletionCancelled
        seed += 1
        params = SamplingParams(sampling.temperature, sampling.top_k, sampling.top_p, seed)
        sampled_pipeline = copy.copy(pipeline)
        sampled_pipeline.engine = _SamplingEngine(engine, params)  # type: ignore[attr-defined]
        result = sampled_pipeline.complete(request, cancelled)
        key = result.insert_text.rstrip()
        if key and key not in seen:
            seen.add(key)
            results.append(result)
    return results
