/*
 * Unit tests for filters/ops.c and its schema walk (filters/stopreq.c,
 * sg_stopreq_parse_op): the table itself (every row reachable by its route, a label, a
 * privilege, a body), and per row the bodies real clients send (accepted, with the groups
 * the scope and audit read and the body forwarded), the fault and invalidProperty for
 * what vCenter itself refuses, and the fault paths of nested members.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/stopreq.h"
#include "policy/policy.h"

#define L(s) (s), (sizeof(s) - 1)
#define FD(id) "\"faultDomainId\":{\"_typeName\":\"FaultDomainId\",\"id\":\"" id "\"}"
#define DG(id) "\"deviceGroupId\":{\"_typeName\":\"DeviceGroupId\",\"id\":\"" id "\"}"
#define G(fd, dg) "{\"_typeName\":\"ReplicationGroupId\"," FD(fd) "," DG(dg) "}"
#define THIS                                                                                       \
    "\"_this\":{\"_typeName\":\"ManagedObjectReference\",\"type\":\"VasaProvider\",\"value\":"     \
    "\"vasa-1\"}"

static const sg_str_t moid = {"vasa-1", 6};

typedef struct {
    sg_route_id_t route;
    const char *body;
    size_t len;
    const char *type;  /* expected fault type; NULL: accepted */
    const char *prop;  /* its invalidProperty; accepted: the fault domains seen, ","-joined */
    const char *out;   /* accepted: the body forwarded (NULL: not checked) */
    int all;           /* accepted: a query of every group */
} op_case_t;

#define OK(route, body, fds, out) {route, L(body), NULL, fds, out, 0}
#define ALL(route, body) {route, L(body), NULL, "", NULL, 1}
#define ARG(route, body, prop) {route, L(body), "InvalidArgument", prop, NULL, 0}

#define FP(tn, groups)                                                                           \
    "{\"_typeName\":\"" tn "\",\"isPlanned\":true,\"checkOnly\":false,"                          \
    "\"replicationGroupsToFailover\":[" groups "]}"
#define RGD(fd, dg) "{\"_typeName\":\"ReplicationGroupData\",\"groupId\":" G(fd, dg) "}"

