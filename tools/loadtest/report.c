/* End-of-run reports: text, JSON and one self-contained HTML page with
 * inline SVG line charts.
 *
 * Every name that reaches the HTML (ops, reasons, scenario names) goes
 * through sb_html; the page carries its own small stylesheet and no
 * scripts, and each chart is styled by attributes alone, so an <svg> cut
 * out of the page renders the same anywhere. Charts are drawn from the run's per-second series (and the soak
 * samples), thinned to at most MAX_POINTS points per line by averaging
 * neighbours, so a 48-hour soak still gives a page of modest size. */
#include "loadtest/report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/strbuf.h"

#define MAX_POINTS 1500 /* per chart line */
#define MAX_LINES 12    /* lines per chart: the busiest ops (the rest are left out) */

/* Appends s with &, <, >, " and ' escaped. */
static void sb_html(kz_strbuf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': kz_strbuf_puts(b, "&amp;"); break;
        case '<': kz_strbuf_puts(b, "&lt;"); break;
        case '>': kz_strbuf_puts(b, "&gt;"); break;
        case '"': kz_strbuf_puts(b, "&quot;"); break;
        case '\'': kz_strbuf_puts(b, "&#39;"); break;
        default: kz_strbuf_putc(b, *s);
        }
    }
}

/* ----- Numbers shared by the three formats ------------------------------- */

