/* kizuna-loadtest: bots that play real game sessions against a server that
 * speaks Nakama's API.
 *
 *   kizuna-loadtest run SCENARIO.yaml [--bots N] [--duration D] [--rate R]
 *       [--host H] [--port P] [--server-key K] [--processes K]
 *       [--format json|protobuf] [--report-json F] [--report-html F]
 *       [--soak] [--metrics-url URL] [--quiet] [--agents host:port,...] [--local]
 *   kizuna-loadtest agent --listen ADDR:PORT
 *
 * `run` is the coordinator: it splits the bots among worker processes
 * (fork + exec of this binary with the hidden `worker` subcommand, JSON
 * lines over pipes, see runner.h) and, with --agents, among agent processes
 * reached over TCP that run their own workers and speak the same protocol.
 * It merges the per-second deltas, shows a live progress line, samples the
 * server's metrics in soak mode, and prints the report at the end. Exit
 * status: 0 when every planned bot started and finished and none failed,
 * 1 otherwise, 2 for usage errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "client/client.h"
#include "core/alloc.h"
#include "loadtest/report.h"
#include "loadtest/runner.h"
#include "loadtest/scenario.h"
#include "loadtest/soak.h"
#include "loadtest/stats.h"

#define LT_LOCAL_START_MS 500   /* local workers start this long after spawning */
#define LT_AGENT_START_MS 1500  /* agents get more time (they spawn their own workers) */
#define LT_BOTS_PER_PROCESS 15000
#define LT_MAX_PENDING_SECS 64  /* agent: seconds kept for merging before forwarding anyway */

static const char *usage_text =
    "usage:\n"
    "  kizuna-loadtest run SCENARIO.yaml [--bots N] [--duration D] [--rate R] [--host H] [--port P]\n"
    "      [--server-key K] [--processes K] [--format json|protobuf] [--report-json FILE]\n"
    "      [--report-html FILE] [--soak] [--metrics-url URL] [--quiet] [--agents HOST:PORT,...] [--local]\n"
    "  kizuna-loadtest agent --listen ADDR:PORT\n";

static int usage(const char *msg)
{
    if (msg) fprintf(stderr, "kizuna-loadtest: %s\n", msg);
    fputs(usage_text, stderr);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Units: local worker processes and agents, both speaking JSON lines       */

typedef struct coord coord_t;

enum unit_kind { U_LOCAL, U_AGENT };

typedef struct {
    coord_t *co;
    int kind;
    char name[96];
    uv_process_t proc; /* U_LOCAL */
    uv_pipe_t to;      /* U_LOCAL: the worker's stdin */
    uv_pipe_t from;    /* U_LOCAL: the worker's stdout */
    uv_tcp_t tcp;      /* U_AGENT */
    uv_connect_t creq;
    struct sockaddr_storage addr;
    char *rbuf;        /* partial line */
    size_t rlen, rcap;
    bool started, done, eof, exited, failed, closed;
    int open_handles;
    int64_t lo, hi;
    char *start_line;  /* what to send once connected (agents) */
} unit_t;

struct coord {
    uv_loop_t *loop;
    lt_scenario_t *scn;
    lt_start_t tpl;        /* scenario text, file, overrides, run id */
    unit_t **units;
    size_t nunits;
    bool agent_mode;       /* forward deltas upstream instead of reporting */
    uv_stream_t *upstream; /* agent mode: the coordinator's connection */
    lt_run_t *run;
    struct {
        int64_t sec;
        lt_stats_t *st;
        size_t count;
    } pend[LT_MAX_PENDING_SECS]; /* agent mode: deltas being merged */
    size_t npend;
    int64_t planned;
    int64_t start_ms;      /* uv_now() of the run start */
    int64_t stop_ms;       /* when a stop was requested (0: none) */
    int64_t last_done_ms;
    bool quiet, tty, stopping, finished;
    uv_timer_t progress;
    uv_signal_t sigint, sigterm;
    int sigints;
    /* soak */
    lt_soak_t soak;
    bool soak_on;
    kzc_conn_t *metrics;
    char metrics_path[512];
    uv_timer_t soak_timer;
    int64_t last_progress_ms;
    uint64_t prev[4];      /* progress: ok, errors, msgs sent, received at the last line */
    int64_t prev_ms;
    int unit_failures;
    int remote_procs;      /* worker processes the agents reported */
    uint64_t bad_lines;    /* protocol errors: stats lines rejected */
    int closing;           /* own handles (timers, signals) whose close callback is due */
    void (*on_closed)(coord_t *co); /* agent: called once finished and every handle closed */
    void *owner;
};

static void unit_maybe_done(unit_t *u);
static void coord_check_end(coord_t *co);

static void handle_closed(uv_handle_t *h)
{
    unit_t *u = h->data;
    u->open_handles--;
    if (u->open_handles == 0) {
        u->closed = true;
        coord_check_end(u->co);
    }
}

static void unit_close(unit_t *u)
{
    if (u->kind == U_LOCAL) {
        uv_handle_t *hs[] = {(uv_handle_t *)&u->to, (uv_handle_t *)&u->from, (uv_handle_t *)&u->proc};
        for (int i = 0; i < 3; i++)
            if (hs[i]->data && !uv_is_closing(hs[i])) uv_close(hs[i], handle_closed);
    } else if (u->tcp.data && !uv_is_closing((uv_handle_t *)&u->tcp)) {
        uv_close((uv_handle_t *)&u->tcp, handle_closed);
    }
}

typedef struct {
    uv_write_t req;
    char data[];
} wr_t;

static void on_written(uv_write_t *r, int status)
{
    kz_free(r);
}

/* Queues line + "\n" on a stream (copied). */
static void stream_send(uv_stream_t *s, const char *line)
{
    size_t n = strlen(line);
    wr_t *w = kz_malloc(sizeof *w + n + 1);
    memcpy(w->data, line, n);
    w->data[n] = '\n';
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n + 1);
    if (uv_write(&w->req, s, &b, 1, on_written) != 0) kz_free(w);
}

