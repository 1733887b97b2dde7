/* A tiny scripted TCP server for the kizuna-loadtest unit tests
 * (test_lt_client.c, test_lt_bot.c): it runs in the test's own libuv loop,
 * accepts connections and plays one program per connection (wait for an
 * HTTP request, send bytes whole or in pieces, answer a WebSocket upgrade,
 * read client frames, reply with a frame echoing the last cid, close),
 * recording the requests and frames it received. Everything is static:
 * include it once per test file. */
#ifndef KZ_TESTS_LT_SCRIPT_H
#define KZ_TESTS_LT_SCRIPT_H

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "client/client.h"
#include "core/sha1.h"

/* ------------------------------------------------------------------------ */
/* The scripted server                                                      */

enum {
    A_END,        /* stop acting (keep reading and discarding) */
    A_REQ,        /* wait for one whole HTTP request (head + Content-Length body) */
    A_SEND,       /* send data[0..len) in one write */
    A_SPLIT,      /* send data in pieces of `chunk` bytes, one per loop turn (1 ms apart) */
    A_ACCEPT,     /* send a 101 answering the last request's key */
    A_ACCEPT_BAD, /* send a 101 with a wrong Sec-WebSocket-Accept */
    A_FRAME,      /* wait for one client frame (must be masked); record it */
    A_CLOSE,      /* close the connection */
    A_DEAF,       /* stop reading (the client's writes then pile up) */
    A_REPLY,      /* send a text frame: data is a format with one %s, the last frame's cid */
};

typedef struct {
    int op;
    const char *data;
    size_t len;
    size_t chunk;
} act_t;

#define MAX_CONNS 8
#define MAX_REC 16

typedef struct srv srv_t;

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    srv_t *srv;
    const act_t *prog;
    int pc;
    char in[1 << 16];
    size_t inlen;
    size_t sent;    /* A_SPLIT progress */
    bool closing;
} sconn_t;

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    const act_t *progs[MAX_CONNS]; /* program of the n-th accepted connection */
    sconn_t *conns[MAX_CONNS];
    int nconns;
    char reqs[MAX_REC][4096]; /* requests received, in order (all connections) */
    int nreqs;
    struct {
        int opcode;
        bool fin;
        char payload[512];
        size_t len;
    } frames[MAX_REC];
    int nframes;
    bool unmasked_frame; /* a client frame without the mask bit */
};

static void sconn_run(sconn_t *sc);

/* A server frame (unmasked) appended to buf at *n. */
static void script_frame(char *buf, size_t *n, int opcode, bool fin, const char *payload, size_t len)
{
    uint8_t *p = (uint8_t *)buf + *n;
    size_t h = 0;
    p[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        p[h++] = (uint8_t)len;
    } else {
        p[h++] = 126;
        p[h++] = (uint8_t)(len >> 8);
        p[h++] = (uint8_t)len;
    }
    memcpy(p + h, payload, len);
    *n += h + len;
}


static void sc_closed(uv_handle_t *h)
{
    sconn_t *sc = h->data;
    if (!uv_is_closing((uv_handle_t *)&sc->timer)) uv_close((uv_handle_t *)&sc->timer, NULL);
}

static void sc_close(sconn_t *sc)
{
    if (sc->closing) return;
    sc->closing = true;
    uv_timer_stop(&sc->timer);
    uv_close((uv_handle_t *)&sc->tcp, sc_closed);
}

static void on_sc_written(uv_write_t *w, int status)
{
    free(w);
}

static void sc_write(sconn_t *sc, const void *data, size_t len)
{
    if (sc->closing) return;
    uv_write_t *w = malloc(sizeof *w + len);
    memcpy(w + 1, data, len);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&sc->tcp, &b, 1, on_sc_written) != 0) free(w);
}

static void sc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    sconn_t *sc = h->data;
    b->base = sc->in + sc->inlen;
    b->len = sizeof sc->in - sc->inlen;
}

