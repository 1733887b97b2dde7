/* Load-test statistics: log-linear histograms, per-op tables, counters, and
 * the run's total plus per-second series, all serialisable to JSON.
 *
 * Bucket layout of a histogram: values below 128 µs have a bucket each;
 * from 128 on, the values [2^k, 2^(k+1)) (k >= 7) are split into 128 equal
 * buckets of width 2^(k-7), at indexes (k-6)*128 .. (k-6)*128+127. A bucket's
 * width is at most 1/128 of its lower bound, and a quantile reports the
 * bucket's midpoint, so it is within 0.4% of the true value. Values above
 * one hour share the last bucket. Buckets are stored in chunks of 128 (one
 * chunk per power of two), allocated on first use. */
#include "loadtest/stats.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "loadtest/scenario.h"

_Static_assert(LT_MAX_CONNS == 4LL * LT_MAX_BOTS, "LT_MAX_CONNS follows LT_MAX_BOTS");

/* Copies a name into a fixed buffer, truncating. */
static void copy_name(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ----- Histogram ------------------------------------------------------- */

void lt_hist_init(lt_hist_t *h)
{
    memset(h, 0, sizeof *h);
}

void lt_hist_free(lt_hist_t *h)
{
    for (size_t c = 0; c < LT_HIST_CHUNKS; c++) free(h->chunk[c]);
    memset(h, 0, sizeof *h);
}

void lt_hist_reset(lt_hist_t *h)
{
    for (size_t c = 0; c < LT_HIST_CHUNKS; c++)
        if (h->chunk[c]) memset(h->chunk[c], 0, LT_HIST_SUB * sizeof(uint64_t));
    h->count = h->min = h->max = h->sum = 0;
}

size_t lt_hist_bucket(uint64_t us)
{
    if (us > LT_HIST_MAX_US) us = LT_HIST_MAX_US;
    if (us < LT_HIST_SUB) return (size_t)us;
    int k = 63 - __builtin_clzll(us); /* >= 7 */
    int shift = k - 7;
    return (size_t)(k - 6) * LT_HIST_SUB + (size_t)((us >> shift) - LT_HIST_SUB);
}

void lt_hist_bucket_range(size_t idx, uint64_t *lo, uint64_t *hi)
{
    if (idx < LT_HIST_SUB) {
        *lo = *hi = idx;
        return;
    }
    size_t c = idx / LT_HIST_SUB;
    int shift = (int)c - 1;
    uint64_t sub = idx % LT_HIST_SUB + LT_HIST_SUB;
    *lo = sub << shift;
    *hi = *lo + (1ULL << shift) - 1;
}

static void add_bucket(lt_hist_t *h, size_t idx, uint64_t n)
{
    size_t c = idx / LT_HIST_SUB;
    if (!h->chunk[c]) h->chunk[c] = kz_calloc(LT_HIST_SUB, sizeof(uint64_t));
    h->chunk[c][idx % LT_HIST_SUB] += n;
}

void lt_hist_record_n(lt_hist_t *h, uint64_t us, uint64_t n)
{
    if (n == 0) return;
    add_bucket(h, lt_hist_bucket(us), n);
    if (h->count == 0 || us < h->min) h->min = us;
    if (h->count == 0 || us > h->max) h->max = us;
    h->count += n;
    h->sum += us * n;
}

void lt_hist_record(lt_hist_t *h, uint64_t us)
{
    lt_hist_record_n(h, us, 1);
}

void lt_hist_merge(lt_hist_t *dst, const lt_hist_t *src)
{
    if (src->count == 0) return;
    for (size_t c = 0; c < LT_HIST_CHUNKS; c++) {
        if (!src->chunk[c]) continue;
        for (size_t i = 0; i < LT_HIST_SUB; i++)
            if (src->chunk[c][i]) add_bucket(dst, c * LT_HIST_SUB + i, src->chunk[c][i]);
    }
    if (dst->count == 0 || src->min < dst->min) dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max) dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
}

