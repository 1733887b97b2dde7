/* UUIDs: random (v4) and time-ordered (v7) generation, validation, and
 * extraction of the timestamp from a v7 id.
 *
 * Layout reminders (RFC 9562): the version is the high nibble of byte 6
 * (text position 14) and the variant is the top two bits of byte 8 (text
 * position 19, one of 8 9 a b). A v7 id starts with the 48-bit big-endian
 * unix millisecond count, so its text form sorts by creation time. */
#include "core/uuid.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

/* libsodium must be initialised before its RNG is used; sodium_init() is
 * idempotent, the once-guard just avoids the repeated call on a hot path. */
static void sodium_init_once(void)
{
    if (sodium_init() < 0) abort();
}

static void ensure_sodium(void)
{
    pthread_once(&sodium_once, sodium_init_once);
}

/* Value of one hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Writes the 16 bytes b as canonical lower-case text plus a NUL into out. */
static void format_uuid(const unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

void kz_uuid_v4(char out[37])
{
    unsigned char b[16];
    ensure_sodium();
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    format_uuid(b, out);
}

/* ms is clamped to the 48 bits the format has room for: negative values
 * become 0 and values past year 10889 saturate. */
void kz_uuid_v7(char out[37], int64_t ms)
{
    unsigned char b[16];
    uint64_t t;
    if (ms < 0)
        t = 0;
    else if ((uint64_t)ms > 0xffffffffffffULL)
        t = 0xffffffffffffULL;
    else
        t = (uint64_t)ms;

    ensure_sodium();
    randombytes_buf(b + 6, sizeof b - 6);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(t >> (8 * (5 - i)));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70); /* version 7 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    format_uuid(b, out);
}

bool kz_uuid_valid(const char *s, size_t len)
{
    if (!s || len != KZ_UUID_LEN) return false;
    for (size_t i = 0; i < KZ_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (hexval(s[i]) < 0) {
            return false;
        }
    }
    return true;
}

/* The timestamp is the first 12 hex digits (text positions 0-7 and 9-12).
 * Only ids whose version digit is 7 and whose variant is RFC 9562's 10xx
 * qualify; a v4 id would otherwise yield a meaningless random "time". */
int64_t kz_uuid_v7_ms(const char *s, size_t len)
{
    if (!kz_uuid_valid(s, len)) return -1;
    if (s[14] != '7') return -1;
    int variant = hexval(s[19]);
    if ((variant & 0xc) != 0x8) return -1;

    int64_t ms = 0;
    for (size_t i = 0; i < 13; i++) {
        if (i == 8) continue;
        ms = (ms << 4) | hexval(s[i]);
    }
    return ms;
}

int64_t kz_uuid_v7_stamp_at(int64_t unix_ns)
{
    if (unix_ns < 0) unix_ns = 0;
    int64_t ms = unix_ns / 1000000;
    int64_t frac = (unix_ns % 1000000) * 4096 / 1000000;
    return (ms << 12) | frac;
}

void kz_uuid_v7_ns(char out[37], int64_t unix_ns)
{
    kz_uuid_v7(out, unix_ns / 1000000);
    int64_t frac = kz_uuid_v7_stamp_at(unix_ns) & 0xfff;
    static const char hex[] = "0123456789abcdef";
    /* Text positions 15-17 hold the 12 bits after the version digit. */
    out[15] = hex[(frac >> 8) & 0xf];
    out[16] = hex[(frac >> 4) & 0xf];
    out[17] = hex[frac & 0xf];
}

int64_t kz_uuid_v7_stamp(const char *s, size_t len)
{
    int64_t ms = kz_uuid_v7_ms(s, len);
    if (ms < 0) return -1;
    return (ms << 12) | (hexval(s[15]) << 8) | (hexval(s[16]) << 4) | hexval(s[17]);
}
