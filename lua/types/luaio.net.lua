---@meta luaio.net
-- LuaLS annotations for `require "luaio.net"` (see lua/types/luaio.lua).
-- The file name's dots map to the module name, as LuaLS resolves require.

---@class luaio.net.ConnectOptions
---@field timeout? number connect timeout in seconds (30)

---@class luaio.net.ServeOptions
---@field backlog? integer the listen backlog (511)

---@class luaio.net.CloseOptions
---@field cancel? boolean cancel the open connections and wait for them
---@field wait? boolean wait for the open connections to finish

---A TCP or Unix stream; closes on `<close>` and collection. It buffers
---what it reads: a read served from the buffer does not wait. EOF is nil
---from `read`, `readline` and `lines`.
---@class luaio.Stream
local Stream = {}

---Up to `n` bytes (default 65536) as they come; nil at EOF.
---@async
---@param n? integer > 0
---@return string?
function Stream:read(n) end

---Exactly `n` bytes; an error of kind `"eof"` (with `partial`) if the
---stream ends first.
---@async
---@param n integer
---@return string
function Stream:readexactly(n) end

---The next line without `\n` or `\r\n`; nil at EOF. A line longer than
---`set_max_line` (64 KiB) is an error of kind `"limit"`.
---@async
---@return string?
function Stream:readline() end

---The data up to and including `sep`; kind `"eof"` (with `partial`) if
---the stream ends first.
---@async
---@param sep string
---@return string
function Stream:readuntil(sep) end

---Everything until EOF.
---@async
---@return string
function Stream:read_all() end

---An iterator over the lines, for a generic `for`.
---@return async fun(s: luaio.Stream): string?
---@return luaio.Stream
function Stream:lines() end

---Queues `data` at once; waits while more than 64 KiB is queued. A peer
---that has gone gives an `EPIPE` error.
---@async
---@param data string
function Stream:write(data) end

---Waits until everything written has gone out.
---@async
function Stream:drain() end

---Flushes what is queued, then closes; closing twice is fine.
---@async
function Stream:close() end

---Half-closes after the queued data is sent (the peer reads EOF).
---@async
function Stream:shutdown() end

---Sets TCP_NODELAY (TCP only).
---@param on boolean
function Stream:setnodelay(on) end

---Sets TCP keep-alive (TCP only).
---@param on boolean
---@param delay? integer seconds before the first probe (60)
function Stream:keepalive(on, delay) end

---The longest line `readline` and `lines` accept (64 KiB by default).
---@param n integer > 0
function Stream:set_max_line(n) end

---The peer's address (nothing for Unix sockets).
---@return string host
---@return integer port
function Stream:peername() end

---The local address (nothing for Unix sockets).
---@return string host
---@return integer port
function Stream:sockname() end

---A listening server from `net.serve` or `net.serve_unix`.
---@class luaio.Server
---@field port integer the port listened on (TCP)
---@field address string the address listened on (TCP)
---@field connections integer the open connections
local Server = {}

---Stops accepting. With `cancel`, cancels the open connections and waits
---for them; with `wait`, waits for them.
---@async
---@param opts? luaio.net.CloseOptions
function Server:close(opts) end

---A UDP socket from `net.udp()`.
---@class luaio.Udp
local Udp = {}

---@param host string
---@param port integer
function Udp:bind(host, port) end

---Sends one datagram at once (datagrams are not queued).
---@param data string
---@param host string
---@param port integer
function Udp:send(data, host, port) end

---Waits for a datagram.
---@async
---@return string data
---@return string host
---@return integer port
function Udp:recv() end

---@return string host
---@return integer port
function Udp:sockname() end

function Udp:close() end

---TCP streams, servers, DNS and UDP. I/O errors name the operation and
---the address: `connect '127.0.0.1:1': ECONNREFUSED (connection refused)`.
---@class luaio.net
local net = {}

---Resolves `host` and tries each address in turn; returns a stream.
---@async
---@param host string
---@param port integer
---@param opts? luaio.net.ConnectOptions
---@return luaio.Stream
function net.connect(host, port, opts) end

---Listens on `host` (an IP or `"localhost"`; port 0 picks one:
---`server.port`) and runs `handler(stream)` in its own task per
---connection; a handler error is reported and the server keeps serving.
---@param host string
---@param port integer
---@param handler async fun(stream: luaio.Stream)
---@param opts? luaio.net.ServeOptions
---@return luaio.Server
function net.serve(host, port, handler, opts) end

---Like `net.connect`, over a Unix socket.
---@async
---@param path string
---@param opts? luaio.net.ConnectOptions
---@return luaio.Stream
function net.connect_unix(path, opts) end

---Like `net.serve`, over a Unix socket.
---@param path string
---@param handler async fun(stream: luaio.Stream)
---@param opts? luaio.net.ServeOptions
---@return luaio.Server
function net.serve_unix(path, handler, opts) end

---The IP addresses of `host`.
---@async
---@param host string
---@return string[]
function net.resolve(host) end

---A UDP socket.
---@return luaio.Udp
function net.udp() end

return net
