/* Chat channels over the socket: join, leave, send, update and remove
 * messages, presence events, and the history kept in the store.
 *
 * Channels live in one process-wide table keyed by channel id (see
 * store/message.h for the id forms). The table has its own mutex, held
 * only to find, create or unlink a channel; each channel has a mutex of its
 * own over its member list, held only to change it or to copy it out
 * (retaining the sessions) before a fan-out. Lock order: table, then
 * channel. A channel is refcounted: the table holds one reference while it
 * is linked, and whoever works on it outside the table lock holds another;
 * the last member to leave unlinks it.
 *
 * What a session has joined is kept on its own I/O thread (join, leave,
 * sending and the close hook all run there, as do the continuations of
 * store work), in a thread-local index, so membership checks take no lock.
 *
 * Store work (group membership, direct-message permission, persisting
 * messages) goes to a worker through kz_rt_submit; the reply and the
 * fan-out happen back on the session's thread. A session's messages go to
 * the store one at a time, so everyone sees them in the order it sent
 * them. An outgoing event is encoded once and shared by every recipient.
 *
 * Joining a direct channel the other user is not in stores a notification
 * (code -1) for them and pushes it live (realtime/notify.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "realtime/envelope.h"
#include "realtime/notify.h"
#include "realtime/router.h"
#include "store/account.h"
#include "store/message.h"
#include "store/notification.h"

#define CHAN_BUCKETS 4096            /* power of two */
#define SESS_BUCKETS 1024            /* per I/O thread, power of two */
#define MAX_CHANNELS_PER_SESSION 128 /* a client cannot grow this past the bound */
#define MAX_CHANNEL_MEMBERS 10000    /* presences in one channel */

/* ChannelJoin.type */
enum { JOIN_UNSPECIFIED = 0, JOIN_ROOM = 1, JOIN_DIRECT = 2, JOIN_GROUP = 3 };

/* ------------------------------------------------------------------------ */
/* Channel table                                                            */

typedef struct member {
    kz_rt_sess_t *s; /* borrowed in a channel (the member leaves before its session goes), retained
                        in copies */
    bool persistence;
    bool hidden;
} member_t;

typedef struct channel {
    atomic_int refs;
    pthread_mutex_t mu; /* guards linked, m, n, cap */
    bool linked;        /* in the table (also changed under the table lock) */
    member_t *m;
    int n, cap;
    struct channel *next; /* table chain, under the table lock */
    kz_channel_t c;       /* immutable */
} channel_t;

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static channel_t *table[CHAN_BUCKETS];

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static channel_t *ch_retain(channel_t *ch)
{
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return ch;
}

static void ch_release(channel_t *ch)
{
    if (!ch || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_mutex_destroy(&ch->mu);
    kz_free(ch->m);
    kz_free(ch);
}

/* The linked channel for c, created when missing; retained. */
static channel_t *ch_get(const kz_channel_t *c)
{
    size_t b = hash_str(c->id) & (CHAN_BUCKETS - 1);
    pthread_mutex_lock(&table_mu);
    channel_t *ch = table[b];
    while (ch && strcmp(ch->c.id, c->id) != 0)
        ch = ch->next;
    if (ch) {
        ch_retain(ch);
    } else {
        ch = kz_calloc(1, sizeof *ch);
        atomic_init(&ch->refs, 2); /* the table's and the caller's */
        pthread_mutex_init(&ch->mu, NULL);
        ch->linked = true;
        ch->c = *c;
        ch->next = table[b];
        table[b] = ch;
    }
    pthread_mutex_unlock(&table_mu);
    return ch;
}

/* Unlinks ch from the table if it is still empty; drops the table's
 * reference when it does (the caller still holds one). */
static void ch_unlink_if_empty(channel_t *ch)
{
    bool unlinked = false;
    pthread_mutex_lock(&table_mu);
    pthread_mutex_lock(&ch->mu);
    if (ch->linked && ch->n == 0) {
        channel_t **p = &table[hash_str(ch->c.id) & (CHAN_BUCKETS - 1)];
        while (*p && *p != ch)
            p = &(*p)->next;
        if (*p) *p = ch->next;
        ch->linked = false;
        unlinked = true;
    }
    pthread_mutex_unlock(&ch->mu);
    pthread_mutex_unlock(&table_mu);
    if (unlinked) ch_release(ch);
}

/* Copies the member list (ch->mu held), retaining each session. */
static member_t *members_copy(channel_t *ch, int *n)
{
    *n = ch->n;
    if (!ch->n) return NULL;
    member_t *v = kz_malloc(sizeof *v * (size_t)ch->n);
    for (int i = 0; i < ch->n; i++) {
        v[i] = ch->m[i];
        kz_rt_sess_retain(v[i].s);
    }
    return v;
}

static void members_free(member_t *v, int n)
{
    for (int i = 0; i < n; i++)
        kz_rt_sess_release(v[i].s);
    kz_free(v);
}

/* Current members of ch, retained (members_free). */
static member_t *ch_members(channel_t *ch, int *n)
{
    pthread_mutex_lock(&ch->mu);
    member_t *v = members_copy(ch, n);
    pthread_mutex_unlock(&ch->mu);
    return v;
}

/* Sends frame f to the members in v, except skip (may be NULL). */
static void fan_out(const member_t *v, int n, const kz_rt_sess_t *skip, kz_rt_out_t *f)
{
    if (n <= 0) return;
    kz_rt_sess_t **to = kz_malloc(sizeof *to * (size_t)n);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i].s != skip) to[k++] = v[i].s;
    kz_rt_send_many(to, k, f);
    kz_free(to);
}

