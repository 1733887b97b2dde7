/* Account store tests (store/account.h): users and their sign-in
 * identifiers, account updates, link/unlink, batch reads, deletion and
 * persisted session revocations. Every test runs on SQLite and on
 * PostgreSQL (fresh, migrated database each; see dbfixture.h). */
#include <criterion/criterion.h>

#include "dbfixture.h"
#include "store/account.h"

#define NOW INT64_C(1700000000000) /* 2023-11-14T22:13:20Z */

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"
#define U4 "44444444-4444-4444-8444-444444444444"
#define GHOST "99999999-9999-4999-8999-999999999999"
#define SYSTEM_USER "00000000-0000-0000-0000-000000000000"

#define HASH1 "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
#define HASH2 "$argon2id$v=19$m=65536,t=2,p=1$b3RoZXJzYWx0$mKBOOPnDdH6VNi3mJXl4nw7VjfWkprV4"

/* ---- Helpers --------------------------------------------------------------- */

/* Asserts two possibly-NULL strings are equal. */
#define ASSERT_STR(got, want, what)                                                                \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!w_)                                                                                   \
            cr_assert_null(g_, "[%s] %s: got \"%s\", want NULL", dbfx.label, what, g_);            \
        else {                                                                                     \
            cr_assert_not_null(g_, "[%s] %s: got NULL, want \"%s\"", dbfx.label, what, w_);        \
            cr_assert_str_eq(g_, w_, "[%s] %s: got \"%s\", want \"%s\"", dbfx.label, what, g_, w_); \
        }                                                                                          \
    } while (0)

static void create_user(kz_db_t *db, const char *id, const char *username, kz_id_kind_t kind,
                        const char *value, const char *hash, int64_t now)
{
    bool taken = true;
    DB_OK(db, kz_store_user_create(db, id, username, kind, value, hash, now, &taken));
    cr_assert(!taken, "[%s] create %s: identifier_taken set on success", dbfx.label, username);
}

static void find_user(kz_db_t *db, kz_id_kind_t kind, const char *value, kz_user_t *u)
{
    int rc = kz_store_user_find(db, kind, value, u);
    cr_assert_eq(rc, KZ_DB_OK, "[%s] find kind %d \"%s\" returned %d (%s)", dbfx.label, (int)kind, value, rc,
                 kz_db_errmsg(db));
}

static void expect_notfound(kz_db_t *db, kz_id_kind_t kind, const char *value)
{
    kz_user_t u;
    memset(&u, 0, sizeof u);
    int rc = kz_store_user_find(db, kind, value, &u);
    if (rc == KZ_DB_OK) kz_user_clear(&u);
    cr_assert_eq(rc, KZ_STORE_NOTFOUND, "[%s] find kind %d \"%s\" returned %d, want NOTFOUND", dbfx.label,
                 (int)kind, value, rc);
}

static int64_t users_count(kz_db_t *db)
{
    return dbfx_count(db, "users", NULL, NULL, 0);
}

static int64_t update_time_of(kz_db_t *db, const char *id)
{
    kz_user_t u;
    find_user(db, KZ_ID_USER, id, &u);
    int64_t t = u.update_time;
    kz_user_clear(&u);
    return t;
}

/* Asserts the user's devices are exactly want[0..n) in that order. */
static void expect_devices(kz_db_t *db, const char *uid, const char *const *want, int n)
{
    char **ids = (char **)1;
    int got = -1;
    DB_OK(db, kz_store_user_devices(db, uid, &ids, &got));
    cr_assert_eq(got, n, "[%s] %s has %d devices, want %d", dbfx.label, uid, got, n);
    if (n == 0) cr_assert_null(ids, "[%s] empty device list must be NULL", dbfx.label);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(ids[i], want[i], "[%s] device %d of %s: \"%s\", want \"%s\"", dbfx.label, i, uid,
                         ids[i], want[i]);
    kz_store_strings_free(ids, got);
}

/* The user owning device value must be uid. */
static void expect_device_owner(kz_db_t *db, const char *device, const char *uid)
{
    kz_user_t u;
    find_user(db, KZ_ID_DEVICE, device, &u);
    cr_assert_str_eq(u.id, uid, "[%s] device %s belongs to %s, want %s", dbfx.label, device, u.id, uid);
    kz_user_clear(&u);
}

/* ---- Create and find ---------------------------------------------------------- */

/* Checks u is the freshly created user (id, username, times, defaults). */
static void expect_fresh(const kz_user_t *u, const char *id, const char *username, int64_t t)
{
    cr_assert_str_eq(u->id, id, "[%s] id", dbfx.label);
    ASSERT_STR(u->username, username, "username");
    cr_assert_eq(u->create_time, t, "[%s] create_time %lld", dbfx.label, (long long)u->create_time);
    cr_assert_eq(u->update_time, t, "[%s] update_time %lld", dbfx.label, (long long)u->update_time);
    ASSERT_STR(u->display_name, NULL, "display_name");
    ASSERT_STR(u->avatar_url, NULL, "avatar_url");
    ASSERT_STR(u->lang_tag, "en", "lang_tag");
    ASSERT_STR(u->location, NULL, "location");
    ASSERT_STR(u->timezone, NULL, "timezone");
    ASSERT_STR(u->metadata, "{}", "metadata");
    ASSERT_STR(u->wallet, "{}", "wallet");
    ASSERT_STR(u->facebook_id, NULL, "facebook_id");
    ASSERT_STR(u->steam_id, NULL, "steam_id");
    cr_assert_eq(u->edge_count, 0);
    cr_assert_eq(u->verify_time, 0);
    cr_assert_eq(u->disable_time, 0);
}

