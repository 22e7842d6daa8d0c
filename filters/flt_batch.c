/*
 * filters/flt_batch.c - batch splitting and composite tasks (docs/design.md "Batch
 * splitting and composite tasks").
 *
 * The last filter. A stop-test request, and any replication operation whose row
 * (filters/ops.c) has a split member (the groupId-array tasks: the stop-test,
 * PrepareFailover, Sync, ReverseReplicate), goes upstream as ordered parts of at
 * most the provider's batch size on the request's vCenter (learned from
 * TooMany, else the batch.providers entry for (upstream, moid), else the one
 * for moid on any upstream, else batch.max_size), at most
 * batch.max_parallel at a time, each a sub-request (proxy/subreq.c) carrying
 * the client's force, _typeName members and session header. One part: the
 * request itself goes upstream (direct mode, no sub-request), its answer comes
 * back here whole and goes to the client as it came, or is re-split after a
 * TooMany like any part. Several: the client gets one SmsTask whose
 * value is a signed composite handle (filters/handle.c). Queries on such a
 * handle query every part and merge the answers (filters/merge.c). A dry run
 * (X-Dry-Run) is answered here with the plan instead of being sent
 * (batch_dry_run).
 */
#include "filters/flt_batch.h"
#include "filters/canon.h"
#include "filters/flt_authn.h"
#include "filters/flt_validate.h"
#include "filters/handle.h"
#include "base/json.h"
#include "filters/merge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * A part's life. What the client is told follows from it (batch_finish_stop): a part that may
 * have run upstream (OK or LOST) means the client gets a composite task accounting for every
 * part, never a bare fault, so that nobody retries a stop that may already be running. Only
 * when nothing can have run anywhere (every part REFUSED or UNSENT) does the client get the
 * fault directly (docs/design.md: "when every part fails, the client gets that fault directly").
 */
enum {
    PART_PENDING = 0, /* not sent yet */
    PART_SENT,        /* upstream, no answer yet */
    PART_OK,          /* accepted: type and value are the provider's task */
    PART_REFUSED,     /* nothing ran: the provider answered a fault, or it never left us */
    PART_LOST,        /* sent, but its answer is lost or unusable: it may have run */
    PART_UNSENT       /* never sent: the client went away before its turn, or no memory */
};

/* Parts are allocated one by one and never move: a child carries its part's address, so a
 * re-split that inserts parts before it cannot make its answer land on another part. */
typedef struct {
    size_t first, count; /* the client's groups this part carries */
    size_t idx;          /* queries: the part's place in the handle (queries never re-split) */
    int state;
    int status;          /* the upstream's HTTP status (0: none) */
    const char *type, *value; /* task reference of an accepted part */
    const char *fault;   /* fault JSON of a part that is not OK (carried in the handle) */
    const char *fault_type; /* its _typeName */
    const char *error;   /* no usable answer from the upstream: why (for the audit), else NULL */
    unsigned long long duration_ms;
} batch_part_t;

typedef struct {
    batch_part_t **parts;    /* in the client's order */
    size_t nparts, cap, inflight;
    size_t budget;           /* the most parts this request may become (batch_budget_of) */
    int budget_known;        /* budget computed: only once a split is asked for */
    int querying;            /* a composite task query, not a stop-test */
    int want_result;         /* QuerySmsTaskResult: the second round asks for results */
    int learn_info;          /* a plain QuerySmsTaskInfo whose answer may teach a TooMany */
    sg_handle_t h;           /* the decoded handle when querying */
    sg_merge_part_t *infos;  /* the parts' QuerySmsTaskInfo answers, in handle order */
    sg_merge_part_t *results; /* QuerySmsTaskResult: the parts' result answers (round two) */
    /* a single part's answer, passed back as it came */
    int single_status;
    const char *single_ctype, *single_body;
    size_t single_len;
    int active;              /* the parts are under way: a resumed hook only waits */
    int split;               /* sent as parts: the audit records them part by part */
    int direct;              /* the only part is the request itself, upstream now */
    uint64_t sent_ms;        /* when it went */
} batch_ctx_t;

/* The generation's composite-handle keys (batch.task_key_file and the previous one). */
typedef struct {
    unsigned char *key; /* NULL when not set: no handle, no split */
    size_t key_len;
    unsigned char *prev; /* verifies only */
    size_t prev_len;
} batch_gen_t;

static const batch_gen_t *batch_gen(const sg_req_t *r)
{
    return sg_flt_gen(r, &sg_flt_batch);
}

/* Composite-handle keys are short random secrets; a larger file is a mistake. */
#define BATCH_TASK_KEY_MAX (1u << 20)
#define BATCH_TASK_KEY_MIN 32 /* HMAC-SHA256: RFC 7518 3.2 wants at least 256 bits */

/* A composite-handle key (KEY names its configuration key): raw bytes, read whole once per
 * generation. An empty path leaves *out NULL. */
static int batch_task_key(const sg_gen_t *g, const char *key, const char *path,
                          unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    sg_file_t f;
    const char *why;

    if (path == NULL || path[0] == '\0')
        return SG_OK;
    if (sg_file_read(&f, path, BATCH_TASK_KEY_MAX, SG_FILE_SECRET, &why) != SG_OK) {
        snprintf(err, errlen, "%s: '%s': cannot read '%s': %s", g->conf->file, key, path, why);
        return SG_ERR;
    }
    if (f.len < BATCH_TASK_KEY_MIN) {
        sg_file_dispose(&f);
        snprintf(err, errlen, "%s: '%s': '%s' is shorter than %d bytes", g->conf->file, key,
                 path, BATCH_TASK_KEY_MIN);
        return SG_ERR;
    }
    *out = f.data; /* wiped and freed by batch_gen_deinit() */
    *outlen = f.len;
    return SG_OK;
}

