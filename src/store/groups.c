/* Groups in the store: create, update, delete, membership changes with
 * Nakama's role rules, listings, and cleanup on account deletion. See
 * store/groups.h for the edge layout and the result codes. */
#include "store/groups.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/message.h"
#include "store/notification.h"

#define GROUP_COLUMNS                                                                              \
    "id, creator_id, name, description, avatar_url, lang_tag, metadata, state, edge_count, "       \
    "max_count, create_time, update_time"
#define GROUP_NCOLUMNS 12

/* Same columns, qualified with the alias g (for joins). */
#define GROUP_COLUMNS_G                                                                            \
    "g.id, g.creator_id, g.name, g.description, g.avatar_url, g.lang_tag, g.metadata, g.state, "   \
    "g.edge_count, g.max_count, g.create_time, g.update_time"

/* The public profile of a user (what the User message carries). */
#define MEMBER_COLUMNS                                                                             \
    "u.id, u.username, u.display_name, u.avatar_url, u.lang_tag, u.location, u.timezone, "         \
    "u.metadata, u.facebook_id, u.google_id, u.gamecenter_id, u.steam_id, u.apple_id, "            \
    "u.facebook_instant_game_id, u.edge_count, u.create_time, u.update_time"
#define MEMBER_NCOLUMNS 17

/* The two rows of one membership. */
#define EDGE_PAIR                                                                                  \
    "((source_id = $1 AND destination_id = $2) OR (source_id = $2 AND destination_id = $1))"

/* ------------------------------------------------------------------------ */
/* Rows                                                                     */

void kz_group_clear(kz_group_t *g)
{
    kz_free(g->name);
    kz_free(g->description);
    kz_free(g->avatar_url);
    kz_free(g->lang_tag);
    kz_free(g->metadata);
    memset(g, 0, sizeof *g);
}

void kz_groups_free(kz_group_t *g, int n)
{
    for (int i = 0; i < n; i++)
        kz_group_clear(&g[i]);
    kz_free(g);
}

void kz_group_users_free(kz_group_user_t *u, int n)
{
    for (int i = 0; i < n; i++)
        kz_user_clear(&u[i].user);
    kz_free(u);
}

void kz_user_groups_free(kz_user_group_t *g, int n)
{
    for (int i = 0; i < n; i++)
        kz_group_clear(&g[i].group);
    kz_free(g);
}

/* Fills g from GROUP_COLUMNS starting at column c. */
static void group_from_row(kz_dbrows_t *r, int c, kz_group_t *g)
{
    memset(g, 0, sizeof *g);
    kz_db_text_id(r, c, g->id);
    kz_db_text_id(r, c + 1, g->creator_id);
    g->name = kz_db_text_dup(r, c + 2);
    g->description = kz_db_text_dup(r, c + 3);
    g->avatar_url = kz_db_text_dup(r, c + 4);
    g->lang_tag = kz_db_text_dup(r, c + 5);
    g->metadata = kz_db_text_dup(r, c + 6);
    g->open = kz_db_int(r, c + 7) == 0;
    g->edge_count = kz_db_int(r, c + 8);
    g->max_count = kz_db_int(r, c + 9);
    g->create_time = kz_db_int(r, c + 10);
    g->update_time = kz_db_int(r, c + 11);
}

/* Fills u from MEMBER_COLUMNS starting at column 0. */
static void member_from_row(kz_dbrows_t *r, kz_user_t *u)
{
    memset(u, 0, sizeof *u);
    kz_db_text_id(r, 0, u->id);
    char **fields[] = {&u->username,
                       &u->display_name,
                       &u->avatar_url,
                       &u->lang_tag,
                       &u->location,
                       &u->timezone,
                       &u->metadata,
                       &u->facebook_id,
                       &u->google_id,
                       &u->gamecenter_id,
                       &u->steam_id,
                       &u->apple_id,
                       &u->facebook_instant_game_id};
    for (int i = 0; i < 13; i++)
        *fields[i] = kz_db_text_dup(r, i + 1);
    u->edge_count = kz_db_int(r, 14);
    u->create_time = kz_db_int(r, 15);
    u->update_time = kz_db_int(r, 16);
}

/* ------------------------------------------------------------------------ */
/* Small statements                                                         */

/* A unique, increasing edge position: the wall clock in nanoseconds, moved
 * past the last one handed out in this process so two edges made in the
 * same nanosecond never share (source_id, state, position). */
static int64_t next_position(void)
{
    static _Atomic int64_t last;
    int64_t now = kz_now_ns();
    int64_t prev = atomic_load(&last);
    for (;;) {
        int64_t want = now > prev ? now : prev + 1;
        if (atomic_compare_exchange_weak(&last, &prev, want)) return want;
    }
}

/* Runs a query returning at most one row and reads column 0 as an integer
 * into *out. KZ_STORE_NOTFOUND when there is no row. */
static int query_int(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np, int64_t *out)
{
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    if (rc == 1) {
        *out = kz_db_int(r, 0);
        rc = KZ_DB_OK;
    } else if (rc == 0) {
        rc = KZ_STORE_NOTFOUND;
    }
    kz_db_rows_free(r);
    return rc;
}

