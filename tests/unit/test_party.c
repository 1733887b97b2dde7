/* Unit tests for the pure parts of realtime/party: label validation. */
#include "realtime/party.h"

#include <criterion/criterion.h>
#include <string.h>

#include "core/alloc.h"

static bool ok(const char *s)
{
    return kz_party_label_ok(s, strlen(s));
}

Test(party, label)
{
    cr_assert(ok(""));
    cr_assert(ok("{}"));
    cr_assert(ok("{\"mode\":\"duo\",\"n\":[1,2]}"));
    cr_assert(ok(" { } "));
    cr_assert_not(ok("[1]"));
    cr_assert_not(ok("\"x\""));
    cr_assert_not(ok("1"));
    cr_assert_not(ok("{"));
    cr_assert_not(ok("{} {}"));
    cr_assert_not(ok("null"));
}

Test(party, label_size)
{
    /* {"k":"xxx...x"}: 8 bytes of syntax around the value. */
    char *l = kz_malloc(KZ_PARTY_LABEL_MAX + 2);
    memset(l, 'x', KZ_PARTY_LABEL_MAX + 1);
    memcpy(l, "{\"k\":\"", 6);
    l[KZ_PARTY_LABEL_MAX - 2] = '"';
    l[KZ_PARTY_LABEL_MAX - 1] = '}';
    cr_assert(kz_party_label_ok(l, KZ_PARTY_LABEL_MAX));
    l[KZ_PARTY_LABEL_MAX - 2] = 'x';
    l[KZ_PARTY_LABEL_MAX - 1] = '"';
    l[KZ_PARTY_LABEL_MAX] = '}';
    cr_assert_not(kz_party_label_ok(l, KZ_PARTY_LABEL_MAX + 1));
    kz_free(l);
}
