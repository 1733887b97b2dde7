/* Store tests. Every test in suite "db" runs three times, as parameters:
 * on a SQLite file in a fresh mkdtemp directory, on a SQLite ":memory:"
 * database, and on a fresh PostgreSQL database created for the test in the
 * cluster at $KZ_TEST_PG_URL (tests/support/pg.sh start DIR prints one).
 * Without that variable the PostgreSQL runs fail: they are never skipped.
 *
 * Criterion runs each test in its own process, possibly in parallel, so all
 * state lives in the per-process fixture `fx`, and .fini cleans up even
 * after a failed assertion. */
#include "core/alloc.h"
#include "core/log.h"
#include "store/db.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SYSTEM_USER "00000000-0000-0000-0000-000000000000"

/* ---- Fixture ---------------------------------------------------------------- */

enum target_kind { T_SQLITE_FILE, T_SQLITE_MEMORY, T_POSTGRES };

/* Test parameter. Plain data only: Criterion copies it into the test process. */
struct target_param {
    int kind;
};

static struct target_param target_params[] = {{T_SQLITE_FILE}, {T_SQLITE_MEMORY}, {T_POSTGRES}};

/* Everything one test process owns. */
static struct fixture {
    int kind;              /* enum target_kind */
    const char *label;     /* backend name for messages */
    char address[1024];    /* address to open more connections to the same database */
    char tmpdir[256];      /* SQLite file runs: the mkdtemp directory */
    char pgname[64];       /* PostgreSQL runs: the database created for this test */
    char admin_url[1024];  /* PostgreSQL runs: $KZ_TEST_PG_URL */
    kz_db_t *db;           /* the test's main connection */
} fx;

/* Fails the test unless expr returns KZ_DB_OK, showing the backend's message. */
#define OK(db, expr)                                                                             \
    do {                                                                                         \
        int rc_ = (expr);                                                                        \
        cr_assert_eq(rc_, KZ_DB_OK, "[%s] %s returned %d: %s", fx.label, #expr, rc_,             \
                     (db) ? kz_db_errmsg(db) : "");                                              \
    } while (0)

/* Fails the test unless expr returns the code want. */
#define EXPECT_RC(db, expr, want)                                                                \
    do {                                                                                         \
        int rc_ = (expr);                                                                        \
        cr_assert_eq(rc_, (want), "[%s] %s returned %d, want %d (%s)", fx.label, #expr, rc_,     \
                     (want), kz_db_errmsg(db));                                                  \
    } while (0)

static bool is_sqlite(void)
{
    return fx.kind != T_POSTGRES;
}

/* Builds in out the URL of database name in the cluster of url (same
 * credentials, host, port and query string). */
static void url_with_database(const char *url, const char *name, char *out, size_t outlen)
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

