/* PostgreSQL backend (libpq, synchronous, one connection per thread).
 *
 * Each distinct SQL text is prepared once per connection under a generated
 * name (kz1, kz2, ...) and then run with PQexecPrepared. Parameters go as
 * text with no declared types, so the server infers each one from the
 * statement (write CAST($1 AS BIGINT) where it cannot, e.g. a bare
 * `SELECT $1`); results come back as text. A connection the server dropped
 * is reset on the next call made outside a transaction; the call that
 * discovered the loss fails, since a write may or may not have happened. */
#include "store/db_internal.h"

#include "core/alloc.h"
#include "core/log.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

/* How often a statement run outside a transaction is retried after a
 * deadlock or serialization failure (the server rolled it back entirely). */
#define PG_BUSY_ATTEMPTS 3

/* The connection's single cursor: the whole result, walked by index. */
typedef struct pg_rows {
    kz_dbrows_t super; /* base: the owning connection */
    PGresult *res;     /* owned result, NULL when none */
    int row;           /* current row, -1 before the first kz_db_next */
    int nrows;         /* rows in res */
} pg_rows_t;

typedef struct pg_db {
    kz_db_t super;         /* base; must stay first */
    PGconn *conn;          /* the libpq connection */
    unsigned next_name;    /* counter for prepared-statement names */
    kz_stmt_cache_t cache; /* SQL text -> owned statement name (char *) */
    pg_rows_t rows;        /* the one cursor */
} pg_db_t;

static const kz_db_ops_t pg_ops;

/* ---- Errors ----------------------------------------------------------------- */

/* Maps a SQLSTATE to a KZ_DB_E* code. */
static int map_sqlstate(const char *state)
{
    if (!state) return KZ_DB_EERROR;
    if (strcmp(state, "23505") == 0) return KZ_DB_ECONFLICT; /* unique_violation */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return KZ_DB_EBUSY; /* serialization failure, deadlock, lock not available */
    return KZ_DB_EERROR;
}

/* Records the error carried by res (or by the connection when res is NULL)
 * and returns its code. Does not free res. */
static int fail(pg_db_t *db, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *conn_msg = PQerrorMessage(db->conn);
    if (primary)
        kz_db_set_error(&db->super, "%s (sqlstate %s)", primary, state ? state : "?");
    else if (res && PQresultStatus(res) == PGRES_EMPTY_QUERY)
        kz_db_set_error(&db->super, "empty statement");
    else if (conn_msg && *conn_msg)
        kz_db_set_error(&db->super, "%s", conn_msg);
    else
        kz_db_set_error(&db->super, "unexpected result %s", PQresStatus(PQresultStatus(res)));
    return map_sqlstate(state);
}

/* Routes server notices (warnings and above, see session_setup) to our log. */
static void notice_processor(void *arg, const char *message)
{
    size_t n = strlen(message);
    while (n > 0 && message[n - 1] == '\n') n--;
    kz_log_warn("postgres: %.*s", (int)n, message);
}

/* ---- Connection ----------------------------------------------------------- */

/* Settings applied to every (re)opened session. */
static int session_setup(pg_db_t *db)
{
    PGresult *res = PQexec(db->conn, "SET client_min_messages=warning");
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? KZ_DB_OK : fail(db, res);
    PQclear(res);
    return rc;
}

/* Cache release hook: frees a statement name, first dropping the statement
 * on the server when it still has it. Inside a failed transaction the
 * DEALLOCATE fails and the statement lives on until the session ends, which
 * is harmless. */
static void release_name(void *ctx, void *handle, bool server_alive)
{
    pg_db_t *db = ctx;
    if (server_alive && PQstatus(db->conn) == CONNECTION_OK) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", (const char *)handle);
        PQclear(PQexec(db->conn, sql));
    }
    kz_free(handle);
}

/* Makes sure the connection is usable before a call: a connection found
 * broken outside a transaction is reset once, forgetting the prepared
 * statements the old session held. Inside a transaction the work is lost,
 * so the call fails and the caller rolls back. */
