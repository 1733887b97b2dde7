/* Friends store tests (store/friends.h): invites, acceptance, blocks in
 * either direction, deletion, edge counts, the notifications friend
 * requests create, listing with filters and positions, friends of
 * friends, account deletion, and two users inviting each other at the same
 * moment. Every test runs on SQLite and on PostgreSQL (see dbfixture.h). */
#include <criterion/criterion.h>

#include <pthread.h>

#include "core/clock.h"
#include "dbfixture.h"
#include "store/account.h"
#include "store/friends.h"
#include "store/notification.h"

#define NOW INT64_C(1700000000000) /* 2023-11-14T22:13:20Z */

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"
#define U4 "44444444-4444-4444-8444-444444444444"
#define U5 "55555555-5555-4555-8555-555555555555"
#define U6 "66666666-6666-4666-8666-666666666666"
#define GHOST "99999999-9999-4999-8999-999999999999"

static const char *const ALL[] = {U1, U2, U3, U4, U5, U6};
static const char *const NAMES[] = {"alice", "bob", "carol", "dave", "erin", "frank"};

/* ---- Helpers --------------------------------------------------------------- */

/* Wall clock when the test started (notification times are real ones). */
static int64_t test_start;

/* Creates the first n of U1..U6 (alice, bob, ...). */
static void make_users(kz_db_t *db, int n)
{
    test_start = kz_now_ms();
    for (int i = 0; i < n; i++) {
        char device[32];
        snprintf(device, sizeof device, "device-%s-0001", NAMES[i]);
        bool taken = true;
        DB_OK(db, kz_store_user_create(db, ALL[i], NAMES[i], KZ_ID_DEVICE, device, NULL, NOW, &taken));
    }
}

/* ids as the mutable array the store takes. */
#define IDS(...) ((char *[]){__VA_ARGS__})
#define NIDS(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

static kz_friends_added_t add(kz_db_t *db, const char *me, char **ids, int n, const char *metadata)
{
    kz_friends_added_t res = {-1, -1};
    DB_OK(db, kz_store_friends_add(db, me, ids, n, metadata, NOW + 1000, &res));
    return res;
}
#define ADD(db, me, ...) add(db, me, IDS(__VA_ARGS__), NIDS(__VA_ARGS__), NULL)
#define BLOCK(db, me, ...) DB_OK(db, kz_store_friends_block(db, me, IDS(__VA_ARGS__), NIDS(__VA_ARGS__), NOW + 2000))
#define DELETE(db, me, ...) DB_OK(db, kz_store_friends_delete(db, me, IDS(__VA_ARGS__), NIDS(__VA_ARGS__), NOW + 3000))

/* State of the row src -> dst, -1 when there is none. */
static int64_t edge(kz_db_t *db, const char *src, const char *dst)
{
    kz_dbval_t p[] = {KZ_DBTEXT(src), KZ_DBTEXT(dst)};
    if (dbfx_count(db, "user_edge", "source_id = $1 AND destination_id = $2", p, 2) == 0) return -1;
    return dbfx_query_int(db, "SELECT state FROM user_edge WHERE source_id = $1 AND destination_id = $2", p, 2);
}

static int64_t edge_count(kz_db_t *db, const char *id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(id)};
    return dbfx_query_int(db, "SELECT edge_count FROM users WHERE id = $1", p, 1);
}

/* edge_count must equal the rows the user is the source of. */
static void expect_counts_consistent(kz_db_t *db, int nusers)
{
    for (int i = 0; i < nusers; i++) {
        kz_dbval_t p[] = {KZ_DBTEXT(ALL[i])};
        int64_t rows = dbfx_count(db, "user_edge", "source_id = $1", p, 1);
        cr_assert_eq(edge_count(db, ALL[i]), rows, "[%s] %s edge_count %lld, rows %lld", dbfx.label, NAMES[i],
                     (long long)edge_count(db, ALL[i]), (long long)rows);
    }
}

#define EXPECT_EDGE(db, src, dst, want)                                                            \
    do {                                                                                           \
        int64_t got_ = edge(db, src, dst);                                                         \
        cr_assert_eq(got_, (want), "[%s] edge %s -> %s is %lld, want %d", dbfx.label, #src, #dst,  \
                     (long long)got_, (int)(want));                                                \
    } while (0)

