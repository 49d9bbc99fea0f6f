"""Model building (GGUF -> ONNX graph + tokenizer + manifest) and the ONNX Runtime engine."""
