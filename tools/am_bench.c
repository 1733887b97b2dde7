/* kizuna-am-bench: authoritative matches under load.
 *
 * Creates M authoritative matches of the Lua module bench/am/am_bench.lua
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
 * Start the server with --runtime.path bench/am. The server logs its own
 * tick figures (ticks, skipped, slow, start delay) when it stops.
 * One thread, one libuv loop, JSON envelopes written and read by hand. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct player {
    uv_tcp_t tcp;
    int index;
    char match_id[128];
    char *rbuf;
    size_t rlen, rcap;
    uv_timer_t timer;
    uint64_t sent, updates;
} player_t;

static struct {
    const char *host, *http_key;
    int port, matches, players, rate, duration;
} opt = {"127.0.0.1", "defaulthttpkey", 7350, 10, 10, 10, 10};

static player_t *players;
static int nplayers;
static uint64_t updates, errors;
static uint64_t *lat;
static size_t nlat, caplat;
static bool running;
static uint64_t start_ns, stop_ns;

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

/* ---- blocking setup ------------------------------------------------------ */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("cannot connect to the server");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* POSTs body to path (Connection: close) and returns the whole response. */
static char *http_post(const char *path, const char *auth, const char *body)
{
    char req[1024];
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "", strlen(body), body);
    int fd = dial();
    if (write(fd, req, strlen(req)) < 0) die("write failed");
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

static void sign_in(int i, char *token, size_t cap)
{
    char body[96];
    snprintf(body, sizeof body, "{\"id\":\"am-bench-device-%08d\"}", i);
    char *resp = http_post("/v2/account/authenticate/device", "Basic ZGVmYXVsdGtleTo=", body);
    char *t = strstr(resp, "\"token\":\"");
    if (!t) die("sign-in failed (is the server up, with the default server key?)");
    t += 9;
    char *e = strchr(t, '"');
    if (!e || (size_t)(e - t) >= cap) die("bad token");
    memcpy(token, t, (size_t)(e - t));
    token[e - t] = '\0';
    free(resp);
}

static int ws_open(const char *token)
{
    int fd = dial();
    char req[2560], resp[1024];
    snprintf(req, sizeof req,
             "GET /ws?status=false&token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             token);
    if (write(fd, req, strlen(req)) < 0) die("write failed");
    size_t n = 0;
    while (n + 1 < sizeof resp) {
        if (read(fd, resp + n, 1) != 1) die("handshake failed");
        n++;
        if (n >= 4 && memcmp(resp + n - 4, "\r\n\r\n", 4) == 0) break;
    }
    resp[n] = '\0';
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0) die("upgrade refused");
    return fd;
}

/* A masked client text frame of payload. */
static size_t frame(char *out, const char *payload, size_t len)
{
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t h = 0;
    out[h++] = (char)0x81;
    if (len < 126) {
        out[h++] = (char)(0x80 | len);
    } else {
        out[h++] = (char)(0x80 | 126);
        out[h++] = (char)(len >> 8);
        out[h++] = (char)len;
    }
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) out[h + i] = (char)(payload[i] ^ mask[i & 3]);
    return h + len;
}

static void read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0) die("connection lost during setup");
        got += (size_t)r;
    }
}

