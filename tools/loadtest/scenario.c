/* Scenario files: libyaml's document loader builds the node tree, then one
 * walk fills lt_scenario_t, checking every key against the list of keys its
 * mapping may hold and every value against its type and range. Errors are
 * "FILE:LINE: KEY.PATH: message" and stop the walk at the first problem.
 * A second pass over each profile checks the order of the steps (a socket
 * needs an auth before it, chat_send a chat_join, ...). */
#include "loadtest/scenario.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/alloc.h"

#define MAX_FILE_BYTES (4 << 20) /* scenario files are small */
#define MAX_VISITS 100000        /* nodes walked: aliases cannot fan out without bound */
#define MAX_TOTAL_STEPS 10000    /* steps in the whole scenario */
#define MAX_JSON_DEPTH 32        /* YAML payload converted to JSON */
#define MAX_PROCESSES 1024
#define MAX_SOURCE_ADDRS 254
#define MAX_RATE 10000000.0
#define MAX_STRING 4096          /* any string value, in bytes */
#define PATH_MAX_LEN 160         /* key path in messages */

/* ----- Small helpers ----------------------------------------------------- */

static const char *const step_names[LT_STEP_COUNT_] = {
    [LT_STEP_AUTH] = "auth",
    [LT_STEP_SOCKET] = "socket",
    [LT_STEP_WAIT] = "wait",
    [LT_STEP_CHAT_JOIN] = "chat_join",
    [LT_STEP_CHAT_SEND] = "chat_send",
    [LT_STEP_CHAT_LEAVE] = "chat_leave",
    [LT_STEP_MATCH] = "match",
    [LT_STEP_MATCH_SEND] = "match_send",
    [LT_STEP_MATCH_LEAVE] = "match_leave",
    [LT_STEP_MATCHMAKER] = "matchmaker",
    [LT_STEP_AM_MATCH] = "am_match",
    [LT_STEP_RPC] = "rpc",
    [LT_STEP_STORAGE_WRITE] = "storage_write",
    [LT_STEP_STORAGE_READ] = "storage_read",
    [LT_STEP_LEADERBOARD_WRITE] = "leaderboard_write",
    [LT_STEP_REPEAT] = "repeat",
    [LT_STEP_DISCONNECT] = "disconnect",
};

const char *lt_step_name(lt_step_kind_t kind)
{
    if ((unsigned)kind >= LT_STEP_COUNT_) return "?";
    return step_names[kind];
}

int lt_step_group_size(const lt_step_t *step)
{
    switch (step->kind) {
    case LT_STEP_CHAT_JOIN: return step->u.chat_join.group_size;
    case LT_STEP_MATCH: return step->u.match.group_size;
    case LT_STEP_AM_MATCH: return step->u.am_match.group_size;
    default: return 1;
    }
}

/* ----- Durations, templates ---------------------------------------------- */

int lt_parse_duration(const char *text, bool allow_end, int64_t *ms)
{
    if (allow_end && strcmp(text, "end") == 0) {
        *ms = LT_UNTIL_END;
        return 0;
    }
    /* digits, an optional fraction, an optional unit; nothing else */
    const char *p = text;
    if (!isdigit((unsigned char)*p)) return -1;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return -1;
        while (isdigit((unsigned char)*p)) p++;
    }
    size_t numlen = (size_t)(p - text);
    if (numlen > 24) return -1;
    char num[32];
    memcpy(num, text, numlen);
    num[numlen] = '\0';
    double scale;
    if (*p == '\0' || strcmp(p, "s") == 0)
        scale = 1000;
    else if (strcmp(p, "ms") == 0)
        scale = 1;
    else if (strcmp(p, "m") == 0)
        scale = 60000;
    else if (strcmp(p, "h") == 0)
        scale = 3600000;
    else
        return -1;
    double v = strtod(num, NULL) * scale;
    if (!(v >= 0) || v > (double)LT_MAX_DURATION_MS) return -1;
    *ms = llround(v);
    return 0;
}

/* The placeholder at p ("{bot}", "{group}", "{run}"): its index 0..2 and
 * length, or -1. */
static int placeholder(const char *p, size_t *len)
{
    static const char *const names[] = {"{bot}", "{group}", "{run}"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(p, names[i], n) == 0) {
            *len = n;
            return i;
        }
    }
    return -1;
}

int lt_template_render(const char *tpl, int64_t bot, int64_t group, const char *run, char *out,
                       size_t cap)
{
    if (cap == 0) return -1;
    size_t o = 0;
    bool fits = true;
    for (const char *p = tpl; *p;) {
        size_t plen;
        int ph = *p == '{' ? placeholder(p, &plen) : -1;
        char num[24];
        const char *piece;
        size_t n;
        if (ph < 0) {
            piece = p;
            n = 1;
            p++;
        } else {
            if (ph == 2) {
                piece = run ? run : "";
            } else {
                snprintf(num, sizeof num, "%" PRId64, ph == 0 ? bot : group);
                piece = num;
            }
            n = strlen(piece);
            p += plen;
        }
        if (o + n >= cap) {
            fits = false;
            n = cap > o + 1 ? cap - o - 1 : 0;
        }
        memcpy(out + o, piece, n);
        o += n;
        if (!fits) break;
    }
    out[o < cap ? o : cap - 1] = '\0';
    return fits ? (int)o : -1;
}

/* An unknown "{name}" in s (letters, digits, '_' between the braces), or
 * NULL: "{bots}" is a typo, while "{}" and JSON's {"a":1} are text. */
static const char *unknown_placeholder(const char *s, size_t *len)
{
    for (const char *p = strchr(s, '{'); p; p = strchr(p + 1, '{')) {
        size_t plen;
        if (placeholder(p, &plen) >= 0) continue;
        const char *q = p + 1;
        while (isalnum((unsigned char)*q) || *q == '_') q++;
        if (*q == '}' && q > p + 1) {
            *len = (size_t)(q - p + 1);
            return p;
        }
    }
    return NULL;
}

static bool has_placeholder(const char *s)
{
    for (const char *p = strchr(s, '{'); p; p = strchr(p + 1, '{')) {
        size_t plen;
        if (placeholder(p, &plen) >= 0) return true;
    }
    return false;
}

