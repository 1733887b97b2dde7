/* Friends in the store: one user_edge row per direction, as Nakama keeps them.
 *
 * States (Nakama's Friend.State): 0 mutual friends, 1 invite sent, 2 invite
 * received, 3 blocked. An invite is the pair (A->B 1, B->A 2); accepting it
 * turns both rows to 0. Blocking sets the blocker's row to 3 and removes the
 * other side's row unless that one is a block too.
 *
 * users.edge_count counts the rows a user is the source of, whatever their
 * state, exactly as Nakama does: friends, invites sent and received, and the
 * users they blocked. Every change moves the count (and update_time) of the
 * user whose row appeared or went away, in the same transaction.
 *
 * Friend requests and acceptances create persistent notifications (codes -2
 * and -3) in the same transaction as the edge change.
 *
 * Every function runs on a worker thread with that worker's connection and
 * returns KZ_DB_OK, KZ_STORE_NOTFOUND or a negative kz_db code. The write
 * functions open their own transaction and retry it a few times when a
 * concurrent change made it conflict. */
#ifndef KZ_STORE_FRIENDS_H
#define KZ_STORE_FRIENDS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/account.h"
#include "store/db.h"

enum {
    KZ_FRIEND_MUTUAL = 0,
    KZ_FRIEND_INVITE_SENT = 1,
    KZ_FRIEND_INVITE_RECEIVED = 2,
    KZ_FRIEND_BLOCKED = 3,
};

/* What kz_store_friends_add did. */
typedef struct kz_friends_added {
    int invited;  /* new invites sent (a -2 notification each) */
    int accepted; /* invites of the other user accepted (a -3 notification each) */
} kz_friends_added_t;

/* Adds user_id's friends among ids (borrowed array of n lower-case UUIDs).
 * For each id: when that user invited user_id, both rows become friends
 * (0) and the inviter gets a -3 notification; when there is no relation
 * yet and the user exists, an invite pair (1 / 2) is created and the other
 * user gets a -2 notification. Skipped silently: user_id itself, unknown
 * users, a block in either direction, a relation that already exists.
 * metadata (JSON object text, may be NULL) goes on user_id's new row, or is
 * merged key by key into it when accepting. Notifications carry the caller's
 * current username: subject "<name> wants to add you as a friend" /
 * "<name> accepted your friend request", content {"username":"<name>"}.
 * KZ_STORE_NOTFOUND when user_id itself does not exist. res may be NULL. */
int kz_store_friends_add(kz_db_t *db, const char *user_id, char **ids, int n, const char *metadata,
                         int64_t now_ms, kz_friends_added_t *res);

/* Removes the relations between user_id and each of ids: user_id's row
 * whatever its state (so this also lifts a block), and the other user's
 * row unless it is a block of user_id. */
int kz_store_friends_delete(kz_db_t *db, const char *user_id, char **ids, int n, int64_t now_ms);

/* Blocks each of ids (unknown users and user_id itself are skipped): user_id's
 * row becomes 3 (created when missing), the other user's row is removed
 * unless it is a block too. */
int kz_store_friends_block(kz_db_t *db, const char *user_id, char **ids, int n, int64_t now_ms);

/* True when a has blocked b or b has blocked a. On a store error it answers
 * true (fail closed: a message is better dropped than sent past a block). */
bool kz_store_friends_blocked(kz_db_t *db, const char *a, const char *b);

/* One entry of a friend list. user holds the public profile fields (its
 * edge_count is left 0, as Nakama's friend list omits it). */
typedef struct kz_friend {
    kz_user_t user;
    int state;
    int64_t update_time; /* of the edge, unix ms */
    char *metadata;      /* the caller's edge metadata (owned) */
} kz_friend_t;

/* A position in a friend list: lists are ordered by (state, position). */
typedef struct kz_friend_pos {
    int state;
    int64_t position;
} kz_friend_pos_t;

/* Lists user_id's edges, state -1 for all or 0..3 for one, from position
 * *from (inclusive; NULL = the start), at most limit entries. *out is an
 * owned array of *n (kz_friends_free). *has_next tells whether more follow,
 * and *next is then the position of the first of them. */
int kz_store_friends_list(kz_db_t *db, const char *user_id, int state, int limit,
                          const kz_friend_pos_t *from, kz_friend_t **out, int *n,
                          kz_friend_pos_t *next, bool *has_next);
void kz_friends_free(kz_friend_t *v, int n);

/* user_id's edges to those of ids (borrowed array of n lower-case UUIDs)
 * it has one to, whatever their state, in list order (state, position):
 * Nakama's friend status lookup. *out is an owned array of *n
 * (kz_friends_free). */
int kz_store_friends_get(kz_db_t *db, const char *user_id, char **ids, int nids, kz_friend_t **out,
                         int *n);

/* Replaces the metadata (JSON object text; NULL = {}) of user_id's edge to
 * friend_id, whatever its state, and sets its update_time.
 * KZ_STORE_NOTFOUND when there is no such edge. */
int kz_store_friend_metadata_update(kz_db_t *db, const char *user_id, const char *friend_id,
                                    const char *metadata, int64_t now_ms);

/* One friend of a friend: user is a friend of referrer, one of the caller's
 * friends. */
typedef struct kz_friend_of_friend {
    char referrer[37];
    kz_user_t user;
} kz_friend_of_friend_t;

/* A position in the friends-of-friends list, ordered by (referrer, user). */
typedef struct kz_fof_pos {
    char referrer[37];
    char user_id[37];
} kz_fof_pos_t;

/* Lists the friends (state 0) of user_id's friends that are not user_id,
 * not already user_id's friends, and not blocked in either direction; one
 * entry per (referrer, user) pair. Paging as kz_store_friends_list. */
int kz_store_friends_of_friends(kz_db_t *db, const char *user_id, int limit, const kz_fof_pos_t *from,
                                kz_friend_of_friend_t **out, int *n, kz_fof_pos_t *next,
                                bool *has_next);
void kz_friends_of_friends_free(kz_friend_of_friend_t *v, int n);

/* Account deletion: removes every edge to or from user_id and lowers the
 * edge_count of each user who had a row pointing at it. Runs in the
 * caller's transaction (opens none). */
int kz_store_friends_delete_user(kz_db_t *db, const char *user_id);

#endif
