/* The process-wide leaderboard registry: every leaderboard and tournament
 * definition in memory, the rank cache of their current periods, and the
 * scheduler that fires reset and end callbacks at their cron instants.
 *
 * Definitions live in the store (table leaderboard) and here. Every worker's
 * Lua state and every REST handler reads them from this one registry
 * (read-mostly, behind a read-write lock), so a board created by any
 * thread's script is visible to all at once. A definition never changes
 * after creation; a lookup hands out a reference (kz_board_release), so a
 * board deleted while a call uses it stays valid until the call lets go.
 *
 * The registry needs no set-up call for lookups and creation (modules
 * create boards while the runtime loads, before kz_boards_load runs);
 * kz_boards_load reads the stored definitions and fills the rank cache,
 * kz_boards_shutdown frees everything.
 *
 * Times are unix seconds unless a name says _ms. */
#ifndef KZ_RANK_BOARD_H
#define KZ_RANK_BOARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/cron.h"
#include "rank/cache.h"
#include "store/db.h"

/* Operators as the store keeps them (Nakama's internal numbering; the API
 * enum is this + 1, with 0 meaning "no override"). */
enum { KZ_LB_OP_BEST = 0, KZ_LB_OP_SET = 1, KZ_LB_OP_INCR = 2, KZ_LB_OP_DECR = 3 };

/* A tournament's max_size when it has no limit, as Nakama stores and
 * reports it. */
#define KZ_LB_UNLIMITED_SIZE INT32_MAX

/* One leaderboard or tournament definition. Immutable once in the
 * registry, except enable_ranks, which may only go from true to false
 * (ranks_disable); strings owned. */
typedef struct kz_board {
    atomic_int refs; /* registry + lookups */
    char *id;
    bool authoritative;   /* clients may not write or delete records */
    bool descending;      /* sort order: true = desc (higher is better) */
    int op;               /* KZ_LB_OP_* */
    char *reset_schedule; /* cron text, NULL when none */
    kz_cron_t *cron;      /* parsed reset_schedule, NULL when none */
    char *metadata;       /* JSON object text */
    int64_t create_time;
    atomic_bool enable_ranks; /* the rank cache follows this board */
    /* Tournaments (duration > 0). */
    bool tournament;
    int category; /* 0..127 */
    char *title;
    char *description;
    int64_t duration; /* seconds each active window lasts */
    int64_t start_time;
    int64_t end_time;      /* 0 = never ends */
    int64_t max_size;      /* KZ_LB_UNLIMITED_SIZE = no limit */
    int64_t max_num_score; /* 0 = no limit */
    bool join_required;
} kz_board_t;

/* A fresh, unregistered board with one reference (fields zero, strings
 * NULL). */
kz_board_t *kz_board_new(void);
void kz_board_retain(kz_board_t *b);
/* Drops a reference; the last one frees the board. NULL is a no-op. */
void kz_board_release(kz_board_t *b);

/* The board named id with a new reference, or NULL. */
kz_board_t *kz_boards_get(const char *id);
/* Adds b (takes the caller's reference) unless a board with its id is
 * there; returns the registered board with a new reference (b, or the one
 * that was there first, in which case b is released). */
kz_board_t *kz_boards_add(kz_board_t *b);
/* Stops ranking board id (of the given kind) and drops its rank periods;
 * false when there is no such board. */
bool kz_boards_ranks_disable(const char *id, bool tournament);
/* Removes id from the registry and drops its rank periods; false when it
 * was not there. */
bool kz_boards_remove(const char *id);
/* Every board, sorted by id, each with a new reference: free with
 * kz_boards_free. */
int kz_boards_all(kz_board_t ***out);
void kz_boards_free(kz_board_t **v, int n);

/* The 16 bytes of a UUID in text form (the rank cache's owner key); false
 * when s is not a UUID. */
bool kz_board_owner_key(const char *s, uint8_t out[16]);

/* The rank cache (created on first use). */
kz_rank_cache_t *kz_boards_ranks(void);

/* Reads every stored definition into the registry and loads the records
 * of each ranked board's current period (at now) into the rank cache.
 * Start-up, before the workers run. */
int kz_boards_load(kz_db_t *db, int64_t now);
/* Stops the scheduler and frees the registry and the rank cache. */
void kz_boards_shutdown(void);

/* The current period of b at now: for tournaments the active window
 * [*start_active, *end_active) and the period key *expiry (Nakama's
 * rules: with a schedule the window opens at the latest cron instant, not
 * before start_time, lasts duration but not past the next instant; expiry
 * is that next instant, capped by end_time; without one the window is
 * [start_time, start_time + duration) capped by end_time, expiry =
 * end_time). For leaderboards the window is [0, 0) and *expiry the next
 * cron instant after now (0 without a schedule). Any pointer may be NULL. */
void kz_board_period(const kz_board_t *b, int64_t now, int64_t *start_active, int64_t *end_active,
                     int64_t *expiry);
/* The last reset instant at or before now (0 when none or not started). */
int64_t kz_board_prev_reset(const kz_board_t *b, int64_t now);

/* ---- Scheduler --------------------------------------------------------- */

typedef enum {
    KZ_BOARD_LEADERBOARD_RESET, /* a leaderboard's period rolled over */
    KZ_BOARD_TOURNAMENT_RESET,  /* a tournament's period rolled over */
    KZ_BOARD_TOURNAMENT_END,    /* a tournament's active window closed */
} kz_board_event_kind_t;

/* One scheduled instant that passed. */
typedef struct kz_board_event {
    kz_board_event_kind_t kind;
    kz_board_t *board;  /* borrowed for the duration of the callback (retain to keep) */
    int64_t at;         /* the instant */
    int64_t end_active; /* tournaments: end of the window that closed */
    int64_t reset;      /* the next reset after the event (leaderboards), the
                           period's expiry (tournaments); 0 none */
} kz_board_event_t;

/* Called on the scheduler thread for each event; must not block for long
 * (hand the work to the worker pool). */
typedef void (*kz_board_event_fn)(const kz_board_event_t *ev, void *arg);

/* Starts the scheduler thread. Events are instants after the start; expired
 * rank periods are dropped as their instants pass. */
int kz_boards_scheduler_start(kz_board_event_fn fn, void *arg);
/* Stops and joins the thread (idempotent). */
void kz_boards_scheduler_stop(void);
/* Makes the scheduler look again now (a board was added, the test clock
 * moved). Any thread. */
void kz_boards_scheduler_wake(void);
/* Runs one scheduler pass at now on the calling thread: hands fn the
 * events in (previous pass, now] (none on the first pass) and returns the
 * next instant to wake at (-1 none). The thread calls it with the function
 * it was started with; tests call it directly. */
int64_t kz_boards_scheduler_step(int64_t now, kz_board_event_fn fn, void *arg);

#endif
