local nk = require("nakama")

local t = nil
return t.field
