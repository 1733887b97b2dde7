/* kizuna-loadtest worker process: see runner.h. */
#include "loadtest/runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "client/client.h"
#include "core/alloc.h"
#include "loadtest/bot.h"
#include "loadtest/stats.h"

#define LT_START_BATCH 2000 /* bots started per loop turn at most (the rest: next turn) */
#define LT_OUT_MAX_QUEUE (64u << 20) /* stdout bytes queued for a slow reader at most */

/* ------------------------------------------------------------------------ */
/* Start messages                                                           */

static json_t *overrides_to_json(const lt_overrides_t *o)
{
    json_t *j = json_object();
    if (o->bots) json_object_set_new(j, "bots", json_integer(o->bots));
    if (o->duration_ms) json_object_set_new(j, "duration_ms", json_integer(o->duration_ms));
    if (o->rate) json_object_set_new(j, "rate", json_real(o->rate));
    if (o->host) json_object_set_new(j, "host", json_string(o->host));
    if (o->port) json_object_set_new(j, "port", json_integer(o->port));
    if (o->server_key) json_object_set_new(j, "server_key", json_string(o->server_key));
    if (o->processes != -1) json_object_set_new(j, "processes", json_integer(o->processes));
    if (o->format != -1) json_object_set_new(j, "format", json_integer(o->format));
    if (o->soak) json_object_set_new(j, "soak", json_true());
    if (o->soak_url) json_object_set_new(j, "soak_url", json_string(o->soak_url));
    return j;
}

json_t *lt_start_to_json(const lt_start_t *st)
{
    json_t *src = json_array();
    for (size_t i = 0; i < st->nsources; i++) json_array_append_new(src, json_string(st->sources[i]));
    return json_pack("{ssss#sssosssIsIsIsosi}", "t", "start", "scenario", st->scenario, (int)st->scenario_len,
                     "file", st->file ? st->file : "scenario", "overrides", overrides_to_json(&st->ov), "run",
                     st->run_id, "start_in_ms", (json_int_t)st->start_in_ms, "lo", (json_int_t)st->lo, "hi",
                     (json_int_t)st->hi, "sources", src, "processes", st->processes);
}

static char *dup_opt(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? kz_strdup(s) : NULL;
}

int lt_start_from_json(const json_t *j, lt_start_t *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    st->ov = lt_overrides_none();
    json_t *scn = json_object_get(j, "scenario"), *ov = json_object_get(j, "overrides"),
           *src = json_object_get(j, "sources");
    const char *run = json_string_value(json_object_get(j, "run"));
    json_t *lo = json_object_get(j, "lo"), *hi = json_object_get(j, "hi"), *in = json_object_get(j, "start_in_ms");
    if (!json_is_object(j) || strcmp(json_string_value(json_object_get(j, "t")) ?: "", "start") != 0 ||
        !json_is_string(scn) || !json_is_object(ov) || !json_is_array(src) || !run ||
        strlen(run) != LT_RUN_ID_LEN || !json_is_integer(lo) || !json_is_integer(hi) || !json_is_integer(in)) {
        snprintf(err, errlen, "bad start message: expected t, scenario, overrides, run, lo, hi, start_in_ms, sources");
        return -1;
    }
    st->lo = json_integer_value(lo);
    st->hi = json_integer_value(hi);
    st->start_in_ms = json_integer_value(in);
    if (st->lo < 0 || st->hi < st->lo || st->hi > LT_MAX_BOTS || st->start_in_ms < 0 ||
        st->start_in_ms > 60000 || json_array_size(src) > LT_MAX_SOURCES) {
        snprintf(err, errlen, "bad start message: lo/hi/start_in_ms/sources out of range");
        return -1;
    }
    st->scenario_len = json_string_length(scn);
    st->scenario = kz_strndup(json_string_value(scn), st->scenario_len);
    st->file = dup_opt((json_t *)j, "file");
    snprintf(st->run_id, sizeof st->run_id, "%s", run);
    st->processes = (int)json_integer_value(json_object_get(j, "processes"));
    if (st->processes < 0 || st->processes > 1024) st->processes = 0;
    st->nsources = json_array_size(src);
    st->sources = kz_calloc(st->nsources ? st->nsources : 1, sizeof *st->sources);
    for (size_t i = 0; i < st->nsources; i++) {
        const char *s = json_string_value(json_array_get(src, i));
        if (!s) {
            st->nsources = i;
            lt_start_clear(st); /* nothing half-read is left to free */
            snprintf(err, errlen, "bad start message: sources must be strings");
            return -1;
        }
        st->sources[i] = kz_strdup(s);
    }
    json_t *v;
    if ((v = json_object_get(ov, "bots"))) st->ov.bots = json_integer_value(v);
    if ((v = json_object_get(ov, "duration_ms"))) st->ov.duration_ms = json_integer_value(v);
    if ((v = json_object_get(ov, "rate"))) st->ov.rate = json_number_value(v);
    st->ov.host = dup_opt(ov, "host");
    if ((v = json_object_get(ov, "port"))) st->ov.port = (int)json_integer_value(v);
    st->ov.server_key = dup_opt(ov, "server_key");
    if ((v = json_object_get(ov, "processes"))) st->ov.processes = (int)json_integer_value(v);
    if ((v = json_object_get(ov, "format"))) st->ov.format = (int)json_integer_value(v);
    st->ov.soak = json_is_true(json_object_get(ov, "soak"));
    st->ov.soak_url = dup_opt(ov, "soak_url");
    return 0;
}

