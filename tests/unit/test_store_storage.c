/* Storage store tests (store/storage.h) on SQLite and PostgreSQL (fresh,
 * migrated database each; see dbfixture.h): versions and optimistic
 * concurrency, permissions, all-or-nothing batches, listing with stable
 * positions, racing writers, and account deletion. Also the MD5 behind the
 * versions (core/md5.h) against RFC 1321's test suite. */
#include <criterion/criterion.h>

#include <pthread.h>

#include "core/md5.h"
#include "dbfixture.h"
#include "store/storage.h"

#define NOW INT64_C(1700000000000) /* 2023-11-14T22:13:20Z */

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"
#define SYS "00000000-0000-0000-0000-000000000000"

/* ---- MD5 --------------------------------------------------------------------- */

/* RFC 1321, appendix A.5. */
static const struct {
    const char *in, *hex;
} rfc1321[] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e"},
    {"a", "0cc175b9c0f1b6a831c399e269772661"},
    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"},
    {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
};

Test(md5, rfc1321_test_suite)
{
    for (size_t i = 0; i < sizeof rfc1321 / sizeof rfc1321[0]; i++) {
        char hex[KZ_MD5_HEX_LEN + 1];
        kz_md5_hex(rfc1321[i].in, strlen(rfc1321[i].in), hex);
        cr_assert_str_eq(hex, rfc1321[i].hex, "MD5(\"%s\") = %s, want %s", rfc1321[i].in, hex, rfc1321[i].hex);
    }
}

Test(md5, raw_digest_bytes)
{
    unsigned char d[KZ_MD5_LEN];
    kz_md5("abc", 3, d);
    static const unsigned char want[KZ_MD5_LEN] = {0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0,
                                                   0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72};
    cr_assert_arr_eq(d, want, KZ_MD5_LEN);
}

/* Feeding the input in pieces of any size gives the one-shot digest,
 * across every padding case (55, 56, 63, 64, 65 bytes and more). */
Test(md5, incremental_equals_one_shot)
{
    char buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)('a' + (i * 7) % 26);
    size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 300};
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        unsigned char want[KZ_MD5_LEN];
        kz_md5(buf, lens[l], want);
        for (size_t step = 1; step <= 70; step += 23) {
            kz_md5_t ctx;
            kz_md5_init(&ctx);
            for (size_t off = 0; off < lens[l]; off += step)
                kz_md5_update(&ctx, buf + off, lens[l] - off < step ? lens[l] - off : step);
            unsigned char got[KZ_MD5_LEN];
            kz_md5_final(&ctx, got);
            cr_assert_arr_eq(got, want, KZ_MD5_LEN, "length %zu in steps of %zu", lens[l], step);
        }
    }
    /* A known multi-block value: the 80 digits above, fed one byte at a time. */
    kz_md5_t ctx;
    kz_md5_init(&ctx);
    const char *s = rfc1321[6].in;
    for (size_t i = 0; s[i]; i++) kz_md5_update(&ctx, s + i, 1);
    unsigned char got[KZ_MD5_LEN], want[KZ_MD5_LEN];
    kz_md5_final(&ctx, got);
    kz_md5(s, strlen(s), want);
    cr_assert_arr_eq(got, want, KZ_MD5_LEN);
}

Test(md5, million_a)
{
    /* The classic long vector: one million 'a'. */
    static char block[1000];
    memset(block, 'a', sizeof block);
    kz_md5_t ctx;
    kz_md5_init(&ctx);
    for (int i = 0; i < 1000; i++) kz_md5_update(&ctx, block, sizeof block);
    unsigned char d[KZ_MD5_LEN];
    kz_md5_final(&ctx, d);
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    cr_assert_str_eq(hex, "7707d6ae4e027c70eea2a935c2296f21");
}

/* ---- Helpers ----------------------------------------------------------------- */

static const char *md5_of(const char *s, char out[33])
{
    kz_md5_hex(s, strlen(s), out);
    return out;
}

/* A write of value by owner with the given version and permissions. */
static kz_storage_write_t wr(const char *collection, const char *key, const char *owner, const char *value,
                             const char *version, int read, int write)
{
    return (kz_storage_write_t){collection, key, owner, value, version, read, write};
}

/* Writes one object and returns the outcome; fills *ack when given. */
static int write1(kz_db_t *db, kz_storage_write_t w, bool authoritative, int64_t now, kz_storage_ack_t *ack)
{
    kz_storage_ack_t local;
    return kz_store_storage_write(db, &w, 1, authoritative, now, ack ? ack : &local, NULL);
}

