/* Lua <-> JSON, errors and argument helpers for the nk functions. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "lua/internal.h"

enum { MAX_DEPTH = 64, MAX_NODES = 1000000 };

/* What one conversion may produce: it runs in C, outside the count hook
 * and the state's allocator, so it has budgets of its own (shared
 * subtables would otherwise expand exponentially). */
typedef struct budget {
    size_t nodes, bytes, max_bytes;
} budget_t;

/* A table is an array when its keys are exactly 1..n (n > 0). */
static size_t array_length(lua_State *L, int idx)
{
    size_t n = lua_objlen(L, idx), count = 0;
    if (n == 0) return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Number k = lua_tonumber(L, -1);
        if (k < 1 || k > (lua_Number)n || k != floor(k)) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n ? n : 0;
}

static json_t *to_json(lua_State *L, int idx, int depth, budget_t *b, char *err, size_t errlen)
{
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    if (++b->nodes > MAX_NODES) {
        snprintf(err, errlen, "more than %d values", MAX_NODES);
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        lua_Number d = lua_tonumber(L, idx);
        if (d == floor(d) && d >= -9007199254740992.0 && d <= 9007199254740992.0)
            return json_integer((json_int_t)d);
        if (isnan(d) || isinf(d)) {
            snprintf(err, errlen, "a number that JSON cannot hold");
            return NULL;
        }
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        b->bytes += n;
        if (b->bytes > b->max_bytes) {
            snprintf(err, errlen, "more than %zu MiB of text", b->max_bytes >> 20);
            return NULL;
        }
        json_t *j = json_stringn(s, n);
        if (!j) snprintf(err, errlen, "a string that is not valid UTF-8");
        return j;
    }
    case LUA_TTABLE: break;
    default: snprintf(err, errlen, "a %s, which JSON cannot hold", luaL_typename(L, idx)); return NULL;
    }
    if (depth >= MAX_DEPTH) {
        snprintf(err, errlen, "tables nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    luaL_checkstack(L, 4, "JSON conversion");
    size_t n = array_length(L, idx);
    if (n) {
        json_t *a = json_array();
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (int)i);
            json_t *v = to_json(L, -1, depth + 1, b, err, errlen);
            lua_pop(L, 1);
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    json_t *o = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char kbuf[64];
        const char *k;
        if (lua_type(L, -2) == LUA_TSTRING) {
            k = lua_tostring(L, -2);
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
            lua_Number d = lua_tonumber(L, -2);
            if (d == floor(d) && fabs(d) < 1e15)
                snprintf(kbuf, sizeof kbuf, "%lld", (long long)d);
            else
                snprintf(kbuf, sizeof kbuf, "%.17g", d);
            k = kbuf;
        } else {
            snprintf(err, errlen, "a table key of type %s", luaL_typename(L, -2));
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        json_t *v = to_json(L, -1, depth + 1, b, err, errlen);
        if (!v) {
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        if (json_object_set_new(o, k, v) != 0) {
            snprintf(err, errlen, "a table key that is not valid UTF-8");
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return o;
}

json_t *kz_lua_to_json(lua_State *L, int idx, char *err, size_t errlen)
{
    budget_t b = {.max_bytes = kz_lua_self(L)->mem_limit};
    return to_json(L, idx, 0, &b, err, errlen);
}

void kz_lua_push_json(lua_State *L, const json_t *v)
{
    luaL_checkstack(L, 3, "JSON conversion");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if (json_is_null(e)) continue;
            kz_lua_push_json(L, e);
            lua_setfield(L, -2, k);
        }
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            kz_lua_push_json(L, json_array_get(v, i));
            lua_rawseti(L, -2, (int)i + 1);
        }
        return;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); return;
    case JSON_INTEGER: lua_pushnumber(L, (lua_Number)json_integer_value(v)); return;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); return;
    case JSON_TRUE: lua_pushboolean(L, 1); return;
    case JSON_FALSE: lua_pushboolean(L, 0); return;
    case JSON_NULL: lua_pushnil(L); return;
    }
}

int kz_lua_raise(lua_State *L, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kz_lua_vm_t *vm = kz_lua_self(L);
    vm->raised_code = code;
    snprintf(vm->raised, sizeof vm->raised, "%s", msg);
    lua_pushstring(L, vm->raised);
    lua_error(L);
    __builtin_unreachable();
}

int kz_lua_raise_store(lua_State *L, int rc)
{
    kz_lua_vm_t *vm = kz_lua_self(L);
    const char *m = vm->db ? kz_db_errmsg(vm->db) : "";
    if (rc == KZ_DB_EBUSY) kz_lua_raise(L, 14, "Database is busy, try again.");
    kz_lua_raise(L, 13, "store error: %s", m && *m ? m : "internal error");
}

const char *kz_lua_optstr(lua_State *L, int idx, const char *def)
{
    if (lua_isnoneornil(L, idx)) return def;
    return luaL_checkstring(L, idx);
}

bool kz_lua_optbool(lua_State *L, int idx, bool def)
{
    if (lua_isnoneornil(L, idx)) return def;
    luaL_checktype(L, idx, LUA_TBOOLEAN);
    return lua_toboolean(L, idx);
}

char *kz_lua_opt_json_text(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    char err[200];
    json_t *j = kz_lua_to_json(L, idx, err, sizeof err);
    if (!j) {
        luaL_error(L, "cannot encode argument %d as JSON: %s", idx, err);
        return NULL;
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}
