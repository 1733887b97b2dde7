/* Session revocation cache tests (api/sessions.h): per-token revocation,
 * per-user cutoffs, persistence across a restart (a fresh cache loaded from
 * the same database), expiry, counting, growth under many entries,
 * lookups racing a writer, and a writer that must not starve behind
 * lookups. The cache persists through the store, so every
 * test runs on SQLite and on PostgreSQL (see dbfixture.h). */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>

#include "api/sessions.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "dbfixture.h"
#include "store/account.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"

#define HOUR_MS INT64_C(3600000)

/* A token id minted at ms, as the server mints them (kz_uuid_v7_ns; the
 * sub-millisecond bits are zero). */
static void tid_at(char out[37], int64_t ms)
{
    kz_uuid_v7_ns(out, ms * 1000000);
    cr_assert_eq(kz_uuid_v7_ms(out, strlen(out)), ms, "kz_uuid_v7_ns round trip");
    cr_assert_eq(kz_uuid_v7_stamp(out, strlen(out)), ms << 12, "kz_uuid_v7_ns stamp");
}

/* A token id whose v7 stamp (ms << 12 | 1/4096 ms) is exactly stamp. */
static void tid_at_stamp(char out[37], int64_t stamp)
{
    int64_t ms = stamp >> 12, frac = stamp & 0xfff;
    int64_t ns = ms * 1000000 + (frac * 1000000 + 4095) / 4096; /* round up into the tick */
    kz_uuid_v7_ns(out, ns);
    cr_assert_eq(kz_uuid_v7_stamp(out, strlen(out)), stamp, "stamp %lld -> %s", (long long)stamp, out);
}

/* The cutoff persisted for uid: a v7 stamp, not milliseconds. */
static int64_t stored_cutoff(kz_db_t *db, const char *uid)
{
    kz_dbval_t p[] = {KZ_DBTEXT(uid)};
    return dbfx_query_int(db, "SELECT cutoff_time FROM session_cutoff WHERE user_id = $1", p, 1);
}

#define REVOKED(s, tid, uid)                                                                       \
    cr_assert(kz_sessions_revoked((s), (tid), (uid)), "[%s] %s of %s should be revoked", dbfx.label, (tid), (uid))
#define ACCEPTED(s, tid, uid)                                                                      \
    cr_assert(!kz_sessions_revoked((s), (tid), (uid)), "[%s] %s of %s should not be revoked", dbfx.label, (tid), \
              (uid))
#define COUNT(s, want)                                                                             \
    do {                                                                                           \
        int n_ = kz_sessions_count(s);                                                             \
        cr_assert_eq(n_, (want), "[%s] count %d, want %d", dbfx.label, n_, (int)(want));           \
    } while (0)

/* ---- One token ------------------------------------------------------------ */

KZ_DB_TEST(sessions, revoke_one_token)
{
    kz_sessions_t *s = kz_sessions_create();
    int64_t now = kz_now_ms();
    char t1[37], t2[37];
    tid_at(t1, now - 10);
    tid_at(t2, now - 10);
    cr_assert_str_neq(t1, t2);
    COUNT(s, 0);
    ACCEPTED(s, t1, U1);

    DB_OK(db, kz_sessions_revoke(s, db, t1, U1, now + HOUR_MS));
    REVOKED(s, t1, U1);
    ACCEPTED(s, t2, U1);
    COUNT(s, 1);
    /* No user cutoff was recorded: another token of the same user, minted
     * earlier, is fine. */
    char old[37];
    tid_at(old, now - HOUR_MS);
    ACCEPTED(s, old, U1);

    /* Persisted with its user and expiry. */
    kz_dbval_t p[] = {KZ_DBTEXT(t1)};
    cr_assert_eq(dbfx_query_int(db, "SELECT expire_time FROM session_revocation WHERE token_id = $1", p, 1),
                 now + HOUR_MS);
    cr_assert_eq(dbfx_count(db, "session_revocation", "user_id = '" U1 "'", NULL, 0), 1);

    /* Revoking it again is harmless. */
    DB_OK(db, kz_sessions_revoke(s, db, t1, U1, now + 2 * HOUR_MS));
    COUNT(s, 1);
    DB_OK(db, kz_sessions_revoke(s, db, t2, U1, now + HOUR_MS));
    REVOKED(s, t2, U1);
    COUNT(s, 2);
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), 2);
    kz_sessions_destroy(s);
}

