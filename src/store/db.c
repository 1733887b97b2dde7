/* The store front end: picks the backend from the address, forwards every
 * call through the backend's ops table, and does what both backends share —
 * timing each statement for the metrics, logging failures, and the
 * prepared-statement cache. */
#include "store/db_internal.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"

#include <stdio.h>
#include <string.h>

/* See kz_db_set_tx_end_hook. */
static kz_db_tx_end_fn tx_end_hook;

void kz_db_set_tx_end_hook(kz_db_tx_end_fn fn)
{
    tx_end_hook = fn;
}

kz_dbval_t kz_dbtext(const char *s)
{
    if (!s) return KZ_DBNULL;
    return (kz_dbval_t){.type = KZ_DBV_TEXT, .s = s, .len = strlen(s)};
}

void kz_db_set_error(kz_db_t *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    /* One line: libpq's messages end in a newline and may span several. */
    for (char *p = db->errmsg; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r') *p = ' ';
    size_t n = strlen(db->errmsg);
    while (n > 0 && (db->errmsg[n - 1] == '\n' || db->errmsg[n - 1] == ' ')) db->errmsg[--n] = '\0';
}

void kz_db_log_failure(kz_db_t *db, int rc, const char *sql)
{
    const char *what = rc == KZ_DB_ECONFLICT ? "conflict" : rc == KZ_DB_EBUSY ? "busy" : "error";
    if (rc == KZ_DB_ECONFLICT)
        kz_log_debug("db %s: %s (sql: %.80s)", what, db->errmsg, sql ? sql : "");
    else
        kz_log_warn("db %s: %s (sql: %.80s)", what, db->errmsg, sql ? sql : "");
}

/* Records the duration of one statement that started at t0 (kz_mono_ns). */
static void observe(uint64_t t0)
{
    kz_metrics_db_observe((double)(kz_mono_ns() - t0) / 1e9);
}

static bool is_pg_url(const char *address)
{
    return strncmp(address, "postgres://", 11) == 0 || strncmp(address, "postgresql://", 13) == 0;
}

int kz_db_open(const char *address, kz_db_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!address || !*address) {
        snprintf(err, errlen, "empty database address");
        return KZ_DB_EERROR;
    }
    uint64_t t0 = kz_mono_ns();
    int rc = is_pg_url(address) ? kz_db_pg_open(address, out, err, errlen)
                                : kz_db_sqlite_open(address, out, err, errlen);
    observe(t0);
    if (rc != KZ_DB_OK) kz_log_warn("db open failed: %s", err);
    return rc;
}

void kz_db_close(kz_db_t *db)
{
    if (db) db->ops->close(db);
}

kz_db_kind_t kz_db_kind(const kz_db_t *db)
{
    return db->kind;
}

const char *kz_db_errmsg(const kz_db_t *db)
{
    return db->errmsg;
}

int kz_db_exec(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams,
               int64_t *affected)
{
    if (affected) *affected = 0;
    uint64_t t0 = kz_mono_ns();
    int rc = db->ops->exec(db, sql, params, nparams, affected);
    observe(t0);
    if (rc != KZ_DB_OK) kz_db_log_failure(db, rc, sql);
    return rc;
}

int kz_db_query(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams,
                kz_dbrows_t **rows)
{
    *rows = NULL;
    if (db->cursor_open) {
        /* A programming error: the previous cursor was not freed. */
        kz_db_set_error(db, "another cursor is still open on this connection");
        kz_db_log_failure(db, KZ_DB_EERROR, sql);
        return KZ_DB_EERROR;
    }
    uint64_t t0 = kz_mono_ns();
    int rc = db->ops->query(db, sql, params, nparams, rows);
    observe(t0);
    if (rc != KZ_DB_OK) {
        kz_db_log_failure(db, rc, sql);
        return rc;
    }
    db->cursor_open = true;
    return KZ_DB_OK;
}

int kz_db_next(kz_dbrows_t *rows)
{
    return rows->db->ops->next(rows);
}

bool kz_db_isnull(kz_dbrows_t *rows, int col)
{
    return rows->db->ops->isnull(rows, col);
}

int64_t kz_db_int(kz_dbrows_t *rows, int col)
{
    return rows->db->ops->get_int(rows, col);
}

const char *kz_db_text(kz_dbrows_t *rows, int col, size_t *len)
{
    return rows->db->ops->get_text(rows, col, len);
}

int kz_db_ncols(kz_dbrows_t *rows)
{
    return rows->db->ops->ncols(rows);
}

const char *kz_db_colname(kz_dbrows_t *rows, int col)
{
    return rows->db->ops->colname(rows, col);
}

kz_dbcol_type_t kz_db_coltype(kz_dbrows_t *rows, int col)
{
    return rows->db->ops->coltype(rows, col);
}

