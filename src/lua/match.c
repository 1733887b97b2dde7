/* The Lua side of authoritative matches: see lua/match.h.
 *
 * Every handler call goes through kz_lua_callback, so the runtime's time
 * and memory budgets apply to it. The match module's seven functions are
 * kept in the state's registry, each wrapped in a C closure that packs
 * whatever the handler returns into one table {n = count, ...}: a handler
 * returns up to three values (state, tick rate, label / state, accept,
 * reason / state, result) and kz_lua_callback hands back one. The match
 * state lives in the registry between calls. A call that broke a budget
 * gets its state replaced by the runtime: that is noticed here, the fresh
 * state is dropped and the match ends. */
#include "lua/match.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "lua/internal.h"
#include "realtime/match.h"

#define REG_STATE "kizuna.m.state"
#define REG_DISPATCHER "kizuna.m.dispatcher"
#define REG_LOAD "kizuna.m.load"

struct kz_ml {
    kz_lua_vm_t *vm;
    kz_am_t *m;
};

static const char *const handler_names[] = {"match_init", "match_join_attempt", "match_join", "match_leave",
                                            "match_loop", "match_terminate",    "match_signal"};
enum { H_INIT, H_JOIN_ATTEMPT, H_JOIN, H_LEAVE, H_LOOP, H_TERMINATE, H_SIGNAL, H_COUNT };

static const char *const handler_regs[] = {"kizuna.m.init", "kizuna.m.join_attempt", "kizuna.m.join",
                                           "kizuna.m.leave", "kizuna.m.loop", "kizuna.m.terminate",
                                           "kizuna.m.signal"};

/* ------------------------------------------------------------------------ */
/* The state                                                                */

/* Calls the function in upvalue 1 with every argument and returns one
 * table of its results: {n = count, r1, r2, ...}. */
static int packed_call(lua_State *L)
{
    int nargs = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, nargs, LUA_MULTRET);
    int n = lua_gettop(L);
    lua_createtable(L, n, 1);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    return 1;
}

/* (context, name): require(name), under the budgets. */
static int load_module(lua_State *L)
{
    const char *name = luaL_checkstring(L, 2);
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    return 1;
}

static int push_name(lua_State *L, void *arg)
{
    lua_pushstring(L, arg);
    return 1;
}

/* The module table on top: installs the wrapped handlers, or fails. */
static int take_module(lua_State *L, void *arg, kz_lua_error_t *err)
{
    const char *module = arg;
    if (!lua_istable(L, -1)) {
        err->code = 3;
        snprintf(err->message, sizeof err->message, "match module %s must return a table of the match functions",
                 module);
        return KZ_LUA_ERROR;
    }
    for (int i = 0; i < H_COUNT; i++) {
        lua_getfield(L, -1, handler_names[i]);
        if (!lua_isfunction(L, -1)) {
            lua_pop(L, 1);
            err->code = 3;
            snprintf(err->message, sizeof err->message, "match module %s has no %s function", module,
                     handler_names[i]);
            return KZ_LUA_ERROR;
        }
        lua_pushcclosure(L, packed_call, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, handler_regs[i]);
    }
    return KZ_LUA_OK;
}

static int dispatcher_new(lua_State *L);

