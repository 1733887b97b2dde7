/* Chat store tests (store/message.h): channel ids (building, parsing,
 * rejecting), and the message history on SQLite and PostgreSQL: insert,
 * listing in (create_time, id) order both ways from a position, per-channel
 * isolation, update and removal of one's own messages only, group
 * membership and direct-message permission checks. */
#include <criterion/criterion.h>

#include "core/uuid.h"
#include "dbfixture.h"
#include "store/account.h"
#include "store/friends.h"
#include "store/groups.h"
#include "store/message.h"

#define NOW INT64_C(1700000000000) /* 2023-11-14T22:13:20Z, whole seconds */

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"

/* ------------------------------------------------------------------------ */
/* Channel ids                                                              */

Test(channel_id, room)
{
    kz_channel_t c;
    cr_assert(kz_channel_room(&c, "lobby"));
    cr_assert_str_eq(c.id, "2...lobby");
    cr_assert_eq(c.mode, KZ_CHAN_ROOM);
    cr_assert_str_eq(c.label, "lobby");
    cr_assert(kz_channel_room(&c, "a.b.c"));
    cr_assert_str_eq(c.id, "2...a.b.c");
    char max[65];
    memset(max, 'x', 64);
    max[64] = '\0';
    cr_assert(kz_channel_room(&c, max));
    cr_assert(kz_channel_room(&c, "caf\xc3\xa9"));
    /* Too long, empty, control characters (C0, DEL, C1), bad UTF-8. */
    char big[66];
    memset(big, 'x', 65);
    big[65] = '\0';
    cr_assert_not(kz_channel_room(&c, big));
    cr_assert_not(kz_channel_room(&c, ""));
    cr_assert_not(kz_channel_room(&c, "a\tb"));
    cr_assert_not(kz_channel_room(&c, "a\x7f"));
    cr_assert_not(kz_channel_room(&c, "a\xc2\x85"));
    cr_assert_not(kz_channel_room(&c, "\xc3"));
    cr_assert_not(kz_channel_room(&c, "\xc0\xaf"));     /* overlong '/' */
    cr_assert_not(kz_channel_room(&c, "\xed\xa0\x80")); /* surrogate */
}

Test(channel_id, group_and_direct)
{
    kz_channel_t c;
    cr_assert(kz_channel_group(&c, "AAAAAAAA-1111-4111-8111-111111111111"));
    cr_assert_str_eq(c.id, "3.aaaaaaaa-1111-4111-8111-111111111111..");
    cr_assert_str_eq(c.subject, "aaaaaaaa-1111-4111-8111-111111111111");
    cr_assert_not(kz_channel_group(&c, "nope"));
    /* Direct: the lower id first, whichever order they come in. */
    cr_assert(kz_channel_direct(&c, U2, U1));
    cr_assert_str_eq(c.id, "4." U1 "." U2 ".");
    cr_assert(kz_channel_direct(&c, U1, U2));
    cr_assert_str_eq(c.id, "4." U1 "." U2 ".");
    cr_assert_str_eq(c.subject, U1);
    cr_assert_str_eq(c.subcontext, U2);
    cr_assert_not(kz_channel_direct(&c, U1, "x"));
}

static bool parse(kz_channel_t *c, const char *s)
{
    return kz_channel_parse(c, s, strlen(s));
}

Test(channel_id, parse)
{
    kz_channel_t c;
    cr_assert(parse(&c, "2...lobby"));
    cr_assert_eq(c.mode, KZ_CHAN_ROOM);
    cr_assert_str_eq(c.label, "lobby");
    cr_assert(parse(&c, "2...with.dots"));
    cr_assert_str_eq(c.label, "with.dots");
    cr_assert(parse(&c, "3." U1 ".."));
    cr_assert_eq(c.mode, KZ_CHAN_GROUP);
    cr_assert_str_eq(c.subject, U1);
    cr_assert(parse(&c, "3.AAAAAAAA-1111-4111-8111-111111111111.."));
    cr_assert_str_eq(c.id, "3.aaaaaaaa-1111-4111-8111-111111111111..");
    cr_assert(parse(&c, "4." U1 "." U2 "."));
    cr_assert_eq(c.mode, KZ_CHAN_DIRECT);
    cr_assert_str_eq(c.subcontext, U2);

    const char *bad[] = {
        "",
        "2..lobby",   /* three parts */
        "2...",       /* empty room */
        "2.x..lobby", /* room with a subject */
        "3..",        /* group without id */
        "3.notauuid..",
        "3." U1 ".x.",
        "3." U1 "..label",
        "4." U2 "." U1 ".", /* out of order */
        "4." U1 "..",
        "4." U1 "." U2 ".x",
        "5...x",
        "22...x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(parse(&c, bad[i]), "accepted %s", bad[i]);
    /* An embedded NUL is not part of a room name. */
    cr_assert_not(kz_channel_parse(&c, "2...a\0b", 7));
}

/* ------------------------------------------------------------------------ */
/* History                                                                  */

static void mkusers(kz_db_t *db)
{
    const char *ids[] = {U1, U2, U3};
    const char *names[] = {"alice", "bob", "carol"};
    for (int i = 0; i < 3; i++) {
        char dev[32];
        snprintf(dev, sizeof dev, "device-%s-0001", names[i]);
        bool taken = true;
        DB_OK(db, kz_store_user_create(db, ids[i], names[i], KZ_ID_DEVICE, dev, NULL, NOW, &taken));
    }
}

/* Stores a message with id, sender and time, content {"n": n}. */
static void put(kz_db_t *db, const kz_channel_t *c, const char *id, const char *sender, int64_t t,
                int n)
{
    char content[32];
    snprintf(content, sizeof content, "{\"n\":%d}", n);
    kz_message_t m = {
        .code = 0, .username = "alice", .content = content, .create_time = t, .update_time = t};
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.sender_id, sizeof m.sender_id, "%s", sender);
    DB_OK(db, kz_store_message_insert(db, c, &m));
}

