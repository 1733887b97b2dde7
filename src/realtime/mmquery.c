/* The matchmaker's query language: see realtime/mmquery.h.
 *
 * Parsing is one left-to-right pass over the text: each clause becomes a
 * kz_mmq_clause_t with its field and value unescaped, so evaluation never
 * looks at the text again. Evaluation asks a lookup callback for the
 * document's values, so the same query runs against matchmaker tickets
 * (properties.<key>) and JSON match labels. */
#include "realtime/mmquery.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */

typedef struct parser {
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
} parser_t;

static int fail(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser_t *p, const char *fmt, ...)
{
    if (p->err && p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool at_end_of_clause(const parser_t *p)
{
    return p->i >= p->n || is_ws(p->s[p->i]);
}

/* -?[0-9]+(\.[0-9]+)? exactly, as Bluge's lexer reads numbers. */
static bool number_text(const char *s, size_t n, double *out)
{
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == d) return false;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == f) return false;
    }
    if (i != n || n > 64) return false;
    char buf[65];
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return isfinite(*out);
}

/* Reads a field name up to its unescaped ':' into an owned string. */
static int read_field(parser_t *p, char **out)
{
    char *buf = kz_malloc(p->n - p->i + 1);
    size_t o = 0;
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == '\\' && p->i + 1 < p->n) {
            buf[o++] = p->s[p->i + 1];
            p->i += 2;
            continue;
        }
        if (c == ':') break;
        if (is_ws(c)) break;
        if (c == '"' || c == '*' || c == '?' || c == '/' || c == '~' || c == '^') {
            kz_free(buf);
            return fail(p, "unexpected '%c' in a field name at offset %zu", c, p->i);
        }
        buf[o++] = c;
        p->i++;
    }
    if (p->i >= p->n || p->s[p->i] != ':') {
        kz_free(buf);
        return fail(p, "a term needs a field (field:value) at offset %zu", p->i);
    }
    if (o == 0) {
        kz_free(buf);
        return fail(p, "empty field name at offset %zu", p->i);
    }
    buf[o] = '\0';
    p->i++; /* ':' */
    *out = buf;
    return 0;
}

/* A quoted phrase (p->i at the opening quote). */
static int read_phrase(parser_t *p, kz_mmq_clause_t *c)
{
    size_t start = p->i++;
    char *buf = kz_malloc(p->n - p->i + 1);
    size_t o = 0;
    bool closed = false;
    while (p->i < p->n) {
        char ch = p->s[p->i];
        if (ch == '\\' && p->i + 1 < p->n) {
            buf[o++] = p->s[p->i + 1];
            p->i += 2;
            continue;
        }
        p->i++;
        if (ch == '"') {
            closed = true;
            break;
        }
        buf[o++] = ch;
    }
    if (!closed) {
        kz_free(buf);
        return fail(p, "unterminated phrase at offset %zu", start);
    }
    if (!at_end_of_clause(p)) {
        kz_free(buf);
        char ch = p->s[p->i];
        if (ch == '~') return fail(p, "fuzzy and proximity queries (~) are not supported");
        if (ch == '^') return fail(p, "boosts (^) are not supported");
        return fail(p, "unexpected '%c' after a phrase at offset %zu", ch, p->i);
    }
    buf[o] = '\0';
    c->kind = KZ_MMQ_TERM;
    c->str = buf;
    c->len = o;
    return 0;
}

/* A comparison: >=N >N <=N <N (p->i at the operator). */
static int read_range(parser_t *p, kz_mmq_clause_t *c)
{
    char op = p->s[p->i++];
    bool eq = false;
    if (p->i < p->n && p->s[p->i] == '=') {
        eq = true;
        p->i++;
    }
    if (p->i < p->n && p->s[p->i] == '"') return fail(p, "date ranges are not supported");
    size_t start = p->i;
    while (!at_end_of_clause(p)) p->i++;
    double v;
    if (!number_text(p->s + start, p->i - start, &v))
        return fail(p, "a comparison needs a number at offset %zu", start);
    c->kind = KZ_MMQ_RANGE;
    c->lo = -INFINITY;
    c->hi = INFINITY;
    if (op == '>') {
        c->lo = v;
        c->lo_incl = eq;
    } else {
        c->hi = v;
        c->hi_incl = eq;
    }
    return 0;
}