/* ---- User cutoff ------------------------------------------------------------ */

KZ_DB_TEST(sessions, revoke_user_cutoff)
{
    kz_sessions_t *s = kz_sessions_create();
    int64_t before = kz_now_ms();
    DB_OK(db, kz_sessions_revoke_user(s, db, U1, before + HOUR_MS));
    int64_t after = kz_now_ms();
    COUNT(s, 1);
    int64_t cutoff = stored_cutoff(db, U1);
    int64_t cutoff_ms = cutoff >> 12;
    cr_assert(cutoff_ms >= before && cutoff_ms <= after, "[%s] cutoff %lld (ms %lld) not in [%lld, %lld]",
              dbfx.label, (long long)cutoff, (long long)cutoff_ms, (long long)before, (long long)after);

    char t[37];
    /* Minted before the cutoff: refused. */
    tid_at(t, cutoff_ms - 60000);
    REVOKED(s, t, U1);
    tid_at_stamp(t, cutoff - 4096); /* one millisecond before */
    REVOKED(s, t, U1);
    tid_at_stamp(t, cutoff - 1); /* 1/4096 ms before */
    REVOKED(s, t, U1);
    /* Minted at the cutoff or later: accepted. */
    tid_at_stamp(t, cutoff);
    ACCEPTED(s, t, U1);
    tid_at_stamp(t, cutoff + 1);
    ACCEPTED(s, t, U1);
    tid_at(t, after + 1);
    ACCEPTED(s, t, U1);
    tid_at(t, cutoff_ms + 60000);
    ACCEPTED(s, t, U1);
    /* Plain kz_uuid_v7 ids (random sub-millisecond bits) a second away. */
    kz_uuid_v7(t, cutoff_ms - 1000);
    REVOKED(s, t, U1);
    kz_uuid_v7(t, cutoff_ms + 1000);
    ACCEPTED(s, t, U1);
    /* Other users are not affected. */
    tid_at(t, cutoff_ms - 60000);
    ACCEPTED(s, t, U2);
    /* A token id that is not a v7 UUID carries no issue time: refused for a
     * user with a cutoff, and accepted for the others. */
    char v4[37];
    kz_uuid_v4(v4);
    REVOKED(s, v4, U1);
    ACCEPTED(s, v4, U2);
    kz_sessions_destroy(s);
}

/* The server mints token ids with kz_uuid_v7_ns(kz_now_ns()): a sign-in
 * right after a logout-all, even within the same millisecond, is accepted,
 * and one a millisecond before it is refused. */
KZ_DB_TEST(sessions, sign_in_right_after_revoke_user)
{
    kz_sessions_t *s = kz_sessions_create();
    char before[37], after[37];
    for (int i = 0; i < 200; i++) {
        kz_uuid_v7_ns(before, kz_now_ns());
        nanosleep(&(struct timespec){.tv_nsec = 1100000}, NULL);
        DB_OK(db, kz_sessions_revoke_user(s, db, U1, kz_now_ms() + HOUR_MS));
        kz_uuid_v7_ns(after, kz_now_ns());
        REVOKED(s, before, U1);
        cr_assert(!kz_sessions_revoked(s, after, U1), "[%s] round %d: token %s minted right after the cutoff %lld refused",
                  dbfx.label, i, after, (long long)stored_cutoff(db, U1));
    }
    COUNT(s, 1);
    kz_sessions_destroy(s);
}

