/* nk social functions: friends (friends_list, friends_add, friends_delete,
 * friends_block), groups (group_create, group_update, group_delete,
 * groups_get_id, group_user_join, group_user_leave, group_users_add,
 * group_users_kick, group_users_list, user_groups_list, groups_list),
 * notifications (notification_send, notifications_send) and chat
 * (channel_message_send, channel_id_build).
 *
 * The runtime acts for the users it names: an optional caller id applies
 * that user's role checks, none means the system (no checks). The rules
 * are the store's, as for the REST API; list cursors are the REST API's
 * too, so either side can continue a listing. */
#include <string.h>

#include "api/cursor.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "lua/nk_store.h"
#include "store/friends.h"
#include "store/message.h"
#include "store/notification.h"

#define MSG_GROUP_NOT_FOUND "Group not found."
#define MSG_BAD_CURSOR "Cursor is invalid."

/* Decodes a cursor argument into a JSON object owned by a guard pushed on
 * top; NULL (and a guard holding nothing) when the argument is nil or "". */
static json_t *cursor_arg(lua_State *L, int idx)
{
    const char *s = kz_nk_optstr(L, idx, "cursor");
    kz_nk_guard_t *g = kz_nk_guard(L);
    if (!s || !*s) return NULL;
    json_t *c = kz_cursor_decode(s);
    if (!c) kz_lua_raise(L, KZ_NK_INVALID, MSG_BAD_CURSOR);
    g->p = c;
    g->fn = kz_nk_free_json;
    return c;
}

/* Pushes an owned cursor string (kz_free) made by kz_cursor_encode. */
static void push_cursor(lua_State *L, json_t *obj)
{
    kz_nk_guard_t *g = kz_nk_guard(L);
    g->p = kz_cursor_encode(obj);
    g->fn = kz_nk_free_kz;
    lua_pushstring(L, g->p);
    kz_nk_guard_done(g);
    lua_remove(L, -2);
}

static bool cursor_int(json_t *c, const char *key, int64_t *out)
{
    json_t *v = json_object_get(c, key);
    if (!json_is_integer(v)) return false;
    *out = json_integer_value(v);
    return true;
}

static bool cursor_str(json_t *c, const char *key, const char **out)
{
    json_t *v = json_object_get(c, key);
    if (!json_is_string(v)) return false;
    *out = json_string_value(v);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Friends                                                                  */

static void free_friends(void *p, int n)
{
    kz_friends_free(p, n);
}

/* Pushes the friend tables {user, state, update_time, metadata} of
 * friends[0..n) (owned by guard g, freed here). */
static void push_friends(lua_State *L, kz_nk_guard_t *g, kz_friend_t *friends, int n)
{
    g->p = friends;
    g->n = n;
    g->fn = free_friends;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        kz_nk_push_user(L, &friends[i].user);
        lua_setfield(L, -2, "user");
        kz_nk_set_num(L, "state", friends[i].state);
        kz_nk_set_num(L, "update_time", (double)(friends[i].update_time / 1000));
        kz_nk_push_json_text(L, friends[i].metadata);
        lua_setfield(L, -2, "metadata");
        lua_rawseti(L, -2, i + 1);
    }
    kz_nk_guard_done(g);
}

/* users_get_friend_status(user_id, user_ids) -> friends: user_id's
 * relations with those users that it has one with (any state), as friend
 * tables. */
static int nk_users_get_friend_status(lua_State *L)
{
    lua_settop(L, 2);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    if (!lua_istable(L, 2)) return kz_lua_raise(L, KZ_NK_INVALID, "expects user IDs to be a table");
    int n;
    char **ids = kz_nk_strings_arg(L, 2, "user IDs", true, &n);
    if (n > 1000) return kz_lua_raise(L, KZ_NK_INVALID, "expects at most 1000 user IDs");
    kz_nk_user_must_exist(L, uid);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_friend_t *friends = NULL;
    int nf = 0;
    int rc = kz_store_friends_get(kz_lua_db(L), uid, ids, n, &friends, &nf);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    push_friends(L, g, friends, nf);
    return 1;
}

/* friend_metadata_update(user_id, friend_user_id, metadata): replaces the
 * metadata of user_id's relation with friend_user_id (returned by the
 * friend listings as metadata). NotFound when there is no relation. */
static int nk_friend_metadata_update(lua_State *L)
{
    lua_settop(L, 3);
    char uid[37], fid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    kz_nk_uuid(L, 2, "friend user ID", fid);
    if (!lua_istable(L, 3)) return kz_lua_raise(L, KZ_NK_INVALID, "expects metadata to be a table");
    const char *metadata = kz_nk_json_object_arg(L, 3, "metadata");
    int rc = kz_store_friend_metadata_update(kz_lua_db(L), uid, fid, metadata, kz_now_ms());
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, "Friend not found.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* friends_list(user_id, limit?=100, state?=nil, cursor?) -> friends, cursor.
 * Each friend is {user, state, update_time, metadata}. */
static int nk_friends_list(lua_State *L)
{
    lua_settop(L, 4);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    int limit = (int)kz_nk_optint(L, 2, "limit", 100, 1, 1000);
    int state = (int)kz_nk_optint(L, 3, "state", -1, -1, 3);
    json_t *c = cursor_arg(L, 4);
    kz_friend_pos_t from;
    if (c) {
        int64_t f, s, p;
        bool ok = cursor_int(c, "f", &f) && f == state && cursor_int(c, "s", &s) && s >= 0 &&
                  s <= 3 && (state < 0 || s == state) && cursor_int(c, "p", &p);
        if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, MSG_BAD_CURSOR);
        from = (kz_friend_pos_t){(int)s, p};
    }
    kz_nk_user_must_exist(L, uid);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_friend_t *friends = NULL;
    int n = 0;
    kz_friend_pos_t next;
    bool more = false;
    int rc = kz_store_friends_list(kz_lua_db(L), uid, state, limit, c ? &from : NULL, &friends, &n,
                                   &next, &more);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    push_friends(L, g, friends, n);
    if (more)
        push_cursor(L, json_pack("{s:i,s:i,s:I}", "f", state, "s", next.state, "p",
                                 (json_int_t)next.position));
    else
        lua_pushnil(L);
    return 2;
}

typedef enum { ACT_ADD, ACT_DELETE, ACT_BLOCK } friend_action_t;

/* The targets of friends_add/delete/block: user ids (arg 3) and usernames
 * (arg 4) resolved to ids, in Lua memory on top of the stack. The caller
 * (arg 1, arg 2 its username) may not name itself. Returns the count; 0
 * when there is nothing to do. */
