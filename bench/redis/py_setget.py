# SPDX-License-Identifier: MIT (see LICENSE)
# bench/redis.sh, Python: redis.asyncio (python3-redis), SET then GET of
# 100-byte values from C concurrent tasks on one client (its pool).
# python3 py_setget.py URL [ops] [tasks]
import asyncio, sys, time
import redis.asyncio as aioredis

async def main(url, ops, conc):
    r = aioredis.from_url(url)
    value = b"v" * 100
    per = ops // (2 * conc)
    async def worker(c):
        for i in range(per):
            key = f"key:{c}:{i % 100}"
            await r.set(key, value)
            assert len(await r.get(key)) == 100
    t0 = time.monotonic()
    await asyncio.gather(*(worker(c) for c in range(conc)))
    print(f"{per * conc * 2 / (time.monotonic() - t0):.0f}")
    await r.aclose() if hasattr(r, "aclose") else await r.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200000,
                 int(sys.argv[3]) if len(sys.argv) > 3 else 100))
