/* rank/index and rank/cache: leaderboard ranks.
 *
 * Hand-written cases for both orders, then random operations checked after
 * each one against a sorted array that orders owners by their canonical
 * text (strcmp), independently of the index's byte comparison; then the
 * cache under concurrent writers, and dropping periods. */
#include "rank/cache.h"
#include "rank/index.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
    return splitmix(s) % n;
}

static void random_owner(uint64_t *s, uint8_t out[16])
{
    uint64_t a = splitmix(s), b = splitmix(s);
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

/* An owner whose first byte is b and the rest zero. */
static void owner_of(uint8_t b, uint8_t out[16])
{
    memset(out, 0, 16);
    out[0] = b;
}

static void uuid_text(const uint8_t o[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
        out[k++] = hex[o[i] >> 4];
        out[k++] = hex[o[i] & 15];
    }
    out[k] = '\0';
}

static int64_t rank_ix(kz_rank_index_t *ix, uint8_t b)
{
    uint8_t o[16];
    owner_of(b, o);
    return kz_rank_index_rank(ix, o);
}

static int64_t upsert_ix(kz_rank_index_t *ix, uint8_t b, int64_t score, int64_t subscore)
{
    uint8_t o[16];
    owner_of(b, o);
    return kz_rank_index_upsert(ix, o, score, subscore);
}

/* ---- the model: a sorted array ------------------------------------------------ */

typedef struct {
    uint8_t owner[16];
    char text[37];
    int64_t score, subscore;
} rec_t;

typedef struct {
    rec_t *v;
    int n, cap;
    bool desc;
} model_t;

/* <0 when a ranks before b. */
static int model_cmp(const model_t *m, const rec_t *a, const rec_t *b)
{
    int c;
    if (a->score != b->score)
        c = a->score < b->score ? -1 : 1;
    else if (a->subscore != b->subscore)
        c = a->subscore < b->subscore ? -1 : 1;
    else
        c = strcmp(a->text, b->text);
    return m->desc ? -c : c;
}

static bool same_owner(const uint8_t a[16], const uint8_t b[16])
{
    uint64_t a0, a1, b0, b1; /* not memcmp: the sanitizer's memcmp is slow */
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    return a0 == b0 && a1 == b1;
}

static int model_find(const model_t *m, const uint8_t owner[16])
{
    for (int i = 0; i < m->n; i++)
        if (same_owner(m->v[i].owner, owner)) return i;
    return -1;
}

static bool model_remove(model_t *m, const uint8_t owner[16])
{
    int i = model_find(m, owner);
    if (i < 0) return false;
    memmove(&m->v[i], &m->v[i + 1], (size_t)(m->n - i - 1) * sizeof m->v[0]);
    m->n--;
    return true;
}

/* Returns the record's new rank. */
static int64_t model_upsert(model_t *m, const uint8_t owner[16], int64_t score, int64_t subscore)
{
    model_remove(m, owner);
    rec_t r;
    memcpy(r.owner, owner, 16);
    uuid_text(owner, r.text);
    r.score = score;
    r.subscore = subscore;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = realloc(m->v, (size_t)m->cap * sizeof m->v[0]);
    }
    int i = 0, hi = m->n; /* the first record not before r */
    while (i < hi) {
        int mid = i + (hi - i) / 2;
        if (model_cmp(m, &m->v[mid], &r) < 0)
            i = mid + 1;
        else
            hi = mid;
    }
    memmove(&m->v[i + 1], &m->v[i], (size_t)(m->n - i) * sizeof m->v[0]);
    m->v[i] = r;
    m->n++;
    return i + 1;
}

static int64_t model_rank(const model_t *m, const uint8_t owner[16])
{
    return model_find(m, owner) + 1;
}

static void assert_entry(const kz_rank_entry_t *e, const rec_t *r, int64_t rank)
{
    cr_assert(memcmp(e->owner, r->owner, 16) == 0, "owner at rank %lld", (long long)rank);
    cr_assert_eq(e->score, r->score, "score at rank %lld", (long long)rank);
    cr_assert_eq(e->subscore, r->subscore, "subscore at rank %lld", (long long)rank);
}

