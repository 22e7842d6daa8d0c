/*
 * base/str.c - string comparison, the UTF-8 decoder and the one escaper behind every JSON
 * string and every error log line.
 */
#include "base/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/defs.h"

int sg_strcaseeq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

/* ---- the one escaper (see str.h for what it escapes and why) ---- */

size_t sg_utf8_char(const unsigned char *p, size_t avail, uint32_t *cp)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0; /* a continuation byte, 0xC0 or 0xC1 (overlong by construction), F5..FF */
    }
    /* The second byte's range rules out overlong forms, surrogates and > U+10FFFF
     * (RFC 3629 section 4, the UTF8-3 and UTF8-4 rules). */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (avail < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    *cp = v;
    return len;
}

int sg_cp_unsafe(uint32_t cp)
{
    if (cp < 0x80)
        return cp < 0x20 || cp == 0x7F;
    return cp <= 0x9F ||                     /* C1 */
           cp == 0x061C ||                   /* ARABIC LETTER MARK */
           cp == 0x200E || cp == 0x200F ||   /* LRM, RLM */
           (cp >= 0x2028 && cp <= 0x202E) || /* LS, PS, LRE, RLE, PDF, LRO, RLO */
           (cp >= 0x2066 && cp <= 0x2069);   /* LRI, RLI, FSI, PDI */
}

const unsigned char sg_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x5C '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, /* 0x7F DEL */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

#define ESC_TEXT 0x100u /* the error log's form: no quotes around, '"' left as it is */

/* The character at p (p < e): returns the bytes it takes and stores its escape in esc,
 * *elen bytes, or sets *elen to 0 when it is written as it is. The single place that
 * decides what is escaped and how; every writer below walks the string with it. */
static inline size_t esc_char(const unsigned char *p, const unsigned char *e, unsigned flags,
                              char esc[6], size_t *elen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned c = *p;
    uint32_t cp = c;
    size_t len = 1;

    if (c >= 0x20 && c < 0x7F) { /* the common case: printable ASCII */
        *elen = 0;
        if (c == '\\' || (c == '"' && !(flags & ESC_TEXT))) {
            esc[0] = '\\';
            esc[1] = (char)c;
            *elen = 2;
        }
        return 1;
    }
    if (c >= 0x80 && (len = sg_utf8_char(p, (size_t)(e - p), &cp)) == 0) {
        len = 1;
        if (flags & SG_ESC_RAW_INVALID) {
            *elen = 0;
            return 1;
        }
        cp = 0xFFFD;
    } else if (!sg_cp_unsafe(cp)) {
        *elen = 0;
        return len;
    }
    esc[0] = '\\';
    esc[1] = 'u';
    esc[2] = hex[(cp >> 12) & 15];
    esc[3] = hex[(cp >> 8) & 15];
    esc[4] = hex[(cp >> 4) & 15];
    esc[5] = hex[cp & 15];
    *elen = 6;
    return len;
}

/* Walks s[0, n) as a JSON string: with o NULL only counts, else stores at o. Runs of bytes
 * that need no escape are copied whole. Returns the bytes (to be) stored. */
static size_t esc_json(char *o, const char *s, size_t n, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s, *e, *run;
    size_t total = 2, k, elen;
    char esc[6];

    if (o != NULL)
        *o++ = '"';
    if (n == 0) {
        if (o != NULL)
            *o = '"';
        return total;
    }
    for (e = p + n, run = p; p < e; p += k) {
        if ((p = sg_json_plain_run(p, e)) == e)
            break;
        k = esc_char(p, e, flags, esc, &elen);
        if (elen == 0)
            continue;
        total += (size_t)(p - run) + elen;
        if (o != NULL) {
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
            memcpy(o, esc, elen);
            o += elen;
        }
        run = p + k;
    }
    total += (size_t)(e - run);
    if (o != NULL) {
        memcpy(o, run, (size_t)(e - run));
        o[e - run] = '"';
    }
    return total;
}

size_t sg_json_str_size(const char *s, size_t n, unsigned flags)
{
    return esc_json(NULL, s, n, flags & SG_ESC_RAW_INVALID);
}

char *sg_json_str_put(char *o, const char *s, size_t n, unsigned flags)
{
    return o + esc_json(o, s, n, flags & SG_ESC_RAW_INVALID);
}

int sg_buf_json_str(sg_buf_t *b, const char *s, size_t n)
{
    size_t size;
    int rv;

    if (s == NULL)
        return sg_buf_lit(b, "null");
    if (b->err != SG_OK)
        return b->err; /* a sticky buffer's earlier failure: measure nothing */
    if (n > (SIZE_MAX - 2) / 6) /* the size below could wrap; no buffer holds that much */
        return sg_buf_fail(b, SG_ETOOBIG);
    if (6 * n + 2 <= b->cap - b->len && (b->off == 0 || b->off < b->len)) {
        /* Room for the worst case (every byte a \u escape): one pass, no measuring. */
        b->len = (size_t)(sg_json_str_put(b->data + b->len, s, n, 0) - b->data);
        return SG_OK;
    }
    size = sg_json_str_size(s, n, 0);
    if ((rv = sg_buf_reserve(b, size)) != SG_OK)
        return rv;
    sg_json_str_put(b->data + b->len, s, n, 0);
    b->len += size;
    return SG_OK;
}

int sg_buf_json_cstr(sg_buf_t *b, const char *s)
{
    return sg_buf_json_str(b, s, s != NULL ? strlen(s) : 0);
}

size_t sg_log_escape(char *o, size_t room, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    size_t used = 0, k, elen;
    char esc[6];

    while (p < e) {
        k = esc_char(p, e, ESC_TEXT, esc, &elen);
        if ((elen ? elen : k) > room - used)
            break;
        memcpy(o + used, elen ? esc : (const char *)p, elen ? elen : k);
        used += elen ? elen : k;
        p += k;
    }
    return used;
}

int sg_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return SG_ERR;
}