static uv_stream_t *unit_out(unit_t *u)
{
    return u->kind == U_LOCAL ? (uv_stream_t *)&u->to : (uv_stream_t *)&u->tcp;
}

static void unit_fail(unit_t *u, const char *msg)
{
    if (!u->failed) {
        u->failed = true;
        u->co->unit_failures++;
        fprintf(stderr, "%skizuna-loadtest: %s: %s\n", u->co->tty ? "\n" : "", u->name, msg);
    }
}

/* ------------------------------------------------------------------------ */
/* Deltas: into the run (coordinator) or merged and forwarded (agent)       */

static void forward_pending(coord_t *co, bool all)
{
    size_t live = 0;
    for (size_t i = 0; i < co->nunits; i++)
        if (!co->units[i]->done && !co->units[i]->failed) live++;
    while (co->npend) {
        if (!all && co->pend[0].count < live && co->npend < LT_MAX_PENDING_SECS) break;
        json_t *j = json_pack("{ssso}", "t", "stats", "delta", lt_stats_to_json(co->pend[0].st));
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (s && co->upstream) stream_send(co->upstream, s);
        free(s);
        lt_stats_free(co->pend[0].st);
        memmove(&co->pend[0], &co->pend[1], sizeof co->pend[0] * (co->npend - 1));
        co->npend--;
    }
}

/* A line a unit should not have sent: counted (the report's end shows the
 * count), the first one per unit on stderr, and the unit failed. */
static void bad_line(unit_t *u, const char *msg)
{
    u->co->bad_lines++;
    char what[320];
    snprintf(what, sizeof what, "protocol error: %s", msg);
    unit_fail(u, what);
}

/* The seconds a run's deltas may name: its duration and a minute more (the
 * stop grace and clock skew), so a bad line cannot make the series large. */
static int64_t run_limit(const lt_scenario_t *scn)
{
    int64_t lim = (scn->duration_ms + 999) / 1000 + 60;
    return lim < LT_MAX_SECONDS ? lim : LT_MAX_SECONDS;
}

static void take_delta(coord_t *co, unit_t *u, lt_stats_t *d)
{
    char err[256];
    if (!co->agent_mode) {
        if (lt_run_add(co->run, d, err, sizeof err) != 0) bad_line(u, err);
        lt_stats_free(d);
        return;
    }
    if (d->sec < 0 || d->sec >= co->run->limit) { /* checked here too: the pending list stays small */
        snprintf(err, sizeof err, "stats: second %" PRId64 " is outside the run (0..%" PRId64 ")", d->sec,
                 co->run->limit - 1);
        bad_line(u, err);
        lt_stats_free(d);
        return;
    }
    size_t i = 0;
    while (i < co->npend && co->pend[i].sec < d->sec) i++;
    if (i < co->npend && co->pend[i].sec == d->sec) {
        lt_stats_merge(co->pend[i].st, d);
        co->pend[i].count++;
        lt_stats_free(d);
    } else {
        if (co->npend == LT_MAX_PENDING_SECS) forward_pending(co, true);
        if (i > co->npend) i = co->npend;
        memmove(&co->pend[i + 1], &co->pend[i], sizeof co->pend[0] * (co->npend - i));
        co->pend[i].sec = d->sec;
        co->pend[i].st = d;
        co->pend[i].count = 1;
        co->npend++;
    }
    forward_pending(co, false);
}

static void unit_line(unit_t *u, const char *line, size_t len)
{
    coord_t *co = u->co;
    json_error_t jerr;
    json_t *j = json_loadb(line, len, 0, &jerr);
    const char *t = json_string_value(json_object_get(j, "t"));
    if (!t) {
        bad_line(u, "sent a line that is not a protocol message");
    } else if (strcmp(t, "stats") == 0) {
        char err[256];
        lt_stats_t *d = lt_stats_from_json(json_object_get(j, "delta"), err, sizeof err);
        if (d)
            take_delta(co, u, d);
        else
            bad_line(u, err);
    } else if (strcmp(t, "error") == 0) {
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (co->agent_mode && co->upstream) {
            char *s = json_dumps(j, JSON_COMPACT);
            if (s) stream_send(co->upstream, s);
            free(s);
        }
        unit_fail(u, msg ? msg : "error");
    } else if (strcmp(t, "info") == 0) {
        json_t *p = json_object_get(j, "processes");
        if (json_is_integer(p) && json_integer_value(p) > 0 && json_integer_value(p) <= 1024)
            co->remote_procs += (int)json_integer_value(p);
    } else if (strcmp(t, "done") == 0) {
        u->done = true;
        co->last_done_ms = (int64_t)uv_now(co->loop);
        if (co->agent_mode) forward_pending(co, false);
        unit_maybe_done(u);
    }
    json_decref(j);
}

static void unit_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    unit_t *u = h->data;
    if (u->rcap - u->rlen < 65536) {
        size_t cap = u->rcap ? u->rcap * 2 : 131072;
        if (cap > LT_MAX_LINE + 65536) cap = LT_MAX_LINE + 65536;
        u->rbuf = kz_realloc(u->rbuf, cap);
        u->rcap = cap;
    }
    b->base = u->rbuf + u->rlen;
    b->len = u->rcap - u->rlen;
}

