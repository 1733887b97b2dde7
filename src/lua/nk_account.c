/* nk functions for accounts and users: account_get_id, accounts_get_id,
 * account_update_id, account_delete_id, users_get_id, users_get_username,
 * users_get_random, authenticate_device/custom/email,
 * authenticate_token_generate, link_* and unlink_* for devices, custom ids
 * and emails.
 *
 * Arguments, defaults and return values are those of Nakama's Lua runtime;
 * the rules (validation messages, conflicts, the last sign-in identifier)
 * are the REST API's, through the same store functions. Errors are raised
 * as {message, code} (see lua/nk_store.h for the codes). */
#include <sodium.h>
#include <string.h>

#include "api/api.h"
#include "api/sessions.h"
#include "api/validate.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/jwt.h"
#include "core/password.h"
#include "core/uuid.h"
#include "lua/nk_store.h"
#include "net/http.h"
#include "net/ws.h"
#include "realtime/envelope.h"
#include "realtime/router.h"
#include "store/account.h"

#define MSG_NOT_FOUND "User account not found."
#define MSG_LAST_LINK                                                                              \
    "Cannot unlink last account identifier. Check profile exists and is not last link."

/* ------------------------------------------------------------------------ */
/* Accounts                                                                 */

/* Pushes the account table of u with its device ids: the user's fields at
 * the top level and again under `user`, wallet (table), email, devices
 * ({id} tables), custom_id, verify_time and disable_time (unix seconds,
 * when set). */
static void push_account(lua_State *L, const kz_user_t *u, char **devices, int ndevices)
{
    lua_createtable(L, 0, 26);
    kz_nk_set_user_fields(L, u);
    kz_nk_push_user(L, u);
    lua_setfield(L, -2, "user");
    kz_nk_push_json_text(L, u->wallet);
    lua_setfield(L, -2, "wallet");
    kz_nk_set_str(L, "email", u->email);
    if (ndevices > 0) {
        lua_createtable(L, ndevices, 0);
        for (int i = 0; i < ndevices; i++) {
            lua_createtable(L, 0, 1);
            kz_nk_set_str0(L, "id", devices[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "devices");
    }
    kz_nk_set_str(L, "custom_id", u->custom_id);
    if (u->verify_time > 0) kz_nk_set_num(L, "verify_time", (double)(u->verify_time / 1000));
    if (u->disable_time > 0) kz_nk_set_num(L, "disable_time", (double)(u->disable_time / 1000));
}

/* Pushes the account of the user loaded into *u (owned by guard gu),
 * reading the devices under guard gd. */
static void push_account_loaded(lua_State *L, kz_db_t *db, kz_user_t *u, kz_nk_guard_t *gd)
{
    char **devices = NULL;
    int ndevices = 0;
    int rc = kz_store_user_devices(db, u->id, &devices, &ndevices);
    if (rc != KZ_DB_OK) kz_lua_raise_store(L, rc);
    gd->p = devices;
    gd->n = ndevices;
    gd->fn = kz_nk_free_strings;
    push_account(L, u, devices, ndevices);
}

/* account_get_id(user_id) -> account */
static int nk_account_get_id(lua_State *L)
{
    lua_settop(L, 1);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    kz_db_t *db = kz_lua_db(L);
    kz_nk_guard_t *gu = kz_nk_guard_with(L, sizeof(kz_user_t)), *gd = kz_nk_guard(L);
    kz_user_t *u = kz_nk_guard_mem(gu);
    int rc = kz_store_user_find(db, KZ_ID_USER, uid, u);
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_NOT_FOUND);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    gu->p = u;
    gu->fn = kz_nk_free_user;
    push_account_loaded(L, db, u, gd);
    kz_nk_guard_done(gd);
    kz_nk_guard_done(gu);
    return 1;
}

/* accounts_get_id(user_ids) -> accounts (those that exist, by id) */
static int nk_accounts_get_id(lua_State *L)
{
    lua_settop(L, 1);
    int nids;
    char **ids = kz_nk_strings_arg(L, 1, "user IDs", true, &nids);
    kz_db_t *db = kz_lua_db(L);
    kz_nk_guard_t *gu = kz_nk_guard(L);
    kz_user_t *users = NULL;
    int n = 0;
    int rc = nids ? kz_store_users_get(db, ids, nids, NULL, 0, &users, &n) : KZ_DB_OK;
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    gu->p = users;
    gu->n = n;
    gu->fn = kz_nk_free_users;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        kz_nk_guard_t *gd = kz_nk_guard(L);
        push_account_loaded(L, db, &users[i], gd);
        lua_rawseti(L, -3, i + 1);
        kz_nk_guard_done(gd);
        lua_pop(L, 1);
    }
    kz_nk_guard_done(gu);
    return 1;
}

