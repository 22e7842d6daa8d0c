/*
 * base/clock.h - the two clocks smsguard reads: monotonic for deadlines, wall for records.
 */
#ifndef SG_BASE_CLOCK_H
#define SG_BASE_CLOCK_H

#include <stdint.h>

/* The wall clock as RFC 3339 UTC with microseconds ("2026-11-25T04:00:00.123456Z"), the
 * audit log's time format; out needs SG_TIME_LEN bytes. */
#define SG_TIME_LEN 32
void sg_time_rfc3339(char out[SG_TIME_LEN]);
/* Monotonic milliseconds. */
uint64_t sg_now_ms(void);

#endif
