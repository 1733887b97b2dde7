/* Leaderboards and tournaments in the store: definitions, records, pages
 * with keyset cursors, around-owner windows, tournament joins and limits.
 *
 * These are the whole operations the REST API and the nk module run: each
 * looks the board up in the registry (rank/board.h), applies Nakama's rules,
 * runs its statements (a write in one transaction) and keeps the rank cache
 * in step after the commit. A "client" call is one a user makes over the
 * API: it may not write to or delete from an authoritative board; the
 * server (nk functions) may.
 *
 * Records are keyed by (board, expiry, owner): expiry is the end of the
 * board's period the record belongs to (unix seconds, 0 = no reset), so
 * each period keeps its own records and a reset needs no deletes.
 *
 * Every function runs on a worker thread with that worker's connection and
 * returns KZ_DB_OK, one of the KZ_LB_* outcomes it documents, or a negative
 * kz_db code. Times: now_ms is unix milliseconds; record create/update times
 * are milliseconds; expiries and tournament times are seconds. */
#ifndef KZ_STORE_LEADERBOARD_H
#define KZ_STORE_LEADERBOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "rank/board.h"
#include "store/db.h"

/* Outcomes (positive, so they never collide with kz_db codes). */
#define KZ_LB_NOT_FOUND 30     /* no such board (of the kind asked for) */
#define KZ_LB_AUTHORITATIVE 31 /* a client call on an authoritative board */
#define KZ_LB_BAD_CURSOR 32    /* malformed, or from another board or period */
#define KZ_LB_NOT_ACTIVE 33    /* tournament outside its active window */
#define KZ_LB_FULL 34          /* tournament reached max_size */
#define KZ_LB_MAX_SCORES 35    /* owner reached max_num_score this period */
#define KZ_LB_JOIN_REQUIRED 36 /* tournament needs a join first */
#define KZ_LB_ENDED 37         /* tournament's end_time has passed */
#define KZ_LB_IN_USE 38        /* create: the id names a board of the other kind */
#define KZ_LB_INVALID 39       /* create: bad definition (message in err) */
#define KZ_LB_NO_RANK 40       /* cursor_from_rank: no ranked record there */

/* Longest owner list one listing takes. */
#define KZ_LB_MAX_OWNERS 1000

/* ---- Definitions --------------------------------------------------------- */

/* What nk.leaderboard_create / nk.tournament_create ask for. Strings are
 * borrowed. */
typedef struct kz_lb_def {
    const char *id;
    bool authoritative;
    bool descending;
    int op;                     /* KZ_LB_OP_* */
    const char *reset_schedule; /* NULL or "" = none */
    const char *metadata;       /* JSON object text; NULL = "{}" */
    bool enable_ranks;
    bool tournament;
    int category;
    const char *title, *description;
    int64_t duration, start_time, end_time, max_size, max_num_score;
    bool join_required;
} kz_lb_def_t;

/* Creates the board unless it exists (idempotent by id: an existing board
 * of the same kind is left as it is). Checks the definition first
 * (KZ_LB_INVALID with Nakama's message in err: bad cron, tournament
 * duration <= 0, times, sizes, category); KZ_LB_IN_USE when the id is a
 * board of the other kind. *created (may be NULL) tells whether this call
 * made it. Cheap when the board is already registered (no statement). */
int kz_lb_create(kz_db_t *db, const kz_lb_def_t *def, int64_t now_ms, bool *created, char *err,
                 size_t errlen);
/* Deletes a board of the given kind and all its records (idempotent:
 * KZ_DB_OK when there is none). */
int kz_lb_delete(kz_db_t *db, const char *id, bool tournament);
/* Turns ranks off for a board of the given kind, stored and at once
 * (KZ_LB_NOT_FOUND when there is none). */
int kz_lb_ranks_disable(kz_db_t *db, const char *id, bool tournament);
/* Reads every stored definition (start-up); *out is an owned array of
 * boards with one reference each (kz_boards_free). */
int kz_lb_load_all(kz_db_t *db, kz_board_t ***out, int *n);

/* ---- Records --------------------------------------------------------------- */

typedef struct kz_lb_record {
    char owner_id[37];
    char *username; /* NULL when none */
    int64_t score, subscore;
    int64_t num_score, max_num_score;
    char *metadata;                   /* JSON object text */
    int64_t create_time, update_time; /* unix ms */
    int64_t expiry;                   /* unix seconds, 0 = none */
    int64_t rank;                     /* 0 = unknown (ranks off) */
} kz_lb_record_t;

void kz_lb_record_clear(kz_lb_record_t *r);
void kz_lb_records_free(kz_lb_record_t *v, int n);

/* One score submission. Strings borrowed. */
typedef struct kz_lb_write {
    const char *owner_id; /* canonical lower-case UUID */
    const char *username; /* NULL or "" = keep the stored one */
    int64_t score, subscore;
    const char *metadata; /* JSON object text, NULL or "" = keep */
    int op;               /* KZ_LB_OP_*, or -1 = the board's operator */
} kz_lb_write_t;

/* Writes a record to the current period of a leaderboard (tournament
 * false) or a tournament (true) and fills *out with the row as stored,
 * ranked. Leaderboards: best keeps the better of each field, set replaces,
 * incr adds, decr subtracts floored at 0 (a first decr writes 0/0); a
 * write that changes nothing leaves the row (num_score, metadata, username)
 * untouched. Tournaments: the same operators, but every accepted attempt
 * counts (num_score + 1), limited by the row's max_num_score
 * (KZ_LB_MAX_SCORES); writes only inside the active window
 * (KZ_LB_NOT_ACTIVE; KZ_LB_ENDED past end_time); with join_required only
 * joined owners write (KZ_LB_JOIN_REQUIRED); a new participant takes a
 * size slot (KZ_LB_FULL). KZ_LB_NOT_FOUND, KZ_LB_AUTHORITATIVE (client). */