/* Lists and checks the ids in order. */
static void expect(kz_db_t *db, const kz_channel_t *c, bool asc, const kz_message_pos_t *from,
                   int limit, const char *const *ids, int n)
{
    kz_message_t *v;
    int got;
    DB_OK(db, kz_store_messages_list(db, c, asc, from, limit, &v, &got));
    cr_assert_eq(got, n, "[%s] %d messages, want %d", dbfx.label, got, n);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(v[i].id, ids[i], "[%s] message %d: %s, want %s", dbfx.label, i, v[i].id,
                         ids[i]);
    kz_messages_free(v, got);
}

#define M1 "00000000-0000-7000-8000-000000000001"
#define M2 "00000000-0000-7000-8000-000000000002"
#define M3 "00000000-0000-7000-8000-000000000003"
#define M4 "00000000-0000-7000-8000-000000000004"

KZ_DB_TEST(message_store, insert_and_list_in_order)
{
    kz_channel_t room, other;
    cr_assert(kz_channel_room(&room, "lobby"));
    cr_assert(kz_channel_room(&other, "elsewhere"));
    /* Same second for M2 and M3: the id breaks the tie. Inserted out of order. */
    put(db, &room, M3, U1, NOW + 1000, 3);
    put(db, &room, M1, U1, NOW, 1);
    put(db, &room, M4, U2, NOW + 2000, 4);
    put(db, &room, M2, U2, NOW + 1000, 2);
    put(db, &other, "00000000-0000-7000-8000-0000000000ff", U1, NOW, 9);

    const char *asc[] = {M1, M2, M3, M4};
    const char *desc[] = {M4, M3, M2, M1};
    expect(db, &room, true, NULL, 10, asc, 4);
    expect(db, &room, false, NULL, 10, desc, 4);
    expect(db, &room, true, NULL, 2, asc, 2);
    /* Strictly after a position, both ways. */
    kz_message_pos_t at2 = {NOW + 1000, M2};
    expect(db, &room, true, &at2, 10, asc + 2, 2);
    expect(db, &room, false, &at2, 10, desc + 3, 1);
    kz_message_pos_t start = {0, ""};
    expect(db, &room, true, &start, 10, asc, 4);

    kz_message_t *v;
    int n;
    DB_OK(db, kz_store_messages_list(db, &room, true, NULL, 1, &v, &n));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].sender_id, U1);
    cr_assert_str_eq(v[0].username, "alice");
    cr_assert_str_eq(v[0].content, "{\"n\":1}");
    cr_assert_eq(v[0].create_time, NOW);
    cr_assert_eq(v[0].update_time, NOW);
    cr_assert_eq(v[0].code, 0);
    kz_messages_free(v, n);

    /* Channels do not see each other's messages; a direct and a group
     * channel neither. */
    kz_channel_t dm, grp;
    cr_assert(kz_channel_direct(&dm, U1, U2));
    cr_assert(kz_channel_group(&grp, U3));
    expect(db, &dm, true, NULL, 10, NULL, 0);
    put(db, &dm, "00000000-0000-7000-8000-0000000000aa", U1, NOW, 1);
    const char *dm_ids[] = {"00000000-0000-7000-8000-0000000000aa"};
    expect(db, &dm, true, NULL, 10, dm_ids, 1);
    expect(db, &grp, true, NULL, 10, NULL, 0);
}