static int ensure_conn(pg_db_t *db)
{
    if (PQstatus(db->conn) == CONNECTION_OK) return KZ_DB_OK;
    if (db->super.in_tx) {
        kz_db_set_error(&db->super, "connection to the server lost inside a transaction");
        return KZ_DB_EERROR;
    }
    kz_log_warn("postgres connection lost, reconnecting");
    kz_stmt_cache_clear(&db->cache, false);
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        kz_db_set_error(&db->super, "reconnect failed: %s", PQerrorMessage(db->conn));
        return KZ_DB_EERROR;
    }
    return session_setup(db);
}

/* Converts params to libpq's form, NUL-terminated text or NULL (integers
 * with %lld). One allocation holds the pointer array and every converted
 * value; the caller frees the returned array with kz_free. */
static const char **convert_params(const kz_dbval_t *params, int nparams)
{
    size_t bytes = 0;
    for (int i = 0; i < nparams; i++) {
        if (params[i].type == KZ_DBV_INT)
            bytes += 24;
        else if (params[i].type == KZ_DBV_TEXT && params[i].s)
            bytes += params[i].len + 1;
    }
    size_t ptrs = sizeof(char *) * (size_t)(nparams > 0 ? nparams : 1);
    char *block = kz_malloc(ptrs + bytes);
    const char **values = (const char **)block;
    char *p = block + ptrs;
    for (int i = 0; i < nparams; i++) {
        const kz_dbval_t *v = &params[i];
        if (v->type == KZ_DBV_INT) {
            values[i] = p;
            p += snprintf(p, 24, "%lld", (long long)v->i) + 1;
        } else if (v->type == KZ_DBV_TEXT && v->s) {
            values[i] = p;
            memcpy(p, v->s, v->len);
            p[v->len] = '\0';
            p += v->len + 1;
        } else {
            values[i] = NULL;
        }
    }
    return values;
}

/* Prepares sql on first use and runs it. On success *out owns a result with
 * status COMMAND_OK or TUPLES_OK. Statements outside a transaction are
 * retried after deadlocks and serialization failures, and once after the
 * server forgot a prepared statement. */
static int run_prepared(pg_db_t *db, const char *sql, const kz_dbval_t *params, int nparams,
                        PGresult **out)
{
    *out = NULL;
    int rc = KZ_DB_OK;
    bool refreshed = false;
    for (int attempt = 1;; attempt++) {
        rc = ensure_conn(db);
        if (rc != KZ_DB_OK) return rc;

        const char *name = kz_stmt_cache_get(&db->cache, sql);
        if (!name) {
            char *fresh = kz_asprintf("kz%u", ++db->next_name);
            PGresult *res = PQprepare(db->conn, fresh, sql, 0, NULL);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                rc = fail(db, res);
                PQclear(res);
                kz_free(fresh);
                return rc;
            }
            PQclear(res);
            kz_stmt_cache_put(&db->cache, sql, fresh);
            name = fresh;
        }

        const char **values = convert_params(params, nparams);
        PGresult *res = PQexecPrepared(db->conn, name, nparams, values, NULL, NULL, 0);
        kz_free(values);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *out = res;
            return KZ_DB_OK;
        }
        rc = fail(db, res);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        bool forgotten = state && strcmp(state, "26000") == 0; /* invalid_sql_statement_name */
        PQclear(res);
        if (db->super.in_tx) return rc;
        if (forgotten && !refreshed) {
            /* Something (a pooler, DISCARD ALL) dropped our statements. */
            kz_stmt_cache_clear(&db->cache, false);
            refreshed = true;
            continue;
        }
        if (rc != KZ_DB_EBUSY || attempt >= PG_BUSY_ATTEMPTS) return rc;
    }
}

static int pg_exec(kz_db_t *base, const char *sql, const kz_dbval_t *params, int nparams,
                   int64_t *affected)
{
    pg_db_t *db = (pg_db_t *)base;
    PGresult *res;
    int rc = run_prepared(db, sql, params, nparams, &res);
    if (rc != KZ_DB_OK) return rc;
    if (affected) {
        /* PQcmdTuples is "" for statements without a count; a SELECT's count
         * is rows returned, not changed. */
        const char *n = PQcmdTuples(res);
        *affected = strncmp(PQcmdStatus(res), "SELECT", 6) == 0 ? 0 : strtoll(n, NULL, 10);
    }
    PQclear(res);
    return KZ_DB_OK;
}

