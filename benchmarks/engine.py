"""Our engine against its peers on the same weights and the same prompts, in one run.

Engines: ours (`onnx_models.engine.Engine`, one or more model folders), onnxruntime-genai's
generator on graphs from its own model builder, llama.cpp through llama-cpp-python on the GGUF
file, and transformers on PyTorch CPU. Each engine runs in its own worker process (so peak RSS
is per engine, and each may live in its own virtual environment); the parent drives them over
JSON lines and interleaves them round by round, rotating the order, and reports medians.

Measured per round: cold prefill of 256/512/1,024 tokens (empty cache until the first token is
chosen), ms per decoded token (greedy, after a 512-token prompt), keystroke latency at each
prompt module's first 1,024 tokens (a previous request left the cache; 1-3 new tokens, the
count rotating by module and round, then 16 tokens decoded) beside a cold request for the same
prompt; then peak RSS, and greedy agreement over 16 tokens.

This module imports no engine at module level: a worker imports only its own.

    python benchmarks/engine.py --peers-python /work/venv-peers/bin/python \
        --peers-dir /work/peers --prepare --rounds 7 --json benchmarks/engine.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

CONTEXT = 2048  # KV capacity given to peers that preallocate (genai max_length, llama n_ctx)
PROMPT_FILES = ["textwrap.py", "shlex.py", "fractions.py", "csv.py", "json/encoder.py"]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGML_TYPE_F32 = 0
MODULE_SEPARATOR = "\n\n"
KEYSTROKE_NEW = (1, 2, 3)  # prompt tokens a keystroke appends, in turn


def prompt_text() -> str:
    """Real Python code: a few standard library modules, the same text for every engine."""
    return MODULE_SEPARATOR.join(module_texts())


def module_texts() -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [(stdlib / name).read_text(encoding="utf-8") for name in PROMPT_FILES]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def rss_kb(field: str = "VmRSS") -> int:
    """This process's resident set (VmRSS) or its peak (VmHWM), in KiB.

    VmHWM belongs to this address space; ru_maxrss would carry over the parent's peak across
    exec (Linux folds it in), so a worker started by a big parent would report the parent's."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if field == "VmHWM" else 0


# -- workers: one engine each -------------------------------------------------------------------


class Runner:
    """One engine behind a common shape: feed tokens, pick the greedy token, rewind.

    `fed` holds the tokens whose keys and values are in the engine's cache, so `request`
    reuses the longest common prefix exactly as our engine does.
    """

    name = "engine"
    requests_only = False

    def __init__(self) -> None:
        self.fed: list[int] = []

    # primitives, per engine
    def version(self) -> str:
        raise NotImplementedError

    def tokenize(self, text: str) -> list[int]:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _rewind(self, length: int) -> None:
        raise NotImplementedError

    def _feed(self, ids: list[int]) -> None:
        raise NotImplementedError

    def _argmax(self) -> int:
        raise NotImplementedError

    # measurements, shared
    def reset(self) -> None:
        self._reset()
        self.fed = []

    def cold_prefill(self, ids: list[int]) -> tuple[float, int]:
        """Empty cache, then `ids`, until the first token is chosen: (ms, token)."""
        self.reset()
        t0 = time.perf_counter()
        self._feed(ids)
        token = self._argmax()
        ms = (time.perf_counter() - t0) * 1000
        self.fed = list(ids)
        return ms, token

    def decode(self, token: int, count: int) -> float:
        """Greedy decode of `count` tokens after the state left by `cold_prefill`: total ms."""
        t0 = time.perf_counter()
        for _ in range(count):
            self._feed([token])
            self.fed.append(token)
            token = self._argmax()
        return (time.perf_counter() - t0) * 1000

    def request(self, prompt: list[int], new_tokens: int) -> tuple[float, float, list[int]]:
        """A completion request: reuse the cached prefix, prefill the rest, decode greedily.

        Returns (total ms, ms to the first token, tokens)."""
        t0 = time.perf_counter()
        reuse = min(common_prefix(self.fed, prompt), len(prompt) - 1)
        self._rewind(reuse)
        self._feed(prompt[reuse:])
        token = self._argmax()
        first = time.perf_counter()
        out = [token]
        self.fed = list(prompt)
        for _ in range(new_tokens - 1):
            self._feed([token])
            self.fed.append(token)
            token = self._argmax()
            out.append(token)
        end = time.perf_counter()
        return (end - t0) * 1000, (first - t0) * 1000, out


