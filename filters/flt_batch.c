/*
 * filters/flt_batch.c - batch splitting and composite tasks (DESIGN.md "Batch
 * splitting and composite tasks").
 *
 * The last filter. A stop-test request goes upstream as ordered parts of at
 * most the provider's batch size (learned from TooMany, else
 * batch.providers[moid].max_size, else batch.max_size), at most
 * batch.max_parallel at a time, each a sub-request (proxy/subreq.c) carrying
 * the client's force, _typeName members and session header. One part: its
 * answer goes back as it came. Several: the client gets one SmsTask whose
 * value is a signed composite handle (filters/handle.c). Queries on such a
 * handle query every part and merge the answers (filters/merge.c).
 */
#include "filters/filter.h"
#include "filters/canon.h"
#include "filters/handle.h"
#include "filters/json.h"
#include "filters/merge.h"
#include "filters/stopreq.h"
#include "policy/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { PART_PENDING = 0, PART_SENT, PART_OK, PART_FAILED };

typedef struct {
    size_t first, count; /* the client's groups this part carries */
    int state;
    int status;          /* the upstream's HTTP status (0: none) */
    const char *type, *value; /* task reference of an accepted part */
    const char *fault;   /* fault JSON of a refused part */
    const char *fault_type; /* its _typeName */
    const char *error;   /* the upstream exchange failed: why (sg_req_t.up_error), else NULL */
    unsigned long long duration_ms;
} batch_part_t;

typedef struct {
    batch_part_t *parts;
    size_t nparts, cap, inflight;
    int querying;            /* a composite task query, not a stop-test */
    sg_handle_t h;           /* the decoded handle when querying */
    sg_merge_part_t *answers;
    const char *method;      /* QuerySmsTaskInfo or QuerySmsTaskResult */
    /* a single part's answer, passed back as it came */
    int single_status;
    const char *single_ctype, *single_body;
    size_t single_len;
} batch_ctx_t;

/* Sizes learned from TooMany, per worker thread: no lock, a small table. */
#define BATCH_LEARNED 64
static _Thread_local struct {
    char moid[128];
    int size;
} batch_learned[BATCH_LEARNED];
static _Thread_local unsigned batch_learned_next;

static int batch_learned_get(const sg_str_t *moid)
{
    for (unsigned i = 0; i < BATCH_LEARNED; i++)
        if (batch_learned[i].size > 0 && strlen(batch_learned[i].moid) == moid->n &&
            memcmp(batch_learned[i].moid, moid->p, moid->n) == 0)
            return batch_learned[i].size;
    return 0;
}

static void batch_learned_set(const sg_str_t *moid, int size)
{
    unsigned slot = batch_learned_next;

    if (moid->n >= sizeof(batch_learned[0].moid))
        return;
    for (unsigned i = 0; i < BATCH_LEARNED; i++)
        if (batch_learned[i].size > 0 && strlen(batch_learned[i].moid) == moid->n &&
            memcmp(batch_learned[i].moid, moid->p, moid->n) == 0) {
            slot = i;
            goto set;
        }
    batch_learned_next = (batch_learned_next + 1) % BATCH_LEARNED;
set:
    memcpy(batch_learned[slot].moid, moid->p, moid->n);
    batch_learned[slot].moid[moid->n] = '\0';
    batch_learned[slot].size = size;
}

static int batch_size(sg_req_t *r)
{
    const sg_conf_t *conf = r->conf;
    int learned = conf->batch.learn_from_toomany ? batch_learned_get(&r->moid) : 0;

    if (learned > 0)
        return learned;
    for (size_t i = 0; i < conf->batch.nproviders; i++)
        if (strlen(conf->batch.providers[i].moid) == r->moid.n &&
            memcmp(conf->batch.providers[i].moid, r->moid.p, r->moid.n) == 0)
            return conf->batch.providers[i].max_size;
    return conf->batch.max_size;
}

