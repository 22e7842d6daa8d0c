/*
 * Unit tests for filters/merge.c: merging the parts' QuerySmsTaskInfo and
 * QuerySmsTaskResult answers for a composite SmsTask (docs/design.md "Batch splitting and
 * composite tasks"; results decided by the parts' task infos, since a part's result alone
 * cannot tell "not yet" from "never", and TooMany read from a task's error), checked on the
 * exact bytes written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/merge.h"

#define H "sgc1.handle"
#define VP "vp-7"
#define HEAD                                                                                     \
    "{\"_typeName\":\"SmsTaskInfo\",\"key\":\"" H "\",\"task\":{\"_typeName\":"                  \
    "\"ManagedObjectReference\",\"type\":\"SmsTask\",\"value\":\"" H "\"},\"object\":{"          \
    "\"_typeName\":\"ManagedObjectReference\",\"type\":\"VasaProvider\",\"value\":\"" VP "\"}"
#define ARR(items) "{\"_typeName\":\"ArrayOfGroupOperationResult\",\"_value\":[" items "]}"
#define G(id)                                                                                    \
    "{\"_typeName\":\"GroupOperationResult\",\"groupId\":{\"_typeName\":\"ReplicationGroupId\","  \
    "\"deviceGroupId\":{\"_typeName\":\"DeviceGroupId\",\"id\":\"" id "\"}}}"
#define GE(id)                                                                                   \
    "{\"_typeName\":\"GroupErrorResult\",\"groupId\":{\"_typeName\":\"ReplicationGroupId\","      \
    "\"deviceGroupId\":{\"_typeName\":\"DeviceGroupId\",\"id\":\"" id "\"}},\"error\":[{"         \
    "\"_typeName\":\"SmsReplicationFault\",\"faultstring\":\"not in test\"}]}"
#define INFO(rest) "{\"_typeName\":\"SmsTaskInfo\",\"key\":\"k\",\"task\":{\"_typeName\":"       \
                   "\"ManagedObjectReference\",\"type\":\"SmsTask\",\"value\":\"t\"}," rest "}"
#define BUSY "{\"_typeName\":\"ProviderBusy\",\"faultstring\":\"busy\"}"
#define TOOMANY "{\"_typeName\":\"TooMany\",\"maxBatchSize\":2}"

#define P(st, s) {(st), (s), sizeof(s) - 1}

typedef struct {
    sg_pool_t pool;
    sg_buf_t out;
    int status;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    sg_pool_init(&f->pool, 4096);
    sg_buf_init(&f->out, 1 << 20);
    f->status = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    sg_buf_dispose(&f->out);
    sg_pool_dispose(&f->pool);
    free(f);
    return 0;
}

static void info_is(fx_t *f, const sg_merge_part_t *parts, size_t n, const char *want)
{
    int rv = sg_merge_task_info(&f->pool, H, VP, parts, n, &f->out, &f->status);
    assert_int_equal(rv, SG_OK);
    assert_int_equal(f->status, 200);
    if (strlen(want) != sg_buf_avail(&f->out) ||
        (strlen(want) > 0 && memcmp(want, sg_buf_head(&f->out), strlen(want)) != 0))
        fail_msg("got  %.*s\nwant %s", (int)sg_buf_avail(&f->out), sg_buf_head(&f->out), want);
}

static void result_is(fx_t *f, const sg_merge_part_t *infos, const sg_merge_part_t *results,
                      size_t n, int status, const char *want)
{
    int rv = sg_merge_task_result(&f->pool, infos, results, n, &f->out, &f->status);
    assert_int_equal(rv, SG_OK);
    assert_int_equal(f->status, status);
    if (strlen(want) != sg_buf_avail(&f->out) ||
        (strlen(want) > 0 && memcmp(want, sg_buf_head(&f->out), strlen(want)) != 0))
        fail_msg("got  %.*s\nwant %s", (int)sg_buf_avail(&f->out), sg_buf_head(&f->out), want);
}

/* ---- task info: state ---- */

