-- The boards of bench/leaderboard.sh.
local nk = require("nakama")
nk.leaderboard_create("bench_best", false, "desc", "best", "", nil, true)
nk.leaderboard_create("bench_incr", false, "desc", "incr", "", nil, true)
