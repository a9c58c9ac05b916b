# W6: one process: asyncio line echo server and CONNS clients, LINES
# lines each, ping-pong. usage: w6_py.py [CONNS] [LINES] [uvloop]
import asyncio, sys, time
CONNS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
LINES = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
if len(sys.argv) > 3 and sys.argv[3] == "uvloop":
    import uvloop; uvloop.install()
async def handle(r, w):
    while line := await r.readline():
        w.write(line); await w.drain()
    w.close()
async def client(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    for i in range(LINES):
        msg = b"line %d\n" % i
        w.write(msg); await w.drain()
        assert await r.readline() == msg
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = srv.sockets[0].getsockname()[1]
    t0 = time.perf_counter()
    await asyncio.gather(*[client(port) for _ in range(CONNS)])
    dt = time.perf_counter() - t0
    srv.close()
    return dt
print(f"W6 {'uvloop' if len(sys.argv) > 3 else 'asyncio'} {CONNS * LINES / asyncio.run(main()):.0f} msg/s")