/* account_update_id(user_id, metadata?, username?, display_name?, timezone?,
 * location?, lang_tag?, avatar_url?): nil or "" leaves a field as it is. */
static int nk_account_update_id(lua_State *L)
{
    lua_settop(L, 8);
    static const struct {
        int arg;
        const char *column;
    } fields[] = {{3, "username"}, {4, "display_name"}, {5, "timezone"},
                  {6, "location"}, {7, "lang_tag"},     {8, "avatar_url"}};
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    kz_account_update_t upd[7];
    int n = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = kz_nk_optstr(L, fields[i].arg, fields[i].column);
        if (!v || !*v) continue;
        if (i == 0) {
            const char *bad = kz_validate_username(v, strlen(v));
            if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
        } else if (strlen(v) > 512) {
            return kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be at most 512 bytes",
                                fields[i].column);
        }
        upd[n++] = (kz_account_update_t){fields[i].column, v};
    }
    const char *metadata = kz_nk_json_object_arg(L, 2, "metadata");
    if (metadata) {
        if (strlen(metadata) > 16384)
            return kz_lua_raise(L, KZ_NK_INVALID, "expects metadata to be at most 16 KiB");
        upd[n++] = (kz_account_update_t){"metadata", metadata};
    }
    kz_db_t *db = kz_lua_db(L);
    if (n == 0) {
        kz_nk_user_must_exist(L, uid);
        return 0;
    }
    int rc = kz_store_account_update(db, uid, upd, n, kz_now_ms());
    if (rc == KZ_DB_ECONFLICT) return kz_lua_raise(L, KZ_NK_EXISTS, "Username is already in use.");
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_NOT_FOUND);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* Until when a revocation must last: a refresh token issued now would
 * have expired by then. */
static int64_t revoke_expiry_ms(void)
{
    const kz_config_t *cfg = kz_lua_config();
    return (kz_now_sec() + (cfg ? cfg->session.refresh_token_expiry_sec : 3600) + 1) * 1000;
}

/* Revokes every token of uid issued up to now. */
static int revoke_user(kz_db_t *db, const char *uid)
{
    kz_sessions_t *live = kz_sessions_get_global();
    if (live) return kz_sessions_revoke_user(live, db, uid, revoke_expiry_ms());
    return kz_store_revoke_user(db, uid, kz_uuid_v7_stamp_at(kz_now_ns()), revoke_expiry_ms());
}

/* account_delete_id(user_id, recorded?=false): the user and everything
 * they own, as DELETE /v2/account does. */
static int nk_account_delete_id(lua_State *L)
{
    lua_settop(L, 2);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    kz_nk_optbool(L, 2, "recorded", false); /* no deletion log is kept */
    if (strcmp(uid, KZ_UUID_NIL) == 0)
        return kz_lua_raise(L, KZ_NK_INVALID, "Cannot delete the system user.");
    kz_db_t *db = kz_lua_db(L);
    int rc = kz_store_user_delete(db, uid);
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_NOT_FOUND);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    /* A cutoff for the user's tokens: in the process's deny-list as the
     * REST delete does, or only in the store when there is none (tests). */
    rc = revoke_user(db, uid);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Users                                                                    */

