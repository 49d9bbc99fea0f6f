"""Importing Hugging Face checkpoints: the ONNX graph computes what transformers computes.

Each architecture gets a tiny random-weight checkpoint written locally with save_pretrained
(no downloads) and a byte-level BPE tokenizer trained here with FIM tokens in one family's
spelling; the import must match transformers' logits at every position (full prefill and step
by step through the KV cache), decode the same greedy tokens, and find the FIM tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from onnx_models.architectures import UnsupportedArchitectureError
from onnx_models.decoder_weights import WeightsError
from onnx_models.engine import Engine
from onnx_models.graph_builder import GraphOptions
from onnx_models.hf_import import build_hf_model_folder
from onnx_models.special_tokens import FIM_SPELLINGS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n",
    "for i in range(10):\n    print(i * i)\n",
    "import os\nimport sys\n\nif __name__ == '__main__':\n    main(sys.argv)\n",
    "function greet(name) { return `hello ${name}`; }\n",
]
PROMPT = "def push(self, item):\n    self.items.append(item)\n    return len(self.items)\n"
SIZES = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)


@dataclass(frozen=True)
class Case:
    config_class: str
    fim: tuple[str, str, str] | None
    bf16: bool = False  # saved in bfloat16 (read by widening the raw bits)
    shard: bool = False  # saved in several files with an index
    sentencepiece: bool = False  # Llama 2 style: "▁" for spaces, byte fallback, </s>


CASES = {
    "llama": Case("LlamaConfig", FIM_SPELLINGS[2], shard=True),  # DeepSeek-Coder's spelling
    "qwen2": Case("Qwen2Config", FIM_SPELLINGS[1], bf16=True),
    "starcoder2": Case("Starcoder2Config", FIM_SPELLINGS[0]),
}


def train_tokenizer(special: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    return tok


def train_sentencepiece_tokenizer(special: list[str]) -> Tokenizer:
    """Shaped like CodeLlama's tokenizer.json: BPE over "▁"-joined text, <0xHH> byte pieces,
    a decoder that strips the leading space."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    trainer = trainers.BpeTrainer(vocab_size=240, special_tokens=special, show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    return Tokenizer.from_str(json.dumps(data))


