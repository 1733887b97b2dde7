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
 * One thread, one libuv loop; setup uses plain blocking sockets. It speaks
 * the wire protocol directly (HTTP/1.1, RFC 6455 client frames, JSON
 * envelopes or protobuf Envelopes written and read by hand) so it measures
 * the server, not a client library. */
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
    int match;            /* index of its match */
    char match_id[128];
    char *rbuf;           /* incoming bytes not yet parsed */
    size_t rlen, rcap;
    uv_timer_t timer;     /* send pacing */
    uint64_t sent;
} player_t;

static struct {
    const char *host;
    int port, matches, players, rate, duration, size;
    bool protobuf;
} opt = {"127.0.0.1", 7350, 10, 4, 20, 10, 32, false};

static player_t *players;
static int nplayers;
static uint64_t delivered, errors;
static uint64_t *lat;       /* latencies in ns, sampled */
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
    fprintf(stderr, "kizuna-relay-bench: %s\n", what);
    exit(1);
}

/* ---- blocking setup helpers ---------------------------------------------- */

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

/* Reads an HTTP response head (and a small body) into buf. */
static size_t read_response(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            char *cl = strstr(buf, "Content-Length: ");
            size_t body = cl ? (size_t)atol(cl + 16) : 0;
            if ((size_t)(end + 4 - buf) + body <= n) break;
        }
    }
    buf[n] = '\0';
    return n;
}

