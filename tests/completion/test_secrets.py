"""The secret-leak filter: rules, allowlists, masking, suggestion cuts, workspace secrets."""

from __future__ import annotations

import os
import random
import string
from pathlib import Path

import pytest

from completion.secrets import MASK, SecretFilter, WorkspaceSecrets, env_values, is_secret_file
from completion.secrets.checksums import crc32_base62, has_valid_crc32_suffix, looks_random
from completion.secrets.rules import is_literal_credential, is_secret_name

ALNUM = string.ascii_letters + string.digits
rng = random.Random(7)


def chars(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def joined(*parts: str) -> str:
    """Credentials in this file are put together at run time, so that no secret scanner
    mistakes the test source for a leak."""
    return "".join(parts)


def github_token(prefix: str = "ghp_") -> str:
    body = chars(ALNUM, 30)
    return prefix + body + crc32_base62(body)


@pytest.fixture
def secrets() -> SecretFilter:
    return SecretFilter()


def rules_found(secrets: SecretFilter, text: str) -> list[str]:
    return [finding.rule for finding in secrets.scan(text)]


def test_github_checksum() -> None:
    token = github_token()
    assert has_valid_crc32_suffix(token)
    broken = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert not has_valid_crc32_suffix(broken)


def test_github_tokens_need_their_checksum(secrets: SecretFilter) -> None:
    token = github_token("ghs_")
    assert rules_found(secrets, f'client = Github("{token}")') == ["github_token"]
    lookalike = token[:-6] + "abcdef"
    assert rules_found(secrets, f'client = Github("{lookalike}")') == []


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (joined("key_id = 'AKIA", "Z3MSJV4WWNKEQ7XB'"), "aws_access_key_id"),
        (
            joined('aws_secret_access_key = "wJalrXUtnFEMI/', 'K7MDENG/bPxRfiCYzq8Hd2Lk9T"'),
            "aws_secret_access_key",
        ),
        (
            joined(
                "url: https://hooks.slack.com/services/T0A1B2C3D/",
                "B0123456789/a1B2c3D4e5F6g7H8i9J0k1L2",
            ),
            "slack_webhook",
        ),
        (joined("stripe.api_key = 'sk_", "live_4Xk9Qm2Lp7Vn3Bz8Rt6Yw1Hc'"), "stripe_secret_key"),
        (joined("const maps = 'AI", "zaSyC8Hq4Lm2Np9Vx3Kb7Rt1Wz6Yd0Fg5Js8Q'"), "google_api_key"),
        (
            joined(
                "sendgrid = 'SG.",
                "aB3dE6gH9jK2mN5pQ8sT1v.wX4yZ7bC0eF3hJ6kM9nP2qS5tV8xA1dG4jL7oR0uW3z'",
            ),
            "sendgrid_api_key",
        ),
        (
            joined('"-----BEGIN OPENSSH ', 'PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA"'),
            "private_key_block",
        ),
        ('DATABASE_URL = "postgres://app:Xq7%23mP2v@db.internal/app"', "url_password"),
        ("curl -H 'Authorization: Bearer 9fK2mQx7Lp3Vb8Nt4Rz6Yw1Hc5Jd0'", "authorization_header"),
        ("DB_PASSWORD=Sup3r-S3cure!x", "secret_assignment"),
        ("  client_secret: Zx81kLm2QpR7vB4n", "secret_assignment"),
        ('password: str = "Tr0ub4dor&3"', "secret_assignment"),
        ('<add key="ApiKey" value="x" /><password>Qw3rty!9zX</password>', "xml_secret_element"),
        ('client = Pusher("APP123", "k8Fj2Lm9Qx4Vb7Nt1Rz3Yw6Hc0Jd5Pq")', "high_entropy_string"),
    ],
)
def test_rules(secrets: SecretFilter, text: str, rule: str) -> None:
    assert rule in rules_found(secrets, text)


