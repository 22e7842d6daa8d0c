/*
 * base/buf.c - sg_buf_t: grows by doubling up to its maximum, compacts consumed bytes first.
 */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/defs.h"

void sg_buf_init(sg_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void sg_buf_init_sticky(sg_buf_t *b, size_t max)
{
    sg_buf_init(b, max);
    b->sticky = 1;
}

void sg_buf_dispose(sg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
    b->err = SG_OK;
}

int sg_buf_fail(sg_buf_t *b, int rv)
{
    if (b->sticky && b->err == SG_OK)
        b->err = rv;
    return rv;
}

int sg_buf_reserve(sg_buf_t *b, size_t extra)
{
    size_t need, ncap;
    char *nd;

    if (b->err != SG_OK)
        return b->err;
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
        return sg_buf_fail(b, SG_ETOOBIG);
    ncap = b->cap ? b->cap : 1024;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    nd = realloc(b->data, ncap);
    if (nd == NULL)
        return sg_buf_fail(b, SG_ENOMEM);
    b->data = nd;
    b->cap = ncap;
    return SG_OK;
}

int sg__buf_append(sg_buf_t *b, const void *p, size_t n)
{
    int rv;

    if (n == 0)
        return b->err;
    if ((rv = sg_buf_reserve(b, n)) != SG_OK)
        return rv;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return SG_OK;
}

int sg_buf_append_u64(sg_buf_t *b, unsigned long long v)
{
    char d[20]; /* 2^64 - 1 has 20 digits */
    size_t i = sizeof(d);

    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return sg_buf_append(b, d + i, sizeof(d) - i);
}

int sg_buf_appendf(sg_buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n, rv;

    if (b->err != SG_OK)
        return b->err;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return sg_buf_fail(b, SG_ERR);
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
