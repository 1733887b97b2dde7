/* Group store tests (store/groups.h): create/update/delete, join and leave,
 * the admin actions with Nakama's role rules, the listings and their
 * resume positions, the notifications joins and adds leave, and the cleanup
 * on account deletion with superadmin succession. Every test runs on SQLite
 * and on PostgreSQL (fresh, migrated database each; see dbfixture.h). */
#include <criterion/criterion.h>

#include "dbfixture.h"
#include "store/account.h"
#include "store/groups.h"
#include "store/message.h"

#define NOW INT64_C(1700000000000) /* 2023-11-14T22:13:20Z */

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"
#define U4 "44444444-4444-4444-8444-444444444444"
#define U5 "55555555-5555-4555-8555-555555555555"
#define GHOST "99999999-9999-4999-8999-999999999999"

/* ---- Helpers --------------------------------------------------------------- */

#define ASSERT_STR(got, want, what)                                                                \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!w_)                                                                                   \
            cr_assert_null(g_, "[%s] %s: got \"%s\", want NULL", dbfx.label, what, g_);            \
        else {                                                                                     \
            cr_assert_not_null(g_, "[%s] %s: got NULL, want \"%s\"", dbfx.label, what, w_);        \
            cr_assert_str_eq(g_, w_, "[%s] %s: got \"%s\", want \"%s\"", dbfx.label, what, g_,     \
                             w_);                                                                  \
        }                                                                                          \
    } while (0)

/* Creates users U1..U5 named alice, bob, carol, dave, erin. */
static void mkusers(kz_db_t *db)
{
    const char *ids[] = {U1, U2, U3, U4, U5};
    const char *names[] = {"alice", "bob", "carol", "dave", "erin"};
    for (int i = 0; i < 5; i++) {
        char dev[32];
        snprintf(dev, sizeof dev, "device-%s-0001", names[i]);
        bool taken = true;
        DB_OK(db, kz_store_user_create(db, ids[i], names[i], KZ_ID_DEVICE, dev, NULL, NOW, &taken));
    }
}

/* Creates a group owned by creator; copies its id into id. */
static void mkgroup(kz_db_t *db, const char *creator, const char *name, bool open,
                    int64_t max_count, char id[37])
{
    kz_group_new_t in = {.creator_id = creator, .name = name, .open = open, .max_count = max_count};
    kz_group_t g;
    DB_OK(db, kz_store_group_create(db, &in, NOW, &g));
    memcpy(id, g.id, 37);
    kz_group_clear(&g);
}

/* The user's state in the group (group -> user edge), -1 when none. */
static int state_of(kz_db_t *db, const char *gid, const char *uid)
{
    kz_dbval_t p[] = {KZ_DBTEXT(gid), KZ_DBTEXT(uid)};
    if (dbfx_count(db, "group_edge", "source_id = $1 AND destination_id = $2", p, 2) == 0)
        return -1;
    return (int)dbfx_query_int(
        db, "SELECT state FROM group_edge WHERE source_id = $1 AND destination_id = $2", p, 2);
}

/* The state of the user -> group edge, -1 when none. */
static int back_state_of(kz_db_t *db, const char *gid, const char *uid)
{
    kz_dbval_t p[] = {KZ_DBTEXT(uid), KZ_DBTEXT(gid)};
    if (dbfx_count(db, "group_edge", "source_id = $1 AND destination_id = $2", p, 2) == 0)
        return -1;
    return (int)dbfx_query_int(
        db, "SELECT state FROM group_edge WHERE source_id = $1 AND destination_id = $2", p, 2);
}

/* Asserts the membership state both ways (a ban has no user -> group edge). */
static void expect_state(kz_db_t *db, const char *gid, const char *uid, int want)
{
    int s = state_of(db, gid, uid), b = back_state_of(db, gid, uid);
    cr_assert_eq(s, want, "[%s] state of %s: %d, want %d", dbfx.label, uid, s, want);
    int wb = want == KZ_GROUP_BANNED ? -1 : want;
    cr_assert_eq(b, wb, "[%s] back edge state of %s: %d, want %d", dbfx.label, uid, b, wb);
}

static int64_t edge_count(kz_db_t *db, const char *gid)
{
    kz_dbval_t p[] = {KZ_DBTEXT(gid)};
    return dbfx_query_int(db, "SELECT edge_count FROM groups WHERE id = $1", p, 1);
}

/* Asserts edge_count and that it equals the number of members (states 0..2). */
static void expect_count(kz_db_t *db, const char *gid, int64_t want)
{
    int64_t c = edge_count(db, gid);
    cr_assert_eq(c, want, "[%s] edge_count %lld, want %lld", dbfx.label, (long long)c,
                 (long long)want);
    kz_dbval_t p[] = {KZ_DBTEXT(gid)};
    int64_t members = dbfx_count(db, "group_edge", "source_id = $1 AND state <= 2", p, 1);
    cr_assert_eq(members, want, "[%s] %lld member edges, want %lld", dbfx.label, (long long)members,
                 (long long)want);
}

static int64_t notes_of(kz_db_t *db, const char *uid, int code)
{
    kz_dbval_t p[] = {KZ_DBTEXT(uid), KZ_DBINT(code)};
    return dbfx_count(db, "notification", "user_id = $1 AND code = $2", p, 2);
}

static int64_t groups_count(kz_db_t *db)
{
    return dbfx_count(db, "groups", NULL, NULL, 0);
}

/* A group of U1 (superadmin) with U2 admin, U3 member; open unless told. */
static void mkclan(kz_db_t *db, bool open, char gid[37])
{
    mkusers(db);
    mkgroup(db, U1, "clan", true, 100, gid);
    DB_OK(db, kz_store_group_join(db, gid, U2, NOW, NULL));
    DB_OK(db, kz_store_group_join(db, gid, U3, NOW, NULL));
    char *ids[] = {U2};
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, ids, 1, NOW));
    if (!open) {
        kz_group_update_t u = {.open = 0};
        DB_OK(db, kz_store_group_update(db, gid, U1, &u, NOW));
    }
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    expect_state(db, gid, U2, KZ_GROUP_ADMIN);
    expect_state(db, gid, U3, KZ_GROUP_MEMBER);
    expect_count(db, gid, 3);
}

/* ---- Create, get, update, delete ----------------------------------------------- */