/* ----- The walk ---------------------------------------------------------- */

typedef struct {
    yaml_document_t *doc;
    const char *file;
    char *err;
    size_t errlen;
    bool failed;
    long visits;
    long steps; /* allocated so far, against MAX_TOTAL_STEPS */
    const yaml_node_t *at; /* where to point when a message has no node of its own */
    lt_scenario_t *s;
} walk_t;

static int fail(walk_t *w, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(walk_t *w, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    if (w->failed) return -1;
    w->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!n) n = w->at;
    kz_errf(w->err, w->errlen, "%s:%zu: %s: %s", w->file, n ? n->start_mark.line + 1 : 1, key,
            msg);
    return -1;
}

static yaml_node_t *node(walk_t *w, yaml_node_item_t id)
{
    return yaml_document_get_node(w->doc, id);
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* out (PATH_MAX_LEN bytes) = a + b + c, cut at the buffer's end. */
static void join3(char *out, const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = strnlen(parts[i], PATH_MAX_LEN);
        if (n > PATH_MAX_LEN - 1 - o) n = PATH_MAX_LEN - 1 - o;
        memmove(out + o, parts[i], n);
        o += n;
    }
    out[o] = '\0';
}

/* Joins a key path: "profiles[0].steps[1]" + "." + "chat_join". */
static void sub_key(char *out, const char *base, const char *name)
{
    join3(out, base, *base ? "." : "", name);
}

static void sub_index(char *out, const char *base, size_t i)
{
    char idx[24];
    snprintf(idx, sizeof idx, "[%zu]", i);
    join3(out, base, idx, "");
}

/* Checks that n is a mapping whose keys are scalars, unique, and among
 * allowed (a NULL-terminated list). A null node stands for an empty
 * mapping: returns 1 then (nothing to read), 0 for a good mapping. */
static int check_map(walk_t *w, const yaml_node_t *n, const char *key, const char *const *allowed)
{
    if (++w->visits > MAX_VISITS) return fail(w, n, key, "scenario too large");
    if (is_null(n)) return 1;
    if (n->type != YAML_MAPPING_NODE) return fail(w, n, key, "must be a mapping");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(w, p->key);
        if (!k || k->type != YAML_SCALAR_NODE)
            return fail(w, k ? k : n, key, "keys must be plain names");
        char path[PATH_MAX_LEN];
        sub_key(path, key, scalar(k));
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], scalar(k)) != 0) i++;
        if (!allowed[i]) return fail(w, k, path, "unknown key");
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = node(w, q->key);
            if (strcmp(scalar(k2), scalar(k)) == 0) return fail(w, k, path, "duplicate key");
        }
    }
    return 0;
}

/* The value of `name` in mapping n (already checked), or NULL. A null
 * value counts as absent (the default applies). */
static yaml_node_t *get(walk_t *w, const yaml_node_t *n, const char *name)
{
    if (!n || n->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(w, p->key);
        if (strcmp(scalar(k), name) == 0) {
            yaml_node_t *v = node(w, p->value);
            return v && !is_null(v) ? v : NULL;
        }
    }
    return NULL;
}

/* The typed readers: each looks `name` up in mapping m; when absent, leaves
 * *out (the default) and returns 0 (or fails when required). */

static int req_missing(walk_t *w, const yaml_node_t *m, const char *key, const char *name)
{
    char path[PATH_MAX_LEN];
    sub_key(path, key, name);
    return fail(w, m, path, "required");
}

static int read_int(walk_t *w, const yaml_node_t *m, const char *key, const char *name,
                    bool required, int64_t min, int64_t max, int64_t *out)
{
    yaml_node_t *v = get(w, m, name);
    if (!v) return required ? req_missing(w, m, key, name) : 0;
    char path[PATH_MAX_LEN];
    sub_key(path, key, name);
    char *end = NULL;
    long long x = 0;
    if (v->type == YAML_SCALAR_NODE && (isdigit((unsigned char)scalar(v)[0]) ||
                                        (scalar(v)[0] == '-' && isdigit((unsigned char)scalar(v)[1])))) {
        errno = 0;
        x = strtoll(scalar(v), &end, 10);
    }
    if (!end || *end || errno == ERANGE || x < min || x > max)
        return fail(w, v, path, "must be an integer in %" PRId64 "..%" PRId64, min, max);
    *out = x;
    return 0;
}

static int read_int32(walk_t *w, const yaml_node_t *m, const char *key, const char *name,
                      bool required, int64_t min, int64_t max, int *out)
{
    int64_t v = *out;
    if (read_int(w, m, key, name, required, min, max, &v) < 0) return -1;
    *out = (int)v;
    return 0;
}

static int read_str(walk_t *w, const yaml_node_t *m, const char *key, const char *name,
                    bool required, bool nonempty, bool is_template, char **out)
{
    yaml_node_t *v = get(w, m, name);
    if (!v) return required ? req_missing(w, m, key, name) : 0;
    char path[PATH_MAX_LEN];
    sub_key(path, key, name);
    if (v->type != YAML_SCALAR_NODE) return fail(w, v, path, "must be a string");
    if (nonempty && !*scalar(v)) return fail(w, v, path, "must not be empty");
    if (strlen(scalar(v)) > MAX_STRING)
        return fail(w, v, path, "longer than %d bytes", MAX_STRING);
    size_t len;
    const char *bad = is_template ? unknown_placeholder(scalar(v), &len) : NULL;
    if (bad)
        return fail(w, v, path, "unknown placeholder %.*s (known: {bot}, {group}, {run})",
                    (int)(len > 40 ? 40 : len), bad);
    free(*out);
    *out = kz_strdup(scalar(v));
    return 0;
}

static int read_bool(walk_t *w, const yaml_node_t *m, const char *key, const char *name, bool *out)
{
    yaml_node_t *v = get(w, m, name);
    if (!v) return 0;
    char path[PATH_MAX_LEN];
    sub_key(path, key, name);
    if (v->type == YAML_SCALAR_NODE) {
        const char *t = scalar(v);
        if (!strcmp(t, "true") || !strcmp(t, "yes") || !strcmp(t, "on")) return *out = true, 0;
        if (!strcmp(t, "false") || !strcmp(t, "no") || !strcmp(t, "off")) return *out = false, 0;
    }
    return fail(w, v, path, "must be true or false");
}

