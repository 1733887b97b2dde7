/* Relayed (client-authoritative) matches over the socket, as Nakama's
 * pipeline_match.go behaves for them:
 *
 *   match_create {name?}   -> `match`; the creator is the first member. The
 *                             id is "<uuid>." (empty node part): a random v4
 *                             uuid, or the v5 uuid of the name in the DNS
 *                             namespace so clients can meet by name.
 *   match_join {match_id}  -> `match` listing the other members; they get a
 *                             match_presence_event with the join. A relayed
 *                             match exists only while it has members.
 *   match_leave {match_id} -> empty ack (always); the others get the leave.
 *   match_data_send        -> no reply; match_data to every other member, or
 *                             only to the listed members. A bad match id is an
 *                             error without cid; a sender that is not a
 *                             member is silently ignored (as Nakama).
 *
 * Threads. A match's members are sessions on any I/O thread, so each match
 * has its own mutex (members list) and the match table is split in shards,
 * each with a mutex (the chains). The lock order is shard, then match; a
 * data send takes only the match lock. Locks are held just long enough to
 * change or copy the member list: replies and events are built and sent
 * after the locks are released (one frame per event, fanned out with
 * kz_rt_send_many, which keeps each sender's messages in order).
 *
 * Every message of a session, and its close hook, run on that session's I/O
 * thread, so the list of matches a session is in lives in a per-thread index
 * that needs no lock. The index holds a reference on each match it lists;
 * the table holds one while the match is linked; a data send holds one while
 * it copies the members. */
#include "realtime/match.h"
#include "codec/pbjson.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/sha1.h"
#include "core/uuid.h"
#include "realtime/authoritative.h"
#include "realtime/envelope.h"
#include "realtime/matchmaker.h"

/* ------------------------------------------------------------------------ */
/* Pure helpers                                                             */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void format_uuid(const unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

/* 32 hex digits, with dashes where canonical text has them when dashed. */
static bool decode_hex_uuid(const char *s, size_t n, bool dashed, unsigned char b[16])
{
    size_t i = 0;
    for (int k = 0; k < 16; k++) {
        if (dashed && (k == 4 || k == 6 || k == 8 || k == 10)) {
            if (i >= n || s[i] != '-') return false;
            i++;
        }
        if (i + 2 > n) return false;
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) return false;
        b[k] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    return i == n;
}

bool kz_match_uuid_parse(const char *s, size_t n, char out[37])
{
    unsigned char b[16];
    bool ok = false;
    if (n == 32 || n == 36) {
        ok = decode_hex_uuid(s, n, n == 36, b);
    } else if (n == 38) {
        ok = s[0] == '{' && s[37] == '}' && decode_hex_uuid(s + 1, 36, true, b);
    } else if ((n == 41 || n == 45) && strncasecmp(s, "urn:uuid:", 9) == 0) {
        ok = decode_hex_uuid(s + 9, n - 9, n == 45, b);
    }
    if (ok) format_uuid(b, out);
    return ok;
}

bool kz_match_id_parse(const char *id, char uuid[37], const char **node)
{
    const char *dot = strchr(id, '.');
    if (!dot || !kz_match_uuid_parse(id, (size_t)(dot - id), uuid)) return false;
    *node = dot + 1;
    return true;
}

void kz_match_uuid_v5_dns(const char *name, size_t n, char out[37])
{
    /* 6ba7b810-9dad-11d1-80b4-00c04fd430c8 (RFC 9562, appendix A) */
    static const unsigned char dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                          0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
    kz_sha1_t ctx;
    unsigned char d[KZ_SHA1_LEN];
    kz_sha1_init(&ctx);
    kz_sha1_update(&ctx, dns, sizeof dns);
    kz_sha1_update(&ctx, name, n);
    kz_sha1_final(&ctx, d);
    d[6] = (unsigned char)((d[6] & 0x0f) | 0x50); /* version 5 */
    d[8] = (unsigned char)((d[8] & 0x3f) | 0x80); /* variant 10 */
    format_uuid(d, out);
}

/* ------------------------------------------------------------------------ */
/* Matches and the table                                                    */

typedef struct match {
    atomic_int refs;
    char id[37];          /* canonical uuid; the match id is id + "." */
    pthread_mutex_t lock; /* guards n, cap, members */
    int n, cap;
    kz_rt_sess_t **members; /* retained, in join order */
    struct match *next;     /* table chain (under the shard lock) */
} match_t;

#define TABLE_BUCKETS 4096 /* power of two */
#define TABLE_SHARDS 64    /* bucket b is guarded by shard b % TABLE_SHARDS */

static match_t *table[TABLE_BUCKETS];
static pthread_mutex_t shard_locks[TABLE_SHARDS];

static size_t table_bucket(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)(h & (TABLE_BUCKETS - 1));
}

