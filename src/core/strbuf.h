/* A growing byte string for building output (metrics text, reports,
 * envelopes): appends never fail (allocation failure aborts, as
 * core/alloc does) and the bytes stay NUL-terminated once anything was
 * added, so p can be used as a C string. Zero-initialise to start; reuse
 * with kz_strbuf_reset. */
#ifndef KZ_CORE_STRBUF_H
#define KZ_CORE_STRBUF_H

#include <stddef.h>

typedef struct kz_strbuf {
    char *p; /* owned; NULL until the first append */
    size_t len, cap;
} kz_strbuf_t;

/* Makes room for more bytes after len (and the NUL). */
void kz_strbuf_reserve(kz_strbuf_t *b, size_t more);
void kz_strbuf_add(kz_strbuf_t *b, const void *p, size_t n);
void kz_strbuf_puts(kz_strbuf_t *b, const char *s);
void kz_strbuf_putc(kz_strbuf_t *b, char c);
void kz_strbuf_printf(kz_strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties b, keeping its storage. */
void kz_strbuf_reset(kz_strbuf_t *b);
/* The string (owned by the caller, "" when nothing was added); b is left empty. */
char *kz_strbuf_take(kz_strbuf_t *b);
void kz_strbuf_free(kz_strbuf_t *b);

#endif
