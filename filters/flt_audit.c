/*
 * filters/flt_audit.c - the audit records of the replication operations (the
 * stop-test and every other row of filters/ops.c; docs/design.md "Audit log").
 *
 * An allowed request waits here until its `decision` record is durable
 * (SG_FLT_WAIT; proxy/audit.c group-commits the sync and resumes it): nothing
 * is forwarded on the strength of a record that could be lost. If the record
 * cannot be written, fail_closed refuses the request. A request refused
 * earlier in the chain gets its `decision` record from on_done; a forwarded
 * one also gets an `outcome` record with the upstream status, the task
 * reference and the duration (an allowed dry run: one saying "dry run"). Every
 * string that came from a client or a token goes through the one escaper
 * (sg_buf_json_str, base/str.h), the same as in the access and error logs: no
 * line breaks, terminal escapes or bidi controls raw, invalid UTF-8 as U+FFFD.
 * The token never appears, only who it named.
 */
#include "base/json.h"
#include "filters/canon.h"
#include "filters/flt_authn.h"
#include "filters/flt_batch.h"
#include "filters/flt_validate.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

enum { AUDIT_NONE = 0, AUDIT_WAITING, AUDIT_WRITTEN, AUDIT_FAILED };

typedef struct {
    int state;
    int allowed; /* the decision record said allow and the request went on */
} audit_ctx_t;

extern const sg_filter_ops_t sg_flt_audit;

/* Every audit_* writer below appends to the sticky buffer of the worker's audit batch
 * (base/buf.h, proxy/audit.c): a failed step leaves the rest undone and its error in b,
 * which sg_audit_commit checks once. No printf: a record is literals, decimals
 * (sg_buf_append_u64) and strings through the one escaper. */

/* v in decimal, as "%d" wrote it. */
static void audit_int(sg_buf_t *b, int v)
{
    if (v < 0)
        sg_buf_lit(b, "-");
    sg_buf_append_u64(b, v < 0 ? -(unsigned long long)v : (unsigned long long)v);
}

/* "time", "stage", "request_id" and the request's identity: shared by both stages. The
 * stage is a literal and the request id the gateway's own (no character to escape). */
#define audit_head(b, r, stage) audit_head_((b), (r), "" stage, sizeof(stage) - 1)

static void audit_head_(sg_buf_t *b, sg_req_t *r, const char *stage, size_t stagelen)
{
    char t[SG_TIME_LEN];

    sg_buf_lit(b, "\"time\":\"");
    sg_buf_append(b, t, sg_time_rfc3339(t));
    sg_buf_lit(b, "\",\"stage\":\"");
    sg_buf_append(b, stage, stagelen);
    sg_buf_lit(b, "\",\"request_id\":\"");
    sg_buf_append(b, r->request_id, strlen(r->request_id));
    sg_buf_lit(b, "\",\"release\":");
    sg_buf_json_str(b, r->release.p, r->release.n); /* NULL: null */
    sg_buf_lit(b, ",\"provider\":");
    sg_buf_json_str(b, r->moid.p, r->moid.n);
    /* The method (filters/ops.c's row); null for a target refused before it was routed. */
    sg_buf_lit(b, ",\"operation\":");
    sg_buf_json_cstr(b, r->routed && sg_op_of_route(r->route) != NULL
                            ? sg_op_of_route(r->route)->method
                            : NULL);
}

/* The client certificate's subject in RFC 2253 form ("CN=dr-robot,O=Example"), escaped
 * as that RFC says, whole: X509_NAME_oneline's "/O=Example/CN=dr-robot" leaves a '/'
 * inside a value unescaped (ambiguous) and cuts long names. null without a certificate. */
static void audit_subject(sg_buf_t *b, X509 *cert)
{
    BIO *bio;
    char *p;
    long n;

    if (cert == NULL) {
        sg_buf_lit(b, "null");
        return;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL) {
        sg_buf_fail(b, SG_ENOMEM);
        return;
    }
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0 ||
        (n = BIO_get_mem_data(bio, &p)) < 0)
        sg_buf_fail(b, SG_ERR);
    else
        sg_buf_json_str(b, p, (size_t)n);
    BIO_free(bio);
}

/* The name of the vCenter the request went to (a configuration name: [A-Za-z0-9_.-], nothing
 * to escape, but it goes through the escaper like every string); null for a request refused
 * before sg_req_check routed it (400, 421), which went to no vCenter. */
static void audit_upstream(sg_buf_t *b, const sg_req_t *r)
{
    sg_buf_json_cstr(b, r->upstream != NULL ? r->upstream->name : NULL);
}

