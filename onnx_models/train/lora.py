"""FIM-adapt the shipped SmolLM2-135M with LoRA on the CPU, for a budget in tokens.

LoRA on every attention and MLP projection, plus the rows of the three reused special tokens
that become the FIM tokens (the embedding is tied to the LM head, so they are its rows too).
The adapter is saved every `--save-every` steps under ~/.cache/nexttoken/train/<run>/step-N/
(peft's format; onnx_models.train.export turns one into the shipped adapter).

    python -m onnx_models.train.lora --run smollm2-fim --tokens 36864 --batch 1 --save-every 8
    python -m onnx_models.train.lora --probe     # tokens/s of seq length x dtype x rank
    python -m onnx_models.train.lora --evaluate ~/.cache/nexttoken/train/smollm2-fim/latest
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

from onnx_models.train.data import CorpusFile, load_corpus
from onnx_models.train.fim import (
    REUSED_FIM,
    FimOptions,
    Sequence,
    pack,
    tokenize,
    training_examples,
)

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CACHE = Path.home() / ".cache/nexttoken"
GGUF = CACHE / "downloads/SmolLM2-135M-Instruct.Q4_1.gguf"
TOKENIZER = CACHE / "models/smollm2/tokenizer.json"
# The LoRA run sees a few hundred thousand tokens on two cores: a sample of every source does.
SAMPLE_CACHE = CACHE / "train/corpus-sample.jsonl"
FILES_PER_SOURCE = 40


@dataclass(frozen=True)
class TrainConfig:
    tokens: int
    seq_len: int = 512
    batch: int = 2  # sequences per optimizer step
    rank: int = 16
    alpha: int = 32
    # A CPU run takes tens of steps, not thousands: rates at the high end of LoRA practice.
    lr: float = 5e-4
    token_lr: float = 3e-3  # the FIM token rows start from unrelated tokens: let them move
    warmup_fraction: float = 0.05
    # "autocast": float32 weights, bfloat16 compute (fastest in --probe: 21 tokens/CPU-s,
    # against 14 with "bf16", the frozen weights stored in bfloat16, and 15 with "fp32").
    dtype: str = "autocast"
    fim_rate: float = 0.7
    save_every: int = 10
    log_every: int = 5
    val_sequences: int = 4
    seed: int = 0


def corpus_sample() -> list[CorpusFile]:
    """The training files: FILES_PER_SOURCE of each source (cached after the first run)."""
    return load_corpus(SAMPLE_CACHE, FILES_PER_SOURCE)


def fim_token_ids(tokenizer: Tokenizer) -> list[int]:
    return [
        tokenizer.token_to_id(t) for t in (REUSED_FIM.prefix, REUSED_FIM.suffix, REUSED_FIM.middle)
    ]


def load_model(config: TrainConfig, tokenizer: Tokenizer) -> torch.nn.Module:
    base = AutoModelForCausalLM.from_pretrained(
        str(GGUF.parent), gguf_file=GGUF.name, dtype=torch.float32
    )
    if config.dtype == "bf16":
        # Saves casting every frozen weight on every step (a quarter of the step's time).
        base = base.to(torch.bfloat16)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(TARGETS),
        trainable_token_indices={"embed_tokens": fim_token_ids(tokenizer)},
    )
    return get_peft_model(base, lora)


def sequences(
    files: list[tuple[str, str, str]],
    tokenizer: Tokenizer,
    options: FimOptions,
    config: TrainConfig,
    seed: int,
) -> Iterator[Sequence]:
    """Packed sequences from the files, reshuffled each pass."""
    rng = random.Random(seed)
    while True:
        order = files[:]
        rng.shuffle(order)
        stream = (tokenize(tokenizer, e) for e in training_examples(order, rng, options))
        yield from pack(stream, config.seq_len)


def autocast(config: TrainConfig) -> contextlib.AbstractContextManager:
    if config.dtype != "fp32":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def scored_loss(model, batch: list[Sequence], config: TrainConfig, only_scored: bool) -> float:
    """Mean next-token loss over a batch, over the scored (middle) tokens or all of them."""
    ids = torch.tensor([s.ids for s in batch])
    with torch.no_grad(), autocast(config):
        logits = model(input_ids=ids).logits.float()
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
    )
    mask = torch.tensor([s.scored[1:] for s in batch]).reshape(-1)
    if only_scored:
        return float((losses * mask).sum() / mask.sum().clamp(min=1))
    return float(losses.mean())


def validation(model, val: dict[str, list[Sequence]], config: TrainConfig) -> dict[str, float]:
    model.eval()
    out = {
        "val_fim_middle": _mean(scored_loss(model, [s], config, True) for s in val["fim"]),
        "val_l2r": _mean(scored_loss(model, [s], config, False) for s in val["l2r"]),
    }
    model.train()
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def validation_sets(
    files: list[tuple[str, str, str]], tokenizer: Tokenizer, config: TrainConfig
) -> dict[str, list[Sequence]]:
    sets = {}
    for name, rate in (("fim", 1.0), ("l2r", 0.0)):
        options = FimOptions(fim_rate=rate, context_rate=0.0)
        stream = sequences(files, tokenizer, options, config, seed=1234)
        sets[name] = [next(stream) for _ in range(config.val_sequences)]
    return sets


def lr_at(step: int, steps: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    warmup = max(1, int(steps * config.warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def train(config: TrainConfig, run_dir: Path) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    log_file = (run_dir / "log.jsonl").open("a")

    def log(record: dict) -> None:
        record = {"time": time.strftime("%H:%M:%S"), **record}
        print(json.dumps(record), flush=True)
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    started = time.time()
    corpus = corpus_sample()
    train_files = [(f.source, f.path, f.text) for f in corpus if not f.is_validation]
    val_files = [(f.source, f.path, f.text) for f in corpus if f.is_validation]
    log(
        {
            "event": "corpus",
            "train_files": len(train_files),
            "val_files": len(val_files),
            "seconds": round(time.time() - started, 1),
        }
    )
    val = validation_sets(val_files, tokenizer, config)
    model = load_model(config, tokenizer)
    model.print_trainable_parameters()
    token_params = [p for n, p in model.named_parameters() if p.requires_grad and "token" in n]
    lora_params = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    optimizer = torch.optim.AdamW(
        [{"params": lora_params, "lr": config.lr}, {"params": token_params, "lr": config.token_lr}],
        weight_decay=0.0,
    )
    base_lrs = [config.lr, config.token_lr]
    steps = config.tokens // (config.seq_len * config.batch)
    log({"event": "start", "steps": steps, **validation(model, val, config)})
    stream = sequences(train_files, tokenizer, FimOptions(fim_rate=config.fim_rate), config, 0)
    model.train()
    seen = 0
    smoothed = None
    window_start = time.time()
    for step in range(steps):
        batch = [next(stream) for _ in range(config.batch)]
        ids = torch.tensor([s.ids for s in batch])
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * lr_at(step, steps, config)
        with autocast(config):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora_params + token_params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen += ids.numel()
        value = loss.item()
        smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
        if (step + 1) % config.log_every == 0:
            elapsed = time.time() - window_start
            log(
                {
                    "step": step + 1,
                    "tokens": seen,
                    "loss": round(value, 4),
                    "smoothed_loss": round(smoothed, 4),
                    "tokens_per_s": round(config.log_every * ids.numel() / elapsed, 1),
                    "lr": round(optimizer.param_groups[0]["lr"], 7),
                }
            )
            window_start = time.time()
        if (step + 1) % config.save_every == 0 or step + 1 == steps:
            model.save_pretrained(run_dir / f"step-{step + 1:05d}")
            (run_dir / "latest").unlink(missing_ok=True)
            (run_dir / "latest").symlink_to(f"step-{step + 1:05d}")
            (run_dir / f"step-{step + 1:05d}" / "trained_tokens.txt").write_text(str(seen))
    log(
        {
            "event": "end",
            "tokens": seen,
            "train_loss": round(smoothed or 0.0, 4),
            "wall_s": round(time.time() - started),
            **validation(model, val, config),
        }
    )


def evaluate(checkpoint: Path, config: TrainConfig) -> dict[str, float]:
    """The validation losses of a saved adapter, on the run's own validation sequences."""
    torch.set_num_threads(2)
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    val_files = [(f.source, f.path, f.text) for f in corpus_sample() if f.is_validation]
    base = AutoModelForCausalLM.from_pretrained(
        str(GGUF.parent), gguf_file=GGUF.name, dtype=torch.float32
    )
    model = PeftModel.from_pretrained(base, str(checkpoint))
    return validation(model, validation_sets(val_files, tokenizer, config), config)


