/* The Lua runtime: see lua/runtime.h. */
#include "lua/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "lua/internal.h"

enum { MAX_MODULES = 4096, MAX_MODULE_BYTES = 16 << 20, HOOK_EVERY = 1000 };

typedef struct module {
    char *name;  /* "lib.util" for lib/util.lua */
    char *chunk; /* "@lib/util.lua": what error messages show */
    char *code;
    size_t len;
} module_t;

/* A sorted set of lower-case names, read-only after init. */
typedef struct names {
    char **v;
    int n;
} names_t;

static struct {
    const kz_config_t *cfg;
    module_t *mods;
    int nmods;
    names_t rpc, before, after, rt_before, rt_after;
    size_t mem_limit;
    uint64_t timeout_ns;
    bool ready;
} R;

/* ------------------------------------------------------------------------ */
/* Names                                                                    */

static char *lower_dup(const char *s)
{
    char *d = kz_strdup(s);
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return d;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool names_has(const names_t *set, const char *name)
{
    if (!set->n || !name) return false;
    char key[256];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof key; i++)
        key[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    if (name[i]) return false;
    key[i] = '\0';
    const char *k = key;
    return bsearch(&k, set->v, (size_t)set->n, sizeof *set->v, cmp_name) != NULL;
}

static void names_free(names_t *set)
{
    for (int i = 0; i < set->n; i++) kz_free(set->v[i]);
    kz_free(set->v);
    *set = (names_t){0};
}

/* Collects the keys of registry table reg into set. */
static void names_collect(lua_State *L, const char *reg, names_t *set)
{
    lua_getfield(L, LUA_REGISTRYINDEX, reg);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        n++;
    }
    set->v = kz_calloc((size_t)n + 1, sizeof *set->v);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        set->v[set->n++] = kz_strdup(lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    qsort(set->v, (size_t)set->n, sizeof *set->v, cmp_name);
}

bool kz_lua_has_rpc(const char *id) { return names_has(&R.rpc, id); }
bool kz_lua_has_before(const char *m) { return names_has(&R.before, m); }
bool kz_lua_has_after(const char *m) { return names_has(&R.after, m); }
bool kz_lua_has_rt_before(const char *m) { return names_has(&R.rt_before, m); }
bool kz_lua_has_rt_after(const char *m) { return names_has(&R.rt_after, m); }
int kz_lua_module_count(void) { return R.nmods; }

/* ------------------------------------------------------------------------ */
/* Module files                                                             */

static int cmp_module(const void *a, const void *b)
{
    return strcmp(((const module_t *)a)->name, ((const module_t *)b)->name);
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    char *buf = kz_malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_MODULE_BYTES) {
                kz_free(buf);
                fclose(f);
                errno = EFBIG;
                return -1;
            }
            cap *= 2;
            buf = kz_realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        kz_free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Reads every *.lua under root/rel (recursively) into R.mods. */
static int scan_dir(const char *root, const char *rel, char *err, size_t errlen)
{
    char *dir = *rel ? kz_asprintf("%s/%s", root, rel) : kz_strdup(root);
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        kz_free(dir);
        if (!*rel && e == ENOENT) return 0; /* no modules directory: no modules */
        snprintf(err, errlen, "cannot read runtime.path %s: %s", root, strerror(e));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *relpath = *rel ? kz_asprintf("%s/%s", rel, de->d_name) : kz_strdup(de->d_name);
        char *path = kz_asprintf("%s/%s", root, relpath);
        struct stat st;
        if (stat(path, &st) != 0) {
            /* a dangling link: skip */
        } else if (S_ISDIR(st.st_mode)) {
            rc = scan_dir(root, relpath, err, errlen);
        } else if (S_ISREG(st.st_mode)) {
            size_t l = strlen(relpath);
            if (l > 4 && strcmp(relpath + l - 4, ".lua") == 0) {
                if (R.nmods >= MAX_MODULES) {
                    snprintf(err, errlen, "more than %d Lua modules under %s", MAX_MODULES, root);
                    rc = -1;
                } else {
                    module_t m = {0};
                    if (read_file(path, &m.code, &m.len) != 0) {
                        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
                        rc = -1;
                    } else {
                        m.name = kz_strndup(relpath, l - 4);
                        for (char *p = m.name; *p; p++)
                            if (*p == '/') *p = '.';
                        m.chunk = kz_asprintf("@%s", relpath);
                        R.mods = kz_realloc(R.mods, ((size_t)R.nmods + 1) * sizeof *R.mods);
                        R.mods[R.nmods++] = m;
                    }
                }
            }
        }
        kz_free(path);
        kz_free(relpath);
    }
    closedir(d);
    kz_free(dir);
    return rc;
}

