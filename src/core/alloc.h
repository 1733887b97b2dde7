/* Allocation wrappers: every allocation in Kizuna goes through these.
 *
 * An internal allocation failure is not recoverable in a server that must not
 * half-apply a request, so the wrappers log and abort instead of returning
 * NULL; call sites never check. What a client controls (body sizes, frame
 * sizes, queue lengths) is bounded explicitly elsewhere, so the heap cannot be
 * exhausted from outside. */
#ifndef KZ_CORE_ALLOC_H
#define KZ_CORE_ALLOC_H

#include <stddef.h>

void *kz_malloc(size_t n);
void *kz_calloc(size_t count, size_t n);
void *kz_realloc(void *p, size_t n);
/* Owned copy of a NUL-terminated string; kz_strdup(NULL) returns NULL. */
char *kz_strdup(const char *s);
/* Owned NUL-terminated copy of the first n bytes of s. */
char *kz_strndup(const char *s, size_t n);
/* Formats into a fresh owned string. */
char *kz_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kz_free(void *p);

/* Formats a message into err[0..errlen) (nothing when err is NULL or
 * errlen is 0): the "char *err, size_t errlen" convention of functions
 * that report why they failed. */
void kz_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