int kz_lb_record_write(kz_db_t *db, const char *board_id, bool tournament, bool client,
                       const kz_lb_write_t *w, int64_t now_ms, kz_lb_record_t *out);
/* Deletes owner's record in the current period (no record: KZ_DB_OK).
 * KZ_LB_NOT_FOUND, KZ_LB_AUTHORITATIVE (client). */
int kz_lb_record_delete(kz_db_t *db, const char *board_id, bool tournament, bool client,
                        const char *owner_id, int64_t now_ms);

/* A listing: one page and/or the requested owners' records. */
typedef struct kz_lb_list {
    kz_lb_record_t *records; /* the page, ranks numbered from the cursor */
    int nrecords;
    kz_lb_record_t *owner_records; /* sorted in board order, ranks from the rank cache */
    int nowner_records;
    char *next_cursor, *prev_cursor; /* owned, NULL when none */
    int64_t rank_count;              /* records in the period's rank cache (0: ranks off) */
} kz_lb_list_t;

void kz_lb_list_free(kz_lb_list_t *l);

/* Lists a board's period: expiry 0 = the current one (for a tournament
 * whose current period has already expired: an empty list). limit 0 =
 * no page (owner records only). cursor NULL/"" = first page; a cursor
 * pages forward or back from where it was made, and one from another board
 * or period is KZ_LB_BAD_CURSOR. owners (canonical UUIDs) select
 * owner_records. Pages come from SQL in the board's order (score, subscore,
 * owner id) and resume strictly after (or before) the cursor's position,
 * so concurrent writes never make a page repeat or skip a record that did
 * not move. tournament: the board must be a tournament (KZ_LB_NOT_FOUND),
 * and without expiry an ended one is KZ_LB_ENDED. */
int kz_lb_records_list(kz_db_t *db, const char *board_id, bool tournament,
                       const char *const *owners, int nowners, int limit, const char *cursor,
                       int64_t expiry, int64_t now_ms, kz_lb_list_t *out);
/* Around owner: without cursor, a window of up to limit records holding
 * owner's (about half better, the rest worse, shifted at the table's
 * edges; empty when owner has no record), ranks from the rank cache; with
 * a cursor, a normal page. tournament as above (no KZ_LB_ENDED). */
int kz_lb_records_haystack(kz_db_t *db, const char *board_id, bool tournament, const char *owner_id,
                           int limit, const char *cursor, int64_t expiry, int64_t now_ms,
                           kz_lb_list_t *out);
/* A cursor whose next page starts at rank (from the rank cache; ranks
 * must be on). *out owned, NULL for rank 1 (the first page).
 * KZ_LB_NOT_FOUND (board), KZ_LB_NO_RANK (ranks off, or no record at
 * rank - 1). */
int kz_lb_cursor_from_rank(const char *board_id, int64_t rank, int64_t expiry, int64_t now_ms,
                           char **out);

/* Removes every record user_id owns (account deletion; runs inside the
 * caller's transaction, opens none) and takes the user out of the rank
 * cache's current periods at once (a rolled-back deletion leaves the rows
 * unranked until their next write). */
int kz_lb_delete_user(kz_db_t *db, const char *user_id, int64_t now_ms);

/* ---- Tournaments ------------------------------------------------------- */

/* Joins owner to the current period (a record with score 0 and no
 * attempts; a no-op when join is not required or already joined).
 * KZ_LB_NOT_FOUND, KZ_LB_NOT_ACTIVE (window over), KZ_LB_FULL. */
int kz_lb_tournament_join(kz_db_t *db, const char *id, const char *owner_id, const char *username,
                          int64_t now_ms);
/* Adds count (may be negative) to owner's max_num_score this period.
 * KZ_LB_NOT_FOUND, KZ_LB_NOT_ACTIVE. */
int kz_lb_tournament_add_attempt(kz_db_t *db, const char *id, const char *owner_id, int64_t count,
                                 int64_t now_ms);

/* A tournament as the API shows it at a moment. */
typedef struct kz_lb_tournament {
    kz_board_t *board; /* one reference */
    int64_t size;      /* participants this period */
    bool can_enter;
    int64_t start_active, end_active, next_reset, prev_reset;
} kz_lb_tournament_t;

void kz_lb_tournaments_free(kz_lb_tournament_t *v, int n);

/* The tournament views of ids (unknown ids and leaderboards skipped, each
 * id once, in request order). */
int kz_lb_tournaments_get(kz_db_t *db, const char *const *ids, int n, int64_t now_ms,
                          kz_lb_tournament_t **out, int *nout);
/* Tournaments in id order with category in [cat_start, cat_end]; start_time
 * >= 0 keeps those starting at or after it; end_time > 0 keeps those
 * ending at or before it, 0 those that never end; with neither (both -1)
 * ended tournaments are left out. limit 1..100, cursor the last id of the
 * previous page (NULL = start); *next_cursor owned, NULL at the end. */
int kz_lb_tournaments_list(kz_db_t *db, int cat_start, int cat_end, int64_t start_time,
                           int64_t end_time, int limit, const char *cursor, int64_t now_ms,
                           kz_lb_tournament_t **out, int *nout, char **next_cursor);

/* Non-tournament boards in id order after cursor (a board id; NULL =
 * start), up to limit; *next_cursor owned or NULL. References in *out. */
int kz_lb_leaderboards_list(int limit, const char *cursor, kz_board_t ***out, int *nout,
                            char **next_cursor);

#endif