/* ------------------------------------------------------------------------ */
/* What each session joined (thread-local: only its I/O thread touches it)  */

typedef struct joined {
    channel_t *ch; /* retained */
    bool persistence;
    bool hidden;
    struct joined *next;
} joined_t;

typedef struct sess_chans {
    kz_rt_sess_t *s; /* borrowed: removed by the close hook */
    int n;
    joined_t *list;
    struct sess_chans *next;
} sess_chans_t;

static _Thread_local sess_chans_t *tl_sessions[SESS_BUCKETS];

static sess_chans_t **sess_slot(const kz_rt_sess_t *s)
{
    sess_chans_t **p = &tl_sessions[((uintptr_t)s >> 4) & (SESS_BUCKETS - 1)];
    while (*p && (*p)->s != s)
        p = &(*p)->next;
    return p;
}

static sess_chans_t *sess_find(const kz_rt_sess_t *s)
{
    return *sess_slot(s);
}

static joined_t *joined_find(const kz_rt_sess_t *s, const char *channel_id)
{
    sess_chans_t *sc = sess_find(s);
    for (joined_t *j = sc ? sc->list : NULL; j; j = j->next)
        if (strcmp(j->ch->c.id, channel_id) == 0) return j;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */

/* room_name / group_id / user_id_one + user_id_two of a channel. */
static void put_target(json_t *o, const kz_channel_t *c)
{
    if (c->mode == KZ_CHAN_ROOM) {
        json_object_set_new(o, "room_name", json_string(c->label));
    } else if (c->mode == KZ_CHAN_GROUP) {
        json_object_set_new(o, "group_id", json_string(c->subject));
    } else {
        json_object_set_new(o, "user_id_one", json_string(c->subject));
        json_object_set_new(o, "user_id_two", json_string(c->subcontext));
    }
}

static json_t *presence_json(const kz_rt_sess_t *s, bool persistence)
{
    json_t *p = json_object();
    json_object_set_new(p, "user_id", json_string(s->uid));
    json_object_set_new(p, "session_id", json_string(s->id));
    if (s->username[0]) json_object_set_new(p, "username", json_string(s->username));
    if (persistence) json_object_set_new(p, "persistence", json_true());
    return p;
}

static void put_time(json_t *o, const char *key, int64_t ms)
{
    char buf[32];
    kz_rfc3339(ms, buf);
    json_object_set_new(o, key, json_string(buf));
}

/* A channel_presence_event with one join or one leave. */
static kz_rt_out_t *presence_event(const kz_channel_t *c, const kz_rt_sess_t *s, bool persistence,
                                  bool join)
{
    json_t *e = json_object();
    json_object_set_new(e, "channel_id", json_string(c->id));
    json_t *arr = json_array();
    json_array_append_new(arr, presence_json(s, persistence));
    json_object_set_new(e, join ? "joins" : "leaves", arr);
    put_target(e, c);
    return kz_rt_out(kz_rt_envelope(NULL, "channel_presence_event", e));
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* Field of a message by snake_case name or its lowerCamelCase form;
 * NULL when absent or null. */
static json_t *field(json_t *msg, const char *snake)
{
    json_t *v = json_object_get(msg, snake);
    if (!v) {
        char camel[64];
        size_t j = 0;
        for (const char *p = snake; *p && j + 1 < sizeof camel; p++) {
            if (*p == '_' && p[1]) {
                p++;
                camel[j++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
            } else {
                camel[j++] = *p;
            }
        }
        camel[j] = '\0';
        v = json_object_get(msg, camel);
    }
    return json_is_null(v) ? NULL : v;
}

/* "channelId" -> "channel_id". */
static void snake_case(const char *in, char *out, size_t outlen)
{
    size_t j = 0;
    for (; *in && j + 2 < outlen; in++) {
        if (*in >= 'A' && *in <= 'Z') {
            out[j++] = '_';
            out[j++] = (char)(*in - 'A' + 'a');
        } else {
            out[j++] = *in;
        }
    }
    out[j] = '\0';
}

/* True when every key of msg is one of names (in snake_case or
 * lowerCamelCase) holding null or the expected JSON type: 's' string,
 * 'b' bool, 'i' int32 (a number or a numeric string). */
static bool fields_ok(json_t *msg, const char *const *names, const char *types)
{
    const char *key;
    json_t *v;
    json_object_foreach(msg, key, v)
    {
        char snake[64];
        snake_case(key, snake, sizeof snake);
        int found = -1;
        for (int i = 0; names[i] && found < 0; i++)
            if (strcmp(snake, names[i]) == 0) found = i;
        if (found < 0) return false;
        if (json_is_null(v)) continue;
        switch (types[found]) {
        case 's':
            if (!json_is_string(v)) return false;
            break;
        case 'b':
            if (!json_is_boolean(v)) return false;
            break;
        case 'i':
            if (json_is_integer(v)) {
                json_int_t x = json_integer_value(v);
                if (x < INT32_MIN || x > INT32_MAX) return false;
            } else if (json_is_string(v)) {
                const char *t = json_string_value(v);
                char *end;
                long long x = strtoll(t, &end, 10);
                if (!*t || *end || x < INT32_MIN || x > INT32_MAX) return false;
            } else {
                return false;
            }
            break;
        }
    }
    return true;
}

static const char *str_field(json_t *msg, const char *snake)
{
    const char *v = json_string_value(field(msg, snake));
    return v ? v : "";
}

static int int_field(json_t *msg, const char *snake)
{
    json_t *v = field(msg, snake);
    if (json_is_integer(v)) return (int)json_integer_value(v);
    if (json_is_string(v)) return (int)strtol(json_string_value(v), NULL, 10);
    return 0;
}

static bool bool_field(json_t *msg, const char *snake, bool def)
{
    json_t *v = field(msg, snake);
    return v ? json_is_true(v) : def;
}

static bool content_is_object(const char *content)
{
    json_t *j = json_loads(content, JSON_DECODE_ANY, NULL);
    bool ok = json_is_object(j);
    json_decref(j);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Join                                                                     */

/* Joins s to channel c on its own thread and replies `channel` with cid;
 * announces the new presence to the others unless hidden. */
static void join_now(kz_rt_sess_t *s, const char *cid, const kz_channel_t *c, bool persistence,
                     bool hidden)
{
    kz_ws_t *ws = s->ws;
    if (!ws) return;
    sess_chans_t **slot = sess_slot(s);
    joined_t *j = joined_find(s, c->id);
    bool is_new = j == NULL;
    if (is_new && *slot && (*slot)->n >= MAX_CHANNELS_PER_SESSION) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Too many channels joined.");
        return;
    }
    if (!is_new) persistence = j->persistence, hidden = j->hidden;
    channel_t *ch;
    member_t *v;
    int n;
    for (;;) {
        ch = is_new ? ch_get(c) : ch_retain(j->ch);
        pthread_mutex_lock(&ch->mu);
        if (!ch->linked) { /* emptied and unlinked meanwhile: take the new one */
            pthread_mutex_unlock(&ch->mu);
            ch_release(ch);
            continue;
        }
        if (is_new) {
            if (ch->n >= MAX_CHANNEL_MEMBERS) { /* never empty here: nothing to unlink */
                pthread_mutex_unlock(&ch->mu);
                ch_release(ch);
                kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Channel is full.");
                return;
            }
            if (ch->n == ch->cap) {
                ch->cap = ch->cap ? ch->cap * 2 : 4;
                ch->m = kz_realloc(ch->m, sizeof *ch->m * (size_t)ch->cap);
            }
            ch->m[ch->n++] = (member_t){s, persistence, hidden};
        }
        v = members_copy(ch, &n);
        pthread_mutex_unlock(&ch->mu);
        break;
    }
    if (is_new) {
        if (!*slot) {
            *slot = kz_calloc(1, sizeof **slot);
            (*slot)->s = s;
        }
        j = kz_calloc(1, sizeof *j);
        j->ch = ch_retain(ch);
        j->persistence = persistence;
        j->hidden = hidden;
        j->next = (*slot)->list;
        (*slot)->list = j;
        (*slot)->n++;
    }
    /* The reply: the visible others (and self too on a repeated join). */
    json_t *m = json_object();
    json_object_set_new(m, "id", json_string(c->id));
    json_t *presences = json_array();
    for (int i = 0; i < n; i++) {
        if (v[i].hidden || (is_new && v[i].s == s)) continue;
        json_array_append_new(presences, presence_json(v[i].s, v[i].persistence));
    }
    if (json_array_size(presences))
        json_object_set_new(m, "presences", presences);
    else
        json_decref(presences);
    json_object_set_new(m, "self", presence_json(s, persistence));
    put_target(m, c);
    kz_rt_reply(ws, kz_rt_envelope(cid, "channel", m));
    if (is_new && !hidden && n > 1) {
        kz_rt_out_t *f = presence_event(c, s, persistence, true);
        fan_out(v, n, s, f);
        kz_rt_out_free(f);
    }
    members_free(v, n);
    ch_release(ch);
}

/* Group and direct joins check the store first. */
typedef struct join_job {
    char *cid;
    kz_channel_t c;
    int type;
    bool persistence, hidden;
    char target[37];
    char caller[37];
    char username[129];
    bool notify; /* direct: the other user is not in the channel */
    int rc;
    bool allowed;
    kz_notification_t note; /* direct: stored for the other user when notify */
    char *note_subject, *note_content;
} join_job_t;

static void join_work(kz_db_t *db, void *arg)
{
    join_job_t *jj = arg;
    if (jj->type == JOIN_GROUP) {
        jj->rc = kz_store_message_group_member(db, jj->c.subject, jj->caller, &jj->allowed);
        return;
    }
    jj->rc = kz_store_message_direct_allowed(db, jj->target, jj->caller, &jj->allowed);
    if (jj->rc != KZ_DB_OK || !jj->allowed || !jj->notify) return;
    /* The other user is not in the channel: tell them someone wants to chat. */
    json_t *content = json_pack("{s:s}", "username", jj->username);
    jj->note_content = json_dumps(content, JSON_COMPACT);
    json_decref(content);
    jj->note_subject = kz_asprintf("%s wants to chat", jj->username);
    jj->note = (kz_notification_t){.user_id = jj->target,
                                   .subject = jj->note_subject,
                                   .content = jj->note_content,
                                   .code = KZ_NOTIFY_DM_REQUEST,
                                   .sender_id = jj->caller,
                                   .persistent = true,
                                   .create_time = kz_now_sec() * 1000};
    /* Stored outside any transaction; the store's notification sink pushes
     * it to their open sockets. */
    if (kz_store_notifications_add(db, &jj->note, 1) != KZ_DB_OK)
        kz_log_warn("chat: could not store the direct message notification: %s", kz_db_errmsg(db));
}

static void join_done(kz_rt_sess_t *s, void *arg)
{
    join_job_t *jj = arg;
    bool group = jj->type == JOIN_GROUP;
    if (!s->ws) {
        /* The socket closed meanwhile: nothing to join. */
    } else if (jj->rc != KZ_DB_OK) {
        kz_rt_error(s->ws, jj->cid, KZ_RT_RUNTIME_EXCEPTION,
                    group ? "Failed to look up group membership" : "Failed to look up user ID");
    } else if (!jj->allowed) {
        kz_rt_error(s->ws, jj->cid, KZ_RT_BAD_INPUT,
                    group ? "Group membership not found" : "User ID not found");
    } else {
        join_now(s, jj->cid, &jj->c, jj->persistence, jj->hidden);
    }
    kz_free(jj->cid);
    free(jj->note_content); /* json_dumps */
    kz_free(jj->note_subject);
    kz_free(jj);
}

/* True when a session of user uid is a member of the channel c. */
static bool user_in_channel(const kz_channel_t *c, const char *uid)
{
    bool found = false;
    size_t b = hash_str(c->id) & (CHAN_BUCKETS - 1);
    pthread_mutex_lock(&table_mu);
    channel_t *ch = table[b];
    while (ch && strcmp(ch->c.id, c->id) != 0)
        ch = ch->next;
    if (ch) {
        pthread_mutex_lock(&ch->mu);
        for (int i = 0; i < ch->n && !found; i++)
            found = strcmp(ch->m[i].s->uid, uid) == 0;
        pthread_mutex_unlock(&ch->mu);
    }
    pthread_mutex_unlock(&table_mu);
    return found;
}

void kz_rt_channel_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const names[] = {"target", "type", "persistence", "hidden", NULL};
    if (!fields_ok(msg, names, "sibb")) {
        kz_rt_parse_error(ws);
        return;
    }
    const char *target = str_field(msg, "target");
    int type = int_field(msg, "type");
    bool persistence = bool_field(msg, "persistence", true);
    bool hidden = bool_field(msg, "hidden", false);
    kz_channel_t c;
    switch (type) {
    case JOIN_UNSPECIFIED:
    case JOIN_ROOM:
        if (!kz_channel_room(&c, target)) {
            kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid room name, must be 1-64 chars");
            return;
        }
        join_now(s, cid, &c, persistence, hidden);
        return;
    case JOIN_DIRECT:
        if (!kz_channel_direct(&c, target, s->uid) || strcmp(target, KZ_UUID_NIL) == 0) {
            kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid user ID in direct message channel");
            return;
        }
        break;
    case JOIN_GROUP:
        if (!kz_channel_group(&c, target)) {
            kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid group ID in group channel");
            return;
        }
        break;
    default:
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Unrecognized channel type");
        return;
    }
    /* Already in it: no store check needed again. */
    if (joined_find(s, c.id)) {
        join_now(s, cid, &c, persistence, hidden);
        return;
    }
    join_job_t *jj = kz_calloc(1, sizeof *jj);
    jj->cid = cid ? kz_strdup(cid) : NULL;
    jj->c = c;
    jj->type = type;
    jj->persistence = persistence;
    jj->hidden = hidden;
    snprintf(jj->caller, sizeof jj->caller, "%s", s->uid);
    snprintf(jj->username, sizeof jj->username, "%s", s->username);
    if (type == JOIN_DIRECT) {
        const char *other = strcmp(c.subject, s->uid) == 0 ? c.subcontext : c.subject;
        snprintf(jj->target, sizeof jj->target, "%s", other);
        jj->notify = strcmp(other, s->uid) != 0 && !user_in_channel(&c, other);
    }
    if (!kz_rt_submit(s, join_work, join_done, jj)) {
        kz_free(jj->cid);
        kz_free(jj);
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, "Server is busy.");
    }
}

/* ------------------------------------------------------------------------ */
/* Leave                                                                    */

/* Takes s out of the channel of j (unlinked from the session's list by
 * the caller) and announces it; frees j. */
static void leave_now(kz_rt_sess_t *s, joined_t *j)
{
    channel_t *ch = j->ch;
    pthread_mutex_lock(&ch->mu);
    for (int i = 0; i < ch->n; i++) {
        if (ch->m[i].s != s) continue;
        ch->m[i] = ch->m[--ch->n];
        break;
    }
    int n = 0;
    member_t *v = j->hidden ? NULL : members_copy(ch, &n);
    bool empty = ch->n == 0;
    pthread_mutex_unlock(&ch->mu);
    if (empty) ch_unlink_if_empty(ch);
    if (n > 0) {
        kz_rt_out_t *f = presence_event(&ch->c, s, j->persistence, false);
        fan_out(v, n, NULL, f);
        kz_rt_out_free(f);
    }
    members_free(v, n);
    ch_release(ch);
    kz_free(j);
}

/* Leaves the channel with this id if s is in it. */
static void leave_id(kz_rt_sess_t *s, const char *channel_id)
{
    sess_chans_t **slot = sess_slot(s);
    if (!*slot) return;
    for (joined_t **p = &(*slot)->list; *p; p = &(*p)->next) {
        if (strcmp((*p)->ch->c.id, channel_id) != 0) continue;
        joined_t *j = *p;
        *p = j->next;
        (*slot)->n--;
        leave_now(s, j);
        break;
    }
    if ((*slot)->n == 0) {
        sess_chans_t *sc = *slot;
        *slot = sc->next;
        kz_free(sc);
    }
}

void kz_rt_channel_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const names[] = {"channel_id", NULL};
    if (!fields_ok(msg, names, "s")) {
        kz_rt_parse_error(ws);
        return;
    }
    const char *id = str_field(msg, "channel_id");
    kz_channel_t c;
    if (!kz_channel_parse(&c, id, strlen(id))) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid channel identifier");
        return;
    }
    leave_id(s, c.id);
    kz_rt_reply(ws, kz_rt_envelope(cid, NULL, NULL));
}

