/* Chat channels: channel ids, and the message history in the store.
 *
 * A channel is a stream (mode, subject, subcontext, label) and its id is
 * that stream as text, Nakama's "<mode>.<subject>.<subcontext>.<label>":
 *   room    2...<name>                         (name 1..64 bytes)
 *   group   3.<group id>..
 *   direct  4.<lower user id>.<higher user id>.  (ids ordered as strings)
 *
 * History rows live in the message table keyed by their stream. Times are
 * unix milliseconds rounded down to the whole second (the resolution
 * clients see), and a listing is ordered by (create_time, id). Message ids
 * are version 7 UUIDs minted at send time, so messages of the same second
 * still list in the order they were sent.
 *
 * The kz_store_* functions block: worker threads only. The channel id
 * functions are pure and run anywhere. */
#ifndef KZ_STORE_MESSAGE_H
#define KZ_STORE_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* Stream modes of the chat channels (Nakama's). */
enum {
    KZ_CHAN_ROOM = 2,
    KZ_CHAN_GROUP = 3,
    KZ_CHAN_DIRECT = 4,
};

/* ChannelMessage.code values: those of the chat itself, and the system
 * messages group membership changes post to the group's channel (sent by
 * the user the change is about, content "{}"). */
enum {
    KZ_MSG_CHAT = 0,
    KZ_MSG_CHAT_UPDATE = 1,
    KZ_MSG_CHAT_REMOVE = 2,
    KZ_MSG_GROUP_JOIN = 3,
    KZ_MSG_GROUP_ADD = 4,
    KZ_MSG_GROUP_LEAVE = 5,
    KZ_MSG_GROUP_KICK = 6,
    KZ_MSG_GROUP_PROMOTE = 7,
    KZ_MSG_GROUP_BAN = 8,
    KZ_MSG_GROUP_DEMOTE = 9,
};

#define KZ_ROOM_NAME_MAX 64
#define KZ_CHANNEL_ID_MAX 160 /* room ids need 69 bytes, direct ones 77; room for the formatter */

/* A parsed channel. Empty components are "". */
typedef struct kz_channel {
    int mode;                         /* KZ_CHAN_* */
    char subject[37];                 /* group id, or the lower user id */
    char subcontext[37];              /* the higher user id */
    char label[KZ_ROOM_NAME_MAX + 1]; /* room name */
    char id[KZ_CHANNEL_ID_MAX];       /* canonical id text */
} kz_channel_t;

/* A room name is 1..64 bytes of valid UTF-8 without control characters. */
bool kz_channel_room_name_valid(const char *name, size_t len);
/* Fills c for a room (false when the name is not valid). */
bool kz_channel_room(kz_channel_t *c, const char *name);
/* Fills c for a group (group_id must be a UUID; it is lower-cased). */
bool kz_channel_group(kz_channel_t *c, const char *group_id);
/* Fills c for the direct channel of two users (UUIDs, lower-cased, ordered). */
bool kz_channel_direct(kz_channel_t *c, const char *user_a, const char *user_b);
/* Parses a channel id; false when it is not a valid one. UUIDs may come in
 * either case; a direct id must list its users in order. c->id is the
 * canonical (lower-case) form. */
bool kz_channel_parse(kz_channel_t *c, const char *id, size_t len);

/* A stored chat message. Strings are owned (kz_message_clear). */
typedef struct kz_message {
    char id[37];
    char sender_id[37];
    char *username;
    char *content; /* JSON object text */
    int code;
    int64_t create_time, update_time; /* unix ms, whole seconds */
} kz_message_t;

void kz_message_clear(kz_message_t *m);
void kz_messages_free(kz_message_t *m, int n);

/* Stores a message of channel c (id, sender, username, content, code and
 * times taken from m as given). */
int kz_store_message_insert(kz_db_t *db, const kz_channel_t *c, const kz_message_t *m);

/* Where messages the store posts on its own (group system messages) go
 * live: set once at start-up by the realtime layer. in_tx: the message is
 * part of an open transaction, to be pushed only once it commits (see
 * kz_db_set_tx_end_hook). */
typedef void (*kz_message_sink_fn)(const kz_channel_t *c, const kz_message_t *m, bool in_tx);
void kz_store_set_message_sink(kz_message_sink_fn fn);

/* Stores a group system message (code KZ_MSG_GROUP_*) about user_id in the
 * group's channel, with user_id as sender and their username, and hands it
 * to the sink. Runs inside the caller's transaction. */
int kz_store_group_message_post(kz_db_t *db, const char *group_id, int code, const char *user_id,
                                int64_t now_ms);

/* Sends a message m of channel c on behalf of the server (the runtime's
 * channel_message_send): stores it when persist, then hands it to the sink
 * like a group system message, so sockets joined to the channel get it
 * live (after the caller's transaction commits, if one is open). */
int kz_store_message_send(kz_db_t *db, const kz_channel_t *c, const kz_message_t *m, bool persist);

/* Replaces the content (and username) of message_id in channel c if
 * sender_id sent it, setting update_time; *create_time (may be NULL)
 * receives the message's creation time. KZ_STORE_NOTFOUND when there is no
 * such message of that sender. */
int kz_store_message_update(kz_db_t *db, const kz_channel_t *c, const char *message_id,
                            const char *sender_id, const char *username, const char *content,
                            int64_t now_ms, int64_t *create_time);

/* Deletes message_id of channel c if sender_id sent it; *create_time as
 * for an update. KZ_STORE_NOTFOUND when there is no such message. */
int kz_store_message_remove(kz_db_t *db, const kz_channel_t *c, const char *message_id,
                            const char *sender_id, int64_t *create_time);

/* Position in a history listing: (create_time, id) of a message; id ""
 * with time 0 is before the first message. */
typedef struct kz_message_pos {
    int64_t create_time;
    const char *id;
} kz_message_pos_t;

/* Up to limit messages of channel c in (create_time, id) order, ascending
 * when asc, else descending, strictly after *from in that order (NULL =
 * from the start of that order). *out is an owned array of *n messages
 * (kz_messages_free). */
int kz_store_messages_list(kz_db_t *db, const kz_channel_t *c, bool asc,
                           const kz_message_pos_t *from, int limit, kz_message_t **out, int *n);

/* *member is true when user_id is a member, admin or superadmin (state
 * 0..2) of group_id and the group is not disabled. */
int kz_store_message_group_member(kz_db_t *db, const char *group_id, const char *user_id,
                                  bool *member);

/* *allowed is true when target_id is an existing user that has not blocked
 * caller_id (who may then open a direct channel with them). */
int kz_store_message_direct_allowed(kz_db_t *db, const char *target_id, const char *caller_id,
                                    bool *allowed);

#endif
