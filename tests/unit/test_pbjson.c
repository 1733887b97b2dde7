/* codec/pbjson.c: protobuf <-> protobuf-JSON by descriptor, base64 and
 * RFC 3339 timestamps in their protobuf-JSON forms.
 *
 * Expected protobuf bytes are written out by hand: a tag is
 * field << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited,
 * 5 fixed32), as a varint. JSON in the tests is written with single quotes
 * for readability; the helpers turn them into double quotes. */
#include "codec/pbjson.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kizuna/realtime.pb-c.h"
#include "kizuna/wkt.pb-c.h"

#define ENV (&nakama__realtime__envelope__descriptor)
/* A byte array literal and its length, as two arguments. */
#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* s with ' turned into " (into buf). */
static const char *dq(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);
    cr_assert_lt(n, size, "test JSON too long");
    for (size_t i = 0; i <= n; i++) buf[i] = s[i] == '\'' ? '"' : s[i];
    return buf;
}

static json_t *J(const char *sq)
{
    char buf[4096];
    json_error_t e;
    json_t *j = json_loads(dq(sq, buf, sizeof buf), 0, &e);
    cr_assert_not_null(j, "bad test JSON %s: %s", buf, e.text);
    return j;
}

static char *dump(const json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS); }

static char *hex(const uint8_t *b, size_t n)
{
    char *s = malloc(n * 3 + 1);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) sprintf(s + i * 3, "%02x ", b[i]);
    return s;
}

static void check_bytes(const char *what, const uint8_t *got, size_t gotlen, const uint8_t *want, size_t wantlen)
{
    if (gotlen != wantlen || memcmp(got, want, wantlen) != 0)
        cr_assert_fail("%s\n  got:  %s\n  want: %s", what, hex(got, gotlen), hex(want, wantlen));
}

/* Encoding the JSON sq as a message of type d gives exactly want. */
static void enc_bytes(const ProtobufCMessageDescriptor *d, const char *sq, const uint8_t *want, size_t wantlen)
{
    json_t *j = J(sq);
    char stack[256];
    kz_arena_t a;
    kz_arena_init(&a, stack, sizeof stack);
    uint8_t *out = NULL;
    size_t n = 0;
    char err[128];
    int rc = kz_pbjson_encode(d, j, &a, &out, &n, err);
    cr_assert_eq(rc, 0, "encode %s: %s", sq, err);
    cr_assert_str_empty(err);
    check_bytes(sq, out, n, want, wantlen);
    kz_arena_release(&a);
    json_decref(j);
}

/* Decoding data as a message of type d gives the JSON want (sorted keys). */
static void dec_json(const ProtobufCMessageDescriptor *d, const char *want, const uint8_t *data, size_t len)
{
    char buf[4096];
    json_t *j = kz_pbjson_decode(d, data, len);
    cr_assert_not_null(j, "decode to %s gave NULL", want);
    char *s = dump(j);
    cr_assert_str_eq(s, dq(want, buf, sizeof buf));
    free(s);
    json_decref(j);
}

static void dec_null(const char *what, const uint8_t *data, size_t len)
{
    json_t *j = kz_pbjson_decode(ENV, data, len);
    cr_assert_null(j, "%s decoded", what);
}

/* JSON in -> bytes -> JSON gives want (or in itself when want is NULL). */
static void round_trip(const ProtobufCMessageDescriptor *d, const char *in, const char *want)
{
    char buf[4096];
    json_t *j = J(in);
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    uint8_t *out = NULL;
    size_t n = 0;
    char err[128];
    cr_assert_eq(kz_pbjson_encode(d, j, &a, &out, &n, err), 0, "encode %s: %s", in, err);
    json_t *back = kz_pbjson_decode(d, out, n);
    cr_assert_not_null(back, "decode of %s", in);
    char *s = dump(back);
    cr_assert_str_eq(s, dq(want ? want : in, buf, sizeof buf), "round trip of %s", in);
    free(s);
    json_decref(back);
    json_decref(j);
    kz_arena_release(&a);
}

/* Encoding j (stolen) fails with an error naming field; nothing is output. */
static void enc_fails_j(const ProtobufCMessageDescriptor *d, json_t *j, const char *field)
{
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    uint8_t sentinel, *out = &sentinel;
    size_t n = 12345;
    char err[128] = "untouched";
    cr_assert_eq(kz_pbjson_encode(d, j, &a, &out, &n, err), -1, "encode of %s (field %s) succeeded", field,
                 field);
    cr_assert_neq(err[0], '\0', "empty error for %s", field);
    cr_assert_not_null(strstr(err, field), "error \"%s\" does not name %s", err, field);
    cr_assert_eq(out, &sentinel, "output set on failure");
    cr_assert_eq(n, 12345, "output length set on failure");
    kz_arena_release(&a);
    json_decref(j);
}

static void enc_fails(const ProtobufCMessageDescriptor *d, const char *sq, const char *field)
{
    enc_fails_j(d, J(sq), field);
}

/* ------------------------------------------------------------------------ */
/* Base64                                                                   */

static void check_decode(const char *in, const char *want, size_t wantlen)
{
    size_t n = 99;
    unsigned char *b = kz_pbjson_b64_decode(in, strlen(in), &n);
    cr_assert_not_null(b, "decode %s", in);
    cr_assert_eq(n, wantlen, "length of %s", in);
    cr_assert(memcmp(b, want, wantlen) == 0, "bytes of %s", in);
    kz_free(b);
}

Test(pbjson, base64_encode)
{
    struct {
        const char *in;
        size_t n;
        const char *out;
    } v[] = {
        {"", 0, ""},         {"f", 1, "Zg=="},          {"fo", 2, "Zm8="},
        {"foo", 3, "Zm9v"},  {"foob", 4, "Zm9vYg=="},   {"\xff\xfe\x00", 3, "//4A"},
        {"\xfb\xff", 2, "+/8="},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *s = kz_pbjson_b64_encode(v[i].in, v[i].n);
        cr_assert_str_eq(s, v[i].out);
        kz_free(s);
    }
}

Test(pbjson, base64_decode_variants)
{
    check_decode("", "", 0);
    check_decode("Zg==", "f", 1);
    check_decode("Zg", "f", 1);
    check_decode("Zm8=", "fo", 2);
    check_decode("Zm8", "fo", 2);
    check_decode("Zm9vYmFy", "foobar", 6);
    check_decode("//4A", "\xff\xfe\x00", 3);
    check_decode("__4A", "\xff\xfe\x00", 3);
    check_decode("-_8", "\xfb\xff", 2);
    check_decode("+/8=", "\xfb\xff", 2);
    const char *bad[] = {"Z", "Zg=", "Z===", "Zm9v!", "Zg==Zg==", "+_8=", "Zm 9v", "=Zg="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n;
        cr_assert_null(kz_pbjson_b64_decode(bad[i], strlen(bad[i]), &n), "%s", bad[i]);
    }
}

