-- RPCs for tests/e2e/nk.test.js: the nk functions over the store, called
-- the way server scripts call them.
local nk = require("nakama")

-- Packs every return value (nil ones too) as {n = count, r1 = ..., r2 = ...}.
local function pack(...)
  local out = { n = select("#", ...) }
  for i = 1, out.n do
    out["r" .. i] = (select(i, ...))
  end
  return out
end

-- nk_call: payload {fn, args, n}. Calls nk[fn] with args[1..n] (a JSON null
-- is a nil argument) and returns every result. Errors are not caught: the
-- RPC fails with the error's code and message.
nk.register_rpc(function(context, payload)
  local req = nk.json_decode(payload)
  local fn = nk[req.fn]
  if type(fn) ~= "function" then
    error({ "no such nk function: " .. tostring(req.fn), 12 })
  end
  local args = req.args or {}
  return nk.json_encode(pack(fn(unpack(args, 1, req.n or #args))))
end, "nk_call")

-- nk_pcall: the same under pcall, returning what a script sees of an
-- error: a string, as with Nakama, which it can concatenate.
nk.register_rpc(function(context, payload)
  local req = nk.json_decode(payload)
  local args = req.args or {}
  local ok, err = pcall(nk[req.fn], unpack(args, 1, req.n or #args))
  if ok then
    return nk.json_encode({ ok = true })
  end
  return nk.json_encode({ ok = false, kind = type(err), message = err, joined = "failed: " .. err })
end, "nk_pcall")

-- The caller's own account, as a script would read it from the context.
nk.register_rpc(function(context, payload)
  local account = nk.account_get_id(context.user_id)
  return nk.json_encode({
    user_id = account.user.user_id,
    username = account.username,
    wallet = account.wallet,
    devices = #(account.devices or {}),
  })
end, "whoami")

-- A shop purchase: spend gold for an item, all or nothing; the error of an
-- insufficient balance is turned into the RPC's own error.
nk.register_rpc(function(context, payload)
  local req = nk.json_decode(payload)
  local ok, updated, previous = pcall(nk.wallet_update, context.user_id,
    { gold = -req.price, [req.item] = 1 }, { item = req.item }, true)
  if not ok then
    error({ "cannot afford " .. req.item .. ": " .. updated, 9 })
  end
  return nk.json_encode({ gold = updated.gold, before = previous.gold })
end, "buy")

-- Storage round trip in one call: write, read back, list, delete.
nk.register_rpc(function(context, payload)
  local uid = context.user_id
  local acks = nk.storage_write({
    { collection = "scratch", key = "a", user_id = uid, value = { n = 1 } },
    { collection = "scratch", key = "b", user_id = uid, value = { n = 2 }, permission_read = 2 },
  })
  local objects = nk.storage_read({
    { collection = "scratch", key = "a", user_id = uid },
    { collection = "scratch", key = "b", user_id = uid },
    { collection = "scratch", key = "missing", user_id = uid },
  })
  local listed = nk.storage_list(uid, "scratch", 10)
  nk.storage_delete({ { collection = "scratch", key = "a", user_id = uid }, { collection = "scratch", key = "b", user_id = uid } })
  local after = nk.storage_read({ { collection = "scratch", key = "a", user_id = uid } })
  return nk.json_encode({
    acks = #acks,
    read = { objects[1].value.n, objects[2].value.n, #objects },
    versions_match = acks[1].version == objects[1].version and acks[2].version == objects[2].version,
    listed = #listed,
    after = #after,
  })
end, "storage_roundtrip")

-- oom_probe: fills the state's memory with `fill` strings, then calls
-- nk[fn](args[1..n]); with a small lua_memory_mb the call runs out of
-- budget at varying points, inside the nk function too.
nk.register_rpc(function(context, payload)
  local req = nk.json_decode(payload)
  local hog = {}
  for i = 1, req.fill do
    hog[i] = string.rep("x", 100) .. i
  end
  local args = req.args or {}
  local results = { nk[req.fn](unpack(args, 1, req.n or #args)) }
  return tostring(#results + #hog)
end, "oom_probe")

-- The caller's session id (called over a socket: nk.session_disconnect).
nk.register_rpc(function(context, payload)
  return nk.json_encode({ session_id = context.session_id })
end, "my_session")

-- bcrypt round trip and a JWT, in one script.
nk.register_rpc(function(context, payload)
  local h = nk.bcrypt_hash("hunter2")
  return nk.json_encode({
    prefix = string.sub(h, 1, 7),
    len = #h,
    ok = nk.bcrypt_compare(h, "hunter2"),
    bad = nk.bcrypt_compare(h, "hunter3"),
    jwt = nk.jwt_generate("HS256", "secret", { sub = "1234567890", name = "John Doe", iat = 1516239022 }),
  })
end, "crypto_probe")
