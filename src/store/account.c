/* Accounts in the store: see store/account.h. The SQL is the common subset
 * of SQLite and PostgreSQL; times are unix milliseconds. */
#include "store/account.h"

#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/friends.h"
#include "store/groups.h"
#include "store/leaderboard.h"
#include "store/notification.h"
#include "store/storage.h"
#include "store/wallet.h"

#define USER_COLUMNS                                                                               \
    "id, username, display_name, avatar_url, lang_tag, location, timezone, metadata, wallet, "    \
    "email, password, custom_id, facebook_id, google_id, gamecenter_id, steam_id, apple_id, "     \
    "facebook_instant_game_id, edge_count, create_time, update_time, verify_time, disable_time"

/* The condition "the user keeps another way to sign in" ($1 = user id):
 * one of the other identifier columns is set, or a device (other than the
 * one being removed, when device_sql says so) stays linked. */
#define OTHER_LINKS_(col_is_other_sql, device_sql)                                                 \
    "(EXISTS (SELECT 1 FROM users WHERE id = $1 AND (" col_is_other_sql "))"                       \
    " OR EXISTS (SELECT 1 FROM user_device WHERE user_id = $1" device_sql "))"
#define OTHER_LINKS(col_is_other_sql) OTHER_LINKS_(col_is_other_sql, "")
#define OTHER_LINKS_BUT_DEVICE(col_is_other_sql) OTHER_LINKS_(col_is_other_sql, " AND id <> $2")

#define SOCIAL_LINKS                                                                               \
    "apple_id IS NOT NULL OR facebook_id IS NOT NULL OR facebook_instant_game_id IS NOT NULL"     \
    " OR google_id IS NOT NULL OR gamecenter_id IS NOT NULL OR steam_id IS NOT NULL"

void kz_user_clear(kz_user_t *u)
{
    char **fields[] = {&u->username,   &u->display_name,  &u->avatar_url, &u->lang_tag,
                       &u->location,   &u->timezone,      &u->metadata,   &u->wallet,
                       &u->email,      &u->password,      &u->custom_id,  &u->facebook_id,
                       &u->google_id,  &u->gamecenter_id, &u->steam_id,   &u->apple_id,
                       &u->facebook_instant_game_id};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) kz_free(*fields[i]);
    memset(u, 0, sizeof *u);
}

/* Fills u from a row selected with USER_COLUMNS. */
static void user_from_row(kz_dbrows_t *r, kz_user_t *u)
{
    memset(u, 0, sizeof *u);
    size_t len;
    const char *id = kz_db_text(r, 0, &len);
    if (id && len < sizeof u->id) memcpy(u->id, id, len);
    char **fields[] = {&u->username,  &u->display_name, &u->avatar_url,    &u->lang_tag,
                       &u->location,  &u->timezone,     &u->metadata,      &u->wallet,
                       &u->email,     &u->password,     &u->custom_id,     &u->facebook_id,
                       &u->google_id, &u->gamecenter_id, &u->steam_id,     &u->apple_id,
                       &u->facebook_instant_game_id};
    for (int i = 0; i < 17; i++) *fields[i] = kz_db_text_dup(r, i + 1);
    u->edge_count = kz_db_int(r, 18);
    u->create_time = kz_db_int(r, 19);
    u->update_time = kz_db_int(r, 20);
    u->verify_time = kz_db_int(r, 21);
    u->disable_time = kz_db_int(r, 22);
}

/* Runs a query expected to return at most one user row. */
static int user_query_one(kz_db_t *db, const char *sql, const kz_dbval_t *params, int n,
                          kz_user_t *out)
{
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, params, n, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    if (rc == 1) {
        user_from_row(r, out);
        rc = KZ_DB_OK;
    } else if (rc == 0) {
        rc = KZ_STORE_NOTFOUND;
    }
    kz_db_rows_free(r);
    return rc;
}