static double elapsed_s(const lt_report_info_t *info)
{
    if (info->elapsed_s > 0) return info->elapsed_s;
    return info->duration_ms > 0 ? (double)info->duration_ms / 1000.0 : 1.0;
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

/* The soak verdict when there are samples. */
static bool soak_verdict(const lt_soak_t *soak, lt_soak_verdict_t *v)
{
    if (!soak) return false;
    lt_soak_judge(soak, v);
    return true;
}

/* ----- Text -------------------------------------------------------------- */

char *lt_report_text(const lt_run_t *run, const lt_soak_t *soak, const lt_report_info_t *info)
{
    kz_strbuf_t b = {0};
    const lt_stats_t *t = run->total;
    double secs = elapsed_s(info);

    kz_strbuf_printf(&b, "kizuna-loadtest: %s", info->scenario ? info->scenario : "run");
    if (info->file) kz_strbuf_printf(&b, " (%s)", info->file);
    if (info->run_id) kz_strbuf_printf(&b, ", run %s", info->run_id);
    kz_strbuf_puts(&b, "\n");
    if (info->target) kz_strbuf_printf(&b, "target %s, ", info->target);
    kz_strbuf_printf(&b, "%" PRId64 " bots planned, %.1f s (elapsed %.1f s), %d process%s", info->bots,
              (double)info->duration_ms / 1000.0, secs, info->processes,
              info->processes == 1 ? "" : "es");
    if (info->agents > 0) kz_strbuf_printf(&b, " on %d agent%s", info->agents, info->agents == 1 ? "" : "s");
    kz_strbuf_puts(&b, "\n");
    if (info->started) kz_strbuf_printf(&b, "started %s\n", info->started);
    kz_strbuf_puts(&b, "\n");

    int w = 20; /* the op column: as wide as the longest name */
    for (size_t i = 0; i < t->nops; i++)
        if ((int)strlen(t->ops[i].name) > w) w = (int)strlen(t->ops[i].name);
    kz_strbuf_printf(&b, "%-*s %10s %10s %8s %9s %9s %9s %9s %9s\n", w, "op", "count", "ok/s", "errors",
              "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
    for (size_t i = 0; i < t->nops; i++) {
        const lt_op_stats_t *o = &t->ops[i];
        const lt_hist_t *h = &o->hist;
        kz_strbuf_printf(&b, "%-*s %10" PRIu64 " %10.1f %8" PRIu64 " %9.2f %9.2f %9.2f %9.2f %9.2f\n",
                  w, o->name, o->ok + o->errors, (double)o->ok / secs, o->errors,
                  ms(lt_hist_quantile(h, 0.5)), ms(lt_hist_quantile(h, 0.9)),
                  ms(lt_hist_quantile(h, 0.99)), ms(lt_hist_quantile(h, 0.999)), ms(h->max));
    }
    if (t->nops == 0) kz_strbuf_puts(&b, "(no operations recorded)\n");

    const uint64_t *c = t->counters;
    kz_strbuf_printf(&b,
              "\nbots: %" PRIu64 " started, %" PRIu64 " finished, %" PRIu64 " failed\n"
              "connections: peak %" PRId64 ", %" PRId64 " open at the end\n"
              "messages: %" PRIu64 " sent (%.1f/s), %" PRIu64 " received (%.1f/s)\n"
              "bytes: %" PRIu64 " sent, %" PRIu64 " received\n"
              "late iterations: %" PRIu64 "\n",
              c[LT_C_BOTS_STARTED], c[LT_C_BOTS_FINISHED], c[LT_C_BOTS_FAILED], t->conns_peak,
              t->conns_open, c[LT_C_MSGS_SENT], (double)c[LT_C_MSGS_SENT] / secs,
              c[LT_C_MSGS_RECV], (double)c[LT_C_MSGS_RECV] / secs, c[LT_C_BYTES_SENT],
              c[LT_C_BYTES_RECV], c[LT_C_LATE]);

    bool any = false;
    for (size_t i = 0; i < t->nops; i++) {
        const lt_op_stats_t *o = &t->ops[i];
        for (size_t r = 0; r < o->nreasons; r++) {
            if (!any) kz_strbuf_puts(&b, "\nerrors by reason:\n");
            any = true;
            kz_strbuf_printf(&b, "  %-*s %-32s %10" PRIu64 "\n", w, o->name, o->reasons[r].name,
                      o->reasons[r].count);
        }
    }
    if (!any) kz_strbuf_puts(&b, "\nno errors\n");

    lt_soak_verdict_t v;
    if (soak_verdict(soak, &v)) {
        char line[256];
        lt_soak_describe(&v, line, sizeof line);
        kz_strbuf_printf(&b, "\n%s\n", line);
        if (soak->failures) kz_strbuf_printf(&b, "soak: %" PRIu64 " failed metric fetches\n", soak->failures);
    }
    return kz_strbuf_take(&b);
}

/* ----- JSON -------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *lt_report_json(const lt_run_t *run, const lt_soak_t *soak, const lt_report_info_t *info)
{
    const lt_stats_t *t = run->total;
    double secs = elapsed_s(info);
    json_t *ops = json_object();
    for (size_t i = 0; i < t->nops; i++) {
        const lt_op_stats_t *o = &t->ops[i];
        const lt_hist_t *h = &o->hist;
        json_t *reasons = json_object();
        for (size_t r = 0; r < o->nreasons; r++)
            json_object_set_new(reasons, o->reasons[r].name,
                                json_integer((json_int_t)o->reasons[r].count));
        json_object_set_new(
            ops, o->name,
            json_pack("{sIsIsIsfsfsfsfsfsfsfsfso}", "count", (json_int_t)(o->ok + o->errors), "ok",
                      (json_int_t)o->ok, "errors", (json_int_t)o->errors, "ok_per_s",
                      (double)o->ok / secs, "p50_ms", ms(lt_hist_quantile(h, 0.5)), "p90_ms",
                      ms(lt_hist_quantile(h, 0.9)), "p99_ms", ms(lt_hist_quantile(h, 0.99)),
                      "p999_ms", ms(lt_hist_quantile(h, 0.999)), "min_ms", ms(h->min), "max_ms",
                      ms(h->max), "mean_ms", lt_hist_mean(h) / 1000.0, "reasons", reasons));
    }
    json_t *counters = json_object();
    for (int c = 0; c < LT_C_COUNT_; c++)
        json_object_set_new(counters, lt_counter_name((lt_counter_t)c),
                            json_integer((json_int_t)t->counters[c]));
    json_t *info_j = json_pack(
        "{sosososososIsIsfsisi}", "scenario", str_or_null(info->scenario), "file",
        str_or_null(info->file), "run_id", str_or_null(info->run_id), "target",
        str_or_null(info->target), "started", str_or_null(info->started), "bots",
        (json_int_t)info->bots, "duration_ms", (json_int_t)info->duration_ms, "elapsed_s", secs,
        "processes", info->processes, "agents", info->agents);
    json_t *summary = json_pack("{sososIsI}", "ops", ops, "counters", counters, "conns_peak",
                                (json_int_t)t->conns_peak, "conns_open_at_end",
                                (json_int_t)t->conns_open);
    lt_soak_verdict_t v;
    json_t *soak_j = soak_verdict(soak, &v) ? lt_soak_to_json(soak, &v) : json_null();
    return json_pack("{sosososo}", "info", info_j, "summary", summary, "run", lt_run_to_json(run),
                     "soak", soak_j);
}

static int write_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        kz_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fwrite(text, 1, len, f);
    int e = ferror(f);
    if (fclose(f) != 0 || n != len || e) {
        kz_errf(err, errlen, "%s: write error", path);
        return -1;
    }
    return 0;
}

int lt_report_write_json(const char *path, const lt_run_t *run, const lt_soak_t *soak,
                         const lt_report_info_t *info, char *err, size_t errlen)
{
    json_t *j = lt_report_json(run, soak, info);
    char *text = json_dumps(j, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (!text) {
        kz_errf(err, errlen, "%s: cannot encode the report", path);
        return -1;
    }
    size_t len = strlen(text);
    char *line = realloc(text, len + 2); /* a trailing newline for the shell */
    if (!line) abort();
    line[len] = '\n';
    line[len + 1] = '\0';
    text = line;
    int rc = write_file(path, text, len + 1, err, errlen);
    free(text);
    return rc;
}

/* ----- SVG charts --------------------------------------------------------- */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                      "#393b79", "#637939"};

