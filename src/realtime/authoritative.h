/* Authoritative matches: the registry, tick scheduling, input queues and
 * presences (the Lua side is lua/match.c).
 *
 * A match owns one Lua state and is only ever run by one thread at a time:
 * its work (join attempts, joins and leaves, loop ticks, signals,
 * terminate) runs as one pool job at a time, serialized by the match's
 * `scheduled` flag. One timer thread marks ticks due at each match's
 * tick_rate (1..60); a tick that is still waiting when the next one comes
 * is skipped and counted. I/O threads never run Lua and never block: they
 * queue a call or a data message (bounded) and return.
 *
 * Match ids are "<uuid>.<node>" (node = config `name`). Match state lives
 * in this process only: it is lost on restart. */
#ifndef KZ_REALTIME_AUTHORITATIVE_H
#define KZ_REALTIME_AUTHORITATIVE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/ws.h"
#include "realtime/router.h"

struct kz_app;
struct kz_db;
struct kz_ml;

/* Bounds (Nakama's where it has them). */
#define KZ_AM_INPUT_MAX 128    /* data messages waiting for match_loop; more are dropped */
#define KZ_AM_ATTEMPTS_MAX 128 /* join attempts waiting */
#define KZ_AM_SIGNALS_MAX 10   /* signals waiting */
#define KZ_AM_DEFERRED_MAX 128 /* broadcast_message_deferred per tick */
#define KZ_AM_LABEL_MAX 2048   /* label bytes */

typedef struct kz_am kz_am_t;

/* Starts the tick thread (after the worker pool). Returns 0 or -1. */
int kz_am_start(struct kz_app *app);
/* Shutdown, before the I/O threads stop: every match gets match_terminate
 * with the grace period, keeps ticking until it ends or the grace runs out,
 * and is then stopped; the tick thread exits. Waits for it (bounded). */
void kz_am_stop(void);
/* After the pool is gone: frees whatever is left. */
void kz_am_free_all(void);

/* ---- socket side (the session's I/O thread) ---- */

/* match_join of an authoritative match ("<uuid>.<node>" with a node part;
 * metadata an object of strings or NULL): queues the join attempt; the
 * reply (`match`, or error 5 with the handler's reason) comes later. Error
 * 4 at once when the match does not run here. */
void kz_am_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, const char *match_id, json_t *metadata);
/* match_leave: queues the leave when s is in the match (the caller
 * acknowledges either way). */
void kz_am_leave(kz_rt_sess_t *s, const char *match_id);
/* match_data_send: into the match's input queue when s is a member (else
 * dropped, as is data past KZ_AM_INPUT_MAX). */
void kz_am_data(kz_rt_sess_t *s, const char *match_id, int64_t op_code, const unsigned char *data, size_t len,
                bool reliable);
/* session.single_match: s leaves every match it is in or asked to join,
 * except keep (a match id; NULL: all). */
void kz_am_leave_others(kz_rt_sess_t *s, const char *keep);
/* The session closed: leaves every match it is in or asked to join. */
void kz_am_session_closed(kz_rt_sess_t *s);

/* ---- runtime side (worker threads) ---- */

/* Creates a match running module: builds its Lua state (lua/match.c),
 * runs match_init with params (a JSON object or NULL) on the calling
 * worker (db is its connection), registers it and starts its ticks. The
 * match id goes to id_out. Returns 0, or -1 with err (code + message). */
struct kz_lua_error;
int kz_am_create(struct kz_db *db, const char *module, json_t *params, char id_out[128],
                 struct kz_lua_error *err);

/* A listing entry: Nakama's Match message {match_id, authoritative,
 * label, size, tick_rate, handler_name}. */
json_t *kz_am_get_json(const char *match_id);

/* Listing filters; label and query NULL when unset, sizes -1 when unset. */
typedef struct kz_am_filter {
    int limit;
    int authoritative; /* -1 unset, 0 false, 1 true */
    const char *label;
    const char *query;
    int min_size, max_size;
} kz_am_filter_t;
/* Matches as an array of Match objects (new reference), or NULL with err
 * set for a bad query. */
json_t *kz_am_list(const kz_am_filter_t *f, char *err, size_t errlen);

/* Runs match_signal on the match's worker and waits for its result
 * (at most timeout_ms). Returns 0 with *result (owned, may be NULL), or
 * -1 with err: not found (code 5), queue full, timeout, the caller's own
 * match, handler error. */
int kz_am_signal(const char *match_id, const char *data, size_t len, int timeout_ms, char **result,
                 size_t *rlen, struct kz_lua_error *err);

/* ---- dispatcher (the match's own job, from lua/match.c) ---- */

typedef struct kz_am_presence_ref {
    const char *user_id, *session_id, *username;
} kz_am_presence_ref_t;

/* broadcast_message(_deferred): to targets (session ids, NULL = all), with
 * sender (NULL = none). Returns 0, or -1 with a message in err. */
int kz_am_broadcast(kz_am_t *m, int64_t op_code, const char *data, size_t len, const char *const *targets,
                    int ntargets, bool all, const kz_am_presence_ref_t *sender, bool reliable, bool deferred,
                    char *err, size_t errlen);
/* match_kick(presences by session id). */
void kz_am_kick(kz_am_t *m, const char *const *session_ids, int n);
/* match_label_update. -1 when too long. */
int kz_am_label_update(kz_am_t *m, const char *label, size_t len);
/* The match whose job runs on this thread, or NULL. */
kz_am_t *kz_am_current(void);

/* ---- stats ---- */
typedef struct kz_am_stats {
    int64_t matches;       /* running now */
    int64_t ticks;         /* loop calls */
    int64_t skipped;       /* ticks skipped (previous not done) */
    int64_t slow;          /* ticks longer than their period */
    double lat_avg_ms;     /* start of a tick after its due time */
    double lat_p99_ms, lat_max_ms;
    double run_avg_ms;     /* duration of a tick (joins, leaves, loop) */
} kz_am_stats_t;
void kz_am_stats(kz_am_stats_t *out);

/* ---- pure helpers (unit tests) ---- */

/* The next due instant of a tick after one due at `due` ran (period ns),
 * at `now`: due + period, or, when that is already past, the first
 * period boundary after now; *skipped counts the boundaries passed. */
uint64_t kz_am_next_due(uint64_t due, uint64_t period, uint64_t now, int64_t *skipped);
/* Does a match with this label and size pass f's label and size filters? */
bool kz_am_filter_pass(const kz_am_filter_t *f, const char *label, int size);

#endif
