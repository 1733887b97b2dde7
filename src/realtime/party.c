/* Parties over the socket, as Nakama's pipeline_party.go / party_handler.go
 * behave for them:
 *
 *   party_create {open, max_size, label?, hidden?} -> `party`; the creator is
 *        the leader and first member. The id is "<uuid>.<node>".
 *   party_join {party_id} -> empty ack. Open party: the joiner gets a `party`
 *        event and the other members a party_presence_event. Closed party: a
 *        join request is queued (bounded by max_size, no duplicates) and the
 *        leader gets party_join_request.
 *   party_accept (leader) -> empty ack; the requester joins as above.
 *   party_leave -> empty ack; the others get the leave. A leaving leader hands
 *        over to the oldest member (party_leader to all); the last member
 *        leaving ends the party. A pending request is withdrawn.
 *   party_promote (leader) -> empty ack; every member gets party_leader.
 *   party_remove (leader) -> empty ack; a member is kicked (it gets
 *        party_close, the others the leave), a request is rejected.
 *   party_close (leader) -> empty ack; every member gets party_close.
 *   party_join_request_list (leader) -> party_join_request.
 *   party_data_send (member) -> empty ack; party_data to every other member.
 *   party_update (leader) {label, open, hidden} -> empty ack; the other
 *        members get party_update.
 *   A closing socket leaves its parties and withdraws its requests.
 *
 * Threads. A leader acts on members that live on other I/O threads (a kick
 * changes the kicked session's memberships), so all party state - the table,
 * each party's members and requests, and the per-session index of parties -
 * is guarded by one mutex. Critical sections only change lists and build the
 * outgoing JSON; frames are encoded and fanned out (kz_rt_send_many, one
 * frame per event) after the lock is released. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "codec/pbjson.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "realtime/envelope.h"
#include "realtime/match.h"
#include "realtime/matchmaker.h"
#include "realtime/party.h"

#define PARTY_MAX_SIZE KZ_PARTY_MAX_SIZE
#define PARTY_MAX_PER_SESSION KZ_PARTY_MAX_PER_SESSION

/* ------------------------------------------------------------------------ */
/* State (all under g_lock)                                                 */

typedef struct party {
    char uuid[37];
    char *pid; /* "<uuid>.<node>" */
    bool open, hidden;
    int max_size;
    char *label;
    kz_rt_sess_t *leader; /* one of members */
    int n, nreq;
    kz_rt_sess_t **members; /* retained, join order; capacity max(max_size,1) */
    kz_rt_sess_t **reqs;    /* retained, request order; capacity max(max_size,1) */
    struct party *next;
} party_t;

#define TABLE_BUCKETS 1024
static party_t *table[TABLE_BUCKETS];

/* The parties a session is a member of or has asked to join. */
typedef struct sess_entry {
    kz_rt_sess_t *s; /* not retained: the close hook drops the entry */
    int n;
    party_t *p[PARTY_MAX_PER_SESSION];
    struct sess_entry *next;
} sess_entry_t;

#define INDEX_BUCKETS 4096
static sess_entry_t *sindex[INDEX_BUCKETS];

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t str_bucket(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)(h & (TABLE_BUCKETS - 1));
}

static sess_entry_t **sess_slot(const kz_rt_sess_t *s)
{
    uintptr_t h = (uintptr_t)s;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    return &sindex[(h >> 20) & (INDEX_BUCKETS - 1)];
}

static sess_entry_t *sess_get(const kz_rt_sess_t *s, bool create)
{
    sess_entry_t **slot = sess_slot(s);
    for (sess_entry_t *e = *slot; e; e = e->next)
        if (e->s == s) return e;
    if (!create) return NULL;
    sess_entry_t *e = kz_calloc(1, sizeof *e);
    e->s = (kz_rt_sess_t *)s;
    e->next = *slot;
    *slot = e;
    return e;
}

