/* kizuna-loadtest envelopes: see wire.h. */
#include "loadtest/wire.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ------------------------------------------------------------------------ */
/* JSON strings                                                             */

void lt_json_str(kz_strbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    kz_strbuf_putc(b, '"');
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\') continue;
        kz_strbuf_add(b, run, (size_t)((const char *)p - run));
        char esc[7] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15], 0};
        if (*p == '"' || *p == '\\') {
            esc[1] = (char)*p;
            esc[2] = 0;
        } else if (*p == '\n') {
            esc[1] = 'n';
            esc[2] = 0;
        }
        kz_strbuf_puts(b, esc);
        run = (const char *)p + 1;
    }
    kz_strbuf_puts(b, run);
    kz_strbuf_putc(b, '"');
}

int lt_url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (n + (keep ? 1 : 3) + 1 > cap) return -1;
        if (keep) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    if (n + 1 > cap) return -1;
    out[n] = '\0';
    return (int)n;
}

/* ------------------------------------------------------------------------ */
/* Protobuf, by hand                                                        */

static void pb_varint(kz_strbuf_t *b, uint64_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    kz_strbuf_add(b, tmp, n);
}

static void pb_tag(kz_strbuf_t *b, int field, int wire)
{
    pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

static void pb_bytes(kz_strbuf_t *b, int field, const void *p, size_t n)
{
    pb_tag(b, field, 2);
    pb_varint(b, n);
    kz_strbuf_add(b, p, n);
}

/* A string field; proto3 leaves out empty strings. */
static void pb_str(kz_strbuf_t *b, int field, const char *s)
{
    if (s && *s) pb_bytes(b, field, s, strlen(s));
}

static void pb_int(kz_strbuf_t *b, int field, int64_t v)
{
    if (!v) return;
    pb_tag(b, field, 0);
    pb_varint(b, (uint64_t)v);
}

static void pb_double(kz_strbuf_t *b, int field, double d)
{
    pb_tag(b, field, 1);
    uint64_t u;
    memcpy(&u, &d, 8);
    char le[8];
    for (int i = 0; i < 8; i++) le[i] = (char)(u >> (8 * i));
    kz_strbuf_add(b, le, 8);
}

/* The envelope around an encoded message: cid (1) then field `kind`. */
static void pb_envelope(kz_strbuf_t *b, const char *cid, int kind, const kz_strbuf_t *inner)
{
    kz_strbuf_reset(b);
    pb_str(b, 1, cid);
    pb_bytes(b, kind, inner->p ? inner->p : "", inner->len);
}

static _Thread_local kz_strbuf_t inner, entry;

/* ------------------------------------------------------------------------ */
/* JSON helpers                                                             */

static void json_open(kz_strbuf_t *b, const char *cid, const char *kind)
{
    kz_strbuf_reset(b);
    kz_strbuf_putc(b, '{');
    if (cid && *cid) {
        kz_strbuf_puts(b, "\"cid\":");
        lt_json_str(b, cid);
        kz_strbuf_putc(b, ',');
    }
    kz_strbuf_putc(b, '"');
    kz_strbuf_puts(b, kind);
    kz_strbuf_puts(b, "\":{");
}

static void json_field(kz_strbuf_t *b, bool *first, const char *name)
{
    if (!*first) kz_strbuf_putc(b, ',');
    *first = false;
    kz_strbuf_putc(b, '"');
    kz_strbuf_puts(b, name);
    kz_strbuf_puts(b, "\":");
}

static void json_close(kz_strbuf_t *b)
{
    kz_strbuf_puts(b, "}}");
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void json_b64(kz_strbuf_t *b, const uint8_t *p, size_t n)
{
    kz_strbuf_reserve(b, (n + 2) / 3 * 4 + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)(i + 1 < n ? p[i + 1] : 0) << 8 | (i + 2 < n ? p[i + 2] : 0);
        *o++ = b64[(v >> 18) & 63];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Encoders                                                                 */

void lt_wire_channel_join(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *room, bool persistence)
{
    if (f == LT_FORMAT_PROTOBUF) {
        /* ChannelJoin{target 1, type 2 = ROOM, persistence 3 BoolValue, hidden 4 BoolValue} */
        kz_strbuf_reset(&inner);
        pb_str(&inner, 1, room);
        pb_int(&inner, 2, 1);
        pb_bytes(&inner, 3, persistence ? "\x08\x01" : "", persistence ? 2 : 0);
        pb_bytes(&inner, 4, "", 0);
        pb_envelope(b, cid, 3, &inner);
        return;
    }
    json_open(b, cid, "channel_join");
    kz_strbuf_puts(b, "\"target\":");
    lt_json_str(b, room);
    kz_strbuf_puts(b, persistence ? ",\"type\":1,\"persistence\":true,\"hidden\":false" : ",\"type\":1,\"persistence\":false,\"hidden\":false");
    json_close(b);
}

void lt_wire_channel_send(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *channel_id, const char *content)
{
    if (f == LT_FORMAT_PROTOBUF) {
        kz_strbuf_reset(&inner);
        pb_str(&inner, 1, channel_id);
        pb_str(&inner, 2, content);
        pb_envelope(b, cid, 7, &inner);
        return;
    }
    json_open(b, cid, "channel_message_send");
    kz_strbuf_puts(b, "\"channel_id\":");
    lt_json_str(b, channel_id);
    kz_strbuf_puts(b, ",\"content\":");
    lt_json_str(b, content);
    json_close(b);
}

void lt_wire_channel_leave(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *channel_id)
{
    if (f == LT_FORMAT_PROTOBUF) {
        kz_strbuf_reset(&inner);
        pb_str(&inner, 1, channel_id);
        pb_envelope(b, cid, 4, &inner);
        return;
    }
    json_open(b, cid, "channel_leave");
    kz_strbuf_puts(b, "\"channel_id\":");
    lt_json_str(b, channel_id);
    json_close(b);
}

void lt_wire_match_create(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *name)
{
    if (f == LT_FORMAT_PROTOBUF) {
        kz_strbuf_reset(&inner);
        pb_str(&inner, 1, name);
        pb_envelope(b, cid, 13, &inner);
        return;
    }
    json_open(b, cid, "match_create");
    if (name && *name) {
        kz_strbuf_puts(b, "\"name\":");
        lt_json_str(b, name);
    }
    json_close(b);
}

void lt_wire_match_join(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *match_id, const char *token)
{
    if (f == LT_FORMAT_PROTOBUF) {
        kz_strbuf_reset(&inner);
        if (token)
            pb_bytes(&inner, 2, token, strlen(token));
        else
            pb_bytes(&inner, 1, match_id, strlen(match_id));
        pb_envelope(b, cid, 16, &inner);
        return;
    }
    json_open(b, cid, "match_join");
    kz_strbuf_puts(b, token ? "\"token\":" : "\"match_id\":");
    lt_json_str(b, token ? token : match_id);
    json_close(b);
}

void lt_wire_match_leave(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *match_id)
{
    if (f == LT_FORMAT_PROTOBUF) {
        kz_strbuf_reset(&inner);
        pb_str(&inner, 1, match_id);
        pb_envelope(b, cid, 17, &inner);
        return;
    }
    json_open(b, cid, "match_leave");
    kz_strbuf_puts(b, "\"match_id\":");
    lt_json_str(b, match_id);
    json_close(b);
}

void lt_wire_match_send(kz_strbuf_t *b, lt_format_t f, const char *match_id, int64_t op_code, const void *data,
                        size_t len)
{
    if (f == LT_FORMAT_PROTOBUF) {
        /* MatchDataSend{match_id 1, op_code 2, data 3} */
        kz_strbuf_reset(&inner);
        pb_str(&inner, 1, match_id);
        pb_int(&inner, 2, op_code);
        if (len) pb_bytes(&inner, 3, data, len);
        pb_envelope(b, NULL, 15, &inner);
        return;
    }
    json_open(b, NULL, "match_data_send");
    kz_strbuf_puts(b, "\"match_id\":");
    lt_json_str(b, match_id);
    char op[32];
    snprintf(op, sizeof op, ",\"op_code\":\"%lld\",\"data\":", (long long)op_code);
    kz_strbuf_puts(b, op);
    json_b64(b, data, len);
    json_close(b);
}

void lt_wire_matchmaker_add(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *query, int min_count,
                            int max_count, const lt_kv_t *sprops, size_t nsprops, const lt_kv_t *nprops,
                            size_t nnprops)
{
    if (f == LT_FORMAT_PROTOBUF) {
        /* MatchmakerAdd{min_count 1, max_count 2, query 3, string_properties 4
         * (map entries {key 1, value 2}), numeric_properties 5 (value: double)} */
        kz_strbuf_reset(&inner);
        pb_int(&inner, 1, min_count);
        pb_int(&inner, 2, max_count);
        pb_str(&inner, 3, query);
        for (size_t i = 0; i < nsprops; i++) {
            kz_strbuf_reset(&entry);
            pb_str(&entry, 1, sprops[i].key);
            pb_str(&entry, 2, sprops[i].str);
            pb_bytes(&inner, 4, entry.p ? entry.p : "", entry.len);
        }
        for (size_t i = 0; i < nnprops; i++) {
            kz_strbuf_reset(&entry);
            pb_str(&entry, 1, nprops[i].key);
            pb_double(&entry, 2, nprops[i].num);
            pb_bytes(&inner, 5, entry.p, entry.len);
        }
        pb_envelope(b, cid, 19, &inner);
        return;
    }
    json_open(b, cid, "matchmaker_add");
    char num[64];
    snprintf(num, sizeof num, "\"min_count\":%d,\"max_count\":%d,\"query\":", min_count, max_count);
    kz_strbuf_puts(b, num);
    lt_json_str(b, query);
    bool first = true;
    kz_strbuf_puts(b, ",\"string_properties\":{");
    for (size_t i = 0; i < nsprops; i++) {
        if (!first) kz_strbuf_putc(b, ',');
        first = false;
        lt_json_str(b, sprops[i].key);
        kz_strbuf_putc(b, ':');
        lt_json_str(b, sprops[i].str);
    }
    kz_strbuf_puts(b, "},\"numeric_properties\":{");
    first = true;
    for (size_t i = 0; i < nnprops; i++) {
        if (!first) kz_strbuf_putc(b, ',');
        first = false;
        lt_json_str(b, nprops[i].key);
        snprintf(num, sizeof num, ":%.17g", nprops[i].num);
        kz_strbuf_puts(b, num);
    }
    kz_strbuf_putc(b, '}');
    json_close(b);
}

void lt_wire_rpc(kz_strbuf_t *b, lt_format_t f, const char *cid, const char *id, const char *payload)
{
    if (f == LT_FORMAT_PROTOBUF) {
        kz_strbuf_reset(&inner);
        pb_str(&inner, 1, id);
        pb_str(&inner, 2, payload);
        pb_envelope(b, cid, 24, &inner);
        return;
    }
    json_open(b, cid, "rpc");
    bool first = true;
    json_field(b, &first, "id");
    lt_json_str(b, id);
    json_field(b, &first, "payload");
    lt_json_str(b, payload);
    json_close(b);
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */

static void set_str(char *dst, size_t cap, const char *s, size_t n, bool *truncated)
{
    if (n >= cap) {
        if (truncated) *truncated = true;
        n = cap - 1;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static uint32_t parse_cid(const char *s, size_t n)
{
    if (n == 0 || n > 9) return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    return v;
}

static int8_t unb64(char c)
{
    if (c >= 'A' && c <= 'Z') return (int8_t)(c - 'A');
    if (c >= 'a' && c <= 'z') return (int8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (int8_t)(c - '0' + 52);
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decodes the first bytes of base64 text s[0..n) into out->data. */
static void b64_head(const char *s, size_t n, lt_env_t *out)
{
    out->data_len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && out->data_len < LT_ENV_DATA_MAX; i++) {
        int8_t v = unb64(s[i]);
        if (v < 0) break;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->data[out->data_len++] = (uint8_t)(acc >> bits);
        }
    }
}

static const char *str_of(json_t *o, const char *key, size_t *n)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) return NULL;
    *n = json_string_length(v);
    return json_string_value(v);
}

static lt_env_kind_t decode_json(const char *msg, size_t len, lt_env_t *out)
{
    bool has_cid = memmem(msg, len, "\"cid\"", 5) != NULL;
    if (!has_cid) {
        /* Events carry no cid: the fast path for the bulk of the traffic. */
        const char *md = memmem(msg, len, "\"match_data\":", 13);
        if (md) {
            const char *d = memmem(md, len - (size_t)(md - msg), "\"data\":\"", 8);
            if (d) {
                d += 8;
                const char *end = memchr(d, '"', len - (size_t)(d - msg));
                if (end) b64_head(d, (size_t)(end - d), out);
            }
            return out->kind = LT_ENV_MATCH_DATA;
        }
        if (memmem(msg, len, "\"channel_message\":", 18)) return out->kind = LT_ENV_CHANNEL_MESSAGE;
    }
    json_error_t jerr;
    json_t *root = json_loadb(msg, len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return out->kind = LT_ENV_BAD;
    }
    size_t n;
    const char *s = str_of(root, "cid", &n);
    if (s) out->cid = parse_cid(s, n);
    out->kind = LT_ENV_OTHER;
    const char *key;
    json_t *v;
    int keys = 0;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "cid") == 0) continue;
        keys++;
        if (!json_is_object(v)) continue;
        if (strcmp(key, "error") == 0) {
            out->kind = LT_ENV_ERROR;
            out->code = (int)json_integer_value(json_object_get(v, "code"));
            if ((s = str_of(v, "message", &n))) set_str(out->text, sizeof out->text, s, n, &out->text_truncated);
        } else if (strcmp(key, "channel") == 0) {
            out->kind = LT_ENV_CHANNEL;
            if ((s = str_of(v, "id", &n))) set_str(out->id, sizeof out->id, s, n, NULL);
        } else if (strcmp(key, "channel_message_ack") == 0) {
            out->kind = LT_ENV_CHANNEL_ACK;
        } else if (strcmp(key, "channel_message") == 0) {
            out->kind = LT_ENV_CHANNEL_MESSAGE;
        } else if (strcmp(key, "match") == 0) {
            out->kind = LT_ENV_MATCH;
            if ((s = str_of(v, "match_id", &n))) set_str(out->id, sizeof out->id, s, n, NULL);
        } else if (strcmp(key, "match_data") == 0) {
            out->kind = LT_ENV_MATCH_DATA;
            if ((s = str_of(v, "data", &n))) b64_head(s, n, out);
        } else if (strcmp(key, "matchmaker_ticket") == 0) {
            out->kind = LT_ENV_MM_TICKET;
            if ((s = str_of(v, "ticket", &n))) set_str(out->id, sizeof out->id, s, n, NULL);
        } else if (strcmp(key, "matchmaker_matched") == 0) {
            out->kind = LT_ENV_MM_MATCHED;
            if ((s = str_of(v, "match_id", &n))) set_str(out->id, sizeof out->id, s, n, NULL);
            if ((s = str_of(v, "token", &n))) set_str(out->text, sizeof out->text, s, n, &out->text_truncated);
        } else if (strcmp(key, "rpc") == 0) {
            out->kind = LT_ENV_RPC;
            if ((s = str_of(v, "payload", &n))) set_str(out->text, sizeof out->text, s, n, &out->text_truncated);
        }
    }
    if (keys == 0 && out->cid) out->kind = LT_ENV_ACK;
    json_decref(root);
    return out->kind;
}

static bool get_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *i < n && shift < 64; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* Walks the fields of message p[0..n): for each, calls fn with the field
 * number, wire type, varint value or bytes. False on malformed input. */
typedef void (*pb_field_fn)(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out);

static bool pb_walk(const uint8_t *p, size_t n, pb_field_fn fn, lt_env_t *out)
{
    size_t i = 0;
    while (i < n) {
        uint64_t tag, v = 0;
        if (!get_varint(p, n, &i, &tag)) return false;
        int wire = (int)(tag & 7), field = (int)(tag >> 3);
        switch (wire) {
        case 0:
            if (!get_varint(p, n, &i, &v)) return false;
            fn(field, 0, v, NULL, 0, out);
            break;
        case 1:
            if (n - i < 8) return false;
            i += 8;
            break;
        case 5:
            if (n - i < 4) return false;
            i += 4;
            break;
        case 2:
            if (!get_varint(p, n, &i, &v) || v > n - i) return false;
            fn(field, 2, v, p + i, (size_t)v, out);
            i += (size_t)v;
            break;
        default: return false;
        }
    }
    return true;
}

static void f_error(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out)
{
    if (field == 1 && wire == 0) out->code = (int)v;
    if (field == 2 && wire == 2) set_str(out->text, sizeof out->text, (const char *)b, bl, &out->text_truncated);
}

static void f_id1(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out)
{
    if (field == 1 && wire == 2) set_str(out->id, sizeof out->id, (const char *)b, bl, NULL);
}

static void f_match_data(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out)
{
    if (field == 4 && wire == 2) {
        out->data_len = bl < LT_ENV_DATA_MAX ? bl : LT_ENV_DATA_MAX;
        memcpy(out->data, b, out->data_len);
    }
}

static void f_matched(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out)
{
    if (field == 2 && wire == 2) set_str(out->id, sizeof out->id, (const char *)b, bl, NULL);
    if (field == 3 && wire == 2) set_str(out->text, sizeof out->text, (const char *)b, bl, &out->text_truncated);
}

static void f_rpc(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out)
{
    if (field == 2 && wire == 2) set_str(out->text, sizeof out->text, (const char *)b, bl, &out->text_truncated);
}

static void f_ignore(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out)
{
}

/* Envelope fields: cid (1) and the message (2..51). */
static void f_envelope(int field, int wire, uint64_t v, const uint8_t *b, size_t bl, lt_env_t *out)
{
    if (wire != 2) return;
    if (field == 1) {
        out->cid = parse_cid((const char *)b, bl);
        return;
    }
    pb_field_fn fn = f_ignore;
    lt_env_kind_t kind = LT_ENV_OTHER;
    switch (field) {
    case 2: kind = LT_ENV_CHANNEL, fn = f_id1; break;
    case 5: kind = LT_ENV_CHANNEL_MESSAGE; break;
    case 6: kind = LT_ENV_CHANNEL_ACK; break;
    case 11: kind = LT_ENV_ERROR, fn = f_error; break;
    case 12: kind = LT_ENV_MATCH, fn = f_id1; break;
    case 14: kind = LT_ENV_MATCH_DATA, fn = f_match_data; break;
    case 20: kind = LT_ENV_MM_MATCHED, fn = f_matched; break;
    case 22: kind = LT_ENV_MM_TICKET, fn = f_id1; break;
    case 24: kind = LT_ENV_RPC, fn = f_rpc; break;
    default: break;
    }
    out->kind = kind;
    if (!pb_walk(b, bl, fn, out)) out->kind = LT_ENV_BAD;
}

lt_env_kind_t lt_wire_decode(const char *msg, size_t len, bool binary, lt_env_t *out)
{
    out->kind = LT_ENV_BAD;
    out->cid = 0;
    out->code = 0;
    out->id[0] = out->text[0] = '\0';
    out->text_truncated = false;
    out->data_len = 0;
    if (!binary) return decode_json(msg, len, out);
    out->kind = LT_ENV_ACK; /* until a message field shows up */
    if (!pb_walk((const uint8_t *)msg, len, f_envelope, out)) return out->kind = LT_ENV_BAD;
    if (out->kind == LT_ENV_ACK && !out->cid) out->kind = LT_ENV_OTHER; /* an empty envelope */
    return out->kind;
}

/* ------------------------------------------------------------------------ */
/* Stamps                                                                   */

static const uint8_t stamp_magic[4] = {'L', 'T', 'S', '1'};

void lt_stamp_write(uint8_t out[LT_STAMP_LEN], uint64_t mono_ns, uint32_t machine)
{
    memcpy(out, stamp_magic, 4);
    for (int i = 0; i < 8; i++) out[4 + i] = (uint8_t)(mono_ns >> (8 * i));
    for (int i = 0; i < 4; i++) out[12 + i] = (uint8_t)(machine >> (8 * i));
}

bool lt_stamp_read(const uint8_t *data, size_t len, uint32_t machine, uint64_t *sent_ns)
{
    if (len < LT_STAMP_LEN || memcmp(data, stamp_magic, 4) != 0) return false;
    uint32_t m = 0;
    for (int i = 0; i < 4; i++) m |= (uint32_t)data[12 + i] << (8 * i);
    if (m != machine) return false;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++) t |= (uint64_t)data[4 + i] << (8 * i);
    *sent_ns = t;
    return true;
}

uint32_t lt_machine_tag(void)
{
    char id[128] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(id, sizeof id, f)) id[0] = '\0';
        fclose(f);
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}
