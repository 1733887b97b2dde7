/* libkzclient internals shared by conn.c, http.c and ws.c. */
#ifndef KZ_CLIENT_INTERNAL_H
#define KZ_CLIENT_INTERNAL_H

#include <http_parser.h>
#include <netinet/in.h>
#include <wslay/wslay.h>

#include "client/client.h"
#include "core/alloc.h"

enum kzc_kind { KZC_HTTP, KZC_WS };

enum kzc_state {
    KZC_IDLE,       /* no socket (HTTP between connections, WS before connecting) */
    KZC_CONNECTING, /* TCP connect in progress */
    KZC_READY,      /* HTTP: connected; WS: upgrade request sent, waiting for 101 */
    KZC_OPEN,       /* WS: open */
    KZC_CLOSING,    /* WS: close frame queued, waiting for the peer's */
    KZC_DONE,       /* WS: over (on_close ran or is running) */
};

/* One TCP socket. Allocated apart from the connection so an HTTP
 * connection can drop a socket the server closed and open a new one before
 * libuv has finished closing the old handle. */
typedef struct kzc_sock {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct kzc_conn *owner; /* NULL once detached (closing) */
    size_t backlog;         /* bytes handed to uv_write and not yet written */
} kzc_sock_t;

struct kzc_conn {
    uv_timer_t timer;       /* timeouts, deferred errors, close wait, idle close */
    uv_loop_t *loop;
    kzc_sock_t *sock;       /* the current socket, or NULL */
    uint8_t kind;           /* enum kzc_kind */
    uint8_t state;          /* enum kzc_state */
    bool freed;             /* kzc_free ran: no more callbacks, memory goes at timer close */
    bool reused;            /* HTTP: the socket already carried a response */
    bool got_bytes;         /* HTTP: some of the current response arrived */
    bool skip_accept;       /* WS: the header being parsed is Sec-WebSocket-Accept */
    char *host;             /* owned copies of the target */
    char *source;
    int port, timeout_ms, idle_ms;
    size_t max_body, max_backlog;
    struct sockaddr_in6 dst; /* resolved destination (v4 or v6) */
    kzc_io_stats_t io;
    char err[64];           /* deferred error reported by the timer */

    /* HTTP request / upgrade response */
    http_parser parser;
    char *req;              /* the request bytes, kept until the first response byte (retry) */
    size_t req_len;
    kzc_http_cb cb;         /* the request in flight, or NULL */
    void *arg;
    char *body;             /* response body so far */
    size_t blen, bcap;
    bool body_too_large;
    bool message_done;
    char hname[24];         /* header name being parsed (truncated; only short names matter) */
    size_t hname_len;
    bool hname_done;
    char accept[32];        /* WS: Sec-WebSocket-Accept received */
    size_t accept_len;
    bool accept_seen;

    /* WebSocket */
    const kzc_ws_cbs_t *cbs;
    char key[25];           /* Sec-WebSocket-Key sent */
    wslay_event_context_ptr ctx; /* only while a message or a close is in progress */
    bool feeding;           /* inside wslay_event_recv: wslay's sends wait for after_wslay */
    const uint8_t *in;      /* bytes being fed to wslay (borrowed) */
    size_t in_len;
    uint64_t fr_left;       /* payload bytes of the current frame still to come */
    uint8_t fhdr[14];       /* current frame header while incomplete */
    uint8_t fhdr_len;
    bool in_message;        /* a fragmented data message is in progress */
    int close_code;         /* code we sent with kzc_ws_close, 0 if none */
};

/* conn.c */
extern uint64_t kzc__tcp_open, kzc__allocated;
kzc_conn_t *kzc__conn_new(uv_loop_t *loop, const kzc_target_t *t, int kind);
/* Starts connecting (the socket becomes c->sock, state CONNECTING). On
 * failure to even start, schedules the error and returns -1. */
int kzc__connect(kzc_conn_t *c);
/* Writes data (copied when the kernel does not take it at once). Returns 0,
 * or -1 when the socket failed or the backlog bound was passed (the caller
 * then fails the connection with c->err). */
int kzc__write(kzc_conn_t *c, const void *data, size_t len);
/* Closes the current socket (if any). */
void kzc__drop_sock(kzc_conn_t *c);
/* The same, but bytes still queued on it are written first (at most ms
 * longer): the connection lets go of the socket at once either way. */
void kzc__drop_sock_after_write(kzc_conn_t *c, int ms);
/* Reports err from the loop (timer at 0 ms): see kzc__on_timer. */
void kzc__defer_error(kzc_conn_t *c, const char *err);
/* For the Host header: "[" and "]" around an IPv6 literal, else "". */
const char *kzc__host_open(const kzc_conn_t *c);
const char *kzc__host_close(const kzc_conn_t *c);
/* Arms the connection's timer for ms. */
void kzc__arm(kzc_conn_t *c, int ms);

/* Dispatch from conn.c into http.c / ws.c. */
void kzc__http_on_connect(kzc_conn_t *c);
void kzc__http_on_read(kzc_conn_t *c, const char *data, size_t len);
void kzc__http_on_eof(kzc_conn_t *c, const char *err);
void kzc__http_on_timer(kzc_conn_t *c);
void kzc__ws_on_connect(kzc_conn_t *c);
void kzc__ws_on_read(kzc_conn_t *c, const char *data, size_t len);
void kzc__ws_on_eof(kzc_conn_t *c, const char *err);
void kzc__ws_on_timer(kzc_conn_t *c);
void kzc__ws_release(kzc_conn_t *c);

#endif
