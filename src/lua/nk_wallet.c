/* nk wallet functions: wallet_update, wallets_update, wallet_ledger_list.
 *
 * A wallet is an object of integer balances (users.wallet, shown by GET
 * /v2/account). A changeset adds integers to it; a balance that would go
 * below zero fails the whole call with FailedPrecondition and changes
 * nothing (store/wallet.h). Ledger entries are {id, user_id, create_time,
 * update_time (unix seconds), changeset, metadata}. */
#include <math.h>
#include <string.h>

#include "api/cursor.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "lua/nk_store.h"
#include "store/wallet.h"

/* Largest magnitude of a changeset value: integers a Lua number holds exactly. */
#define MAX_DELTA 9007199254740992.0

/* Checks that the table at idx is a changeset (string keys, whole-number
 * values) and pushes its JSON text; returns it. */
static const char *changeset_arg(lua_State *L, int idx, const char *what)
{
    if (!lua_istable(L, idx)) kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be a table", what);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            kz_lua_raise(L, KZ_NK_INVALID, "expects %s keys to be strings", what);
        lua_Number d = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : NAN;
        if (!(d == floor(d) && fabs(d) <= MAX_DELTA))
            kz_lua_raise(L, KZ_NK_INVALID, "expects %s values to be whole numbers", what);
        if (lua_objlen(L, -2) > 128)
            kz_lua_raise(L, KZ_NK_INVALID, "expects %s keys to be at most 128 bytes", what);
        lua_pop(L, 1);
    }
    return kz_nk_json_object_arg(L, idx, what);
}

/* Raises for a failed update batch. */
static int raise_update(lua_State *L, int rc, const kz_wallet_error_t *err,
                        const kz_wallet_update_t *u)
{
    const char *who = err->index >= 0 ? u[err->index].user_id : "";
    switch (rc) {
    case KZ_STORE_NOTFOUND:
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, "User account not found: %s.", who);
    case KZ_WALLET_ENEGATIVE:
        return kz_lua_raise(L, KZ_NK_PRECONDITION,
                            "Wallet update rejected: negative balance for '%s' of user %s.",
                            err->key, who);
    case KZ_WALLET_EINVALID:
        if (*err->key)
            return kz_lua_raise(L, KZ_NK_INVALID,
                                "Wallet update rejected: balance '%s' of user %s out of range.",
                                err->key, who);
        return kz_lua_raise(L, KZ_NK_INTERNAL, "Wallet of user %s is not an object of integers.",
                            who);
    default:
        return kz_lua_raise_store(L, rc);
    }
}

static void free_results(void *p, int n)
{
    kz_wallet_results_free(p, n);
}

/* Runs u[0..n) with the results in a guard pushed on top; raises on
 * failure. */
static kz_wallet_result_t *run_updates(lua_State *L, const kz_wallet_update_t *u, int n,
                                       bool ledger)
{
    kz_nk_guard_t *g = kz_nk_guard_with(L, sizeof(kz_wallet_result_t) * (size_t)(n ? n : 1));
    kz_wallet_result_t *res = kz_nk_guard_mem(g);
    kz_wallet_error_t err;
    int rc = kz_store_wallet_update(kz_lua_db(L), u, n, ledger, kz_now_ms(), res, &err);
    if (rc != KZ_DB_OK) raise_update(L, rc, &err, u);
    g->p = res;
    g->n = n;
    g->fn = free_results;
    return res;
}

/* wallet_update(user_id, changeset, metadata?, update_ledger?=false) ->
 * updated, previous (tables of balances). */
static int nk_wallet_update(lua_State *L)
{
    lua_settop(L, 4);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    kz_wallet_update_t u = {.user_id = uid};
    u.changeset = changeset_arg(L, 2, "changeset");
    u.metadata = kz_nk_json_object_arg(L, 3, "metadata");
    bool ledger = kz_nk_optbool(L, 4, "update ledger", false);
    kz_wallet_result_t *res = run_updates(L, &u, 1, ledger);
    kz_nk_guard_t *g = lua_touserdata(L, -1);
    kz_nk_push_json_text(L, res[0].updated);
    kz_nk_push_json_text(L, res[0].previous);
    kz_nk_guard_done(g);
    return 2;
}

/* wallets_update(updates, update_ledger?=false) -> results: updates are
 * {user_id, changeset, metadata?}, results {user_id, updated, previous}.
 * One transaction: a failure changes no wallet. */
