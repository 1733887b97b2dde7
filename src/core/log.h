/* Structured logging: one JSON object per line on stderr.
 *
 *   {"level":"info","ts":"2026-11-23T10:00:00.123Z","caller":"net/server.c:88","msg":"..."}
 *
 * A line is formatted into a stack buffer and written with a single write(2),
 * so lines from different threads never interleave. Safe from any thread. */
#ifndef KZ_CORE_LOG_H
#define KZ_CORE_LOG_H

typedef enum {
    KZ_LOG_DEBUG = 0,
    KZ_LOG_INFO = 1,
    KZ_LOG_WARN = 2,
    KZ_LOG_ERROR = 3,
} kz_log_level_t;

/* Sets the minimum level that is written (default info). */
void kz_log_set_level(kz_log_level_t level);
kz_log_level_t kz_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns 0 or -1. */
int kz_log_level_parse(const char *s, kz_log_level_t *out);

/* Writes one log line; msg is printf-formatted and JSON-escaped. */
void kz_log_write(kz_log_level_t level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define kz_log_debug(...) kz_log_write(KZ_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define kz_log_info(...) kz_log_write(KZ_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define kz_log_warn(...) kz_log_write(KZ_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define kz_log_error(...) kz_log_write(KZ_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif
