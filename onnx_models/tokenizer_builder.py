"""Build a `tokenizers.Tokenizer` (and its tokenizer.json) from the metadata of a GGUF file.

A GGUF stores the vocabulary, the merges and the token types under llama.cpp's key names but no
tokenizer.json, so the model builder recreates one here: the same pieces llama.cpp would use to
tokenize, expressed as a Hugging Face `tokenizers` pipeline that the runtime can load without
llama.cpp, transformers or PyTorch.

Only byte-level BPE vocabularies (`tokenizer.ggml.model = gpt2`) are built. How text is split
before BPE depends on `tokenizer.ggml.pre`; that choice is the table `PRE_TOKENIZER_RULES`, so
another family is one more row, not another code path. This module reads metadata only; it never
touches tensors and never writes anywhere but the path it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

TOKENIZER_FILE = "tokenizer.json"


class TokenizerBuildError(Exception):
    """The GGUF describes a tokenizer this builder cannot (yet) reproduce faithfully."""


class TokenType(IntEnum):
    """llama.cpp's `tokenizer.ggml.token_type` values."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


@dataclass(frozen=True)
class PreTokenizerRule:
    """How one `tokenizer.ggml.pre` value cuts text into pieces before the BPE merges.

    `splits` are applied in order, each one cutting every piece further and keeping both the
    matches and the text between them (llama.cpp's `unicode_regex_split`). `ignore_merges` makes
    a piece that is itself a vocabulary entry one token without merging (llama-3 style vocabs).
    """

    splits: tuple[str, ...]
    ignore_merges: bool = False


# The regexes are transcribed from llama.cpp's `llm_tokenizer_bpe` (src/llama-vocab.cpp), which
# is what the GGUF's own runtime does. llama.cpp spells GPT-2's pattern without the trailing
# `|\s+`; with "isolated" splitting that makes no difference, because a whitespace character no
# alternative matches still becomes a piece of its own.
_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
# Each digit on its own first, then GPT-2's pattern. This equals SmolLM2's tokenizer.json
# (Digits(individual_digits=True) followed by ByteLevel(use_regex=True)).
_STARCODER = PreTokenizerRule(splits=(r"\p{N}", _GPT2_SPLIT))
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Keyed by `tokenizer.ggml.pre`. gpt2 and smollm are checked against transformers by the tests;
# the other rows are transcriptions from llama.cpp waiting for a test with a real file.
PRE_TOKENIZER_RULES: dict[str, PreTokenizerRule] = {
    "gpt2": PreTokenizerRule(splits=(_GPT2_SPLIT,)),
    "smollm": _STARCODER,
    "starcoder": _STARCODER,
    "refact": _STARCODER,
    "codeshell": _STARCODER,
    "qwen2": PreTokenizerRule(splits=(_QWEN2_SPLIT,)),
    "llama-bpe": PreTokenizerRule(splits=(_LLAMA3_SPLIT,), ignore_merges=True),
}

# GGUF keys of the token ids a prompt builder or a stop rule may need, and the names the
# manifest lists them under.
_ROLE_KEYS: dict[str, str] = {
    "bos": gguf.Keys.Tokenizer.BOS_ID,
    "eos": gguf.Keys.Tokenizer.EOS_ID,
    "eot": gguf.Keys.Tokenizer.EOT_ID,
    "eom": gguf.Keys.Tokenizer.EOM_ID,
    "unk": gguf.Keys.Tokenizer.UNK_ID,
    "pad": gguf.Keys.Tokenizer.PAD_ID,
    "sep": gguf.Keys.Tokenizer.SEP_ID,
    "mask": gguf.Keys.Tokenizer.MASK_ID,
    "fim_prefix": gguf.Keys.Tokenizer.FIM_PRE_ID,
    "fim_suffix": gguf.Keys.Tokenizer.FIM_SUF_ID,
    "fim_middle": gguf.Keys.Tokenizer.FIM_MID_ID,
    "fim_pad": gguf.Keys.Tokenizer.FIM_PAD_ID,
    "fim_repo": gguf.Keys.Tokenizer.FIM_REP_ID,
    "fim_file_sep": gguf.Keys.Tokenizer.FIM_SEP_ID,
}