KZ_DB_TEST(account, create_device_and_find)
{
    int64_t before = users_count(db);
    cr_assert_eq(before, 1, "[%s] only the system user after migration", dbfx.label);
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW + 123);
    cr_assert_eq(users_count(db), 2);

    struct {
        kz_id_kind_t kind;
        const char *value;
    } by[] = {{KZ_ID_DEVICE, "device-alice-0001"}, {KZ_ID_USERNAME, "alice"}, {KZ_ID_USER, U1}};
    for (size_t i = 0; i < sizeof by / sizeof by[0]; i++) {
        kz_user_t u;
        find_user(db, by[i].kind, by[i].value, &u);
        expect_fresh(&u, U1, "alice", NOW + 123);
        ASSERT_STR(u.custom_id, NULL, "custom_id");
        ASSERT_STR(u.email, NULL, "email");
        ASSERT_STR(u.password, NULL, "password");
        kz_user_clear(&u);
        cr_assert_null(u.username, "kz_user_clear resets the struct");
    }
    const char *want[] = {"device-alice-0001"};
    expect_devices(db, U1, want, 1);
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 1);
}

KZ_DB_TEST(account, create_custom_and_find)
{
    /* A password hash passed for a non-email identifier is not stored. */
    create_user(db, U2, "bobby", KZ_ID_CUSTOM, "custom-bob-42", HASH1, NOW);
    struct {
        kz_id_kind_t kind;
        const char *value;
    } by[] = {{KZ_ID_CUSTOM, "custom-bob-42"}, {KZ_ID_USERNAME, "bobby"}, {KZ_ID_USER, U2}};
    for (size_t i = 0; i < sizeof by / sizeof by[0]; i++) {
        kz_user_t u;
        find_user(db, by[i].kind, by[i].value, &u);
        expect_fresh(&u, U2, "bobby", NOW);
        ASSERT_STR(u.custom_id, "custom-bob-42", "custom_id");
        ASSERT_STR(u.email, NULL, "email");
        ASSERT_STR(u.password, NULL, "password");
        kz_user_clear(&u);
    }
    expect_devices(db, U2, NULL, 0);
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 0);
    /* The custom id is not a device id. */
    expect_notfound(db, KZ_ID_DEVICE, "custom-bob-42");
}

KZ_DB_TEST(account, create_email_and_find)
{
    create_user(db, U3, "carol", KZ_ID_EMAIL, "carol@example.com", HASH1, NOW + 7);
    struct {
        kz_id_kind_t kind;
        const char *value;
    } by[] = {{KZ_ID_EMAIL, "carol@example.com"}, {KZ_ID_USERNAME, "carol"}, {KZ_ID_USER, U3}};
    for (size_t i = 0; i < sizeof by / sizeof by[0]; i++) {
        kz_user_t u;
        find_user(db, by[i].kind, by[i].value, &u);
        expect_fresh(&u, U3, "carol", NOW + 7);
        ASSERT_STR(u.email, "carol@example.com", "email");
        ASSERT_STR(u.password, HASH1, "password");
        ASSERT_STR(u.custom_id, NULL, "custom_id");
        kz_user_clear(&u);
    }
    /* Lookups are exact: callers lower-case emails before calling. */
    expect_notfound(db, KZ_ID_EMAIL, "Carol@example.com");
    expect_devices(db, U3, NULL, 0);
}

KZ_DB_TEST(account, find_not_found)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    expect_notfound(db, KZ_ID_DEVICE, "device-nobody-0001");
    expect_notfound(db, KZ_ID_CUSTOM, "custom-nobody");
    expect_notfound(db, KZ_ID_EMAIL, "nobody@example.com");
    expect_notfound(db, KZ_ID_USERNAME, "nobody");
    expect_notfound(db, KZ_ID_USERNAME, "Alice"); /* usernames are case-sensitive here */
    expect_notfound(db, KZ_ID_USER, GHOST);
    /* Identifier kinds do not cross: a username is not a custom id. */
    expect_notfound(db, KZ_ID_CUSTOM, "alice");
    /* The system user is found by id, with its empty username. */
    kz_user_t u;
    find_user(db, KZ_ID_USER, SYSTEM_USER, &u);
    ASSERT_STR(u.username, "", "system username");
    kz_user_clear(&u);
}

/* ---- Create conflicts ------------------------------------------------------- */

KZ_DB_TEST(account, create_duplicate_username)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    int64_t n = users_count(db);
    struct {
        kz_id_kind_t kind;
        const char *value;
        const char *hash;
    } tries[] = {{KZ_ID_DEVICE, "device-other-0002", NULL},
                 {KZ_ID_CUSTOM, "custom-other", NULL},
                 {KZ_ID_EMAIL, "other@example.com", HASH2}};
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        bool taken = true;
        DB_RC(db, kz_store_user_create(db, U2, "alice", tries[i].kind, tries[i].value, tries[i].hash, NOW + 5, &taken),
              KZ_DB_ECONFLICT);
        cr_assert(!taken, "[%s] kind %d: username clash reported as identifier_taken", dbfx.label,
                  (int)tries[i].kind);
        cr_assert_eq(users_count(db), n, "[%s] kind %d: users count changed", dbfx.label, (int)tries[i].kind);
        expect_notfound(db, KZ_ID_USER, U2);
        expect_notfound(db, tries[i].kind, tries[i].value);
    }
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 1, "[%s] no orphan device row", dbfx.label);
    /* The existing user is intact. */
    kz_user_t u;
    find_user(db, KZ_ID_USERNAME, "alice", &u);
    cr_assert_str_eq(u.id, U1);
    cr_assert_eq(u.update_time, NOW);
    kz_user_clear(&u);
    /* The connection is usable afterwards (no transaction left open). */
    create_user(db, U2, "alice2", KZ_ID_DEVICE, "device-other-0002", NULL, NOW + 6);
    cr_assert_eq(users_count(db), n + 1);
}

KZ_DB_TEST(account, create_duplicate_device_is_one_transaction)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-shared-0001", NULL, NOW);
    int64_t n = users_count(db);
    bool taken = false;
    /* The users row would insert fine; the device row conflicts: the whole
     * creation is rolled back. */
    DB_RC(db, kz_store_user_create(db, U2, "bob", KZ_ID_DEVICE, "device-shared-0001", NULL, NOW + 1, &taken),
          KZ_DB_ECONFLICT);
    cr_assert(taken, "[%s] device clash must set identifier_taken", dbfx.label);
    cr_assert_eq(users_count(db), n, "[%s] half-created user left behind", dbfx.label);
    expect_notfound(db, KZ_ID_USER, U2);
    expect_notfound(db, KZ_ID_USERNAME, "bob");
    expect_device_owner(db, "device-shared-0001", U1);
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 1);

    /* Both taken: the identifier wins (the caller signs in instead). */
    taken = false;
    DB_RC(db, kz_store_user_create(db, U2, "alice", KZ_ID_DEVICE, "device-shared-0001", NULL, NOW + 2, &taken),
          KZ_DB_ECONFLICT);
    cr_assert(taken, "[%s] device and username clash must set identifier_taken", dbfx.label);
    cr_assert_eq(users_count(db), n);

    /* The username "bob" is still free. */
    create_user(db, U2, "bob", KZ_ID_DEVICE, "device-bob-000002", NULL, NOW + 3);
    cr_assert_eq(users_count(db), n + 1);
}

