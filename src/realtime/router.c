/* The realtime router: see realtime/router.h. */
#include "realtime/router.h"

#include <pthread.h>
#include <string.h>

#include "api/api.h"
#include "core/alloc.h"
#include "core/uuid.h"

#define KZ_RT_BUCKETS 65536 /* power of two; chains stay short well past 100k sessions */
#define KZ_RT_MAX_HOOKS 16

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static kz_rt_sess_t **by_user; /* buckets by user id */
static kz_rt_sess_t **by_id;   /* buckets by session id */
static int open_count;
static kz_rt_close_hook hooks[KZ_RT_MAX_HOOKS];
static int nhooks;

static size_t bucket(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h & (KZ_RT_BUCKETS - 1));
}

kz_rt_sess_t *kz_rt_sess_retain(kz_rt_sess_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void kz_rt_sess_release(kz_rt_sess_t *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        json_decref(s->vars);
        kz_free(s);
    }
}

void kz_rt_add_close_hook(kz_rt_close_hook hook)
{
    if (nhooks < KZ_RT_MAX_HOOKS) hooks[nhooks++] = hook;
}

kz_rt_sess_t *kz_rt_sess_open(const struct kz_app *app, int io, const char *uid, const char *username,
                              const char *lang, bool status, bool protobuf)
{
    kz_rt_sess_t *s = kz_calloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->app = app;
    s->io = io;
    kz_uuid_v4(s->id);
    snprintf(s->uid, sizeof s->uid, "%s", uid);
    snprintf(s->username, sizeof s->username, "%s", username);
    snprintf(s->lang, sizeof s->lang, "%s", lang);
    s->status = status;
    s->protobuf = protobuf;
    pthread_mutex_lock(&reg_lock);
    if (!by_user) {
        by_user = kz_calloc(KZ_RT_BUCKETS, sizeof *by_user);
        by_id = kz_calloc(KZ_RT_BUCKETS, sizeof *by_id);
    }
    size_t u = bucket(s->uid), i = bucket(s->id);
    s->_by_user = by_user[u];
    by_user[u] = s;
    s->_by_id = by_id[i];
    by_id[i] = s;
    open_count++;
    pthread_mutex_unlock(&reg_lock);
    return s;
}

/* Unlinks s from a chain threaded through the field at offset off. */
static void unlink_chain(kz_rt_sess_t **head, kz_rt_sess_t *s, size_t off)
{
    while (*head && *head != s) head = (kz_rt_sess_t **)((char *)*head + off);
    if (*head) *head = *(kz_rt_sess_t **)((char *)s + off);
}

void kz_rt_sess_close(kz_rt_sess_t *s)
{
    for (int i = 0; i < nhooks; i++) hooks[i](s);
    s->ws = NULL;
    pthread_mutex_lock(&reg_lock);
    unlink_chain(&by_user[bucket(s->uid)], s, offsetof(kz_rt_sess_t, _by_user));
    unlink_chain(&by_id[bucket(s->id)], s, offsetof(kz_rt_sess_t, _by_id));
    open_count--;
    pthread_mutex_unlock(&reg_lock);
    kz_rt_sess_release(s);
}

int kz_rt_session_count(void)
{
    pthread_mutex_lock(&reg_lock);
    int n = open_count;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

int kz_rt_user_sessions(const char *uid, kz_rt_sess_t ***out)
{
    *out = NULL;
    int n = 0, cap = 0;
    pthread_mutex_lock(&reg_lock);
    for (kz_rt_sess_t *s = by_user ? by_user[bucket(uid)] : NULL; s; s = s->_by_user) {
        if (strcmp(s->uid, uid) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = kz_realloc(*out, sizeof **out * (size_t)cap);
        }
        (*out)[n++] = kz_rt_sess_retain(s);
    }
    pthread_mutex_unlock(&reg_lock);
    return n;
}

kz_rt_sess_t *kz_rt_session_find(const char *id)
{
    kz_rt_sess_t *found = NULL;
    pthread_mutex_lock(&reg_lock);
    for (kz_rt_sess_t *s = by_id ? by_id[bucket(id)] : NULL; s; s = s->_by_id)
        if (strcmp(s->id, id) == 0) {
            found = kz_rt_sess_retain(s);
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    return found;
}

typedef struct close_task {
    kz_task_t task;
    kz_rt_sess_t *s; /* retained */
    int code;
    char reason[64];
} close_task_t;

/* On the session's I/O thread: closes its socket if still open (the
 * socket's close path then runs the session's close hooks). */
static void close_run(kz_task_t *t)
{
    close_task_t *c = (close_task_t *)t;
    if (c->s->ws) kz_ws_close(c->s->ws, c->code, c->reason);
    kz_rt_sess_release(c->s);
    kz_free(c);
}

void kz_rt_sess_disconnect(kz_rt_sess_t *s, int code, const char *reason)
{
    if (!s->app || !s->app->server) return;
    close_task_t *c = kz_malloc(sizeof *c);
    c->task.run = close_run;
    c->task.next = NULL;
    c->s = kz_rt_sess_retain(s);
    c->code = code;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    kz_server_post(s->app->server, s->io, &c->task);
}

/* ------------------------------------------------------------------------ */
/* Delivery                                                                 */

typedef struct batch_task {
    kz_task_t task;
    kz_frame_t *f[2]; /* JSON, protobuf: those the batch's sessions need */
    int n;
    kz_rt_sess_t *s[]; /* retained */
} batch_task_t;

static void batch_run(kz_task_t *t)
{
    batch_task_t *b = (batch_task_t *)t;
    for (int i = 0; i < b->n; i++) {
        kz_frame_t *f = b->f[b->s[i]->protobuf];
        if (b->s[i]->ws && f) kz_ws_send(b->s[i]->ws, f);
        kz_rt_sess_release(b->s[i]);
    }
    kz_frame_release(b->f[0]);
    kz_frame_release(b->f[1]);
    kz_free(b);
}

void kz_rt_send(kz_rt_sess_t *s, kz_rt_out_t *out)
{
    kz_rt_send_many(&s, 1, out);
}

void kz_rt_send_many(kz_rt_sess_t *const *s, int n, kz_rt_out_t *out)
{
    if (n <= 0) return;
    kz_server_t *srv = s[0]->app->server;
    int here = kz_server_current_thread();
    int nio = kz_server_threads(srv);
    /* Count per thread, deliver locally at once, then one task per thread. */
    int counts[256] = {0};
    for (int i = 0; i < n; i++) {
        if (s[i]->io == here) {
            kz_frame_t *f = s[i]->ws ? kz_rt_out_frame(out, s[i]->protobuf) : NULL;
            if (f) kz_ws_send(s[i]->ws, f);
        } else if (s[i]->io < 256) {
            counts[s[i]->io]++;
        }
    }
    for (int io = 0; io < nio && io < 256; io++) {
        if (!counts[io]) continue;
        batch_task_t *b = kz_malloc(sizeof *b + sizeof b->s[0] * (size_t)counts[io]);
        b->task.run = batch_run;
        b->f[0] = b->f[1] = NULL;
        b->n = 0;
        for (int i = 0; i < n; i++) {
            if (s[i]->io != io) continue;
            bool pb = s[i]->protobuf;
            kz_frame_t *f = b->f[pb] ? NULL : kz_rt_out_frame(out, pb);
            if (f) b->f[pb] = kz_frame_retain(f);
            b->s[b->n++] = kz_rt_sess_retain(s[i]);
        }
        kz_server_post(srv, io, &b->task);
    }
}
