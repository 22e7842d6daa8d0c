/*
 * base/pool.h - sg_pool_t: a bump allocator with cleanups, freed all at once.
 *
 * Everything on the data path allocates from a pool (one per connection, one per request)
 * and registers what the pool does not own (cJSON trees, SSL objects, upstream handles) as
 * a cleanup (as nginx pools do).
 */
#ifndef SG_BASE_POOL_H
#define SG_BASE_POOL_H

#include <stddef.h>

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

#endif