static int nk_wallets_update(lua_State *L)
{
    lua_settop(L, 2);
    if (!lua_istable(L, 1)) return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of updates");
    size_t count = lua_objlen(L, 1), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        keys++;
        if (!lua_istable(L, -1))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of updates");
        lua_pop(L, 1);
    }
    if (keys != count || count > 10000)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects an array of updates");
    bool ledger = kz_nk_optbool(L, 2, "update ledger", false);
    if (count == 0) {
        lua_newtable(L);
        return 1;
    }
    kz_wallet_update_t *u = kz_nk_scratch(L, sizeof *u * count);
    char(*uids)[37] = kz_nk_scratch(L, 37 * count);
    lua_createtable(L, (int)count * 2, 0); /* keeps the JSON texts */
    int texts = lua_gettop(L);
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        int t = lua_gettop(L);
        lua_getfield(L, t, "user_id");
        kz_nk_uuid(L, lua_gettop(L), "user_id", uids[i]);
        lua_pop(L, 1);
        u[i].user_id = uids[i];
        lua_getfield(L, t, "changeset");
        if (lua_isnil(L, -1))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects changeset to be supplied");
        u[i].changeset = changeset_arg(L, lua_gettop(L), "changeset");
        lua_rawseti(L, texts, (int)(2 * i + 1));
        lua_pop(L, 1);
        lua_getfield(L, t, "metadata");
        u[i].metadata = kz_nk_json_object_arg(L, lua_gettop(L), "metadata");
        if (u[i].metadata) lua_rawseti(L, texts, (int)(2 * i + 2));
        lua_pop(L, 2);
    }
    kz_wallet_result_t *res = run_updates(L, u, (int)count, ledger);
    kz_nk_guard_t *g = lua_touserdata(L, -1);
    lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        lua_createtable(L, 0, 3);
        kz_nk_set_str0(L, "user_id", u[i].user_id);
        kz_nk_push_json_text(L, res[i].updated);
        lua_setfield(L, -2, "updated");
        kz_nk_push_json_text(L, res[i].previous);
        lua_setfield(L, -2, "previous");
        lua_rawseti(L, -2, (int)i + 1);
    }
    kz_nk_guard_done(g);
    return 1;
}

static void free_ledger(void *p, int n)
{
    kz_wallet_ledger_free(p, n);
}

/* A ledger item table: id, user_id, create_time, update_time, changeset,
 * metadata. */
static void push_item(lua_State *L, const kz_wallet_ledger_t *e)
{
    lua_createtable(L, 0, 6);
    kz_nk_set_str0(L, "id", e->id);
    kz_nk_set_str0(L, "user_id", e->user_id);
    kz_nk_set_num(L, "create_time", (double)(e->create_time / 1000));
    kz_nk_set_num(L, "update_time", (double)(e->update_time / 1000));
    kz_nk_push_json_text(L, e->changeset);
    lua_setfield(L, -2, "changeset");
    kz_nk_push_json_text(L, e->metadata);
    lua_setfield(L, -2, "metadata");
}

static void free_item(void *p, int n)
{
    (void)n;
    kz_wallet_ledger_clear(p);
}

/* wallet_ledger_update(id, metadata) -> item: replaces the metadata of a
 * ledger item. NotFound for an unknown id. */
static int nk_wallet_ledger_update(lua_State *L)
{
    lua_settop(L, 2);
    char id[37];
    kz_nk_uuid(L, 1, "ledger item ID", id);
    if (!lua_istable(L, 2)) return kz_lua_raise(L, KZ_NK_INVALID, "expects metadata to be a table");
    const char *metadata = kz_nk_json_object_arg(L, 2, "metadata");
    kz_nk_guard_t *g = kz_nk_guard_with(L, sizeof(kz_wallet_ledger_t));
    kz_wallet_ledger_t *e = kz_nk_guard_mem(g);
    int rc = kz_store_wallet_ledger_update(kz_lua_db(L), id, metadata, kz_now_ms(), e);
    if (rc == KZ_STORE_NOTFOUND)
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, "Wallet ledger item not found.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = e;
    g->fn = free_item;
    push_item(L, e);
    kz_nk_guard_done(g);
    return 1;
}

/* wallet_ledger_list(user_id, limit?=100, cursor?="") -> items, cursor
 * (oldest first; the cursor is "" after the last page, as in Nakama). */
static int nk_wallet_ledger_list(lua_State *L)
{
    lua_settop(L, 3);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    int limit = (int)kz_nk_optint(L, 2, "limit", 100, 0, 100);
    if (limit == 0) limit = 100;
    const char *cursor = kz_nk_optstr(L, 3, "cursor");
    int64_t after_time = 0;
    char after_id[37] = "";
    if (cursor && *cursor) {
        json_t *c = kz_cursor_decode(cursor);
        const char *u = json_string_value(json_object_get(c, "u"));
        const char *i = json_string_value(json_object_get(c, "i"));
        json_t *t = json_object_get(c, "t");
        bool ok = u && strcmp(u, uid) == 0 && i && kz_nk_uuid_copy(i, strlen(i), after_id) &&
                  json_is_integer(t);
        if (ok) after_time = json_integer_value(t);
        json_decref(c);
        if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, "Cursor is invalid.");
    }
    kz_nk_user_must_exist(L, uid);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_wallet_ledger_t *items = NULL;
    int n = 0;
    bool more = false;
    int rc = kz_store_wallet_ledger_list(kz_lua_db(L), uid, limit, after_time, after_id, &items, &n,
                                         &more);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = items;
    g->n = n;
    g->fn = free_ledger;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_item(L, &items[i]);
        lua_rawseti(L, -2, i + 1);
    }
    if (more && n > 0) {
        kz_nk_guard_t *gc = kz_nk_guard(L);
        gc->p = kz_cursor_encode(json_pack("{s:s,s:s,s:I}", "u", uid, "i", items[n - 1].id, "t",
                                           (json_int_t)items[n - 1].create_time));
        gc->fn = kz_nk_free_kz;
        lua_pushstring(L, gc->p);
        kz_nk_guard_done(gc);
        lua_remove(L, -2);
    } else {
        lua_pushstring(L, "");
    }
    kz_nk_guard_done(g);
    return 2;
}

void kz_nk_open_wallet(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"wallet_update", nk_wallet_update},
        {"wallets_update", nk_wallets_update},
        {"wallet_ledger_list", nk_wallet_ledger_list},
        {"wallet_ledger_update", nk_wallet_ledger_update},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