/* An unquoted word: a term, or a number. */
static int read_word(parser_t *p, kz_mmq_clause_t *c)
{
    size_t start = p->i;
    char *buf = kz_malloc(p->n - p->i + 1);
    size_t o = 0;
    bool escaped = false;
    while (!at_end_of_clause(p)) {
        char ch = p->s[p->i];
        if (ch == '\\' && p->i + 1 < p->n) {
            buf[o++] = p->s[p->i + 1];
            p->i += 2;
            escaped = true;
            continue;
        }
        const char *why = NULL;
        switch (ch) {
        case '*':
        case '?': why = "wildcards (* ?) are not supported"; break;
        case '~': why = "fuzzy queries (~) are not supported"; break;
        case '^': why = "boosts (^) are not supported"; break;
        case ':': why = "unexpected ':' in a value (escape it as \\:)"; break;
        case '"': why = "unexpected '\"' in a value"; break;
        default: break;
        }
        if (why) {
            kz_free(buf);
            return fail(p, "%s at offset %zu", why, p->i);
        }
        buf[o++] = ch;
        p->i++;
    }
    if (o == 0) {
        kz_free(buf);
        return fail(p, "empty value at offset %zu", start);
    }
    if (buf[0] == '/' && !escaped) {
        kz_free(buf);
        return fail(p, "regular expressions are not supported");
    }
    buf[o] = '\0';
    c->str = buf;
    c->len = o;
    c->kind = !escaped && number_text(buf, o, &c->num) ? KZ_MMQ_NUM : KZ_MMQ_TERM;
    return 0;
}

static int parse_clause(parser_t *p, kz_mmq_clause_t *c)
{
    c->occur = KZ_MMQ_SHOULD;
    if (p->s[p->i] == '+' || p->s[p->i] == '-') {
        c->occur = p->s[p->i] == '+' ? KZ_MMQ_MUST : KZ_MMQ_MUST_NOT;
        p->i++;
        if (at_end_of_clause(p)) return fail(p, "'%c' without a clause", p->s[p->i - 1]);
        if (p->s[p->i] == '+' || p->s[p->i] == '-') return fail(p, "two prefixes at offset %zu", p->i);
    }
    if (p->s[p->i] == '*') {
        p->i++;
        if (!at_end_of_clause(p)) return fail(p, "wildcards (* ?) are not supported");
        c->kind = KZ_MMQ_ALL;
        return 0;
    }
    if (read_field(p, &c->field) != 0) return -1;
    if (at_end_of_clause(p)) return fail(p, "empty value for field '%s'", c->field);
    char ch = p->s[p->i];
    if (ch == '"') return read_phrase(p, c);
    if (ch == '>' || ch == '<') return read_range(p, c);
    return read_word(p, c);
}

static void clause_clear(kz_mmq_clause_t *c)
{
    kz_free(c->field);
    kz_free(c->str);
}

void kz_mmq_free(kz_mmq_t *q)
{
    if (!q) return;
    for (int i = 0; i < q->n; i++) clause_clear(&q->c[i]);
    kz_free(q->c);
    kz_free(q);
}

