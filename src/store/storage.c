/* Storage objects in the store (store/storage.h).
 *
 * Concurrency: every write is a single conditional statement whose outcome
 * is read from the rows it returns (RETURNING), so the check and the change
 * cannot be separated by another writer. On SQLite writers are serialised
 * anyway (the writer mutex before BEGIN IMMEDIATE). On PostgreSQL (READ
 * COMMITTED) a conditional UPDATE that waited for a concurrent one
 * re-evaluates its WHERE on the committed row, and INSERT ... ON CONFLICT
 * waits for a concurrent insert of the same key: of N writers expecting the
 * same version exactly one matches. Batches touch rows in (collection, key,
 * user_id) order, so two batches cannot deadlock on each other; a deadlock
 * or serialisation failure still reported by the server reruns the batch. */
#include "store/storage.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/uuid.h"

/* Times a batch is attempted when the database reports a deadlock or a
 * lock timeout (KZ_DB_EBUSY). */
#define BUSY_ATTEMPTS 3

#define COLS "collection, key, user_id, value, version, read, write, create_time, update_time"

void kz_storage_objects_free(kz_storage_object_t *v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++) {
        kz_free(v[i].collection);
        kz_free(v[i].key);
        kz_free(v[i].value);
    }
    kz_free(v);
}

/* Fills o from the current row of a SELECT COLS. */
static void row_object(kz_dbrows_t *rows, kz_storage_object_t *o)
{
    size_t len;
    const char *s;
    memset(o, 0, sizeof *o);
    s = kz_db_text(rows, 0, &len);
    o->collection = kz_strndup(s ? s : "", s ? len : 0);
    s = kz_db_text(rows, 1, &len);
    o->key = kz_strndup(s ? s : "", s ? len : 0);
    s = kz_db_text(rows, 2, NULL);
    snprintf(o->user_id, sizeof o->user_id, "%s", s ? s : "");
    s = kz_db_text(rows, 3, &len);
    o->value = kz_strndup(s ? s : "", s ? len : 0);
    s = kz_db_text(rows, 4, NULL);
    snprintf(o->version, sizeof o->version, "%s", s ? s : "");
    o->permission_read = (int)kz_db_int(rows, 5);
    o->permission_write = (int)kz_db_int(rows, 6);
    o->create_time = kz_db_int(rows, 7);
    o->update_time = kz_db_int(rows, 8);
}

/* A growable array of objects. */
typedef struct objvec {
    kz_storage_object_t *v;
    int n, cap;
} objvec_t;

static kz_storage_object_t *objvec_push(objvec_t *ov)
{
    if (ov->n == ov->cap) {
        ov->cap = ov->cap ? ov->cap * 2 : 8;
        ov->v = kz_realloc(ov->v, sizeof *ov->v * (size_t)ov->cap);
    }
    return &ov->v[ov->n++];
}

/* Appends every row of a SELECT COLS to ov, at most max (max < 0: all);
 * sets *more (may be NULL) when a row beyond max was there. */
