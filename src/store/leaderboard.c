/* Leaderboards and tournaments in the store (store/leaderboard.h).
 *
 * Writes. A write is one transaction: insert the row if the owner has none
 * in this period (INSERT ... ON CONFLICT DO NOTHING, which on PostgreSQL
 * waits for a concurrent insert of the same key), otherwise lock it (a
 * no-op UPDATE), read it, apply the operator in C -- the same arithmetic on
 * both backends -- and write the result back. Tournament size slots are
 * one conditional UPDATE of the board row whose affected-row count tells
 * whether a slot was free.
 *
 * Ranks. After the commit the owner's row is read again and put into the
 * rank cache (or taken out when gone) under a mutex striped by (board,
 * owner): whichever writer syncs last reads the last committed values, so
 * concurrent writers of one owner always leave the cache with the row's
 * final score.
 *
 * Pages. Keyset pagination over (score, subscore, owner_id) in the board's
 * order, served by the index of migration 2; a cursor carries the position
 * and rank of the record it was made at, its direction, board and period. */
#include "store/leaderboard.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/jwt.h"
#include "core/log.h"
#include "core/uuid.h"

/* Times a write is attempted when the database reports a deadlock or a
 * lock timeout (KZ_DB_EBUSY). */
#define BUSY_ATTEMPTS 3

/* max_num_score of a leaderboard (not tournament) record, Nakama's column
 * default. */
#define LEADERBOARD_MAX_NUM_SCORE 1000000

/* Owners per statement when reading owner_records (one SQL text: the last
 * id repeats to fill the list). */
#define OWNER_CHUNK 50

#define REC_COLS                                                                                   \
    "owner_id, username, score, subscore, num_score, max_num_score, metadata, create_time, "       \
    "update_time, expiry_time"

#define BOARD_COLS                                                                                 \
    "id, authoritative, sort_order, operator, reset_schedule, metadata, create_time, category, "   \
    "description, duration, end_time, join_required, max_size, max_num_score, title, "             \
    "start_time, enable_ranks"

/* ------------------------------------------------------------------------ */
/* Records                                                                  */

void kz_lb_record_clear(kz_lb_record_t *r)
{
    if (!r) return;
    kz_free(r->username);
    kz_free(r->metadata);
    memset(r, 0, sizeof *r);
}

void kz_lb_records_free(kz_lb_record_t *v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++)
        kz_lb_record_clear(&v[i]);
    kz_free(v);
}

void kz_lb_list_free(kz_lb_list_t *l)
{
    if (!l) return;
    kz_lb_records_free(l->records, l->nrecords);
    kz_lb_records_free(l->owner_records, l->nowner_records);
    kz_free(l->next_cursor);
    kz_free(l->prev_cursor);
    memset(l, 0, sizeof *l);
}

/* Fills r from the current row of a SELECT REC_COLS. */
static void row_record(kz_dbrows_t *rows, kz_lb_record_t *r)
{
    memset(r, 0, sizeof *r);
    kz_db_text_id(rows, 0, r->owner_id);
    r->username = kz_db_text_dup(rows, 1);
    r->score = kz_db_int(rows, 2);
    r->subscore = kz_db_int(rows, 3);
    r->num_score = kz_db_int(rows, 4);
    r->max_num_score = kz_db_int(rows, 5);
    r->metadata = kz_db_text_dup(rows, 6);
    if (!r->metadata) r->metadata = kz_strdup("{}");
    r->create_time = kz_db_int(rows, 7);
    r->update_time = kz_db_int(rows, 8);
    r->expiry = kz_db_int(rows, 9) / 1000;
}

/* A growable array of records. */
typedef struct recvec {
    kz_lb_record_t *v;
    int n, cap;
} recvec_t;

static kz_lb_record_t *recvec_push(recvec_t *rv)
{
    if (rv->n == rv->cap) {
        rv->cap = rv->cap ? rv->cap * 2 : 16;
        rv->v = kz_realloc(rv->v, sizeof *rv->v * (size_t)rv->cap);
    }
    return &rv->v[rv->n++];
}

/* Appends the rows of a SELECT REC_COLS to rv. */
static int collect(kz_db_t *db, const char *sql, const kz_dbval_t *p, int np, recvec_t *rv)
{
    kz_dbrows_t *rows;
    int rc = kz_db_query(db, sql, p, np, &rows);
    if (rc != KZ_DB_OK) return rc;
    while ((rc = kz_db_next(rows)) == 1)
        row_record(rows, recvec_push(rv));
    kz_db_rows_free(rows);
    return rc < 0 ? rc : KZ_DB_OK;
}

/* Reads one record by key into *r; KZ_LB_NOT_FOUND when there is none. */
static int read_record(kz_db_t *db, const char *board, int64_t expiry, const char *owner,
                       kz_lb_record_t *r)
{
    kz_dbval_t p[] = {KZ_DBTEXT(board), KZ_DBINT(expiry * 1000), KZ_DBTEXT(owner)};
    recvec_t rv = {0};
    int rc = collect(db,
                     "SELECT " REC_COLS " FROM leaderboard_record"
                     " WHERE leaderboard_id = $1 AND expiry_time = $2 AND owner_id = $3",
                     p, 3, &rv);
    if (rc == KZ_DB_OK && rv.n == 0) rc = KZ_LB_NOT_FOUND;
    if (rc == KZ_DB_OK) {
        *r = rv.v[0]; /* the key is unique: one row */
        for (int i = 1; i < rv.n; i++)
            kz_lb_record_clear(&rv.v[i]);
        kz_free(rv.v);
        return KZ_DB_OK;
    }
    kz_lb_records_free(rv.v, rv.n);
    return rc;
}

/* True when a ranks before b in the board's order. */
static bool better(bool descending, const kz_lb_record_t *a, const kz_lb_record_t *b)
{
    int c = a->score != b->score         ? (a->score < b->score ? -1 : 1)
            : a->subscore != b->subscore ? (a->subscore < b->subscore ? -1 : 1)
                                         : strcmp(a->owner_id, b->owner_id);
    return descending ? c > 0 : c < 0;
}

