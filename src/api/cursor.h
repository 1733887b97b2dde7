/* Opaque list cursors: a small JSON object (the position to resume from and
 * the filters it was made with) in base64url without padding. A cursor is
 * only a position, never a permission: every field is checked again when it
 * comes back. */
#ifndef KZ_API_CURSOR_H
#define KZ_API_CURSOR_H

#include <jansson.h>

/* Encodes obj (stolen) as an owned cursor string (kz_free). */
char *kz_cursor_encode(json_t *obj);
/* Decodes a cursor into a new JSON object, or NULL when it is not one. */
json_t *kz_cursor_decode(const char *cursor);

#endif
