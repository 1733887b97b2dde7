/* Storage objects: read, write, delete and list (Nakama's storage API,
 * server/api_storage.go). Clients always act as themselves: they write and
 * delete only their own objects and read what the permissions allow. The
 * rules (validation order and messages, versions, permissions) are
 * Nakama's; store/storage.h has the transactional part. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cursor.h"
#include "api/handlers.h"
#include "api/validate.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/storage.h"

#define MSG_NOT_SET "Invalid collection or key value supplied. They must be set."
#define MSG_TOO_LONG "Invalid collection or key value supplied. They must be at most 128 bytes."
#define MSG_BAD_READ "Invalid Read permission supplied. It must be either 0, 1 or 2."
#define MSG_BAD_WRITE "Invalid Write permission supplied. It must be either 0 or 1."
#define MSG_NOT_OBJECT "Value must be a JSON object."
#define MSG_BAD_USER "Invalid user ID - make sure user ID is a valid UUID."
#define MSG_REJECT_VERSION "Storage write rejected - version check failed."
#define MSG_REJECT_PERMISSION "Storage write rejected - permission denied."
#define MSG_REJECT_DELETE "Storage delete rejected - not found, version check failed, or permission denied."
#define MSG_BAD_LIMIT "Invalid limit - limit must be between 1 and 100."
#define MSG_BAD_CURSOR "Malformed cursor was used."

#define LIST_LIMIT_DEFAULT 1
#define LIST_LIMIT_MAX 100

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

/* The StorageObject message for o (new reference). */
static json_t *object_json(const kz_storage_object_t *o)
{
    json_t *j = json_object();
    kz_json_put_str(j, "collection", o->collection);
    kz_json_put_str(j, "key", o->key);
    kz_json_put_str(j, "user_id", o->user_id);
    kz_json_put_str(j, "value", o->value);
    kz_json_put_str(j, "version", o->version);
    if (o->permission_read) json_object_set_new(j, "permission_read", json_integer(o->permission_read));
    if (o->permission_write) json_object_set_new(j, "permission_write", json_integer(o->permission_write));
    kz_json_put_time(j, "create_time", o->create_time);
    kz_json_put_time(j, "update_time", o->update_time);
    return j;
}

/* {"objects": [...]} with the array omitted when empty (new reference). */
static json_t *objects_json(const kz_storage_object_t *v, int n)
{
    json_t *o = json_object();
    if (n > 0) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, object_json(&v[i]));
        json_object_set_new(o, "objects", arr);
    }
    return o;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* The repeated message field `snake` of body: *out is the borrowed array or
 * NULL when absent or null. Answers 400 and returns false when it is not
 * an array of objects. */
static bool message_array(kz_call_t *call, json_t *body, const char *snake, json_t **out)
{
    json_t *v = kz_json_field(body, snake);
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    bool ok = json_is_array(v);
    size_t i;
    json_t *e;
    if (ok) json_array_foreach(v, i, e) if (!json_is_object(e)) ok = false;
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "Invalid value for field '%s': expected an array of objects.", snake);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return false;
    }
    *out = v;
    return true;
}

/* Parses a whole base-10 int32 the way Go's strconv.ParseInt(s, 10, 32)
 * does (optional sign, digits only). Returns 0, or -1 for bad syntax and -2
 * when out of range. */
static int parse_int32(const char *s, int32_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!*p) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v < INT32_MIN || v > INT32_MAX) return -2;
    *out = (int32_t)v;
    return 0;
}

/* An Int32Value field: *present is false when absent or null. Accepts a
 * JSON integer, an integral number (1.0) or a string holding an integer,
 * as protojson does; answers 400 and returns -1 otherwise. */
