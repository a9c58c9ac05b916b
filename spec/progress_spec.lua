local aio = require "luaio"
local progress = require "luaio.progress"
local helpers = require "spec.helpers"

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "no error")
  return tostring(e)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- Run fn(stream) with a bar stream on a temp file; returns what was
-- written to it.
local function capture(fn)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  fn(f)
  f:close()
  local text = read_file(path)
  os.remove(path)
  return text
end

-- Lines of text, without their newlines; fails on a missing last one.
local function lines(text)
  assert.are.equal("\n", text:sub(-1), "no newline at the end: " .. text)
  local out = {}
  for l in text:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

local function active_handles()
  return (aio._test.handles())
end

after_each(function()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end)

describe("progress.format_bytes", function()
  it("humanises sizes in binary units", function()
    local cases = {
      {0, "0 B"}, {1, "1 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"},
      {1536, "1.5 KiB"}, {1048575, "1.0 MiB"}, {1048576, "1.0 MiB"},
      {10 * 1024 ^ 2, "10.0 MiB"}, {1.5 * 1024 ^ 3, "1.5 GiB"},
      {1024 ^ 4, "1.0 TiB"}, {1024 ^ 5, "1.0 PiB"}, {2 ^ 62, "4.0 EiB"},
      {512.4, "512 B"}, {100 * 1024 + 512, "100.5 KiB"},
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], progress.format_bytes(c[1]), tostring(c[1]))
    end
  end)

  it("rejects what is not a size", function()
    assert.matches("bad argument #1 to 'progress.format_bytes' %(must be "
                   .. ">= 0%)", err_of(progress.format_bytes, -1))
    assert.matches("must be >= 0", err_of(progress.format_bytes, 0 / 0))
    assert.matches("number expected, got table",
                   err_of(progress.format_bytes, {}))
  end)
end)

describe("progress.format_duration", function()
  it("writes m:ss, or h:mm:ss from an hour", function()
    local cases = {
      {0, "0:00"}, {5.9, "0:05"}, {59, "0:59"}, {65, "1:05"},
      {3599, "59:59"}, {3600, "1:00:00"}, {3723, "1:02:03"},
      {360000, "100:00:00"}, {math.huge, "--:--"},
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], progress.format_duration(c[1]), tostring(c[1]))
    end
  end)

  it("rejects what is not a duration", function()
    assert.matches("bad argument #1 to 'progress.format_duration' %(must "
                   .. "be >= 0%)", err_of(progress.format_duration, -5))
    assert.matches("bad argument #1 to 'progress.format_duration' %(number "
                   .. "expected, got no value%)",
                   err_of(progress.format_duration))
  end)
end)

