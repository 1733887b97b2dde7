/* The realtime socket: see realtime/socket.h.
 *
 * Envelope rules (Nakama's): one envelope per frame (a JSON object in a text
 * frame, or a protobuf Envelope in a binary frame with format=protobuf,
 * decoded into the same JSON form: realtime/wire.h), with an optional
 * string "cid" and exactly one message key. A frame that is not such an
 * object, or has unknown fields, closes the socket; an envelope with no
 * message gets error 2 (MISSING_PAYLOAD) and a close; a message kind the
 * server never accepts from clients gets error 1 (UNRECOGNIZED_PAYLOAD) and a
 * close. Replies carry the request's cid; events carry none. */
#include "realtime/socket.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "net/ws.h"
#include "api/api.h"
#include "lua/runtime.h"
#include "realtime/envelope.h"
#include "realtime/matchmaker.h"
#include "realtime/party.h"
#include "realtime/notify.h"
#include "store/notification.h"
#include "realtime/router.h"
#include "realtime/wire.h"

typedef kz_rt_sess_t rt_session_t;

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

static void h_ping(kz_ws_t *ws, rt_session_t *s, const char *cid, json_t *msg)
{
    kz_rt_reply(ws, kz_rt_envelope(cid, "pong", json_object()));
}

static void h_pong(kz_ws_t *ws, rt_session_t *s, const char *cid, json_t *msg)
{
    /* Accepted and ignored. */
}

/* Message kinds a client may send, each with its handler. */
static const struct {
    const char *key;
    kz_rt_handler_fn fn;
} client_kinds[] = {
    {"channel_join", kz_rt_channel_join},
    {"channel_leave", kz_rt_channel_leave},
    {"channel_message_send", kz_rt_channel_message_send},
    {"channel_message_update", kz_rt_channel_message_update},
    {"channel_message_remove", kz_rt_channel_message_remove},
    {"match_create", kz_rt_match_create},
    {"match_data_send", kz_rt_match_data_send},
    {"match_join", kz_rt_match_join},
    {"match_leave", kz_rt_match_leave},
    {"matchmaker_add", kz_rt_matchmaker_add},
    {"matchmaker_remove", kz_rt_matchmaker_remove},
    {"ping", h_ping},
    {"pong", h_pong},
    {"rpc", kz_rt_rpc},
    {"status_follow", kz_rt_status_follow},
    {"status_unfollow", kz_rt_status_unfollow},
    {"status_update", kz_rt_status_update},
    {"party_create", kz_rt_party_create},
    {"party_join", kz_rt_party_join},
    {"party_leave", kz_rt_party_leave},
    {"party_promote", kz_rt_party_promote},
    {"party_accept", kz_rt_party_accept},
    {"party_remove", kz_rt_party_remove},
    {"party_close", kz_rt_party_close},
    {"party_join_request_list", kz_rt_party_join_request_list},
    {"party_matchmaker_add", kz_rt_party_matchmaker_add},
    {"party_matchmaker_remove", kz_rt_party_matchmaker_remove},
    {"party_data_send", kz_rt_party_data_send},
    {"party_update", kz_rt_party_update},
};

/* Kinds only the server sends; a client sending one is disconnected. */
static const char *const server_kinds[] = {
    "channel", "channel_message", "channel_message_ack", "channel_presence_event", "error",
    "match", "match_data", "match_presence_event", "matchmaker_matched", "matchmaker_ticket",
    "notifications", "status", "status_presence_event", "stream_data", "stream_presence_event",
    "party", "party_leader", "party_join_request", "party_matchmaker_ticket", "party_data",
    "party_presence_event",
};

