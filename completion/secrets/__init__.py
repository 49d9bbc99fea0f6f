"""Keeping credentials out of prompts and suggestions: rules, the filter, workspace secrets."""

from completion.secrets.filter import MASK, CheckedSuggestion, Finding, SecretFilter
from completion.secrets.workspace import WorkspaceSecrets, env_values, is_secret_file

__all__ = [
    "MASK",
    "CheckedSuggestion",
    "Finding",
    "SecretFilter",
    "WorkspaceSecrets",
    "env_values",
    "is_secret_file",
]
