-- Before and after hooks for tests/e2e/hooks.test.js.
local nk = require("nakama")

-- REST: reject or rewrite a body.
nk.register_req_before(function(context, req)
  for _, o in ipairs(req.objects or {}) do
    local v = nk.json_decode(o.value)
    if v.forbidden then
      error({ "forbidden values are not stored", 3 })
    end
    v.stamped_by = context.user_id
    o.value = nk.json_encode(v)
  end
  return req
end, "WriteStorageObjects")

-- REST: the after hook sees the response and the request.
nk.register_req_after(function(context, resp, req)
  nk.storage_write({ {
    collection = "audit",
    key = "last_write",
    user_id = context.user_id,
    value = { acks = #resp.acks, key = resp.acks[1].key, version = resp.acks[1].version, requested = #req.objects },
    permission_read = 1,
    permission_write = 0,
  } })
end, "WriteStorageObjects")

-- REST: an API turned off.
nk.register_req_before(function(context, req)
  return nil
end, "GetUsers")

-- REST: a query parameter rewritten (authenticate's username).
nk.register_req_before(function(context, req)
  if req.username == nil or req.username == "" then
    req.username = "hk_" .. string.sub(req.account.id, 1, 12)
  end
  return req
end, "AuthenticateCustom")

-- REST: a body field rewritten.
nk.register_req_before(function(context, req)
  if req.display_name then
    req.display_name = string.upper(req.display_name)
  end
  return req
end, "UpdateAccount")

-- REST: a path parameter rewritten.
nk.register_req_before(function(context, req)
  if req.collection == "alias" then
    req.collection = "real"
  end
  return req
end, "ListStorageObjects")

-- REST: a method without input can only be blocked by an error.
nk.register_req_before(function(context, req)
  if context.vars and context.vars.banned == "yes" then
    error({ "banned", 7 })
  end
  return req
end, "GetAccount")

-- Realtime: rewrite or reject a chat message.
nk.register_rt_before(function(context, envelope)
  local m = envelope.channel_message_send
  local content = nk.json_decode(m.content)
  if content.text and string.find(content.text, "badword", 1, true) then
    error({ "message blocked", 3 })
  end
  content.moderated_for = context.username
  m.content = nk.json_encode(content)
  return envelope
end, "ChannelMessageSend")

-- Realtime: a message kind turned off.
nk.register_rt_before(function(context, envelope)
  return nil
end, "StatusUpdate")

-- Realtime: the after hook sees the reply and the request.
nk.register_rt_after(function(context, out, input)
  nk.notification_send(context.user_id, "joined",
    { channel = out.channel.id, target = input.channel_join.target, session = context.session_id }, 101, "", false)
end, "ChannelJoin")

-- REST: a before hook must return the request object, not a list.
nk.register_req_before(function(context, req)
  return { 1, 2 }
end, "ListFriends")
