-- RPCs for tests/e2e/rpc.test.js.
local nk = require("nakama")
local shared = require("lib.shared")
local pkg = require("lib.pkg")

local function echo(context, payload)
  return nk.json_encode({
    payload = payload,
    user_id = context.user_id or "",
    username = context.username or "",
    mode = context.execution_mode,
    session_id = context.session_id or "",
    lang = context.lang or "",
    query = context.query_params,
    vars = context.vars or {},
    env = context.env,
    headers = context.headers,
    greeting = shared.greet("kizuna"),
    pkg = pkg.name,
  })
end
nk.register_rpc(echo, "echo")
nk.register_rpc(echo, "Camel_Echo")

-- payload {"message": ..., "code": ...}: raises error({message, code}).
nk.register_rpc(function(context, payload)
  local p = nk.json_decode(payload)
  error({ p.message, p.code })
end, "raise_code")

nk.register_rpc(function(context, payload)
  error("plain failure")
end, "raise_text")

nk.register_rpc(function(context, payload)
  return nil
end, "nothing")

nk.register_rpc(function(context, payload)
  return 42
end, "number")

nk.register_rpc(function(context, payload)
  local n = 0
  while true do n = n + 1 end
end, "spin")

nk.register_rpc(function(context, payload)
  -- A pcall cannot keep a runaway call alive.
  while true do pcall(function() while true do end end) end
end, "spin_pcall")

nk.register_rpc(function(context, payload)
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 1024 * 1024) .. i end
end, "hog")

-- What a script can reach.
nk.register_rpc(function(context, payload)
  local ok_socket = pcall(require, "socket")
  local ok_ffi = pcall(require, "ffi")
  local ok_jit = pcall(require, "jit")
  return nk.json_encode({
    io = type(io),
    debug = type(debug),
    dofile = type(dofile),
    loadfile = type(loadfile),
    os_execute = type(os.execute),
    os_getenv = type(os.getenv),
    os_time = type(os.time),
    os_clock = type(os.clock),
    string_rep = type(string.rep),
    bit_band = type(bit and bit.band),
    require_socket = ok_socket,
    require_ffi = ok_ffi,
    require_jit = ok_jit,
    nakama_same = require("nakama") == nk,
    require_string_buffer = pcall(require, "string.buffer"),
    newproxy = type(newproxy),
    source_chunk = loadstring("return 40 + 2")(),
    bytecode_chunk = select(2, loadstring(string.dump(function() return 1 end))),
    bytecode_load = select(2, load(string.dump(function() return 1 end))),
  })
end, "sandbox")

-- Returns the raw payload (for ?unwrap).
nk.register_rpc(function(context, payload)
  return "raw:" .. payload
end, "raw")

-- Tables that share subtables: 2^60 values once expanded.
nk.register_rpc(function(context, payload)
  local t = {}
  for i = 1, 60 do t = { t, t } end
  return nk.json_encode(t)
end, "explode")
