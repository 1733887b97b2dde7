#!/usr/bin/env bash
# Storage benchmark: writes (PUT /v2/storage) and reads (POST /v2/storage)
# of one object and of a batch of 10 per request, with wrk, on SQLite and on
# PostgreSQL. Prints one table row per case and the server's RSS when idle.
# Same harness as bench/auth.sh; the wrk script is generated into the work
# directory because it needs the seeded accounts' tokens.
#
#   bench/storage.sh [duration_s=10] [connections=64]
#
# Needs wrk (apt-get install wrk) and a built build/kizuna (KZ_BIN=path to
# use another binary). Starts its own servers and a throwaway PostgreSQL
# cluster, and stops them by PID. Each request acts as one of
# KZ_BENCH_ACCOUNTS accounts (default 100), picked at random, on its own
# objects bench/obj-0 .. bench/obj-9 (a single-object request picks one of
# them at random; writes are unconditional upserts).
set -euo pipefail
bin=$(realpath -m "${KZ_BIN:-$(dirname "$0")/../build/kizuna}")
cd "$(dirname "$0")/.."
dur=${1:-10}
conns=${2:-64}
accounts=${KZ_BENCH_ACCOUNTS:-100}
source bench/lib.sh

# Signs in account $1 (a number), writes its ten objects, prints "token uid".
seed_one() {
  local base="http://127.0.0.1:$port" tok b64 uid objs=""
  tok=$(printf '{"id":"bench-storage-%06d"}' "$1" | curl -sf -u defaultkey: \
        -H 'Content-Type: application/json' --data-binary @- "$base/v2/account/authenticate/device" \
        | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  [ -n "$tok" ] || { echo "sign-in of account $1 failed" >&2; return 1; }
  # The user id is the uid claim of the (base64url) token payload.
  b64=$(cut -d. -f2 <<<"$tok" | tr '_-' '/+')
  while [ $((${#b64} % 4)) -ne 0 ]; do b64="$b64="; done
  uid=$(base64 -d <<<"$b64" | sed -n 's/.*"uid":"\([^"]*\)".*/\1/p')
  for k in $(seq 0 9); do
    objs="$objs${objs:+,}{\"collection\":\"bench\",\"key\":\"obj-$k\",\"value\":\"{\\\"n\\\":0}\"}"
  done
  curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    --data-binary "{\"objects\":[$objs]}" "$base/v2/storage" || { echo "seed write of $1 failed" >&2; return 1; }
  echo "$tok $uid"
}
export -f seed_one
export port

# Seeds the accounts and their objects; writes their tokens and ids as a
# Lua table for the wrk script.
seed_accounts() {
  seq 0 $((accounts - 1)) | xargs -P 8 -I{} bash -c 'seed_one {}' >"$work/accounts.txt"
  [ "$(wc -l <"$work/accounts.txt")" -eq "$accounts" ] || { echo "seeding failed"; exit 1; }
  { echo "return {"; awk '{printf "  {\"%s\", \"%s\"},\n", $1, $2}' "$work/accounts.txt"; echo "}"; } >"$work/accounts.lua"
}

# The wrk script: KZ_BENCH_OP (write|read) and KZ_BENCH_BATCH (objects per
# request) choose the case.
cat >"$work/storage.lua" <<'LUA'
local accounts = dofile(os.getenv("KZ_BENCH_ACCOUNTS_LUA"))
local op = os.getenv("KZ_BENCH_OP")
local batch = tonumber(os.getenv("KZ_BENCH_BATCH") or "1")
wrk.method = op == "write" and "PUT" or "POST"
wrk.path = "/v2/storage"

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

local n = 0
function request()
  n = n + 1
  local a = accounts[math.random(1, #accounts)]
  local first = math.random(0, 9)
  local items = {}
  for i = 0, batch - 1 do
    local key = batch == 1 and first or i
    if op == "write" then
      items[#items + 1] = string.format(
        '{"collection":"bench","key":"obj-%d","value":"{\\"n\\":%d,\\"score\\":%d,\\"name\\":\\"bench\\"}"}',
        key, n, math.random(0, 1000000))
    else
      items[#items + 1] = string.format('{"collection":"bench","key":"obj-%d","user_id":"%s"}', key, a[2])
    end
  end
  local body = '{"' .. (op == "write" and "objects" or "object_ids") .. '":[' .. table.concat(items, ",") .. ']}'
  local headers = {["Authorization"] = "Bearer " .. a[1], ["Content-Type"] = "application/json"}
  return wrk.format(nil, nil, headers, body)
end

function response(status, headers, body)
  if status ~= 200 then error("unexpected status " .. status .. ": " .. body) end
  if op == "read" and not body:find('"objects"', 1, true) then error("read returned no objects: " .. body) end
end
LUA

run_wrk() { # label op batch
  KZ_BENCH_ACCOUNTS_LUA="$work/accounts.lua" KZ_BENCH_OP=$2 KZ_BENCH_BATCH=$3 wrk_row "$1" "$work/storage.lua"
}

table_header "$accounts accounts x 10 objects"
for backend in sqlite postgres; do
  # Tokens are minted once at seeding and must outlive every run.
  start_server "$(backend_address "$backend")" --session.token_expiry_sec 86400
  idle=$(rss_kib "$server_pid")
  seed_accounts
  run_wrk "write 1 ($backend)" write 1
  run_wrk "write 10 ($backend)" write 10
  run_wrk "read 1 ($backend)" read 1
  run_wrk "read 10 ($backend)" read 10
  rss_line "$backend" "$idle"
  stop_server
done
