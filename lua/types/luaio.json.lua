---@meta luaio.json
-- LuaLS annotations for `require "luaio.json"` (see lua/types/luaio.lua).
-- The file name's dots map to the module name, as LuaLS resolves require.

---@class luaio.json.EncodeOptions
---@field indent? boolean pretty-print with indentation

---JSON on yajl: integers stay integers (64-bit exact), floats round-trip,
---invalid UTF-8, NaN and infinity are errors of kind `"json"`.
---@class luaio.json
---@field null lightuserdata stands for JSON null, in both directions
local json = {}

---Encodes a value; an empty table encodes as `{}` unless marked with
---`json.array`. Nesting is bounded (120 levels).
---@param value any
---@param opts? luaio.json.EncodeOptions
---@return string
function json.encode(value, opts) end

---Decodes JSON text; errors (kind `"json"`) name the byte position.
---Nesting is bounded (512 levels). Decoded arrays carry the array mark.
---@param text string
---@return any
function json.decode(text) end

---Marks `t` (or a new table) to encode as an array, even when empty.
---@generic T: table
---@param t? T
---@return T
function json.array(t) end

return json
