/*
 * base/log.c - sg__log: the error log's line (time, level, escaped message) on stderr.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "base/defs.h"
#include "base/str.h"

sg_log_level_t sg_log_level = SG_LOG_INFO;

void sg__log(sg_log_level_t lvl, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    char msg[1024], line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int m;
    size_t n;

    va_start(ap, fmt);
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = (size_t)snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000, names[lvl]);
    /* The message as the line's text: whatever a client string it quotes holds (a line
     * break, an escape sequence, a bidi override), it stays on this one line and reads in
     * the order it was written. A message cut at msg's end may end inside a character,
     * which then shows as \ufffd. */
    n += sg_log_escape(line + n, sizeof(line) - n - 1, msg, SG_MIN((size_t)m, sizeof(msg) - 1));
    line[n++] = '\n';
    /* One write(2) per line, below PIPE_BUF, so that lines from several workers never
     * interleave. */
    fwrite(line, 1, n, stderr);
}
