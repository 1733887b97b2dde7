/* Groups (clans) in the store: the groups table and the membership edges in
 * group_edge.
 *
 * A membership is two rows of group_edge with the same state and position:
 * group -> user (source_id = group id) and user -> group (source_id = user
 * id). A ban is a single group -> user row with state KZ_GROUP_BANNED, so a
 * user's own group list never shows it (as in Nakama). position is a unique,
 * increasing nanosecond stamp taken when the edge was made; lists order by
 * (state, position), so the oldest members come first within a role.
 *
 * Every function runs on a worker thread with that worker's connection and
 * takes its own transaction, except kz_store_groups_delete_user which runs
 * inside the caller's. Results: KZ_DB_OK, a positive KZ_GROUP_E* /
 * KZ_STORE_NOTFOUND code, KZ_DB_ECONFLICT (group name in use) or another
 * negative kz_db code. A mutating call first touches the group row
 * (UPDATE ... SET edge_count = edge_count), which on PostgreSQL serializes
 * concurrent changes to one group, so checks such as "the last superadmin"
 * or "the group is full" cannot race. */
#ifndef KZ_STORE_GROUPS_H
#define KZ_STORE_GROUPS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/account.h"
#include "store/db.h"

/* Membership states (Nakama's GroupUserList.GroupUser.State, plus 4). */
enum {
    KZ_GROUP_SUPERADMIN = 0,
    KZ_GROUP_ADMIN = 1,
    KZ_GROUP_MEMBER = 2,
    KZ_GROUP_JOIN_REQUEST = 3,
    KZ_GROUP_BANNED = 4,
};

/* Result codes besides KZ_DB_OK, KZ_STORE_NOTFOUND (no such group) and
 * KZ_DB_ECONFLICT (name in use). */
enum {
    KZ_GROUP_EPERM = 20,            /* the caller's role does not allow it (or no membership) */
    KZ_GROUP_EFULL = 21,            /* edge_count would pass max_count */
    KZ_GROUP_ELAST_SUPERADMIN = 22, /* the last superadmin cannot leave */
    KZ_GROUP_EUSER_NOTFOUND = 23,   /* a user to add does not exist */
    KZ_GROUP_ENOFIELDS = 24,        /* an update with nothing to change */
    KZ_GROUP_ENOTUPDATED = 25,      /* the update matched no row (group disabled or gone) */
};

/* A group row. Strings are owned (free with kz_group_clear); NULL = unset. */
typedef struct kz_group {
    char id[37];
    char creator_id[37];
    char *name;
    char *description;
    char *avatar_url;
    char *lang_tag;
    char *metadata; /* JSON object text */
    bool open;
    int64_t edge_count;
    int64_t max_count;
    int64_t create_time, update_time; /* unix ms */
} kz_group_t;

void kz_group_clear(kz_group_t *g);
/* Frees n groups and the array. */
void kz_groups_free(kz_group_t *g, int n);

/* What a new group is made of (borrowed strings; NULL or "" = default). */
typedef struct kz_group_new {
    const char *creator_id; /* becomes the superadmin */
    const char *name;       /* required, unique */
    const char *description;
    const char *lang_tag; /* default "en" */
    const char *avatar_url;
    const char *metadata; /* JSON object text, default "{}" */
    bool open;
    int64_t max_count; /* >= 1 */
} kz_group_new_t;

/* Creates a group (fresh v4 id) with its creator as superadmin and
 * edge_count 1, and fills *out with the stored row. KZ_DB_ECONFLICT when
 * the name is in use. */
int kz_store_group_create(kz_db_t *db, const kz_group_new_t *in, int64_t now_ms, kz_group_t *out);

/* Loads a group that is not disabled. KZ_STORE_NOTFOUND when there is none. */
int kz_store_group_get(kz_db_t *db, const char *group_id, kz_group_t *out);

/* Fields of an update (borrowed; NULL = unchanged). An empty description
 * or avatar_url clears it; name and lang_tag must not be empty (the API
 * checks). open: -1 unchanged, 0 closed, 1 open. max_count: 0 unchanged. */
typedef struct kz_group_update {
    const char *name;
    const char *description;
    const char *lang_tag;
    const char *avatar_url;
    const char *metadata;
    int open;
    int64_t max_count;
} kz_group_update_t;

/* Updates the group as caller_id (must be superadmin or admin; NULL = the
 * system, no check) and bumps update_time. KZ_GROUP_EPERM, then
 * KZ_GROUP_ENOFIELDS, KZ_GROUP_ENOTUPDATED, KZ_DB_ECONFLICT (name). */
int kz_store_group_update(kz_db_t *db, const char *group_id, const char *caller_id,
                          const kz_group_update_t *u, int64_t now_ms);

/* Deletes the group and every edge of it; caller_id must be a superadmin
 * (NULL = the system). KZ_GROUP_EPERM otherwise (also when there is no
 * such group). */
int kz_store_group_delete(kz_db_t *db, const char *group_id, const char *caller_id);

/* user_id joins: an open group makes it a member, a closed one a join
 * request and a persistent notification (code -5) to every superadmin and
 * admin. An existing relationship of any kind (member, request, ban) is
 * left as it is. *state (may be NULL) receives the user's state afterwards.
 * KZ_STORE_NOTFOUND, KZ_GROUP_EFULL (checked only for newcomers). */
int kz_store_group_join(kz_db_t *db, const char *group_id, const char *user_id, int64_t now_ms,
                        int *state);

