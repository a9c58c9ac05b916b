-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.proc_run: proc.run(cmd, opts), a program run to completion on
-- top of proc.spawn: output captured up to max_output bytes per stream
-- (the rest is read and dropped, so a chatty child never blocks and
-- memory stays bounded), timeout (the wait is cancelled, which kills
-- the child, then a timeout error), check = true (a non-zero exit
-- raises with the tail of stderr).
local RUN_ONLY = {timeout = true, check = true, max_output = true}
local DEFAULT_MAX = 16 * 1024 * 1024

return function(proc)
  local aio = require "luaio"

  local function argerror(msg)
    error("bad argument #1 to 'proc.run' (" .. msg .. ")", 3)
  end

  -- Read all of stream; keep the first max bytes. Returns text, cut.
  local function capture(stream, max)
    local parts, size, cut = {}, 0, false
    while true do
      local ok, chunk = pcall(stream.read, stream)
      if not ok and aio.is_cancelled(chunk) then error(chunk, 0) end
      if not ok or chunk == nil then break end    -- closed under us: done
      if size < max then
        chunk = chunk:sub(1, max - size)
        parts[#parts + 1] = chunk
        size = size + #chunk
      else
        cut = true
      end
    end
    return table.concat(parts), cut
  end

  local function spec_of(cmd, opts)
    if type(cmd) ~= "table" then
      argerror("table expected, got " .. type(cmd))
    end
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #2 to 'proc.run' (table expected, got "
            .. type(opts) .. ")", 3)
    end
    local spec = {}
    for k, v in pairs(cmd) do spec[k] = v end
    for k, v in pairs(opts or {}) do spec[k] = v end
    local run = {}
    for k in pairs(RUN_ONLY) do run[k] = spec[k]; spec[k] = nil end
    spec.stdout = spec.stdout or "pipe"
    spec.stderr = spec.stderr or "pipe"
    if spec.input == nil then spec.stdin = spec.stdin or "null" end
    if run.max_output ~= nil and (math.type(run.max_output) ~= "integer"
                                  or run.max_output < 0) then
      argerror("max_output: integer >= 0 expected")
    end
    if run.timeout ~= nil and (type(run.timeout) ~= "number"
                               or not (run.timeout >= 0)) then
      argerror("timeout: number of seconds expected")
    end
    return spec, run
  end

  local function check_failed(res, argv0)
    local tail = (res.stderr or ""):sub(-2000):gsub("%s+$", "")
    local e = aio.error("process", ("%s exited with %s%s"):format(
      argv0, res.signal or ("status " .. tostring(res.code)),
      tail ~= "" and (": " .. tail) or ""),
      {status = res.code, signal = res.signal, result = res})
    error(e, 3)
  end

  return function(cmd, opts)
    local spec, run = spec_of(cmd, opts)
    local max = run.max_output or DEFAULT_MAX
    local p <close> = proc.spawn(spec)
    local out = p.stdout and aio.spawn(capture, p.stdout, max)
    local err = p.stderr and aio.spawn(capture, p.stderr, max)
    local ok, code, signal
    if run.timeout then
      ok, code, signal = pcall(aio.timeout, run.timeout, p.wait, p)
    else
      ok, code, signal = pcall(p.wait, p)
    end
    if not ok then
      if out then out:cancel() end
      if err then err:cancel() end
      error(code, 0)
    end
    local res = {code = code, signal = signal}
    if out then res.stdout, res.stdout_truncated = out:await() end
    if err then res.stderr, res.stderr_truncated = err:await() end
    if run.check and code ~= 0 then
      check_failed(res, tostring(spec[1]))
    end
    return res
  end
end
