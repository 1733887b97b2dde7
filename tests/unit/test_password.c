/* Unit tests for core/password: argon2id round trip, bcrypt hashes from
 * other implementations, unknown formats, random usernames. */
#include "core/password.h"

#include <criterion/criterion.h>
#include <string.h>

/* bcrypt of "password123", made with Python's crypt module when this test
 * was written. */
#define BCRYPT_2B "$2b$04$YmU/LKaR0M5oEeI9rKJ/mOGs7pm0XrJa28ZA9rwYH0i7UnfAhBgvW"

static bool verify_str(const char *hash, const char *pw)
{
    return kz_password_verify(hash, pw, strlen(pw));
}

Test(password, argon2id_hash_and_verify)
{
    char h[KZ_PASSWORD_HASH_MAX];
    cr_assert_eq(kz_password_hash("correct horse", 13, h), 0);
    cr_assert_eq(strncmp(h, "$argon2id$", 10), 0, "got %s", h);
    cr_assert_lt(strlen(h), KZ_PASSWORD_HASH_MAX);
    cr_assert(verify_str(h, "correct horse"));
    cr_assert_not(verify_str(h, "correct horsf"));
    cr_assert_not(verify_str(h, "correct hors"));
    cr_assert_not(verify_str(h, ""));

    /* a fresh salt each time */
    char h2[KZ_PASSWORD_HASH_MAX];
    cr_assert_eq(kz_password_hash("correct horse", 13, h2), 0);
    cr_assert_str_neq(h, h2);
    cr_assert(verify_str(h2, "correct horse"));

    /* a truncated or altered hash never matches */
    char cut[KZ_PASSWORD_HASH_MAX];
    strcpy(cut, h);
    cut[strlen(cut) - 4] = '\0';
    cr_assert_not(verify_str(cut, "correct horse"));
}

Test(password, argon2id_binary_and_unterminated_password)
{
    /* the hash covers pw[0..len): bytes after len are ignored, an embedded
     * NUL counts */
    const char pw[] = "secret\0tail-XYZ";
    char h[KZ_PASSWORD_HASH_MAX];
    cr_assert_eq(kz_password_hash(pw, 11, h), 0);
    cr_assert(kz_password_verify(h, "secret\0tail", 11));
    cr_assert_not(kz_password_verify(h, "secret", 6));
    cr_assert_not(kz_password_verify(h, pw, 12));
}

Test(password, argon2i_hash_verifies)
{
    /* libsodium's argon2i (v1.3) output for "password", opslimit 3,
     * memlimit 32 MiB, made by a throwaway program when this test was
     * written. */
    const char *h = "$argon2i$v=19$m=32768,t=3,p=1$2/gWuY0NqxjS8BF/"
                    "mC8X2w$xY642MvgnsE7ZE7P8Xlze1nJzHgVDqzY7Ao+WdAwM/I";
    cr_assert(verify_str(h, "password"));
    cr_assert_not(verify_str(h, "passwore"));
}

Test(password, bcrypt_from_python)
{
    cr_assert(verify_str(BCRYPT_2B, "password123"));
    cr_assert_not(verify_str(BCRYPT_2B, "password124"));
    cr_assert_not(verify_str(BCRYPT_2B, "password12"));
    cr_assert_not(verify_str(BCRYPT_2B, ""));
    /* the same digest under the $2a$ and $2y$ prefixes (identical for
     * ASCII passwords) */
    cr_assert(
        verify_str("$2a$04$YmU/LKaR0M5oEeI9rKJ/mOGs7pm0XrJa28ZA9rwYH0i7UnfAhBgvW", "password123"));
    cr_assert(
        verify_str("$2y$04$YmU/LKaR0M5oEeI9rKJ/mOGs7pm0XrJa28ZA9rwYH0i7UnfAhBgvW", "password123"));
    /* password not NUL-terminated at len */
    cr_assert(kz_password_verify(BCRYPT_2B, "password123XYZ", 11));
    /* an embedded NUL would otherwise be truncated away by crypt */
    cr_assert_not(kz_password_verify(BCRYPT_2B, "password123\0junk", 16));
    /* digest altered in its last character */
    cr_assert_not(
        verify_str("$2b$04$YmU/LKaR0M5oEeI9rKJ/mOGs7pm0XrJa28ZA9rwYH0i7UnfAhBgvX", "password123"));
    /* truncated */
    cr_assert_not(
        verify_str("$2b$04$YmU/LKaR0M5oEeI9rKJ/mOGs7pm0XrJa28ZA9rwYH0i7UnfAhBgv", "password123"));
}

Test(password, bcrypt_published_vectors)
{
    /* crypt_blowfish / OpenBSD test vectors */
    cr_assert(verify_str("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"));
    cr_assert(verify_str("$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*"));
    cr_assert(verify_str("$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", "U*U*U"));
    cr_assert(verify_str("$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", ""));
    cr_assert_not(
        verify_str("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U*"));
}

Test(password, unknown_formats_never_match)
{
    /* sha512-crypt and md5-crypt of "password123": valid hashes libcrypt
     * could verify, but not formats we accept */
    cr_assert_not(
        verify_str("$6$siSozmKbLNslE245$/1gIWdPKWsHtsIlgPfisw2xRWn5Hf0KmmtcvYfBSFUIDxusjlQCPSqDr1n/"
                   "YrlYicZ962uoc3plezkPPf63Je/",
                   "password123"));
    cr_assert_not(verify_str("$1$B./yrOPg$05YUOYEJf9ryU968QPXW2/", "password123"));
    cr_assert_not(verify_str("", ""));
    cr_assert_not(verify_str("password123", "password123"));
    cr_assert_not(verify_str("$2b$", "password123"));
    cr_assert_not(
        verify_str("$2x$04$YmU/LKaR0M5oEeI9rKJ/mOGs7pm0XrJa28ZA9rwYH0i7UnfAhBgvW", "password123"));
    cr_assert_not(verify_str("$argon2d$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$aGFzaA", "password123"));
    cr_assert_not(verify_str("$argon2id$", "password123"));
    cr_assert_not(kz_password_verify(NULL, "x", 1));
}

Test(password, random_letters)
{
    char buf[11];
    memset(buf, '#', sizeof buf);
    kz_random_letters(buf, 10);
    cr_assert_eq(buf[10], '\0');
    cr_assert_eq(strlen(buf), 10);
    for (int i = 0; i < 10; i++)
        cr_assert((buf[i] >= 'a' && buf[i] <= 'z') || (buf[i] >= 'A' && buf[i] <= 'Z'), "%s", buf);

    char empty[1] = {'#'};
    kz_random_letters(empty, 0);
    cr_assert_eq(empty[0], '\0');

    /* every one of the 52 letters turns up in a long run */
    static char big[52 * 100 + 1];
    kz_random_letters(big, sizeof big - 1);
    bool seen[128] = {false};
    for (size_t i = 0; i < sizeof big - 1; i++)
        seen[(unsigned char)big[i]] = true;
    for (char c = 'a'; c <= 'z'; c++)
        cr_assert(seen[(int)c], "missing %c", c);
    for (char c = 'A'; c <= 'Z'; c++)
        cr_assert(seen[(int)c], "missing %c", c);

    char a[11], b[11];
    kz_random_letters(a, 10);
    kz_random_letters(b, 10);
    cr_assert_str_neq(a, b);
}
