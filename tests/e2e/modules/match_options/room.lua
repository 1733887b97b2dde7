-- A match that does nothing but keep its players; on match_terminate it
-- tells them the grace period it was given (op code 7, data = seconds).
local nk = require("nakama")

local M = {}

function M.match_init(context, params)
  return {}, 10, nk.json_encode({ name = params.name or "" })
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
  return state
end

function M.match_terminate(context, dispatcher, tick, state, grace_seconds)
  dispatcher.broadcast_message(7, tostring(grace_seconds))
  return state
end

function M.match_signal(context, dispatcher, tick, state, data)
  return state, data
end

return M
