// A ws subscriber (format=json) that stops reading on command, to be a slow consumer.
// Usage: node ws_slow.mjs ws://127.0.0.1:PORT CHANNEL
// Commands: {op:'pause'} stops reading the TCP socket, {op:'resume'} reads again,
//           {op:'reconnect', since} opens a new socket with since=<cursor>,
//           {op:'until', seq} prints {kind:'reached'} once publication seq has arrived.
// Prints {kind:'ready'} per connection, and per closed connection
// {kind:'close', code, reason, seqs, cursor}: the `seq` of every publication it received and
// the last cursor seen.
import WebSocket from 'ws';
import { commands, deadline, out } from './lib.mjs';

deadline(60000);
const [base, channel] = process.argv.slice(2);
let socket = null;
let ws = null;
let seqs = [];
let cursor = null;
let target = null;

function connect(since) {
  let url = `${base}/ws?channel=${encodeURIComponent(channel)}&format=json`;
  if (since) url += `&since=${encodeURIComponent(since)}`;
  seqs = [];
  ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('upgrade', (res) => { socket = res.socket; });
  ws.on('open', () => out({ kind: 'ready' }));
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString('utf8'));
    if (frame.cursor) cursor = frame.cursor;
    if (frame.type !== 'pub') return;
    seqs.push(frame.data.seq);
    if (target !== null && frame.data.seq >= target) {
      target = null;
      out({ kind: 'reached', seqs, cursor });
    }
  });
  ws.on('close', (code, reason) => {
    out({ kind: 'close', code, reason: reason.toString(), seqs, cursor });
  });
}

connect(null);
commands((cmd) => {
  if (cmd.op === 'pause') { socket.pause(); out({ kind: 'paused' }); }
  else if (cmd.op === 'resume') socket.resume();
  else if (cmd.op === 'reconnect') connect(cmd.since);
  else if (cmd.op === 'until') target = cmd.seq;
  else if (cmd.op === 'exit') process.exit(0);
  else throw new Error(`unknown command ${JSON.stringify(cmd)}`);
});
