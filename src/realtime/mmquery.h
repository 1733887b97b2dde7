/* The matchmaker's query language: the part of Bluge's query-string syntax
 * (with Nakama's keyword analyzer) that matchmaker clients send.
 *
 *   query    := clause (whitespace clause)*
 *   clause   := ('+' | '-')? ( '*' | field ':' value )
 *   value    := word | '"' phrase '"' | ('>=' | '>' | '<=' | '<') number
 *
 * '+' is MUST, '-' MUST NOT, no prefix SHOULD. A word or phrase matches a
 * field whose string value is exactly it (case-sensitive); T and F also
 * match the booleans true and false (JSON documents). A word that is a
 * number also matches a numeric value equal to it. A comparison matches
 * numeric values only. A backslash escapes the next character in words and
 * phrases. `*` matches every document.
 *
 * A document matches when every MUST clause matches, no MUST NOT clause
 * does, and - when there are no MUST clauses - at least one SHOULD clause
 * does (a query of MUST NOT clauses only matches everything else). Next to
 * MUST clauses, SHOULD clauses only add to the score. A query without
 * clauses (empty text) matches nothing.
 *
 * Refused, as a parse error: a clause without a field (other than `*`),
 * regular expressions (/re/), wildcards (* or ? inside a word), fuzziness
 * (~N), boosts (^N), date ranges (a quoted comparison), an unescaped ':' in
 * a value, an empty field or value, more than KZ_MMQ_MAX_CLAUSES clauses or
 * KZ_MMQ_MAX_LEN bytes of text. */
#ifndef KZ_REALTIME_MMQUERY_H
#define KZ_REALTIME_MMQUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define KZ_MMQ_MAX_LEN 4096
#define KZ_MMQ_MAX_CLAUSES 64

typedef enum { KZ_MMQ_SHOULD = 0, KZ_MMQ_MUST = 1, KZ_MMQ_MUST_NOT = 2 } kz_mmq_occur_t;

typedef enum {
    KZ_MMQ_ALL,   /* `*` */
    KZ_MMQ_TERM,  /* string equality (and T/F booleans) */
    KZ_MMQ_NUM,   /* a bare number: string equality to its text, or numeric equality */
    KZ_MMQ_RANGE, /* numeric comparison */
} kz_mmq_kind_t;

typedef struct kz_mmq_clause {
    kz_mmq_occur_t occur;
    kz_mmq_kind_t kind;
    char *field;      /* owned; NULL for ALL */
    char *str;        /* owned: TERM/NUM value text (unescaped); NULL for RANGE/ALL */
    size_t len;       /* bytes of str */
    double num;       /* NUM: the value */
    double lo, hi;    /* RANGE: bounds (-inf/+inf when open) */
    bool lo_incl, hi_incl;
} kz_mmq_clause_t;

typedef struct kz_mmq {
    int n;
    int nmust, nshould, nnot;
    kz_mmq_clause_t *c; /* owned, n clauses in query order */
} kz_mmq_t;

/* A document field's value, as the lookup callback reports it. */
typedef enum { KZ_MMQ_V_NONE, KZ_MMQ_V_STR, KZ_MMQ_V_NUM, KZ_MMQ_V_BOOL } kz_mmq_vkind_t;
typedef struct kz_mmq_value {
    kz_mmq_vkind_t kind;
    const char *str; /* V_STR: borrowed bytes */
    size_t len;
    double num;      /* V_NUM */
    bool b;          /* V_BOOL */
} kz_mmq_value_t;

/* Fills v with the value of field in doc (kind V_NONE when absent). A
 * field may have a string and a numeric value at once: the callback is
 * asked for each kind in turn (want = V_STR, then V_NUM / V_BOOL). */
typedef void (*kz_mmq_lookup_fn)(const void *doc, const char *field, kz_mmq_vkind_t want, kz_mmq_value_t *v);

/* Parses text[0..len) into *out (owned; kz_mmq_free). Returns 0, or -1
 * with a message in err (*out NULL). */
int kz_mmq_parse(const char *text, size_t len, kz_mmq_t **out, char *err, size_t errlen);
void kz_mmq_free(kz_mmq_t *q);

/* Does doc match q? *score (may be NULL) receives the number of MUST and
 * SHOULD clauses that matched. */
bool kz_mmq_eval(const kz_mmq_t *q, kz_mmq_lookup_fn lookup, const void *doc, int *score);

/* Does clause c alone match doc? */
bool kz_mmq_clause_match(const kz_mmq_clause_t *c, kz_mmq_lookup_fn lookup, const void *doc);

/* A lookup over a JSON object: the field "a.b.c" is doc["a"]["b"]["c"];
 * strings, numbers and booleans are values, anything else is absent. For
 * match labels: evaluate against {"label": <label object>}. */
void kz_mmq_json_lookup(const void *doc, const char *field, kz_mmq_vkind_t want, kz_mmq_value_t *v);

#endif