/* user_id leaves (a join request is withdrawn the same way). Nothing to do
 * (no relationship, banned, no such group) is success.
 * KZ_GROUP_ELAST_SUPERADMIN when the user is the only superadmin. */
int kz_store_group_leave(kz_db_t *db, const char *group_id, const char *user_id, int64_t now_ms);

/* The caller (superadmin or admin) adds users: newcomers become members,
 * join requests are accepted; each of those gets a persistent notification
 * (code -4). Members, admins, bans and the caller are skipped. All or
 * nothing: KZ_GROUP_EPERM, KZ_GROUP_EUSER_NOTFOUND, KZ_GROUP_EFULL. */
int kz_store_group_users_add(kz_db_t *db, const char *group_id, const char *caller_id,
                             char **user_ids, int n, int64_t now_ms);

/* The caller (superadmin or admin) removes users: a superadmin may remove
 * anyone but the last superadmin, an admin only members, join requests and
 * bans (kicking a ban lifts it). Others and the caller are skipped.
 * KZ_GROUP_EPERM when the caller is neither. */
int kz_store_group_users_kick(kz_db_t *db, const char *group_id, const char *caller_id,
                              char **user_ids, int n, int64_t now_ms);

/* Like kick, but each removed user is left banned (state 4). Users with no
 * relationship to the group are skipped, as in Nakama. */
int kz_store_group_users_ban(kz_db_t *db, const char *group_id, const char *caller_id,
                             char **user_ids, int n, int64_t now_ms);

/* One step up (member -> admin -> superadmin) for targets ranked strictly
 * below the caller; join requests and bans are skipped. */
int kz_store_group_users_promote(kz_db_t *db, const char *group_id, const char *caller_id,
                                 char **user_ids, int n, int64_t now_ms);

/* One step down (superadmin -> admin -> member) for targets ranked at or
 * below the caller, never leaving the group without a superadmin. */
int kz_store_group_users_demote(kz_db_t *db, const char *group_id, const char *caller_id,
                                char **user_ids, int n, int64_t now_ms);

/* ---- Listing ---- */

/* Filters of a group listing (borrowed). name is a LIKE pattern matched
 * case-insensitively and excludes the others; members (-1 = unset) keeps
 * groups with at most that many members; open: -1 unset, 0, 1. */
typedef struct kz_group_filter {
    const char *name;
    const char *lang_tag;
    int64_t members;
    int open;
} kz_group_filter_t;

/* The order a filter lists in (and what a cursor must carry). */
typedef enum {
    KZ_GROUP_ORDER_NAME,    /* name ascending */
    KZ_GROUP_ORDER_SIZE,    /* edge_count descending, id descending (members filter) */
    KZ_GROUP_ORDER_LANG,    /* edge_count ascending, id ascending (lang_tag filter) */
    KZ_GROUP_ORDER_UPDATED, /* update_time ascending, id ascending (open / none) */
} kz_group_order_t;

kz_group_order_t kz_group_filter_order(const kz_group_filter_t *f);

/* Position after which a listing resumes: the sort key of the last group
 * of the previous page (the fields its order uses). */
typedef struct kz_group_pos {
    const char *name;
    int64_t edge_count;
    int64_t update_time;
    const char *id;
} kz_group_pos_t;

/* Up to count groups (at most 1000), disabled ones excepted, picked at
 * random: the ones after a random id, wrapping around to the start. *out
 * is an owned array of *n groups (kz_groups_free). */
int kz_store_groups_random(kz_db_t *db, int count, kz_group_t **out, int *n);

/* Up to limit groups matching f, after *after (NULL = from the start);
 * *out is an owned array of *n groups (kz_groups_free); *more tells
 * whether another page follows. */
int kz_store_groups_list(kz_db_t *db, const kz_group_filter_t *f, const kz_group_pos_t *after,
                         int limit, kz_group_t **out, int *n, bool *more);

/* Position in a membership listing: (state, position) of the last row. */
typedef struct kz_edge_pos {
    int64_t state;
    int64_t position;
} kz_edge_pos_t;

typedef struct kz_group_user {
    kz_user_t user; /* id, profile and times (no identifiers or secrets) */
    int state;
    int64_t position;
} kz_group_user_t;

/* Users of a group by (state, position): state -1 lists states 0..3, else
 * only that state (0..4). *out is owned (kz_group_users_free). A group that
 * does not exist has no users. */
int kz_store_group_users_list(kz_db_t *db, const char *group_id, int state,
                              const kz_edge_pos_t *after, int limit, kz_group_user_t **out, int *n,
                              bool *more);
void kz_group_users_free(kz_group_user_t *u, int n);

typedef struct kz_user_group {
    kz_group_t group;
    int state;
    int64_t position;
} kz_user_group_t;

/* Groups of a user by (state, position), as kz_store_group_users_list. */
int kz_store_user_groups_list(kz_db_t *db, const char *user_id, int state,
                              const kz_edge_pos_t *after, int limit, kz_user_group_t **out, int *n,
                              bool *more);
void kz_user_groups_free(kz_user_group_t *g, int n);

/* ---- Account deletion ---- */

/* Removes every group relationship of user_id (memberships, requests,
 * bans) inside the caller's transaction, keeping edge_count right. Where
 * the user was the only superadmin, the longest-standing admin, or else the
 * longest-standing member, becomes superadmin; a group left with no member
 * at all is deleted. (Nakama 3.x deletes the group instead whenever its last
 * superadmin deletes the account; Kizuna keeps the group for its members.) */
int kz_store_groups_delete_user(kz_db_t *db, const char *user_id);

#endif
