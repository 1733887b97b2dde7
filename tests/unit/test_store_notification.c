/* Notification store tests (store/notification.h): adding (persistent ones
 * only, ids and times filled in), listing in (create_time, id) order from a
 * position, deleting only the owner's, and account deletion. Every test
 * runs on SQLite and on PostgreSQL (see dbfixture.h). */
#include <criterion/criterion.h>

#include "core/clock.h"
#include "core/uuid.h"
#include "dbfixture.h"
#include "store/account.h"
#include "store/notification.h"

#define NOW INT64_C(1700000000000) /* 2023-11-14T22:13:20Z */

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"

/* A persistent notification for user at time t with code. */
static kz_notification_t note(const char *user, int64_t t, int code, const char *subject)
{
    return (kz_notification_t){
        .user_id = user,
        .subject = subject,
        .content = "{\"k\":1}",
        .code = code,
        .sender_id = U2,
        .persistent = true,
        .create_time = t,
    };
}

/* Lists user's notifications after (t, id) and checks the subjects. */
static void expect_list(kz_db_t *db, const char *user, int limit, int64_t t, const char *id,
                        const char *const *subjects, int n)
{
    kz_stored_notification_t *list;
    int got;
    DB_OK(db, kz_store_notifications_list(db, user, limit, t, id, &list, &got));
    cr_assert_eq(got, n, "[%s] %d notifications, want %d", dbfx.label, got, n);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(list[i].subject, subjects[i], "[%s] entry %d: %s, want %s", dbfx.label, i, list[i].subject,
                         subjects[i]);
    kz_stored_notifications_free(list, got);
}

KZ_DB_TEST(notification, add_stores_persistent_ones_with_ids)
{
    kz_notification_t n[3] = {note(U1, NOW, 5, "one"), note(U1, 0, -2, "two"), note(U1, NOW, 7, "live only")};
    n[1].sender_id = NULL;
    n[1].content = NULL;
    n[2].persistent = false;
    int64_t before = kz_now_ms();
    DB_OK(db, kz_store_notifications_add(db, n, 3));
    /* Ids and times are filled for all, stored only for persistent ones. */
    for (int i = 0; i < 3; i++) {
        cr_assert(kz_uuid_valid(n[i].id, strlen(n[i].id)), "[%s] id %d: %s", dbfx.label, i, n[i].id);
        cr_assert_geq(kz_uuid_v7_ms(n[i].id, 36), 0, "[%s] ids are version 7", dbfx.label);
    }
    cr_assert_eq(n[0].create_time, NOW);
    cr_assert_geq(n[1].create_time, before);
    cr_assert_leq(n[1].create_time, kz_now_ms());
    cr_assert_eq(kz_uuid_v7_ms(n[1].id, 36), n[1].create_time, "[%s] the id carries the time", dbfx.label);
    cr_assert_eq(dbfx_count(db, "notification", NULL, NULL, 0), 2);

    kz_stored_notification_t *list;
    int got;
    DB_OK(db, kz_store_notifications_list(db, U1, 10, 0, NULL, &list, &got));
    cr_assert_eq(got, 2);
    cr_assert_str_eq(list[0].id, n[0].id);
    cr_assert_str_eq(list[0].subject, "one");
    cr_assert_str_eq(list[0].content, "{\"k\":1}");
    cr_assert_eq(list[0].code, 5);
    cr_assert_str_eq(list[0].sender_id, U2);
    cr_assert_eq(list[0].create_time, NOW);
    /* A system notification: no sender (stored as the nil UUID), content {}. */
    cr_assert_str_eq(list[1].subject, "two");
    cr_assert_str_eq(list[1].sender_id, "");
    cr_assert_str_eq(list[1].content, "{}");
    cr_assert_eq(list[1].code, -2);
    kz_stored_notifications_free(list, got);
    kz_dbval_t p[] = {KZ_DBTEXT(n[1].id)};
    cr_assert_eq(dbfx_count(db, "notification", "id = $1 AND sender_id = '00000000-0000-0000-0000-000000000000'",
                            p, 1),
                 1);
    /* A given id is kept. */
    kz_notification_t own = note(U2, NOW, 1, "mine");
    memcpy(own.id, "abcdef00-0000-4000-8000-000000000001", 37);
    DB_OK(db, kz_store_notifications_add(db, &own, 1));
    cr_assert_str_eq(own.id, "abcdef00-0000-4000-8000-000000000001");
    kz_dbval_t q[] = {KZ_DBTEXT(own.id)};
    cr_assert_eq(dbfx_count(db, "notification", "id = $1", q, 1), 1);
}

