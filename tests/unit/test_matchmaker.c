/* Unit tests for the matchmaker's pool and grouping (realtime/matchmaker):
 * single-threaded, with a fake clock, no server. */
#include "realtime/matchmaker.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

static kz_mm_pool_t *pool;
static int64_t now = 1700000000000;

/* Groups of the last pass, as sorted lists of ticket labels. */
#define MAXG 64
static int ngroups;
static char groups[MAXG][256];
static int gsize[MAXG];

/* Label of each ticket id (the tests name tickets). */
static struct {
    char id[37];
    char label[16];
} names[4096];
static int nnames;

static const char *label_of(const char *id)
{
    for (int i = 0; i < nnames; i++)
        if (strcmp(names[i].id, id) == 0) return names[i].label;
    return "?";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void collect(kz_mm_group_t *g, int n, void *arg)
{
    ngroups = 0;
    for (int i = 0; i < n && i < MAXG; i++) {
        const char *ls[64];
        int players = 0;
        for (int k = 0; k < g[i].n && k < 64; k++) {
            ls[k] = label_of(g[i].t[k]->id);
            players += g[i].t[k]->nmembers;
        }
        qsort(ls, (size_t)(g[i].n < 64 ? g[i].n : 64), sizeof *ls, cmp_str);
        groups[i][0] = '\0';
        for (int k = 0; k < g[i].n && k < 64; k++) {
            if (k) strcat(groups[i], ",");
            strcat(groups[i], ls[k]);
        }
        gsize[i] = players;
        ngroups++;
    }
    kz_mm_groups_free(g, n);
}

static void process(void)
{
    now += 1000;
    kz_mm_process(pool, collect, NULL, NULL);
}

static bool has_group(const char *g)
{
    for (int i = 0; i < ngroups; i++)
        if (strcmp(groups[i], g) == 0) return true;
    return false;
}

static kz_mm_member_t member(const char *sid)
{
    kz_mm_member_t m = {0};
    snprintf(m.sid, sizeof m.sid, "%.30s", sid);
    snprintf(m.uid, sizeof m.uid, "u-%.30s", sid);
    snprintf(m.username, sizeof m.username, "name-%.28s", sid);
    return m;
}

/* Adds a ticket named label for session sid; props are JSON objects (or NULL). */
static int add_full(const char *label, const char *sid, const char *query, int min, int max, int mult,
                    const char *sprops, const char *nprops, const char *party, int nmembers)
{
    json_t *sp = sprops ? json_loads(sprops, 0, NULL) : NULL;
    json_t *np = nprops ? json_loads(nprops, 0, NULL) : NULL;
    kz_mm_member_t ms[8];
    for (int i = 0; i < nmembers; i++) {
        char s[40];
        snprintf(s, sizeof s, "%s%s", sid, i ? (char[]){(char)('0' + i), 0} : "");
        ms[i] = member(s);
    }
    kz_mm_spec_t spec = {.query = query, .query_len = query ? strlen(query) : 0, .min_count = min, .max_count = max,
                         .count_multiple = mult, .string_properties = sp, .numeric_properties = np,
                         .party_id = party, .members = ms, .nmembers = nmembers};
    char id[37];
    int rc = kz_mm_add(pool, &spec, now, id);
    json_decref(sp);
    json_decref(np);
    if (rc == KZ_MM_OK) {
        memcpy(names[nnames].id, id, 37);
        snprintf(names[nnames].label, sizeof names[nnames].label, "%s", label);
        nnames++;
    }
    now += 1;
    return rc;
}

static int add(const char *label, const char *sid, const char *query, int min, int max, const char *sprops,
               const char *nprops)
{
    return add_full(label, sid, query, min, max, 1, sprops, nprops, NULL, 1);
}

static const char *id_of(const char *label)
{
    for (int i = nnames - 1; i >= 0; i--)
        if (strcmp(names[i].label, label) == 0) return names[i].id;
    return "";
}

static void setup(void)
{
    pool = kz_mm_pool_new(3, 2);
    nnames = 0;
    ngroups = 0;
}

static void teardown(void)
{
    kz_mm_pool_free(pool);
}

TestSuite(matchmaker, .init = setup, .fini = teardown);

Test(matchmaker, pairs_by_property)
{
    const char *q_eu = "+properties.region:eu", *q_us = "+properties.region:us";
    cr_assert_eq(add("a", "s1", q_eu, 2, 2, "{\"region\":\"eu\"}", NULL), KZ_MM_OK);
    cr_assert_eq(add("c", "s3", q_us, 2, 2, "{\"region\":\"us\"}", NULL), KZ_MM_OK);
    cr_assert_eq(add("b", "s2", q_eu, 2, 2, "{\"region\":\"eu\"}", NULL), KZ_MM_OK);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,b"));
    cr_assert_eq(gsize[0], 2);
    cr_assert_eq(kz_mm_count(pool), 1);
    /* c stays; a newcomer in the us pairs with it */
    cr_assert_eq(add("d", "s4", q_us, 2, 2, "{\"region\":\"us\"}", NULL), KZ_MM_OK);
    process();
    cr_assert(has_group("c,d"));
    cr_assert_eq(kz_mm_count(pool), 0);
}

Test(matchmaker, both_queries_must_accept)
{
    /* a accepts anyone; b wants the us: no match either way */
    add("a", "s1", "*", 2, 2, "{\"region\":\"eu\"}", NULL);
    add("b", "s2", "+properties.region:us", 2, 2, "{\"region\":\"us\"}", NULL);
    process();
    process();
    process();
    cr_assert_eq(ngroups, 0);
    cr_assert_eq(kz_mm_count(pool), 2);
}

Test(matchmaker, should_clauses_rank_candidates)
{
    /* the searcher must have eu players and prefers mode ranked, then
     * the map dust: the best-scoring candidate wins over the oldest */
    add("x", "s1", "+properties.region:eu properties.mode:ranked properties.map:dust", 2, 2,
        "{\"region\":\"eu\",\"mode\":\"ranked\",\"map\":\"dust\"}", NULL);
    add("old", "s2", "+properties.region:eu", 2, 2, "{\"region\":\"eu\",\"mode\":\"casual\"}", NULL);
    add("one", "s3", "+properties.region:eu", 2, 2, "{\"region\":\"eu\",\"mode\":\"ranked\"}", NULL);
    add("two", "s4", "+properties.region:eu", 2, 2,
        "{\"region\":\"eu\",\"mode\":\"ranked\",\"map\":\"dust\"}", NULL);
    process();
    cr_assert_eq(ngroups, 2);
    cr_assert(has_group("two,x"), "got %s / %s", groups[0], groups[1]);
    cr_assert(has_group("old,one"));
}

Test(matchmaker, should_clauses_alone_tie_break_by_age)
{
    /* only SHOULD clauses: at least one must match; more matches first */
    add("x", "s1", "properties.mode:ranked properties.map:dust", 3, 3, NULL, NULL);
    add("none", "s2", "*", 3, 3, "{\"mode\":\"casual\"}", NULL);
    add("a", "s3", "*", 3, 3, "{\"map\":\"dust\"}", NULL);
    add("b", "s4", "*", 3, 3, "{\"mode\":\"ranked\"}", NULL);
    add("c", "s5", "*", 3, 3, "{\"mode\":\"ranked\",\"map\":\"dust\"}", NULL);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,c,x"), "got %s", groups[0]); /* c scores 2; a is older than b */
    cr_assert_eq(kz_mm_count(pool), 2);
}

Test(matchmaker, rev_precision_off_only_the_searcher_decides)
{
    kz_mm_pool_set_rev_precision(pool, false);
    /* a accepts anyone; b wants the us: a's search takes b */
    add("a", "s1", "*", 2, 2, "{\"region\":\"eu\"}", NULL);
    add("b", "s2", "+properties.region:us", 2, 2, "{\"region\":\"us\"}", NULL);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,b"));
    /* but a searcher's own query still decides for it */
    add("c", "s3", "+properties.region:us", 2, 2, "{\"region\":\"eu\"}", NULL);
    add("d", "s4", "+properties.region:us", 2, 2, "{\"region\":\"eu\"}", NULL);
    process();
    process();
    cr_assert_eq(ngroups, 0);
    cr_assert_eq(kz_mm_count(pool), 2);
}

Test(matchmaker, pool_stats)
{
    kz_mm_pool_stats_t st;
    kz_mm_pool_stats(pool, &st);
    cr_assert_eq(st.tickets, 0);
    cr_assert_eq(st.oldest_create_ms, 0);
    cr_assert_eq(st.ncompletions, 0);
    int64_t t0 = now;
    add("a", "s1", "*", 2, 2, NULL, NULL);
    add("b", "s2", "*", 2, 2, NULL, NULL);
    add("c", "s3", "+properties.never:x", 2, 2, NULL, NULL);
    kz_mm_pool_stats(pool, &st);
    cr_assert_eq(st.tickets, 3);
    cr_assert_eq(st.oldest_create_ms, t0);
    process();
    kz_mm_pool_stats(pool, &st);
    cr_assert_eq(st.tickets, 1);
    cr_assert_eq(st.oldest_create_ms, t0 + 2); /* c */
    cr_assert_eq(st.ncompletions, 2);
    /* newest first: both completed in the same pass; creation times a, b */
    int64_t c0 = st.completions[0].create_ms, c1 = st.completions[1].create_ms;
    cr_assert((c0 == t0 && c1 == t0 + 1) || (c0 == t0 + 1 && c1 == t0));
    cr_assert_gt(st.completions[0].complete_ms, 1700000000000);
    cr_assert_eq(kz_mm_matched_total(pool), 2);
    /* the ring keeps the last KZ_MM_COMPLETIONS */
    for (int i = 0; i < 120; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "r%d", i);
        add("r", sid, "-properties.never:x", 2, 2, NULL, NULL);
    }
    process();
    kz_mm_pool_stats(pool, &st);
    cr_assert_eq(st.ncompletions, KZ_MM_COMPLETIONS);
    cr_assert_eq(kz_mm_matched_total(pool), 122);
    cr_assert_eq(st.tickets, 1);
}

