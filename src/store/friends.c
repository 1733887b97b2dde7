/* Friends in the store: see store/friends.h. The SQL is the common subset of
 * SQLite and PostgreSQL; times are unix milliseconds.
 *
 * Concurrency. SQLite runs one writer at a time, so a transaction sees a
 * stable world. PostgreSQL runs READ COMMITTED: what a transaction read may
 * change before it writes. Every write is therefore guarded so that a stale
 * read cannot corrupt anything: accepting an invite updates both rows only
 * while they still are an invite (and checks that two rows changed), a new
 * pair of rows collides with the unique (source_id, destination_id) key if
 * someone created one meanwhile, and a count update must find its user. A
 * guard that trips, a unique violation, a deadlock or a serialization
 * failure rolls the whole transaction back and runs it again. */
#include "store/friends.h"

#include <jansson.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "store/notification.h"

/* How many times a write transaction runs before a conflict is reported. */
#define FRIENDS_TX_ATTEMPTS 5

/* Public profile columns of users, in the order user_from_cols reads them. */
#define PROFILE_COLUMNS(p)                                                                         \
    p "id, " p "username, " p "display_name, " p "avatar_url, " p "lang_tag, " p "location, " p    \
      "timezone, " p "metadata, " p "facebook_id, " p "google_id, " p "gamecenter_id, " p           \
      "steam_id, " p "apple_id, " p "facebook_instant_game_id, " p "edge_count, " p                \
      "create_time, " p "update_time"
#define PROFILE_NCOLS 17

/* Fills u from PROFILE_COLUMNS starting at column first. */
static void user_from_cols(kz_dbrows_t *r, int first, kz_user_t *u)
{
    memset(u, 0, sizeof *u);
    kz_db_text_id(r, first, u->id);
    char **fields[] = {&u->username,    &u->display_name, &u->avatar_url,  &u->lang_tag,
                       &u->location,    &u->timezone,     &u->metadata,    &u->facebook_id,
                       &u->google_id,   &u->gamecenter_id, &u->steam_id,   &u->apple_id,
                       &u->facebook_instant_game_id};
    for (int i = 0; i < 13; i++) *fields[i] = kz_db_text_dup(r, first + 1 + i);
    u->edge_count = kz_db_int(r, first + 14);
    u->create_time = kz_db_int(r, first + 15);
    u->update_time = kz_db_int(r, first + 16);
}

/* A new edge position: unix nanoseconds, strictly increasing within the
 * process, so a user's rows never share (state, position) and lists keep
 * the order in which the edges were made. */
static int64_t next_position(void)
{
    static _Atomic int64_t last;
    int64_t now = kz_now_ns();
    int64_t prev = atomic_load(&last);
    for (;;) {
        int64_t v = now > prev ? now : prev + 1;
        if (atomic_compare_exchange_weak(&last, &prev, v)) return v;
    }
}

/* Sets *mine and *theirs to the states of the rows me -> them and them ->
 * me, -1 where there is none. One statement, so one snapshot: on
 * PostgreSQL two separate reads could straddle another transaction's
 * commit and see half of a pair. */