int kz_store_user_find(kz_db_t *db, kz_id_kind_t kind, const char *value, kz_user_t *out)
{
    static const char *const sql[] = {
        [KZ_ID_DEVICE] = "SELECT " USER_COLUMNS " FROM users WHERE id = "
                         "(SELECT user_id FROM user_device WHERE id = $1)",
        [KZ_ID_CUSTOM] = "SELECT " USER_COLUMNS " FROM users WHERE custom_id = $1",
        [KZ_ID_EMAIL] = "SELECT " USER_COLUMNS " FROM users WHERE email = $1",
        [KZ_ID_USERNAME] = "SELECT " USER_COLUMNS " FROM users WHERE username = $1",
        [KZ_ID_USER] = "SELECT " USER_COLUMNS " FROM users WHERE id = $1",
    };
    kz_dbval_t p[] = {KZ_DBTEXT(value)};
    return user_query_one(db, sql[kind], p, 1, out);
}

/* True when identifier value of kind already belongs to someone. */
static bool identifier_exists(kz_db_t *db, kz_id_kind_t kind, const char *value)
{
    kz_user_t u;
    int rc = kz_store_user_find(db, kind, value, &u);
    if (rc == KZ_DB_OK) kz_user_clear(&u);
    return rc == KZ_DB_OK;
}

int kz_store_user_create(kz_db_t *db, const char *id, const char *username, kz_id_kind_t kind,
                         const char *value, const char *password_hash, int64_t now_ms,
                         bool *identifier_taken)
{
    *identifier_taken = false;
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    kz_dbval_t p[] = {KZ_DBTEXT(id),
                      KZ_DBTEXT(username),
                      KZ_DBTEXT(kind == KZ_ID_CUSTOM ? value : NULL),
                      KZ_DBTEXT(kind == KZ_ID_EMAIL ? value : NULL),
                      KZ_DBTEXT(kind == KZ_ID_EMAIL ? password_hash : NULL),
                      KZ_DBINT(now_ms)};
    rc = kz_db_exec(db,
                    "INSERT INTO users (id, username, custom_id, email, password, create_time, "
                    "update_time) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    p, 6, NULL);
    if (rc == KZ_DB_OK && kind == KZ_ID_DEVICE) {
        kz_dbval_t d[] = {KZ_DBTEXT(value), KZ_DBTEXT(id)};
        rc = kz_db_exec(db, "INSERT INTO user_device (id, user_id) VALUES ($1, $2)", d, 2, NULL);
    }
    if (rc == KZ_DB_OK) rc = kz_db_commit(db);
    if (rc != KZ_DB_OK) {
        kz_db_rollback(db);
        if (rc == KZ_DB_ECONFLICT) *identifier_taken = identifier_exists(db, kind, value);
    }
    return rc;
}

int kz_store_user_devices(kz_db_t *db, const char *user_id, char ***ids, int *n)
{
    *ids = NULL;
    *n = 0;
    kz_dbrows_t *r;
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    int rc = kz_db_query(db, "SELECT id FROM user_device WHERE user_id = $1 ORDER BY id", p, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    int cap = 0;
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *ids = kz_realloc(*ids, sizeof(char *) * (size_t)cap);
        }
        (*ids)[(*n)++] = kz_db_text_dup(r, 0);
    }
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

void kz_store_strings_free(char **v, int n)
{
    for (int i = 0; i < n; i++) kz_free(v[i]);
    kz_free(v);
}

int kz_store_account_update(kz_db_t *db, const char *user_id, const kz_account_update_t *u, int n,
                            int64_t now_ms)
{
    /* Column names come from the caller's fixed list, never from input. A
     * row changes (and its update_time moves) only when some value differs. */
    if (n <= 0 || n > 14) return KZ_DB_EERROR; /* the callers' fixed list has 6 */
    char sets[512], differs[512];
    size_t slen = 0, dlen = 0;
    kz_dbval_t p[16];
    p[0] = KZ_DBTEXT(user_id);
    p[1] = KZ_DBINT(now_ms);
    int np = 2;
    for (int i = 0; i < n && np < 16; i++) {
        p[np++] = KZ_DBTEXT(u[i].value);
        slen += (size_t)snprintf(sets + slen, sizeof sets - slen, "%s = $%d, ", u[i].column, np);
        dlen += (size_t)snprintf(differs + dlen, sizeof differs - dlen, "%s%s IS DISTINCT FROM $%d",
                                 i ? " OR " : "", u[i].column, np);
    }
    char sql[1200];
    snprintf(sql, sizeof sql, "UPDATE users SET %supdate_time = $2 WHERE id = $1 AND (%s)", sets, differs);
    int64_t changed = 0;
    int rc = kz_db_exec(db, sql, p, np, &changed);
    if (rc == KZ_DB_OK && changed == 0) {
        kz_user_t self;
        rc = kz_store_user_find(db, KZ_ID_USER, user_id, &self);
        if (rc == KZ_DB_OK) kz_user_clear(&self);
    }
    return rc;
}

int kz_store_user_delete(kz_db_t *db, const char *user_id)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    int64_t changed = 0;
    /* Everything the user owns or takes part in goes in the same
     * transaction as the user row: group memberships first (a group may need
     * a new superadmin), then friend edges (with the other side's counts),
     * notifications, storage objects, wallet ledger entries and leaderboard
     * records. user_device
     * rows go by ON DELETE CASCADE. */
    rc = kz_store_groups_delete_user(db, user_id);
    if (rc == KZ_DB_OK) rc = kz_store_friends_delete_user(db, user_id);
    if (rc == KZ_DB_OK) rc = kz_store_notifications_delete_user(db, user_id);
    if (rc == KZ_DB_OK) rc = kz_store_storage_delete_user(db, user_id);
    if (rc == KZ_DB_OK) rc = kz_store_wallet_delete_user(db, user_id);
    if (rc == KZ_DB_OK) rc = kz_lb_delete_user(db, user_id, kz_now_ms());
    if (rc == KZ_DB_OK) rc = kz_db_exec(db, "DELETE FROM users WHERE id = $1", p, 1, &changed);
    if (rc == KZ_DB_OK) rc = kz_db_exec(db, "DELETE FROM session_cutoff WHERE user_id = $1", p, 1, NULL);
    if (rc == KZ_DB_OK) rc = changed ? kz_db_commit(db) : KZ_STORE_NOTFOUND;
    if (rc != KZ_DB_OK) kz_db_rollback(db);
    return rc;
}

