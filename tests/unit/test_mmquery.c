/* Unit tests for realtime/mmquery: the matchmaker's query language. */
#include "realtime/mmquery.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static json_t *doc;

static void setup(void)
{
    doc = json_pack("{s:{s:s, s:i, s:s, s:s, s:b, s:i, s:f, s:s, s:s, s:s}}", "properties", "region", "eu", "skill",
                    150, "mode", "ranked", "name", "two words", "flag", 1, "neg", -5, "ratio", 0.5, "code", "42",
                    "Case", "Upper", "odd", "a:b");
    cr_assert_not_null(doc);
}

static void teardown(void)
{
    json_decref(doc);
}

/* Parses q (must succeed) and evaluates it against doc. */
static bool m(const char *q)
{
    kz_mmq_t *p;
    char err[256] = "";
    int rc = kz_mmq_parse(q, strlen(q), &p, err, sizeof err);
    cr_assert_eq(rc, 0, "query '%s' should parse: %s", q, err);
    bool r = kz_mmq_eval(p, kz_mmq_json_lookup, doc, NULL);
    kz_mmq_free(p);
    return r;
}

static int score(const char *q)
{
    kz_mmq_t *p;
    cr_assert_eq(kz_mmq_parse(q, strlen(q), &p, NULL, 0), 0);
    int s = -1;
    kz_mmq_eval(p, kz_mmq_json_lookup, doc, &s);
    kz_mmq_free(p);
    return s;
}

/* Parse must fail; returns the message. */
static void bad(const char *q, const char *needle)
{
    kz_mmq_t *p = (kz_mmq_t *)1;
    char err[256] = "";
    int rc = kz_mmq_parse(q, strlen(q), &p, err, sizeof err);
    cr_assert_eq(rc, -1, "query '%s' should not parse", q);
    cr_assert_null(p);
    if (needle) cr_assert(strstr(err, needle), "error for '%s' was '%s', expected '%s'", q, err, needle);
}

TestSuite(mmquery, .init = setup, .fini = teardown);

Test(mmquery, match_all)
{
    cr_assert(m("*"));
    cr_assert(m("+*"));
    cr_assert(m("  *  "));
    cr_assert_not(m("-*"));
}

Test(mmquery, empty_matches_nothing)
{
    cr_assert_not(m(""));
    cr_assert_not(m("   \t\n"));
}

Test(mmquery, terms_are_exact)
{
    cr_assert(m("properties.region:eu"));
    cr_assert(m("+properties.region:eu"));
    cr_assert_not(m("+properties.region:EU")); /* case-sensitive */
    cr_assert_not(m("+properties.region:e"));
    cr_assert_not(m("+properties.region:eur"));
    cr_assert_not(m("+properties.missing:eu"));
    cr_assert(m("properties.Case:Upper"));
    cr_assert_not(m("properties.case:Upper"));
    cr_assert_not(m("+region:eu")); /* the field path is full */
}

Test(mmquery, must_should_not)
{
    cr_assert(m("+properties.region:eu +properties.mode:ranked"));
    cr_assert_not(m("+properties.region:eu +properties.mode:casual"));
    cr_assert(m("+properties.region:eu -properties.mode:casual"));
    cr_assert_not(m("+properties.region:eu -properties.mode:ranked"));
    /* only SHOULD: at least one */
    cr_assert(m("properties.region:us properties.region:eu"));
    cr_assert_not(m("properties.region:us properties.region:asia"));
    /* SHOULD next to MUST: scores only */
    cr_assert(m("+properties.region:eu properties.mode:casual"));
    /* only MUST NOT: everything else */
    cr_assert(m("-properties.region:us"));
    cr_assert_not(m("-properties.region:eu"));
    /* SHOULD with MUST NOT: the SHOULD must match */
    cr_assert_not(m("-properties.region:us properties.mode:casual"));
    cr_assert(m("-properties.region:us properties.mode:ranked"));
}

