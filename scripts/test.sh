#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run lint, types and the whole suite.
#   Debian packages: redis-server, chromium, nginx, caddy, systemd (systemd-analyze), curl
#   (apt, as root)
#   Python: a virtualenv in .venv with livehub and its test extras
#   npm: every tests/**/package-lock.json (ws, eventsource, centrifuge...)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/sbin/nginx ] || need_apt+=(nginx)          # tests/deploy: deploy/nginx in front of hubs
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)  # tests/deploy: deploy/caddy
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)  # verifies deploy/systemd
command -v curl >/dev/null 2>&1 || need_apt+=(curl)   # curl --http2 in tests/transports
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== python virtualenv .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q '.[test,redis]'

while IFS= read -r lock; do
  dir=$(dirname "$lock")
  echo "== npm ci --prefix $dir"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
done < <(find tests -name package-lock.json -not -path '*/node_modules/*' | sort)

echo "== ruff"
.venv/bin/ruff check livehub tests compliance examples
echo "== import layers (import-linter)"
.venv/bin/lint-imports
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