/* Every rank, every owner's rank, and range() in uneven chunks. */
static void assert_same_full(kz_rank_index_t *ix, const model_t *m)
{
    cr_assert(kz_rank_index_check(ix), "index invariants");
    cr_assert_eq(kz_rank_index_count(ix), m->n);
    for (int i = 0; i < m->n; i++) {
        kz_rank_entry_t e;
        cr_assert(kz_rank_index_at(ix, i + 1, &e));
        assert_entry(&e, &m->v[i], i + 1);
        cr_assert_eq(kz_rank_index_rank(ix, m->v[i].owner), i + 1);
    }
    kz_rank_entry_t buf[7];
    for (int from = 1; from <= m->n; from += 7) {
        int got = kz_rank_index_range(ix, from, 7, buf);
        int want = m->n - from + 1 < 7 ? m->n - from + 1 : 7;
        cr_assert_eq(got, want, "range from %d", from);
        for (int k = 0; k < got; k++)
            assert_entry(&buf[k], &m->v[from - 1 + k], from + k);
    }
    cr_assert_eq(kz_rank_index_range(ix, m->n + 1, 7, buf), 0);
}

/* ---- hand-written cases ------------------------------------------------------- */

/* Owners by first byte: A 0x01, B 0x02, C 0x80, D 0x10, E 0xff. */
enum { A = 0x01, B = 0x02, C = 0x80, D = 0x10, E = 0xff };

static void load_five(kz_rank_index_t *ix)
{
    upsert_ix(ix, A, 10, 0);
    upsert_ix(ix, B, 10, 0);
    upsert_ix(ix, C, 10, 1);
    upsert_ix(ix, D, 20, 0);
    upsert_ix(ix, E, 5, 9);
}

Test(rank_index, empty)
{
    kz_rank_index_t *ix = kz_rank_index_new(true);
    kz_rank_entry_t e, buf[4];
    cr_assert_eq(kz_rank_index_count(ix), 0);
    cr_assert_eq(rank_ix(ix, A), 0);
    cr_assert_not(kz_rank_index_at(ix, 1, &e));
    cr_assert_not(kz_rank_index_at(ix, 0, &e));
    cr_assert_eq(kz_rank_index_range(ix, 1, 4, buf), 0);
    uint8_t o[16];
    owner_of(A, o);
    cr_assert_not(kz_rank_index_remove(ix, o));
    cr_assert(kz_rank_index_check(ix));
    kz_rank_index_free(ix);
}

Test(rank_index, descending_ties_broken_by_subscore_then_owner)
{
    kz_rank_index_t *ix = kz_rank_index_new(true);
    cr_assert(kz_rank_index_descending(ix));
    cr_assert_eq(upsert_ix(ix, A, 10, 0), 1);
    cr_assert_eq(upsert_ix(ix, B, 10, 0), 1, "same score and subscore: the greater owner first");
    cr_assert_eq(upsert_ix(ix, C, 10, 1), 1, "greater subscore first");
    cr_assert_eq(upsert_ix(ix, D, 20, 0), 1);
    cr_assert_eq(upsert_ix(ix, E, 5, 9), 5);
    /* D 20, C 10/1, B 10/0, A 10/0, E 5 */
    cr_assert_eq(rank_ix(ix, D), 1);
    cr_assert_eq(rank_ix(ix, C), 2);
    cr_assert_eq(rank_ix(ix, B), 3);
    cr_assert_eq(rank_ix(ix, A), 4);
    cr_assert_eq(rank_ix(ix, E), 5);
    cr_assert_eq(rank_ix(ix, 0x42), 0);
    kz_rank_entry_t e;
    cr_assert(kz_rank_index_at(ix, 2, &e));
    cr_assert_eq(e.owner[0], C);
    cr_assert_eq(e.score, 10);
    cr_assert_eq(e.subscore, 1);
    cr_assert_not(kz_rank_index_at(ix, 6, &e));

    /* A moves up to tie with D: D's owner (0x10) is greater, so D stays first. */
    cr_assert_eq(upsert_ix(ix, A, 20, 0), 2);
    cr_assert_eq(rank_ix(ix, B), 4);
    /* Same values again: no move, same rank. */
    cr_assert_eq(upsert_ix(ix, A, 20, 0), 2);
    cr_assert_eq(kz_rank_index_count(ix), 5);
    /* A moves down to last. */
    cr_assert_eq(upsert_ix(ix, A, -1, 0), 5);
    cr_assert_eq(rank_ix(ix, E), 4);

    uint8_t o[16];
    owner_of(C, o);
    cr_assert(kz_rank_index_remove(ix, o));
    cr_assert_not(kz_rank_index_remove(ix, o));
    cr_assert_eq(rank_ix(ix, C), 0);
    cr_assert_eq(rank_ix(ix, B), 2);
    cr_assert_eq(rank_ix(ix, A), 4);
    cr_assert_eq(kz_rank_index_count(ix), 4);
    cr_assert(kz_rank_index_check(ix));
    kz_rank_index_free(ix);
}

