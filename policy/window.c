/*
 * policy/window.c - change windows over IANA time zones, read from TZif files.
 *
 * This file owns the zone reader (RFC 8536 TZif versions 1 to 4: the 64-bit data block of
 * version 2 and later, and its footer, a POSIX TZ string with the RFC 8536 3.3.1
 * extensions) and the window arithmetic on the wall clock it yields. It reads the zone
 * file once, in sg_window_new(); what a window means is window.h's head comment. The
 * configuration keys that will name windows are conf/'s, the refusal that quotes one is
 * the filters'.
 *
 * Why not localtime_r(): it reads the zone from the process's TZ, and switching TZ per
 * window means setenv() and tzset(), which race with every thread that calls localtime
 * (the access log's timestamps). The transitions are few and a lookup is a binary search.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "policy/window.h"

#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
#define TZ_FILE_MAX (256u * 1024) /* tzdata's largest zone is under 4 KiB (fat: 3.6 KiB) */
#define TZ_FOOTER_MAX 128         /* a POSIX TZ string; tzdata's longest has 35 bytes */
#define TZ_UTOFF_MIN (-89999)     /* RFC 8536 3.2: -25:59:59 < utoff < 26:00:00 */
#define TZ_UTOFF_MAX 93599
#define WIN_T_LIMIT ((int64_t)1 << 59) /* far enough for any date, far from int64 overflow */
#define DAY_S 86400

static const char *const day_names[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

/* One rule date of a POSIX TZ string (POSIX.1-2017 8.3, RFC 8536 3.3.1). */
typedef struct {
    char kind;    /* 'J': Jn, day 1..365, Feb 29 never counted; 'D': n, day 0..365; 'M' */
    int day;      /* J, D: the day; M: the weekday, 0 (Sunday) .. 6 */
    int week;     /* M: 1..5, 5 being the last such weekday of the month */
    int month;    /* M: 1..12 */
    int32_t secs; /* local time of the change, -167h..167h (RFC 8536 3.3.1) */
} tz_rule_t;

typedef struct {
    int32_t std_off, dst_off; /* seconds EAST of UTC (the string's own sign is west) */
    int has_dst;
    tz_rule_t start; /* to daylight time, in standard local time */
    tz_rule_t end;   /* back to standard time, in daylight local time */
} tz_posix_t;

typedef struct {
    int64_t *trans;  /* transition instants, strictly ascending */
    uint8_t *idx;    /* the type in force from trans[i] on */
    size_t ntrans;
    int32_t *utoff;  /* the types' UTC offsets (seconds east); type 0 before trans[0] */
    size_t ntypes;
    int has_footer;  /* footer present and not empty: it rules from the last transition */
    tz_posix_t footer;
} tz_zone_t;

struct sg_window_s {
    char *name, *tz;
    unsigned days; /* bit d: the window starts on day d (0 Mon .. 6 Sun) */
    int from, to;  /* minutes since local midnight, 0..1439 */
    tz_zone_t zone;
};

/* S quoted for an error message: printable ASCII as it is, any other byte as '?', at most
 * 40 bytes then "...", so that a value from a configuration file cannot break the line. */
static const char *win_quote(const char *s, char out[48])
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < 40; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

/* ---- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to Y-M-D (H. Hinnant, "chrono-Compatible Low-Level Date
 * Algorithms", days_from_civil), exact for every int64 year this file passes. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year of day Z (days since 1970-01-01); civil_from_days, same source. */
static int64_t year_of_day(int64_t z)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10); /* months 11, 12 of a March-based year: Jan, Feb */
}