static void unit_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    unit_t *u = s->data;
    if (n < 0) {
        uv_read_stop(s);
        u->eof = true;
        if (!u->done) unit_fail(u, n == UV_EOF ? "ended without finishing" : uv_strerror((int)n));
        unit_maybe_done(u);
        return;
    }
    u->rlen += (size_t)n;
    size_t off = 0;
    char *nl;
    while ((nl = memchr(u->rbuf + off, '\n', u->rlen - off))) {
        size_t len = (size_t)(nl - (u->rbuf + off));
        unit_line(u, u->rbuf + off, len);
        off += len + 1;
    }
    memmove(u->rbuf, u->rbuf + off, u->rlen - off);
    u->rlen -= off;
    if (u->rlen > LT_MAX_LINE) {
        bad_line(u, "line too long");
        u->rlen = 0;
        uv_read_stop(s);
        u->eof = true;
        unit_maybe_done(u);
    }
}

/* A unit is over once it said "done" (or its stream ended) and, for a
 * process, it exited. */
static void unit_maybe_done(unit_t *u)
{
    bool over = u->kind == U_LOCAL ? (u->done || u->eof) && u->exited : u->done || u->eof;
    if (over) unit_close(u);
    coord_check_end(u->co);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    unit_t *u = p->data;
    u->exited = true;
    if (status != 0 || sig != 0) {
        char msg[96];
        if (sig)
            snprintf(msg, sizeof msg, "killed by signal %d", sig);
        else
            snprintf(msg, sizeof msg, "exited with status %" PRId64, status);
        unit_fail(u, msg);
    }
    unit_maybe_done(u);
}

static char self_exe[4096];

/* Spawns a local worker and sends it its start message. */
static int unit_spawn(unit_t *u, const char *start_line)
{
    coord_t *co = u->co;
    uv_pipe_init(co->loop, &u->to, 0);
    uv_pipe_init(co->loop, &u->from, 0);
    u->to.data = u->from.data = u->proc.data = u;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&u->to},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&u->from},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    char *args[] = {self_exe, "worker", NULL};
    uv_process_options_t opt = {
        .exit_cb = on_exit_cb, .file = self_exe, .args = args, .stdio_count = 3, .stdio = stdio};
    int rc = uv_spawn(co->loop, &u->proc, &opt);
    u->open_handles = 3;
    if (rc != 0) { /* the handles still need closing */
        unit_fail(u, uv_strerror(rc));
        u->exited = u->eof = true;
        unit_close(u);
        return -1;
    }
    u->started = true;
    uv_read_start((uv_stream_t *)&u->from, unit_alloc, unit_read);
    stream_send((uv_stream_t *)&u->to, start_line);
    return 0;
}

static void on_agent_connect(uv_connect_t *req, int status)
{
    unit_t *u = req->data;
    if (status < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "connect: %s", uv_strerror(status));
        unit_fail(u, msg);
        u->eof = true;
        unit_maybe_done(u);
        return;
    }
    u->started = true;
    uv_read_start((uv_stream_t *)&u->tcp, unit_alloc, unit_read);
    stream_send((uv_stream_t *)&u->tcp, u->start_line);
}

/* ------------------------------------------------------------------------ */
/* The coordinator                                                          */

static void send_all(coord_t *co, const char *line)
{
    for (size_t i = 0; i < co->nunits; i++) {
        unit_t *u = co->units[i];
        if (u->started && !u->done && !u->eof && !uv_is_closing((uv_handle_t *)unit_out(u)))
            stream_send(unit_out(u), line);
    }
}

static void coord_stop(coord_t *co)
{
    if (co->stopping) return;
    co->stopping = true;
    co->stop_ms = (int64_t)uv_now(co->loop);
    send_all(co, "{\"t\":\"stop\"}");
}

static void on_signal(uv_signal_t *s, int sig)
{
    coord_t *co = s->data;
    if (++co->sigints >= 2) { /* a second interrupt: stop the workers hard */
        for (size_t i = 0; i < co->nunits; i++) {
            unit_t *u = co->units[i];
            if (u->kind == U_LOCAL && u->started && !u->exited) uv_process_kill(&u->proc, SIGTERM);
        }
        return;
    }
    if (!co->quiet) fprintf(stderr, "%skizuna-loadtest: stopping (interrupt again to kill the workers)\n",
                            co->tty ? "\n" : "");
    coord_stop(co);
}

static void progress_line(coord_t *co, bool final)
{
    if (co->quiet || co->agent_mode) return;
    int64_t now = (int64_t)uv_now(co->loop);
    int64_t el = now - co->start_ms;
    if (el < 0) return;
    if (!co->tty && !final && now - co->last_progress_ms < 5000) return;
    co->last_progress_ms = now;
    const lt_stats_t *t = co->run->total;
    uint64_t started = t->counters[LT_C_BOTS_STARTED], fin = t->counters[LT_C_BOTS_FINISHED],
             failed = t->counters[LT_C_BOTS_FAILED];
    /* Rates since the previous line. */
    uint64_t ok = 0, errs = 0;
    for (size_t i = 0; i < t->nops; i++) {
        ok += t->ops[i].ok;
        errs += t->ops[i].errors;
    }
    uint64_t msent = t->counters[LT_C_MSGS_SENT], mrecv = t->counters[LT_C_MSGS_RECV];
    double dt = (double)(now - co->prev_ms) / 1000.0;
    if (dt <= 0) dt = 1;
    uint64_t r_ok = (uint64_t)((double)(ok - co->prev[0]) / dt), r_err = (uint64_t)((double)(errs - co->prev[1]) / dt),
             ms = (uint64_t)((double)(msent - co->prev[2]) / dt), mr = (uint64_t)((double)(mrecv - co->prev[3]) / dt);
    co->prev[0] = ok;
    co->prev[1] = errs;
    co->prev[2] = msent;
    co->prev[3] = mrecv;
    co->prev_ms = now;
    char line[320];
    snprintf(line, sizeof line,
             "[%4" PRId64 "s/%" PRId64 "s] bots %" PRIu64 "/%" PRId64 " started, %" PRIu64 " running, %" PRIu64
             " failed | conns %" PRId64 " | ok/s %" PRIu64 " err/s %" PRIu64 " | msgs/s out %" PRIu64 " in %" PRIu64,
             el / 1000, co->scn->duration_ms / 1000, started, co->planned, started - fin - failed, failed,
             t->conns_open, r_ok, r_err, ms, mr);
    if (co->tty)
        fprintf(stderr, "\r%-150s%s", line, final ? "\n" : "");
    else
        fprintf(stderr, "%s\n", line);
}

