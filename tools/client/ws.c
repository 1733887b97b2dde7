/* libkzclient: WebSocket client (RFC 6455).
 *
 * The upgrade request carries a random Sec-WebSocket-Key and the reply's
 * Sec-WebSocket-Accept is checked. Afterwards wslay (client context) parses
 * the server's frames, answers pings and runs the close handshake; its
 * control frames are masked with its genmask callback. The one exception
 * is the hot path: a whole unfragmented data frame that begins at a frame
 * boundary is handed to on_message straight from the read buffer (text is
 * then not checked for valid UTF-8). Data frames we send
 * are framed and masked here and written straight out. wslay's context
 * (about 9 KiB) exists only while the socket is busy: we follow frame
 * boundaries alongside it and drop it once the socket has been quiet
 * between messages for a second, so an idle socket costs little more than
 * its uv handles. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client/internal.h"
#include "core/sha1.h"

#define KZC_WS_CTX_IDLE_MS 1000 /* an open socket quiet this long gives back wslay's context */
#define KZC_WS_LINGER_MS 1000   /* a close frame still queued at the end gets this long to go out */

/* ------------------------------------------------------------------------ */
/* Masks                                                                    */

/* Mask keys only defeat proxy cache poisoning; a fast generator seeded from
 * libsodium is enough. */
static _Thread_local uint64_t mask_state;

static uint32_t next_mask(void)
{
    if (!mask_state) {
        randombytes_buf(&mask_state, sizeof mask_state);
        mask_state |= 1;
    }
    mask_state ^= mask_state << 13;
    mask_state ^= mask_state >> 7;
    mask_state ^= mask_state << 17;
    return (uint32_t)(mask_state >> 16);
}

/* ------------------------------------------------------------------------ */
/* Ending                                                                   */

/* The connection is over: drops the socket and tells the user once. */
static void finish(kzc_conn_t *c, int code, const char *reason)
{
    if (c->state == KZC_DONE || c->freed) return;
    c->state = KZC_DONE;
    /* The close frame wslay just echoed may still be queued: let it go out. */
    kzc__drop_sock_after_write(c, KZC_WS_LINGER_MS);
    uv_timer_stop(&c->timer);
    if (c->cbs->on_close) c->cbs->on_close(c, code, reason, c->arg);
}

/* Fails the connection from the loop (not inside the caller's call). */
static void fail_later(kzc_conn_t *c, const char *reason)
{
    if (c->state == KZC_DONE) return;
    char copy[sizeof c->err];
    snprintf(copy, sizeof copy, "%s", reason); /* reason may be c->err */
    kzc__drop_sock(c);
    c->state = KZC_CLOSING;
    kzc__defer_error(c, copy);
}

