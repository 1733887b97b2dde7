/* Groups: create, update, delete, list and search groups; join, leave and
 * the admin actions (add, kick, ban, promote, demote); list a group's users
 * and a user's groups. Validation order and messages follow Nakama's
 * server/api_group.go; the role rules live in store/groups.c. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cursor.h"
#include "api/handlers.h"
#include "api/validate.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/groups.h"

/* Column sizes of Nakama's groups table, in characters. */
#define NAME_MAX_CHARS 255
#define DESCRIPTION_MAX_CHARS 255
#define LANG_TAG_MAX_CHARS 18
#define AVATAR_URL_MAX_CHARS 512

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

/* The Group message (new reference): zero scalars omitted, `open` (a
 * BoolValue) always present. */
static json_t *group_json(const kz_group_t *g)
{
    json_t *o = json_object();
    kz_json_put_str(o, "id", g->id);
    kz_json_put_str(o, "creator_id", g->creator_id);
    kz_json_put_str(o, "name", g->name);
    kz_json_put_str(o, "description", g->description);
    kz_json_put_str(o, "lang_tag", g->lang_tag);
    kz_json_put_str(o, "metadata", g->metadata);
    kz_json_put_str(o, "avatar_url", g->avatar_url);
    json_object_set_new(o, "open", json_boolean(g->open));
    if (g->edge_count) json_object_set_new(o, "edge_count", json_integer(g->edge_count));
    if (g->max_count) json_object_set_new(o, "max_count", json_integer(g->max_count));
    kz_json_put_time(o, "create_time", g->create_time);
    kz_json_put_time(o, "update_time", g->update_time);
    return o;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* Reads a UUID path parameter into out (lower-cased). On failure answers
 * "<what> ID must be set." / "<what> ID must be a valid ID." and returns
 * false. */
static bool path_id(kz_call_t *call, int i, const char *what, char out[37])
{
    char *v = i < call->nparams ? kz_url_decode(call->params[i].p, call->params[i].n) : NULL;
    char msg[64];
    bool ok = false;
    if (!v || !*v) {
        snprintf(msg, sizeof msg, "%s ID must be set.", what);
    } else if (!kz_uuid_valid(v, strlen(v))) {
        snprintf(msg, sizeof msg, "%s ID must be a valid ID.", what);
    } else {
        memcpy(out, v, 37);
        kz_lower_ascii(out, 36);
        ok = true;
    }
    if (!ok) kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
    kz_free(v);
    return ok;
}

/* Parses a decimal int32 (optional sign, digits only). */
static bool parse_int32(const char *s, int32_t *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < INT32_MIN || v > INT32_MAX) return false;
    for (const char *p = s; *p; p++)
        if (!(*p >= '0' && *p <= '9') && !(p == s && (*p == '-' || *p == '+'))) return false;
    *out = (int32_t)v;
    return true;
}

/* Optional Int32Value query parameter: *present tells whether it was
 * given. -1 (answered 400) when it is not an integer. */
static int query_int32(kz_call_t *call, const char *key, bool *present, int32_t *out)
{
    char *v = kz_query_get(call->ex->req.query, key);
    *present = v != NULL;
    int rc = 0;
    if (v && !parse_int32(v, out)) {
        char msg[96];
        snprintf(msg, sizeof msg, "Invalid value for '%s': expected an integer.", key);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        rc = -1;
    }
    kz_free(v);
    return rc;
}

/* The optional `limit` of a listing: def when absent, else lo..hi. */
static bool query_limit(kz_call_t *call, int def, int *limit)
{
    bool present;
    int32_t v = 0;
    if (query_int32(call, "limit", &present, &v) != 0) return false;
    *limit = present ? v : def;
    if (present && (v < 1 || v > 100)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid limit - limit must be between 1 and 100.");
        return false;
    }
    return true;
}

/* The repeated `user_ids` query parameter, every one a non-nil UUID
 * (lower-cased). *ids is owned (kz_store_strings_free). false (answered)
 * on a bad id. */
static bool query_user_ids(kz_call_t *call, char ***ids, int *n)
{
    *n = kz_query_all(call->ex->req.query, "user_ids", ids);
    for (int i = 0; i < *n; i++) {
        char *id = (*ids)[i];
        size_t len = strlen(id);
        if (!kz_uuid_valid(id, len) || strcmp(id, KZ_UUID_NIL) == 0) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "User ID must be a valid ID.");
            kz_store_strings_free(*ids, *n);
            *ids = NULL;
            *n = 0;
            return false;
        }
        kz_lower_ascii(id, len);
    }
    return true;
}

