/*
 * filters/flt_change.h - change control (filters/flt_change.c), and the one place the
 * operation an approval binds is taken from a request, for the gateway and
 * smsguard-approve(1) alike.
 */
#ifndef SG_FLT_CHANGE_H
#define SG_FLT_CHANGE_H

#include "filters/stopreq.h"
#include "policy/approval.h"
#include "proxy/proxy.h"

extern const struct sg_filter_ops_s sg_flt_change;

/*
 * The deployment's override (`operations`) of OP, the row of R's route, in R's generation;
 * NULL when there is none. The one place a request finds its operation's override: the
 * authorisation (its privilege) and the change checks read it.
 */
const sg_conf_operation_t *sg_change_operation(const sg_req_t *r, const sg_op_t *op);

/*
 * The operation of a validated request for sg_approval_digest(): UPSTREAM the upstream's
 * name, RELEASE and PROVIDER from the canonical path, the method, groups and force of SR,
 * TICKET the change ticket (NULL: none). Strings and the group array are in POOL; the group
 * ids point into SR. Returns SG_OK or SG_ENOMEM.
 */
int sg_change_approval_op(sg_pool_t *pool, const char *upstream, sg_str_t release,
                          sg_str_t provider, const sg_stopreq_t *sr, const char *ticket,
                          sg_approval_op_t *op);

#endif
