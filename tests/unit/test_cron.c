/* core/cron.c: cron expressions in Nakama's dialect.
 *
 * Expected instants were computed outside this code with `date -u -d ...`
 * (the ISO form is next to each number). The randomized tests compare
 * against brute force: every minute (or second) of a window is classified
 * by a hand-written predicate over gmtime_r's fields, independent of both
 * the parser and the calendar arithmetic under test. */
#include "core/clock.h"
#include "core/cron.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

static const char *iso(int64_t t, char out[32])
{
    if (t < 0) {
        snprintf(out, 32, "%lld", (long long)t);
        return out;
    }
    kz_rfc3339(t * 1000, out);
    return out;
}

static kz_cron_t *must_parse(const char *expr)
{
    char err[128] = "";
    kz_cron_t *c = kz_cron_parse(expr, err, sizeof err);
    cr_assert_not_null(c, "'%s' failed to parse: %s", expr, err);
    return c;
}

static void check_next(const char *expr, int64_t from, int64_t want)
{
    kz_cron_t *c = must_parse(expr);
    int64_t got = kz_cron_next(c, from);
    char a[32], b[32], f[32];
    cr_assert_eq(got, want, "next('%s', %s) = %s, want %s", expr, iso(from, f), iso(got, a),
                 iso(want, b));
    kz_cron_free(c);
}

static void check_prev(const char *expr, int64_t from, int64_t want)
{
    kz_cron_t *c = must_parse(expr);
    int64_t got = kz_cron_prev(c, from);
    char a[32], b[32], f[32];
    cr_assert_eq(got, want, "prev('%s', %s) = %s, want %s", expr, iso(from, f), iso(got, a),
                 iso(want, b));
    kz_cron_free(c);
}

/* Follows next() n times from `from` and checks each step. */
static void check_seq(const char *expr, int64_t from, const int64_t *want, size_t n)
{
    kz_cron_t *c = must_parse(expr);
    int64_t t = from;
    for (size_t i = 0; i < n; i++) {
        int64_t got = kz_cron_next(c, t);
        char a[32], b[32];
        cr_assert_eq(got, want[i], "'%s' step %zu: %s, want %s", expr, i, iso(got, a),
                     iso(want[i], b));
        t = got;
    }
    /* and backwards */
    for (size_t i = n; i-- > 1;) {
        int64_t got = kz_cron_prev(c, want[i]);
        char a[32], b[32];
        cr_assert_eq(got, want[i - 1], "'%s' prev step %zu: %s, want %s", expr, i, iso(got, a),
                     iso(want[i - 1], b));
    }
    kz_cron_free(c);
}

#define SEQ(expr, from, ...)                                                                       \
    do {                                                                                           \
        static const int64_t want_[] = {__VA_ARGS__};                                              \
        check_seq(expr, from, want_, sizeof want_ / sizeof want_[0]);                              \
    } while (0)

/* 2025-03-14T15:26:53Z, a Friday. */
static const int64_t T0 = 1741966013;

/* ---- macros ---- */

Test(cron, macro_yearly_and_annually)
{
    check_next("@yearly", T0, 1767225600); /* 2026-01-01T00:00:00Z */
    check_prev("@yearly", T0, 1735689600); /* 2025-01-01T00:00:00Z */
    check_next("@annually", T0, 1767225600);
    check_prev("@annually", T0, 1735689600);
}

Test(cron, macro_monthly)
{
    check_next("@monthly", T0, 1743465600); /* 2025-04-01T00:00:00Z */
    check_prev("@monthly", T0, 1740787200); /* 2025-03-01T00:00:00Z */
}

Test(cron, macro_weekly_is_sunday_midnight)
{
    check_next("@weekly", T0, 1742083200); /* 2025-03-16T00:00:00Z Sun */
    check_prev("@weekly", T0, 1741478400); /* 2025-03-09T00:00:00Z Sun */
}