@pytest.mark.parametrize(
    "text",
    [
        'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"',  # AWS documentation
        'api_key = "your-api-key-here"',
        'token = "${GITHUB_TOKEN}"',
        'password = os.environ["DB_PASSWORD"]',
        "password = get_password()",
        'headers = {"Authorization": f"Bearer {token}"}',
        'commit = "8d3f2a1b9c7e6d5f4a3b2c1d0e9f8a7b6c5d4e3f"',
        'request_id = "3f1c2b7e-4a5d-4e6f-8a9b-0c1d2e3f4a5b"',
        'stripe_pk = "pk_live_51HqLm2Np9Vx3Kb7Rt1Wz6Yd"',
        'token_type = "Bearer"',
        'TOKEN_URL = "https://oauth2.googleapis.com/token"',
        'password_hash = "$2b$12$KIXQJ9eZ1pY2bB5s6hGq8uJ0yV3cN7mA4dL2wE9rT1xZ5fH8kO6iS"',
        'icon = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9h"',
        'REDIS_URL = "redis://localhost:6379/0"',
        "-----BEGIN PUBLIC KEY-----",
        'model = AutoModel.from_pretrained("HuggingFaceM4/Idefics3-8B-Llama3")',
        '"forgot_password": "Forgot your password?"',
    ],
)
def test_allowlisted(secrets: SecretFilter, text: str) -> None:
    assert secrets.scan(text) == []


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("DB_PASS", True),
        ("apiKey", True),
        ("client_secret", True),
        ("x-api-key", True),
        ("SECRET_KEY", True),
        ("token_url", False),
        ("password_min_length", False),
        ("publicKey", False),
        ("cache_key", False),
        ("forgot_password", False),
        ("token_ids_0", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_literal_credentials() -> None:
    assert is_literal_credential("Tr0ub4dor&3")
    for value in [
        "changeme",
        "read_write",
        "DJANGO_SECRET_KEY",
        "./token.json",
        "3600",
        "Passwort",
    ]:
        assert not is_literal_credential(value), value


def test_looks_random() -> None:
    assert looks_random(chars(ALNUM, 32))
    assert not looks_random("x" * 32)
    assert not looks_random("abcdefghijklmnopqrstuvwxyz012345")


def test_known_secrets_match_whatever_their_shape(secrets: SecretFilter) -> None:
    assert secrets.add_known_secrets(["hunter2-but-longer", "ok", "changeme"]) == 1
    assert rules_found(secrets, "x = 'hunter2-but-longer'") == ["workspace_secret"]
    # A suggestion that stops early still may not print the start of one.
    assert rules_found(secrets, "x = 'hunter2-but-l") == ["workspace_secret"]
    assert secrets.scan("hunter2") == []


def test_mask_replaces_values_and_private_key_blocks(secrets: SecretFilter) -> None:
    token = github_token()
    text = (
        f'GITHUB_TOKEN = "{token}"\nDEBUG = True\n'
        + joined("KEY = '''-----BEGIN RSA ", "PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4Hq\n")
        + "-----END RSA PRIVATE KEY-----'''\n"
    )
    masked = secrets.mask(text)
    assert token not in masked and "MIIEowIBAAKCAQEAx4Hq" not in masked
    assert masked.startswith(f'GITHUB_TOKEN = "{MASK}"\nDEBUG = True\n')
    assert secrets.mask(text) == masked  # cached lines give the same answer
    # A prompt that starts inside the key block, its first line cut away.
    cut = text[text.index("MIIEowIBAAKCAQEAx4Hq") :]
    assert secrets.mask(cut) == MASK + "'''\n"


def test_check_suggestion_drops_a_first_line_secret(secrets: SecretFilter) -> None:
    prefix = 'AWS_SECRET_ACCESS_KEY = "'
    aws_secret = joined("wJalrXUtnFEMI/", "K7MDENG/bPxRfiCYzq8Hd2Lk9T")
    checked = secrets.check_suggestion(aws_secret, prefix, '"')
    assert (checked.text, checked.rule) == ("", "aws_secret_access_key")


def test_check_suggestion_cuts_before_the_line_with_the_secret(secrets: SecretFilter) -> None:
    token = github_token()
    text = f'session = make_session()\n    session.auth = ("bot", "{token}")\n    return session'
    checked = secrets.check_suggestion(text, "    ")
    assert (checked.text, checked.rule) == ("session = make_session()", "github_token")
    copied = secrets.check_suggestion(f'{MASK}"', 'KEY = "')
    assert (copied.text, copied.rule) == ("", "masked_value")
    clean = secrets.check_suggestion("return session.get(url)", "    ")
    assert (clean.text, clean.rule) == ("return session.get(url)", "")


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True),
        ("config/.env.production", True),
        ("deploy/prod.env", True),
        ("certs/server.pem", True),
        ("id_rsa", True),
        ("id_ed25519.pub", True),
        ("keys/service.key", True),
        ("gcp/credentials-prod.json", True),
        ("cert.pfx", True),
        ("settings.py", False),
        ("environment.ts", False),
        ("keyboard.c", False),
    ],
)
def test_secret_files(path: str, secret: bool) -> None:
    assert is_secret_file(path) is secret


def test_env_values() -> None:
    text = (
        "# comment\nexport DB_PASSWORD='short1'\nAPI_TOKEN=abc\nPORT=8080\nAPP_NAME=billing\n"
        "SESSION_SIGNING=Zq8xV2mL9pR4tB7n\nDATABASE_URL=postgres://u:P4ss%21w@db/app\n"
        "STRIPE_KEY=sk_test_your_key_here\nNOTE=plain words here # trailing\n"
    )
    assert env_values(text) == {
        "short1",
        "Zq8xV2mL9pR4tB7n",
        "P4ss%21w",
        "postgres://u:P4ss%21w@db/app",
    }


def test_workspace_secrets_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "svc").mkdir(parents=True)
    (root / ".env").write_text("DB_PASSWORD=Xq7mP2vLz9\n")
    (root / "svc" / ".env.local").write_text("API_KEY=Lm4Np8Qr2Ts6\n")
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / ".env").write_text("SKIPPED_TOKEN=Zz9Yy8Xx7Ww6\n")
    (root / "server.key").write_text(
        joined(
            "-----BEGIN ",
            "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
        )
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / ".env").write_text("OUTSIDE_SECRET=Oo1Pp2Qq3Rr4\n")
    os.symlink(outside / ".env", root / ".env.linked")
    os.symlink(outside, root / "linked_folder")
    workspace = WorkspaceSecrets(root)
    assert workspace.stale()
    values = workspace.refresh()
    assert values == {"Xq7mP2vLz9", "Lm4Np8Qr2Ts6", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}
    assert not workspace.stale()
    (root / ".env").write_text("DB_PASSWORD=Changed9Value\n")
    assert workspace.stale()


def test_filter_uses_a_workspace(tmp_path: Path, secrets: SecretFilter) -> None:
    (tmp_path / ".env").write_text("GREETING=helloworld\nDB_PASSWORD=correcthorse\n")
    assert secrets.use_workspace(tmp_path) == 1
    assert secrets.use_workspace(tmp_path) == 0  # fresh: not read again
    assert secrets.mask("x = 'correcthorse'") == f"x = '{MASK}'"
    assert secrets.mask("x = 'helloworld'") == "x = 'helloworld'"
