/* Protobuf <-> protobuf-JSON by descriptor: see codec/pbjson.h.
 *
 * Decoding unpacks with protobuf-c into an arena (a stack buffer for the
 * usual small envelope) and walks the message; encoding builds the
 * protobuf-c message in an arena from the JSON and packs it. Field values
 * are read and written through the descriptors' offsets, so one walker
 * serves every message type; Kizuna's well-known types (kizuna/wkt.proto)
 * are recognised by descriptor and get their special JSON forms. */
#include "codec/pbjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kizuna/wkt.pb-c.h"

#define FIELD(m, off, type) (*(type *)((char *)(m) + (off)))

/* ------------------------------------------------------------------------ */
/* Well-known types                                                         */

static const ProtobufCMessageDescriptor *const wrappers[] = {
    &kizuna__wkt__bool_value__descriptor,   &kizuna__wkt__int32_value__descriptor,
    &kizuna__wkt__int64_value__descriptor,  &kizuna__wkt__uint32_value__descriptor,
    &kizuna__wkt__uint64_value__descriptor, &kizuna__wkt__float_value__descriptor,
    &kizuna__wkt__double_value__descriptor, &kizuna__wkt__string_value__descriptor,
    &kizuna__wkt__bytes_value__descriptor,
};

static bool is_wrapper(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++)
        if (d == wrappers[i]) return true;
    return false;
}

static bool is_timestamp(const ProtobufCMessageDescriptor *d)
{
    return d == &kizuna__wkt__timestamp__descriptor;
}

/* protoc-c turns map<K, V> into a repeated nested "...Entry" message with
 * fields key = 1 and value = 2. */
