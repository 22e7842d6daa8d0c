/*
 * filters/merge.c - merging the parts' answers for a composite SmsTask (see merge.h).
 *
 * Every part body is parsed with the strict parser of base/json.h into the caller's
 * pool; the merged answer is written straight into the caller's buffer, copying the
 * parts' values (faults, result entries) with sg_json_serialize(), so they leave exactly
 * as they came (compacted). On any failure the output buffer is put back as it was.
 */
#include "filters/merge.h"

#include <stdlib.h>

#include "base/json.h"

/* Task infos and results nest: ArrayOf.. > GroupErrorResult > error[] > fault > faultCause
 * > ... A generous bound that still keeps the serializer's recursion shallow. */
#define MERGE_MAX_DEPTH 64

static const sg_json_limits_t merge_lim = {.max_depth = MERGE_MAX_DEPTH, .max_values = 0};

enum {
    ST_QUEUED = SG_MERGE_QUEUED,
    ST_RUNNING = SG_MERGE_RUNNING,
    ST_SUCCESS = SG_MERGE_SUCCESS,
    ST_ERROR = SG_MERGE_ERROR,
    ST_FAILED /* at submission */
};

typedef struct {
    int state;
    int progress; /* 0..100; finished parts 100; running/queued without progress 0 */
    const sg_json_t *start, *completion; /* strings, or NULL */
    const sg_json_t *error;              /* the part's fault, or NULL */
    const sg_json_t *result;             /* the part's result (not null), or NULL */
    const sg_json_t *object;             /* the task's object, or NULL */
} merge_info_t;

static int merge_parse(sg_pool_t *pool, const char *p, size_t n, sg_json_t **out)
{
    sg_json_err_t err;

    if (p == NULL || n == 0)
        return SG_EPROTO;
    return sg_json_parse(pool, p, n, &merge_lim, out, &err);
}

#define GET(obj, lit) sg_json_get((obj), "" lit, sizeof(lit) - 1)
#define IS(v, lit) sg_json_is_string((v), "" lit, sizeof(lit) - 1)

/* The first part whose query failed (status neither 200 nor 0, plus `also` when it is
 * not 0), or n. */
static size_t merge_failed_query(const sg_merge_part_t *parts, size_t n, int also)
{
    for (size_t i = 0; i < n; i++) {
        int st = parts[i].status;
        if (st != 200 && st != 0 && (also == 0 || st != also))
            return i;
    }
    return n;
}

static int merge_passthrough(const sg_merge_part_t *p, sg_buf_t *out, int *status)
{
    int rv = SG_OK;

    if (p->len > 0)
        rv = sg_buf_append(out, p->body, p->len);
    if (rv == SG_OK)
        *status = p->status;
    return rv;
}

static int merge_progress(const sg_json_t *v)
{
    double d = strtod(v->str.p, NULL); /* the parser checked the number grammar */

    if (!(d > 0)) /* also catches NaN, which the grammar cannot produce anyway */
        return 0;
    if (d >= 100)
        return 100;
    return (int)d;
}