/* Like query_int for a text column; *out is owned (NULL for SQL NULL). */
static int query_text(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np, char **out)
{
    kz_dbrows_t *r;
    *out = NULL;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    if (rc == 1) {
        *out = kz_db_text_dup(r, 0);
        rc = KZ_DB_OK;
    } else if (rc == 0) {
        rc = KZ_STORE_NOTFOUND;
    }
    kz_db_rows_free(r);
    return rc;
}

/* Takes the group's row lock for the rest of the transaction (a no-op
 * update; PostgreSQL then queues other writers of this group behind us,
 * SQLite already has one writer at a time). KZ_STORE_NOTFOUND when the
 * group does not exist or is disabled. */
static int lock_group(kz_db_t *db, const char *group_id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id)};
    int64_t n = 0;
    int rc = kz_db_exec(
        db, "UPDATE groups SET edge_count = edge_count WHERE id = $1 AND disable_time = 0", p, 1,
        &n);
    if (rc == KZ_DB_OK && n == 0) rc = KZ_STORE_NOTFOUND;
    return rc;
}

/* The state of user_id in the group (the group -> user edge, so bans
 * count), or -1 when there is none. */
static int member_state(kz_db_t *db, const char *group_id, const char *user_id, int *state)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBTEXT(user_id)};
    int64_t s = -1;
    int rc = query_int(
        db, "SELECT state FROM group_edge WHERE source_id = $1 AND destination_id = $2", p, 2, &s);
    if (rc == KZ_STORE_NOTFOUND) rc = KZ_DB_OK, s = -1;
    *state = (int)s;
    return rc;
}

/* Number of superadmins of the group other than user_id. */
static int other_superadmins(kz_db_t *db, const char *group_id, const char *user_id, int64_t *n)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBTEXT(user_id)};
    return query_int(db,
                     "SELECT count(*) FROM group_edge WHERE source_id = $1 AND state = 0 AND "
                     "destination_id <> $2",
                     p, 2, n);
}

/* Inserts the two rows of a membership in state. */
static int edges_insert(kz_db_t *db, const char *group_id, const char *user_id, int state,
                        int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBTEXT(user_id), KZ_DBINT(state),
                      KZ_DBINT(next_position()), KZ_DBINT(now_ms)};
    return kz_db_exec(
        db,
        "INSERT INTO group_edge (source_id, destination_id, state, position, update_time) "
        "VALUES ($1, $2, $3, $4, $5), ($2, $1, $3, $4, $5)",
        p, 5, NULL);
}

/* Moves both rows of a membership to state. */
static int edges_set_state(kz_db_t *db, const char *group_id, const char *user_id, int state,
                           int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBTEXT(user_id), KZ_DBINT(state), KZ_DBINT(now_ms)};
    return kz_db_exec(db, "UPDATE group_edge SET state = $3, update_time = $4 WHERE " EDGE_PAIR, p,
                      4, NULL);
}

/* Removes every row between the group and the user (membership or ban). */
static int edges_delete(kz_db_t *db, const char *group_id, const char *user_id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBTEXT(user_id)};
    return kz_db_exec(db, "DELETE FROM group_edge WHERE " EDGE_PAIR, p, 2, NULL);
}

/* Adds one member to edge_count, refusing to pass max_count
 * (KZ_GROUP_EFULL), and bumps update_time. */
static int count_up(kz_db_t *db, const char *group_id, int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBINT(now_ms)};
    int64_t n = 0;
    int rc = kz_db_exec(db,
                        "UPDATE groups SET edge_count = edge_count + 1, update_time = $2 "
                        "WHERE id = $1 AND edge_count < max_count",
                        p, 2, &n);
    if (rc == KZ_DB_OK && n == 0) rc = KZ_GROUP_EFULL;
    return rc;
}

/* Removes one member from edge_count and bumps update_time. */
static int count_down(kz_db_t *db, const char *group_id, int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBINT(now_ms)};
    return kz_db_exec(
        db, "UPDATE groups SET edge_count = edge_count - 1, update_time = $2 WHERE id = $1", p, 2,
        NULL);
}

/* Deletes the group row and all of its edges. */
static int group_delete_all(kz_db_t *db, const char *group_id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(group_id)};
    int rc = kz_db_exec(db, "DELETE FROM group_edge WHERE source_id = $1 OR destination_id = $1", p,
                        1, NULL);
    if (rc == KZ_DB_OK) rc = kz_db_exec(db, "DELETE FROM groups WHERE id = $1", p, 1, NULL);
    return rc;
}

/* Ends the transaction: commits on KZ_DB_OK, else rolls back and keeps rc. */
static int finish(kz_db_t *db, int rc)
{
    if (rc == KZ_DB_OK) return kz_db_commit(db);
    kz_db_rollback(db);
    return rc;
}

