/* Leaderboard and tournament store tests (store/leaderboard.h, rank/board.h)
 * on SQLite and PostgreSQL (fresh, migrated database each; see
 * dbfixture.h): definitions, every operator on both sort orders, ties,
 * cursors both ways, around-owner windows, periods, tournaments' windows,
 * sizes, attempts and joins, the rank cache after writes and at start-up,
 * concurrent writers, and the scheduler's events. */
#include <criterion/criterion.h>

#include <pthread.h>

#include "core/cron.h"
#include "dbfixture.h"
#include "store/leaderboard.h"

#define NOW_S INT64_C(1700000000) /* 2023-11-14T22:13:20Z, a Tuesday */
#define NOW (NOW_S * 1000)
#define DAY 86400

/* Owners in ascending UUID order. */
#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"
#define U4 "44444444-4444-4444-8444-444444444444"

static char owners[30][37]; /* owner(i): ids in ascending order */

static const char *owner(int i)
{
    snprintf(owners[i], sizeof owners[i], "%08x-0000-4000-8000-%012x", (unsigned)(i + 1),
             (unsigned)(i + 1));
    return owners[i];
}

static void board(kz_db_t *db, const char *id, bool desc, int op, const char *sched, bool auth,
                  bool ranks)
{
    kz_lb_def_t d = {.id = id,
                     .authoritative = auth,
                     .descending = desc,
                     .op = op,
                     .reset_schedule = sched,
                     .enable_ranks = ranks};
    char err[200] = "";
    int rc = kz_lb_create(db, &d, NOW, NULL, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] create %s: %d %s %s", dbfx.label, id, rc, err,
                 kz_db_errmsg(db));
}

/* Writes as the server (no authoritative check) at now; returns the row. */
static kz_lb_record_t put_at(kz_db_t *db, const char *id, const char *who, int64_t s, int64_t ss,
                             int op, int64_t now)
{
    kz_lb_write_t w = {.owner_id = who, .username = "name", .score = s, .subscore = ss, .op = op};
    kz_lb_record_t r;
    DB_OK(db, kz_lb_record_write(db, id, false, false, &w, now, &r));
    return r;
}

static kz_lb_record_t put(kz_db_t *db, const char *id, const char *who, int64_t s, int64_t ss,
                          int op)
{
    return put_at(db, id, who, s, ss, op, NOW);
}

/* Checks a written record's score, subscore and num_score, then frees it. */
#define EXPECT_REC(rec, s, ss, n)                                                                  \
    do {                                                                                           \
        kz_lb_record_t r_ = (rec);                                                                 \
        cr_expect_eq(r_.score, (s), "[%s] score %lld want %lld", dbfx.label, (long long)r_.score,  \
                     (long long)(s));                                                              \
        cr_expect_eq(r_.subscore, (ss), "[%s] subscore %lld want %lld", dbfx.label,                \
                     (long long)r_.subscore, (long long)(ss));                                     \
        cr_expect_eq(r_.num_score, (n), "[%s] num_score %lld want %lld", dbfx.label,               \
                     (long long)r_.num_score, (long long)(n));                                     \
        kz_lb_record_clear(&r_);                                                                   \
    } while (0)

static void drop(kz_lb_record_t r)
{
    kz_lb_record_clear(&r);
}

static void fini(void)
{
    kz_boards_shutdown();
}

/* ---- Definitions ------------------------------------------------------------ */

KZ_DB_TEST(leaderboard, create_is_idempotent_and_checked)
{
    kz_lb_def_t d = {.id = "lb", .descending = true, .op = KZ_LB_OP_SET, .metadata = "{\"a\":1}"};
    bool created = false;
    char err[200] = "";
    DB_OK(db, kz_lb_create(db, &d, NOW, &created, err, sizeof err));
    cr_assert(created);
    /* A second create (other settings) changes nothing. */
    kz_lb_def_t d2 = {.id = "lb", .descending = false, .op = KZ_LB_OP_BEST};
    DB_OK(db, kz_lb_create(db, &d2, NOW, &created, err, sizeof err));
    cr_assert(!created);
    kz_board_t *b = kz_boards_get("lb");
    cr_assert(b && b->descending && b->op == KZ_LB_OP_SET && !b->tournament);
    cr_assert_str_eq(b->metadata, "{\"a\":1}");
    cr_assert_eq(b->create_time, NOW_S);
    kz_board_release(b);
    cr_assert_eq(dbfx_count(db, "leaderboard", NULL, NULL, 0), 1);

    /* Another process's registry starts empty: the stored row wins. */
    kz_boards_shutdown();
    DB_OK(db, kz_lb_create(db, &d2, NOW, &created, err, sizeof err));
    cr_assert(!created);
    b = kz_boards_get("lb");
    cr_assert(b && b->descending && b->op == KZ_LB_OP_SET);
    kz_board_release(b);

    /* Bad schedules and tournament rules. */
    kz_lb_def_t bad = {.id = "x", .reset_schedule = "61 * * * *"};
    cr_assert_eq(kz_lb_create(db, &bad, NOW, NULL, err, sizeof err), KZ_LB_INVALID);
    cr_assert_str_eq(err, "expects reset schedule to be a valid CRON expression");
    kz_lb_def_t t = {.id = "t", .tournament = true, .duration = 0};
    cr_assert_eq(kz_lb_create(db, &t, NOW, NULL, err, sizeof err), KZ_LB_INVALID);
    cr_assert_str_eq(err, "tournament duration must be greater than zero");
    t.duration = 10;
    t.category = 128;
    cr_assert_eq(kz_lb_create(db, &t, NOW, NULL, err, sizeof err), KZ_LB_INVALID);
    t.category = 1;
    t.start_time = NOW_S + 100;
    t.end_time = NOW_S + 50;
    cr_assert_eq(kz_lb_create(db, &t, NOW, NULL, err, sizeof err), KZ_LB_INVALID);
    cr_assert_str_eq(
        err, "endTime must be > startTime. Use 0 to indicate a tournament that never ends.");
    t.end_time = 0;
    t.max_size = -1;
    cr_assert_eq(kz_lb_create(db, &t, NOW, NULL, err, sizeof err), KZ_LB_INVALID);
    t.max_size = 0;
    t.reset_schedule = "0 0 1 1 *"; /* first reset next January */
    t.end_time = NOW_S + DAY;
    cr_assert_eq(kz_lb_create(db, &t, NOW, NULL, err, sizeof err), KZ_LB_INVALID);
    cr_assert_str_eq(err, "tournament end time cannot be before first reset");
    t.reset_schedule = NULL;
    t.id = "lb"; /* a leaderboard's id */
    cr_assert_eq(kz_lb_create(db, &t, NOW, NULL, err, sizeof err), KZ_LB_IN_USE);
    cr_assert_eq(dbfx_count(db, "leaderboard", NULL, NULL, 0), 1, "nothing bad was stored");

    /* Delete takes the records along; a second delete is fine. */
    drop(put(db, "lb", U1, 1, 0, -1));
    DB_OK(db, kz_lb_delete(db, "lb", true)); /* wrong kind: nothing */
    cr_assert_eq(dbfx_count(db, "leaderboard", NULL, NULL, 0), 1);
    DB_OK(db, kz_lb_delete(db, "lb", false));
    DB_OK(db, kz_lb_delete(db, "lb", false));
    cr_assert_eq(dbfx_count(db, "leaderboard", NULL, NULL, 0), 0);
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 0);
    cr_assert_null(kz_boards_get("lb"));
    fini();
}