KZ_DB_TEST(message_store, update_and_remove_own_only)
{
    kz_channel_t room, other;
    cr_assert(kz_channel_room(&room, "lobby"));
    cr_assert(kz_channel_room(&other, "elsewhere"));
    put(db, &room, M1, U1, NOW, 1);
    int64_t created = 0;
    /* Someone else's message, a wrong channel, an unknown id: not found. */
    DB_RC(db, kz_store_message_update(db, &room, M1, U2, "bob", "{\"x\":1}", NOW + 5000, &created),
          KZ_STORE_NOTFOUND);
    DB_RC(db,
          kz_store_message_update(db, &other, M1, U1, "alice", "{\"x\":1}", NOW + 5000, &created),
          KZ_STORE_NOTFOUND);
    DB_RC(db,
          kz_store_message_update(db, &room, M2, U1, "alice", "{\"x\":1}", NOW + 5000, &created),
          KZ_STORE_NOTFOUND);
    DB_OK(db,
          kz_store_message_update(db, &room, M1, U1, "alice2", "{\"x\":2}", NOW + 5000, &created));
    cr_assert_eq(created, NOW);
    kz_message_t *v;
    int n;
    DB_OK(db, kz_store_messages_list(db, &room, true, NULL, 10, &v, &n));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].content, "{\"x\":2}");
    cr_assert_str_eq(v[0].username, "alice2");
    cr_assert_eq(v[0].create_time, NOW);
    cr_assert_eq(v[0].update_time, NOW + 5000);
    kz_messages_free(v, n);

    DB_RC(db, kz_store_message_remove(db, &room, M1, U2, &created), KZ_STORE_NOTFOUND);
    DB_RC(db, kz_store_message_remove(db, &other, M1, U1, &created), KZ_STORE_NOTFOUND);
    created = 0;
    DB_OK(db, kz_store_message_remove(db, &room, M1, U1, &created));
    cr_assert_eq(created, NOW);
    expect(db, &room, true, NULL, 10, NULL, 0);
    DB_RC(db, kz_store_message_remove(db, &room, M1, U1, NULL), KZ_STORE_NOTFOUND);
}

KZ_DB_TEST(message_store, group_membership)
{
    mkusers(db);
    kz_group_new_t in = {.creator_id = U1, .name = "chatters", .open = false, .max_count = 10};
    kz_group_t g;
    DB_OK(db, kz_store_group_create(db, &in, NOW, &g));
    bool member = false;
    DB_OK(db, kz_store_message_group_member(db, g.id, U1, &member));
    cr_assert(member, "[%s] the superadmin is a member", dbfx.label);
    DB_OK(db, kz_store_message_group_member(db, g.id, U2, &member));
    cr_assert_not(member, "[%s] a stranger is not", dbfx.label);
    /* A join request (closed group) is not membership. */
    int state = -1;
    DB_OK(db, kz_store_group_join(db, g.id, U2, NOW, &state));
    cr_assert_eq(state, KZ_GROUP_JOIN_REQUEST);
    DB_OK(db, kz_store_message_group_member(db, g.id, U2, &member));
    cr_assert_not(member);
    char *add[] = {U2};
    DB_OK(db, kz_store_group_users_add(db, g.id, U1, add, 1, NOW));
    DB_OK(db, kz_store_message_group_member(db, g.id, U2, &member));
    cr_assert(member);
    /* Banned is not membership. */
    DB_OK(db, kz_store_group_users_ban(db, g.id, U1, add, 1, NOW));
    DB_OK(db, kz_store_message_group_member(db, g.id, U2, &member));
    cr_assert_not(member);
    DB_OK(db, kz_store_message_group_member(db, U3, U1, &member));
    cr_assert_not(member, "[%s] no such group", dbfx.label);
    kz_group_clear(&g);
}

KZ_DB_TEST(message_store, direct_permission)
{
    mkusers(db);
    bool ok = false;
    DB_OK(db, kz_store_message_direct_allowed(db, U2, U1, &ok));
    cr_assert(ok);
    DB_OK(db, kz_store_message_direct_allowed(db, "44444444-4444-4444-8444-444444444444", U1, &ok));
    cr_assert_not(ok, "[%s] unknown user", dbfx.label);
    DB_OK(db, kz_store_message_direct_allowed(db, KZ_UUID_NIL, U1, &ok));
    cr_assert_not(ok, "[%s] the system user", dbfx.label);
    /* U2 blocks U1: U1 may not open a channel with U2, U2 still may. */
    char *ids[] = {U1};
    DB_OK(db, kz_store_friends_block(db, U2, ids, 1, NOW));
    DB_OK(db, kz_store_message_direct_allowed(db, U2, U1, &ok));
    cr_assert_not(ok);
    DB_OK(db, kz_store_message_direct_allowed(db, U1, U2, &ok));
    cr_assert(ok);
}