static void sess_add(const kz_rt_sess_t *s, party_t *p)
{
    sess_entry_t *e = sess_get(s, true);
    if (e->n < PARTY_MAX_PER_SESSION) e->p[e->n++] = p; /* callers checked room */
}

static bool sess_full(const kz_rt_sess_t *s)
{
    sess_entry_t *e = sess_get(s, false);
    return e && e->n >= PARTY_MAX_PER_SESSION;
}

static void sess_del(const kz_rt_sess_t *s, const party_t *p)
{
    sess_entry_t **slot = sess_slot(s), *e = sess_get(s, false);
    if (!e) return;
    for (int i = 0; i < e->n; i++)
        if (e->p[i] == p) {
            e->p[i] = e->p[--e->n];
            break;
        }
    if (e->n == 0) {
        while (*slot != e)
            slot = &(*slot)->next;
        *slot = e->next;
        kz_free(e);
    }
}

static party_t *party_find(const char *uuid)
{
    for (party_t *p = table[str_bucket(uuid)]; p; p = p->next)
        if (strcmp(p->uuid, uuid) == 0) return p;
    return NULL;
}

static int list_find(kz_rt_sess_t **l, int n, const kz_rt_sess_t *s)
{
    for (int i = 0; i < n; i++)
        if (l[i] == s) return i;
    return -1;
}

/* Finds a session of the list by presence ids (session id, and user id when given). */
static int list_find_presence(kz_rt_sess_t **l, int n, const char *sid, const char *uid)
{
    for (int i = 0; i < n; i++)
        if (strcmp(l[i]->id, sid) == 0 && (!uid || strcmp(l[i]->uid, uid) == 0)) return i;
    return -1;
}

/* Removes entry i (its reference passes to the caller). */
static kz_rt_sess_t *list_take(kz_rt_sess_t **l, int *n, int i)
{
    kz_rt_sess_t *s = l[i];
    memmove(&l[i], &l[i + 1], sizeof *l * (size_t)(*n - i - 1));
    (*n)--;
    return s;
}

/* Membership changes cancel the party's matchmaker tickets (g_lock held;
 * the matchmaker's pool lock nests inside it). */
static void drop_tickets(const party_t *p)
{
    kz_mm_pool_t *pool = kz_mm_server_pool();
    if (pool) kz_mm_remove_party(pool, p->pid);
}

/* Unlinks and frees p, dropping everyone's index entry and references. */
static void party_destroy(party_t *p)
{
    drop_tickets(p);
    party_t **pp = &table[str_bucket(p->uuid)];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) *pp = p->next;
    for (int i = 0; i < p->n; i++) {
        sess_del(p->members[i], p);
        kz_rt_sess_release(p->members[i]);
    }
    for (int i = 0; i < p->nreq; i++) {
        sess_del(p->reqs[i], p);
        kz_rt_sess_release(p->reqs[i]);
    }
    kz_free(p->members);
    kz_free(p->reqs);
    kz_free(p->pid);
    kz_free(p->label);
    kz_free(p);
}

/* ------------------------------------------------------------------------ */
/* Outbox: events built under the lock, encoded and sent after it           */

typedef struct out {
    json_t *env;
    int n;
    kz_rt_sess_t **to; /* retained */
} out_t;

typedef struct outbox {
    int n;
    out_t o[6];
} outbox_t;

/* Queues env (stolen) for the n sessions of l except skip. */
static void ob_add(outbox_t *ob, json_t *env, kz_rt_sess_t *const *l, int n,
                   const kz_rt_sess_t *skip)
{
    out_t *o = &ob->o[ob->n++];
    o->env = env;
    o->n = 0;
    o->to = kz_malloc(sizeof *o->to * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++)
        if (l[i] != skip) o->to[o->n++] = kz_rt_sess_retain(l[i]);
}

static void ob_add1(outbox_t *ob, json_t *env, kz_rt_sess_t *s)
{
    ob_add(ob, env, &s, 1, NULL);
}

