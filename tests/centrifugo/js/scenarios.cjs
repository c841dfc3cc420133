// centrifuge-js scenarios driven by tests/centrifugo/test_js_sdk.py.
// Usage: node scenarios.cjs <scenario> '<json args>'; prints one JSON line with the results,
// exits non-zero on failure.  Every wait is bounded.
'use strict';

const crypto = require('crypto');
const { Centrifuge } = require('centrifuge');
const WebSocket = require('ws');
const EventSource = require('eventsource');

const scenario = process.argv[2];
const args = JSON.parse(process.argv[3] || '{}');
const base = args.base; // http://127.0.0.1:port
const wsBase = base.replace('http', 'ws');

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// HS256 JWT signed with the test secret (what an application backend would do).
function sign(claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', args.secret).update(head + '.' + body).digest();
  return head + '.' + body + '.' + b64url(sig);
}

function connToken(user, ttl = 3600, extra = {}) {
  return sign({ sub: user, exp: Math.floor(Date.now() / 1000) + ttl, ...extra });
}

function endpoints(transport) {
  if (transport === 'websocket') return wsBase + '/connection/websocket';
  return base + '/connection/' + transport;
}

function client(transport, options = {}) {
  const opts = { websocket: WebSocket, eventsource: EventSource, emulationEndpoint: base + '/emulation', timeout: 5000, ...options };
  let target = transport;
  if (!Array.isArray(transport)) {
    target = transport === 'websocket' ? endpoints(transport) : [{ transport, endpoint: endpoints(transport) }];
  }
  return new Centrifuge(target, opts);
}

function waitFor(emitter, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout waiting for ' + event)), timeoutMs);
    emitter.once(event, (ctx) => { clearTimeout(timer); resolve(ctx); });
  });
}

