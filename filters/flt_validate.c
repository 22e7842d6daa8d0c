/*
 * filters/flt_validate.c - strict validation of the stop-test body (DESIGN.md
 * point 4) before anything is forwarded.
 *
 * Headers first (media type, no content coding), so a body we would refuse is
 * never parsed; then the body, parsed once (filters/stopreq.c) and replaced by
 * its re-serialised form: the upstream receives what was validated, never the
 * client's raw bytes.
 */
#include "filters/filter.h"
#include "filters/stopreq.h"
#include "filters/canon.h"

#include <strings.h>

/* "application/json", optionally followed by parameters (RFC 9110 8.3.1). */
static int validate_is_json(const sg_header_t *ct)
{
    const char *p = ct->value.p, *e = p + ct->value.n;
    size_t n;

    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    n = (size_t)(e - p);
    if (n < 16 || strncasecmp(p, "application/json", 16) != 0)
        return 0;
    p += 16;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p == e || *p == ';';
}

static int validate_on_request_headers(sg_req_t *r, void *ctx)
{
    const sg_header_t *h;

    if (r->route != SG_ROUTE_STOP_TEST)
        return SG_FLT_NEXT;
    /* Exactly one of each: with two lines, we and the upstream could read different ones. */
    h = sg_headers_get(&r->headers, "content-type");
    if (h == NULL || !validate_is_json(h) || sg_headers_count(&r->headers, "content-type") != 1) {
        r->term = "PR";
        sg_req_fault(r, 500, "InvalidRequest", "The request body must be application/json.");
        return SG_FLT_REPLIED;
    }
    h = sg_headers_get(&r->headers, "content-encoding");
    if (h != NULL && (!sg_strcaseeq(h->value.p, h->value.n, "identity", 8) ||
                      sg_headers_count(&r->headers, "content-encoding") != 1)) {
        /* A compressed body is one we cannot check without inflating it. */
        r->term = "PR";
        sg_req_fault(r, 500, "InvalidRequest", "The request body must not be encoded.");
        return SG_FLT_REPLIED;
    }
    return SG_FLT_NEXT;
}

static int validate_on_request_body(sg_req_t *r, void *ctx)
{
    sg_stopreq_fault_t fault = {0};
    sg_stopreq_t *sr;
    sg_buf_t out;
    int rv;

    if (r->route != SG_ROUTE_STOP_TEST)
        return SG_FLT_NEXT;
    sr = sg_pool_calloc(&r->pool, sizeof(*sr));
    if (sr == NULL)
        return SG_ENOMEM;
    rv = sg_stopreq_parse(&r->pool, sg_buf_head(&r->body), sg_buf_avail(&r->body), sr, &fault);
    if (rv == -2)
        return SG_ENOMEM;
    if (rv < 0) {
        sg_fault_t f = {.type = fault.type,
                        .message = fault.message,
                        .invalid_property = fault.invalid_property};

        r->term = "PR";
        sg_req_fault_ex(r, fault.status ? fault.status : 500, &f);
        return SG_FLT_REPLIED;
    }
    /* Escapes are re-written, so the output may differ a little in size. */
    sg_buf_init(&out, sg_buf_avail(&r->body) + 65536);
    if (sg_stopreq_serialize(sr, 0, sr->ngroups, &out) != 0) {
        sg_buf_dispose(&out);
        return SG_ENOMEM;
    }
    sg_buf_dispose(&r->body);
    r->body = out;
    r->stop = sr;
    return SG_FLT_NEXT;
}

const sg_filter_ops_t sg_flt_validate = {
    .name = "validate",
    .on_request_headers = validate_on_request_headers,
    .on_request_body = validate_on_request_body,
};
