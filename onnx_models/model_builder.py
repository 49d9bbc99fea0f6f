"""Turn weights into a model folder: ONNX graph, tokenizer.json and manifest (GGUF files here;
Hugging Face checkpoints in hf_import.py share write_model_folder).

The folder is written beside its final place and renamed into it, so a crash or a full disk
never leaves a half-built model that looks complete.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from onnx_models import kv_calibration, step_timing
from onnx_models.adapter import AdaptedWeights, Adapter, adapt_manifest, write_adapted_tokenizer
from onnx_models.decoder_weights import DecoderWeights
from onnx_models.gguf_weights import GgufWeights
from onnx_models.graph_builder import GraphOptions, build_decoder, save_model, save_step_graph
from onnx_models.manifest import ModelManifest
from onnx_models.progress import ProgressCallback, silent
from onnx_models.special_tokens import context_tokens, fim_spec
from onnx_models.tokenizer_builder import build_tokenizer

log = logging.getLogger(__name__)

CONTROL_TOKEN_TYPE = 3
STEP_GRAPH_FILE = "step.onnx"


def _control_tokens(weights: GgufWeights) -> dict[str, int]:
    fields = weights.reader.fields
    tokens = fields["tokenizer.ggml.tokens"]
    types = fields.get("tokenizer.ggml.token_type")
    if types is None:
        return {}
    out: dict[str, int] = {}
    for i, (tok_idx, type_idx) in enumerate(zip(tokens.data, types.data, strict=True)):
        if int(types.parts[type_idx][0]) == CONTROL_TOKEN_TYPE:
            out[bytes(tokens.parts[tok_idx]).decode("utf-8", errors="replace")] = i
    return out


def manifest_for(
    weights: GgufWeights,
    name: str,
    family: str,
    source: dict[str, str],
    shared_kv_buffer: bool = True,
) -> ModelManifest:
    cfg = weights.config
    control = _control_tokens(weights)
    fim = fim_spec(control)
    special = context_tokens(control)
    eos = int(weights.field("tokenizer.ggml.eos_token_id"))
    eos_ids = [eos]
    if "endoftext" in special and control[special["endoftext"]] != eos:
        eos_ids.append(control[special["endoftext"]])
    bos = weights.reader.fields.get("tokenizer.ggml.bos_token_id")
    return cfg.manifest(
        shared_kv_buffer=shared_kv_buffer,
        name=name,
        family=family,
        bos_token_id=int(bos.contents()) if bos is not None else None,
        eos_token_ids=tuple(eos_ids),
        special_tokens=special,
        fim=fim,
        # Any control token ends a completion: it starts a new file, chat turn or repository.
        stop_tokens=tuple(sorted(control, key=control.__getitem__)),
        source=source,
    )


def build_model_folder(
    gguf_path: Path,
    out_dir: Path,
    *,
    name: str,
    family: str,
    source: dict[str, str] | None = None,
    progress: ProgressCallback = silent,
    options: GraphOptions | None = None,
    adapter: Path | None = None,
) -> Path:
    """Build `out_dir` from `gguf_path`, replacing it only once the new folder is complete;
    with `adapter`, a LoRA adapter folder (onnx_models/adapter.py) merged into the weights."""
    options = options or GraphOptions()
    weights = GgufWeights(gguf_path)
    provenance = {**(source or {"gguf": gguf_path.name}), "graph": options.label()}
    if adapter is None:
        return write_model_folder(
            weights,
            out_dir,
            write_tokenizer=lambda path: build_tokenizer(weights.reader).save(str(path)),
            manifest=lambda: manifest_for(
                weights, name, family, provenance, options.shared_kv_buffer
            ),
            progress=progress,
            options=options,
        )
    lora = Adapter.load(adapter)
    lora.check_base(gguf_path)
    provenance["adapter"] = Adapter.identity(adapter)
    return write_model_folder(
        AdaptedWeights(weights, lora),
        out_dir,
        write_tokenizer=lambda path: write_adapted_tokenizer(
            build_tokenizer(weights.reader), lora.config, path
        ),
        manifest=lambda: adapt_manifest(
            manifest_for(weights, name, family, provenance, options.shared_kv_buffer), lora.config
        ),
        progress=progress,
        options=options,
    )


def _write_graph(
    weights: DecoderWeights,
    folder: Path,
    options: GraphOptions,
    progress: ProgressCallback,
    *,
    quantized: bool,
    kv_scales: np.ndarray | None = None,
) -> None:
    cfg = weights.config
    progress("building ONNX graph", 0, cfg.num_layers)
    model = build_decoder(
        cfg,
        weights.embedding(),
        lambda i: weights.layer(i, quantized=quantized),
        weights.final_norm(),
        weights.lm_head(),
        on_layer=lambda i: progress("building ONNX graph", i + 1, cfg.num_layers),
        options=options,
        final_norm_bias=weights.final_norm_bias(),
        kv_scales=kv_scales,
    )
    progress("saving graph", 0, 0)
    save_model(model, folder / "model.onnx")


def _keep_step_graph_if_it_pays(
    staging: Path, built: ModelManifest, progress: ProgressCallback
) -> ModelManifest:
    built.save(staging)  # the engine that times the graphs loads the folder
    progress("timing the step graph", 0, 1)
    timing = step_timing.time_step_graph(staging)
    progress("timing the step graph", 1, 1)
    source = dict(built.source)
    if timing is None:  # a GPU runs one graph
        source["step_timing"] = "not timed: the engine runs on a GPU"
    else:
        log.info("step graph: %s", timing.summary())
        source["step_timing"] = timing.summary()
        source["step_speedup"] = f"{timing.speedup:.2f}"
    if timing is not None and timing.pays:
        return replace(built, source=source)
    (staging / STEP_GRAPH_FILE).unlink()
    return replace(built, source=source, step_graph_file=None)


def write_model_folder(
    weights: DecoderWeights,
    out_dir: Path,
    *,
    write_tokenizer: Callable[[Path], None],
    manifest: Callable[[], ModelManifest],
    progress: ProgressCallback = silent,
    options: GraphOptions,
) -> Path:
    """Write graph, tokenizer and manifest into a staging folder beside `out_dir`, then rename
    it into place: whatever the weights came from."""
    # Blocks a source stores (GGUF Q4_1) are carried into q4/q8 graphs without a float detour.
    quantized = options.weights != "fp32"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        progress("writing tokenizer", 0, 1)
        write_tokenizer(staging / "tokenizer.json")
        progress("writing tokenizer", 1, 1)
        built = manifest()
        kv_scales = None
        if options.kv_cache == "int8":
            # The scales come from running the same model with a float cache first.
            float_cache = replace(options, kv_cache="fp32")
            _write_graph(weights, staging, float_cache, progress, quantized=quantized)
            built.save(staging)
            progress("calibrating the int8 KV cache", 0, 1)
            kv_scales = kv_calibration.kv_scales(staging)
            progress("calibrating the int8 KV cache", 1, 1)
            built = replace(built, kv=replace(built.kv, dtype="int8"))
        _write_graph(weights, staging, options, progress, quantized=quantized, kv_scales=kv_scales)
        if options.step_accuracy_level is not None:
            # Written from the final graph only (not the int8 cache's calibration graph).
            save_step_graph(
                staging / "model.onnx", staging / STEP_GRAPH_FILE, options.step_accuracy_level
            )
            built = replace(built, step_graph_file=STEP_GRAPH_FILE)
            if options.step_timed:
                built = _keep_step_graph_if_it_pays(staging, built, progress)
        built.save(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
        progress("done", 1, 1)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir
