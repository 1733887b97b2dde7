/* Unit tests for tools/loadtest/scenario.c: a full scenario with every
 * default, exact error messages (file:line: key: message) for bad files,
 * durations, templates, the weighted round-robin, the arrival schedule,
 * overrides, and every file in bench/scenarios/ validating. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadtest/runner.h"
#include "loadtest/scenario.h"


static lt_scenario_t *parse(const char *text, char *err, size_t errlen)
{
    return lt_scenario_parse(text, strlen(text), "t.yaml", err, errlen);
}

static lt_scenario_t *parse_ok(const char *text)
{
    char err[512] = "";
    lt_scenario_t *s = parse(text, err, sizeof err);
    cr_assert_not_null(s, "unexpected error: %s", err);
    return s;
}

/* Parses text and expects exactly the message msg. */
static void expect_error(const char *text, const char *msg)
{
    char err[512] = "";
    lt_scenario_t *s = parse(text, err, sizeof err);
    cr_assert_null(s, "parsed, expected: %s", msg);
    cr_assert_str_eq(err, msg);
}

#define HEAD "name: t\nbots: 10\nduration: 5s\n"

Test(lt_scenario, minimal_defaults)
{
    lt_scenario_t *s = parse_ok(HEAD "profiles:\n"
                                     "  - name: idle\n"
                                     "    steps:\n"
                                     "      - auth:\n"
                                     "      - socket: {}\n"
                                     "      - wait: {for: end}\n");
    cr_assert_str_eq(s->name, "t");
    cr_assert_str_eq(s->path, "t.yaml");
    cr_assert_str_eq(s->host, "127.0.0.1");
    cr_assert_eq(s->port, 7350);
    cr_assert_str_eq(s->server_key, "defaultkey");
    cr_assert_str_eq(s->http_key, "defaulthttpkey");
    cr_assert_eq(s->format, LT_FORMAT_JSON);
    cr_assert_eq(s->bots, 10);
    cr_assert_eq(s->arrival_rate, 100.0);
    cr_assert_eq(s->ramp_ms, 0);
    cr_assert_eq(s->duration_ms, 5000);
    cr_assert_eq(s->processes, 0);
    cr_assert_eq(s->source_addresses, 0);
    cr_assert_eq(s->timeout_ms, 10000);
    cr_assert_eq(s->soak, false);
    cr_assert_str_eq(s->soak_url, "http://127.0.0.1:9100/metrics");
    cr_assert_eq(s->soak_every_ms, 10000);
    cr_assert_eq(s->nprofiles, 1);
    lt_profile_t *p = &s->profiles[0];
    cr_assert_str_eq(p->name, "idle");
    cr_assert_eq(p->weight, 1);
    cr_assert_eq(p->nsteps, 3);
    cr_assert_eq(p->steps[0].kind, LT_STEP_AUTH);
    cr_assert_eq(p->steps[0].line, 7);
    cr_assert_eq(p->steps[0].u.auth.type, LT_AUTH_DEVICE);
    cr_assert_null(p->steps[0].u.auth.username);
    cr_assert_eq(p->steps[1].kind, LT_STEP_SOCKET);
    cr_assert_eq(p->steps[1].u.socket.format, LT_FORMAT_JSON);
    cr_assert_eq(p->steps[2].kind, LT_STEP_WAIT);
    cr_assert_eq(p->steps[2].u.wait.for_ms, LT_UNTIL_END);
    cr_assert_eq(p->steps[2].line, 9);
    lt_scenario_free(s);
}

