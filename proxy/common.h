/*
 * proxy/common.h - error codes, logging, bounded buffers and per-request pools.
 *
 * Everything on the data path allocates from an sg_pool_t (one per connection,
 * one per request) or appends to an sg_buf_t whose maximum is set at init from
 * a limits.* key (curl dynbuf). Functions return 0 or a negative SG_E* code.
 */
#ifndef SG_COMMON_H
#define SG_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "conf/conf.h"

enum {
    SG_OK = 0,
    SG_ERR = -1,      /* generic failure; details logged where it happened */
    SG_ENOMEM = -2,   /* allocation failed */
    SG_ETOOBIG = -3,  /* a bounded buffer would exceed its maximum */
    SG_EAGAIN = -4,   /* would block; try again when the socket is ready */
    SG_ECLOSED = -5,  /* peer closed the connection */
    SG_EPROTO = -6,   /* peer violated the protocol */
    SG_ETIMEDOUT = -7 /* a deadline passed */
};

#define SG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- logging (stderr, one line per event; never format a secret) ---- */

extern sg_log_level_t sg_log_level;

#define sg_log(lvl, ...)                                                                         \
    do {                                                                                         \
        if ((lvl) <= sg_log_level)                                                               \
            sg__log((lvl), __VA_ARGS__);                                                         \
    } while (0)
void sg__log(sg_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- sg_buf_t: growable byte buffer with a hard maximum ---- */

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
/* Append s[0, n) as a JSON string; NULL appends null. Bytes that are not valid
 * UTF-8 become U+FFFD and controls are escaped: the line parses whatever a client sent. */
int sg_buf_json_str(sg_buf_t *b, const char *s, size_t n);
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

/* ---- sg_pool_t: bump allocator with cleanups, freed all at once ---- */

typedef struct sg_pool_chunk_s sg_pool_chunk_t;
typedef struct sg_pool_cleanup_s sg_pool_cleanup_t;
typedef void (*sg_pool_cleanup_cb)(void *data);

typedef struct {
    sg_pool_chunk_t *chunks;
    sg_pool_cleanup_t *cleanups;
    size_t chunk_size;
} sg_pool_t;

void sg_pool_init(sg_pool_t *p, size_t chunk_size);
/* Runs cleanups (last added first) and frees every chunk; the pool can be reused. */
void sg_pool_dispose(sg_pool_t *p);
void *sg_pool_alloc(sg_pool_t *p, size_t n);     /* 16-byte aligned; NULL on ENOMEM */
void *sg_pool_calloc(sg_pool_t *p, size_t n);
char *sg_pool_strndup(sg_pool_t *p, const char *s, size_t n); /* NUL-terminated copy */
int sg_pool_cleanup_add(sg_pool_t *p, sg_pool_cleanup_cb cb, void *data);

/* ---- small helpers ---- */

typedef struct {
    const char *p;
    size_t n;
} sg_str_t;

int sg_strcaseeq(const char *a, size_t an, const char *b, size_t bn);
/* The wall clock as RFC 3339 UTC with microseconds ("2026-11-25T04:00:00.123456Z"), the
 * audit log's time format; out needs SG_TIME_LEN bytes. */
#define SG_TIME_LEN 32
void sg_time_rfc3339(char out[SG_TIME_LEN]);
/* Monotonic milliseconds. */
uint64_t sg_now_ms(void);
int sg_set_nonblock(int fd);

#endif
