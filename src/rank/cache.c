/* Every leaderboard period's rank index: see rank/cache.h.
 *
 * The map is a chained hash table of periods keyed by (board, expiry) under
 * a read-write lock: lookups share it, adding and unlinking take it alone.
 * A lookup takes a reference on the period before letting the map lock go;
 * the map holds one reference of its own, dropped when the period is
 * unlinked, and whoever lets go of the last reference frees the period. So
 * a drop never waits for the calls using the period, and never frees it
 * under them. */
#include "rank/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"

typedef struct period {
    struct period *next; /* bucket chain */
    char *board;
    int64_t expiry;
    uint64_t hash;
    atomic_int refs;
    pthread_rwlock_t lock;
    kz_rank_index_t *ix;
} period_t;

struct kz_rank_cache {
    pthread_rwlock_t lock; /* the map only */
    period_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

enum { BUCKETS_MIN = 64 };

static void rwlock_init_writers_first(pthread_rwlock_t *l)
{
    /* Reads are the common call; a write must not wait behind an endless
     * stream of them. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(l, &attr);
    pthread_rwlockattr_destroy(&attr);
}

static uint64_t period_hash(const char *board, int64_t expiry)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then the expiry mixed in */
    for (const char *s = board; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= (uint64_t)expiry * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static void period_free(period_t *p)
{
    kz_rank_index_free(p->ix);
    pthread_rwlock_destroy(&p->lock);
    kz_free(p->board);
    kz_free(p);
}

static void period_put(period_t *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) period_free(p);
}

/* Under the map lock. */
static period_t *map_find(const kz_rank_cache_t *c, const char *board, int64_t expiry, uint64_t h)
{
    for (period_t *p = c->buckets[h & (c->nbuckets - 1)]; p; p = p->next)
        if (p->hash == h && p->expiry == expiry && strcmp(p->board, board) == 0) return p;
    return NULL;
}

/* Under the map lock, held alone. */
static void map_grow(kz_rank_cache_t *c)
{
    size_t n = c->nbuckets * 2;
    period_t **b = kz_calloc(n, sizeof *b);
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (period_t *p = c->buckets[i], *next; p; p = next) {
            next = p->next;
            p->next = b[p->hash & (n - 1)];
            b[p->hash & (n - 1)] = p;
        }
    }
    kz_free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

/* The period (board, expiry) with a reference taken, or NULL when it does
 * not exist and create is false. */
static period_t *period_get(kz_rank_cache_t *c, const char *board, int64_t expiry, bool create,
                            bool descending)
{
    uint64_t h = period_hash(board, expiry);
    pthread_rwlock_rdlock(&c->lock);
    period_t *p = map_find(c, board, expiry, h);
    if (p) atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    pthread_rwlock_unlock(&c->lock);
    if (p || !create) return p;

    pthread_rwlock_wrlock(&c->lock);
    p = map_find(c, board, expiry, h); /* another thread may have made it meanwhile */
    if (!p) {
        p = kz_calloc(1, sizeof *p);
        p->board = kz_strdup(board);
        p->expiry = expiry;
        p->hash = h;
        atomic_init(&p->refs, 1); /* the map's */
        rwlock_init_writers_first(&p->lock);
        p->ix = kz_rank_index_new(descending);
        if (c->count >= c->nbuckets) map_grow(c);
        period_t **b = &c->buckets[h & (c->nbuckets - 1)];
        p->next = *b;
        *b = p;
        c->count++;
    }
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    pthread_rwlock_unlock(&c->lock);
    return p;
}

kz_rank_cache_t *kz_rank_cache_new(void)
{
    kz_rank_cache_t *c = kz_calloc(1, sizeof *c);
    rwlock_init_writers_first(&c->lock);
    c->nbuckets = BUCKETS_MIN;
    c->buckets = kz_calloc(c->nbuckets, sizeof *c->buckets);
    return c;
}

void kz_rank_cache_free(kz_rank_cache_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (period_t *p = c->buckets[i], *next; p; p = next) {
            next = p->next;
            period_put(p);
        }
    }
    kz_free(c->buckets);
    pthread_rwlock_destroy(&c->lock);
    kz_free(c);
}

int64_t kz_rank_cache_upsert(kz_rank_cache_t *c, const char *board, int64_t expiry, bool descending,
                             const uint8_t owner[16], int64_t score, int64_t subscore)
{
    period_t *p = period_get(c, board, expiry, true, descending);
    pthread_rwlock_wrlock(&p->lock);
    int64_t rank = kz_rank_index_upsert(p->ix, owner, score, subscore);
    pthread_rwlock_unlock(&p->lock);
    period_put(p);
    return rank;
}

bool kz_rank_cache_remove(kz_rank_cache_t *c, const char *board, int64_t expiry,
                          const uint8_t owner[16])
{
    period_t *p = period_get(c, board, expiry, false, false);
    if (!p) return false;
    pthread_rwlock_wrlock(&p->lock);
    bool removed = kz_rank_index_remove(p->ix, owner);
    pthread_rwlock_unlock(&p->lock);
    period_put(p);
    return removed;
}

int64_t kz_rank_cache_rank(kz_rank_cache_t *c, const char *board, int64_t expiry,
                           const uint8_t owner[16])
{
    period_t *p = period_get(c, board, expiry, false, false);
    if (!p) return 0;
    pthread_rwlock_rdlock(&p->lock);
    int64_t rank = kz_rank_index_rank(p->ix, owner);
    pthread_rwlock_unlock(&p->lock);
    period_put(p);
    return rank;
}

int64_t kz_rank_cache_count(kz_rank_cache_t *c, const char *board, int64_t expiry)
{
    period_t *p = period_get(c, board, expiry, false, false);
    if (!p) return 0;
    pthread_rwlock_rdlock(&p->lock);
    int64_t n = kz_rank_index_count(p->ix);
    pthread_rwlock_unlock(&p->lock);
    period_put(p);
    return n;
}

int kz_rank_cache_range(kz_rank_cache_t *c, const char *board, int64_t expiry, int64_t from, int n,
                        kz_rank_entry_t *out)
{
    if (n <= 0 || from < 1) return 0;
    period_t *p = period_get(c, board, expiry, false, false);
    if (!p) return 0;
    pthread_rwlock_rdlock(&p->lock);
    int got = kz_rank_index_range(p->ix, from, n, out);
    pthread_rwlock_unlock(&p->lock);
    period_put(p);
    return got;
}

/* Unlinks the periods of board that match (all, or expired by `before`),
 * then lets go of the map's references outside the map lock: freeing a
 * large index takes a while. */
static void drop(kz_rank_cache_t *c, const char *board, bool expired_only, int64_t before)
{
    period_t *dropped = NULL;
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < c->nbuckets; i++) {
        period_t **pp = &c->buckets[i];
        while (*pp) {
            period_t *p = *pp;
            bool match = strcmp(p->board, board) == 0 &&
                         (!expired_only || (p->expiry != 0 && p->expiry <= before));
            if (match) {
                *pp = p->next;
                p->next = dropped;
                dropped = p;
                c->count--;
            } else {
                pp = &p->next;
            }
        }
    }
    pthread_rwlock_unlock(&c->lock);
    for (period_t *p = dropped, *next; p; p = next) {
        next = p->next;
        period_put(p);
    }
}

void kz_rank_cache_drop_board(kz_rank_cache_t *c, const char *board)
{
    drop(c, board, false, 0);
}

void kz_rank_cache_drop_expired(kz_rank_cache_t *c, const char *board, int64_t before)
{
    drop(c, board, true, before);
}

int64_t kz_rank_cache_periods(kz_rank_cache_t *c)
{
    pthread_rwlock_rdlock(&c->lock);
    int64_t n = (int64_t)c->count;
    pthread_rwlock_unlock(&c->lock);
    return n;
}
