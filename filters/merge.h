/*
 * filters/merge.h - merges the upstream answers for the parts of a composite
 * SmsTask (DESIGN.md "Batch splitting and composite tasks", issue 6).
 *
 * smsguard splits a large TestFailoverReplicationGroupStop_Task batch into
 * several upstream tasks and hands the client one composite SmsTask. When the
 * client queries it, smsguard queries every part upstream and merges the
 * answers here into a single SmsTaskInfo (QuerySmsTaskInfo) or a single
 * ArrayOfGroupOperationResult (QuerySmsTaskResult). Everything is parsed with
 * filters/json.h into the caller's pool; nothing is kept between calls.
 */
#ifndef SG_MERGE_H
#define SG_MERGE_H

#include "proxy/common.h"

/*
 * Both functions append to out and, on any failure, leave out as it was. Bodies are parsed
 * strictly (filters/json.h, nesting up to 64) into pool. Besides the codes listed below they
 * return SG_ETOOBIG when out's maximum is reached, and SG_EPROTO when n is 0.
 *
 * Task info, as implemented:
 *   - a part with status 0 is "failed at submission": its body must be one JSON object (the
 *     fault); a part with status 200 must be an object, `_typeName` "SmsTaskInfo" when present,
 *     `state` one of queued/running/success/error, `progress` a number, the times strings and
 *     `error` an object (each optional; null counts as absent); anything else is SG_EPROTO;
 *   - state: running if any part runs, else queued if any is queued, else error if any part
 *     failed (at submission or state error), else success;
 *   - progress (only when running/queued): integer mean over all parts, rounded down; a finished
 *     or failed part counts 100, a running/queued part its progress clamped to 0..100 (0 when
 *     absent);
 *   - startTime: the smallest of the parts' (byte comparison); completionTime: the largest, only
 *     when no part is queued or running;
 *   - error (only when the state is error): the fault of the first failing part, in the parts'
 *     order, that carries one (the submission fault, or the part's `error`);
 *   - result (only when success/error and some part has a non-null `result`):
 *     {"_typeName":"ArrayOfGroupOperationResult","_value":[...]}: for each part in order, the
 *     items of its result when that is an object with a `_typeName` starting "ArrayOf" and a
 *     `_value` array, else the result itself as one entry; each entry written as it came.
 * Task result: a part answering 204, an empty body or `null` has no result yet; other 200 bodies
 * must be JSON (else SG_EPROTO) and contribute entries as for task info.
 */

typedef struct {
    int status;       /* upstream HTTP status of this part's query; 0 when the part failed at
                       * submission */
    const char *body; /* the part's answer body (may be empty), or its submission fault JSON
                       * when status 0 */
    size_t len;
} sg_merge_part_t;

/* QuerySmsTaskInfo on a composite task: parts in the client's order. Writes the merged
 * SmsTaskInfo JSON into out and its HTTP status into *status (200), or, when a part's query
 * itself failed (status != 200 and != 0), that part's answer unchanged (its status and body) —
 * the first such part.
 * handle: the composite id (goes into "key" and
 * "task":{"_typeName":"ManagedObjectReference","type":"SmsTask","value":handle});
 * provider: for "object" (MoRef VasaProvider). Returns SG_OK, SG_EPROTO (a part's 200 body is
 * not an SmsTaskInfo), SG_ENOMEM. */
int sg_merge_task_info(sg_pool_t *pool, const char *handle, const char *provider,
                       const sg_merge_part_t *parts, size_t n, sg_buf_t *out, int *status);

/* QuerySmsTaskResult: 204 (empty out) while any part has no result yet (a part answered 204 or
 * an empty body) and no part failed; otherwise 200 with
 * {"_typeName":"ArrayOfGroupOperationResult","_value":[...]} holding the parts' `_value`
 * entries concatenated in order (each entry kept as it came); a part that failed at submission
 * contributes nothing; a failed part query is passed through as for task info. */
int sg_merge_task_result(sg_pool_t *pool, const sg_merge_part_t *parts, size_t n, sg_buf_t *out,
                         int *status);

#endif