static const module_t *module_find(const char *name)
{
    if (!R.nmods) return NULL;
    module_t key = {.name = (char *)name};
    return bsearch(&key, R.mods, (size_t)R.nmods, sizeof *R.mods, cmp_module);
}

/* package.loaders entry: modules by name ("a.b" is a/b.lua or a/b/init.lua). */
static int module_loader(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const module_t *m = module_find(name);
    if (!m) {
        char *init = kz_asprintf("%s.init", name);
        m = module_find(init);
        kz_free(init);
    }
    if (!m) {
        lua_pushfstring(L, "\n\tno module '%s' under runtime.path", name);
        return 1;
    }
    if (luaL_loadbuffer(L, m->code, m->len, m->chunk) != 0) lua_error(L);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* States                                                                   */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    kz_lua_vm_t *vm = ud;
    if (nsize == 0) {
        free(ptr);
        vm->mem -= osize;
        return NULL;
    }
    size_t old = ptr ? osize : 0;
    if (vm->in_call && nsize > old && vm->mem + (nsize - old) > vm->mem_limit) {
        vm->over_memory = true;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    vm->mem = vm->mem - old + nsize;
    return p;
}

kz_lua_vm_t *kz_lua_self(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

kz_db_t *kz_lua_db(lua_State *L)
{
    kz_lua_vm_t *vm = kz_lua_self(L);
    if (!vm->db) luaL_error(L, "no database connection here");
    return vm->db;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    kz_lua_vm_t *vm = kz_lua_self(L);
    if (!vm->over_time && kz_mono_ns() < vm->deadline_ns) return;
    /* From now on every instruction raises, so a pcall in the script
     * cannot swallow the stop for long. */
    if (!vm->over_time) {
        vm->over_time = true;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    }
    luaL_error(L, "call exceeded its time budget");
}

static int full_gc(lua_State *L)
{
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}

static void budgets_on(kz_lua_vm_t *vm, kz_db_t *db, const kz_lua_ctx_t *ctx)
{
    vm->db = db;
    vm->ctx = ctx;
    vm->in_call = true;
    vm->over_time = vm->over_memory = false;
    vm->raised_code = 0;
    vm->raised[0] = '\0';
    vm->deadline_ns = kz_mono_ns() + R.timeout_ns;
    lua_sethook(vm->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static void budgets_off(kz_lua_vm_t *vm)
{
    lua_sethook(vm->L, NULL, 0, 0);
    vm->in_call = false;
    vm->db = NULL;
    vm->ctx = NULL;
    /* Garbage from the call counts against the next one: collect when the
     * state holds more than half its budget (protected: a collection may
     * run a library finalizer). */
    if (vm->mem > vm->mem_limit / 2 && lua_cpcall(vm->L, full_gc, NULL) != 0) lua_pop(vm->L, 1);
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_pushcfunction(L, fn);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

/* Removes t[k] for each name of a NULL-terminated list, t on top. */
static void drop_fields(lua_State *L, const char *const *keys)
{
    for (; *keys; keys++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *keys);
    }
}

/* loadstring/load of source text only: LuaJIT would also load bytecode,
 * which is not verified and could break out of the sandbox. */
static int safe_loadstring(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *name = luaL_optstring(L, 2, s);
    if (n && s[0] == LUA_SIGNATURE[0]) {
        lua_pushnil(L);
        lua_pushliteral(L, "binary chunks are not allowed");
        return 2;
    }
    if (luaL_loadbuffer(L, s, n, name) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static int safe_load(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "load takes a string here (a reader function is not supported)");
    return safe_loadstring(L);
}

static void sandbox(lua_State *L)
{
    open_lib(L, "", luaopen_base);
    open_lib(L, LUA_LOADLIBNAME, luaopen_package);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, LUA_BITLIBNAME, luaopen_bit);
    open_lib(L, LUA_OSLIBNAME, luaopen_os);

    /* newproxy would give scripts finalizers, which run with hooks off
     * (outside the time budget) and may raise where nothing catches. */
    static const char *const base_out[] = {"dofile", "loadfile", "newproxy", NULL};
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    drop_fields(L, base_out);
    lua_pushcfunction(L, safe_loadstring);
    lua_setfield(L, -2, "loadstring");
    lua_pushcfunction(L, safe_load);
    lua_setfield(L, -2, "load");
    lua_pop(L, 1);

    static const char *const os_out[] = {"execute", "exit",    "getenv", "remove",
                                         "rename",  "tmpname", "setlocale", NULL};
    lua_getglobal(L, "os");
    drop_fields(L, os_out);
    lua_pop(L, 1);

    /* require finds preloaded modules and the files under runtime.path,
     * never C libraries or other paths. */
    lua_getglobal(L, "package");
    static const char *const pkg_out[] = {"loadlib", "seeall", NULL};
    drop_fields(L, pkg_out);
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_getfield(L, -1, "loaders");
    lua_rawgeti(L, -1, 1); /* the preload searcher */
    lua_newtable(L);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushcfunction(L, module_loader);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -3, "loaders");
    lua_pop(L, 2);

    /* The libraries' own preloads go too: "string.buffer" would hand out
     * raw pointers (its reserve() loads the FFI). package.preload and the
     * searcher share the registry's _PRELOAD table. */
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "_PRELOAD");
    lua_getglobal(L, "package");
    lua_insert(L, -2);
    lua_setfield(L, -2, "preload");
    lua_pop(L, 1);
}

static void push_nk(lua_State *L)
{
    static const char *const regs[] = {KZ_LUA_REG_RPC,       KZ_LUA_REG_BEFORE,   KZ_LUA_REG_AFTER,
                                       KZ_LUA_REG_RT_BEFORE, KZ_LUA_REG_RT_AFTER, NULL};
    for (const char *const *r = regs; *r; r++) {
        lua_newtable(L);
        lua_setfield(L, LUA_REGISTRYINDEX, *r);
    }
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_newtable(L);
    kz_nk_open_register(L);
    kz_nk_open_util(L);
    kz_nk_open_account(L);
    kz_nk_open_storage(L);
    kz_nk_open_social(L);
    kz_nk_open_wallet(L);
    kz_nk_open_leaderboard(L);
    kz_nk_open_match(L);
    lua_setfield(L, -2, "nakama");
    lua_pop(L, 2);
}

/* Turns the error value on top into err (and pops it). */
static void take_error(lua_State *L, kz_lua_error_t *err)
{
    err->code = 13;
    if (lua_type(L, -1) == LUA_TSTRING) {
        kz_lua_vm_t *vm = kz_lua_self(L);
        snprintf(err->message, sizeof err->message, "%s", lua_tostring(L, -1));
        if (vm->raised_code && strcmp(err->message, vm->raised) == 0) err->code = vm->raised_code;
    } else if (lua_istable(L, -1)) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        const char *m = lua_tostring(L, -2);
        snprintf(err->message, sizeof err->message, "%s", m ? m : "");
        if (lua_isnumber(L, -1)) {
            lua_Number c = lua_tonumber(L, -1);
            if (c >= 1 && c <= 16 && c == (int)c) err->code = (int)c;
        }
        lua_pop(L, 2);
    } else {
        snprintf(err->message, sizeof err->message, "runtime error (%s)", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
}

static kz_lua_vm_t *vm_create(kz_db_t *db, bool probe, char *err, size_t errlen)
{
    kz_lua_vm_t *vm = kz_calloc(1, sizeof *vm);
    vm->mem_limit = R.mem_limit;
    vm->L = lua_newstate(vm_alloc, vm);
    if (!vm->L) {
        snprintf(err, errlen, "cannot create a Lua state");
        kz_free(vm);
        return NULL;
    }
    lua_State *L = vm->L;
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    /* The allocator refuses past the budget without collecting first, so
     * collect sooner than the default (a pause of 200%). */
    lua_gc(L, LUA_GCSETPAUSE, 100);
    sandbox(L);
    push_nk(L);
    if (probe) {
        lua_pushboolean(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, "kizuna.probe");
    }
    kz_lua_ctx_t ctx = {.mode = "run_once"};
    for (int i = 0; i < R.nmods; i++) {
        lua_getglobal(L, "require");
        lua_pushstring(L, R.mods[i].name);
        budgets_on(vm, db, &ctx);
        int rc = lua_pcall(L, 1, 0, 0);
        bool over = vm->over_time || vm->over_memory;
        budgets_off(vm);
        if (rc != 0) {
            kz_lua_error_t e;
            take_error(L, &e);
            snprintf(err, errlen, "Lua module %s: %s%s", R.mods[i].name, e.message,
                     over ? (vm->over_time ? " (time budget)" : " (memory budget)") : "");
            kz_lua_vm_free(vm);
            return NULL;
        }
    }
    if (probe) {
        lua_pushnil(L);
        lua_setfield(L, LUA_REGISTRYINDEX, "kizuna.probe");
    }
    return vm;
}

kz_lua_vm_t *kz_lua_vm_new(kz_db_t *db, char *err, size_t errlen) { return vm_create(db, false, err, errlen); }

void kz_lua_vm_free(kz_lua_vm_t *vm)
{
    if (!vm) return;
    lua_close(vm->L);
    kz_free(vm);
}

const kz_config_t *kz_lua_config(void) { return R.cfg; }

int kz_lua_init(const kz_config_t *cfg, kz_db_t *db, char *err, size_t errlen)
{
    R.cfg = cfg;
    R.mem_limit = (size_t)cfg->runtime.lua_memory_mb << 20;
    R.timeout_ns = (uint64_t)cfg->runtime.lua_call_timeout_ms * 1000000ull;
    if (scan_dir(cfg->runtime.path, "", err, errlen) != 0) {
        kz_lua_shutdown();
        return -1;
    }
    if (R.nmods) qsort(R.mods, (size_t)R.nmods, sizeof *R.mods, cmp_module);
    kz_lua_vm_t *probe = vm_create(db, true, err, errlen);
    if (!probe) {
        kz_lua_shutdown();
        return -1;
    }
    names_collect(probe->L, KZ_LUA_REG_RPC, &R.rpc);
    names_collect(probe->L, KZ_LUA_REG_BEFORE, &R.before);
    names_collect(probe->L, KZ_LUA_REG_AFTER, &R.after);
    names_collect(probe->L, KZ_LUA_REG_RT_BEFORE, &R.rt_before);
    names_collect(probe->L, KZ_LUA_REG_RT_AFTER, &R.rt_after);
    kz_lua_vm_free(probe);
    R.ready = true;
    if (R.nmods)
        kz_log_info("Lua runtime: %d module(s) from %s, %d RPC(s), %d before and %d after hook(s)", R.nmods,
                    cfg->runtime.path, R.rpc.n, R.before.n + R.rt_before.n, R.after.n + R.rt_after.n);
    return 0;
}

void kz_lua_shutdown(void)
{
    for (int i = 0; i < R.nmods; i++) {
        kz_free(R.mods[i].name);
        kz_free(R.mods[i].chunk);
        kz_free(R.mods[i].code);
    }
    kz_free(R.mods);
    R.mods = NULL;
    R.nmods = 0;
    names_free(&R.rpc);
    names_free(&R.before);
    names_free(&R.after);
    names_free(&R.rt_before);
    names_free(&R.rt_after);
    R.ready = false;
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                    */

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void kz_lua_push_ctx(lua_State *L, const kz_lua_ctx_t *c)
{
    lua_createtable(L, 0, 12);
    lua_newtable(L);
    for (const char *e = R.cfg ? R.cfg->runtime.env : NULL; e && *e;) {
        const char *nl = strchr(e, '\n'), *end = nl ? nl : e + strlen(e);
        const char *eq = memchr(e, '=', (size_t)(end - e));
        if (eq) {
            lua_pushlstring(L, e, (size_t)(eq - e));
            lua_pushlstring(L, eq + 1, (size_t)(end - eq - 1));
            lua_rawset(L, -3);
        }
        e = nl ? nl + 1 : end;
    }
    lua_setfield(L, -2, "env");
    set_str(L, "execution_mode", c->mode);
    set_str(L, "node", "kizuna");
    set_str(L, "version", KZ_VERSION);
    if (c->headers)
        kz_lua_push_json(L, c->headers);
    else
        lua_newtable(L);
    lua_setfield(L, -2, "headers");
    if (c->query_params)
        kz_lua_push_json(L, c->query_params);
    else
        lua_newtable(L);
    lua_setfield(L, -2, "query_params");
    if (c->user_id && *c->user_id) {
        set_str(L, "user_id", c->user_id);
        set_str(L, "username", c->username);
        if (c->vars)
            kz_lua_push_json(L, c->vars);
        else
            lua_newtable(L);
        lua_setfield(L, -2, "vars");
        lua_pushnumber(L, (lua_Number)c->user_session_exp);
        lua_setfield(L, -2, "user_session_exp");
    }
    set_str(L, "session_id", c->session_id);
    set_str(L, "lang", c->lang);
    set_str(L, "client_ip", c->client_ip);
    if (c->client_port) {
        lua_pushinteger(L, c->client_port);
        lua_setfield(L, -2, "client_port");
    }
}

/* Pushes registry[reg][lower(name)]; returns false (nothing pushed) when
 * it is not a function. */
static bool push_registered(lua_State *L, const char *reg, const char *name)
{
    char *key = lower_dup(name);
    lua_getfield(L, LUA_REGISTRYINDEX, reg);
    lua_getfield(L, -1, key);
    kz_free(key);
    lua_remove(L, -2);
    if (lua_isfunction(L, -1)) return true;
    lua_pop(L, 1);
    return false;
}

/* Runs the function below its nargs arguments under the budgets. On an
 * error fills err, and replaces a state that broke a budget. */
static int vm_call(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, int nargs, int nres,
                   kz_lua_error_t *err)
{
    kz_lua_vm_t *vm = *vmp;
    budgets_on(vm, db, ctx);
    int rc = lua_pcall(vm->L, nargs, nres, 0);
    bool over_time = vm->over_time, over_memory = vm->over_memory;
    budgets_off(vm);
    if (over_time || over_memory) {
        if (rc == 0) lua_pop(vm->L, nres);
        else lua_pop(vm->L, 1);
        err->code = 13;
        if (over_time)
            snprintf(err->message, sizeof err->message, "Lua call exceeded its time budget (%llu ms).",
                     (unsigned long long)(R.timeout_ns / 1000000));
        else
            snprintf(err->message, sizeof err->message, "Lua call exceeded its memory budget (%zu MiB).",
                     R.mem_limit >> 20);
        kz_log_warn("Lua %s: %s The state is discarded.", ctx->mode, err->message);
        kz_lua_vm_free(vm);
        char e[256];
        *vmp = kz_lua_vm_new(db, e, sizeof e);
        if (!*vmp) kz_log_error("cannot rebuild a Lua state: %s", e);
        return KZ_LUA_ERROR;
    }
    if (rc != 0) {
        take_error(vm->L, err);
        return KZ_LUA_ERROR;
    }
    return KZ_LUA_OK;
}

/* A worker whose state could not be rebuilt tries again on its next call. */
static bool vm_ready(kz_lua_vm_t **vmp, kz_db_t *db, kz_lua_error_t *err)
{
    if (*vmp) return true;
    char e[256];
    *vmp = kz_lua_vm_new(db, e, sizeof e);
    if (*vmp) return true;
    err->code = 13;
    snprintf(err->message, sizeof err->message, "Lua runtime unavailable: %s", e);
    return false;
}

int kz_lua_rpc(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, const char *id, const char *payload,
               size_t len, char **out, size_t *outlen, kz_lua_error_t *err)
{
    *out = NULL;
    *outlen = 0;
    if (!vm_ready(vmp, db, err)) return KZ_LUA_ERROR;
    lua_State *L = (*vmp)->L;
    if (!push_registered(L, KZ_LUA_REG_RPC, id)) return KZ_LUA_NOT_FOUND;
    kz_lua_push_ctx(L, ctx);
    lua_pushlstring(L, payload ? payload : "", payload ? len : 0);
    int rc = vm_call(vmp, db, ctx, 2, 1, err);
    if (rc != KZ_LUA_OK) return rc;
    L = (*vmp)->L;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        *out = kz_strndup(s, n);
        *outlen = n;
    } else if (!lua_isnil(L, -1)) {
        lua_pop(L, 1);
        err->code = 13;
        snprintf(err->message, sizeof err->message,
                 "Runtime function returned invalid data - only allowed one return value of type String/Byte.");
        return KZ_LUA_ERROR;
    }
    lua_pop(L, 1);
    return KZ_LUA_OK;
}

int kz_lua_before(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, bool rt, const char *name,
                  json_t **msg, kz_lua_error_t *err)
{
    if (!vm_ready(vmp, db, err)) return KZ_LUA_ERROR;
    lua_State *L = (*vmp)->L;
    if (!push_registered(L, rt ? KZ_LUA_REG_RT_BEFORE : KZ_LUA_REG_BEFORE, name)) return KZ_LUA_NOT_FOUND;
    kz_lua_push_ctx(L, ctx);
    if (*msg)
        kz_lua_push_json(L, *msg);
    else
        lua_pushnil(L);
    int rc = vm_call(vmp, db, ctx, 2, 1, err);
    if (rc != KZ_LUA_OK) return rc;
    L = (*vmp)->L;
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return KZ_LUA_REJECTED;
    }
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        err->code = 13;
        snprintf(err->message, sizeof err->message, "Invalid return type for %s hook of %s: a table or nil.",
                 "before", name);
        return KZ_LUA_ERROR;
    }
    char e[200];
    json_t *j = kz_lua_to_json(L, -1, e, sizeof e);
    lua_pop(L, 1);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
        snprintf(e, sizeof e, "a list where the request object belongs");
    }
    if (!j) {
        err->code = 13;
        snprintf(err->message, sizeof err->message, "Before hook of %s returned %s", name, e);
        return KZ_LUA_ERROR;
    }
    json_decref(*msg);
    *msg = j;
    return KZ_LUA_OK;
}

