/*
 * filters/canon.h - the canonical form of a request target and the route it names.
 *
 * Both front ends hand their origin-form target here (HTTP/1 after an absolute-form
 * target was split into authority and path, HTTP/2 :path) before anything else looks
 * at the path. The result is the one spelling smsguard matches on, audits and forwards
 * (docs/design.md "Routes"). What cannot be made
 * unambiguous is refused; the caller answers 400 with an InvalidRequest fault.
 * Pure: no I/O, no global state, one pool allocation.
 */
#ifndef SG_CANON_H
#define SG_CANON_H

#include "base/base.h"

typedef enum {
    SG_ROUTE_OTHER = 0,   /* forwarded (or denied by routes.unmatched) */
    SG_ROUTE_STOP_TEST,   /* VasaProvider/{moId}/TestFailoverReplicationGroupStop_Task */
    SG_ROUTE_TASK_INFO,   /* SmsTask/{id}/QuerySmsTaskInfo */
    SG_ROUTE_TASK_RESULT, /* SmsTask/{id}/QuerySmsTaskResult */
    /* The rest of the replication family, VasaProvider/{moId}/{method}: filters/ops.c has
     * a row for each (and for SG_ROUTE_STOP_TEST). */
    SG_ROUTE_TEST_FAILOVER_START,
    SG_ROUTE_FAILOVER,
    SG_ROUTE_PREPARE_FAILOVER,
    SG_ROUTE_PROMOTE,
    SG_ROUTE_SYNC,
    SG_ROUTE_REVERSE,
    SG_ROUTE_QUERY_GROUP,
    SG_ROUTE_QUERY_PIT,
    SG_ROUTE_QUERY_PEER,
    SG_ROUTE_COUNT
} sg_route_id_t;

typedef struct {
    sg_route_id_t route;
    const char *path; /* canonical target to forward, NUL-terminated, in pool (query kept for
                         SG_ROUTE_OTHER) */
    size_t path_len;
    sg_str_t release; /* guarded routes: the release segment, pointing into path */
    sg_str_t moid;    /* guarded routes: VasaProvider moId or SmsTask id, pointing into path */
} sg_canon_t;

/* The metrics label of a route ("other", "stop_test", "task_info", ...). */
const char *sg_route_label(int route);

/* Canonicalise an origin-form request target (HTTP/1 after absolute-form was split off, or
 * HTTP/2 :path). `target` need not be NUL-terminated; `n` is its length.
 *
 * Returns 0 and fills *out; -1 (SG_ERR) with *why set to a static human-readable reason when
 * the target must be refused (the caller answers 400 InvalidRequest); or -2 (SG_ENOMEM) when
 * the pool cannot supply the output buffer. On a non-zero return *out is zeroed and nothing
 * points into the pool. The output (at most n + 1 bytes) lives as long as the pool. */
/* Whether a target that was refused, or never canonicalised, mentions a guarded
 * VasaProvider method (filters/ops.c): its path (the query is not looked at) with every
 * %XX decoded, searched ASCII case-insensitively for a method's name (without its
 * "_Task"). Deliberately wider than the route match: a
 * refused attempt is audited however it was spelled. 1 or 0; 1 when memory runs out
 * (record rather than miss). */
int sg_canon_mentions_stop(sg_pool_t *pool, const char *target, size_t n);
int sg_canon_target(sg_pool_t *pool, const char *target, size_t n, sg_canon_t *out,
                    const char **why);

#endif