KZ_DB_TEST(groups, create_defaults_and_get)
{
    mkusers(db);
    kz_group_new_t in = {.creator_id = U1, .name = "Knights", .open = false, .max_count = 100};
    kz_group_t g;
    DB_OK(db, kz_store_group_create(db, &in, NOW + 5, &g));
    cr_assert_eq(strlen(g.id), 36);
    cr_assert_eq(g.id[14], '4', "[%s] a version 4 id: %s", dbfx.label, g.id);
    cr_assert_str_eq(g.creator_id, U1);
    ASSERT_STR(g.name, "Knights", "name");
    ASSERT_STR(g.lang_tag, "en", "lang_tag");
    ASSERT_STR(g.metadata, "{}", "metadata");
    ASSERT_STR(g.description, NULL, "description");
    ASSERT_STR(g.avatar_url, NULL, "avatar_url");
    cr_assert(!g.open);
    cr_assert_eq(g.edge_count, 1);
    cr_assert_eq(g.max_count, 100);
    cr_assert_eq(g.create_time, NOW + 5);
    cr_assert_eq(g.update_time, NOW + 5);

    kz_group_t r;
    DB_OK(db, kz_store_group_get(db, g.id, &r));
    cr_assert_str_eq(r.id, g.id);
    cr_assert_str_eq(r.creator_id, U1);
    ASSERT_STR(r.name, "Knights", "stored name");
    ASSERT_STR(r.lang_tag, "en", "stored lang_tag");
    ASSERT_STR(r.metadata, "{}", "stored metadata");
    ASSERT_STR(r.description, NULL, "stored description");
    cr_assert(!r.open);
    cr_assert_eq(r.edge_count, 1);
    cr_assert_eq(r.max_count, 100);
    cr_assert_eq(r.create_time, NOW + 5);
    expect_state(db, g.id, U1, KZ_GROUP_SUPERADMIN);
    kz_group_clear(&r);
    kz_group_clear(&g);

    DB_RC(db, kz_store_group_get(db, GHOST, &r), KZ_STORE_NOTFOUND);
}

KZ_DB_TEST(groups, create_all_fields_and_name_conflict)
{
    mkusers(db);
    kz_group_new_t in = {.creator_id = U2,
                         .name = "Owls",
                         .description = "night birds",
                         .lang_tag = "fr",
                         .avatar_url = "https://example.com/owl.png",
                         .metadata = "{\"k\":1}",
                         .open = true,
                         .max_count = 7};
    kz_group_t g;
    DB_OK(db, kz_store_group_create(db, &in, NOW, &g));
    kz_group_t r;
    DB_OK(db, kz_store_group_get(db, g.id, &r));
    ASSERT_STR(r.description, "night birds", "description");
    ASSERT_STR(r.lang_tag, "fr", "lang_tag");
    ASSERT_STR(r.avatar_url, "https://example.com/owl.png", "avatar_url");
    ASSERT_STR(r.metadata, "{\"k\":1}", "metadata");
    cr_assert(r.open);
    cr_assert_eq(r.max_count, 7);
    kz_group_clear(&r);
    kz_group_clear(&g);

    /* Same name: refused, and nothing of the second group is left. */
    in.creator_id = U3;
    DB_RC(db, kz_store_group_create(db, &in, NOW, &g), KZ_DB_ECONFLICT);
    cr_assert_eq(groups_count(db), 1);
    kz_dbval_t p[] = {KZ_DBTEXT(U3)};
    cr_assert_eq(dbfx_count(db, "group_edge", "source_id = $1 OR destination_id = $1", p, 1), 0);
}

KZ_DB_TEST(groups, update_permissions_and_fields)
{
    char gid[37];
    mkclan(db, true, gid);
    kz_group_update_t u = {.name = "Renamed", .open = -1};
    /* A member, a stranger and an unknown group: refused. */
    DB_RC(db, kz_store_group_update(db, gid, U3, &u, NOW + 1), KZ_GROUP_EPERM);
    DB_RC(db, kz_store_group_update(db, gid, U4, &u, NOW + 1), KZ_GROUP_EPERM);
    DB_RC(db, kz_store_group_update(db, GHOST, U1, &u, NOW + 1), KZ_GROUP_EPERM);
    kz_group_t g;
    DB_OK(db, kz_store_group_get(db, gid, &g));
    ASSERT_STR(g.name, "clan", "unchanged name");
    kz_group_clear(&g);

    /* An admin may; nothing to change is its own error (after the role check). */
    kz_group_update_t none = {.open = -1};
    DB_RC(db, kz_store_group_update(db, gid, U2, &none, NOW + 1), KZ_GROUP_ENOFIELDS);
    DB_RC(db, kz_store_group_update(db, gid, U3, &none, NOW + 1), KZ_GROUP_EPERM);
    kz_group_update_t all = {.name = "Renamed",
                             .description = "desc",
                             .lang_tag = "de",
                             .avatar_url = "a.png",
                             .open = 0,
                             .max_count = 0};
    DB_OK(db, kz_store_group_update(db, gid, U2, &all, NOW + 9));
    DB_OK(db, kz_store_group_get(db, gid, &g));
    ASSERT_STR(g.name, "Renamed", "name");
    ASSERT_STR(g.description, "desc", "description");
    ASSERT_STR(g.lang_tag, "de", "lang_tag");
    ASSERT_STR(g.avatar_url, "a.png", "avatar_url");
    cr_assert(!g.open);
    cr_assert_eq(g.update_time, NOW + 9);
    cr_assert_eq(g.max_count, 100);
    kz_group_clear(&g);

    /* Empty description / avatar clear them; open back on. */
    kz_group_update_t clear = {.description = "", .avatar_url = "", .open = 1};
    DB_OK(db, kz_store_group_update(db, gid, U1, &clear, NOW + 10));
    DB_OK(db, kz_store_group_get(db, gid, &g));
    ASSERT_STR(g.description, NULL, "cleared description");
    ASSERT_STR(g.avatar_url, NULL, "cleared avatar_url");
    cr_assert(g.open);
    kz_group_clear(&g);

    /* The name of another group. */
    char other[37];
    mkgroup(db, U4, "Other", true, 10, other);
    kz_group_update_t clash = {.name = "Other", .open = -1};
    DB_RC(db, kz_store_group_update(db, gid, U1, &clash, NOW + 11), KZ_DB_ECONFLICT);
    DB_OK(db, kz_store_group_get(db, gid, &g));
    ASSERT_STR(g.name, "Renamed", "name after clash");
    kz_group_clear(&g);

    /* The system (NULL caller) may, and sees a missing group as not updated. */
    kz_group_update_t sys = {.metadata = "{\"x\":2}", .max_count = 50, .open = -1};
    DB_OK(db, kz_store_group_update(db, gid, NULL, &sys, NOW + 12));
    DB_OK(db, kz_store_group_get(db, gid, &g));
    ASSERT_STR(g.metadata, "{\"x\":2}", "metadata");
    cr_assert_eq(g.max_count, 50);
    kz_group_clear(&g);
    DB_RC(db, kz_store_group_update(db, GHOST, NULL, &sys, NOW), KZ_GROUP_ENOTUPDATED);
}