uint64_t lt_hist_quantile(const lt_hist_t *h, double q)
{
    if (h->count == 0) return 0;
    if (q <= 0) return h->min;
    if (q >= 1) return h->max;
    /* ceil without the noise of 0.99 * 100 = 98.99999... */
    uint64_t rank = (uint64_t)ceil(q * (double)h->count - 1e-9);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (size_t c = 0; c < LT_HIST_CHUNKS; c++) {
        if (!h->chunk[c]) continue;
        for (size_t i = 0; i < LT_HIST_SUB; i++) {
            seen += h->chunk[c][i];
            if (seen >= rank) {
                uint64_t lo, hi;
                lt_hist_bucket_range(c * LT_HIST_SUB + i, &lo, &hi);
                uint64_t v = lo + (hi - lo) / 2;
                if (v < h->min) v = h->min;
                if (v > h->max) v = h->max;
                return v;
            }
        }
    }
    return h->max;
}

double lt_hist_mean(const lt_hist_t *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0;
}

json_t *lt_hist_to_json(const lt_hist_t *h)
{
    json_t *b = json_array();
    for (size_t c = 0; c < LT_HIST_CHUNKS; c++) {
        if (!h->chunk[c]) continue;
        for (size_t i = 0; i < LT_HIST_SUB; i++) {
            if (!h->chunk[c][i]) continue;
            json_array_append_new(b, json_integer((json_int_t)(c * LT_HIST_SUB + i)));
            json_array_append_new(b, json_integer((json_int_t)h->chunk[c][i]));
        }
    }
    return json_pack("{sIsIsIsIso}", "n", (json_int_t)h->count, "min", (json_int_t)h->min, "max",
                     (json_int_t)h->max, "sum", (json_int_t)h->sum, "b", b);
}

/* A non-negative integer member; -1 when missing or not one. */
/* A count read from a worker's line: an integer in 0..LT_MAX_COUNT, so sums
 * over a run cannot overflow. */
static bool is_count(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 &&
           (uint64_t)json_integer_value(v) <= LT_MAX_COUNT;
}

static int get_uint(const json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!is_count(v)) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int lt_hist_from_json(lt_hist_t *h, const json_t *j, char *err, size_t errlen)
{
    lt_hist_reset(h);
    uint64_t n, mn, mx, sum;
    json_t *b = json_object_get(j, "b");
    if (!json_is_object(j) || get_uint(j, "n", &n) < 0 || get_uint(j, "min", &mn) < 0 ||
        get_uint(j, "max", &mx) < 0 || get_uint(j, "sum", &sum) < 0 || !json_is_array(b) ||
        json_array_size(b) % 2 != 0) {
        kz_errf(err, errlen, "histogram: expected {n, min, max, sum, b:[index, count, ...]}");
        return -1;
    }
    uint64_t total = 0;
    json_int_t prev = -1;
    for (size_t i = 0; i < json_array_size(b); i += 2) {
        json_t *ji = json_array_get(b, i), *jc = json_array_get(b, i + 1);
        if (!json_is_integer(ji) || !json_is_integer(jc) || json_integer_value(ji) <= prev ||
            json_integer_value(ji) >= LT_HIST_BUCKETS || json_integer_value(jc) <= 0 || !is_count(jc)) {
            lt_hist_reset(h);
            kz_errf(err, errlen, "histogram: bad bucket at position %zu", i);
            return -1;
        }
        prev = json_integer_value(ji);
        uint64_t c = (uint64_t)json_integer_value(jc);
        if (total + c < total) {
            lt_hist_reset(h);
            kz_errf(err, errlen, "histogram: counts overflow");
            return -1;
        }
        total += c;
        add_bucket(h, (size_t)prev, c);
    }
    if (total != n || (n > 0 && mn > mx)) {
        lt_hist_reset(h);
        kz_errf(err, errlen, "histogram: bucket counts add up to %" PRIu64 ", n is %" PRIu64,
                total, n);
        return -1;
    }
    h->count = n;
    h->min = n ? mn : 0;
    h->max = n ? mx : 0;
    h->sum = sum;
    return 0;
}

/* ----- Ops and reasons --------------------------------------------------- */

static const char *const counter_names[LT_C_COUNT_] = {
    [LT_C_BOTS_STARTED] = "bots_started", [LT_C_BOTS_FINISHED] = "bots_finished",
    [LT_C_BOTS_FAILED] = "bots_failed",   [LT_C_MSGS_SENT] = "msgs_sent",
    [LT_C_MSGS_RECV] = "msgs_recv",       [LT_C_BYTES_SENT] = "bytes_sent",
    [LT_C_BYTES_RECV] = "bytes_recv",     [LT_C_LATE] = "late",
};

const char *lt_counter_name(lt_counter_t c)
{
    return (unsigned)c < LT_C_COUNT_ ? counter_names[c] : "?";
}

