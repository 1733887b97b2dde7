/* WebSocket connections (RFC 6455) on the I/O threads.
 *
 * An HTTP exchange for a WebSocket handshake is upgraded with
 * kz_exchange_upgrade; from then on the connection's bytes go through
 * wslay, which parses (and unmasks) client frames, answers pings and
 * handles the close handshake, and whole messages reach the handler's
 * on_message on the I/O thread.
 *
 * Outgoing data frames are built once into refcounted kz_frame_t buffers
 * (frame header included) so a message fanned out to many sockets is
 * encoded once and shared. A socket queues frame references; the I/O
 * thread writes everything a socket queued during one loop turn with a
 * single vectored write, one write in flight per socket. A socket whose
 * queue passes socket.outgoing_queue_size is a slow consumer and is
 * disconnected, so it never holds anyone else up.
 *
 * Everything here runs on the socket's I/O thread. */
#ifndef KZ_NET_WS_H
#define KZ_NET_WS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kz_ws kz_ws_t;
typedef struct kz_exchange kz_exchange_t;

/* An immutable, refcounted, ready-to-write frame. */
typedef struct kz_frame {
    atomic_int refs;
    size_t len;   /* bytes in data */
    char data[];  /* frame header + payload */
} kz_frame_t;

/* Builds an unmasked server frame (text when !binary) around payload;
 * refs starts at 1. */
kz_frame_t *kz_frame_new(bool binary, const void *payload, size_t len);
kz_frame_t *kz_frame_retain(kz_frame_t *f);
/* Drops a reference; frees at zero. NULL is a no-op. Thread-safe. */
void kz_frame_release(kz_frame_t *f);

typedef struct kz_ws_handler {
    /* The socket is open (called once, before any message). */
    void (*on_open)(kz_ws_t *ws);
    /* A whole message arrived (binary or text). */
    void (*on_message)(kz_ws_t *ws, bool binary, const char *data, size_t len);
    /* The socket is going away (any reason); user state may be freed here. */
    void (*on_close)(kz_ws_t *ws);
} kz_ws_handler_t;

/* The Sec-WebSocket-Key and Upgrade headers of a request, as the HTTP layer
 * captured them. True when the request asks for a WebSocket upgrade. */
bool kz_exchange_wants_upgrade(const kz_exchange_t *ex);

/* Answers the handshake (101) and turns the exchange's connection into a
 * WebSocket whose messages go to h with user attached. On a bad handshake
 * (missing key, wrong version) answers 400 and returns -1. Consumes the
 * exchange either way. I/O thread only. */
int kz_exchange_upgrade(kz_exchange_t *ex, const kz_ws_handler_t *h, void *user);

void *kz_ws_user(const kz_ws_t *ws);
/* Index of the I/O thread that owns the socket. */
int kz_ws_thread(const kz_ws_t *ws);

/* Queues frame f (a reference is taken). Returns false when the socket is
 * closing or was just cut off as a slow consumer. */
bool kz_ws_send(kz_ws_t *ws, kz_frame_t *f);
/* Convenience: frames and queues one message. */
bool kz_ws_send_msg(kz_ws_t *ws, bool binary, const void *payload, size_t len);
/* Starts the close handshake with code and reason; the connection closes
 * once the close frame is out (or after a short wait). */
void kz_ws_close(kz_ws_t *ws, uint16_t code, const char *reason);
/* True once the socket is closing (close queued or the connection
 * failing): nothing more it sent should be acted on. */
bool kz_ws_is_closing(const kz_ws_t *ws);

#endif
