/* HTTP/1.1 server: I/O threads, listeners, connections, exchanges.
 * See net/http.h for the model. Everything in this file runs on the I/O
 * thread that owns the connection, except kz_exchange_complete and the
 * create/start/stop entry points called from the main thread. */
#include "net/http.h"

#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "net/internal.h"

#define KZ_READBUF_SIZE 65536
#define KZ_MAX_HEADERS 100
#define KZ_STOP_GRACE_MS 10000
#define KZ_ROUTE_UNCOUNTED (-2)
#define KZ_STOP_READ_GRACE_MS 1000 /* a request still arriving at shutdown gets this long */

static http_parser_settings parser_settings;
static void conn_close(kz_conn_t *c);
static void conn_feed(kz_conn_t *c, const char *data, size_t len);
static void conn_after_write(kz_conn_t *c);

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

const char *kz_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

void kz_exchange_set(kz_exchange_t *ex, int status, char *body, size_t len)
{
    kz_free(ex->resp.body);
    ex->resp.status = status;
    ex->resp.body = body;
    ex->resp.body_len = len;
}

void kz_exchange_add_header(kz_exchange_t *ex, const char *name, const char *value)
{
    char *line = kz_asprintf("%s%s: %s\r\n", ex->resp.extra_headers ? ex->resp.extra_headers : "",
                             name, value);
    kz_free(ex->resp.extra_headers);
    ex->resp.extra_headers = line;
}

void kz_exchange_free(kz_exchange_t *ex)
{
    kz_free(ex->resp.body);
    kz_free(ex->resp.extra_headers);
    kz_free(ex->req.body);
    kz_free(ex->req.headers);
    kz_free(ex->_head);
    kz_free(ex);
}

static void conn_reset_request(kz_conn_t *c)
{
    kz_free(c->head);
    kz_free(c->hdrs);
    kz_free(c->body);
    c->head = NULL;
    c->hdrs = NULL;
    c->body = NULL;
    c->head_len = c->head_cap = 0;
    c->nhdrs = 0;
    c->in_value = false;
    c->url_len = 0;
    c->body_len = c->body_cap = 0;
    c->reject = 0;
}

static void conn_timer_cb(uv_timer_t *t)
{
    kz_conn_t *c = t->data;
    kz_log_debug("closing connection: %s timeout",
                 c->state == CONN_READING ? "read" : c->state == CONN_WRITING ? "write" : "idle");
    conn_close(c);
}

static void conn_arm(kz_conn_t *c, int ms)
{
    uv_timer_start(&c->timer, conn_timer_cb, (uint64_t)ms, 0);
}

void kz_conn_arm(kz_conn_t *c, int ms, uv_timer_cb cb)
{
    uv_timer_start(&c->timer, cb, (uint64_t)ms, 0);
}

void kz_conn_close(kz_conn_t *c)
{
    conn_close(c);
}

/* ------------------------------------------------------------------------ */
/* Parser callbacks: collect the url and headers into one bounded buffer.   */

