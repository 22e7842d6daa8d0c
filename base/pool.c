/*
 * base/pool.c - sg_pool_t: chunks bumped 16 bytes at a time, cleanups run last-in first;
 * sg_pool_cache_t: a bounded free list of blocks for one thread.
 */
#include "base/pool.h"

#include <stdlib.h>
#include <string.h>

#include "base/defs.h"

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

/* ASan must see every freed block freed: a block kept for the next request would turn a
 * use after free into a silent read of that request's data. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_CACHE_KEEPS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_CACHE_KEEPS 0
#endif
#endif
#ifndef POOL_CACHE_KEEPS
#define POOL_CACHE_KEEPS 1
#endif

void sg_pool_cache_init(sg_pool_cache_t *pc, size_t max)
{
    pc->free = NULL;
    pc->n = 0;
    pc->max = POOL_CACHE_KEEPS ? max : 0;
}

void sg_pool_cache_dispose(sg_pool_cache_t *pc)
{
    void *b;

    while ((b = pc->free) != NULL) {
        pc->free = *(void **)b;
        free(b);
    }
    pc->n = 0;
}

void *sg_pool_cache_get(sg_pool_cache_t *pc)
{
    void *b = pc->free;

    if (b == NULL)
        return malloc(SG_POOL_BLOCK);
    pc->free = *(void **)b;
    pc->n--;
    return b;
}

void sg_pool_cache_put(sg_pool_cache_t *pc, void *block)
{
    if (pc->n >= pc->max) {
        free(block); /* beyond the bound: a burst's peak goes back to malloc */
        return;
    }
    *(void **)block = pc->free;
    pc->free = block;
    pc->n++;
}

void sg_pool_cache_buf_seed(sg_pool_cache_t *pc, sg_buf_t *b)
{
    if (b->data != NULL || b->max < SG_POOL_BLOCK)
        return;
    if ((b->data = sg_pool_cache_get(pc)) != NULL)
        b->cap = SG_POOL_BLOCK;
}

void sg_pool_cache_buf_dispose(sg_pool_cache_t *pc, sg_buf_t *b)
{
    /* Any malloc'd storage of exactly one block will do, grown to it or seeded. */
    if (b->data != NULL && b->cap == SG_POOL_BLOCK) {
        sg_pool_cache_put(pc, b->data);
        b->data = NULL;
    }
    sg_buf_dispose(b);
}

void sg_pool_init(sg_pool_t *p, size_t chunk_size)
{
    p->chunks = NULL;
    p->cleanups = NULL;
    p->chunk_size = chunk_size ? chunk_size : 4096;
    p->cache = NULL;
}

void sg_pool_init_cached(sg_pool_t *p, sg_pool_cache_t *pc)
{
    p->chunks = NULL;
    p->cleanups = NULL;
    p->chunk_size = SG_POOL_BLOCK - offsetof(sg_pool_chunk_t, mem);
    p->cache = pc;
}

static int pool_chunk_cached(const sg_pool_t *p, size_t size)
{
    return p->cache != NULL && size == p->chunk_size;
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
        if (pool_chunk_cached(p, c->size))
            sg_pool_cache_put(p->cache, c);
        else
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
        c = pool_chunk_cached(p, sz) ? sg_pool_cache_get(p->cache) : malloc(sizeof(*c) + sz);
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