/* Opens the test's database for the given target into fx. */
static void fixture_setup(const struct target_param *p)
{
    char err[512] = "";
    /* The tests provoke errors on purpose; their warn lines are noise. Set
     * KZ_TEST_VERBOSE=1 to see them. */
    if (!getenv("KZ_TEST_VERBOSE")) kz_log_set_level(KZ_LOG_ERROR);
    memset(&fx, 0, sizeof fx);
    fx.kind = p->kind;
    switch (fx.kind) {
    case T_SQLITE_FILE:
        fx.label = "sqlite-file";
        snprintf(fx.tmpdir, sizeof fx.tmpdir, "/tmp/kz-test-db-XXXXXX");
        cr_assert(mkdtemp(fx.tmpdir), "mkdtemp failed");
        snprintf(fx.address, sizeof fx.address, "%s/data/kizuna.db", fx.tmpdir);
        break;
    case T_SQLITE_MEMORY:
        fx.label = "sqlite-memory";
        snprintf(fx.address, sizeof fx.address, ":memory:");
        break;
    case T_POSTGRES: {
        fx.label = "postgres";
        const char *url = getenv("KZ_TEST_PG_URL");
        if (!url || !*url)
            cr_assert_fail("KZ_TEST_PG_URL is not set: the PostgreSQL half of the store tests needs a "
                           "cluster. Start one with `tests/support/pg.sh start /tmp/kzpg` and export "
                           "the URL it prints as KZ_TEST_PG_URL.");
        snprintf(fx.admin_url, sizeof fx.admin_url, "%s", url);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(fx.pgname, sizeof fx.pgname, "kzt_%d_%ld", (int)getpid(), (long)(ts.tv_nsec % 1000000));
        kz_db_t *admin = NULL;
        int rc = kz_db_open(fx.admin_url, &admin, err, sizeof err);
        cr_assert_eq(rc, KZ_DB_OK, "cannot connect to KZ_TEST_PG_URL: %s", err);
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", fx.pgname);
        rc = kz_db_exec(admin, sql, NULL, 0, NULL);
        cr_assert_eq(rc, KZ_DB_OK, "%s: %s", sql, kz_db_errmsg(admin));
        kz_db_close(admin);
        url_with_database(fx.admin_url, fx.pgname, fx.address, sizeof fx.address);
        break;
    }
    }
    int rc = kz_db_open(fx.address, &fx.db, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] open failed: %s", fx.label, err);
    cr_assert_eq(kz_db_kind(fx.db), is_sqlite() ? KZ_DB_SQLITE : KZ_DB_POSTGRES);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Runs after every test, passed or failed: closes the connection and drops
 * the database (PostgreSQL) or the temp directory (SQLite file). */
static void fixture_teardown(void)
{
    kz_db_close(fx.db);
    fx.db = NULL;
    if (fx.tmpdir[0]) nftw(fx.tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (fx.pgname[0]) {
        char err[512];
        kz_db_t *admin = NULL;
        if (kz_db_open(fx.admin_url, &admin, err, sizeof err) == KZ_DB_OK) {
            char sql[128];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", fx.pgname);
            kz_db_exec(admin, sql, NULL, 0, NULL);
            kz_db_close(admin);
        }
    }
}

/* Declares a test that runs once per target, with `db` the fresh connection. */
#define DB_TEST(name)                                                                            \
    static void name##_body(kz_db_t *db);                                                        \
    ParameterizedTestParameters(db, name)                                                        \
    {                                                                                            \
        return cr_make_param_array(struct target_param, target_params,                           \
                                   sizeof target_params / sizeof target_params[0]);              \
    }                                                                                            \
    ParameterizedTest(struct target_param *p, db, name, .fini = fixture_teardown) \
    {                                                                                            \
        fixture_setup(p);                                                                        \
        name##_body(fx.db);                                                                      \
    }                                                                                            \
    static void name##_body(kz_db_t *db)

/* Opens another connection to the test's database. */
static kz_db_t *open_again(void)
{
    char err[512];
    kz_db_t *db = NULL;
    int rc = kz_db_open(fx.address, &db, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] second open failed: %s", fx.label, err);
    return db;
}

static void migrate(kz_db_t *db)
{
    char err[512] = "";
    int rc = kz_migrate_up(db, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] migrate: %s", fx.label, err);
}

/* Runs a query that must return exactly one row and returns column 0 as an
 * integer. */
static int64_t query_int(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams)
{
    kz_dbrows_t *rows;
    OK(db, kz_db_query(db, sql, params, nparams, &rows));
    int n = kz_db_next(rows);
    cr_assert_eq(n, 1, "[%s] %s: expected a row, got %d (%s)", fx.label, sql, n, kz_db_errmsg(db));
    int64_t v = kz_db_int(rows, 0);
    cr_assert_eq(kz_db_next(rows), 0, "[%s] %s: more than one row", fx.label, sql);
    kz_db_rows_free(rows);
    return v;
}

/* Same as query_int for text: an owned copy (kz_free), NULL for SQL NULL. */
static char *query_text(kz_db_t *db, const char *sql, const kz_dbval_t *params, int nparams)
{
    kz_dbrows_t *rows;
    OK(db, kz_db_query(db, sql, params, nparams, &rows));
    cr_assert_eq(kz_db_next(rows), 1, "[%s] %s: expected a row", fx.label, sql);
    size_t len = 0;
    const char *s = kz_db_text(rows, 0, &len);
    char *copy = s ? kz_strndup(s, len) : NULL;
    if (s) cr_assert_eq(strlen(copy), len, "[%s] length mismatch", fx.label);
    kz_db_rows_free(rows);
    return copy;
}

static int64_t count_rows(kz_db_t *db, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return query_int(db, sql, NULL, 0);
}

static void create_kv(kz_db_t *db)
{
    OK(db, kz_db_exec(db, "CREATE TABLE kv (k TEXT NOT NULL PRIMARY KEY, i BIGINT, s TEXT)", NULL, 0, NULL));
}

static void put_kv(kz_db_t *db, const char *k, kz_dbval_t i, kz_dbval_t s)
{
    kz_dbval_t p[] = {KZ_DBTEXT(k), i, s};
    int64_t n = -1;
    OK(db, kz_db_exec(db, "INSERT INTO kv (k, i, s) VALUES ($1, $2, $3)", p, 3, &n));
    cr_assert_eq(n, 1, "[%s] insert %s affected %lld", fx.label, k, (long long)n);
}

/* Captures kz_migrate_status output into an owned string. */
static char *status_text(kz_db_t *db)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    OK(db, kz_migrate_status(db, f));
    fclose(f);
    return buf;
}

/* ---- Migrations ------------------------------------------------------------ */

DB_TEST(migrate_up_is_idempotent)
{
    cr_assert_eq(kz_migrate_count(), 2);

    char *before = status_text(db);
    cr_assert_str_eq(before,
                     "  1 initial schema            pending\n"
                     "  2 leaderboard rank order    pending\n",
                     "[%s] %s", fx.label, before);
    free(before);

    migrate(db);
    migrate(db);
    cr_assert_eq(count_rows(db, "schema_migrations"), kz_migrate_count(), "[%s]", fx.label);
    cr_assert_eq(query_int(db, "SELECT max(version) FROM schema_migrations", NULL, 0), 2);
    char *name = query_text(db, "SELECT name FROM schema_migrations WHERE version = 1", NULL, 0);
    cr_assert_str_eq(name, "initial schema");
    kz_free(name);
    int64_t applied = query_int(db, "SELECT applied_at FROM schema_migrations WHERE version = 1", NULL, 0);
    int64_t now = (int64_t)time(NULL) * 1000;
    cr_assert(applied > now - 600000 && applied <= now + 1000, "[%s] applied_at %lld", fx.label,
              (long long)applied);

    char *after = status_text(db);
    const char *prefix = "  1 initial schema            applied 20";
    cr_assert(strncmp(after, prefix, strlen(prefix)) == 0, "[%s] status: %s", fx.label, after);
    cr_assert(strstr(after, "Z\n") && !strstr(after, "pending"), "[%s] status: %s", fx.label, after);
    free(after);

    /* Every table of the schema exists, and only the system user is there. */
    const char *tables[] = {"users", "user_device", "session_revocation", "session_cutoff",
                            "user_edge", "groups", "group_edge", "storage", "notification",
                            "message", "leaderboard", "leaderboard_record", "wallet_ledger"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        cr_assert_eq(count_rows(db, tables[i]), strcmp(tables[i], "users") == 0 ? 1 : 0, "[%s] %s",
                     fx.label, tables[i]);
}

DB_TEST(system_user_exists)
{
    migrate(db);
    kz_dbrows_t *rows;
    kz_dbval_t id[] = {KZ_DBTEXT(SYSTEM_USER)};
    OK(db, kz_db_query(db,
                       "SELECT username, create_time, update_time, lang_tag, metadata, wallet, email, "
                       "edge_count, disable_time FROM users WHERE id = $1",
                       id, 1, &rows));
    cr_assert_eq(kz_db_next(rows), 1, "[%s] no system user", fx.label);
    size_t len = 99;
    cr_assert_str_eq(kz_db_text(rows, 0, &len), "");
    cr_assert_eq(len, 0);
    cr_assert(!kz_db_isnull(rows, 0));
    cr_assert_eq(kz_db_int(rows, 1), 0);
    cr_assert_eq(kz_db_int(rows, 2), 0);
    cr_assert_str_eq(kz_db_text(rows, 3, NULL), "en");
    cr_assert_str_eq(kz_db_text(rows, 4, NULL), "{}");
    cr_assert_str_eq(kz_db_text(rows, 5, NULL), "{}");
    cr_assert(kz_db_isnull(rows, 6));
    cr_assert_null(kz_db_text(rows, 6, &len));
    cr_assert_eq(kz_db_int(rows, 7), 0);
    cr_assert_eq(kz_db_int(rows, 8), 0);
    cr_assert_eq(kz_db_next(rows), 0);
    kz_db_rows_free(rows);
}

/* Runs kz_migrate_up on its own connection (thread body). */
struct migrate_job {
    int rc;
    char err[512];
};

static void *migrate_thread(void *arg)
{
    struct migrate_job *job = arg;
    kz_db_t *db = NULL;
    job->rc = kz_db_open(fx.address, &db, job->err, sizeof job->err);
    if (job->rc == KZ_DB_OK) job->rc = kz_migrate_up(db, job->err, sizeof job->err);
    kz_db_close(db);
    return NULL;
}

DB_TEST(migrate_concurrently)
{
    if (fx.kind == T_SQLITE_MEMORY) return; /* every :memory: connection is its own database */
    struct migrate_job jobs[3] = {0};
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, migrate_thread, &jobs[i]);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(jobs[i].rc, KZ_DB_OK, "[%s] runner %d: %s", fx.label, i, jobs[i].err);
    }
    cr_assert_eq(count_rows(db, "schema_migrations"), kz_migrate_count());
    cr_assert_eq(count_rows(db, "users"), 1);
}