/* Pushes the user tables of users[0..n) (owned by guard g, freed here). */
static int push_users(lua_State *L, kz_nk_guard_t *g, kz_user_t *users, int n)
{
    g->p = users;
    g->n = n;
    g->fn = kz_nk_free_users;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        kz_nk_push_user(L, &users[i]);
        lua_rawseti(L, -2, i + 1);
    }
    kz_nk_guard_done(g);
    return 1;
}

/* users_get_id(user_ids?, facebook_ids?) -> users. No account here can
 * have a Facebook id (no provider is configured), so those match none. */
static int nk_users_get_id(lua_State *L)
{
    lua_settop(L, 2);
    int nids, nfb;
    char **ids = kz_nk_strings_arg(L, 1, "user IDs", true, &nids);
    kz_nk_strings_arg(L, 2, "Facebook IDs", false, &nfb);
    kz_db_t *db = kz_lua_db(L);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_user_t *users = NULL;
    int n = 0;
    int rc = nids ? kz_store_users_get(db, ids, nids, NULL, 0, &users, &n) : KZ_DB_OK;
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return push_users(L, g, users, n);
}

/* users_get_username(usernames) -> users */
static int nk_users_get_username(lua_State *L)
{
    lua_settop(L, 1);
    int nnames;
    char **names = kz_nk_strings_arg(L, 1, "usernames", false, &nnames);
    kz_db_t *db = kz_lua_db(L);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_user_t *users = NULL;
    int n = 0;
    int rc = nnames ? kz_store_users_get(db, NULL, 0, names, nnames, &users, &n) : KZ_DB_OK;
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return push_users(L, g, users, n);
}

/* users_get_random(count?=0) -> users (0..1000) */
static int nk_users_get_random(lua_State *L)
{
    lua_settop(L, 1);
    int count = (int)kz_nk_optint(L, 1, "count", 0, 0, 1000);
    kz_db_t *db = kz_lua_db(L);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_user_t *users = NULL;
    int n = 0;
    int rc = kz_store_users_random(db, count, &users, &n);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return push_users(L, g, users, n);
}

/* ------------------------------------------------------------------------ */
/* Authenticate                                                             */

/* The optional username argument of the authenticate functions: NULL when
 * nil or "" (one is generated), else validated. */
static const char *username_arg(lua_State *L, int idx)
{
    const char *name = kz_nk_optstr(L, idx, "username");
    if (!name || !*name) return NULL;
    const char *bad = kz_validate_username(name, strlen(name));
    if (bad) kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    return name;
}

/* Signs in with identifier (kind, value), or creates the account when
 * create (password hashed for email). Pushes user id, username, created.
 * Everything the store hands back is copied to the stack before any
 * raise. */