static void ob_flush(outbox_t *ob)
{
    for (int i = 0; i < ob->n; i++) {
        out_t *o = &ob->o[i];
        if (o->n) {
            kz_rt_out_t *f = kz_rt_out(o->env);
            kz_rt_send_many(o->to, o->n, f);
            kz_rt_out_free(f);
        } else {
            json_decref(o->env);
        }
        for (int k = 0; k < o->n; k++)
            kz_rt_sess_release(o->to[k]);
        kz_free(o->to);
    }
    ob->n = 0;
}

/* ------------------------------------------------------------------------ */
/* Wire                                                                     */


static json_t *presences_json(kz_rt_sess_t *const *l, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, kz_rt_presence_json(l[i]));
    return a;
}

/* The `party` message as self sees it. */
static json_t *party_json(const party_t *p, const kz_rt_sess_t *self)
{
    json_t *m = json_object();
    json_object_set_new(m, "party_id", json_string(p->pid));
    if (p->open) json_object_set_new(m, "open", json_true());
    if (p->hidden) json_object_set_new(m, "hidden", json_true());
    if (p->max_size) json_object_set_new(m, "max_size", json_integer(p->max_size));
    json_object_set_new(m, "self", kz_rt_presence_json(self));
    json_object_set_new(m, "leader", kz_rt_presence_json(p->leader));
    json_object_set_new(m, "presences", presences_json(p->members, p->n));
    if (p->label[0]) json_object_set_new(m, "label", json_string(p->label));
    return m;
}

static json_t *pid_msg(const party_t *p)
{
    json_t *m = json_object();
    json_object_set_new(m, "party_id", json_string(p->pid));
    return m;
}

static json_t *presence_event(const party_t *p, const kz_rt_sess_t *s, bool join)
{
    json_t *m = pid_msg(p), *one = json_array();
    json_array_append_new(one, kz_rt_presence_json(s));
    json_object_set_new(m, join ? "joins" : "leaves", one);
    return kz_rt_envelope(NULL, "party_presence_event", m);
}

static json_t *leader_event(const party_t *p)
{
    json_t *m = pid_msg(p);
    json_object_set_new(m, "presence", kz_rt_presence_json(p->leader));
    return kz_rt_envelope(NULL, "party_leader", m);
}

/* ------------------------------------------------------------------------ */
/* Input and replies                                                        */

static void ack(kz_ws_t *ws, const char *cid)
{
    kz_rt_reply(ws, kz_rt_envelope(cid, NULL, NULL));
}

/* Parses "<uuid>.<node>" for this node into uuid; false (error replied) when bad. */
static bool party_id_read(kz_ws_t *ws, const kz_rt_sess_t *s, const char *cid, json_t *v,
                          char uuid[37], bool *other_node)
{
    const char *node;
    if (!v || !kz_match_id_parse(json_string_value(v), uuid, &node) || !*node) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid party ID");
        return false;
    }
    *other_node = strcmp(node, s->app->cfg->name) != 0;
    return true;
}

/* A presence argument: session id (required) and user id; false: a parse error. */
static bool presence_read(json_t *v, const char **sid, const char **uid)
{
    static const kz_rt_field_t pf[] = {
        {"user_id", "userId", KZ_RT_F_STRING},    {"session_id", "sessionId", KZ_RT_F_STRING},
        {"username", "username", KZ_RT_F_STRING}, {"persistence", "persistence", KZ_RT_F_BOOL},
        {"status", "status", KZ_RT_F_STRING},
    };
    json_t *pv[5];
    if (!kz_rt_fields_read(v, pf, 5, pv)) return false;
    *uid = pv[0] ? json_string_value(pv[0]) : NULL;
    *sid = pv[1] ? json_string_value(pv[1]) : "";
    return true;
}

bool kz_party_label_ok(const char *l, size_t n)
{
    if (n == 0) return true;
    if (n > KZ_PARTY_LABEL_MAX) return false;
    json_t *j = json_loadb(l, n, JSON_DECODE_ANY, NULL);
    bool ok = json_is_object(j);
    json_decref(j);
    return ok;
}

