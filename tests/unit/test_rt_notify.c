/* Unit tests for realtime/notify: the pushed JSON of a notification, and the
 * per-thread outbox that holds notifications until their transaction ends
 * (no server runs here: pushing to nobody is a no-op). */
#include "realtime/notify.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

Test(rt_notify, json_of_a_user_sent_notification)
{
    kz_notification_t n = {.id = "0190f1d2-3a4b-7c5d-8e6f-0a1b2c3d4e5f",
                           .user_id = "u1",
                           .subject = "bob wants to add you as a friend",
                           .content = "{\"username\":\"bob\"}",
                           .code = -2,
                           .sender_id = "11111111-2222-4333-8444-555555555555",
                           .persistent = true,
                           .create_time = 1700000000999};
    const kz_notification_t *v[] = {&n};
    char *s = dump(kz_rt_notifications_json(v, 1));
    cr_assert_str_eq(s, "{\"notifications\":[{\"id\":\"0190f1d2-3a4b-7c5d-8e6f-0a1b2c3d4e5f\","
                        "\"subject\":\"bob wants to add you as a friend\","
                        "\"content\":\"{\\\"username\\\":\\\"bob\\\"}\",\"code\":-2,"
                        "\"sender_id\":\"11111111-2222-4333-8444-555555555555\","
                        "\"create_time\":\"2023-11-14T22:13:20Z\",\"persistent\":true}]}");
    free(s);
}

Test(rt_notify, system_sender_is_the_nil_uuid_and_zero_fields_are_omitted)
{
    kz_notification_t a = {.id = "a", .user_id = "u", .code = 0, .sender_id = NULL};
    kz_notification_t b = {
        .id = "b", .user_id = "u", .subject = "", .content = "", .code = 5, .sender_id = ""};
    const kz_notification_t *v[] = {&a, &b};
    char *s = dump(kz_rt_notifications_json(v, 2));
    cr_assert_str_eq(
        s,
        "{\"notifications\":["
        "{\"id\":\"a\",\"content\":\"{}\",\"sender_id\":\"00000000-0000-0000-0000-000000000000\"},"
        "{\"id\":\"b\",\"content\":\"{}\",\"code\":5,"
        "\"sender_id\":\"00000000-0000-0000-0000-000000000000\"}]}");
    free(s);
}

Test(rt_notify, outbox_keeps_copies_until_flush_or_discard)
{
    char subject[] = "hello";
    kz_notification_t n[2] = {{.user_id = "u1", .subject = subject, .code = 1},
                              {.user_id = "u2", .subject = "x", .code = 2}};
    cr_assert_eq(kz_rt_notify_pending(), 0);
    kz_rt_notify_defer(n, 2);
    subject[0] = 'j'; /* the outbox holds its own copy */
    cr_assert_eq(kz_rt_notify_pending(), 2);
    kz_rt_notify_discard(); /* a rollback */
    cr_assert_eq(kz_rt_notify_pending(), 0);
    kz_rt_notify_defer(n, 1);
    kz_rt_notify_defer(n + 1, 1);
    cr_assert_eq(kz_rt_notify_pending(), 2);
    kz_rt_notify_flush(); /* a commit: nobody is connected, nothing to send */
    cr_assert_eq(kz_rt_notify_pending(), 0);
    kz_rt_notify_flush();
    kz_rt_notify_discard();
    cr_assert_eq(kz_rt_notify_pending(), 0);
}

static void *other_thread(void *arg)
{
    *(int *)arg = kz_rt_notify_pending();
    kz_notification_t n = {.user_id = "u3"};
    kz_rt_notify_defer(&n, 1);
    kz_rt_notify_discard();
    return NULL;
}

Test(rt_notify, outbox_is_per_thread)
{
    kz_notification_t n = {.user_id = "u1"};
    kz_rt_notify_defer(&n, 1);
    int seen = -1;
    pthread_t t;
    pthread_create(&t, NULL, other_thread, &seen);
    pthread_join(t, NULL);
    cr_assert_eq(seen, 0);
    cr_assert_eq(kz_rt_notify_pending(), 1);
    kz_rt_notify_discard();
}

Test(rt_notify, pushing_to_nobody_is_a_no_op)
{
    kz_notification_t n[3] = {{.user_id = "b"}, {.user_id = "a"}, {.user_id = NULL}};
    kz_rt_notify(n, 3);
    kz_rt_notify(n, 0);
}
