// ws clients subscribed to one channel over /ws, driven by JSON commands on stdin.
// Usage: node ws_channel.mjs ws://127.0.0.1:PORT CHANNEL COUNT [QUERY]
// Prints {kind:'ready'} once all COUNT sockets are open, {kind:'message', index, binary, data}
// per message (binary data in base64), {kind:'close', index, code, reason} per closed socket,
// and exits once every socket is closed.
// Commands: {op:'send', index, items:[{text}|{b64}, ...]} sends the items back to back;
//           {op:'close', code?} closes every socket.
import WebSocket from 'ws';
import { commands, deadline, out } from './lib.mjs';

deadline(30000);
const [base, channel, count, query = ''] = process.argv.slice(2);
const url = `${base}/ws?channel=${encodeURIComponent(channel)}${query}`;
const sockets = [];
let open = 0;
let closed = 0;

for (let index = 0; index < Number(count); index++) {
  const ws = new WebSocket(url);
  sockets.push(ws);
  ws.on('open', () => { if (++open === sockets.length) out({ kind: 'ready' }); });
  ws.on('message', (data, binary) => {
    out({ kind: 'message', index, binary, data: data.toString(binary ? 'base64' : 'utf8') });
  });
  ws.on('unexpected-response', (req, res) => {
    out({ kind: 'refused', index, status: res.statusCode });
    process.exit(0);
  });
  ws.on('close', (code, reason) => {
    out({ kind: 'close', index, code, reason: reason.toString() });
    if (++closed === sockets.length) process.exit(0);
  });
}

commands((cmd) => {
  if (cmd.op === 'send') {
    const ws = sockets[cmd.index];
    for (const item of cmd.items) {
      ws.send(item.b64 !== undefined ? Buffer.from(item.b64, 'base64') : item.text);
    }
  } else if (cmd.op === 'close') {
    for (const ws of sockets) ws.close(cmd.code ?? 1000);
  } else {
    throw new Error(`unknown command ${JSON.stringify(cmd)}`);
  }
});
