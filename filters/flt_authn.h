/*
 * filters/flt_authn.h - what the authenticate filter lets later filters read.
 *
 * The filter owns the generation's policy (built by its gen_init from the
 * configuration's keys and rules) and, per request, the principal it
 * authenticated. Authorisation judges by both; the audit records who it was;
 * composite tasks are bound to the principal's tenant. Everything else reads
 * the neutral summary on the request (r->subject, r->tenant).
 */
#ifndef SG_FLT_AUTHN_H
#define SG_FLT_AUTHN_H

#include "filters/filter.h"
#include "policy/policy.h"

extern const sg_filter_ops_t sg_flt_authn;

/* The policy of r's generation (never NULL once the generation was built with this filter
 * in the chain). */
const sg_policy_t *sg_flt_authn_policy(const sg_req_t *r);
/* Who r authenticated as (in r->pool), or NULL: not a guarded route, or not (yet)
 * authenticated. */
const sg_principal_t *sg_flt_authn_principal(const sg_req_t *r);

#endif
