# W3: bounded queue (100), 1 producer, 4 consumers, N items.
# usage: w3_py.py [N] [uvloop]
import asyncio, sys, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
    import uvloop; uvloop.install()
async def main():
    q = asyncio.Queue(100)
    total = 0
    async def consumer():
        nonlocal total
        while (x := await q.get()) is not None: total += x
    t0 = time.perf_counter()
    cs = [asyncio.create_task(consumer()) for _ in range(4)]
    for i in range(1, N + 1): await q.put(i)
    for _ in cs: await q.put(None)
    await asyncio.gather(*cs)
    assert total == N * (N + 1) // 2
    return time.perf_counter() - t0
print(f"W3 {'uvloop' if len(sys.argv) > 2 else 'asyncio'} {N / asyncio.run(main()):.0f} items/s")