Test(matchmaker, must_not)
{
    add("a", "s1", "-properties.mode:casual", 2, 2, "{\"mode\":\"ranked\"}", NULL);
    add("b", "s2", "*", 2, 2, "{\"mode\":\"casual\"}", NULL);
    process();
    cr_assert_eq(ngroups, 0);
    add("c", "s3", "*", 2, 2, "{\"mode\":\"ranked\"}", NULL);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,c"));
}

Test(matchmaker, same_session_never_together)
{
    add("a", "s1", "*", 2, 2, NULL, NULL);
    add("b", "s1", "*", 2, 2, NULL, NULL);
    process();
    process();
    cr_assert_eq(ngroups, 0);
    add("c", "s2", "*", 2, 2, NULL, NULL);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,c")); /* the oldest */
}

Test(matchmaker, numeric_ranges)
{
    add("a", "s1", "+properties.skill:>=50 +properties.skill:<=150", 2, 2, NULL, "{\"skill\":100}");
    add("far", "s3", "+properties.skill:>=250", 2, 2, NULL, "{\"skill\":300}");
    add("b", "s2", "+properties.skill:>=100 +properties.skill:<=200", 2, 2, NULL, "{\"skill\":120}");
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,b"));
    /* a numeric range never matches a string property */
    add("c", "s4", "+properties.skill:>=250", 2, 2, "{\"skill\":\"280\"}", NULL);
    process();
    cr_assert_eq(ngroups, 0);
    add("d", "s5", "+properties.skill:>=250", 2, 2, NULL, "{\"skill\":280}");
    process();
    cr_assert(has_group("d,far"));
}