static int head_append(kz_conn_t *c, const char *at, size_t len)
{
    const kz_config_t *cfg = c->io->srv->cfg;
    if ((size_t)c->head_len + len > (size_t)cfg->socket.max_header_bytes) {
        c->reject = 431;
        return -1;
    }
    if (c->head_len + len > c->head_cap) {
        uint32_t cap = c->head_cap ? c->head_cap : 512;
        while (cap < c->head_len + len) cap *= 2;
        c->head = kz_realloc(c->head, cap);
        c->head_cap = cap;
    }
    memcpy(c->head + c->head_len, at, len);
    c->head_len += (uint32_t)len;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    kz_conn_t *c = p->data;
    conn_reset_request(c);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    kz_conn_t *c = p->data;
    if (head_append(c, at, len)) return -1;
    c->url_len += (uint32_t)len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    kz_conn_t *c = p->data;
    if (!c->hdrs || c->in_value) {
        /* A new header starts. */
        if (c->nhdrs >= KZ_MAX_HEADERS) {
            c->reject = 431;
            return -1;
        }
        if (!c->hdrs) c->hdrs = kz_malloc(sizeof(hdr_off_t) * KZ_MAX_HEADERS);
        hdr_off_t *h = &c->hdrs[c->nhdrs++];
        h->name = c->head_len;
        h->name_len = 0;
        h->val = c->head_len;
        h->val_len = 0;
        c->in_value = false;
    }
    if (head_append(c, at, len)) return -1;
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)len;
    c->hdrs[c->nhdrs - 1].val = c->head_len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    kz_conn_t *c = p->data;
    if (!c->hdrs) return -1;
    c->in_value = true;
    if (head_append(c, at, len)) return -1;
    c->hdrs[c->nhdrs - 1].val_len += (uint32_t)len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    kz_conn_t *c = p->data;
    const kz_config_t *cfg = c->io->srv->cfg;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > (uint64_t)cfg->socket.max_request_size_bytes) {
        c->reject = 413;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    kz_conn_t *c = p->data;
    const kz_config_t *cfg = c->io->srv->cfg;
    if (c->body_len + len > (size_t)cfg->socket.max_request_size_bytes) {
        c->reject = 413;
        return -1;
    }
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        while (cap < c->body_len + len + 1) cap *= 2;
        c->body = kz_realloc(c->body, cap);
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static kz_slice_t header_get(kz_conn_t *c, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < c->nhdrs; i++) {
        hdr_off_t *h = &c->hdrs[i];
        if (h->name_len == n && strncasecmp(c->head + h->name, name, n) == 0)
            return (kz_slice_t){c->head + h->val, h->val_len};
    }
    return (kz_slice_t){"", 0};
}

static void serve_metrics(kz_exchange_t *ex);

/* A request is complete: turn it into an exchange that owns the buffers,
 * pause the parser and hand the exchange to the dispatcher. */
static int on_message_complete(http_parser *p)
{
    kz_conn_t *c = p->data;
    kz_io_t *io = c->io;
    kz_exchange_t *ex = kz_calloc(1, sizeof *ex);
    ex->_conn = c;
    ex->_io = io;
    ex->route = -1;
    ex->start_ns = kz_mono_ns();
    ex->req.method = p->method;
    ex->req.keep_alive = http_should_keep_alive(p) != 0;

    /* The exchange takes the head buffer; slices point into it. */
    ex->_head = c->head;
    const char *url = c->head ? c->head : "";
    const char *q = memchr(url, '?', c->url_len);
    ex->req.path = (kz_slice_t){url, q ? (size_t)(q - url) : c->url_len};
    ex->req.query = q ? (kz_slice_t){q + 1, c->url_len - (size_t)(q - url) - 1} : (kz_slice_t){"", 0};
    ex->req.authorization = header_get(c, "authorization");
    ex->req.origin = header_get(c, "origin");
    ex->req.content_type = header_get(c, "content-type");
    ex->req.acr_method = header_get(c, "access-control-request-method");
    ex->req.acr_headers = header_get(c, "access-control-request-headers");
    ex->req.forwarded_for = header_get(c, "x-forwarded-for");
    ex->req.upgrade = header_get(c, "upgrade");
    ex->req.connection = header_get(c, "connection");
    ex->req.ws_key = header_get(c, "sec-websocket-key");
    ex->req.ws_version = header_get(c, "sec-websocket-version");
    if (c->nhdrs) {
        ex->req.headers = kz_malloc(sizeof *ex->req.headers * (size_t)c->nhdrs);
        for (int i = 0; i < c->nhdrs; i++) {
            const hdr_off_t *h = &c->hdrs[i];
            ex->req.headers[i] = (kz_http_header_t){{url + h->name, h->name_len}, {url + h->val, h->val_len}};
        }
        ex->req.nheaders = c->nhdrs;
    }
    if (!c->body) c->body = kz_malloc(1);
    c->body[c->body_len] = '\0';
    ex->req.body = c->body;
    ex->req.body_len = c->body_len;
    c->head = NULL;
    c->body = NULL;
    conn_reset_request(c);

    c->ex = ex;
    c->state = CONN_DISPATCHED;
    uv_timer_stop(&c->timer);
    uv_read_stop((uv_stream_t *)&c->tcp);
    io->outstanding++;
    /* Dispatch happens in conn_feed once the parser has returned, so an
     * answer given at once never re-enters the parser. */
    http_parser_pause(p, 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Writing responses                                                        */

static void on_write(uv_write_t *req, int status)
{
    kz_conn_t *c = req->data;
    kz_free(c->out);
    c->out = NULL;
    if (status < 0 || c->state == CONN_CLOSING) {
        if (c->state != CONN_CLOSING) conn_close(c);
        return;
    }
    conn_after_write(c);
}

/* Writes buf (owned, len bytes): as much as the socket takes at once, the
 * rest through uv_write with the write deadline armed. */
static void conn_write(kz_conn_t *c, char *buf, size_t len)
{
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)len) {
        kz_free(buf);
        conn_after_write(c);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        kz_free(buf);
        conn_close(c);
        return;
    }
    size_t off = n > 0 ? (size_t)n : 0;
    c->out = buf;
    c->state = CONN_WRITING;
    conn_arm(c, c->io->srv->cfg->socket.write_timeout_ms);
    uv_buf_t rest = uv_buf_init(buf + off, (unsigned)(len - off));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_write) < 0) {
        kz_free(buf);
        c->out = NULL;
        conn_close(c);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    kz_conn_t *c = h->data;
    kz_io_t *io = c->io;
    /* One read at a time per thread: the data is consumed before the next
     * read callback of any connection runs. */
    buf->base = io->readbuf;
    buf->len = sizeof io->readbuf;
}