KZ_DB_TEST(account, create_duplicate_custom_and_email)
{
    create_user(db, U1, "alice", KZ_ID_CUSTOM, "custom-alice", NULL, NOW);
    create_user(db, U2, "bob", KZ_ID_EMAIL, "bob@example.com", HASH1, NOW);
    int64_t n = users_count(db);
    bool taken = false;
    DB_RC(db, kz_store_user_create(db, U3, "carol", KZ_ID_CUSTOM, "custom-alice", NULL, NOW, &taken),
          KZ_DB_ECONFLICT);
    cr_assert(taken, "[%s] custom id clash must set identifier_taken", dbfx.label);
    taken = false;
    DB_RC(db, kz_store_user_create(db, U3, "carol", KZ_ID_EMAIL, "bob@example.com", HASH2, NOW, &taken),
          KZ_DB_ECONFLICT);
    cr_assert(taken, "[%s] email clash must set identifier_taken", dbfx.label);
    cr_assert_eq(users_count(db), n);
    expect_notfound(db, KZ_ID_USERNAME, "carol");
    /* Bob's password is not overwritten by the failed sign-up. */
    kz_user_t u;
    find_user(db, KZ_ID_EMAIL, "bob@example.com", &u);
    cr_assert_str_eq(u.id, U2);
    ASSERT_STR(u.password, HASH1, "password");
    kz_user_clear(&u);
}

/* ---- Devices -------------------------------------------------------------- */

KZ_DB_TEST(account, devices_listed_sorted)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-m-000001", NULL, NOW);
    create_user(db, U2, "bob", KZ_ID_DEVICE, "device-b-000009", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-c-000003", NULL, NOW + 1));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-a-000001", NULL, NOW + 2));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-b-000002", NULL, NOW + 3));
    const char *want1[] = {"device-a-000001", "device-b-000002", "device-c-000003", "device-m-000001"};
    expect_devices(db, U1, want1, 4);
    const char *want2[] = {"device-b-000009"};
    expect_devices(db, U2, want2, 1);
    expect_devices(db, GHOST, NULL, 0);
    for (int i = 0; i < 4; i++) expect_device_owner(db, want1[i], U1);
}

/* ---- Account update --------------------------------------------------------- */

KZ_DB_TEST(account, update_sets_and_clears)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    kz_account_update_t set[] = {{"username", "alice2"},          {"display_name", "Alice A."},
                                 {"avatar_url", "https://cdn/a.png"}, {"lang_tag", "fr"},
                                 {"location", "Paris"},           {"timezone", "Europe/Paris"}};
    DB_OK(db, kz_store_account_update(db, U1, set, 6, NOW + 1000));
    kz_user_t u;
    find_user(db, KZ_ID_USER, U1, &u);
    ASSERT_STR(u.username, "alice2", "username");
    ASSERT_STR(u.display_name, "Alice A.", "display_name");
    ASSERT_STR(u.avatar_url, "https://cdn/a.png", "avatar_url");
    ASSERT_STR(u.lang_tag, "fr", "lang_tag");
    ASSERT_STR(u.location, "Paris", "location");
    ASSERT_STR(u.timezone, "Europe/Paris", "timezone");
    cr_assert_eq(u.create_time, NOW, "[%s] create_time moved", dbfx.label);
    cr_assert_eq(u.update_time, NOW + 1000, "[%s] update_time %lld", dbfx.label, (long long)u.update_time);
    kz_user_clear(&u);
    expect_notfound(db, KZ_ID_USERNAME, "alice");
    find_user(db, KZ_ID_USERNAME, "alice2", &u);
    cr_assert_str_eq(u.id, U1);
    kz_user_clear(&u);

    /* NULL clears; untouched fields stay. */
    kz_account_update_t clear[] = {{"display_name", NULL}, {"location", NULL}};
    DB_OK(db, kz_store_account_update(db, U1, clear, 2, NOW + 2000));
    find_user(db, KZ_ID_USER, U1, &u);
    ASSERT_STR(u.display_name, NULL, "display_name");
    ASSERT_STR(u.location, NULL, "location");
    ASSERT_STR(u.username, "alice2", "username");
    ASSERT_STR(u.avatar_url, "https://cdn/a.png", "avatar_url");
    ASSERT_STR(u.lang_tag, "fr", "lang_tag");
    ASSERT_STR(u.timezone, "Europe/Paris", "timezone");
    cr_assert_eq(u.update_time, NOW + 2000);
    kz_user_clear(&u);
    /* The device still signs in to the renamed user. */
    expect_device_owner(db, "device-alice-0001", U1);
}

KZ_DB_TEST(account, update_same_values_keeps_update_time)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    kz_account_update_t set[] = {{"display_name", "Alice"}, {"timezone", "UTC"}};
    DB_OK(db, kz_store_account_update(db, U1, set, 2, NOW + 10));
    cr_assert_eq(update_time_of(db, U1), NOW + 10);

    /* Same values (and NULL onto NULL, and the current username): no change. */
    kz_account_update_t same[] = {{"display_name", "Alice"}, {"timezone", "UTC"}, {"avatar_url", NULL},
                                  {"username", "alice"},    {"lang_tag", "en"}};
    DB_OK(db, kz_store_account_update(db, U1, same, 5, NOW + 20));
    cr_assert_eq(update_time_of(db, U1), NOW + 10, "[%s] update_time bumped without a change", dbfx.label);
    DB_OK(db, kz_store_account_update(db, U1, same, 1, NOW + 30));
    cr_assert_eq(update_time_of(db, U1), NOW + 10);

    /* One differing value among equal ones bumps it. */
    kz_account_update_t one[] = {{"display_name", "Alice"}, {"location", "Oslo"}};
    DB_OK(db, kz_store_account_update(db, U1, one, 2, NOW + 40));
    cr_assert_eq(update_time_of(db, U1), NOW + 40);
    /* A clear of a set value is a change too. */
    kz_account_update_t clr[] = {{"location", NULL}};
    DB_OK(db, kz_store_account_update(db, U1, clr, 1, NOW + 50));
    cr_assert_eq(update_time_of(db, U1), NOW + 50);
    DB_OK(db, kz_store_account_update(db, U1, clr, 1, NOW + 60));
    cr_assert_eq(update_time_of(db, U1), NOW + 50);
}

