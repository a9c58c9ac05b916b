---@meta luaio.proc
-- LuaLS annotations for `require "luaio.proc"` (see lua/types/luaio.lua).

---@alias luaio.proc.Stdio
---| "inherit"
---| "null"
---| "pipe"
---| {path: string, append?: boolean}
---| luaio.File

---@class luaio.proc.SpawnOptions
---@field stdin? luaio.proc.Stdio where stdin comes from ("inherit")
---@field stdout? luaio.proc.Stdio where stdout goes ("inherit")
---@field stderr? luaio.proc.Stdio|"stdout" where stderr goes ("inherit")
---@field input? string fed to stdin, which is then closed
---@field cwd? string the working directory
---@field env? table<string, string> replaces the environment
---@field env_add? table<string, string> adds to the environment
---@field detached? boolean a new session, never killed by luaio
---@field kill_on_close? boolean kill a running process on close (true)
---@field kill_grace? number seconds from SIGTERM to SIGKILL (2)

---@class luaio.proc.RunOptions: luaio.proc.SpawnOptions
---@field timeout? number seconds; then it is killed and a timeout raised
---@field check? boolean raise on a non-zero exit (false)
---@field max_output? integer bytes kept per stream (16 MiB)

---@class luaio.proc.Result
---@field code integer? the exit code; nil if a signal ended it
---@field signal string? the signal's name
---@field stdout string? captured stdout
---@field stderr string? captured stderr
---@field stdout_truncated boolean? more than max_output came
---@field stderr_truncated boolean? more than max_output came

---A child process, from `proc.spawn` or `proc.shell`; closes on
---`<close>` and collection (killing it if it runs, with kill_on_close).
---@class luaio.Process
---@field pid integer the process id
---@field running boolean whether it still runs
---@field stdin luaio.Stream? with stdin = "pipe"
---@field stdout luaio.Stream? with stdout = "pipe"
---@field stderr luaio.Stream? with stderr = "pipe"
local Process = {}

---Waits for the exit: the exit code and nil, or nil and the signal's
---name. Cancelling the wait kills the process unless it is detached.
---@async
---@return integer? code
---@return string? signal
function Process:wait() end

---Sends a signal (default "SIGTERM"); false if it had already exited.
---@param sig? string|integer
---@return boolean sent
function Process:kill(sig) end

---Closes the pipes now and kills a running process (kill_on_close).
function Process:close() end

---The `luaio.proc` module: programs from argument vectors.
---@class luaio.proc
local proc = {}

---Starts a program: `{prog, arg, ..., options}`. Raises ENOENT, EACCES or
---a bad cwd with the program's name.
---@param cmd luaio.proc.SpawnOptions|string[]
---@return luaio.Process
function proc.spawn(cmd) end

---`spawn{"/bin/sh", "-c", command}`: never give it untrusted text.
---@param command string
---@param opts? luaio.proc.SpawnOptions
---@return luaio.Process
function proc.shell(command, opts) end

---Runs `cmd` to the end, capturing stdout and stderr.
---@async
---@param cmd luaio.proc.RunOptions|string[]
---@param opts? luaio.proc.RunOptions
---@return luaio.proc.Result
function proc.run(cmd, opts) end

return proc
