/* Unit tests for the pure parts of realtime/match: match ids and the UUID
 * forms Nakama accepts, name-derived (v5) ids, protobuf-JSON bytes and
 * int64 input. */
#include "realtime/envelope.h"
#include "realtime/match.h"

#include <criterion/criterion.h>
#include <string.h>

#include "core/alloc.h"

Test(match, uuid_forms)
{
    char out[37];
    const char *canon = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    const char *ok[] = {
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
        "6ba7b8109dad11d180b400c04fd430c8",
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
        "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "URN:UUID:6ba7b8109dad11d180b400c04fd430c8",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(out, 0, sizeof out);
        cr_assert(kz_match_uuid_parse(ok[i], strlen(ok[i]), out), "%s", ok[i]);
        cr_assert_str_eq(out, canon, "%s", ok[i]);
    }
    const char *bad[] = {
        "",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c",
        "6ba7b810-9dad-11d1-80b4-00c04fd430cg",
        "6ba7b8109-dad-11d1-80b4-00c04fd430c8",
        "(6ba7b810-9dad-11d1-80b4-00c04fd430c8)",
        "urn:uid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6ba7b8109dad11d180b400c04fd430c8a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!kz_match_uuid_parse(bad[i], strlen(bad[i]), out), "%s", bad[i]);
}

Test(match, id_split)
{
    char u[37];
    const char *node = NULL;
    cr_assert(kz_match_id_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8.", u, &node));
    cr_assert_str_eq(u, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    cr_assert_str_eq(node, "");
    cr_assert(kz_match_id_parse("6BA7B810-9DAD-11D1-80B4-00C04FD430C8.nakama.x", u, &node));
    cr_assert_str_eq(u, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    cr_assert_str_eq(node, "nakama.x");
    cr_assert(!kz_match_id_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8", u, &node), "no dot");
    cr_assert(!kz_match_id_parse("", u, &node));
    cr_assert(!kz_match_id_parse(".", u, &node));
    cr_assert(!kz_match_id_parse("not-a-uuid.", u, &node));
}

Test(match, v5_dns_names)
{
    /* Reference values from Python's uuid.uuid5(uuid.NAMESPACE_DNS, name). */
    char out[37];
    kz_match_uuid_v5_dns("python.org", 10, out);
    cr_assert_str_eq(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    kz_match_uuid_v5_dns("", 0, out);
    cr_assert_str_eq(out, "4ebd0208-8328-5d69-8c44-ec50939c0967");
    const char *utf8 = "h\xc3\xa9llo room";
    kz_match_uuid_v5_dns(utf8, strlen(utf8), out);
    cr_assert_str_eq(out, "0f5408b4-bd23-5c9f-abc5-7125d44be923");
}

Test(match, int64_input)
{
    int64_t x = 0;
    json_t *v;
    struct {
        const char *json;
        bool ok;
        int64_t want;
    } cases[] = {
        {"7", true, 7},
        {"-3", true, -3},
        {"\"42\"", true, 42},
        {"\"-9223372036854775808\"", true, INT64_MIN},
        {"\"9223372036854775807\"", true, INT64_MAX},
        {"\"9223372036854775808\"", false, 0},
        {"\"12a\"", false, 0},
        {"\"\"", false, 0},
        {"\"-\"", false, 0},
        {"\" 1\"", false, 0},
        {"1.0", true, 1},
        {"1.5", false, 0},
        {"true", false, 0},
        {"[1]", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(v, "%s", cases[i].json);
        x = 12345;
        bool ok = kz_rt_int64(v, &x);
        cr_assert_eq(ok, cases[i].ok, "%s", cases[i].json);
        if (ok) cr_assert_eq(x, cases[i].want, "%s", cases[i].json);
        json_decref(v);
    }
}