int kz_store_link(kz_db_t *db, const char *user_id, kz_id_kind_t kind, const char *value,
                  const char *password_hash, int64_t now_ms)
{
    int64_t changed = 0;
    int rc;
    if (kind == KZ_ID_DEVICE) {
        kz_dbval_t p[] = {KZ_DBTEXT(value), KZ_DBTEXT(user_id)};
        rc = kz_db_exec(db, "INSERT INTO user_device (id, user_id) VALUES ($1, $2)", p, 2, &changed);
        if (rc == KZ_DB_ECONFLICT) {
            kz_user_t u;
            /* Linking a device the user already has is not an error. */
            if (kz_store_user_find(db, KZ_ID_DEVICE, value, &u) == KZ_DB_OK) {
                if (strcmp(u.id, user_id) == 0) rc = KZ_DB_OK;
                kz_user_clear(&u);
            }
        }
        return rc;
    }
    if (kind == KZ_ID_CUSTOM) {
        kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBTEXT(value), KZ_DBINT(now_ms)};
        rc = kz_db_exec(db, "UPDATE users SET custom_id = $2, update_time = $3 WHERE id = $1", p, 3,
                        &changed);
    } else {
        kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBTEXT(value), KZ_DBTEXT(password_hash),
                          KZ_DBINT(now_ms)};
        rc = kz_db_exec(db,
                        "UPDATE users SET email = $2, password = $3, update_time = $4 WHERE id = $1",
                        p, 4, &changed);
    }
    if (rc == KZ_DB_OK && changed == 0) rc = KZ_STORE_NOTFOUND;
    return rc;
}

