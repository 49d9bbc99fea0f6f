"""Candidate (c): a tiny Llama (4 blocks, width 256) trained from scratch for FIM on the CPU.

A byte-level BPE of ~8k tokens is trained on the corpus first (with the FIM, file and
end-of-text tokens as special tokens); the model then trains on the same FIM examples as the
LoRA run for a budget in tokens, and is saved as a Hugging Face checkpoint folder
(config.json, model.safetensors, tokenizer.json) that `nexttoken model install PATH` imports.

    python -m onnx_models.train.scratch --tokens 3000000 --out ~/.cache/nexttoken/train/tiny
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

from onnx_models.manifest import FimSpec
from onnx_models.train.fim import ENDOFTEXT, FILENAME, FimOptions, pack, tokenize
from onnx_models.train.fim import training_examples as fim_examples
from onnx_models.train.lora import corpus_sample

FIM = FimSpec(prefix="<fim_prefix>", suffix="<fim_suffix>", middle="<fim_middle>")
SPECIAL_TOKENS = [ENDOFTEXT, FIM.prefix, FIM.suffix, FIM.middle, FILENAME, "<repo_name>"]


@dataclass(frozen=True)
class ScratchConfig:
    tokens: int
    vocab_size: int = 8192
    layers: int = 4
    width: int = 256
    heads: int = 4
    seq_len: int = 256
    batch: int = 8
    lr: float = 2e-3
    fim_rate: float = 0.7
    tokenizer_chars: int = 8_000_000  # of corpus text the BPE is trained on
    seed: int = 0


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def model_config(config: ScratchConfig, tokenizer: Tokenizer) -> LlamaConfig:
    eos = tokenizer.token_to_id(ENDOFTEXT)
    return LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=config.width,
        intermediate_size=config.width * 8 // 3 // 32 * 32,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=eos,
        eos_token_id=eos,
    )


def val_loss(model: LlamaForCausalLM, batches: list[torch.Tensor]) -> float:
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        losses = [float(model(input_ids=ids, labels=ids).loss) for ids in batches]
    model.train()
    return sum(losses) / len(losses)


def train(config: ScratchConfig, out: Path) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(config.seed)
    started = time.time()
    corpus = corpus_sample()
    rng = random.Random(config.seed)
    train_files = [(f.source, f.path, f.text) for f in corpus if not f.is_validation]
    val_files = [(f.source, f.path, f.text) for f in corpus if f.is_validation]
    rng.shuffle(train_files)
    sample, size = [], 0
    for _, _, text in train_files:
        if size > config.tokenizer_chars:
            break
        sample.append(text)
        size += len(text)
    tokenizer = train_tokenizer(sample, config.vocab_size)
    print(
        json.dumps(
            {
                "event": "tokenizer",
                "vocab": tokenizer.get_vocab_size(),
                "seconds": round(time.time() - started),
            }
        ),
        flush=True,
    )

    def batches(files: list[tuple[str, str, str]], seed: int):
        options = FimOptions(fim_rate=config.fim_rate)
        stream = (
            tokenize(tokenizer, e) for e in fim_examples(files, random.Random(seed), options, FIM)
        )
        packed = pack(stream, config.seq_len)
        while True:
            yield torch.tensor([next(packed).ids for _ in range(config.batch)])

    val_stream = batches(val_files, seed=1)
    val = [next(val_stream) for _ in range(4)]
    model = LlamaForCausalLM(model_config(config, tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.1)
    steps = config.tokens // (config.seq_len * config.batch)
    warmup = max(1, steps // 20)
    print(
        json.dumps(
            {
                "event": "start",
                "steps": steps,
                "params": model.num_parameters(),
                "val_loss": round(val_loss(model, val), 4),
            }
        ),
        flush=True,
    )
    stream = batches(train_files, seed=0)
    tick = time.time()
    for step in range(steps):
        ids = next(stream)
        progress = max(0.0, (step - warmup) / max(1, steps - warmup))
        scale = (
            (step + 1) / warmup
            if step < warmup
            else 0.1 + 0.45 * (1 + math.cos(math.pi * progress))
        )
        for group in optimizer.param_groups:
            group["lr"] = config.lr * scale
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % 20 == 0:
            print(
                json.dumps(
                    {
                        "step": step + 1,
                        "tokens": (step + 1) * ids.numel(),
                        "loss": round(float(loss), 4),
                        "tokens_per_s": round(20 * ids.numel() / (time.time() - tick)),
                    }
                ),
                flush=True,
            )
            tick = time.time()
    print(
        json.dumps(
            {
                "event": "end",
                "tokens": steps * config.seq_len * config.batch,
                "wall_s": round(time.time() - started),
                "val_loss": round(val_loss(model, val), 4),
            }
        ),
        flush=True,
    )
    save(model, tokenizer, config, out)


def save(model: LlamaForCausalLM, tokenizer: Tokenizer, config: ScratchConfig, out: Path) -> None:
    """A Hugging Face checkpoint folder the importer reads (tokenizer.json as trained)."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": ENDOFTEXT, "bos_token": ENDOFTEXT, "model_max_length": 2048})
    )
    (out / "training.json").write_text(json.dumps(asdict(config), indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=3_000_000)
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache/nexttoken/train/tiny")
    parser.add_argument("--tokenizer-chars", type=int, default=ScratchConfig.tokenizer_chars)
    args = parser.parse_args()
    train(ScratchConfig(tokens=args.tokens, tokenizer_chars=args.tokenizer_chars), args.out)


if __name__ == "__main__":
    main()