/* ---- Cursor ------------------------------------------------------------------ */

static int pg_query(kz_db_t *base, const char *sql, const kz_dbval_t *params, int nparams,
                    kz_dbrows_t **out)
{
    pg_db_t *db = (pg_db_t *)base;
    PGresult *res;
    int rc = run_prepared(db, sql, params, nparams, &res);
    if (rc != KZ_DB_OK) return rc;
    db->rows = (pg_rows_t){.super.db = base, .res = res, .row = -1, .nrows = PQntuples(res)};
    *out = &db->rows.super;
    return KZ_DB_OK;
}

static int pg_next(kz_dbrows_t *rows)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    if (!r->res || r->row >= r->nrows) return 0;
    r->row++;
    return r->row < r->nrows ? 1 : 0;
}

/* True when col can be read from the current row. */
static bool readable(const pg_rows_t *r, int col)
{
    return r->res && r->row >= 0 && r->row < r->nrows && col >= 0 && col < PQnfields(r->res);
}

static bool pg_isnull(kz_dbrows_t *rows, int col)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    return !readable(r, col) || PQgetisnull(r->res, r->row, col);
}

/* Integer value of a text column; PostgreSQL booleans ('t'/'f') read as 1/0. */
static int64_t pg_int(kz_dbrows_t *rows, int col)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    if (!readable(r, col) || PQgetisnull(r->res, r->row, col)) return 0;
    const char *s = PQgetvalue(r->res, r->row, col);
    if (s[0] == 't' && s[1] == '\0') return 1;
    if (s[0] == 'f' && s[1] == '\0') return 0;
    return strtoll(s, NULL, 10);
}

static const char *pg_text(kz_dbrows_t *rows, int col, size_t *len)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    if (len) *len = 0;
    if (!readable(r, col) || PQgetisnull(r->res, r->row, col)) return NULL;
    if (len) *len = (size_t)PQgetlength(r->res, r->row, col);
    return PQgetvalue(r->res, r->row, col);
}

static int pg_ncols(kz_dbrows_t *rows)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    return r->res ? PQnfields(r->res) : 0;
}

static const char *pg_colname(kz_dbrows_t *rows, int col)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    return r->res && col >= 0 && col < PQnfields(r->res) ? PQfname(r->res, col) : NULL;
}

/* Type OIDs from PostgreSQL's pg_type catalogue (stable across versions). */
enum {
    PG_BOOL = 16,
    PG_INT8 = 20,
    PG_INT2 = 21,
    PG_INT4 = 23,
    PG_OID = 26,
    PG_FLOAT4 = 700,
    PG_FLOAT8 = 701,
    PG_NUMERIC = 1700
};

static kz_dbcol_type_t pg_coltype(kz_dbrows_t *rows, int col)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    if (!readable(r, col) || PQgetisnull(r->res, r->row, col)) return KZ_DBCOL_NULL;
    switch (PQftype(r->res, col)) {
    case PG_INT2:
    case PG_INT4:
    case PG_INT8:
    case PG_OID: return KZ_DBCOL_INT;
    case PG_FLOAT4:
    case PG_FLOAT8:
    case PG_NUMERIC: return KZ_DBCOL_REAL;
    case PG_BOOL: return KZ_DBCOL_BOOL;
    default: return KZ_DBCOL_TEXT;
    }
}

static void pg_rows_free(kz_dbrows_t *rows)
{
    pg_rows_t *r = (pg_rows_t *)rows;
    PQclear(r->res);
    r->res = NULL;
    r->nrows = 0;
    r->row = -1;
}

/* ---- Transactions and scripts ---------------------------------------------- */

/* Runs a parameterless command (or script) with PQexec. On success *cmd
 * (may be NULL) receives the command tag, e.g. "COMMIT" or "ROLLBACK". */
static int run_simple(pg_db_t *db, const char *sql, char *cmd, size_t cmdlen)
{
    PGresult *res = PQexec(db->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = KZ_DB_OK;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (cmd) snprintf(cmd, cmdlen, "%s", PQcmdStatus(res));
    } else {
        rc = fail(db, res);
    }
    PQclear(res);
    return rc;
}

