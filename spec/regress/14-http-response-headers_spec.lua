-- Fuzzing found (spec/fuzz/crashes/http_headers-*): a header line that
-- starts with "HTTP/" restarted the kept header block, losing the status
-- line and the headers before it; an obs-fold continuation line became a
-- header of its own named with leading white space (or was dropped); and
-- with {stream = true} a header block cut short by the server came back
-- as a plain response, so r:chunks() raised "not a streamed response".
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"

-- A server on 127.0.0.1 answering every request with the raw bytes
-- response, then closing the connection.
local function serve (response)
  local server = net.serve("127.0.0.1", 0, function(s)
    pcall(s.readuntil, s, "\r\n\r\n")
    pcall(s.write, s, response)
    s:close()
  end)
  return server, "http://127.0.0.1:" .. server.port .. "/x"
end

local function fetch (response, opts)
  local server, url = serve(response)
  local ok, r = pcall(http.get, url, opts or {timeout = 60})
  server:close({cancel = true})
  if not ok then error(r, 0) end
  return r
end

describe("a response header starting with HTTP/ #safety", function()
  local raw = "HTTP/1.1 200 Fine\r\nX-A: 1\r\nHTTP/9: trick\r\n"
              .. "Content-Length: 2\r\n\r\nok"

  it("keeps the status line and the headers before it", function()
    local r = fetch(raw)
    assert.are.equal(200, r.status)
    assert.are.equal("Fine", r.reason)
    assert.are.equal("1", r.headers["x-a"])
    assert.are.equal("trick", r.headers["http/9"])
    assert.matches("^HTTP/1%.1 200 Fine\r\n", r.raw_headers)
    assert.are.equal("ok", r.body)
  end)

  it("keeps them in stream mode too", function()
    local r <close> = fetch(raw, {timeout = 60, stream = true})
    assert.are.equal(200, r.status)
    assert.are.equal("Fine", r.reason)
    assert.are.equal("1", r.headers["x-a"])
    local body = {}
    for chunk in r:chunks() do body[#body + 1] = chunk end
    assert.are.equal("ok", table.concat(body))
  end)

  it("keeps them when a chunked trailer starts with HTTP/", function()
    local r = fetch("HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\n"
                    .. "\r\n2\r\nok\r\n0\r\nHTTP/1.1: 500 Bad\r\n\r\n")
    assert.are.equal("Fine", r.reason)
    assert.matches("^HTTP/1%.1 200 Fine\r\n", r.raw_headers)
    assert.are.equal("ok", r.body)
  end)

  it("still keeps only the final response after a 1xx", function()
    local r = fetch("HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
                    .. "HTTP/1.1 201 Made\r\nX-B: 2\r\n"
                    .. "Content-Length: 0\r\n\r\n")
    assert.are.equal(201, r.status)
    assert.are.equal("Made", r.reason)
    assert.is_nil(r.headers["x-early"])
    assert.matches("^HTTP/1%.1 201 Made\r\n", r.raw_headers)
  end)
end)

describe("a folded (obs-fold) response header #safety", function()
  it("is joined to the header before it with a space", function()
    local r = fetch("HTTP/1.1 200 OK\r\nX-A: first\r\n  continued: yes\r\n"
                    .. "X-B: one\r\n\tmore\r\nX-B: two\r\n"
                    .. "Content-Length: 0\r\n\r\n")
    assert.are.equal("first continued: yes", r.headers["x-a"])
    assert.are.equal("one more, two", r.headers["x-b"])
    assert.are.same({{"X-A", "first continued: yes"}, {"X-B", "one more"},
                     {"X-B", "two"}, {"Content-Length", "0"}},
                    r.header_list)
    for _, h in ipairs(r.header_list) do
      assert.is_nil(h[1]:find("^%s"), "a header named " .. h[1])
    end
    -- raw_headers stays as received
    assert.matches("X-A: first\r\n  continued: yes\r\n", r.raw_headers, 1,
                   true)
  end)

  it("never names a header with white space when none comes before it",
     function()
    -- curl itself may refuse such a response: then it is a luaio error
    local ok, r = pcall(fetch, "HTTP/1.1 200 OK\r\n  stray: 1\r\n"
                        .. "X-A: a\r\nContent-Length: 0\r\n\r\n")
    if not ok then
      assert.is_true(aio.is_error(r), tostring(r))
      return
    end
    assert.are.equal("OK", r.reason)
    assert.are.equal("a", r.headers["x-a"])
    assert.are.equal(2, #r.header_list)
  end)
end)

describe("a streamed response whose headers never end #safety", function()
  it("is an error, not a plain response", function()
    local ok, e = pcall(fetch, "HTTP/1.1 200 OK\r\nX: y\r\n",
                        {timeout = 60, stream = true})
    assert.is_false(ok)
    assert.is_true(aio.is_error(e), tostring(e))
    assert.are.equal("reset", e.kind, tostring(e))
    assert.are.equal("INCOMPLETE_HEADERS", e.code)
    assert.matches("headers", tostring(e))
    assert.matches("/x", tostring(e), 1, true)
  end)

  it("is an error after a 1xx too", function()
    local ok, e = pcall(fetch, "HTTP/1.1 100 Continue\r\n\r\n",
                        {timeout = 60, stream = true})
    assert.is_false(ok)
    assert.are.equal("reset", e.kind, tostring(e))
  end)
end)