class OursRunner(Runner):
    name = "ours"

    def __init__(self, model_dir: str, threads: int, speculate: bool = False) -> None:
        super().__init__()
        import numpy as np

        from onnx_models.engine import Engine

        self._np = np
        self.engine = Engine.load(Path(model_dir), threads=threads)
        # Prompt-lookup drafts change requests only (greedy output stays the same).
        self._extra: dict[str, Any] = {"speculate": True} if speculate else {}
        self.requests_only = speculate

    def version(self) -> str:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"

    def tokenize(self, text: str) -> list[int]:
        return list(self.engine.tokenizer.encode(text, add_special_tokens=False).ids)

    def _reset(self) -> None:
        self.engine.rewind(0)

    def _rewind(self, length: int) -> None:
        self.engine.rewind(length)

    def _feed(self, ids: list[int]) -> None:
        if len(ids) == 1:
            self.engine.step(ids[0])
        else:
            self.engine.prefill(self.fed + ids)

    def _argmax(self) -> int:
        return int(self._np.argmax(self.engine.logits))

    def cold_prefill(self, ids: list[int]) -> tuple[float, int]:
        self.engine.rewind(0)
        t0 = time.perf_counter()
        self.engine.prefill(ids)
        token = self._argmax()
        ms = (time.perf_counter() - t0) * 1000
        self.fed = list(ids)
        return ms, token

    def request(self, prompt: list[int], new_tokens: int) -> tuple[float, float, list[int]]:
        """Through `Engine.generate`, the path the completion pipeline takes."""
        first: list[float] = []

        def on_token(token: int) -> bool:
            if not first:
                first.append(time.perf_counter())
            return False

        t0 = time.perf_counter()
        gen = self.engine.generate(
            prompt,
            max_new_tokens=new_tokens,
            on_token=on_token,
            stop_token_ids=frozenset(),
            **self._extra,
        )
        end = time.perf_counter()
        self.fed = self.engine.cached_tokens
        return (end - t0) * 1000, (first[0] - t0) * 1000, list(gen.tokens)


class GenaiRunner(Runner):
    """onnxruntime-genai's Generator: append_tokens prefills, generate_next_token runs the
    model on the last chosen token (except right after append_tokens) and picks the next."""

    name = "onnxruntime-genai"

    def __init__(self, model_dir: str, threads: int) -> None:
        super().__init__()
        import onnxruntime_genai as og

        self._og = og
        self.model = og.Model(model_dir)
        self.tokenizer = og.Tokenizer(self.model)
        self.generator = self._new_generator()
        self._pending = False  # a chosen token not yet run through the model

    def _new_generator(self) -> Any:
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(max_length=CONTEXT, do_sample=False)
        return self._og.Generator(self.model, params)

    def version(self) -> str:
        import onnxruntime_genai

        return f"onnxruntime-genai {onnxruntime_genai.__version__}"

    def tokenize(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text)]

    def _reset(self) -> None:
        self.generator = self._new_generator()

    def _rewind(self, length: int) -> None:
        self.generator.rewind_to(length)

    def _feed(self, ids: list[int]) -> None:
        self.generator.append_tokens(ids)

    def _next(self) -> int:
        self.generator.generate_next_token()
        return int(self.generator.get_next_tokens()[0])

    def cold_prefill(self, ids: list[int]) -> tuple[float, int]:
        self.reset()
        t0 = time.perf_counter()
        self.generator.append_tokens(ids)
        token = self._next()
        ms = (time.perf_counter() - t0) * 1000
        self.fed = list(ids)
        return ms, token

    def decode(self, token: int, count: int) -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            self.fed.append(token)
            token = self._next()
        return (time.perf_counter() - t0) * 1000

    def request(self, prompt: list[int], new_tokens: int) -> tuple[float, float, list[int]]:
        t0 = time.perf_counter()
        reuse = min(common_prefix(self.fed, prompt), len(prompt) - 1)
        if reuse:
            self.generator.rewind_to(reuse)
        elif self.fed:  # nothing to reuse: a fresh generator (reset() made one already)
            self.generator = self._new_generator()
        self.generator.append_tokens(prompt[reuse:])
        out = [self._next()]
        first = time.perf_counter()
        for _ in range(new_tokens - 1):
            out.append(self._next())
        end = time.perf_counter()
        self.fed = list(prompt) + out[:-1]
        return (end - t0) * 1000, (first - t0) * 1000, out