/* A group's id: one the parser found plain (base/json.h) is its own JSON string form, so it
 * is copied between quotes rather than run through the escaper; the bytes are the same. */
static void audit_id(sg_buf_t *b, const sg_str_t *id, int plain)
{
    if (!plain) {
        sg_buf_json_str(b, id->p, id->n);
        return;
    }
    sg_buf_lit(b, "\"");
    sg_buf_append(b, id->p, id->n);
    sg_buf_lit(b, "\"");
}

static void audit_decision(sg_buf_t *b, sg_req_t *r, int allow)
{
    const sg_principal_t *who = sg_flt_authn_principal(r);
    const sg_stopreq_t *sr = sg_flt_validate_stop(r);

    audit_head(b, r, "decision");
    sg_buf_lit(b, ",\"client\":{\"addr\":");
    sg_buf_json_cstr(b, r->conn->peer);
    sg_buf_lit(b, ",\"tls\":");
    sg_buf_json_cstr(b, r->conn->tls_version);
    sg_buf_lit(b, ",\"cert_subject\":");
    audit_subject(b, SSL_get0_peer_certificate(r->conn->ssl));
    sg_buf_lit(b, "},\"principal\":");
    if (who == NULL) {
        sg_buf_lit(b, "null");
    } else {
        sg_buf_lit(b, "{\"subject\":");
        sg_buf_json_cstr(b, who->subject);
        sg_buf_lit(b, ",\"tenant\":");
        sg_buf_json_cstr(b, who->tenant);
        sg_buf_lit(b, ",\"token_id\":");
        sg_buf_json_cstr(b, who->token_id);
        sg_buf_lit(b, ",\"auth\":");
        sg_buf_json_cstr(b, who->auth);
        sg_buf_lit(b, "}");
    }
    /* After who asked, which vCenter it was for (docs/design.md "Audit log"). */
    sg_buf_lit(b, ",\"upstream\":");
    audit_upstream(b, r);
    /* A rehearsal (X-Dry-Run, filters/flt_route.c) is judged and recorded like the real
     * request; this member is what tells the two apart. */
    if (r->dry_run)
        sg_buf_lit(b, ",\"dry_run\":true");
    else
        sg_buf_lit(b, ",\"dry_run\":false");
    /* force: null when no body was validated or the operation has none. groups: every
     * ReplicationGroupId of the body; a bare FaultDomainId (QueryReplicationPeer) has a
     * null device_group. */
    sg_buf_lit(b, ",\"force\":");
    if (sr == NULL || !sr->has_force)
        sg_buf_lit(b, "null,\"groups\":");
    else if (sr->force)
        sg_buf_lit(b, "true,\"groups\":");
    else
        sg_buf_lit(b, "false,\"groups\":");
    if (sr == NULL) {
        sg_buf_lit(b, "null");
    } else {
        sg_buf_lit(b, "[");
        for (size_t i = 0; sg_buf_err(b) == SG_OK && i < sr->ngroups; i++) {
            if (i > 0)
                sg_buf_lit(b, ",");
            sg_buf_lit(b, "{\"fault_domain\":");
            audit_id(b, &sr->groups[i].fault_domain, sr->groups[i].fault_domain_plain);
            sg_buf_lit(b, ",\"device_group\":");
            audit_id(b, &sr->groups[i].device_group, sr->groups[i].device_group_plain);
            sg_buf_lit(b, "}");
        }
        sg_buf_lit(b, "]");
    }
    /* "this": the target the body repeated in _this, checked equal to the path's
     * (filters/stopreq.c); null when it named none or no body was validated. */
    sg_buf_lit(b, ",\"this\":");
    if (sr != NULL && sr->has_this)
        sg_buf_json_str(b, r->moid.p, r->moid.n);
    else
        sg_buf_lit(b, "null");
    if (allow)
        sg_buf_lit(b, ",\"decision\":\"allow\",\"fault\":");
    else
        sg_buf_lit(b, ",\"decision\":\"deny\",\"fault\":");
    sg_buf_json_cstr(b, allow ? NULL : (r->fault_type ? r->fault_type : "Aborted"));
    sg_buf_lit(b, ",\"reason\":");
    sg_buf_json_cstr(b, r->reason    ? r->reason
                        : allow      ? "allowed"
                        : r->aborted ? "client went away"
                                     : "refused");
    /* Change control (filters/flt_change.c): the ticket as the client sent it, who
     * approved (or who signed a refused approval), the window judged against. */
    sg_buf_lit(b, ",\"ticket\":");
    sg_buf_json_cstr(b, r->ticket);
    sg_buf_lit(b, ",\"approver\":");
    sg_buf_json_cstr(b, r->approver);
    sg_buf_lit(b, ",\"window\":");
    sg_buf_json_cstr(b, r->window);
}