/* "channelJoin" -> "channel_join" (input accepts lowerCamelCase too). */
static void snake_case(const char *in, char *out, size_t outlen)
{
    size_t j = 0;
    for (; *in && j + 2 < outlen; in++) {
        if (*in >= 'A' && *in <= 'Z') {
            out[j++] = '_';
            out[j++] = (char)(*in - 'A' + 'a');
        } else {
            out[j++] = *in;
        }
    }
    out[j] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Lua realtime hooks                                                       */

enum { MAX_HELD = 128, MAX_AFTERS = 32 };

typedef struct held_item {
    json_t *env;
    struct held_item *next;
} held_item_t;

/* Envelopes waiting while a before hook runs (order is kept). */
struct kz_rt_held {
    bool busy;
    int n;
    held_item_t *head, *tail;
};

/* An after hook waiting for the reply with this cid. */
struct kz_rt_after {
    char *cid;
    char hook[64];
    json_t *in;
    struct kz_rt_after *next;
};

typedef struct hook_job {
    json_t *env; /* in: the envelope; out: what the before hook returned */
    json_t *out; /* after hooks: the reply (NULL when none) */
    char hook[64];
    int kind;
    char uid[37], username[129], sid[37], lang[32];
    int64_t exp;
    json_t *vars; /* the session's, read-only (the job holds the session) */
    int rc;
    kz_lua_error_t err;
} hook_job_t;

static void process(kz_ws_t *ws, rt_session_t *s, json_t *env);

/* "channel_join" -> "ChannelJoin", the name hooks are registered under. */
static void hook_name(const char *snake, char *out, size_t cap)
{
    size_t j = 0;
    bool up = true;
    for (; *snake && j + 1 < cap; snake++) {
        if (*snake == '_') {
            up = true;
            continue;
        }
        out[j++] = up && *snake >= 'a' && *snake <= 'z' ? (char)(*snake - 'a' + 'A') : *snake;
        up = false;
    }
    out[j] = '\0';
}

static hook_job_t *hook_job_new(rt_session_t *s, const char *hook, int kind, json_t *env)
{
    hook_job_t *j = kz_calloc(1, sizeof *j);
    j->env = env;
    j->kind = kind;
    snprintf(j->hook, sizeof j->hook, "%s", hook);
    snprintf(j->uid, sizeof j->uid, "%s", s->uid);
    snprintf(j->username, sizeof j->username, "%s", s->username);
    snprintf(j->sid, sizeof j->sid, "%s", s->id);
    snprintf(j->lang, sizeof j->lang, "%s", s->lang);
    j->exp = s->exp;
    j->vars = s->vars;
    return j;
}

static void hook_job_free(hook_job_t *j)
{
    json_decref(j->env);
    json_decref(j->out);
    kz_free(j);
}

static void job_ctx(const hook_job_t *j, const char *mode, kz_lua_ctx_t *ctx)
{
    *ctx = (kz_lua_ctx_t){.mode = mode,
                          .user_id = j->uid,
                          .username = j->username,
                          .session_id = j->sid,
                          .lang = j->lang,
                          .user_session_exp = j->exp,
                          .vars = j->vars};
}

static void after_work(kz_db_t *db, void *arg)
{
    hook_job_t *j = arg;
    kz_lua_ctx_t ctx;
    job_ctx(j, "after", &ctx);
    kz_lua_after(&kz_worker_current()->lua, db, &ctx, true, j->hook, j->out, j->env);
}

static void after_done(kz_rt_sess_t *s, void *arg) { hook_job_free(arg); }

static void after_submit(rt_session_t *s, const char *hook, json_t *in, json_t *out)
{
    hook_job_t *j = hook_job_new(s, hook, -1, in);
    j->out = out;
    if (!kz_rt_submit(s, after_work, after_done, j)) {
        kz_log_warn("after hook of %s dropped: the worker pool is full", hook);
        hook_job_free(j);
    }
}

void kz_rt_hooks_reply(kz_rt_sess_t *s, json_t *env)
{
    const char *cid = json_string_value(json_object_get(env, "cid"));
    if (!cid) return;
    for (struct kz_rt_after **pp = &s->afters; *pp; pp = &(*pp)->next) {
        struct kz_rt_after *a = *pp;
        if (strcmp(a->cid, cid) != 0) continue;
        *pp = a->next;
        if (!json_object_get(env, "error"))
            after_submit(s, a->hook, a->in, json_deep_copy(env));
        else
            json_decref(a->in);
        kz_free(a->cid);
        kz_free(a);
        return;
    }
}

/* Kinds answered by no reply even with a cid: their after hooks run as
 * soon as the handler returns. */
static bool never_replies(const char *kind)
{
    return strcmp(kind, "match_data_send") == 0 || strcmp(kind, "party_data_send") == 0 ||
           strcmp(kind, "pong") == 0;
}

/* Runs the handler of client_kinds[kind], with the after hook if any. */
static void dispatch(kz_ws_t *ws, rt_session_t *s, int kind, const char *hook, const char *cid, json_t *msg,
                     json_t *env)
{
    bool after = hook[0] && kz_lua_has_rt_after(hook);
    bool waits = cid && !never_replies(client_kinds[kind].key);
    if (after && waits) {
        int n = 0;
        struct kz_rt_after **last = &s->afters;
        for (; *last; last = &(*last)->next) n++;
        if (n < MAX_AFTERS) {
            struct kz_rt_after *a = kz_calloc(1, sizeof *a);
            a->cid = kz_strdup(cid);
            snprintf(a->hook, sizeof a->hook, "%s", hook);
            a->in = json_deep_copy(env);
            *last = a;
        } else {
            kz_log_warn("after hook of %s skipped: %d replies already awaited", hook, n);
        }
    }
    client_kinds[kind].fn(ws, s, cid, msg);
    if (after && !waits) after_submit(s, hook, json_deep_copy(env), NULL);
}

static void held_free(struct kz_rt_held *h)
{
    for (held_item_t *it = h->head, *next; it; it = next) {
        next = it->next;
        json_decref(it->env);
        kz_free(it);
    }
    h->head = h->tail = NULL;
    h->n = 0;
}

static void held_drain(rt_session_t *s)
{
    struct kz_rt_held *h;
    while ((h = s->held) && !h->busy && h->head && s->ws) {
        if (kz_ws_is_closing(s->ws)) { /* what waited is dropped, as unread frames are */
            held_free(h);
            return;
        }
        held_item_t *it = h->head;
        h->head = it->next;
        if (!h->head) h->tail = NULL;
        h->n--;
        json_t *env = it->env;
        kz_free(it);
        process(s->ws, s, env);
    }
}

/* What a before hook returned must still be an envelope of the same kind. */
static bool hooked_message(json_t *env, const char *kind, const char **cid, json_t **msg)
{
    if (!json_is_object(env)) return false;
    json_t *c = json_object_get(env, "cid");
    if (c && !json_is_string(c)) return false;
    *cid = c ? json_string_value(c) : NULL;
    *msg = json_object_get(env, kind);
    return json_is_object(*msg);
}

static void before_work(kz_db_t *db, void *arg)
{
    hook_job_t *j = arg;
    kz_lua_ctx_t ctx;
    job_ctx(j, "before", &ctx);
    j->rc = kz_lua_before(&kz_worker_current()->lua, db, &ctx, true, j->hook, &j->env, &j->err);
}

static void before_done(kz_rt_sess_t *s, void *arg)
{
    hook_job_t *j = arg;
    if (s->held) s->held->busy = false;
    kz_ws_t *ws = s->ws;
    if (!ws) {
        hook_job_free(j);
        return;
    }
    const char *kind = client_kinds[j->kind].key;
    const char *cid = json_string_value(json_object_get(j->env, "cid"));
    json_t *msg;
    if (j->rc == KZ_LUA_REJECTED) {
        kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "Unrecognized message.");
        kz_ws_close(ws, 1000, "Unrecognized message.");
    } else if (j->rc == KZ_LUA_ERROR) {
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_FUNCTION_EXCEPTION, j->err.message);
    } else if (j->rc == KZ_LUA_NOT_FOUND) {
        if (hooked_message(j->env, kind, &cid, &msg)) dispatch(ws, s, j->kind, j->hook, cid, msg, j->env);
    } else if (!hooked_message(j->env, kind, &cid, &msg)) {
        char text[160];
        snprintf(text, sizeof text, "Before hook of %s must return the envelope with its %s message.", j->hook,
                 kind);
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_FUNCTION_EXCEPTION, text);
    } else {
        dispatch(ws, s, j->kind, j->hook, cid, msg, j->env);
    }
    hook_job_free(j);
    held_drain(s);
}

