/*
 * base/clock.h - the two clocks smsguard reads: monotonic for deadlines, wall for records.
 */
#ifndef SG_BASE_CLOCK_H
#define SG_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* The wall clock as RFC 3339 UTC with microseconds ("2026-11-25T04:00:00.123456Z", always
 * SG_TIME_RFC3339_LEN characters), the audit and access logs' time format; out needs
 * SG_TIME_LEN bytes and is NUL-terminated. Returns SG_TIME_RFC3339_LEN. Thread-safe: each
 * thread keeps the date and time of day of its last second, so only the microseconds are
 * formatted per call (no gmtime, no printf on the data path). */
#define SG_TIME_LEN 32
#define SG_TIME_RFC3339_LEN 27
size_t sg_time_rfc3339(char out[SG_TIME_LEN]);
/* Monotonic milliseconds. */
uint64_t sg_now_ms(void);

#endif
