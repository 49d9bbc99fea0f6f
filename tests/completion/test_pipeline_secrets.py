"""The secret-leak filter in the pipeline, with the real model: what the prompt holds and what
a suggestion may say, in a workspace with a `.env` and a key file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from completion.cursor import split_at
from completion.languages import language_for
from completion.pipeline import CompletionPipeline, finish_suggestion
from completion.request import CompletionRequest, Position
from completion.secrets import MASK, SecretFilter
from completion.secrets.checksums import crc32_base62
from completion.syntax import SyntaxWindow, cursor_mode
from onnx_models.engine import Engine

# Credentials are put together at run time so that no scanner mistakes this file for a leak.
_BODY = "i0VpEBOWfbZAVaBSo63bbH6xnAbnBE"
GITHUB_TOKEN = "gh" + "p_" + _BODY + crc32_base62(_BODY)  # a valid checksum
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzq8Hd2Lk9T"
AWS_KEY_ID = "AK" + "IAZ3MSJV4WWNKEQ7XB"
PEM_BEGIN = "-----BEGIN " + "PRIVATE KEY-----"
# Shaped like nothing a rule knows: only the workspace's .env says it is secret.
ENV_PASSWORD = "correcthorsebatterystaple"
KEY_LINE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"

SETTINGS = f'''"""Deployment settings."""

AWS_REGION = "eu-west-1"
AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
GITHUB_TOKEN = "{GITHUB_TOKEN}"
DB_PASSWORD = "{ENV_PASSWORD}"
SIGNING_KEY = """{PEM_BEGIN}
{KEY_LINE}
-----END PRIVATE KEY-----"""
BACKUP_SECRET_ACCESS_KEY = "'''


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine.load(model_dir)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / ".env").write_text(f"DB_PASSWORD={ENV_PASSWORD}\nDEBUG=1\n")
    (tmp_path / "server.key").write_text(f"{PEM_BEGIN}\n{KEY_LINE}\n-----END PRIVATE KEY-----\n")
    return tmp_path


def logged_prompts(pipeline: CompletionPipeline) -> list[str]:
    lines = Path(pipeline.prompt_log).read_text().splitlines()
    return [json.loads(line)["prompt"] for line in lines]


def end_of(text: str) -> Position:
    return Position(text.count("\n"), len(text) - text.rfind("\n") - 1)


def test_prompt_holds_no_secret_and_the_suggestion_none(
    engine: Engine, workspace: Path, tmp_path: Path
) -> None:
    pipeline = CompletionPipeline(engine, secrets=SecretFilter())
    pipeline.prompt_log = str(tmp_path / "prompts.jsonl")
    request = CompletionRequest(
        SETTINGS, end_of(SETTINGS), path="settings.py", workspace=str(workspace)
    )
    result = pipeline.complete(request)
    [prompt] = logged_prompts(pipeline)
    for value in (GITHUB_TOKEN, AWS_SECRET, ENV_PASSWORD, KEY_LINE):
        assert value not in prompt
    assert prompt.count(MASK) == 5  # the four, and the AWS key id
    line = SETTINGS.rsplit("\n", 1)[-1] + result.insert_text
    assert SecretFilter().scan(line) == []
    assert AWS_SECRET[:12] not in result.insert_text


def test_without_the_workspace_an_unknown_shape_reaches_the_prompt(
    engine: Engine, tmp_path: Path
) -> None:
    # The same request without `workspace`: the .env value is not known, so it is not masked
    # (this is what the workspace scan adds).
    pipeline = CompletionPipeline(engine, secrets=SecretFilter())
    pipeline.prompt_log = str(tmp_path / "prompts.jsonl")
    pipeline.complete(CompletionRequest(SETTINGS, end_of(SETTINGS), path="settings.py"))
    [prompt] = logged_prompts(pipeline)
    assert ENV_PASSWORD in prompt and GITHUB_TOKEN not in prompt


def test_secret_files_get_no_suggestion(engine: Engine) -> None:
    pipeline = CompletionPipeline(engine)
    for path in (".env", "deploy/.env.production", "certs/server.pem", "id_rsa"):
        result = pipeline.complete(CompletionRequest("API_KEY=", Position(0, 8), path=path))
        assert (result.insert_text, result.stats.mode_reason) == ("", "secret_file")
        assert result.stats.generated_tokens == 0


def test_typing_a_secret_gets_no_suggestion(engine: Engine) -> None:
    text = f'token = "{GITHUB_TOKEN}'
    result = CompletionPipeline(engine).complete(CompletionRequest(text, end_of(text)))
    assert (result.insert_text, result.stats.mode_reason) == ("", "secret_at_cursor")


def test_a_suggested_secret_is_cut_at_its_line() -> None:
    # Made-up model output: the filter runs on it exactly as on the model's.
    text = "def connect():\n    "
    ctx = split_at(text, end_of(text))
    python = language_for("python")
    window = SyntaxWindow.around(ctx)
    cursor = cursor_mode(python, ctx, window=window)
    output = f'session = Session()\n    session.token = "{GITHUB_TOKEN}"\n    return session'
    suggestion = finish_suggestion(output, ctx, cursor, python, window, secrets=SecretFilter())
    assert (suggestion.text, suggestion.dropped) == ("session = Session()", "secret:github_token")
