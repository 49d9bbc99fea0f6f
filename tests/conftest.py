"""Shared fixtures: the real default model, built once per test run into the user cache; and
an LSP client (pytest-lsp) driving a server subprocess over stdio, as an editor would.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcMethodNotFound
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import register_lsp_features

from onnx_models.graph_builder import GraphOptions
from onnx_models.install import DEFAULT_GRAPH, ensure_model
from onnx_models.paths import downloads_dir
from onnx_models.registry import DEFAULT_MODEL, KNOWN_MODELS


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The built default model (ONNX graph, tokenizer.json, manifest)."""
    return ensure_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def fp32_model_dir() -> Path:
    """The default model with float32 weights and activations: the reference for parity."""
    return ensure_model(DEFAULT_MODEL, options=GraphOptions(weights="fp32"))


@pytest.fixture(scope="session")
def step_model_dir() -> Path:
    """The default model with a step graph whatever this CPU's timing would choose."""
    return ensure_model(DEFAULT_MODEL, options=replace(DEFAULT_GRAPH, step_timed=False))


@pytest.fixture(scope="session")
def gguf_path(model_dir: Path) -> Path:
    """The default model's GGUF file, as downloaded and verified by the installer."""
    path = downloads_dir() / Path(KNOWN_MODELS[DEFAULT_MODEL].source.member).name
    assert path.is_file(), f"installer left no GGUF at {path}"
    return path


# -- LSP clients (tests/lsp_server, tests/e2e) --------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent


class EditorClient(LanguageClient):
    """pytest-lsp's client plus the few calls the LSP tests make, written once."""

    def open_document(self, path: Path, text: str, language_id: str = "python") -> str:
        uri = path.as_uri()
        item = types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text)
        self.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
        return uri

    async def inline(self, uri: str, line: int, character: int) -> list[types.InlineCompletionItem]:
        result = await self.text_document_inline_completion_async(
            inline_params(uri, line, character)
        )
        assert isinstance(result, types.InlineCompletionList)
        return list(result.items)

    def send_inline(self, uri: str, line: int, character: int, msg_id: str) -> asyncio.Future:
        """An inline completion request with an id the test knows, so it can cancel it. Sent
        at once: pytest-lsp's `*_async` methods send only when first awaited."""
        sent = self.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            inline_params(uri, line, character),
            msg_id=msg_id,
        )
        return asyncio.wrap_future(sent)

    def cancel(self, msg_id: str) -> None:
        self.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))

    async def round_trip(self) -> None:
        """A request the server answers at once: when the answer is here, the server has read
        everything sent before it."""
        with pytest.raises(JsonRpcMethodNotFound):
            await self.protocol.send_request_async("nexttoken/noSuchMethod", {})


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )


def capabilities_of(client: str, *, inline_completion: bool) -> types.ClientCapabilities:
    """A real editor's capabilities, with inline completion added or not."""
    capabilities = client_capabilities(client)
    if inline_completion:
        text_document = capabilities.text_document or types.TextDocumentClientCapabilities()
        text_document.inline_completion = types.InlineCompletionClientCapabilities()
        capabilities.text_document = text_document
    return capabilities


class ClientLauncher:
    """Starts `python <server_args>` in the checkout and initializes it like `client` would."""

    def __init__(self) -> None:
        self.clients: list[EditorClient] = []

    async def __call__(
        self,
        server_args: list[str],
        *,
        workspace: Path,
        initialization_options: Any = None,
        client: str = "visual-studio-code",
        inline_completion: bool = True,
        env: dict[str, str] | None = None,
        on_initialized: Callable[[types.InitializeResult], object] | None = None,
        more_folders: Sequence[Path] = (),
    ) -> EditorClient:
        editor = EditorClient(converter_factory=default_converter)
        register_lsp_features(editor)
        server_env = {**os.environ, **(env or {})}
        # The checkout need not be installed: the server imports its packages from here.
        server_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), server_env.get("PYTHONPATH")])
        )
        await editor.start_io(sys.executable, *server_args, env=server_env, cwd=REPO_ROOT)
        self.clients.append(editor)
        result = await editor.initialize_session(
            types.InitializeParams(
                capabilities=capabilities_of(client, inline_completion=inline_completion),
                root_uri=workspace.as_uri(),
                workspace_folders=[
                    types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)
                    for folder in (workspace, *more_folders)
                ],
                initialization_options=initialization_options,
            )
        )
        if on_initialized is not None:
            on_initialized(result)
        return editor

    async def close(self) -> None:
        """Shuts every server down; one that stops answering fails the test."""
        for editor in self.clients:
            await editor.shutdown_session()
            await editor.stop()


@pytest_asyncio.fixture
async def start_client() -> AsyncIterator[ClientLauncher]:
    launcher = ClientLauncher()
    yield launcher
    await launcher.close()