static int sign_in(lua_State *L, kz_id_kind_t kind, const char *value, const char *password,
                   const char *username, bool create)
{
    kz_db_t *db = kz_lua_db(L);
    char id[37], name[129];
    for (int attempt = 0; attempt < 2; attempt++) {
        kz_user_t u;
        int rc = kz_store_user_find(db, kind, value, &u);
        if (rc == KZ_DB_OK) {
            int why = 0;
            if (u.disable_time > 0)
                why = KZ_NK_DENIED;
            else if (kind == KZ_ID_EMAIL &&
                     !(u.password && kz_password_verify(u.password, password, strlen(password))))
                why = 16;
            snprintf(id, sizeof id, "%s", u.id);
            snprintf(name, sizeof name, "%s", u.username ? u.username : "");
            kz_user_clear(&u);
            if (why == KZ_NK_DENIED) return kz_lua_raise(L, why, "User account banned.");
            if (why) return kz_lua_raise(L, why, "Invalid credentials.");
            lua_pushstring(L, id);
            lua_pushstring(L, name);
            lua_pushboolean(L, 0);
            return 3;
        }
        if (rc != KZ_STORE_NOTFOUND) return kz_lua_raise_store(L, rc);
        if (!create) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_NOT_FOUND);
        if (username)
            snprintf(name, sizeof name, "%s", username);
        else
            kz_random_letters(name, 10);
        char hash[KZ_PASSWORD_HASH_MAX] = "";
        if (kind == KZ_ID_EMAIL && kz_password_hash(password, strlen(password), hash) != 0)
            return kz_lua_raise(L, KZ_NK_INTERNAL, "Error creating user account.");
        kz_uuid_v4(id);
        bool taken = false;
        rc = kz_store_user_create(db, id, name, kind, value, hash, kz_now_ms(), &taken);
        sodium_memzero(hash, sizeof hash);
        if (rc == KZ_DB_OK) {
            lua_pushstring(L, id);
            lua_pushstring(L, name);
            lua_pushboolean(L, 1);
            return 3;
        }
        if (rc != KZ_DB_ECONFLICT) return kz_lua_raise_store(L, rc);
        if (!taken) return kz_lua_raise(L, KZ_NK_EXISTS, "Username is already in use.");
        /* The identifier was created a moment ago by someone else: sign in. */
    }
    return kz_lua_raise(L, KZ_NK_INTERNAL, "Error creating user account.");
}

/* authenticate_device(id, username?, create?=true) -> user_id, username, created */
static int nk_authenticate_device(lua_State *L)
{
    lua_settop(L, 3);
    size_t len;
    const char *id = kz_nk_str(L, 1, "id", &len);
    const char *bad = kz_validate_device_id(id, len);
    if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    const char *username = username_arg(L, 2);
    bool create = kz_nk_optbool(L, 3, "create", true);
    return sign_in(L, KZ_ID_DEVICE, id, NULL, username, create);
}

/* authenticate_custom(id, username?, create?=true) -> user_id, username, created */
static int nk_authenticate_custom(lua_State *L)
{
    lua_settop(L, 3);
    size_t len;
    const char *id = kz_nk_str(L, 1, "id", &len);
    const char *bad = kz_validate_custom_id(id, len);
    if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    const char *username = username_arg(L, 2);
    bool create = kz_nk_optbool(L, 3, "create", true);
    return sign_in(L, KZ_ID_CUSTOM, id, NULL, username, create);
}

/* authenticate_email(email?, password, username?, create?=true) -> user_id,
 * username, created. Without an email it is a username + password sign-in
 * (never creates). */
static int nk_authenticate_email(lua_State *L)
{
    lua_settop(L, 4);
    const char *email = kz_nk_optstr(L, 1, "email");
    size_t plen;
    const char *password = kz_nk_str(L, 2, "password", &plen);
    const char *bad = kz_validate_password(password, plen);
    if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    const char *username = username_arg(L, 3);
    bool create = kz_nk_optbool(L, 4, "create", true);
    if (!email || !*email) {
        if (!username)
            return kz_lua_raise(L, KZ_NK_INVALID,
                                "expects username string when email is not supplied");
        kz_db_t *db = kz_lua_db(L);
        kz_user_t u;
        int rc = kz_store_user_find(db, KZ_ID_USERNAME, username, &u);
        if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_NOT_FOUND);
        if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
        bool banned = u.disable_time > 0;
        bool ok = u.password && kz_password_verify(u.password, password, plen);
        char id[37];
        snprintf(id, sizeof id, "%s", u.id);
        kz_user_clear(&u);
        if (banned) return kz_lua_raise(L, KZ_NK_DENIED, "User account banned.");
        if (!ok) return kz_lua_raise(L, 16, "Invalid credentials.");
        lua_pushstring(L, id);
        lua_pushstring(L, username);
        lua_pushboolean(L, 0);
        return 3;
    }
    size_t elen = strlen(email);
    bad = kz_validate_email(email, elen);
    if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    char *lower = kz_nk_scratch(L, elen + 1);
    memcpy(lower, email, elen + 1);
    kz_lower_ascii(lower, elen);
    return sign_in(L, KZ_ID_EMAIL, lower, password, username, create);
}

