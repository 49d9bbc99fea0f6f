"""Shared fixtures: the real default model, built once per test run into the user cache; and
an LSP client (pytest-lsp) driving a server subprocess over stdio, as an editor would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, Protocol

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from onnx_models.install import ensure_model
from onnx_models.paths import downloads_dir
from onnx_models.registry import DEFAULT_MODEL, KNOWN_MODELS


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The built default model (ONNX graph, tokenizer.json, manifest)."""
    return ensure_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def gguf_path(model_dir: Path) -> Path:
    """The default model's GGUF file, as downloaded and verified by the installer."""
    path = downloads_dir() / Path(KNOWN_MODELS[DEFAULT_MODEL].source.member).name
    assert path.is_file(), f"installer left no GGUF at {path}"
    return path


# -- LSP clients (tests/lsp_server, tests/e2e) --------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent


class StartClient(Protocol):
    def __call__(
        self,
        server_args: list[str],
        *,
        workspace: Path,
        initialization_options: Any = None,
        client: str = "visual-studio-code",
        inline_completion: bool = True,
        env: dict[str, str] | None = None,
    ) -> Awaitable[LanguageClient]: ...


def capabilities_of(client: str, *, inline_completion: bool) -> types.ClientCapabilities:
    """A real editor's capabilities, with inline completion added or not."""
    capabilities = client_capabilities(client)
    if inline_completion:
        text_document = capabilities.text_document or types.TextDocumentClientCapabilities()
        text_document.inline_completion = types.InlineCompletionClientCapabilities()
        capabilities.text_document = text_document
    return capabilities


@pytest_asyncio.fixture
async def start_client() -> AsyncIterator[StartClient]:
    """Starts `python <server_args>` and initializes it; every client is shut down after the
    test, so a server that no longer answers `shutdown` fails the test too."""
    clients: list[LanguageClient] = []

    async def start(
        server_args: list[str],
        *,
        workspace: Path,
        initialization_options: Any = None,
        client: str = "visual-studio-code",
        inline_completion: bool = True,
        env: dict[str, str] | None = None,
    ) -> LanguageClient:
        lsp_client = make_test_lsp_client()
        server_env = {**os.environ, **(env or {})}
        # The checkout need not be installed: the server imports its packages from here.
        server_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), server_env.get("PYTHONPATH")])
        )
        await lsp_client.start_io(sys.executable, *server_args, env=server_env, cwd=REPO_ROOT)
        clients.append(lsp_client)
        await lsp_client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities_of(client, inline_completion=inline_completion),
                root_uri=workspace.as_uri(),
                workspace_folders=[
                    types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)
                ],
                initialization_options=initialization_options,
            )
        )
        return lsp_client

    yield start

    for lsp_client in clients:
        await lsp_client.shutdown_session()
        await lsp_client.stop()
