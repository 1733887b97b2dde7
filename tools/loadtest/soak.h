/* kizuna-loadtest soak mode: the server's memory and connections over a
 * long run, and whether memory keeps growing.
 *
 * The coordinator fetches the server's Prometheus endpoint every
 * soak.every, hands the body to lt_prom_parse, and keeps what it found
 * with lt_soak_add. At the end lt_soak_judge fits a least-squares line to
 * RSS over the second half of the run (by time) and flags growth when the
 * line's rise across that half exceeds 10% of the half's median RSS. */
#ifndef KZ_LOADTEST_SOAK_H
#define KZ_LOADTEST_SOAK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LT_SOAK_MAX_SAMPLES 1000000 /* later samples are dropped (lt_soak_add returns -1) */
#define LT_SOAK_MIN_SAMPLES 4       /* samples needed in the second half for a verdict */
#define LT_SOAK_GROWTH_LIMIT 0.10   /* rise over the half / median RSS that counts as growth */
#define LT_SOAK_LOAD_LIMIT 0.10     /* server connections varying more than this over the half
                                       (of their highest value): memory follows the load, no verdict */

/* What lt_prom_parse found (bits of its result). */
#define LT_PROM_RSS 0x1   /* process_resident_memory_bytes */
#define LT_PROM_CONNS 0x2 /* kizuna_connections_open */

/* Reads Prometheus text exposition: sets *rss_bytes from
 * process_resident_memory_bytes and *conns from kizuna_connections_open
 * (when a metric has several labelled series, their sum). Comments, other
 * metrics, timestamps and malformed lines are skipped. Returns the LT_PROM_*
 * bits of what was found (0: neither; the outputs are then untouched). */
int lt_prom_parse(const char *text, size_t len, double *rss_bytes, double *conns);

typedef struct {
    int64_t t_ms;     /* since the run start */
    double rss_bytes; /* negative when the server did not report it */
    double conns;     /* negative when the server did not report it */
} lt_soak_sample_t;

typedef struct {
    lt_soak_sample_t *v;
    size_t n, cap;
    uint64_t failures; /* fetches that failed or found neither metric (lt_soak_fail) */
} lt_soak_t;

void lt_soak_init(lt_soak_t *s);
void lt_soak_free(lt_soak_t *s);
/* Appends a sample (pass a negative value for a metric not found). 0, or -1
 * when LT_SOAK_MAX_SAMPLES are already kept. */
int lt_soak_add(lt_soak_t *s, int64_t t_ms, double rss_bytes, double conns);
/* Counts a failed fetch. */
void lt_soak_fail(lt_soak_t *s);

typedef struct {
    bool judged;        /* false: too few RSS samples in the second half, or the load changed */
    bool load_changing; /* the server's connections varied past LT_SOAK_LOAD_LIMIT over the half */
    double conns_min, conns_max; /* server connections over the second half (-1: none) */
    bool growing;       /* judged and growth > LT_SOAK_GROWTH_LIMIT * median */
    size_t samples;     /* RSS samples in the second half */
    double median_rss;  /* bytes, over the second half */
    double slope;       /* bytes per second (least squares over the second half) */
    double growth;      /* slope * the half's time span: bytes */
    double mib_per_hour;
    double first_rss, last_rss; /* bytes: the first and last RSS samples of the whole run */
    double peak_conns;  /* highest kizuna_connections_open seen, -1 when none */
} lt_soak_verdict_t;

/* The second half is the samples with t >= (t_first + t_last) / 2 of the
 * samples that carry RSS. */
void lt_soak_judge(const lt_soak_t *s, lt_soak_verdict_t *out);

/* One line: "soak: RSS 41.2 MiB -> 43.0 MiB, +1.10 MiB/hour over the second
 * half (12 samples, median 42.5 MiB): no growth" / "...: GROWING (+15.3% of
 * the median)" / "soak: not enough samples (2 in the second half, need 4)" /
 * "soak: not judged: the server's connections went from 15012 to 19801 over
 * the second half (memory follows the load; hold a steady load longer)". */
int lt_soak_describe(const lt_soak_verdict_t *v, char *out, size_t cap);

/* {"samples":[[t_ms,rss,conns],...],"failures":N,"verdict":{...}} (negative
 * values for missing metrics are written as null). */
json_t *lt_soak_to_json(const lt_soak_t *s, const lt_soak_verdict_t *v);

#endif