Test(mmquery, scores)
{
    cr_assert_eq(score("+properties.region:eu properties.mode:ranked properties.mode:casual"), 2);
    cr_assert_eq(score("+properties.region:eu"), 1);
    cr_assert_eq(score("properties.region:eu properties.mode:ranked properties.flag:T"), 3);
    cr_assert_eq(score("+properties.region:us"), 0);
}

Test(mmquery, ranges)
{
    cr_assert(m("+properties.skill:>=100 +properties.skill:<=200"));
    cr_assert(m("+properties.skill:>=150 +properties.skill:<=150"));
    cr_assert_not(m("+properties.skill:>150"));
    cr_assert_not(m("+properties.skill:<150"));
    cr_assert(m("+properties.skill:>149.5"));
    cr_assert(m("+properties.skill:<150.001"));
    cr_assert_not(m("+properties.skill:>=200"));
    cr_assert(m("+properties.neg:<0 +properties.neg:>=-5"));
    cr_assert_not(m("+properties.neg:>-5"));
    cr_assert(m("+properties.ratio:>0.25 +properties.ratio:<0.75"));
    /* a range never matches a string value, even a numeric-looking one */
    cr_assert_not(m("+properties.code:>=0"));
    cr_assert_not(m("+properties.region:>=0"));
    cr_assert_not(m("+properties.missing:>=0"));
    cr_assert(m("-properties.skill:<100"));
}

Test(mmquery, bare_numbers)
{
    cr_assert(m("+properties.skill:150"));
    cr_assert(m("+properties.skill:150.0"));
    cr_assert_not(m("+properties.skill:151"));
    cr_assert(m("+properties.neg:-5"));
    cr_assert(m("+properties.ratio:0.5"));
    cr_assert(m("+properties.code:42")); /* the string "42" */
    cr_assert_not(m("+properties.code:42.0"));
}

Test(mmquery, phrases_and_escapes)
{
    cr_assert(m("+properties.name:\"two words\""));
    cr_assert_not(m("+properties.name:\"two\""));
    cr_assert_not(m("+properties.name:two"));
    cr_assert(m("+properties.region:\"eu\""));
    cr_assert(m("+properties.odd:a\\:b"));
    cr_assert(m("+properties.odd:\"a:b\""));
    cr_assert(m("+properties.name:two\\ words"));
    /* an escaped number is a plain term */
    cr_assert(m("+properties.code:\\42"));
    cr_assert_not(m("+properties.skill:\\150"));
}

Test(mmquery, booleans)
{
    cr_assert(m("+properties.flag:T"));
    cr_assert_not(m("+properties.flag:F"));
    cr_assert(m("-properties.flag:F"));
    cr_assert_not(m("+properties.flag:true"));
}

Test(mmquery, parsed_form)
{
    kz_mmq_t *q;
    const char *t = "+properties.region:eu -properties.mode:casual properties.skill:>=10 properties.x:5 *";
    cr_assert_eq(kz_mmq_parse(t, strlen(t), &q, NULL, 0), 0);
    cr_assert_eq(q->n, 5);
    cr_assert_eq(q->nmust, 1);
    cr_assert_eq(q->nnot, 1);
    cr_assert_eq(q->nshould, 3);
    cr_assert_eq(q->c[0].occur, KZ_MMQ_MUST);
    cr_assert_eq(q->c[0].kind, KZ_MMQ_TERM);
    cr_assert_str_eq(q->c[0].field, "properties.region");
    cr_assert_str_eq(q->c[0].str, "eu");
    cr_assert_eq(q->c[1].occur, KZ_MMQ_MUST_NOT);
    cr_assert_eq(q->c[2].kind, KZ_MMQ_RANGE);
    cr_assert_eq(q->c[2].lo, 10);
    cr_assert(q->c[2].lo_incl);
    cr_assert(isinf(q->c[2].hi));
    cr_assert_eq(q->c[3].kind, KZ_MMQ_NUM);
    cr_assert_eq(q->c[3].num, 5);
    cr_assert_eq(q->c[4].kind, KZ_MMQ_ALL);
    kz_mmq_free(q);
}