/* ------------------------------------------------------------------------ */
/* wslay                                                                    */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    kzc_conn_t *c = user;
    if (c->in_len == 0 || c->freed || c->state == KZC_DONE) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->in_len ? len : c->in_len;
    memcpy(buf, c->in, n);
    c->in += n;
    c->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    kzc_conn_t *c = user;
    if (!c->sock || c->freed || kzc__write(c, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    for (size_t i = 0; i < len; i += 4) {
        uint32_t m = next_mask();
        memcpy(buf + i, &m, len - i < 4 ? len - i : 4);
    }
    return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    kzc_conn_t *c = user;
    if (c->freed || (c->state != KZC_OPEN && c->state != KZC_CLOSING)) return;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        if (c->state == KZC_OPEN && c->cbs->on_message) /* wslay may give NULL for an empty message */
            c->cbs->on_message(c, arg->opcode == WSLAY_BINARY_FRAME,
                               arg->msg_length ? (const char *)arg->msg : "", arg->msg_length, c->arg);
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = msg_cb,
};

static bool ctx_ensure(kzc_conn_t *c)
{
    if (c->ctx) return true;
    if (wslay_event_context_client_init(&c->ctx, &callbacks, c) != 0) {
        c->ctx = NULL;
        return false;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, c->max_body);
    return true;
}

static void ctx_drop_if_idle(kzc_conn_t *c)
{
    if (!c->ctx || c->state != KZC_OPEN || c->fhdr_len || c->fr_left || c->in_message) return;
    if (wslay_event_want_write(c->ctx) || !wslay_event_want_read(c->ctx)) return;
    wslay_event_context_free(c->ctx);
    c->ctx = NULL;
}

void kzc__ws_release(kzc_conn_t *c)
{
    if (c->ctx) wslay_event_context_free(c->ctx);
    c->ctx = NULL;
}

/* Follows frame boundaries through the bytes wslay is about to parse. */
static void track_frames(kzc_conn_t *c, const uint8_t *p, size_t len)
{
    while (len) {
        if (c->fr_left) {
            uint64_t n = len < c->fr_left ? len : c->fr_left;
            c->fr_left -= n;
            p += n;
            len -= (size_t)n;
            continue;
        }
        c->fhdr[c->fhdr_len++] = *p++;
        len--;
        if (c->fhdr_len < 2) continue;
        uint8_t len7 = c->fhdr[1] & 0x7f;
        size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        size_t need = 2 + ext + ((c->fhdr[1] & 0x80) ? 4 : 0);
        if (c->fhdr_len < need) continue;
        uint64_t plen = len7;
        if (ext) {
            plen = 0;
            for (size_t i = 0; i < ext; i++) plen = (plen << 8) | c->fhdr[2 + i];
        }
        uint8_t opcode = c->fhdr[0] & 0x0f;
        if (opcode < 0x8) c->in_message = (c->fhdr[0] & 0x80) == 0;
        c->fr_left = plen;
        c->fhdr_len = 0;
    }
}

/* After wslay had a turn: sends what it queued and ends the connection
 * when the protocol is finished. */
static void after_wslay(kzc_conn_t *c)
{
    if (c->freed || c->state == KZC_DONE || !c->ctx) return;
    if (wslay_event_send(c->ctx) != 0) {
        finish(c, 1006, c->err[0] ? c->err : "closed 1006");
        return;
    }
    if (wslay_event_want_read(c->ctx)) {
        /* Keep the context while messages keep coming; drop it once the
         * socket has been quiet for a while (the timer is free while open). */
        if (c->state == KZC_OPEN) kzc__arm(c, KZC_WS_CTX_IDLE_MS);
        return;
    }
    char reason[48];
    if (wslay_event_get_close_received(c->ctx)) {
        int code = wslay_event_get_status_code_received(c->ctx);
        snprintf(reason, sizeof reason, "closed %d", code);
        finish(c, code, reason);
        return;
    }
    /* wslay refused the input and queued its own close. */
    int sent = wslay_event_get_status_code_sent(c->ctx);
    finish(c, sent, sent == WSLAY_CODE_MESSAGE_TOO_BIG ? "message too large" : "protocol error");
}

/* The length of a whole, simple data frame at the start of p[0..len): FIN
 * set, no RSV bits, not masked, text or binary, within max_body. 0 when the
 * frame is anything else or incomplete (wslay takes it then). *hl gets the
 * header length. */
static size_t simple_frame(const kzc_conn_t *c, const uint8_t *p, size_t len, size_t *hl)
{
    if (len < 2 || (p[0] & 0xf0) != 0x80 || (p[1] & 0x80)) return 0;
    uint8_t op = p[0] & 0x0f;
    if (op != 0x1 && op != 0x2) return 0;
    uint64_t plen = p[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
        if (len < 4) return 0;
        plen = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (plen == 127) {
        if (len < 10) return 0;
        plen = 0;
        for (int i = 0; i < 8; i++) plen = plen << 8 | p[2 + i];
        h = 10;
    }
    if (plen > c->max_body || plen > len - h) return 0;
    *hl = h;
    return h + (size_t)plen;
}

/* Feeds received bytes. Whole unfragmented data frames that start at a
 * frame boundary go straight to on_message from the read buffer (the bulk
 * of the traffic, without a copy); anything else - control frames,
 * fragments, partial frames, protocol errors - goes through wslay. */
static void feed(kzc_conn_t *c, const uint8_t *data, size_t len)
{
    size_t fl, hl;
    while (len && c->state == KZC_OPEN && !c->fhdr_len && !c->fr_left && !c->in_message &&
           (fl = simple_frame(c, data, len, &hl)) > 0) {
        if (c->cbs->on_message)
            c->cbs->on_message(c, (data[0] & 0x0f) == 0x2, (const char *)data + hl, fl - hl, c->arg);
        if (c->freed || c->state == KZC_DONE) return;
        data += fl;
        len -= fl;
    }
    if (!len) return;
    if (!ctx_ensure(c)) {
        finish(c, 1006, "out of memory");
        return;
    }
    track_frames(c, data, len);
    c->in = data;
    c->in_len = len;
    c->feeding = true;
    int rc = wslay_event_recv(c->ctx);
    c->feeding = false;
    c->in = NULL;
    c->in_len = 0;
    if (c->freed || c->state == KZC_DONE) return;
    if (rc != 0) {
        finish(c, 1006, "protocol error");
        return;
    }
    after_wslay(c);
}

/* ------------------------------------------------------------------------ */
/* Handshake                                                                */

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    kzc_conn_t *c = p->data;
    if (c->hname_done) { /* a new header starts */
        c->hname_len = 0;
        c->hname_done = false;
    }
    size_t room = sizeof c->hname - 1 - c->hname_len;
    size_t n = len < room ? len : room;
    memcpy(c->hname + c->hname_len, at, n);
    c->hname_len += n;
    c->hname[c->hname_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    kzc_conn_t *c = p->data;
    if (!c->hname_done) {
        c->hname_done = true;
        c->skip_accept = strcasecmp(c->hname, "Sec-WebSocket-Accept") == 0;
        if (c->skip_accept) {
            if (c->accept_seen) c->accept_len = sizeof c->accept; /* twice: invalid */
            c->accept_seen = true;
        }
    }
    if (c->skip_accept) {
        for (size_t i = 0; i < len; i++) {
            if (at[i] == ' ' || at[i] == '\t') continue;
            if (c->accept_len >= sizeof c->accept - 1) {
                c->accept_len = sizeof c->accept; /* too long: cannot match */
                return 0;
            }
            c->accept[c->accept_len++] = at[i];
        }
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    kzc_conn_t *c = p->data;
    c->message_done = true;
    return 0;
}

static const http_parser_settings hs_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
};

kzc_conn_t *kzc_ws_open(uv_loop_t *loop, const kzc_target_t *t, const char *path_and_query, const kzc_ws_cbs_t *cbs,
                        void *arg)
{
    if (sodium_init() < 0) abort();
    kzc_conn_t *c = kzc__conn_new(loop, t, KZC_WS);
    c->cbs = cbs;
    c->arg = arg;
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(c->key, sizeof c->key, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    size_t cap = strlen(path_and_query) + strlen(c->host) + 256;
    c->req = kz_malloc(cap);
    int n = snprintf(c->req, cap,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path_and_query, kzc__host_open(c), c->host, kzc__host_close(c), c->port, c->key);
    c->req_len = (size_t)n;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    kzc__arm(c, c->timeout_ms);
    kzc__connect(c);
    return c;
}

void kzc__ws_on_connect(kzc_conn_t *c)
{
    if (kzc__write(c, c->req, c->req_len) != 0) fail_later(c, c->err);
}

/* The upgrade reply's head is complete. Returns true when the socket is
 * open. */
static bool handshake_done(kzc_conn_t *c)
{
    char reason[48];
    if (c->parser.status_code != 101) {
        snprintf(reason, sizeof reason, "http %u", c->parser.status_code);
        finish(c, 0, reason);
        return false;
    }
    if (!c->parser.upgrade) { /* a 101 without Upgrade: websocket and Connection: upgrade */
        finish(c, 0, "bad response");
        return false;
    }
    char want[KZ_WS_ACCEPT_LEN + 1];
    kz_ws_accept_key(c->key, strlen(c->key), want);
    if (c->accept_len != KZ_WS_ACCEPT_LEN || memcmp(c->accept, want, KZ_WS_ACCEPT_LEN) != 0) {
        finish(c, 0, "bad accept");
        return false;
    }
    kz_free(c->req);
    c->req = NULL;
    c->state = KZC_OPEN;
    uv_timer_stop(&c->timer);
    if (c->cbs->on_open) c->cbs->on_open(c, c->arg);
    return !c->freed && c->state == KZC_OPEN;
}

void kzc__ws_on_read(kzc_conn_t *c, const char *data, size_t len)
{
    if (c->state == KZC_READY) {
        size_t n = http_parser_execute(&c->parser, &hs_settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (!c->message_done) {
            if (e != HPE_OK) finish(c, 0, "bad response");
            return;
        }
        /* With an upgrade, http_parser stops right after the head: the
         * rest are frames. */
        if (!handshake_done(c)) return;
        data += n;
        len -= n;
        if (!len) return;
    }
    if (c->state == KZC_OPEN || c->state == KZC_CLOSING) feed(c, (const uint8_t *)data, len);
}

void kzc__ws_on_eof(kzc_conn_t *c, const char *err)
{
    if (c->state == KZC_OPEN || c->state == KZC_CLOSING)
        finish(c, 1006, strcmp(err, "closed") == 0 ? "closed 1006" : err);
    else
        finish(c, 0, err);
}

void kzc__ws_on_timer(kzc_conn_t *c)
{
    if (!c->err[0] && c->state == KZC_OPEN) { /* quiet for a while: drop wslay's context */
        ctx_drop_if_idle(c);
        return;
    }
    if (c->err[0]) {
        char err[64];
        snprintf(err, sizeof err, "%s", c->err);
        c->err[0] = '\0';
        finish(c, c->state == KZC_CLOSING ? 1006 : 0, err);
        return;
    }
    finish(c, c->state == KZC_CLOSING ? 1006 : 0, "timeout");
}

/* ------------------------------------------------------------------------ */
/* Sending and closing                                                      */

int kzc_ws_send(kzc_conn_t *c, bool binary, const void *data, size_t len)
{
    if (c->freed || c->state != KZC_OPEN) return -1;
    uint8_t small[2048];
    size_t need = len + 14;
    uint8_t *f = need <= sizeof small ? small : kz_malloc(need);
    size_t h = 0;
    f[h++] = (uint8_t)(0x80 | (binary ? 0x2 : 0x1));
    if (len < 126) {
        f[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(len >> 8);
        f[h++] = (uint8_t)len;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 0; i < 8; i++) f[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    uint32_t m32 = next_mask();
    uint8_t mask[4];
    memcpy(mask, &m32, 4);
    memcpy(f + h, mask, 4);
    h += 4;
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) f[h + i] = p[i] ^ mask[i & 3];
    int rc = kzc__write(c, f, h + len);
    if (f != small) kz_free(f);
    if (rc != 0) {
        fail_later(c, c->err);
        return -1;
    }
    return 0;
}

void kzc_ws_close(kzc_conn_t *c, int code)
{
    if (c->freed || c->state == KZC_DONE || c->state == KZC_CLOSING) return;
    if (c->state != KZC_OPEN) { /* not open yet: just stop */
        fail_later(c, "closed by client");
        return;
    }
    if (!ctx_ensure(c)) {
        fail_later(c, "out of memory");
        return;
    }
    c->state = KZC_CLOSING;
    c->close_code = code;
    wslay_event_queue_close(c->ctx, (uint16_t)code, NULL, 0);
    kzc__arm(c, c->timeout_ms);
    if (c->feeding) return; /* called from on_message: after_wslay sends it */
    if (wslay_event_send(c->ctx) != 0) fail_later(c, c->err[0] ? c->err : "closed 1006");
}

bool kzc_ws_is_open(const kzc_conn_t *c)
{
    return !c->freed && c->state == KZC_OPEN;
}
