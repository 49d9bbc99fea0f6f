-- Ghost text for Neovim before 0.12: asks the server for textDocument/inlineCompletion as you
-- type, draws the suggestion with extmarks, and accepts it whole, by word or by line. Reports
-- what was shown and accepted with Copilot's notifications and the item's command, so the
-- server's statistics see it. One suggestion state per buffer.
local compat = require('nexttoken.compat')
local config = require('nexttoken.config')

local M = {}

M.ns = vim.api.nvim_create_namespace('nexttoken')
local INVOKED, AUTOMATIC = 1, 2

local uv = vim.uv or vim.loop

-- bufnr -> { items, index, origin_row, origin_col (the cursor the answer was for), row, col
-- (where the ghost text is drawn), consumed (accepted in part), request, timer, invoked,
-- skip_tick }
local states = {}

local function state_of(bufnr)
  states[bufnr] = states[bufnr] or { items = {}, index = 1, consumed = '' }
  return states[bufnr]
end

local function client_of(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = 'nexttoken' })[1]
end

local function cursor()
  local position = vim.api.nvim_win_get_cursor(0)
  return position[1] - 1, position[2]
end

local function current_item(state)
  return state.items[state.index]
end

local function clear_marks(bufnr)
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

local function cancel_request(bufnr, state)
  if state.request then
    local client = client_of(bufnr)
    if client then
      compat.cancel(client, state.request)
    end
    state.request = nil
  end
end