class LlamaCppRunner(Runner):
    """llama-cpp-python's low-level loop (eval + the last logits), an f32 KV cache."""

    name = "llama.cpp"

    def __init__(
        self, gguf: str, threads: int, flash_attn: bool = False, extra_bufts: bool = False
    ) -> None:
        super().__init__()
        import llama_cpp
        import numpy as np

        # This file runs as a script, so its folder (and the server launcher) is importable.
        from llama_cpp_server import disable_extra_buffers

        self._np = np
        self._llama_cpp = llama_cpp
        if not extra_bufts:
            # llama.cpp's extra weight buffers (AMX, repacking) crash in llama_decode on our
            # VMs, whose CPUs advertise AMX; without them it runs its AVX-512/AVX2 kernels.
            disable_extra_buffers()
        self.llm = llama_cpp.Llama(
            model_path=gguf,
            n_ctx=CONTEXT,
            n_threads=threads,
            n_threads_batch=threads,
            type_k=GGML_TYPE_F32,
            type_v=GGML_TYPE_F32,
            flash_attn=flash_attn,
            verbose=False,
        )
        self._vocab = self.llm.n_vocab()

    def version(self) -> str:
        return f"llama-cpp-python {self._llama_cpp.__version__}"

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _reset(self) -> None:
        self.llm.reset()

    def _rewind(self, length: int) -> None:
        self.llm.n_tokens = length  # eval() removes cache entries from n_tokens on

    def _feed(self, ids: list[int]) -> None:
        self.llm.eval(ids)

    def _argmax(self) -> int:
        ptr = self._llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return int(self._np.argmax(self._np.ctypeslib.as_array(ptr, shape=(self._vocab,))))


class TransformersRunner(Runner):
    """transformers on PyTorch CPU, fp32, a DynamicCache cropped to the reused prefix."""

    name = "transformers"

    def __init__(self, gguf: str, threads: int) -> None:
        super().__init__()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

        torch.set_num_threads(threads)
        self._torch = torch
        self._cache_type = DynamicCache
        path = Path(gguf)
        kwargs = {"gguf_file": path.name} if path.is_file() else {}
        folder = str(path.parent if path.is_file() else path)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        self.cache = DynamicCache(config=self.model.config)
        self._logits: Any = None

    def version(self) -> str:
        import transformers

        return f"transformers {transformers.__version__}, torch {self._torch.__version__}"

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _reset(self) -> None:
        self.cache = self._cache_type(config=self.model.config)

    def _rewind(self, length: int) -> None:
        if length == 0:
            self._reset()
        elif length < self.cache.get_seq_length():
            self.cache.crop(length - self.cache.get_seq_length())  # negative: tokens to drop

    def _feed(self, ids: list[int]) -> None:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([ids], dtype=torch.long),
                past_key_values=self.cache,
                use_cache=True,
                logits_to_keep=1,
            )
        self._logits = out.logits[0, -1]

    def _argmax(self) -> int:
        return int(self._torch.argmax(self._logits))


def make_runner(kind: str, model: str, threads: int, options: dict[str, str]) -> Runner:
    if kind == "ours":
        return OursRunner(model, threads, speculate=options.get("speculate") == "1")
    if kind == "genai":
        return GenaiRunner(model, threads)
    if kind == "llama":
        return LlamaCppRunner(
            model,
            threads,
            flash_attn=options.get("flash_attn") == "1",
            extra_bufts=options.get("extra_bufts") == "1",
        )
    if kind == "transformers":
        return TransformersRunner(model, threads)
    raise ValueError(f"unknown engine kind {kind!r}")


@dataclass(frozen=True)
class RoundPlan:
    sizes: tuple[int, ...]
    decode_tokens: int
    keystroke_context: int
    # Where each keystroke prompt starts in the token ids (one per module), and how many new
    # tokens its keystroke appends (1-3, rotated by the parent from round to round).
    keystroke_offsets: tuple[int, ...]
    keystroke_new: tuple[int, ...]
    request_tokens: int


