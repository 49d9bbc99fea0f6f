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

from onnx_models.kv_cache import ConcatKvCache, KvCache, common_prefix_length
from onnx_models.logit_rows import LogitRows
from onnx_models.manifest import ManifestError, ModelManifest
from onnx_models.prompt_lookup import PromptLookup
from onnx_models.sampling import TokenPicker, greedy

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
    forward_passes: int = 0  # decode passes; fewer than tokens when drafts were accepted
    # Tokens the cache still held after the prompt (the previous generation's), offered again
    # with the logits rows they were chosen from: no pass for those that are chosen again.
    continued_tokens: int = 0


# Tokens a prefill pass: attention's work grows with the chunk times the cached length, the
# quantised matmuls want many rows. Measured (1,024-token cold prefill, benchmarks/README.md):
# 256 beat 128, 512 and 1,024 with a float cache; int8's dequantising attention wants 128.
PREFILL_CHUNK = {"float32": 256, "int8": 128}
# Logits rows kept to choose from again (logit_rows.py): the LSP's 64-token suggestion and its
# prompt's row, with a few to spare; 196 KB each for a 49k vocabulary.
KEPT_ROWS = 72
# The manifest's KV dtype and the graph's cache input type (onnxruntime's spelling).
CACHE_TYPES = {"float32": "tensor(float)", "int8": "tensor(int8)"}


