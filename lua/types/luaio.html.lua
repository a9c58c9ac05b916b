---@meta luaio.html
-- LuaLS annotations for `require "luaio.html"` (see lua/types/luaio.lua).

---@class luaio.html.ParseOptions
---@field url? string the document's URL: the base of `doc:links()`
---@field encoding? string charset (HTTP `Content-Type`): beats <meta charset>

---@class luaio.html.TextOptions
---@field normalize? boolean collapse whitespace runs to one space and trim

---A CSS selector compiled once by `html.selector`; usable wherever a
---selector string is.
---@class luaio.html.Selector

---@alias luaio.html.Css string|luaio.html.Selector

---An element of a document. It keeps its document alive; the same
---element is always the same value.
---@class luaio.html.Node
---@field tag string the element's name, lowercase
local Node = {}

---The attribute's value, or nil.
---@param name string
---@return string?
function Node:attr(name) end

---All attributes, name -> value.
---@return table<string, string>
function Node:attrs() end

---The text below the node, in document order (UTF-8).
---@param opts? luaio.html.TextOptions
---@return string
function Node:text(opts) end

---The node's outer HTML (UTF-8).
---@return string
function Node:html() end

---The child elements.
---@return luaio.html.Node[]
function Node:children() end

---The parent element, or nil at the root.
---@return luaio.html.Node?
function Node:parent() end

---The elements under this node that match, in document order.
---@param css luaio.html.Css
---@return luaio.html.Node[]
function Node:select(css) end

---The first element under this node that matches, or nil.
---@param css luaio.html.Css
---@return luaio.html.Node?
function Node:select_one(css) end

---Evaluates an XPath 1.0 expression with this node as context: a list
---(elements as nodes, attributes and text as strings), or a number,
---boolean or string.
---@param expr string
---@return any
function Node:xpath(expr) end

---A parsed document. Its tree is freed when it is collected or closed.
---@class luaio.html.Document
---@field title string? the `<title>` text, whitespace-normalised
---@field url string? the `url` option
local Document = {}

---@param css luaio.html.Css
---@return luaio.html.Node[]
function Document:select(css) end

---@param css luaio.html.Css
---@return luaio.html.Node?
function Document:select_one(css) end

---@param expr string
---@return any
function Document:xpath(expr) end

---Absolute URLs of `a[href]` and `area[href]`, resolved against
---`<base href>` or the document's URL, without fragments or duplicates.
---@return string[]
function Document:links() end

---The root element (`<html>`), or nil for an empty document.
---@return luaio.html.Node?
function Document:root() end

---@param opts? luaio.html.TextOptions
---@return string
function Document:text(opts) end

---The whole document as HTML (UTF-8).
---@return string
function Document:html() end

---Frees the tree now; its nodes raise afterwards.
function Document:close() end

---An incremental parser (`html.parser`).
---@class luaio.html.Parser
local Parser = {}

---Parses one more chunk.
---@param chunk string
---@return luaio.html.Parser
function Parser:feed(chunk) end

---Ends the input and returns the document; the parser is done.
---@return luaio.html.Document
function Parser:finish() end

---HTML on libxml2's HTML parser, with CSS selectors and XPath.
---@class luaio.html
local html = {}

---Parses a whole page.
---@param text string
---@param opts? luaio.html.ParseOptions
---@return luaio.html.Document
function html.parse(text, opts) end

---An incremental parser: `feed` chunks, then `finish`.
---@param opts? luaio.html.ParseOptions
---@return luaio.html.Parser
function html.parser(opts) end

---Compiles a CSS selector once; an invalid one is an error naming the
---position.
---@param css string
---@return luaio.html.Selector
function html.selector(css) end

return html
