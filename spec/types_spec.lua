-- The LuaLS annotations in lua/types/ against the manual and the program:
-- every function or method README.md documents is annotated, every
-- annotated one is documented, and every function, method and field the
-- real modules and objects have is annotated (and exists). A failure
-- names each missing entry and the side it is missing on.
local aio = require "luaio"
local fs = require "luaio.fs"
local http = require "luaio.http"
local net = require "luaio.net"
local proc = require "luaio.proc"
local html = require "luaio.html"

local STUBS = "lua/types"
local MODULES = {"luaio", "luaio.fs", "luaio.http", "luaio.json", "luaio.net",
                 "luaio.url", "luaio.progress", "luaio.proc",
                 "luaio.html", "luaio.redis", "luaio.test"}
local IS_MODULE = {}
for _, m in ipairs(MODULES) do IS_MODULE[m] = true end
-- Preloaded modules that are not annotated: parts of luaio (flow, sync),
-- the http.download and http.serve implementations, the busted glue's
-- process registry and the torture.
local INTERNAL = {["luaio.flow"] = true, ["luaio.sync"] = true,
                  ["luaio.download"] = true, ["luaio.redis_kit"] = true,
                  ["luaio.serve"] = true, ["luaio.serve_static"] = true,
                  ["luaio.test_procs"] = true,
                  ["luaio.torture"] = true, ["luaio.torture_c"] = true,
                  ["luaio.proc_run"] = true}

-- How README.md names things: module prefixes, and per "## API" section
-- the receivers of methods (`t:await()`) and the lead-ins after which
-- methods are listed without a receiver ("Stream methods: `read([n])`").
-- A lead-in with `bare` lists plain names (`get`, `post`) up to the next
-- `:` or `.`.
local PREFIX = {aio = "luaio", fs = "luaio.fs", http = "luaio.http",
                json = "luaio.json", net = "luaio.net", url = "luaio.url",
                progress = "luaio.progress", proc = "luaio.proc",
                html = "luaio.html", redis = "luaio.redis",
                test = "luaio.test"}