int kz_store_unlink(kz_db_t *db, const char *user_id, kz_id_kind_t kind, const char *value,
                    int64_t now_ms)
{
    /* Each removes the identifier only while another way to sign in stays. */
    static const struct {
        const char *sql;
        int nparams;
    } unlink[] = {
        [KZ_ID_DEVICE] = {"DELETE FROM user_device WHERE id = $2 AND user_id = $1 AND "
                          OTHER_LINKS_BUT_DEVICE(SOCIAL_LINKS " OR email IS NOT NULL OR custom_id IS NOT NULL"),
                          2},
        [KZ_ID_CUSTOM] = {"UPDATE users SET custom_id = NULL, update_time = $3 WHERE id = $1 AND "
                          "custom_id = $2 AND " OTHER_LINKS(SOCIAL_LINKS " OR email IS NOT NULL"),
                          3},
        [KZ_ID_EMAIL] = {"UPDATE users SET email = NULL, password = NULL, update_time = $3 WHERE "
                         "id = $1 AND email = $2 AND " OTHER_LINKS(SOCIAL_LINKS " OR custom_id IS NOT NULL"),
                         3},
    };
    if (kind > KZ_ID_EMAIL) return KZ_DB_EERROR;
    int64_t changed = 0;
    kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBTEXT(value), KZ_DBINT(now_ms)};
    int rc = kz_db_exec(db, unlink[kind].sql, p, unlink[kind].nparams, &changed);
    if (rc == KZ_DB_OK && changed == 0) rc = KZ_STORE_LAST_LINK;
    return rc;
}

/* Appends "column IN ($k,...)" for values to sql, binding them from p[*np]. */
static size_t append_in_list(char *sql, size_t len, size_t cap, const char *column, char **values,
                             int n, kz_dbval_t *p, int *np)
{
    len += (size_t)snprintf(sql + len, cap - len, "%s IN (", column);
    for (int i = 0; i < n; i++) {
        p[(*np)++] = KZ_DBTEXT(values[i]);
        len += (size_t)snprintf(sql + len, cap - len, "%s$%d", i ? "," : "", *np);
    }
    return len + (size_t)snprintf(sql + len, cap - len, ")");
}