/* The close hook: a closing socket leaves all its channels. */
static void chat_close(kz_rt_sess_t *s)
{
    sess_chans_t **slot = sess_slot(s);
    sess_chans_t *sc = *slot;
    if (!sc) return;
    *slot = sc->next;
    while (sc->list) {
        joined_t *j = sc->list;
        sc->list = j->next;
        leave_now(s, j);
    }
    kz_free(sc);
}

void kz_rt_chat_init(void)
{
    kz_rt_add_close_hook(chat_close);
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

enum { OP_SEND, OP_UPDATE, OP_REMOVE };

typedef struct msg_job {
    char *cid;
    int op;
    channel_t *ch; /* retained */
    bool persistent;
    kz_message_t m; /* what goes out; m.code is the op's code */
    int rc;
    struct msg_job *next; /* the sender's queue */
} msg_job_t;

/* A session's messages in flight, handled one at a time so its messages
 * reach everyone in the order it sent them (as Nakama, which handles a
 * session's messages in turn). Thread-local like the membership index;
 * an entry lives while it has work, even past the socket's close (a
 * queued job holds a reference to the session). */
typedef struct sender {
    kz_rt_sess_t *s;
    msg_job_t *head, *tail;
    int queued;
    bool running; /* a job is at the store */
    struct sender *next;
} sender_t;

#define MAX_QUEUED_MESSAGES 64 /* per session, beyond the one at the store */

static _Thread_local sender_t *tl_senders[SESS_BUCKETS];

static sender_t **sender_slot(const kz_rt_sess_t *s)
{
    sender_t **p = &tl_senders[((uintptr_t)s >> 4) & (SESS_BUCKETS - 1)];
    while (*p && (*p)->s != s)
        p = &(*p)->next;
    return p;
}

static void msg_job_free(msg_job_t *mj)
{
    ch_release(mj->ch);
    kz_free(mj->cid);
    kz_message_clear(&mj->m);
    kz_free(mj);
}

static void msg_work(kz_db_t *db, void *arg)
{
    msg_job_t *mj = arg;
    const kz_channel_t *c = &mj->ch->c;
    kz_message_t *m = &mj->m;
    int64_t create_time = m->create_time;
    switch (mj->op) {
    case OP_SEND:
        mj->rc = kz_store_message_insert(db, c, m);
        break;
    case OP_UPDATE:
        mj->rc = kz_store_message_update(db, c, m->id, m->sender_id, m->username, m->content,
                                         m->update_time, &create_time);
        break;
    case OP_REMOVE:
        mj->rc = kz_store_message_remove(db, c, m->id, m->sender_id, &create_time);
        break;
    }
    /* An update or removal keeps the message's original creation time. */
    if (mj->rc == KZ_DB_OK) m->create_time = create_time;
    if (mj->rc != KZ_DB_OK && mj->rc != KZ_STORE_NOTFOUND)
        kz_log_error("chat: message store failed: %s", kz_db_errmsg(db));
}

/* The channel_message event of m in channel c. */
static kz_rt_out_t *message_event(const kz_channel_t *c, const kz_message_t *m, bool persistent)
{
    json_t *e = json_object();
    json_object_set_new(e, "channel_id", json_string(c->id));
    json_object_set_new(e, "message_id", json_string(m->id));
    json_object_set_new(e, "code", json_integer(m->code));
    json_object_set_new(e, "sender_id", json_string(m->sender_id));
    if (m->username && *m->username) json_object_set_new(e, "username", json_string(m->username));
    json_object_set_new(e, "content", json_string(m->content));
    put_time(e, "create_time", m->create_time);
    put_time(e, "update_time", m->update_time);
    json_object_set_new(e, "persistent", json_boolean(persistent));
    put_target(e, c);
    return kz_rt_out(kz_rt_envelope(NULL, "channel_message", e));
}

/* Replies the ack to the sender (if its socket is still open) and fans the
 * message out to every member, the sender included. */
static void msg_deliver(kz_rt_sess_t *s, msg_job_t *mj)
{
    const kz_channel_t *c = &mj->ch->c;
    const kz_message_t *m = &mj->m;
    if (s->ws) {
        json_t *ack = json_object();
        json_object_set_new(ack, "channel_id", json_string(c->id));
        json_object_set_new(ack, "message_id", json_string(m->id));
        json_object_set_new(ack, "code", json_integer(m->code));
        if (m->username && *m->username)
            json_object_set_new(ack, "username", json_string(m->username));
        put_time(ack, "create_time", m->create_time);
        put_time(ack, "update_time", m->update_time);
        json_object_set_new(ack, "persistent", json_boolean(mj->persistent));
        put_target(ack, c);
        kz_rt_reply(s->ws, kz_rt_envelope(mj->cid, "channel_message_ack", ack));
    }
    kz_rt_out_t *f = message_event(c, m, mj->persistent);
    int n;
    member_t *v = ch_members(mj->ch, &n);
    fan_out(v, n, NULL, f);
    members_free(v, n);
    kz_rt_out_free(f);
}

/* Answers a finished job (ack and fan-out, or the error) and frees it. */
static void msg_finish(kz_rt_sess_t *s, msg_job_t *mj)
{
    if (mj->rc == KZ_DB_OK) {
        msg_deliver(s, mj);
    } else if (s->ws) {
        if (mj->rc == KZ_STORE_NOTFOUND)
            kz_rt_error(s->ws, mj->cid, KZ_RT_BAD_INPUT,
                        mj->op == OP_UPDATE
                            ? "Could not find message to update in channel history"
                            : "Could not find message to remove in channel history");
        else
            kz_rt_error(s->ws, mj->cid, KZ_RT_RUNTIME_EXCEPTION,
                        mj->op == OP_SEND ? "Could not persist message to channel history"
                        : mj->op == OP_UPDATE
                            ? "Could not persist message update to channel history"
                            : "Could not persist message removal to channel history");
    }
    msg_job_free(mj);
}

static void msg_done(kz_rt_sess_t *s, void *arg);

/* Runs the sender's queued jobs in order until one goes to the store (or
 * none is left, and the entry goes). */
static void sender_run(kz_rt_sess_t *s)
{
    sender_t **slot = sender_slot(s);
    sender_t *sd = *slot;
    sd->running = false;
    while (sd->head) {
        msg_job_t *mj = sd->head;
        sd->head = mj->next;
        if (!sd->head) sd->tail = NULL;
        sd->queued--;
        if (!mj->persistent) {
            /* Nothing to store (nor to check against the store): out at once. */
            mj->rc = KZ_DB_OK;
            msg_finish(s, mj);
            continue;
        }
        if (kz_rt_submit(s, msg_work, msg_done, mj)) {
            sd->running = true;
            return;
        }
        if (s->ws) kz_rt_error(s->ws, mj->cid, KZ_RT_RUNTIME_EXCEPTION, "Server is busy.");
        msg_job_free(mj);
    }
    *slot = sd->next;
    kz_free(sd);
}

static void msg_done(kz_rt_sess_t *s, void *arg)
{
    msg_finish(s, arg);
    sender_run(s);
}

/* Queues a job behind the sender's earlier ones. */
static void msg_enqueue(kz_rt_sess_t *s, msg_job_t *mj)
{
    sender_t **slot = sender_slot(s);
    if (!*slot) {
        *slot = kz_calloc(1, sizeof **slot);
        (*slot)->s = s;
    }
    sender_t *sd = *slot;
    if (sd->queued >= MAX_QUEUED_MESSAGES) {
        if (s->ws) kz_rt_error(s->ws, mj->cid, KZ_RT_RUNTIME_EXCEPTION, "Server is busy.");
        msg_job_free(mj);
        return;
    }
    if (sd->tail)
        sd->tail->next = mj;
    else
        sd->head = mj;
    sd->tail = mj;
    sd->queued++;
    if (!sd->running) sender_run(s);
}

/* The common path of send, update and remove once the input is checked. */
static void msg_run(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, int op, const kz_channel_t *c,
                    const char *message_id, const char *content)
{
    static const char *const not_joined[] = {"Must join channel before sending messages",
                                             "Must join channel before updating messages",
                                             "Must join channel before removing messages"};
    joined_t *j = joined_find(s, c->id);
    if (!j) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, not_joined[op]);
        return;
    }
    if (op != OP_REMOVE && !content_is_object(content)) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Message content must be a valid JSON object");
        return;
    }
    msg_job_t *mj = kz_calloc(1, sizeof *mj);
    mj->cid = cid ? kz_strdup(cid) : NULL;
    mj->op = op;
    mj->ch = ch_retain(j->ch);
    mj->persistent = j->persistence;
    kz_message_t *m = &mj->m;
    int64_t now_ns = kz_now_ns();
    /* Clients see whole seconds; the id keeps the sub-second order. */
    int64_t now_ms = now_ns / 1000000000 * 1000;
    if (op == OP_SEND)
        kz_uuid_v7_ns(m->id, now_ns);
    else
        snprintf(m->id, sizeof m->id, "%s", message_id);
    snprintf(m->sender_id, sizeof m->sender_id, "%s", s->uid);
    m->username = kz_strdup(s->username);
    m->content = kz_strdup(op == OP_REMOVE ? "{}" : content);
    m->code = op == OP_SEND     ? KZ_MSG_CHAT
              : op == OP_UPDATE ? KZ_MSG_CHAT_UPDATE
                                : KZ_MSG_CHAT_REMOVE;
    m->create_time = m->update_time = now_ms;
    msg_enqueue(s, mj);
}