Test(lt_scenario, every_key)
{
    lt_scenario_t *s = parse_ok(
        "name: everything\n"
        "server:\n"
        "  host: 10.0.0.5\n"
        "  port: 7351\n"
        "  server_key: sk\n"
        "  http_key: hk\n"
        "  format: protobuf\n"
        "bots: 2000\n"
        "arrival: {rate: 200, ramp: 10s}\n"
        "duration: 1m\n"
        "processes: 3\n"
        "source_addresses: 2\n"
        "timeout: 2500ms\n"
        "soak:\n"
        "  metrics_url: http://127.0.0.1:9200/metrics\n"
        "  every: 30s\n"
        "profiles:\n"
        "  - name: all\n"
        "    weight: 3\n"
        "    steps:\n"
        "      - auth: {type: email, username: 'u{bot}'}\n"
        "      - socket: {format: json}\n"
        "      - chat_join: {room: 'r-{group}', group_size: 50, persistence: true}\n"
        "      - chat_send: {size: 10}\n"
        "      - chat_leave:\n"
        "      - match: {group_size: 10, name: 'm-{run}-{group}'}\n"
        "      - match_send: {size: 8, op_code: 7}\n"
        "      - match_leave:\n"
        "      - matchmaker:\n"
        "          query: '+properties.region:eu'\n"
        "          min_count: 2\n"
        "          max_count: 4\n"
        "          string_properties: {region: eu, who: 'b{bot}'}\n"
        "          numeric_properties: {skill: 10.5, rank: '{bot}'}\n"
        "          join: false\n"
        "          timeout: 90s\n"
        "      - am_match: {create_rpc: lt_am_create, group_size: 10, timeout: 20s}\n"
        "      - match_send:\n"
        "      - rpc: {id: echo, payload: '{\"n\": {bot}}', via: socket}\n"
        "      - rpc:\n"
        "          id: echo\n"
        "          payload: {a: 1, b: [x, true]}\n"
        "      - storage_write: {collection: c, key: 'k-{bot}', size: 100}\n"
        "      - storage_read: {collection: c, key: 'k-{bot}'}\n"
        "      - leaderboard_write: {id: lb, score: 42}\n"
        "      - leaderboard_write: {id: lb, score: random}\n"
        "      - repeat:\n"
        "          count: 5\n"
        "          every: 100ms\n"
        "          do:\n"
        "            - repeat: {for: end, do: [{wait: {for: 1.5}}]}\n"
        "      - disconnect\n"
        "  - name: other\n"
        "    steps: [auth]\n");
    cr_assert_str_eq(s->host, "10.0.0.5");
    cr_assert_eq(s->port, 7351);
    cr_assert_str_eq(s->server_key, "sk");
    cr_assert_str_eq(s->http_key, "hk");
    cr_assert_eq(s->format, LT_FORMAT_PROTOBUF);
    cr_assert_eq(s->bots, 2000);
    cr_assert_eq(s->arrival_rate, 200.0);
    cr_assert_eq(s->ramp_ms, 10000);
    cr_assert_eq(s->duration_ms, 60000);
    cr_assert_eq(s->processes, 3);
    cr_assert_eq(s->source_addresses, 2);
    cr_assert_eq(s->timeout_ms, 2500);
    cr_assert(s->soak);
    cr_assert_str_eq(s->soak_url, "http://127.0.0.1:9200/metrics");
    cr_assert_eq(s->soak_every_ms, 30000);
    cr_assert_eq(s->nprofiles, 2);
    lt_profile_t *p = &s->profiles[0];
    cr_assert_eq(p->weight, 3);
    cr_assert_eq(p->nsteps, 19);
    lt_step_t *st = p->steps;
    cr_assert_eq(st[0].u.auth.type, LT_AUTH_EMAIL);
    cr_assert_str_eq(st[0].u.auth.username, "u{bot}");
    cr_assert_eq(st[1].u.socket.format, LT_FORMAT_JSON);
    cr_assert_str_eq(st[2].u.chat_join.room, "r-{group}");
    cr_assert_eq(st[2].u.chat_join.group_size, 50);
    cr_assert(st[2].u.chat_join.persistence);
    cr_assert_eq(lt_step_group_size(&st[2]), 50);
    cr_assert_eq(st[3].u.chat_send.size, 10);
    cr_assert_eq(st[4].kind, LT_STEP_CHAT_LEAVE);
    cr_assert_eq(st[5].u.match.group_size, 10);
    cr_assert_str_eq(st[5].u.match.name, "m-{run}-{group}");
    cr_assert_eq(st[6].u.match_send.size, 8);
    cr_assert_eq(st[6].u.match_send.op_code, 7);
    cr_assert_eq(st[7].kind, LT_STEP_MATCH_LEAVE);
    cr_assert_eq(st[8].kind, LT_STEP_MATCHMAKER);
    cr_assert_str_eq(st[8].u.matchmaker.query, "+properties.region:eu");
    cr_assert_eq(st[8].u.matchmaker.min_count, 2);
    cr_assert_eq(st[8].u.matchmaker.max_count, 4);
    cr_assert_eq(st[8].u.matchmaker.n_string_props, 2);
    cr_assert_str_eq(st[8].u.matchmaker.string_props[1].key, "who");
    cr_assert_str_eq(st[8].u.matchmaker.string_props[1].value, "b{bot}");
    cr_assert_eq(st[8].u.matchmaker.n_numeric_props, 2);
    cr_assert_str_eq(st[8].u.matchmaker.numeric_props[0].value, "10.5");
    cr_assert_eq(st[8].u.matchmaker.join, false);
    cr_assert_eq(st[8].u.matchmaker.timeout_ms, 90000);
    cr_assert_str_eq(st[9].u.am_match.create_rpc, "lt_am_create");
    cr_assert_eq(st[9].u.am_match.group_size, 10);
    cr_assert_eq(st[9].u.am_match.timeout_ms, 20000);
    cr_assert_eq(st[10].u.match_send.size, 32);
    cr_assert_eq(st[10].u.match_send.op_code, 1);
    cr_assert_str_eq(st[11].u.rpc.payload, "{\"n\": {bot}}");
    cr_assert_eq(st[11].u.rpc.via, LT_VIA_SOCKET);
    cr_assert_str_eq(st[12].u.rpc.payload, "{\"a\":1,\"b\":[\"x\",true]}");
    cr_assert_eq(st[12].u.rpc.via, LT_VIA_HTTP);
    cr_assert_str_eq(st[13].u.storage.collection, "c");
    cr_assert_str_eq(st[13].u.storage.key, "k-{bot}");
    cr_assert_eq(st[13].u.storage.size, 100);
    cr_assert_eq(st[14].kind, LT_STEP_STORAGE_READ);
    cr_assert_eq(st[15].u.leaderboard.random, false);
    cr_assert_eq(st[15].u.leaderboard.score, 42);
    cr_assert_eq(st[16].u.leaderboard.random, true);
    cr_assert_eq(st[17].u.repeat.count, 5);
    cr_assert_eq(st[17].u.repeat.for_ms, 0);
    cr_assert_eq(st[17].u.repeat.every_ms, 100);
    cr_assert_eq(st[17].u.repeat.nsteps, 1);
    lt_step_t *inner = &st[17].u.repeat.steps[0];
    cr_assert_eq(inner->kind, LT_STEP_REPEAT);
    cr_assert_eq(inner->u.repeat.count, -1);
    cr_assert_eq(inner->u.repeat.for_ms, LT_UNTIL_END);
    cr_assert_eq(inner->u.repeat.steps[0].u.wait.for_ms, 1500);
    cr_assert_eq(st[18].kind, LT_STEP_DISCONNECT);
    cr_assert_eq(s->profiles[1].steps[0].kind, LT_STEP_AUTH);
    lt_scenario_free(s);
}

