/* Unit tests for src/core/metrics.c: exact exposition lines for counters,
 * cumulative histogram buckets, sums and gauges, and exact totals under
 * concurrent recording. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/metrics.h"

static const char *const route_names[] = {
    "/v2/account",
    "/v2/rpc/{id}",
    "we\"ird\\route\nx",
};

static void setup(void)
{
    kz_metrics_init(route_names, 3);
}

TestSuite(metrics, .init = setup);

/* True if text holds `line` as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
    return 0;
}

#define assert_line(text, line) cr_assert(has_line((text), (line)), "missing line: %s\n%s", (line), (text))
#define assert_no_line(text, line) cr_assert(!has_line((text), (line)), "unexpected line: %s", (line))

static char *render(void)
{
    size_t len = 0;
    char *text = kz_metrics_render(&len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    cr_assert(len > 0 && text[len - 1] == '\n');
    return text;
}

Test(metrics, empty_render_has_every_family)
{
    char *t = render();
    static const char *const families[] = {
        "kizuna_http_requests_total counter",
        "kizuna_http_request_duration_seconds histogram",
        "kizuna_connections_open gauge",
        "kizuna_worker_queue_depth gauge",
        "kizuna_db_query_duration_seconds histogram",
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s", families[i]);
        assert_line(t, line);
        snprintf(line, sizeof line, "# HELP %.*s ", (int)strcspn(families[i], " "), families[i]);
        cr_assert(strstr(t, line), "missing HELP for %s", families[i]);
    }
    /* No request series until a request is seen. */
    cr_assert_null(strstr(t, "kizuna_http_requests_total{"));
    cr_assert_null(strstr(t, "kizuna_http_request_duration_seconds_bucket"));
    assert_line(t, "kizuna_connections_open 0");
    assert_line(t, "kizuna_worker_queue_depth 0");
    assert_line(t, "kizuna_db_query_duration_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(t, "kizuna_db_query_duration_seconds_sum 0");
    assert_line(t, "kizuna_db_query_duration_seconds_count 0");
    kz_free(t);
}

