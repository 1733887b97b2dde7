/* Wallets in the store: see store/wallet.h. */
#include "store/wallet.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/account.h"

/* True when v is a JSON object whose values are all integers. */
static bool integer_object(const json_t *v)
{
    if (!json_is_object(v)) return false;
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e)
    {
        if (!json_is_integer(e)) return false;
    }
    return true;
}

/* Owned canonical text of a wallet object (compact, keys sorted). */
static char *wallet_text(const json_t *w)
{
    char *s = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
    char *out = kz_strdup(s ? s : "{}");
    free(s);
    return out;
}

/* An update's place in the lock order: by user id, then request order. */
typedef struct order {
    const char *user_id;
    int i;
} order_t;

static int cmp_order(const void *a, const void *b)
{
    const order_t *x = a, *y = b;
    int c = strcmp(x->user_id, y->user_id);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static void set_error(kz_wallet_error_t *err, int index, const char *key)
{
    if (!err) return;
    err->index = index;
    snprintf(err->key, sizeof err->key, "%s", key ? key : "");
}

/* Reads and locks user_id's wallet into *out (a new object). */
static int wallet_lock_read(kz_db_t *db, const char *user_id, int64_t now_ms, json_t **out)
{
    *out = NULL;
    /* Touching the row takes its lock until the transaction ends. */
    kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBINT(now_ms)};
    int64_t changed = 0;
    int rc = kz_db_exec(db, "UPDATE users SET update_time = $2 WHERE id = $1", p, 2, &changed);
    if (rc != KZ_DB_OK) return rc;
    if (changed == 0) return KZ_STORE_NOTFOUND;
    kz_dbrows_t *r;
    rc = kz_db_query(db, "SELECT wallet FROM users WHERE id = $1", p, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    if (rc == 1) {
        size_t len = 0;
        const char *s = kz_db_text(r, 0, &len);
        *out = s && len ? json_loadb(s, len, 0, NULL) : json_object();
        rc = integer_object(*out) ? KZ_DB_OK : KZ_WALLET_EINVALID;
    } else if (rc == 0) {
        rc = KZ_STORE_NOTFOUND;
    }
    kz_db_rows_free(r);
    if (rc != KZ_DB_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* Adds changeset cs to wallet w in place. KZ_WALLET_ENEGATIVE or
 * KZ_WALLET_EINVALID (overflow) with *bad the key. */
static int wallet_apply(json_t *w, const json_t *cs, const char **bad)
{
    const char *k;
    json_t *d;
    json_object_foreach((json_t *)cs, k, d)
    {
        json_t *cur = json_object_get(w, k);
        long long old = cur ? json_integer_value(cur) : 0, sum;
        if (__builtin_add_overflow(old, (long long)json_integer_value(d), &sum)) {
            *bad = k;
            return KZ_WALLET_EINVALID;
        }
        if (sum < 0) {
            *bad = k;
            return KZ_WALLET_ENEGATIVE;
        }
        json_object_set_new(w, k, json_integer(sum));
    }
    return KZ_DB_OK;
}

int kz_store_wallet_update(kz_db_t *db, const kz_wallet_update_t *u, int n, bool ledger,
                           int64_t now_ms, kz_wallet_result_t *res, kz_wallet_error_t *err)
{
    set_error(err, -1, NULL);
    for (int i = 0; i < n; i++)
        res[i] = (kz_wallet_result_t){0};
    if (n <= 0) return KZ_DB_OK;
    json_t **cs = kz_calloc((size_t)n, sizeof *cs);
    order_t *ord = kz_calloc((size_t)n, sizeof *ord);
    int rc = KZ_DB_OK;
    for (int i = 0; i < n && rc == KZ_DB_OK; i++) {
        cs[i] = u[i].changeset ? json_loads(u[i].changeset, 0, NULL) : json_object();
        if (!integer_object(cs[i])) {
            rc = KZ_WALLET_EINVALID;
            set_error(err, i, NULL);
        }
        ord[i] = (order_t){u[i].user_id, i};
    }
    if (rc == KZ_DB_OK) {
        qsort(ord, (size_t)n, sizeof *ord, cmp_order);
        rc = kz_db_begin(db);
        if (rc == KZ_DB_OK) {
            for (int k = 0; k < n && rc == KZ_DB_OK; k++) {
                int i = ord[k].i;
                json_t *w = NULL;
                rc = wallet_lock_read(db, u[i].user_id, now_ms, &w);
                if (rc != KZ_DB_OK) {
                    set_error(err, i, NULL);
                    break;
                }
                res[i].previous = wallet_text(w);
                const char *bad = NULL;
                rc = wallet_apply(w, cs[i], &bad);
                if (rc != KZ_DB_OK) set_error(err, i, bad);
                if (rc == KZ_DB_OK) {
                    res[i].updated = wallet_text(w);
                    kz_dbval_t p[] = {KZ_DBTEXT(u[i].user_id), KZ_DBTEXT(res[i].updated)};
                    rc = kz_db_exec(db, "UPDATE users SET wallet = $2 WHERE id = $1", p, 2, NULL);
                }
                if (rc == KZ_DB_OK && ledger) {
                    char *changes = wallet_text(cs[i]);
                    kz_uuid_v7_ns(res[i].ledger_id, kz_now_ns());
                    kz_dbval_t p[] = {
                        KZ_DBTEXT(res[i].ledger_id), KZ_DBTEXT(u[i].user_id), KZ_DBTEXT(changes),
                        KZ_DBTEXT(u[i].metadata && *u[i].metadata ? u[i].metadata : "{}"),
                        KZ_DBINT(now_ms)};
                    rc = kz_db_exec(
                        db,
                        "INSERT INTO wallet_ledger (id, user_id, changeset, metadata, create_time, "
                        "update_time) VALUES ($1, $2, $3, $4, $5, $5)",
                        p, 5, NULL);
                    kz_free(changes);
                }
                json_decref(w);
            }
            if (rc == KZ_DB_OK)
                rc = kz_db_commit(db);
            else
                kz_db_rollback(db);
        }
    }
    for (int i = 0; i < n; i++)
        json_decref(cs[i]);
    kz_free(cs);
    kz_free(ord);
    if (rc != KZ_DB_OK) kz_wallet_results_free(res, n);
    return rc;
}

void kz_wallet_results_free(kz_wallet_result_t *r, int n)
{
    for (int i = 0; i < n; i++) {
        kz_free(r[i].previous);
        kz_free(r[i].updated);
        r[i] = (kz_wallet_result_t){0};
    }
}

int kz_store_wallet_ledger_list(kz_db_t *db, const char *user_id, int limit, int64_t after_time,
                                const char *after_id, kz_wallet_ledger_t **out, int *n, bool *more)
{
    *out = NULL;
    *n = 0;
    *more = false;
    if (limit < 1) return KZ_DB_OK;
    kz_dbrows_t *r;
    int rc;
#define LEDGER_COLS                                                                                \
    "SELECT id, user_id, changeset, metadata, create_time, update_time FROM wallet_ledger "
    if (after_id && *after_id) {
        kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBINT(after_time), KZ_DBTEXT(after_id),
                          KZ_DBINT(limit + 1)};
        rc = kz_db_query(
            db,
            LEDGER_COLS
            "WHERE user_id = $1 AND (create_time > $2 OR (create_time = $2 AND id > $3)) "
            "ORDER BY create_time, id LIMIT $4",
            p, 4, &r);
    } else {
        kz_dbval_t p[] = {KZ_DBTEXT(user_id), KZ_DBINT(limit + 1)};
        rc = kz_db_query(db, LEDGER_COLS "WHERE user_id = $1 ORDER BY create_time, id LIMIT $2", p,
                         2, &r);
    }
#undef LEDGER_COLS
    if (rc != KZ_DB_OK) return rc;
    kz_wallet_ledger_t *v = kz_calloc((size_t)limit, sizeof *v);
    int k = 0;
    while ((rc = kz_db_next(r)) == 1) {
        if (k == limit) {
            *more = true;
            break;
        }
        kz_wallet_ledger_t *e = &v[k++];
        kz_db_text_id(r, 0, e->id);
        kz_db_text_id(r, 1, e->user_id);
        e->changeset = kz_db_text_dup(r, 2);
        e->metadata = kz_db_text_dup(r, 3);
        e->create_time = kz_db_int(r, 4);
        e->update_time = kz_db_int(r, 5);
    }
    kz_db_rows_free(r);
    if (rc < 0) {
        kz_wallet_ledger_free(v, k);
        *more = false;
        return rc;
    }
    *out = v;
    *n = k;
    return KZ_DB_OK;
}

void kz_wallet_ledger_free(kz_wallet_ledger_t *v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++) {
        kz_free(v[i].changeset);
        kz_free(v[i].metadata);
    }
    kz_free(v);
}

int kz_store_wallet_delete_user(kz_db_t *db, const char *user_id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    return kz_db_exec(db, "DELETE FROM wallet_ledger WHERE user_id = $1", p, 1, NULL);
}

void kz_wallet_ledger_clear(kz_wallet_ledger_t *e)
{
    kz_free(e->changeset);
    kz_free(e->metadata);
    e->changeset = e->metadata = NULL;
}

static int ledger_update_body(kz_db_t *db, const char *id, const char *metadata, int64_t now_ms,
                              kz_wallet_ledger_t *out)
{
    kz_dbval_t p[] = {KZ_DBTEXT(id), KZ_DBTEXT(metadata && *metadata ? metadata : "{}"),
                      KZ_DBINT(now_ms)};
    int64_t affected = 0;
    int rc = kz_db_exec(db,
                        "UPDATE wallet_ledger SET metadata = $2, update_time = $3 WHERE id = $1",
                        p, 3, &affected);
    if (rc != KZ_DB_OK) return rc;
    if (affected == 0) return KZ_STORE_NOTFOUND;
    kz_dbrows_t *r;
    rc = kz_db_query(db,
                     "SELECT id, user_id, changeset, metadata, create_time, update_time"
                     " FROM wallet_ledger WHERE id = $1",
                     p, 1, &r);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(r);
    if (rc == 1) {
        kz_db_text_id(r, 0, out->id);
        kz_db_text_id(r, 1, out->user_id);
        out->changeset = kz_db_text_dup(r, 2);
        out->metadata = kz_db_text_dup(r, 3);
        out->create_time = kz_db_int(r, 4);
        out->update_time = kz_db_int(r, 5);
    }
    kz_db_rows_free(r);
    return rc == 1 ? KZ_DB_OK : rc < 0 ? rc : KZ_STORE_NOTFOUND;
}

int kz_store_wallet_ledger_update(kz_db_t *db, const char *id, const char *metadata, int64_t now_ms,
                                  kz_wallet_ledger_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    rc = ledger_update_body(db, id, metadata, now_ms, out);
    if (rc == KZ_DB_OK)
        rc = kz_db_commit(db);
    else
        kz_db_rollback(db);
    if (rc != KZ_DB_OK) kz_wallet_ledger_clear(out);
    return rc;
}
