/* nk utility functions: JSON, logging, encodings, hashes, UUIDs, time and
 * cron, the process-wide local cache, the call context, raw SQL and an
 * HTTP client.
 *
 * Names, positional arguments, defaults and return values follow Nakama's
 * Lua runtime (server/runtime_lua_nakama.go), including its quirks where a
 * script could notice them: empty strings are refused by the encoders and
 * hashes, sha256_hash and md5_hash return lower-case hex while
 * hmac_sha256_hash returns the raw digest, nk.time is in milliseconds,
 * cron_next/cron_prev refuse timestamp 0, and http_request returns three
 * values (code, headers, body). Failures raise Lua errors with a message,
 * as Nakama's do.
 *
 * Several functions hold C resources (a store cursor, a socket, malloc'd
 * buffers, the cache mutex) while they build their result. A Lua error in
 * between (the state's memory budget refusing an allocation) would unwind
 * straight past them, so they build the result in a protected call: the
 * builder function is pushed before anything is acquired (pushing may
 * raise), then run with lua_pcall, then the resources are released and an
 * error, if any, is rethrown. */
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <crypt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/cron.h"
#include "core/log.h"
#include "core/md5.h"
#include "core/uuid.h"
#include "lua/internal.h"
#include "lua/nk_store.h"

enum {
    RANDOM_MAX_BYTES = 1 << 20,          /* secure_random_bytes count bound */
    SQL_MAX_PARAMS = 1000,               /* parameters of one sql_exec / sql_query */
    HTTP_MAX_RESPONSE = 4 << 20,         /* response bytes (status line, headers, body) */
    HTTP_MAX_REQUEST_HEADERS = 64 << 10, /* request head bytes */
    HTTP_DEFAULT_TIMEOUT_MS = 5000,
    LC_MAX_ENTRIES = 100000, /* local cache bounds */
    LC_MAX_BYTES = 64 << 20, /* keys and values */
    LC_MAX_KEY = 4096,
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_init_once(void)
{
    if (sodium_init() < 0) abort();
}

static void need_sodium(void)
{
    pthread_once(&sodium_once, sodium_init_once);
}

/* A string argument that must not be empty (Nakama refuses "" with the
 * same message for every encoder and hash). [-0, +0, v] */
static const char *check_nonempty(lua_State *L, int idx, size_t *len, const char *msg)
{
    const char *s = luaL_checklstring(L, idx, len);
    if (*len == 0) luaL_argerror(L, idx, msg);
    return s;
}

/* A whole number argument in int64 range (fractions are truncated, as
 * gopher-lua's CheckInt64 does). [-0, +0, v] */
static int64_t check_int64(lua_State *L, int idx)
{
    lua_Number n = luaL_checknumber(L, idx);
    if (!isfinite(n) || n < -9.2e18 || n > 9.2e18) luaL_argerror(L, idx, "expects an integer");
    return (int64_t)n;
}

static int64_t opt_int64(lua_State *L, int idx, int64_t def)
{
    return lua_isnoneornil(L, idx) ? def : check_int64(L, idx);
}

/* Pushes the builder of a protected push (see the file comment). Call
 * before acquiring anything. [-0, +1, m] */
static void builder_push(lua_State *L, lua_CFunction fn)
{
    luaL_checkstack(L, 8, "nk");
    lua_pushcfunction(L, fn);
}

/* Runs the builder pushed by builder_push with ud as its argument. Returns
 * 0 with its nres results on the stack, or a Lua status with the error value
 * on top (release, then lua_error). [-1, +nres|1, -] */
static int builder_run(lua_State *L, void *ud, int nres)
{
    lua_pushlightuserdata(L, ud);
    return lua_pcall(L, 1, nres, 0);
}

/* A byte string handed to a builder. */
typedef struct bytes {
    const char *s;
    size_t len;
} bytes_t;

static int build_lstring(lua_State *L)
{
    const bytes_t *b = lua_touserdata(L, 1);
    lua_pushlstring(L, b->s, b->len);
    return 1;
}

static int build_json(lua_State *L)
{
    kz_lua_push_json(L, lua_touserdata(L, 1));
    return 1;
}

/* ------------------------------------------------------------------------ */
/* JSON and logging                                                         */

/* nk.json_encode(value) -> string [-0, +1, e] */
static int nk_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    builder_push(L, build_lstring);
    char err[200];
    json_t *j = kz_lua_to_json(L, 1, err, sizeof err);
    if (!j) return luaL_error(L, "json_encode: cannot encode %s", err);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!s) return luaL_error(L, "json_encode: cannot encode the value");
    bytes_t b = {s, strlen(s)};
    int st = builder_run(L, &b, 1);
    free(s);
    return st ? lua_error(L) : 1;
}

/* nk.json_decode(string) -> value [-0, +1, e] */
static int nk_json_decode(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects JSON string");
    builder_push(L, build_json);
    json_error_t jerr;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
    if (!j) return luaL_error(L, "json_decode: not a valid JSON string: %s", jerr.text);
    int st = builder_run(L, j, 1);
    json_decref(j);
    return st ? lua_error(L) : 1;
}

static int logger(lua_State *L, kz_log_level_t level)
{
    const char *m = luaL_checkstring(L, 1);
    lua_Debug ar;
    const char *where = "lua";
    int line = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
        where = ar.short_src;
        line = ar.currentline;
    }
    kz_log_write(level, where, line, "%s", m);
    lua_pushstring(L, m);
    return 1;
}

static int nk_logger_debug(lua_State *L)
{
    return logger(L, KZ_LOG_DEBUG);
}
static int nk_logger_info(lua_State *L)
{
    return logger(L, KZ_LOG_INFO);
}
static int nk_logger_warn(lua_State *L)
{
    return logger(L, KZ_LOG_WARN);
}
static int nk_logger_error(lua_State *L)
{
    return logger(L, KZ_LOG_ERROR);
}

/* ------------------------------------------------------------------------ */
/* Encodings                                                                */

/* Encodes with libsodium's variant into a Lua string. [-0, +1, m] */
static int push_base64(lua_State *L, const char *in, size_t n, int variant)
{
    need_sodium();
    size_t cap = sodium_base64_encoded_len(n, variant);
    char *out = lua_newuserdata(L, cap); /* collected with the call's garbage */
    sodium_bin2base64(out, cap, (const unsigned char *)in, n, variant);
    lua_pushstring(L, out);
    return 1;
}

/* Decodes base64 in[0..n). With pad_missing, '=' is appended up to a
 * multiple of four first (Nakama's way of making padding optional);
 * otherwise the input must be padded exactly. [-0, +1, e] */
static int decode_base64(lua_State *L, const char *in, size_t n, bool pad_missing, bool url)
{
    need_sodium();
    size_t padded = n;
    if (pad_missing && n % 4) padded += 4 - n % 4;
    char *buf = lua_newuserdata(L, padded + 1);
    memcpy(buf, in, n);
    memset(buf + n, '=', padded - n);
    buf[padded] = '\0';
    unsigned char *out = lua_newuserdata(L, padded / 4 * 3 + 3);
    size_t outlen = 0;
    int variant = url ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_ORIGINAL;
    if (sodium_base642bin(out, padded / 4 * 3 + 3, buf, padded, NULL, &outlen, NULL, variant) != 0)
        return luaL_error(L, "not a valid base64%s string", url ? " url" : "");
    lua_pushlstring(L, (const char *)out, outlen);
    return 1;
}