static void all_parts_succeeded_with_results_gives_success_and_concatenated_results(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"startTime\":\"2025-01-15T09:30:00Z\","
                    "\"completionTime\":\"2025-01-15T09:30:05Z\","
                    "\"result\":" ARR(G("a") "," G("b")))),
        P(200, INFO("\"state\":\"success\",\"startTime\":\"2025-01-15T09:30:01Z\","
                    "\"completionTime\":\"2025-01-15T09:30:04Z\",\"result\":" ARR(G("c")))),
    };
    info_is(*state, parts, 2,
            HEAD ",\"state\":\"success\",\"startTime\":\"2025-01-15T09:30:00Z\","
                 "\"completionTime\":\"2025-01-15T09:30:05Z\","
                 "\"result\":" ARR(G("a") "," G("b") "," G("c")) "}");
}

static void one_running_part_makes_the_task_running_with_averaged_progress(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("a")))),
        P(200, INFO("\"state\":\"running\",\"progress\":40")),
    };
    /* (100 + 40) / 2; no result, no completionTime while running */
    info_is(*state, parts, 2, HEAD ",\"state\":\"running\",\"progress\":70}");
}

static void running_wins_over_queued(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"queued\"")),
        P(200, INFO("\"state\":\"running\",\"progress\":10")),
        P(200, INFO("\"state\":\"queued\"")),
    };
    info_is(*state, parts, 3, HEAD ",\"state\":\"running\",\"progress\":3}");
}

static void queued_when_parts_are_queued_and_none_running(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"queued\"")),
        P(200, INFO("\"state\":\"success\"")),
    };
    info_is(*state, parts, 2, HEAD ",\"state\":\"queued\",\"progress\":50}");
}

static void all_queued_has_progress_zero(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"queued\"")),
        P(200, INFO("\"state\":\"queued\"")),
    };
    info_is(*state, parts, 2, HEAD ",\"state\":\"queued\",\"progress\":0}");
}

static void a_submission_fault_makes_the_finished_task_an_error_with_that_fault(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("a")))),
        P(0, BUSY),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("c")))),
    };
    info_is(*state, parts, 3,
            HEAD ",\"state\":\"error\",\"error\":" BUSY ",\"result\":" ARR(G("a") "," G("c")) "}");
}

static void a_submission_fault_does_not_end_a_running_task(void **state)
{
    const sg_merge_part_t parts[] = {
        P(0, BUSY),
        P(200, INFO("\"state\":\"running\",\"progress\":20")),
    };
    info_is(*state, parts, 2, HEAD ",\"state\":\"running\",\"progress\":60}");
}

static void a_task_error_reports_the_parts_error_and_the_other_results(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("a")))),
        P(200, INFO("\"state\":\"error\",\"error\":" TOOMANY)),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(GE("c")))),
    };
    info_is(*state, parts, 3,
            HEAD ",\"state\":\"error\",\"error\":" TOOMANY
                 ",\"result\":" ARR(G("a") "," GE("c")) "}");
}

static void the_first_failing_part_gives_the_error(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\"")),
        P(200, INFO("\"state\":\"error\",\"error\":" TOOMANY)),
        P(0, BUSY),
    };
    info_is(*state, parts, 3, HEAD ",\"state\":\"error\",\"error\":" TOOMANY "}");
}

static void an_error_part_without_a_fault_leaves_the_error_to_the_next_failing_part(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"error\"")),
        P(0, BUSY),
    };
    info_is(*state, parts, 2, HEAD ",\"state\":\"error\",\"error\":" BUSY "}");
}

/* ---- task info: progress and times ---- */

static void progress_is_averaged_with_missing_progress_counting_zero(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"running\",\"progress\":30")),
        P(200, INFO("\"state\":\"running\"")),
        P(200, INFO("\"state\":\"error\",\"error\":" BUSY)),
        P(200, INFO("\"state\":\"running\",\"progress\":55")),
    };
    /* (30 + 0 + 100 + 55) / 4 = 46.25 */
    info_is(*state, parts, 4, HEAD ",\"state\":\"running\",\"progress\":46}");
}