static void on_progress(uv_timer_t *t)
{
    progress_line(t->data, false);
}

static void soak_done(kzc_conn_t *c, int status, const char *body, size_t len, const char *err, void *arg)
{
    coord_t *co = arg;
    int64_t t = (int64_t)uv_now(co->loop) - co->start_ms;
    if (t > co->scn->duration_ms) return; /* the load is over: not a sample of the run */
    double rss = -1, conns = -1;
    int bits = status == 200 ? lt_prom_parse(body, len, &rss, &conns) : 0;
    if (!bits) {
        lt_soak_fail(&co->soak);
        return;
    }
    lt_soak_add(&co->soak, t, (bits & LT_PROM_RSS) ? rss : -1, (bits & LT_PROM_CONNS) ? conns : -1);
}

static void on_soak(uv_timer_t *t)
{
    coord_t *co = t->data;
    if (co->stopping || co->finished || !co->metrics) return;
    if ((int64_t)uv_now(co->loop) - co->start_ms > co->scn->duration_ms) { /* past the run: no more samples */
        uv_timer_stop(&co->soak_timer);
        return;
    }
    if (kzc_http_busy(co->metrics)) {
        lt_soak_fail(&co->soak); /* the previous fetch is still out: count a miss */
        return;
    }
    kzc_http_request(co->metrics, "GET", co->metrics_path, NULL, NULL, 0, soak_done, co);
}

/* Parses http://host[:port]/path (an IPv6 literal in brackets:
 * http://[::1]:9100/metrics) into a target (host without brackets) and path. */
static int parse_url(const char *url, char *host, size_t hcap, int *port, char *path, size_t pcap)
{
    if (strncmp(url, "http://", 7) != 0) return -1;
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *name = h, *colon;
    size_t nl;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', hl);
        if (!close) return -1;
        name = h + 1;
        nl = (size_t)(close - name);
        colon = close + 1 < h + hl ? close + 1 : NULL;
        if (colon && *colon != ':') return -1;
    } else {
        colon = memchr(h, ':', hl);
        nl = colon ? (size_t)(colon - h) : hl;
    }
    if (nl == 0 || nl >= hcap) return -1;
    memcpy(host, name, nl);
    host[nl] = '\0';
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : 80;
    if (colon && end != (slash ? slash : h + hl)) return -1;
    *port = (int)p;
    if (p < 1 || p > 65535) return -1;
    snprintf(path, pcap, "%s", slash ? slash : "/");
    return 0;
}

/* The coordinator's own handles: once the last one's close callback ran,
 * nothing of the loop refers to co any more (an agent frees it then). */
static void coord_handle_closed(uv_handle_t *h)
{
    coord_t *co = h->data;
    if (--co->closing == 0 && co->on_closed) co->on_closed(co);
}

static void coord_close(coord_t *co, uv_handle_t *h)
{
    if (!h->data || uv_is_closing(h)) return;
    co->closing++;
    uv_close(h, coord_handle_closed);
}

static void coord_check_end(coord_t *co)
{
    if (co->finished) return;
    for (size_t i = 0; i < co->nunits; i++)
        if (!co->units[i]->closed) return;
    co->finished = true;
    uv_timer_stop(&co->progress);
    uv_timer_stop(&co->soak_timer);
    co->closing++; /* held while closing, so a callback cannot see 0 early */
    coord_close(co, (uv_handle_t *)&co->progress);
    coord_close(co, (uv_handle_t *)&co->soak_timer);
    coord_close(co, (uv_handle_t *)&co->sigint);
    coord_close(co, (uv_handle_t *)&co->sigterm);
    kzc_free(co->metrics);
    co->metrics = NULL;
    if (--co->closing == 0 && co->on_closed) co->on_closed(co);
}

/* Splits [lo, hi) into n near-equal parts; part i is [*a, *b). */
static void split(int64_t lo, int64_t hi, size_t n, size_t i, int64_t *a, int64_t *b)
{
    int64_t total = hi - lo;
    *a = lo + total * (int64_t)i / (int64_t)n;
    *b = lo + total * (int64_t)(i + 1) / (int64_t)n;
}

static bool is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcasecmp(host, "localhost") == 0;
}

/* The source addresses for a share of `bots` bots on this machine. */
static void make_sources(const lt_scenario_t *scn, int64_t bots, lt_start_t *st)
{
    lt_scenario_t share = *scn; /* the auto count follows this machine's share of the bots */
    share.bots = bots;
    int k = lt_scenario_source_addresses(&share); /* 1..254: 127.0.0.1..127.0.0.254 */
    if (k > LT_MAX_SOURCES) k = LT_MAX_SOURCES;
    st->nsources = 0;
    st->sources = kz_calloc((size_t)(k > 0 ? k : 1), sizeof *st->sources);
    if (k <= 1 || !is_loopback(scn->host)) return; /* one address: the OS picks it */
    for (int i = 0; i < k; i++) {
        char a[32];
        snprintf(a, sizeof a, "127.0.0.%d", i + 1);
        st->sources[st->nsources++] = kz_strdup(a);
    }
}

