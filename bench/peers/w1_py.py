# W1: N tasks each yielding once (sleep(0)) and returning its index.
# usage: w1_py.py [N] [uvloop]
import asyncio, sys, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
    import uvloop; uvloop.install()
async def task(k):
    await asyncio.sleep(0)
    return k
async def main():
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(task(i)) for i in range(N)]
    s = 0
    for t in tasks: s += await t
    assert s == N * (N - 1) // 2
    return time.perf_counter() - t0
dt = asyncio.run(main())
print(f"W1 {'uvloop' if len(sys.argv) > 2 else 'asyncio'} {N / dt:.0f} tasks/s")
