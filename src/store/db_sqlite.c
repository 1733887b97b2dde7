/* SQLite backend (WAL, one connection per thread).
 *
 * Statements arrive with PostgreSQL placeholders $N and are prepared once
 * per connection as ?N (same length, so the translation is a character
 * swap). Writers in this process are serialized by one process-wide mutex
 * taken before BEGIN IMMEDIATE (and around any writing statement run
 * outside a transaction), so they queue in order instead of spinning in
 * SQLite's busy handler; the busy timeout then only covers other processes.
 * Readers never take the mutex: WAL gives them a snapshot. */
#include "store/db_internal.h"

#include "core/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#define SQ_BUSY_TIMEOUT_MS 10000

/* The connection's single cursor. */
typedef struct sq_rows {
    kz_dbrows_t super;  /* base: the owning connection */
    sqlite3_stmt *stmt; /* the cached statement being stepped, NULL when finished */
    int pending;        /* result of the first step not yet returned by next (0 = none) */
    bool has_row;       /* the statement is positioned on a row */
    bool holds_lock;    /* this cursor holds the writer mutex (write outside a transaction) */
} sq_rows_t;

typedef struct sq_db {
    kz_db_t super;         /* base; must stay first */
    sqlite3 *conn;         /* the SQLite handle */
    bool holds_lock;       /* kz_db_begin took the writer mutex */
    bool read_tx;          /* the open transaction came from kz_db_begin_read */
    kz_stmt_cache_t cache; /* SQL text -> sqlite3_stmt* */
    sq_rows_t rows;        /* the one cursor */
} sq_db_t;

/* Serializes writers across every SQLite connection of the process. Error
 * checking, so a thread that already holds it (a write transaction on another
 * connection) gets an error instead of deadlocking on itself. */
static pthread_mutex_t writer_mutex = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;

static const kz_db_ops_t sq_ops;

/* Takes the writer mutex. Returns KZ_DB_OK or KZ_DB_EBUSY when this thread
 * already holds it through another connection. */
static int writer_lock(sq_db_t *db)
{
    int rc = pthread_mutex_lock(&writer_mutex);
    if (rc == 0) return KZ_DB_OK;
    kz_db_set_error(&db->super,
                    "sqlite writer lock: %s (this thread already holds it through an open write "
                    "transaction or writing cursor)",
                    strerror(rc));
    return KZ_DB_EBUSY;
}

static void writer_unlock(void)
{
    pthread_mutex_unlock(&writer_mutex);
}

/* Maps an extended SQLite result code to a KZ_DB_E* code. */
static int map_code(int ext)
{
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) return KZ_DB_ECONFLICT;
    if ((ext & 0xff) == SQLITE_BUSY || (ext & 0xff) == SQLITE_LOCKED) return KZ_DB_EBUSY;
    return KZ_DB_EERROR;
}

/* Records the connection's current error and returns its KZ_DB_E* code. Call
 * before sqlite3_reset, which may replace the message. */
static int fail(sq_db_t *db)
{
    int ext = sqlite3_extended_errcode(db->conn);
    kz_db_set_error(&db->super, "%s (sqlite %d)", sqlite3_errmsg(db->conn), ext);
    return map_code(ext);
}

/* ---- Statements ----------------------------------------------------------- */

/* Copies sql with every $N placeholder turned into ?N. Quoted strings,
 * quoted identifiers and comments are copied untouched, so a '$1' literal
 * stays text. Returns an owned string. */
static char *translate_placeholders(const char *sql)
{
    char *out = kz_strdup(sql);
    for (char *p = out; *p; p++) {
        if (*p == '\'' || *p == '"') {
            char q = *p;
            /* A doubled quote inside a literal closes and reopens it, which
             * this loop handles without special casing. */
            for (p++; *p && *p != q; p++) {
            }
            if (!*p) break;
        } else if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n') p++;
            if (!*p) break;
        } else if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            if (!end) break;
            p = end + 1;
        } else if (p[0] == '$' && p[1] >= '0' && p[1] <= '9') {
            *p = '?';
        }
    }
    return out;
}

/* True when s holds only whitespace and semicolons. */
static bool only_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ';' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return false;
    return true;
}