void lt_start_clear(lt_start_t *st)
{
    kz_free(st->scenario);
    kz_free(st->file);
    kz_free((char *)st->ov.host);
    kz_free((char *)st->ov.server_key);
    kz_free((char *)st->ov.soak_url);
    for (size_t i = 0; i < st->nsources; i++) kz_free(st->sources[i]);
    kz_free(st->sources);
    memset(st, 0, sizeof *st);
}

long lt_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    }
    return (long)rl.rlim_cur;
}

int lt_write_line(int fd, const char *line, size_t len)
{
    struct part {
        const char *p;
        size_t n;
    } parts[2] = {{line, len}, {"\n", 1}};
    for (int i = 0; i < 2; i++) {
        const char *p = parts[i].p;
        size_t n = parts[i].n;
        while (n) {
            ssize_t w = write(fd, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == EAGAIN) {
                usleep(1000);
                continue;
            }
            if (w <= 0) return -1;
            p += w;
            n -= (size_t)w;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The worker                                                               */

typedef struct {
    uv_loop_t *loop;
    lt_start_t start;
    lt_scenario_t *scn;
    lt_ctx_t ctx;
    lt_stats_t *stats;
    int out_fd;
    uv_timer_t arrivals;   /* starts the bots that are due */
    uv_timer_t tick;       /* once a second: stats delta */
    uv_timer_t end;        /* the run's end, then the stop grace */
    uv_pipe_t in;          /* stdin: "stop" lines, EOF */
    uv_pipe_t out;         /* stdout through the loop (when out_uv) */
    bool out_uv;           /* out is open: lines go out with uv_write */
    bool out_full;         /* the coordinator stopped reading: the run was ended */
    char inbuf[4096];
    size_t inlen;
    int64_t next_bot;      /* next bot index to start */
    int64_t next_sec;      /* the run second being accumulated */
    int64_t last_sec;      /* the run's last second (duration rounded up, minus 1) */
    int64_t stop_at;       /* uv_now() when the bots were told to stop */
    bool stopping, finished;
} worker_t;

typedef struct {
    uv_write_t req;
    char data[];
} out_req_t;

static void on_out_written(uv_write_t *r, int status)
{
    kz_free(r);
}

static void stop_all(worker_t *w);

/* Queues line + "\n" on stdout without blocking the loop: a coordinator
 * that reads slowly never stalls the bots. Past LT_OUT_MAX_QUEUE queued
 * bytes the coordinator is not reading at all: an error goes out and the run
 * ends. Before the loop (or when stdout is not a pipe) the write blocks. */
static void out_line(worker_t *w, const char *line, size_t len)
{
    if (w->out_fd < 0) return;
    if (!w->out_uv) {
        if (lt_write_line(w->out_fd, line, len) != 0) w->out_fd = -1;
        return;
    }
    if (uv_is_closing((uv_handle_t *)&w->out)) return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&w->out) > LT_OUT_MAX_QUEUE && !w->out_full) {
        w->out_full = true;
        static const char msg[] = "{\"t\":\"error\",\"msg\":\"worker: the coordinator is not reading "
                                  "(output backlog over 64 MiB): run ended\"}";
        out_line(w, msg, sizeof msg - 1);
        stop_all(w);
        return;
    }
    out_req_t *r = kz_malloc(sizeof *r + len + 1);
    memcpy(r->data, line, len);
    r->data[len] = '\n';
    uv_buf_t b = uv_buf_init(r->data, (unsigned)len + 1);
    if (uv_write(&r->req, (uv_stream_t *)&w->out, &b, 1, on_out_written) != 0) {
        kz_free(r);
        w->out_fd = -1;
    }
}

static void send_json(worker_t *w, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        out_line(w, s, strlen(s));
        free(s);
    }
}

