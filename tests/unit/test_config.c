/* Unit tests for src/core/config.c: defaults, flags, YAML files, finish(). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

/* Each test gets a fresh config and a scratch directory for YAML files. */
static kz_config_t cfg;
static char tmpdir[64];
static char err[512];

static void setup(void)
{
    kz_config_defaults(&cfg);
    strcpy(tmpdir, "/tmp/kz-config-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    err[0] = '\0';
}

static void teardown(void)
{
    kz_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes text to tmpdir/name; returns the path in a static buffer. */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Runs kz_config_from_args on a NULL-terminated list of arguments. */
static int args(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
    va_end(ap);
    return kz_config_from_args(&cfg, argc, argv, err, sizeof err);
}

#define assert_err_contains(s) \
    cr_assert(strstr(err, (s)) != NULL, "error '%s' should contain '%s'", err, (s))

/* ----- Defaults ---------------------------------------------------------- */

Test(config, defaults)
{
    cr_assert_str_eq(cfg.name, "kizuna");
    cr_assert_str_eq(cfg.data_dir, "./data");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert_eq(cfg.workers, cores < 1 ? 1 : cores > 256 ? 256 : cores);
    cr_assert_str_eq(cfg.socket.address, "127.0.0.1");
    cr_assert_eq(cfg.socket.port, 7350);
    cr_assert_str_eq(cfg.socket.server_key, "defaultkey");
    cr_assert_eq(cfg.socket.max_request_size_bytes, 262144);
    cr_assert_eq(cfg.socket.max_header_bytes, 5120);
    cr_assert_eq(cfg.socket.max_message_size_bytes, 4096);
    cr_assert_eq(cfg.socket.read_timeout_ms, 10000);
    cr_assert_eq(cfg.socket.write_timeout_ms, 10000);
    cr_assert_eq(cfg.socket.idle_timeout_ms, 60000);
    cr_assert_eq(cfg.socket.outgoing_queue_size, 64);
    cr_assert_eq(cfg.socket.ping_period_ms, 15000);
    cr_assert_eq(cfg.socket.pong_wait_ms, 25000);
    cr_assert_str_eq(cfg.session.encryption_key, "defaultencryptionkey");
    cr_assert_str_eq(cfg.session.refresh_encryption_key, "defaultrefreshencryptionkey");
    cr_assert_eq(cfg.session.token_expiry_sec, 60);
    cr_assert_eq(cfg.session.refresh_token_expiry_sec, 3600);
    cr_assert_null(cfg.database.address);
    cr_assert_eq(cfg.database.max_open_conns, 8);
    cr_assert_null(cfg.runtime.path);
    cr_assert_str_eq(cfg.runtime.http_key, "defaulthttpkey");
    cr_assert_eq(cfg.logger.level, KZ_LOG_INFO);
    cr_assert_eq(cfg.metrics.prometheus_port, 9100);
}

Test(config, defaults_finish_cleanly)
{
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.database.address, "./data/kizuna.db");
    cr_assert_str_eq(cfg.runtime.path, "./data/modules");
}

/* ----- kz_config_set ----------------------------------------------------- */

Test(config, set_each_type)
{
    cr_assert_eq(kz_config_set(&cfg, "socket.port", "8000", err, sizeof err), 0);
    cr_assert_eq(cfg.socket.port, 8000);
    cr_assert_eq(kz_config_set(&cfg, "session.token_expiry_sec", "7200", err, sizeof err), 0);
    cr_assert_eq(cfg.session.token_expiry_sec, 7200);
    cr_assert_eq(kz_config_set(&cfg, "name", "node-2", err, sizeof err), 0);
    cr_assert_str_eq(cfg.name, "node-2");
    cr_assert_eq(kz_config_set(&cfg, "logger.level", "debug", err, sizeof err), 0);
    cr_assert_eq(cfg.logger.level, KZ_LOG_DEBUG);
    cr_assert_eq(kz_config_set(&cfg, "logger.level", "warning", err, sizeof err), 0);
    cr_assert_eq(cfg.logger.level, KZ_LOG_WARN);
    cr_assert_eq(kz_config_set(&cfg, "metrics.prometheus_port", "0", err, sizeof err), 0);
    cr_assert_eq(cfg.metrics.prometheus_port, 0);
}

Test(config, set_unknown_key)
{
    cr_assert_eq(kz_config_set(&cfg, "socket.prot", "1", err, sizeof err), -1);
    cr_assert_str_eq(err, "unknown configuration key 'socket.prot'");
    /* A group name is not a key. */
    cr_assert_eq(kz_config_set(&cfg, "socket", "1", err, sizeof err), -1);
    assert_err_contains("'socket'");
}

Test(config, set_bad_integers)
{
    static const char *const bad[] = {"abc", "", "80x", " 80", "80 ", "0x50", "8.0", "-", "+"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(kz_config_set(&cfg, "socket.port", bad[i], err, sizeof err), -1, "'%s'",
                     bad[i]);
        char want[128];
        snprintf(want, sizeof want, "socket.port: expected an integer 1..65535, got '%s'", bad[i]);
        cr_assert_str_eq(err, want);
    }
    cr_assert_eq(cfg.socket.port, 7350, "a failed set leaves the old value");
}

Test(config, set_range_errors)
{
    cr_assert_eq(kz_config_set(&cfg, "socket.port", "0", err, sizeof err), -1);
    cr_assert_str_eq(err, "socket.port: expected an integer 1..65535, got '0'");
    cr_assert_eq(kz_config_set(&cfg, "socket.port", "65536", err, sizeof err), -1);
    cr_assert_eq(kz_config_set(&cfg, "socket.port", "65535", err, sizeof err), 0);
    cr_assert_eq(kz_config_set(&cfg, "workers", "257", err, sizeof err), -1);
    cr_assert_str_eq(err, "workers: expected an integer 1..256, got '257'");
    cr_assert_eq(kz_config_set(&cfg, "socket.max_header_bytes", "255", err, sizeof err), -1);
    assert_err_contains("256..1048576");
    /* Larger than int64: strtoll overflow is a range error, not a wrap. */
    cr_assert_eq(kz_config_set(&cfg, "session.token_expiry_sec", "99999999999999999999", err,
                               sizeof err),
                 -1);
    assert_err_contains("session.token_expiry_sec");
    cr_assert_eq(kz_config_set(&cfg, "session.token_expiry_sec", "-1", err, sizeof err), -1);
    cr_assert_eq(kz_config_set(&cfg, "database.max_open_conns", "1025", err, sizeof err), -1);
    cr_assert_eq(kz_config_set(&cfg, "socket.max_request_size_bytes", "1073741824", err,
                               sizeof err),
                 0);
    cr_assert_eq(cfg.socket.max_request_size_bytes, 1073741824);
}

Test(config, set_bad_level)
{
    cr_assert_eq(kz_config_set(&cfg, "logger.level", "loud", err, sizeof err), -1);
    assert_err_contains("logger.level");
    assert_err_contains("'loud'");
}

/* ----- Flags ------------------------------------------------------------- */

Test(config, flag_forms)
{
    cr_assert_eq(args("--socket.port", "8001", "--name=a=b", "--runtime.http_key=", NULL), 0,
                 "%s", err);
    cr_assert_eq(cfg.socket.port, 8001);
    cr_assert_str_eq(cfg.name, "a=b", "only the first '=' splits");
    cr_assert_str_eq(cfg.runtime.http_key, "");
}

Test(config, flags_later_wins)
{
    cr_assert_eq(args("--socket.port=1", "--socket.port", "2", NULL), 0, "%s", err);
    cr_assert_eq(cfg.socket.port, 2);
}

Test(config, flag_unknown_key)
{
    cr_assert_eq(args("--socket.prot", "1", NULL), -1);
    cr_assert_str_eq(err, "unknown configuration key 'socket.prot'");
}

Test(config, flag_bad_int_names_key)
{
    cr_assert_eq(args("--database.max_open_conns=many", NULL), -1);
    cr_assert_str_eq(err, "database.max_open_conns: expected an integer 1..1024, got 'many'");
}

Test(config, flag_without_value)
{
    cr_assert_eq(args("--socket.port", NULL), -1);
    assert_err_contains("--socket.port");
    cr_assert_eq(args("--name", "--socket.port", "1", NULL), -1);
    assert_err_contains("--name");
    cr_assert_eq(args("--config", NULL), -1);
    assert_err_contains("--config");
}

Test(config, flag_positional_and_short)
{
    cr_assert_eq(args("serve", NULL), -1);
    assert_err_contains("'serve'");
    cr_assert_eq(args("-p", "7350", NULL), -1);
    assert_err_contains("'-p'");
    cr_assert_eq(args("--", NULL), -1);
    cr_assert_eq(args("--socket.port", "1", "extra", NULL), -1);
    assert_err_contains("'extra'");
}

/* ----- YAML files -------------------------------------------------------- */

static const char nested_yaml[] = "# Nakama-style nested config\n"
                                  "name: node-a\n"
                                  "socket:\n"
                                  "  port: 7777\n"
                                  "  server_key: \"file key\"\n"
                                  "  max_request_size_bytes: 1000\n"
                                  "session:\n"
                                  "  token_expiry_sec: 120\n"
                                  "logger:\n"
                                  "  level: error\n"
                                  "metrics: {prometheus_port: 9200}\n";

Test(config, yaml_nested)
{
    const char *path = write_file("a.yml", nested_yaml);
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.name, "node-a");
    cr_assert_eq(cfg.socket.port, 7777);
    cr_assert_str_eq(cfg.socket.server_key, "file key");
    cr_assert_eq(cfg.socket.max_request_size_bytes, 1000);
    cr_assert_eq(cfg.session.token_expiry_sec, 120);
    cr_assert_eq(cfg.logger.level, KZ_LOG_ERROR);
    cr_assert_eq(cfg.metrics.prometheus_port, 9200);
    cr_assert_str_eq(cfg.socket.address, "127.0.0.1", "untouched keys keep defaults");
}

