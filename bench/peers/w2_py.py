# W2: N tasks each sleeping 1 s at once. usage: w2_py.py [N] [uvloop]
import asyncio, sys, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
    import uvloop; uvloop.install()
async def main():
    t0 = time.perf_counter()
    await asyncio.gather(*[asyncio.sleep(1) for _ in range(N)])
    return time.perf_counter() - t0
print(f"W2 {'uvloop' if len(sys.argv) > 2 else 'asyncio'} {asyncio.run(main()):.3f} s")