Test(rank_index, ascending_ties_broken_by_subscore_then_owner)
{
    kz_rank_index_t *ix = kz_rank_index_new(false);
    cr_assert_not(kz_rank_index_descending(ix));
    load_five(ix);
    /* E 5, A 10/0, B 10/0, C 10/1, D 20 */
    cr_assert_eq(rank_ix(ix, E), 1);
    cr_assert_eq(rank_ix(ix, A), 2);
    cr_assert_eq(rank_ix(ix, B), 3);
    cr_assert_eq(rank_ix(ix, C), 4);
    cr_assert_eq(rank_ix(ix, D), 5);
    /* B ties with E on score: subscore 9 against 9, owner 0x02 < 0xff. */
    cr_assert_eq(upsert_ix(ix, B, 5, 9), 1);
    cr_assert_eq(rank_ix(ix, E), 2);
    /* Subscore decides before owner. */
    cr_assert_eq(upsert_ix(ix, E, 5, 8), 1);
    kz_rank_entry_t buf[8];
    cr_assert_eq(kz_rank_index_range(ix, 1, 8, buf), 5);
    const uint8_t order[] = {E, B, A, C, D};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(buf[i].owner[0], order[i], "rank %d", i + 1);
    cr_assert_eq(kz_rank_index_range(ix, 4, 8, buf), 2);
    cr_assert_eq(buf[0].owner[0], C);
    cr_assert_eq(buf[1].owner[0], D);
    cr_assert_eq(kz_rank_index_range(ix, 0, 8, buf), 0);
    cr_assert_eq(kz_rank_index_range(ix, 6, 8, buf), 0);
    cr_assert_eq(kz_rank_index_range(ix, 2, 0, buf), 0);
    cr_assert(kz_rank_index_check(ix));
    kz_rank_index_free(ix);
}

Test(rank_index, owner_order_is_the_canonical_text_order)
{
    /* Owners differing only in the last byte, and in a byte >= 0x80 (the
     * comparison must be unsigned), both orders. */
    for (int desc = 0; desc <= 1; desc++) {
        kz_rank_index_t *ix = kz_rank_index_new(desc);
        uint8_t lo[16] = {0}, hi[16] = {0}, top[16] = {0};
        lo[15] = 0x01;
        hi[15] = 0x02;
        top[8] = 0x80;
        kz_rank_index_upsert(ix, hi, 7, 7);
        kz_rank_index_upsert(ix, top, 7, 7);
        kz_rank_index_upsert(ix, lo, 7, 7);
        cr_assert_eq(kz_rank_index_rank(ix, lo), desc ? 3 : 1);
        cr_assert_eq(kz_rank_index_rank(ix, hi), 2);
        cr_assert_eq(kz_rank_index_rank(ix, top), desc ? 1 : 3);
        kz_rank_index_free(ix);
    }
}

Test(rank_index, extreme_scores)
{
    kz_rank_index_t *ix = kz_rank_index_new(true);
    cr_assert_eq(upsert_ix(ix, A, 0, 0), 1);
    cr_assert_eq(upsert_ix(ix, B, INT64_MAX, INT64_MIN), 1);
    cr_assert_eq(upsert_ix(ix, C, INT64_MIN, INT64_MAX), 3);
    cr_assert_eq(upsert_ix(ix, D, INT64_MAX, INT64_MAX), 1);
    cr_assert_eq(upsert_ix(ix, E, INT64_MIN, INT64_MIN), 5);
    kz_rank_entry_t e;
    cr_assert(kz_rank_index_at(ix, 5, &e));
    cr_assert_eq(e.score, INT64_MIN);
    cr_assert_eq(e.subscore, INT64_MIN);
    cr_assert(kz_rank_index_at(ix, 1, &e));
    cr_assert_eq(e.score, INT64_MAX);
    cr_assert_eq(e.subscore, INT64_MAX);
    cr_assert_not(kz_rank_index_at(ix, INT64_MAX, &e));
    cr_assert_not(kz_rank_index_at(ix, -1, &e));
    kz_rank_index_free(ix);
}

