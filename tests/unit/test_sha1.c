/* Unit tests for core/sha1: FIPS 180-4 / RFC 3174 vectors, incremental
 * updates across the padding boundaries, and the RFC 6455 accept key. */
#include "core/sha1.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char d[KZ_SHA1_LEN], char out[2 * KZ_SHA1_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < KZ_SHA1_LEN; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * KZ_SHA1_LEN] = '\0';
}

static void assert_digest(const void *data, size_t n, const char *want)
{
    unsigned char d[KZ_SHA1_LEN];
    char got[2 * KZ_SHA1_LEN + 1];
    kz_sha1(data, n, d);
    to_hex(d, got);
    cr_assert_str_eq(got, want, "sha1 of %zu bytes", n);
}

/* A message of n bytes that is not one repeated byte, so misplaced or
 * reordered input changes the digest. */
static void fill_pattern(unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 7 + 3);
}

Test(sha1, fips_abc)
{
    assert_digest("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

Test(sha1, fips_448_bit)
{
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    cr_assert_eq(strlen(m), 56);
    assert_digest(m, strlen(m), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

Test(sha1, fips_896_bit)
{
    const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    cr_assert_eq(strlen(m), 112);
    assert_digest(m, strlen(m), "a49b2446a02c645bf419f995b67091253a04a259");
}

Test(sha1, empty)
{
    assert_digest("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_digest(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");

    kz_sha1_t c;
    unsigned char d[KZ_SHA1_LEN];
    char got[2 * KZ_SHA1_LEN + 1];
    kz_sha1_init(&c);
    kz_sha1_update(&c, NULL, 0);
    kz_sha1_update(&c, "", 0);
    kz_sha1_final(&c, d);
    to_hex(d, got);
    cr_assert_str_eq(got, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

Test(sha1, quick_brown_fox)
{
    const char *m = "The quick brown fox jumps over the lazy dog";
    assert_digest(m, strlen(m), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

Test(sha1, million_a)
{
    const char *want = "34aa973cd4c4daa4f61eeb2bdbad27316534016f";
    size_t n = 1000000;
    char *m = malloc(n);
    cr_assert_not_null(m);
    memset(m, 'a', n);
    assert_digest(m, n, want);
    free(m);

    /* RFC 3174's way: a thousand updates of a thousand bytes... */
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    kz_sha1_t c;
    unsigned char d[KZ_SHA1_LEN];
    char got[2 * KZ_SHA1_LEN + 1];
    kz_sha1_init(&c);
    for (int i = 0; i < 1000; i++) kz_sha1_update(&c, chunk, sizeof chunk);
    kz_sha1_final(&c, d);
    to_hex(d, got);
    cr_assert_str_eq(got, want);

    /* ...and in 7-byte pieces, which never line up with a block. */
    kz_sha1_init(&c);
    size_t left = n;
    while (left) {
        size_t take = left < 7 ? left : 7;
        kz_sha1_update(&c, chunk, take);
        left -= take;
    }
    kz_sha1_final(&c, d);
    to_hex(d, got);
    cr_assert_str_eq(got, want);
}

/* Lengths of 'a' around the padding boundaries: 55 bytes is the longest
 * message whose padding fits in its own block, 56..63 need an extra one. */
static const struct {
    size_t len;
    const char *hex;
} boundary[] = {
    {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
    {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
    {57, "f08f24908d682555111be7ff6f004e78283d989a"},
    {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
    {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
    {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
    {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"},
    {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"},
    {128, "ad5b3fdbcb526778c2839d2f151ea753995e26a0"},
};

Test(sha1, boundary_lengths_one_shot)
{
    unsigned char m[128];
    memset(m, 'a', sizeof m);
    for (size_t k = 0; k < sizeof boundary / sizeof boundary[0]; k++)
        assert_digest(m, boundary[k].len, boundary[k].hex);
}

Test(sha1, boundary_lengths_split_at_every_offset)
{
    unsigned char m[128];
    memset(m, 'a', sizeof m);
    for (size_t k = 0; k < sizeof boundary / sizeof boundary[0]; k++) {
        size_t len = boundary[k].len;
        for (size_t i = 0; i <= len; i++) {
            kz_sha1_t c;
            unsigned char d[KZ_SHA1_LEN];
            char got[2 * KZ_SHA1_LEN + 1];
            kz_sha1_init(&c);
            kz_sha1_update(&c, m, i);
            kz_sha1_update(&c, m + i, len - i);
            kz_sha1_final(&c, d);
            to_hex(d, got);
            cr_assert_str_eq(got, boundary[k].hex, "len %zu split at %zu", len, i);
        }
    }
}

/* Patterned messages of every length up to 130 bytes, cut into three pieces
 * at every pair of offsets, must hash as the one-shot digest does. */
Test(sha1, incremental_three_pieces_equal_one_shot)
{
    unsigned char m[130];
    fill_pattern(m, sizeof m);
    for (size_t len = 0; len <= sizeof m; len++) {
        unsigned char want[KZ_SHA1_LEN];
        kz_sha1(m, len, want);
        for (size_t i = 0; i <= len; i++) {
            for (size_t j = i; j <= len; j++) {
                kz_sha1_t c;
                unsigned char d[KZ_SHA1_LEN];
                kz_sha1_init(&c);
                kz_sha1_update(&c, m, i);
                kz_sha1_update(&c, m + i, j - i);
                kz_sha1_update(&c, m + j, len - j);
                kz_sha1_final(&c, d);
                cr_assert_arr_eq(d, want, KZ_SHA1_LEN, "len %zu split at %zu, %zu", len, i, j);
            }
        }
    }
}

Test(sha1, byte_at_a_time)
{
    unsigned char m[1024];
    for (size_t i = 0; i < sizeof m; i++) m[i] = (unsigned char)i;
    kz_sha1_t c;
    unsigned char d[KZ_SHA1_LEN];
    char got[2 * KZ_SHA1_LEN + 1];
    kz_sha1_init(&c);
    for (size_t i = 0; i < sizeof m; i++) kz_sha1_update(&c, m + i, 1);
    kz_sha1_final(&c, d);
    to_hex(d, got);
    cr_assert_str_eq(got, "5b00669c480d5cffbdfa8bdba99561160f2d1b77");
    assert_digest(m, sizeof m, "5b00669c480d5cffbdfa8bdba99561160f2d1b77");
}

Test(sha1, context_reusable_after_init)
{
    kz_sha1_t c;
    unsigned char d[KZ_SHA1_LEN];
    char got[2 * KZ_SHA1_LEN + 1];
    kz_sha1_init(&c);
    kz_sha1_update(&c, "something else", 14);
    kz_sha1_final(&c, d);
    kz_sha1_init(&c);
    kz_sha1_update(&c, "abc", 3);
    kz_sha1_final(&c, d);
    to_hex(d, got);
    cr_assert_str_eq(got, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static void init_sodium(void)
{
    cr_assert_geq(sodium_init(), 0);
}

Test(ws_accept, rfc6455_example, .init = init_sodium)
{
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char out[KZ_WS_ACCEPT_LEN + 1];
    memset(out, 'x', sizeof out);
    kz_ws_accept_key(key, strlen(key), out);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    cr_assert_eq(strlen(out), KZ_WS_ACCEPT_LEN);
}

Test(ws_accept, other_key, .init = init_sodium)
{
    const char *key = "x3JJHMbDL1EzLkh9GBhXDw==";
    char out[KZ_WS_ACCEPT_LEN + 1];
    kz_ws_accept_key(key, strlen(key), out);
    cr_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

Test(ws_accept, uses_only_len_bytes, .init = init_sodium)
{
    /* The key need not be NUL-terminated: trailing bytes past len are
     * ignored, as when it points into a request buffer. */
    const char *buf = "dGhlIHNhbXBsZSBub25jZQ==\r\nHost: x";
    char out[KZ_WS_ACCEPT_LEN + 1];
    kz_ws_accept_key(buf, 24, out);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws_accept, empty_key, .init = init_sodium)
{
    char out[KZ_WS_ACCEPT_LEN + 1];
    kz_ws_accept_key("", 0, out);
    cr_assert_str_eq(out, "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
}