/* Parts a request may become: batch.max_parts, and never more than a composite handle
 * can carry, so that nothing is sent upstream that could not be answered for. A part
 * costs ~50 bytes of handle with a short task id; SG_HANDLE_MAX holds ~120. */
#define BATCH_HANDLE_PARTS 100

static size_t batch_max_parts(const sg_req_t *r)
{
    return SG_MIN((size_t)r->conf->batch.max_parts, (size_t)BATCH_HANDLE_PARTS);
}

static int batch_add_part(sg_req_t *r, batch_ctx_t *ctx, size_t at, size_t first, size_t count)
{
    if (ctx->nparts == ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap * 2 : 8;
        batch_part_t *np = sg_pool_calloc(&r->pool, ncap * sizeof(*np));

        if (np == NULL)
            return SG_ENOMEM;
        if (ctx->nparts)
            memcpy(np, ctx->parts, ctx->nparts * sizeof(*np));
        ctx->parts = np;
        ctx->cap = ncap;
    }
    memmove(&ctx->parts[at + 1], &ctx->parts[at], (ctx->nparts - at) * sizeof(*ctx->parts));
    memset(&ctx->parts[at], 0, sizeof(*ctx->parts));
    ctx->parts[at].first = first;
    ctx->parts[at].count = count;
    ctx->nparts++;
    return SG_OK;
}

/* A vSphere fault as JSON text, for parts that failed without one of their own. */
static const char *batch_fault_json(sg_req_t *r, const char *type, const char *msg)
{
    char buf[512];

    snprintf(buf, sizeof(buf), "{\"_typeName\":\"%s\",\"faultstring\":\"%s\"}", type, msg);
    return sg_pool_strndup(&r->pool, buf, strlen(buf));
}

/* The upstream answer of a child as JSON, or NULL. */
static const sg_json_t *batch_parse(sg_req_t *r, sg_req_t *child)
{
    sg_json_limits_t lim = {.max_depth = 32, .max_values = 1u << 20};
    sg_json_t *root = NULL;
    sg_json_err_t err;

    if (sg_buf_avail(&child->res_body) == 0 ||
        sg_json_parse(&r->pool, sg_buf_head(&child->res_body), sg_buf_avail(&child->res_body),
                      &lim, &root, &err) != SG_OK || root->type != SG_JSON_OBJECT)
        return NULL;
    return root;
}

static const char *batch_member(const sg_json_t *o, const char *name)
{
    const sg_json_t *v = o ? sg_json_get(o, name, strlen(name)) : NULL;

    return v != NULL && v->type == SG_JSON_STRING ? v->str.p : NULL;
}

static void batch_pump(sg_req_t *r, batch_ctx_t *ctx);