static void put(kz_db_t *db, const char *collection, const char *key, const char *owner, const char *value,
                int read, int write, int64_t now)
{
    DB_OK(db, write1(db, wr(collection, key, owner, value, "", read, write), true, now, NULL));
}

/* Reads one object as the server (all permissions); false when absent. */
static bool get(kz_db_t *db, const char *collection, const char *key, const char *owner, kz_storage_object_t *o)
{
    kz_storage_id_t id = {collection, key, owner, NULL};
    kz_storage_object_t *v = NULL;
    int n = -1;
    DB_OK(db, kz_store_storage_read(db, NULL, &id, 1, &v, &n));
    cr_assert(n == 0 || n == 1, "[%s] read of one id returned %d objects", dbfx.label, n);
    if (n == 1) {
        *o = v[0];
        kz_free(v); /* o owns the strings now */
        return true;
    }
    return false;
}

static void object_clear(kz_storage_object_t *o)
{
    kz_free(o->collection);
    kz_free(o->key);
    kz_free(o->value);
    memset(o, 0, sizeof *o);
}

/* The stored value of an object, or "<absent>". Owned. */
static char *value_of(kz_db_t *db, const char *collection, const char *key, const char *owner)
{
    kz_storage_object_t o;
    if (!get(db, collection, key, owner, &o)) return kz_strdup("<absent>");
    char *v = o.value;
    o.value = NULL;
    object_clear(&o);
    return v;
}

#define EXPECT_VALUE(db, c, k, u, want)                                                            \
    do {                                                                                           \
        char *v_ = value_of(db, c, k, u);                                                          \
        cr_assert_str_eq(v_, want, "[%s] %s/%s/%s holds %s, want %s", dbfx.label, c, k, u, v_, want); \
        kz_free(v_);                                                                               \
    } while (0)

static int64_t storage_count(kz_db_t *db)
{
    return dbfx_count(db, "storage", NULL, NULL, 0);
}

/* ---- Write ------------------------------------------------------------------- */

KZ_DB_TEST(storage, write_creates_with_md5_version_and_times)
{
    kz_storage_ack_t ack;
    char h[33];
    DB_OK(db, write1(db, wr("saves", "slot1", U1, "{\"level\": 3}", "", 2, 0), false, NOW + 1234, &ack));
    cr_assert_str_eq(ack.version, md5_of("{\"level\": 3}", h));
    cr_assert_eq(ack.create_time, NOW + 1234);
    cr_assert_eq(ack.update_time, NOW + 1234);

    kz_storage_object_t o;
    cr_assert(get(db, "saves", "slot1", U1, &o), "[%s] object stored", dbfx.label);
    cr_assert_str_eq(o.collection, "saves");
    cr_assert_str_eq(o.key, "slot1");
    cr_assert_str_eq(o.user_id, U1);
    cr_assert_str_eq(o.value, "{\"level\": 3}", "value stored exactly as written");
    cr_assert_str_eq(o.version, h);
    cr_assert_eq(o.permission_read, 2);
    cr_assert_eq(o.permission_write, 0);
    cr_assert_eq(o.create_time, NOW + 1234);
    cr_assert_eq(o.update_time, NOW + 1234);
    object_clear(&o);
    cr_assert_eq(storage_count(db), 1);
}

KZ_DB_TEST(storage, unconditional_write_overwrites_and_keeps_create_time)
{
    put(db, "c", "k", U1, "{\"v\":1}", 1, 1, NOW);
    kz_storage_ack_t ack;
    char h[33];
    DB_OK(db, write1(db, wr("c", "k", U1, "{\"v\":2}", NULL, 2, 1), false, NOW + 5000, &ack));
    cr_assert_str_eq(ack.version, md5_of("{\"v\":2}", h));
    cr_assert_eq(ack.create_time, NOW);
    cr_assert_eq(ack.update_time, NOW + 5000);
    kz_storage_object_t o;
    cr_assert(get(db, "c", "k", U1, &o));
    cr_assert_str_eq(o.value, "{\"v\":2}");
    cr_assert_eq(o.permission_read, 2, "permissions are replaced too");
    object_clear(&o);
    cr_assert_eq(storage_count(db), 1);
}