/* Signs in device i and copies its session token into token. */
static void sign_in(int i, char *token, size_t cap)
{
    char body[96], req[512], resp[4096];
    snprintf(body, sizeof body, "{\"id\":\"relay-bench-device-%08d\"}", i);
    snprintf(req, sizeof req,
             "POST /v2/account/authenticate/device HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Basic ZGVmYXVsdGtleTo=\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             strlen(body), body);
    int fd = dial();
    if (write(fd, req, strlen(req)) < 0) die("write failed");
    read_response(fd, resp, sizeof resp);
    close(fd);
    char *t = strstr(resp, "\"token\":\"");
    if (!t) die("sign-in failed (is the server up, with the default server key?)");
    t += 9;
    char *e = strchr(t, '"');
    if (!e || (size_t)(e - t) >= cap) die("bad token");
    memcpy(token, t, (size_t)(e - t));
    token[e - t] = '\0';
}

/* Opens the socket of player p: TCP, upgrade handshake, blocking. */
static int ws_open(const char *token)
{
    int fd = dial();
    char req[2560], resp[1024];
    snprintf(req, sizeof req,
             "GET /ws?status=false&format=%s&token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             opt.protobuf ? "protobuf" : "json", token);
    if (write(fd, req, strlen(req)) < 0) die("write failed");
    size_t n = 0;
    while (n + 1 < sizeof resp) { /* read exactly the head: frames may follow */
        if (read(fd, resp + n, 1) != 1) die("handshake failed");
        n++;
        if (n >= 4 && memcmp(resp + n - 4, "\r\n\r\n", 4) == 0) break;
    }
    resp[n] = '\0';
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0) die("upgrade refused");
    return fd;
}

/* Frames payload as a masked client frame (text for JSON, binary for
 * protobuf) into out; returns its size. */
static size_t frame(char *out, const char *payload, size_t len)
{
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t h = 0;
    out[h++] = (char)(opt.protobuf ? 0x82 : 0x81);
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

/* Blocking: sends one envelope and reads the first reply's payload (its
 * length in *rlen). */
static void request_reply(int fd, const char *env, size_t elen, char *reply, size_t cap, size_t *rlen)
{
    char buf[1024];
    size_t n = frame(buf, env, elen);
    if (write(fd, buf, n) < 0) die("write failed");
    uint8_t h[4];
    if (read(fd, h, 2) != 2) die("no reply");
    size_t len = h[1] & 0x7f;
    if (len == 126) {
        if (read(fd, h + 2, 2) != 2) die("no reply");
        len = ((size_t)h[2] << 8) | h[3];
    }
    if (len >= cap) die("reply too large");
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, reply + got, len - got);
        if (r <= 0) die("no reply");
        got += (size_t)r;
    }
    reply[len] = '\0';
    *rlen = len;
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
        if ((h[0] & 0x0f) == 0x1) on_text(pl->rbuf + off + hl, len);
        if ((h[0] & 0x0f) == 0x2) on_binary((const uint8_t *)pl->rbuf + off + hl, len);
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

static void send_tick(uv_timer_t *t)
{
    player_t *pl = t->data;
    if (!running) return;
    /* Payload: 8-byte send time, padded to opt.size, base64. */
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
        goto send;
    }
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
    el = snprintf(env, sizeof env, "{\"match_data_send\":{\"match_id\":\"%s\",\"op_code\":\"1\",\"data\":\"%s\"}}",
                  pl->match_id, data);
send:;
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
        else if (!strcmp(k, "--size")) opt.size = atoi(v);
        else if (!strcmp(k, "--format") && (!strcmp(v, "json") || !strcmp(v, "protobuf")))
            opt.protobuf = !strcmp(v, "protobuf");
        else die("unknown flag (see the comment at the top of tools/relay_bench.c)");
    }
    if (opt.matches < 1 || opt.players < 2 || opt.rate < 1 || opt.duration < 1 || opt.size < 8 || opt.size > 1000)
        die("bad values: matches >= 1, players >= 2, rate >= 1, duration >= 1, size 8..1000");
    nplayers = opt.matches * opt.players;
    players = calloc((size_t)nplayers, sizeof *players);
    uv_loop_t *loop = uv_default_loop();
    char token[2048], reply[4096];
    for (int i = 0; i < nplayers; i++) {
        player_t *pl = &players[i];
        pl->match = i / opt.players;
        sign_in(i, token, sizeof token);
        int fd = ws_open(token);
        size_t rlen;
        if (opt.protobuf) {
            /* Envelope{cid(1) "1", match_create(13) {}} or
             * Envelope{cid "1", match_join(16) {match_id(1)}}; the reply's
             * match (12) carries match_id (1). */
            char env[256];
            size_t el = put_bytes(env, 1, "1", 1);
            if (i % opt.players == 0) {
                el += put_bytes(env + el, 13, "", 0);
            } else {
                char inner[160];
                const char *id = players[i - i % opt.players].match_id;
                size_t il = put_bytes(inner, 1, id, strlen(id));
                el += put_bytes(env + el, 16, inner, il);
            }
            request_reply(fd, env, el, reply, sizeof reply, &rlen);
            const uint8_t *m, *id;
            size_t ml, idl;
            if (!pb_find((const uint8_t *)reply, rlen, 12, &m, &ml) || !pb_find(m, ml, 1, &id, &idl) ||
                idl >= sizeof pl->match_id)
                die("match_create/match_join failed");
            memcpy(pl->match_id, id, idl);
        } else {
            if (i % opt.players == 0) {
                const char *env = "{\"cid\":\"1\",\"match_create\":{}}";
                request_reply(fd, env, strlen(env), reply, sizeof reply, &rlen);
            } else {
                char env[256];
                snprintf(env, sizeof env, "{\"cid\":\"1\",\"match_join\":{\"match_id\":\"%s\"}}",
                         players[i - i % opt.players].match_id);
                request_reply(fd, env, strlen(env), reply, sizeof reply, &rlen);
            }
            char *m = strstr(reply, "\"match_id\":\"");
            if (!m) {
                fprintf(stderr, "reply: %s\n", reply);
                die("match_create/match_join failed");
            }
            m += 12;
            size_t ml = (size_t)(strchr(m, '"') - m);
            memcpy(pl->match_id, m, ml);
        }
        uv_tcp_init(loop, &pl->tcp);
        uv_tcp_open(&pl->tcp, fd);
        uv_timer_init(loop, &pl->timer);
        pl->timer.data = pl;
    }
    /* Presence events of the joins may still be arriving: let them. */
    running = false;
    for (int i = 0; i < nplayers; i++) uv_read_start((uv_stream_t *)&players[i].tcp, alloc_cb, on_read);
    uv_run(loop, UV_RUN_NOWAIT);
    running = true;
    start_ns = now_ns();
    uint64_t period = 1000 / (uint64_t)opt.rate;
    if (!period) period = 1;
    for (int i = 0; i < nplayers; i++)
        uv_timer_start(&players[i].timer, send_tick, (uint64_t)(i % 50), period);
    uv_timer_t stop;
    uv_timer_init(loop, &stop);
    uv_timer_start(&stop, on_stop, (uint64_t)opt.duration * 1000, 0);
    uv_run(loop, UV_RUN_DEFAULT);

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