lt_stats_t *lt_stats_new(void)
{
    lt_stats_t *st = kz_calloc(1, sizeof *st);
    st->sec = -1;
    return st;
}

static void free_ops(lt_op_stats_t *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) lt_hist_free(&ops[i].hist);
    free(ops);
}

void lt_stats_free(lt_stats_t *st)
{
    if (!st) return;
    free_ops(st->ops, st->nops);
    free(st);
}

/* The op slot for name: existing, new, or (when LT_MAX_OPS - 1 names are
 * taken) the shared "other" slot. create false: NULL for an absent name
 * unless "other" exists and the table is full. */
static lt_op_stats_t *op_slot(lt_stats_t *st, const char *op, bool create)
{
    char name[LT_OP_NAME_MAX];
    copy_name(name, sizeof name, op);
    for (size_t i = 0; i < st->nops; i++)
        if (strcmp(st->ops[i].name, name) == 0) return &st->ops[i];
    if (st->nops >= LT_MAX_OPS - 1) {
        for (size_t i = 0; i < st->nops; i++)
            if (strcmp(st->ops[i].name, "other") == 0) return &st->ops[i];
        if (!create) return NULL;
        copy_name(name, sizeof name, "other");
    } else if (!create) {
        return NULL;
    }
    /* Grow one at a time: LT_MAX_OPS is small and ops are few. */
    st->ops = kz_realloc(st->ops, (st->nops + 1) * sizeof *st->ops);
    lt_op_stats_t *o = &st->ops[st->nops++];
    memset(o, 0, sizeof *o);
    copy_name(o->name, sizeof o->name, name);
    lt_hist_init(&o->hist);
    return o;
}

lt_op_stats_t *lt_stats_op(lt_stats_t *st, const char *op)
{
    return op_slot(st, op, true);
}

const lt_op_stats_t *lt_stats_find(const lt_stats_t *st, const char *op)
{
    char name[LT_OP_NAME_MAX];
    copy_name(name, sizeof name, op);
    for (size_t i = 0; i < st->nops; i++)
        if (strcmp(st->ops[i].name, name) == 0) return &st->ops[i];
    return NULL;
}

void lt_stats_ok(lt_stats_t *st, const char *op, uint64_t latency_us)
{
    lt_op_stats_t *o = op_slot(st, op, true);
    o->ok++;
    lt_hist_record(&o->hist, latency_us);
}

/* Adds n errors of reason to o (the 33rd distinct reason on: "other"). */
static void add_reason(lt_op_stats_t *o, const char *reason, uint64_t n)
{
    char name[LT_REASON_MAX];
    copy_name(name, sizeof name, reason);
    o->errors += n;
    for (size_t i = 0; i < o->nreasons; i++)
        if (strcmp(o->reasons[i].name, name) == 0) {
            o->reasons[i].count += n;
            return;
        }
    if (o->nreasons >= LT_MAX_REASONS) {
        for (size_t i = LT_MAX_REASONS; i < o->nreasons; i++)
            if (strcmp(o->reasons[i].name, "other") == 0) {
                o->reasons[i].count += n;
                return;
            }
        copy_name(name, sizeof name, "other");
        if (o->nreasons > LT_MAX_REASONS) return; /* cannot happen: the slot is "other" */
    }
    lt_reason_t *r = &o->reasons[o->nreasons++];
    copy_name(r->name, sizeof r->name, name);
    r->count = n;
}

void lt_stats_error(lt_stats_t *st, const char *op, const char *reason)
{
    add_reason(op_slot(st, op, true), reason ? reason : "unknown", 1);
}

void lt_stats_add(lt_stats_t *st, lt_counter_t c, uint64_t n)
{
    if ((unsigned)c < LT_C_COUNT_) st->counters[c] += n;
}

void lt_stats_conn(lt_stats_t *st, int change)
{
    st->conns_open += change;
    st->conns_change += change;
    if (st->conns_open > st->conns_peak) st->conns_peak = st->conns_open;
}

lt_stats_t *lt_stats_take_delta(lt_stats_t *st, int64_t sec)
{
    lt_stats_t *d = kz_calloc(1, sizeof *d);
    *d = *st;
    d->sec = sec;
    memset(st->counters, 0, sizeof st->counters);
    st->ops = NULL;
    st->nops = 0;
    st->conns_change = 0;
    st->conns_peak = st->conns_open;
    return d;
}

