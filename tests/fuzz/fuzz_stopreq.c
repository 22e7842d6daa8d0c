/*
 * tests/fuzz/fuzz_stopreq.c - the guarded bodies (filters/stopreq.c: the stop-test
 * body, the SmsTask query bodies, the Content-Type check) and the strict JSON
 * parser under them (base/json.c).
 *
 * For any input: no crash, no leak, no sanitizer report. For an accepted input:
 * what we serialise is accepted again, means the same (groups, force) and
 * serialises to the same bytes, without _this (the target travels in the path
 * only); a slice of it is accepted and holds exactly the groups asked for. A
 * refusal must be a well-formed fault. Any violation aborts. The path's moId is
 * "vasa-1" for the stop-test and "SmsTask-1" for the queries, so that seeds can
 * name the right target or another one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filters/stopreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const sg_str_t moid = {"vasa-1", 6};
static const sg_str_t task = {"SmsTask-1", 9};

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_stopreq: check failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static int str_eq(const sg_str_t *a, const sg_str_t *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

static void buf_eq(const sg_buf_t *a, const sg_buf_t *b)
{
    FUZZ_CHECK(sg_buf_avail(a) == sg_buf_avail(b));
    /* An empty buffer may have no storage at all: memcmp wants two valid pointers. */
    FUZZ_CHECK(sg_buf_avail(a) == 0 || memcmp(sg_buf_head(a), sg_buf_head(b), sg_buf_avail(a)) == 0);
}

/* Any JSON: serialise, parse that, serialise again: same bytes. */
static void fuzz_json(sg_pool_t *pool, const char *in, size_t n)
{
    const sg_json_limits_t lim = {.max_depth = 64};
    sg_json_err_t err;
    sg_json_t *v, *again;
    sg_buf_t a, b;
    char *exact;
    size_t size;
    int rv;

    rv = sg_json_parse(pool, in, n, &lim, &v, &err);
    if (rv != SG_OK) {
        FUZZ_CHECK(rv == SG_EPROTO && err.why != NULL && err.off <= n);
        return;
    }
    /* The measured size is exactly what the writer stores (ASan sees any excess). */
    size = sg_json_size(v);
    FUZZ_CHECK((exact = malloc(size ? size : 1)) != NULL);
    FUZZ_CHECK(sg_json_put(exact, v) == exact + size);
    sg_buf_init(&a, SIZE_MAX);
    sg_buf_init(&b, SIZE_MAX);
    FUZZ_CHECK(sg_json_serialize(v, &a) == SG_OK);
    FUZZ_CHECK(sg_buf_avail(&a) == size && memcmp(sg_buf_head(&a), exact, size) == 0);
    free(exact);
    rv = sg_json_parse(pool, sg_buf_head(&a), sg_buf_avail(&a), &lim, &again, &err);
    if (rv != SG_OK)
        fprintf(stderr, "fuzz_stopreq: own output refused: %s at %zu\n", err.why, err.off);
    FUZZ_CHECK(rv == SG_OK);
    FUZZ_CHECK(sg_json_serialize(again, &b) == SG_OK);
    buf_eq(&a, &b);
    sg_buf_dispose(&a);
    sg_buf_dispose(&b);
}

/* A refusal names its type and, for InvalidArgument only, a property. */
static void check_fault(const sg_stopreq_fault_t *f)
{
    FUZZ_CHECK(f->status == 500 && f->type != NULL && f->message != NULL);
    if (strcmp(f->type, "InvalidRequest") == 0)
        FUZZ_CHECK(f->invalid_property == NULL);
    else
        FUZZ_CHECK(strcmp(f->type, "InvalidArgument") == 0 && f->invalid_property != NULL &&
                   f->invalid_property[0] != '\0');
}

/* req2 holds groups [first, first + count) of req. */
static void check_same_groups(const sg_stopreq_t *req, size_t first, size_t count,
                              const sg_stopreq_t *req2)
{
    FUZZ_CHECK(req2->ngroups == count && req2->force == req->force);
    for (size_t i = 0; i < count; i++) {
        FUZZ_CHECK(str_eq(&req->groups[first + i].fault_domain, &req2->groups[i].fault_domain));
        FUZZ_CHECK(str_eq(&req->groups[first + i].device_group, &req2->groups[i].device_group));
    }
}