Test(metrics, request_counts_and_histogram)
{
    kz_metrics_http_observe(0, 200, 0.003);
    kz_metrics_http_observe(0, 200, 0.003);
    kz_metrics_http_observe(0, 404, 0.0005); /* on a bound: le is inclusive */
    kz_metrics_http_observe(-1, 404, 20);    /* unmatched, beyond the last bound */
    kz_metrics_http_observe(99, 405, 0.2);   /* out of range index: unmatched too */
    char *t = render();

    assert_line(t, "kizuna_http_requests_total{route=\"/v2/account\",status=\"200\"} 2");
    assert_line(t, "kizuna_http_requests_total{route=\"/v2/account\",status=\"404\"} 1");
    assert_line(t, "kizuna_http_requests_total{route=\"unmatched\",status=\"404\"} 1");
    assert_line(t, "kizuna_http_requests_total{route=\"unmatched\",status=\"405\"} 1");
    /* Statuses of one route appear in ascending order. */
    cr_assert_lt(strstr(t, "status=\"200\"} 2"), strstr(t, "status=\"404\"} 1"));

    static const struct {
        const char *le;
        int count;
    } want[] = {
        {"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 3}, {"0.01", 3},
        {"0.025", 3},  {"0.05", 3},  {"0.1", 3},    {"0.25", 3},  {"0.5", 3},
        {"1", 3},      {"2.5", 3},   {"5", 3},      {"10", 3},    {"+Inf", 3},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char line[160];
        snprintf(line, sizeof line,
                 "kizuna_http_request_duration_seconds_bucket{route=\"/v2/account\",le=\"%s\"} %d",
                 want[i].le, want[i].count);
        assert_line(t, line);
    }
    assert_line(t, "kizuna_http_request_duration_seconds_sum{route=\"/v2/account\"} 0.0065");
    assert_line(t, "kizuna_http_request_duration_seconds_count{route=\"/v2/account\"} 3");

    assert_line(t,
                "kizuna_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.1\"} 0");
    assert_line(t,
                "kizuna_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.25\"} 1");
    assert_line(t, "kizuna_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"10\"} 1");
    assert_line(t,
                "kizuna_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"+Inf\"} 2");
    assert_line(t, "kizuna_http_request_duration_seconds_sum{route=\"unmatched\"} 20.2");
    assert_line(t, "kizuna_http_request_duration_seconds_count{route=\"unmatched\"} 2");

    /* The route never hit has no series at all. */
    cr_assert_null(strstr(t, "/v2/rpc/{id}"));
    kz_free(t);
}

Test(metrics, label_values_are_escaped)
{
    kz_metrics_http_observe(2, 500, 1);
    char *t = render();
    assert_line(t, "kizuna_http_requests_total{route=\"we\\\"ird\\\\route\\nx\",status=\"500\"} 1");
    assert_line(t, "kizuna_http_request_duration_seconds_bucket{route=\"we\\\"ird\\\\route\\nx\","
                   "le=\"1\"} 1");
    assert_line(t, "kizuna_http_request_duration_seconds_sum{route=\"we\\\"ird\\\\route\\nx\"} 1");
    kz_free(t);
}

Test(metrics, unusual_statuses_go_to_other)
{
    /* 16 distinct codes fill the route's table; the 17th is "other". */
    for (int i = 0; i < 17; i++) kz_metrics_http_observe(1, 200 + i, 0.001);
    kz_metrics_http_observe(1, 42, 0.001);   /* not an HTTP status */
    kz_metrics_http_observe(1, 215, 0.001);  /* a known code still counts exactly */
    char *t = render();
    assert_line(t, "kizuna_http_requests_total{route=\"/v2/rpc/{id}\",status=\"200\"} 1");
    assert_line(t, "kizuna_http_requests_total{route=\"/v2/rpc/{id}\",status=\"215\"} 2");
    assert_no_line(t, "kizuna_http_requests_total{route=\"/v2/rpc/{id}\",status=\"216\"} 1");
    assert_line(t, "kizuna_http_requests_total{route=\"/v2/rpc/{id}\",status=\"other\"} 2");
    assert_line(t, "kizuna_http_request_duration_seconds_count{route=\"/v2/rpc/{id}\"} 19");
    kz_free(t);
}

Test(metrics, gauges_go_up_and_down)
{
    kz_metrics_connections_add(3);
    kz_metrics_connections_add(-1);
    kz_metrics_queue_add(5);
    kz_metrics_queue_add(-5);
    kz_metrics_queue_add(7);
    char *t = render();
    assert_line(t, "kizuna_connections_open 2");
    assert_line(t, "kizuna_worker_queue_depth 7");
    kz_free(t);

    kz_metrics_connections_add(-2);
    kz_metrics_queue_add(-7);
    t = render();
    assert_line(t, "kizuna_connections_open 0");
    assert_line(t, "kizuna_worker_queue_depth 0");
    kz_free(t);
}

Test(metrics, db_histogram)
{
    kz_metrics_db_observe(0.02);
    kz_metrics_db_observe(0.3);
    kz_metrics_db_observe(-1); /* a clock step counts as zero */
    char *t = render();
    assert_line(t, "kizuna_db_query_duration_seconds_bucket{le=\"0.0005\"} 1");
    assert_line(t, "kizuna_db_query_duration_seconds_bucket{le=\"0.01\"} 1");
    assert_line(t, "kizuna_db_query_duration_seconds_bucket{le=\"0.025\"} 2");
    assert_line(t, "kizuna_db_query_duration_seconds_bucket{le=\"0.25\"} 2");
    assert_line(t, "kizuna_db_query_duration_seconds_bucket{le=\"0.5\"} 3");
    assert_line(t, "kizuna_db_query_duration_seconds_bucket{le=\"+Inf\"} 3");
    assert_line(t, "kizuna_db_query_duration_seconds_sum 0.32");
    assert_line(t, "kizuna_db_query_duration_seconds_count 3");
    kz_free(t);
}

Test(metrics, init_resets)
{
    kz_metrics_http_observe(0, 200, 0.1);
    kz_metrics_connections_add(4);
    kz_metrics_db_observe(1);
    kz_metrics_init(route_names, 2);
    char *t = render();
    cr_assert_null(strstr(t, "kizuna_http_requests_total{"));
    assert_line(t, "kizuna_connections_open 0");
    assert_line(t, "kizuna_db_query_duration_seconds_count 0");
    kz_free(t);

    /* Route 2 is no longer registered, so it counts as unmatched. */
    kz_metrics_http_observe(2, 200, 0.1);
    t = render();
    assert_line(t, "kizuna_http_requests_total{route=\"unmatched\",status=\"200\"} 1");
    kz_free(t);

    /* Zero routes: everything is unmatched. */
    kz_metrics_init(NULL, 0);
    kz_metrics_http_observe(0, 201, 0.1);
    t = render();
    assert_line(t, "kizuna_http_requests_total{route=\"unmatched\",status=\"201\"} 1");
    kz_free(t);
}

/* ----- Concurrency ------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        kz_metrics_http_observe(0, 200, 0.001);
        /* Threads also race to claim status slots on route 1. */
        kz_metrics_http_observe(1, 200 + (int)((i + id) % 4), 0.004);
        kz_metrics_connections_add(1);
        kz_metrics_queue_add(i % 2 ? -1 : 1);
        kz_metrics_db_observe(0.0001);
    }
    return NULL;
}

Test(metrics, concurrent_increments_are_exact)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

    char *text = render();
    assert_line(text, "kizuna_http_requests_total{route=\"/v2/account\",status=\"200\"} 400000");
    assert_line(text, "kizuna_http_request_duration_seconds_bucket{route=\"/v2/account\","
                      "le=\"0.001\"} 400000");
    assert_line(text, "kizuna_http_request_duration_seconds_sum{route=\"/v2/account\"} 400");
    assert_line(text, "kizuna_http_request_duration_seconds_count{route=\"/v2/account\"} 400000");
    for (int s = 200; s < 204; s++) {
        char line[128];
        snprintf(line, sizeof line,
                 "kizuna_http_requests_total{route=\"/v2/rpc/{id}\",status=\"%d\"} 100000", s);
        assert_line(text, line);
    }
    /* Each code claimed exactly one slot: no duplicates, nothing in "other". */
    cr_assert_null(strstr(text, "status=\"other\""));
    assert_line(text, "kizuna_http_request_duration_seconds_sum{route=\"/v2/rpc/{id}\"} 1600");
    assert_line(text, "kizuna_connections_open 400000");
    assert_line(text, "kizuna_worker_queue_depth 0");
    assert_line(text, "kizuna_db_query_duration_seconds_count 400000");
    assert_line(text, "kizuna_db_query_duration_seconds_sum 40");
    kz_free(text);
}
