-- wrk script: device login of existing accounts (ids bench-device-000000 ..
-- bench-device-<N-1>, created beforehand), picked at random.
local accounts = tonumber(os.getenv("KZ_BENCH_ACCOUNTS") or "1000")
wrk.method = "POST"
wrk.path = "/v2/account/authenticate/device?create=false"
wrk.headers["Authorization"] = "Basic ZGVmYXVsdGtleTo="  -- defaultkey:
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

function request()
  local body = string.format('{"id":"bench-device-%06d"}', math.random(0, accounts - 1))
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then error("unexpected status " .. status .. ": " .. body) end
end