Test(config, yaml_then_flags)
{
    const char *path = write_file("a.yml", nested_yaml);
    char conf[160];
    snprintf(conf, sizeof conf, "--config=%s", path);
    /* --config comes last on the line but is applied first. */
    cr_assert_eq(args("--socket.port", "9999", "--name=flag", conf, NULL), 0, "%s", err);
    cr_assert_eq(cfg.socket.port, 9999);
    cr_assert_str_eq(cfg.name, "flag");
    cr_assert_eq(cfg.session.token_expiry_sec, 120, "file values not overridden stay");

    kz_config_free(&cfg);
    kz_config_defaults(&cfg);
    cr_assert_eq(args("--config", path, "--logger.level", "debug", NULL), 0, "%s", err);
    cr_assert_eq(cfg.logger.level, KZ_LOG_DEBUG);
    cr_assert_eq(cfg.socket.port, 7777);
}

Test(config, yaml_empty_and_null)
{
    const char *path = write_file("empty.yml", "");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    path = write_file("comments.yml", "# nothing here\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    path = write_file("doc.yml", "---\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    /* An empty group and a null leaf keep the defaults. */
    path = write_file("nulls.yml", "socket:\nsession:\n  token_expiry_sec: ~\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.session.token_expiry_sec, 60);
}

Test(config, yaml_unknown_key)
{
    const char *path = write_file("u.yml", "socket:\n  port: 1\n  prot: 2\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "unknown configuration key 'socket.prot' in %s", path);
    assert_err_contains(want);
    assert_err_contains("line 3");

    path = write_file("u2.yml", "sockets:\n  port: 1\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("unknown configuration key 'sockets'");
}

Test(config, yaml_unknown_key_through_flags)
{
    const char *path = write_file("u.yml", "runtime:\n  pth: x\n");
    cr_assert_eq(args("--config", path, NULL), -1);
    assert_err_contains("'runtime.pth'");
}

Test(config, yaml_bad_value_names_key)
{
    const char *path = write_file("b.yml", "socket:\n  port: seventy\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("socket.port: expected an integer 1..65535, got 'seventy'");
    assert_err_contains(path);
    assert_err_contains("line 2");
}

Test(config, yaml_non_scalar_where_scalar_expected)
{
    const char *path = write_file("m.yml", "socket:\n  port:\n    value: 1\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("socket.port");
    assert_err_contains("mapping");

    path = write_file("s.yml", "socket:\n  port: [1, 2]\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("socket.port");
    assert_err_contains("sequence");

    path = write_file("g.yml", "socket: 7350\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("socket");

    path = write_file("top.yml", "- a\n- b\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("mapping");
}

Test(config, yaml_syntax_error)
{
    const char *path = write_file("x.yml", "socket:\n  port: 1\n   bad: [\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains(path);
    assert_err_contains("line ");
    assert_err_contains("column ");
}

Test(config, yaml_missing_file)
{
    cr_assert_eq(kz_config_load_file(&cfg, "/nonexistent/kz.yml", err, sizeof err), -1);
    assert_err_contains("/nonexistent/kz.yml");
}

Test(config, yaml_database_address_sequence)
{
    const char *path = write_file("db.yml", "database:\n  address:\n    - postgres://a@h/db\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.database.address, "postgres://a@h/db");

    path = write_file("db1.yml", "database:\n  address: \"/var/lib/k.db\"\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.database.address, "/var/lib/k.db");

    path = write_file("db2.yml", "database:\n  address: [\"a\", \"b\"]\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("database.address");
    cr_assert_str_eq(cfg.database.address, "/var/lib/k.db");

    path = write_file("db3.yml", "database:\n  address: [{x: 1}]\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("database.address");
}

Test(config, yaml_recursive_alias_is_bounded)
{
    const char *path = write_file("r.yml", "socket: &a\n  x: *a\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
}

Test(config, yaml_two_documents)
{
    const char *path = write_file("two.yml", "name: a\n---\nname: b\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("one YAML document");
}

/* ----- kz_config_finish -------------------------------------------------- */

Test(config, finish_derives_from_data_dir)
{
    cr_assert_eq(args("--data_dir", "/srv/kz/", NULL), 0, "%s", err);
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.database.address, "/srv/kz/kizuna.db");
    cr_assert_str_eq(cfg.runtime.path, "/srv/kz/modules");
}

Test(config, finish_keeps_explicit_paths)
{
    cr_assert_eq(args("--database.address", "postgres://x", "--runtime.path=/lua", NULL), 0);
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.database.address, "postgres://x");
    cr_assert_str_eq(cfg.runtime.path, "/lua");
}

Test(config, finish_empty_keys)
{
    static const char *const keys[] = {"socket.server_key", "runtime.http_key",
                                       "session.encryption_key",
                                       "session.refresh_encryption_key"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        kz_config_free(&cfg);
        kz_config_defaults(&cfg);
        cr_assert_eq(kz_config_set(&cfg, keys[i], "", err, sizeof err), 0);
        cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), -1, "%s", keys[i]);
        char want[128];
        snprintf(want, sizeof want, "%s must not be empty", keys[i]);
        cr_assert_str_eq(err, want);
    }
}

Test(config, finish_session_keys_differ)
{
    cr_assert_eq(args("--session.refresh_encryption_key", "defaultencryptionkey", NULL), 0);
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "session.encryption_key and session.refresh_encryption_key must differ");
}

Test(config, finish_ping_before_pong)
{
    cr_assert_eq(args("--socket.ping_period_ms", "25000", NULL), 0);
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), -1);
    assert_err_contains("socket.ping_period_ms");
    assert_err_contains("socket.pong_wait_ms");
    cr_assert_eq(args("--socket.pong_wait_ms", "25001", NULL), 0);
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), 0, "%s", err);
}

Test(config, match_and_session_options)
{
    cr_assert_eq(cfg.shutdown_grace_sec, 0);
    cr_assert_eq(cfg.match.max_empty_sec, 0);
    cr_assert(!cfg.session.single_socket && !cfg.session.single_match);
    cr_assert(cfg.matchmaker.rev_precision);
    cr_assert_eq(args("--shutdown_grace_sec", "30", "--match.max_empty_sec", "5", "--matchmaker.rev_precision",
                      "false", "--session.single_match", "true", NULL),
                 0, "%s", err);
    cr_assert_eq(cfg.shutdown_grace_sec, 30);
    cr_assert_eq(cfg.match.max_empty_sec, 5);
    cr_assert(!cfg.matchmaker.rev_precision);
    /* single_match needs single_socket */
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "session.single_match needs session.single_socket");
    cr_assert_eq(args("--session.single_socket", "true", NULL), 0);
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(args("--match.max_empty_sec", "-1", NULL), -1);
    assert_err_contains("match.max_empty_sec");
    cr_assert_eq(args("--shutdown_grace_sec", "3601", NULL), -1);
    assert_err_contains("shutdown_grace_sec");
}

Test(config, finish_rechecks_ranges)
{
    cfg.session.token_expiry_sec = 0; /* stored directly, bypassing set */
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), -1);
    assert_err_contains("session.token_expiry_sec");
}

/* ----- Usage and freeing ------------------------------------------------- */

Test(config, usage_lists_every_flag)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    kz_config_usage(f);
    fclose(f);
    static const char *const want[] = {
        "--name",           "--socket.port",   "default: 7350",   "1..65535",
        "socket:",          "session:",        "--logger.level",  "default: info",
        "--database.address", "DATA_DIR/kizuna.db", "--metrics.prometheus_port", "--config FILE",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(text, want[i]), "usage lacks '%s'", want[i]);
    free(text);
}

Test(config, free_zeroes_and_is_repeatable)
{
    cr_assert_eq(args("--name", "x", "--database.address", "y", NULL), 0);
    cr_assert_eq(kz_config_finish(&cfg, err, sizeof err), 0);
    kz_config_free(&cfg);
    cr_assert_null(cfg.name);
    cr_assert_null(cfg.database.address);
    cr_assert_eq(cfg.socket.port, 0);
    kz_config_free(&cfg); /* teardown frees again: must be harmless */
    kz_config_free(NULL);
}

/* ----- runtime.env: a list ---------------------------------------------- */

Test(config, env_flags_append)
{
    cr_assert_null(cfg.runtime.env);
    cr_assert_eq(args("--runtime.env", "MODE=ranked", "--runtime.env=URL=http://x/?a=b", NULL), 0, "%s", err);
    cr_assert_str_eq(cfg.runtime.env, "MODE=ranked\nURL=http://x/?a=b");
}

Test(config, env_yaml_list)
{
    const char *path = write_file("env.yml", "runtime:\n  env:\n    - \"A=1\"\n    - \"B=two words\"\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.runtime.env, "A=1\nB=two words");
}

Test(config, env_bad_entries)
{
    cr_assert_eq(args("--runtime.env", "NOEQUALS", NULL), -1);
    assert_err_contains("runtime.env: expected KEY=VALUE, got 'NOEQUALS'");
    cr_assert_eq(args("--runtime.env", "=value", NULL), -1);
    assert_err_contains("expected KEY=VALUE");
    const char *path = write_file("env2.yml", "runtime:\n  env:\n    - {a: 1}\n");
    cr_assert_eq(kz_config_load_file(&cfg, path, err, sizeof err), -1);
    assert_err_contains("expected KEY=VALUE items in the list");
}
