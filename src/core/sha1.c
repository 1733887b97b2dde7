/* SHA-1 (FIPS 180-4), from the standard's description: the message is
 * padded with a 1 bit, zeros and its 64-bit big-endian bit length to a
 * multiple of 512 bits (section 5.1.1); each 512-bit block (sixteen
 * big-endian 32-bit words) is expanded to an eighty-word schedule and goes
 * through eighty steps that update the five working words a..e (section
 * 6.1.2); the digest is the final state H0..H4 written big-endian. */
#include "core/sha1.h"

#include <sodium.h>
#include <string.h>

/* The GUID RFC 6455 appends to the client's key (section 1.3). */
static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static uint32_t rotl(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Processes one 64-byte block into the state. The schedule is
 * W[t] = M[t] for t < 16, else rotl(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16], 1);
 * step t computes T = rotl(a, 5) + f_t(b, c, d) + e + K_t + W[t] with the
 * function and constant of its group of twenty (section 4.1.1, 4.2.1). */
static void transform(uint32_t state[5], const unsigned char block[64])
{
    uint32_t W[80];
    for (int t = 0; t < 16; t++) W[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 80; t++) W[t] = rotl(W[t - 3] ^ W[t - 8] ^ W[t - 14] ^ W[t - 16], 1);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        switch (t / 20) {
        case 0: /* Ch(x,y,z) = (x AND y) XOR (NOT x AND z) */
            f = (b & c) ^ (~b & d);
            k = 0x5a827999;
            break;
        case 1: /* Parity(x,y,z) = x XOR y XOR z */
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
            break;
        case 2: /* Maj(x,y,z) = (x AND y) XOR (x AND z) XOR (y AND z) */
            f = (b & c) ^ (b & d) ^ (c & d);
            k = 0x8f1bbcdc;
            break;
        default: /* Parity again */
            f = b ^ c ^ d;
            k = 0xca62c1d6;
            break;
        }
        uint32_t T = rotl(a, 5) + f + e + k + W[t];
        /* (a, b, c, d, e) <- (T, a, rotl(b, 30), c, d). */
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = T;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
}

void kz_sha1_init(kz_sha1_t *ctx)
{
    /* Initial hash value H(0) (FIPS 180-4, section 5.3.1). */
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->state[4] = 0xc3d2e1f0;
    ctx->length = 0;
    ctx->used = 0;
}

void kz_sha1_update(kz_sha1_t *ctx, const void *data, size_t n)
{
    const unsigned char *p = data;
    if (n == 0) return; /* data may be NULL then */
    ctx->length += n;
    if (ctx->used) {
        size_t take = 64 - ctx->used < n ? 64 - ctx->used : n;
        memcpy(ctx->block + ctx->used, p, take);
        ctx->used += take;
        p += take;
        n -= take;
        if (ctx->used < 64) return;
        transform(ctx->state, ctx->block);
        ctx->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) transform(ctx->state, p);
    memcpy(ctx->block, p, n);
    ctx->used = n;
}

void kz_sha1_final(kz_sha1_t *ctx, unsigned char out[KZ_SHA1_LEN])
{
    uint64_t bits = ctx->length * 8;
    /* Padding: one 1 bit, then zeros up to 56 bytes into a block (a whole
     * extra block when fewer than 8 bytes are left), then the bit length. */
    ctx->block[ctx->used++] = 0x80;
    if (ctx->used > 56) {
        memset(ctx->block + ctx->used, 0, 64 - ctx->used);
        transform(ctx->state, ctx->block);
        ctx->used = 0;
    }
    memset(ctx->block + ctx->used, 0, 56 - ctx->used);
    store_be32(ctx->block + 56, (uint32_t)(bits >> 32));
    store_be32(ctx->block + 60, (uint32_t)bits);
    transform(ctx->state, ctx->block);
    for (int i = 0; i < 5; i++) store_be32(out + 4 * i, ctx->state[i]);
    memset(ctx, 0, sizeof *ctx);
}

void kz_sha1(const void *data, size_t n, unsigned char out[KZ_SHA1_LEN])
{
    kz_sha1_t ctx;
    kz_sha1_init(&ctx);
    kz_sha1_update(&ctx, data, n);
    kz_sha1_final(&ctx, out);
}

void kz_ws_accept_key(const char *key, size_t n, char out[KZ_WS_ACCEPT_LEN + 1])
{
    unsigned char d[KZ_SHA1_LEN];
    kz_sha1_t ctx;
    kz_sha1_init(&ctx);
    kz_sha1_update(&ctx, key, n);
    kz_sha1_update(&ctx, WS_GUID, sizeof WS_GUID - 1);
    kz_sha1_final(&ctx, d);
    /* 20 bytes encode to 28 padded chars; the NUL makes 29. */
    sodium_bin2base64(out, KZ_WS_ACCEPT_LEN + 1, d, sizeof d, sodium_base64_VARIANT_ORIGINAL);
}