/* Common prologue of the messages naming a party: reads the fields (the
 * first is party_id), locks, and finds the party. Returns it locked, or NULL
 * with the reply done and the lock released. */
static party_t *lock_party(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg,
                           const kz_rt_field_t *f, int nf, json_t **v, bool leader_only, const char *what)
{
    if (!kz_rt_fields_read(msg, f, nf, v)) {
        kz_rt_parse_error(ws);
        return NULL;
    }
    char uuid[37];
    bool other;
    if (!party_id_read(ws, s, cid, v[0], uuid, &other)) return NULL;
    pthread_mutex_lock(&g_lock);
    party_t *p = other ? NULL : party_find(uuid);
    const char *err = NULL;
    if (!p)
        err = "party not found";
    else if (leader_only && p->leader != s)
        err = "party leader only";
    if (err) {
        pthread_mutex_unlock(&g_lock);
        char m[128];
        snprintf(m, sizeof m, "Error %s: %s", what, err);
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, m);
        return NULL;
    }
    return p;
}

static void fail_locked(kz_ws_t *ws, const char *cid, const char *what, const char *err)
{
    pthread_mutex_unlock(&g_lock);
    char m[128];
    snprintf(m, sizeof m, "Error %s: %s", what, err);
    kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, m);
}

/* ------------------------------------------------------------------------ */
/* Membership (under g_lock)                                                */

/* Adds s as a member; s gets `party`, the others the join. */
static void member_add(party_t *p, kz_rt_sess_t *s, outbox_t *ob)
{
    p->members[p->n++] = s; /* the caller's reference passes */
    drop_tickets(p);
    ob_add1(ob, kz_rt_envelope(NULL, "party", party_json(p, s)), s);
    ob_add(ob, presence_event(p, s, true), p->members, p->n, s);
}

/* Takes member i out; the others get the leave and, when the leader left,
 * the new leader. The last member leaving ends the party. */
static void member_remove(party_t *p, int i, outbox_t *ob)
{
    kz_rt_sess_t *s = list_take(p->members, &p->n, i);
    sess_del(s, p);
    drop_tickets(p);
    if (p->n == 0) {
        kz_rt_sess_release(s);
        party_destroy(p);
        return;
    }
    ob_add(ob, presence_event(p, s, false), p->members, p->n, NULL);
    if (p->leader == s) {
        p->leader = p->members[0]; /* the oldest member */
        ob_add(ob, leader_event(p), p->members, p->n, NULL);
    }
    kz_rt_sess_release(s);
}

/* ------------------------------------------------------------------------ */
/* Handlers                                                                 */

void kz_rt_party_create(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {
        {"open", "open", KZ_RT_F_BOOL},
        {"max_size", "maxSize", KZ_RT_F_INT64},
        {"label", "label", KZ_RT_F_STRING},
        {"hidden", "hidden", KZ_RT_F_BOOL},
    };
    json_t *v[4];
    if (!kz_rt_fields_read(msg, f, 4, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    int64_t max_size = 0;
    if (v[1]) kz_rt_int64(v[1], &max_size);
    if (max_size < 0 || max_size > PARTY_MAX_SIZE) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid party max size, must be 1-256");
        return;
    }
    const char *label = v[2] ? json_string_value(v[2]) : "";
    if (!kz_party_label_ok(label, v[2] ? json_string_length(v[2]) : 0)) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT,
                    "Invalid party label, must be a JSON object of at most 2048 bytes");
        return;
    }
    party_t *p = kz_calloc(1, sizeof *p);
    kz_uuid_v4(p->uuid);
    size_t pl = strlen(p->uuid) + strlen(s->app->cfg->name) + 2;
    p->pid = kz_malloc(pl);
    snprintf(p->pid, pl, "%s.%s", p->uuid, s->app->cfg->name);
    p->open = v[0] && json_is_true(v[0]);
    p->hidden = v[3] && json_is_true(v[3]);
    p->max_size = (int)max_size;
    p->label = kz_strdup(*label ? label : "{}");
    int cap = p->max_size ? p->max_size : 1;
    p->members = kz_malloc(sizeof *p->members * (size_t)cap);
    p->reqs = kz_malloc(sizeof *p->reqs * (size_t)cap);
    p->members[p->n++] = kz_rt_sess_retain(s);
    p->leader = s;

    pthread_mutex_lock(&g_lock);
    if (sess_full(s)) {
        pthread_mutex_unlock(&g_lock);
        p->n = 0;
        kz_rt_sess_release(s);
        kz_free(p->members);
        kz_free(p->reqs);
        kz_free(p->pid);
        kz_free(p->label);
        kz_free(p);
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, "Error creating party: too many parties");
        return;
    }
    size_t b = str_bucket(p->uuid);
    p->next = table[b];
    table[b] = p;
    sess_add(s, p);
    json_t *reply = party_json(p, s);
    pthread_mutex_unlock(&g_lock);
    kz_rt_reply(ws, kz_rt_envelope(cid, "party", reply));
}

