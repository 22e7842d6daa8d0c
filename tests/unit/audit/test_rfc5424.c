/*
 * Unit tests for audit/rfc5424.c and the syslog side of audit/chain.c's verifier: the message
 * built for each kind of record (decision, outcome, checkpoint, a refusal without principal),
 * SD-PARAM escaping (RFC 5424 6.3.3), the BOM of a non-ASCII line, parsing what a receiver
 * wrote, and sg_audit_verify_ex over a file of such messages: ok, auto-detected, another
 * program's message skipped, a changed SD, a changed MSG, a dropped message, a line that is
 * not a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "audit/chain.h"
#include "audit/rfc5424.h"
#include "tests/common/tmpdir.h"

#define TIME "2024-05-01T12:00:00.123456Z"

static char tdir[64];

static const char *path_in(const char *name)
{
    static char p[256];

    snprintf(p, sizeof(p), "%s/%s", tdir, name);
    return p;
}

/* The message for line, NUL-terminated, into a static buffer. */
static const char *message(const char *line)
{
    static char out[8192];
    sg_buf_t b;

    sg_buf_init(&b, 1 << 20);
    assert_int_equal(sg_rfc5424_audit(&b, 10 * 8 + 5, "gw1", "smsguard", 42, line, strlen(line)),
                     SG_OK);
    assert_true(b.len < sizeof(out));
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    sg_buf_dispose(&b);
    return out;
}

static void decision_record(void **state)
{
    const char *line =
        "{\"seq\":7,\"prev\":\"ab\",\"time\":\"" TIME "\",\"stage\":\"decision\","
        "\"request_id\":\"r-1\",\"principal\":{\"subject\":\"alice\",\"tenant\":\"t1\","
        "\"token_id\":\"x\",\"auth\":\"static\"},\"upstream\":\"vc-east\",\"groups\":[],"
        "\"decision\":\"allow\",\"fault\":null}";
    char want[4096];

    snprintf(want, sizeof(want),
             "<85>1 " TIME " gw1 smsguard 42 audit [smsguard@32473 seq=\"7\" stage=\"decision\" "
             "request_id=\"r-1\" tenant=\"t1\" subject=\"alice\" upstream=\"vc-east\" "
             "decision=\"allow\"] %s",
             line);
    assert_string_equal(message(line), want);
    (void)state;
}

/* An outcome names its upstream in upstream.name and has no principal or decision; a refusal
 * before authentication has principal null; a checkpoint only seq and stage. */
static void members_the_record_lacks_are_left_out(void **state)
{
    const char *outcome =
        "{\"seq\":8,\"prev\":\"ab\",\"time\":\"" TIME "\",\"stage\":\"outcome\","
        "\"request_id\":\"r-1\",\"upstream\":{\"name\":\"vc-east\",\"status\":200}}";
    const char *refused = "{\"seq\":9,\"prev\":\"ab\",\"time\":\"" TIME "\",\"stage\":\"decision\","
                          "\"request_id\":\"r-2\",\"principal\":null,\"upstream\":null,"
                          "\"decision\":\"deny\"}";
    const char *cp = "{\"seq\":10,\"prev\":\"ab\",\"time\":\"" TIME "\",\"stage\":\"checkpoint\","
                     "\"key\":\"k\",\"sig\":\"s\"}";

    assert_non_null(strstr(message(outcome), " audit [smsguard@32473 seq=\"8\" stage=\"outcome\" "
                                             "request_id=\"r-1\" upstream=\"vc-east\"] {"));
    assert_non_null(strstr(message(refused), " audit [smsguard@32473 seq=\"9\" stage=\"decision\" "
                                             "request_id=\"r-2\" decision=\"deny\"] {"));
    assert_non_null(
        strstr(message(cp), " audit [smsguard@32473 seq=\"10\" stage=\"checkpoint\"] {"));
    (void)state;
}

/* RFC 5424 6.3.3: '"', '\' and ']' escaped; a control character never reaches the SD raw.
 * A non-ASCII line is MSG-UTF8: the BOM first (6.4). A record without a time: NILVALUE. */
