/*
 * filters/stopreq.h - the TestFailoverReplicationGroupStop_Task request body.
 *
 * Parses and validates the body exactly (DESIGN.md "Behaviour of the stop-test
 * route", point 4) and re-serialises it, whole or a slice of its groups, for
 * forwarding (point 4: never the raw bytes) and for batch splitting. The fault
 * it describes is built into the vSphere JSON fault by the caller (point 6).
 */
#ifndef SG_STOPREQ_H
#define SG_STOPREQ_H

#include "filters/json.h"

#define SG_STOPREQ_MAX_GROUPS 100000 /* more is refused as InvalidArgument "groupId" */
#define SG_STOPREQ_MAX_ID 1024       /* bytes of a faultDomainId.id / deviceGroupId.id */
#define SG_STOPREQ_MAX_DEPTH 8       /* JSON nesting; the valid body needs 4 */
#define SG_STOPREQ_NAME_MAX 128      /* bytes of a client's member name echoed in a fault */

typedef struct {
    sg_str_t fault_domain; /* faultDomainId.id: 1..1024 bytes of UTF-8, no control bytes */
    sg_str_t device_group; /* deviceGroupId.id: the same */
    sg_json_t *node;       /* the element, for re-serialisation */
} sg_group_t;

typedef struct {
    sg_json_t *root;    /* the parsed body */
    sg_group_t *groups; /* in the client's order */
    size_t ngroups;     /* 1..SG_STOPREQ_MAX_GROUPS */
    int force;          /* 0 or 1 */
} sg_stopreq_t;

typedef struct {
    int status;                   /* 500 */
    const char *type;             /* "InvalidArgument" or "InvalidRequest" */
    const char *invalid_property; /* InvalidArgument: the path, e.g. "groupId",
                                   * "groupId[3].faultDomainId.id" (0-based index) or a
                                   * client's member name (static or from the pool) */
    const char *message;          /* human-readable; names at most the property, never
                                   * other client bytes */
} sg_stopreq_fault_t;

/*
 * Parses and validates body[0, n). Everything the result points to lives in pool;
 * body may be released afterwards.
 *
 * Malformed JSON (see sg_json_parse: also an empty body, duplicate names, trailing
 * bytes, nesting beyond SG_STOPREQ_MAX_DEPTH, more than one value per 8 body bytes,
 * which no valid body comes near) and a top level that is not an object give
 * InvalidRequest with invalid_property NULL; the message holds the parser's
 * static reason and the byte offset. Then, in this order, each
 * giving InvalidArgument naming the first offending path:
 *   1. a root member other than groupId, force, _typeName (its name); a root
 *      _typeName that is not "TestFailoverReplicationGroupStopRequestType";
 *   2. groupId missing, null, not an array, empty, or above SG_STOPREQ_MAX_GROUPS;
 *   3. each element in order: not an object ("groupId[i]"); an unknown member
 *      ("groupId[i].<name>"); _typeName not "ReplicationGroupId"; faultDomainId
 *      then deviceGroupId: missing or not an object, an unknown member, _typeName
 *      not "FaultDomainId"/"DeviceGroupId", id missing, not a string, empty,
 *      longer than SG_STOPREQ_MAX_ID or holding a byte < 0x20 or 0x7F;
 *   4. force missing or not a boolean.
 *
 * Returns 0 (out filled), -1 (refused; fault filled, out unspecified) or -2
 * (SG_ENOMEM: the pool failed; fault not filled).
 */
int sg_stopreq_parse(sg_pool_t *pool, const char *body, size_t n, sg_stopreq_t *out,
                     sg_stopreq_fault_t *fault);

/*
 * Appends to out the body for groups [first, first + count): the client's root
 * members in the client's order (groupId, force and a root _typeName), groupId
 * holding only those elements, each re-serialised with its _typeName members;
 * compact, strings re-escaped. (0, req->ngroups) is the whole body.
 *
 * Returns SG_OK, SG_ERR (count is 0 or the range is outside the groups),
 * SG_ENOMEM or SG_ETOOBIG (out's maximum). On failure out is as it was.
 */
int sg_stopreq_serialize(const sg_stopreq_t *req, size_t first, size_t count, sg_buf_t *out);

#endif
