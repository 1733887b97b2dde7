/* Prometheus metrics with lock-free recording.
 *
 * Every value is a C11 atomic updated with relaxed ordering: each counter is
 * independent, so no ordering between them is needed, and a scrape that runs
 * while requests finish may see one histogram a request ahead of a counter,
 * which Prometheus tolerates. Nothing is allocated on the recording path.
 *
 * Layout:
 *  - one route_stats per registered route, plus one at index nroutes for
 *    requests that matched no route (rendered as route="unmatched");
 *  - per route, a small open table of status codes: a slot is claimed once by
 *    compare-and-swap from 0 to the code and keeps it, so recording is a
 *    short scan plus one atomic add; codes beyond the table (or outside
 *    100..599) are counted under status="other";
 *  - per histogram, one non-cumulative counter per bucket (the last is +Inf)
 *    and the sum in integer microseconds, so the sum is exact and can be
 *    added atomically. Rendering makes the buckets cumulative and takes
 *    _count from the +Inf bucket, so _count always equals le="+Inf" within
 *    one scrape. */
#include "core/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/strbuf.h"

/* Distinct status codes remembered per route; a server answers with far
 * fewer than this from any one route. */
#define STATUS_SLOTS 16
/* Upper bounds of the latency buckets, in seconds. */
#define NBUCKETS 14

static const double bucket_bounds[NBUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
/* The same bounds as they appear in the le label (index NBUCKETS is +Inf). */
static const char *const bucket_labels[NBUCKETS + 1] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf",
};

typedef struct {
    atomic_uint_fast64_t buckets[NBUCKETS + 1]; /* non-cumulative; last is +Inf */
    atomic_uint_fast64_t sum_us;                /* sum of observations, microseconds */
} histogram_t;

typedef struct {
    atomic_int code;              /* 0 = free, else the status this slot counts */
    atomic_uint_fast64_t count;   /* requests answered with that status */
} status_slot_t;

typedef struct {
    status_slot_t status[STATUS_SLOTS]; /* claimed in order, never released */
    atomic_uint_fast64_t other;         /* statuses that found no slot */
    histogram_t latency;                /* request duration */
} route_stats_t;

/* Route table. Before kz_metrics_init there are no named routes and every
 * request counts as unmatched in the static fallback slot. */
static route_stats_t fallback_routes[1];
static route_stats_t *routes = fallback_routes; /* nroutes + 1 entries */
static const char *const *route_names;          /* borrowed from the caller */
static int nroutes;

static atomic_int_fast64_t connections_open;
static atomic_int_fast64_t queue_depth;
static histogram_t db_latency;

void kz_metrics_init(const char *const *names, int n)
{
    /* Start-up (and test) only: no observation may run concurrently. */
    if (n < 0 || !names) n = 0;
    if (routes != fallback_routes) kz_free(routes);
    memset(fallback_routes, 0, sizeof fallback_routes);
    routes = n > 0 ? kz_calloc((size_t)n + 1, sizeof *routes) : fallback_routes;
    route_names = names;
    nroutes = n;
    atomic_store_explicit(&connections_open, 0, memory_order_relaxed);
    atomic_store_explicit(&queue_depth, 0, memory_order_relaxed);
    memset(&db_latency, 0, sizeof db_latency);
}

/* ----- Recording --------------------------------------------------------- */

/* Adds one observation. NaN and negative durations (a clock step) count as 0;
 * huge ones saturate instead of overflowing the microsecond sum. */
static void histogram_observe(histogram_t *h, double seconds)
{
    if (!(seconds > 0)) seconds = 0;
    if (seconds > 1e9) seconds = 1e9;
    int b = 0;
    while (b < NBUCKETS && seconds > bucket_bounds[b]) b++; /* le is inclusive */
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)llround(seconds * 1e6),
                              memory_order_relaxed);
}

