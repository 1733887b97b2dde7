-- matchmaker.test.js: the matched hook. Groups whose tickets carry
-- mode=hooked get a "match id" that describes what the hook saw (so the
-- test can check the entries table); every other group gets nil, so its
-- players receive a token.
local nk = require("nakama")

nk.register_matchmaker_matched(function(context, entries)
  if entries[1].properties.mode ~= "hooked" then
    return nil
  end
  local names = {}
  for _, e in ipairs(entries) do
    table.insert(names, e.presence.username .. "/" .. e.properties.region .. "/" ..
      tostring(e.properties.skill) .. "/" .. e.presence.node .. "/" .. tostring(e.party_id))
  end
  table.sort(names)
  return context.execution_mode .. ":" .. #entries .. ":" .. table.concat(names, ",")
end)