/* Sends env and reads frames until the one carrying "cid":"1". */
static void request_reply(int fd, const char *env, char *reply, size_t cap)
{
    char buf[1024];
    size_t n = frame(buf, env, strlen(env));
    if (write(fd, buf, n) < 0) die("write failed");
    for (;;) {
        uint8_t h[10];
        read_full(fd, h, 2);
        size_t len = h[1] & 0x7f;
        if (len == 126) {
            read_full(fd, h + 2, 2);
            len = ((size_t)h[2] << 8) | h[3];
        } else if (len == 127) {
            read_full(fd, h + 2, 8);
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
        }
        char *p = malloc(len + 1);
        read_full(fd, p, len);
        p[len] = '\0';
        bool mine = strstr(p, "\"cid\":\"1\"") != NULL;
        if (mine) snprintf(reply, cap, "%s", p);
        free(p);
        if (mine) return;
    }
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

static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    static char buf[65536];
    b->base = buf;
    b->len = sizeof buf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    player_t *pl = (player_t *)s;
    if (n < 0) {
        if (running) errors++;
        uv_read_stop(s);
        return;
    }
    if (pl->rlen + (size_t)n > pl->rcap) {
        pl->rcap = (pl->rlen + (size_t)n) * 2;
        pl->rbuf = realloc(pl->rbuf, pl->rcap);
    }
    memcpy(pl->rbuf + pl->rlen, b->base, (size_t)n);
    pl->rlen += (size_t)n;
    size_t off = 0;
    for (;;) {
        if (pl->rlen - off < 2) break;
        uint8_t *h = (uint8_t *)pl->rbuf + off;
        size_t len = h[1] & 0x7f, hl = 2;
        if (len == 126) {
            if (pl->rlen - off < 4) break;
            len = ((size_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (len == 127) {
            if (pl->rlen - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
            hl = 10;
        }
        if (pl->rlen - off < hl + len) break;
        if ((h[0] & 0x0f) == 0x1) on_text(pl, pl->rbuf + off + hl, len);
        off += hl + len;
    }
    memmove(pl->rbuf, pl->rbuf + off, pl->rlen - off);
    pl->rlen -= off;
}

typedef struct {
    uv_write_t req;
    char data[];
} wreq_t;

static void on_written(uv_write_t *r, int status)
{
    if (status < 0 && running) errors++;
    free(r);
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
    wreq_t *w = malloc(sizeof *w + (size_t)el + 16);
    size_t fl = frame(w->data, env, (size_t)el);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)fl);
    if (uv_write(&w->req, (uv_stream_t *)&pl->tcp, &b, 1, on_written) != 0) {
        free(w);
        errors++;
    }
    pl->sent++;
}

static void on_stop(uv_timer_t *t)
{
    running = false;
    stop_ns = now_ns();
    for (int i = 0; i < nplayers; i++) {
        uv_timer_stop(&players[i].timer);
        uv_read_stop((uv_stream_t *)&players[i].tcp);
    }
    uv_stop(t->loop);
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

    /* The matches, in batches of 100 per RPC. */
    char **ids = calloc((size_t)opt.matches, sizeof *ids);
    int made = 0;
    while (made < opt.matches) {
        int n = opt.matches - made < 100 ? opt.matches - made : 100;
        char path[256], body[128];
        snprintf(path, sizeof path, "/v2/rpc/am_bench_create?unwrap&http_key=%s", opt.http_key);
        snprintf(body, sizeof body, "{\"count\":%d,\"rate\":%d}", n, opt.rate);
        char *resp = http_post(path, NULL, body);
        char *b = strstr(resp, "\r\n\r\n");
        if (!b || strncmp(resp, "HTTP/1.1 200", 12) != 0) {
            fprintf(stderr, "%s\n", resp);
            die("am_bench_create failed (start the server with --runtime.path bench/am)");
        }
        for (char *tok = strtok(b + 4, ","); tok && made < opt.matches; tok = strtok(NULL, ","))
            ids[made++] = strdup(tok);
        free(resp);
    }

    nplayers = opt.matches * opt.players;
    players = calloc((size_t)nplayers, sizeof *players);
    uv_loop_t *loop = uv_default_loop();
    char token[2048], reply[4096], env[256];
    uint64_t setup0 = now_ns();
    for (int i = 0; i < nplayers; i++) {
        player_t *pl = &players[i];
        pl->index = i;
        snprintf(pl->match_id, sizeof pl->match_id, "%s", ids[i / opt.players]);
        sign_in(i, token, sizeof token);
        int fd = ws_open(token);
        snprintf(env, sizeof env, "{\"cid\":\"1\",\"match_join\":{\"match_id\":\"%s\"}}", pl->match_id);
        request_reply(fd, env, reply, sizeof reply);
        if (!strstr(reply, "\"match\"")) {
            fprintf(stderr, "reply: %s\n", reply);
            die("match_join failed");
        }
        uv_tcp_init(loop, &pl->tcp);
        uv_tcp_open(&pl->tcp, fd);
        uv_timer_init(loop, &pl->timer);
        pl->timer.data = pl;
        uv_read_start((uv_stream_t *)&pl->tcp, alloc_cb, on_read);
        if (i % 50 == 49) uv_run(loop, UV_RUN_NOWAIT); /* drain what the joined ones receive */
    }
    fprintf(stderr, "setup: %d matches, %d players in %.1f s\n", opt.matches, nplayers,
            (double)(now_ns() - setup0) / 1e9);
    uv_run(loop, UV_RUN_NOWAIT);
    running = true;
    start_ns = now_ns();
    uint64_t period = 1000 / (uint64_t)opt.rate;
    for (int i = 0; i < nplayers; i++)
        uv_timer_start(&players[i].timer, send_input, (uint64_t)(i % (int)period), period);
    uv_timer_t stop;
    uv_timer_init(loop, &stop);
    uv_timer_start(&stop, on_stop, (uint64_t)opt.duration * 1000, 0);
    uv_run(loop, UV_RUN_DEFAULT);

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
