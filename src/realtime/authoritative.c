/* Authoritative matches: see realtime/authoritative.h.
 *
 * Threads and locks.
 *   - The registry (uuid -> match) is a hash under one rwlock: I/O threads
 *     look matches up for every join, leave and data message.
 *   - Each match has a mutex over what other threads touch: the presence
 *     list (written only by the match's job, read for deliveries, data
 *     membership checks and listings), the label, the call queue, the
 *     input queue and the scheduling flags. Lua never runs under it.
 *   - The match's work runs as one pool job at a time: `scheduled` is set
 *     when the job is queued and cleared when it finishes; whoever adds
 *     work (a call, a due tick) queues the job unless it is scheduled. The
 *     job takes the queued calls and the pending tick under the lock and
 *     runs them without it.
 *   - The tick thread keeps a min-heap of matches by next due instant and
 *     marks ticks pending. A tick still pending when the next is due is
 *     skipped (counted), so a slow match never builds a backlog.
 *   - The membership index (session -> matches it is in or asked to join)
 *     lets the close hook leave every match; it is sharded by session.
 * Lock order: the tick thread's lock, then a match's lock, then the pool's.
 * The registry and index locks are never held while taking another. */
#include "realtime/authoritative.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "codec/pbjson.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/uuid.h"
#include "lua/match.h"
#include "realtime/envelope.h"
#include "realtime/match.h"
#include "realtime/mmquery.h"

/* ------------------------------------------------------------------------ */
/* Types                                                                    */

typedef struct am_msg {
    kz_rt_sess_t *s; /* sender, retained */
    int64_t op_code;
    unsigned char *data;
    size_t len;
    bool reliable;
    int64_t recv_ms;
} am_msg_t;

/* A waiting nk.match_signal: shared by the caller and the call. */
typedef struct am_signal {
    atomic_int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rc;
    char *result;
    size_t rlen;
    kz_lua_error_t err;
    char *data;
    size_t len;
} am_signal_t;

enum { C_ATTEMPT, C_LEAVE, C_SIGNAL, C_TERMINATE };

typedef struct am_call {
    int kind;
    kz_rt_sess_t *s; /* retained (attempt, leave) */
    char *cid;
    json_t *metadata;
    int reason; /* leave: 3 leave, 4 disconnect */
    int grace;
    am_signal_t *sig;
    struct am_call *next;
} am_call_t;

/* A join or leave waiting for the next tick's match_join / match_leave. */
typedef struct am_event {
    kz_rt_sess_t *s; /* retained */
    bool leave;
    int reason;
} am_event_t;

typedef struct am_deferred {
    kz_rt_out_t *out;
    kz_rt_sess_t **to; /* retained */
    int n;
} am_deferred_t;

struct kz_am {
    atomic_int refs;
    kz_job_t job; /* the match's work; queued at most once */
    char uuid[37];
    char id[128];
    char *module;
    int tick_rate;
    uint64_t period_ns;
    atomic_bool dead; /* ended (read without the lock by the tick thread) */

    /* tick thread only */
    uint64_t next_due;
    int heap_idx;

    /* the job only */
    kz_ml_t *ml;
    int64_t tick;
    am_event_t *ev;
    int nev, capev;
    am_deferred_t def[KZ_AM_DEFERRED_MAX];
    int ndef;
    bool terminating;
    uint64_t grace_end;
    uint64_t last_slow_log;
    uint64_t empty_since; /* match.max_empty_sec: when it last became empty (0: not empty) */

    /* under lock */
    pthread_mutex_t lock;
    char *label;
    kz_rt_sess_t **pres; /* retained, in join order */
    int npres, cappres;
    am_call_t *chead, *ctail;
    int nattempts, nsignals;
    am_msg_t *in; /* KZ_AM_INPUT_MAX slots, allocated on first use */
    int nin;
    bool tick_pending;
    uint64_t tick_due;
    bool scheduled;
    bool ended;

    struct kz_am *next; /* registry chain (registry lock) */
};

/* ------------------------------------------------------------------------ */
/* Globals                                                                  */

#define REG_BUCKETS 1024
#define LAT_BUCKETS 1000 /* tick latency histogram, 0.1 ms each; the last is overflow */

static struct {
    pthread_rwlock_t lock;
    kz_am_t *b[REG_BUCKETS];
    int count;
    bool stopping;
    kz_app_t *app;
} R = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stop;
    kz_am_t **heap;
    int n, cap;
} T = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct {
    atomic_llong ticks, skipped, slow, lat_sum_ns, lat_max_ns, run_sum_ns;
    atomic_llong lat_hist[LAT_BUCKETS];
} S;

static _Thread_local kz_am_t *current;

kz_am_t *kz_am_current(void) { return current; }

static const char *node_name(void)
{
    return R.app && R.app->cfg->name ? R.app->cfg->name : "kizuna";
}

/* ------------------------------------------------------------------------ */
/* Pure helpers                                                             */

uint64_t kz_am_next_due(uint64_t due, uint64_t period, uint64_t now, int64_t *skipped)
{
    uint64_t next = due + period;
    if (next >= now) return next;
    uint64_t behind = (now - next) / period + 1;
    if (skipped) *skipped += (int64_t)behind;
    return next + behind * period;
}

