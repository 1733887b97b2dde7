#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

void kz_strbuf_reserve(kz_strbuf_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) cap *= 2;
    b->p = kz_realloc(b->p, cap);
    b->cap = cap;
}

void kz_strbuf_add(kz_strbuf_t *b, const void *p, size_t n)
{
    kz_strbuf_reserve(b, n);
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void kz_strbuf_puts(kz_strbuf_t *b, const char *s)
{
    kz_strbuf_add(b, s, strlen(s));
}

void kz_strbuf_putc(kz_strbuf_t *b, char c)
{
    kz_strbuf_add(b, &c, 1);
}

void kz_strbuf_printf(kz_strbuf_t *b, const char *fmt, ...)
{
    kz_strbuf_reserve(b, 64);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->p[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) { /* did not fit: grow and format again */
        kz_strbuf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void kz_strbuf_reset(kz_strbuf_t *b)
{
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

char *kz_strbuf_take(kz_strbuf_t *b)
{
    kz_strbuf_reserve(b, 0);
    b->p[b->len] = '\0';
    char *s = b->p;
    *b = (kz_strbuf_t){0};
    return s;
}

void kz_strbuf_free(kz_strbuf_t *b)
{
    kz_free(b->p);
    *b = (kz_strbuf_t){0};
}
