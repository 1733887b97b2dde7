/* Unit tests for tools/loadtest/bot.c: one bot runs a profile against the
 * scripted server of lt_script.h, which checks what the bot sends (the
 * sign-in request, envelopes with their cids) and answers as a server
 * would; the tests then check what the bot recorded (ops, errors by reason,
 * counters). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "loadtest/bot.h"
#include "loadtest/stats.h"
#include "loadtest/wire.h"

#include "lt_script.h"

static lt_scenario_t *scn;
static lt_stats_t *st;
static lt_ctx_t ctx;
static const char *timeout_text = "2s"; /* the scenario's timeout */

/* Loads a scenario whose server is the scripted one and readies ctx. */
static void load(const char *yaml_tail)
{
    char text[4096], err[512];
    snprintf(text, sizeof text,
             "name: t\nserver: {host: 127.0.0.1, port: %d}\nbots: 1\nduration: 60s\ntimeout: %s\n%s", srv.port,
             timeout_text, yaml_tail);
    scn = lt_scenario_parse(text, strlen(text), "t.yaml", err, sizeof err);
    cr_assert_not_null(scn, "%s", err);
    st = lt_stats_new();
    memset(&ctx, 0, sizeof ctx);
    ctx.loop = &loop;
    ctx.scn = scn;
    ctx.stats = st;
    snprintf(ctx.run_id, sizeof ctx.run_id, "0a1b2c3d");
    cr_assert_eq(lt_ctx_init(&ctx), 0);
}

static void run_bot(void)
{
    lt_bot_start(&ctx, 0);
    RUN_WHILE(ctx.alive > 0);
}

static void bot_teardown(void)
{
    lt_ctx_deinit(&ctx);
    lt_stats_free(st);
    lt_scenario_free(scn);
    teardown();
}

TestSuite(lt_bot, .init = setup, .fini = bot_teardown);

static uint64_t ok_of(const char *op)
{
    const lt_op_stats_t *o = lt_stats_find(st, op);
    return o ? o->ok : 0;
}

static uint64_t errors_of(const char *op, const char *reason)
{
    const lt_op_stats_t *o = lt_stats_find(st, op);
    if (!o) return 0;
    for (size_t i = 0; i < o->nreasons; i++)
        if (strcmp(o->reasons[i].name, reason) == 0) return o->reasons[i].count;
    return 0;
}

static const char auth_ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 51\r\n\r\n"
                              "{\"token\":\"h.e30.s\",\"refresh_token\":\"r\",\"created\":1}";