/* Compiles sql (one statement) into *out, uncached. */
static int compile(sq_db_t *db, const char *sql, sqlite3_stmt **out)
{
    char *tsql = translate_placeholders(sql);
    const char *tail = NULL;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v3(db->conn, tsql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) {
        kz_free(tsql);
        return fail(db);
    }
    bool extra = tail && !only_blank(tail);
    kz_free(tsql);
    if (!stmt || extra) {
        sqlite3_finalize(stmt);
        kz_db_set_error(&db->super, stmt ? "more than one statement in one call" : "empty statement");
        return KZ_DB_EERROR;
    }
    *out = stmt;
    return KZ_DB_OK;
}

/* The cached statement for sql, compiled and cached on first use. The cache
 * keeps ownership. */
static int prepare(sq_db_t *db, const char *sql, sqlite3_stmt **out)
{
    sqlite3_stmt *stmt = kz_stmt_cache_get(&db->cache, sql);
    if (!stmt) {
        int rc = compile(db, sql, &stmt);
        if (rc != KZ_DB_OK) return rc;
        kz_stmt_cache_put(&db->cache, sql, stmt);
    }
    *out = stmt;
    return KZ_DB_OK;
}

/* Cache release hook: finalizes an evicted statement. */
static void release_stmt(void *ctx, void *handle, bool server_alive)
{
    sqlite3_finalize(handle);
}

/* Binds params to stmt. Text is copied by SQLite when transient (a cursor
 * steps after the call returns), else borrowed. */
static int bind_params(sq_db_t *db, sqlite3_stmt *stmt, const kz_dbval_t *params, int nparams,
                       bool transient)
{
    int want = sqlite3_bind_parameter_count(stmt);
    if (want != nparams) {
        kz_db_set_error(&db->super, "statement has %d parameters, %d given", want, nparams);
        return KZ_DB_EERROR;
    }
    for (int i = 0; i < nparams; i++) {
        const kz_dbval_t *v = &params[i];
        int rc;
        if (v->type == KZ_DBV_INT)
            rc = sqlite3_bind_int64(stmt, i + 1, v->i);
        else if (v->type == KZ_DBV_TEXT && v->s)
            rc = sqlite3_bind_text64(stmt, i + 1, v->s, v->len,
                                     transient ? SQLITE_TRANSIENT : SQLITE_STATIC, SQLITE_UTF8);
        else
            rc = sqlite3_bind_null(stmt, i + 1);
        if (rc != SQLITE_OK) {
            int code = fail(db);
            sqlite3_clear_bindings(stmt);
            return code;
        }
    }
    return KZ_DB_OK;
}

/* Returns a used statement to its idle state. */
static void finish_stmt(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* Refuses a writing statement inside a read-only transaction, as
 * PostgreSQL does: SQLite would silently upgrade the deferred transaction to
 * a write one, outside the writer mutex. */
static int check_writable(sq_db_t *db, sqlite3_stmt *stmt)
{
    if (!db->read_tx || sqlite3_stmt_readonly(stmt)) return KZ_DB_OK;
    kz_db_set_error(&db->super, "cannot write in a read-only transaction");
    return KZ_DB_EERROR;
}

/* Runs stmt to completion, discarding rows. Returns KZ_DB_OK or an error
 * code with the message recorded. */
static int run(sq_db_t *db, sqlite3_stmt *stmt)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    int code = rc == SQLITE_DONE ? KZ_DB_OK : fail(db);
    finish_stmt(stmt);
    return code;
}

/* Runs one fixed statement (transaction control) through the cache. */
static int run_simple(sq_db_t *db, const char *sql)
{
    sqlite3_stmt *stmt;
    int rc = prepare(db, sql, &stmt);
    return rc == KZ_DB_OK ? run(db, stmt) : rc;
}

