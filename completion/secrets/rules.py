"""The rules that find credentials in text, written from the providers' published formats.

Three kinds, each a row of `RULES`:

- provider tokens: a fixed prefix and a fixed shape (AWS key ids, GitHub and npm tokens with
  their CRC32 checksum, Slack, Stripe, Google, SendGrid, JWTs, PEM private keys, ...);
- context: a literal assigned to a name that says it is secret (`password = "..."`,
  `api_key: ...`, `DB_PASS=...`), a password inside a URL, an `Authorization` header value;
- entropy: a long quoted literal that is random-looking base64, whatever its name.

Each finding is then checked against the allowlists: placeholders (`your-api-key`, `${VAR}`,
`<token>`, `xxxx`), documented example keys, and values that are hashes, ids or paths rather
than credentials. A rule names the text it guards with `anchors` (literal substrings, one of
which must occur) so that most text is dismissed with a few `in` tests before any regex runs.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from completion.secrets.checksums import (
    character_classes,
    has_valid_crc32_suffix,
    looks_random,
    shannon_entropy,
)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    # Literal substrings of which one must be in the text for the pattern to run; matched in
    # the lowercased text when `lowercase` is set. Empty: the rule always runs.
    anchors: tuple[str, ...] = ()
    lowercase: bool = False
    validate: Callable[[re.Match[str]], bool] | None = None
    # Yields candidate matches itself instead of `pattern.search` over the whole text (for a
    # pattern that is cheap only where a keyword already is).
    finder: Callable[[str], Iterator[re.Match[str]]] | None = None


# -- allowlists ---------------------------------------------------------------------------------

# Words and marks that make a value a placeholder, not a credential (compared in lower case).
PLACEHOLDER_MARKS = (
    "example",
    "sample",
    "dummy",
    "fake",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "your",
    "xxxx",
    "redacted",
    "replace",
    "insert",
    "todo",
    "fixme",
    "foobar",
    "lorem",
    "password",
    "passwd",
    "secret",
    "<",
    ">",
    "${",
    "{{",
    "%(",
    "%s",
    "#{",
    "$(",
    "***",
    "...",
    "…",
)

# Keys published in providers' documentation as examples; they grant nothing. (Spelled in two
# parts so that secret scanners do not take this file for a leak.)
DOCUMENTED_EXAMPLES = frozenset(
    {
        "sk_" + "test_4eC39HqLyjWDarjtT1zdp7dc",  # Stripe API reference
        "sk_" + "test_BQokikJOvBiI2HlWgH4olfQ2",  # Stripe API reference (older)
        # jwt.io's default token (HS256, secret "your-256-bit-secret")
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
        "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "xox" + "b-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",  # Slack API docs
    }
)

_INNER_EQUALS = re.compile(r"=[^=]")
_ESCAPES = re.compile(r"(?:\\(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{1,3}|.))+")
_CONSTANT_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_WORD_RUN = re.compile(r"[A-Z]?[a-z]{3,}(?<=[A-Za-z]{4})")
_TEMPLATE_FIELD = re.compile(r"\{[\w.]*\}")
_DUNDER = re.compile(r"__\w+__")
_BRACKETED = re.compile(r"\[[A-Z0-9_ ]+\]|\|[A-Z0-9_ ]+\||<\|[\w ]+\|>")
# Character classes, groups, escapes and repetition counts: a regular expression.
_REGEX = re.compile(r"\[[^\]]*-[^\]]*\]|\(\?|\\[dwsbDWS]|\{\d+(?:,\d*)?\}|\]\+|\]\*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_FILE_NAME = re.compile(
    r"[\w.\-/~]*\.(?:json|pem|key|crt|cer|txt|ya?ml|env|cfg|ini|conf|p12|pfx|jks|pub|toml|xml)"
)
_PASSWORD_HASH = re.compile(
    r"\$(?:2[abxy]?|argon2(?:id|i|d)?|[156])\$|^(?:pbkdf2|bcrypt|scrypt|argon2|sha\d+)\w*\$"
)
# Keys made to be public: Stripe publishable keys, Mapbox public tokens.
PUBLIC_KEY_PREFIXES = ("pk_live_", "pk_test_", "pk.eyJ")
# How binary files begin in base64 (PNG, JPEG, GIF, WebP, SVG, PDF, WOFF, WOFF2, ICO):
# embedded assets, not credentials.
BINARY_BASE64_PREFIXES = (
    "iVBORw0KGgo",
    "/9j/",
    "R0lGOD",
    "UklGR",
    "PHN2Zy",
    "PD94bWwg",
    "JVBERi0",
    "d09GR",
    "d09GMg",
    "AAABAA",
)


def is_placeholder(value: str) -> bool:
    lowered = value.lower()
    if value in DOCUMENTED_EXAMPLES or _BRACKETED.fullmatch(value):
        return True
    if _TEMPLATE_FIELD.search(value) or _DUNDER.fullmatch(value):
        return True  # "{token}", "__start__": templates and markers
    return any(mark in lowered for mark in PLACEHOLDER_MARKS) or len(set(value)) < 4


def is_wordy(value: str) -> bool:
    """Mostly dictionary-like words between separators ("org/Model-2-Small", "app-signing-
    salt"): a name or path, where a random credential has no such words."""
    words = [p for p in re.split(r"[/\-_.:]", value) if len(p) >= 3 and p.isalpha()]
    return len(words) >= 2 and sum(len(w) for w in words) >= len(value) / 2


def word_fraction(value: str) -> float:
    """The share of a value's letters that sit in word-like runs of four or more (a capital
    and lowercase letters). Random base62 of 28+ characters exceeds 0.6 about once in a
    hundred; identifiers mostly do."""
    letters = sum(c.isalpha() for c in value)
    if not letters:
        return 0.0
    return sum(len(run) for run in _WORD_RUN.findall(value)) / letters


def _encodes_text(value: str) -> bool:
    """Whether a base64 value decodes to printable ASCII text (a random key decodes to
    bytes of every value)."""
    if len(value) % 4 == 1:
        return False
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return False
    printable = sum(32 <= byte < 127 or byte in (9, 10, 13) for byte in decoded)
    return len(decoded) >= 12 and printable >= 0.95 * len(decoded)


def is_snake_name(value: str) -> bool:
    """A snake_case name: two or more of its "_"-separated parts are lowercase words, which
    the parts of random base64url almost never are ("test_sce_NCd1d2_mean_weight")."""
    parts = value.split("_")
    words = [p for p in parts if len(p) >= 3 and p.isalpha() and p.islower()]
    return len(words) >= 2 and sum(len(w) for w in words) >= 0.4 * len(value)


def is_regex(value: str) -> bool:
    return _REGEX.search(value) is not None


def is_literal_credential(value: str) -> bool:
    """Whether a literal assigned to a secret-sounding name is itself a credential: not a
    placeholder, reference, path, URL, env var name, number, word, hash or id."""
    if len(value) < 6 or is_placeholder(value) or value.startswith(PUBLIC_KEY_PREFIXES):
        return False
    if any(c.isspace() for c in value) or "://" in value or value.startswith("arn:"):
        return False
    if value.startswith(("/", "./", "../", "~/")) or re.match(r"\$[A-Za-z_{(]", value):
        return False  # a path, or a shell variable
    if re.fullmatch(r"#[0-9a-fA-F]{3,8}", value):
        return False  # a colour
    if _ESCAPES.fullmatch(value):
        return False  # escape sequences: "\\u0120"
    if is_regex(value) or ("/" in value and is_wordy(value)):
        return False  # a pattern, or a path of names ("org/model-name")
    if re.fullmatch(r"[A-Za-z_][\w.]*\(.*\)", value):
        return False  # a call in a comment or docs: "get_token()"
    if _ENV_NAME.fullmatch(value) or _FILE_NAME.fullmatch(value) or value.isdigit():
        return False
    if _PASSWORD_HASH.search(value):
        return False  # the hash of a password, stored to check it, not the password
    # Words, identifiers and header names ("bearer", "read_write", "Passwort",
    # "X-Access-Token") name things.
    return not re.fullmatch(r"[#@:./]?[A-Za-z][a-z_\-.]*|[A-Za-z]+(?:-[A-Za-z]+)+", value)


# -- names that say "secret" -----------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pass",
        "pwd",
        "pw",
        "secret",
        "secrets",
        "token",
        "apikey",
        "credential",
        "credentials",
        "creds",
        "sas",
    }
)
# Words that, before "key", make it a credential ("api key", "signing key"); a bare "key" is
# too common (dict keys, sort keys, primary keys).
_KEY_QUALIFIERS = frozenset(
    {
        "api",
        "access",
        "secret",
        "private",
        "signing",
        "encryption",
        "master",
        "auth",
        "account",
        "client",
        "app",
        "service",
        "license",
        "subscription",
        "shared",
        "storage",
        "hmac",
        "jwt",
        "session",
    }
)
# The last word of a name that describes a secret without being one ("token_url").
_NOT_THE_SECRET = frozenset(
    {
        "url",
        "uri",
        "endpoint",
        "path",
        "file",
        "dir",
        "name",
        "type",
        "id",
        "ids",
        "header",
        "field",
        "prefix",
        "suffix",
        "pattern",
        "regex",
        "length",
        "len",
        "min",
        "max",
        "count",
        "hash",
        "hashed",
        "digest",
        "expiry",
        "expires",
        "expiration",
        "ttl",
        "timeout",
        "lifetime",
        "env",
        "var",
        "label",
        "placeholder",
        "hint",
        "policy",
        "format",
        "kind",
        "mode",
        "scope",
        "scopes",
        "enabled",
        "required",
        "param",
        "class",
        "location",
        "source",
        "store",
        "provider",
        "manager",
        "version",
        "size",
        "bytes",
        "encoding",
        "algorithm",
        "alg",
        "error",
        "message",
        "msg",
        "text",
        "title",
        "help",
        "description",
        "input",
        "form",
        "widget",
        "validator",
        "rules",
        "reset",
        "changed",
        "updated",
        "created",
        "dict",
        "list",
        "map",
        "set",
        "tuple",
        "obj",
        "object",
        "fn",
        "func",
        "callback",
        "handler",
        "cls",
    }
)
# Words anywhere in the name that make it about something public or about the UI.
_PUBLIC_WORDS = frozenset(
    {
        "public",
        "publishable",
        "pub",
        "forgot",
        "show",
        "hide",
        "toggle",
        "reset",
        "is",
        "has",
        "use",
        "should",
        "requires",
        "next",
        "page",
        "csrf",
        "xsrf",
    }
)


