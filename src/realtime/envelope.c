#include "realtime/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/alloc.h"

json_t *kz_rt_envelope(const char *cid, const char *key, json_t *msg)
{
    json_t *e = json_object();
    if (cid) json_object_set_new(e, "cid", json_string(cid));
    if (key) json_object_set_new(e, key, msg);
    return e;
}

kz_frame_t *kz_rt_frame(json_t *env)
{
    char *s = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(env);
    kz_frame_t *f = kz_frame_new(false, s, strlen(s));
    free(s);
    return f;
}

void kz_rt_reply(kz_ws_t *ws, json_t *env)
{
    kz_frame_t *f = kz_rt_frame(env);
    kz_ws_send(ws, f);
    kz_frame_release(f);
}

void kz_rt_error(kz_ws_t *ws, const char *cid, int code, const char *message)
{
    json_t *err = json_object();
    if (code) json_object_set_new(err, "code", json_integer(code));
    json_object_set_new(err, "message", json_string(message));
    kz_rt_reply(ws, kz_rt_envelope(cid, "error", err));
}

typedef struct rt_job {
    kz_job_t job;   /* first: the pool hands it back */
    kz_task_t task; /* the way back to the session's thread */
    kz_rt_sess_t *s; /* retained */
    kz_rt_work_fn work;
    kz_rt_done_fn done;
    void *arg;
} rt_job_t;

static void job_back(kz_task_t *t)
{
    rt_job_t *j = (rt_job_t *)((char *)t - offsetof(rt_job_t, task));
    j->done(j->s, j->arg);
    kz_rt_sess_release(j->s);
    kz_free(j);
}

static void job_run(kz_job_t *job, void *worker_ctx)
{
    rt_job_t *j = (rt_job_t *)job;
    j->work(((kz_worker_t *)worker_ctx)->db, j->arg);
}

static void job_done(kz_job_t *job)
{
    rt_job_t *j = (rt_job_t *)job;
    j->task.run = job_back;
    kz_server_post(j->s->app->server, j->s->io, &j->task);
}

bool kz_rt_submit(kz_rt_sess_t *s, kz_rt_work_fn work, kz_rt_done_fn done, void *arg)
{
    rt_job_t *j = kz_calloc(1, sizeof *j);
    j->job.run = job_run;
    j->job.done = job_done;
    j->s = kz_rt_sess_retain(s);
    j->work = work;
    j->done = done;
    j->arg = arg;
    if (!kz_pool_submit(s->app->pool, &j->job)) {
        kz_rt_sess_release(s);
        kz_free(j);
        return false;
    }
    return true;
}