/* authenticate_token_generate(user_id, username, exp?=0, vars?) -> token,
 * exp: a session token like the ones sign-in returns (HS256 with
 * session.encryption_key), expiring at exp (unix seconds) or after
 * session.token_expiry_sec. */
static int nk_authenticate_token_generate(lua_State *L)
{
    lua_settop(L, 4);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t ulen;
    const char *username = kz_nk_str(L, 2, "username", &ulen);
    if (ulen > 128)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects username to be at most 128 bytes");
    int64_t exp = kz_nk_optint(L, 3, "exp", 0, 0, INT64_C(1) << 52);
    if (kz_nk_opttable(L, 4, "vars")) {
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return kz_lua_raise(L, KZ_NK_INVALID, "vars keys must be strings");
            if (lua_type(L, -1) != LUA_TSTRING)
                return kz_lua_raise(L, KZ_NK_INVALID, "vars values must be strings");
            lua_pop(L, 1);
        }
    }
    const kz_config_t *cfg = kz_lua_config();
    if (!cfg) return kz_lua_raise(L, KZ_NK_INTERNAL, "no server configuration");
    int64_t now = kz_now_sec();
    if (exp == 0) exp = now + cfg->session.token_expiry_sec;
    if (exp <= now) return kz_lua_raise(L, KZ_NK_INVALID, "expects exp to be in the future");
    kz_nk_guard_t *g = kz_nk_guard(L);
    /* From here to the push nothing can raise (the vars were checked). */
    kz_claims_t c = {0};
    kz_uuid_v7_ns(c.tid, kz_now_ns());
    memcpy(c.uid, uid, sizeof uid);
    if (ulen)
        snprintf(c.usn, sizeof c.usn, "%s", username);
    else
        kz_random_letters(c.usn, 10);
    c.iat = now;
    c.exp = exp;
    json_t *vars = NULL;
    if (lua_istable(L, 4)) {
        vars = json_object();
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            json_t *v = json_string(lua_tostring(L, -1));
            if (v) json_object_set_new(vars, lua_tostring(L, -2), v);
            lua_pop(L, 1);
        }
    }
    c.vrs = vars;
    char *token = NULL;
    int rc =
        kz_jwt_sign(&c, cfg->session.encryption_key, strlen(cfg->session.encryption_key), &token);
    json_decref(vars);
    if (rc != KZ_JWT_OK)
        return kz_lua_raise(L, KZ_NK_INVALID,
                            "cannot encode the token: vars and username must be UTF-8");
    g->p = token;
    g->fn = kz_nk_free_kz;
    lua_pushstring(L, token);
    kz_nk_guard_done(g);
    lua_pushnumber(L, (lua_Number)exp);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Link and unlink                                                          */

static const char *const in_use[] = {[KZ_ID_DEVICE] = "Device ID is already in use.",
                                     [KZ_ID_CUSTOM] = "Custom ID is already in use.",
                                     [KZ_ID_EMAIL] = "Email is already in use."};

/* Links value (kind) to uid; password only for email. */
static int link_identifier(lua_State *L, const char *uid, kz_id_kind_t kind, const char *value,
                           const char *password)
{
    kz_nk_user_must_exist(L, uid);
    kz_db_t *db = kz_lua_db(L);
    char hash[KZ_PASSWORD_HASH_MAX] = "";
    if (kind == KZ_ID_EMAIL && kz_password_hash(password, strlen(password), hash) != 0)
        return kz_lua_raise(L, KZ_NK_INTERNAL, "Error linking.");
    int rc = kz_store_link(db, uid, kind, value, hash, kz_now_ms());
    sodium_memzero(hash, sizeof hash);
    if (rc == KZ_DB_ECONFLICT) return kz_lua_raise(L, KZ_NK_EXISTS, "%s", in_use[kind]);
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_NOT_FOUND);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* link_device(user_id, device_id) */
static int nk_link_device(lua_State *L)
{
    lua_settop(L, 2);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t len;
    const char *id = kz_nk_str(L, 2, "device ID", &len);
    const char *bad = kz_validate_device_id(id, len);
    if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    return link_identifier(L, uid, KZ_ID_DEVICE, id, NULL);
}

