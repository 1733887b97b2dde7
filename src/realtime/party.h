/* Parties: internal declarations of realtime/party.c.
 *
 * The handlers are declared in realtime/envelope.h; this header holds the
 * bounds and the pure helper the unit tests reach. */
#ifndef KZ_REALTIME_PARTY_H
#define KZ_REALTIME_PARTY_H

#include <stdbool.h>
#include <stddef.h>

/* Nakama's bound on max_size. */
#define KZ_PARTY_MAX_SIZE 256
/* Parties one socket may be in or have asked to join at once. */
#define KZ_PARTY_MAX_PER_SESSION 32
/* Bytes of a party label. */
#define KZ_PARTY_LABEL_MAX 2048

/* A party label is empty (shown as "{}") or a JSON object of at most
 * KZ_PARTY_LABEL_MAX bytes. */
bool kz_party_label_ok(const char *label, size_t n);

#endif