/* After a response went out: keep the connection for the next request, or
 * close it. Pipelined bytes already read are parsed now. */
static void conn_after_write(kz_conn_t *c)
{
    if (!c->keep_alive || c->io->stopping) {
        conn_close(c);
        return;
    }
    c->state = CONN_IDLE;
    conn_arm(c, c->io->srv->cfg->socket.idle_timeout_ms);
    http_parser_pause(&c->parser, 0);
    if (c->feeding) return; /* conn_feed goes on with the pipelined bytes */
    if (c->pending)
        conn_feed(c, NULL, 0);
    else
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n > *cap) {
        while (*len + n > *cap) *cap *= 2;
        *buf = kz_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

void kz_exchange_finish(kz_exchange_t *ex)
{
    kz_io_t *io = ex->_io;
    kz_conn_t *c = ex->_conn;
    io->outstanding--;
    double secs = (double)(kz_mono_ns() - ex->start_ns) / 1e9;
    bool counted = ex->route != KZ_ROUTE_UNCOUNTED;
    if (!c || c->state == CONN_CLOSING) {
        if (c) c->ex = NULL;
        if (counted) kz_metrics_http_observe(ex->route, 499, secs);
        kz_exchange_free(ex);
        return;
    }
    c->ex = NULL;
    if (!ex->resp.status) ex->resp.status = 500;
    if (counted) kz_metrics_http_observe(ex->route, ex->resp.status, secs);
    c->keep_alive = ex->req.keep_alive && !io->stopping;

    size_t cap = 512 + ex->resp.body_len, len = 0;
    char *out = kz_malloc(cap);
    char line[256];
    int n = snprintf(line, sizeof line,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store, no-cache, must-revalidate\r\n%s",
                     ex->resp.status, kz_http_reason(ex->resp.status),
                     ex->resp.content_type ? ex->resp.content_type : "application/json",
                     ex->resp.body_len, c->keep_alive ? "" : "Connection: close\r\n");
    append(&out, &len, &cap, line, (size_t)n);
    if (ex->req.origin.n)
        append(&out, &len, &cap, "Access-Control-Allow-Origin: *\r\n", 32);
    if (ex->resp.extra_headers)
        append(&out, &len, &cap, ex->resp.extra_headers, strlen(ex->resp.extra_headers));
    append(&out, &len, &cap, "\r\n", 2);
    if (ex->resp.body_len) append(&out, &len, &cap, ex->resp.body, ex->resp.body_len);
    kz_exchange_free(ex);
    conn_write(c, out, len);
}

void kz_exchange_complete(kz_exchange_t *ex)
{
    kz_io_t *io = ex->_io;
    ex->_next = NULL;
    pthread_mutex_lock(&io->lock);
    if (io->done_tail)
        io->done_tail->_next = ex;
    else
        io->done_head = ex;
    io->done_tail = ex;
    pthread_mutex_unlock(&io->lock);
    uv_async_send(&io->wake);
}

/* Answers a request the parser refused (malformed, too large) and closes. */
static void conn_reject(kz_conn_t *c, int status, const char *msg)
{
    char *body = kz_asprintf("{\"code\":3,\"message\":\"%s\"}", msg);
    size_t blen = strlen(body);
    char *out = kz_asprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                            status, kz_http_reason(status), blen, body);
    kz_free(body);
    kz_metrics_http_observe(-1, status, 0);
    c->keep_alive = false;
    uv_read_stop((uv_stream_t *)&c->tcp);
    conn_reset_request(c);
    conn_write(c, out, strlen(out));
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

/* Parses data (borrowed; NULL to parse only the saved pipelined bytes).
 * Each complete request is dispatched after the parser returns; bytes past
 * it are saved and parsed once its response is out. Requests answered at
 * once are served in this loop, without recursion. */
static void conn_feed(kz_conn_t *c, const char *data, size_t len)
{
    char *owned = NULL;
    if (!data) {
        owned = c->pending;
        data = owned;
        len = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
    }
    c->feeding = true;
    while (len > 0 && (c->state == CONN_IDLE || c->state == CONN_READING)) {
        if (c->state == CONN_IDLE) {
            c->state = CONN_READING;
            conn_arm(c, c->io->stopping ? KZ_STOP_READ_GRACE_MS : c->io->srv->cfg->socket.read_timeout_ms);
        }
        size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (err == HPE_PAUSED && c->ex) {
            if (n < len) { /* keep what follows the request for later */
                c->pending = kz_strndup(data + n, len - n);
                c->pending_len = len - n;
            }
            kz_free(owned);
            owned = NULL;
            kz_exchange_t *ex = c->ex;
            if (c->is_metrics)
                serve_metrics(ex);
            else
                c->io->srv->dispatch(ex, c->io->srv->arg);
            /* Answered at once: go on with the saved bytes, if any. */
            if (c->state != CONN_IDLE || !c->pending) break;
            owned = c->pending;
            data = owned;
            len = c->pending_len;
            c->pending = NULL;
            c->pending_len = 0;
            continue;
        }
        if (err != HPE_OK) {
            if (c->reject == 413)
                conn_reject(c, 413, "Request body too large.");
            else if (c->reject == 431 || err == HPE_HEADER_OVERFLOW)
                conn_reject(c, 431, "Request header fields too large.");
            else
                conn_reject(c, 400, "Malformed HTTP request.");
        }
        break;
    }
    kz_free(owned);
    c->feeding = false;
    if (c->state == CONN_IDLE || c->state == CONN_READING || c->state == CONN_WEBSOCKET)
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    kz_conn_t *c = (kz_conn_t *)s;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) return;
    if (c->state == CONN_WEBSOCKET) {
        kz_ws_feed(c, buf->base, (size_t)nread);
        return;
    }
    if (c->state == CONN_DISPATCHED || c->state == CONN_WRITING) {
        /* Reading is stopped while a request is out; should not happen. */
        return;
    }
    conn_feed(c, buf->base, (size_t)nread);
}

