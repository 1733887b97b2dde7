/* Unit tests for tools/loadtest/report.c: exact lines of the text report,
 * the JSON report's numbers, and the HTML page: self-contained, with its SVG
 * charts, and every name escaped (an op called <script> stays text). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadtest/report.h"

/* True if text holds `line` as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
    return 0;
}

#define assert_line(text, line) cr_assert(has_line((text), (line)), "missing line: %s\n%s", (line), (text))

#define EVIL "<script>alert(1)</script>"

/* Ten seconds: 10 auth/s at 2 ms, one auth error, a chat op with an
 * HTML-hostile name and reason, 20 connections. */
static lt_run_t *sample_run(void)
{
    lt_run_t *run = lt_run_new();
    for (int s = 0; s < 10; s++) {
        lt_stats_t *d = lt_stats_new();
        d->sec = s;
        for (int i = 0; i < 10; i++) lt_stats_ok(d, "auth", 2000);
        lt_stats_ok(d, EVIL, 500 + (uint64_t)s * 100);
        d->counters[LT_C_MSGS_SENT] = 5;
        d->counters[LT_C_MSGS_RECV] = 50;
        d->conns_open = 20;
        d->conns_change = s == 0 ? 20 : 0;
        d->conns_peak = 20;
        if (s == 3) {
            lt_stats_error(d, "auth", "http 401");
            lt_stats_error(d, EVIL, "closed <b>1006</b>");
        }
        if (s == 0) d->counters[LT_C_BOTS_STARTED] = 20;
        if (s == 9) d->counters[LT_C_BOTS_FINISHED] = 19;
        if (s == 3) d->counters[LT_C_BOTS_FAILED] = 1;
        char err[128];
        cr_assert_eq(lt_run_add(run, d, err, sizeof err), 0, "%s", err);
        lt_stats_free(d);
    }
    lt_run_finish(run);
    return run;
}

static const lt_report_info_t info = {
    .scenario = "chat & <rooms>",
    .file = "bench/scenarios/chat_rooms.yaml",
    .run_id = "0badcafe",
    .target = "127.0.0.1:7350",
    .started = "2025-01-31 12:00:00 UTC",
    .bots = 20,
    .duration_ms = 10000,
    .elapsed_s = 10,
    .processes = 1,
};

Test(lt_report, text)
{
    lt_run_t *run = sample_run();
    char *t = lt_report_text(run, NULL, &info);
    assert_line(t, "kizuna-loadtest: chat & <rooms> (bench/scenarios/chat_rooms.yaml), run 0badcafe");
    assert_line(t, "target 127.0.0.1:7350, 20 bots planned, 10.0 s (elapsed 10.0 s), 1 process");
    assert_line(t, "started 2025-01-31 12:00:00 UTC");
    /* The op column is as wide as the longest name (25). */
    assert_line(t, "op                             count       ok/s   errors    p50 ms    p90 ms    p99 ms  "
                   "p99.9 ms    max ms");
    assert_line(t, "auth                             101       10.0        1      2.00      2.00      2.00      "
                   "2.00      2.00");
    /* 500..1400 µs, one each: p50 = 0.9 ms, p90 = 1.3, p99 = max = 1.4 */
    assert_line(t, "<script>alert(1)</script>         11        1.0        1      0.90      1.30      1.40      "
                   "1.40      1.40");
    assert_line(t, "bots: 20 started, 19 finished, 1 failed");
    assert_line(t, "connections: peak 20, 20 open at the end");
    assert_line(t, "messages: 50 sent (5.0/s), 500 received (50.0/s)");
    assert_line(t, "late iterations: 0");
    assert_line(t, "errors by reason:");
    assert_line(t, "  auth                      http 401                                  1");
    assert_line(t, "  <script>alert(1)</script> closed <b>1006</b>                        1");
    cr_assert_null(strstr(t, "soak:"));
    free(t);
    lt_run_free(run);
}

Test(lt_report, text_with_soak)
{
    lt_run_t *run = sample_run();
    lt_soak_t soak;
    lt_soak_init(&soak);
    for (int i = 0; i <= 10; i++) lt_soak_add(&soak, i * 1000, 50.0 * 1024 * 1024, 20);
    lt_soak_fail(&soak);
    char *t = lt_report_text(run, &soak, &info);
    assert_line(t, "soak: RSS 50.0 MiB -> 50.0 MiB, +0.00 MiB/hour over the second half (6 samples, "
                   "median 50.0 MiB): no growth (+0.0% of the median)");
    assert_line(t, "soak: 1 failed metric fetches");
    free(t);
    lt_soak_free(&soak);
    lt_run_free(run);
}

Test(lt_report, json)
{
    lt_run_t *run = sample_run();
    json_t *j = lt_report_json(run, NULL, &info);
    json_t *auth = json_object_get(json_object_get(json_object_get(j, "summary"), "ops"), "auth");
    cr_assert_not_null(auth);
    cr_assert_eq(json_integer_value(json_object_get(auth, "count")), 101);
    cr_assert_eq(json_integer_value(json_object_get(auth, "errors")), 1);
    cr_assert_float_eq(json_real_value(json_object_get(auth, "ok_per_s")), 10.0, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(auth, "p99_ms")), 2.0, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(auth, "reasons"), "http 401")),
                 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "info"), "run_id")),
                     "0badcafe");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "summary"), "conns_peak")),
                 20);
    json_t *series = json_object_get(json_object_get(j, "run"), "series");
    cr_assert_eq(json_array_size(series), 10);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(json_array_get(series, 4), "ops"), "auth"),
                     "ok")),
                 10);
    cr_assert(json_is_null(json_object_get(j, "soak")));
    json_decref(j);

    char path[] = "/tmp/lt-report-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char err[256];
    cr_assert_eq(lt_report_write_json(path, run, NULL, &info, err, sizeof err), 0, "%s", err);
    json_error_t je;
    json_t *back = json_load_file(path, 0, &je);
    cr_assert_not_null(back, "%s", je.text);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(back, "run"), "series")), 10);
    json_decref(back);
    unlink(path);
    cr_assert_eq(lt_report_write_json("/nonexistent/dir/r.json", run, NULL, &info, err, sizeof err),
                 -1);
    cr_assert_str_eq(err, "/nonexistent/dir/r.json: No such file or directory");
    lt_run_free(run);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