def probe(seconds_per_setting: float, settings: list[tuple[int, int, str]]) -> None:
    """Training speed of each (rank, seq_len, dtype) setting on random ids (speed does not
    depend on content): wall tokens/s, and tokens per CPU-second, steadier while other work
    shares the cores."""
    torch.set_num_threads(2)
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    print("| rank | seq | dtype | tokens/s (wall) | tokens/CPU-s |", flush=True)
    print("|---:|---:|---|---:|---:|", flush=True)
    model, loaded = None, None
    for rank, seq_len, dtype in settings:
        if (rank, dtype == "bf16") != loaded:
            model = load_model(TrainConfig(tokens=0, rank=rank, dtype=dtype), tokenizer)
            loaded = (rank, dtype == "bf16")
        params = [p for p in model.parameters() if p.requires_grad]
        assert all(p.dtype == torch.float32 for p in params), "trained weights must be float32"
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        cfg = TrainConfig(tokens=0, rank=rank, seq_len=seq_len, batch=1, dtype=dtype)
        ids = torch.randint(100, 49000, (1, seq_len))
        walls, cpus = [], []
        start = time.time()
        while time.time() - start < seconds_per_setting or len(walls) < 2:
            wall, cpu = time.time(), time.process_time()
            with autocast(cfg):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            walls.append(time.time() - wall)
            cpus.append(time.process_time() - cpu)
        # The first step warms up kernels and allocations.
        wall_s = sorted(walls[1:])[len(walls[1:]) // 2]
        cpu_s = sorted(cpus[1:])[len(cpus[1:]) // 2]
        print(
            f"| {rank} | {seq_len} | {dtype} | {ids.numel() / wall_s:.0f} "
            f"| {ids.numel() / cpu_s:.0f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--probe-seconds", type=float, default=5.0)
    parser.add_argument("--run", default="smollm2-fim")
    parser.add_argument("--tokens", type=int, default=36_864)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--dtype", choices=["bf16", "autocast", "fp32"], default="autocast")
    parser.add_argument("--fim-rate", type=float, default=0.7)
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--evaluate", type=Path, help="a saved adapter: print its val losses")
    args = parser.parse_args()
    if args.evaluate:
        print(json.dumps(evaluate(args.evaluate, TrainConfig(tokens=0, dtype=args.dtype))))
        return
    if args.probe:
        settings = [(16, 512, "bf16"), (16, 256, "bf16"), (16, 256, "autocast"), (8, 512, "bf16")]
        probe(args.probe_seconds, settings)
        return
    config = TrainConfig(
        tokens=args.tokens,
        seq_len=args.seq_len,
        batch=args.batch,
        rank=args.rank,
        alpha=2 * args.rank,
        lr=args.lr,
        dtype=args.dtype,
        fim_rate=args.fim_rate,
        save_every=args.save_every,
    )
    train(config, CACHE / "train" / args.run)


if __name__ == "__main__":
    main()
