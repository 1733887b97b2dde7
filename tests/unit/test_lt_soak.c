/* Unit tests for tools/loadtest/soak.c: Prometheus text parsing (comments,
 * labels, timestamps, bad lines) and the growth verdict on flat, growing,
 * noisy and warm-up-then-flat RSS series. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "loadtest/soak.h"

#define MIB (1024.0 * 1024.0)

static int prom(const char *text, double *rss, double *conns)
{
    return lt_prom_parse(text, strlen(text), rss, conns);
}

Test(lt_soak, prom_parse)
{
    const char *text =
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\n"
        "process_resident_memory_bytes 4.2e+07\n"
        "# HELP kizuna_connections_open Open connections.\n"
        "# TYPE kizuna_connections_open gauge\n"
        "kizuna_connections_open{kind=\"ws\",note=\"a } b\"} 120 1700000000000\n"
        "kizuna_connections_open{kind=\"http\"} 30\n"
        "kizuna_http_requests_total{route=\"/v2/account\",code=\"200\"} 17\n"
        "process_resident_memory_bytes_total 5\n";
    double rss = -1, conns = -1;
    cr_assert_eq(prom(text, &rss, &conns), LT_PROM_RSS | LT_PROM_CONNS);
    cr_assert_eq(rss, 42000000.0);
    cr_assert_eq(conns, 150.0);
}

Test(lt_soak, prom_bad_lines_are_skipped)
{
    const char *text = "garbage line here\n"
                       "process_resident_memory_bytes\n"            /* no value */
                       "process_resident_memory_bytes abc\n"        /* not a number */
                       "process_resident_memory_bytes 12 junk\n"    /* junk after */
                       "process_resident_memory_bytes{x=\"1\" 99\n" /* unclosed labels */
                       "process_resident_memory_bytes NaN\n"
                       "process_resident_memory_bytes +Inf\n"
                       "kizuna_connections_open\t7\r\n"             /* tab, CRLF */
                       "   \n\n#\n";
    double rss = -1, conns = -1;
    cr_assert_eq(prom(text, &rss, &conns), LT_PROM_CONNS);
    cr_assert_eq(rss, -1); /* untouched */
    cr_assert_eq(conns, 7.0);

    /* Not NUL-terminated: the length bounds the parse. */
    const char buf[] = "kizuna_connections_open 5\nkizuna_connections_open 6";
    conns = -1;
    cr_assert_eq(lt_prom_parse(buf, 26, &rss, &conns), LT_PROM_CONNS);
    cr_assert_eq(conns, 5.0);
    cr_assert_eq(lt_prom_parse("", 0, &rss, &conns), 0);
    cr_assert_eq(prom("# only comments\n", &rss, &conns), 0);
}

/* Samples every `step_s` seconds for `hours`, rss(t) in bytes. */
static void fill(lt_soak_t *s, double hours, double step_s, double (*rss)(double t, int i))
{
    int i = 0;
    for (double t = 0; t <= hours * 3600 + 1e-9; t += step_s, i++)
        cr_assert_eq(lt_soak_add(s, (int64_t)(t * 1000), rss(t, i), 1000 + i % 13), 0); /* a steady load */
}

static double flat(double t, int i)
{
    (void)t, (void)i;
    return 100 * MIB;
}

static double growing(double t, int i)
{
    (void)i;
    return 100 * MIB + 20 * MIB * t / 3600; /* +20 MiB/hour */
}

static double noisy(double t, int i)
{
    (void)t;
    return 100 * MIB + ((i % 2) ? 5 : -5) * MIB + ((i % 3) - 1) * MIB;
}

static double warmup(double t, int i)
{
    (void)i;
    return t < 1800 ? 50 * MIB + 50 * MIB * t / 1800 : 100 * MIB; /* grows, then levels */
}

Test(lt_soak, verdict_flat)
{
    lt_soak_t s;
    lt_soak_init(&s);
    fill(&s, 2, 600, flat); /* 13 samples, 7 in the second half */
    lt_soak_verdict_t v;
    lt_soak_judge(&s, &v);
    cr_assert(v.judged);
    cr_assert(!v.growing);
    cr_assert_eq(v.samples, 7);
    cr_assert_eq(v.median_rss, 100 * MIB);
    cr_assert_eq(v.slope, 0);
    cr_assert_eq(v.mib_per_hour, 0);
    cr_assert_eq(v.peak_conns, 1012);
    char line[256];
    lt_soak_describe(&v, line, sizeof line);
    cr_assert_str_eq(line, "soak: RSS 100.0 MiB -> 100.0 MiB, +0.00 MiB/hour over the second half "
                           "(7 samples, median 100.0 MiB): no growth (+0.0% of the median)");
    lt_soak_free(&s);
}

