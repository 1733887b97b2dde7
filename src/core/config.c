/* Server configuration: one table describes every key.
 *
 * Each entry of `options` names a dotted key, the type and offset of the
 * field it fills, the allowed range, the default in text form and a help
 * line. Everything else walks that table: kz_config_defaults parses the
 * defaults through the same setter the user's values go through,
 * kz_config_set looks the key up and parses, the YAML loader turns nested
 * mappings into dotted keys and calls kz_config_set, kz_config_finish
 * re-checks ranges, kz_config_free frees the string fields, and
 * kz_config_usage prints the flag list. Adding a key is one table line plus
 * the struct field. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "core/alloc.h"

/* ----- The option table -------------------------------------------------- */

typedef enum {
    OPT_STRING,   /* char *, owned, replaced by kz_strdup */
    OPT_INT,      /* int, range-checked */
    OPT_INT64,    /* int64_t, range-checked */
    OPT_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 */
    OPT_LOGLEVEL, /* kz_log_level_t: debug, info, warn, error */
    OPT_ENV,      /* char *, owned: "KEY=VALUE" entries joined by '\n'; each value appends */
} opt_type_t;

/* Option flags. */
#define OPT_NONEMPTY 0x1 /* kz_config_finish rejects an empty string */
#define OPT_SEQUENCE 0x2 /* YAML may give a one-element sequence (Nakama compatibility) */

typedef struct {
    const char *key;     /* dotted name, also the flag name after "--" */
    opt_type_t type;     /* how the text value is parsed */
    size_t offset;       /* offsetof the field in kz_config_t */
    int64_t min, max;    /* inclusive range for OPT_INT / OPT_INT64 */
    const char *def;     /* default as text, parsed by kz_config_defaults; NULL = computed */
    const char *def_doc; /* what usage shows when def is NULL */
    unsigned flags;      /* OPT_* flags */
    const char *help;    /* one line for --help */
} opt_t;

#define OFF(field) offsetof(kz_config_t, field)
#define DAY_MS 86400000
#define TEN_YEARS_SEC (10LL * 365 * 24 * 3600)