int kz_lua_callback(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, const char *reg,
                    int (*push_args)(lua_State *L, void *arg),
                    int (*take)(lua_State *L, void *arg, kz_lua_error_t *err), void *arg, kz_lua_error_t *err)
{
    if (!vm_ready(vmp, db, err)) return KZ_LUA_ERROR;
    lua_State *L = (*vmp)->L;
    lua_getfield(L, LUA_REGISTRYINDEX, reg);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return KZ_LUA_NOT_FOUND;
    }
    kz_lua_push_ctx(L, ctx);
    (*vmp)->db = db; /* push_args may read the store */
    int n = push_args(L, arg);
    int rc = vm_call(vmp, db, ctx, 1 + n, take ? 1 : 0, err);
    if (rc != KZ_LUA_OK || !take) return rc;
    L = (*vmp)->L;
    rc = take(L, arg, err);
    lua_pop(L, 1);
    return rc;
}

void kz_lua_after(kz_lua_vm_t **vmp, kz_db_t *db, const kz_lua_ctx_t *ctx, bool rt, const char *name,
                  json_t *resp, json_t *req)
{
    kz_lua_error_t err;
    if (!vm_ready(vmp, db, &err)) {
        kz_log_error("after hook of %s: %s", name, err.message);
        return;
    }
    lua_State *L = (*vmp)->L;
    if (!push_registered(L, rt ? KZ_LUA_REG_RT_AFTER : KZ_LUA_REG_AFTER, name)) return;
    kz_lua_push_ctx(L, ctx);
    if (resp)
        kz_lua_push_json(L, resp);
    else
        lua_pushnil(L);
    if (req)
        kz_lua_push_json(L, req);
    else
        lua_pushnil(L);
    if (vm_call(vmp, db, ctx, 3, 0, &err) != KZ_LUA_OK)
        kz_log_warn("after hook of %s raised: %s", name, err.message);
}