/* min_ms: smallest allowed (0 or 1). */
static int read_duration(walk_t *w, const yaml_node_t *m, const char *key, const char *name,
                         bool required, bool allow_end, int64_t min_ms, int64_t *out)
{
    yaml_node_t *v = get(w, m, name);
    if (!v) return required ? req_missing(w, m, key, name) : 0;
    char path[PATH_MAX_LEN];
    sub_key(path, key, name);
    int64_t ms;
    if (v->type != YAML_SCALAR_NODE || lt_parse_duration(scalar(v), allow_end, &ms) < 0)
        return fail(w, v, path, "must be a duration (250ms, 10s, 5m, 2h or seconds)%s",
                    allow_end ? " or end" : "");
    if (ms != LT_UNTIL_END && ms < min_ms) return fail(w, v, path, "must be more than 0");
    *out = ms;
    return 0;
}

/* One of the names (NULL-terminated); *out gets its index. */
static int read_enum(walk_t *w, const yaml_node_t *m, const char *key, const char *name,
                     const char *const *names, const char *expect, int *out)
{
    yaml_node_t *v = get(w, m, name);
    if (!v) return 0;
    char path[PATH_MAX_LEN];
    sub_key(path, key, name);
    if (v->type == YAML_SCALAR_NODE)
        for (int i = 0; names[i]; i++)
            if (strcmp(names[i], scalar(v)) == 0) return *out = i, 0;
    return fail(w, v, path, "must be %s", expect);
}

/* ----- YAML -> JSON text (rpc payloads written as YAML) ------------------ */

static json_t *yaml_to_json(walk_t *w, const yaml_node_t *n, int depth)
{
    if (depth > MAX_JSON_DEPTH || ++w->visits > MAX_VISITS) return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *t = scalar(n);
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            if (is_null(n)) return json_null();
            if (!strcmp(t, "true")) return json_true();
            if (!strcmp(t, "false")) return json_false();
            json_t *num = json_loads(t, JSON_DECODE_ANY, NULL);
            if (num && json_is_number(num)) return num;
            json_decref(num);
        }
        return json_string(t); /* NULL for invalid UTF-8: a failure */
    }
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            json_t *x = yaml_to_json(w, node(w, *it), depth + 1);
            if (!x) return json_decref(a), NULL;
            json_array_append_new(a, x);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = node(w, p->key);
            json_t *x = k->type == YAML_SCALAR_NODE ? yaml_to_json(w, node(w, p->value), depth + 1)
                                                    : NULL;
            if (!x || json_object_set_new(o, scalar(k), x) < 0) return json_decref(o), NULL;
        }
        return o;
    }
    default: return NULL;
    }
}

/* ----- Steps ------------------------------------------------------------- */

static int parse_steps(walk_t *w, const yaml_node_t *seq, const char *key, int depth,
                       lt_step_t **out, size_t *nout);

static void free_props(lt_prop_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

static void free_steps(lt_step_t *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lt_step_t *s = &steps[i];
        switch (s->kind) {
        case LT_STEP_AUTH: free(s->u.auth.username); break;
        case LT_STEP_CHAT_JOIN: free(s->u.chat_join.room); break;
        case LT_STEP_MATCH: free(s->u.match.name); break;
        case LT_STEP_MATCHMAKER:
            free(s->u.matchmaker.query);
            free_props(s->u.matchmaker.string_props, s->u.matchmaker.n_string_props);
            free_props(s->u.matchmaker.numeric_props, s->u.matchmaker.n_numeric_props);
            break;
        case LT_STEP_AM_MATCH: free(s->u.am_match.create_rpc); break;
        case LT_STEP_RPC:
            free(s->u.rpc.id);
            free(s->u.rpc.payload);
            break;
        case LT_STEP_STORAGE_WRITE:
        case LT_STEP_STORAGE_READ:
            free(s->u.storage.collection);
            free(s->u.storage.key);
            break;
        case LT_STEP_LEADERBOARD_WRITE: free(s->u.leaderboard.id); break;
        case LT_STEP_REPEAT: free_steps(s->u.repeat.steps, s->u.repeat.nsteps); break;
        default: break;
        }
    }
    free(steps);
}

/* Matchmaker properties: a mapping of key -> scalar. */
static int parse_props(walk_t *w, const yaml_node_t *m, const char *key, const char *name,
                       bool numeric, lt_prop_t **out, size_t *nout)
{
    yaml_node_t *v = get(w, m, name);
    if (!v) return 0;
    char path[PATH_MAX_LEN];
    sub_key(path, key, name);
    if (v->type != YAML_MAPPING_NODE) return fail(w, v, path, "must be a mapping");
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n > LT_MAX_PROPS) return fail(w, v, path, "more than %d properties", LT_MAX_PROPS);
    lt_prop_t *props = kz_calloc(n, sizeof *props);
    *out = props;
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
        yaml_node_t *k = node(w, p->key), *x = node(w, p->value);
        if (k->type != YAML_SCALAR_NODE || !*scalar(k))
            return fail(w, k, path, "keys must be plain names");
        char ppath[PATH_MAX_LEN];
        sub_key(ppath, path, scalar(k));
        if (x->type != YAML_SCALAR_NODE || strlen(scalar(x)) > MAX_STRING)
            return fail(w, x, ppath, "must be a %s", numeric ? "number" : "string");
        size_t len;
        const char *bad = unknown_placeholder(scalar(x), &len);
        if (bad)
            return fail(w, x, ppath, "unknown placeholder %.*s (known: {bot}, {group}, {run})",
                        (int)(len > 40 ? 40 : len), bad);
        if (numeric && !has_placeholder(scalar(x))) {
            char *end;
            errno = 0;
            double d = strtod(scalar(x), &end);
            if (!*scalar(x) || *end || errno == ERANGE || !isfinite(d))
                return fail(w, x, ppath, "must be a number");
        }
        props[i].key = kz_strdup(scalar(k));
        props[i].value = kz_strdup(scalar(x));
        *nout = i + 1;
    }
    return 0;
}

