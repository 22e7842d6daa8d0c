/*
 * filters/filter.h - the interface every stop-test filter implements.
 *
 * A filter is one file with a static sg_filter_ops_t (HAProxy flt_ops, nginx
 * module ctx). The chain (filters/chain.c) calls the hooks in a fixed order:
 * route -> authenticate -> validate -> authorise -> audit -> batch. A NULL hook
 * passes through. Filters see only sg_req_t (method, path, authority, headers,
 * body, response); they know nothing of TLS or HTTP framing, and upstream is
 * contacted only after every request hook returned SG_FLT_NEXT.
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

typedef struct {
    const char *name;
    size_t ctx_size; /* zeroed per-request state, from r->pool */
    int (*on_request_headers)(sg_req_t *r, void *ctx);
    int (*on_request_body)(sg_req_t *r, void *ctx);
    void (*on_done)(sg_req_t *r, void *ctx);     /* always, once, before r is freed */
    void (*thread_exit)(void);                   /* a worker thread ends: free its state */
} sg_filter_ops_t;

/* Runs the hooks of `phase` from r->flt_next on. Returns SG_FLT_NEXT when every
 * filter passed (r->flt_next is reset for the next phase), SG_FLT_WAIT,
 * SG_FLT_REPLIED or a negative SG_E* code. */
int sg_chain_run(sg_req_t *r, int phase);
void sg_chain_done(sg_req_t *r);
void sg_chain_thread_exit(void);
/* The parts of a split stop-test (flt_batch.c), for the audit: fills part i and returns
 * how many there are (0 when the request was not sent as parts). */
size_t sg_flt_batch_parts(const sg_req_t *r, size_t i, int *status, const char **task,
                          const char **fault, unsigned long long *duration_ms);
/* Why part i got no answer from the upstream ("upstream timeout", ...), or NULL. */
const char *sg_flt_batch_part_error(const sg_req_t *r, size_t i);
/* Re-enter the chain after a filter returned SG_FLT_WAIT (req.c). */
void sg_req_resume(sg_req_t *r);

#endif
