/* nk storage functions: storage_read, storage_write, storage_list,
 * storage_delete. The runtime acts as the server: it reads, writes and
 * deletes any user's objects regardless of permissions (a nil or "" user_id
 * means the system user), and storage_list takes an optional caller whose
 * permissions then apply. Objects are Nakama's Lua tables: {collection,
 * key, user_id, value (table), version, permission_read, permission_write,
 * create_time, update_time (unix seconds)}. */
#include <string.h>

#include "api/cursor.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "lua/nk_store.h"
#include "store/storage.h"

#define MSG_BAD_CURSOR "Malformed cursor was used."

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* Checks that the argument at idx is an array of tables (its elements are
 * read with field_* below) and returns its length. */
static int object_array(lua_State *L, int idx, const char *what)
{
    if (!lua_istable(L, idx)) kz_lua_raise(L, KZ_NK_INVALID, "expects a table of %s", what);
    size_t n = lua_objlen(L, idx), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        keys++;
        if (!lua_istable(L, -1)) kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of %s", what);
        lua_pop(L, 1);
    }
    if (keys != n || n > 10000) kz_lua_raise(L, KZ_NK_INVALID, "expects an array of %s", what);
    return (int)n;
}

/* String field name of the table at t: NULL when nil. Only real strings
 * are taken (the pointer stays valid because the table, reachable from an
 * argument, keeps the string). */
static const char *field_str(lua_State *L, int t, const char *name)
{
    lua_getfield(L, t, name);
    const char *s = NULL;
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1))
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a string", name);
    lua_pop(L, 1);
    return s;
}

/* Collection and key of the table at t: set and at most 128 bytes. */
static void field_names(lua_State *L, int t, const char **collection, const char **key)
{
    *collection = field_str(L, t, "collection");
    *key = field_str(L, t, "key");
    if (!*collection || !**collection)
        kz_lua_raise(L, KZ_NK_INVALID, "expects collection to be a non-empty string");
    if (!*key || !**key) kz_lua_raise(L, KZ_NK_INVALID, "expects key to be a non-empty string");
    if (strlen(*collection) > KZ_STORAGE_NAME_MAX || strlen(*key) > KZ_STORAGE_NAME_MAX)
        kz_lua_raise(L, KZ_NK_INVALID, "expects collection and key to be at most %d bytes",
                     KZ_STORAGE_NAME_MAX);
}

/* The owner of the table at t into out: its user_id, or the system user
 * when nil or "". */
static void field_owner(lua_State *L, int t, char out[37])
{
    const char *u = field_str(L, t, "user_id");
    if (!u || !*u) {
        memcpy(out, KZ_UUID_NIL, 37);
        return;
    }
    if (!kz_nk_uuid_copy(u, strlen(u), out))
        kz_lua_raise(L, KZ_NK_INVALID, "expects user_id to be a valid ID");
}

/* An optional integer permission field within lo..hi. */
static int field_permission(lua_State *L, int t, const char *name, int def, int hi)
{
    lua_getfield(L, t, name);
    int v = def;
    if (!lua_isnil(L, -1)) {
        lua_Number d = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
        if (d < 0 || d > hi || d != (int)d)
            kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be an integer from 0 to %d", name, hi);
        v = (int)d;
    }
    lua_pop(L, 1);
    return v;
}

