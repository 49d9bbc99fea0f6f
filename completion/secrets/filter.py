"""The secret-leak filter: finds credentials in text, masks them in prompts, cuts suggestions.

`SecretFilter.scan` runs the rules of `completion.secrets.rules` plus the exact values the
workspace's `.env`-type files hold (`add_known_secrets`). Prompts go through `mask`, line by
line with a cache (the text before the cursor barely changes between keystrokes); every
suggestion goes through `check_suggestion`, which sees it on its line, between the text
before and after the cursor, so `AWS_SECRET_ACCESS_KEY = "` before it counts as context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from completion.secrets.rules import RULES, Rule, is_placeholder, secret_span
from completion.secrets.workspace import WorkspaceSecrets

MASK = "<redacted>"
KNOWN_SECRET_RULE = "workspace_secret"
MASK_RULE = "masked_value"
# Known values shorter than this would match ordinary text ("admin", "8080").
MIN_KNOWN_SECRET_CHARS = 6
# A suggestion that stops early may still emit the start of a known secret: its first this
# many characters count as the secret.
KNOWN_PREFIX_CHARS = 12
_MASK_CACHE_LINES = 20_000
_PEM_END = re.compile(r"-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BLOCK = re.compile(
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    rule: str


@dataclass(frozen=True)
class CheckedSuggestion:
    """A suggestion after the filter: `rule` names what was found, empty when nothing was."""

    text: str
    rule: str = ""


class SecretFilter:
    def __init__(self, rules: Iterable[Rule] = RULES) -> None:
        self._rules = tuple(rules)
        self._known: set[str] = set()
        self._known_pattern: re.Pattern[str] | None = None
        self._mask_cache: dict[str, str] = {}
        self._workspaces: dict[Path, WorkspaceSecrets] = {}

    # -- what is secret ---------------------------------------------------------------------

    def add_known_secrets(self, values: Iterable[str]) -> int:
        """Values never to emit nor show the model, whatever their shape (from `.env` files);
        returns how many were new."""
        new = {
            v for v in values if len(v) >= MIN_KNOWN_SECRET_CHARS and not is_placeholder(v)
        } - self._known
        if new:
            self._known |= new
            needles = {v for v in self._known} | {
                v[:KNOWN_PREFIX_CHARS] for v in self._known if len(v) > KNOWN_PREFIX_CHARS
            }
            # Longest first, so a whole value wins over its prefix.
            ordered = sorted(needles, key=len, reverse=True)
            self._known_pattern = re.compile("|".join(re.escape(v) for v in ordered))
            self._mask_cache.clear()
        return len(new)

    def use_workspace(self, root: Path) -> int:
        """Know the secrets of the `.env`-type files under `root` (rescanned when stale);
        returns how many values were new."""
        root = Path(root)
        workspace = self._workspaces.get(root)
        if workspace is None:
            workspace = self._workspaces[root] = WorkspaceSecrets(root)
        if not workspace.stale():
            return 0
        return self.add_known_secrets(workspace.refresh())

    def scan(self, text: str) -> list[Finding]:
        """Every credential in `text`, by position; overlapping findings are merged."""
        found: list[Finding] = []
        lowered = ""
        for rule in self._rules:
            if rule.anchors:
                if rule.lowercase:
                    lowered = lowered or text.lower()
                    haystack = lowered
                else:
                    haystack = text
                if not any(map(haystack.__contains__, rule.anchors)):
                    continue
            found.extend(_matches(rule, text))
        if self._known_pattern is not None:
            found.extend(
                Finding(m.start(), m.end(), KNOWN_SECRET_RULE)
                for m in self._known_pattern.finditer(text)
            )
        return _merged(found)

    # -- prompts ----------------------------------------------------------------------------

    def mask(self, text: str) -> str:
        """`text` with every credential replaced by MASK (a private key block entirely)."""
        if "PRIVATE KEY" in text:
            end = _PEM_END.search(text)
            begin = text.find("-----BEGIN")
            if end is not None and (begin < 0 or end.start() < begin):
                # The text starts inside a key block whose first line was cut away.
                text = MASK + text[end.end() :]
            text = _PEM_BLOCK.sub(MASK, text)
        lines = text.split("\n")
        cache = self._mask_cache
        if len(cache) > _MASK_CACHE_LINES:
            cache.clear()
        for index, line in enumerate(lines):
            masked = cache.get(line)
            if masked is None:
                masked = cache[line] = self._mask_line(line)
            lines[index] = masked
        return "\n".join(lines)

    def _mask_line(self, line: str) -> str:
        for finding in reversed(self.scan(line)):
            line = line[: finding.start] + MASK + line[finding.end :]
        return line

    # -- suggestions ------------------------------------------------------------------------

    def check_suggestion(
        self, text: str, line_prefix: str = "", line_suffix: str = ""
    ) -> CheckedSuggestion:
        """The suggestion without its secret: cut at the start of the line that holds one,
        or dropped when that is the first line (half a line ending before a key, such as
        `api_key = "`, is no suggestion)."""
        if not text:
            return CheckedSuggestion(text)
        offset = len(line_prefix)
        findings = [
            f
            for f in self.scan(line_prefix + text + line_suffix)
            if f.end > offset and f.start < offset + len(text)
        ]
        # The model copying a masked value from its prompt: nothing to suggest there either.
        mask_at = text.find(MASK)
        if mask_at >= 0:
            findings.append(Finding(offset + mask_at, offset + mask_at + len(MASK), MASK_RULE))
            findings.sort(key=lambda f: f.start)
        if not findings:
            return CheckedSuggestion(text)
        first = findings[0]
        line_start = text.rfind("\n", 0, max(first.start - offset, 0))
        kept = text[:line_start].rstrip() if line_start > 0 else ""
        return CheckedSuggestion(kept if kept.strip() else "", first.rule)


def _matches(rule: Rule, text: str) -> list[Finding]:
    """A rule's findings; after a match the rule rejects, the search goes on from inside it
    (`password: str = "..."` first matches `password: str`)."""
    found = []
    if rule.finder is not None:
        for candidate in rule.finder(text):
            if rule.validate is None or rule.validate(candidate):
                start, end = secret_span(candidate)
                if start < end:
                    found.append(Finding(start, end, rule.name))
        return found
    position = 0
    pattern = rule.pattern
    while True:
        match = pattern.search(text, position)
        if match is None:
            return found
        if rule.validate is None or rule.validate(match):
            start, end = secret_span(match)
            if start < end:
                found.append(Finding(start, end, rule.name))
            position = max(match.end(), match.start() + 1)
        else:
            name_end = match.end("name") if "name" in pattern.groupindex else -1
            position = max(name_end, match.start() + 1)


def _merged(found: list[Finding]) -> list[Finding]:
    if len(found) < 2:
        return found
    found.sort(key=lambda f: (f.start, -f.end))
    merged = [found[0]]
    for finding in found[1:]:
        last = merged[-1]
        if finding.start < last.end:
            if finding.end > last.end:
                merged[-1] = Finding(last.start, finding.end, last.rule)
        else:
            merged.append(finding)
    return merged
