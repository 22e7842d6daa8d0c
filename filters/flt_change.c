/*
 * filters/flt_change.c - change control on the guarded operations (docs/design.md "The
 * chain on guarded routes"): an operation switched off, change windows, change tickets and
 * four-eyes approvals, checked in that order after authorisation and before the audit
 * step writes the decision record, so that every refusal here is audited as a deny with
 * its reason, and nothing refused is forwarded.
 *
 * Configuration: `operations` overrides a row of filters/ops.c per deployment; a tenant
 * may add windows and a ticket pattern (both the operation's and the tenant's must hold);
 * `policy.approvers` and `policy.max_approval_s` judge X-Change-Approval (policy/
 * approval.h). The windows are built (the zone files read) with each generation, here,
 * because conf/ may not reach policy/; errors name the entry's file:line all the same.
 *
 * The jti replay cache is the process's, not a generation's: a reload must not make a
 * used approval usable again.
 */
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filters/filter.h"
#include "filters/flt_authn.h"
#include "filters/flt_change.h"
#include "filters/flt_validate.h"
#include "filters/ops.h"
#include "policy/approval.h"
#include "policy/window.h"

#define CHANGE_JTIS 4096      /* approvals live at once: far beyond operator-driven use */
#define CHANGE_LEEWAY_S 60    /* clock skew allowed on an approval's exp and iat */
#define CHANGE_TICKET_MAX 256 /* bytes of a change ticket */

typedef struct {
    const sg_window_t **v;
    size_t n;
} change_windows_t;

/* A row's rules: the operation's override, or the defaults (no override). */
typedef struct {
    const sg_conf_operation_t *conf; /* NULL: no override */
    change_windows_t windows;
} change_op_t;

typedef struct {
    const sg_conf_tenant_t *conf;
    change_windows_t windows;
} change_tenant_t;

typedef struct {
    sg_window_t **windows; /* change_windows, in the configuration's order */
    size_t nwindows;
    change_op_t *ops; /* one per row of sg_ops[] */
    change_tenant_t *tenants;
    size_t ntenants;
    sg_approvers_t *approvers;
    long long max_approval_s;
} change_gen_t;

static sg_approval_jtis_t change_jtis;
static pthread_once_t change_jtis_once = PTHREAD_ONCE_INIT;
static int change_jtis_rc;

static void change_jtis_init(void)
{
    change_jtis_rc = sg_approval_jtis_init(&change_jtis, CHANGE_JTIS);
}

/* A message or reason for r, in its pool (NULL when out of memory: the fault's generic
 * message then stands, the record says "refused"). */