static void sort_records(kz_lb_record_t *v, int n, bool descending)
{
    for (int i = 1; i < n; i++) { /* short lists: insertion sort */
        kz_lb_record_t x = v[i];
        int j = i - 1;
        while (j >= 0 && better(descending, &x, &v[j])) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

/* ------------------------------------------------------------------------ */
/* Rank cache sync                                                          */

enum { STRIPES = 64 };
static pthread_mutex_t stripes[STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void stripes_init(void)
{
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripes[i], NULL);
}

static pthread_mutex_t *stripe(const char *board, const char *owner)
{
    pthread_once(&stripes_once, stripes_init);
    uint64_t h = 1469598103934665603ull;
    for (const char *s = board; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    for (const char *s = owner; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return &stripes[h % STRIPES];
}

/* Brings the rank cache in line with owner's committed row in period
 * expiry of b; when out is given it receives that row (rank included;
 * out->owner_id empty when the row is gone). Returns the rank (0: ranks
 * off, or no row). */
static int64_t rank_sync(kz_db_t *db, const kz_board_t *b, int64_t expiry, const char *owner,
                         kz_lb_record_t *out)
{
    kz_lb_record_t r = {0};
    uint8_t key[16];
    bool ranked = b->enable_ranks && kz_board_owner_key(owner, key);
    pthread_mutex_t *m = ranked ? stripe(b->id, owner) : NULL;
    if (m) pthread_mutex_lock(m);
    int rc = read_record(db, b->id, expiry, owner, &r);
    int64_t rank = 0;
    if (ranked) {
        kz_rank_cache_t *c = kz_boards_ranks();
        if (rc == KZ_DB_OK)
            rank = kz_rank_cache_upsert(c, b->id, expiry, b->descending, key, r.score, r.subscore);
        else if (rc == KZ_LB_NOT_FOUND)
            kz_rank_cache_remove(c, b->id, expiry, key);
        else /* could not read: keep what the cache has */
            rank = kz_rank_cache_rank(c, b->id, expiry, key);
    }
    if (m) pthread_mutex_unlock(m);
    if (rc != KZ_DB_OK && rc != KZ_LB_NOT_FOUND)
        kz_log_warn("leaderboard %s: cannot read back the record of %s: %s", b->id, owner,
                    kz_db_errmsg(db));
    r.rank = rank;
    if (out)
        *out = r;
    else
        kz_lb_record_clear(&r);
    return rank;
}

/* Rank of owner in the cache (0: ranks off or absent). */
static int64_t cached_rank(const kz_board_t *b, int64_t expiry, const char *owner)
{
    uint8_t key[16];
    if (!b->enable_ranks || !kz_board_owner_key(owner, key)) return 0;
    return kz_rank_cache_rank(kz_boards_ranks(), b->id, expiry, key);
}

static int64_t rank_count(const kz_board_t *b, int64_t expiry)
{
    return b->enable_ranks ? kz_rank_cache_count(kz_boards_ranks(), b->id, expiry) : 0;
}

/* ------------------------------------------------------------------------ */
/* Definitions                                                              */

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* Builds a board from the current row of a SELECT BOARD_COLS; NULL (logged)
 * when its schedule no longer parses. */
static kz_board_t *row_board(kz_dbrows_t *rows)
{
    kz_board_t *b = kz_board_new();
    b->id = kz_db_text_dup(rows, 0);
    b->authoritative = kz_db_int(rows, 1) != 0;
    b->descending = kz_db_int(rows, 2) != 0;
    b->op = (int)kz_db_int(rows, 3);
    if (b->op < KZ_LB_OP_BEST || b->op > KZ_LB_OP_DECR) b->op = KZ_LB_OP_BEST;
    b->reset_schedule = kz_db_text_dup(rows, 4);
    if (b->reset_schedule && !*b->reset_schedule) {
        kz_free(b->reset_schedule);
        b->reset_schedule = NULL;
    }
    b->metadata = kz_db_text_dup(rows, 5);
    if (!b->metadata) b->metadata = kz_strdup("{}");
    b->create_time = kz_db_int(rows, 6) / 1000;
    b->category = (int)kz_db_int(rows, 7);
    b->description = kz_db_text_dup(rows, 8);
    b->duration = kz_db_int(rows, 9);
    b->end_time = kz_db_int(rows, 10) / 1000;
    b->join_required = kz_db_int(rows, 11) != 0;
    b->max_size = kz_db_int(rows, 12);
    b->max_num_score = kz_db_int(rows, 13);
    b->title = kz_db_text_dup(rows, 14);
    b->start_time = kz_db_int(rows, 15) / 1000;
    b->enable_ranks = kz_db_int(rows, 16) != 0;
    b->tournament = b->duration > 0;
    if (!b->title) b->title = kz_strdup("");
    if (!b->description) b->description = kz_strdup("");
    if (b->reset_schedule) {
        char err[200];
        b->cron = kz_cron_parse(b->reset_schedule, err, sizeof err);
        if (!b->cron) {
            kz_log_error(
                "leaderboard %s: stored reset schedule '%s' does not parse (%s); board skipped",
                b->id, b->reset_schedule, err);
            kz_board_release(b);
            return NULL;
        }
    }
    return b;
}

/* Reads one stored definition; *out NULL when there is none. */
static int load_one(kz_db_t *db, const char *id, kz_board_t **out)
{
    *out = NULL;
    kz_dbval_t p[] = {KZ_DBTEXT(id)};
    kz_dbrows_t *rows;
    int rc = kz_db_query(db, "SELECT " BOARD_COLS " FROM leaderboard WHERE id = $1", p, 1, &rows);
    if (rc != KZ_DB_OK) return rc;
    rc = kz_db_next(rows);
    if (rc == 1) *out = row_board(rows);
    kz_db_rows_free(rows);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_lb_load_all(kz_db_t *db, kz_board_t ***out, int *n)
{
    *out = NULL;
    *n = 0;
    kz_dbrows_t *rows;
    int rc = kz_db_query(db, "SELECT " BOARD_COLS " FROM leaderboard ORDER BY id", NULL, 0, &rows);
    if (rc != KZ_DB_OK) return rc;
    int cap = 0;
    while ((rc = kz_db_next(rows)) == 1) {
        kz_board_t *b = row_board(rows);
        if (!b) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = kz_realloc(*out, sizeof **out * (size_t)cap);
        }
        (*out)[(*n)++] = b;
    }
    kz_db_rows_free(rows);
    if (rc < 0) {
        kz_boards_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    return KZ_DB_OK;
}

/* Checks a tournament definition as Nakama does; NULL or the message. */
static const char *check_tournament(const kz_lb_def_t *d, const kz_cron_t *cron, int64_t start)
{
    if (d->duration <= 0) return "tournament duration must be greater than zero";
    if (d->category < 0 || d->category > 127) return "category must be 0-127";
    if (d->start_time < 0) return "startTime must be >= 0.";
    if (d->end_time < 0 || (d->end_time != 0 && d->end_time <= start))
        return "endTime must be > startTime. Use 0 to indicate a tournament that never ends.";
    if (d->max_size < 0) return "maxSize must be >= 0";
    if (d->max_num_score < 0) return "maxNumScore must be >= 0";
    if (cron && d->end_time > 0) {
        int64_t first = kz_cron_next(cron, start - 1);
        if (first < 0 || first > d->end_time)
            return "tournament end time cannot be before first reset";
    }
    return NULL;
}

int kz_lb_create(kz_db_t *db, const kz_lb_def_t *d, int64_t now_ms, bool *created, char *err,
                 size_t errlen)
{
    if (created) *created = false;
    if (!d->id || !*d->id) {
        set_err(err, errlen, "expects a leaderboard ID string");
        return KZ_LB_INVALID;
    }
    kz_board_t *have = kz_boards_get(d->id);
    if (have) {
        int rc = have->tournament == d->tournament ? KZ_DB_OK : KZ_LB_IN_USE;
        if (rc == KZ_LB_IN_USE)
            set_err(err, errlen,
                    d->tournament ? "cannot create tournament as leaderboard is already in use"
                                  : "cannot create leaderboard as tournament is already in use");
        kz_board_release(have);
        return rc;
    }
    const char *sched = d->reset_schedule && *d->reset_schedule ? d->reset_schedule : NULL;
    kz_cron_t *cron = NULL;
    if (sched) {
        char cerr[200];
        cron = kz_cron_parse(sched, cerr, sizeof cerr);
        if (!cron) {
            set_err(err, errlen, "expects reset schedule to be a valid CRON expression");
            return KZ_LB_INVALID;
        }
    }
    int64_t now = now_ms / 1000;
    int64_t start = d->tournament && d->start_time > 0 ? d->start_time : now;
    if (d->tournament) {
        const char *bad = check_tournament(d, cron, start);
        if (bad) {
            kz_cron_free(cron);
            set_err(err, errlen, bad);
            return KZ_LB_INVALID;
        }
    }
    kz_cron_free(cron);
    int64_t max_size = d->tournament && d->max_size > 0 ? d->max_size : KZ_LB_UNLIMITED_SIZE;
    if (max_size > KZ_LB_UNLIMITED_SIZE) max_size = KZ_LB_UNLIMITED_SIZE;
    kz_dbval_t p[] = {
        KZ_DBTEXT(d->id),
        KZ_DBINT(d->authoritative),
        KZ_DBINT(d->descending ? 1 : 0),
        KZ_DBINT(d->op),
        KZ_DBTEXT(sched),
        KZ_DBTEXT(d->metadata && *d->metadata ? d->metadata : "{}"),
        KZ_DBINT(now_ms),
        KZ_DBINT(d->tournament ? d->category : 0),
        KZ_DBTEXT(d->tournament && d->description ? d->description : ""),
        KZ_DBINT(d->tournament ? d->duration : 0),
        KZ_DBINT(d->tournament ? d->end_time * 1000 : 0),
        KZ_DBINT(d->tournament && d->join_required),
        KZ_DBINT(max_size),
        KZ_DBINT(d->tournament ? d->max_num_score : 0),
        KZ_DBTEXT(d->tournament && d->title ? d->title : ""),
        KZ_DBINT(d->tournament ? start * 1000 : 0),
        KZ_DBINT(d->enable_ranks),
    };
    int64_t inserted = 0;
    int rc = kz_db_exec(db,
                        "INSERT INTO leaderboard (" BOARD_COLS
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                        " $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (id) DO NOTHING",
                        p, 17, &inserted);
    if (rc != KZ_DB_OK) return rc;
    /* What is stored wins: another process may have created it first. */
    kz_board_t *b;
    rc = load_one(db, d->id, &b);
    if (rc != KZ_DB_OK) return rc;
    if (!b) return KZ_DB_EERROR; /* deleted in between, or a stored schedule that does not parse */
    if (b->tournament != d->tournament) {
        kz_board_release(b);
        set_err(err, errlen,
                d->tournament ? "cannot create tournament as leaderboard is already in use"
                              : "cannot create leaderboard as tournament is already in use");
        return KZ_LB_IN_USE;
    }
    kz_board_release(kz_boards_add(b));
    if (created) *created = inserted == 1;
    return KZ_DB_OK;
}

int kz_lb_ranks_disable(kz_db_t *db, const char *id, bool tournament)
{
    kz_board_t *b = kz_boards_get(id);
    bool found = b && b->tournament == tournament;
    kz_board_release(b);
    if (!found) return KZ_LB_NOT_FOUND;
    kz_dbval_t p[] = {KZ_DBTEXT(id)};
    int rc = kz_db_exec(db, "UPDATE leaderboard SET enable_ranks = 0 WHERE id = $1", p, 1, NULL);
    if (rc != KZ_DB_OK) return rc;
    return kz_boards_ranks_disable(id, tournament) ? KZ_DB_OK : KZ_LB_NOT_FOUND;
}

int kz_lb_delete(kz_db_t *db, const char *id, bool tournament)
{
    kz_board_t *b = kz_boards_get(id);
    if (b && b->tournament != tournament) {
        kz_board_release(b);
        return KZ_DB_OK; /* not a board of this kind: nothing to delete */
    }
    kz_board_release(b);
    kz_dbval_t p[] = {KZ_DBTEXT(id)};
    int rc = kz_db_begin(db);
    if (rc == KZ_DB_OK)
        rc = kz_db_exec(db,
                        tournament
                            ? "DELETE FROM leaderboard_record WHERE leaderboard_id = $1 AND EXISTS"
                              " (SELECT 1 FROM leaderboard WHERE id = $1 AND duration > 0)"
                            : "DELETE FROM leaderboard_record WHERE leaderboard_id = $1 AND EXISTS"
                              " (SELECT 1 FROM leaderboard WHERE id = $1 AND duration <= 0)",
                        p, 1, NULL);
    if (rc == KZ_DB_OK)
        rc = kz_db_exec(db,
                        tournament ? "DELETE FROM leaderboard WHERE id = $1 AND duration > 0"
                                   : "DELETE FROM leaderboard WHERE id = $1 AND duration <= 0",
                        p, 1, NULL);
    if (rc == KZ_DB_OK) rc = kz_db_commit(db);
    if (rc != KZ_DB_OK) {
        kz_db_rollback(db);
        return rc;
    }
    kz_boards_remove(id);
    return KZ_DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Board lookup and periods                                                 */

/* The board id of the asked kind (tournament true: a tournament; false:
 * any board, unless strict, which wants a leaderboard). */
static int board_get(const char *id, bool tournament, bool strict, kz_board_t **out)
{
    kz_board_t *b = kz_boards_get(id);
    if (!b || (tournament && !b->tournament) || (strict && !tournament && b->tournament)) {
        kz_board_release(b);
        return KZ_LB_NOT_FOUND;
    }
    *out = b;
    return KZ_DB_OK;
}

/* Checks a tournament accepts scores at now; fills its period. */
static int tournament_open(const kz_board_t *b, int64_t now, int64_t *expiry)
{
    int64_t sa, ea;
    kz_board_period(b, now, &sa, &ea, expiry);
    if (b->end_time > 0 && b->end_time <= now) return KZ_LB_ENDED;
    if (sa > now || ea <= now) return KZ_LB_NOT_ACTIVE;
    return KZ_DB_OK;
}

/* Takes a participant slot of tournament b in period expiry: the count
 * restarts with each period. KZ_LB_FULL when none is left. */
static int take_slot(kz_db_t *db, const kz_board_t *b, int64_t expiry)
{
    kz_dbval_t p[] = {KZ_DBTEXT(b->id), KZ_DBINT(expiry * 1000)};
    int64_t n = 0;
    int rc = kz_db_exec(
        db,
        "UPDATE leaderboard SET size = CASE WHEN size_expiry = $2 THEN size + 1 ELSE 1 END,"
        " size_expiry = $2 WHERE id = $1 AND (size_expiry <> $2 OR size < max_size)",
        p, 2, &n);
    if (rc == KZ_DB_OK && n == 0) rc = KZ_LB_FULL;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Write                                                                    */

/* a + b saturated to int64. */
static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The stored values after applying op to (old, oldsub) with (s, ss). */
static void apply_op(int op, bool descending, int64_t old, int64_t oldsub, int64_t s, int64_t ss,
                     int64_t *ns, int64_t *nss)
{
    switch (op) {
    case KZ_LB_OP_SET:
        *ns = s;
        *nss = ss;
        break;
    case KZ_LB_OP_INCR:
        *ns = add_sat(old, s);
        *nss = add_sat(oldsub, ss);
        break;
    case KZ_LB_OP_DECR: {
        int64_t a = add_sat(old, s == INT64_MIN ? INT64_MAX : -s);
        int64_t c = add_sat(oldsub, ss == INT64_MIN ? INT64_MAX : -ss);
        *ns = a < 0 ? 0 : a;
        *nss = c < 0 ? 0 : c;
        break;
    }
    default: /* best, per field */
        if (descending) {
            *ns = s > old ? s : old;
            *nss = ss > oldsub ? ss : oldsub;
        } else {
            *ns = s < old ? s : old;
            *nss = ss < oldsub ? ss : oldsub;
        }
    }
}

/* The body of a write transaction. */
static int write_tx(kz_db_t *db, const kz_board_t *b, int64_t expiry, const kz_lb_write_t *w,
                    int op, int64_t now_ms)
{
    const char *user = w->username && *w->username ? w->username : NULL;
    const char *meta = w->metadata && *w->metadata ? w->metadata : NULL;
    kz_dbval_t key[] = {KZ_DBTEXT(b->id), KZ_DBINT(expiry * 1000), KZ_DBTEXT(w->owner_id)};
    int rc;
    if (!(b->tournament && b->join_required)) {
        bool decr = op == KZ_LB_OP_DECR;
        kz_dbval_t p[] = {
            KZ_DBTEXT(b->id),
            KZ_DBTEXT(w->owner_id),
            KZ_DBTEXT(user),
            KZ_DBINT(decr ? 0 : w->score),
            KZ_DBINT(decr ? 0 : w->subscore),
            KZ_DBINT(b->tournament ? b->max_num_score : LEADERBOARD_MAX_NUM_SCORE),
            KZ_DBTEXT(meta ? meta : "{}"),
            KZ_DBINT(now_ms),
            KZ_DBINT(expiry * 1000),
        };
        int64_t inserted = 0;
        rc = kz_db_exec(
            db,
            "INSERT INTO leaderboard_record (leaderboard_id, owner_id, username, score, subscore,"
            " num_score, max_num_score, metadata, create_time, update_time, expiry_time)"
            " VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $8, $9)"
            " ON CONFLICT (leaderboard_id, expiry_time, owner_id) DO NOTHING",
            p, 9, &inserted);
        if (rc != KZ_DB_OK) return rc;
        if (inserted == 1) return b->tournament ? take_slot(db, b, expiry) : KZ_DB_OK;
    }
    /* The owner has a row in this period: lock it, read it, apply. */
    int64_t n = 0;
    rc = kz_db_exec(db,
                    "UPDATE leaderboard_record SET num_score = num_score"
                    " WHERE leaderboard_id = $1 AND expiry_time = $2 AND owner_id = $3",
                    key, 3, &n);
    if (rc != KZ_DB_OK) return rc;
    if (n == 0)
        return KZ_LB_JOIN_REQUIRED; /* only join_required tournaments get here without a row */
    kz_lb_record_t r;
    rc = read_record(db, b->id, expiry, w->owner_id, &r);
    if (rc != KZ_DB_OK) return rc == KZ_LB_NOT_FOUND ? KZ_DB_EERROR : rc;
    int64_t old = r.score, oldsub = r.subscore, num = r.num_score, max = r.max_num_score;
    kz_lb_record_clear(&r);
    if (b->tournament && max > 0 && num >= max) return KZ_LB_MAX_SCORES;
    int64_t ns, nss;
    if (b->tournament && num == 0) {
        /* Joined, no attempt yet: the first score is taken as given. */
        ns = op == KZ_LB_OP_DECR ? 0 : w->score;
        nss = op == KZ_LB_OP_DECR ? 0 : w->subscore;
    } else {
        apply_op(op, b->descending, old, oldsub, w->score, w->subscore, &ns, &nss);
    }
    if (!b->tournament && ns == old && nss == oldsub) return KZ_DB_OK; /* nothing changes */
    kz_dbval_t u[] = {KZ_DBTEXT(b->id), KZ_DBINT(expiry * 1000), KZ_DBTEXT(w->owner_id),
                      KZ_DBINT(ns),     KZ_DBINT(nss),           KZ_DBTEXT(meta),
                      KZ_DBTEXT(user),  KZ_DBINT(now_ms)};
    return kz_db_exec(
        db,
        "UPDATE leaderboard_record SET score = $4, subscore = $5, num_score = num_score + 1,"
        " metadata = COALESCE($6, metadata), username = COALESCE($7, username), update_time = $8"
        " WHERE leaderboard_id = $1 AND expiry_time = $2 AND owner_id = $3",
        u, 8, NULL);
}

int kz_lb_record_write(kz_db_t *db, const char *board_id, bool tournament, bool client,
                       const kz_lb_write_t *w, int64_t now_ms, kz_lb_record_t *out)
{
    memset(out, 0, sizeof *out);
    kz_board_t *b;
    int rc = board_get(board_id, tournament, true, &b);
    if (rc != KZ_DB_OK) return rc;
    int64_t now = now_ms / 1000, expiry = 0;
    if (client && b->authoritative)
        rc = KZ_LB_AUTHORITATIVE;
    else if (tournament)
        rc = tournament_open(b, now, &expiry);
    else
        kz_board_period(b, now, NULL, NULL, &expiry);
    int op = w->op >= KZ_LB_OP_BEST && w->op <= KZ_LB_OP_DECR ? w->op : b->op;
    for (int attempt = 1; rc == KZ_DB_OK; attempt++) {
        rc = kz_db_begin(db);
        if (rc == KZ_DB_OK) rc = write_tx(db, b, expiry, w, op, now_ms);
        if (rc == KZ_DB_OK)
            rc = kz_db_commit(db);
        else
            kz_db_rollback(db);
        if (rc != KZ_DB_EBUSY || attempt >= BUSY_ATTEMPTS) break;
        rc = KZ_DB_OK;
    }
    if (rc == KZ_DB_OK) {
        rank_sync(db, b, expiry, w->owner_id, out);
        if (!out->owner_id[0]) rc = KZ_DB_EERROR; /* deleted before it could be read back */
    }
    kz_board_release(b);
    return rc;
}

int kz_lb_record_delete(kz_db_t *db, const char *board_id, bool tournament, bool client,
                        const char *owner_id, int64_t now_ms)
{
    kz_board_t *b;
    int rc = board_get(board_id, tournament, true, &b);
    if (rc != KZ_DB_OK) return rc;
    if (client && b->authoritative) {
        kz_board_release(b);
        return KZ_LB_AUTHORITATIVE;
    }
    int64_t expiry;
    kz_board_period(b, now_ms / 1000, NULL, NULL, &expiry);
    kz_dbval_t p[] = {KZ_DBTEXT(b->id), KZ_DBINT(expiry * 1000), KZ_DBTEXT(owner_id)};
    rc = kz_db_exec(db,
                    "DELETE FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2 "
                    "AND owner_id = $3",
                    p, 3, NULL);
    if (rc == KZ_DB_OK) rank_sync(db, b, expiry, owner_id, NULL);
    kz_board_release(b);
    return rc;
}

int kz_lb_delete_user(kz_db_t *db, const char *user_id, int64_t now_ms)
{
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    int rc = kz_db_exec(db, "DELETE FROM leaderboard_record WHERE owner_id = $1", p, 1, NULL);
    uint8_t key[16];
    if (rc != KZ_DB_OK || !kz_board_owner_key(user_id, key)) return rc;
    kz_board_t **v;
    int n = kz_boards_all(&v);
    for (int i = 0; i < n; i++) {
        if (!v[i]->enable_ranks) continue;
        int64_t expiry;
        kz_board_period(v[i], now_ms / 1000, NULL, NULL, &expiry);
        kz_rank_cache_remove(kz_boards_ranks(), v[i]->id, expiry, key);
    }
    kz_boards_free(v, n);
    return KZ_DB_OK;
}

/* ------------------------------------------------------------------------ */
/* Cursors                                                                  */

/* A position in a period: where a page starts or ends. */
typedef struct pos {
    bool next; /* the page after (true) or before the position */
    int64_t expiry;
    int64_t score, subscore;
    char owner[37];
    int64_t rank;
} pos_t;

static char *cursor_encode(const char *board, const pos_t *p)
{
    json_t *o = json_pack("{s:b, s:s, s:I, s:I, s:I, s:s, s:I}", "n", p->next, "b", board, "e",
                          (json_int_t)p->expiry, "s", (json_int_t)p->score, "u",
                          (json_int_t)p->subscore, "o", p->owner, "r", (json_int_t)p->rank);
    char *json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *out = kz_b64url_encode(json, strlen(json));
    free(json);
    return out;
}

/* Decodes a cursor of board's period expiry; KZ_LB_BAD_CURSOR otherwise. */
static int cursor_decode(const char *cursor, const char *board, int64_t expiry, pos_t *p)
{
    size_t n = strlen(cursor);
    if (n > 2048) return KZ_LB_BAD_CURSOR;
    size_t len;
    unsigned char *raw = kz_b64url_decode(cursor, n, &len);
    if (!raw) return KZ_LB_BAD_CURSOR;
    json_t *o = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    kz_free(raw);
    int rc = KZ_LB_BAD_CURSOR;
    json_t *jn = json_object_get(o, "n"), *jb = json_object_get(o, "b"),
           *je = json_object_get(o, "e"), *js = json_object_get(o, "s"),
           *ju = json_object_get(o, "u"), *jo = json_object_get(o, "o"),
           *jr = json_object_get(o, "r");
    if (json_is_object(o) && json_is_boolean(jn) && json_is_string(jb) && json_is_integer(je) &&
        json_is_integer(js) && json_is_integer(ju) && json_is_string(jo) && json_is_integer(jr) &&
        strcmp(json_string_value(jb), board) == 0 && json_integer_value(je) == expiry &&
        kz_uuid_valid(json_string_value(jo), json_string_length(jo))) {
        p->next = json_is_true(jn);
        p->expiry = expiry;
        p->score = json_integer_value(js);
        p->subscore = json_integer_value(ju);
        snprintf(p->owner, sizeof p->owner, "%s", json_string_value(jo));
        p->rank = json_integer_value(jr);
        rc = KZ_DB_OK;
    }
    json_decref(o);
    return rc;
}

static pos_t pos_of(const kz_lb_record_t *r, int64_t expiry, bool next)
{
    pos_t p = {.next = next,
               .expiry = expiry,
               .score = r->score,
               .subscore = r->subscore,
               .rank = r->rank};
    memcpy(p.owner, r->owner_id, sizeof p.owner);
    return p;
}

/* ------------------------------------------------------------------------ */
/* Listing                                                                  */

/* Resolves the period a listing reads: *expiry (in/out: 0 = current).
 * *empty is set when the tournament's current period is already over. */
static void listing_period(const kz_board_t *b, int64_t now, int64_t *expiry, bool *empty)
{
    *empty = false;
    if (*expiry != 0) return;
    kz_board_period(b, now, NULL, NULL, expiry);
    if (b->tournament && *expiry != 0 && *expiry <= now) *empty = true;
}

/* The statements of a page: forward = in the board's order. */
static const char *page_sql(bool descending, bool forward, bool from_position)
{
    /* Going "down" the ranking (forward) on a desc board is DESC order with
     * positions below (<) the cursor; an asc board the reverse. */
    bool desc_order = descending == forward;
    if (!from_position)
        return desc_order
                   ? "SELECT " REC_COLS
                     " FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
                     " ORDER BY score DESC, subscore DESC, owner_id DESC LIMIT $3"
                   : "SELECT " REC_COLS
                     " FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
                     " ORDER BY score ASC, subscore ASC, owner_id ASC LIMIT $3";
    return desc_order ? "SELECT " REC_COLS
                        " FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
                        " AND (score, subscore, owner_id) < ($4, $5, $6)"
                        " ORDER BY score DESC, subscore DESC, owner_id DESC LIMIT $3"
                      : "SELECT " REC_COLS
                        " FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
                        " AND (score, subscore, owner_id) > ($4, $5, $6)"
                        " ORDER BY score ASC, subscore ASC, owner_id ASC LIMIT $3";
}

/* Up to max records of b's period next to position p (NULL: from the top)
 * in direction forward, into rv. */
static int fetch_from(kz_db_t *db, const kz_board_t *b, int64_t expiry, const pos_t *p,
                      bool forward, int max, recvec_t *rv)
{
    kz_dbval_t v[] = {
        KZ_DBTEXT(b->id),           KZ_DBINT(expiry * 1000),       KZ_DBINT(max),
        KZ_DBINT(p ? p->score : 0), KZ_DBINT(p ? p->subscore : 0), KZ_DBTEXT(p ? p->owner : "")};
    return collect(db, page_sql(b->descending, forward, p != NULL), v, p ? 6 : 3, rv);
}

static void reverse(kz_lb_record_t *v, int n)
{
    for (int i = 0, j = n - 1; i < j; i++, j--) {
        kz_lb_record_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* One page of limit records from cursor (NULL: the first page). */
static int page(kz_db_t *db, const kz_board_t *b, int64_t expiry, int limit, const pos_t *cur,
                kz_lb_list_t *out)
{
    recvec_t rv = {0};
    bool forward = !cur || cur->next;
    int rc = fetch_from(db, b, expiry, cur, forward, limit + 1, &rv);
    if (rc != KZ_DB_OK) {
        kz_lb_records_free(rv.v, rv.n);
        return rc;
    }
    bool more = rv.n > limit;
    if (more) kz_lb_record_clear(&rv.v[--rv.n]);
    if (forward) {
        int64_t rank = cur ? cur->rank : 0;
        for (int i = 0; i < rv.n; i++)
            rv.v[i].rank = ++rank;
    } else {
        int64_t rank = cur->rank;
        for (int i = 0; i < rv.n; i++)
            rv.v[i].rank = --rank;
        reverse(rv.v, rv.n);
    }
    if (rv.n > 0) {
        /* Forward: a next page when more rows followed, a previous one when
         * we came from a cursor. Backward: the mirror image. */
        bool has_next = forward ? more : true;
        bool has_prev = forward ? cur != NULL : more;
        if (has_next) {
            pos_t p = pos_of(&rv.v[rv.n - 1], expiry, true);
            out->next_cursor = cursor_encode(b->id, &p);
        }
        if (has_prev) {
            pos_t p = pos_of(&rv.v[0], expiry, false);
            out->prev_cursor = cursor_encode(b->id, &p);
        }
    }
    out->records = rv.v;
    out->nrecords = rv.n;
    return KZ_DB_OK;
}

/* The statement reading one chunk of owners: $3..$(OWNER_CHUNK + 2). */
static char owner_sql[96 + OWNER_CHUNK * 6 + sizeof("SELECT " REC_COLS)];
static pthread_once_t owner_sql_once = PTHREAD_ONCE_INIT;

static void owner_sql_build(void)
{
    size_t off =
        (size_t)snprintf(owner_sql, sizeof owner_sql,
                         "SELECT " REC_COLS " FROM leaderboard_record WHERE leaderboard_id = $1"
                         " AND expiry_time = $2 AND owner_id IN (");
    for (int i = 0; i < OWNER_CHUNK; i++)
        off += (size_t)snprintf(owner_sql + off, sizeof owner_sql - off, "%s$%d", i ? ", " : "",
                                i + 3);
    snprintf(owner_sql + off, sizeof owner_sql - off, ")");
}

/* The records of owners in b's period, sorted, ranked from the cache. */
static int owner_records(kz_db_t *db, const kz_board_t *b, int64_t expiry,
                         const char *const *owners, int n, kz_lb_list_t *out)
{
    pthread_once(&owner_sql_once, owner_sql_build);
    const char *sql = owner_sql;
    recvec_t rv = {0};
    int rc = KZ_DB_OK;
    for (int start = 0; start < n && rc == KZ_DB_OK; start += OWNER_CHUNK) {
        kz_dbval_t p[2 + OWNER_CHUNK];
        p[0] = KZ_DBTEXT(b->id);
        p[1] = KZ_DBINT(expiry * 1000);
        for (int i = 0; i < OWNER_CHUNK; i++) {
            int k = start + i < n ? start + i : n - 1;
            p[2 + i] = KZ_DBTEXT(owners[k]);
        }
        rc = collect(db, sql, p, 2 + OWNER_CHUNK, &rv);
    }
    if (rc != KZ_DB_OK) {
        kz_lb_records_free(rv.v, rv.n);
        return rc;
    }
    /* An owner named twice is read twice in different chunks: keep one. */
    sort_records(rv.v, rv.n, b->descending);
    int k = 0;
    for (int i = 0; i < rv.n; i++) {
        if (k > 0 && strcmp(rv.v[k - 1].owner_id, rv.v[i].owner_id) == 0) {
            kz_lb_record_clear(&rv.v[i]);
            continue;
        }
        rv.v[k++] = rv.v[i];
    }
    rv.n = k;
    for (int i = 0; i < rv.n; i++)
        rv.v[i].rank = cached_rank(b, expiry, rv.v[i].owner_id);
    out->owner_records = rv.v;
    out->nowner_records = rv.n;
    return KZ_DB_OK;
}

int kz_lb_records_list(kz_db_t *db, const char *board_id, bool tournament,
                       const char *const *owners, int nowners, int limit, const char *cursor,
                       int64_t expiry, int64_t now_ms, kz_lb_list_t *out)
{
    memset(out, 0, sizeof *out);
    kz_board_t *b;
    int rc = board_get(board_id, tournament, false, &b);
    if (rc != KZ_DB_OK) return rc;
    int64_t now = now_ms / 1000;
    if (tournament && expiry == 0 && b->end_time > 0 && b->end_time <= now) {
        kz_board_release(b);
        return KZ_LB_ENDED;
    }
    bool empty;
    listing_period(b, now, &expiry, &empty);
    if (!empty && limit > 0) {
        pos_t cur;
        bool has_cursor = cursor && *cursor;
        if (has_cursor) rc = cursor_decode(cursor, b->id, expiry, &cur);
        if (rc == KZ_DB_OK) rc = page(db, b, expiry, limit, has_cursor ? &cur : NULL, out);
    }
    if (rc == KZ_DB_OK && !empty && nowners > 0)
        rc = owner_records(db, b, expiry, owners, nowners, out);
    if (rc == KZ_DB_OK && !empty) out->rank_count = rank_count(b, expiry);
    if (rc != KZ_DB_OK) kz_lb_list_free(out);
    kz_board_release(b);
    return rc;
}

int kz_lb_records_haystack(kz_db_t *db, const char *board_id, bool tournament, const char *owner_id,
                           int limit, const char *cursor, int64_t expiry, int64_t now_ms,
                           kz_lb_list_t *out)
{
    memset(out, 0, sizeof *out);
    kz_board_t *b;
    int rc = board_get(board_id, tournament, false, &b);
    if (rc != KZ_DB_OK) return rc;
    bool empty;
    listing_period(b, now_ms / 1000, &expiry, &empty);
    if (empty || limit < 1) {
        kz_board_release(b);
        return KZ_DB_OK;
    }
    if (cursor && *cursor) {
        pos_t cur;
        rc = cursor_decode(cursor, b->id, expiry, &cur);
        if (rc == KZ_DB_OK) rc = page(db, b, expiry, limit, &cur, out);
        if (rc == KZ_DB_OK) out->rank_count = rank_count(b, expiry);
        kz_board_release(b);
        return rc;
    }
    kz_lb_record_t me;
    rc = read_record(db, b->id, expiry, owner_id, &me);
    if (rc == KZ_LB_NOT_FOUND) { /* no record: an empty window */
        kz_board_release(b);
        return KZ_DB_OK;
    }
    if (rc != KZ_DB_OK) {
        kz_board_release(b);
        return rc;
    }
    pos_t at = pos_of(&me, expiry, true);
    recvec_t above = {0}, below = {0};
    rc = fetch_from(db, b, expiry, &at, false, limit, &above); /* nearest better first */
    if (rc == KZ_DB_OK) rc = fetch_from(db, b, expiry, &at, true, limit, &below);
    if (rc != KZ_DB_OK) {
        kz_lb_record_clear(&me);
        kz_lb_records_free(above.v, above.n);
        kz_lb_records_free(below.v, below.n);
        kz_board_release(b);
        return rc;
    }
    /* About half below, the rest above; a short side gives its room to the
     * other. */
    int take_below = below.n < limit / 2 ? below.n : limit / 2;
    int take_above = above.n < limit - 1 - take_below ? above.n : limit - 1 - take_below;
    if (take_below < limit - 1 - take_above)
        take_below = below.n < limit - 1 - take_above ? below.n : limit - 1 - take_above;
    int n = take_above + 1 + take_below;
    kz_lb_record_t *v = kz_calloc((size_t)n, sizeof *v);
    int k = 0;
    for (int i = take_above - 1; i >= 0; i--)
        v[k++] = above.v[i];
    v[k++] = me;
    for (int i = 0; i < take_below; i++)
        v[k++] = below.v[i];
    for (int i = take_above; i < above.n; i++)
        kz_lb_record_clear(&above.v[i]);
    for (int i = take_below; i < below.n; i++)
        kz_lb_record_clear(&below.v[i]);
    kz_free(above.v);
    kz_free(below.v);
    for (int i = 0; i < n; i++)
        v[i].rank = cached_rank(b, expiry, v[i].owner_id);
    out->records = v;
    out->nrecords = n;
    if (above.n > take_above) {
        pos_t p = pos_of(&v[0], expiry, false);
        out->prev_cursor = cursor_encode(b->id, &p);
    }
    if (below.n > take_below) {
        pos_t p = pos_of(&v[n - 1], expiry, true);
        out->next_cursor = cursor_encode(b->id, &p);
    }
    out->rank_count = rank_count(b, expiry);
    kz_board_release(b);
    return KZ_DB_OK;
}

int kz_lb_cursor_from_rank(const char *board_id, int64_t rank, int64_t expiry, int64_t now_ms,
                           char **out)
{
    *out = NULL;
    kz_board_t *b;
    int rc = board_get(board_id, false, false, &b);
    if (rc != KZ_DB_OK) return rc;
    bool empty;
    listing_period(b, now_ms / 1000, &expiry, &empty);
    if (rank > 1) {
        kz_rank_entry_t e;
        if (!b->enable_ranks ||
            kz_rank_cache_range(kz_boards_ranks(), b->id, expiry, rank - 1, 1, &e) != 1) {
            rc = KZ_LB_NO_RANK;
        } else {
            pos_t p = {.next = true,
                       .expiry = expiry,
                       .score = e.score,
                       .subscore = e.subscore,
                       .rank = rank - 1};
            static const char hex[] = "0123456789abcdef";
            int k = 0;
            for (int i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10) p.owner[k++] = '-';
                p.owner[k++] = hex[e.owner[i] >> 4];
                p.owner[k++] = hex[e.owner[i] & 15];
            }
            p.owner[k] = '\0';
            *out = cursor_encode(b->id, &p);
        }
    }
    kz_board_release(b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Tournaments                                                              */

int kz_lb_tournament_join(kz_db_t *db, const char *id, const char *owner_id, const char *username,
                          int64_t now_ms)
{
    kz_board_t *b;
    int rc = board_get(id, true, true, &b);
    if (rc != KZ_DB_OK) return rc;
    int64_t now = now_ms / 1000, ea, expiry;
    kz_board_period(b, now, NULL, &ea, &expiry);
    if (!b->join_required) {
        kz_board_release(b);
        return KZ_DB_OK;
    }
    if (ea <= now) {
        kz_board_release(b);
        return KZ_LB_NOT_ACTIVE;
    }
    int64_t inserted = 0;
    for (int attempt = 1;; attempt++) {
        kz_dbval_t p[] = {KZ_DBTEXT(b->id),
                          KZ_DBTEXT(owner_id),
                          KZ_DBTEXT(username && *username ? username : NULL),
                          KZ_DBINT(b->max_num_score),
                          KZ_DBINT(now_ms),
                          KZ_DBINT(expiry * 1000)};
        inserted = 0;
        rc = kz_db_begin(db);
        if (rc == KZ_DB_OK)
            rc = kz_db_exec(
                db,
                "INSERT INTO leaderboard_record (leaderboard_id, owner_id, username, score, "
                "subscore,"
                " num_score, max_num_score, metadata, create_time, update_time, expiry_time)"
                " VALUES ($1, $2, $3, 0, 0, 0, $4, '{}', $5, $5, $6)"
                " ON CONFLICT (leaderboard_id, expiry_time, owner_id) DO NOTHING",
                p, 6, &inserted);
        if (rc == KZ_DB_OK && inserted == 1) rc = take_slot(db, b, expiry);
        if (rc == KZ_DB_OK)
            rc = kz_db_commit(db);
        else
            kz_db_rollback(db);
        if (rc != KZ_DB_EBUSY || attempt >= BUSY_ATTEMPTS) break;
    }
    if (rc == KZ_DB_OK && inserted == 1) rank_sync(db, b, expiry, owner_id, NULL);
    kz_board_release(b);
    return rc;
}

int kz_lb_tournament_add_attempt(kz_db_t *db, const char *id, const char *owner_id, int64_t count,
                                 int64_t now_ms)
{
    kz_board_t *b;
    int rc = board_get(id, true, true, &b);
    if (rc != KZ_DB_OK) return rc;
    int64_t now = now_ms / 1000, ea, expiry;
    kz_board_period(b, now, NULL, &ea, &expiry);
    if (ea <= now) {
        rc = KZ_LB_NOT_ACTIVE;
    } else if (count != 0) {
        kz_dbval_t p[] = {KZ_DBTEXT(b->id), KZ_DBINT(expiry * 1000), KZ_DBTEXT(owner_id),
                          KZ_DBINT(count)};
        rc = kz_db_exec(db,
                        "UPDATE leaderboard_record SET max_num_score = max_num_score + $4"
                        " WHERE leaderboard_id = $1 AND expiry_time = $2 AND owner_id = $3",
                        p, 4, NULL);
    }
    kz_board_release(b);
    return rc;
}

void kz_lb_tournaments_free(kz_lb_tournament_t *v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++)
        kz_board_release(v[i].board);
    kz_free(v);
}

/* Fills t for board b (reference taken over) at now, reading its size. */
static int tournament_view(kz_db_t *db, kz_board_t *b, int64_t now, kz_lb_tournament_t *t)
{
    memset(t, 0, sizeof *t);
    t->board = b;
    kz_board_period(b, now, &t->start_active, &t->end_active, &t->next_reset);
    t->prev_reset = kz_board_prev_reset(b, now);
    kz_dbval_t p[] = {KZ_DBTEXT(b->id)};
    kz_dbrows_t *rows;
    int rc =
        kz_db_query(db, "SELECT size, size_expiry FROM leaderboard WHERE id = $1", p, 1, &rows);
    if (rc != KZ_DB_OK) return rc;
    if ((rc = kz_db_next(rows)) == 1 && kz_db_int(rows, 1) == t->next_reset * 1000)
        t->size = kz_db_int(rows, 0);
    kz_db_rows_free(rows);
    if (rc < 0) return rc;
    t->can_enter = t->start_active <= now && now < t->end_active && t->size < b->max_size;
    return KZ_DB_OK;
}

int kz_lb_tournaments_get(kz_db_t *db, const char *const *ids, int n, int64_t now_ms,
                          kz_lb_tournament_t **out, int *nout)
{
    *out = kz_calloc((size_t)n + 1, sizeof **out);
    *nout = 0;
    int rc = KZ_DB_OK;
    for (int i = 0; i < n && rc == KZ_DB_OK; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(ids[i], ids[j]) == 0;
        kz_board_t *b;
        if (seen || board_get(ids[i], true, true, &b) != KZ_DB_OK) continue;
        rc = tournament_view(db, b, now_ms / 1000, &(*out)[(*nout)++]);
    }
    if (rc != KZ_DB_OK) {
        kz_lb_tournaments_free(*out, *nout);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

int kz_lb_tournaments_list(kz_db_t *db, int cat_start, int cat_end, int64_t start_time,
                           int64_t end_time, int limit, const char *cursor, int64_t now_ms,
                           kz_lb_tournament_t **out, int *nout, char **next_cursor)
{
    *out = NULL;
    *nout = 0;
    *next_cursor = NULL;
    char *after = NULL;
    if (cursor && *cursor) {
        size_t len;
        after = (char *)kz_b64url_decode(cursor, strlen(cursor), &len);
        if (!after || strlen(after) != len) {
            kz_free(after);
            return KZ_LB_BAD_CURSOR;
        }
    }
    int64_t now = now_ms / 1000;
    kz_board_t **all;
    int n = kz_boards_all(&all);
    kz_lb_tournament_t *v = kz_calloc((size_t)limit + 1, sizeof *v);
    int k = 0, rc = KZ_DB_OK;
    for (int i = 0; i < n && rc == KZ_DB_OK; i++) {
        kz_board_t *b = all[i];
        if (!b->tournament || (after && strcmp(b->id, after) <= 0)) continue;
        if (b->category < cat_start || b->category > cat_end) continue;
        if (start_time >= 0 && b->start_time < start_time) continue;
        if (end_time == 0 && b->end_time != 0) continue;
        if (end_time > 0 && (b->end_time == 0 || b->end_time > end_time)) continue;
        if (start_time < 0 && end_time < 0 && b->end_time > 0 && b->end_time <= now)
            continue; /* ended */
        if (k == limit) {
            *next_cursor = kz_b64url_encode(v[k - 1].board->id, strlen(v[k - 1].board->id));
            break;
        }
        kz_board_retain(b);
        rc = tournament_view(db, b, now, &v[k++]);
    }
    kz_boards_free(all, n);
    kz_free(after);
    if (rc != KZ_DB_OK) {
        kz_lb_tournaments_free(v, k);
        kz_free(*next_cursor);
        *next_cursor = NULL;
        return rc;
    }
    *out = v;
    *nout = k;
    return KZ_DB_OK;
}

int kz_lb_leaderboards_list(int limit, const char *cursor, kz_board_t ***out, int *nout,
                            char **next_cursor)
{
    *next_cursor = NULL;
    char *after = NULL;
    if (cursor && *cursor) {
        size_t len;
        after = (char *)kz_b64url_decode(cursor, strlen(cursor), &len);
        if (!after || strlen(after) != len) {
            kz_free(after);
            return KZ_LB_BAD_CURSOR;
        }
    }
    kz_board_t **all;
    int n = kz_boards_all(&all);
    kz_board_t **v = kz_calloc((size_t)limit + 1, sizeof *v);
    int k = 0;
    for (int i = 0; i < n; i++) {
        kz_board_t *b = all[i];
        if (b->tournament || (after && strcmp(b->id, after) <= 0)) continue;
        if (k == limit) {
            *next_cursor = kz_b64url_encode(v[k - 1]->id, strlen(v[k - 1]->id));
            break;
        }
        kz_board_retain(b);
        v[k++] = b;
    }
    kz_boards_free(all, n);
    kz_free(after);
    *out = v;
    *nout = k;
    return KZ_DB_OK;
}
