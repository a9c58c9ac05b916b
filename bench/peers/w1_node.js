// W1: N async tasks each yielding once (setImmediate) and returning i.
const N = +process.argv[2] || 100000;
const tick = () => new Promise(r => setImmediate(r));
async function task(k) { await tick(); return k; }
(async () => {
  const t0 = process.hrtime.bigint();
  const ts = []; for (let i = 0; i < N; i++) ts.push(task(i));
  let s = 0; for (const t of ts) s += await t;
  if (s !== N * (N - 1) / 2) process.exit(1);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`W1 node ${(N / dt).toFixed(0)} tasks/s`);
})();