KZ_DB_TEST(storage, identical_rewrite_keeps_update_time)
{
    put(db, "c", "k", U1, "{\"v\":1}", 1, 1, NOW);
    kz_storage_ack_t ack;
    DB_OK(db, write1(db, wr("c", "k", U1, "{\"v\":1}", "", 1, 1), false, NOW + 9000, &ack));
    cr_assert_eq(ack.update_time, NOW, "[%s] nothing changed, update_time kept", dbfx.label);
    /* A permission change is a change. */
    DB_OK(db, write1(db, wr("c", "k", U1, "{\"v\":1}", "", 2, 1), false, NOW + 9000, &ack));
    cr_assert_eq(ack.update_time, NOW + 9000);
}

KZ_DB_TEST(storage, if_absent_version_star)
{
    kz_storage_ack_t ack;
    DB_OK(db, write1(db, wr("c", "k", U1, "{\"first\":true}", "*", 1, 1), false, NOW, &ack));
    int rej = 99;
    kz_storage_write_t again = wr("c", "k", U1, "{\"second\":true}", "*", 1, 1);
    DB_RC(db, kz_store_storage_write(db, &again, 1, false, NOW + 1, &ack, &rej), KZ_STORAGE_REJECT_VERSION);
    cr_assert_eq(rej, 0);
    EXPECT_VALUE(db, "c", "k", U1, "{\"first\":true}");
    /* The same key of another owner is another object. */
    DB_OK(db, write1(db, wr("c", "k", U2, "{\"other\":true}", "*", 1, 1), false, NOW, NULL));
    /* Even the server cannot "create" over an existing object. */
    DB_RC(db, write1(db, wr("c", "k", U1, "{}", "*", 1, 1), true, NOW, NULL), KZ_STORAGE_REJECT_VERSION);
}

KZ_DB_TEST(storage, if_match_version)
{
    char h1[33], h2[33];
    put(db, "c", "k", U1, "{\"v\":1}", 1, 1, NOW);
    md5_of("{\"v\":1}", h1);
    /* Wrong version: rejected, unchanged. */
    DB_RC(db, write1(db, wr("c", "k", U1, "{\"v\":2}", "0123456789abcdef0123456789abcdef", 1, 1), false, NOW, NULL),
          KZ_STORAGE_REJECT_VERSION);
    EXPECT_VALUE(db, "c", "k", U1, "{\"v\":1}");
    /* Right version: updated, and the old version no longer matches. */
    kz_storage_ack_t ack;
    DB_OK(db, write1(db, wr("c", "k", U1, "{\"v\":2}", h1, 1, 1), false, NOW + 10, &ack));
    cr_assert_str_eq(ack.version, md5_of("{\"v\":2}", h2));
    cr_assert_eq(ack.update_time, NOW + 10);
    cr_assert_eq(ack.create_time, NOW);
    DB_RC(db, write1(db, wr("c", "k", U1, "{\"v\":3}", h1, 1, 1), false, NOW, NULL), KZ_STORAGE_REJECT_VERSION);
    EXPECT_VALUE(db, "c", "k", U1, "{\"v\":2}");
    /* A version for a missing object: rejected, nothing created. */
    DB_RC(db, write1(db, wr("c", "missing", U1, "{}", h1, 1, 1), false, NOW, NULL), KZ_STORAGE_REJECT_VERSION);
    DB_RC(db, write1(db, wr("c", "missing", U1, "{}", h1, 1, 1), true, NOW, NULL), KZ_STORAGE_REJECT_VERSION);
    cr_assert_eq(storage_count(db), 1);
}

KZ_DB_TEST(storage, write_protected_objects)
{
    char h[33];
    put(db, "c", "locked", U1, "{\"v\":1}", 2, 0, NOW);
    md5_of("{\"v\":1}", h);
    /* The owner cannot overwrite write=0, with or without the right version. */
    DB_RC(db, write1(db, wr("c", "locked", U1, "{\"v\":2}", "", 1, 1), false, NOW, NULL),
          KZ_STORAGE_REJECT_PERMISSION);
    DB_RC(db, write1(db, wr("c", "locked", U1, "{\"v\":2}", h, 1, 1), false, NOW, NULL),
          KZ_STORAGE_REJECT_PERMISSION);
    /* Permission is reported before a version mismatch, as in Nakama. */
    DB_RC(db, write1(db, wr("c", "locked", U1, "{\"v\":2}", "ffffffffffffffffffffffffffffffff", 1, 1), false, NOW,
                     NULL),
          KZ_STORAGE_REJECT_PERMISSION);
    DB_RC(db, write1(db, wr("c", "locked", U1, "{\"v\":2}", "*", 1, 1), false, NOW, NULL), KZ_STORAGE_REJECT_VERSION);
    EXPECT_VALUE(db, "c", "locked", U1, "{\"v\":1}");
    /* The server can. */
    DB_OK(db, write1(db, wr("c", "locked", U1, "{\"v\":3}", h, 2, 0), true, NOW, NULL));
    DB_OK(db, write1(db, wr("c", "locked", U1, "{\"v\":4}", "", 1, 1), true, NOW, NULL));
    EXPECT_VALUE(db, "c", "locked", U1, "{\"v\":4}");
}

