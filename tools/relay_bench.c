/* kizuna-relay-bench: relayed match throughput and latency.
 *
 * Signs in M*P device accounts, opens one WebSocket each, forms M relayed
 * matches of P players (one creates, the others join), then every player
 * sends match_data_send at a given rate for a given time. Each message
 * carries its send time; receivers measure the latency and count
 * deliveries. Prints delivered messages/s and latency percentiles.
 *
 *   kizuna-relay-bench [--host 127.0.0.1] [--port 7350] [--matches 10]
 *                      [--players 4] [--rate 20] [--duration 10] [--size 32]
 *                      [--format json|protobuf]
 *
 * One thread, one libuv loop. Connections are libkzclient's (tools/client:
 * keep-alive HTTP for the sign-ins, WebSocket with wslay for frames), set
 * up many at a time; the envelopes are written and read by hand (JSON, or
 * protobuf Envelopes) so the tool measures the server, not an encoder. */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "client/client.h"

#define SETUP_CONCURRENCY 64 /* sign-ins and socket opens in flight */

typedef struct player {
    int index;
    int match;            /* index of its match */
    char match_id[128];
    kzc_conn_t *http, *ws;
    char *token;
    bool ready;           /* in its match */
    uv_timer_t timer;     /* send pacing */
    uint64_t sent;
} player_t;

static struct {
    const char *host;
    int port, matches, players, rate, duration, size;
    bool protobuf;
} opt = {"127.0.0.1", 7350, 10, 4, 20, 10, 32, false};

static player_t *players;
static int nplayers, next_setup, in_setup, nready;
static uint64_t delivered, errors;
static uint64_t *lat;       /* latencies in ns, sampled */
static size_t nlat, caplat;
static bool running;
static uint64_t start_ns, stop_ns;
static uv_loop_t *loop;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "kizuna-relay-bench: %s\n", what);
    exit(1);
}

/* ---- protobuf, by hand --------------------------------------------------- */

static size_t put_varint(char *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* A length-delimited field: tag, length, bytes. */
static size_t put_bytes(char *out, int field, const void *b, size_t len)
{
    size_t n = put_varint(out, (uint64_t)field << 3 | 2);
    n += put_varint(out + n, len);
    memcpy(out + n, b, len);
    return n + len;
}

static bool get_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *i < n && shift < 64; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* Finds length-delimited field `field` in message p[0..n). */
static bool pb_find(const uint8_t *p, size_t n, int field, const uint8_t **val, size_t *vlen)
{
    size_t i = 0;
    while (i < n) {
        uint64_t tag, v;
        if (!get_varint(p, n, &i, &tag)) return false;
        switch (tag & 7) {
        case 0:
            if (!get_varint(p, n, &i, &v)) return false;
            break;
        case 1: i += 8; break;
        case 5: i += 4; break;
        case 2:
            if (!get_varint(p, n, &i, &v) || v > n - i) return false;
            if ((int)(tag >> 3) == field) {
                *val = p + i;
                *vlen = (size_t)v;
                return true;
            }
            i += (size_t)v;
            break;
        default: return false;
        }
    }
    return false;
}

/* ---- the run ------------------------------------------------------------- */

static void record(uint64_t ns)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) die("out of memory");
    }
    lat[nlat++] = ns;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Handles one server binary frame: an Envelope whose match_data (14)
 * data (4) starts with the send time. */
static void on_binary(const uint8_t *p, size_t len)
{
    const uint8_t *md, *d;
    size_t mdl, dl;
    if (!pb_find(p, len, 14, &md, &mdl) || !pb_find(md, mdl, 4, &d, &dl) || dl < 8) {
        if (pb_find(p, len, 11, &md, &mdl)) errors++;
        return;
    }
    uint64_t sent;
    memcpy(&sent, d, 8);
    if (running) {
        delivered++;
        record(now_ns() - sent);
    }
}

