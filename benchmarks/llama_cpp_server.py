"""Start llama-cpp-python's OpenAI-compatible server on loopback, for parity runs and the
llama.cpp remote-backend test. Run it with a python that has `llama-cpp-python[server]`; it
imports nothing of nexttoken, so it needs no second install of the project.

Two things differ from `python -m llama_cpp.server`, and neither has a server flag:
- llama.cpp's extra weight buffers (AMX and repacked layouts) are off: a build with native
  CPU flags crashes in llama_decode on our VMs, whose CPUs advertise AMX. Without them it
  runs its ordinary AVX-512/AVX2 kernels on the same Q4_1 blocks.
- The request default `repeat_penalty` is 1.0 (llama-cpp-python's is 1.1), so temperature 0
  means plain greedy as in OpenAI's API; `--repeat-penalty 1.1` keeps the shipped default.

Run: /work/venv-peers/bin/python benchmarks/llama_cpp_server.py --model X.gguf --port 8089
"""

from __future__ import annotations

import argparse
import os
from typing import Any

# ggml's type ids (GGML_TYPE_F32, GGML_TYPE_F16)
KV_TYPES = {"f32": 0, "f16": 1}


def disable_extra_buffers() -> None:
    """Every model loaded after this call gets `use_extra_bufts = False`. llama-cpp-python's
    `Llama` takes its model parameters from this binding and exposes no argument for it."""
    import llama_cpp.llama_cpp as bindings

    defaults = bindings.llama_model_default_params

    def model_params() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = model_params


def set_request_repeat_penalty(value: float) -> None:
    """Change the default of the request models. FastAPI builds its validators when the app
    module declares its routes, so this must run before `llama_cpp.server.app` is imported."""
    from llama_cpp.server import types

    for model in (types.CreateCompletionRequest, types.CreateChatCompletionRequest):
        model.model_fields["repeat_penalty"].default = value
        model.model_rebuild(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--repeat-penalty", type=float, default=1.0)
    parser.add_argument(
        "--kv-type", choices=sorted(KV_TYPES), default="f16", help="KV cache (llama.cpp: f16)"
    )
    parser.add_argument(
        "--extra-bufts", action="store_true", help="keep llama.cpp's AMX/repacked weight buffers"
    )
    args = parser.parse_args()
    # Spinning OpenMP workers collapse on a shared box (see benchmarks/README.md, Engine).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not args.extra_bufts:
        disable_extra_buffers()
    set_request_repeat_penalty(args.repeat_penalty)

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import Settings

    settings = Settings(
        model=args.model,
        host=args.host,
        port=args.port,
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        type_k=KV_TYPES[args.kv_type],
        type_v=KV_TYPES[args.kv_type],
        verbose=False,
    )
    uvicorn.run(create_app(settings=settings), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
