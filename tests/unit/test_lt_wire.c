/* Unit tests for tools/loadtest/wire.c: the bots' socket envelopes. The
 * hand-written protobuf encoders are checked by unpacking their output with
 * the server's protobuf-c descriptors (proto/kizuna/realtime.proto), the
 * decoder by feeding it envelopes packed with them; JSON both ways with
 * jansson. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "kizuna/realtime.pb-c.h"
#include "loadtest/wire.h"

static kz_strbuf_t b;

static void fini(void)
{
    kz_strbuf_free(&b);
}

TestSuite(lt_wire, .fini = fini);

static Nakama__Realtime__Envelope *unpack(void)
{
    Nakama__Realtime__Envelope *e =
        nakama__realtime__envelope__unpack(NULL, b.len, (const uint8_t *)b.p);
    cr_assert_not_null(e, "our protobuf must unpack");
    return e;
}

static json_t *parse(void)
{
    json_error_t err;
    json_t *j = json_loadb(b.p, b.len, 0, &err);
    cr_assert_not_null(j, "our JSON must parse: %s (%s)", err.text, b.p);
    return j;
}

static const char *jstr(json_t *j, const char *a, const char *k)
{
    return json_string_value(json_object_get(json_object_get(j, a), k));
}

/* ---- encoders: protobuf ------------------------------------------------ */

Test(lt_wire, pb_channel_join_send_leave)
{
    lt_wire_channel_join(&b, LT_FORMAT_PROTOBUF, "7", "room-1", true);
    Nakama__Realtime__Envelope *e = unpack();
    cr_assert_str_eq(e->cid, "7");
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_CHANNEL_JOIN);
    cr_assert_str_eq(e->channel_join->target, "room-1");
    cr_assert_eq(e->channel_join->type, 1);
    cr_assert_not_null(e->channel_join->persistence);
    cr_assert(e->channel_join->persistence->value);
    cr_assert_not_null(e->channel_join->hidden);
    cr_assert_not(e->channel_join->hidden->value);
    nakama__realtime__envelope__free_unpacked(e, NULL);

    lt_wire_channel_send(&b, LT_FORMAT_PROTOBUF, "8", "2...room-1", "{\"t\":\"x\"}");
    e = unpack();
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_CHANNEL_MESSAGE_SEND);
    cr_assert_str_eq(e->channel_message_send->channel_id, "2...room-1");
    cr_assert_str_eq(e->channel_message_send->content, "{\"t\":\"x\"}");
    nakama__realtime__envelope__free_unpacked(e, NULL);

    lt_wire_channel_leave(&b, LT_FORMAT_PROTOBUF, "9", "2...room-1");
    e = unpack();
    cr_assert_str_eq(e->cid, "9");
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_CHANNEL_LEAVE);
    cr_assert_str_eq(e->channel_leave->channel_id, "2...room-1");
    nakama__realtime__envelope__free_unpacked(e, NULL);
}

