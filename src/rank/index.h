/* The rank index of one leaderboard period: its records in rank order.
 *
 * A record is an owner (a UUID as its 16 bytes) with a score and a subscore.
 * Descending boards rank by score DESC, subscore DESC, owner DESC; ascending
 * boards by score ASC, subscore ASC, owner ASC. Owners compare as their 16
 * bytes in memcmp order, which is the order of their canonical lowercase
 * text. Rank 1 is the best record.
 *
 * An AVL tree ordered by (score, subscore, owner) whose nodes carry their
 * subtree size (rank and select in O(log n)), plus an open-addressing hash
 * from owner to node. Nodes live in one array and link by 32-bit index:
 * 48 bytes a record, plus 11 to 21 bytes of hash (8-byte slots kept 3/8 to
 * 3/4 full); about 61 bytes a record resident at 10M records. Removed
 * records' nodes are reused, not returned to the heap, until the index is
 * freed.
 *
 * Not thread-safe: rank/cache.h puts a lock around each index. */
#ifndef KZ_RANK_INDEX_H
#define KZ_RANK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kz_rank_index kz_rank_index_t;

typedef struct {
    uint8_t owner[16];
    int64_t score, subscore;
} kz_rank_entry_t;

kz_rank_index_t *kz_rank_index_new(bool descending);
void kz_rank_index_free(kz_rank_index_t *ix);
/* Inserts owner or moves it to (score, subscore). Returns its new rank
 * (1-based). */
int64_t kz_rank_index_upsert(kz_rank_index_t *ix, const uint8_t owner[16], int64_t score,
                             int64_t subscore);
/* Removes owner; false when absent. */
bool kz_rank_index_remove(kz_rank_index_t *ix, const uint8_t owner[16]);
/* Rank of owner, 0 when absent. */
int64_t kz_rank_index_rank(const kz_rank_index_t *ix, const uint8_t owner[16]);
/* Entry at rank (1..count); false when out of range. */
bool kz_rank_index_at(const kz_rank_index_t *ix, int64_t rank, kz_rank_entry_t *out);
int64_t kz_rank_index_count(const kz_rank_index_t *ix);
bool kz_rank_index_descending(const kz_rank_index_t *ix);

/* Fills up to n entries in rank order starting at rank `from` (1-based);
 * returns how many (0 when from is out of range). O(log count + n). */
int kz_rank_index_range(const kz_rank_index_t *ix, int64_t from, int n, kz_rank_entry_t *out);
/* Heap bytes held (node array and hash table, including unused capacity). */
size_t kz_rank_index_bytes(const kz_rank_index_t *ix);
/* Walks the whole index and verifies every invariant (order, subtree sizes,
 * AVL balance, hash <-> tree agreement, count). O(n); for tests. */
bool kz_rank_index_check(const kz_rank_index_t *ix);

#endif
