/* kizuna-loadtest bots: see bot.h.
 *
 * The program counter is a small stack of frames: the profile's steps at
 * depth 0 and one frame per repeat being run. run() executes steps until
 * one has to wait (a reply, a timer, a connection); the callback that ends
 * the wait calls step_done(), which moves on and calls run() again. A
 * repeat with no pause between iterations yields to the loop (a 0 ms
 * timer) between them so a bot never monopolises its process. */
#include "loadtest/bot.h"

#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "core/alloc.h"
#include "core/jwt.h"
#include "loadtest/wire.h"

#define LT_HTTP_IDLE_MS 5000  /* a bot's HTTP connection closes after this idle time */
#define LT_AM_POLL_MS 200     /* am_match: how often the others look for the match */
#define LT_PASSWORD "lt-password-0" /* email accounts' password */

enum step_result {
    S_NEXT,   /* the step is complete: go on */
    S_PUSHED, /* a repeat frame was pushed: run its first step */
    S_ASYNC,  /* waiting for a callback */
    S_ENDED,  /* the bot ended (failed) */
};

/* What the bot is waiting for. */
enum phase {
    PH_NONE,
    PH_HTTP,       /* an HTTP request (handler in on_http) */
    PH_SOCKET,     /* the socket to open */
    PH_REPLY,      /* a socket reply with want_cid (handler in on_reply) */
    PH_WAIT,       /* a wait step's timer */
    PH_WAIT_END,   /* wait: {for: end} */
    PH_RESUME,     /* the next repeat iteration's timer */
    PH_AM_POLL,    /* am_match: the next poll */
    PH_MM_MATCHED, /* matchmaker: the matched event */
    PH_DISCONNECT, /* the socket's close handshake */
};

typedef struct {
    const lt_step_t *steps;
    size_t n, pc;
    const lt_step_t *rep; /* the repeat step of this frame (NULL at depth 0) */
    int64_t t0;           /* ms: when the repeat started */
    int64_t slot;         /* the iteration slot being run */
} frame_t;

typedef void (*http_handler)(lt_bot_t *b, const char *body, size_t len);
typedef void (*reply_handler)(lt_bot_t *b, const lt_env_t *env);

struct lt_bot {
    lt_ctx_t *ctx;
    lt_bot_t *prev, *next; /* ctx->head list */
    int64_t index;         /* global bot index */
    int64_t local;         /* index among the bots of its profile */
    int profile;
    frame_t stack[LT_REPEAT_DEPTH + 1];
    int depth;
    uv_timer_t timer;
    uint8_t phase;         /* enum phase */
    bool ended;            /* finished or failed: closing down */
    bool released;
    lt_format_t fmt;       /* the socket's format */
    kzc_conn_t *http, *ws;
    char *token;           /* session token */
    char *channel_id;      /* last joined channel */
    char *match_id;        /* current match */
    uint32_t next_cid, want_cid;
    lt_env_kind_t want_kind;
    const char *op;        /* op of the request in flight */
    uint64_t t_op;         /* µs: when it started */
    uint64_t t_first;      /* µs: matchmaker add / first am_match poll */
    int64_t deadline;      /* ms (uv_now): matchmaker / am_match bound */
    http_handler on_http;
    reply_handler on_reply;
    char *early_token;     /* matchmaker_matched that came before the ticket */
    char *early_match;
    bool early_matched;
};

static _Thread_local kz_strbuf_t sendbuf, bodybuf;

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

static void run(lt_bot_t *b);
static void end(lt_bot_t *b);

/* ------------------------------------------------------------------------ */
/* Context                                                                  */

/* True when step s (or a step inside it) uses the bot's HTTP connection. */
static bool uses_http(const lt_step_t *s)
{
    switch (s->kind) {
    case LT_STEP_AUTH:
    case LT_STEP_AM_MATCH: /* the others poll the match listing */
    case LT_STEP_STORAGE_WRITE:
    case LT_STEP_STORAGE_READ:
    case LT_STEP_LEADERBOARD_WRITE: return true;
    case LT_STEP_RPC: return s->u.rpc.via == LT_VIA_HTTP;
    case LT_STEP_REPEAT:
        for (size_t i = 0; i < s->u.repeat.nsteps; i++)
            if (uses_http(&s->u.repeat.steps[i])) return true;
        return false;
    default: return false;
    }
}

int lt_ctx_init(lt_ctx_t *ctx)
{
    const lt_scenario_t *s = ctx->scn;
    size_t kl = strlen(s->server_key);
    if (kl > 200) return -1;
    char *kc = kz_malloc(kl + 2);
    memcpy(kc, s->server_key, kl);
    kc[kl] = ':';
    kc[kl + 1] = '\0';
    memcpy(ctx->basic_auth, "Basic ", 6);
    sodium_bin2base64(ctx->basic_auth + 6, sizeof ctx->basic_auth - 6, (const unsigned char *)kc, kl + 1,
                      sodium_base64_VARIANT_ORIGINAL);
    kz_free(kc);
    ctx->machine = lt_machine_tag();
    ctx->wrr_rank = kz_calloc(s->nwrr ? s->nwrr : 1, sizeof *ctx->wrr_rank);
    ctx->profile_slots = kz_calloc(s->nprofiles ? s->nprofiles : 1, sizeof *ctx->profile_slots);
    for (size_t i = 0; i < s->nwrr; i++) ctx->wrr_rank[i] = ctx->profile_slots[s->wrr[i]]++;
    /* Where a bot may drop its HTTP connection: no HTTP step after this
     * top-level step. An idle keep-alive connection per bot would hold a
     * file descriptor for nothing (the per-process cap is what limits a
     * worker's bots). */
    ctx->http_later = kz_calloc(s->nprofiles ? s->nprofiles : 1, sizeof *ctx->http_later);
    for (size_t p = 0; p < s->nprofiles; p++) {
        const lt_profile_t *pr = &s->profiles[p];
        ctx->http_later[p] = kz_calloc(pr->nsteps ? pr->nsteps : 1, sizeof **ctx->http_later);
        bool later = false;
        for (size_t i = pr->nsteps; i-- > 0;) {
            ctx->http_later[p][i] = later;
            later = later || uses_http(&pr->steps[i]);
        }
    }
    randombytes_buf(&ctx->rng, sizeof ctx->rng);
    ctx->rng |= 1;
    return 0;
}