/* Number of UTF-8 characters in s (the text is valid UTF-8: jansson checks). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) n++;
    return n;
}

/* Refuses a string field longer than max characters (answered 400). */
static bool check_length(kz_call_t *call, const char *field, const char *v, size_t max)
{
    if (!v || utf8_chars(v) <= max) return true;
    char msg[128];
    snprintf(msg, sizeof msg, "Invalid value for field '%s': at most %zu characters.", field, max);
    kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
    return false;
}

/* Optional bool body field: *out is -1 when absent or null, else 0/1. -1
 * (answered 400) for another type. */
static int body_bool(kz_call_t *call, json_t *body, const char *field, int *out)
{
    json_t *v = kz_json_field(body, field);
    *out = -1;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "Invalid value for field '%s': expected a boolean.", field);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    *out = json_is_true(v) ? 1 : 0;
    return 0;
}

/* Optional int32 body field (a JSON integer, an integral number or a
 * numeric string, as protojson takes them); *out keeps 0 when absent. */
static int body_int32(kz_call_t *call, json_t *body, const char *field, int32_t *out)
{
    json_t *v = kz_json_field(body, field);
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    bool ok = false;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        ok = i >= INT32_MIN && i <= INT32_MAX;
        if (ok) *out = (int32_t)i;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        ok = d >= INT32_MIN && d <= INT32_MAX && d == (double)(int32_t)d;
        if (ok) *out = (int32_t)d;
    } else if (json_is_string(v)) {
        ok = parse_int32(json_string_value(v), out);
    }
    if (!ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "Invalid value for field '%s': expected a 32-bit integer.",
                 field);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Create, update, delete                                                   */

void kz_h_group_create(kz_call_t *call)
{
    json_t *body = kz_body_object(call);
    if (!body) return;
    const char *name, *description, *lang_tag, *avatar_url;
    int open;
    int32_t max_count;
    if (kz_json_string(call, body, "name", &name) != 0 ||
        kz_json_string(call, body, "description", &description) != 0 ||
        kz_json_string(call, body, "lang_tag", &lang_tag) != 0 ||
        kz_json_string(call, body, "avatar_url", &avatar_url) != 0 ||
        body_bool(call, body, "open", &open) != 0 ||
        body_int32(call, body, "max_count", &max_count) != 0)
        goto out;
    if (!name || !*name) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Group name must be set.");
        goto out;
    }
    if (max_count != 0 && max_count < 1) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Group max count must be >= 1 when set.");
        goto out;
    }
    if (!check_length(call, "name", name, NAME_MAX_CHARS) ||
        !check_length(call, "description", description, DESCRIPTION_MAX_CHARS) ||
        !check_length(call, "lang_tag", lang_tag, LANG_TAG_MAX_CHARS) ||
        !check_length(call, "avatar_url", avatar_url, AVATAR_URL_MAX_CHARS))
        goto out;
    /* CreateGroupRequest has no metadata: groups get "{}" (the runtime can set it). */
    kz_group_new_t in = {.creator_id = call->session.uid,
                         .name = name,
                         .description = description,
                         .lang_tag = lang_tag,
                         .avatar_url = avatar_url,
                         .open = open == 1,
                         .max_count = max_count ? max_count : 100};
    kz_group_t g;
    int rc = kz_store_group_create(call->db, &in, kz_now_ms(), &g);
    if (rc == KZ_DB_OK) {
        kz_reply_json(call->ex, group_json(&g));
        kz_group_clear(&g);
    } else if (rc == KZ_DB_ECONFLICT) {
        kz_reply_error(call->ex, KZ_GRPC_ALREADY_EXISTS, "Group name is in use.");
    } else {
        kz_reply_store_error(call, rc);
    }
out:
    json_decref(body);
}

