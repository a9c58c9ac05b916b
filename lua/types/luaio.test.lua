---@meta luaio.test
-- LuaLS annotations for `require "luaio.test"` (see lua/types/luaio.lua).

---What a test can ask of the runner of `luaio test`. Outside a
---`luaio test` run these do nothing.
---@class luaio.test
local test = {}

---Gives the running test `seconds` in place of the default time limit,
---counted from its start (in a hook: from the call).
---@param seconds number
function test.timeout(seconds) end

---Registers a process the test started, to be stopped (SIGTERM with its
---descendants, SIGKILL 2 s later) when the running block ends, passed
---or failed, and at the end of the run. `p` is a PID or an object whose
---`pid` field names the process (read again when the block ends).
---@generic P: integer|{pid: integer?}
---@param p P
---@return P p
function test.track(p) end

return test