void kz_rt_party_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING}};
    json_t *v[1];
    const char *what = "joining party";
    party_t *p = lock_party(ws, s, cid, msg, f, 1, v, false, what);
    if (!p) return;
    if (list_find(p->members, p->n, s) >= 0) {
        fail_locked(ws, cid, what, "already a member");
        return;
    }
    if (list_find(p->reqs, p->nreq, s) >= 0) {
        fail_locked(ws, cid, what, "duplicate join request");
        return;
    }
    if (p->n >= p->max_size) {
        fail_locked(ws, cid, what, "party full");
        return;
    }
    if (sess_full(s)) {
        fail_locked(ws, cid, what, "too many parties");
        return;
    }
    outbox_t ob = {0};
    if (p->open) {
        sess_add(s, p);
        member_add(p, kz_rt_sess_retain(s), &ob);
    } else {
        if (p->nreq >= p->max_size) {
            fail_locked(ws, cid, what, "too many join requests");
            return;
        }
        sess_add(s, p);
        p->reqs[p->nreq++] = kz_rt_sess_retain(s);
        json_t *m = pid_msg(p), *one = json_array();
        json_array_append_new(one, kz_rt_presence_json(s));
        json_object_set_new(m, "presences", one);
        ob_add1(&ob, kz_rt_envelope(NULL, "party_join_request", m), p->leader);
    }
    pthread_mutex_unlock(&g_lock);
    ack(ws, cid);
    ob_flush(&ob);
}

void kz_rt_party_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING}};
    json_t *v[1];
    if (!kz_rt_fields_read(msg, f, 1, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    char uuid[37];
    bool other;
    if (!party_id_read(ws, s, cid, v[0], uuid, &other)) return;
    outbox_t ob = {0};
    pthread_mutex_lock(&g_lock);
    party_t *p = other ? NULL : party_find(uuid);
    int i;
    if (p && (i = list_find(p->members, p->n, s)) >= 0) {
        member_remove(p, i, &ob);
    } else if (p && (i = list_find(p->reqs, p->nreq, s)) >= 0) {
        sess_del(s, p);
        kz_rt_sess_release(list_take(p->reqs, &p->nreq, i));
    }
    pthread_mutex_unlock(&g_lock);
    /* Leaving is acknowledged, member or not. */
    ack(ws, cid);
    ob_flush(&ob);
}

/* The message's presence argument, as an index into list (-1 when absent);
 * false when the message does not parse. */
static bool target_read(json_t *pv, kz_rt_sess_t **l, int n, int *out)
{
    const char *sid = "", *uid = NULL;
    if (pv && !presence_read(pv, &sid, &uid)) return false;
    *out = list_find_presence(l, n, sid, uid);
    return true;
}

void kz_rt_party_promote(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING},
                                {"presence", "presence", KZ_RT_F_OBJECT}};
    json_t *v[2];
    const char *what = "promoting party member";
    party_t *p = lock_party(ws, s, cid, msg, f, 2, v, true, what);
    if (!p) return;
    int i;
    if (!target_read(v[1], p->members, p->n, &i)) {
        pthread_mutex_unlock(&g_lock);
        kz_rt_parse_error(ws);
        return;
    }
    if (i < 0) {
        fail_locked(ws, cid, what, "party member not found");
        return;
    }
    outbox_t ob = {0};
    if (p->members[i] != p->leader) {
        p->leader = p->members[i];
        ob_add(&ob, leader_event(p), p->members, p->n, NULL);
    }
    pthread_mutex_unlock(&g_lock);
    ack(ws, cid);
    ob_flush(&ob);
}

