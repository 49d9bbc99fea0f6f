"""Settings from the client's JSON: valid values apply, bad ones are named and fall back."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.settings import ServerSettings, client_section, parse_settings

BASE = ServerSettings(model_dir="/models/from-cli")


def test_nothing_sent_keeps_the_base() -> None:
    assert parse_settings(None, BASE).settings == BASE
    assert parse_settings({}, BASE).problems == ()


def test_section_and_bare_object_both_parse() -> None:
    values = {"enabled": False, "maxNewTokens": 16, "debounceMs": 40, "modelDir": "/m"}
    expected = ServerSettings(enabled=False, model_dir="/m", max_new_tokens=16, debounce_ms=40)
    assert parse_settings({"nexttoken": values}, BASE) == parse_settings(values, BASE)
    assert parse_settings(values, BASE).settings == expected
    assert parse_settings(values, BASE).problems == ()


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("maxNewTokens", 0, "max_new_tokens"),
        ("maxNewTokens", "32", "max_new_tokens"),
        ("maxNewTokens", True, "max_new_tokens"),
        ("maxNewTokens", 12.5, "max_new_tokens"),
        ("maxNewTokens", 100_000, "max_new_tokens"),
        ("debounceMs", -1, "debounce_ms"),
        ("enabled", "yes", "enabled"),
        ("enabled", 1, "enabled"),
        ("modelDir", 42, "model_dir"),
    ],
)
def test_invalid_value_is_named_and_the_base_value_kept(
    name: str, value: object, field: str
) -> None:
    # A valid neighbour still applies: one bad field does not spoil the rest.
    neighbour = (
        ("maxNewTokens", "max_new_tokens")
        if field != "max_new_tokens"
        else ("debounceMs", "debounce_ms")
    )
    parsed = parse_settings({"nexttoken": {name: value, neighbour[0]: 25}}, BASE)
    assert getattr(parsed.settings, field) == getattr(BASE, field)
    assert getattr(parsed.settings, neighbour[1]) == 25
    assert len(parsed.problems) == 1
    assert f"nexttoken.{name}" in parsed.problems[0]
    assert repr(value) in parsed.problems[0]


def test_whole_number_float_is_an_integer() -> None:
    assert parse_settings({"maxNewTokens": 32.0}, BASE).settings.max_new_tokens == 32


def test_unknown_setting_is_reported() -> None:
    parsed = parse_settings({"maxTokens": 10}, BASE)
    assert parsed.settings == BASE
    assert "nexttoken.maxTokens" in parsed.problems[0]
    assert "maxNewTokens" in parsed.problems[0]  # the message lists the real names


def test_not_an_object_is_reported() -> None:
    parsed = parse_settings(["maxNewTokens", 3], BASE)
    assert parsed.settings == BASE
    assert "JSON object" in parsed.problems[0]


def test_empty_model_dir_keeps_the_command_line_folder() -> None:
    assert parse_settings({"modelDir": ""}, BASE).settings.model_dir == "/models/from-cli"
    home = parse_settings({"modelDir": "~/m"}, BASE).settings.model_dir
    assert home == str(Path("~/m").expanduser())


def test_client_section_ignores_other_extensions_settings() -> None:
    assert client_section({"python": {"analysis": {}}}) is None
    assert client_section(None) is None
    assert client_section({"nexttoken": {"enabled": False}}) == {"enabled": False}
    assert client_section({"enabled": False}) == {"enabled": False}