static int sq_exec(kz_db_t *base, const char *sql, const kz_dbval_t *params, int nparams,
                   int64_t *affected)
{
    sq_db_t *db = (sq_db_t *)base;
    sqlite3_stmt *stmt;
    sqlite3_stmt *temp = NULL;
    int rc = prepare(db, sql, &stmt);
    if (rc != KZ_DB_OK) return rc;
    if (stmt == db->cache.pinned) {
        /* The open cursor is stepping this very statement: use a private
         * copy for this one call. */
        rc = compile(db, sql, &temp);
        if (rc != KZ_DB_OK) return rc;
        stmt = temp;
    }
    rc = check_writable(db, stmt);
    if (rc == KZ_DB_OK) rc = bind_params(db, stmt, params, nparams, false);
    if (rc == KZ_DB_OK) {
        bool lock = !sqlite3_stmt_readonly(stmt) && !base->in_tx;
        if (lock) rc = writer_lock(db);
        if (rc == KZ_DB_OK) {
            sqlite3_int64 before = sqlite3_total_changes64(db->conn);
            rc = run(db, stmt);
            /* sqlite3_changes64 keeps the count of the last DML statement,
             * so only trust it when this statement changed something. */
            if (rc == KZ_DB_OK && affected)
                *affected = sqlite3_total_changes64(db->conn) != before ? sqlite3_changes64(db->conn) : 0;
            if (lock) writer_unlock();
        }
    }
    sqlite3_finalize(temp);
    return rc;
}

/* ---- Cursor ------------------------------------------------------------------ */

/* Ends the cursor's statement: resets it and releases the writer mutex if
 * the cursor held it. Idempotent. */
static void rows_finish(sq_rows_t *r)
{
    if (r->stmt) {
        finish_stmt(r->stmt);
        r->stmt = NULL;
    }
    r->has_row = false;
    r->pending = 0;
    if (r->holds_lock) {
        r->holds_lock = false;
        writer_unlock();
    }
}

static int sq_query(kz_db_t *base, const char *sql, const kz_dbval_t *params, int nparams,
                    kz_dbrows_t **out)
{
    sq_db_t *db = (sq_db_t *)base;
    sq_rows_t *r = &db->rows;
    sqlite3_stmt *stmt;
    int rc = prepare(db, sql, &stmt);
    if (rc != KZ_DB_OK) return rc;
    rc = check_writable(db, stmt);
    if (rc != KZ_DB_OK) return rc;
    rc = bind_params(db, stmt, params, nparams, true);
    if (rc != KZ_DB_OK) return rc;

    *r = (sq_rows_t){.super.db = base, .stmt = stmt};
    if (!sqlite3_stmt_readonly(stmt) && !base->in_tx) {
        /* INSERT ... RETURNING and friends: hold the writer mutex until the
         * statement (and so its implicit transaction) ends. */
        rc = writer_lock(db);
        if (rc != KZ_DB_OK) {
            sqlite3_clear_bindings(stmt);
            r->stmt = NULL;
            return rc;
        }
        r->holds_lock = true;
    }
    /* Step once now so errors (constraint, busy, ...) surface here, as they
     * do on PostgreSQL. */
    int step = sqlite3_step(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = fail(db);
        rows_finish(r);
        return rc;
    }
    r->pending = step;
    if (step == SQLITE_DONE) {
        rows_finish(r);
        r->pending = SQLITE_DONE;
    } else {
        db->cache.pinned = stmt;
    }
    *out = &r->super;
    return KZ_DB_OK;
}

static int sq_next(kz_dbrows_t *rows)
{
    sq_rows_t *r = (sq_rows_t *)rows;
    sq_db_t *db = (sq_db_t *)rows->db;
    int step;
    if (r->pending) {
        step = r->pending;
        r->pending = 0;
    } else if (r->stmt) {
        step = sqlite3_step(r->stmt);
    } else {
        return 0;
    }
    if (step == SQLITE_ROW) {
        r->has_row = true;
        return 1;
    }
    if (step == SQLITE_DONE) {
        rows_finish(r);
        return 0;
    }
    int rc = fail(db);
    kz_db_log_failure(rows->db, rc, sqlite3_sql(r->stmt));
    rows_finish(r);
    return rc;
}

/* True when col can be read from the current row. */
static bool readable(sq_rows_t *r, int col)
{
    return r->has_row && col >= 0 && col < sqlite3_column_count(r->stmt);
}

static bool sq_isnull(kz_dbrows_t *rows, int col)
{
    sq_rows_t *r = (sq_rows_t *)rows;
    return !readable(r, col) || sqlite3_column_type(r->stmt, col) == SQLITE_NULL;
}

static int64_t sq_int(kz_dbrows_t *rows, int col)
{
    sq_rows_t *r = (sq_rows_t *)rows;
    return readable(r, col) ? sqlite3_column_int64(r->stmt, col) : 0;
}

