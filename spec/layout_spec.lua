-- The layout rules of the C sources (README "Layout"): bindings act on
-- tasks and the host only through the operations of host/host.h; the
-- task and host structs are defined in host/private.h, which only host/
-- includes; the host reaches the bindings only through the generated
-- module table. The build enforces the first by itself (the structs are
-- opaque to bindings, and private.h refuses to compile outside host/);
-- these checks name the file and line when a rule is broken.

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- The C files under dir, sorted.
local function c_files(dir)
  local p = assert(io.popen("find " .. dir .. " -name '*.[ch]' | sort"))
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

-- "file:line: text" for every line of the files matching a pattern.
local function grep(files, patterns)
  local hits = {}
  for _, path in ipairs(files) do
    local n = 0
    for line in (read_file(path) .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      for _, pat in ipairs(patterns) do
        if line:find(pat) then
          hits[#hits + 1] = ("%s:%d: %s"):format(path, n, line)
          break
        end
      end
    end
  end
  return hits
end

local function assert_none(hits, what)
  assert(#hits == 0, what .. ":\n  " .. table.concat(hits, "\n  "))
end

-- Fields of struct luaio_task and struct luaio_host no other struct of
-- the bindings has.
local TASK_FIELDS = {"shielded", "observed", "outcome", "cancel_level",
                     "pinned", "in_live", "turn_k", "awaiters", "timers",
                     "live_ref", "ntasks", "next_turn", "main_task",
                     "ngrace", "grace_ms"}

describe("the C sources", function()
  local bindings = c_files("bindings")

  it("exist where the checks look for them", function()
    assert.truthy(#bindings > 0)
    assert.truthy(read_file("host/private.h"):find("struct luaio_task {", 1,
                                                   true))
  end)

  it("bindings never include the host's private header", function()
    assert_none(grep(bindings, {'#%s*include%s*[<"].-private%.h[>"]'}),
                "includes of host/private.h")
  end)

  it("bindings never read or write task and host fields", function()
    local pats = {"%f[%w_]T_[A-Z]+%f[^%w_]"}          -- the task states
    for _, f in ipairs(TASK_FIELDS) do
      pats[#pats + 1] = "%->%s*" .. f .. "%f[^%w_]"
    end
    assert_none(grep(bindings, pats), "task or host internals in bindings/")
  end)

  it("define the task and host structs in host/private.h only", function()
    local files = c_files("host")
    for _, f in ipairs(bindings) do files[#files + 1] = f end
    local hits = {}
    for _, h in ipairs(grep(files, {"^%s*struct luaio_task%s*{",
                                    "^%s*struct luaio_host%s*{"})) do
      if not h:find("^host/private%.h:") then hits[#hits + 1] = h end
    end
    assert_none(hits, "struct definitions outside host/private.h")
  end)

  it("bindings call no function of another module", function()
    local owner, defs = {}, {}
    local cmake = read_file("CMakeLists.txt")
    for name, files in cmake:gmatch("\nluaio_module%(([%w%.]+)([^)]*)%)") do
      for f in files:gmatch("[%w_]+%.c") do owner["bindings/" .. f] = name end
    end
    for _, path in ipairs(bindings) do       -- x.h, x_int.h: private to x.c's
      if path:find("%.h$") then
        owner[path] = owner[path:gsub("_int%.h$", ".h"):sub(1, -2) .. "c"]
      end
    end
    for _, path in ipairs(bindings) do       -- non-static definitions
      for line in read_file(path):gmatch("[^\n]+") do
        local fn = not line:find("^static") and
                   line:match("^[%w_][%w_ %*]-%f[%w_](luaio__[%w_]+)%s*%(.*%)%s*{")
        if fn then defs[fn] = path end
      end
    end
    local hits = {}
    for fn, def in pairs(defs) do
      for _, path in ipairs(bindings) do
        if owner[path] ~= owner[def] then
          for _, h in ipairs(grep({path}, {"%f[%w_]" .. fn .. "%f[^%w_]"})) do
            hits[#hits + 1] = h .. "  (" .. fn .. " is " .. def .. "'s)"
          end
        end
      end
    end
    table.sort(hits)
    assert_none(hits, "calls into another module")
  end)

  it("host/ opens no binding by name (only gen/preload.c does)", function()
    assert_none(grep(c_files("host"), {"luaopen_luaio_%w",
                                       "luaopen_luaio%s*%(%s*L%s*%)",
                                       "_register%s*%(%s*L%s*%)"}),
                "host/ calling into bindings/")
  end)
end)