static const opt_t options[] = {
    {"name", OPT_STRING, OFF(name), 0, 0, "kizuna", NULL, OPT_NONEMPTY,
     "Node name, unique within a cluster."},
    {"data_dir", OPT_STRING, OFF(data_dir), 0, 0, "./data", NULL, OPT_NONEMPTY,
     "Directory for the embedded database and Lua modules."},
    {"workers", OPT_INT, OFF(workers), 1, 256, NULL, "online CPU cores", 0,
     "I/O threads, each running one event loop."},
    {"shutdown_grace_sec", OPT_INT, OFF(shutdown_grace_sec), 0, 3600, "0", NULL, 0,
     "Seconds authoritative matches get to end (match_terminate's grace) when the server stops."},

    {"socket.address", OPT_STRING, OFF(socket.address), 0, 0, "127.0.0.1", NULL, 0,
     "Address the API listens on."},
    {"socket.port", OPT_INT, OFF(socket.port), 1, 65535, "7350", NULL, 0,
     "Port of the API (REST and /ws)."},
    {"socket.server_key", OPT_STRING, OFF(socket.server_key), 0, 0, "defaultkey", NULL,
     OPT_NONEMPTY, "Server key clients send to authenticate and refresh sessions."},
    {"socket.max_request_size_bytes", OPT_INT64, OFF(socket.max_request_size_bytes), 1, 1 << 30,
     "262144", NULL, 0, "Largest HTTP request body accepted."},
    {"socket.max_header_bytes", OPT_INT, OFF(socket.max_header_bytes), 256, 1 << 20, "5120", NULL,
     0, "Largest HTTP request line plus headers accepted."},
    {"socket.max_message_size_bytes", OPT_INT64, OFF(socket.max_message_size_bytes), 64, 1 << 26,
     "4096", NULL, 0, "Largest inbound WebSocket message accepted."},
    {"socket.read_timeout_ms", OPT_INT, OFF(socket.read_timeout_ms), 1, DAY_MS, "10000", NULL, 0,
     "Time allowed to receive a whole request once it has started."},
    {"socket.write_timeout_ms", OPT_INT, OFF(socket.write_timeout_ms), 1, DAY_MS, "10000", NULL, 0,
     "Time allowed for a response to drain to the client."},
    {"socket.idle_timeout_ms", OPT_INT, OFF(socket.idle_timeout_ms), 1, DAY_MS, "60000", NULL, 0,
     "Time an idle keep-alive connection is kept open."},
    {"socket.outgoing_queue_size", OPT_INT, OFF(socket.outgoing_queue_size), 1, 1 << 20, "64",
     NULL, 0, "Messages queued to one WebSocket before it is dropped as a slow consumer."},
    {"socket.ping_period_ms", OPT_INT, OFF(socket.ping_period_ms), 1, DAY_MS, "15000", NULL, 0,
     "Interval between WebSocket pings."},
    {"socket.pong_wait_ms", OPT_INT, OFF(socket.pong_wait_ms), 1, DAY_MS, "25000", NULL, 0,
     "Time to wait for a pong before closing the WebSocket."},

    {"session.encryption_key", OPT_STRING, OFF(session.encryption_key), 0, 0,
     "defaultencryptionkey", NULL, OPT_NONEMPTY, "HMAC key that signs session tokens."},
    {"session.refresh_encryption_key", OPT_STRING, OFF(session.refresh_encryption_key), 0, 0,
     "defaultrefreshencryptionkey", NULL, OPT_NONEMPTY,
     "HMAC key that signs refresh tokens; must differ from session.encryption_key."},
    {"session.token_expiry_sec", OPT_INT64, OFF(session.token_expiry_sec), 1, TEN_YEARS_SEC, "60",
     NULL, 0, "Lifetime of a session token in seconds."},
    {"session.refresh_token_expiry_sec", OPT_INT64, OFF(session.refresh_token_expiry_sec), 1,
     TEN_YEARS_SEC, "3600", NULL, 0, "Lifetime of a refresh token in seconds."},
    {"session.single_socket", OPT_BOOL, OFF(session.single_socket), 0, 0, "false", NULL, 0,
     "A user's new socket closes their older ones (each told with notification code -7)."},
    {"session.single_match", OPT_BOOL, OFF(session.single_match), 0, 0, "false", NULL, 0,
     "Joining a match leaves the user's other matches; needs session.single_socket."},

    {"database.address", OPT_STRING, OFF(database.address), 0, 0, NULL, "DATA_DIR/kizuna.db",
     OPT_SEQUENCE, "postgres:// URL, or the path of the SQLite database file."},
    {"database.max_open_conns", OPT_INT, OFF(database.max_open_conns), 1, 1024, "8", NULL, 0,
     "Worker-pool threads, each holding one database connection."},

    {"runtime.path", OPT_STRING, OFF(runtime.path), 0, 0, NULL, "DATA_DIR/modules", 0,
     "Directory of the Lua modules."},
    {"runtime.http_key", OPT_STRING, OFF(runtime.http_key), 0, 0, "defaulthttpkey", NULL,
     OPT_NONEMPTY, "Key for server-to-server RPC calls."},
    {"runtime.env", OPT_ENV, OFF(runtime.env), 0, 0, NULL, "none", 0,
     "KEY=VALUE for the Lua context's env table; repeat for more (a YAML list)."},
    {"runtime.lua_call_timeout_ms", OPT_INT, OFF(runtime.lua_call_timeout_ms), 1, 3600000, "10000",
     NULL, 0, "Time budget of one Lua call (RPC, hook); past it the call fails."},
    {"runtime.lua_memory_mb", OPT_INT, OFF(runtime.lua_memory_mb), 1, 65536, "64", NULL, 0,
     "Memory budget of one Lua state in MiB; past it the call fails."},

    {"matchmaker.interval_sec", OPT_INT, OFF(matchmaker.interval_sec), 1, 3600, "15", NULL, 0,
     "Seconds between matchmaker processing passes."},
    {"matchmaker.max_intervals", OPT_INT, OFF(matchmaker.max_intervals), 1, 1000, "2", NULL, 0,
     "Passes a ticket searches for before it accepts any group of min_count or more."},
    {"matchmaker.max_tickets", OPT_INT, OFF(matchmaker.max_tickets), 1, 1000, "3", NULL, 0,
     "Matchmaker tickets one session (or party) may hold at once."},
    {"matchmaker.rev_precision", OPT_BOOL, OFF(matchmaker.rev_precision), 0, 0, "true", NULL, 0,
     "Tickets match only when every ticket's query accepts the others (false: the searcher's alone)."},

    {"match.max_empty_sec", OPT_INT, OFF(match.max_empty_sec), 0, 86400, "0", NULL, 0,
     "Seconds an authoritative match may stay without players before it stops; 0 = never."},

    {"logger.level", OPT_LOGLEVEL, OFF(logger.level), 0, 0, "info", NULL, 0,
     "Minimum log level: debug, info, warn or error."},

    {"metrics.prometheus_port", OPT_INT, OFF(metrics.prometheus_port), 0, 65535, "9100", NULL, 0,
     "Port of the Prometheus endpoint on 127.0.0.1; 0 turns it off."},

    {"test.clock_control", OPT_BOOL, OFF(test.clock_control), 0, 0, "false", NULL, 0,
     "For tests only: PUT /v2/kizuna/test/clock?offset_ms=N (http_key) moves the server's clock."},
};