Test(cron, macro_daily_and_midnight)
{
    check_next("@daily", T0, 1741996800); /* 2025-03-15T00:00:00Z */
    check_prev("@daily", T0, 1741910400); /* 2025-03-14T00:00:00Z */
    check_next("@midnight", T0, 1741996800);
    check_prev("@midnight", T0, 1741910400);
}

Test(cron, macro_hourly)
{
    check_next("@hourly", T0, 1741968000); /* 2025-03-14T16:00:00Z */
    check_prev("@hourly", T0, 1741964400); /* 2025-03-14T15:00:00Z */
}

Test(cron, macro_case_and_surrounding_space)
{
    check_next("  @DAILY\t", T0, 1741996800);
}

/* ---- basic fields ---- */

Test(cron, every_fifteen_minutes)
{
    check_next("*/15 * * * *", T0, 1741966200);         /* 15:30 */
    check_next("*/15 * * * *", 1741966200, 1741967100); /* strictly after 15:30 -> 15:45 */
    check_prev("*/15 * * * *", 1741966200, 1741965300); /* strictly before 15:30 -> 15:15 */
    check_prev("*/15 * * * *", T0, 1741965300);         /* 15:15 */
    /* 2025-03-14T23:50 -> 2025-03-15T00:00 */
    check_next("*/15 * * * *", 1741996200, 1741996800);
}

Test(cron, mondays_at_midnight)
{
    /* 2025-03-17, 2025-03-24, 2025-03-31 (Mondays) */
    SEQ("0 0 * * 1", T0, 1742169600, 1742774400, 1743379200);
    check_prev("0 0 * * 1", 1742169600, 1742169600 - 7 * 86400);
}

Test(cron, noon_on_the_first)
{
    check_next("0 12 1 * *", T0, 1743508800);         /* 2025-04-01T12:00:00Z */
    check_next("0 12 1 * *", 1765756800, 1767268800); /* 2025-12-15 -> 2026-01-01T12:00 */
    check_prev("0 12 1 * *", 1767268800, 1764590400); /* 2025-12-01T12:00:00Z */
}

Test(cron, hour_range_with_step_on_weekdays)
{
    /* hours 9, 13, 17 on MON-FRI: Fri 17:30, then Mon 09:30, Mon 13:30 */
    SEQ("30 9-17/4 * * MON-FRI", T0, 1741973400, 1742203800, 1742218200);
}

Test(cron, month_name_list)
{
    /* 2025-07-01, 2026-01-01 */
    SEQ("0 0 1 jan,Jul *", T0, 1751328000, 1767225600);
}

Test(cron, weekday_name_list)
{
    /* Sat 2025-03-15 08:00, Sun 03-16 08:00, Sat 03-22 08:00 */
    SEQ("0 8 * * sat,SUN", T0, 1742025600, 1742112000, 1742630400);
}

Test(cron, weekday_name_range_ending_at_sunday)
{
    /* from Sat 2025-03-15T11:00: Sun 03-16 10:15, Fri 03-21 10:15, Sat 03-22 10:15 */
    SEQ("15 10 * * FRI-SUN", 1742036400, 1742120100, 1742552100, 1742552100 + 86400);
    SEQ("15 10 * * 5-7", 1742036400, 1742120100, 1742552100, 1742552100 + 86400);
}

Test(cron, start_with_step)
{
    /* minutes 5, 25, 45: from 15:26:53 -> 15:45 -> 16:05 */
    SEQ("5/20 * * * *", T0, 1741967100, 1741968300);
}

Test(cron, list_of_values_and_ranges)
{
    /* minutes 0, 10-12, 58 of hour 15 on 2025-03-14 */
    SEQ("0,10-12,58 15 14 3 *", 1741964400 - 1, 1741964400, 1741965000, 1741965060, 1741965120,
        1741967880);
}