bool kz_am_filter_pass(const kz_am_filter_t *f, const char *label, int size)
{
    if (f->authoritative == 0) return false; /* relayed matches only: none are listed */
    if (f->label && strcmp(f->label, label ? label : "") != 0) return false;
    if (f->min_size >= 0 && size < f->min_size) return false;
    if (f->max_size >= 0 && size > f->max_size) return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Matches                                                                  */

static kz_am_t *am_retain(kz_am_t *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

static void msgs_free(am_msg_t *in, int n)
{
    for (int i = 0; i < n; i++) {
        kz_rt_sess_release(in[i].s);
        kz_free(in[i].data);
    }
}

static void signal_release(am_signal_t *g)
{
    if (!g || atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    kz_free(g->result);
    kz_free(g->data);
    kz_free(g);
}

static void call_free(am_call_t *c)
{
    kz_rt_sess_release(c->s);
    kz_free(c->cid);
    json_decref(c->metadata);
    signal_release(c->sig);
    kz_free(c);
}

static void am_release(kz_am_t *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
    kz_ml_free(m->ml);
    for (int i = 0; i < m->npres; i++) kz_rt_sess_release(m->pres[i]);
    kz_free(m->pres);
    for (am_call_t *c = m->chead, *n; c; c = n) {
        n = c->next;
        call_free(c);
    }
    if (m->in) msgs_free(m->in, m->nin);
    kz_free(m->in);
    for (int i = 0; i < m->nev; i++) kz_rt_sess_release(m->ev[i].s);
    kz_free(m->ev);
    for (int i = 0; i < m->ndef; i++) {
        kz_rt_out_free(m->def[i].out);
        for (int j = 0; j < m->def[i].n; j++) kz_rt_sess_release(m->def[i].to[j]);
        kz_free(m->def[i].to);
    }
    pthread_mutex_destroy(&m->lock);
    kz_free(m->label);
    kz_free(m->module);
    kz_free(m);
}

/* ------------------------------------------------------------------------ */
/* Registry                                                                 */

static size_t reg_bucket(const char *uuid)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *uuid; uuid++) h = (h ^ (unsigned char)*uuid) * 1099511628211ull;
    return (size_t)(h & (REG_BUCKETS - 1));
}

/* The running match with this id, retained, or NULL. */
static kz_am_t *reg_find(const char *match_id)
{
    char uuid[37];
    const char *node;
    if (!match_id || !kz_match_id_parse(match_id, uuid, &node) || strcmp(node, node_name()) != 0) return NULL;
    kz_am_t *found = NULL;
    pthread_rwlock_rdlock(&R.lock);
    for (kz_am_t *m = R.b[reg_bucket(uuid)]; m; m = m->next)
        if (strcmp(m->uuid, uuid) == 0) {
            found = am_retain(m);
            break;
        }
    pthread_rwlock_unlock(&R.lock);
    return found;
}

/* Unlinks m; true when it was linked (the registry's reference passes to
 * the caller). */
static bool reg_remove(kz_am_t *m)
{
    bool was = false;
    pthread_rwlock_wrlock(&R.lock);
    for (kz_am_t **p = &R.b[reg_bucket(m->uuid)]; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            R.count--;
            was = true;
            break;
        }
    pthread_rwlock_unlock(&R.lock);
    return was;
}

/* All registered matches, retained (owned array). */
static int reg_snapshot(kz_am_t ***out)
{
    pthread_rwlock_rdlock(&R.lock);
    int n = 0;
    kz_am_t **v = kz_malloc(sizeof *v * (size_t)(R.count + 1));
    for (int b = 0; b < REG_BUCKETS; b++)
        for (kz_am_t *m = R.b[b]; m; m = m->next) v[n++] = am_retain(m);
    pthread_rwlock_unlock(&R.lock);
    *out = v;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Membership index: session -> matches it is in or asked to join          */

#define IDX_SHARDS 64
#define IDX_BUCKETS 4096

typedef struct am_link {
    const kz_rt_sess_t *s;
    kz_am_t *m; /* retained */
    int count;  /* pending attempts + membership */
    struct am_link *next;
} am_link_t;

static pthread_mutex_t idx_lock[IDX_SHARDS];
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;
static am_link_t *idx[IDX_BUCKETS];

static void idx_init(void)
{
    for (int i = 0; i < IDX_SHARDS; i++) pthread_mutex_init(&idx_lock[i], NULL);
}

static size_t idx_bucket(const kz_rt_sess_t *s)
{
    uintptr_t h = (uintptr_t)s;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    return (size_t)((h >> 20) & (IDX_BUCKETS - 1));
}

static void link_add(const kz_rt_sess_t *s, kz_am_t *m)
{
    pthread_once(&idx_once, idx_init);
    size_t b = idx_bucket(s);
    pthread_mutex_lock(&idx_lock[b % IDX_SHARDS]);
    am_link_t *l = idx[b];
    while (l && !(l->s == s && l->m == m)) l = l->next;
    if (l) {
        l->count++;
    } else {
        l = kz_calloc(1, sizeof *l);
        l->s = s;
        l->m = am_retain(m);
        l->count = 1;
        l->next = idx[b];
        idx[b] = l;
    }
    pthread_mutex_unlock(&idx_lock[b % IDX_SHARDS]);
}

static void link_dec(const kz_rt_sess_t *s, kz_am_t *m)
{
    pthread_once(&idx_once, idx_init);
    size_t b = idx_bucket(s);
    kz_am_t *drop = NULL;
    pthread_mutex_lock(&idx_lock[b % IDX_SHARDS]);
    for (am_link_t **p = &idx[b]; *p; p = &(*p)->next) {
        am_link_t *l = *p;
        if (l->s != s || l->m != m) continue;
        if (--l->count == 0) {
            *p = l->next;
            drop = l->m;
            kz_free(l);
        }
        break;
    }
    pthread_mutex_unlock(&idx_lock[b % IDX_SHARDS]);
    am_release(drop);
}

static bool link_has(const kz_rt_sess_t *s, const kz_am_t *m)
{
    pthread_once(&idx_once, idx_init);
    size_t b = idx_bucket(s);
    bool found = false;
    pthread_mutex_lock(&idx_lock[b % IDX_SHARDS]);
    for (am_link_t *l = idx[b]; l && !found; l = l->next) found = l->s == s && l->m == m;
    pthread_mutex_unlock(&idx_lock[b % IDX_SHARDS]);
    return found;
}

/* Removes every link of s; the matches (retained) go to *out. */
static int link_take_all(const kz_rt_sess_t *s, kz_am_t ***out)
{
    pthread_once(&idx_once, idx_init);
    size_t b = idx_bucket(s);
    int n = 0, cap = 0;
    *out = NULL;
    pthread_mutex_lock(&idx_lock[b % IDX_SHARDS]);
    for (am_link_t **p = &idx[b]; *p;) {
        am_link_t *l = *p;
        if (l->s != s) {
            p = &l->next;
            continue;
        }
        *p = l->next;
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = kz_realloc(*out, sizeof **out * (size_t)cap);
        }
        (*out)[n++] = l->m;
        kz_free(l);
    }
    pthread_mutex_unlock(&idx_lock[b % IDX_SHARDS]);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Wire                                                                     */

static json_t *presence_ref_json(const kz_am_presence_ref_t *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "user_id", json_string(p->user_id));
    json_object_set_new(o, "session_id", json_string(p->session_id));
    json_object_set_new(o, "username", json_string(p->username));
    return o;
}

/* A match_presence_event about who (joins or leaves) to the n sessions to. */
static void send_presence_event(const kz_am_t *m, kz_rt_sess_t *const *to, int n, kz_rt_sess_t *const *who, int nwho,
                                bool leave)
{
    if (n == 0 || nwho == 0) return;
    json_t *ev = json_object();
    json_object_set_new(ev, "match_id", json_string(m->id));
    json_t *a = json_array();
    for (int i = 0; i < nwho; i++) json_array_append_new(a, kz_rt_presence_json(who[i]));
    json_object_set_new(ev, leave ? "leaves" : "joins", a);
    kz_rt_out_t *out = kz_rt_out(kz_rt_envelope(NULL, "match_presence_event", ev));
    kz_rt_send_many(to, n, out);
    kz_rt_out_free(out);
}

/* A reply for s, sent on its own I/O thread (so after hooks see it). */
typedef struct am_reply {
    kz_task_t task;
    kz_rt_sess_t *s; /* retained */
    json_t *env;
} am_reply_t;

static void reply_run(kz_task_t *t)
{
    am_reply_t *r = (am_reply_t *)t;
    if (r->s->ws)
        kz_rt_reply(r->s->ws, r->env);
    else
        json_decref(r->env);
    kz_rt_sess_release(r->s);
    kz_free(r);
}

static void post_reply(kz_rt_sess_t *s, json_t *env)
{
    if (!R.app || !R.app->server) {
        json_decref(env);
        return;
    }
    am_reply_t *r = kz_calloc(1, sizeof *r);
    r->task.run = reply_run;
    r->s = kz_rt_sess_retain(s);
    r->env = env;
    kz_server_post(R.app->server, s->io, &r->task);
}

static void post_error(kz_rt_sess_t *s, const char *cid, int code, const char *message)
{
    json_t *err = json_object();
    if (code) json_object_set_new(err, "code", json_integer(code));
    json_object_set_new(err, "message", json_string(message));
    post_reply(s, kz_rt_envelope(cid, "error", err));
}

/* ------------------------------------------------------------------------ */
/* Scheduling                                                               */

static void job_run(kz_job_t *job, void *worker_ctx);
static void job_done(kz_job_t *job);

/* Queues the match's job unless it is queued or running; m->lock held. */
static void schedule_locked(kz_am_t *m)
{
    if (m->scheduled || !R.app || !R.app->pool) return;
    m->scheduled = true;
    am_retain(m); /* the job's */
    m->job.run = job_run;
    m->job.done = job_done;
    if (!kz_pool_submit(R.app->pool, &m->job)) {
        /* The pool is full or stopping: the next tick tries again. */
        m->scheduled = false;
        atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel); /* the caller holds another */
    }
}