static void progress_out_of_range_is_clamped(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"running\",\"progress\":250")),
        P(200, INFO("\"state\":\"running\",\"progress\":-5")),
        P(200, INFO("\"state\":\"running\",\"progress\":12.9")),
    };
    /* (100 + 0 + 12) / 3 */
    info_is(*state, parts, 3, HEAD ",\"state\":\"running\",\"progress\":37}");
}

static void start_time_is_the_earliest_and_completion_the_latest(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"startTime\":\"2025-01-15T09:31:00.000Z\","
                    "\"completionTime\":\"2025-01-15T09:31:09.000Z\"")),
        P(200, INFO("\"state\":\"success\",\"startTime\":\"2025-01-15T09:30:00.000Z\","
                    "\"completionTime\":\"2025-01-15T09:32:00.000Z\"")),
        P(200, INFO("\"state\":\"success\"")),
    };
    info_is(*state, parts, 3,
            HEAD ",\"state\":\"success\",\"startTime\":\"2025-01-15T09:30:00.000Z\","
                 "\"completionTime\":\"2025-01-15T09:32:00.000Z\"}");
}

static void no_completion_time_while_a_part_is_still_running(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"startTime\":\"2025-01-15T09:31:00Z\","
                    "\"completionTime\":\"2025-01-15T09:31:09Z\"")),
        P(200, INFO("\"state\":\"running\",\"startTime\":\"2025-01-15T09:30:59Z\","
                    "\"progress\":50")),
    };
    info_is(*state, parts, 2,
            HEAD ",\"state\":\"running\",\"progress\":75,\"startTime\":\"2025-01-15T09:30:59Z\"}");
}

/* ---- task info: results ---- */

static void absent_results_stay_absent(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\"")),
        P(200, INFO("\"state\":\"success\",\"result\":null")),
    };
    info_is(*state, parts, 2, HEAD ",\"state\":\"success\"}");
}

static void absent_results_contribute_nothing_to_the_others(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\"")),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(GE("b")))),
        P(200, INFO("\"state\":\"success\"")),
    };
    info_is(*state, parts, 3, HEAD ",\"state\":\"success\",\"result\":" ARR(GE("b")) "}");
}

static void a_result_that_is_not_a_boxed_array_is_one_entry(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"result\":" G("a"))),
        P(200, INFO("\"state\":\"success\",\"result\":{\"_typeName\":\"ArrayOfString\","
                    "\"_value\":[\"x\",\"y\"]}")),
        P(200, INFO("\"state\":\"success\",\"result\":{\"_typeName\":\"ArrayOfX\",\"_value\":7}")),
    };
    info_is(*state, parts, 3,
            HEAD ",\"state\":\"success\",\"result\":" ARR(G("a") ",\"x\",\"y\","
                 "{\"_typeName\":\"ArrayOfX\",\"_value\":7}") "}");
}

static void ten_parts_keep_their_order(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("0")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("1")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(GE("2")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("3")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("4")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("5")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("6")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("7")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("8")))),
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("9")))),
    };
    info_is(*state, parts, 10,
            HEAD ",\"state\":\"success\",\"result\":" ARR(G("0") "," G("1") "," GE("2") ","
                 G("3") "," G("4") "," G("5") "," G("6") "," G("7") "," G("8") "," G("9")) "}");
}