void kz_h_group_update(kz_call_t *call)
{
    char gid[37];
    if (!path_id(call, 0, "Group", gid)) return;
    json_t *body = kz_body_object(call);
    if (!body) return;
    kz_group_update_t u = {.open = -1};
    if (kz_json_string(call, body, "name", &u.name) != 0 ||
        kz_json_string(call, body, "description", &u.description) != 0 ||
        kz_json_string(call, body, "lang_tag", &u.lang_tag) != 0 ||
        kz_json_string(call, body, "avatar_url", &u.avatar_url) != 0 ||
        body_bool(call, body, "open", &u.open) != 0)
        goto out;
    if (u.name && !*u.name) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Group name cannot be empty.");
        goto out;
    }
    if (u.lang_tag && !*u.lang_tag) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Group language cannot be empty.");
        goto out;
    }
    if (!check_length(call, "name", u.name, NAME_MAX_CHARS) ||
        !check_length(call, "description", u.description, DESCRIPTION_MAX_CHARS) ||
        !check_length(call, "lang_tag", u.lang_tag, LANG_TAG_MAX_CHARS) ||
        !check_length(call, "avatar_url", u.avatar_url, AVATAR_URL_MAX_CHARS))
        goto out;
    int rc = kz_store_group_update(call->db, gid, call->session.uid, &u, kz_now_ms());
    switch (rc) {
    case KZ_DB_OK:
        kz_reply_empty(call->ex);
        break;
    case KZ_GROUP_EPERM:
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND,
                       "Group not found or you're not allowed to update.");
        break;
    case KZ_GROUP_ENOFIELDS:
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Specify at least one field to update.");
        break;
    case KZ_GROUP_ENOTUPDATED:
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "No new fields in group update.");
        break;
    case KZ_DB_ECONFLICT:
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Group name is in use.");
        break;
    default:
        kz_reply_store_error(call, rc);
    }
out:
    json_decref(body);
}

void kz_h_group_delete(kz_call_t *call)
{
    char gid[37];
    if (!path_id(call, 0, "Group", gid)) return;
    int rc = kz_store_group_delete(call->db, gid, call->session.uid);
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_GROUP_EPERM)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Group not found or you're not allowed to delete.");
    else
        kz_reply_store_error(call, rc);
}

/* ------------------------------------------------------------------------ */
/* Join and leave                                                           */

void kz_h_group_join(kz_call_t *call)
{
    char gid[37];
    if (!path_id(call, 0, "Group", gid)) return;
    int rc = kz_store_group_join(call->db, gid, call->session.uid, kz_now_ms(), NULL);
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_STORE_NOTFOUND)
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "Group not found.");
    else if (rc == KZ_GROUP_EFULL)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Group is full.");
    else
        kz_reply_store_error(call, rc);
}

void kz_h_group_leave(kz_call_t *call)
{
    char gid[37];
    if (!path_id(call, 0, "Group", gid)) return;
    int rc = kz_store_group_leave(call->db, gid, call->session.uid, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_GROUP_ELAST_SUPERADMIN)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Cannot leave group when you are the last superadmin.");
    else
        kz_reply_store_error(call, rc);
}

/* ------------------------------------------------------------------------ */
/* Admin actions                                                            */

typedef int (*users_op_fn)(kz_db_t *db, const char *group_id, const char *caller_id,
                           char **user_ids, int n, int64_t now_ms);

/* The shared shape of add/kick/ban/promote/demote: group id, user_ids
 * (an empty list is a no-op, except for demote which requires some), the
 * store call, and Nakama's answers. */
static void users_op(kz_call_t *call, users_op_fn fn, bool require_ids)
{
    char gid[37];
    if (!path_id(call, 0, "Group", gid)) return;
    char **ids = NULL;
    int n = 0;
    if (!query_user_ids(call, &ids, &n)) return;
    if (n == 0) {
        if (require_ids)
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "User IDs must be set.");
        else
            kz_reply_empty(call->ex);
        kz_store_strings_free(ids, n);
        return;
    }
    int rc = fn(call->db, gid, call->session.uid, ids, n, kz_now_ms());
    switch (rc) {
    case KZ_DB_OK:
        kz_reply_empty(call->ex);
        break;
    case KZ_GROUP_EPERM:
        kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "Group not found or permission denied.");
        break;
    case KZ_GROUP_EFULL:
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Group is full.");
        break;
    case KZ_GROUP_EUSER_NOTFOUND:
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "One or more users not found.");
        break;
    default:
        kz_reply_store_error(call, rc);
    }
    kz_store_strings_free(ids, n);
}