#define EXPECT_COUNT(db, id, want)                                                                 \
    do {                                                                                           \
        int64_t got_ = edge_count(db, id);                                                         \
        cr_assert_eq(got_, (want), "[%s] edge_count of %s is %lld, want %d", dbfx.label, #id,      \
                     (long long)got_, (int)(want));                                                \
    } while (0)

static int64_t notifications_of(kz_db_t *db, const char *user_id)
{
    kz_dbval_t p[] = {KZ_DBTEXT(user_id)};
    return dbfx_count(db, "notification", "user_id = $1", p, 1);
}

/* The single notification of user_id must be (code, subject, content, sender). */
static void expect_notification(kz_db_t *db, const char *user_id, int code, const char *subject,
                                const char *content, const char *sender)
{
    kz_stored_notification_t *list;
    int n;
    DB_OK(db, kz_store_notifications_list(db, user_id, 10, 0, NULL, &list, &n));
    cr_assert_eq(n, 1, "[%s] %d notifications, want 1", dbfx.label, n);
    cr_assert_eq(list[0].code, code, "[%s] code %d, want %d", dbfx.label, list[0].code, code);
    cr_assert_str_eq(list[0].subject, subject, "[%s] subject \"%s\"", dbfx.label, list[0].subject);
    cr_assert_str_eq(list[0].content, content, "[%s] content \"%s\"", dbfx.label, list[0].content);
    cr_assert_str_eq(list[0].sender_id, sender, "[%s] sender \"%s\"", dbfx.label, list[0].sender_id);
    /* Notifications are stamped when they are made, not with the edge's time. */
    cr_assert_geq(list[0].create_time, test_start, "[%s] create_time", dbfx.label);
    cr_assert_leq(list[0].create_time, kz_now_ms(), "[%s] create_time", dbfx.label);
    kz_stored_notifications_free(list, n);
}

/* ---- Add ---------------------------------------------------------------------- */

KZ_DB_TEST(friends, invite_creates_pair_counts_and_notification)
{
    make_users(db, 2);
    kz_friends_added_t r = ADD(db, U1, U2);
    cr_assert_eq(r.invited, 1);
    cr_assert_eq(r.accepted, 0);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_INVITE_SENT);
    EXPECT_EDGE(db, U2, U1, KZ_FRIEND_INVITE_RECEIVED);
    EXPECT_COUNT(db, U1, 1);
    EXPECT_COUNT(db, U2, 1);
    /* The two rows share one position and carry the call's time. */
    kz_dbval_t p[] = {KZ_DBTEXT(U1), KZ_DBTEXT(U2)};
    cr_assert_eq(dbfx_query_int(db,
                                "SELECT count(DISTINCT position) FROM user_edge WHERE source_id IN ($1, $2)",
                                p, 2),
                 1);
    cr_assert_eq(dbfx_query_int(db, "SELECT min(update_time) FROM user_edge", NULL, 0), NOW + 1000);
    /* The invitee is told; the inviter is not. */
    expect_notification(db, U2, KZ_NOTIFY_FRIEND_REQUEST, "alice wants to add you as a friend",
                        "{\"username\":\"alice\"}", U1);
    cr_assert_eq(notifications_of(db, U1), 0);
    /* Users touched by an edge change get their update_time moved. */
    kz_dbval_t u[] = {KZ_DBTEXT(U2)};
    cr_assert_eq(dbfx_query_int(db, "SELECT update_time FROM users WHERE id = $1", u, 1), NOW + 1000);
}

KZ_DB_TEST(friends, accepting_makes_both_mutual_and_notifies_the_inviter)
{
    make_users(db, 2);
    ADD(db, U1, U2);
    kz_friends_added_t r = ADD(db, U2, U1);
    cr_assert_eq(r.invited, 0);
    cr_assert_eq(r.accepted, 1);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_MUTUAL);
    EXPECT_EDGE(db, U2, U1, KZ_FRIEND_MUTUAL);
    /* Accepting adds no row, so the counts stay at one each. */
    EXPECT_COUNT(db, U1, 1);
    EXPECT_COUNT(db, U2, 1);
    expect_notification(db, U1, KZ_NOTIFY_FRIEND_ACCEPT, "bob accepted your friend request",
                        "{\"username\":\"bob\"}", U2);
    cr_assert_eq(notifications_of(db, U2), 1, "[%s] bob keeps only the request", dbfx.label);
}

