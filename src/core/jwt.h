/* Session and refresh tokens: HS256 JSON Web Tokens with Nakama's claims.
 *
 *   header  {"alg":"HS256","typ":"JWT"}
 *   payload {"tid":..., "uid":..., "usn":..., "vrs":{...}, "exp":N, "iat":N}
 *
 * Verification accepts only HS256 (alg "none" and every other alg are
 * rejected), compares the MAC in constant time, and requires exp. */
#ifndef KZ_CORE_JWT_H
#define KZ_CORE_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kz_claims {
    char tid[37];  /* token id shared by a session/refresh pair */
    char uid[37];  /* user id */
    char usn[129]; /* username (at most 128 bytes) */
    json_t *vrs;   /* owned: object of string values, or NULL when absent */
    int64_t exp;   /* expiry, unix seconds */
    int64_t iat;   /* issued at (of the original login), unix seconds */
} kz_claims_t;

enum {
    KZ_JWT_OK = 0,
    KZ_JWT_EMALFORMED = -1, /* not three base64url parts, bad JSON, missing claims */
    KZ_JWT_EALG = -2,       /* header alg is not HS256 */
    KZ_JWT_ESIG = -3,       /* MAC does not match */
    KZ_JWT_EEXPIRED = -4,   /* exp <= now */
};

/* Longest token kz_jwt_verify accepts; longer input is KZ_JWT_EMALFORMED. */
#define KZ_JWT_MAX_LEN 8192

/* Signs claims with key; *out receives an owned NUL-terminated token
 * (free with kz_free). Empty usn, NULL/empty vrs and iat == 0 are omitted;
 * vrs entries are written in byte order of their keys. Returns 0, or
 * KZ_JWT_EMALFORMED (and *out = NULL) when a claim cannot be encoded: a
 * string that is not valid UTF-8, or a vrs value that is not a string. */
int kz_jwt_sign(const kz_claims_t *claims, const char *key, size_t keylen, char **out);

/* Verifies token[0..len) with key at time now (unix seconds) and fills out
 * (out->vrs owned by the caller; release with kz_claims_clear). Returns
 * KZ_JWT_OK or one of the negative codes; out is cleared on failure.
 * token needs no NUL terminator. Checks run in this order: shape (three
 * base64url segments, len <= KZ_JWT_MAX_LEN) and header JSON -> EMALFORMED;
 * alg != "HS256" -> EALG; MAC (32 bytes, constant-time) -> ESIG; payload
 * (tid and uid UUID strings, usn string <= 128 bytes, vrs object of strings,
 * integer exp, integer iat; null counts as absent for usn/vrs/iat; unknown
 * claims ignored) -> EMALFORMED; exp <= now -> EEXPIRED. */
int kz_jwt_verify(const char *token, size_t len, const char *key, size_t keylen, int64_t now,
                  kz_claims_t *out);

/* Releases out->vrs and zeroes the struct. */
void kz_claims_clear(kz_claims_t *c);

/* base64url without padding. kz_b64url_encode returns an owned string;
 * kz_b64url_decode returns an owned buffer (NUL-terminated for convenience)
 * and its length in *outlen, or NULL when the input is not base64url. */
char *kz_b64url_encode(const void *data, size_t len);
unsigned char *kz_b64url_decode(const char *s, size_t len, size_t *outlen);

#endif