DB_TEST(schema_constraints)
{
    migrate(db);
    /* Foreign keys are enforced (SQLite needs PRAGMA foreign_keys) ... */
    kz_dbval_t dev[] = {KZ_DBTEXT("device-1"), KZ_DBTEXT("no-such-user")};
    const char *ins_dev = "INSERT INTO user_device (id, user_id) VALUES ($1, $2)";
    EXPECT_RC(db, kz_db_exec(db, ins_dev, dev, 2, NULL), KZ_DB_EERROR);

    /* ... and cascade on delete. */
    kz_dbval_t u[] = {KZ_DBTEXT("11111111-1111-4111-8111-111111111111"), KZ_DBTEXT("carol"),
                      KZ_DBINT(1700000000000)};
    OK(db, kz_db_exec(db, "INSERT INTO users (id, username, create_time, update_time) VALUES ($1, $2, $3, $3)",
                      u, 3, NULL));
    dev[1] = u[0];
    OK(db, kz_db_exec(db, ins_dev, dev, 2, NULL));
    cr_assert_eq(count_rows(db, "user_device"), 1);
    int64_t n = 0;
    OK(db, kz_db_exec(db, "DELETE FROM users WHERE id = $1", u, 1, &n));
    cr_assert_eq(n, 1);
    cr_assert_eq(count_rows(db, "user_device"), 0, "[%s] cascade", fx.label);

    /* The groups table takes rows with its defaults. */
    kz_dbval_t g[] = {KZ_DBTEXT("22222222-2222-4222-8222-222222222222"), KZ_DBTEXT(SYSTEM_USER),
                      KZ_DBTEXT("Clan"), KZ_DBINT(5)};
    OK(db, kz_db_exec(db,
                      "INSERT INTO groups (id, creator_id, name, create_time, update_time) "
                      "VALUES ($1, $2, $3, $4, $4)",
                      g, 4, NULL));
    cr_assert_eq(query_int(db, "SELECT max_count FROM groups WHERE name = 'Clan'", NULL, 0), 100);
    g[0] = KZ_DBTEXT("33333333-3333-4333-8333-333333333333");
    EXPECT_RC(db,
              kz_db_exec(db,
                         "INSERT INTO groups (id, creator_id, name, create_time, update_time) "
                         "VALUES ($1, $2, $3, $4, $4)",
                         g, 4, NULL),
              KZ_DB_ECONFLICT);
}

/* ---- Values and placeholders ---------------------------------------------- */