KZ_DB_TEST(notification, list_in_order_after_a_position)
{
    kz_notification_t n[4] = {note(U1, NOW + 2000, 1, "d"), note(U1, NOW, 1, "a"), note(U1, NOW + 1000, 1, "b"),
                              note(U2, NOW, 1, "other user")};
    DB_OK(db, kz_store_notifications_add(db, n, 4));
    kz_notification_t c = note(U1, NOW + 1000, 1, "c");
    DB_OK(db, kz_store_notifications_add(db, &c, 1));
    /* b and c share a millisecond: the id decides. */
    bool b_first = strcmp(n[2].id, c.id) < 0;
    const char *all[] = {"a", b_first ? "b" : "c", b_first ? "c" : "b", "d"};
    const char *second_id = b_first ? n[2].id : c.id, *third_id = b_first ? c.id : n[2].id;
    expect_list(db, U1, 100, 0, NULL, all, 4);
    expect_list(db, U1, 100, 0, "", all, 4);
    expect_list(db, U1, 2, 0, NULL, all, 2);
    /* After a: the three others; after the first of the pair: its twin, d. */
    expect_list(db, U1, 100, NOW, n[1].id, all + 1, 3);
    expect_list(db, U1, 1, NOW + 1000, second_id, all + 2, 1);
    expect_list(db, U1, 100, NOW + 1000, third_id, all + 3, 1);
    expect_list(db, U1, 100, NOW + 2000, n[0].id, NULL, 0);
    /* A time alone past the last one. */
    expect_list(db, U1, 100, NOW + 5000, "00000000-0000-0000-0000-000000000000", NULL, 0);
    const char *other[] = {"other user"};
    expect_list(db, U2, 100, 0, NULL, other, 1);
}

KZ_DB_TEST(notification, delete_only_the_owners)
{
    kz_notification_t n[3] = {note(U1, NOW, 1, "a"), note(U1, NOW + 1, 1, "b"), note(U2, NOW, 1, "theirs")};
    DB_OK(db, kz_store_notifications_add(db, n, 3));
    int64_t deleted = -1;
    /* U1 names their own a, U2's notification, and an unknown id. */
    char *ids[] = {n[0].id, n[2].id, "abcdef00-0000-4000-8000-000000000009"};
    DB_OK(db, kz_store_notifications_delete(db, U1, ids, 3, &deleted));
    cr_assert_eq(deleted, 1);
    const char *left[] = {"b"};
    expect_list(db, U1, 10, 0, NULL, left, 1);
    const char *theirs[] = {"theirs"};
    expect_list(db, U2, 10, 0, NULL, theirs, 1);
    DB_OK(db, kz_store_notifications_delete(db, U1, NULL, 0, &deleted));
    cr_assert_eq(deleted, 0);
}

KZ_DB_TEST(notification, delete_user_removes_what_they_received)
{
    kz_notification_t n[3] = {note(U1, NOW, 1, "a"), note(U1, NOW + 1, 1, "b"), note(U2, NOW, 1, "theirs")};
    n[2].sender_id = U1; /* sent by U1: stays with its recipient */
    DB_OK(db, kz_store_notifications_add(db, n, 3));
    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_store_notifications_delete_user(db, U1));
    DB_OK(db, kz_db_commit(db));
    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    cr_assert_eq(dbfx_count(db, "notification", "user_id = $1", p, 1), 0);
    cr_assert_eq(dbfx_count(db, "notification", NULL, NULL, 0), 1);
}

KZ_DB_TEST(notification, get_by_ids_with_or_without_owner)
{
    kz_notification_t n[3] = {note(U1, NOW + 1, 1, "b"), note(U1, NOW, 2, "a"), note(U2, NOW + 2, 3, "theirs")};
    n[1].sender_id = NULL;
    DB_OK(db, kz_store_notifications_add(db, n, 3));
    char *ids[] = {n[2].id, n[0].id, "99999999-9999-4999-8999-999999999999", n[1].id};
    kz_stored_notification_t *v;
    int got;
    DB_OK(db, kz_store_notifications_get(db, ids, 4, NULL, &v, &got));
    cr_assert_eq(got, 3, "[%s] %d, want 3", dbfx.label, got);
    const char *subjects[] = {"a", "b", "theirs"}, *owners[] = {U1, U1, U2};
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(v[i].subject, subjects[i]);
        cr_assert_str_eq(v[i].user_id, owners[i]);
    }
    cr_assert_str_eq(v[0].sender_id, "");
    cr_assert_str_eq(v[1].sender_id, U2);
    cr_assert_eq(v[1].code, 1);
    cr_assert_eq(v[1].create_time, NOW + 1);
    cr_assert_str_eq(v[1].content, "{\"k\":1}");
    kz_stored_notifications_free(v, got);
    DB_OK(db, kz_store_notifications_get(db, ids, 4, U2, &v, &got));
    cr_assert_eq(got, 1);
    cr_assert_str_eq(v[0].id, n[2].id);
    kz_stored_notifications_free(v, got);
    DB_OK(db, kz_store_notifications_get(db, ids, 0, "", &v, &got));
    cr_assert_eq(got, 0);
}