void kz_h_group_add(kz_call_t *call)
{
    users_op(call, kz_store_group_users_add, false);
}
void kz_h_group_kick(kz_call_t *call)
{
    users_op(call, kz_store_group_users_kick, false);
}
void kz_h_group_ban(kz_call_t *call)
{
    users_op(call, kz_store_group_users_ban, false);
}
void kz_h_group_promote(kz_call_t *call)
{
    users_op(call, kz_store_group_users_promote, false);
}
void kz_h_group_demote(kz_call_t *call)
{
    users_op(call, kz_store_group_users_demote, true);
}

/* ------------------------------------------------------------------------ */
/* Listings                                                                 */

/* Reads an integer member of a decoded cursor; false when absent or not one. */
static bool cursor_int(json_t *c, const char *key, int64_t *out)
{
    json_t *v = json_object_get(c, key);
    if (!json_is_integer(v)) return false;
    *out = json_integer_value(v);
    return true;
}

/* Reads a string member of a decoded cursor (borrowed); false when absent
 * or not one. */
static bool cursor_str(json_t *c, const char *key, const char **out)
{
    json_t *v = json_object_get(c, key);
    if (!json_is_string(v)) return false;
    *out = json_string_value(v);
    return true;
}

void kz_h_groups_list(kz_call_t *call)
{
    kz_slice_t q = call->ex->req.query;
    char *name = kz_query_get(q, "name");
    char *lang_tag = kz_query_get(q, "lang_tag");
    char *cursor = kz_query_get(q, "cursor");
    json_t *cur = NULL;
    kz_group_t *groups = NULL;
    int n = 0;
    int limit;
    bool members_set, open_set = false, open = false;
    int32_t members = -1;
    if (!query_limit(call, 1, &limit) || query_int32(call, "members", &members_set, &members) != 0)
        goto out;
    {
        char *ov = kz_query_get(q, "open");
        open_set = ov != NULL;
        kz_free(ov);
    }
    if (kz_query_bool(q, "open", false, &open) != 0) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid value for 'open': expected true or false.");
        goto out;
    }
    if (!members_set || members < 0) members = -1; /* Nakama: a negative count is no filter */
    if (name && *name && ((lang_tag && *lang_tag) || open_set || members >= 0)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "name filter cannot be combined with any other filter");
        goto out;
    }
    const char *pattern =
        name ? name + strspn(name, "% ") : NULL; /* leading '%' and spaces dropped */
    kz_group_filter_t f = {.name = pattern && *pattern ? pattern : NULL,
                           .lang_tag = lang_tag && *lang_tag ? lang_tag : NULL,
                           .members = members,
                           .open = open_set ? (open ? 1 : 0) : -1};
    kz_group_order_t order = kz_group_filter_order(&f);

    /* A cursor carries the order and filters it was made with, and the sort
     * key of the last group shown; all must agree with this request. */
    kz_group_pos_t pos = {0}, *after = NULL;
    if (cursor && *cursor) {
        cur = kz_cursor_decode(cursor);
        int64_t o, fm, fo, e = 0, u = 0;
        const char *fn, *fl, *cn = NULL, *ci = NULL;
        bool ok = cur && cursor_int(cur, "o", &o) && o == (int64_t)order &&
                  cursor_str(cur, "fn", &fn) && strcmp(fn, f.name ? f.name : "") == 0 &&
                  cursor_str(cur, "fl", &fl) && strcmp(fl, f.lang_tag ? f.lang_tag : "") == 0 &&
                  cursor_int(cur, "fm", &fm) && fm == f.members && cursor_int(cur, "fo", &fo) &&
                  fo == f.open;
        if (ok && order == KZ_GROUP_ORDER_NAME) ok = cursor_str(cur, "n", &cn);
        if (ok && order != KZ_GROUP_ORDER_NAME)
            ok = cursor_str(cur, "i", &ci) && kz_uuid_valid(ci, strlen(ci)) &&
                 (order == KZ_GROUP_ORDER_UPDATED ? cursor_int(cur, "u", &u)
                                                  : cursor_int(cur, "e", &e));
        if (!ok) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Malformed cursor was used.");
            goto out;
        }
        pos = (kz_group_pos_t){.name = cn, .edge_count = e, .update_time = u, .id = ci};
        after = &pos;
    }

    bool more = false;
    int rc = kz_store_groups_list(call->db, &f, after, limit, &groups, &n, &more);
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        goto out;
    }
    json_t *o = json_object();
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, group_json(&groups[i]));
        json_object_set_new(o, "groups", arr);
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
        char *s = kz_cursor_encode(c);
        json_object_set_new(o, "cursor", json_string(s));
        kz_free(s);
    }
    kz_reply_json(call->ex, o);