/* Appends a call; false when the match has ended. */
static bool enqueue_locked(kz_am_t *m, am_call_t *c)
{
    if (m->ended) return false;
    c->next = NULL;
    if (m->ctail)
        m->ctail->next = c;
    else
        m->chead = c;
    m->ctail = c;
    schedule_locked(m);
    return true;
}

static bool enqueue(kz_am_t *m, am_call_t *c)
{
    pthread_mutex_lock(&m->lock);
    bool ok = enqueue_locked(m, c);
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* The tick thread: a tick of m is due. */
static void trigger_tick(kz_am_t *m, uint64_t due)
{
    pthread_mutex_lock(&m->lock);
    if (!m->ended) {
        if (m->tick_pending) {
            atomic_fetch_add_explicit(&S.skipped, 1, memory_order_relaxed);
        } else {
            m->tick_pending = true;
            m->tick_due = due;
        }
        schedule_locked(m);
    }
    pthread_mutex_unlock(&m->lock);
}

static void heap_swap(int a, int b)
{
    kz_am_t *t = T.heap[a];
    T.heap[a] = T.heap[b];
    T.heap[b] = t;
    T.heap[a]->heap_idx = a;
    T.heap[b]->heap_idx = b;
}

static void heap_up(int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (T.heap[p]->next_due <= T.heap[i]->next_due) break;
        heap_swap(i, p);
        i = p;
    }
}

static void heap_down(int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s = i;
        if (l < T.n && T.heap[l]->next_due < T.heap[s]->next_due) s = l;
        if (r < T.n && T.heap[r]->next_due < T.heap[s]->next_due) s = r;
        if (s == i) break;
        heap_swap(i, s);
        i = s;
    }
}

/* T.lock held. */
static void heap_push(kz_am_t *m)
{
    if (T.n == T.cap) {
        T.cap = T.cap ? T.cap * 2 : 64;
        T.heap = kz_realloc(T.heap, sizeof *T.heap * (size_t)T.cap);
    }
    m->heap_idx = T.n;
    T.heap[T.n++] = m;
    heap_up(T.n - 1);
}

static kz_am_t *heap_pop(void)
{
    kz_am_t *top = T.heap[0];
    T.n--;
    if (T.n) {
        T.heap[0] = T.heap[T.n];
        T.heap[0]->heap_idx = 0;
        heap_down(0);
    }
    return top;
}

static void *tick_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&T.lock);
    while (!T.stop) {
        uint64_t now = kz_mono_ns();
        while (T.n && T.heap[0]->next_due <= now) {
            kz_am_t *m = T.heap[0];
            if (atomic_load_explicit(&m->dead, memory_order_acquire)) {
                heap_pop();
                am_release(m); /* the heap's */
                continue;
            }
            uint64_t due = m->next_due;
            trigger_tick(m, due);
            int64_t skipped = 0;
            m->next_due = kz_am_next_due(due, m->period_ns, now, &skipped);
            if (skipped) atomic_fetch_add_explicit(&S.skipped, skipped, memory_order_relaxed);
            heap_down(0);
        }
        if (T.n) {
            uint64_t at = T.heap[0]->next_due;
            struct timespec ts = {.tv_sec = (time_t)(at / 1000000000ull), .tv_nsec = (long)(at % 1000000000ull)};
            pthread_cond_timedwait(&T.cond, &T.lock, &ts);
        } else {
            pthread_cond_wait(&T.cond, &T.lock);
        }
    }
    pthread_mutex_unlock(&T.lock);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The match's job                                                          */

static void info_of(const kz_am_t *m, kz_ml_info_t *info)
{
    *info = (kz_ml_info_t){.match_id = m->id, .node = node_name(), .label = m->label, .tick_rate = m->tick_rate};
}

static void presence_of(const kz_rt_sess_t *s, int reason, kz_ml_presence_t *p)
{
    *p = (kz_ml_presence_t){.user_id = s->uid, .session_id = s->id, .username = s->username, .reason = reason};
}

static void add_event(kz_am_t *m, kz_rt_sess_t *s, bool leave, int reason)
{
    if (m->nev == m->capev) {
        m->capev = m->capev ? m->capev * 2 : 8;
        m->ev = kz_realloc(m->ev, sizeof *m->ev * (size_t)m->capev);
    }
    m->ev[m->nev++] = (am_event_t){.s = kz_rt_sess_retain(s), .leave = leave, .reason = reason};
}