static match_t *match_retain(match_t *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

static void match_release(match_t *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
    /* Only an empty match is ever unlinked, so no members are left here. */
    pthread_mutex_destroy(&m->lock);
    kz_free(m->members);
    kz_free(m);
}

/* Looks id up in its bucket; the caller holds the shard lock. */
static match_t *table_find(size_t b, const char *id)
{
    for (match_t *m = table[b]; m; m = m->next)
        if (strcmp(m->id, id) == 0) return m;
    return NULL;
}

static void table_unlink(size_t b, match_t *m)
{
    match_t **p = &table[b];
    while (*p && *p != m) p = &(*p)->next;
    if (*p) *p = m->next;
}

/* A copy of some members of a match, each retained. */
typedef struct snap {
    int n;
    kz_rt_sess_t **s;
} snap_t;

static void snap_free(snap_t *sn)
{
    for (int i = 0; i < sn->n; i++) kz_rt_sess_release(sn->s[i]);
    kz_free(sn->s);
    sn->n = 0;
    sn->s = NULL;
}

/* Copies the members of m except skip (NULL: all); the caller holds m->lock. */
static void snap_members(match_t *m, const kz_rt_sess_t *skip, snap_t *out)
{
    out->n = 0;
    out->s = kz_malloc(sizeof *out->s * (size_t)(m->n ? m->n : 1));
    for (int i = 0; i < m->n; i++)
        if (m->members[i] != skip) out->s[out->n++] = kz_rt_sess_retain(m->members[i]);
}

/* ------------------------------------------------------------------------ */
/* Per-thread index: the matches each session is in                         */

typedef struct sess_entry {
    kz_rt_sess_t *s; /* not retained: the close hook drops the entry first */
    int n, cap;
    match_t **m; /* retained */
    struct sess_entry *next;
} sess_entry_t;

#define INDEX_BUCKETS 1024 /* per I/O thread; power of two */
#define INDEX_THREADS 256  /* router delivery handles I/O threads below 256 */

/* index[io] is created and used only by I/O thread io. */
static sess_entry_t **index_by_io[INDEX_THREADS];

static sess_entry_t **index_slot(const kz_rt_sess_t *s)
{
    if (s->io < 0 || s->io >= INDEX_THREADS) return NULL;
    if (!index_by_io[s->io]) index_by_io[s->io] = kz_calloc(INDEX_BUCKETS, sizeof(sess_entry_t *));
    uintptr_t h = (uintptr_t)s;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    return &index_by_io[s->io][(h >> 20) & (INDEX_BUCKETS - 1)];
}

static sess_entry_t *index_get(const kz_rt_sess_t *s, bool create)
{
    sess_entry_t **slot = index_slot(s);
    if (!slot) return NULL;
    for (sess_entry_t *e = *slot; e; e = e->next)
        if (e->s == s) return e;
    if (!create) return NULL;
    sess_entry_t *e = kz_calloc(1, sizeof *e);
    e->s = (kz_rt_sess_t *)s;
    e->next = *slot;
    *slot = e;
    return e;
}

static void index_drop(sess_entry_t *e)
{
    sess_entry_t **p = index_slot(e->s);
    while (*p && *p != e) p = &(*p)->next;
    if (*p) *p = e->next;
    kz_free(e->m);
    kz_free(e);
}

static match_t *entry_find(const sess_entry_t *e, const char *id)
{
    for (int i = 0; e && i < e->n; i++)
        if (strcmp(e->m[i]->id, id) == 0) return e->m[i];
    return NULL;
}

static void entry_add(sess_entry_t *e, match_t *m)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4;
        e->m = kz_realloc(e->m, sizeof *e->m * (size_t)e->cap);
    }
    e->m[e->n++] = m;
}