KZ_DB_TEST(friends, adding_again_changes_nothing)
{
    make_users(db, 3);
    ADD(db, U1, U2);
    /* Inviting again, twice in one call, or as the inviter: no-ops. */
    kz_friends_added_t r = ADD(db, U1, U2, U2);
    cr_assert_eq(r.invited, 0);
    cr_assert_eq(r.accepted, 0);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_INVITE_SENT);
    EXPECT_COUNT(db, U1, 1);
    cr_assert_eq(notifications_of(db, U2), 1);
    /* Friends already: adding either way is a no-op too. */
    ADD(db, U2, U1);
    r = ADD(db, U1, U2);
    cr_assert_eq(r.invited + r.accepted, 0);
    r = ADD(db, U2, U1);
    cr_assert_eq(r.invited + r.accepted, 0);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_MUTUAL);
    EXPECT_EDGE(db, U2, U1, KZ_FRIEND_MUTUAL);
    EXPECT_COUNT(db, U1, 1);
    EXPECT_COUNT(db, U2, 1);
    cr_assert_eq(notifications_of(db, U1), 1);
    cr_assert_eq(notifications_of(db, U2), 1);
    /* The same call may invite one user and accept another. */
    ADD(db, U3, U1);
    r = ADD(db, U1, U3);
    cr_assert_eq(r.accepted, 1);
    expect_counts_consistent(db, 3);
}

KZ_DB_TEST(friends, unknown_users_and_self_are_skipped)
{
    make_users(db, 2);
    kz_friends_added_t r = ADD(db, U1, GHOST, U1);
    cr_assert_eq(r.invited, 0);
    cr_assert_eq(r.accepted, 0);
    cr_assert_eq(dbfx_count(db, "user_edge", NULL, NULL, 0), 0);
    cr_assert_eq(dbfx_count(db, "notification", NULL, NULL, 0), 0);
    EXPECT_COUNT(db, U1, 0);
    /* Mixed with a real one, only the real one counts. */
    r = ADD(db, U1, GHOST, U2);
    cr_assert_eq(r.invited, 1);
    cr_assert_eq(dbfx_count(db, "user_edge", NULL, NULL, 0), 2);
    /* The caller must exist (the name goes into the notification). */
    kz_friends_added_t res;
    DB_RC(db, kz_store_friends_add(db, GHOST, IDS(U2), 1, NULL, NOW, &res), KZ_STORE_NOTFOUND);
    cr_assert_eq(dbfx_count(db, "user_edge", NULL, NULL, 0), 2);
}

KZ_DB_TEST(friends, metadata_on_invite_and_merged_on_accept)
{
    make_users(db, 2);
    add(db, U1, IDS(U2), 1, "{\"a\":1,\"b\":\"x\"}");
    kz_dbval_t p12[] = {KZ_DBTEXT(U1), KZ_DBTEXT(U2)}, p21[] = {KZ_DBTEXT(U2), KZ_DBTEXT(U1)};
    kz_dbrows_t *r;
    DB_OK(db, kz_db_query(db, "SELECT metadata FROM user_edge WHERE source_id = $1 AND destination_id = $2",
                          p12, 2, &r));
    cr_assert_eq(kz_db_next(r), 1);
    cr_assert_str_eq(kz_db_text(r, 0, NULL), "{\"a\":1,\"b\":\"x\"}");
    kz_db_rows_free(r);
    DB_OK(db, kz_db_query(db, "SELECT metadata FROM user_edge WHERE source_id = $1 AND destination_id = $2",
                          p21, 2, &r));
    cr_assert_eq(kz_db_next(r), 1);
    cr_assert_str_eq(kz_db_text(r, 0, NULL), "{}");
    kz_db_rows_free(r);
    /* Bob accepts with metadata of his own: it lands on his row. */
    add(db, U2, IDS(U1), 1, "{\"c\":true}");
    DB_OK(db, kz_db_query(db, "SELECT metadata FROM user_edge WHERE source_id = $1 AND destination_id = $2",
                          p21, 2, &r));
    cr_assert_eq(kz_db_next(r), 1);
    cr_assert_str_eq(kz_db_text(r, 0, NULL), "{\"c\":true}");
    kz_db_rows_free(r);
    /* Alice's row is untouched by the acceptance. */
    DB_OK(db, kz_db_query(db, "SELECT metadata FROM user_edge WHERE source_id = $1 AND destination_id = $2",
                          p12, 2, &r));
    cr_assert_eq(kz_db_next(r), 1);
    cr_assert_str_eq(kz_db_text(r, 0, NULL), "{\"a\":1,\"b\":\"x\"}");
    kz_db_rows_free(r);
}

