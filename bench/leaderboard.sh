#!/usr/bin/env bash
# Leaderboard benchmark: score writes (POST /v2/leaderboard/{id}) by many
# accounts on a "best" and an "incr" board, then page reads and
# around-owner reads, with wrk, on SQLite and on PostgreSQL. Each write is
# one transaction plus an update of the in-memory rank index; reads take
# ranks from the index.
#
#   bench/leaderboard.sh [duration_s=10] [connections=64]
#
# Needs wrk (apt-get install wrk) and a built build/kizuna (KZ_BIN=path to
# use another binary). Starts its own servers and a throwaway PostgreSQL
# cluster, and stops them by PID. KZ_BENCH_ACCOUNTS (default 1000)
# accounts write; each request picks one at random.
set -euo pipefail
bin=$(realpath -m "${KZ_BIN:-$(dirname "$0")/../build/kizuna}")
cd "$(dirname "$0")/.."
dur=${1:-10}
conns=${2:-64}
accounts=${KZ_BENCH_ACCOUNTS:-1000}
source bench/lib.sh

# Signs in account $1 (a number); prints "token uid".
seed_one() {
  local tok b64 uid
  tok=$(printf '{"id":"bench-lb-%06d"}' "$1" | curl -sf -u defaultkey: -H 'Content-Type: application/json' \
        --data-binary @- "http://127.0.0.1:$port/v2/account/authenticate/device" \
        | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  [ -n "$tok" ] || { echo "sign-in of account $1 failed" >&2; return 1; }
  b64=$(cut -d. -f2 <<<"$tok" | tr '_-' '/+')
  while [ $((${#b64} % 4)) -ne 0 ]; do b64="$b64="; done
  uid=$(base64 -d <<<"$b64" | sed -n 's/.*"uid":"\([^"]*\)".*/\1/p')
  echo "$tok $uid"
}
export -f seed_one
export port

seed_accounts() {
  seq 0 $((accounts - 1)) | xargs -P 8 -I{} bash -c 'seed_one {}' >"$work/accounts.txt"
  [ "$(wc -l <"$work/accounts.txt")" -eq "$accounts" ] || { echo "seeding failed"; exit 1; }
  { echo "return {"; awk '{printf "  {\"%s\", \"%s\"},\n", $1, $2}' "$work/accounts.txt"; echo "}"; } >"$work/accounts.lua"
}

# KZ_BENCH_OP: write | list | around; KZ_BENCH_BOARD: the board.
cat >"$work/lb.lua" <<'LUA'
local accounts = dofile(os.getenv("KZ_BENCH_ACCOUNTS_LUA"))
local op = os.getenv("KZ_BENCH_OP")
local board = os.getenv("KZ_BENCH_BOARD")
function setup(thread) thread:set("seed", math.random(1, 1000000)) end
function init(args) math.randomseed(seed) end
function request()
  local a = accounts[math.random(1, #accounts)]
  local headers = {["Authorization"] = "Bearer " .. a[1], ["Content-Type"] = "application/json"}
  if op == "write" then
    local body = string.format('{"score":"%d","subscore":"%d"}', math.random(0, 1000000), math.random(0, 100))
    return wrk.format("POST", "/v2/leaderboard/" .. board, headers, body)
  elseif op == "list" then
    return wrk.format("GET", "/v2/leaderboard/" .. board .. "?limit=20", headers)
  else
    return wrk.format("GET", "/v2/leaderboard/" .. board .. "/owner/" .. a[2] .. "?limit=20", headers)
  end
end
function response(status, headers, body)
  if status ~= 200 then error("unexpected status " .. status .. ": " .. body) end
end
LUA

run_wrk() { # label op board
  KZ_BENCH_ACCOUNTS_LUA="$work/accounts.lua" KZ_BENCH_OP=$2 KZ_BENCH_BOARD=$3 wrk_row "$1" "$work/lb.lua"
}

table_header "$accounts accounts"
for backend in sqlite postgres; do
  start_server "$(backend_address "$backend")" --session.token_expiry_sec 86400 --runtime.path bench/modules
  idle=$(rss_kib "$server_pid")
  seed_accounts
  run_wrk "write best ($backend)" write bench_best
  run_wrk "write incr ($backend)" write bench_incr
  run_wrk "list top 20 ($backend)" list bench_best
  run_wrk "around owner 20 ($backend)" around bench_best
  rss_line "$backend" "$idle"
  stop_server
done