Test(lt_scenario, step_defaults)
{
    lt_scenario_t *s = parse_ok(HEAD "profiles:\n"
                                     "  - name: p\n"
                                     "    steps:\n"
                                     "      - auth\n"
                                     "      - socket\n"
                                     "      - chat_join\n"
                                     "      - chat_send\n"
                                     "      - match\n"
                                     "      - matchmaker\n"
                                     "      - rpc: {id: x}\n"
                                     "      - storage_write\n"
                                     "      - storage_read\n"
                                     "      - leaderboard_write: {id: lb}\n"
                                     "      - am_match: {create_rpc: c}\n");
    lt_step_t *st = s->profiles[0].steps;
    cr_assert_str_eq(st[2].u.chat_join.room, "lt-room-{group}");
    cr_assert_eq(st[2].u.chat_join.group_size, 1000);
    cr_assert_eq(st[2].u.chat_join.persistence, false);
    cr_assert_eq(st[3].u.chat_send.size, 64);
    cr_assert_eq(st[4].u.match.group_size, 2);
    cr_assert_str_eq(st[4].u.match.name, "lt-{run}-{group}");
    cr_assert_str_eq(st[5].u.matchmaker.query, "*");
    cr_assert_eq(st[5].u.matchmaker.min_count, 2);
    cr_assert_eq(st[5].u.matchmaker.max_count, 2);
    cr_assert_eq(st[5].u.matchmaker.join, true);
    cr_assert_eq(st[5].u.matchmaker.timeout_ms, 60000);
    cr_assert_eq(st[5].u.matchmaker.n_string_props, 0);
    cr_assert_str_eq(st[6].u.rpc.payload, "{}");
    cr_assert_eq(st[6].u.rpc.via, LT_VIA_HTTP);
    cr_assert_str_eq(st[7].u.storage.collection, "lt");
    cr_assert_str_eq(st[7].u.storage.key, "k{bot}");
    cr_assert_eq(st[7].u.storage.size, 256);
    cr_assert_str_eq(st[8].u.storage.key, "k{bot}");
    cr_assert(st[9].u.leaderboard.random);
    cr_assert_eq(st[10].u.am_match.group_size, 2);
    cr_assert_eq(st[10].u.am_match.timeout_ms, 30000);
    cr_assert_eq(lt_step_group_size(&st[0]), 1);
    lt_scenario_free(s);
}

Test(lt_scenario, socket_format_follows_server_and_flag)
{
    lt_scenario_t *s = parse_ok("name: t\nserver: {format: protobuf}\nbots: 1\nduration: 1\n"
                                "profiles: [{name: p, steps: [auth, socket, disconnect,\n"
                                "  {repeat: {count: 2, do: [{socket: {format: json}}, "
                                "disconnect]}}]}]\n");
    lt_step_t *st = s->profiles[0].steps;
    cr_assert_eq(st[1].u.socket.format, LT_FORMAT_PROTOBUF);
    cr_assert_eq(st[3].u.repeat.steps[0].u.socket.format, LT_FORMAT_JSON);
    /* --format wins over the file, nested steps included. */
    lt_overrides_t o = lt_overrides_none();
    o.format = LT_FORMAT_JSON;
    cr_assert_eq(lt_scenario_override(s, &o, NULL, 0), 0);
    cr_assert_eq(s->format, LT_FORMAT_JSON);
    cr_assert_eq(st[1].u.socket.format, LT_FORMAT_JSON);
    o.format = LT_FORMAT_PROTOBUF;
    cr_assert_eq(lt_scenario_override(s, &o, NULL, 0), 0);
    cr_assert_eq(st[3].u.repeat.steps[0].u.socket.format, LT_FORMAT_PROTOBUF);
    lt_scenario_free(s);
}

Test(lt_scenario, soak_section_empty_turns_soak_on)
{
    lt_scenario_t *s = parse_ok(HEAD "soak:\nprofiles: [{name: p, steps: [auth]}]\n");
    cr_assert(s->soak);
    cr_assert_eq(s->soak_every_ms, 10000);
    lt_scenario_free(s);
}

/* ----- Errors ------------------------------------------------------------- */

#define PROFILE "profiles:\n  - name: p\n    steps:\n      - auth\n"