KZ_DB_TEST(account, update_username_taken)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    create_user(db, U2, "bob", KZ_ID_DEVICE, "device-bob-00001", NULL, NOW + 1);
    kz_account_update_t upd[] = {{"display_name", "Bobby"}, {"username", "alice"}, {"location", "Rome"}};
    DB_RC(db, kz_store_account_update(db, U2, upd, 3, NOW + 100), KZ_DB_ECONFLICT);
    kz_user_t u;
    find_user(db, KZ_ID_USER, U2, &u);
    ASSERT_STR(u.username, "bob", "username");
    ASSERT_STR(u.display_name, NULL, "display_name (nothing may change)");
    ASSERT_STR(u.location, NULL, "location (nothing may change)");
    cr_assert_eq(u.update_time, NOW + 1, "[%s] update_time moved on conflict", dbfx.label);
    kz_user_clear(&u);
    find_user(db, KZ_ID_USERNAME, "alice", &u);
    cr_assert_str_eq(u.id, U1);
    kz_user_clear(&u);
}

KZ_DB_TEST(account, update_unknown_user)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    kz_account_update_t upd[] = {{"display_name", "Ghost"}};
    DB_RC(db, kz_store_account_update(db, GHOST, upd, 1, NOW + 1), KZ_STORE_NOTFOUND);
    kz_account_update_t nul[] = {{"display_name", NULL}};
    DB_RC(db, kz_store_account_update(db, GHOST, nul, 1, NOW + 1), KZ_STORE_NOTFOUND);
    cr_assert_eq(update_time_of(db, U1), NOW);
}

/* ---- Link ---------------------------------------------------------------- */

KZ_DB_TEST(account, link_device_custom_email)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-alice-0002", NULL, NOW + 1));
    const char *devs[] = {"device-alice-0001", "device-alice-0002"};
    expect_devices(db, U1, devs, 2);
    expect_device_owner(db, "device-alice-0002", U1);

    DB_OK(db, kz_store_link(db, U1, KZ_ID_CUSTOM, "custom-alice", NULL, NOW + 2));
    kz_user_t u;
    find_user(db, KZ_ID_CUSTOM, "custom-alice", &u);
    cr_assert_str_eq(u.id, U1);
    cr_assert_eq(u.update_time, NOW + 2);
    ASSERT_STR(u.email, NULL, "email");
    kz_user_clear(&u);

    DB_OK(db, kz_store_link(db, U1, KZ_ID_EMAIL, "alice@example.com", HASH1, NOW + 3));
    find_user(db, KZ_ID_EMAIL, "alice@example.com", &u);
    cr_assert_str_eq(u.id, U1);
    ASSERT_STR(u.password, HASH1, "password");
    ASSERT_STR(u.custom_id, "custom-alice", "custom_id");
    cr_assert_eq(u.update_time, NOW + 3);
    cr_assert_eq(u.create_time, NOW);
    kz_user_clear(&u);
    cr_assert_eq(users_count(db), 2);
}

KZ_DB_TEST(account, link_taken_by_another_user)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_CUSTOM, "custom-alice", NULL, NOW));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_EMAIL, "alice@example.com", HASH1, NOW));
    create_user(db, U2, "bob", KZ_ID_DEVICE, "device-bob-00001", NULL, NOW + 1);

    DB_RC(db, kz_store_link(db, U2, KZ_ID_DEVICE, "device-alice-0001", NULL, NOW + 5), KZ_DB_ECONFLICT);
    DB_RC(db, kz_store_link(db, U2, KZ_ID_CUSTOM, "custom-alice", NULL, NOW + 5), KZ_DB_ECONFLICT);
    DB_RC(db, kz_store_link(db, U2, KZ_ID_EMAIL, "alice@example.com", HASH2, NOW + 5), KZ_DB_ECONFLICT);

    expect_device_owner(db, "device-alice-0001", U1);
    const char *bdevs[] = {"device-bob-00001"};
    expect_devices(db, U2, bdevs, 1);
    kz_user_t u;
    find_user(db, KZ_ID_USER, U2, &u);
    ASSERT_STR(u.custom_id, NULL, "bob custom_id");
    ASSERT_STR(u.email, NULL, "bob email");
    ASSERT_STR(u.password, NULL, "bob password");
    cr_assert_eq(u.update_time, NOW + 1, "[%s] bob changed by a failed link", dbfx.label);
    kz_user_clear(&u);
    find_user(db, KZ_ID_EMAIL, "alice@example.com", &u);
    cr_assert_str_eq(u.id, U1);
    ASSERT_STR(u.password, HASH1, "alice password");
    kz_user_clear(&u);
}

KZ_DB_TEST(account, relink_own_identifiers)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-alice-0001", NULL, NOW + 1));
    const char *devs[] = {"device-alice-0001"};
    expect_devices(db, U1, devs, 1);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_CUSTOM, "custom-alice", NULL, NOW + 2));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_CUSTOM, "custom-alice", NULL, NOW + 3));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_EMAIL, "alice@example.com", HASH1, NOW + 4));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_EMAIL, "alice@example.com", HASH2, NOW + 5));
    kz_user_t u;
    find_user(db, KZ_ID_EMAIL, "alice@example.com", &u);
    cr_assert_str_eq(u.id, U1);
    ASSERT_STR(u.custom_id, "custom-alice", "custom_id");
    ASSERT_STR(u.password, HASH2, "password (re-link sets the new hash)");
    kz_user_clear(&u);
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 1);
}