void kz_rt_party_accept(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING},
                                {"presence", "presence", KZ_RT_F_OBJECT}};
    json_t *v[2];
    const char *what = "accepting party member";
    party_t *p = lock_party(ws, s, cid, msg, f, 2, v, true, what);
    if (!p) return;
    int i;
    if (!target_read(v[1], p->reqs, p->nreq, &i)) {
        pthread_mutex_unlock(&g_lock);
        kz_rt_parse_error(ws);
        return;
    }
    if (i < 0) {
        fail_locked(ws, cid, what, "join request not found");
        return;
    }
    if (p->n >= p->max_size) {
        fail_locked(ws, cid, what, "party full");
        return;
    }
    outbox_t ob = {0};
    /* The request's index entry and reference carry over to the membership. */
    member_add(p, list_take(p->reqs, &p->nreq, i), &ob);
    pthread_mutex_unlock(&g_lock);
    ack(ws, cid);
    ob_flush(&ob);
}

void kz_rt_party_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING},
                                {"presence", "presence", KZ_RT_F_OBJECT}};
    json_t *v[2];
    const char *what = "removing party member";
    party_t *p = lock_party(ws, s, cid, msg, f, 2, v, true, what);
    if (!p) return;
    int i, r;
    if (!target_read(v[1], p->members, p->n, &i) || !target_read(v[1], p->reqs, p->nreq, &r)) {
        pthread_mutex_unlock(&g_lock);
        kz_rt_parse_error(ws);
        return;
    }
    outbox_t ob = {0};
    if (i >= 0) {
        if (p->members[i] == s) {
            fail_locked(ws, cid, what, "cannot remove self");
            return;
        }
        ob_add1(&ob, kz_rt_envelope(NULL, "party_close", pid_msg(p)), p->members[i]);
        member_remove(p, i, &ob);
    } else if (r >= 0) { /* a rejected request */
        kz_rt_sess_t *t = list_take(p->reqs, &p->nreq, r);
        sess_del(t, p);
        kz_rt_sess_release(t);
    } else {
        {
            fail_locked(ws, cid, what, "party member not found");
            return;
        }
    }
    pthread_mutex_unlock(&g_lock);
    ack(ws, cid);
    ob_flush(&ob);
}

void kz_rt_party_close(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING}};
    json_t *v[1];
    party_t *p = lock_party(ws, s, cid, msg, f, 1, v, true, "closing party");
    if (!p) return;
    outbox_t ob = {0};
    ob_add(&ob, kz_rt_envelope(NULL, "party_close", pid_msg(p)), p->members, p->n, NULL);
    party_destroy(p);
    pthread_mutex_unlock(&g_lock);
    ack(ws, cid);
    ob_flush(&ob);
}

void kz_rt_party_join_request_list(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING}};
    json_t *v[1];
    party_t *p = lock_party(ws, s, cid, msg, f, 1, v, true, "listing party join requests");
    if (!p) return;
    json_t *m = pid_msg(p);
    if (p->nreq) json_object_set_new(m, "presences", presences_json(p->reqs, p->nreq));
    pthread_mutex_unlock(&g_lock);
    kz_rt_reply(ws, kz_rt_envelope(cid, "party_join_request", m));
}