KZ_DB_TEST(storage, batch_acks_in_request_order)
{
    /* Applied sorted by (collection, key, user), acknowledged in request order. */
    kz_storage_write_t w[] = {
        wr("zeta", "b", U1, "{\"n\":0}", "", 1, 1),
        wr("alpha", "z", U1, "{\"n\":1}", "*", 2, 1),
        wr("alpha", "a", U1, "{\"n\":2}", "", 0, 0),
    };
    kz_storage_ack_t acks[3];
    int rej = 99;
    DB_OK(db, kz_store_storage_write(db, w, 3, false, NOW, acks, &rej));
    cr_assert_eq(rej, -1);
    for (int i = 0; i < 3; i++) {
        char h[33];
        cr_assert_str_eq(acks[i].version, md5_of(w[i].value, h), "[%s] ack %d", dbfx.label, i);
        cr_assert_eq(acks[i].create_time, NOW);
    }
    cr_assert_eq(storage_count(db), 3);
}

KZ_DB_TEST(storage, batch_is_all_or_nothing)
{
    put(db, "c", "existing", U1, "{\"v\":1}", 1, 1, NOW);
    put(db, "c", "locked", U1, "{\"v\":1}", 1, 0, NOW);
    kz_storage_write_t w[] = {
        wr("c", "new1", U1, "{\"n\":1}", "", 1, 1),
        wr("c", "existing", U1, "{\"v\":2}", "", 1, 1),
        wr("c", "new2", U1, "{\"n\":2}", "*", 1, 1),
        wr("c", "existing", U1, "{\"v\":3}", "*", 1, 1), /* rejected: exists */
    };
    kz_storage_ack_t acks[4];
    int rej = 99;
    DB_RC(db, kz_store_storage_write(db, w, 4, false, NOW + 1, acks, &rej), KZ_STORAGE_REJECT_VERSION);
    cr_assert_eq(rej, 3, "[%s] rejected index %d", dbfx.label, rej);
    EXPECT_VALUE(db, "c", "existing", U1, "{\"v\":1}");
    EXPECT_VALUE(db, "c", "new1", U1, "<absent>");
    EXPECT_VALUE(db, "c", "new2", U1, "<absent>");
    cr_assert_eq(storage_count(db), 2);

    /* A permission rejection anywhere in the batch undoes the rest too. */
    w[3] = wr("c", "locked", U1, "{\"v\":3}", "", 1, 1);
    DB_RC(db, kz_store_storage_write(db, w, 4, false, NOW + 1, acks, &rej), KZ_STORAGE_REJECT_PERMISSION);
    cr_assert_eq(rej, 3);
    EXPECT_VALUE(db, "c", "existing", U1, "{\"v\":1}");
    cr_assert_eq(storage_count(db), 2);

    /* The connection is usable after the rollback. */
    DB_OK(db, kz_store_storage_write(db, w, 3, false, NOW + 2, acks, &rej));
    cr_assert_eq(storage_count(db), 4);
    EXPECT_VALUE(db, "c", "existing", U1, "{\"v\":2}");
}

KZ_DB_TEST(storage, duplicate_ids_in_batch)
{
    /* The later write of the same object wins. */
    kz_storage_write_t w[] = {
        wr("c", "k", U1, "{\"n\":1}", "", 1, 1),
        wr("c", "k", U1, "{\"n\":2}", "", 1, 1),
    };
    kz_storage_ack_t acks[2];
    DB_OK(db, kz_store_storage_write(db, w, 2, false, NOW, acks, NULL));
    EXPECT_VALUE(db, "c", "k", U1, "{\"n\":2}");
    /* Creating the same object twice in one batch fails as a whole. */
    w[0] = wr("c", "dup", U1, "{\"n\":1}", "*", 1, 1);
    w[1] = wr("c", "dup", U1, "{\"n\":2}", "*", 1, 1);
    int rej = 99;
    DB_RC(db, kz_store_storage_write(db, w, 2, false, NOW, acks, &rej), KZ_STORAGE_REJECT_VERSION);
    cr_assert_eq(rej, 1);
    EXPECT_VALUE(db, "c", "dup", U1, "<absent>");
}