static int collect_rows(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np, objvec_t *ov, int max,
                        bool *more)
{
    kz_dbrows_t *rows;
    int rc = kz_db_query(db, sql, p, np, &rows);
    if (rc != KZ_DB_OK) return rc;
    int got = 0;
    while ((rc = kz_db_next(rows)) == 1) {
        if (max >= 0 && got == max) {
            if (more) *more = true;
            break;
        }
        row_object(rows, objvec_push(ov));
        got++;
    }
    kz_db_rows_free(rows);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Batch order                                                              */

/* An object id with its position in the request, for sorting. */
typedef struct sortkey {
    const char *collection, *key, *user_id;
    int index;
} sortkey_t;

static int sortkey_cmp(const void *a, const void *b)
{
    const sortkey_t *x = a, *y = b;
    int c = strcmp(x->collection, y->collection);
    if (!c) c = strcmp(x->key, y->key);
    if (!c) c = strcmp(x->user_id, y->user_id);
    if (!c) c = (x->index > y->index) - (x->index < y->index); /* stable */
    return c;
}

/* Sorts keys[0..n) into the order a batch applies them. */
static void sort_batch(sortkey_t *keys, int n)
{
    qsort(keys, (size_t)n, sizeof *keys, sortkey_cmp);
}

static const char *owner_or_system(const char *user_id)
{
    return user_id && *user_id ? user_id : KZ_UUID_NIL;
}

/* ------------------------------------------------------------------------ */
/* Write                                                                    */

#define INSERT_HEAD                                                                                \
    "INSERT INTO storage (collection, key, user_id, value, version, read, write, create_time,"     \
    " update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"

/* Version "*": insert unless the object exists. */
static const char sql_insert_absent[] =
    INSERT_HEAD " ON CONFLICT (collection, user_id, key) DO NOTHING RETURNING create_time, update_time";

/* Version "": insert or overwrite. An overwrite that changes nothing keeps
 * update_time, as Nakama skips such an update. */
#define UPSERT_BODY                                                                                \
    INSERT_HEAD " ON CONFLICT (collection, user_id, key) DO UPDATE SET value = excluded.value,"    \
                " version = excluded.version, read = excluded.read, write = excluded.write,"       \
                " update_time = CASE WHEN storage.version = excluded.version"                      \
                " AND storage.read = excluded.read AND storage.write = excluded.write"             \
                " THEN storage.update_time ELSE excluded.update_time END"
static const char sql_upsert[] = UPSERT_BODY " WHERE storage.write = 1 RETURNING create_time, update_time";
static const char sql_upsert_auth[] = UPSERT_BODY " RETURNING create_time, update_time";

/* Version "<hash>": update only the stored version $9. */
#define UPDATE_BODY                                                                                \
    "UPDATE storage SET value = $4, version = $5, read = $6, write = $7, update_time = $8"         \
    " WHERE collection = $1 AND key = $2 AND user_id = $3 AND version = $9"
static const char sql_update[] = UPDATE_BODY " AND write = 1 RETURNING create_time, update_time";
static const char sql_update_auth[] = UPDATE_BODY " RETURNING create_time, update_time";

/* Applies one write whose new version is already in ack->version; fills
 * the ack's times, or returns a KZ_STORAGE_REJECT_* outcome. */
static int write_one(kz_db_t *db, const kz_storage_write_t *w, bool authoritative, int64_t now_ms,
                     kz_storage_ack_t *ack)
{
    const char *expect = w->version ? w->version : "";
    kz_dbval_t p[9] = {KZ_DBTEXT(w->collection), KZ_DBTEXT(w->key),         KZ_DBTEXT(w->user_id),
                       KZ_DBTEXT(w->value),      KZ_DBTEXT(ack->version),   KZ_DBINT(w->permission_read),
                       KZ_DBINT(w->permission_write), KZ_DBINT(now_ms), KZ_DBTEXT(expect)};
    const char *sql;
    int np = 8;
    if (strcmp(expect, "*") == 0) {
        sql = sql_insert_absent;
    } else if (*expect == '\0') {
        sql = authoritative ? sql_upsert_auth : sql_upsert;
    } else {
        sql = authoritative ? sql_update_auth : sql_update;
        np = 9;
    }
    kz_dbrows_t *rows;
    int rc = kz_db_query(db, sql, p, np, &rows);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(rows);
    if (rc == 1) {
        ack->create_time = kz_db_int(rows, 0);
        ack->update_time = kz_db_int(rows, 1);
    }
    kz_db_rows_free(rows);
    if (rc < 0) return rc;
    if (rc == 1) return KZ_DB_OK;
    if (sql == sql_insert_absent) return KZ_STORAGE_REJECT_VERSION;
    if (sql == sql_upsert) return KZ_STORAGE_REJECT_PERMISSION;
    if (authoritative) return KZ_STORAGE_REJECT_VERSION;
    /* The conditional update matched nothing: missing object or another
     * version (version), or a write-protected object (permission, which
     * Nakama reports first). */
    rc = kz_db_query(db, "SELECT write FROM storage WHERE collection = $1 AND key = $2 AND user_id = $3", p, 3,
                     &rows);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(rows);
    int64_t write = rc == 1 ? kz_db_int(rows, 0) : 1;
    kz_db_rows_free(rows);
    if (rc < 0) return rc;
    return write != 1 ? KZ_STORAGE_REJECT_PERMISSION : KZ_STORAGE_REJECT_VERSION;
}

/* One attempt at a write batch in the order of keys. */
static int write_batch(kz_db_t *db, const kz_storage_write_t *w, const sortkey_t *keys, int n,
                       bool authoritative, int64_t now_ms, kz_storage_ack_t *acks, int *rejected)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    for (int j = 0; j < n; j++) {
        int i = keys[j].index;
        rc = write_one(db, &w[i], authoritative, now_ms, &acks[i]);
        if (rc != KZ_DB_OK) {
            if (rc > 0) *rejected = i;
            kz_db_rollback(db);
            return rc;
        }
    }
    return kz_db_commit(db);
}