static int days_in_month(int64_t y, int m)
{
    static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

/* ---- the POSIX TZ string of a TZif footer ---- */

/* The local wall-clock time (seconds since the epoch, as if local were UTC) at which rule
 * R fires in year Y. */
static int64_t rule_local(const tz_rule_t *r, int64_t y)
{
    int64_t first, day;

    switch (r->kind) {
    case 'J': /* Jn: Feb 29 is never counted, so J60 is always March 1 */
        day = days_from_civil(y, 1, 1) + r->day - 1 + (is_leap(y) && r->day >= 60);
        break;
    case 'D':
        day = days_from_civil(y, 1, 1) + r->day;
        break;
    default: /* Mm.w.d: the w-th weekday d of month m; w = 5 is the last one */
        first = days_from_civil(y, r->month, 1);
        /* The month's first weekday d (1970-01-01 was a Thursday, 4), then w - 1 weeks. */
        day = first + floor_mod(r->day - floor_mod(first + 4, 7), 7) + 7 * (r->week - 1);
        if (day >= first + days_in_month(y, r->month))
            day -= 7;
        break;
    }
    return day * DAY_S + r->secs;
}

/* The UTC offset the footer P gives at instant T (|T| <= WIN_T_LIMIT). The changes of
 * the years around T's are looked at and the latest one at or before T wins: that holds
 * for northern rules, southern ones (daylight time across New Year), negative daylight
 * saving (Europe/Dublin: "IST-1GMT0,M10.5.0,M3.5.0/1") and all-year daylight time
 * ("EST5EDT4,0/0,J365/25", whose end and next start are the same instant). */
static int32_t posix_offset(const tz_posix_t *p, int64_t t)
{
    int64_t y, yy, best = INT64_MIN, s, e;
    int dst = 0;

    if (!p->has_dst)
        return p->std_off;
    y = year_of_day(floor_div(t + p->std_off, DAY_S));
    for (yy = y - 1; yy <= y + 1; yy++) {
        e = rule_local(&p->end, yy) - p->dst_off;
        s = rule_local(&p->start, yy) - p->std_off;
        /* On a tie the start wins: it comes later in this loop's order. */
        if (e <= t && e >= best) {
            best = e;
            dst = 0;
        }
        if (s <= t && s >= best) {
            best = s;
            dst = 1;
        }
    }
    return dst ? p->dst_off : p->std_off;
}

/* A decimal number of 1 to 3 digits at *s, at most MAX; advances *s. -1 when none. */
static int tzs_num(const char **s, int max)
{
    const char *p = *s;
    int v = 0, n = 0;

    while (*p >= '0' && *p <= '9' && n < 3) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (n == 0 || v > max)
        return -1;
    *s = p;
    return v;
}

/* A zone abbreviation: 3 or more letters, or <...> of letters, digits, '+' and '-'. */
static const char *tzs_name(const char *s)
{
    const char *b;

    if (*s == '<') {
        for (b = ++s; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9') || *s == '+' || *s == '-';
             s++)
            ;
        return *s == '>' && s - b >= 3 ? s + 1 : NULL;
    }
    for (b = s; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'); s++)
        ;
    return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] with hh <= MAXH, in seconds in *out; NULL when malformed. */
static const char *tzs_hms(const char *s, int maxh, int32_t *out)
{
    int neg = 0, h, m = 0, sec = 0;

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if ((h = tzs_num(&s, maxh)) < 0)
        return NULL;
    if (*s == ':') {
        s++;
        if ((m = tzs_num(&s, 59)) < 0)
            return NULL;
        if (*s == ':') {
            s++;
            if ((sec = tzs_num(&s, 59)) < 0)
                return NULL;
        }
    }
    *out = (int32_t)((h * 60 + m) * 60 + sec) * (neg ? -1 : 1);
    return s;
}

/* A rule date: Jn, n or Mm.w.d, then an optional /time (default 02:00:00). */
static const char *tzs_rule(const char *s, tz_rule_t *r)
{
    r->secs = 7200;
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if ((r->day = tzs_num(&s, 365)) < 1)
            return NULL;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if ((r->month = tzs_num(&s, 12)) < 1 || *s++ != '.' || (r->week = tzs_num(&s, 5)) < 1 ||
            *s++ != '.' || (r->day = tzs_num(&s, 6)) < 0)
            return NULL;
    } else {
        r->kind = 'D';
        if ((r->day = tzs_num(&s, 365)) < 0)
            return NULL;
    }
    if (*s == '/')
        s = tzs_hms(s + 1, 167, &r->secs);
    return s;
}

/*
 * Parse the POSIX TZ string S into *P: std offset [dst [offset] ,start[/time],end[/time]].
 * A daylight name without rules is refused: POSIX leaves its dates to the implementation
 * and no tzdata footer has one. Returns 0, or -1 with *why set.
 */
static int tzs_parse(const char *s, tz_posix_t *p, const char **why)
{
    int32_t off;

    memset(p, 0, sizeof(*p));
    *why = "malformed POSIX TZ string in the footer";
    if ((s = tzs_name(s)) == NULL || (s = tzs_hms(s, 24, &off)) == NULL)
        return -1;
    p->std_off = -off;
    if (*s == '\0')
        return 0;
    if ((s = tzs_name(s)) == NULL)
        return -1;
    p->has_dst = 1;
    p->dst_off = p->std_off + 3600; /* POSIX: one hour ahead unless given */
    if (*s != ',' && *s != '\0') {
        if ((s = tzs_hms(s, 24, &off)) == NULL)
            return -1;
        p->dst_off = -off;
    }
    if (*s == '\0') {
        *why = "POSIX TZ string in the footer has daylight saving time but no rules";
        return -1;
    }
    if (*s++ != ',' || (s = tzs_rule(s, &p->start)) == NULL || *s++ != ',' ||
        (s = tzs_rule(s, &p->end)) == NULL || *s != '\0')
        return -1;
    return 0;
}

/* ---- TZif (RFC 8536) ---- */

typedef struct {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_hdr_t;

#define TZIF_HDR 44

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The header at P[0, N): *version 1..4; -1 when it is not one. Counts above N are refused
 * here so that the block sizes below cannot overflow. */
static int tzif_header(const unsigned char *p, size_t n, int *version, tzif_hdr_t *h)
{
    uint32_t c[6];
    int i;

    if (n < TZIF_HDR || memcmp(p, "TZif", 4) != 0)
        return -1;
    if (p[4] == 0)
        *version = 1;
    else if (p[4] >= '2' && p[4] <= '4')
        *version = p[4] - '0';
    else
        return -1;
    for (i = 0; i < 6; i++)
        if ((c[i] = be32(p + 20 + 4 * i)) > n)
            return -1;
    *h = (tzif_hdr_t){c[0], c[1], c[2], c[3], c[4], c[5]};
    return 0;
}

/* Bytes of the data block after a header H whose times take TSIZE bytes. */
static size_t tzif_block(const tzif_hdr_t *h, size_t tsize)
{
    return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/*
 * Read the TZif bytes P[0, N) into *Z (which owns its arrays afterwards). Only what a UTC
 * offset needs is kept; the designations and the std/wall and UT/local indicators (POSIX
 * TZ defaults for a TZ string without rules, which tzs_parse refuses) are checked for
 * size only. Returns 0, or -1 with *why a static string.
 */
static int tzif_parse(const unsigned char *p, size_t n, tz_zone_t *z, const char **why)
{
    tzif_hdr_t h;
    int version;
    size_t tsize = 4, off, i;
    const unsigned char *d;
    char footer[TZ_FOOTER_MAX];
    const unsigned char *nl;

    *why = "not a TZif file";
    if (tzif_header(p, n, &version, &h) != 0)
        return -1;
    if (version >= 2) {
        /* RFC 8536 4: a reader of version 2+ skips the 32-bit block entirely. */
        off = TZIF_HDR + tzif_block(&h, 4);
        if (off > n || tzif_header(p + off, n - off, &version, &h) != 0 || version < 2)
            return -1;
        p += off;
        n -= off;
        tsize = 8;
    }
    *why = "corrupt TZif file";
    if (TZIF_HDR + tzif_block(&h, tsize) > n || h.typecnt == 0 || h.charcnt == 0 ||
        (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) ||
        (h.isutcnt != 0 && h.isutcnt != h.typecnt) || h.typecnt > 256)
        return -1;
    if (h.leapcnt != 0) {
        *why = "zone with leap seconds (\"right/\" zones count them; POSIX time does not)";
        return -1;
    }
    z->ntrans = h.timecnt;
    z->ntypes = h.typecnt;
    z->trans = malloc(sizeof(*z->trans) * (h.timecnt ? h.timecnt : 1));
    z->idx = malloc(h.timecnt ? h.timecnt : 1);
    z->utoff = malloc(sizeof(*z->utoff) * h.typecnt);
    if (z->trans == NULL || z->idx == NULL || z->utoff == NULL) {
        *why = "out of memory";
        return -1;
    }
    d = p + TZIF_HDR;
    for (i = 0; i < h.timecnt; i++) {
        z->trans[i] = tsize == 8 ? be64(d + 8 * i) : (int32_t)be32(d + 4 * i);
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            return -1; /* RFC 8536 3.2: strictly ascending */
        /* Far-off sentinels (tzdata writes -2^59 for "the big bang") are fine, anything
         * beyond the instants this file computes with is not. */
        if (z->trans[i] < -WIN_T_LIMIT || z->trans[i] > WIN_T_LIMIT)
            return -1;
    }
    d += (size_t)h.timecnt * tsize;
    for (i = 0; i < h.timecnt; i++)
        if ((z->idx[i] = d[i]) >= h.typecnt)
            return -1;
    d += h.timecnt;
    for (i = 0; i < h.typecnt; i++, d += 6) {
        int32_t u = (int32_t)be32(d);

        if (u < TZ_UTOFF_MIN || u > TZ_UTOFF_MAX || d[4] > 1 || d[5] >= h.charcnt)
            return -1;
        z->utoff[i] = u;
    }
    if (version < 2)
        return 0;
    /* The footer: "\n" TZ-string "\n", the last bytes of the file (RFC 8536 3.3). */
    off = TZIF_HDR + tzif_block(&h, 8);
    if (off >= n || p[off] != '\n')
        return -1;
    nl = memchr(p + off + 1, '\n', n - off - 1);
    if (nl == NULL || (size_t)(nl - p) != n - 1)
        return -1;
    if ((size_t)(nl - (p + off + 1)) >= sizeof(footer) ||
        memchr(p + off + 1, '\0', (size_t)(nl - (p + off + 1))) != NULL)
        return -1;
    memcpy(footer, p + off + 1, (size_t)(nl - (p + off + 1)));
    footer[nl - (p + off + 1)] = '\0';
    if (footer[0] == '\0')
        return 0; /* no footer: the last transition's type stays in force */
    if (tzs_parse(footer, &z->footer, why) != 0)
        return -1;
    z->has_footer = 1;
    return 0;
}

/* The UTC offset of zone Z at T (RFC 8536 3.2): type 0 before the first transition, the
 * footer from the last one on (or the last type when there is no footer). */
static int32_t zone_offset(const tz_zone_t *z, int64_t t)
{
    size_t lo, hi, mid;

    if (z->ntrans == 0 || t >= z->trans[z->ntrans - 1]) {
        if (z->has_footer)
            return posix_offset(&z->footer, t);
        return z->utoff[z->ntrans == 0 ? 0 : z->idx[z->ntrans - 1]];
    }
    if (t < z->trans[0])
        return z->utoff[0];
    lo = 0; /* trans[lo] <= t < trans[hi] */
    hi = z->ntrans - 1;
    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->utoff[z->idx[lo]];
}

/* NULL when TZ may name a file under the zone directory, else why not: a relative path of
 * names made of letters, digits and "_+-.", none of them empty, "." or "..", so that a
 * configured zone cannot reach a file outside the directory. */
static const char *zone_name_why(const char *tz)
{
    const char *c, *s;

    if (tz[0] == '\0')
        return "empty";
    if (strlen(tz) > SG_WINDOW_ZONE_MAX)
        return "longer than 255 bytes";
    for (c = tz;; c = s + 1) {
        for (s = c; *s != '/' && *s != '\0'; s++)
            if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '_' || *s == '+' || *s == '-' || *s == '.'))
                return "not an IANA zone name (letters, digits, '_', '+', '-', '.' and '/')";
        if (s == c || (s - c == 1 && c[0] == '.') || (s - c == 2 && c[0] == '.' && c[1] == '.'))
            return "not a relative path of zone names (such as Europe/Berlin)";
        if (*s == '\0')
            return NULL;
    }
}

static int zone_load(tz_zone_t *z, const char *tz, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR"), *why = NULL;
    char path[4096], q[48];
    sg_file_t f = {NULL, 0, 0};
    int rc = -1, n;

    if ((why = zone_name_why(tz)) != NULL) {
        sg_errf(err, errlen, "timezone '%s': %s", win_quote(tz, q), why);
        return -1;
    }
    if (dir == NULL || dir[0] == '\0')
        dir = TZ_DIR_DEFAULT;
    n = snprintf(path, sizeof(path), "%s/%s", dir, tz);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        sg_errf(err, errlen, "timezone '%s': path too long", tz);
        return -1;
    }
    if (sg_file_read(&f, path, TZ_FILE_MAX, 0, &why) != SG_OK) {
        sg_errf(err, errlen, "timezone '%s': '%s': %s", tz, path, why);
        return -1;
    }
    if (tzif_parse(f.data, f.len, z, &why) != 0)
        sg_errf(err, errlen, "timezone '%s': '%s': %s", tz, path, why);
    else
        rc = 0;
    sg_file_dispose(&f);
    return rc;
}