static int json_int32(kz_call_t *call, json_t *obj, const char *snake, bool *present, int32_t *out)
{
    json_t *v = kz_json_field(obj, snake);
    *present = false;
    if (!v || json_is_null(v)) return 0;
    bool ok = false;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        ok = i >= INT32_MIN && i <= INT32_MAX;
        *out = (int32_t)i;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        ok = d >= INT32_MIN && d <= INT32_MAX && d == (double)(int32_t)d;
        if (ok) *out = (int32_t)d;
    } else if (json_is_string(v)) {
        ok = parse_int32(json_string_value(v), out) == 0;
    }
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "Invalid value for field '%s': expected a 32-bit integer.", snake);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    *present = true;
    return 0;
}

static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Skips a JSON string starting at s[*i] == '"'; false when malformed. */
static bool skip_string(const char *s, size_t n, size_t *i)
{
    size_t j = *i + 1;
    while (j < n) {
        unsigned char c = (unsigned char)s[j];
        if (c == '"') {
            *i = j + 1;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (++j >= n) return false;
            c = (unsigned char)s[j];
            if (c == 'u') {
                for (int k = 1; k <= 4; k++) {
                    char h = j + (size_t)k < n ? s[j + (size_t)k] : '\0';
                    bool hex = (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
                    if (!hex) return false;
                }
                j += 4;
            } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
                return false;
            }
        }
        j++;
    }
    return false;
}

/* Skips a JSON number at s[*i]; false when malformed. */
static bool skip_number(const char *s, size_t n, size_t *i)
{
    size_t j = *i;
#define DIGIT(k) ((k) < n && s[k] >= '0' && s[k] <= '9')
    if (j < n && s[j] == '-') j++;
    if (j < n && s[j] == '0')
        j++;
    else if (DIGIT(j))
        while (DIGIT(j)) j++;
    else
        return false;
    if (j < n && s[j] == '.') {
        if (!DIGIT(j + 1)) return false;
        for (j++; DIGIT(j);) j++;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        if (!DIGIT(j)) return false;
        while (DIGIT(j)) j++;
    }
#undef DIGIT
    *i = j;
    return true;
}

/* Deepest nesting accepted, as Go's encoding/json. */
#define JSON_MAX_DEPTH 10000

/* True when s[0..n) is exactly one valid JSON text (RFC 8259 syntax,
 * whitespace around allowed) whose first non-whitespace byte is '{'.
 * Nakama's test: json.Valid plus the leading brace. A syntax check only:
 * numbers of any size are fine, as in Go. Iterative, so deep nesting
 * costs no stack. */
static bool json_object_text(const char *s, size_t n)
{
    unsigned char stack[(JSON_MAX_DEPTH + 7) / 8] = {0}; /* bit set = inside an object */
    int depth = 0;
    size_t i = 0;
    while (i < n && json_ws(s[i])) i++;
    if (i == n || s[i] != '{') return false;
    enum { VALUE, AFTER_VALUE, KEY } state = VALUE;
    for (;;) {
        while (i < n && json_ws(s[i])) i++;
        if (state == VALUE) {
            if (i == n) return false;
            char c = s[i];
            if (c == '{' || c == '[') {
                if (depth == JSON_MAX_DEPTH) return false;
                if (c == '{')
                    stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
                else
                    stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
                depth++;
                i++;
                while (i < n && json_ws(s[i])) i++;
                if (i < n && s[i] == (c == '{' ? '}' : ']')) {
                    depth--;
                    i++;
                    state = AFTER_VALUE;
                } else {
                    state = c == '{' ? KEY : VALUE;
                }
                continue;
            }
            if (c == '"') {
                if (!skip_string(s, n, &i)) return false;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (!skip_number(s, n, &i)) return false;
            } else if (n - i >= 4 && memcmp(s + i, "true", 4) == 0) {
                i += 4;
            } else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
                i += 5;
            } else if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
                i += 4;
            } else {
                return false;
            }
            state = AFTER_VALUE;
        } else if (state == KEY) {
            if (i == n || s[i] != '"' || !skip_string(s, n, &i)) return false;
            while (i < n && json_ws(s[i])) i++;
            if (i == n || s[i] != ':') return false;
            i++;
            state = VALUE;
        } else { /* AFTER_VALUE */
            if (depth == 0) return i == n;
            if (i == n) return false;
            bool in_object = stack[(depth - 1) / 8] & (1u << ((depth - 1) % 8));
            if (s[i] == ',') {
                i++;
                state = in_object ? KEY : VALUE;
            } else if (s[i] == (in_object ? '}' : ']')) {
                i++;
                depth--;
            } else {
                return false;
            }
        }
    }
}