static void batch_finish_stop(sg_req_t *r, batch_ctx_t *ctx)
{
    size_t ok = 0;
    sg_buf_t out;

    r->parts = ctx;
    for (size_t i = 0; i < ctx->nparts; i++)
        ok += ctx->parts[i].state == PART_OK;
    if (ctx->nparts == 1) {
        /* One part: the upstream's answer, as it came. */
        sg_req_reply(r, ctx->single_status ? ctx->single_status : 502,
                     ctx->single_ctype ? ctx->single_ctype : "application/json",
                     ctx->single_body, ctx->single_len);
        return;
    }
    if (ok == 0) {
        /* Every part failed at submission: the client gets that fault directly. */
        const char *f = ctx->parts[0].fault;

        sg_req_reply(r, 500, "application/json", f, strlen(f));
        r->fault_type = ctx->parts[0].fault_type;
        return;
    }
    {
        sg_handle_part_t *hp = sg_pool_calloc(&r->pool, ctx->nparts * sizeof(*hp));
        const sg_principal_t *who = r->principal;
        sg_handle_t h = {.provider = r->moid.p, .release = r->release.p,
                         .tenant = who ? who->tenant : "", .parts = hp, .nparts = ctx->nparts};
        int rv;

        if (hp == NULL)
            goto nomem;
        for (size_t i = 0; i < ctx->nparts; i++) {
            hp[i].count = ctx->parts[i].count;
            if (ctx->parts[i].state == PART_OK) {
                hp[i].type = ctx->parts[i].type;
                hp[i].value = ctx->parts[i].value;
            } else {
                hp[i].fault = ctx->parts[i].fault;
            }
        }
        sg_buf_init(&out, SG_HANDLE_MAX + 256);
        rv = sg_buf_lit(&out, "{\"_typeName\":\"ManagedObjectReference\",\"type\":\"SmsTask\","
                              "\"value\":\"");
        if (rv == SG_OK)
            rv = sg_handle_encode(&h, r->gen->task_key, r->gen->task_key_len, &out);
        if (rv == SG_ETOOBIG) {
            /* Long fault texts are what does not fit: keep only their types. */
            for (size_t i = 0; i < ctx->nparts; i++)
                if (hp[i].fault != NULL) {
                    char t[160];

                    snprintf(t, sizeof(t), "{\"_typeName\":\"%.100s\"}",
                             ctx->parts[i].fault_type ? ctx->parts[i].fault_type : "SystemError");
                    hp[i].fault = sg_pool_strndup(&r->pool, t, strlen(t));
                }
            sg_buf_reset(&out);
            rv = sg_buf_lit(&out, "{\"_typeName\":\"ManagedObjectReference\",\"type\":\"SmsTask\","
                                  "\"value\":\"");
            if (rv == SG_OK)
                rv = sg_handle_encode(&h, r->gen->task_key, r->gen->task_key_len, &out);
        }
        if (rv == SG_OK)
            rv = sg_buf_lit(&out, "\"}");
        if (rv == SG_OK)
            sg_req_reply(r, 200, "application/json", sg_buf_head(&out), sg_buf_avail(&out));
        sg_buf_dispose(&out);
        if (rv == SG_OK)
            return;
        if (rv == SG_ETOOBIG) {
            sg_req_fault(r, 500, "SystemError", "The composite task handle would be too large.");
            return;
        }
        if (rv == SG_ERR) {
            /* An upstream answer the handle cannot carry (another task type, say). */
            sg_log(SG_LOG_ERROR, "req=%s: cannot build a composite task handle from the parts",
                   r->request_id);
            sg_req_fault(r, 500, "SystemError", "The parts' tasks cannot be combined.");
            return;
        }
    }
nomem:
    sg_req_fault(r, 503, "SystemError", "The gateway is out of memory for this request.");
}