static void signal_complete(am_signal_t *g, int rc, char *result, size_t rlen, const kz_lua_error_t *err)
{
    pthread_mutex_lock(&g->lock);
    g->done = true;
    g->rc = rc;
    g->result = result;
    g->rlen = rlen;
    if (err) g->err = *err;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void flush_deferred(kz_am_t *m)
{
    for (int i = 0; i < m->ndef; i++) {
        am_deferred_t *d = &m->def[i];
        if (d->n) kz_rt_send_many(d->to, d->n, d->out);
        kz_rt_out_free(d->out);
        for (int j = 0; j < d->n; j++) kz_rt_sess_release(d->to[j]);
        kz_free(d->to);
    }
    m->ndef = 0;
}

/* Ends the match: unlisted, its players told they left, waiting calls
 * answered, its Lua state closed. On the match's job (or at the final
 * clean-up, when no job runs). */
static void am_end(kz_am_t *m, const char *why, bool error)
{
    pthread_mutex_lock(&m->lock);
    if (m->ended) {
        pthread_mutex_unlock(&m->lock);
        return;
    }
    m->ended = true;
    atomic_store_explicit(&m->dead, true, memory_order_release);
    kz_rt_sess_t **pres = m->pres;
    int npres = m->npres;
    m->pres = NULL;
    m->npres = m->cappres = 0;
    am_call_t *calls = m->chead;
    m->chead = m->ctail = NULL;
    m->nattempts = m->nsignals = 0;
    am_msg_t *in = m->in;
    int nin = m->nin;
    m->in = NULL;
    m->nin = 0;
    m->tick_pending = false;
    pthread_mutex_unlock(&m->lock);

    if (reg_remove(m)) am_release(m); /* the registry's */
    if (error)
        kz_log_warn("match %s (%s) ended: %s", m->id, m->module, why);
    else
        kz_log_debug("match %s (%s) ended: %s", m->id, m->module, why);

    send_presence_event(m, pres, npres, pres, npres, true);
    for (int i = 0; i < npres; i++) {
        link_dec(pres[i], m);
        kz_rt_sess_release(pres[i]);
    }
    kz_free(pres);
    for (am_call_t *c = calls, *n; c; c = n) {
        n = c->next;
        if (c->kind == C_ATTEMPT) {
            post_error(c->s, c->cid, KZ_RT_MATCH_NOT_FOUND, "Match not found");
            link_dec(c->s, m);
        } else if (c->kind == C_SIGNAL) {
            kz_lua_error_t e = {.code = 5};
            snprintf(e.message, sizeof e.message, "match not found");
            signal_complete(c->sig, -1, NULL, 0, &e);
        }
        call_free(c);
    }
    if (in) msgs_free(in, nin);
    kz_free(in);
    for (int i = 0; i < m->nev; i++) kz_rt_sess_release(m->ev[i].s);
    m->nev = 0;
    flush_deferred(m);
    kz_ml_free(m->ml);
    m->ml = NULL;
}

/* Ends the match after a handler call that did not return OK. */
static bool call_failed(kz_am_t *m, int rc, const kz_lua_error_t *err, const char *fn)
{
    if (rc == KZ_ML_OK) return false;
    if (rc == KZ_ML_STOP) {
        am_end(m, fn, false);
    } else {
        char why[700];
        snprintf(why, sizeof why, "%s raised: %s", fn, err->message);
        am_end(m, why, true);
    }
    return true;
}

/* The `match` reply of a join: the others, the label, self. */
static json_t *match_reply(const kz_am_t *m, const char *cid, kz_rt_sess_t *self)
{
    json_t *o = json_object();
    json_object_set_new(o, "match_id", json_string(m->id));
    json_object_set_new(o, "authoritative", json_true());
    json_object_set_new(o, "label", json_string(m->label ? m->label : ""));
    json_t *a = json_array();
    int n = 0;
    for (int i = 0; i < m->npres; i++)
        if (m->pres[i] != self) {
            json_array_append_new(a, kz_rt_presence_json(m->pres[i]));
            n++;
        }
    if (n) json_object_set_new(o, "size", json_integer(n));
    if (n)
        json_object_set_new(o, "presences", a);
    else
        json_decref(a);
    json_object_set_new(o, "self", kz_rt_presence_json(self));
    return kz_rt_envelope(cid, "match", o);
}

static int find_presence(const kz_am_t *m, const kz_rt_sess_t *s)
{
    for (int i = 0; i < m->npres; i++)
        if (m->pres[i] == s) return i;
    return -1;
}

static void do_attempt(kz_am_t *m, kz_db_t *db, am_call_t *c)
{
    if (!m->ml) {
        post_error(c->s, c->cid, KZ_RT_MATCH_NOT_FOUND, "Match not found");
        link_dec(c->s, m);
        return;
    }
    if (find_presence(m, c->s) >= 0) { /* already in: the match as it is */
        pthread_mutex_lock(&m->lock);
        json_t *env = match_reply(m, c->cid, c->s);
        pthread_mutex_unlock(&m->lock);
        post_reply(c->s, env);
        link_dec(c->s, m);
        return;
    }
    kz_ml_info_t info;
    info_of(m, &info);
    kz_ml_presence_t p;
    presence_of(c->s, 0, &p);
    bool accept = false;
    char *reason = NULL;
    kz_lua_error_t err = {0};
    int rc = kz_ml_join_attempt(m->ml, db, &info, m->tick, &p, c->metadata, &accept, &reason, &err);
    if (rc != KZ_ML_OK || !accept) {
        if (rc == KZ_ML_OK || rc == KZ_ML_STOP)
            post_error(c->s, c->cid, KZ_RT_MATCH_JOIN_REJECTED, reason && *reason ? reason : "Match join rejected");
        else
            post_error(c->s, c->cid, KZ_RT_MATCH_JOIN_REJECTED, "Match join rejected");
        kz_free(reason);
        link_dec(c->s, m);
        call_failed(m, rc, &err, "match_join_attempt");
        return;
    }
    kz_free(reason);
    /* Accepted: in the presence list at once (the pending attempt's link
     * becomes the membership's), the others told, match_join at the next
     * tick. */
    kz_rt_sess_t **others = NULL;
    int nothers = 0;
    pthread_mutex_lock(&m->lock);
    json_t *env = match_reply(m, c->cid, c->s);
    if (m->npres) {
        others = kz_malloc(sizeof *others * (size_t)m->npres);
        for (int i = 0; i < m->npres; i++) others[nothers++] = kz_rt_sess_retain(m->pres[i]);
    }
    if (m->npres == m->cappres) {
        m->cappres = m->cappres ? m->cappres * 2 : 8;
        m->pres = kz_realloc(m->pres, sizeof *m->pres * (size_t)m->cappres);
    }
    m->pres[m->npres++] = kz_rt_sess_retain(c->s);
    pthread_mutex_unlock(&m->lock);
    post_reply(c->s, env);
    send_presence_event(m, others, nothers, &c->s, 1, false);
    for (int i = 0; i < nothers; i++) kz_rt_sess_release(others[i]);
    kz_free(others);
    add_event(m, c->s, false, 1);
}

/* Takes the presences at idx[0..n) out of the match (leave or kick): the
 * remaining players (and the removed ones, notify_removed) get the leave
 * event; match_leave follows at the next tick. */
static void remove_presences(kz_am_t *m, kz_rt_sess_t **gone, int n, int reason, bool notify_removed)
{
    if (!n) return;
    pthread_mutex_lock(&m->lock);
    for (int k = 0; k < n; k++) {
        int i = find_presence(m, gone[k]);
        if (i < 0) continue;
        memmove(&m->pres[i], &m->pres[i + 1], sizeof *m->pres * (size_t)(m->npres - i - 1));
        m->npres--;
    }
    int nto = m->npres + (notify_removed ? n : 0);
    kz_rt_sess_t **to = kz_malloc(sizeof *to * (size_t)(nto ? nto : 1));
    int k = 0;
    for (int i = 0; i < m->npres; i++) to[k++] = kz_rt_sess_retain(m->pres[i]);
    pthread_mutex_unlock(&m->lock);
    if (notify_removed)
        for (int i = 0; i < n; i++) to[k++] = kz_rt_sess_retain(gone[i]);
    send_presence_event(m, to, k, gone, n, true);
    for (int i = 0; i < k; i++) kz_rt_sess_release(to[i]);
    kz_free(to);
    for (int i = 0; i < n; i++) {
        add_event(m, gone[i], true, reason);
        link_dec(gone[i], m);
        kz_rt_sess_release(gone[i]); /* the presence list's */
    }
}

static void do_leave(kz_am_t *m, am_call_t *c)
{
    pthread_mutex_lock(&m->lock);
    bool member = find_presence(m, c->s) >= 0;
    pthread_mutex_unlock(&m->lock);
    if (!member || !m->ml) return;
    kz_rt_sess_t *s = kz_rt_sess_retain(c->s); /* the list's reference goes in remove_presences */
    remove_presences(m, &s, 1, c->reason, false);
    kz_rt_sess_release(s);
}

static void do_signal(kz_am_t *m, kz_db_t *db, am_call_t *c)
{
    if (!m->ml) {
        kz_lua_error_t e = {.code = 5};
        snprintf(e.message, sizeof e.message, "match not found");
        signal_complete(c->sig, -1, NULL, 0, &e);
        return;
    }
    kz_ml_info_t info;
    info_of(m, &info);
    char *result = NULL;
    size_t rlen = 0;
    kz_lua_error_t err = {0};
    int rc = kz_ml_signal(m->ml, db, &info, m->tick, c->sig->data, c->sig->len, &result, &rlen, &err);
    /* A match the signal stopped is gone by the time the caller hears. */
    call_failed(m, rc, &err, "match_signal");
    if (rc == KZ_ML_ERROR) {
        kz_free(result);
        signal_complete(c->sig, -1, NULL, 0, &err);
    } else {
        signal_complete(c->sig, 0, result, rlen, NULL);
    }
}

static void do_terminate(kz_am_t *m, kz_db_t *db, am_call_t *c)
{
    if (!m->ml || m->terminating) return;
    kz_ml_info_t info;
    info_of(m, &info);
    kz_lua_error_t err = {0};
    int rc = kz_ml_terminate(m->ml, db, &info, m->tick, c->grace, &err);
    if (call_failed(m, rc, &err, "match_terminate")) return;
    m->terminating = true;
    m->grace_end = kz_mono_ns() + (uint64_t)c->grace * 1000000000ull;
    if (c->grace <= 0) am_end(m, "terminated", false);
}

static void lat_record(uint64_t lat_ns)
{
    atomic_fetch_add_explicit(&S.lat_sum_ns, (long long)lat_ns, memory_order_relaxed);
    long long prev = atomic_load_explicit(&S.lat_max_ns, memory_order_relaxed);
    while ((long long)lat_ns > prev &&
           !atomic_compare_exchange_weak_explicit(&S.lat_max_ns, &prev, (long long)lat_ns, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    uint64_t b = lat_ns / 100000; /* 0.1 ms */
    if (b >= LAT_BUCKETS) b = LAT_BUCKETS - 1;
    atomic_fetch_add_explicit(&S.lat_hist[b], 1, memory_order_relaxed);
}

static void do_tick(kz_am_t *m, kz_db_t *db, am_msg_t *in, int nin, uint64_t due)
{
    uint64_t start = kz_mono_ns();
    lat_record(start > due ? start - due : 0);
    kz_ml_info_t info;
    info_of(m, &info);
    kz_lua_error_t err = {0};

    /* Joins and leaves since the last tick, in order, in runs of one kind. */
    kz_ml_presence_t *ps = m->nev ? kz_malloc(sizeof *ps * (size_t)m->nev) : NULL;
    int i = 0;
    bool stopped = false;
    while (i < m->nev && !stopped) {
        int j = i, n = 0;
        while (j < m->nev && m->ev[j].leave == m->ev[i].leave) {
            presence_of(m->ev[j].s, m->ev[j].reason, &ps[n++]);
            j++;
        }
        info_of(m, &info); /* a handler may have changed the label */
        int rc = kz_ml_join(m->ml, db, &info, m->tick, ps, n, m->ev[i].leave, &err);
        stopped = call_failed(m, rc, &err, m->ev[i].leave ? "match_leave" : "match_join");
        i = j;
    }
    kz_free(ps);
    for (int k = 0; k < m->nev; k++) kz_rt_sess_release(m->ev[k].s);
    m->nev = 0;
    if (stopped) return;

    kz_ml_msg_t *msgs = nin ? kz_malloc(sizeof *msgs * (size_t)nin) : NULL;
    for (int k = 0; k < nin; k++) {
        presence_of(in[k].s, 0, &msgs[k].sender);
        msgs[k].op_code = in[k].op_code;
        msgs[k].data = in[k].data;
        msgs[k].len = in[k].len;
        msgs[k].reliable = in[k].reliable;
        msgs[k].receive_time_ms = in[k].recv_ms;
    }
    info_of(m, &info);
    int rc = kz_ml_loop(m->ml, db, &info, m->tick, msgs, nin, &err);
    kz_free(msgs);
    flush_deferred(m);
    m->tick++;
    uint64_t end = kz_mono_ns(), took = end - start;
    atomic_fetch_add_explicit(&S.ticks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&S.run_sum_ns, (long long)took, memory_order_relaxed);
    if (took > m->period_ns) {
        atomic_fetch_add_explicit(&S.slow, 1, memory_order_relaxed);
        if (end - m->last_slow_log > 1000000000ull) {
            m->last_slow_log = end;
            kz_log_warn("match %s: tick %lld took %.1f ms (the tick period is %.1f ms)", m->id,
                        (long long)m->tick - 1, (double)took / 1e6, (double)m->period_ns / 1e6);
        }
    }
    if (call_failed(m, rc, &err, "match_loop")) return;
    if (m->terminating && end >= m->grace_end) {
        am_end(m, "grace period over", false);
        return;
    }
    int max_empty = R.app ? R.app->cfg->match.max_empty_sec : 0;
    if (max_empty > 0) {
        pthread_mutex_lock(&m->lock);
        bool empty = m->npres == 0 && m->nattempts == 0;
        pthread_mutex_unlock(&m->lock);
        if (!empty)
            m->empty_since = 0;
        else if (!m->empty_since)
            m->empty_since = end;
        else if (end - m->empty_since >= (uint64_t)max_empty * 1000000000ull)
            am_end(m, "empty for match.max_empty_sec", false);
    }
}

static void job_run(kz_job_t *job, void *worker_ctx)
{
    kz_am_t *m = (kz_am_t *)((char *)job - offsetof(kz_am_t, job));
    kz_worker_t *w = worker_ctx;
    kz_worker_set_current(w);
    current = m;
    pthread_mutex_lock(&m->lock);
    am_call_t *calls = m->chead;
    m->chead = m->ctail = NULL;
    bool tick = m->tick_pending;
    uint64_t due = m->tick_due;
    m->tick_pending = false;
    am_msg_t *in = NULL;
    int nin = 0;
    if (tick) {
        in = m->in;
        nin = m->nin;
        m->in = NULL;
        m->nin = 0;
    }
    for (am_call_t *c = calls; c; c = c->next) {
        if (c->kind == C_ATTEMPT) m->nattempts--;
        if (c->kind == C_SIGNAL) m->nsignals--;
    }
    pthread_mutex_unlock(&m->lock);

    for (am_call_t *c = calls, *n; c; c = n) {
        n = c->next;
        switch (c->kind) {
        case C_ATTEMPT: do_attempt(m, w->db, c); break;
        case C_LEAVE: do_leave(m, c); break;
        case C_SIGNAL: do_signal(m, w->db, c); break;
        case C_TERMINATE: do_terminate(m, w->db, c); break;
        }
        call_free(c);
    }
    if (tick && m->ml) do_tick(m, w->db, in, nin, due);
    if (in) msgs_free(in, nin);
    kz_free(in);
    current = NULL;
    kz_worker_set_current(NULL);
}

static void job_done(kz_job_t *job)
{
    kz_am_t *m = (kz_am_t *)((char *)job - offsetof(kz_am_t, job));
    pthread_mutex_lock(&m->lock);
    m->scheduled = false;
    if (!m->ended && (m->chead || m->tick_pending)) schedule_locked(m);
    pthread_mutex_unlock(&m->lock);
    am_release(m); /* the finished job's */
}

/* ------------------------------------------------------------------------ */
/* Creation and the runtime's calls                                        */

int kz_am_create(kz_db_t *db, const char *module, json_t *params, char id_out[128], kz_lua_error_t *err)
{
    if (!R.app || R.stopping) {
        err->code = 14;
        snprintf(err->message, sizeof err->message, "authoritative matches are not running");
        return -1;
    }
    kz_am_t *m = kz_calloc(1, sizeof *m);
    atomic_init(&m->refs, 1); /* this function's */
    pthread_mutex_init(&m->lock, NULL);
    kz_uuid_v4(m->uuid);
    snprintf(m->id, sizeof m->id, "%s.%s", m->uuid, node_name());
    m->module = kz_strdup(module);
    m->label = kz_strdup("");
    m->heap_idx = -1;
    m->ml = kz_ml_new(db, m, module, err);
    if (!m->ml) {
        am_release(m);
        return -1;
    }
    kz_ml_info_t info;
    info_of(m, &info);
    int tick_rate = 0;
    char *label = NULL;
    kz_am_t *caller = current; /* nk.match_create may run in another match's handler */
    current = m;
    int rc = kz_ml_init(m->ml, db, &info, params, &tick_rate, &label, err);
    current = caller;
    if (rc != KZ_ML_OK) {
        if (rc == KZ_ML_STOP) {
            err->code = 13;
            snprintf(err->message, sizeof err->message, "match_init returned no state");
        }
        am_release(m);
        return -1;
    }
    kz_free(m->label);
    m->label = label;
    m->tick_rate = tick_rate;
    m->period_ns = 1000000000ull / (uint64_t)tick_rate;

    pthread_rwlock_wrlock(&R.lock);
    if (R.stopping) {
        pthread_rwlock_unlock(&R.lock);
        am_release(m);
        err->code = 14;
        snprintf(err->message, sizeof err->message, "the server is stopping");
        return -1;
    }
    size_t b = reg_bucket(m->uuid);
    m->next = R.b[b];
    R.b[b] = am_retain(m); /* the registry's */
    R.count++;
    pthread_rwlock_unlock(&R.lock);

    pthread_mutex_lock(&T.lock);
    m->next_due = kz_mono_ns() + m->period_ns;
    heap_push(am_retain(m)); /* the heap's */
    pthread_cond_signal(&T.cond);
    pthread_mutex_unlock(&T.lock);

    kz_log_debug("match %s created (%s, %d Hz)", m->id, module, tick_rate);
    snprintf(id_out, 128, "%s", m->id);
    am_release(m);
    return 0;
}

static json_t *match_json_locked(const kz_am_t *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "match_id", json_string(m->id));
    json_object_set_new(o, "authoritative", json_true());
    json_object_set_new(o, "label", json_string(m->label ? m->label : ""));
    json_object_set_new(o, "size", json_integer(m->npres));
    json_object_set_new(o, "tick_rate", json_integer(m->tick_rate));
    json_object_set_new(o, "handler_name", json_string(m->module));
    return o;
}

json_t *kz_am_get_json(const char *match_id)
{
    kz_am_t *m = reg_find(match_id);
    if (!m) return NULL;
    pthread_mutex_lock(&m->lock);
    json_t *o = m->ended ? NULL : match_json_locked(m);
    pthread_mutex_unlock(&m->lock);
    am_release(m);
    return o;
}

json_t *kz_am_list(const kz_am_filter_t *f, char *err, size_t errlen)
{
    kz_mmq_t *q = NULL;
    if (f->query && *f->query) {
        char e[200];
        if (kz_mmq_parse(f->query, strlen(f->query), &q, e, sizeof e) != 0) {
            snprintf(err, errlen, "invalid query: %s", e);
            return NULL;
        }
    }
    json_t *list = json_array();
    kz_am_t **all;
    int n = reg_snapshot(&all);
    for (int i = 0; i < n; i++) {
        kz_am_t *m = all[i];
        if ((int)json_array_size(list) < f->limit) {
            pthread_mutex_lock(&m->lock);
            bool pass = !m->ended && kz_am_filter_pass(f, m->label, m->npres);
            if (pass && q) {
                json_error_t je;
                json_t *lab = json_loads(m->label ? m->label : "", JSON_DECODE_ANY, &je);
                if (lab && json_is_object(lab)) {
                    json_t *doc = json_pack("{s:o}", "label", lab);
                    pass = kz_mmq_eval(q, kz_mmq_json_lookup, doc, NULL);
                    json_decref(doc);
                } else {
                    json_decref(lab);
                    pass = false;
                }
            }
            if (pass) json_array_append_new(list, match_json_locked(m));
            pthread_mutex_unlock(&m->lock);
        }
        am_release(m);
    }
    kz_free(all);
    if (q) kz_mmq_free(q);
    return list;
}

int kz_am_signal(const char *match_id, const char *data, size_t len, int timeout_ms, char **result, size_t *rlen,
                 kz_lua_error_t *err)
{
    *result = NULL;
    *rlen = 0;
    kz_am_t *m = reg_find(match_id);
    if (!m) {
        err->code = 5;
        snprintf(err->message, sizeof err->message, "match not found");
        return -1;
    }
    if (m == current) {
        am_release(m);
        err->code = 9;
        snprintf(err->message, sizeof err->message, "a match cannot signal itself");
        return -1;
    }
    am_signal_t *g = kz_calloc(1, sizeof *g);
    atomic_init(&g->refs, 2); /* the caller's and the call's */
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cond, &ca);
    pthread_condattr_destroy(&ca);
    g->data = kz_strndup(data ? data : "", data ? len : 0);
    g->len = data ? len : 0;
    am_call_t *c = kz_calloc(1, sizeof *c);
    c->kind = C_SIGNAL;
    c->sig = g;
    pthread_mutex_lock(&m->lock);
    bool full = m->nsignals >= KZ_AM_SIGNALS_MAX;
    bool ok = !full && enqueue_locked(m, c);
    if (ok) m->nsignals++;
    pthread_mutex_unlock(&m->lock);
    am_release(m);
    if (!ok) {
        call_free(c); /* drops the call's reference */
        signal_release(g);
        err->code = full ? 8 : 5;
        snprintf(err->message, sizeof err->message, full ? "match signal queue is full" : "match not found");
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + (uint64_t)timeout_ms * 1000000ull;
    ts.tv_sec = (time_t)(at / 1000000000ull);
    ts.tv_nsec = (long)(at % 1000000000ull);
    pthread_mutex_lock(&g->lock);
    while (!g->done)
        if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT) break;
    bool done = g->done;
    int rc = g->rc;
    if (done && rc == 0) {
        *result = g->result;
        *rlen = g->rlen;
        g->result = NULL;
    } else if (done) {
        *err = g->err;
    }
    pthread_mutex_unlock(&g->lock);
    signal_release(g);
    if (!done) {
        err->code = 4;
        snprintf(err->message, sizeof err->message, "match signal timed out");
        return -1;
    }
    return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Dispatcher                                                               */

int kz_am_broadcast(kz_am_t *m, int64_t op_code, const char *data, size_t len, const char *const *targets, int ntargets,
                    bool all, const kz_am_presence_ref_t *sender, bool reliable, bool deferred, char *err,
                    size_t errlen)
{
    if (deferred && m->ndef >= KZ_AM_DEFERRED_MAX) {
        snprintf(err, errlen, "too many deferred broadcasts in one tick (at most %d)", KZ_AM_DEFERRED_MAX);
        return -1;
    }
    pthread_mutex_lock(&m->lock);
    kz_rt_sess_t **to = kz_malloc(sizeof *to * (size_t)(m->npres ? m->npres : 1));
    int n = 0;
    for (int i = 0; i < m->npres; i++) {
        bool want = all;
        for (int j = 0; !want && j < ntargets; j++) want = strcmp(targets[j], m->pres[i]->id) == 0;
        if (want) to[n++] = kz_rt_sess_retain(m->pres[i]);
    }
    pthread_mutex_unlock(&m->lock);
    if (!n) {
        kz_free(to);
        return 0;
    }
    json_t *md = json_object();
    json_object_set_new(md, "match_id", json_string(m->id));
    if (sender) json_object_set_new(md, "presence", presence_ref_json(sender));
    if (op_code) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)op_code);
        json_object_set_new(md, "op_code", json_string(num));
    }
    if (data && len) {
        char *b64 = kz_pbjson_b64_encode(data, len);
        json_object_set_new(md, "data", json_string(b64));
        kz_free(b64);
    }
    if (reliable) json_object_set_new(md, "reliable", json_true());
    kz_rt_out_t *out = kz_rt_out(kz_rt_envelope(NULL, "match_data", md));
    if (deferred) {
        m->def[m->ndef++] = (am_deferred_t){.out = out, .to = to, .n = n};
        return 0;
    }
    kz_rt_send_many(to, n, out);
    kz_rt_out_free(out);
    for (int i = 0; i < n; i++) kz_rt_sess_release(to[i]);
    kz_free(to);
    return 0;
}

