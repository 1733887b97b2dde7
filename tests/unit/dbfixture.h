/* Shared fixture for unit tests that need a migrated store on both backends.
 *
 * KZ_DB_TEST(suite, name) declares a Criterion test that runs twice, as
 * parameters: on a SQLite file in a fresh mkdtemp directory, and on a fresh
 * PostgreSQL database created for the test in the cluster at
 * $KZ_TEST_PG_URL (tests/support/pg.sh start DIR prints one) and dropped at
 * the end. Without that variable the PostgreSQL runs FAIL: they are never
 * skipped. Every database is migrated (kz_migrate_up) before the body runs.
 *
 * Criterion runs each test in its own process, possibly in parallel, so all
 * state lives in the per-process fixture `dbfx`, and the .fini hook cleans up
 * even after a failed assertion. Same approach as tests/unit/test_db.c.
 *
 * Include once per test file, after <criterion/criterion.h>. */
#ifndef KZ_TEST_DBFIXTURE_H
#define KZ_TEST_DBFIXTURE_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/db.h"

enum dbfx_kind { DBFX_SQLITE = 0, DBFX_POSTGRES = 1 };

/* Test parameter. Plain data only: Criterion copies it into the test process. */
struct dbfx_param {
    int kind;
};

static struct dbfx_param dbfx_params[] = {{DBFX_SQLITE}, {DBFX_POSTGRES}};

/* Everything one test process owns. */
static struct dbfx {
    int kind;             /* enum dbfx_kind */
    const char *label;    /* backend name for messages */
    char address[1024];   /* address to open more connections to the same database */
    char tmpdir[256];     /* SQLite runs: the mkdtemp directory */
    char pgname[64];      /* PostgreSQL runs: the database created for this test */
    char admin_url[1024]; /* PostgreSQL runs: $KZ_TEST_PG_URL */
    kz_db_t *db;          /* the test's main connection */
} dbfx;

/* Fails the test unless expr returns KZ_DB_OK, showing the backend's message. */
#define DB_OK(db, expr)                                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, KZ_DB_OK, "[%s] %s returned %d: %s", dbfx.label, #expr, rc_,             \
                     (db) ? kz_db_errmsg(db) : "");                                                \
    } while (0)

/* Fails the test unless expr returns the code want. */
#define DB_RC(db, expr, want)                                                                      \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, (want), "[%s] %s returned %d, want %d (%s)", dbfx.label, #expr, rc_,     \
                     (int)(want), (db) ? kz_db_errmsg(db) : "");                                   \
    } while (0)

/* Builds in out the URL of database name in the cluster of url (same
 * credentials, host, port and query string). */
static inline void dbfx_url_with_database(const char *url, const char *name, char *out, size_t outlen)
{
    const char *hostpart = strstr(url, "://");
    cr_assert(hostpart, "bad KZ_TEST_PG_URL: %s", url);
    hostpart += 3;
    const char *path = strchr(hostpart, '/');
    const char *query = strchr(hostpart, '?');
    if (query && path && path > query) path = NULL;
    size_t baselen = path ? (size_t)(path - url) : query ? (size_t)(query - url) : strlen(url);
    snprintf(out, outlen, "%.*s/%s%s", (int)baselen, url, name, query ? query : "");
}