static int friend_targets(lua_State *L, friend_action_t act, const char *uid, const char *username,
                          char ***out)
{
    static const char *const self_msg[] = {"cannot add self as friend", "cannot delete self",
                                           "cannot block self"};
    int nids, nnames;
    char **ids = kz_nk_strings_arg(L, 3, "user IDs", true, &nids);
    char **names = kz_nk_strings_arg(L, 4, "usernames", false, &nnames);
    for (int i = 0; i < nids; i++)
        if (strcmp(ids[i], uid) == 0) kz_lua_raise(L, KZ_NK_INVALID, "%s", self_msg[act]);
    for (int i = 0; i < nnames; i++)
        if (strcmp(names[i], username) == 0) kz_lua_raise(L, KZ_NK_INVALID, "%s", self_msg[act]);
    *out = NULL;
    if (nids + nnames == 0) return 0;
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_user_t *users = NULL;
    int nusers = 0;
    if (nnames) {
        int rc = kz_store_users_get(kz_lua_db(L), NULL, 0, names, nnames, &users, &nusers);
        if (rc != KZ_DB_OK) kz_lua_raise_store(L, rc);
        g->p = users;
        g->n = nusers;
        g->fn = kz_nk_free_users;
    }
    int total = 0;
    for (int i = 0; i < nusers; i++)
        if (strcmp(users[i].id, uid) == 0) kz_lua_raise(L, KZ_NK_INVALID, "%s", self_msg[act]);
    char **all = kz_nk_scratch(L, sizeof(char *) * (size_t)(nids + nusers) + 37 * (size_t)nusers);
    char *p = (char *)(all + nids + nusers);
    for (int i = 0; i < nids; i++)
        all[total++] = ids[i];
    for (int i = 0; i < nusers; i++, p += 37) {
        memcpy(p, users[i].id, 37);
        all[total++] = p;
    }
    kz_nk_guard_done(g);
    if (total == 0 && act != ACT_DELETE)
        kz_lua_raise(L, KZ_NK_INVALID, "no valid ID or username was provided");
    *out = all;
    return total;
}

/* The common part of friends_add/delete/block(user_id, username, user_ids?,
 * usernames?[, metadata?]). */
static int friends_change(lua_State *L, friend_action_t act)
{
    lua_settop(L, 5);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t ulen;
    const char *username = kz_nk_str(L, 2, "username", &ulen);
    if (ulen == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects username string");
    const char *metadata = act == ACT_ADD ? kz_nk_json_object_arg(L, 5, "metadata") : NULL;
    char **ids;
    int n = friend_targets(L, act, uid, username, &ids);
    if (n == 0) return 0;
    kz_nk_user_must_exist(L, uid);
    kz_db_t *db = kz_lua_db(L);
    int64_t now = kz_now_ms();
    int rc = act == ACT_ADD      ? kz_store_friends_add(db, uid, ids, n, metadata, now, NULL)
             : act == ACT_DELETE ? kz_store_friends_delete(db, uid, ids, n, now)
                                 : kz_store_friends_block(db, uid, ids, n, now);
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, "User account not found.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

static int nk_friends_add(lua_State *L)
{
    return friends_change(L, ACT_ADD);
}
static int nk_friends_delete(lua_State *L)
{
    return friends_change(L, ACT_DELETE);
}
static int nk_friends_block(lua_State *L)
{
    return friends_change(L, ACT_BLOCK);
}

static void free_fof(void *p, int n)
{
    kz_friends_of_friends_free(p, n);
}

/* friends_of_friends_list(user_id, limit?=100, cursor?) -> friends, cursor.
 * Each is {referrer = <the friend's user id>, user}. The cursor is the
 * REST API's. */
static int nk_friends_of_friends_list(lua_State *L)
{
    lua_settop(L, 3);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    int limit = (int)kz_nk_optint(L, 2, "limit", 100, 1, 1000);
    json_t *c = cursor_arg(L, 3);
    kz_fof_pos_t from;
    if (c) {
        const char *r, *u;
        bool ok = cursor_str(c, "r", &r) && cursor_str(c, "u", &u) &&
                  kz_nk_uuid_copy(r, strlen(r), from.referrer) &&
                  kz_nk_uuid_copy(u, strlen(u), from.user_id);
        if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, MSG_BAD_CURSOR);
    }
    kz_nk_user_must_exist(L, uid);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_friend_of_friend_t *fof = NULL;
    int n = 0;
    kz_fof_pos_t next;
    bool more = false;
    int rc = kz_store_friends_of_friends(kz_lua_db(L), uid, limit, c ? &from : NULL, &fof, &n,
                                         &next, &more);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = fof;
    g->n = n;
    g->fn = free_fof;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        kz_nk_set_str0(L, "referrer", fof[i].referrer);
        kz_nk_push_user(L, &fof[i].user);
        lua_setfield(L, -2, "user");
        lua_rawseti(L, -2, i + 1);
    }
    kz_nk_guard_done(g);
    if (more)
        push_cursor(L, json_pack("{s:s,s:s}", "r", next.referrer, "u", next.user_id));
    else
        lua_pushnil(L);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Groups                                                                   */

/* Column sizes of the groups table, in bytes (Nakama's, in characters). */
#define GROUP_TEXT_MAX 1024

/* An optional group text argument: NULL when nil or "". */
static const char *group_text_arg(lua_State *L, int idx, const char *what)
{
    const char *s = kz_nk_optstr(L, idx, what);
    if (!s || !*s) return NULL;
    if (strlen(s) > GROUP_TEXT_MAX)
        kz_lua_raise(L, KZ_NK_INVALID, "expects %s to be at most %d bytes", what, GROUP_TEXT_MAX);
    return s;
}

/* group_create(user_id, name, creator_id?, lang_tag?, description?,
 * avatar_url?, open?=false, metadata?, max_count?=100) -> group. user_id
 * becomes the superadmin and the creator (a separate creator_id is
 * checked but not stored: the store keeps one creator). */
static int nk_group_create(lua_State *L)
{
    lua_settop(L, 9);
    char uid[37], creator[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t nlen;
    const char *name = kz_nk_str(L, 2, "name", &nlen);
    if (nlen == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects group name not be empty");
    if (nlen > GROUP_TEXT_MAX)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects group name to be at most %d bytes",
                            GROUP_TEXT_MAX);
    kz_nk_optuuid(L, 3, "creator ID", creator);
    kz_group_new_t in = {
        .creator_id = uid,
        .name = name,
        .lang_tag = group_text_arg(L, 4, "lang tag"),
        .description = group_text_arg(L, 5, "description"),
        .avatar_url = group_text_arg(L, 6, "avatar URL"),
        .open = kz_nk_optbool(L, 7, "open", false),
    };
    in.metadata = kz_nk_json_object_arg(L, 8, "metadata");
    in.max_count = kz_nk_optint(L, 9, "max count", 100, 1, INT32_MAX);
    kz_nk_user_must_exist(L, uid);
    kz_nk_guard_t *g = kz_nk_guard_with(L, sizeof(kz_group_t));
    kz_group_t *out = kz_nk_guard_mem(g);
    int rc = kz_store_group_create(kz_lua_db(L), &in, kz_now_ms(), out);
    if (rc == KZ_DB_ECONFLICT) return kz_lua_raise(L, KZ_NK_EXISTS, "Group name is in use.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = out;
    g->fn = kz_nk_free_group;
    kz_nk_push_group(L, out);
    kz_nk_guard_done(g);
    return 1;
}

/* group_update(group_id, user_id?, name?, creator_id?, lang_tag?,
 * description?, avatar_url?, open?, metadata?, max_count?=0): nil or ""
 * (0 for max_count) leaves a field as it is; user_id nil or "" updates as
 * the system, else that user must be an admin or superadmin. */
static int nk_group_update(lua_State *L)
{
    lua_settop(L, 10);
    char gid[37], caller[37], creator[37];
    kz_nk_uuid(L, 1, "group ID", gid);
    kz_nk_optuuid(L, 2, "user ID", caller);
    if (strcmp(caller, KZ_UUID_NIL) == 0) caller[0] = '\0';
    kz_group_update_t u = {.open = -1};
    u.name = group_text_arg(L, 3, "name");
    kz_nk_optuuid(L, 4, "creator ID", creator);
    u.lang_tag = group_text_arg(L, 5, "lang tag");
    u.description = group_text_arg(L, 6, "description");
    u.avatar_url = group_text_arg(L, 7, "avatar URL");
    if (!lua_isnoneornil(L, 8)) u.open = kz_nk_optbool(L, 8, "open", false) ? 1 : 0;
    u.metadata = kz_nk_json_object_arg(L, 9, "metadata");
    u.max_count = kz_nk_optint(L, 10, "max count", 0, 0, INT32_MAX);
    int rc = kz_store_group_update(kz_lua_db(L), gid, *caller ? caller : NULL, &u, kz_now_ms());
    switch (rc) {
    case KZ_DB_OK:
        return 0;
    case KZ_GROUP_EPERM:
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, "Group not found or you're not allowed to update.");
    case KZ_GROUP_ENOFIELDS:
        return kz_lua_raise(L, KZ_NK_INVALID, "Specify at least one field to update.");
    case KZ_GROUP_ENOTUPDATED:
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_GROUP_NOT_FOUND);
    case KZ_DB_ECONFLICT:
        return kz_lua_raise(L, KZ_NK_EXISTS, "Group name is in use.");
    default:
        return kz_lua_raise_store(L, rc);
    }
}

/* group_delete(group_id) */
static int nk_group_delete(lua_State *L)
{
    lua_settop(L, 1);
    char gid[37];
    kz_nk_uuid(L, 1, "group ID", gid);
    kz_db_t *db = kz_lua_db(L);
    kz_group_t g;
    int rc = kz_store_group_get(db, gid, &g);
    if (rc == KZ_DB_OK) kz_group_clear(&g);
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_GROUP_NOT_FOUND);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    rc = kz_store_group_delete(db, gid, NULL);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* groups_get_id(group_ids) -> groups (those that exist, in request order) */
static int nk_groups_get_id(lua_State *L)
{
    lua_settop(L, 1);
    int nids;
    char **ids = kz_nk_strings_arg(L, 1, "group IDs", true, &nids);
    kz_db_t *db = kz_lua_db(L);
    lua_createtable(L, nids, 0);
    int k = 0;
    for (int i = 0; i < nids; i++) {
        kz_nk_guard_t *g = kz_nk_guard_with(L, sizeof(kz_group_t));
        kz_group_t *grp = kz_nk_guard_mem(g);
        int rc = kz_store_group_get(db, ids[i], grp);
        if (rc == KZ_DB_OK) {
            g->p = grp;
            g->fn = kz_nk_free_group;
            kz_nk_push_group(L, grp);
            lua_rawseti(L, -3, ++k);
            kz_nk_guard_done(g);
        } else if (rc != KZ_STORE_NOTFOUND) {
            return kz_lua_raise_store(L, rc);
        }
        lua_pop(L, 1);
    }
    return 1;
}

/* groups_get_random(count?=0) -> groups: up to count (at most 1000)
 * groups picked at random. */
static int nk_groups_get_random(lua_State *L)
{
    lua_settop(L, 1);
    int count = (int)kz_nk_optint(L, 1, "count", 0, 0, 1000);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_group_t *groups = NULL;
    int n = 0;
    int rc = kz_store_groups_random(kz_lua_db(L), count, &groups, &n);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = groups;
    g->n = n;
    g->fn = kz_nk_free_groups;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        kz_nk_push_group(L, &groups[i]);
        lua_rawseti(L, -2, i + 1);
    }
    kz_nk_guard_done(g);
    return 1;
}