static void strings_from_the_handle_and_provider_are_escaped(void **state)
{
    fx_t *f = *state;
    const sg_merge_part_t parts[] = {P(200, INFO("\"state\":\"success\""))};
    const char *want = "{\"_typeName\":\"SmsTaskInfo\",\"key\":\"a\\\"b\",\"task\":{\"_typeName\":"
                       "\"ManagedObjectReference\",\"type\":\"SmsTask\",\"value\":\"a\\\"b\"},"
                       "\"object\":{\"_typeName\":\"ManagedObjectReference\",\"type\":"
                       "\"VasaProvider\",\"value\":\"v\\\\p\"},\"state\":\"success\"}";
    assert_int_equal(sg_merge_task_info(&f->pool, "a\"b", "v\\p", parts, 1, &f->out, &f->status),
                     SG_OK);
    assert_int_equal(f->status, 200);
    assert_int_equal(sg_buf_avail(&f->out), strlen(want));
    assert_memory_equal(sg_buf_head(&f->out), want, strlen(want));
}

/* ---- task info: pass-through and refusals ---- */

static void a_failed_part_query_is_passed_through_unchanged(void **state)
{
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\"")),
        P(500, "{\"_typeName\":\"NotAuthenticated\",\"faultstring\":\"x\"}"),
        P(404, "not found"),
    };
    fx_t *f = *state;
    const char *want = "{\"_typeName\":\"NotAuthenticated\",\"faultstring\":\"x\"}";

    assert_int_equal(sg_merge_task_info(&f->pool, H, VP, parts, 3, &f->out, &f->status), SG_OK);
    assert_int_equal(f->status, 500);
    assert_int_equal(sg_buf_avail(&f->out), strlen(want));
    assert_memory_equal(sg_buf_head(&f->out), want, strlen(want));
}

static void a_failed_part_query_wins_over_a_malformed_part(void **state)
{
    const sg_merge_part_t parts[] = {P(200, "garbage"), P(502, "")};
    fx_t *f = *state;

    assert_int_equal(sg_merge_task_info(&f->pool, H, VP, parts, 2, &f->out, &f->status), SG_OK);
    assert_int_equal(f->status, 502);
    assert_int_equal(sg_buf_avail(&f->out), 0);
}

static void malformed_part_bodies_are_refused_and_leave_out_unchanged(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"state\":\"success\"} x",
        "{\"_typeName\":\"SmsTaskInfo\",\"key\":\"k\"}", /* no state */
        INFO("\"state\":\"done\""),                     /* not an SmsTaskState */
        INFO("\"state\":1"),
        INFO("\"state\":\"running\",\"progress\":\"5\""),
        INFO("\"state\":\"success\",\"startTime\":5"),
        INFO("\"state\":\"error\",\"error\":\"boom\""),
        "{\"_typeName\":\"Task\",\"state\":\"success\"}",
        "{\"state\":\"success\",\"state\":\"error\"}",  /* duplicate member */
    };
    fx_t *f = *state;

    sg_buf_lit(&f->out, "keep");
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        const sg_merge_part_t parts[] = {P(200, INFO("\"state\":\"success\"")),
                                         {200, bad[i], strlen(bad[i])}};
        f->status = -1;
        if (sg_merge_task_info(&f->pool, H, VP, parts, 2, &f->out, &f->status) != SG_EPROTO)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(f->status, -1);
        assert_int_equal(sg_buf_avail(&f->out), 4);
    }
}

static void a_submission_fault_that_is_not_an_object_is_refused(void **state)
{
    fx_t *f = *state;
    const sg_merge_part_t parts[] = {P(200, INFO("\"state\":\"success\"")), P(0, "\"busy\"")};

    assert_int_equal(sg_merge_task_info(&f->pool, H, VP, parts, 2, &f->out, &f->status),
                     SG_EPROTO);
    assert_int_equal(sg_merge_task_info(&f->pool, H, VP, parts, 0, &f->out, &f->status),
                     SG_EPROTO);
}

static void an_output_over_the_buffer_maximum_is_too_big_and_out_unchanged(void **state)
{
    fx_t *f = *state;
    sg_buf_t small;
    const sg_merge_part_t parts[] = {
        P(200, INFO("\"state\":\"success\",\"result\":" ARR(G("a") "," G("b")))),
    };

    sg_buf_init(&small, 300);
    sg_buf_lit(&small, "x");
    assert_int_equal(sg_merge_task_info(&f->pool, H, VP, parts, 1, &small, &f->status),
                     SG_ETOOBIG);
    assert_int_equal(sg_buf_avail(&small), 1);
    sg_buf_dispose(&small);
}