void kz_am_kick(kz_am_t *m, const char *const *session_ids, int n)
{
    pthread_mutex_lock(&m->lock);
    kz_rt_sess_t **gone = kz_malloc(sizeof *gone * (size_t)(m->npres ? m->npres : 1));
    int k = 0;
    for (int i = 0; i < m->npres; i++)
        for (int j = 0; j < n; j++)
            if (strcmp(session_ids[j], m->pres[i]->id) == 0) {
                gone[k++] = m->pres[i]; /* the list's reference moves to remove_presences */
                break;
            }
    pthread_mutex_unlock(&m->lock);
    remove_presences(m, gone, k, 3, true);
    kz_free(gone);
}

int kz_am_label_update(kz_am_t *m, const char *label, size_t len)
{
    if (len > KZ_AM_LABEL_MAX || memchr(label, '\0', len)) return -1;
    char *l = kz_strndup(label, len);
    pthread_mutex_lock(&m->lock);
    char *old = m->label;
    m->label = l;
    pthread_mutex_unlock(&m->lock);
    kz_free(old);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Socket side                                                              */

void kz_am_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, const char *match_id, json_t *metadata)
{
    kz_am_t *m = reg_find(match_id);
    if (!m) {
        kz_rt_error(ws, cid, KZ_RT_MATCH_NOT_FOUND, "Match not found");
        return;
    }
    am_call_t *c = kz_calloc(1, sizeof *c);
    c->kind = C_ATTEMPT;
    c->s = kz_rt_sess_retain(s);
    c->cid = cid ? kz_strdup(cid) : NULL;
    c->metadata = metadata ? json_deep_copy(metadata) : NULL;
    link_add(s, m);
    pthread_mutex_lock(&m->lock);
    bool full = m->nattempts >= KZ_AM_ATTEMPTS_MAX;
    bool ok = !full && enqueue_locked(m, c);
    if (ok) m->nattempts++;
    pthread_mutex_unlock(&m->lock);
    if (!ok) {
        link_dec(s, m);
        call_free(c);
        if (full)
            kz_rt_error(ws, cid, KZ_RT_MATCH_JOIN_REJECTED, "Too many join attempts waiting, try again.");
        else
            kz_rt_error(ws, cid, KZ_RT_MATCH_NOT_FOUND, "Match not found");
    }
    am_release(m);
}

