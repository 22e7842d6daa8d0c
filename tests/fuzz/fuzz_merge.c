/*
 * tests/fuzz/fuzz_merge.c - fuzz target for filters/merge.c (composite task answers).
 *
 * Input: one header byte, then the part bodies separated by NUL bytes (a raw NUL can
 * never be part of valid JSON, so the split hides nothing). The header's low 3 bits + 1
 * give the number of parts (at most 8; missing bodies are empty); each part's status is
 * picked from {0, 200, 200, 204, 500} by bits of the header and the body's length. Each
 * body is copied into its own exact-size allocation so a read past it is caught.
 *
 * Both merges run over the same parts into fresh buffers; the target aborts when:
 *   - a call returns anything but SG_OK, SG_EPROTO (or SG_ENOMEM/SG_ETOOBIG, never
 *     expected here), or a failure leaves bytes in out;
 *   - a 200 answer is not strict JSON of the promised shape (an SmsTaskInfo with a
 *     known state; an ArrayOfGroupOperationResult with a `_value` array);
 *   - a pass-through answer is not exactly the first failed part's status and body;
 *   - a 204 result answer has bytes (unless it is a part's 204 passed through).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "filters/merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_merge: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#define FUZZ_MAX_PARTS 8

static const sg_json_limits_t fuzz_lim = {.max_depth = 80};

static void fuzz_check_failure(int rv, const sg_buf_t *out)
{
    FUZZ_CHECK(rv == SG_EPROTO);
    FUZZ_CHECK(sg_buf_avail(out) == 0);
}

static void fuzz_check_passthrough(const sg_merge_part_t *parts, size_t n, int also_ok,
                                   int status, const sg_buf_t *out)
{
    size_t k = 0;

    while (k < n && (parts[k].status == 200 || parts[k].status == 0 ||
                     (also_ok && parts[k].status == also_ok)))
        k++;
    FUZZ_CHECK(k < n && parts[k].status == status);
    FUZZ_CHECK(sg_buf_avail(out) == parts[k].len);
    FUZZ_CHECK(parts[k].len == 0 || memcmp(sg_buf_head(out), parts[k].body, parts[k].len) == 0);
}

static const sg_json_t *fuzz_parse(sg_pool_t *pool, const sg_buf_t *out)
{
    sg_json_t *v = NULL;
    sg_json_err_t err;

    FUZZ_CHECK(sg_json_parse(pool, sg_buf_head(out), sg_buf_avail(out), &fuzz_lim, &v, &err) ==
               SG_OK);
    FUZZ_CHECK(v->type == SG_JSON_OBJECT);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {0, 200, 200, 204, 500};
    sg_merge_part_t parts[FUZZ_MAX_PARTS];
    char *copies[FUZZ_MAX_PARTS] = {0};
    size_t n, off = 1;
    sg_pool_t pool;
    sg_buf_t out;
    int rv, status;

    if (size < 1)
        return 0;
    n = (size_t)(data[0] & 7) + 1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *end = off < size ? memchr(data + off, 0, size - off) : NULL;
        size_t len = off < size ? (end != NULL ? (size_t)(end - data) : size) - off : 0;
        copies[i] = malloc(len > 0 ? len : 1);
        FUZZ_CHECK(copies[i] != NULL);
        if (len > 0)
            memcpy(copies[i], data + off, len);
        parts[i].body = copies[i];
        parts[i].len = len;
        /* mostly 200; the header's high bits and the length pick the others */
        parts[i].status = statuses[((data[0] >> 3) + i * 7 + len) % SG_ARRAY_SIZE(statuses)];
        if (((data[0] >> 3) & 3) == 0)
            parts[i].status = parts[i].status == 500 ? 500 : 200;
        off += len + 1;
    }

    sg_pool_init(&pool, 1024);

    sg_buf_init(&out, 1 << 22);
    status = -1;
    rv = sg_merge_task_info(&pool, "sgc1.h", "vp-1", parts, n, &out, &status);
    if (rv != SG_OK) {
        fuzz_check_failure(rv, &out);
    } else if (status != 200) {
        fuzz_check_passthrough(parts, n, 0, status, &out);
    } else {
        const sg_json_t *v = fuzz_parse(&pool, &out), *st = sg_json_get(v, "state", 5);
        FUZZ_CHECK(sg_json_is_string(sg_json_get(v, "_typeName", 9), "SmsTaskInfo", 11));
        FUZZ_CHECK(sg_json_is_string(sg_json_get(v, "key", 3), "sgc1.h", 6));
        FUZZ_CHECK(sg_json_is_string(st, "queued", 6) || sg_json_is_string(st, "running", 7) ||
                   sg_json_is_string(st, "success", 7) || sg_json_is_string(st, "error", 5));
        FUZZ_CHECK((sg_json_get(v, "progress", 8) != NULL) ==
                   (sg_json_is_string(st, "queued", 6) || sg_json_is_string(st, "running", 7)));
        if (sg_json_get(v, "result", 6) != NULL) {
            const sg_json_t *r = sg_json_get(v, "result", 6);
            FUZZ_CHECK(r->type == SG_JSON_OBJECT && sg_json_get(r, "_value", 6) != NULL &&
                       sg_json_get(r, "_value", 6)->type == SG_JSON_ARRAY);
        }
    }
    sg_buf_dispose(&out);

    sg_buf_init(&out, 1 << 22);
    status = -1;
    /* The same bodies serve as the parts' task infos and as their result answers. */
    rv = sg_merge_task_result(&pool, parts, parts, n, &out, &status);
    if (rv != SG_OK) {
        fuzz_check_failure(rv, &out);
    } else if (status == 204 && sg_buf_avail(&out) == 0) {
        /* no result yet, or a part's empty 204 passed through */
    } else if (status != 200) {
        /* a failed info query (not 200/0) comes first; with infos == results no result
         * query can fail where every info query succeeded */
        fuzz_check_passthrough(parts, n, 0, status, &out);
    } else {
        const sg_json_t *v = fuzz_parse(&pool, &out);
        FUZZ_CHECK(sg_json_is_string(sg_json_get(v, "_typeName", 9),
                                     "ArrayOfGroupOperationResult", 27));
        FUZZ_CHECK(sg_json_get(v, "_value", 6) != NULL &&
                   sg_json_get(v, "_value", 6)->type == SG_JSON_ARRAY);
    }
    sg_buf_dispose(&out);

    sg_pool_dispose(&pool);
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    return 0;
}
