/* Structured logging: one JSON object per line on stderr.
 *
 * Every line is assembled in a fixed stack buffer and handed to the kernel
 * with one write(2). Writes of at most PIPE_BUF (4096 on Linux) bytes to a
 * pipe are atomic, and O_APPEND files and terminals do not split a single
 * small write in practice, so lines from concurrent threads never interleave
 * and the logger needs no lock. The only shared state is the level filter,
 * an atomic int.
 *
 * Whatever the message contains, the line is valid JSON: quotes, backslashes
 * and control characters are escaped, and bytes that are not well-formed
 * UTF-8 are replaced with U+FFFD. Messages too long for the buffer are cut at
 * a character boundary and end in "...". */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"

/* Total bytes of one line, newline included. Equal to PIPE_BUF so that a line
 * written to a pipe (a log collector, a test harness) is always atomic. */
#define LOG_LINE_MAX 4096
/* Bytes kept free at the end of the line for the truncation marker and the
 * closing `"}` plus newline. */
#define LOG_TAIL_RESERVE (sizeof("...\"}\n") - 1)
/* Longest caller path written; longer ones are cut like messages. */
#define LOG_CALLER_MAX 256

static atomic_int log_min_level = KZ_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void kz_log_set_level(kz_log_level_t level)
{
    if (level < KZ_LOG_DEBUG) level = KZ_LOG_DEBUG;
    if (level > KZ_LOG_ERROR) level = KZ_LOG_ERROR;
    atomic_store_explicit(&log_min_level, (int)level, memory_order_relaxed);
}

kz_log_level_t kz_log_get_level(void)
{
    return (kz_log_level_t)atomic_load_explicit(&log_min_level, memory_order_relaxed);
}

int kz_log_level_parse(const char *s, kz_log_level_t *out)
{
    if (!s) return -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (kz_log_level_t)i;
            return 0;
        }
    }
    /* Nakama's docs and many operators spell it out in full. */
    if (strcasecmp(s, "warning") == 0) {
        *out = KZ_LOG_WARN;
        return 0;
    }
    return -1;
}

/* ----- Line buffer ------------------------------------------------------ */

/* A bounded line under construction. `limit` is where escaped text must stop
 * (below the reserved tail); `cut` records that something was dropped. */
typedef struct {
    char *buf;    /* start of the stack buffer */
    size_t len;   /* bytes used */
    size_t limit; /* escaped text may not grow past this */
    int cut;      /* 1 once any input had to be dropped */
} line_t;

/* Appends raw bytes that are already valid JSON (the fixed framing). The
 * framing is far shorter than the buffer, so this only guards the invariant. */
