/* Status presence (Nakama's status stream): a session is online while it
 * was opened with status=true or has set a status with status_update, and
 * the sessions that follow its user receive status_presence_event joins and
 * leaves as it comes, changes status and goes.
 *
 * One index under one lock, because a user's sessions and the sessions
 * following it live on different I/O threads:
 *   - a user entry per user that is online or followed: its online
 *     sessions and the follow edges pointing at it;
 *   - a session entry per session that is online or follows someone: its
 *     status and its follow edges.
 * A follow is one edge node on two lists (the follower's singly, the
 * user's doubly linked), so unfollowing and closing cost O(1) per edge and
 * a user with many followers never makes a leave scan them all. Entries go
 * when they hold nothing. Session pointers in the index are not retained:
 * the close hook takes a session out before it can be freed, and fan-out
 * retains the recipients it copies out of the index before unlocking.
 *
 * Events are encoded once outside the lock and fanned out with
 * kz_rt_send_many. status_follow checks the users exist (and resolves
 * usernames) on a worker, then registers and replies on the session's
 * thread. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "api/api.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/uuid.h"
#include "net/http.h"
#include "realtime/envelope.h"
#include "store/account.h"

/* Until envelope.h declares it: the session s has opened (its socket is up,
 * on its thread); with status=true it comes online for its followers. */
void kz_rt_status_online(kz_rt_sess_t *s);

#define ST_BUCKETS 4096          /* power of two */
#define ST_MAX_FOLLOWS 1024      /* users one session may follow */
#define ST_MAX_STATUS_BYTES 2048 /* Nakama's limit (Go len(): bytes) */

typedef struct st_sess st_sess_t;
typedef struct st_user st_user_t;

/* session follows user */
typedef struct st_edge {
    st_sess_t *from;
    st_user_t *to;
    struct st_edge *next_from;         /* in from->follows */
    struct st_edge *prev_to, *next_to; /* in to->followers */
} st_edge_t;

struct st_user {
    char uid[37];
    st_sess_t *online;    /* its online sessions, via next_online */
    st_edge_t *followers; /* edges pointing here */
    int nfollowers;
    st_user_t *next; /* bucket chain */
};

struct st_sess {
    kz_rt_sess_t *s; /* not retained (see the top) */
    bool online;
    char *status;       /* owned, while online */
    st_edge_t *follows; /* edges from here */
    int nfollows;
    st_sess_t *next_online; /* in its user's online list */
    st_sess_t *next;        /* bucket chain */
};

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static st_user_t *users[ST_BUCKETS];
static st_sess_t *sessions[ST_BUCKETS];

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h & (ST_BUCKETS - 1));
}

static size_t hash_ptr(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 52) & (ST_BUCKETS - 1);
}

/* ------------------------------------------------------------------------ */
/* Index (all under st_lock)                                                */

static st_user_t *user_get(const char *uid, bool create)
{
    st_user_t **b = &users[hash_str(uid)];
    for (st_user_t *u = *b; u; u = u->next)
        if (strcmp(u->uid, uid) == 0) return u;
    if (!create) return NULL;
    st_user_t *u = kz_calloc(1, sizeof *u);
    snprintf(u->uid, sizeof u->uid, "%s", uid);
    u->next = *b;
    *b = u;
    return u;
}

/* Frees u when nothing refers to it any more. */
static void user_gc(st_user_t *u)
{
    if (u->online || u->followers) return;
    st_user_t **p = &users[hash_str(u->uid)];
    while (*p != u)
        p = &(*p)->next;
    *p = u->next;
    kz_free(u);
}

static st_sess_t *sess_get(kz_rt_sess_t *s, bool create)
{
    st_sess_t **b = &sessions[hash_ptr(s)];
    for (st_sess_t *e = *b; e; e = e->next)
        if (e->s == s) return e;
    if (!create) return NULL;
    st_sess_t *e = kz_calloc(1, sizeof *e);
    e->s = s;
    e->next = *b;
    *b = e;
    return e;
}

static void sess_gc(st_sess_t *e)
{
    if (e->online || e->follows) return;
    st_sess_t **p = &sessions[hash_ptr(e->s)];
    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    kz_free(e);
}

/* Unlinks edge from its user's followers (the caller unlinks it from the
 * follower's list) and frees it. */
static void edge_drop(st_edge_t *edge)
{
    st_user_t *u = edge->to;
    if (edge->prev_to)
        edge->prev_to->next_to = edge->next_to;
    else
        u->followers = edge->next_to;
    if (edge->next_to) edge->next_to->prev_to = edge->prev_to;
    u->nfollowers--;
    kz_free(edge);
    user_gc(u);
}

