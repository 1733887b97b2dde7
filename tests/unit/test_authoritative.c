/* realtime/authoritative.c and lua/match.c: tick scheduling helpers,
 * listing filters, and the whole match life cycle driven through the C
 * entry points the runtime uses (kz_am_create, kz_am_signal, kz_am_list,
 * kz_am_get_json, kz_am_stop) on a real worker pool with Lua states.
 *
 * The lifecycle tests write their match modules into a fresh mkdtemp
 * directory with a migrated SQLite store, start the Lua runtime, a worker
 * pool of two (kz_api_worker_init: a connection and a Lua state each) and
 * the tick thread. No I/O threads: these matches have no players, so
 * nothing is delivered. Waiting is by polling a match's own state through
 * match_signal, never by sleeping a fixed time. */
#include <criterion/criterion.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "lua/runtime.h"
#include "net/pool.h"
#include "realtime/authoritative.h"
#include "store/db.h"

/* ------------------------------------------------------------------------ */
/* Pure helpers                                                             */

Test(am_next_due, on_time_late_and_exact)
{
    int64_t skipped = 0;
    cr_assert_eq(kz_am_next_due(100, 10, 105, &skipped), 110);
    cr_assert_eq(skipped, 0);
    cr_assert_eq(kz_am_next_due(100, 10, 110, &skipped), 110, "due exactly now: not skipped");
    cr_assert_eq(skipped, 0);
    /* 110, 120 and 130 have passed at 135: the next boundary is 140. */
    cr_assert_eq(kz_am_next_due(100, 10, 135, &skipped), 140);
    cr_assert_eq(skipped, 3);
    cr_assert_eq(kz_am_next_due(100, 10, 140, &skipped), 150);
    cr_assert_eq(skipped, 3 + 4);
}

Test(am_filter, label_sizes_and_kind)
{
    kz_am_filter_t f = {.limit = 10, .authoritative = -1, .min_size = -1, .max_size = -1};
    cr_assert(kz_am_filter_pass(&f, "", 0));
    f.label = "blue";
    cr_assert(kz_am_filter_pass(&f, "blue", 3));
    cr_assert_not(kz_am_filter_pass(&f, "Blue", 3), "labels compare exactly");
    cr_assert_not(kz_am_filter_pass(&f, "blue ", 3));
    f.label = NULL;
    f.min_size = 2;
    f.max_size = 4;
    cr_assert_not(kz_am_filter_pass(&f, "", 1));
    cr_assert(kz_am_filter_pass(&f, "", 2));
    cr_assert(kz_am_filter_pass(&f, "", 4));
    cr_assert_not(kz_am_filter_pass(&f, "", 5));
    f.min_size = f.max_size = -1;
    f.authoritative = 1;
    cr_assert(kz_am_filter_pass(&f, "", 0));
    f.authoritative = 0;
    cr_assert_not(kz_am_filter_pass(&f, "", 0), "relayed matches only: no authoritative one passes");
}

/* ------------------------------------------------------------------------ */
/* Harness                                                                  */

static struct {
    char dir[256], modules[300], dbpath[300];
    kz_config_t cfg;
    bool cfg_set;
    kz_db_t *db;
    kz_app_t app;
    bool lua, am;
} H;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void write_module(const char *name, const char *code)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.lua", H.modules, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(code, f);
    fclose(f);
}

/* The counter match: counts its ticks; params.rate is its tick rate,
 * params.label its label. Signals: "ticks" -> the count, "stop" -> nil
 * state, "self" -> what nk.match_signal to its own match raises,
 * "label:<x>" -> a label update, "fail" -> sets the next loop to raise. */
