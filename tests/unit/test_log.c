/* Unit tests for src/core/log.c: every line is one valid JSON object with
 * the right fields, whatever the message holds. stderr is redirected to a
 * temporary file for the duration of each capture. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static int saved_stderr = -1;
static char capture_path[64];

/* Starts sending fd 2 to a fresh temporary file. */
static void capture_begin(void)
{
    strcpy(capture_path, "/tmp/kz-log-XXXXXX");
    int fd = mkstemp(capture_path);
    cr_assert(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    cr_assert(saved_stderr >= 0);
    cr_assert(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* Restores fd 2 and returns everything written meanwhile (caller frees). */
static char *capture_end(size_t *len)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    FILE *f = fopen(capture_path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    unlink(capture_path);
    if (len) *len = (size_t)n;
    return buf;
}

static void reset_level(void)
{
    kz_log_set_level(KZ_LOG_INFO);
}

TestSuite(log, .init = reset_level, .fini = reset_level);

/* Parses out as exactly one JSON line and returns the object (caller
 * decrefs); fails the test if it is not. */
static json_t *parse_one_line(const char *out)
{
    size_t n = strlen(out);
    cr_assert(n > 0 && out[n - 1] == '\n', "line must end in a newline: '%s'", out);
    cr_assert_eq(strchr(out, '\n'), out + n - 1, "exactly one line expected: '%s'", out);
    json_error_t e;
    json_t *j = json_loadb(out, n - 1, 0, &e);
    cr_assert_not_null(j, "not JSON (%s): '%s'", e.text, out);
    cr_assert(json_is_object(j));
    return j;
}

/* Logs msg at info through the public entry point and returns its "msg". */
static char *roundtrip_msg(const char *fmt, const char *arg)
{
    capture_begin();
    kz_log_write(KZ_LOG_INFO, "src/t.c", 1, fmt, arg);
    char *out = capture_end(NULL);
    json_t *j = parse_one_line(out);
    char *msg = strdup(json_string_value(json_object_get(j, "msg")));
    json_decref(j);
    free(out);
    return msg;
}

Test(log, fields_and_order)
{
    capture_begin();
    kz_log_write(KZ_LOG_WARN, "/home/dev/kizuna/src/net/server.c", 88, "listening on %s:%d", "0.0.0.0",
                 7350);
    char *out = capture_end(NULL);

    cr_assert(strncmp(out, "{\"level\":\"warn\",\"ts\":\"", 22) == 0, "%s", out);
    json_t *j = parse_one_line(out);
    cr_assert_eq(json_object_size(j), 4);
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "warn");
    cr_assert_str_eq(json_string_value(json_object_get(j, "caller")), "net/server.c:88");
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "listening on 0.0.0.0:7350");

    /* RFC 3339 UTC with milliseconds: 2026-11-23T10:00:00.123Z */
    const char *ts = json_string_value(json_object_get(j, "ts"));
    cr_assert_eq(strlen(ts), 24, "%s", ts);
    cr_assert(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z', "%s", ts);
    json_decref(j);
    free(out);
}

Test(log, caller_paths)
{
    static const struct {
        const char *file, *want;
    } cases[] = {
        {"src/core/config.c", "core/config.c:5"},
        {"/home/src/build/src/api/auth.c", "api/auth.c:5"},
        {"/home/dev/kizuna/tests/unit/test_log.c", "/home/dev/kizuna/tests/unit/test_log.c:5"},
        {"mysrc/x.c", "mysrc/x.c:5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        capture_begin();
        kz_log_write(KZ_LOG_ERROR, cases[i].file, 5, "x");
        char *out = capture_end(NULL);
        json_t *j = parse_one_line(out);
        cr_assert_str_eq(json_string_value(json_object_get(j, "caller")), cases[i].want);
        json_decref(j);
        free(out);
    }
}

Test(log, macros_use_this_file)
{
    capture_begin();
    kz_log_info("via %s", "macro");
    char *out = capture_end(NULL);
    json_t *j = parse_one_line(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
    const char *caller = json_string_value(json_object_get(j, "caller"));
    cr_assert(strstr(caller, "tests/unit/test_log.c:"), "%s", caller);
    json_decref(j);
    free(out);
}

Test(log, escapes_quotes_backslashes_controls)
{
    const char *in = "say \"hi\"\\ now\nnext\tline\r\x01\x1f\x7f end";
    char *msg = roundtrip_msg("%s", in);
    cr_assert_str_eq(msg, in);
    free(msg);

    capture_begin();
    kz_log_write(KZ_LOG_INFO, "src/t.c", 1, "a\nb\"c\\");
    char *out = capture_end(NULL);
    cr_assert(strstr(out, "\"msg\":\"a\\u000ab\\\"c\\\\\"}"), "%s", out);
    free(out);
}

Test(log, valid_utf8_passes_through)
{
    const char *in = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
    char *msg = roundtrip_msg("%s", in);
    cr_assert_str_eq(msg, in);
    free(msg);
}

Test(log, invalid_utf8_is_replaced)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"a\xff" "b", "a\xef\xbf\xbd" "b"},                         /* never a lead byte */
        {"a\x80", "a\xef\xbf\xbd"},                                 /* stray continuation */
        {"\xc3(", "\xef\xbf\xbd("},                                 /* bad continuation */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                   /* overlong '/' */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},   /* surrogate */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"end\xe2\x9c", "end\xef\xbf\xbd\xef\xbf\xbd"},             /* cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *msg = roundtrip_msg("%s", cases[i].in);
        cr_assert_str_eq(msg, cases[i].want, "case %zu", i);
        free(msg);
    }
}

Test(log, long_message_is_truncated_to_one_valid_line)
{
    /* Multi-byte characters and escapes make the cut land mid-character. */
    size_t n = 9000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i += 3) memcpy(big + i, i % 2 ? "\xe2\x9c\x93" : "\"\n\\", 3);
    big[n] = '\0';

    capture_begin();
    kz_log_write(KZ_LOG_INFO, "src/t.c", 1, "%s", big);
    size_t len;
    char *out = capture_end(&len);
    cr_assert_leq(len, 4096);
    json_t *j = parse_one_line(out);
    const char *msg = json_string_value(json_object_get(j, "msg"));
    size_t mlen = strlen(msg);
    cr_assert_gt(mlen, 1000);
    cr_assert_str_eq(msg + mlen - 3, "...");
    json_decref(j);
    free(out);
    free(big);
}