static const char *const k_none[] = {NULL};
static const char *const k_auth[] = {"type", "username", NULL};
static const char *const k_socket[] = {"format", NULL};
static const char *const k_wait[] = {"for", NULL};
static const char *const k_chat_join[] = {"room", "group_size", "persistence", NULL};
static const char *const k_size[] = {"size", NULL};
static const char *const k_match[] = {"group_size", "name", NULL};
static const char *const k_match_send[] = {"size", "op_code", NULL};
static const char *const k_matchmaker[] = {"query", "min_count", "max_count",
                                           "string_properties", "numeric_properties", "join",
                                           "timeout", NULL};
static const char *const k_am_match[] = {"create_rpc", "group_size", "timeout", NULL};
static const char *const k_rpc[] = {"id", "payload", "via", NULL};
static const char *const k_storage_write[] = {"collection", "key", "size", NULL};
static const char *const k_storage_read[] = {"collection", "key", NULL};
static const char *const k_leaderboard[] = {"id", "score", NULL};
static const char *const k_repeat[] = {"count", "for", "every", "do", NULL};

static const char *const *const step_keys[LT_STEP_COUNT_] = {
    [LT_STEP_AUTH] = k_auth,
    [LT_STEP_SOCKET] = k_socket,
    [LT_STEP_WAIT] = k_wait,
    [LT_STEP_CHAT_JOIN] = k_chat_join,
    [LT_STEP_CHAT_SEND] = k_size,
    [LT_STEP_CHAT_LEAVE] = k_none,
    [LT_STEP_MATCH] = k_match,
    [LT_STEP_MATCH_SEND] = k_match_send,
    [LT_STEP_MATCH_LEAVE] = k_none,
    [LT_STEP_MATCHMAKER] = k_matchmaker,
    [LT_STEP_AM_MATCH] = k_am_match,
    [LT_STEP_RPC] = k_rpc,
    [LT_STEP_STORAGE_WRITE] = k_storage_write,
    [LT_STEP_STORAGE_READ] = k_storage_read,
    [LT_STEP_LEADERBOARD_WRITE] = k_leaderboard,
    [LT_STEP_REPEAT] = k_repeat,
    [LT_STEP_DISCONNECT] = k_none,
};

static const char *const formats[] = {"json", "protobuf", NULL};