/* ------------------------------------------------------------------------ */
/* Connection lifecycle                                                     */

/* The last step of an I/O thread's stop: with its handles closed, its
 * loop returns. */
static void io_close_handles(kz_io_t *io)
{
    if (uv_is_closing((uv_handle_t *)&io->wake)) return;
    uv_close((uv_handle_t *)&io->wake, NULL);
    uv_close((uv_handle_t *)&io->stop_timer, NULL);
    uv_close((uv_handle_t *)&io->flush_check, NULL);
}

static void conn_handle_closed(uv_handle_t *h)
{
    kz_conn_t *c = h->data;
    if (--c->open_handles > 0) return;
    kz_io_t *io = c->io;
    if (c->prev)
        c->prev->next = c->next;
    else
        io->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    conn_reset_request(c);
    kz_ws_free(c);
    kz_free(c->pending);
    kz_free(c->out);
    kz_free(c);
    kz_metrics_connections_add(-1);
    if (io->stopping && !io->conns && !io->outstanding) {
        io_close_handles(io);
    }
}

/* Closes the connection at a safe point: the memory goes in the close
 * callbacks. An exchange still out is detached and dropped when it comes
 * back. */
static void conn_close(kz_conn_t *c)
{
    if (c->state == CONN_CLOSING) return;
    bool was_ws = c->state == CONN_WEBSOCKET;
    c->state = CONN_CLOSING;
    if (was_ws) kz_ws_closing(c);
    if (c->ex) {
        c->ex->_conn = NULL;
        c->ex = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

/* Starts serving an accepted connection whose handle c->tcp is open. */
static void conn_start(kz_io_t *io, kz_conn_t *c, bool is_metrics)
{
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_init(&io->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    c->is_metrics = is_metrics;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = CONN_IDLE;
    c->next = io->conns;
    if (io->conns) io->conns->prev = c;
    io->conns = c;
    kz_metrics_connections_add(1);
    conn_arm(c, io->srv->cfg->socket.idle_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

static void on_connection(uv_stream_t *listener, int status)
{
    kz_io_t *io = listener->data;
    if (status < 0 || io->stopping) return;
    kz_conn_t *c = kz_calloc(1, sizeof *c);
    c->io = io;
    uv_tcp_init(&io->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)kz_free);
        return;
    }
    conn_start(io, c, listener == (uv_stream_t *)&io->metrics_listener);
}

/* At shutdown: takes every connection still waiting in the listener's
 * backlog, so a client whose request is already sent gets its answer
 * instead of a reset when the listener closes. */
static void accept_backlog(kz_io_t *io, uv_tcp_t *listener, bool is_metrics)
{
    uv_os_fd_t lfd;
    if (uv_fileno((uv_handle_t *)listener, &lfd) != 0) return;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        kz_conn_t *c = kz_calloc(1, sizeof *c);
        c->io = io;
        uv_tcp_init(&io->loop, &c->tcp);
        c->tcp.data = c;
        if (uv_tcp_open(&c->tcp, fd) != 0) {
            c->state = CONN_CLOSING;
            uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)kz_free);
            continue;
        }
        conn_start(io, c, is_metrics);
    }
}

