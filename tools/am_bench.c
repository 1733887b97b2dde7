/* kizuna-am-bench: authoritative matches under load.
 *
 * Creates M authoritative matches of the Lua module bench/modules/am_bench.lua
 * (through its RPC am_bench_create, with the http_key), signs in M*P
 * device accounts, opens one WebSocket each and joins P players to each
 * match. Then every player sends one input (match_data_send, 16 bytes:
 * send time and player index) per tick period for the given time, and the
 * match broadcasts one state update per tick to all its players with the
 * inputs it received. The tool counts the updates each player receives
 * (M*P*rate per second are expected) and measures how long an input takes
 * to come back inside an update (this includes waiting for the next tick:
 * half a period on average).
 *
 *   kizuna-am-bench [--host 127.0.0.1] [--port 7350] [--matches 10]
 *                   [--players 10] [--rate 10] [--duration 10]
 *                   [--http-key defaulthttpkey]
 *
 * Start the server with --runtime.path bench/modules. The server logs its own
 * tick figures (ticks, skipped, slow, start delay) when it stops.
 * One thread, one libuv loop; connections are libkzclient's (tools/client),
 * set up many at a time; JSON envelopes are written and read by hand. */
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
    char match_id[128];
    kzc_conn_t *http, *ws;
    bool ready;
    uv_timer_t timer;
    uint64_t sent, updates;
} player_t;

static struct {
    const char *host, *http_key;
    int port, matches, players, rate, duration;
} opt = {"127.0.0.1", "defaulthttpkey", 7350, 10, 10, 10, 10};

static player_t *players;
static int nplayers, next_setup, in_setup, nready, made;
static char **ids;
static uint64_t updates, errors;
static uint64_t *lat;
static size_t nlat, caplat;
static bool running;
static uint64_t start_ns, stop_ns, setup0;
static uv_loop_t *loop;
static kzc_conn_t *rpc;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "kizuna-am-bench: %s\n", what);
    exit(1);
}

static kzc_target_t target(void)
{
    return (kzc_target_t){.host = opt.host, .port = opt.port, .timeout_ms = 30000};
}

/* ---- the run ------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static int8_t unb64[256];

static void record(uint64_t ns)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) die("out of memory");
    }
    lat[nlat++] = ns;
}

/* A server text frame: a match_data update holds 16-byte records (send
 * time, player index); the player's own record gives its latency. */
static void on_text(player_t *pl, const char *p, size_t len)
{
    if (!memmem(p, len, "\"match_data\"", 12)) {
        if (memmem(p, len, "\"error\"", 7)) errors++;
        return;
    }
    if (!running) return;
    updates++;
    pl->updates++;
    const char *d = memmem(p, len, "\"data\":\"", 8);
    if (!d) return;
    d += 8;
    const char *end = memchr(d, '"', len - (size_t)(d - p));
    if (!end) return;
    uint8_t raw[4096];
    size_t rn = 0;
    for (const char *q = d; q + 4 <= end && rn + 3 <= sizeof raw; q += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (q[k] == '=') {
                pad++;
                v <<= 6;
            } else {
                v = (v << 6) | (uint32_t)unb64[(uint8_t)q[k]];
            }
        }
        raw[rn++] = (uint8_t)(v >> 16);
        if (pad < 2) raw[rn++] = (uint8_t)(v >> 8);
        if (pad < 1) raw[rn++] = (uint8_t)v;
    }
    for (size_t i = 0; i + 16 <= rn; i += 16) {
        uint64_t sent, who;
        memcpy(&sent, raw + i, 8);
        memcpy(&who, raw + i + 8, 8);
        if (who == (uint64_t)pl->index) record(now_ns() - sent);
    }
}