/* Removes m from the entry (its reference passes to the caller). */
static void entry_remove(sess_entry_t *e, const match_t *m)
{
    for (int i = 0; i < e->n; i++)
        if (e->m[i] == m) {
            memmove(&e->m[i], &e->m[i + 1], sizeof *e->m * (size_t)(e->n - i - 1));
            e->n--;
            return;
        }
}

/* ------------------------------------------------------------------------ */
/* Wire                                                                     */


static json_t *presences_json(const snap_t *sn)
{
    json_t *a = json_array();
    for (int i = 0; i < sn->n; i++) json_array_append_new(a, kz_rt_presence_json(sn->s[i]));
    return a;
}

/* Sends a match_presence_event about s (a join or a leave) to sn. */
static void send_presence_event(const snap_t *sn, const char *id, const kz_rt_sess_t *s, bool join)
{
    if (sn->n == 0) return;
    json_t *ev = json_object();
    char mid[40];
    snprintf(mid, sizeof mid, "%s.", id);
    json_object_set_new(ev, "match_id", json_string(mid));
    json_t *one = json_array();
    json_array_append_new(one, kz_rt_presence_json(s));
    json_object_set_new(ev, join ? "joins" : "leaves", one);
    kz_rt_out_t *f = kz_rt_out(kz_rt_envelope(NULL, "match_presence_event", ev));
    kz_rt_send_many(sn->s, sn->n, f);
    kz_rt_out_free(f);
}

/* The `match` reply: presences listed, size as given. */
static void reply_match(kz_ws_t *ws, const char *cid, const char *match_id, const kz_rt_sess_t *self,
                        const snap_t *listed, int size)
{
    json_t *m = json_object();
    json_object_set_new(m, "match_id", json_string(match_id));
    if (size) json_object_set_new(m, "size", json_integer(size));
    if (listed->n) json_object_set_new(m, "presences", presences_json(listed));
    json_object_set_new(m, "self", kz_rt_presence_json(self));
    kz_rt_reply(ws, kz_rt_envelope(cid, "match", m));
}

/* ------------------------------------------------------------------------ */
/* Membership                                                               */

/* Takes s out of m (a member) and unlinks m from the table when that leaves
 * it empty; the remaining members go to others. Drops the member's
 * reference on s; the caller still owns its index reference on m. */
static void member_remove(match_t *m, kz_rt_sess_t *s, snap_t *others)
{
    size_t b = table_bucket(m->id);
    pthread_mutex_t *shard = &shard_locks[b % TABLE_SHARDS];
    bool unlinked = false;
    pthread_mutex_lock(shard);
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->n; i++)
        if (m->members[i] == s) {
            memmove(&m->members[i], &m->members[i + 1], sizeof *m->members * (size_t)(m->n - i - 1));
            m->n--;
            kz_rt_sess_release(s); /* s stays alive: the caller's session holds a reference */
            break;
        }
    if (m->n == 0) {
        table_unlink(b, m);
        unlinked = true;
    }
    snap_members(m, NULL, others);
    pthread_mutex_unlock(&m->lock);
    pthread_mutex_unlock(shard);
    if (unlinked) match_release(m); /* the table's reference */
}

/* Joins s to the relayed match with uuid id (creating it when create is
 * set), replying on ws with the match shown as match_id, and telling the
 * other members. */
