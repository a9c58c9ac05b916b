---@meta luaio.http
-- LuaLS annotations for `require "luaio.http"` (see lua/types/luaio.lua).
-- The file name's dots map to the module name, as LuaLS resolves require.

---A file part of a multipart body.
---@class luaio.http.MultipartFile
---@field path string the file to send
---@field filename? string the name announced to the server
---@field type? string its Content-Type

---Options of one request (also the defaults of a client's settings).
---Header names and values holding CR, LF or NUL are argument errors; an
---empty value is sent as `Name:`. Secret headers (Authorization,
---Proxy-Authorization, Cookie, X-Api-Key, X-Auth-Token and
---`sensitive_headers`) do not follow a redirect to another origin.
---@class luaio.http.RequestOptions
---@field headers? table<string, string|number> name -> value
---@field sensitive_headers? string[] more headers kept to the first origin
---@field query? table<string|number, string|number> added to the URL
---@field body? string the request body
---@field json? any a value encoded with luaio.json (sets Content-Type)
---@field form? table<string|number, string|number> sent urlencoded
---@field multipart? table<string, string|luaio.http.MultipartFile>
---@field timeout? number|false total seconds (300); false turns it off
---@field connect_timeout? number|false seconds (30); false turns it off
---@field idle_timeout? number fail when no byte comes for this long (off)
---@field follow_redirects? boolean (true) only to http and https
---@field max_redirects? integer (10)
---@field verify? boolean TLS verification (true)
---@field ca_file? string a CA bundle
---@field proxy? string proxy URL
---@field http_version? "1.0"|"1.1"|"2"|"2-prior-knowledge"
---@field max_body? number larger is kind `body_too_large` (256 MiB)
---@field retries? integer retries (0) of failed connections, 429, 503
---@field retry_any_method? boolean also retry non-idempotent methods
---@field base_url? string resolves relative URLs
---@field stream? boolean return at the headers; read with `r:chunks()`
---@field user_agent? string|false the User-Agent (`"luaio/" .. aio.version`)
---@field auth? {[1]: string, [2]: string}|false Basic {user, password}
---@field bearer? string|false sent as `Authorization: Bearer <token>`

---The table of `http.request{...}` and `client:request{...}`.
---@class luaio.http.Request: luaio.http.RequestOptions
---@field url string
---@field method? string default `"GET"`

---Settings of `http.client`: every request option as a default, plus
---the connection caps and the cookie jar.
---@class luaio.http.ClientSettings: luaio.http.RequestOptions
---@field max_connections? integer|false connections (100); false: no cap
---@field max_per_host? integer|false per host (8, or max_connections)
---@field cookies? boolean keep a cookie jar (true)

---Options of `http.download`: request options plus a progress callback.
---@class luaio.http.DownloadOptions: luaio.http.RequestOptions
---@field progress? fun(done: integer, total: integer?) as bytes arrive

---A response. 4xx and 5xx are responses, not errors, until
---`raise_for_status`. Closes (for a streamed body) on `<close>`.
---@class luaio.HttpResponse
---@field status integer
---@field reason string
---@field ok boolean status < 400
---@field headers table<string, string> case-insensitive; repeats joined
---@field header_list {[1]: string, [2]: string}[] every {name, value} in order
---@field body string? the body (nil when streamed)
---@field url string the final URL, after redirects
---@field http_version "1.0"|"1.1"|"2"
---@field elapsed number seconds
---@field retries integer
---@field method string
---@field raw_headers string the header block as received
local Response = {}

---The body.
---@return string
function Response:text() end

---The body decoded with luaio.json.
---@return any
function Response:json() end

---Returns the response, or raises an error of kind `http` (with `status`
---and `response`) for 4xx and 5xx.
---@return luaio.HttpResponse
function Response:raise_for_status() end

---With `stream = true`: an iterator over the body as it arrives; a slow
---loop pauses the transfer. After `close` a waiting call raises kind
---`io`, code `ECANCELED`.
---@return async fun(): string?
function Response:chunks() end

---Stops a streamed transfer (also on `<close>`).
function Response:close() end

---A client with its own connection pool and cookie jar (`http.client`);
---closes on `<close>`: requests in flight fail with code `ECANCELED`.
---@class luaio.HttpClient
local Client = {}

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function Client:get(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function Client:post(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function Client:put(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function Client:patch(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function Client:delete(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function Client:head(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function Client:options(url, opts) end

---@async
---@param request luaio.http.Request
---@return luaio.HttpResponse
function Client:request(request) end

---Closes the client: requests in flight, waiting to retry or streaming a
---body fail with an error whose `code` is `ECANCELED`.
function Client:close() end

---Options of `http.serve`: where to listen, the handler, the access log
---and the limits (each settable).
---@class luaio.http.ServeOptions
---@field host? string an IP address or "localhost" ("127.0.0.1")
---@field port? integer 0 picks a free one (0)
---@field handler? fun(req: luaio.HttpServerRequest, res: luaio.HttpServerResponse): any
---@field log? boolean|fun(line: string) an access log line per request (off)
---@field max_header? integer bytes of request line and headers (16 KiB): 431
---@field max_body? integer bytes of a request body (1 MiB): 413
---@field header_timeout? number seconds to receive a head (10)
---@field idle_timeout? number seconds a keep-alive connection waits (5)
---@field body_timeout? number seconds for a request body after its head (30)
---@field write_timeout? number seconds a response may stall unread (30)
---@field max_connections? integer accepting pauses past it (4096)
---@field max_requests? integer per connection, then it closes (1000)

---Options of `http.static`.
---@class luaio.http.StaticOptions
---@field index? string a file served for a folder, e.g. "index.html" (off)
---@field dotfiles? boolean serve names starting with a dot (false)
---@field max_age? integer seconds, sent as Cache-Control: max-age

---A request being served, in its own task.
---@class luaio.HttpServerRequest
---@field method string
---@field url string the request target as sent
---@field path string the path, without the query, not decoded
---@field query table<string, string|string[]> decoded; repeats give a list
---@field headers table<string, string> lower-case names, any-case lookup
---@field params table<string, string> the route's `:name` and `*` parts
---@field remote string the client's address
---@field version string "1.1" or "1.0"
local Request = {}

---The whole body (at most `max_body`, else the client gets a 413).
---@async
---@return string
function Request:body() end

---The body decoded with luaio.json.
---@async
---@return any
function Request:json() end

---An iterator over the body as it arrives; the client is held back
---while the chunks are not taken.
---@return async fun(): string?
function Request:chunks() end

---Answers the WebSocket handshake (101) and returns the socket; a
---request that is no handshake raises (its client gets a 400).
---@param opts? {max_message?: integer} bytes (1 MiB); past it code 1009
---@return luaio.WebSocket
function Request:websocket(opts) end

---A WebSocket of `req:websocket()`; closed when its handler returns.
---@class luaio.WebSocket
local WebSocket = {}

---The next message and its kind, or nil and the close code at the end.
---@async
---@return string? data
---@return string|integer kind_or_code "text", "binary", or the close code
function WebSocket:receive() end

---Sends a message; waits while the client reads slowly.
---@async
---@param data string
---@param kind? "text"|"binary" ("text")
function WebSocket:send(data, kind) end

---Sends a ping (at most 125 bytes of data).
---@async
---@param data? string
function WebSocket:ping(data) end

---Starts the close handshake.
---@param code? integer 1000-4999 (1000)
---@param reason? string at most 123 bytes
function WebSocket:close(code, reason) end

---A streamed response: `write` sends the head, then chunks.
---@class luaio.HttpServerResponse
---@field status integer sent by the first write (200)
---@field headers table<string, string> sent by the first write
local ServerResponse = {}

---Sends the head now with this status and headers; with a length the
---body is that many bytes (Content-Length), else chunked.
---@param status? integer
---@param headers? table<string, string>
---@param length? integer
function ServerResponse:start(status, headers, length) end

---Sends a chunk; waits while the client reads slowly.
---@async
---@param chunk string
function ServerResponse:write(chunk) end

---Ends the stream (done for you when the handler returns).
function ServerResponse:finish() end

---A server of `http.serve`; closes on `<close>`.
---@class luaio.HttpServer
---@field port integer the port listened on (nil once closed)
local HttpServer = {}

---Adds a route: `:name` segments are parameters, a last `*` the rest.
---@param method string a method, or "*"
---@param pattern string starts with "/"
---@param fn fun(req: luaio.HttpServerRequest, res: luaio.HttpServerResponse): any
---@return luaio.HttpServer
function HttpServer:route(method, pattern, fn) end

---Stops accepting, lets requests in flight finish for `grace` seconds
---(5), then cancels them; returns when all have ended.
---@async
---@param opts? {grace?: number}
function HttpServer:close(opts) end

---The open connections.
---@return integer
function HttpServer:connections() end

---An HTTP client on libcurl driven by the luaio loop; the one-shot calls
---use a shared default client. Transfer failures are `luaio.Error`s with
---`op` (the method), `url` and a `kind` (`connect`, `dns`, `timeout`,
---`tls`, `redirect`, `protocol`, `reset`, `body_too_large`, `http`, `io`).
---@class luaio.http
---@field curl_version string libcurl's version string
local http = {}

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function http.get(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function http.post(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function http.put(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function http.patch(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function http.delete(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function http.head(url, opts) end

---@async
---@param url string
---@param opts? luaio.http.RequestOptions
---@return luaio.HttpResponse
function http.options(url, opts) end

---A request described by one table: `http.request{method=, url=, ...}`.
---@async
---@param request luaio.http.Request
---@return luaio.HttpResponse
function http.request(request) end

---A client with its own connection pool and cookie jar.
---@param settings? luaio.http.ClientSettings
---@return luaio.HttpClient
function http.client(settings) end

---Streams `url` into a temporary file beside `path`, renamed over `path`
---only when complete (a failure leaves nothing behind); returns the byte
---count.
---@async
---@param url string
---@param path string
---@param opts? luaio.http.DownloadOptions
---@return integer bytes
function http.download(url, path, opts) end

---A handler serving the files under root (never outside it).
---@param root string
---@param opts? luaio.http.StaticOptions
---@return fun(req: luaio.HttpServerRequest, res: luaio.HttpServerResponse): any
function http.static(root, opts) end

---Starts an HTTP/1.1 server; each request runs its handler in a task.
---@param opts luaio.http.ServeOptions
---@return luaio.HttpServer
function http.serve(opts) end

return http
