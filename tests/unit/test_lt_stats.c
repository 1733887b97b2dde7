/* Unit tests for tools/loadtest/stats.c: the histogram's buckets and
 * quantiles against known data, merge = recording everything, reasons and
 * ops past their bounds, deltas, JSON round trips and malformed JSON, and
 * the run's total and per-second series. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loadtest/runner.h"
#include "loadtest/stats.h"

/* |got - want| <= 1% of want. */
#define assert_within_1pct(got, want)                                                          \
    cr_assert(fabs((double)(got) - (double)(want)) <= 0.01 * (double)(want),                  \
              "%s = %llu, want %llu within 1%%", #got, (unsigned long long)(got),              \
              (unsigned long long)(want))

/* ----- Histogram ------------------------------------------------------- */

Test(lt_stats, bucket_layout)
{
    cr_assert_eq(lt_hist_bucket(0), 0);
    cr_assert_eq(lt_hist_bucket(127), 127);
    cr_assert_eq(lt_hist_bucket(128), 128);
    cr_assert_eq(lt_hist_bucket(255), 255);
    cr_assert_eq(lt_hist_bucket(256), 256);
    cr_assert_eq(lt_hist_bucket(257), 256);
    cr_assert_eq(lt_hist_bucket(258), 257);
    cr_assert_eq(lt_hist_bucket(1000), 506); /* in [2^9, 2^10): width 4; 3 * 128 + 1000 / 4 - 128 */
    /* 3.6e9 is in [2^31, 2^32): 25 * 128 + (3.6e9 >> 24) - 128 */
    cr_assert_eq(lt_hist_bucket(LT_HIST_MAX_US), 3286);
    cr_assert_eq(lt_hist_bucket(UINT64_MAX), lt_hist_bucket(LT_HIST_MAX_US));
    cr_assert_lt(lt_hist_bucket(LT_HIST_MAX_US), LT_HIST_BUCKETS);
    uint64_t lo, hi;
    lt_hist_bucket_range(5, &lo, &hi);
    cr_assert_eq(lo, 5);
    cr_assert_eq(hi, 5);
    lt_hist_bucket_range(256, &lo, &hi);
    cr_assert_eq(lo, 256);
    cr_assert_eq(hi, 257);
    lt_hist_bucket_range(506, &lo, &hi);
    cr_assert_eq(lo, 1000);
    cr_assert_eq(hi, 1003);
    /* Every bucket is at most 1/128 of its lower bound wide, and contiguous. */
    uint64_t prev_hi = 0;
    for (size_t i = 0; i <= lt_hist_bucket(LT_HIST_MAX_US); i++) {
        lt_hist_bucket_range(i, &lo, &hi);
        if (i > 0) cr_assert_eq(lo, prev_hi + 1, "bucket %zu", i);
        cr_assert_leq((double)(hi - lo + 1), lo / 128.0 + 1, "bucket %zu", i);
        cr_assert_eq(lt_hist_bucket(lo), i);
        cr_assert_eq(lt_hist_bucket(hi), i);
        prev_hi = hi;
    }
}

Test(lt_stats, quantiles_uniform)
{
    lt_hist_t h;
    lt_hist_init(&h);
    for (uint64_t v = 1; v <= 100000; v++) lt_hist_record(&h, v);
    cr_assert_eq(h.count, 100000);
    cr_assert_eq(h.min, 1);
    cr_assert_eq(h.max, 100000);
    cr_assert_eq(lt_hist_mean(&h), 50000.5);
    assert_within_1pct(lt_hist_quantile(&h, 0.5), 50000);
    assert_within_1pct(lt_hist_quantile(&h, 0.9), 90000);
    assert_within_1pct(lt_hist_quantile(&h, 0.99), 99000);
    assert_within_1pct(lt_hist_quantile(&h, 0.999), 99900);
    cr_assert_eq(lt_hist_quantile(&h, 0), 1);
    cr_assert_eq(lt_hist_quantile(&h, 1), 100000);
    /* Small values are exact. */
    lt_hist_reset(&h);
    for (uint64_t v = 1; v <= 100; v++) lt_hist_record(&h, v);
    cr_assert_eq(lt_hist_quantile(&h, 0.5), 50);
    cr_assert_eq(lt_hist_quantile(&h, 0.99), 99);
    cr_assert_eq(lt_hist_quantile(&h, 0.999), 100);
    lt_hist_free(&h);
}

