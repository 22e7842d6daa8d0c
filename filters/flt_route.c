/*
 * filters/flt_route.c - the first filter: canonicalise the request target and
 * recognise the guarded routes (docs/design.md "Routes").
 *
 * Every request passes here, guarded or not: a target that cannot be made
 * unambiguous is refused (400 InvalidRequest), and the canonical form replaces
 * the client's, so the upstream sees exactly what the checks saw. On a guarded
 * route only POST reaches the method (405 otherwise). With routes.unmatched =
 * "deny" every other path is refused with NoPermission.
 *
 * It also reads X-Dry-Run (docs/design.md "Dry run"): the one place that decides whether
 * a request is a rehearsal, before any other check, so that every later filter and the
 * core see r->dry_run from the start.
 */
#include "filters/canon.h"
#include "filters/filter.h"
#include "filters/ops.h"

/* X-Dry-Run: absent or "false", a normal request; "true" (each in any case), a dry run
 * of a replication operation. Anything else is refused before any check, with nothing
 * forwarded: a client that asked for a rehearsal in a way the gateway cannot read, or on a
 * path that is not a replication operation (a task query, a forwarded path: no check there
 * could be rehearsed), must never cause the real thing. Several X-Dry-Run fields (or one
 * "true, false") are ambiguous and refused the same way. */
static int route_dry_run(sg_req_t *r)
{
    const sg_header_t *h = sg_headers_get(&r->headers, "x-dry-run");
    const char *why = NULL;

    if (h == NULL)
        return SG_FLT_NEXT;
    if (sg_headers_count(&r->headers, "x-dry-run") > 1)
        why = "X-Dry-Run is given more than once.";
    else if (sg_strcaseeq(h->value.p, h->value.n, "false", 5))
        return SG_FLT_NEXT;
    else if (!sg_strcaseeq(h->value.p, h->value.n, "true", 4))
        why = "X-Dry-Run must be true or false.";
    else if (sg_op_of_route(r->route) == NULL)
        why = "X-Dry-Run applies only to the replication operations; nothing was forwarded.";
    else {
        r->dry_run = 1;
        return SG_FLT_NEXT;
    }
    r->reason = why;
    r->term = "PR";
    sg_req_fault(r, 400, "InvalidRequest", why);
    return SG_FLT_REPLIED;
}

static int route_on_request_headers(sg_req_t *r, void *ctx)
{
    sg_canon_t cn;
    const char *why = "the request target is not valid";
    int rv;

    rv = sg_canon_target(&r->pool, r->path.p, r->path.n, &cn, &why);
    if (rv == -2)
        return SG_ENOMEM;
    if (rv < 0) {
        /* A target that names the stop-test method is audited even when refused. */
        r->stop_attempt = sg_canon_mentions_stop(&r->pool, r->path.p, r->path.n);
        r->term = "PR";
        sg_req_fault(r, 400, "InvalidRequest", why);
        return SG_FLT_REPLIED;
    }
    r->path.p = cn.path;
    r->path.n = cn.path_len;
    r->routed = 1;
    if (cn.route == SG_ROUTE_OTHER) {
        if (r->conf->routes.unmatched == SG_ROUTE_DENY) {
            r->decision = SG_DECISION_DENY; /* route policy refused it */
            r->term = "PR";
            sg_req_fault(r, 500, "NoPermission", "This path is not allowed through the gateway.");
            return SG_FLT_REPLIED;
        }
        return route_dry_run(r);
    }
    r->route = (int)cn.route;
    r->guarded = 1;
    /* NUL-terminated copies: they end up in faults and audit records as C strings. */
    r->release.p = sg_pool_strndup(&r->pool, cn.release.p, cn.release.n);
    r->release.n = cn.release.n;
    r->moid.p = sg_pool_strndup(&r->pool, cn.moid.p, cn.moid.n);
    r->moid.n = cn.moid.n;
    if (r->release.p == NULL || r->moid.p == NULL)
        return SG_ENOMEM;
    /* Before the method: a dry run refused for its method is recorded as a dry run. */
    if ((rv = route_dry_run(r)) != SG_FLT_NEXT)
        return rv;
    if (!(r->method.n == 4 && memcmp(r->method.p, "POST", 4) == 0)) {
        /* Methods are case-sensitive (RFC 9110 9.1): "post" is not POST. */
        r->term = "PR";
        if (sg_headers_add(&r->pool, &r->res.headers, "allow", 5, "POST", 4) != SG_OK)
            return SG_ENOMEM;
        sg_req_fault(r, 405, "InvalidRequest", "Only POST invokes this method.");
        return SG_FLT_REPLIED;
    }
    return SG_FLT_NEXT;
}

const sg_filter_ops_t sg_flt_route = {
    .name = "route",
    .on_request_headers = route_on_request_headers,
};
