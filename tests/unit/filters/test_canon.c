/*
 * Unit tests for filters/canon.c: the canonical form of request targets and the guarded
 * routes they name (docs/design.md "Routes"). One table of
 * targets with their expected canonical form or refusal drives most tests; the rest check
 * properties every accepted row must have (idempotence, fields pointing into the output)
 * and the edges of the input (length, bytes past n, 64 KiB targets).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "filters/canon.h"

#define REL "8.0.3.0"
#define STOP_M "TestFailoverReplicationGroupStop_Task"
#define STOP "/sdk/vim25/" REL "/sms/VasaProvider/vasa-1/" STOP_M
#define INFO "/sdk/vim25/" REL "/sms/SmsTask/SmsTask-123/QuerySmsTaskInfo"
#define RESULT "/sdk/vim25/" REL "/sms/SmsTask/SmsTask-123/QuerySmsTaskResult"

typedef struct {
    const char *target;
    size_t n;            /* the literal's length: targets may hold NUL bytes */
    int rv;              /* SG_OK or SG_ERR */
    sg_route_id_t route; /* accepted rows */
    const char *canon;   /* accepted rows: the expected canonical target */
    const char *release; /* guarded rows */
    const char *moid;    /* guarded rows */
    const char *why;     /* refused rows: a substring of the expected reason */
} canon_case_t;

#define OTHER(t, c) {(t), sizeof(t) - 1, SG_OK, SG_ROUTE_OTHER, (c), NULL, NULL, NULL}
#define GUARD(t, r, c, rel, id) {(t), sizeof(t) - 1, SG_OK, (r), (c), (rel), (id), NULL}
#define REFUSE(t, w) {(t), sizeof(t) - 1, SG_ERR, SG_ROUTE_OTHER, NULL, NULL, NULL, (w)}