static int pg_begin(kz_db_t *base, bool readonly)
{
    pg_db_t *db = (pg_db_t *)base;
    int rc = ensure_conn(db);
    if (rc != KZ_DB_OK) return rc;
    rc = run_simple(db, readonly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", NULL, 0);
    if (rc == KZ_DB_OK) base->in_tx = true;
    return rc;
}

/* Makes sure the session is outside any transaction, keeping errmsg. */
static void end_tx(pg_db_t *db)
{
    db->super.in_tx = false;
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        char saved[sizeof db->super.errmsg];
        memcpy(saved, db->super.errmsg, sizeof saved);
        run_simple(db, "ROLLBACK", NULL, 0);
        memcpy(db->super.errmsg, saved, sizeof saved);
    }
}

static int pg_commit(kz_db_t *base)
{
    pg_db_t *db = (pg_db_t *)base;
    char tag[32] = "";
    int rc = run_simple(db, "COMMIT", tag, sizeof tag);
    /* COMMIT of a transaction that hit an error succeeds with the tag
     * ROLLBACK: nothing was written, and the caller must know. */
    if (rc == KZ_DB_OK && strcmp(tag, "COMMIT") != 0) {
        kz_db_set_error(base, "transaction was rolled back by an earlier error");
        rc = KZ_DB_EERROR;
    }
    end_tx(db);
    return rc;
}

static int pg_rollback(kz_db_t *base)
{
    pg_db_t *db = (pg_db_t *)base;
    int rc = KZ_DB_OK;
    /* On a lost connection the server has already discarded the work. */
    if (PQstatus(db->conn) == CONNECTION_OK) rc = run_simple(db, "ROLLBACK", NULL, 0);
    end_tx(db);
    return rc;
}

/* PQexec runs every statement of the script (in one implicit transaction
 * when none is open) and stops at the first error. */
static int pg_exec_script(kz_db_t *base, const char *sql)
{
    pg_db_t *db = (pg_db_t *)base;
    int rc = ensure_conn(db);
    return rc == KZ_DB_OK ? run_simple(db, sql, NULL, 0) : rc;
}

/* ---- Open / close ------------------------------------------------------------ */

static void pg_close(kz_db_t *base)
{
    pg_db_t *db = (pg_db_t *)base;
    pg_rows_free(&db->rows.super);
    /* Closing ends the session: the server drops its statements itself. */
    kz_stmt_cache_clear(&db->cache, false);
    PQfinish(db->conn);
    kz_free(db);
}

/* Connects to url. On success *out owns the connection. */
int kz_db_pg_open(const char *url, kz_db_t **out, char *err, size_t errlen)
{
    PGconn *conn = PQconnectdb(url);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "postgres connect: %s", conn ? PQerrorMessage(conn) : "out of memory");
        /* One line: libpq's message ends in a newline and may span several. */
        for (char *p = err; *p; p++)
            if (*p == '\n' || *p == '\t') *p = ' ';
        for (size_t n = strlen(err); n > 0 && err[n - 1] == ' '; n--) err[n - 1] = '\0';
        PQfinish(conn);
        return KZ_DB_EERROR;
    }
    PQsetNoticeProcessor(conn, notice_processor, NULL);

    pg_db_t *db = kz_calloc(1, sizeof *db);
    db->super.ops = &pg_ops;
    db->super.kind = KZ_DB_POSTGRES;
    db->conn = conn;
    db->rows = (pg_rows_t){.super.db = &db->super, .row = -1};
    kz_stmt_cache_init(&db->cache, release_name, db);
    if (session_setup(db) != KZ_DB_OK) {
        snprintf(err, errlen, "postgres session setup: %s", db->super.errmsg);
        pg_close(&db->super);
        return KZ_DB_EERROR;
    }
    *out = &db->super;
    return KZ_DB_OK;
}

static const kz_db_ops_t pg_ops = {
    .close = pg_close,
    .exec = pg_exec,
    .query = pg_query,
    .next = pg_next,
    .isnull = pg_isnull,
    .get_int = pg_int,
    .get_text = pg_text,
    .rows_free = pg_rows_free,
    .ncols = pg_ncols,
    .colname = pg_colname,
    .coltype = pg_coltype,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .exec_script = pg_exec_script,
};