static void queue_leave(kz_am_t *m, kz_rt_sess_t *s, int reason)
{
    am_call_t *c = kz_calloc(1, sizeof *c);
    c->kind = C_LEAVE;
    c->s = kz_rt_sess_retain(s);
    c->reason = reason;
    if (!enqueue(m, c)) call_free(c);
}

void kz_am_leave(kz_rt_sess_t *s, const char *match_id)
{
    kz_am_t *m = reg_find(match_id);
    if (!m) return;
    if (link_has(s, m)) queue_leave(m, s, 3);
    am_release(m);
}

void kz_am_data(kz_rt_sess_t *s, const char *match_id, int64_t op_code, const unsigned char *data, size_t len,
                bool reliable)
{
    kz_am_t *m = reg_find(match_id);
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    if (!m->ended && m->nin < KZ_AM_INPUT_MAX && find_presence(m, s) >= 0) {
        if (!m->in) m->in = kz_malloc(sizeof *m->in * KZ_AM_INPUT_MAX);
        am_msg_t *g = &m->in[m->nin++];
        g->s = kz_rt_sess_retain(s);
        g->op_code = op_code;
        g->data = len ? kz_malloc(len) : NULL;
        if (len) memcpy(g->data, data, len);
        g->len = len;
        g->reliable = reliable;
        g->recv_ms = kz_now_ms();
    }
    pthread_mutex_unlock(&m->lock);
    am_release(m);
}

