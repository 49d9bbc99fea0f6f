"""A nexttoken server whose pipeline is scripted, for fast and deterministic protocol tests.

Run as `python tests/lsp_server/scripted_server.py --model DIR`. The scripted pipeline answers
with a description of the request it received, `<line:character|path|language|chars|max>`, so a
test can check what the server sent. Text before the cursor decides what it does:

- ends with "WAIT": decodes until cancelled (a generation that never finishes on its own);
- ends with "FAIL": raises, as a pipeline bug would;
- ends with "WORD": the suggestion replaces that word (a range that starts before the cursor).

Model folders: one holding a file `broken` fails to load; one holding `hold` loads only once a
file `release` appears in it, so a test decides when loading ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from completion.pipeline import CompletionCancelled
from completion.positions import offset_at
from completion.request import CompletionRequest, CompletionResult, CompletionStats, Position
from lsp_server.server import create_server
from lsp_server.settings import ServerSettings
from onnx_models.engine import ModelLoadError

# A generation that ignores cancellation ends on its own after this, so a broken server fails a
# test instead of hanging it.
DECODE_LIMIT_S = 30.0


class ScriptedPipeline:
    def complete(
        self, request: CompletionRequest, cancelled: Callable[[], bool] = lambda: False
    ) -> CompletionResult:
        cursor = offset_at(request.text, request.position)
        assert cursor is not None, "the server sent a cursor outside its text"
        before = request.text[:cursor]
        position = request.position
        start = position
        if before.endswith("WAIT"):
            deadline = time.monotonic() + DECODE_LIMIT_S
            while time.monotonic() < deadline:
                if cancelled():
                    raise CompletionCancelled()
                time.sleep(0.002)  # one "decode step"
            return CompletionResult("finished without being cancelled", position, position)
        if before.endswith("FAIL"):
            raise RuntimeError("scripted pipeline failure")
        if before.endswith("WORD"):
            start = Position(position.line, position.character - len("WORD"))
        text = (
            f"<{position.line}:{position.character}|{request.path}|{request.language_id}"
            f"|{len(request.text)}|{request.max_new_tokens}>"
        )
        stats = CompletionStats(prompt_tokens=len(request.text), generated_tokens=3, total_ms=1.0)
        return CompletionResult(text, start, position, stats)


def load_scripted(model_dir: str) -> ScriptedPipeline:
    folder = Path(model_dir)
    if (folder / "broken").exists():
        raise ModelLoadError(f"{folder / 'model.onnx'} is not a valid ONNX graph")
    if (folder / "hold").exists():
        deadline = time.monotonic() + DECODE_LIMIT_S
        while not (folder / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return ScriptedPipeline()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    create_server(ServerSettings(model_dir=args.model), load_scripted).start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
