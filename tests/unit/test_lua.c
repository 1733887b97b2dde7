/* lua/runtime.c and lua/nk_util.c: the Lua runtime (module loading,
 * require, the sandbox, errors, budgets, hooks) and the nk utility
 * functions, driven through kz_lua_rpc / kz_lua_before as the server does.
 *
 * Each test writes its Lua modules into a fresh mkdtemp directory, opens a
 * migrated SQLite store there (the SQL tests run on both backends through
 * tests/unit/dbfixture.h) and starts the runtime on it. Most utility tests
 * go through one "eval" RPC that runs the Lua chunk in its payload with `nk`
 * in scope, so each check reads as Lua code next to the value it must give.
 * Expected values are independent of the code under test: RFC test vectors
 * (RFC 4648 base64, RFC 1321 MD5, FIPS 180-2 SHA-256, RFC 4231 HMAC) and
 * instants computed with Python's calendar.timegm. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/sessions.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "lua/runtime.h"
#include "store/db.h"

#include "dbfixture.h"

/* ------------------------------------------------------------------------ */
/* Harness                                                                  */

static struct {
    char dir[256];     /* mkdtemp: modules/ and kizuna.db */
    char modules[300]; /* dir/modules */
    kz_config_t cfg;
    bool cfg_set;
    kz_db_t *db;  /* the runtime's connection */
    bool own_db;  /* opened here (not by dbfixture) */
    bool started; /* kz_lua_init succeeded */
    kz_lua_vm_t *vm;
} T;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Creates the temp directory and the configuration (time budget 300 ms,
 * memory budget 16 MiB). */
