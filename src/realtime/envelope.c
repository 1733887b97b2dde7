#include "realtime/envelope.h"

#include <stdlib.h>
#include <string.h>

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
