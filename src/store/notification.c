/* Notifications in the store: see store/notification.h.
 *
 * A user's notifications are read in (create_time, id) order, the order of
 * the notification_user_create_idx index, and a listing resumes strictly
 * after the last (create_time, id) it returned. Ids are version 7 UUIDs
 * minted from the creation time with sub-millisecond precision, so a
 * notification created later in the same millisecond also sorts after the
 * ones already seen and a client polling with its cursor does not miss it. */
#include "store/notification.h"

#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/account.h"
#include "store/db_internal.h"

static kz_notification_sink_fn sink;

void kz_store_set_notification_sink(kz_notification_sink_fn fn)
{
    sink = fn;
}

int kz_store_notifications_add(kz_db_t *db, kz_notification_t *n, int count)
{
    for (int i = 0; i < count; i++) {
        kz_notification_t *nt = &n[i];
        int64_t now_ns = kz_now_ns();
        if (nt->create_time <= 0) nt->create_time = now_ns / 1000000;
        if (!nt->id[0]) kz_uuid_v7_ns(nt->id, nt->create_time * 1000000 + now_ns % 1000000);
        if (!nt->persistent) continue;
        kz_dbval_t p[] = {KZ_DBTEXT(nt->id),
                          KZ_DBTEXT(nt->user_id),
                          KZ_DBTEXT(nt->subject ? nt->subject : ""),
                          KZ_DBTEXT(nt->content && *nt->content ? nt->content : "{}"),
                          KZ_DBINT(nt->code),
                          KZ_DBTEXT(nt->sender_id && *nt->sender_id ? nt->sender_id : KZ_UUID_NIL),
                          KZ_DBINT(nt->create_time)};
        int rc = kz_db_exec(db,
                            "INSERT INTO notification (id, user_id, subject, content, code, sender_id, "
                            "create_time, persistent) VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
                            p, 7, NULL);
        if (rc != KZ_DB_OK) return rc;
    }
    /* Pushed live once the transaction commits (at once outside one). */
    if (sink) sink(n, count, db->in_tx);
    return KZ_DB_OK;
}

void kz_stored_notifications_free(kz_stored_notification_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        kz_free(v[i].subject);
        kz_free(v[i].content);
    }
    kz_free(v);
}

static char *col_dup(kz_dbrows_t *r, int col)
{
    char *s = kz_db_text_dup(r, col);
    return s ? s : kz_strdup(""); /* NULL columns read as empty here */
}

int kz_store_notifications_list(kz_db_t *db, const char *user_id, int limit, int64_t after_time,
                                const char *after_id, kz_stored_notification_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1) return KZ_DB_OK;
    kz_dbrows_t *r;
    int rc;
    if (after_id && *after_id) {
        kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBINT(after_time), KZ_DBTEXT(after_id), KZ_DBINT(limit)};
        rc = kz_db_query(db,
                         "SELECT id, subject, content, code, sender_id, create_time FROM notification "
                         "WHERE user_id = $1 AND (create_time > $2 OR (create_time = $2 AND id > $3)) "
                         "ORDER BY create_time, id LIMIT $4",
                         p, 4, &r);
    } else {
        kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBINT(limit)};
        rc = kz_db_query(db,
                         "SELECT id, subject, content, code, sender_id, create_time FROM notification "
                         "WHERE user_id = $1 ORDER BY create_time, id LIMIT $2",
                         p, 2, &r);
    }
    if (rc != KZ_DB_OK) return rc;
    *out = kz_calloc((size_t)limit, sizeof **out);
    while (*n < limit && (rc = kz_db_next(r)) == 1) {
        kz_stored_notification_t *s = &(*out)[(*n)++];
        kz_db_text_id(r, 0, s->id);
        s->subject = col_dup(r, 1);
        s->content = col_dup(r, 2);
        s->code = (int)kz_db_int(r, 3);
        kz_db_text_id(r, 4, s->sender_id);
        if (strcmp(s->sender_id, KZ_UUID_NIL) == 0) s->sender_id[0] = '\0';
        s->create_time = kz_db_int(r, 5);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        kz_stored_notifications_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    return KZ_DB_OK;
}

