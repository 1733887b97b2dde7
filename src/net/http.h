/* HTTP/1.1 server side: I/O threads, listeners and request/response
 * exchanges.
 *
 * Each I/O thread runs one libuv loop with its own SO_REUSEPORT listener, so
 * the kernel spreads connections over threads and no connection ever moves.
 * Requests are parsed with libhttp-parser under size bounds (header bytes,
 * body bytes) and time bounds (a started request must arrive within
 * socket.read_timeout_ms, a response must drain within write_timeout_ms, an
 * idle keep-alive connection is closed after idle_timeout_ms).
 *
 * A complete request becomes a kz_exchange_t handed to the dispatcher on the
 * I/O thread. The dispatcher either answers at once (kz_exchange_finish on
 * the I/O thread) or passes the exchange to the worker pool; a worker then
 * fills ex->resp and calls kz_exchange_complete, which queues the exchange
 * back to its I/O thread. While an exchange is out, its connection reads
 * nothing more (pipelined requests wait their turn). If the client goes away
 * meanwhile, the exchange still completes and is then dropped. */
#ifndef KZ_NET_HTTP_H
#define KZ_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef struct kz_server kz_server_t;
typedef struct kz_exchange kz_exchange_t;

/* A header value as a slice into the request's head buffer (not NUL-terminated
 * unless noted). */
typedef struct kz_slice {
    const char *p;
    size_t n;
} kz_slice_t;

/* One request header as received (name in the client's case). */
typedef struct kz_http_header {
    kz_slice_t name, value;
} kz_http_header_t;

typedef struct kz_http_req {
    int method;              /* enum http_method of libhttp-parser (HTTP_GET, ...) */
    kz_slice_t path;         /* raw path, no query */
    kz_slice_t query;        /* raw query string without '?', may be empty */
    kz_slice_t authorization;
    kz_slice_t origin;
    kz_slice_t content_type;
    kz_slice_t acr_method;   /* Access-Control-Request-Method */
    kz_slice_t acr_headers;  /* Access-Control-Request-Headers */
    kz_slice_t forwarded_for;
    kz_slice_t upgrade;      /* Upgrade header */
    kz_slice_t connection;   /* Connection header */
    kz_slice_t ws_key;       /* Sec-WebSocket-Key */
    kz_slice_t ws_version;   /* Sec-WebSocket-Version */
    kz_http_header_t *headers; /* every header, owned by the exchange (NULL when none) */
    int nheaders;
    char *body;              /* NUL-terminated request body (may be empty, never NULL) */
    size_t body_len;
    bool keep_alive;         /* the connection may serve another request */
} kz_http_req_t;

typedef struct kz_http_resp {
    int status;               /* HTTP status code */
    char *body;               /* owned by the exchange (kz_malloc), may be NULL for empty */
    size_t body_len;
    const char *content_type; /* static string, default application/json */
    char *extra_headers;      /* owned, complete "Name: value\r\n" lines, or NULL */
} kz_http_resp_t;

struct kz_exchange {
    kz_http_req_t req;
    kz_http_resp_t resp;
    int route;          /* route index for metrics (-1 unmatched), set by the dispatcher */
    uint64_t start_ns;  /* monotonic time the request was complete */
    void *user;         /* free for the dispatcher */
    /* private */
    char *_head;               /* owns the bytes the req slices point into */
    struct kz_conn *_conn;     /* NULL once the connection is gone */
    struct kz_io *_io;         /* owning I/O thread */
    kz_exchange_t *_next;      /* completion queue link */
};

/* Called on the I/O thread for every complete request. */
typedef void (*kz_dispatch_fn)(kz_exchange_t *ex, void *arg);

/* Creates the server: config->workers I/O threads, each with its own
 * listener on socket.address:socket.port, and (when metrics.prometheus_port
 * is not 0) a metrics listener on 127.0.0.1 served by the first thread.
 * Binds synchronously so a busy port is reported here. Returns NULL with
 * err set on failure. */
kz_server_t *kz_server_create(const kz_config_t *config, kz_dispatch_fn dispatch, void *arg,
                              char *err, size_t errlen);
/* Starts the I/O threads. */
int kz_server_start(kz_server_t *srv);
/* Graceful stop: close the listeners, let in-flight requests finish (up to
 * a deadline), close idle connections, join the threads. Call from the main
 * thread. */
void kz_server_stop(kz_server_t *srv);
void kz_server_destroy(kz_server_t *srv);
/* The port actually bound (useful when socket.port was 0). */
int kz_server_port(const kz_server_t *srv);

/* Sends ex->resp (or drops it when the client is gone) and frees the
 * exchange. Only on the exchange's I/O thread. */
void kz_exchange_finish(kz_exchange_t *ex);
/* Thread-safe: hands a filled exchange back to its I/O thread, which then
 * calls kz_exchange_finish. */
void kz_exchange_complete(kz_exchange_t *ex);

/* Fills ex->resp; steals body (kz_malloc'd). */
void kz_exchange_set(kz_exchange_t *ex, int status, char *body, size_t len);
/* Appends a "Name: value\r\n" header line to the response. */
void kz_exchange_add_header(kz_exchange_t *ex, const char *name, const char *value);

/* Work handed to a given I/O thread from any thread (realtime delivery). */
typedef struct kz_task kz_task_t;
struct kz_task {
    void (*run)(kz_task_t *task); /* runs on the target I/O thread; owns the task from then */
    kz_task_t *next;              /* private */
};
/* Queues task to I/O thread io and wakes it. Thread-safe. Tasks posted after
 * the thread stopped are run by kz_server_destroy's final drain. */
void kz_server_post(kz_server_t *srv, int io, kz_task_t *task);
/* Number of I/O threads. */
int kz_server_threads(const kz_server_t *srv);
/* Index of the I/O thread the caller runs on, or -1 on any other thread. */
int kz_server_current_thread(void);

/* The reason phrase of an HTTP status. */
const char *kz_http_reason(int status);

#endif