/* Compact JSON text of a flat object of two string pairs (owned). */
static char *json_pairs(const char *k1, const char *v1, const char *k2, const char *v2)
{
    json_t *o = json_object();
    json_object_set_new(o, k1, json_string(v1 ? v1 : ""));
    json_object_set_new(o, k2, json_string(v2 ? v2 : ""));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *out = kz_strdup(s);
    free(s);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Create, read, update, delete                                             */

int kz_store_group_create(kz_db_t *db, const kz_group_new_t *in, int64_t now_ms, kz_group_t *out)
{
    memset(out, 0, sizeof *out);
    char id[37];
    kz_uuid_v4(id);
    const char *lang = in->lang_tag && *in->lang_tag ? in->lang_tag : "en";
    const char *meta = in->metadata && *in->metadata ? in->metadata : "{}";
    const char *desc = in->description && *in->description ? in->description : NULL;
    const char *avatar = in->avatar_url && *in->avatar_url ? in->avatar_url : NULL;
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    kz_dbval_t p[] = {KZ_DBTEXT(id),   KZ_DBTEXT(in->creator_id),  KZ_DBTEXT(in->name),
                      KZ_DBTEXT(desc), KZ_DBTEXT(avatar),          KZ_DBTEXT(lang),
                      KZ_DBTEXT(meta), KZ_DBINT(in->open ? 0 : 1), KZ_DBINT(in->max_count),
                      KZ_DBINT(now_ms)};
    rc = kz_db_exec(
        db,
        "INSERT INTO groups (id, creator_id, name, description, avatar_url, lang_tag, metadata, "
        "state, edge_count, max_count, create_time, update_time) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $10)",
        p, 10, NULL);
    if (rc == KZ_DB_OK) rc = edges_insert(db, id, in->creator_id, KZ_GROUP_SUPERADMIN, now_ms);
    rc = finish(db, rc);
    if (rc != KZ_DB_OK) return rc;
    memcpy(out->id, id, sizeof id);
    snprintf(out->creator_id, sizeof out->creator_id, "%s", in->creator_id);
    out->name = kz_strdup(in->name);
    out->description = kz_strdup(desc);
    out->avatar_url = kz_strdup(avatar);
    out->lang_tag = kz_strdup(lang);
    out->metadata = kz_strdup(meta);
    out->open = in->open;
    out->edge_count = 1;
    out->max_count = in->max_count;
    out->create_time = out->update_time = now_ms;
    return KZ_DB_OK;
}

int kz_store_group_get(kz_db_t *db, const char *group_id, kz_group_t *out)
{
    memset(out, 0, sizeof *out);
    kz_dbval_t p[] = {KZ_DBTEXT(group_id)};
    kz_dbrows_t *r;
    int rc = kz_db_query(
        db, "SELECT " GROUP_COLUMNS " FROM groups WHERE id = $1 AND disable_time = 0", p, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    if (rc == 1) {
        group_from_row(r, 0, out);
        rc = KZ_DB_OK;
    } else if (rc == 0) {
        rc = KZ_STORE_NOTFOUND;
    }
    kz_db_rows_free(r);
    return rc;
}

/* Checks inside the open transaction that caller_id (NULL = the system,
 * which acts as a superadmin) holds at most role max_state in the group,
 * whose row it locks first. *caller_state receives the caller's state.
 * KZ_GROUP_EPERM when not (or when the group does not exist). */
static int check_role(kz_db_t *db, const char *group_id, const char *caller_id, int max_state,
                      int *caller_state)
{
    *caller_state = KZ_GROUP_SUPERADMIN;
    int rc = lock_group(db, group_id);
    if (rc == KZ_STORE_NOTFOUND) return caller_id ? KZ_GROUP_EPERM : KZ_STORE_NOTFOUND;
    if (rc != KZ_DB_OK || !caller_id) return rc;
    rc = member_state(db, group_id, caller_id, caller_state);
    if (rc == KZ_DB_OK && (*caller_state < 0 || *caller_state > max_state)) rc = KZ_GROUP_EPERM;
    return rc;
}

int kz_store_group_update(kz_db_t *db, const char *group_id, const char *caller_id,
                          const kz_group_update_t *u, int64_t now_ms)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    int cs;
    rc = check_role(db, group_id, caller_id, KZ_GROUP_ADMIN, &cs);
    if (rc == KZ_STORE_NOTFOUND)
        rc = KZ_GROUP_ENOTUPDATED; /* the system updating a missing group */
    if (rc != KZ_DB_OK) return finish(db, rc);

    /* Column names are fixed here; values are bound. */
    char sets[512];
    size_t len = 0;
    kz_dbval_t p[10];
    int np = 0;
    p[np++] = KZ_DBTEXT(group_id);
    p[np++] = KZ_DBINT(now_ms);
    int nsets = 0;
#define SET_TEXT(col, v, empty_is_null)                                                            \
    do {                                                                                           \
        if (!(v)) break;                                                                           \
        nsets++;                                                                                   \
        if ((empty_is_null) && !*(v)) {                                                            \
            len += (size_t)snprintf(sets + len, sizeof sets - len, ", " col " = NULL");            \
        } else {                                                                                   \
            p[np++] = KZ_DBTEXT(v);                                                                \
            len += (size_t)snprintf(sets + len, sizeof sets - len, ", " col " = $%d", np);         \
        }                                                                                          \
    } while (0)
    SET_TEXT("name", u->name, false);
    SET_TEXT("lang_tag", u->lang_tag, false);
    SET_TEXT("description", u->description, true);
    SET_TEXT("avatar_url", u->avatar_url, true);
    SET_TEXT("metadata", u->metadata, false);
#undef SET_TEXT
    if (u->open >= 0) {
        nsets++;
        p[np++] = KZ_DBINT(u->open ? 0 : 1);
        len += (size_t)snprintf(sets + len, sizeof sets - len, ", state = $%d", np);
    }
    if (u->max_count > 0) {
        nsets++;
        p[np++] = KZ_DBINT(u->max_count);
        len += (size_t)snprintf(sets + len, sizeof sets - len, ", max_count = $%d", np);
    }
    if (nsets == 0) return finish(db, KZ_GROUP_ENOFIELDS);
    char sql[768];
    snprintf(sql, sizeof sql,
             "UPDATE groups SET update_time = $2%s WHERE id = $1 AND disable_time = 0", sets);
    int64_t changed = 0;
    rc = kz_db_exec(db, sql, p, np, &changed);
    if (rc == KZ_DB_OK && changed == 0) rc = KZ_GROUP_ENOTUPDATED;
    return finish(db, rc);
}

int kz_store_group_delete(kz_db_t *db, const char *group_id, const char *caller_id)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    int cs;
    rc = check_role(db, group_id, caller_id, KZ_GROUP_SUPERADMIN, &cs);
    if (rc == KZ_STORE_NOTFOUND)
        rc = KZ_DB_OK; /* the system deleting a missing group: nothing to do */
    else if (rc == KZ_DB_OK)
        rc = group_delete_all(db, group_id);
    return finish(db, rc);
}