Test(lt_scenario, error_messages)
{
    expect_error("name: t\nbots: 10\n" PROFILE, "t.yaml:1: duration: required");
    expect_error("bots: 10\nduration: 1s\n" PROFILE, "t.yaml:1: name: required");
    expect_error(HEAD "botz: 3\n" PROFILE, "t.yaml:4: botz: unknown key");
    expect_error("name: t\nbots: 0\nduration: 5s\n" PROFILE,
                 "t.yaml:2: bots: must be an integer in 1..10000000");
    expect_error("name: t\nbots: 20000000\nduration: 5s\n" PROFILE,
                 "t.yaml:2: bots: must be an integer in 1..10000000");
    expect_error("name: t\nbots: ten\nduration: 5s\n" PROFILE,
                 "t.yaml:2: bots: must be an integer in 1..10000000");
    expect_error("name: t\nbots: 10\nduration: 5 minutes\n" PROFILE,
                 "t.yaml:3: duration: must be a duration (250ms, 10s, 5m, 2h or seconds)");
    expect_error("name: t\nbots: 10\nduration: 0s\n" PROFILE,
                 "t.yaml:3: duration: must be more than 0");
    expect_error(HEAD "server:\n  host: h\n  prot: 1\n" PROFILE,
                 "t.yaml:6: server.prot: unknown key");
    expect_error(HEAD "server:\n  port: 70000\n" PROFILE,
                 "t.yaml:5: server.port: must be an integer in 1..65535");
    expect_error(HEAD "server: {format: xml}\n" PROFILE,
                 "t.yaml:4: server.format: must be json or protobuf");
    expect_error(HEAD "server: [1]\n" PROFILE, "t.yaml:4: server: must be a mapping");
    expect_error(HEAD "arrival: {rate: 0}\n" PROFILE,
                 "t.yaml:4: arrival.rate: must be a number > 0 and <= 10000000");
    expect_error(HEAD "arrival: {ramp: fast}\n" PROFILE,
                 "t.yaml:4: arrival.ramp: must be a duration (250ms, 10s, 5m, 2h or seconds)");
    expect_error(HEAD "soak: {metrics_url: 'ftp://x'}\n" PROFILE,
                 "t.yaml:4: soak.metrics_url: must be an http:// URL");
    expect_error(HEAD "processes: -1\n" PROFILE,
                 "t.yaml:4: processes: must be an integer in 0..1024");
    expect_error(HEAD, "t.yaml:1: profiles: required");
    expect_error(HEAD "profiles: []\n", "t.yaml:4: profiles: must have at least one profile");
    expect_error(HEAD "profiles:\n  - name: p\n", "t.yaml:5: profiles[0].steps: required");
    expect_error(HEAD "profiles:\n  - name: p\n    steps: []\n",
                 "t.yaml:6: profiles[0].steps: must have at least one step");
    expect_error(HEAD "profiles:\n  - name: p\n    weight: 0\n    steps: [auth]\n",
                 "t.yaml:6: profiles[0].weight: must be an integer in 1..10000");
    expect_error(HEAD "profiles:\n  - {name: p, steps: [auth]}\n  - {name: p, steps: [auth]}\n",
                 "t.yaml:6: profiles[1].name: duplicate profile name 'p'");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - fly: {}\n",
                 "t.yaml:8: profiles[0].steps[1]: unknown step 'fly'");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth: {type: device, x: 1}\n",
                 "t.yaml:7: profiles[0].steps[0].auth.x: unknown key");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth: {type: facebook}\n",
                 "t.yaml:7: profiles[0].steps[0].auth.type: must be device, custom or email");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth: {username: 'u{bots}'}\n",
                 "t.yaml:7: profiles[0].steps[0].auth.username: unknown placeholder {bots} "
                 "(known: {bot}, {group}, {run})");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - socket\n"
                      "      - chat_join: {group_size: 0}\n",
                 "t.yaml:9: profiles[0].steps[2].chat_join.group_size: must be an integer in "
                 "1..1000000");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - rpc: {}\n",
                 "t.yaml:8: profiles[0].steps[1].rpc.id: required");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - rpc\n",
                 "t.yaml:8: profiles[0].steps[1].rpc.id: required");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n"
                      "      - rpc: {id: x, payload: '{oops'}\n",
                 "t.yaml:8: profiles[0].steps[1].rpc.payload: must be JSON text: string or '}' "
                 "expected near 'oops'");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n"
                      "      - leaderboard_write: {id: lb, score: high}\n",
                 "t.yaml:8: profiles[0].steps[1].leaderboard_write.score: must be an integer or "
                 "random");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - socket\n"
                      "      - matchmaker: {min_count: 4, max_count: 3}\n",
                 "t.yaml:9: profiles[0].steps[2].matchmaker.max_count: must be >= min_count (4)");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - socket\n"
                      "      - matchmaker:\n          numeric_properties: {skill: high}\n",
                 "t.yaml:10: profiles[0].steps[2].matchmaker.numeric_properties.skill: must be a "
                 "number");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth: {type: device}\n"
                      "        socket: {}\n",
                 "t.yaml:7: profiles[0].steps[0]: a step is a one-key mapping (step name: "
                 "options)");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - wait: {}\n",
                 "t.yaml:7: profiles[0].steps[0].wait.for: required");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - wait: {for: forever}\n",
                 "t.yaml:7: profiles[0].steps[0].wait.for: must be a duration (250ms, 10s, 5m, "
                 "2h or seconds) or end");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth: {type: device, type: "
                      "email}\n",
                 "t.yaml:7: profiles[0].steps[0].auth.type: duplicate key");
    expect_error("name: t\nbots: [\n", "t.yaml:3: YAML: did not find expected node content");
    expect_error("", "t.yaml:1: scenario: empty file");
    expect_error("- a\n- b\n", "t.yaml:1: : must be a mapping");
}