Test(lt_bot, a_whole_profile)
{
    load("profiles:\n"
         "  - name: p\n"
         "    steps:\n"
         "      - auth: {username: \"u-{bot}\"}\n"
         "      - socket:\n"
         "      - chat_join: {room: \"r-{group}\", group_size: 10}\n"
         "      - chat_send: {size: 20}\n"
         "      - match: {name: \"m-{run}\"}\n"
         "      - repeat: {count: 3, do: [{match_send: {size: 16, op_code: 5}}]}\n"
         "      - match_leave:\n");
    /* An event the bot counts, and match data with its own stamp. */
    static char events[256];
    size_t en = 0;
    script_frame(events, &en, 0x1, true, S("{\"channel_message\":{\"channel_id\":\"2...r-0\",\"content\":\"{}\"}}"));
    uint8_t stamp[LT_STAMP_LEN];
    lt_stamp_write(stamp, uv_hrtime(), ctx.machine);
    static kz_strbuf_t md;
    lt_wire_match_send(&md, LT_FORMAT_JSON, "m1.", 1, stamp, sizeof stamp);
    json_t *j = json_loads(md.p, 0, NULL);
    static char mdev[256];
    int ml = snprintf(mdev, sizeof mdev, "{\"match_data\":{\"match_id\":\"m1.\",\"op_code\":\"1\",\"data\":\"%s\"}}",
                      json_string_value(json_object_get(json_object_get(j, "match_data_send"), "data")));
    json_decref(j);
    kz_strbuf_free(&md);
    script_frame(events, &en, 0x1, true, mdev, (size_t)ml);
    static char closef[8];
    size_t cn = 0;
    script_frame(closef, &cn, 0x8, true, "\x03\xe8", 2);
    const act_t http[] = {DO(A_REQ), SEND(auth_ok, sizeof auth_ok - 1), DO(A_END)};
    const act_t ws[] = {
        DO(A_REQ),   DO(A_ACCEPT),
        DO(A_FRAME), {.op = A_REPLY, .data = "{\"cid\":\"%s\",\"channel\":{\"id\":\"2...r-0\"}}"},
        DO(A_FRAME), {.op = A_REPLY, .data = "{\"cid\":\"%s\",\"channel_message_ack\":{\"channel_id\":\"2...r-0\"}}"},
        SEND(events, en),
        DO(A_FRAME), {.op = A_REPLY, .data = "{\"cid\":\"%s\",\"match\":{\"match_id\":\"m1.\",\"size\":1}}"},
        DO(A_FRAME), DO(A_FRAME), DO(A_FRAME),
        DO(A_FRAME), {.op = A_REPLY, .data = "{\"cid\":\"%s\"}"},
        DO(A_FRAME), SEND(closef, cn), DO(A_END)};
    srv.progs[0] = http;
    srv.progs[1] = ws;
    run_bot();

    /* The sign-in. */
    cr_assert(strncmp(srv.reqs[0], "POST /v2/account/authenticate/device?create=true&username=u-0 HTTP/1.1\r\n", 72) == 0,
              "%s", srv.reqs[0]);
    cr_assert(strstr(srv.reqs[0], "\r\nAuthorization: Basic ZGVmYXVsdGtleTo=\r\n"));
    cr_assert(strstr(srv.reqs[0], "\r\n\r\n{\"id\":\"lt-0a1b2c3d-0\"}"));
    cr_assert(strstr(srv.reqs[1], "GET /ws?lang=en&status=true&format=json&token=h.e30.s HTTP/1.1\r\n"), "%s",
              srv.reqs[1]);
    /* The envelopes, cids counting up. */
    cr_assert_eq(srv.nframes, 8);
    cr_assert(strstr(srv.frames[0].payload, "\"cid\":\"1\""));
    cr_assert(strstr(srv.frames[0].payload, "\"channel_join\":{\"target\":\"r-0\""), "%s", srv.frames[0].payload);
    cr_assert(strstr(srv.frames[1].payload, "\"cid\":\"2\",\"channel_message_send\""));
    cr_assert(strstr(srv.frames[1].payload, "\"channel_id\":\"2...r-0\",\"content\":\"{\\\"t\\\":\\\"xxxxxxxxxxxx\\\"}\""),
              "%s", srv.frames[1].payload);
    cr_assert(strstr(srv.frames[2].payload, "\"cid\":\"3\",\"match_create\":{\"name\":\"m-0a1b2c3d\"}"));
    for (int i = 3; i < 6; i++) {
        cr_assert(strstr(srv.frames[i].payload, "{\"match_data_send\":{\"match_id\":\"m1.\",\"op_code\":\"5\""),
                  "%s", srv.frames[i].payload);
        cr_assert_null(strstr(srv.frames[i].payload, "\"cid\""));
    }
    cr_assert(strstr(srv.frames[6].payload, "\"cid\":\"4\",\"match_leave\":{\"match_id\":\"m1.\"}"));
    cr_assert_eq(srv.frames[7].opcode, 0x8, "the finished bot closes its socket");
    /* What it recorded. */
    cr_assert_eq(ok_of("auth"), 1);
    cr_assert_eq(ok_of("socket_open"), 1);
    cr_assert_eq(ok_of("chat_join"), 1);
    cr_assert_eq(ok_of("chat_send"), 1);
    cr_assert_eq(ok_of("match_join"), 1);
    cr_assert_eq(ok_of("match_leave"), 1);
    cr_assert_eq(ok_of("match_data"), 1, "its own stamp came back");
    cr_assert_eq(st->counters[LT_C_BOTS_STARTED], 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FINISHED], 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FAILED], 0);
    cr_assert_eq(st->counters[LT_C_MSGS_SENT], 7);
    cr_assert_eq(st->counters[LT_C_MSGS_RECV], 6, "4 replies and 2 events");
}

Test(lt_bot, error_envelope_fails_the_bot)
{
    load("profiles:\n  - name: p\n    steps:\n      - auth:\n      - socket:\n      - chat_join:\n      - chat_send:\n");
    static char closef[8];
    size_t cn = 0;
    script_frame(closef, &cn, 0x8, true, "\x03\xe8", 2);
    const act_t http[] = {DO(A_REQ), SEND(auth_ok, sizeof auth_ok - 1), DO(A_END)};
    const act_t ws[] = {DO(A_REQ), DO(A_ACCEPT), DO(A_FRAME),
                        {.op = A_REPLY, .data = "{\"cid\":\"%s\",\"error\":{\"code\":3,\"message\":\"bad\"}}"},
                        DO(A_FRAME), SEND(closef, cn), DO(A_END)};
    srv.progs[0] = http;
    srv.progs[1] = ws;
    run_bot();
    cr_assert_eq(errors_of("chat_join", "error 3"), 1);
    cr_assert_eq(ok_of("chat_join"), 0);
    cr_assert_null(lt_stats_find(st, "chat_send"), "nothing after the failed step");
    cr_assert_eq(st->counters[LT_C_BOTS_FAILED], 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FINISHED], 0);
    cr_assert_eq(srv.frames[1].opcode, 0x8, "a failed bot closes its socket too");
}

Test(lt_bot, reply_timeout)
{
    timeout_text = "200ms";
    load("profiles:\n  - name: p\n    steps:\n      - auth:\n      - socket:\n      - match:\n");
    const act_t http[] = {DO(A_REQ), SEND(auth_ok, sizeof auth_ok - 1), DO(A_END)};
    const act_t ws[] = {DO(A_REQ), DO(A_ACCEPT), DO(A_FRAME), DO(A_END)}; /* never answers */
    srv.progs[0] = http;
    srv.progs[1] = ws;
    run_bot();
    cr_assert_eq(errors_of("match_join", "timeout"), 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FAILED], 1);
}