Test(rank_index, at_returns_the_owner_bytes)
{
    kz_rank_index_t *ix = kz_rank_index_new(false);
    uint8_t o[16];
    for (int i = 0; i < 16; i++)
        o[i] = (uint8_t)(0xf0 - i * 15);
    kz_rank_index_upsert(ix, o, 3, 4);
    kz_rank_entry_t e;
    cr_assert(kz_rank_index_at(ix, 1, &e));
    cr_assert(memcmp(e.owner, o, 16) == 0);
    kz_rank_index_free(ix);
}

/* ---- random operations against the model ---------------------------------------- */

/* A pool of owners that stresses the owner tie-break: pairs share their
 * first 8 bytes, some differ only in the first byte. */
static rec_t *owner_pool(uint64_t *s, int n)
{
    rec_t *p = calloc((size_t)n, sizeof *p);
    for (int i = 0; i < n; i++) {
        random_owner(s, p[i].owner);
        if (i % 2 == 1) memcpy(p[i].owner, p[i - 1].owner, 8);
        if (i % 5 == 4) {
            memcpy(p[i].owner + 1, p[i - 1].owner + 1, 15);
            p[i].owner[0] = (uint8_t)(p[i - 1].owner[0] ^ 0x80);
        }
    }
    return p;
}

static int64_t tie_value(uint64_t *s)
{
    switch (below(s, 20)) {
    case 0:
        return INT64_MIN;
    case 1:
        return INT64_MAX;
    case 2:
        return (int64_t)splitmix(s);
    default:
        return (int64_t)below(s, 5) - 2;
    }
}

static void random_ops(uint64_t seed, bool desc, int pool_size, int ops)
{
    uint64_t s = seed;
    rec_t *pool = owner_pool(&s, pool_size);
    model_t m = {.desc = desc};
    kz_rank_index_t *ix = kz_rank_index_new(desc);
    for (int op = 0; op < ops; op++) {
        const uint8_t *o = pool[below(&s, (uint64_t)pool_size)].owner;
        uint64_t kind = below(&s, 100);
        if (kind < 65) {
            int64_t score = tie_value(&s), sub = tie_value(&s);
            int64_t want = model_upsert(&m, o, score, sub);
            cr_assert_eq(kz_rank_index_upsert(ix, o, score, sub), want, "seed %llu op %d upsert",
                         (unsigned long long)seed, op);
        } else if (kind < 72) {
            /* The same values again. */
            int i = model_find(&m, o);
            if (i >= 0) {
                rec_t r = m.v[i];
                cr_assert_eq(kz_rank_index_upsert(ix, o, r.score, r.subscore), i + 1);
            }
        } else {
            bool want = model_remove(&m, o);
            cr_assert_eq(kz_rank_index_remove(ix, o), want, "seed %llu op %d remove",
                         (unsigned long long)seed, op);
        }
        cr_assert_eq(kz_rank_index_count(ix), m.n, "seed %llu op %d count",
                     (unsigned long long)seed, op);
        for (int k = 0; k < 3; k++) {
            const uint8_t *q = pool[below(&s, (uint64_t)pool_size)].owner;
            cr_assert_eq(kz_rank_index_rank(ix, q), model_rank(&m, q), "seed %llu op %d rank",
                         (unsigned long long)seed, op);
            int64_t r = (int64_t)below(&s, (uint64_t)m.n + 2); /* 0 and n+1 too */
            kz_rank_entry_t e;
            bool in = r >= 1 && r <= m.n;
            cr_assert_eq(kz_rank_index_at(ix, r, &e), in, "seed %llu op %d at %lld",
                         (unsigned long long)seed, op, (long long)r);
            if (in) assert_entry(&e, &m.v[r - 1], r);
        }
        if (op % 16 == 0)
            cr_assert(kz_rank_index_check(ix), "seed %llu op %d", (unsigned long long)seed, op);
        if (op % 500 == 0) assert_same_full(ix, &m);
    }
    assert_same_full(ix, &m);
    kz_rank_index_free(ix);
    free(m.v);
    free(pool);
}

