"""A nexttoken server whose pipeline answers with the repository context it was given, for
protocol tests of the workspace index (progress, open documents, settings).

Run as `python tests/lsp_server/context_server.py`. The answer lists the context snippets as
`path:start_line:layer` separated by spaces, then `|` and the repository's name, so a test sees
exactly what the server retrieved; "<none>" when there was no context.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from completion.request import CompletionRequest, CompletionResult, CompletionStats
from lsp_server.server import create_server
from lsp_server.settings import ServerSettings


class ContextEcho:
    def complete(
        self, request: CompletionRequest, cancelled: Callable[[], bool] = lambda: False
    ) -> CompletionResult:
        listed = " ".join(f"{s.path}:{s.start_line}:{s.layer}" for s in request.context)
        text = f"{listed or '<none>'}|{request.repo_name}"
        stats = CompletionStats(generated_tokens=1, total_ms=1.0)
        return CompletionResult(text, request.position, request.position, stats)


def main() -> int:
    create_server(ServerSettings(model_dir="echo"), lambda _: ContextEcho()).start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
