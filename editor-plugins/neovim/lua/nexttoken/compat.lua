-- The few calls whose shape changed between Neovim 0.9 and 0.12, in one place.
local M = {}

M.has_inline_virt_text = vim.fn.has('nvim-0.10') == 1
M.has_native_inline_completion = vim.lsp.inline_completion ~= nil
  and type(vim.lsp.inline_completion.enable) == 'function'

local method_calls = vim.fn.has('nvim-0.11') == 1

function M.request(client, method, params, handler, bufnr)
  if method_calls then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.notify(client, method, params)
  if method_calls then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel(client, id)
  if method_calls then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

-- Byte column of an LSP character offset in `line`.
function M.byte_index(line, character, encoding)
  if vim.fn.has('nvim-0.11') == 1 then
    return vim.str_byteindex(line, encoding, character, false)
  end
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, index = pcall(vim.str_byteindex, line, character, encoding == 'utf-16')
  return ok and index or #line
end

-- LSP character length of `text`.
function M.char_length(text, encoding)
  if encoding == 'utf-8' then
    return #text
  end
  if vim.fn.has('nvim-0.11') == 1 then
    return vim.str_utfindex(text, encoding)
  end
  local utf32, utf16 = vim.str_utfindex(text)
  return encoding == 'utf-16' and utf16 or utf32
end

return M