/* ------------------------------------------------------------------------ */
/* Join and leave                                                           */

/* Stores a join-request notification from user_id to every superadmin and
 * admin of the group. */
static int notify_join_request(kz_db_t *db, const char *group_id, const char *user_id,
                               int64_t now_ms)
{
    char *username = NULL;
    kz_dbval_t pu[] = {KZ_DBTEXT(user_id)};
    int rc = query_text(db, "SELECT username FROM users WHERE id = $1", pu, 1, &username);
    if (rc == KZ_STORE_NOTFOUND) rc = KZ_DB_OK;
    if (rc != KZ_DB_OK) return rc;

    char **admins = NULL;
    int n = 0, cap = 0;
    kz_dbval_t pg[] = {KZ_DBTEXT(group_id)};
    kz_dbrows_t *r;
    rc = kz_db_query(
        db,
        "SELECT destination_id FROM group_edge WHERE source_id = $1 AND state >= 0 AND state <= 1 "
        "ORDER BY state, position",
        pg, 1, &r);
    if (rc == KZ_DB_OK) {
        while ((rc = kz_db_next(r)) == 1) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                admins = kz_realloc(admins, sizeof *admins * (size_t)cap);
            }
            admins[n++] = kz_db_text_dup(r, 0);
        }
        kz_db_rows_free(r);
        rc = rc < 0 ? rc : KZ_DB_OK;
    }
    if (rc == KZ_DB_OK && n > 0) {
        char *content = json_pairs("group_id", group_id, "username", username);
        char *subject = kz_asprintf("User %s wants to join your group", username ? username : "");
        kz_notification_t *notes = kz_calloc((size_t)n, sizeof *notes);
        for (int i = 0; i < n; i++)
            notes[i] = (kz_notification_t){.user_id = admins[i],
                                           .subject = subject,
                                           .content = content,
                                           .code = KZ_NOTIFY_GROUP_JOIN_REQUEST,
                                           .sender_id = user_id,
                                           .persistent = true,
                                           .create_time = now_ms};
        rc = kz_store_notifications_add(db, notes, n);
        kz_free(notes);
        kz_free(subject);
        kz_free(content);
    }
    for (int i = 0; i < n; i++)
        kz_free(admins[i]);
    kz_free(admins);
    kz_free(username);
    return rc;
}

int kz_store_group_join(kz_db_t *db, const char *group_id, const char *user_id, int64_t now_ms,
                        int *state)
{
    int dummy;
    if (!state) state = &dummy;
    *state = -1;
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    rc = lock_group(db, group_id);
    if (rc == KZ_DB_OK) rc = member_state(db, group_id, user_id, state);
    if (rc != KZ_DB_OK || *state >= 0) return finish(db, rc); /* already related: nothing to do */

    kz_group_t g;
    rc = kz_store_group_get(db, group_id, &g);
    if (rc != KZ_DB_OK) return finish(db, rc);
    bool open = g.open, full = g.edge_count >= g.max_count;
    kz_group_clear(&g);
    if (full) return finish(db, KZ_GROUP_EFULL);
    if (open) {
        rc = edges_insert(db, group_id, user_id, KZ_GROUP_MEMBER, now_ms);
        if (rc == KZ_DB_OK) rc = count_up(db, group_id, now_ms);
        if (rc == KZ_DB_OK) rc = kz_store_group_message_post(db, group_id, KZ_MSG_GROUP_JOIN, user_id, now_ms);
        if (rc == KZ_DB_OK) *state = KZ_GROUP_MEMBER;
    } else {
        rc = edges_insert(db, group_id, user_id, KZ_GROUP_JOIN_REQUEST, now_ms);
        if (rc == KZ_DB_OK) rc = notify_join_request(db, group_id, user_id, now_ms);
        if (rc == KZ_DB_OK) *state = KZ_GROUP_JOIN_REQUEST;
    }
    if (rc != KZ_DB_OK) *state = -1;
    return finish(db, rc);
}