static void join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, const char *id, const char *match_id,
                 bool create, bool named)
{
    sess_entry_t *e = index_get(s, false);
    match_t *m = entry_find(e, id);
    snap_t listed = {0};
    if (m) {
        /* Already a member: the match as it is, self included. */
        pthread_mutex_lock(&m->lock);
        snap_members(m, NULL, &listed);
        pthread_mutex_unlock(&m->lock);
        reply_match(ws, cid, match_id, s, &listed, listed.n);
        snap_free(&listed);
        return;
    }
    if (!index_slot(s) || (e && e->n >= KZ_MATCH_MAX_PER_SESSION)) {
        kz_rt_error(ws, cid, KZ_RT_MATCH_JOIN_REJECTED, "Too many matches joined.");
        return;
    }
    size_t b = table_bucket(id);
    pthread_mutex_t *shard = &shard_locks[b % TABLE_SHARDS];
    pthread_mutex_lock(shard);
    m = table_find(b, id);
    if (!m) {
        if (!create) {
            pthread_mutex_unlock(shard);
            kz_rt_error(ws, cid, KZ_RT_MATCH_NOT_FOUND, "Match not found");
            return;
        }
        m = kz_calloc(1, sizeof *m);
        atomic_init(&m->refs, 1); /* the table's */
        memcpy(m->id, id, sizeof m->id);
        pthread_mutex_init(&m->lock, NULL);
        m->next = table[b];
        table[b] = m;
    }
    pthread_mutex_lock(&m->lock);
    if (m->n >= KZ_MATCH_MAX_MEMBERS) {
        pthread_mutex_unlock(&m->lock);
        pthread_mutex_unlock(shard);
        kz_rt_error(ws, cid, KZ_RT_MATCH_JOIN_REJECTED, "Match is full.");
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->members = kz_realloc(m->members, sizeof *m->members * (size_t)m->cap);
    }
    m->members[m->n++] = kz_rt_sess_retain(s);
    int total = m->n;
    snap_members(m, s, &listed);
    pthread_mutex_unlock(&m->lock);
    match_retain(m); /* the index's */
    pthread_mutex_unlock(shard);
    entry_add(e ? e : index_get(s, true), m);

    /* Nakama's sizes: a created match counts everyone (1 unless named), a
     * join counts the presences listed (the others). */
    reply_match(ws, cid, match_id, s, &listed, create ? (named ? total : 1) : listed.n);
    send_presence_event(&listed, id, s, true);
    snap_free(&listed);
}

/* s leaves relayed match m (in its index entry e), telling the others;
 * the entry goes when that was its last match. */
static void leave_relayed(sess_entry_t *e, match_t *m, kz_rt_sess_t *s)
{
    snap_t others;
    member_remove(m, s, &others);
    entry_remove(e, m);
    if (e->n == 0) index_drop(e);
    send_presence_event(&others, m->id, s, false);
    snap_free(&others);
    match_release(m); /* the index's */
}

/* session.single_match: before s joins the match keep (a full match id,
 * canonical: lower-case dashed uuid), it leaves every other match, relayed
 * and authoritative. */
static void single_match_leave(kz_rt_sess_t *s, const char *keep)
{
    if (!s->app->cfg->session.single_match) return;
    kz_am_leave_others(s, keep);
    sess_entry_t *e = index_get(s, false);
    for (int i = e ? e->n - 1 : -1; i >= 0; i--) {
        char mid[40];
        snprintf(mid, sizeof mid, "%s.", e->m[i]->id);
        if (strcmp(mid, keep) == 0) continue;
        bool last = e->n == 1;
        leave_relayed(e, e->m[i], s);
        if (last) break; /* the entry is gone */
    }
}

/* ------------------------------------------------------------------------ */
/* Handlers                                                                 */

void kz_rt_match_create(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t fields[] = {{"name", "name", KZ_RT_F_STRING}};
    json_t *v[1];
    if (!kz_rt_fields_read(msg, fields, 1, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    const char *name = v[0] ? json_string_value(v[0]) : "";
    char id[37], match_id[40];
    if (*name)
        kz_match_uuid_v5_dns(name, json_string_length(v[0]), id);
    else
        kz_uuid_v4(id);
    snprintf(match_id, sizeof match_id, "%s.", id);
    single_match_leave(s, match_id);
    join(ws, s, cid, id, match_id, true, *name != '\0');
}

void kz_rt_match_join(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t fields[] = {
        {"match_id", "matchId", KZ_RT_F_STRING},
        {"token", "token", KZ_RT_F_STRING},
        {"metadata", "metadata", KZ_RT_F_MAP},
    };
    json_t *v[3];
    if (!kz_rt_fields_read(msg, fields, 3, v) || (v[0] && v[1])) { /* a oneof set twice */
        kz_rt_parse_error(ws);
        return;
    }
    if (v[1]) {
        /* A matchmaker token (realtime/matchmaker.c) names a relayed match,
         * created by the first player who joins with it. */
        char tmid[64], tid[37];
        const char *tnode;
        if (!kz_mm_token_verify(json_string_value(v[1]), json_string_length(v[1]), s->app->cfg->session.encryption_key,
                                kz_now_sec(), tmid, sizeof tmid) ||
            !kz_match_id_parse(tmid, tid, &tnode) || *tnode) {
            kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid match token");
            return;
        }
        single_match_leave(s, tmid);
        join(ws, s, cid, tid, tmid, true, true);
        return;
    }
    if (!v[0]) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "No match ID or token found");
        return;
    }
    const char *match_id = json_string_value(v[0]);
    char id[37];
    const char *node;
    if (!kz_match_id_parse(match_id, id, &node)) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid match ID");
        return;
    }
    char canon[128]; /* the id as the server spells it: uuid forms differ */
    snprintf(canon, sizeof canon, "%s.%s", id, node);
    single_match_leave(s, canon);
    if (*node) { /* authoritative: realtime/authoritative.c */
        kz_am_join(ws, s, cid, match_id, v[2]);
        return;
    }
    join(ws, s, cid, id, match_id, false, false);
}