int kz_store_notifications_delete(kz_db_t *db, const char *user_id, char **ids, int n, int64_t *deleted)
{
    if (deleted) *deleted = 0;
    if (n <= 0) return KZ_DB_OK;
    /* "DELETE ... WHERE user_id = $1 AND id IN ($2,...,$n+1)" */
    size_t cap = 96 + (size_t)n * 8;
    char *sql = kz_malloc(cap);
    size_t len = (size_t)snprintf(sql, cap, "DELETE FROM notification WHERE user_id = $1 AND id IN (");
    kz_dbval_t *p = kz_malloc(sizeof *p * ((size_t)n + 1));
    p[0] = KZ_DBTEXT(user_id);
    for (int i = 0; i < n; i++) {
        p[i + 1] = KZ_DBTEXT(ids[i]);
        len += (size_t)snprintf(sql + len, cap - len, "%s$%d", i ? "," : "", i + 2);
    }
    snprintf(sql + len, cap - len, ")");
    int rc = kz_db_exec(db, sql, p, n + 1, deleted);
    kz_free(sql);
    kz_free(p);
    return rc;
}

int kz_store_notifications_delete_user(kz_db_t *db, const char *user_id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    return kz_db_exec(db, "DELETE FROM notification WHERE user_id = $1", p, 1, NULL);
}

int kz_store_notifications_get(kz_db_t *db, char **ids, int n, const char *user_id,
                               kz_stored_notification_t **out, int *count)
{
    *out = NULL;
    *count = 0;
    if (n <= 0) return KZ_DB_OK;
    bool owner = user_id && *user_id;
    size_t cap = 160 + (size_t)n * 8;
    char *sql = kz_malloc(cap);
    size_t len = (size_t)snprintf(sql, cap,
                                  "SELECT id, subject, content, code, sender_id, create_time, "
                                  "user_id FROM notification WHERE %sid IN (",
                                  owner ? "user_id = $1 AND " : "");
    kz_dbval_t *p = kz_malloc(sizeof *p * ((size_t)n + 1));
    int np = 0;
    if (owner) p[np++] = KZ_DBTEXT(user_id);
    for (int i = 0; i < n; i++) {
        p[np++] = KZ_DBTEXT(ids[i]);
        len += (size_t)snprintf(sql + len, cap - len, "%s$%d", i ? "," : "", np);
    }
    snprintf(sql + len, cap - len, ") ORDER BY create_time, id");
    kz_dbrows_t *r;
    int rc = kz_db_query(db, sql, p, np, &r);
    kz_free(sql);
    kz_free(p);
    if (rc != KZ_DB_OK) return rc;
    *out = kz_calloc((size_t)n, sizeof **out);
    while (*count < n && (rc = kz_db_next(r)) == 1) {
        kz_stored_notification_t *s = &(*out)[(*count)++];
        kz_db_text_id(r, 0, s->id);
        s->subject = col_dup(r, 1);
        s->content = col_dup(r, 2);
        s->code = (int)kz_db_int(r, 3);
        kz_db_text_id(r, 4, s->sender_id);
        if (strcmp(s->sender_id, KZ_UUID_NIL) == 0) s->sender_id[0] = '\0';
        s->create_time = kz_db_int(r, 5);
        kz_db_text_id(r, 6, s->user_id);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        kz_stored_notifications_free(*out, *count);
        *out = NULL;
        *count = 0;
        return rc;
    }
    return KZ_DB_OK;
}