#define NOPTIONS (sizeof options / sizeof options[0])

/* snprintf into err when the caller gave room for a message. */
static const opt_t *find_option(const char *key)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(options[i].key, key) == 0) return &options[i];
    return NULL;
}

/* True if key is a proper prefix of some option at a dot ("socket" for
 * "socket.port"): the name of a YAML mapping that holds options. */
static bool is_group(const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strncmp(options[i].key, key, n) == 0 && options[i].key[n] == '.') return true;
    return false;
}

static void *field(kz_config_t *c, const opt_t *o)
{
    return (char *)c + o->offset;
}

/* ----- Parsing one value ------------------------------------------------- */

/* Parses a whole string as a decimal integer: an optional sign, digits and
 * nothing else (no spaces, no hex, no trailing junk). Returns 0 or -1. */
static int parse_int64(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0' || end == s) return -1;
    /* strtoll also accepts "0x..." prefixes only with base 0; with base 10 a
     * leading sign without digits leaves end == s, caught above. */
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

/* Parses value for option o and stores it in c. */
static int set_option(kz_config_t *c, const opt_t *o, const char *value, char *err, size_t errlen)
{
    switch (o->type) {
    case OPT_STRING: {
        char **p = field(c, o);
        kz_free(*p);
        *p = kz_strdup(value);
        return 0;
    }
    case OPT_INT:
    case OPT_INT64: {
        int64_t v;
        if (parse_int64(value, &v) < 0 || v < o->min || v > o->max) {
            kz_errf(err, errlen, "%s: expected an integer %" PRId64 "..%" PRId64 ", got '%s'",
                    o->key, o->min, o->max, value);
            return -1;
        }
        if (o->type == OPT_INT)
            *(int *)field(c, o) = (int)v;
        else
            *(int64_t *)field(c, o) = v;
        return 0;
    }
    case OPT_BOOL: {
        bool v;
        if (parse_bool(value, &v) < 0) {
            kz_errf(err, errlen, "%s: expected true or false, got '%s'", o->key, value);
            return -1;
        }
        *(bool *)field(c, o) = v;
        return 0;
    }
    case OPT_ENV: {
        const char *eq = strchr(value, '=');
        if (!eq || eq == value || strchr(value, '\n') || strlen(value) > 4096) {
            kz_errf(err, errlen, "%s: expected KEY=VALUE, got '%s'", o->key, value);
            return -1;
        }
        char **p = field(c, o);
        char *joined = *p ? kz_asprintf("%s\n%s", *p, value) : kz_strdup(value);
        kz_free(*p);
        *p = joined;
        return 0;
    }
    case OPT_LOGLEVEL: {
        kz_log_level_t v;
        if (kz_log_level_parse(value, &v) < 0) {
            kz_errf(err, errlen, "%s: expected one of debug, info, warn, error, got '%s'", o->key,
                    value);
            return -1;
        }
        *(kz_log_level_t *)field(c, o) = v;
        return 0;
    }
    }
    return -1;
}

/* ----- Public API: defaults, set, free ----------------------------------- */

void kz_config_defaults(kz_config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (!options[i].def) continue;
        /* A default that does not parse is a bug in the table. */
        if (set_option(c, &options[i], options[i].def, NULL, 0) != 0) abort();
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const opt_t *w = find_option("workers");
    if (cores < w->min) cores = w->min;
    if (cores > w->max) cores = w->max;
    c->workers = (int)cores;
}

int kz_config_set(kz_config_t *c, const char *key, const char *value, char *err, size_t errlen)
{
    const opt_t *o = find_option(key);
    if (!o) {
        kz_errf(err, errlen, "unknown configuration key '%s'", key);
        return -1;
    }
    return set_option(c, o, value ? value : "", err, errlen);
}

void kz_config_free(kz_config_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].type == OPT_STRING || options[i].type == OPT_ENV) kz_free(*(char **)field(c, &options[i]));
    memset(c, 0, sizeof *c);
}

