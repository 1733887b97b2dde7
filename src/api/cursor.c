#include "api/cursor.h"

#include <string.h>

#include "core/alloc.h"
#include "core/jwt.h"

#define KZ_CURSOR_MAX 4096

char *kz_cursor_encode(json_t *obj)
{
    char *json = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    char *out = kz_b64url_encode(json, strlen(json));
    free(json);
    return out;
}

json_t *kz_cursor_decode(const char *cursor)
{
    size_t n = cursor ? strlen(cursor) : 0;
    if (n == 0 || n > KZ_CURSOR_MAX) return NULL;
    size_t len;
    unsigned char *raw = kz_b64url_decode(cursor, n, &len);
    if (!raw) return NULL;
    json_t *obj = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    kz_free(raw);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