static int edge_pair(kz_db_t *db, const char *me, const char *them, int *mine, int *theirs)
{
    kz_dbval_t p[] = {KZ_DBTEXT(me), KZ_DBTEXT(them)};
    kz_dbrows_t *r;
    int rc = kz_db_query(db,
                         "SELECT source_id, state FROM user_edge WHERE "
                         "(source_id = $1 AND destination_id = $2) OR (source_id = $2 AND destination_id = $1)",
                         p, 2, &r);
    if (rc != KZ_DB_OK) return rc;
    *mine = *theirs = -1;
    while ((rc = kz_db_next(r)) == 1) {
        const char *src = kz_db_text(r, 0, NULL);
        int state = (int)kz_db_int(r, 1);
        if (src && strcmp(src, me) == 0)
            *mine = state;
        else
            *theirs = state;
    }
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* Sets *exists to whether user id exists. */
static int user_exists(kz_db_t *db, const char *id, bool *exists)
{
    kz_dbval_t p[] = {KZ_DBTEXT(id)};
    kz_dbrows_t *r;
    int rc = kz_db_query(db, "SELECT 1 FROM users WHERE id = $1", p, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    *exists = rc == 1;
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* Moves user id's edge_count by delta and bumps its update_time. A user that
 * vanished meanwhile makes the transaction conflict (it is run again). */
static int move_count(kz_db_t *db, const char *id, int delta, int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(id), KZ_DBINT(delta), KZ_DBINT(now_ms)};
    int64_t changed = 0;
    int rc = kz_db_exec(db, "UPDATE users SET edge_count = edge_count + $2, update_time = $3 WHERE id = $1",
                        p, 3, &changed);
    if (rc == KZ_DB_OK && changed != 1) rc = KZ_DB_ECONFLICT;
    return rc;
}

/* Moves the counts of a and b by one each, in id order so that two
 * transactions touching the same pair lock the rows in the same order. */
static int move_counts(kz_db_t *db, const char *a, const char *b, int delta, int64_t now_ms)
{
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    int rc = move_count(db, a, delta, now_ms);
    if (rc == KZ_DB_OK) rc = move_count(db, b, delta, now_ms);
    return rc;
}

/* Inserts the row src -> dst. */
static int insert_edge(kz_db_t *db, const char *src, const char *dst, int state, int64_t position,
                       const char *metadata, int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(src), KZ_DBINT(position), KZ_DBINT(now_ms), KZ_DBTEXT(dst),
                      KZ_DBINT(state), KZ_DBTEXT(metadata ? metadata : "{}")};
    return kz_db_exec(db,
                      "INSERT INTO user_edge (source_id, position, update_time, destination_id, state, "
                      "metadata) VALUES ($1, $2, $3, $4, $5, $6)",
                      p, 6, NULL);
}

/* Runs body(db, arg) in a write transaction, again when it conflicts. */
static int in_tx(kz_db_t *db, int (*body)(kz_db_t *db, void *arg), void *arg)
{
    int rc = KZ_DB_EERROR;
    for (int attempt = 0; attempt < FRIENDS_TX_ATTEMPTS; attempt++) {
        rc = kz_db_begin(db);
        if (rc != KZ_DB_OK) return rc;
        rc = body(db, arg);
        if (rc == KZ_DB_OK) rc = kz_db_commit(db);
        if (rc == KZ_DB_OK) return rc;
        kz_db_rollback(db);
        if (rc != KZ_DB_ECONFLICT && rc != KZ_DB_EBUSY) return rc;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Add                                                                      */

typedef struct add_job {
    const char *user_id;
    char **ids;
    int n;
    const char *metadata;
    int64_t now_ms;
    kz_friends_added_t res;
} add_job_t;

/* Sends the -2 / -3 notification for a new invite / an acceptance. */
static int notify(kz_db_t *db, const char *from_id, const char *from_name, const char *to_id, bool accept)
{
    json_t *c = json_pack("{s:s}", "username", from_name);
    char *content = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    char *subject = accept ? kz_asprintf("%s accepted your friend request", from_name)
                           : kz_asprintf("%s wants to add you as a friend", from_name);
    kz_notification_t nt = {
        .user_id = to_id,
        .subject = subject,
        .content = content,
        .code = accept ? KZ_NOTIFY_FRIEND_ACCEPT : KZ_NOTIFY_FRIEND_REQUEST,
        .sender_id = from_id,
        .persistent = true,
        .create_time = 0, /* now, so that the id orders it after older ones */
    };
    int rc = kz_store_notifications_add(db, &nt, 1);
    kz_free(subject);
    free(content);
    return rc;
}

/* Merges the keys of metadata (a JSON object) into the row src -> dst. */
static int merge_metadata(kz_db_t *db, const char *src, const char *dst, const char *metadata)
{
    json_t *add = json_loads(metadata, 0, NULL);
    if (!json_is_object(add) || json_object_size(add) == 0) {
        json_decref(add);
        return KZ_DB_OK;
    }
    kz_dbval_t p[] = {KZ_DBTEXT(src), KZ_DBTEXT(dst)};
    kz_dbrows_t *r;
    int rc = kz_db_query(db, "SELECT metadata FROM user_edge WHERE source_id = $1 AND destination_id = $2",
                         p, 2, &r);
    if (rc != KZ_DB_OK) {
        json_decref(add);
        return rc;
    }
    json_t *old = NULL;
    if ((rc = kz_db_next(r)) == 1) {
        size_t len;
        const char *s = kz_db_text(r, 0, &len);
        if (s) old = json_loadb(s, len, 0, NULL);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        json_decref(add);
        json_decref(old);
        return rc;
    }
    if (!json_is_object(old)) {
        json_decref(old);
        old = json_object();
    }
    json_object_update(old, add);
    char *merged = json_dumps(old, JSON_COMPACT);
    json_decref(old);
    json_decref(add);
    kz_dbval_t u[] = {KZ_DBTEXT(src), KZ_DBTEXT(dst), KZ_DBTEXT(merged)};
    rc = kz_db_exec(db, "UPDATE user_edge SET metadata = $3 WHERE source_id = $1 AND destination_id = $2", u,
                    3, NULL);
    free(merged);
    return rc;
}

/* Adds one friend (see kz_store_friends_add) inside the open transaction. */
static int add_one(kz_db_t *db, add_job_t *job, const char *my_name, const char *them)
{
    const char *me = job->user_id;
    if (strcmp(me, them) == 0) return KZ_DB_OK;
    int mine, theirs;
    int rc = edge_pair(db, me, them, &mine, &theirs);
    if (rc != KZ_DB_OK) return rc;
    if (mine == KZ_FRIEND_BLOCKED || theirs == KZ_FRIEND_BLOCKED) return KZ_DB_OK;

    if (mine == KZ_FRIEND_INVITE_RECEIVED && theirs == KZ_FRIEND_INVITE_SENT) {
        /* Accept: both rows turn to friends, only while they still are the
         * invite this transaction saw. */
        kz_dbval_t p[] = {KZ_DBTEXT(me), KZ_DBTEXT(them), KZ_DBINT(job->now_ms)};
        int64_t changed = 0;
        rc = kz_db_exec(db,
                        "UPDATE user_edge SET state = 0, update_time = $3 WHERE "
                        "(source_id = $1 AND destination_id = $2 AND state = 2) OR "
                        "(source_id = $2 AND destination_id = $1 AND state = 1)",
                        p, 3, &changed);
        if (rc == KZ_DB_OK && changed != 2) rc = KZ_DB_ECONFLICT;
        if (rc == KZ_DB_OK && job->metadata) rc = merge_metadata(db, me, them, job->metadata);
        if (rc == KZ_DB_OK) rc = notify(db, me, my_name, them, true);
        if (rc == KZ_DB_OK) job->res.accepted++;
        return rc;
    }
    /* Friends already, or an invite either way already there: nothing to do. */
    if (mine >= 0 || theirs >= 0) return KZ_DB_OK;

    bool exists = false;
    rc = user_exists(db, them, &exists);
    if (rc != KZ_DB_OK || !exists) return rc;
    /* The pair shares one position (as in Nakama). Rows go in source id
     * order, so two users inviting each other at once collide on the same
     * key first and one of them runs again, then accepts. */
    int64_t pos = next_position();
    bool me_first = strcmp(me, them) < 0;
    const char *src1 = me_first ? me : them, *src2 = me_first ? them : me;
    int st1 = me_first ? KZ_FRIEND_INVITE_SENT : KZ_FRIEND_INVITE_RECEIVED;
    const char *md1 = me_first ? job->metadata : NULL, *md2 = me_first ? NULL : job->metadata;
    rc = insert_edge(db, src1, src2, st1, pos, md1, job->now_ms);
    if (rc == KZ_DB_OK) rc = insert_edge(db, src2, src1, 3 - st1, pos, md2, job->now_ms);
    if (rc == KZ_DB_OK) rc = move_counts(db, me, them, +1, job->now_ms);
    if (rc == KZ_DB_OK) rc = notify(db, me, my_name, them, false);
    if (rc == KZ_DB_OK) job->res.invited++;
    return rc;
}

static int add_body(kz_db_t *db, void *arg)
{
    add_job_t *job = arg;
    job->res = (kz_friends_added_t){0, 0};
    kz_dbval_t p[] = {KZ_DBTEXT(job->user_id)};
    kz_dbrows_t *r;
    int rc = kz_db_query(db, "SELECT username FROM users WHERE id = $1", p, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    char *my_name = NULL;
    rc = kz_db_next(r);
    if (rc == 1) my_name = kz_db_text_dup(r, 0);
    kz_db_rows_free(r);
    if (rc < 0) return rc;
    if (!my_name) return KZ_STORE_NOTFOUND;
    rc = KZ_DB_OK;
    for (int i = 0; i < job->n && rc == KZ_DB_OK; i++) rc = add_one(db, job, my_name, job->ids[i]);
    kz_free(my_name);
    return rc;
}

int kz_store_friends_add(kz_db_t *db, const char *user_id, char **ids, int n, const char *metadata,
                         int64_t now_ms, kz_friends_added_t *res)
{
    add_job_t job = {user_id, ids, n, metadata && *metadata ? metadata : NULL, now_ms, {0, 0}};
    int rc = in_tx(db, add_body, &job);
    if (res) *res = rc == KZ_DB_OK ? job.res : (kz_friends_added_t){0, 0};
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Delete and block                                                         */

typedef struct pair_job {
    const char *user_id;
    char **ids;
    int n;
    int64_t now_ms;
} pair_job_t;

/* Removes the other user's row to me unless it is a block, and lowers their
 * count when one went. */
static int drop_their_edge(kz_db_t *db, const char *me, const char *them, int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(them), KZ_DBTEXT(me)};
    int64_t gone = 0;
    int rc = kz_db_exec(db, "DELETE FROM user_edge WHERE source_id = $1 AND destination_id = $2 AND state <> 3",
                        p, 2, &gone);
    if (rc == KZ_DB_OK && gone) rc = move_count(db, them, -1, now_ms);
    return rc;
}

static int delete_body(kz_db_t *db, void *arg)
{
    pair_job_t *job = arg;
    int rc = KZ_DB_OK;
    for (int i = 0; i < job->n && rc == KZ_DB_OK; i++) {
        const char *me = job->user_id, *them = job->ids[i];
        if (strcmp(me, them) == 0) continue;
        kz_dbval_t p[] = {KZ_DBTEXT(me), KZ_DBTEXT(them)};
        int64_t gone = 0;
        rc = kz_db_exec(db, "DELETE FROM user_edge WHERE source_id = $1 AND destination_id = $2", p, 2, &gone);
        if (rc == KZ_DB_OK && gone) rc = move_count(db, me, -1, job->now_ms);
        if (rc == KZ_DB_OK) rc = drop_their_edge(db, me, them, job->now_ms);
    }
    return rc;
}

int kz_store_friends_delete(kz_db_t *db, const char *user_id, char **ids, int n, int64_t now_ms)
{
    pair_job_t job = {user_id, ids, n, now_ms};
    return in_tx(db, delete_body, &job);
}

static int block_body(kz_db_t *db, void *arg)
{
    pair_job_t *job = arg;
    int rc = KZ_DB_OK;
    for (int i = 0; i < job->n && rc == KZ_DB_OK; i++) {
        const char *me = job->user_id, *them = job->ids[i];
        if (strcmp(me, them) == 0) continue;
        kz_dbval_t p[] = {KZ_DBTEXT(me), KZ_DBTEXT(them), KZ_DBINT(job->now_ms)};
        int64_t changed = 0;
        rc = kz_db_exec(db,
                        "UPDATE user_edge SET state = 3, update_time = $3 WHERE source_id = $1 AND "
                        "destination_id = $2",
                        p, 3, &changed);
        if (rc != KZ_DB_OK) break;
        if (changed == 0) {
            bool exists = false;
            rc = user_exists(db, them, &exists);
            if (rc != KZ_DB_OK) break;
            if (!exists) continue;
            rc = insert_edge(db, me, them, KZ_FRIEND_BLOCKED, next_position(), NULL, job->now_ms);
            if (rc == KZ_DB_OK) rc = move_count(db, me, +1, job->now_ms);
        }
        if (rc == KZ_DB_OK) rc = drop_their_edge(db, me, them, job->now_ms);
    }
    return rc;
}

int kz_store_friends_block(kz_db_t *db, const char *user_id, char **ids, int n, int64_t now_ms)
{
    pair_job_t job = {user_id, ids, n, now_ms};
    return in_tx(db, block_body, &job);
}

bool kz_store_friends_blocked(kz_db_t *db, const char *a, const char *b)
{
    kz_dbval_t p[] = {KZ_DBTEXT(a), KZ_DBTEXT(b)};
    kz_dbrows_t *r;
    int rc = kz_db_query(db,
                         "SELECT count(*) FROM user_edge WHERE state = 3 AND "
                         "((source_id = $1 AND destination_id = $2) OR (source_id = $2 AND destination_id = $1))",
                         p, 2, &r);
    if (rc != KZ_DB_OK) return true;
    rc = kz_db_next(r);
    bool blocked = rc != 1 || kz_db_int(r, 0) > 0;
    kz_db_rows_free(r);
    return blocked;
}

/* ------------------------------------------------------------------------ */
/* Lists                                                                    */

void kz_friends_free(kz_friend_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        kz_user_clear(&v[i].user);
        kz_free(v[i].metadata);
    }
    kz_free(v);
}

int kz_store_friends_list(kz_db_t *db, const char *user_id, int state, int limit,
                          const kz_friend_pos_t *from, kz_friend_t **out, int *n,
                          kz_friend_pos_t *next, bool *has_next)
{
    *out = NULL;
    *n = 0;
    *has_next = false;
    if (limit < 1) return KZ_DB_OK;
    kz_dbval_t p[5];
    int np = 0;
    char sql[1024];
    size_t len = (size_t)snprintf(sql, sizeof sql,
                                  "SELECT " PROFILE_COLUMNS("u.") ", e.state, e.position, e.update_time, "
                                  "e.metadata FROM user_edge e JOIN users u ON u.id = e.destination_id "
                                  "WHERE e.source_id = $1");
    p[np++] = KZ_DBTEXT(user_id);
    if (state >= 0) {
        p[np++] = KZ_DBINT(state);
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND e.state = $%d", np);
    }
    if (from) {
        p[np++] = KZ_DBINT(from->state);
        p[np++] = KZ_DBINT(from->position);
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " AND (e.state > $%d OR (e.state = $%d AND e.position >= $%d))", np - 1,
                                np - 1, np);
    }
    p[np++] = KZ_DBINT((int64_t)limit + 1);
    snprintf(sql + len, sizeof sql - len, " ORDER BY e.state, e.position LIMIT $%d", np);
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    *out = kz_calloc((size_t)limit < 64 ? (size_t)limit : 64, sizeof **out);
    int cap = limit < 64 ? limit : 64;
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == limit) {
            next->state = (int)kz_db_int(r, PROFILE_NCOLS);
            next->position = kz_db_int(r, PROFILE_NCOLS + 1);
            *has_next = true;
            break;
        }
        if (*n == cap) {
            cap *= 2;
            *out = kz_realloc(*out, sizeof **out * (size_t)cap);
        }
        kz_friend_t *f = &(*out)[(*n)++];
        user_from_cols(r, 0, &f->user);
        f->user.edge_count = 0; /* Nakama's friend list leaves it out */
        f->state = (int)kz_db_int(r, PROFILE_NCOLS);
        f->update_time = kz_db_int(r, PROFILE_NCOLS + 2);
        f->metadata = kz_db_text_dup(r, PROFILE_NCOLS + 3);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        kz_friends_free(*out, *n);
        *out = NULL;
        *n = 0;
        *has_next = false;
        return rc;
    }
    return KZ_DB_OK;
}