void kz_rt_match_leave(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t fields[] = {{"match_id", "matchId", KZ_RT_F_STRING}};
    json_t *v[1];
    if (!kz_rt_fields_read(msg, fields, 1, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    char id[37];
    const char *node;
    if (!kz_match_id_parse(v[0] ? json_string_value(v[0]) : "", id, &node)) {
        kz_rt_error(ws, cid, KZ_RT_BAD_INPUT, "Invalid match ID");
        return;
    }
    if (*node) kz_am_leave(s, json_string_value(v[0]));
    sess_entry_t *e = index_get(s, false);
    match_t *m = *node ? NULL : entry_find(e, id);
    if (m) leave_relayed(e, m, s);
    /* Leaving is always acknowledged, member or not. */
    kz_rt_reply(ws, kz_rt_envelope(cid, NULL, NULL));
}

void kz_rt_match_data_send(kz_ws_t *ws, kz_rt_sess_t *s, const char *cid, json_t *msg)
{
    static const kz_rt_field_t fields[] = {
        {"match_id", "matchId", KZ_RT_F_STRING}, {"op_code", "opCode", KZ_RT_F_INT64}, {"data", "data", KZ_RT_F_STRING},
        {"presences", "presences", KZ_RT_F_ARRAY}, {"reliable", "reliable", KZ_RT_F_BOOL},
    };
    static const kz_rt_field_t presence_fields[] = {
        {"user_id", "userId", KZ_RT_F_STRING},         {"session_id", "sessionId", KZ_RT_F_STRING},
        {"username", "username", KZ_RT_F_STRING},      {"persistence", "persistence", KZ_RT_F_BOOL},
        {"status", "status", KZ_RT_F_STRING},
    };
    json_t *v[5];
    if (!kz_rt_fields_read(msg, fields, 5, v)) {
        kz_rt_parse_error(ws);
        return;
    }
    /* The whole message parses first (bytes, targets), as protojson does. */
    int64_t op_code = 0;
    if (v[1]) kz_rt_int64(v[1], &op_code);
    size_t dlen = 0;
    unsigned char *data = NULL;
    if (v[2] && !(data = kz_pbjson_b64_decode(json_string_value(v[2]), json_string_length(v[2]), &dlen))) {
        kz_rt_parse_error(ws);
        return;
    }
    size_t ntargets = v[3] ? json_array_size(v[3]) : 0;
    char(*targets)[37] = NULL;
    bool targets_ok = true;
    if (ntargets) targets = kz_malloc(sizeof *targets * ntargets);
    for (size_t i = 0; i < ntargets; i++) {
        json_t *p = json_array_get(v[3], i), *pv[5];
        if (!json_is_object(p) || !kz_rt_fields_read(p, presence_fields, 5, pv)) {
            kz_free(targets);
            kz_free(data);
            kz_rt_parse_error(ws);
            return;
        }
        /* A target with a bad user or session id drops the message (Nakama). */
        char uid[37];
        if (!pv[0] || !pv[1] || !kz_match_uuid_parse(json_string_value(pv[0]), json_string_length(pv[0]), uid) ||
            !kz_match_uuid_parse(json_string_value(pv[1]), json_string_length(pv[1]), targets[i]))
            targets_ok = false;
    }
    const char *match_id = v[0] ? json_string_value(v[0]) : "";
    char id[37];
    const char *node;
    if (!kz_match_id_parse(match_id, id, &node)) {
        kz_rt_error(ws, NULL, KZ_RT_BAD_INPUT, "Invalid match ID");
        goto out;
    }
    if (*node) { /* authoritative: into the match's input queue */
        kz_am_data(s, match_id, op_code, data, dlen, v[4] && json_is_true(v[4]));
        goto out;
    }
    /* Not a member: silently ignored. */
    match_t *m = !targets_ok ? NULL : entry_find(index_get(s, false), id);
    if (!m) goto out;

    /* Recipients: everyone else, or exactly the listed members (the sender
     * too when it lists itself). */
    snap_t to = {0};
    match_retain(m);
    pthread_mutex_lock(&m->lock);
    if (!ntargets) {
        snap_members(m, s, &to);
    } else {
        to.s = kz_malloc(sizeof *to.s * (size_t)(m->n ? m->n : 1));
        for (int i = 0; i < m->n; i++)
            for (size_t j = 0; j < ntargets; j++)
                if (strcmp(m->members[i]->id, targets[j]) == 0) {
                    to.s[to.n++] = kz_rt_sess_retain(m->members[i]);
                    break;
                }
    }
    pthread_mutex_unlock(&m->lock);
    match_release(m);
    if (to.n) {
        json_t *md = json_object();
        json_object_set_new(md, "match_id", json_string(match_id));
        json_object_set_new(md, "presence", kz_rt_presence_json(s));
        if (op_code) {
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)op_code);
            json_object_set_new(md, "op_code", json_string(num));
        }
        if (dlen) {
            char *b64 = kz_pbjson_b64_encode(data, dlen);
            json_object_set_new(md, "data", json_string(b64));
            kz_free(b64);
        }
        if (v[4] && json_is_true(v[4])) json_object_set_new(md, "reliable", json_true());
        kz_rt_out_t *f = kz_rt_out(kz_rt_envelope(NULL, "match_data", md));
        kz_rt_send_many(to.s, to.n, f);
        kz_rt_out_free(f);
    }
    snap_free(&to);
out:
    kz_free(targets);
    kz_free(data);
}