/* nk.base64_encode(input, padding=true) */
static int nk_base64_encode(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects string");
    bool pad = kz_lua_optbool(L, 2, true);
    return push_base64(
        L, s, n, pad ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

/* nk.base64_decode(input, padding=true): padding true accepts input with
 * or without its '=' padding, false only exactly padded input. */
static int nk_base64_decode(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects string");
    return decode_base64(L, s, n, kz_lua_optbool(L, 2, true), false);
}

/* nk.base64url_encode(input, padding=true) */
static int nk_base64url_encode(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects string");
    bool pad = kz_lua_optbool(L, 2, true);
    return push_base64(
        L, s, n, pad ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* nk.base64url_decode(input, padding=false): Nakama's flag is inverted here
 * compared to base64_decode: false (the default) accepts input with or
 * without padding, true only exactly padded input. */
static int nk_base64url_decode(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects string");
    return decode_base64(L, s, n, !kz_lua_optbool(L, 2, false), true);
}

/* nk.base16_encode(input) -> lower-case hex */
static int nk_base16_encode(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects string");
    char *out = lua_newuserdata(L, n * 2 + 1);
    sodium_bin2hex(out, n * 2 + 1, (const unsigned char *)s, n);
    lua_pushlstring(L, out, n * 2);
    return 1;
}

/* nk.base16_decode(input): either case, even length, nothing else. */
static int nk_base16_decode(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects string");
    unsigned char *out = lua_newuserdata(L, n / 2 + 1);
    size_t outlen = 0;
    if (n % 2 || sodium_hex2bin(out, n / 2 + 1, s, n, NULL, &outlen, NULL) != 0)
        return luaL_error(L, "not a valid base16 string");
    lua_pushlstring(L, (const char *)out, outlen);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Hashes and random bytes                                                  */

/* nk.md5_hash(input) -> 32 lower-case hex digits */
static int nk_md5_hash(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects input string");
    char hex[KZ_MD5_HEX_LEN + 1];
    kz_md5_hex(s, n, hex);
    lua_pushlstring(L, hex, KZ_MD5_HEX_LEN);
    return 1;
}

/* nk.sha256_hash(input) -> 64 lower-case hex digits (Nakama formats the
 * digest with %x). */
static int nk_sha256_hash(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects input string");
    need_sodium();
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)s, n);
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    lua_pushlstring(L, hex, sizeof hex - 1);
    return 1;
}

/* nk.hmac_sha256_hash(input, key) -> the 32 raw digest bytes (Nakama
 * returns mac.Sum as a string, not hex). Keys of any length. */
static int nk_hmac_sha256_hash(lua_State *L)
{
    size_t n, kn;
    const char *s = check_nonempty(L, 1, &n, "expects input string");
    const char *k = check_nonempty(L, 2, &kn, "expects key string");
    need_sodium();
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)k, kn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)s, n);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    lua_pushlstring(L, (const char *)mac, sizeof mac);
    return 1;
}

/* nk.secure_random_bytes(count) -> count bytes from the system CSPRNG
 * (0..1 MiB). */
static int nk_secure_random_bytes(lua_State *L)
{
    int64_t n = check_int64(L, 1);
    if (n < 0 || n > RANDOM_MAX_BYTES) luaL_argerror(L, 1, "expects a count between 0 and 1048576");
    need_sodium();
    unsigned char *buf = lua_newuserdata(L, n ? (size_t)n : 1);
    randombytes_buf(buf, (size_t)n);
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* UUIDs                                                                    */

static int nk_uuid_v4(lua_State *L)
{
    char u[37];
    kz_uuid_v4(u);
    lua_pushlstring(L, u, KZ_UUID_LEN);
    return 1;
}

/* nk.uuid_bytes_to_string(bytes): exactly 16 bytes -> canonical text. */
static int nk_uuid_bytes_to_string(lua_State *L)
{
    size_t n;
    const unsigned char *b =
        (const unsigned char *)check_nonempty(L, 1, &n, "expects a UUID byte string");
    if (n != 16) luaL_argerror(L, 1, "not a valid UUID byte string");
    char u[37], *p = u;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    lua_pushlstring(L, u, KZ_UUID_LEN);
    return 1;
}

/* nk.uuid_string_to_bytes(text) -> 16 bytes. Accepts the forms gofrs/uuid
 * does: canonical, in braces, with a urn:uuid: prefix, or 32 bare hex
 * digits; either case. */
static int nk_uuid_string_to_bytes(lua_State *L)
{
    size_t n;
    const char *s = check_nonempty(L, 1, &n, "expects a UUID string");
    if (n == 45 && strncasecmp(s, "urn:uuid:", 9) == 0) {
        s += 9;
        n -= 9;
    } else if (n == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        n -= 2;
    }
    char digits[33];
    size_t d = 0;
    if (n == 36 && kz_uuid_valid(s, n)) {
        for (size_t i = 0; i < n; i++)
            if (s[i] != '-') digits[d++] = s[i];
    } else if (n == 32) {
        memcpy(digits, s, 32);
        d = 32;
    }
    unsigned char out[16];
    size_t outlen = 0;
    if (d != 32 || sodium_hex2bin(out, sizeof out, digits, 32, NULL, &outlen, NULL) != 0 ||
        outlen != 16)
        luaL_argerror(L, 1, "not a valid UUID string");
    lua_pushlstring(L, (const char *)out, 16);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Time and cron                                                            */

/* Days from 1970-01-01 to year-month-day in the proleptic Gregorian
 * calendar (month 1..12). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* A whole number field of a date table, def when absent (def < 0: required). */
static int64_t date_field(lua_State *L, int t, const char *k, int64_t def)
{
    lua_getfield(L, t, k);
    int64_t v = def;
    if (lua_type(L, -1) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, -1);
        if (!isfinite(n) || fabs(n) > 1e12) luaL_error(L, "time: field '%s' is out of range", k);
        v = (int64_t)n;
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "time: field '%s' must be a number", k);
    } else if (def < 0) {
        luaL_error(L, "time: field '%s' missing in date table", k);
    }
    lua_pop(L, 1);
    return v;
}

/* nk.time([date]) -> unix milliseconds. Without an argument the current
 * time (the server clock, which tests can move); with a table {year, month,
 * day, hour=12, min=0, sec=0, msec=0} that UTC instant. Out-of-range fields
 * are normalised as Go's time.Date does (month 13 is January next year). */