/* Counts one response with this status on route r. */
static void status_count(route_stats_t *r, int status)
{
    if (status < 100 || status > 599) {
        atomic_fetch_add_explicit(&r->other, 1, memory_order_relaxed);
        return;
    }
    for (int i = 0; i < STATUS_SLOTS; i++) {
        status_slot_t *s = &r->status[i];
        int code = atomic_load_explicit(&s->code, memory_order_relaxed);
        if (code == 0) {
            /* Claim the free slot; if another thread got there first,
             * `code` now holds what it stored and we compare against it. */
            int expected = 0;
            if (atomic_compare_exchange_strong_explicit(&s->code, &expected, status,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed))
                code = status;
            else
                code = expected;
        }
        if (code == status) {
            atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
            return;
        }
    }
    atomic_fetch_add_explicit(&r->other, 1, memory_order_relaxed);
}

void kz_metrics_http_observe(int route, int status, double seconds)
{
    if (route < 0 || route >= nroutes) route = nroutes; /* unmatched */
    route_stats_t *r = &routes[route];
    status_count(r, status);
    histogram_observe(&r->latency, seconds);
}

void kz_metrics_connections_add(int delta)
{
    atomic_fetch_add_explicit(&connections_open, delta, memory_order_relaxed);
}

void kz_metrics_queue_add(int delta)
{
    atomic_fetch_add_explicit(&queue_depth, delta, memory_order_relaxed);
}

void kz_metrics_db_observe(double seconds)
{
    histogram_observe(&db_latency, seconds);
}

/* ----- Rendering --------------------------------------------------------- */

/* Appends a label value escaped as the exposition format requires:
 * backslash, double quote and line feed become \\, \" and \n. */
static void sb_label(kz_strbuf_t *b, const char *v)
{
    kz_strbuf_reserve(b, 2 * strlen(v));
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = *v;
        } else if (*v == '\n') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = 'n';
        } else {
            b->p[b->len++] = *v;
        }
    }
    b->p[b->len] = '\0';
}

static void sb_family(kz_strbuf_t *b, const char *name, const char *type, const char *help)
{
    kz_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends a microsecond total as seconds with no trailing zeros
 * (1500000 -> "1.5", 2000000 -> "2", 250 -> "0.00025"). */
static void sb_seconds(kz_strbuf_t *b, uint64_t us)
{
    char frac[8];
    snprintf(frac, sizeof frac, "%06u", (unsigned)(us % 1000000));
    size_t n = 6;
    while (n > 0 && frac[n - 1] == '0') n--;
    frac[n] = '\0';
    if (n)
        kz_strbuf_printf(b, "%llu.%s", (unsigned long long)(us / 1000000), frac);
    else
        kz_strbuf_printf(b, "%llu", (unsigned long long)(us / 1000000));
}

/* Appends the _bucket/_sum/_count series of one histogram. `labels` is the
 * already-escaped label list without braces (`route="x"`), or NULL. */
static void render_histogram(kz_strbuf_t *b, const char *name, const char *labels, const histogram_t *h)
{
    const char *sep = labels ? "," : "";
    if (!labels) labels = "";
    /* Read every bucket once so the cumulative values and _count agree. */
    uint64_t cum = 0;
    for (int i = 0; i <= NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        kz_strbuf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, bucket_labels[i],
                  (unsigned long long)cum);
    }
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    kz_strbuf_printf(b, "%s_sum%s%s%s ", name, open, labels, close);
    sb_seconds(b, atomic_load_explicit(&h->sum_us, memory_order_relaxed));
    kz_strbuf_printf(b, "\n%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)cum);
}

static const char *route_label(int i)
{
    return i < nroutes ? route_names[i] : "unmatched";
}

static uint64_t histogram_total(const histogram_t *h)
{
    uint64_t n = 0;
    for (int i = 0; i <= NBUCKETS; i++)
        n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return n;
}

/* Appends the request counter series of route i, statuses in ascending order
 * so the output is stable from scrape to scrape. */
static void render_route_counts(kz_strbuf_t *b, int i)
{
    const route_stats_t *r = &routes[i];
    int codes[STATUS_SLOTS];
    uint64_t counts[STATUS_SLOTS];
    int n = 0;

    for (int s = 0; s < STATUS_SLOTS; s++) {
        int code = atomic_load_explicit(&r->status[s].code, memory_order_relaxed);
        uint64_t c = atomic_load_explicit(&r->status[s].count, memory_order_relaxed);
        if (code == 0 || c == 0) continue;
        /* Insertion sort: at most 16 entries. */
        int j = n++;
        while (j > 0 && codes[j - 1] > code) {
            codes[j] = codes[j - 1];
            counts[j] = counts[j - 1];
            j--;
        }
        codes[j] = code;
        counts[j] = c;
    }
    for (int s = 0; s < n; s++) {
        kz_strbuf_puts(b, "kizuna_http_requests_total{route=\"");
        sb_label(b, route_label(i));
        kz_strbuf_printf(b, "\",status=\"%d\"} %llu\n", codes[s], (unsigned long long)counts[s]);
    }
    uint64_t other = atomic_load_explicit(&r->other, memory_order_relaxed);
    if (other) {
        kz_strbuf_puts(b, "kizuna_http_requests_total{route=\"");
        sb_label(b, route_label(i));
        kz_strbuf_printf(b, "\",status=\"other\"} %llu\n", (unsigned long long)other);
    }
}

typedef struct value_src {
    const char *name, *type, *help;
    double (*fn)(void);
} value_src_t;

static value_src_t values[KZ_METRICS_MAX_VALUES];
static int nvalues;

void kz_metrics_register_value(const char *name, const char *type, const char *help, double (*fn)(void))
{
    for (int i = 0; i < nvalues; i++)
        if (strcmp(values[i].name, name) == 0) {
            values[i] = (value_src_t){name, type, help, fn}; /* a restart in one process (tests) */
            return;
        }
    if (nvalues < KZ_METRICS_MAX_VALUES) values[nvalues++] = (value_src_t){name, type, help, fn};
}

/* The process's resident memory in bytes (Linux /proc), or -1. */
static double process_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1;
}