/* Reads one part into *mi. */
static int merge_read_info(sg_pool_t *pool, const sg_merge_part_t *p, merge_info_t *mi)
{
    sg_json_t *root;
    const sg_json_t *v;
    int rv;

    memset(mi, 0, sizeof(*mi));
    rv = merge_parse(pool, p->body, p->len, &root);
    if (rv != SG_OK)
        return rv;
    if (root->type != SG_JSON_OBJECT)
        return SG_EPROTO;
    if (p->status == 0) { /* the fault it failed with at submission */
        mi->state = ST_FAILED;
        mi->progress = 100;
        mi->error = root;
        return SG_OK;
    }

    v = GET(root, "_typeName");
    if (v != NULL && !IS(v, "SmsTaskInfo"))
        return SG_EPROTO;
    v = GET(root, "state");
    if (IS(v, "queued"))
        mi->state = ST_QUEUED;
    else if (IS(v, "running"))
        mi->state = ST_RUNNING;
    else if (IS(v, "success"))
        mi->state = ST_SUCCESS;
    else if (IS(v, "error"))
        mi->state = ST_ERROR;
    else
        return SG_EPROTO; /* absent, not a string or not an SmsTaskState */

    v = GET(root, "progress");
    if (v != NULL && v->type != SG_JSON_NUMBER && v->type != SG_JSON_NULL)
        return SG_EPROTO;
    if (mi->state == ST_SUCCESS || mi->state == ST_ERROR)
        mi->progress = 100;
    else if (v != NULL && v->type == SG_JSON_NUMBER)
        mi->progress = merge_progress(v);

    v = GET(root, "startTime");
    if (v != NULL && v->type != SG_JSON_STRING && v->type != SG_JSON_NULL)
        return SG_EPROTO;
    mi->start = v != NULL && v->type == SG_JSON_STRING ? v : NULL;
    v = GET(root, "completionTime");
    if (v != NULL && v->type != SG_JSON_STRING && v->type != SG_JSON_NULL)
        return SG_EPROTO;
    mi->completion = v != NULL && v->type == SG_JSON_STRING ? v : NULL;

    v = GET(root, "error");
    if (v != NULL && v->type != SG_JSON_OBJECT && v->type != SG_JSON_NULL)
        return SG_EPROTO;
    mi->error = v != NULL && v->type == SG_JSON_OBJECT ? v : NULL;

    v = GET(root, "result");
    mi->result = v != NULL && v->type != SG_JSON_NULL ? v : NULL;
    v = GET(root, "object");
    mi->object = v != NULL && v->type == SG_JSON_OBJECT ? v : NULL;
    return SG_OK;
}

int sg_merge_info_peek(sg_pool_t *pool, const char *body, size_t len, sg_merge_peek_t *out)
{
    const sg_merge_part_t p = {.status = 200, .body = body, .len = len};
    const sg_json_t *v;
    merge_info_t mi;
    int rv = merge_read_info(pool, &p, &mi);

    if (rv != SG_OK)
        return rv;
    memset(out, 0, sizeof(*out));
    out->state = mi.state;
    out->has_result = mi.result != NULL;
    if (mi.state == ST_ERROR && mi.error != NULL && IS(GET(mi.error, "_typeName"), "TooMany")) {
        /* The SMS API's TooMany: maxBatchSize missing, zero or negative means one group a call */
        v = GET(mi.error, "maxBatchSize");
        out->toomany = v != NULL && v->type == SG_JSON_NUMBER ? strtoll(v->str.p, NULL, 10) : 0;
        if (out->toomany <= 0)
            out->toomany = 1;
        else if (out->toomany > SG_MERGE_BATCH_MAX)
            out->toomany = SG_MERGE_BATCH_MAX;
    }
    if (mi.object != NULL && IS(GET(mi.object, "type"), "VasaProvider") &&
        (v = GET(mi.object, "value")) != NULL && v->type == SG_JSON_STRING && v->str.n > 0)
        out->provider = v->str.p;
    return SG_OK;
}

/* The entries a result contributes: the items of an ArrayOf..-boxed `_value` array, else
 * the value itself as one entry. */
static int merge_is_boxed_array(const sg_json_t *r)
{
    const sg_json_t *t, *v;

    if (r->type != SG_JSON_OBJECT)
        return 0;
    t = GET(r, "_typeName");
    v = GET(r, "_value");
    return t != NULL && t->type == SG_JSON_STRING && t->str.n >= 7 &&
           memcmp(t->str.p, "ArrayOf", 7) == 0 && v != NULL && v->type == SG_JSON_ARRAY;
}

/* Appends the entries of result r, each preceded by a comma unless it is the first
 * (tracked in *first). */
