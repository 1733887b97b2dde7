/* The leaderboard registry, the rank cache and the reset scheduler: see
 * rank/board.h.
 *
 * The registry is a sorted array of board pointers under a read-write
 * lock; lookups binary-search it under the read lock and take a reference
 * before letting go. Boards are created a handful of times per process
 * (modules run in every worker's state at start-up, but only the first
 * creation of an id inserts), so the array is rebuilt in place on insert.
 *
 * The scheduler is one thread. Each pass looks at every board, fires the
 * events whose instants fell in (previous pass, now] -- several missed
 * instants of one board coalesce into one event, as after a clock jump --
 * drops the rank periods that expired, and sleeps until the earliest next
 * instant, at most a second (the test clock can move under it; a wake from
 * kz_boards_scheduler_wake ends the sleep early). */
#include "rank/board.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "store/leaderboard.h"

/* ------------------------------------------------------------------------ */
/* Boards                                                                   */

kz_board_t *kz_board_new(void)
{
    kz_board_t *b = kz_calloc(1, sizeof *b);
    atomic_init(&b->refs, 1);
    return b;
}

void kz_board_retain(kz_board_t *b)
{
    atomic_fetch_add(&b->refs, 1);
}

void kz_board_release(kz_board_t *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
    kz_free(b->id);
    kz_free(b->reset_schedule);
    kz_cron_free(b->cron);
    kz_free(b->metadata);
    kz_free(b->title);
    kz_free(b->description);
    kz_free(b);
}

/* ------------------------------------------------------------------------ */
/* Registry                                                                 */

static struct {
    pthread_rwlock_t lock;
    kz_board_t **v; /* sorted by id */
    int n, cap;
} reg = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static pthread_mutex_t ranks_lock = PTHREAD_MUTEX_INITIALIZER;
static kz_rank_cache_t *ranks;

/* Index of id in reg.v, or -(insertion point) - 1. Caller holds the lock. */
static int find(const char *id)
{
    int lo = 0, hi = reg.n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(reg.v[mid]->id, id);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

kz_board_t *kz_boards_get(const char *id)
{
    if (!id) return NULL;
    pthread_rwlock_rdlock(&reg.lock);
    int i = find(id);
    kz_board_t *b = i >= 0 ? reg.v[i] : NULL;
    if (b) kz_board_retain(b);
    pthread_rwlock_unlock(&reg.lock);
    return b;
}

kz_board_t *kz_boards_add(kz_board_t *b)
{
    pthread_rwlock_wrlock(&reg.lock);
    int i = find(b->id);
    kz_board_t *have;
    if (i >= 0) {
        have = reg.v[i];
        kz_board_retain(have);
        pthread_rwlock_unlock(&reg.lock);
        kz_board_release(b);
        return have;
    }
    i = -i - 1;
    if (reg.n == reg.cap) {
        reg.cap = reg.cap ? reg.cap * 2 : 16;
        reg.v = kz_realloc(reg.v, sizeof *reg.v * (size_t)reg.cap);
    }
    memmove(&reg.v[i + 1], &reg.v[i], sizeof *reg.v * (size_t)(reg.n - i));
    reg.v[i] = b; /* the caller's reference becomes the registry's */
    reg.n++;
    kz_board_retain(b);
    pthread_rwlock_unlock(&reg.lock);
    kz_boards_scheduler_wake();
    return b;
}

bool kz_boards_ranks_disable(const char *id, bool tournament)
{
    kz_board_t *b = kz_boards_get(id);
    if (!b || b->tournament != tournament) {
        kz_board_release(b);
        return false;
    }
    /* A write that read the flag just before may still rank itself into a
     * period after the drop; readers check the flag first, and the period
     * goes with the board. */
    atomic_store(&b->enable_ranks, false);
    kz_rank_cache_drop_board(kz_boards_ranks(), id);
    kz_board_release(b);
    return true;
}

bool kz_boards_remove(const char *id)
{
    pthread_rwlock_wrlock(&reg.lock);
    int i = find(id);
    kz_board_t *b = NULL;
    if (i >= 0) {
        b = reg.v[i];
        memmove(&reg.v[i], &reg.v[i + 1], sizeof *reg.v * (size_t)(reg.n - i - 1));
        reg.n--;
    }
    pthread_rwlock_unlock(&reg.lock);
    if (!b) return false;
    kz_rank_cache_drop_board(kz_boards_ranks(), id);
    kz_board_release(b);
    return true;
}

int kz_boards_all(kz_board_t ***out)
{
    pthread_rwlock_rdlock(&reg.lock);
    int n = reg.n;
    kz_board_t **v = kz_calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; i < n; i++) {
        v[i] = reg.v[i];
        kz_board_retain(v[i]);
    }
    pthread_rwlock_unlock(&reg.lock);
    *out = v;
    return n;
}

