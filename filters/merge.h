/*
 * filters/merge.h - merges the upstream answers for the parts of a composite
 * SmsTask (docs/design.md "Batch splitting and composite tasks").
 *
 * smsguard splits a large TestFailoverReplicationGroupStop_Task batch into
 * several upstream tasks and hands the client one composite SmsTask. When the
 * client queries it, smsguard queries every part upstream and merges the
 * answers here into a single SmsTaskInfo (QuerySmsTaskInfo) or a single
 * ArrayOfGroupOperationResult (QuerySmsTaskResult). Everything is parsed with
 * base/json.h into the caller's pool; nothing is kept between calls.
 */
#ifndef SG_MERGE_H
#define SG_MERGE_H

#include "base/base.h"

/*
 * Both functions append to out and, on any failure, leave out as it was. Bodies are parsed
 * strictly (base/json.h, nesting up to 64) into pool. Besides the codes listed below they
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
 * Task result: from the parts' task infos (see sg_merge_task_result), their results contributing
 * entries as for task info.
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

/* QuerySmsTaskResult on a composite task, decided by the parts' QuerySmsTaskInfo answers (infos,
 * as for sg_merge_task_info), because a part's QuerySmsTaskResult alone cannot tell "not yet"
 * from "never" (a part that ended in error has no result): 204 (empty out) while any part is
 * queued or running; otherwise 200 with {"_typeName":"ArrayOfGroupOperationResult","_value":
 * [...]} holding, in the parts' order, the entries of each part's result (each kept as it came):
 * the `result` of its task info, else, when results is not NULL, its QuerySmsTaskResult answer
 * results[i] (status 200 with a JSON body; 204, an empty body, `null` or status 0 mean none).
 * Parts that failed (at submission or in error) contribute what their info holds, usually
 * nothing. A failed query (a status other than 200 and 0 in infos, other than 200, 204 and 0 in
 * results) is passed through as for task info, infos first. Returns SG_OK, SG_EPROTO (a task
 * info is not one, a result not JSON), SG_ENOMEM. */
int sg_merge_task_result(sg_pool_t *pool, const sg_merge_part_t *infos,
                         const sg_merge_part_t *results, size_t n, sg_buf_t *out, int *status);

/* What one part's QuerySmsTaskInfo answer says (sg_merge_info_peek). */
enum { SG_MERGE_QUEUED = 0, SG_MERGE_RUNNING, SG_MERGE_SUCCESS, SG_MERGE_ERROR };
#define SG_MERGE_BATCH_MAX 1000000 /* the largest maxBatchSize reported */

typedef struct {
    int state;          /* SG_MERGE_* */
    int has_result;     /* the info carries a non-null `result` */
    long long toomany;  /* the task ended in error with a TooMany fault: its maxBatchSize (1 when
                         * absent, zero or negative, as the SMS API's TooMany says), capped at
                         * SG_MERGE_BATCH_MAX; else 0 */
    const char *provider; /* `object`.value when `object` is a VasaProvider reference, else NULL */
} sg_merge_peek_t;

/* Reads body[0,len), a 200 QuerySmsTaskInfo answer, into *out (strings in pool). Returns SG_OK,
 * SG_EPROTO when it is not an SmsTaskInfo as sg_merge_task_info() reads them, SG_ENOMEM. */
int sg_merge_info_peek(sg_pool_t *pool, const char *body, size_t len, sg_merge_peek_t *out);

#endif