static bool follows(const st_sess_t *e, const char *uid)
{
    for (const st_edge_t *x = e ? e->follows : NULL; x; x = x->next_from)
        if (strcmp(x->to->uid, uid) == 0) return true;
    return false;
}

static void follow_add(st_sess_t *e, const char *uid)
{
    st_user_t *u = user_get(uid, true);
    st_edge_t *edge = kz_calloc(1, sizeof *edge);
    edge->from = e;
    edge->to = u;
    edge->next_from = e->follows;
    e->follows = edge;
    e->nfollows++;
    edge->next_to = u->followers;
    if (u->followers) u->followers->prev_to = edge;
    u->followers = edge;
    u->nfollowers++;
}

/* Removes e's edge to uid, if any. */
static void follow_remove(st_sess_t *e, const char *uid)
{
    for (st_edge_t **p = &e->follows; *p; p = &(*p)->next_from) {
        if (strcmp((*p)->to->uid, uid) != 0) continue;
        st_edge_t *edge = *p;
        *p = edge->next_from;
        e->nfollows--;
        edge_drop(edge);
        return;
    }
}

/* The sessions following the user uid, retained (release each, then
 * kz_free the array). */
static int followers_of(const char *uid, kz_rt_sess_t ***out)
{
    *out = NULL;
    st_user_t *u = user_get(uid, false);
    if (!u || !u->nfollowers) return 0;
    *out = kz_malloc(sizeof **out * (size_t)u->nfollowers);
    int n = 0;
    for (st_edge_t *x = u->followers; x && n < u->nfollowers; x = x->next_to)
        (*out)[n++] = kz_rt_sess_retain(x->from->s);
    return n;
}

/* Puts e online with status (owned) or changes its status; *old receives
 * the previous status (owned) when it was online already, else NULL. */
static void go_online(st_sess_t *e, char *status, char **old)
{
    *old = NULL;
    if (e->online) {
        *old = e->status;
    } else {
        st_user_t *u = user_get(e->s->uid, true);
        e->next_online = u->online;
        u->online = e;
        e->online = true;
    }
    e->status = status;
}

/* Takes e offline; returns its last status (owned). */
static char *go_offline(st_sess_t *e)
{
    st_user_t *u = user_get(e->s->uid, false);
    if (u) {
        st_sess_t **p = &u->online;
        while (*p && *p != e)
            p = &(*p)->next_online;
        if (*p) *p = e->next_online;
        user_gc(u);
    }
    char *status = e->status;
    e->status = NULL;
    e->online = false;
    e->next_online = NULL;
    return status;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */

/* A UserPresence on the status stream (status is a StringValue: always
 * present, "" included). */
static json_t *presence_json(const kz_rt_sess_t *s, const char *status)
{
    json_t *p = json_object();
    json_object_set_new(p, "user_id", json_string(s->uid));
    json_object_set_new(p, "session_id", json_string(s->id));
    if (s->username[0]) json_object_set_new(p, "username", json_string(s->username));
    json_object_set_new(p, "status", json_string(status ? status : ""));
    return p;
}

/* Sends s's followers one status_presence_event: a join with status join
 * (NULL: none) and a leave with status leave (NULL: none). */
static void publish(kz_rt_sess_t *s, const char *join, const char *leave)
{
    pthread_mutex_lock(&st_lock);
    kz_rt_sess_t **to;
    int n = followers_of(s->uid, &to);
    pthread_mutex_unlock(&st_lock);
    if (n == 0) return;
    json_t *ev = json_object();
    if (join) json_object_set_new(ev, "joins", json_pack("[o]", presence_json(s, join)));
    if (leave) json_object_set_new(ev, "leaves", json_pack("[o]", presence_json(s, leave)));
    kz_rt_out_t *f = kz_rt_out(kz_rt_envelope(NULL, "status_presence_event", ev));
    kz_rt_send_many(to, n, f);
    kz_rt_out_free(f);
    for (int i = 0; i < n; i++)
        kz_rt_sess_release(to[i]);
    kz_free(to);
}

void kz_rt_status_online(kz_rt_sess_t *s)
{
    if (!s->status) return;
    pthread_mutex_lock(&st_lock);
    char *old;
    go_online(sess_get(s, true), kz_strdup(""), &old);
    pthread_mutex_unlock(&st_lock);
    kz_free(old);
    publish(s, "", NULL);
}

/* Close hook: the session leaves its followers' view and stops following. */
static void on_close(kz_rt_sess_t *s)
{
    pthread_mutex_lock(&st_lock);
    st_sess_t *e = sess_get(s, false);
    if (!e) {
        pthread_mutex_unlock(&st_lock);
        return;
    }
    bool was_online = e->online;
    char *status = was_online ? go_offline(e) : NULL;
    while (e->follows) {
        st_edge_t *edge = e->follows;
        e->follows = edge->next_from;
        edge_drop(edge);
    }
    e->nfollows = 0;
    sess_gc(e);
    pthread_mutex_unlock(&st_lock);
    if (was_online) publish(s, NULL, status ? status : "");
    kz_free(status);
}

void kz_rt_status_init(void)
{
    kz_rt_add_close_hook(on_close);
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* The field of msg named snake or camel (both accepted), or NULL. */
static json_t *field(json_t *msg, const char *snake, const char *camel)
{
    json_t *v = json_object_get(msg, snake);
    return v ? v : json_object_get(msg, camel);
}

/* True when msg has no field outside the allowed names (NULL-terminated). */
static bool only_fields(json_t *msg, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(msg, key, value)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(key, *a) == 0;
        if (!ok) return false;
    }
    return true;
}

/* An array of strings (or null / absent: empty). False for anything else. */
static bool string_array(json_t *v)
{
    if (!v || json_is_null(v)) return true;
    if (!json_is_array(v)) return false;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!json_is_string(x)) return false;
    return true;
}

