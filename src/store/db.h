/* The store: one SQL interface over two backends, SQLite (WAL, embedded,
 * the default) and PostgreSQL (libpq).
 *
 * Statements are written once, in the common subset of both dialects, with
 * PostgreSQL-style placeholders $1..$N (the SQLite backend binds them as
 * ?N). Values cross the interface as kz_dbval_t: NULL, 64-bit integer or
 * text; times are stored as BIGINT unix milliseconds and JSON as TEXT, so
 * the same schema and queries run on both. Each backend keeps a prepared
 * statement cache keyed by the SQL text.
 *
 * A kz_db_t is one connection and is used by one thread at a time (each
 * worker-pool thread owns one). Every call blocks: never call from an I/O
 * thread. */
#ifndef KZ_STORE_DB_H
#define KZ_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct kz_db kz_db_t;
typedef struct kz_dbrows kz_dbrows_t;

typedef enum { KZ_DB_SQLITE = 1, KZ_DB_POSTGRES = 2 } kz_db_kind_t;

/* Result codes of every kz_db_* call that can fail. */
enum {
    KZ_DB_OK = 0,
    KZ_DB_ECONFLICT = -1, /* unique or primary-key violation */
    KZ_DB_EBUSY = -2,     /* lock or serialization failure that outlasted retries */
    KZ_DB_EERROR = -3,    /* anything else; kz_db_errmsg() has the backend's text */
};

typedef enum { KZ_DBV_NULL = 0, KZ_DBV_INT, KZ_DBV_TEXT } kz_dbval_type_t;

/* A bound parameter. Text is borrowed for the duration of the call. */
typedef struct kz_dbval {
    kz_dbval_type_t type;
    int64_t i;
    const char *s;
    size_t len;
} kz_dbval_t;

#define KZ_DBNULL ((kz_dbval_t){.type = KZ_DBV_NULL})
#define KZ_DBINT(v) ((kz_dbval_t){.type = KZ_DBV_INT, .i = (int64_t)(v)})
/* NUL-terminated text; a NULL pointer binds SQL NULL. */
#define KZ_DBTEXT(str) kz_dbtext(str)
#define KZ_DBTEXTN(str, n) ((kz_dbval_t){.type = KZ_DBV_TEXT, .s = (str), .len = (n)})
kz_dbval_t kz_dbtext(const char *s);

/* Opens a connection. address is "postgres://..." / "postgresql://..." for
 * PostgreSQL, otherwise a SQLite file path (created with its parent
 * directory if missing; opened in WAL mode, synchronous FULL, foreign keys
 * on, busy timeout). Returns 0 or a negative code with a message in err. */
int kz_db_open(const char *address, kz_db_t **out, char *err, size_t errlen);
/* Closes the connection and its statement cache; NULL is a no-op. */
void kz_db_close(kz_db_t *db);
kz_db_kind_t kz_db_kind(const kz_db_t *db);
/* Text of the last error on this connection (borrowed, valid until the next call). */
const char *kz_db_errmsg(const kz_db_t *db);

/* Runs a statement that returns no rows. *affected (may be NULL) receives
 * the number of rows changed. */
int kz_db_exec(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams,
               int64_t *affected);

/* Runs a query; *rows receives a cursor to walk with kz_db_next (release
 * with kz_db_rows_free even when empty). Only one cursor may be open per
 * connection at a time. */
int kz_db_query(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams,
                kz_dbrows_t **rows);
/* Advances to the next row: 1 = row available, 0 = done, negative = error. */
int kz_db_next(kz_dbrows_t *rows);
bool kz_db_isnull(kz_dbrows_t *rows, int col);
int64_t kz_db_int(kz_dbrows_t *rows, int col);
/* Borrowed text of a column (valid until the next kz_db_next/free), NULL for
 * SQL NULL; *len (may be NULL) receives the byte length. */
const char *kz_db_text(kz_dbrows_t *rows, int col, size_t *len);
void kz_db_rows_free(kz_dbrows_t *rows);
/* Columns of the result, for callers that do not know its shape (the Lua
 * runtime's nk.sql_query). Call once kz_db_next has returned 1: the number
 * of columns, and the name of column col (borrowed, valid until
 * kz_db_rows_free; NULL when col is out of range). */
int kz_db_ncols(kz_dbrows_t *rows);
const char *kz_db_colname(kz_dbrows_t *rows, int col);
/* What column col of the current row holds. SQLite reports the value's own
 * storage class (BLOB reads as TEXT); PostgreSQL the column's type: int2,
 * int4, int8 and oid are INT, float4, float8 and numeric REAL, bool BOOL
 * (kz_db_int gives 1/0), everything else TEXT. Read INT with kz_db_int and
 * the others with kz_db_text. */
typedef enum {
    KZ_DBCOL_NULL = 0,
    KZ_DBCOL_INT,
    KZ_DBCOL_REAL,
    KZ_DBCOL_BOOL,
    KZ_DBCOL_TEXT
} kz_dbcol_type_t;
kz_dbcol_type_t kz_db_coltype(kz_dbrows_t *rows, int col);
/* Owned copy of a text column (kz_free), NULL for SQL NULL. */
char *kz_db_text_dup(kz_dbrows_t *rows, int col);
/* Copies a text column holding an id into out ("" when NULL or longer than
 * a UUID). */
void kz_db_text_id(kz_dbrows_t *rows, int col, char out[37]);

/* Transactions. kz_db_begin starts a write transaction (SQLite: BEGIN
 * IMMEDIATE behind a process-wide writer mutex, so writers queue in order
 * instead of spinning on SQLITE_BUSY). A read-only transaction gives a
 * consistent snapshot. kz_db_rollback is safe to call when no transaction
 * is open. */
int kz_db_begin(kz_db_t *db);
int kz_db_begin_read(kz_db_t *db);
int kz_db_commit(kz_db_t *db);
int kz_db_rollback(kz_db_t *db);

/* Work that must wait until a transaction's writes are durable (live
 * notifications): fn runs on the thread that ended the transaction, with
 * committed false after a rollback or a failed commit. Set once at start-up. */
typedef void (*kz_db_tx_end_fn)(bool committed);
void kz_db_set_tx_end_hook(kz_db_tx_end_fn fn);

/* Schema migrations, versioned and applied in order inside transactions;
 * kz_migrate_up applies the missing ones (idempotent). kz_migrate_status
 * writes one line per migration ("applied" / "pending") to out. */
int kz_migrate_up(kz_db_t *db, char *err, size_t errlen);
int kz_migrate_status(kz_db_t *db, FILE *out);
/* Number of migrations compiled into this binary. */
int kz_migrate_count(void);

#endif