static void batch_part_done(sg_req_t *r, sg_req_t *child, void *arg)
{
    batch_ctx_t *ctx = r->batch_ctx;
    size_t idx = (size_t)(uintptr_t)arg;
    batch_part_t *p = &ctx->parts[idx];
    const sg_json_t *root;
    const char *type;

    ctx->inflight--;
    /* 0 when the upstream gave no answer of its own: a fault made here (unreachable,
     * reset, timeout, bad response) is the gateway's, not the provider's. */
    p->status = child->local_reply || (child->aborted && !child->res_started) ? 0
                                                                              : child->res.status;
    p->error = child->up_error;
    p->duration_ms = sg_now_ms() - child->start_ms;
    root = batch_parse(r, child);
    type = batch_member(root, "_typeName");
    if (p->status == 200 && batch_member(root, "value") != NULL) {
        p->state = PART_OK;
        p->type = batch_member(root, "type") ? batch_member(root, "type") : "SmsTask";
        p->value = batch_member(root, "value");
    } else if (p->status == 500 && type != NULL && strcmp(type, "TooMany") == 0) {
        const sg_json_t *mb = sg_json_get(root, "maxBatchSize", 12);
        long long m = mb != NULL && mb->type == SG_JSON_NUMBER ? strtoll(mb->str.p, NULL, 10) : 0;
        size_t first = p->first, count = p->count;

        if (m <= 0)
            m = 1; /* the API: absent or not positive means one group per call */
        if (r->conf->batch.learn_from_toomany)
            batch_learned_set(&r->moid, (int)SG_MIN(m, 1000000));
        if ((long long)count > m && ctx->nparts + (size_t)(count / (size_t)m) <=
                                        batch_max_parts(r)) {
            /* Re-split this part in place, keeping the client's order. */
            p->count = (size_t)m;
            p->state = PART_PENDING;
            for (size_t off = (size_t)m, at = idx + 1; off < count; off += (size_t)m, at++)
                if (batch_add_part(r, ctx, at, first + off, SG_MIN((size_t)m, count - off)) !=
                    SG_OK) {
                    sg_req_fault(r, 503, "SystemError", "The gateway is out of memory.");
                    return;
                }
        } else {
            p->state = PART_FAILED;
            p->fault = sg_pool_strndup(&r->pool, sg_buf_head(&child->res_body),
                                       sg_buf_avail(&child->res_body));
        }
    } else {
        p->state = PART_FAILED;
        p->fault = type != NULL ? sg_pool_strndup(&r->pool, sg_buf_head(&child->res_body),
                                                  sg_buf_avail(&child->res_body))
                                : batch_fault_json(r, "ProviderUnavailable",
                                                   "The provider is temporarily unavailable.");
    }
    if (p->state == PART_FAILED)
        p->fault_type = type != NULL ? type : "ProviderUnavailable";
    if (ctx->nparts == 1 && p->state != PART_PENDING) {
        const sg_header_t *ct = sg_headers_get(&child->res.headers, "content-type");

        ctx->single_status = p->status ? p->status : 500;
        ctx->single_ctype = ct ? sg_pool_strndup(&r->pool, ct->value.p, ct->value.n) : NULL;
        ctx->single_len = sg_buf_avail(&child->res_body);
        ctx->single_body = sg_pool_strndup(&r->pool, sg_buf_head(&child->res_body), ctx->single_len);
        if (p->status == 0) {
            ctx->single_body = p->fault;
            ctx->single_len = strlen(p->fault);
        }
    }
    batch_pump(r, ctx);
}

static void batch_query_done(sg_req_t *r, sg_req_t *child, void *arg)
{
    batch_ctx_t *ctx = r->batch_ctx;
    size_t idx = (size_t)(uintptr_t)arg;

    ctx->inflight--;
    ctx->parts[idx].state = PART_OK;
    ctx->answers[idx].status = child->res_started ? child->res.status : 502;
    ctx->answers[idx].len = sg_buf_avail(&child->res_body);
    ctx->answers[idx].body = sg_pool_strndup(&r->pool, sg_buf_head(&child->res_body),
                                             ctx->answers[idx].len);
    batch_pump(r, ctx);
}

static void batch_finish_query(sg_req_t *r, batch_ctx_t *ctx)
{
    sg_buf_t out;
    int status = 500, rv;

    sg_buf_init(&out, 16u * 1024 * 1024);
    rv = r->route == SG_ROUTE_TASK_INFO
             ? sg_merge_task_info(&r->pool, r->moid.p, ctx->h.provider, ctx->answers, ctx->nparts,
                                  &out, &status)
             : sg_merge_task_result(&r->pool, ctx->answers, ctx->nparts, &out, &status);
    if (rv == SG_OK)
        sg_req_reply(r, status, sg_buf_avail(&out) ? "application/json" : NULL, sg_buf_head(&out),
                     sg_buf_avail(&out));
    else
        sg_req_fault(r, 500, "ProviderUnavailable", "A part of the composite task answered "
                                                    "something that is not a task.");
    sg_buf_dispose(&out);
}

/* Percent-encode an upstream id for a path segment (it is data, not syntax). */
static int batch_segment(sg_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rv = SG_OK;

    for (; rv == SG_OK && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            rv = sg_buf_append(b, s, 1);
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rv = sg_buf_append(b, e, 3);
        }
    }
    return rv;
}

