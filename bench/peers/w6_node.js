// W6: one process: a line echo server and CONNS clients, LINES lines
// each, each waiting for its echo.
const net = require('net');
const CONNS = +process.argv[2] || 100, LINES = +process.argv[3] || 10000;
const server = net.createServer(s => {
  s.setNoDelay(true); let buf = '';
  s.on('data', d => { buf += d; const i = buf.lastIndexOf('\n');
    if (i >= 0) { s.write(buf.slice(0, i + 1)); buf = buf.slice(i + 1); } });
  s.on('error', () => {});
});
server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port, t0 = process.hrtime.bigint();
  await Promise.all(Array.from({length: CONNS}, () => new Promise(done => {
    const c = net.connect(port, '127.0.0.1'); c.setNoDelay(true);
    let n = 0, buf = '';
    c.on('connect', () => c.write(`line ${n}\n`));
    c.on('data', d => { buf += d; if (buf.endsWith('\n')) { buf = '';
      if (++n < LINES) c.write(`line ${n}\n`); else { c.end(); done(); } } });
  })));
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`W6 node ${(CONNS * LINES / dt).toFixed(0)} msg/s`);
  server.close();
});