/* ---- Read -------------------------------------------------------------------- */

/* Reads ids as caller and checks the returned objects' keys, in order,
 * against want (a space-separated list; "" = none). */
static void expect_read(kz_db_t *db, const char *caller, const kz_storage_id_t *ids, int n, const char *want)
{
    kz_storage_object_t *v = (kz_storage_object_t *)1;
    int got = -1;
    DB_OK(db, kz_store_storage_read(db, caller, ids, n, &v, &got));
    char keys[512] = "";
    size_t len = 0;
    for (int i = 0; i < got; i++)
        len += (size_t)snprintf(keys + len, sizeof keys - len, "%s%s", i ? " " : "", v[i].key);
    cr_assert_str_eq(keys, want, "[%s] caller %s read [%s], want [%s]", dbfx.label, caller ? caller : "(server)",
                     keys, want);
    if (got == 0) cr_assert_null(v);
    kz_storage_objects_free(v, got);
}

KZ_DB_TEST(storage, read_permissions)
{
    put(db, "c", "r0", U1, "{}", 0, 1, NOW);
    put(db, "c", "r1", U1, "{}", 1, 1, NOW);
    put(db, "c", "r2", U1, "{}", 2, 1, NOW);
    put(db, "c", "sys1", SYS, "{}", 1, 0, NOW);
    put(db, "c", "sys2", SYS, "{}", 2, 0, NOW);
    kz_storage_id_t ids[] = {
        {"c", "r2", U1, NULL},   {"c", "r1", U1, NULL},    {"c", "r0", U1, NULL},   {"c", "nope", U1, NULL},
        {"c", "sys2", "", NULL}, {"c", "sys1", NULL, NULL}, {"c", "r2", U2, NULL},   {"other", "r2", U1, NULL},
    };
    expect_read(db, U1, ids, 8, "r2 r1 sys2");
    expect_read(db, U2, ids, 8, "r2 sys2");
    expect_read(db, NULL, ids, 8, "r2 r1 r0 sys2 sys1");
    /* One id takes the single-statement path. */
    expect_read(db, U2, &ids[1], 1, "");
    expect_read(db, U1, &ids[1], 1, "r1");
    expect_read(db, U1, ids, 0, "");
}

KZ_DB_TEST(storage, read_returns_every_field)
{
    put(db, "c", "k", U2, "{\"a\":[1,2]}", 2, 0, NOW + 77);
    kz_storage_id_t id = {"c", "k", U2, NULL};
    kz_storage_object_t *v = NULL;
    int n = 0;
    DB_OK(db, kz_store_storage_read(db, U1, &id, 1, &v, &n));
    cr_assert_eq(n, 1);
    char h[33];
    cr_assert_str_eq(v[0].collection, "c");
    cr_assert_str_eq(v[0].key, "k");
    cr_assert_str_eq(v[0].user_id, U2);
    cr_assert_str_eq(v[0].value, "{\"a\":[1,2]}");
    cr_assert_str_eq(v[0].version, md5_of("{\"a\":[1,2]}", h));
    cr_assert_eq(v[0].permission_read, 2);
    cr_assert_eq(v[0].permission_write, 0);
    cr_assert_eq(v[0].create_time, NOW + 77);
    cr_assert_eq(v[0].update_time, NOW + 77);
    kz_storage_objects_free(v, n);
}

/* ---- Delete ------------------------------------------------------------------ */

