/*
 * proxy/req.c - the request object: runs the filter chain, answers locally
 * (faults) or hands the request to the upstream, and relays the upstream's
 * answer to whichever front end (h1 or h2) created the request.
 *
 * Lifetime: the front end creates the request (sg_req_new) and frees it
 * (sg_req_free) once the response is written or the client is gone
 * (sg_req_abort). Front-end callbacks never free the request synchronously.
 */
#include "proxy/proxy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "filters/filter.h"

enum { REQ_PHASE_HEADERS = 0, REQ_PHASE_WAIT_BODY, REQ_PHASE_BODY, REQ_PHASE_UPSTREAM };

/* v in lowercase hex at p, as "%" PRIx64 writes it; returns the digits written (1 to 16). */
static size_t req_hex(char *p, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 1;

    for (uint64_t t = v >> 4; t != 0; t >>= 4)
        n++;
    for (size_t i = n; i > 0; i--, v >>= 4)
        p[i - 1] = digits[v & 15];
    return n;
}

/* "<accept_ms>-<id>" in hex, cut to fit as snprintf would: without printf, as it is
 * formatted for every request. */
static void req_id_format(char *out, size_t size, uint64_t accept_ms, uint64_t id)
{
    char tmp[2 * 16 + 1];
    size_t n = req_hex(tmp, accept_ms);

    tmp[n++] = '-';
    n += req_hex(tmp + n, id);
    if (n > size - 1)
        n = size - 1;
    memcpy(out, tmp, n);
    out[n] = '\0';
}

sg_req_t *sg_req_new(sg_conn_t *c, const sg_front_ops_t *fe)
{
    sg_pool_t pool;
    sg_req_t *r;

    /* The pool's chunks and the body's first block come from the worker's free list and
     * go back to it (sg_req_free): a steady stream of requests does not call malloc. */
    sg_pool_init_cached(&pool, &c->w->blocks);
    r = sg_pool_calloc(&pool, sizeof(*r));
    if (r == NULL) {
        sg_pool_dispose(&pool);
        return NULL;
    }
    r->pool = pool;
    r->conn = c;
    /* New requests use the worker's newest generation, whatever their connection's. */
    r->gen = sg_gen_ref(c->w->gen);
    r->conf = r->gen->conf;
    r->fe = fe;
    r->id = __atomic_add_fetch(&c->w->px->next_req_id, 1, __ATOMIC_RELAXED);
    req_id_format(r->request_id, sizeof(r->request_id), (uint64_t)c->accept_ms, r->id);
    r->start_ms = sg_now_ms();
    r->content_length = -1;
    r->res.content_length = -1;
    r->term = "--";
    sg_buf_init(&r->res_body, 65536);
    sg_buf_init(&r->body, (size_t)SG_MIN(r->conf->limits.max_body_bytes,
                                          c->conf->limits.max_body_bytes));
    sg_pool_cache_buf_seed(&c->w->blocks, &r->body);
    return r;
}

void sg_req_free(sg_req_t *r)
{
    sg_pool_t pool;

    sg_subreq_orphan_all(r);
    if (!r->is_child)
        sg_chain_done(r);
    sg_metrics_req_end(r); /* after on_done: the audit outcome has run */
    sg_audit_forget(r);
    if (r->up != NULL)
        sg_up_abort(r->up);
    sg_up_unqueue(r);
    sg_pool_cache_buf_dispose(&r->conn->w->blocks, &r->body);
    sg_pool_cache_buf_dispose(&r->conn->w->blocks, &r->res_body);
    sg_gen_unref(r->gen);
    pool = r->pool; /* r itself lives in the pool */
    sg_pool_dispose(&pool);
}

void sg_req_abort(sg_req_t *r)
{
    r->aborted = 1;
    if (r->term[0] == '-')
        r->term = "CD"; /* client went away while data was flowing */
    sg_req_free(r);
}

/* ---- local answers ---- */

int sg_req_reply(sg_req_t *r, int status, const char *ctype, const char *body, size_t blen)
{
    int rv;

    if (r->res_started) {
        /* Part of an answer has gone out already; the only honest end is a reset. */
        r->fe->abort(r);
        return SG_ERR;
    }
    r->local_reply = 1;
    r->res_started = 1;
    r->res.status = status;
    r->res.content_length = (int64_t)blen;
    r->res.no_body = r->head;
    if (ctype != NULL &&
        (rv = sg_headers_add(&r->pool, &r->res.headers, "content-type", 12, ctype,
                             strlen(ctype))) != SG_OK)
        return rv;
    if ((rv = r->fe->send_headers(r)) != SG_OK)
        return rv;
    if (blen > 0 && !r->head && (rv = r->fe->send_body(r, body, blen)) != SG_OK)
        return rv;
    if (!r->head)
        r->bytes_out += blen;
    r->res_ended = 1;
    return r->fe->send_end(r);
}

/* JSON string member "name":"value" with a leading comma. A fault may quote what a client
 * sent (a member name in invalidProperty): the one escaper (base/str.h) keeps the body
 * valid JSON whatever that held. */