Test(lt_report, html)
{
    lt_run_t *run = sample_run();
    lt_soak_t soak;
    lt_soak_init(&soak);
    for (int i = 0; i <= 10; i++) lt_soak_add(&soak, i * 1000, (50.0 + i) * 1024 * 1024, 20 + i % 2);
    char *h = lt_report_html(run, &soak, &info);
    cr_assert(strncmp(h, "<!DOCTYPE html>\n", 16) == 0);
    /* Self-contained: no scripts, no external resources. */
    cr_assert_null(strstr(h, "<script"));
    cr_assert_null(strstr(h, "src="));
    cr_assert_null(strstr(h, "href="));
    cr_assert_null(strstr(h, "@import"));
    cr_assert_null(strstr(h, "url("));
    /* Names escaped. */
    cr_assert_not_null(strstr(h, "&lt;script&gt;alert(1)&lt;/scr"));
    cr_assert_not_null(strstr(h, "closed &lt;b&gt;1006&lt;/b&gt;"));
    cr_assert_not_null(strstr(h, "<title>kizuna-loadtest: chat &amp; &lt;rooms&gt;</title>"));
    cr_assert_null(strstr(h, "<b>"));
    /* The charts: throughput, p50, p99, errors, connections, messages, RSS,
     * server connections. */
    cr_assert_eq(count(h, "<svg "), 8);
    cr_assert_eq(count(h, "</svg>"), 8);
    cr_assert_not_null(strstr(h, "Throughput per operation"));
    cr_assert_not_null(strstr(h, "Latency p50 per operation"));
    cr_assert_not_null(strstr(h, "Latency p99 per operation"));
    cr_assert_not_null(strstr(h, "Errors per operation"));
    cr_assert_not_null(strstr(h, "Connections (load generator side)"));
    cr_assert_not_null(strstr(h, "Server resident memory"));
    cr_assert_not_null(strstr(h, "Server open connections"));
    cr_assert_geq(count(h, "<polyline"), 9);
    /* Axes with labels and ticks. */
    cr_assert_not_null(strstr(h, ">time since start</text>"));
    cr_assert_not_null(strstr(h, ">ok per second</text>"));
    cr_assert_not_null(strstr(h, ">milliseconds</text>"));
    cr_assert_not_null(strstr(h, "text-anchor=\"middle\">0s</text>"));
    cr_assert_not_null(strstr(h, "text-anchor=\"middle\">8s</text>"));
    cr_assert_not_null(strstr(h, "text-anchor=\"end\">10</text>"));
    cr_assert_not_null(strstr(h, "no growth"));
    /* The auth throughput line is flat at 10/s over seconds 0..9: the top
     * tick is 10, so y is at the top of the plot area (34). */
    cr_assert_not_null(strstr(h, "points=\"70.0,34.0 "));
    cr_assert(strstr(h, "</html>\n") && h[strlen(h) - 1] == '\n');
    free(h);

    /* Without soak samples: no server charts. */
    h = lt_report_html(run, NULL, &info);
    cr_assert_eq(count(h, "<svg "), 6);
    cr_assert_null(strstr(h, "Server resident memory"));
    free(h);

    char err[256];
    cr_assert_eq(lt_report_write_html("/nonexistent/dir/r.html", run, NULL, &info, err, sizeof err),
                 -1);
    cr_assert_str_eq(err, "/nonexistent/dir/r.html: No such file or directory");
    lt_soak_free(&soak);
    lt_run_free(run);
}

Test(lt_report, empty_run)
{
    lt_run_t *run = lt_run_new();
    lt_run_finish(run);
    lt_report_info_t i0 = {0};
    char *t = lt_report_text(run, NULL, &i0);
    assert_line(t, "(no operations recorded)");
    assert_line(t, "no errors");
    free(t);
    char *h = lt_report_html(run, NULL, &i0);
    cr_assert_not_null(strstr(h, "no data"));
    free(h);
    json_t *j = lt_report_json(run, NULL, &i0);
    cr_assert_not_null(j);
    json_decref(j);
    lt_run_free(run);
}

Test(lt_report, long_run_is_thinned)
{
    /* Six hours of seconds: each chart line is at most 1500 points. */
    lt_run_t *run = lt_run_new();
    for (int s = 0; s < 6 * 3600; s++) {
        lt_stats_t *d = lt_stats_new();
        d->sec = s;
        lt_stats_ok(d, "auth", 1000);
        lt_run_add(run, d, NULL, 0);
        lt_stats_free(d);
    }
    lt_run_finish(run);
    lt_report_info_t i0 = {.duration_ms = 6 * 3600 * 1000};
    char *h = lt_report_html(run, NULL, &i0);
    cr_assert_lt(strlen(h), 400000);
    cr_assert_not_null(strstr(h, "text-anchor=\"middle\">1h</text>"));
    free(h);
    lt_run_free(run);
}
