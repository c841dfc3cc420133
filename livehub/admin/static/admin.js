// The livehub admin dashboard: polls /admin/api/stats, calls the server API through
// /admin/api/<method> (with the session's CSRF token) and tails a channel from /admin/tail.
"use strict";

const REFRESH_MS = 2000;
const TAIL_MAX = 200;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
let last = null;          // the previous stats snapshot (for rates)
let tail = null;          // AbortController of the live tail

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function status(text, ok) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (ok ? "ok" : "bad");
}

async function request(path, options) {
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options));
  if (response.status === 401) {       // the session expired: show the login form
    window.location.reload();
    throw new Error("logged out");
  }
  return response;
}

// One server API call: {"result": ...} or {"error": {...}}.
async function api(method, params) {
  const response = await request("/admin/api/" + method, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify(params || {}),
  });
  return response.json();
}

function rate(now, before, seconds) {
  if (before === null || before === undefined || now === null || seconds <= 0) return "–";
  return Math.max(0, (now - before) / seconds).toFixed(1);
}

function duration(seconds) {
  if (seconds < 120) return seconds + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  return Math.round(seconds / 3600) + " h";
}

function render(stats) {
  const conns = stats.connections;
  $("node-name").textContent = "node " + stats.node;
  $("conn-total").textContent = conns.total;
  for (const kind of ["websocket", "sse", "http_stream"]) {
    $("conn-" + kind.replace("_", "-")).textContent = conns.by_transport[kind] || 0;
  }
  const seconds = last ? stats.time - last.time : 0;
  $("rate-pub").textContent = last ? rate(stats.publications, last.publications, seconds) : "–";
  $("rate-del").textContent = last ? rate(stats.deliveries, last.deliveries, seconds) : "–";
  $("protocols").textContent = "this node by protocol: " + (Object.entries(conns.by_protocol)
    .map(([k, v]) => k + " " + v).join(", ") || "none");

  const before = {};
  for (const row of (last ? last.channels : [])) before[row.channel] = row;
  const body = $("channels").tBodies[0];
  body.replaceChildren(...stats.channels.map((row) => {
    const prev = before[row.channel];
    const same = prev && prev.epoch === row.epoch;
    const inspect = el("button", {"class": "link", "type": "button"}, "inspect");
    inspect.addEventListener("click", () => inspectChannel(row.channel));
    return el("tr", {"data-channel": row.channel},
      el("td", {"class": "name"}, row.channel),
      el("td", {"class": "r subscribers"}, row.subscribers),
      el("td", {"class": "r"}, row.offset === null ? "–" : row.offset),
      el("td", {"class": "r"}, same ? rate(row.offset, prev.offset, seconds) : "–"),
      el("td", {"class": "r"}, inspect));
  }));
  $("channel-count").textContent = stats.channels.length ? "(" + stats.channels.length + ")" : "";
  $("channels-empty").hidden = stats.channels.length > 0;

  $("nodes").tBodies[0].replaceChildren(...stats.nodes.map((n) => el("tr", {},
    el("td", {"class": "name"}, n.name),
    el("td", {"class": "r"}, n.num_clients),
    el("td", {"class": "r"}, n.num_channels),
    el("td", {"class": "r"}, duration(n.uptime)))));
  last = stats;
}

async function refresh() {
  try {
    const response = await request("/admin/api/stats");
    if (!response.ok) throw new Error("HTTP " + response.status);
    const stats = await response.json();
    render(stats);
    if (stats.broker_ok) status("live", true);
    else status("live · broker unavailable", false);
  } catch (err) {
    status("unreachable", false);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

function show(list, items) {
  list.replaceChildren(...items);
  if (!items.length) list.append(el("li", {"class": "muted"}, "(none)"));
}

function shown(data) {
  return typeof data === "string" ? data : JSON.stringify(data);
}

async function loadHistory(channel) {
  const answer = await api("history", {channel, limit: 50, reverse: true});
  if (answer.error) {
    show($("history-log"), [el("li", {"class": "muted"}, answer.error.message)]);
    return;
  }
  show($("history-log"), answer.result.publications.map((p) => el("li", {},
    el("span", {"class": "meta"}, "#" + p.offset), shown(p.data))));
}

async function loadPresence(channel) {
  const answer = await api("presence", {channel});
  if (answer.error) {
    show($("presence-log"), [el("li", {"class": "muted"}, answer.error.message)]);
    return;
  }
  show($("presence-log"), Object.values(answer.result.presence).map((c) => el("li", {},
    el("span", {"class": "meta"}, c.client), c.user || "(anonymous)")));
}

function tailLine(item) {
  const log = $("tail-log");
  log.prepend(item);
  while (log.children.length > TAIL_MAX) log.lastChild.remove();
}

// Follow a channel's live publications (JSON lines, as /stream sends them).
async function follow(channel) {
  if (tail) tail.abort();
  const controller = tail = new AbortController();
  const state = $("tail-state");
  $("tail-log").replaceChildren();
  try {
    const params = new URLSearchParams({channel});
    const response = await request("/admin/tail?" + params, {signal: controller.signal});
    if (!response.ok) {
      const body = await response.json();
      tailLine(el("li", {"class": "muted"}, body.error.message));
      state.textContent = "off";
      state.className = "badge";
      return;
    }
    state.textContent = "live";
    state.className = "badge live";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffered += value;
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) {
        if (!line.trim()) continue;
        const message = JSON.parse(line);
        if (message.type === "pub") {
          const time = new Date().toLocaleTimeString();
          const event = message.event ? " " + message.event : "";
          const data = "data" in message ? shown(message.data) : "(binary)";
          tailLine(el("li", {"class": "pub"}, el("span", {"class": "meta"}, time + event), data));
        } else if (message.type === "disconnect" || message.type === "reset") {
          tailLine(el("li", {"class": "muted"}, message.type + ": " + (message.reason || "")));
        }
      }
    }
  } catch (err) {
    if (controller.signal.aborted) return;
  }
  if (tail === controller) {
    state.textContent = "off";
    state.className = "badge";
  }
}

function inspectChannel(channel) {
  $("inspect-channel").value = channel;
  $("pub-channel").value = $("pub-channel").value || channel;
  follow(channel);
  loadHistory(channel);
  loadPresence(channel);
}

function parseData(text) {
  try { return JSON.parse(text); } catch (err) { return text; }
}

function result(output, answer, ok) {
  output.textContent = answer.error ? "error " + answer.error.code + ": " + answer.error.message
    : ok(answer.result);
  output.className = "small " + (answer.error ? "bad" : "ok");
}

$("inspect-form").addEventListener("submit", (event) => {
  event.preventDefault();
  inspectChannel($("inspect-channel").value.trim());
});

$("publish-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const channel = $("pub-channel").value.trim();
  const params = {channel, data: parseData($("pub-data").value)};
  const name = $("pub-event").value.trim();
  if (name) params.event = name;
  const answer = await api("publish", params);
  result($("pub-result"), answer, (r) => "published at offset " + r.offset);
  if (!answer.error && channel === $("inspect-channel").value.trim()) loadHistory(channel);
});

$("disconnect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = $("dis-user").value.trim();
  const answer = await api("disconnect", {user});
  result($("dis-result"), answer, () => "disconnect sent to user " + user + " on every node");
});

$("logout-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await fetch("/admin/logout", {method: "POST", headers: {"X-CSRF-Token": csrf}});
  window.location.assign("/admin");
});

refresh();