/* link_custom(user_id, custom_id) */
static int nk_link_custom(lua_State *L)
{
    lua_settop(L, 2);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t len;
    const char *id = kz_nk_str(L, 2, "custom ID", &len);
    const char *bad = kz_validate_custom_id(id, len);
    if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    return link_identifier(L, uid, KZ_ID_CUSTOM, id, NULL);
}

/* link_email(user_id, email, password) */
static int nk_link_email(lua_State *L)
{
    lua_settop(L, 3);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t elen, plen;
    const char *email = kz_nk_str(L, 2, "email", &elen);
    const char *password = kz_nk_str(L, 3, "password", &plen);
    const char *bad = kz_validate_link_email(email, elen, password, plen);
    if (bad) return kz_lua_raise(L, KZ_NK_INVALID, "%s", bad);
    char *lower = kz_nk_scratch(L, elen + 1);
    memcpy(lower, email, elen + 1);
    kz_lower_ascii(lower, elen);
    return link_identifier(L, uid, KZ_ID_EMAIL, lower, password);
}

/* Unlinks value (kind) from uid; value NULL unlinks the one the user has
 * (custom id and email, whose argument is optional in Nakama). */
static int unlink_identifier(lua_State *L, const char *uid, kz_id_kind_t kind, const char *value)
{
    kz_db_t *db = kz_lua_db(L);
    char current[256] = "";
    if (!value) {
        kz_user_t u;
        int rc = kz_store_user_find(db, KZ_ID_USER, uid, &u);
        if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_NOT_FOUND);
        if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
        const char *v = kind == KZ_ID_CUSTOM ? u.custom_id : u.email;
        snprintf(current, sizeof current, "%s", v ? v : "");
        kz_user_clear(&u);
        if (!*current) return kz_lua_raise(L, KZ_NK_DENIED, MSG_LAST_LINK);
        value = current;
    }
    int rc = kz_store_unlink(db, uid, kind, value, kz_now_ms());
    if (rc == KZ_STORE_LAST_LINK) return kz_lua_raise(L, KZ_NK_DENIED, MSG_LAST_LINK);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* unlink_device(user_id, device_id) */
