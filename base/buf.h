/*
 * base/buf.h - sg_buf_t: a growable byte buffer with a hard maximum (curl dynbuf).
 *
 * Every growable buffer has its maximum set at init, from a limits.* key where a peer
 * decides how much arrives.
 *
 * A buffer made with sg_buf_init_sticky keeps its first failure (curl dynbuf): every later
 * append does nothing and returns that same error, so a record built by a sequence of
 * appends needs one check, at the end (sg_buf_err). A plain sg_buf_init buffer stays usable
 * after a failed append, unchanged by it, for callers that fall back to something shorter.
 */
#ifndef SG_BASE_BUF_H
#define SG_BASE_BUF_H

#include <stddef.h>
#include <string.h>

#include "base/defs.h"

typedef struct {
    char *data;
    size_t off; /* bytes already consumed from the front */
    size_t len; /* bytes in use, including the consumed prefix */
    size_t cap;
    size_t max; /* sg_buf_append fails with SG_ETOOBIG beyond this */
    int err;    /* sticky buffers: the first failure, SG_OK until then */
    int sticky;
} sg_buf_t;

void sg_buf_init(sg_buf_t *b, size_t max);
void sg_buf_init_sticky(sg_buf_t *b, size_t max);
/* Frees the bytes; b is empty, without error, and can be used again. */
void sg_buf_dispose(sg_buf_t *b);
/* A sticky buffer's error: SG_OK, or the first failure since init, dispose or reset. */
static inline int sg_buf_err(const sg_buf_t *b) { return b->err; }
/* Returns rv, and records it as a sticky buffer's error when it is the first failure: for
 * a step of a sequence that fails without appending (a library call, a lookup). */
int sg_buf_fail(sg_buf_t *b, int rv);
/* Room for extra more bytes, and appends. Each returns SG_OK, or SG_ETOOBIG (beyond max),
 * SG_ENOMEM (or SG_ERR from a format) with b unchanged, or a sticky buffer's error. */
int sg_buf_reserve(sg_buf_t *b, size_t extra);
/* Append p[0, n): SG_OK, SG_ENOMEM or SG_ETOOBIG (then, for a sticky buffer, every later
 * append returns the same). Inline for the common case (no error, room left: every header
 * piece and body chunk of every request comes here); the rest is sg__buf_append. */
int sg__buf_append(sg_buf_t *b, const void *p, size_t n);
static inline int sg_buf_append(sg_buf_t *b, const void *p, size_t n)
{
    if (b->err == SG_OK && n > 0 && n <= b->cap - b->len && (b->off == 0 || b->off < b->len)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return SG_OK;
    }
    return sg__buf_append(b, p, n);
}
/* Append a string literal (its length is taken at compile time). */
#define sg_buf_lit(b, lit) sg_buf_append((b), "" lit, sizeof(lit) - 1)
/* Append v in decimal, without printf: record builders on the data path (audit lines,
 * upstream request heads, access log) use this instead of "%llu". */
int sg_buf_append_u64(sg_buf_t *b, unsigned long long v);
int sg_buf_appendf(sg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Unread bytes. */
static inline size_t sg_buf_avail(const sg_buf_t *b) { return b->len - b->off; }
/* An empty buffer that never allocated has no head: NULL, not NULL + 0 (undefined in C,
 * and what an empty request body would otherwise hand to every parser). */
static inline char *sg_buf_head(const sg_buf_t *b)
{
    return b->data != NULL ? b->data + b->off : NULL;
}
/* Mark n unread bytes as consumed; resets to empty when everything is consumed. */
void sg_buf_consume(sg_buf_t *b, size_t n);
/* Empties b and clears its error; keeps the memory. */
static inline void sg_buf_reset(sg_buf_t *b)
{
    b->off = b->len = 0;
    b->err = SG_OK;
}

#endif