static void escaping_bom_and_nil_time(void **state)
{
    const char *line = "{\"seq\":1,\"prev\":\"ab\",\"stage\":\"decision\",\"principal\":"
                       "{\"subject\":\"a\\\"b]c\\\\d\\n\\u0001\",\"tenant\":\"t\xc3\xa9\"}}";
    const char *m = message(line);

    assert_non_null(strstr(m, "<85>1 - gw1 smsguard 42 audit [smsguard@32473 seq=\"1\" "
                              "stage=\"decision\" tenant=\"t\xc3\xa9\" "
                              "subject=\"a\\\"b\\]c\\\\d??\"] \xEF\xBB\xBF{\"seq\":1"));
    /* An ASCII line has no BOM. */
    assert_null(strstr(message("{\"seq\":1,\"prev\":\"ab\"}"), "\xEF\xBB\xBF"));
    (void)state;
}

static void not_a_record(void **state)
{
    sg_buf_t b;

    sg_buf_init(&b, 1 << 20);
    assert_int_equal(sg_rfc5424_audit(&b, 85, "h", "a", 1, "[1,2]", 5), SG_EPROTO);
    assert_int_equal(sg_rfc5424_audit(&b, 85, "h", "a", 1, "{\"seq\":", 7), SG_EPROTO);
    assert_int_equal(b.len, 0);
    sg_buf_dispose(&b);
    (void)state;
}

static void parses_what_a_receiver_wrote(void **state)
{
    static const char *bad[] = {
        "",
        "{\"seq\":1}",
        "<>1 - - - - - -",
        "<1234>1 - - - - - -",
        "<85>2 - - - - - -",
        "<85>1 - - - - -",
        "<85>1 - - - - - [x a=\"]\"",
        "<85>1 - - - - - x",
        "<85>1 - - - - - -x",
    };
    sg_rfc5424_msg_t m;
    const char *why = NULL, *ok = "<85>1 " TIME " h app 1 audit [a b=\"x\\\"]\"][smsguard@32473 "
                                  "seq=\"1\"] \xEF\xBB\xBFhello world";

    assert_int_equal(sg_rfc5424_parse(ok, strlen(ok), &m, &why), 0);
    assert_int_equal(m.app_name_len, 3);
    assert_memory_equal(m.app_name, "app", 3);
    assert_int_equal(m.sd_len, strlen("[a b=\"x\\\"]\"][smsguard@32473 seq=\"1\"]"));
    assert_int_equal(m.msg_len, 11);
    assert_memory_equal(m.msg, "hello world", 11);
    /* Ours must be the first element; a NILVALUE SD and no MSG are valid messages. */
    assert_int_equal(sg_rfc5424_is_audit(&m), 0);
    assert_int_equal(sg_rfc5424_parse("<0>1 - - - - - -", 16, &m, &why), 0);
    assert_int_equal(m.msg_len, 0);
    assert_int_equal(sg_rfc5424_is_audit(&m), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(sg_rfc5424_parse(bad[i], strlen(bad[i]), &m, &why), -1);
        assert_string_equal(why, "not an RFC 5424 message");
    }
    (void)state;
}

/* ---- the verifier over syslog copies ---- */

#define NLINES 6
static char lines[NLINES][512];
static char msgs[NLINES][1024];

/* A chain of NLINES records and their messages. */
static void make_chain(void)
{
    char prev[SG_AUDIT_HASH_HEX + 1];
    sg_buf_t b;

    memset(prev, '0', SG_AUDIT_HASH_HEX);
    prev[SG_AUDIT_HASH_HEX] = '\0';
    for (int i = 0; i < NLINES; i++) {
        sg_buf_init(&b, 4096);
        assert_int_equal(sg_audit_prefix(&b, (unsigned long long)i + 1, prev), SG_OK);
        assert_true(sg_buf_appendf(&b,
                                   "\"time\":\"" TIME "\",\"stage\":\"decision\","
                                   "\"request_id\":\"r-%d\",\"decision\":\"allow\"}",
                                   i) == SG_OK);
        memcpy(lines[i], b.data, b.len);
        lines[i][b.len] = '\0';
        sg_audit_hash_hex(b.data, b.len, prev);
        sg_buf_dispose(&b);
        snprintf(msgs[i], sizeof(msgs[i]), "%s", message(lines[i]));
    }
}