DB_TEST(value_round_trip)
{
    create_kv(db);
    const char *quoted = "it's \"quoted\" \\ back'slash''";
    const char *unicode = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac "
                          "\xf0\x9f\x8e\xae"; /* héllo wörld — 日本 🎮 */
    put_kv(db, "null", KZ_DBNULL, KZ_DBTEXT(NULL));
    put_kv(db, "min", KZ_DBINT(INT64_MIN), KZ_DBTEXT(""));
    put_kv(db, "max", KZ_DBINT(INT64_MAX), KZ_DBTEXT(quoted));
    put_kv(db, "uni", KZ_DBINT(-1), KZ_DBTEXT(unicode));
    put_kv(db, "dollar", KZ_DBINT(2), KZ_DBTEXT("$1 and $2 and ?1"));
    put_kv(db, "slice", KZ_DBINT(3), KZ_DBTEXTN("abcdef", 3));
    /* A $1 inside a SQL literal is text, not a placeholder: no parameters. */
    OK(db, kz_db_exec(db, "INSERT INTO kv (k, i, s) VALUES ('lit', 1, 'costs $1, not ''$2''')", NULL, 0,
                      NULL));

    kz_dbrows_t *rows;
    OK(db, kz_db_query(db, "SELECT k, i, s FROM kv ORDER BY k", NULL, 0, &rows));
    struct {
        const char *k;
        bool inull;
        int64_t i;
        const char *s; /* NULL = SQL NULL */
    } want[] = {
        {"dollar", false, 2, "$1 and $2 and ?1"},
        {"lit", false, 1, "costs $1, not '$2'"},
        {"max", false, INT64_MAX, quoted},
        {"min", false, INT64_MIN, ""},
        {"null", true, 0, NULL},
        {"slice", false, 3, "abc"},
        {"uni", false, -1, unicode},
    };
    for (size_t r = 0; r < sizeof want / sizeof want[0]; r++) {
        cr_assert_eq(kz_db_next(rows), 1, "[%s] row %zu missing", fx.label, r);
        cr_assert_str_eq(kz_db_text(rows, 0, NULL), want[r].k, "[%s]", fx.label);
        cr_assert_eq(kz_db_isnull(rows, 1), want[r].inull, "[%s] %s", fx.label, want[r].k);
        cr_assert_eq(kz_db_int(rows, 1), want[r].i, "[%s] %s: %lld", fx.label, want[r].k,
                     (long long)kz_db_int(rows, 1));
        size_t len = 12345;
        const char *s = kz_db_text(rows, 2, &len);
        if (!want[r].s) {
            cr_assert_null(s, "[%s] %s should be NULL", fx.label, want[r].k);
            cr_assert(kz_db_isnull(rows, 2));
            cr_assert_eq(len, 0);
        } else {
            cr_assert_not_null(s, "[%s] %s is NULL", fx.label, want[r].k);
            cr_assert_str_eq(s, want[r].s, "[%s] %s", fx.label, want[r].k);
            cr_assert_eq(len, strlen(want[r].s), "[%s] %s len", fx.label, want[r].k);
            cr_assert(!kz_db_isnull(rows, 2));
        }
    }
    cr_assert_eq(kz_db_next(rows), 0);
    cr_assert_eq(kz_db_next(rows), 0, "[%s] next after the end stays 0", fx.label);
    kz_db_rows_free(rows);

    /* Extremes survive a round trip through parameters in WHERE too. */
    kz_dbval_t p[] = {KZ_DBINT(INT64_MIN)};
    char *k = query_text(db, "SELECT k FROM kv WHERE i = $1", p, 1);
    cr_assert_str_eq(k, "min");
    kz_free(k);
    cr_assert_eq(kz_dbtext(NULL).type, KZ_DBV_NULL);
}

DB_TEST(placeholders_reused_and_out_of_order)
{
    create_kv(db);
    /* Out of order: $2 is the key, $3 the integer, $1 the text. */
    kz_dbval_t p[] = {KZ_DBTEXT("text-one"), KZ_DBTEXT("k1"), KZ_DBINT(41)};
    OK(db, kz_db_exec(db, "INSERT INTO kv (k, i, s) VALUES ($2, $3, $1)", p, 3, NULL));
    char *s = query_text(db, "SELECT s FROM kv WHERE k = 'k1' AND i = 41", NULL, 0);
    cr_assert_str_eq(s, "text-one");
    kz_free(s);

    /* The same placeholder twice. */
    kz_dbval_t same[] = {KZ_DBTEXT("k2")};
    OK(db, kz_db_exec(db, "INSERT INTO kv (k, i, s) VALUES ($1, 7, $1)", same, 1, NULL));
    cr_assert_eq(query_int(db, "SELECT count(*) FROM kv WHERE k = $1 AND s = $1", same, 1), 1);
    kz_dbval_t two[] = {KZ_DBINT(7), KZ_DBTEXT("k1")};
    cr_assert_eq(query_int(db, "SELECT count(*) FROM kv WHERE k = $2 OR (i = $1 AND i >= $1)", two, 2), 2);

    /* More than 9 parameters ($10 must not read as $1 followed by 0). */
    OK(db, kz_db_exec(db,
                      "CREATE TABLE wide (a BIGINT, b BIGINT, c BIGINT, d BIGINT, e BIGINT, f BIGINT,"
                      " g BIGINT, h BIGINT, i BIGINT, j BIGINT, k BIGINT)",
                      NULL, 0, NULL));
    kz_dbval_t w[11];
    for (int i = 0; i < 11; i++) w[i] = KZ_DBINT(100 + i);
    OK(db, kz_db_exec(db,
                      "INSERT INTO wide VALUES ($11, $10, $9, $8, $7, $6, $5, $4, $3, $2, $1)", w, 11,
                      NULL));
    cr_assert_eq(query_int(db, "SELECT a * 1000 + k FROM wide", NULL, 0), 110 * 1000 + 100);

    /* A wrong parameter count is an error on both backends. */
    EXPECT_RC(db, kz_db_exec(db, "INSERT INTO kv (k, i, s) VALUES ($1, $2, $3)", p, 2, NULL), KZ_DB_EERROR);
}