static void sc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    sconn_t *sc = s->data;
    if (n < 0) {
        sc_close(sc);
        return;
    }
    sc->inlen += (size_t)n;
    sconn_run(sc);
    if (sc->inlen == sizeof sc->in) sc->inlen = 0; /* discard what no step wanted */
}

static void consume(sconn_t *sc, size_t n)
{
    memmove(sc->in, sc->in + n, sc->inlen - n);
    sc->inlen -= n;
}

/* A whole request at the front of sc->in: its length, or 0. */
static size_t request_len(sconn_t *sc)
{
    char *end = memmem(sc->in, sc->inlen, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - sc->in) + 4, body = 0;
    for (char *p = sc->in; p < end; p++) {
        if (strncasecmp(p, "\r\nContent-Length:", 17) == 0) body = (size_t)atol(p + 17);
    }
    return sc->inlen >= head + body ? head + body : 0;
}

/* A whole client frame at the front of sc->in: recorded and consumed.
 * Returns false when incomplete. */
static bool take_frame(sconn_t *sc)
{
    const uint8_t *p = (const uint8_t *)sc->in;
    if (sc->inlen < 2) return false;
    size_t len = p[1] & 0x7f, h = 2;
    if (len == 126) {
        if (sc->inlen < 4) return false;
        len = (size_t)p[2] << 8 | p[3];
        h = 4;
    } else if (len == 127) {
        if (sc->inlen < 10) return false;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        h = 10;
    }
    bool masked = p[1] & 0x80;
    size_t mh = masked ? 4 : 0;
    if (sc->inlen < h + mh + len) return false;
    srv_t *srv = sc->srv;
    if (!masked) srv->unmasked_frame = true;
    if (srv->nframes < MAX_REC) {
        __typeof__(srv->frames[0]) *f = &srv->frames[srv->nframes++];
        f->opcode = p[0] & 0x0f;
        f->fin = p[0] & 0x80;
        f->len = len < sizeof f->payload ? len : sizeof f->payload - 1;
        for (size_t i = 0; i < f->len; i++) f->payload[i] = (char)(p[h + mh + i] ^ (masked ? p[h + (i & 3)] : 0));
        f->payload[f->len] = '\0';
    }
    consume(sc, h + mh + len);
    return true;
}

static void send_101(sconn_t *sc, bool good)
{
    srv_t *srv = sc->srv;
    const char *req = srv->nreqs ? srv->reqs[srv->nreqs - 1] : "";
    const char *k = strcasestr(req, "Sec-WebSocket-Key: ");
    char key[64] = "", accept[KZ_WS_ACCEPT_LEN + 1];
    if (k) sscanf(k + 19, "%63[^\r]", key);
    kz_ws_accept_key(key, strlen(key), accept);
    if (!good) accept[3] = accept[3] == 'A' ? 'B' : 'A';
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    sc_write(sc, resp, (size_t)n);
}

static void split_next(uv_timer_t *t)
{
    sconn_run(t->data);
}

static void sconn_run(sconn_t *sc)
{
    srv_t *srv = sc->srv;
    while (!sc->closing && sc->prog) {
        const act_t *a = &sc->prog[sc->pc];
        switch (a->op) {
        case A_END: return;
        case A_REQ: {
            size_t n = request_len(sc);
            if (!n) return;
            if (srv->nreqs < MAX_REC) {
                size_t m = n < sizeof srv->reqs[0] - 1 ? n : sizeof srv->reqs[0] - 1;
                memcpy(srv->reqs[srv->nreqs], sc->in, m);
                srv->reqs[srv->nreqs++][m] = '\0';
            }
            consume(sc, n);
            break;
        }
        case A_SEND: sc_write(sc, a->data, a->len); break;
        case A_SPLIT:
            if (sc->sent < a->len) {
                size_t n = a->len - sc->sent < a->chunk ? a->len - sc->sent : a->chunk;
                sc_write(sc, a->data + sc->sent, n);
                sc->sent += n;
                if (sc->sent < a->len) {
                    uv_timer_start(&sc->timer, split_next, 1, 0);
                    return;
                }
            }
            sc->sent = 0;
            break;
        case A_ACCEPT: send_101(sc, true); break;
        case A_ACCEPT_BAD: send_101(sc, false); break;
        case A_FRAME:
            if (!take_frame(sc)) return;
            break;
        case A_CLOSE: sc_close(sc); return;
        case A_DEAF:
            uv_read_stop((uv_stream_t *)&sc->tcp);
            sc->pc++;
            return;
        case A_REPLY: {
            char cid[16] = "", text[1024], fr[1100];
            const char *last = srv->nframes ? srv->frames[srv->nframes - 1].payload : "";
            const char *c = strstr(last, "\"cid\":\"");
            if (c) sscanf(c + 7, "%15[0-9]", cid);
            int tl = snprintf(text, sizeof text, a->data, cid);
            size_t n = 0;
            script_frame(fr, &n, 0x1, true, text, (size_t)tl);
            sc_write(sc, fr, n);
            break;
        }
        }
        sc->pc++;
    }
}