lt_stats_t *lt_stats_empty_delta(const lt_stats_t *st, int64_t sec)
{
    lt_stats_t *d = lt_stats_new();
    d->sec = sec;
    d->conns_open = st->conns_open - st->conns_change;
    d->conns_peak = d->conns_open;
    return d;
}

static void merge_op(lt_op_stats_t *dst, const lt_op_stats_t *src)
{
    dst->ok += src->ok;
    lt_hist_merge(&dst->hist, &src->hist);
    for (size_t i = 0; i < src->nreasons; i++)
        add_reason(dst, src->reasons[i].name, src->reasons[i].count);
}

void lt_stats_merge(lt_stats_t *dst, const lt_stats_t *src)
{
    for (size_t c = 0; c < LT_C_COUNT_; c++) dst->counters[c] += src->counters[c];
    dst->conns_open += src->conns_open;
    dst->conns_change += src->conns_change;
    dst->conns_peak += src->conns_peak;
    for (size_t i = 0; i < src->nops; i++) merge_op(op_slot(dst, src->ops[i].name, true), &src->ops[i]);
}

/* ----- Stats JSON -------------------------------------------------------- */

json_t *lt_stats_to_json(const lt_stats_t *st)
{
    json_t *counters = json_object();
    for (size_t c = 0; c < LT_C_COUNT_; c++)
        json_object_set_new(counters, counter_names[c], json_integer((json_int_t)st->counters[c]));
    json_t *ops = json_object();
    for (size_t i = 0; i < st->nops; i++) {
        const lt_op_stats_t *o = &st->ops[i];
        json_t *errs = json_object();
        for (size_t r = 0; r < o->nreasons; r++)
            json_object_set_new(errs, o->reasons[r].name,
                                json_integer((json_int_t)o->reasons[r].count));
        json_object_set_new(ops, o->name,
                            json_pack("{sIsoso}", "ok", (json_int_t)o->ok, "errors", errs, "hist",
                                      lt_hist_to_json(&o->hist)));
    }
    return json_pack("{sIsos{sIsIsI}so}", "sec", (json_int_t)st->sec, "counters", counters, "conns",
                     "open", (json_int_t)st->conns_open, "change", (json_int_t)st->conns_change,
                     "peak", (json_int_t)st->conns_peak, "ops", ops);
}

lt_stats_t *lt_stats_from_json(const json_t *j, char *err, size_t errlen)
{
    json_t *sec = json_object_get(j, "sec"), *counters = json_object_get(j, "counters"),
           *conns = json_object_get(j, "conns"), *ops = json_object_get(j, "ops");
    if (!json_is_object(j) || !json_is_integer(sec) || !json_is_object(counters) ||
        !json_is_object(conns) || !json_is_object(ops)) {
        kz_errf(err, errlen, "stats: expected {sec, counters, conns, ops}");
        return NULL;
    }
    json_t *open = json_object_get(conns, "open"), *change = json_object_get(conns, "change"),
           *peak = json_object_get(conns, "peak");
    if (!json_is_integer(open) || !json_is_integer(change) || !json_is_integer(peak)) {
        kz_errf(err, errlen, "stats: conns: expected integers open, change, peak");
        return NULL;
    }
    /* A worker's gauge moves with its sockets: bounded by what its bots can
     * hold (a few connections each), so sums over a run stay far from overflow. */
    const json_int_t cmax = LT_MAX_CONNS;
    if (json_integer_value(open) < -cmax || json_integer_value(open) > cmax ||
        json_integer_value(change) < -cmax || json_integer_value(change) > cmax ||
        json_integer_value(peak) < 0 || json_integer_value(peak) > cmax) {
        kz_errf(err, errlen, "stats: conns: open/change outside +-%lld or peak outside 0..%lld",
                (long long)cmax, (long long)cmax);
        return NULL;
    }
    lt_stats_t *st = lt_stats_new();
    st->sec = json_integer_value(sec);
    st->conns_open = json_integer_value(open);
    st->conns_change = json_integer_value(change);
    st->conns_peak = json_integer_value(peak);
    const char *key;
    json_t *v;
    json_object_foreach(counters, key, v)
    {
        for (size_t c = 0; c < LT_C_COUNT_; c++) {
            if (strcmp(key, counter_names[c]) != 0) continue;
            if (!is_count(v)) {
                kz_errf(err, errlen, "stats: counter %s: expected an integer in 0..%llu",
                        counter_names[c], (unsigned long long)LT_MAX_COUNT);
                lt_stats_free(st);
                return NULL;
            }
            st->counters[c] = (uint64_t)json_integer_value(v);
        }
    }
    lt_hist_t h;
    lt_hist_init(&h);
    json_object_foreach(ops, key, v)
    {
        uint64_t ok;
        json_t *errs = json_object_get(v, "errors");
        char herr[128];
        if (!*key || !json_is_object(v) || get_uint(v, "ok", &ok) < 0 || !json_is_object(errs) ||
            lt_hist_from_json(&h, json_object_get(v, "hist"), herr, sizeof herr) < 0) {
            kz_errf(err, errlen, "stats: op '%.31s': expected {ok, errors, hist}", key);
            goto fail;
        }
        if (h.count != ok) {
            kz_errf(err, errlen, "stats: op '%.31s': ok is %" PRIu64 " but the histogram has %" PRIu64,
                    key, ok, h.count);
            goto fail;
        }
        lt_op_stats_t *o = op_slot(st, key, true);
        o->ok += ok;
        lt_hist_merge(&o->hist, &h);
        const char *reason;
        json_t *n;
        json_object_foreach(errs, reason, n)
        {
            if (!is_count(n)) {
                kz_errf(err, errlen, "stats: op '%.31s': error count of '%.47s' is not a count",
                        key, reason);
                goto fail;
            }
            if (json_integer_value(n) > 0) add_reason(o, reason, (uint64_t)json_integer_value(n));
        }
    }
    lt_hist_free(&h);
    return st;
fail:
    lt_hist_free(&h);
    lt_stats_free(st);
    return NULL;
}

