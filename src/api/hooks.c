/* Before and after hooks of REST routes (nk.register_req_before/after).
 *
 * A hook sees the request as the JSON form of the API method's request
 * message: the body's fields (or, for routes whose body is one field such as
 * authenticate's `account`, the body under that name), the path parameters
 * and the query parameters by their snake_case names. Query values are
 * strings, except the repeated ones (ids, usernames, ...: arrays), the
 * numeric wrappers (limit, state, ...: numbers) and the booleans (create,
 * forward, ...), as the request message's JSON has them.
 *
 * What a before hook returns is written back where each field came from
 * (body, path or query; a new field goes to the body of a route that has
 * one, else to the query), so every handler reads the rewritten request
 * through its usual input functions. */
#include <ctype.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/hooks.h"
#include "core/alloc.h"
#include "core/log.h"
#include "lua/runtime.h"

/* Routes whose body is one field of the request message. */
static const char *body_field(const char *method)
{
    if (strncmp(method, "Authenticate", 12) == 0) return "account";
    if (strcmp(method, "LinkFacebook") == 0 || strcmp(method, "LinkSteam") == 0 ||
        strcmp(method, "ImportFacebookFriends") == 0 || strcmp(method, "ImportSteamFriends") == 0)
        return "account";
    if (strcmp(method, "WriteLeaderboardRecord") == 0 || strcmp(method, "WriteTournamentRecord") == 0)
        return "record";
    return NULL;
}

/* Methods without a request message: the hook gets nil and can only block. */
static bool no_input(const char *method)
{
    return strcmp(method, "GetAccount") == 0 || strcmp(method, "DeleteAccount") == 0;
}

static bool in_list(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(k, *list) == 0) return true;
    return false;
}

static const char *const repeated_keys[] = {"ids", "usernames", "user_ids", "owner_ids", "facebook_ids", NULL};
static const char *const number_keys[] = {"limit",    "state",    "category_start", "category_end", "start_time",
                                          "end_time", "min_size", "max_size",       "members",      NULL};
static const char *const bool_keys[] = {"create", "forward", "open", "authoritative", "sync", "reset", NULL};

static void snake(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (; *in && j + 2 < cap; in++) {
        if (isupper((unsigned char)*in)) {
            out[j++] = '_';
            out[j++] = (char)tolower((unsigned char)*in);
        } else {
            out[j++] = *in;
        }
    }
    out[j] = '\0';
}

static json_t *query_value(const char *k, const char *v)
{
    if (in_list(k, number_keys)) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (*v && !*end) return json_integer(n);
    }
    if (in_list(k, bool_keys)) {
        if (strcmp(v, "true") == 0) return json_true();
        if (strcmp(v, "false") == 0) return json_false();
    }
    return json_string(v);
}

/* Adds the query parameters to req and their names to from_query. */
static void add_query(json_t *req, kz_slice_t q, json_t *from_query)
{
    const char *p = q.p, *end = q.p + q.n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        const char *kend = eq ? eq : amp;
        char *rawk = kz_url_decode(p, (size_t)(kend - p));
        char *v = eq ? kz_url_decode(eq + 1, (size_t)(amp - eq - 1)) : kz_strdup("");
        p = amp + 1;
        if (!rawk || !v || !*rawk || strlen(rawk) > 64) {
            kz_free(rawk);
            kz_free(v);
            continue;
        }
        char k[160];
        snake(rawk, k, sizeof k);
        json_t *val = query_value(k, v);
        if (val) {
            if (in_list(k, repeated_keys)) {
                json_t *a = json_object_get(req, k);
                if (!json_is_array(a)) {
                    a = json_array();
                    json_object_set_new(req, k, a);
                }
                json_array_append_new(a, val);
            } else {
                json_object_set_new(req, k, val);
            }
            json_object_set_new(from_query, k, json_true());
        }
        kz_free(rawk);
        kz_free(v);
    }
}

