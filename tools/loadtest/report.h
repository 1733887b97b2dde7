/* kizuna-loadtest reports: the end-of-run summary as text (stdout), JSON
 * (everything, including the per-second series) and one self-contained HTML
 * file with inline SVG charts (no scripts, fonts or stylesheets from
 * elsewhere; every name is escaped).
 *
 * Call lt_run_finish on the run first. The soak argument may be NULL (no
 * soak sampling); when given, its verdict is computed here. */
#ifndef KZ_LOADTEST_REPORT_H
#define KZ_LOADTEST_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "loadtest/soak.h"
#include "loadtest/stats.h"

/* What the report says about the run besides the numbers. Strings may be
 * NULL (left out). */
typedef struct {
    const char *scenario;  /* scenario name */
    const char *file;      /* scenario file */
    const char *run_id;
    const char *target;    /* "127.0.0.1:7350" */
    const char *started;   /* wall-clock start, e.g. "2025-01-31 12:00:00 UTC" */
    int64_t bots;          /* planned */
    int64_t duration_ms;   /* planned */
    double elapsed_s;      /* actual run time; rates are per this (<= 0: duration_ms) */
    int processes;         /* worker processes (over all agents) */
    int agents;            /* 0 for a local run */
} lt_report_info_t;

/* The text report, owned by the caller (free()):
 *
 *   op                        count       ok/s   errors    p50 ms    p90 ms    p99 ms  p99.9 ms    max ms
 *   auth                       2000      200.0        0      3.10      5.20      9.80     12.00     12.40
 *   ...
 * (count = ok + errors; ok/s = ok / elapsed; latencies of the ok ones; the
 * op column is as wide as the longest name), then counters, errors by
 * reason, and the soak line when soak != NULL. */
char *lt_report_text(const lt_run_t *run, const lt_soak_t *soak, const lt_report_info_t *info);

/* Everything: {"info":{...},"summary":{"ops":{"auth":{"count":..,"ok_per_s":..,
 * "errors":..,"p50_ms":..,"p90_ms":..,"p99_ms":..,"p999_ms":..,"max_ms":..,
 * "mean_ms":..,"reasons":{..}}},"counters":{..},"conns_peak":..},
 * "run":<lt_run_to_json>,"soak":<lt_soak_to_json or null>}. New reference. */
json_t *lt_report_json(const lt_run_t *run, const lt_soak_t *soak, const lt_report_info_t *info);

/* The HTML page, owned by the caller (free()): the summary tables and SVG
 * line charts of throughput per op, p50 and p99 per op, open connections,
 * and (with soak samples) server RSS and server connections, over time. */
char *lt_report_html(const lt_run_t *run, const lt_soak_t *soak, const lt_report_info_t *info);

/* Write the JSON or HTML report to path. 0, or -1 with a message in err. */
int lt_report_write_json(const char *path, const lt_run_t *run, const lt_soak_t *soak,
                         const lt_report_info_t *info, char *err, size_t errlen);
int lt_report_write_html(const char *path, const lt_run_t *run, const lt_soak_t *soak,
                         const lt_report_info_t *info, char *err, size_t errlen);

#endif
