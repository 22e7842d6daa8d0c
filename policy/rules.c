/*
 * policy/rules.c - the decision: roles x tenants (docs/design.md "The chain on guarded
 * routes", authorise).
 *
 * Given an authenticated principal and what the request asks for (stop a test failover on
 * a provider and fault domains of one vCenter, or query a task there), decide allow or
 * deny. A deny names the privilege vCenter's NoPermission fault reports and carries the
 * exact reason for the audit log; the client learns only the fault vCenter itself would
 * give (docs/design.md "The chain on guarded routes"). Authentication is token.c/jwt.c;
 * turning a decision into a fault is the caller's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy-int.h"

#define RULES_ID_SHOWN 128 /* longest request id quoted whole in a reason */

/*
 * "x" matches x only; "x*" any id that starts with x, x itself included; "*" every id.
 * Only a final '*' is a wildcard. Ids are compared as bytes of the given length, so an id
 * with an embedded NUL never equals a shorter name.
 */
int sg__pol_pattern_match(const char *pattern, const char *id, size_t n)
{
    size_t pn = strlen(pattern);

    if (pn > 0 && pattern[pn - 1] == '*')
        return n >= pn - 1 && memcmp(pattern, id, pn - 1) == 0;
    return n == pn && memcmp(pattern, id, n) == 0;
}

static int rules_covered(const sg_conf_strv_t *patterns, sg_str_t id)
{
    for (size_t i = 0; i < patterns->n; i++)
        if (sg__pol_pattern_match(patterns->v[i], id.p != NULL ? id.p : "", id.n))
            return 1;
    return 0;
}

/* T's scope on the vCenter named UPSTREAM, or NULL. At most one exists (conf.c refuses two
 * on one upstream), and a tenant has a handful: a scan beats any index. */
static const sg_conf_scope_t *rules_scope(const sg_conf_tenant_t *t, const char *upstream)
{
    if (upstream == NULL)
        return NULL;
    for (size_t i = 0; i < t->nscopes; i++)
        if (strcmp(t->scopes[i].upstream, upstream) == 0)
            return &t->scopes[i];
    return NULL;
}