Test(lt_stats, quantiles_skewed)
{
    /* 90% at 1 ms, 9% at 20 ms, 1% at 2 s (a typical long tail). */
    lt_hist_t h;
    lt_hist_init(&h);
    lt_hist_record_n(&h, 1000, 9000);
    lt_hist_record_n(&h, 20000, 900);
    lt_hist_record_n(&h, 2000000, 100);
    assert_within_1pct(lt_hist_quantile(&h, 0.5), 1000);
    assert_within_1pct(lt_hist_quantile(&h, 0.9), 1000);
    assert_within_1pct(lt_hist_quantile(&h, 0.91), 20000);
    assert_within_1pct(lt_hist_quantile(&h, 0.99), 20000);
    assert_within_1pct(lt_hist_quantile(&h, 0.999), 2000000);
    cr_assert_eq(lt_hist_quantile(&h, 1), 2000000);
    cr_assert_eq(h.sum, 9000ULL * 1000 + 900ULL * 20000 + 100ULL * 2000000);
    /* One value: every quantile is that value (clamped to min = max). */
    lt_hist_reset(&h);
    lt_hist_record(&h, 123457);
    cr_assert_eq(lt_hist_quantile(&h, 0.5), 123457);
    cr_assert_eq(lt_hist_quantile(&h, 0.999), 123457);
    /* Beyond an hour: the last bucket, the exact max. */
    lt_hist_record(&h, 7200000000ULL);
    cr_assert_eq(h.max, 7200000000ULL);
    cr_assert_eq(lt_hist_quantile(&h, 1), 7200000000ULL);
    lt_hist_free(&h);
    lt_hist_t e;
    lt_hist_init(&e);
    cr_assert_eq(lt_hist_quantile(&e, 0.5), 0);
    cr_assert_eq(lt_hist_mean(&e), 0);
}

Test(lt_stats, merge_equals_recording_everything)
{
    lt_hist_t a, b, all;
    lt_hist_init(&a);
    lt_hist_init(&b);
    lt_hist_init(&all);
    srand(7);
    for (int i = 0; i < 20000; i++) {
        uint64_t v = (uint64_t)rand() % 5000000;
        lt_hist_record(i % 3 ? &a : &b, v);
        lt_hist_record(&all, v);
    }
    lt_hist_merge(&a, &b);
    cr_assert_eq(a.count, all.count);
    cr_assert_eq(a.min, all.min);
    cr_assert_eq(a.max, all.max);
    cr_assert_eq(a.sum, all.sum);
    for (size_t c = 0; c < LT_HIST_CHUNKS; c++) {
        cr_assert_eq(!a.chunk[c], !all.chunk[c], "chunk %zu", c);
        if (a.chunk[c])
            cr_assert_arr_eq(a.chunk[c], all.chunk[c], LT_HIST_SUB * sizeof(uint64_t));
    }
    double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(lt_hist_quantile(&a, qs[i]), lt_hist_quantile(&all, qs[i]));
    /* Merging into an empty one copies. */
    lt_hist_t c;
    lt_hist_init(&c);
    lt_hist_merge(&c, &all);
    cr_assert_eq(c.min, all.min);
    cr_assert_eq(lt_hist_quantile(&c, 0.99), lt_hist_quantile(&all, 0.99));
    lt_hist_free(&a);
    lt_hist_free(&b);
    lt_hist_free(&all);
    lt_hist_free(&c);
}