Test(pbjson, base64_round_trip_all_byte_values)
{
    unsigned char in[256];
    for (int i = 0; i < 256; i++) in[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof in; n += 37) {
        char *s = kz_pbjson_b64_encode(in, n);
        cr_assert_eq(strlen(s), (n + 2) / 3 * 4);
        size_t m = 99;
        unsigned char *b = kz_pbjson_b64_decode(s, strlen(s), &m);
        cr_assert_not_null(b);
        cr_assert_eq(m, n);
        cr_assert(memcmp(b, in, n) == 0);
        kz_free(b);
        kz_free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Encoding JSON -> exact bytes                                             */

Test(pbjson, encode_cid_and_empty_ping)
{
    /* cid: 1<<3|2 = 0x0a; ping: 32<<3|2 = 258 = varint 82 02, length 0 */
    enc_bytes(ENV, "{'cid':'1','ping':{}}", B(0x0a, 0x01, '1', 0x82, 0x02, 0x00));
}

Test(pbjson, encode_match_data)
{
    /* match_data = 14 -> 0x72; MatchData: match_id 1, presence 2 (UserPresence
     * user_id 1, session_id 2, username 3), op_code 3 varint, data 4,
     * reliable 5 varint. */
    enc_bytes(ENV,
              "{'match_data':{'match_id':'m1','presence':{'user_id':'u','session_id':'s','username':'n'},"
              "'op_code':'7','data':'AAH/','reliable':true}}",
              B(0x72, 0x18,                                                 /* match_data, 24 bytes */
                0x0a, 0x02, 'm', '1',                                       /* match_id */
                0x12, 0x09, 0x0a, 0x01, 'u', 0x12, 0x01, 's', 0x1a, 0x01, 'n', /* presence */
                0x18, 0x07,                                                 /* op_code 7 */
                0x22, 0x03, 0x00, 0x01, 0xff,                               /* data */
                0x28, 0x01));                                               /* reliable */
}

Test(pbjson, encode_channel_message_timestamp_and_zero_wrappers)
{
    /* channel_message = 5 -> 0x2a. 2026-11-23T10:00:00Z is 1795428000 s;
     * .123 is 123000000 ns. code (3) is an Int32Value holding 0 and
     * persistent (9) a BoolValue holding false: both present, empty. */
    enc_bytes(ENV,
              "{'channel_message':{'channel_id':'c','code':0,'create_time':'2026-11-23T10:00:00.123Z',"
              "'persistent':false}}",
              B(0x2a, 0x14,                                   /* channel_message, 20 bytes */
                0x0a, 0x01, 'c',                              /* channel_id */
                0x1a, 0x00,                                   /* code: Int32Value{} */
                0x3a, 0x0b,                                   /* create_time: Timestamp */
                0x08, 0xa0, 0x9d, 0x90, 0xd8, 0x06,           /*   seconds 1795428000 */
                0x10, 0xc0, 0xa9, 0xd3, 0x3a,                 /*   nanos 123000000 */
                0x4a, 0x00));                                 /* persistent: BoolValue{} */
}

Test(pbjson, encode_error_with_context_map)
{
    /* error = 11 -> 0x5a; Error: code 1, message 2, context 3 as entries
     * {key 1, value 2}. */
    enc_bytes(ENV, "{'error':{'code':3,'message':'bad','context':{'k':'v'}}}",
              B(0x5a, 0x0f, 0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd', 0x1a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v'));
}

Test(pbjson, encode_status_update_wrapper_absent_vs_empty)
{
    /* status_update = 29 -> 29<<3|2 = 234 = varint ea 01 */
    enc_bytes(ENV, "{'status_update':{}}", B(0xea, 0x01, 0x00));
    enc_bytes(ENV, "{'status_update':{'status':null}}", B(0xea, 0x01, 0x00));
    enc_bytes(ENV, "{'status_update':{'status':''}}", B(0xea, 0x01, 0x02, 0x0a, 0x00));
    enc_bytes(ENV, "{'status_update':{'status':'away'}}", B(0xea, 0x01, 0x08, 0x0a, 0x06, 0x0a, 0x04, 'a', 'w', 'a', 'y'));
}

Test(pbjson, encode_bool_wrapper_false_is_present)
{
    /* channel_join = 3 -> 0x1a; ChannelJoin.persistence = 3 -> 0x1a */
    enc_bytes(ENV, "{'channel_join':{'persistence':false}}", B(0x1a, 0x02, 0x1a, 0x00));
    enc_bytes(ENV, "{'channel_join':{'hidden':true}}", B(0x1a, 0x04, 0x22, 0x02, 0x08, 0x01));
}

Test(pbjson, encode_oneof_member_present_even_when_empty)
{
    /* match_join = 16 -> 16<<3|2 = 130 = varint 82 01 */
    enc_bytes(ENV, "{'match_join':{'match_id':''}}", B(0x82, 0x01, 0x02, 0x0a, 0x00));
    enc_bytes(ENV, "{'match_join':{'token':'t'}}", B(0x82, 0x01, 0x03, 0x12, 0x01, 't'));
}

Test(pbjson, encode_repeated_strings)
{
    /* status_follow = 26 -> 210 = varint d2 01; user_ids 1, usernames 2 */
    enc_bytes(ENV, "{'status_follow':{'user_ids':['a','b'],'usernames':['c']}}",
              B(0xd2, 0x01, 0x09, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b', 0x12, 0x01, 'c'));
    enc_bytes(ENV, "{'status_follow':{'user_ids':[]}}", B(0xd2, 0x01, 0x00));
}

Test(pbjson, encode_double_map_infinity)
{
    /* matchmaker_add = 19 -> 154 = varint 9a 01; numeric_properties = 5;
     * entry value 2 is a double: 2<<3|1 = 0x11, 8 bytes little-endian. */
    enc_bytes(ENV, "{'matchmaker_add':{'numeric_properties':{'b':'Infinity'}}}",
              B(0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f));
    enc_bytes(ENV, "{'matchmaker_add':{'numeric_properties':{'b':'-Infinity'}}}",
              B(0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0xff));
    enc_bytes(ENV, "{'matchmaker_add':{'numeric_properties':{'b':1.5}}}",
              B(0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f));
}

Test(pbjson, encode_nan_is_a_nan_double)
{
    json_t *j = J("{'matchmaker_add':{'numeric_properties':{'b':'NaN'}}}");
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    uint8_t *out;
    size_t n;
    char err[128];
    cr_assert_eq(kz_pbjson_encode(ENV, j, &a, &out, &n, err), 0, "%s", err);
    cr_assert_eq(n, 17);
    cr_assert(memcmp(out, (const uint8_t[]){0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11}, 9) == 0);
    double v;
    memcpy(&v, out + 9, 8); /* little-endian host */
    cr_assert(isnan(v));
    kz_arena_release(&a);
    json_decref(j);
}

Test(pbjson, encode_int64_accepts_integer_real_and_string)
{
    const uint8_t want[] = {0x72, 0x02, 0x18, 0x07};
    enc_bytes(ENV, "{'match_data':{'op_code':7}}", want, sizeof want);
    enc_bytes(ENV, "{'match_data':{'op_code':7.0}}", want, sizeof want);
    enc_bytes(ENV, "{'match_data':{'op_code':'7'}}", want, sizeof want);
    /* negative int64: ten-byte varint */
    enc_bytes(ENV, "{'match_data':{'op_code':'-1'}}",
              B(0x72, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    enc_bytes(ENV, "{'match_data':{'op_code':'9223372036854775807'}}",
              B(0x72, 0x0a, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f));
    enc_bytes(ENV, "{'match_data':{'op_code':'-9223372036854775808'}}",
              B(0x72, 0x0b, 0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01));
}

Test(pbjson, encode_int32_accepts_integer_real_and_string)
{
    const uint8_t want[] = {0x1a, 0x02, 0x10, 0x02};
    enc_bytes(ENV, "{'channel_join':{'type':2}}", want, sizeof want);
    enc_bytes(ENV, "{'channel_join':{'type':2.0}}", want, sizeof want);
    enc_bytes(ENV, "{'channel_join':{'type':'2'}}", want, sizeof want);
    /* a negative int32 is sign-extended to ten bytes on the wire */
    enc_bytes(ENV, "{'channel_join':{'type':-1}}",
              B(0x1a, 0x0b, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    enc_bytes(ENV, "{'channel_join':{'type':'-2147483648'}}",
              B(0x1a, 0x0b, 0x10, 0x80, 0x80, 0x80, 0x80, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x01));
    enc_bytes(ENV, "{'channel_join':{'type':2147483647}}", B(0x1a, 0x06, 0x10, 0xff, 0xff, 0xff, 0xff, 0x07));
}

Test(pbjson, encode_uint32_range)
{
    const ProtobufCMessageDescriptor *d = &kizuna__wkt__uint32_value__descriptor;
    enc_bytes(d, "{'value':4294967295}", B(0x08, 0xff, 0xff, 0xff, 0xff, 0x0f));
    enc_bytes(d, "{'value':'4294967295'}", B(0x08, 0xff, 0xff, 0xff, 0xff, 0x0f));
    enc_bytes(d, "{'value':0}", (const uint8_t *)"", 0); /* empty message */
}

Test(pbjson, encode_leaves_out_defaults)
{
    enc_bytes(ENV, "{'match_data':{'match_id':'','op_code':0,'reliable':false,'data':''}}", B(0x72, 0x00));
    enc_bytes(ENV, "{}", (const uint8_t *)"", 0);
}

Test(pbjson, encode_null_values_are_absent)
{
    enc_bytes(ENV, "{'cid':null,'ping':{}}", B(0x82, 0x02, 0x00));
    enc_bytes(ENV, "{'cid':'x','ping':null}", B(0x0a, 0x01, 'x'));
    enc_bytes(ENV, "{'status_follow':{'user_ids':null}}", B(0xd2, 0x01, 0x00));
}

Test(pbjson, encode_url_safe_unpadded_bytes)
{
    enc_bytes(ENV, "{'match_data':{'data':'AAH_'}}", B(0x72, 0x05, 0x22, 0x03, 0x00, 0x01, 0xff));
    enc_bytes(ENV, "{'match_data':{'data':'AAE'}}", B(0x72, 0x04, 0x22, 0x02, 0x00, 0x01));
}

Test(pbjson, encode_into_arena_without_buffer)
{
    json_t *j = J("{'cid':'abc','pong':{}}");
    kz_arena_t a;
    kz_arena_init(&a, NULL, 0);
    uint8_t *out = NULL;
    size_t n = 0;
    char err[128];
    cr_assert_eq(kz_pbjson_encode(ENV, j, &a, &out, &n, err), 0, "%s", err);
    check_bytes("cid+pong", out, n, B(0x0a, 0x03, 'a', 'b', 'c', 0x8a, 0x02, 0x00));
    cr_assert_not_null(a.blocks);
    kz_arena_release(&a);
    json_decref(j);
}

/* ------------------------------------------------------------------------ */
/* Decoding bytes -> JSON                                                   */

Test(pbjson, decode_cid_and_ping)
{
    dec_json(ENV, "{'cid':'1','ping':{}}", B(0x0a, 0x01, '1', 0x82, 0x02, 0x00));
}

Test(pbjson, decode_match_data)
{
    dec_json(ENV,
             "{'match_data':{'data':'AAH/','match_id':'m1','op_code':'7',"
             "'presence':{'session_id':'s','user_id':'u','username':'n'},'reliable':true}}",
             B(0x72, 0x18, 0x0a, 0x02, 'm', '1', 0x12, 0x09, 0x0a, 0x01, 'u', 0x12, 0x01, 's', 0x1a, 0x01, 'n',
               0x18, 0x07, 0x22, 0x03, 0x00, 0x01, 0xff, 0x28, 0x01));
}

Test(pbjson, decode_int64_as_string)
{
    dec_json(ENV, "{'match_data':{'op_code':'-1'}}",
             B(0x72, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    dec_json(ENV, "{'match_data':{'op_code':'9223372036854775807'}}",
             B(0x72, 0x0a, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f));
}

Test(pbjson, decode_channel_message_timestamp_and_zero_wrappers)
{
    dec_json(ENV,
             "{'channel_message':{'channel_id':'c','code':0,'create_time':'2026-11-23T10:00:00.123Z',"
             "'persistent':false}}",
             B(0x2a, 0x14, 0x0a, 0x01, 'c', 0x1a, 0x00, 0x3a, 0x0b, 0x08, 0xa0, 0x9d, 0x90, 0xd8, 0x06, 0x10, 0xc0,
               0xa9, 0xd3, 0x3a, 0x4a, 0x00));
}

Test(pbjson, decode_error_with_context_map)
{
    dec_json(ENV, "{'error':{'code':3,'context':{'k':'v'},'message':'bad'}}",
             B(0x5a, 0x0f, 0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd', 0x1a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v'));
}

Test(pbjson, decode_map_entry_with_missing_key_and_value)
{
    /* an empty entry is key "" -> value "" */
    dec_json(ENV, "{'error':{'context':{'':''}}}", B(0x5a, 0x02, 0x1a, 0x00));
}

Test(pbjson, decode_status_update_wrapper_absent_vs_empty)
{
    dec_json(ENV, "{'status_update':{}}", B(0xea, 0x01, 0x00));
    dec_json(ENV, "{'status_update':{'status':''}}", B(0xea, 0x01, 0x02, 0x0a, 0x00));
}

Test(pbjson, decode_oneof_member_present_even_when_empty)
{
    dec_json(ENV, "{'match_join':{'match_id':''}}", B(0x82, 0x01, 0x02, 0x0a, 0x00));
    dec_json(ENV, "{'match_join':{'token':'t'}}", B(0x82, 0x01, 0x03, 0x12, 0x01, 't'));
}

Test(pbjson, decode_repeated_strings)
{
    dec_json(ENV, "{'status_follow':{'user_ids':['a','b'],'usernames':['c']}}",
             B(0xd2, 0x01, 0x09, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b', 0x12, 0x01, 'c'));
}

Test(pbjson, decode_double_map_special_values)
{
    dec_json(ENV, "{'matchmaker_add':{'numeric_properties':{'b':'Infinity'}}}",
             B(0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f));
    dec_json(ENV, "{'matchmaker_add':{'numeric_properties':{'b':'-Infinity'}}}",
             B(0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0xff));
    dec_json(ENV, "{'matchmaker_add':{'numeric_properties':{'b':'NaN'}}}",
             B(0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f));
    dec_json(ENV, "{'matchmaker_add':{'numeric_properties':{'b':1.5}}}",
             B(0x9a, 0x01, 0x0e, 0x2a, 0x0c, 0x0a, 0x01, 'b', 0x11, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f));
}

Test(pbjson, decode_leaves_out_defaults)
{
    /* ChannelJoin with target "" (1) and type 0 (2) written explicitly */
    dec_json(&nakama__realtime__channel_join__descriptor, "{}", B(0x0a, 0x00, 0x10, 0x00));
    dec_json(ENV, "{'channel_join':{}}", B(0x1a, 0x04, 0x0a, 0x00, 0x10, 0x00));
    /* MatchData with op_code 0 and reliable false written explicitly */
    dec_json(ENV, "{'match_data':{}}", B(0x72, 0x04, 0x18, 0x00, 0x28, 0x00));
    dec_json(ENV, "{}", B(0x0a, 0x00)); /* cid "" */
}

Test(pbjson, decode_empty_input_is_empty_object)
{
    dec_json(ENV, "{}", (const uint8_t *)"", 0);
}

Test(pbjson, decode_empty_oneof_message_member)
{
    /* pong = 33 -> 33<<3|2 = 266 = varint 8a 02, no bytes */
    dec_json(ENV, "{'pong':{}}", B(0x8a, 0x02, 0x00));
    dec_json(&nakama__realtime__pong__descriptor, "{}", (const uint8_t *)"", 0);
}

Test(pbjson, decode_last_oneof_member_wins)
{
    dec_json(ENV, "{'pong':{}}", B(0x82, 0x02, 0x00, 0x8a, 0x02, 0x00));
}

Test(pbjson, decode_last_scalar_wins)
{
    dec_json(ENV, "{'cid':'b'}", B(0x0a, 0x01, 'a', 0x0a, 0x01, 'b'));
}

Test(pbjson, decode_skips_unknown_fields)
{
    /* field 99 varint: 99<<3|0 = 792 = varint 98 06 */
    dec_json(ENV, "{'cid':'x'}", B(0x98, 0x06, 0x01, 0x0a, 0x01, 'x'));
    /* field 100 length-delimited (a2 06), 101 fixed32 (ad 06), 102 fixed64 (b1 06) */
    dec_json(ENV, "{'cid':'x'}",
             B(0xa2, 0x06, 0x02, 'a', 'b', 0xad, 0x06, 1, 2, 3, 4, 0xb1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x01,
               'x'));
    /* inside a nested message */
    dec_json(ENV, "{'match_data':{'match_id':'m'}}", B(0x72, 0x06, 0x98, 0x06, 0x01, 0x0a, 0x01, 'm'));
}

Test(pbjson, decode_large_message)
{
    /* bigger than the decoder's stack arena: spills to the heap */
    enum { N = 10000 };
    static uint8_t msg[N + 8];
    size_t n = 0;
    msg[n++] = 0x72; /* match_data, length N + 3 */
    msg[n++] = (uint8_t)(((N + 3) & 0x7f) | 0x80);
    msg[n++] = (uint8_t)((N + 3) >> 7);
    msg[n++] = 0x22; /* data, length N */
    msg[n++] = (uint8_t)((N & 0x7f) | 0x80);
    msg[n++] = (uint8_t)(N >> 7);
    for (size_t i = 0; i < N; i++) msg[n++] = (uint8_t)(i * 7);
    json_t *j = kz_pbjson_decode(ENV, msg, n);
    cr_assert_not_null(j);
    const char *data = json_string_value(json_object_get(json_object_get(j, "match_data"), "data"));
    cr_assert_not_null(data);
    char *want = kz_pbjson_b64_encode(msg + 6, N);
    cr_assert_str_eq(data, want);
    kz_free(want);
    json_decref(j);
}

/* ------------------------------------------------------------------------ */
/* Bad wire input                                                           */

Test(pbjson, decode_rejects_garbage)
{
    dec_null("ff ff ff", B(0xff, 0xff, 0xff));
    dec_null("tag only", B(0x0a));
    dec_null("unterminated varint", B(0x98));
    dec_null("wrong wire type for cid", B(0x08, 0x01));
}

Test(pbjson, decode_rejects_truncated_fields)
{
    dec_null("cid says 5 bytes, has 2", B(0x0a, 0x05, 'a', 'b'));
    dec_null("match_data says 5 bytes, has 2", B(0x72, 0x05, 0x0a, 0x01));
    dec_null("nested string overruns its message", B(0x72, 0x03, 0x0a, 0x05, 'a', 'b', 'c', 'd', 'e'));
    dec_null("fixed64 cut short", B(0x9a, 0x01, 0x07, 0x2a, 0x05, 0x0a, 0x01, 'b', 0x11, 0x00));
}

Test(pbjson, decode_rejects_invalid_utf8)
{
    dec_null("cid", B(0x0a, 0x02, 0xc3, 0x28));
    dec_null("repeated string", B(0xd2, 0x01, 0x04, 0x0a, 0x02, 0xc3, 0x28));
    dec_null("map key", B(0x5a, 0x08, 0x1a, 0x06, 0x0a, 0x01, 0xff, 0x12, 0x01, 'v'));
    dec_null("map value", B(0x5a, 0x08, 0x1a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 0xff));
    dec_null("wrapped string", B(0xea, 0x01, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff));
    dec_null("nested presence username",
             B(0x72, 0x05, 0x12, 0x03, 0x1a, 0x01, 0xff));
}

Test(pbjson, decode_rejects_timestamp_nanos_out_of_range)
{
    dec_null("nanos 1000000000", B(0x2a, 0x08, 0x3a, 0x06, 0x10, 0x80, 0x94, 0xeb, 0xdc, 0x03));
    dec_null("nanos -1",
             B(0x2a, 0x0d, 0x3a, 0x0b, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
}

/* ------------------------------------------------------------------------ */
/* Round trips JSON -> bytes -> JSON                                        */

#define PRESENCE "{'persistence':true,'session_id':'s1','status':'hi','user_id':'u1','username':'a'}"
#define PRESENCE2 "{'session_id':'s2','user_id':'u2','username':'b'}"

Test(pbjson, round_trip_chat)
{
    round_trip(ENV, "{'cid':'abc','ping':{}}", NULL);
    round_trip(ENV, "{'pong':{}}", NULL);
    round_trip(ENV,
               "{'channel':{'group_id':'g','id':'c1','presences':[" PRESENCE "," PRESENCE2 "],'room_name':'r','self':" PRESENCE
               ",'user_id_one':'x','user_id_two':'y'}}",
               NULL);
    round_trip(ENV, "{'channel_join':{'hidden':true,'persistence':false,'target':'lobby','type':1}}", NULL);
    round_trip(ENV, "{'channel_leave':{'channel_id':'c'}}", NULL);
    round_trip(ENV,
               "{'channel_message':{'channel_id':'c','code':0,'content':'{\\'t\\':\\'h\u00e9 \u2713\\'}',"
               "'create_time':'2026-11-23T10:00:00.123Z','group_id':'g','message_id':'m','persistent':true,"
               "'room_name':'r','sender_id':'s','update_time':'2026-11-23T10:00:01.123456789Z',"
               "'user_id_one':'a','user_id_two':'b','username':'n'}}",
               NULL);
    round_trip(ENV,
               "{'channel_message_ack':{'channel_id':'c','code':-3,'create_time':'1970-01-01T00:00:00Z',"
               "'message_id':'m','persistent':false,'update_time':'2024-02-29T12:00:00.500Z','username':'u'}}",
               NULL);
    round_trip(ENV, "{'channel_message_send':{'channel_id':'c','content':'{}'}}", NULL);
    round_trip(ENV,
               "{'channel_presence_event':{'channel_id':'c','joins':[" PRESENCE "],'leaves':[" PRESENCE2 "]}}",
               NULL);
}

Test(pbjson, round_trip_errors_and_rpc)
{
    round_trip(ENV, "{'cid':'9','error':{'code':3,'context':{'a':'1','b':''},'message':'bad'}}", NULL);
    round_trip(ENV, "{'rpc':{'http_key':'k','id':'f','payload':'p'}}", NULL);
    round_trip(ENV,
               "{'notifications':{'notifications':[{'code':-5,'content':'{}','create_time':'2024-02-29T12:00:00Z',"
               "'id':'n','persistent':true,'sender_id':'s','subject':'hi'},{'id':'n2'}]}}",
               NULL);
}

Test(pbjson, round_trip_matches)
{
    round_trip(ENV,
               "{'match':{'authoritative':true,'label':'','match_id':'m','presences':[" PRESENCE "],'self':" PRESENCE2
               ",'size':2}}",
               NULL);
    round_trip(ENV, "{'match_create':{'name':'n'}}", NULL);
    round_trip(ENV,
               "{'match_data':{'data':'AAH/','match_id':'m','op_code':'-9223372036854775808','presence':" PRESENCE
               ",'reliable':true}}",
               NULL);
    round_trip(ENV,
               "{'match_data_send':{'data':'+/8=','match_id':'m','op_code':'1','presences':[" PRESENCE2
               "],'reliable':true}}",
               NULL);
    round_trip(ENV, "{'match_join':{'match_id':'m','metadata':{'k':'v','x':''}}}", NULL);
    round_trip(ENV, "{'match_join':{'token':'t'}}", NULL);
    round_trip(ENV, "{'match_join':{'match_id':''}}", NULL);
    round_trip(ENV, "{'match_leave':{'match_id':'m'}}", NULL);
}

Test(pbjson, round_trip_matchmaker)
{
    round_trip(ENV,
               "{'matchmaker_add':{'count_multiple':2,'max_count':4,'min_count':2,"
               "'numeric_properties':{'rank':1.5,'skill':-2.25},'query':'*','string_properties':{'mode':'ffa',"
               "'region':'eu'}}}",
               NULL);
    round_trip(ENV, "{'matchmaker_add':{'count_multiple':0}}", NULL);
    round_trip(ENV,
               "{'matchmaker_matched':{'match_id':'m','self':{'party_id':'p','presence':" PRESENCE2
               "},'ticket':'t','users':[{'numeric_properties':{'r':1.5},'party_id':'p','presence':" PRESENCE
               ",'string_properties':{'a':'b'}},{}]}}",
               NULL);
    round_trip(ENV, "{'matchmaker_matched':{'token':'tok'}}", NULL);
    round_trip(ENV, "{'matchmaker_remove':{'ticket':'t'}}", NULL);
}

Test(pbjson, round_trip_status_and_streams)
{
    round_trip(ENV, "{'status':{'presences':[" PRESENCE "," PRESENCE2 "]}}", NULL);
    round_trip(ENV, "{'status_follow':{'user_ids':['a','b'],'usernames':['c']}}", NULL);
    round_trip(ENV, "{'status_presence_event':{'joins':[" PRESENCE "],'leaves':[" PRESENCE2 "]}}", NULL);
    round_trip(ENV, "{'status_unfollow':{'user_ids':['\u00e9']}}", NULL);
    round_trip(ENV, "{'status_update':{'status':''}}", NULL);
    round_trip(ENV, "{'status_update':{}}", NULL);
    round_trip(ENV,
               "{'stream_data':{'data':'d','reliable':true,'sender':" PRESENCE
               ",'stream':{'label':'l','mode':2,'subcontext':'sc','subject':'sj'}}}",
               NULL);
}

Test(pbjson, round_trip_parties)
{
    round_trip(ENV,
               "{'party':{'hidden':true,'label':'l','leader':" PRESENCE ",'max_size':4,'open':true,'party_id':'p',"
               "'presences':[" PRESENCE "," PRESENCE2 "],'self':" PRESENCE2 "}}",
               NULL);
    round_trip(ENV, "{'party_create':{'hidden':true,'label':'l','max_size':4,'open':true}}", NULL);
    round_trip(ENV,
               "{'party_data':{'data':'AAH/','op_code':'9223372036854775807','party_id':'p','presence':" PRESENCE
               "}}",
               NULL);
    round_trip(ENV,
               "{'party_matchmaker_add':{'count_multiple':0,'max_count':2,'min_count':2,'numeric_properties':"
               "{'a':'NaN'},'party_id':'p','query':'q'}}",
               NULL);
    round_trip(ENV, "{'party_promote':{'party_id':'p','presence':" PRESENCE2 "}}", NULL);
}

Test(pbjson, round_trip_nan_and_infinity)
{
    round_trip(ENV,
               "{'matchmaker_add':{'numeric_properties':{'a':'NaN','b':'Infinity','c':'-Infinity','d':1.5,"
               "'e':0.0}}}",
               NULL);
}

Test(pbjson, round_trip_normalises_input_forms)
{
    round_trip(ENV, "{'match_data':{'op_code':7}}", "{'match_data':{'op_code':'7'}}");
    round_trip(ENV, "{'match_data':{'op_code':7.0}}", "{'match_data':{'op_code':'7'}}");
    round_trip(ENV, "{'match_data':{'op_code':'-7'}}", "{'match_data':{'op_code':'-7'}}");
    round_trip(ENV, "{'channel_join':{'type':'3'}}", "{'channel_join':{'type':3}}");
    round_trip(ENV, "{'match_data':{'data':'AAH_'}}", "{'match_data':{'data':'AAH/'}}");
    round_trip(ENV, "{'match_data':{'data':'AAE'}}", "{'match_data':{'data':'AAE='}}");
    round_trip(ENV, "{'channel_message':{'create_time':'2026-11-23T11:30:00.120000+01:30'}}",
               "{'channel_message':{'create_time':'2026-11-23T10:00:00.120Z'}}");
    round_trip(ENV, "{'match_data':{'match_id':'','op_code':'0','reliable':false,'data':''}}",
               "{'match_data':{}}");
    round_trip(ENV, "{'cid':null,'ping':{}}", "{'ping':{}}");
    round_trip(ENV, "{'status_update':{'status':null}}", "{'status_update':{}}");
    round_trip(ENV, "{'channel_join':{'persistence':null,'hidden':false}}", "{'channel_join':{'hidden':false}}");
    round_trip(ENV, "{'matchmaker_add':{'numeric_properties':{'a':2}}}",
               "{'matchmaker_add':{'numeric_properties':{'a':2.0}}}");
}

/* ------------------------------------------------------------------------ */
/* Bad JSON input                                                           */

Test(pbjson, encode_rejects_unknown_key)
{
    enc_fails(ENV, "{'cid':'1','bogus':1}", "bogus");
    enc_fails(ENV, "{'match_data':{'bogus':true}}", "bogus");
}

Test(pbjson, encode_rejects_wrong_value_types)
{
    enc_fails(ENV, "{'match_data':{'reliable':'true'}}", "reliable");
    enc_fails(ENV, "{'match_data':{'reliable':1}}", "reliable");
    enc_fails(ENV, "{'cid':{}}", "cid");
    enc_fails(ENV, "{'cid':5}", "cid");
    enc_fails(ENV, "{'cid':true}", "cid");
    enc_fails(ENV, "{'cid':['1']}", "cid");
    enc_fails(ENV, "{'ping':[]}", "ping");
    enc_fails(ENV, "{'ping':'x'}", "ping");
    enc_fails(ENV, "{'match_data':{'data':5}}", "data");
    enc_fails(ENV, "{'match_data':{'presence':[]}}", "presence");
    enc_fails(ENV, "{'status_follow':{'user_ids':'a'}}", "user_ids");
    enc_fails(ENV, "{'status_follow':{'user_ids':[1]}}", "user_ids");
    enc_fails(ENV, "{'status_follow':{'user_ids':[null]}}", "user_ids");
    enc_fails(ENV, "{'status':{'presences':{}}}", "presences");
    enc_fails(ENV, "{'status':{'presences':['x']}}", "presences");
    enc_fails(ENV, "{'error':{'context':[]}}", "context");
    enc_fails(ENV, "{'error':{'context':'x'}}", "context");
    enc_fails(ENV, "{'status_update':{'status':5}}", "status");
    enc_fails(ENV, "{'channel_join':{'persistence':'yes'}}", "persistence");
    enc_fails(ENV, "{'channel_message':{'code':'x'}}", "code");
}

Test(pbjson, encode_rejects_bad_map_values)
{
    /* the error names the entry's value field */
    enc_fails(ENV, "{'error':{'context':{'k':1}}}", "value");
    enc_fails(ENV, "{'matchmaker_add':{'numeric_properties':{'a':true}}}", "value");
    enc_fails(ENV, "{'matchmaker_add':{'numeric_properties':{'a':'nan'}}}", "value");
    enc_fails(ENV, "{'matchmaker_add':{'numeric_properties':{'a':'Inf'}}}", "value");
}

Test(pbjson, encode_rejects_int32_out_of_range)
{
    enc_fails(ENV, "{'channel_join':{'type':'2147483648'}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':2147483648}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':-2147483649}}", "type");
    enc_fails(ENV, "{'matchmaker_add':{'count_multiple':4294967296}}", "count_multiple");
}

Test(pbjson, encode_rejects_bad_integers)
{
    enc_fails(ENV, "{'channel_join':{'type':1.5}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':'1.5'}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':''}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':'-'}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':' 1'}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':'0x10'}}", "type");
    enc_fails(ENV, "{'channel_join':{'type':true}}", "type");
    enc_fails(ENV, "{'match_data':{'op_code':1e19}}", "op_code");
    enc_fails(ENV, "{'match_data':{'op_code':'abc'}}", "op_code");
}

Test(pbjson, encode_rejects_int64_out_of_range)
{
    enc_fails(ENV, "{'match_data':{'op_code':'9223372036854775808'}}", "op_code");
    enc_fails(ENV, "{'match_data':{'op_code':'-9223372036854775809'}}", "op_code");
    enc_fails(ENV, "{'match_data':{'op_code':'99999999999999999999999'}}", "op_code");
    enc_fails(ENV, "{'match_data':{'op_code':9223372036854775808.0}}", "op_code");
}

Test(pbjson, encode_rejects_negative_or_big_uint32)
{
    const ProtobufCMessageDescriptor *d = &kizuna__wkt__uint32_value__descriptor;
    enc_fails(d, "{'value':-1}", "value");
    enc_fails(d, "{'value':'-1'}", "value");
    enc_fails(d, "{'value':-1.0}", "value");
    enc_fails(d, "{'value':4294967296}", "value");
    enc_fails(d, "{'value':'4294967296'}", "value");
}

Test(pbjson, encode_rejects_bad_base64)
{
    enc_fails(ENV, "{'match_data':{'data':'A'}}", "data");
    enc_fails(ENV, "{'match_data':{'data':'AA!='}}", "data");
    enc_fails(ENV, "{'match_data':{'data':'+_8='}}", "data");
}

Test(pbjson, encode_rejects_bad_time)
{
    enc_fails(ENV, "{'channel_message':{'create_time':'yesterday'}}", "create_time");
    enc_fails(ENV, "{'channel_message':{'create_time':'2026-13-01T00:00:00Z'}}", "create_time");
    enc_fails(ENV, "{'channel_message':{'create_time':'2026-11-23T10:00:00'}}", "create_time");
    enc_fails(ENV, "{'channel_message':{'create_time':1795428000}}", "create_time");
    enc_fails(ENV, "{'channel_message':{'update_time':{}}}", "update_time");
}

Test(pbjson, encode_rejects_embedded_nul)
{
    json_t *j = json_object();
    json_object_set_new(j, "cid", json_stringn("a\0b", 3));
    enc_fails_j(ENV, j, "cid");
    j = J("{'status_follow':{'user_ids':['ok']}}");
    json_array_append_new(json_object_get(json_object_get(j, "status_follow"), "user_ids"), json_stringn("\0", 1));
    enc_fails_j(ENV, j, "user_ids");
    j = J("{'status_update':{}}");
    json_object_set_new(json_object_get(j, "status_update"), "status", json_stringn("x\0", 2));
    enc_fails_j(ENV, j, "status");
}

Test(pbjson, encode_rejects_non_object_top)
{
    enc_fails_j(ENV, json_array(), "Envelope");
    enc_fails_j(ENV, json_string("{}"), "Envelope");
    enc_fails_j(ENV, json_null(), "Envelope");
    enc_fails_j(ENV, json_integer(1), "Envelope");
}

/* ------------------------------------------------------------------------ */
/* Timestamps                                                               */

static void fmt(int64_t sec, int32_t nanos, const char *want)
{
    char out[40];
    size_t n = kz_pbjson_time_format(sec, nanos, out);
    cr_assert_str_eq(out, want, "format(%lld, %d)", (long long)sec, nanos);
    cr_assert_eq(n, strlen(want));
}

static void parses(const char *s, int64_t sec, int32_t nanos)
{
    int64_t gs = -7;
    int32_t gn = -7;
    cr_assert(kz_pbjson_time_parse(s, strlen(s), &gs, &gn), "parse %s", s);
    cr_assert_eq(gs, sec, "seconds of %s: %lld", s, (long long)gs);
    cr_assert_eq(gn, nanos, "nanos of %s: %d", s, gn);
}

static void rejects(const char *s)
{
    int64_t sec;
    int32_t nanos;
    cr_assert_not(kz_pbjson_time_parse(s, strlen(s), &sec, &nanos), "accepted %s", s);
}

Test(pbjson, time_format_epoch_and_negative)
{
    fmt(0, 0, "1970-01-01T00:00:00Z");
    fmt(-1, 0, "1969-12-31T23:59:59Z");
    fmt(-86400, 0, "1969-12-31T00:00:00Z");
    fmt(-86401, 0, "1969-12-30T23:59:59Z");
    fmt(-62135596800, 0, "0001-01-01T00:00:00Z");
}

Test(pbjson, time_format_fraction_digits)
{
    fmt(0, 123000000, "1970-01-01T00:00:00.123Z");
    fmt(0, 123456000, "1970-01-01T00:00:00.123456Z");
    fmt(0, 1, "1970-01-01T00:00:00.000000001Z");
    fmt(0, 1000, "1970-01-01T00:00:00.000001Z");
    fmt(0, 1000000, "1970-01-01T00:00:00.001Z");
    fmt(0, 999999999, "1970-01-01T00:00:00.999999999Z");
    fmt(0, 100000000, "1970-01-01T00:00:00.100Z");
    fmt(-1, 500000000, "1969-12-31T23:59:59.500Z");
}

Test(pbjson, time_format_calendar)
{
    fmt(253402300799, 0, "9999-12-31T23:59:59Z");
    fmt(1709208000, 0, "2024-02-29T12:00:00Z");
    fmt(1709251199, 0, "2024-02-29T23:59:59Z");
    fmt(1709251200, 0, "2024-03-01T00:00:00Z");
    fmt(951782400, 0, "2000-02-29T00:00:00Z");
    fmt(1795428000, 0, "2026-11-23T10:00:00Z");
}

Test(pbjson, time_parse_zone_and_separator_case)
{
    parses("1970-01-01T00:00:00Z", 0, 0);
    parses("1970-01-01T00:00:00z", 0, 0);
    parses("1970-01-01t00:00:00Z", 0, 0);
    parses("2026-11-23T10:00:00.123Z", 1795428000, 123000000);
}

Test(pbjson, time_parse_offsets_to_utc)
{
    /* 2024-01-01T00:00:00Z is 1704067200 */
    parses("2024-01-01T00:00:00+00:00", 1704067200, 0);
    parses("2024-01-01T00:00:00-00:00", 1704067200, 0);
    parses("2024-01-01T05:30:00+05:30", 1704067200, 0);
    parses("2024-01-01T00:00:00+05:30", 1704067200 - 19800, 0);
    parses("2023-12-31T23:00:00-01:00", 1704067200, 0);
    parses("2024-01-01T00:00:00-01:00", 1704067200 + 3600, 0);
    parses("2024-01-01T00:00:00.5+23:59", 1704067200 - 86340, 500000000);
}

Test(pbjson, time_parse_fraction_digits)
{
    const char *frac = "123456789";
    const int32_t want[] = {0,        100000000, 120000000, 123000000, 123400000,
                            123450000, 123456000, 123456700, 123456780, 123456789};
    for (int k = 1; k <= 9; k++) {
        char s[64];
        snprintf(s, sizeof s, "1970-01-01T00:00:00.%.*sZ", k, frac);
        parses(s, 0, want[k]);
    }
    parses("1970-01-01T00:00:00.000000001Z", 0, 1);
    parses("1969-12-31T23:59:59.999999999Z", -1, 999999999);
}

Test(pbjson, time_parse_limits)
{
    parses("0001-01-01T00:00:00Z", -62135596800, 0);
    parses("9999-12-31T23:59:59Z", 253402300799, 0);
    parses("2024-02-29T12:00:00Z", 1709208000, 0);
    parses("2000-02-29T00:00:00Z", 951782400, 0);
}

Test(pbjson, time_parse_rejects)
{
    rejects("");
    rejects("1970-01-01T00:00:00.1234567890Z"); /* 10 fraction digits */
    rejects("1970-01-01T00:00:00.Z");
    rejects("2023-02-29T00:00:00Z");
    rejects("1900-02-29T00:00:00Z");
    rejects("2024-04-31T00:00:00Z");
    rejects("2024-13-01T00:00:00Z");
    rejects("2024-00-01T00:00:00Z");
    rejects("2024-01-00T00:00:00Z");
    rejects("2024-01-01T24:00:00Z");
    rejects("2024-01-01T00:60:00Z");
    rejects("2024-01-01T00:00:60Z");
    rejects("0000-01-01T00:00:00Z");
    rejects("2024-01-01T00:00:00");    /* no zone */
    rejects("2024-01-01T00:00:00.5");  /* no zone */
    rejects("2024-01-01T00:00:00Zx");  /* trailing garbage */
    rejects("2024-01-01T00:00:00Z ");
    rejects("2024-01-01T00:00:00+05:30x");
    rejects("2024-01-01T00:00:00+0530");
    rejects("2024-01-01T00:00:00+24:00");
    rejects("2024-01-01T00:00:00+05:60");
    rejects("2024-01-01 00:00:00Z");
    rejects("2024-1-01T00:00:00Z");
    rejects("24-01-01T00:00:00Z");
    rejects("2024-01-01");
    rejects("yesterday");
}

Test(pbjson, time_parse_respects_length)
{
    int64_t sec;
    int32_t nanos;
    const char *s = "1970-01-01T00:00:01Zjunk";
    cr_assert(kz_pbjson_time_parse(s, 20, &sec, &nanos));
    cr_assert_eq(sec, 1);
    cr_assert_not(kz_pbjson_time_parse(s, 19, &sec, &nanos));
    cr_assert_not(kz_pbjson_time_parse("1970-01-01T00:00:00\0Z", 21, &sec, &nanos));
}

Test(pbjson, time_round_trip)
{
    const char *v[] = {
        "1970-01-01T00:00:00Z",           "1969-12-31T23:59:59Z",       "2026-11-23T10:00:00.123Z",
        "2024-02-29T23:59:59.123456Z",    "0001-01-01T00:00:00Z",       "9999-12-31T23:59:59.999999999Z",
        "1969-12-31T23:59:59.000000001Z", "2000-02-29T12:34:56.789Z",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t sec;
        int32_t nanos;
        char out[40];
        cr_assert(kz_pbjson_time_parse(v[i], strlen(v[i]), &sec, &nanos), "parse %s", v[i]);
        kz_pbjson_time_format(sec, nanos, out);
        cr_assert_str_eq(out, v[i]);
    }
}

Test(pbjson, time_round_trip_normalises)
{
    struct {
        const char *in, *out;
    } v[] = {
        {"2024-01-01T05:30:00.100+05:30", "2024-01-01T00:00:00.100Z"},
        {"2024-01-01t00:00:00.120000000z", "2024-01-01T00:00:00.120Z"},
        {"2023-12-31T23:00:00.000001-01:00", "2024-01-01T00:00:00.000001Z"},
        {"2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00Z"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t sec;
        int32_t nanos;
        char out[40];
        cr_assert(kz_pbjson_time_parse(v[i].in, strlen(v[i].in), &sec, &nanos), "parse %s", v[i].in);
        kz_pbjson_time_format(sec, nanos, out);
        cr_assert_str_eq(out, v[i].out);
    }
}

/* ------------------------------------------------------------------------ */
/* Ranges and oneofs                                                        */

Test(pbjson, decode_rejects_timestamp_seconds_out_of_range)
{
    /* channel_message.create_time.seconds = INT64_MIN, 253402300800 (year
     * 10000) and -62135596801 (year 0): no RFC 3339 form. */
    dec_null("seconds INT64_MIN",
             B(0x2a, 0x0d, 0x3a, 0x0b, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01));
    dec_null("year 10000", B(0x2a, 0x09, 0x3a, 0x07, 0x08, 0x80, 0x83, 0xd1, 0xff, 0xaf, 0x07));
    dec_null("year 0",
             B(0x2a, 0x0d, 0x3a, 0x0b, 0x08, 0xff, 0x91, 0xb8, 0xc3, 0x98, 0xfe, 0xff, 0xff, 0xff, 0x01));
    /* The last representable second decodes. */
    dec_json(&nakama__realtime__envelope__descriptor,
             "{\"channel_message\":{\"create_time\":\"9999-12-31T23:59:59Z\"}}",
             B(0x2a, 0x09, 0x3a, 0x07, 0x08, 0xff, 0x82, 0xd1, 0xff, 0xaf, 0x07));
}

Test(pbjson, time_parse_rejects_instants_before_year_1)
{
    int64_t sec;
    int32_t nanos;
    const char *s = "0001-01-01T00:00:00+01:00"; /* 0000-12-31T23:00:00Z */
    cr_assert_not(kz_pbjson_time_parse(s, strlen(s), &sec, &nanos));
    s = "9999-12-31T23:59:59-00:01"; /* past the end of year 9999 in UTC */
    cr_assert_not(kz_pbjson_time_parse(s, strlen(s), &sec, &nanos));
    s = "0001-01-01T00:00:00Z";
    cr_assert(kz_pbjson_time_parse(s, strlen(s), &sec, &nanos));
    cr_assert_eq(sec, INT64_C(-62135596800));
}

Test(pbjson, encode_rejects_two_members_of_one_oneof)
{
    enc_fails(&nakama__realtime__envelope__descriptor, "{'ping':{},'pong':{}}", "pong");
    enc_fails(&nakama__realtime__envelope__descriptor, "{'match_join':{'match_id':'a','token':'b'}}", "token");
}

Test(pbjson, encode_double_from_numeric_string)
{
    round_trip(&nakama__realtime__envelope__descriptor,
               "{'matchmaker_add':{'numeric_properties':{'a':'1.5','b':'-2e3'}}}",
               "{'matchmaker_add':{'numeric_properties':{'a':1.5,'b':-2000.0}}}");
    enc_fails(&nakama__realtime__envelope__descriptor, "{'matchmaker_add':{'numeric_properties':{'a':'1.5x'}}}",
              "value");
}
