/*
 * tests/unit/filters/test_change.c - sg_change_approval_op(): the operation an approval
 * binds, taken from a validated request the way the gateway and smsguard-approve(1) both
 * take it, gives the canonical text policy/approval.h documents (groups once, sorted;
 * method from the row; the ticket; force).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "filters/canon.h"
#include "filters/flt_change.h"
#include "filters/stopreq.h"

static const char *canonical(sg_pool_t *pool, sg_buf_t *out, const char *path, const char *body,
                             const char *ticket)
{
    sg_canon_t canon;
    sg_stopreq_t req;
    sg_stopreq_fault_t fault;
    sg_approval_op_t op = {0};
    const char *why = NULL;

    assert_int_equal(sg_canon_target(pool, path, strlen(path), &canon, &why), 0);
    assert_int_equal(
        sg_stopreq_parse_op(pool, sg_op_of_route(canon.route), body, strlen(body), &canon.moid,
                            &req, &fault),
        0);
    assert_int_equal(
        sg_change_approval_op(pool, "vc-east", canon.release, canon.moid, &req, ticket, &op),
        SG_OK);
    sg_buf_reset(out);
    assert_int_equal(sg_approval_canonical(&op, out), SG_OK);
    return sg_pool_strndup(pool, sg_buf_head(out), sg_buf_avail(out));
}

static void binds_the_stop_call(void **state)
{
    sg_pool_t pool;
    sg_buf_t out;

    (void)state;
    sg_pool_init(&pool, 65536);
    sg_buf_init(&out, 65536);
    assert_string_equal(
        canonical(&pool, &out,
                  "/sdk/vim25/8.0.3.0/sms/VasaProvider/vp-1/TestFailoverReplicationGroupStop_Task",
                  "{\"groupId\":[{\"faultDomainId\":{\"id\":\"fd-2\"},\"deviceGroupId\":{\"id\":"
                  "\"dg-1\"}},{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":"
                  "\"dg-9\"}},{\"faultDomainId\":{\"id\":\"fd-2\"},\"deviceGroupId\":{\"id\":"
                  "\"dg-1\"}}],\"force\":true}",
                  "CHG0000001"),
        "smsguard-approval-v1\n"
        "upstream:7:vc-east\n"
        "release:7:8.0.3.0\n"
        "provider:4:vp-1\n"
        "method:37:TestFailoverReplicationGroupStop_Task\n"
        "force:true\n"
        "ticket:10:CHG0000001\n"
        "groups:2\n"
        "group:4:fd-1/4:dg-9\n"
        "group:4:fd-2/4:dg-1\n");
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

/* Another row: its own method; no ticket is "ticket:0:"; no force member is false. */
static void binds_any_row(void **state)
{
    sg_pool_t pool;
    sg_buf_t out;

    (void)state;
    sg_pool_init(&pool, 65536);
    sg_buf_init(&out, 65536);
    assert_string_equal(
        canonical(&pool, &out,
                  "/sdk/vim25/8.0.3.0/sms/VasaProvider/vp-2/PrepareFailoverReplicationGroup_Task",
                  "{\"groupId\":[{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":"
                  "\"dg-1\"}}]}",
                  NULL),
        "smsguard-approval-v1\n"
        "upstream:7:vc-east\n"
        "release:7:8.0.3.0\n"
        "provider:4:vp-2\n"
        "method:36:PrepareFailoverReplicationGroup_Task\n"
        "force:false\n"
        "ticket:0:\n"
        "groups:1\n"
        "group:4:fd-1/4:dg-1\n");
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binds_the_stop_call),
        cmocka_unit_test(binds_any_row),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
