/* Server configuration: defaults, then a YAML file (--config), then flags.
 *
 * Keys use Nakama's names where the concept exists ("socket.port",
 * "session.token_expiry_sec", ...). In YAML they are nested mappings
 * (socket: {port: 7350}); as flags they are dotted (--socket.port 7350 or
 * --socket.port=7350). An unknown key or a bad value stops start-up with a
 * message that names the key. The struct is read-only once the server runs. */
#ifndef KZ_CORE_CONFIG_H
#define KZ_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"

typedef struct kz_config {
    char *name;     /* node name, default "kizuna" */
    char *data_dir; /* --data_dir, default "./data" */
    int workers;    /* I/O threads (one libuv loop each), default = online cores */
    int shutdown_grace_sec; /* match_terminate's grace period on shutdown, default 0 */

    struct {
        char *address;                  /* listen address, default "127.0.0.1" */
        int port;                       /* API port (REST + /ws), default 7350 */
        char *server_key;               /* Basic auth user for authenticate/refresh, default "defaultkey" */
        int64_t max_request_size_bytes; /* HTTP body bound, default 262144 */
        int max_header_bytes;           /* bound on the request line + headers, default 5120 */
        int64_t max_message_size_bytes; /* WebSocket inbound message bound, default 4096 */
        int read_timeout_ms;            /* a started request must be complete within, default 10000 */
        int write_timeout_ms;           /* a response must drain within, default 10000 */
        int idle_timeout_ms;            /* keep-alive idle bound, default 60000 */
        int outgoing_queue_size;        /* WebSocket outbound queue bound, default 64 */
        int ping_period_ms;             /* WebSocket control ping period, default 15000 */
        int pong_wait_ms;               /* WebSocket pong deadline, default 25000 */
    } socket;

    struct {
        char *encryption_key;             /* HS256 key of session tokens */
        char *refresh_encryption_key;     /* HS256 key of refresh tokens (must differ) */
        int64_t token_expiry_sec;         /* default 60 */
        int64_t refresh_token_expiry_sec; /* default 3600 */
        bool single_socket;               /* a new socket closes the user's older ones, default false */
        bool single_match;                /* joining a match leaves the others (needs single_socket) */
    } session;

    struct {
        char *address;      /* postgres://user:pass@host:port/db, or a SQLite path;
                               default (after kz_config_finish) data_dir/kizuna.db */
        int max_open_conns; /* worker-pool threads, each with one connection, default 8 */
    } database;

    struct {
        char *path;     /* Lua modules, default data_dir/modules */
        char *http_key; /* RPC key for server-to-server calls, default "defaulthttpkey" */
        char *env;               /* "KEY=VALUE" lines for the Lua context's env, or NULL */
        int lua_call_timeout_ms; /* time budget of one Lua call, default 10000 */
        int lua_memory_mb;       /* memory budget of one Lua state, default 64 */
    } runtime;

    struct {
        int interval_sec;  /* seconds between processing passes, default 15 */
        int max_intervals; /* passes a ticket searches for, default 2 */
        int max_tickets;   /* tickets per session or party, default 3 */
        bool rev_precision; /* candidates' queries must accept the searcher too, default true */
    } matchmaker;

    struct {
        int max_empty_sec; /* an authoritative match empty this long stops, default 0 = never */
    } match;

    struct {
        kz_log_level_t level; /* default info */
    } logger;

    struct {
        int prometheus_port; /* metrics port on 127.0.0.1, default 9100, 0 = off */
    } metrics;

    struct {
        bool clock_control; /* PUT /v2/kizuna/test/clock moves the server clock (tests only), default false */
    } test;
} kz_config_t;

/* Fills c with the defaults. */
void kz_config_defaults(kz_config_t *c);

/* Sets one dotted key from its text form. Returns 0, or -1 with a message
 * naming the key in err ("unknown configuration key 'socket.prot'",
 * "socket.port: expected an integer 1..65535, got 'abc'"). */
int kz_config_set(kz_config_t *c, const char *key, const char *value, char *err, size_t errlen);

/* Loads a YAML file of nested mappings and applies every leaf with
 * kz_config_set. Returns 0 or -1 with err set (file errors, YAML syntax
 * errors with line numbers, unknown keys, bad values). */
int kz_config_load_file(kz_config_t *c, const char *path, char *err, size_t errlen);

/* Applies command-line flags. argv holds only flags (no program name, no
 * subcommand). "--config FILE" is loaded first wherever it appears, then
 * every other flag in order, so flags override the file. Accepts "--key value"
 * and "--key=value". Returns 0 or -1 with err set. */
int kz_config_from_args(kz_config_t *c, int argc, char **argv, char *err, size_t errlen);

/* Fills derived defaults (database.address, runtime.path from data_dir) and
 * checks cross-field rules (keys non-empty, the two session keys differ,
 * expiries >= 1, ping_period < pong_wait). Returns 0 or -1 with err set. */
int kz_config_finish(kz_config_t *c, char *err, size_t errlen);

/* Frees every owned string; c is left zeroed. */
void kz_config_free(kz_config_t *c);

/* Writes the list of flags with their defaults (for --help). */
void kz_config_usage(FILE *out);

#endif
