/*
 * proxy/subreq.c - sub-requests: a request that sends more requests upstream
 * on its own behalf (nginx subrequests), for batch splitting and composite
 * task queries (filters/flt_batch.c).
 *
 * A child shares its parent's connection, generation and headers, goes
 * straight to the upstream pool (the parent already passed the chain) and
 * collects its answer in memory instead of sending it to a client. When the
 * answer is complete, or the upstream failed, the child is queued on its
 * worker and its callback runs from the loop's prepare watcher: never from
 * inside an upstream callback, so the callback may spawn more children, reply
 * to the parent or resume its chain. A parent that goes away first takes its
 * pending children with it; their callbacks never run.
 *
 * A batch of one part needs none of this: it goes upstream as the request itself
 * (sg_subreq_direct), its answer held to the same bound and handed to the chain
 * whole, so the batch filter answers as for a part (and can still re-split after
 * TooMany) without a second request object, body or trip through the loop.
 */
#include "proxy/proxy.h"

#include <stdlib.h>

/* A sub-request's answer is buffered whole (the parent parses it), so it is capped:
 * at limits.max_body_bytes, the same bound as a request body (docs/design.md "Threads":
 * every buffer has a limit), and never above 8 MiB. A larger answer fails the part
 * like a broken upstream ("upstream response too large": 500 ProviderUnavailable on
 * the stop-test route, see sg_req_up_body); nothing truncated is ever parsed. */
#define SUBREQ_ANSWER_MAX (8u * 1024 * 1024)

static size_t subreq_answer_max(const sg_conf_t *conf)
{
    return (size_t)SG_MIN((uint64_t)conf->limits.max_body_bytes, (uint64_t)SUBREQ_ANSWER_MAX);
}

static void subreq_finish(sg_req_t *r)
{
    sg_worker_t *w = r->conn->w;

    if (r->sub_done)
        return;
    r->sub_done = 1;
    r->sub_next = w->sub_done;
    w->sub_done = r;
}

static int subreq_send_headers(sg_req_t *r)
{
    return SG_OK; /* r->res holds status and headers */
}

static int subreq_send_body(sg_req_t *r, const char *p, size_t n)
{
    /* Upstream bodies are captured by sg_req_up_body; local answers (faults) here. */
    if (r->local_reply && sg_buf_append(&r->res_body, p, n) != SG_OK)
        return SG_ETOOBIG;
    return SG_OK;
}

static int subreq_send_end(sg_req_t *r)
{
    subreq_finish(r);
    return SG_OK;
}

static size_t subreq_backlog(sg_req_t *r)
{
    return 0; /* memory, bounded (see SUBREQ_ANSWER_MAX): never slow */
}

static void subreq_abort(sg_req_t *r)
{
    r->aborted = 1;
    subreq_finish(r);
}

static const sg_front_ops_t subreq_front = {
    .send_headers = subreq_send_headers,
    .send_body = subreq_send_body,
    .send_end = subreq_send_end,
    .backlog = subreq_backlog,
    .abort = subreq_abort,
};

sg_req_t *sg_subreq_spawn(sg_req_t *parent, const char *path, size_t pathlen, const char *body,
                          size_t bodylen, sg_subreq_cb cb, void *arg)
{
    sg_req_t *r = sg_req_new(parent->conn, &subreq_front);

    if (r == NULL)
        return NULL;
    /* The parent's generation, not the worker's newest: one request, one configuration. */
    sg_gen_unref(r->gen);
    r->gen = sg_gen_ref(parent->gen);
    r->conf = parent->conf;
    r->upstream = parent->upstream;
    r->up_idx = parent->up_idx;
    r->is_child = 1;
    r->parent = parent;
    r->sub_cb = cb;
    r->sub_arg = arg;
    r->http_major = 1;
    r->http_minor = 1;
    r->method.p = "POST";
    r->method.n = 4;
    r->path.p = sg_pool_strndup(&r->pool, path, pathlen);
    r->path.n = pathlen;
    r->scheme = parent->scheme; /* the parent passed sg_req_check: all four are set */
    r->authority = parent->authority;
    r->headers = parent->headers; /* the parent's pool outlives its children */
    r->guarded = 1;
    r->capture = 1;
    r->content_length = (int64_t)bodylen;
    sg_pool_cache_buf_dispose(&r->conn->w->blocks, &r->res_body);
    sg_buf_init(&r->res_body, subreq_answer_max(parent->conf));
    sg_pool_cache_buf_dispose(&r->conn->w->blocks, &r->body);
    sg_buf_init(&r->body, bodylen + 1);
    if (r->path.p == NULL || sg_buf_append(&r->body, body, bodylen) != SG_OK) {
        sg_req_free(r);
        return NULL;
    }
    r->sub_sibling = parent->children;
    parent->children = r;
    parent->nchildren++;
    r->start_ms = sg_now_ms();
    sg_metrics_batch_part(r);
    sg_up_forward(r);
    return r;
}

/* The part is the request: nothing to spawn. As for a sub-request, the answer is gathered
 * whole within the same bound (over it, the exchange fails as "upstream response too
 * large", never cut short) and counted as a part; req.c holds it from the client. */
void sg_subreq_direct(sg_req_t *r)
{
    r->res_hold = 1;
    r->capture = 1;
    sg_pool_cache_buf_dispose(&r->conn->w->blocks, &r->res_body); /* empty: not begun */
    sg_buf_init(&r->res_body, subreq_answer_max(r->conf));
    sg_metrics_batch_part(r);
}

static void subreq_unlink(sg_req_t *r)
{
    sg_req_t **pp;

    if (r->parent == NULL)
        return;
    for (pp = &r->parent->children; *pp != NULL; pp = &(*pp)->sub_sibling)
        if (*pp == r) {
            *pp = r->sub_sibling;
            r->parent->nchildren--;
            break;
        }
    r->parent = NULL;
}

void sg_subreq_orphan_all(sg_req_t *parent)
{
    sg_req_t *c;

    while ((c = parent->children) != NULL) {
        subreq_unlink(c);
        if (!c->sub_done)
            sg_req_free(c); /* not queued anywhere: nobody else holds it */
        /* done children sit in the worker's queue and are freed from there */
    }
}

void sg__subreq_run_done(sg_worker_t *w)
{
    sg_req_t *r;

    while ((r = w->sub_done) != NULL) {
        sg_req_t *parent = r->parent;

        w->sub_done = r->sub_next;
        subreq_unlink(r);
        if (parent != NULL && r->sub_cb != NULL)
            r->sub_cb(parent, r, r->sub_arg);
        sg_req_free(r);
    }
}
