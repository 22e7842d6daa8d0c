/*
 * base/log.h - the error log: stderr, one line per event, never a secret formatted.
 *
 * sg__log passes the formatted message through sg_log_escape (base/str.h), so the strings a
 * message quotes (paths, reasons naming a client's ids or a token's subject) can never split
 * the line, colour the terminal or reorder what a viewer shows. The level is set from
 * log.level by the configuration's users (proxy/main.c); conf/ names the levels with this
 * enum.
 */
#ifndef SG_BASE_LOG_H
#define SG_BASE_LOG_H

typedef enum { SG_LOG_ERROR = 0, SG_LOG_WARN, SG_LOG_INFO, SG_LOG_DEBUG } sg_log_level_t;

extern sg_log_level_t sg_log_level;

#define sg_log(lvl, ...)                                                                         \
    do {                                                                                         \
        if ((lvl) <= sg_log_level)                                                               \
            sg__log((lvl), __VA_ARGS__);                                                         \
    } while (0)
void sg__log(sg_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