KZ_DB_TEST(groups, delete_superadmin_only)
{
    char gid[37];
    mkclan(db, true, gid);
    DB_RC(db, kz_store_group_delete(db, gid, U2), KZ_GROUP_EPERM); /* admin */
    DB_RC(db, kz_store_group_delete(db, gid, U3), KZ_GROUP_EPERM); /* member */
    DB_RC(db, kz_store_group_delete(db, gid, U4), KZ_GROUP_EPERM); /* stranger */
    DB_RC(db, kz_store_group_delete(db, GHOST, U1), KZ_GROUP_EPERM);
    cr_assert_eq(groups_count(db), 1);
    DB_OK(db, kz_store_group_delete(db, gid, U1));
    cr_assert_eq(groups_count(db), 0);
    cr_assert_eq(dbfx_count(db, "group_edge", NULL, NULL, 0), 0);
    DB_OK(db, kz_store_group_delete(db, gid, NULL)); /* the system: already gone is fine */
}

/* ---- Join and leave -------------------------------------------------------------- */

KZ_DB_TEST(groups, join_open_and_full)
{
    mkusers(db);
    char gid[37];
    mkgroup(db, U1, "small", true, 2, gid);
    int st = -9;
    DB_OK(db, kz_store_group_join(db, gid, U2, NOW + 3, &st));
    cr_assert_eq(st, KZ_GROUP_MEMBER);
    expect_state(db, gid, U2, KZ_GROUP_MEMBER);
    expect_count(db, gid, 2);
    kz_group_t g;
    DB_OK(db, kz_store_group_get(db, gid, &g));
    cr_assert_eq(g.update_time, NOW + 3, "[%s] a new member bumps update_time", dbfx.label);
    kz_group_clear(&g);
    /* Joining again is a no-op reporting the state, even when full. */
    DB_OK(db, kz_store_group_join(db, gid, U2, NOW, &st));
    cr_assert_eq(st, KZ_GROUP_MEMBER);
    DB_OK(db, kz_store_group_join(db, gid, U1, NOW, &st));
    cr_assert_eq(st, KZ_GROUP_SUPERADMIN);
    expect_count(db, gid, 2);
    /* Full for a newcomer. */
    DB_RC(db, kz_store_group_join(db, gid, U3, NOW, &st), KZ_GROUP_EFULL);
    cr_assert_eq(st, -1);
    expect_state(db, gid, U3, -1);
    expect_count(db, gid, 2);
    DB_RC(db, kz_store_group_join(db, GHOST, U3, NOW, &st), KZ_STORE_NOTFOUND);
    cr_assert_eq(notes_of(db, U1, -5), 0, "[%s] open groups send no join request", dbfx.label);
}

KZ_DB_TEST(groups, join_closed_requests_and_notifies_admins)
{
    char gid[37];
    mkclan(db, false, gid);
    int st = -9;
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW + 77, &st));
    cr_assert_eq(st, KZ_GROUP_JOIN_REQUEST);
    expect_state(db, gid, U4, KZ_GROUP_JOIN_REQUEST);
    expect_count(db, gid, 3);
    /* Superadmin and admin are told, the member is not. */
    cr_assert_eq(notes_of(db, U1, -5), 1);
    cr_assert_eq(notes_of(db, U2, -5), 1);
    cr_assert_eq(notes_of(db, U3, -5), 0);
    cr_assert_eq(notes_of(db, U4, -5), 0);
    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    kz_dbrows_t *r;
    DB_OK(db, kz_db_query(
                  db,
                  "SELECT subject, content, sender_id, create_time, persistent FROM notification "
                  "WHERE user_id = $1",
                  p, 1, &r));
    cr_assert_eq(kz_db_next(r), 1);
    cr_assert_str_eq(kz_db_text(r, 0, NULL), "User dave wants to join your group");
    char want[160];
    snprintf(want, sizeof want, "{\"group_id\":\"%s\",\"username\":\"dave\"}", gid);
    cr_assert_str_eq(kz_db_text(r, 1, NULL), want);
    cr_assert_str_eq(kz_db_text(r, 2, NULL), U4);
    cr_assert_eq(kz_db_int(r, 3), NOW + 77);
    cr_assert_eq(kz_db_int(r, 4), 1);
    kz_db_rows_free(r);
    /* Asking again does not notify again. */
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, &st));
    cr_assert_eq(st, KZ_GROUP_JOIN_REQUEST);
    cr_assert_eq(notes_of(db, U1, -5), 1);
}

KZ_DB_TEST(groups, leave_rules)
{
    char gid[37];
    mkclan(db, false, gid);
    /* The only superadmin cannot leave; nothing changes. */
    DB_RC(db, kz_store_group_leave(db, gid, U1, NOW), KZ_GROUP_ELAST_SUPERADMIN);
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    expect_count(db, gid, 3);
    /* A member leaves; a join request is withdrawn without touching the count. */
    DB_OK(db, kz_store_group_leave(db, gid, U3, NOW));
    expect_state(db, gid, U3, -1);
    expect_count(db, gid, 2);
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, NULL));
    expect_state(db, gid, U4, KZ_GROUP_JOIN_REQUEST);
    DB_OK(db, kz_store_group_leave(db, gid, U4, NOW));
    expect_state(db, gid, U4, -1);
    expect_count(db, gid, 2);
    /* Strangers and unknown groups: nothing to do. */
    DB_OK(db, kz_store_group_leave(db, gid, U5, NOW));
    DB_OK(db, kz_store_group_leave(db, GHOST, U5, NOW));
    /* With a second superadmin the first may go. */
    char *ids[] = {U2};
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, ids, 1, NOW));
    expect_state(db, gid, U2, KZ_GROUP_SUPERADMIN);
    DB_OK(db, kz_store_group_leave(db, gid, U1, NOW));
    expect_state(db, gid, U1, -1);
    expect_count(db, gid, 1);
    DB_RC(db, kz_store_group_leave(db, gid, U2, NOW), KZ_GROUP_ELAST_SUPERADMIN);
}

/* ---- Admin actions ---------------------------------------------------------------- */

