// Opens COUNT authenticated WebSockets to a Kizuna server and holds them
// idle until stdin closes or SIGTERM. Prints "ready N" once all are open.
// (CommonJS so NODE_PATH can point at the e2e suite's node_modules for 'ws'.)
// Usage: node idle_clients.cjs PORT COUNT TOKEN
const WebSocket = require('ws');

const [port, count, token] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const sockets = [];
let open = 0;
let failed = 0;
const url = `ws://127.0.0.1:${port}/ws?status=false&token=${encodeURIComponent(token)}`;

function connect() {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('open', () => { open++; resolve(); });
    ws.on('error', () => { failed++; resolve(); });
    ws.on('close', () => {});
    sockets.push(ws);
  });
}

// Open in waves so the listen backlog is never the limit.
(async () => {
  for (let i = 0; i < count; i += 200) {
    const wave = [];
    for (let j = i; j < Math.min(count, i + 200); j++) wave.push(connect());
    await Promise.all(wave);
  }
  console.log(`ready ${open} failed ${failed}`);
})();
const quit = () => { for (const ws of sockets) ws.terminate(); process.exit(0); };
process.on('SIGTERM', quit);
process.stdin.on('end', quit);
process.stdin.resume();
