"""Completion: document + cursor -> prompt -> decode -> stop -> filter -> (insert text, range)."""
