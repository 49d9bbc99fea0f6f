"""The workspace index: symbols, imports and chunks of every source file, kept current.

`index.WorkspaceIndex` runs beside the server in its own thread (and, for a big first pass,
worker processes); `completion.context` reads it to choose repository context for prompts.
Nothing here talks LSP or runs the model, and nothing a completion request does waits for it.
"""
