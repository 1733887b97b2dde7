/* Shared by the runtime and the files of the nk module (lua/nk_*.c). */
#ifndef KZ_LUA_INTERNAL_H
#define KZ_LUA_INTERNAL_H

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "lua/runtime.h"

struct kz_lua_vm {
    lua_State *L;
    size_t mem;           /* bytes the state holds */
    size_t mem_limit;     /* budget while a call runs */
    bool in_call;         /* budgets apply */
    bool over_memory;     /* the allocator refused past the budget */
    bool over_time;       /* the hook stopped the call */
    uint64_t deadline_ns; /* monotonic */
    kz_db_t *db;          /* the calling worker's connection, during a call */
    int raised_code;      /* code of the last kz_lua_raise ... */
    char raised[512];     /* ... and its message, to know it again uncaught */
    const kz_lua_ctx_t *ctx;
};

/* The server's configuration (set by kz_lua_init). */
const kz_config_t *kz_lua_config(void);

/* The state's vm (the allocator's user data). */
kz_lua_vm_t *kz_lua_self(lua_State *L);
/* The worker's connection for an nk function; raises a Lua error outside a
 * call (module load time). */
kz_db_t *kz_lua_db(lua_State *L);

/* Pushes the context table of c (nk.get_context, every callback). */
void kz_lua_push_ctx(lua_State *L, const kz_lua_ctx_t *c);

/* Lua value at idx -> JSON (new reference). Tables with keys 1..n are
 * arrays, other tables objects (an empty table is {}). NULL with a message
 * in err for functions, userdata, cycles deeper than 64, bad UTF-8. */
json_t *kz_lua_to_json(lua_State *L, int idx, char *err, size_t errlen);
/* Pushes the Lua form of v (null -> nil). */
void kz_lua_push_json(lua_State *L, const json_t *v);

/* Raises a string error, as Nakama's nk functions do (so scripts can
 * concatenate or format what pcall returns), and remembers its gRPC code:
 * when it reaches the top of the call uncaught, the call fails with that
 * code rather than Internal. */
int kz_lua_raise(lua_State *L, int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
/* Raises "store error" for a failed kz_db/kz_store call. */
int kz_lua_raise_store(lua_State *L, int rc) __attribute__((noreturn));

/* Optional arguments: nil or absent -> def. */
const char *kz_lua_optstr(lua_State *L, int idx, const char *def);
bool kz_lua_optbool(lua_State *L, int idx, bool def);
/* A table argument as JSON object text (json_encode'd), or NULL when nil;
 * raises when not a table. Owned (free()). */
char *kz_lua_opt_json_text(lua_State *L, int idx);

/* The nk module: each file adds its functions to the table on top of the
 * stack. */
void kz_nk_open_register(lua_State *L); /* lua/runtime.c: register_*, run_once */
void kz_nk_open_util(lua_State *L);     /* lua/nk_util.c */
void kz_nk_open_account(lua_State *L);  /* lua/nk_account.c: accounts, users, authenticate */
void kz_nk_open_storage(lua_State *L);  /* lua/nk_storage.c */
void kz_nk_open_social(lua_State *L);   /* lua/nk_social.c: friends, groups, notifications, chat */
void kz_nk_open_wallet(lua_State *L);   /* lua/nk_wallet.c */
void kz_nk_open_leaderboard(lua_State *L); /* lua/nk_leaderboard.c: leaderboards, tournaments */
void kz_nk_open_match(lua_State *L);       /* lua/match.c: match_create, match_get, match_list, match_signal */

/* The registry tables registrations go to (lua/runtime.c). */
#define KZ_LUA_REG_RPC "kizuna.rpc"
#define KZ_LUA_REG_BEFORE "kizuna.before"
#define KZ_LUA_REG_AFTER "kizuna.after"
#define KZ_LUA_REG_RT_BEFORE "kizuna.rt_before"
#define KZ_LUA_REG_RT_AFTER "kizuna.rt_after"
#define KZ_LUA_REG_MATCHED "kizuna.matchmaker_matched"
#define KZ_LUA_REG_LB_RESET "kizuna.leaderboard_reset"
#define KZ_LUA_REG_T_RESET "kizuna.tournament_reset"
#define KZ_LUA_REG_T_END "kizuna.tournament_end"
#define KZ_LUA_REG_SHUTDOWN "kizuna.shutdown"

#endif