Test(log, exact_fit_is_not_marked)
{
    char text[1000];
    memset(text, 'z', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    char *msg = roundtrip_msg("%s", text);
    cr_assert_str_eq(msg, text);
    free(msg);
}

Test(log, level_filter)
{
    kz_log_set_level(KZ_LOG_WARN);
    cr_assert_eq(kz_log_get_level(), KZ_LOG_WARN);
    capture_begin();
    kz_log_debug("no");
    kz_log_info("no");
    kz_log_warn("yes %d", 1);
    kz_log_error("yes %d", 2);
    char *out = capture_end(NULL);
    char *second = strchr(out, '\n') + 1;
    cr_assert(strstr(out, "\"level\":\"warn\"") && strstr(out, "yes 1"), "%s", out);
    json_decref(parse_one_line(second));
    cr_assert(strstr(second, "\"level\":\"error\"") && strstr(second, "yes 2"), "%s", out);
    cr_assert_null(strstr(out, "\"no\""));
    free(out);

    kz_log_set_level(KZ_LOG_DEBUG);
    capture_begin();
    kz_log_debug("shown");
    out = capture_end(NULL);
    json_t *j = parse_one_line(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "debug");
    json_decref(j);
    free(out);
}

Test(log, level_parse)
{
    kz_log_level_t l;
    cr_assert_eq(kz_log_level_parse("debug", &l), 0);
    cr_assert_eq(l, KZ_LOG_DEBUG);
    cr_assert_eq(kz_log_level_parse("info", &l), 0);
    cr_assert_eq(l, KZ_LOG_INFO);
    cr_assert_eq(kz_log_level_parse("warn", &l), 0);
    cr_assert_eq(l, KZ_LOG_WARN);
    cr_assert_eq(kz_log_level_parse("warning", &l), 0);
    cr_assert_eq(l, KZ_LOG_WARN);
    cr_assert_eq(kz_log_level_parse("ERROR", &l), 0);
    cr_assert_eq(l, KZ_LOG_ERROR);
    cr_assert_eq(kz_log_level_parse("fatal", &l), -1);
    cr_assert_eq(kz_log_level_parse("", &l), -1);
    cr_assert_eq(kz_log_level_parse(NULL, &l), -1);
}

Test(log, preserves_errno)
{
    capture_begin();
    errno = EPIPE;
    kz_log_error("failed");
    cr_assert_eq(errno, EPIPE);
    free(capture_end(NULL));
}

/* Four threads log at once into the same file; every line must come out
 * whole. */
static void *log_many(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 500; i++)
        kz_log_info("thread %ld line %d %s", id, i,
                    "padding padding padding padding padding padding padding padding");
    return NULL;
}

Test(log, concurrent_lines_do_not_interleave)
{
    capture_begin();
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, log_many, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    char *out = capture_end(NULL);

    int lines = 0;
    for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
        json_error_t e;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, &e);
        cr_assert_not_null(j, "line %d is not JSON: %.*s", lines, (int)(nl - p), p);
        json_decref(j);
    }
    cr_assert_eq(lines, 2000);
    free(out);
}
