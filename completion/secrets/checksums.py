"""Checksums and randomness measures that tell a real credential from a lookalike.

GitHub's tokens (ghp_, gho_, ghu_, ghs_, ghr_) and npm's (npm_) end in six base62 characters
that encode the CRC32 of the 30 random characters before them; a typo, a made-up example or a
model's invention fails it. Entropy and character-class counts separate random strings from
words, identifiers and placeholders.
"""

from __future__ import annotations

import math
import re
import string
import zlib
from collections import Counter

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(number: int, width: int = 6) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 62)
        digits = BASE62[digit] + digits
    return digits.rjust(width, "0")


def crc32_base62(random_part: str) -> str:
    return base62(zlib.crc32(random_part.encode("ascii")))


def has_valid_crc32_suffix(token: str, prefix_length: int = 4) -> bool:
    """A `xxx_` + 30 random + 6 checksum token whose checksum matches."""
    body = token[prefix_length:]
    if len(body) != 36 or not body.isascii():
        return False
    return crc32_base62(body[:30]) == body[30:]


def shannon_entropy(text: str) -> float:
    """Bits per character of the text's own character distribution."""
    if not text:
        return 0.0
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in Counter(text).values())


def character_classes(text: str) -> int:
    """How many of lowercase, uppercase, digits and other characters the text uses."""
    return (
        any(c.islower() for c in text)
        + any(c.isupper() for c in text)
        + any(c.isdigit() for c in text)
        + any(not c.isalnum() for c in text)
    )


def looks_random(text: str, min_entropy: float = 3.0) -> bool:
    """Random enough for a generated credential: varied characters, no long runs of one
    character (xxxxxx) and no counting (123456, abcdef)."""
    if len(set(text)) < max(6, len(text) // 5):
        return False
    if shannon_entropy(text) < min_entropy:
        return False
    return _RUN.search(text) is None and _COUNTING.search(text) is None


_RUN = re.compile(r"(.)\1{5}")
_COUNTING = re.compile(
    "|".join(
        alphabet[i : i + 6]
        for alphabet in (string.digits, string.ascii_lowercase, string.ascii_uppercase)
        for i in range(len(alphabet) - 5)
    )
)