kz_ml_t *kz_ml_new(kz_db_t *db, kz_am_t *m, const char *module, kz_lua_error_t *err)
{
    char e[256];
    kz_lua_vm_t *vm = kz_lua_vm_new(db, e, sizeof e);
    if (!vm) {
        err->code = 13;
        snprintf(err->message, sizeof err->message, "cannot create the match's Lua state: %s", e);
        return NULL;
    }
    kz_ml_t *ml = kz_calloc(1, sizeof *ml);
    ml->vm = vm;
    ml->m = m;
    lua_State *L = vm->L;
    lua_pushcfunction(L, load_module);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_LOAD);
    lua_pushlightuserdata(L, m);
    lua_pushcclosure(L, dispatcher_new, 1);
    if (lua_pcall(L, 0, 1, 0) != 0) { /* only allocation can fail here */
        lua_pop(L, 1);
        err->code = 13;
        snprintf(err->message, sizeof err->message, "cannot create the match dispatcher");
        kz_ml_free(ml);
        return NULL;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, REG_DISPATCHER);

    kz_lua_ctx_t ctx = {.mode = "match_create"};
    kz_lua_vm_t *before = ml->vm;
    int rc = kz_lua_callback(&ml->vm, db, &ctx, REG_LOAD, push_name, take_module, (void *)module, err);
    if (ml->vm != before) { /* broke a budget: the runtime rebuilt the state */
        kz_lua_vm_free(ml->vm);
        ml->vm = NULL;
    }
    if (rc != KZ_LUA_OK) {
        if (rc == KZ_LUA_NOT_FOUND) {
            err->code = 13;
            snprintf(err->message, sizeof err->message, "match module %s could not be loaded", module);
        } else {
            char nf[300];
            snprintf(nf, sizeof nf, "module '%s' not found", module);
            if (!strstr(err->message, nf)) goto out;
            err->code = 5;
            snprintf(err->message, sizeof err->message, "match module not found: %s", module);
        }
    out:
        kz_ml_free(ml);
        return NULL;
    }
    return ml;
}

void kz_ml_free(kz_ml_t *ml)
{
    if (!ml) return;
    kz_lua_vm_free(ml->vm);
    kz_free(ml);
}

size_t kz_ml_memory(const kz_ml_t *ml) { return ml && ml->vm ? ml->vm->mem : 0; }

/* ------------------------------------------------------------------------ */
/* Calls                                                                    */

typedef struct call {
    int h; /* H_* */
    const kz_ml_info_t *info;
    int64_t tick;
    json_t *params, *metadata;
    const kz_ml_presence_t *p;
    int np;
    const kz_ml_msg_t *msgs;
    int nmsgs;
    int grace;
    const char *data;
    size_t len;
    /* results */
    bool stop;
    int tick_rate;
    char *label;
    bool accept;
    char *reason;
    char *result;
    size_t rlen;
} call_t;

static void set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v ? v : "");
    lua_setfield(L, -2, k);
}

static void push_presence(lua_State *L, const kz_ml_presence_t *p, bool reason)
{
    lua_createtable(L, 0, 5);
    set_str(L, "user_id", p->user_id);
    set_str(L, "session_id", p->session_id);
    set_str(L, "username", p->username);
    set_str(L, "node", kz_lua_config() ? kz_lua_config()->name : "kizuna");
    if (reason) {
        lua_pushinteger(L, p->reason);
        lua_setfield(L, -2, "reason");
    }
}

static int push_call_args(lua_State *L, void *arg)
{
    call_t *c = arg;
    /* The context table is on top: add the match's keys. */
    set_str(L, "match_id", c->info->match_id);
    set_str(L, "match_node", c->info->node);
    set_str(L, "match_label", c->info->label);
    lua_pushinteger(L, c->info->tick_rate);
    lua_setfield(L, -2, "match_tick_rate");
    if (c->h == H_INIT) {
        if (c->params)
            kz_lua_push_json(L, c->params);
        else
            lua_newtable(L);
        return 1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, REG_DISPATCHER);
    lua_pushnumber(L, (lua_Number)c->tick);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_STATE);
    switch (c->h) {
    case H_JOIN_ATTEMPT:
        push_presence(L, c->p, false);
        if (c->metadata)
            kz_lua_push_json(L, c->metadata);
        else
            lua_newtable(L);
        return 5;
    case H_JOIN:
    case H_LEAVE:
        lua_createtable(L, c->np, 0);
        for (int i = 0; i < c->np; i++) {
            push_presence(L, &c->p[i], true);
            lua_rawseti(L, -2, i + 1);
        }
        return 4;
    case H_LOOP:
        lua_createtable(L, c->nmsgs, 0);
        for (int i = 0; i < c->nmsgs; i++) {
            const kz_ml_msg_t *m = &c->msgs[i];
            lua_createtable(L, 0, 5);
            push_presence(L, &m->sender, false);
            lua_setfield(L, -2, "sender");
            lua_pushnumber(L, (lua_Number)m->op_code);
            lua_setfield(L, -2, "op_code");
            if (m->data) {
                lua_pushlstring(L, (const char *)m->data, m->len);
                lua_setfield(L, -2, "data");
            }
            lua_pushboolean(L, m->reliable);
            lua_setfield(L, -2, "reliable");
            lua_pushnumber(L, (lua_Number)m->receive_time_ms);
            lua_setfield(L, -2, "receive_time_ms");
            lua_rawseti(L, -2, i + 1);
        }
        return 4;
    case H_TERMINATE:
        lua_pushinteger(L, c->grace);
        return 4;
    case H_SIGNAL:
        lua_pushlstring(L, c->data ? c->data : "", c->data ? c->len : 0);
        return 4;
    default:
        return 3;
    }
}

