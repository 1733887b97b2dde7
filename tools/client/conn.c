/* libkzclient: what HTTP and WebSocket connections share: the target, name
 * resolution, TCP connect with an optional source address, the read
 * buffer, bounded writes, the timer and the release protocol. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "client/internal.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define KZC_READ_BUF (64 * 1024)

uint64_t kzc__tcp_open, kzc__allocated;
static void (*tcp_hook)(int change, void *arg);
static void *tcp_hook_arg;

void kzc_on_tcp_change(void (*fn)(int change, void *arg), void *arg)
{
    tcp_hook = fn;
    tcp_hook_arg = arg;
}

kzc_global_stats_t kzc_global_stats(void)
{
    return (kzc_global_stats_t){.tcp_open = kzc__tcp_open, .allocated = kzc__allocated};
}

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */

/* Parses an IP literal (v4 or v6) with port into out. */
static bool parse_ip(const char *host, int port, struct sockaddr_in6 *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return true;
    }
    if (inet_pton(AF_INET6, host, &out->sin6_addr) == 1) {
        out->sin6_family = AF_INET6;
        out->sin6_port = htons((uint16_t)port);
        return true;
    }
    return false;
}

/* Resolves host: an IP literal directly, a name with getaddrinfo (this
 * blocks, once per name: the last answer is cached for the thread). */
