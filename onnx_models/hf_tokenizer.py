"""Write a Hugging Face checkpoint's tokenizer.json into a model folder.

It is copied as is, but for one step: SentencePiece-style decoders (Llama 2, CodeLlama) end
with a Strip that drops the leading space of a decoded text, which is right for a whole
document but wrong for a completion, a fragment that often starts with a space ("▁return").
The engine and the completion pipeline only ever decode fragments, so that step is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path


def _drops_leading_space(step: dict) -> bool:
    return step.get("type") == "Strip" and step.get("start", 0) > 0 and step.get("stop", 0) == 0


def write_tokenizer(source: Path, dest: Path) -> None:
    data = json.loads(source.read_text(encoding="utf-8"))
    decoder = data.get("decoder") or {}
    steps = decoder.get("decoders") if decoder.get("type") == "Sequence" else None
    if steps and any(_drops_leading_space(step) for step in steps):
        decoder["decoders"] = [step for step in steps if not _drops_leading_space(step)]
        dest.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    else:
        dest.write_bytes(source.read_bytes())