KZ_DB_TEST(account, link_unknown_user)
{
    DB_RC(db, kz_store_link(db, GHOST, KZ_ID_CUSTOM, "custom-ghost", NULL, NOW), KZ_STORE_NOTFOUND);
    DB_RC(db, kz_store_link(db, GHOST, KZ_ID_EMAIL, "ghost@example.com", HASH1, NOW), KZ_STORE_NOTFOUND);
    /* A device cannot be attached to a missing user (foreign key): some
     * error, and no row. */
    int rc = kz_store_link(db, GHOST, KZ_ID_DEVICE, "device-ghost-0001", NULL, NOW);
    cr_assert_neq(rc, KZ_DB_OK, "[%s] linked a device to a missing user", dbfx.label);
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 0);
}

/* ---- Unlink --------------------------------------------------------------- */

KZ_DB_TEST(account, unlink_device_when_custom_remains)
{
    create_user(db, U1, "alice", KZ_ID_CUSTOM, "custom-alice", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-alice-0001", NULL, NOW + 1));
    DB_OK(db, kz_store_unlink(db, U1, KZ_ID_DEVICE, "device-alice-0001", NOW + 2));
    expect_devices(db, U1, NULL, 0);
    expect_notfound(db, KZ_ID_DEVICE, "device-alice-0001");
    kz_user_t u;
    find_user(db, KZ_ID_CUSTOM, "custom-alice", &u);
    cr_assert_str_eq(u.id, U1);
    kz_user_clear(&u);
    /* The custom id is now the last identifier. */
    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_CUSTOM, "custom-alice", NOW + 3), KZ_STORE_LAST_LINK);
    find_user(db, KZ_ID_CUSTOM, "custom-alice", &u);
    ASSERT_STR(u.custom_id, "custom-alice", "custom_id kept");
    cr_assert_eq(u.update_time, NOW, "[%s] update_time %lld", dbfx.label, (long long)u.update_time);
    kz_user_clear(&u);
}

KZ_DB_TEST(account, unlink_between_devices)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-alice-0002", NULL, NOW));
    DB_OK(db, kz_store_unlink(db, U1, KZ_ID_DEVICE, "device-alice-0001", NOW + 1));
    const char *left[] = {"device-alice-0002"};
    expect_devices(db, U1, left, 1);
    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_DEVICE, "device-alice-0002", NOW + 2), KZ_STORE_LAST_LINK);
    expect_devices(db, U1, left, 1);
}

KZ_DB_TEST(account, unlink_last_identifier_refused)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    create_user(db, U2, "bob", KZ_ID_CUSTOM, "custom-bob-42", NULL, NOW);
    create_user(db, U3, "carol", KZ_ID_EMAIL, "carol@example.com", HASH1, NOW);

    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_DEVICE, "device-alice-0001", NOW + 1), KZ_STORE_LAST_LINK);
    expect_device_owner(db, "device-alice-0001", U1);
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 1);

    DB_RC(db, kz_store_unlink(db, U2, KZ_ID_CUSTOM, "custom-bob-42", NOW + 1), KZ_STORE_LAST_LINK);
    kz_user_t u;
    find_user(db, KZ_ID_CUSTOM, "custom-bob-42", &u);
    cr_assert_str_eq(u.id, U2);
    cr_assert_eq(u.update_time, NOW, "[%s] refused unlink moved update_time", dbfx.label);
    kz_user_clear(&u);

    DB_RC(db, kz_store_unlink(db, U3, KZ_ID_EMAIL, "carol@example.com", NOW + 1), KZ_STORE_LAST_LINK);
    find_user(db, KZ_ID_EMAIL, "carol@example.com", &u);
    cr_assert_str_eq(u.id, U3);
    ASSERT_STR(u.password, HASH1, "password kept");
    cr_assert_eq(u.update_time, NOW);
    kz_user_clear(&u);
}

KZ_DB_TEST(account, unlink_identifier_not_owned)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_CUSTOM, "custom-alice", NULL, NOW));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-alice-0002", NULL, NOW));
    create_user(db, U2, "bob", KZ_ID_DEVICE, "device-bob-00001", NULL, NOW);
    DB_OK(db, kz_store_link(db, U2, KZ_ID_CUSTOM, "custom-bob-42", NULL, NOW));
    DB_OK(db, kz_store_link(db, U2, KZ_ID_EMAIL, "bob@example.com", HASH1, NOW));

    /* Alice has other identifiers, yet none of these is hers. */
    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_DEVICE, "device-nobody-0001", NOW + 1), KZ_STORE_LAST_LINK);
    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_DEVICE, "device-bob-00001", NOW + 1), KZ_STORE_LAST_LINK);
    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_CUSTOM, "custom-bob-42", NOW + 1), KZ_STORE_LAST_LINK);
    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_CUSTOM, "custom-wrong", NOW + 1), KZ_STORE_LAST_LINK);
    DB_RC(db, kz_store_unlink(db, U1, KZ_ID_EMAIL, "bob@example.com", NOW + 1), KZ_STORE_LAST_LINK);
    DB_RC(db, kz_store_unlink(db, GHOST, KZ_ID_DEVICE, "device-alice-0001", NOW + 1), KZ_STORE_LAST_LINK);

    /* Nothing moved. */
    expect_device_owner(db, "device-bob-00001", U2);
    expect_device_owner(db, "device-alice-0001", U1);
    cr_assert_eq(dbfx_count(db, "user_device", NULL, NULL, 0), 3);
    kz_user_t u;
    find_user(db, KZ_ID_USER, U2, &u);
    ASSERT_STR(u.custom_id, "custom-bob-42", "bob custom_id");
    ASSERT_STR(u.email, "bob@example.com", "bob email");
    ASSERT_STR(u.password, HASH1, "bob password");
    kz_user_clear(&u);
    find_user(db, KZ_ID_USER, U1, &u);
    ASSERT_STR(u.custom_id, "custom-alice", "alice custom_id");
    cr_assert_eq(u.update_time, NOW);
    kz_user_clear(&u);
}