static bool resolve(const char *host, int port, struct sockaddr_in6 *out)
{
    if (parse_ip(host, port, out)) return true;
    static _Thread_local char cached_name[256];
    static _Thread_local struct sockaddr_in6 cached;
    if (cached_name[0] && strcmp(cached_name, host) == 0) {
        *out = cached;
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return false;
        memset(out, 0, sizeof *out);
        memcpy(out, res->ai_addr, res->ai_addrlen < sizeof *out ? res->ai_addrlen : sizeof *out);
        freeaddrinfo(res);
        if (strlen(host) < sizeof cached_name) {
            snprintf(cached_name, sizeof cached_name, "%s", host);
            cached = *out;
        }
    }
    if (out->sin6_family == AF_INET)
        ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
    else
        out->sin6_port = htons((uint16_t)port);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static void on_timer(uv_timer_t *t);

kzc_conn_t *kzc__conn_new(uv_loop_t *loop, const kzc_target_t *t, int kind)
{
    kzc_conn_t *c = kz_calloc(1, sizeof *c);
    c->loop = loop;
    c->kind = (uint8_t)kind;
    c->state = KZC_IDLE;
    const char *host = t->host ? t->host : "127.0.0.1";
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') /* "[::1]": the literal inside */
        c->host = kz_strndup(host + 1, hl - 2);
    else
        c->host = kz_strdup(host);
    c->source = t->source_addr && t->source_addr[0] ? kz_strdup(t->source_addr) : NULL;
    c->port = t->port;
    c->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : 10000;
    c->idle_ms = t->idle_ms > 0 ? t->idle_ms : 0;
    c->max_body = t->max_body ? t->max_body : KZC_DEFAULT_MAX_BODY;
    c->max_backlog = t->max_backlog ? t->max_backlog : KZC_DEFAULT_MAX_BACKLOG;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    kzc__allocated++;
    return c;
}

static void conn_release(uv_handle_t *h)
{
    kzc_conn_t *c = h->data;
    kzc__ws_release(c);
    kz_free(c->host);
    kz_free(c->source);
    kz_free(c->req);
    kz_free(c->body);
    kz_free(c);
    kzc__allocated--;
}

void kzc_free(kzc_conn_t *c)
{
    if (!c || c->freed) return;
    c->freed = true;
    c->cb = NULL;
    kzc__drop_sock(c);
    uv_timer_stop(&c->timer);
    /* The memory stays valid until the timer handle's close callback, which
     * runs after the callback that may have called us has returned. */
    uv_close((uv_handle_t *)&c->timer, conn_release);
}

void kzc__arm(kzc_conn_t *c, int ms)
{
    if (c->freed) return;
    uv_timer_start(&c->timer, on_timer, (uint64_t)(ms < 0 ? 0 : ms), 0);
}

void kzc__defer_error(kzc_conn_t *c, const char *err)
{
    snprintf(c->err, sizeof c->err, "%s", err);
    kzc__arm(c, 0);
}

static void on_timer(uv_timer_t *t)
{
    kzc_conn_t *c = t->data;
    if (c->freed) return;
    if (c->kind == KZC_HTTP)
        kzc__http_on_timer(c);
    else
        kzc__ws_on_timer(c);
}

const char *kzc__host_open(const kzc_conn_t *c)
{
    return strchr(c->host, ':') ? "[" : "";
}

const char *kzc__host_close(const kzc_conn_t *c)
{
    return strchr(c->host, ':') ? "]" : "";
}

kzc_io_stats_t kzc_io_stats(const kzc_conn_t *c)
{
    return c->io;
}

bool kzc_is_connected(const kzc_conn_t *c)
{
    return c->sock != NULL;
}

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */

static void sock_closed(uv_handle_t *h)
{
    kz_free(h->data);
    kzc__tcp_open--;
    if (tcp_hook) tcp_hook(-1, tcp_hook_arg);
}

void kzc__drop_sock(kzc_conn_t *c)
{
    kzc_sock_t *s = c->sock;
    if (!s) return;
    c->sock = NULL;
    s->owner = NULL;
    uv_close((uv_handle_t *)&s->tcp, sock_closed);
}

/* A socket closed once what was queued on it is written (a close frame
 * echoed just before the end): uv_close would cancel the write. Bounded by
 * a timer; allocated only for such a socket. */
typedef struct {
    uv_shutdown_t req;
    uv_timer_t timer;
    kzc_sock_t *sock;
} linger_t;

static void linger_freed(uv_handle_t *h)
{
    kz_free(h->data);
}

/* Runs once: when the queue drained, or cancelled by the timer's close of
 * the socket. */
static void linger_done(uv_shutdown_t *req, int status)
{
    linger_t *l = req->data;
    if (!uv_is_closing((uv_handle_t *)&l->sock->tcp)) uv_close((uv_handle_t *)&l->sock->tcp, sock_closed);
    uv_timer_stop(&l->timer);
    if (!uv_is_closing((uv_handle_t *)&l->timer)) uv_close((uv_handle_t *)&l->timer, linger_freed);
}

static void linger_timeout(uv_timer_t *t)
{
    linger_t *l = t->data;
    /* Cancels the shutdown: linger_done follows from the close. */
    if (!uv_is_closing((uv_handle_t *)&l->sock->tcp)) uv_close((uv_handle_t *)&l->sock->tcp, sock_closed);
}

void kzc__drop_sock_after_write(kzc_conn_t *c, int ms)
{
    kzc_sock_t *s = c->sock;
    if (!s) return;
    if (s->backlog == 0) {
        kzc__drop_sock(c);
        return;
    }
    c->sock = NULL;
    s->owner = NULL;
    linger_t *l = kz_calloc(1, sizeof *l);
    l->sock = s;
    l->req.data = l;
    if (uv_shutdown(&l->req, (uv_stream_t *)&s->tcp, linger_done) != 0) {
        kz_free(l);
        uv_close((uv_handle_t *)&s->tcp, sock_closed);
        return;
    }
    uv_timer_init(c->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, linger_timeout, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    /* One buffer per thread: a read callback consumes the bytes before the
     * next read on any socket of this loop. */
    static _Thread_local char buf[KZC_READ_BUF];
    b->base = buf;
    b->len = sizeof buf;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    kzc_sock_t *s = st->data;
    kzc_conn_t *c = s->owner;
    if (!c || c->freed || n == 0) return;
    if (n < 0) {
        char err[64];
        if (n == UV_EOF)
            snprintf(err, sizeof err, "closed");
        else
            snprintf(err, sizeof err, "read %s", uv_err_name((int)n));
        kzc__drop_sock(c);
        if (c->kind == KZC_HTTP)
            kzc__http_on_eof(c, err);
        else
            kzc__ws_on_eof(c, err);
        return;
    }
    c->io.bytes_in += (uint64_t)n;
    if (c->kind == KZC_HTTP)
        kzc__http_on_read(c, b->base, (size_t)n);
    else
        kzc__ws_on_read(c, b->base, (size_t)n);
}

static void on_connect(uv_connect_t *req, int status)
{
    kzc_sock_t *s = req->data;
    kzc_conn_t *c = s->owner;
    if (!c || c->freed) return; /* detached while connecting: already closing */
    if (status < 0) {
        char err[64];
        snprintf(err, sizeof err, "connect %s", uv_err_name(status));
        kzc__drop_sock(c);
        c->state = KZC_IDLE;
        if (c->kind == KZC_HTTP)
            kzc__http_on_eof(c, err);
        else
            kzc__ws_on_eof(c, err);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, on_read);
    if (rc < 0) {
        char err[64];
        snprintf(err, sizeof err, "read %s", uv_err_name(rc));
        kzc__drop_sock(c);
        c->state = KZC_IDLE;
        if (c->kind == KZC_HTTP)
            kzc__http_on_eof(c, err);
        else
            kzc__ws_on_eof(c, err);
        return;
    }
    c->state = KZC_READY;
    if (c->kind == KZC_HTTP)
        kzc__http_on_connect(c);
    else
        kzc__ws_on_connect(c);
}

int kzc__connect(kzc_conn_t *c)
{
    char err[64];
    if (c->sock) kzc__drop_sock(c);
    if (!c->dst.sin6_family && !resolve(c->host, c->port, &c->dst)) {
        snprintf(err, sizeof err, "resolve %.40s", c->host);
        goto fail;
    }
    kzc_sock_t *s = kz_calloc(1, sizeof *s);
    int rc = uv_tcp_init_ex(c->loop, &s->tcp, c->dst.sin6_family);
    if (rc < 0) { /* typically EMFILE: no socket was created */
        kz_free(s);
        snprintf(err, sizeof err, "connect %s", uv_err_name(rc));
        goto fail;
    }
    kzc__tcp_open++;
    if (tcp_hook) tcp_hook(1, tcp_hook_arg);
    s->tcp.data = s;
    s->creq.data = s;
    s->owner = c;
    c->sock = s;
    uv_tcp_nodelay(&s->tcp, 1);
    if (c->source) {
        struct sockaddr_in6 src;
        if (!parse_ip(c->source, 0, &src)) {
            snprintf(err, sizeof err, "bad source address %.24s", c->source);
            goto fail_sock;
        }
        /* Let connect() pick the port, so one source address is not limited
         * to the ephemeral range by bind() reserving ports blindly. */
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        }
        rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&src, 0);
        if (rc < 0) {
            snprintf(err, sizeof err, "bind %s", uv_err_name(rc));
            goto fail_sock;
        }
    }
    rc = uv_tcp_connect(&s->creq, &s->tcp, (const struct sockaddr *)&c->dst, on_connect);
    if (rc < 0) {
        snprintf(err, sizeof err, "connect %s", uv_err_name(rc));
        goto fail_sock;
    }
    c->state = KZC_CONNECTING;
    return 0;
fail_sock:
    kzc__drop_sock(c);
fail:
    c->state = KZC_IDLE;
    kzc__defer_error(c, err);
    return -1;
}

