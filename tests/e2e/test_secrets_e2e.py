"""End to end: no credential reaches the model or the editor.

An editor (pytest-lsp) talks to `python -m lsp_server serve` with the real default model, in a
workspace that holds a `.env` and a private key. The server appends every prompt it builds to
the file named by NEXTTOKEN_PROMPT_LOG, so the test reads exactly what the model was shown
(and whether the server named the workspace folder, which the `.env` check needs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from completion.pipeline import PROMPT_LOG_ENV
from completion.secrets import SecretFilter
from completion.secrets.checksums import crc32_base62

# Credentials are put together at run time so that no scanner mistakes this file for a leak.
_BODY = "Qm7PzR2xKc9VwT4nLb8YhJ3sDf6GaE"
GITHUB_TOKEN = "gh" + "p_" + _BODY + crc32_base62(_BODY)
AWS_KEY_ID = "AK" + "IAZ3MSJV4WWNKEQ7XB"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzq8Hd2Lk9T"
STRIPE_KEY = "sk_" + "live_4Xk9Qm2Lp7Vn3Bz8Rt6Yw1Hc"
# Shaped like nothing a rule knows: only the workspace's .env says it is a secret.
ENV_PASSWORD = "correcthorsebatterystaple"
KEY_LINE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
PEM_BEGIN = "-----BEGIN " + "PRIVATE KEY-----"

SETTINGS = f'''"""Deployment settings for the billing service."""

AWS_REGION = "eu-west-1"
AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
GITHUB_TOKEN = "{GITHUB_TOKEN}"
STRIPE_API_KEY = "{STRIPE_KEY}"
DB_PASSWORD = "{ENV_PASSWORD}"
SIGNING_KEY = """{PEM_BEGIN}
{KEY_LINE}
-----END PRIVATE KEY-----"""

BACKUP_REGION = "eu-central-1"
BACKUP_ACCESS_KEY_ID = "{AWS_KEY_ID}"
BACKUP_SECRET_ACCESS_KEY = "
'''
_CURSOR_LINE = 'BACKUP_SECRET_ACCESS_KEY = "'
CURSOR = (SETTINGS.split("\n").index(_CURSOR_LINE), len(_CURSOR_LINE))
VALUES = (GITHUB_TOKEN, AWS_KEY_ID, AWS_SECRET, STRIPE_KEY, ENV_PASSWORD, KEY_LINE)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "billing"
    root.mkdir()
    (root / ".env").write_text(
        f"DB_PASSWORD={ENV_PASSWORD}\nSTRIPE_API_KEY={STRIPE_KEY}\nDEBUG=false\n"
    )
    (root / "server.key").write_text(f"{PEM_BEGIN}\n{KEY_LINE}\n-----END PRIVATE KEY-----\n")
    return root


def serve(model_dir: Path) -> list[str]:
    return ["-m", "lsp_server", "serve", "--model", str(model_dir)]


async def test_no_secret_in_prompts_or_suggestions(
    start_client, workspace: Path, model_dir: Path, tmp_path: Path
) -> None:
    prompt_log = tmp_path / "prompts.jsonl"
    client = await start_client(
        serve(model_dir), workspace=workspace, env={PROMPT_LOG_ENV: str(prompt_log)}
    )
    uri = client.open_document(workspace / "settings.py", SETTINGS)
    items = await client.inline(uri, *CURSOR)

    # What the editor is offered: nothing a rule calls a secret, nothing from the neighbours.
    line = SETTINGS.split("\n")[CURSOR[0]]
    for item in items:
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        assert SecretFilter().scan(line + text) == [], text
        assert not any(value[:10] in text for value in VALUES), text

    # What the model was shown.
    records = [json.loads(entry) for entry in prompt_log.read_text().splitlines()]
    assert records, "the server built no prompt"
    for record in records:
        for value in (GITHUB_TOKEN, AWS_KEY_ID, AWS_SECRET, STRIPE_KEY, KEY_LINE):
            assert value not in record["prompt"]
        assert 'BACKUP_SECRET_ACCESS_KEY = "' in record["prompt"]  # the file's text, masked
    # The .env's value of no known shape is masked: the server names the workspace.
    for record in records:
        assert Path(record["workspace"]).resolve() == workspace.resolve()
        assert ENV_PASSWORD not in record["prompt"]


async def test_secret_files_get_no_suggestions(
    start_client, workspace: Path, model_dir: Path, tmp_path: Path
) -> None:
    prompt_log = tmp_path / "prompts.jsonl"
    client = await start_client(
        serve(model_dir), workspace=workspace, env={PROMPT_LOG_ENV: str(prompt_log)}
    )
    env_text = (workspace / ".env").read_text() + "NEW_TOKEN="
    uri = client.open_document(workspace / ".env", env_text, language_id="dotenv")
    items = await client.inline(uri, 3, len("NEW_TOKEN="))
    assert items == []
    # The request was served (a second request is answered as well) and no prompt was built.
    assert await client.inline(uri, 3, len("NEW_TOKEN=")) == []
    assert not prompt_log.exists() or prompt_log.read_text() == ""
