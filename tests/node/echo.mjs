// ws client against /echo: text, a 70 KB text, binary; with and without permessage-deflate.
// Usage: node echo.mjs ws://127.0.0.1:PORT/echo
// Prints one line per reply: {kind: 'reply', mode, name, binary, bytes, sha256, text?, wire}
// where `wire` is the number of bytes the reply took on the TCP socket.
import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { deadline, once, out } from './lib.mjs';

deadline(20000);
const url = process.argv[2];

// The 70 KB text is reproducible in Python: letters a-z cycling, then a multi-byte tail.
const BIG_ASCII = 70 * 1024;
const bigText = Array.from({ length: BIG_ASCII }, (_, i) => String.fromCharCode(97 + (i % 26)))
  .join('') + ' h\u00e9llo \u2713 \ud83d\ude00';

const randomBinary = randomBytes(4096);
const cases = [
  { name: 'hello', payload: 'Hello Server!' },
  { name: 'big', payload: bigText },
  { name: 'small-compressible', payload: 'x'.repeat(200) },
  { name: 'binary-random', payload: randomBinary },
  { name: 'binary-compressible', payload: Buffer.alloc(3000, 7) },
];

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function run(mode, deflate) {
  const ws = new WebSocket(url, { perMessageDeflate: deflate });
  const upgraded = once(ws, 'upgrade');
  const opened = once(ws, 'open');  // emitted in the same tick as 'upgrade'
  const [response] = await upgraded;
  await opened;
  const socket = response.socket;
  out({ kind: 'open', mode, extensions: ws.extensions,
        header: response.headers['sec-websocket-extensions'] ?? null });
  for (const { name, payload } of cases) {
    const before = socket.bytesRead;
    const reply = once(ws, 'message');
    ws.send(payload);
    const [data, isBinary] = await reply;
    const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    const line = { kind: 'reply', mode, name, binary: isBinary, bytes: buf.length,
                   sha256: sha256(buf), wire: socket.bytesRead - before };
    if (isBinary) line.sentSha256 = sha256(payload);
    else if (buf.length < 300) line.text = buf.toString('utf8');
    out(line);
  }
  // A fragmented message with a ping between its fragments (RFC 6455 §5.4, §5.5).
  const reply = once(ws, 'message');
  const pong = once(ws, 'pong');
  ws.send('Hello ', { fin: false });
  ws.ping('between fragments');
  ws.send('fragmented \u00e9', { fin: false });
  ws.send(' Server!', { fin: true });
  const [[pongData], [data]] = await Promise.all([pong, reply]);
  out({ kind: 'fragmented', mode, text: data.toString('utf8'), pong: pongData.toString() });
  const closed = once(ws, 'close');
  ws.close(1000, 'done');
  const [code, reason] = await closed;
  out({ kind: 'close', mode, code, reason: reason.toString() });
}

await run('plain', false);
// ws's defaults: the client compresses messages over 1 KB, with context takeover.
await run('deflate', { threshold: 1024 });
// Every parameter of RFC 7692 §7.1 offered: small windows, no context takeover either way,
// and the client compresses every message, even 'Hello Server!'.
await run('deflate-params', { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 10,
                              serverNoContextTakeover: true, clientNoContextTakeover: true });
out({ kind: 'done' });