/* ----- The run ----------------------------------------------------------- */

lt_run_t *lt_run_new(void)
{
    lt_run_t *run = kz_calloc(1, sizeof *run);
    run->total = lt_stats_new();
    run->limit = LT_MAX_SECONDS;
    return run;
}

static void free_pending(lt_sec_t *s)
{
    for (size_t i = 0; i < s->npending; i++) {
        if (!s->pending[i]) continue;
        lt_hist_free(s->pending[i]);
        free(s->pending[i]);
    }
    free(s->pending);
    s->pending = NULL;
    s->npending = 0;
}

void lt_run_free(lt_run_t *run)
{
    if (!run) return;
    for (size_t i = 0; i < run->nsecs; i++) {
        free_pending(&run->secs[i]);
        free(run->secs[i].ops);
    }
    free(run->secs);
    free(run->op_names);
    lt_stats_free(run->total);
    free(run);
}

int lt_run_op_index(const lt_run_t *run, const char *op)
{
    char name[LT_OP_NAME_MAX];
    copy_name(name, sizeof name, op);
    for (size_t i = 0; i < run->nops; i++)
        if (strcmp(run->op_names[i], name) == 0) return (int)i;
    return -1;
}

/* Computes a second's quantiles and frees its histograms. */
static void finalise(lt_sec_t *s)
{
    for (size_t i = 0; i < s->npending && i < s->nops; i++) {
        if (!s->pending[i]) continue;
        s->ops[i].p50_us = lt_hist_quantile(s->pending[i], 0.5);
        s->ops[i].p99_us = lt_hist_quantile(s->pending[i], 0.99);
    }
    free_pending(s);
}

static void grow_secs(lt_run_t *run, size_t need)
{
    if (need <= run->nsecs) return;
    size_t cap = run->nsecs ? run->nsecs : 64;
    while (cap < need) cap *= 2;
    if (cap > LT_MAX_SECONDS) cap = LT_MAX_SECONDS;
    run->secs = kz_realloc(run->secs, cap * sizeof *run->secs);
    memset(run->secs + run->nsecs, 0, (cap - run->nsecs) * sizeof *run->secs);
    run->nsecs = cap;
}

