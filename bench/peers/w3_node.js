// W3: bounded queue (100), 1 producer, 4 consumers, N items.
const N = +process.argv[2] || 1000000;
class Queue {
  constructor(max) { this.max = max; this.items = []; this.getters = []; this.putters = []; }
  async put(x) {
    while (this.items.length >= this.max) await new Promise(r => this.putters.push(r));
    this.items.push(x); const g = this.getters.shift(); if (g) g();
  }
  async get() {
    while (this.items.length === 0) await new Promise(r => this.getters.push(r));
    const x = this.items.shift(); const p = this.putters.shift(); if (p) p(); return x;
  }
}
(async () => {
  const q = new Queue(100); let total = 0;
  const t0 = process.hrtime.bigint();
  const consumer = async () => { for (;;) { const x = await q.get(); if (x === null) return; total += x; } };
  const cs = [consumer(), consumer(), consumer(), consumer()];
  for (let i = 1; i <= N; i++) await q.put(i);
  for (let i = 0; i < 4; i++) await q.put(null);
  await Promise.all(cs);
  if (total !== N * (N + 1) / 2) process.exit(1);
  console.log(`W3 node ${(N / (Number(process.hrtime.bigint() - t0) / 1e9)).toFixed(0)} items/s`);
})();