typedef struct {
    const char *name;
    double *x, *y; /* n points; y NAN = no value (a gap) */
    size_t n;
} line_t;

/* A "nice" step (1, 2 or 5 times a power of ten) giving about `want`
 * intervals over span. */
static double nice_step(double span, int want)
{
    if (!(span > 0)) return 1;
    double raw = span / want;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/* Tick label: 1500 -> "1.5k", 2000000 -> "2M", 0.25 -> "0.25". */
static void tick_label(char *out, size_t cap, double v, double step)
{
    double a = fabs(v);
    if (a >= 1e6 && step >= 1e5)
        snprintf(out, cap, "%gM", v / 1e6);
    else if (a >= 1e4 && step >= 1e3)
        snprintf(out, cap, "%gk", v / 1e3);
    else if (step >= 1)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%.*f", (int)ceil(-log10(step)), v);
}

/* Time label for the x axis: seconds as "45s", "12m", "3h". */
static void time_label(char *out, size_t cap, double s, double step)
{
    if (step >= 3600 && fmod(s, 3600) == 0)
        snprintf(out, cap, "%gh", s / 3600);
    else if (step >= 60 && fmod(s, 60) == 0)
        snprintf(out, cap, "%gm", s / 60);
    else
        snprintf(out, cap, "%gs", s);
}

/* A time step that lands on round seconds, minutes or hours. */
static double time_step(double span)
{
    static const double steps[] = {1,    2,    5,     10,    15,    30,    60,    120,
                                   300,  600,  900,   1800,  3600,  7200,  10800, 21600,
                                   43200, 86400, 172800, 604800};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (span / steps[i] <= 8) return steps[i];
    return nice_step(span, 8);
}

/* Averages runs of neighbouring points so a line has at most MAX_POINTS. */
static void thin(line_t *l)
{
    if (l->n <= MAX_POINTS) return;
    size_t group = (l->n + MAX_POINTS - 1) / MAX_POINTS, out = 0;
    for (size_t i = 0; i < l->n; i += group) {
        double sx = 0, sy = 0;
        size_t nx = 0, ny = 0;
        for (size_t k = i; k < i + group && k < l->n; k++) {
            sx += l->x[k];
            nx++;
            if (!isnan(l->y[k])) {
                sy += l->y[k];
                ny++;
            }
        }
        l->x[out] = sx / (double)nx;
        l->y[out] = ny ? sy / (double)ny : NAN;
        out++;
    }
    l->n = out;
}

#define CW 860 /* chart size and plot area */
#define CH 280
#define PL 70
#define PR 170
#define PT 34
#define PB 46

/* Draws one chart: lines over a time axis in seconds. */
static void chart(kz_strbuf_t *b, const char *title, const char *y_label, line_t *lines, size_t nlines)
{
    double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
    for (size_t i = 0; i < nlines; i++) {
        thin(&lines[i]);
        for (size_t k = 0; k < lines[i].n; k++) {
            if (lines[i].x[k] < xmin) xmin = lines[i].x[k];
            if (lines[i].x[k] > xmax) xmax = lines[i].x[k];
            if (!isnan(lines[i].y[k]) && lines[i].y[k] > ymax) ymax = lines[i].y[k];
        }
    }
    if (!(xmin <= xmax)) xmin = xmax = 0;
    if (xmin > 0) xmin = 0;
    if (xmax <= xmin) xmax = xmin + 1;
    double ystep = nice_step(ymax > 0 ? ymax : 1, 5);
    double ytop = ceil((ymax > 0 ? ymax : 1) / ystep) * ystep;
    double xstep = time_step(xmax - xmin);
    const double pw = CW - PL - PR, ph = CH - PT - PB;
#define SX(x) (PL + ((x) - xmin) / (xmax - xmin) * pw)
#define SY(y) (PT + ph - (y) / ytop * ph)

    kz_strbuf_puts(b, "<figure>\n");
    kz_strbuf_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 "
              "%d %d\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\" "
              "fill=\"#333\">\n<title>",
              CW, CH, CW, CH);
    sb_html(b, title);
    kz_strbuf_puts(b, "</title>\n");
    kz_strbuf_printf(b, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", PL);
    sb_html(b, title);
    kz_strbuf_puts(b, "</text>\n");

    /* grid and y ticks */
    for (double y = 0; y <= ytop + ystep / 2; y += ystep) {
        char lab[32];
        tick_label(lab, sizeof lab, y, ystep);
        kz_strbuf_printf(b,
                  "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                  "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                  PL, SY(y), PL + pw, SY(y), PL - 6, SY(y) + 4, lab);
    }
    /* x ticks */
    for (double x = ceil(xmin / xstep) * xstep; x <= xmax + 1e-9; x += xstep) {
        char lab[32];
        time_label(lab, sizeof lab, x, xstep);
        kz_strbuf_printf(b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                  SX(x), PT + ph, SX(x), PT + ph + 5, SX(x), PT + ph + 20, lab);
    }
    /* axes and their labels */
    kz_strbuf_printf(b,
              "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%.1f\" stroke=\"#444\"/>"
              "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
              PL, PT, PL, PT + ph, PL, PT + ph, PL + pw, PT + ph);
    kz_strbuf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">time since start</text>\n",
              PL + pw / 2, CH - 6);
    kz_strbuf_printf(b, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">",
              PT + ph / 2);
    sb_html(b, y_label);
    kz_strbuf_puts(b, "</text>\n");

    /* the lines, broken at gaps */
    for (size_t i = 0; i < nlines; i++) {
        const char *color = palette[i % (sizeof palette / sizeof palette[0])];
        bool open = false;
        for (size_t k = 0; k < lines[i].n; k++) {
            if (isnan(lines[i].y[k])) {
                if (open) kz_strbuf_puts(b, "\"/>\n");
                open = false;
                continue;
            }
            if (!open)
                kz_strbuf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                          color);
            kz_strbuf_printf(b, "%s%.1f,%.1f", open ? " " : "", SX(lines[i].x[k]), SY(lines[i].y[k]));
            open = true;
        }
        if (open) kz_strbuf_puts(b, "\"/>\n");
        /* legend */
        double ly = PT + 8 + 16.0 * (double)i;
        kz_strbuf_printf(b,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"3\" fill=\"%s\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\">",
                  PL + pw + 12, ly - 3, color, PL + pw + 30, ly + 1);
        sb_html(b, lines[i].name);
        kz_strbuf_puts(b, "</text>\n");
    }
    if (nlines == 0)
        kz_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no data</text>\n",
                  PL + pw / 2, PT + ph / 2);
    kz_strbuf_puts(b, "</svg>\n</figure>\n");
