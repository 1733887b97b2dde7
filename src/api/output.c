/* Response field helpers shared by the handlers: see api/api.h. */
#include "api/api.h"
#include "core/clock.h"

void kz_json_put_str(json_t *o, const char *key, const char *v)
{
    if (v && *v) json_object_set_new(o, key, json_string(v));
}

void kz_json_put_time(json_t *o, const char *key, int64_t ms)
{
    if (ms <= 0) return;
    char buf[32];
    kz_rfc3339(ms - ms % 1000, buf);
    json_object_set_new(o, key, json_string(buf));
}
