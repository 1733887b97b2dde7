-- wrk script: registration, every request a new device id (thread prefix +
-- counter), so each one creates an account.
wrk.method = "POST"
wrk.path = "/v2/account/authenticate/device"
wrk.headers["Authorization"] = "Basic ZGVmYXVsdGtleTo="  -- defaultkey:
wrk.headers["Content-Type"] = "application/json"

local run = os.getenv("KZ_BENCH_RUN") or tostring(os.time())
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function request()
  n = n + 1
  local body = string.format('{"id":"reg-%s-%d-%09d"}', run, tid, n)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then error("unexpected status " .. status .. ": " .. body) end
end