static bool is_map(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE) return false;
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t n = strlen(d->name);
    return d->n_fields == 2 && n > 5 && strcmp(d->name + n - 5, "Entry") == 0 && d->fields[0].id == 1 &&
           strcmp(d->fields[0].name, "key") == 0 && d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *kz_pbjson_b64_encode(const void *data, size_t n)
{
    const unsigned char *b = data;
    char *out = kz_malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = b64_std[(v >> 6) & 63];
        out[o++] = b64_std[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)b[i] << 16;
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = b64_std[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* Value of one base64 digit in the given alphabet, or -1. */
static int b64val(char c, bool url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

/* protojson picks the alphabet by the presence of '-' or '_', and expects
 * padding exactly when the length is a multiple of four. */
unsigned char *kz_pbjson_b64_decode(const char *s, size_t n, size_t *outlen)
{
    bool url = memchr(s, '-', n) || memchr(s, '_', n);
    size_t digits = n;
    if (n % 4 == 0 && n > 0) {
        if (s[n - 1] == '=') digits--;
        if (s[n - 2] == '=') digits--;
    }
    if (digits % 4 == 1) return NULL;
    unsigned char *out = kz_malloc(digits / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < digits; i++) {
        int v = b64val(s[i], url);
        if (v < 0) {
            kz_free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *outlen = o;
    return out;
}

/* ------------------------------------------------------------------------ */
/* Timestamps                                                               */

/* The instants protobuf-JSON can write: 0001-01-01T00:00:00Z through
 * 9999-12-31T23:59:59.999999999Z. */
#define TIME_MIN INT64_C(-62135596800)
#define TIME_MAX INT64_C(253402300799)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's method). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

size_t kz_pbjson_time_format(int64_t sec, int32_t nanos, char out[40])
{
    if (sec < TIME_MIN) sec = TIME_MIN; /* callers check; never overflow */
    if (sec > TIME_MAX) sec = TIME_MAX;
    int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    int64_t rem = sec - days * 86400;
    int64_t y;
    int mo, d;
    civil_from_days(days, &y, &mo, &d);
    int n = snprintf(out, 40, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, mo, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60));
    if (nanos > 0 && nanos < 1000000000) {
        if (nanos % 1000000 == 0)
            n += snprintf(out + n, 40 - (size_t)n, ".%03d", nanos / 1000000);
        else if (nanos % 1000 == 0)
            n += snprintf(out + n, 40 - (size_t)n, ".%06d", nanos / 1000);
        else
            n += snprintf(out + n, 40 - (size_t)n, ".%09d", nanos);
    }
    out[n++] = 'Z';
    out[n] = '\0';
    return (size_t)n;
}

/* Reads exactly k digits at s[*i]. */
static bool digits(const char *s, size_t n, size_t *i, int k, int *out)
{
    int v = 0;
    for (int j = 0; j < k; j++, (*i)++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9') return false;
        v = v * 10 + (s[*i] - '0');
    }
    *out = v;
    return true;
}

static bool expect(const char *s, size_t n, size_t *i, const char *chars)
{
    if (*i >= n || !strchr(chars, s[*i]) || s[*i] == '\0') return false;
    (*i)++;
    return true;
}

bool kz_pbjson_time_parse(const char *s, size_t n, int64_t *sec, int32_t *nanos)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t i = 0;
    int y, mo, d, h, mi, se;
    if (!digits(s, n, &i, 4, &y) || !expect(s, n, &i, "-") || !digits(s, n, &i, 2, &mo) ||
        !expect(s, n, &i, "-") || !digits(s, n, &i, 2, &d) || !expect(s, n, &i, "Tt") ||
        !digits(s, n, &i, 2, &h) || !expect(s, n, &i, ":") || !digits(s, n, &i, 2, &mi) ||
        !expect(s, n, &i, ":") || !digits(s, n, &i, 2, &se))
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 ||
        mi > 59 || se > 59)
        return false;
    int32_t ns = 0;
    if (i < n && s[i] == '.') {
        i++;
        int k = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
            if (k == 9) return false;
            ns = ns * 10 + (s[i] - '0');
        }
        if (k == 0) return false;
        for (; k < 9; k++) ns *= 10;
    }
    int offset = 0; /* minutes east of UTC */
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1, oh, om;
        if (!digits(s, n, &i, 2, &oh) || !expect(s, n, &i, ":") || !digits(s, n, &i, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (i != n) return false;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - (int64_t)offset * 60;
    if (t < TIME_MIN || t > TIME_MAX) return false;
    *sec = t;
    *nanos = ns;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Decoding: message -> JSON                                                */

static json_t *message_json(const ProtobufCMessage *m);

/* Protobuf-JSON floating point: numbers, or the strings protobuf uses for
 * the values JSON has no number for. */
static json_t *real_json(double v)
{
    if (isnan(v)) return json_string("NaN");
    if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* The JSON value of one field value at p (NULL when it cannot be one:
 * a string that is not UTF-8). */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[24];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_ENUM: return json_integer(*(const int *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)p);
        return json_string(buf);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)p);
        return json_string(buf);
    case PROTOBUF_C_TYPE_FLOAT: return real_json(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return real_json(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *s = kz_pbjson_b64_encode(b->data, b->len);
        json_t *v = json_string(s);
        kz_free(s);
        return v;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (is_timestamp(sub->descriptor)) {
            const Kizuna__Wkt__Timestamp *t = (const Kizuna__Wkt__Timestamp *)sub;
            if (t->nanos < 0 || t->nanos > 999999999 || t->seconds < TIME_MIN || t->seconds > TIME_MAX)
                return NULL;
            char out[40];
            size_t n = kz_pbjson_time_format(t->seconds, t->nanos, out);
            return json_stringn(out, n);
        }
        if (is_wrapper(sub->descriptor)) {
            const ProtobufCFieldDescriptor *vf = &sub->descriptor->fields[0];
            return value_json(vf, (const char *)sub + vf->offset);
        }
        return message_json(sub);
    }
    }
    return NULL;
}

/* Size of one element of a repeated field's array. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return 4;
    }
}

/* A proto3 singular field is present when it is not its zero value. */
static bool is_set(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s && *s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)p != NULL;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p != 0 || signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p != 0 || signbit(*(const double *)p);
    default: {
        size_t n = elem_size(f->type);
        return n == 8 ? *(const uint64_t *)p != 0 : *(const uint32_t *)p != 0;
    }
    }
}