Test(rank_index, random_descending_heavy_ties)
{
    for (uint64_t seed = 1; seed <= 6; seed++)
        random_ops(seed, true, 300, 4000);
}

Test(rank_index, random_ascending_heavy_ties)
{
    for (uint64_t seed = 101; seed <= 106; seed++)
        random_ops(seed, false, 300, 4000);
}

Test(rank_index, random_small_pools)
{
    /* Few owners: the tree keeps emptying and refilling, nodes are reused. */
    for (uint64_t seed = 201; seed <= 210; seed++)
        random_ops(seed, seed % 2, 7, 1500);
}

Test(rank_index, random_large)
{
    /* Thousands of records: a deep tree, hash growth, then removal of every
     * record and refill from the free list. */
    for (int desc = 0; desc <= 1; desc++) {
        uint64_t s = 77 + (uint64_t)desc;
        enum { NREC = 4000 };
        rec_t *pool = owner_pool(&s, NREC);
        model_t m = {.desc = desc};
        kz_rank_index_t *ix = kz_rank_index_new(desc);
        for (int i = 0; i < NREC; i++) {
            int64_t score = (int64_t)below(&s, 100), sub = (int64_t)below(&s, 3);
            model_upsert(&m, pool[i].owner, score, sub);
            kz_rank_index_upsert(ix, pool[i].owner, score, sub);
        }
        assert_same_full(ix, &m);
        for (int i = 0; i < 2 * NREC; i++) {
            const uint8_t *o = pool[below(&s, NREC)].owner;
            int64_t score = (int64_t)below(&s, 100), sub = (int64_t)below(&s, 3);
            int64_t want = model_upsert(&m, o, score, sub);
            cr_assert_eq(kz_rank_index_upsert(ix, o, score, sub), want);
        }
        assert_same_full(ix, &m);
        size_t bytes = kz_rank_index_bytes(ix);
        for (int i = NREC - 1; i >= 0; i--) {
            int j = (int)below(&s, (uint64_t)i + 1);
            rec_t t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
            cr_assert(kz_rank_index_remove(ix, pool[i].owner));
            model_remove(&m, pool[i].owner);
            if (i % 1000 == 0) assert_same_full(ix, &m);
        }
        cr_assert_eq(kz_rank_index_count(ix), 0);
        for (int i = 0; i < NREC; i++) {
            model_upsert(&m, pool[i].owner, i % 10, 0);
            kz_rank_index_upsert(ix, pool[i].owner, i % 10, 0);
        }
        assert_same_full(ix, &m);
        cr_assert_eq(kz_rank_index_bytes(ix), bytes, "refilling reuses the freed nodes");
        kz_rank_index_free(ix);
        free(m.v);
        free(pool);
    }
}

/* ---- the cache ---------------------------------------------------------------------- */

Test(rank_cache, unknown_periods_answer_zero)
{
    kz_rank_cache_t *c = kz_rank_cache_new();
    uint8_t o[16];
    owner_of(A, o);
    kz_rank_entry_t buf[2];
    cr_assert_eq(kz_rank_cache_rank(c, "b", 0, o), 0);
    cr_assert_eq(kz_rank_cache_count(c, "b", 0), 0);
    cr_assert_eq(kz_rank_cache_range(c, "b", 0, 1, 2, buf), 0);
    cr_assert_not(kz_rank_cache_remove(c, "b", 0, o));
    cr_assert_eq(kz_rank_cache_periods(c), 0, "reads create nothing");
    kz_rank_cache_drop_board(c, "b");
    kz_rank_cache_drop_expired(c, "b", 100);
    kz_rank_cache_free(c);
}