static const op_case_t cases[] = {
    /* TestFailoverReplicationGroupStart_Task */
    OK(SG_ROUTE_TEST_FAILOVER_START,
       "{\"_typeName\":\"TestFailoverReplicationGroupStart_Task\"," THIS
       ",\"testFailoverParam\":" FP("TestFailoverParam", RGD("fd-1", "a") "," RGD("fd-2", "b")) "}",
       "fd-1,fd-2",
       "{\"_typeName\":\"TestFailoverReplicationGroupStart_Task\",\"testFailoverParam\":" FP(
           "TestFailoverParam", RGD("fd-1", "a") "," RGD("fd-2", "b")) "}"),
    OK(SG_ROUTE_TEST_FAILOVER_START,
       "{\"_typeName\":\"TestFailoverReplicationGroupStartRequestType\",\"testFailoverParam\":"
       "{\"isPlanned\":false,\"checkOnly\":true,\"replicationGroupsToFailover\":[{\"groupId\":"
       "{\"faultDomainId\":{\"id\":\"fd-3\"},\"deviceGroupId\":{\"id\":\"c\"}},\"pitId\":"
       "{\"id\":\"pit-1\"}}],\"policyAssociations\":[{\"id\":{\"_typeName\":\"VirtualDiskKey\","
       "\"vmInstanceUUID\":\"u-1\",\"deviceKey\":2000},\"policyId\":\"p\",\"datastore\":"
       "{\"type\":\"Datastore\",\"value\":\"ds-1\"}}]}}",
       "fd-3", NULL),
    ARG(SG_ROUTE_TEST_FAILOVER_START, "{}", "testFailoverParam"),
    ARG(SG_ROUTE_TEST_FAILOVER_START, "{\"testFailoverParam\":null}", "testFailoverParam"),
    ARG(SG_ROUTE_TEST_FAILOVER_START,
        "{\"testFailoverParam\":" FP("FailoverParam", RGD("f", "d")) "}",
        "testFailoverParam._typeName"),
    ARG(SG_ROUTE_TEST_FAILOVER_START,
        "{\"testFailoverParam\":{\"isPlanned\":true,\"checkOnly\":false}}",
        "testFailoverParam.replicationGroupsToFailover"),
    ARG(SG_ROUTE_TEST_FAILOVER_START,
        "{\"testFailoverParam\":{\"isPlanned\":1,\"checkOnly\":false,"
        "\"replicationGroupsToFailover\":[" RGD("f", "d") "]}}",
        "testFailoverParam.isPlanned"),
    ARG(SG_ROUTE_TEST_FAILOVER_START,
        "{\"testFailoverParam\":{\"isPlanned\":true,\"checkOnly\":false,"
        "\"replicationGroupsToFailover\":[{\"groupId\":{" FD("f") "}}]}}",
        "testFailoverParam.replicationGroupsToFailover[0].groupId.deviceGroupId"),
    ARG(SG_ROUTE_TEST_FAILOVER_START,
        "{\"testFailoverParam\":{\"isPlanned\":true,\"checkOnly\":false,"
        "\"replicationGroupsToFailover\":[" RGD(
            "f", "d") "],\"policyAssociations\":[{\"id\":"
                      "{\"diskId\":\"x\"},\"policyId\":\"p\",\"datastore\":{\"type\":\"Datastore\","
                      "\"value\":\"ds\"}}]}}",
        "testFailoverParam.policyAssociations[0].id._typeName"),
    ARG(SG_ROUTE_TEST_FAILOVER_START,
        "{\"testFailoverParam\":{\"isPlanned\":true,\"checkOnly\":false,"
        "\"replicationGroupsToFailover\":[" RGD(
            "f",
            "d") "],\"policyAssociations\":[{\"id\":"
                 "{\"_typeName\":\"VirtualDiskKey\",\"vmInstanceUUID\":\"u\",\"deviceKey\":1.5},"
                 "\"policyId\":\"p\",\"datastore\":{\"type\":\"Datastore\",\"value\":\"ds\"}}]}}",
        "testFailoverParam.policyAssociations[0].id.deviceKey"),
    ARG(SG_ROUTE_TEST_FAILOVER_START,
        "{\"_this\":{\"type\":\"VasaProvider\",\"value\":\"vasa-2\"}}", "_this"),
    /* FailoverReplicationGroup_Task: a TestFailoverParam is a FailoverParam too */
    OK(SG_ROUTE_FAILOVER, "{\"failoverParam\":" FP("TestFailoverParam", RGD("fd-1", "a")) "}",
       "fd-1", "{\"failoverParam\":" FP("TestFailoverParam", RGD("fd-1", "a")) "}"),
    ARG(SG_ROUTE_FAILOVER, "{\"failoverParam\":[]}", "failoverParam"),
    ARG(SG_ROUTE_FAILOVER, "{\"_typeName\":\"TestFailoverReplicationGroupStop_Task\"}",
        "_typeName"),
    ARG(SG_ROUTE_FAILOVER,
        "{\"failoverParam\":" FP("FailoverParam", RGD("f", "d")) ",\"force\":true}", "force"),
    /* PrepareFailover / Reverse: groupId like the stop-test, no force */
    OK(SG_ROUTE_PREPARE_FAILOVER, "{\"groupId\":[" G("fd-1", "a") "," G("fd-2", "b") "]}",
       "fd-1,fd-2", NULL),
    ARG(SG_ROUTE_PREPARE_FAILOVER, "{\"groupId\":[]}", "groupId"),
    ARG(SG_ROUTE_PREPARE_FAILOVER, "{}", "groupId"),
    ARG(SG_ROUTE_REVERSE, "{\"groupId\":[" G("fd-1", "a") "],\"force\":false}", "force"),
    ARG(SG_ROUTE_REVERSE, "{\"groupId\":[null]}", "groupId[0]"),
    /* PromoteReplicationGroup_Task */
    OK(SG_ROUTE_PROMOTE,
       "{\"promoteParam\":{\"_typeName\":\"PromoteParam\",\"isPlanned\":false,"
       "\"replicationGroupsToPromote\":[" G("fd-7", "a") "]}}",
       "fd-7", NULL),
    ARG(SG_ROUTE_PROMOTE, "{\"promoteParam\":{\"isPlanned\":false}}",
        "promoteParam.replicationGroupsToPromote"),
    ARG(SG_ROUTE_PROMOTE, "{\"promoteParam\":{\"isPlanned\":false,\"x\":1}}", "promoteParam.x"),
    /* SyncReplicationGroup_Task: pitName required */
    OK(SG_ROUTE_SYNC, "{\"groupId\":[" G("fd-1", "a") "],\"pitName\":\"nightly\"}", "fd-1",
       "{\"groupId\":[" G("fd-1", "a") "],\"pitName\":\"nightly\"}"),
    ARG(SG_ROUTE_SYNC, "{\"groupId\":[" G("fd-1", "a") "]}", "pitName"),
    ARG(SG_ROUTE_SYNC, "{\"groupId\":[" G("fd-1", "a") "],\"pitName\":\"\"}", "pitName"),
    ARG(SG_ROUTE_SYNC, "{\"pitName\":\"n\"}", "groupId"),
    /* Queries: no group is every group */
    ALL(SG_ROUTE_QUERY_GROUP, "{}"),
    ALL(SG_ROUTE_QUERY_GROUP, "{\"groupId\":[]}"),
    ALL(SG_ROUTE_QUERY_GROUP,
        "{\"_typeName\":\"QueryReplicationGroupRequestType\",\"groupId\":null}"),
    OK(SG_ROUTE_QUERY_GROUP, "{\"groupId\":[" G("fd-1", "a") "]}", "fd-1", NULL),
    ARG(SG_ROUTE_QUERY_GROUP, "{\"groupId\":{}}", "groupId"),
    OK(SG_ROUTE_QUERY_PIT,
       "{\"groupId\":[" G(
           "fd-1",
           "a") "],\"queryParam\":{\"_typeName\":"
                "\"QueryPointInTimeReplicaParam\",\"replicaTimeQueryParam\":{\"fromDate\":"
                "\"2026-01-01T00:00:00Z\",\"number\":-3},\"pitName\":\"\",\"tags\":[\"a\",\"b\"],"
                "\"preferDetails\":false}}",
       "fd-1", NULL),
    ARG(SG_ROUTE_QUERY_PIT, "{\"queryParam\":{\"replicaTimeQueryParam\":{\"number\":2147483648}}}",
        "queryParam.replicaTimeQueryParam.number"),
    ARG(SG_ROUTE_QUERY_PIT, "{\"queryParam\":{\"tags\":[null]}}", "queryParam.tags[0]"),
    OK(SG_ROUTE_QUERY_PEER,
       "{\"faultDomainId\":[{\"_typeName\":\"FaultDomainId\",\"id\":\"fd-4\"},"
       "{\"id\":\"fd-5\"}]}",
       "fd-4,fd-5", NULL),
    ALL(SG_ROUTE_QUERY_PEER, "{\"faultDomainId\":[]}"),
    ARG(SG_ROUTE_QUERY_PEER, "{\"faultDomainId\":[{\"id\":\"fd-4\",\"x\":1}]}",
        "faultDomainId[0].x"),
};

