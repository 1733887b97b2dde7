/* Notifications in the store. Other areas (friends, groups) create them with
 * kz_store_notifications_add inside their own transaction; the API lists and
 * deletes them. Pushing them live over the socket comes with the realtime
 * work. */
#ifndef KZ_STORE_NOTIFICATION_H
#define KZ_STORE_NOTIFICATION_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* System notification codes (Nakama's, negative and reserved). */
enum {
    KZ_NOTIFY_DM_REQUEST = -1,
    KZ_NOTIFY_FRIEND_REQUEST = -2,
    KZ_NOTIFY_FRIEND_ACCEPT = -3,
    KZ_NOTIFY_GROUP_ADD = -4,
    KZ_NOTIFY_GROUP_JOIN_REQUEST = -5,
    KZ_NOTIFY_FRIEND_JOIN = -6,
    KZ_NOTIFY_SINGLE_SOCKET = -7,
    KZ_NOTIFY_USER_BANNED = -8,
    KZ_NOTIFY_FRIEND_REMOVE = -9,
};

typedef struct kz_notification {
    char id[37];          /* filled by kz_store_notifications_add when empty */
    const char *user_id;  /* recipient */
    const char *subject;
    const char *content;  /* JSON object text */
    int code;
    const char *sender_id; /* NULL for the system (stored as the nil UUID) */
    bool persistent;      /* only persistent ones are stored */
    int64_t create_time;  /* unix ms, filled when 0 */
} kz_notification_t;

/* Where stored notifications go live (the realtime layer registers it at
 * start-up): in_tx says they were written inside a transaction, so they
 * must wait for its end (kz_db_set_tx_end_hook). */
typedef void (*kz_notification_sink_fn)(const kz_notification_t *n, int count, bool in_tx);
void kz_store_set_notification_sink(kz_notification_sink_fn fn);

/* Stores the persistent ones among n notifications (the caller may hold a
 * transaction). Returns KZ_DB_OK or a kz_db error. */
int kz_store_notifications_add(kz_db_t *db, kz_notification_t *n, int count);

/* A stored notification as listed. Strings are owned (free the array with
 * kz_stored_notifications_free). */
typedef struct kz_stored_notification {
    char id[37];
    char sender_id[37]; /* "" when the system sent it (stored as the nil UUID) */
    char *subject;
    char *content;
    int code;
    int64_t create_time; /* unix ms */
    char user_id[37];    /* the recipient: filled by kz_store_notifications_get only */
} kz_stored_notification_t;

void kz_stored_notifications_free(kz_stored_notification_t *v, int n);

/* Lists up to limit notifications of user_id in (create_time, id) order,
 * starting strictly after the position (after_time, after_id); after_id ""
 * or NULL starts at the beginning. *out is an owned array of *n entries. */
int kz_store_notifications_list(kz_db_t *db, const char *user_id, int limit, int64_t after_time,
                                const char *after_id, kz_stored_notification_t **out, int *n);

/* Deletes those of the ids (borrowed array of n) that belong to user_id;
 * others are left alone. *deleted (may be NULL) receives the count. */
int kz_store_notifications_delete(kz_db_t *db, const char *user_id, char **ids, int n,
                                  int64_t *deleted);

/* The stored notifications among ids (borrowed array of n), those of
 * user_id only unless it is NULL or "", in (create_time, id) order; each
 * entry's user_id is filled. *out is an owned array of *n entries. */
int kz_store_notifications_get(kz_db_t *db, char **ids, int n, const char *user_id,
                               kz_stored_notification_t **out, int *count);

/* A change to one stored notification: the fields that are non-NULL
 * replace the stored ones (content is JSON object text, sender_id a user
 * id or "" for the system). */
typedef struct kz_notification_update {
    const char *id;
    const char *subject;
    const char *content;
    const char *sender_id;
} kz_notification_update_t;

/* Applies n updates in one transaction; KZ_STORE_NOTFOUND (nothing
 * changed) when one of the ids is not a stored notification, and *missing
 * (may be NULL) is then its index. */
int kz_store_notifications_update(kz_db_t *db, const kz_notification_update_t *u, int n,
                                  int *missing);

/* Sends the notification tmpl (its user_id and id are ignored) to every
 * user but the system user, in batches of batch users (1..10000) ordered
 * by id, one transaction per batch: persistent ones are stored, and all go
 * live through the sink when their batch commits. *sent (may be NULL)
 * receives the number of recipients. A failed batch stops the run (the
 * batches before it stay sent). */
int kz_store_notifications_send_all(kz_db_t *db, const kz_notification_t *tmpl, int batch,
                                    int64_t *sent);

/* Account deletion: removes every notification user_id received. Runs in the
 * caller's transaction (opens none). */
int kz_store_notifications_delete_user(kz_db_t *db, const char *user_id);

#endif