Test(lt_soak, verdict_growing)
{
    lt_soak_t s;
    lt_soak_init(&s);
    fill(&s, 2, 600, growing);
    lt_soak_verdict_t v;
    lt_soak_judge(&s, &v);
    cr_assert(v.judged);
    cr_assert(v.growing);
    cr_assert_float_eq(v.mib_per_hour, 20.0, 1e-9);
    cr_assert_float_eq(v.growth, 20 * MIB, 1e-3); /* over the last hour */
    cr_assert_float_eq(v.median_rss, 130 * MIB, 1e-3);
    cr_assert_eq(v.first_rss, 100 * MIB);
    cr_assert_eq(v.last_rss, 140 * MIB);
    char line[256];
    lt_soak_describe(&v, line, sizeof line);
    cr_assert_str_eq(line, "soak: RSS 100.0 MiB -> 140.0 MiB, +20.00 MiB/hour over the second half "
                           "(7 samples, median 130.0 MiB): GROWING (+15.4% of the median)");
    lt_soak_free(&s);

    /* Slower growth, 5 MiB/hour: 5 of ~107 MiB is under 10%: no flag. */
    lt_soak_init(&s);
    for (int i = 0; i <= 12; i++)
        lt_soak_add(&s, (int64_t)i * 600000, 100 * MIB + 5 * MIB * i / 6.0, -1);
    lt_soak_judge(&s, &v);
    cr_assert(v.judged);
    cr_assert(!v.growing);
    cr_assert_float_eq(v.mib_per_hour, 5.0, 1e-9);
    cr_assert_eq(v.peak_conns, -1);
    lt_soak_free(&s);
}

Test(lt_soak, verdict_noisy_and_warmup)
{
    lt_soak_t s;
    lt_soak_init(&s);
    fill(&s, 4, 60, noisy); /* +-6 MiB of noise around 100 MiB */
    lt_soak_verdict_t v;
    lt_soak_judge(&s, &v);
    cr_assert(v.judged);
    cr_assert(!v.growing);
    cr_assert_lt(fabs(v.mib_per_hour), 0.5);
    lt_soak_free(&s);

    /* Growth in the first half only (warm-up) is not a leak. */
    lt_soak_init(&s);
    fill(&s, 2, 60, warmup);
    lt_soak_judge(&s, &v);
    cr_assert(v.judged);
    cr_assert(!v.growing);
    cr_assert_eq(v.slope, 0);
    cr_assert_eq(v.first_rss, 50 * MIB);
    lt_soak_free(&s);
}

Test(lt_soak, verdict_not_judged_while_the_load_changes)
{
    /* sockets still arriving in the second half: RSS follows them */
    lt_soak_t s;
    lt_soak_init(&s);
    for (int i = 0; i <= 12; i++)
        lt_soak_add(&s, (int64_t)i * 5000, 12 * MIB + 2000.0 * 1500 * i, 1500 * i);
    lt_soak_verdict_t v;
    lt_soak_judge(&s, &v);
    cr_assert(!v.judged);
    cr_assert(!v.growing);
    cr_assert(v.load_changing);
    cr_assert_eq(v.conns_min, 9000);
    cr_assert_eq(v.conns_max, 18000);
    char line[256];
    lt_soak_describe(&v, line, sizeof line);
    cr_assert_str_eq(line, "soak: not judged: the server's connections went from 9000 to 18000 over the "
                           "second half (memory follows the load; hold a steady load longer)");
    lt_soak_free(&s);
    /* connections within 10% of their highest keep the verdict: see verdict_flat */
}

Test(lt_soak, verdict_not_enough)
{
    lt_soak_t s;
    lt_soak_init(&s);
    lt_soak_verdict_t v;
    lt_soak_judge(&s, &v);
    cr_assert(!v.judged);
    char line[256];
    lt_soak_describe(&v, line, sizeof line);
    cr_assert_str_eq(line, "soak: not enough samples (0 in the second half, need 4)");
    lt_soak_add(&s, 0, 10 * MIB, 1);
    lt_soak_add(&s, 1000, -1, 1); /* no RSS: not counted */
    lt_soak_add(&s, 2000, 11 * MIB, 1);
    lt_soak_add(&s, 3000, 12 * MIB, 1);
    lt_soak_judge(&s, &v);
    cr_assert(!v.judged);
    cr_assert(!v.growing);
    cr_assert_eq(v.samples, 2);
    lt_soak_describe(&v, line, sizeof line);
    cr_assert_str_eq(line, "soak: not enough samples (2 in the second half, need 4)");
    lt_soak_free(&s);
}

Test(lt_soak, json_and_bounds)
{
    lt_soak_t s;
    lt_soak_init(&s);
    lt_soak_add(&s, 0, 1000, -1);
    lt_soak_add(&s, 10000, NAN, 4);
    lt_soak_fail(&s);
    lt_soak_verdict_t v;
    lt_soak_judge(&s, &v);
    json_t *j = lt_soak_to_json(&s, &v);
    char *text = json_dumps(json_object_get(j, "samples"), JSON_COMPACT);
    cr_assert_str_eq(text, "[[0,1000.0,null],[10000,null,4.0]]");
    free(text);
    cr_assert_eq(json_integer_value(json_object_get(j, "failures")), 1);
    json_t *verdict = json_object_get(j, "verdict");
    cr_assert(json_is_false(json_object_get(verdict, "judged")));
    cr_assert_str_eq(json_string_value(json_object_get(verdict, "text")),
                     "soak: not enough samples (1 in the second half, need 4)");
    json_decref(j);
    lt_soak_free(&s);

    lt_soak_init(&s);
    for (int i = 0; i < LT_SOAK_MAX_SAMPLES; i++) lt_soak_add(&s, i, 1, 1);
    cr_assert_eq(lt_soak_add(&s, 0, 1, 1), -1);
    cr_assert_eq(s.n, LT_SOAK_MAX_SAMPLES);
    lt_soak_free(&s);
}