void kz_db_rows_free(kz_dbrows_t *rows)
{
    if (!rows) return;
    kz_db_t *db = rows->db;
    db->ops->rows_free(rows);
    db->cursor_open = false;
}

/* Opens a transaction of either kind, refusing to nest. */
static int begin_tx(kz_db_t *db, bool readonly)
{
    const char *what = readonly ? "BEGIN (read only)" : "BEGIN";
    if (db->in_tx) {
        kz_db_set_error(db, "a transaction is already open on this connection");
        kz_db_log_failure(db, KZ_DB_EERROR, what);
        return KZ_DB_EERROR;
    }
    uint64_t t0 = kz_mono_ns();
    int rc = db->ops->begin(db, readonly);
    observe(t0);
    if (rc != KZ_DB_OK) kz_db_log_failure(db, rc, what);
    return rc;
}

int kz_db_begin(kz_db_t *db)
{
    return begin_tx(db, false);
}

int kz_db_begin_read(kz_db_t *db)
{
    return begin_tx(db, true);
}

int kz_db_commit(kz_db_t *db)
{
    if (!db->in_tx) {
        kz_db_set_error(db, "commit without an open transaction");
        kz_db_log_failure(db, KZ_DB_EERROR, "COMMIT");
        return KZ_DB_EERROR;
    }
    uint64_t t0 = kz_mono_ns();
    int rc = db->ops->commit(db);
    observe(t0);
    if (tx_end_hook) tx_end_hook(rc == KZ_DB_OK);
    if (rc != KZ_DB_OK) kz_db_log_failure(db, rc, "COMMIT");
    return rc;
}

int kz_db_rollback(kz_db_t *db)
{
    if (tx_end_hook) tx_end_hook(false); /* nothing written in it happened */
    if (!db->in_tx) return KZ_DB_OK;
    uint64_t t0 = kz_mono_ns();
    int rc = db->ops->rollback(db);
    observe(t0);
    if (rc != KZ_DB_OK) kz_db_log_failure(db, rc, "ROLLBACK");
    return rc;
}

int kz_db_exec_script(kz_db_t *db, const char *sql)
{
    uint64_t t0 = kz_mono_ns();
    int rc = db->ops->exec_script(db, sql);
    observe(t0);
    if (rc != KZ_DB_OK) kz_db_log_failure(db, rc, sql);
    return rc;
}

/* ---- Prepared-statement cache ------------------------------------------- */

/* FNV-1a over the SQL text. */
static uint64_t sql_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3u;
    }
    return h;
}

void kz_stmt_cache_init(kz_stmt_cache_t *c, void (*release)(void *, void *, bool), void *ctx)
{
    memset(c, 0, sizeof *c);
    c->release = release;
    c->ctx = ctx;
}

void *kz_stmt_cache_get(kz_stmt_cache_t *c, const char *sql)
{
    uint64_t h = sql_hash(sql);
    for (int i = 0; i < c->n; i++) {
        kz_stmt_entry_t *e = &c->entries[i];
        if (e->hash == h && strcmp(e->sql, sql) == 0) {
            e->last_use = ++c->tick;
            return e->handle;
        }
    }
    return NULL;
}

void kz_stmt_cache_put(kz_stmt_cache_t *c, const char *sql, void *handle)
{
    kz_stmt_entry_t *slot;
    if (c->n < KZ_STMT_CACHE_MAX) {
        slot = &c->entries[c->n++];
    } else {
        /* Evict the least recently used entry that no open cursor uses. */
        slot = NULL;
        for (int i = 0; i < c->n; i++) {
            kz_stmt_entry_t *e = &c->entries[i];
            if (e->handle == c->pinned) continue;
            if (!slot || e->last_use < slot->last_use) slot = e;
        }
        c->release(c->ctx, slot->handle, true);
        kz_free(slot->sql);
    }
    slot->sql = kz_strdup(sql);
    slot->hash = sql_hash(sql);
    slot->last_use = ++c->tick;
    slot->handle = handle;
}

void kz_stmt_cache_clear(kz_stmt_cache_t *c, bool server_alive)
{
    for (int i = 0; i < c->n; i++) {
        c->release(c->ctx, c->entries[i].handle, server_alive);
        kz_free(c->entries[i].sql);
    }
    c->n = 0;
    c->pinned = NULL;
}

char *kz_db_text_dup(kz_dbrows_t *rows, int col)
{
    size_t len;
    const char *s = kz_db_text(rows, col, &len);
    return s ? kz_strndup(s, len) : NULL;
}

void kz_db_text_id(kz_dbrows_t *rows, int col, char out[37])
{
    size_t len;
    const char *s = kz_db_text(rows, col, &len);
    out[0] = '\0';
    if (s && len < 37) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
}