/* The schema's precomputed lengths are its names' and each object fits the walker's slots;
 * a group's ids are where the walker reads them (ops.h SG_OPT_ROLE_GROUP). */
static void check_type(const sg_opt_t *t, unsigned depth)
{
    assert_true(depth < 16); /* a schema is a tree, not a cycle */
    if (t->kind == SG_OPT_ARRAY) {
        check_type(t->elem, depth + 1);
        return;
    }
    if (t->kind != SG_OPT_OBJECT)
        return;
    for (const sg_opt_t *const *c = t->variants; c != NULL && *c != NULL; c++)
        check_type(*c, depth + 1);
    for (const sg_str_t *n = t->names; n != NULL && n->p != NULL; n++)
        assert_int_equal(n->n, strlen(n->p));
    assert_true(t->nmembers <= SG_OPT_MAX_MEMBERS);
    for (size_t m = 0; m < t->nmembers; m++) {
        assert_true(t->members[m].len > 0);
        assert_int_equal(t->members[m].len, strlen(t->members[m].name));
        check_type(t->members[m].type, depth + 1);
    }
    if (t->role == SG_OPT_ROLE_GROUP) {
        assert_true(t->nmembers == 2);
        assert_string_equal(t->members[0].name, "faultDomainId");
        assert_string_equal(t->members[1].name, "deviceGroupId");
    }
}

