/* The route table and the dispatcher (I/O thread), the worker side of an
 * API call, and the reply helpers. */
#include <http_parser.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/handlers.h"
#include "api/hooks.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "lua/runtime.h"
#include "realtime/socket.h"

/* Every REST route. Handlers run on a worker thread, except those the
 * dispatcher answers itself (health check). Order matters only where two
 * patterns could match the same path: literal routes come first. */
const kz_route_t kz_routes[] = {
    {HTTP_GET, "/healthcheck", "Healthcheck", KZ_AUTH_NONE, NULL},
    {HTTP_GET, "/", "Root", KZ_AUTH_NONE, NULL},
    {HTTP_GET, "/ws", "Socket", KZ_AUTH_SOCKET, NULL},
    {HTTP_POST, "/v2/account/authenticate/device", "AuthenticateDevice", KZ_AUTH_SERVER_KEY, kz_h_authenticate_device},
    {HTTP_POST, "/v2/account/authenticate/email", "AuthenticateEmail", KZ_AUTH_SERVER_KEY, kz_h_authenticate_email},
    {HTTP_POST, "/v2/account/authenticate/custom", "AuthenticateCustom", KZ_AUTH_SERVER_KEY, kz_h_authenticate_custom},
    {HTTP_POST, "/v2/account/authenticate/apple", "AuthenticateApple", KZ_AUTH_SERVER_KEY, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/authenticate/facebook", "AuthenticateFacebook", KZ_AUTH_SERVER_KEY, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/authenticate/facebookinstantgame", "AuthenticateFacebookInstantGame", KZ_AUTH_SERVER_KEY, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/authenticate/gamecenter", "AuthenticateGameCenter", KZ_AUTH_SERVER_KEY, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/authenticate/google", "AuthenticateGoogle", KZ_AUTH_SERVER_KEY, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/authenticate/steam", "AuthenticateSteam", KZ_AUTH_SERVER_KEY, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/session/refresh", "SessionRefresh", KZ_AUTH_SERVER_KEY, kz_h_session_refresh},
    {HTTP_POST, "/v2/session/logout", "SessionLogout", KZ_AUTH_SESSION, kz_h_session_logout},
    {HTTP_GET, "/v2/account", "GetAccount", KZ_AUTH_SESSION, kz_h_account_get},
    {HTTP_PUT, "/v2/account", "UpdateAccount", KZ_AUTH_SESSION, kz_h_account_update},
    {HTTP_DELETE, "/v2/account", "DeleteAccount", KZ_AUTH_SESSION, kz_h_account_delete},
    {HTTP_POST, "/v2/account/link/device", "LinkDevice", KZ_AUTH_SESSION, kz_h_link_device},
    {HTTP_POST, "/v2/account/link/email", "LinkEmail", KZ_AUTH_SESSION, kz_h_link_email},
    {HTTP_POST, "/v2/account/link/custom", "LinkCustom", KZ_AUTH_SESSION, kz_h_link_custom},
    {HTTP_POST, "/v2/account/link/apple", "LinkApple", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/link/facebook", "LinkFacebook", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/link/facebookinstantgame", "LinkFacebookInstantGame", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/link/gamecenter", "LinkGameCenter", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/link/google", "LinkGoogle", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/link/steam", "LinkSteam", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/unlink/device", "UnlinkDevice", KZ_AUTH_SESSION, kz_h_unlink_device},
    {HTTP_POST, "/v2/account/unlink/email", "UnlinkEmail", KZ_AUTH_SESSION, kz_h_unlink_email},
    {HTTP_POST, "/v2/account/unlink/custom", "UnlinkCustom", KZ_AUTH_SESSION, kz_h_unlink_custom},
    {HTTP_POST, "/v2/account/unlink/apple", "UnlinkApple", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/unlink/facebook", "UnlinkFacebook", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/unlink/facebookinstantgame", "UnlinkFacebookInstantGame", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/unlink/gamecenter", "UnlinkGameCenter", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/unlink/google", "UnlinkGoogle", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/account/unlink/steam", "UnlinkSteam", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_GET, "/v2/user", "GetUsers", KZ_AUTH_SESSION, kz_h_users_get},
    {HTTP_GET, "/v2/user/{user_id}/group", "ListUserGroups", KZ_AUTH_SESSION, kz_h_user_groups_list},
    {HTTP_GET, "/v2/friend", "ListFriends", KZ_AUTH_SESSION, kz_h_friends_list},
    {HTTP_POST, "/v2/friend", "AddFriends", KZ_AUTH_SESSION, kz_h_friends_add},
    {HTTP_DELETE, "/v2/friend", "DeleteFriends", KZ_AUTH_SESSION, kz_h_friends_delete},
    {HTTP_POST, "/v2/friend/block", "BlockFriends", KZ_AUTH_SESSION, kz_h_friends_block},
    {HTTP_GET, "/v2/friend/friends", "ListFriendsOfFriends", KZ_AUTH_SESSION, kz_h_friends_of_friends},
    {HTTP_POST, "/v2/friend/facebook", "ImportFacebookFriends", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_POST, "/v2/friend/steam", "ImportSteamFriends", KZ_AUTH_SESSION, kz_h_social_unconfigured},
    {HTTP_GET, "/v2/channel/{channel_id}", "ListChannelMessages", KZ_AUTH_SESSION, kz_h_channel_messages_list},
    {HTTP_GET, "/v2/notification", "ListNotifications", KZ_AUTH_SESSION, kz_h_notifications_list},
    {HTTP_DELETE, "/v2/notification", "DeleteNotifications", KZ_AUTH_SESSION, kz_h_notifications_delete},
    {HTTP_GET, "/v2/group", "ListGroups", KZ_AUTH_SESSION, kz_h_groups_list},
    {HTTP_POST, "/v2/group", "CreateGroup", KZ_AUTH_SESSION, kz_h_group_create},
    {HTTP_PUT, "/v2/group/{group_id}", "UpdateGroup", KZ_AUTH_SESSION, kz_h_group_update},
    {HTTP_DELETE, "/v2/group/{group_id}", "DeleteGroup", KZ_AUTH_SESSION, kz_h_group_delete},
    {HTTP_POST, "/v2/group/{group_id}/add", "AddGroupUsers", KZ_AUTH_SESSION, kz_h_group_add},
    {HTTP_POST, "/v2/group/{group_id}/ban", "BanGroupUsers", KZ_AUTH_SESSION, kz_h_group_ban},
    {HTTP_POST, "/v2/group/{group_id}/demote", "DemoteGroupUsers", KZ_AUTH_SESSION, kz_h_group_demote},
    {HTTP_POST, "/v2/group/{group_id}/join", "JoinGroup", KZ_AUTH_SESSION, kz_h_group_join},
    {HTTP_POST, "/v2/group/{group_id}/kick", "KickGroupUsers", KZ_AUTH_SESSION, kz_h_group_kick},
    {HTTP_POST, "/v2/group/{group_id}/leave", "LeaveGroup", KZ_AUTH_SESSION, kz_h_group_leave},
    {HTTP_POST, "/v2/group/{group_id}/promote", "PromoteGroupUsers", KZ_AUTH_SESSION, kz_h_group_promote},
    {HTTP_GET, "/v2/group/{group_id}/user", "ListGroupUsers", KZ_AUTH_SESSION, kz_h_group_users_list},
    {HTTP_POST, "/v2/storage", "ReadStorageObjects", KZ_AUTH_SESSION, kz_h_storage_read},
    {HTTP_PUT, "/v2/storage", "WriteStorageObjects", KZ_AUTH_SESSION, kz_h_storage_write},
    {HTTP_PUT, "/v2/storage/delete", "DeleteStorageObjects", KZ_AUTH_SESSION, kz_h_storage_delete},
    {HTTP_GET, "/v2/storage/{collection}", "ListStorageObjects", KZ_AUTH_SESSION, kz_h_storage_list},
    {HTTP_GET, "/v2/storage/{collection}/{user_id}", "ListStorageObjects2", KZ_AUTH_SESSION, kz_h_storage_list},
    {HTTP_GET, "/v2/match", "ListMatches", KZ_AUTH_SESSION, kz_h_matches_list},
    {HTTP_GET, "/v2/matchmaker/stats", "GetMatchmakerStats", KZ_AUTH_SESSION, kz_h_matchmaker_stats},
    {HTTP_POST, "/v2/rpc/{id}", "RpcFunc", KZ_AUTH_RPC, kz_h_rpc},
    {HTTP_GET, "/v2/rpc/{id}", "RpcFunc2", KZ_AUTH_RPC, kz_h_rpc},
    {HTTP_GET, "/v2/leaderboard/{leaderboard_id}", "ListLeaderboardRecords", KZ_AUTH_SESSION, kz_h_leaderboard_records_list},
    {HTTP_POST, "/v2/leaderboard/{leaderboard_id}", "WriteLeaderboardRecord", KZ_AUTH_SESSION, kz_h_leaderboard_record_write},
    {HTTP_DELETE, "/v2/leaderboard/{leaderboard_id}", "DeleteLeaderboardRecord", KZ_AUTH_SESSION, kz_h_leaderboard_record_delete},
    {HTTP_GET, "/v2/leaderboard/{leaderboard_id}/owner/{owner_id}", "ListLeaderboardRecordsAroundOwner", KZ_AUTH_SESSION, kz_h_leaderboard_records_around_owner},
    {HTTP_GET, "/v2/tournament", "ListTournaments", KZ_AUTH_SESSION, kz_h_tournaments_list},
    {HTTP_GET, "/v2/tournament/{tournament_id}", "ListTournamentRecords", KZ_AUTH_SESSION, kz_h_tournament_records_list},
    {HTTP_PUT, "/v2/tournament/{tournament_id}", "WriteTournamentRecord", KZ_AUTH_SESSION, kz_h_tournament_record_write},
    {HTTP_POST, "/v2/tournament/{tournament_id}", "WriteTournamentRecord2", KZ_AUTH_SESSION, kz_h_tournament_record_write},
    {HTTP_DELETE, "/v2/tournament/{tournament_id}", "DeleteTournamentRecord", KZ_AUTH_SESSION, kz_h_tournament_record_delete},
    {HTTP_POST, "/v2/tournament/{tournament_id}/join", "JoinTournament", KZ_AUTH_SESSION, kz_h_tournament_join},
    {HTTP_GET, "/v2/tournament/{tournament_id}/owner/{owner_id}", "ListTournamentRecordsAroundOwner", KZ_AUTH_SESSION, kz_h_tournament_records_around_owner},
    {HTTP_PUT, "/v2/kizuna/test/clock", "KizunaTestClock", KZ_AUTH_RPC, kz_h_test_clock},
};
const int kz_nroutes = (int)(sizeof kz_routes / sizeof kz_routes[0]);

const char *const *kz_route_names(void)
{
    static const char *names[sizeof kz_routes / sizeof kz_routes[0]];
    for (int i = 0; i < kz_nroutes; i++) names[i] = kz_routes[i].name;
    return names;
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */

int kz_grpc_http_status(int code)
{
    switch (code) {
    case 0: return 200;
    case 1: return 499;
    case 3: return 400;
    case 4: return 504;
    case 5: return 404;
    case 6: return 409;
    case 7: return 403;
    case 8: return 429;
    case 9: return 400;
    case 10: return 409;
    case 11: return 400;
    case 12: return 501;
    case 14: return 503;
    case 16: return 401;
    default: return 500;
    }
}

void kz_reply_json(kz_exchange_t *ex, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    /* jansson allocates with malloc; the exchange frees with kz_free (free). */
    kz_exchange_set(ex, 200, s, strlen(s));
}

void kz_reply_empty(kz_exchange_t *ex)
{
    kz_exchange_set(ex, 200, kz_strdup("{}"), 2);
}

void kz_reply_error(kz_exchange_t *ex, int code, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "code", json_integer(code));
    json_object_set_new(o, "message", json_string(msg));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    kz_exchange_set(ex, kz_grpc_http_status(code), s, strlen(s));
    if (code == KZ_GRPC_UNAUTHENTICATED) kz_exchange_add_header(ex, "WWW-Authenticate", msg);
}

void kz_reply_rpc_error(kz_exchange_t *ex, int code, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    json_object_set_new(o, "message", json_string(msg));
    json_object_set_new(o, "code", json_integer(code));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    kz_exchange_set(ex, kz_grpc_http_status(code), s, strlen(s));
}

void kz_reply_store_error(kz_call_t *call, int rc)
{
    kz_log_error("%s: store error %d: %s", call->route->name, rc, kz_db_errmsg(call->db));
    if (rc == KZ_DB_EBUSY)
        kz_reply_error(call->ex, KZ_GRPC_UNAVAILABLE, "Database is busy, try again.");
    else
        kz_reply_error(call->ex, KZ_GRPC_INTERNAL, "Internal server error.");
}

/* ------------------------------------------------------------------------ */
/* Matching and authentication (I/O thread)                                 */

/* Matches path against pattern; fills params with the {name} segments. */
static bool path_match(const char *pattern, kz_slice_t path, kz_slice_t *params, int *nparams)
{
    const char *p = pattern, *s = path.p, *end = path.p + path.n;
    int n = 0;
    while (*p && s < end) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *seg_end = memchr(s, '/', (size_t)(end - s));
            if (!seg_end) seg_end = end;
            if (seg_end == s || n >= KZ_MAX_PATH_PARAMS) return false;
            params[n++] = (kz_slice_t){s, (size_t)(seg_end - s)};
            s = seg_end;
            p = close + 1;
            continue;
        }
        if (*p != *s) return false;
        p++;
        s++;
    }
    if (*p || s != end) return false;
    *nparams = n;
    return true;
}