KZ_DB_TEST(sessions, revoke_user_again_moves_cutoff)
{
    kz_sessions_t *s = kz_sessions_create();
    DB_OK(db, kz_sessions_revoke_user(s, db, U1, kz_now_ms() + HOUR_MS));
    int64_t c1 = stored_cutoff(db, U1);
    char mid[37];
    tid_at(mid, (c1 >> 12) + 5000); /* signed in 5 s after the first logout */
    ACCEPTED(s, mid, U1);

    kz_clock_set_offset_ms(10000); /* 10 s later */
    DB_OK(db, kz_sessions_revoke_user(s, db, U1, kz_now_ms() + HOUR_MS));
    int64_t c2 = stored_cutoff(db, U1);
    cr_assert_geq(c2, c1 + (10000 << 12), "[%s] cutoff %lld after %lld", dbfx.label, (long long)c2, (long long)c1);
    REVOKED(s, mid, U1);
    COUNT(s, 1);
    cr_assert_eq(dbfx_count(db, "session_cutoff", NULL, NULL, 0), 1);

    /* A restarted cache agrees. */
    kz_sessions_t *s2 = kz_sessions_create();
    DB_OK(db, kz_sessions_load(s2, db));
    REVOKED(s2, mid, U1);
    char t[37];
    tid_at_stamp(t, c2);
    ACCEPTED(s2, t, U1);
    tid_at_stamp(t, c2 - 1);
    REVOKED(s2, t, U1);
    COUNT(s2, 1);
    kz_sessions_destroy(s2);
    kz_sessions_destroy(s);
}

/* ---- Restart ---------------------------------------------------------------- */

KZ_DB_TEST(sessions, revocations_survive_restart)
{
    int64_t now = kz_now_ms();
    char t1[37], t2[37], t3[37];
    tid_at(t1, now - 1000);
    tid_at(t2, now - 1000);
    tid_at(t3, now - 1000);

    kz_sessions_t *s1 = kz_sessions_create();
    DB_OK(db, kz_sessions_revoke(s1, db, t1, U1, now + HOUR_MS));
    DB_OK(db, kz_sessions_revoke(s1, db, t3, U3, now + HOUR_MS));
    DB_OK(db, kz_sessions_revoke_user(s1, db, U2, now + HOUR_MS));
    int64_t cutoff = stored_cutoff(db, U2);
    COUNT(s1, 3);
    kz_sessions_destroy(s1);

    /* A new process: new connection, new cache. */
    kz_db_t *db2 = dbfx_open_again();
    kz_sessions_t *s2 = kz_sessions_create();
    COUNT(s2, 0);
    DB_OK(db2, kz_sessions_load(s2, db2));
    COUNT(s2, 3);
    REVOKED(s2, t1, U1);
    ACCEPTED(s2, t2, U1);
    REVOKED(s2, t3, U3);
    char t[37];
    tid_at_stamp(t, cutoff - 1);
    REVOKED(s2, t, U2);
    tid_at_stamp(t, cutoff);
    ACCEPTED(s2, t, U2);
    tid_at_stamp(t, cutoff - 1);
    ACCEPTED(s2, t, U1);

    /* Loading twice does not duplicate entries. */
    DB_OK(db2, kz_sessions_load(s2, db2));
    COUNT(s2, 3);
    kz_sessions_destroy(s2);
    kz_db_close(db2);
}