void kz_am_leave_others(kz_rt_sess_t *s, const char *keep)
{
    pthread_once(&idx_once, idx_init);
    size_t b = idx_bucket(s);
    kz_am_t **ms = NULL;
    int n = 0, cap = 0;
    pthread_mutex_lock(&idx_lock[b % IDX_SHARDS]);
    for (am_link_t *l = idx[b]; l; l = l->next) {
        if (l->s != s || (keep && strcmp(l->m->id, keep) == 0)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            ms = kz_realloc(ms, sizeof *ms * (size_t)cap);
        }
        ms[n++] = am_retain(l->m);
    }
    pthread_mutex_unlock(&idx_lock[b % IDX_SHARDS]);
    for (int i = 0; i < n; i++) {
        queue_leave(ms[i], s, 3);
        am_release(ms[i]);
    }
    kz_free(ms);
}

void kz_am_session_closed(kz_rt_sess_t *s)
{
    kz_am_t **ms;
    int n = link_take_all(s, &ms);
    for (int i = 0; i < n; i++) {
        queue_leave(ms[i], s, 4);
        am_release(ms[i]);
    }
    kz_free(ms);
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                           */

static double metric_matches(void)
{
    pthread_rwlock_rdlock(&R.lock);
    int n = R.count;
    pthread_rwlock_unlock(&R.lock);
    return n;
}
static double metric_ticks(void) { return (double)atomic_load(&S.ticks); }
static double metric_skipped(void) { return (double)atomic_load(&S.skipped); }
static double metric_slow(void) { return (double)atomic_load(&S.slow); }
static double metric_run(void) { return (double)atomic_load(&S.run_sum_ns) / 1e9; }
static double metric_delay(void) { return (double)atomic_load(&S.lat_sum_ns) / 1e9; }
static double metric_delay_max(void) { return (double)atomic_load(&S.lat_max_ns) / 1e9; }

int kz_am_start(kz_app_t *app)
{
    kz_metrics_register_value("kizuna_matches_authoritative", "gauge", "Authoritative matches running.",
                              metric_matches);
    kz_metrics_register_value("kizuna_match_ticks_total", "counter", "Authoritative match ticks run.", metric_ticks);
    kz_metrics_register_value("kizuna_match_ticks_skipped_total", "counter",
                              "Ticks skipped because a match fell a whole period behind.", metric_skipped);
    kz_metrics_register_value("kizuna_match_ticks_slow_total", "counter", "Ticks that ran longer than their period.",
                              metric_slow);
    kz_metrics_register_value("kizuna_match_tick_run_seconds_total", "counter",
                              "Time spent running ticks (match_loop and what it sends).", metric_run);
    kz_metrics_register_value("kizuna_match_tick_delay_seconds_total", "counter",
                              "Sum over ticks of how late each started after it was due.", metric_delay);
    kz_metrics_register_value("kizuna_match_tick_delay_seconds_max", "gauge",
                              "The latest start of a tick after it was due, since start-up.", metric_delay_max);
    pthread_once(&idx_once, idx_init);
    R.app = app;
    R.stopping = false;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&T.cond, &ca);
    pthread_condattr_destroy(&ca);
    T.stop = false;
    if (pthread_create(&T.thread, NULL, tick_main, NULL) != 0) {
        pthread_cond_destroy(&T.cond);
        return -1;
    }
    T.running = true;
    return 0;
}