/* A map entry's key as a JSON object key. */
static char *map_key(const ProtobufCMessage *entry, char buf[24])
{
    const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
    const void *p = (const char *)entry + kf->offset;
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)p;
        return (char *)(s ? s : "");
    }
    json_t *v = value_json(kf, p);
    if (json_is_string(v))
        snprintf(buf, 24, "%s", json_string_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, 24, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(buf, 24, "%lld", (long long)json_integer_value(v));
    json_decref(v);
    return buf;
}

static json_t *message_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = (const char *)m + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = FIELD(m, f->quantifier_offset, size_t);
            if (n == 0) continue;
            const char *arr = *(char *const *)p;
            if (is_map(f)) {
                v = json_object();
                for (size_t k = 0; k < n; k++) {
                    const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[k];
                    const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
                    const void *vp = (const char *)e + vf->offset;
                    json_t *ev = vf->type == PROTOBUF_C_TYPE_MESSAGE && !*(ProtobufCMessage *const *)vp
                                     ? json_object()
                                     : value_json(vf, vp);
                    char kb[24];
                    const char *key = map_key(e, kb);
                    if (!ev || json_object_set_new(v, key, ev) != 0) goto fail_v;
                }
            } else {
                v = json_array();
                size_t es = elem_size(f->type);
                for (size_t k = 0; k < n; k++)
                    if (json_array_append_new(v, value_json(f, arr + k * es)) != 0) goto fail_v;
            }
        } else {
            bool present = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                               ? FIELD(m, f->quantifier_offset, uint32_t) == f->id
                               : f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset
                                     ? FIELD(m, f->quantifier_offset, protobuf_c_boolean)
                                     : is_set(f, p);
            if (!present) continue;
            /* A oneof member that is a message may be set with no bytes. */
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(ProtobufCMessage *const *)p)
                v = json_object();
            else
                v = value_json(f, p);
            if (!v) goto fail;
        }
        json_object_set_new(o, f->name, v);
        continue;
    fail_v:
        json_decref(v);
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static void *arena_alloc(void *a, size_t n) { return kz_arena_alloc(a, n); }
static void arena_free(void *a, void *p) {}

json_t *kz_pbjson_decode(const ProtobufCMessageDescriptor *d, const void *data, size_t len)
{
    char stack[4096];
    kz_arena_t a;
    kz_arena_init(&a, stack, sizeof stack);
    ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = &a};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, len, data);
    json_t *j = m ? message_json(m) : NULL;
    kz_arena_release(&a);
    return j;
}

/* ------------------------------------------------------------------------ */
/* Encoding: JSON -> message                                                */

typedef struct enc {
    kz_arena_t *a;
    char *err; /* 128 bytes */
} enc_t;

static bool fail(enc_t *e, const char *field, const char *what)
{
    snprintf(e->err, 128, "%s: %s", field, what);
    return false;
}

/* A protobuf-JSON integer: a JSON integer, an integral real, or a string
 * holding a decimal integer. Unsigned values above INT64_MAX come only as
 * strings. */
static bool json_int(const json_t *v, bool is_unsigned, int64_t *out, uint64_t *uout)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (is_unsigned && x < 0) return false;
        *out = x;
        *uout = (uint64_t)x;
        return true;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0) || x != (double)(int64_t)x) return false;
        if (is_unsigned && x < 0) return false;
        *out = (int64_t)x;
        *uout = (uint64_t)*out;
        return true;
    }
    if (!json_is_string(v)) return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), i = s[0] == '-' ? 1 : 0;
    if (i == n || n - i > 20) return false;
    uint64_t acc = 0;
    for (size_t k = i; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return false;
        unsigned dgt = (unsigned)(s[k] - '0');
        if (acc > (UINT64_MAX - dgt) / 10) return false;
        acc = acc * 10 + dgt;
    }
    if (i) { /* negative */
        if (is_unsigned || acc > (uint64_t)INT64_MAX + 1) return false;
        *out = (int64_t)(0 - acc);
    } else {
        if (!is_unsigned && acc > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)acc;
    }
    *uout = acc;
    return true;
}