/* ---- task result (from the parts' task infos) ---- */

#define DONE(result) P(200, INFO("\"state\":\"success\",\"result\":" result))
#define DONE_NO_RESULT P(200, INFO("\"state\":\"success\""))
#define RUNNING P(200, INFO("\"state\":\"running\",\"progress\":40"))
#define QUEUED P(200, INFO("\"state\":\"queued\""))
#define FAILED(fault) P(200, INFO("\"state\":\"error\",\"error\":" fault))
#define NONE {0, NULL, 0}

static void results_are_concatenated_in_order(void **state)
{
    const sg_merge_part_t infos[] = {
        DONE(ARR(G("a") "," G("b"))),
        DONE(ARR(GE("c"))),
        DONE(ARR(G("d"))),
    };
    result_is(*state, infos, NULL, 3, 200, ARR(G("a") "," G("b") "," GE("c") "," G("d")));
}

static void result_is_204_while_any_part_is_queued_or_running(void **state)
{
    const sg_merge_part_t a[] = {DONE(ARR(G("a"))), RUNNING, DONE(ARR(G("c")))};
    const sg_merge_part_t b[] = {QUEUED, P(0, BUSY), FAILED(TOOMANY)};
    result_is(*state, a, NULL, 3, 204, "");
    result_is(*state, b, NULL, 3, 204, "");
}

static void a_part_that_ended_in_error_does_not_hold_the_result_back_for_ever(void **state)
{
    /* Its own QuerySmsTaskResult would say 204 for ever: the info says it is over. */
    const sg_merge_part_t infos[] = {DONE(ARR(G("a"))), FAILED(TOOMANY), DONE(ARR(G("c")))};
    const sg_merge_part_t results[] = {NONE, P(204, ""), NONE};
    result_is(*state, infos, results, 3, 200, ARR(G("a") "," G("c")));
}

static void finished_parts_without_a_result_in_their_info_use_their_result_answer(void **state)
{
    const sg_merge_part_t infos[] = {DONE_NO_RESULT, DONE(ARR(G("b"))), DONE_NO_RESULT,
                                     DONE_NO_RESULT};
    const sg_merge_part_t results[] = {P(200, ARR(G("a"))), NONE, P(204, ""), P(200, "null")};
    result_is(*state, infos, results, 4, 200, ARR(G("a") "," G("b")));
    sg_buf_reset(&((fx_t *)*state)->out);
    result_is(*state, infos, NULL, 4, 200, ARR(G("b")));
}

static void result_of_only_failed_parts_is_an_empty_array(void **state)
{
    const sg_merge_part_t infos[] = {P(0, BUSY), P(0, TOOMANY)};
    result_is(*state, infos, NULL, 2, 200, ARR(""));
}

static void result_part_query_failure_is_passed_through(void **state)
{
    const sg_merge_part_t infos[] = {DONE(ARR(G("a"))), P(500, BUSY), P(200, "bad")};
    const sg_merge_part_t infos2[] = {DONE_NO_RESULT, DONE(ARR(G("b")))};
    const sg_merge_part_t results2[] = {P(503, BUSY), NONE};
    result_is(*state, infos, NULL, 3, 500, BUSY);
    sg_buf_reset(&((fx_t *)*state)->out);
    result_is(*state, infos2, results2, 2, 503, BUSY);
}

static void result_unboxed_value_is_one_entry(void **state)
{
    const sg_merge_part_t infos[] = {DONE(G("a")), DONE("[1,2]"), DONE(ARR(G("b")))};
    result_is(*state, infos, NULL, 3, 200, ARR(G("a") ",[1,2]," G("b")));
}

