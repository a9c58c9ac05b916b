# W4: TOTAL GETs of URL with CONC in flight with aiohttp (keep-alive).
# usage: w4_aiohttp.py URL TOTAL CONC [uvloop]
import asyncio, sys, time
import aiohttp
URL, TOTAL, CONC = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if len(sys.argv) > 4 and sys.argv[4] == "uvloop":
    import uvloop; uvloop.install()
async def main():
    ok, nxt = 0, 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONC)) as s:
        async def worker():
            nonlocal ok, nxt
            while nxt < TOTAL:
                nxt += 1
                async with s.get(URL) as r:
                    await r.read()
                    ok += r.status == 200
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(CONC)])
        dt = time.perf_counter() - t0
    assert ok == TOTAL
    return dt
dt = asyncio.run(main())
print(f"W4 aiohttp{'-uvloop' if len(sys.argv) > 4 else ''} {TOTAL / dt:.0f} req/s wall_s={dt:.3f}")