void kz_boards_free(kz_board_t **v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++)
        kz_board_release(v[i]);
    kz_free(v);
}

kz_rank_cache_t *kz_boards_ranks(void)
{
    pthread_mutex_lock(&ranks_lock);
    if (!ranks) ranks = kz_rank_cache_new();
    kz_rank_cache_t *c = ranks;
    pthread_mutex_unlock(&ranks_lock);
    return c;
}

/* ------------------------------------------------------------------------ */
/* Periods                                                                  */

/* First cron instant >= t, -1 when none. */
static int64_t cron_at_or_after(const kz_cron_t *c, int64_t t)
{
    return kz_cron_next(c, t - 1);
}

/* Last cron instant <= t, -1 when none. */
static int64_t cron_at_or_before(const kz_cron_t *c, int64_t t)
{
    return kz_cron_prev(c, t + 1);
}

void kz_board_period(const kz_board_t *b, int64_t now, int64_t *start_active, int64_t *end_active,
                     int64_t *expiry)
{
    int64_t sa = 0, ea = 0, exp = 0;
    if (!b->tournament) {
        if (b->cron) {
            exp = kz_cron_next(b->cron, now);
            if (exp < 0) exp = 0;
        }
    } else if (!b->cron) {
        sa = b->start_time;
        ea = b->start_time + b->duration;
        exp = b->end_time;
        if (b->end_time > 0 && ea > b->end_time) ea = b->end_time;
    } else {
        /* The window opens at the latest instant (the first one after
         * start_time when the tournament has not started yet). */
        if (now < b->start_time)
            sa = cron_at_or_after(b->cron, b->start_time);
        else
            sa = cron_at_or_before(b->cron, now);
        if (sa < 0) sa = cron_at_or_after(b->cron, b->start_time);
        if (sa < 0) sa = b->start_time; /* a schedule with no instant left */
        exp = kz_cron_next(b->cron, sa);
        ea = sa + b->duration;
        if (exp > 0 && ea > exp) ea = exp;
        if (b->start_time > ea) {
            /* The window around now closed before the tournament started:
             * the first window is the one after start_time. */
            sa = cron_at_or_after(b->cron, b->start_time);
            if (sa < 0) sa = b->start_time;
            exp = kz_cron_next(b->cron, sa);
            ea = sa + b->duration;
            if (exp > 0 && ea > exp) ea = exp;
        } else if (b->start_time > sa) {
            sa = b->start_time;
        }
        if (exp < 0) exp = b->end_time;
        if (b->end_time > 0 && (exp == 0 || exp > b->end_time)) exp = b->end_time;
        if (exp > 0 && ea > exp) ea = exp;
    }
    if (start_active) *start_active = sa;
    if (end_active) *end_active = ea;
    if (expiry) *expiry = exp;
}

int64_t kz_board_prev_reset(const kz_board_t *b, int64_t now)
{
    if (!b->cron) return 0;
    int64_t since = b->tournament ? b->start_time : b->create_time;
    if (since > now) return 0;
    int64_t t = cron_at_or_before(b->cron, now);
    return t < 0 ? 0 : t;
}

/* ------------------------------------------------------------------------ */
/* Start-up load                                                            */

