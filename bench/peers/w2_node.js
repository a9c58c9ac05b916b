// W2: N promises each sleeping 1 s at once.
const N = +process.argv[2] || 100000;
const sleep = ms => new Promise(r => setTimeout(r, ms));
(async () => {
  const t0 = process.hrtime.bigint();
  const ps = []; for (let i = 0; i < N; i++) ps.push(sleep(1000));
  await Promise.all(ps);
  console.log(`W2 node ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3)} s`);
})();