/* group_user_join(group_id, user_id, username): an open group makes the
 * user a member, a closed one records a join request. */
static int nk_group_user_join(lua_State *L)
{
    lua_settop(L, 3);
    char gid[37], uid[37];
    kz_nk_uuid(L, 1, "group ID", gid);
    kz_nk_uuid(L, 2, "user ID", uid);
    size_t ulen;
    kz_nk_str(L, 3, "username", &ulen);
    if (ulen == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects username string");
    kz_nk_user_must_exist(L, uid);
    int rc = kz_store_group_join(kz_lua_db(L), gid, uid, kz_now_ms(), NULL);
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_GROUP_NOT_FOUND);
    if (rc == KZ_GROUP_EFULL) return kz_lua_raise(L, KZ_NK_INVALID, "Group is full.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* group_user_leave(group_id, user_id, username) */
static int nk_group_user_leave(lua_State *L)
{
    lua_settop(L, 3);
    char gid[37], uid[37];
    kz_nk_uuid(L, 1, "group ID", gid);
    kz_nk_uuid(L, 2, "user ID", uid);
    size_t ulen;
    kz_nk_str(L, 3, "username", &ulen);
    if (ulen == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects username string");
    int rc = kz_store_group_leave(kz_lua_db(L), gid, uid, kz_now_ms());
    if (rc == KZ_GROUP_ELAST_SUPERADMIN)
        return kz_lua_raise(L, KZ_NK_INVALID,
                            "Cannot leave group when you are the last superadmin.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

typedef int (*users_op_fn)(kz_db_t *db, const char *group_id, const char *caller_id,
                           char **user_ids, int n, int64_t now_ms);

/* group_users_add/kick(group_id, user_ids, caller_id?=""): the caller's
 * role applies when given, else the system's (no checks). */
static int users_op(lua_State *L, users_op_fn fn)
{
    lua_settop(L, 3);
    char gid[37], caller[37];
    kz_nk_uuid(L, 1, "group ID", gid);
    if (!lua_istable(L, 2)) return kz_lua_raise(L, KZ_NK_INVALID, "expects user IDs to be a table");
    int n;
    char **ids = kz_nk_strings_arg(L, 2, "user IDs", true, &n);
    kz_nk_optuuid(L, 3, "caller ID", caller);
    if (strcmp(caller, KZ_UUID_NIL) == 0) caller[0] = '\0';
    if (n == 0) return 0;
    int rc = fn(kz_lua_db(L), gid, *caller ? caller : NULL, ids, n, kz_now_ms());
    switch (rc) {
    case KZ_DB_OK:
        return 0;
    case KZ_STORE_NOTFOUND:
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_GROUP_NOT_FOUND);
    case KZ_GROUP_EPERM:
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, "Group not found or permission denied.");
    case KZ_GROUP_EFULL:
        return kz_lua_raise(L, KZ_NK_INVALID, "Group is full.");
    case KZ_GROUP_EUSER_NOTFOUND:
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, "One or more users not found.");
    default:
        return kz_lua_raise_store(L, rc);
    }
}

static int nk_group_users_add(lua_State *L)
{
    return users_op(L, kz_store_group_users_add);
}
static int nk_group_users_kick(lua_State *L)
{
    return users_op(L, kz_store_group_users_kick);
}
static int nk_group_users_ban(lua_State *L)
{
    return users_op(L, kz_store_group_users_ban);
}
static int nk_group_users_promote(lua_State *L)
{
    return users_op(L, kz_store_group_users_promote);
}
static int nk_group_users_demote(lua_State *L)
{
    return users_op(L, kz_store_group_users_demote);
}

/* The shared input of the membership listings (limit, state, cursor),
 * checked as GET /v2/group/{id}/user checks it. */
static void edge_list_args(lua_State *L, const char *owner, int max_limit, int *limit, int *state,
                           kz_edge_pos_t *pos, bool *has_pos)
{
    *limit = (int)kz_nk_optint(L, 2, "limit", 100, 1, max_limit);
    *state = (int)kz_nk_optint(L, 3, "state", -1, -1, 4);
    json_t *c = cursor_arg(L, 4);
    *has_pos = false;
    if (c) {
        const char *id;
        int64_t f, s, p;
        bool ok = cursor_str(c, "id", &id) && strcmp(id, owner) == 0 && cursor_int(c, "f", &f) &&
                  f == *state && cursor_int(c, "s", &s) && s >= 0 && s <= 4 &&
                  cursor_int(c, "p", &p);
        if (!ok) kz_lua_raise(L, KZ_NK_INVALID, MSG_BAD_CURSOR);
        *pos = (kz_edge_pos_t){.state = s, .position = p};
        *has_pos = true;
    }
}

static void push_edge_cursor(lua_State *L, const char *owner, int filter, int state,
                             int64_t position)
{
    push_cursor(L, json_pack("{s:s,s:i,s:i,s:I}", "id", owner, "f", filter, "s", state, "p",
                             (json_int_t)position));
}

static void free_group_users(void *p, int n)
{
    kz_group_users_free(p, n);
}

static void free_user_groups(void *p, int n)
{
    kz_user_groups_free(p, n);
}

/* group_users_list(group_id, limit?=100, state?=nil, cursor?) -> group_users,
 * cursor: each {user, state}. */
static int nk_group_users_list(lua_State *L)
{
    lua_settop(L, 4);
    char gid[37];
    kz_nk_uuid(L, 1, "group ID", gid);
    int limit, state;
    kz_edge_pos_t pos;
    bool has_pos;
    edge_list_args(L, gid, 10000, &limit, &state, &pos, &has_pos);
    kz_db_t *db = kz_lua_db(L);
    {
        kz_group_t grp;
        int rc = kz_store_group_get(db, gid, &grp);
        if (rc == KZ_DB_OK) kz_group_clear(&grp);
        if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, MSG_GROUP_NOT_FOUND);
        if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    }
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_group_user_t *users = NULL;
    int n = 0;
    bool more = false;
    int rc =
        kz_store_group_users_list(db, gid, state, has_pos ? &pos : NULL, limit, &users, &n, &more);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = users;
    g->n = n;
    g->fn = free_group_users;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        kz_nk_push_user(L, &users[i].user);
        lua_setfield(L, -2, "user");
        kz_nk_set_num(L, "state", users[i].state);
        lua_rawseti(L, -2, i + 1);
    }
    if (more && n)
        push_edge_cursor(L, gid, state, users[n - 1].state, users[n - 1].position);
    else
        lua_pushnil(L);
    kz_nk_guard_done(g);
    return 2;
}

