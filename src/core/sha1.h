/* SHA-1 message digest (FIPS 180-4), written from the standard's description.
 *
 * Only for protocol framing, never for security: the WebSocket opening
 * handshake (RFC 6455) answers a client's Sec-WebSocket-Key with a SHA-1
 * based Sec-WebSocket-Accept value. libsodium has no SHA-1. */
#ifndef KZ_CORE_SHA1_H
#define KZ_CORE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define KZ_SHA1_LEN 20          /* digest bytes */
#define KZ_WS_ACCEPT_LEN 28     /* Sec-WebSocket-Accept chars, without the NUL */

/* Incremental state: init, update any number of times, final once. */
typedef struct kz_sha1 {
    uint32_t state[5];       /* H0 .. H4 */
    uint64_t length;         /* message bytes so far */
    unsigned char block[64]; /* pending partial block */
    size_t used;             /* bytes in block */
} kz_sha1_t;

void kz_sha1_init(kz_sha1_t *ctx);
void kz_sha1_update(kz_sha1_t *ctx, const void *data, size_t n);
/* Writes the digest to out; ctx must be initialised again before reuse. */
void kz_sha1_final(kz_sha1_t *ctx, unsigned char out[KZ_SHA1_LEN]);

/* One-shot digest of data[0..n). */
void kz_sha1(const void *data, size_t n, unsigned char out[KZ_SHA1_LEN]);

/* The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key
 * key[0..n) (RFC 6455, section 4.2.2): standard padded base64 of
 * SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"). out gets 28 chars
 * and a NUL. The key is used as given; the caller trims and validates it.
 * Uses libsodium's base64, so sodium_init() must have been called. */
void kz_ws_accept_key(const char *key, size_t n, char out[KZ_WS_ACCEPT_LEN + 1]);

#endif