def run_round(runner: Runner, ids: list[int], plan: RoundPlan) -> dict[str, Any]:
    """One round of every measurement. Beside wall-clock ms, the process's CPU ms (all its
    threads): on a shared box the wall clock mostly measures the neighbours, CPU time less so."""
    result: dict[str, Any] = {"cold_prefill_ms": {}, "cpu": {"cold_prefill_ms": {}}}
    cpu = result["cpu"]
    decode_after = 512 if 512 in plan.sizes else plan.sizes[0]
    # A variant that changes requests only (prompt lookup) would repeat its base's prefill
    # and decode figures: skip them.
    for size in () if runner.requests_only else plan.sizes:
        c0 = time.process_time()
        ms, first = runner.cold_prefill(ids[:size])
        cpu["cold_prefill_ms"][str(size)] = (time.process_time() - c0) * 1000
        result["cold_prefill_ms"][str(size)] = ms
        if size == decode_after:  # decode from the token this prefill chose
            c0 = time.process_time()
            total = runner.decode(first, plan.decode_tokens)
            cpu_total = (time.process_time() - c0) * 1000
            result["decode_ms_per_token"] = total / plan.decode_tokens
            cpu["decode_ms_per_token"] = cpu_total / plan.decode_tokens
    ctx = plan.keystroke_context
    timed = ("keystroke_ms", "keystroke_first_token_ms", "cold_request_ms")
    for key in (*timed, "cold_request_first_token_ms"):
        result[key] = []
    for key in timed:
        cpu[key] = []
    for start, new in zip(plan.keystroke_offsets, plan.keystroke_new, strict=True):
        window = ids[start : start + ctx + new]
        # The previous request (not timed) leaves the cache: its prompt and 15 tokens after it.
        runner.request(window[:ctx], plan.request_tokens)
        c0 = time.process_time()
        total, first_ms, _ = runner.request(window, plan.request_tokens)
        cpu["keystroke_ms"].append((time.process_time() - c0) * 1000)
        result["keystroke_ms"].append(total)
        result["keystroke_first_token_ms"].append(first_ms)
        runner.reset()
        c0 = time.process_time()
        total, first_ms, _ = runner.request(window, plan.request_tokens)
        cpu["cold_request_ms"].append((time.process_time() - c0) * 1000)
        result["cold_request_ms"].append(total)
        result["cold_request_first_token_ms"].append(first_ms)
    return result


def worker_main(kind: str, model: str, threads: int, options: dict[str, str]) -> None:
    """Serve JSON-line requests on stdin; answer on the original stdout only (libraries that
    print to stdout are sent to stderr, so they cannot break the protocol)."""
    proto: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(payload: dict[str, Any]) -> None:
        proto.write(json.dumps(payload) + "\n")

    t0 = time.perf_counter()
    try:
        runner = make_runner(kind, model, threads, options)
    except Exception as exc:  # the parent reports why an engine could not run
        answer({"error": f"{exc.__class__.__name__}: {exc}"})
        return
    answer(
        {
            "version": runner.version(),
            "load_s": time.perf_counter() - t0,
            "rss_after_load_kb": rss_kb(),
        }
    )
    ids: list[int] = []
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg["op"]
        try:
            if op == "tokenize":
                ids = runner.tokenize(msg["text"])
                answer({"ids": ids[: msg["keep"]]})
            elif op == "round":
                answer(run_round(runner, ids, RoundPlan(**msg["plan"])))
            elif op == "greedy":
                runner.reset()
                _, _, tokens = runner.request(ids[: msg["prompt"]], msg["new"])
                answer({"tokens": tokens})
            elif op == "memory":
                answer({"peak_rss_kb": rss_kb("VmHWM"), "rss_kb": rss_kb()})
            elif op == "quit":
                answer({})
                return
            else:
                answer({"error": f"unknown op {op}"})
        except Exception as exc:
            answer({"error": f"{exc.__class__.__name__}: {exc}"})


# -- parent: start workers, interleave rounds, report ---------------------------------------------


@dataclass
class EngineSpec:
    label: str
    kind: str
    model: str
    python: str
    options: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # "" removes a variable