static int batch_gen_init(sg_gen_t *g, void **fgen, char *err, size_t errlen)
{
    batch_gen_t *bg = calloc(1, sizeof(*bg));

    if ((*fgen = bg) == NULL) {
        snprintf(err, errlen, "%s: out of memory", g->conf->file);
        return SG_ENOMEM;
    }
    if (batch_task_key(g, "batch.task_key_file", g->conf->batch.task_key_file, &bg->key,
                       &bg->key_len, err, errlen) != SG_OK ||
        batch_task_key(g, "batch.task_key_previous_file", g->conf->batch.task_key_previous_file,
                       &bg->prev, &bg->prev_len, err, errlen) != SG_OK)
        return SG_ERR;
    return SG_OK;
}

static void batch_gen_deinit(void *fgen)
{
    batch_gen_t *bg = fgen;

    if (bg == NULL)
        return;
    sg_secret_free(bg->key, bg->key_len);
    sg_secret_free(bg->prev, bg->prev_len);
    free(bg);
}

/* The name of the vCenter the request goes to. Every request that reaches this filter was
 * routed (sg_req_check); "" only guards the impossible, and makes no handle (handle.h). */
static const char *batch_upstream(const sg_req_t *r)
{
    return r->upstream != NULL ? r->upstream->name : "";
}

/* Sizes learned from TooMany, per worker thread: no lock, a small table. Keyed by (upstream
 * name, provider moid): provider ids are only unique within one vCenter, so "vasa-1" of
 * vc-east and "vasa-1" of vc-west are two providers with sizes of their own. The name, not
 * the index, keys it: a reload may reorder the upstreams, the vCenter stays the same. */
#define BATCH_LEARNED 64
static _Thread_local struct {
    char upstream[SG_CONF_NAME_MAX + 1];
    char moid[128];
    int size;
} batch_learned[BATCH_LEARNED];
static _Thread_local unsigned batch_learned_next;
static _Thread_local unsigned batch_learned_used; /* entries ever filled: the ones to look at */

static int batch_learned_find(const char *up, const char *moid, size_t n)
{
    for (unsigned i = 0; i < batch_learned_used; i++)
        if (batch_learned[i].size > 0 && strlen(batch_learned[i].moid) == n &&
            memcmp(batch_learned[i].moid, moid, n) == 0 &&
            strcmp(batch_learned[i].upstream, up) == 0)
            return (int)i;
    return -1;
}

static int batch_learned_get(const sg_req_t *r)
{
    int i = batch_learned_find(batch_upstream(r), r->moid.p, r->moid.n);

    return i < 0 ? 0 : batch_learned[i].size;
}

/* Provider moid of the request's vCenter said TooMany with maxBatchSize size (synchronously,
 * or as its task's error): later requests for it go out in parts of that size
 * (batch.learn_from_toomany). */
static void batch_learn(const sg_req_t *r, const char *moid, long long size)
{
    const char *up = batch_upstream(r);
    size_t n = strlen(moid), un = strlen(up);
    int i;

    if (!r->conf->batch.learn_from_toomany || n == 0 || n >= sizeof(batch_learned[0].moid) ||
        un == 0 || un >= sizeof(batch_learned[0].upstream))
        return;
    if ((i = batch_learned_find(up, moid, n)) < 0) {
        i = (int)batch_learned_next;
        batch_learned_next = (batch_learned_next + 1) % BATCH_LEARNED;
        if (batch_learned_used < BATCH_LEARNED)
            batch_learned_used++;
    }
    memcpy(batch_learned[i].upstream, up, un + 1);
    memcpy(batch_learned[i].moid, moid, n + 1);
    batch_learned[i].size = (int)SG_MAX(1, SG_MIN(size, SG_MERGE_BATCH_MAX));
}

/* The size of the request's parts: learned for (upstream, provider), else the batch.providers
 * entry naming the request's upstream and the provider, else the one for the provider on
 * any upstream (upstream ""), else batch.max_size. */
static int batch_size(sg_req_t *r)
{
    const sg_conf_t *conf = r->conf;
    int learned = conf->batch.learn_from_toomany ? batch_learned_get(r) : 0, any = 0;

    if (learned > 0)
        return learned;
    for (size_t i = 0; i < conf->batch.nproviders; i++) {
        const sg_conf_batch_provider_t *b = &conf->batch.providers[i];

        if (strlen(b->moid) != r->moid.n || memcmp(b->moid, r->moid.p, r->moid.n) != 0)
            continue;
        if (b->upstream[0] == '\0')
            any = b->max_size;
        else if (r->upstream != NULL && b->up == r->up_idx) /* both index r->conf->upstreams */
            return b->max_size;
    }
    return any > 0 ? any : conf->batch.max_size;
}

static const char *batch_tenant(const sg_req_t *r)
{
    const sg_principal_t *who = sg_flt_authn_principal(r);

    return who != NULL ? who->tenant : "";
}

