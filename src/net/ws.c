/* WebSocket connections: see net/ws.h. wslay parses client frames and runs
 * the control protocol (ping/pong, close); data frames we send are built
 * once (kz_frame_new) and written straight from the shared buffers. */
#include "net/ws.h"

#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/sha1.h"
#include "net/internal.h"

#define KZ_WS_CLOSE_WAIT_MS 2000 /* how long a close handshake may take */
#define KZ_WS_MAX_IOV 256        /* frames per vectored write */
#define KZ_WS_BURST_FACTOR 64    /* hard cap on a queue: this many times outgoing_queue_size */

struct kz_ws {
    kz_conn_t *conn;
    wslay_event_context_ptr ctx; /* only while needed (see ctx_drop_if_idle); NULL when idle */
    const kz_ws_handler_t *h;
    void *user;
    const char *in;       /* bytes being fed to wslay (borrowed, during kz_ws_feed) */
    size_t in_len;
    kz_frame_t **q;       /* ring of queued frames; NULL while empty */
    int qcap, qhead, qlen;
    int writing;          /* frames of the ring in the write in flight */
    uv_buf_t *wbufs;      /* iovecs of the write in flight */
    bool in_flush;        /* on io->flush_head */
    struct kz_ws *flush_next;
    bool closing;         /* close frame queued or connection failing: no more data */
    bool closed;          /* on_close was called */
    int64_t last_recv_ms; /* last time anything arrived */
    /* Frame boundaries of the input, followed alongside wslay so its
     * context (9 KiB) can be dropped between messages. */
    uint64_t fr_left;     /* payload bytes of the current frame still to come */
    uint8_t hdr[14];      /* the current frame header, while incomplete */
    uint8_t hdr_len;      /* bytes of hdr collected (0 = at a frame start) */
    bool in_message;      /* a fragmented data message is in progress */
};

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */

kz_frame_t *kz_frame_new(bool binary, const void *payload, size_t len)
{
    unsigned char hdr[10];
    size_t hl;
    hdr[0] = 0x80 | (binary ? 0x2 : 0x1); /* FIN + opcode */
    if (len < 126) {
        hdr[1] = (unsigned char)len;
        hl = 2;
    } else if (len <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (unsigned char)(len >> 8);
        hdr[3] = (unsigned char)len;
        hl = 4;
    } else {
        hdr[1] = 127;
        for (int i = 0; i < 8; i++) hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    kz_frame_t *f = kz_malloc(sizeof *f + hl + len);
    atomic_init(&f->refs, 1);
    f->len = hl + len;
    memcpy(f->data, hdr, hl);
    if (len) memcpy(f->data + hl, payload, len);
    return f;
}

/* A frame of bytes already framed (wslay's control frames). */
static kz_frame_t *frame_raw(const void *data, size_t len)
{
    kz_frame_t *f = kz_malloc(sizeof *f + len);
    atomic_init(&f->refs, 1);
    f->len = len;
    memcpy(f->data, data, len);
    return f;
}

kz_frame_t *kz_frame_retain(kz_frame_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void kz_frame_release(kz_frame_t *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) kz_free(f);
}

/* ------------------------------------------------------------------------ */
/* Outbound queue                                                           */

static void schedule_flush(kz_ws_t *ws)
{
    if (ws->in_flush || ws->conn->state == CONN_CLOSING) return;
    kz_io_t *io = ws->conn->io;
    ws->in_flush = true;
    ws->flush_next = io->flush_head;
    io->flush_head = ws;
}

/* Appends f (reference transferred) to the ring. */
static void enqueue(kz_ws_t *ws, kz_frame_t *f)
{
    if (ws->qlen == ws->qcap) {
        int cap = ws->qcap ? ws->qcap * 2 : 8;
        kz_frame_t **q = kz_malloc(sizeof *q * (size_t)cap);
        for (int i = 0; i < ws->qlen; i++) q[i] = ws->q[(ws->qhead + i) % ws->qcap];
        kz_free(ws->q);
        ws->q = q;
        ws->qcap = cap;
        ws->qhead = 0;
    }
    ws->q[(ws->qhead + ws->qlen) % ws->qcap] = f;
    ws->qlen++;
    schedule_flush(ws);
}

bool kz_ws_send(kz_ws_t *ws, kz_frame_t *f)
{
    if (ws->closing || ws->conn->state == CONN_CLOSING) return false;
    /* A slow consumer is one whose last write has not drained into the
     * kernel while socket.outgoing_queue_size more frames wait behind it.
     * Frames queued in the current loop turn go out at its end, so a burst
     * to a reader that keeps up is not cut off; a hard cap bounds even
     * that. */
    int bound = ws->conn->io->srv->cfg->socket.outgoing_queue_size;
    bool backlog = ws->writing && uv_stream_get_write_queue_size((uv_stream_t *)&ws->conn->tcp) > 0 &&
                   ws->qlen - ws->writing >= bound;
    if (backlog || ws->qlen >= bound * KZ_WS_BURST_FACTOR) {
        /* A slow consumer: cut it off rather than let its backlog grow. */
        kz_log_debug("websocket outgoing queue full (%d messages): disconnecting", ws->qlen);
        kz_ws_close(ws, 1008, "Slow consumer: outgoing queue full.");
        return false;
    }
    enqueue(ws, kz_frame_retain(f));
    return true;
}

bool kz_ws_send_msg(kz_ws_t *ws, bool binary, const void *payload, size_t len)
{
    kz_frame_t *f = kz_frame_new(binary, payload, len);
    bool ok = kz_ws_send(ws, f);
    kz_frame_release(f);
    return ok;
}

static void ws_write_done(uv_write_t *req, int status);

/* Starts one vectored write of everything queued (up to KZ_WS_MAX_IOV). */
static void ws_write(kz_ws_t *ws)
{
    kz_conn_t *c = ws->conn;
    if (ws->writing || ws->qlen == 0 || c->state == CONN_CLOSING) return;
    int n = ws->qlen < KZ_WS_MAX_IOV ? ws->qlen : KZ_WS_MAX_IOV;
    ws->wbufs = kz_malloc(sizeof *ws->wbufs * (size_t)n);
    for (int i = 0; i < n; i++) {
        kz_frame_t *f = ws->q[(ws->qhead + i) % ws->qcap];
        ws->wbufs[i] = uv_buf_init(f->data, (unsigned)f->len);
    }
    ws->writing = n;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, ws->wbufs, (unsigned)n, ws_write_done) != 0) {
        ws->writing = 0;
        kz_free(ws->wbufs);
        ws->wbufs = NULL;
        kz_conn_close(c);
    }
}