Test(matchmaker, oldest_first)
{
    add("a", "s1", "*", 2, 2, NULL, NULL);
    add("b", "s2", "*", 2, 2, NULL, NULL);
    add("c", "s3", "*", 2, 2, NULL, NULL);
    add("d", "s4", "*", 2, 2, NULL, NULL);
    add("e", "s5", "*", 2, 2, NULL, NULL);
    process();
    cr_assert_eq(ngroups, 2);
    cr_assert(has_group("a,b"));
    cr_assert(has_group("c,d"));
    cr_assert_eq(kz_mm_count(pool), 1);
}

Test(matchmaker, count_multiple_four)
{
    for (int i = 0; i < 4; i++) {
        char l[8], s[8];
        snprintf(l, sizeof l, "p%d", i);
        snprintf(s, sizeof s, "s%d", i);
        cr_assert_eq(add_full(l, s, "*", 2, 4, 2, NULL, NULL, NULL, 1), KZ_MM_OK);
    }
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("p0,p1,p2,p3"));
    cr_assert_eq(gsize[0], 4);
}

Test(matchmaker, count_multiple_settles_in_last_interval)
{
    for (int i = 0; i < 3; i++) {
        char l[8], s[8];
        snprintf(l, sizeof l, "p%d", i);
        snprintf(s, sizeof s, "s%d", i);
        add_full(l, s, "*", 2, 4, 2, NULL, NULL, NULL, 1);
    }
    process(); /* first interval: waits for 4 */
    cr_assert_eq(ngroups, 0);
    process(); /* last interval: 3 is not a multiple of 2 -> 2 */
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("p0,p1"));
    cr_assert_eq(kz_mm_count(pool), 1);
}

