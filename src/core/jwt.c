/* Session and refresh tokens: HS256 JSON Web Tokens (RFC 7519) with the
 * claims Nakama puts in its tokens, so client SDKs that decode the payload
 * (without verifying it) read the same fields.
 *
 * Signing writes the header as the fixed string {"alg":"HS256","typ":"JWT"}
 * and the payload with keys in Nakama's order (tid, uid, usn, vrs, exp, iat).
 * Verification trusts nothing in the token until its MAC has been checked:
 * the header is only looked at for "alg", the MAC is compared in constant
 * time, and only then is the payload parsed. Any alg other than exactly
 * "HS256" (including "none") is refused, so the key type can never be
 * confused. */
#include "core/jwt.h"

#include "core/alloc.h"
#include "core/uuid.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* base64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"): every token we sign
 * starts with this, so it is a constant rather than an encoding per call. */
#define JWT_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_init_once(void)
{
    if (sodium_init() < 0) abort();
}

static void ensure_sodium(void)
{
    pthread_once(&sodium_once, sodium_init_once);
}

/* ------------------------------------------------------------------------ */
/* base64url                                                                */
/* ------------------------------------------------------------------------ */

char *kz_b64url_encode(const void *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, B64URL);
    char *out = kz_malloc(cap);
    if (len == 0) {
        out[0] = '\0';
        return out;
    }
    sodium_bin2base64(out, cap, data, len, B64URL);
    return out;
}

/* Strict decoding: the whole of s[0..len) must be base64url without padding,
 * and the unused low bits of the last character must be zero (libsodium
 * checks this), so each byte string has exactly one accepted encoding. s
 * needs no terminator and is never read past len. */
unsigned char *kz_b64url_decode(const char *s, size_t len, size_t *outlen)
{
    /* Four characters carry three bytes; a trailing group of 2 or 3
     * characters carries 1 or 2 more. */
    size_t cap = len / 4 * 3 + 2;
    unsigned char *buf = kz_malloc(cap + 1);
    size_t n = 0;

    if (len > 0 && sodium_base642bin(buf, cap, s, len, NULL, &n, NULL, B64URL) != 0) {
        kz_free(buf);
        if (outlen) *outlen = 0;
        return NULL;
    }
    buf[n] = '\0';
    if (outlen) *outlen = n;
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* HMAC-SHA256 of msg[0..len) under a key of any length (keys longer than the
 * SHA-256 block are hashed first by libsodium, as RFC 2104 requires). */
static void hmac_sha256(const char *key, size_t keylen, const char *msg, size_t len,
                        unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)(key ? key : ""), key ? keylen : 0);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

/* Serialises j compactly into a fresh kz_malloc'd NUL-terminated string
 * (owned by the caller), or NULL when jansson cannot encode it. Going
 * through json_dumpb keeps the result on our allocator whatever allocator
 * jansson has been given. */
