/* kizuna-loadtest scenarios: the YAML file that says how many virtual
 * players arrive, how fast, and what each of them does.
 *
 * lt_scenario_load/lt_scenario_parse read the whole file into an
 * lt_scenario_t (libyaml), with every default filled in and every value
 * checked. A problem is reported as one line naming the file, the line and
 * the key path, e.g.
 *
 *     chat.yaml:14: profiles[0].steps[2].chat_join.group_size: must be an integer in 1..1000000
 *
 * Unknown keys, wrong types, out-of-range values, unknown step names and
 * repeats nested deeper than LT_REPEAT_DEPTH are all errors. The scenario
 * is immutable once loaded, apart from lt_scenario_override (command-line
 * flags), so worker processes can share the same text and get the same
 * result.
 *
 * Strings marked "template" may contain {bot} (global bot index), {group}
 * (the bot's index among the bots of its profile / the step's group_size,
 * so a group is filled by one profile's bots; tools/loadtest/bot.c) and
 * {run} (the run id); anything else,
 * braces included, is copied as it is (so JSON payloads need no escaping).
 * lt_template_render expands them. */
#ifndef KZ_LOADTEST_SCENARIO_H
#define KZ_LOADTEST_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LT_MAX_BOTS 10000000    /* bots: 1..LT_MAX_BOTS */
#define LT_MAX_PROFILES 100     /* profiles per scenario */
#define LT_MAX_WEIGHT 10000     /* a profile's weight: 1..LT_MAX_WEIGHT */
#define LT_MAX_STEPS 256        /* steps in one list (a profile's, or a repeat's do) */
#define LT_REPEAT_DEPTH 4       /* repeat inside repeat: at most this many levels */
#define LT_MAX_GROUP 1000000    /* group_size: 1..LT_MAX_GROUP */
#define LT_MAX_SIZE (1 << 20)   /* payload sizes in bytes: 0..LT_MAX_SIZE */
#define LT_MAX_PROPS 32         /* matchmaker string/numeric properties, each */
#define LT_MAX_DURATION_MS (30LL * 24 * 3600 * 1000) /* any duration: at most 30 days */
#define LT_UNTIL_END (-1)       /* a duration of `end`: until the run ends */
#define LT_RUN_ID_LEN 8         /* run ids are 8 hex characters */

typedef enum { LT_FORMAT_JSON, LT_FORMAT_PROTOBUF } lt_format_t;
typedef enum { LT_AUTH_DEVICE, LT_AUTH_CUSTOM, LT_AUTH_EMAIL } lt_auth_type_t;
typedef enum { LT_VIA_HTTP, LT_VIA_SOCKET } lt_via_t;

typedef enum {
    LT_STEP_AUTH,
    LT_STEP_SOCKET,
    LT_STEP_WAIT,
    LT_STEP_CHAT_JOIN,
    LT_STEP_CHAT_SEND,
    LT_STEP_CHAT_LEAVE,
    LT_STEP_MATCH,
    LT_STEP_MATCH_SEND,
    LT_STEP_MATCH_LEAVE,
    LT_STEP_MATCHMAKER,
    LT_STEP_AM_MATCH,
    LT_STEP_RPC,
    LT_STEP_STORAGE_WRITE,
    LT_STEP_STORAGE_READ,
    LT_STEP_LEADERBOARD_WRITE,
    LT_STEP_REPEAT,
    LT_STEP_DISCONNECT,
    LT_STEP_COUNT_
} lt_step_kind_t;

/* A matchmaker property: key, and a value template (numeric properties are
 * rendered, then read as a number by the bot; a value without placeholders
 * was checked to be a number at load time). */
typedef struct {
    char *key;
    char *value;
} lt_prop_t;

typedef struct lt_step lt_step_t;

/* One step. `kind` says which member of `u` is valid. Every string is owned
 * by the scenario and never NULL unless the comment says so. Durations are
 * milliseconds; LT_UNTIL_END where `end` is allowed. */