/* Send pending parts while there is room; finish when nothing is left. */
static void batch_pump(sg_req_t *r, batch_ctx_t *ctx)
{
    const sg_stopreq_t *sr = r->stop;
    size_t pending = 0;

    for (size_t i = 0; i < ctx->nparts; i++) {
        batch_part_t *p = &ctx->parts[i];
        sg_buf_t path, body;
        sg_req_t *child;
        int rv;

        if (p->state != PART_PENDING)
            continue;
        if (ctx->inflight >= (size_t)r->conf->batch.max_parallel) {
            pending++;
            continue;
        }
        sg_buf_init(&path, 4096);
        sg_buf_init(&body, ctx->querying ? 16 : sg_buf_avail(&r->body) + 65536);
        if (ctx->querying) {
            rv = sg_buf_appendf(&path, "/sdk/vim25/%s/sms/", r->release.p);
            if (rv == SG_OK)
                rv = batch_segment(&path, ctx->h.parts[i].type);
            if (rv == SG_OK)
                rv = sg_buf_lit(&path, "/");
            if (rv == SG_OK)
                rv = batch_segment(&path, ctx->h.parts[i].value);
            if (rv == SG_OK)
                rv = sg_buf_appendf(&path, "/%s", ctx->method);
        } else {
            rv = sg_buf_append(&path, r->path.p, r->path.n);
            if (rv == SG_OK)
                rv = sg_stopreq_serialize(sr, p->first, p->count, &body);
        }
        child = rv == SG_OK ? sg_subreq_spawn(r, sg_buf_head(&path), sg_buf_avail(&path),
                                              sg_buf_head(&body), sg_buf_avail(&body),
                                              ctx->querying ? batch_query_done : batch_part_done,
                                              (void *)(uintptr_t)i)
                            : NULL;
        sg_buf_dispose(&path);
        sg_buf_dispose(&body);
        if (child == NULL) {
            sg_req_fault(r, 503, "SystemError", "The gateway is out of memory for this request.");
            return;
        }
        p->state = PART_SENT;
        ctx->inflight++;
    }
    if (pending == 0 && ctx->inflight == 0)
        ctx->querying ? batch_finish_query(r, ctx) : batch_finish_stop(r, ctx);
}

static int batch_toomany(sg_req_t *r, long long size, const char *why)
{
    sg_fault_t f = {.type = "TooMany", .message = why, .max_batch_size = size};

    r->reason = why;
    sg_req_fault_ex(r, 500, &f);
    return SG_FLT_REPLIED;
}

static int batch_stop(sg_req_t *r, batch_ctx_t *ctx)
{
    const sg_stopreq_t *sr = r->stop;
    size_t size = (size_t)batch_size(r), nparts;

    if (sr == NULL || size == 0)
        return SG_ERR;
    nparts = (sr->ngroups + size - 1) / size;
    if (nparts > 1 && r->gen->task_key == NULL)
        /* No key, no composite task: answer as the API would and let the client split. */
        return batch_toomany(r, (long long)size, "Too many replication groups in one request.");
    if (nparts > batch_max_parts(r))
        return batch_toomany(r, (long long)(size * batch_max_parts(r)),
                             "The request would need more parts than batch.max_parts allows.");
    for (size_t i = 0; i < nparts; i++)
        if (batch_add_part(r, ctx, i, i * size, SG_MIN(size, sr->ngroups - i * size)) != SG_OK)
            return SG_ENOMEM;
    batch_pump(r, ctx);
    return SG_FLT_WAIT; /* the answer comes from the parts; the chain never resumes */
}

/* Decodes the handle in the request's moId under the current task key or, for handles
 * made before the last rotation, batch.task_key_previous_file's. */