/* Fills step s of kind s->kind from the options mapping o (NULL: none). */
static int parse_step_options(walk_t *w, lt_step_t *s, const yaml_node_t *o, const char *key,
                              int depth)
{
    switch (s->kind) {
    case LT_STEP_AUTH: {
        static const char *const types[] = {"device", "custom", "email", NULL};
        int t = LT_AUTH_DEVICE;
        if (read_enum(w, o, key, "type", types, "device, custom or email", &t) < 0 ||
            read_str(w, o, key, "username", false, true, true, &s->u.auth.username) < 0)
            return -1;
        s->u.auth.type = (lt_auth_type_t)t;
        return 0;
    }
    case LT_STEP_SOCKET: {
        int f = (int)w->s->format;
        if (read_enum(w, o, key, "format", formats, "json or protobuf", &f) < 0) return -1;
        s->u.socket.format = (lt_format_t)f;
        return 0;
    }
    case LT_STEP_WAIT:
        return read_duration(w, o, key, "for", true, true, 0, &s->u.wait.for_ms);
    case LT_STEP_CHAT_JOIN:
        s->u.chat_join.room = kz_strdup("lt-room-{group}");
        s->u.chat_join.group_size = 1000;
        if (read_str(w, o, key, "room", false, true, true, &s->u.chat_join.room) < 0 ||
            read_int32(w, o, key, "group_size", false, 1, LT_MAX_GROUP,
                       &s->u.chat_join.group_size) < 0 ||
            read_bool(w, o, key, "persistence", &s->u.chat_join.persistence) < 0)
            return -1;
        return 0;
    case LT_STEP_CHAT_SEND:
        s->u.chat_send.size = 64;
        return read_int32(w, o, key, "size", false, 0, LT_MAX_SIZE, &s->u.chat_send.size);
    case LT_STEP_MATCH:
        s->u.match.group_size = 2;
        s->u.match.name = kz_strdup("lt-{run}-{group}");
        if (read_int32(w, o, key, "group_size", false, 1, LT_MAX_GROUP, &s->u.match.group_size) < 0 ||
            read_str(w, o, key, "name", false, true, true, &s->u.match.name) < 0)
            return -1;
        return 0;
    case LT_STEP_MATCH_SEND:
        s->u.match_send.size = 32;
        s->u.match_send.op_code = 1;
        if (read_int32(w, o, key, "size", false, 0, LT_MAX_SIZE, &s->u.match_send.size) < 0 ||
            read_int32(w, o, key, "op_code", false, 0, INT32_MAX, &s->u.match_send.op_code) < 0)
            return -1;
        return 0;
    case LT_STEP_MATCHMAKER: {
        struct lt_matchmaker_opts *mm = &s->u.matchmaker;
        mm->query = kz_strdup("*");
        mm->min_count = 2;
        mm->max_count = 2;
        mm->join = true;
        mm->timeout_ms = 60000;
        if (read_str(w, o, key, "query", false, true, true, &mm->query) < 0 ||
            read_int32(w, o, key, "min_count", false, 2, 256, &mm->min_count) < 0 ||
            read_int32(w, o, key, "max_count", false, 2, 256, &mm->max_count) < 0 ||
            parse_props(w, o, key, "string_properties", false, &mm->string_props,
                        &mm->n_string_props) < 0 ||
            parse_props(w, o, key, "numeric_properties", true, &mm->numeric_props,
                        &mm->n_numeric_props) < 0 ||
            read_bool(w, o, key, "join", &mm->join) < 0 ||
            read_duration(w, o, key, "timeout", false, false, 1, &mm->timeout_ms) < 0)
            return -1;
        if (mm->max_count < mm->min_count) {
            char path[PATH_MAX_LEN];
            sub_key(path, key, "max_count");
            return fail(w, get(w, o, "max_count"), path, "must be >= min_count (%d)",
                        mm->min_count);
        }
        return 0;
    }
    case LT_STEP_AM_MATCH:
        s->u.am_match.group_size = 2;
        s->u.am_match.timeout_ms = 30000;
        if (read_str(w, o, key, "create_rpc", true, true, false, &s->u.am_match.create_rpc) < 0 ||
            read_int32(w, o, key, "group_size", false, 1, LT_MAX_GROUP,
                       &s->u.am_match.group_size) < 0 ||
            read_duration(w, o, key, "timeout", false, false, 1, &s->u.am_match.timeout_ms) < 0)
            return -1;
        return 0;
    case LT_STEP_RPC: {
        static const char *const vias[] = {"http", "socket", NULL};
        int via = 0;
        if (read_str(w, o, key, "id", true, true, false, &s->u.rpc.id) < 0 ||
            read_enum(w, o, key, "via", vias, "http or socket", &via) < 0)
            return -1;
        s->u.rpc.via = via ? LT_VIA_SOCKET : LT_VIA_HTTP;
        yaml_node_t *p = get(w, o, "payload");
        char path[PATH_MAX_LEN];
        sub_key(path, key, "payload");
        if (p && p->type != YAML_SCALAR_NODE) { /* written as YAML: turn it into JSON text */
            json_t *j = yaml_to_json(w, p, 0);
            char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_decref(j);
            if (!text) return fail(w, p, path, "cannot be turned into JSON");
            s->u.rpc.payload = kz_strdup(text);
            free(text);
        } else if (read_str(w, o, key, "payload", false, false, true, &s->u.rpc.payload) < 0) {
            return -1;
        }
        if (!s->u.rpc.payload) s->u.rpc.payload = kz_strdup("{}");
        /* It must be JSON once rendered (the bot renders the same way). */
        size_t cap = strlen(s->u.rpc.payload) * 4 + 64;
        char *r = kz_calloc(1, cap);
        lt_template_render(s->u.rpc.payload, 0, 0, "00000000", r, cap);
        json_error_t je;
        json_t *j = json_loads(r, JSON_DECODE_ANY, &je);
        free(r);
        if (!j) return fail(w, p, path, "must be JSON text: %s", je.text);
        json_decref(j);
        return 0;
    }
    case LT_STEP_STORAGE_WRITE:
    case LT_STEP_STORAGE_READ:
        s->u.storage.collection = kz_strdup("lt");
        s->u.storage.key = kz_strdup("k{bot}");
        s->u.storage.size = 256;
        if (read_str(w, o, key, "collection", false, true, true, &s->u.storage.collection) < 0 ||
            read_str(w, o, key, "key", false, true, true, &s->u.storage.key) < 0)
            return -1;
        if (s->kind == LT_STEP_STORAGE_READ) return 0;
        return read_int32(w, o, key, "size", false, 0, LT_MAX_SIZE, &s->u.storage.size);
    case LT_STEP_LEADERBOARD_WRITE: {
        if (read_str(w, o, key, "id", true, true, false, &s->u.leaderboard.id) < 0) return -1;
        yaml_node_t *v = get(w, o, "score");
        if (!v || (v->type == YAML_SCALAR_NODE && strcmp(scalar(v), "random") == 0)) {
            s->u.leaderboard.random = true;
            return 0;
        }
        char path[PATH_MAX_LEN];
        sub_key(path, key, "score");
        char *end = NULL;
        long long x = 0;
        if (v->type == YAML_SCALAR_NODE && (isdigit((unsigned char)scalar(v)[0]) ||
                                            scalar(v)[0] == '-')) {
            errno = 0;
            x = strtoll(scalar(v), &end, 10);
        }
        if (!end || end == scalar(v) || *end || errno == ERANGE || llabs(x) > (1LL << 53))
            return fail(w, v, path, "must be an integer or random");
        s->u.leaderboard.score = x;
        return 0;
    }
    case LT_STEP_REPEAT: {
        struct lt_repeat_opts *r = &s->u.repeat;
        r->count = -1;
        r->for_ms = 0;
        r->every_ms = 0;
        char path[PATH_MAX_LEN];
        if (depth >= LT_REPEAT_DEPTH)
            return fail(w, o, key, "repeat nested deeper than %d levels", LT_REPEAT_DEPTH);
        if (read_int(w, o, key, "count", false, 1, INT64_MAX / 2, &r->count) < 0 ||
            read_duration(w, o, key, "for", false, true, 1, &r->for_ms) < 0 ||
            read_duration(w, o, key, "every", false, false, 0, &r->every_ms) < 0)
            return -1;
        if (r->count < 0 && r->for_ms == 0)
            return fail(w, o, key, "needs count or for");
        if (r->count >= 0 && r->for_ms != 0) {
            sub_key(path, key, "for");
            return fail(w, get(w, o, "for"), path, "count and for exclude each other");
        }
        yaml_node_t *d = get(w, o, "do");
        if (!d) return req_missing(w, o, key, "do");
        sub_key(path, key, "do");
        return parse_steps(w, d, path, depth + 1, &r->steps, &r->nsteps);
    }
    default: return 0;
    }
}

/* One list item: `name:` + options mapping (or nothing), or the bare name. */
static int parse_step(walk_t *w, const yaml_node_t *n, const char *key, int depth, lt_step_t *s)
{
    const yaml_node_t *name = NULL, *opts = NULL;
    s->line = (int)n->start_mark.line + 1;
    if (n->type == YAML_SCALAR_NODE && !is_null(n)) {
        name = n;
    } else if (n->type == YAML_MAPPING_NODE &&
               n->data.mapping.pairs.top - n->data.mapping.pairs.start == 1) {
        name = node(w, n->data.mapping.pairs.start[0].key);
        opts = node(w, n->data.mapping.pairs.start[0].value);
        if (name->type != YAML_SCALAR_NODE) name = NULL;
    }
    if (!name)
        return fail(w, n, key, "a step is a one-key mapping (step name: options)");
    int kind = 0;
    while (kind < LT_STEP_COUNT_ && strcmp(step_names[kind], scalar(name)) != 0) kind++;
    if (kind == LT_STEP_COUNT_)
        return fail(w, name, key, "unknown step '%.40s'", scalar(name));
    s->kind = (lt_step_kind_t)kind;
    char path[PATH_MAX_LEN];
    sub_key(path, key, scalar(name));
    int rc = opts ? check_map(w, opts, path, step_keys[kind]) : 1;
    if (rc < 0) return -1;
    /* A missing required option is reported at the step's line. */
    const yaml_node_t *saved = w->at;
    w->at = n;
    rc = parse_step_options(w, s, rc == 1 ? NULL : opts, path, depth);
    w->at = saved;
    return rc;
}

