/* Helpers of the nk functions over the store: see lua/nk_store.h. */
#include "lua/nk_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/uuid.h"
#include "realtime/router.h"

#define GUARD_META "kizuna.nk.guard"

/* ------------------------------------------------------------------------ */
/* Arguments                                                                */

const char *kz_nk_str(lua_State *L, int idx, const char *what, size_t *len)
{
    if (lua_type(L, idx) != LUA_TSTRING && lua_type(L, idx) != LUA_TNUMBER)
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a string", what);
    return lua_tolstring(L, idx, len);
}

const char *kz_nk_optstr(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    return kz_nk_str(L, idx, what, NULL);
}

bool kz_nk_optbool(lua_State *L, int idx, const char *what, bool def)
{
    if (lua_isnoneornil(L, idx)) return def;
    if (lua_type(L, idx) != LUA_TBOOLEAN)
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a boolean", what);
    return lua_toboolean(L, idx);
}

int64_t kz_nk_optint(lua_State *L, int idx, const char *what, int64_t def, int64_t lo, int64_t hi)
{
    if (lua_isnoneornil(L, idx)) return def;
    if (lua_type(L, idx) != LUA_TNUMBER)
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a number", what);
    lua_Number d = lua_tonumber(L, idx);
    if (d != floor(d) || d < (lua_Number)lo || d > (lua_Number)hi)
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a whole number from %lld to %lld", what,
                     (long long)lo, (long long)hi);
    return (int64_t)d;
}

bool kz_nk_opttable(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx)) return false;
    if (!lua_istable(L, idx)) kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a table", what);
    return true;
}

bool kz_nk_uuid_copy(const char *s, size_t len, char out[37])
{
    if (!s || !kz_uuid_valid(s, len)) return false;
    for (size_t i = 0; i < 36; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    out[36] = '\0';
    return true;
}

void kz_nk_uuid(lua_State *L, int idx, const char *what, char out[37])
{
    size_t len;
    const char *s = kz_nk_str(L, idx, what, &len);
    if (!kz_nk_uuid_copy(s, len, out))
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a valid identifier", what);
}

bool kz_nk_optuuid(lua_State *L, int idx, const char *what, char out[37])
{
    out[0] = '\0';
    const char *s = kz_nk_optstr(L, idx, what);
    if (!s || !*s) return false;
    if (!kz_nk_uuid_copy(s, strlen(s), out))
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a valid identifier", what);
    return true;
}

static void free_malloced(void *p, int n)
{
    (void)n;
    free(p);
}

const char *kz_nk_json_object_arg(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    if (!lua_istable(L, idx)) kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a table", what);
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    kz_nk_guard_t *g = kz_nk_guard(L);
    char err[200];
    json_t *j = kz_lua_to_json(L, idx, err, sizeof err);
    if (!j) kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a table JSON can hold: %s", what, err);
    if (!json_is_object(j)) {
        json_decref(j);
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a table of key-value pairs", what);
    }
    g->p = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    g->fn = free_malloced;
    json_decref(j);
    if (!g->p) kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a table JSON can hold", what);
    lua_pushstring(L, g->p);
    kz_nk_guard_done(g);
    lua_remove(L, -2); /* the guard */
    return lua_tostring(L, -1);
}

char **kz_nk_strings_arg(lua_State *L, int idx, const char *what, bool uuids, int *n)
{
    *n = 0;
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return NULL;
    }
    if (!lua_istable(L, idx))
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a table of strings", what);
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    size_t count = lua_objlen(L, idx), keys = 0, bytes = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        keys++;
        lua_pop(L, 1);
    }
    if (keys != count || count > 100000)
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be an array of strings", what);
    for (size_t i = 1; i <= count; i++) {
        lua_rawgeti(L, idx, (int)i);
        size_t len = 0;
        if (lua_type(L, -1) != LUA_TSTRING)
            kz_lua_raise(L, KZ_NK_INVALID, "expects each of %s to be a string", what);
        lua_tolstring(L, -1, &len);
        lua_pop(L, 1);
        if (len == 0)
            kz_lua_raise(L, KZ_NK_INVALID, "expects each of %s to be a non-empty string", what);
        bytes += uuids ? 37 : len + 1;
    }
    char **v = kz_nk_scratch(L, sizeof(char *) * (count ? count : 1) + bytes);
    char *p = (char *)(v + (count ? count : 1));
    for (size_t i = 1; i <= count; i++) {
        lua_rawgeti(L, idx, (int)i);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (uuids) {
            if (!kz_nk_uuid_copy(s, len, p) || strcmp(p, KZ_UUID_NIL) == 0)
                kz_lua_raise(L, KZ_NK_INVALID, "expects each of %s to be a valid identifier", what);
            v[i - 1] = p;
            p += 37;
        } else {
            memcpy(p, s, len + 1);
            v[i - 1] = p;
            p += len + 1;
        }
        lua_pop(L, 1);
    }
    *n = (int)count;
    return v;
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                   */

void *kz_nk_scratch(lua_State *L, size_t n)
{
    return lua_newuserdata(L, n ? n : 1);
}

static int guard_gc(lua_State *L)
{
    kz_nk_guard_t *g = lua_touserdata(L, 1);
    kz_nk_guard_done(g);
    return 0;
}

kz_nk_guard_t *kz_nk_guard(lua_State *L)
{
    return kz_nk_guard_with(L, 0);
}

