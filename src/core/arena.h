/* A bump allocator for short-lived scratch memory (one decoded message,
 * one encoded reply): allocations are never freed one by one, the whole
 * arena is released at once.
 *
 * The first block can be caller memory (a stack buffer), so the common
 * small case allocates nothing from the heap; further blocks come from
 * kz_malloc and double in size. */
#ifndef KZ_CORE_ARENA_H
#define KZ_CORE_ARENA_H

#include <stddef.h>

typedef struct kz_arena_block kz_arena_block_t;

typedef struct kz_arena {
    char *p, *end;            /* free space of the current block */
    size_t next;              /* size of the next heap block */
    kz_arena_block_t *blocks; /* heap blocks, newest first */
} kz_arena_t;

/* Starts an arena on buf[0..len) (buf may be NULL with len 0). */
void kz_arena_init(kz_arena_t *a, void *buf, size_t len);
/* n bytes aligned for any type; never NULL (aborts on exhaustion). */
void *kz_arena_alloc(kz_arena_t *a, size_t n);
/* Releases the heap blocks; the arena must be initialised again to reuse. */
void kz_arena_release(kz_arena_t *a);

#endif