KZ_DB_TEST(account, unlink_email_clears_password)
{
    create_user(db, U1, "alice", KZ_ID_EMAIL, "alice@example.com", HASH1, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-alice-0001", NULL, NOW + 1));
    DB_OK(db, kz_store_unlink(db, U1, KZ_ID_EMAIL, "alice@example.com", NOW + 2));
    kz_user_t u;
    find_user(db, KZ_ID_USER, U1, &u);
    ASSERT_STR(u.email, NULL, "email");
    ASSERT_STR(u.password, NULL, "password");
    cr_assert_eq(u.update_time, NOW + 2);
    kz_user_clear(&u);
    expect_notfound(db, KZ_ID_EMAIL, "alice@example.com");
    expect_device_owner(db, "device-alice-0001", U1);
    /* The email is free again for someone else. */
    create_user(db, U2, "bob", KZ_ID_EMAIL, "alice@example.com", HASH2, NOW + 3);
}

KZ_DB_TEST(account, unlink_custom_when_email_remains)
{
    create_user(db, U1, "alice", KZ_ID_EMAIL, "alice@example.com", HASH1, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_CUSTOM, "custom-alice", NULL, NOW + 1));
    DB_OK(db, kz_store_unlink(db, U1, KZ_ID_CUSTOM, "custom-alice", NOW + 2));
    kz_user_t u;
    find_user(db, KZ_ID_USER, U1, &u);
    ASSERT_STR(u.custom_id, NULL, "custom_id");
    ASSERT_STR(u.email, "alice@example.com", "email");
    ASSERT_STR(u.password, HASH1, "password");
    cr_assert_eq(u.update_time, NOW + 2);
    kz_user_clear(&u);
    expect_notfound(db, KZ_ID_CUSTOM, "custom-alice");
}

/* Device ids and custom ids are separate namespaces and both pass the API's
 * validation with the same text ("player-one-device" is a valid device id
 * and a valid custom id). Removing the custom id must still see the device
 * as another way to sign in. */
KZ_DB_TEST(account, unlink_custom_keeps_device_with_same_text)
{
    create_user(db, U1, "alice", KZ_ID_CUSTOM, "player-one-device", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "player-one-device", NULL, NOW + 1));
    const char *devs[] = {"player-one-device"};
    expect_devices(db, U1, devs, 1);
    DB_OK(db, kz_store_unlink(db, U1, KZ_ID_CUSTOM, "player-one-device", NOW + 2));
    expect_notfound(db, KZ_ID_CUSTOM, "player-one-device");
    expect_device_owner(db, "player-one-device", U1);
}

/* ---- Batch read ----------------------------------------------------------- */

static void free_users(kz_user_t *v, int n)
{
    for (int i = 0; i < n; i++) kz_user_clear(&v[i]);
    kz_free(v);
}

static void expect_users(kz_db_t *db, char **ids, int nids, char **names, int nnames, const char *const *want,
                         int nwant)
{
    kz_user_t *v = (kz_user_t *)1;
    int n = -1;
    DB_OK(db, kz_store_users_get(db, ids, nids, names, nnames, &v, &n));
    cr_assert_eq(n, nwant, "[%s] users_get(%d ids, %d names) returned %d users, want %d", dbfx.label, nids, nnames,
                 n, nwant);
    if (nwant == 0) cr_assert_null(v, "[%s] empty result must be NULL", dbfx.label);
    for (int i = 0; i < n; i++) cr_assert_str_eq(v[i].id, want[i], "[%s] user %d: %s, want %s", dbfx.label, i, v[i].id, want[i]);
    free_users(v, n);
}

KZ_DB_TEST(account, users_get_by_ids_and_usernames)
{
    /* Created out of id order. */
    create_user(db, U3, "carol", KZ_ID_DEVICE, "device-carol-001", NULL, NOW + 3);
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-001", NULL, NOW + 1);
    create_user(db, U4, "dave", KZ_ID_CUSTOM, "custom-dave", NULL, NOW + 4);
    create_user(db, U2, "bob", KZ_ID_EMAIL, "bob@example.com", HASH1, NOW + 2);

    char *ids[] = {U3, GHOST, U1, U3};
    char *names[] = {"bob", "ghost", "alice", "carol"};
    const char *want[] = {U1, U2, U3};
    expect_users(db, ids, 4, names, 4, want, 3);

    /* The rows are complete. */
    kz_user_t *v;
    int n;
    DB_OK(db, kz_store_users_get(db, ids, 4, names, 4, &v, &n));
    cr_assert_eq(n, 3);
    ASSERT_STR(v[0].username, "alice", "username 0");
    cr_assert_eq(v[0].create_time, NOW + 1);
    ASSERT_STR(v[1].username, "bob", "username 1");
    ASSERT_STR(v[1].email, "bob@example.com", "email 1");
    cr_assert_eq(v[1].create_time, NOW + 2);
    ASSERT_STR(v[2].username, "carol", "username 2");
    cr_assert_eq(v[2].update_time, NOW + 3);
    free_users(v, n);

    char *only_ids[] = {U4, U2};
    const char *want_ids[] = {U2, U4};
    expect_users(db, only_ids, 2, NULL, 0, want_ids, 2);
    char *only_names[] = {"dave", "dave", "nobody"};
    const char *want_names[] = {U4};
    expect_users(db, NULL, 0, only_names, 3, want_names, 1);
    char *unknown[] = {GHOST};
    expect_users(db, unknown, 1, unknown, 1, NULL, 0);
    expect_users(db, NULL, 0, NULL, 0, NULL, 0);
}