static int batch_decode(sg_req_t *r, sg_handle_t *h, const char **why)
{
    const sg_gen_t *g = r->gen;
    int rv;

    if (g->task_key == NULL)
        return SG_ERR;
    rv = sg_handle_decode(&r->pool, r->moid.p, r->moid.n, g->task_key, g->task_key_len, h, why);
    if (rv == SG_ERR && g->task_key_prev != NULL && strcmp(*why, "bad signature") == 0)
        rv = sg_handle_decode(&r->pool, r->moid.p, r->moid.n, g->task_key_prev,
                              g->task_key_prev_len, h, why);
    return rv;
}

static int batch_query(sg_req_t *r, batch_ctx_t *ctx)
{
    const sg_principal_t *who = r->principal;
    const char *why = "not found";

    if (batch_decode(r, &ctx->h, &why) != SG_OK || who == NULL ||
        strcmp(ctx->h.tenant, who->tenant) != 0) {
        /* Forged, altered, or another tenant's: the same answer for all, nothing forwarded. */
        sg_fault_t f = {.type = "ManagedObjectNotFound",
                        .message = "The object has already been deleted or has not been "
                                   "completely created.",
                        .object_key = "obj",
                        .object_type = "SmsTask",
                        .object_value = r->moid.p};

        r->reason = why;
        sg_req_fault_ex(r, 500, &f);
        return SG_FLT_REPLIED;
    }
    ctx->querying = 1;
    ctx->method = r->route == SG_ROUTE_TASK_INFO ? "QuerySmsTaskInfo" : "QuerySmsTaskResult";
    ctx->answers = sg_pool_calloc(&r->pool, ctx->h.nparts * sizeof(*ctx->answers));
    if (ctx->answers == NULL)
        return SG_ENOMEM;
    for (size_t i = 0; i < ctx->h.nparts; i++) {
        if (batch_add_part(r, ctx, i, 0, ctx->h.parts[i].count) != SG_OK)
            return SG_ENOMEM;
        if (ctx->h.parts[i].value == NULL) {
            /* Failed at submission: its fault is in the handle. */
            ctx->parts[i].state = PART_OK;
            ctx->answers[i].status = 0;
            ctx->answers[i].body = ctx->h.parts[i].fault;
            ctx->answers[i].len = strlen(ctx->h.parts[i].fault);
        }
    }
    batch_pump(r, ctx);
    return SG_FLT_WAIT;
}

static int batch_on_request_body(sg_req_t *r, void *vctx)
{
    batch_ctx_t *ctx = vctx;

    if (r->batch_ctx != NULL)
        return SG_FLT_WAIT; /* already under way */
    if (r->route == SG_ROUTE_STOP_TEST) {
        r->batch_ctx = ctx;
        return batch_stop(r, ctx);
    }
    if ((r->route == SG_ROUTE_TASK_INFO || r->route == SG_ROUTE_TASK_RESULT) &&
        sg_handle_is_composite(r->moid.p, r->moid.n)) {
        r->batch_ctx = ctx;
        return batch_query(r, ctx);
    }
    return SG_FLT_NEXT; /* ordinary task ids pass through after the policy check */
}

/* For the audit's outcome record: the parts of a split request. */
size_t sg_flt_batch_parts(const sg_req_t *r, size_t i, int *status, const char **task,
                          const char **fault, unsigned long long *duration_ms)
{
    const batch_ctx_t *ctx = r->parts;

    if (ctx == NULL || i >= ctx->nparts)
        return ctx == NULL ? 0 : ctx->nparts;
    *status = ctx->parts[i].status;
    *task = ctx->parts[i].value;
    *fault = ctx->parts[i].fault_type;
    *duration_ms = ctx->parts[i].duration_ms;
    return ctx->nparts;
}

const char *sg_flt_batch_part_error(const sg_req_t *r, size_t i)
{
    const batch_ctx_t *ctx = r->parts;

    return ctx != NULL && i < ctx->nparts ? ctx->parts[i].error : NULL;
}

const sg_filter_ops_t sg_flt_batch = {
    .name = "batch",
    .ctx_size = sizeof(batch_ctx_t),
    .on_request_body = batch_on_request_body,
};