static void test_table(void **state)
{
    (void)state;
    assert_int_equal(sg_nops, SG_ROUTE_COUNT - SG_ROUTE_TEST_FAILOVER_START + 1);
    for (size_t i = 0; i < sg_nops; i++) {
        const sg_op_t *op = &sg_ops[i];

        assert_ptr_equal(sg_op_of_route(op->route), op);
        assert_int_equal(op->method_len, strlen(op->method));
        assert_true(op->nmembers <= SG_OPT_MAX_MEMBERS);
        for (size_t m = 0; m < op->nmembers; m++) {
            assert_int_equal(op->members[m].len, strlen(op->members[m].name));
            check_type(op->members[m].type, 0);
        }
        assert_non_null(op->label);
        assert_string_equal(sg_route_label(op->route), op->label);
        assert_true(op->nmembers > 0);
        assert_true(op->action == SG_POL_STOP_TEST || op->action == SG_POL_GROUP_CHANGE ||
                    op->action == SG_POL_GROUP_QUERY);
        /* a query is a View call, a change a ConfigureService one */
        assert_string_equal(op->privilege, op->action == SG_POL_GROUP_QUERY
                                               ? SG_POL_PRIV_VIEW
                                               : SG_POL_PRIV_CONFIGURE);
        /* only the _Task methods with a groupId array split; the queries mean "all" */
        if (op->split != NULL)
            assert_string_equal(op->split, "groupId");
        assert_true(!op->empty_means_all || op->action == SG_POL_GROUP_QUERY);
        assert_true((op->empty_fault == NULL) == (op->empty_means_all != 0));
    }
    /* The row's fault for a missing argument is the one its schema gives "{}". */
    for (size_t i = 0; i < sg_nops; i++) {
        const sg_op_t *op = &sg_ops[i];
        sg_stopreq_fault_t fault;
        sg_stopreq_t req;
        sg_pool_t pool;
        int rv;

        sg_pool_init(&pool, 4096);
        rv = sg_stopreq_parse_op(&pool, op, L("{}"), &moid, &req, &fault);
        if (op->empty_fault == NULL) {
            assert_int_equal(rv, 0);
            assert_int_equal(req.all, 1);
        } else {
            assert_int_equal(rv, -1);
            assert_string_equal(fault.type, op->empty_fault);
            assert_string_equal(fault.invalid_property, op->empty_property);
        }
        sg_pool_dispose(&pool);
    }
    assert_null(sg_op_of_route(SG_ROUTE_TASK_INFO));
    assert_null(sg_op_of_route(SG_ROUTE_TASK_RESULT));
    assert_null(sg_op_of_route(SG_ROUTE_OTHER));
    assert_null(sg_op_of_route(SG_ROUTE_COUNT));
    assert_null(sg_op_of_route(-1));
    assert_string_equal(sg_route_label(SG_ROUTE_OTHER), "other");
}

