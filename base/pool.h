/*
 * base/pool.h - sg_pool_t: a bump allocator with cleanups, freed all at once.
 *
 * Everything on the data path allocates from a pool (one per connection, one per request)
 * and registers what the pool does not own (cJSON trees, SSL objects, upstream handles) as
 * a cleanup (as nginx pools do).
 *
 * sg_pool_cache_t keeps freed blocks of one size (SG_POOL_BLOCK) for the next user, so that
 * a steady stream of requests takes its pool chunks and first buffers from a free list and
 * not from malloc (h2o's recycle allocator, HAProxy's pools). A cache belongs to one thread
 * (a worker), so it takes no lock; it holds at most `max` blocks and gives the rest back to
 * malloc, so that a burst does not pin its peak memory. In a build with AddressSanitizer the
 * cache holds nothing: every block goes back to free() at once, so that a use after free
 * still lands in memory ASan watches instead of in the next request's.
 */
#ifndef SG_BASE_POOL_H
#define SG_BASE_POOL_H

#include <stddef.h>

#include "base/buf.h"

/* The one block size a cache keeps: a request pool's chunk (with its header) or a buffer's
 * first storage. */
#define SG_POOL_BLOCK 4096

typedef struct sg_pool_chunk_s sg_pool_chunk_t;
typedef struct sg_pool_cleanup_s sg_pool_cleanup_t;
typedef void (*sg_pool_cleanup_cb)(void *data);

typedef struct {
    void *free; /* blocks kept, linked through their first word */
    size_t n;   /* how many */
    size_t max; /* beyond this, a block given back is freed; 0: keep none */
} sg_pool_cache_t;

typedef struct {
    sg_pool_chunk_t *chunks;
    sg_pool_cleanup_t *cleanups;
    size_t chunk_size;
    sg_pool_cache_t *cache; /* where chunks of chunk_size come from and go back; may be NULL */
} sg_pool_t;

/* A zeroed cache is valid and keeps nothing. */
void sg_pool_cache_init(sg_pool_cache_t *pc, size_t max);
/* Frees every block kept; the cache can be used again. */
void sg_pool_cache_dispose(sg_pool_cache_t *pc);
/* A block of SG_POOL_BLOCK bytes (malloc'd, so free() and realloc() take it), or NULL. */
void *sg_pool_cache_get(sg_pool_cache_t *pc);
/* Gives back a block of SG_POOL_BLOCK bytes from sg_pool_cache_get or malloc. */
void sg_pool_cache_put(sg_pool_cache_t *pc, void *block);
/* A buffer that has never allocated gets a block as its storage, when its maximum allows
 * one (a buffer's capacity never exceeds its maximum). Without a block (ENOMEM) b stays as
 * it was and allocates on its own when appended to, as usual. */
void sg_pool_cache_buf_seed(sg_pool_cache_t *pc, sg_buf_t *b);
/* sg_buf_dispose, giving the storage back to the cache when it is one block. */
void sg_pool_cache_buf_dispose(sg_pool_cache_t *pc, sg_buf_t *b);

void sg_pool_init(sg_pool_t *p, size_t chunk_size);
/* A pool whose chunks are cache blocks (chunk_size follows from SG_POOL_BLOCK). */
void sg_pool_init_cached(sg_pool_t *p, sg_pool_cache_t *pc);
/* Runs cleanups (last added first) and frees every chunk; the pool can be reused. */
void sg_pool_dispose(sg_pool_t *p);
void *sg_pool_alloc(sg_pool_t *p, size_t n);     /* 16-byte aligned; NULL on ENOMEM */
void *sg_pool_calloc(sg_pool_t *p, size_t n);
char *sg_pool_strndup(sg_pool_t *p, const char *s, size_t n); /* NUL-terminated copy */
int sg_pool_cleanup_add(sg_pool_t *p, sg_pool_cleanup_cb cb, void *data);

#endif