KZ_DB_TEST(account, users_get_many_ids)
{
    /* 300 users, fetched by 300 ids and 300 usernames in one call. */
    char ids[300][37], names[300][16];
    char *pid[300], *pname[300];
    DB_OK(db, kz_db_begin(db));
    for (int i = 0; i < 300; i++) {
        snprintf(ids[i], sizeof ids[i], "%08d-0000-4000-8000-000000000000", i + 1);
        snprintf(names[i], sizeof names[i], "user%03d", i);
        pid[i] = ids[i];
        pname[i] = names[i];
        kz_dbval_t p[] = {KZ_DBTEXT(ids[i]), KZ_DBTEXT(names[i]), KZ_DBINT(NOW)};
        DB_OK(db, kz_db_exec(db, "INSERT INTO users (id, username, create_time, update_time) VALUES ($1, $2, $3, $3)",
                             p, 3, NULL));
    }
    DB_OK(db, kz_db_commit(db));
    kz_user_t *v;
    int n;
    DB_OK(db, kz_store_users_get(db, pid, 300, pname, 300, &v, &n));
    cr_assert_eq(n, 300, "[%s] got %d", dbfx.label, n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(v[i].id, ids[i]);
        cr_assert_str_eq(v[i].username, names[i]);
    }
    free_users(v, n);
}

/* ---- Delete --------------------------------------------------------------- */

KZ_DB_TEST(account, delete_user_and_devices)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    DB_OK(db, kz_store_link(db, U1, KZ_ID_DEVICE, "device-alice-0002", NULL, NOW));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_CUSTOM, "custom-alice", NULL, NOW));
    DB_OK(db, kz_store_link(db, U1, KZ_ID_EMAIL, "alice@example.com", HASH1, NOW));
    create_user(db, U2, "bob", KZ_ID_DEVICE, "device-bob-00001", NULL, NOW);
    int64_t n = users_count(db);

    DB_OK(db, kz_store_user_delete(db, U1));
    cr_assert_eq(users_count(db), n - 1);
    expect_notfound(db, KZ_ID_USER, U1);
    expect_notfound(db, KZ_ID_USERNAME, "alice");
    expect_notfound(db, KZ_ID_DEVICE, "device-alice-0001");
    expect_notfound(db, KZ_ID_DEVICE, "device-alice-0002");
    expect_notfound(db, KZ_ID_CUSTOM, "custom-alice");
    expect_notfound(db, KZ_ID_EMAIL, "alice@example.com");
    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    cr_assert_eq(dbfx_count(db, "user_device", "user_id = $1", p, 1), 0);
    expect_devices(db, U1, NULL, 0);
    /* Bob is untouched. */
    expect_device_owner(db, "device-bob-00001", U2);

    /* Every identifier and the username can be reused. */
    create_user(db, U3, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW + 9);
    expect_device_owner(db, "device-alice-0001", U3);
    DB_OK(db, kz_store_link(db, U3, KZ_ID_DEVICE, "device-alice-0002", NULL, NOW + 9));
    DB_OK(db, kz_store_link(db, U3, KZ_ID_CUSTOM, "custom-alice", NULL, NOW + 9));

    DB_RC(db, kz_store_user_delete(db, U1), KZ_STORE_NOTFOUND);
    DB_RC(db, kz_store_user_delete(db, GHOST), KZ_STORE_NOTFOUND);
    cr_assert_eq(users_count(db), n);
}

KZ_DB_TEST(account, delete_user_drops_cutoff)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    DB_OK(db, kz_store_revoke_user(db, U1, NOW, NOW + 60000));
    DB_OK(db, kz_store_revoke_user(db, U2, NOW, NOW + 60000));
    DB_OK(db, kz_store_user_delete(db, U1));
    kz_dbval_t p1[] = {KZ_DBTEXT(U1)}, p2[] = {KZ_DBTEXT(U2)};
    cr_assert_eq(dbfx_count(db, "session_cutoff", "user_id = $1", p1, 1), 0);
    cr_assert_eq(dbfx_count(db, "session_cutoff", "user_id = $1", p2, 1), 1);
}

/* ---- Revocations ------------------------------------------------------------ */

#define MAX_SEEN 16

/* What kz_store_revocations_load reported. */
struct seen {
    int n;
    struct {
        char token_id[64];
        char user_id[64];
        bool token_null, user_null;
        int64_t cutoff_ms, expire_ms;
    } e[MAX_SEEN];
};

static void collect(void *arg, const char *token_id, const char *user_id, int64_t cutoff_ms, int64_t expire_ms)
{
    struct seen *s = arg;
    if (s->n >= MAX_SEEN) {
        s->n++;
        return;
    }
    s->e[s->n].token_null = !token_id;
    s->e[s->n].user_null = !user_id;
    snprintf(s->e[s->n].token_id, sizeof s->e[s->n].token_id, "%s", token_id ? token_id : "");
    snprintf(s->e[s->n].user_id, sizeof s->e[s->n].user_id, "%s", user_id ? user_id : "");
    s->e[s->n].cutoff_ms = cutoff_ms;
    s->e[s->n].expire_ms = expire_ms;
    s->n++;
}

static void load(kz_db_t *db, int64_t now, struct seen *s)
{
    memset(s, 0, sizeof *s);
    DB_OK(db, kz_store_revocations_load(db, now, collect, s));
    cr_assert_leq(s->n, MAX_SEEN);
}

/* Index of the token entry tid in s, or -1. */
static int seen_token(const struct seen *s, const char *tid)
{
    for (int i = 0; i < s->n; i++)
        if (!s->e[i].token_null && strcmp(s->e[i].token_id, tid) == 0) return i;
    return -1;
}

static int seen_user(const struct seen *s, const char *uid)
{
    for (int i = 0; i < s->n; i++)
        if (!s->e[i].user_null && strcmp(s->e[i].user_id, uid) == 0) return i;
    return -1;
}

#define T1 "018bcfe5-6800-7000-8000-000000000001"
#define T2 "018bcfe5-6800-7000-8000-000000000002"
#define T3 "018bcfe5-6800-7000-8000-000000000003"
#define T4 "018bcfe5-6800-7000-8000-000000000004"