static int req_json_member(sg_buf_t *b, const char *name, const char *value)
{
    int rv = sg_buf_appendf(b, ",\"%s\":", name);

    return rv == SG_OK ? sg_buf_json_cstr(b, value) : rv;
}

int sg_fault_write(sg_buf_t *b, const sg_fault_t *f)
{
    size_t len0 = b->len;
    int rv;

    rv = sg_buf_lit(b, "{\"_typeName\":");
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, f->type);
    if (rv == SG_OK)
        rv = req_json_member(b, "faultstring", f->message);
    if (rv == SG_OK)
        rv = sg_buf_appendf(b,
                            ",\"faultMessage\":[{\"_typeName\":\"LocalizableMessage\","
                            "\"key\":\"com.vmware.smsguard.%s\",\"message\":",
                            f->type);
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, f->message);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "}]");
    if (rv == SG_OK && f->invalid_property != NULL)
        rv = req_json_member(b, "invalidProperty", f->invalid_property);
    if (rv == SG_OK && f->object_type != NULL) {
        rv = sg_buf_appendf(b, ",\"%s\":{\"_typeName\":\"ManagedObjectReference\",\"type\":",
                            f->object_key ? f->object_key : "object");
        if (rv == SG_OK)
            rv = sg_buf_json_cstr(b, f->object_type);
        if (rv == SG_OK)
            rv = req_json_member(b, "value", f->object_value ? f->object_value : "");
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "}");
    }
    if (rv == SG_OK && f->privilege_id != NULL)
        rv = req_json_member(b, "privilegeId", f->privilege_id);
    if (rv == SG_OK && f->missing_privileges && f->object_type != NULL && f->privilege_id) {
        static const char mp[] = ",\"missingPrivileges\":[{\"_typeName\":"
                                 "\"NoPermissionEntityPrivileges\",\"entity\":{\"_typeName\":"
                                 "\"ManagedObjectReference\",\"type\":";

        rv = sg_buf_append(b, mp, sizeof(mp) - 1);
        if (rv == SG_OK)
            rv = sg_buf_json_cstr(b, f->object_type);
        if (rv == SG_OK)
            rv = req_json_member(b, "value", f->object_value ? f->object_value : "");
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "},\"privilegeIds\":[");
        if (rv == SG_OK)
            rv = sg_buf_json_cstr(b, f->privilege_id);
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "]}]");
    }
    if (rv == SG_OK && f->max_batch_size > 0)
        rv = sg_buf_appendf(b, ",\"maxBatchSize\":%lld", f->max_batch_size);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "}");
    if (rv != SG_OK)
        b->len = len0; /* nothing half-written */
    return rv;
}

int sg_req_fault_ex(sg_req_t *r, int status, const sg_fault_t *f)
{
    sg_buf_t b;
    int rv;

    sg_buf_init(&b, 16384);
    rv = sg_fault_write(&b, f);
    r->fault_type = f->type;
    if (rv == SG_OK) {
        sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " req=%s fault %d %s: %s", r->conn->id,
               r->request_id, status, f->type, f->message);
        rv = sg_req_reply(r, status, "application/json", sg_buf_head(&b), sg_buf_avail(&b));
    }
    sg_buf_dispose(&b);
    return rv;
}

int sg_req_fault(sg_req_t *r, int status, const char *type, const char *message)
{
    sg_fault_t f = {.type = type, .message = message};

    return sg_req_fault_ex(r, status, &f);
}

/* ---- the chain ---- */

static void req_forward(sg_req_t *r)
{
    if (r->dry_run) {
        /* The batch filter answers every dry run with its plan; a chain that let one through
         * is a build mistake, and a rehearsal must never become the real thing. */
        r->term = "PR";
        sg_req_fault(r, 500, "SystemError", "A dry run reached the forward; nothing was sent.");
        return;
    }
    r->flt_phase = REQ_PHASE_UPSTREAM;
    sg_up_forward(r);
}

/* Turns a chain result into the next step. Returns 1 when the chain may go on. */
static int req_chain_result(sg_req_t *r, int rv)
{
    if (rv == SG_FLT_NEXT)
        return 1;
    if (rv == SG_FLT_WAIT || rv == SG_FLT_REPLIED)
        return 0;
    r->term = "PR";
    if (rv == SG_ENOMEM)
        sg_req_fault(r, 503, "SystemError", "The gateway is out of memory for this request.");
    else
        sg_req_fault(r, 500, "SystemError", "The gateway could not process the request.");
    return 0;
}