static unit_t *unit_new(coord_t *co, int kind, const char *name)
{
    unit_t *u = kz_calloc(1, sizeof *u);
    u->co = co;
    u->kind = kind;
    snprintf(u->name, sizeof u->name, "%s", name);
    co->units = kz_realloc(co->units, sizeof *co->units * (co->nunits + 1));
    co->units[co->nunits++] = u;
    return u;
}

static char *start_line_for(const lt_start_t *tpl, int64_t lo, int64_t hi, const lt_start_t *src, int64_t start_in,
                            int processes)
{
    lt_start_t st = *tpl;
    st.lo = lo;
    st.hi = hi;
    st.sources = src->sources;
    st.nsources = src->nsources;
    st.start_in_ms = start_in;
    st.processes = processes;
    json_t *j = lt_start_to_json(&st);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* Spawns `k` local workers for bots [lo, hi). */
static void spawn_local(coord_t *co, int64_t lo, int64_t hi, int k, int64_t start_in)
{
    lt_start_t src = {0};
    make_sources(co->scn, hi - lo, &src);
    for (int i = 0; i < k; i++) {
        int64_t a, b;
        split(lo, hi, (size_t)k, (size_t)i, &a, &b);
        char name[64];
        snprintf(name, sizeof name, "worker %d (bots %" PRId64 "..%" PRId64 ")", i, a, b);
        unit_t *u = unit_new(co, U_LOCAL, name);
        u->lo = a;
        u->hi = b;
        char *line = start_line_for(&co->tpl, a, b, &src, start_in, 0);
        unit_spawn(u, line);
        free(line);
    }
    for (size_t i = 0; i < src.nsources; i++) kz_free(src.sources[i]);
    kz_free(src.sources);
}

static void coord_free(coord_t *co)
{
    for (size_t i = 0; i < co->nunits; i++) {
        kz_free(co->units[i]->rbuf);
        free(co->units[i]->start_line);
        kz_free(co->units[i]);
    }
    kz_free(co->units);
    for (size_t i = 0; i < co->npend; i++) lt_stats_free(co->pend[i].st);
    lt_run_free(co->run);
    lt_soak_free(&co->soak);
    lt_scenario_free(co->scn);
    lt_start_clear(&co->tpl);
}

/* Reads a whole file (owned, NUL-terminated). */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    char *buf = kz_malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            if (cap >= (16u << 20)) break;
            cap *= 2;
            buf = kz_realloc(buf, cap);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int parse_hostport(const char *s, struct sockaddr_storage *out)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host || colon == s) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) return -1;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0) return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0) return 0;
    return -1;
}

