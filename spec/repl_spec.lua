-- The REPL on a pseudo-terminal (spec/helpers/pty_run.py plays the
-- keys), and on a pipe: line editing, history, completion, the loop
-- running while the prompt waits, Ctrl-C and Ctrl-D.
local H = require "spec.helpers.init"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local history = tmp .. "/history"

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- A history file as text (libedit writes a space as \040).
local function history_of(path)
  return (slurp(path):gsub("\\(%d%d%d)", function(o)
    return string.char(tonumber(o, 8))
  end))
end

-- Play steps (a list of "send ...", "expect ...", "sleep ..." lines) on
-- a terminal running `luaio`; returns the exit status and the transcript
-- (with the line ends the terminal made \r\n turned back into \n).
local function play(steps, env, program)
  local path = tmp .. "/steps"
  local f = assert(io.open(path, "w"))
  f:write(table.concat(steps, "\n"), "\n")
  f:close()
  local _, out = H.sh(string.format(
    "cd %s && env -u LUAIO_HISTORY TERM=xterm %s timeout 300 "
    .. "python3 spec/helpers/pty_run.py %s %s", os.getenv("PWD"),
    env or ("LUAIO_HISTORY=" .. history), path, program or H.luaio))
  out = out:gsub("\r\n", "\n")
  assert.not_matches("__expect_failed", out)
  return tonumber(out:match("__exit=(%d+)")), out
end

describe("the REPL on a terminal", function()
  before_each(function() os.remove(history) end)

  it("prints = expr and bare expressions; Ctrl-D exits 0", function()
    local rc, out = play{
      "expect > ",
      "send = 1+1\\r",
      "expect \n2\n",
      "send 'a' .. 'b', 3\\r",
      "expect ab\t3\n",
      "send for i = 1, 2 do\\r",
      "expect >> ",
      "send print('loop', i) end\\r",
      "expect loop\t2\n",
      "send \\x04",
    }
    assert.are.equal(0, rc)
    assert.matches("^luaio %d+%.%d+", out)
  end)

  it("recalls history with the Up arrow, kept in LUAIO_HISTORY", function()
    local rc = play{
      "expect > ",
      "send print('hist' .. 42)\\r",
      "expect hist42",
      "send \\x04",
    }
    assert.are.equal(0, rc)
    assert.matches("print%('hist' .. 42%)", history_of(history))
    local out
    rc, out = play{
      "expect > ",
      "send \\x1b[A\\r",
      "expect hist42",
      "send \\x04",
    }
    assert.are.equal(0, rc)
    assert.matches("hist42", out)
  end)

  it("keeps the history in $HOME/.luaio_history by default", function()
    local home = tmp .. "/home"
    os.execute("mkdir -p " .. home)
    local rc = play({
      "expect > ",
      "send x = 'in home'\\r",
      "expect > ",
      "send \\x04",
    }, "HOME=" .. home .. " LUAIO_HISTORY=")
    assert.are.equal(0, rc)
    -- LUAIO_HISTORY set but empty: no history file at all
    assert.are.equal("", history_of(home .. "/.luaio_history"))
    rc = play({"expect > ", "send x = 'in home'\\r", "expect > ",
               "send \\x04"}, "HOME=" .. home)
    assert.are.equal(0, rc)
    assert.matches("x = 'in home'", history_of(home .. "/.luaio_history"))
  end)

  it("completes globals and table fields with Tab", function()
    local rc, out = play{
      "expect > ",
      "send local aio = require 'luaio'\\r",
      "expect > ",
      "send aio.sl\\t",
      "expect eep",
      "send (0.01) print('slept')\\r",
      "expect slept",
      "send luaio = aio\\r",
      "expect > ",
      "send luaio.is_can\\t",
      "expect celled",
      "send (1)\\r",
      "expect false",
      "send stri\\t",
      "expect ng",
      "send .for\\t",
      "expect mat",
      "send ('%03d', 7)\\r",
      "expect 007",
      "send \\x04",
    }
    assert.are.equal(0, rc)
    assert.not_matches("attempt to", out)
    local h = history_of(history)
    assert.matches("aio%.sleep%(0%.01%)", h)
    assert.matches("luaio%.is_cancelled%(1%)", h)
    assert.matches("string%.format%('%%03d', 7%)", h)
  end)

  it("runs a background timer while the prompt waits", function()
    local rc = play{
      "expect > ",
      "send aio = require 'luaio'\\r",
      "expect > ",
      "send aio.spawn(function() for i = 1, 3 do aio.sleep(0.1) "
        .. "print('tick' .. i) end end) print('started')\\r",
      "expect started",
      "expect tick1",
      "expect tick2",
      "expect tick3",
      "send = 'idle again'\\r",
      "expect idle again",
      "send \\x04",
    }
    assert.are.equal(0, rc)
  end)

  it("Ctrl-C at the prompt clears the line", function()
    local rc, out = play{
      "expect > ",
      "send error('typed')",
      "expect error\\('typed'\\)",     -- echoed: the editor has read it
      "send \\x03",
      "expect > ",
      "send for i = 1, 2 do\\r",
      "expect >> ",
      "send \\x03",
      "expect > ",
      "send = 'fresh'\\r",
      "expect fresh",
      "send \\x04",
    }
    assert.are.equal(0, rc)
    assert.not_matches("stdin:1: typed", out)
    assert.not_matches("'end' expected", out)
  end)

  it("Ctrl-C during an entry cancels that entry only", function()
    local rc, out = play{
      "expect > ",
      "send aio = require 'luaio'\\r",
      "expect > ",
      "send n = 0 bg = aio.spawn(function() while true do aio.sleep(0.02) "
        .. "n = n + 1 end end)\\r",
      "expect > ",
      "send print('wait' .. 'ing') aio.sleep(30)\\r",
      "expect waiting",
      "sleep 0.2",
      "send \\x03",
      "expect (cancelled|interrupted)",  -- in the sleep, or still in print
      "expect > ",
      "send print('spin' .. 'ning') while true do end\\r",
      "expect spinning",
      "sleep 0.2",
      "send \\x03",
      "expect interrupted",
      "expect > ",
      "send m = n aio.sleep(0.2) print('bg alive', n > m, bg:status())\\r",
      "expect bg alive",
      "send \\x04",
    }
    assert.are.equal(0, rc)
    assert.matches("bg alive\ttrue\tpending", out)
  end)

  it("a second Ctrl-C stops a task of the entry that never waits",
     function()
    local rc, out = play{
      "expect > ",
      "send aio = require 'luaio'\\r",
      "expect > ",
      "send t = aio.spawn(function() print('spin' .. 'ning') "
        .. "while true do end end) t:await()\\r",
      "expect spinning",                -- printed by t: it runs, never waits
      "send \\x03",
      "expect \\^C",                    -- echoed: the signal is sent
      "delivered",                      -- not merged with the next one
      "send \\x03",
      "expect interrupted",
      "expect > ",
      "send = 'back' .. ' again'\\r",
      "expect back again",
      "send \\x04",
    }
    assert.are.equal(0, rc)
  end)

  it("Ctrl-D cancels background tasks, whose cleanup runs", function()
    local rc, out = play{
      "expect > ",
      "send aio = require 'luaio'\\r",
      "expect > ",
      "send aio.spawn(function() local _ <close> = setmetatable({}, "
        .. "{__close = function() print('cleanup ran') end}) "
        .. "aio.sleep(60) end) print('spawned')\\r",
      "expect spawned",
      "expect > ",
      "send \\x04",
      "expect cleanup ran",
    }
    assert.are.equal(0, rc)
    assert.matches("cleanup ran", out)
  end)
end)

