/* Unit tests for api/validate: Nakama's authenticate/link input rules and
 * their exact error messages. */
#include "api/validate.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define DEVICE_REQUIRED "Device ID is required."
#define DEVICE_CHARS "Device ID invalid, no spaces or control characters allowed."
#define DEVICE_LEN "Device ID invalid, must be 10-128 bytes."
#define CUSTOM_REQUIRED "Custom ID is required."
#define CUSTOM_CHARS "Custom ID invalid, no spaces or control characters allowed."
#define CUSTOM_LEN "Custom ID invalid, must be 6-128 bytes."
#define EMAIL_PW_REQUIRED "Email address and password is required."
#define EMAIL_CHARS "Invalid email address, no spaces or control characters allowed."
#define EMAIL_FORMAT "Invalid email address format."
#define EMAIL_LEN "Invalid email address, must be 10-255 bytes."
#define PASSWORD_LEN "Password must be at least 8 characters long."
#define USERNAME_CHARS "Username invalid, no spaces or control characters allowed."
#define USERNAME_LEN "Username invalid, must be 1-128 bytes."

/* Compares a validator result with the expected message (NULL = valid). */
#define CHECK(got, want)                                                                           \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!w_)                                                                                   \
            cr_assert_null(g_, "%s: expected valid, got \"%s\"", #got, g_);                        \
        else                                                                                       \
            cr_assert(g_ &&strcmp(g_, w_) == 0, "%s: expected \"%s\", got \"%s\"", #got, w_,       \
                      g_ ? g_ : "(valid)");                                                        \
    } while (0)

/* A string of n copies of c (n < 512). */
static const char *rep(char c, size_t n)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ & 3];
    memset(b, c, n);
    b[n] = '\0';
    return b;
}

#define V(fn, str) fn(str, strlen(str))

Test(validate, device_id_lengths)
{
    CHECK(kz_validate_device_id("", 0), DEVICE_REQUIRED);
    CHECK(kz_validate_device_id(rep('d', 9), 9), DEVICE_LEN);
    CHECK(kz_validate_device_id(rep('d', 10), 10), NULL);
    CHECK(kz_validate_device_id(rep('d', 128), 128), NULL);
    CHECK(kz_validate_device_id(rep('d', 129), 129), DEVICE_LEN);
    CHECK(V(kz_validate_device_id, "a1b2c3d4-e5f6-4789-abcd-0123456789ef"), NULL);
    CHECK(V(kz_validate_device_id, "dev\303\255ce-\xe6\x97\xa5\xe6\x9c\xac"), NULL); /* UTF-8 ok */
}

Test(validate, device_id_chars)
{
    CHECK(V(kz_validate_device_id, "device id 0004"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, " device-0004"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, "device-0004\n"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, "device\t0004"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, "device\1770004"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, "device\0330004"), DEVICE_CHARS);
    CHECK(kz_validate_device_id("device\00000004", 12), DEVICE_CHARS);
    /* the character rule is checked before the length */
    CHECK(V(kz_validate_device_id, "a b"), DEVICE_CHARS);
    /* invalid UTF-8: lone continuation, overlong '/', surrogate, truncated */
    CHECK(V(kz_validate_device_id, "device-\x80-0004"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, "device-\xc0\xaf-0004"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, "device-\xed\xa0\x80-0004"), DEVICE_CHARS);
    CHECK(V(kz_validate_device_id, "device-0004-\xe6\x97"), DEVICE_CHARS);
    /* only s[0..n) is read */
    CHECK(kz_validate_device_id("device-0004 trailing", 11), NULL);
}

Test(validate, custom_id)
{
    CHECK(kz_validate_custom_id("", 0), CUSTOM_REQUIRED);
    CHECK(kz_validate_custom_id(rep('c', 5), 5), CUSTOM_LEN);
    CHECK(kz_validate_custom_id(rep('c', 6), 6), NULL);
    CHECK(kz_validate_custom_id(rep('c', 128), 128), NULL);
    CHECK(kz_validate_custom_id(rep('c', 129), 129), CUSTOM_LEN);
    CHECK(V(kz_validate_custom_id, "cust om"), CUSTOM_CHARS);
    CHECK(V(kz_validate_custom_id, "custom\r"), CUSTOM_CHARS);
    CHECK(V(kz_validate_custom_id, "custom\xff"), CUSTOM_CHARS);
    CHECK(V(kz_validate_custom_id, "a b"), CUSTOM_CHARS);
}

