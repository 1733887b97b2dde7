/* Cron expressions: a parser into per-field bitsets and a search that jumps
 * over whole years, months, days, hours and minutes that cannot match. */
#include "core/cron.h"

#include "core/alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR, F_COUNT };

enum { YEAR_MIN = 1970, YEAR_MAX = 2099 };
/* 2100-01-01T00:00:00Z: every instant we can return is below this. */
static const int64_t T_END = INT64_C(4102444800);

static const struct {
    const char *name;
    int min, max; /* accepted values */
    int star_max; /* the largest value of "*" and "a/n" */
} FIELDS[F_COUNT] = {
    [F_SEC] = {"second", 0, 59, 59},
    [F_MIN] = {"minute", 0, 59, 59},
    [F_HOUR] = {"hour", 0, 23, 23},
    [F_DOM] = {"day-of-month", 1, 31, 31},
    [F_MON] = {"month", 1, 12, 12},
    [F_DOW] = {"day-of-week", 0, 7, 6},
    [F_YEAR] = {"year", YEAR_MIN, YEAR_MAX, YEAR_MAX},
};

static const char *const MONTH_NAMES[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const DAY_NAMES[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* Bit (v - base) for value v; base is 1970 for years and 0 otherwise, so
 * 130 years need three words. Day-of-week 7 is stored as 0. */
typedef struct {
    uint64_t w[3];
} bits_t;

struct kz_cron {
    bits_t f[F_COUNT];
    bool dom_any, dow_any; /* the field was exactly * or ? */
};

static int field_base(int f)
{
    return f == F_YEAR ? YEAR_MIN : 0;
}

static void bits_set(bits_t *b, int f, int v)
{
    if (f == F_DOW && v == 7) v = 0;
    unsigned i = (unsigned)(v - field_base(f));
    b->w[i / 64] |= UINT64_C(1) << (i % 64);
}

static bool has(const kz_cron_t *c, int f, int v)
{
    unsigned i = (unsigned)(v - field_base(f));
    return (c->f[f].w[i / 64] >> (i % 64)) & 1u;
}

/* Smallest value in [from, to] present in field f, or -1. */
static int next_in(const kz_cron_t *c, int f, int from, int to)
{
    for (int v = from; v <= to; v++)
        if (has(c, f, v)) return v;
    return -1;
}

/* Largest value in [from, to] present in field f, or -1. */
static int prev_in(const kz_cron_t *c, int f, int from, int to)
{
    for (int v = to; v >= from; v--)
        if (has(c, f, v)) return v;
    return -1;
}

/* ---- calendar (proleptic Gregorian, years 1970..2100) ---- */

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int DIM[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : DIM[m - 1];
}

/* Days from 1970-01-01 to January 1st of y (y >= 1970). */
static int64_t days_before_year(int y)
{
    int64_t n = y - 1;
    int64_t leaps = (n / 4 - 1969 / 4) - (n / 100 - 1969 / 100) + (n / 400 - 1969 / 400);
    return (int64_t)365 * (y - YEAR_MIN) + leaps;
}

static int days_before_month(int y, int m)
{
    static const int CUM[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    return CUM[m - 1] + (m > 2 && is_leap(y));
}

/* 0 = Sunday. 1970-01-01 was a Thursday. */
static int weekday(int y, int m, int d)
{
    int64_t days = days_before_year(y) + days_before_month(y, m) + d - 1;
    return (int)((days + 4) % 7);
}

typedef struct {
    int y, mo, d, h, mi, s;
} civil_t;

/* Unix seconds of a civil time; mo may be 13 (January of y + 1) and d may
 * run past the month's end (the days are simply added). */
static int64_t to_unix(int y, int mo, int d, int h, int mi, int s)
{
    if (mo == 13) {
        y++;
        mo = 1;
    }
    int64_t days = days_before_year(y) + days_before_month(y, mo) + d - 1;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

/* 0 <= t < T_END (or a little beyond: 2100 is handled too). */
static civil_t split(int64_t t)
{
    civil_t c;
    int64_t days = t / 86400;
    int sod = (int)(t % 86400);
    c.h = sod / 3600;
    c.mi = sod / 60 % 60;
    c.s = sod % 60;
    int y = YEAR_MIN + (int)(days / 366);
    while (days_before_year(y + 1) <= days)
        y++;
    int doy = (int)(days - days_before_year(y));
    int m = 1;
    while (m < 12 && days_before_month(y, m + 1) <= doy)
        m++;
    c.y = y;
    c.mo = m;
    c.d = doy - days_before_month(y, m) + 1;
    return c;
}

static bool day_ok(const kz_cron_t *c, int y, int m, int d)
{
    if (c->dom_any && c->dow_any) return true;
    bool dow = has(c, F_DOW, weekday(y, m, d));
    if (c->dom_any) return dow;
    bool dom = has(c, F_DOM, d);
    if (c->dow_any) return dom;
    return dom || dow;
}

/* ---- search ---- */

int64_t kz_cron_next(const kz_cron_t *c, int64_t t)
{
    if (!c || t >= T_END - 1) return -1;
    int64_t u = t < 0 ? 0 : t + 1;
    for (;;) {
        if (u >= T_END) return -1;
        civil_t v = split(u);
        if (!has(c, F_YEAR, v.y)) {
            int y = next_in(c, F_YEAR, v.y + 1, YEAR_MAX);
            if (y < 0) return -1;
            u = to_unix(y, 1, 1, 0, 0, 0);
            continue;
        }
        if (!has(c, F_MON, v.mo)) {
            int m = next_in(c, F_MON, v.mo + 1, 12);
            u = m < 0 ? to_unix(v.y + 1, 1, 1, 0, 0, 0) : to_unix(v.y, m, 1, 0, 0, 0);
            continue;
        }
        if (!day_ok(c, v.y, v.mo, v.d)) {
            int dim = days_in_month(v.y, v.mo), d = v.d + 1;
            while (d <= dim && !day_ok(c, v.y, v.mo, d))
                d++;
            u = to_unix(v.y, d <= dim ? v.mo : v.mo + 1, d <= dim ? d : 1, 0, 0, 0);
            continue;
        }
        if (!has(c, F_HOUR, v.h)) {
            int h = next_in(c, F_HOUR, v.h + 1, 23);
            u = h < 0 ? to_unix(v.y, v.mo, v.d + 1, 0, 0, 0) : to_unix(v.y, v.mo, v.d, h, 0, 0);
            continue;
        }
        if (!has(c, F_MIN, v.mi)) {
            int mi = next_in(c, F_MIN, v.mi + 1, 59);
            u = mi < 0 ? to_unix(v.y, v.mo, v.d, v.h, 0, 0) + 3600
                       : to_unix(v.y, v.mo, v.d, v.h, mi, 0);
            continue;
        }
        if (!has(c, F_SEC, v.s)) {
            int s = next_in(c, F_SEC, v.s + 1, 59);
            u = s < 0 ? to_unix(v.y, v.mo, v.d, v.h, v.mi, 0) + 60
                      : to_unix(v.y, v.mo, v.d, v.h, v.mi, s);
            continue;
        }
        return u;
    }
}

int64_t kz_cron_prev(const kz_cron_t *c, int64_t t)
{
    if (!c || t <= 0) return -1;
    int64_t u = t > T_END ? T_END - 1 : t - 1;
    for (;;) {
        if (u < 0) return -1;
        civil_t v = split(u);
        if (!has(c, F_YEAR, v.y)) {
            int y = prev_in(c, F_YEAR, YEAR_MIN, v.y - 1);
            if (y < 0) return -1;
            u = to_unix(y + 1, 1, 1, 0, 0, 0) - 1;
            continue;
        }
        if (!has(c, F_MON, v.mo)) {
            int m = prev_in(c, F_MON, 1, v.mo - 1);
            u = m < 0 ? to_unix(v.y, 1, 1, 0, 0, 0) - 1 : to_unix(v.y, m + 1, 1, 0, 0, 0) - 1;
            continue;
        }
        if (!day_ok(c, v.y, v.mo, v.d)) {
            int d = v.d - 1;
            while (d >= 1 && !day_ok(c, v.y, v.mo, d))
                d--;
            u = to_unix(v.y, v.mo, d + 1, 0, 0, 0) - 1; /* d == 0: end of last month */
            continue;
        }
        if (!has(c, F_HOUR, v.h)) {
            int h = prev_in(c, F_HOUR, 0, v.h - 1);
            u = h < 0 ? to_unix(v.y, v.mo, v.d, 0, 0, 0) - 1 : to_unix(v.y, v.mo, v.d, h, 59, 59);
            continue;
        }
        if (!has(c, F_MIN, v.mi)) {
            int mi = prev_in(c, F_MIN, 0, v.mi - 1);
            u = mi < 0 ? to_unix(v.y, v.mo, v.d, v.h, 0, 0) - 1
                       : to_unix(v.y, v.mo, v.d, v.h, mi, 59);
            continue;
        }
        if (!has(c, F_SEC, v.s)) {
            int s = prev_in(c, F_SEC, 0, v.s - 1);
            u = s < 0 ? to_unix(v.y, v.mo, v.d, v.h, v.mi, 0) - 1
                      : to_unix(v.y, v.mo, v.d, v.h, v.mi, s);
            continue;
        }
        return u;
    }
}

/* ---- parser ---- */

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}
static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}
static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool is_extension(char ch)
{
    ch = lower(ch);
    return ch == 'l' || ch == 'w' || ch == '#';
}

typedef struct {
    const char *p; /* cursor in the field's text */
    int f;         /* field index */
    char *err;
    size_t errlen;
} pstate_t;

static bool unexpected(pstate_t *ps)
{
    const char *name = FIELDS[ps->f].name;
    char ch = *ps->p;
    if (is_extension(ch))
        kz_errf(ps->err, ps->errlen, "%s: '%c' (Quartz extension) is not supported", name, ch);
    else if (ch == '\0')
        kz_errf(ps->err, ps->errlen, "%s: unexpected end of field", name);
    else if ((unsigned char)ch < 0x20 || (unsigned char)ch >= 0x7f)
        kz_errf(ps->err, ps->errlen, "%s: unexpected byte 0x%02x", name, (unsigned char)ch);
    else
        kz_errf(ps->err, ps->errlen, "%s: unexpected character '%c'", name, ch);
    return false;
}

/* A number or a three-letter name; *named tells which. Range-checked. */
static bool parse_value(pstate_t *ps, int *out, bool *named)
{
    const char *name = FIELDS[ps->f].name;
    *named = false;
    if (is_digit(*ps->p)) {
        long v = 0;
        while (is_digit(*ps->p)) {
            if (v < 100000) v = v * 10 + (*ps->p - '0');
            ps->p++;
        }
        if (v >= 100000) {
            kz_errf(ps->err, ps->errlen, "%s: number too large", name);
            return false;
        }
        if (v < FIELDS[ps->f].min || v > FIELDS[ps->f].max) {
            kz_errf(ps->err, ps->errlen, "%s: %ld out of range %d-%d", name, v, FIELDS[ps->f].min,
                    FIELDS[ps->f].max);
            return false;
        }
        *out = (int)v;
        return true;
    }
    if (is_alpha(*ps->p)) {
        const char *start = ps->p;
        while (is_alpha(*ps->p))
            ps->p++;
        size_t n = (size_t)(ps->p - start);
        if (n == 3 && (ps->f == F_MON || ps->f == F_DOW)) {
            const char *const *names = ps->f == F_MON ? MONTH_NAMES : DAY_NAMES;
            int count = ps->f == F_MON ? 12 : 7;
            for (int i = 0; i < count; i++) {
                if (lower(start[0]) == names[i][0] && lower(start[1]) == names[i][1] &&
                    lower(start[2]) == names[i][2]) {
                    *out = ps->f == F_MON ? i + 1 : i;
                    *named = true;
                    return true;
                }
            }
        }
        bool ext = true;
        for (const char *q = start; q < ps->p; q++)
            ext = ext && (lower(*q) == 'l' || lower(*q) == 'w');
        if (ext)
            kz_errf(ps->err, ps->errlen, "%s: '%.*s' (Quartz extension) is not supported", name,
                    (int)n, start);
        else
            kz_errf(ps->err, ps->errlen, "%s: unknown name '%.*s'", name, n > 16 ? 16 : (int)n,
                    start);
        return false;
    }
    return unexpected(ps);
}

static bool parse_step(pstate_t *ps, int *step)
{
    const char *name = FIELDS[ps->f].name;
    if (!is_digit(*ps->p)) {
        if (*ps->p == '\0' || *ps->p == ',')
            kz_errf(ps->err, ps->errlen, "%s: missing step after '/'", name);
        else
            unexpected(ps);
        return false;
    }
    long v = 0;
    while (is_digit(*ps->p)) {
        if (v < 100000) v = v * 10 + (*ps->p - '0');
        ps->p++;
    }
    if (v == 0) {
        kz_errf(ps->err, ps->errlen, "%s: step must be at least 1", name);
        return false;
    }
    if (v >= 100000) {
        kz_errf(ps->err, ps->errlen, "%s: step too large", name);
        return false;
    }
    *step = (int)v;
    return true;
}

/* One list item: * ? a a-b with an optional /n. */
static bool parse_item(pstate_t *ps, bits_t *b)
{
    const char *name = FIELDS[ps->f].name;
    int lo, hi, step = 1;
    if (*ps->p == '?') {
        if (ps->f != F_DOM && ps->f != F_DOW) {
            kz_errf(ps->err, ps->errlen, "%s: '?' is only allowed in day-of-month and day-of-week",
                    name);
            return false;
        }
        ps->p++;
        lo = FIELDS[ps->f].min;
        hi = FIELDS[ps->f].star_max;
    } else if (*ps->p == '*') {
        ps->p++;
        lo = FIELDS[ps->f].min;
        hi = FIELDS[ps->f].star_max;
        if (*ps->p == '/') {
            ps->p++;
            if (!parse_step(ps, &step)) return false;
        }
    } else {
        bool named;
        if (!parse_value(ps, &lo, &named)) return false;
        hi = lo;
        if (*ps->p == '-') {
            ps->p++;
            if (!parse_value(ps, &hi, &named)) return false;
            if (ps->f == F_DOW && named && hi == 0 && lo > 0) hi = 7; /* FRI-SUN */
            if (lo > hi) {
                kz_errf(ps->err, ps->errlen, "%s: range %d-%d is reversed", name, lo, hi);
                return false;
            }
            if (*ps->p == '/') {
                ps->p++;
                if (!parse_step(ps, &step)) return false;
            }
        } else if (*ps->p == '/') {
            ps->p++;
            if (!parse_step(ps, &step)) return false;
            hi = lo > FIELDS[ps->f].star_max ? lo : FIELDS[ps->f].star_max;
        }
    }
    for (int v = lo; v <= hi; v += step)
        bits_set(b, ps->f, v);
    if (*ps->p != '\0' && *ps->p != ',') return unexpected(ps);
    return true;
}

static bool parse_field(kz_cron_t *c, int f, const char *text, char *err, size_t errlen)
{
    pstate_t ps = {.p = text, .f = f, .err = err, .errlen = errlen};
    bits_t *b = &c->f[f];
    for (;;) {
        if (*ps.p == ',' || *ps.p == '\0') {
            kz_errf(err, errlen, "%s: empty list item", FIELDS[f].name);
            return false;
        }
        if (!parse_item(&ps, b)) return false;
        if (*ps.p == '\0') break;
        ps.p++; /* ',' */
    }
    if (f == F_DOM) c->dom_any = strcmp(text, "*") == 0 || strcmp(text, "?") == 0;
    if (f == F_DOW) c->dow_any = strcmp(text, "*") == 0 || strcmp(text, "?") == 0;
    return true;
}

static const struct {
    const char *name, *expr;
} MACROS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static bool same_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower(*a) != lower(*b)) return false;
    return *a == *b;
}

