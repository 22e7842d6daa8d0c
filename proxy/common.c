/*
 * proxy/common.c - logging, sg_buf_t, sg_pool_t, the one string escaper and small helpers.
 */
#include "proxy/common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

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

/* ---- sg_buf_t ---- */

void sg_buf_init(sg_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void sg_buf_dispose(sg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

int sg_buf_reserve(sg_buf_t *b, size_t extra)
{
    size_t need, ncap;
    char *nd;

    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + extra <= b->cap)
        return SG_OK;
    /* Compact before growing: consumed bytes at the front are free space. */
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap)
            return SG_OK;
    }
    need = b->len + extra;
    if (need > b->max)
        return SG_ETOOBIG;
    ncap = b->cap ? b->cap : 1024;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    nd = realloc(b->data, ncap);
    if (nd == NULL)
        return SG_ENOMEM;
    b->data = nd;
    b->cap = ncap;
    return SG_OK;
}

int sg_buf_append(sg_buf_t *b, const void *p, size_t n)
{
    int rv;

    if (n == 0)
        return SG_OK;
    if ((rv = sg_buf_reserve(b, n)) != SG_OK)
        return rv;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return SG_OK;
}

int sg_buf_appendf(sg_buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n, rv;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return SG_ERR;
    if ((size_t)n < sizeof(small))
        return sg_buf_append(b, small, (size_t)n);
    /* Long output: format in place (vsnprintf needs room for its NUL). */
    if ((rv = sg_buf_reserve(b, (size_t)n + 1)) != SG_OK)
        return rv;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SG_OK;
}

void sg_buf_consume(sg_buf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

/* ---- sg_pool_t ---- */

struct sg_pool_chunk_s {
    sg_pool_chunk_t *next;
    size_t used, size;
    _Alignas(16) unsigned char mem[];
};

struct sg_pool_cleanup_s {
    sg_pool_cleanup_t *next;
    sg_pool_cleanup_cb cb;
    void *data;
};

void sg_pool_init(sg_pool_t *p, size_t chunk_size)
{
    p->chunks = NULL;
    p->cleanups = NULL;
    p->chunk_size = chunk_size ? chunk_size : 4096;
}

void sg_pool_dispose(sg_pool_t *p)
{
    sg_pool_chunk_t *c, *cn;
    sg_pool_cleanup_t *cl;

    while ((cl = p->cleanups) != NULL) {
        p->cleanups = cl->next;
        cl->cb(cl->data);
    }
    for (c = p->chunks; c != NULL; c = cn) {
        cn = c->next;
        free(c);
    }
    p->chunks = NULL;
}

void *sg_pool_alloc(sg_pool_t *p, size_t n)
{
    sg_pool_chunk_t *c = p->chunks;
    size_t sz;
    void *r;

    n = (n + 15) & ~(size_t)15;
    if (c == NULL || c->size - c->used < n) {
        /* Large objects get a chunk of their own, linked behind the current one so the
         * current chunk's free space stays in use. */
        sz = n > p->chunk_size / 4 ? n : p->chunk_size;
        c = malloc(sizeof(*c) + sz);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->size = sz;
        if (sz == n && p->chunks != NULL) {
            c->next = p->chunks->next;
            p->chunks->next = c;
        } else {
            c->next = p->chunks;
            p->chunks = c;
        }
    }
    r = c->mem + c->used;
    c->used += n;
    return r;
}

void *sg_pool_calloc(sg_pool_t *p, size_t n)
{
    void *r = sg_pool_alloc(p, n);

    if (r != NULL)
        memset(r, 0, n);
    return r;
}

char *sg_pool_strndup(sg_pool_t *p, const char *s, size_t n)
{
    char *r = sg_pool_alloc(p, n + 1);

    if (r == NULL)
        return NULL;
    if (n > 0)
        memcpy(r, s, n); /* s may be NULL when n is 0 (an empty buffer) */
    r[n] = '\0';
    return r;
}

int sg_pool_cleanup_add(sg_pool_t *p, sg_pool_cleanup_cb cb, void *data)
{
    sg_pool_cleanup_t *cl = sg_pool_alloc(p, sizeof(*cl));

    if (cl == NULL)
        return SG_ENOMEM;
    cl->cb = cb;
    cl->data = data;
    cl->next = p->cleanups;
    p->cleanups = cl;
    return SG_OK;
}

/* ---- helpers ---- */

int sg_strcaseeq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

void sg_time_rfc3339(char out[SG_TIME_LEN])
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* The modulos bound every field for the compiler; real dates never need them. */
    snprintf(out, SG_TIME_LEN, "%04u-%02u-%02uT%02u:%02u:%02u.%06uZ",
             (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)(tm.tm_mon + 1) % 100,
             (unsigned)tm.tm_mday % 100, (unsigned)tm.tm_hour % 100, (unsigned)tm.tm_min % 100,
             (unsigned)tm.tm_sec % 100, (unsigned)(ts.tv_nsec / 1000) % 1000000);
}

uint64_t sg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int sg_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return SG_ERR;
    return SG_OK;
}

/* ---- the one escaper (see common.h for what it escapes and why) ---- */

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
    if (n > (SIZE_MAX - 2) / 6)
        return SG_ETOOBIG; /* the size below could wrap; no buffer holds that much anyway */
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