int kz_store_users_get(kz_db_t *db, char **ids, int nids, char **usernames, int nusernames,
                       kz_user_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    int total = nids + nusernames;
    if (total == 0) return KZ_DB_OK;
    /* The column list, two IN lists of "$NNNN," and the glue. */
    size_t cap = sizeof("SELECT " USER_COLUMNS) + 64 + (size_t)total * 8;
    char *sql = kz_malloc(cap);
    size_t len = (size_t)snprintf(sql, cap, "SELECT " USER_COLUMNS " FROM users WHERE ");
    kz_dbval_t *p = kz_malloc(sizeof *p * (size_t)total);
    int np = 0;
    if (nids) len = append_in_list(sql, len, cap, "id", ids, nids, p, &np);
    if (nids && nusernames) len += (size_t)snprintf(sql + len, cap - len, " OR ");
    if (nusernames) len = append_in_list(sql, len, cap, "username", usernames, nusernames, p, &np);
    snprintf(sql + len, cap - len, " ORDER BY id");
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    kz_free(sql);
    kz_free(p);
    if (rc != KZ_DB_OK) return rc;
    int ucap = 0;
    while ((rc = kz_db_next(r)) == 1) {
        if (*n == ucap) {
            ucap = ucap ? ucap * 2 : 8;
            *out = kz_realloc(*out, sizeof **out * (size_t)ucap);
        }
        user_from_row(r, &(*out)[(*n)++]);
    }
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_store_users_set_disabled(kz_db_t *db, char **ids, int n, int64_t now_ms, int64_t *changed)
{
    if (changed) *changed = 0;
    if (n <= 0) return KZ_DB_OK;
    size_t cap = 96 + (size_t)n * 8;
    char *sql = kz_malloc(cap);
    size_t len =
        (size_t)snprintf(sql, cap, "UPDATE users SET disable_time = $1 WHERE id <> $2 AND ");
    kz_dbval_t *p = kz_malloc(sizeof *p * ((size_t)n + 2));
    int np = 0;
    p[np++] = KZ_DBINT(now_ms > 0 ? now_ms : 0);
    p[np++] = KZ_DBTEXT(KZ_UUID_NIL);
    append_in_list(sql, len, cap, "id", ids, n, p, &np);
    int rc = kz_db_exec(db, sql, p, np, changed);
    kz_free(sql);
    kz_free(p);
    return rc;
}

/* Appends the users of a query selecting USER_COLUMNS to *out, at most
 * want - *n more. */
static int users_append(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np, int want,
                        kz_user_t **out, int *n)
{
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    if (rc != KZ_DB_OK) return rc;
    while (*n < want && (rc = kz_db_next(r)) == 1) user_from_row(r, &(*out)[(*n)++]);
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_store_users_random(kz_db_t *db, int count, kz_user_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (count <= 0) return KZ_DB_OK;
    if (count > 1000) count = 1000;
    /* A random point on the id ring, then the ids that follow it, then
     * (when too few follow) the ones from the start: an index range scan
     * either way, never a sort of the whole table. */
    char pivot[37];
    kz_uuid_v4(pivot);
    *out = kz_calloc((size_t)count, sizeof **out);
    kz_dbval_t p[] = {KZ_DBTEXT(pivot), KZ_DBINT(count)};
    int rc = users_append(db,
                          "SELECT " USER_COLUMNS " FROM users WHERE id > $1 AND id <> '" KZ_UUID_NIL
                          "' ORDER BY id LIMIT $2",
                          p, 2, count, out, n);
    if (rc == KZ_DB_OK && *n < count) {
        kz_dbval_t q[] = {KZ_DBTEXT(pivot), KZ_DBINT(count - *n)};
        rc = users_append(db,
                          "SELECT " USER_COLUMNS " FROM users WHERE id <= $1 AND id <> '" KZ_UUID_NIL
                          "' ORDER BY id LIMIT $2",
                          q, 2, count, out, n);
    }
    if (rc != KZ_DB_OK) {
        for (int i = 0; i < *n; i++) kz_user_clear(&(*out)[i]);
        kz_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int kz_store_revoke_token(kz_db_t *db, const char *token_id, const char *user_id, int64_t expire_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(token_id), KZ_DBTEXT(user_id), KZ_DBINT(expire_ms)};
    return kz_db_exec(db,
                      "INSERT INTO session_revocation (token_id, user_id, expire_time) "
                      "VALUES ($1, $2, $3) ON CONFLICT (token_id) DO NOTHING",
                      p, 3, NULL);
}

int kz_store_revoke_user(kz_db_t *db, const char *user_id, int64_t cutoff, int64_t expire_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBINT(cutoff), KZ_DBINT(expire_ms)};
    return kz_db_exec(db,
                      "INSERT INTO session_cutoff (user_id, cutoff_time, expire_time) "
                      "VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET "
                      "cutoff_time = excluded.cutoff_time, expire_time = excluded.expire_time",
                      p, 3, NULL);
}

int kz_store_revocations_load(kz_db_t *db, int64_t now_ms, kz_revocation_fn fn, void *arg)
{
    kz_dbval_t p[] = {KZ_DBINT(now_ms)};
    /* Expired rows are of no use any more: drop them first. */
    int rc = kz_db_exec(db, "DELETE FROM session_revocation WHERE expire_time <= $1", p, 1, NULL);
    if (rc == KZ_DB_OK)
        rc = kz_db_exec(db, "DELETE FROM session_cutoff WHERE expire_time <= $1", p, 1, NULL);
    if (rc != KZ_DB_OK) return rc;
    kz_dbrows_t *r;
    rc = kz_db_query(db, "SELECT token_id, user_id, expire_time FROM session_revocation", NULL, 0, &r);
    if (rc != KZ_DB_OK) return rc;
    while ((rc = kz_db_next(r)) == 1)
        fn(arg, kz_db_text(r, 0, NULL), NULL, 0, kz_db_int(r, 2));
    kz_db_rows_free(r);
    if (rc < 0) return rc;
    rc = kz_db_query(db, "SELECT user_id, cutoff_time, expire_time FROM session_cutoff", NULL, 0, &r);
    if (rc != KZ_DB_OK) return rc;
    while ((rc = kz_db_next(r)) == 1)
        fn(arg, NULL, kz_db_text(r, 0, NULL), kz_db_int(r, 1), kz_db_int(r, 2));
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}
