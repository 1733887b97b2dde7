-- A match module without match_signal: match_create must fail.
local M = {}
function M.match_init(context, params) return {}, 1, "" end
function M.match_join_attempt(context, dispatcher, tick, state, presence, metadata) return state, true end
function M.match_join(context, dispatcher, tick, state, presences) return state end
function M.match_leave(context, dispatcher, tick, state, presences) return state end
function M.match_loop(context, dispatcher, tick, state, messages) return state end
function M.match_terminate(context, dispatcher, tick, state, grace_seconds) return state end
return M
