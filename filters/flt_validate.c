/*
 * filters/flt_validate.c - strict validation of the guarded bodies (docs/design.md
 * "Bodies of the guarded routes") before anything is forwarded.
 *
 * Headers first (media type, no content coding), so a body we would refuse is
 * never parsed; then the body, parsed once (filters/stopreq.c) and replaced by
 * its re-serialised form: the upstream receives what was validated, never the
 * client's raw bytes. The body of a replication operation (the stop-test and
 * every other row of filters/ops.c) is checked against its row's schema; an
 * SmsTask query body (none, or the _typeName and _this govmomi sends) for the
 * target it names. A _this is accepted only when it names the path's object and
 * is not forwarded (filters/stopreq.h says why).
 */
#include "filters/flt_validate.h"
#include "filters/canon.h"

typedef struct {
    sg_stopreq_t *stop; /* the accepted body of a replication operation, in r->pool */
} validate_ctx_t;

const sg_stopreq_t *sg_flt_validate_stop(const sg_req_t *r)
{
    const validate_ctx_t *ctx = sg_flt_ctx_peek(r, &sg_flt_validate);

    return ctx != NULL ? ctx->stop : NULL;
}

static int validate_guarded(const sg_req_t *r)
{
    return sg_op_of_route(r->route) != NULL || r->route == SG_ROUTE_TASK_INFO ||
           r->route == SG_ROUTE_TASK_RESULT;
}

static int validate_on_request_headers(sg_req_t *r, void *ctx)
{
    const sg_header_t *h;

    if (!validate_guarded(r))
        return SG_FLT_NEXT;
    /* application/json, or no Content-Type at all: govmomi's VI/JSON transport sets
     * none (a Go request built on a buffer has none), vim_rs none on a bare query,
     * and a body without one is JSON to vCenter. Exactly one line: with two, we and
     * the upstream could read different ones. */
    h = sg_headers_get(&r->headers, "content-type");
    if (h != NULL && (!sg_stopreq_media_type_ok(h->value.p, h->value.n) ||
                      sg_headers_count(&r->headers, "content-type") != 1)) {
        r->term = "PR";
        r->reason = "The request body must be application/json.";
        sg_req_fault(r, 500, "InvalidRequest", r->reason);
        return SG_FLT_REPLIED;
    }
    h = sg_headers_get(&r->headers, "content-encoding");
    if (h != NULL && (!sg_strcaseeq(h->value.p, h->value.n, "identity", 8) ||
                      sg_headers_count(&r->headers, "content-encoding") != 1)) {
        /* A compressed body is one we cannot check without inflating it. */
        r->term = "PR";
        r->reason = "The request body must not be encoded.";
        sg_req_fault(r, 500, "InvalidRequest", r->reason);
        return SG_FLT_REPLIED;
    }
    return SG_FLT_NEXT;
}

static int validate_refuse(sg_req_t *r, const sg_stopreq_fault_t *fault)
{
    sg_fault_t f = {.type = fault->type,
                    .message = fault->message,
                    .invalid_property = fault->invalid_property};

    r->term = "PR";
    r->reason = fault->message; /* static or from r->pool; never client bytes */
    sg_req_fault_ex(r, fault->status ? fault->status : 500, &f);
    return SG_FLT_REPLIED;
}

/*
 * The forwarded body is the one written here, and it is labelled as such: the one
 * Content-Type line becomes application/json (a client's parameters described its
 * bytes, not ours), and a body that came without one gets it, as a sender that
 * generates content should (RFC 9110 8.3).
 */
static int validate_label_json(sg_req_t *r)
{
    static const char json[] = "application/json";

    for (size_t i = 0; i < r->headers.n; i++) {
        sg_header_t *h = &r->headers.v[i];

        if (sg_strcaseeq(h->name.p, h->name.n, "content-type", 12)) {
            h->value.p = json;
            h->value.n = sizeof(json) - 1;
            return SG_OK;
        }
    }
    if (sg_buf_avail(&r->body) == 0)
        return SG_OK;
    return sg_headers_add(&r->pool, &r->headers, "content-type", 12, json, sizeof(json) - 1);
}

/* Replaces the client's body with out (taken over). The client's body may be a block of
 * the worker's free list (proxy/req.c): it goes back there. */
static int validate_replace_body(sg_req_t *r, sg_buf_t *out)
{
    sg_pool_cache_buf_dispose(&r->conn->w->blocks, &r->body);
    r->body = *out;
    return validate_label_json(r) == SG_OK ? SG_FLT_NEXT : SG_ENOMEM;
}

static int validate_op(sg_req_t *r, validate_ctx_t *ctx, const sg_op_t *op)
{
    sg_stopreq_fault_t fault;
    sg_stopreq_t *sr;
    sg_buf_t out;
    int rv;

    sr = sg_pool_calloc(&r->pool, sizeof(*sr));
    if (sr == NULL)
        return SG_ENOMEM;
    rv = sg_stopreq_parse_op(&r->pool, op, sg_buf_head(&r->body), sg_buf_avail(&r->body),
                             &r->moid, sr, &fault);
    if (rv == -2)
        return SG_ENOMEM;
    if (rv < 0)
        return validate_refuse(r, &fault);
    /* Escapes are re-written, so the output may differ a little in size. */
    sg_buf_init(&out, sg_buf_avail(&r->body) + 65536);
    sg_pool_cache_buf_seed(&r->conn->w->blocks, &out);
    if (sg_stopreq_serialize(sr, 0, sr->ngroups, &out) != 0) {
        sg_pool_cache_buf_dispose(&r->conn->w->blocks, &out);
        return SG_ENOMEM;
    }
    ctx->stop = sr;
    return validate_replace_body(r, &out);
}

static int validate_query(sg_req_t *r)
{
    const char *method = r->route == SG_ROUTE_TASK_INFO ? "QuerySmsTaskInfo" : "QuerySmsTaskResult";
    size_t n = sg_buf_avail(&r->body);
    sg_stopreq_fault_t fault;
    sg_stopreq_query_t q;
    sg_buf_t out;
    int rv;

    rv = sg_stopreq_query_parse(&r->pool, sg_buf_head(&r->body), n, method, &r->moid, &q, &fault);
    if (rv == -2)
        return SG_ENOMEM;
    if (rv < 0)
        return validate_refuse(r, &fault);
    /* A member the methods do not declare is passed on, and a string of DEL bytes in
     * it is written \u007f: six bytes out for one in, at most. */
    sg_buf_init(&out, 6 * n + 2);
    if (sg_stopreq_query_serialize(&q, &out) != SG_OK) {
        sg_buf_dispose(&out);
        return SG_ENOMEM;
    }
    return validate_replace_body(r, &out);
}

static int validate_on_request_body(sg_req_t *r, void *ctx)
{
    const sg_op_t *op = sg_op_of_route(r->route);

    if (op != NULL)
        return validate_op(r, ctx, op);
    if (r->route == SG_ROUTE_TASK_INFO || r->route == SG_ROUTE_TASK_RESULT)
        return validate_query(r);
    return SG_FLT_NEXT;
}

const sg_filter_ops_t sg_flt_validate = {
    .name = "validate",
    .ctx_size = sizeof(validate_ctx_t),
    .on_request_headers = validate_on_request_headers,
    .on_request_body = validate_on_request_body,
};
