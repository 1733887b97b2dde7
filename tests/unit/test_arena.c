/* core/arena.c: the bump allocator. Leak checks come from the sanitizer
 * build (ASan's leak detector runs at the end of each test process). */
#include "core/arena.h"

#include <criterion/criterion.h>
#include <stdalign.h>
#include <stdint.h>
#include <string.h>

enum { ALIGN = alignof(max_align_t) };

static bool aligned(const void *p) { return (uintptr_t)p % ALIGN == 0; }

static bool inside(const void *p, size_t n, const void *buf, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)buf;
    return a >= b && a + n <= b + len;
}

Test(arena, first_allocation_is_start_of_aligned_buffer)
{
    alignas(max_align_t) char buf[256];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    cr_assert_eq(kz_arena_alloc(&a, 10), (void *)buf);
    cr_assert_eq(kz_arena_alloc(&a, 10), (void *)(buf + ALIGN));
    cr_assert_null(a.blocks);
    kz_arena_release(&a);
}

Test(arena, allocations_are_aligned_in_buffer)
{
    alignas(max_align_t) char buf[4096];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    for (size_t n = 1; n <= 40; n++) {
        void *p = kz_arena_alloc(&a, n);
        cr_assert(aligned(p), "size %zu at %p", n, p);
        cr_assert(inside(p, n, buf, sizeof buf), "size %zu outside buffer", n);
    }
    cr_assert_null(a.blocks, "spilled to the heap while the buffer had room");
    kz_arena_release(&a);
}

Test(arena, misaligned_buffer_is_aligned_up)
{
    alignas(max_align_t) char buf[256];
    kz_arena_t a;
    kz_arena_init(&a, buf + 1, sizeof buf - 1);
    void *p = kz_arena_alloc(&a, 8);
    cr_assert(aligned(p));
    cr_assert_eq(p, (void *)(buf + ALIGN));
    kz_arena_release(&a);
}

Test(arena, allocations_are_aligned_on_heap)
{
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    for (size_t i = 0; i < 2000; i++) {
        size_t n = i % 97 + 1;
        void *p = kz_arena_alloc(&a, n);
        cr_assert(aligned(p), "allocation %zu of %zu bytes at %p", i, n, p);
    }
    kz_arena_release(&a);
}

Test(arena, exact_fit_uses_buffer_then_spills)
{
    alignas(max_align_t) char buf[64];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    void *p = kz_arena_alloc(&a, sizeof buf);
    cr_assert_eq(p, (void *)buf);
    cr_assert_null(a.blocks);
    void *q = kz_arena_alloc(&a, 1);
    cr_assert_not(inside(q, 1, buf, sizeof buf));
    cr_assert_not_null(a.blocks);
    cr_assert(aligned(q));
    kz_arena_release(&a);
}

Test(arena, too_big_for_buffer_spills)
{
    alignas(max_align_t) char buf[64];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    void *p = kz_arena_alloc(&a, sizeof buf + 1);
    cr_assert_not(inside(p, 1, buf, sizeof buf));
    memset(p, 0x5a, sizeof buf + 1);
    kz_arena_release(&a);
}

Test(arena, one_mebibyte_allocation_is_writable)
{
    alignas(max_align_t) char buf[128];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    size_t n = 1u << 20;
    unsigned char *p = kz_arena_alloc(&a, n);
    cr_assert(aligned(p));
    cr_assert_not(inside(p, 1, buf, sizeof buf));
    memset(p, 0xab, n);
    cr_assert_eq(p[0], 0xab);
    cr_assert_eq(p[n - 1], 0xab);
    /* and the arena goes on working after it */
    unsigned char *q = kz_arena_alloc(&a, 100);
    memset(q, 0xcd, 100);
    cr_assert_eq(p[n - 1], 0xab);
    kz_arena_release(&a);
}

Test(arena, null_buffer_works)
{
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    cr_assert_null(a.blocks);
    char *p = kz_arena_alloc(&a, 5);
    char *q = kz_arena_alloc(&a, 5);
    cr_assert_not_null(p);
    cr_assert_not_null(q);
    cr_assert_neq(p, q);
    memcpy(p, "abcd", 5);
    memcpy(q, "wxyz", 5);
    cr_assert_str_eq(p, "abcd");
    cr_assert_str_eq(q, "wxyz");
    kz_arena_release(&a);
}

Test(arena, zero_size_allocations_are_distinct)
{
    alignas(max_align_t) char buf[64];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    void *p = kz_arena_alloc(&a, 0);
    void *q = kz_arena_alloc(&a, 0);
    cr_assert_not_null(p);
    cr_assert_neq(p, q);
    kz_arena_release(&a);
    kz_arena_init(&a, NULL, 0);
    cr_assert_not_null(kz_arena_alloc(&a, 0));
    kz_arena_release(&a);
}

Test(arena, allocations_do_not_overlap_across_blocks)
{
    enum { COUNT = 3000, SIZE = 37 };
    static unsigned char *ptrs[COUNT];
    alignas(max_align_t) char buf[512];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    for (size_t i = 0; i < COUNT; i++) {
        ptrs[i] = kz_arena_alloc(&a, SIZE);
        memset(ptrs[i], (int)(i & 0xff), SIZE);
    }
    for (size_t i = 0; i < COUNT; i++)
        for (size_t k = 0; k < SIZE; k++) cr_assert_eq(ptrs[i][k], (unsigned char)(i & 0xff), "block %zu", i);
    kz_arena_release(&a);
}

Test(arena, mixed_sizes_are_writable)
{
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    size_t sizes[] = {1, 4095, 4096, 4097, 8191, 16, 100000, 3, 65536, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = kz_arena_alloc(&a, sizes[i]);
        cr_assert(aligned(p));
        memset(p, 0xee, sizes[i]);
    }
    kz_arena_release(&a);
}

Test(arena, release_frees_and_resets)
{
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    for (int i = 0; i < 50; i++) memset(kz_arena_alloc(&a, 3000), 1, 3000);
    kz_arena_alloc(&a, 1u << 20);
    cr_assert_not_null(a.blocks);
    kz_arena_release(&a);
    cr_assert_null(a.blocks);
    cr_assert_null(a.p);
    cr_assert_null(a.end);
    kz_arena_release(&a); /* releasing again does nothing */
}

Test(arena, reusable_after_release_and_init)
{
    alignas(max_align_t) char buf[64];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    kz_arena_alloc(&a, 1000);
    kz_arena_release(&a);
    kz_arena_init(&a, buf, sizeof buf);
    cr_assert_eq(kz_arena_alloc(&a, 8), (void *)buf);
    kz_arena_release(&a);
}

Test(arena, release_without_heap_blocks)
{
    alignas(max_align_t) char buf[64];
    kz_arena_t a;
    kz_arena_init(&a, buf, sizeof buf);
    kz_arena_alloc(&a, 8);
    kz_arena_release(&a);
    cr_assert_null(a.blocks);
    kz_arena_init(&a, NULL, 0);
    kz_arena_release(&a);
}
