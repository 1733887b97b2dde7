/* Chat history: GET /v2/channel/{channel_id}, a page of a channel's stored
 * messages in (create_time, message_id) order, oldest first by default.
 *
 * Cursors are opaque positions {"c": channel id, "t": create_time ms,
 * "i": message id, "f": forward, "n": next}: a "next" cursor resumes after
 * its message in the listing's order, a "prev" one goes back before it
 * (the page is still returned in the listing's order). A cursor is only
 * honoured for the channel and direction it was made for. The cacheable
 * cursor is a forward "next" cursor at the newest message seen, so a client
 * can later ask for what arrived since. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cursor.h"
#include "api/handlers.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/message.h"

#define CHANNEL_LIST_DEFAULT 1
#define CHANNEL_LIST_MAX 100

typedef struct pos {
    int64_t t;
    char id[37]; /* "" with t 0: before the first message */
    bool forward;
    bool next;
} pos_t;

static char *cursor_make(const kz_channel_t *c, int64_t t, const char *id, bool forward, bool next)
{
    return kz_cursor_encode(json_pack("{s:s,s:I,s:s,s:b,s:b}", "c", c->id, "t", (json_int_t)t, "i",
                                      id, "f", forward, "n", next));
}

/* Decodes a cursor of channel c; false when it is not one. */
static bool cursor_read(const char *s, const kz_channel_t *c, pos_t *p)
{
    json_t *j = kz_cursor_decode(s);
    if (!j) return false;
    const char *ch = json_string_value(json_object_get(j, "c"));
    json_t *t = json_object_get(j, "t");
    const char *id = json_string_value(json_object_get(j, "i"));
    json_t *f = json_object_get(j, "f"), *n = json_object_get(j, "n");
    bool ok = ch && strcmp(ch, c->id) == 0 && json_is_integer(t) && json_integer_value(t) >= 0 &&
              id && (*id == '\0' || kz_uuid_valid(id, strlen(id))) && json_is_boolean(f) &&
              json_is_boolean(n);
    if (ok) {
        p->t = json_integer_value(t);
        snprintf(p->id, sizeof p->id, "%s", id);
        p->forward = json_is_true(f);
        p->next = json_is_true(n);
    }
    json_decref(j);
    return ok;
}

/* Reads limit (default, or 1..max); -1 with a 400 answered otherwise. */
static int read_limit(kz_call_t *call, int *limit)
{
    char *v = kz_query_get(call->ex->req.query, "limit");
    *limit = CHANNEL_LIST_DEFAULT;
    if (!v || !*v) {
        kz_free(v);
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    bool number = (*v == '-' || *v == '+' || (*v >= '0' && *v <= '9')) && end != v &&
                  *end == '\0' && errno == 0 && x >= INT32_MIN && x <= INT32_MAX;
    kz_free(v);
    if (!number) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid value for 'limit': expected an integer.");
        return -1;
    }
    if (x < 1 || x > CHANNEL_LIST_MAX) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid limit - limit must be between 1 and 100.");
        return -1;
    }
    *limit = (int)x;
    return 0;
}

static json_t *message_json(const kz_channel_t *c, const kz_message_t *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "channel_id", json_string(c->id));
    json_object_set_new(o, "message_id", json_string(m->id));
    json_object_set_new(o, "code", json_integer(m->code));
    json_object_set_new(o, "sender_id", json_string(m->sender_id));
    if (m->username && *m->username) json_object_set_new(o, "username", json_string(m->username));
    json_object_set_new(o, "content", json_string(m->content ? m->content : "{}"));
    kz_json_put_time(o, "create_time", m->create_time);
    kz_json_put_time(o, "update_time", m->update_time);
    json_object_set_new(o, "persistent", json_true());
    if (c->mode == KZ_CHAN_ROOM) {
        json_object_set_new(o, "room_name", json_string(c->label));
    } else if (c->mode == KZ_CHAN_GROUP) {
        json_object_set_new(o, "group_id", json_string(c->subject));
    } else {
        json_object_set_new(o, "user_id_one", json_string(c->subject));
        json_object_set_new(o, "user_id_two", json_string(c->subcontext));
    }
    return o;
}