KZ_DB_TEST(groups, add_members_and_accept_requests)
{
    char gid[37];
    mkclan(db, false, gid);
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, NULL)); /* a request */
    char *ids[] = {U4, U5, U2, U1};
    /* A member may not add. */
    DB_RC(db, kz_store_group_users_add(db, gid, U3, ids, 2, NOW), KZ_GROUP_EPERM);
    DB_RC(db, kz_store_group_users_add(db, GHOST, U1, ids, 2, NOW), KZ_GROUP_EPERM);
    expect_state(db, gid, U4, KZ_GROUP_JOIN_REQUEST);
    /* The admin: U4 accepted, U5 added, U2 (already admin) and U1 untouched. */
    DB_OK(db, kz_store_group_users_add(db, gid, U2, ids, 4, NOW + 4));
    expect_state(db, gid, U4, KZ_GROUP_MEMBER);
    expect_state(db, gid, U5, KZ_GROUP_MEMBER);
    expect_state(db, gid, U2, KZ_GROUP_ADMIN);
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    expect_count(db, gid, 5);
    cr_assert_eq(notes_of(db, U4, -4), 1);
    cr_assert_eq(notes_of(db, U5, -4), 1);
    cr_assert_eq(notes_of(db, U1, -4), 0);
    cr_assert_eq(notes_of(db, U2, -4), 0);
    kz_dbval_t p[] = {KZ_DBTEXT(U5)};
    kz_dbrows_t *r;
    DB_OK(
        db,
        kz_db_query(
            db,
            "SELECT subject, content, sender_id FROM notification WHERE user_id = $1 AND code = -4",
            p, 1, &r));
    cr_assert_eq(kz_db_next(r), 1);
    cr_assert_str_eq(kz_db_text(r, 0, NULL), "You've been added to group clan");
    char want[160];
    snprintf(want, sizeof want, "{\"group_id\":\"%s\",\"name\":\"clan\"}", gid);
    cr_assert_str_eq(kz_db_text(r, 1, NULL), want);
    cr_assert_str_eq(kz_db_text(r, 2, NULL), U2);
    kz_db_rows_free(r);
    /* Adding again changes nothing and notifies nobody. */
    DB_OK(db, kz_store_group_users_add(db, gid, U1, ids, 2, NOW));
    expect_count(db, gid, 5);
    cr_assert_eq(notes_of(db, U5, -4), 1);
}

KZ_DB_TEST(groups, add_is_all_or_nothing)
{
    mkusers(db);
    char gid[37];
    mkgroup(db, U1, "tiny", false, 3, gid);
    DB_OK(db, kz_store_group_join(db, gid, U2, NOW, NULL)); /* request */
    /* An unknown user: nothing of the batch stays. */
    char *with_ghost[] = {U2, U3, GHOST};
    DB_RC(db, kz_store_group_users_add(db, gid, U1, with_ghost, 3, NOW), KZ_GROUP_EUSER_NOTFOUND);
    expect_state(db, gid, U2, KZ_GROUP_JOIN_REQUEST);
    expect_state(db, gid, U3, -1);
    expect_count(db, gid, 1);
    cr_assert_eq(notes_of(db, U3, -4), 0);
    /* Three more would pass max_count 3: refused as a whole. */
    char *three[] = {U2, U3, U4};
    DB_RC(db, kz_store_group_users_add(db, gid, U1, three, 3, NOW), KZ_GROUP_EFULL);
    expect_state(db, gid, U2, KZ_GROUP_JOIN_REQUEST);
    expect_state(db, gid, U3, -1);
    expect_count(db, gid, 1);
    cr_assert_eq(notes_of(db, U2, -4), 0);
    /* Two fit. */
    DB_OK(db, kz_store_group_users_add(db, gid, U1, three, 2, NOW));
    expect_count(db, gid, 3);
    /* Full: a join request can no longer be made. */
    DB_RC(db, kz_store_group_join(db, gid, U5, NOW, NULL), KZ_GROUP_EFULL);
}

KZ_DB_TEST(groups, kick_rules)
{
    char gid[37];
    mkclan(db, false, gid);
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, NULL)); /* request */
    char *admin_and_owner[] = {U2, U1};
    /* A member kicks nobody. */
    DB_RC(db, kz_store_group_users_kick(db, gid, U3, admin_and_owner, 2, NOW), KZ_GROUP_EPERM);
    /* An admin cannot kick an admin or the superadmin (skipped, not an error). */
    char *owner[] = {U1};
    DB_OK(db, kz_store_group_users_kick(db, gid, U2, owner, 1, NOW));
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, KZ_GROUP_ADMIN);
    DB_OK(db, kz_store_group_users_kick(db, gid, U2, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, KZ_GROUP_ADMIN);
    expect_count(db, gid, 3);
    /* An admin declines a join request (count unchanged) and kicks members. */
    DB_OK(db, kz_store_group_users_kick(db, gid, U2, (char *[]){U4}, 1, NOW));
    expect_state(db, gid, U4, -1);
    expect_count(db, gid, 3);
    DB_OK(db, kz_store_group_users_demote(db, gid, U1, (char *[]){U3}, 1, NOW));
    DB_OK(db, kz_store_group_users_kick(db, gid, U2, (char *[]){U3, GHOST, U2}, 3, NOW));
    expect_state(db, gid, U3, -1);
    expect_state(db, gid, U2, KZ_GROUP_ADMIN); /* never self */
    expect_count(db, gid, 2);
    /* The superadmin kicks the admin. */
    DB_OK(db, kz_store_group_users_kick(db, gid, U1, (char *[]){U2}, 1, NOW));
    expect_state(db, gid, U2, -1);
    expect_count(db, gid, 1);
}

KZ_DB_TEST(groups, superadmin_kicks_superadmin)
{
    char gid[37];
    mkclan(db, true, gid);
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, (char *[]){U2}, 1, NOW));
    expect_state(db, gid, U2, KZ_GROUP_SUPERADMIN);
    DB_OK(db, kz_store_group_users_kick(db, gid, U2, (char *[]){U1}, 1, NOW));
    expect_state(db, gid, U1, -1);
    expect_count(db, gid, 2);
    /* The system may not remove the last superadmin either. */
    DB_OK(db, kz_store_group_users_kick(db, gid, NULL, (char *[]){U2}, 1, NOW));
    expect_state(db, gid, U2, KZ_GROUP_SUPERADMIN);
}

