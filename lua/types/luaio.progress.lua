---@meta luaio.progress
-- LuaLS annotations for `require "luaio.progress"` (see lua/types/luaio.lua).

---@class luaio.progress.BarOptions
---@field total? integer how many in all (nil: unknown; no bar, no ETA)
---@field label? string written before the bar
---@field unit? string "pages", "B" (sizes humanised: KiB, MiB...), any
---@field stream? file* where to draw (default io.stderr)
---@field interval? number seconds between plain lines off a terminal (5)
---@field summary? boolean off a terminal, a last line on close (true)
---@field quiet? boolean draw nothing (`bar:log` still writes)

---A progress bar: redrawn in place on a terminal, plain lines in a log.
---Closing it (`<close>`, `close`, collection) draws its final frame.
---@class luaio.ProgressBar
local Bar = {}

---Counts n more done (default 1).
---@param n? integer
function Bar:advance(n) end

---Sets the total (nil: unknown).
---@param n? integer
function Bar:set_total(n) end

---Writes a line above the bars.
---@param msg string
function Bar:log(msg) end

---Draws the final frame (or the summary line) and stops the bar.
function Bar:close() end

---Progress bars for terminals and logs.
---@class luaio.progress
local progress = {}

---A new bar, drawn with the other live bars on its stream.
---@param opts? luaio.progress.BarOptions
---@return luaio.ProgressBar
function progress.bar(opts) end

---Humanises a size in bytes: "1023 B", "1.5 KiB", "2.0 MiB"...
---@param n number
---@return string
function progress.format_bytes(n) end

---Formats seconds as "m:ss", or "h:mm:ss" from an hour.
---@param seconds number
---@return string
function progress.format_duration(seconds) end

return progress
