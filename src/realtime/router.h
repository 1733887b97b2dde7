/* The realtime router: connected sessions, and delivery of ready frames to
 * them from any thread.
 *
 * A session lives on the I/O thread that owns its socket. kz_rt_send from
 * that thread queues the frame on the socket at once; from any other thread
 * it posts a small task to the owner's queue (one wake-up covers many).
 * kz_rt_send_many fans one envelope out to many sessions with one task per
 * I/O thread. It is encoded once per wire format in use among the
 * recipients; the frames are refcounted and shared, never copied per
 * recipient.
 *
 * Sessions are refcounted: the registry holds one reference while the
 * socket is open, and whoever keeps a session pointer (a match's member
 * list, a queued delivery) holds another. After the socket closes, sends to
 * it are dropped. */
#ifndef KZ_REALTIME_ROUTER_H
#define KZ_REALTIME_ROUTER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "net/ws.h"
#include "realtime/wire.h"

struct kz_app;

typedef struct kz_rt_sess {
    atomic_int refs;
    const struct kz_app *app;
    char id[37];        /* session id (server-made) */
    char uid[37];       /* user id */
    char username[129];
    char lang[32];
    bool status;        /* appears online to followers (status=true) */
    bool protobuf;      /* speaks protobuf Envelopes (format=protobuf) */
    int64_t exp;        /* the session token's expiry (unix seconds) */
    json_t *vars;       /* the token's session vars (object of strings), or NULL; set at open, then read-only */
    int io;             /* owning I/O thread */
    kz_ws_t *ws;        /* owning thread only; NULL once the socket closed */
    /* Lua realtime hooks (realtime/socket.c), owning thread only: while a
     * before hook runs, later envelopes wait in order; after hooks wait
     * for the reply with their cid. */
    struct kz_rt_held *held;
    struct kz_rt_after *afters;
    /* private: registry chains */
    struct kz_rt_sess *_by_user, *_by_id;
} kz_rt_sess_t;

kz_rt_sess_t *kz_rt_sess_retain(kz_rt_sess_t *s);
/* Drops a reference; frees at zero. NULL is a no-op. Any thread. */
void kz_rt_sess_release(kz_rt_sess_t *s);

/* Creates a session for a socket about to open on I/O thread io, and
 * registers it (the registry's reference is the one returned). */
kz_rt_sess_t *kz_rt_sess_open(const struct kz_app *app, int io, const char *uid, const char *username,
                              const char *lang, bool status, bool protobuf);
/* On the owning thread when the socket closes: runs the close hooks,
 * unregisters, and drops the registry's reference. */
void kz_rt_sess_close(kz_rt_sess_t *s);

/* From any thread: closes s's socket (if still open) with code and reason
 * on its own I/O thread, after what was already sent to it. */
void kz_rt_sess_disconnect(kz_rt_sess_t *s, int code, const char *reason);

/* Something to undo when a session closes (leave matches, channels, ...),
 * called on the session's thread before it is unregistered. Register at
 * start-up, before any socket opens. */
typedef void (*kz_rt_close_hook)(kz_rt_sess_t *s);
void kz_rt_add_close_hook(kz_rt_close_hook hook);

/* Queues out, in s's wire format, for s. Any thread (the one that owns
 * out). */
void kz_rt_send(kz_rt_sess_t *s, kz_rt_out_t *out);
/* Queues out for each of n sessions, each in its own wire format, with one
 * task per I/O thread. Any thread (the one that owns out). */
void kz_rt_send_many(kz_rt_sess_t *const *s, int n, kz_rt_out_t *out);

/* The open sessions of a user: an owned array of retained sessions
 * (release each, then kz_free the array); returns the count. */
int kz_rt_user_sessions(const char *uid, kz_rt_sess_t ***out);
/* The open session with this id, retained, or NULL. */
kz_rt_sess_t *kz_rt_session_find(const char *id);
/* Number of open sessions. */
int kz_rt_session_count(void);

#endif