static void fuzz_body(sg_pool_t *pool, const char *in, size_t n)
{
    sg_stopreq_fault_t fault;
    sg_stopreq_t req, req2;
    sg_buf_t a, b;
    size_t first, count;
    int rv;

    rv = sg_stopreq_parse(pool, in, n, &moid, &req, &fault);
    if (rv != 0) {
        FUZZ_CHECK(rv == -1);
        check_fault(&fault);
        return;
    }
    FUZZ_CHECK(req.ngroups > 0 && (req.force == 0 || req.force == 1));
    FUZZ_CHECK(req.has_this == (sg_json_get(req.root, "_this", 5) != NULL));
    sg_buf_init(&a, SIZE_MAX);
    sg_buf_init(&b, SIZE_MAX);

    /* The whole body: accepted again, same meaning, same bytes, no _this. */
    FUZZ_CHECK(sg_stopreq_serialize(&req, 0, req.ngroups, &a) == SG_OK);
    FUZZ_CHECK(sg_stopreq_parse(pool, sg_buf_head(&a), sg_buf_avail(&a), &moid, &req2, &fault) ==
               0);
    FUZZ_CHECK(!req2.has_this);
    check_same_groups(&req, 0, req.ngroups, &req2);
    FUZZ_CHECK(sg_stopreq_serialize(&req2, 0, req2.ngroups, &b) == SG_OK);
    buf_eq(&a, &b);

    /* A slice picked from the input's first and last bytes. */
    first = (unsigned char)in[0] % req.ngroups;
    count = 1 + (unsigned char)in[n - 1] % (req.ngroups - first);
    sg_buf_reset(&a);
    FUZZ_CHECK(sg_stopreq_serialize(&req, first, count, &a) == SG_OK);
    FUZZ_CHECK(sg_stopreq_parse(pool, sg_buf_head(&a), sg_buf_avail(&a), &moid, &req2, &fault) ==
               0);
    check_same_groups(&req, first, count, &req2);
    FUZZ_CHECK(sg_stopreq_serialize(&req, first, 0, &a) == SG_ERR);
    FUZZ_CHECK(sg_stopreq_serialize(&req, req.ngroups, 1, &a) == SG_ERR);
    sg_buf_dispose(&a);
    sg_buf_dispose(&b);
}

/* A query body, for the method the length's parity picks (a trailing space changes it):
 * accepted again as written, with the same members but _this, in the same order. */
static void fuzz_query(sg_pool_t *pool, const char *in, size_t n)
{
    const char *method = n & 1 ? "QuerySmsTaskResult" : "QuerySmsTaskInfo";
    sg_stopreq_fault_t fault;
    sg_stopreq_query_t q, q2;
    sg_buf_t a, b;
    int rv;

    rv = sg_stopreq_query_parse(pool, in, n, method, &task, &q, &fault);
    if (rv != 0) {
        FUZZ_CHECK(rv == -1 && n > 0);
        check_fault(&fault);
        return;
    }
    FUZZ_CHECK((q.root == NULL) == (n == 0));
    sg_buf_init(&a, SIZE_MAX);
    sg_buf_init(&b, SIZE_MAX);
    FUZZ_CHECK(sg_stopreq_query_serialize(&q, &a) == SG_OK);
    FUZZ_CHECK((sg_buf_avail(&a) == 0) == (q.root == NULL));
    FUZZ_CHECK(sg_stopreq_query_parse(pool, sg_buf_head(&a), sg_buf_avail(&a), method, &task, &q2,
                                      &fault) == 0);
    FUZZ_CHECK(!q2.has_this);
    if (q.root != NULL)
        FUZZ_CHECK(q2.root->nkids == q.root->nkids - (size_t)q.has_this);
    FUZZ_CHECK(sg_stopreq_query_serialize(&q2, &b) == SG_OK);
    buf_eq(&a, &b);
    sg_buf_dispose(&a);
    sg_buf_dispose(&b);
}

/* The input as a Content-Type value. An accepted one starts with the media type, stays
 * accepted with a UTF-8 charset parameter appended and is refused with another. */
static void fuzz_media_type(const char *in, size_t n)
{
    static const char utf8[] = ";charset=UTF-8", latin1[] = "; charset=latin1";
    char *v;
    size_t i = 0;

    if (!sg_stopreq_media_type_ok(in, n))
        return;
    while (i < n && (in[i] == ' ' || in[i] == '\t'))
        i++;
    FUZZ_CHECK(n - i >= 16 && strncasecmp(in + i, "application/json", 16) == 0);
    FUZZ_CHECK((v = malloc(n + sizeof(latin1))) != NULL);
    memcpy(v, in, n);
    memcpy(v + n, utf8, sizeof(utf8) - 1);
    FUZZ_CHECK(sg_stopreq_media_type_ok(v, n + sizeof(utf8) - 1));
    memcpy(v + n, latin1, sizeof(latin1) - 1);
    FUZZ_CHECK(!sg_stopreq_media_type_ok(v, n + sizeof(latin1) - 1));
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_pool_t pool;

    sg_pool_init(&pool, 4096);
    fuzz_json(&pool, (const char *)data, size);
    fuzz_body(&pool, (const char *)data, size);
    fuzz_query(&pool, (const char *)data, size);
    fuzz_media_type((const char *)data, size);
    sg_pool_dispose(&pool);
    return 0;
}
