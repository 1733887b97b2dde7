/* Request input: JSON bodies and query strings, with the gateway's
 * conventions (snake_case or lowerCamelCase names, strict types). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/alloc.h"
#include "store/account.h"

json_t *kz_body_object(kz_call_t *call)
{
    kz_http_req_t *req = &call->ex->req;
    size_t i = 0;
    while (i < req->body_len && isspace((unsigned char)req->body[i])) i++;
    if (i == req->body_len) return json_object();
    json_error_t jerr;
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        char msg[256];
        snprintf(msg, sizeof msg, "Invalid JSON body: %s (line %d, column %d).", jerr.text, jerr.line,
                 jerr.column);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Request body must be a JSON object.");
        return NULL;
    }
    return v;
}

/* "refresh_token" -> "refreshToken". out needs strlen(snake)+1 bytes. */
static void camel_case(const char *snake, char *out)
{
    bool up = false;
    for (; *snake; snake++) {
        if (*snake == '_') {
            up = true;
            continue;
        }
        *out++ = up ? (char)toupper((unsigned char)*snake) : *snake;
        up = false;
    }
    *out = '\0';
}

json_t *kz_json_field(json_t *obj, const char *snake)
{
    json_t *v = json_object_get(obj, snake);
    if (v || !strchr(snake, '_')) return v;
    char camel[64];
    if (strlen(snake) >= sizeof camel) return NULL;
    camel_case(snake, camel);
    return json_object_get(obj, camel);
}

int kz_json_string(kz_call_t *call, json_t *obj, const char *snake, const char **out)
{
    json_t *v = kz_json_field(obj, snake);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        char msg[128];
        snprintf(msg, sizeof msg, "Invalid value for field '%s': expected a string.", snake);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int kz_json_vars(kz_call_t *call, json_t *obj, const char *snake, json_t **out)
{
    json_t *v = kz_json_field(obj, snake);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    bool ok = json_is_object(v);
    const char *k;
    json_t *e;
    if (ok) json_object_foreach(v, k, e) if (!json_is_string(e)) ok = false;
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "Invalid value for field '%s': expected an object of strings.", snake);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    *out = json_incref(v);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *kz_url_decode(const char *s, size_t n)
{
    char *out = kz_malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                kz_free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+') {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* Calls back for every key=value pair whose decoded key is snake or its
 * camelCase form; stops when fn returns false. */
static void query_each(kz_slice_t q, const char *snake, bool (*fn)(char *value, void *arg), void *arg)
{
    char camel[64] = "";
    if (strlen(snake) < sizeof camel) camel_case(snake, camel);
    const char *p = q.p, *end = q.p + q.n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        const char *kend = eq ? eq : amp;
        char *key = kz_url_decode(p, (size_t)(kend - p));
        if (key && (strcmp(key, snake) == 0 || strcmp(key, camel) == 0)) {
            char *val = eq ? kz_url_decode(eq + 1, (size_t)(amp - eq - 1)) : kz_strdup("");
            kz_free(key);
            if (val && !fn(val, arg)) return;
        } else {
            kz_free(key);
        }
        p = amp + 1;
    }
}

static bool take_first(char *value, void *arg)
{
    *(char **)arg = value;
    return false;
}

char *kz_query_get(kz_slice_t query, const char *key)
{
    char *v = NULL;
    query_each(query, key, take_first, &v);
    return v;
}

typedef struct {
    char **v;
    int n, cap;
} strvec_t;

static bool take_all(char *value, void *arg)
{
    strvec_t *sv = arg;
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 8;
        sv->v = kz_realloc(sv->v, sizeof(char *) * (size_t)sv->cap);
    }
    sv->v[sv->n++] = value;
    return true;
}

int kz_query_all(kz_slice_t query, const char *key, char ***out)
{
    strvec_t sv = {0};
    query_each(query, key, take_all, &sv);
    *out = sv.v;
    return sv.n;
}

int kz_query_bool(kz_slice_t query, const char *key, bool def, bool *out)
{
    char *v = kz_query_get(query, key);
    *out = def;
    if (!v) return 0;
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    int rc = -1;
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(v, yes[i]) == 0) *out = true, rc = 0;
        if (strcmp(v, no[i]) == 0) *out = false, rc = 0;
    }
    kz_free(v);
    return rc;
}

json_t *kz_request_headers(const kz_http_req_t *r)
{
    json_t *o = json_object();
    for (int i = 0; i < r->nheaders; i++) {
        const kz_http_header_t *h = &r->headers[i];
        if (h->name.n == 0 || h->name.n > 128) continue;
        char name[129];
        bool up = true;
        for (size_t k = 0; k < h->name.n; k++) {
            char ch = h->name.p[k];
            name[k] = up ? (char)toupper((unsigned char)ch) : (char)tolower((unsigned char)ch);
            up = ch == '-';
        }
        name[h->name.n] = '\0';
        json_t *v = json_stringn(h->value.p, h->value.n);
        if (!v) continue; /* not UTF-8 */
        json_t *list = json_object_get(o, name);
        if (!list) {
            list = json_array();
            if (json_object_set_new(o, name, list) != 0) {
                json_decref(v);
                continue;
            }
        }
        json_array_append_new(list, v);
    }
    return o;
}