KZ_DB_TEST(storage, delete_rules)
{
    char h[33];
    put(db, "c", "a", U1, "{\"a\":1}", 1, 1, NOW);
    put(db, "c", "b", U1, "{\"b\":1}", 1, 1, NOW);
    put(db, "c", "locked", U1, "{}", 1, 0, NOW);
    int rej = 99;
    /* Missing object, wrong version, write-protected: each rejected. */
    kz_storage_id_t missing = {"c", "zzz", U1, NULL};
    DB_RC(db, kz_store_storage_delete(db, &missing, 1, false, &rej), KZ_STORAGE_REJECT_DELETE);
    cr_assert_eq(rej, 0);
    kz_storage_id_t wrongver = {"c", "a", U1, "ffffffffffffffffffffffffffffffff"};
    DB_RC(db, kz_store_storage_delete(db, &wrongver, 1, false, &rej), KZ_STORAGE_REJECT_DELETE);
    kz_storage_id_t locked = {"c", "locked", U1, NULL};
    DB_RC(db, kz_store_storage_delete(db, &locked, 1, false, &rej), KZ_STORAGE_REJECT_DELETE);
    kz_storage_id_t others = {"c", "a", U2, NULL}; /* U2 does not own c/a */
    DB_RC(db, kz_store_storage_delete(db, &others, 1, false, &rej), KZ_STORAGE_REJECT_DELETE);
    cr_assert_eq(storage_count(db), 3);

    /* A batch with one bad id deletes nothing. */
    kz_storage_id_t batch[] = {{"c", "a", U1, md5_of("{\"a\":1}", h)}, {"c", "b", U1, ""}, {"c", "zzz", U1, NULL}};
    DB_RC(db, kz_store_storage_delete(db, batch, 3, false, &rej), KZ_STORAGE_REJECT_DELETE);
    cr_assert_eq(rej, 2);
    cr_assert_eq(storage_count(db), 3);
    /* The same id twice: the second finds nothing. */
    kz_storage_id_t twice[] = {{"c", "a", U1, NULL}, {"c", "a", U1, NULL}};
    DB_RC(db, kz_store_storage_delete(db, twice, 2, false, &rej), KZ_STORAGE_REJECT_DELETE);
    cr_assert_eq(storage_count(db), 3);

    /* Matching version and no version both delete. */
    DB_OK(db, kz_store_storage_delete(db, batch, 2, false, &rej));
    cr_assert_eq(rej, -1);
    EXPECT_VALUE(db, "c", "a", U1, "<absent>");
    EXPECT_VALUE(db, "c", "b", U1, "<absent>");
    cr_assert_eq(storage_count(db), 1);

    /* The server deletes write-protected objects; a missing one without a
     * version is no error for it, with a version it is. */
    kz_storage_id_t server[] = {{"c", "locked", U1, NULL}, {"c", "gone", U1, NULL}};
    DB_OK(db, kz_store_storage_delete(db, server, 2, true, &rej));
    cr_assert_eq(storage_count(db), 0);
    kz_storage_id_t server_v = {"c", "gone", U1, "ffffffffffffffffffffffffffffffff"};
    DB_RC(db, kz_store_storage_delete(db, &server_v, 1, true, &rej), KZ_STORAGE_REJECT_DELETE);
}

KZ_DB_TEST(storage, delete_user_removes_only_theirs)
{
    put(db, "c", "a", U1, "{}", 1, 1, NOW);
    put(db, "d", "b", U1, "{}", 2, 0, NOW);
    put(db, "c", "a", U2, "{}", 1, 1, NOW);
    put(db, "c", "s", SYS, "{}", 2, 0, NOW);
    DB_OK(db, kz_db_begin(db));
    DB_OK(db, kz_store_storage_delete_user(db, U1));
    DB_OK(db, kz_db_commit(db));
    kz_dbval_t p[] = {KZ_DBTEXT(U1)};
    cr_assert_eq(dbfx_count(db, "storage", "user_id = $1", p, 1), 0);
    cr_assert_eq(storage_count(db), 2);
    EXPECT_VALUE(db, "c", "a", U2, "{}");
    /* Nothing to delete is fine. */
    DB_OK(db, kz_store_storage_delete_user(db, U3));
}

/* ---- List -------------------------------------------------------------------- */

/* Lists one page and checks "key/owner-initial" entries against want
 * (space-separated) and the more flag. Returns the last object's key and
 * user in last_key/last_user (when any). */
static void expect_page(kz_db_t *db, const char *caller, const char *owner, const char *collection, int limit,
                        const char *after_key, const char *after_user, const char *want, bool want_more,
                        char *last_key, char *last_user)
{
    kz_storage_object_t *v = NULL;
    int n = -1;
    bool more = !want_more;
    DB_OK(db, kz_store_storage_list(db, caller, owner, collection, limit, after_key, after_user, &v, &n, &more));
    char got[512] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(got + len, sizeof got - len, "%s%s/%c", i ? " " : "", v[i].key, v[i].user_id[0]);
    cr_assert_str_eq(got, want, "[%s] list %s owner %s as %s after %s: [%s], want [%s]", dbfx.label, collection,
                     owner ? owner : "-", caller ? caller : "server", after_key ? after_key : "-", got, want);
    cr_assert_eq(more, want_more, "[%s] more = %d after [%s]", dbfx.label, more, got);
    if (n > 0 && last_key) {
        strcpy(last_key, v[n - 1].key);
        strcpy(last_user, v[n - 1].user_id);
    }
    kz_storage_objects_free(v, n);
}