static void harness_init(void)
{
    if (T.dir[0]) return;
    if (!getenv("KZ_TEST_VERBOSE")) kz_log_set_level(KZ_LOG_ERROR);
    snprintf(T.dir, sizeof T.dir, "/tmp/kz-test-lua-XXXXXX");
    cr_assert(mkdtemp(T.dir), "mkdtemp failed");
    snprintf(T.modules, sizeof T.modules, "%s/modules", T.dir);
    cr_assert_eq(mkdir(T.modules, 0755), 0);
    kz_config_defaults(&T.cfg);
    T.cfg_set = true;
    char err[256];
    cr_assert_eq(kz_config_set(&T.cfg, "runtime.path", T.modules, err, sizeof err), 0, "%s", err);
    cr_assert_eq(kz_config_set(&T.cfg, "runtime.lua_call_timeout_ms", "300", err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(kz_config_set(&T.cfg, "runtime.lua_memory_mb", "16", err, sizeof err), 0, "%s",
                 err);
}

/* Writes modules/rel (creating its directories) with code. */
static void write_module(const char *rel, const char *code)
{
    harness_init();
    char path[512];
    snprintf(path, sizeof path, "%s/%s", T.modules, rel);
    for (char *p = path + strlen(T.modules) + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(code, f);
    fclose(f);
}

/* The module every utility test uses: "eval" runs its payload as a Lua
 * chunk with nk in scope and returns what the chunk returns. */
static const char EVAL_MODULE[] =
    "local nk = require('nakama')\n"
    "nk.register_rpc(function(ctx, payload)\n"
    "  local f = assert(loadstring('local nk = require(\"nakama\") ' .. payload, '=eval'))\n"
    "  return f()\n"
    "end, 'eval')\n";

/* Opens a migrated SQLite store in the temp directory. */
static kz_db_t *open_sqlite(void)
{
    harness_init();
    char path[400], err[512] = "";
    snprintf(path, sizeof path, "%s/kizuna.db", T.dir);
    kz_db_t *db = NULL;
    cr_assert_eq(kz_db_open(path, &db, err, sizeof err), KZ_DB_OK, "open: %s", err);
    cr_assert_eq(kz_migrate_up(db, err, sizeof err), KZ_DB_OK, "migrate: %s", err);
    return db;
}

/* kz_lua_init on db (NULL: a SQLite store of our own); returns its result. */
static int rt_try_start(kz_db_t *db, char *err, size_t errlen)
{
    harness_init();
    if (!db) {
        db = open_sqlite();
        T.own_db = true;
    }
    T.db = db;
    int rc = kz_lua_init(&T.cfg, T.db, err, errlen);
    if (rc == 0) T.started = true;
    return rc;
}

/* Starts the runtime and one state; fails the test on any error. */
static void rt_start(kz_db_t *db)
{
    char err[512] = "";
    cr_assert_eq(rt_try_start(db, err, sizeof err), 0, "kz_lua_init: %s", err);
    T.vm = kz_lua_vm_new(T.db, err, sizeof err);
    cr_assert_not_null(T.vm, "kz_lua_vm_new: %s", err);
}

/* Releases everything (also after a failed assertion, from .fini). */
static void rt_stop(void)
{
    kz_lua_vm_free(T.vm);
    T.vm = NULL;
    if (T.started) kz_lua_shutdown();
    T.started = false;
    if (T.own_db) kz_db_close(T.db);
    T.db = NULL;
    T.own_db = false;
    if (T.cfg_set) kz_config_free(&T.cfg);
    T.cfg_set = false;
    if (T.dir[0]) nftw(T.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    T.dir[0] = '\0';
    kz_clock_set_offset_ms(0);
}

static void fini(void)
{
    rt_stop();
}

static const kz_lua_ctx_t RPC_CTX = {.mode = "rpc",
                                     .user_id = "7f3b7a8e-8a43-4e36-9d3e-64f0f4f3a001",
                                     .username = "alice",
                                     .user_session_exp = 1900000000};

/* Calls RPC id on state *vm; expects success and returns the output (owned,
 * "<nil>" for nil). */
static char *rpc_on(kz_lua_vm_t **vm, const char *id, const char *payload)
{
    char *out = NULL;
    size_t len = 0;
    kz_lua_error_t err = {0};
    int rc = kz_lua_rpc(vm, T.db, &RPC_CTX, id, payload, payload ? strlen(payload) : 0, &out, &len,
                        &err);
    cr_assert_eq(rc, KZ_LUA_OK, "rpc %s(%s) -> %d: [%d] %s", id, payload ? payload : "", rc,
                 err.code, err.message);
    return out ? out : kz_strdup("<nil>");
}

static char *rpc(const char *id, const char *payload)
{
    return rpc_on(&T.vm, id, payload);
}

/* Calls RPC id and expects an error; returns it. */
static kz_lua_error_t rpc_fail(const char *id, const char *payload)
{
    char *out = NULL;
    size_t len = 0;
    kz_lua_error_t err = {0};
    int rc = kz_lua_rpc(&T.vm, T.db, &RPC_CTX, id, payload, payload ? strlen(payload) : 0, &out,
                        &len, &err);
    cr_assert_eq(rc, KZ_LUA_ERROR, "rpc %s(%s) -> %d (%s), want an error", id,
                 payload ? payload : "", rc, out ? out : "nil");
    kz_free(out);
    return err;
}

/* Runs a Lua chunk through the eval RPC and checks its result. */
#define EVAL_EQ(code, want)                                                                        \
    do {                                                                                           \
        char *got_ = rpc("eval", code);                                                            \
        bool same_ = strcmp(got_, want) == 0;                                                      \
        cr_assert(same_, "%s\n got: '%s'\nwant: '%s'", code, got_, want);                          \
        kz_free(got_);                                                                             \
    } while (0)

/* Runs a chunk that must raise; checks the message contains want. */
#define EVAL_ERR(code, want)                                                                       \
    do {                                                                                           \
        kz_lua_error_t e_ = rpc_fail("eval", code);                                                \
        cr_assert(strstr(e_.message, want), "%s: error '%s' lacks '%s'", code, e_.message, want);  \
    } while (0)

static void start_eval(void)
{
    write_module("eval.lua", EVAL_MODULE);
    rt_start(NULL);
}

TestSuite(lua, .fini = fini);
TestSuite(nk_util, .fini = fini);

/* ------------------------------------------------------------------------ */
/* Runtime                                                                  */

Test(lua, require_between_modules)
{
    write_module("lib/util.lua",
                 "local M = {}\nfunction M.greet(s) return 'hello ' .. s end\nreturn M\n");
    write_module("a/b/init.lua", "return { name = '!' }\n");
    write_module("main.lua",
                 "local nk = require('nakama')\n"
                 "local u = require('lib.util')\n"
                 "local ab = require('a.b')\n"
                 "nk.register_rpc(function(ctx, p) return u.greet(p) .. ab.name end, 'Greet')\n");
    rt_start(NULL);
    cr_assert_eq(kz_lua_module_count(), 3);
    cr_assert(kz_lua_has_rpc("greet"));
    cr_assert(kz_lua_has_rpc("GREET"), "RPC ids are case-insensitive");
    cr_assert_not(kz_lua_has_rpc("other"));
    char *out = rpc("greet", "kizuna");
    cr_assert_str_eq(out, "hello kizuna!");
    kz_free(out);
    /* Modules run once per state: a second call sees the same table. */
    out = rpc("GrEeT", "again");
    cr_assert_str_eq(out, "hello again!");
    kz_free(out);
}

Test(lua, unknown_rpc_is_not_found)
{
    start_eval();
    char *out = NULL;
    size_t len;
    kz_lua_error_t err;
    cr_assert_eq(kz_lua_rpc(&T.vm, T.db, &RPC_CTX, "nope", "", 0, &out, &len, &err),
                 KZ_LUA_NOT_FOUND);
    cr_assert_null(out);
}

Test(lua, syntax_error_fails_init_with_file_and_line)
{
    write_module("good.lua", "local x = 1\n");
    write_module("sub/bad.lua", "local a = 1\nlocal b = = 2\n");
    char err[512] = "";
    cr_assert_eq(rt_try_start(NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "sub/bad.lua:2"), "message: %s", err);
}

Test(lua, runtime_error_at_load_fails_init_with_file_and_line)
{
    write_module("boom.lua", "local nk = require('nakama')\n\nerror('kaput')\n");
    char err[512] = "";
    cr_assert_eq(rt_try_start(NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "boom.lua:3"), "message: %s", err);
    cr_assert(strstr(err, "kaput"), "message: %s", err);
}

Test(lua, missing_modules_directory_means_no_modules)
{
    harness_init();
    char err[256];
    char path[400];
    snprintf(path, sizeof path, "%s/none", T.dir);
    cr_assert_eq(kz_config_set(&T.cfg, "runtime.path", path, err, sizeof err), 0);
    rt_start(NULL);
    cr_assert_eq(kz_lua_module_count(), 0);
}

Test(lua, sandbox)
{
    start_eval();
    EVAL_EQ("return tostring(io)", "nil");
    EVAL_EQ("return tostring(debug)", "nil");
    EVAL_EQ("return tostring(os.execute) .. tostring(os.exit) .. tostring(os.getenv) .. "
            "tostring(os.remove)",
            "nilnilnilnil");
    EVAL_EQ("return tostring(dofile) .. tostring(loadfile) .. tostring(package.loadlib)",
            "nilnilnil");
    EVAL_EQ("return type(os.time()) .. type(os.clock()) .. type(os.date('!%Y'))",
            "numbernumberstring");
    EVAL_EQ("return tostring(pcall(require, 'ffi'))", "false");
    EVAL_EQ("return tostring(pcall(require, 'jit'))", "false");
    EVAL_EQ("return tostring(pcall(require, 'socket.core'))", "false");
    EVAL_EQ("return tostring(pcall(require, '../../etc/passwd'))", "false");
    EVAL_EQ("return tostring(pcall(require, '/etc/passwd'))", "false");
    EVAL_EQ("return package.path .. package.cpath", "");
    /* A module name that exists only outside runtime.path. */
    char outside[400];
    snprintf(outside, sizeof outside, "%s/outside.lua", T.dir);
    FILE *f = fopen(outside, "w");
    fputs("return 1\n", f);
    fclose(f);
    EVAL_EQ("return tostring(pcall(require, 'outside'))", "false");
    EVAL_EQ("return tostring(pcall(require, '..outside'))", "false");
}

Test(lua, script_errors_carry_codes)
{
    write_module("errors.lua",
                 "local nk = require('nakama')\n"
                 "nk.register_rpc(function() error('x') end, 'plain')\n"
                 "nk.register_rpc(function() error({'m', 3}) end, 'coded')\n"
                 "nk.register_rpc(function() error({'bad code', 99}) end, 'badcode')\n"
                 "nk.register_rpc(function() error({}) end, 'empty')\n"
                 "nk.register_rpc(function() return 42 end, 'number')\n"
                 "nk.register_rpc(function() return {} end, 'table')\n"
                 "nk.register_rpc(function() return nil end, 'nothing')\n");
    rt_start(NULL);
    kz_lua_error_t e = rpc_fail("plain", "");
    cr_assert_eq(e.code, 13);
    cr_assert(strstr(e.message, "errors.lua:2: x"), "%s", e.message);
    e = rpc_fail("coded", "");
    cr_assert_eq(e.code, 3);
    cr_assert_str_eq(e.message, "m");
    e = rpc_fail("badcode", "");
    cr_assert_eq(e.code, 13);
    cr_assert_str_eq(e.message, "bad code");
    e = rpc_fail("empty", "");
    cr_assert_eq(e.code, 13);
    e = rpc_fail("number", "");
    cr_assert_eq(e.code, 13);
    cr_assert(strstr(e.message, "invalid data"), "%s", e.message);
    e = rpc_fail("table", "");
    cr_assert(strstr(e.message, "invalid data"), "%s", e.message);
    char *out = rpc("nothing", "");
    cr_assert_str_eq(out, "<nil>");
    kz_free(out);
}

Test(lua, runaway_loop_hits_time_budget_and_state_is_replaced)
{
    write_module(
        "budget.lua",
        "local nk = require('nakama')\n"
        "counter = 0\n"
        "nk.register_rpc(function() counter = counter + 1 return tostring(counter) end, 'count')\n"
        "nk.register_rpc(function() while true do end end, 'spin')\n"
        "nk.register_rpc(function() while true do pcall(function() while true do end end) end end, "
        "'spin_pcall')\n");
    rt_start(NULL);
    char *out = rpc("count", "");
    cr_assert_str_eq(out, "1");
    kz_free(out);
    kz_lua_vm_t *before = T.vm;
    kz_lua_error_t e = rpc_fail("spin", "");
    cr_assert_eq(e.code, 13);
    cr_assert(strstr(e.message, "time budget"), "%s", e.message);
    cr_assert_neq(T.vm, before, "the state was replaced");
    cr_assert_not_null(T.vm);
    /* The fresh state works and starts from a fresh module load. */
    out = rpc("count", "");
    cr_assert_str_eq(out, "1");
    kz_free(out);
    /* A pcall inside the script cannot swallow the stop. */
    e = rpc_fail("spin_pcall", "");
    cr_assert(strstr(e.message, "time budget"), "%s", e.message);
    out = rpc("count", "");
    cr_assert_str_eq(out, "1");
    kz_free(out);
}

Test(lua, memory_hog_hits_memory_budget_and_state_is_replaced)
{
    write_module("hog.lua", "local nk = require('nakama')\n"
                            "nk.register_rpc(function()\n"
                            "  local t = {}\n"
                            "  for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end\n"
                            "end, 'hog')\n"
                            "nk.register_rpc(function() return 'ok' end, 'ok')\n");
    rt_start(NULL);
    kz_lua_error_t e = rpc_fail("hog", "");
    cr_assert_eq(e.code, 13);
    cr_assert(strstr(e.message, "memory budget"), "%s", e.message);
    char *out = rpc("ok", "");
    cr_assert_str_eq(out, "ok");
    kz_free(out);
}

Test(lua, before_hook_rejects_or_rewrites)
{
    write_module(
        "hooks.lua",
        "local nk = require('nakama')\n"
        "nk.register_req_before(function(ctx, req)\n"
        "  if req.key == 'deny' then return nil end\n"
        "  req.key = req.key .. '-rewritten'\n"
        "  req.added = { n = 2 }\n"
        "  return req\n"
        "end, 'WriteStorageObjects')\n"
        "nk.register_req_before(function(ctx, req) return 'nope' end, 'DeleteStorageObjects')\n");
    rt_start(NULL);
    cr_assert(kz_lua_has_before("writestorageobjects"));
    cr_assert_not(kz_lua_has_before("ReadStorageObjects"));
    const kz_lua_ctx_t ctx = {.mode = "before", .user_id = RPC_CTX.user_id};
    kz_lua_error_t err;

    json_t *msg = json_pack("{s:s}", "key", "deny");
    cr_assert_eq(kz_lua_before(&T.vm, T.db, &ctx, false, "WriteStorageObjects", &msg, &err),
                 KZ_LUA_REJECTED);
    json_decref(msg);

    msg = json_pack("{s:s}", "key", "k");
    cr_assert_eq(kz_lua_before(&T.vm, T.db, &ctx, false, "writestorageobjects", &msg, &err),
                 KZ_LUA_OK, "%s", err.message);
    char *text = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(text, "{\"added\":{\"n\":2},\"key\":\"k-rewritten\"}");
    free(text);
    json_decref(msg);

    msg = json_pack("{s:s}", "key", "k");
    cr_assert_eq(kz_lua_before(&T.vm, T.db, &ctx, false, "DeleteStorageObjects", &msg, &err),
                 KZ_LUA_ERROR);
    json_decref(msg);

    msg = json_object();
    cr_assert_eq(kz_lua_before(&T.vm, T.db, &ctx, false, "ReadStorageObjects", &msg, &err),
                 KZ_LUA_NOT_FOUND);
    json_decref(msg);
}

/* ------------------------------------------------------------------------ */
/* Encodings, hashes, UUIDs                                                 */

Test(nk_util, json)
{
    start_eval();
    EVAL_EQ("return nk.json_encode({1, 2, 'x'})", "[1,2,\"x\"]");
    EVAL_EQ("return nk.json_encode({a = {b = true}})", "{\"a\":{\"b\":true}}");
    EVAL_EQ("return nk.json_encode('s')", "\"s\"");
    EVAL_EQ("local t = nk.json_decode('{\"a\":[1,2.5,null,\"z\"]}') return t.a[1] .. ' ' .. t.a[2] "
            ".. ' ' .. t.a[4]",
            "1 2.5 z");
    EVAL_ERR("return nk.json_decode('{')", "not a valid JSON");
    EVAL_ERR("return nk.json_encode({f = print})", "cannot encode");
}

Test(nk_util, base64)
{
    start_eval();
    EVAL_EQ("return nk.base64_encode('hello')", "aGVsbG8=");
    EVAL_EQ("return nk.base64_encode('hello', false)", "aGVsbG8");
    EVAL_EQ("return nk.base64_encode('foobar')", "Zm9vYmFy");
    EVAL_EQ("return nk.base64_encode('\\255\\254')", "//4=");
    EVAL_EQ("return nk.base64_decode('aGVsbG8=')", "hello");
    EVAL_EQ("return nk.base64_decode('aGVsbG8')", "hello"); /* padding added */
    EVAL_EQ("return nk.base64_decode('Zm9vYmE=', true)", "fooba");
    EVAL_ERR("return nk.base64_decode('aGVsbG8', false)", "not a valid base64 string"); /* strict */
    EVAL_ERR("return nk.base64_decode('a!==')", "not a valid base64 string");
    EVAL_ERR("return nk.base64_decode('__4=')", "not a valid base64 string"); /* URL alphabet */
    EVAL_ERR("return nk.base64_encode('')", "expects string");

    EVAL_EQ("return nk.base64url_encode('\\255\\254')", "__4=");
    EVAL_EQ("return nk.base64url_encode('\\255\\254', false)", "__4");
    EVAL_EQ("return nk.base64url_decode('__4') == '\\255\\254' and 'ok' or 'no'", "ok");
    EVAL_EQ("return nk.base64url_decode('__4=') == '\\255\\254' and 'ok' or 'no'", "ok");
    EVAL_EQ("return nk.base64url_decode('__4=', true) == '\\255\\254' and 'ok' or 'no'", "ok");
    EVAL_ERR("return nk.base64url_decode('__4', true)", "not a valid base64 url string");
    EVAL_ERR("return nk.base64url_decode('//4=')", "not a valid base64 url string");
}

Test(nk_util, base16)
{
    start_eval();
    EVAL_EQ("return nk.base16_encode('\\1\\171\\255')", "01abff");
    EVAL_EQ("return nk.base16_decode('01ABff') == '\\1\\171\\255' and 'ok' or 'no'", "ok");
    EVAL_EQ("return nk.base16_decode('6b697a756e61')", "kizuna");
    EVAL_ERR("return nk.base16_decode('abc')", "not a valid base16 string");
    EVAL_ERR("return nk.base16_decode('zz')", "not a valid base16 string");
    EVAL_ERR("return nk.base16_decode('')", "expects string");
}

Test(nk_util, hashes)
{
    start_eval();
    EVAL_EQ("return nk.md5_hash('abc')", "900150983cd24fb0d6963f7d28e17f72");
    EVAL_EQ("return nk.sha256_hash('abc')",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EVAL_EQ("return tostring(#nk.hmac_sha256_hash('what do ya want for nothing?', 'Jefe'))", "32");
    EVAL_EQ("return nk.base16_encode(nk.hmac_sha256_hash('what do ya want for nothing?', 'Jefe'))",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231 case 6: a key longer than the block size. */
    EVAL_EQ("return nk.base16_encode(nk.hmac_sha256_hash('Test Using Larger Than Block-Size Key - "
            "Hash Key First', "
            "string.rep('\\170', 131)))",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    EVAL_ERR("return nk.sha256_hash('')", "expects input string");
    EVAL_ERR("return nk.hmac_sha256_hash('x', '')", "expects key string");
}

Test(nk_util, secure_random_bytes)
{
    start_eval();
    EVAL_EQ("return tostring(#nk.secure_random_bytes(16))", "16");
    EVAL_EQ("return tostring(#nk.secure_random_bytes(0))", "0");
    EVAL_EQ("return tostring(#nk.secure_random_bytes(1048576))", "1048576");
    EVAL_EQ("return tostring(nk.secure_random_bytes(32) ~= nk.secure_random_bytes(32))", "true");
    EVAL_ERR("return nk.secure_random_bytes(1048577)", "between 0 and 1048576");
    EVAL_ERR("return nk.secure_random_bytes(-1)", "between 0 and 1048576");
    EVAL_ERR("return nk.secure_random_bytes('x')", "number expected");
}

Test(nk_util, uuid)
{
    start_eval();
    EVAL_EQ("local u = nk.uuid_v4() return #u .. u:sub(15, 15) .. tostring(u:sub(20, "
            "20):match('[89ab]') ~= nil)",
            "364true");
    EVAL_EQ("return tostring(nk.uuid_v4() ~= nk.uuid_v4())", "true");
    EVAL_EQ(
        "return nk.base16_encode(nk.uuid_string_to_bytes('6ba7b810-9dad-11d1-80b4-00c04fd430c8'))",
        "6ba7b8109dad11d180b400c04fd430c8");
    EVAL_EQ("return "
            "nk.base16_encode(nk.uuid_string_to_bytes('{6BA7B810-9DAD-11D1-80B4-00C04FD430C8}'))",
            "6ba7b8109dad11d180b400c04fd430c8");
    EVAL_EQ("return "
            "nk.base16_encode(nk.uuid_string_to_bytes('urn:uuid:6ba7b810-9dad-11d1-80b4-"
            "00c04fd430c8'))",
            "6ba7b8109dad11d180b400c04fd430c8");
    EVAL_EQ("return nk.uuid_bytes_to_string(nk.base16_decode('6ba7b8109dad11d180b400c04fd430c8'))",
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    EVAL_EQ("local u = nk.uuid_v4() return "
            "tostring(nk.uuid_bytes_to_string(nk.uuid_string_to_bytes(u)) == u)",
            "true");
    EVAL_ERR("return nk.uuid_string_to_bytes('6ba7b810-9dad-11d1-80b4-00c04fd430cx')",
             "not a valid UUID string");
    EVAL_ERR("return nk.uuid_string_to_bytes('6ba7b810')", "not a valid UUID string");
    EVAL_ERR("return nk.uuid_bytes_to_string('short')", "not a valid UUID byte string");
}

/* ------------------------------------------------------------------------ */
/* Time and cron                                                            */

Test(nk_util, time_follows_the_server_clock)
{
    start_eval();
    int64_t lo = kz_now_ms();
    char *out = rpc("eval", "return string.format('%.0f', nk.time())");
    int64_t hi = kz_now_ms();
    long long t = atoll(out);
    kz_free(out);
    cr_assert(t >= lo && t <= hi, "nk.time() = %lld, not in [%lld, %lld]", t, (long long)lo,
              (long long)hi);

    kz_clock_set_offset_ms(INT64_C(86400000) * 365);
    out = rpc("eval", "return string.format('%.0f', nk.time())");
    t = atoll(out);
    kz_free(out);
    cr_assert(t >= lo + INT64_C(86400000) * 365, "the test clock offset applies: %lld", t);
}

Test(nk_util, time_of_a_date_table)
{
    start_eval();
    EVAL_EQ("return string.format('%.0f', nk.time({year = 2024, month = 2, day = 29, hour = 0}))",
            "1709164800000");
    /* hour defaults to 12, as in Nakama. */
    EVAL_EQ("return string.format('%.0f', nk.time({year = 2024, month = 2, day = 29}))",
            "1709208000000");
    EVAL_EQ("return string.format('%.0f', nk.time({year = 2024, month = 2, day = 29, hour = 0, min "
            "= 1, sec = 2, "
            "msec = 3}))",
            "1709164862003");
    /* Out-of-range fields roll over like Go's time.Date. */
    EVAL_EQ("return string.format('%.0f', nk.time({year = 2023, month = 13, day = 1, hour = 0}))",
            "1704067200000");
    EVAL_EQ("return string.format('%.0f', nk.time({year = 2024, month = 2, day = 30, hour = 0}))",
            "1709251200000");
    EVAL_EQ("return string.format('%.0f', nk.time({year = 2024, month = 1, day = 0, hour = 0}))",
            "1703980800000");
    EVAL_EQ("return string.format('%.0f', nk.time({year = 2024, month = 0, day = 31, hour = 0}))",
            "1703980800000");
    EVAL_ERR("return nk.time({year = 2024, month = 1})", "field 'day' missing");
    EVAL_ERR("return nk.time({year = 2024, month = 'x', day = 1})",
             "field 'month' must be a number");
}

Test(nk_util, cron)
{
    start_eval();
    /* 2024-01-01T00:00:00Z = 1704067200, a Monday. */
    EVAL_EQ("return string.format('%.0f', nk.cron_next('0 0 * * *', 1704067201))", "1704153600");
    EVAL_EQ("return string.format('%.0f', nk.cron_next('0 0 * * *', 1704067200))",
            "1704153600"); /* strictly after */
    EVAL_EQ("return string.format('%.0f', nk.cron_next('*/15 * * * *', 1704067200))", "1704068100");
    EVAL_EQ("return string.format('%.0f', nk.cron_next('0 9 * * MON', 1704067200))", "1704099600");
    EVAL_EQ("return string.format('%.0f', nk.cron_next('@hourly', 1704067200))", "1704070800");
    EVAL_EQ("return string.format('%.0f', nk.cron_prev('0 0 * * *', 1704067200))", "1703980800");
    EVAL_EQ("return string.format('%.0f', nk.cron_prev('0 0 * * *', 1704067201))", "1704067200");
    EVAL_EQ("return tostring(nk.cron_next('0 0 30 2 *', 1704067200))", "nil"); /* February 30th */
    EVAL_ERR("return nk.cron_next('61 * * * *', 1704067200)", "expects a valid cron string");
    EVAL_ERR("return nk.cron_next('0 0 * * *', 0)", "expects timestamp in seconds");
    EVAL_ERR("return nk.cron_next('', 1704067200)", "expects cron string");
    EVAL_ERR("return nk.cron_prev('0 0 * * *')", "number expected");
}

/* ------------------------------------------------------------------------ */
/* Local cache and context                                                  */

Test(nk_util, localcache)
{
    start_eval();
    EVAL_EQ("return tostring(nk.localcache_get('k'))", "nil");
    EVAL_EQ("return nk.localcache_get('k', 'default')", "default");
    EVAL_EQ("nk.localcache_put('k', 'v') return nk.localcache_get('k', 'default')", "v");
    EVAL_EQ("nk.localcache_put('n', 1.5) return tostring(nk.localcache_get('n') * 2)", "3");
    EVAL_EQ("nk.localcache_put('b', false) return tostring(nk.localcache_get('b', true))", "false");
    EVAL_EQ("nk.localcache_put('t', {a = {1, 2}, s = 'x'})\n"
            "local t = nk.localcache_get('t') t.s = 'changed'\n"
            "local u = nk.localcache_get('t')\n"
            "return u.s .. u.a[1] .. u.a[2]",
            "x12"); /* a get returns a copy */
    EVAL_EQ("nk.localcache_put('k', 'v2') return nk.localcache_get('k')", "v2");
    /* A stored nil is found: the default is not used (as in Nakama). */
    EVAL_EQ("nk.localcache_put('z', nil) return tostring(nk.localcache_get('z', 'default'))", "nil");
    EVAL_EQ("nk.localcache_delete('k') return nk.localcache_get('k', 'gone')", "gone");
    EVAL_EQ("nk.localcache_clear() return tostring(nk.localcache_get('n')) .. "
            "tostring(nk.localcache_get('t'))",
            "nilnil");
    EVAL_ERR("nk.localcache_put('f', print)", "expects a string, number, boolean, table or nil");
    EVAL_ERR("nk.localcache_put('f', {print})", "cannot store");
    EVAL_ERR("nk.localcache_put('', 1)", "expects key string");
    EVAL_ERR("nk.localcache_put('x', 1, -1)", "ttl must be 0 or more");
    EVAL_ERR("nk.localcache_get('')", "expects key string");
}

Test(nk_util, localcache_ttl_uses_the_server_clock)
{
    start_eval();
    EVAL_EQ("nk.localcache_put('short', 'x', 10) nk.localcache_put('forever', 'y') return 'ok'",
            "ok");
    kz_clock_set_offset_ms(9000);
    EVAL_EQ("return nk.localcache_get('short', 'gone')", "x");
    kz_clock_set_offset_ms(10000);
    EVAL_EQ("return nk.localcache_get('short', 'gone')", "gone");
    kz_clock_set_offset_ms(INT64_C(86400000) * 1000);
    EVAL_EQ("return nk.localcache_get('forever', 'gone')", "y");
}

Test(nk_util, localcache_is_shared_by_every_state)
{
    start_eval();
    char err[256];
    kz_lua_vm_t *other = kz_lua_vm_new(T.db, err, sizeof err);
    cr_assert_not_null(other, "%s", err);
    char *out = rpc("eval", "nk.localcache_put('shared', {n = 7}) return 'ok'");
    kz_free(out);
    out = rpc_on(&other, "eval", "return tostring(nk.localcache_get('shared').n)");
    cr_assert_str_eq(out, "7");
    kz_free(out);
    kz_lua_vm_free(other);
}

Test(nk_util, get_context)
{
    start_eval();
    EVAL_EQ("local c = nk.get_context() return c.execution_mode .. ' ' .. c.user_id .. ' ' .. "
            "c.username",
            "rpc 7f3b7a8e-8a43-4e36-9d3e-64f0f4f3a001 alice");
    EVAL_EQ("return string.format('%.0f', nk.get_context().user_session_exp)", "1900000000");
}

/* ------------------------------------------------------------------------ */
/* SQL (both backends)                                                      */

static void sql_fini(void)
{
    rt_stop();
    dbfx_teardown();
}

#define LUA_DB_TEST(name)                                                                          \
    static void name##_body(void);                                                                 \
    ParameterizedTestParameters(nk_sql, name)                                                      \
    {                                                                                              \
        return cr_make_param_array(struct dbfx_param, dbfx_params,                                 \
                                   sizeof dbfx_params / sizeof dbfx_params[0]);                    \
    }                                                                                              \
    ParameterizedTest(struct dbfx_param *p, nk_sql, name, .fini = sql_fini)                        \
    {                                                                                              \
        dbfx_setup(p);                                                                             \
        write_module("eval.lua", EVAL_MODULE);                                                     \
        rt_start(dbfx.db);                                                                         \
        name##_body();                                                                             \
    }                                                                                              \
    static void name##_body(void)

LUA_DB_TEST(exec_and_query_round_trip)
{
    EVAL_EQ("return tostring(nk.sql_exec('CREATE TABLE lua_t (id BIGINT PRIMARY KEY, name TEXT, "
            "score BIGINT, "
            "ratio TEXT, flag BIGINT)'))",
            "0");
    EVAL_EQ("return tostring(nk.sql_exec('INSERT INTO lua_t (id, name, score, ratio, flag) VALUES "
            "($1, $2, $3, $4, "
            "$5)', {1, 'alice', 42, 0.5, true}))",
            "1");
    EVAL_EQ("return tostring(nk.sql_exec('INSERT INTO lua_t (id, name, score, ratio, flag) VALUES "
            "($1, $2, $3, $4, "
            "$5)', {2, nil, 7, 1.25, false}))",
            "1");
    EVAL_EQ("return tostring(nk.sql_exec('UPDATE lua_t SET score = score + 1'))", "2");
    EVAL_EQ("return tostring(nk.sql_exec('DELETE FROM lua_t WHERE id = $1', {99}))", "0");
    EVAL_EQ(
        "local rows = nk.sql_query('SELECT id, name, score, ratio, flag FROM lua_t ORDER BY id')\n"
        "local out = {}\n"
        "for i, r in ipairs(rows) do\n"
        "  out[#out + 1] = string.format('%s:%d|%s|%d|%s|%d|%s', type(r.id), r.id, "
        "tostring(r.name), r.score,\n"
        "                                r.ratio, r.flag, type(r.score))\n"
        "end\n"
        "return #rows .. ' ' .. table.concat(out, ' ')",
        "2 number:1|alice|43|0.5|1|number number:2|nil|8|1.25|0|number");
    EVAL_EQ("local rows = nk.sql_query('SELECT count(*) AS n FROM lua_t WHERE score > $1', {10})\n"
            "return type(rows[1].n) .. ' ' .. rows[1].n",
            "number 1");
    EVAL_EQ("return tostring(#nk.sql_query('SELECT id FROM lua_t WHERE id = $1', {3}))", "0");
    EVAL_EQ("local r = nk.sql_query('SELECT CAST($1 AS DOUBLE PRECISION) AS f, NULL AS z', "
            "{'2.25'})[1]\n"
            "return type(r.f) .. ' ' .. r.f .. ' ' .. tostring(r.z)",
            "number 2.25 nil");
    /* PostgreSQL booleans become Lua booleans; SQLite has none. */
    EVAL_EQ(
        "local r = nk.sql_query('SELECT (1 = 1) AS b')[1] return type(r.b) .. ' ' .. tostring(r.b)",
        dbfx.kind == DBFX_POSTGRES ? "boolean true" : "number 1");
    /* Reads the server's own schema too. */
    EVAL_EQ("return tostring(#nk.sql_query('SELECT id FROM users'))", "1"); /* the system user */
}

LUA_DB_TEST(errors_leave_the_connection_usable)
{
    EVAL_ERR("return nk.sql_exec('SELEC nonsense')", "sql exec error");
    EVAL_ERR("return nk.sql_query('SELECT * FROM no_such_table')", "sql query error");
    EVAL_ERR("return nk.sql_exec('BEGIN')", "begin statements are not allowed");
    EVAL_ERR("return nk.sql_exec('  -- comment\\n commit')", "commit statements are not allowed");
    EVAL_ERR("return nk.sql_query('pragma table_info(users)')",
             "pragma statements are not allowed");
    EVAL_ERR("return nk.sql_exec('SELECT $1', {a = 1})", "expects a list of params");
    EVAL_ERR("return nk.sql_exec('SELECT $1', {{}})", "param 1: unsupported type table");
    EVAL_ERR("return nk.sql_exec('')", "expects query string");
    /* The failed statements left no cursor or transaction behind. */
    EVAL_EQ("return tostring(#nk.sql_query('SELECT id FROM users'))", "1");
    EVAL_EQ("return tostring(nk.sql_exec('CREATE TABLE lua_e (id BIGINT)'))", "0");
    EVAL_EQ("return tostring(nk.sql_exec('INSERT INTO lua_e (id) VALUES ($1)', {5}))", "1");
}

/* ------------------------------------------------------------------------ */
/* HTTP client against a server in this process                             */

/* A tiny HTTP/1.1 server on 127.0.0.1 that answers one connection at a
 * time according to the request path. */
static struct {
    int fd;
    int port;
    pthread_t thread;
    bool running;
} S;

/* Reads a request (head + Content-Length body) into buf; returns its
 * length or -1. */
static ssize_t srv_read_request(int c, char *buf, size_t cap)
{
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n + 1 >= cap) return -1;
        ssize_t r = recv(c, buf + n, cap - n - 1, 0);
        if (r <= 0) return -1;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end + 4 - buf);
    size_t clen = 0;
    char *cl = strcasestr(buf, "\r\ncontent-length:");
    if (cl && cl < end) clen = (size_t)atol(cl + 17);
    while (n < head + clen) {
        if (n + 1 >= cap) return -1;
        ssize_t r = recv(c, buf + n, cap - n - 1, 0);
        if (r <= 0) return -1;
        n += (size_t)r;
        buf[n] = '\0';
    }
    return (ssize_t)n;
}

static void srv_send(int c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(c, s, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void srv_sends(int c, const char *s)
{
    srv_send(c, s, strlen(s));
}

static void srv_handle(int c)
{
    static char req[1 << 16];
    ssize_t n = srv_read_request(c, req, sizeof req);
    if (n < 0) return;
    char method[16] = "", path[256] = "";
    sscanf(req, "%15s %255s", method, path);
    char *body = strstr(req, "\r\n\r\n") + 4;
    if (strcmp(path, "/hello") == 0) {
        srv_sends(
            c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nx-multi: a\r\n"
               "X-Multi: b\r\n\r\nhello world");
    } else if (strcmp(path, "/echo?q=1") == 0) {
        /* Echoes the method, the X-Test and Host headers and the body. */
        char xtest[128] = "-", host[128] = "-";
        char *h = strcasestr(req, "\r\nx-test: ");
        if (h) sscanf(h + 10, "%127[^\r]", xtest);
        h = strcasestr(req, "\r\nhost: ");
        if (h) sscanf(h + 8, "%127[^\r]", host);
        char out[1024];
        int len = snprintf(out, sizeof out, "%s %s %s %s", method, xtest, host, body);
        char head[128];
        snprintf(head, sizeof head, "HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n", len);
        srv_sends(c, head);
        srv_send(c, out, (size_t)len);
    } else if (strcmp(path, "/chunked") == 0) {
        srv_sends(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
                     "world\r\n0\r\n\r\n");
    } else if (strcmp(path, "/eof") == 0) {
        srv_sends(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
    } else if (strcmp(path, "/continue") == 0) {
        srv_sends(
            c,
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
    } else if (strcmp(path, "/head") == 0) {
        srv_sends(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    } else if (strcmp(path, "/big") == 0) {
        size_t size = (4u << 20) + 1;
        char head[128];
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", size);
        srv_sends(c, head);
        static char block[65536];
        memset(block, 'b', sizeof block);
        while (size) {
            size_t k = size < sizeof block ? size : sizeof block;
            ssize_t w = send(c, block, k, MSG_NOSIGNAL);
            if (w <= 0) break;
            size -= (size_t)w;
        }
    } else if (strcmp(path, "/garbage") == 0) {
        srv_sends(c, "this is not HTTP\r\n\r\n");
    } else if (strcmp(path, "/stall") == 0) {
        /* Never answers; waits until the client gives up. */
        char b[256];
        while (recv(c, b, sizeof b, 0) > 0) {
        }
    } else {
        srv_sends(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

static void *srv_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(S.fd, NULL, NULL);
        if (c < 0) return NULL; /* the listener was shut down */
        srv_handle(c);
        close(c);
    }
}

static void srv_start(void)
{
    S.fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(S.fd >= 0);
    int one = 1;
    setsockopt(S.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(S.fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(S.fd, 8), 0);
    socklen_t al = sizeof a;
    getsockname(S.fd, (struct sockaddr *)&a, &al);
    S.port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&S.thread, NULL, srv_main, NULL), 0);
    S.running = true;
}

static void srv_stop(void)
{
    if (!S.running) return;
    shutdown(S.fd, SHUT_RDWR);
    pthread_join(S.thread, NULL);
    close(S.fd);
    S.running = false;
}

static void http_fini(void)
{
    srv_stop();
    rt_stop();
}

/* Copies text with every "PORT" replaced by the server's port (owned). */
static char *with_port(const char *text)
{
    char port[8];
    snprintf(port, sizeof port, "%d", S.port);
    size_t cap = strlen(text) * 2 + 1, o = 0;
    char *out = kz_malloc(cap);
    for (const char *p = text; *p;) {
        if (strncmp(p, "PORT", 4) == 0) {
            o += (size_t)snprintf(out + o, cap - o, "%s", port);
            p += 4;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

static char *http_eval(const char *chunk)
{
    char *code = with_port(chunk);
    char *out = rpc("eval", code);
    kz_free(code);
    return out;
}

#define HTTP_EQ(chunk, want)                                                                       \
    do {                                                                                           \
        char *got_ = http_eval(chunk);                                                             \
        char *want_ = with_port(want);                                                             \
        bool same_ = strcmp(got_, want_) == 0;                                                     \
        cr_assert(same_, "%s\n got: '%s'\nwant: '%s'", chunk, got_, want_);                        \
        kz_free(got_);                                                                             \
        kz_free(want_);                                                                            \
    } while (0)

/* The chunk catches the request's error with pcall and returns its message. */
#define HTTP_ERR(chunk, want)                                                                      \
    do {                                                                                           \
        char *got_ = http_eval("local ok, e = pcall(function() " chunk                             \
                               " end) return ok and 'no error' or e");                             \
        cr_assert(strstr(got_, want), "%s: '%s' lacks '%s'", chunk, got_, want);                   \
        kz_free(got_);                                                                             \
    } while (0)

TestSuite(nk_http, .fini = http_fini);

Test(nk_http, get_post_and_bodies)
{
    srv_start();
    start_eval();
    HTTP_EQ("local code, h, body = nk.http_request('http://127.0.0.1:PORT/hello', 'get', {})\n"
            "return code .. ' ' .. h['Content-Type'] .. ' ' .. h['X-Multi'] .. ' ' .. body",
            "200 text/plain a hello world");
    HTTP_EQ("local code, h, body = nk.http_request('http://127.0.0.1:PORT/echo?q=1#frag', 'POST', "
            "{['X-Test'] = 'abc'}, 'payload')\n"
            "return code .. ' ' .. body",
            "201 POST abc 127.0.0.1:PORT payload");
    HTTP_EQ("local code, h, body = nk.http_request('http://127.0.0.1:PORT/echo?q=1', 'put', "
            "{Host = 'example.com'}, nil, 2000)\n"
            "return code .. ' ' .. body",
            "201 PUT - example.com ");
    HTTP_EQ("local code, h, body = nk.http_request('http://localhost:PORT/chunked', 'GET', {})\n"
            "return code .. ' [' .. body .. '] ' .. tostring(h['Transfer-Encoding'])",
            "200 [hello world] chunked");
    HTTP_EQ("local code, h, body = nk.http_request('http://127.0.0.1:PORT/eof', 'GET', {})\n"
            "return code .. ' [' .. body .. ']'",
            "200 [until the end]");
    HTTP_EQ("local code, h, body = nk.http_request('http://127.0.0.1:PORT/continue', 'GET', {})\n"
            "return code .. ' [' .. body .. ']'",
            "404 [no]");
    HTTP_EQ("local code, h, body = nk.http_request('http://127.0.0.1:PORT/head', 'HEAD', {})\n"
            "return code .. ' [' .. body .. '] ' .. h['Content-Length']",
            "200 [] 100");
}

Test(nk_http, errors)
{
    srv_start();
    start_eval();
    HTTP_ERR("nk.http_request('https://127.0.0.1:PORT/hello', 'GET', {})",
             "https is not supported by this server yet");
    HTTP_ERR("nk.http_request('ftp://127.0.0.1/x', 'GET', {})", "unsupported URL scheme");
    HTTP_ERR("nk.http_request('not a url', 'GET', {})", "invalid URL");
    HTTP_ERR("nk.http_request('http://127.0.0.1:PORT/hello', 'FETCH', {})",
             "expects method to be one of");
    HTTP_ERR(
        "nk.http_request('http://127.0.0.1:PORT/hello', 'GET', {['X-Bad'] = 'a\\r\\nInjected: 1'})",
        "invalid value of HTTP header");
    HTTP_ERR("nk.http_request('http://127.0.0.1:PORT/hello', 'GET', {['Bad Name'] = 'x'})",
             "invalid HTTP header name");
    HTTP_ERR("nk.http_request('http://127.0.0.1:PORT/hello', 'GET', {['X-N'] = 1})",
             "HTTP header values must be strings");
    HTTP_ERR("nk.http_request('http://127.0.0.1:PORT/big', 'GET', {})",
             "response larger than 4 MiB");
    HTTP_ERR("nk.http_request('http://127.0.0.1:PORT/garbage', 'GET', {})", "malformed response");
    HTTP_ERR("nk.http_request('http://127.0.0.1:PORT/stall', 'GET', {}, nil, 200)",
             "timed out after 200 ms");
    /* A request cannot outlast the call's time budget (300 ms here), whatever
     * its own timeout. */
    HTTP_ERR("nk.http_request('http://127.0.0.1:PORT/stall', 'GET', {}, nil, 60000)",
             "timed out (the call's time budget ran out)");
    /* The server still answers after all of that. */
    HTTP_EQ("local code = nk.http_request('http://127.0.0.1:PORT/hello', 'GET', {}) return "
            "tostring(code)",
            "200");
    /* A closed port. */
    int port = S.port;
    srv_stop();
    char chunk[256];
    snprintf(
        chunk, sizeof chunk,
        "local ok, e = pcall(nk.http_request, 'http://127.0.0.1:%d/hello', 'GET', {}) return e",
        port);
    char *got = rpc("eval", chunk);
    cr_assert(strstr(got, "Connection refused"), "%s", got);
    kz_free(got);
}

/* ------------------------------------------------------------------------ */
/* Second batch: jwt_generate, bcrypt, get_config, event, sessions global   */

Test(nk_util, jwt_generate_hs256)
{
    start_eval();
    /* jwt.io's example claims, encoded with sorted keys. */
    EVAL_EQ("return nk.jwt_generate('HS256', 'your-256-bit-secret', {sub = '1234567890', "
            "name = 'John Doe', iat = 1516239022})",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJpYXQiOjE1MTYyMzkwMjIsIm5hbWUiOiJKb2huIERvZSIsInN1YiI6IjEyMzQ1Njc4OTAifQ."
            "fdOPQ05ZfRhkST2-rIWgUpbqUsVhkkNVNcuG7Ki0s-8"); /* checked with node:crypto */
    EVAL_EQ("return (nk.jwt_generate('HS256', 'k', {}):match('^[^.]+%.([^.]+)%.'))", "e30");
    EVAL_ERR("nk.jwt_generate('RS256', 'k', {})", "unsupported signing method: RS256");
    EVAL_ERR("nk.jwt_generate('HS256', '', {})", "expects signing key to be non-empty");
    EVAL_ERR("nk.jwt_generate('HS256', 'k', 'x')", "expects claims to be a table");
    EVAL_ERR("nk.jwt_generate('HS256', 'k', {f = function() end})", "expects claims to be JSON");
}

Test(nk_util, bcrypt_hash_and_compare)
{
    start_eval();
    /* crypt_blowfish's published vector. */
    EVAL_EQ("return tostring(nk.bcrypt_compare("
            "'$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', 'U*U'))",
            "true");
    EVAL_EQ("return tostring(nk.bcrypt_compare("
            "'$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', 'U*V'))",
            "false");
    EVAL_EQ("local h = nk.bcrypt_hash('secret') return h:sub(1, 7) .. #h .. "
            "tostring(nk.bcrypt_compare(h, 'secret')) .. tostring(nk.bcrypt_compare(h, 'Secret'))",
            "$2b$10$60truefalse");
    EVAL_ERR("nk.bcrypt_hash(string.rep('x', 73))", "password length exceeds 72 bytes");
    EVAL_ERR("nk.bcrypt_compare('$argon2id$v=19$x', 'p')", "hash is not a bcrypt hash");
    EVAL_ERR("nk.bcrypt_compare('$2a$05$short', 'p')", "hash is not a bcrypt hash");
    EVAL_ERR("nk.bcrypt_compare('', 'p')", "expects hash string");
}

Test(nk_util, get_config_has_no_secrets)
{
    start_eval();
    EVAL_EQ("local c = nk.get_config() return c.name .. ' ' .. c.session.token_expiry_sec .. ' ' "
            ".. c.session.refresh_token_expiry_sec .. ' ' .. tostring(c.socket.server_key) .. ' ' "
            ".. tostring(c.session.encryption_key) .. ' ' .. tostring(c.runtime.http_key) .. ' ' "
            ".. tostring(c.database)",
            "kizuna 60 3600 nil nil nil nil");
    EVAL_EQ("return tostring(nk.get_config().runtime.path == nil)", "false");
}

Test(nk_util, event_checks_and_accepts)
{
    start_eval();
    EVAL_EQ("nk.event('level_up', {level = '3'}, 1700000000, true) nk.event('x') return 'ok'", "ok");
    EVAL_ERR("nk.event('')", "expects event name to be non-empty");
    EVAL_ERR("nk.event('x', {level = 3})", "expects properties to be a table of string values");
    EVAL_ERR("nk.event('x', 'y')", "expects properties");
    EVAL_ERR("nk.event('x', nil, 'soon')", "expects timestamp");
}

Test(nk_util, sessions_global_is_the_one_set)
{
    kz_sessions_t *prev = kz_sessions_get_global();
    kz_sessions_set_global(NULL);
    kz_sessions_t *a = kz_sessions_create();
    kz_sessions_t *b = kz_sessions_create();
    cr_assert_null(kz_sessions_get_global());
    kz_sessions_set_global(a);
    kz_sessions_destroy(b);
    cr_assert_eq(kz_sessions_get_global(), a);
    kz_sessions_destroy(a);
    cr_assert_null(kz_sessions_get_global());
    kz_sessions_set_global(prev);
}

/* The third batch on an empty SQLite store with no sockets: argument
 * checks, unknown sessions and ids, empty results. */
Test(nk_util, third_batch_on_an_empty_store)
{
    start_eval();
    const char *sid = "'11111111-1111-4111-8111-111111111111'";
    char code[512];
    snprintf(code, sizeof code,
             "nk.status_follow(%s, {'22222222-2222-4222-8222-222222222222'}) nk.status_unfollow(%s, {}) return 'ok'",
             sid, sid);
    EVAL_EQ(code, "ok");
    EVAL_ERR("nk.status_follow('x', {})", "expects session ID to be a valid identifier");
    EVAL_EQ("return tostring(#nk.groups_get_random(10))", "0");
    EVAL_EQ("return tostring(#nk.groups_get_random())", "0");
    EVAL_ERR("nk.groups_get_random(1001)", "expects count to be a whole number from 0 to 1000");
    EVAL_EQ("nk.users_ban_id({}) nk.users_unban_id({'22222222-2222-4222-8222-222222222222'}) return 'ok'", "ok");
    EVAL_ERR("nk.users_ban_id({'00000000-0000-0000-0000-000000000000'})", "to be a valid identifier");
    EVAL_EQ("return tostring(#nk.notifications_get_id({'22222222-2222-4222-8222-222222222222'}))", "0");
    EVAL_ERR("nk.notifications_update({{id = '22222222-2222-4222-8222-222222222222', subject = 's'}})",
             "Notification not found: 22222222-2222-4222-8222-222222222222.");
    EVAL_EQ("nk.notification_send_all('s', {}, 1, true) return 'ok'", "ok");
    EVAL_ERR("nk.wallet_ledger_update('22222222-2222-4222-8222-222222222222', {})",
             "Wallet ledger item not found.");
    EVAL_ERR("nk.friend_metadata_update('22222222-2222-4222-8222-222222222222',"
             " '33333333-3333-4333-8333-333333333333', {})",
             "Friend not found.");
    EVAL_ERR("nk.users_get_friend_status('22222222-2222-4222-8222-222222222222', {})", "User account not found.");
}