struct lt_step {
    lt_step_kind_t kind;
    int line; /* line of the step in the file (1-based), for messages */
    union {
        struct {
            lt_auth_type_t type; /* default device */
            char *username;      /* template, or NULL (the server picks one) */
        } auth;
        struct {
            lt_format_t format; /* default: the scenario's server.format */
        } socket;
        struct {
            int64_t for_ms; /* >= 0, or LT_UNTIL_END */
        } wait;
        struct {
            char *room;       /* template, default "lt-room-{group}" */
            int group_size;   /* default 1000 */
            bool persistence; /* default false */
        } chat_join;
        struct {
            int size; /* bytes of content text, default 64 */
        } chat_send;
        struct {
            int group_size; /* default 2 */
            char *name;     /* template, default "lt-{run}-{group}" */
        } match;
        struct {
            int size;    /* bytes of data, default 32 */
            int op_code; /* default 1 */
        } match_send;
        struct lt_matchmaker_opts {
            char *query;   /* default "*" */
            int min_count; /* default 2 */
            int max_count; /* default 2; >= min_count */
            lt_prop_t *string_props;
            size_t n_string_props;
            lt_prop_t *numeric_props;
            size_t n_numeric_props;
            bool join;          /* default true: join the matched match */
            int64_t timeout_ms; /* add -> matched bound, default 60 s */
        } matchmaker;
        struct {
            char *create_rpc;   /* required */
            int group_size;     /* default 2 */
            int64_t timeout_ms; /* default 30 s: the whole create/find/join */
        } am_match;
        struct {
            char *id;      /* required */
            char *payload; /* template of JSON text, default "{}" */
            lt_via_t via;  /* default http */
        } rpc;
        struct {
            char *collection; /* default "lt" */
            char *key;        /* template, default "k{bot}" */
            int size;         /* storage_write only: bytes of value, default 256 */
        } storage;            /* storage_write and storage_read */
        struct {
            char *id;      /* required */
            bool random;   /* score: random -> 0..1,000,000 drawn per write */
            int64_t score; /* fixed score when !random */
        } leaderboard;
        struct lt_repeat_opts {
            int64_t count;    /* iterations, or -1 when bounded by for_ms */
            int64_t for_ms;   /* run time (> 0), LT_UNTIL_END, or 0 when bounded by count */
            int64_t every_ms; /* iteration period, 0 = back to back */
            lt_step_t *steps; /* the `do` list, >= 1 */
            size_t nsteps;
        } repeat;
    } u;
};

typedef struct {
    char *name;
    int weight; /* 1..LT_MAX_WEIGHT, default 1 */
    lt_step_t *steps;
    size_t nsteps;
} lt_profile_t;

typedef struct {
    char *path; /* the name used in messages (file path, or what the caller gave) */
    char *name; /* required */

    /* server: */
    char *host;       /* default "127.0.0.1" */
    int port;         /* default 7350 */
    char *server_key; /* default "defaultkey" */
    char *http_key;   /* default "defaulthttpkey" */
    lt_format_t format;

    int64_t bots;         /* 1..LT_MAX_BOTS, required */
    double arrival_rate;  /* bots per second, > 0, default 100 */
    int64_t ramp_ms;      /* 0 = none */
    int64_t duration_ms;  /* > 0, required */
    int processes;        /* 0 = auto (lt_scenario_processes) */
    int source_addresses; /* 0 = auto (lt_scenario_source_addresses) */
    int64_t timeout_ms;   /* per request/reply, default 10 s */

    bool soak;             /* a soak: section was present, or --soak */
    char *soak_url;        /* default "http://127.0.0.1:9100/metrics" */
    int64_t soak_every_ms; /* default 10 s */

    lt_profile_t *profiles; /* >= 1 */
    size_t nprofiles;

    /* The weighted round-robin: bot i runs profiles[wrr[i % nwrr]]. */
    uint16_t *wrr;
    size_t nwrr;
} lt_scenario_t;

/* Reads and validates the file at path. NULL with a message in err on any
 * problem (unreadable file included). */
