// W9 peer: Node's http module, same two endpoints. node w9_node.js PORT
const http = require('http');
const items = [];
for (let i = 1; i <= 16; i++) {
  items.push({id: i, name: 'item number ' + i, price: i * 1.25,
              tags: ['alpha', 'beta', 'gamma'], active: i % 2 === 0,
              description: 'a short description of item ' + i});
}
const doc = {items, count: items.length, page: 1};
http.createServer((req, res) => {
  if (req.url === '/hello') {
    res.writeHead(200, {'Content-Type': 'text/plain'});
    res.end('Hello, world!');
  } else if (req.url === '/json') {
    const body = JSON.stringify(doc);
    res.writeHead(200, {'Content-Type': 'application/json'});
    res.end(body);
  } else { res.writeHead(404); res.end(); }
}).listen(+process.argv[2], '127.0.0.1', () => console.log('ready'));
