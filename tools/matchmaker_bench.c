/* kizuna-matchmaker-bench: how long one matchmaker interval takes.
 *
 *   kizuna-matchmaker-bench [-s scenario] [-p passes] [N ...]   (default N: 1000 10000 100000)
 *
 * Fills a pool (realtime/matchmaker.h, the code the server runs) with N
 * tickets, one session each, and times kz_mm_process passes: snapshot,
 * index, search, commit. Scenarios:
 *
 *   region   8 regions x 4 modes, skill 0..999; query
 *            +properties.region:R +properties.mode:M
 *            +properties.skill:>=S-100 +properties.skill:<=S+100, groups of 2
 *   range    skill only: +properties.skill:>=S-25 +properties.skill:<=S+25, 2
 *   any      "*", groups of 2..4 (whole-pool scans)
 *   mixed    region queries with groups of 2..4, count_multiple 2 for a
 *            quarter, "*" for a tenth
 *   should   +properties.region:R properties.mode:M: the region is required,
 *            the same mode preferred (candidates ranked by score), 2
 *
 * Prints per pass: tickets, groups formed, tickets matched, index and
 * total milliseconds. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "realtime/matchmaker.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *regions[] = {"eu", "us", "asia", "sa", "af", "oc", "me", "ca"};
static const char *modes[] = {"ranked", "casual", "duo", "squad"};

static void fill(kz_mm_pool_t *pool, const char *scenario, int n)
{
    char q[256];
    for (int i = 0; i < n; i++) {
        const char *r = regions[rnd(8)], *m = modes[rnd(4)];
        int skill = (int)rnd(1000), min = 2, max = 2, mult = 1;
        const char *query = q;
        if (strcmp(scenario, "region") == 0) {
            snprintf(q, sizeof q, "+properties.region:%s +properties.mode:%s +properties.skill:>=%d +properties.skill:<=%d",
                     r, m, skill - 100, skill + 100);
        } else if (strcmp(scenario, "range") == 0) {
            snprintf(q, sizeof q, "+properties.skill:>=%d +properties.skill:<=%d", skill - 25, skill + 25);
        } else if (strcmp(scenario, "should") == 0) {
            snprintf(q, sizeof q, "+properties.region:%s properties.mode:%s", r, m);
        } else if (strcmp(scenario, "any") == 0) {
            query = "*";
            max = 2 + (int)rnd(3);
        } else {
            snprintf(q, sizeof q, "+properties.region:%s +properties.mode:%s +properties.skill:>=%d +properties.skill:<=%d",
                     r, m, skill - 150, skill + 150);
            max = 2 + (int)rnd(3);
            if (rnd(4) == 0) {
                mult = 2;
                max = 4;
            }
            if (rnd(10) == 0) query = "*";
        }
        json_t *sp = json_pack("{s:s, s:s}", "region", r, "mode", m);
        json_t *np = json_pack("{s:i}", "skill", skill);
        kz_mm_member_t mem = {0};
        snprintf(mem.sid, sizeof mem.sid, "s-%u", (unsigned)i);
        snprintf(mem.uid, sizeof mem.uid, "u-%u", (unsigned)i);
        snprintf(mem.username, sizeof mem.username, "user%d", i);
        kz_mm_spec_t spec = {.query = query, .query_len = strlen(query), .min_count = min, .max_count = max,
                             .count_multiple = mult, .string_properties = sp, .numeric_properties = np,
                             .members = &mem, .nmembers = 1};
        char id[37];
        if (kz_mm_add(pool, &spec, kz_now_ms(), id) != KZ_MM_OK) {
            fprintf(stderr, "add failed\n");
            exit(1);
        }
        json_decref(sp);
        json_decref(np);
    }
}

int main(int argc, char **argv)
{
    const char *scenario = "region";
    int passes = 2;
    int ns[16], nn = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            scenario = argv[++i];
        else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            passes = atoi(argv[++i]);
        else if (nn < 16)
            ns[nn++] = atoi(argv[i]);
    }
    if (!nn) {
        ns[0] = 1000;
        ns[1] = 10000;
        ns[2] = 100000;
        nn = 3;
    }
    printf("scenario %s\n", scenario);
    printf("%8s %5s %9s %8s %9s %9s %9s %9s %9s %9s\n", "tickets", "pass", "in pool", "groups", "matched", "snap ms",
           "index ms", "search ms", "commit ms", "total ms");
    for (int k = 0; k < nn; k++) {
        kz_mm_pool_t *pool = kz_mm_pool_new(3, 2);
        uint64_t t0 = kz_mono_ns();
        fill(pool, scenario, ns[k]);
        double add_ms = (double)(kz_mono_ns() - t0) / 1e6;
        for (int p = 0; p < passes; p++) {
            kz_mm_stats_t st;
            kz_mm_process(pool, NULL, NULL, &st);
            printf("%8d %5d %9d %8d %9d %9.2f %9.2f %9.2f %9.2f %9.2f\n", ns[k], p + 1, st.tickets, st.groups,
                   st.matched, st.snapshot_ms, st.index_ms, st.match_ms, st.commit_ms, st.total_ms);
        }
        printf("%8d  adds: %.2f ms (%.2f us per ticket)\n", ns[k], add_ms, add_ms * 1000 / ns[k]);
        kz_mm_pool_free(pool);
    }
    return 0;
}