/* ---- Block and delete ---------------------------------------------------------- */

KZ_DB_TEST(friends, blocked_either_way_cannot_be_added)
{
    make_users(db, 3);
    BLOCK(db, U1, U2);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_BLOCKED);
    EXPECT_EDGE(db, U2, U1, -1);
    EXPECT_COUNT(db, U1, 1); /* a block is a row of the blocker's */
    EXPECT_COUNT(db, U2, 0);
    /* The blocker adding: skipped, the block stays. */
    kz_friends_added_t r = ADD(db, U1, U2);
    cr_assert_eq(r.invited + r.accepted, 0);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_BLOCKED);
    /* The blocked user adding: skipped silently, nothing created. */
    r = ADD(db, U2, U1);
    cr_assert_eq(r.invited + r.accepted, 0);
    EXPECT_EDGE(db, U2, U1, -1);
    EXPECT_COUNT(db, U2, 0);
    cr_assert_eq(dbfx_count(db, "notification", NULL, NULL, 0), 0);
    cr_assert(kz_store_friends_blocked(db, U1, U2));
    cr_assert(kz_store_friends_blocked(db, U2, U1));
    cr_assert(!kz_store_friends_blocked(db, U1, U3));
    cr_assert(!kz_store_friends_blocked(db, U3, U2));
}

KZ_DB_TEST(friends, block_replaces_relations_and_keeps_counts)
{
    make_users(db, 4);
    ADD(db, U1, U2);
    ADD(db, U2, U1); /* friends */
    ADD(db, U3, U1); /* invite from carol */
    BLOCK(db, U2, U1);
    EXPECT_EDGE(db, U2, U1, KZ_FRIEND_BLOCKED);
    EXPECT_EDGE(db, U1, U2, -1);
    EXPECT_COUNT(db, U1, 1); /* only carol's invite is left */
    EXPECT_COUNT(db, U2, 1);
    /* Blocking back keeps the other block: both rows are 3. */
    BLOCK(db, U1, U2, U3);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_BLOCKED);
    EXPECT_EDGE(db, U2, U1, KZ_FRIEND_BLOCKED);
    EXPECT_EDGE(db, U1, U3, KZ_FRIEND_BLOCKED);
    EXPECT_EDGE(db, U3, U1, -1); /* carol's invite is gone */
    EXPECT_COUNT(db, U1, 2);
    EXPECT_COUNT(db, U2, 1);
    EXPECT_COUNT(db, U3, 0);
    /* Blocking again, unknown users and self change nothing. */
    BLOCK(db, U1, U2, GHOST, U1);
    EXPECT_COUNT(db, U1, 2);
    cr_assert_eq(dbfx_count(db, "user_edge", NULL, NULL, 0), 3);
    /* Deleting lifts the caller's own block only. */
    DELETE(db, U2, U1);
    EXPECT_EDGE(db, U2, U1, -1);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_BLOCKED);
    EXPECT_COUNT(db, U2, 0);
    EXPECT_COUNT(db, U1, 2);
    cr_assert(kz_store_friends_blocked(db, U2, U1));
    DELETE(db, U1, U2);
    cr_assert(!kz_store_friends_blocked(db, U2, U1));
    /* Now they can be friends again. */
    ADD(db, U2, U1);
    ADD(db, U1, U2);
    EXPECT_EDGE(db, U1, U2, KZ_FRIEND_MUTUAL);
    expect_counts_consistent(db, 4);
}

KZ_DB_TEST(friends, delete_removes_both_rows)
{
    make_users(db, 4);
    ADD(db, U1, U2, U3);
    ADD(db, U2, U1); /* U1-U2 friends, U1 -> U3 invite */
    ADD(db, U4, U1); /* invite received from dave */
    EXPECT_COUNT(db, U1, 3);
    DELETE(db, U1, U2, U3, U4, GHOST);
    cr_assert_eq(dbfx_count(db, "user_edge", NULL, NULL, 0), 0);
    for (int i = 0; i < 4; i++) cr_assert_eq(edge_count(db, ALL[i]), 0, "[%s] %s", dbfx.label, NAMES[i]);
    /* Either side may delete: the invitee declines. */
    ADD(db, U3, U4);
    DELETE(db, U4, U3);
    cr_assert_eq(dbfx_count(db, "user_edge", NULL, NULL, 0), 0);
    EXPECT_COUNT(db, U3, 0);
    /* Deleting nothing is fine. */
    DELETE(db, U3, U4);
    expect_counts_consistent(db, 4);
}