static int nk_time(lua_State *L)
{
    if (lua_gettop(L) == 0) {
        lua_pushnumber(L, (lua_Number)kz_now_ms());
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t year = date_field(L, 1, "year", -1), month = date_field(L, 1, "month", -1);
    int64_t day = date_field(L, 1, "day", -1), hour = date_field(L, 1, "hour", 12);
    int64_t min = date_field(L, 1, "min", 0), sec = date_field(L, 1, "sec", 0);
    int64_t msec = date_field(L, 1, "msec", 0);
    int64_t m0 = month - 1;
    int64_t ydelta = m0 >= 0 ? m0 / 12 : -((11 - m0) / 12);
    year += ydelta;
    m0 -= ydelta * 12;
    int64_t days = days_from_civil(year, m0 + 1, 1) + (day - 1);
    int64_t ms = (((days * 24 + hour) * 60 + min) * 60 + sec) * 1000 + msec;
    lua_pushnumber(L, (lua_Number)ms);
    return 1;
}

/* Shared by cron_next and cron_prev: the matching instant (unix seconds)
 * after or before the timestamp, or nil when there is none. */
static int cron_step(lua_State *L, bool next)
{
    const char *expr = check_nonempty(L, 1, &(size_t){0}, "expects cron string");
    int64_t ts = check_int64(L, 2);
    if (ts == 0) luaL_argerror(L, 2, "expects timestamp in seconds");
    char err[160] = "";
    kz_cron_t *c = kz_cron_parse(expr, err, sizeof err);
    if (!c) {
        char msg[224];
        snprintf(msg, sizeof msg, "expects a valid cron string: %s", err);
        return luaL_argerror(L, 1, msg);
    }
    int64_t t = next ? kz_cron_next(c, ts) : kz_cron_prev(c, ts);
    kz_cron_free(c);
    if (t < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)t);
    return 1;
}

static int nk_cron_next(lua_State *L)
{
    return cron_step(L, true);
}
static int nk_cron_prev(lua_State *L)
{
    return cron_step(L, false);
}

/* ------------------------------------------------------------------------ */
/* Local cache                                                              */

/* One process-wide cache shared by every Lua state: a chained hash map
 * under one mutex. Values are kept in a form no state owns: strings and
 * numbers as such, tables as JSON text (a get builds a fresh table). An
 * entry past its expiry is dropped when it is read. Nothing raises a Lua
 * error while the mutex is held. */

enum { LC_NIL, LC_BOOL, LC_NUMBER, LC_STRING, LC_TABLE };

typedef struct lc_entry {
    struct lc_entry *next; /* bucket chain */
    uint64_t hash;
    char *key;
    size_t klen;
    int type;   /* LC_* */
    double num; /* LC_NUMBER; LC_BOOL as 0/1 */
    char *data; /* LC_STRING bytes / LC_TABLE JSON, owned */
    size_t len;
    int64_t expire_ms; /* 0 = never */
} lc_entry_t;

static struct {
    pthread_mutex_t mu;
    lc_entry_t **buckets;
    size_t nbuckets; /* power of two, 0 before the first put */
    size_t count;
    size_t bytes; /* keys + values */
} LC = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t lc_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static size_t lc_entry_bytes(const lc_entry_t *e)
{
    return e->klen + e->len;
}

/* The link pointing at key's entry (or at the NULL ending its chain). */
static lc_entry_t **lc_find(const char *key, size_t klen, uint64_t h)
{
    lc_entry_t **p = &LC.buckets[h & (LC.nbuckets - 1)];
    for (; *p; p = &(*p)->next)
        if ((*p)->hash == h && (*p)->klen == klen && memcmp((*p)->key, key, klen) == 0) break;
    return p;
}

static void lc_unlink_free(lc_entry_t **link)
{
    lc_entry_t *e = *link;
    *link = e->next;
    LC.count--;
    LC.bytes -= lc_entry_bytes(e);
    kz_free(e->key);
    kz_free(e->data);
    kz_free(e);
}