kz_nk_guard_t *kz_nk_guard_with(lua_State *L, size_t size)
{
    kz_nk_guard_t *g = lua_newuserdata(L, sizeof *g + size);
    memset(g, 0, sizeof *g + size);
    if (luaL_newmetatable(L, GUARD_META)) {
        lua_pushcfunction(L, guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return g;
}

void kz_nk_guard_done(kz_nk_guard_t *g)
{
    if (g && g->p && g->fn) g->fn(g->p, g->n);
    if (g) *g = (kz_nk_guard_t){0};
}

void kz_nk_free_users(void *p, int n)
{
    kz_user_t *u = p;
    for (int i = 0; i < n; i++)
        kz_user_clear(&u[i]);
    kz_free(u);
}

void kz_nk_free_user(void *p, int n)
{
    (void)n;
    kz_user_clear(p);
}

void kz_nk_free_groups(void *p, int n)
{
    kz_groups_free(p, n);
}

void kz_nk_free_strings(void *p, int n)
{
    kz_store_strings_free(p, n);
}

void kz_nk_free_kz(void *p, int n)
{
    (void)n;
    kz_free(p);
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

void kz_nk_free_json(void *p, int n)
{
    (void)n;
    json_decref(p);
}

void kz_nk_free_group(void *p, int n)
{
    (void)n;
    kz_group_clear(p);
}

void kz_nk_push_json_text(lua_State *L, const char *s)
{
    if (!s || !*s) {
        lua_newtable(L);
        return;
    }
    kz_nk_guard_t *g = kz_nk_guard(L);
    json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
    if (!j || json_is_null(j)) {
        json_decref(j);
        lua_pop(L, 1);
        lua_newtable(L);
        return;
    }
    g->p = j;
    g->fn = kz_nk_free_json;
    kz_lua_push_json(L, j);
    kz_nk_guard_done(g);
    lua_remove(L, -2);
}

void kz_nk_set_str(lua_State *L, const char *k, const char *v)
{
    if (!v || !*v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void kz_nk_set_str0(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v ? v : "");
    lua_setfield(L, -2, k);
}

void kz_nk_set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

void kz_nk_set_bool(lua_State *L, const char *k, bool v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

bool kz_nk_user_online(const char *user_id)
{
    kz_rt_sess_t **sessions;
    int n = kz_rt_user_sessions(user_id, &sessions);
    for (int i = 0; i < n; i++)
        kz_rt_sess_release(sessions[i]);
    kz_free(sessions);
    return n > 0;
}

void kz_nk_set_user_fields(lua_State *L, const kz_user_t *u)
{
    kz_nk_set_str0(L, "user_id", u->id);
    kz_nk_set_str0(L, "username", u->username);
    kz_nk_set_str0(L, "display_name", u->display_name);
    kz_nk_set_str0(L, "avatar_url", u->avatar_url);
    kz_nk_set_str0(L, "lang_tag", u->lang_tag);
    kz_nk_set_str0(L, "location", u->location);
    kz_nk_set_str0(L, "timezone", u->timezone);
    kz_nk_set_str(L, "apple_id", u->apple_id);
    kz_nk_set_str(L, "facebook_id", u->facebook_id);
    kz_nk_set_str(L, "facebook_instant_game_id", u->facebook_instant_game_id);
    kz_nk_set_str(L, "google_id", u->google_id);
    kz_nk_set_str(L, "gamecenter_id", u->gamecenter_id);
    kz_nk_set_str(L, "steam_id", u->steam_id);
    kz_nk_set_bool(L, "online", kz_nk_user_online(u->id));
    kz_nk_set_num(L, "edge_count", (double)u->edge_count);
    kz_nk_set_num(L, "create_time", (double)(u->create_time / 1000));
    kz_nk_set_num(L, "update_time", (double)(u->update_time / 1000));
    kz_nk_push_json_text(L, u->metadata);
    lua_setfield(L, -2, "metadata");
}

void kz_nk_push_user(lua_State *L, const kz_user_t *u)
{
    lua_createtable(L, 0, 18);
    kz_nk_set_user_fields(L, u);
}

void kz_nk_push_group(lua_State *L, const kz_group_t *g)
{
    lua_createtable(L, 0, 12);
    kz_nk_set_str0(L, "id", g->id);
    kz_nk_set_str0(L, "creator_id", g->creator_id);
    kz_nk_set_str0(L, "name", g->name);
    kz_nk_set_str0(L, "description", g->description);
    kz_nk_set_str0(L, "avatar_url", g->avatar_url);
    kz_nk_set_str0(L, "lang_tag", g->lang_tag);
    kz_nk_set_bool(L, "open", g->open);
    kz_nk_set_num(L, "edge_count", (double)g->edge_count);
    kz_nk_set_num(L, "max_count", (double)g->max_count);
    kz_nk_set_num(L, "create_time", (double)(g->create_time / 1000));
    kz_nk_set_num(L, "update_time", (double)(g->update_time / 1000));
    kz_nk_push_json_text(L, g->metadata);
    lua_setfield(L, -2, "metadata");
}

void kz_nk_user_must_exist(lua_State *L, const char *user_id)
{
    kz_db_t *db = kz_lua_db(L);
    kz_user_t u;
    int rc = kz_store_user_find(db, KZ_ID_USER, user_id, &u);
    if (rc == KZ_DB_OK) {
        kz_user_clear(&u);
        return;
    }
    if (rc == KZ_STORE_NOTFOUND) kz_lua_raise(L, KZ_NK_NOT_FOUND, "User account not found.");
    kz_lua_raise_store(L, rc);
}