void kz_rt_channel_message_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const names[] = {"channel_id", "content", NULL};
    if (!fields_ok(msg, names, "ss")) {
        kz_rt_parse_error(ws);
        return;
    }
    const char *id = str_field(msg, "channel_id");
    kz_channel_t c;
    if (!kz_channel_parse(&c, id, strlen(id))) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid channel identifier");
        return;
    }
    msg_run(ws, s, cid, OP_SEND, &c, NULL, str_field(msg, "content"));
}

/* Checks the message id and channel id of an update or removal. */
static bool msg_target(kz_ws_t *ws, const char *cid, json_t *msg, kz_channel_t *c,
                       char message_id[37])
{
    const char *mid = str_field(msg, "message_id");
    if (!kz_uuid_valid(mid, strlen(mid))) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid message identifier");
        return false;
    }
    for (int i = 0; i < 36; i++)
        message_id[i] = (char)(mid[i] >= 'A' && mid[i] <= 'Z' ? mid[i] - 'A' + 'a' : mid[i]);
    message_id[36] = '\0';
    const char *id = str_field(msg, "channel_id");
    if (!kz_channel_parse(c, id, strlen(id))) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid channel identifier");
        return false;
    }
    return true;
}

void kz_rt_channel_message_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const names[] = {"channel_id", "message_id", "content", NULL};
    if (!fields_ok(msg, names, "sss")) {
        kz_rt_parse_error(ws);
        return;
    }
    kz_channel_t c;
    char mid[37];
    if (!msg_target(ws, cid, msg, &c, mid)) return;
    msg_run(ws, s, cid, OP_UPDATE, &c, mid, str_field(msg, "content"));
}