/* ---- Lists ---------------------------------------------------------------------- */

/* Lists U1's friends with state filter and position; checks usernames. */
static void expect_page(kz_db_t *db, int state, int limit, const kz_friend_pos_t *from, const char *const *names,
                        const int *states, int n, bool more, kz_friend_pos_t *next)
{
    kz_friend_t *f;
    int got;
    bool has_next;
    kz_friend_pos_t nx = {-1, -1};
    DB_OK(db, kz_store_friends_list(db, U1, state, limit, from, &f, &got, &nx, &has_next));
    cr_assert_eq(got, n, "[%s] state %d limit %d: %d entries, want %d", dbfx.label, state, limit, got, n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(f[i].user.username, names[i], "[%s] entry %d: %s, want %s", dbfx.label, i,
                         f[i].user.username, names[i]);
        cr_assert_eq(f[i].state, states[i], "[%s] entry %d state %d", dbfx.label, i, f[i].state);
    }
    cr_assert_eq(has_next, more, "[%s] has_next", dbfx.label);
    if (next) *next = nx;
    kz_friends_free(f, got);
}

KZ_DB_TEST(friends, list_orders_by_state_filters_and_pages)
{
    make_users(db, 6);
    ADD(db, U1, U2);
    ADD(db, U2, U1); /* bob: friend */
    ADD(db, U1, U6);
    ADD(db, U6, U1); /* frank: friend, made later */
    ADD(db, U1, U3); /* carol: invite sent */
    ADD(db, U4, U1); /* dave: invite received */
    BLOCK(db, U1, U5); /* erin: blocked */

    const char *all[] = {"bob", "frank", "carol", "dave", "erin"};
    const int all_states[] = {0, 0, 1, 2, 3};
    expect_page(db, -1, 1000, NULL, all, all_states, 5, false, NULL);

    /* Pages of two, each resuming at the position the previous gave. */
    kz_friend_pos_t next;
    expect_page(db, -1, 2, NULL, all, all_states, 2, true, &next);
    cr_assert_eq(next.state, 1);
    expect_page(db, -1, 2, &next, all + 2, all_states + 2, 2, true, &next);
    cr_assert_eq(next.state, 3);
    expect_page(db, -1, 2, &next, all + 4, all_states + 4, 1, false, NULL);

    /* Filters. */
    for (int s = 0; s < 4; s++) {
        int from = s == 0 ? 0 : s + 1, n = s == 0 ? 2 : 1;
        expect_page(db, s, 10, NULL, all + from, all_states + from, n, false, NULL);
    }
    expect_page(db, 0, 1, NULL, all, all_states, 1, true, &next);
    expect_page(db, 0, 1, &next, all + 1, all_states + 1, 1, false, NULL);

    /* Entries carry the profile, the edge's time and metadata. */
    kz_friend_t *f;
    int n;
    bool more;
    DB_OK(db, kz_store_friends_list(db, U1, 2, 10, NULL, &f, &n, &next, &more));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(f[0].user.id, U4);
    cr_assert_str_eq(f[0].user.lang_tag, "en");
    cr_assert_str_eq(f[0].user.metadata, "{}");
    cr_assert_eq(f[0].user.create_time, NOW);
    cr_assert_eq(f[0].user.edge_count, 0, "friend lists leave edge_count out");
    cr_assert_eq(f[0].update_time, NOW + 1000);
    cr_assert_str_eq(f[0].metadata, "{}");
    kz_friends_free(f, n);

    /* Someone else's list is their own. */
    DB_OK(db, kz_store_friends_list(db, U5, -1, 10, NULL, &f, &n, &next, &more));
    cr_assert_eq(n, 0);
    cr_assert(!more);
    kz_friends_free(f, n);
}

