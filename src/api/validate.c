/* Input validation for authenticate/link/account requests; see validate.h
 * for the rules and where they come from. Every function here is pure and
 * thread-safe, and reads only s[0..n). */
#include "api/validate.h"

#include <string.h>

#define MSG_DEVICE_REQUIRED "Device ID is required."
#define MSG_DEVICE_CHARS "Device ID invalid, no spaces or control characters allowed."
#define MSG_DEVICE_LEN "Device ID invalid, must be 10-128 bytes."
#define MSG_CUSTOM_REQUIRED "Custom ID is required."
#define MSG_CUSTOM_CHARS "Custom ID invalid, no spaces or control characters allowed."
#define MSG_CUSTOM_LEN "Custom ID invalid, must be 6-128 bytes."
#define MSG_EMAIL_PW_REQUIRED "Email address and password is required."
#define MSG_EMAIL_CHARS "Invalid email address, no spaces or control characters allowed."
#define MSG_EMAIL_FORMAT "Invalid email address format."
#define MSG_EMAIL_LEN "Invalid email address, must be 10-255 bytes."
#define MSG_PASSWORD_LEN "Password must be at least 8 characters long."
#define MSG_USERNAME_CHARS "Username invalid, no spaces or control characters allowed."
#define MSG_USERNAME_LEN "Username invalid, must be 1-128 bytes."

bool kz_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0) lo = 0xa0; /* no overlong 3-byte forms */
            if (c == 0xed) hi = 0x9f; /* no UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0) lo = 0x90; /* no overlong 4-byte forms */
            if (c == 0xf4) hi = 0x8f; /* nothing above U+10FFFF */
        } else {
            return false; /* continuation byte, 0xc0/0xc1 or 0xf5.. */
        }
        if (n - i - 1 < need) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80) return false;
        i += need + 1;
    }
    return true;
}

/* True when s contains an ASCII control byte, or a space when spaces are
 * forbidden too (Go's [[:cntrl:]] and [[:space:]]: \t \n \v \f \r are
 * control bytes already), or is not valid UTF-8. */
static bool bad_chars(const char *str, size_t n, bool forbid_space)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) return true;
        if (forbid_space && s[i] == ' ') return true;
    }
    return !kz_utf8_valid(str, n);
}

/* Go's ^.+@.+\..+$ on a string without newlines: some '@' with at least one
 * byte before it, then a '.' with at least one byte between it and the '@'
 * and at least one after it. Choosing the first '@' at index >= 1 leaves
 * the most room, so checking only that one is exact. ('@' and '.' are
 * ASCII and never occur inside a multi-byte character, so byte positions
 * stand in for Go's rune positions.) */
static bool email_shape(const char *s, size_t n)
{
    if (n < 5) return false; /* x@y.z is the shortest match */
    const char *at = memchr(s + 1, '@', n - 1);
    if (!at) return false;
    size_t a = (size_t)(at - s);
    for (size_t j = a + 2; j + 1 < n; j++)
        if (s[j] == '.') return true;
    return false;
}

const char *kz_validate_device_id(const char *s, size_t n)
{
    if (n == 0) return MSG_DEVICE_REQUIRED;
    if (bad_chars(s, n, true)) return MSG_DEVICE_CHARS;
    if (n < 10 || n > 128) return MSG_DEVICE_LEN;
    return NULL;
}

const char *kz_validate_custom_id(const char *s, size_t n)
{
    if (n == 0) return MSG_CUSTOM_REQUIRED;
    if (bad_chars(s, n, true)) return MSG_CUSTOM_CHARS;
    if (n < 6 || n > 128) return MSG_CUSTOM_LEN;
    return NULL;
}

/* Shape and length, the part of the email rules that follows the
 * forbidden-byte check in both authenticate and link. */
static const char *email_shape_len(const char *s, size_t n)
{
    if (!email_shape(s, n)) return MSG_EMAIL_FORMAT;
    if (n < 10 || n > 255) return MSG_EMAIL_LEN;
    return NULL;
}

const char *kz_validate_email(const char *s, size_t n)
{
    if (n == 0) return MSG_EMAIL_PW_REQUIRED;
    if (bad_chars(s, n, true)) return MSG_EMAIL_CHARS;
    return email_shape_len(s, n);
}

const char *kz_validate_password(const char *s, size_t n)
{
    (void)s;
    if (n < 8) return MSG_PASSWORD_LEN;
    return NULL;
}

const char *kz_validate_link_email(const char *email, size_t en, const char *pw, size_t pn)
{
    if (en == 0 || pn == 0) return MSG_EMAIL_PW_REQUIRED;
    if (bad_chars(email, en, true)) return MSG_EMAIL_CHARS;
    if (pn < 8) return MSG_PASSWORD_LEN;
    return email_shape_len(email, en);
}

const char *kz_validate_username(const char *s, size_t n)
{
    if (bad_chars(s, n, false)) return MSG_USERNAME_CHARS;
    if (n < 1 || n > 128) return MSG_USERNAME_LEN;
    return NULL;
}

void kz_lower_ascii(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
}