static int parse_steps(walk_t *w, const yaml_node_t *seq, const char *key, int depth,
                       lt_step_t **out, size_t *nout)
{
    if (seq->type != YAML_SEQUENCE_NODE) return fail(w, seq, key, "must be a list of steps");
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0) return fail(w, seq, key, "must have at least one step");
    if (n > LT_MAX_STEPS) return fail(w, seq, key, "more than %d steps", LT_MAX_STEPS);
    if ((w->steps += (long)n) > MAX_TOTAL_STEPS)
        return fail(w, seq, key, "more than %d steps in the scenario", MAX_TOTAL_STEPS);
    lt_step_t *steps = kz_calloc(n, sizeof *steps);
    *out = steps;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX_LEN];
        sub_index(path, key, i);
        steps[i].kind = LT_STEP_DISCONNECT; /* nothing to free until parsed */
        *nout = i + 1;
        if (++w->visits > MAX_VISITS) return fail(w, seq, key, "scenario too large");
        if (parse_step(w, node(w, seq->data.sequence.items.start[i]), path, depth, &steps[i]) < 0)
            return -1;
    }
    return 0;
}

/* ----- Step order -------------------------------------------------------- */

/* What a bot has at a point of its steps. */
typedef struct {
    bool session, socket, chat, match;
} have_t;

/* Walks steps from state h, failing at the first step that needs something
 * it does not have. */
static int check_order(walk_t *w, const lt_step_t *steps, size_t n, const char *key, have_t *h)
{
    for (size_t i = 0; i < n; i++) {
        const lt_step_t *s = &steps[i];
        char path[PATH_MAX_LEN];
        sub_index(path, key, i);
        const char *need = NULL;
        switch (s->kind) {
        case LT_STEP_AUTH: h->session = true; break;
        case LT_STEP_SOCKET:
            if (!h->session) need = "an auth step";
            h->socket = true;
            break;
        case LT_STEP_CHAT_JOIN:
            if (!h->socket) need = "a socket step";
            h->chat = true;
            break;
        case LT_STEP_CHAT_SEND:
        case LT_STEP_CHAT_LEAVE:
            if (!h->chat) need = "a chat_join step";
            if (s->kind == LT_STEP_CHAT_LEAVE) h->chat = false;
            break;
        case LT_STEP_MATCH:
        case LT_STEP_AM_MATCH:
        case LT_STEP_MATCHMAKER:
            if (!h->socket) need = "a socket step";
            if (s->kind != LT_STEP_MATCHMAKER || s->u.matchmaker.join) h->match = true;
            break;
        case LT_STEP_MATCH_SEND:
        case LT_STEP_MATCH_LEAVE:
            if (!h->match) need = "a match, am_match or matchmaker step";
            if (s->kind == LT_STEP_MATCH_LEAVE) h->match = false;
            break;
        case LT_STEP_RPC:
            if (s->u.rpc.via == LT_VIA_SOCKET && !h->socket) need = "a socket step";
            else if (!h->session) need = "an auth step";
            break;
        case LT_STEP_STORAGE_WRITE:
        case LT_STEP_STORAGE_READ:
        case LT_STEP_LEADERBOARD_WRITE:
            if (!h->session) need = "an auth step";
            break;
        case LT_STEP_DISCONNECT:
            if (!h->socket) need = "a socket step";
            h->socket = h->chat = h->match = false;
            break;
        case LT_STEP_REPEAT: {
            char sub[PATH_MAX_LEN];
            sub_key(sub, path, "repeat.do");
            /* Twice: the second iteration starts from where the first ended. */
            if (check_order(w, s->u.repeat.steps, s->u.repeat.nsteps, sub, h) < 0) return -1;
            if (s->u.repeat.count != 1 &&
                check_order(w, s->u.repeat.steps, s->u.repeat.nsteps, sub, h) < 0)
                return -1;
            break;
        }
        default: break;
        }
        if (need) {
            yaml_node_t fake = {0};
            fake.start_mark.line = (size_t)(s->line - 1);
            char spath[PATH_MAX_LEN];
            sub_key(spath, path, lt_step_name(s->kind));
            return fail(w, &fake, spath, "needs %s before it", need);
        }
    }
    return 0;
}

/* ----- The scenario ------------------------------------------------------ */

static const char *const k_top[] = {"name", "server", "bots", "arrival", "duration", "processes",
                                    "source_addresses", "timeout", "soak", "profiles", NULL};