static void seed_list(kz_db_t *db)
{
    put(db, "l", "a", U1, "{}", 2, 1, NOW);
    put(db, "l", "a", U2, "{}", 2, 1, NOW);
    put(db, "l", "b", U1, "{}", 1, 1, NOW);
    put(db, "l", "c", U2, "{}", 1, 1, NOW);
    put(db, "l", "d", U1, "{}", 0, 1, NOW);
    put(db, "l", "e", U2, "{}", 2, 0, NOW);
    put(db, "l", "f", SYS, "{}", 2, 0, NOW);
    put(db, "other", "a", U1, "{}", 2, 1, NOW);
}

KZ_DB_TEST(storage, list_visibility)
{
    seed_list(db);
    /* Public objects of everyone, ordered by (key, user). */
    expect_page(db, U1, NULL, "l", 100, NULL, NULL, "a/1 a/2 e/2 f/0", false, NULL, NULL);
    expect_page(db, U3, NULL, "l", 100, NULL, NULL, "a/1 a/2 e/2 f/0", false, NULL, NULL);
    /* Own: everything readable (read >= 1). */
    expect_page(db, U1, U1, "l", 100, NULL, NULL, "a/1 b/1", false, NULL, NULL);
    expect_page(db, U2, U2, "l", 100, NULL, NULL, "a/2 c/2 e/2", false, NULL, NULL);
    /* Someone else's: only public. */
    expect_page(db, U2, U1, "l", 100, NULL, NULL, "a/1", false, NULL, NULL);
    expect_page(db, U1, U2, "l", 100, NULL, NULL, "a/2 e/2", false, NULL, NULL);
    expect_page(db, U1, SYS, "l", 100, NULL, NULL, "f/0", false, NULL, NULL);
    /* The server sees everything. */
    expect_page(db, NULL, U1, "l", 100, NULL, NULL, "a/1 b/1 d/1", false, NULL, NULL);
    expect_page(db, NULL, NULL, "l", 100, NULL, NULL, "a/1 a/2 b/1 c/2 d/1 e/2 f/0", false, NULL, NULL);
    /* Unknown collection and user: empty. */
    expect_page(db, U1, NULL, "nothing", 100, NULL, NULL, "", false, NULL, NULL);
    expect_page(db, U1, U3, "l", 100, NULL, NULL, "", false, NULL, NULL);
    /* limit 0: nothing. */
    expect_page(db, U1, NULL, "l", 0, NULL, NULL, "", false, NULL, NULL);
}

KZ_DB_TEST(storage, list_pages)
{
    seed_list(db);
    char k[200], u[40];
    expect_page(db, U1, NULL, "l", 1, NULL, NULL, "a/1", true, k, u);
    expect_page(db, U1, NULL, "l", 1, k, u, "a/2", true, k, u);
    expect_page(db, U1, NULL, "l", 1, k, u, "e/2", true, k, u);
    expect_page(db, U1, NULL, "l", 1, k, u, "f/0", false, k, u);
    /* Exactly full last page: no more. */
    expect_page(db, U1, NULL, "l", 2, NULL, NULL, "a/1 a/2", true, k, u);
    expect_page(db, U1, NULL, "l", 2, k, u, "e/2 f/0", false, k, u);
    /* Own listing by key. */
    expect_page(db, U2, U2, "l", 2, NULL, NULL, "a/2 c/2", true, k, u);
    expect_page(db, U2, U2, "l", 2, k, u, "e/2", false, k, u);
}

