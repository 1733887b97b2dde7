/* Relayed matches: internal declarations of realtime/match.c.
 *
 * The handlers themselves are declared in realtime/envelope.h; this header
 * holds the bounds and the pure helpers (match ids, bytes, int64 input) so
 * the unit tests can reach them. */
#ifndef KZ_REALTIME_MATCH_H
#define KZ_REALTIME_MATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Members of one relayed match; a join past it is refused (Nakama has no
 * bound; a relayed match is meant for a handful of players). */
#define KZ_MATCH_MAX_MEMBERS 256
/* Matches one socket may be in at once. */
#define KZ_MATCH_MAX_PER_SESSION 64

/* Parses a UUID in any form Nakama's uuid.FromString accepts (canonical,
 * 32 hex digits, {braced}, urn:uuid: prefixed; either case) from s[0..n)
 * into canonical lower-case text. False when it is not one. */
bool kz_match_uuid_parse(const char *s, size_t n, char out[37]);

/* Splits a match id "<uuid>.<node>" at its first dot: the canonical uuid
 * goes to uuid and *node points at the node part (empty for a relayed
 * match). False without a dot or with a bad uuid ("Invalid match ID"). */
bool kz_match_id_parse(const char *id, char uuid[37], const char **node);

/* The name-based (version 5, SHA-1) UUID of name[0..n) in the DNS
 * namespace, as Nakama derives a named relayed match's id. */
void kz_match_uuid_v5_dns(const char *name, size_t n, char out[37]);

struct kz_am_filter;
/* GET /v2/match and nk.match_list: the authoritative matches passing f
 * (kz_am_list), then - when f does not ask for authoritative ones only and
 * has no label or query - relayed matches {match_id, authoritative: false,
 * size} whose member count is within f's sizes, up to f->limit in all. A
 * new array, or NULL with err set for a bad query. */
json_t *kz_match_list(const struct kz_am_filter *f, char *err, size_t errlen);

#endif