static void start_before(kz_ws_t *ws, rt_session_t *s, int kind, const char *hook, const char *cid, json_t *env)
{
    if (!s->held) s->held = kz_calloc(1, sizeof *s->held);
    hook_job_t *j = hook_job_new(s, hook, kind, json_incref(env));
    if (!kz_rt_submit(s, before_work, before_done, j)) {
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, "Server is busy, try again.");
        hook_job_free(j);
        return;
    }
    s->held->busy = true;
}

static void hooks_close(kz_rt_sess_t *s)
{
    if (s->held) {
        held_free(s->held);
        kz_free(s->held);
        s->held = NULL;
    }
    for (struct kz_rt_after *a = s->afters, *next; a; a = next) {
        next = a->next;
        json_decref(a->in);
        kz_free(a->cid);
        kz_free(a);
    }
    s->afters = NULL;
}

/* ------------------------------------------------------------------------ */
/* Envelopes                                                                */

static void on_message(kz_ws_t *ws, bool binary, const char *data, size_t len)
{
    rt_session_t *s = kz_ws_user(ws);
    if (binary != s->protobuf) { /* a frame of the other format */
        kz_ws_close(ws, 1003, s->protobuf ? "Text frames are not accepted on a protobuf socket."
                                          : "Binary frames are not accepted on a JSON socket.");
        return;
    }
    json_t *env;
    if (s->protobuf) {
        env = kz_rt_decode_protobuf(data, len);
    } else {
        json_error_t jerr;
        env = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    }
    if (!env || !json_is_object(env)) {
        json_decref(env);
        kz_ws_close(ws, 1000, s->protobuf ? "Invalid message: not a protobuf Envelope." : "Invalid message: not a JSON envelope.");
        return;
    }
    struct kz_rt_held *h = s->held;
    if (h && h->busy) { /* a before hook runs: keep the order */
        if (h->n >= MAX_HELD) {
            json_decref(env);
            kz_ws_close(ws, 1008, "Too many messages waiting for a runtime hook.");
            return;
        }
        held_item_t *it = kz_calloc(1, sizeof *it);
        it->env = env;
        if (h->tail)
            h->tail->next = it;
        else
            h->head = it;
        h->tail = it;
        h->n++;
        return;
    }
    process(ws, s, env);
}