Test(cron, year_field_six_fields)
{
    check_next("0 0 1 1 * 2030", T0, 1893456000); /* 2030-01-01T00:00:00Z */
    check_next("0 0 1 1 * 2030", 1893456000, -1);
    check_prev("0 0 1 1 * 2030", T0, -1);
    check_prev("0 0 1 1 * 2030", 1893456000 + 1, 1893456000);
    /* 2027-01-01, 2029-01-01 */
    SEQ("0 0 1 1 * 2027,2029", T0, 1798761600, 1861920000);
    check_next("0 0 1 1 * 2027,2029", 1861920000, -1);
}

Test(cron, seconds_field_seven_fields)
{
    check_next("*/10 * * * * * *", T0, 1741966020); /* 15:27:00 */
    check_next("30 0 0 * * * *", T0, 1741996830);   /* 2025-03-15T00:00:30Z */
    /* 12:30:15 and 12:30:45 daily in 2025: from 2025-03-14 12:30:15 -> :45, next day :15 */
    SEQ("15,45 30 12 * * ? 2025", 1741955415, 1741955445, 1742041815);
    check_next("15,45 30 12 * * ? 2025", 1767184245, -1); /* 2025-12-31 12:30:45 is the last */
    check_prev("15,45 30 12 * * ? 2025", 1741955415, 1741955445 - 86400);
    /* stepping back into an earlier hour lands on its last matching second */
    check_prev("*/20 59 12 * * * *", 1741960800, 1741957180); /* 14:00 -> 12:59:40 */
}

Test(cron, five_and_six_fields_fire_on_second_zero)
{
    check_next("* * * * *", T0, 1741966020); /* 15:27:00 */
    check_prev("* * * * *", T0, 1741965960); /* 15:26:00 */
    check_next("* * * * * *", T0, 1741966020);
    check_next("* * * * * * *", T0, T0 + 1);
    check_prev("* * * * * * *", T0, T0 - 1);
}

/* ---- day matching ---- */

Test(cron, dom_and_dow_both_restricted_is_either)
{
    /* 13th or Friday, from Sun 2025-06-01: 06-06 Fri, 06-13 Fri+13th, 06-20 Fri */
    SEQ("0 0 13 * 5", 1748736000, 1749168000, 1749772800, 1750377600);
    /* from 2025-07-01: 07-04 Fri, 07-11 Fri, 07-13 Sun (13th), 07-18 Fri */
    SEQ("0 0 13 * FRI", 1751328000, 1751587200, 1752192000, 1752364800, 1752796800);
}

Test(cron, dom_only_when_dow_is_star)
{
    /* only the 13ths: 2025-07-13, 2025-08-13 */
    SEQ("0 0 13 * *", 1751328000, 1752364800, 1755043200);
    SEQ("0 0 13 * ?", 1751328000, 1752364800, 1755043200);
}

Test(cron, dow_only_when_dom_is_star)
{
    /* Fridays only from 2025-07-01: 07-04, 07-11, 07-18 */
    SEQ("0 0 ? * 5", 1751328000, 1751587200, 1752192000, 1752796800);
    SEQ("0 0 * * 5", 1751328000, 1751587200, 1752192000, 1752796800);
}

Test(cron, restricted_full_range_still_counts_as_restricted)
{
    /* dom 1-31 is restricted, so with dow FRI every day matches (either rule) */
    SEQ("0 0 1-31 * 5", 1751328000, 1751328000 + 86400, 1751328000 + 2 * 86400);
}

Test(cron, dow_seven_is_sunday)
{
    check_next("0 0 * * 7", T0, 1742083200); /* Sun 2025-03-16 */
    check_next("0 0 * * 0", T0, 1742083200);
    check_next("0 0 * * SUN", T0, 1742083200);
    check_prev("0 0 * * 7", T0, 1741478400);   /* Sun 2025-03-09 */
    check_next("0 0 * * 6-7", T0, 1741996800); /* Sat 2025-03-15 */
}

/* ---- boundaries ---- */