/* ----- YAML files -------------------------------------------------------- */

/* Nesting deeper than any key, and a bound on the nodes visited, so aliases
 * (which may point back at an enclosing mapping, or fan out exponentially)
 * cannot recurse or loop forever. */
#define YAML_MAX_DEPTH 16
#define YAML_MAX_VISITS 100000
#define KEY_MAX 256

typedef struct {
    kz_config_t *c;
    yaml_document_t *doc;
    const char *path; /* file name, for messages */
    char *err;
    size_t errlen;
    long visits; /* nodes walked so far, against YAML_MAX_VISITS */
} yaml_walk_t;

/* A plain (unquoted) empty, "~" or "null" scalar: YAML's null. */
static bool is_null_scalar(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static int walk_err(yaml_walk_t *w, const yaml_node_t *n, const char *msg)
{
    kz_errf(w->err, w->errlen, "%s in %s at line %zu, column %zu", msg, w->path,
            n->start_mark.line + 1, n->start_mark.column + 1);
    return -1;
}

/* Applies a scalar to key, adding the file position to any error. */
static int apply_scalar(yaml_walk_t *w, const char *key, const yaml_node_t *n)
{
    char msg[512];
    if (kz_config_set(w->c, key, (const char *)n->data.scalar.value, msg, sizeof msg) == 0)
        return 0;
    return walk_err(w, n, msg);
}

/* Applies node n found under the dotted key. Mappings extend the key;
 * scalars are values; sequences are accepted only where the option allows
 * a one-element list. */
static int walk_node(yaml_walk_t *w, const char *key, yaml_node_t *n, int depth)
{
    char msg[KEY_MAX + 128];
    const opt_t *o = find_option(key);

    if (++w->visits > YAML_MAX_VISITS || depth > YAML_MAX_DEPTH)
        return walk_err(w, n, "configuration nested too deeply");

    if (*key && !o && !is_group(key)) {
        snprintf(msg, sizeof msg, "unknown configuration key '%s'", key);
        return walk_err(w, n, msg);
    }

    switch (n->type) {
    case YAML_SCALAR_NODE:
        /* "socket:" with nothing under it, or "port: ~": keep the defaults. */
        if (is_null_scalar(n)) return 0;
        if (!o) {
            snprintf(msg, sizeof msg, "%s: expected a mapping of options, got a scalar", key);
            return walk_err(w, n, msg);
        }
        return apply_scalar(w, key, n);

    case YAML_SEQUENCE_NODE: {
        yaml_node_item_t *first = n->data.sequence.items.start;
        size_t count = (size_t)(n->data.sequence.items.top - first);
        if (o && o->type == OPT_ENV) { /* a list: every item appends */
            for (yaml_node_item_t *it = first; it < n->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(w->doc, *it);
                if (!item || item->type != YAML_SCALAR_NODE) {
                    snprintf(msg, sizeof msg, "%s: expected KEY=VALUE items in the list", key);
                    return walk_err(w, item ? item : n, msg);
                }
                int rc = apply_scalar(w, key, item);
                if (rc != 0) return rc;
            }
            return 0;
        }
        if (!o || !(o->flags & OPT_SEQUENCE)) {
            snprintf(msg, sizeof msg, "%s: expected a %s, got a sequence", key,
                     o ? "scalar value" : "mapping of options");
            return walk_err(w, n, msg);
        }
        if (count != 1) {
            snprintf(msg, sizeof msg, "%s: exactly one value is supported, got %zu", key, count);
            return walk_err(w, n, msg);
        }
        yaml_node_t *item = yaml_document_get_node(w->doc, first[0]);
        if (!item || item->type != YAML_SCALAR_NODE) {
            snprintf(msg, sizeof msg, "%s: expected a scalar value in the sequence", key);
            return walk_err(w, item ? item : n, msg);
        }
        return apply_scalar(w, key, item);
    }

    case YAML_MAPPING_NODE: {
        if (o) {
            snprintf(msg, sizeof msg, "%s: expected a scalar value, got a mapping", key);
            return walk_err(w, n, msg);
        }
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
            yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
            if (!k || !v) continue;
            if (k->type != YAML_SCALAR_NODE) return walk_err(w, k, "mapping key is not a scalar");
            char sub[KEY_MAX];
            int len = snprintf(sub, sizeof sub, "%s%s%s", key, *key ? "." : "",
                               (const char *)k->data.scalar.value);
            if (len < 0 || (size_t)len >= sizeof sub) {
                snprintf(msg, sizeof msg, "unknown configuration key '%.64s...'", sub);
                return walk_err(w, k, msg);
            }
            if (walk_node(w, sub, v, depth + 1) < 0) return -1;
        }
        return 0;
    }

    default:
        return walk_err(w, n, "empty YAML node");
    }
}