Test(lt_stats, hist_json)
{
    lt_hist_t h, back;
    lt_hist_init(&h);
    lt_hist_init(&back);
    lt_hist_record_n(&h, 3, 2);
    lt_hist_record(&h, 1000);
    json_t *j = lt_hist_to_json(&h);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(text, "{\"b\":[3,2,506,1],\"max\":1000,\"min\":3,\"n\":3,\"sum\":1006}");
    free(text);
    char err[128];
    cr_assert_eq(lt_hist_from_json(&back, j, err, sizeof err), 0, "%s", err);
    cr_assert_eq(back.count, 3);
    cr_assert_eq(back.sum, 1006);
    cr_assert_eq(lt_hist_quantile(&back, 1), 1000);
    json_decref(j);

    static const char *const bad[] = {
        "[]",
        "{\"n\":1,\"min\":1,\"max\":1,\"sum\":1}",
        "{\"n\":1,\"min\":1,\"max\":1,\"sum\":1,\"b\":[1]}",
        "{\"n\":2,\"min\":1,\"max\":1,\"sum\":1,\"b\":[1,1]}",
        "{\"n\":1,\"min\":1,\"max\":1,\"sum\":1,\"b\":[99999,1]}",
        "{\"n\":1,\"min\":1,\"max\":1,\"sum\":1,\"b\":[-1,1]}",
        "{\"n\":2,\"min\":1,\"max\":2,\"sum\":3,\"b\":[2,1,1,1]}",
        "{\"n\":0,\"min\":1,\"max\":1,\"sum\":1,\"b\":[1,0]}",
        "{\"n\":-1,\"min\":1,\"max\":1,\"sum\":1,\"b\":[]}",
        "{\"n\":\"1\",\"min\":1,\"max\":1,\"sum\":1,\"b\":[1,1]}",
        "{\"n\":1,\"min\":1,\"max\":1,\"sum\":1,\"b\":[1.5,1]}",
        "{\"n\":2,\"min\":1,\"max\":1,\"sum\":1,\"b\":[1,9223372036854775807,2,9223372036854775807,"
        "3,9223372036854775807]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(b);
        cr_assert_eq(lt_hist_from_json(&back, b, err, sizeof err), -1, "accepted %s", bad[i]);
        cr_assert_eq(back.count, 0);
        json_decref(b);
    }
    lt_hist_free(&h);
    lt_hist_free(&back);
}

/* ----- Stats -------------------------------------------------------------- */

Test(lt_stats, ops_reasons_counters)
{
    lt_stats_t *st = lt_stats_new();
    lt_stats_ok(st, "auth", 1500);
    lt_stats_ok(st, "auth", 2500);
    lt_stats_error(st, "auth", "http 401");
    lt_stats_error(st, "auth", "http 401");
    lt_stats_error(st, "auth", "timeout");
    lt_stats_error(st, "socket_open", "connect ECONNREFUSED");
    lt_stats_add(st, LT_C_BOTS_STARTED, 3);
    lt_stats_add(st, LT_C_MSGS_SENT, 10);
    lt_stats_op(st, "chat_send");
    const lt_op_stats_t *a = lt_stats_find(st, "auth");
    cr_assert_not_null(a);
    cr_assert_eq(a->ok, 2);
    cr_assert_eq(a->errors, 3);
    cr_assert_eq(a->nreasons, 2);
    cr_assert_str_eq(a->reasons[0].name, "http 401");
    cr_assert_eq(a->reasons[0].count, 2);
    cr_assert_str_eq(a->reasons[1].name, "timeout");
    cr_assert_eq(a->hist.min, 1500);
    cr_assert_eq(st->nops, 3);
    cr_assert_str_eq(st->ops[2].name, "chat_send");
    cr_assert_eq(st->ops[2].ok, 0);
    cr_assert_null(lt_stats_find(st, "nope"));
    cr_assert_eq(st->counters[LT_C_BOTS_STARTED], 3);
    cr_assert_eq(st->counters[LT_C_MSGS_SENT], 10);
    cr_assert_str_eq(lt_counter_name(LT_C_LATE), "late");
    lt_stats_free(st);
}

