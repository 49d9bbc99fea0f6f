"""The ONNX Runtime engine: one long-lived session, IO binding, a persistent KV cache.

The shape follows a generator with explicit state (prefill, step, rewind) so that stop
criteria, constraints and cancellation live with the caller, between decode steps. It knows
nothing about prompts, documents or editors.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from onnx_models.kv_cache import KvCache, common_prefix_length
from onnx_models.manifest import ManifestError, ModelManifest

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """The model folder is missing, incomplete or corrupt."""


class GenerationCancelled(Exception):
    """The caller's cancellation check turned true between two decode steps."""


@dataclass(frozen=True)
class PrefillStats:
    reused_tokens: int
    prefilled_tokens: int
    prefill_ms: float


@dataclass(frozen=True)
class Generation:
    tokens: tuple[int, ...]
    stop_reason: str  # "eos", "callback", "max_tokens", "context"
    prefill: PrefillStats
    decode_ms: float


# pick(logits, step) -> token id; the default is greedy.
TokenPicker = Callable[[np.ndarray, int], int]


def greedy(logits: np.ndarray, step: int) -> int:
    return int(np.argmax(logits))


def session_options(threads: int | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or max(1, (os.cpu_count() or 2))
    so.inter_op_num_threads = 1
    # Spinning threads fight the editor and the indexer for the same cores on a laptop.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


class Engine:
    def __init__(
        self,
        model_dir: Path,
        manifest: ModelManifest,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
    ) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.session = session
        self.tokenizer = tokenizer
        self.kv = KvCache(manifest.kv, manifest.context_length)
        self._logits = np.zeros((1, manifest.vocab_size), dtype=np.float32)
        self._logits_value = ort.OrtValue.ortvalue_from_numpy(self._logits)
        self._binding = session.io_binding()
        self._seqlens = np.zeros(1, dtype=np.int32)
        self._total = np.zeros((), dtype=np.int32)
        self._bind_cache()

    @classmethod
    def load(cls, model_dir: Path, threads: int | None = None) -> Engine:
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelLoadError(f"model folder {model_dir} does not exist")
        try:
            manifest = ModelManifest.load(model_dir)
        except ManifestError as exc:
            raise ModelLoadError(str(exc)) from exc
        graph = model_dir / manifest.graph_file
        tok_file = model_dir / manifest.tokenizer_file
        for required in (graph, tok_file):
            if not required.is_file():
                raise ModelLoadError(
                    f"{required} is missing; rebuild with `nexttoken model install`"
                )
        try:
            tokenizer = Tokenizer.from_file(str(tok_file))
        except Exception as exc:
            raise ModelLoadError(f"{tok_file} is not a valid tokenizer: {exc}") from exc
        try:
            session = ort.InferenceSession(
                str(graph), session_options(threads), providers=_providers()
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelLoadError(
                f"{graph} could not be loaded by onnxruntime ({exc.__class__.__name__}): "
                f"{str(exc)[:300]}; rebuild with `nexttoken model install --force`"
            ) from exc
        return cls(model_dir, manifest, session, tokenizer)

    # -- state ---------------------------------------------------------------------------------

    @property
    def cached_tokens(self) -> list[int]:
        return list(self.kv.tokens)

    @property
    def logits(self) -> np.ndarray:
        """Logits after the last token in the cache (a view; copy it to keep it)."""
        return self._logits[0]

    def rewind(self, length: int) -> None:
        self.kv.rewind(length)

    def _bind_cache(self) -> None:
        b = self._binding
        b.clear_binding_outputs()
        b.bind_ortvalue_output("logits", self._logits_value)
        for past, present in self.kv.pairs():
            b.bind_ortvalue_input(past, self.kv.values[past])
            b.bind_ortvalue_output(present, self.kv.values[past])

    def _forward(self, token_ids: list[int]) -> None:
        start = len(self.kv.tokens)
        total = start + len(token_ids)
        if self.kv.reserve(total):
            self._bind_cache()
        b = self._binding
        b.bind_cpu_input("input_ids", np.asarray([token_ids], dtype=np.int64))
        self._seqlens[0] = total - 1
        self._total[...] = total
        b.bind_cpu_input("seqlens_k", self._seqlens)
        b.bind_cpu_input("total_sequence_length", self._total)
        self.session.run_with_iobinding(b)
        self.kv.tokens.extend(token_ids)

    def prefill(self, prompt_ids: list[int], chunk: int = 512) -> PrefillStats:
        """Bring the cache to `prompt_ids`, reusing the longest common prefix."""
        if not prompt_ids:
            raise ValueError("empty prompt")
        if len(prompt_ids) >= self.manifest.context_length:
            raise ValueError(
                f"prompt of {len(prompt_ids)} tokens exceeds the context of "
                f"{self.manifest.context_length}"
            )
        t0 = time.perf_counter()
        # Keep at least one token to run so the logits belong to this prompt.
        reused = min(common_prefix_length(self.kv.tokens, prompt_ids), len(prompt_ids) - 1)
        self.kv.rewind(reused)
        rest = prompt_ids[reused:]
        for i in range(0, len(rest), chunk):
            self._forward(rest[i : i + chunk])
        stats = PrefillStats(reused, len(rest), (time.perf_counter() - t0) * 1000)
        log.debug("prefill: reused %d, prefilled %d, %.1f ms", *vars(stats).values())
        return stats

    def step(self, token_id: int) -> None:
        """Append one token and compute the logits after it."""
        self._forward([token_id])

    def generate(
        self,
        prompt_ids: list[int],
        *,
        max_new_tokens: int,
        on_token: Callable[[int], bool] = lambda t: False,
        pick: TokenPicker = greedy,
        cancelled: Callable[[], bool] = lambda: False,
        stop_token_ids: frozenset[int] | None = None,
    ) -> Generation:
        """Decode after `prompt_ids`; `on_token(id)` returning True stops (the token is kept),
        `cancelled()` is checked between steps and raises GenerationCancelled."""
        stops = (
            stop_token_ids if stop_token_ids is not None else frozenset(self.manifest.eos_token_ids)
        )
        if cancelled():
            raise GenerationCancelled
        prefill = self.prefill(prompt_ids)
        t0 = time.perf_counter()
        out: list[int] = []
        reason = "max_tokens"
        for step in range(max_new_tokens):
            if cancelled():
                raise GenerationCancelled
            token = pick(self.logits, step)
            if token in stops:
                reason = "eos"
                break
            out.append(token)
            if on_token(token):
                reason = "callback"
                break
            if len(self.kv.tokens) + 1 >= self.manifest.context_length:
                reason = "context"
                break
            if step + 1 < max_new_tokens:
                self.step(token)
        return Generation(tuple(out), reason, prefill, (time.perf_counter() - t0) * 1000)


def _providers() -> list[str]:
    available = ort.get_available_providers()
    wanted = os.environ.get("NEXTTOKEN_EXECUTION_PROVIDER")
    if wanted:
        if wanted not in available:
            raise ModelLoadError(
                f"execution provider {wanted} is not available (have: {', '.join(available)})"
            )
        return [wanted, "CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
