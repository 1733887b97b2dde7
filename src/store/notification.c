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
