// SPDX-License-Identifier: MIT (see LICENSE)
// bench/redis.sh, Node: ioredis (auto-pipelining on), SET then GET of
// 100-byte values from C concurrent async loops on one connection.
// node node_setget.js URL [ops] [tasks]
const Redis = require("ioredis");
const [url, ops = 200000, conc = 100] = process.argv.slice(2);
const r = new Redis(url, { enableAutoPipelining: true });
const value = "v".repeat(100);
const per = Math.floor(ops / (2 * conc));
async function worker(c) {
  for (let i = 0; i < per; i++) {
    const key = `key:${c}:${i % 100}`;
    await r.set(key, value);
    if ((await r.get(key)).length !== 100) throw new Error("bad value");
  }
}
(async () => {
  const t0 = process.hrtime.bigint();
  const ws = [];
  for (let c = 0; c < conc; c++) ws.push(worker(c));
  await Promise.all(ws);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log((per * conc * 2 / s).toFixed(0));
  r.disconnect();
})();
