/* Realtime envelopes (their JSON form, realtime/wire.h encodes it for each
 * socket's format): building replies, errors and events,
 * and the handlers of the client message kinds, one file per area. */
#ifndef KZ_REALTIME_ENVELOPE_H
#define KZ_REALTIME_ENVELOPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/ws.h"
#include "realtime/router.h"
#include "store/db.h"
#include "store/message.h"

/* Realtime error codes (Nakama's). */
enum {
    KZ_RT_RUNTIME_EXCEPTION = 0,
    KZ_RT_UNRECOGNIZED_PAYLOAD = 1,
    KZ_RT_MISSING_PAYLOAD = 2,
    KZ_RT_BAD_INPUT = 3,
    KZ_RT_MATCH_NOT_FOUND = 4,
    KZ_RT_MATCH_JOIN_REJECTED = 5,
    KZ_RT_RUNTIME_FUNCTION_NOT_FOUND = 6,
    KZ_RT_RUNTIME_FUNCTION_EXCEPTION = 7,
};

/* {"cid": cid?, key: msg} (msg stolen; key NULL for an empty ack). */
json_t *kz_rt_envelope(const char *cid, const char *key, json_t *msg);
/* Replies on ws, in its wire format: the envelope env (stolen). For many
 * sockets, see kz_rt_out (realtime/wire.h). */
void kz_rt_reply(kz_ws_t *ws, json_t *env);
/* Replies an error envelope (code 0 is omitted from the JSON, as Nakama does). */
void kz_rt_error(kz_ws_t *ws, const char *cid, int code, const char *message);

/* Message input, with protobuf-JSON's rules: every key must be one of the
 * message's fields, by its snake_case or lowerCamelCase name, at most once,
 * with a value of the right type (null counts as absent). kz_rt_fields_read
 * fills out[i] (borrowed, NULL when absent) and returns false on anything
 * else, which is a parse error: the caller then calls kz_rt_parse_error. */
enum { KZ_RT_F_STRING, KZ_RT_F_BOOL, KZ_RT_F_INT64, KZ_RT_F_ARRAY, KZ_RT_F_MAP, KZ_RT_F_OBJECT };
typedef struct kz_rt_field {
    const char *snake, *camel;
    int type; /* KZ_RT_F_*: MAP is an object of strings, OBJECT any object */
} kz_rt_field_t;
bool kz_rt_fields_read(json_t *msg, const kz_rt_field_t *f, int nf, json_t **out);
/* A protobuf-JSON int64: a JSON integer (or integral number), or a string
 * holding a decimal integer. False for anything else or out of range. */
bool kz_rt_int64(const json_t *v, int64_t *out);
/* Closes the socket after a message that does not parse (Nakama's rule). */
void kz_rt_parse_error(kz_ws_t *ws);
/* The UserPresence of a session: user_id, session_id, username. */
json_t *kz_rt_presence_json(const kz_rt_sess_t *s);

/* Blocking work for a realtime message (the store, later Lua): work runs on
 * a worker thread with that worker's database connection, then done runs
 * back on the session's I/O thread (s->ws is NULL there if the socket closed
 * meanwhile). Returns false, having run nothing, when the pool is full. */
typedef void (*kz_rt_work_fn)(kz_db_t *db, void *arg);
typedef void (*kz_rt_done_fn)(kz_rt_sess_t *s, void *arg);
bool kz_rt_submit(kz_rt_sess_t *s, kz_rt_work_fn work, kz_rt_done_fn done, void *arg);

/* A client message handler: runs on the socket's I/O thread with the
 * message object (borrowed). */
typedef void (*kz_rt_handler_fn)(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);

/* realtime/match.c: relayed matches */
void kz_rt_match_create(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_match_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_match_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_match_data_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
/* Registers the match close hook (leave every match on disconnect). */
void kz_rt_match_init(void);

/* realtime/chat.c: chat channels */
void kz_rt_channel_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_channel_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_channel_message_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_channel_message_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_channel_message_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_chat_init(void);
/* A message the store posted to channel c (group system messages): pushed
 * to the channel's members at once (post), or once the transaction it was
 * written in commits (defer, then flush or discard at the transaction's
 * end; per thread). */
void kz_rt_chat_post(const kz_channel_t *c, const kz_message_t *m);
void kz_rt_chat_defer(const kz_channel_t *c, const kz_message_t *m);
void kz_rt_chat_flush(void);
void kz_rt_chat_discard(void);

/* realtime/party.c: parties */
void kz_rt_party_create(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_promote(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_accept(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_close(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_join_request_list(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_data_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_party_init(void);

/* realtime/rpc.c: Lua RPCs */
void kz_rt_rpc(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);

/* realtime/socket.c: a reply env about to go to s (after hooks wait for it). */
void kz_rt_hooks_reply(kz_rt_sess_t *s, json_t *env);

/* realtime/status.c: status presence */
void kz_rt_status_follow(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_status_unfollow(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
void kz_rt_status_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg);
/* The session's socket has opened (its thread): with status=true it comes
 * online for its followers. */
void kz_rt_status_online(kz_rt_sess_t *s);
void kz_rt_status_init(void);
/* Follows (follow) or unfollows user_ids[0..n) (canonical ids of users
 * that exist) for the open session session_id, from any thread: the
 * change runs on the session's I/O thread as the status_follow /
 * status_unfollow messages do (the session's own user is skipped; a follow
 * sends the current presences of the followed users in a `status`
 * envelope without a cid when any are online). KZ_RT_POST_UNKNOWN when no
 * such session is open here, KZ_RT_POST_TOO_MANY when the follow would
 * pass the per-session cap (nothing is changed). */
enum { KZ_RT_POST_OK = 0, KZ_RT_POST_UNKNOWN = 1, KZ_RT_POST_TOO_MANY = 2 };
int kz_rt_status_follow_post(const char *session_id, const char (*user_ids)[37], int n,
                             bool follow);

#endif