static int nk_unlink_device(lua_State *L)
{
    lua_settop(L, 2);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t len;
    const char *id = kz_nk_str(L, 2, "device ID", &len);
    if (len == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects device ID string");
    return unlink_identifier(L, uid, KZ_ID_DEVICE, id);
}

/* unlink_custom(user_id, custom_id?="") */
static int nk_unlink_custom(lua_State *L)
{
    lua_settop(L, 2);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    const char *id = kz_nk_optstr(L, 2, "custom ID");
    return unlink_identifier(L, uid, KZ_ID_CUSTOM, id && *id ? id : NULL);
}

/* unlink_email(user_id, email?="") */
static int nk_unlink_email(lua_State *L)
{
    lua_settop(L, 2);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    const char *email = kz_nk_optstr(L, 2, "email");
    if (!email || !*email) return unlink_identifier(L, uid, KZ_ID_EMAIL, NULL);
    size_t elen = strlen(email);
    char *lower = kz_nk_scratch(L, elen + 1);
    memcpy(lower, email, elen + 1);
    kz_lower_ascii(lower, elen);
    return unlink_identifier(L, uid, KZ_ID_EMAIL, lower);
}

/* ------------------------------------------------------------------------ */
/* Sessions                                                                 */

/* session_disconnect(session_id, reason?=0): closes that realtime socket
 * (on this node) from its own I/O thread. An unknown session is no error,
 * as in Nakama. */
static int nk_session_disconnect(lua_State *L)
{
    lua_settop(L, 2);
    char sid[37];
    kz_nk_uuid(L, 1, "session ID", sid);
    kz_nk_optint(L, 2, "reason", 0, 0, 255); /* no presence reasons are reported */
    kz_rt_sess_t *s = kz_rt_session_find(sid);
    if (!s) return 0;
    kz_rt_sess_disconnect(s, 1000, "");
    kz_rt_sess_release(s);
    return 0;
}

/* status_follow(session_id, user_ids) / status_unfollow(session_id,
 * user_ids): the session (open on this node) follows or unfollows those
 * users as its status_follow / status_unfollow messages would; a follow
 * skips users that do not exist and the session's own user, and sends the
 * session the followed users' current presences. An unknown session is no
 * error, as in Nakama. */
static int status_change(lua_State *L, bool follow)
{
    lua_settop(L, 2);
    char sid[37];
    kz_nk_uuid(L, 1, "session ID", sid);
    if (!lua_istable(L, 2)) return kz_lua_raise(L, KZ_NK_INVALID, "expects user IDs to be a table");
    int n;
    char **ids = kz_nk_strings_arg(L, 2, "user IDs", true, &n);
    if (n == 0) return 0;
    if (n > 1024) return kz_lua_raise(L, KZ_NK_INVALID, "expects at most 1024 user IDs");
    char(*found)[37] = kz_nk_scratch(L, 37 * (size_t)n);
    int nfound = 0;
    if (follow) { /* as the socket message: only users that exist */
        kz_nk_guard_t *g = kz_nk_guard(L);
        kz_user_t *users = NULL;
        int nu = 0;
        int rc = kz_store_users_get(kz_lua_db(L), ids, n, NULL, 0, &users, &nu);
        if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
        for (int i = 0; i < nu; i++)
            memcpy(found[nfound++], users[i].id, 37);
        g->p = users;
        g->n = nu;
        g->fn = kz_nk_free_users;
        kz_nk_guard_done(g);
        if (nfound == 0) return 0;
    } else {
        for (int i = 0; i < n; i++)
            memcpy(found[nfound++], ids[i], 37);
    }
    int r = kz_rt_status_follow_post(sid, (const char(*)[37])found, nfound, follow);
    if (r == KZ_RT_POST_TOO_MANY)
        return kz_lua_raise(L, KZ_NK_INVALID, "A session may follow at most 1024 users.");
    return 0;
}

static int nk_status_follow(lua_State *L)
{
    return status_change(L, true);
}

static int nk_status_unfollow(lua_State *L)
{
    return status_change(L, false);
}

/* Closes every open socket of uid on this node (from their own threads). */
static void disconnect_user(const char *uid)
{
    kz_rt_sess_t **v;
    int n = kz_rt_user_sessions(uid, &v);
    for (int i = 0; i < n; i++) {
        kz_rt_sess_disconnect(v[i], 1000, "");
        kz_rt_sess_release(v[i]);
    }
    kz_free(v);
}

/* users_ban_id(user_ids): the users can no longer authenticate (nor
 * refresh); every token they hold is revoked and their sockets closed.
 * Unknown users are skipped. */
static int nk_users_ban_id(lua_State *L)
{
    lua_settop(L, 1);
    int n;
    char **ids = kz_nk_strings_arg(L, 1, "user IDs", true, &n);
    if (n == 0) return 0;
    if (n > 10000) return kz_lua_raise(L, KZ_NK_INVALID, "expects at most 10000 user IDs");
    kz_db_t *db = kz_lua_db(L);
    int rc = kz_store_users_set_disabled(db, ids, n, kz_now_ms(), NULL);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    for (int i = 0; i < n; i++) {
        rc = revoke_user(db, ids[i]);
        if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
        disconnect_user(ids[i]);
    }
    return 0;
}

/* users_unban_id(user_ids): lifts the ban (tokens revoked by it stay
 * revoked). Unknown users are skipped. */
static int nk_users_unban_id(lua_State *L)
{
    lua_settop(L, 1);
    int n;
    char **ids = kz_nk_strings_arg(L, 1, "user IDs", true, &n);
    if (n == 0) return 0;
    if (n > 10000) return kz_lua_raise(L, KZ_NK_INVALID, "expects at most 10000 user IDs");
    int rc = kz_store_users_set_disabled(kz_lua_db(L), ids, n, 0, NULL);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* A token named in session_logout: well signed with key, unexpired and
 * the user's; its tid goes to tid. */
static bool logout_token(const char *token, const char *key, const char *uid, char tid[37])
{
    if (!key) return false;
    kz_claims_t c = {0};
    bool ok = kz_jwt_verify(token, strlen(token), key, strlen(key), kz_now_sec(), &c) == KZ_JWT_OK &&
              strcmp(c.uid, uid) == 0;
    if (ok) memcpy(tid, c.tid, 37);
    kz_claims_clear(&c);
    return ok;
}

/* session_logout(user_id, token?="", refresh_token?=""): revokes the named
 * session and/or refresh token of the user, or with neither every token
 * the user holds, as POST /v2/session/logout does. */
static int nk_session_logout(lua_State *L)
{
    lua_settop(L, 3);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    const char *token = kz_nk_optstr(L, 2, "token");
    const char *refresh = kz_nk_optstr(L, 3, "refresh token");
    const kz_config_t *cfg = kz_lua_config();
    char tid_a[37] = "", tid_b[37] = "";
    if (token && *token &&
        !logout_token(token, cfg ? cfg->session.encryption_key : NULL, uid, tid_a))
        return kz_lua_raise(L, KZ_NK_INVALID, "Session token invalid.");
    if (refresh && *refresh &&
        !logout_token(refresh, cfg ? cfg->session.refresh_encryption_key : NULL, uid, tid_b))
        return kz_lua_raise(L, KZ_NK_INVALID, "Refresh token invalid.");
    kz_db_t *db = kz_lua_db(L);
    kz_sessions_t *live = kz_sessions_get_global();
    int64_t expire_ms = revoke_expiry_ms();
    int rc = KZ_DB_OK;
    if (!*tid_a && !*tid_b) {
        rc = revoke_user(db, uid);
    } else {
        for (int i = 0; i < 2 && rc == KZ_DB_OK; i++) {
            const char *tid = i ? tid_b : tid_a;
            if (!*tid || (i && strcmp(tid_a, tid_b) == 0)) continue;
            rc = live ? kz_sessions_revoke(live, db, tid, uid, expire_ms)
                      : kz_store_revoke_token(db, tid, uid, expire_ms);
        }
    }
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

void kz_nk_open_account(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"account_get_id", nk_account_get_id},
        {"accounts_get_id", nk_accounts_get_id},
        {"account_update_id", nk_account_update_id},
        {"account_delete_id", nk_account_delete_id},
        {"users_get_id", nk_users_get_id},
        {"users_get_username", nk_users_get_username},
        {"users_get_random", nk_users_get_random},
        {"users_ban_id", nk_users_ban_id},
        {"users_unban_id", nk_users_unban_id},
        {"session_disconnect", nk_session_disconnect},
        {"session_logout", nk_session_logout},
        {"status_follow", nk_status_follow},
        {"status_unfollow", nk_status_unfollow},
        {"authenticate_device", nk_authenticate_device},
        {"authenticate_custom", nk_authenticate_custom},
        {"authenticate_email", nk_authenticate_email},
        {"authenticate_token_generate", nk_authenticate_token_generate},
        {"link_device", nk_link_device},
        {"link_custom", nk_link_custom},
        {"link_email", nk_link_email},
        {"unlink_device", nk_unlink_device},
        {"unlink_custom", nk_unlink_custom},
        {"unlink_email", nk_unlink_email},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