static int bad_return(kz_lua_error_t *err, const char *fn, const char *what)
{
    err->code = 13;
    snprintf(err->message, sizeof err->message, "%s returned %s", fn, what);
    return KZ_LUA_ERROR;
}

/* The packed results on top (a table {n = count, ...}). */
static int take_call(lua_State *L, void *arg, kz_lua_error_t *err)
{
    call_t *c = arg;
    const char *fn = handler_names[c->h];
    if (!lua_istable(L, -1)) return bad_return(err, fn, "an unexpected value");
    lua_getfield(L, -1, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    int max = c->h == H_INIT || c->h == H_JOIN_ATTEMPT ? 3 : c->h == H_SIGNAL ? 2 : 1;
    if (n > max) return bad_return(err, fn, "too many values");
    lua_rawgeti(L, -1, 1);
    bool nil_state = lua_isnil(L, -1);
    if (c->h == H_INIT) {
        if (nil_state) {
            lua_pop(L, 1);
            return bad_return(err, fn, "no state (the match state must not be nil)");
        }
        lua_setfield(L, LUA_REGISTRYINDEX, REG_STATE);
        lua_rawgeti(L, -1, 2);
        lua_Number r = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
        if (r < 1 || r > 60 || r != (int)r) return bad_return(err, fn, "a tick rate that is not an integer from 1 to 60");
        c->tick_rate = (int)r;
        lua_rawgeti(L, -1, 3);
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            return bad_return(err, fn, "a label that is not a string");
        }
        size_t ll = 0;
        const char *l = lua_isnil(L, -1) ? "" : lua_tolstring(L, -1, &ll);
        if (ll > KZ_AM_LABEL_MAX || memchr(l, '\0', ll)) {
            lua_pop(L, 1);
            return bad_return(err, fn, "a label longer than 2048 bytes");
        }
        c->label = kz_strndup(l, ll);
        lua_pop(L, 1);
        return KZ_LUA_OK;
    }
    if (nil_state) {
        lua_pop(L, 1);
        c->stop = true;
    } else {
        lua_setfield(L, LUA_REGISTRYINDEX, REG_STATE);
    }
    if (c->h == H_JOIN_ATTEMPT) {
        lua_rawgeti(L, -1, 2);
        if (lua_type(L, -1) != LUA_TBOOLEAN && !c->stop) {
            lua_pop(L, 1);
            return bad_return(err, fn, "no boolean to accept or reject the join");
        }
        c->accept = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, -1, 3);
        if (lua_type(L, -1) == LUA_TSTRING) c->reason = kz_strdup(lua_tostring(L, -1));
        else if (!lua_isnil(L, -1)) {
            lua_pop(L, 1);
            return bad_return(err, fn, "a reject reason that is not a string");
        }
        lua_pop(L, 1);
    } else if (c->h == H_SIGNAL) {
        lua_rawgeti(L, -1, 2);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t n2;
            const char *s = lua_tolstring(L, -1, &n2);
            c->result = kz_strndup(s, n2);
            c->rlen = n2;
        } else if (!lua_isnil(L, -1)) {
            lua_pop(L, 1);
            return bad_return(err, fn, "a result that is not a string");
        }
        lua_pop(L, 1);
    }
    return KZ_LUA_OK;
}