/* ---- Errors ------------------------------------------------------------------ */

DB_TEST(duplicate_username_conflicts)
{
    migrate(db);
    const char *sql = "INSERT INTO users (id, username, create_time, update_time) VALUES ($1, $2, 1, 1)";
    kz_dbval_t a[] = {KZ_DBTEXT("aaaaaaaa-0000-4000-8000-000000000001"), KZ_DBTEXT("alice")};
    kz_dbval_t b[] = {KZ_DBTEXT("aaaaaaaa-0000-4000-8000-000000000002"), KZ_DBTEXT("alice")};
    kz_dbval_t c[] = {KZ_DBTEXT("aaaaaaaa-0000-4000-8000-000000000001"), KZ_DBTEXT("bob")};
    OK(db, kz_db_exec(db, sql, a, 2, NULL));
    EXPECT_RC(db, kz_db_exec(db, sql, b, 2, NULL), KZ_DB_ECONFLICT); /* unique username */
    cr_assert(strstr(kz_db_errmsg(db), "nique") || strstr(kz_db_errmsg(db), "UNIQUE"), "[%s] %s", fx.label,
              kz_db_errmsg(db));
    EXPECT_RC(db, kz_db_exec(db, sql, c, 2, NULL), KZ_DB_ECONFLICT); /* primary key */

    /* Also through a query (RETURNING), and inside a transaction, which the
     * caller then rolls back; the connection stays usable. */
    kz_dbrows_t *rows;
    EXPECT_RC(db,
              kz_db_query(db,
                          "INSERT INTO users (id, username, create_time, update_time) VALUES ($1, $2, 1, 1)"
                          " RETURNING id",
                          b, 2, &rows),
              KZ_DB_ECONFLICT);
    OK(db, kz_db_begin(db));
    EXPECT_RC(db, kz_db_exec(db, sql, b, 2, NULL), KZ_DB_ECONFLICT);
    OK(db, kz_db_rollback(db));
    kz_dbval_t d[] = {KZ_DBTEXT("aaaaaaaa-0000-4000-8000-000000000003"), KZ_DBTEXT("bob")};
    OK(db, kz_db_exec(db, sql, d, 2, NULL));
    cr_assert_eq(count_rows(db, "users"), 3);
}

DB_TEST(bad_sql_reports_error)
{
    EXPECT_RC(db, kz_db_exec(db, "SELEC 1", NULL, 0, NULL), KZ_DB_EERROR);
    cr_assert(strstr(kz_db_errmsg(db), "syntax error"), "[%s] %s", fx.label, kz_db_errmsg(db));

    kz_dbrows_t *rows = (kz_dbrows_t *)1;
    EXPECT_RC(db, kz_db_query(db, "SELECT * FROM no_such_table", NULL, 0, &rows), KZ_DB_EERROR);
    cr_assert_null(rows);
    cr_assert(strstr(kz_db_errmsg(db), "no_such_table"), "[%s] %s", fx.label, kz_db_errmsg(db));

    EXPECT_RC(db, kz_db_exec(db, "SELECT 1; SELECT 2", NULL, 0, NULL), KZ_DB_EERROR);
    EXPECT_RC(db, kz_db_exec(db, "", NULL, 0, NULL), KZ_DB_EERROR);

    /* The connection is fine afterwards. */
    cr_assert_eq(query_int(db, "SELECT 40 + 2", NULL, 0), 42);
}

/* ---- Row counts, cursors ------------------------------------------------- */

DB_TEST(affected_row_counts)
{
    int64_t n = -1;
    OK(db, kz_db_exec(db, "CREATE TABLE kv (k TEXT NOT NULL PRIMARY KEY, i BIGINT, s TEXT)", NULL, 0, &n));
    cr_assert_eq(n, 0);
    put_kv(db, "a", KZ_DBINT(1), KZ_DBNULL);
    put_kv(db, "b", KZ_DBINT(2), KZ_DBNULL);
    put_kv(db, "c", KZ_DBINT(3), KZ_DBNULL);
    kz_dbval_t p[] = {KZ_DBINT(1)};
    OK(db, kz_db_exec(db, "UPDATE kv SET s = 'big' WHERE i > $1", p, 1, &n));
    cr_assert_eq(n, 2, "[%s] update affected %lld", fx.label, (long long)n);
    OK(db, kz_db_exec(db, "DELETE FROM kv WHERE k = 'zzz'", NULL, 0, &n));
    cr_assert_eq(n, 0, "[%s] delete nothing affected %lld", fx.label, (long long)n);
    OK(db, kz_db_exec(db, "SELECT k FROM kv", NULL, 0, &n));
    cr_assert_eq(n, 0, "[%s] select affected %lld", fx.label, (long long)n);
    OK(db, kz_db_exec(db, "INSERT INTO kv (k, i) VALUES ('d', 4), ('e', 5)", NULL, 0, &n));
    cr_assert_eq(n, 2);
    OK(db, kz_db_exec(db, "CREATE INDEX kv_i_idx ON kv (i)", NULL, 0, &n));
    cr_assert_eq(n, 0, "[%s] DDL affected %lld", fx.label, (long long)n);
    OK(db, kz_db_exec(db, "DELETE FROM kv", NULL, 0, &n));
    cr_assert_eq(n, 5);
    OK(db, kz_db_exec(db, "DELETE FROM kv", NULL, 0, NULL)); /* affected may be NULL */
}