static void lc_grow(void)
{
    size_t n = LC.nbuckets ? LC.nbuckets * 2 : 64;
    lc_entry_t **b = kz_calloc(n, sizeof *b);
    for (size_t i = 0; i < LC.nbuckets; i++) {
        for (lc_entry_t *e = LC.buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    kz_free(LC.buckets);
    LC.buckets = b;
    LC.nbuckets = n;
}

/* Drops every expired entry (when the cache is full). */
static void lc_sweep(int64_t now)
{
    for (size_t i = 0; i < LC.nbuckets; i++) {
        lc_entry_t **p = &LC.buckets[i];
        while (*p) {
            if ((*p)->expire_ms && (*p)->expire_ms <= now)
                lc_unlink_free(p);
            else
                p = &(*p)->next;
        }
    }
}

static void lc_clear_locked(void)
{
    for (size_t i = 0; i < LC.nbuckets; i++)
        while (LC.buckets[i])
            lc_unlink_free(&LC.buckets[i]);
}

/* A copy of an entry's value taken under the mutex, pushed afterwards. */
typedef struct lc_value {
    int type;
    double num;
    char *data; /* owned (kz_free) */
    size_t len;
    json_t *json; /* LC_TABLE, decoded outside the mutex */
} lc_value_t;

static int build_lc_value(lua_State *L)
{
    const lc_value_t *v = lua_touserdata(L, 1);
    switch (v->type) {
    case LC_BOOL:
        lua_pushboolean(L, v->num != 0);
        break;
    case LC_NUMBER:
        lua_pushnumber(L, v->num);
        break;
    case LC_STRING:
        lua_pushlstring(L, v->data, v->len);
        break;
    case LC_TABLE:
        kz_lua_push_json(L, v->json);
        break;
    default:
        lua_pushnil(L);
        break;
    }
    return 1;
}

static const char *lc_check_key(lua_State *L, size_t *klen)
{
    const char *key = check_nonempty(L, 1, klen, "expects key string");
    if (*klen > LC_MAX_KEY) luaL_argerror(L, 1, "key longer than 4096 bytes");
    return key;
}

/* nk.localcache_get(key, default=nil) -> the value, or default when the
 * key is absent or expired. */
static int nk_localcache_get(lua_State *L)
{
    size_t klen;
    const char *key = lc_check_key(L, &klen);
    lua_settop(L, 2);
    builder_push(L, build_lc_value);
    uint64_t h = lc_hash(key, klen);
    int64_t now = kz_now_ms();
    bool found = false;
    lc_value_t v = {0};
    pthread_mutex_lock(&LC.mu);
    if (LC.nbuckets) {
        lc_entry_t **link = lc_find(key, klen, h);
        lc_entry_t *e = *link;
        if (e && e->expire_ms && e->expire_ms <= now) {
            lc_unlink_free(link);
        } else if (e) {
            found = true;
            v.type = e->type;
            v.num = e->num;
            v.len = e->len;
            if (e->data) {
                v.data = kz_malloc(e->len + 1);
                memcpy(v.data, e->data, e->len);
                v.data[e->len] = '\0';
            }
        }
    }
    pthread_mutex_unlock(&LC.mu);
    if (!found) {
        lua_pop(L, 1);
        lua_pushvalue(L, 2);
        return 1;
    }
    if (v.type == LC_TABLE) {
        v.json = json_loadb(v.data, v.len, JSON_DECODE_ANY, NULL);
        if (!v.json) v.type = LC_NIL; /* cannot happen: we wrote it */
    }
    int st = builder_run(L, &v, 1);
    json_decref(v.json);
    kz_free(v.data);
    return st ? lua_error(L) : 1;
}

/* nk.localcache_put(key, value, ttl=0): value a string, number, boolean,
 * table (stored as JSON: functions and the like inside are refused) or nil;
 * ttl in seconds, 0 = until deleted. */
static int nk_localcache_put(lua_State *L)
{
    size_t klen;
    const char *key = lc_check_key(L, &klen);
    int64_t ttl = opt_int64(L, 3, 0);
    if (ttl < 0) luaL_argerror(L, 3, "ttl must be 0 or more");
    if (ttl > INT64_C(1) << 40) ttl = INT64_C(1) << 40;
    int type;
    double num = 0;
    const char *data = NULL;
    size_t len = 0;
    char *json_text = NULL;
    switch (lua_type(L, 2)) {
    case LUA_TNIL:
    case LUA_TNONE:
        type = LC_NIL;
        break;
    case LUA_TBOOLEAN:
        type = LC_BOOL;
        num = lua_toboolean(L, 2);
        break;
    case LUA_TNUMBER:
        type = LC_NUMBER;
        num = lua_tonumber(L, 2);
        break;
    case LUA_TSTRING:
        type = LC_STRING;
        data = lua_tolstring(L, 2, &len);
        break;
    case LUA_TTABLE: {
        type = LC_TABLE;
        char err[200];
        json_t *j = kz_lua_to_json(L, 2, err, sizeof err);
        if (!j) return luaL_argerror(L, 2, lua_pushfstring(L, "cannot store %s", err));
        json_text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        if (!json_text) return luaL_argerror(L, 2, "cannot store the table");
        data = json_text;
        len = strlen(json_text);
        break;
    }
    default:
        return luaL_argerror(L, 2, "expects a string, number, boolean, table or nil");
    }
    /* From here on nothing raises until the mutex is released. */
    int64_t now = kz_now_ms();
    uint64_t h = lc_hash(key, klen);
    const char *full = NULL;
    pthread_mutex_lock(&LC.mu);
    if (!LC.nbuckets) lc_grow();
    lc_entry_t **link = lc_find(key, klen, h);
    size_t old = *link ? lc_entry_bytes(*link) : 0;
    if ((!*link && LC.count >= LC_MAX_ENTRIES) || LC.bytes - old + klen + len > LC_MAX_BYTES) {
        /* Full: make room from expired entries first. */
        lc_sweep(now);
        link = lc_find(key, klen, h);
        old = *link ? lc_entry_bytes(*link) : 0;
    }
    if (!*link && LC.count >= LC_MAX_ENTRIES) {
        full = "local cache is full (100000 entries)";
    } else if (LC.bytes - old + klen + len > LC_MAX_BYTES) {
        full = "local cache is full (64 MiB)";
    } else {
        lc_entry_t *e = *link;
        if (!e) {
            e = kz_calloc(1, sizeof *e);
            e->hash = h;
            e->key = kz_strndup(key, klen);
            e->klen = klen;
            *link = e;
            LC.count++;
        } else {
            LC.bytes -= lc_entry_bytes(e);
            kz_free(e->data);
        }
        e->type = type;
        e->num = num;
        e->len = len;
        e->data = NULL;
        if (data) {
            e->data = kz_malloc(len + 1);
            memcpy(e->data, data, len);
            e->data[len] = '\0';
        }
        e->expire_ms = ttl ? now + ttl * 1000 : 0;
        LC.bytes += lc_entry_bytes(e);
        if (LC.count > LC.nbuckets) lc_grow();
    }
    pthread_mutex_unlock(&LC.mu);
    free(json_text);
    if (full) return luaL_error(L, "localcache_put: %s", full);
    return 0;
}

/* nk.localcache_delete(key) */
static int nk_localcache_delete(lua_State *L)
{
    size_t klen;
    const char *key = lc_check_key(L, &klen);
    uint64_t h = lc_hash(key, klen);
    pthread_mutex_lock(&LC.mu);
    if (LC.nbuckets) {
        lc_entry_t **link = lc_find(key, klen, h);
        if (*link) lc_unlink_free(link);
    }
    pthread_mutex_unlock(&LC.mu);
    return 0;
}

/* nk.localcache_clear() */
static int nk_localcache_clear(lua_State *L)
{
    pthread_mutex_lock(&LC.mu);
    lc_clear_locked();
    pthread_mutex_unlock(&LC.mu);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Context                                                                  */

/* nk.get_context() -> the context table of the call in progress (the same
 * table the callback received as its first argument). Nakama returns a
 * bare run_once context here; the current call's is more useful and has
 * the same keys. */
static int nk_get_context(lua_State *L)
{
    const kz_lua_ctx_t *c = kz_lua_self(L)->ctx;
    kz_lua_push_ctx(L, c ? c : &(kz_lua_ctx_t){.mode = "run_once"});
    return 1;
}

/* ------------------------------------------------------------------------ */
/* SQL                                                                      */

/* Statements a script may not run through sql_exec / sql_query: transaction
 * control would leave the worker's connection inside a transaction the
 * store does not know about, and the SQLite file commands reach the file
 * system. Compared with the first word of the statement. */
static const char *const SQL_REFUSED[] = {"begin",     "start",   "commit", "end",    "rollback",
                                          "savepoint", "release", "abort",  "attach", "detach",
                                          "pragma",    "vacuum",  NULL};

/* The first keyword of sql (after blanks and comments), lower-cased. */
static void sql_first_word(const char *s, char out[16])
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '(' || *s == ';')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            s = e ? e + 2 : s + strlen(s);
        } else {
            break;
        }
    }
    size_t n = 0;
    while (n < 15 && isalpha((unsigned char)s[n])) {
        out[n] = (char)tolower((unsigned char)s[n]);
        n++;
    }
    out[n] = '\0';
}

static void sql_check_statement(lua_State *L, const char *sql)
{
    char w[16];
    sql_first_word(sql, w);
    for (const char *const *r = SQL_REFUSED; *r; r++)
        if (strcmp(w, *r) == 0)
            luaL_argerror(L, 1, lua_pushfstring(L, "%s statements are not allowed here", *r));
}

/* Converts the parameter table at idx (a list; nil holes bind NULL) into
 * values living in a userdata on the stack until the call returns. Strings
 * are borrowed from the table, which stays on the stack. Returns the count
 * and sets *out. [-0, +1, e] */
