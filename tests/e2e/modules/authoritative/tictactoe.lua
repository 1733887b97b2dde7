-- Tic-tac-toe, an authoritative match for tests/e2e/authoritative.test.js.
--
-- Op codes: 1 START {marks = {user_id = "X"|"O"}, turn}, 2 MOVE (client ->
-- server: {position = 0..8}; server -> clients: {board, turn, mark,
-- position}), 3 DONE {board, winner (user id or ""), draw}, 4 REJECTED
-- {reason} (to the sender only), 9 TERMINATING. The match ends (match_loop
-- returns nil) in the tick after a game is decided.
local nk = require("nakama")

local M = {}

local LINES = {
  { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 }, { 1, 4, 7 }, { 2, 5, 8 }, { 3, 6, 9 }, { 1, 5, 9 }, { 3, 5, 7 },
}

-- The label, with its keys in a fixed order (exact label filters compare text).
local function label(state)
  return string.format('{"mode":%s,"open":%s,"players":%d}', nk.json_encode(state.mode),
    tostring(#state.players < 2), #state.players)
end

function M.match_init(context, params)
  local state = {
    mode = params.mode or "ttt",
    key = params.key,
    board = { "", "", "", "", "", "", "", "", "" },
    players = {}, -- presences in join order: X, then O
    marks = {},
    turn = nil,
    done = false,
    moves = 0,
  }
  return state, params.tick_rate or 10, label(state)
end

function M.match_join_attempt(context, dispatcher, tick, state, presence, metadata)
  if #state.players >= 2 then
    return state, false, "match full"
  end
  if state.key and (metadata or {}).key ~= state.key then
    return state, false, "bad key"
  end
  if context.user_id ~= presence.user_id or context.session_id ~= presence.session_id then
    return state, false, "the context is not the joining user's"
  end
  return state, true
end

function M.match_join(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do
    table.insert(state.players, p)
    state.marks[p.user_id] = (#state.players == 1) and "X" or "O"
  end
  dispatcher.match_label_update(label(state))
  if #state.players == 2 and not state.turn then
    state.turn = state.players[1].user_id
    dispatcher.broadcast_message(1, nk.json_encode({ marks = state.marks, turn = state.turn }))
  end
  return state
end

function M.match_leave(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do
    for i, q in ipairs(state.players) do
      if q.session_id == p.session_id then table.remove(state.players, i) break end
    end
  end
  if state.turn and not state.done then
    -- A player left a running game: the other one wins.
    local winner = state.players[1] and state.players[1].user_id or ""
    dispatcher.broadcast_message(3, nk.json_encode({ board = state.board, winner = winner, draw = false, forfeit = true }))
    state.done = true
  end
  dispatcher.match_label_update(label(state))
  return state
end

local function decided(board)
  for _, l in ipairs(LINES) do
    local a = board[l[1]]
    if a ~= "" and a == board[l[2]] and a == board[l[3]] then return a end
  end
  for i = 1, 9 do
    if board[i] == "" then return nil end
  end
  return "draw"
end

local function reject(dispatcher, sender, reason)
  dispatcher.broadcast_message(4, nk.json_encode({ reason = reason }), { sender })
end

function M.match_loop(context, dispatcher, tick, state, messages)
  if state.done then
    return nil -- the game was decided last tick
  end
  for _, m in ipairs(messages) do
    if m.op_code == 2 and not state.done then
      local ok, move = pcall(nk.json_decode, m.data or "")
      local pos = ok and type(move) == "table" and move.position
      if state.turn ~= m.sender.user_id then
        reject(dispatcher, m.sender, "not your turn")
      elseif type(pos) ~= "number" or pos < 0 or pos > 8 or pos % 1 ~= 0 then
        reject(dispatcher, m.sender, "bad position")
      elseif state.board[pos + 1] ~= "" then
        reject(dispatcher, m.sender, "taken")
      else
        local mark = state.marks[m.sender.user_id]
        state.board[pos + 1] = mark
        state.moves = state.moves + 1
        for _, p in ipairs(state.players) do
          if p.user_id ~= m.sender.user_id then state.turn = p.user_id end
        end
        dispatcher.broadcast_message(2, nk.json_encode({ board = state.board, turn = state.turn, mark = mark, position = pos }), nil, m.sender)
        local r = decided(state.board)
        if r then
          state.done = true
          local winner = ""
          if r ~= "draw" then winner = m.sender.user_id end
          dispatcher.broadcast_message_deferred(3, nk.json_encode({ board = state.board, winner = winner, draw = r == "draw" }))
        end
      end
    end
  end
  return state
end

function M.match_terminate(context, dispatcher, tick, state, grace_seconds)
  dispatcher.broadcast_message(9, nk.json_encode({ grace = grace_seconds }))
  return state
end

function M.match_signal(context, dispatcher, tick, state, data)
  if data == "kick" then
    dispatcher.match_kick(state.players)
    return state, "kicked"
  end
  return state, nk.json_encode({ data = data, players = #state.players, moves = state.moves,
    match_id = context.match_id, node = context.match_node, mode = context.execution_mode })
end

return M
