/*
 * filters/flt_batch.h - what the batch filter lets the audit read: the parts a
 * stop-test was sent as, and how each ended.
 */
#ifndef SG_FLT_BATCH_H
#define SG_FLT_BATCH_H

#include "filters/filter.h"

extern const sg_filter_ops_t sg_flt_batch;

/* The parts of a split stop-test, for the audit: fills part i and returns how many there
 * are (0 when the request was not sent as parts). */
size_t sg_flt_batch_parts(const sg_req_t *r, size_t i, int *status, const char **task,
                          const char **fault, unsigned long long *duration_ms);
/* Why part i got no answer from the upstream ("upstream timeout", ...), or NULL. */
const char *sg_flt_batch_part_error(const sg_req_t *r, size_t i);

#endif