/* The most parts a stop-test of ngroups groups may become, decided before anything is sent:
 * batch.max_parts, and never more than one composite handle can carry in its worst case
 * (longest task ids, every fault cut to its type: sg_handle_capacity), so that whatever the
 * provider answers, the client can be given a handle for every part that went out. 1 without
 * a task key: no handle, no split. Re-splits after TooMany stay within it (batch_resplit). */
static size_t batch_budget(const sg_req_t *r, size_t ngroups)
{
    if (batch_gen(r)->key == NULL)
        return 1;
    return SG_MIN((size_t)r->conf->batch.max_parts,
                  sg_handle_capacity(batch_upstream(r), r->moid.p, r->release.p, batch_tenant(r),
                                     ngroups));
}

/* The request's budget, worked out the first time a split needs it: a stop-test that goes
 * out in one part and stays one (the common case) never pays for it. */
static size_t batch_budget_of(sg_req_t *r, batch_ctx_t *ctx)
{
    if (!ctx->budget_known) {
        const sg_stopreq_t *sr = sg_flt_validate_stop(r);

        ctx->budget = batch_budget(r, sr != NULL ? sr->ngroups : 0);
        ctx->budget_known = 1;
    }
    return ctx->budget;
}

/* Inserts a new pending part at position at. */
static int batch_add_part(sg_req_t *r, batch_ctx_t *ctx, size_t at, size_t first, size_t count)
{
    batch_part_t *p = sg_pool_calloc(&r->pool, sizeof(*p));

    if (p == NULL)
        return SG_ENOMEM;
    if (ctx->nparts == ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap * 2 : 8;
        batch_part_t **np = sg_pool_alloc(&r->pool, ncap * sizeof(*np));

        if (np == NULL)
            return SG_ENOMEM;
        if (ctx->nparts)
            memcpy(np, ctx->parts, ctx->nparts * sizeof(*np));
        ctx->parts = np;
        ctx->cap = ncap;
    }
    memmove(&ctx->parts[at + 1], &ctx->parts[at], (ctx->nparts - at) * sizeof(*ctx->parts));
    p->first = first;
    p->count = count;
    p->idx = at;
    ctx->parts[at] = p;
    ctx->nparts++;
    return SG_OK;
}

/* A vSphere fault as JSON text, for parts that have none from the provider. */
static const char *batch_fault_json(sg_req_t *r, const char *type, const char *msg)
{
    sg_fault_t f = {.type = type, .message = msg};
    sg_buf_t b;
    const char *s = NULL;

    sg_buf_init(&b, 4096);
    if (sg_fault_write(&b, &f) == SG_OK)
        s = sg_pool_strndup(&r->pool, sg_buf_head(&b), sg_buf_avail(&b));
    sg_buf_dispose(&b);
    return s != NULL ? s : "{\"_typeName\":\"SystemError\"}";
}

/* Part p ends without a task of its own. */
static void batch_part_fail(batch_part_t *p, int state, const char *type, const char *fault)
{
    p->state = state;
    p->fault_type = type;
    p->fault = fault;
}

/* The upstream answer a part got (x: its sub-request, or r in direct mode) as JSON, or
 * NULL. */
static const sg_json_t *batch_parse(sg_req_t *r, const sg_req_t *x)
{
    sg_json_limits_t lim = {.max_depth = 32, .max_values = 1u << 20};
    sg_json_t *root = NULL;
    sg_json_err_t err;

    if (sg_buf_avail(&x->res_body) == 0 ||
        sg_json_parse(&r->pool, sg_buf_head(&x->res_body), sg_buf_avail(&x->res_body), &lim,
                      &root, &err) != SG_OK || root->type != SG_JSON_OBJECT)
        return NULL;
    return root;
}

static const char *batch_member(const sg_json_t *o, const char *name)
{
    const sg_json_t *v = o ? sg_json_get(o, name, strlen(name)) : NULL;

    return v != NULL && v->type == SG_JSON_STRING ? v->str.p : NULL;
}

static size_t batch_index(const batch_ctx_t *ctx, const batch_part_t *p)
{
    size_t i = 0;

    while (i < ctx->nparts && ctx->parts[i] != p)
        i++;
    return i;
}

/* Splits the pending part at position at into parts of m groups in place (the client's order
 * kept), when it is larger than m and the request stays within its budget. Returns 1 when it
 * was split, 0 when not, SG_ENOMEM. */
static int batch_split_at(sg_req_t *r, batch_ctx_t *ctx, size_t at, size_t m)
{
    batch_part_t *p = ctx->parts[at];
    size_t first = p->first, count = p->count, pieces;

    if (count <= m)
        return 0;
    pieces = (count + m - 1) / m;
    if (ctx->nparts - 1 + pieces > batch_budget_of(r, ctx))
        return 0;
    for (size_t k = 1; k < pieces; k++)
        if (batch_add_part(r, ctx, at + k, first + k * m, SG_MIN(m, count - k * m)) != SG_OK)
            return SG_ENOMEM;
    p->count = m;
    return 1;
}

/* The provider refused part p with TooMany, maxBatchSize m. It is split and sent again, and
 * so is every part not sent yet that is larger than m (it would be refused as well), as far
 * as the budget allows: a part that cannot be split within it is refused with the provider's
 * fault (nothing of it ran) and reported inside the composite task. */