def physical_cores() -> int:
    """Cores, not hardware threads: a second thread on a busy core slows matrix kernels."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return max(1, os.cpu_count() or 1)
    cores: set[tuple[str, str]] = set()
    physical = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            physical = value.strip()
        elif key.strip() == "core id":
            cores.add((physical, value.strip()))
    return len(cores) or max(1, os.cpu_count() or 1)


def _session(graph: Path, threads: int | None) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(graph), session_options(threads), providers=_providers())
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ModelLoadError(
            f"{graph} could not be loaded by onnxruntime ({exc.__class__.__name__}): "
            f"{str(exc)[:300]}; rebuild with `nexttoken model install --force`"
        ) from exc


def _signature(session: ort.InferenceSession) -> list[tuple[str, str]]:
    return [(v.name, v.type) for v in (*session.get_inputs(), *session.get_outputs())]


def session_options(threads: int | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    # Our graph is written already fused (GQA, skip-norms, packed QKV); an optimised copy on
    # disk would save ~40 ms of a model load for 222 MB (benchmarks/README.md, "Session
    # settings"), so none is cached.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or physical_cores()
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
        step_session: ort.InferenceSession | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.session = session
        self.step_session = step_session
        self.tokenizer = tokenizer
        on_gpu = "CUDAExecutionProvider" in session.get_providers()
        self.device = "cuda" if on_gpu else "cpu"
        self.kv: KvCache | ConcatKvCache = (
            KvCache(manifest.kv, manifest.context_length, device=self.device)
            if manifest.kv.shared_buffer
            else ConcatKvCache(manifest.kv, manifest.context_length)
        )
        # Preallocated, bound once: a decode step only writes into these arrays in place.
        self._logit_buffers: dict[int, tuple[np.ndarray, ort.OrtValue]] = {}
        self._logits = self._logits_buffer(1)
        # Every pass's logits rows, by the cached tokens they follow: a prompt the cache holds
        # whole, and the generation after it, are chosen from again without a pass.
        self._rows = LogitRows(manifest.vocab_size, KEPT_ROWS)
        self._one_token = np.zeros((1, 1), dtype=np.int64)
        self._seqlens = np.zeros(1, dtype=np.int32)
        self._total = np.zeros((), dtype=np.int32)
        self._num_logits = np.ones(1, dtype=np.int64)
        # One IO binding per graph, bound to the same buffers and reading and writing the same
        # KV cache. A prompt's tokens always run the prefill graph, so a prompt's logits, and
        # the first token suggested after it, are that graph's however earlier requests split
        # the prompt between passes (int8 activations would move them by ~1). The step graph
        # runs decode steps only; its int8 kernels turn a split's ~1e-4 into ~1, so later
        # tokens can differ with the split (benchmarks/split_dependence.py).
        self._pass = (session, session.io_binding())
        self._step_pass = (step_session, step_session.io_binding()) if step_session else self._pass
        # step_timing.py turns it off to time the prefill graph's steps against the step graph's.
        self.decode_on_step_graph = step_session is not None
        self._bindings = [self._pass[1]] + ([self._step_pass[1]] if step_session else [])
        self._bind_scalars()
        self._bind_cache()

    @classmethod
    def load(
        cls, model_dir: Path, threads: int | None = None, *, step_graph: bool = True
    ) -> Engine:
        """The engine for a model folder; `step_graph=False` leaves out the step graph the
        folder may have, so that every pass runs one graph."""
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
        session = _session(graph, threads)
        step_session = None
        # The step graph's int8 activations are a CPU kernel choice; a GPU runs one graph.
        on_gpu = "CUDAExecutionProvider" in session.get_providers()
        if step_graph and manifest.step_graph_file and not on_gpu:
            step_graph = model_dir / manifest.step_graph_file
            if not step_graph.is_file():
                raise ModelLoadError(
                    f"{step_graph} is missing; rebuild with `nexttoken model install --force`"
                )
            step_session = _session(step_graph, threads)
        expected = {"input_ids", "seqlens_k", "total_sequence_length", "num_logits"}
        missing = expected - {i.name for i in session.get_inputs()}
        if missing:
            raise ModelLoadError(
                f"{graph} lacks inputs {sorted(missing)}: it was built by another version of "
                f"nexttoken; rebuild with `nexttoken model install --force`"
            )
        cache_input = manifest.kv.past_key_name.format(layer=0)
        graph_cache = next((i.type for i in session.get_inputs() if i.name == cache_input), None)
        wanted = CACHE_TYPES.get(manifest.kv.dtype)
        if graph_cache != wanted:
            raise ModelLoadError(
                f"{model_dir}: the manifest's KV cache is {manifest.kv.dtype} but the graph's "
                f"{cache_input} is {graph_cache}; rebuild with `nexttoken model install --force`"
            )
        if step_session and _signature(step_session) != _signature(session):
            raise ModelLoadError(
                f"{model_dir}: {manifest.step_graph_file} does not take {graph.name}'s inputs "
                "and outputs; rebuild with `nexttoken model install --force`"
            )
        return cls(model_dir, manifest, session, tokenizer, step_session)

    # -- state ---------------------------------------------------------------------------------

    @property
    def cached_tokens(self) -> list[int]:
        return list(self.kv.tokens)

    @property
    def logits(self) -> np.ndarray:
        """Logits after the last token in the cache (a view; copy it to keep it)."""
        row = self._rows.get(len(self.kv.tokens))
        if row is None:
            raise RuntimeError("no logits after the cached tokens: prefill a prompt first")
        return row

    def _logits_buffer(self, positions: int) -> np.ndarray:
        # One per width: a decode step's, and one per prompt-lookup draft length.
        if positions not in self._logit_buffers:
            array = np.zeros((1, positions, self.manifest.vocab_size), dtype=np.float32)
            self._logit_buffers[positions] = (array, ort.OrtValue.ortvalue_from_numpy(array))
        return self._logit_buffers[positions][0]

    def rewind(self, length: int) -> None:
        self._rows.forget_above(length)
        self.kv.rewind(length)

    def _bind_scalars(self) -> None:
        for name, array in (
            ("seqlens_k", self._seqlens),
            ("total_sequence_length", self._total),
            ("num_logits", self._num_logits),
        ):
            value = ort.OrtValue.ortvalue_from_numpy(array)
            for b in self._bindings:
                b.bind_ortvalue_input(name, value)

    def _bind_logits(self, positions: int) -> None:
        self._logits = self._logits_buffer(positions)
        self._num_logits[0] = positions
        for b in self._bindings:
            b.bind_ortvalue_output("logits", self._logit_buffers[positions][1])

    def _bind_cache(self) -> None:
        for b in self._bindings:
            b.clear_binding_outputs()
        self._bind_logits(int(self._num_logits[0]))
        for b in self._bindings:
            for past, present in self.kv.pairs():
                b.bind_ortvalue_input(past, self.kv.values[past])
                if self.kv.shared:
                    b.bind_ortvalue_output(present, self.kv.values[past])
                else:
                    b.bind_output(present, self.device)

    def _forward(self, token_ids: list[int], logits_for: int = 1, decode: bool = False) -> None:
        """Run `token_ids` after the cache; logits for the last `logits_for` of them. A
        `decode` pass runs the step graph where there is one."""
        total = len(self.kv.tokens) + len(token_ids)
        if self.kv.reserve(total):
            self._bind_cache()
        if logits_for != self._logits.shape[1]:
            self._bind_logits(logits_for)
        session, b = self._step_pass if decode and self.decode_on_step_graph else self._pass
        if len(token_ids) == 1:
            self._one_token[0, 0] = token_ids[0]
            b.bind_cpu_input("input_ids", self._one_token)
        else:
            b.bind_cpu_input("input_ids", np.asarray([token_ids], dtype=np.int64))
        self._seqlens[0] = total - 1
        self._total[...] = total
        if not self.kv.shared:
            for past, present in self.kv.pairs():
                b.bind_ortvalue_input(past, self.kv.values[past])
                b.bind_output(present, self.device)  # a new, longer tensor each call
        session.run_with_iobinding(b)
        if not self.kv.shared:
            # Outputs come back in binding order: logits, then the presents.
            outputs = b.get_outputs()[1:]
            self.kv.replace(
                {past: value for (past, _), value in zip(self.kv.pairs(), outputs, strict=True)}
            )
        self.kv.tokens.extend(token_ids)
        first = len(self.kv.tokens) - logits_for + 1
        for r in range(logits_for):
            self._rows.put(first + r, self._logits[0, r])

    def prefill(
        self,
        prompt_ids: list[int],
        chunk: int | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> PrefillStats:
        """Bring the cache to `prompt_ids`, reusing the longest common prefix, `chunk` tokens
        a forward pass (default: PREFILL_CHUNK for the cache's type). `cancelled()` is checked
        between chunks (GenerationCancelled); what was prefilled by then stays cached."""
        if not prompt_ids:
            raise ValueError("empty prompt")
        if len(prompt_ids) >= self.manifest.context_length:
            raise ValueError(
                f"prompt of {len(prompt_ids)} tokens exceeds the context of "
                f"{self.manifest.context_length}"
            )
        t0 = time.perf_counter()
        common = common_prefix_length(self.kv.tokens, prompt_ids)
        if common == len(prompt_ids) and self._rows.get(common) is not None:
            # Held whole with its logits (prefilled while the editor's debounce ran, or a
            # generation after it that token healing asks again for): drop the rest, no pass.
            self.rewind(common)
            return PrefillStats(common, 0, (time.perf_counter() - t0) * 1000)
        # Keep at least one token to run so the logits belong to this prompt.
        reused = min(common, len(prompt_ids) - 1)
        self.rewind(reused)
        rest = prompt_ids[reused:]
        chunk = chunk or PREFILL_CHUNK[self.manifest.kv.dtype]
        for i in range(0, len(rest), chunk):
            if cancelled():
                raise GenerationCancelled
            self._forward(rest[i : i + chunk])
        stats = PrefillStats(reused, len(rest), (time.perf_counter() - t0) * 1000)
        log.debug("prefill: reused %d, prefilled %d, %.1f ms", *vars(stats).values())
        return stats

    def step(self, token_id: int) -> None:
        """Append one token and compute the logits after it, as a decode step does."""
        self._forward([token_id], decode=True)

    def generate(
        self,
        prompt_ids: list[int],
        *,
        max_new_tokens: int,
        on_token: Callable[[int], bool] = lambda t: False,
        pick: TokenPicker = greedy,
        cancelled: Callable[[], bool] = lambda: False,
        stop_token_ids: frozenset[int] | None = None,
        speculate: bool = False,
        lookup_context: list[int] | None = None,
        draft_filter: Callable[[list[int]], list[int]] = lambda draft: draft,
    ) -> Generation:
        """Decode after `prompt_ids`.

        `on_token(id)` returning True stops (the token is kept); `cancelled()` is checked
        between steps and raises GenerationCancelled. Where the cache holds the prompt and a
        generation after it, its tokens are chosen again from the logits rows they were chosen
        from, without a pass for those `pick` chooses again (`continuation`). `speculate`
        verifies prompt-lookup drafts (from `lookup_context`, default the prompt) in one
        forward pass, for a deterministic `pick` only, and only where every pass runs one
        graph: a step graph's int8 kernels give a many-row pass other logits than one-row
        steps, so verified drafts would change the tokens. `draft_filter` keeps the leading
        tokens of a draft that `pick` could choose (e.g. under a constraint), so none is
        verified in vain. Stops that read text (line ends, a wall-clock budget) live in the
        caller's `on_token`.
        """
        stops = (
            stop_token_ids if stop_token_ids is not None else frozenset(self.manifest.eos_token_ids)
        )
        if cancelled():
            raise GenerationCancelled
        n = len(prompt_ids)
        draft = self.continuation(prompt_ids)[:max_new_tokens]
        continued = len(draft)
        if draft:
            self.rewind(n + len(draft))  # past its last kept row a cached token is a guess
            prefill = PrefillStats(n, 0, 0.0)
            log.debug("prefill: none, %d cached tokens offered with their rows", len(draft))
        else:
            prefill = self.prefill(prompt_ids, cancelled=cancelled)
        t0 = time.perf_counter()
        drafts = speculate and not self.decode_on_step_graph
        lookup = PromptLookup(lookup_context or prompt_ids) if drafts else None
        out: list[int] = []
        forward_passes = 0
        # Logits rows not yet consumed, and the draft tokens they were computed after.
        rows = self._rows.span(n, len(draft) + 1)
        reason = ""
        while not reason:
            if cancelled():
                raise GenerationCancelled
            accepted_in_cache = 0
            token = -1
            for j, row in enumerate(rows):
                token = pick(row, len(out))
                if token in stops:
                    reason = "eos"
                    break
                out.append(token)
                if lookup is not None:
                    lookup.extend([token])
                if on_token(token):
                    reason = "callback"
                    break
                if len(out) >= max_new_tokens:
                    reason = "max_tokens"
                    break
                if j < len(draft) and token == draft[j]:
                    accepted_in_cache += 1  # already in the cache: verified
                    continue
                break
            # Keep the cache to what was emitted: drop rejected draft tokens.
            self.rewind(len(self.kv.tokens) - len(draft) + accepted_in_cache)
            if reason:
                break
            if len(self.kv.tokens) + 2 + (lookup.max_draft if lookup else 0) >= (
                self.manifest.context_length
            ):
                reason = "context"
                break
            draft = draft_filter(lookup.draft()) if lookup is not None else []
            self._forward([token, *draft], logits_for=len(draft) + 1, decode=True)
            forward_passes += 1
            rows = [self._logits[0, j] for j in range(len(draft) + 1)]
        return Generation(
            tuple(out),
            reason,
            prefill,
            (time.perf_counter() - t0) * 1000,
            forward_passes=forward_passes,
            continued_tokens=continued,
        )

    def continuation(self, prompt_ids: list[int]) -> list[int]:
        """The tokens the cache holds after the (non-empty) prompt, when it holds the prompt
        whole, that `generate` can choose again without a pass: those whose logits rows it
        kept (a previous generation's, which went on from this prompt or a shorter one)."""
        held, n = self.kv.tokens, len(prompt_ids)
        if not 0 < n < len(held) or self._rows.get(n) is None:
            return []
        if common_prefix_length(held, prompt_ids) != n:
            return []
        return held[n : n + self._rows.run(n, len(held) - n)]


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