/* Copies a user id in canonical lower case into out; false when it is not
 * a UUID. */
static bool user_id(const char *in, char out[37])
{
    size_t len = strlen(in);
    if (!kz_uuid_valid(in, len)) return false;
    for (size_t i = 0; i <= len; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] - 'A' + 'a' : in[i]);
    return true;
}

static bool in_list(char **v, int n, const char *x)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], x) == 0) return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* status_follow                                                            */

typedef struct follow_job {
    char *cid;
    char **ids; /* requested ids, canonical, without the caller's */
    int nids;
    char **names; /* requested usernames, without the caller's */
    int nnames;
    char self[37];
    int rc;            /* store result */
    char (*found)[37]; /* the ids of the users that exist */
    int nfound;
} follow_job_t;

static void follow_job_free(follow_job_t *j)
{
    kz_free(j->cid);
    kz_store_strings_free(j->ids, j->nids);
    kz_store_strings_free(j->names, j->nnames);
    kz_free(j->found);
    kz_free(j);
}

static void follow_work(kz_db_t *db, void *arg)
{
    follow_job_t *j = arg;
    kz_user_t *u;
    int n;
    j->rc = kz_store_users_get(db, j->ids, j->nids, j->names, j->nnames, &u, &n);
    if (j->rc != KZ_DB_OK) return;
    j->found = kz_malloc(sizeof *j->found * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        if (strcmp(u[i].id, j->self) != 0) memcpy(j->found[j->nfound++], u[i].id, 37);
        kz_user_clear(&u[i]);
    }
    kz_free(u);
}

static void follow_done(kz_rt_sess_t *s, void *arg)
{
    follow_job_t *j = arg;
    if (!s->ws) goto out; /* closed meanwhile: its close hook has run */
    if (j->rc != KZ_DB_OK) {
        kz_rt_error(s->ws, j->cid, KZ_RT_RUNTIME_EXCEPTION, "Could not check users to follow.");
        goto out;
    }
    json_t *presences = json_array();
    pthread_mutex_lock(&st_lock);
    st_sess_t *e = sess_get(s, false);
    int adding = 0;
    for (int i = 0; i < j->nfound; i++)
        if (!follows(e, j->found[i])) adding++;
    bool over = (e ? e->nfollows : 0) + adding > ST_MAX_FOLLOWS;
    if (!over) {
        if (!e && j->nfound) e = sess_get(s, true);
        for (int i = 0; i < j->nfound; i++) {
            if (!follows(e, j->found[i])) follow_add(e, j->found[i]);
            st_user_t *u = user_get(j->found[i], false);
            for (st_sess_t *o = u ? u->online : NULL; o; o = o->next_online)
                json_array_append_new(presences, presence_json(o->s, o->status));
        }
    }
    pthread_mutex_unlock(&st_lock);
    if (over) {
        json_decref(presences);
        char text[80];
        snprintf(text, sizeof text, "A session may follow at most %d users.", ST_MAX_FOLLOWS);
        kz_rt_error(s->ws, j->cid, KZ_RT_BAD_INPUT, text);
        goto out;
    }
    json_t *st = json_object();
    if (json_array_size(presences))
        json_object_set_new(st, "presences", presences);
    else
        json_decref(presences);
    kz_rt_reply(s->ws, kz_rt_envelope(j->cid, "status", st));
out:
    follow_job_free(j);
}