static int sql_params(lua_State *L, int idx, kz_dbval_t **out)
{
    *out = NULL;
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return 0;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        lua_Number k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (k < 1 || k != floor(k)) luaL_argerror(L, idx, "expects a list of params as a table");
        if (k > SQL_MAX_PARAMS) luaL_argerror(L, idx, "more than 1000 params");
        if ((int)k > n) n = (int)k;
    }
    enum { NUMTXT = 32 };
    kz_dbval_t *v = lua_newuserdata(L, (size_t)(n ? n : 1) * (sizeof *v + NUMTXT));
    char *txt = (char *)(v + n);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        switch (lua_type(L, -1)) {
        case LUA_TNIL:
            v[i] = KZ_DBNULL;
            break;
        case LUA_TBOOLEAN:
            v[i] = KZ_DBINT(lua_toboolean(L, -1) ? 1 : 0);
            break;
        case LUA_TNUMBER: {
            lua_Number d = lua_tonumber(L, -1);
            if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
                v[i] = KZ_DBINT((int64_t)d);
            } else {
                char *t = txt + (size_t)i * NUMTXT;
                int len = snprintf(t, NUMTXT, "%.14g", d);
                v[i] = KZ_DBTEXTN(t, (size_t)len);
            }
            break;
        }
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            v[i] = KZ_DBTEXTN(s, len);
            break;
        }
        default:
            luaL_argerror(
                L, idx,
                lua_pushfstring(L, "param %d: unsupported type %s", i + 1, luaL_typename(L, -1)));
        }
        lua_pop(L, 1);
    }
    *out = v;
    return n;
}

/* nk.sql_exec(query, params=nil) -> number of rows changed */
static int nk_sql_exec(lua_State *L)
{
    const char *sql = check_nonempty(L, 1, &(size_t){0}, "expects query string");
    sql_check_statement(L, sql);
    kz_dbval_t *params;
    int n = sql_params(L, 2, &params);
    kz_db_t *db = kz_lua_db(L);
    int64_t affected = 0;
    if (kz_db_exec(db, sql, params, n, &affected) != KZ_DB_OK)
        return luaL_error(L, "sql exec error: %s", kz_db_errmsg(db));
    lua_pushnumber(L, (lua_Number)affected);
    return 1;
}

typedef struct sql_rows {
    kz_dbrows_t *rows;
    int rc; /* last kz_db_next: 0 done, < 0 error */
} sql_rows_t;

/* Builds the array of row tables from the open cursor. */
static int build_rows(lua_State *L)
{
    sql_rows_t *q = lua_touserdata(L, 1);
    lua_newtable(L);
    int n = 0;
    while ((q->rc = kz_db_next(q->rows)) == 1) {
        int nc = kz_db_ncols(q->rows);
        lua_createtable(L, 0, nc);
        for (int c = 0; c < nc; c++) {
            const char *name = kz_db_colname(q->rows, c);
            if (!name) continue;
            size_t len;
            const char *s;
            switch (kz_db_coltype(q->rows, c)) {
            case KZ_DBCOL_NULL:
                continue;
            case KZ_DBCOL_INT:
                lua_pushnumber(L, (lua_Number)kz_db_int(q->rows, c));
                break;
            case KZ_DBCOL_BOOL:
                lua_pushboolean(L, kz_db_int(q->rows, c) != 0);
                break;
            case KZ_DBCOL_REAL:
                s = kz_db_text(q->rows, c, NULL);
                lua_pushnumber(L, s ? strtod(s, NULL) : 0);
                break;
            case KZ_DBCOL_TEXT:
                s = kz_db_text(q->rows, c, &len);
                lua_pushlstring(L, s ? s : "", s ? len : 0);
                break;
            }
            lua_setfield(L, -2, name);
        }
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* nk.sql_query(query, params=nil) -> {row, ...}, each row a table of
 * column name -> value (integers and floats as numbers, PostgreSQL
 * booleans as booleans, text as strings, NULL absent). */
static int nk_sql_query(lua_State *L)
{
    const char *sql = check_nonempty(L, 1, &(size_t){0}, "expects query string");
    sql_check_statement(L, sql);
    kz_dbval_t *params;
    int n = sql_params(L, 2, &params);
    kz_db_t *db = kz_lua_db(L);
    builder_push(L, build_rows);
    sql_rows_t q = {0};
    if (kz_db_query(db, sql, params, n, &q.rows) != KZ_DB_OK)
        return luaL_error(L, "sql query error: %s", kz_db_errmsg(db));
    int st = builder_run(L, &q, 1);
    kz_db_rows_free(q.rows);
    if (st) return lua_error(L);
    if (q.rc < 0) return luaL_error(L, "sql query error: %s", kz_db_errmsg(db));
    return 1;
}

/* ------------------------------------------------------------------------ */
/* HTTP client                                                              */

/* A growable byte buffer (malloc'd). */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = kz_realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

typedef struct http_header {
    buf_t name, value;
} http_header_t;

/* The response as it is parsed. */
typedef struct http_resp {
    http_parser parser;
    bool head; /* the request was HEAD: no body follows */
    int status;
    http_header_t *h; /* headers in order */
    int nh;
    bool in_value; /* the last header callback was a value */
    buf_t body;
    size_t received; /* bytes read from the socket */
    bool complete;
    bool too_big;
} http_resp_t;

static void resp_free(http_resp_t *r)
{
    for (int i = 0; i < r->nh; i++) {
        kz_free(r->h[i].name.p);
        kz_free(r->h[i].value.p);
    }
    kz_free(r->h);
    kz_free(r->body.p);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_resp_t *r = p->data;
    if (r->in_value || r->nh == 0) {
        r->h = kz_realloc(r->h, ((size_t)r->nh + 1) * sizeof *r->h);
        r->h[r->nh++] = (http_header_t){0};
        r->in_value = false;
    }
    buf_add(&r->h[r->nh - 1].name, at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_resp_t *r = p->data;
    r->in_value = true;
    if (r->nh) buf_add(&r->h[r->nh - 1].value, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_resp_t *r = p->data;
    r->status = p->status_code;
    return r->head ? 1 : 0; /* 1: no body */
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    http_resp_t *r = p->data;
    if (r->body.n + n > HTTP_MAX_RESPONSE) {
        r->too_big = true;
        return 1;
    }
    buf_add(&r->body, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_resp_t *r = p->data;
    if (p->status_code / 100 == 1) {
        /* An interim response (100 Continue): the real one follows. */
        for (int i = 0; i < r->nh; i++) {
            kz_free(r->h[i].name.p);
            kz_free(r->h[i].value.p);
        }
        r->nh = 0;
        r->in_value = false;
        r->body.n = 0;
        return 0;
    }
    r->complete = true;
    return 0;
}

static const http_parser_settings RESP_SETTINGS = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Milliseconds left until deadline (monotonic ns), at least 0. */
static int ms_left(uint64_t deadline)
{
    uint64_t now = kz_mono_ns();
    return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Waits for events on fd until deadline. Returns 1 ready, 0 timed out,
 * -1 error (errno). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        int left = ms_left(deadline);
        if (left == 0) return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, left);
        if (rc > 0) return 1;
        if (rc == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

/* Connects to host:port before deadline. Returns the socket or -1 with a
 * message in err ("timed out" when the deadline passed). */
static int http_connect(const char *host, const char *port, uint64_t deadline, char *err,
                        size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "cannot connect to %s:%s", host, port);
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        int e = errno;
        if (e == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w == 0) {
                snprintf(err, errlen, "timed out");
                close(fd);
                fd = -1;
                break;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            e = errno;
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0) {
                if (soerr == 0) break; /* connected */
                e = soerr;
            }
        }
        snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(e));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends p[0..n) before deadline. Returns 0 or -1 with err set. */
static int http_send_all(int fd, const char *p, size_t n, uint64_t deadline, char *err,
                         size_t errlen)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc == 1) continue;
            if (rc == 0)
                snprintf(err, errlen, "timed out");
            else
                snprintf(err, errlen, "send: %s", strerror(errno));
            return -1;
        }
        snprintf(err, errlen, "send: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads and parses the response before deadline. Returns 0 or -1 with err. */
static int http_receive(int fd, http_resp_t *r, uint64_t deadline, char *err, size_t errlen)
{
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int rc = wait_fd(fd, POLLIN, deadline);
                if (rc == 1) continue;
                if (rc == 0)
                    snprintf(err, errlen, "timed out");
                else
                    snprintf(err, errlen, "recv: %s", strerror(errno));
                return -1;
            }
            snprintf(err, errlen, "recv: %s", strerror(errno));
            return -1;
        }
        r->received += (size_t)n;
        if (r->received > HTTP_MAX_RESPONSE + (size_t)HTTP_MAX_REQUEST_HEADERS) r->too_big = true;
        size_t used = http_parser_execute(&r->parser, &RESP_SETTINGS, chunk, (size_t)n);
        if (r->too_big) {
            snprintf(err, errlen, "response larger than %d MiB", HTTP_MAX_RESPONSE >> 20);
            return -1;
        }
        if (r->complete) return 0;
        if (n == 0) {
            snprintf(err, errlen, "connection closed before the response was complete");
            return -1;
        }
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
        if (e != HPE_OK || used != (size_t)n) {
            snprintf(err, errlen, "malformed response: %s", http_errno_description(e));
            return -1;
        }
    }
}