static void ws_write_done(uv_write_t *req, int status)
{
    kz_conn_t *c = req->data;
    kz_ws_t *ws = c->ws;
    for (int i = 0; i < ws->writing; i++) {
        kz_frame_release(ws->q[ws->qhead]);
        ws->qhead = (ws->qhead + 1) % ws->qcap;
        ws->qlen--;
    }
    ws->writing = 0;
    kz_free(ws->wbufs);
    ws->wbufs = NULL;
    if (ws->qlen == 0) { /* an idle socket keeps no queue */
        kz_free(ws->q);
        ws->q = NULL;
        ws->qcap = ws->qhead = 0;
    }
    if (status < 0) {
        if (c->state != CONN_CLOSING) kz_conn_close(c);
        return;
    }
    if (ws->qlen) {
        ws_write(ws);
    } else if (ws->closing && c->state != CONN_CLOSING && ws->ctx &&
               !wslay_event_want_write(ws->ctx)) {
        /* The close frame is out (or we failed the connection): done. */
        if (!wslay_event_want_read(ws->ctx) || wslay_event_get_close_sent(ws->ctx)) kz_conn_close(c);
    }
}

void kz_ws_flush_all(kz_io_t *io)
{
    kz_ws_t *ws = io->flush_head;
    io->flush_head = NULL;
    while (ws) {
        kz_ws_t *next = ws->flush_next;
        ws->in_flush = false;
        ws->flush_next = NULL;
        if (ws->conn->state != CONN_CLOSING) ws_write(ws);
        ws = next;
    }
}

/* ------------------------------------------------------------------------ */
/* wslay callbacks                                                          */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    kz_ws_t *ws = user;
    if (ws->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

/* wslay's own frames (pong, close, ping): copied into our queue so they keep
 * their place among the data frames. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    kz_ws_t *ws = user;
    if (ws->conn->state == CONN_CLOSING) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    enqueue(ws, frame_raw(data, len));
    return (ssize_t)len;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    kz_ws_t *ws = user;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        if (ws->closing) return;
        ws->h->on_message(ws, arg->opcode == WSLAY_BINARY_FRAME, (const char *)arg->msg, arg->msg_length);
    } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->closing = true; /* wslay answers with its close frame */
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = msg_cb,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static void ws_timer_cb(uv_timer_t *t);

/* Creates wslay's context when the socket needs one. Returns false when
 * it cannot (the connection is then closed). */
static bool ctx_ensure(kz_ws_t *ws)
{
    if (ws->ctx) return true;
    if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
        ws->ctx = NULL;
        kz_conn_close(ws->conn);
        return false;
    }
    wslay_event_config_set_max_recv_msg_length(
        ws->ctx, (uint64_t)ws->conn->io->srv->cfg->socket.max_message_size_bytes);
    return true;
}

