/*
 * base/buf.h - sg_buf_t: a growable byte buffer with a hard maximum (curl dynbuf).
 *
 * Every growable buffer has its maximum set at init, from a limits.* key where a peer
 * decides how much arrives (STYLE.md "Memory").
 */
#ifndef SG_BASE_BUF_H
#define SG_BASE_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t off; /* bytes already consumed from the front */
    size_t len; /* bytes in use, including the consumed prefix */
    size_t cap;
    size_t max; /* sg_buf_append fails with SG_ETOOBIG beyond this */
} sg_buf_t;

void sg_buf_init(sg_buf_t *b, size_t max);
void sg_buf_dispose(sg_buf_t *b);
int sg_buf_reserve(sg_buf_t *b, size_t extra);
int sg_buf_append(sg_buf_t *b, const void *p, size_t n);
/* Append a string literal (its length is taken at compile time). */
#define sg_buf_lit(b, lit) sg_buf_append((b), "" lit, sizeof(lit) - 1)
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
static inline void sg_buf_reset(sg_buf_t *b) { b->off = b->len = 0; }

#endif