static void send_input(uv_timer_t *t)
{
    player_t *pl = t->data;
    if (!running) return;
    uint8_t raw[18] = {0};
    uint64_t ts = now_ns(), who = (uint64_t)pl->index;
    memcpy(raw, &ts, 8);
    memcpy(raw + 8, &who, 8);
    char data[32];
    size_t dl = 0;
    for (size_t i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)(i + 1 < 16 ? raw[i + 1] : 0) << 8 |
                     (i + 2 < 16 ? raw[i + 2] : 0);
        data[dl++] = b64[(v >> 18) & 63];
        data[dl++] = b64[(v >> 12) & 63];
        data[dl++] = i + 1 < 16 ? b64[(v >> 6) & 63] : '=';
        data[dl++] = i + 2 < 16 ? b64[v & 63] : '=';
    }
    data[dl] = '\0';
    char env[256];
    int el = snprintf(env, sizeof env, "{\"match_data_send\":{\"match_id\":\"%s\",\"op_code\":\"1\",\"data\":\"%s\"}}",
                      pl->match_id, data);
    if (kzc_ws_send(pl->ws, false, env, (size_t)el) != 0) errors++;
    pl->sent++;
}

static void on_stop(uv_timer_t *t)
{
    running = false;
    stop_ns = now_ns();
    uv_stop(t->loop);
}

/* ---- setup --------------------------------------------------------------- */

static void setup_next(void);

static void start_run(void)
{
    fprintf(stderr, "setup: %d matches, %d players in %.1f s\n", opt.matches, nplayers,
            (double)(now_ns() - setup0) / 1e9);
    uv_run(loop, UV_RUN_NOWAIT);
    running = true;
    start_ns = now_ns();
    uint64_t period = 1000 / (uint64_t)opt.rate;
    for (int i = 0; i < nplayers; i++)
        uv_timer_start(&players[i].timer, send_input, (uint64_t)(i % (int)period), period);
    static uv_timer_t stop;
    uv_timer_init(loop, &stop);
    uv_timer_start(&stop, on_stop, (uint64_t)opt.duration * 1000, 0);
}

static void on_message(kzc_conn_t *c, bool binary, const char *p, size_t len, void *arg)
{
    player_t *pl = arg;
    if (pl->ready) {
        on_text(pl, p, len);
        return;
    }
    if (!memmem(p, len, "\"cid\":\"1\"", 9)) return; /* not the join's reply */
    if (!memmem(p, len, "\"match\"", 7)) {
        fprintf(stderr, "reply: %.*s\n", (int)len, p);
        die("match_join failed");
    }
    pl->ready = true;
    nready++;
    in_setup--;
    if (nready == nplayers)
        start_run();
    else
        setup_next();
}

static void on_open(kzc_conn_t *c, void *arg)
{
    player_t *pl = arg;
    char env[256];
    int el = snprintf(env, sizeof env, "{\"cid\":\"1\",\"match_join\":{\"match_id\":\"%s\"}}", pl->match_id);
    if (kzc_ws_send(c, false, env, (size_t)el) != 0) die("cannot send on a new socket");
}

static void on_close(kzc_conn_t *c, int code, const char *reason, void *arg)
{
    if (!start_ns) {
        fprintf(stderr, "kizuna-am-bench: socket: %s\n", reason);
        die("a socket closed during setup");
    }
    if (running) errors++;
}

static const kzc_ws_cbs_t ws_cbs = {on_open, on_message, on_close};

static void on_signed_in(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    player_t *pl = arg;
    const char *t = status == 200 ? strstr(body, "\"token\":\"") : NULL;
    const char *e = t ? strchr(t + 9, '"') : NULL;
    if (!e) {
        fprintf(stderr, "kizuna-am-bench: sign-in: %s\n", err ? err : body);
        die("sign-in failed (is the server up, with the default server key?)");
    }
    char path[2560];
    snprintf(path, sizeof path, "/ws?status=false&token=%.*s", (int)(e - t - 9), t + 9);
    kzc_free(pl->http);
    pl->http = NULL;
    kzc_target_t tg = target();
    pl->ws = kzc_ws_open(loop, &tg, path, &ws_cbs, pl);
}