static void send_error(int fd, const char *msg)
{
    json_t *j = json_pack("{ssss}", "t", "error", "msg", msg);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) lt_write_line(fd, s, strlen(s));
    free(s);
    lt_write_line(fd, "{\"t\":\"done\"}", 12);
}

/* The open-connections gauge follows the client's sockets exactly. */
static void on_tcp_change(int change, void *arg)
{
    worker_t *w = arg;
    lt_stats_conn(w->stats, change);
}

static void send_delta(worker_t *w, int64_t sec)
{
    lt_stats_t *d = lt_stats_take_delta(w->stats, sec);
    send_json(w, json_pack("{ssso}", "t", "stats", "delta", lt_stats_to_json(d)));
    lt_stats_free(d);
}

static int64_t run_ms(worker_t *w)
{
    return (int64_t)uv_now(w->loop) - w->ctx.start_ms;
}

int64_t lt_tick_second(int64_t now_ms, int64_t last)
{
    int64_t ended = now_ms >= 0 ? now_ms / 1000 - 1 : -1;
    return ended < last ? ended : last;
}

/* What was recorded since the previous delta goes out labelled `sec` (the
 * second that just ended); seconds before it that got no delta (the loop
 * stalled past their end) go out empty first. Nothing when sec was sent. */
static void send_through(worker_t *w, int64_t sec)
{
    if (sec < w->next_sec) return;
    while (w->next_sec < sec) {
        lt_stats_t *d = lt_stats_empty_delta(w->stats, w->next_sec++);
        send_json(w, json_pack("{ssso}", "t", "stats", "delta", lt_stats_to_json(d)));
        lt_stats_free(d);
    }
    send_delta(w, w->next_sec++);
}

static void on_arrivals(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->stopping) return;
    int64_t now = run_ms(w);
    int started = 0;
    while (w->next_bot < w->start.hi && started < LT_START_BATCH) {
        int64_t at = lt_arrival_time_ms(w->scn, w->next_bot);
        if (at >= w->scn->duration_ms) { /* beyond the run: never starts */
            w->next_bot = w->start.hi;
            break;
        }
        if (at > now) {
            uv_timer_start(&w->arrivals, on_arrivals, (uint64_t)(at - now), 0);
            return;
        }
        lt_bot_start(&w->ctx, w->next_bot++);
        started++;
    }
    if (w->next_bot < w->start.hi) uv_timer_start(&w->arrivals, on_arrivals, 0, 0);
}

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->stopping) return;
    send_through(w, lt_tick_second(run_ms(w), w->last_sec));
    int64_t due = (w->next_sec + 1) * 1000 - run_ms(w);
    uv_timer_start(&w->tick, on_tick, (uint64_t)(due > 0 ? due : 0), 0);
}

/* Closes every handle but stdout (arg), which closes once its queued lines
 * are written. */
static void walk_close(uv_handle_t *h, void *arg)
{
    if (h != arg && !uv_is_closing(h)) uv_close(h, NULL);
}

static void on_out_shutdown(uv_shutdown_t *req, int status)
{
    if (!uv_is_closing((uv_handle_t *)req->handle)) uv_close((uv_handle_t *)req->handle, NULL);
    kz_free(req);
}

/* After the last sockets' close callbacks: the final delta, "done", and
 * everything closed so the loop ends (stdout once it is drained). */
