/* MD5 message digest (RFC 1321), written from the RFC's description.
 *
 * Only for identification, never for security: storage object versions are
 * the lower-case hex MD5 of the value, because that is what Nakama clients
 * see and may compute themselves. libsodium has no MD5. */
#ifndef KZ_CORE_MD5_H
#define KZ_CORE_MD5_H

#include <stddef.h>
#include <stdint.h>

#define KZ_MD5_LEN 16     /* digest bytes */
#define KZ_MD5_HEX_LEN 32 /* hex digits, without the NUL */

/* Incremental state: init, update any number of times, final once. */
typedef struct kz_md5 {
    uint32_t state[4];      /* A, B, C, D */
    uint64_t length;        /* message bytes so far */
    unsigned char block[64]; /* pending partial block */
    size_t used;            /* bytes in block */
} kz_md5_t;

void kz_md5_init(kz_md5_t *ctx);
void kz_md5_update(kz_md5_t *ctx, const void *data, size_t n);
/* Writes the digest to out; ctx must be initialised again before reuse. */
void kz_md5_final(kz_md5_t *ctx, unsigned char out[KZ_MD5_LEN]);

/* One-shot digest of data[0..n). */
void kz_md5(const void *data, size_t n, unsigned char out[KZ_MD5_LEN]);
/* One-shot digest as 32 lower-case hex digits and a NUL. */
void kz_md5_hex(const void *data, size_t n, char out[KZ_MD5_HEX_LEN + 1]);

#endif
