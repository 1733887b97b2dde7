/* libkzclient: a small non-blocking HTTP/1.1 and WebSocket client on libuv.
 *
 * Written for kizuna-loadtest, where one process holds thousands of
 * connections: everything is callback driven on one uv_loop_t, nothing
 * blocks (except resolving a host name that is not an IP literal, done
 * once per name and cached), and an idle connection holds no buffers.
 * Reads go into one per-thread buffer; only an incomplete HTTP body or an
 * incomplete WebSocket message is kept per connection, each under a bound.
 * Writes are tried at once (uv_try_write); what the kernel does not take
 * is queued, and a connection whose queue passes its bound is closed with
 * the reason "write backlog".
 *
 * One kzc_conn_t is either an HTTP connection (keep-alive, one request at a
 * time, reconnecting when the server closed it) or a WebSocket.
 *
 * Errors reach the callbacks as short texts suitable as an error reason in
 * a report: "connect ECONNREFUSED", "timeout", "closed", "http 401" (WS
 * upgrade refused), "bad accept", "write backlog", "body too large",
 * "message too large", "bad response", "protocol error", "closed 1008".
 *
 * Not thread-safe: a connection belongs to the thread running its loop.
 * libuv writes with write(2): the process must ignore SIGPIPE (a write to a
 * socket the peer closed then fails with EPIPE, reported as an error). */
#ifndef KZ_CLIENT_H
#define KZ_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define KZC_DEFAULT_MAX_BODY (1u << 20)     /* response body / WS message bound */
#define KZC_DEFAULT_MAX_BACKLOG (1u << 20)  /* unsent bytes bound */

/* Where to connect and the limits of a connection. Strings are copied. */
typedef struct kzc_target {
    const char *host;        /* IP literal or name (resolved once, cached) */
    int port;
    const char *source_addr; /* local address to bind, or NULL: the OS picks */
    int timeout_ms;          /* connect (+ upgrade), and each HTTP request; 0 = 10 s */
    int idle_ms;             /* HTTP: close a keep-alive connection idle this long; 0 = never */
    size_t max_body;         /* response body / WS message bound; 0 = KZC_DEFAULT_MAX_BODY */
    size_t max_backlog;      /* unsent bytes bound; 0 = KZC_DEFAULT_MAX_BACKLOG */
} kzc_target_t;

typedef struct kzc_conn kzc_conn_t;

/* Byte counters of a connection (both directions, wire bytes). */
typedef struct kzc_io_stats {
    uint64_t bytes_in, bytes_out;
} kzc_io_stats_t;

/* ---- HTTP ------------------------------------------------------------------ */

/* The result of one request. status is the HTTP status, or 0 when the
 * request failed, and then err names why. body is the response body
 * (NUL-terminated, borrowed: valid during the callback only). The callback
 * may issue the next request or free the connection. */
typedef void (*kzc_http_cb)(kzc_conn_t *c, int status, const char *body, size_t len, const char *err,
                            void *arg);

/* A new HTTP connection (not connected yet: the first request connects).
 * Owned: free with kzc_free. */
kzc_conn_t *kzc_http_new(uv_loop_t *loop, const kzc_target_t *t);

/* Sends one request: method, path (with query), an optional Authorization
 * value (e.g. "Bearer ..."; NULL for none) and body[0..len) (sent with
 * Content-Type: application/json when len > 0 or method is POST/PUT).
 * Exactly one cb call follows, unless the connection is freed first.
 * Returns 0, or -1 when a request is already in flight (programming error)
 * or the connection is being freed. */
int kzc_http_request(kzc_conn_t *c, const char *method, const char *path, const char *auth, const char *body,
                     size_t len, kzc_http_cb cb, void *arg);

/* True while a request is in flight. */
bool kzc_http_busy(const kzc_conn_t *c);

/* ---- WebSocket --------------------------------------------------------------- */

typedef struct kzc_ws_cbs {
    /* The upgrade succeeded. */
    void (*on_open)(kzc_conn_t *c, void *arg);
    /* One whole data message: data[0..len), borrowed (valid during the
     * callback only) and NOT NUL-terminated (it usually points into the
     * shared read buffer, followed by the next frame's bytes). Never NULL:
     * an empty message is "" with len 0. */
    void (*on_message)(kzc_conn_t *c, bool binary, const char *data, size_t len, void *arg);
    /* The connection is over (called once, never after kzc_free). code is
     * the close code the peer sent (or echoed), 1006 when the connection
     * ended without a close frame, 0 when it never opened; reason is the
     * text described above ("closed 1000" for a completed close). */
    void (*on_close)(kzc_conn_t *c, int code, const char *reason, void *arg);
} kzc_ws_cbs_t;

/* Connects and upgrades path_and_query (e.g. "/ws?token=..&format=json").
 * cbs is borrowed (must outlive the connection); arg is passed to every
 * callback. Never returns NULL: a failure is reported through on_close
 * from the loop. Owned: free with kzc_free. */
kzc_conn_t *kzc_ws_open(uv_loop_t *loop, const kzc_target_t *t, const char *path_and_query, const kzc_ws_cbs_t *cbs,
                        void *arg);

/* Sends one message (text or binary frame, masked). Returns 0, or -1 when
 * the socket is not open (or closing) or the write backlog bound was
 * passed (the connection then closes with "write backlog"). */
int kzc_ws_send(kzc_conn_t *c, bool binary, const void *data, size_t len);

/* Starts the close handshake with code; on_close follows when the peer
 * answered (or after timeout_ms). No-op when already closing. */
void kzc_ws_close(kzc_conn_t *c, int code);

/* True once on_open ran and until the close starts. */
bool kzc_ws_is_open(const kzc_conn_t *c);

/* ---- Both -------------------------------------------------------------------- */

/* Wire bytes so far. */
kzc_io_stats_t kzc_io_stats(const kzc_conn_t *c);

/* True while the connection has an open TCP socket (or is connecting). */
bool kzc_is_connected(const kzc_conn_t *c);

/* Closes the connection at once (no close handshake) and releases it; no
 * callback follows. Safe from inside the connection's own callbacks.
 * Accepts NULL. */
void kzc_free(kzc_conn_t *c);

/* Process-wide counters of connections (for live progress and tests). */
typedef struct kzc_global_stats {
    uint64_t tcp_open;  /* TCP sockets open now (incl. connecting) */
    uint64_t allocated; /* kzc_conn_t not yet released */
} kzc_global_stats_t;
kzc_global_stats_t kzc_global_stats(void);

/* Calls fn(+1, arg) whenever a TCP socket is created and fn(-1, arg) when
 * one is released (for an exact open-connections gauge); NULL turns it
 * off. Process-wide (one loop thread). */
void kzc_on_tcp_change(void (*fn)(int change, void *arg), void *arg);

#endif
