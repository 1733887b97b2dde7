-- RPCs for tests/e2e/authoritative.test.js: creating, listing, getting and
-- signalling authoritative matches.
local nk = require("nakama")

-- {module, params}: nk.match_create; returns {match_id} or {error}.
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  local ok, id = pcall(nk.match_create, p.module, p.params)
  if not ok then return nk.json_encode({ error = id }) end
  return nk.json_encode({ match_id = id })
end, "create_match")

-- {args}: nk.match_list(unpack(args)).
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  local a = p.args or {}
  local ok, r = pcall(nk.match_list, a[1], a[2], a[3], a[4], a[5], a[6])
  if not ok then return nk.json_encode({ error = r }) end
  return nk.json_encode({ matches = r, n = #r })
end, "list_matches")

nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  local m = nk.match_get(p.match_id)
  return nk.json_encode({ found = m ~= nil, match = m or {} })
end, "get_match")

-- {match_id, data}: nk.match_signal.
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  local ok, r = pcall(nk.match_signal, p.match_id, p.data)
  if not ok then return nk.json_encode({ error = r }) end
  return nk.json_encode({ result = r })
end, "signal_match")
