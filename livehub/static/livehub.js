/* livehub.js: a tiny client for livehub's plain endpoints. No build step, no dependency.
 *
 *   <script src="/static/livehub.js"></script>
 *
 *   // A WebSocket that reconnects with backoff and resumes from its cursor: no loss, no
 *   // duplicates, the same guarantee EventSource gets from Last-Event-ID.
 *   const room = livehub.socket('chat:lobby', {
 *     recent: 50,                                   // the last 50 messages on first connect
 *     onmessage: (data, msg) => show(data),         // text that is JSON arrives parsed; msg: {channel, data, cursor}
 *     onreset: (channels) => warn('some messages were missed'),
 *     onstatus: (status) => badge(status),          // connecting, open, reconnecting, closed
 *   });
 *   room.send({text: 'hi'});                        // objects are sent as JSON
 *
 *   // EventSource over many channels, each message naming its channel, with livehub's
 *   // in-band `reset` and `disconnect` events surfaced and refusals explained.
 *   const feed = livehub.events(['market:AAPL', 'market:MSFT'], {
 *     recent: 20,
 *     onmessage: (data, msg) => update(msg.channel, data),   // msg: {channel, event, data, id}
 *     onreset: (info) => warn(info.channels),
 *     ondisconnect: (info) => log(info.code, info.reason),   // {code, reason, reconnect}
 *     onrefused: (info) => alert(info.status + ' ' + info.message),
 *   });
 *
 * Reconnect rule (livehub/codes.py): close codes 3000-3499 and 4000-4499 reconnect,
 * 3500-3999 and 4500-4999 do not; so do the WebSocket codes of a refusal (1002, 1003, 1007,
 * 1008, 1009, 1010).
 */
(function (global) {
  'use strict';

  function url(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of params) if (value !== undefined && value !== null && value !== '') query.append(key, value);
    return path + '?' + query.toString();
  }

  function reconnects(code) {
    if (code >= 3500 && code < 4000) return false;
    if (code >= 4500 && code < 5000) return false;
    return ![1002, 1003, 1007, 1008, 1009, 1010].includes(code);
  }

  function parse(value) {
    if (typeof value !== 'string') return value;
    try { return JSON.parse(value); } catch (e) { return value; }
  }

  /* A WebSocket on /ws?channel=C&format=json that reconnects and resumes from its cursor. */
  function socket(channel, options = {}) {
    const o = Object.assign({recent: 0, token: null, minDelay: 250, maxDelay: 10000, base: null}, options);
    const origin = o.base || ((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host);
    const self = {channel, cursor: null, status: 'connecting', opens: 0, ws: null, outbox: []};
    let delay = o.minDelay, timer = null, stopped = false;

    function setStatus(status) {
      self.status = status;
      if (o.onstatus) o.onstatus(status);
    }

    function connect() {
      const params = [['channel', channel], ['format', 'json'], ['token', o.token]];
      params.push(self.cursor ? ['since', self.cursor] : ['recent', o.recent || '']);
      const ws = self.ws = new WebSocket(url(origin + '/ws', params));
      ws.onopen = () => {
        self.opens += 1;
        setStatus('open');
        while (self.outbox.length && ws.readyState === WebSocket.OPEN) ws.send(self.outbox.shift());
        if (o.onopen) o.onopen();
      };
      ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.cursor) self.cursor = msg.cursor;
        if (msg.type === 'pub') {
          delay = o.minDelay;  // a working connection: start the backoff afresh next time
          // what send() sent as JSON arrives as an object again; other text stays text
          if (o.onmessage) o.onmessage('data' in msg ? parse(msg.data) : msg.data_b64, msg, event.data);
        } else if (msg.type === 'reset' && o.onreset) {
          o.onreset(msg.channels);
        }
      };
      ws.onclose = (event) => {
        if (self.ws !== ws) return;
        if (o.onclose) o.onclose(event.code, event.reason);
        if (stopped || !reconnects(event.code)) { setStatus('closed'); return; }
        setStatus('reconnecting');
        const wait = delay * (0.75 + Math.random() / 2);  // jitter: not everyone at once
        delay = Math.min(delay * 2, o.maxDelay);
        timer = setTimeout(connect, wait);
      };
    }

    /* Send text, or any other value as JSON; queued while reconnecting. */
    self.send = (value) => {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      if (self.ws && self.ws.readyState === WebSocket.OPEN) self.ws.send(text);
      else self.outbox.push(text);
    };
    self.close = () => {
      stopped = true;
      clearTimeout(timer);
      if (self.ws) self.ws.close(1000);
      setStatus('closed');
    };
    /* Drop the connection as a network failure would (for demos and tests): it comes back. */
    self.drop = () => { if (self.ws) self.ws.close(4000, 'dropped by the page'); };
    connect();
    return self;
  }

  /* An EventSource on /events with format=json: every message names its channel. */
  function events(channels, options = {}) {
    const o = Object.assign({recent: 0, token: null, format: 'json', params: [], withCredentials: false}, options);
    const list = Array.isArray(channels) ? channels : [channels];
    const params = list.map((c) => ['channel', c]);
    params.push(['recent', o.recent || ''], ['format', o.format], ['token', o.token], ...o.params);
    const self = {url: url((o.base || '') + '/events', params), status: 'connecting', opens: 0, lastEventId: ''};
    const es = self.source = new EventSource(self.url, {withCredentials: o.withCredentials});

    function setStatus(status) {
      self.status = status;
      if (o.onstatus) o.onstatus(status);
    }

    es.onopen = () => { self.opens += 1; setStatus('open'); };
    es.onmessage = (event) => {
      self.lastEventId = event.lastEventId;
      if (!o.onmessage) return;
      if (o.format === 'json') {
        const msg = JSON.parse(event.data);
        msg.id = event.lastEventId;
        o.onmessage('data' in msg ? msg.data : msg.data_b64, msg);
      } else {
        o.onmessage(parse(event.data), {channel: list.length === 1 ? list[0] : null, data: event.data, id: event.lastEventId});
      }
    };
    es.addEventListener('reset', (event) => { if (o.onreset) o.onreset(JSON.parse(event.data)); });
    es.addEventListener('disconnect', (event) => {
      const info = JSON.parse(event.data);
      if (o.ondisconnect) o.ondisconnect(info);
      if (!info.reconnect) { es.close(); setStatus('closed'); }
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CONNECTING) { setStatus('reconnecting'); return; }
      setStatus('closed');
      // EventSource hides why it gave up: ask once more, read the status and message only
      if (!o.onrefused) return;
      const abort = new AbortController();
      fetch(self.url, {signal: abort.signal, credentials: o.withCredentials ? 'include' : 'same-origin'})
        .then(async (r) => {
          if (r.ok) { abort.abort(); o.onrefused({status: r.status, message: 'the stream ended'}); return; }
          const body = await r.json().catch(() => ({}));
          o.onrefused({status: r.status, message: (body.error && body.error.message) || r.statusText});
        })
        .catch(() => o.onrefused({status: 0, message: 'the server cannot be reached'}));
    };
    self.close = () => { es.close(); setStatus('closed'); };
    return self;
  }

  global.livehub = {socket, events, reconnects};
})(window);