static void on_conn(uv_stream_t *l, int status)
{
    srv_t *srv = l->data;
    cr_assert_eq(status, 0);
    cr_assert_lt(srv->nconns, MAX_CONNS, "more connections than scripted");
    sconn_t *sc = calloc(1, sizeof *sc);
    sc->srv = srv;
    sc->prog = srv->progs[srv->nconns];
    srv->conns[srv->nconns++] = sc;
    uv_tcp_init(srv->loop, &sc->tcp);
    uv_timer_init(srv->loop, &sc->timer);
    sc->tcp.data = sc->timer.data = sc;
    cr_assert_eq(uv_accept(l, (uv_stream_t *)&sc->tcp), 0);
    uv_read_start((uv_stream_t *)&sc->tcp, sc_alloc, sc_read);
    sconn_run(sc);
}

static uv_loop_t loop;
static srv_t srv;

static void srv_start(void)
{
    memset(&srv, 0, sizeof srv);
    srv.loop = &loop;
    uv_tcp_init(&loop, &srv.listener);
    srv.listener.data = &srv;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    cr_assert_eq(uv_tcp_bind(&srv.listener, (struct sockaddr *)&a, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&srv.listener, 16, on_conn), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&got, &len);
    srv.port = ntohs(got.sin_port);
}

/* ------------------------------------------------------------------------ */
/* Test plumbing                                                            */

static bool done;
static void on_guard(uv_timer_t *t)
{
    cr_assert_fail("test did not finish within 10 s (the scripted exchange stalled)");
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    uv_loop_init(&loop);
    srv_start();
    done = false;
}

/* Runs the loop while cond holds; a guard timer fails a stalled test. */
#define RUN_WHILE(cond)                                                                                    \
    do {                                                                                                   \
        static uv_timer_t guard_; /* outlives the block: a closed handle stays queued */                   \
        uv_timer_init(&loop, &guard_);                                                                     \
        uv_timer_start(&guard_, on_guard, 10000, 0);                                                       \
        while (cond) uv_run(&loop, UV_RUN_ONCE);                                                           \
        uv_close((uv_handle_t *)&guard_, NULL);                                                            \
        uv_run(&loop, UV_RUN_NOWAIT);                                                                      \
    } while (0)

static inline void run_until_done(void)
{
    RUN_WHILE(!done);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Closes the server and checks that the client released everything. */
static void teardown(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_walk(&loop, walk_close, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    kzc_global_stats_t g = kzc_global_stats();
    cr_assert_eq(g.allocated, 0, "client connections left: %llu", (unsigned long long)g.allocated);
    cr_assert_eq(g.tcp_open, 0, "client sockets left: %llu", (unsigned long long)g.tcp_open);
    for (int i = 0; i < srv.nconns; i++) free(srv.conns[i]);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

#define S(lit) lit, sizeof lit - 1 /* a literal and its length */
#define DO(o) {.op = (o)}
#define SEND(d, n) {.op = A_SEND, .data = (d), .len = (n)}
#define SPLIT(d, n, c) {.op = A_SPLIT, .data = (d), .len = (n), .chunk = (c)}


#endif
