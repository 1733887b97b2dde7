/* Password hashing: argon2id (libsodium) for new hashes; bcrypt hashes
 * imported from a Nakama database ($2a$, $2b$, $2y$) are verified through
 * libcrypt. Blocking and deliberately slow: worker threads only. */
#ifndef KZ_CORE_PASSWORD_H
#define KZ_CORE_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define KZ_PASSWORD_HASH_MAX 128

/* Hashes pw[0..len) into out (NUL-terminated). Returns 0 or -1. */
int kz_password_hash(const char *pw, size_t len, char out[KZ_PASSWORD_HASH_MAX]);
/* True when pw matches the stored hash (argon2id or bcrypt). Comparison
 * is constant-time; an unknown hash format never matches. */
bool kz_password_verify(const char *hash, const char *pw, size_t len);

/* Fills out with n random ASCII letters [a-zA-Z] and a NUL (usernames). */
void kz_random_letters(char *out, size_t n);

#endif