static const char *const k_server[] = {"host", "port", "server_key", "http_key", "format", NULL};
static const char *const k_arrival[] = {"rate", "ramp", NULL};
static const char *const k_soak[] = {"metrics_url", "every", NULL};
static const char *const k_profile[] = {"name", "weight", "steps", NULL};

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The smooth weighted round-robin table (nginx's): each turn every profile
 * gains its weight, the largest current value wins and pays the total. */
static void build_wrr(lt_scenario_t *s)
{
    int64_t g = 0, total = 0;
    for (size_t i = 0; i < s->nprofiles; i++) g = gcd64(g, s->profiles[i].weight);
    for (size_t i = 0; i < s->nprofiles; i++) total += s->profiles[i].weight / g;
    int64_t *cur = kz_calloc(s->nprofiles, sizeof *cur);
    s->wrr = kz_calloc((size_t)total, sizeof *s->wrr);
    s->nwrr = (size_t)total;
    for (int64_t t = 0; t < total; t++) {
        size_t best = 0;
        for (size_t i = 0; i < s->nprofiles; i++) {
            cur[i] += s->profiles[i].weight / g;
            if (cur[i] > cur[best]) best = i;
        }
        cur[best] -= total;
        s->wrr[t] = (uint16_t)best;
    }
    free(cur);
}

static int parse_profiles(walk_t *w, const yaml_node_t *seq)
{
    lt_scenario_t *s = w->s;
    if (seq->type != YAML_SEQUENCE_NODE) return fail(w, seq, "profiles", "must be a list");
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0) return fail(w, seq, "profiles", "must have at least one profile");
    if (n > LT_MAX_PROFILES)
        return fail(w, seq, "profiles", "more than %d profiles", LT_MAX_PROFILES);
    s->profiles = kz_calloc(n, sizeof *s->profiles);
    for (size_t i = 0; i < n; i++) {
        lt_profile_t *p = &s->profiles[i];
        s->nprofiles = i + 1;
        yaml_node_t *pn = node(w, seq->data.sequence.items.start[i]);
        char key[PATH_MAX_LEN];
        sub_index(key, "profiles", i);
        p->weight = 1;
        int rc = check_map(w, pn, key, k_profile);
        if (rc == 1) return fail(w, pn, key, "must be a mapping");
        if (rc < 0 || read_str(w, pn, key, "name", true, true, false, &p->name) < 0 ||
            read_int32(w, pn, key, "weight", false, 1, LT_MAX_WEIGHT, &p->weight) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->profiles[j].name, p->name) == 0) {
                char path[PATH_MAX_LEN];
                sub_key(path, key, "name");
                return fail(w, get(w, pn, "name"), path, "duplicate profile name '%.40s'",
                            p->name);
            }
        yaml_node_t *st = get(w, pn, "steps");
        if (!st) return req_missing(w, pn, key, "steps");
        char path[PATH_MAX_LEN];
        sub_key(path, key, "steps");
        if (parse_steps(w, st, path, 0, &p->steps, &p->nsteps) < 0) return -1;
        have_t h = {0};
        if (check_order(w, p->steps, p->nsteps, path, &h) < 0) return -1;
    }
    return 0;
}

static int parse_root(walk_t *w, const yaml_node_t *root)
{
    lt_scenario_t *s = w->s;
    int rc = check_map(w, root, "", k_top);
    if (rc == 1) return fail(w, root, "scenario", "empty file");
    if (rc < 0) return -1;

    s->host = kz_strdup("127.0.0.1");
    s->port = 7350;
    s->server_key = kz_strdup("defaultkey");
    s->http_key = kz_strdup("defaulthttpkey");
    s->format = LT_FORMAT_JSON;
    s->arrival_rate = 100;
    s->timeout_ms = 10000;
    s->soak_url = kz_strdup("http://127.0.0.1:9100/metrics");
    s->soak_every_ms = 10000;

    if (read_str(w, root, "", "name", true, true, false, &s->name) < 0) return -1;

    yaml_node_t *srv = get(w, root, "server");
    if (srv) {
        int f = LT_FORMAT_JSON;
        if (check_map(w, srv, "server", k_server) < 0 ||
            read_str(w, srv, "server", "host", false, true, false, &s->host) < 0 ||
            read_int32(w, srv, "server", "port", false, 1, 65535, &s->port) < 0 ||
            read_str(w, srv, "server", "server_key", false, false, false, &s->server_key) < 0 ||
            read_str(w, srv, "server", "http_key", false, false, false, &s->http_key) < 0 ||
            read_enum(w, srv, "server", "format", formats, "json or protobuf", &f) < 0)
            return -1;
        s->format = (lt_format_t)f;
    }

    if (read_int(w, root, "", "bots", true, 1, LT_MAX_BOTS, &s->bots) < 0) return -1;

    yaml_node_t *arr = get(w, root, "arrival");
    if (arr) {
        if (check_map(w, arr, "arrival", k_arrival) < 0) return -1;
        yaml_node_t *r = get(w, arr, "rate");
        if (r) {
            char *end = NULL;
            double v = 0;
            if (r->type == YAML_SCALAR_NODE && isdigit((unsigned char)scalar(r)[0]))
                v = strtod(scalar(r), &end);
            if (!end || *end || !(v > 0) || v > MAX_RATE)
                return fail(w, r, "arrival.rate", "must be a number > 0 and <= %.0f", MAX_RATE);
            s->arrival_rate = v;
        }
        if (read_duration(w, arr, "arrival", "ramp", false, false, 0, &s->ramp_ms) < 0) return -1;
    }

    if (read_duration(w, root, "", "duration", true, false, 1, &s->duration_ms) < 0 ||
        read_int32(w, root, "", "processes", false, 0, MAX_PROCESSES, &s->processes) < 0 ||
        read_int32(w, root, "", "source_addresses", false, 0, MAX_SOURCE_ADDRS,
                   &s->source_addresses) < 0 ||
        read_duration(w, root, "", "timeout", false, false, 1, &s->timeout_ms) < 0)
        return -1;

    /* "soak:" with nothing under it turns soak on with the defaults. */
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++)
        if (strcmp(scalar(node(w, p->key)), "soak") == 0) s->soak = true;
    yaml_node_t *soak = get(w, root, "soak");
    if (soak) {
        if (check_map(w, soak, "soak", k_soak) < 0 ||
            read_str(w, soak, "soak", "metrics_url", false, true, false, &s->soak_url) < 0 ||
            read_duration(w, soak, "soak", "every", false, false, 1, &s->soak_every_ms) < 0)
            return -1;
        if (strncmp(s->soak_url, "http://", 7) != 0)
            return fail(w, get(w, soak, "metrics_url"), "soak.metrics_url",
                        "must be an http:// URL");
    }

    yaml_node_t *prof = get(w, root, "profiles");
    if (!prof) return req_missing(w, root, "", "profiles");
    if (parse_profiles(w, prof) < 0) return -1;
    build_wrr(s);
    return 0;
}