KZ_DB_TEST(notification, update_is_all_or_nothing)
{
    kz_notification_t n[2] = {note(U1, NOW, 1, "a"), note(U1, NOW + 1, 2, "b")};
    DB_OK(db, kz_store_notifications_add(db, n, 2));
    kz_notification_update_t u[2] = {{.id = n[0].id, .subject = "a2", .content = "{\"x\":2}"},
                                     {.id = n[1].id, .sender_id = ""}};
    int missing = 7;
    DB_OK(db, kz_store_notifications_update(db, u, 2, &missing));
    cr_assert_eq(missing, -1);
    kz_stored_notification_t *v;
    int got;
    DB_OK(db, kz_store_notifications_list(db, U1, 10, 0, NULL, &v, &got));
    cr_assert_eq(got, 2);
    cr_assert_str_eq(v[0].subject, "a2");
    cr_assert_str_eq(v[0].content, "{\"x\":2}");
    cr_assert_str_eq(v[0].sender_id, U2);
    cr_assert_str_eq(v[1].subject, "b");
    cr_assert_str_eq(v[1].sender_id, "");
    kz_stored_notifications_free(v, got);

    kz_notification_update_t bad[2] = {{.id = n[1].id, .subject = "never"},
                                       {.id = "99999999-9999-4999-8999-999999999999", .subject = "x"}};
    cr_assert_eq(kz_store_notifications_update(db, bad, 2, &missing), KZ_STORE_NOTFOUND);
    cr_assert_eq(missing, 1);
    kz_dbval_t p[] = {KZ_DBTEXT("never")};
    cr_assert_eq(dbfx_count(db, "notification", "subject = $1", p, 1), 0, "[%s] rolled back", dbfx.label);
}

static int sink_calls, sink_count;
static void count_sink(const kz_notification_t *n, int count, bool in_tx)
{
    (void)n;
    (void)in_tx;
    sink_calls++;
    sink_count += count;
}

KZ_DB_TEST(notification, send_all_in_batches)
{
    /* Five users besides the system user. */
    for (int i = 0; i < 5; i++) {
        char id[37], name[16], dev[32];
        snprintf(id, sizeof id, "%08d-0000-4000-8000-000000000000", i + 1);
        snprintf(name, sizeof name, "user%d", i);
        snprintf(dev, sizeof dev, "device-user%d-0001", i);
        bool taken = true;
        DB_OK(db, kz_store_user_create(db, id, name, KZ_ID_DEVICE, dev, NULL, NOW, &taken));
    }
    kz_store_set_notification_sink(count_sink);
    kz_notification_t t = {.subject = "all", .content = "{\"k\":1}", .code = 9, .persistent = true};
    int64_t sent = 0;
    DB_OK(db, kz_store_notifications_send_all(db, &t, 2, &sent));
    cr_assert_eq(sent, 5, "[%s] sent to %lld", dbfx.label, (long long)sent);
    cr_assert_eq(sink_calls, 3, "[%s] %d batches, want 3", dbfx.label, sink_calls);
    cr_assert_eq(sink_count, 5);
    kz_dbval_t p[] = {KZ_DBTEXT("all")};
    cr_assert_eq(dbfx_count(db, "notification", "subject = $1", p, 1), 5);
    kz_dbval_t q[] = {KZ_DBTEXT("00000000-0000-0000-0000-000000000000")};
    cr_assert_eq(dbfx_count(db, "notification", "user_id = $1", q, 1), 0, "[%s] not the system user", dbfx.label);
    /* Not persistent: pushed, not stored. */
    t.persistent = false;
    t.subject = "live";
    DB_OK(db, kz_store_notifications_send_all(db, &t, 1000, &sent));
    cr_assert_eq(sent, 5);
    cr_assert_eq(sink_count, 10);
    kz_dbval_t r[] = {KZ_DBTEXT("live")};
    cr_assert_eq(dbfx_count(db, "notification", "subject = $1", r, 1), 0);
    kz_store_set_notification_sink(NULL);
}
