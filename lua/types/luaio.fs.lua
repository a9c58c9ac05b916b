---@meta luaio.fs
-- LuaLS annotations for `require "luaio.fs"` (see lua/types/luaio.lua).
-- The file name's dots map to the module name, as LuaLS resolves require.

---@class luaio.fs.WriteOptions
---@field atomic? boolean write a temp file beside it, fsync, rename over
---@field mode? integer permission bits of a new file (default 0644)

---@class luaio.fs.MkdirOptions
---@field parents? boolean create missing parent folders; existing ones are fine
---@field mode? integer permission bits (default `0777`, less the umask)

---@class luaio.fs.WatchOptions
---@field recursive? boolean watch every folder under the path too, and new ones as they appear

---@class luaio.fs.WalkOptions
---@field max_depth? integer >= 0: list entries down to this depth (1: the folder's own entries); no limit by default
---@field follow_links? boolean enter linked folders and give links their target's type (default false)

---@alias luaio.fs.FileType
---| "file"
---| "directory"
---| "link"
---| "fifo"
---| "socket"
---| "char"
---| "block"
---| "unknown"

---@alias luaio.fs.OpenMode "r"|"w"|"a"|"r+"|"w+"|"a+"|"x"|string

---What `fs.stat` and `fs.lstat` return.
---@class luaio.fs.Stat
---@field size integer bytes
---@field mode integer permission bits
---@field type luaio.fs.FileType
---@field mtime number seconds since the epoch
---@field atime number
---@field ctime number
---@field nlink integer
---@field uid integer
---@field gid integer
---@field ino integer

---One entry given by `fs.walk`.
---@class luaio.fs.WalkEntry
---@field path string the folder given to `fs.walk`, `/`, the path below it
---@field name string the last part of `path`
---@field type luaio.fs.FileType
---@field depth integer 1 for the folder's own entries
---@field link? boolean a followed link (`follow_links`)
---@field error? luaio.Error why this entry could not be stat'ed or listed

---One change seen by a watcher.
---@class luaio.fs.WatchEvent
---@field name string the changed entry, relative to the watched path (`a/b.txt` when recursive)
---@field change boolean its content or attributes changed
---@field rename boolean it was created, removed or renamed

---An open file from `fs.open`; closes on `<close>` and collection. Using
---a closed file is an error, not a crash.
---@class luaio.File
local File = {}

---Up to `n` bytes (default 65536), nil at the end.
---@async
---@param n? integer > 0
---@return string?
function File:read(n) end

---The rest of the file.
---@async
---@return string
function File:read_all() end

---The next line without `\n` or `\r\n`, nil at the end.
---@async
---@return string?
function File:read_line() end

---An iterator over the lines (read 64 KiB at a time; handles `\r\n`, a
---last line without newline and lines longer than the buffer).
---@return async fun(): string?
function File:lines() end

---Writes all of `data` (completing partial writes).
---@async
---@param data string
function File:write(data) end

---Sets or gets the position, like `io`'s seek; does not wait.
---@param whence? "set"|"cur"|"end" default `"cur"`
---@param offset? integer default 0
---@return integer position
function File:seek(whence, offset) end

---Flushes the file to disk (fsync).
---@async
function File:sync() end

---The file's descriptor (the File keeps owning it), for code that
---takes one: luaio.proc's stdin/stdout/stderr take the File itself.
---@return integer
function File:fileno() end

---Closes the file; closing twice is fine.
function File:close() end

---A watcher from `fs.watch`; closes on `<close>` and collection.
---@class luaio.Watcher
local Watcher = {}

---The next event, waiting for one; nil once the watcher is closed.
---@async
---@return luaio.fs.WatchEvent?
function Watcher:next() end

---An iterator for `for ev in w:events() do`, ending when closed.
---@return async fun(w: luaio.Watcher): luaio.fs.WatchEvent?
---@return luaio.Watcher
function Watcher:events() end

---The number of events lost (past 1,024 queued).
---@return integer
function Watcher:dropped() end

---Stops watching; a waiting `next` then returns nil.
function Watcher:close() end

---Files and folders through libuv's thread pool: no call blocks the loop.
---Failures are `luaio.Error`s with `code` (errno name), `op` and `path`.
---@class luaio.fs
local fs = {}

---The whole file.
---@async
---@param path string
---@return string
function fs.read(path) end

---Replaces the file with `data`.
---@async
---@param path string
---@param data string
---@param opts? luaio.fs.WriteOptions
function fs.write(path, data, opts) end

---Appends `data`, creating the file.
---@async
---@param path string
---@param data string
function fs.append(path, data) end

---Opens a file (modes as `io.open`, and `x` to create only; default `"r"`).
---@async
---@param path string
---@param mode? luaio.fs.OpenMode
---@return luaio.File
function fs.open(path, mode) end

---@async
---@param path string
---@return luaio.fs.Stat
function fs.stat(path) end

---Like `stat`, of a link itself.
---@async
---@param path string
---@return luaio.fs.Stat
function fs.lstat(path) end

---@async
---@param path string
---@return boolean
function fs.exists(path) end

---@async
---@param path string
---@param opts? luaio.fs.MkdirOptions
function fs.mkdir(path, opts) end

---Removes an empty folder.
---@async
---@param path string
function fs.rmdir(path) end

---Removes a file.
---@async
---@param path string
function fs.remove(path) end

---@async
---@param from string
---@param to string
function fs.rename(from, to) end

---@async
---@param from string
---@param to string
function fs.copy(from, to) end

---@async
---@param path string
---@param mode integer permission bits
function fs.chmod(path, mode) end

---The names in a folder.
---@async
---@param path string
---@return string[]
function fs.readdir(path) end

---The canonical absolute path.
---@async
---@param path string
---@return string
function fs.realpath(path) end

---The system temp folder (no I/O).
---@return string
function fs.tmpdir() end

---Creates a new private folder named `prefix` plus random characters
---(default: the temp folder + `/luaio-`); returns its path.
---@async
---@param prefix? string
---@return string
function fs.mkdtemp(prefix) end

---Watches `path` for changes; recursive: waits until every folder under
---it is watched.
---@param path string
---@param opts? luaio.fs.WatchOptions
---@return luaio.Watcher
function fs.watch(path, opts) end

---Walks the folder `dir` depth first, in name order: a generic-for
---iterator giving each entry below it. An error about one entry is in
---its `error` field and the walk goes on; a `dir` that cannot be listed
---is raised.
---@param dir string
---@param opts? luaio.fs.WalkOptions
---@return async fun(w: luaio.Walker): luaio.fs.WalkEntry?
---@return luaio.Walker
function fs.walk(dir, opts) end

---The state of one `fs.walk`; holds nothing to close.
---@class luaio.Walker

return fs