void kz_rt_status_follow(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const allowed[] = {"user_ids", "userIds", "usernames", NULL};
    json_t *ids = field(msg, "user_ids", "userIds"), *names = json_object_get(msg, "usernames");
    if (!only_fields(msg, allowed) || !string_array(ids) || !string_array(names)) {
        kz_rt_parse_error(ws);
        return;
    }
    size_t nids = json_is_array(ids) ? json_array_size(ids) : 0;
    size_t nnames = json_is_array(names) ? json_array_size(names) : 0;
    follow_job_t *j = kz_calloc(1, sizeof *j);
    j->ids = kz_calloc(nids + 1, sizeof *j->ids);
    j->names = kz_calloc(nnames + 1, sizeof *j->names);
    snprintf(j->self, sizeof j->self, "%s", s->uid);
    for (size_t i = 0; i < nids; i++) {
        char id[37];
        const char *v = json_string_value(json_array_get(ids, i));
        if (strlen(v) != KZ_UUID_LEN || !user_id(v, id)) {
            kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid user identifier");
            follow_job_free(j);
            return;
        }
        if (strcmp(id, s->uid) != 0 && !in_list(j->ids, j->nids, id))
            j->ids[j->nids++] = kz_strdup(id);
    }
    for (size_t i = 0; i < nnames; i++) {
        const char *v = json_string_value(json_array_get(names, i));
        if (!*v) {
            kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid username - cannot be empty");
            follow_job_free(j);
            return;
        }
        if (strcmp(v, s->username) != 0 && !in_list(j->names, j->nnames, v))
            j->names[j->nnames++] = kz_strdup(v);
    }
    if (j->nids == 0 && j->nnames == 0) { /* nothing (else) to follow */
        kz_rt_reply(ws, kz_rt_envelope(cid, "status", json_object()));
        follow_job_free(j);
        return;
    }
    j->cid = kz_strdup(cid);
    if (!kz_rt_submit(s, follow_work, follow_done, j)) {
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, "Server busy, try again.");
        follow_job_free(j);
    }
}

/* ------------------------------------------------------------------------ */
/* status_unfollow and status_update                                        */

void kz_rt_status_unfollow(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const allowed[] = {"user_ids", "userIds", NULL};
    json_t *ids = field(msg, "user_ids", "userIds");
    if (!only_fields(msg, allowed) || !string_array(ids)) {
        kz_rt_parse_error(ws);
        return;
    }
    size_t n = json_is_array(ids) ? json_array_size(ids) : 0;
    char(*canon)[37] = kz_malloc(sizeof *canon * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        const char *v = json_string_value(json_array_get(ids, i));
        if (strlen(v) != KZ_UUID_LEN || !user_id(v, canon[i])) {
            kz_free(canon);
            kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid user identifier");
            return;
        }
    }
    pthread_mutex_lock(&st_lock);
    st_sess_t *e = sess_get(s, false);
    if (e) {
        for (size_t i = 0; i < n; i++)
            follow_remove(e, canon[i]);
        sess_gc(e);
    }
    pthread_mutex_unlock(&st_lock);
    kz_free(canon);
    kz_rt_reply(ws, kz_rt_envelope(cid, NULL, NULL));
}

void kz_rt_status_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const char *const allowed[] = {"status", NULL};
    json_t *v = json_object_get(msg, "status");
    if (!only_fields(msg, allowed) || (v && !json_is_null(v) && !json_is_string(v))) {
        kz_rt_parse_error(ws);
        return;
    }
    if (!json_is_string(v)) { /* no status: appear offline */
        pthread_mutex_lock(&st_lock);
        st_sess_t *e = sess_get(s, false);
        bool was_online = e && e->online;
        char *old = was_online ? go_offline(e) : NULL;
        if (e) sess_gc(e);
        pthread_mutex_unlock(&st_lock);
        kz_rt_reply(ws, kz_rt_envelope(cid, NULL, NULL));
        if (was_online) publish(s, NULL, old ? old : "");
        kz_free(old);
        return;
    }
    if (json_string_length(v) > ST_MAX_STATUS_BYTES) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Status must be 2048 characters or less");
        return;
    }
    char *status = kz_strndup(json_string_value(v), json_string_length(v));
    pthread_mutex_lock(&st_lock);
    char *old;
    go_online(sess_get(s, true), status, &old);
    pthread_mutex_unlock(&st_lock);
    kz_rt_reply(ws, kz_rt_envelope(cid, NULL, NULL));
    /* A change is a leave of the old status and a join of the new one, in
     * one event, as Nakama's tracker reports it. status is read on this
     * thread only (other threads copy it under the lock). */
    publish(s, status, old);
    kz_free(old);
}