/* Header names: RFC 9110 token characters. */
static bool is_token(const char *s, size_t n)
{
    if (!n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c))) return false;
    }
    return true;
}

/* Go's canonical header key: "content-type" -> "Content-Type". */
static void canonical_key(char *s)
{
    bool up = true;
    for (; *s; s++) {
        *s = up ? (char)toupper((unsigned char)*s) : (char)tolower((unsigned char)*s);
        up = *s == '-';
    }
}

/* Returns code, headers, body from a complete response. */
static int build_http_result(lua_State *L)
{
    http_resp_t *r = lua_touserdata(L, 1);
    lua_pushnumber(L, r->status);
    lua_createtable(L, 0, r->nh);
    for (int i = 0; i < r->nh; i++) {
        if (!r->h[i].name.p) continue;
        canonical_key(r->h[i].name.p);
        lua_getfield(L, -1, r->h[i].name.p);
        bool seen = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (seen) continue; /* the first value wins, as in Nakama */
        lua_pushlstring(L, r->h[i].value.p ? r->h[i].value.p : "", r->h[i].value.n);
        lua_setfield(L, -2, r->h[i].name.p);
    }
    lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.n);
    return 3;
}

/* Checks the headers table at idx: string names that are tokens and string
 * values without CR, LF or NUL. Returns the bytes they take in the request. */
static size_t http_check_headers(lua_State *L, int idx)
{
    size_t total = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, idx, "HTTP header names must be strings");
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "HTTP header values must be strings");
        size_t kn, vn;
        const char *k = lua_tolstring(L, -2, &kn);
        const char *v = lua_tolstring(L, -1, &vn);
        if (!is_token(k, kn))
            luaL_argerror(L, idx, lua_pushfstring(L, "invalid HTTP header name '%s'", k));
        for (size_t i = 0; i < vn; i++)
            if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
                luaL_argerror(L, idx, lua_pushfstring(L, "invalid value of HTTP header '%s'", k));
        total += kn + vn + 4;
        lua_pop(L, 1);
    }
    return total;
}

/* Headers the client sets itself; a script's values for them are ignored
 * (Host is the exception: a script may override it). */
static bool http_own_header(const char *k)
{
    return strcasecmp(k, "content-length") == 0 || strcasecmp(k, "connection") == 0 ||
           strcasecmp(k, "transfer-encoding") == 0;
}

/* nk.http_request(url, method, headers, body="", timeout_ms=5000) ->
 * status code, headers table (canonical names, first value of each), body.
 *
 * Plain http:// only: HTTP/1.1 over a blocking-with-deadline TCP socket,
 * "Connection: close", Content-Length, chunked or read-to-close bodies, at
 * most 4 MiB. The timeout covers connecting, sending and receiving (not the
 * name lookup) and is cut short by the call's time budget. The sixth argument of Nakama (insecure)
 * only concerns TLS and is ignored. */
