// The npm `eventsource` client on an SSE URL, reporting everything it sees.
// Usage: node sse_client.mjs URL [EVENT_NAME ...]
// Prints {kind:'fetch', lastEventId} for every (re)connection request (the Last-Event-ID header
// it sent, or null), {kind:'open'}, {kind:'error', message, code}, and
// {kind:'event', type, data, id} for default messages, the named events given as arguments and
// the server's own `reset` and `disconnect` events.  Command {op:'close'} closes and exits.
import { EventSource } from 'eventsource';
import { commands, deadline, out } from './lib.mjs';

deadline(40000);
const [url, ...names] = process.argv.slice(2);

const es = new EventSource(url, {
  fetch: (input, init) => {
    const headers = init.headers ?? {};
    out({ kind: 'fetch', url: String(input), lastEventId: headers['Last-Event-ID'] ?? null });
    return fetch(input, init);
  },
});
es.onopen = () => out({ kind: 'open' });
es.onerror = (err) => out({ kind: 'error', message: err.message ?? null, code: err.code ?? null });
const report = (event) => out({ kind: 'event', type: event.type, data: event.data,
                                id: event.lastEventId });
es.onmessage = report;
for (const name of new Set([...names, 'reset', 'disconnect'])) es.addEventListener(name, report);

commands((cmd) => {
  if (cmd.op !== 'close') throw new Error(`unknown command ${JSON.stringify(cmd)}`);
  es.close();
  out({ kind: 'closed' });
  process.exit(0);
});