static void utc_now(char *out, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static int cmd_run(int argc, char **argv)
{
    const char *file = NULL, *report_json = NULL, *report_html = NULL, *agents = NULL;
    bool quiet = false, local = false;
    lt_overrides_t ov = lt_overrides_none();
    char err[512];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                                             \
    do {                                                                                                   \
        if (!v) {                                                                                          \
            snprintf(err, sizeof err, "%s needs a value", a);                                              \
            return usage(err);                                                                             \
        }                                                                                                  \
        i++;                                                                                               \
    } while (0)
        char *end = NULL;
        if (strcmp(a, "--bots") == 0) {
            NEED();
            ov.bots = strtoll(v, &end, 10);
            if (*end || ov.bots < 1) return usage("--bots: must be an integer >= 1");
        } else if (strcmp(a, "--duration") == 0) {
            NEED();
            if (lt_parse_duration(v, false, &ov.duration_ms) != 0 || ov.duration_ms <= 0)
                return usage("--duration: must be a duration such as 30s, 5m, 2h");
        } else if (strcmp(a, "--rate") == 0) {
            NEED();
            ov.rate = strtod(v, &end);
            if (*end || !(ov.rate > 0)) return usage("--rate: must be a number > 0");
        } else if (strcmp(a, "--host") == 0) {
            NEED();
            ov.host = v;
        } else if (strcmp(a, "--port") == 0) {
            NEED();
            ov.port = (int)strtol(v, &end, 10);
            if (*end || ov.port < 1 || ov.port > 65535) return usage("--port: must be an integer in 1..65535");
        } else if (strcmp(a, "--server-key") == 0) {
            NEED();
            ov.server_key = v;
        } else if (strcmp(a, "--processes") == 0) {
            NEED();
            ov.processes = (int)strtol(v, &end, 10);
            if (*end || ov.processes < 0) return usage("--processes: must be an integer >= 0 (0 = auto)");
        } else if (strcmp(a, "--format") == 0) {
            NEED();
            if (strcmp(v, "json") == 0)
                ov.format = LT_FORMAT_JSON;
            else if (strcmp(v, "protobuf") == 0)
                ov.format = LT_FORMAT_PROTOBUF;
            else
                return usage("--format: must be json or protobuf");
        } else if (strcmp(a, "--report-json") == 0) {
            NEED();
            report_json = v;
        } else if (strcmp(a, "--report-html") == 0) {
            NEED();
            report_html = v;
        } else if (strcmp(a, "--soak") == 0) {
            ov.soak = true;
        } else if (strcmp(a, "--metrics-url") == 0) {
            NEED();
            ov.soak_url = v;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--agents") == 0) {
            NEED();
            agents = v;
        } else if (strcmp(a, "--local") == 0) {
            local = true;
        } else if (a[0] == '-') {
            snprintf(err, sizeof err, "unknown flag %s", a);
            return usage(err);
        } else if (!file) {
            file = a;
        } else {
            return usage("only one scenario file");
        }
#undef NEED
    }
    if (!file) return usage("run needs a scenario file");
    if (local && !agents) return usage("--local only goes with --agents");

    coord_t co = {0};
    co.tpl.ov = lt_overrides_none();
    size_t len;
    char *text = read_file(file, &len);
    if (!text) {
        fprintf(stderr, "kizuna-loadtest: %s: %s\n", file, strerror(errno));
        return 2;
    }
    co.scn = lt_scenario_parse(text, len, file, err, sizeof err);
    if (!co.scn || lt_scenario_override(co.scn, &ov, err, sizeof err) != 0) {
        fprintf(stderr, "kizuna-loadtest: %s\n", err);
        kz_free(text);
        lt_scenario_free(co.scn);
        return 2;
    }
    /* An IPv4 source address cannot reach ::1: name loopback by address. */
    if (strcasecmp(co.scn->host, "localhost") == 0 && !ov.host) ov.host = "127.0.0.1";
    lt_scenario_override(co.scn, &ov, err, sizeof err);

    /* The template of every start message: text, overrides, run id. */
    co.tpl.scenario = text;
    co.tpl.scenario_len = len;
    co.tpl.file = kz_strdup(file);
    co.tpl.ov = ov;
    co.tpl.ov.host = ov.host ? kz_strdup(ov.host) : NULL;
    co.tpl.ov.server_key = ov.server_key ? kz_strdup(ov.server_key) : NULL;
    co.tpl.ov.soak_url = ov.soak_url ? kz_strdup(ov.soak_url) : NULL;
    unsigned char rnd[4];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(co.tpl.run_id, sizeof co.tpl.run_id, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);

    signal(SIGPIPE, SIG_IGN);
    lt_raise_nofile();
    co.loop = uv_default_loop();
    co.quiet = quiet;
    co.tty = isatty(2);
    co.run = lt_run_new();
    co.run->limit = run_limit(co.scn);
    co.planned = co.scn->bots;
    lt_soak_init(&co.soak);
    if (uv_exepath(self_exe, &(size_t){sizeof self_exe}) != 0) {
        fprintf(stderr, "kizuna-loadtest: cannot find its own executable\n");
        coord_free(&co);
        return 2;
    }

    /* Units: agents (each a share) and/or local workers. */
    int64_t start_in = agents ? LT_AGENT_START_MS : LT_LOCAL_START_MS;
    size_t nagents = 0;
    char *agent_list = agents ? kz_strdup(agents) : NULL;
    if (agent_list) {
        for (char *p = agent_list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) nagents++;
    }
    size_t shares = nagents + (agents ? (local ? 1 : 0) : 1);
    int total_procs = co.scn->processes; /* 0 = auto per share */
    size_t share = 0;
    if (agent_list) {
        char *save = NULL;
        for (char *tok = strtok_r(agent_list, ",", &save); tok; tok = strtok_r(NULL, ",", &save), share++) {
            char name[96];
            snprintf(name, sizeof name, "agent %s", tok);
            unit_t *u = unit_new(&co, U_AGENT, name);
            if (parse_hostport(tok, &u->addr) != 0) {
                fprintf(stderr, "kizuna-loadtest: --agents: bad address %s (want IP:PORT)\n", tok);
                kz_free(agent_list);
                coord_free(&co);
                return 2;
            }
            split(0, co.scn->bots, shares, share, &u->lo, &u->hi);
            lt_start_t none = {0};
            int procs = total_procs > 0 ? (int)((total_procs + (int)shares - 1) / (int)shares) : 0;
            u->start_line = start_line_for(&co.tpl, u->lo, u->hi, &none, start_in, procs);
        }
        kz_free(agent_list);
    }
    uv_update_time(co.loop);
    co.start_ms = (int64_t)uv_now(co.loop) + start_in;
    co.prev_ms = co.start_ms;
    for (size_t i = 0; i < co.nunits; i++) {
        unit_t *u = co.units[i];
        uv_tcp_init(co.loop, &u->tcp);
        u->tcp.data = u;
        u->creq.data = u;
        u->open_handles = 1;
        int rc = uv_tcp_connect(&u->creq, &u->tcp, (struct sockaddr *)&u->addr, on_agent_connect);
        if (rc != 0) {
            unit_fail(u, uv_strerror(rc));
            u->eof = true;
            unit_maybe_done(u);
        }
    }
    if (!agents || local) {
        int64_t lo, hi;
        split(0, co.scn->bots, shares, shares - 1, &lo, &hi);
        int k = total_procs > 0 ? (agents ? (total_procs + (int)shares - 1) / (int)shares : total_procs)
                                : (int)((hi - lo + LT_BOTS_PER_PROCESS - 1) / LT_BOTS_PER_PROCESS);
        if (k < 1) k = 1;
        if (k > hi - lo && hi > lo) k = (int)(hi - lo);
        spawn_local(&co, lo, hi, k, start_in);
    }
    int nprocs = 0;
    for (size_t i = 0; i < co.nunits; i++) nprocs += co.units[i]->kind == U_LOCAL;

    if (!quiet)
        fprintf(stderr, "kizuna-loadtest: %s: %" PRId64 " bots, %.1f/s, %" PRId64 " s against %s:%d, run %s, %d local worker%s%s%zu agent%s\n",
                co.scn->name, co.scn->bots, co.scn->arrival_rate, co.scn->duration_ms / 1000, co.scn->host,
                co.scn->port, co.tpl.run_id, nprocs, nprocs == 1 ? "" : "s", ", ", nagents, nagents == 1 ? "" : "s");

    uv_timer_init(co.loop, &co.progress);
    co.progress.data = &co;
    uv_timer_start(&co.progress, on_progress, (uint64_t)start_in + 1000, 1000);
    uv_timer_init(co.loop, &co.soak_timer);
    co.soak_timer.data = &co;
    if (co.scn->soak) {
        char host[256];
        int port;
        if (parse_url(co.scn->soak_url, host, sizeof host, &port, co.metrics_path, sizeof co.metrics_path) != 0) {
            fprintf(stderr, "kizuna-loadtest: soak: bad metrics URL %s (want http://host:port/path)\n",
                    co.scn->soak_url);
        } else {
            kzc_target_t t = {.host = host, .port = port, .timeout_ms = 5000};
            co.metrics = kzc_http_new(co.loop, &t);
            co.soak_on = true;
            uv_timer_start(&co.soak_timer, on_soak, (uint64_t)start_in, (uint64_t)co.scn->soak_every_ms);
        }
    }
    uv_signal_init(co.loop, &co.sigint);
    uv_signal_init(co.loop, &co.sigterm);
    co.sigint.data = co.sigterm.data = &co;
    uv_signal_start(&co.sigint, on_signal, SIGINT);
    uv_signal_start(&co.sigterm, on_signal, SIGTERM);
    char started[64];
    utc_now(started, sizeof started);
    coord_check_end(&co);
    uv_run(co.loop, UV_RUN_DEFAULT);
    progress_line(&co, true);

    /* Reports. */
    lt_run_finish(co.run);
    /* The run ends at its duration, when stopped, or when every bot is done
     * before that (the workers then finish early). */
    int64_t end_ms = co.start_ms + co.scn->duration_ms;
    if (co.stop_ms && co.stop_ms < end_ms) end_ms = co.stop_ms;
    if (co.last_done_ms && co.last_done_ms < end_ms) end_ms = co.last_done_ms;
    double elapsed = (double)(end_ms - co.start_ms) / 1000.0;
    if (elapsed <= 0 || elapsed > (double)co.scn->duration_ms / 1000.0) elapsed = (double)co.scn->duration_ms / 1000.0;
    char target[300];
    snprintf(target, sizeof target, "%s:%d", co.scn->host, co.scn->port);
    lt_report_info_t info = {
        .scenario = co.scn->name,
        .file = file,
        .run_id = co.tpl.run_id,
        .target = target,
        .started = started,
        .bots = co.scn->bots,
        .duration_ms = co.scn->duration_ms,
        .elapsed_s = elapsed,
        .processes = nprocs + co.remote_procs,
        .agents = (int)nagents,
    };
    const lt_soak_t *soak = co.soak_on ? &co.soak : NULL;
    char *txt = lt_report_text(co.run, soak, &info);
    fputs(txt, stdout);
    free(txt);
    int status = 0;
    if (report_json && lt_report_write_json(report_json, co.run, soak, &info, err, sizeof err) != 0) {
        fprintf(stderr, "kizuna-loadtest: %s\n", err);
        status = 1;
    }
    if (report_html && lt_report_write_html(report_html, co.run, soak, &info, err, sizeof err) != 0) {
        fprintf(stderr, "kizuna-loadtest: %s\n", err);
        status = 1;
    }
    const lt_stats_t *t = co.run->total;
    uint64_t st = t->counters[LT_C_BOTS_STARTED], fin = t->counters[LT_C_BOTS_FINISHED],
             failed = t->counters[LT_C_BOTS_FAILED];
    if ((int64_t)st < co.planned)
        fprintf(stderr, "kizuna-loadtest: %" PRId64 " of %" PRId64 " bots never started (%s)\n", co.planned - (int64_t)st,
                co.planned, co.stopping ? "the run was stopped" : "the arrival schedule did not fit in the duration");
    if (co.bad_lines)
        fprintf(stderr, "kizuna-loadtest: %" PRIu64 " protocol error%s: lines from workers/agents rejected (see above)\n",
                co.bad_lines, co.bad_lines == 1 ? "" : "s");
    if (co.unit_failures || failed || fin != (uint64_t)co.planned) status = 1;
    uv_loop_close(co.loop);
    coord_free(&co);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Agent                                                                    */

typedef struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t *conn;    /* the coordinator being served, or NULL */
    char *rbuf;
    size_t rlen, rcap;
    coord_t *co;       /* the run in progress */
    bool got_start;
} agent_t;

