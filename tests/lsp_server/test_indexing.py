"""The workspace index behind a real server over stdio: it starts with the workspace, shows
its work as $/progress, reads open documents' unsaved text, feeds repository context into
completion requests, and goes away when the settings say so."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

SERVER = [str(Path(__file__).with_name("context_server.py"))]
WAIT_S = 30.0

MODEL = (
    "class Cart:\n    def add(self, item):\n        pass\n\n\n"
    "def make_cart() -> Cart:\n    return Cart()\n"
)
CHECKOUT = "from .model import make_cart\n\n\ndef checkout():\n    cart = make_cart()\n    cart."


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "shop_project"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "model.py").write_text(MODEL)
    (root / "shop" / "checkout.py").write_text(CHECKOUT)
    return root


async def answer_until(client, uri: str, line: int, character: int, wanted: str) -> str:
    """Ask again until the answer contains `wanted`: the index catches up in the background,
    and each answer shows what it held at that moment."""
    deadline = time.monotonic() + WAIT_S
    while True:
        [item] = await client.inline(uri, line, character)
        if wanted in item.insert_text or time.monotonic() > deadline:
            return item.insert_text
        await client.round_trip()


async def index_progress(client) -> list:
    """The index's progress reports once they have ended. The server sends `begin` only after
    the client has answered its token request, so an answer may overtake them: ask again until
    the end is here."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = [
            reports
            for token, reports in client.progress_reports.items()
            if str(token).startswith("nexttoken/index/")
        ]
        assert len(found) <= 1, found  # one first pass, one token
        if found and any(isinstance(r, types.WorkDoneProgressEnd) for r in found[0]):
            return found[0]
        assert time.monotonic() < deadline, f"no end of the index's progress: {found}"
        await client.round_trip()


async def test_the_index_feeds_context_and_reports_progress(
    start_client, workspace: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    client = await start_client(
        SERVER, workspace=workspace, env={"NEXTTOKEN_CACHE_DIR": str(cache)}
    )
    uri = client.open_document(workspace / "shop" / "checkout.py", CHECKOUT)
    # Wait for both: an answer while the first pass has stored the files but not yet
    # published their paths has Cart's members but cannot resolve the import of make_cart.
    answer = await answer_until(client, uri, 5, 9, "shop/model.py:0:3 shop/model.py:5:2")
    # `cart.` after `cart = make_cart()`: the members of Cart (layer 3), and make_cart itself.
    assert answer == "shop/model.py:0:3 shop/model.py:5:2|shop_project"
    reports = await index_progress(client)
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert reports[0].title == "nexttoken: indexing"
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert [p.name for p in (cache / "index").glob("*.sqlite3")] != []


async def test_unsaved_text_of_open_documents_wins(start_client, workspace: Path) -> None:
    client = await start_client(SERVER, workspace=workspace)
    # model.py as edited in the editor, not saved: make_cart moved to line 9.
    edited = "# edited\n\n\n\n" + MODEL
    client.open_document(workspace / "shop" / "model.py", edited)
    uri = client.open_document(workspace / "shop" / "checkout.py", CHECKOUT)
    answer = await answer_until(client, uri, 5, 9, "shop/model.py:9:2")
    assert "shop/model.py:9:2" in answer
    # Closed without saving: back to the file on disk.
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(
                uri=(workspace / "shop" / "model.py").as_uri()
            )
        )
    )
    answer = await answer_until(client, uri, 5, 9, "shop/model.py:5:2")
    assert "shop/model.py:5:2" in answer


async def test_no_index_when_the_settings_say_so(start_client, workspace: Path) -> None:
    client = await start_client(
        SERVER, workspace=workspace, initialization_options={"index": False}
    )
    uri = client.open_document(workspace / "shop" / "checkout.py", CHECKOUT)
    [item] = await client.inline(uri, 5, 9)
    assert item.insert_text == "<none>|"
    await client.round_trip()
    assert not any(str(token).startswith("nexttoken/index/") for token in client.progress_reports)
    # Switched on later, through the workspace settings.
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nexttoken": {"index": True}})
    )
    answer = await answer_until(client, uri, 5, 9, "shop/model.py:0:3")
    assert answer.startswith("shop/model.py:0:3")


async def test_a_bad_exclude_setting_is_reported_and_ignored(start_client, workspace: Path) -> None:
    client = await start_client(
        SERVER, workspace=workspace, initialization_options={"indexExclude": "shop/"}
    )
    await client.round_trip()
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert any("indexExclude" in message for message in warnings)
    uri = client.open_document(workspace / "shop" / "checkout.py", CHECKOUT)
    answer = await answer_until(client, uri, 5, 9, "shop/model.py:0:3")
    assert answer.startswith("shop/model.py:0:3")
    await asyncio.sleep(0)  # hand the loop over once so pending notifications are read