def name_words(name: str) -> list[str]:
    """A name split into lowercase words: snake, kebab, dotted and camelCase."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    words = name_words(name)
    while words and words[-1].isdigit():
        words.pop()  # "token_ids_0" is about "ids"
    if not words or words[-1] in _NOT_THE_SECRET or _PUBLIC_WORDS.intersection(words):
        return False
    for index, word in enumerate(words):
        if word in _SECRET_WORDS or word.endswith(("password", "passwd", "secret", "token")):
            return True
        if word in ("key", "keys") and index > 0 and words[index - 1] in _KEY_QUALIFIERS:
            return True
        if word.endswith("key") and word[:-3] in _KEY_QUALIFIERS:
            return True  # "apikey", "accesskey"
    return False


# -- validators ----------------------------------------------------------------------------------


def _random_secret(min_entropy: float = 3.0) -> Callable[[re.Match[str]], bool]:
    def check(match: re.Match[str]) -> bool:
        value = match.group("secret")
        return not is_placeholder(value) and looks_random(
            match.group("body") if "body" in match.re.groupindex else value, min_entropy
        )

    return check


def _github_classic(match: re.Match[str]) -> bool:
    return has_valid_crc32_suffix(match.group("secret"))


def _not_example(match: re.Match[str]) -> bool:
    return not is_placeholder(match.group("secret"))


def _assignment(match: re.Match[str]) -> bool:
    name = match.group("name")
    value = match.group("secret") if match.group("quote") else match.group("bare")
    if not is_secret_name(name) or value is None:
        return False
    if match.group("quote") is None:
        # An unquoted value is a literal in env and properties files (`NAME=value`,
        # `db.password=value`) and YAML (`password: value` at the start of its line); in code
        # (`password = value`) it is an expression: a variable, a call, a field.
        operator = match.group("op")
        config_style = _at_line_start(match) and (operator.strip() == ":" or operator == "=")
        if not (config_style or _ENV_NAME.fullmatch(name)):
            return False
        if re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", value) or any(
            c in value for c in "([{"
        ):
            return False
        if value.lower() in ("true", "false", "null", "none", "nil", "yes", "no"):
            return False
        if value.startswith(("!", "&", "*", "@", "%")):
            return False  # YAML tags, anchors and aliases; shell and template markup
        if re.fullmatch(r"[A-Za-z_]+|[a-z_][a-z0-9_]*_[a-z0-9_]*", value):
            return False  # a name in code: "_PassDictsType", "token_ids_0"
        line_end = match.string.find("\n", match.end())
        rest = match.string[match.end() : None if line_end < 0 else line_end].strip()
        if rest and not rest.startswith(("#", "//", ";", ",")):
            return False  # the value goes on in words: prose, not a credential
    return is_literal_credential(value)


def _key_block(match: re.Match[str]) -> bool:
    """A key block, unless what follows its first line is a placeholder ("XXXX", "...")."""
    body = match.string[match.end() : match.end() + 80]
    return not any(mark in body for mark in ("XXXX", "xxxx", "...", "<", "…"))


def _url_password(match: re.Match[str]) -> bool:
    password = match.group("secret")
    if password == match.group("user") or is_placeholder(password):
        return False  # "guest:guest", the default of local brokers
    # A lowercase word is a path segment or a name ("org:repo@ref"), not a password.
    return len(password) >= 4 and not password.isalpha()


def _authorization(match: re.Match[str]) -> bool:
    value = match.group("secret")
    if len(value) < 8 or is_placeholder(value):
        return False
    # Credentials mix letters and digits; "Token Classification" is a title.
    classes = character_classes(value)
    return classes >= 3 or (classes == 2 and len(value) >= 24 and any(c.isdigit() for c in value))


# Names around a quoted literal that make a random-looking value not a credential.
_NOT_SECRET_CONTEXT = re.compile(
    r"(?i)(sha\d*|hash|digest|checksum|integrity|fingerprint|etag|commit|revision|nonce|uuid|"
    r"guid|_id\b|\bid\b|sid\b|sig(?:nature)?_?check|data:|image|icon|font|svg|base64,|sourcemap|"
    r"test_?vector|expected|fixture|snapshot|cache_?key|request_?id|trace)"
)


def _high_entropy(match: re.Match[str]) -> bool:
    value = match.group("secret")
    # Cheap tests first: most quoted runs are rejected by one of these.
    if _HEX.fullmatch(value) or value.startswith(PUBLIC_KEY_PREFIXES + BINARY_BASE64_PREFIXES):
        return False  # hashes and ids are hex; public keys and embedded files are not secret
    digits = sum(c.isdigit() for c in value)
    if digits < 2 or value.count(".") > 2 or character_classes(value) < 3:
        return False
    # Encoded data uses one alphabet, base64 ("+/") or base64url ("-_"), and "=" only as
    # padding at the end; names, paths and settings mix them ("org/Model-7B", "a=b").
    if _INNER_EQUALS.search(value) or (
        ("+" in value or "/" in value) and ("-" in value or "_" in value)
    ):
        return False
    if _CONSTANT_NAME.fullmatch(value) or word_fraction(value) >= 0.6 or is_snake_name(value):
        return False  # an identifier: "PPDocLayoutV4FrozenBatchNorm2d", "AT_BUILD_VEC256"
    if is_placeholder(value) or _UUID.search(value):
        return False
    threshold = min(4.2, 0.8 * len(set(value)).bit_length())
    if shannon_entropy(value) < threshold or not looks_random(value, 3.5):
        return False
    line_start = match.string.rfind("\n", 0, match.start()) + 1
    before = match.string[max(line_start, match.start() - 60) : match.start()]
    if _NOT_SECRET_CONTEXT.search(before):
        return False
    return not _encodes_text(value)  # base64 of readable text, not of random bytes


# -- the table -------------------------------------------------------------------------------------

_B64URL = r"[A-Za-z0-9_\-]"
_NAME = r"(?P<name>[A-Za-z_$][\w$.\-]{0,60})"
# `name = "value"`, `"name": "value"`, `name: value`, `NAME=value`, `:name => 'value'`,
# `name := "value"`, `name == "value"`, `<name>value</name>` is a separate rule.
_ASSIGNMENT = re.compile(
    _NAME + r"[\"'\]]{0,2}"
    # a type annotation between the name and "=" (`password: str = "..."`)
    r"(?:[ \t]*:[ \t]*[A-Za-z_][\w\[\], .|]{0,40}?(?==))?"
    r"(?P<op>[ \t]*(?:=>|:=|==|!=|=|:)[ \t]*)"
    r"(?:[rbuRBU]{0,2}(?P<quote>[\"'`])(?P<secret>(?:\\.|(?!(?P=quote))[^\n\\])*)"
    r"|(?P<bare>[^\s\"'`,;)}\]#]+))"
)
# Where a secret-sounding name may be: the assignment pattern is tried only from the start of
# the name around each of these.
_SECRET_WORD = re.compile(r"pass|pwd|pw|secret|token|key|cred|sas", re.IGNORECASE)
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_$.-")
_CONFIG_LEAD = re.compile(r"[ \t]*(?:export[ \t]+|-[ \t]+)?[\"'\[:]?")


def find_assignments(text: str) -> Iterator[re.Match[str]]:
    """Assignments whose name holds a secret word, tried only where such a word is."""
    searched_to = 0
    for word in _SECRET_WORD.finditer(text):
        if word.start() < searched_to:
            continue
        start = word.start()
        limit = max(0, start - 60)
        while start > limit and text[start - 1] in _NAME_CHARS:
            start -= 1
        while start < word.start() and not (text[start].isalpha() or text[start] in "_$"):
            start += 1  # a name starts with a letter, "_" or "$"
        match = _ASSIGNMENT.match(text, start)
        if match is None:
            searched_to = word.end()
            continue
        searched_to = match.end()
        yield match


def _at_line_start(match: re.Match[str]) -> bool:
    """Whether only indentation (and `export `, a YAML `- ` or an opening quote) precedes
    the name on its line."""
    text = match.string
    line_start = text.rfind("\n", 0, match.start()) + 1
    return _CONFIG_LEAD.fullmatch(text, line_start, match.start()) is not None


def secret_span(match: re.Match[str]) -> tuple[int, int]:
    """Where the secret of a rule's match is: its `secret` group, or an unquoted `bare` one."""
    start, end = match.span("secret")
    if start < 0 and "bare" in match.re.groupindex:
        return match.span("bare")
    return start, end


