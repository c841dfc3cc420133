// Shared helpers of the Node client scripts: JSON lines out, JSON commands in, bounded waits.
import { createInterface } from 'node:readline';

export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

export function fatal(err) {
  out({ kind: 'fatal', error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
}

process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

// A whole script must finish in bounded time even if the server never answers.
export function deadline(ms) {
  const timer = setTimeout(() => fatal(new Error(`script deadline of ${ms} ms exceeded`)), ms);
  timer.unref();
}

// Calls handler(command) for each JSON line read on stdin.
export function commands(handler) {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim()) Promise.resolve(handler(JSON.parse(line))).catch(fatal);
  });
}

// Resolves with the first emission of `event` on an EventEmitter, or rejects after `ms`.
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (...args) => { clearTimeout(timer); resolve(args); });
  });
}
