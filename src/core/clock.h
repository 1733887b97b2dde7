/* Wall-clock time, with an offset tests can inject (later issues move the
 * clock forward to reach cron instants without waiting). */
#ifndef KZ_CORE_CLOCK_H
#define KZ_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Unix time in milliseconds / seconds, plus the injected offset. */
int64_t kz_now_ms(void);
int64_t kz_now_sec(void);
int64_t kz_now_ns(void);
/* Monotonic nanoseconds, for measuring durations. */
uint64_t kz_mono_ns(void);
/* Adds ms to every later kz_now_* reading (tests only). */
void kz_clock_set_offset_ms(int64_t ms);

/* Formats unix milliseconds as RFC 3339 UTC ("2026-11-23T10:00:00Z", or
 * "...00.123Z" when the milliseconds are not zero). out needs 32 bytes.
 * Returns the length written. */
size_t kz_rfc3339(int64_t ms, char out[32]);

#endif