Test(lt_stats, bounds_fold_into_other)
{
    lt_stats_t *st = lt_stats_new();
    char name[64];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "http %d", 400 + i);
        lt_stats_error(st, "auth", name);
    }
    lt_stats_error(st, "auth", "http 405"); /* known: its own slot */
    const lt_op_stats_t *a = lt_stats_find(st, "auth");
    cr_assert_eq(a->nreasons, LT_MAX_REASONS + 1);
    cr_assert_str_eq(a->reasons[5].name, "http 405");
    cr_assert_eq(a->reasons[5].count, 2);
    cr_assert_str_eq(a->reasons[LT_MAX_REASONS].name, "other");
    cr_assert_eq(a->reasons[LT_MAX_REASONS].count, 8);
    cr_assert_eq(a->errors, 41);

    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "op%d", i);
        lt_stats_ok(st, name, 10);
    }
    cr_assert_eq(st->nops, LT_MAX_OPS);
    cr_assert_str_eq(st->ops[LT_MAX_OPS - 1].name, "other");
    /* auth + op0..op45 have their own slots; op46..op59 share "other". */
    cr_assert_eq(st->ops[LT_MAX_OPS - 1].ok, 14);
    lt_stats_ok(st, "op3", 10);
    cr_assert_eq(lt_stats_find(st, "op3")->ok, 2);

    /* Long names are truncated, not overflowed. */
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[99] = '\0';
    lt_stats_t *s2 = lt_stats_new();
    lt_stats_ok(s2, longname, 1);
    lt_stats_error(s2, longname, longname);
    cr_assert_eq(strlen(s2->ops[0].name), LT_OP_NAME_MAX - 1);
    cr_assert_eq(strlen(s2->ops[0].reasons[0].name), LT_REASON_MAX - 1);
    cr_assert_eq(lt_stats_find(s2, longname)->ok, 1);
    lt_stats_free(s2);
    lt_stats_free(st);
}

Test(lt_stats, take_delta_and_gauge)
{
    lt_stats_t *st = lt_stats_new();
    lt_stats_conn(st, +1);
    lt_stats_conn(st, +1);
    lt_stats_conn(st, +1);
    lt_stats_conn(st, -1);
    lt_stats_ok(st, "auth", 100);
    lt_stats_add(st, LT_C_BOTS_STARTED, 3);
    lt_stats_t *d = lt_stats_take_delta(st, 0);
    cr_assert_eq(d->sec, 0);
    cr_assert_eq(d->conns_open, 2);
    cr_assert_eq(d->conns_change, 2);
    cr_assert_eq(d->conns_peak, 3);
    cr_assert_eq(d->counters[LT_C_BOTS_STARTED], 3);
    cr_assert_eq(lt_stats_find(d, "auth")->ok, 1);
    cr_assert_eq(st->nops, 0);
    cr_assert_eq(st->counters[LT_C_BOTS_STARTED], 0);
    cr_assert_eq(st->conns_open, 2);
    lt_stats_free(d);

    lt_stats_conn(st, -1);
    d = lt_stats_take_delta(st, 1);
    cr_assert_eq(d->conns_open, 1);
    cr_assert_eq(d->conns_change, -1);
    cr_assert_eq(d->conns_peak, 2); /* the value at the start of the interval */
    cr_assert_eq(d->nops, 0);
    lt_stats_free(d);
    d = lt_stats_take_delta(st, 2);
    cr_assert_eq(d->conns_open, 1);
    cr_assert_eq(d->conns_change, 0);
    cr_assert_eq(d->conns_peak, 1);
    lt_stats_free(d);
    lt_stats_free(st);
}