Test(cron, year_and_month_boundaries)
{
    /* 2025-12-31T23:59 -> 2026-12-31T23:59 */
    check_next("59 23 31 12 *", 1767225540, 1798761540);
    check_prev("59 23 31 12 *", 1798761540, 1767225540);
    /* stepping back into an earlier year lands on its last matching minute */
    check_prev("59 23 * * * 2027", 1843430400, 1830297540); /* 2028-06-01 -> 2027-12-31T23:59 */
    /* 31st: 2025-01-31 -> 2025-03-31 -> 2025-05-31 (Feb and Apr have none) */
    SEQ("0 0 31 * *", 1738281600 - 1, 1738281600, 1743379200, 1748649600);
    /* last second of the year rolls to the new year */
    check_next("* * * * *", 1767225599, 1767225600);
    check_prev("* * * * *", 1767225600, 1767225540);
}

Test(cron, leap_day)
{
    check_next("0 0 29 2 *", 1735689600, 1835395200); /* from 2025 -> 2028-02-29T00:00:00Z */
    check_prev("0 0 29 2 *", 1735689600, 1709164800); /* -> 2024-02-29T00:00:00Z */
    check_prev("0 0 29 2 *", 951868800, 951782400);   /* 2000 is a leap year */
    check_next("0 0 29 2 *", 3981312000, -1);         /* after 2096-02-29: 2100 is out */
    check_next("0 0 29 2 * 2097-2099", 0, -1);        /* no leap year there */
    /* all leap days 1972..2096: 32 of them, 2000 included */
    kz_cron_t *c = must_parse("0 0 29 2 *");
    int count = 0;
    for (int64_t t = kz_cron_next(c, -1); t != -1; t = kz_cron_next(c, t)) {
        struct tm tm;
        time_t tt = (time_t)t;
        gmtime_r(&tt, &tm);
        cr_assert(tm.tm_mon == 1 && tm.tm_mday == 29 && tm.tm_hour == 0 && tm.tm_min == 0);
        count++;
    }
    cr_assert_eq(count, 32);
    kz_cron_free(c);
}

Test(cron, end_of_2099_and_start_of_1970)
{
    check_next("* * * * *", 4102444710, 4102444740); /* 23:58:30 -> 2099-12-31T23:59 */
    check_next("* * * * *", 4102444740, -1);         /* nothing after the last minute */
    check_next("* * * * * * *", 4102444798, 4102444799);
    check_next("* * * * * * *", 4102444799, -1);
    check_next("* * * * *", INT64_MAX, -1);
    check_prev("* * * * *", INT64_MAX, 4102444740);
    check_prev("* * * * * * *", INT64_MAX, 4102444799);
    check_prev("* * * * *", 60, 0);
    check_prev("* * * * *", 0, -1);
    check_prev("* * * * *", INT64_MIN, -1);
    check_next("0 0 1 1 *", -5, 0); /* 1970-01-01T00:00:00Z */
    check_next("0 0 1 1 *", INT64_MIN, 0);
    check_prev("0 0 1 1 *", 1, 0);
    check_prev("0 0 1 1 *", 0, -1);
    check_prev("0 0 1 1 * 2099", 4102444800, 4070908800); /* 2099-01-01T00:00:00Z */
}

Test(cron, impossible_dates_return_quickly)
{
    static const char *const exprs[] = {
        "0 0 30 2 *",      "0 0 31 2 *",           "0 0 31 4,6,9,11 *",
        "0 0 30,31 FEB ?", "* * 31 2 * 2030-2099", "59 59 23 30 2 * *",
    };
    uint64_t start = kz_mono_ns();
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        kz_cron_t *c = must_parse(exprs[i]);
        cr_assert_eq(kz_cron_next(c, 0), -1, "%s", exprs[i]);
        cr_assert_eq(kz_cron_next(c, T0), -1, "%s", exprs[i]);
        cr_assert_eq(kz_cron_prev(c, INT64_MAX), -1, "%s", exprs[i]);
        cr_assert_eq(kz_cron_prev(c, T0), -1, "%s", exprs[i]);
        kz_cron_free(c);
    }
    uint64_t ms = (kz_mono_ns() - start) / 1000000;
    cr_assert_lt(ms, 200, "took %llu ms", (unsigned long long)ms);
}

