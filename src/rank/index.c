/* The rank index of one leaderboard period: see rank/index.h.
 *
 * Tree: an AVL tree over nodes[1..], linked by 32-bit index, 0 meaning
 * none. nodes[0] is a sentinel with size 0 and height 0 so that children
 * need no test before reading their size or height. Every node carries the
 * size of its subtree: the rank of a key is the number of nodes before it,
 * summed on the way down. Keys are unique (the owner is part of them), so a
 * key is either before or after every other. Insertion and removal are
 * recursive (the height is at most ~1.44 log2 n, 46 levels for 2^31 nodes)
 * and rebalance on the way back up.
 *
 * Owners are held as two 64-bit numbers read big-endian from the 16 bytes,
 * so comparing (hi, lo) numerically is comparing the bytes with memcmp.
 *
 * Hash: linear probing over slots of (tag, node index), tag being 32 bits
 * of the owner's hash and its home slot being tag & mask, so a probe only
 * reads a node when the tags agree, growing needs no node reads, and
 * removal shifts later slots back instead of leaving tombstones.
 *
 * Free nodes (size 0) are chained through `left` and reused first. */
#include "index.h"

#include <stdlib.h>
#include <string.h>

/* Relative, not "core/alloc.h": tools/rank_bench.c compiles this file
 * without the src/ include directory. */
#include "../core/alloc.h"

typedef struct node {
    int64_t score, subscore;
    uint64_t hi, lo;      /* owner bytes 0..7 and 8..15, big-endian */
    uint32_t left, right; /* children; left links the free list */
    uint32_t size;        /* nodes in this subtree, 0 when free */
    uint32_t height;      /* 1 for a leaf */
} node_t;

typedef struct slot {
    uint32_t tag; /* high 32 bits of the owner's hash */
    uint32_t idx; /* node, 0 when the slot is empty */
} slot_t;

struct kz_rank_index {
    node_t *nodes;
    uint32_t ncap;  /* nodes allocated */
    uint32_t nused; /* nodes ever handed out, sentinel included */
    uint32_t free;  /* head of the free list, 0 when empty */
    uint32_t root;
    uint32_t count;
    bool desc;
    slot_t *slots;
    size_t mask; /* slots - 1, slots a power of two */
};

enum { NODES_MIN = 8, SLOTS_MIN = 16, STACK = 64 };
/* Indices are 32 bits and the hash holds at most 3/4 of 2^32 slots. */
#define RECORDS_MAX ((uint32_t)INT32_MAX - 1)

#define N(i) (&ix->nodes[(i)])

static inline uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint32_t owner_tag(uint64_t hi, uint64_t lo)
{
    /* Owners are usually random (v4) but may be time-ordered (v7), whose
     * high bytes barely change: mix all 128 bits. */
    uint64_t h = hi ^ (lo * 0x9e3779b97f4a7c15ull);
    h ^= h >> 31;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return (uint32_t)(h >> 32);
}

/* True when a ranks before b. Both are distinct keys. */
static inline bool before(const kz_rank_index_t *ix, const node_t *a, const node_t *b)
{
    bool lt;
    if (a->score != b->score)
        lt = a->score < b->score;
    else if (a->subscore != b->subscore)
        lt = a->subscore < b->subscore;
    else if (a->hi != b->hi)
        lt = a->hi < b->hi;
    else
        lt = a->lo < b->lo;
    return lt != ix->desc;
}

/* ---- hash ----------------------------------------------------------------- */

/* The slot holding owner (hi, lo), or the empty slot where it would go. */
static size_t slot_find(const kz_rank_index_t *ix, uint64_t hi, uint64_t lo, uint32_t tag)
{
    size_t i = tag & ix->mask;
    for (;;) {
        const slot_t *s = &ix->slots[i];
        if (s->idx == 0) return i;
        if (s->tag == tag) {
            const node_t *n = N(s->idx);
            if (n->hi == hi && n->lo == lo) return i;
        }
        i = (i + 1) & ix->mask;
    }
}

static void slots_resize(kz_rank_index_t *ix, size_t nslots)
{
    slot_t *old = ix->slots;
    size_t oldn = ix->slots ? ix->mask + 1 : 0;
    ix->slots = kz_calloc(nslots, sizeof *ix->slots);
    ix->mask = nslots - 1;
    for (size_t j = 0; j < oldn; j++) {
        if (!old[j].idx) continue;
        size_t i = old[j].tag & ix->mask;
        while (ix->slots[i].idx)
            i = (i + 1) & ix->mask;
        ix->slots[i] = old[j];
    }
    kz_free(old);
}

