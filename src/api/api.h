/* The REST API: the route table, the per-call context handlers receive, and
 * the reply helpers that produce Nakama's JSON and error shapes.
 *
 * kz_api_dispatch runs on the I/O thread: it matches the route, answers
 * what needs no database at once (health check, CORS preflight, unknown
 * routes, authentication failures) and sends the rest to the worker pool,
 * where the route's handler runs as plain blocking code. */
#ifndef KZ_API_API_H
#define KZ_API_API_H

#include <jansson.h>
#include <stdbool.h>

#include "api/sessions.h"
#include "core/config.h"
#include "core/jwt.h"
#include "net/http.h"
#include "net/pool.h"
#include "store/db.h"

/* gRPC status codes, as Nakama's errors carry them. */
enum {
    KZ_GRPC_OK = 0,
    KZ_GRPC_INVALID_ARGUMENT = 3,
    KZ_GRPC_NOT_FOUND = 5,
    KZ_GRPC_ALREADY_EXISTS = 6,
    KZ_GRPC_PERMISSION_DENIED = 7,
    KZ_GRPC_RESOURCE_EXHAUSTED = 8,
    KZ_GRPC_FAILED_PRECONDITION = 9,
    KZ_GRPC_UNIMPLEMENTED = 12,
    KZ_GRPC_INTERNAL = 13,
    KZ_GRPC_UNAVAILABLE = 14,
    KZ_GRPC_UNAUTHENTICATED = 16,
};

/* Process-wide state shared by every thread; read-only after start-up
 * except through the objects' own locks. */
typedef struct kz_app {
    const kz_config_t *cfg;
    kz_pool_t *pool;
    kz_sessions_t *sessions; /* revoked sessions */
    kz_server_t *server;     /* the I/O threads, for realtime delivery */
} kz_app_t;

/* What a worker thread owns. */
typedef struct kz_worker {
    int index;
    kz_db_t *db;
    struct kz_lua_vm *lua; /* this thread's Lua state (lua/runtime.h) */
} kz_worker_t;

/* The worker running the current job on this thread (NULL elsewhere). */
kz_worker_t *kz_worker_current(void);
void kz_worker_set_current(kz_worker_t *w);

/* SOCKET: the realtime upgrade, authenticated and answered on the I/O thread. */
/* RPC: a session or the runtime's http_key (query or Basic). */
typedef enum { KZ_AUTH_NONE, KZ_AUTH_SERVER_KEY, KZ_AUTH_SESSION, KZ_AUTH_SOCKET, KZ_AUTH_RPC } kz_auth_t;

typedef struct kz_call kz_call_t;
typedef void (*kz_handler_fn)(kz_call_t *call);

typedef struct kz_route {
    int method;          /* HTTP_GET, ... */
    const char *pattern; /* "/v2/user/{user_id}/group" */
    const char *name;    /* metrics label, e.g. "AuthenticateDevice" */
    kz_auth_t auth;
    kz_handler_fn handler; /* runs on a worker */
} kz_route_t;

#define KZ_MAX_PATH_PARAMS 4

/* One API call being served: the pool job, the exchange it answers, and
 * what the dispatcher learnt (route, path parameters, session). */
struct kz_call {
    kz_job_t job; /* first member: the pool hands it back */
    kz_exchange_t *ex;
    const kz_app_t *app;
    const kz_route_t *route;
    kz_worker_t *worker; /* set when the job runs */
    kz_db_t *db;         /* the worker's connection */
    kz_slice_t params[KZ_MAX_PATH_PARAMS];
    int nparams;
    kz_claims_t session; /* verified token, for KZ_AUTH_SESSION routes (and RPC) */
    bool http_key;       /* KZ_AUTH_RPC: authorised by the http_key, no user */
    /* What a before hook rewrote: params[i] / ex->req.query point here. */
    char *owned_params[KZ_MAX_PATH_PARAMS];
    char *owned_query;
    char *session_token; /* the raw bearer token (owned) */
};