Test(cron, sparse_search_is_fast)
{
    /* a whole 130-year walk of a sparse schedule in both directions */
    kz_cron_t *c = must_parse("59 59 23 31 12 ? 2099");
    uint64_t start = kz_mono_ns();
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(kz_cron_next(c, i), 4102444799);
    }
    kz_cron_free(c);
    c = must_parse("0 0 0 1 1 ? 1970");
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(kz_cron_prev(c, INT64_MAX - i), 0);
    kz_cron_free(c);
    uint64_t ms = (kz_mono_ns() - start) / 1000000;
    cr_assert_lt(ms, 1000, "took %llu ms", (unsigned long long)ms);
}

/* ---- brute force ---- */

static bool p_every15(const struct tm *t)
{
    return t->tm_min % 15 == 0;
}
static bool p_monday(const struct tm *t)
{
    return t->tm_min == 0 && t->tm_hour == 0 && t->tm_wday == 1;
}
static bool p_weekday_hours(const struct tm *t)
{
    return t->tm_min == 30 && (t->tm_hour == 9 || t->tm_hour == 13 || t->tm_hour == 17) &&
           t->tm_wday >= 1 && t->tm_wday <= 5;
}
static bool p_13_or_friday(const struct tm *t)
{
    return t->tm_min == 0 && t->tm_hour == 0 && (t->tm_mday == 13 || t->tm_wday == 5);
}
static bool p_lists(const struct tm *t)
{
    return (t->tm_min == 5 || t->tm_min == 35) && t->tm_hour % 6 == 0 &&
           (t->tm_mday <= 10 || t->tm_mday == 20);
}
static bool p_weekend_noon_febmar(const struct tm *t)
{
    return t->tm_min == 0 && t->tm_hour == 12 && (t->tm_mon == 1 || t->tm_mon == 2) &&
           (t->tm_wday == 0 || t->tm_wday == 6);
}
static bool p_leap(const struct tm *t)
{
    return t->tm_min == 0 && t->tm_hour == 0 && t->tm_mday == 29 && t->tm_mon == 1;
}
static bool p_daily(const struct tm *t)
{
    return t->tm_min == 0 && t->tm_hour == 0;
}
static bool p_hourly(const struct tm *t)
{
    return t->tm_min == 0;
}
static bool p_sunday(const struct tm *t)
{
    return t->tm_min == 0 && t->tm_hour == 0 && t->tm_wday == 0;
}
static bool p_31st(const struct tm *t)
{
    return t->tm_min == 0 && t->tm_hour == 3 && t->tm_mday == 31;
}
static bool p_odd_minutes_22h(const struct tm *t)
{
    return (t->tm_min == 1 || t->tm_min == 3 || t->tm_min == 5) && t->tm_hour == 22;
}
static bool p_year_2024_jan(const struct tm *t)
{
    return t->tm_year == 124 && t->tm_mon == 0 && t->tm_min == 45 && t->tm_hour == 7 &&
           (t->tm_wday == 2 || t->tm_mday == 1);
}
/* seconds-resolution predicates */
static bool p_sec_1545(const struct tm *t)
{
    return (t->tm_sec == 15 || t->tm_sec == 45) && t->tm_min % 7 == 0 && t->tm_year == 124;
}
static bool p_sec_2359(const struct tm *t)
{
    return t->tm_sec % 20 == 0 && t->tm_min == 59 && t->tm_hour == 23;
}
static bool p_sec_leap(const struct tm *t)
{
    return t->tm_sec == 0 && t->tm_min == 0 && t->tm_hour == 0 && t->tm_mday == 29 &&
           t->tm_mon == 1 && t->tm_year == 124;
}
static bool p_sec_range(const struct tm *t)
{
    return t->tm_sec >= 10 && t->tm_sec <= 50 && (t->tm_sec - 10) % 8 == 0 && t->tm_min == 30 &&
           t->tm_hour >= 11 && t->tm_hour <= 12;
}

