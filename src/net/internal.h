/* Private to net/: the connection and I/O thread structures shared by the
 * HTTP server (server.c) and the WebSocket layer (ws.c). Everything here is
 * touched only on the owning I/O thread, except the fields guarded by
 * kz_io_t.lock. */
#ifndef KZ_NET_INTERNAL_H
#define KZ_NET_INTERNAL_H

#include <http_parser.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "net/http.h"
#include "net/ws.h"

#define KZ_READBUF_SIZE 65536
#define KZ_MAX_HEADERS 100

typedef enum {
    CONN_IDLE,       /* between requests; idle timer running */
    CONN_READING,    /* a request has started arriving; read timer running */
    CONN_DISPATCHED, /* a complete request is being served; not reading */
    CONN_WRITING,    /* a response is being written; write timer running */
    CONN_WEBSOCKET,  /* upgraded: frames go through conn->ws */
    CONN_CLOSING,    /* uv_close issued */
} conn_state_t;

typedef struct hdr_off {
    uint32_t name, name_len, val, val_len; /* offsets into the head buffer */
} hdr_off_t;

typedef struct kz_conn {
    uv_tcp_t tcp;             /* must stay first: handle->data is not needed to find us */
    uv_timer_t timer;         /* read, write or idle deadline, by state */
    http_parser parser;
    struct kz_io *io;
    conn_state_t state;
    bool is_metrics;          /* accepted on the metrics listener */
    bool keep_alive;          /* the response in flight leaves the connection open */
    bool feeding;             /* conn_feed is on the stack */
    int open_handles;         /* handles not yet closed; freed at zero */
    struct kz_conn *prev, *next; /* the I/O thread's connection list */
    kz_exchange_t *ex;        /* the exchange out for this connection, if any */

    /* Request being parsed; all NULL while idle, so an idle connection holds
     * no buffers. */
    char *head;               /* url and header bytes, bounded by max_header_bytes */
    uint32_t head_len, head_cap;
    hdr_off_t *hdrs;
    int nhdrs;
    bool in_value;            /* last header callback was a value */
    uint32_t url_len;
    char *body;
    size_t body_len, body_cap;
    int reject;               /* status to answer with when the parser was stopped (413, 431) */

    char *pending;            /* bytes read past a complete request (pipelining) */
    size_t pending_len;

    uv_write_t wreq;
    char *out;                /* response being written */
    struct kz_ws *ws;         /* WebSocket state once upgraded */
} kz_conn_t;

typedef struct kz_io {
    int index;
    kz_server_t *srv;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listener;
    uv_tcp_t metrics_listener;
    bool has_metrics;
    uv_async_t wake;          /* completions and the stop request */
    uv_timer_t stop_timer;    /* forces connections closed after the grace period */
    pthread_mutex_t lock;     /* guards done_head/done_tail/stop_requested */
    kz_exchange_t *done_head, *done_tail;
    kz_task_t *task_head, *task_tail; /* posted by kz_server_post, guarded by lock */
    bool stop_requested;
    bool stopping;            /* listeners closed, draining */
    int outstanding;          /* exchanges handed to the dispatcher and not yet finished */
    kz_conn_t *conns;         /* all open connections */
    uv_check_t flush_check;   /* after each poll: write what WebSockets queued */
    struct kz_ws *flush_head; /* WebSockets with frames queued and no write in flight */
    char readbuf[KZ_READBUF_SIZE]; /* shared by every connection of this thread */
} kz_io_t;

struct kz_server {
    const kz_config_t *cfg;
    kz_dispatch_fn dispatch;
    void *arg;
    int nio;
    kz_io_t **ios;
    int port;
    bool started;
};


/* Closes the connection at a safe point (server.c). */
void kz_conn_close(kz_conn_t *c);
/* Arms the connection's timer (server.c). */
void kz_conn_arm(kz_conn_t *c, int ms, uv_timer_cb cb);
/* Upgrade plumbing (ws.c): starts WebSocket mode on c with data already
 * read past the handshake; feeds read bytes; releases the state. */
int kz_ws_start(kz_conn_t *c, const kz_ws_handler_t *h, void *user, const char *extra, size_t extra_len);
void kz_ws_feed(kz_conn_t *c, const char *data, size_t len);
void kz_ws_free(kz_conn_t *c);
/* Tells the socket's handler, once, that the connection is going away. */
void kz_ws_closing(kz_conn_t *c);
/* Frees an exchange and what it owns (server.c). */
void kz_exchange_free(kz_exchange_t *ex);
/* The I/O thread's flush pass: writes what each WebSocket queued this turn. */
void kz_ws_flush_all(kz_io_t *io);

#endif