static void run_case(const op_case_t *c)
{
    const sg_op_t *op = sg_op_of_route(c->route);
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    int rv;

    assert_non_null(op);
    sg_pool_init(&pool, 4096);
    rv = sg_stopreq_parse_op(&pool, op, c->body, c->len, &moid, &req, &fault);
    if (c->type != NULL) {
        if (rv != -1 || strcmp(fault.type, c->type) != 0 ||
            (c->prop != NULL && (fault.invalid_property == NULL ||
                                 strcmp(fault.invalid_property, c->prop) != 0)))
            fail_msg("%s %s: got %d %s %s, expected %s %s", op->method, c->body, rv,
                     rv == -1 ? fault.type : "-",
                     rv == -1 && fault.invalid_property ? fault.invalid_property : "-", c->type,
                     c->prop);
    } else {
        char fds[256] = "";
        sg_buf_t out;

        if (rv != 0)
            fail_msg("%s %s: refused %s %s", op->method, c->body, fault.type,
                     fault.invalid_property ? fault.invalid_property : "-");
        for (size_t i = 0; i < req.ngroups; i++)
            snprintf(fds + strlen(fds), sizeof(fds) - strlen(fds), "%s%.*s", i ? "," : "",
                     (int)req.groups[i].fault_domain.n, req.groups[i].fault_domain.p);
        assert_string_equal(fds, c->prop);
        assert_int_equal(req.all, c->all);
        assert_int_equal(req.has_force, 0);
        assert_ptr_equal(req.op, op);
        sg_buf_init(&out, 1 << 20);
        assert_int_equal(sg_stopreq_serialize(&req, 0, req.ngroups, &out), SG_OK);
        if (c->out != NULL) {
            assert_int_equal(sg_buf_avail(&out), strlen(c->out));
            assert_memory_equal(sg_buf_head(&out), c->out, strlen(c->out));
        }
        /* never split: a slice is refused; split rows give one */
        if (req.ngroups > 1)
            assert_int_equal(sg_stopreq_serialize(&req, 1, 1, &out) == SG_OK, op->split != NULL);
        sg_buf_dispose(&out);
    }
    sg_pool_dispose(&pool);
}

static void test_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* The family's methods all take parameters: no body is not the "{}" of a query. */
static void test_no_body(void **state)
{
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    (void)state;
    sg_pool_init(&pool, 4096);
    for (size_t i = 0; i < sg_nops; i++) {
        assert_int_equal(sg_stopreq_parse_op(&pool, &sg_ops[i], "", 0, &moid, &req, &fault), -1);
        assert_string_equal(fault.type, "InvalidRequest");
    }
    sg_pool_dispose(&pool);
}

/* A split row's slice carries the other root members (pitName) in each part. */
static void test_sync_slice(void **state)
{
    static const char body[] =
        "{\"groupId\":[" G("fd-1", "a") "," G("fd-1", "b") "],"
                                                           "\"pitName\":\"n\"}";
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    sg_buf_t out;

    (void)state;
    sg_pool_init(&pool, 4096);
    assert_int_equal(
        sg_stopreq_parse_op(&pool, sg_op_of_route(SG_ROUTE_SYNC), L(body), &moid, &req, &fault), 0);
    sg_buf_init(&out, 4096);
    assert_int_equal(sg_stopreq_serialize(&req, 1, 1, &out), SG_OK);
    assert_int_equal(sg_buf_avail(&out),
                     strlen("{\"groupId\":[" G("fd-1", "b") "],\"pitName\":\"n\"}"));
    assert_memory_equal(sg_buf_head(&out), "{\"groupId\":[" G("fd-1", "b") "],\"pitName\":\"n\"}",
                        sg_buf_avail(&out));
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_sync_slice),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