/* The path parameter names of a route pattern, in order. */
static int path_names(const char *pattern, char names[][48])
{
    int n = 0;
    for (const char *p = strchr(pattern, '{'); p && n < KZ_MAX_PATH_PARAMS; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        size_t l = (size_t)(close - p - 1);
        if (l >= 48) l = 47;
        memcpy(names[n], p + 1, l);
        names[n][l] = '\0';
        n++;
    }
    return n;
}

struct kz_hook_req {
    json_t *req;        /* what the hook sees */
    json_t *headers;    /* the request's headers, for the context */
    json_t *from_query; /* names that came from the query */
    bool body_ok;       /* the body parsed (or was empty): it may be rewritten */
};

static void hook_ctx(kz_call_t *call, const char *mode, const struct kz_hook_req *h, kz_lua_ctx_t *ctx)
{
    *ctx = (kz_lua_ctx_t){.mode = mode, .headers = h->headers};
    if (call->session.uid[0]) {
        ctx->user_id = call->session.uid;
        ctx->username = call->session.usn;
        ctx->vars = call->session.vrs;
        ctx->user_session_exp = call->session.exp;
    }
}

static void build_request(kz_call_t *call, const char *method, struct kz_hook_req *h)
{
    kz_http_req_t *r = &call->ex->req;
    h->req = json_object();
    h->from_query = json_object();
    h->headers = kz_request_headers(r);
    h->body_ok = false;
    const char *field = body_field(method);
    json_t *body = NULL;
    size_t i = 0;
    while (i < r->body_len && isspace((unsigned char)r->body[i])) i++;
    if (i == r->body_len) {
        h->body_ok = true;
    } else {
        body = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
        if (json_is_object(body)) h->body_ok = true;
        else {
            json_decref(body);
            body = NULL;
        }
    }
    if (body && field) {
        json_object_set_new(h->req, field, body);
    } else if (body) {
        json_object_update(h->req, body);
        json_decref(body);
    }
    add_query(h->req, r->query, h->from_query);
    char names[KZ_MAX_PATH_PARAMS][48];
    int n = path_names(call->route->pattern, names);
    for (int k = 0; k < n && k < call->nparams; k++) {
        char *v = kz_url_decode(call->params[k].p, call->params[k].n);
        json_t *js = v ? json_string(v) : NULL;
        if (js) json_object_set_new(h->req, names[k], js);
        kz_free(v);
    }
}

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = kz_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void append_escaped(char **buf, size_t *len, size_t *cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            append(buf, len, cap, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            append(buf, len, cap, e, 3);
        }
    }
}

/* A scalar as query text; false for objects. */
static bool scalar_text(const json_t *v, char *out, size_t cap, const char **s)
{
    switch (json_typeof(v)) {
    case JSON_STRING: *s = json_string_value(v); return true;
    case JSON_INTEGER: snprintf(out, cap, "%lld", (long long)json_integer_value(v)); *s = out; return true;
    case JSON_REAL: snprintf(out, cap, "%.17g", json_real_value(v)); *s = out; return true;
    case JSON_TRUE: *s = "true"; return true;
    case JSON_FALSE: *s = "false"; return true;
    default: return false;
    }
}

static void append_param(char **q, size_t *len, size_t *cap, const char *k, const json_t *v)
{
    char num[64];
    const char *s;
    if (!scalar_text(v, num, sizeof num, &s)) return;
    if (*len) append(q, len, cap, "&", 1);
    append_escaped(q, len, cap, k);
    append(q, len, cap, "=", 1);
    append_escaped(q, len, cap, s);
}