/* Checks "Basic base64(server_key:...)"; returns NULL or the error text. */
static const char *check_server_key(const kz_config_t *cfg, kz_slice_t auth)
{
    if (auth.n == 0) return "Server key required";
    if (auth.n < 6 || strncasecmp(auth.p, "Basic ", 6) != 0 || auth.n > 1024) return "Server key invalid";
    unsigned char decoded[800];
    size_t dlen = 0;
    if (sodium_base642bin(decoded, sizeof decoded - 1, auth.p + 6, auth.n - 6, NULL, &dlen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return "Server key invalid";
    const unsigned char *colon = memchr(decoded, ':', dlen);
    size_t ulen = colon ? (size_t)(colon - decoded) : dlen;
    size_t klen = strlen(cfg->socket.server_key);
    if (ulen != klen || sodium_memcmp(decoded, cfg->socket.server_key, klen) != 0)
        return "Server key invalid";
    return NULL;
}

/* Verifies a "Bearer <session token>"; fills claims. Returns NULL or the
 * error text. */
static const char *check_session(const kz_app_t *app, kz_slice_t auth, kz_claims_t *claims)
{
    if (auth.n == 0) return "Auth token required";
    if (auth.n < 7 || strncasecmp(auth.p, "Bearer ", 7) != 0) return "Auth token invalid";
    const char *key = app->cfg->session.encryption_key;
    if (kz_jwt_verify(auth.p + 7, auth.n - 7, key, strlen(key), kz_now_sec(), claims) != KZ_JWT_OK)
        return "Auth token invalid";
    if (kz_sessions_revoked(app->sessions, claims->tid, claims->uid)) {
        kz_claims_clear(claims);
        return "Auth token invalid";
    }
    return NULL;
}

/* Answers a CORS preflight the way Nakama's gateway does. */
static void reply_preflight(kz_exchange_t *ex)
{
    kz_exchange_set(ex, 200, NULL, 0);
    kz_exchange_add_header(ex, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE");
    kz_exchange_add_header(ex, "Access-Control-Allow-Headers", "Authorization, Content-Type, User-Agent");
    kz_exchange_add_header(ex, "Access-Control-Max-Age", "600");
}

static _Thread_local kz_worker_t *current_worker;

kz_worker_t *kz_worker_current(void) { return current_worker; }
void kz_worker_set_current(kz_worker_t *w) { current_worker = w; }

/* RPC auth, in Nakama's order: the http_key query parameter, then the
 * Authorization header (Basic: the http key; otherwise a session). NULL
 * or the error text. */
static const char *check_rpc(const kz_app_t *app, kz_exchange_t *ex, kz_call_t *call)
{
    const char *key = app->cfg->runtime.http_key;
    size_t klen = strlen(key);
    char *q = kz_query_get(ex->req.query, "http_key");
    if (q) {
        bool ok = strlen(q) == klen && sodium_memcmp(q, key, klen) == 0;
        kz_free(q);
        if (!ok) return "HTTP key invalid";
        call->http_key = true;
        return NULL;
    }
    kz_slice_t auth = ex->req.authorization;
    if (auth.n == 0) return "Auth token or HTTP key required";
    if (auth.n >= 6 && strncasecmp(auth.p, "Basic ", 6) == 0) {
        unsigned char decoded[800];
        size_t dlen = 0;
        if (auth.n > 1024 || sodium_base642bin(decoded, sizeof decoded - 1, auth.p + 6, auth.n - 6, NULL, &dlen,
                                               NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            return "HTTP key invalid";
        const unsigned char *colon = memchr(decoded, ':', dlen);
        size_t ulen = colon ? (size_t)(colon - decoded) : dlen;
        if (ulen != klen || sodium_memcmp(decoded, key, klen) != 0) return "HTTP key invalid";
        call->http_key = true;
        return NULL;
    }
    return check_session(app, auth, &call->session);
}

static void call_run(kz_job_t *job, void *worker_ctx)
{
    kz_call_t *call = (kz_call_t *)job;
    call->worker = worker_ctx;
    current_worker = call->worker;
    call->db = call->worker->db;
    kz_api_run_with_hooks(call);
}

static void call_done(kz_job_t *job)
{
    kz_call_t *call = (kz_call_t *)job;
    if (call->owned_query) call->ex->req.query = (kz_slice_t){"", 0};
    kz_exchange_complete(call->ex);
    kz_free(call->owned_query);
    for (int i = 0; i < KZ_MAX_PATH_PARAMS; i++) kz_free(call->owned_params[i]);
    kz_claims_clear(&call->session);
    kz_free(call);
}

const kz_route_t *kz_route_find(int method, kz_slice_t path, kz_slice_t *params, int *nparams,
                                 bool *path_known)
{
    *path_known = false;
    *nparams = 0;
    for (int i = 0; i < kz_nroutes; i++) {
        if (!path_match(kz_routes[i].pattern, path, params, nparams)) continue;
        *path_known = true;
        if (kz_routes[i].method == method) return &kz_routes[i];
    }
    return NULL;
}

void kz_api_dispatch(kz_exchange_t *ex, void *arg)
{
    const kz_app_t *app = arg;
    kz_slice_t params[KZ_MAX_PATH_PARAMS];
    int nparams = 0;
    bool path_known = false;

    if (ex->req.method == HTTP_OPTIONS) {
        reply_preflight(ex);
        kz_exchange_finish(ex);
        return;
    }
    const kz_route_t *route = kz_route_find(ex->req.method, ex->req.path, params, &nparams, &path_known);
    if (!route) {
        if (path_known)
            kz_reply_error(ex, KZ_GRPC_UNIMPLEMENTED, "Method Not Allowed");
        else
            kz_reply_error(ex, KZ_GRPC_NOT_FOUND, "Not Found");
        kz_exchange_finish(ex);
        return;
    }
    ex->route = (int)(route - kz_routes);
    if (route->auth == KZ_AUTH_SOCKET) {
        kz_rt_accept(ex, app);
        return;
    }
    if (!route->handler) { /* health check ({}) and root (empty): nothing to look up */
        if (route->pattern[1] == '\0')
            kz_exchange_set(ex, 200, NULL, 0);
        else
            kz_reply_empty(ex);
        kz_exchange_finish(ex);
        return;
    }

    kz_call_t *call = kz_calloc(1, sizeof *call);
    call->ex = ex;
    call->app = app;
    call->route = route;
    call->nparams = nparams;
    memcpy(call->params, params, sizeof params);
    const char *denied = NULL;
    if (route->auth == KZ_AUTH_SERVER_KEY)
        denied = check_server_key(app->cfg, ex->req.authorization);
    else if (route->auth == KZ_AUTH_SESSION)
        denied = check_session(app, ex->req.authorization, &call->session);
    else if (route->auth == KZ_AUTH_RPC)
        denied = check_rpc(app, ex, call);
    if (denied) {
        kz_free(call);
        if (route->auth == KZ_AUTH_RPC)
            kz_reply_rpc_error(ex, KZ_GRPC_UNAUTHENTICATED, denied);
        else
            kz_reply_error(ex, KZ_GRPC_UNAUTHENTICATED, denied);
        kz_exchange_finish(ex);
        return;
    }
    call->job.run = call_run;
    call->job.done = call_done;
    if (!kz_pool_submit(app->pool, &call->job)) {
        kz_claims_clear(&call->session);
        kz_free(call);
        kz_reply_error(ex, KZ_GRPC_UNAVAILABLE, "Server is busy, try again.");
        kz_exchange_finish(ex);
    }
}

/* ------------------------------------------------------------------------ */
/* Worker contexts                                                          */

void *kz_api_worker_init(int i, void *arg, char *err, size_t errlen)
{
    kz_app_t *app = arg;
    kz_worker_t *w = kz_calloc(1, sizeof *w);
    w->index = i;
    if (kz_db_open(app->cfg->database.address, &w->db, err, errlen) != KZ_DB_OK) {
        kz_free(w);
        return NULL;
    }
    w->lua = kz_lua_vm_new(w->db, err, errlen);
    if (!w->lua) {
        kz_db_close(w->db);
        kz_free(w);
        return NULL;
    }
    return w;
}

void kz_api_worker_fini(void *worker, void *arg)
{
    kz_worker_t *w = worker;
    if (!w) return;
    kz_lua_vm_free(w->lua);
    kz_db_close(w->db);
    kz_free(w);
}