#undef SX
#undef SY
}

/* Lines built from the series: one per op (the busiest MAX_LINES), with
 * the value picked by `what`. */
enum { V_OK, V_ERRORS, V_P50, V_P99 };

static size_t op_lines(const lt_run_t *run, int what, line_t *lines)
{
    /* rank ops by total events */
    size_t order[LT_MAX_OPS + 1], n = 0;
    for (size_t i = 0; i < run->nops && n < LT_MAX_OPS + 1; i++) {
        const lt_op_stats_t *o = lt_stats_find(run->total, run->op_names[i]);
        uint64_t v = o ? (what == V_ERRORS ? o->errors : o->ok) : 0;
        if (v == 0) continue;
        order[n++] = i;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort, descending by events */
        for (size_t k = i; k > 0; k--) {
            const lt_op_stats_t *a = lt_stats_find(run->total, run->op_names[order[k]]);
            const lt_op_stats_t *p = lt_stats_find(run->total, run->op_names[order[k - 1]]);
            uint64_t va = what == V_ERRORS ? a->errors : a->ok;
            uint64_t vp = what == V_ERRORS ? p->errors : p->ok;
            if (va <= vp) break;
            size_t t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    if (n > MAX_LINES) n = MAX_LINES;
    for (size_t i = 0; i < n; i++) {
        size_t op = order[i];
        line_t *l = &lines[i];
        l->name = run->op_names[op];
        l->x = calloc(run->nsecs ? run->nsecs : 1, sizeof(double));
        l->y = calloc(run->nsecs ? run->nsecs : 1, sizeof(double));
        if (!l->x || !l->y) abort();
        l->n = 0;
        for (size_t s = 0; s < run->nsecs; s++) {
            const lt_sec_t *sec = &run->secs[s];
            if (!sec->seen) continue;
            const lt_sec_op_t *so = op < sec->nops ? &sec->ops[op] : NULL;
            double y;
            switch (what) {
            case V_OK: y = so ? (double)so->ok : 0; break;
            case V_ERRORS: y = so ? (double)so->errors : 0; break;
            case V_P50: y = so && so->ok ? ms(so->p50_us) : NAN; break;
            default: y = so && so->ok ? ms(so->p99_us) : NAN; break;
            }
            l->x[l->n] = (double)s;
            l->y[l->n] = y;
            l->n++;
        }
    }
    return n;
}

static void free_lines(line_t *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(lines[i].x);
        free(lines[i].y);
    }
}

/* A line from the series' own columns. */
enum { S_CONNS, S_SENT, S_RECV };

static line_t series_line(const lt_run_t *run, const char *name, int what)
{
    line_t l = {name, calloc(run->nsecs ? run->nsecs : 1, sizeof(double)),
                calloc(run->nsecs ? run->nsecs : 1, sizeof(double)), 0};
    if (!l.x || !l.y) abort();
    for (size_t s = 0; s < run->nsecs; s++) {
        const lt_sec_t *sec = &run->secs[s];
        if (!sec->seen) continue;
        l.x[l.n] = (double)s;
        l.y[l.n] = what == S_CONNS  ? (double)sec->conns
                   : what == S_SENT ? (double)sec->msgs_sent
                                    : (double)sec->msgs_recv;
        l.n++;
    }
    return l;
}

/* A line from the soak samples: RSS in MiB or server connections. */
static line_t soak_line(const lt_soak_t *soak, const char *name, bool rss)
{
    line_t l = {name, calloc(soak->n ? soak->n : 1, sizeof(double)),
                calloc(soak->n ? soak->n : 1, sizeof(double)), 0};
    if (!l.x || !l.y) abort();
    for (size_t i = 0; i < soak->n; i++) {
        double v = rss ? soak->v[i].rss_bytes : soak->v[i].conns;
        l.x[l.n] = (double)soak->v[i].t_ms / 1000.0;
        l.y[l.n] = v < 0 ? NAN : rss ? v / (1024.0 * 1024.0) : v;
        l.n++;
    }
    return l;
}

/* ----- HTML --------------------------------------------------------------- */

static const char *const css =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;"
    "max-width:1100px}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid "
    "#ddd}\n"
    "table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid "
    "#eee;text-align:right}\n"
    "td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}\n"
    ".meta{color:#555}.bad{color:#b00;font-weight:600}.good{color:#070}\n"
    "figure{margin:10px 0}\n";

static void html_summary(kz_strbuf_t *b, const lt_run_t *run, const lt_report_info_t *info)
{
    const lt_stats_t *t = run->total;
    double secs = elapsed_s(info);
    kz_strbuf_puts(b, "<h2>Operations</h2>\n<table>\n<tr><th>op</th><th>count</th><th>ok/s</th>"
               "<th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th>"
               "<th>max ms</th></tr>\n");
    for (size_t i = 0; i < t->nops; i++) {
        const lt_op_stats_t *o = &t->ops[i];
        const lt_hist_t *h = &o->hist;
        kz_strbuf_puts(b, "<tr><td>");
        sb_html(b, o->name);
        kz_strbuf_printf(b,
                  "</td><td>%" PRIu64 "</td><td>%.1f</td><td%s>%" PRIu64 "</td><td>%.2f</td>"
                  "<td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td></tr>\n",
                  o->ok + o->errors, (double)o->ok / secs, o->errors ? " class=\"bad\"" : "",
                  o->errors, ms(lt_hist_quantile(h, 0.5)), ms(lt_hist_quantile(h, 0.9)),
                  ms(lt_hist_quantile(h, 0.99)), ms(lt_hist_quantile(h, 0.999)), ms(h->max));
    }
    kz_strbuf_puts(b, "</table>\n");

    const uint64_t *c = t->counters;
    kz_strbuf_puts(b, "<h2>Counters</h2>\n<table>\n");
    kz_strbuf_printf(b,
              "<tr><td>bots started / finished / failed</td><td>%" PRIu64 " / %" PRIu64
              " / <span%s>%" PRIu64 "</span></td></tr>\n",
              c[LT_C_BOTS_STARTED], c[LT_C_BOTS_FINISHED],
              c[LT_C_BOTS_FAILED] ? " class=\"bad\"" : "", c[LT_C_BOTS_FAILED]);
    kz_strbuf_printf(b,
              "<tr><td>connections: peak / open at the end</td><td>%" PRId64 " / %" PRId64
              "</td></tr>\n",
              t->conns_peak, t->conns_open);
    kz_strbuf_printf(b,
              "<tr><td>messages sent / received</td><td>%" PRIu64 " (%.1f/s) / %" PRIu64
              " (%.1f/s)</td></tr>\n",
              c[LT_C_MSGS_SENT], (double)c[LT_C_MSGS_SENT] / secs, c[LT_C_MSGS_RECV],
              (double)c[LT_C_MSGS_RECV] / secs);
    kz_strbuf_printf(b, "<tr><td>bytes sent / received</td><td>%" PRIu64 " / %" PRIu64 "</td></tr>\n",
              c[LT_C_BYTES_SENT], c[LT_C_BYTES_RECV]);
    kz_strbuf_printf(b, "<tr><td>late iterations</td><td>%" PRIu64 "</td></tr>\n</table>\n",
              c[LT_C_LATE]);

    kz_strbuf_puts(b, "<h2>Errors by reason</h2>\n");
    bool any = false;
    for (size_t i = 0; i < t->nops; i++) {
        const lt_op_stats_t *o = &t->ops[i];
        for (size_t r = 0; r < o->nreasons; r++) {
            if (!any) kz_strbuf_puts(b, "<table>\n<tr><th>op</th><th>reason</th><th>count</th></tr>\n");
            any = true;
            kz_strbuf_puts(b, "<tr><td>");
            sb_html(b, o->name);
            kz_strbuf_puts(b, "</td><td>");
            sb_html(b, o->reasons[r].name);
            kz_strbuf_printf(b, "</td><td>%" PRIu64 "</td></tr>\n", o->reasons[r].count);
        }
    }
    kz_strbuf_puts(b, any ? "</table>\n" : "<p class=\"good\">No errors.</p>\n");
}

char *lt_report_html(const lt_run_t *run, const lt_soak_t *soak, const lt_report_info_t *info)
{
    kz_strbuf_t b = {0};
    kz_strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    kz_strbuf_puts(&b, "kizuna-loadtest: ");
    sb_html(&b, info->scenario ? info->scenario : "run");
    kz_strbuf_printf(&b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", css);
    sb_html(&b, info->scenario ? info->scenario : "kizuna-loadtest run");
    kz_strbuf_puts(&b, "</h1>\n<p class=\"meta\">");
    if (info->file) {
        sb_html(&b, info->file);
        kz_strbuf_puts(&b, " &middot; ");
    }
    if (info->run_id) {
        kz_strbuf_puts(&b, "run ");
        sb_html(&b, info->run_id);
        kz_strbuf_puts(&b, " &middot; ");
    }
    if (info->target) {
        kz_strbuf_puts(&b, "target ");
        sb_html(&b, info->target);
        kz_strbuf_puts(&b, " &middot; ");
    }
    kz_strbuf_printf(&b, "%" PRId64 " bots planned, %.1f s (elapsed %.1f s), %d process%s", info->bots,
              (double)info->duration_ms / 1000.0, elapsed_s(info), info->processes,
              info->processes == 1 ? "" : "es");
    if (info->agents > 0) kz_strbuf_printf(&b, " on %d agent%s", info->agents, info->agents == 1 ? "" : "s");
    if (info->started) {
        kz_strbuf_puts(&b, " &middot; started ");
        sb_html(&b, info->started);
    }
    kz_strbuf_puts(&b, "</p>\n");

    lt_soak_verdict_t v;
    if (soak_verdict(soak, &v)) {
        char line[256];
        lt_soak_describe(&v, line, sizeof line);
        kz_strbuf_printf(&b, "<p class=\"%s\">", v.growing ? "bad" : v.judged ? "good" : "meta");
        sb_html(&b, line);
        kz_strbuf_puts(&b, "</p>\n");
    }

    html_summary(&b, run, info);

    kz_strbuf_puts(&b, "<h2>Over time</h2>\n");
    line_t lines[MAX_LINES];
    size_t n = op_lines(run, V_OK, lines);
    chart(&b, "Throughput per operation", "ok per second", lines, n);
    free_lines(lines, n);
    n = op_lines(run, V_P50, lines);
    chart(&b, "Latency p50 per operation", "milliseconds", lines, n);
    free_lines(lines, n);
    n = op_lines(run, V_P99, lines);
    chart(&b, "Latency p99 per operation", "milliseconds", lines, n);
    free_lines(lines, n);
    n = op_lines(run, V_ERRORS, lines);
    if (n > 0) chart(&b, "Errors per operation", "errors per second", lines, n);
    free_lines(lines, n);

    line_t conns = series_line(run, "open connections", S_CONNS);
    chart(&b, "Connections (load generator side)", "connections", &conns, 1);
    free_lines(&conns, 1);
    line_t msgs[2] = {series_line(run, "sent", S_SENT), series_line(run, "received", S_RECV)};
    chart(&b, "Socket messages", "messages per second", msgs, 2);
    free_lines(msgs, 2);

    if (soak && soak->n > 0) {
        line_t rss = soak_line(soak, "server RSS", true);
        chart(&b, "Server resident memory", "MiB", &rss, 1);
        free_lines(&rss, 1);
        line_t sc = soak_line(soak, "server connections", false);
        chart(&b, "Server open connections", "connections", &sc, 1);
        free_lines(&sc, 1);
    }
    kz_strbuf_puts(&b, "<p class=\"meta\">Generated by kizuna-loadtest.</p>\n</body>\n</html>\n");
    return kz_strbuf_take(&b);
}

int lt_report_write_html(const char *path, const lt_run_t *run, const lt_soak_t *soak,
                         const lt_report_info_t *info, char *err, size_t errlen)
{
    char *html = lt_report_html(run, soak, info);
    int rc = write_file(path, html, strlen(html), err, errlen);
    free(html);
    return rc;
}
