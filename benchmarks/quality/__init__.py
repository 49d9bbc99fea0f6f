"""The quality benchmark: HumanEval infilling (exact match and pass@1 in a sandbox) and holes in
held-out files, completed through the server's own pipeline, with latency beside quality.
`run.py` runs it; `report.py` turns result files into a Markdown table."""
