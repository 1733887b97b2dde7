/* Helpers shared by the nk functions over the store (lua/nk_account.c,
 * nk_storage.c, nk_social.c, nk_wallet.c): argument checks that raise
 * Nakama-style errors, Lua tables of users and groups, and memory that
 * cannot leak when a Lua error unwinds the C stack.
 *
 * Error discipline. A Lua error (kz_lua_raise, or a memory error inside any
 * lua_* call) longjmps out of the C function, skipping its cleanup. So the
 * nk functions check every argument before they allocate anything, keep
 * scratch memory in Lua userdata (kz_nk_scratch), and wrap what the store
 * hands back in a guard (kz_nk_guard) whose __gc frees it should a push
 * fail half-way. They never raise while a transaction or a cursor is open:
 * the store functions open and close their own.
 *
 * Every nk function starts with lua_settop(L, <its argument count>): the
 * absent arguments become nil, and what the helpers push (scratch memory,
 * JSON texts, guards) lands above them instead of posing as an argument.
 *
 * Errors carry gRPC codes: InvalidArgument (3) for bad arguments (with
 * the REST API's message where it has one, else Nakama's "expects ..."),
 * NotFound (5) for users or groups that do not exist, AlreadyExists (6),
 * PermissionDenied (7), FailedPrecondition (9) for a wallet that would go
 * negative, Unauthenticated (16) for a wrong password, Internal (13) or
 * Unavailable (14) for store failures. */
#ifndef KZ_LUA_NK_STORE_H
#define KZ_LUA_NK_STORE_H

#include "lua/internal.h"
#include "store/account.h"
#include "store/groups.h"

enum {
    KZ_NK_INVALID = 3,
    KZ_NK_NOT_FOUND = 5,
    KZ_NK_EXISTS = 6,
    KZ_NK_DENIED = 7,
    KZ_NK_PRECONDITION = 9,
    KZ_NK_INTERNAL = 13,
};

/* ---- Arguments (each raises InvalidArgument "expects <what> ...") ---- */

/* A required string argument (numbers are converted, as Lua does). The
 * pointer is valid while the argument stays on the stack. [-0, +0, v] */
const char *kz_nk_str(lua_State *L, int idx, const char *what, size_t *len);
/* An optional string: nil or absent -> NULL. [-0, +0, v] */
const char *kz_nk_optstr(lua_State *L, int idx, const char *what);
/* An optional boolean: nil or absent -> def. [-0, +0, v] */
bool kz_nk_optbool(lua_State *L, int idx, const char *what, bool def);
/* An optional whole number within lo..hi: nil or absent -> def. [-0, +0, v] */
int64_t kz_nk_optint(lua_State *L, int idx, const char *what, int64_t def, int64_t lo, int64_t hi);
/* An optional table: true when present (a table), false for nil. [-0, +0, v] */
bool kz_nk_opttable(lua_State *L, int idx, const char *what);

/* Copies the UUID s into out, lower-cased; false when it is not one. */
bool kz_nk_uuid_copy(const char *s, size_t len, char out[37]);
/* A required UUID argument, lower-cased into out. [-0, +0, v] */
void kz_nk_uuid(lua_State *L, int idx, const char *what, char out[37]);
/* An optional UUID argument: nil, absent or "" -> false (out = ""). [-0, +0, v] */
bool kz_nk_optuuid(lua_State *L, int idx, const char *what, char out[37]);

/* The table at idx (or nil/absent: NULL) as JSON object text, pushed as a
 * Lua string on top of the stack (nothing is pushed for nil). Raises when
 * it is not a table of key-value pairs. [-0, +(0|1), v] */
const char *kz_nk_json_object_arg(lua_State *L, int idx, const char *what);

/* Reads the array of strings at idx into an array of n C strings that live
 * in Lua memory (a userdata pushed on top, which anchors them). uuids: each
 * must be a UUID (canonicalised, the nil UUID refused). nil/absent gives
 * n = 0 and pushes nil. Raises "expects <what> ..." otherwise.
 * [-0, +1, v] */
