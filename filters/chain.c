/*
 * filters/chain.c - the filter chain runner, the filters' state, and the gateway's order.
 *
 * The order is a table, not configuration: configuration may switch a filter
 * off but never reorder the checks (docs/design.md "The chain on guarded routes").
 * main.c hands the table to the runner (sg_chain_compose), so the core knows no
 * filter by name. With no filter enabled every request is forwarded
 * (routes.unmatched = "forward").
 *
 * Memory: a request's contexts are one zeroed block from r->pool, made when a
 * hook first needs one (offsets fixed at compose time); a generation's filter
 * states are an array in sg_gen_t, built and freed here.
 */
#include "filters/filter.h"

#include <stdio.h>
#include <stdlib.h>

extern const sg_filter_ops_t sg_flt_route, sg_flt_authn, sg_flt_validate, sg_flt_authz,
    sg_flt_change, sg_flt_audit, sg_flt_batch;

/* docs/design.md order: route, authenticate, validate, authorise, change control, audit,
 * batch. The
 * filters still to come take their places between these. */
const sg_filter_ops_t *const sg_chain_order[] = {
    &sg_flt_route,
    &sg_flt_authn,
    &sg_flt_validate,
    &sg_flt_authz,
    &sg_flt_change,
    &sg_flt_audit,
    &sg_flt_batch,
    NULL,
};

#define CHAIN_MAX 16 /* filters in one chain */

static const sg_filter_ops_t *const chain_none[] = {NULL};
static const sg_filter_ops_t *const *chain_filters = chain_none;
static size_t chain_n;
static size_t chain_off[CHAIN_MAX]; /* filter i's context in the request's block */
static size_t chain_ctx_size;       /* the block: every context, each aligned */

void sg_chain_compose(const sg_filter_ops_t *const *filters)
{
    const size_t align = _Alignof(max_align_t);
    size_t n = 0, off = 0;

    while (filters[n] != NULL)
        n++;
    if (n > CHAIN_MAX) {
        sg_log(SG_LOG_ERROR, "the filter chain has %zu filters, at most %d fit", n, CHAIN_MAX);
        abort(); /* a build mistake, not a runtime condition */
    }
    for (size_t i = 0; i < n; i++) {
        chain_off[i] = off;
        off += (filters[i]->ctx_size + align - 1) / align * align;
    }
    chain_filters = filters;
    chain_n = n;
    chain_ctx_size = off;
}

static int chain_index(const sg_filter_ops_t *f)
{
    for (size_t i = 0; i < chain_n; i++)
        if (chain_filters[i] == f)
            return (int)i;
    return -1;
}

static void *chain_ctx(sg_req_t *r, size_t i)
{
    if (chain_filters[i]->ctx_size == 0)
        return NULL;
    if (r->flt_ctx == NULL && (r->flt_ctx = sg_pool_calloc(&r->pool, chain_ctx_size)) == NULL)
        return NULL;
    return (char *)r->flt_ctx + chain_off[i];
}

void *sg_flt_ctx(sg_req_t *r, const sg_filter_ops_t *f)
{
    int i = chain_index(f);

    return i < 0 ? NULL : chain_ctx(r, (size_t)i);
}

const void *sg_flt_ctx_peek(const sg_req_t *r, const sg_filter_ops_t *f)
{
    int i = chain_index(f);

    if (i < 0 || f->ctx_size == 0 || r->flt_ctx == NULL)
        return NULL;
    return (const char *)r->flt_ctx + chain_off[i];
}

void *sg_flt_gen(const sg_req_t *r, const sg_filter_ops_t *f)
{
    int i = chain_index(f);

    return i < 0 || (size_t)i >= r->gen->nflt_gen ? NULL : r->gen->flt_gen[i];
}

int sg_chain_gen_init(sg_gen_t *g, char *err, size_t errlen)
{
    if (chain_n == 0)
        return SG_OK;
    g->flt_gen = calloc(chain_n, sizeof(*g->flt_gen));
    if (g->flt_gen == NULL) {
        snprintf(err, errlen, "%s: out of memory", g->conf->file);
        return SG_ENOMEM;
    }
    g->nflt_gen = chain_n;
    for (size_t i = 0; i < chain_n; i++)
        if (chain_filters[i]->gen_init != NULL &&
            chain_filters[i]->gen_init(g, &g->flt_gen[i], err, errlen) != SG_OK)
            return SG_ERR;
    return SG_OK;
}

void sg_chain_gen_deinit(sg_gen_t *g)
{
    /* A generation is built and freed with the same table: sg_chain_compose runs once,
     * before the first one. */
    for (size_t i = 0; i < g->nflt_gen; i++)
        if (chain_filters[i]->gen_deinit != NULL)
            chain_filters[i]->gen_deinit(g->flt_gen[i]);
    free(g->flt_gen);
    g->flt_gen = NULL;
    g->nflt_gen = 0;
}

int sg_chain_run(sg_req_t *r, int phase)
{
    int (*hook)(sg_req_t *, void *);
    void *ctx;
    int rv;

    for (; chain_filters[r->flt_next] != NULL; r->flt_next++) {
        const sg_filter_ops_t *f = chain_filters[r->flt_next];

        hook = phase == SG_FLT_PHASE_HEADERS ? f->on_request_headers : f->on_request_body;
        if (hook == NULL)
            continue;
        ctx = chain_ctx(r, r->flt_next);
        if (f->ctx_size != 0 && ctx == NULL)
            return SG_ENOMEM;
        rv = hook(r, ctx);
        if (rv != SG_FLT_NEXT)
            return rv; /* WAIT resumes at this same filter */
    }
    r->flt_next = 0;
    return SG_FLT_NEXT;
}

void sg_chain_response(sg_req_t *r)
{
    for (size_t i = 0; chain_filters[i] != NULL; i++) {
        const sg_filter_ops_t *f = chain_filters[i];
        void *ctx;

        if (f->on_response == NULL)
            continue;
        /* The filter that asked for direct mode has its context: a missing one is not it. */
        if ((ctx = chain_ctx(r, i)) == NULL && f->ctx_size != 0)
            continue;
        f->on_response(r, ctx);
    }
}

void sg_chain_done(sg_req_t *r)
{
    for (size_t i = 0; chain_filters[i] != NULL; i++) {
        const sg_filter_ops_t *f = chain_filters[i];
        void *ctx;

        if (f->on_done == NULL)
            continue;
        /* No memory for the contexts: no hook ran with one, so there is nothing to end. */
        if ((ctx = chain_ctx(r, i)) == NULL && f->ctx_size != 0)
            continue;
        f->on_done(r, ctx);
    }
}

void sg_chain_thread_exit(void)
{
    for (size_t i = 0; chain_filters[i] != NULL; i++)
        if (chain_filters[i]->thread_exit != NULL)
            chain_filters[i]->thread_exit();
}
