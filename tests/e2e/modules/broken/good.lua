local nk = require("nakama")
nk.register_rpc(function() return "" end, "fine")
