"""Which of a tokenizer's special tokens mean fill-in-the-middle, repository context or end of
text, by their spelling in the code model families we know. Shared by the GGUF and Hugging Face
manifest writers; it reads token strings only.
"""

from __future__ import annotations

from collections.abc import Collection

from onnx_models.manifest import FimSpec

# FIM token spellings used by code model families, as (prefix, suffix, middle).
FIM_SPELLINGS: tuple[tuple[str, str, str], ...] = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, SantaCoder
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),  # DeepSeek-Coder
    ("▁<PRE>", "▁<SUF>", "▁<MID>"),  # CodeLlama (Hugging Face tokenizer)
    ("<PRE>", "<SUF>", "<MID>"),  # CodeLlama (GGUF)
)
# Special tokens the prompt builder may use to frame repository context, by role.
CONTEXT_TOKEN_ROLES: dict[str, tuple[str, ...]] = {
    "repo_name": ("<repo_name>", "<reponame>", "<|repo_name|>"),
    "file_sep": ("<file_sep>", "<|file_sep|>"),
    "filename": ("<filename>",),
    "endoftext": ("<|endoftext|>",),
}
# Tokens that end an infilled middle in families whose end-of-text token is another one.
END_OF_MIDDLE = ("<|EOT|>", "▁<EOT>", "<EOT>")


def fim_spec(tokens: Collection[str]) -> FimSpec | None:
    """The FIM spec whose three tokens are all among `tokens`; None: the model runs left to
    right."""
    for prefix, suffix, middle in FIM_SPELLINGS:
        if {prefix, suffix, middle} <= set(tokens):
            return FimSpec(prefix=prefix, suffix=suffix, middle=middle, order="psm")
    return None


def context_tokens(tokens: Collection[str]) -> dict[str, str]:
    """Role -> spelling for the repository-context tokens present in `tokens`."""
    found: dict[str, str] = {}
    for role, spellings in CONTEXT_TOKEN_ROLES.items():
        for spelling in spellings:
            if spelling in tokens:
                found[role] = spelling
                break
    return found