/* Writes the messages (i = skip is left out; extra is written before message at) to name. */
static const char *write_msgs(const char *name, int skip, int at, const char *extra)
{
    const char *p = path_in(name);
    FILE *f = fopen(p, "w");

    assert_non_null(f);
    for (int i = 0; i < NLINES; i++) {
        if (i == at)
            fprintf(f, "%s\n", extra);
        if (i != skip)
            fprintf(f, "%s\n", msgs[i]);
    }
    fclose(f);
    return p;
}

static int verify(const char *file, unsigned flags, sg_audit_verify_result_t *res)
{
    const char *files[] = {file};

    return sg_audit_verify_ex(files, 1, NULL, flags, NULL, NULL, res);
}

static void verifies_the_chain_from_the_messages(void **state)
{
    sg_audit_verify_result_t res;
    const char *p =
        write_msgs("ok.log", -1, 2, "<13>1 " TIME " gw1 cron 7 - - (root) CMD (run-parts)");

    assert_int_equal(verify(p, SG_AUDIT_VERIFY_SYSLOG, &res), 0);
    assert_int_equal(res.records, NLINES);
    assert_int_equal(res.other, 1);
    assert_non_null(strstr(res.notes, "1 message(s) of other programs skipped"));
    /* Detected by the first byte without the flag. */
    assert_int_equal(verify(p, 0, &res), 0);
    assert_int_equal(res.records, NLINES);
    (void)state;
}

static void finds_what_was_changed_or_lost(void **state)
{
    sg_audit_verify_result_t res;
    char changed[1024];
    const char *p;

    /* A dropped copy is a gap in seq. */
    p = write_msgs("gap.log", 3, -1, NULL);
    assert_int_equal(verify(p, SG_AUDIT_VERIFY_SYSLOG, &res), 1);
    assert_int_equal(res.line, 4);
    assert_string_equal(res.why, "deleted line(s) before this one");

    /* The SD says another decision than the record. */
    snprintf(changed, sizeof(changed), "%s", msgs[2]);
    memcpy(strstr(changed, "decision=\"allow\""), "decision=\"deny\" ", 16);
    snprintf(msgs[2], sizeof(msgs[2]), "%s", changed);
    p = write_msgs("sd.log", -1, -1, NULL);
    make_chain();
    assert_int_equal(verify(p, SG_AUDIT_VERIFY_SYSLOG, &res), 1);
    assert_int_equal(res.line, 3);
    assert_string_equal(res.why, "structured data does not match the record");

    /* The MSG edited and the SD made to match it: the chain breaks at the edited line. */
    for (char *q = msgs[2]; (q = strstr(q, "\"r-2\"")) != NULL; q++)
        q[3] = '9';
    p = write_msgs("msg.log", -1, -1, NULL);
    make_chain();
    assert_int_equal(verify(p, SG_AUDIT_VERIFY_SYSLOG, &res), 1);
    assert_int_equal(res.line, 3);
    assert_string_equal(res.why, "edited");

    /* With --syslog, a plain audit line is not a message. */
    p = write_msgs("plain.log", -1, 1, lines[0]);
    assert_int_equal(verify(p, SG_AUDIT_VERIFY_SYSLOG, &res), 1);
    assert_int_equal(res.line, 2);
    assert_string_equal(res.why, "not an RFC 5424 message");
    (void)state;
}

static int setup(void **state)
{
    (void)state;
    if (sg_test_mkdtemp(tdir, sizeof(tdir), "sg-rfc5424-test") == NULL)
        return -1;
    make_chain();
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decision_record),
        cmocka_unit_test(members_the_record_lacks_are_left_out),
        cmocka_unit_test(escaping_bom_and_nil_time),
        cmocka_unit_test(not_a_record),
        cmocka_unit_test(parses_what_a_receiver_wrote),
        cmocka_unit_test(verifies_the_chain_from_the_messages),
        cmocka_unit_test(finds_what_was_changed_or_lost),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
