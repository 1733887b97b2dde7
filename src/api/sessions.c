/* Revoked sessions: see api/sessions.h. Two small chained hash maps under
 * one read-write lock: tid -> expiry, and user id -> (cutoff, expiry). */
#include "api/sessions.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/account.h"

typedef struct entry {
    char key[37];
    int64_t cutoff; /* user map only: a v7 stamp (kz_uuid_v7_stamp), not ms */
    int64_t expire_ms;
    struct entry *next;
} entry_t;

typedef struct map {
    entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t prune_at; /* count at which expired entries are swept */
} map_t;

struct kz_sessions {
    pthread_rwlock_t lock;
    map_t tokens;
    map_t users;
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void map_init(map_t *m)
{
    m->nbuckets = 1024;
    m->buckets = kz_calloc(m->nbuckets, sizeof *m->buckets);
    m->count = 0;
    m->prune_at = 4096;
}

static void map_free(map_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (entry_t *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            kz_free(e);
        }
    kz_free(m->buckets);
}

static entry_t *map_find(const map_t *m, const char *key)
{
    for (entry_t *e = m->buckets[hash_key(key) & (m->nbuckets - 1)]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e;
    return NULL;
}

/* Drops expired entries; grows the table when it stays full. */
static void map_prune(map_t *m, int64_t now_ms)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry_t **pp = &m->buckets[i];
        while (*pp) {
            entry_t *e = *pp;
            if (e->expire_ms <= now_ms) {
                *pp = e->next;
                kz_free(e);
                m->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    if (m->count * 2 > m->nbuckets) {
        size_t nb = m->nbuckets * 4;
        entry_t **b = kz_calloc(nb, sizeof *b);
        for (size_t i = 0; i < m->nbuckets; i++)
            for (entry_t *e = m->buckets[i], *n; e; e = n) {
                n = e->next;
                size_t j = hash_key(e->key) & (nb - 1);
                e->next = b[j];
                b[j] = e;
            }
        kz_free(m->buckets);
        m->buckets = b;
        m->nbuckets = nb;
    }
    m->prune_at = m->count * 2 > 4096 ? m->count * 2 : 4096;
}

static void map_put(map_t *m, const char *key, int64_t cutoff, int64_t expire_ms)
{
    if (strlen(key) > 36) return;
    entry_t *e = map_find(m, key);
    if (!e) {
        if (m->count >= m->prune_at) map_prune(m, kz_now_ms());
        e = kz_calloc(1, sizeof *e);
        strcpy(e->key, key);
        size_t i = hash_key(key) & (m->nbuckets - 1);
        e->next = m->buckets[i];
        m->buckets[i] = e;
        m->count++;
    }
    if (cutoff > e->cutoff) e->cutoff = cutoff;
    if (expire_ms > e->expire_ms) e->expire_ms = expire_ms;
}

static _Atomic(kz_sessions_t *) global;

void kz_sessions_set_global(kz_sessions_t *s)
{
    atomic_store(&global, s);
}

kz_sessions_t *kz_sessions_get_global(void)
{
    return atomic_load(&global);
}

kz_sessions_t *kz_sessions_create(void)
{
    kz_sessions_t *s = kz_calloc(1, sizeof *s);
    /* Lookups run on every request; a revocation must not wait behind an
     * endless stream of them, so writers go first. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    map_init(&s->tokens);
    map_init(&s->users);
    return s;
}

void kz_sessions_destroy(kz_sessions_t *s)
{
    if (!s) return;
    kz_sessions_t *self = s;
    atomic_compare_exchange_strong(&global, &self, NULL);
    map_free(&s->tokens);
    map_free(&s->users);
    pthread_rwlock_destroy(&s->lock);
    kz_free(s);
}

static void load_one(void *arg, const char *token_id, const char *user_id, int64_t cutoff,
                     int64_t expire_ms)
{
    kz_sessions_t *s = arg;
    if (token_id)
        map_put(&s->tokens, token_id, 0, expire_ms);
    else if (user_id)
        map_put(&s->users, user_id, cutoff, expire_ms);
}

int kz_sessions_load(kz_sessions_t *s, kz_db_t *db)
{
    pthread_rwlock_wrlock(&s->lock);
    int rc = kz_store_revocations_load(db, kz_now_ms(), load_one, s);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

bool kz_sessions_revoked(kz_sessions_t *s, const char *tid, const char *uid)
{
    bool revoked = false;
    pthread_rwlock_rdlock(&s->lock);
    if (s->tokens.count && map_find(&s->tokens, tid)) revoked = true;
    if (!revoked && s->users.count) {
        entry_t *e = map_find(&s->users, uid);
        if (e) {
            int64_t issued = kz_uuid_v7_stamp(tid, strlen(tid));
            revoked = issued < e->cutoff;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return revoked;
}

int kz_sessions_revoke(kz_sessions_t *s, kz_db_t *db, const char *tid, const char *uid,
                       int64_t expire_ms)
{
    int rc = kz_store_revoke_token(db, tid, uid, expire_ms);
    if (rc != KZ_DB_OK) return rc;
    pthread_rwlock_wrlock(&s->lock);
    map_put(&s->tokens, tid, 0, expire_ms);
    pthread_rwlock_unlock(&s->lock);
    return KZ_DB_OK;
}

int kz_sessions_revoke_user(kz_sessions_t *s, kz_db_t *db, const char *uid, int64_t expire_ms)
{
    /* Tokens minted before now are refused, those minted after are kept:
     * token ids carry their issue time to 1/4096 ms, so a sign-in in the
     * same millisecond falls on the right side of the cutoff. */
    int64_t cutoff = kz_uuid_v7_stamp_at(kz_now_ns());
    int rc = kz_store_revoke_user(db, uid, cutoff, expire_ms);
    if (rc != KZ_DB_OK) return rc;
    pthread_rwlock_wrlock(&s->lock);
    map_put(&s->users, uid, cutoff, expire_ms);
    pthread_rwlock_unlock(&s->lock);
    return KZ_DB_OK;
}

int kz_sessions_count(kz_sessions_t *s)
{
    pthread_rwlock_rdlock(&s->lock);
    int n = (int)(s->tokens.count + s->users.count);
    pthread_rwlock_unlock(&s->lock);
    return n;
}
