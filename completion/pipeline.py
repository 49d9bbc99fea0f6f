"""The completion pipeline: document + cursor -> prompt -> decode -> stop -> (text, range).

Callable without a server (tests, CLI, benchmarks). Not thread-safe: the engine holds one KV
cache, so one worker thread calls `complete` at a time.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from completion.backends import GenerationPrompt, LocalGenerator, TextGeneration, TextGenerator
from completion.context import ContextRenderer
from completion.cursor import CursorContext, split_at
from completion.languages import CompletionLanguage, language_for
from completion.positions import UTF16, code_units
from completion.postprocess import Suggestion, postprocess
from completion.prompt import PrefixCuts, PromptBudget, build_prompt
from completion.remote_backend import RemoteBackendError
from completion.request import CompletionRequest, CompletionResult, CompletionStats, Position
from completion.secrets import MASK, SecretFilter, is_secret_file
from completion.stops import StopCriteria, StopDecision
from completion.syntax import (
    CursorSyntax,
    ModeOptions,
    SyntaxCheck,
    SyntaxWindow,
    cursor_mode,
    cut_points,
)
from completion.token_healing import (
    HealedPrompt,
    TokenHealer,
    TokenHealingError,
    strip_healed_prefix,
)
from onnx_models.engine import Engine, GenerationCancelled, PrefillStats

log = logging.getLogger(__name__)

# A file that every prompt is appended to, one JSON object a line ({"path", "workspace",
# "prompt"}), to see what the model sees; prompts are written after secrets are masked.
PROMPT_LOG_ENV = "NEXTTOKEN_PROMPT_LOG"


class CompletionCancelled(Exception):
    """The request was cancelled (or superseded) between two decode steps."""


@dataclass(frozen=True)
class _Prepared:
    """What `complete` and `warm` share: the cursor's reading and the final prompt."""

    ctx: CursorContext
    cursor: CursorSyntax
    language: CompletionLanguage | None
    window: SyntaxWindow
    prompt_text: str
    healed: HealedPrompt


@dataclass(frozen=True)
class PipelineSettings:
    budget: PromptBudget = field(default_factory=PromptBudget)
    framing: str = "filename"  # see completion.prompt.FRAMINGS
    max_block_lines: int = 8
    modes: ModeOptions = field(default_factory=ModeOptions)
    # False decodes to the token cap and applies the stop rules afterwards: the same text,
    # for measuring what stopping while decoding saves (benchmarks/stops.py).
    stream_stops: bool = True
    # Cut a completion back to its longest prefix that adds no parse error (tree-sitter).
    syntax_check: bool = True
    # Verify prompt-lookup drafts (code repeats itself) in one forward pass: same tokens, fewer
    # passes (benchmarks/README.md, "Engine").
    speculate: bool = True
    # Wall-clock budget: past it, generation ends at the next line break (as llama.vim's
    # t_max_predict_ms), so a slow machine still shows whole lines. None: no budget.
    deadline_ms: float | None = 1500.0


class _Decoder:
    """Streams generated tokens (or a remote server's text) into stop criteria as text,
    behind the healed prefix."""

    def __init__(
        self,
        engine: Engine,
        removed_text: str,
        stops: StopCriteria,
        stream: bool = True,
        deadline: float | None = None,
    ) -> None:
        self._engine = engine
        self._removed = removed_text
        self._stops = stops
        self._stream = stream
        self._deadline = deadline  # time.perf_counter() value, or None
        self.ids: list[int] = []
        self._text = ""  # what a remote server sent: text, not our token ids
        self._fed = 0
        self.decision: StopDecision | None = None

    def on_token(self, token_id: int) -> bool:
        self.ids.append(token_id)
        return self._stream and self.feed()

    def on_text(self, piece: str) -> bool:
        self._text += piece
        return self._stream and self.feed()

    def feed(self) -> bool:
        """Feed the text decoded since the last call; True when the stop rules end it."""
        text = self._text or self._engine.tokenizer.decode(self.ids, skip_special_tokens=False)
        if text.endswith("\ufffd"):
            return False  # half of a multi-byte character: wait for the rest
        visible = strip_healed_prefix(text, self._removed)
        if len(visible) > self._fed and self.decision is None:
            start = self._fed
            decision = self._stops.feed(visible[start:])
            self._fed = len(visible)
            if decision.stop:
                self.decision = decision
                return True
            # Past the wall-clock budget, the line being written is the last one shown.
            newline = visible.find("\n", start)
            if self._deadline is not None and newline > 0 and time.perf_counter() > self._deadline:
                self.decision = StopDecision(True, newline, "deadline")
                return True
        return False


