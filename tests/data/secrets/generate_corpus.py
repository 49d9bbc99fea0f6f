"""The labelled secret-leak corpus, built from a seed: the same samples on every run.

Each sample is a piece of code of about 200 characters, the size of a multi-line suggestion,
in one of a dozen languages and file formats. Positives hold one credential of a known kind,
generated in the provider's real format (GitHub and npm tokens carry a valid CRC32 checksum,
JWTs decode to JSON, Azure keys are base64 of the right length). Negatives are the hard cases a
filter must let through: placeholders, references to the environment, hashes and ids,
documented example keys, public keys, secret-sounding names holding no secret.

The corpus is built in memory by the tests and by benchmarks/secret_filter.py, never committed:
its credentials are well-formed, and a host's secret scanning would reject the push.
Run: python tests/data/secrets/generate_corpus.py [--out corpus.jsonl]   (counts; --out also
writes the samples, one JSON object a line, for reading)
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
import sys
import urllib.parse
import zlib
from collections.abc import Callable
from pathlib import Path

SEED = 20250611
PER_POSITIVE_KIND = 11
PER_NEGATIVE_KIND = 15

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class Corpus:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.samples: list[dict[str, object]] = []

    # -- random material ----------------------------------------------------------------------

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def pick(self, options: list[str] | tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def b64(self, n_bytes: int, url: bool = False) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(n_bytes))
        text = base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)
        return text.decode()

    def crc_token(self, prefix: str) -> str:
        body = self.chars(ALNUM, 30)
        checksum = zlib.crc32(body.encode())
        digits = ""
        while checksum:
            checksum, digit = divmod(checksum, 62)
            digits = BASE62[digit] + digits
        return prefix + body + digits.rjust(6, "0")

    def password(self) -> str:
        words = ["Winter", "Falcon", "Orbit", "Maple", "Quartz", "River", "Tango", "Nimbus"]
        style = self.rng.randrange(4)
        if style == 0:
            return f"{self.pick(words)}{self.rng.randrange(10, 9999)}{self.pick('!@#$%&*?')}"
        if style == 1:
            return self.chars(ALNUM + "!@#$%^&*-_", self.rng.randint(12, 20))
        if style == 2:
            a, b = self.pick(words).lower(), self.pick(words).lower()
            return f"{a}-{b}-{self.rng.randrange(10, 99)}{self.pick('!?#')}"
        return f"{self.chars(string.ascii_lowercase, 3)}{self.rng.randrange(100, 999)}" + (
            self.chars(string.ascii_uppercase, 3) + self.pick("!#%")
        )

    def jwt(self) -> str:
        def part(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        header = {"alg": self.pick(["HS256", "RS256"]), "typ": "JWT"}
        payload = {
            "sub": str(self.rng.randrange(10**6, 10**9)),
            "name": self.pick(["Ada", "Linus", "Grace", "Ken"]),
            "iat": 1_700_000_000 + self.rng.randrange(10**7),
            "role": self.pick(["admin", "service", "reader"]),
        }
        return f"{part(header)}.{part(payload)}.{self.b64(32, url=True).rstrip('=')}"

    def uuid(self) -> str:
        h = self.chars(HEX, 32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    # -- adding samples ------------------------------------------------------------------------

    def add(self, label: int, kind: str, language: str, path: str, text: str, secret: str) -> None:
        if label:
            assert secret and secret in text, (kind, secret, text)
        self.samples.append(
            {
                "id": f"{'pos' if label else 'neg'}-{len(self.samples):04d}",
                "label": label,
                "kind": kind,
                "language": language,
                "path": path,
                "text": text,
                "secret": secret if label else "",
            }
        )


# -- code around a value --------------------------------------------------------------------------
# Each context takes a variable name and a value literal (with any quotes already on it) and
# returns (language, path, code). Names follow each language's habits.

Context = Callable[[Corpus, str, str], tuple[str, str, str]]


def py_module(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    fn = c.pick(["fetch_orders", "sync_users", "upload_report", "notify_team"])
    return (
        "python",
        c.pick(["settings.py", "client.py", "deploy.py", "tasks/sync.py"]),
        f"import requests\n\n{name.upper()} = {value}\n\n\ndef {fn}(session, since):\n"
        f'    response = session.get(BASE_URL + "/v2/items", params={{"since": since}})\n'
        f"    response.raise_for_status()\n    return response.json()\n",
    )


def py_call(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    cls = c.pick(["Client", "ApiClient", "Connection", "Service"])
    return (
        "python",
        c.pick(["app/main.py", "scripts/backfill.py", "worker.py"]),
        f'def make_client(region: str = "eu-west-1") -> {cls}:\n'
        f"    return {cls}(\n        region=region,\n        {name.lower()}={value},\n"
        f"        timeout=30,\n        retries=3,\n    )\n",
    )


def js_const(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    camel = name.lower().split("_")[0] + "".join(w.title() for w in name.lower().split("_")[1:])
    return (
        "javascript",
        c.pick(["src/api.js", "config/index.js", "server.js"]),
        f"const axios = require('axios');\n\nconst {camel} = {value};\n\n"
        f"async function listInvoices(customerId) {{\n"
        f"  const res = await axios.get(`/v1/customers/${{customerId}}/invoices`);\n"
        f"  return res.data;\n}}\n",
    )


def ts_object(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    camel = name.lower().split("_")[0] + "".join(w.title() for w in name.lower().split("_")[1:])
    return (
        "typescript",
        c.pick(["src/config.ts", "lib/env.ts", "app/settings.ts"]),
        f"export const config: AppConfig = {{\n  port: 8080,\n  region: 'us-east-1',\n"
        f"  {camel}: {value},\n  logLevel: process.env.LOG_LEVEL ?? 'info',\n}};\n",
    )


def go_const(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    camel = name.lower().split("_")[0] + "".join(w.title() for w in name.lower().split("_")[1:])
    value = value.replace("'", '"')
    return (
        "go",
        c.pick(["main.go", "internal/client/client.go", "cmd/sync/main.go"]),
        f"package main\n\nconst {camel} = {value}\n\nfunc newClient() *http.Client {{\n"
        f"\treturn &http.Client{{Timeout: 10 * time.Second}}\n}}\n",
    )


def java_field(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    value = value.replace("'", '"')
    return (
        "java",
        c.pick(["src/main/java/com/acme/ApiClient.java", "Config.java"]),
        f"public final class ApiClient {{\n"
        f"    private static final String {name.upper()} = {value};\n"
        f"    private final HttpClient http = HttpClient.newHttpClient();\n}}\n",
    )


def yaml_entry(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    return (
        "yaml",
        c.pick(["config.yml", "deploy/values.yaml", "docker-compose.yml"]),
        f"service:\n  name: billing\n  replicas: 2\n  credentials:\n"
        f"    {name.lower()}: {value}\n  logging:\n    level: info\n",
    )


def env_file(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    value = value.strip("'\"")
    return (
        "dotenv",
        c.pick([".env", ".env.production", "deploy/.env.staging"]),
        f"APP_ENV=production\nPORT=8080\nLOG_LEVEL=info\n{name.upper()}={value}\n"
        f"FEATURE_FLAGS=search,checkout\n",
    )


def json_entry(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    value = '"' + value.strip("'\"") + '"'
    camel = name.lower().split("_")[0] + "".join(w.title() for w in name.lower().split("_")[1:])
    return (
        "json",
        c.pick(["appsettings.json", "config/prod.json", "firebase.json"]),
        f'{{\n  "service": "notifications",\n  "retries": 3,\n  "{camel}": {value},\n'
        f'  "timeoutMs": 5000\n}}\n',
    )


def shell_export(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    value = '"' + value.strip("'\"") + '"'
    return (
        "shell",
        c.pick(["deploy.sh", "scripts/release.sh", ".github/setup.sh"]),
        f"#!/usr/bin/env bash\nset -euo pipefail\n\nexport {name.upper()}={value}\n"
        f'./bin/migrate --env production\necho "deployed $(git rev-parse --short HEAD)"\n',
    )


def ruby_config(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    return (
        "ruby",
        c.pick(["config/initializers/payments.rb", "config/application.rb"]),
        f"Rails.application.configure do\n  config.cache_store = :redis_cache_store\n"
        f"  config.x.payments.{name.lower()} = {value}\n  config.log_level = :info\nend\n",
    )


def csharp_field(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    value = '"' + value.strip("'\"") + '"'
    pascal = "".join(w.title() for w in name.lower().split("_"))
    return (
        "csharp",
        c.pick(["Services/Mailer.cs", "Startup.cs"]),
        f"public class Mailer\n{{\n    private const string {pascal} = {value};\n"
        f"    private readonly HttpClient _http = new HttpClient();\n}}\n",
    )


def php_array(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    value = "'" + value.strip("'\"") + "'"
    return (
        "php",
        c.pick(["config/services.php", "config/database.php"]),
        f"<?php\n\nreturn [\n    'driver' => 'smtp',\n    'port' => 587,\n"
        f"    '{name.lower()}' => {value},\n    'encryption' => 'tls',\n];\n",
    )


def terraform_var(c: Corpus, name: str, value: str) -> tuple[str, str, str]:
    value = '"' + value.strip("'\"") + '"'
    return (
        "terraform",
        c.pick(["main.tf", "infra/providers.tf"]),
        f'provider "datadog" {{\n  api_url = "https://api.datadoghq.eu/"\n'
        f'  {name.lower()} = {value}\n}}\n\nresource "aws_s3_bucket" "logs" {{}}\n',
    )


CONTEXTS: list[Context] = [
    py_module,
    py_call,
    js_const,
    ts_object,
    go_const,
    java_field,
    yaml_entry,
    env_file,
    json_entry,
    shell_export,
    ruby_config,
    csharp_field,
    php_array,
    terraform_var,
]


def add_in_context(
    c: Corpus, label: int, kind: str, names: list[str], value: str, secret: str = ""
) -> None:
    context = c.pick(CONTEXTS)
    language, path, text = context(c, c.pick(names), f'"{value}"')
    c.add(label, kind, language, path, text, secret or value)


# -- positives --------------------------------------------------------------------------------------


def positive_values(c: Corpus) -> dict[str, tuple[list[str], Callable[[], str]]]:
    """Kind -> (names it is assigned to, a generator of values)."""
    return {
        "aws_access_key_id": (
            ["aws_access_key_id", "access_key", "AWS_KEY_ID", "s3_key"],
            lambda: c.pick(["AKIA", "ASIA"]) + c.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        ),
        "aws_secret_access_key": (
            ["aws_secret_access_key", "AWS_SECRET_KEY", "aws_secret"],
            lambda: c.chars(B64, 40),
        ),
        "github_classic_token": (
            ["github_token", "GH_TOKEN", "token", "bot_credential", "default"],
            lambda: c.crc_token(c.pick(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"])),
        ),
        "github_fine_grained_token": (
            ["github_token", "GITHUB_PAT", "ci_token"],
            lambda: "github_pat_" + c.chars(ALNUM, 22) + "_" + c.chars(ALNUM, 59),
        ),
        "gitlab_token": (
            ["gitlab_token", "GL_TOKEN", "private_token", "ci_value"],
            lambda: c.pick(["glpat-", "gldt-", "glrt-"]) + c.chars(ALNUM + "-_", 20),
        ),
        "slack_bot_token": (
            ["slack_token", "SLACK_BOT_TOKEN", "bot_token", "client"],
            lambda: (
                f"xoxb-{c.chars(string.digits, 12)}-{c.chars(string.digits, 13)}-"
                + c.chars(ALNUM, 24)
            ),
        ),
        "slack_user_token": (
            ["slack_user_token", "SLACK_TOKEN", "legacy"],
            lambda: (
                f"xoxp-{c.chars(string.digits, 11)}-{c.chars(string.digits, 11)}-"
                f"{c.chars(string.digits, 12)}-{c.chars(HEX, 32)}"
            ),
        ),
        "slack_webhook": (
            ["webhook_url", "SLACK_WEBHOOK", "alerts_hook", "notify_url"],
            lambda: (
                "https://hooks.slack.com/services/T"
                + c.chars(string.ascii_uppercase + string.digits, 8)
                + "/B"
                + c.chars(string.ascii_uppercase + string.digits, 10)
                + "/"
                + c.chars(ALNUM, 24)
            ),
        ),
        "stripe_secret_key": (
            ["stripe_key", "STRIPE_SECRET_KEY", "stripe_api_key", "payments"],
            lambda: (
                c.pick(["sk_live_", "rk_live_", "sk_test_"])
                + c.chars(ALNUM, 24 + 75 * c.rng.randrange(2))
            ),
        ),
        "stripe_webhook_secret": (
            ["webhook_secret", "STRIPE_WEBHOOK_SECRET", "endpoint_secret"],
            lambda: "whsec_" + c.chars(ALNUM, 32),
        ),
        "google_api_key": (
            ["google_api_key", "MAPS_API_KEY", "apiKey", "firebase"],
            lambda: "AIza" + c.chars(ALNUM + "-_", 35),
        ),
        "azure_storage_connection_string": (
            ["connection_string", "AZURE_STORAGE_CONNECTION_STRING", "storage", "blob_conn"],
            lambda: (
                "DefaultEndpointsProtocol=https;AccountName="
                + c.chars(string.ascii_lowercase, 10)
                + ";AccountKey="
                + c.b64(64)
                + ";EndpointSuffix=core.windows.net"
            ),
        ),
        "azure_sas_url": (
            ["blob_url", "SAS_URL", "upload_target", "container"],
            lambda: (
                f"https://{c.chars(string.ascii_lowercase, 9)}.blob.core.windows.net/exports"
                "?sv=2022-11-02&ss=b&srt=co&sp=rwl&se=2026-01-01T00:00:00Z&spr=https&sig="
                + c.b64(32).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
            ),
        ),
        "openai_api_key": (
            ["openai_api_key", "OPENAI_API_KEY", "llm_key", "model_client"],
            lambda: "sk-proj-" + c.chars(B64URL, 58) + "T3BlbkFJ" + c.chars(B64URL, 58),
        ),
        "anthropic_api_key": (
            ["anthropic_api_key", "ANTHROPIC_API_KEY", "claude"],
            lambda: "sk-ant-api03-" + c.chars(B64URL, 93) + "AA",
        ),
        "twilio_api_key": (
            ["twilio_key", "TWILIO_API_KEY", "sms_key_sid"],
            lambda: "SK" + c.chars(HEX, 32),
        ),
        "twilio_auth_token": (
            ["twilio_auth_token", "TWILIO_AUTH_TOKEN", "auth_token"],
            lambda: c.chars(HEX, 32),
        ),
        "sendgrid_api_key": (
            ["sendgrid_api_key", "SENDGRID_KEY", "mailer"],
            lambda: "SG." + c.chars(B64URL, 22) + "." + c.chars(B64URL, 43),
        ),
        "npm_token": (
            ["npm_token", "NPM_AUTH_TOKEN", "registry_credential"],
            lambda: c.crc_token("npm_"),
        ),
        "pypi_token": (
            ["pypi_token", "TWINE_PASSWORD", "upload"],
            lambda: "pypi-AgEIcHlwaS5vcmc" + c.chars(B64URL, 140),
        ),
        "jwt": (
            ["id_token", "SERVICE_JWT", "session", "authorization"],
            c.jwt,
        ),
        "huggingface_token": (
            ["hf_token", "HUGGINGFACE_TOKEN", "hub"],
            lambda: "hf_" + c.chars(string.ascii_letters, 34),
        ),
        "telegram_bot_token": (
            ["telegram_token", "BOT_TOKEN", "tg"],
            lambda: f"{c.rng.randrange(10**8, 10**10)}:AA" + c.chars(B64URL, 33),
        ),
        "mailgun_api_key": (
            ["mailgun_key", "MAILGUN_API_KEY", "mg"],
            lambda: "key-" + c.chars(HEX, 32),
        ),
        "digitalocean_token": (
            ["do_token", "DIGITALOCEAN_TOKEN", "droplets"],
            lambda: "dop_v1_" + c.chars(HEX, 64),
        ),
        "password_assignment": (
            ["password", "db_password", "DB_PASS", "admin_password", "smtp_pass", "pwd"],
            c.password,
        ),
        "framework_secret_key": (
            ["secret_key", "SECRET_KEY", "session_secret", "JWT_SECRET", "secret_key_base"],
            lambda: c.chars(string.ascii_lowercase + string.digits + "!@#$%^&*(-_=+)", 50),
        ),
        "generic_api_key": (
            ["api_key", "API_KEY", "apiKey", "client_secret", "access_token", "auth_key"],
            lambda: c.chars(ALNUM, c.rng.choice([32, 40, 48])),
        ),
    }


def add_positives(c: Corpus) -> None:
    for kind, (names, make) in positive_values(c).items():
        for _ in range(PER_POSITIVE_KIND):
            add_in_context(c, 1, kind, names, make())
    # Kinds that need their own code around them.
    for _ in range(PER_POSITIVE_KIND):
        user, password = c.pick(["app", "svc_orders", "admin", "report"]), c.password()
        host = c.pick(["db.internal", "10.0.3.12", "orders-db.prod.example.net"])
        scheme = c.pick(["postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
        if c.rng.randrange(2):
            password = urllib.parse.quote(password, safe="")  # as a working DSN spells it
        url = f"{scheme}://{user}:{password}@{host}:5432/orders"
        add_in_context(
            c, 1, "connection_url_password", ["database_url", "DSN", "broker"], url, password
        )
    for _ in range(PER_POSITIVE_KIND):
        creds = base64.b64encode(f"{c.pick(['deploy', 'ci', 'admin'])}:{c.password()}".encode())
        value = creds.decode()
        style = c.rng.randrange(3)
        if style == 0:
            text = (
                f"curl -sS -X POST https://ci.internal/api/builds \\\n"
                f'  -H "Authorization: Basic {value}" \\\n  -H "Content-Type: application/json"\n'
            )
            c.add(1, "basic_auth_header", "shell", "scripts/trigger.sh", text, value)
        elif style == 1:
            text = (
                "const res = await fetch(`${BASE}/reports`, {\n  method: 'GET',\n"
                f"  headers: {{ Authorization: 'Basic {value}' }},\n}});\n"
            )
            c.add(1, "basic_auth_header", "javascript", "src/reports.js", text, value)
        else:
            text = (
                "GET /api/v1/export HTTP/1.1\nHost: warehouse.internal\n"
                f"Authorization: Basic {value}\nAccept: text/csv\n"
            )
            c.add(1, "basic_auth_header", "http", "requests/export.http", text, value)
    for _ in range(PER_POSITIVE_KIND):
        token = c.chars(ALNUM + "-._", 40)
        style = c.rng.randrange(3)
        if style == 0:
            text = (
                'resp = requests.get(\n    f"{API}/deployments",\n'
                f'    headers={{"Authorization": "Bearer {token}"}},\n    timeout=10,\n)\n'
            )
            c.add(1, "bearer_token_header", "python", "ops/deployments.py", text, token)
        elif style == 1:
            text = (
                f'req, _ := http.NewRequest("GET", url, nil)\n'
                f'req.Header.Set("Authorization", "Bearer {token}")\n'
                "resp, err := client.Do(req)\n"
            )
            c.add(1, "bearer_token_header", "go", "internal/api/client.go", text, token)
        else:
            text = (
                f"curl https://api.vendor.io/v3/usage \\\n  -H 'Authorization: Bearer {token}'"
                " \\\n  -H 'Accept: application/json'\n"
            )
            c.add(1, "bearer_token_header", "shell", "scripts/usage.sh", text, token)
    for _ in range(PER_POSITIVE_KIND):
        body = c.b64(48) + c.b64(48)
        header = c.pick(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
        block = f"-----BEGIN {header}-----\n{body[:64]}\n{body[64:128]}"
        style = c.rng.randrange(2)
        if style == 0:
            text = f'SERVICE_KEY = """{block}\n'
            c.add(1, "private_key_block", "python", "auth/keys.py", text, block.split("\n")[0])
        else:
            escaped = block.replace("\n", "\\n")  # JSON spells the line breaks "\n"
            text = (
                f'{{\n  "type": "service_account",\n  "project_id": "billing-prod",\n'
                f'  "private_key": "{escaped}'
            )
            c.add(1, "private_key_block", "json", "gcp.json", text, f"-----BEGIN {header}-----")
    for _ in range(PER_POSITIVE_KIND):
        value = c.chars(ALNUM, c.rng.choice([32, 40]))
        cls = c.pick(["Pusher", "Algolia", "MeiliClient", "Courier", "Segment"])
        text = (
            f"from vendor import {cls}\n\nclient = {cls}(\n"
            f'    "{c.chars(string.ascii_uppercase + string.digits, 10)}",\n'
            f'    "{value}",\n)\nclient.send(event="signup", user=user_id)\n'
        )
        c.add(1, "unlabelled_random_credential", "python", "analytics.py", text, value)