int kz_store_group_leave(kz_db_t *db, const char *group_id, const char *user_id, int64_t now_ms)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    int s = -1;
    rc = lock_group(db, group_id);
    if (rc == KZ_STORE_NOTFOUND) return finish(db, KZ_DB_OK); /* no group, no membership */
    if (rc == KZ_DB_OK) rc = member_state(db, group_id, user_id, &s);
    if (rc != KZ_DB_OK || s < 0 || s == KZ_GROUP_BANNED) return finish(db, rc);
    if (s == KZ_GROUP_SUPERADMIN) {
        int64_t others = 0;
        rc = other_superadmins(db, group_id, user_id, &others);
        if (rc == KZ_DB_OK && others == 0) rc = KZ_GROUP_ELAST_SUPERADMIN;
    }
    if (rc == KZ_DB_OK) rc = edges_delete(db, group_id, user_id);
    if (rc == KZ_DB_OK && s < KZ_GROUP_JOIN_REQUEST) rc = count_down(db, group_id, now_ms);
    if (rc == KZ_DB_OK && s < KZ_GROUP_JOIN_REQUEST)
        rc = kz_store_group_message_post(db, group_id, KZ_MSG_GROUP_LEAVE, user_id, now_ms);
    return finish(db, rc);
}

/* ------------------------------------------------------------------------ */
/* Changes made by admins                                                   */

int kz_store_group_users_add(kz_db_t *db, const char *group_id, const char *caller_id,
                             char **user_ids, int n, int64_t now_ms)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    int cs;
    rc = check_role(db, group_id, caller_id, KZ_GROUP_ADMIN, &cs);
    char *name = NULL;
    if (rc == KZ_DB_OK) {
        kz_dbval_t p[] = {KZ_DBTEXT(group_id)};
        rc = query_text(db, "SELECT name FROM groups WHERE id = $1", p, 1, &name);
    }
    kz_notification_t *notes = kz_calloc((size_t)(n > 0 ? n : 1), sizeof *notes);
    int nnotes = 0;
    char *content = json_pairs("group_id", group_id, "name", name);
    char *subject = kz_asprintf("You've been added to group %s", name ? name : "");
    for (int i = 0; rc == KZ_DB_OK && i < n; i++) {
        if (caller_id && strcmp(user_ids[i], caller_id) == 0) continue;
        int64_t exists = 0;
        kz_dbval_t pu[] = {KZ_DBTEXT(user_ids[i])};
        rc = query_int(db, "SELECT count(*) FROM users WHERE id = $1", pu, 1, &exists);
        if (rc == KZ_DB_OK && exists == 0) rc = KZ_GROUP_EUSER_NOTFOUND;
        int s = -1;
        if (rc == KZ_DB_OK) rc = member_state(db, group_id, user_ids[i], &s);
        if (rc != KZ_DB_OK) break;
        if (s < 0)
            rc = edges_insert(db, group_id, user_ids[i], KZ_GROUP_MEMBER, now_ms);
        else if (s == KZ_GROUP_JOIN_REQUEST)
            rc = edges_set_state(db, group_id, user_ids[i], KZ_GROUP_MEMBER, now_ms);
        else
            continue; /* already a member, or banned */
        if (rc == KZ_DB_OK) rc = count_up(db, group_id, now_ms);
        if (rc == KZ_DB_OK) rc = kz_store_group_message_post(db, group_id, KZ_MSG_GROUP_ADD, user_ids[i], now_ms);
        if (rc == KZ_DB_OK)
            notes[nnotes++] = (kz_notification_t){.user_id = user_ids[i],
                                                  .subject = subject,
                                                  .content = content,
                                                  .code = KZ_NOTIFY_GROUP_ADD,
                                                  .sender_id = caller_id,
                                                  .persistent = true,
                                                  .create_time = now_ms};
    }
    if (rc == KZ_DB_OK && nnotes > 0) rc = kz_store_notifications_add(db, notes, nnotes);
    kz_free(notes);
    kz_free(subject);
    kz_free(content);
    kz_free(name);
    return finish(db, rc);
}