static json_t *relayed_list(int limit, int min_size, int max_size)
{
    json_t *list = json_array();
    for (size_t b = 0; b < TABLE_BUCKETS && (int)json_array_size(list) < limit; b++) {
        pthread_mutex_t *shard = &shard_locks[b % TABLE_SHARDS];
        pthread_mutex_lock(shard);
        for (match_t *m = table[b]; m && (int)json_array_size(list) < limit; m = m->next) {
            pthread_mutex_lock(&m->lock);
            int size = m->n;
            pthread_mutex_unlock(&m->lock);
            if ((min_size >= 0 && size < min_size) || (max_size >= 0 && size > max_size)) continue;
            char mid[40];
            snprintf(mid, sizeof mid, "%s.", m->id);
            json_array_append_new(list, json_pack("{s:s,s:b,s:i}", "match_id", mid, "authoritative", 0, "size", size));
        }
        pthread_mutex_unlock(shard);
    }
    return list;
}

json_t *kz_match_list(const kz_am_filter_t *f, char *err, size_t errlen)
{
    json_t *list = kz_am_list(f, err, errlen);
    int room = list ? f->limit - (int)json_array_size(list) : 0;
    bool no_filter = (!f->label || !*f->label) && (!f->query || !*f->query);
    if (room > 0 && f->authoritative != 1 && no_filter) {
        json_t *relayed = relayed_list(room, f->min_size, f->max_size);
        json_array_extend(list, relayed);
        json_decref(relayed);
    }
    return list;
}

/* On disconnect: leave every match, telling the others. */
static void on_session_close(kz_rt_sess_t *s)
{
    kz_am_session_closed(s);
    sess_entry_t *e = index_get(s, false);
    if (!e) return;
    for (int i = 0; i < e->n; i++) {
        match_t *m = e->m[i];
        snap_t others;
        member_remove(m, s, &others);
        send_presence_event(&others, m->id, s, false);
        snap_free(&others);
        match_release(m); /* the index's */
    }
    index_drop(e);
}

void kz_rt_match_init(void)
{
    for (int i = 0; i < TABLE_SHARDS; i++) pthread_mutex_init(&shard_locks[i], NULL);
    kz_rt_add_close_hook(on_session_close);
}
