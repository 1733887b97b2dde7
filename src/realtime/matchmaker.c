/* The matchmaker: see realtime/matchmaker.h.
 *
 * The file has three parts: the pool (tickets, owners, under one mutex),
 * processing (a snapshot, an index over it, and the group search, all
 * without the lock), and the server (the processing thread, the socket
 * handlers, tokens, the Lua matched hook and delivery). */
#include "realtime/matchmaker.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/jwt.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/uuid.h"
#include "lua/internal.h"
#include "lua/runtime.h"
#include "net/pool.h"
#include "realtime/envelope.h"
#include "realtime/router.h"
#include "realtime/wire.h"

/* ------------------------------------------------------------------------ */
/* A small string-keyed hash map (keys are byte strings)                    */

typedef struct hnode {
    struct hnode *next;
    uint64_t h;
    void *val;
    size_t len;
    char key[];
} hnode_t;

typedef struct hmap {
    size_t nb, n; /* buckets (power of two), entries */
    hnode_t **b;
} hmap_t;

static uint64_t hash_bytes(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static hnode_t **hmap_slot(hmap_t *m, const char *k, size_t n, uint64_t h)
{
    hnode_t **pp = &m->b[h & (m->nb - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->h == h && (*pp)->len == n && memcmp((*pp)->key, k, n) == 0) break;
    return pp;
}

static void *hmap_get(hmap_t *m, const char *k, size_t n)
{
    if (!m->nb) return NULL;
    hnode_t *e = *hmap_slot(m, k, n, hash_bytes(k, n));
    return e ? e->val : NULL;
}

static void hmap_grow(hmap_t *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    hnode_t **b = kz_calloc(nb, sizeof *b);
    for (size_t i = 0; i < m->nb; i++)
        for (hnode_t *e = m->b[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->h & (nb - 1)];
            b[e->h & (nb - 1)] = e;
        }
    kz_free(m->b);
    m->b = b;
    m->nb = nb;
}

/* Adds k -> val (k must be absent). */
static void hmap_put(hmap_t *m, const char *k, size_t n, void *val)
{
    if (m->n >= m->nb) hmap_grow(m);
    uint64_t h = hash_bytes(k, n);
    hnode_t *e = kz_malloc(sizeof *e + n + 1);
    e->h = h;
    e->val = val;
    e->len = n;
    memcpy(e->key, k, n);
    e->key[n] = '\0';
    hnode_t **slot = &m->b[h & (m->nb - 1)];
    e->next = *slot;
    *slot = e;
    m->n++;
}

static void *hmap_del(hmap_t *m, const char *k, size_t n)
{
    if (!m->nb) return NULL;
    hnode_t **pp = hmap_slot(m, k, n, hash_bytes(k, n)), *e = *pp;
    if (!e) return NULL;
    void *val = e->val;
    *pp = e->next;
    kz_free(e);
    m->n--;
    return val;
}

static void hmap_free(hmap_t *m, void (*freeval)(void *))
{
    for (size_t i = 0; i < m->nb; i++)
        for (hnode_t *e = m->b[i], *next; e; e = next) {
            next = e->next;
            if (freeval) freeval(e->val);
            kz_free(e);
        }
    kz_free(m->b);
    *m = (hmap_t){0};
}

/* ------------------------------------------------------------------------ */
/* Tickets                                                                  */

kz_mm_ticket_t *kz_mm_ticket_retain(kz_mm_ticket_t *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void kz_mm_ticket_release(kz_mm_ticket_t *t)
{
    if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
    kz_free(t->party_id);
    kz_mmq_free(t->query);
    json_decref(t->sprops);
    json_decref(t->nprops);
    for (int i = 0; i < t->nfields; i++) kz_free(t->fields[i].name);
    kz_free(t->fields);
    kz_free(t->members);
    kz_free(t);
}

static int cmp_field(const void *a, const void *b)
{
    return strcmp(((const kz_mm_field_t *)a)->name, ((const kz_mm_field_t *)b)->name);
}

static kz_mm_field_t *field_find(const kz_mm_ticket_t *t, const char *name)
{
    kz_mm_field_t key = {.name = (char *)name};
    return bsearch(&key, t->fields, (size_t)t->nfields, sizeof key, cmp_field);
}

void kz_mm_ticket_lookup(const void *doc, const char *field, kz_mmq_vkind_t want, kz_mmq_value_t *v)
{
    const kz_mm_field_t *f = field_find(doc, field);
    v->kind = KZ_MMQ_V_NONE;
    if (!f) return;
    if (want == KZ_MMQ_V_STR && f->str) {
        v->kind = KZ_MMQ_V_STR;
        v->str = f->str;
        v->len = f->len;
    } else if (want == KZ_MMQ_V_NUM && f->has_num) {
        v->kind = KZ_MMQ_V_NUM;
        v->num = f->num;
    }
}

/* Finds or appends the field name (owned by the caller's buffer: copied). */
static kz_mm_field_t *field_add(kz_mm_ticket_t *t, int *cap, const char *name)
{
    for (int i = 0; i < t->nfields; i++)
        if (strcmp(t->fields[i].name, name) == 0) return &t->fields[i];
    if (t->nfields == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        t->fields = kz_realloc(t->fields, sizeof *t->fields * (size_t)*cap);
    }
    kz_mm_field_t *f = &t->fields[t->nfields++];
    *f = (kz_mm_field_t){.name = kz_strdup(name)};
    return f;
}

static void field_num(kz_mm_ticket_t *t, int *cap, const char *name, double v)
{
    kz_mm_field_t *f = field_add(t, cap, name);
    f->has_num = true;
    f->num = v;
}

/* Builds a ticket from spec (not yet in a pool); NULL with *rc set. */
static kz_mm_ticket_t *ticket_new(const kz_mm_spec_t *spec, int64_t now_ms, int *rc)
{
    *rc = KZ_MM_EINVALID;
    if (spec->min_count < 2 || spec->max_count < spec->min_count || spec->count_multiple < 1 ||
        spec->min_count % spec->count_multiple || spec->max_count % spec->count_multiple)
        return NULL;
    if (spec->nmembers < 1 || (!spec->party_id && spec->nmembers != 1)) return NULL;
    if (spec->nmembers > spec->max_count) return NULL;
    const char *qt = spec->query && spec->query_len ? spec->query : "*";
    size_t ql = spec->query && spec->query_len ? spec->query_len : 1;
    /* Nakama substitutes "*" for an empty query; so does whitespace here. */
    bool blank = true;
    for (size_t i = 0; i < ql && blank; i++) blank = qt[i] == ' ' || qt[i] == '\t' || qt[i] == '\n' || qt[i] == '\r';
    if (blank) {
        qt = "*";
        ql = 1;
    }
    kz_mmq_t *q;
    if (kz_mmq_parse(qt, ql, &q, NULL, 0) != 0) {
        *rc = KZ_MM_EQUERY;
        return NULL;
    }
    kz_mm_ticket_t *t = kz_calloc(1, sizeof *t);
    atomic_init(&t->refs, 1);
    kz_uuid_v4(t->id);
    t->party_id = kz_strdup(spec->party_id);
    t->min_count = spec->min_count;
    t->max_count = spec->max_count;
    t->count_multiple = spec->count_multiple;
    t->created_ms = now_ms;
    t->query = q;
    t->sprops = spec->string_properties ? json_deep_copy(spec->string_properties) : json_object();
    t->nprops = json_object();
    t->members = kz_malloc(sizeof *t->members * (size_t)spec->nmembers);
    memcpy(t->members, spec->members, sizeof *t->members * (size_t)spec->nmembers);
    t->nmembers = spec->nmembers;

    int cap = 0;
    const char *k;
    json_t *v;
    char name[512];
    json_object_foreach((json_t *)t->sprops, k, v)
    {
        if (!json_is_string(v)) continue;
        snprintf(name, sizeof name, "properties.%s", k);
        kz_mm_field_t *f = field_add(t, &cap, name);
        f->str = json_string_value(v);
        f->len = json_string_length(v);
    }
    if (spec->numeric_properties) json_object_foreach((json_t *)spec->numeric_properties, k, v)
        {
            if (!json_is_number(v)) continue;
            json_object_set_new(t->nprops, k, json_real(json_number_value(v)));
            snprintf(name, sizeof name, "properties.%s", k);
            field_num(t, &cap, name, json_number_value(v));
        }
    kz_mm_field_t *f = field_add(t, &cap, "ticket");
    f->str = t->id;
    f->len = strlen(t->id);
    if (t->party_id) {
        f = field_add(t, &cap, "party_id");
        f->str = t->party_id;
        f->len = strlen(t->party_id);
    }
    field_num(t, &cap, "min_count", t->min_count);
    field_num(t, &cap, "max_count", t->max_count);
    field_num(t, &cap, "count_multiple", t->count_multiple);
    field_num(t, &cap, "created_at", (double)(now_ms / 1000));
    qsort(t->fields, (size_t)t->nfields, sizeof *t->fields, cmp_field);
    *rc = KZ_MM_OK;
    return t;
}

/* ------------------------------------------------------------------------ */
/* The pool                                                                 */

/* The tickets of one session or one party. */
typedef struct owner {
    int n;
    kz_mm_ticket_t *t[]; /* max_tickets; not retained: the pool's list holds them */
} owner_t;

struct kz_mm_pool {
    pthread_mutex_t lock;
    int max_tickets, max_intervals;
    uint64_t seq;
    int n;
    kz_mm_ticket_t *head, *tail; /* creation order; the list holds one reference each */
    hmap_t by_id;                /* ticket id -> ticket */
    hmap_t by_owner;             /* owner key -> owner_t */
    bool rev_precision;
    kz_mm_completion_t done[KZ_MM_COMPLETIONS]; /* a ring of the last matched tickets */
    int ndone, done_next;
    long long matched_total;
};

/* "s:<sid>" or "p:<party id>". */
static size_t owner_key(const kz_mm_ticket_t *t, const char *sid, const char *pid, char *out, size_t cap)
{
    if (t) {
        pid = t->party_id;
        sid = t->members[0].sid;
    }
    int n = pid ? snprintf(out, cap, "p:%s", pid) : snprintf(out, cap, "s:%s", sid);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

kz_mm_pool_t *kz_mm_pool_new(int max_tickets, int max_intervals)
{
    kz_mm_pool_t *p = kz_calloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->max_tickets = max_tickets > 0 ? max_tickets : 1;
    p->max_intervals = max_intervals > 0 ? max_intervals : 1;
    p->rev_precision = true;
    return p;
}

void kz_mm_pool_set_rev_precision(kz_mm_pool_t *p, bool on)
{
    pthread_mutex_lock(&p->lock);
    p->rev_precision = on;
    pthread_mutex_unlock(&p->lock);
}

static void owner_free(void *o)
{
    kz_free(o);
}

void kz_mm_pool_free(kz_mm_pool_t *p)
{
    if (!p) return;
    for (kz_mm_ticket_t *t = p->head, *next; t; t = next) {
        next = t->next;
        t->removed = true;
        kz_mm_ticket_release(t);
    }
    hmap_free(&p->by_id, NULL);
    hmap_free(&p->by_owner, owner_free);
    pthread_mutex_destroy(&p->lock);
    kz_free(p);
}

/* Takes t out of the pool (lock held) and drops the pool's reference. */
static void pool_unlink(kz_mm_pool_t *p, kz_mm_ticket_t *t)
{
    if (t->removed) return;
    t->removed = true;
    if (t->prev) t->prev->next = t->next;
    else p->head = t->next;
    if (t->next) t->next->prev = t->prev;
    else p->tail = t->prev;
    t->prev = t->next = NULL;
    hmap_del(&p->by_id, t->id, strlen(t->id));
    char key[300];
    size_t kl = owner_key(t, NULL, NULL, key, sizeof key);
    owner_t *o = hmap_get(&p->by_owner, key, kl);
    if (o) {
        for (int i = 0; i < o->n; i++)
            if (o->t[i] == t) {
                o->t[i] = o->t[--o->n];
                break;
            }
        if (o->n == 0) owner_free(hmap_del(&p->by_owner, key, kl));
    }
    p->n--;
    kz_mm_ticket_release(t);
}

int kz_mm_add(kz_mm_pool_t *p, const kz_mm_spec_t *spec, int64_t now_ms, char id[37])
{
    int rc;
    kz_mm_ticket_t *t = ticket_new(spec, now_ms, &rc);
    if (!t) return rc;
    char key[300];
    size_t kl = owner_key(t, NULL, NULL, key, sizeof key);
    pthread_mutex_lock(&p->lock);
    owner_t *o = hmap_get(&p->by_owner, key, kl);
    if (o && o->n >= p->max_tickets) {
        pthread_mutex_unlock(&p->lock);
        kz_mm_ticket_release(t);
        return KZ_MM_ETOO_MANY;
    }
    if (!o) {
        o = kz_malloc(sizeof *o + sizeof *o->t * (size_t)p->max_tickets);
        o->n = 0;
        hmap_put(&p->by_owner, key, kl, o);
    }
    o->t[o->n++] = t;
    t->seq = ++p->seq;
    t->prev = p->tail;
    if (p->tail) p->tail->next = t;
    else p->head = t;
    p->tail = t;
    hmap_put(&p->by_id, t->id, strlen(t->id), t);
    p->n++;
    memcpy(id, t->id, 37);
    pthread_mutex_unlock(&p->lock);
    return KZ_MM_OK;
}

int kz_mm_remove(kz_mm_pool_t *p, const char *ticket, const char *sid, const char *party_id)
{
    int rc = KZ_MM_ENOT_FOUND;
    pthread_mutex_lock(&p->lock);
    kz_mm_ticket_t *t = hmap_get(&p->by_id, ticket, strlen(ticket));
    if (t) {
        bool mine = party_id ? (t->party_id && strcmp(t->party_id, party_id) == 0)
                             : (!t->party_id && strcmp(t->members[0].sid, sid) == 0);
        if (mine) {
            pool_unlink(p, t);
            rc = KZ_MM_OK;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static int remove_owner(kz_mm_pool_t *p, const char *sid, const char *pid)
{
    char key[300];
    size_t kl = owner_key(NULL, sid, pid, key, sizeof key);
    int n = 0;
    pthread_mutex_lock(&p->lock);
    owner_t *o;
    while ((o = hmap_get(&p->by_owner, key, kl)) != NULL) {
        pool_unlink(p, o->t[0]); /* frees o with its last ticket */
        n++;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

int kz_mm_remove_session(kz_mm_pool_t *p, const char *sid) { return remove_owner(p, sid, NULL); }
int kz_mm_remove_party(kz_mm_pool_t *p, const char *party_id) { return remove_owner(p, NULL, party_id); }

void kz_mm_pool_stats(kz_mm_pool_t *p, kz_mm_pool_stats_t *out)
{
    pthread_mutex_lock(&p->lock);
    out->tickets = p->n;
    out->oldest_create_ms = p->head ? p->head->created_ms : 0;
    out->ncompletions = p->ndone;
    for (int i = 0; i < p->ndone; i++)
        out->completions[i] = p->done[(p->done_next - 1 - i + KZ_MM_COMPLETIONS) % KZ_MM_COMPLETIONS];
    pthread_mutex_unlock(&p->lock);
}

long long kz_mm_matched_total(kz_mm_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    long long n = p->matched_total;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int kz_mm_count(kz_mm_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    int n = p->n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Processing: the snapshot and its index                                   */

/* The index serves three kinds of candidate sources:
 *
 *   forward  tickets whose string properties equal the searcher's MUST
 *            terms: for each distinct set of MUST-term fields among the
 *            queries (a "signature", at most MAX_SIGS), every ticket is
 *            listed under its values for those fields;
 *   reverse  tickets whose queries' MUST terms the searcher satisfies:
 *            every ticket is listed under its own query's MUST-term values
 *            (tickets without MUST terms go to the "open" list), and the
 *            searcher looks itself up under each signature;
 *   range    the numeric values of each field some query compares in a
 *            MUST clause, sorted.
 *
 * A search reads the smallest of them (or the whole pool), so a ticket
 * with a narrow query reads a short list, and a `*` ticket reads only the
 * tickets that would accept it. Lists keep snapshot indices in ascending
 * order (oldest first) and count their matched entries; a list more than
 * half matched is compacted. */

#define MAX_SIGS 32
/* Candidates one search examines at most (a bound on the worst case: a
 * ticket whose query is far looser than the others'). */
#define SEARCH_CAP 20000

typedef struct posting {
    int n, cap, dead;
    int *v; /* snapshot indices, ascending (oldest first) */
} posting_t;

typedef struct nument {
    double v;
    int i;
} nument_t;

typedef struct numidx {
    int n, cap, dead;
    nument_t *e; /* sorted by value, then age */
} numidx_t;

typedef struct cand {
    int score, i;
} cand_t;

typedef struct sig {
    int nf;
    const char **fields; /* owned array; names borrowed from a query; sorted, unique */
} sig_t;

enum { SIG_NONE = -1, SIG_UNINDEXED = -2, SIG_IMPOSSIBLE = -3 };

typedef struct tinfo {
    int sig;       /* signature of its query's MUST terms, or SIG_* */
    int nin;
    void **in;     /* the lists it is in (a slice of snap_t.inbuf): posting_t,
                      or numidx_t tagged with the low bit */
    posting_t *rev; /* its reverse list (or the open list) */
} tinfo_t;

typedef struct snap {
    int n, live;
    kz_mm_ticket_t **t; /* retained */
    int *intervals;     /* as they were at the snapshot */
    bool *dead;         /* matched in this pass */
    int *nxt;           /* full scan: next index that may be alive (path-compressed) */
    tinfo_t *ti;
    void **inbuf; /* every tinfo_t.in, one allocation */
    int nsig;
    sig_t sigs[MAX_SIGS];
    hmap_t fwd, rev; /* key -> posting_t */
    posting_t open;  /* tickets whose queries have no (indexed) MUST terms */
    hmap_t nums;     /* field -> numidx_t */
    int max_intervals;
    bool rev_precision;
    cand_t *cand; /* scored candidates of one search (SEARCH_CAP) */
    char *kb; /* key scratch */
    size_t kcap;
} snap_t;

static void posting_free(void *v)
{
    kz_free(((posting_t *)v)->v);
    kz_free(v);
}

static void numidx_free(void *v)
{
    kz_free(((numidx_t *)v)->e);
    kz_free(v);
}

static int cmp_nument(const void *a, const void *b)
{
    const nument_t *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

static void tinfo_add(tinfo_t *ti, void *list)
{
    ti->in[ti->nin++] = list;
}

static void posting_push(snap_t *sn, posting_t *pl, int i, bool track)
{
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? pl->cap * 2 : 4;
        pl->v = kz_realloc(pl->v, sizeof *pl->v * (size_t)pl->cap);
    }
    pl->v[pl->n++] = i;
    if (track) tinfo_add(&sn->ti[i], pl);
}

/* The MUST term clauses of q sorted by field into out (at most
 * KZ_MMQ_MAX_CLAUSES); returns how many, or -1 when two of them ask one
 * field for different values (nothing can match). */
static int must_terms(const kz_mmq_t *q, const kz_mmq_clause_t **out)
{
    int n = 0;
    for (int c = 0; c < q->n; c++) {
        const kz_mmq_clause_t *cl = &q->c[c];
        if (cl->occur != KZ_MMQ_MUST || cl->kind != KZ_MMQ_TERM) continue;
        int k = n;
        while (k > 0 && strcmp(out[k - 1]->field, cl->field) > 0) k--;
        if (k > 0 && strcmp(out[k - 1]->field, cl->field) == 0) {
            if (out[k - 1]->len != cl->len || memcmp(out[k - 1]->str, cl->str, cl->len) != 0) return -1;
            continue; /* the same term twice */
        }
        memmove(&out[k + 1], &out[k], sizeof *out * (size_t)(n - k));
        out[k] = cl;
        n++;
    }
    return n;
}

/* Finds (or adds) the signature of the sorted terms; SIG_UNINDEXED when the
 * table is full. */
static int sig_of(snap_t *sn, const kz_mmq_clause_t *const *terms, int n)
{
    for (int s = 0; s < sn->nsig; s++) {
        if (sn->sigs[s].nf != n) continue;
        int f = 0;
        while (f < n && strcmp(sn->sigs[s].fields[f], terms[f]->field) == 0) f++;
        if (f == n) return s;
    }
    if (sn->nsig == MAX_SIGS) return SIG_UNINDEXED;
    sig_t *sg = &sn->sigs[sn->nsig];
    sg->nf = n;
    sg->fields = kz_malloc(sizeof *sg->fields * (size_t)n);
    for (int f = 0; f < n; f++) sg->fields[f] = terms[f]->field;
    return sn->nsig++;
}

/* Key scratch: the signature, then each value as length + bytes. */
static void key_start(snap_t *sn, int sig, size_t *kl)
{
    if (sn->kcap < 64) {
        sn->kcap = 256;
        sn->kb = kz_realloc(sn->kb, sn->kcap);
    }
    memcpy(sn->kb, &sig, sizeof sig);
    *kl = sizeof sig;
}

static void key_add(snap_t *sn, const char *v, size_t n, size_t *kl)
{
    uint32_t len = (uint32_t)n;
    if (*kl + sizeof len + n > sn->kcap) {
        sn->kcap = (*kl + sizeof len + n) * 2;
        sn->kb = kz_realloc(sn->kb, sn->kcap);
    }
    memcpy(sn->kb + *kl, &len, sizeof len);
    memcpy(sn->kb + *kl + sizeof len, v, n);
    *kl += sizeof len + n;
}

/* The key of ticket t's own values for signature s; false when t lacks one. */
static bool key_values(snap_t *sn, int s, const kz_mm_ticket_t *t, size_t *kl)
{
    key_start(sn, s, kl);
    for (int f = 0; f < sn->sigs[s].nf; f++) {
        const kz_mm_field_t *fd = field_find(t, sn->sigs[s].fields[f]);
        if (!fd || !fd->str) return false;
        key_add(sn, fd->str, fd->len, kl);
    }
    return true;
}

/* The key of a query's MUST terms (sorted) for its signature s. */
static void key_terms(snap_t *sn, int s, const kz_mmq_clause_t *const *terms, int n, size_t *kl)
{
    key_start(sn, s, kl);
    for (int f = 0; f < n; f++) key_add(sn, terms[f]->str, terms[f]->len, kl);
}

static posting_t *posting_at(hmap_t *m, const char *k, size_t kl)
{
    posting_t *pl = hmap_get(m, k, kl);
    if (!pl) {
        pl = kz_calloc(1, sizeof *pl);
        hmap_put(m, k, kl, pl);
    }
    return pl;
}

static void snap_index(snap_t *sn)
{
    const kz_mmq_clause_t *terms[KZ_MMQ_MAX_CLAUSES];
    sn->ti = kz_calloc((size_t)(sn->n ? sn->n : 1), sizeof *sn->ti);
    /* Signatures, reverse lists, and the numeric fields queries compare. */
    for (int i = 0; i < sn->n; i++) {
        const kz_mmq_t *q = sn->t[i]->query;
        int n = must_terms(q, terms);
        tinfo_t *ti = &sn->ti[i];
        if (n < 0) {
            ti->sig = SIG_IMPOSSIBLE; /* accepts no one: in no reverse list */
        } else if (n == 0 || (ti->sig = sig_of(sn, terms, n)) == SIG_UNINDEXED) {
            if (n == 0) ti->sig = SIG_NONE;
            ti->rev = &sn->open;
            posting_push(sn, &sn->open, i, false);
        } else {
            size_t kl;
            key_terms(sn, ti->sig, terms, n, &kl);
            ti->rev = posting_at(&sn->rev, sn->kb, kl);
            posting_push(sn, ti->rev, i, false);
        }
        for (int c = 0; c < q->n; c++) {
            const kz_mmq_clause_t *cl = &q->c[c];
            if (cl->occur != KZ_MMQ_MUST || cl->kind != KZ_MMQ_RANGE) continue;
            size_t fl = strlen(cl->field);
            if (!hmap_get(&sn->nums, cl->field, fl)) hmap_put(&sn->nums, cl->field, fl, kz_calloc(1, sizeof(numidx_t)));
        }
    }
    /* Forward lists: every ticket under its values for each signature. A
     * ticket is in at most one list per signature, its reverse list, and
     * one list per compared numeric field. */
    size_t stride = (size_t)sn->nsig + 1 + sn->nums.n;
    sn->inbuf = kz_malloc(sizeof *sn->inbuf * stride * (size_t)(sn->n ? sn->n : 1));
    for (int i = 0; i < sn->n; i++) {
        const kz_mm_ticket_t *t = sn->t[i];
        sn->ti[i].in = sn->inbuf + stride * (size_t)i;
        if (sn->ti[i].rev) tinfo_add(&sn->ti[i], sn->ti[i].rev);
        for (int s = 0; s < sn->nsig; s++) {
            size_t kl;
            if (key_values(sn, s, t, &kl)) posting_push(sn, posting_at(&sn->fwd, sn->kb, kl), i, true);
        }
        for (int f = 0; f < t->nfields && sn->nums.n; f++) {
            const kz_mm_field_t *fd = &t->fields[f];
            if (!fd->has_num) continue;
            numidx_t *ni = hmap_get(&sn->nums, fd->name, strlen(fd->name));
            if (!ni) continue;
            if (ni->n == ni->cap) {
                ni->cap = ni->cap ? ni->cap * 2 : 16;
                ni->e = kz_realloc(ni->e, sizeof *ni->e * (size_t)ni->cap);
            }
            ni->e[ni->n++] = (nument_t){fd->num, i};
            tinfo_add(&sn->ti[i], (char *)ni + 1); /* tagged: a numidx_t */
        }
    }
    for (size_t b = 0; b < sn->nums.nb; b++)
        for (hnode_t *e = sn->nums.b[b]; e; e = e->next) {
            numidx_t *ni = e->val;
            qsort(ni->e, (size_t)ni->n, sizeof *ni->e, cmp_nument);
        }
}

static void snap_free(snap_t *sn)
{
    for (int i = 0; i < sn->n; i++) kz_mm_ticket_release(sn->t[i]);
    kz_free(sn->inbuf);
    for (int s = 0; s < sn->nsig; s++) kz_free(sn->sigs[s].fields);
    kz_free(sn->ti);
    kz_free(sn->t);
    kz_free(sn->intervals);
    kz_free(sn->dead);
    kz_free(sn->nxt);
    kz_free(sn->open.v);
    kz_free(sn->kb);
    hmap_free(&sn->fwd, posting_free);
    hmap_free(&sn->rev, posting_free);
    hmap_free(&sn->nums, numidx_free);
    kz_free(sn->cand);
}

/* Marks i matched; lists more than half matched are compacted (never
 * while a search reads them: kills happen between searches). */
static void kill(snap_t *sn, int i)
{
    sn->dead[i] = true;
    sn->live--;
    tinfo_t *ti = &sn->ti[i];
    for (int k = 0; k < ti->nin; k++) {
        if ((uintptr_t)ti->in[k] & 1) {
            numidx_t *ni = (numidx_t *)((char *)ti->in[k] - 1);
            if (++ni->dead * 2 > ni->n && ni->n >= 64) {
                int o = 0;
                for (int x = 0; x < ni->n; x++)
                    if (!sn->dead[ni->e[x].i]) ni->e[o++] = ni->e[x];
                ni->n = o;
                ni->dead = 0;
            }
        } else {
            posting_t *pl = ti->in[k];
            if (++pl->dead * 2 > pl->n && pl->n >= 64) {
                int o = 0;
                for (int x = 0; x < pl->n; x++)
                    if (!sn->dead[pl->v[x]]) pl->v[o++] = pl->v[x];
                pl->n = o;
                pl->dead = 0;
            }
        }
    }
}

/* The first index >= i not matched yet (sn->n when none). */
static int next_alive(snap_t *sn, int i)
{
    int r = i;
    while (r < sn->n && sn->dead[r]) r = sn->nxt[r];
    while (i < sn->n && sn->dead[i] && i != r) {
        int t = sn->nxt[i];
        sn->nxt[i] = r;
        i = t;
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Processing: candidate sources                                            */

enum { SRC_SCAN, SRC_LISTS, SRC_RANGE, SRC_EMPTY };

typedef struct src {
    int kind;
    int nl;
    posting_t *l[MAX_SIGS + 1];
    int pos[MAX_SIGS + 1];
    numidx_t *ni;
    int a, b; /* SRC_RANGE: [a, b) of ni; SRC_SCAN: a is the next index */
} src_t;

/* First entry of ni with value above lo (or at it when incl). */
static int lower_idx(const numidx_t *ni, double lo, bool incl)
{
    int a = 0, b = ni->n;
    while (a < b) {
        int m = a + (b - a) / 2;
        bool before = incl ? ni->e[m].v < lo : ni->e[m].v <= lo;
        if (before) a = m + 1;
        else b = m;
    }
    return a;
}

/* First entry of ni with value beyond hi (or at it when !incl). */
static int upper_idx(const numidx_t *ni, double hi, bool incl)
{
    int a = 0, b = ni->n;
    while (a < b) {
        int m = a + (b - a) / 2;
        bool within = incl ? ni->e[m].v <= hi : ni->e[m].v < hi;
        if (within) a = m + 1;
        else b = m;
    }
    return a;
}

static int live_of(const posting_t *pl)
{
    return pl->n - pl->dead;
}

/* Picks the smallest source for ticket i: the whole pool, its forward
 * list, its reverse lists, or one numeric range of its MUST clauses. */
static void src_pick(snap_t *sn, int i, src_t *src)
{
    const kz_mm_ticket_t *t = sn->t[i];
    const kz_mmq_t *q = t->query;
    const tinfo_t *ti = &sn->ti[i];
    *src = (src_t){.kind = SRC_SCAN};
    int best = sn->live;
    if (ti->sig == SIG_IMPOSSIBLE) {
        src->kind = SRC_EMPTY;
        return;
    }
    /* forward */
    if (ti->sig >= 0) {
        const kz_mmq_clause_t *terms[KZ_MMQ_MAX_CLAUSES];
        int n = must_terms(q, terms);
        size_t kl;
        key_terms(sn, ti->sig, terms, n, &kl);
        posting_t *pl = hmap_get(&sn->fwd, sn->kb, kl);
        if (!pl || live_of(pl) == 0) {
            src->kind = SRC_EMPTY;
            return;
        }
        if (live_of(pl) < best) {
            best = live_of(pl);
            *src = (src_t){.kind = SRC_LISTS, .nl = 1, .l = {pl}};
        }
    }
    /* ranges */
    for (int c = 0; c < q->n; c++) {
        const kz_mmq_clause_t *cl = &q->c[c];
        if (cl->occur != KZ_MMQ_MUST || cl->kind != KZ_MMQ_RANGE) continue;
        bool seen = false;
        for (int e = 0; e < c && !seen; e++)
            seen = q->c[e].occur == KZ_MMQ_MUST && q->c[e].kind == KZ_MMQ_RANGE && strcmp(q->c[e].field, cl->field) == 0;
        if (seen) continue;
        double lo = -INFINITY, hi = INFINITY;
        bool loi = true, hii = true;
        for (int e = c; e < q->n; e++) {
            const kz_mmq_clause_t *x = &q->c[e];
            if (x->occur != KZ_MMQ_MUST || x->kind != KZ_MMQ_RANGE || strcmp(x->field, cl->field) != 0) continue;
            if (x->lo > lo || (x->lo == lo && !x->lo_incl)) {
                lo = x->lo;
                loi = x->lo_incl;
            }
            if (x->hi < hi || (x->hi == hi && !x->hi_incl)) {
                hi = x->hi;
                hii = x->hi_incl;
            }
        }
        numidx_t *ni = hmap_get(&sn->nums, cl->field, strlen(cl->field));
        int a = ni ? lower_idx(ni, lo, loi) : 0, b = ni ? upper_idx(ni, hi, hii) : 0;
        if (b <= a) {
            src->kind = SRC_EMPTY;
            return;
        }
        if (b - a < best) {
            best = b - a;
            *src = (src_t){.kind = SRC_RANGE, .ni = ni, .a = a, .b = b};
        }
    }
    /* reverse: the tickets whose MUST terms t satisfies, and the open ones
     * (only when candidates' queries must accept the searcher) */
    if (!sn->rev_precision) return;
    src_t rev = {.kind = SRC_LISTS};
    int total = 0;
    if (live_of(&sn->open)) {
        rev.l[rev.nl++] = &sn->open;
        total += live_of(&sn->open);
    }
    for (int s = 0; s < sn->nsig && total < best; s++) {
        size_t kl;
        if (!key_values(sn, s, t, &kl)) continue;
        posting_t *pl = hmap_get(&sn->rev, sn->kb, kl);
        if (!pl || !live_of(pl)) continue;
        rev.l[rev.nl++] = pl;
        total += live_of(pl);
    }
    if (total < best) *src = total ? rev : (src_t){.kind = SRC_EMPTY};
}

/* The next candidate not matched yet, or -1. */
static int src_next(snap_t *sn, src_t *src)
{
    switch (src->kind) {
    case SRC_SCAN: {
        int j = next_alive(sn, src->a);
        if (j >= sn->n) return -1;
        src->a = j + 1;
        return j;
    }
    case SRC_LISTS: {
        /* a merge of ascending lists (they never share a ticket) */
        int best = -1, bl = -1;
        for (int l = 0; l < src->nl; l++) {
            posting_t *pl = src->l[l];
            while (src->pos[l] < pl->n && sn->dead[pl->v[src->pos[l]]]) src->pos[l]++;
            if (src->pos[l] < pl->n && (best < 0 || pl->v[src->pos[l]] < best)) {
                best = pl->v[src->pos[l]];
                bl = l;
            }
        }
        if (bl >= 0) src->pos[bl]++;
        return best;
    }
    case SRC_RANGE:
        while (src->a < src->b) {
            int j = src->ni->e[src->a++].i;
            if (!sn->dead[j]) return j;
        }
        return -1;
    default: return -1;
    }
}

/* ------------------------------------------------------------------------ */
/* Processing: forming groups                                               */

typedef struct grp {
    int n, cap;
    int *g;   /* snapshot indices, searcher first */
    int size; /* players */
} grp_t;

static void grp_push(grp_t *g, int i, int players)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->g = kz_realloc(g->g, sizeof *g->g * (size_t)g->cap);
    }
    g->g[g->n++] = i;
    g->size += players;
}

static bool shares_session(const kz_mm_ticket_t *a, const kz_mm_ticket_t *b)
{
    for (int x = 0; x < a->nmembers; x++)
        for (int y = 0; y < b->nmembers; y++)
            if (strcmp(a->members[x].sid, b->members[y].sid) == 0) return true;
    return false;
}

/* lo, hi: the group's bounds (the largest min, the smallest max). */
static void grp_bounds(const snap_t *sn, const grp_t *g, int *lo, int *hi)
{
    *lo = 0;
    *hi = 1 << 30;
    for (int k = 0; k < g->n; k++) {
        const kz_mm_ticket_t *t = sn->t[g->g[k]];
        if (t->min_count > *lo) *lo = t->min_count;
        if (t->max_count < *hi) *hi = t->max_count;
    }
}

static bool size_ok(const snap_t *sn, const grp_t *g, int size)
{
    int lo, hi;
    grp_bounds(sn, g, &lo, &hi);
    if (size < lo || size > hi) return false;
    for (int k = 0; k < g->n; k++)
        if (size % sn->t[g->g[k]]->count_multiple) return false;
    return true;
}

/* May candidate j join group g? */
static bool fits(const snap_t *sn, const grp_t *g, int lo, int hi, int j)
{
    const kz_mm_ticket_t *c = sn->t[j];
    int nlo = lo > c->min_count ? lo : c->min_count, nhi = hi < c->max_count ? hi : c->max_count;
    if (nlo > nhi || g->size + c->nmembers > nhi) return false;
    for (int k = 0; k < g->n; k++) {
        const kz_mm_ticket_t *m = sn->t[g->g[k]];
        if (m->party_id && c->party_id && strcmp(m->party_id, c->party_id) == 0) return false;
        if (shares_session(m, c)) return false;
    }
    if (!sn->rev_precision) /* the searcher's query alone decides */
        return kz_mmq_eval(sn->t[g->g[0]]->query, kz_mm_ticket_lookup, c, NULL);
    for (int k = 0; k < g->n; k++) {
        const kz_mm_ticket_t *m = sn->t[g->g[k]];
        if (!kz_mmq_eval(m->query, kz_mm_ticket_lookup, c, NULL)) return false;
        if (!kz_mmq_eval(c->query, kz_mm_ticket_lookup, m, NULL)) return false;
    }
    return true;
}

/* Drops candidates, newest first, to reach the largest valid size (the
 * searcher's last interval). */
static bool settle(const snap_t *sn, grp_t *g)
{
    int lo, hi;
    grp_bounds(sn, g, &lo, &hi);
    int target = -1;
    for (int s = g->size < hi ? g->size : hi; s >= lo && target < 0; s--) {
        bool ok = true;
        for (int k = 0; k < g->n && ok; k++) ok = s % sn->t[g->g[k]]->count_multiple == 0;
        if (ok) target = s;
    }
    if (target < 0) return false;
    for (int k = g->n - 1; k >= 1 && g->size > target; k--) {
        int players = sn->t[g->g[k]]->nmembers;
        if (g->size - players >= target) {
            memmove(&g->g[k], &g->g[k + 1], sizeof *g->g * (size_t)(g->n - k - 1));
            g->n--;
            g->size -= players;
        }
    }
    return g->size == target && size_ok(sn, g, g->size);
}

/* Adds candidate j to g when it fits, narrowing the bounds lo..hi. */
static void try_add(const snap_t *sn, grp_t *g, int *lo, int *hi, int j)
{
    if (!fits(sn, g, *lo, *hi, j)) return;
    const kz_mm_ticket_t *c = sn->t[j];
    grp_push(g, j, c->nmembers);
    if (c->min_count > *lo) *lo = c->min_count;
    if (c->max_count < *hi) *hi = c->max_count;
}

static int cmp_cand(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i); /* older first */
}

/* Searches for ticket i; true with g filled when a group forms. Candidates
 * are taken oldest first; when the searcher's query has SHOULD clauses
 * that can tell candidates apart, those matching more clauses come first
 * (the score: matched MUST and SHOULD clauses). */
static bool search(snap_t *sn, int i, grp_t *g)
{
    const kz_mm_ticket_t *t = sn->t[i];
    const kz_mmq_t *q = t->query;
    bool last = sn->intervals[i] + 1 >= sn->max_intervals || t->min_count == t->max_count;
    g->n = 0;
    g->size = 0;
    grp_push(g, i, t->nmembers);
    int lo = t->min_count, hi = t->max_count;
    if (g->size >= hi) return false; /* a party as big as its max: nothing to add */
    src_t src;
    src_pick(sn, i, &src);
    int j, examined = 0;
    if (q->nshould > 0 && q->n > 1) {
        /* A candidate matching every clause cannot be outranked: it is
         * tried at once (so a full group usually forms without reading
         * the whole source); the others wait, and are tried in score
         * order once the source is read. */
        if (!sn->cand) sn->cand = kz_malloc(sizeof *sn->cand * SEARCH_CAP);
        int nc = 0, score, top = q->nmust + q->nshould;
        while (g->size < hi && examined < SEARCH_CAP && (j = src_next(sn, &src)) >= 0) {
            examined++;
            if (j == i || !kz_mmq_eval(q, kz_mm_ticket_lookup, sn->t[j], &score)) continue;
            if (score >= top)
                try_add(sn, g, &lo, &hi, j);
            else
                sn->cand[nc++] = (cand_t){score, j};
        }
        if (g->size < hi) {
            qsort(sn->cand, (size_t)nc, sizeof *sn->cand, cmp_cand);
            for (int k = 0; k < nc && g->size < hi; k++) try_add(sn, g, &lo, &hi, sn->cand[k].i);
        }
    } else {
        while (g->size < hi && examined < SEARCH_CAP && (j = src_next(sn, &src)) >= 0) {
            examined++;
            if (j != i) try_add(sn, g, &lo, &hi, j);
        }
    }
    if (g->n < 2) return false;
    if (g->size >= hi && size_ok(sn, g, g->size)) return true;
    return last && settle(sn, g);
}

/* ------------------------------------------------------------------------ */
/* Processing: the pass                                                     */

static double ms_since(uint64_t t0)
{
    return (double)(kz_mono_ns() - t0) / 1e6;
}

void kz_mm_groups_free(kz_mm_group_t *groups, int n)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < groups[i].n; k++) kz_mm_ticket_release(groups[i].t[k]);
        kz_free(groups[i].t);
    }
    kz_free(groups);
}

void kz_mm_process(kz_mm_pool_t *p, kz_mm_matched_fn on_matched, void *arg, kz_mm_stats_t *stats)
{
    uint64_t t0 = kz_mono_ns();
    kz_mm_stats_t st = {0};
    snap_t sn = {0};

    /* 1. The snapshot, under the lock. */
    pthread_mutex_lock(&p->lock);
    sn.max_intervals = p->max_intervals;
    sn.rev_precision = p->rev_precision;
    sn.n = p->n;
    sn.t = kz_malloc(sizeof *sn.t * (size_t)(sn.n ? sn.n : 1));
    sn.intervals = kz_malloc(sizeof *sn.intervals * (size_t)(sn.n ? sn.n : 1));
    int k = 0;
    for (kz_mm_ticket_t *t = p->head; t; t = t->next) {
        sn.intervals[k] = t->intervals;
        sn.t[k++] = kz_mm_ticket_retain(t);
    }
    pthread_mutex_unlock(&p->lock);
    st.tickets = sn.n;
    st.snapshot_ms = ms_since(t0);

    /* 2. The index and the search, without it. */
    sn.dead = kz_calloc((size_t)(sn.n ? sn.n : 1), sizeof *sn.dead);
    sn.nxt = kz_malloc(sizeof *sn.nxt * (size_t)(sn.n ? sn.n : 1));
    for (int i = 0; i < sn.n; i++) sn.nxt[i] = i + 1;
    sn.live = sn.n;
    snap_index(&sn);
    st.index_ms = ms_since(t0) - st.snapshot_ms;
    uint64_t t1 = kz_mono_ns();
    int ng = 0, gcap = 0;
    kz_mm_group_t *groups = NULL;
    grp_t g = {0};
    for (int i = 0; i < sn.n; i++) {
        if (sn.dead[i] || sn.intervals[i] >= sn.max_intervals) continue;
        if (!search(&sn, i, &g)) continue;
        if (ng == gcap) {
            gcap = gcap ? gcap * 2 : 16;
            groups = kz_realloc(groups, sizeof *groups * (size_t)gcap);
        }
        kz_mm_group_t *out = &groups[ng++];
        out->n = g.n;
        out->t = kz_malloc(sizeof *out->t * (size_t)g.n);
        for (int x = 0; x < g.n; x++) {
            kill(&sn, g.g[x]);
            out->t[x] = kz_mm_ticket_retain(sn.t[g.g[x]]);
        }
    }
    kz_free(g.g);
    st.match_ms = ms_since(t1);

    /* 3. Commit under the lock: a group whose tickets are all still in
     * the pool leaves it; the others age by one interval. */
    uint64_t t2 = kz_mono_ns();
    int64_t now_ms = kz_now_ms();
    pthread_mutex_lock(&p->lock);
    int kept = 0;
    for (int x = 0; x < ng; x++) {
        bool all = true;
        for (int y = 0; y < groups[x].n && all; y++) all = !groups[x].t[y]->removed;
        if (!all) {
            for (int y = 0; y < groups[x].n; y++) kz_mm_ticket_release(groups[x].t[y]);
            kz_free(groups[x].t);
            st.discarded++;
            continue;
        }
        for (int y = 0; y < groups[x].n; y++) {
            pool_unlink(p, groups[x].t[y]);
            p->done[p->done_next] = (kz_mm_completion_t){groups[x].t[y]->created_ms, now_ms};
            p->done_next = (p->done_next + 1) % KZ_MM_COMPLETIONS;
            if (p->ndone < KZ_MM_COMPLETIONS) p->ndone++;
        }
        p->matched_total += groups[x].n;
        st.matched += groups[x].n;
        groups[kept++] = groups[x];
    }
    for (int i = 0; i < sn.n; i++)
        if (!sn.t[i]->removed && sn.t[i]->intervals < (1 << 30)) sn.t[i]->intervals++;
    pthread_mutex_unlock(&p->lock);
    st.commit_ms = ms_since(t2);
    st.groups = kept;

    snap_free(&sn);
    st.total_ms = ms_since(t0);
    if (stats) *stats = st;
    if (on_matched)
        on_matched(groups, kept, arg);
    else
        kz_mm_groups_free(groups, kept);
}

/* ------------------------------------------------------------------------ */
/* Tokens                                                                   */

static void hmac(const char *key, const char *msg, size_t len, unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
}

char *kz_mm_token_sign(const char *mid, int64_t exp, const char *key)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    json_t *claims = json_pack("{s:I, s:s}", "exp", (json_int_t)exp, "mid", mid);
    char *payload = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(claims);
    char *h = kz_b64url_encode(header, sizeof header - 1);
    char *pl = kz_b64url_encode(payload, strlen(payload));
    free(payload);
    char *signing = kz_asprintf("%s.%s", h, pl);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    hmac(key, signing, strlen(signing), mac);
    char *sig = kz_b64url_encode(mac, sizeof mac);
    char *tok = kz_asprintf("%s.%s", signing, sig);
    kz_free(h);
    kz_free(pl);
    kz_free(signing);
    kz_free(sig);
    return tok;
}

bool kz_mm_token_verify(const char *token, size_t len, const char *key, int64_t now, char *mid, size_t midlen)
{
    if (len == 0 || len > KZ_JWT_MAX_LEN) return false;
    const char *d1 = memchr(token, '.', len);
    if (!d1) return false;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) return false;
    bool ok = false;
    size_t hl, pl, sl;
    unsigned char *h = kz_b64url_decode(token, (size_t)(d1 - token), &hl);
    unsigned char *p = kz_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
    unsigned char *s = kz_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), &sl);
    json_t *hj = NULL, *pj = NULL;
    if (!h || !p || !s || sl != crypto_auth_hmacsha256_BYTES) goto out;
    hj = json_loadb((const char *)h, hl, 0, NULL);
    const char *alg = json_string_value(json_object_get(hj, "alg"));
    if (!alg || strcmp(alg, "HS256") != 0) goto out;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    hmac(key, token, (size_t)(d2 - token), mac);
    if (sodium_memcmp(mac, s, sizeof mac) != 0) goto out;
    pj = json_loadb((const char *)p, pl, 0, NULL);
    json_t *m = json_object_get(pj, "mid"), *e = json_object_get(pj, "exp");
    if (!json_is_string(m) || !json_is_integer(e) || json_integer_value(e) <= now) goto out;
    if (json_string_length(m) >= midlen) goto out;
    memcpy(mid, json_string_value(m), json_string_length(m) + 1);
    ok = true;
out:
    json_decref(hj);
    json_decref(pj);
    kz_free(h);
    kz_free(p);
    kz_free(s);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* The server: delivery                                                     */

static struct {
    kz_mm_pool_t *pool;
    kz_app_t *app;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop, running;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

kz_mm_pool_t *kz_mm_server_pool(void) { return G.pool; }

static json_t *user_json(const kz_mm_ticket_t *t, const kz_mm_member_t *m)
{
    json_t *u = json_object(), *pr = json_object();
    json_object_set_new(pr, "user_id", json_string(m->uid));
    json_object_set_new(pr, "session_id", json_string(m->sid));
    json_object_set_new(pr, "username", json_string(m->username));
    json_object_set_new(u, "presence", pr);
    if (t->party_id) json_object_set_new(u, "party_id", json_string(t->party_id));
    if (json_object_size(t->sprops)) json_object_set_new(u, "string_properties", json_deep_copy(t->sprops));
    if (json_object_size(t->nprops)) json_object_set_new(u, "numeric_properties", json_deep_copy(t->nprops));
    return u;
}

/* Sends matchmaker_matched to every member of the group: the match id the
 * hook returned, or a token for a new relayed match. Any thread. */
static void deliver(const kz_mm_group_t *g, const char *match_id)
{
    const kz_config_t *cfg = G.app->cfg;
    char *token = NULL;
    if (!match_id) {
        char uuid[37], mid[40];
        kz_uuid_v4(uuid);
        snprintf(mid, sizeof mid, "%s.", uuid);
        token = kz_mm_token_sign(mid, kz_now_sec() + 30, cfg->session.encryption_key);
    }
    json_t *users = json_array();
    for (int k = 0; k < g->n; k++)
        for (int m = 0; m < g->t[k]->nmembers; m++) json_array_append_new(users, user_json(g->t[k], &g->t[k]->members[m]));
    int u = 0;
    for (int k = 0; k < g->n; k++) {
        const kz_mm_ticket_t *t = g->t[k];
        for (int m = 0; m < t->nmembers; m++, u++) {
            kz_rt_sess_t *s = kz_rt_session_find(t->members[m].sid);
            if (!s) continue;
            json_t *mm = json_object();
            json_object_set_new(mm, "ticket", json_string(t->id));
            if (match_id)
                json_object_set_new(mm, "match_id", json_string(match_id));
            else
                json_object_set_new(mm, "token", json_string(token));
            json_object_set_new(mm, "users", json_deep_copy(users));
            json_object_set_new(mm, "self", json_deep_copy(json_array_get(users, (size_t)u)));
            kz_rt_out_t *out = kz_rt_out(kz_rt_envelope(NULL, "matchmaker_matched", mm));
            kz_rt_send(s, out);
            kz_rt_out_free(out);
            kz_rt_sess_release(s);
        }
    }
    json_decref(users);
    kz_free(token);
}

/* The matched hook's entries: {presence, properties, party_id?} per player. */
typedef struct hook_res {
    const kz_mm_group_t *g;
    char *match_id;
} hook_res_t;

static int push_entries(lua_State *L, void *arg)
{
    const kz_mm_group_t *g = ((hook_res_t *)arg)->g;
    json_t *entries = json_array();
    for (int k = 0; k < g->n; k++) {
        const kz_mm_ticket_t *t = g->t[k];
        json_t *props = json_deep_copy(t->sprops);
        json_object_update(props, t->nprops);
        for (int m = 0; m < t->nmembers; m++) {
            json_t *e = json_object(), *pr = json_object();
            json_object_set_new(pr, "user_id", json_string(t->members[m].uid));
            json_object_set_new(pr, "session_id", json_string(t->members[m].sid));
            json_object_set_new(pr, "username", json_string(t->members[m].username));
            json_object_set_new(pr, "node", json_string(G.app->cfg->name));
            json_object_set_new(e, "presence", pr);
            json_object_set_new(e, "properties", json_incref(props));
            if (t->party_id) json_object_set_new(e, "party_id", json_string(t->party_id));
            json_array_append_new(entries, e);
        }
        json_decref(props);
    }
    kz_lua_push_json(L, entries);
    json_decref(entries);
    return 1;
}

static int take_match_id(lua_State *L, void *arg, kz_lua_error_t *err)
{
    hook_res_t *r = arg;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (n) r->match_id = kz_strndup(s, n);
        return KZ_LUA_OK;
    }
    if (lua_isnil(L, -1)) return KZ_LUA_OK;
    err->code = 13;
    snprintf(err->message, sizeof err->message, "matchmaker matched hook must return a match id string or nil");
    return KZ_LUA_ERROR;
}

typedef struct hook_job {
    kz_job_t job;
    kz_mm_group_t *groups;
    int n;
} hook_job_t;

static void hook_job_run(kz_job_t *job, void *worker_ctx)
{
    hook_job_t *hj = (hook_job_t *)job;
    kz_worker_t *w = worker_ctx;
    kz_worker_set_current(w);
    for (int i = 0; i < hj->n; i++) {
        hook_res_t r = {.g = &hj->groups[i]};
        kz_lua_ctx_t ctx = {.mode = "matchmaker"};
        kz_lua_error_t err;
        int rc = kz_lua_callback(&w->lua, w->db, &ctx, KZ_LUA_REG_MATCHED, push_entries, take_match_id, &r, &err);
        if (rc == KZ_LUA_ERROR) kz_log_warn("matchmaker matched hook raised: %s", err.message);
        deliver(&hj->groups[i], r.match_id);
        kz_free(r.match_id);
    }
    kz_worker_set_current(NULL);
}

static void hook_job_done(kz_job_t *job)
{
    hook_job_t *hj = (hook_job_t *)job;
    kz_mm_groups_free(hj->groups, hj->n);
    kz_free(hj);
}

/* kz_mm_matched_fn of the server (the processing thread). */
static void on_matched(kz_mm_group_t *groups, int n, void *arg)
{
    if (n == 0) {
        kz_mm_groups_free(groups, n);
        return;
    }
    if (kz_lua_module_count() > 0 && G.app->pool) {
        /* A matched hook may be registered: the groups go to a worker. */
        hook_job_t *hj = kz_calloc(1, sizeof *hj);
        hj->job.run = hook_job_run;
        hj->job.done = hook_job_done;
        hj->groups = groups;
        hj->n = n;
        if (kz_pool_submit(G.app->pool, &hj->job)) return;
        kz_log_warn("matchmaker: the worker pool is full; %d group(s) get tokens without the matched hook", n);
        kz_free(hj);
    }
    for (int i = 0; i < n; i++) deliver(&groups[i], NULL);
    kz_mm_groups_free(groups, n);
}

/* ------------------------------------------------------------------------ */
/* The server: the processing thread                                        */

static void *mm_thread(void *arg)
{
    int interval = G.app->cfg->matchmaker.interval_sec;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&G.lock);
    while (!G.stop) {
        next.tv_sec += interval;
        while (!G.stop && pthread_cond_timedwait(&G.cond, &G.lock, &next) == 0) {}
        if (G.stop) break;
        pthread_mutex_unlock(&G.lock);
        kz_mm_stats_t st;
        kz_mm_process(G.pool, on_matched, NULL, &st);
        if (st.tickets)
            kz_log_debug("matchmaker: %d tickets, %d groups (%d tickets) in %.2f ms (index %.2f ms)", st.tickets,
                         st.groups, st.matched, st.total_ms, st.index_ms);
        /* A pass longer than the interval starts the next one at once. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec) next = now;
        pthread_mutex_lock(&G.lock);
    }
    pthread_mutex_unlock(&G.lock);
    return NULL;
}

static void on_session_close(kz_rt_sess_t *s)
{
    if (G.pool) kz_mm_remove_session(G.pool, s->id);
}

static double metric_tickets(void) { return G.pool ? kz_mm_count(G.pool) : 0; }
static double metric_matched(void) { return G.pool ? (double)kz_mm_matched_total(G.pool) : 0; }

int kz_mm_start(kz_app_t *app)
{
    kz_metrics_register_value("kizuna_matchmaker_tickets", "gauge", "Matchmaker tickets waiting.", metric_tickets);
    kz_metrics_register_value("kizuna_matchmaker_matched_total", "counter", "Matchmaker tickets matched.",
                              metric_matched);
    G.app = app;
    G.pool = kz_mm_pool_new(app->cfg->matchmaker.max_tickets, app->cfg->matchmaker.max_intervals);
    kz_mm_pool_set_rev_precision(G.pool, app->cfg->matchmaker.rev_precision);
    G.stop = false;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&G.cond, &ca);
    pthread_condattr_destroy(&ca);
    static bool hooked;
    if (!hooked) {
        kz_rt_add_close_hook(on_session_close);
        hooked = true;
    }
    if (pthread_create(&G.thread, NULL, mm_thread, NULL) != 0) {
        kz_mm_pool_free(G.pool);
        G.pool = NULL;
        return -1;
    }
    G.running = true;
    return 0;
}

void kz_mm_stop(void)
{
    if (!G.running) return;
    pthread_mutex_lock(&G.lock);
    G.stop = true;
    pthread_cond_signal(&G.cond);
    pthread_mutex_unlock(&G.lock);
    pthread_join(G.thread, NULL);
    G.running = false;
    pthread_cond_destroy(&G.cond);
    /* The pool stays until exit: socket close hooks may still run. */
}

/* ------------------------------------------------------------------------ */
/* The server: socket handlers                                              */

/* Reads an int32 protobuf-JSON field; false when present and not one. */
static bool read_i32(const json_t *v, int *out, int def)
{
    int64_t x;
    if (!v) {
        *out = def;
        return true;
    }
    if (!kz_rt_int64(v, &x) || x < INT32_MIN || x > INT32_MAX) return false;
    *out = (int)x;
    return true;
}

/* numeric_properties: an object of numbers (or numeric strings, as
 * protobuf-JSON allows for doubles); an owned object of reals, or NULL. */
static json_t *read_numeric(const json_t *o)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        double d;
        if (json_is_number(v)) {
            d = json_number_value(v);
        } else if (json_is_string(v)) {
            char *end;
            const char *s = json_string_value(v);
            d = strtod(s, &end);
            if (!*s || *end || !isfinite(d)) {
                json_decref(out);
                return NULL;
            }
        } else {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, json_real(d));
    }
    return out;
}

/* See realtime/matchmaker.h. Nakama's checks and messages. */
bool kz_rt_mm_read_add(kz_ws_t *ws, const char *cid, json_t **v, kz_mm_spec_t *spec, json_t **nprops)
{
    int min, max, mult;
    if (!read_i32(v[0], &min, 0) || !read_i32(v[1], &max, 0) || !read_i32(v[5], &mult, 1)) {
        kz_rt_parse_error(ws);
        return false;
    }
    json_t *np = NULL;
    if (v[4] && !(np = read_numeric(v[4]))) {
        kz_rt_parse_error(ws);
        return false;
    }
    const char *err = NULL;
    if (min < 2)
        err = "Invalid minimum count, must be >= 2";
    else if (max < min)
        err = "Invalid maximum count, must be >= minimum count";
    else if (mult < 1)
        err = "Invalid count multiple, must be >= 1";
    else if (min % mult)
        err = "Invalid count multiple for minimum count, must divide";
    else if (max % mult)
        err = "Invalid count multiple for maximum count, must divide";
    if (err) {
        json_decref(np);
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, err);
        return false;
    }
    *spec = (kz_mm_spec_t){
        .query = v[2] ? json_string_value(v[2]) : NULL,
        .query_len = v[2] ? json_string_length(v[2]) : 0,
        .min_count = min,
        .max_count = max,
        .count_multiple = mult,
        .string_properties = v[3],
        .numeric_properties = np,
    };
    *nprops = np;
    return true;
}

void kz_rt_matchmaker_add(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {
        {"min_count", "minCount", KZ_RT_F_INT64},
        {"max_count", "maxCount", KZ_RT_F_INT64},
        {"query", "query", KZ_RT_F_STRING},
        {"string_properties", "stringProperties", KZ_RT_F_MAP},
        {"numeric_properties", "numericProperties", KZ_RT_F_OBJECT},
        {"count_multiple", "countMultiple", KZ_RT_F_INT64},
    };
    json_t *v[6];
    if (!kz_rt_fields_read(msg, f, 6, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    kz_mm_spec_t spec;
    json_t *np;
    if (!kz_rt_mm_read_add(ws, cid, v, &spec, &np)) return;
    kz_mm_member_t me;
    memcpy(me.sid, s->id, sizeof me.sid);
    memcpy(me.uid, s->uid, sizeof me.uid);
    snprintf(me.username, sizeof me.username, "%s", s->username);
    spec.members = &me;
    spec.nmembers = 1;
    char id[37];
    int rc = G.pool ? kz_mm_add(G.pool, &spec, kz_now_ms(), id) : KZ_MM_EINVALID;
    json_decref(np);
    if (rc != KZ_MM_OK) {
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, "Error adding to matchmaker");
        return;
    }
    json_t *m = json_object();
    json_object_set_new(m, "ticket", json_string(id));
    kz_rt_reply(ws, kz_rt_envelope(cid, "matchmaker_ticket", m));
}

void kz_rt_matchmaker_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"ticket", "ticket", KZ_RT_F_STRING}};
    json_t *v[1];
    if (!kz_rt_fields_read(msg, f, 1, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    if (!v[0] || json_string_length(v[0]) == 0) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid matchmaker ticket");
        return;
    }
    if (!G.pool || kz_mm_remove(G.pool, json_string_value(v[0]), s->id, NULL) != KZ_MM_OK) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Matchmaker ticket not found");
        return;
    }
    kz_rt_reply(ws, kz_rt_envelope(cid, NULL, NULL));
}