static void on_final(uv_timer_t *t)
{
    worker_t *w = t->data;
    send_delta(w, w->next_sec < w->last_sec ? w->next_sec : w->last_sec);
    out_line(w, "{\"t\":\"done\"}", 12);
    uv_walk(w->loop, walk_close, w->out_uv ? &w->out : NULL);
    if (w->out_uv && !uv_is_closing((uv_handle_t *)&w->out)) {
        uv_shutdown_t *req = kz_malloc(sizeof *req);
        if (uv_shutdown(req, (uv_stream_t *)&w->out, on_out_shutdown) != 0) {
            kz_free(req);
            uv_close((uv_handle_t *)&w->out, NULL);
        }
    }
}

/* The end: bots still closing are released at once; the final delta goes
 * out on the next loop turn, once their sockets' close callbacks ran. */
static void finish(worker_t *w)
{
    if (w->finished) return;
    w->finished = true;
    while (w->ctx.head) lt_bot_kill(w->ctx.head);
    uv_timer_start(&w->end, on_final, 1, 0); /* 1 ms: after this turn's close callbacks */
}

static void on_grace(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->ctx.alive > 0 && (int64_t)uv_now(w->loop) < w->stop_at + LT_STOP_GRACE_MS && !w->finished) {
        /* Still closing: look again shortly (up to the grace period). */
        uv_timer_start(&w->end, on_grace, 50, 0);
        return;
    }
    finish(w);
}

/* Stops every bot (the run is over, or the coordinator said stop). */
static void stop_all(worker_t *w)
{
    if (w->stopping) return;
    w->stopping = true;
    w->ctx.stopping = true;
    w->stop_at = (int64_t)uv_now(w->loop);
    uv_timer_stop(&w->arrivals);
    uv_timer_stop(&w->tick);
    /* Seconds that ended before this moment still get their own delta (the
     * last second's goes out at the end, with what the stop recorded). */
    send_through(w, lt_tick_second(run_ms(w), w->last_sec - 1));
    for (lt_bot_t *b = w->ctx.head, *next; b; b = next) {
        next = lt_bot_next(b); /* stopping b may unlink it, never its successor */
        lt_bot_stop(b);
    }
    uv_timer_start(&w->end, on_grace, 20, 0);
}

static void on_end(uv_timer_t *t)
{
    stop_all(t->data);
}

/* A bot ended: when it was the last one and no more will start, the run is
 * over before its time (from the loop, not inside the bot's callback). */
static void on_bot_end(lt_ctx_t *ctx)
{
    worker_t *w = ctx->user;
    if (!w->stopping && ctx->running == 0 && w->next_bot >= w->start.hi)
        uv_timer_start(&w->end, on_end, 0, 0);
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    worker_t *w = h->data;
    b->base = w->inbuf + w->inlen;
    b->len = sizeof w->inbuf - w->inlen;
}

/* Lines from the coordinator after the start: "stop". EOF (the
 * coordinator went away) stops the run too. */
static void on_in(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    worker_t *w = s->data;
    if (n < 0) {
        uv_read_stop(s);
        stop_all(w);
        return;
    }
    w->inlen += (size_t)n;
    char *nl;
    while ((nl = memchr(w->inbuf, '\n', w->inlen))) {
        size_t len = (size_t)(nl - w->inbuf);
        json_t *j = json_loadb(w->inbuf, len, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "t"));
        if (t && strcmp(t, "stop") == 0) stop_all(w);
        json_decref(j);
        memmove(w->inbuf, nl + 1, w->inlen - len - 1);
        w->inlen -= len + 1;
    }
    if (w->inlen == sizeof w->inbuf) w->inlen = 0; /* an overlong line: dropped */
}

/* Reads the first line (the start message) from fd; extra bytes go to
 * w->inbuf. Owned result, or NULL. */
static char *read_start_line(int fd, worker_t *w)
{
    size_t len = 0, cap = 1 << 16;
    char *buf = kz_malloc(cap);
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            *nl = '\0';
            size_t rest = len - (size_t)(nl + 1 - buf);
            if (rest > sizeof w->inbuf) rest = sizeof w->inbuf;
            memcpy(w->inbuf, nl + 1, rest);
            w->inlen = rest;
            return buf;
        }
        if (len == cap) {
            if (cap >= LT_MAX_LINE) break;
            cap *= 2;
            buf = kz_realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    kz_free(buf);
    return NULL;
}

