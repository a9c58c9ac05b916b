-- luaio.test: runs busted inside the main task, so every describe/it
-- block may call async functions directly. Called as
-- require("luaio.test")(args) by `luaio test [busted args]`.
return function(args)
  local busted_arg = { [0] = "luaio test" }
  for i, v in ipairs(args) do busted_arg[i] = v end
  _G.arg = busted_arg
  -- Fetch the runner first: a chunk run by require cannot yield, the
  -- runner function called afterwards can.
  local runner = require("busted.runner")
  local torture = os.getenv("LUAIO_TORTURE")   -- see lua/torture.lua
  if torture then require("luaio.torture").install(torture) end
  runner({ standalone = false })
end