bool kz_pbjson_int64(const json_t *v, int64_t *out)
{
    uint64_t u;
    return json_int(v, false, out, &u);
}

static bool json_double(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_string(v)) return false;
    const char *s = json_string_value(v);
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "Infinity") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0)
        *out = -INFINITY;
    else { /* a number in a string */
        char *end;
        *out = strtod(s, &end);
        if (end == s || *end != '\0' || !isfinite(*out)) return false;
    }
    return true;
}

static ProtobufCMessage *message_new(enc_t *e, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = kz_arena_alloc(e->a, d->sizeof_message);
    d->message_init(m);
    return m;
}

static bool message_fill(enc_t *e, ProtobufCMessage *m, json_t *j);

/* Stores the JSON value v as a value of field f at p. */
static bool value_set(enc_t *e, const ProtobufCFieldDescriptor *f, void *p, json_t *v)
{
    int64_t i;
    uint64_t u;
    double x;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!json_int(v, false, &i, &u) || i < INT32_MIN || i > INT32_MAX) return fail(e, f->name, "not an int32");
        *(int32_t *)p = (int32_t)i;
        return true;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!json_int(v, true, &i, &u) || u > UINT32_MAX) return fail(e, f->name, "not a uint32");
        *(uint32_t *)p = (uint32_t)u;
        return true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!json_int(v, false, &i, &u)) return fail(e, f->name, "not an int64");
        *(int64_t *)p = i;
        return true;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!json_int(v, true, &i, &u)) return fail(e, f->name, "not a uint64");
        *(uint64_t *)p = u;
        return true;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_double(v, &x)) return fail(e, f->name, "not a number");
        *(float *)p = (float)x;
        return true;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_double(v, &x)) return fail(e, f->name, "not a number");
        *(double *)p = x;
        return true;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) return fail(e, f->name, "not a boolean");
        *(protobuf_c_boolean *)p = json_is_true(v);
        return true;
    case PROTOBUF_C_TYPE_ENUM:
        if (json_is_string(v)) {
            const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(v));
            if (!ev) return fail(e, f->name, "unknown enum value");
            *(int *)p = ev->value;
            return true;
        }
        if (!json_int(v, false, &i, &u) || i < INT32_MIN || i > INT32_MAX) return fail(e, f->name, "not an enum value");
        *(int *)p = (int)i;
        return true;
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) return fail(e, f->name, "not a string");
        size_t n = json_string_length(v);
        if (memchr(json_string_value(v), '\0', n)) return fail(e, f->name, "string holds a NUL");
        char *s = kz_arena_alloc(e->a, n + 1);
        memcpy(s, json_string_value(v), n + 1);
        *(char **)p = s;
        return true;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t n;
        unsigned char *b;
        if (!json_is_string(v) || !(b = kz_pbjson_b64_decode(json_string_value(v), json_string_length(v), &n)))
            return fail(e, f->name, "not base64");
        ProtobufCBinaryData *bd = p;
        bd->len = n;
        bd->data = kz_arena_alloc(e->a, n);
        memcpy(bd->data, b, n);
        kz_free(b);
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        ProtobufCMessage *sub = message_new(e, d);
        if (is_timestamp(d)) {
            Kizuna__Wkt__Timestamp *t = (Kizuna__Wkt__Timestamp *)sub;
            if (!json_is_string(v) ||
                !kz_pbjson_time_parse(json_string_value(v), json_string_length(v), &t->seconds, &t->nanos))
                return fail(e, f->name, "not an RFC 3339 time");
        } else if (is_wrapper(d)) {
            const ProtobufCFieldDescriptor *vf = &d->fields[0];
            if (!value_set(e, vf, (char *)sub + vf->offset, v)) return fail(e, f->name, "bad wrapped value");
        } else {
            if (!json_is_object(v)) return fail(e, f->name, "not an object");
            if (!message_fill(e, sub, v)) return false;
        }
        *(ProtobufCMessage **)p = sub;
        return true;
    }
    }
    return fail(e, f->name, "unsupported type");
}