/* ------------------------------------------------------------------------ */
/* Server-side follows (nk.status_follow / nk.status_unfollow)              */

typedef struct post_follow {
    kz_task_t task;
    kz_rt_sess_t *s; /* retained */
    bool follow;
    int n;
    char (*ids)[37];
} post_follow_t;

/* On the session's I/O thread: follows or unfollows as the socket messages
 * do (the caller checked the users exist). A follow sends the followed
 * users' current presences in a `status` envelope, without a cid, when
 * there are any. */
static void post_follow_run(kz_task_t *t)
{
    post_follow_t *p = (post_follow_t *)t;
    kz_rt_sess_t *s = p->s;
    if (!s->ws) goto out; /* closed meanwhile: its close hook has run */
    json_t *presences = json_array();
    bool over = false;
    pthread_mutex_lock(&st_lock);
    st_sess_t *e = sess_get(s, false);
    if (p->follow) {
        int adding = 0;
        for (int i = 0; i < p->n; i++)
            if (strcmp(p->ids[i], s->uid) != 0 && !follows(e, p->ids[i])) adding++;
        over = (e ? e->nfollows : 0) + adding > ST_MAX_FOLLOWS;
        if (!over && adding && !e) e = sess_get(s, true);
        for (int i = 0; i < p->n && !over; i++) {
            if (strcmp(p->ids[i], s->uid) == 0) continue;
            if (!follows(e, p->ids[i])) follow_add(e, p->ids[i]);
            st_user_t *u = user_get(p->ids[i], false);
            for (st_sess_t *o = u ? u->online : NULL; o; o = o->next_online)
                json_array_append_new(presences, presence_json(o->s, o->status));
        }
    } else if (e) {
        for (int i = 0; i < p->n; i++)
            follow_remove(e, p->ids[i]);
        sess_gc(e);
    }
    pthread_mutex_unlock(&st_lock);
    if (over)
        kz_log_warn("status_follow for session %s dropped: over %d follows", s->id, ST_MAX_FOLLOWS);
    if (json_array_size(presences)) {
        json_t *st = json_pack("{s:O}", "presences", presences);
        kz_rt_reply(s->ws, kz_rt_envelope(NULL, "status", st));
    }
    json_decref(presences);
out:
    kz_rt_sess_release(s);
    kz_free(p->ids);
    kz_free(p);
}

int kz_rt_status_follow_post(const char *session_id, const char (*user_ids)[37], int n,
                             bool follow)
{
    kz_rt_sess_t *s = kz_rt_session_find(session_id);
    if (!s) return KZ_RT_POST_UNKNOWN;
    if (!s->app || !s->app->server) {
        kz_rt_sess_release(s);
        return KZ_RT_POST_UNKNOWN;
    }
    if (follow) { /* the cap, checked here so that the caller can be told */
        pthread_mutex_lock(&st_lock);
        st_sess_t *e = sess_get(s, false);
        int adding = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(user_ids[i], s->uid) != 0 && !follows(e, user_ids[i])) adding++;
        bool over = (e ? e->nfollows : 0) + adding > ST_MAX_FOLLOWS;
        pthread_mutex_unlock(&st_lock);
        if (over) {
            kz_rt_sess_release(s);
            return KZ_RT_POST_TOO_MANY;
        }
    }
    post_follow_t *p = kz_calloc(1, sizeof *p);
    p->task.run = post_follow_run;
    p->s = s;
    p->follow = follow;
    p->n = n;
    p->ids = kz_malloc(sizeof *p->ids * (size_t)(n > 0 ? n : 1));
    if (n > 0) memcpy(p->ids, user_ids, sizeof *p->ids * (size_t)n);
    kz_server_post(s->app->server, s->io, &p->task);
    return KZ_RT_POST_OK;
}