-- Summaries' durations (and rates) are matched as any value: a loaded
-- machine can stall a test past a second, even a bar closed at once.
describe("progress.bar, not on a terminal", function()
  it("writes only a summary line by default, in this exact format",
     function()
    local text = capture(function(f)
      local bar = progress.bar{total = 3, label = "pages", unit = "pages",
                               stream = f}
      for _ = 1, 3 do bar:advance() end
      bar:close()
    end)
    assert.matches("^pages: 3/3 pages %(100%%%) in %d+:%d%d, "
                   .. "%d+%.%d pages/s\n$",
                   text)
  end)

  it("humanises bytes with unit B, and does without total and label",
     function()
    local text = capture(function(f)
      local b = progress.bar{total = 3 * 1024 * 1024, label = "dl",
                             unit = "B", stream = f}
      b:advance(1536 * 1024)
      b:close()
      local c = progress.bar{stream = f}
      c:advance(5)
      c:close()
    end)
    local l = lines(text)
    assert.are.equal(2, #l)
    assert.matches("^dl: 1%.5 MiB/3%.0 MiB %(50%%%) in %d+:%d%d, "
                   .. "%d+%.%d [KMGT]?i?B/s$", l[1])
    assert.matches("^5 in %d+:%d%d, %d+%.%d/s$", l[2])
  end)

  it("writes a plain line at each interval while the count moves",
     function()
    local text = capture(function(f)
      local bar <close> = progress.bar{total = 20, label = "job",
                                       stream = f, interval = 0.05}
      for _ = 1, 20 do
        aio.sleep(0.02)
        bar:advance()
      end
    end)
    local l = lines(text)
    assert.is_true(#l >= 3, text)
    for i = 1, #l - 1 do
      assert.matches("^job: %d+/20 %(%d+%%%), %d+%.%d/s, ETA %d+:%d%d$", l[i])
    end
    assert.matches("^job: 20/20 %(100%%%) in %d+:%d%d, %d+%.%d/s$", l[#l])
    assert.is_nil(text:find("[\r\27]"), "a control character in a log")
  end)

  it("writes nothing with summary = false, and nothing at all quiet",
     function()
    assert.are.equal("", capture(function(f)
      local bar <close> = progress.bar{total = 2, stream = f,
                                       summary = false}
      bar:advance(2)
    end))
    assert.are.equal("note\n", capture(function(f)
      local bar <close> = progress.bar{total = 2, stream = f, quiet = true}
      bar:advance(2)
      bar:log("note")
    end))
  end)

  it("logs above the summary, and keeps several bars apart", function()
    local l = lines(capture(function(f)
      local a <close> = progress.bar{label = "a", total = 1, stream = f}
      local b <close> = progress.bar{label = "b", total = 2, stream = f}
      a:advance()
      b:log("hello")
      b:set_total(4)
      b:advance(4)
    end))
    assert.are.equal(3, #l)
    assert.are.equal("hello", l[1])
    assert.matches("^b: 4/4 %(100%%%) in", l[2])      -- closed first
    assert.matches("^a: 1/1 %(100%%%) in", l[3])
  end)

  it("draws the summary on <close>, on close and when collected",
     function()
    local before = active_handles()
    local text = capture(function(f)
      do
        local bar <close> = progress.bar{label = "scoped", stream = f}
        assert.are.equal(before + 1, active_handles(), "its timer")
      end
      local bar = progress.bar{label = "collected", stream = f}
      bar:advance()
      bar = nil   -- luacheck: ignore
      collectgarbage()
      collectgarbage()
    end)
    assert.matches("^scoped: 0 in %d+:%d%d, 0%.0/s\ncollected: 1 in", text)
    assert.are.equal(before, active_handles(), "the timer is left running")
  end)

  it("writes to stderr by default (a child's stderr in a file)", function()
    local path = os.tmpname()
    local script = helpers.script([[
      local progress = require "luaio.progress"
      local bar <close> = progress.bar{total = 2, label = "x", unit = "pages"}
      bar:advance(2)
      print("out")
    ]])
    local rc, out = helpers.sh(("%s %s 2>%s"):format(helpers.luaio, script,
                                                       path))
    local err = read_file(path)
    os.remove(path)
    os.remove(script)
    assert.are.equal(0, rc, out .. err)
    assert.are.equal("out\n", out)
    assert.matches("^x: 2/2 pages %(100%%%) in %d+:%d%d, "
                   .. "%d+%.%d pages/s\n$", err)
  end)

  it("keeps the loop alive for no bar", function()
    local rc, out = helpers.run_luaio([[
      local progress = require "luaio.progress"
      BAR = progress.bar{total = 10, quiet = false}
      print("end")
    ]])
    assert.are.equal(0, rc, out)
    assert.matches("end\n0/10 %(0%%%) in %d+:%d%d, 0%.0/s", out)
  end)
end)

describe("progress.bar on a terminal", function()
  it("redraws in place at most 10 times a second, final frames on close",
     function()
    local script = helpers.script([[
      local aio = require "luaio"
      local progress = require "luaio.progress"
      local t0 = aio.now()
      do
        local a <close> = progress.bar{total = 40, label = "pages",
                                       unit = "pages"}
        local b <close> = progress.bar{total = 4 * 1024 * 1024,
                                       label = "bytes", unit = "B"}
        for i = 1, 40 do
          aio.sleep(0.01)
          a:advance()
          b:advance(100 * 1024)
          if i == 20 then a:log("halfway") end
        end
      end
      print(("elapsed %.3f"):format(aio.now() - t0))
    ]])
    local steps = helpers.script("expect elapsed [0-9.]+\n")
    local rc, out = helpers.sh(("python3 spec/helpers/pty_run.py %s %s %s")
                               :format(steps, helpers.luaio, script))
    os.remove(script)
    os.remove(steps)
    assert.are.equal(0, rc, out)
    assert.matches("__exit=0", out)
    local elapsed = tonumber(out:match("elapsed ([%d.]+)"))
    local _, frames = out:gsub("\27%[J", "")
    assert.is_true(frames >= 2, out)
    -- at most one redraw a tick, plus the log and the two closes
    assert.is_true(frames <= elapsed * 10 + 6,
                   ("%d frames in %.2f s"):format(frames, elapsed))
    assert.truthy(out:find("\27[1A", 1, true), "two bars: one line up")
    assert.truthy(out:find("\rhalfway", 1, true) or out:find("halfway"))
    assert.matches("bytes %[###################%-%]  97%% 3%.9 MiB/4%.0 MiB"
                   .. "  [%d.]+ [KM]iB/s  in %d+:%d%d", out)
    assert.matches("pages %[####################%] 100%% 40/40 pages  "
                   .. "[%d.]+ pages/s  in %d+:%d%d", out)
  end)
end)

describe("progress.bar bad input", function()
  local function bar_err(opts)
    return err_of(progress.bar, opts)
  end

  it("names the option that is wrong", function()
    assert.matches("bad argument #1 to 'progress.bar' %(table expected, "
                   .. "got string%)", bar_err("x"))
    assert.matches("%(option 'total' must be >= 0, got %-1%)",
                   bar_err{total = -1})
    assert.matches("option 'total' must be an integer, got string",
                   bar_err{total = "10"})
    assert.matches("option 'total' must be an integer, got number",
                   bar_err{total = 1.5})
    assert.matches("option 'label' must be a string, got number",
                   bar_err{label = 5})
    assert.matches("option 'label' must be one line", bar_err{label = "a\nb"})
    assert.matches("option 'unit' must be one line", bar_err{unit = "a\0"})
    assert.matches("option 'stream' must be a file, got string",
                   bar_err{stream = "stderr"})
    local f = io.tmpfile()
    f:close()
    assert.matches("option 'stream' is a closed file", bar_err{stream = f})
    assert.matches("option 'interval' must be > 0 seconds",
                   bar_err{interval = 0})
    assert.matches("option 'quiet' must be a boolean, got number",
                   bar_err{quiet = 1})
    assert.matches("unknown option 'totl'", bar_err{totl = 5})
  end)

  it("checks the methods' arguments, and refuses a closed bar", function()
    local bar = progress.bar{quiet = true}
    assert.matches("bad argument #2 to 'bar:advance' %(n must be >= 0, got "
                   .. "%-1%)", err_of(bar.advance, bar, -1))
    assert.matches("bad argument #2 to 'bar:advance' %(integer expected",
                   err_of(bar.advance, bar, "x"))
    assert.matches("bad argument #2 to 'bar:set_total' %(total must be >= 0",
                   err_of(bar.set_total, bar, -5))
    assert.matches("bad argument #2 to 'bar:log' %(string expected",
                   err_of(bar.log, bar))
    assert.matches("luaio.ProgressBar expected", err_of(bar.advance, {}))
    bar:close()
    bar:close()                         -- twice is fine
    assert.matches("bar:advance: the progress bar is closed",
                   err_of(bar.advance, bar))
  end)
end)
