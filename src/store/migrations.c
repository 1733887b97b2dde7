/* Schema migrations.
 *
 * Migrations are compiled in, numbered from 1, and never edited once
 * released: a schema change is a new entry at the end of the table below.
 * Each one runs in its own write transaction together with the
 * schema_migrations row that records it, after re-checking under a lock that
 * no other process applied it meanwhile (PostgreSQL: an advisory transaction
 * lock; SQLite: BEGIN IMMEDIATE, which already excludes other writers). So
 * kz_migrate_up is idempotent and safe to run from several processes at once.
 *
 * The SQL sticks to what both backends understand: TEXT, BIGINT, INTEGER;
 * ids are UUID text, times BIGINT unix milliseconds (0 = unset), JSON TEXT. */
#include "store/db_internal.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <assert.h>
#include <string.h>

/* Advisory lock key that serializes migrations on PostgreSQL. */
#define MIGRATE_LOCK_KEY "7350"

typedef struct migration {
    int version;             /* 1, 2, ... in order */
    const char *name;        /* short description, shown by kz_migrate_status */
    const char *sql_sqlite;  /* script for SQLite */
    const char *sql_postgres; /* script for PostgreSQL */
} migration_t;

/* ---- Migration 1: the initial schema --------------------------------------
 *
 * Written once for both backends; WITHOUT_ROWID expands to "WITHOUT ROWID"
 * on SQLite for tables with small rows and a composite text key that are
 * always read through that key (friend and group edges, session
 * bookkeeping), so SQLite keeps one b-tree instead of a table plus index. */
