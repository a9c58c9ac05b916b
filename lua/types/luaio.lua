---@meta luaio
-- LuaLS annotations for `require "luaio"`: tasks, combinators, queues and
-- synchronisation. Definitions only: this file is never run and is not
-- compiled into the program (only lua/*.lua is). README.md is the manual;
-- spec/types_spec.lua keeps these stubs and the manual and the real
-- functions in step.

---@alias luaio.ErrorKind
---| "io"              # an I/O failure; `code` is the errno name
---| "timeout"         # a deadline passed (`seconds` says which)
---| "cancelled"       # the task was cancelled
---| "error"           # a plain Lua error killed a task (`value`)
---| "full"            # q:put_nowait on a full queue
---| "empty"           # q:get_nowait on an empty queue
---| "closed"          # a put on a closed queue
---| "eof"             # the peer closed before the data arrived (`partial`)
---| "limit"           # a line longer than the stream's maximum
---| "json"            # invalid JSON or a value JSON cannot hold
---| "http"            # raise_for_status on 4xx/5xx, or oversized headers
---| "connect"         # HTTP: connection refused or unreachable
---| "dns"             # HTTP: the host name did not resolve
---| "tls"             # HTTP: TLS handshake or verification failed
---| "redirect"        # HTTP: too many redirects
---| "protocol"        # HTTP: unsupported protocol or bad response
---| "reset"           # HTTP: connection lost mid-response
---| "body_too_large"  # HTTP: the body exceeded `max_body`
---| "permission"      # the sandbox refused an access (`permission`, `target`)
---| "cap"             # a cap of the sandbox ended the script (`cap`)
---| string

---@alias luaio.TaskStatus "pending"|"running"|"ok"|"failed"|"cancelled"

---A failure raised by luaio: a table with this metatable, so `tostring`
---gives `open 'data/x.txt': ENOENT (no such file or directory)`.
---@class luaio.Error
---@field kind luaio.ErrorKind what failed
---@field code? string errno name such as `"ENOENT"`, or `"ECANCELED"`
---@field message? string human-readable detail
---@field op? string the operation (`"open"`, `"GET"`, `"connect"`...)
---@field path? string the file, for fs errors
---@field url? string the URL, for HTTP errors
---@field address? string the address, for net errors
---@field traceback? string where the error was raised, and the chain of awaits
---@field value? any the original error value (kind `"error"`)
---@field seconds? number the deadline that expired (kind `"timeout"`)
---@field interrupted? string the wait an `aio.timeout` interrupted
---(`"queue:get"`, `"client:get GET http://..."`)
---@field task? string the task the error was raised in (`"'fetch' (#2)"`)
---@field partial? string what arrived before EOF or a read error (net)
---@field status? integer the HTTP status (kind `"http"`)
---@field response? luaio.HttpResponse the response (kind `"http"`)
---@field errors? luaio.Error[] the other child errors of a failed group
---@field permission? string what the sandbox refused: `"read"`, `"write"`, `"net"`, `"run"`, `"env"`, `"call"` (kind `"permission"`)
---@field target? string the path, host:port, program or variable refused (kind `"permission"`)
---@field cap? string `"max-memory"`, `"max-time"` or `"max-tasks"` (kind `"cap"`)

---A task: a coroutine run by the loop. Made by `aio.spawn`, `g:spawn`,
---`aio.gather` given functions...
---@class luaio.Task
---@field name string a settable name (default `task-N`), shown by `tostring(t)`
local Task = {}

---Waits for the task; returns its results or re-raises its error
---(traceback plus the chain of awaits). Several tasks may await one task.
---@async
---@return any ...
function Task:await() end

---Requests cancellation: a cancelled error is raised where the task waits
---(its `<close>` variables run). Cancellation stays pending: a task that
---catches it and waits again gets it again.
---@param msg? string the cancelled error's message
---@return boolean requested false if the task was already done
function Task:cancel(msg) end

---Whether the task has finished (ok, failed or cancelled).
---@return boolean
function Task:done() end

---Whether the task finished by cancellation.
---@return boolean
function Task:cancelled() end

---The results of a finished task; raises its error, or an error if the
---task is not done.
---@return any ...
function Task:result() end

---The error of a failed task, or nil.
---@return luaio.Error?
function Task:error() end

---@return luaio.TaskStatus
function Task:status() end

---@class luaio.TaskInfo
---@field name string the task's name
---@field state "ready"|"running"|"waiting"|"done"
---@field waiting_on? string what a waiting task waits on (`"aio.sleep"`,
---`"queue:get"`, `"client:get GET http://..."`, `"fs.open data/x"`)
---@field age number seconds since the task was spawned

---What the task is doing: name, state, what it waits on, age.
---@return luaio.TaskInfo
function Task:info() end

---The `g` passed to `aio.group(fn)`: spawns children the group awaits.
---@class luaio.Group
local Group = {}

---Spawns a child task running `fn(...)`; the group waits for it.
---@param fn async fun(...: any): ...
---@param ... any
---@return luaio.Task
function Group:spawn(fn, ...) end

---@class luaio.WaitOptions
---@field return_when? "all"|"first"|"first_error" (default `"all"`)
---@field timeout? number seconds; on expiry returns what is done so far

---@class luaio.AsCompletedOptions
---@field timeout? number seconds for the whole iteration, then kind `timeout`

---A FIFO, LIFO or priority queue (`aio.queue`, `aio.lifo_queue`,
---`aio.priority_queue`). `#q` is its size. Items cannot be nil.
---@class luaio.Queue
---@operator len: integer
local Queue = {}

---Puts an item, waiting while the queue is full. Raises kind `"closed"`
---once the queue is closed.
---@async
---@param item any not nil
function Queue:put(item) end

---Takes the next item, waiting while the queue is empty; once the queue
---is closed and drained, returns `nil, "closed"`.
---@async
---@return any item
---@return "closed"? closed
function Queue:get() end

---Puts without waiting; raises an error of kind `"full"` when full.
---@param item any not nil
function Queue:put_nowait(item) end

---Takes without waiting; raises an error of kind `"empty"` when empty.
---@return any item
function Queue:get_nowait() end

---Marks one item taken with `get` as processed (for `join`).
function Queue:task_done() end

---Waits until every item put has been marked done with `task_done`.
---@async
function Queue:join() end

---Closes the queue: puts raise kind `"closed"`; gets drain what is left,
---then return `nil, "closed"`.
function Queue:close() end

---@return integer
function Queue:size() end

---@return boolean
function Queue:empty() end

---@return boolean
function Queue:full() end

---@return boolean
function Queue:closed() end

---A counting semaphore (`aio.semaphore`, `aio.bounded_semaphore`) or a
---lock (`aio.lock`, a bounded semaphore of 1).
---@class luaio.Semaphore
local Semaphore = {}

---Waits for a permit (FIFO) and returns it; the permit releases on
---`<close>` or `permit:release()`.
---@async
---@return luaio.Permit
function Semaphore:acquire() end

---A permit if one is free now, else nil; never waits.
---@return luaio.Permit?
function Semaphore:try_acquire() end

---Gives one permit back. A bounded semaphore raises on a release beyond
---its initial value; any raises when the count would overflow.
function Semaphore:release() end

---Runs `fn(...)` holding a permit and returns its results; the permit is
---released however `fn` ends.
---@async
---@param fn async fun(...: any): ...
---@param ... any
---@return any ...
function Semaphore:with(fn, ...) end

---The number of free permits.
---@return integer
function Semaphore:value() end

---Whether no permit is free.
---@return boolean
function Semaphore:locked() end

---A permit from `s:acquire()`; releases on `<close>` or `release()`, not
---on collection. `lock:release()` spends a lock's holding permit.
---@class luaio.Permit
local Permit = {}

---Gives the permit back (only the first call counts).
function Permit:release() end

---@class luaio.Event
local Event = {}

---Sets the event, waking every waiter.
function Event:set() end

---Clears the event.
function Event:clear() end

---@return boolean
function Event:is_set() end

---Waits until the event is set; returns true.
---@async
---@return true
function Event:wait() end

---A condition variable with its lock (`aio.condition([lock])`).
---@class luaio.Condition
local Condition = {}

---Releases the lock, waits for a notify and re-takes the lock (also when
---cancelled meanwhile, then raises the cancellation). Call it holding
---the lock; returns true.
---@async
---@return true
function Condition:wait() end

---Waits until `predicate()` returns true, checking after each notify.
---@async
---@param predicate async fun(): any
---@return any result the predicate's true value
function Condition:wait_for(predicate) end

---Wakes up to `n` waiters (default 1; `n` >= 0).
---@param n? integer
function Condition:notify(n) end

---Wakes every waiter.
function Condition:notify_all() end

---Takes the condition's lock (waits for it); returns the permit.
---@async
---@return luaio.Permit
function Condition:acquire() end

---Releases the condition's lock.
function Condition:release() end

---@return boolean
function Condition:locked() end

---Runs `fn(...)` holding the condition's lock.
---@async
---@param fn async fun(...: any): ...
---@param ... any
---@return any ...
function Condition:with(fn, ...) end

---A rate limiter from `aio.rate_limiter`: a sliding window, a token
---bucket (with a burst), or one of either per key (`key = true`).
---@class luaio.RateLimiter
local RateLimiter = {}

---Waits (FIFO) until one more acquisition is allowed.
---@async
---@param key? any the key, for a keyed limiter (required there)
function RateLimiter:acquire(key) end

---Acquires if allowed now, without waiting.
---@param key? any the key, for a keyed limiter (required there)
---@return boolean taken
function RateLimiter:try_acquire(key) end

---How many keys a keyed limiter keeps (idle ones are dropped); 0 for
---a limiter without keys.
---@return integer
function RateLimiter:key_count() end

---A result that comes later, from `aio.future()` (or C's
---`luaio_future_new`), awaited by any number of tasks.
---@class luaio.Future
local Future = {}

---Completes the future with the values (nils included); raises if it is
---already done.
---@param ... any
function Future:set(...) end

---Completes the future with an error, raised by every await; raises if
---it is already done.
---@param err any not nil
function Future:fail(err) end

---Waits while the future is pending, then returns its values or raises
---its error.
---@async
---@return any ...
function Future:await() end

---Whether the future is set or failed.
---@return boolean
function Future:done() end

---A watcher of one signal, from `aio.signal`; closes on `<close>` and
---collection.
---@class luaio.Signal
local Signal = {}

---Waits for the next delivery (or takes one kept since the last wait);
---returns the signal's name, such as `"SIGHUP"`.
---@async
---@return string
function Signal:wait() end

---An iterator over deliveries for a generic `for`; ends when the watcher
---is closed.
---@return async fun(w: luaio.Signal): string?
---@return luaio.Signal
function Signal:each() end

---Stops watching; wakes waiting tasks with a "closed" error. Closing the
---last watcher of SIGINT or SIGTERM gives back luaio's meaning.
function Signal:close() end

---A pool of worker Lua states, from `aio.worker_pool`.
---@class luaio.WorkerPool
local WorkerPool = {}

---`aio.to_thread` on this pool: at most `size` calls run at once.
---@async
---@param fn function|string an upvalue-free Lua function or "module.name"
---@param ... nil|boolean|number|string|table copied to the worker
---@return ... the results, copied back
function WorkerPool:run(fn, ...) end

---Refuses new calls; wakes calls waiting for a turn with an error.
function WorkerPool:close() end

---@class luaio.WorkerPoolOptions
---@field size? integer states, 1 to 1024 (UV_THREADPOOL_SIZE or 4)
---@field path? string package.path of its states (the caller's)
---@field cpath? string package.cpath of its states (the caller's)

---The `luaio` module: tasks, combinators, queues and synchronisation.
---@class luaio
---@field version string the luaio version
local aio = {}

---Runs `fn(...)` as a new task, starting on the loop's next turn (never
---inside the call). Errors in `fn` are kept in the task; one nobody awaits
---is printed when the task is collected or the program ends.
---@param fn async fun(...: any): ...
---@param ... any arguments for `fn`, nils included
---@return luaio.Task
function aio.spawn(fn, ...) end

---`aio.spawn(fn, ...)` with the task named `name` from the start (`t.name`,
---shown by `t:info()`, `aio.dump` and error reports).
---@param name string
---@param fn async fun(...: any): ...
---@param ... any arguments for `fn`, nils included
---@return luaio.Task
function aio.spawn_named(name, fn, ...) end

---Writes every live task, oldest first, with its name, state (what it
---waits on), age and Lua stack, with `file:write` (default: to stderr).
---SIGQUIT prints the same to stderr, and the program goes on.
---@param file? file*|{write: fun(self, s: string)}
function aio.dump(file) end

---@class luaio.DebugOptions
---@field slow? number seconds a task may run without yielding before
---debug mode warns (default 0.1)

---Debug mode (also `luaio --debug`, `LUAIO_DEBUG=1`): warnings on stderr
---about slow tasks, failed tasks nobody awaits, tasks pending at exit
---and files, streams or streamed responses collected unclosed. Returns
---whether it is on.
---@param on? boolean
---@param opts? luaio.DebugOptions
---@return boolean
function aio.debug(on, opts) end

---Suspends the calling task; `aio.sleep(0)` yields one loop turn.
---@async
---@param seconds number >= 0
function aio.sleep(seconds) end

---Monotonic seconds (nanosecond clock).
---@return number
function aio.now() end

---The running task, or nil outside tasks.
---@return luaio.Task?
function aio.current() end

---The list of unfinished tasks.
---@return luaio.Task[]
function aio.tasks() end

---The entry point from a stock `lua5.4`: runs the loop until `fn`'s task
---finishes, cancels what it left running, returns its results or raises
---its error. An error inside a luaio program, where the loop is running.
---@param fn async fun(...: any): ...
---@param ... any
---@return any ...
function aio.run(fn, ...) end

---Whether `e` is a cancellation error.
---@param e any
---@return boolean
function aio.is_cancelled(e) end

---Whether `e` is a timeout error.
---@param e any
---@return boolean
function aio.is_timeout(e) end

---Whether `e` is a `luaio.Error`, of kind `kind` when given.
---@param e any
---@param kind? luaio.ErrorKind
---@return boolean
function aio.is_error(e, kind) end

---Makes a `luaio.Error` (to raise with `error(e)`); `fields` are copied in.
---@param kind luaio.ErrorKind
---@param msg string
---@param fields? table
---@return luaio.Error
function aio.error(kind, msg, fields) end

---Waits for tasks (functions are spawned) and returns one value per task
---(its first result), in input order; the first error cancels the others
---and is raised once they have finished.
---@async
---@param ... luaio.Task|async fun(): any
---@return any ...
---@overload async fun(tasks: (luaio.Task|async fun(): any)[]): ...
function aio.gather(...) end

---Like `gather`, but waits for all and returns each task's result or its
---error (a `luaio.Error`) in place.
---@async
---@param ... luaio.Task|async fun(): any
---@return any ...
---@overload async fun(tasks: (luaio.Task|async fun(): any)[]): ...
function aio.gather_all(...) end

---Waits for a list of tasks; returns the done and the pending ones, in
---input order. Never cancels the pending.
---@async
---@param tasks luaio.Task[]
---@param opts? luaio.WaitOptions
---@return luaio.Task[] done
---@return luaio.Task[] pending
function aio.wait(tasks, opts) end

---An iterator over the tasks in the order they finish (each handed out
---once; nil when all have been).
---@param tasks luaio.Task[]
---@param opts? luaio.AsCompletedOptions
---@return async fun(): luaio.Task?
function aio.as_completed(tasks, opts) end

---Runs `fn(...)` in the calling task with a deadline: on expiry `fn` is
---cancelled where it waits and a `timeout` error is raised (`e.seconds`).
---Deadlines nest.
---@async
---@param seconds number
---@param fn async fun(...: any): ...
---@param ... any
---@return any ...
function aio.timeout(seconds, fn, ...) end

---Awaits a task with a deadline; on expiry (or if the caller is cancelled)
---cancels the task and raises once it has finished.
---@async
---@param task luaio.Task
---@param seconds number
---@return any ...
function aio.wait_for(task, seconds) end

---Awaits a task (spawning a function first) so that cancelling the caller
---interrupts the wait but not the task.
---@async
---@param task luaio.Task
---@param ... any only when a function is given (see the overload)
---@return any ...
---@overload async fun(fn: async fun(...: any): ..., ...: any): ...
function aio.shield(task, ...) end

---Runs `fn(...)` in the calling task with cancellations and timeouts held
---back until it returns; the held-back cancellation is raised at the next
---wait after it.
---@async
---@param fn async fun(...: any): ...
---@param ... any
---@return any ...
function aio.shielded(fn, ...) end

---Structured concurrency: `fn(g)` spawns children with `g:spawn`; returns
---`fn`'s results once every child has finished. The first child error
---cancels the siblings and is raised after they finish (others in its
---`errors` field).
---@async
---@param fn async fun(g: luaio.Group): ...
---@return any ...
function aio.group(fn) end

---A FIFO queue; `maxsize` 0 or nil means unbounded.
---@param maxsize? integer
---@return luaio.Queue
function aio.queue(maxsize) end

---A LIFO queue (the newest item first).
---@param maxsize? integer
---@return luaio.Queue
function aio.lifo_queue(maxsize) end

---A priority queue: the smallest item first, by `<` or by `less(a, b)`.
---@param maxsize? integer
---@param less? fun(a: any, b: any): boolean
---@return luaio.Queue
function aio.priority_queue(maxsize, less) end

---A semaphore with `n` permits (default 1).
---@param n? integer
---@return luaio.Semaphore
function aio.semaphore(n) end

---A semaphore that raises on a release beyond its initial value.
---@param n? integer
---@return luaio.Semaphore
function aio.bounded_semaphore(n) end

---A lock: a bounded semaphore of 1.
---@return luaio.Semaphore
function aio.lock() end

---An event, initially clear.
---@return luaio.Event
function aio.event() end

---Waits on several queues at once; exactly one case fires. Returns its
---index and, for a get, the item; `which, nil, "closed"` for a closed
---queue; `nil, "timeout"` when `timeout` seconds pass first (0 polls).
---Ready cases are chosen among uniformly at random.
---@async
---@param cases ({get: luaio.Queue}|{put: luaio.Queue, value: any})[]
---@param timeout? number seconds, >= 0
---@return integer? which
---@return any value
---@return "closed"|nil closed
function aio.select(cases, timeout) end

---A new pending future.
---@return luaio.Future
function aio.future() end

---A condition variable, on `lock` or a new one.
---@param lock? luaio.Semaphore
---@return luaio.Condition
function aio.condition(lock) end

---At most `n` acquisitions in any span of `per_seconds` (default 1),
---sliding; with a burst, a token bucket of `n / per_seconds` a second
---and bursts up to `burst`; with `key = true`, one such limit per key.
---@param n number > 0, at most 2^53 (whole without a burst)
---@param per_seconds? number finite, > 0
---@param opts? number|{burst?: number, key?: boolean} a burst (from 1 to 2^53), or options
---@return luaio.RateLimiter
function aio.rate_limiter(n, per_seconds, opts) end

---Watches a signal by name (`"SIGHUP"` or `"HUP"`). While a watcher of
---SIGINT or SIGTERM is open, the signal is the script's alone.
---@param name string
---@return luaio.Signal
function aio.signal(name) end

---Runs `fn(...)` on a worker thread in a Lua state of its own and returns
---its results; only the calling task waits. Arguments and results are
---copied (nil, booleans, numbers, strings, tables of these). A worker's
---error is raised as kind `"thread"` with the worker's traceback.
---@async
---@param fn function|string an upvalue-free Lua function or "module.name"
---@param ... nil|boolean|number|string|table copied to the worker
---@return ... the results, copied back
function aio.to_thread(fn, ...) end

---A pool of `size` worker states with their own package paths.
---@param opts? luaio.WorkerPoolOptions
---@return luaio.WorkerPool
function aio.worker_pool(opts) end

return aio