static int run(kz_ml_t *ml, kz_db_t *db, call_t *c, kz_lua_error_t *err)
{
    if (!ml->vm) {
        err->code = 13;
        snprintf(err->message, sizeof err->message, "the match's Lua state is gone");
        return KZ_ML_ERROR;
    }
    kz_lua_ctx_t ctx = {.mode = "match"};
    if (c->h == H_JOIN_ATTEMPT) { /* the joining user, as Nakama's context has it */
        ctx.user_id = c->p->user_id;
        ctx.username = c->p->username;
        ctx.session_id = c->p->session_id;
    }
    kz_lua_vm_t *before = ml->vm;
    int rc = kz_lua_callback(&ml->vm, db, &ctx, handler_regs[c->h], push_call_args, take_call, c, err);
    if (ml->vm != before) {
        /* A broken budget: the runtime made a fresh state without the
         * match in it. The match cannot go on. */
        kz_lua_vm_free(ml->vm);
        ml->vm = NULL;
        if (rc == KZ_LUA_OK) {
            err->code = 13;
            snprintf(err->message, sizeof err->message, "the match's Lua state was discarded");
        }
        return KZ_ML_ERROR;
    }
    if (rc != KZ_LUA_OK) return KZ_ML_ERROR;
    return c->stop ? KZ_ML_STOP : KZ_ML_OK;
}

int kz_ml_init(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, json_t *params, int *tick_rate, char **label,
               kz_lua_error_t *err)
{
    call_t c = {.h = H_INIT, .info = info, .params = params};
    int rc = run(ml, db, &c, err);
    if (rc == KZ_ML_OK) {
        *tick_rate = c.tick_rate;
        *label = c.label;
    } else {
        kz_free(c.label);
    }
    return rc;
}

int kz_ml_join_attempt(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, const kz_ml_presence_t *p,
                       json_t *metadata, bool *accept, char **reason, kz_lua_error_t *err)
{
    call_t c = {.h = H_JOIN_ATTEMPT, .info = info, .tick = tick, .p = p, .metadata = metadata};
    int rc = run(ml, db, &c, err);
    *accept = rc == KZ_ML_OK && c.accept;
    *reason = c.reason;
    return rc;
}

int kz_ml_join(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, const kz_ml_presence_t *p, int n,
               bool leave, kz_lua_error_t *err)
{
    call_t c = {.h = leave ? H_LEAVE : H_JOIN, .info = info, .tick = tick, .p = p, .np = n};
    return run(ml, db, &c, err);
}

int kz_ml_loop(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, const kz_ml_msg_t *msgs, int n,
               kz_lua_error_t *err)
{
    call_t c = {.h = H_LOOP, .info = info, .tick = tick, .msgs = msgs, .nmsgs = n};
    return run(ml, db, &c, err);
}

int kz_ml_terminate(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, int grace_sec,
                    kz_lua_error_t *err)
{
    call_t c = {.h = H_TERMINATE, .info = info, .tick = tick, .grace = grace_sec};
    return run(ml, db, &c, err);
}

