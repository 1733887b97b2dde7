/* Storage objects in the store: JSON documents addressed by (collection,
 * key, owner user id), each with a read permission (0 server only, 1 owner,
 * 2 public), a write permission (0 server only, 1 owner) and a version, the
 * lower-case hex MD5 of the value, for optimistic concurrency.
 *
 * The system user (KZ_UUID_NIL) owns objects written by the server. A
 * "caller" below is the user on whose behalf a client call runs; NULL (or
 * `authoritative`) means the server itself, which ignores permissions.
 *
 * Every function runs on a worker thread with that worker's connection and
 * returns KZ_DB_OK, one of the KZ_STORAGE_REJECT_* outcomes it documents, or
 * a negative kz_db code. Batches are all-or-nothing: one transaction. */
#ifndef KZ_STORE_STORAGE_H
#define KZ_STORE_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/md5.h"
#include "store/db.h"

/* Longest collection and key, in bytes. */
#define KZ_STORAGE_NAME_MAX 128

/* Outcomes of a write or delete batch that changed nothing. */
#define KZ_STORAGE_REJECT_VERSION 20    /* write: version check failed */
#define KZ_STORAGE_REJECT_PERMISSION 21 /* write: the stored object has write = 0 */
#define KZ_STORAGE_REJECT_DELETE 22     /* delete: not found, version check or permission */

/* A stored object. Strings are owned (kz_storage_objects_free). */
typedef struct kz_storage_object {
    char *collection;
    char *key;
    char user_id[37];
    char *value;
    char version[KZ_MD5_HEX_LEN + 1];
    int permission_read;
    int permission_write;
    int64_t create_time, update_time; /* unix ms */
} kz_storage_object_t;

/* Frees the strings of v[0..n) and the array itself; NULL is a no-op. */
void kz_storage_objects_free(kz_storage_object_t *v, int n);

/* One object to write. Strings are borrowed for the call. */
typedef struct kz_storage_write {
    const char *collection;
    const char *key;
    const char *user_id; /* owner, canonical lower-case UUID */
    const char *value;   /* JSON text, stored as given */
    /* NULL or "" = write whatever is stored (unless its write is 0),
     * "*" = only if absent, else only if the stored version equals it. */
    const char *version;
    int permission_read;
    int permission_write;
} kz_storage_write_t;

/* What a successful write made: the new version and the object's times. */
typedef struct kz_storage_ack {
    char version[KZ_MD5_HEX_LEN + 1];
    int64_t create_time, update_time; /* unix ms */
} kz_storage_ack_t;

/* Writes w[0..n) in one transaction, at now_ms. Objects are applied in
 * (collection, key, user_id) order, so concurrent batches lock rows in the
 * same order; among equal ids the later one in w is applied last. On
 * success acks[i] describes w[i]. A rejected object rolls the whole batch
 * back: KZ_STORAGE_REJECT_VERSION ("*" on an existing object, a version
 * that does not match, a version on a missing object) or
 * KZ_STORAGE_REJECT_PERMISSION (not authoritative and the stored object
 * has write = 0), with *rejected (may be NULL) the index in w; -1 otherwise.
 * Concurrent writers expecting the same version: exactly one succeeds. */
int kz_store_storage_write(kz_db_t *db, const kz_storage_write_t *w, int n, bool authoritative,
                           int64_t now_ms, kz_storage_ack_t *acks, int *rejected);

/* Identifies an object (read, delete). Strings are borrowed. */
typedef struct kz_storage_id {
    const char *collection;
    const char *key;
    const char *user_id; /* owner; NULL or "" = the system user */
    const char *version; /* delete only: NULL or "" = any version */
} kz_storage_id_t;

/* Reads ids[0..n) (consistent snapshot) and returns, in request order, those
 * that exist and caller may read: read = 2, or read = 1 and owned by caller;
 * caller NULL reads everything. *out is an owned array of *nout objects
 * (NULL when none). */
int kz_store_storage_read(kz_db_t *db, const char *caller, const kz_storage_id_t *ids, int n,
                          kz_storage_object_t **out, int *nout);

/* Deletes ids[0..n) in one transaction. Unless authoritative, only objects
 * with write > 0 are deleted. Every id must delete its object (a version,
 * when given, must match), else KZ_STORAGE_REJECT_DELETE, nothing deleted,
 * and *rejected (may be NULL) the index in ids. An authoritative delete
 * without a version of a missing object is not an error. */
int kz_store_storage_delete(kz_db_t *db, const kz_storage_id_t *ids, int n, bool authoritative,
                            int *rejected);

/* Lists a collection in (key, user_id) order, up to limit objects after the
 * position (after_key, after_user) exclusive (both NULL = from the start).
 * Which objects:
 *   owner NULL            public objects (read = 2) of every owner;
 *   owner == caller       the caller's readable objects (read >= 1);
 *   another owner         that owner's public objects (read = 2);
 *   caller NULL (server)  everything of owner, or of everyone.
 * *out is an owned array of *n objects; *more tells whether objects follow
 * the last one returned. A page resumes strictly after a position, so
 * writes and deletes between pages never make a page repeat or skip the
 * objects that stayed. */
int kz_store_storage_list(kz_db_t *db, const char *caller, const char *owner, const char *collection,
                          int limit, const char *after_key, const char *after_user,
                          kz_storage_object_t **out, int *n, bool *more);

/* Removes every object the user owns (account deletion; runs inside the
 * caller's transaction, opens none). */
int kz_store_storage_delete_user(kz_db_t *db, const char *user_id);

#endif
