# Shared pieces of the wrk benchmarks (sourced by bench/auth.sh and
# bench/storage.sh): a work directory and a throwaway PostgreSQL cluster
# cleaned up on exit, a server started per backend and stopped by PID, and
# the result table. Expects the caller to be in the repository root, with
# $bin (the server binary), $dur and $conns set.

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
[ -x "$bin" ] || { echo "no server binary at $bin (run make, or set KZ_BIN)"; exit 1; }

work=$(mktemp -d /tmp/kizuna-bench.XXXXXX)
# Its own top-level directory: the postgres user must be able to reach it.
pgdir=$(mktemp -d /tmp/kizuna-bench-pg.XXXXXX)
server_pid=""
bench_cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  bash tests/support/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$work" "$pgdir"
}
trap bench_cleanup EXIT

port=$((20000 + RANDOM % 20000))
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Prints the database address for backend sqlite|postgres (starting the
# PostgreSQL cluster, with durable commits as SQLite's synchronous=FULL).
backend_address() {
  if [ "$1" = sqlite ]; then
    echo "$work/data/kizuna.db"
  else
    local url
    url=$(KZ_PG_FSYNC=on bash tests/support/pg.sh start "$pgdir")
    bash tests/support/pg.sh createdb "$url" kizuna_bench
  fi
}

start_server() { # database address, extra flags...
  local addr=$1; shift
  "$bin" --socket.port "$port" --data_dir "$work/data" --database.address "$addr" \
    --metrics.prometheus_port 0 --logger.level warn "$@" 2>"$work/server.log" &
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

table_header() { # description of the run
  echo "wrk -t2 -c$conns -d${dur}s, $1, $(nproc) cores, server and wrk on one machine"
  printf '| %-28s | %10s | %8s | %8s | %6s |\n' case "requests/s" p50 p99 non-2xx
  printf '|%s|%s|%s|%s|%s|\n' ------------------------------ ------------ ---------- ---------- --------
}

# Runs wrk with the Lua script $2 (and the environment given before the
# call) and prints one table row labelled $1.
wrk_row() { # label script
  local out rps p50 p99 errs
  out=$(wrk -t2 -c"$conns" -d"${dur}s" --latency -s "$2" "http://127.0.0.1:$port")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errs=${errs:-0}
  printf '| %-28s | %10s | %8s | %8s | %6s |\n' "$1" "$rps" "$p50" "$p99" "$errs"
}

rss_line() { # backend, idle RSS
  echo "  $1: idle RSS $2 KiB at start, $(rss_kib "$server_pid") KiB after the runs"
}