/* user_groups_list(user_id, limit?=100, state?=nil, cursor?) -> user_groups,
 * cursor: each {group, state}. */
static int nk_user_groups_list(lua_State *L)
{
    lua_settop(L, 4);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    int limit, state;
    kz_edge_pos_t pos;
    bool has_pos;
    edge_list_args(L, uid, 100, &limit, &state, &pos, &has_pos);
    kz_nk_user_must_exist(L, uid);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_user_group_t *groups = NULL;
    int n = 0;
    bool more = false;
    int rc = kz_store_user_groups_list(kz_lua_db(L), uid, state, has_pos ? &pos : NULL, limit,
                                       &groups, &n, &more);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = groups;
    g->n = n;
    g->fn = free_user_groups;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        kz_nk_push_group(L, &groups[i].group);
        lua_setfield(L, -2, "group");
        kz_nk_set_num(L, "state", groups[i].state);
        lua_rawseti(L, -2, i + 1);
    }
    if (more && n)
        push_edge_cursor(L, uid, state, groups[n - 1].state, groups[n - 1].position);
    else
        lua_pushnil(L);
    kz_nk_guard_done(g);
    return 2;
}

/* groups_list(name?, lang_tag?, open?, edge_count?=-1, limit?=100, cursor?)
 * -> groups, cursor. The filters of GET /v2/group: a name (a prefix, with
 * '%' wildcards) excludes the others. */
static int nk_groups_list(lua_State *L)
{
    lua_settop(L, 6);
    const char *name = kz_nk_optstr(L, 1, "name");
    const char *lang_tag = kz_nk_optstr(L, 2, "lang tag");
    int open = -1;
    if (!lua_isnoneornil(L, 3)) open = kz_nk_optbool(L, 3, "open", false) ? 1 : 0;
    int64_t members = kz_nk_optint(L, 4, "edge count", -1, -1, INT32_MAX);
    int limit = (int)kz_nk_optint(L, 5, "limit", 100, 1, 100);
    const char *pattern = name ? name + strspn(name, "% ") : NULL;
    kz_group_filter_t f = {.name = pattern && *pattern ? pattern : NULL,
                           .lang_tag = lang_tag && *lang_tag ? lang_tag : NULL,
                           .members = members,
                           .open = open};
    if (f.name && (f.lang_tag || f.open >= 0 || f.members >= 0))
        return kz_lua_raise(L, KZ_NK_INVALID,
                            "name filter cannot be combined with any other filter");
    kz_group_order_t order = kz_group_filter_order(&f);
    json_t *cur = cursor_arg(L, 6);
    kz_group_pos_t pos = {0}, *after = NULL;
    if (cur) {
        int64_t o, fm, fo, e = 0, u = 0;
        const char *fn, *fl, *cn = NULL, *ci = NULL;
        bool ok = cursor_int(cur, "o", &o) && o == (int64_t)order && cursor_str(cur, "fn", &fn) &&
                  strcmp(fn, f.name ? f.name : "") == 0 && cursor_str(cur, "fl", &fl) &&
                  strcmp(fl, f.lang_tag ? f.lang_tag : "") == 0 && cursor_int(cur, "fm", &fm) &&
                  fm == f.members && cursor_int(cur, "fo", &fo) && fo == f.open;
        if (ok && order == KZ_GROUP_ORDER_NAME) ok = cursor_str(cur, "n", &cn);
        if (ok && order != KZ_GROUP_ORDER_NAME)
            ok = cursor_str(cur, "i", &ci) && kz_uuid_valid(ci, strlen(ci)) &&
                 (order == KZ_GROUP_ORDER_UPDATED ? cursor_int(cur, "u", &u)
                                                  : cursor_int(cur, "e", &e));
        if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, MSG_BAD_CURSOR);
        pos = (kz_group_pos_t){.name = cn, .edge_count = e, .update_time = u, .id = ci};
        after = &pos;
    }
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_group_t *groups = NULL;
    int n = 0;
    bool more = false;
    int rc = kz_store_groups_list(kz_lua_db(L), &f, after, limit, &groups, &n, &more);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = groups;
    g->n = n;
    g->fn = kz_nk_free_groups;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        kz_nk_push_group(L, &groups[i]);
        lua_rawseti(L, -2, i + 1);
    }
    if (more && n) {
        const kz_group_t *last = &groups[n - 1];
        json_t *c = json_object();
        json_object_set_new(c, "o", json_integer(order));
        json_object_set_new(c, "fn", json_string(f.name ? f.name : ""));
        json_object_set_new(c, "fl", json_string(f.lang_tag ? f.lang_tag : ""));
        json_object_set_new(c, "fm", json_integer(f.members));
        json_object_set_new(c, "fo", json_integer(f.open));
        if (order == KZ_GROUP_ORDER_NAME) {
            json_object_set_new(c, "n", json_string(last->name));
        } else {
            json_object_set_new(c, "i", json_string(last->id));
            if (order == KZ_GROUP_ORDER_UPDATED)
                json_object_set_new(c, "u", json_integer(last->update_time));
            else
                json_object_set_new(c, "e", json_integer(last->edge_count));
        }
        push_cursor(L, c);
    } else {
        lua_pushnil(L);
    }
    kz_nk_guard_done(g);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Notifications                                                            */

