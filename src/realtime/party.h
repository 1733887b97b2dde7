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

/* party_matchmaker_add (leader) -> party_matchmaker_ticket, to the leader
 * with its cid and to the other members as an event: one ticket holding
 * every member. party_matchmaker_remove (leader) -> empty ack. Any later
 * membership change cancels the party's tickets. */
#include <jansson.h>
struct kz_ws;
struct kz_rt_sess;
void kz_rt_party_matchmaker_add(struct kz_ws *ws, struct kz_rt_sess *s, const char *cid, json_t *msg);
void kz_rt_party_matchmaker_remove(struct kz_ws *ws, struct kz_rt_sess *s, const char *cid, json_t *msg);

/* A party label is empty (shown as "{}") or a JSON object of at most
 * KZ_PARTY_LABEL_MAX bytes. */
bool kz_party_label_ok(const char *label, size_t n);

#endif
