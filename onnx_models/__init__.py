"""Model building (GGUF / safetensors -> ONNX + tokenizer + manifest) and the ONNX Runtime engine."""