static void result_malformed_body_is_refused(void **state)
{
    fx_t *f = *state;
    const sg_merge_part_t infos[] = {DONE(ARR(G("a"))), P(200, "{\"a\":")};
    const sg_merge_part_t infos2[] = {DONE(ARR(G("a"))), DONE_NO_RESULT};
    const sg_merge_part_t results2[] = {NONE, P(200, "{\"a\":")};

    assert_int_equal(sg_merge_task_result(&f->pool, infos, NULL, 2, &f->out, &f->status),
                     SG_EPROTO);
    assert_int_equal(sg_merge_task_result(&f->pool, infos2, results2, 2, &f->out, &f->status),
                     SG_EPROTO);
    assert_int_equal(sg_buf_avail(&f->out), 0);
    assert_int_equal(sg_merge_task_result(&f->pool, infos, NULL, 0, &f->out, &f->status),
                     SG_EPROTO);
}

static void result_of_ten_parts_keeps_their_order(void **state)
{
    const sg_merge_part_t infos[] = {
        DONE(ARR(G("0"))), DONE(ARR(G("1"))),  DONE(ARR(G("2"))), DONE(ARR(G("3"))),
        DONE(ARR(GE("4"))), DONE(ARR(G("5"))), DONE(ARR(G("6"))), DONE(ARR(G("7"))),
        DONE(ARR(G("8"))), DONE(ARR(G("9") "," G("9b"))),
    };
    result_is(*state, infos, NULL, 10, 200,
              ARR(G("0") "," G("1") "," G("2") "," G("3") "," GE("4") "," G("5") "," G("6") ","
                  G("7") "," G("8") "," G("9") "," G("9b")));
}

/* ---- peeking at one part's task info ---- */

#define OBJ "\"object\":{\"_typeName\":\"ManagedObjectReference\",\"type\":\"VasaProvider\"," \
            "\"value\":\"vasa-9\"},"

static void peek_reads_a_toomany_task_error_its_size_and_provider(void **state)
{
    fx_t *f = *state;
    static const char body[] = INFO(OBJ "\"state\":\"error\",\"error\":" TOOMANY);
    sg_merge_peek_t pk;

    assert_int_equal(sg_merge_info_peek(&f->pool, body, sizeof(body) - 1, &pk), SG_OK);
    assert_int_equal(pk.state, SG_MERGE_ERROR);
    assert_int_equal(pk.toomany, 2);
    assert_string_equal(pk.provider, "vasa-9");
    assert_int_equal(pk.has_result, 0);
}

static void peek_takes_a_toomany_without_a_usable_size_as_one(void **state)
{
    fx_t *f = *state;
    static const char none[] = INFO("\"state\":\"error\",\"error\":{\"_typeName\":\"TooMany\"}");
    static const char zero[] =
        INFO("\"state\":\"error\",\"error\":{\"_typeName\":\"TooMany\",\"maxBatchSize\":-3}");
    static const char huge[] = INFO(
        "\"state\":\"error\",\"error\":{\"_typeName\":\"TooMany\",\"maxBatchSize\":99999999999}");
    sg_merge_peek_t pk;

    assert_int_equal(sg_merge_info_peek(&f->pool, none, sizeof(none) - 1, &pk), SG_OK);
    assert_int_equal(pk.toomany, 1);
    assert_null(pk.provider);
    assert_int_equal(sg_merge_info_peek(&f->pool, zero, sizeof(zero) - 1, &pk), SG_OK);
    assert_int_equal(pk.toomany, 1);
    assert_int_equal(sg_merge_info_peek(&f->pool, huge, sizeof(huge) - 1, &pk), SG_OK);
    assert_int_equal(pk.toomany, SG_MERGE_BATCH_MAX);
}