Test(matchmaker, max_intervals_widening)
{
    add("a", "s1", "*", 2, 4, NULL, NULL);
    add("b", "s2", "*", 2, 4, NULL, NULL);
    add("c", "s3", "*", 2, 4, NULL, NULL);
    process();
    cr_assert_eq(ngroups, 0); /* 3 < max 4: keep waiting */
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,b,c"));
    cr_assert_eq(gsize[0], 3);
}

Test(matchmaker, min_equals_max_at_once)
{
    add("a", "s1", "*", 3, 3, NULL, NULL);
    add("b", "s2", "*", 3, 3, NULL, NULL);
    process();
    cr_assert_eq(ngroups, 0);
    add("c", "s3", "*", 3, 3, NULL, NULL);
    process();
    cr_assert(has_group("a,b,c"));
}

Test(matchmaker, incompatible_counts)
{
    add("a", "s1", "*", 2, 2, NULL, NULL);
    add("b", "s2", "*", 3, 3, NULL, NULL);
    for (int i = 0; i < 4; i++) process();
    cr_assert_eq(ngroups, 0);
    cr_assert_eq(kz_mm_count(pool), 2);
}

Test(matchmaker, exhausted_tickets_are_still_found)
{
    add("a", "s1", "*", 2, 2, NULL, NULL);
    process();
    process();
    process(); /* a no longer searches */
    cr_assert_eq(ngroups, 0);
    add("b", "s2", "*", 2, 2, NULL, NULL);
    process();
    cr_assert(has_group("a,b"));
}

Test(matchmaker, tickets_per_session)
{
    cr_assert_eq(add("a1", "s1", "*", 2, 2, NULL, NULL), KZ_MM_OK);
    cr_assert_eq(add("a2", "s1", "*", 2, 2, NULL, NULL), KZ_MM_OK);
    cr_assert_eq(add("a3", "s1", "*", 2, 2, NULL, NULL), KZ_MM_OK);
    cr_assert_eq(add("a4", "s1", "*", 2, 2, NULL, NULL), KZ_MM_ETOO_MANY);
    cr_assert_eq(add("b1", "s2", "*", 2, 2, NULL, NULL), KZ_MM_OK);
    cr_assert_eq(kz_mm_remove(pool, id_of("a2"), "s1", NULL), KZ_MM_OK);
    cr_assert_eq(add("a4", "s1", "*", 2, 2, NULL, NULL), KZ_MM_OK);
    cr_assert_eq(kz_mm_count(pool), 4);
}