Test(lt_wire, pb_matches)
{
    lt_wire_match_create(&b, LT_FORMAT_PROTOBUF, "1", "lt-abc-3");
    Nakama__Realtime__Envelope *e = unpack();
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCH_CREATE);
    cr_assert_str_eq(e->match_create->name, "lt-abc-3");
    nakama__realtime__envelope__free_unpacked(e, NULL);

    lt_wire_match_join(&b, LT_FORMAT_PROTOBUF, "2", "m-1.", NULL);
    e = unpack();
    cr_assert_eq(e->match_join->id_case, NAKAMA__REALTIME__MATCH_JOIN__ID_MATCH_ID);
    cr_assert_str_eq(e->match_join->match_id, "m-1.");
    nakama__realtime__envelope__free_unpacked(e, NULL);

    lt_wire_match_join(&b, LT_FORMAT_PROTOBUF, "3", NULL, "tok.en.x");
    e = unpack();
    cr_assert_eq(e->match_join->id_case, NAKAMA__REALTIME__MATCH_JOIN__ID_TOKEN);
    cr_assert_str_eq(e->match_join->token, "tok.en.x");
    nakama__realtime__envelope__free_unpacked(e, NULL);

    const uint8_t data[5] = {0, 1, 2, 0xff, 0};
    lt_wire_match_send(&b, LT_FORMAT_PROTOBUF, "m-1.", 300, data, sizeof data);
    e = unpack();
    cr_assert_str_eq(e->cid, "");
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCH_DATA_SEND);
    cr_assert_str_eq(e->match_data_send->match_id, "m-1.");
    cr_assert_eq(e->match_data_send->op_code, 300);
    cr_assert_eq(e->match_data_send->data.len, 5);
    cr_assert_eq(memcmp(e->match_data_send->data.data, data, 5), 0);
    nakama__realtime__envelope__free_unpacked(e, NULL);

    lt_wire_match_leave(&b, LT_FORMAT_PROTOBUF, "4", "m-1.");
    e = unpack();
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCH_LEAVE);
    cr_assert_str_eq(e->match_leave->match_id, "m-1.");
    nakama__realtime__envelope__free_unpacked(e, NULL);
}

Test(lt_wire, pb_matchmaker_and_rpc)
{
    lt_kv_t sp[2] = {{.key = "mode", .str = "duel"}, {.key = "region", .str = "eu"}};
    lt_kv_t np[1] = {{.key = "skill", .num = 12.5}};
    lt_wire_matchmaker_add(&b, LT_FORMAT_PROTOBUF, "5", "+properties.mode:duel", 2, 4, sp, 2, np, 1);
    Nakama__Realtime__Envelope *e = unpack();
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCHMAKER_ADD);
    Nakama__Realtime__MatchmakerAdd *m = e->matchmaker_add;
    cr_assert_eq(m->min_count, 2);
    cr_assert_eq(m->max_count, 4);
    cr_assert_str_eq(m->query, "+properties.mode:duel");
    cr_assert_eq(m->n_string_properties, 2);
    cr_assert_str_eq(m->string_properties[1]->key, "region");
    cr_assert_str_eq(m->string_properties[1]->value, "eu");
    cr_assert_eq(m->n_numeric_properties, 1);
    cr_assert_str_eq(m->numeric_properties[0]->key, "skill");
    cr_assert_float_eq(m->numeric_properties[0]->value, 12.5, 1e-12);
    nakama__realtime__envelope__free_unpacked(e, NULL);

    lt_wire_rpc(&b, LT_FORMAT_PROTOBUF, "6", "lt_am_create", "{\"group\":\"a-0-1\"}");
    e = unpack();
    cr_assert_eq(e->message_case, NAKAMA__REALTIME__ENVELOPE__MESSAGE_RPC);
    cr_assert_str_eq(e->rpc->id, "lt_am_create");
    cr_assert_str_eq(e->rpc->payload, "{\"group\":\"a-0-1\"}");
    nakama__realtime__envelope__free_unpacked(e, NULL);
}

/* ---- encoders: JSON --------------------------------------------------- */

