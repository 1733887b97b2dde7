/* Friends: add (invite or accept), list, delete, block, and friends of
 * friends. The relations themselves live in store/friends.c; this file reads
 * and checks the request the way Nakama does and writes the replies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cursor.h"
#include "api/handlers.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/friends.h"

#define FRIENDS_LIST_DEFAULT 1000
#define FRIENDS_LIST_MAX 1000
#define FOF_LIST_DEFAULT 10
#define FOF_LIST_MAX 100

static void lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

/* Reads the Int32Value query parameter key. Returns 0 with *present false
 * when it is absent or empty, 0 with *value set when it is an integer, and
 * -1 (400 answered) otherwise. */
static int query_int32(kz_call_t *call, const char *key, bool *present, int *value)
{
    char *v = kz_query_get(call->ex->req.query, key);
    *present = false;
    if (!v || !*v) {
        kz_free(v);
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    bool ok = (*v == '-' || *v == '+' || (*v >= '0' && *v <= '9')) && end != v && *end == '\0' && errno == 0 &&
              x >= INT32_MIN && x <= INT32_MAX;
    kz_free(v);
    if (!ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "Invalid value for '%s': expected an integer.", key);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    *present = true;
    *value = (int)x;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Add, delete, block: the users they apply to                              */

typedef enum { ACT_ADD, ACT_DELETE, ACT_BLOCK } friend_action_t;

/* Collects the target users of an add/delete/block call from the ids and
 * usernames query lists, checked as Nakama checks them: self or a bad id
 * is InvalidArgument, unknown usernames are dropped. Returns the count of
 * lower-case ids in *out (owned; kz_store_strings_free), or -1 when the
 * call was answered already (an error, or {} for nothing to do). */
static int collect_targets(kz_call_t *call, friend_action_t act, char ***out)
{
    static const char *const self_msg[] = {
        [ACT_ADD] = "Cannot add self as friend.",
        [ACT_DELETE] = "Cannot delete self.",
        [ACT_BLOCK] = "Cannot block self.",
    };
    kz_slice_t q = call->ex->req.query;
    char **ids = NULL, **names = NULL;
    int nids = kz_query_all(q, "ids", &ids);
    int nnames = kz_query_all(q, "usernames", &names);
    kz_user_t *users = NULL;
    int nusers = 0;
    int result = -1;
    *out = NULL;
    if (nids + nnames == 0) {
        kz_reply_empty(call->ex);
        goto done;
    }
    for (int i = 0; i < nids; i++) {
        lower_ascii(ids[i]);
        if (strcmp(ids[i], call->session.uid) == 0) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, self_msg[act]);
            goto done;
        }
        if (!kz_uuid_valid(ids[i], strlen(ids[i])) || strcmp(ids[i], KZ_UUID_NIL) == 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "Invalid user ID '%.100s'.", ids[i]);
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
            goto done;
        }
    }
    for (int i = 0; i < nnames; i++) {
        if (!*names[i]) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Username must not be empty.");
            goto done;
        }
        if (strcmp(names[i], call->session.usn) == 0) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, self_msg[act]);
            goto done;
        }
    }
    if (nnames) {
        int rc = kz_store_users_get(call->db, NULL, 0, names, nnames, &users, &nusers);
        if (rc != KZ_DB_OK) {
            kz_reply_store_error(call, rc);
            goto done;
        }
    }
    if (nids + nusers == 0) {
        if (act == ACT_DELETE)
            kz_reply_empty(call->ex);
        else
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "No valid ID or username was provided.");
        goto done;
    }
    /* The ids array grows by the resolved usernames and is handed over. */
    ids = kz_realloc(ids, sizeof(char *) * (size_t)(nids + nusers));
    for (int i = 0; i < nusers; i++) ids[nids + i] = kz_strdup(users[i].id);
    *out = ids;
    result = nids + nusers;
    ids = NULL;
    nids = 0;
done:
    for (int i = 0; i < nusers; i++) kz_user_clear(&users[i]);
    kz_free(users);
    kz_store_strings_free(ids, nids);
    kz_store_strings_free(names, nnames);
    return result;
}

void kz_h_friends_add(kz_call_t *call)
{
    /* metadata: a JSON object for the caller's side of the relation. */
    char *metadata = kz_query_get(call->ex->req.query, "metadata");
    if (metadata && *metadata) {
        json_t *m = json_loads(metadata, 0, NULL);
        bool ok = json_is_object(m);
        json_decref(m);
        if (!ok) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Metadata must be a valid JSON object.");
            kz_free(metadata);
            return;
        }
    }
    char **ids;
    int n = collect_targets(call, ACT_ADD, &ids);
    if (n >= 0) {
        int rc = kz_store_friends_add(call->db, call->session.uid, ids, n, metadata, kz_now_ms(), NULL);
        if (rc == KZ_DB_OK)
            kz_reply_empty(call->ex);
        else if (rc == KZ_STORE_NOTFOUND)
            kz_reply_error(call->ex, KZ_GRPC_NOT_FOUND, "User account not found.");
        else
            kz_reply_store_error(call, rc);
        kz_store_strings_free(ids, n);
    }
    kz_free(metadata);
}

