/* Revoked sessions: an in-memory deny-list in front of the store.
 *
 * A session/refresh token pair shares a token id (tid); logging out adds the
 * tid (until the pair would have expired). Logging out of every session
 * records a per-user cutoff: tokens whose tid (a version 7 UUID carrying its
 * issue time to 1/4096 ms, see kz_uuid_v7_ns) is older are refused. Both are
 * written to the store first and then to memory, and loaded back at
 * start-up, so revocations survive restarts. Lookups take a read lock only
 * and run on any thread. */
#ifndef KZ_API_SESSIONS_H
#define KZ_API_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

typedef struct kz_sessions kz_sessions_t;

kz_sessions_t *kz_sessions_create(void);
void kz_sessions_destroy(kz_sessions_t *s);
/* Fills the cache from the store (dropping expired entries there). */
int kz_sessions_load(kz_sessions_t *s, kz_db_t *db);
/* True when the token with this tid, for this user, has been revoked. */
bool kz_sessions_revoked(kz_sessions_t *s, const char *tid, const char *uid);
/* Revokes one token pair (persisted, then cached). */
int kz_sessions_revoke(kz_sessions_t *s, kz_db_t *db, const char *tid, const char *uid,
                       int64_t expire_ms);
/* Revokes every token of the user issued up to now (persisted, then cached). */
int kz_sessions_revoke_user(kz_sessions_t *s, kz_db_t *db, const char *uid, int64_t expire_ms);
/* Entries currently cached (tests and metrics). */
int kz_sessions_count(kz_sessions_t *s);

/* The process's deny-list, for code that cannot reach the app (the Lua
 * runtime's session_logout, account_delete_id): main sets it at start-up;
 * kz_sessions_destroy clears it. Any thread. */
void kz_sessions_set_global(kz_sessions_t *s);
kz_sessions_t *kz_sessions_get_global(void);

#endif