Test(lt_scenario, repeat_errors)
{
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - repeat: {do: [auth]}\n",
                 "t.yaml:7: profiles[0].steps[0].repeat: needs count or for");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - repeat:\n          count: 2\n"
                      "          for: 5s\n          do: [auth]\n",
                 "t.yaml:9: profiles[0].steps[0].repeat.for: count and for exclude each other");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - repeat: {count: 2}\n",
                 "t.yaml:7: profiles[0].steps[0].repeat.do: required");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - repeat: {count: 0, do: [auth]}\n",
                 "t.yaml:7: profiles[0].steps[0].repeat.count: must be an integer in "
                 "1..4611686018427387903");
    /* Depth 4 is fine, 5 is not. */
    lt_scenario_t *s = parse_ok(HEAD "profiles:\n  - name: p\n    steps:\n"
                                     "      - repeat: {count: 1, do: [{repeat: {count: 1, do: "
                                     "[{repeat: {count: 1, do: [{repeat: {count: 1, do: "
                                     "[auth]}}]}}]}}]}\n");
    lt_scenario_free(s);
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n"
                      "      - repeat: {count: 1, do: [{repeat: {count: 1, do: [{repeat: {count: "
                      "1, do: [{repeat: {count: 1, do: [{repeat: {count: 1, do: [auth]}}]}}]}}]}}]}\n",
                 "t.yaml:7: profiles[0].steps[0].repeat.do[0].repeat.do[0].repeat.do[0].repeat."
                 "do[0].repeat: repeat nested deeper than 4 levels");
}

Test(lt_scenario, step_order)
{
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - socket\n",
                 "t.yaml:7: profiles[0].steps[0].socket: needs an auth step before it");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - chat_send\n",
                 "t.yaml:8: profiles[0].steps[1].chat_send: needs a chat_join step before it");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - socket\n"
                      "      - match_send\n",
                 "t.yaml:9: profiles[0].steps[2].match_send: needs a match, am_match or "
                 "matchmaker step before it");
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n"
                      "      - rpc: {id: x, via: socket}\n",
                 "t.yaml:8: profiles[0].steps[1].rpc: needs a socket step before it");
    /* The second iteration of a repeat starts where the first ended. */
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n      - socket\n"
                      "      - repeat:\n          count: 2\n          do:\n"
                      "            - match\n            - match_send\n            - disconnect\n",
                 "t.yaml:12: profiles[0].steps[2].repeat.do[0].match: needs a socket step "
                 "before it");
    /* Leaving and rejoining in a loop is fine. */
    lt_scenario_t *s = parse_ok(HEAD "profiles:\n  - name: p\n    steps:\n      - auth\n"
                                     "      - socket\n      - repeat:\n          for: end\n"
                                     "          do: [matchmaker, match_leave]\n");
    lt_scenario_free(s);
}

Test(lt_scenario, file_errors)
{
    char err[256];
    cr_assert_null(lt_scenario_load("/nonexistent/x.yaml", err, sizeof err));
    cr_assert_str_eq(err, "/nonexistent/x.yaml: No such file or directory");
}

Test(lt_scenario, yaml_alias_bomb_is_bounded)
{
    /* Each level refers to the previous list 10 times: the steps multiply
     * until the bound stops them. */
    expect_error(HEAD "profiles:\n  - name: p\n    steps:\n"
                      "      - repeat:\n          count: 1\n          do: &l0 [auth, auth, auth, "
                      "auth, auth, auth, auth, auth, auth]\n"
                      "      - repeat: {count: 1, do: &l1 [{repeat: {count: 1, do: *l0}}, "
                      "{repeat: {count: 1, do: *l0}}, {repeat: {count: 1, do: *l0}}, {repeat: "
                      "{count: 1, do: *l0}}, {repeat: {count: 1, do: *l0}}, {repeat: {count: 1, "
                      "do: *l0}}, {repeat: {count: 1, do: *l0}}, {repeat: {count: 1, do: *l0}}, "
                      "{repeat: {count: 1, do: *l0}}, {repeat: {count: 1, do: *l0}}]}\n"
                      "      - repeat: {count: 1, do: &l2 [{repeat: {count: 1, do: *l1}}, "
                      "{repeat: {count: 1, do: *l1}}, {repeat: {count: 1, do: *l1}}, {repeat: "
                      "{count: 1, do: *l1}}, {repeat: {count: 1, do: *l1}}, {repeat: {count: 1, "
                      "do: *l1}}, {repeat: {count: 1, do: *l1}}, {repeat: {count: 1, do: *l1}}, "
                      "{repeat: {count: 1, do: *l1}}, {repeat: {count: 1, do: *l1}}]}\n"
                      "      - repeat: {count: 1, do: [{repeat: {count: 1, do: *l2}}, {repeat: "
                      "{count: 1, do: *l2}}, {repeat: {count: 1, do: *l2}}, {repeat: {count: 1, "
                      "do: *l2}}, {repeat: {count: 1, do: *l2}}, {repeat: {count: 1, do: *l2}}, "
                      "{repeat: {count: 1, do: *l2}}, {repeat: {count: 1, do: *l2}}, {repeat: "
                      "{count: 1, do: *l2}}, {repeat: {count: 1, do: *l2}}]}\n",
                 "t.yaml:9: profiles[0].steps[3].repeat.do[8].repeat.do[7].repeat.do[7].repeat.do: "
                 "more than 10000 steps in the scenario");
}