KZ_DB_TEST(sessions, expired_entries_not_loaded)
{
    int64_t now = kz_now_ms();
    char ta[37], tb[37], tc[37], old[37];
    tid_at(ta, now - 100);
    tid_at(tb, now - 100);
    tid_at(tc, now - 100);
    tid_at(old, now - 100);

    kz_sessions_t *s = kz_sessions_create();
    DB_OK(db, kz_sessions_revoke(s, db, ta, U1, now + 2000));    /* expires in 2 s */
    DB_OK(db, kz_sessions_revoke(s, db, tb, U1, now + HOUR_MS)); /* live */
    DB_OK(db, kz_sessions_revoke(s, db, tc, U1, now - 1));       /* already expired */
    DB_OK(db, kz_sessions_revoke_user(s, db, U2, now + 2000));
    DB_OK(db, kz_sessions_revoke_user(s, db, U3, now + HOUR_MS));
    COUNT(s, 5);
    kz_sessions_destroy(s);

    s = kz_sessions_create();
    DB_OK(db, kz_sessions_load(s, db));
    COUNT(s, 4);
    ACCEPTED(s, tc, U1);
    REVOKED(s, ta, U1);
    REVOKED(s, tb, U1);
    REVOKED(s, old, U2);
    REVOKED(s, old, U3);
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), 2, "[%s] expired row kept", dbfx.label);
    kz_sessions_destroy(s);

    /* Restart 5 s later: the short-lived entries are gone. */
    kz_clock_set_offset_ms(5000);
    s = kz_sessions_create();
    DB_OK(db, kz_sessions_load(s, db));
    COUNT(s, 2);
    ACCEPTED(s, ta, U1);
    REVOKED(s, tb, U1);
    ACCEPTED(s, old, U2);
    REVOKED(s, old, U3);
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), 1);
    cr_assert_eq(dbfx_count(db, "session_cutoff", NULL, NULL, 0), 1);
    kz_sessions_destroy(s);
}

KZ_DB_TEST(sessions, count_tokens_and_users)
{
    kz_sessions_t *s = kz_sessions_create();
    int64_t now = kz_now_ms();
    char t[4][37];
    for (int i = 0; i < 4; i++) tid_at(t[i], now - i);
    COUNT(s, 0);
    DB_OK(db, kz_sessions_revoke(s, db, t[0], U1, now + HOUR_MS));
    DB_OK(db, kz_sessions_revoke(s, db, t[1], U1, now + HOUR_MS));
    DB_OK(db, kz_sessions_revoke(s, db, t[2], U2, now + HOUR_MS));
    COUNT(s, 3);
    DB_OK(db, kz_sessions_revoke_user(s, db, U1, now + HOUR_MS));
    DB_OK(db, kz_sessions_revoke_user(s, db, U2, now + HOUR_MS));
    COUNT(s, 5);
    /* Repeats do not add entries. */
    DB_OK(db, kz_sessions_revoke(s, db, t[0], U1, now + HOUR_MS));
    DB_OK(db, kz_sessions_revoke_user(s, db, U1, now + HOUR_MS));
    COUNT(s, 5);
    /* A tid can equal a user id string: the two maps are separate. */
    DB_OK(db, kz_sessions_revoke(s, db, U3, U3, now + HOUR_MS));
    COUNT(s, 6);
    kz_sessions_destroy(s);
}

/* ---- Many entries ----------------------------------------------------------- */

#define MANY 20000
#define MANY_USERS 5000