/* Kick (ban false) or ban: see the header for who may remove whom. */
static int remove_users(kz_db_t *db, const char *group_id, const char *caller_id, char **user_ids,
                        int n, int64_t now_ms, bool ban)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    int cs;
    rc = check_role(db, group_id, caller_id, KZ_GROUP_ADMIN, &cs);
    for (int i = 0; rc == KZ_DB_OK && i < n; i++) {
        const char *uid = user_ids[i];
        if (caller_id && strcmp(uid, caller_id) == 0) continue;
        int s = -1;
        rc = member_state(db, group_id, uid, &s);
        if (rc != KZ_DB_OK) break;
        if (s < 0) continue;
        if (cs == KZ_GROUP_SUPERADMIN) {
            if (s == KZ_GROUP_SUPERADMIN) {
                int64_t others = 0;
                rc = other_superadmins(db, group_id, uid, &others);
                if (rc != KZ_DB_OK) break;
                if (others == 0) continue; /* never the last superadmin */
            }
        } else if (s <= KZ_GROUP_ADMIN) {
            continue; /* an admin removes only members, requests and bans */
        }
        rc = edges_delete(db, group_id, uid);
        if (rc == KZ_DB_OK && ban) {
            kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBTEXT(uid), KZ_DBINT(KZ_GROUP_BANNED),
                              KZ_DBINT(next_position()), KZ_DBINT(now_ms)};
            rc = kz_db_exec(
                db,
                "INSERT INTO group_edge (source_id, destination_id, state, position, update_time) "
                "VALUES ($1, $2, $3, $4, $5)",
                p, 5, NULL);
        }
        if (rc == KZ_DB_OK && s < KZ_GROUP_JOIN_REQUEST) rc = count_down(db, group_id, now_ms);
        if (rc == KZ_DB_OK && s < KZ_GROUP_JOIN_REQUEST)
            rc = kz_store_group_message_post(db, group_id, ban ? KZ_MSG_GROUP_BAN : KZ_MSG_GROUP_KICK, uid, now_ms);
    }
    return finish(db, rc);
}

int kz_store_group_users_kick(kz_db_t *db, const char *group_id, const char *caller_id,
                              char **user_ids, int n, int64_t now_ms)
{
    return remove_users(db, group_id, caller_id, user_ids, n, now_ms, false);
}

int kz_store_group_users_ban(kz_db_t *db, const char *group_id, const char *caller_id,
                             char **user_ids, int n, int64_t now_ms)
{
    return remove_users(db, group_id, caller_id, user_ids, n, now_ms, true);
}

/* Promote (step -1) or demote (step +1): see the header for the rules. */
static int change_roles(kz_db_t *db, const char *group_id, const char *caller_id, char **user_ids,
                        int n, int64_t now_ms, int step)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    int cs;
    rc = check_role(db, group_id, caller_id, KZ_GROUP_ADMIN, &cs);
    for (int i = 0; rc == KZ_DB_OK && i < n; i++) {
        const char *uid = user_ids[i];
        if (caller_id && strcmp(uid, caller_id) == 0) continue;
        int s = -1;
        rc = member_state(db, group_id, uid, &s);
        if (rc != KZ_DB_OK) break;
        bool allowed = step < 0 ? s > KZ_GROUP_SUPERADMIN && s > cs && s <= KZ_GROUP_MEMBER
                                : s >= cs && s < KZ_GROUP_MEMBER;
        if (!allowed) continue;
        if (s == KZ_GROUP_SUPERADMIN) { /* demoting a superadmin: one must remain */
            int64_t others = 0;
            rc = other_superadmins(db, group_id, uid, &others);
            if (rc != KZ_DB_OK) break;
            if (others == 0) continue;
        }
        rc = edges_set_state(db, group_id, uid, s + step, now_ms);
        if (rc == KZ_DB_OK)
            rc = kz_store_group_message_post(db, group_id, step < 0 ? KZ_MSG_GROUP_PROMOTE : KZ_MSG_GROUP_DEMOTE,
                                             uid, now_ms);
    }
    return finish(db, rc);
}

int kz_store_group_users_promote(kz_db_t *db, const char *group_id, const char *caller_id,
                                 char **user_ids, int n, int64_t now_ms)
{
    return change_roles(db, group_id, caller_id, user_ids, n, now_ms, -1);
}

int kz_store_group_users_demote(kz_db_t *db, const char *group_id, const char *caller_id,
                                char **user_ids, int n, int64_t now_ms)
{
    return change_roles(db, group_id, caller_id, user_ids, n, now_ms, +1);
}

/* ------------------------------------------------------------------------ */
/* Listings                                                                 */

kz_group_order_t kz_group_filter_order(const kz_group_filter_t *f)
{
    if (f->name && *f->name) return KZ_GROUP_ORDER_NAME;
    if (f->members >= 0) return KZ_GROUP_ORDER_SIZE;
    if (f->lang_tag && *f->lang_tag) return KZ_GROUP_ORDER_LANG;
    return KZ_GROUP_ORDER_UPDATED;
}