/* True when the client has sent bytes this thread has not read yet. */
static bool conn_has_unread(kz_conn_t *c)
{
    uv_os_fd_t fd;
    char b;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return false;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void serve_metrics(kz_exchange_t *ex)
{
    if (ex->req.method == HTTP_GET && ex->req.path.n == 8 && memcmp(ex->req.path.p, "/metrics", 8) == 0) {
        size_t len;
        char *text = kz_metrics_render(&len);
        kz_exchange_set(ex, 200, text, len);
        ex->resp.content_type = "text/plain; version=0.0.4";
    } else {
        char *b = kz_strdup("{\"code\":5,\"message\":\"Not Found\"}");
        kz_exchange_set(ex, 404, b, strlen(b));
    }
    ex->route = KZ_ROUTE_UNCOUNTED; /* scrapes are not API requests */
    kz_exchange_finish(ex);
}

/* ------------------------------------------------------------------------ */
/* I/O threads                                                              */

/* Stops taking connections. Requests already sent (in flight, half read,
 * or waiting unread in the socket) are still answered, each connection
 * closing after its response; idle connections close now. The stop timer
 * bounds how long this may take. */
static void io_begin_stop(kz_io_t *io)
{
    if (io->stopping) return;
    accept_backlog(io, &io->listener, false);
    if (io->has_metrics) accept_backlog(io, &io->metrics_listener, true);
    io->stopping = true;
    uv_close((uv_handle_t *)&io->listener, NULL);
    if (io->has_metrics) uv_close((uv_handle_t *)&io->metrics_listener, NULL);
    for (kz_conn_t *c = io->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_WEBSOCKET)
            kz_ws_close(c->ws, 1001, "Server is shutting down.");
        else if (c->state == CONN_IDLE && !conn_has_unread(c))
            conn_close(c);
        else if (c->state == CONN_READING)
            conn_arm(c, KZ_STOP_READ_GRACE_MS);
    }
    if (!io->conns && !io->outstanding) {
        io_close_handles(io);
    }
}

