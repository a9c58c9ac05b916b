-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.serve_static: http.static(root [, opts]), a handler serving the
-- files under root: Range, ETag/If-None-Match, Last-Modified/
-- If-Modified-Since, content types by extension, no directory listing,
-- and nothing outside root (.., encoded or not, and symlinks leaving it
-- give 404). Files go out by sendfile(2), with backpressure.
local fs = require "luaio.fs"

local TYPES = {
  html = "text/html; charset=utf-8", htm = "text/html; charset=utf-8",
  css = "text/css; charset=utf-8", js = "text/javascript; charset=utf-8",
  mjs = "text/javascript; charset=utf-8", json = "application/json",
  txt = "text/plain; charset=utf-8", md = "text/markdown; charset=utf-8",
  csv = "text/csv; charset=utf-8", xml = "application/xml",
  svg = "image/svg+xml", png = "image/png", jpg = "image/jpeg",
  jpeg = "image/jpeg", gif = "image/gif", webp = "image/webp",
  ico = "image/x-icon", avif = "image/avif", woff = "font/woff",
  woff2 = "font/woff2", ttf = "font/ttf", otf = "font/otf",
  pdf = "application/pdf", zip = "application/zip",
  gz = "application/gzip", wasm = "application/wasm",
  mp4 = "video/mp4", webm = "video/webm", mp3 = "audio/mpeg",
  ogg = "audio/ogg", wav = "audio/wav",
}

local function not_found() return 404, {}, "not found\n" end

-- The path below root the request names, percent-decoded, or nil when
-- it is not a plain path under root (.., NUL, backslash, dotfiles).
local function relative(req, dotfiles)
  local p = req.params["*"] or req.path
  p = p:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  if p:find("[%z\\]") then return nil end
  local parts = {}
  for seg in p:gmatch("[^/]+") do
    if seg == ".." or seg == "." then return nil end
    if seg:sub(1, 1) == "." and not dotfiles then return nil end
    parts[#parts + 1] = seg
  end
  return table.concat(parts, "/")
end

local function http_date(t)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(t))
end

-- One byte range of a file of this size from a Range header: first,
-- last; false when unsatisfiable; nil to send the whole file (no
-- header, several ranges, or one that does not parse).
local function byte_range(h, size)
  local a, b = (h or ""):match("^bytes=(%d*)-(%d*)$")
  if not a or (a == "" and b == "") then return nil end
  local first, last
  if a == "" then                                  -- the last b bytes
    local n = tonumber(b)
    if n == 0 then return false end
    first, last = math.max(size - n, 0), size - 1
  else
    first = tonumber(a)
    last = b == "" and size - 1 or math.min(tonumber(b), size - 1)
    if tonumber(b) and tonumber(b) < first then return nil end
  end
  if first >= size then return false end
  return first, last
end

-- The bytes go from the file to the socket by sendfile(2), never
-- through Lua (bindings/serve_file.c).
local function send_file(res, first, last, head)
  if not head then
    res._c:sendfile(first, last - first + 1)
    res.bytes = last - first + 1
  end
  res:finish()
end

local function fresh(req, etag, mtime)
  local inm = req.headers["if-none-match"]
  if inm then
    for tag in inm:gmatch("[^,%s]+") do
      if tag == etag or tag == "W/" .. etag or tag == "*" then return true end
    end
    return false
  end
  local ims = req.headers["if-modified-since"]
  return ims ~= nil and ims == http_date(mtime)
end

-- Find the file the request names: its real path, or nil.
local function locate(real_root, rel, index)
  local ok, path = pcall(fs.realpath, real_root .. "/" .. rel)
  if not ok or (path ~= real_root and
                path:sub(1, #real_root + 1) ~= real_root .. "/") then
    return nil
  end
  local st = fs.stat(path)
  if st.type == "directory" and index then
    return locate(real_root, (rel == "" and "" or rel .. "/") .. index)
  end
  if st.type ~= "file" then return nil end
  return path
end

-- Open the file the request names: its path and {size, mtime}, or nil.
-- The path was checked before the open, and a folder on its way may be
-- swapped for a symlink out of root in between: what is served is the
-- file opened, checked again under root (req:openfile), and its stat.
local function open_file(req, real_root, rel, index)
  local path = locate(real_root, rel, index)
  if not path then return nil end
  local size, mtime = req._c:openfile(path, real_root)
  if not size then return nil end
  return path, {size = size, mtime = mtime}
end

local function serve_file(req, res, path, st, opts)
  local etag = ('"%x-%x"'):format(st.size, math.floor(st.mtime * 1e6))
  local ext = path:match("%.([%w]+)$")
  local h = {["ETag"] = etag, ["Last-Modified"] = http_date(st.mtime),
             ["Accept-Ranges"] = "bytes",
             ["Content-Type"] = TYPES[ext and ext:lower()] or
                                "application/octet-stream"}
  if opts.max_age then h["Cache-Control"] = "max-age=" .. opts.max_age end
  if fresh(req, etag, st.mtime) then return 304, h end
  local first, last = byte_range(req.headers["range"], st.size)
  if first == false then
    h["Content-Range"] = "bytes */" .. st.size
    return 416, h, ""
  end
  local status = 200
  if first then
    status = 206
    h["Content-Range"] = ("bytes %d-%d/%d"):format(first, last, st.size)
  else
    first, last = 0, st.size - 1
  end
  res:start(status, h, last - first + 1)
  send_file(res, first, last, req.method == "HEAD")
end

local function opt_error(msg)
  error("bad argument #2 to 'http.static' (" .. msg .. ")", 4)
end

-- index is a plain file name: a path in it could lead out of root.
local function check_opts(opts)
  local index, max_age = opts.index, opts.max_age
  if index ~= nil and (type(index) ~= "string" or index == "" or
      index == "." or index == ".." or index:find("[%z/\\]")) then
    opt_error("index: file name expected")
  elseif max_age ~= nil and (math.type(max_age) ~= "integer" or
                             max_age < 0) then
    opt_error("max_age: non-negative integer expected")
  elseif opts.dotfiles ~= nil and type(opts.dotfiles) ~= "boolean" then
    opt_error("dotfiles: boolean expected")
  end
  return opts
end

return function(root, opts)
  if type(root) ~= "string" or root:find("\0", 1, true) then
    error("bad argument #1 to 'http.static' (folder path expected)", 2)
  elseif opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'http.static' (table expected, got "
          .. type(opts) .. ")", 2)
  end
  opts = check_opts(opts or {})
  local real_root
  return function(req, res)
    if req.method ~= "GET" and req.method ~= "HEAD" then
      return 405, {Allow = "GET, HEAD"}, "method not allowed\n"
    end
    real_root = real_root or fs.realpath(root)
    local rel = relative(req, opts.dotfiles)
    if not rel then return not_found() end
    local ok, path, st = pcall(open_file, req, real_root, rel, opts.index)
    if not ok and type(path) == "table" and path.kind == "cancelled" then
      error(path, 0)
    end
    if not ok or not path then return not_found() end
    return serve_file(req, res, path, st, opts)
  end
end