Test(lt_wire, json_encoders_escape_and_types)
{
    lt_wire_channel_join(&b, LT_FORMAT_JSON, "12", "a \"room\"\n\\\x01", false);
    json_t *j = parse();
    cr_assert_str_eq(json_string_value(json_object_get(j, "cid")), "12");
    cr_assert_str_eq(jstr(j, "channel_join", "target"), "a \"room\"\n\\\x01");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "channel_join"), "type")), 1);
    cr_assert(json_is_false(json_object_get(json_object_get(j, "channel_join"), "persistence")));
    json_decref(j);

    const uint8_t data[4] = {0xfb, 0xff, 0x00, 0x41};
    lt_wire_match_send(&b, LT_FORMAT_JSON, "m-1.", 7, data, sizeof data);
    j = parse();
    cr_assert_null(json_object_get(j, "cid"));
    cr_assert_str_eq(jstr(j, "match_data_send", "op_code"), "7", "int64 as a string");
    cr_assert_str_eq(jstr(j, "match_data_send", "data"), "+/8AQQ==", "standard base64 with padding");
    json_decref(j);

    lt_kv_t sp[1] = {{.key = "k", .str = "v\""}};
    lt_kv_t np[1] = {{.key = "n", .num = -3}};
    lt_wire_matchmaker_add(&b, LT_FORMAT_JSON, "3", "*", 2, 2, sp, 1, np, 1);
    j = parse();
    json_t *m = json_object_get(j, "matchmaker_add");
    cr_assert_eq(json_integer_value(json_object_get(m, "min_count")), 2);
    cr_assert_str_eq(jstr(m, "string_properties", "k"), "v\"");
    cr_assert_float_eq(json_number_value(json_object_get(json_object_get(m, "numeric_properties"), "n")), -3.0, 1e-12);
    json_decref(j);

    lt_wire_match_join(&b, LT_FORMAT_JSON, "4", NULL, "tok");
    j = parse();
    cr_assert_str_eq(jstr(j, "match_join", "token"), "tok");
    cr_assert_null(json_object_get(json_object_get(j, "match_join"), "match_id"));
    json_decref(j);

    lt_wire_match_create(&b, LT_FORMAT_JSON, "5", "");
    j = parse();
    cr_assert_eq(json_object_size(json_object_get(j, "match_create")), 0, "no name: an empty object");
    json_decref(j);

    lt_wire_rpc(&b, LT_FORMAT_JSON, "6", "echo", "{\"a\":1}");
    j = parse();
    cr_assert_str_eq(jstr(j, "rpc", "payload"), "{\"a\":1}");
    json_decref(j);
}

/* ---- decoder ------------------------------------------------------------ */

static lt_env_t env;

static lt_env_kind_t decode_pb(Nakama__Realtime__Envelope *e)
{
    size_t n = nakama__realtime__envelope__get_packed_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    nakama__realtime__envelope__pack(e, buf);
    lt_env_kind_t k = lt_wire_decode((const char *)buf, n, true, &env);
    free(buf);
    return k;
}

static lt_env_kind_t decode_json(const char *s)
{
    return lt_wire_decode(s, strlen(s), false, &env);
}