/* Canonical lower-case copy of a user id into out; false when it is not a
 * UUID. */
static bool user_id_copy(const char *s, char out[37])
{
    size_t n = strlen(s);
    if (!kz_uuid_valid(s, n)) return false;
    memcpy(out, s, n + 1);
    kz_lower_ascii(out, n);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Write                                                                    */

/* One WriteStorageObject as read from the body (strings borrowed). */
typedef struct write_in {
    const char *collection, *key, *value, *version;
    bool has_read, has_write;
    int32_t read, write;
} write_in_t;

/* PUT /v2/storage: writes the caller's objects in one transaction and
 * answers their acks in request order. The whole body is type-checked
 * first, then each object against Nakama's rules in order; any rejection
 * (validation, version, permission) writes nothing. */
void kz_h_storage_write(kz_call_t *call)
{
    json_t *body = kz_body_object(call);
    if (!body) return;
    json_t *arr;
    write_in_t *in = NULL;
    kz_storage_write_t *w = NULL;
    kz_storage_ack_t *acks = NULL;
    if (!message_array(call, body, "objects", &arr)) goto out;
    size_t n = arr ? json_array_size(arr) : 0;
    if (n == 0) {
        kz_reply_json(call->ex, json_object());
        goto out;
    }
    /* First the message as a whole (types), then each object's rules in
     * order, as Nakama decodes the request before validating it. */
    in = kz_calloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        if (kz_json_string(call, o, "collection", &in[i].collection) != 0 ||
            kz_json_string(call, o, "key", &in[i].key) != 0 || kz_json_string(call, o, "value", &in[i].value) != 0 ||
            kz_json_string(call, o, "version", &in[i].version) != 0 ||
            json_int32(call, o, "permission_read", &in[i].has_read, &in[i].read) != 0 ||
            json_int32(call, o, "permission_write", &in[i].has_write, &in[i].write) != 0)
            goto out;
    }
    w = kz_calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) {
        write_in_t *o = &in[i];
        const char *bad = NULL;
        if (!o->collection || !*o->collection || !o->key || !*o->key || !o->value || !*o->value)
            bad = MSG_NOT_SET;
        else if (strlen(o->collection) > KZ_STORAGE_NAME_MAX || strlen(o->key) > KZ_STORAGE_NAME_MAX)
            bad = MSG_TOO_LONG;
        else if (o->has_read && (o->read < 0 || o->read > 2))
            bad = MSG_BAD_READ;
        else if (o->has_write && (o->write < 0 || o->write > 1))
            bad = MSG_BAD_WRITE;
        else if (!json_object_text(o->value, strlen(o->value)))
            bad = MSG_NOT_OBJECT;
        if (bad) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
            goto out;
        }
        w[i] = (kz_storage_write_t){
            .collection = o->collection,
            .key = o->key,
            .user_id = call->session.uid,
            .value = o->value,
            .version = o->version,
            .permission_read = o->has_read ? o->read : 1,
            .permission_write = o->has_write ? o->write : 1,
        };
    }
    acks = kz_calloc(n, sizeof *acks);
    int rc = kz_store_storage_write(call->db, w, (int)n, false, kz_now_ms(), acks, NULL);
    if (rc == KZ_STORAGE_REJECT_VERSION) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_REJECT_VERSION);
    } else if (rc == KZ_STORAGE_REJECT_PERMISSION) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_REJECT_PERMISSION);
    } else if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
    } else {
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_object();
            kz_json_put_str(a, "collection", w[i].collection);
            kz_json_put_str(a, "key", w[i].key);
            kz_json_put_str(a, "version", acks[i].version);
            kz_json_put_str(a, "user_id", w[i].user_id);
            kz_json_put_time(a, "create_time", acks[i].create_time);
            kz_json_put_time(a, "update_time", acks[i].update_time);
            json_array_append_new(list, a);
        }
        json_t *o = json_object();
        json_object_set_new(o, "acks", list);
        kz_reply_json(call->ex, o);
    }
