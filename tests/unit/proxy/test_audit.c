/*
 * tests/unit/proxy/test_audit.c - the hand-over between workers and the audit writer
 * (proxy/audit.c), with the real writer thread and a real file: records of one loop
 * iteration stay in the worker's batch until the iteration ends and then leave together; a
 * waiting request is resumed only once its record is in the file, and never when it was
 * freed meanwhile; a record that fails while being built is dropped alone; a failed write
 * refuses the waiting record and keeps the others, in order, for the next try. The .c is
 * included to reach the writer's state; the worker is a bare libev loop with the watchers
 * proxy/loop.c sets up. The format and the chain are tests/unit/audit/test_chain.c's, the
 * filter's records tests/integration/50_audit_records.sh's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proxy/audit.c"
#include "tests/common/tmpdir.h"

static char tdir[64], path[128];
static sg_conf_t conf;
static sg_worker_t w;
static sg_conn_t c;

typedef struct {
    int called, status;
    size_t file_lines; /* lines in the file when the callback ran */
} waiter_t;

static waiter_t waits[4];
static sg_req_t reqs[4];

static size_t file_lines(void)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int ch;

    if (f == NULL)
        return 0;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static char *file_text(void)
{
    static char text[65536];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

    if (f)
        fclose(f);
    text[n] = '\0';
    return text;
}

static void waited_cb(sg_req_t *r, int status)
{
    waiter_t *wt = &waits[r - reqs];

    wt->called++;
    wt->status = status;
    wt->file_lines = file_lines();
}

/* Runs w's loop until waits[i] was called back, for at most 5 s. */
static void run_until_called(size_t i)
{
    for (int k = 0; k < 5000 && !waits[i].called; k++) {
        ev_run(w.loop, EVRUN_NOWAIT);
        if (!waits[i].called)
            usleep(1000);
    }
    assert_int_equal(waits[i].called, 1);
}

static void record(sg_req_t *r, const char *stage, int n, sg_audit_cb cb)
{
    sg_buf_t *b = sg_audit_record(r);

    assert_non_null(b);
    sg_buf_lit(b, "\"time\":\"2026-01-01T00:00:00.000000Z\",\"stage\":\"");
    sg_buf_append(b, stage, strlen(stage));
    sg_buf_lit(b, "\",\"n\":");
    sg_buf_append_u64(b, (unsigned long long)n);
    assert_int_equal(sg_audit_commit(r, cb), SG_OK);
}