lt_scenario_t *lt_scenario_parse(const char *text, size_t len, const char *name, char *err,
                                 size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        kz_errf(err, errlen, "%s: cannot initialise the YAML parser", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        kz_errf(err, errlen, "%s:%zu: YAML: %s", name, parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_parser_delete(&parser);

    lt_scenario_t *s = kz_calloc(1, sizeof *s);
    s->path = kz_strdup(name);
    walk_t w = {.doc = &doc, .file = name, .err = err, .errlen = errlen, .s = s};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    w.at = root;
    int rc;
    if (!root)
        rc = fail(&w, NULL, "scenario", "empty file");
    else
        rc = parse_root(&w, root);
    yaml_document_delete(&doc);
    if (rc < 0) {
        lt_scenario_free(s);
        return NULL;
    }
    return s;
}

lt_scenario_t *lt_scenario_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        kz_errf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = kz_calloc(1, MAX_FILE_BYTES + 1);
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    lt_scenario_t *s = NULL;
    if (rerr)
        kz_errf(err, errlen, "%s: read error", path);
    else if (n > MAX_FILE_BYTES)
        kz_errf(err, errlen, "%s: larger than %d bytes", path, MAX_FILE_BYTES);
    else
        s = lt_scenario_parse(buf, n, path, err, errlen);
    free(buf);
    return s;
}

void lt_scenario_free(lt_scenario_t *s)
{
    if (!s) return;
    free(s->path);
    free(s->name);
    free(s->host);
    free(s->server_key);
    free(s->http_key);
    free(s->soak_url);
    for (size_t i = 0; i < s->nprofiles; i++) {
        free(s->profiles[i].name);
        free_steps(s->profiles[i].steps, s->profiles[i].nsteps);
    }
    free(s->profiles);
    free(s->wrr);
    free(s);
}

/* ----- Overrides, derived values ----------------------------------------- */

static void set_socket_format(lt_step_t *steps, size_t n, lt_format_t f)
{
    for (size_t i = 0; i < n; i++) {
        if (steps[i].kind == LT_STEP_SOCKET) steps[i].u.socket.format = f;
        if (steps[i].kind == LT_STEP_REPEAT)
            set_socket_format(steps[i].u.repeat.steps, steps[i].u.repeat.nsteps, f);
    }
}

lt_overrides_t lt_overrides_none(void)
{
    return (lt_overrides_t){.processes = -1, .format = -1};
}

int lt_scenario_override(lt_scenario_t *s, const lt_overrides_t *o, char *err, size_t errlen)
{
    if (o->bots && (o->bots < 1 || o->bots > LT_MAX_BOTS)) {
        kz_errf(err, errlen, "--bots: must be an integer in 1..%d", LT_MAX_BOTS);
        return -1;
    }
    if (o->duration_ms && (o->duration_ms < 1 || o->duration_ms > LT_MAX_DURATION_MS)) {
        kz_errf(err, errlen, "--duration: must be a duration more than 0 and at most 30 days");
        return -1;
    }
    if (o->rate && !(o->rate > 0 && o->rate <= MAX_RATE)) {
        kz_errf(err, errlen, "--rate: must be a number > 0 and <= %.0f", MAX_RATE);
        return -1;
    }
    if (o->host && !*o->host) {
        kz_errf(err, errlen, "--host: must not be empty");
        return -1;
    }
    if (o->port && (o->port < 1 || o->port > 65535)) {
        kz_errf(err, errlen, "--port: must be an integer in 1..65535");
        return -1;
    }
    if (o->processes != -1 && (o->processes < 0 || o->processes > MAX_PROCESSES)) {
        kz_errf(err, errlen, "--processes: must be an integer in 0..%d", MAX_PROCESSES);
        return -1;
    }
    if (o->format != -1 && o->format != LT_FORMAT_JSON && o->format != LT_FORMAT_PROTOBUF) {
        kz_errf(err, errlen, "--format: must be json or protobuf");
        return -1;
    }
    if (o->soak_url && strncmp(o->soak_url, "http://", 7) != 0) {
        kz_errf(err, errlen, "--metrics-url: must be an http:// URL");
        return -1;
    }
    if (o->bots) s->bots = o->bots;
    if (o->duration_ms) s->duration_ms = o->duration_ms;
    if (o->rate) s->arrival_rate = o->rate;
    if (o->host) {
        free(s->host);
        s->host = kz_strdup(o->host);
    }
    if (o->port) s->port = o->port;
    if (o->server_key) {
        free(s->server_key);
        s->server_key = kz_strdup(o->server_key);
    }
    if (o->processes != -1) s->processes = o->processes;
    if (o->format != -1) {
        s->format = (lt_format_t)o->format;
        for (size_t i = 0; i < s->nprofiles; i++)
            set_socket_format(s->profiles[i].steps, s->profiles[i].nsteps, s->format);
    }
    if (o->soak || o->soak_url) s->soak = true;
    if (o->soak_url) {
        free(s->soak_url);
        s->soak_url = kz_strdup(o->soak_url);
    }
    return 0;
}

size_t lt_profile_for_bot(const lt_scenario_t *s, int64_t bot)
{
    if (bot < 0 || s->nwrr == 0) return 0;
    return s->wrr[(uint64_t)bot % s->nwrr];
}

int64_t lt_arrival_time_ms(const lt_scenario_t *s, int64_t bot)
{
    if (bot <= 0) return 0;
    double r = s->arrival_rate, T = (double)s->ramp_ms / 1000.0, i = (double)bot;
    double t;
    if (T > 0 && i <= r * T / 2)
        t = sqrt(2 * T * i / r);
    else
        t = i / r + T / 2;
    return llround(t * 1000.0);
}

int lt_scenario_processes(const lt_scenario_t *s)
{
    if (s->processes > 0) return s->processes;
    int64_t k = (s->bots + 14999) / 15000;
    return k < 1 ? 1 : (int)k;
}

int lt_scenario_source_addresses(const lt_scenario_t *s)
{
    if (s->source_addresses > 0) return s->source_addresses;
    bool loopback = strncmp(s->host, "127.", 4) == 0 || strcasecmp(s->host, "localhost") == 0;
    if (!loopback) return 1;
    int64_t k = (s->bots + 24999) / 25000;
    if (k > MAX_SOURCE_ADDRS) k = MAX_SOURCE_ADDRS;
    return k < 1 ? 1 : (int)k;
}
