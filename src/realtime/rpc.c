/* The socket's rpc message: calls a Lua RPC on a worker and replies
 * {"rpc": {"id", "payload"}}, or error 6 (RUNTIME_FUNCTION_NOT_FOUND) / 7
 * (RUNTIME_FUNCTION_EXCEPTION, with the script's message). */
#include <string.h>

#include "api/api.h"
#include "core/alloc.h"
#include "lua/runtime.h"
#include "realtime/envelope.h"

typedef struct rpc_job {
    char *cid, *id, *payload;
    size_t plen;
    char uid[37], username[129], sid[37], lang[32];
    int64_t exp;
    json_t *vars; /* the session's, read-only (the job holds the session) */
    int rc;
    char *out;
    size_t outlen;
    kz_lua_error_t err;
} rpc_job_t;

static void rpc_work(kz_db_t *db, void *arg)
{
    rpc_job_t *j = arg;
    kz_lua_ctx_t ctx = {.mode = "rpc",
                        .user_id = j->uid,
                        .username = j->username,
                        .session_id = j->sid,
                        .lang = j->lang,
                        .user_session_exp = j->exp,
                        .vars = j->vars};
    kz_worker_t *w = kz_worker_current();
    j->rc = kz_lua_rpc(&w->lua, db, &ctx, j->id, j->payload, j->plen, &j->out, &j->outlen, &j->err);
}

static void rpc_done(kz_rt_sess_t *s, void *arg)
{
    rpc_job_t *j = arg;
    if (s->ws) {
        if (j->rc == KZ_LUA_NOT_FOUND) {
            kz_rt_error(s->ws, j->cid, KZ_RT_RUNTIME_FUNCTION_NOT_FOUND, "RPC function not found");
        } else if (j->rc != KZ_LUA_OK) {
            kz_rt_error(s->ws, j->cid, KZ_RT_RUNTIME_FUNCTION_EXCEPTION, j->err.message);
        } else {
            json_t *rpc = json_object();
            json_object_set_new(rpc, "id", json_string(j->id));
            json_t *p = j->out ? json_stringn(j->out, j->outlen) : NULL;
            if (j->out && !p) {
                json_decref(rpc);
                kz_rt_error(s->ws, j->cid, KZ_RT_RUNTIME_FUNCTION_EXCEPTION,
                            "RPC function returned a payload that is not valid UTF-8.");
                goto out;
            }
            if (p) json_object_set_new(rpc, "payload", p);
            kz_rt_reply(s->ws, kz_rt_envelope(j->cid, "rpc", rpc));
        }
    }
out:
    kz_free(j->cid);
    kz_free(j->id);
    kz_free(j->payload);
    kz_free(j->out);
    kz_free(j);
}

void kz_rt_rpc(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t fields[] = {
        {"id", "id", KZ_RT_F_STRING},
        {"payload", "payload", KZ_RT_F_STRING},
        {"http_key", "httpKey", KZ_RT_F_STRING},
    };
    json_t *v[3];
    if (!kz_rt_fields_read(msg, fields, 3, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    const char *id = v[0] ? json_string_value(v[0]) : "";
    if (!*id) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "RPC ID must be set");
        return;
    }
    if (!kz_lua_has_rpc(id)) {
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_FUNCTION_NOT_FOUND, "RPC function not found");
        return;
    }
    rpc_job_t *j = kz_calloc(1, sizeof *j);
    j->cid = kz_strdup(cid);
    j->id = kz_strdup(id);
    if (v[1]) {
        j->plen = json_string_length(v[1]);
        j->payload = kz_strndup(json_string_value(v[1]), j->plen);
    }
    snprintf(j->uid, sizeof j->uid, "%s", s->uid);
    snprintf(j->username, sizeof j->username, "%s", s->username);
    snprintf(j->sid, sizeof j->sid, "%s", s->id);
    snprintf(j->lang, sizeof j->lang, "%s", s->lang);
    j->exp = s->exp;
    j->vars = s->vars;
    if (!kz_rt_submit(s, rpc_work, rpc_done, j)) {
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, "Server is busy, try again.");
        kz_free(j->cid);
        kz_free(j->id);
        kz_free(j->payload);
        kz_free(j);
    }
}