KZ_DB_TEST(groups, ban_rules)
{
    char gid[37];
    mkclan(db, true, gid);
    /* A member bans nobody; an admin cannot ban the superadmin. */
    DB_RC(db, kz_store_group_users_ban(db, gid, U3, (char *[]){U2}, 1, NOW), KZ_GROUP_EPERM);
    DB_OK(db, kz_store_group_users_ban(db, gid, U2, (char *[]){U1}, 1, NOW));
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    /* The admin bans the member: one group -> user edge in state 4. */
    DB_OK(db, kz_store_group_users_ban(db, gid, U2, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, KZ_GROUP_BANNED);
    expect_count(db, gid, 2);
    /* A user with no relationship is not banned (as in Nakama). */
    DB_OK(db, kz_store_group_users_ban(db, gid, U1, (char *[]){U4}, 1, NOW));
    expect_state(db, gid, U4, -1);
    /* The banned user cannot come back by joining, leaving or being added. */
    int st = -9;
    DB_OK(db, kz_store_group_join(db, gid, U3, NOW, &st));
    cr_assert_eq(st, KZ_GROUP_BANNED);
    DB_OK(db, kz_store_group_leave(db, gid, U3, NOW));
    DB_OK(db, kz_store_group_users_add(db, gid, U1, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, KZ_GROUP_BANNED);
    expect_count(db, gid, 2);
    cr_assert_eq(notes_of(db, U3, -4), 0);
    /* Banning again keeps one edge; kicking lifts the ban. */
    DB_OK(db, kz_store_group_users_ban(db, gid, U2, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, KZ_GROUP_BANNED);
    DB_OK(db, kz_store_group_users_kick(db, gid, U2, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, -1);
    expect_count(db, gid, 2);
    DB_OK(db, kz_store_group_join(db, gid, U3, NOW, &st));
    cr_assert_eq(st, KZ_GROUP_MEMBER);
    /* The superadmin bans the admin. */
    DB_OK(db, kz_store_group_users_ban(db, gid, U1, (char *[]){U2}, 1, NOW));
    expect_state(db, gid, U2, KZ_GROUP_BANNED);
    expect_count(db, gid, 2);
}

KZ_DB_TEST(groups, promote_rules)
{
    char gid[37];
    mkclan(db, true, gid);
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, NULL));
    /* A member promotes nobody. */
    DB_RC(db, kz_store_group_users_promote(db, gid, U3, (char *[]){U4}, 1, NOW), KZ_GROUP_EPERM);
    /* An admin: a member up to admin; not another admin to superadmin; not self. */
    DB_OK(db, kz_store_group_users_promote(db, gid, U2, (char *[]){U3, U2}, 2, NOW));
    expect_state(db, gid, U3, KZ_GROUP_ADMIN);
    expect_state(db, gid, U2, KZ_GROUP_ADMIN);
    DB_OK(db, kz_store_group_users_promote(db, gid, U2, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, KZ_GROUP_ADMIN);
    /* The superadmin: an admin up to superadmin, one step at a time. */
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, (char *[]){U3, U4}, 2, NOW));
    expect_state(db, gid, U3, KZ_GROUP_SUPERADMIN);
    expect_state(db, gid, U4, KZ_GROUP_ADMIN);
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, (char *[]){U3}, 1, NOW));
    expect_state(db, gid, U3, KZ_GROUP_SUPERADMIN);
    /* Join requests and bans are not promoted. */
    DB_OK(db, kz_store_group_update(db, gid, U1, &(kz_group_update_t){.open = 0}, NOW));
    DB_OK(db, kz_store_group_join(db, gid, U5, NOW, NULL));
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, (char *[]){U5}, 1, NOW));
    expect_state(db, gid, U5, KZ_GROUP_JOIN_REQUEST);
    expect_count(db, gid, 4);
}

KZ_DB_TEST(groups, demote_rules)
{
    char gid[37];
    mkclan(db, true, gid);
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, NULL));
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, (char *[]){U4}, 1, NOW));
    expect_state(db, gid, U4, KZ_GROUP_ADMIN);
    /* A member demotes nobody; an admin not the superadmin, but another admin. */
    DB_RC(db, kz_store_group_users_demote(db, gid, U3, (char *[]){U2}, 1, NOW), KZ_GROUP_EPERM);
    DB_OK(db, kz_store_group_users_demote(db, gid, U2, (char *[]){U1, U4, U3}, 3, NOW));
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    expect_state(db, gid, U4, KZ_GROUP_MEMBER);
    expect_state(db, gid, U3, KZ_GROUP_MEMBER); /* members do not go lower */
    /* The superadmin demotes another superadmin one step. */
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, (char *[]){U2}, 1, NOW));
    expect_state(db, gid, U2, KZ_GROUP_SUPERADMIN);
    DB_OK(db, kz_store_group_users_demote(db, gid, U1, (char *[]){U2}, 1, NOW));
    expect_state(db, gid, U2, KZ_GROUP_ADMIN);
    /* Never self; the system never the last superadmin. */
    DB_OK(db, kz_store_group_users_demote(db, gid, U1, (char *[]){U1}, 1, NOW));
    DB_OK(db, kz_store_group_users_demote(db, gid, NULL, (char *[]){U1}, 1, NOW));
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    expect_count(db, gid, 4);
}

/* ---- Listings ------------------------------------------------------------------------ */

/* Lists with filter f in pages of limit; asserts the names seen in order. */
static void expect_pages(kz_db_t *db, const kz_group_filter_t *f, int limit,
                         const char *const *want, int nwant)
{
    kz_group_pos_t pos = {0};
    char last_name[64] = "", last_id[37] = "";
    bool first = true, more = true;
    int seen = 0;
    while (more) {
        kz_group_t *g;
        int n;
        DB_OK(db, kz_store_groups_list(db, f, first ? NULL : &pos, limit, &g, &n, &more));
        cr_assert(n <= limit);
        for (int i = 0; i < n; i++) {
            cr_assert_lt(seen, nwant, "[%s] more groups than expected: %s", dbfx.label, g[i].name);
            cr_assert_str_eq(g[i].name, want[seen], "[%s] group %d: %s, want %s", dbfx.label, seen,
                             g[i].name, want[seen]);
            seen++;
        }
        if (n) {
            snprintf(last_name, sizeof last_name, "%s", g[n - 1].name);
            memcpy(last_id, g[n - 1].id, 37);
            pos = (kz_group_pos_t){.name = last_name,
                                   .edge_count = g[n - 1].edge_count,
                                   .update_time = g[n - 1].update_time,
                                   .id = last_id};
        } else {
            cr_assert(!more);
        }
        kz_groups_free(g, n);
        first = false;
    }
    cr_assert_eq(seen, nwant, "[%s] saw %d groups, want %d", dbfx.label, seen, nwant);
}