static const char COUNTER[] =
    "local nk = require('nakama')\n"
    "local M = {}\n"
    "function M.match_init(ctx, params)\n"
    "  return {ticks = 0, fail = false, id = ctx.match_id}, params.rate or 50, params.label or ''\n"
    "end\n"
    "function M.match_join_attempt(ctx, d, tick, state, p, md) return state, true end\n"
    "function M.match_join(ctx, d, tick, state, ps) return state end\n"
    "function M.match_leave(ctx, d, tick, state, ps) return state end\n"
    "function M.match_loop(ctx, d, tick, state, msgs)\n"
    "  if state.fail then error('loop failed on purpose') end\n"
    "  if tick ~= state.ticks then error('tick ' .. tick .. ' ~= ' .. state.ticks) end\n"
    "  state.ticks = state.ticks + 1\n"
    "  return state\n"
    "end\n"
    "function M.match_terminate(ctx, d, tick, state, grace)\n"
    "  nk.localcache_put('terminated:' .. state.id, tostring(grace))\n"
    "  return state\n"
    "end\n"
    "function M.match_signal(ctx, d, tick, state, data)\n"
    "  if data == 'stop' then return nil, 'bye' end\n"
    "  if data == 'fail' then state.fail = true return state, 'ok' end\n"
    "  if data == 'self' then\n"
    "    local ok, err = pcall(nk.match_signal, ctx.match_id, 'ticks')\n"
    "    return state, tostring(ok) .. ' ' .. tostring(err)\n"
    "  end\n"
    "  if data:sub(1, 6) == 'label:' then d.match_label_update(data:sub(7)) return state, 'labelled' end\n"
    "  if data == 'ctx' then return state, ctx.execution_mode .. ' ' .. ctx.match_id .. ' ' .. ctx.match_label end\n"
    "  return state, tostring(state.ticks)\n"
    "end\n"
    "return M\n";

static void start(void)
{
    if (!getenv("KZ_TEST_VERBOSE")) kz_log_set_level(KZ_LOG_ERROR);
    snprintf(H.dir, sizeof H.dir, "/tmp/kz-test-am-XXXXXX");
    cr_assert(mkdtemp(H.dir));
    snprintf(H.modules, sizeof H.modules, "%s/modules", H.dir);
    snprintf(H.dbpath, sizeof H.dbpath, "%s/kizuna.db", H.dir);
    cr_assert_eq(mkdir(H.modules, 0755), 0);
    write_module("counter", COUNTER);
    write_module("nosignal", "local M = {}\n"
                             "function M.match_init() return {}, 1, '' end\n"
                             "function M.match_join_attempt(c, d, t, s) return s, true end\n"
                             "function M.match_join(c, d, t, s) return s end\n"
                             "function M.match_leave(c, d, t, s) return s end\n"
                             "function M.match_loop(c, d, t, s) return s end\n"
                             "function M.match_terminate(c, d, t, s) return s end\n"
                             "return M\n");
    write_module("initfails", "local M = {}\n"
                              "function M.match_init(c, p)\n"
                              "  if p.how == 'raise' then error({'no init today', 9}) end\n"
                              "  if p.how == 'rate' then return {}, 0, '' end\n"
                              "  if p.how == 'label' then return {}, 1, string.rep('x', 2049) end\n"
                              "  if p.how == 'nil' then return nil, 1, '' end\n"
                              "  return {}, 1, '', 'extra'\n"
                              "end\n"
                              "for _, n in ipairs({'match_join_attempt', 'match_join', 'match_leave', 'match_loop',\n"
                              "  'match_terminate', 'match_signal'}) do M[n] = function(c, d, t, s) return s end end\n"
                              "return M\n");
    write_module("notatable", "return 42\n");

    kz_config_defaults(&H.cfg);
    H.cfg_set = true;
    char err[512] = "";
    cr_assert_eq(kz_config_set(&H.cfg, "runtime.path", H.modules, err, sizeof err), 0, "%s", err);
    cr_assert_eq(kz_config_set(&H.cfg, "database.address", H.dbpath, err, sizeof err), 0, "%s", err);
    cr_assert_eq(kz_config_set(&H.cfg, "runtime.lua_call_timeout_ms", "2000", err, sizeof err), 0, "%s", err);
    cr_assert_eq(kz_db_open(H.dbpath, &H.db, err, sizeof err), KZ_DB_OK, "%s", err);
    cr_assert_eq(kz_migrate_up(H.db, err, sizeof err), KZ_DB_OK, "%s", err);
    cr_assert_eq(kz_lua_init(&H.cfg, H.db, err, sizeof err), 0, "%s", err);
    H.lua = true;
    H.app.cfg = &H.cfg;
    H.app.pool = kz_pool_create(2, 1024, kz_api_worker_init, kz_api_worker_fini, &H.app, err, sizeof err);
    cr_assert_not_null(H.app.pool, "%s", err);
    cr_assert_eq(kz_am_start(&H.app), 0);
    H.am = true;
}

