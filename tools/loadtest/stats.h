/* kizuna-loadtest statistics: what the bots measured.
 *
 * An lt_stats_t holds, per operation (a short name such as "auth" or
 * "chat_send"), the count of successes, a latency histogram (µs) and the
 * errors by reason; plus counters (bots started/finished/failed, messages
 * and bytes, late iterations) and the open-connections gauge.
 *
 * Flow: each worker records into one lt_stats_t; once a second (at each
 * whole second since the run start) it calls lt_stats_take_delta, which
 * moves out what was recorded since the previous call, labelled with that
 * second, and sends lt_stats_to_json of it as one line. The parent parses
 * the line (lt_stats_from_json: bad input is an error, never a crash) and
 * adds it to an lt_run_t: the run total plus the per-second series. Deltas
 * of the same second from several workers can also be combined first with
 * lt_stats_merge (an agent forwarding its workers' deltas does that).
 *
 * Histograms are log-linear: exact below 128 µs, then every power of two
 * split into 128 sub-buckets, up to 1 hour (larger values land in the last
 * bucket, max stays exact); a quantile is within 1% of the true value.
 * Bucket storage is allocated per power of two on first use, so an
 * op whose latencies span a few powers of two costs a few KiB. */
#ifndef KZ_LOADTEST_STATS_H
#define KZ_LOADTEST_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LT_OP_NAME_MAX 32     /* op name buffer: names are <= 31 chars (longer: truncated) */
#define LT_REASON_MAX 48      /* reason buffer: <= 47 chars (longer: truncated) */
#define LT_MAX_REASONS 32     /* distinct reasons per op; later ones go under "other" */
#define LT_MAX_OPS 48         /* distinct ops per stats; later ones go under op "other" */
#define LT_MAX_SECONDS 2678400 /* series length bound: 31 days */
/* Bounds of what lt_stats_from_json accepts (a line is rejected otherwise):
 * every count (counters, ok, errors, histogram n/sum/buckets) is in
 * 0..LT_MAX_COUNT; conns open and change are within +-LT_MAX_CONNS, peak in
 * 0..LT_MAX_CONNS (4 connections per bot at most). */
#define LT_MAX_COUNT (1ULL << 48)
#define LT_MAX_CONNS (4LL * 10000000) /* 4 * LT_MAX_BOTS (scenario.h) */

/* ----- Histogram ------------------------------------------------------- */

#define LT_HIST_SUB 128                 /* sub-buckets per power of two */
#define LT_HIST_MAX_US 3600000000ULL    /* 1 h: the last bucket */
#define LT_HIST_CHUNKS 26               /* chunks of LT_HIST_SUB buckets */
#define LT_HIST_BUCKETS (LT_HIST_CHUNKS * LT_HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t min, max; /* exact, µs; 0 when empty */
    uint64_t sum;      /* for the mean */
    uint64_t *chunk[LT_HIST_CHUNKS]; /* NULL until a value falls in it */
} lt_hist_t;

void lt_hist_init(lt_hist_t *h);
void lt_hist_free(lt_hist_t *h); /* frees the chunks; h can be reused after lt_hist_init */
void lt_hist_reset(lt_hist_t *h);
void lt_hist_record(lt_hist_t *h, uint64_t us);
void lt_hist_record_n(lt_hist_t *h, uint64_t us, uint64_t n);
/* dst += src: the same as recording every value of src into dst. */
void lt_hist_merge(lt_hist_t *dst, const lt_hist_t *src);
/* The value at quantile q (0..1; 0.5, 0.99, 0.999): the smallest recorded
 * value v such that at least ceil(q * count) values are <= v, to within the
 * bucket's precision (and clamped to [min, max]). 0 when empty. */
uint64_t lt_hist_quantile(const lt_hist_t *h, double q);
double lt_hist_mean(const lt_hist_t *h); /* 0 when empty */