int lt_run_add(lt_run_t *run, const lt_stats_t *delta, char *err, size_t errlen)
{
    int64_t limit = run->limit > 0 && run->limit < LT_MAX_SECONDS ? run->limit : LT_MAX_SECONDS;
    if (delta->sec < 0 || delta->sec >= limit) {
        kz_errf(err, errlen, "stats: second %" PRId64 " is outside the run (0..%" PRId64 ")",
                delta->sec, limit - 1);
        return -1;
    }
    lt_stats_t *t = run->total;
    int64_t open = t->conns_open, peak = t->conns_peak;
    lt_stats_merge(t, delta);
    t->conns_open = open + delta->conns_change;
    t->conns_change = 0;
    t->conns_peak = peak;

    /* The total's op table decides names and folding into "other"; the
     * series uses the same indexes. */
    for (size_t i = run->nops; i < t->nops; i++) {
        run->op_names = kz_realloc(run->op_names, (i + 1) * sizeof *run->op_names);
        memcpy(run->op_names[i], t->ops[i].name, LT_OP_NAME_MAX);
        run->nops = i + 1;
    }

    grow_secs(run, (size_t)delta->sec + 1);
    lt_sec_t *s = &run->secs[delta->sec];
    s->seen = true;
    s->conns += delta->conns_open;
    s->msgs_sent += delta->counters[LT_C_MSGS_SENT];
    s->msgs_recv += delta->counters[LT_C_MSGS_RECV];
    s->bots_started += delta->counters[LT_C_BOTS_STARTED];
    s->bots_finished += delta->counters[LT_C_BOTS_FINISHED];
    s->bots_failed += delta->counters[LT_C_BOTS_FAILED];
    if (s->conns > t->conns_peak) t->conns_peak = s->conns;
    if (delta->conns_peak > t->conns_peak) t->conns_peak = delta->conns_peak;
    if (s->nops < run->nops) {
        s->ops = kz_realloc(s->ops, run->nops * sizeof *s->ops);
        memset(s->ops + s->nops, 0, (run->nops - s->nops) * sizeof *s->ops);
        s->nops = run->nops;
    }
    bool open_sec = delta->sec >= run->finalised;
    if (open_sec && s->npending < run->nops) {
        s->pending = kz_realloc(s->pending, run->nops * sizeof *s->pending);
        memset(s->pending + s->npending, 0, (run->nops - s->npending) * sizeof *s->pending);
        s->npending = run->nops;
    }
    for (size_t i = 0; i < delta->nops; i++) {
        const lt_op_stats_t *o = &delta->ops[i];
        const lt_op_stats_t *slot = op_slot(t, o->name, false);
        size_t idx = (size_t)(slot - t->ops);
        s->ops[idx].ok += o->ok;
        s->ops[idx].errors += o->errors;
        if (open_sec && o->hist.count) {
            if (!s->pending[idx]) {
                s->pending[idx] = kz_calloc(1, sizeof(lt_hist_t));
                lt_hist_init(s->pending[idx]);
            }
            lt_hist_merge(s->pending[idx], &o->hist);
        }
    }

    /* Keep histograms only for the last few seconds. */
    int64_t keep = delta->sec - LT_SERIES_WINDOW;
    while (run->finalised < keep) finalise(&run->secs[run->finalised++]);
    return 0;
}

void lt_run_finish(lt_run_t *run)
{
    for (size_t i = 0; i < run->nsecs; i++) finalise(&run->secs[i]);
    /* Trim the unseen tail. */
    size_t n = run->nsecs;
    while (n > 0 && !run->secs[n - 1].seen) {
        free(run->secs[n - 1].ops);
        n--;
    }
    run->nsecs = n;
    run->finalised = (int64_t)n;
}

json_t *lt_run_to_json(const lt_run_t *run)
{
    json_t *series = json_array();
    for (size_t i = 0; i < run->nsecs; i++) {
        const lt_sec_t *s = &run->secs[i];
        if (!s->seen) continue;
        json_t *ops = json_object();
        for (size_t k = 0; k < s->nops; k++) {
            const lt_sec_op_t *o = &s->ops[k];
            if (!o->ok && !o->errors) continue;
            json_object_set_new(ops, run->op_names[k],
                                json_pack("{sIsIsIsI}", "ok", (json_int_t)o->ok, "errors",
                                          (json_int_t)o->errors, "p50_us", (json_int_t)o->p50_us,
                                          "p99_us", (json_int_t)o->p99_us));
        }
        json_array_append_new(
            series, json_pack("{sIsIsIsIsIsIsIso}", "sec", (json_int_t)i, "conns",
                              (json_int_t)s->conns, "msgs_sent", (json_int_t)s->msgs_sent,
                              "msgs_recv", (json_int_t)s->msgs_recv, "bots_started",
                              (json_int_t)s->bots_started, "bots_finished",
                              (json_int_t)s->bots_finished, "bots_failed",
                              (json_int_t)s->bots_failed, "ops", ops));
    }
    return json_pack("{soso}", "total", lt_stats_to_json(run->total), "series", series);
}
