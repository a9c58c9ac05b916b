# W7: processes and worker threads (see bench/w7_proc.lua).
# usage: w7_py.py spawn|thread|cpu N C
import asyncio, sys, time
from concurrent.futures import ThreadPoolExecutor
mode, N, C = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def fnv(length, seed):
    s = bytes([seed % 256]) * length
    h = 2166136261
    for b in s:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h

async def fanout(n, c, job):
    sem = asyncio.Semaphore(c)
    async def one(i):
        async with sem:
            return await job(i)
    await asyncio.gather(*(one(i) for i in range(n)))

async def main():
    t0 = time.perf_counter()
    if mode == "spawn":
        async def job(i):
            p = await asyncio.create_subprocess_exec("true")
            assert await p.wait() == 0
    elif mode == "thread":
        async def job(i):
            assert await asyncio.to_thread(lambda x: x + 1, i) == i + 1
    else:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(C)
        async def job(i):
            return await loop.run_in_executor(pool, fnv, 256 * 1024, i)
    await fanout(N, C, job)
    return time.perf_counter() - t0

dt = asyncio.run(main())
unit = {"spawn": "spawns", "thread": "calls", "cpu": "jobs"}[mode]
w = {"spawn": "W7a", "thread": "W7b", "cpu": "W7c"}[mode]
print(f"{w} asyncio {N / dt:.0f} {unit}/s")
