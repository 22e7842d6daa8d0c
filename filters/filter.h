/*
 * filters/filter.h - the interface every stop-test filter implements, and the chain
 * runner the core calls.
 *
 * A filter is one file with a static sg_filter_ops_t (HAProxy flt_ops, nginx
 * module ctx). The chain (filters/chain.c) calls the hooks in the order of the
 * table main.c composes it from (sg_chain_order: route -> authenticate ->
 * validate -> authorise -> change control -> audit -> batch). A NULL hook passes through. Filters
 * see only sg_req_t (method, path, authority, headers, body, response) and the
 * neutral annotation on it (route, decision, principal summary, fault, reason);
 * they know nothing of TLS or HTTP framing, and upstream is contacted only after
 * every request hook returned SG_FLT_NEXT.
 *
 * A filter owns its state: what it builds from a configuration lives in its
 * generation state (gen_init, reached with sg_flt_gen), what it keeps for one
 * request in its context (ctx_size, reached with sg_flt_ctx, also from an
 * asynchronous callback). A filter that needs another's data reads it through
 * an accessor in that filter's header (filters/flt_*.h), never through sg_req_t.
 */
#ifndef SG_FILTER_H
#define SG_FILTER_H

#include "proxy/proxy.h"

enum {
    SG_FLT_NEXT = 0,    /* go on with the next filter */
    SG_FLT_WAIT = 1,    /* async work started; call sg_req_resume(r) to re-enter this hook */
    SG_FLT_REPLIED = 2  /* the filter produced the answer (e.g. sg_req_fault) */
    /* negative SG_E*: the core answers 500 before upstream, 502 after */
};

enum { SG_FLT_PHASE_HEADERS = 0, SG_FLT_PHASE_BODY = 1 };

typedef struct sg_filter_ops_s sg_filter_ops_t;

struct sg_filter_ops_s {
    const char *name;
    size_t ctx_size; /* zeroed per-request state, from r->pool */
    /* A generation is being built (main thread, off the data path): build what the filter
     * needs from g->conf into *fgen. 0, or SG_ERR/SG_ENOMEM with "file: reason" in err;
     * gen_deinit is then still called with whatever *fgen holds. */
    int (*gen_init)(sg_gen_t *g, void **fgen, char *err, size_t errlen);
    void (*gen_deinit)(void *fgen); /* the generation's last reference went */
    int (*on_request_headers)(sg_req_t *r, void *ctx);
    int (*on_request_body)(sg_req_t *r, void *ctx);
    /* r went upstream in direct mode (sg_subreq_direct) and the exchange ended: answered
     * (r->res.status and headers, the whole body in r->res_body) or failed (r->up_error).
     * Nothing of it reached the client: the filter answers, now or later (sg_req_reply,
     * sub-requests). Called from the upstream's callback, r's connection already let go. */
    void (*on_response)(sg_req_t *r, void *ctx);
    void (*on_done)(sg_req_t *r, void *ctx); /* always, once, before r is freed */
    void (*thread_exit)(void);               /* a worker thread ends: free its state */
};

/* The gateway's chain, in its one order (filters/chain.c), NULL-terminated. */
extern const sg_filter_ops_t *const sg_chain_order[];

/* Use the NULL-terminated table of filters from now on (main.c, before the first
 * generation is built; never changed while requests run). The table is not copied. */
void sg_chain_compose(const sg_filter_ops_t *const *filters);
/* Build and free every filter's generation state (gen.c). */
int sg_chain_gen_init(sg_gen_t *g, char *err, size_t errlen);
void sg_chain_gen_deinit(sg_gen_t *g);
/* Runs the hooks of `phase` from r->flt_next on. Returns SG_FLT_NEXT when every
 * filter passed (r->flt_next is reset for the next phase), SG_FLT_WAIT,
 * SG_FLT_REPLIED or a negative SG_E* code. */
int sg_chain_run(sg_req_t *r, int phase);
/* The upstream exchange of a request in direct mode ended: the on_response hooks. */
void sg_chain_response(sg_req_t *r);
void sg_chain_done(sg_req_t *r);
void sg_chain_thread_exit(void);

/* Filter f's zeroed context for r: every filter's is made on first use by one pool
 * allocation, so an asynchronous callback reaches its filter's state with r alone. NULL
 * when f is not in the chain, has no context (ctx_size 0) or memory ran out. */
void *sg_flt_ctx(sg_req_t *r, const sg_filter_ops_t *f);
/* The same, without making it: NULL when no hook of r has run with a context yet. */
const void *sg_flt_ctx_peek(const sg_req_t *r, const sg_filter_ops_t *f);
/* What f's gen_init built for r's generation, or NULL. */
void *sg_flt_gen(const sg_req_t *r, const sg_filter_ops_t *f);

/* Re-enter the chain after a filter returned SG_FLT_WAIT (req.c). */
void sg_req_resume(sg_req_t *r);

#endif