KZ_DB_TEST(sessions, many_revocations)
{
    int64_t now = kz_now_ms();
    char(*tids)[37] = kz_malloc(sizeof *tids * MANY);
    char(*uids)[37] = kz_malloc(sizeof *uids * MANY_USERS);
    for (int i = 0; i < MANY; i++) tid_at(tids[i], now - HOUR_MS + i);
    for (int i = 0; i < MANY_USERS; i++) kz_uuid_v4(uids[i]);

    kz_sessions_t *s = kz_sessions_create();
    /* One transaction keeps 25000 writes quick on SQLite (synchronous=FULL). */
    DB_OK(db, kz_db_begin(db));
    /* Even: live; odd: already expired, to be pruned as the map grows. */
    for (int i = 0; i < MANY; i++)
        DB_OK(db, kz_sessions_revoke(s, db, tids[i], U1, i % 2 ? now - 1000 : now + HOUR_MS));
    for (int i = 0; i < MANY_USERS; i++) DB_OK(db, kz_sessions_revoke_user(s, db, uids[i], now + HOUR_MS));
    DB_OK(db, kz_db_commit(db));

    int n = kz_sessions_count(s);
    cr_assert(n >= MANY / 2 + MANY_USERS, "[%s] count %d lost live entries", dbfx.label, n);
    cr_assert(n < MANY + MANY_USERS, "[%s] count %d: expired entries never pruned", dbfx.label, n);
    char t[37];
    for (int i = 0; i < MANY; i += 2) REVOKED(s, tids[i], U2);
    for (int i = 0; i < MANY_USERS; i++) {
        tid_at(t, now - 5000);
        REVOKED(s, t, uids[i]);
    }
    for (int i = 0; i < 2000; i++) {
        tid_at(t, now - 5000 - i); /* fresh tids, user without cutoff */
        ACCEPTED(s, t, U2);
    }
    tid_at(t, kz_now_ms() + 1);
    ACCEPTED(s, t, uids[0]);
    kz_sessions_destroy(s);

    /* A restart loads exactly the live ones. */
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), MANY);
    s = kz_sessions_create();
    DB_OK(db, kz_sessions_load(s, db));
    COUNT(s, MANY / 2 + MANY_USERS);
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), MANY / 2);
    for (int i = 0; i < MANY; i++) {
        if (i % 2)
            ACCEPTED(s, tids[i], U2);
        else
            REVOKED(s, tids[i], U2);
    }
    for (int i = 0; i < MANY_USERS; i++) {
        tid_at(t, now - 5000);
        REVOKED(s, t, uids[i]);
    }
    kz_sessions_destroy(s);
    kz_free(tids);
    kz_free(uids);
}

/* ---- Readers racing a writer ------------------------------------------------- */

#define PRE 2000
#define WRITES 12000
#define READERS 4

struct race {
    kz_sessions_t *s;
    char (*revoked)[37]; /* PRE tids revoked before the readers start */
    char (*clean)[37];   /* PRE tids never revoked */
    bool pause;          /* readers rest between short bursts */
    atomic_bool stop;
    atomic_long wrong;
    atomic_long lookups;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    long n = 0, wrong = 0;
    int i = 0;
    while (!atomic_load(&r->stop) || n == 0) {
        for (int k = 0; k < 64; k++, i = (i + 1) % PRE) {
            if (!kz_sessions_revoked(r->s, r->revoked[i], U1)) wrong++;
            if (kz_sessions_revoked(r->s, r->clean[i], U1)) wrong++;
            n += 2;
        }
        if (r->pause) nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
    }
    atomic_fetch_add(&r->wrong, wrong);
    atomic_fetch_add(&r->lookups, n);
    return NULL;
}

static void race_init(struct race *r, kz_db_t *db, int64_t now, bool pause)
{
    memset(r, 0, sizeof *r);
    r->s = kz_sessions_create();
    r->pause = pause;
    r->revoked = kz_malloc(sizeof *r->revoked * PRE);
    r->clean = kz_malloc(sizeof *r->clean * PRE);
    atomic_init(&r->stop, false);
    atomic_init(&r->wrong, 0);
    atomic_init(&r->lookups, 0);
    DB_OK(db, kz_db_begin(db));
    for (int i = 0; i < PRE; i++) {
        tid_at(r->revoked[i], now - 1000);
        tid_at(r->clean[i], now - 1000);
        DB_OK(db, kz_sessions_revoke(r->s, db, r->revoked[i], U1, now + HOUR_MS));
    }
    DB_OK(db, kz_db_commit(db));
}

static void race_free(struct race *r)
{
    kz_sessions_destroy(r->s);
    kz_free(r->revoked);
    kz_free(r->clean);
}

static void race_check_and_free(struct race *r)
{
    cr_assert_eq(atomic_load(&r->wrong), 0, "[%s] %ld wrong answers in %ld lookups", dbfx.label,
                 (long)atomic_load(&r->wrong), (long)atomic_load(&r->lookups));
    cr_assert_gt(atomic_load(&r->lookups), 0);
    for (int i = 0; i < PRE; i++) {
        REVOKED(r->s, r->revoked[i], U1);
        ACCEPTED(r->s, r->clean[i], U1);
    }
    race_free(r);
}