/* Checks a notification code: positive, or Nakama's reserved range for
 * the runtime (-2000..-1000). */
static bool code_ok(int64_t code)
{
    return code > 0 || (code >= -2000 && code <= -1000);
}

/* Checks that every recipient among ids[0..n) exists. */
static void recipients_must_exist(lua_State *L, char **ids, int n)
{
    int top = lua_gettop(L);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_user_t *users = NULL;
    int found = 0;
    int rc = kz_store_users_get(kz_lua_db(L), ids, n, NULL, 0, &users, &found);
    if (rc != KZ_DB_OK) kz_lua_raise_store(L, rc);
    g->p = users;
    g->n = found;
    g->fn = kz_nk_free_users;
    char missing[37] = "";
    for (int j = 0; j < n && !*missing; j++) {
        bool hit = false;
        for (int k = 0; k < found && !hit; k++)
            hit = strcmp(users[k].id, ids[j]) == 0;
        if (!hit) memcpy(missing, ids[j], 37);
    }
    kz_nk_guard_done(g);
    if (*missing) kz_lua_raise(L, KZ_NK_NOT_FOUND, "User account not found: %s.", missing);
    lua_settop(L, top);
}

/* Stores (persistent ones) and pushes live n[0..count) in one transaction:
 * the live pushes wait for the commit. */
static int notifications_send(lua_State *L, kz_notification_t *n, int count)
{
    kz_db_t *db = kz_lua_db(L);
    int rc = kz_db_begin(db);
    if (rc == KZ_DB_OK) {
        rc = kz_store_notifications_add(db, n, count);
        if (rc == KZ_DB_OK)
            rc = kz_db_commit(db);
        else
            kz_db_rollback(db);
    }
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* notification_send(user_id, subject, content, code, sender_id?="",
 * persistent?=false) */
static int nk_notification_send(lua_State *L)
{
    lua_settop(L, 6);
    char uid[37], sender[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    size_t slen;
    const char *subject = kz_nk_str(L, 2, "subject", &slen);
    if (slen == 0)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects subject to be a non-empty string");
    if (!lua_istable(L, 3)) return kz_lua_raise(L, KZ_NK_INVALID, "expects content to be a table");
    const char *content = kz_nk_json_object_arg(L, 3, "content");
    if (lua_type(L, 4) != LUA_TNUMBER)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects code to be a number");
    int64_t code = kz_nk_optint(L, 4, "code", 0, INT32_MIN, INT32_MAX);
    if (!code_ok(code))
        return kz_lua_raise(L, KZ_NK_INVALID, "expects code number to be a positive integer");
    kz_nk_optuuid(L, 5, "sender ID", sender);
    bool persistent = kz_nk_optbool(L, 6, "persistent", false);
    char *ids[1] = {uid};
    recipients_must_exist(L, ids, 1);
    kz_notification_t n = {.user_id = uid,
                           .subject = subject,
                           .content = content,
                           .code = (int)code,
                           .sender_id = *sender && strcmp(sender, KZ_UUID_NIL) != 0 ? sender : NULL,
                           .persistent = persistent};
    return notifications_send(L, &n, 1);
}

/* notifications_send(notifications): each {user_id, subject, content, code,
 * sender_id?, persistent?}; all or none. */
static int nk_notifications_send(lua_State *L)
{
    lua_settop(L, 1);
    if (!lua_istable(L, 1))
        return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of notifications");
    size_t count = lua_objlen(L, 1), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        keys++;
        if (!lua_istable(L, -1))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of notifications");
        lua_pop(L, 1);
    }
    if (keys != count || count > 10000)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects an array of notifications");
    if (count == 0) return 0;
    kz_notification_t *n = kz_nk_scratch(L, sizeof *n * count);
    char(*uids)[37] = kz_nk_scratch(L, 37 * count);
    char(*senders)[37] = kz_nk_scratch(L, 37 * count);
    char **ids = kz_nk_scratch(L, sizeof(char *) * count);
    lua_createtable(L, (int)count, 0); /* keeps the content texts */
    int texts = lua_gettop(L);
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        int t = lua_gettop(L);
        n[i] = (kz_notification_t){0};
        lua_getfield(L, t, "user_id");
        kz_nk_uuid(L, lua_gettop(L), "user_id", uids[i]);
        lua_pop(L, 1);
        lua_getfield(L, t, "subject");
        if (lua_type(L, -1) != LUA_TSTRING || lua_objlen(L, -1) == 0)
            return kz_lua_raise(L, KZ_NK_INVALID,
                                "expects subject to be provided and to be non-empty");
        n[i].subject = lua_tostring(L, -1); /* kept alive by the notification table */
        lua_pop(L, 1);
        lua_getfield(L, t, "content");
        if (!lua_istable(L, -1))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects content to be a table");
        n[i].content = kz_nk_json_object_arg(L, lua_gettop(L), "content");
        lua_rawseti(L, texts, (int)i + 1);
        lua_pop(L, 1);
        lua_getfield(L, t, "code");
        if (lua_type(L, -1) != LUA_TNUMBER)
            return kz_lua_raise(L, KZ_NK_INVALID, "expects code to be a number");
        int64_t code = kz_nk_optint(L, lua_gettop(L), "code", 0, INT32_MIN, INT32_MAX);
        if (!code_ok(code))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects code to be a number above 0");
        n[i].code = (int)code;
        lua_pop(L, 1);
        lua_getfield(L, t, "sender_id");
        kz_nk_optuuid(L, lua_gettop(L), "sender_id", senders[i]);
        lua_pop(L, 1);
        lua_getfield(L, t, "persistent");
        n[i].persistent = kz_nk_optbool(L, lua_gettop(L), "persistent", false);
        lua_pop(L, 2);
        n[i].user_id = uids[i];
        n[i].sender_id = *senders[i] && strcmp(senders[i], KZ_UUID_NIL) != 0 ? senders[i] : NULL;
        ids[i] = uids[i];
    }
    recipients_must_exist(L, ids, (int)count);
    return notifications_send(L, n, (int)count);
}

static void push_notification(lua_State *L, const kz_stored_notification_t *v, const char *user_id);

static void free_stored_notifications(void *p, int n)
{
    kz_stored_notifications_free(p, n);
}

/* notifications_list(user_id, limit?=100, cursor?) -> notifications, cursor.
 * Each {id, user_id, subject, content (table), code, sender_id, create_time,
 * persistent = true}, oldest first. The cursor (REST's cacheable cursor
 * form) is nil when no more follow. */
