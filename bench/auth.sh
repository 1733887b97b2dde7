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
bin=${KZ_BIN:-$root/build/kizuna}
source bench/lib.sh

seed_accounts() {
  seq 0 $((accounts - 1)) | xargs -P 8 -I{} sh -c \
    "printf '{\"id\":\"bench-device-%06d\"}' {} | curl -sf -o /dev/null -u defaultkey: \
     -H 'Content-Type: application/json' --data-binary @- \
     http://127.0.0.1:$port/v2/account/authenticate/device"
}

run_wrk() { # label script
  KZ_BENCH_RUN=$RANDOM$RANDOM wrk_row "$1" "bench/auth/$2"
}

table_header "$accounts seeded accounts"
for backend in sqlite postgres; do
  start_server "$(backend_address "$backend")"
  idle=$(rss_kib "$server_pid")
  seed_accounts
  run_wrk "device login ($backend)" login.lua
  run_wrk "registration ($backend)" register.lua
  rss_line "$backend" "$idle"
  stop_server
done