/* Handles one server text frame: match_data carries a send time. */
static void on_text(const char *p, size_t len)
{
    const char *d = memmem(p, len, "\"data\":\"", 8);
    if (!memmem(p, len, "\"match_data\"", 12) || !d) {
        if (memmem(p, len, "\"error\"", 7)) errors++;
        return;
    }
    d += 8;
    /* The first 16 base64 characters encode 12 bytes; the send time is the
     * first 8 of them (little-endian). */
    uint8_t raw[12];
    for (int g = 0; g < 4; g++) {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) v = (v << 6) | (uint32_t)(strchr(b64, d[g * 4 + k]) - b64);
        raw[g * 3] = (uint8_t)(v >> 16);
        raw[g * 3 + 1] = (uint8_t)(v >> 8);
        raw[g * 3 + 2] = (uint8_t)v;
    }
    uint64_t sent;
    memcpy(&sent, raw, 8);
    if (running) {
        delivered++;
        record(now_ns() - sent);
    }
}

/* ---- sending ------------------------------------------------------------ */

static void send_tick(uv_timer_t *t)
{
    player_t *pl = t->data;
    if (!running) return;
    /* Payload: 8-byte send time, padded to opt.size. */
    uint8_t raw[1024] = {0};
    uint64_t ts = now_ns();
    memcpy(raw, &ts, 8);
    size_t rl = (size_t)opt.size < 12 ? 12 : (size_t)opt.size;
    char env[1600];
    int el;
    if (opt.protobuf) { /* Envelope{match_data_send(15){match_id(1), op_code(2) 1, data(3)}} */
        char inner[1400];
        size_t il = put_bytes(inner, 1, pl->match_id, strlen(pl->match_id));
        inner[il++] = 0x10;
        inner[il++] = 0x01;
        il += put_bytes(inner + il, 3, raw, rl);
        el = (int)put_bytes(env, 15, inner, il);
    } else {
        char data[1400];
        size_t dl = 0;
        for (size_t i = 0; i < rl; i += 3) {
            uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)(i + 1 < rl ? raw[i + 1] : 0) << 8 |
                         (i + 2 < rl ? raw[i + 2] : 0);
            data[dl++] = b64[(v >> 18) & 63];
            data[dl++] = b64[(v >> 12) & 63];
            data[dl++] = i + 1 < rl ? b64[(v >> 6) & 63] : '=';
            data[dl++] = i + 2 < rl ? b64[v & 63] : '=';
        }
        data[dl] = '\0';
        el = snprintf(env, sizeof env,
                      "{\"match_data_send\":{\"match_id\":\"%s\",\"op_code\":\"1\",\"data\":\"%s\"}}",
                      pl->match_id, data);
    }
    if (kzc_ws_send(pl->ws, opt.protobuf, env, (size_t)el) != 0) errors++;
    pl->sent++;
}

static void on_stop(uv_timer_t *t)
{
    running = false;
    stop_ns = now_ns();
    uv_stop(t->loop);
}

/* ---- setup --------------------------------------------------------------- */

static void start_run(void);
static void setup_next(void);

/* Sends player p's match_create (the first of its match) or match_join
 * (the others, once the first one's match id is known), cid "1". */
static void send_enter(player_t *pl)
{
    char env[256];
    size_t el;
    player_t *first = &players[pl->index - pl->index % opt.players];
    if (pl != first && !first->ready) return; /* the creator's reply sends it */
    if (opt.protobuf) {
        /* Envelope{cid(1) "1", match_create(13) {}} or
         * Envelope{cid "1", match_join(16) {match_id(1)}}; the reply's
         * match (12) carries match_id (1). */
        el = put_bytes(env, 1, "1", 1);
        if (pl == first) {
            el += put_bytes(env + el, 13, "", 0);
        } else {
            char inner[160];
            size_t il = put_bytes(inner, 1, first->match_id, strlen(first->match_id));
            el += put_bytes(env + el, 16, inner, il);
        }
    } else if (pl == first) {
        el = (size_t)snprintf(env, sizeof env, "{\"cid\":\"1\",\"match_create\":{}}");
    } else {
        el = (size_t)snprintf(env, sizeof env, "{\"cid\":\"1\",\"match_join\":{\"match_id\":\"%s\"}}",
                              first->match_id);
    }
    if (kzc_ws_send(pl->ws, opt.protobuf, env, el) != 0) die("cannot send on a new socket");
}

