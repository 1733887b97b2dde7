/* Wallets in the store: each user's wallet is a JSON object of integer
 * balances in users.wallet (what GET /v2/account shows), changed only by
 * the runtime, and optionally recorded in the wallet_ledger table.
 *
 * An update adds the integers of a changeset to the balances (a missing
 * key counts as 0). A balance that would go below zero, or out of the
 * 64-bit range, rejects the whole batch: one transaction, nothing changed.
 * Each user's row is locked before it is read (an UPDATE that touches it,
 * so on PostgreSQL concurrent updates of one wallet queue; SQLite has one
 * writer at a time), and a batch locks its users in id order, so two
 * batches cannot deadlock.
 *
 * Every function runs on a worker thread with that worker's connection and
 * returns KZ_DB_OK, a positive code it documents, or a negative kz_db code. */
#ifndef KZ_STORE_WALLET_H
#define KZ_STORE_WALLET_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* Outcomes of an update batch that changed nothing (besides
 * KZ_STORE_NOTFOUND, a user that does not exist). */
enum {
    KZ_WALLET_ENEGATIVE = 30, /* a balance would go below zero */
    KZ_WALLET_EINVALID = 31,  /* a changeset or stored wallet that is not an object of
                                 integers, or a balance out of range */
};

/* One wallet update. Strings are borrowed for the call. */
typedef struct kz_wallet_update {
    const char *user_id;   /* canonical lower-case UUID */
    const char *changeset; /* JSON object of integers */
    const char *metadata;  /* JSON object for the ledger entry; NULL = "{}" */
} kz_wallet_update_t;

/* The wallet around one update: JSON objects, keys sorted. Owned. */
typedef struct kz_wallet_result {
    char *previous;
    char *updated;
    char ledger_id[37]; /* the ledger entry written, "" when none */
} kz_wallet_result_t;

/* Which update of a rejected batch failed, and for a balance, which key. */
typedef struct kz_wallet_error {
    int index;     /* in the request, -1 when none */
    char key[130]; /* the balance that would be negative or overflow ("" otherwise) */
} kz_wallet_error_t;

/* Applies u[0..n) in one transaction at now_ms; updates of the same user
 * apply in request order. With ledger, each writes a ledger entry (its
 * changeset and metadata). On success res[i] describes u[i] (free with
 * kz_wallet_results_free). On a rejection, err (may be NULL) says where. */
int kz_store_wallet_update(kz_db_t *db, const kz_wallet_update_t *u, int n, bool ledger,
                           int64_t now_ms, kz_wallet_result_t *res, kz_wallet_error_t *err);
/* Frees the strings of r[0..n) (not the array). */
void kz_wallet_results_free(kz_wallet_result_t *r, int n);

/* A ledger entry. Strings are owned (kz_wallet_ledger_free). */
typedef struct kz_wallet_ledger {
    char id[37];
    char user_id[37];
    char *changeset;                  /* JSON object text */
    char *metadata;                   /* JSON object text */
    int64_t create_time, update_time; /* unix ms */
} kz_wallet_ledger_t;

/* Up to limit ledger entries of user_id, oldest first by (create_time, id),
 * strictly after the position (after_time, after_id) (after_id NULL or ""
 * = from the start). *out is an owned array of *n entries; *more tells
 * whether entries follow the last one returned. */
int kz_store_wallet_ledger_list(kz_db_t *db, const char *user_id, int limit, int64_t after_time,
                                const char *after_id, kz_wallet_ledger_t **out, int *n, bool *more);
/* Frees v[0..n) and the array; NULL is a no-op. */
void kz_wallet_ledger_free(kz_wallet_ledger_t *v, int n);

/* Replaces the metadata (JSON object text; NULL = {}) of ledger entry id
 * and sets its update_time to now_ms, then reads it into *out (kz_wallet_ledger_clear
 * frees its strings). One
 * transaction. KZ_STORE_NOTFOUND when there is no such entry. */
int kz_store_wallet_ledger_update(kz_db_t *db, const char *id, const char *metadata, int64_t now_ms,
                                  kz_wallet_ledger_t *out);
/* Frees the strings of one entry (not e itself). */
void kz_wallet_ledger_clear(kz_wallet_ledger_t *e);

/* Account deletion: removes user_id's ledger entries (runs inside the
 * caller's transaction, opens none). */
int kz_store_wallet_delete_user(kz_db_t *db, const char *user_id);

#endif