Test(mmquery, label_documents)
{
    json_t *d = json_pack("{s:{s:s, s:{s:i}, s:b}}", "label", "mode", "duel", "meta", "level", 3, "open", 0);
    kz_mmq_t *q;
    const char *t = "+label.mode:duel +label.meta.level:>=2 +label.open:F";
    cr_assert_eq(kz_mmq_parse(t, strlen(t), &q, NULL, 0), 0);
    cr_assert(kz_mmq_eval(q, kz_mmq_json_lookup, d, NULL));
    kz_mmq_free(q);
    t = "+label.mode.x:duel";
    cr_assert_eq(kz_mmq_parse(t, strlen(t), &q, NULL, 0), 0);
    cr_assert_not(kz_mmq_eval(q, kz_mmq_json_lookup, d, NULL));
    kz_mmq_free(q);
    t = "+label.meta:3";
    cr_assert_eq(kz_mmq_parse(t, strlen(t), &q, NULL, 0), 0);
    cr_assert_not(kz_mmq_eval(q, kz_mmq_json_lookup, d, NULL));
    kz_mmq_free(q);
    json_decref(d);
}

Test(mmquery, bad_queries)
{
    bad("region", "field");
    bad("+", "without a clause");
    bad("-", "without a clause");
    bad("+ properties.region:eu", "without a clause");
    bad(":eu", "empty field");
    bad("properties.region:", "empty value");
    bad("properties.region: eu", "empty value");
    bad("properties.region:e*", "wildcard");
    bad("properties.region:e?", "wildcard");
    bad("properties.region:eu~", "fuzzy");
    bad("properties.region:eu~2", "fuzzy");
    bad("properties.region:eu^2", "boost");
    bad("properties.region:\"eu\"^2", "boost");
    bad("properties.region:\"eu\"~2", "fuzzy");
    bad("properties.region:/e.*/", NULL);
    bad("properties.region:/eu/", "regular expression");
    bad("properties.region:\"eu", "unterminated");
    bad("properties.skill:>=", "number");
    bad("properties.skill:>=abc", "number");
    bad("properties.skill:>1e5", "number");
    bad("properties.skill:>=\"2024-01-01T00:00:00Z\"", "date");
    bad("properties.a:b:c", "':'");
    bad("properties.a:b\"c", NULL);
    bad("**", "wildcard");
    bad("+-properties.region:eu", NULL);
    bad("prop\"erties:eu", NULL);
    bad("properties.region:eu properties.mode", "field");
}

Test(mmquery, bounds)
{
    char big[KZ_MMQ_MAX_LEN + 2];
    memset(big, ' ', sizeof big);
    big[0] = '*';
    kz_mmq_t *q;
    cr_assert_eq(kz_mmq_parse(big, KZ_MMQ_MAX_LEN, &q, NULL, 0), 0);
    kz_mmq_free(q);
    cr_assert_eq(kz_mmq_parse(big, KZ_MMQ_MAX_LEN + 1, &q, NULL, 0), -1);

    char many[4096] = "";
    for (int i = 0; i < KZ_MMQ_MAX_CLAUSES; i++) strcat(many, "a:b ");
    cr_assert_eq(kz_mmq_parse(many, strlen(many), &q, NULL, 0), 0);
    cr_assert_eq(q->n, KZ_MMQ_MAX_CLAUSES);
    kz_mmq_free(q);
    strcat(many, "a:b");
    cr_assert_eq(kz_mmq_parse(many, strlen(many), &q, NULL, 0), -1);

    const char nul[] = "a:b\0c";
    cr_assert_eq(kz_mmq_parse(nul, sizeof nul - 1, &q, NULL, 0), -1);
}