/* Lists U1's friends of friends and checks (referrer, user) pairs. */
static void expect_fof(kz_db_t *db, int limit, const kz_fof_pos_t *from, const char *const *pairs, int n, bool more,
                       kz_fof_pos_t *next)
{
    kz_friend_of_friend_t *f;
    int got;
    bool has_next;
    kz_fof_pos_t nx;
    DB_OK(db, kz_store_friends_of_friends(db, U1, limit, from, &f, &got, &nx, &has_next));
    cr_assert_eq(got, n, "[%s] %d friends of friends, want %d", dbfx.label, got, n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(f[i].referrer, pairs[2 * i], "[%s] entry %d referrer %s", dbfx.label, i, f[i].referrer);
        cr_assert_str_eq(f[i].user.id, pairs[2 * i + 1], "[%s] entry %d user %s", dbfx.label, i, f[i].user.id);
    }
    cr_assert_eq(has_next, more, "[%s] has_next", dbfx.label);
    if (n) cr_assert_not_null(f[0].user.username);
    if (next) *next = nx;
    kz_friends_of_friends_free(f, got);
}

/* Makes a and b friends. */
static void befriend(kz_db_t *db, char *a, char *b)
{
    ADD(db, a, b);
    ADD(db, b, a);
}

KZ_DB_TEST(friends, friends_of_friends)
{
    make_users(db, 6);
    expect_fof(db, 10, NULL, NULL, 0, false, NULL);
    befriend(db, U1, U2);
    befriend(db, U1, U3);
    befriend(db, U2, U3); /* a friend of a friend who is my friend: out */
    befriend(db, U2, U4); /* dave: in, via bob */
    befriend(db, U2, U5); /* erin: blocks me, out */
    BLOCK(db, U5, U1);
    befriend(db, U2, U6);
    befriend(db, U3, U6); /* frank: in, via bob and via carol */
    ADD(db, U3, U4);      /* only an invite: not via carol */
    const char *want[] = {U2, U4, U2, U6, U3, U6};
    expect_fof(db, 10, NULL, want, 3, false, NULL);
    /* Paging one by one. */
    kz_fof_pos_t next;
    expect_fof(db, 1, NULL, want, 1, true, &next);
    cr_assert_str_eq(next.referrer, U2);
    cr_assert_str_eq(next.user_id, U6);
    expect_fof(db, 1, &next, want + 2, 1, true, &next);
    expect_fof(db, 2, &next, want + 4, 1, false, NULL);
    /* Blocking dave myself takes him out; befriending frank too. */
    BLOCK(db, U1, U4);
    befriend(db, U1, U6);
    expect_fof(db, 10, NULL, NULL, 0, false, NULL);
}

/* ---- Account deletion ------------------------------------------------------------- */

KZ_DB_TEST(friends, delete_user_removes_edges_and_fixes_counts)
{
    make_users(db, 6);
    befriend(db, U1, U2);
    ADD(db, U1, U3);   /* invite sent */
    BLOCK(db, U4, U1); /* blocked by dave */
    BLOCK(db, U1, U5); /* blocks erin */
    befriend(db, U2, U6); /* unrelated */
    ADD(db, U1, U6);      /* frank */
    ADD(db, U6, U1);
    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_store_friends_delete_user(db, U1));
    DB_OK(db, kz_db_commit(db));
    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    cr_assert_eq(dbfx_count(db, "user_edge", "source_id = $1 OR destination_id = $1", p, 1), 0);
    EXPECT_COUNT(db, U2, 1); /* frank stays */
    EXPECT_COUNT(db, U3, 0);
    EXPECT_COUNT(db, U4, 0);
    EXPECT_COUNT(db, U5, 0);
    EXPECT_COUNT(db, U6, 1);
    EXPECT_EDGE(db, U2, U6, KZ_FRIEND_MUTUAL);
    EXPECT_EDGE(db, U6, U2, KZ_FRIEND_MUTUAL);
    expect_counts_consistent(db, 6);
    /* Rolled back, nothing happens. */
    befriend(db, U3, U4);
    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_store_friends_delete_user(db, U3));
    DB_OK(db, kz_db_rollback(db));
    EXPECT_EDGE(db, U3, U4, KZ_FRIEND_MUTUAL);
    EXPECT_COUNT(db, U4, 1);
}

/* ---- Concurrency ------------------------------------------------------------------ */

typedef struct racer {
    char *me, *them;
    pthread_barrier_t *start;
    int rc;
} racer_t;

static void *race_add(void *arg)
{
    racer_t *r = arg;
    kz_db_t *db = dbfx_open_again();
    pthread_barrier_wait(r->start);
    r->rc = kz_store_friends_add(db, r->me, IDS(r->them), 1, NULL, NOW, NULL);
    kz_db_close(db);
    return NULL;
}