/* Lookups stay right while a writer grows and rehashes the maps. */
KZ_DB_TEST(sessions, lookups_during_growth)
{
    int64_t now = kz_now_ms();
    struct race r;
    race_init(&r, db, now, true);
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) cr_assert_eq(pthread_create(&th[i], NULL, reader, &r), 0);
    char t[37];
    int rc = KZ_DB_OK, at = -1;
    DB_OK(db, kz_db_begin(db));
    for (int i = 0; i < WRITES && rc == KZ_DB_OK; i++) {
        tid_at(t, now - 2000);
        rc = kz_sessions_revoke(r.s, db, t, U2, i % 3 ? now + HOUR_MS : now - 1);
        at = i;
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < READERS; i++) pthread_join(th[i], NULL);
    if (rc != KZ_DB_OK) race_free(&r);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] revoke %d returned %d: %s", dbfx.label, at, rc, kz_db_errmsg(db));
    DB_OK(db, kz_db_commit(db));
    race_check_and_free(&r);
}

struct writer_job {
    struct race *r;
    kz_db_t *db;
    int64_t now;
    atomic_int done; /* revocations completed */
    atomic_int rc;
};

#define STARVE_WRITES 100
#define STARVE_WAIT_S 5

static void *writer(void *arg)
{
    struct writer_job *w = arg;
    char t[37];
    /* One transaction: the store's speed is not what is measured. */
    int rc = kz_db_begin(w->db);
    for (int i = 0; i < STARVE_WRITES && rc == KZ_DB_OK; i++) {
        kz_uuid_v7(t, w->now - 3000);
        rc = kz_sessions_revoke(w->r->s, w->db, t, U3, w->now + HOUR_MS);
        if (rc == KZ_DB_OK) atomic_fetch_add(&w->done, 1);
    }
    if (rc == KZ_DB_OK) rc = kz_db_commit(w->db);
    if (rc != KZ_DB_OK) kz_db_rollback(w->db);
    atomic_store(&w->rc, rc);
    return NULL;
}

/* Lookups run on every I/O thread for every authenticated request; a
 * logout must still get its write lock while they keep coming. Readers spin
 * without pause here; the writer must finish 100 revocations within 5 s. */
KZ_DB_TEST(sessions, revoke_not_starved_by_readers)
{
    int64_t now = kz_now_ms();
    struct race r;
    race_init(&r, db, now, false);
    pthread_t th[READERS], wt;
    for (int i = 0; i < READERS; i++) cr_assert_eq(pthread_create(&th[i], NULL, reader, &r), 0);
    nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL); /* readers get going */
    struct writer_job w = {.r = &r, .db = db, .now = now};
    atomic_init(&w.done, 0);
    atomic_init(&w.rc, KZ_DB_OK);
    cr_assert_eq(pthread_create(&wt, NULL, writer, &w), 0);
    uint64_t start = kz_mono_ns();
    while (atomic_load(&w.done) < STARVE_WRITES && atomic_load(&w.rc) == KZ_DB_OK &&
           kz_mono_ns() - start < (uint64_t)STARVE_WAIT_S * 1000000000u)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    int done = atomic_load(&w.done);
    double waited = (double)(kz_mono_ns() - start) / 1e9;
    /* Release the writer (if starved) by stopping the readers. */
    atomic_store(&r.stop, true);
    for (int i = 0; i < READERS; i++) pthread_join(th[i], NULL);
    pthread_join(wt, NULL);
    int rc = atomic_load(&w.rc);
    if (rc != KZ_DB_OK || done != STARVE_WRITES) race_free(&r); /* the asserts below end the test */
    cr_assert_eq(rc, KZ_DB_OK, "[%s] revoke returned %d: %s", dbfx.label, rc, kz_db_errmsg(db));
    cr_assert_eq(done, STARVE_WRITES,
                 "[%s] writer starved: %d of %d revocations got the write lock in %.1f s while %d "
                 "readers kept calling kz_sessions_revoked",
                 dbfx.label, done, STARVE_WRITES, waited, READERS);
    race_check_and_free(&r);
}
