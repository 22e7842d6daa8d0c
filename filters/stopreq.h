/*
 * filters/stopreq.h - the bodies of the guarded SMS methods.
 *
 * Parses and validates the body of every operation of the replication family
 * (filters/ops.h: the TestFailoverReplicationGroupStop_Task body and its
 * siblings) exactly against its row's schema (docs/design.md "Bodies of the
 * guarded routes") and re-serialises it,
 * whole or a slice of its groups, for forwarding (never the raw bytes, so vCenter reads
 * exactly what was checked)
 * and for batch splitting; checks the body of the SmsTask queries
 * (QuerySmsTaskInfo, QuerySmsTaskResult) the same way where they share a shape;
 * and says which Content-Type values announce such a body. The fault it
 * describes is built into the vSphere JSON fault by the caller (docs/design.md
 * "Answers").
 *
 * The target object is named by the path. Real clients may repeat it in the
 * body: govmomi's VI/JSON transport sends the whole SOAP request struct, so its
 * body carries "_this", the MoRef of the object the path names (docs/design.md
 * "Bodies of the guarded routes"). A
 * "_this" is accepted only when it names exactly the path's object and is
 * never forwarded: the upstream learns the target from one place, the path
 * that was checked, authorised and audited, so a body naming another object
 * cannot mean one provider here and another there.
 */
#ifndef SG_STOPREQ_H
#define SG_STOPREQ_H

#include "base/json.h"
#include "filters/ops.h"

#define SG_STOPREQ_MAX_GROUPS 100000 /* more is refused as InvalidArgument "groupId" */
#define SG_STOPREQ_MAX_ID 1024       /* bytes of a faultDomainId.id / deviceGroupId.id */
#define SG_STOPREQ_MAX_DEPTH 8       /* JSON nesting; the valid body needs 4 */
#define SG_STOPREQ_NAME_MAX 128      /* bytes of a client's member name echoed in a fault */

typedef struct {
    sg_str_t fault_domain; /* faultDomainId.id: 1..1024 bytes of UTF-8, no control bytes */
    sg_str_t device_group; /* deviceGroupId.id: the same; {NULL, 0} for a bare
                              FaultDomainId (QueryReplicationPeer) */
    sg_json_t *node;       /* the element, for re-serialisation */
    /* 1 when the id is its own JSON string form (sg_json_t.str_plain): written as it is */
    unsigned char fault_domain_plain, device_group_plain;
} sg_group_t;

