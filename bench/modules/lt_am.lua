-- The authoritative match of kizuna-loadtest's am_match step
-- (bench/scenarios/authoritative_matches.yaml): like am_bench.lua's match,
-- each tick broadcasts one state update holding the inputs received since
-- the last tick, but its label is {"group": "..."} so the group's other
-- players find it by listing matches with query +label.group:"...".
local nk = require("nakama")

local M = {}

function M.match_init(context, params)
  return { players = 0 }, params.rate or 10, nk.json_encode({ group = params.group })
end

function M.match_join_attempt(context, dispatcher, tick, state, presence, metadata)
  return state, true
end

function M.match_join(context, dispatcher, tick, state, presences)
  state.players = state.players + #presences
  return state
end

function M.match_leave(context, dispatcher, tick, state, presences)
  state.players = state.players - #presences
  return state
end

function M.match_loop(context, dispatcher, tick, state, messages)
  if #messages > 0 and state.players > 0 then
    local parts = {}
    for i, m in ipairs(messages) do parts[i] = m.data or "" end
    dispatcher.broadcast_message(1, table.concat(parts))
  end
  return state
end

function M.match_terminate(context, dispatcher, tick, state, grace_seconds)
  return state
end

function M.match_signal(context, dispatcher, tick, state, data)
  return state, tostring(state.players)
end

-- {"group": "...", "rate": n (optional)}: creates one match labelled
-- {"group": "..."} and returns its id.
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  if type(p) ~= "table" or type(p.group) ~= "string" or p.group == "" then
    error("lt_am_create: payload must be {\"group\": \"...\"}")
  end
  return nk.match_create("lt_am", { group = p.group, rate = tonumber(p.rate) or 10 })
end, "lt_am_create")

return M
