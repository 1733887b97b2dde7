#!/usr/bin/env bash
# Memory per idle authenticated WebSocket: starts a server, opens 1k, 10k and
# 19k idle sockets (spread over client processes of 5000 sockets each, since
# this machine caps open files at 20,000 per process), and prints the
# server's RSS growth per socket at each step.
#
#   bench/idle_sockets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${KZ_BIN:-$root/build/kizuna}
work=$(mktemp -d /tmp/kizuna-idle.XXXXXX)
port=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 20000
"$bin" --socket.port "$port" --data_dir "$work/data" --metrics.prometheus_port 0 --logger.level warn \
  --session.token_expiry_sec 3600 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && break; sleep 0.1; done
token=$(curl -sf -u defaultkey: -H 'Content-Type: application/json' \
  -d '{"id":"idle-bench-device-0001"}' "http://127.0.0.1:$port/v2/account/authenticate/device" |
  sed -E 's/.*"token":"([^"]+)".*/\1/')
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
base=$(rss)
echo "server RSS with no sockets: ${base} KiB"
printf '| %8s | %12s | %14s |\n' sockets "RSS (KiB)" "bytes/socket"
total=0
for target in 1000 10000 19000; do
  while [ "$total" -lt "$target" ]; do
    n=$((target - total)); [ "$n" -gt 5000 ] && n=5000
    fifo="$work/in.$total"; mkfifo "$fifo"
    NODE_PATH="$root/tests/e2e/node_modules" node --max-old-space-size=2048 bench/idle_clients.cjs "$port" "$n" "$token" <"$fifo" >"$work/out.$total" 2>&1 &
    pids+=($!)
    exec {fd}>"$fifo"
    for _ in $(seq 600); do grep -q ready "$work/out.$total" 2>/dev/null && break; sleep 0.1; done
    grep ready "$work/out.$total" >&2
    total=$((total + n))
  done
  sleep 2
  now=$(rss)
  printf '| %8d | %12d | %14d |\n' "$total" "$now" $(( (now - base) * 1024 / total ))
done