static const sg_pol_role_t *rules_role(const sg_policy_t *p, const char *name)
{
    size_t lo = 0, hi = p->nroles;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, p->roles[mid].name);

        if (c == 0)
            return &p->roles[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* R lists exactly NAME (an overridden operation's privilege): a role has a handful. */
static int rules_lists(const sg_pol_role_t *r, const char *name)
{
    for (size_t i = 0; i < r->privileges->n; i++)
        if (strcmp(r->privileges->v[i], name) == 0)
            return 1;
    return 0;
}

static const sg_conf_tenant_t *rules_tenant(const sg_policy_t *p, const char *name)
{
    size_t lo = 0, hi = p->ntenants;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, p->tenants[mid]->name);

        if (c == 0)
            return p->tenants[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Deny for PRIVILEGE with a reason formatted into POOL. Returns 0, or SG_ENOMEM. */
__attribute__((format(printf, 4, 5))) static int
rules_deny(sg_pool_t *pool, sg_pol_decision_t *out, const char *privilege, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    out->allow = 0;
    out->privilege_id = privilege;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    s = n >= 0 ? sg_pool_alloc(pool, (size_t)n + 1) : NULL;
    if (s == NULL) {
        out->reason = "out of memory";
        return SG_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out->reason = s;
    return 0;
}

/* Length and suffix to quote an id from the request: long ones are cut, never dropped. */
#define RULES_ID(s)                                                                                \
    (int)SG_MIN((s).n, (size_t)RULES_ID_SHOWN), (s).p != NULL ? (s).p : "",                        \
        (s).n > RULES_ID_SHOWN ? "..." : ""

int sg_pol_authorize(const sg_policy_t *p, sg_pool_t *pool, const sg_principal_t *who,
                     const sg_pol_request_t *req, sg_pol_decision_t *out)
{
    int viewing = req->action == SG_POL_TASK_QUERY || req->action == SG_POL_GROUP_QUERY;
    const char *need = req->privilege != NULL ? req->privilege
                       : viewing              ? SG_POL_PRIV_VIEW
                                              : SG_POL_PRIV_CONFIGURE;
    const char *granted_by = NULL, *tenant_name = who->tenant != NULL ? who->tenant : "";
    const sg_conf_tenant_t *t;
    const sg_conf_scope_t *sc;
    unsigned grants = 0, want;
    size_t i;

    /* Fail closed: every early return below leaves a deny. */
    out->allow = 0;
    out->privilege_id = need;
    out->reason = "unknown action";
    if (req->action != SG_POL_STOP_TEST && req->action != SG_POL_TASK_QUERY &&
        req->action != SG_POL_GROUP_CHANGE && req->action != SG_POL_GROUP_QUERY)
        return SG_ERR;

    want = viewing ? SG_POL_G_CONFIGURE | SG_POL_G_VIEW : SG_POL_G_CONFIGURE;
    for (i = 0; i < who->nroles; i++) {
        /* A role the configuration does not define grants nothing (a JWT may name any). */
        const sg_pol_role_t *r = who->roles[i] != NULL ? rules_role(p, who->roles[i]) : NULL;

        if (r == NULL)
            continue;
        if (granted_by == NULL &&
            (req->privilege != NULL ? rules_lists(r, req->privilege) : (r->grants & want) != 0))
            granted_by = r->name;
        grants |= r->grants;
    }
    if (granted_by == NULL) {
        if (req->privilege != NULL)
            return rules_deny(pool, out, need, "no role of '%s' grants '%s'",
                              who->subject != NULL ? who->subject : "", need);
        if (!viewing)
            return rules_deny(pool, out, SG_POL_PRIV_CONFIGURE,
                              "no role of '%s' grants '" SG_POL_PRIV_CONFIGURE "'",
                              who->subject != NULL ? who->subject : "");
        return rules_deny(pool, out, SG_POL_PRIV_VIEW,
                          "no role of '%s' grants '" SG_POL_PRIV_VIEW "' or '" SG_POL_PRIV_CONFIGURE
                          "'",
                          who->subject != NULL ? who->subject : "");
    }
    /* force=true skips the provider's own safety checks: it may need a privilege of its own. */
    if (req->action == SG_POL_STOP_TEST && req->force && p->force_privilege != NULL &&
        (grants & SG_POL_G_FORCE) == 0)
        return rules_deny(pool, out, p->force_privilege,
                          "force=true needs privilege '%s', which no role of '%s' grants",
                          p->force_privilege, who->subject != NULL ? who->subject : "");

    /*
     * Tenant scope: a privilege is never global. A principal whose tenant is not
     * configured (a JWT may carry any name) is in no scope at all, and a tenant reaches
     * only the vCenters it has a scope on: the same provider moId on another vCenter is
     * another provider, so the scope is that of the request's upstream, never a union.
     */
    t = rules_tenant(p, tenant_name);
    if (t == NULL)
        return rules_deny(pool, out, need, "unknown tenant '%s'", tenant_name);
    sc = rules_scope(t, req->upstream);
    if (sc == NULL) {
        if (req->upstream == NULL)
            return rules_deny(pool, out, need, "no upstream");
        return rules_deny(pool, out, need, "upstream '%s' outside tenant '%s'", req->upstream,
                          t->name);
    }
    if (req->provider.n > 0) {
        if (!rules_covered(&sc->providers, req->provider))
            return rules_deny(pool, out, need,
                              "provider '%.*s%s' outside tenant '%s' on upstream '%s'",
                              RULES_ID(req->provider), t->name, sc->upstream);
    } else if (req->action != SG_POL_TASK_QUERY) {
        /* The route always names a provider; an empty one must not mean "any". */
        return rules_deny(pool, out, need, "no provider");
    }
    /* Every fault domain: one outside the scope refuses the whole request. */
    for (i = 0; i < req->nfault_domains; i++)
        if (!rules_covered(&sc->fault_domains, req->fault_domains[i]))
            return rules_deny(pool, out, need,
                              "fault domain '%.*s%s' outside tenant '%s' on upstream '%s'",
                              RULES_ID(req->fault_domains[i]), t->name, sc->upstream);

    out->allow = 1;
    out->privilege_id = NULL;
    out->reason = "allowed";
    if (granted_by != NULL) {
        /* "granted by role 'R' in tenant 'T'", on every allowed request: appended piece by
         * piece rather than measured and formatted twice by snprintf. */
        static const char p1[] = "granted by role '", p2[] = "' in tenant '";
        size_t rn = strlen(granted_by), tn = strlen(t->name);
        char *s = sg_pool_alloc(pool, sizeof(p1) - 1 + rn + sizeof(p2) - 1 + tn + 2), *o = s;

        if (s == NULL) {
            out->allow = 0;
            out->privilege_id = need;
            out->reason = "out of memory";
            return SG_ENOMEM;
        }
        o = (char *)memcpy(o, p1, sizeof(p1) - 1) + sizeof(p1) - 1;
        o = (char *)memcpy(o, granted_by, rn) + rn;
        o = (char *)memcpy(o, p2, sizeof(p2) - 1) + sizeof(p2) - 1;
        o = (char *)memcpy(o, t->name, tn) + tn;
        o[0] = '\'';
        o[1] = '\0';
        out->reason = s;
    }
    return 0;
}
