/*
 * proxy/common.c - logging, sg_buf_t, sg_pool_t and small helpers.
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
    char line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, names[lvl]);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write(2) per line so that lines from several workers never interleave. */
    fwrite(line, 1, (size_t)n, stderr);
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

/* Append s[0, n) as a JSON string (NULL: null). Client bytes are not trusted to be UTF-8: an
 * invalid sequence becomes U+FFFD, controls are escaped, so each record stays
 * one well-formed line whatever a client sent. */
int sg_buf_json_str(sg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    int rv;

    if (s == NULL)
        return sg_buf_lit(b, "null");
    rv = sg_buf_lit(b, "\"");
    while (rv == SG_OK && p < e) {
        unsigned c = *p;
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && (size_t)(e - p) >= len;

        for (size_t i = 1; ok && i < len; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && len == 2 && c < 0xC2)
            ok = 0; /* overlong */
        if (ok && len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
            ok = 0; /* overlong or surrogate */
        if (ok && len == 4 && ((c == 0xF0 && p[1] < 0x90) || c > 0xF4 || (c == 0xF4 && p[1] >= 0x90)))
            ok = 0;
        if (!ok) {
            rv = sg_buf_lit(b, "\\ufffd");
            p++;
        } else if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rv = sg_buf_append(b, esc, 2);
            p++;
        } else if (c < 0x20 || c == 0x7F) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rv = sg_buf_append(b, esc, 6);
            p++;
        } else {
            rv = sg_buf_append(b, p, len);
            p += len;
        }
    }
    return rv == SG_OK ? sg_buf_lit(b, "\"") : rv;
}
