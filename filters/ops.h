/*
 * filters/ops.h - the replication-group operation family, one row per operation.
 *
 * Every VasaProvider replication method smsguard guards is one row of sg_ops[]
 * (filters/ops.c): its method name and route, the privilege and policy action
 * that authorise it, the schema its body is checked against, where the group ids
 * and fault domains are (they come out of the schema walk: the tenant scope and
 * the audit read them), whether a TooMany may be answered by splitting it, and
 * the vSphere fault for a missing or empty argument. Route matching
 * (filters/canon.c), validation (filters/stopreq.c, flt_validate.c),
 * authorisation, audit and batch splitting read the row; none of them names a
 * method. Adding an operation is adding a row (and, for metrics, a route id).
 *
 * The schema is data: a small tree of sg_opt_t the walker in filters/stopreq.c
 * checks a parsed body against, strictly (an unknown member, a wrong _typeName,
 * a missing required member is refused, naming its path), in one fixed order
 * so that a body with several problems always gets the same fault.
 */
#ifndef SG_OPS_H
#define SG_OPS_H

#include "filters/canon.h"

typedef enum {
    SG_OPT_BOOL,   /* true or false */
    SG_OPT_ID,     /* a string of 1..SG_STOPREQ_MAX_ID bytes without control bytes */
    SG_OPT_STRING, /* the same, possibly empty */
    SG_OPT_INT,    /* an integer number within int32 */
    SG_OPT_OBJECT, /* members, below */
    SG_OPT_ARRAY   /* elements of elem */
} sg_opt_kind_t;

/* Where the gateway reads a scope from: the object is a ReplicationGroupId (its
 * faultDomainId.id and deviceGroupId.id), or a bare FaultDomainId (its id). */
enum { SG_OPT_ROLE_NONE = 0, SG_OPT_ROLE_GROUP, SG_OPT_ROLE_FAULT_DOMAIN };

/* Members of one object type: the walker keeps one slot per member on its stack, so that
 * one pass over the client's members finds them all (tests/unit/filters/test_ops.c holds
 * every schema to it). */
#define SG_OPT_MAX_MEMBERS 8

enum {
    SG_OPT_REQUIRED = 1, /* missing (or null) is refused */
    SG_OPT_NONEMPTY = 2  /* an empty array is refused */
};

typedef struct sg_opt_s sg_opt_t;

typedef struct {
    const char *name;
    size_t len; /* strlen(name): the walker compares lengths first, then bytes */
    const sg_opt_t *type;
    unsigned flags;
    /* The message of the fault for this member missing, of the wrong kind or empty; NULL:
     * one made from the name and the kind. */
    const char *message;
} sg_opt_member_t;

struct sg_opt_s {
    sg_opt_kind_t kind;
    /* OBJECT: the _typeName values it may carry (it may also carry none), ended by {NULL, 0};
     * the first is the type's own name, the others its subtypes with the same members. */
    const sg_str_t *names;
    const sg_opt_member_t *members;
    size_t nmembers; /* at most SG_OPT_MAX_MEMBERS */
    /* OBJECT, polymorphic (DeviceId): the concrete types, one of which its _typeName,
     * then required, must name; members and names are then unused. NULL-terminated. */
    const sg_opt_t *const *variants;
    const sg_opt_t *elem; /* ARRAY */
    int role;             /* SG_OPT_ROLE_* */
};

typedef struct {
    const char *method;    /* the WSDL method name, the last path segment */
    size_t method_len;     /* strlen(method) */
    sg_route_id_t route;
    const char *label;     /* metrics route label */
    const char *privilege; /* the vSphere privilege the method needs */
    int action;            /* SG_POL_* (policy/policy.h), the policy's view of it */
    const sg_opt_member_t *members; /* the root members but _typeName and _this, in the
                                       order they are checked */
    size_t nmembers;
    /* The root member holding the array of ReplicationGroupId that TooMany applies to and a
     * request may be split along; NULL: never split. */
    const char *split;
    /* No group at all named (the groups are optional): the call means every group of the
     * provider (the queries), and is judged as the fault domain "*" (filters/flt_authz.c). */
    int empty_means_all;
    /* The fault vCenter gives for the missing or empty argument, and its invalidProperty;
     * NULL for the queries, where none means every group. The schema produces it (the
     * member's flags); tests/unit/filters/test_ops.c holds the two to each other. */
    const char *empty_fault, *empty_property;
} sg_op_t;

extern const sg_op_t sg_ops[];
extern const size_t sg_nops;

/* The row of a route, or NULL (another route, or not a family operation). Constant time:
 * the rows are in the order of their route ids. */
const sg_op_t *sg_op_of_route(int route);

#endif