static void peek_sees_no_toomany_in_other_states_and_faults(void **state)
{
    fx_t *f = *state;
    static const char busy[] = INFO("\"state\":\"error\",\"error\":" BUSY);
    static const char ok[] = INFO("\"state\":\"success\",\"result\":" ARR(G("a")));
    static const char run[] = INFO("\"state\":\"running\",\"error\":" TOOMANY);
    sg_merge_peek_t pk;

    assert_int_equal(sg_merge_info_peek(&f->pool, busy, sizeof(busy) - 1, &pk), SG_OK);
    assert_int_equal(pk.toomany, 0);
    assert_int_equal(sg_merge_info_peek(&f->pool, ok, sizeof(ok) - 1, &pk), SG_OK);
    assert_int_equal(pk.state, SG_MERGE_SUCCESS);
    assert_int_equal(pk.has_result, 1);
    assert_int_equal(pk.toomany, 0);
    assert_int_equal(sg_merge_info_peek(&f->pool, run, sizeof(run) - 1, &pk), SG_OK);
    assert_int_equal(pk.state, SG_MERGE_RUNNING);
    assert_int_equal(pk.toomany, 0);
}

static void peek_refuses_what_is_not_a_task_info(void **state)
{
    fx_t *f = *state;
    sg_merge_peek_t pk;

    assert_int_equal(sg_merge_info_peek(&f->pool, BUSY, sizeof(BUSY) - 1, &pk), SG_EPROTO);
    assert_int_equal(sg_merge_info_peek(&f->pool, "", 0, &pk), SG_EPROTO);
    assert_int_equal(sg_merge_info_peek(&f->pool, "[1]", 3, &pk), SG_EPROTO);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(all_parts_succeeded_with_results_gives_success_and_concatenated_results),
        T(one_running_part_makes_the_task_running_with_averaged_progress),
        T(running_wins_over_queued),
        T(queued_when_parts_are_queued_and_none_running),
        T(all_queued_has_progress_zero),
        T(a_submission_fault_makes_the_finished_task_an_error_with_that_fault),
        T(a_submission_fault_does_not_end_a_running_task),
        T(a_task_error_reports_the_parts_error_and_the_other_results),
        T(the_first_failing_part_gives_the_error),
        T(an_error_part_without_a_fault_leaves_the_error_to_the_next_failing_part),
        T(progress_is_averaged_with_missing_progress_counting_zero),
        T(progress_out_of_range_is_clamped),
        T(start_time_is_the_earliest_and_completion_the_latest),
        T(no_completion_time_while_a_part_is_still_running),
        T(absent_results_stay_absent),
        T(absent_results_contribute_nothing_to_the_others),
        T(a_result_that_is_not_a_boxed_array_is_one_entry),
        T(ten_parts_keep_their_order),
        T(strings_from_the_handle_and_provider_are_escaped),
        T(a_failed_part_query_is_passed_through_unchanged),
        T(a_failed_part_query_wins_over_a_malformed_part),
        T(malformed_part_bodies_are_refused_and_leave_out_unchanged),
        T(a_submission_fault_that_is_not_an_object_is_refused),
        T(an_output_over_the_buffer_maximum_is_too_big_and_out_unchanged),
        T(results_are_concatenated_in_order),
        T(result_is_204_while_any_part_is_queued_or_running),
        T(a_part_that_ended_in_error_does_not_hold_the_result_back_for_ever),
        T(finished_parts_without_a_result_in_their_info_use_their_result_answer),
        T(result_of_only_failed_parts_is_an_empty_array),
        T(result_part_query_failure_is_passed_through),
        T(result_unboxed_value_is_one_entry),
        T(result_malformed_body_is_refused),
        T(result_of_ten_parts_keeps_their_order),
        T(peek_reads_a_toomany_task_error_its_size_and_provider),
        T(peek_takes_a_toomany_without_a_usable_size_as_one),
        T(peek_sees_no_toomany_in_other_states_and_faults),
        T(peek_refuses_what_is_not_a_task_info),
    };
    return cmocka_run_group_tests_name("filters/merge", tests, NULL, NULL);
}
