---@meta luaio.url
-- LuaLS annotations for `require "luaio.url"` (see lua/types/luaio.lua).

---A parsed URL: its parts as written in it (percent-encoded); absent
---parts are nil. Fields may be changed; `tostring(u)` rebuilds the URL.
---@class luaio.Url
---@field scheme string lowercase
---@field user? string
---@field password? string
---@field host? string as written (see `url.normalize` for lowercase)
---@field port? integer
---@field path string "/" when the URL has none
---@field query? string without the "?"
---@field fragment? string without the "#"

---@class luaio.url.NormalizeOptions
---@field drop_fragment? boolean leave out the `#fragment`

---URLs on libcurl's URL API: parse, RFC 3986 reference resolution,
---normalisation, percent-encoding and query strings. Bad input raises an
---argument error naming the part that is wrong.
---@class luaio.url
local url = {}

---Parses an absolute URL.
---@param s string
---@return luaio.Url
function url.parse(s) end

---Resolves `ref` against `base` (RFC 3986 section 5).
---@param base string an absolute URL
---@param ref string a URL reference (relative or absolute)
---@return string
function url.join(base, ref) end

---Normalises an absolute URL: lowercase scheme and host, no default
---port, no dot segments, percent-encoding normalised.
---@param s string
---@param opts? luaio.url.NormalizeOptions
---@return string
function url.normalize(s, opts) end

---Percent-encodes every byte except `A-Z a-z 0-9 - . _ ~`.
---@param s string
---@return string
function url.encode(s) end

---Decodes `%XX` escapes (an invalid one stays as it is; `+` stays `+`).
---@param s string
---@return string
function url.decode(s) end

---Encodes a table as a query string, keys sorted; an array value repeats
---its key (`{tag = {"a", "b"}}` gives `tag=a&tag=b`).
---@param t table<string, string|number|boolean|(string|number|boolean)[]>
---@return string
function url.query_encode(t) end

---Decodes a query string (a leading `?` is skipped, `+` is a space).
---Returns a table whose value for a key is a string, or an array of
---strings when the key is repeated, and the list of `{key, value}`
---pairs in order.
---@param s string
---@return table<string, string|string[]> values
---@return {[1]: string, [2]: string}[] pairs
function url.query_decode(s) end

return url