static void agent_run_closed(coord_t *co);

static void agent_conn_closed(uv_handle_t *h)
{
    kz_free(h);
}

static void agent_reset(agent_t *ag)
{
    if (ag->conn && !uv_is_closing((uv_handle_t *)ag->conn))
        uv_close((uv_handle_t *)ag->conn, agent_conn_closed);
    ag->conn = NULL;
    kz_free(ag->rbuf);
    ag->rbuf = NULL;
    ag->rlen = ag->rcap = 0;
    ag->got_start = false;
}

static void agent_start_run(agent_t *ag, const char *line, size_t len)
{
    char err[512];
    json_t *j = json_loadb(line, len, 0, NULL);
    lt_start_t st = {0};
    coord_t *co = kz_calloc(1, sizeof *co);
    co->tpl.ov = lt_overrides_none();
    if (!j || lt_start_from_json(j, &st, err, sizeof err) != 0) {
        if (!j) snprintf(err, sizeof err, "bad start message (not JSON)");
        json_decref(j);
        char *msg = NULL;
        json_t *e = json_pack("{ssss}", "t", "error", "msg", err);
        msg = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        stream_send((uv_stream_t *)ag->conn, msg);
        stream_send((uv_stream_t *)ag->conn, "{\"t\":\"done\"}");
        free(msg);
        lt_start_clear(&st);
        kz_free(co);
        return;
    }
    json_decref(j);
    co->scn = lt_scenario_parse(st.scenario, st.scenario_len, st.file ? st.file : "scenario", err, sizeof err);
    if (!co->scn || lt_scenario_override(co->scn, &st.ov, err, sizeof err) != 0) {
        json_t *e = json_pack("{ssss}", "t", "error", "msg", err);
        char *msg = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        stream_send((uv_stream_t *)ag->conn, msg);
        stream_send((uv_stream_t *)ag->conn, "{\"t\":\"done\"}");
        free(msg);
        lt_scenario_free(co->scn);
        lt_start_clear(&st);
        kz_free(co);
        return;
    }
    co->tpl = st;
    co->loop = ag->loop;
    co->agent_mode = true;
    co->quiet = true;
    co->upstream = (uv_stream_t *)ag->conn;
    co->run = lt_run_new();
    co->run->limit = run_limit(co->scn);
    co->owner = ag;
    co->on_closed = agent_run_closed;
    lt_soak_init(&co->soak);
    uv_timer_init(co->loop, &co->progress);
    uv_timer_init(co->loop, &co->soak_timer);
    co->progress.data = co->soak_timer.data = co;
    int64_t n = st.hi - st.lo;
    int k = st.processes > 0 ? st.processes : (int)((n + LT_BOTS_PER_PROCESS - 1) / LT_BOTS_PER_PROCESS);
    if (k < 1) k = 1;
    if (n > 0 && k > n) k = (int)n;
    int64_t start_in = st.start_in_ms > 200 ? st.start_in_ms - 100 : st.start_in_ms;
    fprintf(stderr, "kizuna-loadtest agent: run %s, bots %" PRId64 "..%" PRId64 ", %d worker%s\n", st.run_id, st.lo,
            st.hi, k, k == 1 ? "" : "s");
    spawn_local(co, st.lo, st.hi, k, start_in);
    char info[64];
    snprintf(info, sizeof info, "{\"t\":\"info\",\"processes\":%d}", k);
    stream_send((uv_stream_t *)ag->conn, info);
    ag->co = co;
}

