-- RPCs for tests/e2e/match_options.test.js.
local nk = require("nakama")

-- {name}: creates a "room" match labelled {"name": name}; returns {match_id}.
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  return nk.json_encode({ match_id = nk.match_create("room", { name = p.name }) })
end, "create_room")