class Worker:
    def __init__(self, spec: EngineSpec, threads: int, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.label.replace(' ', '_').replace('/', '_')}.log"
        cmd = [spec.python, str(Path(__file__).resolve()), "--worker", spec.kind]
        cmd += ["--model", spec.model, "--threads", str(threads)]
        for key, value in spec.options.items():
            cmd += ["--option", f"{key}={value}"]
        env = dict(os.environ)
        repo = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        # No busy-waiting anywhere, as our sessions run (allow_spinning 0): llama.cpp and
        # PyTorch wait at OpenMP barriers, which spin by default and collapse on a busy box.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        for key, value in spec.env.items():
            if value:
                env[key] = value
            else:
                env.pop(key, None)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            return {"error": f"worker exited ({' | '.join(tail)})"}
        return json.loads(line)

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return {"error": "worker is gone"}
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, ValueError):
                self.call("quit")
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(label: str, rounds: list[dict[str, Any]], memory: dict[str, Any]) -> dict[str, Any]:
    sizes = sorted({int(s) for r in rounds for s in r["cold_prefill_ms"]})

    def samples(key: str, cpu: bool = False) -> list[float]:
        return [x for r in rounds for x in (r["cpu"] if cpu else r)[key]]

    keystroke, cold = samples("keystroke_ms"), samples("cold_request_ms")
    keystroke_first = samples("keystroke_first_token_ms")
    cold_first = samples("cold_request_first_token_ms")
    decode = [r["decode_ms_per_token"] for r in rounds if "decode_ms_per_token" in r]
    return {
        "label": label,
        "rounds": len(rounds),
        "cold_prefill_ms": {
            str(s): median([r["cold_prefill_ms"][str(s)] for r in rounds]) for s in sizes
        },
        "decode_ms_per_token": median(decode),
        "keystroke_ms": median(keystroke),
        "keystroke_first_token_ms": median(keystroke_first),
        "cold_request_ms": median(cold),
        "cold_request_first_token_ms": median(cold_first),
        # Cold request / keystroke for the same prompt, sample by sample; then the median.
        "keystroke_speedup": median([c / k for c, k in zip(cold, keystroke, strict=True)]),
        "keystroke_first_token_speedup": median(
            [c / k for c, k in zip(cold_first, keystroke_first, strict=True)]
        ),
        "keystroke_speedup_by_module": {
            name: median(
                [
                    r["cold_request_ms"][i] / r["keystroke_ms"][i]
                    for r in rounds
                    if i < len(r["keystroke_ms"])
                ]
            )
            for i, name in enumerate(PROMPT_FILES)
        },
        "cpu": {
            "cold_prefill_ms": {
                str(s): median([r["cpu"]["cold_prefill_ms"][str(s)] for r in rounds]) for s in sizes
            },
            "decode_ms_per_token": median(
                [r["cpu"]["decode_ms_per_token"] for r in rounds if "decode_ms_per_token" in r]
            ),
            "keystroke_ms": median(samples("keystroke_ms", cpu=True)),
            "cold_request_ms": median(samples("cold_request_ms", cpu=True)),
        },
        "peak_rss_mb": memory.get("peak_rss_kb", 0) / 1024,
        "rss_mb": memory.get("rss_kb", 0) / 1024,
    }


def agreement(reference: list[int], tokens: list[int]) -> tuple[int, int]:
    """(length of the common prefix, positions that agree)."""
    same = sum(1 for a, b in zip(reference, tokens, strict=False) if a == b)
    return common_prefix(reference, tokens), same


def markdown(summaries: list[dict[str, Any]], plan: RoundPlan, cpu: bool = False) -> str:
    """The wall-clock table, or with `cpu` the CPU-time one; ratios against the first row."""
    ref = summaries[0]
    sizes = list(ref["cold_prefill_ms"])
    ctx = plan.keystroke_context
    cols = [f"cold prefill {s} (ms)" for s in sizes] + ["decode (ms/token)"]
    if not cpu:
        cols += [f"keystroke at {ctx}: first token (ms)"]
    cols += [f"keystroke at {ctx} + {plan.request_tokens} tokens (ms)"]
    cols += [f"cold request at {ctx} + {plan.request_tokens} tokens (ms)"]
    if not cpu:
        cols += ["peak RSS (MB)"]
    lines = ["| engine | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]

    def cells(s: dict[str, Any]) -> list[float]:
        if cpu:
            c = s["cpu"]
            return [c["cold_prefill_ms"].get(k, math.nan) for k in sizes] + [
                c["decode_ms_per_token"],
                c["keystroke_ms"],
                c["cold_request_ms"],
            ]
        return [s["cold_prefill_ms"].get(k, math.nan) for k in sizes] + [
            s["decode_ms_per_token"],
            s["keystroke_first_token_ms"],
            s["keystroke_ms"],
            s["cold_request_ms"],
            s["peak_rss_mb"],
        ]

    base = cells(ref)
    for s in summaries:
        text = []
        for value, ours in zip(cells(s), base, strict=False):
            if math.isnan(value):
                text.append("–")
                continue
            fmt = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
            if s is not ref and ours > 0:
                fmt += f" ({value / ours:.2f}×)"
            text.append(fmt)
        lines.append(f"| {s['label']} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def compact_json(payload: dict[str, Any]) -> str:
    """One line per engine and per top-level key, floats to 0.1: small, and diffs read well."""

    def rounded(x: Any) -> Any:
        if isinstance(x, float):
            return round(x, 1)
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rounded(v) for v in x]
        return x

    lines = []
    for key, value in rounded(payload).items():
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(v, dict | list) for v in value.values())
        ):
            inner = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{json.dumps(key)}: {{\n{inner}\n }}")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            inner = ",\n".join(f"  {json.dumps(v)}" for v in value)
            lines.append(f"{json.dumps(key)}: [\n{inner}\n ]")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"


