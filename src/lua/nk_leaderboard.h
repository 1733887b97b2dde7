/* What the Lua runtime needs from lua/nk_leaderboard.c beyond the nk
 * functions: the arguments of the leaderboard scheduler's callbacks. */
#ifndef KZ_LUA_NK_LEADERBOARD_H
#define KZ_LUA_NK_LEADERBOARD_H

#include <lua.h>

#include "rank/board.h"
#include "store/db.h"

/* Pushes the arguments Nakama passes to the callback registered for ev
 * (after the context table): leaderboard resets get (leaderboard table,
 * reset), tournament resets and ends (tournament table as it stood just
 * before the instant, end_active, reset). Returns how many were pushed.
 * db is the worker's connection (a tournament's size is read from it).
 * [-0, +n, m] */
int kz_nk_board_event_args(lua_State *L, kz_db_t *db, const kz_board_event_t *ev);

/* The registry key of the callback for ev (KZ_LUA_REG_LB_RESET, ...) and
 * the execution mode its context carries ("leaderboard_reset", ...). */
const char *kz_nk_board_event_reg(const kz_board_event_t *ev);
const char *kz_nk_board_event_mode(const kz_board_event_t *ev);

#endif
