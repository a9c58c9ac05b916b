// W7: processes and worker threads (see bench/w7_proc.lua).
// usage: node w7_node.js spawn|thread|cpu N C
const { spawn } = require('child_process');
const { Worker } = require('worker_threads');
const [mode, N, C] = [process.argv[2], +process.argv[3], +process.argv[4]];

const WORKER = `
const { parentPort } = require('worker_threads');
function fnv(len, seed) {
  const s = Buffer.alloc(len, seed % 256);
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s[i], 16777619) >>> 0;
  return h;
}
parentPort.on('message', ([id, op, a, b]) =>
  parentPort.postMessage([id, op === 'inc' ? a + 1 : fnv(a, b)]));
`;

// A pool of n workers; run(op, a, b) resolves with the worker's answer.
function pool(n) {
  const workers = [], waiting = new Map();
  let next = 0, id = 0;
  for (let i = 0; i < n; i++) {
    const w = new Worker(WORKER, { eval: true });
    w.on('message', ([k, r]) => { waiting.get(k)(r); waiting.delete(k); });
    workers.push(w);
  }
  return {
    run: (op, a, b) => new Promise(res => {
      const k = id++; waiting.set(k, res);
      workers[next++ % n].postMessage([k, op, a, b]);
    }),
    close: () => workers.forEach(w => w.terminate()),
  };
}

async function fanout(n, c, job) {
  let i = 0;
  const lanes = [];
  for (let l = 0; l < c; l++)
    lanes.push((async () => { while (i < n) await job(i++); })());
  await Promise.all(lanes);
}

(async () => {
  const t0 = process.hrtime.bigint();
  let p;
  if (mode === 'spawn') {
    await fanout(N, C, () => new Promise((res, rej) =>
      spawn('true').on('exit', code => code === 0 ? res() : rej(code))));
  } else {
    // to_thread's default pool has 4 states; the CPU run uses C.
    p = pool(mode === 'thread' ? 4 : C);
    await fanout(N, C, async i => {
      const r = await p.run(mode === 'thread' ? 'inc' : 'fnv', mode === 'thread' ? i : 256 * 1024, i);
      if (mode === 'thread' && r !== i + 1) process.exit(1);
    });
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (p) p.close();
  const unit = { spawn: 'spawns', thread: 'calls', cpu: 'jobs' }[mode];
  const w = { spawn: 'W7a', thread: 'W7b', cpu: 'W7c' }[mode];
  console.log(`${w} node ${(N / dt).toFixed(0)} ${unit}/s`);
})();