out:
    json_decref(cur);
    kz_groups_free(groups, n);
    kz_free(name);
    kz_free(lang_tag);
    kz_free(cursor);
}

/* The shared input of the two membership listings: limit (default 100),
 * state (0..4) and a cursor bound to owner_id and the state filter. */
typedef struct edge_list_args {
    int limit;
    int state; /* -1 = states 0..3 */
    kz_edge_pos_t pos;
    bool has_pos;
} edge_list_args_t;

static bool edge_list_input(kz_call_t *call, const char *owner_id, edge_list_args_t *a)
{
    bool state_set;
    int32_t state = -1;
    a->has_pos = false;
    if (!query_limit(call, 100, &a->limit) || query_int32(call, "state", &state_set, &state) != 0)
        return false;
    if (state_set && (state < 0 || state > 4)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid state - state must be between 0 and 4.");
        return false;
    }
    a->state = state_set ? state : -1;
    char *cursor = kz_query_get(call->ex->req.query, "cursor");
    bool ok = true;
    if (cursor && *cursor) {
        json_t *c = kz_cursor_decode(cursor);
        const char *owner;
        int64_t f, s, p;
        ok = c && cursor_str(c, "id", &owner) && strcmp(owner, owner_id) == 0 &&
             cursor_int(c, "f", &f) && f == a->state && cursor_int(c, "s", &s) && s >= 0 &&
             s <= 4 && cursor_int(c, "p", &p);
        if (ok) {
            a->pos = (kz_edge_pos_t){.state = s, .position = p};
            a->has_pos = true;
        } else {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Cursor is invalid.");
        }
        json_decref(c);
    }
    kz_free(cursor);
    return ok;
}

/* Sets "cursor" on o to resume after (state, position) of the last row. */
static void put_edge_cursor(json_t *o, const char *owner_id, int filter, int state,
                            int64_t position)
{
    json_t *c = json_object();
    json_object_set_new(c, "id", json_string(owner_id));
    json_object_set_new(c, "f", json_integer(filter));
    json_object_set_new(c, "s", json_integer(state));
    json_object_set_new(c, "p", json_integer(position));
    char *s = kz_cursor_encode(c);
    json_object_set_new(o, "cursor", json_string(s));
    kz_free(s);
}

void kz_h_group_users_list(kz_call_t *call)
{
    char gid[37];
    if (!path_id(call, 0, "Group", gid)) return;
    edge_list_args_t a;
    if (!edge_list_input(call, gid, &a)) return;
    kz_group_user_t *users = NULL;
    int n = 0;
    bool more = false;
    int rc = kz_store_group_users_list(call->db, gid, a.state, a.has_pos ? &a.pos : NULL, a.limit,
                                       &users, &n, &more);
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        return;
    }
    json_t *o = json_object();
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) {
            json_t *gu = json_object();
            json_object_set_new(gu, "user", kz_user_json(&users[i].user));
            json_object_set_new(gu, "state", json_integer(users[i].state));
            json_array_append_new(arr, gu);
        }
        json_object_set_new(o, "group_users", arr);
    }
    if (more && n) put_edge_cursor(o, gid, a.state, users[n - 1].state, users[n - 1].position);
    kz_group_users_free(users, n);
    kz_reply_json(call->ex, o);
}

void kz_h_user_groups_list(kz_call_t *call)
{
    char uid[37];
    if (!path_id(call, 0, "User", uid)) return;
    edge_list_args_t a;
    if (!edge_list_input(call, uid, &a)) return;
    kz_user_group_t *groups = NULL;
    int n = 0;
    bool more = false;
    int rc = kz_store_user_groups_list(call->db, uid, a.state, a.has_pos ? &a.pos : NULL, a.limit,
                                       &groups, &n, &more);
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        return;
    }
    json_t *o = json_object();
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) {
            json_t *ug = json_object();
            json_object_set_new(ug, "group", group_json(&groups[i].group));
            json_object_set_new(ug, "state", json_integer(groups[i].state));
            json_array_append_new(arr, ug);
        }
        json_object_set_new(o, "user_groups", arr);
    }
    if (more && n) put_edge_cursor(o, uid, a.state, groups[n - 1].state, groups[n - 1].position);
    kz_user_groups_free(groups, n);
    kz_reply_json(call->ex, o);
}