local SECTIONS = {
  ["luaio"] = {receivers = {t = "luaio.Task"}},
  ["combinators"] = {receivers = {g = "luaio.Group"}},
  ["queues"] = {
    receivers = {q = "luaio.Queue", s = "luaio.Semaphore",
                 permit = "luaio.Permit", r = "luaio.RateLimiter",
                 f = "luaio.Future"},
    leadins = {{"An event has", "luaio.Event"},
               {"A condition has", "luaio.Condition"}}},
  ["luaio.http"] = {
    receivers = {r = "luaio.HttpResponse", srv = "luaio.HttpServer",
                 req = "luaio.HttpServerRequest",
                 res = "luaio.HttpServerResponse",
                 ws = "luaio.WebSocket"},
    leadins = {{"A response has", "luaio.HttpResponse"},
               {"Methods:", "luaio.HttpClient", bare = true}}},
  ["luaio.json"] = {},
  ["luaio.url"] = {},
  ["luaio.progress"] = {receivers = {bar = "luaio.ProgressBar"}},
  ["luaio.redis"] = {
    receivers = {r = "luaio.RedisConnection", sub = "luaio.RedisSubscription",
                 q = "luaio.RedisQueue", s = "luaio.RedisSet",
                 lim = "luaio.RedisRateLimiter"}},
  ["luaio.net"] = {
    receivers = {server = "luaio.Server"},
    leadins = {{"a UDP socket:", "luaio.Udp"},
               {"Stream methods:", "luaio.Stream"}}},
  ["signals"] = {receivers = {w = "luaio.Signal", pool = "luaio.WorkerPool"}},
  ["luaio.proc"] = {receivers = {p = "luaio.Process"}},
  ["luaio.html"] = {
    receivers = {doc = "luaio.html.Document", node = "luaio.html.Node",
                 p = "luaio.html.Parser"}},
  ["luaio.test"] = {},
  ["luaio.fs"] = {
    receivers = {w = "luaio.Watcher"},
    leadins = {{"File methods:", "luaio.File"}}},
}

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function sorted(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- Names in `have` but not in any of the sets in `...`, sorted.
local function missing(have, ...)
  local others, out = {...}, {}
  for _, name in ipairs(sorted(have)) do
    local found = false
    for _, set in ipairs(others) do found = found or set[name] ~= nil end
    if not found then out[#out + 1] = name end
  end
  return out
end

local function assert_none(list, what)
  assert(#list == 0, ("%s:\n  %s"):format(what, table.concat(list, "\n  ")))
end

-- ---- the stubs ------------------------------------------------------------

-- Reads every lua/types/*.lua. Returns funcs (canonical name -> file:line:
-- "luaio.fs.read" for module functions, "luaio.File:read" for methods),
-- async (canonical name -> whether ---@async precedes it), fields
-- ("luaio.json.null", "luaio.HttpResponse.status"), classes (name -> true)
-- and problems (misdeclarations).
local function parse_stubs()
  local stubs = {funcs = {}, async = {}, fields = {}, classes = {},
                 problems = {}}
  local files = fs.readdir(STUBS)
  table.sort(files)
  for _, name in ipairs(files) do
    if name:match("%.lua$") then
      local path = STUBS .. "/" .. name
      local vars, class, async, n = {}, nil, false, 0
      for line in io.lines(path) do
        n = n + 1
        local where = ("%s:%d"):format(path, n)
        local c = line:match("^%-%-%-@class%s+([%w_.]+)")
        local field = line:match("^%-%-%-@field%s+([%a_][%w_]*)")
        local var = line:match("^local%s+([%a_][%w_]*)%s*=%s*{}")
        local v, sep, fname = line:match(
          "^function%s+([%a_][%w_]*)([.:])([%a_][%w_]*)%s*%(")
        if c then
          class = c
          stubs.classes[c] = true
        elseif field and class then
          stubs.fields[class .. "." .. field] = where
        elseif line:match("^%-%-%-@async") then
          async = true
        elseif var and class then
          vars[var] = class
        elseif v then
          local owner = vars[v]
          if not owner then
            table.insert(stubs.problems, ("%s: function on '%s', which is "
              .. "not a local declared after a ---@class"):format(where, v))
          else
            local want = IS_MODULE[owner] and "." or ":"
            if sep ~= want then
              table.insert(stubs.problems, ("%s: %s%s%s should be declared "
                .. "with '%s'"):format(where, v, sep, fname, want))
            end
            stubs.funcs[owner .. want .. fname] = where
            stubs.async[owner .. want .. fname] = async
          end
        end
        if not line:match("^%-%-%-") then class, async = nil, false end
      end
    end
  end
  return stubs
end

-- ---- the manual -------------------------------------------------------------

local function blank_spans(text)
  return (text:gsub("`[^`]*`", function(s) return ("x"):rep(#s) end))
end

-- The canonical names documented in one README unit (a paragraph, a
-- heading or a table row) of the section described by sec.
local function unit_names(unit, sec, key, out, problems)
  local contexts = {}
  for _, l in ipairs(sec.leadins or {}) do
    local init = 1
    while true do
      local s, e = unit:find(l[1], init, true)
      if not s then break end
      local stop = #unit
      if l.bare then
        stop = blank_spans(unit):find("[:.]", e + 1) or #unit
      end
      contexts[#contexts + 1] = {from = e, to = stop, class = l[2],
                                 bare = l.bare}
      init = e + 1
    end
  end
  table.sort(contexts, function(a, b) return a.from < b.from end)
  for pos, span in unit:gmatch("()`([^`]*)`") do
    local ctx
    for _, c in ipairs(contexts) do
      if c.from < pos and pos <= c.to then ctx = c end
    end
    for p, name in span:gmatch("%f[%w_](%a+)%.([%a_][%w_]*)") do
      if PREFIX[p] then out[PREFIX[p] .. "." .. name] = key end
    end
    for s, recv, name, e in span:gmatch("()([%a_][%w_]*):([%a_][%w_]*)()") do
      local before = s > 1 and span:sub(s - 1, s - 1) or ""
      if span:sub(e, e) == "(" and not before:match("[%w_.:]") then
        local class = (sec.receivers or {})[recv]
        if class then out[class .. ":" .. name] = key
        else
          table.insert(problems, ("README.md, %s: unknown receiver in `%s` "
            .. "(add it to SECTIONS in spec/types_spec.lua)")
            :format(key, span))
        end
      end
    end
    if ctx and not ctx.bare then
      local name = span:match("^([%a_][%w_]*)%(")
      if name then out[ctx.class .. ":" .. name] = key end
    elseif ctx and ctx.bare then
      local name = span:match("^([%a_][%w_]*)$")
      if name then out[ctx.class .. ":" .. name] = key end
    end
  end
end

-- Reads the "## API: ..." sections of README.md, code blocks included
-- (only the module functions they call). Returns names (canonical name
-- -> section) and problems.
local function parse_readme()
  local text = read_file("README.md")
  local names, problems = {}, {}
  local sec, key
  local unit = {}
  local function flush()
    if sec and #unit > 0 then
      unit_names(table.concat(unit, "\n"), sec, key, names, problems)
    end
    unit = {}
  end
  local fence
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local h2 = line:match("^## (.*)")
    if fence then
      if line:match("^```%s*$") then fence = nil
      elseif sec and fence ~= "c" then   -- code: module functions only
        for p, name in line:gmatch("%f[%w_](%a+)%.([%a_][%w_]*)") do
          if PREFIX[p] then names[PREFIX[p] .. "." .. name] = key end
        end
      end
    elseif line:match("^```") then
      flush()
      fence = line:match("^```(%w*)")
    elseif h2 then
      flush()
      local api = h2:match("^API: (.*)")
      if api then
        key = api:match("^`([^`]+)`") or api:match("^(%w+)")
        sec = SECTIONS[key]
        if not sec then
          table.insert(problems, ("README.md: section '## %s' is not "
            .. "known to spec/types_spec.lua (add it to SECTIONS)")
            :format(h2))
        end
      else
        sec, key = nil, nil
      end
    elseif line:match("^#") or line:match("^|") then
      flush()
      unit[1] = line
      flush()
    elseif line:match("^%s*$") then
      flush()
    else
      unit[#unit + 1] = line
    end
  end
  flush()
  return names, problems
end

-- ---- the program ------------------------------------------------------------

-- The methods table behind an object's __index: the table itself, or the
-- table a C closure __index keeps as an upvalue (responses). nil when
-- __index is a plain function (servers) or absent.
local function methods_of(mt)
  local idx = mt and rawget(mt, "__index")
  if type(idx) == "table" then return idx end
  if type(idx) == "function" then
    for i = 1, 16 do
      local n, v = debug.getupvalue(idx, i)
      if n == nil then break end
      if type(v) == "table" then return v end
    end
  end
end

-- A minimal HTTP server on 127.0.0.1: answers every request with "ok";
-- a connection closed before its request ends quietly.
local function http_server()
  return net.serve("127.0.0.1", 0, function(s)
    local line
    repeat line = s:readline() until line == nil or line == ""
    if line == "" then
      s:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
              .. "Connection: close\r\n\r\nok")
    end
    s:close()
  end)
end

-- One live object of every class, by its metatable's __name, plus the
-- things to close afterwards.
local function make_objects(dir)
  local objs, closers = {}, {}
  local function add(o)
    local mt = getmetatable(o)
    objs[assert(mt and mt.__name, "an object without __name")] = o
    return o
  end
  add(aio.spawn(function() end))
  add(aio.error("io", "an error"))
  aio.group(function(g) add(g) end)
  add(aio.queue())
  local sem = add(aio.semaphore(1))
  local permit = add(sem:acquire())
  permit:release()
  add(aio.event())
  add(aio.condition())
  add(aio.rate_limiter(1))
  add(aio.future())
  closers[#closers + 1] = add(require("luaio.progress").bar{quiet = true})
  fs.write(dir .. "/f.txt", "x")
  closers[#closers + 1] = add(fs.open(dir .. "/f.txt"))
  closers[#closers + 1] = add(fs.watch(dir))
  closers[#closers + 1] = add(http.client())
  local server = add(http_server())
  add(http.get(("http://127.0.0.1:%d/"):format(server.port),
               {timeout = 10}))
  closers[#closers + 1] = add(net.connect("127.0.0.1", server.port,
                                          {timeout = 10}))
  closers[#closers + 1] = add(net.udp())
  closers[#closers + 1] = add(aio.signal("SIGUSR2"))
  closers[#closers + 1] = add(aio.worker_pool{size = 1})
  closers[#closers + 1] = add(proc.spawn{"true"})
  local doc = add(html.parse("<p>x</p>"))
  add(doc:select_one("p"))
  add(html.parser())
  add(html.selector("p"))
  local redis = require "luaio.redis"
  local rsrv = require("spec.helpers.redis").start()
  local rc = add(redis.connect(rsrv.url))
  closers[#closers + 1] = add(rc:subscribe("types"))
  add(redis.queue(rc, "q"))
  add(redis.set(rc, "s"))
  add(redis.rate_limiter(rc, "l", 1, 1))
  closers[#closers + 1] = rc
  closers[#closers + 1] = {close = function() rsrv:stop() end}
  local hsrv = add(http.serve{handler = function(req, res)
    add(req)
    add(res)
    if req.path == "/ws" then add(req:websocket()):receive() end
    return "ok"
  end})
  http.get(("http://127.0.0.1:%d/"):format(hsrv.port), {timeout = 10})
  local wsc = net.connect("127.0.0.1", hsrv.port, {timeout = 10})
  wsc:write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    .. "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
  wsc:readline()
  closers[#closers + 1] = wsc
  closers[#closers + 1] = hsrv
  closers[#closers + 1] = {close = function()   -- last: waits for handlers
    server:close({wait = true})
  end}
  return objs, closers
end

-- ---- the specs --------------------------------------------------------------

describe("LuaLS annotations (lua/types)", function()
  local stubs, documented, readme_problems

  setup(function()
    stubs = parse_stubs()
    documented, readme_problems = parse_readme()
  end)

  it("are not compiled into the program (lua/*.lua is, not recursively)",
    function()
      local cmake = read_file("CMakeLists.txt")
      assert.truthy(cmake:find("GLOB LUAIO_LUA CONFIGURE_DEPENDS "
                               .. "${CMAKE_SOURCE_DIR}/lua/*.lua", 1, true))
      assert.is_nil(cmake:find("GLOB_RECURSE LUAIO_LUA", 1, true))
    end)

  it("are one file per module, named as LuaLS resolves require", function()
    local problems = {}
    for _, m in ipairs(MODULES) do
      local ok, text = pcall(read_file, STUBS .. "/" .. m .. ".lua")
      if not ok then
        problems[#problems + 1] = m .. ": no " .. STUBS .. "/" .. m .. ".lua"
      else
        if not text:find("^%-%-%-@meta " .. m:gsub("%.", "%%.") .. "\n") then
          problems[#problems + 1] = m .. ": first line is not ---@meta " .. m
        end
        if not stubs.classes[m] then
          problems[#problems + 1] = m .. ": no ---@class " .. m
        end
        if not text:find("\nreturn [%a_][%w_]*%s*$") then
          problems[#problems + 1] = m .. ": does not end with a return"
        end
      end
    end
    assert_none(problems, "stub files")
  end)

  it("load as Lua and declare methods consistently", function()
    for _, name in ipairs(fs.readdir(STUBS)) do
      if name:match("%.lua$") then
        assert(loadfile(STUBS .. "/" .. name))
      end
    end
    assert_none(stubs.problems, "misdeclared in lua/types")
  end)

  it("read the README's API sections", function()
    assert_none(readme_problems, "README.md could not be read fully")
    -- a sample from each way the manual names things
    for _, name in ipairs{"luaio.spawn", "luaio.Task:await",
        "luaio.Queue:put", "luaio.Event:set", "luaio.Condition:notify_all",
        "luaio.HttpClient:request", "luaio.HttpResponse:chunks",
        "luaio.Stream:set_max_line", "luaio.Udp:recv", "luaio.File:lines",
        "luaio.Watcher:events", "luaio.json.array", "luaio.net.serve_unix",
        "luaio.fs.mkdtemp", "luaio.http.download", "luaio.Server:close",
        "luaio.Permit:release", "luaio.Group:spawn", "luaio.error"} do
      assert(documented[name], "the spec did not find " .. name
             .. " in README.md")
    end
  end)

  it("cover every function and method README.md documents", function()
    assert_none(missing(documented, stubs.funcs, stubs.fields),
      "documented in README.md but not annotated in lua/types")
  end)

  it("document nothing README.md does not", function()
    assert_none(missing(stubs.funcs, documented),
      "annotated in lua/types but not documented in README.md")
  end)

  it("cover every function and field of the real modules", function()
    local real, problems = {}, {}
    for _, m in ipairs(MODULES) do
      for k, v in pairs(require(m)) do
        real[m .. "." .. k] = true
        if type(k) == "string" and k:sub(1, 1) == "_" then
          -- internal (aio._test: the test runner's hooks), not API
        elseif type(v) == "function" and not stubs.funcs[m .. "." .. k] then
          problems[#problems + 1] = m .. "." .. k .. " (function)"
        elseif type(v) ~= "function" and not stubs.fields[m .. "." .. k] then
          problems[#problems + 1] = m .. "." .. k .. " (field, "
                                    .. type(v) .. ")"
        end
      end
    end
    assert_none(problems, "in the program but not annotated in lua/types")
    -- and the other way: nothing annotated that the modules lack
    local stale = {}
    for name in pairs(stubs.funcs) do
      local m = name:match("^(.*)%.[%a_][%w_]*$")
      if m and IS_MODULE[m] and not real[name] then stale[#stale + 1] = name end
    end
    for name in pairs(stubs.fields) do
      local m = name:match("^(.*)%.[%a_][%w_]*$")
      if IS_MODULE[m] and not real[name] then stale[#stale + 1] = name end
    end
    table.sort(stale)
    assert_none(stale, "annotated in lua/types but not in the program")
  end)

  it("cover every module the program preloads", function()
    local problems = {}
    for name in pairs(package.preload) do
      if name:match("^luaio") and not IS_MODULE[name]
         and not INTERNAL[name] then
        problems[#problems + 1] = name
      end
    end
    for _, m in ipairs(MODULES) do
      if not package.preload[m] then
        problems[#problems + 1] = m .. " (not preloaded)"
      end
    end
    table.sort(problems)
    assert_none(problems, "modules missing from MODULES or INTERNAL in "
                .. "spec/types_spec.lua")
  end)

  it("include luaio.flow and luaio.sync, whose functions luaio has",
    function()
      local problems = {}
      for _, m in ipairs{"luaio.flow", "luaio.sync"} do
        for k, v in pairs(require(m)) do
          if aio[k] ~= v then problems[#problems + 1] = m .. "." .. k end
        end
      end
      assert_none(problems, "not the same function in luaio")
    end)

  it("cover every method of every class, and only real ones", function()
    local tasks_before = #aio.tasks()
    local dir = fs.mkdtemp()
    local objs, closers = make_objects(dir)
    local unannotated, stale, classes = {}, {}, {}
    -- every metatable luaio registered, now that each class was used
    for name, mt in pairs(debug.getregistry()) do
      if type(name) == "string" and name:match("^luaio%.")
         and not name:match("^luaio%.Test")    -- the test runner's own
         and type(mt) == "table" and rawget(mt, "__name") == name then
        classes[name] = true
        for k, v in pairs(methods_of(mt) or {}) do
          if type(v) == "function" and not stubs.funcs[name .. ":" .. k] then
            unannotated[#unannotated + 1] = name .. ":" .. k
          end
        end
      end
    end
    -- every annotated method exists on a live object of its class
    for name in pairs(stubs.funcs) do
      local class, method = name:match("^(.*):([%a_][%w_]*)$")
      if class then
        local obj = objs[class]
        if not classes[class] then
          stale[#stale + 1] = name .. " (no class " .. class .. ")"
        elseif obj == nil then
          stale[#stale + 1] = name .. " (the spec made no " .. class .. ")"
        elseif type(obj[method]) ~= "function" then
          stale[#stale + 1] = name
        end
      end
    end
    -- every annotated field of an object (not an option table) is there
    -- where the object always has it
    for _, name in ipairs{"luaio.HttpResponse.status",
        "luaio.HttpResponse.headers", "luaio.HttpResponse.reason",
        "luaio.Server.port", "luaio.Server.connections",
        "luaio.Task.name", "luaio.Error.kind", "luaio.html.Node.tag"} do
      local class, field = name:match("^(.*)%.([%a_][%w_]*)$")
      assert(stubs.fields[name], name .. " is not annotated")
      assert(objs[class][field] ~= nil, name .. " is not there")
    end
    for _, c in ipairs(closers) do c:close() end
    os.execute("rm -rf '" .. dir .. "'")
    collectgarbage()
    assert.are.equal(tasks_before, #aio.tasks(), "tasks left running")
    table.sort(unannotated)
    table.sort(stale)
    assert_none(unannotated, "methods in the program but not annotated "
                .. "in lua/types")
    assert_none(stale, "methods annotated in lua/types but not in the "
                .. "program")
  end)

  it("mark what waits with ---@async, and only that", function()
    -- spot checks of each sort of call (the README says which wait)
    local async = stubs.async
    for _, name in ipairs{"luaio.sleep", "luaio.gather", "luaio.group",
        "luaio.Task:await", "luaio.Queue:get", "luaio.Semaphore:acquire",
        "luaio.Condition:wait", "luaio.fs.read", "luaio.fs.open",
        "luaio.File:read_line", "luaio.http.get", "luaio.http.download",
        "luaio.HttpClient:request", "luaio.net.connect",
        "luaio.Stream:readline", "luaio.Stream:close", "luaio.Udp:recv",
        "luaio.Server:close", "luaio.Watcher:next"} do
      assert.is_true(async[name], name .. " waits: it needs ---@async")
    end
    for _, name in ipairs{"luaio.spawn", "luaio.run", "luaio.now",
        "luaio.Task:cancel", "luaio.Queue:put_nowait", "luaio.fs.tmpdir",
        "luaio.fs.watch", "luaio.File:seek", "luaio.File:lines",
        "luaio.http.client", "luaio.net.serve", "luaio.Stream:lines",
        "luaio.json.encode", "luaio.HttpResponse:chunks"} do
      assert.is_false(async[name], name .. " does not wait: no ---@async")
    end
  end)
end)