static char *dump_compact(const json_t *j, size_t *len)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t n = json_dumpb(j, NULL, 0, flags);
    if (n == 0) return NULL;
    char *s = kz_malloc(n + 1);
    if (json_dumpb(j, s, n, flags) != n) {
        kz_free(s);
        return NULL;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Builds a new object (owned by the caller) with vrs's entries in byte
 * order of their keys, which is how Go's encoding/json writes Nakama's
 * map[string]string; the output is therefore deterministic. Returns NULL
 * when a value is not a string. */
static json_t *sorted_vars(json_t *vrs)
{
    size_t n = json_object_size(vrs);
    const char **keys = kz_malloc(n * sizeof *keys);
    size_t i = 0;
    const char *k;
    json_t *v;
    json_t *out = NULL;

    json_object_foreach(vrs, k, v)
    {
        if (!json_is_string(v)) goto done;
        keys[i++] = k;
    }
    qsort(keys, n, sizeof *keys, cmp_key);
    out = json_object();
    for (i = 0; i < n; i++)
        json_object_set(out, keys[i], json_object_get(vrs, keys[i]));
done:
    kz_free(keys);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Sign                                                                     */
/* ------------------------------------------------------------------------ */

/* Builds header.payload.signature. The payload omits usn when empty, vrs
 * when NULL or empty, and iat when 0 (as Go's omitempty does in Nakama).
 * Returns KZ_JWT_OK with *out owned by the caller (kz_free), or
 * KZ_JWT_EMALFORMED when a claim cannot be encoded: a string that is not
 * valid UTF-8 or a vrs value that is not a string. */
int kz_jwt_sign(const kz_claims_t *claims, const char *key, size_t keylen, char **out)
{
    int rc = KZ_JWT_EMALFORMED;
    json_t *p = json_object();
    char *payload = NULL, *payload_b64 = NULL, *sig_b64 = NULL;
    size_t payload_len = 0;

    *out = NULL;
    ensure_sodium();

    if (json_object_set_new(p, "tid", json_stringn(claims->tid, strnlen(claims->tid, 36))) != 0 ||
        json_object_set_new(p, "uid", json_stringn(claims->uid, strnlen(claims->uid, 36))) != 0)
        goto done;
    size_t usn_len = strnlen(claims->usn, 128);
    if (usn_len > 0 && json_object_set_new(p, "usn", json_stringn(claims->usn, usn_len)) != 0)
        goto done;
    if (claims->vrs && json_object_size(claims->vrs) > 0) {
        if (!json_is_object(claims->vrs)) goto done;
        json_t *vrs = sorted_vars(claims->vrs);
        if (!vrs || json_object_set_new(p, "vrs", vrs) != 0) goto done;
    }
    json_object_set_new(p, "exp", json_integer(claims->exp));
    if (claims->iat != 0) json_object_set_new(p, "iat", json_integer(claims->iat));

    payload = dump_compact(p, &payload_len);
    if (!payload) goto done;
    payload_b64 = kz_b64url_encode(payload, payload_len);

    /* signing input = header "." payload; the MAC covers exactly that. */
    size_t hlen = sizeof JWT_HEADER_B64 - 1;
    size_t plen = strlen(payload_b64);
    size_t siglen_b64 = sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, B64URL) - 1;
    char *tok = kz_malloc(hlen + 1 + plen + 1 + siglen_b64 + 1);
    memcpy(tok, JWT_HEADER_B64, hlen);
    tok[hlen] = '.';
    memcpy(tok + hlen + 1, payload_b64, plen);

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    hmac_sha256(key, keylen, tok, hlen + 1 + plen, mac);
    sig_b64 = kz_b64url_encode(mac, sizeof mac);
    tok[hlen + 1 + plen] = '.';
    memcpy(tok + hlen + 1 + plen + 1, sig_b64, siglen_b64 + 1); /* with NUL */

    *out = tok;
    rc = KZ_JWT_OK;
done:
    json_decref(p);
    kz_free(payload);
    kz_free(payload_b64);
    kz_free(sig_b64);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Verify                                                                   */
/* ------------------------------------------------------------------------ */

/* Decodes a base64url segment and parses it as a JSON object. Returns the
 * object (owned by the caller) or NULL. Duplicate keys are refused so that
 * no two readers can disagree about which value counts. */
static json_t *decode_json_object(const char *s, size_t len)
{
    size_t n;
    unsigned char *raw = kz_b64url_decode(s, len, &n);
    if (!raw) return NULL;
    json_error_t err;
    json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &err);
    kz_free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Header check: it must be a JSON object whose "alg" is exactly "HS256". */
static int check_header(const char *s, size_t len)
{
    json_t *h = decode_json_object(s, len);
    if (!h) return KZ_JWT_EMALFORMED;
    json_t *alg = json_object_get(h, "alg");
    bool ok = json_is_string(alg) && json_string_length(alg) == 5 &&
              memcmp(json_string_value(alg), "HS256", 5) == 0;
    json_decref(h);
    return ok ? KZ_JWT_OK : KZ_JWT_EALG;
}

/* Copies a UUID-valued string claim into dst[37]. */
static bool take_uuid(json_t *root, const char *name, char dst[37])
{
    json_t *v = json_object_get(root, name);
    if (!json_is_string(v) || !kz_uuid_valid(json_string_value(v), json_string_length(v)))
        return false;
    memcpy(dst, json_string_value(v), KZ_UUID_LEN);
    dst[KZ_UUID_LEN] = '\0';
    return true;
}

/* Fills out from the (already authenticated) payload object. JSON null is
 * accepted for the optional claims and means absent, as in Go. Returns
 * false when a claim is missing or has the wrong type or size; out->vrs may
 * have been set and is then released by the caller's kz_claims_clear. */
static bool parse_claims(json_t *root, kz_claims_t *out)
{
    if (!take_uuid(root, "tid", out->tid) || !take_uuid(root, "uid", out->uid)) return false;

    json_t *usn = json_object_get(root, "usn");
    if (usn && !json_is_null(usn)) {
        /* jansson rejects \u0000 while parsing, so the length is the strlen. */
        if (!json_is_string(usn) || json_string_length(usn) > 128) return false;
        memcpy(out->usn, json_string_value(usn), json_string_length(usn) + 1);
    }

    json_t *vrs = json_object_get(root, "vrs");
    if (vrs && !json_is_null(vrs)) {
        if (!json_is_object(vrs)) return false;
        const char *k;
        json_t *v;
        json_object_foreach(vrs, k, v)
        {
            if (!json_is_string(v)) return false;
        }
        out->vrs = json_incref(vrs);
    }

    json_t *exp = json_object_get(root, "exp");
    if (!json_is_integer(exp)) return false;
    out->exp = json_integer_value(exp);

    json_t *iat = json_object_get(root, "iat");
    if (iat && !json_is_null(iat)) {
        if (!json_is_integer(iat)) return false;
        out->iat = json_integer_value(iat);
    }
    return true;
}

int kz_jwt_verify(const char *token, size_t len, const char *key, size_t keylen, int64_t now,
                  kz_claims_t *out)
{
    memset(out, 0, sizeof *out);
    if (!token || len == 0 || len > KZ_JWT_MAX_LEN) return KZ_JWT_EMALFORMED;
    ensure_sodium();

    /* Exactly three segments: two dots, no third. */
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    if (!d1) return KZ_JWT_EMALFORMED;
    const char *d2 = memchr(d1 + 1, '.', (size_t)(end - (d1 + 1)));
    if (!d2) return KZ_JWT_EMALFORMED;
    if (memchr(d2 + 1, '.', (size_t)(end - (d2 + 1)))) return KZ_JWT_EMALFORMED;

    int rc = check_header(token, (size_t)(d1 - token));
    if (rc != KZ_JWT_OK) return rc;

    size_t siglen;
    unsigned char *sig = kz_b64url_decode(d2 + 1, (size_t)(end - (d2 + 1)), &siglen);
    if (!sig) return KZ_JWT_EMALFORMED;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    hmac_sha256(key, keylen, token, (size_t)(d2 - token), mac);
    bool sig_ok = siglen == sizeof mac && crypto_verify_32(sig, mac) == 0;
    kz_free(sig);
    if (!sig_ok) return KZ_JWT_ESIG;

    /* From here on the payload is ours (or was made with our key). */
    json_t *root = decode_json_object(d1 + 1, (size_t)(d2 - (d1 + 1)));
    if (!root) return KZ_JWT_EMALFORMED;
    bool ok = parse_claims(root, out);
    json_decref(root);
    if (!ok) {
        kz_claims_clear(out);
        return KZ_JWT_EMALFORMED;
    }
    if (out->exp <= now) {
        kz_claims_clear(out);
        return KZ_JWT_EEXPIRED;
    }
    return KZ_JWT_OK;
}

void kz_claims_clear(kz_claims_t *c)
{
    if (!c) return;
    json_decref(c->vrs);
    memset(c, 0, sizeof *c);
}