static void stop_ticks(void)
{
    if (!T.running) return;
    pthread_mutex_lock(&T.lock);
    T.stop = true;
    pthread_cond_signal(&T.cond);
    pthread_mutex_unlock(&T.lock);
    pthread_join(T.thread, NULL);
    T.running = false;
    for (int i = 0; i < T.n; i++) am_release(T.heap[i]);
    kz_free(T.heap);
    T.heap = NULL;
    T.n = T.cap = 0;
    pthread_cond_destroy(&T.cond);
}

void kz_am_stop(void)
{
    if (!R.app) return;
    pthread_rwlock_wrlock(&R.lock);
    R.stopping = true;
    pthread_rwlock_unlock(&R.lock);
    kz_am_t **all;
    int n = reg_snapshot(&all);
    for (int i = 0; i < n; i++) {
        am_call_t *c = kz_calloc(1, sizeof *c);
        c->kind = C_TERMINATE;
        c->grace = R.app->cfg->shutdown_grace_sec;
        if (!enqueue(all[i], c)) call_free(c);
        am_release(all[i]);
    }
    kz_free(all);
    if (n) {
        /* Matches end after match_terminate (and the grace period); wait
         * for that, but not for a handler stuck past its budgets. */
        uint64_t limit = kz_mono_ns() + (uint64_t)R.app->cfg->shutdown_grace_sec * 1000000000ull +
                         (uint64_t)R.app->cfg->runtime.lua_call_timeout_ms * 1000000ull + 2000000000ull;
        for (;;) {
            pthread_rwlock_rdlock(&R.lock);
            int left = R.count;
            pthread_rwlock_unlock(&R.lock);
            if (!left || kz_mono_ns() > limit) break;
            struct timespec d = {0, 5000000};
            nanosleep(&d, NULL);
        }
        kz_log_info("authoritative matches: %d terminated", n);
    }
    stop_ticks();
    kz_am_stats_t st;
    kz_am_stats(&st);
    if (st.ticks)
        kz_log_info("authoritative matches: %lld ticks, %lld skipped, %lld slow; tick start after due: avg %.2f ms, "
                    "p99 %.1f ms, max %.1f ms; tick run avg %.3f ms",
                    (long long)st.ticks, (long long)st.skipped, (long long)st.slow, st.lat_avg_ms, st.lat_p99_ms,
                    st.lat_max_ms, st.run_avg_ms);
}

void kz_am_free_all(void)
{
    stop_ticks();
    kz_am_t **all;
    int n = reg_snapshot(&all);
    for (int i = 0; i < n; i++) {
        am_end(all[i], "server stopped", false);
        am_release(all[i]);
    }
    kz_free(all);
    R.app = NULL;
}

void kz_am_stats(kz_am_stats_t *out)
{
    *out = (kz_am_stats_t){0};
    pthread_rwlock_rdlock(&R.lock);
    out->matches = R.count;
    pthread_rwlock_unlock(&R.lock);
    out->ticks = atomic_load(&S.ticks);
    out->skipped = atomic_load(&S.skipped);
    out->slow = atomic_load(&S.slow);
    if (out->ticks) {
        out->lat_avg_ms = (double)atomic_load(&S.lat_sum_ns) / (double)out->ticks / 1e6;
        out->run_avg_ms = (double)atomic_load(&S.run_sum_ns) / (double)out->ticks / 1e6;
        long long want = (out->ticks * 99 + 99) / 100, seen = 0;
        for (int b = 0; b < LAT_BUCKETS; b++) {
            seen += atomic_load(&S.lat_hist[b]);
            if (seen >= want) {
                out->lat_p99_ms = (b + 1) * 0.1;
                break;
            }
        }
    }
    out->lat_max_ms = (double)atomic_load(&S.lat_max_ns) / 1e6;
}