/* Drops the context while the socket is idle: between whole messages, with
 * nothing of wslay's left to send and no close under way. An idle socket
 * then holds no more than its connection and session. */
static void ctx_drop_if_idle(kz_ws_t *ws)
{
    if (!ws->ctx || ws->closing || ws->hdr_len || ws->fr_left || ws->in_message) return;
    if (wslay_event_want_write(ws->ctx) || !wslay_event_want_read(ws->ctx)) return;
    wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
}

/* Follows frame boundaries through data (the same bytes wslay parses). */
static void track_frames(kz_ws_t *ws, const uint8_t *p, size_t len)
{
    while (len) {
        if (ws->fr_left) {
            uint64_t n = len < ws->fr_left ? len : ws->fr_left;
            ws->fr_left -= n;
            p += n;
            len -= (size_t)n;
            continue;
        }
        ws->hdr[ws->hdr_len++] = *p++;
        len--;
        if (ws->hdr_len < 2) continue;
        uint8_t len7 = ws->hdr[1] & 0x7f;
        size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        size_t need = 2 + ext + ((ws->hdr[1] & 0x80) ? 4 : 0);
        if (ws->hdr_len < need) continue;
        uint64_t plen = len7;
        if (ext) {
            plen = 0;
            for (size_t i = 0; i < ext; i++) plen = (plen << 8) | ws->hdr[2 + i];
        }
        uint8_t opcode = ws->hdr[0] & 0x0f;
        bool fin = (ws->hdr[0] & 0x80) != 0;
        if (opcode < 0x8) ws->in_message = !fin; /* data or continuation frames */
        ws->fr_left = plen;
        ws->hdr_len = 0;
    }
}

/* After wslay had a turn: pushes its frames into the queue and closes the
 * connection when the protocol is finished. */
static void ws_pump(kz_ws_t *ws)
{
    kz_conn_t *c = ws->conn;
    if (c->state == CONN_CLOSING || !ws->ctx) return;
    if (wslay_event_send(ws->ctx) != 0) {
        kz_conn_close(c);
        return;
    }
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx) && ws->qlen == 0)
        kz_conn_close(c);
    else if (ws->closing && !ws->writing && ws->qlen == 0 && !wslay_event_want_write(ws->ctx))
        kz_conn_close(c);
}

void kz_ws_feed(kz_conn_t *c, const char *data, size_t len)
{
    kz_ws_t *ws = c->ws;
    ws->last_recv_ms = kz_now_ms();
    if (!ctx_ensure(ws)) return;
    track_frames(ws, (const uint8_t *)data, len);
    ws->in = data;
    ws->in_len = len;
    int rc = wslay_event_recv(ws->ctx);
    ws->in = NULL;
    ws->in_len = 0;
    if (rc != 0) {
        kz_conn_close(c);
        return;
    }
    if (c->state == CONN_CLOSING) return;
    if (!wslay_event_want_read(ws->ctx)) ws->closing = true;
    ws_pump(ws);
    if (c->state != CONN_CLOSING) ctx_drop_if_idle(ws);
}

/* Keep-alive: a control ping every ping_period_ms; no traffic for
 * pong_wait_ms drops the connection. During a close handshake the timer is
 * the close deadline. */
static void ws_timer_cb(uv_timer_t *t)
{
    kz_conn_t *c = t->data;
    kz_ws_t *ws = c->ws;
    const kz_config_t *cfg = c->io->srv->cfg;
    if (ws->closing || kz_now_ms() - ws->last_recv_ms >= cfg->socket.pong_wait_ms) {
        kz_conn_close(c);
        return;
    }
    if (!ctx_ensure(ws)) return;
    struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
    wslay_event_queue_msg(ws->ctx, &ping);
    ws_pump(ws);
    if (c->state == CONN_CLOSING) return;
    ctx_drop_if_idle(ws);
    kz_conn_arm(c, cfg->socket.ping_period_ms, ws_timer_cb);
}

void kz_ws_close(kz_ws_t *ws, uint16_t code, const char *reason)
{
    kz_conn_t *c = ws->conn;
    if (ws->closing || c->state == CONN_CLOSING) return;
    if (!ctx_ensure(ws)) return;
    ws->closing = true;
    wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
    ws_pump(ws);
    if (c->state != CONN_CLOSING) kz_conn_arm(c, KZ_WS_CLOSE_WAIT_MS, ws_timer_cb);
}