int kz_config_load_file(kz_config_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        kz_errf(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));
        return -1;
    }

    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    bool have_doc = false;

    if (!yaml_parser_initialize(&parser)) {
        kz_errf(err, errlen, "%s: cannot initialise the YAML parser", path);
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);

    if (!yaml_parser_load(&parser, &doc)) {
        /* problem_mark is where libyaml noticed; marks count from zero. */
        kz_errf(err, errlen, "%s: YAML syntax error at line %zu, column %zu: %s%s%s", path,
                parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                parser.problem ? parser.problem : "malformed document",
                parser.context ? " " : "", parser.context ? parser.context : "");
        goto done;
    }
    have_doc = true;

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = 0; /* empty file or comments only */
        goto done;
    }
    yaml_walk_t w = {.c = c, .doc = &doc, .path = path, .err = err, .errlen = errlen};
    if (root->type == YAML_SCALAR_NODE && is_null_scalar(root)) {
        rc = 0; /* a lone "---" */
    } else if (root->type != YAML_MAPPING_NODE) {
        rc = walk_err(&w, root, "the top level of a config file must be a mapping");
    } else {
        rc = walk_node(&w, "", root, 0);
    }

    /* One document per file: a second one is almost certainly a mistake. */
    if (rc == 0) {
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            kz_errf(err, errlen, "%s: YAML syntax error at line %zu, column %zu: %s", path,
                    parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "malformed document");
            rc = -1;
        } else {
            if (yaml_document_get_root_node(&next)) {
                kz_errf(err, errlen, "%s: only one YAML document is allowed", path);
                rc = -1;
            }
            yaml_document_delete(&next);
        }
    }

done:
    if (have_doc) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* ----- Command-line flags ------------------------------------------------ */

/* Splits argv[*i] (and maybe argv[*i + 1]) into a key and a value. key is
 * copied into keybuf; *value points into argv. Advances *i past what it used. */
static int next_flag(int argc, char **argv, int *i, char *keybuf, size_t keylen,
                     const char **value, char *err, size_t errlen)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
        if (a[0] == '-')
            kz_errf(err, errlen, "unexpected argument '%s': flags start with '--'", a);
        else
            kz_errf(err, errlen, "unexpected positional argument '%s'", a);
        return -1;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    if (n == 0 || n >= keylen) {
        kz_errf(err, errlen, "unknown configuration key '%.*s'", (int)(n < 64 ? n : 64), name);
        return -1;
    }
    memcpy(keybuf, name, n);
    keybuf[n] = '\0';
    if (eq) {
        *value = eq + 1;
        *i += 1;
        return 0;
    }
    /* "--key value": the next argument is the value unless it is a flag
     * itself (a value starting with "--" must use the --key=value form). */
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        kz_errf(err, errlen, "flag --%s needs a value", keybuf);
        return -1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 0;
}

int kz_config_from_args(kz_config_t *c, int argc, char **argv, char *err, size_t errlen)
{
    char key[KEY_MAX];
    const char *value;

    /* Pass 1: check the shape of every argument and load each --config,
     * so the file's values sit under every other flag. */
    for (int i = 0; i < argc;) {
        if (next_flag(argc, argv, &i, key, sizeof key, &value, err, errlen) < 0) return -1;
        if (strcmp(key, "config") == 0 && kz_config_load_file(c, value, err, errlen) < 0)
            return -1;
    }
    /* Pass 2: everything else, in order; later flags win. */
    for (int i = 0; i < argc;) {
        if (next_flag(argc, argv, &i, key, sizeof key, &value, err, errlen) < 0) return -1;
        if (strcmp(key, "config") == 0) continue;
        if (kz_config_set(c, key, value, err, errlen) < 0) return -1;
    }
    return 0;
}