int kz_ml_signal(kz_ml_t *ml, kz_db_t *db, const kz_ml_info_t *info, int64_t tick, const char *data, size_t len,
                 char **result, size_t *rlen, kz_lua_error_t *err)
{
    call_t c = {.h = H_SIGNAL, .info = info, .tick = tick, .data = data, .len = len};
    int rc = run(ml, db, &c, err);
    *result = c.result;
    *rlen = c.rlen;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The dispatcher                                                           */

static kz_am_t *upmatch(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Field k of the table at idx as a string, or NULL. */
static const char *field_str(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive: the table holds it */
    return s;
}

/* The session ids of the presence tables in the array at idx (owned
 * array of borrowed strings). */
static const char **presence_ids(lua_State *L, int idx, int *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int len = (int)lua_objlen(L, idx);
    const char **ids = kz_calloc((size_t)len + 1, sizeof *ids);
    *n = 0;
    for (int i = 1; i <= len; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_istable(L, -1)) {
            const char *sid = field_str(L, lua_gettop(L), "session_id");
            if (sid) ids[(*n)++] = sid;
        }
        lua_pop(L, 1);
    }
    return ids;
}

static int broadcast(lua_State *L, bool deferred)
{
    kz_am_t *m = upmatch(L);
    lua_Number opn = luaL_checknumber(L, 1);
    if (opn != (lua_Number)(int64_t)opn) return luaL_error(L, "op_code must be an integer");
    size_t len = 0;
    const char *data = NULL;
    if (!lua_isnoneornil(L, 2)) data = luaL_checklstring(L, 2, &len);
    const char **ids = NULL;
    int n = 0;
    bool all = lua_isnoneornil(L, 3);
    if (!all) ids = presence_ids(L, 3, &n);
    kz_am_presence_ref_t sender = {0};
    bool has_sender = !lua_isnoneornil(L, 4);
    if (has_sender) {
        if (!lua_istable(L, 4)) {
            kz_free(ids);
            return luaL_error(L, "sender must be a presence table");
        }
        sender.user_id = field_str(L, 4, "user_id");
        sender.session_id = field_str(L, 4, "session_id");
        sender.username = field_str(L, 4, "username");
        char uid[37], sid[37];
        if (!sender.user_id || !sender.session_id || !sender.username ||
            !kz_match_uuid_parse(sender.user_id, strlen(sender.user_id), uid) ||
            !kz_match_uuid_parse(sender.session_id, strlen(sender.session_id), sid)) {
            kz_free(ids);
            return luaL_error(L, "sender must have a user_id, session_id and username");
        }
    }
    bool reliable = lua_isnoneornil(L, 5) ? true : lua_toboolean(L, 5);
    char err[160];
    int rc = kz_am_broadcast(m, (int64_t)opn, data, len, ids, n, all, has_sender ? &sender : NULL, reliable,
                             deferred, err, sizeof err);
    kz_free(ids);
    if (rc != 0) return luaL_error(L, "%s", err);
    return 0;
}

static int d_broadcast_message(lua_State *L) { return broadcast(L, false); }
static int d_broadcast_message_deferred(lua_State *L) { return broadcast(L, true); }

static int d_match_kick(lua_State *L)
{
    kz_am_t *m = upmatch(L);
    if (lua_isnoneornil(L, 1)) return 0;
    int n = 0;
    const char **ids = presence_ids(L, 1, &n);
    kz_am_kick(m, ids, n);
    kz_free(ids);
    return 0;
}

static int d_match_label_update(lua_State *L)
{
    kz_am_t *m = upmatch(L);
    size_t len;
    const char *label = luaL_checklstring(L, 1, &len);
    if (kz_am_label_update(m, label, len) != 0) return luaL_error(L, "label must be at most 2048 bytes");
    return 0;
}

static int dispatcher_new(lua_State *L)
{
    void *m = lua_touserdata(L, lua_upvalueindex(1));
    static const luaL_Reg fns[] = {
        {"broadcast_message", d_broadcast_message},
        {"broadcast_message_deferred", d_broadcast_message_deferred},
        {"match_kick", d_match_kick},
        {"match_label_update", d_match_label_update},
    };
    lua_createtable(L, 0, 4);
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        lua_pushlightuserdata(L, m);
        lua_pushcclosure(L, fns[i].func, 1);
        lua_setfield(L, -2, fns[i].name);
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* nk.match_*                                                               */

static int nk_match_create(lua_State *L)
{
    const char *module = luaL_checkstring(L, 1);
    if (!*module) kz_lua_raise(L, 3, "expects module name");
    json_t *params = NULL;
    if (!lua_isnoneornil(L, 2)) {
        if (!lua_istable(L, 2)) kz_lua_raise(L, 3, "expects params to be a table");
        char e[200];
        params = kz_lua_to_json(L, 2, e, sizeof e);
        if (!params) kz_lua_raise(L, 3, "params: %s", e);
        if (!json_is_object(params)) {
            json_decref(params);
            params = json_object(); /* an empty table (or a list) */
        }
    }
    kz_db_t *db = kz_lua_db(L);
    char id[128];
    kz_lua_error_t err;
    int rc = kz_am_create(db, module, params, id, &err);
    json_decref(params);
    if (rc != 0) kz_lua_raise(L, err.code, "%s", err.message);
    lua_pushstring(L, id);
    return 1;
}

static int nk_match_get(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    char uuid[37];
    const char *node;
    if (!kz_match_id_parse(id, uuid, &node)) kz_lua_raise(L, 3, "expects a valid match id");
    json_t *m = kz_am_get_json(id);
    if (!m) {
        lua_pushnil(L);
        return 1;
    }
    kz_lua_push_json(L, m);
    json_decref(m);
    return 1;
}

static int opt_int(lua_State *L, int idx, int def, const char *what)
{
    if (lua_isnoneornil(L, idx)) return def;
    if (!lua_isnumber(L, idx)) kz_lua_raise(L, 3, "expects %s to be a number", what);
    lua_Number v = lua_tonumber(L, idx);
    if (v != (int)v) kz_lua_raise(L, 3, "expects %s to be an integer", what);
    return (int)v;
}

static int nk_match_list(lua_State *L)
{
    kz_am_filter_t f = {.limit = opt_int(L, 1, 1, "limit"), .authoritative = -1, .min_size = -1, .max_size = -1};
    if (!lua_isnoneornil(L, 2)) f.authoritative = lua_toboolean(L, 2) ? 1 : 0;
    f.label = kz_lua_optstr(L, 3, NULL);
    f.min_size = opt_int(L, 4, -1, "min_size");
    f.max_size = opt_int(L, 5, -1, "max_size");
    f.query = kz_lua_optstr(L, 6, NULL);
    if (f.limit < 1 || f.limit > 100) kz_lua_raise(L, 3, "expects limit to be 1-100");
    if (f.min_size < -1 || f.max_size < -1) kz_lua_raise(L, 3, "expects sizes to be >= 0");
    if (f.min_size >= 0 && f.max_size >= 0 && f.min_size > f.max_size)
        kz_lua_raise(L, 3, "expects max_size to be >= min_size");
    char err[200];
    json_t *list = kz_match_list(&f, err, sizeof err);
    if (!list) kz_lua_raise(L, 3, "%s", err);
    lua_createtable(L, (int)json_array_size(list), 0);
    for (size_t i = 0; i < json_array_size(list); i++) {
        kz_lua_push_json(L, json_array_get(list, i));
        lua_rawseti(L, -2, (int)i + 1);
    }
    json_decref(list);
    return 1;
}

static int nk_match_signal(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    size_t len = 0;
    const char *data = lua_isnoneornil(L, 2) ? "" : luaL_checklstring(L, 2, &len);
    char uuid[37];
    const char *node;
    if (!kz_match_id_parse(id, uuid, &node) || !*node) kz_lua_raise(L, 3, "expects a valid match id");
    const kz_config_t *cfg = kz_lua_config();
    int timeout = cfg ? cfg->runtime.lua_call_timeout_ms : 10000;
    char *result = NULL;
    size_t rlen = 0;
    kz_lua_error_t err;
    if (kz_am_signal(id, data, len, timeout, &result, &rlen, &err) != 0) kz_lua_raise(L, err.code, "%s", err.message);
    if (result)
        lua_pushlstring(L, result, rlen);
    else
        lua_pushliteral(L, "");
    kz_free(result);
    return 1;
}

void kz_nk_open_match(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"match_create", nk_match_create},
        {"match_get", nk_match_get},
        {"match_list", nk_match_list},
        {"match_signal", nk_match_signal},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