Test(rank_cache, periods_are_separate_and_keep_their_order)
{
    kz_rank_cache_t *c = kz_rank_cache_new();
    uint8_t a[16], b[16];
    owner_of(A, a);
    owner_of(B, b);
    cr_assert_eq(kz_rank_cache_upsert(c, "lb", 100, true, a, 10, 0), 1);
    cr_assert_eq(kz_rank_cache_upsert(c, "lb", 100, true, b, 20, 0), 1);
    cr_assert_eq(kz_rank_cache_rank(c, "lb", 100, a), 2);
    /* Another period of the same board, and another board: both empty. */
    cr_assert_eq(kz_rank_cache_count(c, "lb", 200), 0);
    cr_assert_eq(kz_rank_cache_count(c, "lb2", 100), 0);
    cr_assert_eq(kz_rank_cache_upsert(c, "lb", 200, true, a, 1, 0), 1);
    cr_assert_eq(kz_rank_cache_count(c, "lb", 200), 1);
    cr_assert_eq(kz_rank_cache_count(c, "lb", 100), 2);
    /* The period was made descending; a later call saying otherwise does
     * not change it. */
    cr_assert_eq(kz_rank_cache_upsert(c, "lb", 100, false, a, 30, 0), 1);
    kz_rank_entry_t buf[4];
    cr_assert_eq(kz_rank_cache_range(c, "lb", 100, 1, 4, buf), 2);
    cr_assert_eq(buf[0].owner[0], A);
    cr_assert_eq(buf[0].score, 30);
    cr_assert_eq(buf[1].owner[0], B);
    cr_assert_eq(kz_rank_cache_range(c, "lb", 100, 2, 4, buf), 1);
    cr_assert_eq(buf[0].owner[0], B);
    cr_assert(kz_rank_cache_remove(c, "lb", 100, a));
    cr_assert_not(kz_rank_cache_remove(c, "lb", 100, a));
    cr_assert_eq(kz_rank_cache_rank(c, "lb", 100, b), 1);
    /* An ascending board. */
    cr_assert_eq(kz_rank_cache_upsert(c, "asc", 0, false, a, 10, 0), 1);
    cr_assert_eq(kz_rank_cache_upsert(c, "asc", 0, false, b, 5, 0), 1);
    cr_assert_eq(kz_rank_cache_rank(c, "asc", 0, a), 2);
    cr_assert_eq(kz_rank_cache_periods(c), 3);
    kz_rank_cache_free(c);
}

Test(rank_cache, many_periods_grow_the_map)
{
    kz_rank_cache_t *c = kz_rank_cache_new();
    uint8_t o[16];
    owner_of(A, o);
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "board-%d", i % 50);
        kz_rank_cache_upsert(c, name, i / 50, true, o, i, 0);
    }
    cr_assert_eq(kz_rank_cache_periods(c), 500);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "board-%d", i % 50);
        cr_assert_eq(kz_rank_cache_count(c, name, i / 50), 1);
        kz_rank_entry_t e;
        cr_assert_eq(kz_rank_cache_range(c, name, i / 50, 1, 1, &e), 1);
        cr_assert_eq(e.score, i);
    }
    kz_rank_cache_free(c);
}

Test(rank_cache, drop_board)
{
    kz_rank_cache_t *c = kz_rank_cache_new();
    uint8_t o[16];
    owner_of(A, o);
    for (int64_t exp = 0; exp <= 300; exp += 100) {
        kz_rank_cache_upsert(c, "gone", exp, true, o, 1, 0);
        kz_rank_cache_upsert(c, "kept", exp, true, o, 1, 0);
    }
    kz_rank_cache_upsert(c, "gone2", 0, true, o, 1, 0); /* a name sharing a prefix */
    cr_assert_eq(kz_rank_cache_periods(c), 9);
    kz_rank_cache_drop_board(c, "gone");
    cr_assert_eq(kz_rank_cache_periods(c), 5);
    for (int64_t exp = 0; exp <= 300; exp += 100) {
        cr_assert_eq(kz_rank_cache_count(c, "gone", exp), 0);
        cr_assert_eq(kz_rank_cache_rank(c, "gone", exp, o), 0);
        cr_assert_eq(kz_rank_cache_rank(c, "kept", exp, o), 1);
    }
    cr_assert_eq(kz_rank_cache_count(c, "gone2", 0), 1);
    /* The board comes back empty on its next write. */
    cr_assert_eq(kz_rank_cache_upsert(c, "gone", 0, false, o, 5, 0), 1);
    cr_assert_eq(kz_rank_cache_count(c, "gone", 0), 1);
    kz_rank_cache_free(c);
}