/* The reply to match_create / match_join (cid "1"): the match id. */
static void on_setup_reply(player_t *pl, bool binary, const char *p, size_t len)
{
    if (binary) {
        const uint8_t *m, *id;
        size_t ml, idl;
        if (!pb_find((const uint8_t *)p, len, 12, &m, &ml) || !pb_find(m, ml, 1, &id, &idl) ||
            idl >= sizeof pl->match_id)
            die("match_create/match_join failed");
        memcpy(pl->match_id, id, idl);
        pl->match_id[idl] = '\0';
    } else {
        const char *m = memmem(p, len, "\"match_id\":\"", 12);
        const char *e = m ? memchr(m + 12, '"', len - (size_t)(m + 12 - p)) : NULL;
        if (!e || (size_t)(e - m - 12) >= sizeof pl->match_id) {
            fprintf(stderr, "reply: %.*s\n", (int)len, p);
            die("match_create/match_join failed");
        }
        memcpy(pl->match_id, m + 12, (size_t)(e - m - 12));
        pl->match_id[e - m - 12] = '\0';
    }
    pl->ready = true;
    nready++;
    in_setup--;
    if (pl->index % opt.players == 0) /* the joiners waiting for this match */
        for (int i = pl->index + 1; i < pl->index + opt.players; i++)
            if (players[i].ws && kzc_ws_is_open(players[i].ws) && !players[i].ready) send_enter(&players[i]);
    if (nready == nplayers)
        start_run();
    else
        setup_next();
}

static void on_message(kzc_conn_t *c, bool binary, const char *p, size_t len, void *arg)
{
    player_t *pl = arg;
    if (!pl->ready) {
        bool reply = binary ? len >= 3 && (uint8_t)p[0] == 0x0a && p[1] == 1 && p[2] == '1'
                            : memmem(p, len, "\"cid\":\"1\"", 9) != NULL;
        if (reply) on_setup_reply(pl, binary, p, len);
        return;
    }
    if (binary)
        on_binary((const uint8_t *)p, len);
    else
        on_text(p, len);
}

static void on_open(kzc_conn_t *c, void *arg)
{
    send_enter(arg);
}

static void on_close(kzc_conn_t *c, int code, const char *reason, void *arg)
{
    if (!running && nready < nplayers) {
        fprintf(stderr, "kizuna-relay-bench: socket: %s\n", reason);
        die("a socket closed during setup");
    }
    if (running) errors++;
}

static const kzc_ws_cbs_t ws_cbs = {on_open, on_message, on_close};

static kzc_target_t target(void)
{
    return (kzc_target_t){.host = opt.host, .port = opt.port, .timeout_ms = 30000};
}

static void on_signed_in(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    player_t *pl = arg;
    const char *t = status == 200 ? strstr(body, "\"token\":\"") : NULL;
    const char *e = t ? strchr(t + 9, '"') : NULL;
    if (!e) {
        fprintf(stderr, "kizuna-relay-bench: sign-in: %s\n", err ? err : body);
        die("sign-in failed (is the server up, with the default server key?)");
    }
    char path[2560];
    snprintf(path, sizeof path, "/ws?status=false&format=%s&token=%.*s", opt.protobuf ? "protobuf" : "json",
             (int)(e - t - 9), t + 9);
    kzc_free(pl->http);
    pl->http = NULL;
    kzc_target_t tg = target();
    pl->ws = kzc_ws_open(loop, &tg, path, &ws_cbs, pl);
}