lt_scenario_t *lt_scenario_load(const char *path, char *err, size_t errlen);

/* The same from text in memory (what worker processes get); `name` stands
 * for the file in messages. */
lt_scenario_t *lt_scenario_parse(const char *text, size_t len, const char *name, char *err,
                                 size_t errlen);

void lt_scenario_free(lt_scenario_t *s);

/* Command-line overrides. Fields left at their "unset" value change
 * nothing. Strings are copied. */
typedef struct {
    int64_t bots;         /* 0 = unset */
    int64_t duration_ms;  /* 0 = unset */
    double rate;          /* 0 = unset */
    const char *host;     /* NULL = unset */
    int port;             /* 0 = unset */
    const char *server_key; /* NULL = unset */
    int processes;        /* -1 = unset (0 = auto) */
    int format;           /* -1 = unset, else an lt_format_t: server.format and every
                             socket step's format (the flag wins over the file) */
    bool soak;            /* true turns soak sampling on */
    const char *soak_url; /* NULL = unset; implies soak */
} lt_overrides_t;

/* An lt_overrides_t with every field unset. */
lt_overrides_t lt_overrides_none(void);

/* Applies the set fields, checking ranges as the file would. 0, or -1 with
 * a message like "--bots: must be an integer in 1..10000000" in err (the
 * scenario is then unchanged). */
int lt_scenario_override(lt_scenario_t *s, const lt_overrides_t *o, char *err, size_t errlen);

/* Parses a duration: "250ms", "10s", "5m", "2h" or a bare number of seconds
 * (decimals allowed: "1.5s", "0.5"); `end` when allow_end (-> LT_UNTIL_END).
 * 0 or -1; the result is whole milliseconds, 0..LT_MAX_DURATION_MS. */
int lt_parse_duration(const char *text, bool allow_end, int64_t *ms);

/* Index into s->profiles of the profile that bot `bot` runs: a smooth
 * weighted round-robin (weights reduced by their gcd), so every run of
 * sum(weights) consecutive bots has exactly `weight` bots of each profile,
 * spread out (weights 3,1 -> 0,0,1,0, 0,0,1,0, ...). */
size_t lt_profile_for_bot(const lt_scenario_t *s, int64_t bot);

/* When bot `bot` (0-based, global) starts, in ms since the run start: the
 * arrival count N(t) = integral of the rate, where the rate rises linearly
 * from 0 to arrival_rate over ramp_ms and then stays; bot i starts when
 * N(t) = i. Without a ramp: i * 1000 / rate. With one (R = rate/s, T = ramp
 * s): sqrt(2 T i / R) s while i <= R T / 2, else (i / R + T / 2) s. Rounded
 * to the nearest ms; non-decreasing in bot. May exceed duration_ms: such
 * bots never start. */
int64_t lt_arrival_time_ms(const lt_scenario_t *s, int64_t bot);

/* The worker processes to use: s->processes, or when 0, ceil(bots / 15000)
 * with a minimum of 1. */
int lt_scenario_processes(const lt_scenario_t *s);

/* The source addresses to use: s->source_addresses, or when 0 and the host
 * is a loopback address (127.x.x.x, "localhost"), ceil(bots / 25000); else 1
 * (1 meaning: one address, the OS picks it when the host is not loopback). */
int lt_scenario_source_addresses(const lt_scenario_t *s);

/* Expands {bot}, {group} and {run} in tpl into out (capacity cap, always
 * NUL-terminated when cap > 0). Returns the length written, or -1 if the
 * result did not fit (out then holds a truncated prefix). */
int lt_template_render(const char *tpl, int64_t bot, int64_t group, const char *run, char *out,
                       size_t cap);

/* The step's group_size where it has one (chat_join, match, am_match), else
 * 1: the {group} of a bot in that step is its index within its profile / lt_step_group_size(step). */
int lt_step_group_size(const lt_step_t *step);

/* The YAML name of a step kind ("chat_join"); "?" for a bad value. */
const char *lt_step_name(lt_step_kind_t kind);

#endif