static int nk_notifications_list(lua_State *L)
{
    lua_settop(L, 3);
    char uid[37];
    kz_nk_uuid(L, 1, "user ID", uid);
    int limit = (int)kz_nk_optint(L, 2, "limit", 100, 1, 1000);
    json_t *c = cursor_arg(L, 3);
    int64_t after_time = 0;
    const char *after_id = "";
    if (c) {
        bool ok = cursor_int(c, "t", &after_time) && cursor_str(c, "i", &after_id) &&
                  (*after_id == '\0' || kz_uuid_valid(after_id, strlen(after_id)));
        if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, MSG_BAD_CURSOR);
    }
    kz_nk_user_must_exist(L, uid);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_stored_notification_t *v = NULL;
    int n = 0;
    int rc = kz_store_notifications_list(kz_lua_db(L), uid, limit + 1, after_time, after_id, &v, &n);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = v;
    g->n = n;
    g->fn = free_stored_notifications;
    bool more = n > limit;
    if (more) n = limit;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_notification(L, &v[i], uid);
        lua_rawseti(L, -2, i + 1);
    }
    if (more)
        push_cursor(L, json_pack("{s:I,s:s}", "t", (json_int_t)v[n - 1].create_time, "i",
                                 v[n - 1].id));
    else
        lua_pushnil(L);
    kz_nk_guard_done(g);
    return 2;
}

/* Pushes the notification table of v (user_id: its recipient). */
static void push_notification(lua_State *L, const kz_stored_notification_t *v, const char *user_id)
{
    lua_createtable(L, 0, 8);
    kz_nk_set_str0(L, "id", v->id);
    kz_nk_set_str0(L, "user_id", user_id);
    kz_nk_set_str0(L, "subject", v->subject);
    kz_nk_push_json_text(L, v->content);
    lua_setfield(L, -2, "content");
    kz_nk_set_num(L, "code", v->code);
    kz_nk_set_str0(L, "sender_id", *v->sender_id ? v->sender_id : KZ_UUID_NIL);
    kz_nk_set_num(L, "create_time", (double)(v->create_time / 1000));
    kz_nk_set_bool(L, "persistent", true);
}

/* notifications_get_id(notification_ids, user_id?="") -> notifications:
 * the stored ones among the ids (of user_id only, when given), oldest
 * first, as notifications_list's tables. */
static int nk_notifications_get_id(lua_State *L)
{
    lua_settop(L, 2);
    if (!lua_istable(L, 1))
        return kz_lua_raise(L, KZ_NK_INVALID, "expects notification IDs to be a table");
    int n;
    char **ids = kz_nk_strings_arg(L, 1, "notification IDs", true, &n);
    if (n > 1000) return kz_lua_raise(L, KZ_NK_INVALID, "expects at most 1000 notification IDs");
    char uid[37];
    bool owner = kz_nk_optuuid(L, 2, "user ID", uid);
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_stored_notification_t *v = NULL;
    int count = 0;
    int rc = kz_store_notifications_get(kz_lua_db(L), ids, n, owner ? uid : NULL, &v, &count);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = v;
    g->n = count;
    g->fn = free_stored_notifications;
    lua_createtable(L, count, 0);
    for (int i = 0; i < count; i++) {
        push_notification(L, &v[i], v[i].user_id);
        lua_rawseti(L, -2, i + 1);
    }
    kz_nk_guard_done(g);
    return 1;
}

/* notification_send_all(subject, content, code, persistent?=false): to
 * every user (the system user excepted), 1000 users per transaction;
 * those online get it live. */
static int nk_notification_send_all(lua_State *L)
{
    lua_settop(L, 4);
    size_t slen;
    const char *subject = kz_nk_str(L, 1, "subject", &slen);
    if (slen == 0)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects subject to be a non-empty string");
    if (!lua_istable(L, 2)) return kz_lua_raise(L, KZ_NK_INVALID, "expects content to be a table");
    const char *content = kz_nk_json_object_arg(L, 2, "content");
    if (lua_type(L, 3) != LUA_TNUMBER)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects code to be a number");
    int64_t code = kz_nk_optint(L, 3, "code", 0, INT32_MIN, INT32_MAX);
    if (!code_ok(code))
        return kz_lua_raise(L, KZ_NK_INVALID, "expects code number to be a positive integer");
    bool persistent = kz_nk_optbool(L, 4, "persistent", false);
    kz_notification_t tmpl = {
        .subject = subject, .content = content, .code = (int)code, .persistent = persistent};
    int rc = kz_store_notifications_send_all(kz_lua_db(L), &tmpl, 1000, NULL);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* notifications_update(updates): each {id, subject?, content?, sender?}
 * changes that stored notification's fields that are given; all or none
 * (NotFound for an id that is not stored). */
static int nk_notifications_update(lua_State *L)
{
    lua_settop(L, 1);
    if (!lua_istable(L, 1))
        return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of notification updates");
    size_t count = lua_objlen(L, 1), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        keys++;
        if (!lua_istable(L, -1))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of notification updates");
        lua_pop(L, 1);
    }
    if (keys != count || count > 10000)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects an array of notification updates");
    if (count == 0) return 0;
    kz_notification_update_t *u = kz_nk_scratch(L, sizeof *u * count);
    char(*ids)[37] = kz_nk_scratch(L, 37 * count);
    char(*senders)[37] = kz_nk_scratch(L, 37 * count);
    lua_createtable(L, (int)count * 2, 0); /* keeps the strings */
    int keep = lua_gettop(L), nkeep = 0;
    for (size_t i = 0; i < count; i++) {
        u[i] = (kz_notification_update_t){0};
        lua_rawgeti(L, 1, (int)i + 1);
        int t = lua_gettop(L);
        lua_getfield(L, t, "id");
        kz_nk_uuid(L, lua_gettop(L), "id", ids[i]);
        u[i].id = ids[i];
        lua_settop(L, t);
        lua_getfield(L, t, "subject");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TSTRING || lua_objlen(L, -1) == 0)
                return kz_lua_raise(L, KZ_NK_INVALID, "expects subject to be a non-empty string");
            u[i].subject = lua_tostring(L, -1);
            lua_pushvalue(L, -1);
            lua_rawseti(L, keep, ++nkeep);
        }
        lua_settop(L, t);
        lua_getfield(L, t, "content");
        if (!lua_isnil(L, -1)) {
            if (!lua_istable(L, -1))
                return kz_lua_raise(L, KZ_NK_INVALID, "expects content to be a table");
            u[i].content = kz_nk_json_object_arg(L, lua_gettop(L), "content");
            lua_rawseti(L, keep, ++nkeep);
        }
        lua_settop(L, t);
        lua_getfield(L, t, "sender");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TSTRING)
                return kz_lua_raise(L, KZ_NK_INVALID, "expects sender to be a string");
            kz_nk_optuuid(L, lua_gettop(L), "sender", senders[i]);
            u[i].sender_id = senders[i];
        }
        lua_settop(L, t - 1);
    }
    int missing = -1;
    int rc = kz_store_notifications_update(kz_lua_db(L), u, (int)count, &missing);
    if (rc == KZ_STORE_NOTFOUND)
        return kz_lua_raise(L, KZ_NK_NOT_FOUND, "Notification not found: %s.", ids[missing]);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* notifications_delete(notifications): each {user_id, notification_id};
 * ids that are not that user's are left alone. All are checked first. */
