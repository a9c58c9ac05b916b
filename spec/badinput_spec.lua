-- Every public function rejects bad input with an error that names the
-- function and the argument (the detailed cases live in each module's
-- spec; this table makes sure none is missed).
local aio = require "luaio"
local fs = require "luaio.fs"
local http = require "luaio.http"
local json = require "luaio.json"
local net = require "luaio.net"
local url = require "luaio.url"
local progress = require "luaio.progress"

local T = {}          -- a value no function accepts where it needs a string

local cases = {
  {"aio.spawn", aio.spawn, 1, T},
  {"aio.sleep", aio.sleep, 1, T},
  {"aio.run", aio.run, 1, T},
  {"aio.error", aio.error, 1, T},
  {"aio.gather", aio.gather, 1, 5},
  {"aio.gather_all", aio.gather_all, 1, 5},
  {"aio.wait", aio.wait, 1, 5},
  {"aio.as_completed", aio.as_completed, 1, 5},
  {"aio.timeout", aio.timeout, 1, T},
  {"aio.wait_for", aio.wait_for, 1, T},
  {"aio.shield", aio.shield, 1, T},
  {"aio.shielded", aio.shielded, 1, T},
  {"aio.group", aio.group, 1, T},
  {"aio.queue", aio.queue, 1, T},
  {"aio.lifo_queue", aio.lifo_queue, 1, T},
  {"aio.priority_queue", aio.priority_queue, 1, T},
  {"aio.semaphore", aio.semaphore, 1, T},
  {"aio.bounded_semaphore", aio.bounded_semaphore, 1, T},
  {"aio.condition", aio.condition, 1, T},
  {"aio.rate_limiter", aio.rate_limiter, 1, 0},
  {"fs.read", fs.read, 1, T},
  {"fs.write", fs.write, 1, T},
  {"fs.append", fs.append, 1, T},
  {"fs.open", fs.open, 1, T},
  {"fs.stat", fs.stat, 1, T},
  {"fs.lstat", fs.lstat, 1, T},
  {"fs.exists", fs.exists, 1, T},
  {"fs.mkdir", fs.mkdir, 1, T},
  {"fs.rmdir", fs.rmdir, 1, T},
  {"fs.remove", fs.remove, 1, T},
  {"fs.rename", fs.rename, 1, T},
  {"fs.copy", fs.copy, 1, T},
  {"fs.readdir", fs.readdir, 1, T},
  {"fs.realpath", fs.realpath, 1, T},
  {"fs.mkdtemp", fs.mkdtemp, 1, T},
  {"fs.chmod", fs.chmod, 1, T},
  {"fs.watch", fs.watch, 1, T},
  {"http.get", http.get, 1, T},
  {"http.post", http.post, 1, T},
  {"http.put", http.put, 1, T},
  {"http.patch", http.patch, 1, T},
  {"http.delete", http.delete, 1, T},
  {"http.head", http.head, 1, T},
  {"http.options", http.options, 1, T},
  {"http.request", http.request, 1, 5},
  {"http.client", http.client, 1, 5},
  {"json.decode", json.decode, 1, T},
  {"json.array", json.array, 1, 5},
  {"net.connect", net.connect, 1, T},
  {"net.serve", net.serve, 1, T},
  {"net.resolve", net.resolve, 1, T},
  {"net.connect_unix", net.connect_unix, 1, T},
  {"net.serve_unix", net.serve_unix, 1, T},
  {"url.parse", url.parse, 1, T},
  {"url.join", url.join, 1, T},
  {"url.normalize", url.normalize, 1, T},
  {"url.encode", url.encode, 1, T},
  {"url.decode", url.decode, 1, T},
  {"url.query_encode", url.query_encode, 1, 5},
  {"url.query_decode", url.query_decode, 1, T},
  {"progress.bar", progress.bar, 1, 5},
  {"progress.format_bytes", progress.format_bytes, 1, T},
  {"progress.format_duration", progress.format_duration, 1, T},
}

describe("bad input", function()
  for _, c in ipairs(cases) do
    local name, fn, arg, bad = c[1], c[2], c[3], c[4]
    it(name .. " names the function and the argument", function()
      local args = {bad}
      local ok, err = pcall(fn, table.unpack(args))
      assert.is_false(ok, name .. " accepted bad input")
      assert.matches(("bad argument #%d to '%s'"):format(arg, name), tostring(err), 1, true)
    end)
  end

  it("json.encode refuses what it cannot encode, naming the function", function()
    local ok, err = pcall(json.encode, print)
    assert.is_false(ok)
    assert.matches("json.encode: cannot encode a function", tostring(err), 1, true)
  end)

  it("methods of closed objects fail clearly", function()
    local dir = fs.mkdtemp()
    local f = fs.open(dir .. "/x", "w")
    f:close()
    fs.remove(dir .. "/x")
    fs.rmdir(dir)
    assert.has_error(function() f:read() end, "file:read: attempt to use a closed file")
    assert.is_true(aio.is_error(select(2, pcall(aio.queue().get_nowait, aio.queue())), "empty"))
  end)
end)