int kz_store_groups_list(kz_db_t *db, const kz_group_filter_t *f, const kz_group_pos_t *after,
                         int limit, kz_group_t **out, int *n, bool *more)
{
    *out = NULL;
    *n = 0;
    *more = false;
    kz_group_order_t order = kz_group_filter_order(f);
    char sql[1024];
    size_t len = (size_t)snprintf(sql, sizeof sql,
                                  "SELECT " GROUP_COLUMNS " FROM groups WHERE disable_time = 0");
    kz_dbval_t p[8];
    int np = 0;
#define ADD(...) (len += (size_t)snprintf(sql + len, sizeof sql - len, __VA_ARGS__))
    if (order == KZ_GROUP_ORDER_NAME) {
        p[np++] = KZ_DBTEXT(f->name);
        ADD(" AND LOWER(name) LIKE LOWER(CAST($%d AS TEXT))", np);
        if (after) {
            p[np++] = KZ_DBTEXT(after->name);
            ADD(" AND name > $%d", np);
        }
        ADD(" ORDER BY name");
    } else {
        if (f->members >= 0) {
            p[np++] = KZ_DBINT(f->members);
            ADD(" AND edge_count <= $%d", np);
        }
        if (f->lang_tag && *f->lang_tag) {
            p[np++] = KZ_DBTEXT(f->lang_tag);
            ADD(" AND lang_tag = $%d", np);
        }
        if (f->open >= 0) {
            p[np++] = KZ_DBINT(f->open ? 0 : 1);
            ADD(" AND state = $%d", np);
        }
        const char *key = order == KZ_GROUP_ORDER_UPDATED ? "update_time" : "edge_count";
        const char *cmp = order == KZ_GROUP_ORDER_SIZE ? "<" : ">";
        const char *dir = order == KZ_GROUP_ORDER_SIZE ? " DESC" : "";
        if (after) {
            p[np++] =
                KZ_DBINT(order == KZ_GROUP_ORDER_UPDATED ? after->update_time : after->edge_count);
            p[np++] = KZ_DBTEXT(after->id);
            ADD(" AND (%s %s $%d OR (%s = $%d AND id %s $%d))", key, cmp, np - 1, key, np - 1, cmp,
                np);
        }
        ADD(" ORDER BY %s%s, id%s", key, dir, dir);
    }
    p[np++] = KZ_DBINT(limit + 1);
    ADD(" LIMIT $%d", np);
#undef ADD
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    *out = kz_calloc((size_t)limit + 1, sizeof **out);
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == limit) {
            *more = true;
            continue; /* drain the cursor */
        }
        group_from_row(r, 0, &(*out)[(*n)++]);
    }
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* Appends the state filter and the resume position of a membership listing
 * (alias ge) to sql, binding from p[*np]. */
static size_t edge_filter(char *sql, size_t len, size_t cap, int state, const kz_edge_pos_t *after,
                          kz_dbval_t *p, int *np)
{
    if (state < 0) {
        len += (size_t)snprintf(sql + len, cap - len, " AND ge.state >= 0 AND ge.state <= 3");
    } else {
        p[(*np)++] = KZ_DBINT(state);
        len += (size_t)snprintf(sql + len, cap - len, " AND ge.state = $%d", *np);
    }
    if (after) {
        p[(*np)++] = KZ_DBINT(after->state);
        p[(*np)++] = KZ_DBINT(after->position);
        len += (size_t)snprintf(sql + len, cap - len,
                                " AND (ge.state > $%d OR (ge.state = $%d AND ge.position > $%d))",
                                *np - 1, *np - 1, *np);
    }
    return len;
}

int kz_store_group_users_list(kz_db_t *db, const char *group_id, int state,
                              const kz_edge_pos_t *after, int limit, kz_group_user_t **out, int *n,
                              bool *more)
{
    *out = NULL;
    *n = 0;
    *more = false;
    char sql[1024];
    size_t len =
        (size_t)snprintf(sql, sizeof sql,
                         "SELECT " MEMBER_COLUMNS ", ge.state, ge.position FROM group_edge ge "
                         "JOIN users u ON u.id = ge.destination_id WHERE ge.source_id = $1");
    kz_dbval_t p[6];
    int np = 0;
    p[np++] = KZ_DBTEXT(group_id);
    len = edge_filter(sql, len, sizeof sql, state, after, p, &np);
    p[np++] = KZ_DBINT(limit + 1);
    snprintf(sql + len, sizeof sql - len, " ORDER BY ge.state, ge.position LIMIT $%d", np);
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    *out = kz_calloc((size_t)limit + 1, sizeof **out);
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == limit) {
            *more = true;
            continue;
        }
        kz_group_user_t *gu = &(*out)[(*n)++];
        member_from_row(r, &gu->user);
        gu->state = (int)kz_db_int(r, MEMBER_NCOLUMNS);
        gu->position = kz_db_int(r, MEMBER_NCOLUMNS + 1);
    }
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_store_user_groups_list(kz_db_t *db, const char *user_id, int state,
                              const kz_edge_pos_t *after, int limit, kz_user_group_t **out, int *n,
                              bool *more)
{
    *out = NULL;
    *n = 0;
    *more = false;
    char sql[1024];
    size_t len =
        (size_t)snprintf(sql, sizeof sql,
                         "SELECT " GROUP_COLUMNS_G ", ge.state, ge.position FROM group_edge ge "
                         "JOIN groups g ON g.id = ge.destination_id WHERE ge.source_id = $1");
    kz_dbval_t p[6];
    int np = 0;
    p[np++] = KZ_DBTEXT(user_id);
    len = edge_filter(sql, len, sizeof sql, state, after, p, &np);
    p[np++] = KZ_DBINT(limit + 1);
    snprintf(sql + len, sizeof sql - len, " ORDER BY ge.state, ge.position LIMIT $%d", np);
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    *out = kz_calloc((size_t)limit + 1, sizeof **out);
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == limit) {
            *more = true;
            continue;
        }
        kz_user_group_t *ug = &(*out)[(*n)++];
        group_from_row(r, 0, &ug->group);
        ug->state = (int)kz_db_int(r, GROUP_NCOLUMNS);
        ug->position = kz_db_int(r, GROUP_NCOLUMNS + 1);
    }
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Account deletion                                                         */