out:
    kz_free(acks);
    kz_free(w);
    kz_free(in);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Read                                                                     */

/* POST /v2/storage: the requested objects the caller may read, in request
 * order; missing or unreadable ones are left out. */
void kz_h_storage_read(kz_call_t *call)
{
    json_t *body = kz_body_object(call);
    if (!body) return;
    json_t *arr;
    kz_storage_id_t *ids = NULL;
    char (*owners)[37] = NULL;
    kz_storage_object_t *objs = NULL;
    int nobjs = 0;
    if (!message_array(call, body, "object_ids", &arr)) goto out;
    size_t n = arr ? json_array_size(arr) : 0;
    if (n == 0) {
        kz_reply_json(call->ex, json_object());
        goto out;
    }
    ids = kz_calloc(n, sizeof *ids);
    owners = kz_calloc(n, sizeof *owners);
    const char **uid = kz_calloc(n, sizeof *uid);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        if (kz_json_string(call, o, "collection", &ids[i].collection) != 0 ||
            kz_json_string(call, o, "key", &ids[i].key) != 0 || kz_json_string(call, o, "user_id", &uid[i]) != 0) {
            kz_free(uid);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *bad = NULL;
        if (!ids[i].collection || !*ids[i].collection || !ids[i].key || !*ids[i].key)
            bad = MSG_NOT_SET;
        /* An empty user id means the system user; spelling out the nil
         * UUID is refused, as in Nakama. */
        else if (uid[i] && *uid[i] && (!user_id_copy(uid[i], owners[i]) || strcmp(owners[i], KZ_UUID_NIL) == 0))
            bad = MSG_BAD_USER;
        if (bad) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, bad);
            kz_free(uid);
            goto out;
        }
        ids[i].user_id = owners[i]; /* "" = system user */
    }
    kz_free(uid);
    int rc = kz_store_storage_read(call->db, call->session.uid, ids, (int)n, &objs, &nobjs);
    if (rc != KZ_DB_OK)
        kz_reply_store_error(call, rc);
    else
        kz_reply_json(call->ex, objects_json(objs, nobjs));
out:
    kz_storage_objects_free(objs, nobjs);
    kz_free(owners);
    kz_free(ids);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Delete                                                                   */

/* PUT /v2/storage/delete: deletes the caller's objects (write > 0, version
 * checked when given), all or none. */
void kz_h_storage_delete(kz_call_t *call)
{
    json_t *body = kz_body_object(call);
    if (!body) return;
    json_t *arr;
    kz_storage_id_t *ids = NULL;
    if (!message_array(call, body, "object_ids", &arr)) goto out;
    size_t n = arr ? json_array_size(arr) : 0;
    if (n == 0) {
        kz_reply_empty(call->ex);
        goto out;
    }
    ids = kz_calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        if (kz_json_string(call, o, "collection", &ids[i].collection) != 0 ||
            kz_json_string(call, o, "key", &ids[i].key) != 0 ||
            kz_json_string(call, o, "version", &ids[i].version) != 0)
            goto out;
        ids[i].user_id = call->session.uid; /* clients delete only their own */
    }
    for (size_t i = 0; i < n; i++) {
        if (!ids[i].collection || !*ids[i].collection || !ids[i].key || !*ids[i].key) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_NOT_SET);
            goto out;
        }
    }
    int rc = kz_store_storage_delete(call->db, ids, (int)n, false, NULL);
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else if (rc == KZ_STORAGE_REJECT_DELETE)
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_REJECT_DELETE);
    else
        kz_reply_store_error(call, rc);
out:
    kz_free(ids);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* List                                                                     */

/* The limit query parameter (Int32Value, default 1, 1..100). Answers 400
 * and returns false when it is not a number in range; a non-number gets
 * the gateway's parse message. */
