/*
 * filters/flt_authz.c - authorise an authenticated caller (docs/design.md "The chain on guarded routes").
 *
 * Runs after validation, because the decision needs the body's fault domains
 * and force. The action judged is the operation's row's (filters/ops.c), its privilege the
 * deployment's override when `operations` gives one. The decision itself is policy/'s (pure); this file only gathers
 * the inputs and turns a deny into vCenter's NoPermission fault.
 */
#include "filters/canon.h"
#include "filters/flt_authn.h"
#include "filters/flt_change.h"
#include "filters/flt_validate.h"

static int authz_on_request_body(sg_req_t *r, void *ctx)
{
    const sg_stopreq_t *sr = sg_flt_validate_stop(r);
    const sg_op_t *op;
    const sg_conf_operation_t *oc;
    sg_pol_request_t q = {0};
    sg_pol_decision_t d = {0};
    sg_str_t *fds = NULL;
    int rv;

    if (!r->guarded)
        return SG_FLT_NEXT;
    if ((op = sg_op_of_route(r->route)) != NULL) {
        if (sr == NULL || sr->op != op)
            return SG_ERR; /* validate must have run: fail closed */
        fds = sg_pool_alloc(&r->pool, sizeof(*fds) * (sr->ngroups ? sr->ngroups : 1));
        if (fds == NULL)
            return SG_ENOMEM;
        for (size_t i = 0; i < sr->ngroups; i++)
            fds[i] = sr->groups[i].fault_domain;
        if (sr->all) {
            /* A query of every group reaches every fault domain of the provider: only a
             * scope that covers every one ("*") allows it. */
            fds[0].p = "*";
            fds[0].n = 1;
        }
        q.action = op->action;
        q.provider = r->moid;
        q.fault_domains = fds;
        q.nfault_domains = sr->all ? 1 : sr->ngroups;
        q.force = sr->force;
        /* A deployment may ask another privilege for the operation (operations.privilege). */
        oc = sg_change_operation(r, op);
        q.privilege = oc != NULL ? oc->privilege : NULL;
    } else {
        q.action = SG_POL_TASK_QUERY;
    }
    /* The vCenter sg_req_check routed to: the tenant's scope there decides. A composite
     * handle made on another vCenter is refused later by flt_batch, so a task query is
     * judged by the scope of the vCenter that will answer it. */
    q.upstream = r->upstream != NULL ? r->upstream->name : NULL;
    rv = sg_pol_authorize(sg_flt_authn_policy(r), &r->pool, sg_flt_authn_principal(r), &q, &d);
    if (rv == SG_ENOMEM)
        return SG_ENOMEM;
    r->reason = d.reason;
    if (rv == 0 && d.allow) {
        r->decision = SG_DECISION_ALLOW; /* metrics and access log */
        return SG_FLT_NEXT;
    }

    {
        const char *priv = d.privilege_id  ? d.privilege_id
                           : q.privilege   ? q.privilege
                           : op != NULL    ? op->privilege
                                           : "StorageViews.ConfigureService";
        sg_fault_t f = {.type = "NoPermission",
                        .message = "Permission to perform this operation was denied.",
                        .privilege_id = priv,
                        .missing_privileges = 1,
                        .object_type = op != NULL ? "VasaProvider" : "SmsTask",
                        .object_value = r->moid.p};

        r->decision = SG_DECISION_DENY;
        r->term = "PZ";
        sg_log(SG_LOG_DEBUG, "req=%s denied: %s", r->request_id, d.reason ? d.reason : "-");
        sg_req_fault_ex(r, 500, &f);
    }
    return SG_FLT_REPLIED;
}

const sg_filter_ops_t sg_flt_authz = {
    .name = "authorise",
    .on_request_body = authz_on_request_body,
};