def parse_spec(text: str, default_label: str) -> tuple[str, str]:
    """`LABEL=PATH` or `PATH` (a `graph:...` spec without a label is a PATH)."""
    if "=" in text and not text.startswith("graph:"):
        label, path = text.split("=", 1)
        return label, path
    return default_label, text


def prepare_peers(peers_dir: Path, python: str, gguf: Path, threads: int) -> list[str]:
    """Build what the peers need and is missing: a Hugging Face folder dequantised from the
    GGUF (the same weights our builder reads) and onnxruntime-genai graphs at fp32 and int4."""
    peers_dir.mkdir(parents=True, exist_ok=True)
    hf = peers_dir / "smollm2-hf"
    done: list[str] = []
    if not (hf / "config.json").is_file():
        cmd = [python, str(Path(__file__).resolve()), "--export-hf", str(gguf), str(hf)]
        subprocess.run(cmd, check=True)
        done.append(str(hf))
    for precision in ("fp32", "int4"):
        out = peers_dir / f"genai-{precision}"
        if (out / "genai_config.json").is_file():
            continue
        cmd = [python, "-m", "onnxruntime_genai.models.builder", "-i", str(hf), "-o", str(out)]
        cmd += ["-p", precision, "-e", "cpu", "-c", str(peers_dir / "genai-cache")]
        cmd += ["--extra_options", "prune_lm_head=true"]
        subprocess.run(cmd, check=True)
        done.append(str(out))
    for out in peers_dir.glob("genai-*/genai_config.json"):
        set_genai_threads(out, threads)
    return done


def set_genai_threads(config_file: Path, threads: int) -> None:
    """The same session settings as ours: `threads` intra-op threads, no spinning."""
    config = json.loads(config_file.read_text())
    session = config["model"]["decoder"].setdefault("session_options", {})
    session["intra_op_num_threads"] = threads
    session["inter_op_num_threads"] = 1
    # genai passes unknown string keys on as session config entries
    session["session.intra_op.allow_spinning"] = "0"
    config_file.write_text(json.dumps(config, indent=4))