static void setup_next(void)
{
    while (in_setup < SETUP_CONCURRENCY && next_setup < nplayers) {
        player_t *pl = &players[next_setup++];
        char body[96];
        int bl = snprintf(body, sizeof body, "{\"id\":\"am-bench-device-%08d\"}", pl->index);
        kzc_target_t tg = target();
        pl->http = kzc_http_new(loop, &tg);
        kzc_http_request(pl->http, "POST", "/v2/account/authenticate/device", "Basic ZGVmYXVsdGtleTo=", body,
                         (size_t)bl, on_signed_in, pl);
        in_setup++;
    }
}

static void create_more(void);

/* am_bench_create's reply: the new match ids, comma-separated. */
static void on_created(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    if (status != 200) {
        fprintf(stderr, "%s\n", err ? err : body);
        die("am_bench_create failed (start the server with --runtime.path bench/modules)");
    }
    char *copy = strdup(body), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && made < opt.matches; tok = strtok_r(NULL, ",", &save))
        ids[made++] = strdup(tok);
    free(copy);
    if (made < opt.matches) {
        create_more();
        return;
    }
    kzc_free(rpc);
    rpc = NULL;
    for (int i = 0; i < nplayers; i++)
        snprintf(players[i].match_id, sizeof players[i].match_id, "%s", ids[i / opt.players]);
    setup0 = now_ns();
    setup_next();
}

/* The matches, in batches of 100 per RPC (one keep-alive connection). */
static void create_more(void)
{
    int n = opt.matches - made < 100 ? opt.matches - made : 100;
    char path[256], body[128];
    snprintf(path, sizeof path, "/v2/rpc/am_bench_create?unwrap&http_key=%s", opt.http_key);
    int bl = snprintf(body, sizeof body, "{\"count\":%d,\"rate\":%d}", n, opt.rate);
    kzc_http_request(rpc, "POST", path, NULL, body, (size_t)bl, on_created, NULL);
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
        else if (!strcmp(k, "--http-key")) opt.http_key = v;
        else die("unknown flag (see the comment at the top of tools/am_bench.c)");
    }
    if (opt.matches < 1 || opt.players < 1 || opt.rate < 1 || opt.rate > 60 || opt.duration < 1)
        die("bad values: matches >= 1, players >= 1, rate 1..60, duration >= 1");
    for (int i = 0; i < 64; i++) unb64[(uint8_t)b64[i]] = (int8_t)i;
    signal(SIGPIPE, SIG_IGN); /* a socket the server closed fails with EPIPE instead */
    loop = uv_default_loop();
    ids = calloc((size_t)opt.matches, sizeof *ids);
    nplayers = opt.matches * opt.players;
    players = calloc((size_t)nplayers, sizeof *players);
    for (int i = 0; i < nplayers; i++) {
        players[i].index = i;
        uv_timer_init(loop, &players[i].timer);
        players[i].timer.data = &players[i];
    }
    kzc_target_t tg = target();
    rpc = kzc_http_new(loop, &tg);
    create_more();
    uv_run(loop, UV_RUN_DEFAULT);
    if (!start_ns) die("setup did not finish");

    uint64_t sent = 0, starved = 0;
    double secs = (double)(stop_ns - start_ns) / 1e9;
    for (int i = 0; i < nplayers; i++) {
        sent += players[i].sent;
        if ((double)players[i].updates < 0.9 * secs * opt.rate) starved++;
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double expected = (double)nplayers * opt.rate * secs;
    printf("matches %d x players %d at %d Hz, %d s\n", opt.matches, opt.players, opt.rate, opt.duration);
    printf("inputs sent %llu, updates received %llu of ~%.0f expected (%.1f%%), players below 90%%: %llu, "
           "errors %llu\n",
           (unsigned long long)sent, (unsigned long long)updates, expected,
           expected > 0 ? 100.0 * (double)updates / expected : 0.0, (unsigned long long)starved,
           (unsigned long long)errors);
    printf("input -> update latency ms (includes the wait for the next tick) p50 %.1f p90 %.1f p99 %.1f max %.1f "
           "(%zu samples)\n",
           pct(50), pct(90), pct(99), nlat ? (double)lat[nlat - 1] / 1e6 : 0.0, nlat);
    return 0;
}