Test(lt_stats, stalled_tick_goes_to_the_second_that_ended)
{
    /* Which second a tick closes: the one that just ended, capped at the last. */
    cr_assert_eq(lt_tick_second(999, 9), -1);
    cr_assert_eq(lt_tick_second(1000, 9), 0);
    cr_assert_eq(lt_tick_second(1999, 9), 0);
    cr_assert_eq(lt_tick_second(3250, 9), 2);
    cr_assert_eq(lt_tick_second(60000, 9), 9);
    cr_assert_eq(lt_tick_second(-5, 9), -1);

    /* A worker sent second 0, then its loop stalled until 3.25 s: seconds 1
     * and 2 never had a tick. Second 1 goes out empty (the gauge as it was),
     * and what was recorded meanwhile belongs to second 2, not to 1. */
    lt_stats_t *st = lt_stats_new();
    lt_run_t *run = lt_run_new();
    char err[128];
    lt_stats_conn(st, +1);
    lt_stats_ok(st, "auth", 10);
    lt_stats_t *d = lt_stats_take_delta(st, lt_tick_second(1000, 9));
    cr_assert_eq(lt_run_add(run, d, err, sizeof err), 0, "%s", err);
    lt_stats_free(d);
    lt_stats_conn(st, +1);
    lt_stats_ok(st, "auth", 20);
    lt_stats_ok(st, "auth", 30);
    int64_t sec = lt_tick_second(3250, 9);
    cr_assert_eq(sec, 2);
    d = lt_stats_empty_delta(st, 1);
    cr_assert_eq(d->sec, 1);
    cr_assert_eq(d->conns_open, 1, "the gauge as of the previous delta");
    cr_assert_eq(d->conns_change, 0);
    cr_assert_eq(d->conns_peak, 1);
    cr_assert_eq(d->nops, 0);
    cr_assert_eq(st->conns_change, 1, "st is untouched");
    cr_assert_eq(lt_run_add(run, d, err, sizeof err), 0, "%s", err);
    lt_stats_free(d);
    d = lt_stats_take_delta(st, sec);
    cr_assert_eq(lt_run_add(run, d, err, sizeof err), 0, "%s", err);
    lt_stats_free(d);
    lt_run_finish(run);
    cr_assert_eq(run->nsecs, 3);
    int auth = lt_run_op_index(run, "auth");
    cr_assert_eq(auth, 0);
    cr_assert_eq(run->secs[0].ops[auth].ok, 1);
    cr_assert(run->secs[1].seen);
    cr_assert_eq(run->secs[1].nops > 0 ? run->secs[1].ops[auth].ok : 0, 0);
    cr_assert_eq(run->secs[1].conns, 1);
    cr_assert_eq(run->secs[2].ops[auth].ok, 2);
    cr_assert_eq(run->secs[2].conns, 2);
    cr_assert_eq(run->total->conns_open, 2);
    lt_run_free(run);
    lt_stats_free(st);
}

static lt_stats_t *sample_stats(void)
{
    lt_stats_t *st = lt_stats_new();
    for (int i = 1; i <= 50; i++) lt_stats_ok(st, "auth", (uint64_t)i * 100);
    lt_stats_ok(st, "chat_send", 7);
    lt_stats_error(st, "auth", "http 401");
    lt_stats_error(st, "chat_send", "closed 1006");
    lt_stats_error(st, "chat_send", "closed 1006");
    lt_stats_op(st, "match_join");
    for (int c = 0; c < LT_C_COUNT_; c++) lt_stats_add(st, (lt_counter_t)c, (uint64_t)c * 11 + 1);
    lt_stats_conn(st, 5);
    lt_stats_conn(st, -2);
    return st;
}