#define SCHEMA_V1(WITHOUT_ROWID)                                                               \
    /* Accounts. Every external identity is a nullable unique column. The   \
     * all-zero id is the system user, owner of server-written objects. */  \
    "CREATE TABLE users ("                                                                     \
    " id TEXT NOT NULL PRIMARY KEY,"                                                           \
    " username TEXT NOT NULL UNIQUE,"                                                          \
    " display_name TEXT,"                                                                      \
    " avatar_url TEXT,"                                                                        \
    " lang_tag TEXT NOT NULL DEFAULT 'en',"                                                    \
    " location TEXT,"                                                                          \
    " timezone TEXT,"                                                                          \
    " metadata TEXT NOT NULL DEFAULT '{}',"                                                    \
    " wallet TEXT NOT NULL DEFAULT '{}',"                                                      \
    " email TEXT UNIQUE,"                                                                      \
    " password TEXT,"                                                                          \
    " custom_id TEXT UNIQUE,"                                                                  \
    " facebook_id TEXT UNIQUE,"                                                                \
    " google_id TEXT UNIQUE,"                                                                  \
    " gamecenter_id TEXT UNIQUE,"                                                              \
    " steam_id TEXT UNIQUE,"                                                                   \
    " apple_id TEXT UNIQUE,"                                                                   \
    " facebook_instant_game_id TEXT UNIQUE,"                                                   \
    " edge_count INTEGER NOT NULL DEFAULT 0,"                                                  \
    " create_time BIGINT NOT NULL,"                                                            \
    " update_time BIGINT NOT NULL,"                                                            \
    " verify_time BIGINT NOT NULL DEFAULT 0,"                                                  \
    " disable_time BIGINT NOT NULL DEFAULT 0"                                                  \
    ");"                                                                                       \
    "INSERT INTO users (id, username, create_time, update_time)"                               \
    " VALUES ('00000000-0000-0000-0000-000000000000', '', 0, 0);"                              \
                                                                                               \
    /* Device ids used to authenticate, with push settings. */              \
    "CREATE TABLE user_device ("                                                               \
    " id TEXT NOT NULL PRIMARY KEY,"                                                           \
    " user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"                          \
    " preferences TEXT NOT NULL DEFAULT '{}',"                                                 \
    " push_token_android TEXT,"                                                                \
    " push_token_ios TEXT"                                                                     \
    ");"                                                                                       \
    "CREATE INDEX user_device_user_id_idx ON user_device (user_id);"                           \
                                                                                               \
    /* A revoked token pair, kept until it would have expired anyway. */    \
    "CREATE TABLE session_revocation ("                                                        \
    " token_id TEXT NOT NULL PRIMARY KEY,"                                                     \
    " user_id TEXT NOT NULL,"                                                                  \
    " expire_time BIGINT NOT NULL"                                                             \
    ")" WITHOUT_ROWID ";"                                                                      \
    "CREATE INDEX session_revocation_expire_time_idx ON session_revocation (expire_time);"     \
                                                                                               \
    /* Logout of all sessions: tokens issued before cutoff_time are invalid. */ \
    "CREATE TABLE session_cutoff ("                                                            \
    " user_id TEXT NOT NULL PRIMARY KEY,"                                                      \
    " cutoff_time BIGINT NOT NULL,"                                                            \
    " expire_time BIGINT NOT NULL"                                                             \
    ")" WITHOUT_ROWID ";"                                                                      \
                                                                                               \
    /* Friends, one row per direction; position orders a user's list. */    \
    "CREATE TABLE user_edge ("                                                                 \
    " source_id TEXT NOT NULL,"                                                                \
    " position BIGINT NOT NULL,"                                                               \
    " update_time BIGINT NOT NULL,"                                                            \
    " destination_id TEXT NOT NULL,"                                                           \
    " state INTEGER NOT NULL,"                                                                 \
    " metadata TEXT NOT NULL DEFAULT '{}',"                                                    \
    " PRIMARY KEY (source_id, state, position),"                                               \
    " UNIQUE (source_id, destination_id)"                                                      \
    ")" WITHOUT_ROWID ";"                                                                      \
    "CREATE INDEX user_edge_destination_id_idx ON user_edge (destination_id);"                 \
                                                                                               \
    /* Groups (clans); listing filters on disable_time, then language,      \
     * size or recency. */                                                   \
    "CREATE TABLE groups ("                                                                    \
    " id TEXT NOT NULL PRIMARY KEY,"                                                           \
    " creator_id TEXT NOT NULL,"                                                               \
    " name TEXT NOT NULL UNIQUE,"                                                              \
    " description TEXT,"                                                                       \
    " avatar_url TEXT,"                                                                        \
    " lang_tag TEXT NOT NULL DEFAULT 'en',"                                                    \
    " metadata TEXT NOT NULL DEFAULT '{}',"                                                    \
    " state INTEGER NOT NULL DEFAULT 0,"                                                       \
    " edge_count INTEGER NOT NULL DEFAULT 0,"                                                  \
    " max_count INTEGER NOT NULL DEFAULT 100,"                                                 \
    " create_time BIGINT NOT NULL,"                                                            \
    " update_time BIGINT NOT NULL,"                                                            \
    " disable_time BIGINT NOT NULL DEFAULT 0"                                                  \
    ");"                                                                                       \
    "CREATE INDEX groups_lang_edge_count_idx ON groups (disable_time, lang_tag, edge_count, id);" \
    "CREATE INDEX groups_edge_count_idx ON groups (disable_time, edge_count, id);"             \
    "CREATE INDEX groups_update_time_idx ON groups (disable_time, update_time, id);"           \
                                                                                               \
    /* Membership, both directions: group -> user and user -> group. */     \
    "CREATE TABLE group_edge ("                                                                \
    " source_id TEXT NOT NULL,"                                                                \
    " position BIGINT NOT NULL,"                                                               \
    " update_time BIGINT NOT NULL,"                                                            \
    " destination_id TEXT NOT NULL,"                                                           \
    " state INTEGER NOT NULL,"                                                                 \
    " PRIMARY KEY (source_id, state, position),"                                               \
    " UNIQUE (source_id, destination_id)"                                                      \
    ")" WITHOUT_ROWID ";"                                                                      \
    "CREATE INDEX group_edge_destination_id_idx ON group_edge (destination_id);"               \
                                                                                               \
    /* Storage objects; version is the hash clients send back for           \
     * optimistic concurrency. */                                            \
    "CREATE TABLE storage ("                                                                   \
    " collection TEXT NOT NULL,"                                                               \
    " key TEXT NOT NULL,"                                                                      \
    " user_id TEXT NOT NULL,"                                                                  \
    " value TEXT NOT NULL,"                                                                    \
    " version TEXT NOT NULL,"                                                                  \
    " read INTEGER NOT NULL DEFAULT 1,"                                                        \
    " write INTEGER NOT NULL DEFAULT 1,"                                                       \
    " create_time BIGINT NOT NULL,"                                                            \
    " update_time BIGINT NOT NULL,"                                                            \
    " PRIMARY KEY (collection, user_id, key)"                                                  \
    ");"                                                                                       \
    "CREATE INDEX storage_collection_read_key_idx ON storage (collection, read, key, user_id);" \
    "CREATE INDEX storage_user_collection_key_idx ON storage (user_id, collection, key);"      \
                                                                                               \
    "CREATE TABLE notification ("                                                              \
    " id TEXT NOT NULL PRIMARY KEY,"                                                           \
    " user_id TEXT NOT NULL,"                                                                  \
    " subject TEXT NOT NULL,"                                                                  \
    " content TEXT NOT NULL DEFAULT '{}',"                                                     \
    " code INTEGER NOT NULL,"                                                                  \
    " sender_id TEXT NOT NULL,"                                                                \
    " create_time BIGINT NOT NULL,"                                                            \
    " persistent INTEGER NOT NULL DEFAULT 1"                                                   \
    ");"                                                                                       \
    "CREATE INDEX notification_user_create_idx ON notification (user_id, create_time, id);"    \
                                                                                               \
    /* Chat history, addressed by the stream it was sent on. */             \
    "CREATE TABLE message ("                                                                   \
    " id TEXT NOT NULL PRIMARY KEY,"                                                           \
    " code INTEGER NOT NULL DEFAULT 0,"                                                        \
    " sender_id TEXT NOT NULL,"                                                                \
    " username TEXT NOT NULL,"                                                                 \
    " stream_mode INTEGER NOT NULL,"                                                           \
    " stream_subject TEXT NOT NULL,"                                                           \
    " stream_subcontext TEXT NOT NULL,"                                                        \
    " stream_label TEXT NOT NULL,"                                                             \
    " content TEXT NOT NULL DEFAULT '{}',"                                                     \
    " create_time BIGINT NOT NULL,"                                                            \
    " update_time BIGINT NOT NULL,"                                                            \
    " UNIQUE (sender_id, id)"                                                                  \
    ");"                                                                                       \
    "CREATE INDEX message_stream_create_idx ON message"                                        \
    " (stream_mode, stream_subject, stream_subcontext, stream_label, create_time, id);"        \
                                                                                               \
    /* Leaderboards and tournaments (a tournament is a leaderboard with a   \
     * duration, start/end and size limits). */                              \
    "CREATE TABLE leaderboard ("                                                               \
    " id TEXT NOT NULL PRIMARY KEY,"                                                           \
    " authoritative INTEGER NOT NULL DEFAULT 0,"                                               \
    " sort_order INTEGER NOT NULL DEFAULT 1,"                                                  \
    " operator INTEGER NOT NULL DEFAULT 0,"                                                    \
    " reset_schedule TEXT,"                                                                    \
    " metadata TEXT NOT NULL DEFAULT '{}',"                                                    \
    " create_time BIGINT NOT NULL,"                                                            \
    " category INTEGER NOT NULL DEFAULT 0,"                                                    \
    " description TEXT NOT NULL DEFAULT '',"                                                   \
    " duration INTEGER NOT NULL DEFAULT 0,"                                                    \
    " end_time BIGINT NOT NULL DEFAULT 0,"                                                     \
    " join_required INTEGER NOT NULL DEFAULT 0,"                                               \
    " max_size INTEGER NOT NULL DEFAULT 100000000,"                                            \
    " max_num_score INTEGER NOT NULL DEFAULT 1000000,"                                         \
    " title TEXT NOT NULL DEFAULT '',"                                                         \
    " size INTEGER NOT NULL DEFAULT 0,"                                                        \
    " start_time BIGINT NOT NULL DEFAULT 0,"                                                   \
    " enable_ranks INTEGER NOT NULL DEFAULT 1"                                                 \
    ");"                                                                                       \
                                                                                               \
    /* Scores; expiry_time is the end of the reset period (0 = never), so   \
     * each period keeps its own records. */                                 \
    "CREATE TABLE leaderboard_record ("                                                        \
    " leaderboard_id TEXT NOT NULL REFERENCES leaderboard (id) ON DELETE CASCADE,"             \
    " owner_id TEXT NOT NULL,"                                                                 \
    " username TEXT,"                                                                          \
    " score BIGINT NOT NULL DEFAULT 0,"                                                        \
    " subscore BIGINT NOT NULL DEFAULT 0,"                                                     \
    " num_score INTEGER NOT NULL DEFAULT 1,"                                                   \
    " max_num_score INTEGER NOT NULL DEFAULT 1000000,"                                         \
    " metadata TEXT NOT NULL DEFAULT '{}',"                                                    \
    " create_time BIGINT NOT NULL,"                                                            \
    " update_time BIGINT NOT NULL,"                                                            \
    " expiry_time BIGINT NOT NULL DEFAULT 0,"                                                  \
    " PRIMARY KEY (leaderboard_id, expiry_time, owner_id)"                                     \
    ");"                                                                                       \
    "CREATE INDEX leaderboard_record_rank_idx ON leaderboard_record"                           \
    " (leaderboard_id, expiry_time, score, subscore, update_time, owner_id);"                  \
    "CREATE INDEX leaderboard_record_owner_idx ON leaderboard_record"                          \
    " (owner_id, expiry_time, leaderboard_id);"                                                \
                                                                                               \
    "CREATE TABLE wallet_ledger ("                                                             \
    " id TEXT NOT NULL PRIMARY KEY,"                                                           \
    " user_id TEXT NOT NULL,"                                                                  \
    " changeset TEXT NOT NULL,"                                                                \
    " metadata TEXT NOT NULL,"                                                                 \
    " create_time BIGINT NOT NULL,"                                                            \
    " update_time BIGINT NOT NULL"                                                             \
    ");"                                                                                       \
    "CREATE INDEX wallet_ledger_user_create_idx ON wallet_ledger (user_id, create_time, id);"

