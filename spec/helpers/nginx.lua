-- Starts a real nginx on 127.0.0.1 with a generated config, for the HTTP
-- specs and examples; stop() kills it by PID and removes its folder.
-- Under `luaio test` it is stopped anyway when the block that started it
-- ends (helpers.background); stop() in a finally also removes the folder.
--   local srv = require("spec.helpers.nginx").start()
--   srv.url .. "/small"  ...  srv:stop()
local aio = require "luaio"
local http = require "luaio.http"
local helpers = require "spec.helpers"

local M = {}

local CONF = [[
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 1024; }
http {
  access_log %s/access.log;
  log_format conns '$connection $request_uri';
  keepalive_requests 100000;
  client_body_temp_path %s/tmp;
  gzip on;
  gzip_types text/plain application/json;
  gzip_min_length 100;
  server {
    listen 127.0.0.1:%d;
    root %s/www;
    access_log %s/conns.log conns;
    location = /delay/1 { echo_sleep 1; echo "ok"; }
    location = /delay/short { echo_sleep 0.2; echo "ok"; }
    location = /redirect { return 302 /small; }
    location = /redirect/loop { return 302 /redirect/loop; }
    location = /redirect/ftp { return 302 ftp://127.0.0.1/x; }
    location = /redirect/to { return 302 $arg_url; }
    location = /status/404 { return 404 "status 404\n"; }
    location = /status/500 { return 500 "status 500\n"; }
    location = /status/503 { return 503 "status 503\n"; }
    location = /echo/method { echo $request_method; }
    location = /echo/header { echo $http_x_test; }
    location = /echo/query { echo $args; }
    location = /echo/body { echo_read_request_body; echo $request_body; }
    location = /echo/content-type { echo $content_type; }
    location = /echo/cookie { echo $http_cookie; }
    location = /cookie/set { add_header Set-Cookie "session=abc123; Path=/"; echo "set"; }
    location = /headers/multi { add_header X-Multi one; add_header X-Multi two; echo "multi"; }
    location = /whoami { return 200 "%s"; }
  }
  server {
    listen 127.0.0.1:%d ssl http2;
    ssl_certificate %s/cert.pem;
    ssl_certificate_key %s/key.pem;
    root %s/www;
  }
}
]]

-- A port from 20000 to 59999 read from /dev/urandom: math.random is
-- seeded from the time and an address, and under valgrind (no address
-- randomisation) two spec files started in the same second drew the
-- same ports, so the second nginx could not bind and its spec talked to
-- the first one's server.
local function random_port()
  local f = assert(io.open("/dev/urandom", "rb"))
  local hi, lo = f:read(2):byte(1, 2)
  f:close()
  return 20000 + (hi * 256 + lo) % 40000
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function M.start()
  local dir = assert(io.popen("mktemp -d")):read("l")
  os.execute("mkdir -p " .. dir .. "/www " .. dir .. "/tmp && chmod 755 " .. dir)
  write(dir .. "/www/small", string.rep("x", 1024))
  write(dir .. "/www/data.json",
    '{"users":[{"id":1,"name":"Alice"},{"id":12345678901234567,"name":"Bob"}],"ok":true}')
  write(dir .. "/www/big", string.rep("0123456789abcdef", 65536))   -- 1 MiB
  write(dir .. "/www/text.txt", string.rep("hello gzip ", 1000))
  os.execute("mkdir -p " .. dir .. "/www/users")
  for id, name in pairs({[1] = "Alice", [2] = "Bob"}) do
    write(("%s/www/users/%d.json"):format(dir, id),
      ('{"id":%d,"name":"%s","email":"%s@example.org"}'):format(id, name, name:lower()))
    write(("%s/www/users/%d.posts.json"):format(dir, id),
      ('[{"title":"%s post 1"},{"title":"%s post 2"}]'):format(name, name))
  end
  -- a certificate for 127.0.0.1, for the TLS server
  assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
    .. "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
    .. "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1"):format(dir, dir)))
  for attempt = 1, 20 do
    local port = random_port()
    local tls_port = random_port()
    write(dir .. "/nginx.conf", CONF:format(dir, dir, dir, dir, port, dir, dir,
                                            dir, tls_port, dir, dir, dir))
    local pid = helpers.background("nginx -p " .. dir .. " -c " .. dir
      .. "/nginx.conf", {log = dir .. "/stdout.log"})
    local url = "http://127.0.0.1:" .. port
    -- up to a minute on a loaded machine; a port taken by another
    -- process makes nginx exit at once, and the next attempt takes
    -- other ports
    for _ = 1, 1200 do
      -- ours, not another spec's nginx that drew the same port (ours
      -- then fails to bind and exits, but a request can reach the other
      -- first): /whoami answers our folder
      local ok, r = pcall(http.get, url .. "/whoami", {timeout = 0.5})
      if ok and r.body ~= dir then break end
      if ok then
        return setmetatable({url = url, port = port, pid = pid, dir = dir,
          tls_url = "https://127.0.0.1:" .. tls_port,
          ca_file = dir .. "/cert.pem"}, {__index = M})
      end
      if helpers.sh("kill -0 " .. pid .. " 2>/dev/null") ~= 0 then break end
      aio.sleep(0.05)
    end
    os.execute("kill " .. pid .. " 2>/dev/null")
    if attempt == 20 then error("nginx did not start: " .. dir) end
  end
end

-- How many distinct connections served the requests so far, or only
-- those whose request URI (with its query) matches the Lua pattern uri.
-- nginx logs a request just after sending its answer, so a client may
-- count before the last line is in: a spec counts its own requests
-- (a query of its own), not a difference from a count taken before.
function M:connections(uri)
  local f = assert(io.open(self.dir .. "/conns.log"))
  local seen, n = {}, 0
  for line in f:lines() do
    local c, u = line:match("^(%d+) (.*)$")
    if c and not seen[c] and (uri == nil or u:find(uri)) then
      seen[c] = true
      n = n + 1
    end
  end
  f:close()
  return n
end

function M:stop()
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  for _ = 1, 50 do
    if helpers.sh("kill -0 " .. self.pid .. " 2>/dev/null") ~= 0 then break end
    aio.sleep(0.02)
  end
  os.execute("rm -rf " .. self.dir)
end

return M