Test(lt_stats, json_round_trip)
{
    lt_stats_t *st = sample_stats();
    lt_stats_t *d = lt_stats_take_delta(st, 17);
    json_t *j = lt_stats_to_json(d);
    char *line = json_dumps(j, JSON_COMPACT);
    json_t *parsed = json_loads(line, 0, NULL);
    cr_assert_not_null(parsed);
    char err[256] = "";
    lt_stats_t *back = lt_stats_from_json(parsed, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_eq(back->sec, 17);
    cr_assert_eq(back->conns_open, 3);
    cr_assert_eq(back->conns_change, 3);
    cr_assert_eq(back->conns_peak, 5);
    for (int c = 0; c < LT_C_COUNT_; c++) cr_assert_eq(back->counters[c], (uint64_t)c * 11 + 1);
    cr_assert_eq(back->nops, 3);
    const lt_op_stats_t *a = lt_stats_find(back, "auth");
    cr_assert_eq(a->ok, 50);
    cr_assert_eq(a->errors, 1);
    cr_assert_eq(a->hist.min, 100);
    cr_assert_eq(a->hist.max, 5000);
    cr_assert_eq(lt_hist_quantile(&a->hist, 0.5), lt_hist_quantile(&lt_stats_find(d, "auth")->hist, 0.5));
    cr_assert_eq(lt_stats_find(back, "chat_send")->reasons[0].count, 2);
    cr_assert_eq(lt_stats_find(back, "match_join")->ok, 0);
    /* Serialising again gives the same JSON. */
    json_t *j2 = lt_stats_to_json(back);
    cr_assert(json_equal(j, j2));
    json_decref(j2);
    json_decref(j);
    json_decref(parsed);
    free(line);
    lt_stats_free(back);
    lt_stats_free(d);
    lt_stats_free(st);
}

Test(lt_stats, bad_json_is_rejected)
{
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"null", "stats: expected {sec, counters, conns, ops}"},
        {"[1,2]", "stats: expected {sec, counters, conns, ops}"},
        {"{\"sec\":\"1\",\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":0},\"ops\":{}}",
         "stats: expected {sec, counters, conns, ops}"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"peak\":0},\"ops\":{}}",
         "stats: conns: expected integers open, change, peak"},
        {"{\"sec\":1,\"counters\":{\"bots_started\":-4},\"conns\":{\"open\":0,\"change\":0,\"peak\":"
         "0},\"ops\":{}}",
         "stats: counter bots_started: expected an integer in 0..281474976710656"},
        /* Bounds: counts above LT_MAX_COUNT, gauges past +-LT_MAX_CONNS (a
         * sum of such lines would overflow). */
        {"{\"sec\":1,\"counters\":{\"msgs_sent\":4611686018427387904},\"conns\":{\"open\":0,"
         "\"change\":0,\"peak\":0},\"ops\":{}}",
         "stats: counter msgs_sent: expected an integer in 0..281474976710656"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":9223372036854775807,\"change\":0,"
         "\"peak\":0},\"ops\":{}}",
         "stats: conns: open/change outside +-40000000 or peak outside 0..40000000"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":-40000001,"
         "\"peak\":0},\"ops\":{}}",
         "stats: conns: open/change outside +-40000000 or peak outside 0..40000000"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":-1},"
         "\"ops\":{}}",
         "stats: conns: open/change outside +-40000000 or peak outside 0..40000000"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":0},\"ops\":{\"a\":"
         "{\"ok\":1,\"errors\":{\"x\":281474976710657},\"hist\":{\"n\":1,\"min\":1,\"max\":1,"
         "\"sum\":1,\"b\":[1,1]}}}}",
         "stats: op 'a': error count of 'x' is not a count"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":0},\"ops\":{\"a\":"
         "{\"ok\":281474976710657,\"errors\":{},\"hist\":{\"n\":281474976710657,\"min\":1,"
         "\"max\":1,\"sum\":1,\"b\":[1,281474976710657]}}}}",
         "stats: op 'a': expected {ok, errors, hist}"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":0},\"ops\":{\"a\":"
         "{\"ok\":1,\"errors\":{}}}}",
         "stats: op 'a': expected {ok, errors, hist}"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":0},\"ops\":{\"a\":"
         "{\"ok\":2,\"errors\":{},\"hist\":{\"n\":1,\"min\":1,\"max\":1,\"sum\":1,\"b\":[1,1]}}}}",
         "stats: op 'a': ok is 2 but the histogram has 1"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":0},\"ops\":{\"a\":"
         "{\"ok\":1,\"errors\":{\"x\":\"many\"},\"hist\":{\"n\":1,\"min\":1,\"max\":1,\"sum\":1,"
         "\"b\":[1,1]}}}}",
         "stats: op 'a': error count of 'x' is not a count"},
        {"{\"sec\":1,\"counters\":{},\"conns\":{\"open\":0,\"change\":0,\"peak\":0},\"ops\":{\"\":"
         "{\"ok\":0,\"errors\":{},\"hist\":{\"n\":0,\"min\":0,\"max\":0,\"sum\":0,\"b\":[]}}}}",
         "stats: op '': expected {ok, errors, hist}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(j, "test JSON %zu", i);
        char err[256] = "";
        lt_stats_t *st = lt_stats_from_json(j, err, sizeof err);
        cr_assert_null(st, "accepted %s", bad[i].json);
        cr_assert_str_eq(err, bad[i].msg);
        json_decref(j);
    }
    /* NULL in (a line that was not JSON) is rejected too. */
    char err[64];
    cr_assert_null(lt_stats_from_json(NULL, err, sizeof err));
    /* Unknown counters are ignored. */
    json_t *j = json_loads("{\"sec\":1,\"counters\":{\"future\":3},\"conns\":{\"open\":0,\"change\":"
                           "0,\"peak\":0},\"ops\":{}}",
                           0, NULL);
    lt_stats_t *st = lt_stats_from_json(j, err, sizeof err);
    cr_assert_not_null(st);
    lt_stats_free(st);
    json_decref(j);
    /* The bounds themselves are accepted. */
    j = json_loads("{\"sec\":1,\"counters\":{\"msgs_sent\":281474976710656},\"conns\":{\"open\":"
                   "-40000000,\"change\":40000000,\"peak\":40000000},\"ops\":{}}",
                   0, NULL);
    st = lt_stats_from_json(j, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    cr_assert_eq(st->counters[LT_C_MSGS_SENT], LT_MAX_COUNT);
    cr_assert_eq(st->conns_open, -40000000);
    cr_assert_eq(st->conns_peak, 40000000);
    lt_stats_free(st);
    json_decref(j);
}