bool kz_board_owner_key(const char *s, uint8_t out[16])
{
    int k = 0;
    for (int i = 0; s[i] && k < 32; i++) {
        char c = s[i];
        if (c == '-') continue;
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v < 0) return false;
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
    }
    return k == 32;
}

/* Loads the records of b's period expiry into the rank cache. */
static int load_ranks(kz_db_t *db, const kz_board_t *b, int64_t expiry, int64_t *count)
{
    kz_dbval_t p[] = {KZ_DBTEXT(b->id), KZ_DBINT(expiry * 1000)};
    kz_dbrows_t *rows;
    int rc = kz_db_query(db,
                         "SELECT owner_id, score, subscore FROM leaderboard_record"
                         " WHERE leaderboard_id = $1 AND expiry_time = $2",
                         p, 2, &rows);
    if (rc != KZ_DB_OK) return rc;
    kz_rank_cache_t *c = kz_boards_ranks();
    while ((rc = kz_db_next(rows)) == 1) {
        uint8_t owner[16];
        const char *o = kz_db_text(rows, 0, NULL);
        if (!o || !kz_board_owner_key(o, owner)) continue;
        kz_rank_cache_upsert(c, b->id, expiry, b->descending, owner, kz_db_int(rows, 1),
                             kz_db_int(rows, 2));
        (*count)++;
    }
    kz_db_rows_free(rows);
    return rc < 0 ? rc : KZ_DB_OK;
}

int kz_boards_load(kz_db_t *db, int64_t now)
{
    kz_board_t **v = NULL;
    int n = 0;
    int rc = kz_lb_load_all(db, &v, &n);
    if (rc != KZ_DB_OK) return rc;
    int64_t records = 0;
    int ranked = 0;
    for (int i = 0; i < n && rc == KZ_DB_OK; i++) {
        kz_board_t *b = kz_boards_add(v[i]); /* takes v[i]'s reference */
        v[i] = NULL;
        if (b->enable_ranks) {
            int64_t expiry;
            kz_board_period(b, now, NULL, NULL, &expiry);
            if (expiry == 0 || expiry > now) {
                rc = load_ranks(db, b, expiry, &records);
                ranked++;
            }
        }
        kz_board_release(b);
    }
    kz_boards_free(v, n);
    if (rc == KZ_DB_OK && n)
        kz_log_info("leaderboards: %d board(s), %d ranked, %lld record(s) in the rank cache", n,
                    ranked, (long long)records);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Scheduler                                                                */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running;  /* the thread exists */
    bool stopping; /* asked to stop */
    bool poke;     /* woken: look again at once */
    int64_t last;  /* the previous pass (seconds); 0 = none yet */
    kz_board_event_fn fn;
    void *arg;
} sched = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Hands one event to fn (if any). */
static void fire(kz_board_event_fn fn, void *arg, kz_board_event_kind_t kind, kz_board_t *b,
                 int64_t at, int64_t end_active, int64_t reset)
{
    if (!fn) return;
    kz_board_event_t ev = {
        .kind = kind, .board = b, .at = at, .end_active = end_active, .reset = reset};
    fn(&ev, arg);
}

/* Keeps the earliest future instant in *next. */
static void consider(int64_t *next, int64_t t, int64_t now)
{
    if (t > now && (*next < 0 || t < *next)) *next = t;
}