void kz_friends_of_friends_free(kz_friend_of_friend_t *v, int n)
{
    for (int i = 0; i < n; i++) kz_user_clear(&v[i].user);
    kz_free(v);
}

int kz_store_friends_of_friends(kz_db_t *db, const char *user_id, int limit, const kz_fof_pos_t *from,
                                kz_friend_of_friend_t **out, int *n, kz_fof_pos_t *next,
                                bool *has_next)
{
    *out = NULL;
    *n = 0;
    *has_next = false;
    if (limit < 1) return KZ_DB_OK;
    /* m: my friendships; f: my friends' friendships; u: who they lead to.
     * Not me, not already my friend, no block either way. */
    static const char base[] =
        "SELECT f.source_id, " PROFILE_COLUMNS("u.") " FROM user_edge m"
        " JOIN user_edge f ON f.source_id = m.destination_id AND f.state = 0"
        " JOIN users u ON u.id = f.destination_id"
        " WHERE m.source_id = $1 AND m.state = 0 AND f.destination_id <> $1"
        " AND NOT EXISTS (SELECT 1 FROM user_edge x WHERE x.source_id = $1"
        " AND x.destination_id = f.destination_id AND x.state IN (0, 3))"
        " AND NOT EXISTS (SELECT 1 FROM user_edge y WHERE y.source_id = f.destination_id"
        " AND y.destination_id = $1 AND y.state = 3)";
    kz_dbval_t p[4];
    int np = 0;
    char sql[1536];
    size_t len = (size_t)snprintf(sql, sizeof sql, "%s", base);
    p[np++] = KZ_DBTEXT(user_id);
    if (from) {
        p[np++] = KZ_DBTEXT(from->referrer);
        p[np++] = KZ_DBTEXT(from->user_id);
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " AND (f.source_id > $2 OR (f.source_id = $2 AND f.destination_id >= $3))");
    }
    p[np++] = KZ_DBINT((int64_t)limit + 1);
    snprintf(sql + len, sizeof sql - len, " ORDER BY f.source_id, f.destination_id LIMIT $%d", np);
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    *out = kz_calloc((size_t)limit, sizeof **out);
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == limit) {
            kz_db_text_id(r, 0, next->referrer);
            kz_db_text_id(r, 1, next->user_id);
            *has_next = true;
            break;
        }
        kz_friend_of_friend_t *f = &(*out)[(*n)++];
        kz_db_text_id(r, 0, f->referrer);
        user_from_cols(r, 1, &f->user);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        kz_friends_of_friends_free(*out, *n);
        *out = NULL;
        *n = 0;
        *has_next = false;
        return rc;
    }
    return KZ_DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Account deletion                                                         */