typedef struct wreq {
    uv_write_t req;
    kzc_sock_t *sock;
    size_t len;
    char data[];
} wreq_t;

static void on_written(uv_write_t *r, int status)
{
    wreq_t *w = (wreq_t *)r;
    kzc_sock_t *s = w->sock;
    s->backlog -= w->len;
    kz_free(w);
    kzc_conn_t *c = s->owner;
    if (status < 0 && c && !c->freed) {
        char err[64];
        snprintf(err, sizeof err, "write %s", uv_err_name(status));
        kzc__drop_sock(c);
        if (c->kind == KZC_HTTP)
            kzc__http_on_eof(c, err);
        else
            kzc__ws_on_eof(c, err);
    }
}

int kzc__write(kzc_conn_t *c, const void *data, size_t len)
{
    kzc_sock_t *s = c->sock;
    if (!s || c->freed) {
        snprintf(c->err, sizeof c->err, "closed");
        return -1;
    }
    const char *p = data;
    c->io.bytes_out += len;
    if (s->backlog == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && n != UV_EAGAIN) {
            snprintf(c->err, sizeof c->err, "write %s", uv_err_name(n));
            return -1;
        }
        if (len == 0) return 0;
    }
    if (s->backlog + len > c->max_backlog) {
        snprintf(c->err, sizeof c->err, "write backlog");
        return -1;
    }
    wreq_t *w = kz_malloc(sizeof *w + len);
    w->sock = s;
    w->len = len;
    memcpy(w->data, p, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
    if (rc < 0) {
        kz_free(w);
        snprintf(c->err, sizeof c->err, "write %s", uv_err_name(rc));
        return -1;
    }
    s->backlog += len;
    return 0;
}