int kz_store_storage_write(kz_db_t *db, const kz_storage_write_t *w, int n, bool authoritative,
                           int64_t now_ms, kz_storage_ack_t *acks, int *rejected)
{
    int dummy;
    if (!rejected) rejected = &dummy;
    *rejected = -1;
    if (n <= 0) return KZ_DB_OK;
    sortkey_t *keys = kz_malloc(sizeof *keys * (size_t)n);
    for (int i = 0; i < n; i++) {
        keys[i] = (sortkey_t){w[i].collection, w[i].key, w[i].user_id, i};
        memset(&acks[i], 0, sizeof acks[i]);
        kz_md5_hex(w[i].value, strlen(w[i].value), acks[i].version);
    }
    sort_batch(keys, n);
    int rc;
    for (int attempt = 1;; attempt++) {
        *rejected = -1;
        rc = write_batch(db, w, keys, n, authoritative, now_ms, acks, rejected);
        if (rc != KZ_DB_EBUSY || attempt >= BUSY_ATTEMPTS) break;
    }
    kz_free(keys);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Read                                                                     */

static const char sql_read[] = "SELECT " COLS " FROM storage WHERE collection = $1 AND key = $2 AND user_id = $3"
                               " AND (read = 2 OR (read = 1 AND user_id = $4))";
static const char sql_read_auth[] = "SELECT " COLS " FROM storage WHERE collection = $1 AND key = $2"
                                    " AND user_id = $3";

int kz_store_storage_read(kz_db_t *db, const char *caller, const kz_storage_id_t *ids, int n,
                          kz_storage_object_t **out, int *nout)
{
    *out = NULL;
    *nout = 0;
    if (n <= 0) return KZ_DB_OK;
    /* One snapshot for the whole batch; a single id needs none. */
    bool tx = n > 1;
    int rc = tx ? kz_db_begin_read(db) : KZ_DB_OK;
    if (rc != KZ_DB_OK) return rc;
    objvec_t ov = {0};
    for (int i = 0; i < n && rc == KZ_DB_OK; i++) {
        kz_dbval_t p[4] = {KZ_DBTEXT(ids[i].collection), KZ_DBTEXT(ids[i].key),
                           KZ_DBTEXT(owner_or_system(ids[i].user_id)), KZ_DBTEXT(caller)};
        rc = collect_rows(db, caller ? sql_read : sql_read_auth, p, caller ? 4 : 3, &ov, -1, NULL);
    }
    if (tx) {
        if (rc == KZ_DB_OK)
            rc = kz_db_commit(db);
        else
            kz_db_rollback(db);
    }
    if (rc != KZ_DB_OK) {
        kz_storage_objects_free(ov.v, ov.n);
        return rc;
    }
    *out = ov.v;
    *nout = ov.n;
    return KZ_DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Delete                                                                   */

#define DELETE_BODY "DELETE FROM storage WHERE collection = $1 AND key = $2 AND user_id = $3"
/* [authoritative][with version] */
static const char *const sql_delete[2][2] = {
    {DELETE_BODY " AND write > 0", DELETE_BODY " AND write > 0 AND version = $4"},
    {DELETE_BODY, DELETE_BODY " AND version = $4"},
};

/* One attempt at a delete batch in the order of keys. */
static int delete_batch(kz_db_t *db, const kz_storage_id_t *ids, const sortkey_t *keys, int n,
                        bool authoritative, int *rejected)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK) return rc;
    for (int j = 0; j < n; j++) {
        int i = keys[j].index;
        bool versioned = ids[i].version && *ids[i].version;
        kz_dbval_t p[4] = {KZ_DBTEXT(ids[i].collection), KZ_DBTEXT(ids[i].key), KZ_DBTEXT(keys[j].user_id),
                           KZ_DBTEXT(ids[i].version)};
        int64_t affected = 0;
        rc = kz_db_exec(db, sql_delete[authoritative][versioned], p, versioned ? 4 : 3, &affected);
        if (rc == KZ_DB_OK && affected == 0 && (versioned || !authoritative)) {
            *rejected = i;
            rc = KZ_STORAGE_REJECT_DELETE;
        }
        if (rc != KZ_DB_OK) {
            kz_db_rollback(db);
            return rc;
        }
    }
    return kz_db_commit(db);
}