Test(validate, email_lengths)
{
    CHECK(kz_validate_email("", 0), EMAIL_PW_REQUIRED);
    CHECK(V(kz_validate_email, "ab@cd.efg"), EMAIL_LEN); /* 9 */
    CHECK(V(kz_validate_email, "ab@cd.efgh"), NULL);     /* 10 */
    CHECK(V(kz_validate_email, "a@b.c"), EMAIL_LEN);     /* shape ok, short */

    /* 255 and 256 bytes */
    char e[300];
    snprintf(e, sizeof e, "%s@example.com", rep('u', 255 - 12));
    cr_assert_eq(strlen(e), 255);
    CHECK(kz_validate_email(e, 255), NULL);
    snprintf(e, sizeof e, "%s@example.com", rep('u', 256 - 12));
    CHECK(kz_validate_email(e, 256), EMAIL_LEN);
}

Test(validate, email_shapes)
{
    CHECK(V(kz_validate_email, "alice@example.com"), NULL);
    CHECK(V(kz_validate_email, "Alice.Smith+tag@mail.example.co.uk"), NULL);
    CHECK(V(kz_validate_email, "a@b@example.com"), NULL); /* Go's regexp accepts it */
    CHECK(V(kz_validate_email, "@@@@@@@.@@"), NULL);      /* likewise */

    CHECK(V(kz_validate_email, "aliceexample.com"), EMAIL_FORMAT);    /* no @ */
    CHECK(V(kz_validate_email, "@aliceexample.com"), EMAIL_FORMAT);   /* nothing before @ */
    CHECK(V(kz_validate_email, "alice@examplecom"), EMAIL_FORMAT);    /* no dot after @ */
    CHECK(V(kz_validate_email, "alice@.example"), EMAIL_FORMAT);      /* dot right after @ only */
    CHECK(V(kz_validate_email, "alice.smith@example"), EMAIL_FORMAT); /* dot only before @ */
    CHECK(V(kz_validate_email, "alice@example."), EMAIL_FORMAT);      /* nothing after the dot */
    CHECK(V(kz_validate_email, "alice@example"), EMAIL_FORMAT);
    CHECK(V(kz_validate_email, "a@b."), EMAIL_FORMAT); /* format is checked before length */
    CHECK(V(kz_validate_email, "x"), EMAIL_FORMAT);

    CHECK(V(kz_validate_email, "alice @example.com"), EMAIL_CHARS);
    CHECK(V(kz_validate_email, "alice@example.com\n"), EMAIL_CHARS);
    CHECK(V(kz_validate_email, "alice\t@example.com"), EMAIL_CHARS);
    CHECK(V(kz_validate_email, "a b"), EMAIL_CHARS); /* chars before format */
    CHECK(V(kz_validate_email, "al\xffice@example.com"), EMAIL_CHARS);

    /* only s[0..n) is read */
    CHECK(kz_validate_email("alice@example.com junk", 17), NULL);
    CHECK(kz_validate_email("alice@example.com", 14), EMAIL_FORMAT); /* "alice@example." */
}

Test(validate, password)
{
    CHECK(kz_validate_password("", 0), PASSWORD_LEN);
    CHECK(kz_validate_password("1234567", 7), PASSWORD_LEN);
    CHECK(kz_validate_password("12345678", 8), NULL);
    CHECK(V(kz_validate_password, "a long pass phrase with spaces"), NULL);
    /* bytes, not characters: four 2-byte letters are 8 bytes */
    CHECK(V(kz_validate_password, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), NULL);
}

Test(validate, link_email_order)
{
    CHECK(kz_validate_link_email("", 0, "password1", 9), EMAIL_PW_REQUIRED);
    CHECK(kz_validate_link_email("alice@example.com", 17, "", 0), EMAIL_PW_REQUIRED);
    CHECK(kz_validate_link_email("alice@example.com", 17, "password1", 9), NULL);
    /* chars, then password, then format, then length */
    CHECK(kz_validate_link_email("a b", 3, "short", 5), EMAIL_CHARS);
    CHECK(kz_validate_link_email("bad", 3, "short", 5), PASSWORD_LEN);
    CHECK(kz_validate_link_email("bad", 3, "password1", 9), EMAIL_FORMAT);
    CHECK(kz_validate_link_email("a@b.c", 5, "password1", 9), EMAIL_LEN);
}

