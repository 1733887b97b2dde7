-- The authoritative match of the benchmarks: each tick, match_loop
-- broadcasts one state update to every player holding the inputs received
-- since the last tick, as a game server sends its world state.
--   tools/am_bench.c (RPC am_bench_create): an update every tick, even an
--   empty one; each input is the client's 16 bytes (send time, player).
--   kizuna-loadtest's am_match step (RPC lt_am_create,
--   bench/scenarios/authoritative_matches.yaml): updates only when inputs
--   came, and the label {"group": "..."} lets the group's other players
--   find the match with the query +label.group:"...".
local nk = require("nakama")

local M = {}

function M.match_init(context, params)
  local label = params.group and nk.json_encode({ group = params.group }) or "bench"
  return { players = 0, every_tick = params.every_tick }, params.rate or 10, label
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
  if state.players > 0 and (state.every_tick or #messages > 0) then
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

-- {"count": n, "rate": r}: creates n matches; returns their ids, comma-separated.
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  local ids = {}
  for i = 1, p.count do ids[i] = nk.match_create("am_bench", { rate = p.rate, every_tick = true }) end
  return table.concat(ids, ",")
end, "am_bench_create")

-- {"group": "...", "rate": n (optional)}: creates one match labelled
-- {"group": "..."} and returns its id.
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  if type(p) ~= "table" or type(p.group) ~= "string" or p.group == "" then
    error("lt_am_create: payload must be {\"group\": \"...\"}")
  end
  return nk.match_create("am_bench", { group = p.group, rate = tonumber(p.rate) or 10 })
end, "lt_am_create")

return M