static void batch_resplit(sg_req_t *r, batch_ctx_t *ctx, batch_part_t *p, size_t m,
                          const char *fault)
{
    int rv = batch_split_at(r, ctx, batch_index(ctx, p), m);

    if (rv == 1) {
        p->state = PART_PENDING;
        p->status = 0;
    } else {
        batch_part_fail(p, PART_REFUSED, "TooMany", fault);
    }
    /* The new pieces are pending but not larger than m: the loop passes over them. On
     * SG_ENOMEM the parts stay as they are; the provider refuses them again, honestly. */
    for (size_t i = 0; rv >= 0 && i < ctx->nparts; i++)
        if (ctx->parts[i]->state == PART_PENDING && ctx->parts[i]->count > m)
            rv = batch_split_at(r, ctx, i, m);
}

static void batch_pump(sg_req_t *r, batch_ctx_t *ctx);

static void batch_finish_stop(sg_req_t *r, batch_ctx_t *ctx)
{
    const batch_part_t *refused = NULL;
    size_t ran = 0;
    sg_buf_t out;
    int rv;

    if (ctx->nparts == 1) {
        /* One part: the upstream's answer, as it came. */
        const batch_part_t *p = ctx->parts[0];

        if (ctx->single_body != NULL)
            sg_req_reply(r, ctx->single_status, ctx->single_ctype ? ctx->single_ctype
                                                                  : "application/json",
                         ctx->single_body, ctx->single_len);
        else
            sg_req_reply(r, 500, "application/json", p->fault, strlen(p->fault));
        if (p->state != PART_OK)
            r->fault_type = p->fault_type;
        return;
    }
    for (size_t i = 0; i < ctx->nparts; i++) {
        const batch_part_t *p = ctx->parts[i];

        ran += p->state == PART_OK || p->state == PART_LOST;
        if (refused == NULL && p->state == PART_REFUSED)
            refused = p;
    }
    if (ran == 0) {
        /* Nothing ran anywhere: the fault, directly; a retry is what the client should do. */
        const batch_part_t *p = refused != NULL ? refused : ctx->parts[0];

        sg_req_reply(r, 500, "application/json", p->fault, strlen(p->fault));
        r->fault_type = p->fault_type;
        return;
    }
    {
        sg_handle_part_t *hp = sg_pool_calloc(&r->pool, ctx->nparts * sizeof(*hp));
        sg_handle_t h = {.upstream = batch_upstream(r), .provider = r->moid.p,
                         .release = r->release.p, .tenant = batch_tenant(r), .parts = hp,
                         .nparts = ctx->nparts};

        if (hp == NULL)
            goto nomem;
        for (size_t i = 0; i < ctx->nparts; i++) {
            const batch_part_t *p = ctx->parts[i];

            hp[i].count = p->count;
            if (p->state == PART_OK) {
                hp[i].type = p->type;
                hp[i].value = p->value;
            } else {
                hp[i].fault = p->fault;
            }
        }
        sg_buf_init(&out, SG_HANDLE_MAX + 256);
        rv = sg_buf_lit(&out, "{\"_typeName\":\"ManagedObjectReference\",\"type\":\"SmsTask\","
                              "\"value\":\"");
        if (rv == SG_OK)
            rv = sg_handle_encode(&h, batch_gen(r)->key, batch_gen(r)->key_len, &out);
        if (rv == SG_OK)
            rv = sg_buf_lit(&out, "\"}");
        if (rv == SG_OK)
            sg_req_reply(r, 200, "application/json", sg_buf_head(&out), sg_buf_avail(&out));
        sg_buf_dispose(&out);
        if (rv == SG_OK)
            return;
        if (rv != SG_ENOMEM)
            /* Cannot happen: the budget was checked before sending and every part was made
             * carriable when it ended (batch_part_done). Say so loudly: parts did run. */
            sg_log(SG_LOG_ERROR, "req=%s: cannot build a composite task handle from the parts "
                                 "(%d); the parts' tasks are in the audit log",
                   r->request_id, rv);
        sg_req_fault(r, 500, "SystemError", "The parts were sent but their composite task "
                                            "cannot be made; see the audit log.");
        return;
    }
nomem:
    sg_req_fault(r, 503, "SystemError", "The gateway is out of memory for this request.");
}

/* 1 when the child's exchange failed before its request left the gateway (no connection, no
 * TLS), so the provider cannot have run it (proxy/upstream.c's reasons). */
static int batch_not_delivered(const sg_req_t *child)
{
    return child->up_error != NULL && (strcmp(child->up_error, "upstream unreachable") == 0 ||
                                       strcmp(child->up_error, "upstream tls") == 0);
}

/* Part p's exchange ended on x (its sub-request, or r itself in direct mode): the part's
 * state from the answer. status is the upstream's HTTP status, 0 when it gave no answer of
 * its own (a fault made here: unreachable, reset, timeout, bad response, is the gateway's,
 * not the provider's). */
