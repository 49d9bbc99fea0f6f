"""The numpy LoRA merge equals peft's, and the shipped smollm2-fim model is a FIM model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from completion.prompt import build_prompt
from onnx_models.adapter import (
    PROJECTIONS,
    Adapter,
    AdapterConfig,
    FimTokenRole,
    read_safetensors,
    write_safetensors,
)
from onnx_models.decoder_weights import LayerWeights
from onnx_models.engine import Engine
from onnx_models.graph_builder import GraphOptions
from onnx_models.install import DEFAULT_GRAPH, ensure_model, model_dir_for
from onnx_models.manifest import ModelManifest
from onnx_models.registry import KNOWN_MODELS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from onnx_models.train.export import adapter_tensors  # noqa: E402  (needs the train extra)
from onnx_models.train.lora import TARGETS  # noqa: E402

FIM_IDS = [3, 4, 5]


def _tiny_lora_model() -> tuple[torch.nn.Module, dict[str, np.ndarray]]:
    """A random two-block Llama with a random LoRA and random FIM rows, and its base weights."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    base = transformers.LlamaForCausalLM(config)
    before = {k: v.detach().numpy().copy() for k, v in base.state_dict().items()}
    lora = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=list(TARGETS),
        trainable_token_indices={"embed_tokens": FIM_IDS},
    )
    model = peft.get_peft_model(base, lora)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                # Values float16 can hold, so the shipped float16 adapter loses nothing.
                param.copy_((torch.randn_like(param) * 0.1).half().float())
    return model, before


def _config(rank: int, alpha: float) -> AdapterConfig:
    roles = [FimTokenRole(i, f"<r{i}>", f"<fim_{r}>") for i, r in zip(FIM_IDS, "psm", strict=True)]
    return AdapterConfig(rank, alpha, TARGETS, *roles, "psm", "", 0)


def test_numpy_merge_equals_peft_merge() -> None:
    model, before = _tiny_lora_model()
    state = peft.get_peft_model_state_dict(model)
    adapter = Adapter(_config(4, 8.0), adapter_tensors({k: v.numpy() for k, v in state.items()}))
    merged = {k: v.detach().numpy() for k, v in model.merge_and_unload().state_dict().items()}
    for i in range(2):
        layer = f"model.layers.{i}"
        weights = LayerWeights(
            attn_norm=before[f"{layer}.input_layernorm.weight"],
            **{
                field: before[f"{layer}.{'self_attn' if p[0] in 'qkvo' else 'mlp'}.{p}.weight"]
                for p, field in PROJECTIONS.items()
            },
            q_bias=None,
            k_bias=None,
            v_bias=None,
            ffn_norm=before[f"{layer}.post_attention_layernorm.weight"],
        )
        ours = adapter.merge_layer(i, weights)
        for projection, field in PROJECTIONS.items():
            module = "self_attn" if projection[0] in "qkvo" else "mlp"
            expected = merged[f"{layer}.{module}.{projection}.weight"]
            assert not np.allclose(expected, getattr(weights, field))  # the LoRA did change it
            np.testing.assert_allclose(getattr(ours, field), expected, atol=1e-6, rtol=0)
    embedding = adapter.merge_embedding(before["model.embed_tokens.weight"])
    np.testing.assert_allclose(embedding, merged["model.embed_tokens.weight"], atol=0, rtol=0)
    np.testing.assert_array_equal(merged["lm_head.weight"], merged["model.embed_tokens.weight"])


def test_safetensors_round_trip(tmp_path: Path) -> None:
    tensors = {
        "a": np.arange(6, dtype=np.float16).reshape(2, 3),
        "b": np.linspace(0, 1, 5, dtype=np.float32),
    }
    write_safetensors(tmp_path / "x.safetensors", tensors)
    back = read_safetensors(tmp_path / "x.safetensors")
    assert back.keys() == tensors.keys()
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype
        np.testing.assert_array_equal(back[name], value)


# -- the shipped smollm2-fim model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Adapter:
    return Adapter.load(KNOWN_MODELS["smollm2-fim"].adapter)


def test_built_model_has_fim_tokens_of_one_id_each(shipped: Adapter) -> None:
    folder = ensure_model("smollm2-fim")
    manifest = ModelManifest.load(folder)
    # 4-bit blocks would round the adapter's deltas away: its own default is float32.
    assert manifest.source["graph"] == GraphOptions(weights="fp32").label()
    assert folder == model_dir_for("smollm2-fim") != model_dir_for("smollm2-fim", DEFAULT_GRAPH)
    assert manifest.fim == shipped.config.fim
    assert manifest.fim.prefix == "<fim_prefix>"
    # A FIM token ends a middle, under its new name (the old one is gone from the vocabulary).
    assert {manifest.fim.prefix, manifest.fim.suffix, manifest.fim.middle} <= set(
        manifest.stop_tokens
    )
    assert not {role.reused for role in shipped.config.fim_roles} & set(manifest.stop_tokens)
    tokenizer = Tokenizer.from_file(str(folder / manifest.tokenizer_file))
    for role in shipped.config.fim_roles:
        assert tokenizer.encode(role.spelling, add_special_tokens=False).ids == [role.id]
        assert tokenizer.token_to_id(role.reused) is None
    prompt = build_prompt(
        tokenizer, manifest, prefix="def f(x):\n    return ", suffix="\n", line_prefix="    return "
    )
    ids = tokenizer.encode(prompt.text, add_special_tokens=False).ids
    assert [i for i in ids if i in (7, 8, 9)] == [r.id for r in shipped.config.fim_roles]


def _merged_reference(gguf_path: Path, adapter: Adapter) -> torch.nn.Module:
    """transformers' own reading of the GGUF, with the adapter added in torch."""
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    with torch.no_grad():
        for i, block in enumerate(model.model.layers):
            for projection in PROJECTIONS:
                module = getattr(
                    block.self_attn if projection[0] in "qkvo" else block.mlp, projection
                )
                a = torch.from_numpy(
                    adapter.tensors[f"layers.{i}.{projection}.lora_A"].astype(np.float32)
                )
                b = torch.from_numpy(
                    adapter.tensors[f"layers.{i}.{projection}.lora_B"].astype(np.float32)
                )
                module.weight += adapter.scale * (b @ a)
        rows = torch.from_numpy(adapter.tensors["embed_tokens.rows"].astype(np.float32))
        ids = [role.id for role in adapter.config.fim_roles]
        model.model.embed_tokens.weight[ids] = rows  # tied: the LM head's rows too
    model.eval()
    return model


def test_fp32_graph_matches_transformers_with_the_adapter(
    shipped: Adapter, gguf_path: Path
) -> None:
    engine = Engine.load(ensure_model("smollm2-fim"))
    reference = _merged_reference(gguf_path, shipped)
    prompt = (
        "<fim_prefix>import os\n\ndef read(path):\n<fim_suffix>\n    return text\n"
        "<fim_middle>    with"
    )
    ids = engine.tokenizer.encode(prompt, add_special_tokens=False).ids
    with torch.no_grad():
        expected = reference(torch.tensor([ids])).logits[0].numpy()
    engine.rewind(0)
    engine.prefill(ids[:-3])
    np.testing.assert_allclose(engine.logits, expected[-4], atol=1e-3, rtol=0)
    for pos in range(len(ids) - 3, len(ids)):
        engine.step(ids[pos])
        np.testing.assert_allclose(engine.logits, expected[pos], atol=1e-3, rtol=0)