int kz_mmq_parse(const char *text, size_t len, kz_mmq_t **out, char *err, size_t errlen)
{
    parser_t p = {.s = text, .n = len, .err = err, .errlen = errlen};
    *out = NULL;
    if (len > KZ_MMQ_MAX_LEN) return fail(&p, "query longer than %d bytes", KZ_MMQ_MAX_LEN);
    if (memchr(text, '\0', len)) return fail(&p, "NUL byte in the query");
    kz_mmq_t *q = kz_calloc(1, sizeof *q);
    int cap = 0;
    for (;;) {
        while (p.i < p.n && is_ws(p.s[p.i])) p.i++;
        if (p.i >= p.n) break;
        if (q->n == KZ_MMQ_MAX_CLAUSES) {
            fail(&p, "more than %d clauses", KZ_MMQ_MAX_CLAUSES);
            goto bad;
        }
        if (q->n == cap) {
            cap = cap ? cap * 2 : 4;
            q->c = kz_realloc(q->c, sizeof *q->c * (size_t)cap);
        }
        kz_mmq_clause_t *c = &q->c[q->n];
        memset(c, 0, sizeof *c);
        if (parse_clause(&p, c) != 0) {
            clause_clear(c);
            goto bad;
        }
        q->n++;
        if (c->occur == KZ_MMQ_MUST) q->nmust++;
        else if (c->occur == KZ_MMQ_SHOULD) q->nshould++;
        else q->nnot++;
    }
    *out = q;
    return 0;
bad:
    kz_mmq_free(q);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                               */

static bool str_eq(const kz_mmq_clause_t *c, kz_mmq_lookup_fn lookup, const void *doc)
{
    kz_mmq_value_t v = {0};
    lookup(doc, c->field, KZ_MMQ_V_STR, &v);
    if (v.kind == KZ_MMQ_V_STR && v.len == c->len && memcmp(v.str, c->str, c->len) == 0) return true;
    if (c->len == 1 && (c->str[0] == 'T' || c->str[0] == 'F')) {
        v = (kz_mmq_value_t){0};
        lookup(doc, c->field, KZ_MMQ_V_BOOL, &v);
        if (v.kind == KZ_MMQ_V_BOOL && v.b == (c->str[0] == 'T')) return true;
    }
    return false;
}

bool kz_mmq_clause_match(const kz_mmq_clause_t *c, kz_mmq_lookup_fn lookup, const void *doc)
{
    kz_mmq_value_t v = {0};
    switch (c->kind) {
    case KZ_MMQ_ALL: return true;
    case KZ_MMQ_TERM: return str_eq(c, lookup, doc);
    case KZ_MMQ_NUM:
        if (str_eq(c, lookup, doc)) return true;
        lookup(doc, c->field, KZ_MMQ_V_NUM, &v);
        return v.kind == KZ_MMQ_V_NUM && v.num == c->num;
    case KZ_MMQ_RANGE:
        lookup(doc, c->field, KZ_MMQ_V_NUM, &v);
        if (v.kind != KZ_MMQ_V_NUM) return false;
        if (v.num < c->lo || (v.num == c->lo && !c->lo_incl)) return false;
        if (v.num > c->hi || (v.num == c->hi && !c->hi_incl)) return false;
        return true;
    }
    return false;
}

bool kz_mmq_eval(const kz_mmq_t *q, kz_mmq_lookup_fn lookup, const void *doc, int *score)
{
    int sc = 0, should = 0;
    if (score) *score = 0;
    if (!q || q->n == 0) return false;
    /* MUST NOT and MUST first: they decide; SHOULD only counts. */
    for (int i = 0; i < q->n; i++) {
        const kz_mmq_clause_t *c = &q->c[i];
        if (c->occur == KZ_MMQ_SHOULD) continue;
        bool m = kz_mmq_clause_match(c, lookup, doc);
        if (c->occur == KZ_MMQ_MUST_NOT ? m : !m) return false;
        if (m) sc++;
    }
    for (int i = 0; i < q->n; i++) {
        const kz_mmq_clause_t *c = &q->c[i];
        if (c->occur == KZ_MMQ_SHOULD && kz_mmq_clause_match(c, lookup, doc)) should++;
    }
    if (q->nmust == 0 && q->nshould > 0 && should == 0) return false;
    if (score) *score = sc + should;
    return true;
}

void kz_mmq_json_lookup(const void *doc, const char *field, kz_mmq_vkind_t want, kz_mmq_value_t *v)
{
    const json_t *j = doc;
    v->kind = KZ_MMQ_V_NONE;
    const char *p = field;
    for (;;) {
        if (!json_is_object(j)) return;
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char key[256];
        if (n >= sizeof key) return;
        memcpy(key, p, n);
        key[n] = '\0';
        j = json_object_get(j, key);
        if (!dot) break;
        p = dot + 1;
    }
    if (!j) return;
    if (want == KZ_MMQ_V_STR && json_is_string(j)) {
        v->kind = KZ_MMQ_V_STR;
        v->str = json_string_value(j);
        v->len = json_string_length(j);
    } else if (want == KZ_MMQ_V_NUM && json_is_number(j)) {
        v->kind = KZ_MMQ_V_NUM;
        v->num = json_number_value(j);
    } else if (want == KZ_MMQ_V_BOOL && json_is_boolean(j)) {
        v->kind = KZ_MMQ_V_BOOL;
        v->b = json_is_true(j);
    }
}