static void batch_part_end(sg_req_t *r, batch_ctx_t *ctx, batch_part_t *p, const sg_req_t *x,
                           int status)
{
    const sg_json_t *root;
    const char *type, *body, *v;
    size_t blen = sg_buf_avail(&x->res_body);

    p->status = status;
    p->error = x->up_error;
    root = p->status != 0 ? batch_parse(r, x) : NULL;
    type = batch_member(root, "_typeName");
    body = blen ? sg_pool_strndup(&r->pool, sg_buf_head(&x->res_body), blen) : NULL;
    v = p->status == 200 ? batch_member(root, "value") : NULL;
    if (v != NULL) {
        const char *t = batch_member(root, "type");

        if (t == NULL)
            t = "SmsTask";
        if ((strcmp(t, "SmsTask") == 0 || strcmp(t, "Task") == 0) && sg_handle_id_ok(v)) {
            p->state = PART_OK;
            p->type = t;
            p->value = v;
        } else {
            /* A task the handle cannot carry (another type, an id of kilobytes): it may run,
             * so it is a part whose answer is lost, not a refusal. The audit has its id. */
            p->value = v;
            p->error = "upstream task reference not carried";
            batch_part_fail(p, PART_LOST, "ProviderUnavailable",
                            batch_fault_json(r, "ProviderUnavailable",
                                             "The provider accepted this part, but its task "
                                             "reference cannot be carried in a composite task."));
        }
    } else if (p->status == 500 && type != NULL && body != NULL) {
        if (strcmp(type, "TooMany") == 0) {
            const sg_json_t *mb = sg_json_get(root, "maxBatchSize", 12);
            long long m = mb != NULL && mb->type == SG_JSON_NUMBER ? strtoll(mb->str.p, NULL, 10)
                                                                   : 0;

            if (m <= 0)
                m = 1; /* the API: absent or not positive means one group per call */
            m = SG_MIN(m, SG_MERGE_BATCH_MAX);
            batch_learn(r, r->moid.p, m);
            batch_resplit(r, ctx, p, (size_t)m, body);
        } else {
            batch_part_fail(p, PART_REFUSED, type, body);
        }
    } else if (p->status == 0 && batch_not_delivered(x)) {
        batch_part_fail(p, PART_REFUSED, "ProviderUnavailable",
                        batch_fault_json(r, "ProviderUnavailable",
                                         "The provider is temporarily unavailable."));
    } else {
        /* No answer, or one that is neither a task nor a fault: the part may have run. */
        if (p->error == NULL && p->status != 0)
            p->error = "upstream bad response";
        batch_part_fail(p, PART_LOST, "ProviderUnavailable",
                        batch_fault_json(r, "ProviderUnavailable",
                                         "This part was sent to the provider but its answer "
                                         "was lost; it may have run."));
    }
    if (ctx->nparts == 1 && p->state != PART_PENDING && p->status != 0) {
        /* Still one part: its answer goes back as it came (batch_finish_stop). */
        const sg_header_t *ct = sg_headers_get(&x->res.headers, "content-type");

        ctx->single_status = p->status;
        ctx->single_ctype = ct ? sg_pool_strndup(&r->pool, ct->value.p, ct->value.n) : NULL;
        ctx->single_len = blen;
        ctx->single_body = body != NULL ? body : "";
    }
}

static void batch_part_done(sg_req_t *r, sg_req_t *child, void *arg)
{
    batch_ctx_t *ctx = sg_flt_ctx(r, &sg_flt_batch);
    batch_part_t *p = arg;

    ctx->inflight--;
    p->duration_ms = sg_now_ms() - child->start_ms;
    batch_part_end(r, ctx, p, child,
                   child->local_reply || (child->aborted && !child->res_started)
                       ? 0
                       : child->res.status);
    batch_pump(r, ctx);
}

/* Direct mode (batch_stop): the request itself carried the only part, and its exchange
 * ended, held from the client (proxy/req.c). It is dealt with as a sub-request part's
 * answer is: the same record, the same re-split after TooMany, the same answer. */
static void batch_on_response(sg_req_t *r, void *vctx)
{
    batch_ctx_t *ctx = vctx;

    if (!ctx->direct)
        return;
    ctx->direct = 0;
    ctx->parts[0]->duration_ms = sg_now_ms() - ctx->sent_ms;
    batch_part_end(r, ctx, ctx->parts[0], r, r->up_error != NULL ? 0 : r->res.status);
    /* What the client gets is made afresh (batch_finish_stop, or a composite task after the
     * parts of a re-split): the held status, header lines and body are not it. */
    r->res.status = 0;
    r->res.headers.n = 0;
    r->res.content_length = -1;
    sg_buf_reset(&r->res_body);
    batch_pump(r, ctx);
}

static void batch_query_done(sg_req_t *r, sg_req_t *child, void *arg)
{
    batch_ctx_t *ctx = sg_flt_ctx(r, &sg_flt_batch);
    batch_part_t *p = arg;
    sg_merge_part_t *a = ctx->want_result ? &ctx->results[p->idx] : &ctx->infos[p->idx];
    sg_merge_peek_t peek;

    ctx->inflight--;
    p->state = PART_OK;
    a->status = child->res_started ? child->res.status : 502;
    a->len = sg_buf_avail(&child->res_body);
    a->body = sg_pool_strndup(&r->pool, sg_buf_head(&child->res_body), a->len);
    /* TooMany may come as the task's error instead of the call's fault (SmsTask info):
     * it teaches the provider's size all the same. */
    if (!ctx->want_result && a->status == 200 &&
        sg_merge_info_peek(&r->pool, a->body, a->len, &peek) == SG_OK && peek.toomany > 0)
        batch_learn(r, ctx->h.provider, peek.toomany);
    batch_pump(r, ctx);
}

/* QuerySmsTaskResult: after every part's task info came back, ask the parts that finished
 * without a result in their info for it. Returns 1 when that round was started. */
