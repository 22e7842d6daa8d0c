/*
 * base/pool.c - sg_pool_t: chunks bumped 16 bytes at a time, cleanups run last-in first.
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