void kz_h_channel_messages_list(kz_call_t *call)
{
    kz_channel_t c;
    kz_slice_t raw = call->params[0];
    char *id = kz_url_decode(raw.p, raw.n);
    /* A %00 would cut the id short: not a channel id. */
    bool valid = id && !memmem(raw.p, raw.n, "%00", 3) && kz_channel_parse(&c, id, strlen(id));
    kz_free(id);
    if (!valid) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid channel ID.");
        return;
    }
    int limit;
    if (read_limit(call, &limit) != 0) return;
    bool forward = true;
    if (kz_query_bool(call->ex->req.query, "forward", true, &forward) != 0) {
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT,
                       "Invalid value for 'forward': expected a boolean.");
        return;
    }
    char *cursor = kz_query_get(call->ex->req.query, "cursor");
    pos_t from = {0};
    bool have_cursor = cursor && *cursor;
    bool bad_cursor = have_cursor && (!cursor_read(cursor, &c, &from) || from.forward != forward);
    if (bad_cursor) {
        kz_free(cursor);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Cursor is invalid or expired.");
        return;
    }
    /* Who may read: group members, the two users of a direct channel,
     * anyone for a room. */
    if (c.mode == KZ_CHAN_GROUP) {
        bool member = false;
        int rc = kz_store_message_group_member(call->db, c.subject, call->session.uid, &member);
        if (rc != KZ_DB_OK) {
            kz_free(cursor);
            kz_reply_store_error(call, rc);
            return;
        }
        if (!member) {
            kz_free(cursor);
            kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Group not found.");
            return;
        }
    } else if (c.mode == KZ_CHAN_DIRECT && strcmp(c.subject, call->session.uid) != 0 &&
               strcmp(c.subcontext, call->session.uid) != 0) {
        kz_free(cursor);
        kz_reply_error(call->ex, KZ_GRPC_INVALID_ARGUMENT, "Invalid channel ID.");
        return;
    }
    /* A "prev" cursor reads backwards from its message, then the page is
     * turned round into the listing's order. */
    bool back = have_cursor && !from.next;
    bool asc = forward != back;
    kz_message_pos_t after = {from.t, from.id};
    kz_message_t *v;
    int n;
    int rc =
        kz_store_messages_list(call->db, &c, asc, have_cursor ? &after : NULL, limit + 1, &v, &n);
    if (rc != KZ_DB_OK) {
        kz_free(cursor);
        kz_reply_store_error(call, rc);
        return;
    }
    bool more = n > limit;
    if (more) {
        kz_message_clear(&v[limit]);
        n = limit;
    }
    if (back)
        for (int i = 0, k = n - 1; i < k; i++, k--) {
            kz_message_t tmp = v[i];
            v[i] = v[k];
            v[k] = tmp;
        }
    json_t *o = json_object();
    if (n) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, message_json(&c, &v[i]));
        json_object_set_new(o, "messages", arr);
    }
    /* Next: after the last message, when more lie that way (always, when
     * we came back from there). Prev: before the first, when a cursor
     * brought us here (or more lie that way when going back). */
    bool has_next = n && (back || more);
    bool has_prev = n && (back ? more : have_cursor);
    char *next =
        has_next ? cursor_make(&c, v[n - 1].create_time, v[n - 1].id, forward, true) : NULL;
    char *prev = has_prev ? cursor_make(&c, v[0].create_time, v[0].id, forward, false) : NULL;
    if (next) json_object_set_new(o, "next_cursor", json_string(next));
    if (prev) json_object_set_new(o, "prev_cursor", json_string(prev));
    /* Cacheable: forward from the newest message of the page; with no
     * message, a forward cursor keeps its place and anything else starts
     * at the beginning. */
    char *cacheable = NULL;
    if (n) {
        const kz_message_t *newest = forward ? &v[n - 1] : &v[0];
        cacheable = cursor_make(&c, newest->create_time, newest->id, true, true);
    } else if (forward && have_cursor && from.next) {
        cacheable = kz_strdup(cursor);
    } else if (!have_cursor) {
        cacheable = cursor_make(&c, 0, "", true, true);
    }
    if (cacheable) json_object_set_new(o, "cacheable_cursor", json_string(cacheable));
    kz_free(next);
    kz_free(prev);
    kz_free(cacheable);
    kz_free(cursor);
    kz_messages_free(v, n);
    kz_reply_json(call->ex, o);
}