Test(rank_cache, drop_expired)
{
    kz_rank_cache_t *c = kz_rank_cache_new();
    uint8_t o[16];
    owner_of(A, o);
    for (int64_t exp = 0; exp <= 300; exp += 100) {
        kz_rank_cache_upsert(c, "weekly", exp, true, o, 1, 0);
        kz_rank_cache_upsert(c, "other", exp, true, o, 1, 0);
    }
    kz_rank_cache_drop_expired(c, "weekly", 200);
    /* 100 and 200 go; 0 (never expires) and 300 stay; the other board too. */
    cr_assert_eq(kz_rank_cache_count(c, "weekly", 0), 1);
    cr_assert_eq(kz_rank_cache_count(c, "weekly", 100), 0);
    cr_assert_eq(kz_rank_cache_count(c, "weekly", 200), 0);
    cr_assert_eq(kz_rank_cache_count(c, "weekly", 300), 1);
    for (int64_t exp = 0; exp <= 300; exp += 100)
        cr_assert_eq(kz_rank_cache_count(c, "other", exp), 1);
    cr_assert_eq(kz_rank_cache_periods(c), 6);
    kz_rank_cache_drop_expired(c, "weekly", 99);
    cr_assert_eq(kz_rank_cache_periods(c), 6);
    kz_rank_cache_drop_expired(c, "weekly", INT64_MAX);
    cr_assert_eq(kz_rank_cache_periods(c), 5);
    cr_assert_eq(kz_rank_cache_count(c, "weekly", 0), 1);
    kz_rank_cache_free(c);
}

/* ---- the cache under concurrent writers ------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 400, OPS = 20000 };

typedef struct {
    kz_rank_cache_t *c;
    int id;
    uint8_t owners[PER_THREAD][16];
    bool present[PER_THREAD];
    int64_t score[PER_THREAD], subscore[PER_THREAD];
    int bad; /* answers that cannot be right */
} writer_t;

/* Owner i of thread t: random bytes, made distinct by t and i in bytes
 * 13..15, so the threads' owners interleave in rank order. */
static void make_owners(writer_t *w)
{
    uint64_t s = 1000 + (uint64_t)w->id;
    for (int i = 0; i < PER_THREAD; i++) {
        random_owner(&s, w->owners[i]);
        w->owners[i][13] = (uint8_t)w->id;
        w->owners[i][14] = (uint8_t)(i >> 8);
        w->owners[i][15] = (uint8_t)i;
    }
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    uint64_t s = 555 + (uint64_t)w->id;
    for (int op = 0; op < OPS; op++) {
        int i = (int)below(&s, PER_THREAD);
        if (below(&s, 10) == 0) {
            bool removed = kz_rank_cache_remove(w->c, "shared", 0, w->owners[i]);
            if (removed != w->present[i]) w->bad++;
            w->present[i] = false;
        } else {
            int64_t score = (int64_t)below(&s, 40), sub = (int64_t)below(&s, 3);
            int64_t r = kz_rank_cache_upsert(w->c, "shared", 0, true, w->owners[i], score, sub);
            if (r < 1 || r > THREADS * PER_THREAD) w->bad++;
            w->present[i] = true;
            w->score[i] = score;
            w->subscore[i] = sub;
        }
        /* Each thread also writes its owners into boards that all threads
         * create at the same moment. */
        if (op < PER_THREAD * 2) {
            char board[16];
            snprintf(board, sizeof board, "new%d", op % 4);
            kz_rank_cache_upsert(w->c, board, 0, op % 2, w->owners[op / 2 % PER_THREAD], op, 0);
        }
    }
    return NULL;
}

typedef struct {
    kz_rank_cache_t *c;
    atomic_bool stop;
    int bad, reads;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    uint64_t s = 999;
    kz_rank_entry_t buf[16];
    while (!atomic_load(&r->stop)) {
        int64_t from = 1 + (int64_t)below(&s, THREADS * PER_THREAD);
        int got = kz_rank_cache_range(r->c, "shared", 0, from, 16, buf);
        /* One range is read under one lock: it must be in order. */
        for (int k = 1; k < got; k++) {
            const kz_rank_entry_t *a = &buf[k - 1], *b = &buf[k];
            bool ok = a->score > b->score ||
                      (a->score == b->score &&
                       (a->subscore > b->subscore ||
                        (a->subscore == b->subscore && memcmp(a->owner, b->owner, 16) > 0)));
            if (!ok) r->bad++;
        }
        if (kz_rank_cache_count(r->c, "shared", 0) > THREADS * PER_THREAD) r->bad++;
        r->reads++;
    }
    return NULL;
}