/* Empties slot i, moving back the slots after it that may take its place so
 * that every entry stays reachable from its home slot. */
static void slot_delete(kz_rank_index_t *ix, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & ix->mask;
        if (!ix->slots[j].idx) break;
        size_t home = ix->slots[j].tag & ix->mask;
        /* The entry at j stays when its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            ix->slots[i] = ix->slots[j];
            i = j;
        }
    }
    ix->slots[i] = (slot_t){0, 0};
}

/* ---- nodes ---------------------------------------------------------------- */

static uint32_t node_alloc(kz_rank_index_t *ix)
{
    if (ix->free) {
        uint32_t n = ix->free;
        ix->free = N(n)->left;
        return n;
    }
    if (ix->nused == ix->ncap) {
        uint32_t cap = ix->ncap <= RECORDS_MAX / 2 ? ix->ncap * 2 : RECORDS_MAX + 1;
        if (cap == ix->ncap) abort(); /* more records than 32-bit indices: out of memory */
        ix->nodes = kz_realloc(ix->nodes, (size_t)cap * sizeof *ix->nodes);
        ix->ncap = cap;
    }
    return ix->nused++;
}

static void node_release(kz_rank_index_t *ix, uint32_t n)
{
    node_t *x = N(n);
    x->size = 0;
    x->height = 0;
    x->right = 0;
    x->left = ix->free;
    ix->free = n;
}

/* ---- tree ----------------------------------------------------------------- */

static inline void fix(kz_rank_index_t *ix, uint32_t t)
{
    node_t *x = N(t);
    const node_t *l = N(x->left), *r = N(x->right);
    x->size = l->size + r->size + 1;
    x->height = (l->height > r->height ? l->height : r->height) + 1;
}

static uint32_t rot_right(kz_rank_index_t *ix, uint32_t t)
{
    uint32_t l = N(t)->left;
    N(t)->left = N(l)->right;
    N(l)->right = t;
    fix(ix, t);
    fix(ix, l);
    return l;
}

static uint32_t rot_left(kz_rank_index_t *ix, uint32_t t)
{
    uint32_t r = N(t)->right;
    N(t)->right = N(r)->left;
    N(r)->left = t;
    fix(ix, t);
    fix(ix, r);
    return r;
}

/* Restores size, height and balance at t, whose subtrees are AVL trees
 * differing in height by at most 2. Returns the subtree's new root. */
static uint32_t rebalance(kz_rank_index_t *ix, uint32_t t)
{
    node_t *x = N(t);
    uint32_t hl = N(x->left)->height, hr = N(x->right)->height;
    if (hl > hr + 1) {
        const node_t *l = N(x->left);
        if (N(l->left)->height < N(l->right)->height) x->left = rot_left(ix, x->left);
        return rot_right(ix, t);
    }
    if (hr > hl + 1) {
        const node_t *r = N(x->right);
        if (N(r->right)->height < N(r->left)->height) x->right = rot_right(ix, x->right);
        return rot_left(ix, t);
    }
    fix(ix, t);
    return t;
}

/* Inserts node n (key set) under t; adds to *rank the nodes before it. */
static uint32_t tree_insert(kz_rank_index_t *ix, uint32_t t, uint32_t n, int64_t *rank)
{
    if (!t) {
        node_t *x = N(n);
        x->left = x->right = 0;
        x->size = 1;
        x->height = 1;
        return n;
    }
    node_t *x = N(t);
    if (before(ix, N(n), x)) {
        x->left = tree_insert(ix, x->left, n, rank);
    } else {
        *rank += (int64_t)N(x->left)->size + 1;
        x->right = tree_insert(ix, x->right, n, rank);
    }
    return rebalance(ix, t);
}

/* Unlinks the leftmost node under t into *min. */
static uint32_t tree_remove_min(kz_rank_index_t *ix, uint32_t t, uint32_t *min)
{
    node_t *x = N(t);
    if (!x->left) {
        *min = t;
        return x->right;
    }
    x->left = tree_remove_min(ix, x->left, min);
    return rebalance(ix, t);
}

/* Unlinks node n, which is under t, by its key. */
static uint32_t tree_remove(kz_rank_index_t *ix, uint32_t t, uint32_t n)
{
    if (!t) return 0; /* not reached: n is in the tree */
    node_t *x = N(t);
    if (t == n) {
        if (!x->left) return x->right;
        if (!x->right) return x->left;
        /* The successor takes n's place: nodes move, keys never do, so the
         * hash stays valid. */
        uint32_t m = 0;
        uint32_t r = tree_remove_min(ix, x->right, &m);
        N(m)->left = x->left;
        N(m)->right = r;
        return rebalance(ix, m);
    }
    if (before(ix, N(n), x))
        x->left = tree_remove(ix, x->left, n);
    else
        x->right = tree_remove(ix, x->right, n);
    return rebalance(ix, t);
}

/* Rank of node n, which is in the tree. */
static int64_t tree_rank(const kz_rank_index_t *ix, uint32_t n)
{
    const node_t *key = N(n);
    int64_t r = 0;
    uint32_t t = ix->root;
    while (t) {
        const node_t *x = N(t);
        if (t == n) return r + N(x->left)->size + 1;
        if (before(ix, key, x)) {
            t = x->left;
        } else {
            r += (int64_t)N(x->left)->size + 1;
            t = x->right;
        }
    }
    return 0;
}

/* Node at rank (1..count). */
static uint32_t tree_select(const kz_rank_index_t *ix, int64_t rank)
{
    uint32_t t = ix->root;
    while (t) {
        const node_t *x = N(t);
        int64_t ls = N(x->left)->size;
        if (rank <= ls) {
            t = x->left;
        } else if (rank == ls + 1) {
            return t;
        } else {
            rank -= ls + 1;
            t = x->right;
        }
    }
    return 0;
}

static void entry_of(const node_t *x, kz_rank_entry_t *out)
{
    put_be64(out->owner, x->hi);
    put_be64(out->owner + 8, x->lo);
    out->score = x->score;
    out->subscore = x->subscore;
}

/* ---- API ------------------------------------------------------------------ */

kz_rank_index_t *kz_rank_index_new(bool descending)
{
    kz_rank_index_t *ix = kz_calloc(1, sizeof *ix);
    ix->desc = descending;
    ix->ncap = NODES_MIN;
    ix->nodes = kz_calloc(ix->ncap, sizeof *ix->nodes);
    ix->nused = 1; /* the sentinel */
    slots_resize(ix, SLOTS_MIN);
    return ix;
}

void kz_rank_index_free(kz_rank_index_t *ix)
{
    if (!ix) return;
    kz_free(ix->nodes);
    kz_free(ix->slots);
    kz_free(ix);
}

int64_t kz_rank_index_upsert(kz_rank_index_t *ix, const uint8_t owner[16], int64_t score,
                             int64_t subscore)
{
    uint64_t hi = be64(owner), lo = be64(owner + 8);
    uint32_t tag = owner_tag(hi, lo);
    size_t s = slot_find(ix, hi, lo, tag);
    uint32_t n = ix->slots[s].idx;
    if (n) {
        node_t *x = N(n);
        if (x->score == score && x->subscore == subscore) return tree_rank(ix, n);
        ix->root = tree_remove(ix, ix->root, n);
    } else {
        if (ix->count >= RECORDS_MAX) abort(); /* see RECORDS_MAX: out of memory */
        if ((size_t)ix->count + 1 > (ix->mask + 1) / 4 * 3) {
            slots_resize(ix, (ix->mask + 1) * 2);
            s = slot_find(ix, hi, lo, tag);
        }
        n = node_alloc(ix);
        ix->slots[s] = (slot_t){tag, n};
        ix->count++;
        N(n)->hi = hi;
        N(n)->lo = lo;
    }
    N(n)->score = score;
    N(n)->subscore = subscore;
    int64_t rank = 1;
    ix->root = tree_insert(ix, ix->root, n, &rank);
    return rank;
}

bool kz_rank_index_remove(kz_rank_index_t *ix, const uint8_t owner[16])
{
    uint64_t hi = be64(owner), lo = be64(owner + 8);
    size_t s = slot_find(ix, hi, lo, owner_tag(hi, lo));
    uint32_t n = ix->slots[s].idx;
    if (!n) return false;
    ix->root = tree_remove(ix, ix->root, n);
    slot_delete(ix, s);
    node_release(ix, n);
    ix->count--;
    return true;
}

int64_t kz_rank_index_rank(const kz_rank_index_t *ix, const uint8_t owner[16])
{
    uint64_t hi = be64(owner), lo = be64(owner + 8);
    uint32_t n = ix->slots[slot_find(ix, hi, lo, owner_tag(hi, lo))].idx;
    return n ? tree_rank(ix, n) : 0;
}

bool kz_rank_index_at(const kz_rank_index_t *ix, int64_t rank, kz_rank_entry_t *out)
{
    if (rank < 1 || rank > (int64_t)ix->count) return false;
    entry_of(N(tree_select(ix, rank)), out);
    return true;
}

int64_t kz_rank_index_count(const kz_rank_index_t *ix)
{
    return ix->count;
}

bool kz_rank_index_descending(const kz_rank_index_t *ix)
{
    return ix->desc;
}

int kz_rank_index_range(const kz_rank_index_t *ix, int64_t from, int n, kz_rank_entry_t *out)
{
    if (n <= 0 || from < 1 || from > (int64_t)ix->count) return 0;
    /* Down to rank `from`, stacking the nodes left behind on the right:
     * they are the ones that come next once a left subtree is done. */
    uint32_t stack[STACK];
    int sp = 0;
    uint32_t t = ix->root;
    int64_t r = from;
    for (;;) {
        const node_t *x = N(t);
        int64_t ls = N(x->left)->size;
        if (r <= ls) {
            stack[sp++] = t;
            t = x->left;
        } else if (r == ls + 1) {
            break;
        } else {
            r -= ls + 1;
            t = x->right;
        }
    }
    int k = 0;
    for (;;) {
        entry_of(N(t), &out[k]);
        if (++k == n) break;
        if (N(t)->right) {
            t = N(t)->right;
            while (N(t)->left) {
                stack[sp++] = t;
                t = N(t)->left;
            }
        } else if (sp) {
            t = stack[--sp];
        } else {
            break;
        }
    }
    return k;
}

size_t kz_rank_index_bytes(const kz_rank_index_t *ix)
{
    return sizeof *ix + (size_t)ix->ncap * sizeof *ix->nodes + (ix->mask + 1) * sizeof *ix->slots;
}

/* ---- invariants (tests) ----------------------------------------------------- */

typedef struct {
    const node_t *prev; /* last node in order, NULL before the first */
    uint32_t nodes;
    bool ok;
} walk_t;

/* Checks the subtree at t; returns its height. */
static uint32_t check_tree(const kz_rank_index_t *ix, uint32_t t, walk_t *w, int depth)
{
    if (!t || !w->ok) return 0;
    if (t >= ix->nused || depth > STACK) {
        w->ok = false;
        return 0;
    }
    const node_t *x = N(t);
    uint32_t hl = check_tree(ix, x->left, w, depth + 1);
    if (w->prev && !before(ix, w->prev, x)) w->ok = false;
    w->prev = x;
    w->nodes++;
    uint32_t hr = check_tree(ix, x->right, w, depth + 1);
    uint32_t h = (hl > hr ? hl : hr) + 1;
    if (x->height != h || hl > hr + 1 || hr > hl + 1) w->ok = false;
    if (x->size != N(x->left)->size + N(x->right)->size + 1) w->ok = false;
    return h;
}

bool kz_rank_index_check(const kz_rank_index_t *ix)
{
    if (N(0)->size || N(0)->height || ix->nused > ix->ncap) return false;
    walk_t w = {NULL, 0, true};
    check_tree(ix, ix->root, &w, 0);
    if (!w.ok || w.nodes != ix->count || N(ix->root)->size != ix->count) return false;
    /* Each hash entry names a node in use, found again from its home slot;
     * as many entries as records. */
    size_t entries = 0;
    for (size_t i = 0; i <= ix->mask; i++) {
        const slot_t *s = &ix->slots[i];
        if (!s->idx) continue;
        entries++;
        if (s->idx >= ix->nused) return false;
        const node_t *x = N(s->idx);
        if (!x->size || s->tag != owner_tag(x->hi, x->lo)) return false;
        if (slot_find(ix, x->hi, x->lo, s->tag) != i) return false;
    }
    if (entries != ix->count || entries * 4 > (ix->mask + 1) * 3) return false;
    /* Every other node is on the free list. */
    uint32_t nfree = 0;
    for (uint32_t f = ix->free; f; f = N(f)->left) {
        if (f >= ix->nused || N(f)->size || ++nfree > ix->nused) return false;
    }
    return nfree + ix->count + 1 == ix->nused;
}