/* Writes the hook's request back into the exchange and the call. */
static void apply_request(kz_call_t *call, const char *method, struct kz_hook_req *h, json_t *out)
{
    kz_http_req_t *r = &call->ex->req;
    const char *field = body_field(method);
    bool has_body = r->method == HTTP_POST || r->method == HTTP_PUT;
    char names[KZ_MAX_PATH_PARAMS][48];
    int n = path_names(call->route->pattern, names);

    json_t *body = json_object();
    char *q = kz_strdup("");
    size_t qlen = 0, qcap = 1;
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v)
    {
        int pi = -1;
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], k) == 0) pi = i;
        if (pi >= 0) {
            char num[64];
            const char *s;
            if (pi < call->nparams && scalar_text(v, num, sizeof num, &s)) {
                /* Handlers decode path parameters: store it encoded. */
                char *enc = kz_strdup("");
                size_t elen = 0, ecap = 1;
                append_escaped(&enc, &elen, &ecap, s);
                kz_free(call->owned_params[pi]);
                call->owned_params[pi] = enc;
                call->params[pi] = (kz_slice_t){enc, elen};
            }
            continue;
        }
        if (field && strcmp(k, field) == 0) {
            if (json_is_object(v)) json_object_update(body, v);
            continue;
        }
        if (json_object_get(h->from_query, k) || !has_body || field) {
            if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) append_param(&q, &qlen, &qcap, k, e);
            } else {
                append_param(&q, &qlen, &qcap, k, v);
            }
            continue;
        }
        json_object_set(body, k, v);
    }
    kz_free(call->owned_query);
    call->owned_query = q;
    r->query = (kz_slice_t){q, qlen};
    if (has_body && h->body_ok) {
        char *b = json_dumps(body, JSON_COMPACT);
        kz_free(r->body);
        r->body = b;
        r->body_len = strlen(b);
    }
    json_decref(body);
}

static void clear(struct kz_hook_req *h)
{
    json_decref(h->req);
    json_decref(h->from_query);
    json_decref(h->headers);
}

/* The API method of a route: its name without the "2" of second bindings. */
static void method_of(const kz_route_t *route, char *out, size_t cap)
{
    snprintf(out, cap, "%s", route->name);
    size_t l = strlen(out);
    if (l > 1 && out[l - 1] == '2') out[l - 1] = '\0';
}

void kz_api_run_with_hooks(kz_call_t *call)
{
    char method[64];
    method_of(call->route, method, sizeof method);
    bool before = kz_lua_has_before(method), after = kz_lua_has_after(method);
    if (call->route->auth == KZ_AUTH_RPC || (!before && !after)) {
        call->route->handler(call);
        return;
    }
    struct kz_hook_req h;
    build_request(call, method, &h);
    if (before) {
        kz_lua_ctx_t ctx;
        hook_ctx(call, "before", &h, &ctx);
        kz_lua_error_t err;
        json_t *msg = no_input(method) ? NULL : json_incref(h.req);
        int rc = kz_lua_before(&call->worker->lua, call->db, &ctx, false, method, &msg, &err);
        if (rc == KZ_LUA_REJECTED && !no_input(method)) {
            json_decref(msg);
            clear(&h);
            kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "Requested resource was not found.");
            return;
        }
        if (rc == KZ_LUA_ERROR) {
            json_decref(msg);
            clear(&h);
            kz_reply_error(call->ex, err.code, err.message);
            return;
        }
        if (rc == KZ_LUA_OK && msg && !no_input(method)) {
            apply_request(call, method, &h, msg);
            json_decref(h.req);
            h.req = json_incref(msg);
        }
        json_decref(msg);
    }
    call->route->handler(call);
    kz_exchange_t *ex = call->ex;
    if (after && ex->resp.status == 200) {
        json_t *resp = ex->resp.body_len ? json_loadb(ex->resp.body, ex->resp.body_len, 0, NULL) : json_object();
        kz_lua_ctx_t ctx;
        hook_ctx(call, "after", &h, &ctx);
        kz_lua_after(&call->worker->lua, call->db, &ctx, false, method, resp, no_input(method) ? NULL : h.req);
        json_decref(resp);
    }
    clear(&h);
}
