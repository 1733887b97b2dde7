#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>

#include "core/alloc.h"

struct kz_arena_block {
    kz_arena_block_t *next;
    alignas(max_align_t) char data[];
};

enum { ALIGN = alignof(max_align_t), FIRST_HEAP_BLOCK = 4096 };

void kz_arena_init(kz_arena_t *a, void *buf, size_t len)
{
    a->p = buf;
    a->end = buf ? (char *)buf + len : NULL;
    a->next = FIRST_HEAP_BLOCK;
    a->blocks = NULL;
}

void *kz_arena_alloc(kz_arena_t *a, size_t n)
{
    if (n == 0) n = 1;
    if (a->p) {
        uintptr_t at = ((uintptr_t)a->p + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
        if (at <= (uintptr_t)a->end && n <= (uintptr_t)a->end - at) {
            a->p = (char *)at + n;
            return (void *)at;
        }
    }
    if (n > SIZE_MAX / 4) return kz_malloc(n); /* no such memory: kz_malloc aborts */
    size_t size = a->next;
    while (size < n) size *= 2;
    a->next = size * 2;
    kz_arena_block_t *b = kz_malloc(sizeof *b + size);
    b->next = a->blocks;
    a->blocks = b;
    a->p = b->data + n;
    a->end = b->data + size;
    return b->data;
}

void kz_arena_release(kz_arena_t *a)
{
    while (a->blocks) {
        kz_arena_block_t *b = a->blocks;
        a->blocks = b->next;
        kz_free(b);
    }
    a->p = a->end = NULL;
}
