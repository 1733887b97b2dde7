/* Notifications: list the caller's stored notifications with a cacheable
 * cursor, and delete some of them. Creating them is up to the areas that
 * send them (friends, groups) through store/notification.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cursor.h"
#include "api/handlers.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/notification.h"

#define NOTIFICATIONS_LIST_DEFAULT 1
#define NOTIFICATIONS_LIST_MAX 100

static const char malformed_cursor[] = "Malformed cursor was used.";

/* Reads the limit query parameter (default, or 1..max). Returns -1 (400
 * answered) when it is not an integer in range. */
static int read_limit(kz_call_t *call, int def, int max, int *limit)
{
    char *v = kz_query_get(call->ex->req.query, "limit");
    *limit = def;
    if (!v || !*v) {
        kz_free(v);
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    bool number = (*v == '-' || *v == '+' || (*v >= '0' && *v <= '9')) && end != v && *end == '\0' &&
                  errno == 0 && x >= INT32_MIN && x <= INT32_MAX;
    kz_free(v);
    if (!number) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid value for 'limit': expected an integer.");
        return -1;
    }
    if (x < 1 || x > max) {
        char msg[80];
        snprintf(msg, sizeof msg, "Invalid limit - limit must be between 1 and %d.", max);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
        return -1;
    }
    *limit = (int)x;
    return 0;
}

/* The cacheable cursor {"t": create_time ms, "i": id}: the position after
 * which the next listing starts; id "" is the very beginning. */
static char *cursor_make(int64_t create_time, const char *id)
{
    return kz_cursor_encode(json_pack("{s:I,s:s}", "t", (json_int_t)create_time, "i", id));
}

/* Decodes a cacheable cursor into its position. False when it is not one. */
static bool cursor_read(const char *s, int64_t *create_time, char id[37])
{
    json_t *c = kz_cursor_decode(s);
    if (!c) return false;
    json_t *t = json_object_get(c, "t");
    const char *i = json_string_value(json_object_get(c, "i"));
    bool ok = json_is_integer(t) && json_integer_value(t) >= 0 && i &&
              (*i == '\0' || kz_uuid_valid(i, strlen(i)));
    if (ok) {
        *create_time = json_integer_value(t);
        snprintf(id, 37, "%s", i);
        for (char *p = id; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    }
    json_decref(c);
    return ok;
}

static json_t *notification_json(const kz_stored_notification_t *n)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(n->id));
    if (n->subject && *n->subject) json_object_set_new(o, "subject", json_string(n->subject));
    if (n->content && *n->content) json_object_set_new(o, "content", json_string(n->content));
    if (n->code) json_object_set_new(o, "code", json_integer(n->code));
    if (n->sender_id[0]) json_object_set_new(o, "sender_id", json_string(n->sender_id));
    kz_json_put_time(o, "create_time", n->create_time);
    json_object_set_new(o, "persistent", json_true()); /* only persistent ones are stored */
    return o;
}

void kz_h_notifications_list(kz_call_t *call)
{
    int limit;
    if (read_limit(call, NOTIFICATIONS_LIST_DEFAULT, NOTIFICATIONS_LIST_MAX, &limit) != 0) return;
    char *cursor = kz_query_get(call->ex->req.query, "cacheable_cursor");
    int64_t after_time = 0;
    char after_id[37] = "";
    if (cursor && *cursor && !cursor_read(cursor, &after_time, after_id)) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, malformed_cursor);
        kz_free(cursor);
        return;
    }
    kz_stored_notification_t *list;
    int n;
    int rc = kz_store_notifications_list(call->db, call->session.uid, limit, after_time, after_id, &list, &n);
    if (rc != KZ_DB_OK) {
        kz_free(cursor);
        kz_reply_store_error(call, rc);
        return;
    }
    json_t *o = json_object();
    char *next;
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, notification_json(&list[i]));
        json_object_set_new(o, "notifications", arr);
        next = cursor_make(list[n - 1].create_time, list[n - 1].id);
    } else if (cursor && *cursor) {
        /* Nothing newer: the client keeps the position it had. */
        next = kz_strdup(cursor);
    } else {
        next = cursor_make(0, "");
    }
    json_object_set_new(o, "cacheable_cursor", json_string(next));
    kz_free(next);
    kz_free(cursor);
    kz_stored_notifications_free(list, n);
    kz_reply_json(call->ex, o);
}

void kz_h_notifications_delete(kz_call_t *call)
{
    char **ids;
    int n = kz_query_all(call->ex->req.query, "ids", &ids);
    int rc = KZ_DB_OK;
    for (int i = 0; i < n; i++) {
        if (!kz_uuid_valid(ids[i], strlen(ids[i]))) {
            char msg[160];
            snprintf(msg, sizeof msg, "Invalid notification ID '%.100s'.", ids[i]);
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, msg);
            goto out;
        }
        for (char *p = ids[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    }
    if (n) rc = kz_store_notifications_delete(call->db, call->session.uid, ids, n, NULL);
    if (rc == KZ_DB_OK)
        kz_reply_empty(call->ex);
    else
        kz_reply_store_error(call, rc);
out:
    kz_store_strings_free(ids, n);
}