describe("the REPL, other cases", function()
  it("a terminal on stdin only: no editing, the loop still runs", function()
    local rc, out = play({
      "expect > ",
      "send aio = require 'luaio'\\r",
      "expect > ",
      "send aio.spawn(function() aio.sleep(0.1) print('bg') end)\\r",
      "expect bg",
      "send = 1 + 1\\r",
      "expect 2",
      "send \\x04",
    }, nil, "sh -c '" .. H.luaio .. " -i | cat'")
    assert.are.equal(0, rc)
    assert.matches("bg", out)
  end)

  it("os.exit from a background task ends the REPL at the prompt",
     function()
    local rc = play{
      "expect > ",
      "send aio = require 'luaio'\\r",
      "expect > ",
      "send aio.spawn(function() aio.sleep(0.2) os.exit(5) end)\\r",
      "expect > ",
    }
    assert.are.equal(5, rc)
  end)

  it("an entry that can never be woken is reported, not hung", function()
    local rc, out = H.sh("printf 'aio = require \"luaio\"\\n"
      .. "aio.queue():get()\\nprint(\"after\")\\n' | timeout 120 "
      .. H.luaio .. " -i 2>&1")
    assert.are.equal(0, rc)
    assert.matches("deadlock.*after", out)
  end)
end)

describe("the REPL on a pipe", function()
  teardown(function() os.execute("rm -rf " .. tmp) end)
  it("runs background tasks while waiting for piped input", function()
    -- The next line goes in once "bg ran" is out (or after a minute), not
    -- after a fixed second that a slow start may use up.
    local o = tmp .. "/bg.out"
    local rc, out = H.sh("(echo 'aio = require \"luaio\"'; "
      .. "echo 'aio.spawn(function() aio.sleep(0.1) print(\"bg ran\") end)';"
      .. " i=0; until grep -q 'bg ran' " .. o .. " || [ $i -gt 6000 ]; do "
      .. "i=$((i + 1)); sleep 0.01; done; "
      .. "echo 'print(\"next line\")') | timeout 120 "
      .. H.luaio .. " -i > " .. o .. " 2>&1; rc=$?; cat " .. o .. "; exit $rc")
    assert.are.equal(0, rc)
    assert.matches("bg ran.*next line", out)
  end)

  it("reads a file on stdin, = expr too", function()
    local path = tmp .. "/input.lua"
    local f = assert(io.open(path, "w"))
    f:write("= 6 * 7\nlocal x = 5\nx + 1\n")
    f:close()
    local rc, out = H.sh("timeout 120 " .. H.luaio .. " -i < " .. path)
    assert.are.equal(0, rc)
    assert.matches("> 42\n> > 6\n", out)
  end)
end)