KZ_DB_TEST(groups, list_filters_and_pages)
{
    mkusers(db);
    char a[37], b[37], c[37], d[37], z[37];
    /* alpha: open, en, 3 members; alps: closed, fr, 1; beta: open, fr, 2;
     * alpine: closed, en, 1; Zeta: closed, en, 1. Lower-case names keep the
     * name order the same under any collation. */
    mkgroup(db, U1, "alpha", true, 100, a);
    mkgroup(db, U1, "alps", false, 100, b);
    mkgroup(db, U1, "beta", true, 100, c);
    mkgroup(db, U1, "alpine", false, 100, d);
    mkgroup(db, U1, "Zeta", false, 100, z);
    DB_OK(db, kz_store_group_join(db, a, U2, NOW + 10, NULL));
    DB_OK(db, kz_store_group_join(db, a, U3, NOW + 20, NULL));
    DB_OK(db, kz_store_group_join(db, c, U2, NOW + 30, NULL));
    DB_OK(db, kz_store_group_update(db, b, U1, &(kz_group_update_t){.lang_tag = "fr", .open = -1},
                                    NOW + 40));
    DB_OK(db, kz_store_group_update(db, c, U1, &(kz_group_update_t){.lang_tag = "fr", .open = -1},
                                    NOW + 50));
    DB_OK(db, kz_store_group_update(db, z, U1, &(kz_group_update_t){.description = "z", .open = -1},
                                    NOW + 60));

    /* Name: a case-insensitive LIKE pattern, ordered by name, any page size. */
    const char *alp[] = {"alpha", "alpine", "alps"};
    for (int limit = 1; limit <= 4; limit++)
        expect_pages(db, &(kz_group_filter_t){.name = "ALP%", .members = -1, .open = -1}, limit,
                     alp, 3);
    const char *exact[] = {"alpha"};
    expect_pages(db, &(kz_group_filter_t){.name = "Alpha", .members = -1, .open = -1}, 5, exact, 1);
    const char *zeta[] = {"Zeta"};
    expect_pages(db, &(kz_group_filter_t){.name = "zeta", .members = -1, .open = -1}, 5, zeta, 1);
    expect_pages(db, &(kz_group_filter_t){.name = "gamma%", .members = -1, .open = -1}, 5, NULL, 0);
    cr_assert_eq(kz_group_filter_order(&(kz_group_filter_t){.name = "x", .members = 3, .open = 1}),
                 KZ_GROUP_ORDER_NAME);

    /* No filter: by update_time, oldest first. */
    const char *all[] = {"alpine", "alpha", "alps", "beta", "Zeta"};
    expect_pages(db, &(kz_group_filter_t){.members = -1, .open = -1}, 1, all, 5);
    expect_pages(db, &(kz_group_filter_t){.members = -1, .open = -1}, 2, all, 5);
    expect_pages(db, &(kz_group_filter_t){.members = -1, .open = -1}, 100, all, 5);
    /* Open / closed. */
    const char *opened[] = {"alpha", "beta"};
    expect_pages(db, &(kz_group_filter_t){.members = -1, .open = 1}, 1, opened, 2);
    const char *closed[] = {"alpine", "alps", "Zeta"};
    expect_pages(db, &(kz_group_filter_t){.members = -1, .open = 0}, 2, closed, 3);
    /* Language: by size ascending; combined with open. */
    const char *fr[] = {"alps", "beta"};
    expect_pages(db, &(kz_group_filter_t){.lang_tag = "fr", .members = -1, .open = -1}, 1, fr, 2);
    const char *fr_open[] = {"beta"};
    expect_pages(db, &(kz_group_filter_t){.lang_tag = "fr", .members = -1, .open = 1}, 1, fr_open,
                 1);
    const char *en_closed[] = {"alpine", "Zeta"};
    const char *en_closed_r[] = {"Zeta", "alpine"};
    expect_pages(db, &(kz_group_filter_t){.lang_tag = "en", .members = -1, .open = 0}, 1,
                 strcmp(d, z) < 0 ? en_closed : en_closed_r, 2);
    /* Members: at most that many, biggest first, then id descending. */
    const char *ones[3][2] = {{b, "alps"}, {d, "alpine"}, {z, "Zeta"}};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (strcmp(ones[i][0], ones[j][0]) < 0) {
                const char *t0 = ones[i][0], *t1 = ones[i][1];
                ones[i][0] = ones[j][0], ones[i][1] = ones[j][1];
                ones[j][0] = t0, ones[j][1] = t1;
            }
    const char *upto2[] = {"beta", ones[0][1], ones[1][1], ones[2][1]};
    expect_pages(db, &(kz_group_filter_t){.members = 2, .open = -1}, 1, upto2, 4);
    expect_pages(db, &(kz_group_filter_t){.members = 2, .open = -1}, 3, upto2, 4);
    const char *upto0[] = {NULL};
    expect_pages(db, &(kz_group_filter_t){.members = 0, .open = -1}, 3, upto0, 0);
    const char *fr_upto1[] = {"alps"};
    expect_pages(db, &(kz_group_filter_t){.lang_tag = "fr", .members = 1, .open = -1}, 3, fr_upto1,
                 1);
    const char *open_upto3[] = {"alpha", "beta"};
    expect_pages(db, &(kz_group_filter_t){.members = 3, .open = 1}, 1, open_upto3, 2);
}

/* Lists the group's users with state filter in pages of limit; asserts
 * the (user, state) sequence. */
static void expect_members(kz_db_t *db, const char *gid, int state, int limit,
                           const char *const *ids, const int *states, int nwant)
{
    kz_edge_pos_t pos;
    bool first = true, more = true;
    int seen = 0;
    while (more) {
        kz_group_user_t *u;
        int n;
        DB_OK(db,
              kz_store_group_users_list(db, gid, state, first ? NULL : &pos, limit, &u, &n, &more));
        for (int i = 0; i < n; i++) {
            cr_assert_lt(seen, nwant, "[%s] unexpected member %s", dbfx.label, u[i].user.id);
            cr_assert_str_eq(u[i].user.id, ids[seen], "[%s] member %d: %s, want %s", dbfx.label,
                             seen, u[i].user.id, ids[seen]);
            cr_assert_eq(u[i].state, states[seen], "[%s] member %d state %d, want %d", dbfx.label,
                         seen, u[i].state, states[seen]);
            cr_assert_not_null(u[i].user.username);
            cr_assert_eq(u[i].user.create_time, NOW);
            cr_assert_null(u[i].user.email);
            seen++;
        }
        if (n) pos = (kz_edge_pos_t){.state = u[n - 1].state, .position = u[n - 1].position};
        kz_group_users_free(u, n);
        first = false;
    }
    cr_assert_eq(seen, nwant, "[%s] saw %d members, want %d", dbfx.label, seen, nwant);
}