/* The upstream entry's "reason" (docs/design.md's upstream {name, status, task, duration_ms,
 * reason}): null when the upstream answered, else what went wrong with it:
 * "upstream unreachable", "upstream reset", "upstream closed early", "upstream timeout",
 * "upstream bad response", "upstream headers too large", "upstream response too large",
 * "upstream tls" (proxy/upstream.c). status is then 0: the fault is the gateway's. */
static void audit_up_reason(sg_buf_t *b, const char *error)
{
    sg_buf_lit(b, ",\"reason\":");
    sg_buf_json_cstr(b, error);
}

/* The outcome of one part of a split request (docs/design.md upstream {name, status, task,
 * duration_ms}: one outcome record per part, linked by request_id, so that each upstream
 * task the gateway started is on record with its own status). */
static void audit_part_outcome(sg_buf_t *b, sg_req_t *r, size_t i)
{
    int st = 0;
    const char *task = NULL, *fault = NULL, *error = sg_flt_batch_part_error(r, i);
    unsigned long long dur = 0;
    size_t n = sg_flt_batch_parts(r, i, &st, &task, &fault, &dur);

    audit_head(b, r, "outcome");
    sg_buf_lit(b, ",\"part\":");
    sg_buf_append_u64(b, i);
    sg_buf_lit(b, ",\"parts\":");
    sg_buf_append_u64(b, n);
    sg_buf_lit(b, ",\"upstream\":{\"name\":");
    audit_upstream(b, r);
    sg_buf_lit(b, ",\"status\":");
    audit_int(b, st);
    sg_buf_lit(b, ",\"task\":");
    sg_buf_json_cstr(b, task);
    sg_buf_lit(b, ",\"duration_ms\":");
    sg_buf_append_u64(b, dur);
    audit_up_reason(b, error);
    sg_buf_lit(b, "},\"fault\":");
    sg_buf_json_cstr(b, fault);
    sg_buf_lit(b, ",\"reason\":");
    sg_buf_json_cstr(b, error     ? "upstream failed"
                        : st == 0 ? "not answered"
                        : fault   ? "refused by the provider"
                                  : "answered");
}

/* The upstream's answer to a request sent in one piece: the task reference of a 200,
 * the fault type of a 500. A dry run went nowhere: status 0, no task, the fault the gateway
 * answered itself if any (a TooMany the plan ran into), reason "dry run", so that a report
 * shows the rehearsal as one rather than as a request that never got its answer. */
static void audit_outcome(sg_buf_t *b, sg_req_t *r)
{
    const sg_json_t *root = NULL, *v;
    sg_json_limits_t lim = {.max_depth = 16, .max_values = 4096};
    sg_json_err_t jerr;
    const char *task = NULL, *fault = NULL, *error = r->up_error;
    int st = 0;
    unsigned long long dur = 0;

    audit_head(b, r, "outcome");
    if (sg_flt_batch_parts(r, 0, &st, &task, &fault, &dur) == 1) {
        /* Sent as one part: what the upstream said, as for a plain forward. */
        error = sg_flt_batch_part_error(r, 0);
    } else {
        task = NULL;
        fault = NULL;
        if (r->capture && !r->dry_run && r->res_body.len > 0 &&
            sg_json_parse(&r->pool, sg_buf_head(&r->res_body), sg_buf_avail(&r->res_body), &lim,
                          (sg_json_t **)&root, &jerr) == SG_OK) {
            if (r->res.status == 200 && (v = sg_json_get(root, "value", 5)) != NULL &&
                v->type == SG_JSON_STRING)
                task = v->str.p;
            else if (r->res.status >= 400 && (v = sg_json_get(root, "_typeName", 9)) != NULL &&
                     v->type == SG_JSON_STRING)
                fault = v->str.p;
        }
        st = r->res_started && !r->local_reply ? r->res.status : 0;
    }
    sg_buf_lit(b, ",\"upstream\":{\"name\":");
    audit_upstream(b, r);
    sg_buf_lit(b, ",\"status\":");
    audit_int(b, st);
    sg_buf_lit(b, ",\"task\":");
    sg_buf_json_cstr(b, task);
    sg_buf_lit(b, ",\"duration_ms\":");
    sg_buf_append_u64(b, sg_now_ms() - r->start_ms);
    audit_up_reason(b, error);
    sg_buf_lit(b, "},\"fault\":");
    sg_buf_json_cstr(b, fault ? fault : r->local_reply ? r->fault_type : NULL);
    sg_buf_lit(b, ",\"reason\":");
    sg_buf_json_cstr(b, r->dry_run                       ? "dry run"
                        : r->aborted                     ? "client went away"
                        : error != NULL || !r->res_ended ? "upstream failed"
                                                         : "answered");
}

