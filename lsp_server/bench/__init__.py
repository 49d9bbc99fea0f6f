"""`nexttoken bench`: latency lint and quality testbed, played through the real server.

The bench is an LSP client. It starts `nexttoken serve` over stdio, opens files and types into
them as an editor does, and measures what a user would see: keystroke-to-suggestion latency,
empty answers, KV-cache reuse. `--quality` punches holes into the workspace and scores how the
server fills them. Nothing here imports the model or the pipeline: the server is a black box
spoken to over the protocol, so the numbers include everything an editor pays for.

Modules: `workspace` (which files, which cursor positions), `client` (the LSP client),
`typist` (one position typed keystroke by keystroke), `figures` (percentiles, summary, budget),
`quality` (holes, fills, scores, test runs), `machine` (what it ran on), `report` (JSON and
HTML), `progress`, and `command` (the subcommand itself).
"""
