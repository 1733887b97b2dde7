/* Unit tests for core/uuid: format, version/variant bits, v7 timestamps. */
#include "core/uuid.h"

#include <criterion/criterion.h>
#include <string.h>

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void assert_canonical(const char *u)
{
    cr_assert_eq(strlen(u), 36, "length of %s", u);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert_eq(u[i], '-', "dash at %d in %s", i, u);
        else
            cr_assert(is_lower_hex(u[i]), "lower hex at %d in %s", i, u);
    }
    cr_assert(kz_uuid_valid(u, 36));
}

Test(uuid, v4_format_version_variant)
{
    for (int n = 0; n < 200; n++) {
        char u[37];
        kz_uuid_v4(u);
        assert_canonical(u);
        cr_assert_eq(u[14], '4', "version nibble of %s", u);
        cr_assert(strchr("89ab", u[19]) != NULL, "variant nibble of %s", u);
        cr_assert_eq(kz_uuid_v7_ms(u, 36), -1, "a v4 id has no v7 time");
    }
}

Test(uuid, v4_unique)
{
    char a[37], b[37];
    kz_uuid_v4(a);
    kz_uuid_v4(b);
    cr_assert_str_neq(a, b);
}

Test(uuid, v7_known_prefix)
{
    /* 1700000000123 ms = 0x018bcfe5687b */
    char u[37];
    kz_uuid_v7(u, 1700000000123LL);
    assert_canonical(u);
    cr_assert_eq(strncmp(u, "018bcfe5-687b-7", 15), 0, "got %s", u);
    cr_assert(strchr("89ab", u[19]) != NULL, "variant nibble of %s", u);
    cr_assert_eq(kz_uuid_v7_ms(u, 36), 1700000000123LL);
}

Test(uuid, v7_round_trip_and_bounds)
{
    const int64_t cases[] = {0, 1, 255, 256, 1700000000000LL, 4102444800000LL, 0xffffffffffffLL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char u[37];
        kz_uuid_v7(u, cases[i]);
        assert_canonical(u);
        cr_assert_eq(u[14], '7');
        cr_assert_eq(kz_uuid_v7_ms(u, 36), cases[i], "case %zu: %s", i, u);
    }
    char u[37];
    kz_uuid_v7(u, -5); /* clamped to 0 */
    cr_assert_eq(kz_uuid_v7_ms(u, 36), 0);
    kz_uuid_v7(u, 0x1000000000000LL); /* one past 48 bits: saturates */
    cr_assert_eq(kz_uuid_v7_ms(u, 36), 0xffffffffffffLL);
}

Test(uuid, v7_orders_by_time)
{
    char prev[37];
    kz_uuid_v7(prev, 1700000000000LL);
    for (int64_t ms = 1700000000001LL; ms < 1700000000300LL; ms++) {
        char u[37];
        kz_uuid_v7(u, ms);
        cr_assert_lt(strcmp(prev, u), 0, "%s !< %s", prev, u);
        memcpy(prev, u, sizeof u);
    }
}

Test(uuid, v7_ms_parses_uppercase_and_rejects_others)
{
    cr_assert_eq(kz_uuid_v7_ms("018BCFE5-687B-7ABC-8DEF-0123456789AB", 36), 1700000000123LL);
    /* wrong version */
    cr_assert_eq(kz_uuid_v7_ms("018bcfe5-687b-4abc-8def-0123456789ab", 36), -1);
    /* wrong variant (0xxx, 11xx) */
    cr_assert_eq(kz_uuid_v7_ms("018bcfe5-687b-7abc-7def-0123456789ab", 36), -1);
    cr_assert_eq(kz_uuid_v7_ms("018bcfe5-687b-7abc-cdef-0123456789ab", 36), -1);
    /* not a uuid at all */
    cr_assert_eq(kz_uuid_v7_ms("018bcfe5687b7abc8def0123456789ab", 32), -1);
    cr_assert_eq(kz_uuid_v7_ms("", 0), -1);
}

Test(uuid, valid_edge_cases)
{
    cr_assert(kz_uuid_valid(KZ_UUID_NIL, 36));
    cr_assert(kz_uuid_valid("ffffffff-ffff-ffff-ffff-ffffffffffff", 36));
    cr_assert(kz_uuid_valid("ABCDEF01-2345-6789-ABCD-EF0123456789", 36));
    cr_assert(kz_uuid_valid("aBcDeF01-2345-6789-abCD-ef0123456789", 36));

    cr_assert_not(kz_uuid_valid("", 0));
    cr_assert_not(kz_uuid_valid(NULL, 36));
    /* 35 and 37 characters */
    cr_assert_not(kz_uuid_valid("00000000-0000-0000-0000-00000000000", 35));
    cr_assert_not(kz_uuid_valid("00000000-0000-0000-0000-0000000000000", 37));
    /* dashes in the wrong places / missing */
    cr_assert_not(kz_uuid_valid("0000000-00000-0000-0000-000000000000", 36));
    cr_assert_not(kz_uuid_valid("00000000-0000-0000-0000_000000000000", 36));
    cr_assert_not(kz_uuid_valid("000000000000000000000000000000000000", 36));
    cr_assert_not(kz_uuid_valid("------------------------------------", 36));
    /* non-hex characters */
    cr_assert_not(kz_uuid_valid("g0000000-0000-0000-0000-000000000000", 36));
    cr_assert_not(kz_uuid_valid("00000000-0000-0000-0000-00000000000 ", 36));
    cr_assert_not(kz_uuid_valid("{0000000-0000-0000-0000-00000000000}", 36));
    /* braces/urn forms are not canonical */
    cr_assert_not(kz_uuid_valid("{00000000-0000-0000-0000-000000000000}", 38));

    /* only s[0..len) is read: a valid id followed by junk, and a valid
     * prefix of a longer buffer */
    const char buf[] = "0b6f1ce9-55a5-4e66-8d4f-8e4a1c2d3b4aXYZ";
    cr_assert(kz_uuid_valid(buf, 36));
    cr_assert_not(kz_uuid_valid(buf, 39));
}

Test(uuid, v7_ns_orders_within_a_millisecond)
{
    int64_t base = 1795465308123LL * 1000000; /* a whole millisecond, in ns */
    char a[37], b[37], c[37];
    kz_uuid_v7_ns(a, base + 1000);   /* 1 us into the millisecond */
    kz_uuid_v7_ns(b, base + 500000); /* half-way */
    kz_uuid_v7_ns(c, base + 999999);
    cr_assert(kz_uuid_valid(a, 36));
    cr_assert_eq(a[14], '7');
    cr_assert_eq(kz_uuid_v7_ms(a, 36), 1795465308123LL);
    cr_assert_eq(kz_uuid_v7_ms(c, 36), 1795465308123LL);
    cr_assert_eq(kz_uuid_v7_stamp(a, 36), (1795465308123LL << 12) | 4);
    cr_assert_eq(kz_uuid_v7_stamp(b, 36), (1795465308123LL << 12) | 2048);
    cr_assert_eq(kz_uuid_v7_stamp(c, 36), (1795465308123LL << 12) | 4095);
    cr_assert_eq(kz_uuid_v7_stamp_at(base + 500000), kz_uuid_v7_stamp(b, 36));
    cr_assert_lt(kz_uuid_v7_stamp(a, 36), kz_uuid_v7_stamp(b, 36));
    cr_assert_lt(kz_uuid_v7_stamp(b, 36), kz_uuid_v7_stamp(c, 36));
    char v4[37];
    kz_uuid_v4(v4);
    cr_assert_eq(kz_uuid_v7_stamp(v4, 36), -1);
}