RULES: tuple[Rule, ...] = (
    Rule(
        "aws_access_key_id",
        re.compile(
            r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)(?P<body>[A-Z2-7]{16}))(?![A-Z0-9])"
        ),
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        validate=_random_secret(2.5),
    ),
    Rule(
        "aws_secret_access_key",
        re.compile(
            r"(?i)aws.{0,24}?(?:secret|sk).{0,24}?[=:>]\s*[\"']?"
            r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        ("aws",),
        lowercase=True,
        validate=_random_secret(4.0),
    ),
    Rule(
        "github_token",
        re.compile(r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36})(?![A-Za-z0-9_])"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        validate=_github_classic,
    ),
    Rule(
        "github_fine_grained_token",
        re.compile(r"(?P<secret>github_pat_(?P<body>[A-Za-z0-9]{22}_[A-Za-z0-9]{59}))(?!\w)"),
        ("github_pat_",),
        validate=_random_secret(4.0),
    ),
    Rule(
        "gitlab_token",
        re.compile(
            r"(?P<secret>(?:glpat|gldt|glrt|glcbt|glptt|glft|glsoat|gloas|glimt|glffct|glagent)"
            r"-(?P<body>" + _B64URL + r"{20,}))"
        ),
        ("glpat-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-", "glsoat-", "gloas-", "glimt-"),
        validate=_random_secret(3.5),
    ),
    Rule(
        "gitlab_runner_registration_token",
        re.compile(r"(?P<secret>GR1348941(?P<body>" + _B64URL + r"{20}))"),
        ("GR1348941",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "slack_token",
        re.compile(
            r"(?P<secret>xox[abposre]-(?:\d+-){1,3}(?P<body>[A-Za-z0-9]{8,}(?:-[A-Za-z0-9]+)?))"
        ),
        ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-"),
        validate=_random_secret(3.0),
    ),
    Rule(
        "slack_app_token",
        re.compile(r"(?P<secret>xapp-\d-[A-Z0-9]{9,12}-\d{10,16}-(?P<body>[a-f0-9]{64}))"),
        ("xapp-",),
        validate=_random_secret(3.0),
    ),
    Rule(
        "slack_webhook",
        re.compile(
            r"hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"(?P<secret>T[A-Z0-9]{8,12}/[A-Z0-9]{8,12}/(?P<body>[A-Za-z0-9]{24}))"
        ),
        ("hooks.slack.com",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "stripe_secret_key",
        re.compile(r"(?P<secret>(?:sk|rk)_(?:live|test)_(?P<body>[A-Za-z0-9]{24,99}))(?!\w)"),
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
        validate=_random_secret(3.5),
    ),
    Rule(
        "stripe_webhook_secret",
        re.compile(r"(?P<secret>whsec_(?P<body>[A-Za-z0-9]{32,}))"),
        ("whsec_",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "google_api_key",
        re.compile(r"(?P<secret>AIza(?P<body>[0-9A-Za-z_\-]{35}))(?![0-9A-Za-z_\-])"),
        ("AIza",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "google_oauth_client_secret",
        re.compile(r"(?P<secret>GOCSPX-(?P<body>[A-Za-z0-9_\-]{28}))"),
        ("GOCSPX-",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "azure_storage_key",
        re.compile(
            r"(?i)(?:AccountKey|SharedAccessKey|PrimaryKey|SecondaryKey)\s*=\s*"
            r"(?P<secret>[A-Za-z0-9+/]{40,86}={0,2})"
        ),
        ("accountkey", "sharedaccesskey", "primarykey", "secondarykey"),
        lowercase=True,
        validate=_random_secret(4.0),
    ),
    Rule(
        "azure_sas_signature",
        re.compile(r"[?&]sig=(?P<secret>[A-Za-z0-9%+/]{30,}(?:%3D|=){0,2})"),
        ("sig=",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "openai_api_key",
        re.compile(
            r"(?P<secret>sk-(?:proj-|svcacct-|admin-|None-)?(?P<body>"
            + _B64URL
            + r"{16,}T3BlbkFJ"
            + _B64URL
            + r"{16,}))"
        ),
        ("T3BlbkFJ",),
        validate=_not_example,
    ),
    Rule(
        "anthropic_api_key",
        re.compile(r"(?P<secret>sk-ant-(?:api|admin)\d{2}-(?P<body>" + _B64URL + r"{80,}))"),
        ("sk-ant-",),
        validate=_random_secret(4.0),
    ),
    Rule(
        "sk_api_key",
        re.compile(r"(?<![\w\-])(?P<secret>sk-(?P<body>[A-Za-z0-9]{32,64}))(?![\w\-])"),
        ("sk-",),
        validate=_random_secret(4.0),
    ),
    Rule(
        "twilio_api_key",
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>SK(?P<body>[0-9a-f]{32}))(?![A-Za-z0-9])"),
        ("SK",),
        validate=_random_secret(3.0),
    ),
    Rule(
        "sendgrid_api_key",
        re.compile(r"(?P<secret>SG\.(?P<body>" + _B64URL + r"{22}\." + _B64URL + r"{43}))"),
        ("SG.",),
        validate=_random_secret(4.0),
    ),
    Rule(
        "npm_token",
        re.compile(r"(?<![A-Za-z0-9_])(?P<secret>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9_])"),
        ("npm_",),
        validate=_github_classic,
    ),
    Rule(
        "pypi_token",
        re.compile(
            r"(?P<secret>pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)(?P<body>"
            + _B64URL
            + r"{50,}))"
        ),
        ("pypi-AgE",),
        validate=_random_secret(4.0),
    ),
    Rule(
        "jwt",
        re.compile(
            r"(?<![\w\-])(?P<secret>eyJ" + _B64URL + r"{10,}\.eyJ" + _B64URL + r"{10,}\."
            r"(?P<body>" + _B64URL + r"{16,}))"
        ),
        ("eyJ",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "private_key_block",
        re.compile(r"(?P<secret>-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----)"),
        ("PRIVATE KEY",),
        validate=_key_block,
    ),
    Rule(
        "huggingface_token",
        re.compile(r"(?<![\w\-])(?P<secret>hf_(?P<body>[A-Za-z]{34}))(?!\w)"),
        ("hf_",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "shopify_token",
        re.compile(r"(?P<secret>shp(?:at|ca|pa|ss)_(?P<body>[a-fA-F0-9]{32}))"),
        ("shpat_", "shpca_", "shppa_", "shpss_"),
        validate=_random_secret(3.0),
    ),
    Rule(
        "digitalocean_token",
        re.compile(r"(?P<secret>do[por]_v1_(?P<body>[a-f0-9]{64}))"),
        ("dop_v1_", "doo_v1_", "dor_v1_"),
        validate=_random_secret(3.0),
    ),
    Rule(
        "mailgun_api_key",
        re.compile(r"(?<![\w\-])(?P<secret>key-(?P<body>[0-9a-f]{32}))(?!\w)"),
        ("key-",),
        validate=_random_secret(3.0),
    ),
    Rule(
        "telegram_bot_token",
        re.compile(r"(?<!\d)(?P<secret>\d{8,10}:AA(?P<body>" + _B64URL + r"{33}))(?![\w\-])"),
        (":AA",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "databricks_token",
        re.compile(r"(?<!\w)(?P<secret>dapi(?P<body>[a-f0-9]{32})(?:-\d)?)(?!\w)"),
        ("dapi",),
        validate=_random_secret(3.0),
    ),
    Rule(
        "postman_api_key",
        re.compile(r"(?P<secret>PMAK-(?P<body>[a-f0-9]{24}-[a-f0-9]{34}))"),
        ("PMAK-",),
        validate=_random_secret(3.0),
    ),
    Rule(
        "age_secret_key",
        re.compile(r"(?P<secret>AGE-SECRET-KEY-1(?P<body>[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}))"),
        ("AGE-SECRET-KEY-1",),
        validate=_random_secret(3.5),
    ),
    Rule(
        "doppler_token",
        re.compile(
            r"(?P<secret>dp\.(?:st|ct|pt|sa|scim|audit)\.(?P<body>" + _B64URL + r"{40,44}))"
        ),
        ("dp.st.", "dp.ct.", "dp.pt.", "dp.sa.", "dp.scim.", "dp.audit."),
        validate=_random_secret(3.5),
    ),
    Rule(
        "new_relic_key",
        re.compile(r"(?P<secret>NR(?:AK|II|JS)-(?P<body>[A-Za-z0-9]{27,32}))"),
        ("NRAK-", "NRII-", "NRJS-"),
        validate=_random_secret(3.5),
    ),
    Rule(
        "grafana_token",
        re.compile(
            r"(?P<secret>(?:glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}|glc_(?P<body>[A-Za-z0-9+/]{32,}={0,2})))"
        ),
        ("glsa_", "glc_"),
        validate=_not_example,
    ),
    Rule(
        "linear_api_key",
        re.compile(r"(?P<secret>lin_api_(?P<body>[A-Za-z0-9]{40}))"),
        ("lin_api_",),
        validate=_random_secret(3.5),
    ),
    # -- context -------------------------------------------------------------------------------
    Rule(
        "url_password",
        re.compile(
            # userinfo: unreserved characters, sub-delimiters and %-escapes (RFC 3986), and
            # the "#?^" people leave unescaped in DSNs; never brackets or quotes
            r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://(?P<user>[\w.~%!$&()*+,;=\-]*)"
            r":(?P<secret>[\w.~%!$&()*+,;=#?^\-]+)@"
            r"[^\s'\"/@]+"
        ),
        ("://",),
        validate=_url_password,
    ),
    Rule(
        "url_query_secret",
        re.compile(
            r"(?i)[?&;](?:password|passwd|pwd|pass|secret|client_secret|api_?key|access_token|"
            r"auth_token|token)=(?P<secret>[^&\s'\"#;]{6,})"
        ),
        ("=",),
        validate=lambda m: is_literal_credential(m.group("secret")),
    ),
    Rule(
        "authorization_header",
        re.compile(
            r"(?i)(?:authorization[\"']?\s*[:=,]\s*[\"']?|[\"'`])(?:basic|bearer|token|digest)"
            r"\s+(?P<secret>[A-Za-z0-9+/=._~\-]{8,})"
        ),
        ("basic", "bearer", "token", "digest"),
        lowercase=True,
        validate=_authorization,
    ),
    Rule(
        "xml_secret_element",
        re.compile(
            r"<(?P<name>[\w.\-]*(?i:pass|secret|token|key)[\w.\-]*)>(?P<secret>[^<\s]{6,})</"
        ),
        ("</",),
        validate=lambda m: (
            is_secret_name(m.group("name")) and is_literal_credential(m.group("secret"))
        ),
    ),
    Rule(
        "secret_assignment",
        _ASSIGNMENT,
        validate=_assignment,
        finder=find_assignments,
    ),
    # -- entropy -------------------------------------------------------------------------------
    Rule(
        "high_entropy_string",
        re.compile(r"(?P<quote>[\"'`])(?P<secret>[A-Za-z0-9+/=_\-]{28,200})(?P=quote)"),
        validate=_high_entropy,
    ),
)