Test(validate, username)
{
    CHECK(kz_validate_username("", 0), USERNAME_LEN);
    CHECK(kz_validate_username("a", 1), NULL);
    CHECK(kz_validate_username(rep('u', 128), 128), NULL);
    CHECK(kz_validate_username(rep('u', 129), 129), USERNAME_LEN);
    CHECK(V(kz_validate_username, "J\xc3\xbcrgen_\xe6\x97\xa5\xe6\x9c\xac"), NULL);
    /* Nakama 3.x allows plain spaces in usernames */
    CHECK(V(kz_validate_username, "Big Boss"), NULL);

    CHECK(V(kz_validate_username, "tab\there"), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "line\nbreak"), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "cr\r"), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "vt\v"), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "ff\f"), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "del\x7f"), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "\001abc"), USERNAME_CHARS);
    CHECK(kz_validate_username("nul\0x", 5), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "bad\xc3"), USERNAME_CHARS);
    CHECK(V(kz_validate_username, "bad\xf5\x80\x80\x80"), USERNAME_CHARS);
    /* character rule before length */
    char big[200];
    memset(big, 'u', sizeof big);
    big[150] = '\n';
    CHECK(kz_validate_username(big, sizeof big), USERNAME_CHARS);
}

Test(validate, utf8)
{
    cr_assert(kz_utf8_valid("", 0));
    cr_assert(kz_utf8_valid("plain ascii", 11));
    cr_assert(V(kz_utf8_valid, "\xc2\x80"));         /* U+0080 */
    cr_assert(V(kz_utf8_valid, "\xdf\xbf"));         /* U+07FF */
    cr_assert(V(kz_utf8_valid, "\xe0\xa0\x80"));     /* U+0800 */
    cr_assert(V(kz_utf8_valid, "\xed\x9f\xbf"));     /* U+D7FF */
    cr_assert(V(kz_utf8_valid, "\xee\x80\x80"));     /* U+E000 */
    cr_assert(V(kz_utf8_valid, "\xef\xbf\xbf"));     /* U+FFFF */
    cr_assert(V(kz_utf8_valid, "\xf0\x90\x80\x80")); /* U+10000 */
    cr_assert(V(kz_utf8_valid, "\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    cr_assert(V(kz_utf8_valid, "\xf0\x9f\x8e\xae")); /* emoji */

    cr_assert_not(V(kz_utf8_valid, "\x80"));
    cr_assert_not(V(kz_utf8_valid, "\xc0\x80")); /* overlong NUL */
    cr_assert_not(V(kz_utf8_valid, "\xc1\xbf"));
    cr_assert_not(V(kz_utf8_valid, "\xe0\x9f\xbf"));     /* overlong */
    cr_assert_not(V(kz_utf8_valid, "\xed\xa0\x80"));     /* U+D800 */
    cr_assert_not(V(kz_utf8_valid, "\xed\xbf\xbf"));     /* U+DFFF */
    cr_assert_not(V(kz_utf8_valid, "\xf0\x8f\xbf\xbf")); /* overlong */
    cr_assert_not(V(kz_utf8_valid, "\xf4\x90\x80\x80")); /* > U+10FFFF */
    cr_assert_not(V(kz_utf8_valid, "\xf5\x80\x80\x80"));
    cr_assert_not(V(kz_utf8_valid, "\xff"));
    cr_assert_not(V(kz_utf8_valid, "\xe2\x82"));     /* truncated */
    cr_assert_not(V(kz_utf8_valid, "\xe2\x28\xa1")); /* bad continuation */
    cr_assert_not(V(kz_utf8_valid, "\xf0\x9f\x8e")); /* truncated */
    /* a multi-byte character cut by n */
    cr_assert_not(kz_utf8_valid("\xe2\x82\xac", 2));
    cr_assert(kz_utf8_valid("\xe2\x82\xac", 3));
}

Test(validate, lower_ascii)
{
    char s[] = "Alice.SMITH@Example.COM \xc3\x89";
    kz_lower_ascii(s, strlen(s));
    cr_assert_str_eq(s, "alice.smith@example.com \xc3\x89");

    char part[] = "ABCDEF";
    kz_lower_ascii(part, 3);
    cr_assert_str_eq(part, "abcDEF");
    kz_lower_ascii(part, 0);
    cr_assert_str_eq(part, "abcDEF");

    char edges[] = "@[`{AZaz";
    kz_lower_ascii(edges, strlen(edges));
    cr_assert_str_eq(edges, "@[`{azaz");
}