typedef struct {
    const sg_op_t *op;  /* the operation's row */
    sg_json_t *root;    /* the parsed body */
    /* Every ReplicationGroupId and bare FaultDomainId of the body, in the client's
     * order. For a row with a split member, exactly that member's elements. */
    sg_group_t *groups;
    size_t ngroups;     /* 1..SG_STOPREQ_MAX_GROUPS for the stop-test; may be 0 for a query */
    int all;            /* 1: a query naming no group, i.e. every group (op->empty_means_all) */
    int has_force;      /* 1: the row has a force member (the stop-test) */
    int force;          /* 0 or 1 */
    int has_this;       /* 1: the body named its target in _this (the path's, checked) */
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
 * Parses and validates body[0, n) of a stop-test request whose path names the
 * VasaProvider moid (the canonical path's moId, compared byte for byte).
 * Everything the result points to lives in pool; body may be released afterwards.
 *
 * Malformed JSON (see sg_json_parse: also an empty body, duplicate names, trailing
 * bytes, nesting beyond SG_STOPREQ_MAX_DEPTH, more than one value per 8 body bytes,
 * which no valid body comes near) and a top level that is not an object give
 * InvalidRequest with invalid_property NULL; the message holds the parser's
 * static reason and the byte offset. Then, in this order, each
 * giving InvalidArgument naming the first offending path:
 *   1. a root member other than groupId, force, _typeName, _this (its name); a
 *      root _typeName other than "TestFailoverReplicationGroupStopRequestType"
 *      (the schema's name: vim_rs) and "TestFailoverReplicationGroupStop_Task"
 *      (the method's: govmomi) ("_typeName");
 *   2. a _this that is not {"_typeName"?: "ManagedObjectReference", "type":
 *      "VasaProvider", "value": moid} with nothing else in it ("_this");
 *   3. groupId missing, null, not an array, empty, or above SG_STOPREQ_MAX_GROUPS;
 *   4. each element in order: not an object ("groupId[i]"); an unknown member
 *      ("groupId[i].<name>"); _typeName not "ReplicationGroupId"; faultDomainId
 *      then deviceGroupId: missing or not an object, an unknown member, _typeName
 *      not "FaultDomainId"/"DeviceGroupId", id missing, not a string, empty,
 *      longer than SG_STOPREQ_MAX_ID or holding a byte < 0x20 or 0x7F;
 *   5. force missing or not a boolean.
 *
 * Returns 0 (out filled), -1 (refused; fault filled, out unspecified) or -2
 * (SG_ENOMEM: the pool failed; fault not filled).
 */
int sg_stopreq_parse(sg_pool_t *pool, const char *body, size_t n, const sg_str_t *moid,
                     sg_stopreq_t *out, sg_stopreq_fault_t *fault);

/*
 * The same for any row of sg_ops[], whose schema replaces the stop-test's in steps 1 and
 * 3-5 (sg_stopreq_parse is this with the stop-test's row): the root may hold the row's
 * members, _typeName (the method's name, or its name without "_Task" followed by
 * "RequestType") and _this. Then the members in the row's order, each checked in depth
 * (an object: its unknown members, then its _typeName, then its members in order; an
 * array: its size, then each element), the first problem giving InvalidArgument with its
 * path ("failoverParam.replicationGroupsToFailover[0].groupId.faultDomainId.id").
 */
int sg_stopreq_parse_op(sg_pool_t *pool, const sg_op_t *op, const char *body, size_t n,
                        const sg_str_t *moid, sg_stopreq_t *out, sg_stopreq_fault_t *fault);

/*
 * Appends to out the body for groups [first, first + count): the client's root
 * members in the client's order (groupId, force and a root _typeName; never
 * _this), groupId holding only those elements, each re-serialised with its
 * _typeName members; compact, strings re-escaped. (0, req->ngroups) is the
 * whole body. A row without a split member is only ever written whole: (0,
 * req->ngroups), any ngroups including 0, gives every root member but _this.
 *
 * Returns SG_OK, SG_ERR (count is 0 or the range is outside the groups),
 * SG_ENOMEM or SG_ETOOBIG (out's maximum). On failure out is as it was.
 */
int sg_stopreq_serialize(const sg_stopreq_t *req, size_t first, size_t count, sg_buf_t *out);

/* The body of an SmsTask query. */
typedef struct {
    sg_json_t *root; /* the parsed body; NULL when there was none */
    int has_this;    /* 1: the body named its target in _this (the path's, checked) */
} sg_stopreq_query_t;

/*
 * Checks body[0, n) of an SmsTask query: method is "QuerySmsTaskInfo" or
 * "QuerySmsTaskResult", moid the SmsTask id of the canonical path. The methods
 * take no parameters: vim_rs sends no body, govmomi {"_typeName": method,
 * "_this": the task's MoRef}.
 *
 * An empty body (n == 0) is accepted as no body. Anything else must be one JSON
 * object, as for sg_stopreq_parse (InvalidRequest otherwise), whose _typeName,
 * when present, is method or method + "RequestType" ("_typeName"), and whose
 * _this, when present, is {"_typeName"?: "ManagedObjectReference", "type":
 * "SmsTask", "value": moid} ("_this"). Other members are not the gateway's to
 * judge (the methods declare none) and are forwarded re-serialised.
 *
 * Returns 0 (out filled), -1 (refused; fault filled) or -2 (SG_ENOMEM).
 */
int sg_stopreq_query_parse(sg_pool_t *pool, const char *body, size_t n, const char *method,
                           const sg_str_t *moid, sg_stopreq_query_t *out,
                           sg_stopreq_fault_t *fault);

/*
 * Appends to out the body to forward for q: nothing when the client sent none,
 * else its root members but _this, in the client's order, compact. Returns
 * SG_OK, SG_ENOMEM or SG_ETOOBIG; on failure out is as it was.
 */
int sg_stopreq_query_serialize(const sg_stopreq_query_t *q, sg_buf_t *out);

/*
 * 1 when a Content-Type value announces the JSON these bodies are: the media
 * type application/json (RFC 8259 section 11; type and subtype case-insensitive,
 * RFC 9110 8.3.1), with or without parameters (RFC 9110 5.6.6 syntax: token "="
 * token or quoted-string); a charset parameter must say UTF-8, the only encoding
 * JSON exchanged between systems may use (RFC 8259 section 8.1), so that no
 * reader decodes the bytes differently from the checks. 0 otherwise.
 */
int sg_stopreq_media_type_ok(const char *value, size_t n);

#endif