Test(matchmaker, removal)
{
    add("a", "s1", "*", 2, 2, NULL, NULL);
    add("b", "s2", "*", 2, 2, NULL, NULL);
    /* only the owner removes */
    cr_assert_eq(kz_mm_remove(pool, id_of("a"), "s2", NULL), KZ_MM_ENOT_FOUND);
    cr_assert_eq(kz_mm_remove(pool, id_of("a"), NULL, "party"), KZ_MM_ENOT_FOUND);
    cr_assert_eq(kz_mm_remove(pool, "nope", "s1", NULL), KZ_MM_ENOT_FOUND);
    cr_assert_eq(kz_mm_remove(pool, id_of("a"), "s1", NULL), KZ_MM_OK);
    cr_assert_eq(kz_mm_remove(pool, id_of("a"), "s1", NULL), KZ_MM_ENOT_FOUND);
    process();
    cr_assert_eq(ngroups, 0);
    add("c", "s3", "*", 2, 2, NULL, NULL);
    add("c2", "s3", "*", 2, 2, NULL, NULL);
    cr_assert_eq(kz_mm_remove_session(pool, "s3"), 2);
    cr_assert_eq(kz_mm_remove_session(pool, "s3"), 0);
    cr_assert_eq(kz_mm_count(pool), 1);
}

Test(matchmaker, parties)
{
    /* a party of 2 (its members s1, s11) with two solo players: a group of 4 players */
    cr_assert_eq(add_full("party", "s1", "*", 4, 4, 1, NULL, NULL, "p1.node", 2), KZ_MM_OK);
    add_full("x", "s2", "*", 4, 4, 1, NULL, NULL, NULL, 1);
    process();
    cr_assert_eq(ngroups, 0);
    add_full("y", "s3", "*", 4, 4, 1, NULL, NULL, NULL, 1);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("party,x,y"));
    cr_assert_eq(gsize[0], 4);

    /* a party's two tickets never match each other; remove_party drops them */
    add_full("pa", "s5", "*", 2, 4, 1, NULL, NULL, "p2.node", 2);
    add_full("pb", "s5", "*", 2, 4, 1, NULL, NULL, "p2.node", 2);
    process();
    process();
    cr_assert_eq(ngroups, 0);
    cr_assert_eq(kz_mm_remove(pool, id_of("pa"), "s5", NULL), KZ_MM_ENOT_FOUND);
    cr_assert_eq(kz_mm_remove_party(pool, "p2.node"), 2);
    cr_assert_eq(kz_mm_count(pool), 0);

    /* a member of a party ticket is not matched with its own solo ticket */
    add_full("pc", "s7", "*", 3, 3, 1, NULL, NULL, "p3.node", 2);
    add_full("solo", "s71", "*", 3, 3, 1, NULL, NULL, NULL, 1);
    process();
    cr_assert_eq(ngroups, 0);
    add_full("other", "s8", "*", 3, 3, 1, NULL, NULL, NULL, 1);
    process();
    cr_assert(has_group("other,pc"));
}

Test(matchmaker, party_too_big)
{
    cr_assert_eq(add_full("p", "s1", "*", 2, 2, 1, NULL, NULL, "p.node", 3), KZ_MM_EINVALID);
}