static void line_raw(line_t *l, const char *s, size_t n)
{
    if (l->len + n > l->limit) {
        n = l->len < l->limit ? l->limit - l->len : 0;
        l->cut = 1;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Appends a string literal (its length known at compile time). */
#define line_lit(l, lit) line_raw((l), (lit), sizeof(lit) - 1)

/* Length of the well-formed UTF-8 sequence at s (at most n bytes available),
 * or 0 if the bytes there are not one (bad lead byte, bad continuation,
 * overlong form, surrogate, above U+10FFFF, or cut short). Follows the
 * well-formed byte sequence table of Unicode 15, section 3.9. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */

    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0; /* no overlong 3-byte forms */
        if (b == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90; /* no overlong 4-byte forms */
        if (b == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0; /* 0x80..0xC1 and 0xF5..0xFF never start a character */
    }
    if (n < need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return need;
}

/* Appends s[0..n) as the inside of a JSON string. Stops before the first
 * character that would not fit under l->limit, so a multi-byte character or
 * an escape is never split; sets l->cut when it stops early. */
static void line_escaped(line_t *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        char tmp[8];
        const char *out = tmp;
        size_t outlen, adv;
        unsigned char c = p[i];

        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            outlen = 2;
            adv = 1;
        } else if (c < 0x20 || c == 0x7F) {
            /* Control characters, newline included, as \u00XX: keeps the
             * record on one physical line and the terminal untouched. */
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hex[c >> 4];
            tmp[5] = hex[c & 0xF];
            outlen = 6;
            adv = 1;
        } else if (c < 0x80) {
            tmp[0] = (char)c;
            outlen = 1;
            adv = 1;
        } else {
            adv = utf8_seq_len(p + i, n - i);
            if (adv) {
                out = (const char *)p + i;
                outlen = adv;
            } else {
                /* One replacement character per offending byte. */
                out = "\\ufffd";
                outlen = 6;
                adv = 1;
            }
        }
        if (l->len + outlen > l->limit) {
            l->cut = 1;
            return;
        }
        memcpy(l->buf + l->len, out, outlen);
        l->len += outlen;
        i += adv;
    }
}

/* Returns the part of a __FILE__ path after the last "src/" directory
 * component ("/home/dev/kizuna/src/net/server.c" -> "net/server.c"), or the whole
 * path when there is none (tests, tools). */
static const char *caller_path(const char *file)
{
    const char *best = NULL;
    if (!file) return "?";
    if (strncmp(file, "src/", 4) == 0) best = file + 4;
    for (const char *p = file; (p = strstr(p, "/src/")) != NULL; p += 4)
        best = p + 5;
    return best ? best : file;
}

/* Formats the timestamp as RFC 3339 UTC, always with milliseconds so every
 * line has the same shape ("2026-11-23T10:00:00.000Z"). */
static size_t format_ts(char out[32])
{
    size_t n = kz_rfc3339(kz_now_ms(), out);
    if (n > 0 && out[n - 1] == 'Z' && !memchr(out, '.', n) && n + 4 < 32) {
        memcpy(out + n - 1, ".000Z", 6);
        n += 4;
    }
    return n;
}

/* Writes all of buf to stderr, retrying on EINTR. A short write (rare, and
 * only for lines longer than the device accepts at once) is continued. */
static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* nowhere left to report a logging failure */
        }
        buf += w;
        len -= (size_t)w;
    }
}

void kz_log_write(kz_log_level_t level, const char *file, int line, const char *fmt, ...)
{
    if (level < KZ_LOG_DEBUG) level = KZ_LOG_DEBUG;
    if (level > KZ_LOG_ERROR) level = KZ_LOG_ERROR;
    if ((int)level < atomic_load_explicit(&log_min_level, memory_order_relaxed)) return;

    /* Logging must not disturb the caller's errno (callers often log and
     * then report strerror(errno)). */
    int saved_errno = errno;

    /* The message is formatted first into its own buffer: vsnprintf tells us
     * when it was cut, and escaping can only make it longer. */
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int mlen = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int msg_cut = 0;
    if (mlen < 0) {
        mlen = 0;
    } else if ((size_t)mlen >= sizeof msg) {
        mlen = (int)sizeof msg - 1;
        msg_cut = 1;
    }

    char buf[LOG_LINE_MAX];
    line_t l = {.buf = buf, .len = 0, .limit = sizeof buf - LOG_TAIL_RESERVE, .cut = 0};
    char ts[32];
    size_t tslen = format_ts(ts);

    line_lit(&l, "{\"level\":\"");
    line_raw(&l, level_names[level], strlen(level_names[level]));
    line_lit(&l, "\",\"ts\":\"");
    line_raw(&l, ts, tslen);
    line_lit(&l, "\",\"caller\":\"");

    /* The caller is escaped too (a path may hold anything) and capped so a
     * pathological path cannot crowd out the message. */
    const char *cp = caller_path(file);
    size_t cplen = strnlen(cp, LOG_CALLER_MAX);
    size_t saved_limit = l.limit;
    l.limit = l.len + LOG_CALLER_MAX < saved_limit ? l.len + LOG_CALLER_MAX : saved_limit;
    line_escaped(&l, cp, cplen);
    l.limit = saved_limit;
    l.cut = 0;

    char num[16];
    int nlen = snprintf(num, sizeof num, ":%d", line);
    line_raw(&l, num, (size_t)nlen);
    line_lit(&l, "\",\"msg\":\"");
    line_escaped(&l, msg, (size_t)mlen);

    /* The reserve guarantees room for the tail whatever happened above. */
    if (l.cut || msg_cut) {
        memcpy(buf + l.len, "...", 3);
        l.len += 3;
    }
    memcpy(buf + l.len, "\"}\n", 3);
    l.len += 3;

    write_all(buf, l.len);
    errno = saved_errno;
}