async def index_status(client, params: dict) -> dict:
    return await client.protocol.send_request_async("nexttoken/indexStatus", params)


async def test_index_status_waits_for_the_first_pass(start_client, workspace: Path) -> None:
    client = await start_client(SERVER, workspace=workspace)
    # Two waits at once: they take turns, and both end when the first pass does.
    status, other = await asyncio.gather(
        index_status(client, {"waitMs": WAIT_S * 1000}),
        index_status(client, {"waitMs": WAIT_S * 1000}),
    )
    assert (status.state, status.files) == (other.state, other.files) == ("ready", 3)
    [folder] = status.roots
    assert (folder.state, Path(folder.root), folder.failure) == ("ready", workspace, None)
    # Ready means complete: the first answer already has everything, with no retry.
    uri = client.open_document(workspace / "shop" / "checkout.py", CHECKOUT)
    [item] = await client.inline(uri, 5, 9)
    assert item.insert_text == "shop/model.py:0:3 shop/model.py:5:2|shop_project"


async def test_index_status_off_and_bad_wait(start_client, workspace: Path) -> None:
    client = await start_client(
        SERVER, workspace=workspace, initialization_options={"index": False}
    )
    status = await index_status(client, {})
    assert status.state == "off"
    for bad in (-1, "soon", True):
        with pytest.raises(JsonRpcInvalidParams, match="waitMs"):
            await index_status(client, {"waitMs": bad})
    # The server goes on serving.
    assert (await index_status(client, {"waitMs": 0})).state == "off"


LEDGER = (
    "class Ledger:\n    def post(self, entry):\n        pass\n\n\n"
    "def open_ledger() -> Ledger:\n    return Ledger()\n"
)
INVOICE = (
    "from .ledger import open_ledger\n\n\ndef bill():\n    ledger = open_ledger()\n    ledger."
)


def folders_changed(client, added: list[Path], removed: list[Path]) -> None:
    def folders(paths: list[Path]) -> list[types.WorkspaceFolder]:
        return [types.WorkspaceFolder(uri=p.as_uri(), name=p.name) for p in paths]

    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=folders(added), removed=folders(removed))
        )
    )


async def test_each_workspace_folder_has_its_own_index(
    start_client, workspace: Path, tmp_path: Path
) -> None:
    billing = tmp_path / "billing_project"
    (billing / "billing").mkdir(parents=True)
    (billing / "billing" / "__init__.py").write_text("")
    (billing / "billing" / "ledger.py").write_text(LEDGER)
    (billing / "billing" / "invoice.py").write_text(INVOICE)
    capabilities: list[types.ServerCapabilities] = []
    client = await start_client(
        SERVER,
        workspace=workspace,
        more_folders=[billing],
        on_initialized=lambda result: capabilities.append(result.capabilities),
    )
    # The client is told that folder changes are wanted.
    folders = capabilities[0].workspace.workspace_folders
    assert (folders.supported, folders.change_notifications) == (True, True)
    status = await index_status(client, {"waitMs": WAIT_S * 1000})
    assert (status.state, status.files) == ("ready", 6)
    assert sorted(Path(f.root) for f in status.roots) == sorted([workspace, billing])

    # Each document gets context from its own folder, under its own folder's name.
    shop_uri = client.open_document(workspace / "shop" / "checkout.py", CHECKOUT)
    billing_uri = client.open_document(billing / "billing" / "invoice.py", INVOICE)
    [item] = await client.inline(billing_uri, 5, 11)
    assert item.insert_text == "billing/ledger.py:0:3 billing/ledger.py:5:2|billing_project"
    [item] = await client.inline(shop_uri, 5, 9)
    assert item.insert_text == "shop/model.py:0:3 shop/model.py:5:2|shop_project"

    # A folder removed takes its index along; one added inside another needs none of its own.
    folders_changed(client, added=[workspace / "shop"], removed=[billing])
    status = await index_status(client, {"waitMs": WAIT_S * 1000})
    assert [Path(f.root) for f in status.roots] == [workspace]
    [item] = await client.inline(billing_uri, 5, 11)
    assert item.insert_text == "<none>|"
    [item] = await client.inline(shop_uri, 5, 9)
    assert item.insert_text == "shop/model.py:0:3 shop/model.py:5:2|shop_project"

    # Added back: indexed again.
    folders_changed(client, added=[billing], removed=[])
    status = await index_status(client, {"waitMs": WAIT_S * 1000})
    assert (status.state, len(status.roots)) == ("ready", 2)
    [item] = await client.inline(billing_uri, 5, 11)
    assert item.insert_text == "billing/ledger.py:0:3 billing/ledger.py:5:2|billing_project"