int kz_store_friends_delete_user(kz_db_t *db, const char *user_id)
{
    /* Each other user has at most one row pointing at user_id (unique
     * source/destination), so one less each. */
    kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBINT(kz_now_ms())};
    int rc = kz_db_exec(db,
                        "UPDATE users SET edge_count = edge_count - 1, update_time = $2 WHERE id IN "
                        "(SELECT source_id FROM user_edge WHERE destination_id = $1 AND source_id <> $1)",
                        p, 2, NULL);
    if (rc == KZ_DB_OK)
        rc = kz_db_exec(db, "DELETE FROM user_edge WHERE source_id = $1 OR destination_id = $1", p, 1, NULL);
    if (rc == KZ_DB_OK) rc = kz_db_exec(db, "UPDATE users SET edge_count = 0 WHERE id = $1", p, 1, NULL);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* By id, metadata                                                          */

int kz_store_friends_get(kz_db_t *db, const char *user_id, char **ids, int nids, kz_friend_t **out,
                         int *n)
{
    *out = NULL;
    *n = 0;
    if (nids <= 0) return KZ_DB_OK;
    static const char head[] =
        "SELECT " PROFILE_COLUMNS("u.") ", e.state, e.position, e.update_time, e.metadata"
        " FROM user_edge e JOIN users u ON u.id = e.destination_id"
        " WHERE e.source_id = $1 AND e.destination_id IN (";
    size_t cap = sizeof head + 64 + (size_t)nids * 8;
    char *sql = kz_malloc(cap);
    size_t len = (size_t)snprintf(sql, cap, "%s", head);
    kz_dbval_t *p = kz_malloc(sizeof *p * (size_t)(nids + 1));
    int np = 0;
    p[np++] = KZ_DBTEXT(user_id);
    for (int i = 0; i < nids; i++) {
        p[np++] = KZ_DBTEXT(ids[i]);
        len += (size_t)snprintf(sql + len, cap - len, "%s$%d", i ? "," : "", np);
    }
    snprintf(sql + len, cap - len, ") ORDER BY e.state, e.position");
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    kz_free(sql);
    kz_free(p);
    if (rc != KZ_DB_OK) return rc;
    int ocap = 0;
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == ocap) {
            ocap = ocap ? ocap * 2 : 8;
            *out = kz_realloc(*out, sizeof **out * (size_t)ocap);
        }
        kz_friend_t *f = &(*out)[(*n)++];
        user_from_cols(r, 0, &f->user);
        f->user.edge_count = 0;
        f->state = (int)kz_db_int(r, PROFILE_NCOLS);
        f->update_time = kz_db_int(r, PROFILE_NCOLS + 2);
        f->metadata = kz_db_text_dup(r, PROFILE_NCOLS + 3);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        kz_friends_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    return KZ_DB_OK;
}

int kz_store_friend_metadata_update(kz_db_t *db, const char *user_id, const char *friend_id,
                                    const char *metadata, int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBTEXT(friend_id),
                      KZ_DBTEXT(metadata ? metadata : "{}"), KZ_DBINT(now_ms)};
    int64_t affected = 0;
    int rc = kz_db_exec(db,
                        "UPDATE user_edge SET metadata = $3, update_time = $4"
                        " WHERE source_id = $1 AND destination_id = $2",
                        p, 4, &affected);
    if (rc != KZ_DB_OK) return rc;
    return affected ? KZ_DB_OK : KZ_STORE_NOTFOUND;
}
