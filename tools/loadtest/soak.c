/* Soak mode: two gauges read from the server's Prometheus text, kept over
 * the run, and a least-squares growth verdict on the resident memory. */
#include "loadtest/soak.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----- Prometheus text ----------------------------------------------------- */

static bool name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && isdigit((unsigned char)c));
}

/* Parses one sample line [p, end): "name{labels} value [timestamp]". Sets
 * *name, *nlen and *value; -1 for a line that is not a well-formed sample. */
static int parse_line(const char *p, const char *end, const char **name, size_t *nlen,
                      double *value)
{
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p == end || !name_char(*p, true)) return -1;
    *name = p;
    while (p < end && name_char(*p, false)) p++;
    *nlen = (size_t)(p - *name);
    if (p < end && *p == '{') { /* labels: skip to the closing brace, minding quotes */
        p++;
        bool quoted = false;
        while (p < end && (quoted || *p != '}')) {
            if (quoted && *p == '\\' && p + 1 < end)
                p++;
            else if (*p == '"')
                quoted = !quoted;
            p++;
        }
        if (p == end) return -1;
        p++;
    }
    if (p == end || (*p != ' ' && *p != '\t')) return -1;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    char num[64];
    size_t n = 0;
    while (p < end && *p != ' ' && *p != '\t' && *p != '\r') {
        if (n + 1 >= sizeof num) return -1;
        num[n++] = *p++;
    }
    num[n] = '\0';
    if (n == 0) return -1;
    char *stop;
    double v = strtod(num, &stop);
    if (*stop || !isfinite(v)) return -1;
    /* What follows may only be an optional timestamp. */
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    if (p < end) {
        if (*p == '-') p++;
        const char *ts = p;
        while (p < end && isdigit((unsigned char)*p)) p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        if (p != end || p == ts) return -1;
    }
    *value = v;
    return 0;
}

int lt_prom_parse(const char *text, size_t len, double *rss_bytes, double *conns)
{
    static const char rss_name[] = "process_resident_memory_bytes";
    static const char conns_name[] = "kizuna_connections_open";
    double rss = 0, cn = 0;
    int found = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *name;
        size_t nlen;
        double v;
        if (*p != '#' && parse_line(p, eol, &name, &nlen, &v) == 0) {
            if (nlen == sizeof rss_name - 1 && memcmp(name, rss_name, nlen) == 0) {
                rss += v;
                found |= LT_PROM_RSS;
            } else if (nlen == sizeof conns_name - 1 && memcmp(name, conns_name, nlen) == 0) {
                cn += v;
                found |= LT_PROM_CONNS;
            }
        }
        p = eol + 1;
    }
    if (found & LT_PROM_RSS) *rss_bytes = rss;
    if (found & LT_PROM_CONNS) *conns = cn;
    return found;
}

/* ----- Samples ------------------------------------------------------------- */

void lt_soak_init(lt_soak_t *s)
{
    memset(s, 0, sizeof *s);
}