/* part: -1 for the request as a whole, else that part of a split request's outcome. The
 * record is built in the worker's audit batch itself: no copy, no allocation of its own. */
static int audit_submit(sg_req_t *r, int stage_decision, int allow, sg_audit_cb cb, long part)
{
    sg_buf_t *b = sg_audit_record(r);

    if (b == NULL)
        return SG_ERR;
    if (stage_decision)
        audit_decision(b, r, allow);
    else if (part < 0)
        audit_outcome(b, r);
    else
        audit_part_outcome(b, r, (size_t)part);
    return sg_audit_commit(r, cb);
}

/* The writer's completion (proxy/audit.c): it knows the request, not the filter, so the
 * filter's state is found from r. */
static void audit_written_cb(sg_req_t *r, int status)
{
    audit_ctx_t *ctx = sg_flt_ctx(r, &sg_flt_audit);

    ctx->state = status == SG_OK ? AUDIT_WRITTEN : AUDIT_FAILED;
    sg_req_resume(r);
}

static int audit_on_request_body(sg_req_t *r, void *vctx)
{
    audit_ctx_t *ctx = vctx;

    if (sg_op_of_route(r->route) == NULL || !sg_audit_enabled())
        return SG_FLT_NEXT;
    switch (ctx->state) {
    case AUDIT_NONE:
        if (audit_submit(r, 1, 1, audit_written_cb, -1) != SG_OK) {
            ctx->state = AUDIT_FAILED;
            break;
        }
        ctx->state = AUDIT_WAITING;
        return SG_FLT_WAIT;
    case AUDIT_WAITING:
        return SG_FLT_WAIT; /* resumed early: keep waiting */
    case AUDIT_WRITTEN:
        ctx->allowed = 1;
        r->capture = 1;
        return SG_FLT_NEXT;
    default:
        break;
    }
    /* AUDIT_FAILED */
    if (!r->conf->audit.fail_closed) {
        ctx->allowed = 1; /* forwarded unrecorded: the writer counted the loss */
        r->capture = 1;
        return SG_FLT_NEXT;
    }
    r->reason = "the audit record could not be written";
    r->term = "PL";
    sg_req_fault(r, 500, "SystemError",
                 "The audit log cannot be written; the request was not forwarded.");
    return SG_FLT_REPLIED;
}

static void audit_on_done(sg_req_t *r, void *vctx)
{
    audit_ctx_t *ctx = vctx;

    /* Once the route filter has canonicalised the target, its answer stands: a forwarded
     * path that merely mentions the method (in a query, in another folder) is not a
     * replication operation and gets no record. Refused before that (front end
     * 400/413/431, sg_req_check's 405/421, a target canon refused), the raw target
     * decides, every %XX spelling of a method's name included. */
    if (r->routed ? sg_op_of_route(r->route) == NULL && !r->stop_attempt
                  : !r->stop_attempt &&
                        (r->path.p == NULL ||
                         !sg_canon_mentions_stop(&r->pool, r->path.p, r->path.n)))
        return;
    if (!sg_audit_enabled() || ctx == NULL)
        return;
    if (ctx->state != AUDIT_WRITTEN && !ctx->allowed) {
        /* Refused before (or by) the audit step: the decision record says why. */
        if (audit_submit(r, 1, 0, NULL, -1) != SG_OK)
            sg_log(SG_LOG_ERROR, "req=%s: the audit decision record was lost", r->request_id);
    }
    if (ctx->allowed) {
        int st;
        const char *t, *f;
        unsigned long long d;
        size_t n = sg_flt_batch_parts(r, 0, &st, &t, &f, &d);

        for (size_t i = 0; i < (n > 1 ? n : 1); i++)
            if (audit_submit(r, 0, 0, NULL, n > 1 ? (long)i : -1) != SG_OK)
                sg_log(SG_LOG_ERROR, "req=%s: an audit outcome record was lost", r->request_id);
    }
}

const sg_filter_ops_t sg_flt_audit = {
    .name = "audit",
    .ctx_size = sizeof(audit_ctx_t),
    .on_request_body = audit_on_request_body,
    .on_done = audit_on_done,
};
