// The npm `eventsource` client with credentials in headers (its `fetch` option): a bearer token
// or a cookie, as a Node client would send them.
// Usage: node sse_auth.mjs URL HEADER_NAME HEADER_PREFIX TOKEN
// Every (re)connection sends `HEADER_NAME: HEADER_PREFIX + token`; command {op:'token', token}
// replaces the token for the next reconnection, {op:'close'} closes and exits.  Prints
// {kind:'fetch'}, {kind:'open'}, {kind:'error', message, code} (code: the HTTP status of a
// refused connection), {kind:'event', type, data} for messages and `disconnect` events.
import { EventSource } from 'eventsource';
import { commands, deadline, out } from './lib.mjs';

deadline(40000);
const [url, headerName, prefix, firstToken] = process.argv.slice(2);
let token = firstToken;

const es = new EventSource(url, {
  fetch: (input, init) => {
    out({ kind: 'fetch' });
    return fetch(input, { ...init, headers: { ...init.headers, [headerName]: prefix + token } });
  },
});
es.onopen = () => out({ kind: 'open' });
es.onerror = (err) => out({ kind: 'error', message: err.message ?? null, code: err.code ?? null,
                            closed: es.readyState === EventSource.CLOSED });
const report = (event) => out({ kind: 'event', type: event.type, data: event.data });
es.onmessage = report;
es.addEventListener('disconnect', report);

commands((cmd) => {
  if (cmd.op === 'token') {
    token = cmd.token;
    out({ kind: 'token' });
    return;
  }
  if (cmd.op !== 'close') throw new Error(`unknown command ${JSON.stringify(cmd)}`);
  es.close();
  out({ kind: 'closed' });
  process.exit(0);
});
