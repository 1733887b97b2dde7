/* Cron expressions in Nakama's dialect, for leaderboard reset schedules,
 * tournaments and the Lua functions nk.cron_next / nk.cron_prev.
 *
 * Everything is UTC; times are unix seconds. The process timezone is never
 * consulted (the calendar arithmetic is done here, not by mktime).
 *
 * Accepted forms (fields separated by spaces or tabs):
 *   5 fields  minute hour day-of-month month day-of-week       (second 0)
 *   6 fields  minute hour day-of-month month day-of-week year  (second 0)
 *   7 fields  second minute hour day-of-month month day-of-week year
 *   macros    @yearly = @annually  0 0 1 1 *    @monthly  0 0 1 * *
 *             @weekly              0 0 * * 0    @daily = @midnight  0 0 * * *
 *             @hourly              0 * * * *
 *
 * Ranges: second, minute 0-59; hour 0-23; day-of-month 1-31; month 1-12 or
 * JAN-DEC; day-of-week 0-7 or SUN-SAT (0 and 7 are both Sunday); year
 * 1970-2099. Names are three letters, case-insensitive.
 *
 * Each field is a comma-separated list of items:
 *   *        every value (day-of-week: 0-6)
 *   ?        the same as *, only in day-of-month and day-of-week
 *   a        one value
 *   a-b      a range, a <= b (a day-of-week range may end with the name SUN
 *            after a later day, e.g. FRI-SUN, meaning FRI-7)
 *   a-b/n    every n-th value of the range, n >= 1
 *   a/n      every n-th value from a to the field's maximum (day-of-week: 6)
 *   * + /n   (a star followed by /n) every n-th value of the whole field
 *
 * Day matching is classic cron: when both day-of-month and day-of-week are
 * restricted (neither is exactly * or ?), a day matches when EITHER matches;
 * when one of them is * or ?, only the other one counts. A restricted field
 * that happens to list every value (1-31, or a star with /1) still counts as restricted.
 *
 * Not supported, rejected with an error: the Quartz extensions L (last),
 * W (nearest weekday) and # (n-th weekday of the month), and @every / @reboot.
 * Expressions longer than KZ_CRON_MAX_LEN bytes are rejected. */
#ifndef KZ_CORE_CRON_H
#define KZ_CORE_CRON_H

#include <stddef.h>
#include <stdint.h>

enum { KZ_CRON_MAX_LEN = 256 };

typedef struct kz_cron kz_cron_t;

/* Parses expr; returns NULL and writes a message into err (errlen bytes,
 * may be NULL/0) on failure. The result is freed with kz_cron_free. */
kz_cron_t *kz_cron_parse(const char *expr, char *err, size_t errlen);
void kz_cron_free(kz_cron_t *c);

/* Smallest matching instant strictly greater than t (unix seconds, UTC);
 * -1 when there is none (past the end of 2099, or an impossible date such
 * as February 30th). */
int64_t kz_cron_next(const kz_cron_t *c, int64_t t);
/* Largest matching instant strictly less than t; -1 when there is none
 * (before 1970). */
int64_t kz_cron_prev(const kz_cron_t *c, int64_t t);

#endif