/* Checks that every non-system owner among owners[0..n) exists. */
static void owners_must_exist(lua_State *L, char (*owners)[37], int n)
{
    int top = lua_gettop(L);
    char **ids = kz_nk_scratch(L, sizeof(char *) * (size_t)(n ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(owners[i], KZ_UUID_NIL) == 0) continue;
        bool seen = false;
        for (int j = 0; j < m && !seen; j++)
            seen = strcmp(ids[j], owners[i]) == 0;
        if (!seen) ids[m++] = owners[i];
    }
    if (m > 0) {
        kz_db_t *db = kz_lua_db(L);
        kz_nk_guard_t *g = kz_nk_guard(L);
        kz_user_t *users = NULL;
        int found = 0;
        int rc = kz_store_users_get(db, ids, m, NULL, 0, &users, &found);
        if (rc != KZ_DB_OK) kz_lua_raise_store(L, rc);
        g->p = users;
        g->n = found;
        g->fn = kz_nk_free_users;
        char missing[37] = "";
        for (int j = 0; j < m && !*missing; j++) {
            bool hit = false;
            for (int k = 0; k < found && !hit; k++)
                hit = strcmp(users[k].id, ids[j]) == 0;
            if (!hit) memcpy(missing, ids[j], 37);
        }
        kz_nk_guard_done(g);
        if (*missing) kz_lua_raise(L, KZ_NK_NOT_FOUND, "User account not found: %s.", missing);
    }
    lua_settop(L, top);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

static void push_object(lua_State *L, const kz_storage_object_t *o)
{
    lua_createtable(L, 0, 9);
    kz_nk_set_str0(L, "collection", o->collection);
    kz_nk_set_str0(L, "key", o->key);
    kz_nk_set_str0(L, "user_id", o->user_id);
    kz_nk_set_str0(L, "version", o->version);
    kz_nk_set_num(L, "permission_read", o->permission_read);
    kz_nk_set_num(L, "permission_write", o->permission_write);
    kz_nk_set_num(L, "create_time", (double)(o->create_time / 1000));
    kz_nk_set_num(L, "update_time", (double)(o->update_time / 1000));
    kz_nk_push_json_text(L, o->value);
    lua_setfield(L, -2, "value");
}

static void free_objects(void *p, int n)
{
    kz_storage_objects_free(p, n);
}

/* Pushes the array of objs[0..n) (owned by g, freed here). */
static void push_objects(lua_State *L, kz_nk_guard_t *g, kz_storage_object_t *objs, int n)
{
    g->p = objs;
    g->n = n;
    g->fn = free_objects;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_object(L, &objs[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* ------------------------------------------------------------------------ */
/* The functions                                                            */

/* storage_read(object_ids) -> objects: those that exist, in request order. */
static int nk_storage_read(lua_State *L)
{
    lua_settop(L, 1);
    int n = object_array(L, 1, "object IDs");
    kz_storage_id_t *ids = kz_nk_scratch(L, sizeof *ids * (size_t)(n ? n : 1));
    char(*owners)[37] = kz_nk_scratch(L, 37 * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        int t = lua_gettop(L);
        field_names(L, t, &ids[i].collection, &ids[i].key);
        field_owner(L, t, owners[i]);
        ids[i].user_id = owners[i];
        lua_pop(L, 1);
    }
    kz_db_t *db = kz_lua_db(L);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_storage_object_t *objs = NULL;
    int nobjs = 0;
    int rc = n ? kz_store_storage_read(db, NULL, ids, n, &objs, &nobjs) : KZ_DB_OK;
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    push_objects(L, g, objs, nobjs);
    kz_nk_guard_done(g);
    return 1;
}

/* storage_write(objects) -> acks {collection, key, user_id, version}: all
 * written in one transaction, or none (a version check that fails). */
static int nk_storage_write(lua_State *L)
{
    lua_settop(L, 1);
    int n = object_array(L, 1, "objects");
    kz_storage_write_t *w = kz_nk_scratch(L, sizeof *w * (size_t)(n ? n : 1));
    char(*owners)[37] = kz_nk_scratch(L, 37 * (size_t)(n ? n : 1));
    lua_createtable(L, n, 0); /* keeps the JSON texts of the values */
    int values = lua_gettop(L);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        int t = lua_gettop(L);
        kz_storage_write_t *o = &w[i];
        field_names(L, t, &o->collection, &o->key);
        field_owner(L, t, owners[i]);
        o->user_id = owners[i];
        o->version = field_str(L, t, "version");
        if (o->version && !*o->version)
            return kz_lua_raise(L, KZ_NK_INVALID, "expects version to be a non-empty string");
        o->permission_read = field_permission(L, t, "permission_read", 1, 2);
        o->permission_write = field_permission(L, t, "permission_write", 1, 1);
        lua_getfield(L, t, "value");
        if (!lua_istable(L, -1))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects value to be a table");
        o->value = kz_nk_json_object_arg(L, lua_gettop(L), "value");
        lua_rawseti(L, values, i + 1); /* `values` keeps the text alive */
        lua_pop(L, 2);                 /* the value table and the object */
    }
    owners_must_exist(L, owners, n);
    kz_db_t *db = kz_lua_db(L);
    kz_storage_ack_t *acks = kz_nk_scratch(L, sizeof *acks * (size_t)(n ? n : 1));
    int rc = n ? kz_store_storage_write(db, w, n, true, kz_now_ms(), acks, NULL) : KZ_DB_OK;
    if (rc == KZ_STORAGE_REJECT_VERSION)
        return kz_lua_raise(L, KZ_NK_INVALID, "Storage write rejected - version check failed.");
    if (rc == KZ_STORAGE_REJECT_PERMISSION)
        return kz_lua_raise(L, KZ_NK_INVALID, "Storage write rejected - permission denied.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        kz_nk_set_str0(L, "collection", w[i].collection);
        kz_nk_set_str0(L, "key", w[i].key);
        kz_nk_set_str0(L, "user_id", w[i].user_id);
        kz_nk_set_str0(L, "version", acks[i].version);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* storage_delete(object_ids): all in one transaction; a version that does
 * not match rejects the whole batch. */
static int nk_storage_delete(lua_State *L)
{
    lua_settop(L, 1);
    int n = object_array(L, 1, "object IDs");
    kz_storage_id_t *ids = kz_nk_scratch(L, sizeof *ids * (size_t)(n ? n : 1));
    char(*owners)[37] = kz_nk_scratch(L, 37 * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        int t = lua_gettop(L);
        field_names(L, t, &ids[i].collection, &ids[i].key);
        field_owner(L, t, owners[i]);
        ids[i].user_id = owners[i];
        ids[i].version = field_str(L, t, "version");
        if (ids[i].version && !*ids[i].version)
            return kz_lua_raise(L, KZ_NK_INVALID, "expects version to be a non-empty string");
        lua_pop(L, 1);
    }
    if (n == 0) return 0;
    int rc = kz_store_storage_delete(kz_lua_db(L), ids, n, true, NULL);
    if (rc == KZ_STORAGE_REJECT_DELETE)
        return kz_lua_raise(
            L, KZ_NK_INVALID,
            "Storage delete rejected - not found, version check failed, or permission denied.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* storage_list(user_id?, collection, limit?=100, cursor?, caller_id?) ->
 * objects, cursor (nil at the end). user_id nil or "" lists every owner's
 * objects; caller_id nil or "" lists as the server (no permission checks),
 * else what that user may read. Cursors are those of GET /v2/storage. */
static int nk_storage_list(lua_State *L)
{
    lua_settop(L, 5);
    char owner[37] = "", caller[37] = "";
    kz_nk_optuuid(L, 1, "user ID", owner);
    const char *collection = kz_nk_optstr(L, 2, "collection");
    if (!collection || !*collection)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects collection to be a non-empty string");
    if (strlen(collection) > KZ_STORAGE_NAME_MAX)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects collection to be at most %d bytes",
                            KZ_STORAGE_NAME_MAX);
    int limit = (int)kz_nk_optint(L, 3, "limit", 100, 0, 1000);
    if (limit == 0) limit = 100;
    const char *cursor = kz_nk_optstr(L, 4, "cursor");
    kz_nk_optuuid(L, 5, "caller ID", caller);
    /* The position a cursor carries: the last (key, owner) shown. */
    char kbuf[KZ_STORAGE_NAME_MAX + 1], obuf[37];
    const char *after_key = NULL, *after_user = NULL;
    if (cursor && *cursor) {
        json_t *pos = kz_cursor_decode(cursor);
        const char *c = json_string_value(json_object_get(pos, "c"));
        const char *u = json_string_value(json_object_get(pos, "u"));
        const char *k = json_string_value(json_object_get(pos, "k"));
        const char *o = json_string_value(json_object_get(pos, "o"));
        bool ok = c && u && k && o && strcmp(c, collection) == 0 && strcmp(u, owner) == 0 &&
                  strlen(k) <= KZ_STORAGE_NAME_MAX && strlen(o) <= 36;
        if (ok) {
            memcpy(kbuf, k, strlen(k) + 1);
            memcpy(obuf, o, strlen(o) + 1);
            after_key = kbuf;
            after_user = obuf;
        }
        json_decref(pos);
        if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, MSG_BAD_CURSOR);
    }
    kz_db_t *db = kz_lua_db(L);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_storage_object_t *objs = NULL;
    int n = 0;
    bool more = false;
    int rc = kz_store_storage_list(db, *caller ? caller : NULL, *owner ? owner : NULL, collection,
                                   limit, after_key, after_user, &objs, &n, &more);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    push_objects(L, g, objs, n);
    if (more && n > 0) {
        const kz_storage_object_t *last = &objs[n - 1];
        char *next = kz_cursor_encode(json_pack("{s:s, s:s, s:s, s:s}", "c", collection, "u", owner,
                                                "k", last->key, "o", last->user_id));
        kz_nk_guard_done(g); /* objs is done with; g now holds the cursor */
        g->p = next;
        g->fn = kz_nk_free_kz;
        lua_pushstring(L, next);
    } else {
        lua_pushnil(L);
    }
    kz_nk_guard_done(g);
    return 2;
}

void kz_nk_open_storage(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"storage_read", nk_storage_read},
        {"storage_write", nk_storage_write},
        {"storage_delete", nk_storage_delete},
        {"storage_list", nk_storage_list},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