static void io_stop_timeout(uv_timer_t *t)
{
    kz_io_t *io = t->data;
    for (kz_conn_t *c = io->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

static _Thread_local int current_io = -1;

int kz_server_current_thread(void)
{
    return current_io;
}

int kz_server_threads(const kz_server_t *srv)
{
    return srv->nio;
}

void kz_server_post(kz_server_t *srv, int index, kz_task_t *task)
{
    kz_io_t *io = srv->ios[index];
    task->next = NULL;
    pthread_mutex_lock(&io->lock);
    if (io->task_tail)
        io->task_tail->next = task;
    else
        io->task_head = task;
    io->task_tail = task;
    pthread_mutex_unlock(&io->lock);
    uv_async_send(&io->wake);
}

/* Runs every task in the list (each owns itself once run). */
static void run_tasks(kz_task_t *t)
{
    while (t) {
        kz_task_t *next = t->next;
        t->run(t);
        t = next;
    }
}

static void on_wake(uv_async_t *a)
{
    kz_io_t *io = a->data;
    pthread_mutex_lock(&io->lock);
    kz_exchange_t *ex = io->done_head;
    io->done_head = io->done_tail = NULL;
    kz_task_t *tasks = io->task_head;
    io->task_head = io->task_tail = NULL;
    bool stop = io->stop_requested;
    pthread_mutex_unlock(&io->lock);
    run_tasks(tasks);
    while (ex) {
        kz_exchange_t *next = ex->_next;
        kz_exchange_finish(ex);
        ex = next;
    }
    if (stop && !io->stopping) {
        io_begin_stop(io);
        uv_timer_start(&io->stop_timer, io_stop_timeout, KZ_STOP_GRACE_MS, 0);
    } else if (io->stopping && !io->conns && !io->outstanding) {
        io_close_handles(io);
    }
}

static void on_flush_check(uv_check_t *h)
{
    kz_io_t *io = h->data;
    if (io->flush_head) kz_ws_flush_all(io);
}

static void io_main(void *arg)
{
    kz_io_t *io = arg;
    current_io = io->index;
    uv_run(&io->loop, UV_RUN_DEFAULT);
}

/* Opens a socket bound to host:port: listening, with SO_REUSEPORT when
 * shared (so each I/O thread has its own), or a bare bound probe when
 * probe is set. Returns the fd or -1 with err set. */
static int bind_socket(const char *host, int port, bool shared, bool probe, char *err, size_t errlen)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (shared) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && (probe || listen(fd, 1024) == 0)) break;
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0 && !*err) snprintf(err, errlen, "cannot listen on %s:%d", host, port);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int io_listen(kz_io_t *io, uv_tcp_t *tcp, int fd, char *err, size_t errlen)
{
    uv_tcp_init(&io->loop, tcp);
    tcp->data = io;
    int rc = uv_tcp_open(tcp, fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)tcp, 1024, on_connection);
    if (rc != 0) snprintf(err, errlen, "cannot listen: %s", uv_strerror(rc));
    return rc;
}