void lt_ctx_deinit(lt_ctx_t *ctx)
{
    for (size_t p = 0; ctx->http_later && p < ctx->scn->nprofiles; p++) kz_free(ctx->http_later[p]);
    kz_free(ctx->http_later);
    ctx->http_later = NULL;
    kz_free(ctx->wrr_rank);
    kz_free(ctx->profile_slots);
    ctx->wrr_rank = ctx->profile_slots = NULL;
}

static int64_t local_index(const lt_ctx_t *ctx, int64_t index)
{
    const lt_scenario_t *s = ctx->scn;
    if (!s->nwrr) return index;
    size_t slot = (size_t)(index % (int64_t)s->nwrr);
    return index / (int64_t)s->nwrr * ctx->profile_slots[s->wrr[slot]] + ctx->wrr_rank[slot];
}

int64_t lt_bot_group(const lt_ctx_t *ctx, int64_t index, int group_size)
{
    return local_index(ctx, index) / (group_size > 0 ? group_size : 1);
}

static uint64_t next_rand(lt_ctx_t *ctx)
{
    ctx->rng ^= ctx->rng << 13;
    ctx->rng ^= ctx->rng >> 7;
    ctx->rng ^= ctx->rng << 17;
    return ctx->rng;
}

/* ------------------------------------------------------------------------ */
/* Ending                                                                   */

static void bot_closed(uv_handle_t *h)
{
    kz_free(h->data);
}

/* Releases the bot once it has ended and its socket is gone. */
static void maybe_release(lt_bot_t *b)
{
    if (!b->ended || b->ws || b->released) return;
    b->released = true;
    lt_ctx_t *ctx = b->ctx;
    if (b->prev)
        b->prev->next = b->next;
    else
        ctx->head = b->next;
    if (b->next) b->next->prev = b->prev;
    ctx->alive--;
    kz_free(b->token);
    kz_free(b->channel_id);
    kz_free(b->match_id);
    kz_free(b->early_token);
    kz_free(b->early_match);
    uv_close((uv_handle_t *)&b->timer, bot_closed);
}

static void end(lt_bot_t *b)
{
    if (b->ended) return;
    b->ended = true;
    b->ctx->running--;
    if (b->ctx->on_bot_end) b->ctx->on_bot_end(b->ctx);
    b->phase = PH_NONE;
    uv_timer_stop(&b->timer);
    kzc_free(b->http);
    b->http = NULL;
    if (b->ws && kzc_ws_is_open(b->ws)) {
        kzc_ws_close(b->ws, 1000); /* on_close frees it and releases the bot */
    } else {
        kzc_free(b->ws);
        b->ws = NULL;
    }
    maybe_release(b);
}

static void fail(lt_bot_t *b, const char *op, const char *reason)
{
    if (b->ended) return;
    lt_stats_error(b->ctx->stats, op, reason);
    lt_stats_add(b->ctx->stats, LT_C_BOTS_FAILED, 1);
    end(b);
}

static void finish(lt_bot_t *b)
{
    if (b->ended) return;
    lt_stats_add(b->ctx->stats, LT_C_BOTS_FINISHED, 1);
    end(b);
}

lt_bot_t *lt_bot_next(const lt_bot_t *b)
{
    return b->next;
}

void lt_bot_stop(lt_bot_t *b)
{
    finish(b);
}

void lt_bot_kill(lt_bot_t *b)
{
    finish(b);
    kzc_free(b->ws);
    b->ws = NULL;
    maybe_release(b);
}

/* ------------------------------------------------------------------------ */
/* Plumbing: timer, HTTP, socket requests                                   */

static void on_timer(uv_timer_t *t);