DB_TEST(insert_returning_and_one_cursor)
{
    create_kv(db);
    /* A writing query outside a transaction (SQLite: holds the writer mutex
     * until the cursor ends). */
    kz_dbrows_t *rows;
    kz_dbval_t p[] = {KZ_DBTEXT("r1"), KZ_DBINT(9)};
    OK(db, kz_db_query(db, "INSERT INTO kv (k, i) VALUES ($1, $2) RETURNING k, i", p, 2, &rows));
    cr_assert_eq(kz_db_next(rows), 1);
    cr_assert_str_eq(kz_db_text(rows, 0, NULL), "r1");
    cr_assert_eq(kz_db_int(rows, 1), 9);

    /* Only one cursor at a time. */
    kz_dbrows_t *other;
    EXPECT_RC(db, kz_db_query(db, "SELECT 1", NULL, 0, &other), KZ_DB_EERROR);
    kz_db_rows_free(rows);

    /* The writer lock was released: a write transaction can start. */
    OK(db, kz_db_begin(db));
    OK(db, kz_db_query(db, "UPDATE kv SET i = i + 1 WHERE k = 'nothing' RETURNING k", NULL, 0, &rows));
    cr_assert_eq(kz_db_next(rows), 0);
    kz_db_rows_free(rows);
    OK(db, kz_db_commit(db));
    cr_assert_eq(query_int(db, "SELECT i FROM kv WHERE k = 'r1'", NULL, 0), 9);

    /* Freeing a cursor early (not walked to the end) also releases it. */
    put_kv(db, "r2", KZ_DBINT(10), KZ_DBNULL);
    OK(db, kz_db_query(db, "SELECT k FROM kv ORDER BY k", NULL, 0, &rows));
    kz_db_rows_free(rows);
    OK(db, kz_db_begin(db));
    OK(db, kz_db_commit(db));
    kz_db_rows_free(NULL);
}

/* ---- Transactions ---------------------------------------------------------- */

DB_TEST(transactions_commit_and_rollback)
{
    create_kv(db);
    OK(db, kz_db_rollback(db)); /* nothing open: fine */
    EXPECT_RC(db, kz_db_commit(db), KZ_DB_EERROR);

    OK(db, kz_db_begin(db));
    put_kv(db, "gone", KZ_DBINT(1), KZ_DBNULL);
    cr_assert_eq(count_rows(db, "kv"), 1, "[%s] own write visible", fx.label);
    EXPECT_RC(db, kz_db_begin(db), KZ_DB_EERROR); /* no nesting */
    OK(db, kz_db_rollback(db));
    cr_assert_eq(count_rows(db, "kv"), 0, "[%s] rollback discards", fx.label);

    OK(db, kz_db_begin(db));
    put_kv(db, "kept", KZ_DBINT(2), KZ_DBNULL);
    put_kv(db, "kept2", KZ_DBINT(3), KZ_DBNULL);
    OK(db, kz_db_commit(db));
    cr_assert_eq(count_rows(db, "kv"), 2, "[%s] commit keeps", fx.label);

    /* Committed data is visible to (and durable for) a new connection. */
    if (fx.kind != T_SQLITE_MEMORY) {
        kz_db_close(db);
        fx.db = db = open_again();
        cr_assert_eq(count_rows(db, "kv"), 2);
    }

    /* A read transaction refuses writes on both backends. */
    OK(db, kz_db_begin_read(db));
    cr_assert_eq(count_rows(db, "kv"), 2);
    kz_dbval_t p[] = {KZ_DBTEXT("ro"), KZ_DBINT(0), KZ_DBNULL};
    EXPECT_RC(db, kz_db_exec(db, "INSERT INTO kv (k, i, s) VALUES ($1, $2, $3)", p, 3, NULL), KZ_DB_EERROR);
    OK(db, kz_db_rollback(db));
    cr_assert_eq(count_rows(db, "kv"), 2);
}

DB_TEST(read_transaction_is_a_snapshot)
{
    if (fx.kind == T_SQLITE_MEMORY) return; /* needs a second connection to the same database */
    create_kv(db);
    put_kv(db, "a", KZ_DBINT(1), KZ_DBNULL);
    kz_db_t *writer = open_again();
    OK(db, kz_db_begin_read(db));
    cr_assert_eq(count_rows(db, "kv"), 1);
    kz_dbval_t p[] = {KZ_DBTEXT("b"), KZ_DBINT(2), KZ_DBNULL};
    OK(writer, kz_db_exec(writer, "INSERT INTO kv (k, i, s) VALUES ($1, $2, $3)", p, 3, NULL));
    cr_assert_eq(count_rows(db, "kv"), 1, "[%s] snapshot moved", fx.label);
    OK(db, kz_db_commit(db));
    cr_assert_eq(count_rows(db, "kv"), 2);
    kz_db_close(writer);
}

/* ---- Concurrency -------------------------------------------------------------- */

#define WRITES_PER_THREAD 150

/* One writer thread: its own connection, a mix of autocommit writes, write
 * transactions and read transactions. Errors are recorded, not asserted
 * (Criterion asserts belong to the test's main thread). */
struct writer_job {
    int id;
    int failures;
    char first_error[640];
};