void kz_rt_party_data_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING},
                                {"op_code", "opCode", KZ_RT_F_INT64},
                                {"data", "data", KZ_RT_F_STRING}};
    json_t *v[3];
    if (!kz_rt_fields_read(msg, f, 3, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    int64_t op_code = 0;
    if (v[1]) kz_rt_int64(v[1], &op_code);
    size_t dlen = 0;
    unsigned char *data = NULL;
    if (v[2] &&
        !(data = kz_pbjson_b64_decode(json_string_value(v[2]), json_string_length(v[2]), &dlen))) {
        kz_rt_parse_error(ws);
        return;
    }
    /* The event is built before locking: only the recipients need the lock. */
    json_t *pd = json_object();
    json_object_set_new(pd, "party_id", v[0] ? json_incref(v[0]) : json_string(""));
    json_object_set_new(pd, "presence", kz_rt_presence_json(s));
    if (op_code) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)op_code);
        json_object_set_new(pd, "op_code", json_string(num));
    }
    if (dlen) {
        char *b64 = kz_pbjson_b64_encode(data, dlen);
        json_object_set_new(pd, "data", json_string(b64));
        kz_free(b64);
    }
    kz_free(data);
    json_t *env = kz_rt_envelope(NULL, "party_data", pd);
    const char *what = "sending party data";
    party_t *p = lock_party(ws, s, cid, msg, f, 3, v, false, what);
    if (!p) {
        json_decref(env);
        return;
    }
    if (list_find(p->members, p->n, s) < 0) {
        json_decref(env);
        {
            fail_locked(ws, cid, what, "not a party member");
            return;
        }
    }
    outbox_t ob = {0};
    ob_add(&ob, env, p->members, p->n, s);
    pthread_mutex_unlock(&g_lock);
    ack(ws, cid);
    ob_flush(&ob);
}

void kz_rt_party_update(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {
        {"party_id", "partyId", KZ_RT_F_STRING},
        {"label", "label", KZ_RT_F_STRING},
        {"open", "open", KZ_RT_F_BOOL},
        {"hidden", "hidden", KZ_RT_F_BOOL},
    };
    json_t *v[4];
    if (!kz_rt_fields_read(msg, f, 4, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    const char *label = v[1] ? json_string_value(v[1]) : "";
    if (!kz_party_label_ok(label, v[1] ? json_string_length(v[1]) : 0)) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT,
                    "Invalid party label, must be a JSON object of at most 2048 bytes");
        return;
    }
    party_t *p = lock_party(ws, s, cid, msg, f, 4, v, true, "updating party");
    if (!p) return;
    kz_free(p->label);
    p->label = kz_strdup(*label ? label : "{}");
    p->open = v[2] && json_is_true(v[2]);
    p->hidden = v[3] && json_is_true(v[3]);
    json_t *m = pid_msg(p);
    json_object_set_new(m, "label", json_string(p->label));
    if (p->open) json_object_set_new(m, "open", json_true());
    if (p->hidden) json_object_set_new(m, "hidden", json_true());
    outbox_t ob = {0};
    ob_add(&ob, kz_rt_envelope(NULL, "party_update", m), p->members, p->n, s);
    pthread_mutex_unlock(&g_lock);
    ack(ws, cid);
    ob_flush(&ob);
}

