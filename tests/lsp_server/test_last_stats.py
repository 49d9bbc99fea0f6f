"""`nexttoken/lastStats`: the server's record of its recent generations, over stdio, with the
scripted pipeline (scripted_server.py) so the stats are known in advance."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from lsp_server.bench.client import plain_json

SERVER = [str(Path(__file__).with_name("scripted_server.py"))]
LAST_STATS = "nexttoken/lastStats"


async def last_stats(client) -> dict:
    return plain_json(await client.protocol.send_request_async(LAST_STATS, {}))


async def test_each_generation_is_recorded_with_its_position_and_stats(
    start_client, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    client = await start_client([*SERVER, "--model", str(model)], workspace=tmp_path)
    text = "import os\nx = os.pa"
    uri = client.open_document(tmp_path / "main.py", text)
    await client.inline(uri, 1, 9)
    await client.inline(uri, 0, 9)

    report = await last_stats(client)
    first, second = report["completions"]
    assert (first["uri"], first["line"], first["character"]) == (uri, 1, 9)
    assert (second["line"], second["character"]) == (0, 9)
    assert second["sequence"] == first["sequence"] + 1
    assert first["source"] == "model"
    # The scripted pipeline reports the prompt's length in characters and three tokens.
    assert first["stats"]["prompt_tokens"] == len(text)
    assert first["stats"]["generated_tokens"] == 3
    assert report["model"] is not None  # loaded; the scripted backend has no manifest to name


async def test_a_cancelled_generation_leaves_no_record(start_client, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    client = await start_client([*SERVER, "--model", str(model)], workspace=tmp_path)
    uri = client.open_document(tmp_path / "a.py", "x = WAIT\ny = ")
    pending = client.send_inline(uri, 0, 8, msg_id="never-finishes")
    client.cancel("never-finishes")
    with pytest.raises(JsonRpcException):
        await pending
    await client.inline(uri, 1, 4)
    [record] = (await last_stats(client))["completions"]
    assert (record["line"], record["character"]) == (1, 4)
