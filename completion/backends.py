"""The seam between the pipeline and whatever produces the model's text.

A `TextGenerator` takes a prompt and streams what the model writes after it, asking the
caller after each piece whether to stop. Two implement it: `LocalGenerator`, over the ONNX
engine in this process, and `completion.remote_backend.RemoteGenerator`, over an
OpenAI-compatible `/v1/completions` server. Prompting, stop rules and filters stay with the
pipeline either way; a generator only generates. No network or protocol code lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from completion.token_healing import HealingConstraint
from onnx_models.engine import Engine


@dataclass(frozen=True)
class GenerationPrompt:
    # The masked prompt as text, ending at the cursor.
    text: str
    # The same prompt tokenized and token-healed: what the local engine runs.
    ids: tuple[int, ...]
    # Regenerates the characters healing took off `ids`; only the local engine can apply it,
    # since it needs the logits.
    constraint: HealingConstraint | None = None
    # The end of `text` that healing took off: every generator's output starts with it, and
    # the pipeline strips it again.
    removed_text: str = ""


@dataclass(frozen=True)
class TextGeneration:
    stop_reason: str  # "eos", "callback", "max_tokens", "context"
    generated_tokens: int  # for a remote server: the streamed pieces (one token each, usually)
    reused_tokens: int = 0
    prefill_ms: float = 0.0  # remote: time to the first piece, network included
    decode_ms: float = 0.0
    forward_passes: int = 0
    continued_tokens: int = 0  # the previous suggestion's tokens the cache held, as a draft
    source: str = "local"  # "local" or "remote"


# Called with each new token id (local) or text piece (remote); True ends the generation.
TokenCallback = Callable[[int], bool]
TextCallback = Callable[[str], bool]


class TextGenerator(Protocol):
    def generate(
        self,
        prompt: GenerationPrompt,
        *,
        max_new_tokens: int,
        on_token: TokenCallback,
        on_text: TextCallback,
        cancelled: Callable[[], bool],
    ) -> TextGeneration:
        """Stream what follows `prompt.text[:-len(prompt.removed_text)]`, starting with
        `prompt.removed_text`: as token ids to `on_token` (local) or text to `on_text` (remote).
        Raises onnx_models.engine.GenerationCancelled once `cancelled()` turns true."""
        ...


class LocalGenerator:
    """The ONNX engine with greedy decoding under the token-healing constraint."""

    def __init__(self, engine: Engine, stop_token_ids: frozenset[int], speculate: bool) -> None:
        self.engine = engine
        self.stop_token_ids = stop_token_ids
        self.speculate = speculate

    def generate(
        self,
        prompt: GenerationPrompt,
        *,
        max_new_tokens: int,
        on_token: TokenCallback,
        on_text: TextCallback,
        cancelled: Callable[[], bool],
    ) -> TextGeneration:
        constraint = [prompt.constraint]

        def pick(logits: np.ndarray, step: int) -> int:
            current = constraint[0]
            if current is not None and current.active:
                logits = current.constrain_logits(logits.copy())
            token = int(np.argmax(logits))
            if current is not None and current.active:
                constraint[0] = current.advance(token)
            return token

        generation = self.engine.generate(
            list(prompt.ids),
            max_new_tokens=max_new_tokens,
            on_token=on_token,
            pick=pick,
            cancelled=cancelled,
            stop_token_ids=self.stop_token_ids,
            speculate=self.speculate,
            draft_filter=lambda draft: (
                draft if constraint[0] is None else constraint[0].allowed_prefix(draft)
            ),
        )
        return TextGeneration(
            stop_reason=generation.stop_reason,
            generated_tokens=len(generation.tokens),
            reused_tokens=generation.prefill.reused_tokens,
            prefill_ms=generation.prefill.prefill_ms,
            decode_ms=generation.decode_ms,
            forward_passes=generation.forward_passes,
            continued_tokens=generation.continued_tokens,
        )