def export_hf(gguf: Path, out: Path) -> None:
    """Dequantise the GGUF with transformers and save it as a Hugging Face folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype="float32"
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are plain fp32 now; let save_pretrained write them
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def ours_model_dir(spec: str) -> Path:
    """A model folder, or `graph:KEY=VALUE,...`: the default model built (once, into the
    cache) with those `GraphOptions`, e.g. `graph:weights=q4,accuracy_level=4`."""
    if not spec.startswith("graph:"):
        return Path(spec)
    from onnx_models.graph_builder import GraphOptions
    from onnx_models.install import ensure_model

    fields: dict[str, Any] = {}
    for item in spec.removeprefix("graph:").split(","):
        key, value = item.split("=", 1)
        booleans = {"true": True, "false": False}
        fields[key] = int(value) if value.isdigit() else booleans.get(value, value)
    return ensure_model(options=GraphOptions(**fields), progress=True)


def default_gguf() -> Path:
    from onnx_models.paths import downloads_dir

    return downloads_dir() / GGUF_NAME


def engine_specs(args: argparse.Namespace) -> list[EngineSpec]:
    wanted = set(args.engines.split(","))
    peers_python = args.peers_python or sys.executable
    gguf = str(args.gguf or default_gguf())
    specs: list[EngineSpec] = []
    if "ours" in wanted:
        ours = args.ours
        if not ours:
            from onnx_models.install import ensure_model

            ours = [f"ours={ensure_model()}"]
        for i, text in enumerate(ours):
            label, path = parse_spec(text, "ours" if i == 0 else f"ours#{i + 1}")
            path = str(ours_model_dir(path))
            specs.append(EngineSpec(label, "ours", path, sys.executable))
            if args.ours_speculate and (i == 0 or args.ours_speculate == "all"):
                label += " + prompt lookup"
                specs.append(EngineSpec(label, "ours", path, sys.executable, {"speculate": "1"}))
    if "genai" in wanted:
        genai = args.genai or [
            f"onnxruntime-genai {p.name.removeprefix('genai-')}={p}"
            for p in sorted(args.peers_dir.glob("genai-*"))
            if (p / "genai_config.json").is_file()
        ]
        for text in genai:
            label, path = parse_spec(text, f"onnxruntime-genai {Path(text).name}")
            specs.append(EngineSpec(label, "genai", path, peers_python))
    if "llama" in wanted:
        options = {"extra_bufts": "1"} if args.llama_extra_bufts else {}
        specs.append(EngineSpec("llama.cpp Q4_1", "llama", gguf, peers_python, options))
        if args.llama_spin:
            spin = EngineSpec("llama.cpp Q4_1 spinning", "llama", gguf, peers_python, options)
            spin.env["OMP_WAIT_POLICY"] = ""  # OpenMP's default: spin, then sleep
            specs.append(spin)
        if args.llama_flash_attn:
            options = {**options, "flash_attn": "1"}
            specs.append(EngineSpec("llama.cpp Q4_1 FA", "llama", gguf, peers_python, options))
    if "transformers" in wanted:
        model = str(args.transformers_model or gguf)
        specs.append(EngineSpec("transformers fp32", "transformers", model, peers_python))
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ours",
        action="append",
        help="[LABEL=]MODEL_DIR or [LABEL=]graph:KEY=VALUE,... (GraphOptions; repeatable)",
    )
    parser.add_argument("--genai", action="append", help="[LABEL=]GENAI_DIR (repeatable)")
    parser.add_argument(
        "--ours-speculate",
        nargs="?",
        const="first",
        choices=["first", "all"],
        help="also the first (or every) --ours with prompt-lookup speculation (changes "
        "requests only)",
    )
    parser.add_argument("--gguf", type=Path, help="the GGUF for llama.cpp and transformers")
    parser.add_argument("--engines", default="ours,genai,llama,transformers")
    parser.add_argument(
        "--transformers-model", type=Path, help="GGUF or Hugging Face folder (default: --gguf)"
    )
    parser.add_argument("--peers-python", help="interpreter with the peers installed")
    parser.add_argument("--peers-dir", type=Path, default=Path("/work/peers"))
    parser.add_argument("--prepare", action="store_true", help="build missing peer graphs")
    parser.add_argument("--llama-flash-attn", action="store_true", help="also llama.cpp with FA")
    parser.add_argument(
        "--llama-spin", action="store_true", help="also llama.cpp with OpenMP's default waiting"
    )
    parser.add_argument(
        "--llama-extra-bufts", action="store_true", help="let llama.cpp use AMX/repacked weights"
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--keystroke-context", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="write the medians and all samples here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--option", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--export-hf", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        options = dict(o.split("=", 1) for o in args.option)
        worker_main(args.worker, args.model, args.threads, options)
        return
    if args.export_hf:
        export_hf(*args.export_hf)
        return
    if args.prepare:
        built = prepare_peers(
            args.peers_dir,
            args.peers_python or sys.executable,
            args.gguf or default_gguf(),
            args.threads,
        )
        for path in built:
            print(f"built {path}", flush=True)

    plan = RoundPlan(
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        decode_tokens=args.decode_tokens,
        keystroke_context=args.keystroke_context,
        keystroke_offsets=(),  # known once a tokenizer has read the modules (report)
        keystroke_new=(),
        request_tokens=16,
    )
    report(engine_specs(args), plan, args)


def report(specs: list[EngineSpec], plan: RoundPlan, args: argparse.Namespace) -> None:
    log = print
    text = prompt_text()
    log_dir = Path(tempfile.mkdtemp(prefix="nexttoken-bench-"))
    workers: list[Worker] = []
    skipped: dict[str, str] = {}
    for spec in specs:  # start one at a time: loading competes for the same cores
        log(f"loading {spec.label} ({spec.model}) ...", flush=True)
        worker = Worker(spec, args.threads, log_dir)
        if "error" in worker.hello:
            skipped[spec.label] = worker.hello["error"]
            log(f"  skipped: {worker.hello['error']}", flush=True)
            worker.close()
            continue
        log(f"  {worker.hello['version']}, loaded in {worker.hello['load_s']:.1f} s", flush=True)
        workers.append(worker)
    if not workers:
        raise SystemExit("no engine could be loaded")

    # Same text, each engine's own tokenizer: the ids, and where each module starts in them (a
    # keystroke prompt is a module's first tokens). The worker keeps the last text it tokenized.
    prompts: dict[str, list[int]] = {}
    plans: dict[str, RoundPlan] = {}
    for w in list(workers):
        starts, before = [], ""
        for module in module_texts():
            starts.append(len(w.call("tokenize", text=before, keep=len(before)).get("ids", [])))
            before += module + MODULE_SEPARATOR
        need = max(max(plan.sizes), starts[-1] + plan.keystroke_context + max(KEYSTROKE_NEW))
        reply = w.call("tokenize", text=text, keep=need)
        if "error" in reply or len(reply["ids"]) < need:
            skipped[w.spec.label] = reply.get("error", "prompt text too short")
            workers.remove(w)
            w.close()
            continue
        prompts[w.spec.label] = reply["ids"]
        plans[w.spec.label] = replace(plan, keystroke_offsets=tuple(starts))

    def used(label: str) -> list[list[int]]:
        """The token ranges the rounds run: prefixes up to the largest size, and the windows."""
        ids, width = prompts[label], plan.keystroke_context + max(KEYSTROKE_NEW)
        starts = plans[label].keystroke_offsets
        return [ids[: max(plan.sizes)]] + [ids[start : start + width] for start in starts]

    ref_used = used(workers[0].spec.label)
    tokenizer_agree = {label: used(label) == ref_used for label in prompts}

    warmup = RoundPlan((256,), 4, min(256, plan.keystroke_context), (0,), (1,), 4)
    rounds: dict[str, list[dict[str, Any]]] = {w.spec.label: [] for w in workers}
    failed: dict[str, str] = {}

    def step(w: Worker, round_plan: RoundPlan, keep: bool) -> None:
        if w.spec.label in failed:
            return
        result = w.call("round", plan=vars(round_plan))
        if "error" in result:
            failed[w.spec.label] = result["error"]
            log(f"  {w.spec.label} failed: {result['error']}", flush=True)
        elif keep:
            rounds[w.spec.label].append(result)

    log("warm-up round ...", flush=True)
    for w in workers:
        step(w, warmup, keep=False)
    for r in range(args.rounds):
        order = workers[r % len(workers) :] + workers[: r % len(workers)]
        t0 = time.perf_counter()
        # Every module gets each count of new tokens in turn over the rounds.
        new = tuple(KEYSTROKE_NEW[(i + r) % len(KEYSTROKE_NEW)] for i in range(len(PROMPT_FILES)))
        for w in order:
            step(w, replace(plans[w.spec.label], keystroke_new=new), keep=True)
        log(f"round {r + 1}/{args.rounds} in {time.perf_counter() - t0:.0f} s", flush=True)

    greedy: dict[str, list[int]] = {}
    for w in workers:
        reply = w.call("greedy", prompt=512, new=16)
        greedy[w.spec.label] = reply.get("tokens", [])
    memory = {w.spec.label: w.call("memory") for w in workers}
    versions = {w.spec.label: w.hello["version"] for w in workers}
    load_s = {w.spec.label: w.hello["load_s"] for w in workers}
    for w in workers:
        w.close()

    live = [w for w in workers if w.spec.label not in failed and rounds[w.spec.label]]
    summaries = [summarise(w.spec.label, rounds[w.spec.label], memory[w.spec.label]) for w in live]
    ref_label = live[0].spec.label
    ref_tokens = greedy[ref_label]
    parity = {
        label: dict(zip(("prefix", "same"), agreement(ref_tokens, tokens), strict=False))
        for label, tokens in greedy.items()
    }

    log("")
    log("wall clock, medians:")
    log(markdown(summaries, plan))
    log("")
    log("CPU time of the engine's process (all threads), medians:")
    log(markdown(summaries, plan, cpu=True))
    log("")
    log(f"ratios: engine / {ref_label} (above 1: {ref_label} is faster or smaller)")
    log("keystroke against a cold request for the same prompt (cold / keystroke):")
    log("(median of the per-prompt ratios; by module in the order of PROMPT_FILES)")
    for summary in summaries:
        total, first = summary["keystroke_speedup"], summary["keystroke_first_token_speedup"]
        by_module = ", ".join(f"{x:.1f}" for x in summary["keystroke_speedup_by_module"].values())
        log(
            f"  {summary['label']}: {total:.1f}× with 16 tokens decoded ({by_module}), "
            f"{first:.1f}× to the first"
        )
    log(f"greedy agreement with {ref_label}, 16 tokens after 512 prompt tokens:")
    for label, agree in parity.items():
        note = "" if tokenizer_agree.get(label, False) else " (tokenizer gave other ids!)"
        log(f"  {label}: same first {agree['prefix']}, same at {agree['same']} of 16{note}")
    for label, why in {**skipped, **failed}.items():
        log(f"  not measured: {label}: {why}")
    for label, version in versions.items():
        log(f"  {label}: {version}, load {load_s[label]:.1f} s")
    if args.json:
        payload = {
            "command": shlex.join(["python", *sys.argv]),
            "plan": vars(plan),
            "keystroke_offsets": {label: p.keystroke_offsets for label, p in plans.items()},
            "threads": args.threads,
            "versions": versions,
            "summaries": summaries,
            "greedy_tokens": greedy,
            "greedy_agreement": parity,
            "tokenizers_agree": tokenizer_agree,
            "not_measured": {**skipped, **failed},
            "samples": rounds,
        }
        args.json.write_text(compact_json(payload))
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