void kz_rt_party_matchmaker_add(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {
        {"party_id", "partyId", KZ_RT_F_STRING},
        {"min_count", "minCount", KZ_RT_F_INT64},
        {"max_count", "maxCount", KZ_RT_F_INT64},
        {"query", "query", KZ_RT_F_STRING},
        {"string_properties", "stringProperties", KZ_RT_F_MAP},
        {"numeric_properties", "numericProperties", KZ_RT_F_OBJECT},
        {"count_multiple", "countMultiple", KZ_RT_F_INT64},
    };
    json_t *v[7];
    if (!kz_rt_fields_read(msg, f, 7, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    kz_mm_spec_t spec;
    json_t *np;
    if (!kz_rt_mm_read_add(ws, cid, v + 1, &spec, &np)) return;
    party_t *p = lock_party(ws, s, cid, msg, f, 7, v, true, "adding to matchmaker");
    if (!p) {
        json_decref(np);
        return;
    }
    /* The ticket holds every member; its id goes to all of them. */
    kz_mm_member_t *ms = kz_malloc(sizeof *ms * (size_t)p->n);
    for (int i = 0; i < p->n; i++) {
        memcpy(ms[i].sid, p->members[i]->id, sizeof ms[i].sid);
        memcpy(ms[i].uid, p->members[i]->uid, sizeof ms[i].uid);
        snprintf(ms[i].username, sizeof ms[i].username, "%s", p->members[i]->username);
    }
    spec.members = ms;
    spec.nmembers = p->n;
    spec.party_id = p->pid;
    kz_mm_pool_t *pool = kz_mm_server_pool();
    char ticket[37];
    int rc = pool ? kz_mm_add(pool, &spec, kz_now_ms(), ticket) : KZ_MM_EINVALID;
    kz_free(ms);
    json_decref(np);
    if (rc != KZ_MM_OK) {
        pthread_mutex_unlock(&g_lock);
        kz_rt_error(ws, cid, KZ_RT_RUNTIME_EXCEPTION, "Error adding to matchmaker");
        return;
    }
    json_t *m = pid_msg(p);
    json_object_set_new(m, "ticket", json_string(ticket));
    outbox_t ob = {0};
    ob_add(&ob, kz_rt_envelope(NULL, "party_matchmaker_ticket", json_deep_copy(m)), p->members, p->n, s);
    pthread_mutex_unlock(&g_lock);
    kz_rt_reply(ws, kz_rt_envelope(cid, "party_matchmaker_ticket", m));
    ob_flush(&ob);
}

void kz_rt_party_matchmaker_remove(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t f[] = {{"party_id", "partyId", KZ_RT_F_STRING}, {"ticket", "ticket", KZ_RT_F_STRING}};
    json_t *v[2];
    party_t *p = lock_party(ws, s, cid, msg, f, 2, v, true, "removing from matchmaker");
    if (!p) return;
    kz_mm_pool_t *pool = kz_mm_server_pool();
    const char *ticket = v[1] ? json_string_value(v[1]) : "";
    int rc = pool && *ticket ? kz_mm_remove(pool, ticket, NULL, p->pid) : KZ_MM_ENOT_FOUND;
    pthread_mutex_unlock(&g_lock);
    if (rc != KZ_MM_OK) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Matchmaker ticket not found");
        return;
    }
    ack(ws, cid);
}

/* On disconnect: leave every party, withdraw every request. */
static void on_session_close(kz_rt_sess_t *s)
{
    pthread_mutex_lock(&g_lock);
    for (;;) {
        sess_entry_t *e = sess_get(s, false);
        if (!e) break;
        party_t *p = e->p[0];
        outbox_t ob = {0};
        int i;
        if ((i = list_find(p->members, p->n, s)) >= 0) {
            member_remove(p, i, &ob); /* drops the entry's slot */
        } else if ((i = list_find(p->reqs, p->nreq, s)) >= 0) {
            sess_del(s, p);
            kz_rt_sess_release(list_take(p->reqs, &p->nreq, i));
        } else {
            sess_del(s, p); /* not reached: the index mirrors the lists */
        }
        /* Deliver with the lock released; the loop then looks the entry
         * up again, as others may have changed it meanwhile. */
        pthread_mutex_unlock(&g_lock);
        ob_flush(&ob);
        pthread_mutex_lock(&g_lock);
    }
    pthread_mutex_unlock(&g_lock);
}

void kz_rt_party_init(void)
{
    kz_rt_add_close_hook(on_session_close);
}