static int nk_notifications_delete(lua_State *L)
{
    lua_settop(L, 1);
    if (!lua_istable(L, 1))
        return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of notifications");
    size_t count = lua_objlen(L, 1), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        keys++;
        if (!lua_istable(L, -1))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects a valid set of notifications");
        lua_pop(L, 1);
    }
    if (keys != count || count > 10000)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects an array of notifications");
    if (count == 0) return 0;
    char(*uids)[37] = kz_nk_scratch(L, 37 * count);
    char(*nids)[37] = kz_nk_scratch(L, 37 * count);
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        lua_getfield(L, -1, "user_id");
        kz_nk_uuid(L, lua_gettop(L), "user_id", uids[i]);
        lua_getfield(L, -2, "notification_id");
        kz_nk_uuid(L, lua_gettop(L), "notification_id", nids[i]);
        lua_pop(L, 3);
    }
    kz_db_t *db = kz_lua_db(L);
    for (size_t i = 0; i < count; i++) {
        char *id = nids[i];
        int rc = kz_store_notifications_delete(db, uids[i], &id, 1, NULL);
        if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    }
    return 0;
}

/* notifications_delete_id(notification_ids, user_id): the store deletes
 * notifications of one owner, so the user id is required here (Nakama
 * also takes "" for any owner). */
static int nk_notifications_delete_id(lua_State *L)
{
    lua_settop(L, 2);
    int n;
    char **ids = kz_nk_strings_arg(L, 1, "notification IDs", true, &n);
    char uid[37];
    if (!kz_nk_optuuid(L, 2, "user ID", uid))
        return kz_lua_raise(L, KZ_NK_INVALID, "expects a user ID");
    if (n == 0) return 0;
    int rc = kz_store_notifications_delete(kz_lua_db(L), uid, ids, n, NULL);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Chat                                                                     */

static void push_ack(lua_State *L, const kz_channel_t *c, const kz_message_t *m, bool persist);

/* channel_message_send(channel_id, content?, sender_id?="", sender_username?="",
 * persist?=false) -> ack {channelId, messageId, code, username, createTime,
 * updateTime, persistent} (the camelCase keys of Nakama's Lua runtime).
 * Sockets joined to the channel get the message as a channel_message. */
static int nk_channel_message_send(lua_State *L)
{
    lua_settop(L, 5);
    size_t idlen;
    const char *id = kz_nk_str(L, 1, "channel ID", &idlen);
    kz_channel_t *c = kz_nk_scratch(L, sizeof *c);
    if (!kz_channel_parse(c, id, idlen))
        return kz_lua_raise(L, KZ_NK_INVALID, "Invalid channel identifier");
    const char *content = kz_nk_json_object_arg(L, 2, "message content");
    char sender[37];
    if (!kz_nk_optuuid(L, 3, "sender ID", sender)) memcpy(sender, KZ_UUID_NIL, 37);
    const char *username = kz_nk_optstr(L, 4, "sender username");
    if (username && strlen(username) > 128)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects sender username to be at most 128 bytes");
    bool persist = kz_nk_optbool(L, 5, "persist", false);
    kz_message_t m = {.code = KZ_MSG_CHAT,
                      .content = (char *)(content ? content : "{}"),
                      .username = (char *)(username ? username : "")};
    int64_t now_ns = kz_now_ns();
    kz_uuid_v7_ns(m.id, now_ns);
    memcpy(m.sender_id, sender, 37);
    m.create_time = m.update_time = now_ns / 1000000000 * 1000; /* whole seconds, as clients see */
    int rc = kz_store_message_send(kz_lua_db(L), c, &m, persist);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    push_ack(L, c, &m, persist);
    return 1;
}

/* Pushes the ack of a message of channel c (the camelCase keys of
 * Nakama's Lua runtime). */
static void push_ack(lua_State *L, const kz_channel_t *c, const kz_message_t *m, bool persist)
{
    lua_createtable(L, 0, 7);
    kz_nk_set_str0(L, "channelId", c->id);
    kz_nk_set_str0(L, "messageId", m->id);
    kz_nk_set_num(L, "code", m->code);
    kz_nk_set_str0(L, "username", m->username);
    kz_nk_set_num(L, "createTime", (double)(m->create_time / 1000));
    kz_nk_set_num(L, "updateTime", (double)(m->update_time / 1000));
    kz_nk_set_bool(L, "persistent", persist);
}

/* The common part of channel_message_update(channel_id, message_id,
 * content?, sender_id?, sender_username?, persist?) and
 * channel_message_remove(channel_id, message_id, sender_id?,
 * sender_username?, persist?) -> ack. With persist the stored message
 * must exist and be the sender's (NotFound otherwise); either way sockets
 * joined to the channel get a channel_message with code 1 (update) or 2
 * (remove), as for channel_message_send. */
static int message_change(lua_State *L, bool update)
{
    int base = update ? 4 : 3; /* index of sender_id */
    lua_settop(L, base + 2);
    size_t idlen;
    const char *id = kz_nk_str(L, 1, "channel ID", &idlen);
    kz_channel_t *c = kz_nk_scratch(L, sizeof *c);
    if (!kz_channel_parse(c, id, idlen))
        return kz_lua_raise(L, KZ_NK_INVALID, "Invalid channel identifier");
    char mid[37];
    kz_nk_uuid(L, 2, "message ID", mid);
    const char *content = update ? kz_nk_json_object_arg(L, 3, "message content") : NULL;
    char sender[37];
    if (!kz_nk_optuuid(L, base, "sender ID", sender)) memcpy(sender, KZ_UUID_NIL, 37);
    const char *username = kz_nk_optstr(L, base + 1, "sender username");
    if (username && strlen(username) > 128)
        return kz_lua_raise(L, KZ_NK_INVALID, "expects sender username to be at most 128 bytes");
    bool persist = kz_nk_optbool(L, base + 2, "persist", false);
    kz_message_t m = {.code = update ? KZ_MSG_CHAT_UPDATE : KZ_MSG_CHAT_REMOVE,
                      .content = (char *)(content ? content : "{}"),
                      .username = (char *)(username ? username : "")};
    memcpy(m.id, mid, 37);
    memcpy(m.sender_id, sender, 37);
    int64_t now_ms = kz_now_ms();
    now_ms -= now_ms % 1000; /* whole seconds, as clients see */
    m.create_time = m.update_time = now_ms;
    kz_db_t *db = kz_lua_db(L);
    int rc = KZ_DB_OK;
    if (persist && update)
        rc = kz_store_message_update(db, c, mid, sender, m.username, m.content, now_ms,
                                     &m.create_time);
    else if (persist)
        rc = kz_store_message_remove(db, c, mid, sender, &m.create_time);
    if (rc == KZ_STORE_NOTFOUND) return kz_lua_raise(L, KZ_NK_NOT_FOUND, "Message not found.");
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    rc = kz_store_message_send(db, c, &m, false); /* the live side only */
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    push_ack(L, c, &m, persist);
    return 1;
}

static int nk_channel_message_update(lua_State *L)
{
    return message_change(L, true);
}

static int nk_channel_message_remove(lua_State *L)
{
    return message_change(L, false);
}

static void free_messages(void *p, int n)
{
    kz_messages_free(p, n);
}

static void push_message_cursor(lua_State *L, const kz_channel_t *c, const kz_message_t *m,
                                bool forward, bool next)
{
    push_cursor(L, json_pack("{s:s,s:I,s:s,s:b,s:b}", "c", c->id, "t", (json_int_t)m->create_time,
                             "i", m->id, "f", forward, "n", next));
}

/* channel_messages_list(channel_id, limit?=100, forward?=true, cursor?)
 * -> messages, next_cursor, prev_cursor. The stored history of any channel
 * (the runtime is not a member), with GET /v2/channel's cursors: each
 * message {channel_id, message_id, code, sender_id, username, content
 * (table), create_time, update_time, persistent, and room_name, group_id
 * or user_id_one/user_id_two}. */
static int nk_channel_messages_list(lua_State *L)
{
    lua_settop(L, 4);
    size_t idlen;
    const char *id = kz_nk_str(L, 1, "channel ID", &idlen);
    kz_channel_t *c = kz_nk_scratch(L, sizeof *c);
    if (!kz_channel_parse(c, id, idlen))
        return kz_lua_raise(L, KZ_NK_INVALID, "Invalid channel identifier");
    int limit = (int)kz_nk_optint(L, 2, "limit", 100, 1, 100);
    bool forward = kz_nk_optbool(L, 3, "forward", true);
    json_t *cur = cursor_arg(L, 4);
    int64_t t = 0;
    const char *mid = "", *cid;
    bool next = true;
    if (cur) {
        json_t *f = json_object_get(cur, "f"), *nx = json_object_get(cur, "n");
        bool ok = cursor_str(cur, "c", &cid) && strcmp(cid, c->id) == 0 && cursor_int(cur, "t", &t) &&
                  cursor_str(cur, "i", &mid) && json_is_boolean(f) && json_is_true(f) == forward &&
                  json_is_boolean(nx);
        if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, "Cursor is invalid or expired.");
        next = json_is_true(nx);
    }
    bool back = cur && !next;
    bool asc = forward != back;
    kz_message_pos_t after = {t, mid};
    kz_nk_guard_t *g = kz_nk_guard(L);
    kz_message_t *v = NULL;
    int n = 0;
    int rc = kz_store_messages_list(kz_lua_db(L), c, asc, cur ? &after : NULL, limit + 1, &v, &n);
    if (rc != KZ_DB_OK) return kz_lua_raise_store(L, rc);
    g->p = v;
    g->n = n;
    g->fn = free_messages;
    bool more = n > limit;
    int shown = more ? limit : n;
    lua_createtable(L, shown, 0);
    for (int k = 0; k < shown; k++) {
        const kz_message_t *m = &v[back ? shown - 1 - k : k];
        lua_createtable(L, 0, 12);
        kz_nk_set_str0(L, "channel_id", c->id);
        kz_nk_set_str0(L, "message_id", m->id);
        kz_nk_set_num(L, "code", m->code);
        kz_nk_set_str0(L, "sender_id", m->sender_id);
        kz_nk_set_str0(L, "username", m->username);
        kz_nk_push_json_text(L, m->content);
        lua_setfield(L, -2, "content");
        kz_nk_set_num(L, "create_time", (double)(m->create_time / 1000));
        kz_nk_set_num(L, "update_time", (double)(m->update_time / 1000));
        kz_nk_set_bool(L, "persistent", true);
        if (c->mode == KZ_CHAN_ROOM) {
            kz_nk_set_str0(L, "room_name", c->label);
        } else if (c->mode == KZ_CHAN_GROUP) {
            kz_nk_set_str0(L, "group_id", c->subject);
        } else {
            kz_nk_set_str0(L, "user_id_one", c->subject);
            kz_nk_set_str0(L, "user_id_two", c->subcontext);
        }
        lua_rawseti(L, -2, k + 1);
    }
    /* In listing order: first and last shown. */
    const kz_message_t *first = shown ? &v[back ? shown - 1 : 0] : NULL;
    const kz_message_t *last = shown ? &v[back ? 0 : shown - 1] : NULL;
    if (shown && (back || more))
        push_message_cursor(L, c, last, forward, true);
    else
        lua_pushnil(L);
    if (shown && (back ? more : cur != NULL))
        push_message_cursor(L, c, first, forward, false);
    else
        lua_pushnil(L);
    kz_nk_guard_done(g);
    return 3;
}

