/* libkzclient: HTTP/1.1 requests over a keep-alive connection.
 *
 * One request at a time. The first request connects; a response the
 * server marks keep-alive leaves the socket open for the next one, which
 * is sent at once. When the server closed a kept-alive socket before any
 * byte of the reply arrived (it may close an idle connection just as we
 * send), the request is sent once more on a fresh socket. The response is
 * parsed by http_parser as it arrives: Content-Length, chunked, or
 * read-until-close bodies, kept up to max_body. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client/internal.h"

static int on_body(http_parser *p, const char *at, size_t len)
{
    kzc_conn_t *c = p->data;
    if (c->body_too_large) return 0;
    if (c->blen + len > c->max_body) {
        c->body_too_large = true;
        return 0;
    }
    if (c->blen + len + 1 > c->bcap) {
        size_t cap = c->bcap ? c->bcap : 512;
        while (cap < c->blen + len + 1) cap *= 2;
        c->body = kz_realloc(c->body, cap);
        c->bcap = cap;
    }
    memcpy(c->body + c->blen, at, len);
    c->blen += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    kzc_conn_t *c = p->data;
    c->message_done = true;
    http_parser_pause(p, 1); /* anything after the response is not ours */
    return 0;
}

static const http_parser_settings settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Ends the request in flight with an error. */
static void fail(kzc_conn_t *c, const char *err)
{
    kzc_http_cb cb = c->cb;
    void *arg = c->arg;
    c->cb = NULL;
    kz_free(c->req);
    c->req = NULL;
    uv_timer_stop(&c->timer);
    if (cb) cb(c, 0, NULL, 0, err, arg);
}

/* Ends the request in flight with the parsed response. */
static void complete(kzc_conn_t *c)
{
    if (c->body_too_large) {
        kzc__drop_sock(c);
        c->state = KZC_IDLE;
        fail(c, "body too large");
        return;
    }
    if (!http_should_keep_alive(&c->parser)) {
        kzc__drop_sock(c);
        c->state = KZC_IDLE;
    } else {
        c->reused = true;
    }
    kzc_http_cb cb = c->cb;
    void *arg = c->arg;
    c->cb = NULL;
    uv_timer_stop(&c->timer);
    if (c->sock && c->idle_ms) kzc__arm(c, c->idle_ms);
    if (!c->body) {
        c->body = kz_malloc(1);
        c->bcap = 1;
    }
    c->body[c->blen] = '\0';
    if (cb) cb(c, (int)c->parser.status_code, c->body, c->blen, NULL, arg);
}

static void send_request(kzc_conn_t *c)
{
    if (kzc__write(c, c->req, c->req_len) != 0) {
        char err[64];
        snprintf(err, sizeof err, "%s", c->err);
        kzc__drop_sock(c);
        c->state = KZC_IDLE;
        fail(c, err);
    }
}

kzc_conn_t *kzc_http_new(uv_loop_t *loop, const kzc_target_t *t)
{
    return kzc__conn_new(loop, t, KZC_HTTP);
}

bool kzc_http_busy(const kzc_conn_t *c)
{
    return c->cb != NULL;
}

int kzc_http_request(kzc_conn_t *c, const char *method, const char *path, const char *auth, const char *body,
                     size_t len, kzc_http_cb cb, void *arg)
{
    if (c->freed || c->cb || c->kind != KZC_HTTP || !cb) return -1;
    bool with_body = len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    size_t cap = strlen(method) + strlen(path) + strlen(c->host) + (auth ? strlen(auth) : 0) + len + 160;
    kz_free(c->req);
    c->req = kz_malloc(cap);
    int n = snprintf(c->req, cap, "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\n%s%s%s", method, path, kzc__host_open(c),
                     c->host, kzc__host_close(c), c->port, auth ? "Authorization: " : "", auth ? auth : "",
                     auth ? "\r\n" : "");
    if (with_body)
        n += snprintf(c->req + n, cap - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      len);
    n += snprintf(c->req + n, cap - (size_t)n, "\r\n");
    if (len) memcpy(c->req + n, body, len);
    c->req_len = (size_t)n + len;

    c->cb = cb;
    c->arg = arg;
    c->blen = 0;
    c->body_too_large = false;
    c->message_done = false;
    c->got_bytes = false;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->err[0] = '\0';
    kzc__arm(c, c->timeout_ms);
    if (c->sock && c->state == KZC_READY) {
        send_request(c);
    } else if (!c->sock) {
        c->reused = false;
        kzc__connect(c); /* errors arrive through the timer */
    }
    return 0;
}

void kzc__http_on_connect(kzc_conn_t *c)
{
    if (c->cb) send_request(c);
}

void kzc__http_on_read(kzc_conn_t *c, const char *data, size_t len)
{
    if (!c->cb) { /* nothing asked: the server has no business talking */
        kzc__drop_sock(c);
        c->state = KZC_IDLE;
        return;
    }
    c->got_bytes = true;
    kz_free(c->req); /* no retry once the server answered */
    c->req = NULL;
    http_parser_execute(&c->parser, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->message_done) {
        complete(c);
    } else if (e != HPE_OK) {
        kzc__drop_sock(c);
        c->state = KZC_IDLE;
        fail(c, "bad response");
    }
}

void kzc__http_on_eof(kzc_conn_t *c, const char *err)
{
    c->state = KZC_IDLE;
    if (!c->cb) return; /* an idle keep-alive socket closed by the server */
    if (!c->got_bytes && c->reused && c->req) {
        c->reused = false;
        kzc__connect(c);
        return;
    }
    if (c->got_bytes && strcmp(err, "closed") == 0) {
        /* A body delimited by the end of the connection. */
        http_parser_execute(&c->parser, &settings, NULL, 0);
        if (c->message_done) {
            complete(c);
            return;
        }
    }
    fail(c, err);
}

void kzc__http_on_timer(kzc_conn_t *c)
{
    if (c->err[0]) { /* deferred error (connect could not start) */
        char err[64];
        snprintf(err, sizeof err, "%s", c->err);
        c->err[0] = '\0';
        fail(c, err);
        return;
    }
    kzc__drop_sock(c);
    c->state = KZC_IDLE;
    if (c->cb) fail(c, "timeout"); /* else: the idle close */
}
