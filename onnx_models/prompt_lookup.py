"""Prompt-lookup drafts: code repeats itself, so the tokens that followed the last n-gram the
previous time it occurred in the context are a cheap guess of what comes next. The engine
verifies a draft in one forward pass and keeps the longest prefix greedy decoding agrees with.
"""

from __future__ import annotations

# Trigrams only: bigram drafts were accepted too rarely to pay for their verification on a CPU
# (benchmarks/README.md, "Engine").
NGRAM_SIZES = (3,)


class PromptLookup:
    def __init__(self, context: list[int], max_draft: int = 8) -> None:
        self.max_draft = max_draft
        self.tokens: list[int] = []
        # n-gram -> index just after its latest occurrence
        self._after: dict[tuple[int, ...], int] = {}
        self.extend(context)

    def extend(self, tokens: list[int]) -> None:
        start = len(self.tokens)
        self.tokens.extend(tokens)
        # Register n-grams that some token follows (end < len): the tail n-gram stays out until
        # the next token arrives, so a lookup finds its previous occurrence, not itself.
        for end in range(start, len(self.tokens)):
            for n in NGRAM_SIZES:
                if end >= n:
                    self._after[tuple(self.tokens[end - n : end])] = end

    def draft(self) -> list[int]:
        """Tokens that followed the latest earlier occurrence of the context's last n-gram."""
        total = len(self.tokens)
        for n in NGRAM_SIZES:
            if total < n:
                continue
            pos = self._after.get(tuple(self.tokens[total - n :]))
            if pos is not None:
                return self.tokens[pos : pos + self.max_draft]
        return []