typedef struct {
    const char *expr;
    bool (*match)(const struct tm *);
} ref_t;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static bool brute_match(const ref_t *r, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    return r->match(&tm);
}

/* Every instant of [a, b) stepping by `step` seconds that r matches. */
static int64_t *brute_list(const ref_t *r, int64_t a, int64_t b, int64_t step, size_t *n)
{
    size_t cap = 1024;
    int64_t *v = malloc(cap * sizeof *v);
    *n = 0;
    for (int64_t t = a; t < b; t += step) {
        if (!brute_match(r, t)) continue;
        if (*n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = t;
    }
    return v;
}

/* Index of the first element > t (n when none). */
static size_t upper(const int64_t *v, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first element >= t. */
static size_t lower_bound(const int64_t *v, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void brute_compare(const ref_t *r, int64_t a, int64_t b, int64_t step, int rounds)
{
    kz_cron_t *c = must_parse(r->expr);
    size_t n;
    int64_t *m = brute_list(r, a, b, step, &n);
    cr_assert_gt(n, 0, "'%s' has no match in the window", r->expr);
    char x[32], y[32], z[32];
    for (int i = 0; i < rounds; i++) {
        int64_t t;
        if (i % 5 == 0)
            t = m[rnd() % n] + (int64_t)(rnd() % 3) - 1; /* on, just before, just after a match */
        else
            t = a + (int64_t)(rnd() % (uint64_t)(b - a));
        if (t < a || t >= b) continue;

        int64_t nx = kz_cron_next(c, t), pv = kz_cron_prev(c, t);
        size_t ui = upper(m, n, t), li = lower_bound(m, n, t);
        if (ui < n)
            cr_assert_eq(nx, m[ui], "next('%s', %s) = %s, brute force %s", r->expr, iso(t, z),
                         iso(nx, x), iso(m[ui], y));
        else
            cr_assert(nx == -1 || nx >= b, "next('%s', %s) = %s inside the window", r->expr,
                      iso(t, z), iso(nx, x));
        if (li > 0)
            cr_assert_eq(pv, m[li - 1], "prev('%s', %s) = %s, brute force %s", r->expr, iso(t, z),
                         iso(pv, x), iso(m[li - 1], y));
        else
            cr_assert(pv < a, "prev('%s', %s) = %s inside the window", r->expr, iso(t, z),
                      iso(pv, x));

        /* prev is the inverse of next: prev(next(t)) <= t < next(t) */
        if (nx != -1) {
            cr_assert_gt(nx, t);
            int64_t back = kz_cron_prev(c, nx);
            cr_assert_leq(back, t, "prev(next(%s)) = %s", iso(t, z), iso(back, x));
            bool t_matches = li < n && m[li] == t;
            cr_assert_eq(back, t_matches ? t : pv, "prev(next(%s)) = %s", iso(t, z), iso(back, x));
        }
        if (pv != -1) {
            cr_assert_lt(pv, t);
            bool t_matches = li < n && m[li] == t;
            cr_assert_eq(kz_cron_next(c, pv), t_matches ? t : nx, "next(prev(%s))", iso(t, z));
        }
    }
    free(m);
    kz_cron_free(c);
}

/* 2023-12-01T00:00:00Z .. 2024-03-15T00:00:00Z: a year change and a leap day. */
static const int64_t WIN_A = 1701388800, WIN_B = 1710460800;

Test(cron, random_instants_match_minute_brute_force)
{
    static const ref_t refs[] = {
        {"*/15 * * * *", p_every15},
        {"0 0 * * 1", p_monday},
        {"30 9-17/4 * * MON-FRI", p_weekday_hours},
        {"0 0 13 * 5", p_13_or_friday},
        {"5,35 */6 1-10,20 * *", p_lists},
        {"0 12 * FEB,mar 0,6", p_weekend_noon_febmar},
        {"0 0 29 2 *", p_leap},
        {"@daily", p_daily},
        {"@hourly", p_hourly},
        {"0 0 ? * 7", p_sunday},
        {"0 3 31 * *", p_31st},
        {"1-5/2 22 * * *", p_odd_minutes_22h},
        {"45 7 1 JAN TUE 2024", p_year_2024_jan},
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        brute_compare(&refs[i], WIN_A, WIN_B, 60, 300);
}

Test(cron, random_instants_match_second_brute_force)
{
    /* 2024-02-27T00:00:00Z .. 2024-03-02T00:00:00Z */
    static const int64_t a = 1708992000, b = 1709337600;
    static const ref_t refs[] = {
        {"15,45 */7 * * * * 2024", p_sec_1545},
        {"*/20 59 23 * * * *", p_sec_2359},
        {"0 0 0 29 2 ? 2024", p_sec_leap},
        {"10-50/8 30 11-12 * * * *", p_sec_range},
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        brute_compare(&refs[i], a, b, 1, 300);
}

Test(cron, random_instants_over_the_whole_range)
{
    /* No brute force here: next/prev must match the predicate and be inverses
     * anywhere in 1970..2099. */
    static const ref_t refs[] = {
        {"0 0 13 * 5", p_13_or_friday},
        {"0 3 31 * *", p_31st},
        {"0 0 29 2 *", p_leap},
        {"30 9-17/4 * * MON-FRI", p_weekday_hours},
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        kz_cron_t *c = must_parse(refs[i].expr);
        for (int k = 0; k < 300; k++) {
            int64_t t = (int64_t)(rnd() % UINT64_C(4102444800));
            int64_t nx = kz_cron_next(c, t), pv = kz_cron_prev(c, t);
            char x[32], z[32];
            if (nx != -1) {
                cr_assert_gt(nx, t);
                cr_assert(brute_match(&refs[i], nx) && nx % 60 == 0, "'%s' next %s", refs[i].expr,
                          iso(nx, x));
                cr_assert_eq(kz_cron_prev(c, nx), pv, "'%s' prev(next(%s))", refs[i].expr,
                             iso(t, z));
            }
            if (pv != -1) {
                cr_assert_lt(pv, t);
                cr_assert(brute_match(&refs[i], pv) && pv % 60 == 0, "'%s' prev %s", refs[i].expr,
                          iso(pv, x));
                /* the next match after pv is t itself when t matches, else next(t) */
                bool t_matches = t % 60 == 0 && brute_match(&refs[i], t);
                cr_assert_eq(kz_cron_next(c, pv), t_matches ? t : nx, "'%s' next(prev(%s))",
                             refs[i].expr, iso(t, z));
            }
        }
        kz_cron_free(c);
    }
}

/* ---- errors ---- */

static void check_error(const char *expr, const char *needle)
{
    char err[128];
    memset(err, 'x', sizeof err);
    kz_cron_t *c = kz_cron_parse(expr, err, sizeof err);
    cr_assert_null(c, "'%s' parsed but should not", expr);
    cr_assert(memchr(err, '\0', sizeof err) != NULL, "'%s': message not terminated", expr);
    cr_assert(strlen(err) > 0, "'%s': empty message", expr);
    cr_assert(strstr(err, needle) != NULL, "'%s': message '%s' lacks '%s'", expr, err, needle);
}

Test(cron, bad_expressions_are_rejected_with_a_message)
{
    check_error("", "empty");
    check_error(" \t ", "empty");
    check_error("* * * *", "got 4");
    check_error("* * * * * * * *", "got 8");
    check_error("* * * * * * * * * * *", "more than 8");
    check_error("60 * * * *", "minute: 60 out of range 0-59");
    check_error("* 24 * * *", "hour: 24 out of range");
    check_error("* * 0 * *", "day-of-month: 0 out of range");
    check_error("* * 32 * *", "day-of-month: 32 out of range");
    check_error("* * * 13 *", "month: 13 out of range");
    check_error("* * * 0 *", "month: 0 out of range");
    check_error("* * * * 8", "day-of-week: 8 out of range");
    check_error("* * * * * 1969", "year: 1969 out of range");
    check_error("* * * * * 2100", "year: 2100 out of range");
    check_error("60 * * * * * *", "second: 60 out of range");
    check_error("99999999999999999999 * * * *", "too large");
    check_error("5-3 * * * *", "reversed");
    check_error("* * * * FRI-MON", "reversed");
    check_error("*/0 * * * *", "at least 1");
    check_error("1-10/0 * * * *", "at least 1");
    check_error("*/ * * * *", "missing step");
    check_error("*/x * * * *", "unexpected character 'x'");
    check_error("* * L * *", "not supported");
    check_error("* * 15W * *", "not supported");
    check_error("* * LW * *", "not supported");
    check_error("* * * * 5L", "not supported");
    check_error("* * * * 5#2", "not supported");
    check_error("a * * * *", "unknown name 'a'");
    check_error("* * * FOO *", "unknown name 'FOO'");
    check_error("* * * * MONDAY", "unknown name");
    check_error("* * * JAN-FOO *", "unknown name");
    check_error("* * * * JAN", "unknown name");
    check_error("1,,2 * * * *", "empty list item");
    check_error("1, * * * *", "empty list item");
    check_error(",1 * * * *", "empty list item");
    check_error("1-2-3 * * * *", "unexpected character '-'");
    check_error("-5 * * * *", "unexpected character '-'");
    check_error("? * * * *", "only allowed");
    check_error("* * * * ?/2", "unexpected character '/'");
    check_error("* * * * *\n", "unexpected byte 0x0a");
    check_error("1.5 * * * *", "unexpected character '.'");
    check_error("@every 5m", "macro");
    check_error("@fortnightly", "unknown macro");
    check_error("@daily *", "whole expression");

    char big[400];
    memset(big, ' ', sizeof big);
    memcpy(big, "* * * * *", 9);
    big[sizeof big - 1] = '\0';
    check_error(big, "longer than");
}

Test(cron, error_buffer_handling)
{
    /* NULL expression, NULL or tiny error buffers */
    cr_assert_null(kz_cron_parse(NULL, NULL, 0));
    cr_assert_null(kz_cron_parse("nope", NULL, 0));
    char tiny[8];
    cr_assert_null(kz_cron_parse("60 * * * *", tiny, sizeof tiny));
    cr_assert_eq(strlen(tiny), sizeof tiny - 1);
    cr_assert_str_eq(tiny, "minute:");
    /* a successful parse leaves an empty message */
    char err[64] = "stale";
    kz_cron_t *c = kz_cron_parse("* * * * *", err, sizeof err);
    cr_assert_not_null(c);
    cr_assert_str_eq(err, "");
    kz_cron_free(c);
    kz_cron_free(NULL);
    cr_assert_eq(kz_cron_next(NULL, 0), -1);
    cr_assert_eq(kz_cron_prev(NULL, T0), -1);
}

Test(cron, longest_accepted_expression)
{
    char buf[KZ_CRON_MAX_LEN + 1];
    memset(buf, ' ', KZ_CRON_MAX_LEN);
    memcpy(buf, "0 0 * * *", 9);
    buf[KZ_CRON_MAX_LEN] = '\0';
    kz_cron_t *c = must_parse(buf);
    cr_assert_eq(kz_cron_next(c, T0), 1741996800);
    kz_cron_free(c);
}

Test(cron, case_insensitive_names)
{
    check_next("0 0 1 jAn *", T0, 1767225600);
    check_next("0 0 * * sUn", T0, 1742083200);
    check_next("0 0 * * mon-SUN", T0, 1741996800); /* MON-SUN is every day */
}