/* ----- Durations and templates --------------------------------------------- */

Test(lt_scenario, durations)
{
    int64_t ms;
    cr_assert_eq(lt_parse_duration("250ms", false, &ms), 0);
    cr_assert_eq(ms, 250);
    cr_assert_eq(lt_parse_duration("10s", false, &ms), 0);
    cr_assert_eq(ms, 10000);
    cr_assert_eq(lt_parse_duration("5m", false, &ms), 0);
    cr_assert_eq(ms, 300000);
    cr_assert_eq(lt_parse_duration("2h", false, &ms), 0);
    cr_assert_eq(ms, 7200000);
    cr_assert_eq(lt_parse_duration("30", false, &ms), 0);
    cr_assert_eq(ms, 30000);
    cr_assert_eq(lt_parse_duration("0.25", false, &ms), 0);
    cr_assert_eq(ms, 250);
    cr_assert_eq(lt_parse_duration("1.5s", false, &ms), 0);
    cr_assert_eq(ms, 1500);
    cr_assert_eq(lt_parse_duration("0", false, &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(lt_parse_duration("end", true, &ms), 0);
    cr_assert_eq(ms, LT_UNTIL_END);
    cr_assert_eq(lt_parse_duration("end", false, &ms), -1);
    cr_assert_eq(lt_parse_duration("", false, &ms), -1);
    cr_assert_eq(lt_parse_duration("-1s", false, &ms), -1);
    cr_assert_eq(lt_parse_duration("10 s", false, &ms), -1);
    cr_assert_eq(lt_parse_duration("10d", false, &ms), -1);
    cr_assert_eq(lt_parse_duration("1.s", false, &ms), -1);
    cr_assert_eq(lt_parse_duration(".5", false, &ms), -1);
    cr_assert_eq(lt_parse_duration("721h", false, &ms), -1); /* > 30 days */
    cr_assert_eq(lt_parse_duration("720h", false, &ms), 0);
}

Test(lt_scenario, template_render)
{
    char out[64];
    cr_assert_eq(lt_template_render("lt-{run}-{bot}", 42, 4, "0badcafe", out, sizeof out), 14);
    cr_assert_str_eq(out, "lt-0badcafe-42");
    cr_assert_eq(lt_template_render("room-{group}", 1234, 24, "r", out, sizeof out), 7);
    cr_assert_str_eq(out, "room-24");
    /* Unknown braces are text: JSON stays JSON. */
    lt_template_render("{\"group\":\"{run}-{group}\",\"x\":{}}", 5, 2, "ab", out, sizeof out);
    cr_assert_str_eq(out, "{\"group\":\"ab-2\",\"x\":{}}");
    lt_template_render("{bot}{bot}{", 7, 0, "", out, sizeof out);
    cr_assert_str_eq(out, "77{");
    /* Too small: -1 and a truncated, terminated prefix. */
    char small[8];
    cr_assert_eq(lt_template_render("player-{bot}", 123456, 0, "", small, sizeof small), -1);
    cr_assert_str_eq(small, "player-");
    cr_assert_eq(lt_template_render("abc{bot}", 1234, 0, "", small, sizeof small), 7);
    cr_assert_str_eq(small, "abc1234");
    cr_assert_eq(lt_template_render("abc{bot}", 12345, 0, "", small, sizeof small), -1);
    cr_assert_str_eq(small, "abc1234");
}

/* ----- Profiles and arrivals ------------------------------------------------ */

Test(lt_scenario, weighted_round_robin)
{
    lt_scenario_t *s = parse_ok(HEAD "profiles:\n"
                                     "  - {name: a, weight: 3, steps: [auth]}\n"
                                     "  - {name: b, steps: [auth]}\n");
    size_t expect[] = {0, 0, 1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 8; i++) cr_assert_eq(lt_profile_for_bot(s, i), expect[i], "bot %d", i);
    lt_scenario_free(s);

    /* Weights 600:300:100 reduce to 6:3:1; every 10 bots hold exactly
     * those counts, and 1000 bots 600/300/100. */
    s = parse_ok(HEAD "profiles:\n"
                      "  - {name: a, weight: 600, steps: [auth]}\n"
                      "  - {name: b, weight: 300, steps: [auth]}\n"
                      "  - {name: c, weight: 100, steps: [auth]}\n");
    cr_assert_eq(s->nwrr, 10);
    size_t seq[10];
    for (int i = 0; i < 10; i++) seq[i] = lt_profile_for_bot(s, i);
    size_t want[] = {0, 1, 0, 0, 1, 0, 2, 0, 1, 0};
    for (int i = 0; i < 10; i++) cr_assert_eq(seq[i], want[i], "bot %d", i);
    int counts[3] = {0};
    for (int i = 0; i < 1000; i++) counts[lt_profile_for_bot(s, i)]++;
    cr_assert_eq(counts[0], 600);
    cr_assert_eq(counts[1], 300);
    cr_assert_eq(counts[2], 100);
    /* Any window of 10 consecutive bots too. */
    int w[3] = {0};
    for (int i = 5; i < 15; i++) w[lt_profile_for_bot(s, i)]++;
    cr_assert_eq(w[0], 6);
    cr_assert_eq(w[1], 3);
    cr_assert_eq(w[2], 1);
    lt_scenario_free(s);
}

Test(lt_scenario, arrival_without_ramp)
{
    lt_scenario_t *s = parse_ok(HEAD "arrival: {rate: 100}\n" PROFILE);
    cr_assert_eq(lt_arrival_time_ms(s, 0), 0);
    cr_assert_eq(lt_arrival_time_ms(s, 1), 10);
    cr_assert_eq(lt_arrival_time_ms(s, 250), 2500);
    lt_scenario_free(s);
    s = parse_ok(HEAD "arrival: {rate: 3}\n" PROFILE);
    cr_assert_eq(lt_arrival_time_ms(s, 1), 333);
    cr_assert_eq(lt_arrival_time_ms(s, 2), 667);
    cr_assert_eq(lt_arrival_time_ms(s, 3), 1000);
    lt_scenario_free(s);
}

Test(lt_scenario, arrival_with_ramp)
{
    /* rate 200/s reached after 10 s: N(t) = 10 t^2 for t <= 10 (1000 bots),
     * then 1000 + 200 (t - 10). */
    lt_scenario_t *s = parse_ok(HEAD "arrival: {rate: 200, ramp: 10s}\n" PROFILE);
    cr_assert_eq(lt_arrival_time_ms(s, 0), 0);
    cr_assert_eq(lt_arrival_time_ms(s, 10), 1000);
    cr_assert_eq(lt_arrival_time_ms(s, 40), 2000);
    cr_assert_eq(lt_arrival_time_ms(s, 250), 5000);
    cr_assert_eq(lt_arrival_time_ms(s, 1), 316); /* sqrt(0.1) s */
    cr_assert_eq(lt_arrival_time_ms(s, 1000), 10000);
    cr_assert_eq(lt_arrival_time_ms(s, 1001), 10005);
    cr_assert_eq(lt_arrival_time_ms(s, 1200), 11000);
    cr_assert_eq(lt_arrival_time_ms(s, 3000), 20000);
    int64_t prev = 0;
    for (int64_t i = 0; i < 5000; i++) {
        int64_t t = lt_arrival_time_ms(s, i);
        cr_assert_geq(t, prev);
        prev = t;
    }
    lt_scenario_free(s);
}

Test(lt_scenario, processes_and_addresses)
{
    lt_scenario_t *s = parse_ok("name: t\nbots: 15000\nduration: 5s\n" PROFILE);
    cr_assert_eq(lt_scenario_processes(s), 1);
    cr_assert_eq(lt_scenario_source_addresses(s), 1);
    lt_overrides_t o = lt_overrides_none();
    o.bots = 15001;
    char err[128];
    cr_assert_eq(lt_scenario_override(s, &o, err, sizeof err), 0);
    cr_assert_eq(lt_scenario_processes(s), 2);
    o.bots = 100000;
    lt_scenario_override(s, &o, err, sizeof err);
    cr_assert_eq(lt_scenario_processes(s), 7);
    cr_assert_eq(lt_scenario_source_addresses(s), 4);
    o.host = "game.example.com";
    lt_scenario_override(s, &o, err, sizeof err);
    cr_assert_eq(lt_scenario_source_addresses(s), 1);
    o.host = "localhost";
    o.processes = 3;
    lt_scenario_override(s, &o, err, sizeof err);
    cr_assert_eq(lt_scenario_source_addresses(s), 4);
    cr_assert_eq(lt_scenario_processes(s), 3);
    /* Auto addresses stop at 127.0.0.254 however many bots. */
    o.bots = LT_MAX_BOTS;
    lt_scenario_override(s, &o, err, sizeof err);
    cr_assert_eq(lt_scenario_source_addresses(s), 254);
    lt_scenario_free(s);
}

Test(lt_scenario, bad_start_message_leaves_nothing_allocated)
{
    /* Rejected after the scenario text and some sources were copied: the
     * copies are freed and st is empty. */
    json_t *j = json_loads("{\"t\":\"start\",\"scenario\":\"name: t\",\"file\":\"f.yaml\",\"overrides\":"
                           "{\"host\":\"h\"},\"run\":\"0a1b2c3d\",\"start_in_ms\":0,\"lo\":0,\"hi\":1,"
                           "\"sources\":[\"127.0.0.1\",7],\"processes\":0}",
                           0, NULL);
    cr_assert_not_null(j);
    lt_start_t st;
    char err[256];
    cr_assert_eq(lt_start_from_json(j, &st, err, sizeof err), -1);
    cr_assert_str_eq(err, "bad start message: sources must be strings");
    cr_assert_null(st.scenario);
    cr_assert_null(st.file);
    cr_assert_null(st.sources);
    cr_assert_eq(st.nsources, 0);
    lt_start_clear(&st); /* harmless */
    json_decref(j);
}

Test(lt_scenario, overrides)
{
    lt_scenario_t *s = parse_ok(HEAD PROFILE);
    char err[128] = "";
    lt_overrides_t o = lt_overrides_none();
    cr_assert_eq(lt_scenario_override(s, &o, err, sizeof err), 0);
    cr_assert_eq(s->bots, 10);
    cr_assert_eq(s->processes, 0);
    o.bots = 500;
    o.duration_ms = 90000;
    o.rate = 50;
    o.host = "10.1.2.3";
    o.port = 8000;
    o.server_key = "k2";
    o.processes = 4;
    o.format = LT_FORMAT_PROTOBUF;
    o.soak_url = "http://10.1.2.3:9100/metrics";
    cr_assert_eq(lt_scenario_override(s, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s->bots, 500);
    cr_assert_eq(s->duration_ms, 90000);
    cr_assert_eq(s->arrival_rate, 50.0);
    cr_assert_str_eq(s->host, "10.1.2.3");
    cr_assert_eq(s->port, 8000);
    cr_assert_str_eq(s->server_key, "k2");
    cr_assert_eq(s->processes, 4);
    cr_assert_eq(s->format, LT_FORMAT_PROTOBUF);
    cr_assert(s->soak);
    cr_assert_eq(s->profiles[0].steps[0].kind, LT_STEP_AUTH);
    cr_assert_str_eq(s->soak_url, "http://10.1.2.3:9100/metrics");

    o = lt_overrides_none();
    o.bots = 10000001;
    o.port = 80; /* a bad field leaves everything unchanged */
    cr_assert_eq(lt_scenario_override(s, &o, err, sizeof err), -1);
    cr_assert_str_eq(err, "--bots: must be an integer in 1..10000000");
    cr_assert_eq(s->port, 8000);
    o = lt_overrides_none();
    o.port = 65536;
    cr_assert_eq(lt_scenario_override(s, &o, err, sizeof err), -1);
    cr_assert_str_eq(err, "--port: must be an integer in 1..65535");
    o = lt_overrides_none();
    o.format = 7;
    cr_assert_eq(lt_scenario_override(s, &o, err, sizeof err), -1);
    cr_assert_str_eq(err, "--format: must be json or protobuf");
    lt_scenario_free(s);
}

/* ----- bench/scenarios ------------------------------------------------------ */

Test(lt_scenario, bench_scenarios_validate)
{
    /* The repository root, from this file's path (CMake passes absolute
     * paths to the compiler). */
    char dir[512];
    const char *tail = strstr(__FILE__, "tests/unit/test_lt_scenario.c");
    cr_assert_not_null(tail, "unexpected __FILE__ %s", __FILE__);
    snprintf(dir, sizeof dir, "%.*sbench/scenarios", (int)(tail - __FILE__), __FILE__);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        char path[1024], err[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        lt_scenario_t *s = lt_scenario_load(path, err, sizeof err);
        cr_expect_not_null(s, "%s", err);
        lt_scenario_free(s);
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 7, "expected the 7 bench scenarios, found %d", n);
}

/* Every prefix of a real scenario, and copies with bytes changed, either
 * parse or fail with a "t.yaml:LINE: " message: never a crash (run under
 * ASan in the sanitizer build). */
Test(lt_scenario, damaged_files_never_crash)
{
    char dir[512];
    const char *tail = strstr(__FILE__, "tests/unit/test_lt_scenario.c");
    cr_assert_not_null(tail);
    snprintf(dir, sizeof dir, "%.*sbench/scenarios/live_game.yaml", (int)(tail - __FILE__),
             __FILE__);
    FILE *f = fopen(dir, "rb");
    cr_assert_not_null(f, "%s", dir);
    static char text[16384];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    cr_assert_gt(len, 100);
    char err[512];
    for (size_t n = 0; n <= len; n++) {
        err[0] = '\0';
        lt_scenario_t *s = lt_scenario_parse(text, n, "t.yaml", err, sizeof err);
        if (!s) cr_assert(strncmp(err, "t.yaml:", 7) == 0, "prefix %zu: %s", n, err);
        lt_scenario_free(s);
    }
    static const char junk[] = "{}[]:-,&*!|>'\"%@`#\n \t0x";
    srand(1);
    static char copy[16384];
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, text, len);
        for (int k = 0; k < 3; k++) copy[(size_t)rand() % len] = junk[rand() % (sizeof junk - 1)];
        err[0] = '\0';
        lt_scenario_t *s = lt_scenario_parse(copy, len, "t.yaml", err, sizeof err);
        if (!s) cr_assert(strncmp(err, "t.yaml:", 7) == 0, "round %d: %s", round, err);
        lt_scenario_free(s);
    }
}
