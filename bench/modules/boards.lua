-- The boards of bench/leaderboard.sh and the load generator's scenarios.
-- Created once at start-up (run_once), not again in every match's state.
local nk = require("nakama")
nk.run_once(function(context)
  nk.leaderboard_create("bench_best", false, "desc", "best", "", nil, true)
  nk.leaderboard_create("bench_incr", false, "desc", "incr", "", nil, true)
end)
