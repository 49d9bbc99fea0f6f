-- nexttoken for Neovim: starts the nexttoken language server for file buffers with
-- vim.lsp.start and shows its inline completions as ghost text: our own extmarks before
-- Neovim 0.12, the built-in vim.lsp.inline_completion from 0.12 on.
--
--   require('nexttoken').setup{ cmd = { 'nexttoken', 'serve' } }
local config = require('nexttoken.config')
local compat = require('nexttoken.compat')
local suggestion = require('nexttoken.suggestion')

local M = {}

local function use_native()
  return config.options.native and compat.has_native_inline_completion
end

local function wanted(bufnr)
  if vim.bo[bufnr].buftype ~= '' or vim.api.nvim_buf_get_name(bufnr) == '' then
    return false
  end
  local filetypes = config.options.filetypes
  return filetypes == nil or vim.tbl_contains(filetypes, vim.bo[bufnr].filetype)
end

local function root_dir(bufnr)
  local markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml' }
  if vim.fs.root then
    return vim.fs.root(bufnr, markers) or vim.fn.getcwd()
  end
  local found = vim.fs.find(markers, { upward = true, path = vim.fs.dirname(vim.api.nvim_buf_get_name(bufnr)) })[1]
  return found and vim.fs.dirname(found) or vim.fn.getcwd()
end

function M.client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or vim.api.nvim_get_current_buf(), name = 'nexttoken' })[1]
end

function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not wanted(bufnr) then
    return nil
  end
  -- An empty Lua table would go out as a JSON array.
  local settings = config.options.settings
  return vim.lsp.start({
    name = 'nexttoken',
    cmd = config.options.cmd,
    root_dir = root_dir(bufnr),
    init_options = { nexttoken = vim.tbl_isempty(settings) and vim.empty_dict() or settings },
    on_attach = function(_, attached)
      if use_native() then
        vim.lsp.inline_completion.enable(true, { bufnr = attached })
      else
        suggestion.attach(attached)
      end
    end,
  }, { bufnr = bufnr })
end

-- Keys: each returns the key itself when there is nothing to act on.
local function map(lhs, action, native_action)
  if not lhs then
    return
  end
  vim.keymap.set('i', lhs, function()
    if use_native() then
      if native_action and native_action() then
        return ''
      end
      return lhs
    end
    if suggestion.visible() then
      vim.schedule(action)
      return ''
    end
    return lhs
  end, { expr = true, replace_keycodes = true, desc = 'nexttoken' })
end

function M.accept()
  return suggestion.accept()
end
function M.accept_word()
  return suggestion.accept_word()
end
function M.accept_line()
  return suggestion.accept_line()
end
function M.dismiss()
  return suggestion.dismiss()
end
function M.next()
  return suggestion.cycle(1)
end
function M.prev()
  return suggestion.cycle(-1)
end
function M.visible()
  return suggestion.visible()
end
function M.shown_text()
  return suggestion.shown_text()
end

function M.toggle()
  local enabled = vim.g.nexttoken_enabled == false
  vim.g.nexttoken_enabled = enabled
  if not enabled then
    suggestion.clear()
  end
  for _, client in ipairs(vim.lsp.get_clients({ name = 'nexttoken' })) do
    local settings = vim.tbl_extend('force', config.options.settings, { enabled = enabled })
    compat.notify(client, 'workspace/didChangeConfiguration', { settings = { nexttoken = settings } })
  end
  vim.notify('nexttoken: suggestions ' .. (enabled and 'on' or 'off'))
end

function M.stats()
  local client = M.client() or vim.lsp.get_clients({ name = 'nexttoken' })[1]
  if not client then
    vim.notify('nexttoken: the server is not running', vim.log.levels.WARN)
    return
  end
  compat.request(client, 'nexttoken/stats', {}, function(err, result)
    if err then
      vim.notify('nexttoken/stats failed: ' .. tostring(err.message), vim.log.levels.ERROR)
      return
    end
    local total = result.session.total
    local lines = {
      string.format('this session: %d shown, %d accepted, %d in part; %d characters accepted',
        total.shown, total.accepted, total.partiallyAccepted, total.acceptedChars),
      string.format('%d of %d checked characters still present 30 s later',
        total.retainedChars, total.checkedChars),
      'all time: run `nexttoken stats` (' .. tostring(result.statsFile) .. ')',
    }
    vim.notify(table.concat(lines, '\n'))
  end)
end

function M.setup(opts)
  config.set(opts)
  vim.api.nvim_set_hl(0, 'NexttokenSuggestion', { link = 'Comment', default = true })
  local keys = config.options.keymaps
  local native = vim.lsp.inline_completion
  map(keys.accept, suggestion.accept, native and function()
    return native.get()
  end)
  map(keys.accept_word, suggestion.accept_word)
  map(keys.accept_line, suggestion.accept_line)
  map(keys.dismiss, suggestion.dismiss)
  for direction, lhs in pairs({ [1] = keys.next, [-1] = keys.prev }) do
    if lhs then
      -- Also before anything is shown: the first cycle asks for several candidates.
      vim.keymap.set('i', lhs, function()
        if use_native() then
          native.select({ count = direction })
        else
          suggestion.cycle(direction)
        end
      end, { desc = 'nexttoken: next or previous suggestion' })
    end
  end

  local group = vim.api.nvim_create_augroup('nexttoken', { clear = true })
  vim.api.nvim_create_autocmd({ 'FileType', 'BufReadPost', 'BufNewFile' }, {
    group = group,
    callback = function(args)
      M.start(args.buf)
    end,
  })
  vim.api.nvim_create_user_command('Nexttoken', function(command)
    local action = ({
      toggle = M.toggle,
      stats = M.stats,
      start = function()
        M.start()
      end,
      log = function()
        vim.cmd.edit(vim.lsp.get_log_path())
      end,
    })[command.args]
    if not action then
      vim.notify('nexttoken: :Nexttoken toggle|stats|start|log', vim.log.levels.ERROR)
      return
    end
    action()
  end, {
    nargs = 1,
    complete = function()
      return { 'toggle', 'stats', 'start', 'log' }
    end,
  })
  -- Buffers already open when setup runs (lazy-loading on InsertEnter).
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      M.start(bufnr)
    end
  end
end

return M