/* ---- windows ---- */

int sg_window_parse_time(const char *s, int *min)
{
    int h, m;

    if (s == NULL || strlen(s) != 5 || s[2] != ':')
        return -1;
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[3] < '0' || s[3] > '9' ||
        s[4] < '0' || s[4] > '9')
        return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *min = h * 60 + m;
    return 0;
}

int sg_window_parse_day(const char *s, int *day)
{
    int d;

    if (s == NULL)
        return -1;
    for (d = 0; d < 7; d++)
        if (sg_strcaseeq(s, strlen(s), day_names[d], 3)) {
            *day = d;
            return 0;
        }
    return -1;
}

sg_window_t *sg_window_new(const char *name, const char *tz, const char *const *days,
                           size_t ndays, const char *from, const char *to, char *err,
                           size_t errlen)
{
    sg_window_t *w;
    char q[48];
    size_t i;
    int d;

    if ((w = calloc(1, sizeof(*w))) == NULL)
        goto nomem;
    if (name == NULL || name[0] == '\0') {
        sg_errf(err, errlen, "name: empty");
        goto fail;
    }
    if (ndays == 0) {
        sg_errf(err, errlen, "days: empty (list the days the window starts on)");
        goto fail;
    }
    for (i = 0; i < ndays; i++) {
        if (sg_window_parse_day(days[i], &d) != 0) {
            sg_errf(err, errlen, "days: '%s' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)",
                    days[i] ? win_quote(days[i], q) : "(null)");
            goto fail;
        }
        if (w->days & 1u << d) {
            /* Most likely a typo for another day; refusing it shows which. */
            sg_errf(err, errlen, "days: '%s' listed twice", day_names[d]);
            goto fail;
        }
        w->days |= 1u << d;
    }
    if (sg_window_parse_time(from, &w->from) != 0) {
        sg_errf(err, errlen, "from '%s': not a time of day HH:MM (00:00 to 23:59)",
                from ? win_quote(from, q) : "(null)");
        goto fail;
    }
    if (sg_window_parse_time(to, &w->to) != 0) {
        sg_errf(err, errlen, "to '%s': not a time of day HH:MM (00:00 to 23:59)",
                to ? win_quote(to, q) : "(null)");
        goto fail;
    }
    if (tz == NULL) {
        sg_errf(err, errlen, "timezone: missing");
        goto fail;
    }
    if (zone_load(&w->zone, tz, err, errlen) != 0)
        goto fail;
    if ((w->name = strdup(name)) == NULL || (w->tz = strdup(tz)) == NULL)
        goto nomem;
    return w;
nomem:
    sg_errf(err, errlen, "out of memory");
fail:
    sg_window_free(w);
    return NULL;
}

