/* The rank indexes of every leaderboard period in memory; thread-safe.
 *
 * A period is named by its board id and its expiry time (0: never). Each
 * period is a rank/index.h index under its own read-write lock (writers
 * first): upsert and remove take it exclusively, rank, count and range
 * shared, so every answer is exact at the moment it is read. The map from
 * (board, expiry) to period has its own lock, held only to find, add or
 * unlink a period; a period unlinked (dropped) while a call is still using
 * it is freed when the last such call returns.
 *
 * Boards unknown to the cache are created on the first upsert of one of
 * their periods, in the order given there; a period keeps the order it was
 * created with. Calls naming an unknown period answer 0 (or false). */
#ifndef KZ_RANK_CACHE_H
#define KZ_RANK_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "rank/index.h"

typedef struct kz_rank_cache kz_rank_cache_t;

kz_rank_cache_t *kz_rank_cache_new(void);
void kz_rank_cache_free(kz_rank_cache_t *c);
/* Inserts owner or moves it to (score, subscore); returns its new rank. */
int64_t kz_rank_cache_upsert(kz_rank_cache_t *c, const char *board, int64_t expiry, bool descending,
                             const uint8_t owner[16], int64_t score, int64_t subscore);
/* Removes owner; false when absent. */
bool kz_rank_cache_remove(kz_rank_cache_t *c, const char *board, int64_t expiry,
                          const uint8_t owner[16]);
/* Rank of owner (1-based), 0 when absent. */
int64_t kz_rank_cache_rank(kz_rank_cache_t *c, const char *board, int64_t expiry,
                           const uint8_t owner[16]);
int64_t kz_rank_cache_count(kz_rank_cache_t *c, const char *board, int64_t expiry);
/* Fills up to n entries starting at rank `from` (1-based); returns how many. */
int kz_rank_cache_range(kz_rank_cache_t *c, const char *board, int64_t expiry, int64_t from, int n,
                        kz_rank_entry_t *out);
/* Drops every period of board (board deleted). */
void kz_rank_cache_drop_board(kz_rank_cache_t *c, const char *board);
/* Drops every period of board with expiry != 0 and expiry <= before
 * (expired periods, to free memory). */
void kz_rank_cache_drop_expired(kz_rank_cache_t *c, const char *board, int64_t before);
/* Periods held (tests and metrics). */
int64_t kz_rank_cache_periods(kz_rank_cache_t *c);

#endif