kz_cron_t *kz_cron_parse(const char *expr, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!expr) {
        kz_errf(err, errlen, "empty expression");
        return NULL;
    }
    size_t len = strnlen(expr, KZ_CRON_MAX_LEN + 1);
    if (len > KZ_CRON_MAX_LEN) {
        kz_errf(err, errlen, "expression longer than %d bytes", KZ_CRON_MAX_LEN);
        return NULL;
    }
    char buf[KZ_CRON_MAX_LEN + 1];
    memcpy(buf, expr, len + 1);

    /* Split into whitespace-separated fields, in place. */
    char *fields[8];
    int n = 0;
    for (char *p = buf; *p;) {
        while (is_space(*p))
            *p++ = '\0';
        if (!*p) break;
        if (n == 8) {
            n++;
            break;
        }
        fields[n++] = p;
        while (*p && !is_space(*p))
            p++;
    }
    if (n == 0) {
        kz_errf(err, errlen, "empty expression");
        return NULL;
    }
    if (fields[0][0] == '@') {
        if (n != 1) {
            kz_errf(err, errlen, "a macro must be the whole expression");
            return NULL;
        }
        for (size_t i = 0; i < sizeof MACROS / sizeof MACROS[0]; i++)
            if (same_nocase(fields[0], MACROS[i].name))
                return kz_cron_parse(MACROS[i].expr, err, errlen);
        kz_errf(err, errlen, "unknown macro '%.32s'", fields[0]);
        return NULL;
    }
    if (n < 5 || n > 7) {
        kz_errf(err, errlen, "expected 5, 6 or 7 fields, got %s%d", n > 8 ? "more than " : "",
                n > 8 ? 8 : n);
        return NULL;
    }

    /* Which field each text is; the missing ones default below. */
    static const int ORDER5[] = {F_MIN, F_HOUR, F_DOM, F_MON, F_DOW};
    static const int ORDER6[] = {F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR};
    static const int ORDER7[] = {F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR};
    const int *order = n == 5 ? ORDER5 : n == 6 ? ORDER6 : ORDER7;

    kz_cron_t *c = kz_calloc(1, sizeof *c);
    for (int i = 0; i < n; i++) {
        if (!parse_field(c, order[i], fields[i], err, errlen)) {
            kz_free(c);
            return NULL;
        }
    }
    if (n < 7) bits_set(&c->f[F_SEC], F_SEC, 0);
    if (n < 6)
        for (int y = YEAR_MIN; y <= YEAR_MAX; y++)
            bits_set(&c->f[F_YEAR], F_YEAR, y);
    return c;
}

void kz_cron_free(kz_cron_t *c)
{
    kz_free(c);
}
