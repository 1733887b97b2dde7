/* Store internals shared by db.c, the two backends and migrations.c.
 *
 * A connection is a backend struct whose first member is a struct kz_db
 * (`super`); db.c calls the backend through the ops table in that base and
 * wraps every call with timing (kz_metrics_db_observe) and error logging, so
 * the backends only execute statements and fill in db->errmsg. */
#ifndef KZ_STORE_DB_INTERNAL_H
#define KZ_STORE_DB_INTERNAL_H

#include "store/db.h"

#include <stdarg.h>

/* Maximum number of prepared statements kept per connection. */
#define KZ_STMT_CACHE_MAX 256

/* The backend vtable. Every function that can fail returns KZ_DB_OK or a
 * negative KZ_DB_E* code and leaves the message in db->errmsg. */
typedef struct kz_db_ops {
    /* Releases everything the connection owns, rolling back an open
     * transaction first, and frees the connection itself. */
    void (*close)(kz_db_t *db);
    int (*exec)(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams,
                int64_t *affected);
    /* Executes the statement far enough to report errors (SQLite: the first
     * step) and returns a cursor owned by the connection. */
    int (*query)(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams,
                 kz_dbrows_t **rows);
    int (*next)(kz_dbrows_t *rows);
    bool (*isnull)(kz_dbrows_t *rows, int col);
    int64_t (*get_int)(kz_dbrows_t *rows, int col);
    const char *(*get_text)(kz_dbrows_t *rows, int col, size_t *len);
    void (*rows_free)(kz_dbrows_t *rows);
    /* Result shape of the current row (see kz_db_ncols / kz_db_colname /
     * kz_db_coltype). */
    int (*ncols)(kz_dbrows_t *rows);
    const char *(*colname)(kz_dbrows_t *rows, int col);
    kz_dbcol_type_t (*coltype)(kz_dbrows_t *rows, int col);
    /* Opens a write (readonly false) or read-only snapshot transaction. */
    int (*begin)(kz_db_t *db, bool readonly);
    /* Commits; on failure the transaction is rolled back, so after either
     * result no transaction is open. */
    int (*commit)(kz_db_t *db);
    int (*rollback)(kz_db_t *db);
    /* Runs a script of one or more ';'-separated statements without
     * parameters, not through the statement cache (used by migrations). */
    int (*exec_script)(kz_db_t *db, const char *sql);
} kz_db_ops_t;

/* Base of every connection. */
struct kz_db {
    const kz_db_ops_t *ops; /* backend functions */
    kz_db_kind_t kind;      /* KZ_DB_SQLITE or KZ_DB_POSTGRES */
    bool in_tx;             /* a transaction opened by kz_db_begin* is open */
    bool cursor_open;       /* the connection's cursor is handed out */
    char errmsg[512];       /* text of the last error */
};

/* Base of a cursor. Each connection embeds exactly one (one open cursor at a
 * time), so queries allocate nothing. */
struct kz_dbrows {
    kz_db_t *db; /* the connection that owns this cursor */
};

/* Formats the connection's last-error text. */
void kz_db_set_error(kz_db_t *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs a failed statement: conflicts at debug (they are an expected outcome
 * such as a taken username), everything else at warn, with the first 80
 * characters of the SQL. */
void kz_db_log_failure(kz_db_t *db, int rc, const char *sql);

/* Runs a multi-statement script (no parameters) with timing and logging. */
int kz_db_exec_script(kz_db_t *db, const char *sql);

/* ---- Prepared-statement cache (one per connection) --------------------- */

/* One cached statement: the SQL text it was prepared from and the backend's
 * handle (sqlite3_stmt*, or the server-side statement name for PostgreSQL). */
typedef struct kz_stmt_entry {
    char *sql;         /* owned copy of the SQL text (the key) */
    uint64_t hash;     /* hash of sql, compared before strcmp */
    uint64_t last_use; /* cache clock at the last hit, for LRU eviction */
    void *handle;      /* backend statement, released by the cache's release hook */
} kz_stmt_entry_t;

/* A bounded map from SQL text to prepared statement with least-recently-used
 * eviction. A linear scan over at most KZ_STMT_CACHE_MAX hashes is cheaper
 * than the statement it finds. */
typedef struct kz_stmt_cache {
    kz_stmt_entry_t entries[KZ_STMT_CACHE_MAX];
    int n;         /* entries in use */
    uint64_t tick; /* LRU clock */
    /* Releases a backend handle; server_alive is false when the server side
     * is already gone (closing, or a reset connection). */
    void (*release)(void *ctx, void *handle, bool server_alive);
    void *ctx;            /* first argument of release (the connection) */
    const void *pinned;   /* handle that must not be evicted (an open cursor's), or NULL */
} kz_stmt_cache_t;

void kz_stmt_cache_init(kz_stmt_cache_t *c, void (*release)(void *, void *, bool), void *ctx);
/* The handle cached for sql, or NULL; marks it most recently used. */
void *kz_stmt_cache_get(kz_stmt_cache_t *c, const char *sql);
/* Adds sql -> handle (the cache takes ownership of handle), evicting the
 * least recently used unpinned entry when full. */
void kz_stmt_cache_put(kz_stmt_cache_t *c, const char *sql, void *handle);
/* Releases every entry. */
void kz_stmt_cache_clear(kz_stmt_cache_t *c, bool server_alive);

/* ---- Backends ------------------------------------------------------------ */

int kz_db_sqlite_open(const char *path, kz_db_t **out, char *err, size_t errlen);
int kz_db_pg_open(const char *url, kz_db_t **out, char *err, size_t errlen);

#endif