/* The route table and its size (for metrics labels). */
extern const kz_route_t kz_routes[];
extern const int kz_nroutes;
const char *const *kz_route_names(void);

/* Finds the route for method and path (HTTP_GET, ...); fills the path
 * parameters. NULL when none matches; *path_known then tells whether the
 * path exists under another method (501) or not at all (404). */
const kz_route_t *kz_route_find(int method, kz_slice_t path, kz_slice_t *params, int *nparams,
                                 bool *path_known);

/* Dispatcher: kz_dispatch_fn for the HTTP server; arg is the kz_app_t. */
void kz_api_dispatch(kz_exchange_t *ex, void *arg);

/* Worker-pool context hooks: one kz_worker_t with its own store connection. */
void *kz_api_worker_init(int i, void *app, char *err, size_t errlen);
void kz_api_worker_fini(void *worker, void *app);

/* ---- replies (worker or I/O thread) ---- */

/* HTTP status for a gRPC code. */
int kz_grpc_http_status(int code);
/* Answers {"code":code,"message":msg}; Unauthenticated adds WWW-Authenticate. */
void kz_reply_error(kz_exchange_t *ex, int code, const char *msg);
/* Answers 200 with obj as compact JSON; steals obj. */
void kz_reply_json(kz_exchange_t *ex, json_t *obj);
/* Answers an RPC error: {"error":msg,"message":msg,"code":code}. */
void kz_reply_rpc_error(kz_exchange_t *ex, int code, const char *msg);
/* Answers 200 {}. */
void kz_reply_empty(kz_exchange_t *ex);
/* Answers 500 for a store failure and logs it. */
void kz_reply_store_error(kz_call_t *call, int rc);

/* ---- response fields (api/output.c) ---- */

/* Sets key to the string v unless v is NULL or empty (Nakama omits empty
 * scalar fields). */
void kz_json_put_str(json_t *o, const char *key, const char *v);
/* Sets key to unix milliseconds ms as RFC 3339 in whole seconds, as Nakama
 * sends API times; nothing when ms <= 0 (unset). */
void kz_json_put_time(json_t *o, const char *key, int64_t ms);

/* ---- request input (api/input.c) ---- */

/* Parses the body as a JSON object (an empty body is {}). On failure
 * answers 400 and returns NULL. New reference. */
json_t *kz_body_object(kz_call_t *call);
/* Field of obj by its snake_case name or its lowerCamelCase form (borrowed). */
json_t *kz_json_field(json_t *obj, const char *snake);
/* String field: 0 with *out NULL when absent or null, 0 with *out set when a
 * string, -1 (and a 400 answered) when another type. */
int kz_json_string(kz_call_t *call, json_t *obj, const char *snake, const char **out);
/* map<string,string> field: *out is a new reference or NULL when absent; -1
 * and 400 when not an object of strings. */
int kz_json_vars(kz_call_t *call, json_t *obj, const char *snake, json_t **out);

/* First value of a query parameter (snake_case or lowerCamelCase key),
 * percent-decoded, owned; NULL when absent. */
char *kz_query_get(kz_slice_t query, const char *key);
/* Every value of a repeated query parameter; returns the count and an
 * owned array of owned strings in *out (free with kz_store_strings_free). */
int kz_query_all(kz_slice_t query, const char *key, char ***out);
/* Boolean query parameter: *out keeps def when absent; -1 when not
 * true/false/1/0. */
int kz_query_bool(kz_slice_t query, const char *key, bool def, bool *out);
/* The request's headers as {"Canonical-Name": ["value", ...]} (names in
 * Go's canonical form, as Nakama hands them to the runtime). New reference. */
json_t *kz_request_headers(const kz_http_req_t *r);
/* Percent-decodes s into an owned string; NULL on a bad escape. */
char *kz_url_decode(const char *s, size_t n);

#endif