@dataclass(frozen=True)
class SpecialToken:
    """A token the model treats as markup: its role name, its text and its id."""

    name: str  # "eos", "file_sep", "repo_name", ...
    text: str  # "<|im_end|>", "<file_sep>", ...
    id: int


@dataclass(frozen=True)
class GgufVocab:
    """The tokenizer part of a GGUF's metadata, read once."""

    model: str
    pre: str
    tokens: tuple[str, ...]
    token_types: tuple[int, ...]
    merges: tuple[str, ...]
    role_ids: dict[str, int]  # "bos" -> 1, "eos" -> 2, ... for the role keys present
    add_bos: bool
    add_eos: bool
    hf_json: str | None  # some converters embed the original tokenizer.json; it wins if present


@cache
def byte_level_alphabet() -> tuple[str, ...]:
    """The printable character GPT-2's byte-level BPE writes for each byte value 0..255.

    Printable Latin-1 bytes stand for themselves; the others (controls, space, DEL, NBSP, soft
    hyphen) are moved to U+0100 upwards in byte order, so every byte has a visible, non-space
    spelling that a vocabulary file can hold.
    """
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    spelling: dict[int, str] = {byte: chr(byte) for byte in printable}
    moved = 0
    for byte in range(256):
        if byte not in spelling:
            spelling[byte] = chr(0x100 + moved)
            moved += 1
    return tuple(spelling[byte] for byte in range(256))


@cache
def byte_level_decoding() -> dict[str, int]:
    """The inverse of `byte_level_alphabet`: spelling character -> byte value."""
    return {char: byte for byte, char in enumerate(byte_level_alphabet())}


def _field(reader: gguf.GGUFReader, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def read_vocab(reader: gguf.GGUFReader) -> GgufVocab:
    """Read the tokenizer metadata of a GGUF; raises TokenizerBuildError if it has none."""
    keys = gguf.Keys.Tokenizer
    tokens = _field(reader, keys.LIST)
    if not tokens:
        raise TokenizerBuildError(f"the GGUF has no {keys.LIST}; it carries no tokenizer")
    token_types = _field(reader, keys.TOKEN_TYPE) or [TokenType.NORMAL] * len(tokens)
    if len(token_types) != len(tokens):
        raise TokenizerBuildError(
            f"the GGUF lists {len(tokens)} tokens but {len(token_types)} token types"
        )
    role_ids = {}
    for name, key in _ROLE_KEYS.items():
        value = _field(reader, key)
        if value is not None and 0 <= int(value) < len(tokens):
            role_ids[name] = int(value)
    return GgufVocab(
        model=str(_field(reader, keys.MODEL) or ""),
        pre=str(_field(reader, keys.PRE) or "default"),
        tokens=tuple(tokens),
        token_types=tuple(int(t) for t in token_types),
        merges=tuple(_field(reader, keys.MERGES) or ()),
        role_ids=role_ids,
        add_bos=bool(_field(reader, keys.ADD_BOS)),
        add_eos=bool(_field(reader, keys.ADD_EOS)),
        hf_json=_field(reader, keys.HF_JSON),
    )


def build_tokenizer(reader: gguf.GGUFReader) -> Tokenizer:
    """The tokenizer a GGUF describes, splitting and merging text the way llama.cpp does."""
    return tokenizer_from_vocab(read_vocab(reader))


def tokenizer_from_vocab(vocab: GgufVocab) -> Tokenizer:
    """`build_tokenizer` for metadata already read (the builder reads a GGUF once)."""
    if vocab.hf_json:
        return Tokenizer.from_str(vocab.hf_json)
    if vocab.model != "gpt2":
        raise TokenizerBuildError(
            f"tokenizer.ggml.model = {vocab.model!r}: only byte-level BPE ('gpt2') vocabularies "
            "can be rebuilt so far; export the model from its Hugging Face checkpoint instead"
        )
    rule = PRE_TOKENIZER_RULES.get(vocab.pre)
    if rule is None:
        raise TokenizerBuildError(
            f"tokenizer.ggml.pre = {vocab.pre!r} has no pre-tokenizer rule; known: "
            f"{', '.join(sorted(PRE_TOKENIZER_RULES))}. Add a row to PRE_TOKENIZER_RULES with "
            "the regexes llama.cpp uses for it (src/llama-vocab.cpp)"
        )

    token_ids = {token: index for index, token in enumerate(vocab.tokens)}
    if len(token_ids) != len(vocab.tokens):
        raise TokenizerBuildError("the GGUF vocabulary lists the same token twice")
    bpe = models.BPE(
        vocab=token_ids,
        merges=_parse_merges(vocab.merges),
        ignore_merges=rule.ignore_merges,
        # Byte-level BPE can spell any text from its 256 byte tokens; nothing is ever unknown.
        unk_token=None,
        fuse_unk=False,
        byte_fallback=False,
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(pattern), behavior="isolated") for pattern in rule.splits]
        # The regexes above already cut the text, so ByteLevel only respells bytes.
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()

    # Control tokens (<|endoftext|>, <file_sep>, ...) are matched whole before any splitting and
    # count as special, so `decode(skip_special_tokens=True)` drops them; user-defined tokens are
    # matched whole too but are ordinary text.
    special = [
        AddedToken(token, special=True, normalized=False)
        for token, kind in zip(vocab.tokens, vocab.token_types, strict=True)
        if kind == TokenType.CONTROL
    ]
    user_defined = [
        AddedToken(token, special=False, normalized=False)
        for token, kind in zip(vocab.tokens, vocab.token_types, strict=True)
        if kind == TokenType.USER_DEFINED
    ]
    tokenizer.add_special_tokens(special)
    tokenizer.add_tokens(user_defined)
    _set_post_processor(tokenizer, vocab)
    return tokenizer