/* Bucket index of a value and the [lo, hi] values a bucket stands for
 * (exposed for tests). */
size_t lt_hist_bucket(uint64_t us);
void lt_hist_bucket_range(size_t idx, uint64_t *lo, uint64_t *hi);

/* {"n":count,"min":..,"max":..,"sum":..,"b":[idx,count,idx,count,...]}
 * with only the non-empty buckets, in index order. */
json_t *lt_hist_to_json(const lt_hist_t *h);
/* Parses into h (which must be initialised and is reset first). Rejects
 * wrong types, bucket indexes out of range or not increasing, and counts
 * whose sum differs from "n". 0, or -1 with a message in err. */
int lt_hist_from_json(lt_hist_t *h, const json_t *j, char *err, size_t errlen);

/* ----- Per-op stats, counters, the stats of one process ----------------- */

typedef struct {
    char name[LT_REASON_MAX];
    uint64_t count;
} lt_reason_t;

typedef struct {
    char name[LT_OP_NAME_MAX];
    uint64_t ok;
    uint64_t errors; /* sum over reasons */
    lt_hist_t hist;  /* latency of the ok ones, µs */
    lt_reason_t reasons[LT_MAX_REASONS + 1]; /* the last slot is only ever "other" */
    size_t nreasons;
} lt_op_stats_t;

typedef enum {
    LT_C_BOTS_STARTED,
    LT_C_BOTS_FINISHED, /* completed their steps, or were stopped at the end */
    LT_C_BOTS_FAILED,   /* ended by an error */
    LT_C_MSGS_SENT,     /* socket messages sent */
    LT_C_MSGS_RECV,     /* socket messages received */
    LT_C_BYTES_SENT,
    LT_C_BYTES_RECV,
    LT_C_LATE,          /* repeat iterations skipped because they were late */
    LT_C_COUNT_
} lt_counter_t;

typedef struct {
    int64_t sec; /* the run second a delta belongs to; -1 for a total */
    uint64_t counters[LT_C_COUNT_];
    /* Open connections (sockets and HTTP connections alike, as the
     * recorder counts them with lt_stats_conn). conns_open is the current
     * value when this was taken (a delta carries the worker's value at the
     * end of its second; merging deltas adds them); conns_change is the
     * change since the previous delta; conns_peak the highest value seen
     * (in a delta: within its second; merging adds them). */
    int64_t conns_open;
    int64_t conns_change;
    int64_t conns_peak;
    lt_op_stats_t *ops; /* in order of first use */
    size_t nops;
} lt_stats_t;

lt_stats_t *lt_stats_new(void);
void lt_stats_free(lt_stats_t *st);

/* Records one success of op with its latency. */
void lt_stats_ok(lt_stats_t *st, const char *op, uint64_t latency_us);
/* Records one failure of op with a reason ("http 401", "timeout", ...). */
void lt_stats_error(lt_stats_t *st, const char *op, const char *reason);
/* Registers op with no event yet (so reports list it); returns its stats. */
lt_op_stats_t *lt_stats_op(lt_stats_t *st, const char *op);
void lt_stats_add(lt_stats_t *st, lt_counter_t c, uint64_t n);
/* +1 when a connection opens, -1 when it closes. */
void lt_stats_conn(lt_stats_t *st, int change);

/* Moves out everything recorded since the previous call (or since
 * creation) as a new lt_stats_t labelled `sec`, leaving st empty apart from
 * the gauge (conns_open stays; the delta gets conns_open, the change since
 * the previous take, and the peak within the interval). Never NULL. */
lt_stats_t *lt_stats_take_delta(lt_stats_t *st, int64_t sec);

/* A delta for a second in which nothing was recorded (the loop could not
 * take one then, e.g. it stalled): labelled `sec`, no events, conns_open the
 * gauge as of the previous take (st->conns_open - st->conns_change), no
 * change, peak that value. st is left as it is. Never NULL. */