/* Opens the test's fresh database into dbfx and migrates it. */
static inline void dbfx_setup(const struct dbfx_param *p)
{
    char err[512] = "";
    /* The tests provoke conflicts on purpose; their warn lines are noise.
     * Set KZ_TEST_VERBOSE=1 to see them. */
    if (!getenv("KZ_TEST_VERBOSE")) kz_log_set_level(KZ_LOG_ERROR);
    memset(&dbfx, 0, sizeof dbfx);
    dbfx.kind = p->kind;
    if (dbfx.kind == DBFX_SQLITE) {
        dbfx.label = "sqlite";
        snprintf(dbfx.tmpdir, sizeof dbfx.tmpdir, "/tmp/kz-test-acct-XXXXXX");
        cr_assert(mkdtemp(dbfx.tmpdir), "mkdtemp failed");
        snprintf(dbfx.address, sizeof dbfx.address, "%s/data/kizuna.db", dbfx.tmpdir);
    } else {
        dbfx.label = "postgres";
        const char *url = getenv("KZ_TEST_PG_URL");
        if (!url || !*url)
            cr_assert_fail("KZ_TEST_PG_URL is not set: the PostgreSQL half of the store tests needs a "
                           "cluster. Start one with `tests/support/pg.sh start /tmp/kzpg` and export "
                           "the URL it prints as KZ_TEST_PG_URL.");
        snprintf(dbfx.admin_url, sizeof dbfx.admin_url, "%s", url);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(dbfx.pgname, sizeof dbfx.pgname, "kzt_%d_%ld_%ld", (int)getpid(), (long)ts.tv_sec % 100000,
                 (long)(ts.tv_nsec % 1000000));
        kz_db_t *admin = NULL;
        int rc = kz_db_open(dbfx.admin_url, &admin, err, sizeof err);
        cr_assert_eq(rc, KZ_DB_OK, "cannot connect to KZ_TEST_PG_URL (%s): %s", url, err);
        char sql[160];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbfx.pgname);
        rc = kz_db_exec(admin, sql, NULL, 0, NULL);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", kz_db_errmsg(admin));
        kz_db_close(admin);
        if (rc != KZ_DB_OK) dbfx.pgname[0] = '\0'; /* nothing to drop */
        cr_assert_eq(rc, KZ_DB_OK, "%s: %s", sql, msg);
        dbfx_url_with_database(dbfx.admin_url, dbfx.pgname, dbfx.address, sizeof dbfx.address);
    }
    int rc = kz_db_open(dbfx.address, &dbfx.db, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] open failed: %s", dbfx.label, err);
    cr_assert_eq(kz_db_kind(dbfx.db), dbfx.kind == DBFX_SQLITE ? KZ_DB_SQLITE : KZ_DB_POSTGRES);
    err[0] = '\0';
    rc = kz_migrate_up(dbfx.db, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] migrate: %s", dbfx.label, err);
}

static inline int dbfx_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Runs after every test, passed or failed: closes the connection and drops
 * the database (PostgreSQL) or the temp directory (SQLite). */
static inline void dbfx_teardown(void)
{
    kz_db_close(dbfx.db);
    dbfx.db = NULL;
    if (dbfx.tmpdir[0]) nftw(dbfx.tmpdir, dbfx_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (dbfx.pgname[0]) {
        char err[512];
        kz_db_t *admin = NULL;
        if (kz_db_open(dbfx.admin_url, &admin, err, sizeof err) == KZ_DB_OK) {
            char sql[160];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbfx.pgname);
            kz_db_exec(admin, sql, NULL, 0, NULL);
            kz_db_close(admin);
        }
    }
}

/* Declares a test that runs once per backend, with `db` the fresh, migrated
 * connection. */
#define KZ_DB_TEST(suite, name)                                                                    \
    static void name##_body(kz_db_t *db);                                                          \
    ParameterizedTestParameters(suite, name)                                                       \
    {                                                                                              \
        return cr_make_param_array(struct dbfx_param, dbfx_params,                                 \
                                   sizeof dbfx_params / sizeof dbfx_params[0]);                    \
    }                                                                                              \
    ParameterizedTest(struct dbfx_param *p, suite, name, .fini = dbfx_teardown)                    \
    {                                                                                              \
        dbfx_setup(p);                                                                             \
        name##_body(dbfx.db);                                                                      \
    }                                                                                              \
    static void name##_body(kz_db_t *db)

/* Opens another connection to the test's database (close with kz_db_close). */
static inline kz_db_t *dbfx_open_again(void)
{
    char err[512];
    kz_db_t *db = NULL;
    int rc = kz_db_open(dbfx.address, &db, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] second open failed: %s", dbfx.label, err);
    return db;
}

/* Runs a query that must return exactly one row; returns column 0 as an integer. */
static inline int64_t dbfx_query_int(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams)
{
    kz_dbrows_t *rows;
    DB_OK(db, kz_db_query(db, sql, params, nparams, &rows));
    int n = kz_db_next(rows);
    cr_assert_eq(n, 1, "[%s] %s: expected a row, got %d (%s)", dbfx.label, sql, n, kz_db_errmsg(db));
    int64_t v = kz_db_int(rows, 0);
    cr_assert_eq(kz_db_next(rows), 0, "[%s] %s: more than one row", dbfx.label, sql);
    kz_db_rows_free(rows);
    return v;
}

/* SELECT count(*) FROM table [WHERE where]. */
static inline int64_t dbfx_count(kz_db_t *db, const char *table, const char *where, const kz_dbval_t *params,
                                 int nparams)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s%s", table, where ? " WHERE " : "", where ? where : "");
    return dbfx_query_int(db, sql, params, nparams);
}

#endif