static void *writer_thread(void *arg)
{
    struct writer_job *job = arg;
    char err[512];
    kz_db_t *db = NULL;
    if (kz_db_open(fx.address, &db, err, sizeof err) != KZ_DB_OK) {
        job->failures++;
        snprintf(job->first_error, sizeof job->first_error, "open: %s", err);
        return NULL;
    }
#define NOTE(rc)                                                                                  \
    do {                                                                                          \
        if ((rc) != KZ_DB_OK && job->failures++ == 0)                                             \
            snprintf(job->first_error, sizeof job->first_error, "line %d: rc %d: %s", __LINE__,   \
                     (rc), kz_db_errmsg(db));                                                     \
    } while (0)
    for (int i = 0; i < WRITES_PER_THREAD; i++) {
        char key[32];
        snprintf(key, sizeof key, "t%d-%d", job->id, i);
        kz_dbval_t p[] = {KZ_DBTEXT(key), KZ_DBINT(i)};
        int rc;
        switch (i % 3) {
        case 0: /* autocommit write */
            rc = kz_db_exec(db, "INSERT INTO kv (k, i) VALUES ($1, $2)", p, 2, NULL);
            NOTE(rc);
            break;
        case 1: /* write transaction: insert and bump a shared counter */
            rc = kz_db_begin(db);
            NOTE(rc);
            if (rc != KZ_DB_OK) break;
            rc = kz_db_exec(db, "INSERT INTO kv (k, i) VALUES ($1, $2)", p, 2, NULL);
            NOTE(rc);
            if (rc == KZ_DB_OK) {
                rc = kz_db_exec(db, "UPDATE kv SET i = i + 1 WHERE k = 'counter'", NULL, 0, NULL);
                NOTE(rc);
            }
            if (rc == KZ_DB_OK) {
                rc = kz_db_commit(db);
                NOTE(rc);
            } else {
                kz_db_rollback(db);
            }
            break;
        default: { /* read transaction */
            rc = kz_db_begin_read(db);
            NOTE(rc);
            if (rc != KZ_DB_OK) break;
            kz_dbrows_t *rows;
            rc = kz_db_query(db, "SELECT count(*) FROM kv", NULL, 0, &rows);
            NOTE(rc);
            if (rc == KZ_DB_OK) {
                if (kz_db_next(rows) != 1) NOTE(KZ_DB_EERROR);
                kz_db_rows_free(rows);
            }
            rc = kz_db_commit(db);
            NOTE(rc);
            /* and an autocommit write through a query */
            rc = kz_db_query(db, "INSERT INTO kv (k, i) VALUES ($1, $2) RETURNING k", p, 2, &rows);
            NOTE(rc);
            if (rc == KZ_DB_OK) {
                if (kz_db_next(rows) != 1) NOTE(KZ_DB_EERROR);
                kz_db_rows_free(rows);
            }
            break;
        }
        }
    }
#undef NOTE
    kz_db_close(db);
    return NULL;
}

DB_TEST(concurrent_writers)
{
    if (fx.kind == T_SQLITE_MEMORY) return; /* every :memory: connection is its own database */
    create_kv(db);
    put_kv(db, "counter", KZ_DBINT(0), KZ_DBNULL);
    enum { NTHREADS = 4 };
    struct writer_job jobs[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i] = (struct writer_job){.id = i};
        pthread_create(&th[i], NULL, writer_thread, &jobs[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(jobs[i].failures, 0, "[%s] thread %d: %d failures, first: %s", fx.label, i,
                     jobs[i].failures, jobs[i].first_error);
    }
    cr_assert_eq(count_rows(db, "kv"), 1 + NTHREADS * WRITES_PER_THREAD);
    cr_assert_eq(query_int(db, "SELECT i FROM kv WHERE k = 'counter'", NULL, 0), NTHREADS * (WRITES_PER_THREAD / 3));
}

/* ---- Statement cache ------------------------------------------------------ */

DB_TEST(statement_cache_reuse_and_eviction)
{
    create_kv(db);
    /* The same statement many times. */
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%04d", i);
        kz_dbval_t p[] = {KZ_DBTEXT(key), KZ_DBINT(i)};
        OK(db, kz_db_exec(db, "INSERT INTO kv (k, i) VALUES ($1, $2)", p, 2, NULL));
    }
    cr_assert_eq(count_rows(db, "kv"), 1000);
    cr_assert_eq(query_int(db, "SELECT sum(i) FROM kv", NULL, 0), 999 * 1000 / 2);

    /* Keep a cursor open while more distinct statements than the cache
     * holds go through it: the cursor's statement must survive eviction,
     * and running its own SQL text meanwhile must not disturb it. */
    const char *walk = "SELECT k, i FROM kv WHERE i < $1 ORDER BY k";
    kz_dbval_t lim[] = {KZ_DBINT(10)};
    kz_dbrows_t *rows;
    OK(db, kz_db_query(db, walk, lim, 1, &rows));
    cr_assert_eq(kz_db_next(rows), 1);
    cr_assert_str_eq(kz_db_text(rows, 0, NULL), "k0000");
    for (int i = 0; i < 300; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "UPDATE kv SET s = 'x' WHERE i = %d", 2000 + i);
        OK(db, kz_db_exec(db, sql, NULL, 0, NULL));
    }
    kz_dbval_t lim2[] = {KZ_DBINT(0)};
    OK(db, kz_db_exec(db, walk, lim2, 1, NULL));
    for (int i = 1; i < 10; i++) {
        cr_assert_eq(kz_db_next(rows), 1, "[%s] row %d", fx.label, i);
        cr_assert_eq(kz_db_int(rows, 1), i);
    }
    cr_assert_eq(kz_db_next(rows), 0);
    kz_db_rows_free(rows);

    /* Evicted statements are prepared again transparently. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i += 7) {
            char sql[64];
            snprintf(sql, sizeof sql, "SELECT count(*) + %d FROM kv WHERE i < 10", i);
            cr_assert_eq(query_int(db, sql, NULL, 0), 10 + i);
        }
    kz_dbval_t one[] = {KZ_DBINT(1)};
    char *k = query_text(db, walk, one, 1);
    cr_assert_str_eq(k, "k0000");
    kz_free(k);
}

/* ---- Backend-specific tests ------------------------------------------------- */