/* Starts the setup of the next players, SETUP_CONCURRENCY at a time. */
static void setup_next(void)
{
    while (in_setup < SETUP_CONCURRENCY && next_setup < nplayers) {
        player_t *pl = &players[next_setup++];
        char body[96];
        int bl = snprintf(body, sizeof body, "{\"id\":\"relay-bench-device-%08d\"}", pl->index);
        kzc_target_t tg = target();
        pl->http = kzc_http_new(loop, &tg);
        kzc_http_request(pl->http, "POST", "/v2/account/authenticate/device", "Basic ZGVmYXVsdGtleTo=", body,
                         (size_t)bl, on_signed_in, pl);
        in_setup++;
    }
}

static void start_run(void)
{
    /* Presence events of the joins may still be arriving: they are not
     * counted (running is still false). */
    uv_run(loop, UV_RUN_NOWAIT);
    running = true;
    start_ns = now_ns();
    uint64_t period = 1000 / (uint64_t)opt.rate;
    if (!period) period = 1;
    for (int i = 0; i < nplayers; i++) uv_timer_start(&players[i].timer, send_tick, (uint64_t)(i % 50), period);
    static uv_timer_t stop;
    uv_timer_init(loop, &stop);
    uv_timer_start(&stop, on_stop, (uint64_t)opt.duration * 1000, 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!nlat) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(nlat - 1));
    return (double)lat[i] / 1e6;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) opt.host = v;
        else if (!strcmp(k, "--port")) opt.port = atoi(v);
        else if (!strcmp(k, "--matches")) opt.matches = atoi(v);
        else if (!strcmp(k, "--players")) opt.players = atoi(v);
        else if (!strcmp(k, "--rate")) opt.rate = atoi(v);
        else if (!strcmp(k, "--duration")) opt.duration = atoi(v);
        else if (!strcmp(k, "--size")) opt.size = atoi(v);
        else if (!strcmp(k, "--format") && (!strcmp(v, "json") || !strcmp(v, "protobuf")))
            opt.protobuf = !strcmp(v, "protobuf");
        else die("unknown flag (see the comment at the top of tools/relay_bench.c)");
    }
    if (opt.matches < 1 || opt.players < 2 || opt.rate < 1 || opt.duration < 1 || opt.size < 8 || opt.size > 1000)
        die("bad values: matches >= 1, players >= 2, rate >= 1, duration >= 1, size 8..1000");
    nplayers = opt.matches * opt.players;
    players = calloc((size_t)nplayers, sizeof *players);
    signal(SIGPIPE, SIG_IGN); /* a socket the server closed fails with EPIPE instead */
    loop = uv_default_loop();
    for (int i = 0; i < nplayers; i++) {
        players[i].index = i;
        players[i].match = i / opt.players;
        uv_timer_init(loop, &players[i].timer);
        players[i].timer.data = &players[i];
    }
    setup_next();
    uv_run(loop, UV_RUN_DEFAULT);
    if (!start_ns) die("setup did not finish");

    uint64_t sent = 0;
    for (int i = 0; i < nplayers; i++) sent += players[i].sent;
    double secs = (double)(stop_ns - start_ns) / 1e9;
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    uint64_t expected = sent * (uint64_t)(opt.players - 1);
    printf("matches %d x players %d, rate %d/s each, %d s, payload %d bytes, %s\n", opt.matches, opt.players,
           opt.rate, opt.duration, opt.size, opt.protobuf ? "protobuf" : "json");
    printf("sent %llu, delivered %llu of %llu expected (%.2f%%), errors %llu\n", (unsigned long long)sent,
           (unsigned long long)delivered, (unsigned long long)expected,
           expected ? 100.0 * (double)delivered / (double)expected : 0.0, (unsigned long long)errors);
    printf("delivered/s %.0f\n", (double)delivered / secs);
    printf("latency ms p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f\n", pct(50), pct(90), pct(99), pct(99.9),
           nlat ? (double)lat[nlat - 1] / 1e6 : 0.0);
    return 0;
}