# -- negatives ---------------------------------------------------------------------------------------


def add_negatives(c: Corpus) -> None:
    placeholders = [
        "your-api-key-here",
        "<YOUR_TOKEN>",
        "xxxxxxxxxxxxxxxxxxxxxxxx",
        "${API_KEY}",
        "{{ secrets.DEPLOY_TOKEN }}",
        "changeme",
        "REPLACE_WITH_YOUR_KEY",
        "sk_live_XXXXXXXXXXXXXXXXXXXXXXXX",
        "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "AKIAXXXXXXXXXXXXXXXX",
        "<insert password>",
        "********",
        "%(db_password)s",
        "YOUR_SECRET_HERE",
        "dummy-token-for-tests",
    ]
    names = ["api_key", "password", "token", "secret_key", "client_secret", "GITHUB_TOKEN"]
    for value in placeholders:
        add_in_context(c, 0, "placeholder_value", names, value)

    references = [
        ("python", "settings.py", 'SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]\nDEBUG = False\n'),
        (
            "python",
            "db.py",
            'password = os.getenv("DB_PASSWORD", "")\nuser = os.getenv("DB_USER")\n',
        ),
        (
            "python",
            "cfg.py",
            "api_key: str = settings.STRIPE_API_KEY\ntimeout = settings.TIMEOUT\n",
        ),
        (
            "javascript",
            "src/env.js",
            "const apiKey = process.env.OPENAI_API_KEY;\nconst port = 3000;\n",
        ),
        ("typescript", "env.ts", "export const token: string = process.env.GITHUB_TOKEN ?? '';\n"),
        ("java", "Db.java", 'String password = System.getenv("DB_PASSWORD");\nint port = 5432;\n'),
        (
            "go",
            "main.go",
            'token := os.Getenv("SLACK_TOKEN")\nif token == "" {\n\tlog.Fatal("no token")\n}\n',
        ),
        (
            "ruby",
            "app.rb",
            "config.api_key = ENV.fetch('SENDGRID_API_KEY')\nconfig.host = 'mail'\n",
        ),
        ("yaml", "ci.yml", "env:\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n  NODE_ENV: test\n"),
        (
            "yaml",
            "compose.yml",
            "environment:\n  POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}\n  POSTGRES_DB: app\n",
        ),
        ("shell", "run.sh", 'export AWS_SECRET_ACCESS_KEY="$(vault read -field=key aws/creds)"\n'),
        (
            "python",
            "vault.py",
            'secret = client.secrets.kv.read_secret_version(path="db")["data"]\n',
        ),
        (
            "csharp",
            "Startup.cs",
            'var key = Configuration["Jwt:Key"];\nvar issuer = Configuration["Jwt:Issuer"];\n',
        ),
        (
            "php",
            "config/mail.php",
            "'password' => env('MAIL_PASSWORD'),\n'port' => env('MAIL_PORT', 587),\n",
        ),
        ("terraform", "main.tf", 'password = var.db_password\nusername = "app"\n'),
    ]
    for language, path, text in references:
        c.add(0, "environment_reference", language, path, text, "")

    interpolations = [
        (
            "python",
            "api.py",
            'headers = {"Authorization": f"Bearer {token}"}\nresp = session.get(url, headers=headers)\n',
        ),
        ("javascript", "api.js", "headers: { Authorization: `Bearer ${accessToken}` },\n"),
        ("go", "client.go", 'req.Header.Set("Authorization", "Bearer "+token)\n'),
        ("java", "Client.java", 'conn.setRequestProperty("Authorization", "Basic " + encoded);\n'),
        ("python", "auth.py", 'auth = base64.b64encode(f"{user}:{password}".encode()).decode()\n'),
        (
            "shell",
            "ci.sh",
            'curl -H "Authorization: token $GITHUB_TOKEN" https://api.github.com/user\n',
        ),
        ("python", "db.py", 'dsn = f"postgresql://{user}:{password}@{host}:5432/{name}"\n'),
        ("javascript", "db.js", "const url = `mongodb://${user}:${pass}@${host}/app`;\n"),
        (
            "yaml",
            "k8s.yml",
            "  - name: DATABASE_URL\n    value: postgres://$(DB_USER):$(DB_PASS)@db:5432/app\n",
        ),
        ("ruby", "client.rb", 'request["Authorization"] = "Bearer #{token}"\n'),
        (
            "csharp",
            "Api.cs",
            'client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);\n',
        ),
        ("php", "api.php", "$headers = ['Authorization' => 'Bearer ' . $token];\n"),
        ("python", "redis_conn.py", 'url = "redis://:%s@%s:6379/0" % (password, host)\n'),
        ("go", "dsn.go", 'dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s", user, pass, host, db)\n'),
        ("typescript", "http.ts", "const auth = 'Basic ' + btoa(`${user}:${password}`);\n"),
    ]
    for language, path, text in interpolations:
        c.add(0, "template_interpolation", language, path, text, "")

    for _ in range(PER_NEGATIVE_KIND):
        sha = c.chars(HEX, 40)
        c.add(
            0,
            "git_sha",
            c.pick(["python", "yaml", "go"]),
            c.pick(["release.py", ".github/workflows/ci.yml", "version.go"]),
            c.pick(
                [
                    f'COMMIT = "{sha}"\nBUILD_DATE = "2025-05-01"\n',
                    f"      - uses: actions/checkout@{sha}  # v4.1.1\n",
                    f'var gitCommit = "{sha}"\n',
                    f'pinned_revision = "{sha}"\nrepo = "https://github.com/acme/tools"\n',
                ]
            ),
            "",
        )
    for _ in range(PER_NEGATIVE_KIND):
        digest = c.chars(HEX, 64)
        c.add(
            0,
            "sha256_digest",
            c.pick(["dockerfile", "python", "text"]),
            c.pick(["Dockerfile", "download.py", "requirements.txt"]),
            c.pick(
                [
                    f"FROM python:3.12-slim@sha256:{digest}\nRUN pip install uv\n",
                    f'EXPECTED_SHA256 = "{digest}"\nif hashlib.sha256(data).hexdigest() != EXPECTED_SHA256:\n',
                    f"requests==2.32.3 \\\n    --hash=sha256:{digest}\n",
                    f'checksum = "{digest}"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n',
                ]
            ),
            "",
        )
    for _ in range(PER_NEGATIVE_KIND):
        integrity = c.b64(64)
        h1 = c.b64(32)
        c.add(
            0,
            "lockfile_integrity",
            c.pick(["json", "go"]),
            c.pick(["package-lock.json", "go.sum"]),
            c.pick(
                [
                    f'    "node_modules/lodash": {{\n      "version": "4.17.21",\n'
                    f'      "integrity": "sha512-{integrity}",\n      "dev": true\n',
                    f"golang.org/x/net v0.25.0 h1:{h1}\n"
                    f"golang.org/x/net v0.25.0/go.mod h1:{c.b64(32)}\n",
                    f'  integrity sha512-{integrity}\n  resolved "https://registry.yarnpkg.com/x/-/x-1.0.0.tgz"\n',
                ]
            ),
            "",
        )
    for _ in range(PER_NEGATIVE_KIND):
        uid = c.uuid()
        name = c.pick(
            ["request_id", "tenant_id", "client_id", "subscription_id", "trace_id", "ORG_ID"]
        )
        add_in_context(c, 0, "uuid_identifier", [name], uid)

    documented = [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "sk_" + "test_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_" + "test_BQokikJOvBiI2HlWgH4olfQ2",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
        "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "xox" + "b-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    ]
    names = ["aws_access_key_id", "aws_secret_access_key", "stripe_key", "token", "jwt"]
    for i in range(PER_NEGATIVE_KIND):
        value = documented[i % len(documented)]
        context = c.pick([py_module, js_const, yaml_entry, json_entry, java_field])
        language, path, text = context(c, c.pick(names), f'"{value}"')
        text = (
            c.pick(["# From the provider's documentation:\n", "// example from the docs\n"]) + text
        )
        c.add(0, "documented_example_key", language, path, text, "")

    for _ in range(PER_NEGATIVE_KIND):
        style = c.rng.randrange(4)
        if style == 0:
            key = "AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + c.chars(B64, 90)
            text = f"authorized_keys:\n  - ssh-rsa {key} deploy@ci\n"
            c.add(0, "public_key_material", "yaml", "cloud-init.yml", text, "")
        elif style == 1:
            body = c.b64(90)
            text = f'PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----\n{body[:64]}\n{body[64:]}\n'
            c.add(0, "public_key_material", "python", "verify.py", text, "")
        elif style == 2:
            body = c.b64(90)
            text = f"-----BEGIN CERTIFICATE-----\n{body[:64]}\n{body[64:]}\n"
            c.add(0, "public_key_material", "pem", "ca.crt", text, "")
        else:
            key = "AAAAC3NzaC1lZDI1NTE5AAAAI" + c.chars(B64, 43)
            text = f'DEPLOY_PUBKEY = "ssh-ed25519 {key} ops@bastion"\n'
            c.add(0, "public_key_material", "python", "hosts.py", text, "")

    for _ in range(PER_NEGATIVE_KIND):
        value = c.pick(["pk_live_", "pk_test_"]) + c.chars(ALNUM, 24)
        add_in_context(
            c, 0, "publishable_key", ["stripe_publishable_key", "STRIPE_PK", "publicKey"], value
        )

    non_secrets = [
        ("python", "auth.py", 'token_type = "Bearer"\nexpires_in = 3600\n'),
        ("python", "settings.py", "PASSWORD_MIN_LENGTH = 12\nPASSWORD_RESET_TIMEOUT = 3600\n"),
        (
            "python",
            "aws.py",
            'secret_name = "prod/orders/db-credentials"\nregion_name = "eu-west-1"\n',
        ),
        (
            "python",
            "oauth.py",
            'TOKEN_URL = "https://oauth2.googleapis.com/token"\nSCOPES = ["openid"]\n',
        ),
        ("javascript", "api.js", "const apiKeyHeader = 'X-API-Key';\nconst retries = 3;\n"),
        ("python", "forms.py", 'password_field = "password"\nusername_field = "email"\n'),
        (
            "yaml",
            "app.yml",
            "auth:\n  token_ttl: 15m\n  password_policy: strong\n  session_cookie: sid\n",
        ),
        ("typescript", "auth.ts", "export const TOKEN_STORAGE_KEY = 'auth.token';\n"),
        ("go", "auth.go", 'const passwordHashAlgorithm = "argon2id"\n'),
        ("java", "Auth.java", 'private static final String TOKEN_PREFIX = "Bearer ";\n'),
        ("python", "k8s.py", 'secret_key_ref = {"name": "db-credentials", "key": "password"}\n'),
        (
            "yaml",
            "values.yaml",
            "existingSecret: orders-db\nsecretKeys:\n  passwordKey: postgres-password\n",
        ),
        (
            "json",
            "schema.json",
            '"password": {"type": "string", "minLength": 12, "format": "password"},\n',
        ),
        (
            "python",
            "aws.py",
            'secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"\n',
        ),
        ("shell", "env.sh", 'export TOKEN_FILE="$HOME/.config/acme/token.json"\n'),
    ]
    for language, path, text in non_secrets:
        c.add(0, "secret_named_non_secret", language, path, text, "")

    ui_strings = [
        (
            "json",
            "locales/en.json",
            '{\n  "password": "Password",\n  "forgot_password": "Forgot your password?"\n}\n',
        ),
        (
            "javascript",
            "Login.jsx",
            '<input type="password" placeholder="Enter your password" />\n',
        ),
        ("python", "errors.py", 'INVALID_TOKEN = "The access token is invalid or has expired."\n'),
        ("yaml", "messages.yml", "api_key_missing: Please set an API key in the settings.\n"),
        (
            "python",
            "cli.py",
            'parser.add_argument("--token", help="personal access token (or GITHUB_TOKEN)")\n',
        ),
        (
            "typescript",
            "strings.ts",
            "export const SECRET_HINT = 'Secrets are stored encrypted at rest.';\n",
        ),
        (
            "json",
            "locales/de.json",
            '{\n  "password": "Passwort",\n  "token_expired": "Sitzung abgelaufen"\n}\n',
        ),
        ("python", "views.py", 'messages.error(request, "Wrong password, please try again.")\n'),
        ("java", "Messages.java", 'String prompt = "Please enter your API key:";\n'),
        ("go", "errors.go", 'var ErrBadToken = errors.New("token: malformed or expired")\n'),
        ("ruby", "en.yml", "  password_confirmation: Password confirmation\n"),
        ("php", "lang.php", "'password' => 'The provided password is incorrect.',\n"),
        ("python", "docs.py", '"""Pass the API token with the Authorization header."""\n'),
        ("javascript", "form.js", "label.textContent = 'Secret key (optional)';\n"),
        ("csharp", "Ui.cs", 'passwordLabel.Text = "Password:";\n'),
    ]
    for language, path, text in ui_strings:
        c.add(0, "ui_string", language, path, text, "")

    for _ in range(PER_NEGATIVE_KIND):
        salt = c.chars(B64.replace("+", "."), 22)
        value = c.pick(
            [
                f"$2b$12${salt}{c.chars(B64.replace('+', '.'), 31)}",
                f"pbkdf2_sha256$600000${c.chars(ALNUM, 22)}${c.b64(32)}",
                f"$argon2id$v=19$m=65536,t=3,p=4${c.b64(16).rstrip('=')}${c.b64(32).rstrip('=')}",
            ]
        )
        add_in_context(
            c, 0, "password_hash", ["password_hash", "hashed_password", "admin_password"], value
        )

    for _ in range(PER_NEGATIVE_KIND):
        data = "iVBORw0KGgoAAAANSUhEUgAAA" + c.b64(60)
        c.add(
            0,
            "base64_data",
            c.pick(["css", "javascript", "python"]),
            c.pick(["styles.css", "icons.js", "assets.py"]),
            c.pick(
                [
                    f".logo {{\n  background: url(data:image/png;base64,{data});\n}}\n",
                    f"export const spinner = 'data:image/png;base64,{data}';\n",
                    f'FAVICON_PNG = base64.b64decode(\n    "{data}"\n)\n',
                ]
            ),
            "",
        )

    for _ in range(PER_NEGATIVE_KIND):
        style = c.rng.randrange(5)
        if style == 0:
            value = c.chars(string.digits + "ABCDEFGHJKMNPQRSTVWXYZ", 26)
            text = f'order_id = "{value}"  # ULID\nstatus = "pending"\n'
        elif style == 1:
            value = c.chars(B64URL, 21)
            text = f'const userId = "{value}"; // nanoid\n'
        elif style == 2:
            value = c.chars(HEX, 8)
            text = f'<script src="/static/js/main.{value}.js"></script>\n<link href="/static/css/main.{c.chars(HEX, 8)}.css">\n'
        elif style == 3:
            value = c.chars(B64URL, 11)
            text = f'VIDEO_IDS = ["{value}", "{c.chars(B64URL, 11)}"]\n'
        else:
            value = c.chars(ALNUM, 32)
            text = f'cache_key = f"report:{{user_id}}:{value}"\nttl = 300\n'
        c.add(0, "random_identifier", c.pick(["python", "javascript", "html"]), "app.py", text, "")

    urls = [
        'DATABASE_URL = "postgresql://app@localhost:5432/orders"\n',
        'REDIS_URL = "redis://localhost:6379/0"\n',
        'repo = "https://github.com/acme/billing.git"\n',
        'BROKER = "amqp://guest:guest@localhost:5672//"\n',
        'url = "postgres://postgres:postgres@localhost:5432/test"\n',
        'const mongo = "mongodb://localhost:27017/app";\n',
        'DSN = "mysql://user:password@127.0.0.1:3306/dev"\n',
        'webhook = "https://example.com/hooks/build"\n',
        'proxy = "http://proxy.internal:3128"\n',
        'DOCS = "https://user@docs.acme.dev/guide"\n',
        'git_url = "ssh://git@github.com/acme/tools.git"\n',
        'S3_ENDPOINT = "https://s3.eu-west-1.amazonaws.com"\n',
        'ftp = "ftp://anonymous@mirror.example.org/pub"\n',
        'SENTRY_URL = "https://sentry.io/organizations/acme/issues/"\n',
        'db = "postgresql://${DB_USER}:${DB_PASSWORD}@db:5432/app"\n',
    ]
    for text in urls:
        c.add(0, "url_without_password", "python", "config.py", text, "")

    comments = [
        "# Set GITHUB_TOKEN in your environment before running this script.\n",
        "// The API key is read from the STRIPE_SECRET_KEY environment variable.\n",
        "# TODO: rotate the token after the migration (see INFRA-412)\n",
        "/* password must be at least 12 characters long */\n",
        "# Tokens look like ghp_ followed by 36 characters; never commit them.\n",
        "-- the secret is fetched from Vault at startup\n",
        "// Authorization: Bearer <token> is required for every call\n",
        "# aws_secret_access_key is configured with `aws configure`\n",
        "<!-- Put your Google Maps API key in .env as MAPS_API_KEY -->\n",
        "# Use `gh auth token` to print your token.\n",
        "// TODO(security): move credentials to the secret manager\n",
        "# The password is hashed with argon2id before storage.\n",
        "; private keys live in /etc/ssl/private, readable by root only\n",
        "# Slack tokens start with xoxb- for bots and xoxp- for users.\n",
        "// JWTs expire after 15 minutes; refresh tokens after 30 days.\n",
    ]
    for text in comments:
        c.add(0, "comment_mentions", "text", "README.md", text + "def main():\n    run()\n", "")

    keyish = [
        'cache_key = "user:42:profile"\n',
        'sort_key = "created_at"\n',
        "id = models.AutoField(primary_key=True)\n",
        'partition_key = "tenant_id"\n',
        'KEY_PREFIX = "nexttoken:"\n',
        'public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"\n',
        'idempotency_key = f"charge-{order.id}"\n',
        'translation_key = "checkout.button.pay"\n',
        "keys = sorted(mapping.keys())\n",
        'hotkey = "ctrl+shift+p"\n',
        'foreign_key = "orders.customer_id"\n',
        'license_key_path = "/etc/acme/license.lic"\n',
        'key_alias = "alias/orders-kms"\n',
        'secret_key_name = "DJANGO_SECRET_KEY"\n',
        'api_key_env = "OPENAI_API_KEY"\n',
    ]
    for text in keyish:
        c.add(0, "key_named_non_secret", "python", "models.py", text, "")

    for _ in range(PER_NEGATIVE_KIND):
        dsn = f"https://{c.chars(HEX, 32)}@o{c.rng.randrange(10**5, 10**6)}.ingest.sentry.io/{c.rng.randrange(10**6, 10**7)}"
        add_in_context(c, 0, "sentry_public_dsn", ["sentry_dsn", "SENTRY_DSN"], dsn)

    for _ in range(PER_NEGATIVE_KIND):
        sid = "AC" + c.chars(HEX, 32)
        add_in_context(c, 0, "twilio_account_sid", ["twilio_account_sid", "ACCOUNT_SID"], sid)

    for _ in range(PER_NEGATIVE_KIND):
        header = (
            base64.urlsafe_b64encode(
                json.dumps({"alg": c.pick(["RS256", "ES256"]), "kid": c.chars(HEX, 8)}).encode()
            )
            .decode()
            .rstrip("=")
        )
        text = f'EXPECTED_HEADER = "{header}"\nassert token.split(".")[0] == EXPECTED_HEADER\n'
        c.add(0, "jwt_header_only", "python", "test_jwt.py", text, "")


def build(seed: int = SEED) -> list[dict[str, object]]:
    corpus = Corpus(seed)
    add_positives(corpus)
    add_negatives(corpus)
    return corpus.samples


def render(samples: list[dict[str, object]]) -> str:
    return "".join(json.dumps(s, ensure_ascii=False, sort_keys=True) + "\n" for s in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the samples here (JSON lines)")
    args = parser.parse_args()
    samples = build()
    if args.out:
        args.out.write_text(render(samples), encoding="utf-8")
    positives = [s for s in samples if s["label"]]
    kinds = len({s["kind"] for s in positives})
    negatives = len(samples) - len(positives)
    print(f"{len(positives)} positives of {kinds} kinds, {negatives} negatives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