function collect(emitter, event) {
  const items = [];
  const waiters = [];
  emitter.on(event, (ctx) => {
    items.push(ctx);
    for (const w of waiters.splice(0)) w();
  });
  items.next = async function (count, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (items.length < count) {
      if (Date.now() > deadline) throw new Error(`timeout: ${items.length}/${count} ${event}`);
      await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
    }
    return items.slice(0, count);
  };
  return items;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const scenarios = {
  // connect, subscribe, publish, receive, presence, presence stats, history over one transport
  async basic() {
    const c = client(args.transport, { token: connToken('js-' + args.transport, 3600, { info: { t: args.transport } }) });
    const connected = waitFor(c, 'connected');
    c.connect();
    const ctx = await connected;
    const sub = c.newSubscription(args.channel);
    const pubs = collect(sub, 'publication');
    const joins = collect(sub, 'join');
    const subscribed = waitFor(sub, 'subscribed');
    sub.subscribe();
    const sctx = await subscribed;
    await sub.publish({ from: 'js', transport: args.transport });
    await pubs.next(1);
    const presence = await sub.presence();
    const stats = await sub.presenceStats();
    const history = await sub.history({ limit: 10 });
    await joins.next(1);
    c.disconnect();
    return {
      transport: ctx.transport, client: ctx.client, recoverable: sctx.recoverable,
      pub: pubs[0].data, offset: pubs[0].offset, publisher: pubs[0].info && pubs[0].info.user,
      presence: Object.values(presence.clients).map((i) => [i.user, i.connInfo]),
      stats: [stats.numClients, stats.numUsers],
      history: history.publications.map((p) => p.data), join: joins[0].info.user,
    };
  },

  // websocket refused (404 on the upgrade) -> the SDK falls back to the next transport
  async fallback() {
    const transports = [
      { transport: 'websocket', endpoint: wsBase + '/connection/refused' },
      ...args.fallbacks.map((t) => ({ transport: t, endpoint: endpoints(t) })),
    ];
    const c = client(transports, { token: connToken('fallback') });
    const connected = waitFor(c, 'connected', 15000);
    c.connect();
    const ctx = await connected;
    const sub = c.newSubscription(args.channel);
    const pubs = collect(sub, 'publication');
    const subscribed = waitFor(sub, 'subscribed');
    sub.subscribe();
    await subscribed;
    await sub.publish('via ' + ctx.transport);
    await pubs.next(1);
    c.disconnect();
    return { transport: ctx.transport, pub: pubs[0].data };
  },

  // connection token with a short ttl is refreshed in-band; private channel with a
  // subscription token; a private channel without one is refused with 103
  async auth() {
    let refreshes = 0;
    const c = client(args.transport, {
      token: connToken('carol', 2),
      getToken: async () => { refreshes += 1; return connToken('carol', 3600); },
    });
    const disconnects = collect(c, 'disconnected');
    const connected = waitFor(c, 'connected');
    c.connect();
    const first = await connected;
    const priv = c.newSubscription('private:carol', {
      getToken: async (ctx) => sign({ sub: 'carol', channel: ctx.channel, exp: Math.floor(Date.now() / 1000) + 3600 }),
    });
    const privSubscribed = waitFor(priv, 'subscribed');
    priv.subscribe();
    await privSubscribed;
    const denied = c.newSubscription('private:dave');
    const deniedUnsubscribed = waitFor(denied, 'unsubscribed');
    denied.subscribe();
    const err = await deniedUnsubscribed; // a permanent error unsubscribes with its code
    await sleep(3500); // past the first token's exp: refreshed in-band, never disconnected
    const stillConnected = c.state;
    const pubs = collect(priv, 'publication');
    await priv.publish({ secret: true });
    await pubs.next(1);
    const unexpected = disconnects.map((d) => [d.code, d.reason]);
    c.disconnect();
    return { client: first.client, refreshes, state: stillConnected, disconnects: unexpected,
      deniedCode: err.code, privatePub: pubs[0].data };
  },

  // join and leave pushes between two clients
  async joinleave() {
    const a = client(args.transport, { token: connToken('anna') });
    const b = client(args.transport, { token: connToken('ben') });
    a.connect(); b.connect();
    await Promise.all([waitFor(a, 'connected'), waitFor(b, 'connected')]);
    const sa = a.newSubscription(args.channel, { joinLeave: true });
    const joins = collect(sa, 'join');
    const leaves = collect(sa, 'leave');
    const aSubscribed = waitFor(sa, 'subscribed');
    sa.subscribe();
    await aSubscribed;
    const sb = b.newSubscription(args.channel);
    const bSubscribed = waitFor(sb, 'subscribed');
    sb.subscribe();
    await bSubscribed;
    await joins.next(2);
    b.disconnect();
    await leaves.next(1);
    a.disconnect();
    return { joins: joins.map((j) => j.info.user), leaves: leaves.map((l) => l.info.user) };
  },

  // the server drops the connection (force reconnect); publications made meanwhile are
  // recovered on resubscribe, exactly once and in order
  async recover() {
    const api = (method, body) => fetch(base + '/api/' + method, {
      method: 'POST', headers: { 'X-API-Key': args.apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    }).then((r) => r.json());
    const c = client(args.transport, { token: connToken('rec'), minReconnectDelay: 1000, maxReconnectDelay: 1500 });
    const sub = c.newSubscription(args.channel);
    const pubs = collect(sub, 'publication');
    const subscribed = collect(sub, 'subscribed');
    c.connect();
    sub.subscribe();
    await subscribed.next(1);
    await api('publish', { channel: args.channel, data: 'before' });
    await pubs.next(1);
    const connecting = waitFor(c, 'connecting');
    await api('disconnect', { user: 'rec', disconnect: { code: 3011, reason: 'force reconnect' } });
    const dropped = await connecting;
    for (const word of ['missed1', 'missed2', 'missed3']) {
      await api('publish', { channel: args.channel, data: word });
    }
    const [, again] = await subscribed.next(2, 10000);
    await api('publish', { channel: args.channel, data: 'live' });
    await pubs.next(5);
    c.disconnect();
    return { code: dropped.code, wasRecovering: again.wasRecovering, recovered: again.recovered,
      pubs: pubs.map((p) => [p.data, p.offset]) };
  },

  // centrifuge-js <-> plain EventSource on /events and raw WebSocket on /ws, same channel
  async mixed() {
    const ch = args.channel;
    const es = new EventSource(base + '/events?channel=' + encodeURIComponent(ch));
    const esMessages = [];
    es.onmessage = (e) => esMessages.push(e.data);
    await new Promise((resolve, reject) => { es.onopen = resolve; setTimeout(() => reject(new Error('es open')), 5000); });
    const raw = new WebSocket(wsBase + '/ws?channel=' + encodeURIComponent(ch));
    const rawMessages = [];
    raw.on('message', (data) => rawMessages.push(data.toString()));
    await new Promise((resolve, reject) => { raw.on('open', resolve); raw.on('error', reject); });
    const c = client(args.transport, { token: connToken('mixer') });
    c.connect();
    await waitFor(c, 'connected');
    const sub = c.newSubscription(ch);
    const pubs = collect(sub, 'publication');
    const subscribed = waitFor(sub, 'subscribed');
    sub.subscribe();
    await subscribed;
    await sleep(100); // let the plain subscriptions settle
    await sub.publish({ from: 'centrifuge-js' });
    raw.send('from raw websocket');
    await pubs.next(2);
    const deadline = Date.now() + 5000;
    while ((esMessages.length < 2 || rawMessages.length < 2) && Date.now() < deadline) await sleep(50);
    es.close(); raw.close(); c.disconnect();
    return { centrifuge: pubs.map((p) => p.data), eventsource: esMessages, raw: rawMessages };
  },
};

(async () => {
  const timer = setTimeout(() => { console.error('scenario timeout'); process.exit(3); }, args.timeoutMs || 30000);
  try {
    const result = await scenarios[scenario]();
    console.log(JSON.stringify(result));
    clearTimeout(timer);
    process.exit(0);
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(1);
  }
})();