/* ---- Operators ------------------------------------------------------------- */

KZ_DB_TEST(leaderboard, best_per_field_both_orders)
{
    board(db, "desc", true, KZ_LB_OP_BEST, NULL, false, true);
    board(db, "asc", false, KZ_LB_OP_BEST, NULL, false, true);
    EXPECT_REC(put(db, "desc", U1, 10, 5, -1), 10, 5, 1);
    EXPECT_REC(put(db, "desc", U1, 12, 1, -1), 12, 5, 2); /* each field on its own */
    EXPECT_REC(put(db, "desc", U1, 3, 2, -1), 12, 5, 2);  /* worse: untouched */
    EXPECT_REC(put(db, "desc", U1, 12, 5, -1), 12, 5, 2); /* equal: untouched */
    EXPECT_REC(put(db, "asc", U1, 10, 5, -1), 10, 5, 1);
    EXPECT_REC(put(db, "asc", U1, 12, 1, -1), 10, 1, 2);
    EXPECT_REC(put(db, "asc", U1, 11, 3, -1), 10, 1, 2);
    EXPECT_REC(put(db, "asc", U1, 4, 9, -1), 4, 1, 3);
    fini();
}

KZ_DB_TEST(leaderboard, set_incr_decr)
{
    board(db, "set", true, KZ_LB_OP_SET, NULL, false, true);
    board(db, "incr", false, KZ_LB_OP_INCR, NULL, false, true);
    board(db, "decr", true, KZ_LB_OP_DECR, NULL, false, true);
    EXPECT_REC(put(db, "set", U1, 10, 5, -1), 10, 5, 1);
    EXPECT_REC(put(db, "set", U1, 3, 9, -1), 3, 9, 2);
    EXPECT_REC(put(db, "set", U1, 3, 9, -1), 3, 9, 2); /* same values: no update */
    EXPECT_REC(put(db, "incr", U1, 10, 5, -1), 10, 5, 1);
    EXPECT_REC(put(db, "incr", U1, 7, -2, -1), 17, 3, 2);
    EXPECT_REC(put(db, "incr", U1, 0, 0, -1), 17, 3, 2); /* zero deltas: no update */
    /* Decrement: a first write is 0/0, later ones floor at 0. */
    EXPECT_REC(put(db, "decr", U1, 10, 5, -1), 0, 0, 1);
    EXPECT_REC(put(db, "decr", U1, 10, 5, KZ_LB_OP_SET), 10, 5, 2); /* override */
    EXPECT_REC(put(db, "decr", U1, 4, 1, -1), 6, 4, 3);
    EXPECT_REC(put(db, "decr", U1, 100, 1, -1), 0, 3, 4);
    EXPECT_REC(put(db, "decr", U1, 5, 5, -1), 0, 0, 5);
    EXPECT_REC(put(db, "decr", U1, 5, 5, -1), 0, 0, 5); /* floored already: unchanged */
    /* Overrides on every board. */
    EXPECT_REC(put(db, "set", U1, 1, 1, KZ_LB_OP_INCR), 4, 10, 3);
    EXPECT_REC(put(db, "incr", U1, 1, 1, KZ_LB_OP_BEST), 1, 1, 3); /* asc board: lower is best */
    fini();
}

KZ_DB_TEST(leaderboard, metadata_username_and_times)
{
    board(db, "lb", true, KZ_LB_OP_BEST, NULL, false, true);
    kz_lb_write_t w = {
        .owner_id = U1, .username = "alice", .score = 5, .metadata = "{\"k\":1}", .op = -1};
    kz_lb_record_t r;
    DB_OK(db, kz_lb_record_write(db, "lb", false, true, &w, NOW, &r));
    cr_assert_str_eq(r.username, "alice");
    cr_assert_str_eq(r.metadata, "{\"k\":1}");
    cr_assert_eq(r.create_time, NOW);
    cr_assert_eq(r.update_time, NOW);
    cr_assert_eq(r.expiry, 0);
    cr_assert_eq(r.max_num_score, 1000000);
    cr_assert_eq(r.rank, 1);
    kz_lb_record_clear(&r);
    /* A better score later: metadata and username follow, create_time stays. */
    w = (kz_lb_write_t){
        .owner_id = U1, .username = "alice2", .score = 6, .metadata = "{\"k\":2}", .op = -1};
    DB_OK(db, kz_lb_record_write(db, "lb", false, true, &w, NOW + 5000, &r));
    cr_assert_str_eq(r.username, "alice2");
    cr_assert_str_eq(r.metadata, "{\"k\":2}");
    cr_assert_eq(r.create_time, NOW);
    cr_assert_eq(r.update_time, NOW + 5000);
    kz_lb_record_clear(&r);
    /* No metadata, no username: both kept. A worse score changes nothing. */
    w = (kz_lb_write_t){.owner_id = U1, .score = 7, .op = -1};
    DB_OK(db, kz_lb_record_write(db, "lb", false, true, &w, NOW + 6000, &r));
    cr_assert_str_eq(r.username, "alice2");
    cr_assert_str_eq(r.metadata, "{\"k\":2}");
    kz_lb_record_clear(&r);
    w = (kz_lb_write_t){.owner_id = U1, .username = "zed", .score = 1, .metadata = "{}", .op = -1};
    DB_OK(db, kz_lb_record_write(db, "lb", false, true, &w, NOW + 7000, &r));
    cr_assert_str_eq(r.username, "alice2");
    cr_assert_eq(r.update_time, NOW + 6000);
    kz_lb_record_clear(&r);
    /* Unknown board; delete. */
    cr_assert_eq(kz_lb_record_write(db, "nope", false, true, &w, NOW, &r), KZ_LB_NOT_FOUND);
    DB_OK(db, kz_lb_record_delete(db, "lb", false, true, U1, NOW));
    DB_OK(db, kz_lb_record_delete(db, "lb", false, true, U1, NOW)); /* nothing left: fine */
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 0);
    cr_assert_eq(kz_rank_cache_count(kz_boards_ranks(), "lb", 0), 0);
    cr_assert_eq(kz_lb_record_delete(db, "nope", false, true, U1, NOW), KZ_LB_NOT_FOUND);
    fini();
}