lt_stats_t *lt_stats_empty_delta(const lt_stats_t *st, int64_t sec);

/* dst += src: counts, histograms, reasons, counters, and the three conns_*
 * fields added (see above); dst->sec is kept. */
void lt_stats_merge(lt_stats_t *dst, const lt_stats_t *src);

/* The op's stats, or NULL. */
const lt_op_stats_t *lt_stats_find(const lt_stats_t *st, const char *op);

/* {"sec":..,"counters":{"bots_started":..,...},"conns":{"open":..,
 * "change":..,"peak":..},"ops":{"auth":{"ok":..,"errors":{"http 401":3},
 * "hist":{...}}, ...}} */
json_t *lt_stats_to_json(const lt_stats_t *st);
/* The reverse; NULL with a message in err on anything malformed (unknown
 * counter names are ignored, for forward compatibility). */
lt_stats_t *lt_stats_from_json(const json_t *j, char *err, size_t errlen);

/* The JSON name of a counter ("bots_started"). */
const char *lt_counter_name(lt_counter_t c);

/* ----- The run: total plus per-second series ----------------------------- */

/* One op in one second of the series. */
typedef struct {
    uint64_t ok, errors;
    uint64_t p50_us, p99_us; /* of that second's ok latencies; 0 when none */
} lt_sec_op_t;

/* One second of the series. */
typedef struct {
    bool seen;            /* at least one delta for this second arrived */
    int64_t conns;        /* open connections at the end of the second (sum over workers) */
    uint64_t msgs_sent, msgs_recv;
    uint64_t bots_started, bots_finished, bots_failed;
    lt_sec_op_t *ops;     /* indexed like lt_run_t.op_names; nops may be < run's */
    size_t nops;
    lt_hist_t **pending;  /* internal: per-op histograms until the second is finalised */
    size_t npending;
} lt_sec_t;

typedef struct {
    lt_stats_t *total;    /* sum of all deltas; total->sec == -1 */
    lt_sec_t *secs;       /* seconds 0..nsecs-1 since the run start; rows with seen ==
                             false had no delta (before lt_run_finish, rows past the
                             newest second are spare capacity) */
    size_t nsecs;
    char (*op_names)[LT_OP_NAME_MAX]; /* ops in order of first appearance */
    size_t nops;
    int64_t finalised;    /* seconds < this have their quantiles computed */
    int64_t limit;        /* deltas must have sec < limit: LT_MAX_SECONDS from lt_run_new;
                             a coordinator may lower it (e.g. duration + a minute) so a bad
                             worker line cannot make the series large */
} lt_run_t;

lt_run_t *lt_run_new(void);
void lt_run_free(lt_run_t *run);

/* Adds a delta (delta->sec in 0..run->limit-1) to the total and to
 * that second of the series. Seconds more than LT_SERIES_WINDOW older than
 * the newest seen are finalised (their p50/p99 computed, histograms freed):
 * memory stays bounded in long runs; a delta arriving later for a
 * finalised second still adds its counts, but not its latencies, to that
 * second (the total gets everything). 0, or -1 with a message in err (bad
 * second). */
#define LT_SERIES_WINDOW 5
int lt_run_add(lt_run_t *run, const lt_stats_t *delta, char *err, size_t errlen);

/* Finalises every second (call at the end, before reporting). */
void lt_run_finish(lt_run_t *run);

/* Index of op in run->op_names, or -1. */
int lt_run_op_index(const lt_run_t *run, const char *op);

/* {"total":<lt_stats json>,"series":[{"sec":0,"conns":..,"msgs_sent":..,
 * "msgs_recv":..,"bots_started":..,"bots_finished":..,"bots_failed":..,
 * "ops":{"auth":{"ok":..,"errors":..,"p50_us":..,"p99_us":..}}}, ...]}
 * (seconds never seen are left out). Call lt_run_finish first. */
json_t *lt_run_to_json(const lt_run_t *run);

#endif