__attribute__((format(printf, 2, 3))) static const char *change_printf(sg_pool_t *pool,
                                                                       const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    return sg_pool_strndup(pool, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* The row has a force member (the stop call): force_approval means something for it. */
static int change_has_force(const sg_op_t *op)
{
    for (size_t i = 0; i < op->nmembers; i++)
        if (strcmp(op->members[i].name, "force") == 0)
            return 1;
    return 0;
}

int sg_change_approval_op(sg_pool_t *pool, const char *upstream, sg_str_t release,
                          sg_str_t provider, const sg_stopreq_t *sr, const char *ticket,
                          sg_approval_op_t *op)
{
    sg_approval_group_t *g = sg_pool_alloc(pool, (sr->ngroups ? sr->ngroups : 1) * sizeof(*g));

    op->release = sg_pool_strndup(pool, release.p, release.n);
    op->provider = sg_pool_strndup(pool, provider.p, provider.n);
    if (g == NULL || op->release == NULL || op->provider == NULL)
        return SG_ENOMEM;
    for (size_t i = 0; i < sr->ngroups; i++) {
        g[i].fault_domain = sr->groups[i].fault_domain;
        g[i].device_group = sr->groups[i].device_group;
    }
    op->upstream = upstream;
    op->method = sr->op->method;
    op->groups = g;
    op->ngroups = sr->ngroups;
    op->force = sr->force;
    op->ticket = ticket;
    return SG_OK;
}

/* ---- the generation ------------------------------------------------------------------ */

static void change_gen_deinit(void *fgen)
{
    change_gen_t *cg = fgen;

    if (cg == NULL)
        return;
    for (size_t i = 0; i < cg->nwindows; i++)
        sg_window_free(cg->windows[i]);
    free(cg->windows);
    for (size_t i = 0; cg->ops != NULL && i < sg_nops; i++)
        free(cg->ops[i].windows.v);
    free(cg->ops);
    for (size_t i = 0; i < cg->ntenants; i++)
        free(cg->tenants[i].windows.v);
    free(cg->tenants);
    sg_approvers_free(cg->approvers);
    free(cg);
}

/* Names (checked by conf/conf.c to be windows) to the built windows. */
static int change_resolve(const change_gen_t *cg, const sg_conf_t *c, const sg_conf_strv_t *names,
                          change_windows_t *out)
{
    if (names->n == 0)
        return SG_OK;
    if ((out->v = calloc(names->n, sizeof(*out->v))) == NULL)
        return SG_ENOMEM;
    for (size_t i = 0; i < names->n; i++)
        for (size_t j = 0; j < c->nchange_windows; j++)
            if (strcmp(names->v[i], c->change_windows[j].name) == 0)
                out->v[out->n++] = cg->windows[j];
    return out->n == names->n ? SG_OK : SG_ERR;
}

static int change_cmp_tenant(const void *a, const void *b)
{
    return strcmp(((const change_tenant_t *)a)->conf->name, ((const change_tenant_t *)b)->conf->name);
}

static int change_approvers(change_gen_t *cg, const sg_conf_t *c, char *err, size_t errlen)
{
    if ((cg->approvers = sg_approvers_new()) == NULL)
        return snprintf(err, errlen, "%s: out of memory", c->file), SG_ENOMEM;
    for (size_t i = 0; i < c->policy.napprovers; i++) {
        const sg_conf_approver_t *a = &c->policy.approvers[i];
        sg_file_t f = {NULL, 0, 0};
        const char *why = NULL;
        char msg[SG_CONF_ERR_MAX];
        int rc;

        if (sg_file_read(&f, a->public_key, 1u << 20, 0, &why) != SG_OK) {
            snprintf(err, errlen, "%s: 'policy.approvers.public_key': '%s': %s", a->at,
                     a->public_key, why);
            return SG_ERR;
        }
        rc = sg_approvers_add(cg->approvers, a->name, (const char *)f.data, f.len,
                              (const char *const *)a->tenants.v, a->tenants.n, msg, sizeof(msg));
        sg_file_dispose(&f);
        if (rc != 0) {
            snprintf(err, errlen, "%s: 'policy.approvers': %s", a->at, msg);
            return SG_ERR;
        }
    }
    return SG_OK;
}

static int change_gen_init(sg_gen_t *g, void **fgen, char *err, size_t errlen)
{
    const sg_conf_t *c = g->conf;
    change_gen_t *cg = calloc(1, sizeof(*cg));
    char why[SG_CONF_ERR_MAX];

    if ((*fgen = cg) == NULL ||
        (c->nchange_windows > 0 &&
         (cg->windows = calloc(c->nchange_windows, sizeof(*cg->windows))) == NULL) ||
        (cg->ops = calloc(sg_nops, sizeof(*cg->ops))) == NULL ||
        (c->policy.ntenants > 0 &&
         (cg->tenants = calloc(c->policy.ntenants, sizeof(*cg->tenants))) == NULL))
        goto nomem;
    if (pthread_once(&change_jtis_once, change_jtis_init) != 0 || change_jtis_rc != SG_OK)
        goto nomem;
    cg->max_approval_s = c->policy.max_approval_s;
    for (size_t i = 0; i < c->nchange_windows; i++, cg->nwindows++) {
        const sg_conf_window_t *w = &c->change_windows[i];

        cg->windows[i] = sg_window_new(w->name, w->timezone, (const char *const *)w->days.v,
                                       w->days.n, w->from, w->to, why, sizeof(why));
        if (cg->windows[i] == NULL) {
            snprintf(err, errlen, "%s: change window '%s': %s", w->at, w->name, why);
            return SG_ERR;
        }
    }
    for (size_t i = 0; i < c->noperations; i++) {
        const sg_conf_operation_t *o = &c->operations[i];
        size_t j;

        for (j = 0; j < sg_nops; j++)
            if (strcmp(o->method, sg_ops[j].method) == 0)
                break;
        if (j == sg_nops) {
            snprintf(err, errlen, "%s: 'operations.method': '%s' is not a guarded operation",
                     o->at, o->method);
            return SG_ERR;
        }
        if (o->force_approval && !change_has_force(&sg_ops[j])) {
            snprintf(err, errlen, "%s: 'operations.force_approval': '%s' has no force",
                     o->at, o->method);
            return SG_ERR;
        }
        cg->ops[j].conf = o;
        if (change_resolve(cg, c, &o->windows, &cg->ops[j].windows) != SG_OK)
            goto nomem;
    }
    for (size_t i = 0; i < c->policy.ntenants; i++, cg->ntenants++) {
        cg->tenants[i].conf = &c->policy.tenants[i];
        if (change_resolve(cg, c, &c->policy.tenants[i].windows, &cg->tenants[i].windows) !=
            SG_OK)
            goto nomem;
    }
    if (cg->ntenants > 1)
        qsort(cg->tenants, cg->ntenants, sizeof(*cg->tenants), change_cmp_tenant);
    return change_approvers(cg, c, err, errlen);
nomem:
    snprintf(err, errlen, "%s: out of memory", c->file);
    return SG_ENOMEM;
}

/* ---- the checks ---------------------------------------------------------------------- */

const sg_conf_operation_t *sg_change_operation(const sg_req_t *r, const sg_op_t *op)
{
    const change_gen_t *cg = sg_flt_gen(r, &sg_flt_change);

    return cg != NULL && op != NULL ? cg->ops[op - sg_ops].conf : NULL;
}

static int change_deny(sg_req_t *r, const char *reason, const char *message)
{
    const sg_op_t *op = sg_op_of_route(r->route);
    const sg_conf_operation_t *oc = sg_change_operation(r, op);
    sg_fault_t f = {.type = "NoPermission",
                    .message = message != NULL ? message
                                               : "Permission to perform this operation was denied.",
                    /* The privilege this deployment asks for the operation. */
                    .privilege_id = oc != NULL && oc->privilege != NULL ? oc->privilege
                                                                         : op->privilege,
                    .missing_privileges = 1,
                    .object_type = "VasaProvider",
                    .object_value = r->moid.p};

    r->reason = reason;
    r->decision = SG_DECISION_DENY;
    r->term = "PZ";
    sg_req_fault_ex(r, 500, &f);
    return SG_FLT_REPLIED;
}

/* Appends to buf[0, len) at *off as snprintf would, never past its end. */
__attribute__((format(printf, 4, 5))) static void change_cat(char *buf, size_t len, size_t *off,
                                                             const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*off >= len)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    *off = n < 0 ? len : *off + (size_t)n;
}

/*
 * Inside one of the windows WS (none given: any time)? The first window containing now
 * names the request's window (the operation's before the tenant's). Outside all of them:
 * refused, the record naming them all and the message when each opens next (they may be in
 * different zones, so each is given in its own).
 */
static int change_window(sg_req_t *r, const change_windows_t *ws, long long now)
{
    char names[512], next[1024];
    size_t noff = 0, off = 0;

    if (ws->n == 0)
        return SG_FLT_NEXT;
    for (size_t i = 0; i < ws->n; i++)
        if (sg_window_contains(ws->v[i], now)) {
            if (r->window == NULL)
                r->window = sg_window_name(ws->v[i]); /* lives with the generation */
            return SG_FLT_NEXT;
        }
    names[0] = next[0] = '\0';
    for (size_t i = 0; i < ws->n; i++) {
        char when[SG_WINDOW_NEXT_MAX];

        sg_window_next_open(ws->v[i], now, when, sizeof(when));
        change_cat(names, sizeof(names), &noff, "%s%s", i ? ", " : "", sg_window_name(ws->v[i]));
        change_cat(next, sizeof(next), &off, "%s'%s' opens %s", i ? "; " : "",
                   sg_window_name(ws->v[i]), when);
    }
    r->window = sg_pool_strndup(&r->pool, names, strlen(names));
    return change_deny(r, change_printf(&r->pool, "outside change window %s", names),
                       change_printf(&r->pool,
                                     "Permission to perform this operation was denied: outside "
                                     "the change window (%s).",
                                     next));
}

static int change_ticket_bad(sg_req_t *r, const char *header, const char *what)
{
    const char *msg =
        change_printf(&r->pool, "A specified parameter was not correct: %s %s.", header, what);
    sg_fault_t f = {.type = "InvalidArgument",
                    .message = msg != NULL ? msg : "A specified parameter was not correct.",
                    .invalid_property = header};

    r->reason = change_printf(&r->pool, "change ticket %s", what);
    r->decision = SG_DECISION_DENY;
    r->term = "PZ";
    sg_req_fault_ex(r, 500, &f);
    return SG_FLT_REPLIED;
}

/*
 * The change ticket in HEADER: recorded whenever the request carries one (it is part of
 * what an approval binds), required when a pattern (the operation's ORE, the tenant's TRE)
 * is given, and then matching each. One value: with two, the record could name one while
 * the approval bound the other.
 */
static int change_ticket(sg_req_t *r, const char *header, const regex_t *ore,
                         const regex_t *tre)
{
    const sg_header_t *h = sg_headers_get(&r->headers, header);

    if (sg_headers_count(&r->headers, header) > 1)
        return change_ticket_bad(r, header, "given more than once");
    if (h != NULL) {
        if (h->value.n == 0 || h->value.n > CHANGE_TICKET_MAX ||
            memchr(h->value.p, '\0', h->value.n) != NULL)
            return change_ticket_bad(r, header, "is not a change ticket");
        if ((r->ticket = sg_pool_strndup(&r->pool, h->value.p, h->value.n)) == NULL)
            return SG_ENOMEM;
    }
    if ((ore != NULL || tre != NULL) && r->ticket == NULL)
        return change_ticket_bad(r, header, "is missing");
    if ((ore != NULL && regexec(ore, r->ticket, 0, NULL, 0) != 0) ||
        (tre != NULL && regexec(tre, r->ticket, 0, NULL, 0) != 0))
        return change_ticket_bad(r, header, "does not match the required pattern");
    return SG_FLT_NEXT;
}

/* One X-Change-Approval statement for exactly this operation (policy/approval.h). */
static int change_approval(sg_req_t *r, const change_gen_t *cg, const sg_stopreq_t *sr,
                           const sg_principal_t *who, long long now)
{
    const sg_header_t *h = sg_headers_get(&r->headers, "X-Change-Approval");
    sg_approval_op_t aop = {0};
    sg_approval_t out = {0};
    unsigned char dig[32];
    const char *why = NULL;
    sg_approval_check_t chk;
    int rv;

    if (h == NULL || sg_headers_count(&r->headers, "X-Change-Approval") != 1)
        return change_deny(r, h == NULL ? "approval missing" : "approval given more than once",
                           "Permission to perform this operation was denied: it needs one "
                           "four-eyes approval (X-Change-Approval).");
    if (sg_change_approval_op(&r->pool, r->upstream->name, r->release, r->moid, sr, r->ticket,
                              &aop) != SG_OK ||
        sg_approval_digest(&aop, dig) != SG_OK)
        return SG_ENOMEM;
    chk = (sg_approval_check_t){.digest = dig,
                                .requester = who->subject,
                                .tenant = who->tenant,
                                .now = now,
                                .max_s = cg->max_approval_s,
                                .leeway_s = CHANGE_LEEWAY_S,
                                .jtis = &change_jtis,
                                /* A rehearsal (X-Dry-Run) checks everything, a used jti
                                 * too, but does not use the statement up: the real
                                 * request follows. */
                                .dry_run = r->dry_run};
    rv = sg_approval_verify(cg->approvers, h->value.p, h->value.n, &chk, &out, &why);
    if (rv == SG_ENOMEM)
        return SG_ENOMEM;
    r->approver = out.approver; /* the approvers' list lives with r's generation */
    if (rv == SG_OK)
        return SG_FLT_NEXT;
    return change_deny(
        r, change_printf(&r->pool, "%s (approver %s)", why, out.approver ? out.approver : "unknown"),
        change_printf(&r->pool, "Permission to perform this operation was denied: %s.", why));
}

static int change_on_request_body(sg_req_t *r, void *ctx)
{
    const change_gen_t *cg = sg_flt_gen(r, &sg_flt_change);
    const sg_op_t *op = sg_op_of_route(r->route);
    const sg_stopreq_t *sr = sg_flt_validate_stop(r);
    const sg_principal_t *who = sg_flt_authn_principal(r);
    const change_op_t *co;
    const change_tenant_t *ct = NULL;
    const sg_conf_operation_t *oc;
    long long now = (long long)time(NULL); /* the wall clock: windows and exp are dates */
    int rv;

    (void)ctx;
    if (!r->guarded || op == NULL)
        return SG_FLT_NEXT;
    if (cg == NULL || sr == NULL || who == NULL || sr->op != op)
        return SG_ERR; /* authn, validate and authz ran before: fail closed */
    co = &cg->ops[op - sg_ops];
    oc = sg_change_operation(r, op);
    if (who->tenant != NULL && cg->ntenants > 0) {
        change_tenant_t key = {.conf = &(sg_conf_tenant_t){.name = (char *)who->tenant}};

        ct = bsearch(&key, cg->tenants, cg->ntenants, sizeof(*ct), change_cmp_tenant);
    }

    /* 1. The operation switched off for this deployment. */
    if (oc != NULL && !oc->enabled)
        return change_deny(r, "operation disabled",
                           "Permission to perform this operation was denied: the operation is "
                           "disabled on this gateway.");

    /* 2. Windows: the operation's, then the tenant's; each set that is given must hold. */
    if ((rv = change_window(r, &co->windows, now)) != SG_FLT_NEXT ||
        (ct != NULL && (rv = change_window(r, &ct->windows, now)) != SG_FLT_NEXT))
        return rv;

    /* 3. The ticket, in the operation's header, against both patterns given. */
    if ((rv = change_ticket(r, oc != NULL ? oc->ticket_header : "X-Change-Ticket",
                            oc != NULL ? oc->ticket_re : NULL,
                            ct != NULL ? ct->conf->ticket_re : NULL)) != SG_FLT_NEXT)
        return rv;

    /* 4. Four-eyes approval. */
    if (oc != NULL && (oc->approval || (oc->force_approval && sr->force)))
        return change_approval(r, cg, sr, who, now);
    return SG_FLT_NEXT;
}

const sg_filter_ops_t sg_flt_change = {
    .name = "change",
    .gen_init = change_gen_init,
    .gen_deinit = change_gen_deinit,
    .on_request_body = change_on_request_body,
};