KZ_DB_TEST(leaderboard, authoritative_boards_refuse_clients)
{
    board(db, "auth", true, KZ_LB_OP_BEST, NULL, true, true);
    kz_lb_write_t w = {.owner_id = U1, .score = 5, .op = -1};
    kz_lb_record_t r;
    cr_assert_eq(kz_lb_record_write(db, "auth", false, true, &w, NOW, &r), KZ_LB_AUTHORITATIVE);
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 0);
    DB_OK(db, kz_lb_record_write(db, "auth", false, false, &w, NOW, &r));
    kz_lb_record_clear(&r);
    cr_assert_eq(kz_lb_record_delete(db, "auth", false, true, U1, NOW), KZ_LB_AUTHORITATIVE);
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 1);
    DB_OK(db, kz_lb_record_delete(db, "auth", false, false, U1, NOW));
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 0);
    fini();
}

/* ---- Listing ---------------------------------------------------------------- */

/* Lists the whole period page by page and checks the order and ranks. */
static void check_order(kz_db_t *db, const char *id, const char *const *want, int n)
{
    kz_lb_list_t l;
    DB_OK(db, kz_lb_records_list(db, id, false, NULL, 0, 100, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, n, "[%s] %d records, want %d", dbfx.label, l.nrecords, n);
    for (int i = 0; i < n; i++) {
        cr_expect_str_eq(l.records[i].owner_id, want[i], "[%s] %s #%d", dbfx.label, id, i);
        cr_expect_eq(l.records[i].rank, i + 1);
    }
    cr_assert_null(l.next_cursor);
    cr_assert_null(l.prev_cursor);
    cr_assert_eq(l.rank_count, n);
    kz_lb_list_free(&l);
}

KZ_DB_TEST(leaderboard, ties_order_by_subscore_then_owner)
{
    board(db, "d", true, KZ_LB_OP_SET, NULL, false, true);
    board(db, "a", false, KZ_LB_OP_SET, NULL, false, true);
    const char *ids[] = {"d", "a"};
    for (int b = 0; b < 2; b++) {
        EXPECT_REC(put(db, ids[b], U2, 5, 1, -1), 5, 1, 1);
        EXPECT_REC(put(db, ids[b], U1, 5, 1, -1), 5, 1, 1);
        EXPECT_REC(put(db, ids[b], U3, 5, 2, -1), 5, 2, 1);
        EXPECT_REC(put(db, ids[b], U4, 9, 0, -1), 9, 0, 1);
    }
    const char *desc[] = {U4, U3, U2, U1};
    const char *asc[] = {U1, U2, U3, U4};
    check_order(db, "d", desc, 4);
    check_order(db, "a", asc, 4);
    /* The rank cache agrees. */
    uint8_t key[16];
    for (int i = 0; i < 4; i++) {
        kz_board_owner_key(desc[i], key);
        cr_assert_eq(kz_rank_cache_rank(kz_boards_ranks(), "d", 0, key), i + 1);
        kz_board_owner_key(asc[i], key);
        cr_assert_eq(kz_rank_cache_rank(kz_boards_ranks(), "a", 0, key), i + 1);
    }
    fini();
}

/* Pages of 10 over 25 records (desc, scores 100..124 by owner), forward
 * and back. */
KZ_DB_TEST(leaderboard, cursor_pages_both_ways)
{
    board(db, "p", true, KZ_LB_OP_BEST, NULL, false, true);
    board(db, "other", true, KZ_LB_OP_BEST, NULL, false, true);
    for (int i = 0; i < 25; i++)
        drop(put(db, "p", owner(i), 100 + i, 0, -1));
    kz_lb_list_t p1, p2, p3, back2, back1;
    DB_OK(db, kz_lb_records_list(db, "p", false, NULL, 0, 10, NULL, 0, NOW, &p1));
    cr_assert_eq(p1.nrecords, 10);
    cr_assert_eq(p1.records[0].score, 124);
    cr_assert_eq(p1.records[0].rank, 1);
    cr_assert_eq(p1.records[9].score, 115);
    cr_assert_not_null(p1.next_cursor);
    cr_assert_null(p1.prev_cursor);
    DB_OK(db, kz_lb_records_list(db, "p", false, NULL, 0, 10, p1.next_cursor, 0, NOW, &p2));
    cr_assert_eq(p2.nrecords, 10);
    cr_assert_eq(p2.records[0].score, 114);
    cr_assert_eq(p2.records[0].rank, 11);
    cr_assert_not_null(p2.prev_cursor);
    /* A record written between pages above the cursor does not shift the
     * next page: it resumes after the last record seen. */
    drop(put(db, "p", U1, 1000, 0, -1));
    DB_OK(db, kz_lb_records_list(db, "p", false, NULL, 0, 10, p2.next_cursor, 0, NOW, &p3));
    cr_assert_eq(p3.nrecords, 5);
    cr_assert_eq(p3.records[0].score, 104);
    cr_assert_eq(p3.records[0].rank, 21);
    cr_assert_eq(p3.records[4].score, 100);
    cr_assert_null(p3.next_cursor);
    cr_assert_not_null(p3.prev_cursor);
    /* Back from page 3 to page 2, and on to page 1 (which now starts with
     * the new record: going back stops at the top). */
    DB_OK(db, kz_lb_records_list(db, "p", false, NULL, 0, 10, p3.prev_cursor, 0, NOW, &back2));
    cr_assert_eq(back2.nrecords, 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_str_eq(back2.records[i].owner_id, p2.records[i].owner_id);
        cr_assert_eq(back2.records[i].rank, p2.records[i].rank);
    }
    cr_assert_not_null(back2.next_cursor);
    cr_assert_not_null(back2.prev_cursor);
    DB_OK(db, kz_lb_records_list(db, "p", false, NULL, 0, 10, back2.prev_cursor, 0, NOW, &back1));
    cr_assert_eq(back1.nrecords, 10);
    cr_assert_eq(back1.records[0].score, 124);
    cr_assert_eq(back1.records[0].rank, 1, "ranks count back from the cursor's");
    cr_assert_eq(back1.records[9].score, 115);
    cr_assert_not_null(back1.prev_cursor, "[%s] the new record sits above", dbfx.label);
    cr_assert_not_null(back1.next_cursor);
    /* Cursors belong to their board and period. */
    kz_lb_list_t bad;
    cr_assert_eq(kz_lb_records_list(db, "other", false, NULL, 0, 10, p1.next_cursor, 0, NOW, &bad),
                 KZ_LB_BAD_CURSOR);
    cr_assert_eq(kz_lb_records_list(db, "p", false, NULL, 0, 10, p1.next_cursor, 99, NOW, &bad),
                 KZ_LB_BAD_CURSOR);
    cr_assert_eq(kz_lb_records_list(db, "p", false, NULL, 0, 10, "garbage!", 0, NOW, &bad),
                 KZ_LB_BAD_CURSOR);
    cr_assert_eq(kz_lb_records_list(db, "p", false, NULL, 0, 10, "e30", 0, NOW, &bad),
                 KZ_LB_BAD_CURSOR);
    kz_lb_list_free(&p1);
    kz_lb_list_free(&p2);
    kz_lb_list_free(&p3);
    kz_lb_list_free(&back2);
    kz_lb_list_free(&back1);
    fini();
}

KZ_DB_TEST(leaderboard, ascending_pages_and_owner_records)
{
    board(db, "a", false, KZ_LB_OP_SET, NULL, false, true);
    for (int i = 0; i < 7; i++)
        drop(put(db, "a", owner(i), 50 - i, 0, -1));
    /* Lowest first: owner(6) has 44. */
    kz_lb_list_t l, n2;
    const char *who[] = {owner(0), owner(6), owner(3), "99999999-9999-4999-8999-999999999999",
                         owner(6)};
    DB_OK(db, kz_lb_records_list(db, "a", false, who, 5, 3, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 3);
    cr_assert_eq(l.records[0].score, 44);
    cr_assert_eq(l.records[2].score, 46);
    cr_assert_eq(l.nowner_records, 3, "[%s] unknown and repeated owners drop out", dbfx.label);
    cr_assert_str_eq(l.owner_records[0].owner_id, owner(6));
    cr_assert_eq(l.owner_records[0].rank, 1);
    cr_assert_str_eq(l.owner_records[1].owner_id, owner(3));
    cr_assert_eq(l.owner_records[1].rank, 4);
    cr_assert_str_eq(l.owner_records[2].owner_id, owner(0));
    cr_assert_eq(l.owner_records[2].rank, 7);
    cr_assert_eq(l.rank_count, 7);
    DB_OK(db, kz_lb_records_list(db, "a", false, NULL, 0, 3, l.next_cursor, 0, NOW, &n2));
    cr_assert_eq(n2.records[0].score, 47);
    cr_assert_eq(n2.records[0].rank, 4);
    kz_lb_list_free(&l);
    kz_lb_list_free(&n2);
    /* limit 0: owner records only. */
    DB_OK(db, kz_lb_records_list(db, "a", false, who, 1, 0, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 0);
    cr_assert_eq(l.nowner_records, 1);
    kz_lb_list_free(&l);
    /* More owners than one statement reads. */
    const char *many[60];
    for (int i = 0; i < 60; i++)
        many[i] = i < 7 ? owner(i) : U1;
    DB_OK(db, kz_lb_records_list(db, "a", false, many, 60, 0, NULL, 0, NOW, &l));
    cr_assert_eq(l.nowner_records, 7);
    kz_lb_list_free(&l);
    fini();
}

KZ_DB_TEST(leaderboard, ranks_off_give_zero)
{
    board(db, "nr", true, KZ_LB_OP_BEST, NULL, false, false);
    kz_lb_record_t r = put(db, "nr", U1, 5, 0, -1);
    cr_assert_eq(r.rank, 0);
    kz_lb_record_clear(&r);
    drop(put(db, "nr", U2, 6, 0, -1));
    kz_lb_list_t l;
    const char *who[] = {U1};
    DB_OK(db, kz_lb_records_list(db, "nr", false, who, 1, 10, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 2);
    cr_assert_eq(l.records[0].rank, 1, "pages still number their records");
    cr_assert_eq(l.records[1].rank, 2);
    cr_assert_eq(l.owner_records[0].rank, 0);
    cr_assert_eq(l.rank_count, 0);
    kz_lb_list_free(&l);
    DB_OK(db, kz_lb_records_haystack(db, "nr", false, U1, 3, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 2);
    cr_assert_eq(l.records[0].rank, 0);
    kz_lb_list_free(&l);
    cr_assert_eq(kz_rank_cache_periods(kz_boards_ranks()), 0);
    char *c;
    cr_assert_eq(kz_lb_cursor_from_rank("nr", 2, 0, NOW, &c), KZ_LB_NO_RANK);
    fini();
}

KZ_DB_TEST(leaderboard, around_owner_top_middle_bottom)
{
    board(db, "h", true, KZ_LB_OP_SET, NULL, false, true);
    for (int i = 0; i < 20; i++)
        drop(put(db, "h", owner(i), i, 0, -1));
    /* owner(19) is rank 1, owner(0) rank 20. */
    kz_lb_list_t l;
    DB_OK(db, kz_lb_records_haystack(db, "h", false, owner(10), 5, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 5);
    /* limit 5: 2 below, 2 above the owner (rank 10). */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(l.records[i].rank, 8 + i, "[%s] #%d rank %lld", dbfx.label, i,
                     (long long)l.records[i].rank);
    cr_assert_str_eq(l.records[2].owner_id, owner(10));
    cr_assert_not_null(l.next_cursor);
    cr_assert_not_null(l.prev_cursor);
    cr_assert_eq(l.rank_count, 20);
    kz_lb_list_t next;
    DB_OK(db, kz_lb_records_haystack(db, "h", false, owner(10), 5, l.next_cursor, 0, NOW, &next));
    cr_assert_eq(next.nrecords, 5);
    cr_assert_eq(next.records[0].rank, 13);
    cr_assert_eq(next.records[0].score, 7);
    kz_lb_list_free(&next);
    kz_lb_list_free(&l);
    /* At the top: the window shifts down. */
    DB_OK(db, kz_lb_records_haystack(db, "h", false, owner(19), 5, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 5);
    cr_assert_str_eq(l.records[0].owner_id, owner(19));
    cr_assert_eq(l.records[4].rank, 5);
    cr_assert_null(l.prev_cursor);
    cr_assert_not_null(l.next_cursor);
    kz_lb_list_free(&l);
    /* At the bottom: it shifts up. */
    DB_OK(db, kz_lb_records_haystack(db, "h", false, owner(0), 5, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 5);
    cr_assert_str_eq(l.records[4].owner_id, owner(0));
    cr_assert_eq(l.records[0].rank, 16);
    cr_assert_not_null(l.prev_cursor);
    cr_assert_null(l.next_cursor);
    kz_lb_list_free(&l);
    /* limit 1: only the owner. No record: empty. */
    DB_OK(db, kz_lb_records_haystack(db, "h", false, owner(10), 1, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 1);
    cr_assert_str_eq(l.records[0].owner_id, owner(10));
    kz_lb_list_free(&l);
    DB_OK(db, kz_lb_records_haystack(db, "h", false, U1, 5, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 0);
    kz_lb_list_free(&l);
    /* A cursor from a rank starts the page there. */
    char *c = NULL;
    DB_OK(db, kz_lb_cursor_from_rank("h", 6, 0, NOW, &c));
    DB_OK(db, kz_lb_records_list(db, "h", false, NULL, 0, 2, c, 0, NOW, &l));
    cr_assert_eq(l.records[0].rank, 6);
    cr_assert_eq(l.records[0].score, 14);
    kz_lb_list_free(&l);
    kz_free(c);
    DB_OK(db, kz_lb_cursor_from_rank("h", 1, 0, NOW, &c));
    cr_assert_null(c);
    cr_assert_eq(kz_lb_cursor_from_rank("h", 50, 0, NOW, &c), KZ_LB_NO_RANK);
    fini();
}

/* ---- Periods ---------------------------------------------------------------- */

KZ_DB_TEST(leaderboard, reset_schedule_partitions_records)
{
    board(db, "daily", true, KZ_LB_OP_INCR, "0 0 * * *", false, true);
    int64_t midnight = (NOW_S / DAY + 1) * DAY;
    kz_lb_record_t r = put(db, "daily", U1, 5, 0, -1);
    cr_assert_eq(r.expiry, midnight);
    kz_lb_record_clear(&r);
    EXPECT_REC(put(db, "daily", U1, 5, 0, -1), 10, 0, 2);
    /* Past midnight: a fresh period. */
    int64_t later = (midnight + 60) * 1000;
    r = put_at(db, "daily", U1, 3, 0, -1, later);
    cr_assert_eq(r.score, 3);
    cr_assert_eq(r.expiry, midnight + DAY);
    kz_lb_record_clear(&r);
    kz_lb_list_t l;
    DB_OK(db, kz_lb_records_list(db, "daily", false, NULL, 0, 10, NULL, 0, later, &l));
    cr_assert_eq(l.nrecords, 1);
    cr_assert_eq(l.records[0].score, 3);
    kz_lb_list_free(&l);
    DB_OK(db, kz_lb_records_list(db, "daily", false, NULL, 0, 10, NULL, midnight, later, &l));
    cr_assert_eq(l.nrecords, 1, "[%s] the old period stays readable", dbfx.label);
    cr_assert_eq(l.records[0].score, 10);
    cr_assert_eq(l.records[0].expiry, midnight);
    kz_lb_list_free(&l);
    /* Deleting removes only the current period's record. */
    DB_OK(db, kz_lb_record_delete(db, "daily", false, true, U1, later));
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 1);
    fini();
}

Test(leaderboard, periods_of_tournaments)
{
    kz_board_t *b = kz_board_new();
    b->tournament = true;
    b->start_time = NOW_S;
    b->duration = 3600;
    int64_t sa, ea, exp;
    kz_board_period(b, NOW_S + 10, &sa, &ea, &exp);
    cr_assert(sa == NOW_S && ea == NOW_S + 3600 && exp == 0);
    b->end_time = NOW_S + 1800;
    kz_board_period(b, NOW_S + 10, &sa, &ea, &exp);
    cr_assert(ea == NOW_S + 1800 && exp == NOW_S + 1800);
    /* Daily at midnight, two-hour windows. */
    char err[100];
    b->cron = kz_cron_parse("0 0 * * *", err, sizeof err);
    b->end_time = 0;
    b->duration = 7200;
    int64_t midnight = (NOW_S / DAY + 1) * DAY;
    kz_board_period(b, NOW_S, &sa, &ea, &exp);
    cr_assert_eq(sa, midnight, "before its first window: the next one");
    cr_assert_eq(ea, midnight + 7200);
    cr_assert_eq(exp, midnight + DAY);
    kz_board_period(b, midnight + 100, &sa, &ea, &exp);
    cr_assert(sa == midnight && ea == midnight + 7200 && exp == midnight + DAY);
    kz_board_period(b, midnight + 9000, &sa, &ea, &exp);
    cr_assert(sa == midnight && ea == midnight + 7200 && exp == midnight + DAY,
              "closed until the next instant");
    b->duration = 2 * DAY; /* longer than the period: capped */
    kz_board_period(b, midnight + 100, &sa, &ea, &exp);
    cr_assert(ea == midnight + DAY);
    b->end_time = midnight + 3600; /* ends within the window */
    kz_board_period(b, midnight + 100, &sa, &ea, &exp);
    cr_assert(ea == midnight + 3600 && exp == midnight + 3600);
    kz_board_release(b);
}

/* ---- Tournaments ------------------------------------------------------------- */

static void tournament(kz_db_t *db, const char *id, int64_t start, int64_t duration, int64_t end,
                       int64_t max_size, int64_t max_num, bool join, const char *sched)
{
    kz_lb_def_t d = {.id = id,
                     .tournament = true,
                     .descending = true,
                     .op = KZ_LB_OP_BEST,
                     .duration = duration,
                     .start_time = start,
                     .end_time = end,
                     .max_size = max_size,
                     .max_num_score = max_num,
                     .join_required = join,
                     .reset_schedule = sched,
                     .enable_ranks = true,
                     .category = 3,
                     .title = "T"};
    char err[200] = "";
    int rc = kz_lb_create(db, &d, NOW, NULL, err, sizeof err);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] tournament %s: %d %s", dbfx.label, id, rc, err);
}

static int twrite(kz_db_t *db, const char *id, const char *who, int64_t s, int64_t now,
                  kz_lb_record_t *r)
{
    kz_lb_write_t w = {.owner_id = who, .username = "p", .score = s, .op = -1};
    return kz_lb_record_write(db, id, true, true, &w, now, r);
}

KZ_DB_TEST(tournament, window_attempts_and_size)
{
    tournament(db, "t", NOW_S + 100, 1000, 0, 2, 2, false, NULL);
    kz_lb_record_t r;
    cr_assert_eq(twrite(db, "t", U1, 5, NOW, &r), KZ_LB_NOT_ACTIVE, "before its start");
    int64_t in = (NOW_S + 200) * 1000;
    DB_OK(db, twrite(db, "t", U1, 5, in, &r));
    cr_assert_eq(r.num_score, 1);
    cr_assert_eq(r.max_num_score, 2);
    kz_lb_record_clear(&r);
    DB_OK(db, twrite(db, "t", U1, 3, in, &r));
    cr_assert_eq(r.score, 5, "best keeps 5");
    cr_assert_eq(r.num_score, 2, "every attempt counts");
    kz_lb_record_clear(&r);
    cr_assert_eq(twrite(db, "t", U1, 9, in, &r), KZ_LB_MAX_SCORES);
    DB_OK(db, kz_lb_tournament_add_attempt(db, "t", U1, 1, in));
    DB_OK(db, twrite(db, "t", U1, 9, in, &r));
    cr_assert_eq(r.score, 9);
    cr_assert_eq(r.num_score, 3);
    kz_lb_record_clear(&r);
    DB_OK(db, twrite(db, "t", U2, 1, in, &r));
    kz_lb_record_clear(&r);
    cr_assert_eq(twrite(db, "t", U3, 1, in, &r), KZ_LB_FULL);
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 2,
                 "the refused participant left nothing");
    const char *ids[] = {"t", "t", "nope"};
    kz_lb_tournament_t *v;
    int n;
    DB_OK(db, kz_lb_tournaments_get(db, ids, 3, in, &v, &n));
    cr_assert_eq(n, 1);
    cr_assert_eq(v[0].size, 2);
    cr_assert(!v[0].can_enter, "full");
    cr_assert_eq(v[0].start_active, NOW_S + 100);
    cr_assert_eq(v[0].end_active, NOW_S + 1100);
    kz_lb_tournaments_free(v, n);
    /* After the window. */
    cr_assert_eq(twrite(db, "t", U1, 1, (NOW_S + 1100) * 1000, &r), KZ_LB_NOT_ACTIVE);
    /* Authoritative tournaments refuse clients. */
    kz_lb_def_t d = {.id = "ta", .tournament = true, .authoritative = true, .duration = 100};
    char err[100];
    DB_OK(db, kz_lb_create(db, &d, NOW, NULL, err, sizeof err));
    cr_assert_eq(twrite(db, "ta", U1, 1, NOW, &r), KZ_LB_AUTHORITATIVE);
    /* A leaderboard is not a tournament, nor the reverse. */
    board(db, "lb", true, KZ_LB_OP_BEST, NULL, false, false);
    cr_assert_eq(twrite(db, "lb", U1, 1, NOW, &r), KZ_LB_NOT_FOUND);
    kz_lb_write_t w = {.owner_id = U1, .op = -1};
    cr_assert_eq(kz_lb_record_write(db, "t", false, true, &w, in, &r), KZ_LB_NOT_FOUND);
    fini();
}

KZ_DB_TEST(tournament, join_required_and_end)
{
    tournament(db, "j", NOW_S, 1000, NOW_S + 500, 1, 0, true, NULL);
    kz_lb_record_t r;
    cr_assert_eq(twrite(db, "j", U1, 5, NOW, &r), KZ_LB_JOIN_REQUIRED);
    DB_OK(db, kz_lb_tournament_join(db, "j", U1, "u1", NOW));
    DB_OK(db, kz_lb_tournament_join(db, "j", U1, "u1", NOW)); /* again: no-op */
    cr_assert_eq(kz_lb_tournament_join(db, "j", U2, "u2", NOW), KZ_LB_FULL);
    kz_lb_list_t l;
    DB_OK(db, kz_lb_records_list(db, "j", true, NULL, 0, 10, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, 1);
    cr_assert_eq(l.records[0].num_score, 0);
    cr_assert_eq(l.records[0].score, 0);
    kz_lb_list_free(&l);
    DB_OK(db, twrite(db, "j", U1, 5, NOW, &r));
    cr_assert_eq(r.score, 5);
    cr_assert_eq(r.num_score, 1);
    cr_assert_eq(r.expiry, NOW_S + 500);
    cr_assert_eq(r.rank, 1);
    kz_lb_record_clear(&r);
    /* Ended: no writes, no joins, no listing of the current period, but
     * the old one reads with its expiry. */
    int64_t after = (NOW_S + 600) * 1000;
    cr_assert_eq(twrite(db, "j", U1, 6, after, &r), KZ_LB_ENDED);
    cr_assert_eq(kz_lb_tournament_join(db, "j", U3, "u3", after), KZ_LB_NOT_ACTIVE);
    cr_assert_eq(kz_lb_records_list(db, "j", true, NULL, 0, 10, NULL, 0, after, &l), KZ_LB_ENDED);
    DB_OK(db, kz_lb_records_list(db, "j", true, NULL, 0, 10, NULL, NOW_S + 500, after, &l));
    cr_assert_eq(l.nrecords, 1);
    kz_lb_list_free(&l);
    /* No join needed: join is a no-op and writes go straight in. */
    tournament(db, "open", NOW_S, 1000, 0, 0, 0, false, NULL);
    DB_OK(db, kz_lb_tournament_join(db, "open", U1, "u1", NOW));
    cr_assert_eq(dbfx_count(db, "leaderboard_record", "leaderboard_id = 'open'", NULL, 0), 0);
    cr_assert_eq(kz_lb_tournament_join(db, "nope", U1, "u1", NOW), KZ_LB_NOT_FOUND);
    fini();
}

KZ_DB_TEST(tournament, size_restarts_each_period_and_list_filters)
{
    tournament(db, "daily", NOW_S - DAY, 3600, 0, 1, 0, false, "0 0 * * *");
    int64_t midnight = (NOW_S / DAY + 1) * DAY;
    kz_lb_record_t r;
    int64_t t1 = (midnight + 10) * 1000;
    DB_OK(db, twrite(db, "daily", U1, 5, t1, &r));
    cr_assert_eq(r.expiry, midnight + DAY);
    kz_lb_record_clear(&r);
    cr_assert_eq(twrite(db, "daily", U2, 5, t1, &r), KZ_LB_FULL);
    int64_t t2 = (midnight + DAY + 10) * 1000;
    DB_OK(db, twrite(db, "daily", U2, 5, t2, &r));
    kz_lb_record_clear(&r);
    /* The list: categories, start and end filters. */
    tournament(db, "later", NOW_S + 1000, 100, NOW_S + 5000, 0, 0, false, NULL);
    kz_lb_def_t d = {.id = "cat9", .tournament = true, .duration = 100, .category = 9};
    char err[100];
    DB_OK(db, kz_lb_create(db, &d, NOW, NULL, err, sizeof err));
    kz_lb_tournament_t *v;
    int n;
    char *next;
    DB_OK(db, kz_lb_tournaments_list(db, 0, 127, -1, -1, 100, NULL, NOW, &v, &n, &next));
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v[0].board->id, "cat9");
    kz_lb_tournaments_free(v, n);
    DB_OK(db, kz_lb_tournaments_list(db, 3, 3, -1, -1, 100, NULL, NOW, &v, &n, &next));
    cr_assert_eq(n, 2);
    kz_lb_tournaments_free(v, n);
    DB_OK(db, kz_lb_tournaments_list(db, 0, 127, NOW_S + 500, -1, 100, NULL, NOW, &v, &n, &next));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].board->id, "later");
    kz_lb_tournaments_free(v, n);
    DB_OK(db, kz_lb_tournaments_list(db, 0, 127, -1, 0, 100, NULL, NOW, &v, &n, &next));
    cr_assert_eq(n, 2, "end 0: the ones that never end");
    kz_lb_tournaments_free(v, n);
    DB_OK(db, kz_lb_tournaments_list(db, 0, 127, -1, -1, 2, NULL, NOW, &v, &n, &next));
    cr_assert_eq(n, 2);
    cr_assert_not_null(next);
    kz_lb_tournaments_free(v, n);
    char *from = next;
    DB_OK(db, kz_lb_tournaments_list(db, 0, 127, -1, -1, 2, from, NOW, &v, &n, &next));
    kz_free(from);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].board->id, "later");
    cr_assert_null(next);
    kz_lb_tournaments_free(v, n);
    /* An ended tournament drops out of the default listing. */
    DB_OK(db, kz_lb_tournaments_list(db, 0, 127, -1, -1, 100, NULL, (NOW_S + 6000) * 1000, &v, &n,
                                     &next));
    cr_assert_eq(n, 2);
    kz_lb_tournaments_free(v, n);
    fini();
}

/* ---- Rank cache ------------------------------------------------------------ */

KZ_DB_TEST(leaderboard, rank_cache_reloads_at_start_up)
{
    board(db, "r", true, KZ_LB_OP_SET, NULL, false, true);
    board(db, "daily", true, KZ_LB_OP_SET, "0 0 * * *", false, true);
    board(db, "off", true, KZ_LB_OP_SET, NULL, false, false);
    for (int i = 0; i < 5; i++) {
        drop(put(db, "r", owner(i), i * 10, 0, -1));
        drop(put(db, "off", owner(i), i, 0, -1));
    }
    drop(put_at(db, "daily", U1, 1, 0, -1, NOW - DAY * 1000)); /* old period */
    drop(put(db, "daily", U2, 2, 0, -1));
    kz_boards_shutdown();
    cr_assert_null(kz_boards_get("r"));
    DB_OK(db, kz_boards_load(db, NOW_S));
    kz_board_t *b = kz_boards_get("daily");
    cr_assert_not_null(b);
    cr_assert_str_eq(b->reset_schedule, "0 0 * * *");
    kz_board_release(b);
    kz_rank_cache_t *c = kz_boards_ranks();
    cr_assert_eq(kz_rank_cache_count(c, "r", 0), 5);
    cr_assert_eq(kz_rank_cache_count(c, "off", 0), 0);
    cr_assert_eq(kz_rank_cache_periods(c), 2, "[%s] the current daily period only", dbfx.label);
    uint8_t key[16];
    kz_board_owner_key(owner(4), key);
    cr_assert_eq(kz_rank_cache_rank(c, "r", 0, key), 1);
    fini();
}

struct racer {
    const char *address;
    int id;
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char err[256];
    kz_db_t *db = NULL;
    r->rc = kz_db_open(r->address, &db, err, sizeof err);
    for (int i = 0; i < 40 && r->rc == KZ_DB_OK; i++) {
        kz_lb_write_t w = {.owner_id = U1, .score = 1, .subscore = r->id, .op = KZ_LB_OP_INCR};
        kz_lb_record_t rec;
        r->rc = kz_lb_record_write(db, "race", false, false, &w, NOW, &rec);
        if (r->rc == KZ_DB_OK) kz_lb_record_clear(&rec);
        if (r->rc == KZ_DB_OK && i % 4 == 0) { /* other owners move around it */
            char who[37];
            snprintf(who, sizeof who, "%08x-0000-4000-8000-000000000000",
                     (unsigned)(r->id * 100 + i));
            kz_lb_write_t o = {.owner_id = who, .score = i, .op = KZ_LB_OP_SET};
            r->rc = kz_lb_record_write(db, "race", false, false, &o, NOW, &rec);
            if (r->rc == KZ_DB_OK) kz_lb_record_clear(&rec);
        }
    }
    kz_db_close(db);
    return NULL;
}

KZ_DB_TEST(leaderboard, concurrent_writers_converge)
{
    board(db, "race", true, KZ_LB_OP_INCR, NULL, false, true);
    struct racer rs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        rs[i] = (struct racer){.address = dbfx.address, .id = i + 1};
        pthread_create(&th[i], NULL, race, &rs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(rs[i].rc, KZ_DB_OK, "[%s] racer %d: %d", dbfx.label, i, rs[i].rc);
    }
    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    cr_assert_eq(
        dbfx_query_int(db, "SELECT score FROM leaderboard_record WHERE owner_id = $1", p, 1), 160);
    cr_assert_eq(
        dbfx_query_int(db, "SELECT subscore FROM leaderboard_record WHERE owner_id = $1", p, 1),
        40 * (1 + 2 + 3 + 4));
    cr_assert_eq(
        dbfx_query_int(db, "SELECT num_score FROM leaderboard_record WHERE owner_id = $1", p, 1),
        160);
    /* The cache holds exactly the rows, in the rows' order. */
    int64_t rows = dbfx_count(db, "leaderboard_record", NULL, NULL, 0);
    kz_rank_cache_t *c = kz_boards_ranks();
    cr_assert_eq(kz_rank_cache_count(c, "race", 0), rows);
    kz_lb_list_t l;
    DB_OK(db, kz_lb_records_list(db, "race", false, NULL, 0, 1000, NULL, 0, NOW, &l));
    cr_assert_eq(l.nrecords, rows);
    for (int i = 0; i < l.nrecords; i++) {
        uint8_t key[16];
        kz_board_owner_key(l.records[i].owner_id, key);
        cr_assert_eq(kz_rank_cache_rank(c, "race", 0, key), i + 1, "[%s] %s", dbfx.label,
                     l.records[i].owner_id);
    }
    cr_assert_str_eq(l.records[0].owner_id, U1);
    cr_assert_eq(l.records[0].score, 160);
    kz_lb_list_free(&l);
    fini();
}

/* ---- Scheduler -------------------------------------------------------------- */

static struct {
    int n;
    kz_board_event_kind_t kind[8];
    char board[8][32];
    int64_t at[8], reset[8];
} seen;

static void on_event(const kz_board_event_t *ev, void *arg)
{
    (void)arg;
    if (seen.n >= 8) return;
    seen.kind[seen.n] = ev->kind;
    snprintf(seen.board[seen.n], sizeof seen.board[0], "%s", ev->board->id);
    seen.at[seen.n] = ev->at;
    seen.reset[seen.n] = ev->reset;
    seen.n++;
}

KZ_DB_TEST(leaderboard, scheduler_fires_at_instants)
{
    int64_t midnight = (NOW_S / DAY + 1) * DAY;
    board(db, "daily", true, KZ_LB_OP_SET, "0 0 * * *", false, true);
    tournament(db, "t", NOW_S, 600, 0, 0, 0, false, NULL);
    drop(put(db, "daily", U1, 1, 0, -1));
    cr_assert_eq(kz_rank_cache_periods(kz_boards_ranks()), 1);
    memset(&seen, 0, sizeof seen);
    int64_t next = kz_boards_scheduler_step(NOW_S, on_event, NULL);
    cr_assert_eq(seen.n, 0, "nothing on the first pass");
    cr_assert_eq(next, NOW_S + 600, "the tournament's window closes first");
    next = kz_boards_scheduler_step(NOW_S + 600, on_event, NULL);
    cr_assert_eq(seen.n, 1);
    cr_assert_eq(seen.kind[0], KZ_BOARD_TOURNAMENT_END);
    cr_assert_str_eq(seen.board[0], "t");
    cr_assert_eq(seen.at[0], NOW_S + 600);
    cr_assert_eq(next, midnight);
    /* A jump over midnight and the next one: one reset event. */
    kz_boards_scheduler_step(midnight + DAY + 5, on_event, NULL);
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(seen.kind[1], KZ_BOARD_LEADERBOARD_RESET);
    cr_assert_str_eq(seen.board[1], "daily");
    cr_assert_eq(seen.at[1], midnight + DAY);
    cr_assert_eq(seen.reset[1], midnight + 2 * DAY);
    cr_assert_eq(kz_rank_cache_periods(kz_boards_ranks()), 0, "the expired period left the cache");
    fini();
}

KZ_DB_TEST(leaderboard, deleting_a_user_takes_their_records)
{
    board(db, "a", true, KZ_LB_OP_SET, NULL, false, true);
    board(db, "b", true, KZ_LB_OP_SET, "0 0 * * *", false, true);
    drop(put(db, "a", U1, 1, 0, -1));
    drop(put(db, "a", U2, 2, 0, -1));
    drop(put(db, "b", U1, 3, 0, -1));
    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_lb_delete_user(db, U1, NOW));
    DB_OK(db, kz_db_commit(db));
    cr_assert_eq(dbfx_count(db, "leaderboard_record", NULL, NULL, 0), 1);
    kz_rank_cache_t *c = kz_boards_ranks();
    int64_t midnight = (NOW_S / DAY + 1) * DAY;
    cr_assert_eq(kz_rank_cache_count(c, "a", 0), 1);
    cr_assert_eq(kz_rank_cache_count(c, "b", midnight), 0);
    fini();
}