KZ_DB_TEST(account, revoke_token_persists)
{
    DB_OK(db, kz_store_revoke_token(db, T1, U1, NOW + 60000));
    /* Revoking again is not an error and keeps the first row. */
    DB_OK(db, kz_store_revoke_token(db, T1, U1, NOW + 90000));
    DB_OK(db, kz_store_revoke_token(db, T2, U1, NOW + 30000));
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), 2);
    kz_dbval_t p[] = {KZ_DBTEXT(T2)};
    char sql[] = "SELECT expire_time FROM session_revocation WHERE token_id = $1";
    cr_assert_eq(dbfx_query_int(db, sql, p, 1), NOW + 30000);

    struct seen s;
    load(db, NOW, &s);
    cr_assert_eq(s.n, 2, "[%s] loaded %d entries", dbfx.label, s.n);
    int i = seen_token(&s, T1), j = seen_token(&s, T2);
    cr_assert(i >= 0 && j >= 0, "[%s] tokens missing", dbfx.label);
    cr_assert(s.e[i].user_null, "[%s] token entries have a NULL user id", dbfx.label);
    cr_assert_eq(s.e[i].cutoff_ms, 0);
    cr_assert_eq(s.e[i].expire_ms, NOW + 60000);
    cr_assert_eq(s.e[j].expire_ms, NOW + 30000);
}

KZ_DB_TEST(account, revoke_user_upsert_keeps_latest)
{
    DB_OK(db, kz_store_revoke_user(db, U1, NOW - 5000, NOW + 10000));
    DB_OK(db, kz_store_revoke_user(db, U1, NOW - 1000, NOW + 20000));
    DB_OK(db, kz_store_revoke_user(db, U2, NOW - 3000, NOW + 5000));
    cr_assert_eq(dbfx_count(db, "session_cutoff", NULL, NULL, 0), 2);

    struct seen s;
    load(db, NOW, &s);
    cr_assert_eq(s.n, 2, "[%s] loaded %d entries", dbfx.label, s.n);
    int i = seen_user(&s, U1), j = seen_user(&s, U2);
    cr_assert(i >= 0 && j >= 0, "[%s] cutoffs missing", dbfx.label);
    cr_assert(s.e[i].token_null, "[%s] cutoff entries have a NULL token id", dbfx.label);
    cr_assert_eq(s.e[i].cutoff_ms, NOW - 1000, "[%s] cutoff %lld", dbfx.label, (long long)s.e[i].cutoff_ms);
    cr_assert_eq(s.e[i].expire_ms, NOW + 20000);
    cr_assert_eq(s.e[j].cutoff_ms, NOW - 3000);
    cr_assert_eq(s.e[j].expire_ms, NOW + 5000);
}

KZ_DB_TEST(account, revocations_load_drops_expired)
{
    DB_OK(db, kz_store_revoke_token(db, T1, U1, NOW - 1));     /* expired */
    DB_OK(db, kz_store_revoke_token(db, T2, U1, NOW));         /* expires now: expired */
    DB_OK(db, kz_store_revoke_token(db, T3, U2, NOW + 1));     /* live */
    DB_OK(db, kz_store_revoke_token(db, T4, U2, NOW + 86400000));
    DB_OK(db, kz_store_revoke_user(db, U1, NOW - 100, NOW - 50)); /* expired */
    DB_OK(db, kz_store_revoke_user(db, U2, NOW - 100, NOW + 500));
    DB_OK(db, kz_store_revoke_user(db, U3, NOW - 100, NOW));       /* expired */

    struct seen s;
    load(db, NOW, &s);
    cr_assert_eq(s.n, 3, "[%s] loaded %d entries, want 3", dbfx.label, s.n);
    cr_assert_lt(seen_token(&s, T1), 0, "[%s] expired token loaded", dbfx.label);
    cr_assert_lt(seen_token(&s, T2), 0, "[%s] token expiring now loaded", dbfx.label);
    int i = seen_token(&s, T3);
    cr_assert_geq(i, 0);
    cr_assert_eq(s.e[i].expire_ms, NOW + 1);
    cr_assert_geq(seen_token(&s, T4), 0);
    cr_assert_lt(seen_user(&s, U1), 0);
    cr_assert_lt(seen_user(&s, U3), 0);
    i = seen_user(&s, U2);
    cr_assert_geq(i, 0);
    cr_assert_eq(s.e[i].cutoff_ms, NOW - 100);
    cr_assert_eq(s.e[i].expire_ms, NOW + 500);

    /* The expired rows are gone from the store. */
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), 2);
    cr_assert_eq(dbfx_count(db, "session_cutoff", NULL, NULL, 0), 1);

    /* Later, more of them expire. */
    load(db, NOW + 501, &s);
    cr_assert_eq(s.n, 1, "[%s] loaded %d entries, want 1", dbfx.label, s.n);
    cr_assert_geq(seen_token(&s, T4), 0);
    cr_assert_eq(dbfx_count(db, "session_cutoff", NULL, NULL, 0), 0);

    /* And an empty store calls back nothing. */
    load(db, NOW + 86400001, &s);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(dbfx_count(db, "session_revocation", NULL, NULL, 0), 0);
}

KZ_DB_TEST(account, set_disabled_bans_and_unbans)
{
    create_user(db, U1, "alice", KZ_ID_DEVICE, "device-alice-0001", NULL, NOW);
    create_user(db, U2, "bob", KZ_ID_DEVICE, "device-bob-00001", NULL, NOW);
    char *ids[] = {U1, GHOST, SYSTEM_USER};
    int64_t changed = -1;
    DB_OK(db, kz_store_users_set_disabled(db, ids, 3, NOW + 5, &changed));
    cr_assert_eq(changed, 1, "[%s] %lld users, want 1", dbfx.label, (long long)changed);
    kz_user_t u;
    find_user(db, KZ_ID_USER, U1, &u);
    cr_assert_eq(u.disable_time, NOW + 5);
    kz_user_clear(&u);
    find_user(db, KZ_ID_USER, U2, &u);
    cr_assert_eq(u.disable_time, 0);
    kz_user_clear(&u);
    kz_dbval_t p[] = {KZ_DBTEXT(SYSTEM_USER)};
    cr_assert_eq(dbfx_count(db, "users", "id = $1 AND disable_time = 0", p, 1), 1, "[%s] system user untouched",
                 dbfx.label);
    DB_OK(db, kz_store_users_set_disabled(db, ids, 1, 0, &changed));
    cr_assert_eq(changed, 1);
    find_user(db, KZ_ID_USER, U1, &u);
    cr_assert_eq(u.disable_time, 0);
    kz_user_clear(&u);
    DB_OK(db, kz_store_users_set_disabled(db, ids, 0, NOW, &changed));
    cr_assert_eq(changed, 0);
}
