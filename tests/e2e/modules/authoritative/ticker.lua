-- A match that only counts its ticks (and can be told to fail).
--   op 99 from a player: match_loop raises an error;
--   op 98: match_loop runs forever (the call budget stops it);
--   signal "tick": the current tick; "stop": match_signal returns nil state.
local nk = require("nakama")

local M = {}

function M.match_init(context, params)
  return { ticks = 0, name = params.name or "" }, params.tick_rate or 20,
    nk.json_encode({ kind = "ticker", name = params.name or "" })
end

function M.match_join_attempt(context, dispatcher, tick, state, presence, metadata)
  return state, true
end

function M.match_join(context, dispatcher, tick, state, presences)
  return state
end

function M.match_leave(context, dispatcher, tick, state, presences)
  return state
end

function M.match_loop(context, dispatcher, tick, state, messages)
  for _, m in ipairs(messages) do
    if m.op_code == 99 then
      error("boom from " .. state.name)
    elseif m.op_code == 98 then
      while true do end
    end
  end
  state.ticks = state.ticks + 1
  return state
end

function M.match_terminate(context, dispatcher, tick, state, grace_seconds)
  return state
end

function M.match_signal(context, dispatcher, tick, state, data)
  if data == "stop" then return nil, "stopping" end
  return state, tostring(state.ticks)
end

return M
