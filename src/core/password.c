/* Password hashing and verification.
 *
 * New hashes are argon2id with libsodium's "interactive" limits (about 64 MiB
 * and a few tens of milliseconds). Accounts imported from a Nakama database
 * carry bcrypt hashes ($2a$ from Go's x/crypto/bcrypt; $2b$ and $2y$ from
 * other tools), which libcrypt verifies. Both paths are slow on purpose and
 * must only run on worker threads. */
#include "core/password.h"

#include "core/alloc.h"

#include <crypt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(KZ_PASSWORD_HASH_MAX >= crypto_pwhash_STRBYTES,
               "KZ_PASSWORD_HASH_MAX must hold a libsodium pwhash string");

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_init_once(void)
{
    if (sodium_init() < 0) abort();
}

static void ensure_sodium(void)
{
    pthread_once(&sodium_once, sodium_init_once);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int kz_password_hash(const char *pw, size_t len, char out[KZ_PASSWORD_HASH_MAX])
{
    ensure_sodium();
    if (crypto_pwhash_str_alg(out, pw ? pw : "", pw ? len : 0, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* bcrypt through libcrypt: re-hash pw with the stored hash as the setting
 * and compare the two strings in constant time. crypt needs a C string, so
 * a password containing a NUL byte cannot match (crypt would silently
 * ignore everything after it). The passphrase copy and libcrypt's scratch
 * area are wiped before they are freed. */
static bool bcrypt_verify(const char *hash, const char *pw, size_t len)
{
    if (len >= CRYPT_MAX_PASSPHRASE_SIZE || memchr(pw, '\0', len)) return false;

    char *phrase = kz_malloc(len + 1);
    memcpy(phrase, pw, len);
    phrase[len] = '\0';
    /* libcrypt requires a zeroed crypt_data before first use; ~32 KiB, so
     * it lives on the heap rather than a worker's stack. */
    struct crypt_data *data = kz_calloc(1, sizeof *data);

    bool ok = false;
    const char *res = crypt_rn(phrase, hash, data, (int)sizeof *data);
    if (res) {
        size_t rlen = strlen(res), hlen = strlen(hash);
        ok = rlen == hlen && sodium_memcmp(res, hash, hlen) == 0;
    }

    sodium_memzero(phrase, len + 1);
    sodium_memzero(data, sizeof *data);
    kz_free(phrase);
    kz_free(data);
    return ok;
}

bool kz_password_verify(const char *hash, const char *pw, size_t len)
{
    if (!hash) return false;
    if (!pw) {
        if (len != 0) return false;
        pw = "";
    }
    ensure_sodium();

    if (has_prefix(hash, "$argon2id$") || has_prefix(hash, "$argon2i$")) {
        /* libsodium's verifier parses up to the NUL; a string that does not
         * fit its declared buffer size is not one it produced. */
        if (strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES) return false;
        return crypto_pwhash_str_verify(hash, pw, len) == 0;
    }
    if (has_prefix(hash, "$2a$") || has_prefix(hash, "$2b$") || has_prefix(hash, "$2y$"))
        return bcrypt_verify(hash, pw, len);
    return false;
}

/* Uniform over the 52 letters: randombytes_uniform avoids modulo bias. */
void kz_random_letters(char *out, size_t n)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    ensure_sodium();
    for (size_t i = 0; i < n; i++)
        out[i] = letters[randombytes_uniform(52)];
    out[n] = '\0';
}