/* A map's JSON key as the entry's key field. */
static bool key_set(enc_t *e, const ProtobufCFieldDescriptor *kf, void *p, const char *key)
{
    if (kf->type == PROTOBUF_C_TYPE_STRING || kf->type == PROTOBUF_C_TYPE_BOOL) {
        json_t *k = kf->type == PROTOBUF_C_TYPE_STRING ? json_string(key)
                    : strcmp(key, "true") == 0          ? json_true()
                    : strcmp(key, "false") == 0         ? json_false()
                                                        : NULL;
        bool ok = k && value_set(e, kf, p, k);
        json_decref(k);
        return ok || fail(e, kf->name, "bad map key");
    }
    json_t *k = json_string(key); /* integer keys: decimal strings */
    bool ok = value_set(e, kf, p, k);
    json_decref(k);
    return ok;
}

static bool repeated_set(enc_t *e, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, json_t *v)
{
    void **arr = &FIELD(m, f->offset, void *);
    size_t *count = &FIELD(m, f->quantifier_offset, size_t);
    if (is_map(f)) {
        if (!json_is_object(v)) return fail(e, f->name, "not an object");
        size_t n = json_object_size(v), k = 0;
        ProtobufCMessage **es = kz_arena_alloc(e->a, n * sizeof *es);
        const char *key;
        json_t *ev;
        json_object_foreach(v, key, ev)
        {
            const ProtobufCMessageDescriptor *d = f->descriptor;
            ProtobufCMessage *entry = message_new(e, d);
            if (!key_set(e, &d->fields[0], (char *)entry + d->fields[0].offset, key)) return false;
            if (!json_is_null(ev) && !value_set(e, &d->fields[1], (char *)entry + d->fields[1].offset, ev))
                return false;
            es[k++] = entry;
        }
        *arr = es;
        *count = k;
        return true;
    }
    if (!json_is_array(v)) return fail(e, f->name, "not an array");
    size_t n = json_array_size(v), es = elem_size(f->type);
    char *a = kz_arena_alloc(e->a, n * es);
    memset(a, 0, n * es);
    for (size_t k = 0; k < n; k++)
        if (!value_set(e, f, a + k * es, json_array_get(v, k))) return false;
    *arr = a;
    *count = n;
    return true;
}

static bool message_fill(enc_t *e, ProtobufCMessage *m, json_t *j)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        if (!f) return fail(e, key, "no such field");
        if (json_is_null(v)) continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!repeated_set(e, m, f, v)) return false;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && FIELD(m, f->quantifier_offset, uint32_t) != 0)
            return fail(e, key, "a second member of the same oneof");
        if (!value_set(e, f, (char *)m + f->offset, v)) return false;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            FIELD(m, f->quantifier_offset, uint32_t) = f->id;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
            FIELD(m, f->quantifier_offset, protobuf_c_boolean) = 1;
    }
    return true;
}

int kz_pbjson_encode(const ProtobufCMessageDescriptor *d, json_t *j, kz_arena_t *a, uint8_t **out,
                     size_t *outlen, char err[128])
{
    enc_t e = {.a = a, .err = err};
    err[0] = '\0';
    if (!json_is_object(j)) {
        fail(&e, d->name, "not an object");
        return -1;
    }
    ProtobufCMessage *m = message_new(&e, d);
    if (!message_fill(&e, m, j)) return -1;
    size_t n = protobuf_c_message_get_packed_size(m);
    *out = kz_arena_alloc(a, n);
    *outlen = protobuf_c_message_pack(m, *out);
    return 0;
}
