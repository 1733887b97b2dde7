-- Boards and RPCs for tests/e2e/leaderboard.test.js and tournament.test.js.
-- Every worker's state runs this file at start-up, so creation must be
-- idempotent: the first state creates, the others find the boards there.
local nk = require("nakama")

-- Leaderboards: id, authoritative, sort, operator, reset schedule,
-- metadata, ranks.
nk.leaderboard_create("desc_best", false, "desc", "best", "", { kind = "race" }, true)
nk.leaderboard_create("asc_best", false, "asc", "best", "", nil, true)
nk.leaderboard_create("desc_set", false, "desc", "set", "", nil, true)
nk.leaderboard_create("asc_set", false, "asc", "set", "", nil, true)
nk.leaderboard_create("desc_incr", false, "desc", "incr", "", nil, true)
nk.leaderboard_create("asc_incr", false, "asc", "increment", "", nil, true)
nk.leaderboard_create("desc_decr", false, "descending", "decr", "", nil, true)
nk.leaderboard_create("asc_decr", false, "asc", "decrement", "", nil, true)
nk.leaderboard_create("override", false, "desc", "best", "", nil, true)
nk.leaderboard_create("authoritative", true, "desc", "best", "", nil, true)
nk.leaderboard_create("paging", false, "desc", "best", "", nil, true)
nk.leaderboard_create("around", false, "desc", "set", "", nil, true)
nk.leaderboard_create("owners", false, "asc", "set", "", nil, true)
nk.leaderboard_create("unranked", false, "desc", "best")
nk.leaderboard_create("daily", false, "desc", "incr", "0 0 * * *", nil, true)
nk.leaderboard_create("hourly", false, "desc", "set", "@hourly", nil, true)
nk.leaderboard_create("deletable", false, "desc", "set", "", nil, true)
nk.leaderboard_create("scripted", true, "desc", "set", "", nil, true)
nk.leaderboard_create("rank_off", false, "desc", "set", "", nil, true)

-- Tournaments: id, authoritative, sort, operator, duration, reset schedule,
-- metadata, title, description, category, start, end, max size, max
-- attempts, join required, ranks.
local now = os.time()
nk.tournament_create("t_open", false, "desc", "best", 3600, "", { prize = "gold" }, "Open", "anyone", 1, 0, 0, 0, 0,
  false, true)
nk.tournament_create("t_join", false, "desc", "incr", 3600, "", nil, "Join first", "", 2, 0, 0, 2, 0, true, true)
nk.tournament_create("t_attempts", false, "asc", "best", 3600, "", nil, "Three tries", "", 2, 0, 0, 0, 3, false,
  true)
nk.tournament_create("t_future", false, "desc", "best", 600, "", nil, "Later", "", 3, now + 86400, now + 2 * 86400, 0,
  0, false, true)
nk.tournament_create("t_ended", false, "desc", "best", 60, "", nil, "Over", "", 4, now - 7200, now - 3600, 0, 0, false,
  true)
nk.tournament_create("t_auth", true, "desc", "set", 3600, "", nil, "Server only", "", 5, 0, 0, 0, 0, false, true)
nk.tournament_create("t_daily", false, "desc", "set", 7200, "0 0 * * *", nil, "Daily", "", 6, now - 3 * 86400, 0, 1, 0,
  false, true)

-- Packs every return value (nil ones too) as {n = count, r1 = ..., r2 = ...}.
local function pack(...)
  local out = { n = select("#", ...) }
  for i = 1, out.n do
    out["r" .. i] = (select(i, ...))
  end
  return out
end

-- lb_call: payload {fn, args, n}: calls nk[fn](args[1..n]) (a JSON null is a
-- nil argument) and returns the results packed. Only the leaderboard and
-- tournament functions. Errors are not caught: the RPC fails with them.
nk.register_rpc(function(context, payload)
  local req = nk.json_decode(payload)
  local name = tostring(req.fn)
  if not (name:find("^leaderboard") or name:find("^tournament")) then
    error({ "not a leaderboard function: " .. name, 3 })
  end
  local args = req.args or {}
  return nk.json_encode(pack(nk[name](unpack(args, 1, req.n or #args))))
end, "lb_call")

-- lb_pcall: the same under pcall: {ok, message} of an error (a string, as
-- a script sees it).
nk.register_rpc(function(context, payload)
  local req = nk.json_decode(payload)
  local args = req.args or {}
  local ok, err = pcall(nk[req.fn], unpack(args, 1, req.n or #args))
  if ok then
    return nk.json_encode({ ok = true })
  end
  return nk.json_encode({ ok = false, message = tostring(err) })
end, "lb_pcall")

-- A server-side score for the caller on an authoritative board: the way a
-- game validates a result before it counts.
nk.register_rpc(function(context, payload)
  local req = nk.json_decode(payload)
  local record = nk.leaderboard_record_write("scripted", context.user_id, context.username, req.score, 0,
    { checked = true })
  return nk.json_encode({ score = record.score, rank = record.rank, metadata = record.metadata })
end, "submit_checked")

-- Reset callbacks leave a public, system-owned record of what they saw.
nk.register_leaderboard_reset(function(context, leaderboard, reset)
  nk.storage_write({ {
    collection = "resets",
    key = leaderboard.id,
    value = { id = leaderboard.id, reset = reset, mode = context.execution_mode },
    permission_read = 2,
    permission_write = 0,
  } })
end)