char **kz_nk_strings_arg(lua_State *L, int idx, const char *what, bool uuids, int *n);

/* ---- Memory ---- */

/* n bytes of scratch memory owned by a userdata pushed on top of the
 * stack (collected with it). [-0, +1, m] */
void *kz_nk_scratch(lua_State *L, size_t n);

/* A guard for store results while they are turned into Lua values. */
typedef struct kz_nk_guard {
    void *p;                    /* what to free (NULL = nothing) */
    int n;                      /* element count handed to fn */
    void (*fn)(void *p, int n); /* frees p */
} kz_nk_guard_t;

/* Pushes an empty guard (a userdata whose __gc runs fn(p, n)). Fill p, n
 * and fn right after the store call; kz_nk_guard_done frees at once. The
 * guard must be created before the store call, so that creating it cannot
 * fail while it would hold memory. [-0, +1, m] */
kz_nk_guard_t *kz_nk_guard(lua_State *L);
void kz_nk_guard_done(kz_nk_guard_t *g);
/* A guard with size zeroed bytes of its own (kz_nk_guard_mem) for a
 * struct the store fills. That memory lives exactly as long as the guard,
 * so its fn can still read it when the guard is collected after an error
 * (scratch memory might be collected first). [-0, +1, m] */
kz_nk_guard_t *kz_nk_guard_with(lua_State *L, size_t size);
static inline void *kz_nk_guard_mem(kz_nk_guard_t *g)
{
    return g + 1;
}

/* Free functions in the guard's shape. */
void kz_nk_free_users(void *p, int n);   /* kz_user_t[n] */
void kz_nk_free_user(void *p, int n);    /* one kz_user_t (kz_user_clear), p not freed */
void kz_nk_free_groups(void *p, int n);  /* kz_group_t[n] */
void kz_nk_free_strings(void *p, int n); /* char *[n] of kz_strdup'ed strings */
void kz_nk_free_kz(void *p, int n);      /* one kz_malloc'ed block */
void kz_nk_free_json(void *p, int n);    /* json_decref */
void kz_nk_free_group(void *p, int n);   /* one kz_group_t (kz_group_clear), p not freed */

/* ---- Values ---- */

/* Pushes the Lua value of JSON text s (an object by convention); NULL,
 * empty or text that does not parse gives an empty table. [-0, +1, m] */
void kz_nk_push_json_text(lua_State *L, const char *s);
/* Sets t[k] = v on the table on top when v is non-empty. [-0, +0, m] */
void kz_nk_set_str(lua_State *L, const char *k, const char *v);
/* Sets t[k] = v ("" for NULL) on the table on top. [-0, +0, m] */
void kz_nk_set_str0(lua_State *L, const char *k, const char *v);
void kz_nk_set_num(lua_State *L, const char *k, double v);
void kz_nk_set_bool(lua_State *L, const char *k, bool v);

/* True when the user has an open realtime socket on this node. */
bool kz_nk_user_online(const char *user_id);

/* Nakama's user table: user_id, username, display_name, avatar_url,
 * lang_tag, location, timezone, the social ids that are set, online (an
 * open socket),
 * edge_count, create_time, update_time (unix seconds), metadata (table).
 * [-0, +1, m] */
void kz_nk_push_user(lua_State *L, const kz_user_t *u);
/* The same fields set on the table on top (account tables repeat them at
 * their top level). [-0, +0, m] */
void kz_nk_set_user_fields(lua_State *L, const kz_user_t *u);
/* Nakama's group table: id, creator_id, name, description, avatar_url,
 * lang_tag, open, edge_count, max_count, create_time, update_time,
 * metadata. [-0, +1, m] */
void kz_nk_push_group(lua_State *L, const kz_group_t *g);

/* Raises NotFound "User account not found." unless user_id exists.
 * [-0, +0, v] */
void kz_nk_user_must_exist(lua_State *L, const char *user_id);

#endif
