#!/usr/bin/env bash
# Runs the load scenarios of bench/scenarios against a fresh server on this
# machine (SQLite, the bench Lua modules, matchmaker every second) and
# prints, per scenario, kizuna-loadtest's report plus the server's CPU time
# and resident memory. Reports (text, JSON, HTML) go to $OUT.
#
#   bench/loadtest.sh [NAME[:FLAGS] ...]
#   e.g. bench/loadtest.sh idle_sockets relayed_matches:"--bots 2000"
#
# Without arguments: every scenario at the sizes docs/benchmarks.md uses.
# The server and the tool share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${KZ_BIN:-$root/build/kizuna}
tool=${KZ_LOADTEST:-$(dirname "$bin")/kizuna-loadtest}
OUT=${OUT:-/tmp/kizuna-loadtest-reports}
[ -x "$bin" ] && [ -x "$tool" ] || { echo "build first (make): need $bin and $tool"; exit 1; }
mkdir -p "$OUT"
work=$(mktemp -d /tmp/kizuna-lt.XXXXXX)
port=$((20000 + RANDOM % 20000))
mport=$((port + 1))
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Sizes for a 2-core machine; idle_sockets goes up to the 20,000 open files
# one process may hold here (the server's own descriptors included).
defaults=(
  "idle_sockets:--bots 19800 --duration 90s --soak"
  "auth_storm:--bots 5000 --duration 30s"
  "chat_rooms:--bots 2000 --duration 30s"
  "relayed_matches:--bots 1000 --duration 30s"
  "authoritative_matches:--bots 2000 --duration 30s"
  "matchmaker_churn:--bots 1000 --duration 30s"
  "live_game:--bots 2000 --duration 60s"
)
[ "$#" -gt 0 ] && defaults=("$@")

ulimit -n "$(ulimit -Hn)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }

for entry in "${defaults[@]}"; do
  name=${entry%%:*}
  flags=""
  [ "$entry" != "$name" ] && flags=${entry#*:}
  rm -rf "$work/data"
  "$bin" --socket.port "$port" --data_dir "$work/data" --metrics.prometheus_port "$mport" \
    --logger.level warn --runtime.path bench/modules --matchmaker.interval_sec 1 \
    --session.token_expiry_sec 3600 2>"$work/server.log" &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && break; sleep 0.1; done
  rss0=$(rss_kib)
  cpu0=$(cpu_ticks)
  t0=$(date +%s.%N)
  echo "=== $name: kizuna-loadtest run bench/scenarios/$name.yaml $flags"
  # shellcheck disable=SC2086
  "$tool" run "bench/scenarios/$name.yaml" --port "$port" --quiet \
    --metrics-url "http://127.0.0.1:$mport/metrics" $flags \
    --report-json "$OUT/$name.json" --report-html "$OUT/$name.html" | tee "$OUT/$name.txt" || true
  t1=$(date +%s.%N)
  cpu1=$(cpu_ticks)
  rss1=$(rss_kib)
  hz=$(getconf CLK_TCK)
  awk -v c0="$cpu0" -v c1="$cpu1" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v r0="$rss0" -v r1="$rss1" 'BEGIN {
    printf "server: %.1f s CPU over %.1f s (%.0f%% of one core); RSS %d -> %d KiB\n",
      (c1 - c0) / hz, t1 - t0, 100 * (c1 - c0) / hz / (t1 - t0), r0, r1 }'
  # With soak samples: the server's memory at its most connections.
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const s = (r.soak && r.soak.samples) || [];
    let best = null;
    for (const [t, rss, conns] of s) if (rss && conns && (!best || conns > best[2])) best = [t, rss, conns];
    if (best) console.log(`server at ${best[2]} connections: RSS ${(best[1] / 1024).toFixed(0)} KiB, ` +
      `${((best[1] - process.argv[2] * 1024) / best[2]).toFixed(0)} bytes per connection over the idle server`);
  ' "$OUT/$name.json" "$rss0"
  kill "$server"; wait "$server" || true; server=""
done
echo "reports in $OUT"
