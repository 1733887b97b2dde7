-- The RPC of bench/rpc.sh: returns its payload.
local nk = require("nakama")
nk.register_rpc(function(context, payload)
  return payload
end, "echo")

-- Decodes and encodes the payload, as most game RPCs do.
nk.register_rpc(function(context, payload)
  local t = nk.json_decode(payload)
  t.seen = context.user_id or ""
  return nk.json_encode(t)
end, "echo_json")
