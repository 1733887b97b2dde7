/* Accounts in the store: users, their sign-in identifiers (devices, custom
 * id, email), and persisted session revocations. Every function runs on a
 * worker thread with that worker's connection and returns KZ_DB_OK,
 * KZ_STORE_NOTFOUND, KZ_DB_ECONFLICT or another negative kz_db code. */
#ifndef KZ_STORE_ACCOUNT_H
#define KZ_STORE_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

#define KZ_STORE_NOTFOUND 1

/* A user row. Strings are owned (free with kz_user_clear); NULL = unset. */
typedef struct kz_user {
    char id[37];
    char *username;
    char *display_name;
    char *avatar_url;
    char *lang_tag;
    char *location;
    char *timezone;
    char *metadata;
    char *wallet;
    char *email;
    char *password; /* hash, never sent to clients */
    char *custom_id;
    char *facebook_id;
    char *google_id;
    char *gamecenter_id;
    char *steam_id;
    char *apple_id;
    char *facebook_instant_game_id;
    int64_t edge_count;
    int64_t create_time, update_time, verify_time, disable_time; /* unix ms, 0 = unset */
} kz_user_t;

void kz_user_clear(kz_user_t *u);

/* Which identifier a lookup or link uses. */
typedef enum { KZ_ID_DEVICE, KZ_ID_CUSTOM, KZ_ID_EMAIL, KZ_ID_USERNAME, KZ_ID_USER } kz_id_kind_t;

/* Loads the user owning identifier value (device id, custom id, lower-cased
 * email, username or user id). */
int kz_store_user_find(kz_db_t *db, kz_id_kind_t kind, const char *value, kz_user_t *out);

/* Creates a user with id, username and one identifier (kind DEVICE, CUSTOM or
 * EMAIL, with password_hash for EMAIL), in one transaction. KZ_DB_ECONFLICT
 * when the username or the identifier is taken; *identifier_taken tells
 * which (so a racing sign-up of the same device can sign in instead). */
int kz_store_user_create(kz_db_t *db, const char *id, const char *username, kz_id_kind_t kind,
                         const char *value, const char *password_hash, int64_t now_ms,
                         bool *identifier_taken);

/* The device ids linked to a user; *ids is an owned array of owned strings. */
int kz_store_user_devices(kz_db_t *db, const char *user_id, char ***ids, int *n);
void kz_store_strings_free(char **v, int n);

/* One field of an account update: set to value, or cleared when value is NULL. */
typedef struct kz_account_update {
    const char *column; /* "username", "display_name", ... (from a fixed list) */
    const char *value;
} kz_account_update_t;

/* Applies the updates to the user and bumps update_time, in one statement.
 * KZ_DB_ECONFLICT when a new username is taken, KZ_STORE_NOTFOUND when the
 * user is gone. */
int kz_store_account_update(kz_db_t *db, const char *user_id, const kz_account_update_t *u, int n,
                            int64_t now_ms);

/* Deletes the user and everything cascading from it. */
int kz_store_user_delete(kz_db_t *db, const char *user_id);

/* Links identifier value to the user. KZ_DB_ECONFLICT when another user has
 * it; linking an identifier the user already has succeeds. */
int kz_store_link(kz_db_t *db, const char *user_id, kz_id_kind_t kind, const char *value,
                  const char *password_hash, int64_t now_ms);

/* Unlinks identifier value from the user. KZ_STORE_LAST_LINK when nothing
 * was removed: it is the last way to sign in, or the user does not have it
 * (Nakama answers both the same way). */
#define KZ_STORE_LAST_LINK 2
int kz_store_unlink(kz_db_t *db, const char *user_id, kz_id_kind_t kind, const char *value,
                    int64_t now_ms);

/* Users by ids and usernames (borrowed arrays); *out is an owned array of
 * *n users (free each with kz_user_clear, then kz_free the array). */
int kz_store_users_get(kz_db_t *db, char **ids, int nids, char **usernames, int nusernames,
                       kz_user_t **out, int *n);

/* Bans (disable_time = now_ms) or, with now_ms 0, unbans the users among
 * ids (borrowed array of n lower-case UUIDs; unknown ones are skipped).
 * *changed (may be NULL) receives the number of users found. */
int kz_store_users_set_disabled(kz_db_t *db, char **ids, int n, int64_t now_ms, int64_t *changed);

/* Up to count users (at most 1000) picked at random, the system user
 * excepted: the ones after a random id, wrapping around to the start.
 * *out is owned as for kz_store_users_get. */
int kz_store_users_random(kz_db_t *db, int count, kz_user_t **out, int *n);

/* Session revocation: a revoked token pair (kept until expire_ms), and a
 * per-user cutoff (tokens whose id stamp, kz_uuid_v7_stamp, is below the
 * cutoff are invalid). */
int kz_store_revoke_token(kz_db_t *db, const char *token_id, const char *user_id, int64_t expire_ms);
int kz_store_revoke_user(kz_db_t *db, const char *user_id, int64_t cutoff, int64_t expire_ms);

/* Calls fn for every unexpired revocation (user_id NULL for cutoffs'
 * token_id, and the reverse). Used to fill the in-memory cache at start-up. */
typedef void (*kz_revocation_fn)(void *arg, const char *token_id, const char *user_id,
                                 int64_t cutoff, int64_t expire_ms);
int kz_store_revocations_load(kz_db_t *db, int64_t now_ms, kz_revocation_fn fn, void *arg);

#endif