static void arm(lt_bot_t *b, uint8_t phase, int64_t ms)
{
    b->phase = phase;
    uv_timer_start(&b->timer, on_timer, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static void ok(lt_bot_t *b, const char *op, uint64_t since_us)
{
    uint64_t now = now_us();
    lt_stats_ok(b->ctx->stats, op, now > since_us ? now - since_us : 0);
}

static void step_done(lt_bot_t *b)
{
    if (b->ended) return;
    b->phase = PH_NONE;
    b->stack[b->depth].pc++;
    run(b);
}

static kzc_target_t target(const lt_bot_t *b)
{
    const lt_ctx_t *ctx = b->ctx;
    return (kzc_target_t){
        .host = ctx->scn->host,
        .port = ctx->scn->port,
        .source_addr = ctx->nsources ? ctx->sources[b->index % (int64_t)ctx->nsources] : NULL,
        .timeout_ms = (int)ctx->scn->timeout_ms,
        .idle_ms = LT_HTTP_IDLE_MS,
    };
}

static void http_done(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    lt_bot_t *b = arg;
    if (b->ended) return;
    lt_stats_add(b->ctx->stats, LT_C_BYTES_RECV, len);
    if (status < 200 || status > 299) {
        char reason[64];
        if (err)
            snprintf(reason, sizeof reason, "%s", err);
        else
            snprintf(reason, sizeof reason, "http %d", status);
        fail(b, b->op, reason);
        return;
    }
    b->on_http(b, body, len);
}

/* Sends an HTTP request (body from bodybuf when with_body) for op. */
static int http_req(lt_bot_t *b, const char *op, const char *method, const char *path, const char *auth,
                    bool with_body, http_handler h)
{
    if (!b->http) {
        kzc_target_t t = target(b);
        b->http = kzc_http_new(b->ctx->loop, &t);
    }
    b->op = op;
    b->on_http = h;
    b->phase = PH_HTTP;
    b->t_op = now_us();
    size_t len = with_body ? bodybuf.len : 0;
    lt_stats_add(b->ctx->stats, LT_C_BYTES_SENT, len);
    if (kzc_http_request(b->http, method, path, auth, with_body ? bodybuf.p : NULL, len, http_done, b) != 0) {
        fail(b, op, "request refused");
        return S_ENDED;
    }
    return S_ASYNC;
}

static char *bearer(const lt_bot_t *b, char *out, size_t cap)
{
    snprintf(out, cap, "Bearer %s", b->token ? b->token : "");
    return out;
}

static const char *new_cid(lt_bot_t *b)
{
    static _Thread_local char cid[12];
    b->next_cid = b->next_cid >= 999999999 ? 1 : b->next_cid + 1;
    snprintf(cid, sizeof cid, "%" PRIu32, b->next_cid);
    return cid;
}

/* Sends what is in sendbuf; -1 (bot failed under op) when the socket is
 * not open or the send fails. */
static int ws_send(lt_bot_t *b, const char *op)
{
    if (!b->ws || !kzc_ws_is_open(b->ws)) {
        fail(b, op, "no socket");
        return -1;
    }
    if (kzc_ws_send(b->ws, b->fmt == LT_FORMAT_PROTOBUF, sendbuf.p, sendbuf.len) != 0) {
        fail(b, op, "write backlog");
        return -1;
    }
    lt_stats_add(b->ctx->stats, LT_C_MSGS_SENT, 1);
    lt_stats_add(b->ctx->stats, LT_C_BYTES_SENT, sendbuf.len);
    return 0;
}

/* Sends the request in sendbuf (encoded with cid b->next_cid) and waits for
 * the reply of kind `want`. */
static int ws_request(lt_bot_t *b, const char *op, lt_env_kind_t want, reply_handler h)
{
    if (ws_send(b, op) != 0) return S_ENDED;
    b->op = op;
    b->want_cid = b->next_cid;
    b->want_kind = want;
    b->on_reply = h;
    b->t_op = now_us();
    arm(b, PH_REPLY, b->ctx->scn->timeout_ms);
    return S_ASYNC;
}

/* Renders tpl for this bot with the given group into out; fails the bot
 * under op when it does not fit. */
static bool render(lt_bot_t *b, const char *op, const char *tpl, int64_t group, char *out, size_t cap)
{
    if (lt_template_render(tpl, b->index, group, b->ctx->run_id, out, cap) < 0) {
        fail(b, op, "template too long");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Socket callbacks                                                         */

static void on_ws_open(kzc_conn_t *c, void *arg)
{
    lt_bot_t *b = arg;
    if (b->ended || b->phase != PH_SOCKET) return;
    ok(b, "socket_open", b->t_op);
    step_done(b);
}

static void handle_matched(lt_bot_t *b, const char *match_id, const char *token);

static void on_ws_message(kzc_conn_t *c, bool binary, const char *data, size_t len, void *arg)
{
    lt_bot_t *b = arg;
    lt_stats_t *st = b->ctx->stats;
    lt_stats_add(st, LT_C_MSGS_RECV, 1);
    lt_stats_add(st, LT_C_BYTES_RECV, len);
    if (b->ended) return;
    lt_env_t env;
    lt_wire_decode(data, len, binary, &env);
    if (env.kind == LT_ENV_MATCH_DATA) {
        uint64_t sent;
        if (lt_stamp_read(env.data, env.data_len, b->ctx->machine, &sent)) {
            uint64_t now = uv_hrtime();
            lt_stats_ok(st, "match_data", now > sent ? (now - sent) / 1000 : 0);
        }
        return;
    }
    if (env.kind == LT_ENV_MM_MATCHED) {
        if (b->phase == PH_MM_MATCHED) {
            handle_matched(b, env.id, env.text);
        } else if (b->phase == PH_REPLY && b->want_kind == LT_ENV_MM_TICKET) {
            /* Matched before our ticket reply was read: keep it. */
            b->early_matched = true;
            kz_free(b->early_match);
            kz_free(b->early_token);
            b->early_match = kz_strdup(env.id);
            b->early_token = kz_strdup(env.text);
        }
        return;
    }
    if (env.kind == LT_ENV_BAD) {
        lt_stats_error(st, "socket", "bad message");
        return;
    }
    if (env.cid && env.cid == b->want_cid && b->phase == PH_REPLY) {
        b->want_cid = 0;
        uv_timer_stop(&b->timer);
        b->phase = PH_NONE;
        if (env.kind == LT_ENV_ERROR) {
            char reason[32];
            snprintf(reason, sizeof reason, "error %d", env.code);
            fail(b, b->op, reason);
            return;
        }
        if (env.kind != b->want_kind) {
            fail(b, b->op, "unexpected reply");
            return;
        }
        ok(b, b->op, b->t_op);
        b->on_reply(b, &env);
    }
}

static void on_ws_close(kzc_conn_t *c, int code, const char *reason, void *arg)
{
    lt_bot_t *b = arg;
    if (b->ended) {
        kzc_free(b->ws);
        b->ws = NULL;
        maybe_release(b);
        return;
    }
    if (b->phase == PH_DISCONNECT) {
        kzc_free(b->ws);
        b->ws = NULL;
        if (code != 1000) { /* no close handshake (1006 after the timeout) or another code */
            fail(b, "disconnect", reason);
            return;
        }
        step_done(b);
        return;
    }
    const char *op = b->phase == PH_SOCKET ? "socket_open"
                     : b->phase == PH_REPLY ? b->op
                     : b->phase == PH_MM_MATCHED ? "matchmaker_matched"
                     : "socket";
    fail(b, op, reason);
}

static const kzc_ws_cbs_t ws_cbs = {on_ws_open, on_ws_message, on_ws_close};

/* ------------------------------------------------------------------------ */
/* Steps                                                                    */

static void auth_done(lt_bot_t *b, const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *tok = json_string_value(json_object_get(root, "token"));
    if (!tok || !*tok) {
        json_decref(root);
        fail(b, "auth", "bad reply");
        return;
    }
    kz_free(b->token);
    b->token = kz_strdup(tok);
    json_decref(root);
    ok(b, "auth", b->t_op);
    step_done(b);
}


static int step_auth(lt_bot_t *b, const lt_step_t *s)
{
    static const char *const types[] = {"device", "custom", "email"};
    char id[96], path[640], user[160], enc[480];
    const char *run = b->ctx->run_id;
    if (s->u.auth.type == LT_AUTH_EMAIL)
        snprintf(id, sizeof id, "lt-%s-%" PRId64 "@loadtest.invalid", run, b->index);
    else
        snprintf(id, sizeof id, "lt-%s-%" PRId64, run, b->index);
    int n = snprintf(path, sizeof path, "/v2/account/authenticate/%s?create=true", types[s->u.auth.type]);
    if (s->u.auth.username) {
        if (!render(b, "auth", s->u.auth.username, b->local, user, sizeof user))
            return S_ENDED;
        if (lt_url_encode(user, enc, sizeof enc) < 0) {
            fail(b, "auth", "template too long");
            return S_ENDED;
        }
        snprintf(path + n, sizeof path - (size_t)n, "&username=%s", enc);
    }
    kz_strbuf_reset(&bodybuf);
    if (s->u.auth.type == LT_AUTH_EMAIL)
        kz_strbuf_printf(&bodybuf, "{\"email\":\"%s\",\"password\":\"%s\"}", id, LT_PASSWORD);
    else
        kz_strbuf_printf(&bodybuf, "{\"id\":\"%s\"}", id);
    return http_req(b, "auth", "POST", path, b->ctx->basic_auth, true, auth_done);
}

static int step_socket(lt_bot_t *b, const lt_step_t *s)
{
    if (!b->token) {
        fail(b, "socket_open", "no session");
        return S_ENDED;
    }
    if (b->ws) { /* a second socket step: the old socket goes */
        kzc_free(b->ws);
        b->ws = NULL;
    }
    b->fmt = s->u.socket.format;
    kz_strbuf_reset(&bodybuf);
    kz_strbuf_printf(&bodybuf, "/ws?lang=en&status=true&format=%s&token=%s",
                   b->fmt == LT_FORMAT_PROTOBUF ? "protobuf" : "json", b->token);
    kzc_target_t t = target(b);
    t.idle_ms = 0;
    b->phase = PH_SOCKET;
    b->t_op = now_us();
    b->ws = kzc_ws_open(b->ctx->loop, &t, bodybuf.p, &ws_cbs, b);
    return S_ASYNC;
}

static int step_wait(lt_bot_t *b, const lt_step_t *s)
{
    if (s->u.wait.for_ms == LT_UNTIL_END) {
        b->phase = PH_WAIT_END; /* the run's end stops the bot */
        return S_ASYNC;
    }
    if (s->u.wait.for_ms <= 0) return S_NEXT;
    arm(b, PH_WAIT, s->u.wait.for_ms);
    return S_ASYNC;
}

/* Appends n 'x' characters (padding of chat and storage values). */
static void pad_x(kz_strbuf_t *w, size_t n)
{
    static const char xs[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    while (n) {
        size_t k = n < sizeof xs - 1 ? n : sizeof xs - 1;
        kz_strbuf_add(w, xs, k);
        n -= k;
    }
}

static void joined_channel(lt_bot_t *b, const lt_env_t *env)
{
    kz_free(b->channel_id);
    b->channel_id = kz_strdup(env->id);
    step_done(b);
}

static int step_chat_join(lt_bot_t *b, const lt_step_t *s)
{
    char room[256];
    int64_t group = lt_bot_group(b->ctx, b->index, s->u.chat_join.group_size);
    if (!render(b, "chat_join", s->u.chat_join.room, group, room, sizeof room)) return S_ENDED;
    lt_wire_channel_join(&sendbuf, b->fmt, new_cid(b), room, s->u.chat_join.persistence);
    return ws_request(b, "chat_join", LT_ENV_CHANNEL, joined_channel);
}

static void next_step(lt_bot_t *b, const lt_env_t *env)
{
    step_done(b);
}

static int step_chat_send(lt_bot_t *b, const lt_step_t *s)
{
    if (!b->channel_id) {
        fail(b, "chat_send", "no channel");
        return S_ENDED;
    }
    /* Content is a JSON object of `size` bytes: {"t":"xxx..."}. */
    size_t size = (size_t)s->u.chat_send.size, pad = size > 8 ? size - 8 : 0;
    kz_strbuf_reset(&bodybuf);
    kz_strbuf_puts(&bodybuf, "{\"t\":\"");
    pad_x(&bodybuf, pad);
    kz_strbuf_puts(&bodybuf, "\"}");
    lt_wire_channel_send(&sendbuf, b->fmt, new_cid(b), b->channel_id, bodybuf.p);
    return ws_request(b, "chat_send", LT_ENV_CHANNEL_ACK, next_step);
}

static void left_channel(lt_bot_t *b, const lt_env_t *env)
{
    kz_free(b->channel_id);
    b->channel_id = NULL;
    step_done(b);
}

static int step_chat_leave(lt_bot_t *b, const lt_step_t *s)
{
    if (!b->channel_id) {
        fail(b, "chat_leave", "no channel");
        return S_ENDED;
    }
    lt_wire_channel_leave(&sendbuf, b->fmt, new_cid(b), b->channel_id);
    return ws_request(b, "chat_leave", LT_ENV_ACK, left_channel);
}

static void joined_match(lt_bot_t *b, const lt_env_t *env)
{
    kz_free(b->match_id);
    b->match_id = kz_strdup(env->id);
    step_done(b);
}

static int step_match(lt_bot_t *b, const lt_step_t *s)
{
    char name[256];
    int64_t group = lt_bot_group(b->ctx, b->index, s->u.match.group_size);
    if (!render(b, "match_join", s->u.match.name, group, name, sizeof name)) return S_ENDED;
    lt_wire_match_create(&sendbuf, b->fmt, new_cid(b), name);
    return ws_request(b, "match_join", LT_ENV_MATCH, joined_match);
}

static int step_match_send(lt_bot_t *b, const lt_step_t *s)
{
    if (!b->match_id) {
        fail(b, "match_send", "no match");
        return S_ENDED;
    }
    size_t size = (size_t)s->u.match_send.size;
    kz_strbuf_reset(&bodybuf);
    uint8_t stamp[LT_STAMP_LEN];
    lt_stamp_write(stamp, uv_hrtime(), b->ctx->machine);
    kz_strbuf_add(&bodybuf, stamp, size < LT_STAMP_LEN ? size : LT_STAMP_LEN);
    static const char zeros[256];
    for (size_t left = size > LT_STAMP_LEN ? size - LT_STAMP_LEN : 0; left;) {
        size_t n = left < sizeof zeros ? left : sizeof zeros;
        kz_strbuf_add(&bodybuf, zeros, n);
        left -= n;
    }
    lt_wire_match_send(&sendbuf, b->fmt, b->match_id, s->u.match_send.op_code, bodybuf.p, size);
    return ws_send(b, "match_send") == 0 ? S_NEXT : S_ENDED;
}

static void left_match(lt_bot_t *b, const lt_env_t *env)
{
    kz_free(b->match_id);
    b->match_id = NULL;
    step_done(b);
}

static int step_match_leave(lt_bot_t *b, const lt_step_t *s)
{
    if (!b->match_id) {
        fail(b, "match_leave", "no match");
        return S_ENDED;
    }
    lt_wire_match_leave(&sendbuf, b->fmt, new_cid(b), b->match_id);
    return ws_request(b, "match_leave", LT_ENV_ACK, left_match);
}

/* matchmaker: add -> ticket -> matched -> (join). */
static void handle_matched(lt_bot_t *b, const char *match_id, const char *token)
{
    const lt_step_t *s = &b->stack[b->depth].steps[b->stack[b->depth].pc];
    uv_timer_stop(&b->timer);
    b->phase = PH_NONE;
    ok(b, "matchmaker_matched", b->t_first);
    if (!s->u.matchmaker.join) {
        step_done(b);
        return;
    }
    if ((!token || !*token) && (!match_id || !*match_id)) {
        fail(b, "match_join", "matched without a match");
        return;
    }
    lt_wire_match_join(&sendbuf, b->fmt, new_cid(b), match_id, token && *token ? token : NULL);
    ws_request(b, "match_join", LT_ENV_MATCH, joined_match);
}

static void got_ticket(lt_bot_t *b, const lt_env_t *env)
{
    if (b->early_matched) {
        b->early_matched = false;
        char *m = b->early_match, *t = b->early_token;
        b->early_match = b->early_token = NULL;
        handle_matched(b, m, t);
        kz_free(m);
        kz_free(t);
        return;
    }
    arm(b, PH_MM_MATCHED, b->deadline - (int64_t)uv_now(b->ctx->loop));
}

static int step_matchmaker(lt_bot_t *b, const lt_step_t *s)
{
    const lt_ctx_t *ctx = b->ctx;
    size_t ns = s->u.matchmaker.n_string_props, nn = s->u.matchmaker.n_numeric_props;
    lt_kv_t sp[LT_MAX_PROPS], np[LT_MAX_PROPS];
    static _Thread_local char vals[2 * LT_MAX_PROPS][256];
    int64_t group = local_index(ctx, b->index);
    for (size_t i = 0; i < ns && i < LT_MAX_PROPS; i++) {
        if (!render(b, "matchmaker_add", s->u.matchmaker.string_props[i].value, group, vals[i], sizeof vals[i]))
            return S_ENDED;
        sp[i] = (lt_kv_t){.key = s->u.matchmaker.string_props[i].key, .str = vals[i]};
    }
    for (size_t i = 0; i < nn && i < LT_MAX_PROPS; i++) {
        char *v = vals[LT_MAX_PROPS + i], *end;
        if (!render(b, "matchmaker_add", s->u.matchmaker.numeric_props[i].value, group, v, 256)) return S_ENDED;
        double d = strtod(v, &end);
        if (end == v || *end) {
            fail(b, "matchmaker_add", "numeric property is not a number");
            return S_ENDED;
        }
        np[i] = (lt_kv_t){.key = s->u.matchmaker.numeric_props[i].key, .num = d};
    }
    char query[512];
    if (!render(b, "matchmaker_add", s->u.matchmaker.query, group, query, sizeof query)) return S_ENDED;
    lt_wire_matchmaker_add(&sendbuf, b->fmt, new_cid(b), query, s->u.matchmaker.min_count,
                           s->u.matchmaker.max_count, sp, ns < LT_MAX_PROPS ? ns : LT_MAX_PROPS, np,
                           nn < LT_MAX_PROPS ? nn : LT_MAX_PROPS);
    b->early_matched = false;
    b->deadline = (int64_t)uv_now(ctx->loop) + s->u.matchmaker.timeout_ms;
    int r = ws_request(b, "matchmaker_add", LT_ENV_MM_TICKET, got_ticket);
    b->t_first = b->t_op;
    return r;
}

/* am_match: the group's first bot creates the match through an RPC; the
 * others list authoritative matches by label until it shows up. */
static void am_key(lt_bot_t *b, const lt_step_t *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s-%d-%" PRId64, b->ctx->run_id, b->profile,
             lt_bot_group(b->ctx, b->index, s->u.am_match.group_size));
}

static void am_join(lt_bot_t *b, const char *match_id)
{
    lt_wire_match_join(&sendbuf, b->fmt, new_cid(b), match_id, NULL);
    ws_request(b, "match_join", LT_ENV_MATCH, joined_match);
}

static void am_created(lt_bot_t *b, const lt_env_t *env)
{
    /* The RPC returns the match id, or an object with match_id. */
    const char *p = env->text;
    while (*p == ' ' || *p == '"') p++;
    char id[192] = "";
    if (*p == '{') {
        json_t *root = json_loads(env->text, 0, NULL);
        const char *m = json_string_value(json_object_get(root, "match_id"));
        if (m && strlen(m) < sizeof id) memcpy(id, m, strlen(m) + 1);
        json_decref(root);
    } else if (strlen(p) < sizeof id) {
        memcpy(id, p, strlen(p) + 1);
    }
    size_t n = strlen(id);
    while (n && (id[n - 1] == '"' || id[n - 1] == ' ' || id[n - 1] == '\n')) id[--n] = '\0';
    if (!n || env->text_truncated) {
        fail(b, "am_create", "no match id in the reply");
        return;
    }
    am_join(b, id);
}

static int am_poll(lt_bot_t *b);

static void am_listed(lt_bot_t *b, const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *first = json_array_get(json_object_get(root, "matches"), 0);
    const char *id = json_string_value(json_object_get(first, "match_id"));
    if (id && *id) {
        char copy[192];
        snprintf(copy, sizeof copy, "%s", id);
        json_decref(root);
        ok(b, "am_find", b->t_first);
        am_join(b, copy);
        return;
    }
    json_decref(root);
    if ((int64_t)uv_now(b->ctx->loop) >= b->deadline) {
        fail(b, "am_find", "timeout");
        return;
    }
    arm(b, PH_AM_POLL, LT_AM_POLL_MS);
}

static const lt_step_t *cur(const lt_bot_t *b)
{
    const frame_t *f = &b->stack[b->depth];
    return &f->steps[f->pc];
}

static int am_poll(lt_bot_t *b)
{
    char key[96], q[160], enc[400], path[512], auth[2048];
    am_key(b, cur(b), key, sizeof key);
    snprintf(q, sizeof q, "+label.group:\"%s\"", key);
    lt_url_encode(q, enc, sizeof enc);
    snprintf(path, sizeof path, "/v2/match?authoritative=true&limit=1&query=%s", enc);
    return http_req(b, "am_find", "GET", path, bearer(b, auth, sizeof auth), false, am_listed);
}

static int step_am_match(lt_bot_t *b, const lt_step_t *s)
{
    int gs = s->u.am_match.group_size;
    b->deadline = (int64_t)uv_now(b->ctx->loop) + s->u.am_match.timeout_ms;
    b->t_first = now_us();
    if (b->local % gs == 0) {
        char key[96], payload[160];
        am_key(b, s, key, sizeof key);
        snprintf(payload, sizeof payload, "{\"group\":\"%s\"}", key);
        lt_wire_rpc(&sendbuf, b->fmt, new_cid(b), s->u.am_match.create_rpc, payload);
        return ws_request(b, "am_create", LT_ENV_RPC, am_created);
    }
    return am_poll(b);
}

static void http_next(lt_bot_t *b, const char *body, size_t len)
{
    ok(b, b->op, b->t_op);
    step_done(b);
}

static int step_rpc(lt_bot_t *b, const lt_step_t *s)
{
    char payload[4096], id[256], auth[2048];
    if (!render(b, "rpc", s->u.rpc.payload, b->local, payload, sizeof payload)) return S_ENDED;
    if (s->u.rpc.via == LT_VIA_SOCKET) {
        lt_wire_rpc(&sendbuf, b->fmt, new_cid(b), s->u.rpc.id, payload);
        return ws_request(b, "rpc", LT_ENV_RPC, next_step);
    }
    if (lt_url_encode(s->u.rpc.id, id, sizeof id) < 0) {
        fail(b, "rpc", "id too long");
        return S_ENDED;
    }
    char path[320];
    snprintf(path, sizeof path, "/v2/rpc/%s", id);
    kz_strbuf_reset(&bodybuf);
    lt_json_str(&bodybuf, payload); /* the body is the payload as a JSON string */
    return http_req(b, "rpc", "POST", path, bearer(b, auth, sizeof auth), true, http_next);
}

static int step_storage_write(lt_bot_t *b, const lt_step_t *s)
{
    char key[256], auth[2048];
    if (!render(b, "storage_write", s->u.storage.key, b->local, key, sizeof key))
        return S_ENDED;
    /* The value: a JSON object of `size` bytes, {"v":"xxx..."}. */
    size_t size = (size_t)s->u.storage.size, pad = size > 8 ? size - 8 : 0;
    kz_strbuf_t value = {0};
    kz_strbuf_puts(&value, "{\"v\":\"");
    pad_x(&value, pad);
    kz_strbuf_puts(&value, "\"}");
    kz_strbuf_reset(&bodybuf);
    kz_strbuf_puts(&bodybuf, "{\"objects\":[{\"collection\":");
    lt_json_str(&bodybuf, s->u.storage.collection);
    kz_strbuf_puts(&bodybuf, ",\"key\":");
    lt_json_str(&bodybuf, key);
    kz_strbuf_puts(&bodybuf, ",\"value\":");
    lt_json_str(&bodybuf, value.p);
    kz_strbuf_puts(&bodybuf, ",\"permission_read\":1,\"permission_write\":1}]}");
    kz_strbuf_free(&value);
    return http_req(b, "storage_write", "PUT", "/v2/storage", bearer(b, auth, sizeof auth), true, http_next);
}

/* The user id from the session token's claims (uid). */
static bool token_uid(const lt_bot_t *b, char *out, size_t cap)
{
    const char *t = b->token, *dot1 = t ? strchr(t, '.') : NULL, *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2) return false;
    size_t n;
    unsigned char *raw = kz_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &n);
    if (!raw) return false;
    json_t *claims = json_loadb((const char *)raw, n, 0, NULL);
    kz_free(raw);
    const char *uid = json_string_value(json_object_get(claims, "uid"));
    bool found = uid && strlen(uid) < cap;
    if (found) snprintf(out, cap, "%s", uid);
    json_decref(claims);
    return found;
}

static int step_storage_read(lt_bot_t *b, const lt_step_t *s)
{
    char key[256], uid[64], auth[2048];
    if (!render(b, "storage_read", s->u.storage.key, b->local, key, sizeof key))
        return S_ENDED;
    if (!token_uid(b, uid, sizeof uid)) {
        fail(b, "storage_read", "no session");
        return S_ENDED;
    }
    kz_strbuf_reset(&bodybuf);
    kz_strbuf_puts(&bodybuf, "{\"object_ids\":[{\"collection\":");
    lt_json_str(&bodybuf, s->u.storage.collection);
    kz_strbuf_puts(&bodybuf, ",\"key\":");
    lt_json_str(&bodybuf, key);
    kz_strbuf_puts(&bodybuf, ",\"user_id\":");
    lt_json_str(&bodybuf, uid);
    kz_strbuf_puts(&bodybuf, "}]}");
    return http_req(b, "storage_read", "POST", "/v2/storage", bearer(b, auth, sizeof auth), true, http_next);
}

static int step_leaderboard_write(lt_bot_t *b, const lt_step_t *s)
{
    char id[256], path[320], auth[2048];
    if (lt_url_encode(s->u.leaderboard.id, id, sizeof id) < 0) {
        fail(b, "leaderboard_write", "id too long");
        return S_ENDED;
    }
    snprintf(path, sizeof path, "/v2/leaderboard/%s", id);
    int64_t score = s->u.leaderboard.random ? (int64_t)(next_rand(b->ctx) % 1000001) : s->u.leaderboard.score;
    kz_strbuf_reset(&bodybuf);
    kz_strbuf_printf(&bodybuf, "{\"score\":\"%" PRId64 "\"}", score);
    return http_req(b, "leaderboard_write", "POST", path, bearer(b, auth, sizeof auth), true, http_next);
}

static int step_disconnect(lt_bot_t *b, const lt_step_t *s)
{
    if (!b->ws) return S_NEXT;
    if (!kzc_ws_is_open(b->ws)) {
        kzc_free(b->ws);
        b->ws = NULL;
        return S_NEXT;
    }
    b->phase = PH_DISCONNECT;
    kzc_ws_close(b->ws, 1000);
    return S_ASYNC;
}

static int step_repeat(lt_bot_t *b, const lt_step_t *s)
{
    if (b->depth >= LT_REPEAT_DEPTH || !s->u.repeat.nsteps) return S_NEXT; /* refused by the parser */
    if (s->u.repeat.count == 0 || (s->u.repeat.count < 0 && s->u.repeat.for_ms == 0)) return S_NEXT;
    frame_t *f = &b->stack[++b->depth];
    *f = (frame_t){.steps = s->u.repeat.steps, .n = s->u.repeat.nsteps, .rep = s,
                   .t0 = (int64_t)uv_now(b->ctx->loop)};
    return S_PUSHED;
}

/* The top frame finished an iteration: decides whether and when the next
 * one runs (fixed-rate schedule; slots missed entirely are counted late
 * and skipped). */
static int repeat_next(lt_bot_t *b)
{
    frame_t *f = &b->stack[b->depth];
    const lt_step_t *rep = f->rep;
    int64_t now = (int64_t)uv_now(b->ctx->loop), every = rep->u.repeat.every_ms;
    int64_t count = rep->u.repeat.count, for_ms = rep->u.repeat.for_ms;
    bool by_count = count >= 0;
    f->slot++;
    int64_t due = now;
    if (every > 0) {
        due = f->t0 + f->slot * every;
        if (now >= due + every) {
            int64_t behind = (now - f->t0) / every - f->slot;
            lt_stats_add(b->ctx->stats, LT_C_LATE, (uint64_t)behind);
            f->slot += behind;
            due = f->t0 + f->slot * every;
        }
    }
    bool over = by_count ? f->slot >= count : for_ms != LT_UNTIL_END && due >= f->t0 + for_ms;
    if (over) {
        b->depth--;
        b->stack[b->depth].pc++;
        return S_NEXT;
    }
    f->pc = 0;
    if (due > now || every == 0) { /* every == 0: yield to the loop between iterations */
        arm(b, PH_RESUME, due - now);
        return S_ASYNC;
    }
    return S_NEXT;
}

static int start_step(lt_bot_t *b, const lt_step_t *s)
{
    switch (s->kind) {
    case LT_STEP_AUTH: return step_auth(b, s);
    case LT_STEP_SOCKET: return step_socket(b, s);
    case LT_STEP_WAIT: return step_wait(b, s);
    case LT_STEP_CHAT_JOIN: return step_chat_join(b, s);
    case LT_STEP_CHAT_SEND: return step_chat_send(b, s);
    case LT_STEP_CHAT_LEAVE: return step_chat_leave(b, s);
    case LT_STEP_MATCH: return step_match(b, s);
    case LT_STEP_MATCH_SEND: return step_match_send(b, s);
    case LT_STEP_MATCH_LEAVE: return step_match_leave(b, s);
    case LT_STEP_MATCHMAKER: return step_matchmaker(b, s);
    case LT_STEP_AM_MATCH: return step_am_match(b, s);
    case LT_STEP_RPC: return step_rpc(b, s);
    case LT_STEP_STORAGE_WRITE: return step_storage_write(b, s);
    case LT_STEP_STORAGE_READ: return step_storage_read(b, s);
    case LT_STEP_LEADERBOARD_WRITE: return step_leaderboard_write(b, s);
    case LT_STEP_REPEAT: return step_repeat(b, s);
    case LT_STEP_DISCONNECT: return step_disconnect(b, s);
    case LT_STEP_COUNT_: break;
    }
    fail(b, "step", "unknown step");
    return S_ENDED;
}

/* Runs steps until one waits or the bot ends. */
static void run(lt_bot_t *b)
{
    for (;;) {
        if (b->ended) return;
        if (b->ctx->stopping) { /* the runner stops every bot */
            b->phase = PH_WAIT_END;
            return;
        }
        frame_t *f = &b->stack[b->depth];
        int r;
        if (f->pc >= f->n) {
            if (b->depth == 0) {
                finish(b);
                return;
            }
            r = repeat_next(b);
            if (r == S_ASYNC || r == S_ENDED) return;
            continue;
        }
        const lt_step_t *s = &f->steps[f->pc];
        if (b->http && b->depth == 0 && !uses_http(s) && !b->ctx->http_later[b->profile][f->pc] &&
            !kzc_http_busy(b->http)) { /* no more HTTP for this bot */
            kzc_free(b->http);
            b->http = NULL;
        }
        r = start_step(b, s);
        if (r == S_ASYNC || r == S_ENDED) return;
        if (r == S_NEXT) f->pc++;
    }
}

static void on_timer(uv_timer_t *t)
{
    lt_bot_t *b = t->data;
    if (b->ended) return;
    switch (b->phase) {
    case PH_REPLY: fail(b, b->op, "timeout"); break;
    case PH_MM_MATCHED: fail(b, "matchmaker_matched", "timeout"); break;
    case PH_WAIT: step_done(b); break;
    case PH_RESUME:
        b->phase = PH_NONE;
        run(b);
        break;
    case PH_AM_POLL:
        b->phase = PH_NONE;
        am_poll(b);
        break;
    default: break;
    }
}

lt_bot_t *lt_bot_start(lt_ctx_t *ctx, int64_t index)
{
    lt_bot_t *b = kz_calloc(1, sizeof *b);
    b->ctx = ctx;
    b->index = index;
    b->local = local_index(ctx, index);
    b->profile = (int)lt_profile_for_bot(ctx->scn, index);
    const lt_profile_t *p = &ctx->scn->profiles[b->profile];
    b->stack[0] = (frame_t){.steps = p->steps, .n = p->nsteps};
    b->fmt = ctx->scn->format;
    uv_timer_init(ctx->loop, &b->timer);
    b->timer.data = b;
    b->next = ctx->head;
    if (ctx->head) ctx->head->prev = b;
    ctx->head = b;
    ctx->alive++;
    ctx->running++;
    lt_stats_add(ctx->stats, LT_C_BOTS_STARTED, 1);
    run(b);
    return b;
}