def _parse_merges(merges: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for merge in merges:
        # Byte-level tokens spell a space as "Ġ", so the one real space separates the pair.
        parts = merge.split(" ")
        if len(parts) != 2:
            raise TokenizerBuildError(f"merge {merge!r} is not two tokens separated by a space")
        pairs.append((parts[0], parts[1]))
    return pairs


def _set_post_processor(tokenizer: Tokenizer, vocab: GgufVocab) -> None:
    """Add BOS/EOS around an encoding exactly when the GGUF says llama.cpp would."""
    single, pair, used = ["$A"], ["$A", "$B"], []
    for role, add, at_end in (("bos", vocab.add_bos, False), ("eos", vocab.add_eos, True)):
        if not add or role not in vocab.role_ids:
            continue
        text = vocab.tokens[vocab.role_ids[role]]
        used.append((text, vocab.role_ids[role]))
        if at_end:
            single, pair = [*single, text], [*pair, text]
        else:
            single, pair = [text, *single], [text, *pair]
    if used:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=" ".join(single), pair=" ".join(pair), special_tokens=used
        )


def special_tokens(reader_or_vocab: gguf.GGUFReader | GgufVocab) -> dict[str, SpecialToken]:
    """Every token a prompt builder or stop rule may name, by role name.

    Roles from the GGUF's id keys ("bos", "eos", "pad", "fim_prefix", ...) come first; then every
    control token under its own name without the brackets ("<file_sep>" -> "file_sep",
    "<|endoftext|>" -> "endoftext"). A role name always wins over a derived one.
    """
    vocab = (
        reader_or_vocab if isinstance(reader_or_vocab, GgufVocab) else read_vocab(reader_or_vocab)
    )
    found = {
        name: SpecialToken(name=name, text=vocab.tokens[index], id=index)
        for name, index in vocab.role_ids.items()
    }
    for index, (token, kind) in enumerate(zip(vocab.tokens, vocab.token_types, strict=True)):
        if kind != TokenType.CONTROL:
            continue
        name = token.strip("<>").strip("|")
        if name and name not in found:
            found[name] = SpecialToken(name=name, text=token, id=index)
    return found


def write_tokenizer_json(reader: gguf.GGUFReader, folder: Path) -> Path:
    """Build the GGUF's tokenizer and save it as `folder/tokenizer.json`; returns that path."""
    path = folder / TOKENIZER_FILE
    build_tokenizer(reader).save(str(path))
    return path
