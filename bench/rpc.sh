#!/usr/bin/env bash
# RPC benchmark: POST /v2/rpc/{id} calling a Lua function, with wrk, on the
# SQLite default. Cases: the http_key with a function that returns its
# payload, the same with a session token, a function that decodes and
# re-encodes JSON, and GET /healthcheck (no Lua, no worker) as the baseline
# of the HTTP path in the same run.
#
#   bench/rpc.sh [duration_s=10] [connections=64]
#
# Needs wrk (apt-get install wrk) and a built build/kizuna (KZ_BIN=path to
# use another binary). Starts its own server and stops it by PID.
set -euo pipefail
bin=$(realpath -m "${KZ_BIN:-$(dirname "$0")/../build/kizuna}")
cd "$(dirname "$0")/.."
dur=${1:-10}
conns=${2:-64}
source bench/lib.sh

cat >"$work/rpc.lua" <<'LUA'
wrk.method = "POST"
wrk.path = os.getenv("KZ_BENCH_PATH")
wrk.body = os.getenv("KZ_BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("KZ_BENCH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
LUA
cat >"$work/health.lua" <<'LUA'
wrk.method = "GET"
wrk.path = "/healthcheck"
LUA

start_server "$(backend_address sqlite)" --runtime.path bench/modules
idle=$(rss_kib "$server_pid")
token=$(curl -sf -u defaultkey: -H 'Content-Type: application/json' -d '{"id":"bench-rpc-device-0001"}' \
  "http://127.0.0.1:$port/v2/account/authenticate/device" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
body='"{\"player\":\"p1\",\"score\":1234,\"items\":[1,2,3]}"'
table_header "Lua RPCs, SQLite"
wrk_row "healthcheck (no Lua)" "$work/health.lua"
KZ_BENCH_PATH="/v2/rpc/echo?http_key=defaulthttpkey" KZ_BENCH_BODY="$body" wrk_row "rpc echo, http_key" "$work/rpc.lua"
KZ_BENCH_PATH="/v2/rpc/echo" KZ_BENCH_BODY="$body" KZ_BENCH_TOKEN="$token" wrk_row "rpc echo, session" "$work/rpc.lua"
KZ_BENCH_PATH="/v2/rpc/echo_json" KZ_BENCH_BODY="$body" KZ_BENCH_TOKEN="$token" wrk_row "rpc json decode+encode" "$work/rpc.lua"
rss_line sqlite "$idle"
stop_server