void kz_rt_channel_message_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const names[] = {"channel_id", "message_id", NULL};
    if (!fields_ok(msg, names, "ss")) {
        kz_rt_parse_error(ws);
        return;
    }
    kz_channel_t c;
    char mid[37];
    if (!msg_target(ws, cid, msg, &c, mid)) return;
    msg_run(ws, s, cid, OP_REMOVE, &c, mid, NULL);
}

/* ------------------------------------------------------------------------ */
/* Messages the store posts (group membership changes)                      */

/* The channel c as linked in the table, retained, or NULL when nobody has
 * joined it. */
static channel_t *ch_find(const kz_channel_t *c)
{
    pthread_mutex_lock(&table_mu);
    channel_t *ch = table[hash_str(c->id) & (CHAN_BUCKETS - 1)];
    while (ch && strcmp(ch->c.id, c->id) != 0)
        ch = ch->next;
    if (ch) ch_retain(ch);
    pthread_mutex_unlock(&table_mu);
    return ch;
}

void kz_rt_chat_post(const kz_channel_t *c, const kz_message_t *m)
{
    channel_t *ch = ch_find(c);
    if (!ch) return;
    int n;
    member_t *v = ch_members(ch, &n);
    kz_rt_out_t *f = message_event(c, m, true);
    fan_out(v, n, NULL, f);
    kz_rt_out_free(f);
    members_free(v, n);
    ch_release(ch);
}