kz_server_t *kz_server_create(const kz_config_t *cfg, kz_dispatch_fn dispatch, void *arg, char *err,
                              size_t errlen)
{
    parser_settings = (http_parser_settings){
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
    };
    err[0] = '\0';
    kz_server_t *srv = kz_calloc(1, sizeof *srv);
    srv->cfg = cfg;
    srv->dispatch = dispatch;
    srv->arg = arg;
    srv->nio = cfg->workers;
    srv->ios = kz_calloc((size_t)srv->nio, sizeof *srv->ios);
    int port = cfg->socket.port;
    for (int i = 0; i < srv->nio; i++) {
        kz_io_t *io = kz_calloc(1, sizeof *io);
        srv->ios[i] = io;
        io->index = i;
        io->srv = srv;
        uv_loop_init(&io->loop);
        pthread_mutex_init(&io->lock, NULL);
        uv_async_init(&io->loop, &io->wake, on_wake);
        io->wake.data = io;
        uv_timer_init(&io->loop, &io->stop_timer);
        io->stop_timer.data = io;
        uv_check_init(&io->loop, &io->flush_check);
        io->flush_check.data = io;
        uv_check_start(&io->flush_check, on_flush_check);
        if (i == 0 && port != 0) {
            /* SO_REUSEPORT would let a second server of the same user share
             * the port and split the clients with us: bind it once without
             * the option first, which fails if anyone holds the port. */
            int probe = bind_socket(cfg->socket.address, port, false, true, err, errlen);
            if (probe < 0) goto fail;
            close(probe);
        }
        int fd = bind_socket(cfg->socket.address, port, true, false, err, errlen);
        if (fd < 0 || io_listen(io, &io->listener, fd, err, errlen) != 0) goto fail;
        if (i == 0) port = srv->port = bound_port(fd);
        if (i == 0 && cfg->metrics.prometheus_port) {
            int mfd = bind_socket("127.0.0.1", cfg->metrics.prometheus_port, false, false, err, errlen);
            if (mfd < 0 || io_listen(io, &io->metrics_listener, mfd, err, errlen) != 0) goto fail;
            io->has_metrics = true;
        }
    }
    return srv;
fail:
    kz_server_destroy(srv);
    return NULL;
}

int kz_server_start(kz_server_t *srv)
{
    for (int i = 0; i < srv->nio; i++)
        if (uv_thread_create(&srv->ios[i]->thread, io_main, srv->ios[i]) != 0) return -1;
    srv->started = true;
    return 0;
}

int kz_server_port(const kz_server_t *srv)
{
    return srv->port;
}

void kz_server_stop(kz_server_t *srv)
{
    if (!srv || !srv->started) return;
    for (int i = 0; i < srv->nio; i++) {
        kz_io_t *io = srv->ios[i];
        pthread_mutex_lock(&io->lock);
        io->stop_requested = true;
        pthread_mutex_unlock(&io->lock);
        uv_async_send(&io->wake);
    }
    for (int i = 0; i < srv->nio; i++) uv_thread_join(&srv->ios[i]->thread);
    srv->started = false;
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void kz_server_destroy(kz_server_t *srv)
{
    if (!srv) return;
    kz_server_stop(srv);
    for (int i = 0; i < srv->nio; i++) {
        kz_io_t *io = srv->ios[i];
        if (!io) continue;
        /* Threads never started (a failed create): close what was opened. */
        uv_walk(&io->loop, close_any, NULL);
        uv_run(&io->loop, UV_RUN_DEFAULT);
        /* Tasks posted after the thread stopped release what they hold. */
        current_io = io->index;
        run_tasks(io->task_head);
        current_io = -1;
        io->task_head = io->task_tail = NULL;
        uv_loop_close(&io->loop);
        pthread_mutex_destroy(&io->lock);
        kz_free(io);
    }
    kz_free(srv->ios);
    kz_free(srv);
}