int lt_worker_main(int in_fd, int out_fd)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* the coordinator stops us with a "stop" line */
    worker_t *w = kz_calloc(1, sizeof *w);
    w->out_fd = out_fd;
    char err[512];
    int status = 2;
    char *line = read_start_line(in_fd, w);
    json_t *j = line ? json_loads(line, 0, NULL) : NULL;
    kz_free(line);
    if (!j) {
        send_error(out_fd, "worker: no start message on stdin");
        goto out;
    }
    int rc = lt_start_from_json(j, &w->start, err, sizeof err);
    json_decref(j);
    if (rc != 0) {
        send_error(out_fd, err);
        goto out;
    }
    w->scn = lt_scenario_parse(w->start.scenario, w->start.scenario_len, w->start.file ? w->start.file : "scenario",
                               err, sizeof err);
    if (!w->scn || lt_scenario_override(w->scn, &w->start.ov, err, sizeof err) != 0) {
        send_error(out_fd, err);
        goto out;
    }
    lt_raise_nofile();
    w->loop = kz_malloc(sizeof *w->loop);
    uv_loop_init(w->loop);
    w->stats = lt_stats_new();
    kzc_on_tcp_change(on_tcp_change, w);
    lt_ctx_t *ctx = &w->ctx;
    ctx->loop = w->loop;
    ctx->scn = w->scn;
    ctx->stats = w->stats;
    snprintf(ctx->run_id, sizeof ctx->run_id, "%s", w->start.run_id);
    ctx->sources = w->start.sources;
    ctx->nsources = w->start.nsources;
    ctx->on_bot_end = on_bot_end;
    ctx->user = w;
    if (lt_ctx_init(ctx) != 0) {
        send_error(out_fd, "worker: server key too long");
        goto out_loop;
    }
    uv_update_time(w->loop);
    ctx->start_ms = (int64_t)uv_now(w->loop) + w->start.start_in_ms;
    ctx->end_ms = ctx->start_ms + w->scn->duration_ms;
    w->last_sec = (w->scn->duration_ms + 999) / 1000 - 1;
    w->next_bot = w->start.lo;
    uv_timer_init(w->loop, &w->arrivals);
    uv_timer_init(w->loop, &w->tick);
    uv_timer_init(w->loop, &w->end);
    w->arrivals.data = w->tick.data = w->end.data = w;
    int64_t first = w->next_bot < w->start.hi ? lt_arrival_time_ms(w->scn, w->next_bot) : 0;
    uv_timer_start(&w->arrivals, on_arrivals, (uint64_t)(w->start.start_in_ms + first), 0);
    uv_timer_start(&w->tick, on_tick, (uint64_t)(w->start.start_in_ms + 1000), 0);
    /* A worker without bots has nothing to wait for. */
    int64_t end_in = w->start.lo < w->start.hi ? w->scn->duration_ms : 0;
    uv_timer_start(&w->end, on_end, (uint64_t)(w->start.start_in_ms + end_in), 0);
    uv_pipe_init(w->loop, &w->out, 0);
    w->out.data = w;
    if (uv_pipe_open(&w->out, out_fd) == 0)
        w->out_uv = true;
    else /* not a pipe or socket (a file): blocking writes, which cannot stall long */
        uv_close((uv_handle_t *)&w->out, NULL);
    uv_pipe_init(w->loop, &w->in, 0);
    w->in.data = w;
    if (uv_pipe_open(&w->in, in_fd) == 0) {
        uv_read_start((uv_stream_t *)&w->in, in_alloc, on_in);
        if (w->inlen) { /* a stop that came with the start line */
            uv_buf_t none = uv_buf_init(w->inbuf + w->inlen, 0);
            on_in((uv_stream_t *)&w->in, 0, &none);
        }
    }
    uv_run(w->loop, UV_RUN_DEFAULT);
    status = 0;
out_loop:
    if (!w->finished && status != 0) uv_walk(w->loop, walk_close, NULL);
    uv_run(w->loop, UV_RUN_DEFAULT);
    uv_loop_close(w->loop);
    kz_free(w->loop);
    kzc_on_tcp_change(NULL, NULL);
    lt_ctx_deinit(ctx);
    lt_stats_free(w->stats);
out:
    lt_scenario_free(w->scn);
    lt_start_clear(&w->start);
    kz_free(w);
    return status;
}
