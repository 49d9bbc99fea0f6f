-- :checkhealth nexttoken
local M = {}

local health = vim.health
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

function M.check()
  local config = require('nexttoken.config').options
  local compat = require('nexttoken.compat')

  start('nexttoken: Neovim')
  if vim.fn.has('nvim-0.10') == 1 then
    ok('Neovim ' .. tostring(vim.version()) .. ': ghost text drawn inline')
  elseif vim.fn.has('nvim-0.9') == 1 then
    warn('Neovim ' .. tostring(vim.version()) .. ': ghost text overlays the text after the cursor',
      { 'Neovim 0.10 or newer draws it inline' })
  else
    error('Neovim 0.9 or newer is needed')
  end
  if compat.has_native_inline_completion and config.native then
    ok('using the built-in vim.lsp.inline_completion')
  else
    info("using nexttoken's own ghost text")
  end

  start('nexttoken: server')
  local executable = config.cmd[1]
  if vim.fn.executable(executable) == 1 then
    ok('server command: ' .. table.concat(config.cmd, ' '))
    local version = vim.fn.system({ executable, '--version' })
    if vim.v.shell_error == 0 and config.cmd[2] == 'serve' then
      info(vim.trim(version))
    end
  else
    error(executable .. ' is not executable', {
      'pip install nexttoken (or the checkout: pip install -e .)',
      "or set cmd = { '/path/to/nexttoken', 'serve' } in setup{}",
    })
  end
  local clients = vim.lsp.get_clients({ name = 'nexttoken' })
  if #clients == 0 then
    info('no server running yet (one starts with the first file buffer)')
  end
  for _, client in ipairs(clients) do
    local capabilities = client.server_capabilities or {}
    if capabilities.inlineCompletionProvider then
      ok(string.format('server %d running, offers inline completion', client.id))
    else
      warn(string.format('server %d running without inline completion', client.id))
    end
  end
end

return M