static void req_run(sg_req_t *r)
{
    if (r->local_reply)
        return;
    if (r->flt_phase == REQ_PHASE_HEADERS) {
        if (!req_chain_result(r, sg_chain_run(r, SG_FLT_PHASE_HEADERS)))
            return;
        r->flt_phase = REQ_PHASE_WAIT_BODY;
    }
    if (r->flt_phase == REQ_PHASE_WAIT_BODY) {
        if (!r->body_complete)
            return; /* sg_req_body_done goes on */
        r->flt_phase = REQ_PHASE_BODY;
    }
    if (r->flt_phase == REQ_PHASE_BODY) {
        if (!req_chain_result(r, sg_chain_run(r, SG_FLT_PHASE_BODY)))
            return;
        req_forward(r);
    }
}

void sg_req_headers_done(sg_req_t *r)
{
    int rv;

    r->flt_phase = REQ_PHASE_HEADERS;
    if ((rv = sg_req_check(r)) != SG_OK) {
        if (!r->local_reply) /* the refusal itself could not be built: 503 */
            req_chain_result(r, SG_ENOMEM);
        return;
    }
    if (sg__req_chain_hook != NULL)
        sg__req_chain_hook(r);
    req_run(r);
}

void sg_req_body_done(sg_req_t *r)
{
    r->body_complete = 1;
    if (r->flt_phase == REQ_PHASE_WAIT_BODY)
        req_run(r);
}

void sg_req_resume(sg_req_t *r)
{
    req_run(r);
}

/* ---- upstream events ---- */

/* Direct mode (r->res_hold, sg_subreq_direct): the exchange ended, answered or failed, and
 * nothing of it reached the client. The chain answers for it (filters/filter.h
 * on_response): returns 1, and the core does nothing more with it. */
static int req_hand_over(sg_req_t *r)
{
    if (!r->res_hold)
        return 0;
    r->res_hold = 0;
    sg_chain_response(r);
    return 1;
}

void sg_req_up_headers(sg_req_t *r)
{
    if (r->res_hold)
        return; /* held: the body gathers in r->res_body for the chain (req_hand_over) */
    r->res_started = 1;
    if (r->fe->send_headers(r) != SG_OK)
        r->fe->abort(r);
}

int sg_req_up_body(sg_req_t *r, const char *p, size_t n)
{
    if (r->capture && r->res_body.data == NULL)
        sg_pool_cache_buf_seed(&r->conn->w->blocks, &r->res_body);
    if (r->res_hold) /* held whole (sg_subreq_direct): over its bound, a failure */
        return sg_buf_append(&r->res_body, p, n) == SG_OK ? 0 : -1;
    r->bytes_out += n;
    if (r->capture && sg_buf_append(&r->res_body, p, n) != SG_OK) {
        /* A sub-request's answer is all there is of it (the parent parses it): cut
         * short it would be wrong, so over its limit (proxy/subreq.c) it is a failure. */
        if (r->is_child)
            return -1;
        r->capture = 0; /* larger than any task reference: the audit says "unknown" */
    }
    if (r->fe->send_body(r, p, n) != SG_OK) {
        r->fe->abort(r);
        return 1;
    }
    if (r->fe->backlog(r) > SG_RES_HIGH_WATER) {
        r->res_paused = 1;
        return 1;
    }
    return 0;
}

void sg_req_res_drained(sg_req_t *r)
{
    if (r->res_paused && r->up != NULL && r->fe->backlog(r) < SG_RES_LOW_WATER) {
        r->res_paused = 0;
        sg_up_resume(r->up);
    }
}

void sg_req_up_done(sg_req_t *r)
{
    r->up = NULL;
    sg_metrics_up_end(r);
    if (req_hand_over(r))
        return;
    r->res_ended = 1;
    if (r->fe->send_end(r) != SG_OK)
        r->fe->abort(r);
}

void sg_req_up_fail(sg_req_t *r, int status, const char *why)
{
    r->up = NULL;
    sg_metrics_up_end(r);
    if (r->up_error == NULL)
        r->up_error = status == 504 ? "upstream timeout" : "upstream failed";
    sg_log(SG_LOG_WARN, "conn=%" PRIu64 " req=%s%s upstream failed (%d, %s) while %s",
           r->conn->id, r->request_id, r->is_child || r->res_hold ? " (part)" : "", status,
           r->up_error, why);
    /* A direct part's failure is the chain's to answer, as a sub-request part's is: the
     * request itself did not fail (its term stays as for an answered part). */
    if (req_hand_over(r))
        return;
    r->term = status == 504 ? "UD" : "UH";
    if (r->is_child && r->res_started && !r->local_reply) {
        /* Nothing of a sub-request's answer reached anyone: drop the part that came
         * and answer with the fault, as if the upstream had said nothing. */
        r->res_started = 0;
        r->res.status = 0;
        sg_buf_reset(&r->res_body);
    }
    if (r->res_started) {
        r->fe->abort(r);
        return;
    }
    /* Header lines of an answer that never completed are not part of the fault. */
    r->res.headers.n = 0;
    if (r->guarded)
        sg_req_fault(r, 500, "ProviderUnavailable", "The provider is temporarily unavailable.");
    else
        sg_req_fault(r, status, "ProviderUnavailable",
                     status == 504 ? "The upstream did not answer in time."
                                   : "The upstream could not be reached.");
}