void kz_h_friends_delete(kz_call_t *call)
{
    char **ids;
    int n = collect_targets(call, ACT_DELETE, &ids);
    if (n < 0) return;
    int rc = kz_store_friends_delete(call->db, call->session.uid, ids, n, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else
        kz_reply_store_error(call, rc);
    kz_store_strings_free(ids, n);
}

void kz_h_friends_block(kz_call_t *call)
{
    char **ids;
    int n = collect_targets(call, ACT_BLOCK, &ids);
    if (n < 0) return;
    int rc = kz_store_friends_block(call->db, call->session.uid, ids, n, kz_now_ms());
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else
        kz_reply_store_error(call, rc);
    kz_store_strings_free(ids, n);
}

/* ------------------------------------------------------------------------ */
/* Lists                                                                    */

/* Reads the limit query parameter: def when absent, else it must lie in
 * 1..max. Returns -1 (answered) when bad. */
static int read_limit(kz_call_t *call, int def, int max, int *limit)
{
    bool present;
    if (query_int32(call, "limit", &present, limit) != 0) return -1;
    if (!present) {
        *limit = def;
        return 0;
    }
    if (*limit < 1 || *limit > max) {
        char msg[80];
        snprintf(msg, sizeof msg, "Invalid limit - limit must be between 1 and %d.", max);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    return 0;
}

/* Integer member key of a cursor object within lo..hi. */
static bool cursor_int(json_t *c, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(c, key);
    if (!json_is_integer(v)) return false;
    *out = json_integer_value(v);
    return *out >= lo && *out <= hi;
}

/* UUID string member key of a cursor object, copied into out. */
static bool cursor_uuid(json_t *c, const char *key, char out[37])
{
    const char *s = json_string_value(json_object_get(c, key));
    if (!s || !kz_uuid_valid(s, strlen(s))) return false;
    memcpy(out, s, 37);
    lower_ascii(out);
    return true;
}

/* Reads the cursor query parameter into a decoded object: *c NULL when
 * absent. Returns -1 (answered "Cursor is invalid.") when not a cursor. */
static int read_cursor(kz_call_t *call, json_t **c)
{
    char *s = kz_query_get(call->ex->req.query, "cursor");
    *c = NULL;
    if (!s || !*s) {
        kz_free(s);
        return 0;
    }
    *c = kz_cursor_decode(s);
    kz_free(s);
    if (!*c) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Cursor is invalid.");
        return -1;
    }
    return 0;
}

static json_t *friend_json(const kz_friend_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "user", kz_user_json(&f->user));
    json_object_set_new(o, "state", json_integer(f->state)); /* Int32Value: always there */
    kz_json_put_time(o, "update_time", f->update_time);
    if (f->metadata && *f->metadata) json_object_set_new(o, "metadata", json_string(f->metadata));
    return o;
}

void kz_h_friends_list(kz_call_t *call)
{
    int limit, state = -1;
    bool has_state;
    if (read_limit(call, FRIENDS_LIST_DEFAULT, FRIENDS_LIST_MAX, &limit) != 0) return;
    if (query_int32(call, "state", &has_state, &state) != 0) return;
    if (!has_state) {
        state = -1;
    } else if (state < 0 || state > 3) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid state - state must be between 0 and 3.");
        return;
    }
    json_t *c;
    if (read_cursor(call, &c) != 0) return;
    kz_friend_pos_t from;
    bool has_from = c != NULL;
    if (c) {
        /* A cursor only continues the listing it came from: same filter. */
        int64_t f, s, p;
        bool ok = cursor_int(c, "f", -1, 3, &f) && f == state && cursor_int(c, "s", 0, 3, &s) &&
                  (state < 0 || s == state) && cursor_int(c, "p", INT64_MIN, INT64_MAX, &p);
        json_decref(c);
        if (!ok) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Cursor is invalid.");
            return;
        }
        from = (kz_friend_pos_t){(int)s, p};
    }
    kz_friend_t *friends;
    int n;
    kz_friend_pos_t next;
    bool more;
    int rc = kz_store_friends_list(call->db, call->session.uid, state, limit, has_from ? &from : NULL, &friends, &n,
                                   &next, &more);
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        return;
    }
    json_t *o = json_object();
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, friend_json(&friends[i]));
        json_object_set_new(o, "friends", arr);
    }
    if (more) {
        char *cur = kz_cursor_encode(json_pack("{s:i,s:i,s:I}", "f", state, "s", next.state, "p",
                                               (json_int_t)next.position));
        json_object_set_new(o, "cursor", json_string(cur));
        kz_free(cur);
    }
    kz_friends_free(friends, n);
    kz_reply_json(call->ex, o);
}

void kz_h_friends_of_friends(kz_call_t *call)
{
    int limit;
    if (read_limit(call, FOF_LIST_DEFAULT, FOF_LIST_MAX, &limit) != 0) return;
    json_t *c;
    if (read_cursor(call, &c) != 0) return;
    kz_fof_pos_t from;
    bool has_from = c != NULL;
    if (c) {
        bool ok = cursor_uuid(c, "r", from.referrer) && cursor_uuid(c, "u", from.user_id);
        json_decref(c);
        if (!ok) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Cursor is invalid.");
            return;
        }
    }
    kz_friend_of_friend_t *fof;
    int n;
    kz_fof_pos_t next;
    bool more;
    int rc = kz_store_friends_of_friends(call->db, call->session.uid, limit, has_from ? &from : NULL, &fof, &n,
                                         &next, &more);
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        return;
    }
    json_t *o = json_object();
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "referrer", json_string(fof[i].referrer));
            json_object_set_new(e, "user", kz_user_json(&fof[i].user));
            json_array_append_new(arr, e);
        }
        json_object_set_new(o, "friends_of_friends", arr);
    }
    if (more) {
        char *cur = kz_cursor_encode(json_pack("{s:s,s:s}", "r", next.referrer, "u", next.user_id));
        json_object_set_new(o, "cursor", json_string(cur));
        kz_free(cur);
    }
    kz_friends_of_friends_free(fof, n);
    kz_reply_json(call->ex, o);
}