/* Open file descriptors of the process, or -1. */
static double process_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    double n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void sb_value(kz_strbuf_t *b, const char *name, const char *type, const char *help, double v)
{
    sb_family(b, name, type, help);
    if (v == floor(v) && fabs(v) < 9e15)
        kz_strbuf_printf(b, "%s %.0f\n", name, v);
    else
        kz_strbuf_printf(b, "%s %.9g\n", name, v);
}

char *kz_metrics_render(size_t *len)
{
    kz_strbuf_t b = {0};
    kz_strbuf_reserve(&b, 0);
    b.p[0] = '\0';

    sb_family(&b, "kizuna_http_requests_total", "counter",
              "HTTP requests by route and response status.");
    for (int i = 0; i <= nroutes; i++) render_route_counts(&b, i);

    sb_family(&b, "kizuna_http_request_duration_seconds", "histogram",
              "HTTP request duration in seconds by route.");
    for (int i = 0; i <= nroutes; i++) {
        /* Routes never hit are left out; the family header stays. */
        if (histogram_total(&routes[i].latency) == 0) continue;
        kz_strbuf_t lbl = {0};
        kz_strbuf_puts(&lbl, "route=\"");
        sb_label(&lbl, route_label(i));
        kz_strbuf_puts(&lbl, "\"");
        render_histogram(&b, "kizuna_http_request_duration_seconds", lbl.p, &routes[i].latency);
        kz_free(lbl.p);
    }

    sb_family(&b, "kizuna_connections_open", "gauge",
              "Open client connections (HTTP and WebSocket).");
    kz_strbuf_printf(&b, "kizuna_connections_open %lld\n",
              (long long)atomic_load_explicit(&connections_open, memory_order_relaxed));

    sb_family(&b, "kizuna_worker_queue_depth", "gauge", "Jobs waiting in the worker-pool queue.");
    kz_strbuf_printf(&b, "kizuna_worker_queue_depth %lld\n",
              (long long)atomic_load_explicit(&queue_depth, memory_order_relaxed));

    sb_family(&b, "kizuna_db_query_duration_seconds", "histogram",
              "Database statement duration in seconds.");
    render_histogram(&b, "kizuna_db_query_duration_seconds", NULL, &db_latency);

    for (int i = 0; i < nvalues; i++) sb_value(&b, values[i].name, values[i].type, values[i].help, values[i].fn());
    double rss = process_rss(), fds = process_fds();
    if (rss >= 0) sb_value(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
    if (fds >= 0) sb_value(&b, "process_open_fds", "gauge", "Number of open file descriptors.", fds);

    if (len) *len = b.len;
    return b.p;
}