int64_t kz_boards_scheduler_step(int64_t now, kz_board_event_fn fn, void *arg)
{
    int64_t last = sched.last ? sched.last : now;
    int64_t next = -1;
    kz_board_t **v;
    int n = kz_boards_all(&v);
    kz_rank_cache_t *c = kz_boards_ranks();
    for (int i = 0; i < n; i++) {
        kz_board_t *b = v[i];
        if (!b->tournament) {
            if (!b->cron) continue;
            int64_t passed = cron_at_or_before(b->cron, now);
            if (passed > last) {
                kz_rank_cache_drop_expired(c, b->id, now);
                int64_t following = kz_cron_next(b->cron, passed);
                fire(fn, arg, KZ_BOARD_LEADERBOARD_RESET, b, passed, 0,
                     following < 0 ? 0 : following);
            }
            consider(&next, kz_cron_next(b->cron, now), now);
            continue;
        }
        /* Tournaments: what the period looked like at the previous pass
         * tells which of its instants passed since. */
        int64_t sa, ea, exp;
        kz_board_period(b, last, &sa, &ea, &exp);
        if (ea > last && ea <= now && ea > sa)
            fire(fn, arg, KZ_BOARD_TOURNAMENT_END, b, ea, ea, exp);
        if (exp > last && exp <= now) {
            kz_rank_cache_drop_expired(c, b->id, now);
            fire(fn, arg, KZ_BOARD_TOURNAMENT_RESET, b, exp, ea, exp);
        }
        kz_board_period(b, now, &sa, &ea, &exp);
        if (b->end_time > 0 && b->end_time <= now && exp <= now) continue; /* over for good */
        consider(&next, sa, now);
        consider(&next, ea, now);
        consider(&next, exp, now);
    }
    kz_boards_free(v, n);
    sched.last = now;
    return next;
}

static void *sched_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sched.lock);
    while (!sched.stopping) {
        sched.poke = false;
        pthread_mutex_unlock(&sched.lock);
        int64_t now = kz_now_sec();
        int64_t next = kz_boards_scheduler_step(now, sched.fn, sched.arg);
        pthread_mutex_lock(&sched.lock);
        if (sched.stopping || sched.poke) continue;
        /* Sleep until the next instant (a little past it, so the clock
         * reads the instant on waking), at most a second. */
        int64_t wait_ms = 1000;
        if (next > 0) {
            int64_t until = next * 1000 - kz_now_ms() + 5;
            if (until < wait_ms) wait_ms = until < 1 ? 1 : until;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!sched.stopping && !sched.poke) {
            if (pthread_cond_timedwait(&sched.cond, &sched.lock, &ts) == ETIMEDOUT) break;
        }
    }
    pthread_mutex_unlock(&sched.lock);
    return NULL;
}

int kz_boards_scheduler_start(kz_board_event_fn fn, void *arg)
{
    pthread_mutex_lock(&sched.lock);
    if (sched.running) {
        pthread_mutex_unlock(&sched.lock);
        return 0;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sched.cond, &ca);
    pthread_condattr_destroy(&ca);
    sched.fn = fn;
    sched.arg = arg;
    sched.stopping = false;
    sched.last = kz_now_sec();
    int rc = pthread_create(&sched.thread, NULL, sched_main, NULL);
    sched.running = rc == 0;
    if (rc != 0) pthread_cond_destroy(&sched.cond);
    pthread_mutex_unlock(&sched.lock);
    return rc == 0 ? 0 : -1;
}

void kz_boards_scheduler_stop(void)
{
    pthread_mutex_lock(&sched.lock);
    if (!sched.running) {
        pthread_mutex_unlock(&sched.lock);
        return;
    }
    sched.stopping = true;
    pthread_cond_signal(&sched.cond);
    pthread_mutex_unlock(&sched.lock);
    pthread_join(sched.thread, NULL);
    pthread_mutex_lock(&sched.lock);
    sched.running = false;
    sched.fn = NULL;
    sched.arg = NULL;
    pthread_cond_destroy(&sched.cond);
    pthread_mutex_unlock(&sched.lock);
}

void kz_boards_scheduler_wake(void)
{
    pthread_mutex_lock(&sched.lock);
    if (sched.running) {
        sched.poke = true;
        pthread_cond_signal(&sched.cond);
    }
    pthread_mutex_unlock(&sched.lock);
}

void kz_boards_shutdown(void)
{
    kz_boards_scheduler_stop();
    pthread_rwlock_wrlock(&reg.lock);
    kz_board_t **v = reg.v;
    int n = reg.n;
    reg.v = NULL;
    reg.n = reg.cap = 0;
    pthread_rwlock_unlock(&reg.lock);
    kz_boards_free(v, n);
    pthread_mutex_lock(&ranks_lock);
    kz_rank_cache_free(ranks);
    ranks = NULL;
    pthread_mutex_unlock(&ranks_lock);
    sched.last = 0;
}