/* channel_id_build(sender_id, target, type) -> channel id. type 1 room
 * (target: the name), 2 direct (target: the other user's id; sender_id
 * required), 3 group (target: the group id). Nothing is created. */
static int nk_channel_id_build(lua_State *L)
{
    lua_settop(L, 3);
    char sender[37];
    kz_nk_optuuid(L, 1, "sender ID", sender);
    size_t tlen;
    const char *target = kz_nk_str(L, 2, "target", &tlen);
    int64_t type = kz_nk_optint(L, 3, "channel type", 0, 1, 3);
    if (lua_isnoneornil(L, 3))
        return kz_lua_raise(L, KZ_NK_INVALID, "invalid channel type: expects value 1-3");
    kz_channel_t *c = kz_nk_scratch(L, sizeof *c);
    bool ok;
    if (type == 1) {
        ok = kz_channel_room(c, target);
    } else if (type == 3) {
        ok = kz_channel_group(c, target);
    } else {
        char other[37];
        if (!*sender || strcmp(sender, KZ_UUID_NIL) == 0)
            return kz_lua_raise(L, KZ_NK_INVALID, "expects a sender ID for a direct channel");
        if (!kz_nk_uuid_copy(target, tlen, other))
            return kz_lua_raise(L, KZ_NK_INVALID, "expects target to be a valid user ID");
        kz_nk_user_must_exist(L, other);
        ok = kz_channel_direct(c, sender, other);
    }
    if (!ok) return kz_lua_raise(L, KZ_NK_INVALID, "Invalid channel target.");
    lua_pushstring(L, c->id);
    return 1;
}

void kz_nk_open_social(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"friends_list", nk_friends_list},
        {"friends_add", nk_friends_add},
        {"friends_delete", nk_friends_delete},
        {"friends_block", nk_friends_block},
        {"friends_of_friends_list", nk_friends_of_friends_list},
        {"users_get_friend_status", nk_users_get_friend_status},
        {"friend_metadata_update", nk_friend_metadata_update},
        {"group_create", nk_group_create},
        {"group_update", nk_group_update},
        {"group_delete", nk_group_delete},
        {"groups_get_id", nk_groups_get_id},
        {"groups_get_random", nk_groups_get_random},
        {"group_user_join", nk_group_user_join},
        {"group_user_leave", nk_group_user_leave},
        {"group_users_add", nk_group_users_add},
        {"group_users_kick", nk_group_users_kick},
        {"group_users_ban", nk_group_users_ban},
        {"group_users_promote", nk_group_users_promote},
        {"group_users_demote", nk_group_users_demote},
        {"group_users_list", nk_group_users_list},
        {"user_groups_list", nk_user_groups_list},
        {"groups_list", nk_groups_list},
        {"notification_send", nk_notification_send},
        {"notifications_send", nk_notifications_send},
        {"notifications_list", nk_notifications_list},
        {"notifications_delete", nk_notifications_delete},
        {"notifications_delete_id", nk_notifications_delete_id},
        {"notifications_get_id", nk_notifications_get_id},
        {"notification_send_all", nk_notification_send_all},
        {"notifications_update", nk_notifications_update},
        {"channel_message_send", nk_channel_message_send},
        {"channel_message_update", nk_channel_message_update},
        {"channel_message_remove", nk_channel_message_remove},
        {"channel_messages_list", nk_channel_messages_list},
        {"channel_id_build", nk_channel_id_build},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