static int nk_http_request(lua_State *L)
{
    size_t ulen;
    const char *url = check_nonempty(L, 1, &ulen, "expects URL string");
    const char *m = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    size_t blen = 0;
    const char *body = lua_isnoneornil(L, 4) ? "" : luaL_checklstring(L, 4, &blen);
    int64_t timeout = opt_int64(L, 5, HTTP_DEFAULT_TIMEOUT_MS);
    if (timeout <= 0) timeout = HTTP_DEFAULT_TIMEOUT_MS;
    if (timeout > 3600000) timeout = 3600000;

    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL};
    const char *method = NULL;
    for (const char *const *p = methods; *p; p++)
        if (strcasecmp(m, *p) == 0) method = *p;
    if (!method)
        luaL_argerror(
            L, 2, "expects method to be one of: 'get', 'post', 'put', 'patch', 'delete', 'head'");

    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, ulen, 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
        !(u.field_set & (1 << UF_HOST)))
        return luaL_error(L, "HTTP request error: invalid URL '%s'", url);
    const char *scheme = url + u.field_data[UF_SCHEMA].off;
    size_t scheme_len = u.field_data[UF_SCHEMA].len;
    if (scheme_len == 5 && strncasecmp(scheme, "https", 5) == 0)
        return luaL_error(L, "HTTP request error: https is not supported by this server yet");
    if (scheme_len != 4 || strncasecmp(scheme, "http", 4) != 0)
        return luaL_error(L, "HTTP request error: unsupported URL scheme in '%s'", url);
    if (u.field_set & (1 << UF_USERINFO))
        return luaL_error(L, "HTTP request error: user information in URLs is not supported");
    size_t headers_len = http_check_headers(L, 3);
    if (headers_len > HTTP_MAX_REQUEST_HEADERS)
        luaL_argerror(L, 3, "HTTP headers larger than 64 KiB");

    char host[256], port[8];
    if (u.field_data[UF_HOST].len >= sizeof host)
        return luaL_error(L, "HTTP request error: host name too long");
    memcpy(host, url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    host[u.field_data[UF_HOST].len] = '\0';
    snprintf(port, sizeof port, "%u", (u.field_set & (1 << UF_PORT)) ? u.port : 80u);
    bool has_host = false;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        if (strcasecmp(lua_tostring(L, -2), "host") == 0) has_host = true;
        lua_pop(L, 1);
    }

    builder_push(L, build_http_result);

    /* No Lua error from here until the builder runs: everything below is
     * released on every path. */
    buf_t req = {0};
    buf_str(&req, method);
    buf_str(&req, " ");
    if (u.field_set & (1 << UF_PATH))
        buf_add(&req, url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    else
        buf_str(&req, "/");
    if (u.field_set & (1 << UF_QUERY)) {
        buf_str(&req, "?");
        buf_add(&req, url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    }
    buf_str(&req, " HTTP/1.1\r\n");
    if (!has_host) {
        bool v6 = strchr(host, ':') != NULL;
        buf_str(&req, "Host: ");
        buf_str(&req, v6 ? "[" : "");
        buf_str(&req, host);
        buf_str(&req, v6 ? "]" : "");
        if (u.field_set & (1 << UF_PORT)) {
            buf_str(&req, ":");
            buf_str(&req, port);
        }
        buf_str(&req, "\r\n");
    }
    buf_str(&req, "User-Agent: kizuna/" KZ_VERSION "\r\nConnection: close\r\n");
    if (blen || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
        strcmp(method, "PATCH") == 0) {
        char cl[48];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", blen);
        buf_str(&req, cl);
    }
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        size_t kn, vn;
        const char *k = lua_tolstring(L, -2, &kn);
        const char *v = lua_tolstring(L, -1, &vn);
        if (!http_own_header(k)) {
            buf_add(&req, k, kn);
            buf_str(&req, ": ");
            buf_add(&req, v, vn);
            buf_str(&req, "\r\n");
        }
        lua_pop(L, 1);
    }
    buf_str(&req, "\r\n");

    char err[256] = "";
    http_resp_t resp = {.head = strcmp(method, "HEAD") == 0};
    uint64_t deadline = kz_mono_ns() + (uint64_t)timeout * 1000000u;
    /* A request never outlasts the call's time budget: the budget hook only
     * runs between Lua instructions, not while this function blocks. */
    const kz_lua_vm_t *vm = kz_lua_self(L);
    bool budget_bound = vm->in_call && vm->deadline_ns < deadline;
    if (budget_bound) deadline = vm->deadline_ns;
    int rc = -1;
    int fd = http_connect(host, port, deadline, err, sizeof err);
    if (fd >= 0) {
        rc = http_send_all(fd, req.p, req.n, deadline, err, sizeof err);
        if (rc == 0 && blen) rc = http_send_all(fd, body, blen, deadline, err, sizeof err);
        if (rc == 0) rc = http_receive(fd, &resp, deadline, err, sizeof err);
        close(fd);
    }
    kz_free(req.p);
    if (rc != 0) {
        resp_free(&resp);
        if (strcmp(err, "timed out") == 0 && budget_bound)
            return luaL_error(L, "HTTP request error: timed out (the call's time budget ran out)");
        if (strcmp(err, "timed out") == 0)
            return luaL_error(L, "HTTP request error: timed out after %d ms", (int)timeout);
        return luaL_error(L, "HTTP request error: %s", err);
    }
    int st = builder_run(L, &resp, 3);
    resp_free(&resp);
    return st ? lua_error(L) : 3;
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* JWT, bcrypt, configuration, events                                       */

static void free_plain(void *p, int n)
{
    (void)n;
    free(p);
}

/* Appends the unpadded base64url form of data[0..n) to b. */
static void b64url_add(luaL_Buffer *b, const void *data, size_t n)
{
    char chunk[4 * 48 / 3 + 1];
    const unsigned char *p = data;
    while (n) {
        size_t k = n > 48 ? 48 : n;
        sodium_bin2base64(chunk, sizeof chunk, p, k, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        luaL_addstring(b, chunk);
        p += k;
        n -= k;
    }
}

/* nk.jwt_generate(algorithm, key, claims) -> token. Only "HS256" (an
 * HMAC-SHA256 JWS with header {"alg":"HS256","typ":"JWT"}); claims is a
 * table of JSON values, encoded with sorted keys. */
static int nk_jwt_generate(lua_State *L)
{
    lua_settop(L, 3);
    size_t alen, klen;
    const char *alg = kz_nk_str(L, 1, "signing method", &alen);
    if (strcmp(alg, "HS256") != 0)
        return kz_lua_raise(L, KZ_NK_INVALID, "unsupported signing method: %s", alg);
    const char *key = kz_nk_str(L, 2, "signing key", &klen);
    if (klen == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects signing key to be non-empty");
    if (!lua_istable(L, 3)) return kz_lua_raise(L, KZ_NK_INVALID, "expects claims to be a table");
    kz_nk_guard_t *g = kz_nk_guard(L);
    char err[160];
    json_t *claims = kz_lua_to_json(L, 3, err, sizeof err);
    if (!claims) return kz_lua_raise(L, KZ_NK_INVALID, "expects claims to be JSON values: %s", err);
    if (!json_is_object(claims) && !(json_is_array(claims) && json_array_size(claims) == 0)) {
        json_decref(claims);
        return kz_lua_raise(L, KZ_NK_INVALID, "expects claims to be a table of key-value pairs");
    }
    /* An empty table converts to {} or [] alike: both mean no claims. */
    char *payload = json_is_object(claims) ? json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS)
                                           : strdup("{}");
    json_decref(claims);
    if (!payload) {
        if (!payload) return kz_lua_raise(L, KZ_NK_INTERNAL, "out of memory");
    }
    g->p = payload;
    g->fn = free_plain;
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    b64url_add(&b, header, sizeof header - 1);
    luaL_addchar(&b, '.');
    b64url_add(&b, payload, strlen(payload));
    luaL_pushresult(&b);
    kz_nk_guard_done(g);
    size_t slen;
    const char *signing = lua_tolstring(L, -1, &slen);
    need_sodium();
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, slen);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    luaL_buffinit(L, &b);
    luaL_addvalue(&b); /* the signing input */
    luaL_addchar(&b, '.');
    b64url_add(&b, mac, sizeof mac);
    luaL_pushresult(&b);
    return 1;
}

#define BCRYPT_COST 10 /* Go's bcrypt.DefaultCost, as Nakama uses */
#define BCRYPT_MAX_INPUT 72

static bool is_bcrypt(const char *h)
{
    return strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0;
}

/* crypt_r of pw with setting into out (a "$2b$..." hash); false when
 * libcrypt refuses. */
static bool bcrypt_run(lua_State *L, const char *pw, const char *setting, char *out, size_t outlen)
{
    struct crypt_data *cd = kz_nk_scratch(L, sizeof *cd); /* ~32 KiB: not on the stack */
    memset(cd, 0, sizeof *cd);
    const char *h = crypt_r(pw, setting, cd);
    bool ok = h && h[0] == '$' && strlen(h) < outlen;
    if (ok) memcpy(out, h, strlen(h) + 1);
    explicit_bzero(cd, sizeof *cd);
    lua_pop(L, 1);
    return ok;
}

/* nk.bcrypt_hash(input) -> a bcrypt hash ("$2b$10$...") of input (at most
 * 72 bytes, as Go's bcrypt accepts). */
static int nk_bcrypt_hash(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    const char *pw = kz_nk_str(L, 1, "input", &n);
    if (n > BCRYPT_MAX_INPUT)
        return kz_lua_raise(L, KZ_NK_INVALID, "password length exceeds 72 bytes");
    if (memchr(pw, '\0', n)) return kz_lua_raise(L, KZ_NK_INVALID, "expects input without NUL bytes");
    char salt[64], hash[128];
    if (!crypt_gensalt_rn("$2b$", BCRYPT_COST, NULL, 0, salt, sizeof salt) ||
        !bcrypt_run(L, pw, salt, hash, sizeof hash))
        return kz_lua_raise(L, KZ_NK_INTERNAL, "error hashing password");
    lua_pushstring(L, hash);
    return 1;
}

/* nk.bcrypt_compare(hash, plaintext) -> true when plaintext matches the
 * bcrypt hash, false when not; raises for a hash that is not bcrypt. */
static int nk_bcrypt_compare(lua_State *L)
{
    lua_settop(L, 2);
    size_t hn, pn;
    const char *hash = kz_nk_str(L, 1, "hash", &hn);
    if (hn == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects hash string");
    const char *pw = kz_nk_str(L, 2, "plaintext", &pn);
    if (pn == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects plaintext string");
    if (!is_bcrypt(hash) || hn < 29 || hn > 100)
        return kz_lua_raise(L, KZ_NK_INVALID, "hash is not a bcrypt hash");
    if (pn > BCRYPT_MAX_INPUT || memchr(pw, '\0', pn)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    char out[128];
    if (!bcrypt_run(L, pw, hash, out, sizeof out))
        return kz_lua_raise(L, KZ_NK_INVALID, "hash is not a bcrypt hash");
    lua_pushboolean(L, strlen(out) == hn && sodium_memcmp(out, hash, hn) == 0);
    return 1;
}

/* nk.get_config() -> the server's non-secret settings: name, data_dir,
 * session {token_expiry_sec, refresh_token_expiry_sec}, socket {address,
 * port, max_message_size_bytes, max_request_size_bytes, read_timeout_ms,
 * write_timeout_ms, idle_timeout_ms, ping_period_ms, pong_wait_ms,
 * outgoing_queue_size}, runtime {path, lua_call_timeout_ms,
 * lua_memory_mb}, logger {level}. Never keys, and not the database
 * address (it may hold a password). */
static int nk_get_config(lua_State *L)
{
    lua_settop(L, 0);
    const kz_config_t *c = kz_lua_config();
    lua_createtable(L, 0, 6);
    if (!c) return 1;
    kz_nk_set_str0(L, "name", c->name);
    kz_nk_set_str0(L, "data_dir", c->data_dir);
    lua_createtable(L, 0, 2);
    kz_nk_set_num(L, "token_expiry_sec", (double)c->session.token_expiry_sec);
    kz_nk_set_num(L, "refresh_token_expiry_sec", (double)c->session.refresh_token_expiry_sec);
    lua_setfield(L, -2, "session");
    lua_createtable(L, 0, 10);
    kz_nk_set_str0(L, "address", c->socket.address);
    kz_nk_set_num(L, "port", c->socket.port);
    kz_nk_set_num(L, "max_message_size_bytes", (double)c->socket.max_message_size_bytes);
    kz_nk_set_num(L, "max_request_size_bytes", (double)c->socket.max_request_size_bytes);
    kz_nk_set_num(L, "read_timeout_ms", c->socket.read_timeout_ms);
    kz_nk_set_num(L, "write_timeout_ms", c->socket.write_timeout_ms);
    kz_nk_set_num(L, "idle_timeout_ms", c->socket.idle_timeout_ms);
    kz_nk_set_num(L, "ping_period_ms", c->socket.ping_period_ms);
    kz_nk_set_num(L, "pong_wait_ms", c->socket.pong_wait_ms);
    kz_nk_set_num(L, "outgoing_queue_size", c->socket.outgoing_queue_size);
    lua_setfield(L, -2, "socket");
    lua_createtable(L, 0, 3);
    kz_nk_set_str0(L, "path", c->runtime.path);
    kz_nk_set_num(L, "lua_call_timeout_ms", c->runtime.lua_call_timeout_ms);
    kz_nk_set_num(L, "lua_memory_mb", c->runtime.lua_memory_mb);
    lua_setfield(L, -2, "runtime");
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    lua_createtable(L, 0, 1);
    int lv = (int)c->logger.level;
    kz_nk_set_str0(L, "level", lv >= 0 && lv < 4 ? levels[lv] : "info");
    lua_setfield(L, -2, "logger");
    return 1;
}

/* nk.event(name, properties?, timestamp?, external?): with no event
 * handler registered (there is no register_event yet) the event is only
 * logged at debug level, as Nakama does without handlers. properties is a
 * table of string values. */
static int nk_event(lua_State *L)
{
    lua_settop(L, 4);
    size_t n;
    const char *name = kz_nk_str(L, 1, "event name", &n);
    if (n == 0) return kz_lua_raise(L, KZ_NK_INVALID, "expects event name to be non-empty");
    if (kz_nk_opttable(L, 2, "properties")) {
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return kz_lua_raise(L, KZ_NK_INVALID,
                                    "expects properties to be a table of string values");
            lua_pop(L, 1);
        }
    }
    int64_t ts = kz_nk_optint(L, 3, "timestamp", -1, -1, INT64_MAX / 1000);
    bool external = kz_nk_optbool(L, 4, "external", false);
    kz_log_debug("runtime event '%s' (timestamp %lld, external %s): no event handler", name,
                 (long long)(ts < 0 ? kz_now_sec() : ts), external ? "true" : "false");
    return 0;
}

/* ------------------------------------------------------------------------ */

void kz_nk_open_util(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"json_encode", nk_json_encode},
        {"json_decode", nk_json_decode},
        {"logger_debug", nk_logger_debug},
        {"logger_info", nk_logger_info},
        {"logger_warn", nk_logger_warn},
        {"logger_error", nk_logger_error},
        {"base64_encode", nk_base64_encode},
        {"base64_decode", nk_base64_decode},
        {"base64url_encode", nk_base64url_encode},
        {"base64url_decode", nk_base64url_decode},
        {"base16_encode", nk_base16_encode},
        {"base16_decode", nk_base16_decode},
        {"md5_hash", nk_md5_hash},
        {"sha256_hash", nk_sha256_hash},
        {"hmac_sha256_hash", nk_hmac_sha256_hash},
        {"jwt_generate", nk_jwt_generate},
        {"bcrypt_hash", nk_bcrypt_hash},
        {"bcrypt_compare", nk_bcrypt_compare},
        {"get_config", nk_get_config},
        {"event", nk_event},
        {"secure_random_bytes", nk_secure_random_bytes},
        {"uuid_v4", nk_uuid_v4},
        {"uuid_bytes_to_string", nk_uuid_bytes_to_string},
        {"uuid_string_to_bytes", nk_uuid_string_to_bytes},
        {"time", nk_time},
        {"cron_next", nk_cron_next},
        {"cron_prev", nk_cron_prev},
        {"localcache_get", nk_localcache_get},
        {"localcache_put", nk_localcache_put},
        {"localcache_delete", nk_localcache_delete},
        {"localcache_clear", nk_localcache_clear},
        {"get_context", nk_get_context},
        {"sql_exec", nk_sql_exec},
        {"sql_query", nk_sql_query},
        {"http_request", nk_http_request},
        {NULL, NULL},
    };
    luaL_register(L, NULL, fns);
}