Test(lt_stats, merge_adds_everything)
{
    lt_stats_t *a = sample_stats(), *b = sample_stats();
    lt_stats_t *da = lt_stats_take_delta(a, 4), *db = lt_stats_take_delta(b, 4);
    lt_stats_merge(da, db);
    cr_assert_eq(da->sec, 4);
    cr_assert_eq(lt_stats_find(da, "auth")->ok, 100);
    cr_assert_eq(lt_stats_find(da, "auth")->hist.count, 100);
    cr_assert_eq(lt_stats_find(da, "chat_send")->reasons[0].count, 4);
    cr_assert_eq(lt_stats_find(da, "chat_send")->errors, 4);
    cr_assert_eq(da->counters[LT_C_LATE], 2 * (LT_C_LATE * 11 + 1));
    cr_assert_eq(da->conns_open, 6);
    cr_assert_eq(da->conns_change, 6);
    cr_assert_eq(da->conns_peak, 10);
    lt_stats_free(a);
    lt_stats_free(b);
    lt_stats_free(da);
    lt_stats_free(db);
}

/* ----- The run ------------------------------------------------------------ */

/* A worker's delta for second sec: n auths at lat µs each, conns open. */
static lt_stats_t *delta(int64_t sec, int n, uint64_t lat, int64_t open, int64_t change)
{
    lt_stats_t *st = lt_stats_new();
    st->sec = sec;
    for (int i = 0; i < n; i++) lt_stats_ok(st, "auth", lat);
    st->conns_open = open;
    st->conns_change = change;
    st->conns_peak = open;
    st->counters[LT_C_MSGS_SENT] = (uint64_t)n;
    return st;
}

static void add(lt_run_t *run, lt_stats_t *d)
{
    char err[128];
    cr_assert_eq(lt_run_add(run, d, err, sizeof err), 0, "%s", err);
    lt_stats_free(d);
}

