"""The manifest of a Hugging Face checkpoint, from its tokenizer files and configs: FIM and
context tokens from the tokenizer's added tokens, end-of-text ids from config.json and
generation_config.json. It reads JSON files only; tokenizer.json itself is copied as is.
"""

from __future__ import annotations

from pathlib import Path

from onnx_models.decoder_weights import DecoderConfig, WeightsError
from onnx_models.hf_weights import read_json
from onnx_models.manifest import ModelManifest
from onnx_models.special_tokens import END_OF_MIDDLE, context_tokens, fim_spec

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
GENERATION_CONFIG_FILE = "generation_config.json"


def tokenizer_json(folder: Path) -> Path:
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        raise WeightsError(
            f"{folder} has no {TOKENIZER_FILE}; nexttoken reads fast tokenizers only. Convert a "
            f"slow (sentencepiece) one with transformers: "
            f"AutoTokenizer.from_pretrained(FOLDER).save_pretrained(FOLDER)"
        )
    return path


def added_tokens(folder: Path) -> dict[str, tuple[int, bool]]:
    """content -> (id, special) for every added token, from tokenizer.json and, where it
    has more, tokenizer_config.json."""
    tokens = {
        t["content"]: (int(t["id"]), bool(t.get("special", False)))
        for t in read_json(tokenizer_json(folder)).get("added_tokens", [])
    }
    config_path = folder / TOKENIZER_CONFIG_FILE
    if config_path.is_file():
        for token_id, t in read_json(config_path).get("added_tokens_decoder", {}).items():
            tokens.setdefault(t["content"], (int(token_id), bool(t.get("special", False))))
    return tokens


def _ids(value: object) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list) else [int(value)]


def _token_id(config: dict, key: str, tokens: dict[str, tuple[int, bool]]) -> list[int]:
    """The id of a token named in tokenizer_config.json (a string or {"content": ...})."""
    value = config.get(key)
    content = value.get("content") if isinstance(value, dict) else value
    return [tokens[content][0]] if content in tokens else []


def hf_manifest(
    folder: Path,
    cfg: DecoderConfig,
    *,
    name: str,
    family: str,
    source: dict[str, str],
    shared_kv_buffer: bool = True,
) -> ModelManifest:
    tokens = added_tokens(folder)
    special = {content for content, (_, is_special) in tokens.items() if is_special}
    config = read_json(folder / "config.json")
    tok_config = (
        read_json(folder / TOKENIZER_CONFIG_FILE)
        if (folder / TOKENIZER_CONFIG_FILE).is_file()
        else {}
    )
    generation = (
        read_json(folder / GENERATION_CONFIG_FILE)
        if (folder / GENERATION_CONFIG_FILE).is_file()
        else {}
    )
    roles = context_tokens(special)
    eos_ids: list[int] = []
    for token_id in (
        _ids(generation.get("eos_token_id"))
        + _ids(config.get("eos_token_id"))
        + _token_id(tok_config, "eos_token", tokens)
        + [tokens[t][0] for t in END_OF_MIDDLE if t in tokens]
        + ([tokens[roles["endoftext"]][0]] if "endoftext" in roles else [])
    ):
        if token_id not in eos_ids and 0 <= token_id < cfg.vocab_size:
            eos_ids.append(token_id)
    bos = _ids(config.get("bos_token_id")) or _token_id(tok_config, "bos_token", tokens)
    # FIM tokens must be added tokens (special or not), so that the prompt builder's text,
    # which spells them out, encodes each to its one id.
    fim = fim_spec(tokens)
    stops = special | {t for t in END_OF_MIDDLE if t in tokens}
    return cfg.manifest(
        shared_kv_buffer=shared_kv_buffer,
        name=name,
        family=family,
        bos_token_id=bos[0] if bos else None,
        eos_token_ids=tuple(eos_ids),
        special_tokens=roles,
        fim=fim,
        # Any special token ends a completion: it starts a new file, chat turn or repository.
        stop_tokens=tuple(sorted(stops, key=lambda t: tokens[t][0])),
        source=source,
    )