int kz_store_storage_delete(kz_db_t *db, const kz_storage_id_t *ids, int n, bool authoritative,
                            int *rejected)
{
    int dummy;
    if (!rejected) rejected = &dummy;
    *rejected = -1;
    if (n <= 0) return KZ_DB_OK;
    sortkey_t *keys = kz_malloc(sizeof *keys * (size_t)n);
    for (int i = 0; i < n; i++)
        keys[i] = (sortkey_t){ids[i].collection, ids[i].key, owner_or_system(ids[i].user_id), i};
    sort_batch(keys, n);
    int rc;
    for (int attempt = 1;; attempt++) {
        *rejected = -1;
        rc = delete_batch(db, ids, keys, n, authoritative, rejected);
        if (rc != KZ_DB_EBUSY || attempt >= BUSY_ATTEMPTS) break;
    }
    kz_free(keys);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* List                                                                     */

int kz_store_storage_list(kz_db_t *db, const char *caller, const char *owner, const char *collection,
                          int limit, const char *after_key, const char *after_user,
                          kz_storage_object_t **out, int *n, bool *more)
{
    *out = NULL;
    *n = 0;
    *more = false;
    if (limit <= 0) return KZ_DB_OK;
    kz_dbval_t p[5] = {KZ_DBTEXT(collection), KZ_DBINT(limit + 1)};
    int np = 2;
    char sql[512];
    size_t len = (size_t)snprintf(sql, sizeof sql, "SELECT " COLS " FROM storage WHERE collection = $1");
    /* Which rows. */
    if (owner) {
        p[np++] = KZ_DBTEXT(owner);
        const char *perm = !caller                   ? ""
                           : strcmp(caller, owner) == 0 ? " AND read >= 1"
                                                        : " AND read = 2";
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND user_id = $%d%s", np, perm);
    } else if (caller) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND read = 2");
    }
    /* Where the page starts. With one owner the key alone orders the rows. */
    if (after_key) {
        p[np++] = KZ_DBTEXT(after_key);
        if (owner) {
            len += (size_t)snprintf(sql + len, sizeof sql - len, " AND key > $%d", np);
        } else {
            p[np++] = KZ_DBTEXT(after_user ? after_user : "");
            len += (size_t)snprintf(sql + len, sizeof sql - len, " AND (key, user_id) > ($%d, $%d)", np - 1, np);
        }
    }
    snprintf(sql + len, sizeof sql - len, " ORDER BY key, user_id LIMIT $2");
    objvec_t ov = {0};
    int rc = collect_rows(db, sql, p, np, &ov, limit, more);
    if (rc != KZ_DB_OK) {
        kz_storage_objects_free(ov.v, ov.n);
        *more = false;
        return rc;
    }
    *out = ov.v;
    *n = ov.n;
    return KZ_DB_OK;
}

/* ------------------------------------------------------------------------ */

int kz_store_storage_delete_user(kz_db_t *db, const char *user_id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    return kz_db_exec(db, "DELETE FROM storage WHERE user_id = $1", p, 1, NULL);
}