/* Handles one envelope (owned). */
static void process(kz_ws_t *ws, rt_session_t *s, json_t *env)
{
    const char *cid = NULL;
    const char *kind = NULL;
    json_t *msg = NULL;
    const char *key;
    json_t *value;
    json_object_foreach(env, key, value)
    {
        if (strcmp(key, "cid") == 0) {
            if (!json_is_string(value)) goto invalid;
            cid = json_string_value(value);
        } else if (kind) {
            goto invalid; /* two message keys: not an envelope */
        } else {
            kind = key;
            msg = value;
        }
    }
    if (!kind) {
        kz_rt_error(ws, cid, KZ_RT_MISSING_PAYLOAD, "Missing message.");
        kz_ws_close(ws, 1000, "Missing message.");
        goto out;
    }
    char name[64];
    snake_case(kind, name, sizeof name);
    for (size_t i = 0; i < sizeof client_kinds / sizeof client_kinds[0]; i++) {
        if (strcmp(name, client_kinds[i].key) != 0) continue;
        if (!json_is_object(msg)) goto invalid;
        char hook[64] = "";
        if (client_kinds[i].fn != kz_rt_rpc) hook_name(name, hook, sizeof hook);
        if (hook[0] && kz_lua_has_rt_before(hook)) {
            if (strcmp(kind, name) != 0) { /* hooks see snake_case keys */
                json_object_set(env, name, msg);
                json_object_del(env, kind);
            }
            start_before(ws, s, (int)i, hook, cid, env);
        } else {
            dispatch(ws, s, (int)i, hook, cid, msg, env);
        }
        goto out;
    }
    for (size_t i = 0; i < sizeof server_kinds / sizeof server_kinds[0]; i++) {
        if (strcmp(name, server_kinds[i]) == 0) {
            kz_rt_error(ws, cid, KZ_RT_UNRECOGNIZED_PAYLOAD, "Unrecognized message.");
            kz_ws_close(ws, 1000, "Unrecognized message.");
            goto out;
        }
    }
invalid:
    /* An unknown field is a parse error, as for Nakama: the socket closes. */
    kz_ws_close(ws, 1000, "Invalid message.");
out:
    json_decref(env);
}

/* session.single_socket: the user's older sockets are told (notification
 * code -7, "single_socket") and closed. */
static void close_older_sockets(rt_session_t *s)
{
    kz_rt_sess_t **all;
    int n = kz_rt_user_sessions(s->uid, &all), k = 0;
    for (int i = 0; i < n; i++) {
        if (all[i] != s)
            all[k++] = all[i];
        else
            kz_rt_sess_release(all[i]);
    }
    if (k) {
        kz_notification_t note = {.user_id = s->uid, .subject = "single_socket", .content = "{}",
                                  .code = KZ_NOTIFY_SINGLE_SOCKET, .create_time = kz_now_ms()};
        kz_uuid_v4(note.id);
        const kz_notification_t *one = &note;
        kz_rt_out_t *f = kz_rt_out(kz_rt_envelope(NULL, "notifications", kz_rt_notifications_json(&one, 1)));
        kz_rt_send_many(all, k, f);
        kz_rt_out_free(f);
    }
    for (int i = 0; i < k; i++) {
        kz_rt_sess_disconnect(all[i], 1000, "");
        kz_rt_sess_release(all[i]);
    }
    kz_free(all);
}