static void stop(void)
{
    if (H.am) kz_am_stop();
    kz_pool_destroy(H.app.pool);
    H.app.pool = NULL;
    if (H.am) kz_am_free_all();
    H.am = false;
    if (H.lua) kz_lua_shutdown();
    H.lua = false;
    if (H.db) kz_db_close(H.db);
    H.db = NULL;
    if (H.cfg_set) kz_config_free(&H.cfg);
    H.cfg_set = false;
    if (H.dir[0]) nftw(H.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    H.dir[0] = '\0';
}

static void create(const char *module, const char *params_json, char id[128])
{
    json_error_t je;
    json_t *params = params_json ? json_loads(params_json, 0, &je) : NULL;
    kz_lua_error_t err = {0};
    int rc = kz_am_create(H.db, module, params, id, &err);
    json_decref(params);
    cr_assert_eq(rc, 0, "create %s: [%d] %s", module, err.code, err.message);
}

static kz_lua_error_t create_fails(const char *module, const char *params_json)
{
    json_error_t je;
    json_t *params = params_json ? json_loads(params_json, 0, &je) : NULL;
    kz_lua_error_t err = {0};
    char id[128];
    int rc = kz_am_create(H.db, module, params, id, &err);
    json_decref(params);
    cr_assert_eq(rc, -1, "create %s succeeded", module);
    return err;
}

/* match_signal(data) on id; the result (owned) or NULL with *err. */
static char *sig(const char *id, const char *data, kz_lua_error_t *err)
{
    char *out = NULL;
    size_t n = 0;
    kz_lua_error_t e = {0};
    if (kz_am_signal(id, data, strlen(data), 5000, &out, &n, &e) != 0) {
        if (err) *err = e;
        return NULL;
    }
    return out ? out : kz_strdup("<nil>");
}

static long ticks_of(const char *id)
{
    char *r = sig(id, "ticks", NULL);
    cr_assert_not_null(r);
    long t = strtol(r, NULL, 10);
    kz_free(r);
    return t;
}

/* Waits (polling, 10 s at most) until match id has ticked past t. */
static long wait_ticks(const char *id, long t)
{
    for (int i = 0; i < 2000; i++) {
        long now = ticks_of(id);
        if (now > t) return now;
        struct timespec d = {0, 5000000};
        nanosleep(&d, NULL);
    }
    cr_assert_fail("match %s never ticked past %ld", id, t);
    return -1;
}

TestSuite(am_life, .init = start, .fini = stop, .timeout = 60);

Test(am_life, ticks_signals_and_context)
{
    char id[128];
    create("counter", "{\"rate\": 50, \"label\": \"{\\\"mode\\\":\\\"duel\\\",\\\"level\\\":3}\"}", id);
    cr_assert_eq(strlen(id), 36 + 1 + strlen("kizuna"));
    cr_assert_str_eq(id + 37, "kizuna");
    long t = wait_ticks(id, 2);
    cr_assert_gt(wait_ticks(id, t), t, "it keeps ticking");
    char *c = sig(id, "ctx", NULL);
    char want[256];
    snprintf(want, sizeof want, "match %s {\"mode\":\"duel\",\"level\":3}", id);
    cr_assert_str_eq(c, want);
    kz_free(c);

    json_t *m = kz_am_get_json(id);
    cr_assert_not_null(m);
    cr_assert_str_eq(json_string_value(json_object_get(m, "match_id")), id);
    cr_assert(json_is_true(json_object_get(m, "authoritative")));
    cr_assert_eq(json_integer_value(json_object_get(m, "tick_rate")), 50);
    cr_assert_eq(json_integer_value(json_object_get(m, "size")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(m, "handler_name")), "counter");
    json_decref(m);

    /* A handler cannot wait for its own match. */
    char *self = sig(id, "self", NULL);
    cr_assert_str_eq(self, "false a match cannot signal itself");
    kz_free(self);

    /* match_signal returning nil state ends the match. */
    char *bye = sig(id, "stop", NULL);
    cr_assert_str_eq(bye, "bye");
    kz_free(bye);
    cr_assert_null(kz_am_get_json(id));
    kz_lua_error_t e = {0};
    cr_assert_null(sig(id, "ticks", &e));
    cr_assert_eq(e.code, 5);
    cr_assert_str_eq(e.message, "match not found");

    kz_am_stats_t st;
    kz_am_stats(&st);
    cr_assert_geq(st.ticks, 3);
    cr_assert_eq(st.matches, 0);
}

Test(am_life, listing_by_label_query_and_update)
{
    char a[128], b[128], c[128];
    create("counter", "{\"rate\": 20, \"label\": \"{\\\"mode\\\":\\\"duel\\\",\\\"level\\\":3}\"}", a);
    create("counter", "{\"rate\": 20, \"label\": \"{\\\"mode\\\":\\\"duel\\\",\\\"level\\\":7}\"}", b);
    create("counter", "{\"rate\": 20, \"label\": \"plain\"}", c);

    kz_am_filter_t f = {.limit = 100, .authoritative = -1, .min_size = -1, .max_size = -1};
    char err[200];
    json_t *all = kz_am_list(&f, err, sizeof err);
    cr_assert_eq(json_array_size(all), 3);
    json_decref(all);

    f.label = "plain";
    json_t *l = kz_am_list(&f, err, sizeof err);
    cr_assert_eq(json_array_size(l), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "match_id")), c);
    json_decref(l);

    f.label = NULL;
    f.query = "+label.mode:duel +label.level:>=5";
    l = kz_am_list(&f, err, sizeof err);
    cr_assert_eq(json_array_size(l), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "match_id")), b);
    json_decref(l);

    f.query = "label.mode:duel";
    f.limit = 1;
    l = kz_am_list(&f, err, sizeof err);
    cr_assert_eq(json_array_size(l), 1, "limit");
    json_decref(l);
    f.limit = 100;

    f.query = "label.mode:/re/";
    cr_assert_null(kz_am_list(&f, err, sizeof err));
    cr_assert(strncmp(err, "invalid query", 13) == 0, "%s", err);

    /* A label update is seen by listings at once. */
    char *r = sig(a, "label:{\"mode\":\"duel\",\"level\":9}", NULL);
    cr_assert_str_eq(r, "labelled");
    kz_free(r);
    f.query = "+label.level:>=5";
    l = kz_am_list(&f, err, sizeof err);
    cr_assert_eq(json_array_size(l), 2);
    json_decref(l);

    f.query = NULL;
    f.min_size = 1;
    l = kz_am_list(&f, err, sizeof err);
    cr_assert_eq(json_array_size(l), 0, "no players anywhere");
    json_decref(l);
}

