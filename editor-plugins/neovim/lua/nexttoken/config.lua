-- Options of require('nexttoken').setup{}: the defaults, and merging the user's over them.
local M = {}

M.defaults = {
  -- How to start the server (stdio).
  cmd = { 'nexttoken', 'serve' },
  -- Filetypes to complete; nil for every file buffer.
  filetypes = nil,
  -- Sent to the server as initializationOptions and on :Nexttoken toggle (see
  -- lsp_server/settings.py): enabled, modelDir, maxNewTokens, debounceMs, candidates.
  settings = {},
  -- Wait this long after a keystroke before asking; the server adapts its own wait on top.
  debounce_ms = 20,
  -- On Neovim 0.12+, use the built-in vim.lsp.inline_completion instead of our ghost text.
  native = true,
  -- Insert-mode keys; set one to false to leave it unmapped. `accept` falls back to the key
  -- itself when no suggestion is shown, so Tab still indents.
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-Down>',
    dismiss = '<C-]>',
    next = '<M-]>',
    prev = '<M-[>',
  },
}

M.options = vim.deepcopy(M.defaults)

function M.set(user)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), user or {})
  return M.options
end

return M