Test(matchmaker, bad_specs)
{
    cr_assert_eq(add("a", "s1", "*", 1, 2, NULL, NULL), KZ_MM_EINVALID);
    cr_assert_eq(add("a", "s1", "*", 3, 2, NULL, NULL), KZ_MM_EINVALID);
    cr_assert_eq(add_full("a", "s1", "*", 2, 5, 2, NULL, NULL, NULL, 1), KZ_MM_EINVALID);
    cr_assert_eq(add_full("a", "s1", "*", 3, 4, 2, NULL, NULL, NULL, 1), KZ_MM_EINVALID);
    cr_assert_eq(add_full("a", "s1", "*", 2, 4, 0, NULL, NULL, NULL, 1), KZ_MM_EINVALID);
    cr_assert_eq(add("a", "s1", "properties.region:e*", 2, 2, NULL, NULL), KZ_MM_EQUERY);
    cr_assert_eq(add("a", "s1", "region", 2, 2, NULL, NULL), KZ_MM_EQUERY);
    cr_assert_eq(kz_mm_count(pool), 0);
    /* an empty query is "*" */
    cr_assert_eq(add("a", "s1", "", 2, 2, NULL, NULL), KZ_MM_OK);
    cr_assert_eq(add("b", "s2", "  ", 2, 2, NULL, NULL), KZ_MM_OK);
    process();
    cr_assert(has_group("a,b"));
}

Test(matchmaker, ticket_fields)
{
    add("a", "s1", "*", 2, 3, "{\"region\":\"eu\"}", "{\"skill\":12.5,\"region\":7}");
    const char *t = "+properties.region:eu +properties.region:7 +properties.skill:>12 +min_count:2 +max_count:3";
    add("b", "s2", t, 2, 2, NULL, NULL);
    add("c", "s3", "+properties.skill:>13", 2, 2, NULL, NULL);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,b"));
}

Test(matchmaker, contradictory_query_matches_nothing)
{
    add("a", "s1", "+properties.r:x +properties.r:y", 2, 2, "{\"r\":\"x\"}", NULL);
    add("b", "s2", "*", 2, 2, "{\"r\":\"x\"}", NULL);
    process();
    process();
    cr_assert_eq(ngroups, 0);
    /* the same term twice is just that term */
    add("c", "s3", "+properties.r:x +properties.r:x", 2, 2, "{\"r\":\"x\"}", NULL);
    process();
    cr_assert(has_group("b,c"));
}

Test(matchmaker, open_searcher_finds_who_accepts_it)
{
    /* a and b want the other region; the `*` ticket c (eu) is only
     * accepted by b */
    add("a", "s1", "+properties.region:us", 2, 2, "{\"region\":\"asia\"}", NULL);
    add("b", "s2", "+properties.region:eu", 2, 2, "{\"region\":\"asia\"}", NULL);
    add("c", "s3", "*", 2, 2, "{\"region\":\"eu\"}", NULL);
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("b,c"));
}

Test(matchmaker, bare_number_terms)
{
    add("a", "s1", "+properties.level:5", 2, 2, NULL, "{\"level\":5}");
    add("b", "s2", "+properties.level:5", 2, 2, "{\"level\":\"5\"}", NULL);
    add("c", "s3", "+properties.level:5", 2, 2, NULL, "{\"level\":6}");
    process();
    cr_assert_eq(ngroups, 1);
    cr_assert(has_group("a,b"));
}

Test(matchmaker, many_signatures)
{
    /* more distinct MUST-field sets than the index keeps signatures for:
     * the rest are searched without one, with the same results */
    char q[64], sp[64], l[16], sid[16];
    for (int k = 0; k < 50; k++) {
        snprintf(q, sizeof q, "+properties.f%d:v", k);
        snprintf(sp, sizeof sp, "{\"f%d\":\"v\"}", k);
        for (int x = 0; x < 2; x++) {
            snprintf(l, sizeof l, "%c%d", x ? 'b' : 'a', k);
            snprintf(sid, sizeof sid, "s%d-%d", k, x);
            cr_assert_eq(add(l, sid, q, 2, 2, sp, NULL), KZ_MM_OK);
        }
    }
    process();
    cr_assert_eq(ngroups, 50);
    for (int k = 0; k < 50; k++) {
        char g[32];
        snprintf(g, sizeof g, "a%d,b%d", k, k);
        cr_assert(has_group(g), "missing %s", g);
    }
}