static bool list_limit(kz_call_t *call, int *limit)
{
    char *v = kz_query_get(call->ex->req.query, "limit");
    *limit = LIST_LIMIT_DEFAULT;
    if (!v) return true;
    int32_t l = 0;
    int rc = parse_int32(v, &l);
    if (rc != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "parsing field \"limit\": strconv.ParseInt: parsing \"%.64s\": %s", v,
                 rc == -1 ? "invalid syntax" : "value out of range");
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
    } else if (l < 1 || l > LIST_LIMIT_MAX) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_LIMIT);
        rc = -1;
    }
    kz_free(v);
    *limit = l;
    return rc == 0;
}

/* Decodes a path parameter; *usable is false when it holds a NUL byte or
 * is not UTF-8, so it cannot name a stored object. NULL on a bad escape. */
static char *path_param(kz_slice_t s, bool *usable)
{
    char *v = kz_url_decode(s.p, s.n);
    if (!v) return NULL;
    size_t escapes = 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] == '%') escapes++;
    size_t len = strlen(v);
    *usable = len == s.n - 2 * escapes && kz_utf8_valid(v, len);
    return v;
}

/* GET /v2/storage/{collection}[/{user_id}]: one page of a collection (see
 * kz_store_storage_list for who sees what), with an opaque cursor to the
 * next page: {c: collection, u: owner filter, k: key, o: user id} of the
 * last object returned. */
void kz_h_storage_list(kz_call_t *call)
{
    kz_slice_t q = call->ex->req.query;
    bool usable = true, user_usable = true;
    char *collection = path_param(call->params[0], &usable);
    char *user = call->nparams > 1 ? path_param(call->params[1], &user_usable) : kz_query_get(q, "user_id");
    char *cursor = kz_query_get(q, "cursor");
    json_t *pos = NULL;
    kz_storage_object_t *objs = NULL;
    int nobjs = 0;
    char owner[37] = "";
    int limit;
    if (!collection || (call->nparams > 1 && !user)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid escape in the request path.");
        goto out;
    }
    if (!list_limit(call, &limit)) goto out;
    if (user && *user && (!user_usable || !user_id_copy(user, owner))) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_USER);
        goto out;
    }
    /* The cursor is only a position: it must come from the same listing
     * (collection and owner filter); permissions are applied again. */
    const char *after_key = NULL, *after_user = NULL;
    if (cursor && *cursor) {
        pos = kz_cursor_decode(cursor);
        const char *c = json_string_value(json_object_get(pos, "c"));
        const char *u = json_string_value(json_object_get(pos, "u"));
        after_key = json_string_value(json_object_get(pos, "k"));
        after_user = json_string_value(json_object_get(pos, "o"));
        if (!c || !u || !after_key || !after_user || strcmp(c, collection) != 0 || strcmp(u, owner) != 0) {
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, MSG_BAD_CURSOR);
            goto out;
        }
    }
    if (!usable) { /* no stored collection has that name */
        kz_reply_json(call->ex, json_object());
        goto out;
    }
    bool more = false;
    int rc = kz_store_storage_list(call->db, call->session.uid, *owner ? owner : NULL, collection, limit,
                                   after_key, after_user, &objs, &nobjs, &more);
    if (rc != KZ_DB_OK) {
        kz_reply_store_error(call, rc);
        goto out;
    }
    json_t *o = objects_json(objs, nobjs);
    if (more && nobjs > 0) {
        const kz_storage_object_t *last = &objs[nobjs - 1];
        json_t *next = json_pack("{s:s, s:s, s:s, s:s}", "c", collection, "u", owner, "k", last->key, "o",
                                 last->user_id);
        char *enc = kz_cursor_encode(next);
        json_object_set_new(o, "cursor", json_string(enc));
        kz_free(enc);
    }
    kz_reply_json(call->ex, o);
out:
    kz_storage_objects_free(objs, nobjs);
    json_decref(pos);
    kz_free(cursor);
    kz_free(user);
    kz_free(collection);
}