KZ_DB_TEST(storage, list_positions_survive_writes)
{
    /* Ten public objects k0..k9; read in pages of 3 while objects are
     * written and deleted around the position. */
    char key[8];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(db, "p", key, i % 2 ? U1 : U2, "{}", 2, 1, NOW);
    }
    char k[200], u[40];
    expect_page(db, U3, NULL, "p", 3, NULL, NULL, "k0/2 k1/1 k2/2", true, k, u);
    /* Before the position: an insert, a delete and an update must not shift
     * the next page. */
    put(db, "p", "k00", U1, "{}", 2, 1, NOW);
    kz_storage_id_t del = {"p", "k1", U1, NULL};
    DB_OK(db, kz_store_storage_delete(db, &del, 1, false, NULL));
    put(db, "p", "k2", U2, "{\"changed\":1}", 2, 1, NOW + 1);
    /* The last returned object itself deleted: resume after its position. */
    del = (kz_storage_id_t){"p", "k2", U2, NULL};
    DB_OK(db, kz_store_storage_delete(db, &del, 1, false, NULL));
    /* After the position: a new object shows up in its place, one deleted
     * object disappears. */
    put(db, "p", "k25", U3, "{}", 2, 1, NOW);
    del = (kz_storage_id_t){"p", "k4", U2, NULL};
    DB_OK(db, kz_store_storage_delete(db, &del, 1, false, NULL));
    expect_page(db, U3, NULL, "p", 3, k, u, "k25/3 k3/1 k5/1", true, k, u);
    /* Same key as the position, other owners: ordered by user id. */
    put(db, "p", "k5", U2, "{}", 2, 1, NOW); /* U2 > U1: after the position */
    put(db, "p", "k5", SYS, "{}", 2, 1, NOW); /* before it */
    expect_page(db, U3, NULL, "p", 3, k, u, "k5/2 k6/2 k7/1", true, k, u);
    expect_page(db, U3, NULL, "p", 3, k, u, "k8/2 k9/1", false, k, u);
}

/* ---- Racing writers ---------------------------------------------------------- */

#define RACERS 8

typedef struct racer {
    pthread_barrier_t *start;
    const char *expect; /* version every racer expects */
    int round;          /* makes values differ between races */
    int index;
    int rc;
    kz_storage_ack_t ack;
    char value[64];
    char err[600];
} racer_t;

static void *racer_thread(void *arg)
{
    racer_t *r = arg;
    char err[512];
    kz_db_t *db = NULL;
    r->rc = kz_db_open(dbfx.address, &db, err, sizeof err);
    snprintf(r->value, sizeof r->value, "{\"round\":%d,\"writer\":%d}", r->round, r->index);
    kz_storage_write_t w = wr("race", "obj", U1, r->value, r->expect, 1, 1);
    pthread_barrier_wait(r->start);
    if (r->rc == KZ_DB_OK) r->rc = kz_store_storage_write(db, &w, 1, false, NOW + 1, &r->ack, NULL);
    if (r->rc < 0) snprintf(r->err, sizeof r->err, "%s", db ? kz_db_errmsg(db) : err);
    kz_db_close(db);
    return NULL;
}

/* Runs RACERS concurrent writes of race/obj expecting version expect; checks
 * exactly one wins, the others get KZ_STORAGE_REJECT_VERSION, and the stored
 * object is the winner's. Values carry the round: a racer writing the value
 * already stored would keep the version, and a second racer could match it
 * (versions are content hashes, as in Nakama). */
static void race(kz_db_t *db, const char *expect, int round)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    racer_t r[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer_t){.start = &start, .expect = expect, .round = round, .index = i};
        pthread_create(&th[i], NULL, racer_thread, &r[i]);
    }
    for (int i = 0; i < RACERS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    int winners = 0, winner = -1;
    for (int i = 0; i < RACERS; i++) {
        cr_assert(r[i].rc == KZ_DB_OK || r[i].rc == KZ_STORAGE_REJECT_VERSION,
                  "[%s] racer %d returned %d (%s)", dbfx.label, i, r[i].rc, r[i].err);
        if (r[i].rc == KZ_DB_OK) winners++, winner = i;
    }
    cr_assert_eq(winners, 1, "[%s] expecting %s: %d winners, want exactly 1", dbfx.label, expect, winners);
    kz_storage_object_t o;
    cr_assert(get(db, "race", "obj", U1, &o));
    char h[33];
    cr_assert_str_eq(o.value, r[winner].value);
    cr_assert_str_eq(o.version, md5_of(r[winner].value, h));
    cr_assert_str_eq(o.version, r[winner].ack.version);
    object_clear(&o);
}

KZ_DB_TEST(storage, racing_writers_same_version)
{
    char h[33];
    put(db, "race", "obj", U1, "{\"start\":true}", 1, 1, NOW);
    race(db, md5_of("{\"start\":true}", h), 1);
    /* Again from the winner's version. */
    kz_storage_object_t o;
    cr_assert(get(db, "race", "obj", U1, &o));
    char v[33];
    strcpy(v, o.version);
    object_clear(&o);
    race(db, v, 2);
}

KZ_DB_TEST(storage, racing_creators)
{
    race(db, "*", 1);
    cr_assert_eq(storage_count(db), 1);
}