Test(lt_wire, pb_decode_replies_and_events)
{
    Nakama__Realtime__Envelope e = NAKAMA__REALTIME__ENVELOPE__INIT;
    e.cid = "42";
    cr_assert_eq(decode_pb(&e), LT_ENV_ACK, "cid only: an empty reply");
    cr_assert_eq(env.cid, 42);

    Nakama__Realtime__Error er = NAKAMA__REALTIME__ERROR__INIT;
    er.code = 3;
    er.message = "bad input";
    e.message_case = NAKAMA__REALTIME__ENVELOPE__MESSAGE_ERROR;
    e.error = &er;
    cr_assert_eq(decode_pb(&e), LT_ENV_ERROR);
    cr_assert_eq(env.code, 3);
    cr_assert_str_eq(env.text, "bad input");

    Nakama__Realtime__Match m = NAKAMA__REALTIME__MATCH__INIT;
    m.match_id = "abc.";
    m.size = 2;
    e.message_case = NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCH;
    e.match = &m;
    cr_assert_eq(decode_pb(&e), LT_ENV_MATCH);
    cr_assert_str_eq(env.id, "abc.");

    Nakama__Realtime__MatchmakerMatched mm = NAKAMA__REALTIME__MATCHMAKER_MATCHED__INIT;
    mm.ticket = "t1";
    mm.id_case = NAKAMA__REALTIME__MATCHMAKER_MATCHED__ID_TOKEN;
    mm.token = "a.b.c";
    e.cid = "";
    e.message_case = NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCHMAKER_MATCHED;
    e.matchmaker_matched = &mm;
    cr_assert_eq(decode_pb(&e), LT_ENV_MM_MATCHED);
    cr_assert_eq(env.cid, 0);
    cr_assert_str_eq(env.text, "a.b.c");
    cr_assert_str_eq(env.id, "");

    Nakama__Realtime__MatchmakerTicket tk = NAKAMA__REALTIME__MATCHMAKER_TICKET__INIT;
    tk.ticket = "tick-1";
    e.cid = "5";
    e.message_case = NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCHMAKER_TICKET;
    e.matchmaker_ticket = &tk;
    cr_assert_eq(decode_pb(&e), LT_ENV_MM_TICKET);
    cr_assert_str_eq(env.id, "tick-1");

    Nakama__Api__Rpc rpc = NAKAMA__API__RPC__INIT;
    rpc.id = "lt_am_create";
    rpc.payload = "m-9.kizuna";
    e.message_case = NAKAMA__REALTIME__ENVELOPE__MESSAGE_RPC;
    e.rpc = &rpc;
    cr_assert_eq(decode_pb(&e), LT_ENV_RPC);
    cr_assert_str_eq(env.text, "m-9.kizuna");

    uint8_t stamp[LT_STAMP_LEN + 4];
    lt_stamp_write(stamp, 123456789012345ull, 0xabcdef01u);
    Nakama__Realtime__MatchData md = NAKAMA__REALTIME__MATCH_DATA__INIT;
    md.match_id = "abc.";
    md.op_code = 1;
    md.data.data = stamp;
    md.data.len = sizeof stamp;
    e.cid = "";
    e.message_case = NAKAMA__REALTIME__ENVELOPE__MESSAGE_MATCH_DATA;
    e.match_data = &md;
    cr_assert_eq(decode_pb(&e), LT_ENV_MATCH_DATA);
    cr_assert_eq(env.data_len, LT_ENV_DATA_MAX);
    uint64_t sent = 0;
    cr_assert(lt_stamp_read(env.data, env.data_len, 0xabcdef01u, &sent));
    cr_assert_eq(sent, 123456789012345ull);
    cr_assert_not(lt_stamp_read(env.data, env.data_len, 0x12345678u, &sent), "another machine's clock");

    Nakama__Realtime__Pong pong = NAKAMA__REALTIME__PONG__INIT;
    e.message_case = NAKAMA__REALTIME__ENVELOPE__MESSAGE_PONG;
    e.pong = &pong;
    cr_assert_eq(decode_pb(&e), LT_ENV_OTHER);

    Nakama__Realtime__Envelope empty = NAKAMA__REALTIME__ENVELOPE__INIT;
    cr_assert_eq(decode_pb(&empty), LT_ENV_OTHER, "no cid, no message");

    const char bad[] = {0x0a, 0x05, '1'}; /* a length past the end */
    cr_assert_eq(lt_wire_decode(bad, sizeof bad, true, &env), LT_ENV_BAD);
    const char bad_wire[] = {0x0f}; /* wire type 7 */
    cr_assert_eq(lt_wire_decode(bad_wire, sizeof bad_wire, true, &env), LT_ENV_BAD);
}