void sg_window_free(sg_window_t *w)
{
    if (w == NULL)
        return;
    free(w->zone.trans);
    free(w->zone.idx);
    free(w->zone.utoff);
    free(w->name);
    free(w->tz);
    free(w);
}

const char *sg_window_name(const sg_window_t *w)
{
    return w->name;
}

const char *sg_window_zone(const sg_window_t *w)
{
    return w->tz;
}

int32_t sg_window_utc_offset(const sg_window_t *w, int64_t unix_s)
{
    if (unix_s > WIN_T_LIMIT || unix_s < -WIN_T_LIMIT)
        return 0;
    return zone_offset(&w->zone, unix_s);
}

/* The wall clock of W's zone at T: weekday (0 Mon .. 6 Sun) and minute of the day. */
static void win_local(const sg_window_t *w, int64_t t, int *wd, int *min)
{
    int64_t local = t + zone_offset(&w->zone, t);

    *wd = (int)floor_mod(floor_div(local, DAY_S) + 3, 7); /* 1970-01-01 was a Thursday */
    *min = (int)(floor_mod(local, DAY_S) / 60);
}

int sg_window_contains(const sg_window_t *w, int64_t unix_s)
{
    int wd, min, starts_today, started_yesterday;

    if (unix_s > WIN_T_LIMIT || unix_s < -WIN_T_LIMIT)
        return 0;
    win_local(w, unix_s, &wd, &min);
    starts_today = (w->days >> wd) & 1u;
    if (w->from < w->to)
        return starts_today && min >= w->from && min < w->to;
    /* to <= from: the window runs past midnight into the next day (24 hours when equal). */
    started_yesterday = (w->days >> ((wd + 6) % 7)) & 1u;
    return (starts_today && min >= w->from) || (started_yesterday && min < w->to);
}

int sg_window_next_open(const sg_window_t *w, int64_t unix_s, char *buf, size_t len)
{
    int wd = 0, min = 0, k, d = 0;

    if (unix_s <= WIN_T_LIMIT && unix_s >= -WIN_T_LIMIT)
        win_local(w, unix_s, &wd, &min);
    for (k = 0; k <= 7; k++) { /* k = 7: today's weekday next week, when only it is listed */
        d = (wd + k) % 7;
        if (((w->days >> d) & 1u) && (k > 0 || min < w->from))
            break;
    }
    return snprintf(buf, len, "%s %02d:%02d %s", day_names[d], w->from / 60, w->from % 60,
                    w->tz);
}