-- Forget the suggestion (and stop asking for one).
function M.clear(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = state_of(bufnr)
  cancel_request(bufnr, state)
  if state.timer then
    state.timer:stop()
  end
  state.items, state.index, state.consumed, state.invoked = {}, 1, '', false
  clear_marks(bufnr)
end

-- The part of the item still to show: its text after what is already typed before the cursor
-- (the range may start before it) and after what was accepted in part.
local function remaining_text(bufnr, state, item)
  local client = client_of(bufnr)
  local encoding = client and client.offset_encoding or 'utf-16'
  local row, col = state.origin_row, state.origin_col
  local range = item.range
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value -- a snippet string: shown as written
  end
  if range then
    local line = vim.api.nvim_buf_get_lines(bufnr, range.start.line, range.start.line + 1, false)[1]
      or ''
    if range.start.line == row then
      local start = compat.byte_index(line, range.start.character, encoding)
      local typed = line:sub(start + 1, col)
      if text:sub(1, #typed) ~= typed then
        return nil
      end
      text = text:sub(#typed + 1)
    end
  end
  return text:sub(#state.consumed + 1)
end

local function render(bufnr)
  local state = state_of(bufnr)
  clear_marks(bufnr)
  local item = current_item(state)
  if not item then
    return
  end
  local text = remaining_text(bufnr, state, item)
  if not text or text == '' then
    return
  end
  local lines = vim.split(text, '\n', { plain = true })
  local line = vim.api.nvim_buf_get_lines(bufnr, state.row, state.row + 1, false)[1] or ''
  -- Text the suggestion replaces after the cursor (an auto-closed bracket) is already on
  -- screen: do not draw it twice.
  local after = line:sub(state.col + 1)
  if #lines == 1 and after ~= '' and vim.endswith(lines[1], after) then
    lines[1] = lines[1]:sub(1, #lines[1] - #after)
  end
  local hl = 'NexttokenSuggestion'
  local mark = { id = 1, hl_mode = 'combine', priority = 200 }
  if lines[1] ~= '' then
    mark.virt_text = { { lines[1], hl } }
    mark.virt_text_pos = compat.has_inline_virt_text and 'inline' or 'overlay'
  end
  if #lines > 1 then
    mark.virt_lines = {}
    for i = 2, #lines do
      table.insert(mark.virt_lines, { { lines[i], hl } })
    end
  end
  vim.api.nvim_buf_set_extmark(bufnr, M.ns, state.row, state.col, mark)
  if not item.nexttoken_shown then
    item.nexttoken_shown = true
    local client = client_of(bufnr)
    if client then
      compat.notify(client, 'textDocument/didShowCompletion', { item = item })
    end
  end
end

function M.visible(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  return #vim.api.nvim_buf_get_extmarks(bufnr, M.ns, 0, -1, { limit = 1 }) > 0
end

-- The text shown now (for tests and statuslines); nil when nothing is shown.
function M.shown_text(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = state_of(bufnr)
  local item = current_item(state)
  if not item or not M.visible(bufnr) then
    return nil
  end
  return remaining_text(bufnr, state, item)
end

function M.request(bufnr, trigger_kind, on_done)
  local client = client_of(bufnr)
  local state = state_of(bufnr)
  if not client or vim.api.nvim_get_current_buf() ~= bufnr then
    return
  end
  cancel_request(bufnr, state)
  local row, col = cursor()
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = trigger_kind or AUTOMATIC }
  local id
  local ok, request_id = compat.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if state.request ~= id then
      return -- superseded
    end
    state.request = nil
    local now_row, now_col = cursor()
    if err or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick or now_row ~= row or now_col ~= col then
      return
    end
    local items = {}
    for _, item in ipairs((result and (result.items or result)) or {}) do
      if item.insertText and item.insertText ~= '' then
        table.insert(items, item)
      end
    end
    state.items, state.index, state.consumed = items, 1, ''
    state.origin_row, state.origin_col, state.row, state.col = row, col, row, col
    state.invoked = trigger_kind == INVOKED
    render(bufnr)
    if on_done then
      on_done(state)
    end
  end, bufnr)
  if ok then
    id = request_id
    state.request = id
  end
end

-- On every text change in insert mode: forget the old suggestion, ask again after a pause.
function M.on_text_changed(bufnr)
  local state = state_of(bufnr)
  if state.skip_tick == vim.api.nvim_buf_get_changedtick(bufnr) then
    return -- our own partial accept: the rest stays shown
  end
  M.clear(bufnr)
  if vim.g.nexttoken_enabled == false then
    return
  end
  state.timer = state.timer or uv.new_timer()
  state.timer:start(config.options.debounce_ms, 0, vim.schedule_wrap(function()
    if vim.api.nvim_get_mode().mode:sub(1, 1) == 'i' then
      M.request(bufnr, AUTOMATIC)
    end
  end))
end

function M.on_cursor_moved(bufnr)
  local state = state_of(bufnr)
  local row, col = cursor()
  if M.visible(bufnr) and (row ~= state.row or col ~= state.col) then
    M.clear(bufnr)
  end
end

local function run_command(bufnr, item)
  local client = client_of(bufnr)
  if client and item.command then
    compat.request(client, 'workspace/executeCommand', {
      command = item.command.command,
      arguments = item.command.arguments,
    }, function() end, bufnr)
  end
end

-- Insert `text` at the cursor and put the cursor after it.
local function insert_at_cursor(bufnr, text)
  local row, col = cursor()
  local lines = vim.split(text, '\n', { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  local last = lines[#lines]
  local end_col = #lines == 1 and col + #last or #last
  vim.api.nvim_win_set_cursor(0, { row + #lines, end_col })
end

-- Accept the whole suggestion: its range is replaced by its text, then its command runs.
function M.accept(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = state_of(bufnr)
  local item = current_item(state)
  local client = client_of(bufnr)
  if not item or not client or not M.visible(bufnr) then
    return false
  end
  local text = remaining_text(bufnr, state, item)
  local range = item.range
  local whole = state.consumed == ''
  M.clear(bufnr)
  if range and whole and text then
    local encoding = client.offset_encoding
    vim.lsp.util.apply_text_edits({ { range = range, newText = item.insertText } }, bufnr, encoding)
    local start_line = vim.api.nvim_buf_get_lines(bufnr, range.start.line, range.start.line + 1, false)[1]
    local start_col = compat.byte_index(start_line or '', range.start.character, encoding)
    local lines = vim.split(item.insertText, '\n', { plain = true })
    local end_col = #lines == 1 and start_col + #lines[1] or #lines[#lines]
    vim.api.nvim_win_set_cursor(0, { range.start.line + #lines, end_col })
  elseif text then
    insert_at_cursor(bufnr, text)
  end
  run_command(bufnr, item)
  return true
end

local function accept_part(bufnr, pick)
  local state = state_of(bufnr)
  local item = current_item(state)
  local client = client_of(bufnr)
  if not item or not client or not M.visible(bufnr) then
    return false
  end
  local text = remaining_text(bufnr, state, item) or ''
  local part = pick(text)
  if part == '' then
    return false
  end
  if part == text then
    return M.accept(bufnr)
  end
  insert_at_cursor(bufnr, part)
  state.consumed = state.consumed .. part
  state.row, state.col = cursor()
  state.skip_tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local accepted = item.insertText:sub(1, #item.insertText - #text + #part)
  compat.notify(client, 'textDocument/didPartiallyAcceptCompletion', {
    item = item,
    acceptedLength = compat.char_length(accepted, client.offset_encoding),
  })
  render(bufnr)
  return true
end

-- The next word: leading blanks, then a run of word characters or of other characters.
function M.next_word(text)
  return text:match('^%s*[%w_]+') or text:match('^%s*[^%w_%s]+') or text:match('^%s+') or ''
end

-- The rest of the current line, or the line break and the next line when at its end.
function M.next_line(text)
  local line = text:match('^[^\n]+')
  if line then
    return line
  end
  return text:match('^\n[^\n]*') or ''
end

function M.accept_word(bufnr)
  return accept_part(bufnr or vim.api.nvim_get_current_buf(), M.next_word)
end

function M.accept_line(bufnr)
  return accept_part(bufnr or vim.api.nvim_get_current_buf(), M.next_line)
end

function M.dismiss(bufnr)
  M.clear(bufnr or vim.api.nvim_get_current_buf())
end

-- Show the next (or previous) candidate; the first cycle asks the server for several.
function M.cycle(direction, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = state_of(bufnr)
  local function step(s)
    if #s.items > 1 then
      s.index = (s.index - 1 + direction) % #s.items + 1
      render(bufnr)
    end
  end
  if state.invoked or #state.items > 1 then
    step(state)
  else
    M.request(bufnr, INVOKED, step)
  end
end

function M.attach(bufnr)
  local group = vim.api.nvim_create_augroup('nexttoken_buffer_' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.on_text_changed(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('CursorMovedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      M.on_cursor_moved(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = bufnr,
    callback = function()
      local state = states[bufnr]
      if state and state.timer then
        state.timer:close()
      end
      states[bufnr] = nil
    end,
  })
end

return M