static int merge_put_entries(sg_buf_t *out, const sg_json_t *r, int *first)
{
    const sg_json_t *const *items = (const sg_json_t *const *)&r;
    size_t nitems = 1;
    int rv;

    if (merge_is_boxed_array(r)) {
        const sg_json_t *v = GET(r, "_value");
        items = (const sg_json_t *const *)v->kids;
        nitems = v->nkids;
    }
    for (size_t i = 0; i < nitems; i++) {
        if (!*first && (rv = sg_buf_lit(out, ",")) != SG_OK)
            return rv;
        *first = 0;
        if ((rv = sg_json_serialize(items[i], out)) != SG_OK)
            return rv;
    }
    return SG_OK;
}

static const char *const state_names[] = {"queued", "running", "success", "error"};

static int merge_write_info(sg_buf_t *out, const char *handle, const char *provider,
                            const merge_info_t *mi, size_t n)
{
    int running = 0, queued = 0, failed = 0, state, rv;
    unsigned long long sum = 0;
    const sg_json_t *start = NULL, *completion = NULL, *error = NULL;
    int all_completed = 1, any_result = 0;

    for (size_t i = 0; i < n; i++) {
        running |= mi[i].state == ST_RUNNING;
        queued |= mi[i].state == ST_QUEUED;
        if (mi[i].state == ST_ERROR || mi[i].state == ST_FAILED) {
            failed = 1;
            if (error == NULL)
                error = mi[i].error; /* the first failing part that carries a fault */
        }
        sum += (unsigned)mi[i].progress;
        if (mi[i].start != NULL &&
            (start == NULL || strcmp(mi[i].start->str.p, start->str.p) < 0))
            start = mi[i].start;
        if (mi[i].state == ST_QUEUED || mi[i].state == ST_RUNNING)
            all_completed = 0;
        else if (mi[i].completion != NULL &&
                 (completion == NULL || strcmp(mi[i].completion->str.p, completion->str.p) > 0))
            completion = mi[i].completion;
        any_result |= mi[i].result != NULL;
    }
    if (running)
        state = ST_RUNNING;
    else if (queued)
        state = ST_QUEUED;
    else if (failed)
        state = ST_ERROR;
    else
        state = ST_SUCCESS;

    if ((rv = sg_buf_lit(out, "{\"_typeName\":\"SmsTaskInfo\",\"key\":")) != SG_OK ||
        (rv = sg_json_write_string(out, handle, strlen(handle))) != SG_OK ||
        (rv = sg_buf_lit(out, ",\"task\":{\"_typeName\":\"ManagedObjectReference\","
                              "\"type\":\"SmsTask\",\"value\":")) != SG_OK ||
        (rv = sg_json_write_string(out, handle, strlen(handle))) != SG_OK ||
        (rv = sg_buf_lit(out, "},\"object\":{\"_typeName\":\"ManagedObjectReference\","
                              "\"type\":\"VasaProvider\",\"value\":")) != SG_OK ||
        (rv = sg_json_write_string(out, provider, strlen(provider))) != SG_OK ||
        (rv = sg_buf_appendf(out, "},\"state\":\"%s\"", state_names[state])) != SG_OK)
        return rv;
    if ((state == ST_RUNNING || state == ST_QUEUED) &&
        (rv = sg_buf_appendf(out, ",\"progress\":%llu", sum / n)) != SG_OK)
        return rv;
    if (start != NULL && ((rv = sg_buf_lit(out, ",\"startTime\":")) != SG_OK ||
                          (rv = sg_json_serialize(start, out)) != SG_OK))
        return rv;
    if (all_completed && completion != NULL &&
        ((rv = sg_buf_lit(out, ",\"completionTime\":")) != SG_OK ||
         (rv = sg_json_serialize(completion, out)) != SG_OK))
        return rv;
    if (state == ST_ERROR && error != NULL &&
        ((rv = sg_buf_lit(out, ",\"error\":")) != SG_OK ||
         (rv = sg_json_serialize(error, out)) != SG_OK))
        return rv;
    if ((state == ST_SUCCESS || state == ST_ERROR) && any_result) {
        int first = 1;
        if ((rv = sg_buf_lit(out, ",\"result\":{\"_typeName\":\"ArrayOfGroupOperationResult\","
                                  "\"_value\":[")) != SG_OK)
            return rv;
        for (size_t i = 0; i < n; i++)
            if (mi[i].result != NULL &&
                (rv = merge_put_entries(out, mi[i].result, &first)) != SG_OK)
                return rv;
        if ((rv = sg_buf_lit(out, "]}")) != SG_OK)
            return rv;
    }
    return sg_buf_lit(out, "}");
}