Test(lt_wire, json_decode_replies_and_events)
{
    cr_assert_eq(decode_json("{\"cid\":\"17\"}"), LT_ENV_ACK);
    cr_assert_eq(env.cid, 17);
    cr_assert_eq(decode_json("{\"cid\":\"2\",\"error\":{\"code\":4,\"message\":\"Match not found\"}}"), LT_ENV_ERROR);
    cr_assert_eq(env.code, 4);
    cr_assert_str_eq(env.text, "Match not found");
    cr_assert_eq(decode_json("{\"cid\":\"3\",\"channel\":{\"id\":\"2...lobby\",\"presences\":[]}}"), LT_ENV_CHANNEL);
    cr_assert_str_eq(env.id, "2...lobby");
    cr_assert_eq(decode_json("{\"cid\":\"4\",\"channel_message_ack\":{\"channel_id\":\"2...lobby\"}}"),
                 LT_ENV_CHANNEL_ACK);
    cr_assert_eq(decode_json("{\"cid\":\"5\",\"match\":{\"match_id\":\"x.\",\"size\":1}}"), LT_ENV_MATCH);
    cr_assert_str_eq(env.id, "x.");
    cr_assert_eq(decode_json("{\"matchmaker_matched\":{\"ticket\":\"t\",\"match_id\":\"y.\",\"users\":[]}}"),
                 LT_ENV_MM_MATCHED);
    cr_assert_str_eq(env.id, "y.");
    cr_assert_str_eq(env.text, "");
    cr_assert_eq(decode_json("{\"cid\":\"6\",\"rpc\":{\"id\":\"e\",\"payload\":\"{\\\"match_id\\\":\\\"z.\\\"}\"}}"),
                 LT_ENV_RPC);
    cr_assert_str_eq(env.text, "{\"match_id\":\"z.\"}");
    cr_assert_eq(decode_json("{\"match_presence_event\":{\"match_id\":\"x.\"}}"), LT_ENV_OTHER);
    cr_assert_eq(decode_json("{\"channel_message\":{\"channel_id\":\"2...lobby\",\"content\":\"{}\"}}"),
                 LT_ENV_CHANNEL_MESSAGE);
    cr_assert_eq(decode_json("not json"), LT_ENV_BAD);
    cr_assert_eq(decode_json("[1,2]"), LT_ENV_BAD);
}

Test(lt_wire, json_match_data_fast_path_reads_the_stamp)
{
    /* A stamp written by lt_wire_match_send, as the server relays it. */
    uint8_t data[32] = {0};
    lt_stamp_write(data, 987654321ull, 77);
    lt_wire_match_send(&b, LT_FORMAT_JSON, "m.", 1, data, sizeof data);
    json_t *j = parse();
    char ev[512];
    snprintf(ev, sizeof ev,
             "{\"match_data\":{\"match_id\":\"m.\",\"presence\":{\"user_id\":\"u\",\"session_id\":\"s\","
             "\"username\":\"n\"},\"op_code\":\"1\",\"data\":\"%s\",\"reliable\":true}}",
             jstr(j, "match_data_send", "data"));
    json_decref(j);
    cr_assert_eq(decode_json(ev), LT_ENV_MATCH_DATA);
    uint64_t sent;
    cr_assert(lt_stamp_read(env.data, env.data_len, 77, &sent));
    cr_assert_eq(sent, 987654321ull);
}

Test(lt_wire, long_strings_are_truncated_not_overrun)
{
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *msg = malloc(sizeof big + 64);
    snprintf(msg, sizeof big + 64, "{\"cid\":\"1\",\"match\":{\"match_id\":\"%s\"}}", big);
    cr_assert_eq(decode_json(msg), LT_ENV_MATCH);
    cr_assert_eq(strlen(env.id), sizeof env.id - 1);
    snprintf(msg, sizeof big + 64, "{\"cid\":\"1\",\"rpc\":{\"payload\":\"%s\"}}", big);
    cr_assert_eq(decode_json(msg), LT_ENV_RPC);
    cr_assert(env.text_truncated);
    free(msg);
}

Test(lt_wire, url_encode)
{
    char out[64];
    cr_assert_eq(lt_url_encode("+label.group:\"a-1\"", out, sizeof out), 26);
    cr_assert_str_eq(out, "%2Blabel.group%3A%22a-1%22");
    cr_assert_eq(lt_url_encode("abc", out, 3), -1, "no room for the NUL");
    cr_assert_eq(lt_url_encode("~_.-", out, sizeof out), 4);
}
