#include "core/clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static _Atomic int64_t clock_offset_ms;

int64_t kz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&clock_offset_ms);
}

int64_t kz_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec * 1000 + atomic_load(&clock_offset_ms)) * 1000000 + ts.tv_nsec;
}

int64_t kz_now_sec(void)
{
    return kz_now_ms() / 1000;
}

uint64_t kz_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kz_clock_set_offset_ms(int64_t ms)
{
    atomic_store(&clock_offset_ms, ms);
}

size_t kz_rfc3339(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    int m;
    if (frac)
        m = snprintf(out + n, 32 - n, ".%03dZ", frac);
    else
        m = snprintf(out + n, 32 - n, "Z");
    return n + (size_t)m;
}
