/* The Lua side of authoritative matches: a match's own state with its
 * module, the seven handler calls (each under the runtime's call budgets),
 * the dispatcher table, and the nk.match_* functions.
 *
 * A kz_ml_t is used by one thread at a time (the match's job). A handler
 * that returns nil state, raises, returns the wrong shape or breaks a
 * budget ends its match: the call reports KZ_ML_STOP or KZ_ML_ERROR and the
 * caller (realtime/authoritative.c) ends the match. */
#ifndef KZ_LUA_MATCH_H
#define KZ_LUA_MATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lua/runtime.h"
#include "realtime/authoritative.h"

typedef struct kz_ml kz_ml_t;

enum {
    KZ_ML_OK = 0,
    KZ_ML_STOP = 1,  /* the handler returned nil state: the match ends */
    KZ_ML_ERROR = 2, /* raised, bad return values or a broken budget: err says which */
};

/* What the handlers' context table shows of the match. */
typedef struct kz_ml_info {
    const char *match_id, *node, *label;
    int tick_rate;
} kz_ml_info_t;

/* A presence as handlers see it ({user_id, session_id, username, node},
 * reason for joins and leaves: 1 join, 3 leave, 4 disconnect). */
typedef struct kz_ml_presence {
    const char *user_id, *session_id, *username;
    int reason;
} kz_ml_presence_t;

/* One message for match_loop. */
typedef struct kz_ml_msg {
    kz_ml_presence_t sender;
    int64_t op_code;
    const unsigned char *data;
    size_t len;
    bool reliable;
    int64_t receive_time_ms;
} kz_ml_msg_t;

/* A state with the modules loaded and module required; fails (err) when
 * the module is missing, does not load, or lacks one of the seven
 * functions. m is the match the dispatcher acts on. */
kz_ml_t *kz_ml_new(kz_db_t *db, kz_am_t *m, const char *module, kz_lua_error_t *err);
void kz_ml_free(kz_ml_t *ml);

/* match_init(context, params): *tick_rate (1..60) and *label (owned) on
 * KZ_ML_OK. params is a JSON object or NULL. */
int kz_ml_init(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, json_t *params, int *tick_rate,
               char **label, kz_lua_error_t *err);
/* match_join_attempt: *accept and, when rejected, *reason (owned, may be
 * NULL). */
int kz_ml_join_attempt(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick,
                       const kz_ml_presence_t *p, json_t *metadata, bool *accept, char **reason,
                       kz_lua_error_t *err);
/* match_join / match_leave with n presences. */
int kz_ml_join(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, const kz_ml_presence_t *p,
               int n, bool leave, kz_lua_error_t *err);
int kz_ml_loop(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, const kz_ml_msg_t *msgs,
               int n, kz_lua_error_t *err);
int kz_ml_terminate(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, int grace_sec,
                    kz_lua_error_t *err);
/* match_signal: *result (owned, NULL when the handler returned none). */
int kz_ml_signal(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, const char *data,
                 size_t len, char **result, size_t *rlen, kz_lua_error_t *err);

/* Bytes the state holds (for stats). */
size_t kz_ml_memory(const kz_ml_t *ml);

#endif
