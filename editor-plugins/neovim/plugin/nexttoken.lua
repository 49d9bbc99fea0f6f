-- Nothing starts until require('nexttoken').setup{} is called.
vim.g.loaded_nexttoken = 1
