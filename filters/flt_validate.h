/*
 * filters/flt_validate.h - what the validate filter lets later filters read.
 *
 * The filter owns the guarded operation's parsed record: the body of a
 * replication operation (filters/ops.h) it validated and re-serialised
 * (filters/stopreq.h). Authorisation reads its fault
 * domains and force, the audit its groups, batch splitting slices it.
 */
#ifndef SG_FLT_VALIDATE_H
#define SG_FLT_VALIDATE_H

#include "filters/filter.h"
#include "filters/stopreq.h"

extern const sg_filter_ops_t sg_flt_validate;

/* The validated body of r's replication operation (in r->pool; ->op is its row), or NULL:
 * another route, or the body was not (yet) accepted. */
const sg_stopreq_t *sg_flt_validate_stop(const sg_req_t *r);

#endif
