// W4: TOTAL GETs of URL with CONC in flight, keep-alive agent.
const http = require('http');
const [url, TOTAL, CONC] = [process.argv[2], +process.argv[3] || 20000, +process.argv[4] || 100];
const agent = new http.Agent({keepAlive: true, maxSockets: CONC});
let next = 0, ok = 0;
const get = () => new Promise((res, rej) => http.get(url, {agent}, r => {
  r.on('data', () => {}); r.on('end', () => { if (r.statusCode === 200) ok++; res(); });
}).on('error', rej));
(async () => {
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({length: CONC}, async () => { while (next++ < TOTAL) await get(); }));
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (ok !== TOTAL) process.exit(1);
  console.log(`W4 node ${(TOTAL / dt).toFixed(0)} req/s wall_s=${dt.toFixed(3)}`);
  agent.destroy();
})();