/* Posted inside a transaction: pushed once it commits (per worker thread,
 * as the transaction is). */
typedef struct posted {
    kz_channel_t c;
    kz_message_t m; /* strings owned */
} posted_t;

static _Thread_local struct {
    posted_t *v;
    int n, cap;
} posted;

void kz_rt_chat_defer(const kz_channel_t *c, const kz_message_t *m)
{
    if (posted.n == posted.cap) {
        posted.cap = posted.cap ? posted.cap * 2 : 8;
        posted.v = kz_realloc(posted.v, sizeof *posted.v * (size_t)posted.cap);
    }
    posted_t *p = &posted.v[posted.n++];
    p->c = *c;
    p->m = *m;
    p->m.username = kz_strdup(m->username);
    p->m.content = kz_strdup(m->content);
}

static void posted_end(bool deliver)
{
    if (!posted.v) return;
    posted_t *v = posted.v;
    int n = posted.n;
    posted.v = NULL; /* a thread that exits holds nothing */
    posted.n = posted.cap = 0;
    for (int i = 0; i < n; i++) {
        if (deliver) kz_rt_chat_post(&v[i].c, &v[i].m);
        kz_message_clear(&v[i].m);
    }
    kz_free(v);
}

void kz_rt_chat_flush(void)
{
    posted_end(true);
}

void kz_rt_chat_discard(void)
{
    posted_end(false);
}
