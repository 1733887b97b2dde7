/* UUIDs in canonical text form (36 lowercase hex chars and dashes). */
#ifndef KZ_CORE_UUID_H
#define KZ_CORE_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KZ_UUID_LEN 36
#define KZ_UUID_NIL "00000000-0000-0000-0000-000000000000"

/* Random (version 4) UUID. out needs 37 bytes. */
void kz_uuid_v4(char out[37]);
/* Time-ordered (version 7) UUID carrying unix milliseconds ms. */
void kz_uuid_v7(char out[37], int64_t ms);
/* Version 7 UUID for unix time unix_ns whose 12 bits after the version
 * digit carry the sub-millisecond fraction (RFC 9562, method 3) instead of
 * random bits, so ids minted within one millisecond still order by time. */
void kz_uuid_v7_ns(char out[37], int64_t unix_ns);
/* The 60-bit time stamp of a version 7 UUID (ms << 12 | the 12 bits after
 * the version digit), or -1 when s is not one. For ids made by
 * kz_uuid_v7_ns it orders them by their time to 1/4096 ms. */
int64_t kz_uuid_v7_stamp(const char *s, size_t len);
/* The stamp kz_uuid_v7_ns writes for unix_ns. */
int64_t kz_uuid_v7_stamp_at(int64_t unix_ns);
/* The milliseconds inside a version 7 UUID, or -1 when s is not one. */
int64_t kz_uuid_v7_ms(const char *s, size_t len);
/* True when s[0..len) is a UUID in canonical form (either case accepted). */
bool kz_uuid_valid(const char *s, size_t len);

#endif
