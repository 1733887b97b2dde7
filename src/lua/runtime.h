/* The Lua runtime: server scripts in LuaJIT (the Lua 5.1 dialect of
 * Nakama's Lua modules) with the `nk` module.
 *
 * At start-up kz_lua_init reads every .lua file under runtime.path into
 * memory and runs them once in a probe state: a module error stops start-up
 * with the file and line, and the names of what the modules registered
 * (RPC ids, before/after hooks) become a read-only table any thread can ask
 * (kz_lua_has_*), so a route without a hook never touches Lua.
 *
 * Each worker-pool thread owns one state (kz_lua_vm_t) with the modules
 * loaded; states never run on an I/O thread. Every call has a time budget
 * (an instruction-count hook checks the clock; LuaJIT runs hooks only in its
 * interpreter, so the JIT compiler is off) and a memory budget (the
 * allocator refuses past it). A call that breaks a budget fails with an
 * error and its state is discarded and rebuilt, never reused.
 *
 * Sandbox: base, package (require of the modules only), table, string,
 * math, bit, and os.clock/date/difftime/time. No io, os.execute, file
 * loading, debug or ffi. */
#ifndef KZ_LUA_RUNTIME_H
#define KZ_LUA_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "store/db.h"

typedef struct kz_lua_vm kz_lua_vm_t;

/* Outcome of a call into Lua. */
enum {
    KZ_LUA_OK = 0,
    KZ_LUA_NOT_FOUND = 1, /* no such RPC / hook */
    KZ_LUA_ERROR = 2,     /* the script raised an error (code + message) */
    KZ_LUA_REJECTED = 3,  /* a before hook returned nil */
};

typedef struct kz_lua_error {
    int code; /* gRPC code the script raised (13 Internal by default) */
    char message[512];
} kz_lua_error_t;

/* Who and what a call is for: becomes the context table (first argument of
 * every callback). Strings may be NULL (then left out). */
typedef struct kz_lua_ctx {
    const char *mode;        /* execution mode: "rpc", "before", "after", ... */
    const char *user_id;
    const char *username;
    int64_t user_session_exp;
    json_t *vars;            /* session vars, object of strings, borrowed */
    const char *session_id;  /* socket calls */
    const char *lang;        /* socket calls */
    json_t *query_params;    /* object: name -> [values], borrowed */
    json_t *headers;         /* object: name -> [values], borrowed */
    const char *client_ip;
    int client_port;
} kz_lua_ctx_t;

/* Loads the modules under cfg->runtime.path (a missing directory means no
 * modules) and runs them, and then the run_once functions, in a probe state
 * with connection db (modules may call nk functions at load time, e.g.
 * nk.leaderboard_create). Returns 0, or -1 with the first error
 * (file:line: message) in err. */
int kz_lua_init(const kz_config_t *cfg, kz_db_t *db, char *err, size_t errlen);
void kz_lua_shutdown(void);

/* What the modules registered (any thread, after kz_lua_init). Names are
 * matched case-insensitively: RPC ids, API method names ("WriteStorageObjects")
 * and realtime message names ("ChannelJoin"). */
bool kz_lua_has_rpc(const char *id);
bool kz_lua_has_before(const char *method);
bool kz_lua_has_after(const char *method);
bool kz_lua_has_rt_before(const char *message);
bool kz_lua_has_rt_after(const char *message);
/* Number of modules loaded. */
int kz_lua_module_count(void);

/* A state with the modules loaded (worker threads; db is the worker's
 * connection). NULL with err set when the modules fail. */
kz_lua_vm_t *kz_lua_vm_new(kz_db_t *db, char *err, size_t errlen);
void kz_lua_vm_free(kz_lua_vm_t *vm);

/* The calls. db is the calling worker's connection, used by nk functions.
 * *vmp may be replaced (a state that broke a budget is rebuilt). */

/* RPC id with payload (may be NULL): *out receives the returned string
 * (owned, NULL when the function returned nil). */
int kz_lua_rpc(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, const char *id,
               const char *payload, size_t len, char **out, size_t *outlen, kz_lua_error_t *err);
/* Before hook of an API method or realtime message (rt true): *msg is the
 * request's JSON form; on KZ_LUA_OK it is replaced by what the hook
 * returned. KZ_LUA_REJECTED when the hook returned nil. */
int kz_lua_before(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, bool rt, const char *name,
                  json_t **msg, kz_lua_error_t *err);
/* A callback registered under registry key reg (KZ_LUA_REG_LB_RESET, ...
 * of lua/internal.h): push_args pushes its arguments after the context
 * table and returns how many; when take is not NULL, the function's first
 * result is on top of the stack when take runs (it must not pop it) and
 * take's return value is the call's (KZ_LUA_OK, or KZ_LUA_ERROR after
 * filling err). KZ_LUA_NOT_FOUND when nothing is registered. */
struct lua_State;
int kz_lua_callback(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, const char *reg,
                    int (*push_args)(struct lua_State *L, void *arg),
                    int (*take)(struct lua_State *L, void *arg, kz_lua_error_t *err), void *arg,
                    kz_lua_error_t *err);

/* After hook: sees the response (may be NULL) and the request; errors are
 * logged, never change the reply. */
void kz_lua_after(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, bool rt, const char *name,
                  json_t *resp, json_t *req);

#endif