int sg_merge_task_info(sg_pool_t *pool, const char *handle, const char *provider,
                       const sg_merge_part_t *parts, size_t n, sg_buf_t *out, int *status)
{
    size_t saved = out->len, k;
    merge_info_t *mi;
    int rv;

    if (n == 0 || handle == NULL || provider == NULL)
        return SG_EPROTO;
    k = merge_failed_query(parts, n, 0);
    if (k < n) {
        rv = merge_passthrough(&parts[k], out, status);
        if (rv != SG_OK)
            out->len = saved;
        return rv;
    }
    if (n > SIZE_MAX / sizeof(*mi) || (mi = sg_pool_alloc(pool, n * sizeof(*mi))) == NULL)
        return SG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if ((rv = merge_read_info(pool, &parts[i], &mi[i])) != SG_OK)
            return rv;
    rv = merge_write_info(out, handle, provider, mi, n);
    if (rv != SG_OK) {
        out->len = saved;
        return rv;
    }
    *status = 200;
    return SG_OK;
}

int sg_merge_task_result(sg_pool_t *pool, const sg_merge_part_t *infos,
                         const sg_merge_part_t *results, size_t n, sg_buf_t *out, int *status)
{
    size_t saved = out->len, k;
    const sg_json_t **res;
    merge_info_t mi;
    int first = 1, rv;

    if (n == 0)
        return SG_EPROTO;
    k = merge_failed_query(infos, n, 0);
    if (k < n) {
        rv = merge_passthrough(&infos[k], out, status);
        if (rv != SG_OK)
            out->len = saved;
        return rv;
    }
    if (n > SIZE_MAX / sizeof(*res) || (res = sg_pool_calloc(pool, n * sizeof(*res))) == NULL)
        return SG_ENOMEM;
    /* First the states: no result while any part is still queued or running, whatever the
     * others have (a part that ended in error never gets one, so waiting for every part's
     * result would answer 204 for ever). */
    for (size_t i = 0; i < n; i++) {
        if ((rv = merge_read_info(pool, &infos[i], &mi)) != SG_OK)
            return rv;
        if (mi.state == ST_QUEUED || mi.state == ST_RUNNING) {
            *status = 204;
            return SG_OK;
        }
        res[i] = mi.result;
    }
    /* Finished parts whose info carried no result: their own QuerySmsTaskResult answers. */
    for (size_t i = 0; results != NULL && i < n; i++) {
        sg_json_t *root;

        if (res[i] != NULL || infos[i].status == 0 || results[i].status == 0 ||
            results[i].status == 204 || (results[i].status == 200 && results[i].len == 0))
            continue;
        if (results[i].status != 200) {
            rv = merge_passthrough(&results[i], out, status);
            if (rv != SG_OK)
                out->len = saved;
            return rv;
        }
        if ((rv = merge_parse(pool, results[i].body, results[i].len, &root)) != SG_OK)
            return rv;
        res[i] = root->type == SG_JSON_NULL ? NULL : root;
    }
    rv = sg_buf_lit(out, "{\"_typeName\":\"ArrayOfGroupOperationResult\",\"_value\":[");
    for (size_t i = 0; i < n && rv == SG_OK; i++)
        if (res[i] != NULL)
            rv = merge_put_entries(out, res[i], &first);
    if (rv == SG_OK)
        rv = sg_buf_lit(out, "]}");
    if (rv != SG_OK) {
        out->len = saved;
        return rv;
    }
    *status = 200;
    return SG_OK;
}