int kz_ws_start(kz_conn_t *c, const kz_ws_handler_t *h, void *user, const char *extra, size_t extra_len)
{
    kz_ws_t *ws = kz_calloc(1, sizeof *ws);
    ws->conn = c;
    ws->h = h;
    ws->user = user;
    ws->last_recv_ms = kz_now_ms();
    c->ws = ws;
    c->state = CONN_WEBSOCKET;
    kz_conn_arm(c, c->io->srv->cfg->socket.ping_period_ms, ws_timer_cb);
    if (extra_len) kz_ws_feed(c, extra, extra_len);
    return 0;
}

/* Called when the connection starts closing: the handler hears of it once. */
void kz_ws_closing(kz_conn_t *c)
{
    kz_ws_t *ws = c->ws;
    if (!ws || ws->closed) return;
    ws->closed = true;
    ws->closing = true;
    if (ws->h->on_close) ws->h->on_close(ws);
}

void kz_ws_free(kz_conn_t *c)
{
    kz_ws_t *ws = c->ws;
    if (!ws) return;
    kz_ws_closing(c);
    if (ws->in_flush) { /* not reached in practice: flush runs before close callbacks */
        kz_ws_t **pp = &c->io->flush_head;
        while (*pp && *pp != ws) pp = &(*pp)->flush_next;
        if (*pp) *pp = ws->flush_next;
    }
    for (int i = 0; i < ws->qlen; i++) kz_frame_release(ws->q[(ws->qhead + i) % ws->qcap]);
    kz_free(ws->q);
    kz_free(ws->wbufs);
    if (ws->ctx) wslay_event_context_free(ws->ctx);
    kz_free(ws);
    c->ws = NULL;
}

bool kz_ws_is_closing(const kz_ws_t *ws) { return ws->closing || ws->conn->state == CONN_CLOSING; }

void *kz_ws_user(const kz_ws_t *ws)
{
    return ws->user;
}

int kz_ws_thread(const kz_ws_t *ws)
{
    return ws->conn->io->index;
}

/* ------------------------------------------------------------------------ */
/* Handshake                                                                */

/* True when the comma-separated header value contains token (any case). */
static bool header_has_token(kz_slice_t v, const char *token)
{
    size_t tl = strlen(token);
    const char *p = v.p, *end = v.p + v.n;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0) return true;
    }
    return false;
}

bool kz_exchange_wants_upgrade(const kz_exchange_t *ex)
{
    return header_has_token(ex->req.upgrade, "websocket");
}

int kz_exchange_upgrade(kz_exchange_t *ex, const kz_ws_handler_t *h, void *user)
{
    kz_conn_t *c = ex->_conn;
    kz_io_t *io = ex->_io;
    bool ok = c && c->state != CONN_CLOSING && ex->req.method == HTTP_GET &&
              kz_exchange_wants_upgrade(ex) && header_has_token(ex->req.connection, "upgrade") &&
              ex->req.ws_version.n == 2 && memcmp(ex->req.ws_version.p, "13", 2) == 0 &&
              ex->req.ws_key.n > 0 && ex->req.ws_key.n <= 64;
    if (!ok) {
        char *b = kz_strdup("{\"code\":3,\"message\":\"Bad WebSocket handshake.\"}");
        kz_exchange_set(ex, 400, b, strlen(b));
        ex->req.keep_alive = false;
        kz_exchange_finish(ex);
        return -1;
    }
    char accept[29];
    kz_ws_accept_key(ex->req.ws_key.p, ex->req.ws_key.n, accept);
    char *resp = kz_asprintf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                             accept);
    kz_metrics_http_observe(ex->route, 101, (double)(kz_mono_ns() - ex->start_ns) / 1e9);
    io->outstanding--;
    c->ex = NULL;
    kz_exchange_free(ex);
    /* The 101 goes first in the queue; frames follow it on the same stream. */
    char *extra = c->pending;
    size_t extra_len = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    uv_timer_stop(&c->timer);
    if (kz_ws_start(c, h, user, NULL, 0) != 0) {
        kz_free(resp);
        kz_free(extra);
        kz_conn_close(c);
        return -1;
    }
    enqueue(c->ws, frame_raw(resp, strlen(resp)));
    kz_free(resp);
    if (h->on_open) h->on_open(c->ws);
    if (extra_len) kz_ws_feed(c, extra, extra_len);
    kz_free(extra);
    return 0;
}
