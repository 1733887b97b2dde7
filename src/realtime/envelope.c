#include "realtime/envelope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "codec/pbjson.h"
#include "core/alloc.h"

json_t *kz_rt_envelope(const char *cid, const char *key, json_t *msg)
{
    json_t *e = json_object();
    if (cid) json_object_set_new(e, "cid", json_string(cid));
    if (key) json_object_set_new(e, key, msg);
    return e;
}

void kz_rt_reply(kz_ws_t *ws, json_t *env)
{
    kz_rt_sess_t *s = kz_ws_user(ws);
    if (s->afters) kz_rt_hooks_reply(s, env);
    kz_frame_t *f = kz_rt_encode(env, s->protobuf);
    json_decref(env);
    if (f) kz_ws_send(ws, f);
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
    kz_worker_set_current(worker_ctx);
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

/* ------------------------------------------------------------------------ */
/* Message input                                                            */

bool kz_rt_int64(const json_t *v, int64_t *out) { return kz_pbjson_int64(v, out); }

/* Protobuf JSON input: every key must be one of the message's fields, by its
 * snake_case or lowerCamelCase name, at most once, with a value of the
 * right type (null counts as absent). Anything else is a parse error,
 * which closes the socket as Nakama does. */
bool kz_rt_fields_read(json_t *msg, const kz_rt_field_t *f, int nf, json_t **out)
{
    for (int i = 0; i < nf; i++) out[i] = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(msg, key, v)
    {
        int i = 0;
        while (i < nf && strcmp(key, f[i].snake) != 0 && strcmp(key, f[i].camel) != 0) i++;
        if (i == nf || out[i]) return false;
        if (json_is_null(v)) continue;
        bool ok = false;
        switch (f[i].type) {
        case KZ_RT_F_STRING: ok = json_is_string(v); break;
        case KZ_RT_F_BOOL: ok = json_is_boolean(v); break;
        case KZ_RT_F_INT64: {
            int64_t x;
            ok = kz_rt_int64(v, &x);
            break;
        }
        case KZ_RT_F_ARRAY: ok = json_is_array(v); break;
        case KZ_RT_F_OBJECT: ok = json_is_object(v); break;
        case KZ_RT_F_MAP: {
            ok = json_is_object(v);
            const char *k;
            json_t *e;
            json_object_foreach(v, k, e) if (!json_is_string(e)) ok = false;
            break;
        }
        }
        if (!ok) return false;
        out[i] = v;
    }
    return true;
}

/* Closes the socket on a message that does not parse, as Nakama does. */
void kz_rt_parse_error(kz_ws_t *ws)
{
    kz_ws_close(ws, 1000, "Invalid message.");
}

/* The UserPresence of a session (persistence and status are left out). */
json_t *kz_rt_presence_json(const kz_rt_sess_t *s)
{
    json_t *p = json_object();
    json_object_set_new(p, "user_id", json_string(s->uid));
    json_object_set_new(p, "session_id", json_string(s->id));
    if (s->username[0]) json_object_set_new(p, "username", json_string(s->username));
    return p;
}