static int batch_result_round(sg_req_t *r, batch_ctx_t *ctx)
{
    sg_merge_peek_t peek;
    int need = 0;

    for (size_t i = 0; i < ctx->nparts; i++) {
        const sg_merge_part_t *a = &ctx->infos[i];

        if (a->status == 0)
            continue;
        if (a->status != 200 || sg_merge_info_peek(&r->pool, a->body, a->len, &peek) != SG_OK ||
            peek.state == SG_MERGE_QUEUED || peek.state == SG_MERGE_RUNNING)
            return 0; /* the merge answers for it: pass-through, 204 or a bad answer */
        if (peek.state == SG_MERGE_SUCCESS && !peek.has_result) {
            ctx->parts[i]->state = PART_PENDING;
            need = 1;
        }
    }
    if (!need)
        return 0;
    ctx->results = sg_pool_calloc(&r->pool, ctx->nparts * sizeof(*ctx->results));
    if (ctx->results == NULL)
        return 0; /* answer from the infos alone */
    ctx->want_result = 1;
    batch_pump(r, ctx);
    return 1;
}

static void batch_finish_query(sg_req_t *r, batch_ctx_t *ctx)
{
    sg_buf_t out;
    int status = 500, rv;

    if (r->route == SG_ROUTE_TASK_RESULT && !ctx->want_result && batch_result_round(r, ctx))
        return;
    sg_buf_init(&out, 16u * 1024 * 1024);
    rv = r->route == SG_ROUTE_TASK_INFO
             ? sg_merge_task_info(&r->pool, r->moid.p, ctx->h.provider, ctx->infos, ctx->nparts,
                                  &out, &status)
             : sg_merge_task_result(&r->pool, ctx->infos, ctx->results, ctx->nparts, &out,
                                    &status);
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

/* A part's upstream path: the client's (at most limits.max_header_bytes), or a task query
 * with two percent-encoded ids from the handle (each under SG_HANDLE_MAX). */
#define BATCH_PATH_MAX (64u * 1024)

/* Sends pending parts while there is room; finishes when nothing is left. */
static void batch_pump(sg_req_t *r, batch_ctx_t *ctx)
{
    const sg_stopreq_t *sr = sg_flt_validate_stop(r);
    size_t pending = 0;

    for (size_t i = 0; i < ctx->nparts; i++) {
        batch_part_t *p = ctx->parts[i];
        sg_buf_t path, body;
        sg_req_t *child;
        int rv;

        if (p->state != PART_PENDING)
            continue;
        if (!ctx->querying && r->conn->eof) {
            /* The client closed its side (an HTTP/1.1 client gone, like an HTTP/2 stream
             * reset): what is upstream finishes and is audited, nothing more is started. */
            p->error = "not sent: the client went away";
            batch_part_fail(p, PART_UNSENT, "RequestCanceled",
                            batch_fault_json(r, "RequestCanceled",
                                             "Not sent: the client closed its connection "
                                             "before this part's turn."));
            continue;
        }
        if (ctx->inflight >= (size_t)r->conf->batch.max_parallel) {
            pending++;
            continue;
        }
        sg_buf_init(&path, BATCH_PATH_MAX);
        sg_buf_init(&body, ctx->querying ? 16 : sg_buf_avail(&r->body) + 65536);
        if (ctx->querying) {
            const sg_handle_part_t *hp = &ctx->h.parts[p->idx];

            rv = sg_buf_appendf(&path, "/sdk/vim25/%s/sms/", r->release.p);
            if (rv == SG_OK)
                rv = batch_segment(&path, hp->type);
            if (rv == SG_OK)
                rv = sg_buf_lit(&path, "/");
            if (rv == SG_OK)
                rv = batch_segment(&path, hp->value);
            if (rv == SG_OK)
                rv = sg_buf_appendf(&path, "/%s", ctx->want_result ? "QuerySmsTaskResult"
                                                                   : "QuerySmsTaskInfo");
        } else {
            rv = sg_buf_append(&path, r->path.p, r->path.n);
            if (rv == SG_OK)
                rv = sg_stopreq_serialize(sr, p->first, p->count, &body);
        }
        child = rv == SG_OK ? sg_subreq_spawn(r, sg_buf_head(&path), sg_buf_avail(&path),
                                              sg_buf_head(&body), sg_buf_avail(&body),
                                              ctx->querying ? batch_query_done : batch_part_done,
                                              p)
                            : NULL;
        sg_buf_dispose(&path);
        sg_buf_dispose(&body);
        if (child == NULL) {
            if (ctx->querying) {
                /* Nothing has run for a query: refusing it is the truth. */
                ctx->parts[i]->state = PART_OK;
                ctx->infos[p->idx].status = 503;
                ctx->infos[p->idx].body = "";
                continue;
            }
            p->error = "not sent: no memory for it";
            batch_part_fail(p, PART_UNSENT, "SystemError",
                            batch_fault_json(r, "SystemError",
                                             "Not sent: the gateway had no memory for it."));
            continue;
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

/* X-Dry-Run (docs/design.md "Dry run"): every check passed, the decision record is durable,
 * and this is the point where the request would go upstream. It does not: the client gets
 * the plan, a JSON document of what would have been sent, in parts of size groups each
 * (size 0: an operation that is never split, sent whole). The plan is the one a real request
 * would get now (the sizes learned so far on this worker included); a provider could still
 * answer a real one with TooMany and have it re-split. */
static int batch_dry_run(sg_req_t *r, const sg_stopreq_t *sr, size_t size, size_t nparts)
{
    const sg_principal_t *who = sg_flt_authn_principal(r);
    size_t ngroups = sr != NULL ? sr->ngroups : 0;
    sg_buf_t b;
    int rv;

    sg_buf_init_sticky(&b, 1u << 20);
    sg_buf_lit(&b, "{\"dryRun\":true,\"decision\":\"allow\",\"requestId\":");
    sg_buf_json_cstr(&b, r->request_id);
    sg_buf_lit(&b, ",\"operation\":");
    sg_buf_json_cstr(&b, sg_op_of_route(r->route)->method);
    sg_buf_lit(&b, ",\"upstream\":");
    sg_buf_json_cstr(&b, batch_upstream(r));
    sg_buf_lit(&b, ",\"release\":");
    sg_buf_json_str(&b, r->release.p, r->release.n);
    sg_buf_lit(&b, ",\"provider\":");
    sg_buf_json_str(&b, r->moid.p, r->moid.n);
    sg_buf_lit(&b, ",\"subject\":");
    sg_buf_json_cstr(&b, who != NULL ? who->subject : NULL);
    sg_buf_lit(&b, ",\"tenant\":");
    sg_buf_json_cstr(&b, who != NULL ? who->tenant : NULL);
    sg_buf_lit(&b, ",\"reason\":");
    sg_buf_json_cstr(&b, r->reason != NULL ? r->reason : "allowed");
    sg_buf_lit(&b, ",\"groups\":");
    sg_buf_append_u64(&b, ngroups);
    sg_buf_lit(&b, ",\"batchSize\":");
    if (size == 0)
        sg_buf_lit(&b, "null");
    else
        sg_buf_append_u64(&b, size);
    sg_buf_lit(&b, ",\"parts\":[");
    for (size_t i = 0; i < nparts; i++) {
        size_t first = size == 0 ? 0 : i * size;

        if (i > 0)
            sg_buf_lit(&b, ",");
        sg_buf_lit(&b, "{\"first\":");
        sg_buf_append_u64(&b, first);
        sg_buf_lit(&b, ",\"groups\":");
        sg_buf_append_u64(&b, size == 0 ? ngroups : SG_MIN(size, ngroups - first));
        sg_buf_lit(&b, "}");
    }
    sg_buf_lit(&b, "]}");
    if ((rv = sg_buf_err(&b)) == SG_OK) {
        /* A failure to send is the front end's to handle (it resets the stream). */
        sg_req_reply(r, 200, "application/json", sg_buf_head(&b), sg_buf_avail(&b));
        rv = SG_FLT_REPLIED;
    }
    sg_buf_dispose(&b);
    return rv;
}

static int batch_stop(sg_req_t *r, batch_ctx_t *ctx)
{
    const sg_stopreq_t *sr = sg_flt_validate_stop(r);
    size_t size = (size_t)batch_size(r), nparts;

    if (sr == NULL || size == 0)
        return SG_ERR;
    nparts = (sr->ngroups + size - 1) / size;
    /* Everything that could make the answer impossible to give is decided here, before the
     * first part leaves: once one has, the client must be given a task for it. */
    if (nparts > 1 && batch_gen(r)->key == NULL)
        /* No key, no composite task: answer as the API would and let the client split. */
        return batch_toomany(r, (long long)size, "Too many replication groups in one request.");
    if (nparts > 1 && nparts > batch_budget_of(r, ctx))
        return batch_toomany(r, (long long)(size * SG_MAX(ctx->budget, (size_t)1)),
                             ctx->budget == (size_t)r->conf->batch.max_parts
                                 ? "The request would need more parts than batch.max_parts "
                                   "allows."
                                 : "The request would need more parts than one composite task "
                                   "can carry.");
    if (r->dry_run)
        return batch_dry_run(r, sr, size, nparts);
    for (size_t i = 0; i < nparts; i++)
        if (batch_add_part(r, ctx, i, i * size, SG_MIN(size, sr->ngroups - i * size)) != SG_OK)
            return SG_ENOMEM;
    ctx->split = 1; /* for the audit, from now on: an aborted request is audited part by part */
    if (nparts == 1 && !r->conn->eof) {
        /* One part: the request itself goes upstream, not a sub-request made for it. Its
         * body is flt_validate's re-serialisation of every group, the one
         * sg_stopreq_serialize(sr, 0, ngroups) gives a part (what was checked is what goes),
         * with the client's headers as a part has them. batch_on_response sees the end. */
        ctx->direct = 1;
        ctx->parts[0]->state = PART_SENT;
        ctx->sent_ms = sg_now_ms();
        sg_subreq_direct(r);
        return SG_FLT_NEXT;
    }
    batch_pump(r, ctx);
    return SG_FLT_WAIT; /* the answer comes from the parts; the chain never resumes */
}

/* Decodes the handle in the request's moId under the current task key or, for handles
 * made before the last rotation, batch.task_key_previous_file's. */
static int batch_decode(sg_req_t *r, sg_handle_t *h, const char **why)
{
    const batch_gen_t *g = batch_gen(r);
    int rv;

    if (g->key == NULL)
        return SG_ERR;
    rv = sg_handle_decode(&r->pool, r->moid.p, r->moid.n, g->key, g->key_len, h, why);
    if (rv == SG_ERR && g->prev != NULL && strcmp(*why, "bad signature") == 0)
        rv = sg_handle_decode(&r->pool, r->moid.p, r->moid.n, g->prev, g->prev_len, h, why);
    return rv;
}

static int batch_query(sg_req_t *r, batch_ctx_t *ctx)
{
    const char *why = "not found";
    int rv = batch_decode(r, &ctx->h, &why);

    if (rv == SG_OK && strcmp(ctx->h.upstream, batch_upstream(r)) != 0) {
        /* Its task ids are another vCenter's: asked here they would name nothing, or
         * another provider's tasks. A version-1 handle counts as made on "default". */
        rv = SG_ERR;
        why = "made on another upstream";
    } else if (rv == SG_OK && strcmp(ctx->h.tenant, batch_tenant(r)) != 0) {
        rv = SG_ERR;
        why = "another tenant's";
    } else if (rv == SG_OK && strcmp(ctx->h.release, r->release.p) != 0) {
        /* The parts are queried under the release they were created with, or not at all: a
         * handle presented under another release path is someone else's request. */
        rv = SG_ERR;
        why = "made under another release";
    }
    if (rv == SG_ENOMEM)
        return rv;
    if (rv != SG_OK || sg_flt_authn_principal(r) == NULL) {
        /* Forged, altered, another vCenter's, tenant's or release's: one answer for all,
         * nothing forwarded. */
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
    ctx->infos = sg_pool_calloc(&r->pool, ctx->h.nparts * sizeof(*ctx->infos));
    if (ctx->infos == NULL)
        return SG_ENOMEM;
    for (size_t i = 0; i < ctx->h.nparts; i++) {
        if (batch_add_part(r, ctx, i, 0, ctx->h.parts[i].count) != SG_OK)
            return SG_ENOMEM;
        if (ctx->h.parts[i].value == NULL) {
            /* Failed at submission: its fault is in the handle. */
            ctx->parts[i]->state = PART_OK;
            ctx->infos[i].status = 0;
            ctx->infos[i].body = ctx->h.parts[i].fault;
            ctx->infos[i].len = strlen(ctx->h.parts[i].fault);
        }
    }
    batch_pump(r, ctx);
    return SG_FLT_WAIT;
}

static int batch_on_request_body(sg_req_t *r, void *vctx)
{
    batch_ctx_t *ctx = vctx;

    const sg_op_t *op = sg_op_of_route(r->route);

    if (ctx->active)
        return SG_FLT_WAIT; /* already under way */
    if (op != NULL && op->split != NULL) {
        ctx->active = 1;
        return batch_stop(r, ctx);
    }
    if (op != NULL && r->dry_run)
        return batch_dry_run(r, sg_flt_validate_stop(r), 0, 1);
    if (op != NULL)
        return SG_FLT_NEXT; /* never split: forwarded whole, as validated */
    if ((r->route == SG_ROUTE_TASK_INFO || r->route == SG_ROUTE_TASK_RESULT) &&
        sg_handle_is_composite(r->moid.p, r->moid.n)) {
        ctx->active = 1;
        return batch_query(r, ctx);
    }
    if (r->route == SG_ROUTE_TASK_INFO && r->conf->batch.learn_from_toomany) {
        /* A one-part stop-test's task, queried as it is: its info may carry a TooMany. */
        ctx->learn_info = 1;
        r->capture = 1;
    }
    return SG_FLT_NEXT; /* ordinary task ids pass through after the policy check */
}

static void batch_on_done(sg_req_t *r, void *vctx)
{
    batch_ctx_t *ctx = vctx;
    sg_merge_peek_t peek;

    if (ctx->learn_info && r->capture && r->res_started && !r->local_reply &&
        r->res.status == 200 &&
        sg_merge_info_peek(&r->pool, sg_buf_head(&r->res_body), sg_buf_avail(&r->res_body),
                           &peek) == SG_OK &&
        peek.toomany > 0 && peek.provider != NULL)
        batch_learn(r, peek.provider, peek.toomany);
}

/* For the audit's outcome record: the parts of a split request. */
size_t sg_flt_batch_parts(const sg_req_t *r, size_t i, int *status, const char **task,
                          const char **fault, unsigned long long *duration_ms)
{
    const batch_ctx_t *ctx = sg_flt_ctx_peek(r, &sg_flt_batch);

    if (ctx != NULL && !ctx->split)
        ctx = NULL;
    if (ctx == NULL || i >= ctx->nparts)
        return ctx == NULL ? 0 : ctx->nparts;
    *status = ctx->parts[i]->status;
    *task = ctx->parts[i]->value;
    *fault = ctx->parts[i]->fault_type;
    *duration_ms = ctx->parts[i]->duration_ms;
    return ctx->nparts;
}

const char *sg_flt_batch_part_error(const sg_req_t *r, size_t i)
{
    const batch_ctx_t *ctx = sg_flt_ctx_peek(r, &sg_flt_batch);

    return ctx != NULL && ctx->split && i < ctx->nparts ? ctx->parts[i]->error : NULL;
}

const sg_filter_ops_t sg_flt_batch = {
    .name = "batch",
    .ctx_size = sizeof(batch_ctx_t),
    .gen_init = batch_gen_init,
    .gen_deinit = batch_gen_deinit,
    .on_request_body = batch_on_request_body,
    .on_response = batch_on_response,
    .on_done = batch_on_done,
};
