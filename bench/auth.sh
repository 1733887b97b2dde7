#!/usr/bin/env bash
# Sign-in benchmark: device login of existing accounts and registration of
# new ones, with wrk, on SQLite and on PostgreSQL. Prints one table row per
# case and the server's RSS when idle.
#
#   bench/auth.sh [duration_s=10] [connections=64]
#
# Needs wrk (apt-get install wrk) and a built build/kizuna. Starts its own
# servers and a throwaway PostgreSQL cluster, and stops them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dur=${1:-10}
conns=${2:-64}
accounts=${KZ_BENCH_ACCOUNTS:-1000}
export KZ_BENCH_ACCOUNTS=$accounts
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

work=$(mktemp -d /tmp/kizuna-bench.XXXXXX)
pgdir=$(mktemp -d /tmp/kizuna-bench-pg.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  bash tests/support/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$work" "$pgdir"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

start_server() { # database address
  ./build/kizuna --socket.port "$port" --data_dir "$work/data" --database.address "$1" \
    --metrics.prometheus_port 0 --logger.level warn 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start"; cat "$work/server.log"; exit 1
}

stop_server() {
  kill "$server_pid"; wait "$server_pid" || true; server_pid=""
}

seed_accounts() {
  seq 0 $((accounts - 1)) | xargs -P 8 -I{} sh -c \
    "printf '{\"id\":\"bench-device-%06d\"}' {} | curl -sf -o /dev/null -u defaultkey: \
     -H 'Content-Type: application/json' --data-binary @- \
     http://127.0.0.1:$port/v2/account/authenticate/device"
}

run_wrk() { # label script
  local out
  out=$(KZ_BENCH_RUN=$RANDOM$RANDOM wrk -t2 -c"$conns" -d"${dur}s" --latency -s "bench/auth/$2" \
        "http://127.0.0.1:$port")
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errs=${errs:-0}
  printf '| %-28s | %10s | %8s | %8s | %6s |\n' "$1" "$rps" "$p50" "$p99" "$errs"
}

echo "wrk -t2 -c$conns -d${dur}s, $accounts seeded accounts, $(nproc) cores, server and wrk on one machine"
printf '| %-28s | %10s | %8s | %8s | %6s |\n' case "requests/s" p50 p99 non-2xx
printf '|%s|%s|%s|%s|%s|\n' ------------------------------ ------------ ---------- ---------- --------
for backend in sqlite postgres; do
  if [ "$backend" = sqlite ]; then
    addr="$work/data/kizuna.db"
  else
    # Durable commits, as SQLite (synchronous=FULL) has them.
    url=$(KZ_PG_FSYNC=on bash tests/support/pg.sh start "$pgdir")
    addr=$(bash tests/support/pg.sh createdb "$url" kizuna_bench)
  fi
  start_server "$addr"
  idle=$(rss_kib "$server_pid")
  seed_accounts
  run_wrk "device login ($backend)" login.lua
  run_wrk "registration ($backend)" register.lua
  after=$(rss_kib "$server_pid")
  echo "  $backend: idle RSS ${idle} KiB at start, ${after} KiB after the runs"
  stop_server
done