/* ------------------------------------------------------------------------ */
/* Registration (nk.register_*)                                             */

static int reg_named(lua_State *L, const char *reg, const char *what)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    const char *id = luaL_checkstring(L, 2);
    if (!*id) return luaL_error(L, "%s id must not be empty", what);
    char *key = lower_dup(id);
    lua_getfield(L, LUA_REGISTRYINDEX, reg);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, key);
    kz_free(key);
    return 0;
}

static int nk_register_rpc(lua_State *L) { return reg_named(L, KZ_LUA_REG_RPC, "rpc"); }
static int nk_register_req_before(lua_State *L) { return reg_named(L, KZ_LUA_REG_BEFORE, "hook"); }
static int nk_register_req_after(lua_State *L) { return reg_named(L, KZ_LUA_REG_AFTER, "hook"); }
static int nk_register_rt_before(lua_State *L) { return reg_named(L, KZ_LUA_REG_RT_BEFORE, "hook"); }
static int nk_register_rt_after(lua_State *L) { return reg_named(L, KZ_LUA_REG_RT_AFTER, "hook"); }

static int reg_single(lua_State *L, const char *reg)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, reg);
    return 0;
}

static int nk_register_matchmaker_matched(lua_State *L) { return reg_single(L, KZ_LUA_REG_MATCHED); }
static int nk_register_leaderboard_reset(lua_State *L) { return reg_single(L, KZ_LUA_REG_LB_RESET); }
static int nk_register_tournament_reset(lua_State *L) { return reg_single(L, KZ_LUA_REG_T_RESET); }
static int nk_register_tournament_end(lua_State *L) { return reg_single(L, KZ_LUA_REG_T_END); }
static int nk_register_shutdown(lua_State *L) { return reg_single(L, KZ_LUA_REG_SHUTDOWN); }

/* run_once: runs at once in the start-up probe, so once per node. */
static int nk_run_once(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_getfield(L, LUA_REGISTRYINDEX, "kizuna.probe");
    bool probe = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!probe) return 0;
    lua_pushvalue(L, 1);
    kz_lua_push_ctx(L, &(kz_lua_ctx_t){.mode = "run_once"});
    lua_call(L, 1, 0);
    return 0;
}

void kz_nk_open_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"register_rpc", nk_register_rpc},
        {"register_req_before", nk_register_req_before},
        {"register_req_after", nk_register_req_after},
        {"register_rt_before", nk_register_rt_before},
        {"register_rt_after", nk_register_rt_after},
        {"register_matchmaker_matched", nk_register_matchmaker_matched},
        {"register_leaderboard_reset", nk_register_leaderboard_reset},
        {"register_tournament_reset", nk_register_tournament_reset},
        {"register_tournament_end", nk_register_tournament_end},
        {"register_shutdown", nk_register_shutdown},
        {"run_once", nk_run_once},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