KZ_DB_TEST(groups, list_group_users_and_user_groups)
{
    char gid[37];
    mkclan(db, false, gid);
    DB_OK(db, kz_store_group_join(db, gid, U5, NOW, NULL)); /* request */
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, NULL)); /* request, later */
    DB_OK(db, kz_store_group_users_add(db, gid, U1, (char *[]){U5}, 1, NOW));
    DB_OK(db, kz_store_group_users_ban(db, gid, U1, (char *[]){U3}, 1, NOW));
    /* Default: states 0..3 by state, then by when the edge was made (U5's
     * accept keeps its original request position). */
    const char *ids[] = {U1, U2, U5, U4};
    const int states[] = {0, 1, 2, 3};
    for (int limit = 1; limit <= 5; limit++)
        expect_members(db, gid, -1, limit, ids, states, 4);
    const char *banned[] = {U3};
    const int st4[] = {4};
    expect_members(db, gid, 4, 1, banned, st4, 1);
    const char *members[] = {U5};
    const int st2[] = {2};
    expect_members(db, gid, 2, 1, members, st2, 1);
    expect_members(db, GHOST, -1, 10, NULL, NULL, 0);

    /* A user's groups: a second group where U5 is superadmin. */
    char g2[37];
    mkgroup(db, U5, "second", true, 10, g2);
    kz_user_group_t *ug;
    int n;
    bool more;
    DB_OK(db, kz_store_user_groups_list(db, U5, -1, NULL, 1, &ug, &n, &more));
    cr_assert_eq(n, 1);
    cr_assert(more);
    cr_assert_str_eq(ug[0].group.id, g2);
    cr_assert_eq(ug[0].state, 0);
    ASSERT_STR(ug[0].group.name, "second", "group name");
    cr_assert(ug[0].group.open);
    cr_assert_eq(ug[0].group.edge_count, 1);
    kz_edge_pos_t pos = {.state = ug[0].state, .position = ug[0].position};
    kz_user_groups_free(ug, n);
    DB_OK(db, kz_store_user_groups_list(db, U5, -1, &pos, 1, &ug, &n, &more));
    cr_assert_eq(n, 1);
    cr_assert(!more);
    cr_assert_str_eq(ug[0].group.id, gid);
    cr_assert_eq(ug[0].state, 2);
    ASSERT_STR(ug[0].group.name, "clan", "group name");
    cr_assert(!ug[0].group.open);
    cr_assert_eq(ug[0].group.edge_count, 3);
    kz_user_groups_free(ug, n);
    DB_OK(db, kz_store_user_groups_list(db, U5, 2, NULL, 10, &ug, &n, &more));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ug[0].group.id, gid);
    kz_user_groups_free(ug, n);
    /* A ban is not among the banned user's groups. */
    DB_OK(db, kz_store_user_groups_list(db, U3, -1, NULL, 10, &ug, &n, &more));
    cr_assert_eq(n, 0);
    kz_user_groups_free(ug, n);
    DB_OK(db, kz_store_user_groups_list(db, U3, 4, NULL, 10, &ug, &n, &more));
    cr_assert_eq(n, 0);
    kz_user_groups_free(ug, n);
}

/* ---- Account deletion ---------------------------------------------------------------- */

KZ_DB_TEST(groups, delete_user_succession)
{
    mkusers(db);
    char g1[37], g2[37], g3[37], g4[37], g5[37];
    /* g1: U1 superadmin, U3 member (older), U2 admin (newer) -> U2 takes over. */
    mkgroup(db, U1, "g1", true, 100, g1);
    DB_OK(db, kz_store_group_join(db, g1, U3, NOW, NULL));
    DB_OK(db, kz_store_group_join(db, g1, U2, NOW, NULL));
    DB_OK(db, kz_store_group_users_promote(db, g1, U1, (char *[]){U2}, 1, NOW));
    /* g2: U1 superadmin, members U4 then U3 -> U4 (oldest member) takes over. */
    mkgroup(db, U1, "g2", true, 100, g2);
    DB_OK(db, kz_store_group_join(db, g2, U4, NOW, NULL));
    DB_OK(db, kz_store_group_join(db, g2, U3, NOW, NULL));
    /* g3: U1 alone with a pending request and a ban -> the group goes. */
    mkgroup(db, U1, "g3", false, 100, g3);
    DB_OK(db, kz_store_group_join(db, g3, U5, NOW, NULL));
    DB_OK(db, kz_store_group_join(db, g3, U4, NOW, NULL));
    DB_OK(db, kz_store_group_users_ban(db, g3, U1, (char *[]){U4}, 1, NOW));
    /* g4: U2 superadmin, U1 member; g5: U2 superadmin, U1 banned, U1 ... */
    mkgroup(db, U2, "g4", true, 100, g4);
    DB_OK(db, kz_store_group_join(db, g4, U1, NOW, NULL));
    mkgroup(db, U2, "g5", true, 100, g5);
    DB_OK(db, kz_store_group_join(db, g5, U1, NOW, NULL));
    DB_OK(db, kz_store_group_users_ban(db, g5, U2, (char *[]){U1}, 1, NOW));
    /* g6: two superadmins: the other simply stays. */
    char g6[37];
    mkgroup(db, U1, "g6", true, 100, g6);
    DB_OK(db, kz_store_group_join(db, g6, U5, NOW, NULL));
    DB_OK(db, kz_store_group_users_promote(db, g6, U1, (char *[]){U5}, 1, NOW));
    DB_OK(db, kz_store_group_users_promote(db, g6, U1, (char *[]){U5}, 1, NOW));
    expect_state(db, g6, U5, KZ_GROUP_SUPERADMIN);

    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_store_groups_delete_user(db, U1));
    DB_OK(db, kz_db_commit(db));

    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    cr_assert_eq(dbfx_count(db, "group_edge", "source_id = $1 OR destination_id = $1", p, 1), 0);
    expect_state(db, g1, U2, KZ_GROUP_SUPERADMIN);
    expect_state(db, g1, U3, KZ_GROUP_MEMBER);
    expect_count(db, g1, 2);
    expect_state(db, g2, U4, KZ_GROUP_SUPERADMIN);
    expect_state(db, g2, U3, KZ_GROUP_MEMBER);
    expect_count(db, g2, 2);
    kz_group_t g;
    DB_RC(db, kz_store_group_get(db, g3, &g), KZ_STORE_NOTFOUND);
    kz_dbval_t p3[] = {KZ_DBTEXT(g3)};
    cr_assert_eq(dbfx_count(db, "group_edge", "source_id = $1 OR destination_id = $1", p3, 1), 0);
    expect_state(db, g4, U2, KZ_GROUP_SUPERADMIN);
    expect_count(db, g4, 1);
    expect_count(db, g5, 1);
    expect_state(db, g6, U5, KZ_GROUP_SUPERADMIN);
    expect_count(db, g6, 1);
    cr_assert_eq(groups_count(db), 5);
}