static void on_open(kz_ws_t *ws)
{
    rt_session_t *s = kz_ws_user(ws);
    s->ws = ws;
    if (s->app->cfg->session.single_socket) close_older_sockets(s);
    kz_rt_status_online(s);
}

static void on_close(kz_ws_t *ws)
{
    rt_session_t *s = kz_ws_user(ws);
    kz_log_debug("socket %s of user %s closed", s->id, s->uid);
    kz_rt_sess_close(s);
}

static const kz_ws_handler_t handler = {.on_open = on_open, .on_message = on_message, .on_close = on_close};

/* ------------------------------------------------------------------------ */
/* Upgrade                                                                  */

static void reply_text(kz_exchange_t *ex, int status, const char *text)
{
    kz_exchange_set(ex, status, kz_strdup(text), strlen(text));
    ex->resp.content_type = "text/plain; charset=utf-8";
    kz_exchange_finish(ex);
}

void kz_rt_accept(kz_exchange_t *ex, const kz_app_t *app)
{
    kz_slice_t q = ex->req.query;
    kz_slice_t auth = ex->req.authorization;
    char *token = NULL;
    if (auth.n > 7 && strncasecmp(auth.p, "Bearer ", 7) == 0)
        token = kz_strndup(auth.p + 7, auth.n - 7);
    else
        token = kz_query_get(q, "token");
    kz_claims_t claims = {0};
    const char *key = app->cfg->session.encryption_key;
    bool valid = token && kz_jwt_verify(token, strlen(token), key, strlen(key), kz_now_sec(), &claims) == KZ_JWT_OK &&
                 !kz_sessions_revoked(app->sessions, claims.tid, claims.uid);
    kz_free(token);
    if (!valid) {
        kz_claims_clear(&claims);
        reply_text(ex, 401, "Missing or invalid token");
        return;
    }
    char *format = kz_query_get(q, "format");
    bool protobuf = format && strcmp(format, "protobuf") == 0;
    bool bad_format = format && *format && strcmp(format, "json") != 0 && !protobuf;
    kz_free(format);
    bool status = false;
    if (bad_format || kz_query_bool(q, "status", false, &status) != 0) {
        kz_claims_clear(&claims);
        reply_text(ex, 400, bad_format ? "Invalid format parameter" : "Invalid status parameter");
        return;
    }
    if (!kz_exchange_wants_upgrade(ex)) {
        kz_claims_clear(&claims);
        reply_text(ex, 400, "WebSocket upgrade required");
        return;
    }
    char *lang = kz_query_get(q, "lang");
    rt_session_t *s = kz_rt_sess_open(app, kz_server_current_thread(), claims.uid, claims.usn,
                                       lang && *lang ? lang : "en", status, protobuf);
    kz_free(lang);
    s->exp = claims.exp;
    s->vars = claims.vrs; /* the session keeps them for the runtime's context */
    claims.vrs = NULL;
    kz_claims_clear(&claims);
    /* A failed upgrade never opened the socket: the session goes at once. */
    if (kz_exchange_upgrade(ex, &handler, s) != 0) kz_rt_sess_close(s);
}

/* Stored notifications go live after their transaction commits. */
static void notification_sink(const kz_notification_t *n, int count, bool in_tx)
{
    if (in_tx)
        kz_rt_notify_defer(n, count);
    else
        kz_rt_notify(n, count);
}

/* Group system messages too. */
static void message_sink(const kz_channel_t *c, const kz_message_t *m, bool in_tx)
{
    if (in_tx)
        kz_rt_chat_defer(c, m);
    else
        kz_rt_chat_post(c, m);
}

static void tx_end(bool committed)
{
    if (committed) {
        kz_rt_notify_flush();
        kz_rt_chat_flush();
    } else {
        kz_rt_notify_discard();
        kz_rt_chat_discard();
    }
}

void kz_rt_init(void)
{
    kz_store_set_notification_sink(notification_sink);
    kz_store_set_message_sink(message_sink);
    kz_db_set_tx_end_hook(tx_end);
    kz_rt_match_init();
    kz_rt_chat_init();
    kz_rt_party_init();
    kz_rt_status_init();
    kz_rt_add_close_hook(hooks_close);
}