static const char *sq_text(kz_dbrows_t *rows, int col, size_t *len)
{
    sq_rows_t *r = (sq_rows_t *)rows;
    if (len) *len = 0;
    if (!readable(r, col) || sqlite3_column_type(r->stmt, col) == SQLITE_NULL) return NULL;
    const char *s = (const char *)sqlite3_column_text(r->stmt, col);
    if (len) *len = (size_t)sqlite3_column_bytes(r->stmt, col);
    return s;
}

static int sq_ncols(kz_dbrows_t *rows)
{
    sq_rows_t *r = (sq_rows_t *)rows;
    return r->has_row ? sqlite3_column_count(r->stmt) : 0;
}

static const char *sq_colname(kz_dbrows_t *rows, int col)
{
    sq_rows_t *r = (sq_rows_t *)rows;
    return readable(r, col) ? sqlite3_column_name(r->stmt, col) : NULL;
}

static kz_dbcol_type_t sq_coltype(kz_dbrows_t *rows, int col)
{
    sq_rows_t *r = (sq_rows_t *)rows;
    if (!readable(r, col)) return KZ_DBCOL_NULL;
    switch (sqlite3_column_type(r->stmt, col)) {
    case SQLITE_INTEGER: return KZ_DBCOL_INT;
    case SQLITE_FLOAT: return KZ_DBCOL_REAL;
    case SQLITE_NULL: return KZ_DBCOL_NULL;
    default: return KZ_DBCOL_TEXT;
    }
}

static void sq_rows_free(kz_dbrows_t *rows)
{
    sq_db_t *db = (sq_db_t *)rows->db;
    rows_finish((sq_rows_t *)rows);
    db->cache.pinned = NULL;
}

/* ---- Transactions --------------------------------------------------------- */

static int sq_begin(kz_db_t *base, bool readonly)
{
    sq_db_t *db = (sq_db_t *)base;
    int rc;
    if (readonly) {
        rc = run_simple(db, "BEGIN");
    } else {
        rc = writer_lock(db);
        if (rc != KZ_DB_OK) return rc;
        rc = run_simple(db, "BEGIN IMMEDIATE");
        if (rc != KZ_DB_OK)
            writer_unlock();
        else
            db->holds_lock = true;
    }
    if (rc == KZ_DB_OK) {
        base->in_tx = true;
        db->read_tx = readonly;
    }
    return rc;
}

/* Ends whatever transaction is open without touching errmsg, and releases
 * the writer mutex. */
static void end_tx(sq_db_t *db)
{
    if (!sqlite3_get_autocommit(db->conn)) {
        char saved[sizeof db->super.errmsg];
        memcpy(saved, db->super.errmsg, sizeof saved);
        run_simple(db, "ROLLBACK");
        memcpy(db->super.errmsg, saved, sizeof saved);
    }
    db->super.in_tx = false;
    db->read_tx = false;
    if (db->holds_lock) {
        db->holds_lock = false;
        writer_unlock();
    }
}

static int sq_commit(kz_db_t *base)
{
    sq_db_t *db = (sq_db_t *)base;
    int rc = KZ_DB_OK;
    /* SQLite may already have rolled back on its own (I/O error, full disk). */
    if (sqlite3_get_autocommit(db->conn)) {
        kz_db_set_error(base, "the transaction was rolled back by an earlier error");
        rc = KZ_DB_EERROR;
    } else {
        rc = run_simple(db, "COMMIT");
    }
    end_tx(db);
    return rc;
}

static int sq_rollback(kz_db_t *base)
{
    sq_db_t *db = (sq_db_t *)base;
    int rc = KZ_DB_OK;
    if (!sqlite3_get_autocommit(db->conn)) rc = run_simple(db, "ROLLBACK");
    end_tx(db);
    return rc;
}

static int sq_exec_script(kz_db_t *base, const char *sql)
{
    sq_db_t *db = (sq_db_t *)base;
    bool lock = !base->in_tx;
    if (lock) {
        int rc = writer_lock(db);
        if (rc != KZ_DB_OK) return rc;
    }
    char *msg = NULL;
    int rc = KZ_DB_OK;
    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int ext = sqlite3_extended_errcode(db->conn);
        kz_db_set_error(base, "%s (sqlite %d)", msg ? msg : sqlite3_errmsg(db->conn), ext);
        rc = map_code(ext);
    }
    sqlite3_free(msg);
    if (lock) writer_unlock();
    return rc;
}

