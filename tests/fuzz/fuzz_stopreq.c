/*
 * tests/fuzz/fuzz_stopreq.c - the stop-test body parser (filters/stopreq.c) and
 * the strict JSON parser under it (filters/json.c).
 *
 * For any input: no crash, no leak, no sanitizer report. For an accepted input:
 * what we serialise is accepted again, means the same (groups, force) and
 * serialises to the same bytes; a slice of it is accepted and holds exactly the
 * groups asked for. A refusal must be a well-formed fault. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/stopreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    FUZZ_CHECK(memcmp(sg_buf_head(a), sg_buf_head(b), sg_buf_avail(a)) == 0);
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

    rv = sg_stopreq_parse(pool, in, n, &req, &fault);
    if (rv != 0) {
        FUZZ_CHECK(rv == -1);
        check_fault(&fault);
        return;
    }
    FUZZ_CHECK(req.ngroups > 0 && (req.force == 0 || req.force == 1));
    sg_buf_init(&a, SIZE_MAX);
    sg_buf_init(&b, SIZE_MAX);

    /* The whole body: accepted again, same meaning, same bytes. */
    FUZZ_CHECK(sg_stopreq_serialize(&req, 0, req.ngroups, &a) == SG_OK);
    FUZZ_CHECK(sg_stopreq_parse(pool, sg_buf_head(&a), sg_buf_avail(&a), &req2, &fault) == 0);
    check_same_groups(&req, 0, req.ngroups, &req2);
    FUZZ_CHECK(sg_stopreq_serialize(&req2, 0, req2.ngroups, &b) == SG_OK);
    buf_eq(&a, &b);

    /* A slice picked from the input's first and last bytes. */
    first = (unsigned char)in[0] % req.ngroups;
    count = 1 + (unsigned char)in[n - 1] % (req.ngroups - first);
    sg_buf_reset(&a);
    FUZZ_CHECK(sg_stopreq_serialize(&req, first, count, &a) == SG_OK);
    FUZZ_CHECK(sg_stopreq_parse(pool, sg_buf_head(&a), sg_buf_avail(&a), &req2, &fault) == 0);
    check_same_groups(&req, first, count, &req2);
    FUZZ_CHECK(sg_stopreq_serialize(&req, first, 0, &a) == SG_ERR);
    FUZZ_CHECK(sg_stopreq_serialize(&req, req.ngroups, 1, &a) == SG_ERR);
    sg_buf_dispose(&a);
    sg_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_pool_t pool;

    sg_pool_init(&pool, 4096);
    fuzz_json(&pool, (const char *)data, size);
    fuzz_body(&pool, (const char *)data, size);
    sg_pool_dispose(&pool);
    return 0;
}