def write_checkpoint(folder: Path, case: Case) -> None:
    if case.sentencepiece:
        eos_token = "</s>"
        tok = train_sentencepiece_tokenizer(
            ["<unk>", "<s>", eos_token, *(case.fim or ()), "▁<EOT>"]
        )
    else:
        eos_token = "<|endoftext|>"
        tok = train_tokenizer([eos_token, *(case.fim or ())])
    eos = tok.token_to_id(eos_token)
    config = getattr(transformers, case.config_class)(
        vocab_size=tok.get_vocab_size(),
        bos_token_id=eos,
        eos_token_id=eos,
        tie_word_embeddings=case.config_class == "Starcoder2Config",
        **SIZES,
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    # Default init leaves norms at one and biases at zero, which would hide a misplaced one.
    with torch.no_grad():
        for name, p in model.named_parameters():
            centre = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.normal_(centre, 0.1)
    if case.bf16:
        model = model.to(torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="40KB" if case.shard else "1GB")
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": eos_token}))


@pytest.fixture(scope="module", params=sorted(CASES))
def imported(request, tmp_path_factory) -> tuple[Case, Path, Path]:
    case = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    checkpoint = root / "checkpoint"
    write_checkpoint(checkpoint, case)
    model_dir = build_hf_model_folder(
        checkpoint, root / "model", name=request.param, options=GraphOptions(weights="fp32")
    )
    return case, checkpoint, model_dir


def reference_logits(checkpoint: Path, ids: list[int]) -> np.ndarray:
    model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def test_checkpoint_layouts_are_exercised(imported) -> None:
    case, checkpoint, _ = imported
    assert (checkpoint / "model.safetensors.index.json").is_file() == case.shard
    dtype = json.loads((checkpoint / "config.json").read_text())["dtype"]
    assert dtype == ("bfloat16" if case.bf16 else "float32")


def test_logits_match_transformers_at_every_position(imported) -> None:
    _, checkpoint, model_dir = imported
    engine = Engine.load(model_dir)
    ids = engine.tokenizer.encode(PROMPT).ids
    assert len(ids) >= 16
    expected = reference_logits(checkpoint, ids)

    engine.prefill(ids)
    np.testing.assert_allclose(engine.logits, expected[-1], atol=1e-3, rtol=0)
    engine.rewind(0)
    engine.prefill(ids[:4])
    np.testing.assert_allclose(engine.logits, expected[3], atol=1e-3, rtol=0)
    for pos in range(4, len(ids)):
        engine.step(ids[pos])
        np.testing.assert_allclose(engine.logits, expected[pos], atol=1e-3, rtol=0)


def test_greedy_tokens_match_transformers(imported) -> None:
    _, checkpoint, model_dir = imported
    engine = Engine.load(model_dir)
    ids = engine.tokenizer.encode(PROMPT).ids
    ours = engine.generate(ids, max_new_tokens=16, stop_token_ids=frozenset()).tokens
    model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    theirs: list[int] = []
    with torch.no_grad():
        for _ in range(16):
            logits = model(torch.tensor([ids + theirs])).logits[0, -1]
            theirs.append(int(logits.argmax()))
    assert list(ours) == theirs


def test_manifest_names_the_tokenizers_fim_tokens(imported) -> None:
    case, _, model_dir = imported
    manifest = Engine.load(model_dir).manifest
    assert manifest.fim is not None
    assert (manifest.fim.prefix, manifest.fim.suffix, manifest.fim.middle) == case.fim
    assert manifest.architecture == json.loads((model_dir / "manifest.json").read_text())["family"]
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    eos = tokenizer.token_to_id("<|endoftext|>")
    assert manifest.eos_token_ids == (eos,)
    assert "<|endoftext|>" in manifest.stop_tokens
    # The prompt builder spells FIM tokens out in text: each must encode to its one id.
    text = f"{case.fim[0]}a{case.fim[1]}b{case.fim[2]}"
    assert tokenizer.encode(text).ids[0] == tokenizer.token_to_id(case.fim[0])


# The contrib operators each block shape should fuse into, by architecture.
FUSED_OPS = {
    "llama": {"SkipSimplifiedLayerNormalization", "Sigmoid"},
    "qwen2": {"SkipSimplifiedLayerNormalization", "Sigmoid"},
    "starcoder2": {"SkipLayerNormalization", "FastGelu"},
}


def test_graph_fuses_the_architectures_norm_and_activation(imported) -> None:
    import onnx

    _, _, model_dir = imported
    graph = onnx.load(str(model_dir / "model.onnx"), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    architecture = json.loads((model_dir / "manifest.json").read_text())["architecture"]
    assert FUSED_OPS[architecture] <= ops
    assert not (set().union(*FUSED_OPS.values()) - FUSED_OPS[architecture]) & ops


def test_a_tokenizer_without_fim_tokens_runs_left_to_right(tmp_path: Path) -> None:
    checkpoint = tmp_path / "plain"
    write_checkpoint(checkpoint, Case("LlamaConfig", None))
    model_dir = build_hf_model_folder(checkpoint, tmp_path / "model", name="plain")
    manifest = Engine.load(model_dir).manifest
    assert manifest.fim is None
    assert manifest.name == "plain"


@pytest.mark.parametrize(
    "attention, act",
    [("portable", "gelu_pytorch_tanh"), ("portable", "gelu"), ("gqa", "gelu")],
)
def test_layer_norm_and_gelu_variants_match(tmp_path: Path, attention: str, act: str) -> None:
    """The standard-operator fallback (LayerNormalization, GELU spelled out) and exact GELU."""
    checkpoint = tmp_path / "sc2"
    write_checkpoint(checkpoint, CASES["starcoder2"])
    _edit_config(checkpoint, hidden_act=act)
    model_dir = build_hf_model_folder(
        checkpoint, tmp_path / "model", name="sc2", options=GraphOptions(attention=attention)
    )
    engine = Engine.load(model_dir)
    ids = engine.tokenizer.encode(PROMPT).ids
    expected = reference_logits(checkpoint, ids)
    engine.prefill(ids[:-1])
    engine.step(ids[-1])
    np.testing.assert_allclose(engine.logits, expected[-1], atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    "rope",
    [
        {"rope_type": "linear", "factor": 4.0},
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    ],
    ids=["linear", "llama3"],
)
def test_scaled_rope_matches_transformers(tmp_path: Path, rope: dict) -> None:
    checkpoint = tmp_path / "scaled"
    write_checkpoint(checkpoint, Case("LlamaConfig", None))
    _edit_config(checkpoint, rope_parameters={"rope_theta": 10000.0, **rope})
    model_dir = build_hf_model_folder(
        checkpoint, tmp_path / "model", name="scaled", options=GraphOptions(weights="fp32")
    )
    engine = Engine.load(model_dir)
    ids = engine.tokenizer.encode(PROMPT * 3).ids
    engine.prefill(ids)
    np.testing.assert_allclose(engine.logits, reference_logits(checkpoint, ids)[-1], atol=1e-3)


@pytest.mark.parametrize(
    "breakage, error, words",
    [
        (lambda c: (c / "config.json").unlink(), WeightsError, "config.json"),
        (lambda c: (c / "tokenizer.json").unlink(), WeightsError, "tokenizer.json"),
        (
            lambda c: _edit_config(c, model_type="gpt_neox"),
            UnsupportedArchitectureError,
            "gpt_neox",
        ),
        (
            lambda c: _edit_config(c, rope_parameters={"rope_type": "yarn", "factor": 4.0}),
            WeightsError,
            "yarn",
        ),
        (lambda c: (c / "model.safetensors").unlink(), WeightsError, "safetensors"),
    ],
    ids=["no-config", "no-tokenizer", "model-type", "rope-scaling", "no-weights"],
)
def test_unusable_checkpoints_fail_with_a_clear_error(tmp_path: Path, breakage, error, words):
    checkpoint = tmp_path / "broken"
    write_checkpoint(checkpoint, Case("LlamaConfig", None))
    breakage(checkpoint)
    with pytest.raises(error, match=words):
        build_hf_model_folder(checkpoint, tmp_path / "model", name="broken")
    assert not (tmp_path / "model").exists()


def _edit_config(folder: Path, **changes: object) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("arch", ["llama", "starcoder2"])
def test_eight_bit_weights_lose_less_than_four_bit(tmp_path: Path, arch: str) -> None:
    checkpoint = tmp_path / arch
    write_checkpoint(checkpoint, CASES[arch])
    ids = Tokenizer.from_file(str(checkpoint / "tokenizer.json")).encode(PROMPT).ids
    expected = reference_logits(checkpoint, ids)[-1]
    errors = {}
    for weights in ("q4", "q8"):
        model_dir = build_hf_model_folder(
            checkpoint, tmp_path / weights, name=weights, options=GraphOptions(weights=weights)
        )
        engine = Engine.load(model_dir)
        engine.prefill(ids)
        errors[weights] = float(np.abs(engine.logits - expected).max())
    # 255 levels against 15 a block: measured ~15x less error on these random weights.
    assert 0 < errors["q8"] < errors["q4"] / 4


@pytest.mark.parametrize("arch", ["llama", "starcoder2"])  # a separate head, a tied one
def test_rescored_head_gives_the_float_heads_best_logits(tmp_path: Path, arch: str) -> None:
    checkpoint = tmp_path / arch
    write_checkpoint(checkpoint, CASES[arch])
    ids = Tokenizer.from_file(str(checkpoint / "tokenizer.json")).encode(PROMPT).ids
    variants = {
        "float head": GraphOptions(weights="q4"),
        "8-bit head": GraphOptions(weights="q4", lm_head="q8"),
        "rescored": GraphOptions(weights="q4", lm_head="q8", rescore=16),
    }
    engines = {
        label: Engine.load(
            build_hf_model_folder(checkpoint, tmp_path / str(i), name=str(i), options=o)
        )
        for i, (label, o) in enumerate(variants.items())
    }
    logits = {}
    for label, engine in engines.items():
        engine.prefill(ids)
        logits[label] = engine.logits.copy()
    expected = logits["float head"]
    best = np.argsort(-expected)[:8]
    tail = np.argsort(-expected)[64:]

    def error(label: str, where: np.ndarray) -> float:
        return float(np.abs(logits[label][where] - expected[where]).max())

    # int8 activations move the 8-bit head's logits; recomputing the best ones undoes it there,
    # and only there: the tail keeps the 8-bit estimate.
    assert error("8-bit head", best) > 1e-3
    assert error("rescored", best) < 1e-4
    assert error("rescored", tail) > 1e-3
    greedy = {
        label: engine.generate(ids, max_new_tokens=12, stop_token_ids=frozenset()).tokens
        for label, engine in engines.items()
    }
    assert greedy["rescored"] == greedy["float head"]


def test_cli_installs_a_checkpoint_folder_once(tmp_path: Path, monkeypatch, capsys) -> None:
    from lsp_server.cli import main

    monkeypatch.setenv("NEXTTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    checkpoint = tmp_path / "tiny-coder"
    write_checkpoint(checkpoint, CASES["qwen2"])
    flags = ["--weights", "q8", "--lm-head", "q8"]
    assert main(["model", "install", str(checkpoint), *flags]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder.parent == tmp_path / "cache" / "models"
    assert folder.name == "tiny-coder-gqa-q8-head_q8-acc0-rescore256"
    manifest = Engine.load(folder).manifest
    assert (manifest.name, manifest.architecture) == ("tiny-coder", "qwen2")
    assert manifest.source["checkpoint"] == str(checkpoint)
    built = (folder / "model.onnx").stat().st_mtime_ns

    assert main(["model", "install", str(checkpoint), *flags]) == 0
    assert Path(capsys.readouterr().out.strip()) == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == built  # reused, not rebuilt

    assert main(["model", "install", str(checkpoint), "--name", "smollm2"]) == 1
    assert "registry model" in capsys.readouterr().err
    assert main(["model", "install", str(tmp_path / "missing")]) == 1


def test_a_sentencepiece_tokenizer_completes_with_healing(tmp_path: Path) -> None:
    from completion.pipeline import CompletionPipeline
    from completion.request import CompletionRequest, Position

    checkpoint = tmp_path / "codellama-like"
    write_checkpoint(checkpoint, Case("LlamaConfig", FIM_SPELLINGS[3], sentencepiece=True))
    model_dir = build_hf_model_folder(checkpoint, tmp_path / "model", name="cl")
    manifest = Engine.load(model_dir).manifest
    assert manifest.fim is not None and manifest.fim.prefix == "▁<PRE>"
    pipeline = CompletionPipeline.load(model_dir)
    tokenizer = pipeline.tokenizer
    eot, eos = tokenizer.token_to_id("▁<EOT>"), tokenizer.token_to_id("</s>")
    assert {eot, eos} <= set(manifest.eos_token_ids)
    # A completion is a fragment: its leading space survives decoding, as the healer spells it.
    # (sorted: the vocabulary's order is a hash map's; "<" keeps control tokens such as
    # ▁<EOT> out, which decoding skips)
    vocab = tokenizer.get_vocab()
    word = min(t for t in vocab if t.startswith("▁") and len(t) > 2 and "<" not in t)
    word_id = tokenizer.token_to_id(word)
    assert tokenizer.decode([word_id]) == word.replace("▁", " ")
    assert pipeline.healer.table.token_bytes[word_id] == word.replace("▁", " ").encode()
    assert pipeline.healer.table.token_bytes[tokenizer.token_to_id("<0x0A>")] == b"\n"

    text = "def add(a, b):\n    return a\n"
    result = pipeline.complete(
        CompletionRequest(text=text, position=Position(1, 12), path="x.py", language_id="python")
    )
    assert result.stats.stop_reason not in ("healing_error", "error")
    assert result.stats.prompt_tokens > 0