Test(lt_bot, http_status_is_the_reason)
{
    load("profiles:\n  - name: p\n    steps:\n      - auth: {type: email}\n");
    static const char denied[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}";
    const act_t http[] = {DO(A_REQ), SEND(denied, sizeof denied - 1), DO(A_END)};
    srv.progs[0] = http;
    run_bot();
    cr_assert(strstr(srv.reqs[0], "POST /v2/account/authenticate/email?create=true HTTP/1.1"));
    cr_assert(strstr(srv.reqs[0], "{\"email\":\"lt-0a1b2c3d-0@loadtest.invalid\",\"password\":"));
    cr_assert_eq(errors_of("auth", "http 401"), 1);
}

Test(lt_bot, socket_closed_while_waiting)
{
    load("profiles:\n  - name: p\n    steps:\n      - auth:\n      - socket:\n      - wait: {for: end}\n");
    static char closef[8];
    size_t cn = 0;
    script_frame(closef, &cn, 0x8, true, "\x03\xf0", 2); /* 1008 */
    const act_t http[] = {DO(A_REQ), SEND(auth_ok, sizeof auth_ok - 1), DO(A_END)};
    const act_t ws[] = {DO(A_REQ), DO(A_ACCEPT), SEND(closef, cn), DO(A_END)};
    srv.progs[0] = http;
    srv.progs[1] = ws;
    run_bot();
    cr_assert_eq(errors_of("socket", "closed 1008"), 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FAILED], 1);
}

Test(lt_bot, disconnect_with_close_handshake)
{
    load("profiles:\n  - name: p\n    steps:\n      - auth:\n      - socket:\n      - disconnect:\n");
    static char closef[8];
    size_t cn = 0;
    script_frame(closef, &cn, 0x8, true, "\x03\xe8", 2); /* 1000, echoed */
    const act_t http[] = {DO(A_REQ), SEND(auth_ok, sizeof auth_ok - 1), DO(A_END)};
    const act_t ws[] = {DO(A_REQ), DO(A_ACCEPT), DO(A_FRAME), SEND(closef, cn), DO(A_END)};
    srv.progs[0] = http;
    srv.progs[1] = ws;
    run_bot();
    cr_assert_eq(srv.frames[0].opcode, 0x8);
    cr_assert_eq(st->counters[LT_C_BOTS_FINISHED], 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FAILED], 0);
    cr_assert_null(lt_stats_find(st, "disconnect"));
}

Test(lt_bot, disconnect_without_close_reply_is_an_error)
{
    load("profiles:\n  - name: p\n    steps:\n      - auth:\n      - socket:\n      - disconnect:\n");
    /* The server takes our close frame and drops the connection without
     * answering it: an abnormal close (1006), not a clean disconnect. */
    const act_t http[] = {DO(A_REQ), SEND(auth_ok, sizeof auth_ok - 1), DO(A_END)};
    const act_t ws[] = {DO(A_REQ), DO(A_ACCEPT), DO(A_FRAME), DO(A_CLOSE)};
    srv.progs[0] = http;
    srv.progs[1] = ws;
    run_bot();
    cr_assert_eq(errors_of("disconnect", "closed 1006"), 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FAILED], 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FINISHED], 0);
}

Test(lt_bot, stop_counts_a_waiting_bot_as_finished)
{
    load("profiles:\n  - name: p\n    steps:\n      - auth:\n      - wait: {for: end}\n");
    const act_t http[] = {DO(A_REQ), SEND(auth_ok, sizeof auth_ok - 1), DO(A_END)};
    srv.progs[0] = http;
    lt_bot_t *b = lt_bot_start(&ctx, 0);
    RUN_WHILE(ok_of("auth") == 0);
    cr_assert_eq(ctx.running, 1);
    ctx.stopping = true;
    lt_bot_stop(b);
    RUN_WHILE(ctx.alive > 0);
    cr_assert_eq(st->counters[LT_C_BOTS_FINISHED], 1);
    cr_assert_eq(st->counters[LT_C_BOTS_FAILED], 0);
}

Test(lt_bot, groups_count_bots_of_the_same_profile)
{
    load("profiles:\n"
         "  - {name: a, weight: 3, steps: [{wait: {for: 1s}}]}\n"
         "  - {name: b, weight: 1, steps: [{wait: {for: 1s}}]}\n");
    /* Bots 0,1,2,3,... run a,a,b,a (smooth weighted round-robin) or some
     * such order; whatever it is, the k-th bot of a profile is in group
     * k / group_size of that profile. */
    int64_t seen[2] = {0, 0};
    for (int64_t i = 0; i < 40; i++) {
        size_t p = lt_profile_for_bot(scn, i);
        cr_assert_eq(lt_bot_group(&ctx, i, 5), seen[p] / 5, "bot %lld", (long long)i);
        seen[p]++;
    }
    cr_assert_eq(seen[0], 30);
    cr_assert_eq(seen[1], 10);
}
