/* MD5 (RFC 1321), from the RFC's description: the message is padded with a
 * 1 bit, zeros and its 64-bit little-endian bit length to a multiple of 512
 * bits; each 512-bit block (sixteen little-endian 32-bit words) goes through
 * four rounds of sixteen steps that update the four-word state A, B, C, D;
 * the digest is the final state written little-endian. */
#include "core/md5.h"

#include <string.h>

/* T[i] = floor(2^32 * |sin(i + 1)|), i = 0..63 (RFC 1321, section 3.4). */
static const uint32_t T[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Left-rotation amounts: four per round, repeated over the round's steps. */
static const int S[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static uint32_t rotl(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Processes one 64-byte block into the state. Step i of round r uses the
 * auxiliary function of the round (F, G, H, I), message word k and
 * constant T[i]: a = b + rotl(a + fn(b, c, d) + X[k] + T[i], s). */
static void transform(uint32_t state[4], const unsigned char block[64])
{
    uint32_t X[16];
    for (int i = 0; i < 16; i++) X[i] = load_le32(block + 4 * i);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int k;
        switch (i / 16) {
        case 0: /* F(X,Y,Z) = XY v not(X) Z */
            f = (b & c) | (~b & d);
            k = i;
            break;
        case 1: /* G(X,Y,Z) = XZ v Y not(Z) */
            f = (b & d) | (c & ~d);
            k = (5 * i + 1) % 16;
            break;
        case 2: /* H(X,Y,Z) = X xor Y xor Z */
            f = b ^ c ^ d;
            k = (3 * i + 5) % 16;
            break;
        default: /* I(X,Y,Z) = Y xor (X v not(Z)) */
            f = c ^ (b | ~d);
            k = (7 * i) % 16;
            break;
        }
        uint32_t next = b + rotl(a + f + X[k] + T[i], S[i / 16][i % 4]);
        /* The words rotate roles each step: (a, b, c, d) <- (d, new, b, c). */
        a = d;
        d = c;
        c = b;
        b = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

void kz_md5_init(kz_md5_t *ctx)
{
    /* Initial words (RFC 1321, 3.3), as they read little-endian. */
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->length = 0;
    ctx->used = 0;
}

void kz_md5_update(kz_md5_t *ctx, const void *data, size_t n)
{
    const unsigned char *p = data;
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

void kz_md5_final(kz_md5_t *ctx, unsigned char out[KZ_MD5_LEN])
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
    store_le32(ctx->block + 56, (uint32_t)bits);
    store_le32(ctx->block + 60, (uint32_t)(bits >> 32));
    transform(ctx->state, ctx->block);
    for (int i = 0; i < 4; i++) store_le32(out + 4 * i, ctx->state[i]);
    memset(ctx, 0, sizeof *ctx);
}

void kz_md5(const void *data, size_t n, unsigned char out[KZ_MD5_LEN])
{
    kz_md5_t ctx;
    kz_md5_init(&ctx);
    kz_md5_update(&ctx, data, n);
    kz_md5_final(&ctx, out);
}

void kz_md5_hex(const void *data, size_t n, char out[KZ_MD5_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[KZ_MD5_LEN];
    kz_md5(data, n, d);
    for (int i = 0; i < KZ_MD5_LEN; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[KZ_MD5_HEX_LEN] = '\0';
}