KZ_DB_TEST(friends, inviting_each_other_at_once_ends_as_friends)
{
    make_users(db, 2);
    for (int round = 0; round < 100; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        racer_t a = {(char *)U1, (char *)U2, &start, -100}, b = {(char *)U2, (char *)U1, &start, -100};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, race_add, &a);
        pthread_create(&tb, NULL, race_add, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&start);
        cr_assert_eq(a.rc, KZ_DB_OK, "[%s] round %d: alice's add returned %d", dbfx.label, round, a.rc);
        cr_assert_eq(b.rc, KZ_DB_OK, "[%s] round %d: bob's add returned %d", dbfx.label, round, b.rc);
        EXPECT_EDGE(db, U1, U2, KZ_FRIEND_MUTUAL);
        EXPECT_EDGE(db, U2, U1, KZ_FRIEND_MUTUAL);
        EXPECT_COUNT(db, U1, 1);
        EXPECT_COUNT(db, U2, 1);
        /* One request and one acceptance, whoever came first. */
        cr_assert_eq(dbfx_count(db, "notification", "code = -2", NULL, 0), 1, "[%s] round %d", dbfx.label,
                     round);
        cr_assert_eq(dbfx_count(db, "notification", "code = -3", NULL, 0), 1, "[%s] round %d", dbfx.label,
                     round);
        DELETE(db, U1, U2);
        DB_OK(db, kz_db_exec(db, "DELETE FROM notification", NULL, 0, NULL));
    }
}

KZ_DB_TEST(friends, get_by_ids_and_metadata_update)
{
    make_users(db, 4);
    ADD(db, U1, U2);   /* U1 -> U2 invite sent */
    BLOCK(db, U1, U3); /* U1 -> U3 blocked */
    kz_friend_t *f;
    int n;
    DB_OK(db, kz_store_friends_get(db, U1, IDS(U3, U4, GHOST, U2), 4, &f, &n));
    cr_assert_eq(n, 2, "[%s] %d edges, want 2", dbfx.label, n);
    cr_assert_str_eq(f[0].user.id, U2);
    cr_assert_str_eq(f[0].user.username, "bob");
    cr_assert_eq(f[0].state, KZ_FRIEND_INVITE_SENT);
    cr_assert_str_eq(f[0].metadata, "{}");
    cr_assert_str_eq(f[1].user.id, U3);
    cr_assert_eq(f[1].state, KZ_FRIEND_BLOCKED);
    kz_friends_free(f, n);
    DB_OK(db, kz_store_friends_get(db, U2, IDS(U1), 1, &f, &n));
    cr_assert_eq(n, 1);
    cr_assert_eq(f[0].state, KZ_FRIEND_INVITE_RECEIVED);
    kz_friends_free(f, n);
    DB_OK(db, kz_store_friends_get(db, U4, IDS(U1, U2), 2, &f, &n));
    cr_assert_eq(n, 0);
    kz_friends_free(f, n);
    DB_OK(db, kz_store_friends_get(db, U1, NULL, 0, &f, &n));
    cr_assert_eq(n, 0);

    /* Metadata of one direction only; the edge's update_time moves. */
    DB_OK(db, kz_store_friend_metadata_update(db, U1, U2, "{\"note\":\"x\"}", NOW + 9000));
    DB_OK(db, kz_store_friends_get(db, U1, IDS(U2), 1, &f, &n));
    cr_assert_str_eq(f[0].metadata, "{\"note\":\"x\"}");
    cr_assert_eq(f[0].update_time, NOW + 9000);
    cr_assert_eq(f[0].state, KZ_FRIEND_INVITE_SENT);
    kz_friends_free(f, n);
    DB_OK(db, kz_store_friends_get(db, U2, IDS(U1), 1, &f, &n));
    cr_assert_str_eq(f[0].metadata, "{}");
    kz_friends_free(f, n);
    DB_OK(db, kz_store_friend_metadata_update(db, U1, U2, NULL, NOW + 9500));
    DB_OK(db, kz_store_friends_get(db, U1, IDS(U2), 1, &f, &n));
    cr_assert_str_eq(f[0].metadata, "{}");
    kz_friends_free(f, n);
    cr_assert_eq(kz_store_friend_metadata_update(db, U1, U4, "{}", NOW), KZ_STORE_NOTFOUND);
    cr_assert_eq(kz_store_friend_metadata_update(db, GHOST, U1, "{}", NOW), KZ_STORE_NOTFOUND);
}