static void agent_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    agent_t *ag = s->data;
    if (n < 0) {
        /* The coordinator went away: stop the run (if any). */
        if (ag->co) coord_stop(ag->co);
        if (ag->co) ag->co->upstream = NULL;
        agent_reset(ag);
        return;
    }
    if (!ag->conn) return; /* reset earlier in this turn */
    ag->rlen += (size_t)n;
    char *nl;
    while ((nl = memchr(ag->rbuf, '\n', ag->rlen))) {
        size_t len = (size_t)(nl - ag->rbuf);
        if (!ag->got_start) {
            ag->got_start = true;
            agent_start_run(ag, ag->rbuf, len);
        } else if (ag->co && memmem(ag->rbuf, len, "\"stop\"", 6)) {
            coord_stop(ag->co);
        }
        memmove(ag->rbuf, nl + 1, ag->rlen - len - 1);
        ag->rlen -= len + 1;
    }
    if (ag->rlen > LT_MAX_LINE) { /* as when the connection fails: stop the run, forget upstream */
        fprintf(stderr, "kizuna-loadtest agent: line from the coordinator too long: dropping it\n");
        if (ag->co) coord_stop(ag->co);
        if (ag->co) ag->co->upstream = NULL;
        agent_reset(ag);
    }
}

static void agent_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    agent_t *ag = h->data;
    if (ag->rcap - ag->rlen < 65536) {
        ag->rcap = ag->rcap ? ag->rcap * 2 : 131072;
        ag->rbuf = kz_realloc(ag->rbuf, ag->rcap);
    }
    b->base = ag->rbuf + ag->rlen;
    b->len = ag->rcap - ag->rlen;
}

static void agent_accept(uv_stream_t *l, int status)
{
    agent_t *ag = l->data;
    if (status < 0) return;
    uv_tcp_t *c = kz_malloc(sizeof *c);
    uv_tcp_init(ag->loop, c);
    if (uv_accept(l, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, agent_conn_closed);
        return;
    }
    if (ag->conn || ag->co) { /* busy with a run: one coordinator at a time */
        c->data = ag;
        stream_send((uv_stream_t *)c, "{\"t\":\"error\",\"msg\":\"agent busy with another run\"}");
        stream_send((uv_stream_t *)c, "{\"t\":\"done\"}");
        uv_close((uv_handle_t *)c, agent_conn_closed);
        return;
    }
    c->data = ag;
    ag->conn = c;
    uv_read_start((uv_stream_t *)c, agent_alloc, agent_read);
}

/* A finished run, once every handle of it is closed: closed off with
 * "done" (the coordinator then closes the connection) and freed. */
static void agent_run_closed(coord_t *co)
{
    agent_t *ag = co->owner;
    forward_pending(co, true);
    if (co->upstream) stream_send(co->upstream, "{\"t\":\"done\"}");
    fprintf(stderr, "kizuna-loadtest agent: run %s done\n", co->tpl.run_id);
    ag->co = NULL;
    coord_free(co);
    kz_free(co);
}

static int cmd_agent(int argc, char **argv)
{
    const char *listen_on = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_on = argv[++i];
        else
            return usage("agent takes --listen ADDR:PORT");
    }
    if (!listen_on) return usage("agent needs --listen ADDR:PORT");
    struct sockaddr_storage addr;
    if (parse_hostport(listen_on, &addr) != 0) return usage("--listen: want IP:PORT");
    if (uv_exepath(self_exe, &(size_t){sizeof self_exe}) != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    lt_raise_nofile();
    agent_t ag = {.loop = uv_default_loop()};
    uv_tcp_init(ag.loop, &ag.listener);
    ag.listener.data = &ag;
    int rc = uv_tcp_bind(&ag.listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ag.listener, 16, agent_accept);
    if (rc != 0) {
        fprintf(stderr, "kizuna-loadtest agent: listen on %s: %s\n", listen_on, uv_strerror(rc));
        return 1;
    }
    fprintf(stderr, "kizuna-loadtest agent: listening on %s\n", listen_on);
    uv_run(ag.loop, UV_RUN_DEFAULT);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) return 1;
    if (argc < 2) return usage(NULL);
    if (strcmp(argv[1], "worker") == 0) return lt_worker_main(0, 1);
    if (strcmp(argv[1], "run") == 0) return cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "agent") == 0) return cmd_agent(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    return usage("unknown command");
}