static int setup(void **state)
{
    char err[256];

    (void)state;
    if (sg_test_mkdtemp(tdir, sizeof(tdir), "sg-test-audit") == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/audit.jsonl", tdir);
    memset(&conf, 0, sizeof(conf));
    conf.refcnt = 2; /* never freed: it is not from the configuration loader */
    conf.audit.file = path;
    conf.audit.sync = SG_AUDIT_SYNC_ALWAYS;
    conf.audit.fail_closed = 1;
    conf.audit.signing_key = "";
    if (sg_audit_start(&conf, err, sizeof(err)) != SG_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    memset(&w, 0, sizeof(w));
    w.loop = ev_loop_new(EVFLAG_AUTO);
    ev_set_userdata(w.loop, &w);
    ev_async_init(&w.audit_async, sg__audit_done_cb);
    ev_async_start(w.loop, &w.audit_async);
    ev_prepare_init(&w.audit_flush, sg__audit_flush_cb);
    ev_set_priority(&w.audit_flush, EV_MINPRI);
    ev_prepare_start(w.loop, &w.audit_flush);
    c.w = &w;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sg_audit_stop();
    sg__audit_free_done(&w);
    ev_loop_destroy(w.loop);
    unlink(path);
    rmdir(tdir);
    return 0;
}

static int reset(void **state)
{
    (void)state;
    memset(waits, 0, sizeof(waits));
    memset(reqs, 0, sizeof(reqs));
    for (size_t i = 0; i < 4; i++)
        reqs[i].conn = &c;
    return 0;
}

static void records_of_one_iteration_leave_together_when_it_ends(void **state)
{
    size_t before = file_lines();

    (void)state;
    record(&reqs[0], "outcome", 1, NULL);
    record(&reqs[1], "outcome", 2, NULL);
    record(&reqs[2], "decision", 3, waited_cb);
    /* Nothing has left the worker yet: no push, no wake-up per record. */
    assert_null(__atomic_load_n(&audit.head, __ATOMIC_ACQUIRE));
    assert_non_null(w.audit_batch);
    assert_int_equal(w.audit_batch->nrecs, 3);
    run_until_called(2);
    assert_null(w.audit_batch);
    /* The decision's callback ran with its line, and those before it, already written. */
    assert_int_equal(waits[2].status, SG_OK);
    assert_int_equal(waits[2].file_lines, before + 3);
    assert_non_null(strstr(file_text(), "\"stage\":\"outcome\",\"n\":1}\n"));
    assert_non_null(strstr(file_text(), "\"stage\":\"decision\",\"n\":3}\n"));
}

static void a_request_freed_while_waiting_is_not_called_back(void **state)
{
    size_t before = file_lines();

    (void)state;
    record(&reqs[0], "decision", 10, waited_cb);
    record(&reqs[1], "decision", 11, waited_cb);
    assert_ptr_equal(reqs[1].audit_wait, w.audit_batch);
    sg_audit_forget(&reqs[1]); /* the client went away: sg_req_free */
    assert_null(reqs[1].audit_wait);
    run_until_called(0);
    assert_int_equal(waits[1].called, 0);
    assert_null(reqs[0].audit_wait);
    /* Its record is written all the same: the decision was taken. */
    assert_int_equal(file_lines(), before + 2);
}

static void a_record_that_fails_while_built_is_dropped_alone(void **state)
{
    sg_buf_t *b;
    size_t before = file_lines();

    (void)state;
    record(&reqs[0], "outcome", 20, NULL);
    b = sg_audit_record(&reqs[1]);
    assert_non_null(b);
    sg_buf_lit(b, "\"time\":\"2026-01-01T00:00:00.000000Z\",\"stage\":\"lost\"");
    sg_buf_fail(b, SG_ENOMEM); /* e.g. the certificate subject could not be printed */
    assert_int_equal(sg_audit_commit(&reqs[1], waited_cb), SG_ENOMEM);
    assert_null(reqs[1].audit_wait);
    record(&reqs[2], "decision", 22, waited_cb);
    assert_int_equal(w.audit_batch->nrecs, 2);
    run_until_called(2);
    assert_int_equal(waits[1].called, 0);
    assert_int_equal(file_lines(), before + 2);
    assert_null(strstr(file_text(), "lost"));
}

static void a_failed_write_refuses_the_waiting_and_keeps_the_others_in_order(void **state)
{
    int saved = dup(audit.fd), ro = open(path, O_RDONLY | O_CLOEXEC);
    char *text, *o1, *o2;

    (void)state;
    assert_true(saved >= 0 && ro >= 0);
    /* The same file, read-only under the writer's descriptor: write(2) fails with EBADF
     * (dup2 swaps the open file, never the writer's int). */
    assert_int_equal(dup2(ro, audit.fd), audit.fd);
    record(&reqs[0], "outcome", 30, NULL);
    record(&reqs[1], "decision", 31, waited_cb);
    run_until_called(1);
    assert_int_not_equal(waits[1].status, SG_OK);
    assert_int_equal(dup2(saved, audit.fd), audit.fd);
    close(saved);
    close(ro);
    record(&reqs[2], "outcome", 32, NULL);
    record(&reqs[3], "decision", 33, waited_cb);
    run_until_called(3);
    assert_int_equal(waits[3].status, SG_OK);
    text = file_text();
    o1 = strstr(text, "\"n\":30}");
    o2 = strstr(text, "\"n\":32}");
    assert_non_null(o1);
    assert_non_null(o2);
    assert_true(o1 < o2);
    assert_null(strstr(text, "\"n\":31}")); /* refused: never forwarded, never recorded */
    assert_non_null(strstr(text, "\"n\":33}"));
    /* And the file is one intact chain: the failed batch left no line behind. */
    {
        const char *files[] = {path};
        sg_audit_verify_result_t res;

        assert_int_equal(sg_audit_verify(files, 1, NULL, &res), 0);
        assert_int_equal(res.records, file_lines());
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(records_of_one_iteration_leave_together_when_it_ends, reset),
        cmocka_unit_test_setup(a_request_freed_while_waiting_is_not_called_back, reset),
        cmocka_unit_test_setup(a_record_that_fails_while_built_is_dropped_alone, reset),
        cmocka_unit_test_setup(a_failed_write_refuses_the_waiting_and_keeps_the_others_in_order,
                               reset),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
