/* RPC over HTTP: POST/GET /v2/rpc/{id}, Nakama's RpcFuncHttp rules.
 *
 * POST's body is a JSON string literal holding the payload ("\"{...}\"",
 * what nakama-js sends); with ?unwrap the raw body is the payload and the
 * raw result is the response. GET has no payload. Query parameters other
 * than http_key reach the function as context.query_params. Errors use the
 * RPC error shape {"error", "message", "code"}. */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/alloc.h"
#include "lua/runtime.h"

/* query string -> {"name": ["value", ...]} without http_key. */
static json_t *query_params(kz_slice_t q)
{
    json_t *o = json_object();
    const char *p = q.p, *end = q.p + q.n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        const char *kend = eq ? eq : amp;
        char *k = kz_url_decode(p, (size_t)(kend - p));
        char *v = eq ? kz_url_decode(eq + 1, (size_t)(amp - eq - 1)) : kz_strdup("");
        if (k && v && *k && strcmp(k, "http_key") != 0) {
            json_t *list = json_object_get(o, k);
            if (!list) {
                list = json_array();
                json_object_set_new(o, k, list);
            }
            json_t *js = json_string(v);
            if (js) json_array_append_new(list, js);
        }
        kz_free(k);
        kz_free(v);
        p = amp + 1;
    }
    return o;
}

/* The response type for ?unwrap: the request's, among common types, else
 * text/plain (resp.content_type must outlive the call). */
static const char *unwrap_type(kz_slice_t ct)
{
    static const char *const known[] = {"application/json", "application/octet-stream", "text/plain",
                                        "text/html", "application/xml", "text/csv"};
    size_t n = ct.n;
    const char *semi = memchr(ct.p, ';', ct.n);
    if (semi) n = (size_t)(semi - ct.p);
    while (n && ct.p[n - 1] == ' ') n--;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == n && strncasecmp(known[i], ct.p, n) == 0) return known[i];
    return "text/plain";
}

void kz_h_rpc(kz_call_t *call)
{
    kz_exchange_t *ex = call->ex;
    char *id = kz_url_decode(call->params[0].p, call->params[0].n);
    char *unwrap_q = kz_query_get(ex->req.query, "unwrap");
    bool unwrap = unwrap_q != NULL;
    kz_free(unwrap_q);
    if (!id || !*id) {
        kz_free(id);
        kz_reply_rpc_error(ex, KZ_GRPC_INVALID_ARGUMENT, "RPC ID must be set");
        return;
    }
    if (!kz_lua_has_rpc(id)) {
        kz_free(id);
        kz_reply_rpc_error(ex, KZ_GRPC_NOT_FOUND, "RPC function not found");
        return;
    }

    const char *payload = "";
    size_t plen = 0;
    json_t *body = NULL;
    if (ex->req.method == HTTP_POST && ex->req.body_len) {
        if (unwrap) {
            payload = ex->req.body;
            plen = ex->req.body_len;
        } else {
            json_error_t jerr;
            body = json_loadb(ex->req.body, ex->req.body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
            if (!body || !json_is_string(body)) {
                json_decref(body);
                kz_free(id);
                kz_reply_rpc_error(ex, KZ_GRPC_INVALID_ARGUMENT,
                                   "Unable to parse request body: a JSON string is expected.");
                return;
            }
            payload = json_string_value(body);
            plen = json_string_length(body);
        }
    }

    json_t *qp = query_params(ex->req.query);
    json_t *headers = kz_request_headers(&ex->req);
    kz_lua_ctx_t ctx = {.mode = "rpc", .query_params = qp, .headers = headers};
    if (!call->http_key) {
        ctx.user_id = call->session.uid;
        ctx.username = call->session.usn;
        ctx.vars = call->session.vrs;
        ctx.user_session_exp = call->session.exp;
    }
    char *out = NULL;
    size_t outlen = 0;
    kz_lua_error_t err;
    int rc = kz_lua_rpc(&call->worker->lua, call->db, &ctx, id, payload, plen, &out, &outlen, &err);
    json_decref(qp);
    json_decref(headers);
    json_decref(body);
    kz_free(id);

    if (rc == KZ_LUA_NOT_FOUND) {
        kz_reply_rpc_error(ex, KZ_GRPC_NOT_FOUND, "RPC function not found");
    } else if (rc != KZ_LUA_OK) {
        /* Runtime errors carry an empty "error" object, as Nakama's do. */
        json_t *o = json_object();
        json_object_set_new(o, "error", json_object());
        json_object_set_new(o, "message", json_string(err.message));
        json_object_set_new(o, "code", json_integer(err.code));
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        kz_exchange_set(ex, kz_grpc_http_status(err.code), s, strlen(s));
    } else if (unwrap) {
        kz_exchange_set(ex, 200, out ? out : kz_strdup(""), outlen);
        ex->resp.content_type = unwrap_type(ex->req.content_type);
        out = NULL;
    } else {
        json_t *o = json_object();
        json_t *p = json_stringn(out ? out : "", outlen);
        if (!p) {
            json_decref(o);
            kz_reply_rpc_error(ex, KZ_GRPC_INTERNAL, "RPC function returned a payload that is not valid UTF-8.");
        } else {
            json_object_set_new(o, "payload", p);
            kz_reply_json(ex, o);
        }
    }
    kz_free(out);
}
