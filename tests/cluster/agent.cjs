// A centrifuge-js agent for the cluster tests, driven over stdin/stdout by tests/cluster/cf.py.
//
// Usage: node agent.cjs <node_modules dir>  (the npm packages of tests/centrifugo/js).
// Each stdin line is a JSON request {"id": n, "op": ..., ...}; each stdout line is either the
// answer {"id": n, "result": ...} / {"id": n, "error": "..."} or an event
// {"event": ..., "client": name, ...} of a client or one of its subscriptions.
// The agent exits when stdin closes (so a test that fails never leaves it behind).
'use strict';

const path = require('path');
const readline = require('readline');

const modules = process.argv[2];
const { Centrifuge } = require(path.join(modules, 'centrifuge'));
const WebSocket = require(path.join(modules, 'ws'));
const EventSource = require(path.join(modules, 'eventsource'));

const clients = new Map();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function info(i) {
  return i ? { user: i.user, client: i.client } : null;
}

const ops = {
  // {name, transport: websocket|http_stream|sse, endpoint, emulationEndpoint?, token, ...options}
  connect(req) {
    const { name, transport, endpoint, token, options } = req;
    const target = transport === 'websocket' ? endpoint : [{ transport, endpoint }];
    const c = new Centrifuge(target, {
      websocket: WebSocket, eventsource: EventSource, token, timeout: 5000,
      emulationEndpoint: req.emulationEndpoint, minReconnectDelay: 300, maxReconnectDelay: 1000,
      ...(options || {}),
    });
    clients.set(name, c);
    c.on('connected', (ctx) => emit({ event: 'connected', client: name, id: ctx.client, transport: ctx.transport }));
    c.on('connecting', (ctx) => emit({ event: 'connecting', client: name, code: ctx.code }));
    c.on('disconnected', (ctx) => emit({ event: 'disconnected', client: name, code: ctx.code }));
    c.on('error', (ctx) => emit({ event: 'error', client: name, message: String(ctx.error && ctx.error.message) }));
    c.on('subscribed', (ctx) => emit({ event: 'server_subscribed', client: name, channel: ctx.channel }));
    c.on('unsubscribed', (ctx) => emit({ event: 'server_unsubscribed', client: name, channel: ctx.channel }));
    c.on('publication', (ctx) => emit({ event: 'server_publication', client: name, channel: ctx.channel, data: ctx.data, offset: ctx.offset }));
    c.connect();
    return null;
  },

  // {name, channel, options}
  subscribe(req) {
    const c = clients.get(req.name);
    const sub = c.newSubscription(req.channel, req.options || {});
    const base = { client: req.name, channel: req.channel };
    sub.on('subscribed', (ctx) => emit({ event: 'subscribed', ...base, recovered: ctx.recovered, wasRecovering: ctx.wasRecovering, recoverable: ctx.recoverable }));
    sub.on('unsubscribed', (ctx) => emit({ event: 'unsubscribed', ...base, code: ctx.code }));
    sub.on('publication', (ctx) => emit({ event: 'publication', ...base, data: ctx.data, offset: ctx.offset, publisher: info(ctx.info) }));
    sub.on('join', (ctx) => emit({ event: 'join', ...base, info: info(ctx.info) }));
    sub.on('leave', (ctx) => emit({ event: 'leave', ...base, info: info(ctx.info) }));
    sub.on('error', (ctx) => emit({ event: 'sub_error', ...base, message: String(ctx.error && ctx.error.message) }));
    sub.subscribe();
    return null;
  },

  async publish(req) {
    await clients.get(req.name).getSubscription(req.channel).publish(req.data);
    return null;
  },

  async presence(req) {
    const result = await clients.get(req.name).getSubscription(req.channel).presence();
    return Object.values(result.clients).map(info);
  },

  async presence_stats(req) {
    const result = await clients.get(req.name).getSubscription(req.channel).presenceStats();
    return { num_clients: result.numClients, num_users: result.numUsers };
  },

  disconnect(req) {
    clients.get(req.name).disconnect();
    clients.delete(req.name);
    return null;
  },
};

const input = readline.createInterface({ input: process.stdin });
input.on('line', async (line) => {
  let req;
  try {
    req = JSON.parse(line);
    emit({ id: req.id, result: await ops[req.op](req) });
  } catch (e) {
    emit({ id: req && req.id, error: e && e.stack ? e.stack : JSON.stringify(e) });
  }
});
input.on('close', () => {
  for (const c of clients.values()) c.disconnect();
  setTimeout(() => process.exit(0), 200);
});
