"""The tokenizer rebuilt from the GGUF must tokenize exactly like the model's own tokenizer."""

from __future__ import annotations

import dataclasses
import inspect
import json
import textwrap
from pathlib import Path

import gguf
import pytest
from tokenizers import Regex, Tokenizer, pre_tokenizers

from onnx_models.tokenizer_builder import (
    PRE_TOKENIZER_RULES,
    TokenizerBuildError,
    byte_level_alphabet,
    byte_level_decoding,
    read_vocab,
    special_tokens,
    tokenizer_from_vocab,
    write_tokenizer_json,
)

CODE_SAMPLES = [
    "def add(a, b):\n    return a + b\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n"
    "        self.items.append(x)\n",
    "if x:\n\tprint('tab indented')\n\t\tdeeper = 1\n",
    "line one\r\nline two\r\n\r\n    indented after crlf\r\n",
    "total = 1234567890 + 3.14159e-10 - 0x1F * 007\n",
    "naïve = 'café' + \"日本語\" + '🎉🐍'  # ünïcödé\n",
    "x = [1,2,3]\n\n\n\n        \n",
    "    ",
    "\n    ",
    "trailing spaces   ",
    "it's they're we've I'm you'll he'd",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }\n",
    "   \t  \n\t\n  mixed whitespace",
    "",
]
# A few real modules for volume: indentation, docstrings, regexes, string escapes.
CODE_SAMPLES += [inspect.getsource(textwrap), inspect.getsource(json.encoder)]

# Numerals that are not ASCII digits: SmolLM2's tokenizer.json (Digits(individual_digits=True)
# before ByteLevel) and llama.cpp split every \p{N} character off, transformers' GGUF loader
# does not (it has no row for "smollm").
UNICODE_NUMERAL_SAMPLES = ["x² + y² = r²", "½ ¼ ¾", "٣٤٥ and ४५", "area = πr² ²³"]


@pytest.fixture(scope="session")
def hf_gguf_tokenizer(gguf_path: Path):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name
    )


@pytest.fixture(scope="session")
def smollm2_json_style(smollm_tokenizer: Tokenizer) -> Tokenizer:
    """Our BPE model behind the pre-tokenizer SmolLM2's own tokenizer.json declares."""
    reference = Tokenizer.from_str(smollm_tokenizer.to_str())
    reference.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    return reference


@pytest.mark.parametrize("text", CODE_SAMPLES)
def test_round_trip(smollm_tokenizer: Tokenizer, text: str) -> None:
    ids = smollm_tokenizer.encode(text).ids
    assert smollm_tokenizer.decode(ids, skip_special_tokens=False) == text


@pytest.mark.parametrize("text", CODE_SAMPLES)
def test_equals_transformers_gguf_loader(
    smollm_tokenizer: Tokenizer, hf_gguf_tokenizer, text: str
) -> None:
    ours = smollm_tokenizer.encode(text).ids
    assert ours == hf_gguf_tokenizer.encode(text, add_special_tokens=False)
    assert smollm_tokenizer.decode(ours) == hf_gguf_tokenizer.decode(ours)


@pytest.mark.parametrize("text", CODE_SAMPLES + UNICODE_NUMERAL_SAMPLES)
def test_equals_smollm2_tokenizer_json_pipeline(
    smollm_tokenizer: Tokenizer, smollm2_json_style: Tokenizer, text: str
) -> None:
    assert smollm_tokenizer.encode(text).ids == smollm2_json_style.encode(text).ids


def test_unicode_numerals_split_like_llama_cpp_not_like_transformers(
    smollm_tokenizer: Tokenizer, hf_gguf_tokenizer
) -> None:
    # " ²" is one vocabulary entry, but llama.cpp's smollm rule cuts "²" off the space first.
    ours = smollm_tokenizer.encode(" ²").ids
    assert [smollm_tokenizer.id_to_token(i) for i in ours] == ["Ġ", "Â²"]
    assert hf_gguf_tokenizer.encode(" ²", add_special_tokens=False) != ours


def test_control_tokens_are_never_split(smollm_tokenizer: Tokenizer) -> None:
    text = "<repo_name>nexttoken<file_sep>src/a.py\nprint(1)<|endoftext|>"
    ids = smollm_tokenizer.encode(text).ids
    assert ids[0] == smollm_tokenizer.token_to_id("<repo_name>") == 3
    assert smollm_tokenizer.token_to_id("<file_sep>") in ids
    assert ids[-1] == 0
    assert smollm_tokenizer.decode(ids) == "nexttokensrc/a.py\nprint(1)"
    assert smollm_tokenizer.decode(ids, skip_special_tokens=False) == text


def test_no_bos_added_because_the_gguf_says_so(smollm_tokenizer: Tokenizer) -> None:
    assert (
        smollm_tokenizer.encode("hello").ids
        == smollm_tokenizer.encode("hello", add_special_tokens=False).ids
    )


def test_special_token_names(gguf_reader: gguf.GGUFReader) -> None:
    names = special_tokens(gguf_reader)
    assert (names["eos"].text, names["eos"].id) == ("<|im_end|>", 2)
    assert (names["bos"].text, names["bos"].id) == ("<|im_start|>", 1)
    assert names["endoftext"].id == 0
    assert names["file_sep"].text == "<file_sep>"
    assert names["filename"].id == 6
    assert names["repo_name"].id == 3
    assert names["jupyter_code"].text == "<jupyter_code>"


def test_written_tokenizer_json_loads_and_agrees(
    gguf_reader: gguf.GGUFReader, smollm_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    path = write_tokenizer_json(gguf_reader, tmp_path)
    loaded = Tokenizer.from_file(str(path))
    for text in CODE_SAMPLES[:6]:
        assert loaded.encode(text).ids == smollm_tokenizer.encode(text).ids
    assert loaded.get_vocab_size() == 49152


def test_add_bos_flag_adds_bos(gguf_reader: gguf.GGUFReader) -> None:
    vocab = dataclasses.replace(read_vocab(gguf_reader), add_bos=True)
    assert tokenizer_from_vocab(vocab).encode("hi").ids[0] == 1


def test_unknown_pre_tokenizer_is_a_clear_error(gguf_reader: gguf.GGUFReader) -> None:
    vocab = dataclasses.replace(read_vocab(gguf_reader), pre="mystery-bpe")
    with pytest.raises(TokenizerBuildError, match="mystery-bpe"):
        tokenizer_from_vocab(vocab)


def test_sentencepiece_vocab_is_refused(gguf_reader: gguf.GGUFReader) -> None:
    vocab = dataclasses.replace(read_vocab(gguf_reader), model="llama")
    with pytest.raises(TokenizerBuildError, match="byte-level"):
        tokenizer_from_vocab(vocab)


def test_byte_level_alphabet_is_gpt2s() -> None:
    alphabet = byte_level_alphabet()
    assert len(set(alphabet)) == 256
    assert alphabet[ord(" ")] == "Ġ" and alphabet[ord("\n")] == "Ċ" and alphabet[ord("a")] == "a"
    assert byte_level_decoding()["Ġ"] == 0x20
    # The tokenizers library agrees on the set of characters.
    assert set(alphabet) == set(pre_tokenizers.ByteLevel.alphabet())


def test_regex_rows_compile() -> None:
    for rule in PRE_TOKENIZER_RULES.values():
        for pattern in rule.splits:
            Regex(pattern)