class CompletionPipeline:
    def __init__(
        self,
        engine: Engine,
        settings: PipelineSettings | None = None,
        secrets: SecretFilter | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or PipelineSettings()
        self.secrets = secrets or SecretFilter()
        self.prompt_log = os.environ.get(PROMPT_LOG_ENV, "")
        self.manifest = engine.manifest
        self.tokenizer = engine.tokenizer
        self.healer = TokenHealer.for_tokenizer(self.tokenizer)
        self.context_renderer = ContextRenderer(self.tokenizer, self.manifest)
        self.prefix_cuts = PrefixCuts()
        stop_ids = set(self.manifest.eos_token_ids)
        for token in self.manifest.stop_tokens:
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                stop_ids.add(token_id)
        self.stop_token_ids = frozenset(stop_ids)
        # An OpenAI-compatible server to generate instead of the engine (lsp_server sets it
        # from the settings), and whether a failure of it falls back to the engine.
        self.remote: TextGenerator | None = None
        self.remote_fallback = False
        # The last `warm`: its request, what it prepared, what its prefill did (None: nothing).
        self._warmed: (
            tuple[CompletionRequest, _Prepared | CompletionResult, PrefillStats | None] | None
        ) = None

    @classmethod
    def load(cls, model_dir: Path, settings: PipelineSettings | None = None) -> CompletionPipeline:
        return cls(Engine.load(model_dir), settings)

    def complete(
        self, request: CompletionRequest, cancelled: Callable[[], bool] = lambda: False
    ) -> CompletionResult:
        t0 = time.perf_counter()
        warmed, self._warmed = self._warmed, None
        if warmed is not None and warmed[0] is not request:
            warmed = None
        prepared = self._prepare(request, t0) if warmed is None else warmed[1]
        if isinstance(prepared, CompletionResult):
            return prepared
        if warmed is not None:
            self._log_prompt(request, prepared.prompt_text)
        ctx, cursor, language, window = (
            prepared.ctx,
            prepared.cursor,
            prepared.language,
            prepared.window,
        )
        mode, prompt_text, healed = cursor.mode, prepared.prompt_text, prepared.healed
        stops = StopCriteria(
            mode, ctx.line_prefix, max_lines=self.settings.max_block_lines, language=language
        )
        try:
            generation, decoder = self._generate(prompt_text, healed, stops, request, t0, cancelled)
        except GenerationCancelled:
            raise CompletionCancelled from None
        except TokenHealingError:
            log.exception("token healing went wrong; returning no suggestion")
            return self._empty(request, "healing_error", t0)
        except RemoteBackendError as exc:
            log.error("remote backend: %s", exc)
            return self._empty(request, "remote_error", t0, detail=str(exc))

        if not self.settings.stream_stops:
            decoder.feed()
        decision = decoder.decision or stops.finish(cut_off=generation.stop_reason != "eos")
        suggestion = finish_suggestion(
            stops.text[: decision.keep_chars],
            ctx,
            cursor,
            language,
            window,
            syntax_check=self.settings.syntax_check,
            secrets=self.secrets,
        )
        end = Position(
            request.position.line,
            request.position.character
            + code_units(ctx.line_suffix[: suggestion.replace_chars], UTF16),
        )
        reused, prefill_ms, warmed_tokens = generation.reused_tokens, generation.prefill_ms, 0
        early = warmed[2] if warmed is not None else None
        if early is not None and generation.source == "local":
            # Count the prefill from the cache as the previous request left it.
            reused = min(reused, early.reused_tokens)
            prefill_ms += early.prefill_ms
            warmed_tokens = early.prefilled_tokens
        stats = CompletionStats(
            prompt_tokens=len(healed.prompt_ids),
            reused_tokens=reused,
            generated_tokens=generation.generated_tokens,
            prefill_ms=prefill_ms,
            warmed_tokens=warmed_tokens,
            decode_ms=generation.decode_ms,
            total_ms=(time.perf_counter() - t0) * 1000,
            stop_reason=decision.reason or generation.stop_reason,
            mode=mode,
            mode_reason=cursor.reason,
            adjusted=suggestion.dropped,
        )
        log.info(
            "completion: mode=%s source=%s prompt=%d reused=%d prefill=%.0fms "
            "decode=%.0fms tokens=%d passes=%d continued=%d stop=%s",
            mode,
            generation.source,
            stats.prompt_tokens,
            stats.reused_tokens,
            stats.prefill_ms,
            stats.decode_ms,
            stats.generated_tokens,
            generation.forward_passes,
            generation.continued_tokens,
            stats.stop_reason,
        )
        return CompletionResult(suggestion.text, request.position, end, stats)

    def warm(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> None:
        """Prefill the prompt `complete(request)` will run, so that it starts decoding at
        once: the server calls this while it waits out the typing debounce. Stops between
        chunks once `cancelled()`; what it prefilled stays cached for the next keystroke's
        prompt, which shares all of it but the last few tokens."""
        if self.remote is not None:
            return  # the remote server keeps its own cache
        self._warmed = None
        prepared = self._prepare(request, time.perf_counter(), log_prompt=False)
        stats = None
        if isinstance(prepared, _Prepared):
            ids = prepared.healed.prompt_ids
            if len(ids) >= self.engine.manifest.context_length:
                return  # `complete` reports it
            if self.healer.constraint(prepared.healed).allowed_prefix(
                self.engine.continuation(list(ids))[:1]
            ):
                # The previous suggestion's tokens after this prompt are still cached with the
                # logits they were chosen from, and the generation can choose them again
                # without a pass, where a prefill now would drop them.
                self._warmed = (request, prepared, None)
                return
            try:
                stats = self.engine.prefill(list(ids), cancelled=cancelled)
            except GenerationCancelled:
                raise CompletionCancelled from None
        self._warmed = (request, prepared, stats)  # for `complete(request)`, next

    def _prepare(
        self, request: CompletionRequest, t0: float, *, log_prompt: bool = True
    ) -> _Prepared | CompletionResult:
        """The prompt for `request` and what decides how to complete it, or the empty result
        when there is nothing to complete."""
        ctx = split_at(request.text, request.position)
        if "\x00" in request.text:
            return self._empty(request, "binary", t0)
        if is_secret_file(request.path):
            return self._empty(request, "none", t0, mode="none", detail="secret_file")
        if request.workspace:
            self.secrets.use_workspace(Path(request.workspace))
        language = language_for(request.language_id, request.path)
        window = SyntaxWindow.around(ctx)
        cursor = cursor_mode(language, ctx, self.settings.modes, window)
        if cursor.mode == "none":
            return self._empty(request, "none", t0, mode="none", detail=cursor.reason)
        repo_context = self.context_renderer.render(
            request.context,
            self.settings.budget.context_tokens,
            framing=self.settings.framing,
            repo_name=request.repo_name,
            current_path=request.path,
            # A line the secret filter would mask is left out of the context altogether.
            hidden_line=lambda line: self.secrets.mask(line) != line,
        )
        prompt = build_prompt(
            self.tokenizer,
            self.manifest,
            prefix=ctx.prefix,
            suffix=ctx.suffix,
            line_prefix=ctx.line_prefix,
            path=request.path,
            budget=self.settings.budget,
            framing=self.settings.framing,
            repo_context=repo_context,
            previous_cut=self.prefix_cuts.get(request.path),
        )
        self.prefix_cuts.remember(request.path, prompt.cut_line)
        # The model never sees a credential: the prompt is masked as a whole, so only what the
        # token budget kept is scanned (its lines are cached: a keystroke rescans one line).
        prompt_text = self.secrets.mask(prompt.text)
        if not prompt_text.endswith(ctx.line_prefix) and prompt_text.endswith(MASK):
            return self._empty(request, "none", t0, mode="none", detail="secret_at_cursor")
        if log_prompt:
            self._log_prompt(request, prompt_text)
        healed = self.healer.heal_text(prompt_text)
        if not healed.prompt_ids:
            return self._empty(request, "empty_prompt", t0)
        return _Prepared(ctx, cursor, language, window, prompt_text, healed)

    def _generate(
        self,
        prompt_text: str,
        healed: HealedPrompt,
        stops: StopCriteria,
        request: CompletionRequest,
        t0: float,
        cancelled: Callable[[], bool],
    ) -> tuple[TextGeneration, _Decoder]:
        """Run the remote server when one is configured (then the engine, if it fails and
        fallback is on), else the engine."""
        # Built per call: `completion.candidates` swaps `self.engine` for a sampling one.
        local = LocalGenerator(self.engine, self.stop_token_ids, self.settings.speculate)
        generators: list[TextGenerator] = [local]
        if self.remote is not None:
            generators = [self.remote, local] if self.remote_fallback else [self.remote]
        prompt = GenerationPrompt(
            prompt_text, healed.prompt_ids, self.healer.constraint(healed), healed.removed_text
        )
        budget = self.settings.deadline_ms
        for generator in generators:
            decoder = _Decoder(
                self.engine,
                healed.removed_text,
                stops,
                self.settings.stream_stops,
                deadline=None if budget is None else t0 + budget / 1000,
            )
            try:
                generation = generator.generate(
                    prompt,
                    max_new_tokens=request.max_new_tokens + len(healed.removed_ids),
                    on_token=decoder.on_token,
                    on_text=decoder.on_text,
                    cancelled=cancelled,
                )
            except RemoteBackendError as exc:
                if generator is generators[-1]:
                    raise
                log.warning("remote backend: %s; falling back to the local model", exc)
                continue
            return generation, decoder
        raise AssertionError("no generator ran")

    def _log_prompt(self, request: CompletionRequest, text: str) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("prompt: %s", json.dumps(text))
        if self.prompt_log:
            record = {"path": request.path, "workspace": request.workspace, "prompt": text}
            try:
                with open(self.prompt_log, "a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
            except OSError as exc:
                log.warning("cannot append to %s=%s: %s", PROMPT_LOG_ENV, self.prompt_log, exc)

    def _empty(
        self, request: CompletionRequest, reason: str, t0: float, mode: str = "", detail: str = ""
    ) -> CompletionResult:
        stats = CompletionStats(
            total_ms=(time.perf_counter() - t0) * 1000,
            stop_reason=reason,
            mode=mode,
            mode_reason=detail,
        )
        if mode == "none":
            log.info("completion: mode=none (%s)", detail)
        return CompletionResult("", request.position, request.position, stats)


def finish_suggestion(
    kept: str,
    ctx: CursorContext,
    cursor: CursorSyntax,
    language: CompletionLanguage | None,
    window: SyntaxWindow,
    *,
    syntax_check: bool = True,
    secrets: SecretFilter | None = None,
) -> Suggestion:
    """What the stop rules kept, made into the suggestion: post-processing, the syntax check,
    then the secret-leak filter. A pure function of text, so golden tests can feed it made-up
    model output."""
    suggestion = postprocess(
        kept, ctx, block=cursor.mode == "block", language=language, in_string=cursor.in_string
    )
    if syntax_check:
        suggestion = _syntax_cut(suggestion, language, window, block=cursor.mode == "block")
    if secrets is not None and suggestion.text:
        after = ctx.line_suffix[suggestion.replace_chars :]
        checked = secrets.check_suggestion(suggestion.text, ctx.line_prefix, after)
        if checked.rule:
            log.warning("suggestion held a secret (%s): cut or dropped", checked.rule)
            kept_range = suggestion.replace_chars if checked.text == suggestion.text else 0
            suggestion = Suggestion(checked.text, kept_range, f"secret:{checked.rule}")
    return suggestion


def _syntax_cut(
    suggestion: Suggestion,
    language: CompletionLanguage | None,
    window: SyntaxWindow,
    *,
    block: bool,
) -> Suggestion:
    """The suggestion cut back to its longest prefix that adds no ERROR or MISSING node to
    the parse of the text around the cursor (unchanged without a grammar)."""
    grammar = language.grammar() if language else None
    if grammar is None or not suggestion.text:
        return suggestion
    text = suggestion.text
    check = SyntaxCheck(grammar, window)
    keep = check.longest_clean(text, suggestion.replace_chars, cut_points(text, block))
    if keep == len(text):
        return suggestion
    cut = text[:keep].rstrip()
    if not cut.strip():
        return Suggestion("", dropped="syntax")
    return Suggestion(cut, dropped="syntax_cut")