static int update_one(kz_db_t *db, const kz_notification_update_t *u, bool *found)
{
    char sql[160];
    size_t len = (size_t)snprintf(sql, sizeof sql, "UPDATE notification SET id = $1");
    kz_dbval_t p[4] = {KZ_DBTEXT(u->id)};
    int np = 1;
    if (u->subject) {
        p[np++] = KZ_DBTEXT(u->subject);
        len += (size_t)snprintf(sql + len, sizeof sql - len, ", subject = $%d", np);
    }
    if (u->content) {
        p[np++] = KZ_DBTEXT(*u->content ? u->content : "{}");
        len += (size_t)snprintf(sql + len, sizeof sql - len, ", content = $%d", np);
    }
    if (u->sender_id) {
        p[np++] = KZ_DBTEXT(*u->sender_id ? u->sender_id : KZ_UUID_NIL);
        len += (size_t)snprintf(sql + len, sizeof sql - len, ", sender_id = $%d", np);
    }
    snprintf(sql + len, sizeof sql - len, " WHERE id = $1");
    int64_t affected = 0;
    int rc = kz_db_exec(db, sql, p, np, &affected);
    *found = affected > 0;
    return rc;
}

int kz_store_notifications_update(kz_db_t *db, const kz_notification_update_t *u, int n,
                                  int *missing)
{
    if (missing) *missing = -1;
    if (n <= 0) return KZ_DB_OK;
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    for (int i = 0; i < n; i++) {
        bool found = false;
        rc = update_one(db, &u[i], &found);
        if (rc == KZ_DB_OK && !found) {
            if (missing) *missing = i;
            rc = KZ_STORE_NOTFOUND;
        }
        if (rc != KZ_DB_OK) {
            kz_db_rollback(db);
            return rc;
        }
    }
    return kz_db_commit(db);
}

/* Up to batch user ids after after (exclusive, "" = from the start), the
 * system user excepted, into ids; *n receives the count. */
static int user_batch(kz_db_t *db, const char *after, int batch, char (*ids)[37], int *n)
{
    *n = 0;
    kz_dbval_t p[] = {KZ_DBTEXT(after), KZ_DBTEXT(KZ_UUID_NIL), KZ_DBINT(batch)};
    kz_dbrows_t *r;
    int rc = kz_db_query(db, "SELECT id FROM users WHERE id > $1 AND id <> $2 ORDER BY id LIMIT $3",
                         p, 3, &r);
    if (rc != KZ_DB_OK) return rc;
    while (*n < batch && (rc = kz_db_next(r)) == 1)
        kz_db_text_id(r, 0, ids[(*n)++]);
    kz_db_rows_free(r);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_store_notifications_send_all(kz_db_t *db, const kz_notification_t *tmpl, int batch,
                                    int64_t *sent)
{
    if (sent) *sent = 0;
    if (batch < 1) batch = 1;
    if (batch > 10000) batch = 10000;
    char(*ids)[37] = kz_malloc(sizeof *ids * (size_t)batch);
    kz_notification_t *v = kz_malloc(sizeof *v * (size_t)batch);
    char after[37] = "";
    int rc = KZ_DB_OK;
    for (;;) {
        int n = 0;
        rc = user_batch(db, after, batch, ids, &n);
        if (rc != KZ_DB_OK || n == 0) break;
        int64_t now_ms = kz_now_ms();
        for (int i = 0; i < n; i++) {
            v[i] = *tmpl;
            v[i].id[0] = '\0';
            v[i].user_id = ids[i];
            v[i].create_time = now_ms;
        }
        rc = kz_db_begin(db);
        if (rc != KZ_DB_OK) break;
        rc = kz_store_notifications_add(db, v, n);
        if (rc == KZ_DB_OK)
            rc = kz_db_commit(db);
        else
            kz_db_rollback(db);
        if (rc != KZ_DB_OK) break;
        if (sent) *sent += n;
        memcpy(after, ids[n - 1], 37);
        if (n < batch) break;
    }
    kz_free(v);
    kz_free(ids);
    return rc;
}