/* ----- Derived values and cross-field checks ----------------------------- */

int kz_config_finish(kz_config_t *c, char *err, size_t errlen)
{
    /* Per-key rules again, for values a caller stored directly. */
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt_t *o = &options[i];
        if (o->type == OPT_STRING && (o->flags & OPT_NONEMPTY)) {
            const char *s = *(char **)field(c, o);
            if (!s || !*s) {
                kz_errf(err, errlen, "%s must not be empty", o->key);
                return -1;
            }
        } else if (o->type == OPT_INT || o->type == OPT_INT64) {
            int64_t v = o->type == OPT_INT ? *(int *)field(c, o) : *(int64_t *)field(c, o);
            if (v < o->min || v > o->max) {
                kz_errf(err, errlen, "%s: expected an integer %" PRId64 "..%" PRId64 ", got '%" PRId64 "'",
                        o->key, o->min, o->max, v);
                return -1;
            }
        }
    }

    if (strcmp(c->session.encryption_key, c->session.refresh_encryption_key) == 0) {
        kz_errf(err, errlen,
                "session.encryption_key and session.refresh_encryption_key must differ");
        return -1;
    }
    if (c->socket.ping_period_ms >= c->socket.pong_wait_ms) {
        kz_errf(err, errlen,
                "socket.ping_period_ms (%d) must be less than socket.pong_wait_ms (%d)",
                c->socket.ping_period_ms, c->socket.pong_wait_ms);
        return -1;
    }
    if (c->session.single_match && !c->session.single_socket) {
        kz_errf(err, errlen, "session.single_match needs session.single_socket");
        return -1;
    }

    /* Paths derived from data_dir, when not given (an empty value counts as
     * not given). A trailing slash on data_dir is not doubled. */
    const char *sep = c->data_dir[strlen(c->data_dir) - 1] == '/' ? "" : "/";
    if (!c->database.address || !*c->database.address) {
        kz_free(c->database.address);
        c->database.address = kz_asprintf("%s%skizuna.db", c->data_dir, sep);
    }
    if (!c->runtime.path || !*c->runtime.path) {
        kz_free(c->runtime.path);
        c->runtime.path = kz_asprintf("%s%smodules", c->data_dir, sep);
    }
    return 0;
}

/* ----- Usage ------------------------------------------------------------- */

static const char *type_hint(const opt_t *o)
{
    switch (o->type) {
    case OPT_STRING: return "STRING";
    case OPT_INT:
    case OPT_INT64: return "INT";
    case OPT_BOOL: return "BOOL";
    case OPT_LOGLEVEL: return "LEVEL";
    case OPT_ENV: return "KEY=VALUE";
    }
    return "";
}

void kz_config_usage(FILE *out)
{
    const char *group = NULL; /* prefix of the previous key, to print headings */
    size_t grouplen = 0;

    fputs("Configuration flags (also accepted as nested keys in the --config YAML file):\n", out);
    fputs("  --config FILE  load a YAML file first; other flags override it\n", out);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt_t *o = &options[i];
        const char *dot = strchr(o->key, '.');
        size_t glen = dot ? (size_t)(dot - o->key) : 0;
        /* The table is ordered by group, so a heading is printed on change. */
        if (!group || glen != grouplen || strncmp(group, o->key, glen) != 0) {
            if (glen)
                fprintf(out, "\n%.*s:\n", (int)glen, o->key);
            else
                fputs("\ngeneral:\n", out);
            group = o->key;
            grouplen = glen;
        }
        char flag[KEY_MAX];
        snprintf(flag, sizeof flag, "--%s %s", o->key, type_hint(o));
        fprintf(out, "  %-40s %s\n", flag, o->help);
        fprintf(out, "  %-40s default: %s", "", o->def ? o->def : o->def_doc);
        if (o->type == OPT_INT || o->type == OPT_INT64)
            fprintf(out, " (range %" PRId64 "..%" PRId64 ")", o->min, o->max);
        fputc('\n', out);
    }
}
