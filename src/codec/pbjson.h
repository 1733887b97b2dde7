/* Protobuf messages <-> their protobuf-JSON form, for any message type, by
 * walking protobuf-c descriptors.
 *
 * The realtime handlers work on jansson objects in the JSON format clients
 * speak (snake_case field names, int64 as decimal strings, bytes as base64,
 * Timestamps as RFC 3339 strings, wrapper messages as bare values, maps as
 * objects, enums as numbers). A protobuf socket converts at its edge: each
 * incoming Envelope is decoded into that JSON form, and each outgoing
 * envelope is encoded from it, so every handler serves both formats.
 *
 * Decoding leaves out fields at their default value (as protobuf-JSON does
 * without "emit unpopulated"), except members of a oneof, message fields and
 * wrappers, whose presence is what they say. */
#ifndef KZ_CODEC_PBJSON_H
#define KZ_CODEC_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* The JSON form of data[0..len) read as a message of type d (a new
 * reference), or NULL when the bytes are not one (bad wire format, a string
 * that is not UTF-8). Unknown fields are skipped, as protobuf does. */
json_t *kz_pbjson_decode(const ProtobufCMessageDescriptor *d, const void *data, size_t len);

/* Encodes j, the JSON form of a message of type d, into bytes allocated in
 * a. Returns 0, or -1 with the reason in err when j does not fit the type
 * (unknown field, wrong value type, number out of range): nothing is
 * half-encoded. Null values count as absent. */
int kz_pbjson_encode(const ProtobufCMessageDescriptor *d, json_t *j, kz_arena_t *a, uint8_t **out,
                     size_t *outlen, char err[128]);

/* An int64 in protobuf-JSON: a JSON integer, an integral number, or a
 * string holding a decimal integer; false for anything else or out of
 * range. */
bool kz_pbjson_int64(const json_t *v, int64_t *out);

/* bytes in protobuf-JSON: standard base64 with padding (an owned string);
 * decoding takes the standard or URL-safe alphabet, padded or not, and
 * returns an owned buffer (length in *outlen, never NULL on success, even
 * when empty) or NULL when s[0..n) is not base64. */
char *kz_pbjson_b64_encode(const void *b, size_t n);
unsigned char *kz_pbjson_b64_decode(const char *s, size_t n, size_t *outlen);

/* Timestamps in protobuf-JSON: RFC 3339 in UTC with "Z", with 0, 3, 6 or 9
 * fraction digits (as few as the nanos need). out needs 40 bytes; returns
 * the length. Parsing takes any RFC 3339 date-time (1..9 fraction digits,
 * "Z" or a numeric offset), years 0001..9999. */
size_t kz_pbjson_time_format(int64_t sec, int32_t nanos, char out[40]);
bool kz_pbjson_time_parse(const char *s, size_t n, int64_t *sec, int32_t *nanos);

#endif