Test(lt_stats, run_total_and_series)
{
    lt_run_t *run = lt_run_new();
    /* Two workers, seconds 0 and 1. */
    add(run, delta(0, 10, 1000, 10, 10));
    add(run, delta(0, 30, 3000, 30, 30));
    lt_stats_t *e = delta(1, 0, 0, 25, -15);
    lt_stats_error(e, "socket_open", "timeout");
    add(run, e);
    add(run, delta(1, 5, 2000, 5, -25));
    lt_run_finish(run);

    cr_assert_eq(run->nsecs, 2);
    cr_assert_eq(run->nops, 2);
    cr_assert_str_eq(run->op_names[0], "auth");
    cr_assert_str_eq(run->op_names[1], "socket_open");
    cr_assert_eq(lt_run_op_index(run, "socket_open"), 1);
    cr_assert_eq(lt_run_op_index(run, "x"), -1);
    const lt_sec_t *s0 = &run->secs[0], *s1 = &run->secs[1];
    cr_assert(s0->seen && s1->seen);
    cr_assert_eq(s0->conns, 40);
    cr_assert_eq(s1->conns, 30);
    cr_assert_eq(s0->msgs_sent, 40);
    cr_assert_eq(s0->ops[0].ok, 40);
    assert_within_1pct(s0->ops[0].p50_us, 3000);
    assert_within_1pct(s0->ops[0].p99_us, 3000);
    cr_assert_eq(s1->ops[0].ok, 5);
    assert_within_1pct(s1->ops[0].p50_us, 2000);
    cr_assert_eq(s1->ops[1].errors, 1);
    cr_assert_eq(s1->ops[1].ok, 0);
    cr_assert_eq(s1->ops[1].p50_us, 0);

    const lt_stats_t *t = run->total;
    cr_assert_eq(t->sec, -1);
    cr_assert_eq(lt_stats_find(t, "auth")->ok, 45);
    cr_assert_eq(lt_stats_find(t, "socket_open")->errors, 1);
    cr_assert_eq(t->conns_open, 0); /* +10 +30 -15 -25 */
    cr_assert_eq(t->conns_peak, 40);
    cr_assert_eq(t->counters[LT_C_MSGS_SENT], 45);

    json_t *j = lt_run_to_json(run);
    json_t *series = json_object_get(j, "series");
    cr_assert_eq(json_array_size(series), 2);
    json_t *row1 = json_array_get(series, 1);
    cr_assert_eq(json_integer_value(json_object_get(row1, "conns")), 30);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(row1, "ops"), "socket_open"), "errors")),
                 1);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(json_object_get(j, "total"), "ops"), "auth"),
                     "ok")),
                 45);
    json_decref(j);
    lt_run_free(run);
}

Test(lt_stats, run_window_and_late_deltas)
{
    lt_run_t *run = lt_run_new();
    add(run, delta(0, 2, 500, 1, 1));
    add(run, delta(3, 1, 500, 1, 0)); /* a gap: seconds 1 and 2 unseen */
    cr_assert_eq(run->finalised, 0);
    add(run, delta(10, 1, 500, 1, 0));
    cr_assert_eq(run->finalised, 10 - LT_SERIES_WINDOW);
    cr_assert_null(run->secs[0].pending);
    assert_within_1pct(run->secs[0].ops[0].p50_us, 500);
    /* A late delta for finalised second 0: counts, not latencies. */
    add(run, delta(0, 4, 90000, 2, 0));
    cr_assert_eq(run->secs[0].ops[0].ok, 6);
    assert_within_1pct(run->secs[0].ops[0].p50_us, 500);
    cr_assert_eq(run->secs[0].conns, 3);
    lt_run_finish(run);
    cr_assert_eq(run->nsecs, 11);
    cr_assert(!run->secs[1].seen);
    cr_assert_eq(lt_stats_find(run->total, "auth")->ok, 8);
    cr_assert_eq(lt_stats_find(run->total, "auth")->hist.max, 90000);
    json_t *j = lt_run_to_json(run);
    cr_assert_eq(json_array_size(json_object_get(j, "series")), 3);
    json_decref(j);

    char err[128];
    lt_stats_t *bad = delta(-1, 0, 0, 0, 0);
    cr_assert_eq(lt_run_add(run, bad, err, sizeof err), -1);
    cr_assert_str_eq(err, "stats: second -1 is outside the run (0..2678399)");
    bad->sec = LT_MAX_SECONDS;
    cr_assert_eq(lt_run_add(run, bad, err, sizeof err), -1);
    run->limit = 70;
    bad->sec = 70;
    cr_assert_eq(lt_run_add(run, bad, err, sizeof err), -1);
    cr_assert_str_eq(err, "stats: second 70 is outside the run (0..69)");
    bad->sec = 69;
    cr_assert_eq(lt_run_add(run, bad, err, sizeof err), 0);
    lt_stats_free(bad);
    lt_run_free(run);
}
