/*
 * filters/chain.c - the filter chain runner and its static order.
 *
 * The order is a table, not configuration: configuration may switch a filter
 * off but never reorder the checks (docs/design.md "The chain on guarded routes"). With no
 * filter enabled every request is forwarded (routes.unmatched = "forward").
 */
#include "filters/filter.h"

extern const sg_filter_ops_t sg_flt_route, sg_flt_authn, sg_flt_validate, sg_flt_authz,
    sg_flt_audit, sg_flt_batch;

/* docs/design.md order: route, authenticate, validate, authorise, audit, batch. The
 * filters still to come take their places between these. */
static const sg_filter_ops_t *const chain_filters[] = {
    &sg_flt_route,
    &sg_flt_authn,
    &sg_flt_validate,
    &sg_flt_authz,
    &sg_flt_audit,
    &sg_flt_batch,
    NULL,
};

#define CHAIN_N (SG_ARRAY_SIZE(chain_filters) - 1) /* the table ends with NULL */

static void *chain_ctx(sg_req_t *r, unsigned i)
{
    if (chain_filters[i]->ctx_size == 0)
        return NULL;
    if (r->flt_ctx == NULL) {
        r->flt_ctx = sg_pool_calloc(&r->pool, sizeof(void *) * (CHAIN_N + 1));
        if (r->flt_ctx == NULL)
            return NULL;
    }
    if (r->flt_ctx[i] == NULL)
        r->flt_ctx[i] = sg_pool_calloc(&r->pool, chain_filters[i]->ctx_size);
    return r->flt_ctx[i];
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

void sg_chain_done(sg_req_t *r)
{
    for (unsigned i = 0; chain_filters[i] != NULL; i++)
        if (chain_filters[i]->on_done != NULL)
            chain_filters[i]->on_done(r, chain_ctx(r, i));
}

void sg_chain_thread_exit(void)
{
    for (unsigned i = 0; chain_filters[i] != NULL; i++)
        if (chain_filters[i]->thread_exit != NULL)
            chain_filters[i]->thread_exit();
}
