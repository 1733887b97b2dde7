#include "realtime/wire.h"

#include <stdlib.h>
#include <string.h>

#include "codec/pbjson.h"
#include "core/alloc.h"
#include "core/log.h"
#include "kizuna/realtime.pb-c.h"

kz_frame_t *kz_rt_encode(json_t *env, bool protobuf)
{
    if (!protobuf) {
        char *s = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
        kz_frame_t *f = kz_frame_new(false, s, strlen(s));
        free(s);
        return f;
    }
    char stack[2048];
    kz_arena_t a;
    kz_arena_init(&a, stack, sizeof stack);
    uint8_t *bytes;
    size_t n;
    char err[128];
    kz_frame_t *f = NULL;
    if (kz_pbjson_encode(&nakama__realtime__envelope__descriptor, env, &a, &bytes, &n, err) == 0)
        f = kz_frame_new(true, bytes, n);
    else
        kz_log_error("realtime: an envelope does not fit the protobuf format (%s)", err);
    kz_arena_release(&a);
    return f;
}

json_t *kz_rt_decode_protobuf(const void *data, size_t len)
{
    return kz_pbjson_decode(&nakama__realtime__envelope__descriptor, data, len);
}

kz_rt_out_t *kz_rt_out(json_t *env)
{
    kz_rt_out_t *o = kz_calloc(1, sizeof *o);
    o->env = env;
    return o;
}

kz_frame_t *kz_rt_out_frame(kz_rt_out_t *o, bool protobuf)
{
    if (!o->frame[protobuf]) o->frame[protobuf] = kz_rt_encode(o->env, protobuf);
    return o->frame[protobuf];
}

void kz_rt_out_free(kz_rt_out_t *o)
{
    if (!o) return;
    json_decref(o->env);
    if (o->frame[0]) kz_frame_release(o->frame[0]);
    if (o->frame[1]) kz_frame_release(o->frame[1]);
    kz_free(o);
}
