/*
 * base/clock.c - sg_now_ms and sg_time_rfc3339.
 */
#include "base/clock.h"

#include <string.h>
#include <time.h>

/* "YYYY-MM-DDTHH:MM:SS" of one second, the part of the timestamp that changes at most once a
 * second: formatted with gmtime_r when the second changes, copied otherwise. */
#define CLOCK_SEC_LEN 19

typedef struct {
    time_t sec; /* the second head[] shows; (time_t)-1 until the first call */
    char head[CLOCK_SEC_LEN];
} clock_cache_t;

static _Thread_local clock_cache_t clock_cache = {.sec = (time_t)-1};

/* Two decimal digits of v (0..99) at p. */
static void clock_put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

static void clock_format_sec(clock_cache_t *c, time_t sec)
{
    struct tm tm;
    unsigned year;

    gmtime_r(&sec, &tm);
    /* The modulos keep every field in its width, as the "%04u" and "%02u" of the snprintf
     * this replaces did; real dates never need them. */
    year = (unsigned)(tm.tm_year + 1900) % 10000;
    clock_put2(c->head, year / 100);
    clock_put2(c->head + 2, year % 100);
    c->head[4] = '-';
    clock_put2(c->head + 5, (unsigned)(tm.tm_mon + 1) % 100);
    c->head[7] = '-';
    clock_put2(c->head + 8, (unsigned)tm.tm_mday % 100);
    c->head[10] = 'T';
    clock_put2(c->head + 11, (unsigned)tm.tm_hour % 100);
    c->head[13] = ':';
    clock_put2(c->head + 14, (unsigned)tm.tm_min % 100);
    c->head[16] = ':';
    clock_put2(c->head + 17, (unsigned)tm.tm_sec % 100);
    c->sec = sec;
}

/* The timestamp of ts into out (SG_TIME_RFC3339_LEN characters and a NUL), through the
 * calling thread's cache. */
static size_t clock_rfc3339_at(const struct timespec *ts, char out[SG_TIME_LEN])
{
    clock_cache_t *c = &clock_cache;
    unsigned us = (unsigned)(ts->tv_nsec / 1000) % 1000000;

    if (c->sec != ts->tv_sec)
        clock_format_sec(c, ts->tv_sec);
    memcpy(out, c->head, CLOCK_SEC_LEN);
    out[CLOCK_SEC_LEN] = '.';
    for (int i = 6; i > 0; i--, us /= 10)
        out[CLOCK_SEC_LEN + i] = (char)('0' + us % 10);
    out[CLOCK_SEC_LEN + 7] = 'Z';
    out[SG_TIME_RFC3339_LEN] = '\0';
    return SG_TIME_RFC3339_LEN;
}

size_t sg_time_rfc3339(char out[SG_TIME_LEN])
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return clock_rfc3339_at(&ts, out);
}

uint64_t sg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
