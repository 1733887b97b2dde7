-- The authoritative match of tools/am_bench.c: each tick, match_loop
-- broadcasts one state update to every player holding the inputs received
-- since the last tick (each input is the client's 16 bytes: send time and
-- player index), as a game server sends its world state.
local nk = require("nakama")

local M = {}

function M.match_init(context, params)
  return { players = 0 }, params.rate or 10, "bench"
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
  local parts = {}
  for i, m in ipairs(messages) do parts[i] = m.data or "" end
  if state.players > 0 then dispatcher.broadcast_message(1, table.concat(parts)) end
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
  for i = 1, p.count do ids[i] = nk.match_create("am_bench", { rate = p.rate }) end
  return table.concat(ids, ",")
end, "am_bench_create")

return M
