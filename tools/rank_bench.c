/* kizuna-rank-bench: the leaderboard rank index (src/rank/index.c), one
 * thread, no locks.
 *
 * Builds one index of N records with random owners and scores (timed, and
 * the resident memory it took divided by N), then times M operations of
 * each kind: rank of a random owner, at() of a random rank, range() of 20
 * from a random rank, and upserts moving random owners to random scores.
 * Prints one line per measure.
 *
 *   kizuna-rank-bench [--records 1000000] [--lookups 1000000]
 *                     [--scores 0] [--ascending] [--seed 1] [--check]
 *
 * --scores K draws scores from 0..K-1 (many ties when K is small); 0 draws
 * them from the whole int64 range. --check verifies every invariant of the
 * index at the end (O(N)).
 *
 * Tools do not link kzcore: the index is compiled in from its source, with
 * the allocation wrappers it needs defined here. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/rank/index.c"

/* core/alloc.h, as src/core/alloc.c has it (abort on failure). */
void *kz_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

void *kz_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) abort();
    return p;
}

void *kz_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) abort();
    return q;
}

void kz_free(void *p)
{
    free(p);
}

static struct {
    int64_t records, lookups, scores;
    bool ascending, check;
    uint64_t seed;
} opt = {1000000, 1000000, 0, false, false, 1};

static void die(const char *what)
{
    fprintf(stderr, "kizuna-rank-bench: %s\n", what);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    return mix(rng_state += 0x9e3779b97f4a7c15ull);
}

/* Owner i, computed rather than stored so that the owners take no memory
 * besides the index's: random bytes with the version 4 nibbles. */
static void owner(int64_t i, uint8_t out[16])
{
    uint64_t a = mix(opt.seed * 0x100000001b3ull + (uint64_t)i * 2);
    uint64_t b = mix(opt.seed * 0x100000001b3ull + (uint64_t)i * 2 + 1);
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

static int64_t score(void)
{
    return opt.scores ? (int64_t)(rnd() % (uint64_t)opt.scores) : (int64_t)rnd();
}

/* Resident memory of the process in bytes. */
static size_t rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static void report(const char *what, int64_t n, uint64_t ns, uint64_t sink)
{
    double s = (double)ns / 1e9;
    printf("%-22s %10lld ops %8.3f s %10.0f ops/s %8.0f ns/op (%llx)\n", what, (long long)n, s,
           (double)n / s, (double)ns / (double)n, (unsigned long long)(sink & 0xfff));
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--ascending")) {
            opt.ascending = true;
            continue;
        }
        if (!strcmp(k, "--check")) {
            opt.check = true;
            continue;
        }
        if (i + 1 >= argc)
            die("a flag needs a value (see the comment at the top of tools/rank_bench.c)");
        const char *v = argv[++i];
        if (!strcmp(k, "--records"))
            opt.records = atoll(v);
        else if (!strcmp(k, "--lookups"))
            opt.lookups = atoll(v);
        else if (!strcmp(k, "--scores"))
            opt.scores = atoll(v);
        else if (!strcmp(k, "--seed"))
            opt.seed = (uint64_t)atoll(v);
        else
            die("unknown flag (see the comment at the top of tools/rank_bench.c)");
    }
    if (opt.records < 1 || opt.records > (int64_t)RECORDS_MAX || opt.lookups < 1 || opt.scores < 0)
        die("bad values: records 1..2^31-2, lookups >= 1, scores >= 0");
    rng_state = opt.seed;
    uint8_t o[16];
    uint64_t sink = 0;

    size_t rss0 = rss();
    kz_rank_index_t *ix = kz_rank_index_new(!opt.ascending);
    uint64_t t0 = now_ns();
    for (int64_t i = 0; i < opt.records; i++) {
        owner(i, o);
        sink += (uint64_t)kz_rank_index_upsert(ix, o, score(), (int64_t)(rnd() & 0xff));
    }
    uint64_t build = now_ns() - t0;
    size_t rss1 = rss();
    if (kz_rank_index_count(ix) != opt.records) die("owners collided");
    char scores[48];
    if (opt.scores)
        snprintf(scores, sizeof scores, "0..%lld", (long long)opt.scores - 1);
    else
        snprintf(scores, sizeof scores, "any int64");
    printf("records %lld, %s, scores %s, subscores 0..255\n", (long long)opt.records,
           opt.ascending ? "ascending" : "descending", scores);
    report("build (inserts)", opt.records, build, sink);
    printf("%-22s %10.1f bytes/record resident (%.1f MiB), %.1f bytes/record allocated\n", "memory",
           (double)(rss1 - rss0) / (double)opt.records, (double)(rss1 - rss0) / 1048576.0,
           (double)kz_rank_index_bytes(ix) / (double)opt.records);

    t0 = now_ns();
    for (int64_t i = 0; i < opt.lookups; i++) {
        owner((int64_t)(rnd() % (uint64_t)opt.records), o);
        sink += (uint64_t)kz_rank_index_rank(ix, o);
    }
    report("rank(owner)", opt.lookups, now_ns() - t0, sink);

    t0 = now_ns();
    for (int64_t i = 0; i < opt.lookups; i++) {
        owner((int64_t)(rnd() % (uint64_t)opt.records) + opt.records, o); /* never inserted */
        sink += (uint64_t)kz_rank_index_rank(ix, o);
    }
    report("rank(absent owner)", opt.lookups, now_ns() - t0, sink);

    kz_rank_entry_t e[20];
    t0 = now_ns();
    for (int64_t i = 0; i < opt.lookups; i++) {
        kz_rank_index_at(ix, 1 + (int64_t)(rnd() % (uint64_t)opt.records), e);
        sink += e[0].owner[0];
    }
    report("at(rank)", opt.lookups, now_ns() - t0, sink);

    t0 = now_ns();
    for (int64_t i = 0; i < opt.lookups; i++) {
        int got = kz_rank_index_range(ix, 1 + (int64_t)(rnd() % (uint64_t)opt.records), 20, e);
        sink += (uint64_t)got + e[got - 1].owner[0];
    }
    report("range(rank, 20)", opt.lookups, now_ns() - t0, sink);

    t0 = now_ns();
    for (int64_t i = 0; i < opt.lookups; i++) {
        owner((int64_t)(rnd() % (uint64_t)opt.records), o);
        sink += (uint64_t)kz_rank_index_upsert(ix, o, score(), (int64_t)(rnd() & 0xff));
    }
    report("upsert (move)", opt.lookups, now_ns() - t0, sink);

    if (opt.check) {
        t0 = now_ns();
        bool ok = kz_rank_index_check(ix) && kz_rank_index_count(ix) == opt.records;
        printf("%-22s %s in %.3f s\n", "check", ok ? "ok" : "FAILED",
               (double)(now_ns() - t0) / 1e9);
        if (!ok) return 1;
    }
    kz_rank_index_free(ix);
    return 0;
}