/* One membership of the user being deleted. */
typedef struct membership {
    char group_id[37];
    int state;
} membership_t;

/* After the last superadmin left: promotes the longest-standing admin, or
 * else the longest-standing member; deletes the group when neither exists. */
static int succeed_superadmin(kz_db_t *db, const char *group_id, int64_t now_ms)
{
    for (int s = KZ_GROUP_ADMIN; s <= KZ_GROUP_MEMBER; s++) {
        kz_dbval_t p[] = {KZ_DBTEXT(group_id), KZ_DBINT(s)};
        char *heir = NULL;
        int rc =
            query_text(db,
                       "SELECT destination_id FROM group_edge WHERE source_id = $1 AND state = $2 "
                       "ORDER BY position LIMIT 1",
                       p, 2, &heir);
        if (rc == KZ_STORE_NOTFOUND) continue;
        if (rc == KZ_DB_OK) rc = edges_set_state(db, group_id, heir, KZ_GROUP_SUPERADMIN, now_ms);
        kz_free(heir);
        return rc;
    }
    return group_delete_all(db, group_id);
}

int kz_store_groups_delete_user(kz_db_t *db, const char *user_id)
{
    int64_t now_ms = kz_now_ms();
    kz_dbval_t pu[] = {KZ_DBTEXT(user_id)};
    /* Bans are single group -> user rows: they just go. */
    int rc = kz_db_exec(db, "DELETE FROM group_edge WHERE destination_id = $1 AND state = 4", pu, 1,
                        NULL);
    if (rc != KZ_DB_OK) return rc;

    membership_t *m = NULL;
    int n = 0, cap = 0;
    kz_dbrows_t *r;
    rc = kz_db_query(
        db, "SELECT destination_id, state FROM group_edge WHERE source_id = $1 ORDER BY position",
        pu, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    while ((rc = kz_db_next(r)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            m = kz_realloc(m, sizeof *m * (size_t)cap);
        }
        kz_db_text_id(r, 0, m[n].group_id);
        m[n].state = (int)kz_db_int(r, 1);
        n++;
    }
    kz_db_rows_free(r);
    rc = rc < 0 ? rc : KZ_DB_OK;

    for (int i = 0; rc == KZ_DB_OK && i < n; i++) {
        const char *gid = m[i].group_id;
        rc = lock_group(db, gid);
        if (rc == KZ_STORE_NOTFOUND) { /* a disabled group: just drop the edges */
            rc = edges_delete(db, gid, user_id);
            continue;
        }
        if (rc == KZ_DB_OK) rc = edges_delete(db, gid, user_id);
        if (rc == KZ_DB_OK && m[i].state < KZ_GROUP_JOIN_REQUEST) rc = count_down(db, gid, now_ms);
        if (rc == KZ_DB_OK && m[i].state == KZ_GROUP_SUPERADMIN) {
            int64_t others = 0;
            rc = other_superadmins(db, gid, user_id, &others);
            if (rc == KZ_DB_OK && others == 0) rc = succeed_superadmin(db, gid, now_ms);
        }
    }
    kz_free(m);
    return rc;
}

/* Appends the groups of a query selecting GROUP_COLUMNS to out, at most
 * want - *n more. */
static int groups_append(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np, int want,
                         kz_group_t *out, int *n)
{
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    while (*n < want && (rc = kz_db_next(r)) == 1)
        group_from_row(r, 0, &out[(*n)++]);
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_store_groups_random(kz_db_t *db, int count, kz_group_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (count <= 0) return KZ_DB_OK;
    if (count > 1000) count = 1000;
    /* As kz_store_users_random: a random point on the id ring, an index
     * range scan from there and, when too few follow, from the start. */
    char pivot[37];
    kz_uuid_v4(pivot);
    *out = kz_calloc((size_t)count, sizeof **out);
    kz_dbval_t p[] = {KZ_DBTEXT(pivot), KZ_DBINT(count)};
    int rc = groups_append(db,
                           "SELECT " GROUP_COLUMNS " FROM groups"
                           " WHERE id > $1 AND disable_time = 0 ORDER BY id LIMIT $2",
                           p, 2, count, *out, n);
    if (rc == KZ_DB_OK && *n < count) {
        kz_dbval_t q[] = {KZ_DBTEXT(pivot), KZ_DBINT(count - *n)};
        rc = groups_append(db,
                           "SELECT " GROUP_COLUMNS " FROM groups"
                           " WHERE id <= $1 AND disable_time = 0 ORDER BY id LIMIT $2",
                           q, 2, count, *out, n);
    }
    if (rc != KZ_DB_OK) {
        kz_groups_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