KZ_DB_TEST(groups, delete_user_rolls_back_with_caller)
{
    char gid[37];
    mkclan(db, true, gid);
    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_store_groups_delete_user(db, U1));
    DB_OK(db, kz_db_rollback(db));
    expect_state(db, gid, U1, KZ_GROUP_SUPERADMIN);
    expect_state(db, gid, U2, KZ_GROUP_ADMIN);
    expect_count(db, gid, 3);
    /* A user with no groups: nothing to do. */
    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_store_groups_delete_user(db, GHOST));
    DB_OK(db, kz_db_commit(db));
    expect_count(db, gid, 3);
}

/* ---- System messages in the group channel ----------------------------------- */

static struct {
    int n;
    int code[16];
    char sender[16][37];
    bool in_tx[16];
} sunk;

static void sink(const kz_channel_t *c, const kz_message_t *m, bool in_tx)
{
    if (sunk.n < 16) {
        sunk.code[sunk.n] = m->code;
        memcpy(sunk.sender[sunk.n], m->sender_id, 37);
        sunk.in_tx[sunk.n] = in_tx;
    }
    sunk.n++;
}

KZ_DB_TEST(groups, membership_changes_post_system_messages)
{
    mkusers(db);
    memset(&sunk, 0, sizeof sunk);
    kz_store_set_message_sink(sink);
    char gid[37];
    mkgroup(db, U1, "chatty", true, 10, gid);
    int st;
    char *one[] = {U3};
    char *two[] = {U2};
    DB_OK(db, kz_store_group_join(db, gid, U2, NOW, &st));                 /* 3 join */
    DB_OK(db, kz_store_group_users_add(db, gid, U1, one, 1, NOW));         /* 4 add */
    DB_OK(db, kz_store_group_users_promote(db, gid, U1, two, 1, NOW));     /* 7 promote */
    DB_OK(db, kz_store_group_users_demote(db, gid, U1, two, 1, NOW));      /* 9 demote */
    DB_OK(db, kz_store_group_users_kick(db, gid, U1, one, 1, NOW));        /* 6 kick */
    DB_OK(db, kz_store_group_users_ban(db, gid, U1, two, 1, NOW));         /* 8 ban */
    DB_OK(db, kz_store_group_join(db, gid, U4, NOW, &st));                 /* 3 join */
    DB_OK(db, kz_store_group_leave(db, gid, U4, NOW + 1000));              /* 5 leave */
    /* Nothing changes, nothing is posted: self-kick, an unknown user added. */
    DB_OK(db, kz_store_group_users_kick(db, gid, U1, (char *[]){U1}, 1, NOW));
    DB_RC(db, kz_store_group_users_add(db, gid, U1, (char *[]){U5, GHOST}, 2, NOW), KZ_GROUP_EUSER_NOTFOUND);
    kz_store_set_message_sink(NULL);

    const int codes[] = {3, 4, 7, 9, 6, 8, 3, 5, 4};
    const char *senders[] = {U2, U3, U2, U2, U3, U2, U4, U4, U5};
    /* The refused add reached the sink inside its transaction (the realtime
     * layer drops it on rollback), and is not in the history. */
    cr_assert_eq(sunk.n, 9, "[%s] sink calls: %d", dbfx.label, sunk.n);
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(sunk.code[i], codes[i], "[%s] code #%d", dbfx.label, i);
        ASSERT_STR(sunk.sender[i], senders[i], "sender");
        cr_assert(sunk.in_tx[i], "[%s] posted inside the transaction", dbfx.label);
    }
    kz_channel_t c;
    cr_assert(kz_channel_group(&c, gid));
    kz_message_t *m;
    int n;
    DB_OK(db, kz_store_messages_list(db, &c, true, NULL, 100, &m, &n));
    cr_assert_eq(n, 8, "[%s] stored: %d", dbfx.label, n);
    const char *names[] = {"bob", "carol", "bob", "bob", "carol", "bob", "dave", "dave"};
    for (int i = 0; i < n; i++) {
        cr_assert_eq(m[i].code, codes[i], "[%s] stored code #%d", dbfx.label, i);
        ASSERT_STR(m[i].sender_id, senders[i], "stored sender");
        ASSERT_STR(m[i].username, names[i], "stored username");
        ASSERT_STR(m[i].content, "{}", "stored content");
    }
    cr_assert_eq(m[0].create_time, NOW - NOW % 1000);
    cr_assert_eq(m[7].create_time, NOW + 1000 - (NOW + 1000) % 1000);
    kz_messages_free(m, n);
}

KZ_DB_TEST(groups, random_picks_distinct_enabled_groups)
{
    mkusers(db);
    kz_group_t *v;
    int n;
    DB_OK(db, kz_store_groups_random(db, 5, &v, &n));
    cr_assert_eq(n, 0, "[%s] no groups yet", dbfx.label);
    kz_groups_free(v, n);
    char ids[4][37];
    const char *names[] = {"g-one", "g-two", "g-three", "g-four"};
    for (int i = 0; i < 4; i++) mkgroup(db, U1, names[i], true, 100, ids[i]);
    /* A disabled group is never picked. */
    kz_dbval_t p[] = {KZ_DBTEXT(ids[3])};
    cr_assert_eq(kz_db_exec(db, "UPDATE groups SET disable_time = 1 WHERE id = $1", p, 1, NULL), KZ_DB_OK);
    for (int round = 0; round < 5; round++) {
        DB_OK(db, kz_store_groups_random(db, 10, &v, &n));
        cr_assert_eq(n, 3, "[%s] %d groups, want 3", dbfx.label, n);
        for (int i = 0; i < n; i++) {
            cr_assert_str_neq(v[i].id, ids[3]);
            for (int j = 0; j < i; j++) cr_assert_str_neq(v[i].id, v[j].id);
        }
        kz_groups_free(v, n);
    }
    DB_OK(db, kz_store_groups_random(db, 2, &v, &n));
    cr_assert_eq(n, 2);
    kz_groups_free(v, n);
    DB_OK(db, kz_store_groups_random(db, 0, &v, &n));
    cr_assert_eq(n, 0);
}