Test(am_life, a_failing_loop_ends_its_match_only)
{
    char bad[128], good[128];
    create("counter", "{\"rate\": 50}", bad);
    create("counter", "{\"rate\": 50}", good);
    wait_ticks(bad, 0);
    char *r = sig(bad, "fail", NULL);
    cr_assert_str_eq(r, "ok");
    kz_free(r);
    json_t *m = kz_am_get_json(bad);
    for (int i = 0; i < 2000 && m; i++) { /* it ends at its next tick */
        json_decref(m);
        struct timespec d = {0, 5000000};
        nanosleep(&d, NULL);
        m = kz_am_get_json(bad);
    }
    cr_assert_null(m);
    long t = ticks_of(good);
    cr_assert_gt(wait_ticks(good, t), t, "the other match keeps ticking");
}

Test(am_life, creation_failures)
{
    kz_lua_error_t e = create_fails("nosignal", NULL);
    cr_assert_str_eq(e.message, "match module nosignal has no match_signal function");
    e = create_fails("notatable", NULL);
    cr_assert_str_eq(e.message, "match module notatable must return a table of the match functions");
    e = create_fails("missing", NULL);
    cr_assert_eq(e.code, 5, "[%d] %s", e.code, e.message);
    cr_assert_str_eq(e.message, "match module not found: missing");
    e = create_fails("initfails", "{\"how\": \"raise\"}");
    cr_assert_eq(e.code, 9);
    cr_assert_str_eq(e.message, "no init today");
    e = create_fails("initfails", "{\"how\": \"rate\"}");
    cr_assert_str_eq(e.message, "match_init returned a tick rate that is not an integer from 1 to 60");
    e = create_fails("initfails", "{\"how\": \"label\"}");
    cr_assert_str_eq(e.message, "match_init returned a label longer than 2048 bytes");
    e = create_fails("initfails", "{\"how\": \"nil\"}");
    cr_assert_str_eq(e.message, "match_init returned no state (the match state must not be nil)");
    e = create_fails("initfails", "{\"how\": \"extra\"}");
    cr_assert_str_eq(e.message, "match_init returned too many values");
    kz_am_stats_t st;
    kz_am_stats(&st);
    cr_assert_eq(st.matches, 0);
}

Test(am_life, shutdown_terminates_every_match)
{
    char a[128], b[128];
    create("counter", "{\"rate\": 10}", a);
    create("counter", "{\"rate\": 10}", b);
    kz_am_stop();
    kz_am_stats_t st;
    kz_am_stats(&st);
    cr_assert_eq(st.matches, 0, "all ended after match_terminate");
    cr_assert_null(kz_am_get_json(a));
    kz_lua_error_t e;
    char id[128];
    cr_assert_eq(kz_am_create(H.db, "counter", NULL, id, &e), -1, "no new matches while stopping");
}