Test(sqlite, creates_parent_directories, .fini = fixture_teardown)
{
    fixture_setup(&(struct target_param){T_SQLITE_FILE});
    kz_db_close(fx.db);
    fx.db = NULL;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/a/b/c/deep.db", fx.tmpdir);
    OK(NULL, kz_db_open(path, &fx.db, err, sizeof err));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s was not created", path);
    char *mode = query_text(fx.db, "PRAGMA journal_mode", NULL, 0);
    cr_assert_str_eq(mode, "wal");
    kz_free(mode);
    cr_assert_eq(query_int(fx.db, "PRAGMA synchronous", NULL, 0), 2); /* FULL */
    cr_assert_eq(query_int(fx.db, "PRAGMA foreign_keys", NULL, 0), 1);

    /* A path under a regular file cannot be created. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/x.db", path);
    kz_db_t *db = NULL;
    cr_assert_eq(kz_db_open(bad, &db, err, sizeof err), KZ_DB_EERROR);
    cr_assert_null(db);
    cr_assert(err[0]);
}

Test(sqlite, same_thread_second_writer_does_not_deadlock, .fini = fixture_teardown)
{
    fixture_setup(&(struct target_param){T_SQLITE_FILE});
    kz_db_t *a = fx.db, *b = open_again();
    create_kv(a);
    OK(a, kz_db_begin(a));
    /* b would wait for the writer mutex a holds on this very thread. */
    kz_dbval_t p[] = {KZ_DBTEXT("x"), KZ_DBINT(1), KZ_DBNULL};
    EXPECT_RC(b, kz_db_exec(b, "INSERT INTO kv (k, i, s) VALUES ($1, $2, $3)", p, 3, NULL), KZ_DB_EBUSY);
    EXPECT_RC(b, kz_db_begin(b), KZ_DB_EBUSY);
    OK(a, kz_db_rollback(a));
    OK(b, kz_db_exec(b, "INSERT INTO kv (k, i, s) VALUES ($1, $2, $3)", p, 3, NULL));
    kz_db_close(b);
}

Test(postgres, reconnects_after_the_server_drops_the_session, .fini = fixture_teardown)
{
    fixture_setup(&(struct target_param){T_POSTGRES});
    kz_db_t *db = fx.db;
    create_kv(db);
    put_kv(db, "a", KZ_DBINT(1), KZ_DBNULL);
    /* Kill our own backend: this call fails, the next one reconnects and
     * re-prepares the statements the old session had. */
    int rc = kz_db_exec(db, "SELECT pg_terminate_backend(pg_backend_pid())", NULL, 0, NULL);
    cr_assert_neq(rc, KZ_DB_OK);
    cr_assert_eq(count_rows(db, "kv"), 1, "%s", kz_db_errmsg(db));
    put_kv(db, "b", KZ_DBINT(2), KZ_DBNULL);
    cr_assert_eq(count_rows(db, "kv"), 2);

    /* Lost inside a transaction: the transaction fails, rollback clears it,
     * and the connection comes back. */
    OK(db, kz_db_begin(db));
    kz_db_exec(db, "SELECT pg_terminate_backend(pg_backend_pid())", NULL, 0, NULL);
    cr_assert_neq(kz_db_exec(db, "DELETE FROM kv", NULL, 0, NULL), KZ_DB_OK);
    OK(db, kz_db_rollback(db));
    cr_assert_eq(count_rows(db, "kv"), 2);
}

Test(postgres, aborted_transaction_does_not_commit, .fini = fixture_teardown)
{
    fixture_setup(&(struct target_param){T_POSTGRES});
    kz_db_t *db = fx.db;
    create_kv(db);
    OK(db, kz_db_begin(db));
    put_kv(db, "a", KZ_DBINT(1), KZ_DBNULL);
    EXPECT_RC(db, kz_db_exec(db, "SELEC 1", NULL, 0, NULL), KZ_DB_EERROR);
    /* PostgreSQL answers COMMIT of a failed transaction with ROLLBACK. */
    EXPECT_RC(db, kz_db_commit(db), KZ_DB_EERROR);
    cr_assert_eq(count_rows(db, "kv"), 0);
    OK(db, kz_db_begin(db));
    OK(db, kz_db_commit(db));
}

Test(open, rejects_bad_addresses)
{
    char err[512] = "";
    if (!getenv("KZ_TEST_VERBOSE")) kz_log_set_level(KZ_LOG_ERROR);
    kz_db_t *db = (kz_db_t *)1;
    cr_assert_eq(kz_db_open("", &db, err, sizeof err), KZ_DB_EERROR);
    cr_assert_null(db);
    err[0] = '\0';
    cr_assert_eq(kz_db_open("postgres://nobody@127.0.0.1:1/none?connect_timeout=2", &db, err, sizeof err),
                 KZ_DB_EERROR);
    cr_assert_null(db);
    cr_assert(strstr(err, "postgres"), "%s", err);
    kz_db_close(NULL);
}