Test(rank_cache, concurrent_writers_leave_exact_ranks)
{
    kz_rank_cache_t *c = kz_rank_cache_new();
    static writer_t w[THREADS];
    pthread_t th[THREADS], rd;
    reader_t reader = {.c = c};
    atomic_init(&reader.stop, false);
    for (int t = 0; t < THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].c = c;
        w[t].id = t;
        make_owners(&w[t]);
    }
    pthread_create(&rd, NULL, reader_main, &reader);
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer_main, &w[t]);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    atomic_store(&reader.stop, true);
    pthread_join(rd, NULL);

    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(w[t].bad, 0, "writer %d saw a wrong answer", t);
    cr_assert_eq(reader.bad, 0, "reader saw %d wrong answers in %d reads", reader.bad,
                 reader.reads);

    /* The model from every thread's final values. */
    model_t m = {.desc = true};
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            if (w[t].present[i]) model_upsert(&m, w[t].owners[i], w[t].score[i], w[t].subscore[i]);
    cr_assert_eq(kz_rank_cache_count(c, "shared", 0), m.n);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            cr_assert_eq(kz_rank_cache_rank(c, "shared", 0, w[t].owners[i]),
                         w[t].present[i] ? model_rank(&m, w[t].owners[i]) : 0, "thread %d owner %d",
                         t, i);
    kz_rank_entry_t *all = calloc((size_t)m.n + 1, sizeof *all);
    cr_assert_eq(kz_rank_cache_range(c, "shared", 0, 1, m.n + 1, all), m.n);
    for (int i = 0; i < m.n; i++)
        assert_entry(&all[i], &m.v[i], i + 1);
    free(all);
    free(m.v);

    /* The boards created concurrently: one period each, every owner once. */
    for (int b = 0; b < 4; b++) {
        char board[16];
        snprintf(board, sizeof board, "new%d", b);
        cr_assert_eq(kz_rank_cache_count(c, board, 0), THREADS * PER_THREAD / 2, "board %s", board);
    }
    cr_assert_eq(kz_rank_cache_periods(c), 5);
    kz_rank_cache_free(c);
}

/* Writers and readers keep using a board that another thread keeps
 * dropping: no call may touch a freed period (the sanitizer build checks),
 * and the other board is untouched. */
typedef struct {
    kz_rank_cache_t *c;
    int id;
    int bad;
} churn_t;

static void *churn_main(void *arg)
{
    churn_t *ch = arg;
    uint64_t s = 4242 + (uint64_t)ch->id;
    uint8_t o[16];
    kz_rank_entry_t buf[8];
    for (int op = 0; op < 20000; op++) {
        random_owner(&s, o);
        int64_t exp = (int64_t)below(&s, 3) * 100;
        int64_t r = kz_rank_cache_upsert(ch->c, "churn", exp, true, o, (int64_t)below(&s, 10), 0);
        if (r < 1) ch->bad++;
        kz_rank_cache_rank(ch->c, "churn", exp, o);
        kz_rank_cache_range(ch->c, "churn", exp, 1, 8, buf);
        if (op % 7 == 0) kz_rank_cache_remove(ch->c, "churn", exp, o);
        if (ch->id == 0 && op % 50 == 0) kz_rank_cache_drop_board(ch->c, "churn");
        if (ch->id == 1 && op % 30 == 0) kz_rank_cache_drop_expired(ch->c, "churn", 150);
        if (op < 1000) {
            owner_of((uint8_t)(op % 250), o);
            o[1] = (uint8_t)ch->id;
            o[2] = (uint8_t)(op / 250);
            kz_rank_cache_upsert(ch->c, "steady", 0, false, o, op, 0);
        }
    }
    return NULL;
}

Test(rank_cache, drops_under_concurrent_use)
{
    kz_rank_cache_t *c = kz_rank_cache_new();
    churn_t ch[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ch[t] = (churn_t){c, t, 0};
        pthread_create(&th[t], NULL, churn_main, &ch[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(ch[t].bad, 0);
    cr_assert_eq(kz_rank_cache_count(c, "steady", 0), THREADS * 1000);
    kz_rank_cache_drop_board(c, "churn");
    cr_assert_eq(kz_rank_cache_periods(c), 1);
    kz_rank_cache_free(c);
}