void lt_soak_free(lt_soak_t *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

int lt_soak_add(lt_soak_t *s, int64_t t_ms, double rss_bytes, double conns)
{
    if (s->n >= LT_SOAK_MAX_SAMPLES) return -1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        lt_soak_sample_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            fputs("kizuna-loadtest: out of memory\n", stderr);
            abort();
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (lt_soak_sample_t){t_ms, isfinite(rss_bytes) ? rss_bytes : -1,
                                      isfinite(conns) ? conns : -1};
    return 0;
}

void lt_soak_fail(lt_soak_t *s)
{
    s->failures++;
}

/* ----- The verdict --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void lt_soak_judge(const lt_soak_t *s, lt_soak_verdict_t *out)
{
    memset(out, 0, sizeof *out);
    out->peak_conns = -1;
    out->conns_min = out->conns_max = -1;
    int64_t t0 = 0, t1 = 0;
    size_t nrss = 0;
    for (size_t i = 0; i < s->n; i++) {
        const lt_soak_sample_t *x = &s->v[i];
        if (x->conns >= 0 && x->conns > out->peak_conns) out->peak_conns = x->conns;
        if (x->rss_bytes < 0) continue;
        if (nrss == 0) {
            t0 = t1 = x->t_ms;
            out->first_rss = x->rss_bytes;
        }
        if (x->t_ms < t0) t0 = x->t_ms;
        if (x->t_ms > t1) t1 = x->t_ms;
        out->last_rss = x->rss_bytes;
        nrss++;
    }
    if (nrss == 0) return;

    /* The second half by time: t >= the midpoint (in ms, exactly). */
    double mid = ((double)t0 + (double)t1) / 2;
    double *ys = malloc(nrss * sizeof *ys);
    if (!ys) abort();
    double st = 0, sy = 0, tmin = 0, tmax = 0;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const lt_soak_sample_t *x = &s->v[i];
        if (x->rss_bytes < 0 || (double)x->t_ms < mid) continue;
        double t = (double)x->t_ms / 1000;
        if (x->conns >= 0) {
            if (out->conns_min < 0 || x->conns < out->conns_min) out->conns_min = x->conns;
            if (x->conns > out->conns_max) out->conns_max = x->conns;
        }
        if (n == 0 || t < tmin) tmin = t;
        if (n == 0 || t > tmax) tmax = t;
        st += t;
        sy += x->rss_bytes;
        ys[n++] = x->rss_bytes;
    }
    out->samples = n;
    if (n < LT_SOAK_MIN_SAMPLES) {
        free(ys);
        return;
    }
    double tm = st / (double)n, ym = sy / (double)n, sxx = 0, sxy = 0;
    for (size_t i = 0; i < s->n; i++) {
        const lt_soak_sample_t *x = &s->v[i];
        if (x->rss_bytes < 0 || (double)x->t_ms < mid) continue;
        double dt = (double)x->t_ms / 1000 - tm;
        sxx += dt * dt;
        sxy += dt * (x->rss_bytes - ym);
    }
    qsort(ys, n, sizeof *ys, cmp_double);
    out->median_rss = n % 2 ? ys[n / 2] : (ys[n / 2 - 1] + ys[n / 2]) / 2;
    free(ys);
    if (sxx <= 0) return; /* every sample at one instant */
    if (out->conns_max > 0 && out->conns_max - out->conns_min > LT_SOAK_LOAD_LIMIT * out->conns_max) {
        out->load_changing = true; /* a ramp is no leak: memory follows the sockets */
        return;
    }
    out->judged = true;
    out->slope = sxy / sxx;
    out->growth = out->slope * (tmax - tmin);
    out->mib_per_hour = out->slope * 3600 / (1024.0 * 1024.0);
    out->growing = out->growth > LT_SOAK_GROWTH_LIMIT * out->median_rss;
}

int lt_soak_describe(const lt_soak_verdict_t *v, char *out, size_t cap)
{
    const double mib = 1024.0 * 1024.0;
    if (v->load_changing)
        return snprintf(out, cap,
                        "soak: not judged: the server's connections went from %.0f to %.0f over the second "
                        "half (memory follows the load; hold a steady load longer)",
                        v->conns_min, v->conns_max);
    if (!v->judged)
        return snprintf(out, cap, "soak: not enough samples (%zu in the second half, need %d)",
                        v->samples, LT_SOAK_MIN_SAMPLES);
    double pct = v->median_rss > 0 ? 100 * v->growth / v->median_rss : 0;
    if (v->growing)
        return snprintf(out, cap,
                        "soak: RSS %.1f MiB -> %.1f MiB, %+.2f MiB/hour over the second half "
                        "(%zu samples, median %.1f MiB): GROWING (%+.1f%% of the median)",
                        v->first_rss / mib, v->last_rss / mib, v->mib_per_hour, v->samples,
                        v->median_rss / mib, pct);
    return snprintf(out, cap,
                    "soak: RSS %.1f MiB -> %.1f MiB, %+.2f MiB/hour over the second half "
                    "(%zu samples, median %.1f MiB): no growth (%+.1f%% of the median)",
                    v->first_rss / mib, v->last_rss / mib, v->mib_per_hour, v->samples,
                    v->median_rss / mib, pct);
}

static json_t *num_or_null(double v)
{
    return v < 0 ? json_null() : json_real(v);
}

json_t *lt_soak_to_json(const lt_soak_t *s, const lt_soak_verdict_t *v)
{
    json_t *samples = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(samples, json_pack("[Ioo]", (json_int_t)s->v[i].t_ms,
                                                 num_or_null(s->v[i].rss_bytes),
                                                 num_or_null(s->v[i].conns)));
    char line[256];
    lt_soak_describe(v, line, sizeof line);
    json_t *verdict = json_pack(
        "{sbsbsIsfsfsfsfsfsfsoss}", "judged", v->judged, "growing", v->growing, "samples",
        (json_int_t)v->samples, "median_rss", v->median_rss, "slope_bytes_per_s", v->slope,
        "growth_bytes", v->growth, "mib_per_hour", v->mib_per_hour, "first_rss", v->first_rss,
        "last_rss", v->last_rss, "peak_conns", num_or_null(v->peak_conns), "text", line);
    return json_pack("{sosIso}", "samples", samples, "failures", (json_int_t)s->failures, "verdict",
                     verdict);
}
