/*
 * policy/window.h - change windows: "Sat and Sun, 22:00 to 06:00, Europe/Berlin".
 *
 * A pure module (docs/design.md "Folders"): sg_window_new() reads the zone's TZif file
 * (RFC 8536) once, from $TZDIR or /usr/share/zoneinfo, and keeps its transitions and its
 * POSIX TZ footer; sg_window_contains() then does no I/O, takes no lock and never touches
 * the process's TZ (setenv/tzset would race with every other thread calling localtime).
 *
 * What a window means. Every comparison is made on the wall clock of the window's zone:
 * at instant T, the local time is T plus the UTC offset in force at T, and T is inside
 * the window when that local reading (weekday, HH:MM) falls in it.
 *   - days are the days the window STARTS on. from < to: [from, to) on each listed day.
 *     to <= from crosses midnight: from `from` on a listed day until `to` on the next day
 *     (Sat 22:00-06:00 ends Sun 06:00, and on Mon 06:00 when Sun is listed too).
 *     to == from is a window of 24 hours from `from` (00:00-00:00: the whole listed day),
 *     never an empty one: a window that can never open is a mistake, not a policy.
 *   - Spring forward (a wall-clock hour that does not exist, 02:00-03:00 in Europe/Berlin
 *     on the last Sunday of March): the clock never reads 02:30, so a window from 02:30
 *     opens when the clock next reads a later time (03:00), a window that ends at 02:30
 *     closes at the gap, and a window lying wholly inside the gap (02:00-03:00) does not
 *     open that day.
 *   - Fall back (an hour that happens twice, 02:00-03:00 on the last Sunday of October):
 *     both instants reading 02:30 are inside a window that covers 02:30, so a window
 *     02:00-03:00 is open for two hours that night.
 *
 * Thread safety: an sg_window_t is immutable once built; every function is reentrant.
 */
#ifndef SG_POLICY_WINDOW_H
#define SG_POLICY_WINDOW_H

#include <stddef.h>
#include <stdint.h>

typedef struct sg_window_s sg_window_t;

#define SG_WINDOW_ZONE_MAX 255    /* longest IANA zone name accepted (bytes) */
#define SG_WINDOW_NEXT_MAX 300    /* room sg_window_next_open() ever needs, NUL included */

/*
 * Build the window NAME: TZ an IANA zone name ("Europe/Berlin", "UTC"), DAYS[0, NDAYS) the
 * start days ("Mon".."Sun", any case, each at most once, at least one), FROM and TO times
 * of day "HH:MM" (two digits each, 00:00 to 23:59). The zone name is a relative path
 * of letters, digits and "/_+-." with no empty, "." or ".." component; its file is
 * $TZDIR/TZ (TZDIR when set and not empty) or /usr/share/zoneinfo/TZ, read here, once.
 * Zones with leap seconds ("right/...") are refused: their times are not POSIX times.
 *
 * Returns the window (free it with sg_window_free), or NULL with one line in ERR naming
 * the field, for the configuration loader to prefix with file:line, e.g.
 *   "from '25:00': not a time of day HH:MM (00:00 to 23:59)"
 *   "days: 'Funday' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
 *   "timezone 'Mars/Olympus': unknown time zone (/usr/share/zoneinfo/Mars/Olympus: No such
 *    file or directory)"
 *   "timezone 'Europe/Berlin': /usr/share/zoneinfo/Europe/Berlin: not a TZif file"
 *   "out of memory"
 * Every string is copied; the window keeps no pointer into the arguments.
 */
sg_window_t *sg_window_new(const char *name, const char *tz, const char *const *days,
                           size_t ndays, const char *from, const char *to, char *err,
                           size_t errlen);

/* Free W. NULL ok. */
void sg_window_free(sg_window_t *w);

/* The window's name and zone name, as given. */
const char *sg_window_name(const sg_window_t *w);
const char *sg_window_zone(const sg_window_t *w);

/*
 * 1 when the instant UNIX_S (seconds since the epoch, UTC) is inside W, else 0. Instants
 * beyond +-2^59 s (hundreds of times the age of the universe) are outside every window.
 */
int sg_window_contains(const sg_window_t *w, int64_t unix_s);

/*
 * The UTC offset (seconds east of UTC) of W's zone at UNIX_S, the one contains() uses.
 * For messages and tests; 0 beyond +-2^59 s.
 */
int32_t sg_window_utc_offset(const sg_window_t *w, int64_t unix_s);

/*
 * Write the next opening of W after UNIX_S as configured, for a refusal's message:
 * "Sat 22:00 Europe/Berlin" (the next listed day, on W's wall clock, whose start is later
 * than the local time at UNIX_S; within the coming seven days). An opening that falls in a
 * spring-forward gap is written as configured: the window opens when the gap ends.
 * Stores at most LEN bytes, always NUL-terminated when LEN > 0 (SG_WINDOW_NEXT_MAX is
 * always enough); returns the length the full text has, as snprintf.
 */
int sg_window_next_open(const sg_window_t *w, int64_t unix_s, char *buf, size_t len);

/*
 * The field parsers, for a loader that wants to point at the exact line of a bad value.
 * sg_window_parse_time: "HH:MM" -> minutes since midnight (0..1439) in *min.
 * sg_window_parse_day: "Mon".."Sun" (any case) -> 0 (Mon) .. 6 (Sun) in *day.
 * Both return 0, or -1 with *min / *day untouched.
 */
int sg_window_parse_time(const char *s, int *min);
int sg_window_parse_day(const char *s, int *day);

#endif
