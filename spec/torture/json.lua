-- Allocation-failure torture: encoding and decoding nested JSON.
local json = require "luaio.json"
local v = { id = 12345678901234567, list = {}, name = "x", nested = {} }
for i = 1, 50 do v.list[i] = { i = i, f = i / 3, s = ("s"):rep(i) } end
for i = 1, 20 do v.nested = { v.nested } end
local text = json.encode(v)
local back = json.decode(text)
assert(back.id == v.id and #back.list == 50)
assert(json.encode(back, { indent = true }))
assert(not pcall(json.decode, text:sub(1, -2)))
print("done", #text)