static const char schema_v1_sqlite[] = SCHEMA_V1(" WITHOUT ROWID");
static const char schema_v1_postgres[] = SCHEMA_V1("");

/* ---- Migration 2: leaderboard ranking order, tournament size per period ----
 *
 * Pages of a leaderboard are read in the board's rank order (score,
 * subscore, owner_id), so the index follows that order exactly (v1 had
 * update_time before owner_id). A tournament's size counts the
 * participants of one period: size_expiry names the period the count
 * belongs to, so a new period starts from zero without a reset job. */
#define SCHEMA_V2                                                                                   \
    "DROP INDEX leaderboard_record_rank_idx;"                                                       \
    "CREATE INDEX leaderboard_record_rank_idx ON leaderboard_record"                                \
    " (leaderboard_id, expiry_time, score, subscore, owner_id);"                                    \
    "ALTER TABLE leaderboard ADD COLUMN size_expiry BIGINT NOT NULL DEFAULT 0;"

/* Every migration, in order. Append only. */
static const migration_t migrations[] = {
    {1, "initial schema", schema_v1_sqlite, schema_v1_postgres},
    {2, "leaderboard rank order", SCHEMA_V2, SCHEMA_V2},
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version INTEGER NOT NULL PRIMARY KEY,"
                                       " name TEXT NOT NULL,"
                                       " applied_at BIGINT NOT NULL)";

int kz_migrate_count(void)
{
    return NMIGRATIONS;
}

/* Opens a write transaction and, on PostgreSQL, takes the migration lock
 * (released at commit/rollback), so concurrent runners take turns. */
static int begin_locked(kz_db_t *db)
{
    int rc = kz_db_begin(db);
    if (rc != KZ_DB_OK || kz_db_kind(db) != KZ_DB_POSTGRES) return rc;
    rc = kz_db_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", NULL, 0, NULL);
    if (rc != KZ_DB_OK) kz_db_rollback(db);
    return rc;
}

/* Sets *applied to whether version has a schema_migrations row. */
static int is_applied(kz_db_t *db, int version, bool *applied)
{
    kz_dbrows_t *rows;
    kz_dbval_t p[] = {KZ_DBINT(version)};
    int rc = kz_db_query(db, "SELECT version FROM schema_migrations WHERE version = $1", p, 1, &rows);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(rows);
    kz_db_rows_free(rows);
    if (rc < 0) return rc;
    *applied = rc == 1;
    return KZ_DB_OK;
}

/* Applies migration m unless already applied, in one transaction with its
 * schema_migrations row. */
static int apply_one(kz_db_t *db, const migration_t *m)
{
    int rc = begin_locked(db);
    if (rc != KZ_DB_OK) return rc;
    bool applied = false;
    rc = is_applied(db, m->version, &applied);
    if (rc == KZ_DB_OK && applied) return kz_db_rollback(db);
    if (rc == KZ_DB_OK)
        rc = kz_db_exec_script(db, kz_db_kind(db) == KZ_DB_POSTGRES ? m->sql_postgres : m->sql_sqlite);
    if (rc == KZ_DB_OK) {
        kz_dbval_t p[] = {KZ_DBINT(m->version), KZ_DBTEXT(m->name), KZ_DBINT(kz_now_ms())};
        rc = kz_db_exec(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                        p, 3, NULL);
    }
    if (rc == KZ_DB_OK) return kz_db_commit(db);
    kz_db_rollback(db);
    return rc;
}

int kz_migrate_up(kz_db_t *db, char *err, size_t errlen)
{
    /* The bookkeeping table itself, created under the same lock: two
     * PostgreSQL sessions racing on CREATE TABLE IF NOT EXISTS can both
     * try to create it. */
    int rc = begin_locked(db);
    if (rc == KZ_DB_OK) {
        rc = kz_db_exec(db, create_table_sql, NULL, 0, NULL);
        if (rc == KZ_DB_OK)
            rc = kz_db_commit(db);
        else
            kz_db_rollback(db);
    }
    if (rc != KZ_DB_OK) {
        snprintf(err, errlen, "schema_migrations: %s", kz_db_errmsg(db));
        return rc;
    }
    for (int i = 0; i < NMIGRATIONS; i++) {
        rc = apply_one(db, &migrations[i]);
        if (rc != KZ_DB_OK) {
            snprintf(err, errlen, "migration %d (%s): %s", migrations[i].version, migrations[i].name,
                     kz_db_errmsg(db));
            return rc;
        }
    }
    return KZ_DB_OK;
}

/* One schema_migrations row. */
typedef struct applied_row {
    int64_t version;
    int64_t applied_at;
    char name[64];
} applied_row_t;

/* Sets *exists to whether the schema_migrations table exists. */
static int table_exists(kz_db_t *db, bool *exists)
{
    const char *sql = kz_db_kind(db) == KZ_DB_POSTGRES
                          ? "SELECT count(*) FROM information_schema.tables"
                            " WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
                          : "SELECT count(*) FROM sqlite_master"
                            " WHERE type = 'table' AND name = 'schema_migrations'";
    kz_dbrows_t *rows;
    int rc = kz_db_query(db, sql, NULL, 0, &rows);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(rows);
    *exists = rc == 1 && kz_db_int(rows, 0) > 0;
    kz_db_rows_free(rows);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* Reads up to max schema_migrations rows in version order into out; *n
 * receives the count. */
static int load_applied(kz_db_t *db, applied_row_t *out, int max, int *n)
{
    *n = 0;
    bool exists = false;
    int rc = table_exists(db, &exists);
    if (rc != KZ_DB_OK || !exists) return rc;
    kz_dbrows_t *rows;
    rc = kz_db_query(db, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version", NULL, 0,
                     &rows);
    if (rc != KZ_DB_OK) return rc;
    while ((rc = kz_db_next(rows)) == 1 && *n < max) {
        applied_row_t *a = &out[(*n)++];
        a->version = kz_db_int(rows, 0);
        const char *name = kz_db_text(rows, 1, NULL);
        snprintf(a->name, sizeof a->name, "%s", name ? name : "");
        a->applied_at = kz_db_int(rows, 2);
    }
    kz_db_rows_free(rows);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* Prints one status line: version, name, then "applied <time>" or "pending". */
static void print_line(FILE *out, int64_t version, const char *name, const applied_row_t *a,
                       const char *note)
{
    if (a) {
        char ts[32];
        kz_rfc3339(a->applied_at, ts);
        fprintf(out, "%3lld %-25s applied %s%s\n", (long long)version, name, ts, note);
    } else {
        fprintf(out, "%3lld %-25s pending\n", (long long)version, name);
    }
}

int kz_migrate_status(kz_db_t *db, FILE *out)
{
    enum { MAX_ROWS = 1024 };
    static_assert(NMIGRATIONS <= MAX_ROWS, "raise MAX_ROWS");
    applied_row_t *applied = kz_calloc(MAX_ROWS, sizeof *applied);
    int n = 0;
    int rc = load_applied(db, applied, MAX_ROWS, &n);
    if (rc == KZ_DB_OK) {
        int j = 0; /* walks the applied rows, both lists being in version order */
        for (int i = 0; i < NMIGRATIONS; i++) {
            const migration_t *m = &migrations[i];
            for (; j < n && applied[j].version < m->version; j++)
                print_line(out, applied[j].version, applied[j].name, &applied[j], " (unknown to this binary)");
            const applied_row_t *a = j < n && applied[j].version == m->version ? &applied[j++] : NULL;
            print_line(out, m->version, m->name, a, "");
        }
        for (; j < n; j++)
            print_line(out, applied[j].version, applied[j].name, &applied[j], " (unknown to this binary)");
    }
    kz_free(applied);
    return rc;
}
