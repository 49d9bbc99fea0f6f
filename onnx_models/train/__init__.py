"""Training of FIM code models (LoRA on the shipped model, or a tiny one from scratch).

Needs the `train` extra (PyTorch, transformers, peft); nexttoken's runtime never imports it.
"""