Test(matchmaker, tokens)
{
    char *tok = kz_mm_token_sign("abc.", 1000, "key");
    char mid[64];
    cr_assert(kz_mm_token_verify(tok, strlen(tok), "key", 999, mid, sizeof mid));
    cr_assert_str_eq(mid, "abc.");
    cr_assert_not(kz_mm_token_verify(tok, strlen(tok), "key", 1000, mid, sizeof mid)); /* expired */
    cr_assert_not(kz_mm_token_verify(tok, strlen(tok), "other", 999, mid, sizeof mid));
    cr_assert_not(kz_mm_token_verify(tok, strlen(tok) - 1, "key", 999, mid, sizeof mid));
    cr_assert_not(kz_mm_token_verify(tok, strlen(tok), "key", 999, mid, 4)); /* no room */
    char *bad = kz_strdup(tok);
    bad[strchr(bad, '.') - bad + 3] ^= 1; /* payload byte */
    cr_assert_not(kz_mm_token_verify(bad, strlen(bad), "key", 999, mid, sizeof mid));
    cr_assert_not(kz_mm_token_verify("a.b", 3, "key", 999, mid, sizeof mid));
    cr_assert_not(kz_mm_token_verify("", 0, "key", 999, mid, sizeof mid));
    cr_assert_not(kz_mm_token_verify("a.b.c.d", 7, "key", 999, mid, sizeof mid));
    kz_free(bad);
    kz_free(tok);
}

/* Many random tickets: every group formed respects every rule. */
static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static int checked;
static void check_groups(kz_mm_group_t *g, int n, void *arg)
{
    for (int i = 0; i < n; i++) {
        int size = 0;
        for (int k = 0; k < g[i].n; k++) size += g[i].t[k]->nmembers;
        for (int k = 0; k < g[i].n; k++) {
            const kz_mm_ticket_t *a = g[i].t[k];
            cr_assert(size >= a->min_count && size <= a->max_count, "size %d outside %d..%d", size, a->min_count,
                      a->max_count);
            cr_assert_eq(size % a->count_multiple, 0);
            for (int m = 0; m < g[i].n; m++) {
                if (m == k) continue;
                const kz_mm_ticket_t *b = g[i].t[m];
                cr_assert(kz_mmq_eval(a->query, kz_mm_ticket_lookup, b, NULL));
                cr_assert_neq(strcmp(a->members[0].sid, b->members[0].sid), 0);
            }
        }
        checked++;
    }
    kz_mm_groups_free(g, n);
}

Test(matchmaker, random_pool_respects_rules)
{
    static const char *regions[] = {"eu", "us", "asia"};
    char q[256], sp[64], np[64], sid[16], label[16];
    for (int i = 0; i < 3000; i++) {
        const char *r = regions[rnd(3)];
        int skill = (int)rnd(1000);
        int min = 2 + (int)rnd(2), max = min + (int)rnd(3);
        snprintf(q, sizeof q, "+properties.region:%s +properties.skill:>=%d +properties.skill:<=%d", r, skill - 100,
                 skill + 100);
        snprintf(sp, sizeof sp, "{\"region\":\"%s\"}", r);
        snprintf(np, sizeof np, "{\"skill\":%d}", skill);
        snprintf(sid, sizeof sid, "s%u", rnd(2500));
        snprintf(label, sizeof label, "t%d", i);
        add(label, sid, rnd(4) == 0 ? "*" : q, min, max, sp, np);
    }
    int before = kz_mm_count(pool);
    checked = 0;
    kz_mm_stats_t st;
    for (int pass = 0; pass < 3; pass++) kz_mm_process(pool, check_groups, NULL, &st);
    cr_assert_gt(checked, 300);
    cr_assert_lt(kz_mm_count(pool), before);
}
