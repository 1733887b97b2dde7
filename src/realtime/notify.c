/* Live notifications: see realtime/notify.h. */
#include "realtime/notify.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "realtime/envelope.h"
#include "realtime/router.h"

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */

static json_t *notification_json(const kz_notification_t *n)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(n->id));
    if (n->subject && *n->subject) json_object_set_new(o, "subject", json_string(n->subject));
    /* As stored: an empty content is the empty object. */
    json_object_set_new(o, "content", json_string(n->content && *n->content ? n->content : "{}"));
    if (n->code) json_object_set_new(o, "code", json_integer(n->code));
    json_object_set_new(o, "sender_id",
                        json_string(n->sender_id && *n->sender_id ? n->sender_id : KZ_UUID_NIL));
    if (n->create_time > 0) {
        char buf[32];
        kz_rfc3339(n->create_time - n->create_time % 1000, buf); /* whole seconds, as Nakama */
        json_object_set_new(o, "create_time", json_string(buf));
    }
    if (n->persistent) json_object_set_new(o, "persistent", json_true());
    return o;
}

json_t *kz_rt_notifications_json(const kz_notification_t *const *n, int count)
{
    json_t *list = json_array();
    for (int i = 0; i < count; i++)
        json_array_append_new(list, notification_json(n[i]));
    json_t *msg = json_object();
    json_object_set_new(msg, "notifications", list);
    return msg;
}

/* ------------------------------------------------------------------------ */
/* Pushing                                                                  */

static int by_user(const void *a, const void *b)
{
    const kz_notification_t *x = *(const kz_notification_t *const *)a;
    const kz_notification_t *y = *(const kz_notification_t *const *)b;
    int c = strcmp(x->user_id, y->user_id);
    if (c) return c;
    return x < y ? -1 : x > y; /* keep the given order within a recipient */
}

/* Pushes n[0..count) (one recipient) to that recipient's open sessions. */
static void push_one(const kz_notification_t *const *n, int count)
{
    kz_rt_sess_t **to;
    int ns = kz_rt_user_sessions(n[0]->user_id, &to);
    if (ns == 0) return;
    kz_rt_out_t *f =
        kz_rt_out(kz_rt_envelope(NULL, "notifications", kz_rt_notifications_json(n, count)));
    kz_rt_send_many(to, ns, f);
    kz_rt_out_free(f);
    for (int i = 0; i < ns; i++)
        kz_rt_sess_release(to[i]);
    kz_free(to);
}

void kz_rt_notify(const kz_notification_t *n, int count)
{
    if (count <= 0) return;
    const kz_notification_t **v = kz_malloc(sizeof *v * (size_t)count);
    int m = 0;
    for (int i = 0; i < count; i++)
        if (n[i].user_id && *n[i].user_id) v[m++] = &n[i];
    qsort(v, (size_t)m, sizeof *v, by_user);
    for (int i = 0; i < m;) {
        int j = i + 1;
        while (j < m && strcmp(v[j]->user_id, v[i]->user_id) == 0)
            j++;
        push_one(v + i, j - i);
        i = j;
    }
    kz_free(v);
}

/* ------------------------------------------------------------------------ */
/* The per-thread outbox                                                    */

/* A deferred copy: the notification with its strings owned. */
typedef struct pending {
    kz_notification_t n;
    char *user_id, *subject, *content, *sender_id;
} pending_t;

static _Thread_local struct {
    pending_t *v;
    int n, cap;
} outbox;

void kz_rt_notify_defer(const kz_notification_t *n, int count)
{
    for (int i = 0; i < count; i++) {
        if (outbox.n == outbox.cap) {
            outbox.cap = outbox.cap ? outbox.cap * 2 : 8;
            outbox.v = kz_realloc(outbox.v, sizeof *outbox.v * (size_t)outbox.cap);
        }
        pending_t *p = &outbox.v[outbox.n++];
        p->n = n[i];
        p->n.user_id = p->user_id = kz_strdup(n[i].user_id ? n[i].user_id : "");
        p->n.subject = p->subject = kz_strdup(n[i].subject);
        p->n.content = p->content = kz_strdup(n[i].content);
        p->n.sender_id = p->sender_id = kz_strdup(n[i].sender_id);
    }
}

/* Takes the outbox: entries and count, leaving it empty (and unallocated,
 * so a thread that exits holds nothing). */
static pending_t *take(int *count)
{
    pending_t *v = outbox.v;
    *count = outbox.n;
    outbox.v = NULL;
    outbox.n = outbox.cap = 0;
    return v;
}

static void pending_free(pending_t *v, int count)
{
    for (int i = 0; i < count; i++) {
        kz_free(v[i].user_id);
        kz_free(v[i].subject);
        kz_free(v[i].content);
        kz_free(v[i].sender_id);
    }
    kz_free(v);
}

void kz_rt_notify_flush(void)
{
    if (!outbox.n) return;
    int count;
    pending_t *v = take(&count);
    kz_notification_t *n = kz_malloc(sizeof *n * (size_t)count);
    for (int i = 0; i < count; i++)
        n[i] = v[i].n;
    kz_rt_notify(n, count);
    kz_free(n);
    pending_free(v, count);
}

void kz_rt_notify_discard(void)
{
    if (!outbox.v) return;
    int count;
    pending_t *v = take(&count);
    pending_free(v, count);
}

int kz_rt_notify_pending(void)
{
    return outbox.n;
}