/* ---- Open / close ------------------------------------------------------------ */

static void sq_close(kz_db_t *base)
{
    sq_db_t *db = (sq_db_t *)base;
    rows_finish(&db->rows);
    if (base->in_tx) end_tx(db);
    kz_stmt_cache_clear(&db->cache, true);
    sqlite3_close_v2(db->conn);
    kz_free(db);
}

/* Creates the directory that will hold path, with its parents (mkdir -p).
 * Returns 0 or -1 with err filled in. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *dir = kz_strdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; rc == 0; p++) {
            if (*p != '/' && *p != '\0') continue;
            char c = *p;
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
                rc = -1;
            }
            *p = c;
            if (c == '\0') break;
        }
        struct stat st;
        if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
            snprintf(err, errlen, "%s is not a directory", dir);
            rc = -1;
        }
    }
    kz_free(dir);
    return rc;
}

/* sqlite3_exec callback keeping the first column of the first row. */
static int first_value(void *ctx, int ncols, char **values, char **names)
{
    char *out = ctx;
    if (ncols > 0 && values[0] && !out[0]) snprintf(out, 16, "%s", values[0]);
    return 0;
}

/* Applies the connection settings. Returns KZ_DB_OK or an error with err filled. */
static int configure(sqlite3 *conn, bool memory, char *err, size_t errlen)
{
    sqlite3_extended_result_codes(conn, 1);
    sqlite3_busy_timeout(conn, SQ_BUSY_TIMEOUT_MS);
    /* Double-quoted text is an identifier, as in PostgreSQL, never a string. */
    sqlite3_db_config(conn, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
    sqlite3_db_config(conn, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);

    char mode[16] = "";
    char *msg = NULL;
    if (sqlite3_exec(conn, "PRAGMA journal_mode=WAL", first_value, mode, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite journal_mode=WAL: %s", msg ? msg : sqlite3_errmsg(conn));
        sqlite3_free(msg);
        return KZ_DB_EERROR;
    }
    if (strcmp(mode, memory ? "memory" : "wal") != 0) {
        snprintf(err, errlen, "sqlite could not enable WAL (journal_mode is %s)", mode);
        return KZ_DB_EERROR;
    }
    if (sqlite3_exec(conn, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", NULL, NULL, &msg) !=
        SQLITE_OK) {
        snprintf(err, errlen, "sqlite pragmas: %s", msg ? msg : sqlite3_errmsg(conn));
        sqlite3_free(msg);
        return KZ_DB_EERROR;
    }
    return KZ_DB_OK;
}

/* Opens (creating if missing) the SQLite database at path, or a private
 * in-memory database for ":memory:". On success *out owns the connection. */
int kz_db_sqlite_open(const char *path, kz_db_t **out, char *err, size_t errlen)
{
    bool memory = strcmp(path, ":memory:") == 0;
    if (!memory && make_parent_dirs(path, err, errlen) != 0) return KZ_DB_EERROR;

    sqlite3 *conn = NULL;
    int rc = sqlite3_open_v2(path, &conn,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite open %s: %s", path, conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
        sqlite3_close_v2(conn);
        return KZ_DB_EERROR;
    }
    if (configure(conn, memory, err, errlen) != KZ_DB_OK) {
        sqlite3_close_v2(conn);
        return KZ_DB_EERROR;
    }

    sq_db_t *db = kz_calloc(1, sizeof *db);
    db->super.ops = &sq_ops;
    db->super.kind = KZ_DB_SQLITE;
    db->conn = conn;
    db->rows.super.db = &db->super;
    kz_stmt_cache_init(&db->cache, release_stmt, db);
    *out = &db->super;
    return KZ_DB_OK;
}

static const kz_db_ops_t sq_ops = {
    .close = sq_close,
    .exec = sq_exec,
    .query = sq_query,
    .next = sq_next,
    .isnull = sq_isnull,
    .get_int = sq_int,
    .get_text = sq_text,
    .rows_free = sq_rows_free,
    .ncols = sq_ncols,
    .colname = sq_colname,
    .coltype = sq_coltype,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .exec_script = sq_exec_script,
};