static const canon_case_t cases[] = {
    /* The guarded routes, as real clients send them. */
    GUARD(STOP, SG_ROUTE_STOP_TEST, STOP, REL, "vasa-1"),
    GUARD(INFO, SG_ROUTE_TASK_INFO, INFO, REL, "SmsTask-123"),
    GUARD(RESULT, SG_ROUTE_TASK_RESULT, RESULT, REL, "SmsTask-123"),
    GUARD("/sdk/vim25/9.0.0.0/sms/VasaProvider/vasa-1/" STOP_M, SG_ROUTE_STOP_TEST,
          "/sdk/vim25/9.0.0.0/sms/VasaProvider/vasa-1/" STOP_M, "9.0.0.0", "vasa-1"),
    GUARD("/sdk/vim25/12345.0.99999.08/sms/VasaProvider/v/" STOP_M, SG_ROUTE_STOP_TEST,
          "/sdk/vim25/12345.0.99999.08/sms/VasaProvider/v/" STOP_M, "12345.0.99999.08", "v"),
    GUARD("/sdk/vim25/8.0.3.0/sms/SmsTask/c1.AbC_-x~9/QuerySmsTaskResult", SG_ROUTE_TASK_RESULT,
          "/sdk/vim25/8.0.3.0/sms/SmsTask/c1.AbC_-x~9/QuerySmsTaskResult", REL, "c1.AbC_-x~9"),

    /* Encoded unreserved bytes are decoded, in every segment and in any hex case. */
    GUARD("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa%2D1/TestFailoverReplicationGroupStop%5FTask",
          SG_ROUTE_STOP_TEST, STOP, REL, "vasa-1"),
    GUARD("/%73dk/%76im25/%38.%30.3.0/%73ms/%56asa%50rovider/%76asa-1/%54estFailover"
          "ReplicationGroupStop_Task",
          SG_ROUTE_STOP_TEST, STOP, REL, "vasa-1"),
    GUARD("/%73%64%6b/%76%69%6D%32%35/" REL "/%73%6d%73/VasaProvider/vasa-1/" STOP_M,
          SG_ROUTE_STOP_TEST, STOP, REL, "vasa-1"),
    GUARD("/sdk/vim25/8%2E0%2e3.0/sms/VasaProvider/vasa-1/" STOP_M, SG_ROUTE_STOP_TEST, STOP, REL,
          "vasa-1"),
    GUARD("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa%7e1/" STOP_M, SG_ROUTE_STOP_TEST,
          "/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa~1/" STOP_M, REL, "vasa~1"),
    GUARD("/sdk/vim25/8.0.3.0/sms/%53ms%54ask/t-1/%51uerySmsTaskInfo", SG_ROUTE_TASK_INFO,
          "/sdk/vim25/8.0.3.0/sms/SmsTask/t-1/QuerySmsTaskInfo", REL, "t-1"),

    /* Reserved bytes stay encoded, with upper-case hex: one spelling per segment. */
    GUARD("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa%3a1/" STOP_M, SG_ROUTE_STOP_TEST,
          "/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa%3A1/" STOP_M, REL, "vasa%3A1"),
    GUARD("/sdk/vim25/8.0.3.0/sms/VasaProvider/urn:vasa@1/" STOP_M, SG_ROUTE_STOP_TEST,
          "/sdk/vim25/8.0.3.0/sms/VasaProvider/urn:vasa@1/" STOP_M, REL, "urn:vasa@1"),
    OTHER("/a%3a%2cb", "/a%3A%2Cb"),
    OTHER("/%7b%7D%5b%5D%22", "/%7B%7D%5B%5D%22"),
    OTHER("/%41%42c%2d", "/ABc-"),
    OTHER("/x%2e%2e%2e", "/x..."),
    OTHER("/%2e%2e%2e", "/..."),

    /* Encodings that cannot be made unambiguous. */
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa%2F1/" STOP_M, "'/'"),
    REFUSE("/sdk%2fvim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "'/'"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa%5C1/" STOP_M, "'\\'"),
    REFUSE("/a%5cb", "'\\'"),
    REFUSE("/a%25b", "'%'"),
    REFUSE("/a%252Fb", "'%'"),
    REFUSE("/a%00b", "control"),
    REFUSE("/a%0ab", "control"),
    REFUSE("/a%0D%0AX-Injected:%201", "control"),
    REFUSE("/a%7fb", "control"),
    REFUSE("/a%c3%a9", "non-ASCII"),
    REFUSE("/a%80", "non-ASCII"),
    OTHER("/folder/My%20VM/My%20vm.vmx?dcPath=dc1&dsName=ds%201",
          "/folder/My%20VM/My%20vm.vmx?dcPath=dc1&dsName=ds%201"),
    REFUSE("/a%3Bjsessionid=1", "';'"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M "%3bx", "';'"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M "%3Fx", "'?'"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M "%23x", "'#'"),
    REFUSE("/a%", "malformed"),
    REFUSE("/a%4", "malformed"),
    REFUSE("/a%G1", "malformed"),
    REFUSE("/a%4g", "malformed"),
    REFUSE("/a%?b", "malformed"),

    /* Raw bytes. */
    REFUSE("/caf\xc3\xa9", "non-ASCII"),
    REFUSE("/a\x80", "non-ASCII"),
    REFUSE("/a\0b", "control"),
    REFUSE("/a\tb", "control"),
    REFUSE("/a b", "space"),
    REFUSE("/a\x7f", "control"),
    REFUSE("/a\r\nHost: evil", "control"),
    REFUSE("/sdk\\vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "backslash"),
    REFUSE("/a?b c", "control"),
    REFUSE("/a?caf\xc3\xa9", "non-ASCII"),
    REFUSE("/a?b\0", "control"),

    /* Dot segments in every spelling, and empty segments. */
    REFUSE("/sdk/./vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "dot segment"),
    REFUSE("/x/../sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "dot segment"),
    REFUSE("/x/%2e%2e/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "dot segment"),
    REFUSE("/x/.%2E/sdk", "dot segment"),
    REFUSE("/x/%2E/sdk", "dot segment"),
    REFUSE("/x/%2e", "dot segment"),
    REFUSE("/..", "dot segment"),
    REFUSE("/.", "dot segment"),
    REFUSE("/a/.?q", "dot segment"),
    OTHER("/.../a", "/.../a"),
    OTHER("/.a/b./..c", "/.a/b./..c"),
    REFUSE("//sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "empty"),
    REFUSE("/sdk/vim25//8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "empty"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider//" STOP_M, "empty"),
    REFUSE(STOP "/", "empty"),
    REFUSE("/sdk/", "empty"),
    REFUSE("//", "empty"),
    REFUSE("/a/?q", "empty"),

    /* Path parameters. */
    REFUSE(STOP ";jsessionid=1", "';'"),
    REFUSE("/sdk;jsessionid=1/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "';'"),
    REFUSE("/x/..;/sdk/vim25", "';'"),
    REFUSE("/a;", "';'"),

    /* Queries: refused on a guarded route, kept verbatim elsewhere. */
    REFUSE(STOP "?", "query string on a guarded route"),
    REFUSE(STOP "?force=true", "query string on a guarded route"),
    REFUSE(INFO "?a=b", "query string on a guarded route"),
    REFUSE(RESULT "?", "query string on a guarded route"),
    OTHER("/sdk/vim25/8.0.3.0/ServiceInstance/ServiceInstance/content?x=1&y=%2F%zz",
          "/sdk/vim25/8.0.3.0/ServiceInstance/ServiceInstance/content?x=1&y=%2F%zz"),
    OTHER("/a%41?%41", "/aA?%41"),
    OTHER("/a?b/../c;d\\e?f", "/a?b/../c;d\\e?f"),
    OTHER("/a?", "/a?"),
    OTHER("/?", "/?"),
    OTHER("/?x=1", "/?x=1"),

    /* Case: the guarded routes are matched case-insensitively, and only the canonical case
     * is accepted. */
    REFUSE("/SDK/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "canonical case"),
    REFUSE("/sdk/VIM25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "canonical case"),
    REFUSE("/sdk/vim25/8.0.3.0/SMS/VasaProvider/vasa-1/" STOP_M, "canonical case"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/vasaprovider/vasa-1/" STOP_M, "canonical case"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/testfailoverreplicationgroupstop_task",
           "canonical case"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/%56ASAPROVIDER/vasa-1/" STOP_M, "canonical case"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/smstask/t-1/QuerySmsTaskInfo", "canonical case"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/SmsTask/t-1/querysmstaskresult", "canonical case"),
    REFUSE("/sDk/vim25/latest/sms/VasaProvider/vasa-1/" STOP_M, "canonical case"),
    GUARD("/sdk/vim25/8.0.3.0/sms/VasaProvider/VASA-1/" STOP_M, SG_ROUTE_STOP_TEST,
          "/sdk/vim25/8.0.3.0/sms/VasaProvider/VASA-1/" STOP_M, REL, "VASA-1"),

    /* Every release is guarded; only four dot-separated numbers pass. */
    REFUSE("/sdk/vim25/8.0.3/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/8.0.3.0.1/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/latest/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/8.0.3.x/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25//sms/VasaProvider/vasa-1/" STOP_M, "empty"),
    REFUSE("/sdk/vim25/123456.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/8..3.0/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/8.0.3.0./sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/.8.0.3/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/8.0.3.0%3A/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/8%2E0%2E3/sms/VasaProvider/vasa-1/" STOP_M, "release"),
    REFUSE("/sdk/vim25/+8.0.3.0/sms/SmsTask/t-1/QuerySmsTaskInfo", "release"),

    /* The stop-test method under any other shape. */
    REFUSE(STOP ".json", "outside its canonical route"),
    REFUSE(STOP "-", "outside its canonical route"),
    REFUSE(STOP "%3A", "outside its canonical route"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/SmsProvider/vasa-1/" STOP_M, "outside its canonical route"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/SmsTask/t-1/" STOP_M, "outside its canonical route"),
    REFUSE("/sdk/vim25/8.0.3.0/VasaProvider/vasa-1/" STOP_M, "outside its canonical route"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/x/VasaProvider/vasa-1/" STOP_M, "outside its canonical route"),
    REFUSE("/" STOP_M, "outside its canonical route"),
    REFUSE("/api/TESTFAILOVERREPLICATIONGROUPSTOP_TASK?x", "outside its canonical route"),
    REFUSE(STOP "%20", "outside its canonical route"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/%20" STOP_M, "outside its canonical route"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/+" STOP_M "+", "outside its canonical"),
    REFUSE("/sdk/vim25/8.0.3.0/sms/VasaProvider%20/vasa-1/" STOP_M, "outside its canonical route"),
    REFUSE("/sdk%20/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "outside its canonical route"),
    REFUSE("/x/vim.VasaProvider." STOP_M, "outside its canonical route"),
    REFUSE("/x/%3a" STOP_M, "outside its canonical route"),
    REFUSE("/x/aa%7B" STOP_M "%7D", "outside its canonical route"),
    OTHER("/x/" STOP_M "2", "/x/" STOP_M "2"),
    OTHER("/x/" STOP_M "_v2", "/x/" STOP_M "_v2"),
    OTHER("/x/My" STOP_M, "/x/My" STOP_M),
    OTHER("/x/%41" STOP_M, "/x/A" STOP_M),
    OTHER("/x/" STOP_M "/y", "/x/" STOP_M "/y"),

    /* Everything else is another path. */
    OTHER(STOP "/extra", STOP "/extra"),
    OTHER("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1",
          "/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1"),
    OTHER("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/QueryProviderInfo",
          "/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/QueryProviderInfo"),
    OTHER("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/QuerySmsTaskInfo",
          "/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/QuerySmsTaskInfo"),
    OTHER("/sdk/vim25/8.0.3.0/sms/Task/task-1/QuerySmsTaskInfo?x",
          "/sdk/vim25/8.0.3.0/sms/Task/task-1/QuerySmsTaskInfo?x"),
    OTHER("/sdk/vim25/8.0.3.0/SessionManager/SessionManager/Login",
          "/sdk/vim25/8.0.3.0/SessionManager/SessionManager/Login"),
    OTHER("/x/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/QuerySmsTaskInfo",
          "/x/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/QuerySmsTaskInfo"),
    OTHER("/", "/"),
    OTHER("/healthz", "/healthz"),
    OTHER("/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b"),

    /* Not origin form, or with a fragment. */
    REFUSE("", "start with '/'"),
    REFUSE("*", "start with '/'"),
    REFUSE("sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "start with '/'"),
    REFUSE("https://vc/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/" STOP_M, "start with '/'"),
    REFUSE("?a", "start with '/'"),
    REFUSE("%2Fsdk", "start with '/'"),
    REFUSE("/a#b", "fragment"),
    REFUSE("/a?b#c", "fragment"),
    REFUSE(STOP "#x", "fragment"),
    REFUSE("/#", "fragment"),
};

/* Runs one row; on a mismatch prints the row so the table stays readable. */
static void check_case(size_t idx, const canon_case_t *c)
{
    sg_pool_t pool;
    sg_canon_t out;
    const char *why = NULL;
    int rv;

    sg_pool_init(&pool, 512);
    rv = sg_canon_target(&pool, c->target, c->n, &out, &why);
    if (rv != c->rv) {
        print_error("row %zu \"%s\": rv %d, want %d (why: %s)\n", idx, c->target, rv, c->rv,
                    why ? why : "-");
        fail();
    }
    if (rv == SG_OK) {
        if (out.route != c->route || strcmp(out.path, c->canon) != 0) {
            print_error("row %zu \"%s\": got route %d \"%s\", want route %d \"%s\"\n", idx,
                        c->target, out.route, out.path, c->route, c->canon);
            fail();
        }
        assert_int_equal(out.path_len, strlen(c->canon));
        assert_true(out.path_len <= c->n); /* never grows: one buffer of n + 1 bytes */
        if (c->route != SG_ROUTE_OTHER) {
            assert_int_equal(out.release.n, strlen(c->release));
            assert_memory_equal(out.release.p, c->release, out.release.n);
            assert_int_equal(out.moid.n, strlen(c->moid));
            assert_memory_equal(out.moid.p, c->moid, out.moid.n);
        } else {
            assert_null(out.release.p);
            assert_null(out.moid.p);
        }
    } else {
        assert_non_null(why);
        if (strstr(why, c->why) == NULL) {
            print_error("row %zu \"%s\": why \"%s\", want \"%s\"\n", idx, c->target, why,
                        c->why);
            fail();
        }
        assert_null(out.path);
        assert_int_equal(out.route, SG_ROUTE_OTHER);
    }
    sg_pool_dispose(&pool);
}

static void canonicalises_or_refuses_every_target_in_the_table(void **state)
{
    assert_true(SG_ARRAY_SIZE(cases) >= 50);
    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++)
        check_case(i, &cases[i]);
}

static void canonical_output_is_a_fixed_point(void **state)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++) {
        sg_pool_t pool;
        sg_canon_t a, b;
        const char *why;

        if (cases[i].rv != SG_OK)
            continue;
        sg_pool_init(&pool, 512);
        assert_int_equal(sg_canon_target(&pool, cases[i].target, cases[i].n, &a, &why), SG_OK);
        assert_int_equal(sg_canon_target(&pool, a.path, a.path_len, &b, &why), SG_OK);
        assert_int_equal(b.route, a.route);
        assert_int_equal(b.path_len, a.path_len);
        assert_string_equal(b.path, a.path);
        assert_int_equal(b.release.n, a.release.n);
        assert_int_equal(b.moid.n, a.moid.n);
        sg_pool_dispose(&pool);
    }
}

static void guarded_fields_point_into_the_canonical_path(void **state)
{
    sg_pool_t pool;
    sg_canon_t out;
    const char *why;

    sg_pool_init(&pool, 512);
    assert_int_equal(sg_canon_target(&pool, STOP, strlen(STOP), &out, &why), SG_OK);
    assert_ptr_equal(out.release.p, out.path + strlen("/sdk/vim25/"));
    assert_ptr_equal(out.moid.p, out.path + strlen("/sdk/vim25/" REL "/sms/VasaProvider/"));
    assert_int_equal(out.path[out.path_len], '\0');
    sg_pool_dispose(&pool);
}

static void reads_no_byte_past_n(void **state)
{
    sg_pool_t pool;
    sg_canon_t out;
    const char *why;
    char *t;

    sg_pool_init(&pool, 512);
    /* Bytes after n are not part of the target: a '#' or a ';' there changes nothing. */
    assert_int_equal(sg_canon_target(&pool, STOP ";x#y", strlen(STOP), &out, &why), SG_OK);
    assert_int_equal(out.route, SG_ROUTE_STOP_TEST);
    assert_string_equal(out.path, STOP);
    /* A heap copy without a terminator, so ASan sees any read past the end. */
    t = malloc(4);
    memcpy(t, "/a%4", 4);
    assert_int_equal(sg_canon_target(&pool, t, 4, &out, &why), SG_ERR);
    assert_non_null(strstr(why, "malformed"));
    memcpy(t, "/%41", 4);
    assert_int_equal(sg_canon_target(&pool, t, 4, &out, &why), SG_OK);
    assert_string_equal(out.path, "/A");
    free(t);
    sg_pool_dispose(&pool);
}

/* A 64 KiB buffer built by repeating `unit` after `head` and ending with `tail`. */
static char *make_target(const char *head, const char *unit, const char *tail, size_t *n)
{
    size_t cap = 64 * 1024, hn = strlen(head), un = strlen(unit), tn = strlen(tail), k = hn;
    char *t = malloc(cap);

    assert_non_null(t);
    memcpy(t, head, hn);
    while (k + un + tn <= cap) {
        memcpy(t + k, unit, un);
        k += un;
    }
    memcpy(t + k, tail, tn);
    *n = k + tn;
    return t;
}

static void handles_64_kib_targets(void **state)
{
    sg_pool_t pool;
    sg_canon_t out;
    const char *why;
    size_t n;
    char *t;

    sg_pool_init(&pool, 4096);

    t = make_target("/", "a", "", &n);
    assert_true(n > 65000);
    assert_int_equal(sg_canon_target(&pool, t, n, &out, &why), SG_OK);
    assert_int_equal(out.route, SG_ROUTE_OTHER);
    assert_int_equal(out.path_len, n);
    assert_memory_equal(out.path, t, n);
    free(t);

    /* Thousands of segments, and a long query. */
    t = make_target("", "/ab", "?q=/%2F;\\z", &n);
    assert_int_equal(sg_canon_target(&pool, t, n, &out, &why), SG_OK);
    assert_int_equal(out.path_len, n);
    free(t);

    /* A guarded route with a 64 KiB moId spelled in escapes: output a third of the input. */
    t = make_target("/sdk/vim25/8.0.3.0/sms/VasaProvider/", "%61", "/" STOP_M, &n);
    assert_int_equal(sg_canon_target(&pool, t, n, &out, &why), SG_OK);
    assert_int_equal(out.route, SG_ROUTE_STOP_TEST);
    assert_int_equal(out.moid.n, (n - strlen("/sdk/vim25/8.0.3.0/sms/VasaProvider/") -
                                  strlen("/" STOP_M)) / 3);
    for (size_t i = 0; i < out.moid.n; i++)
        assert_int_equal(out.moid.p[i], 'a');
    free(t);

    /* Refusals found at the very end. */
    t = make_target("/", "x", "%2", &n);
    assert_int_equal(sg_canon_target(&pool, t, n, &out, &why), SG_ERR);
    free(t);
    t = make_target("", "/x", "/..", &n);
    assert_int_equal(sg_canon_target(&pool, t, n, &out, &why), SG_ERR);
    free(t);
    t = make_target("/x?", "q", "\x01", &n);
    assert_int_equal(sg_canon_target(&pool, t, n, &out, &why), SG_ERR);
    free(t);

    sg_pool_dispose(&pool);
}

static void every_single_byte_after_a_slash_is_accepted_or_refused_consistently(void **state)
{
    sg_pool_t pool;
    sg_canon_t out;
    const char *why;
    char t[4] = "/a";

    sg_pool_init(&pool, 4096);
    for (unsigned c = 0; c < 256; c++) {
        int bad = c < 0x21 || c >= 0x7F || c == '#' || c == '\\' || c == ';' || c == '%';
        int rv;

        t[2] = (char)c;
        rv = sg_canon_target(&pool, t, 3, &out, &why);
        if (bad)
            assert_int_equal(rv, SG_ERR);
        else if (c == '/')
            assert_int_equal(rv, SG_ERR); /* "/a/": trailing empty segment */
        else
            assert_int_equal(rv, SG_OK);
    }
    sg_pool_dispose(&pool);
}

/* The audit's view of a refused target: the method named in the path, any spelling. */
static void mentions_the_stop_method_in_any_spelling_of_the_path(void **state)
{
    sg_pool_t pool;
    static const char *const yes[] = {
        "/sdk/vim25/8.0.3.0/sms/VasaProvider/v/TestFailoverReplicationGroupStop_Task",
        "/sdk/vim25/8.0.3.0/sms/VasaProvider/v/%54estFailoverReplicationGroupStop_Task",
        "/x/testfailoverreplicationgroupstop",
        "/x/%74%65%73%74FailoverReplicationGroupStop?q=1",
    };
    static const char *const no[] = {
        "/sdk/vim25/8.0.3.0/sms/VasaProvider/v/QuerySmsTaskInfo",
        "/sim/echo/x?op=TestFailoverReplicationGroupStop_Task",
        "/x/TestFailover%00ReplicationGroupStop",
        "",
    };

    (void)state;
    sg_pool_init(&pool, 1024);
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(sg_canon_mentions_stop(&pool, yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(sg_canon_mentions_stop(&pool, no[i], strlen(no[i])));
    sg_pool_dispose(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mentions_the_stop_method_in_any_spelling_of_the_path),
        cmocka_unit_test(canonicalises_or_refuses_every_target_in_the_table),
        cmocka_unit_test(canonical_output_is_a_fixed_point),
        cmocka_unit_test(guarded_fields_point_into_the_canonical_path),
        cmocka_unit_test(reads_no_byte_past_n),
        cmocka_unit_test(handles_64_kib_targets),
        cmocka_unit_test(every_single_byte_after_a_slash_is_accepted_or_refused_consistently),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
