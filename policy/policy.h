/*
 * policy/policy.h - who may stop a test failover, on which providers and fault domains.
 *
 * A pure decision module (docs/design.md "Folders"): it turns the bytes after "Bearer " into a
 * principal (static token or JWT) and a principal plus a request into allow or deny with
 * the privilege that is missing and an exact reason for the audit log. It knows nothing of
 * sockets, HTTP, filters or logs, and does no I/O once built: key files are read by
 * sg_policy_new() only, so a reload (SIGHUP) builds a new policy next to the new
 * configuration and the old one keeps serving until its last request is done.
 *
 * Thread safety: an sg_policy_t is immutable once sg_policy_new() returns and may be used
 * by every worker at the same time without a lock. Every function here is reentrant.
 *
 * The JWT cache of verified tokens (docs/design.md "Threads") belongs to the caller: key it
 * by sg_pol_token_hash(), keep a copy made by sg_pol_principal_dup() while
 * now < who->exp + policy.jwt.leeway_s, copy it into the request pool with
 * sg_pol_principal_copy() before use, and keep one cache per policy (a reload may change
 * keys, issuer or audience, which a cached principal was checked against).
 *
 * Files: keys.c (building and freeing the policy, key files), token.c (dispatch, static
 * tokens, hashes, principal copies), jwt.c (compact JWS and claims, certificate binding),
 * rules.c (roles x tenants). Their shared internals are in policy/policy-int.h.
 */
#ifndef SG_POLICY_H
#define SG_POLICY_H

#include <stddef.h>

#include "conf/conf.h"
#include "base/base.h" /* sg_pool_t, sg_str_t, SG_* codes: the ground floor, no proxy state */

#define SG_POL_TOKEN_MAX 8192 /* longest bearer token accepted, static or JWT (bytes) */

/* The privileges this module knows by name (vSphere privilege ids). */
#define SG_POL_PRIV_CONFIGURE "StorageViews.ConfigureService"
#define SG_POL_PRIV_VIEW "StorageViews.View"

typedef struct sg_policy_s sg_policy_t; /* immutable once built; shared read-only by all threads */

/*
 * Build a policy from a loaded configuration: index its tokens, roles and tenants, and
 * read every policy.jwt.keys file (PEM public keys, HS256 secret files). I/O happens here
 * only. The key files are checked again (type, size and curve per alg, secret length)
 * because they may have changed since sg_conf_load() looked at them.
 *
 * The policy takes a reference on CONF (sg_conf_ref) and points into its strings; it
 * drops it in sg_policy_free().
 *
 * Returns 0 and the new policy in *out, or -1 with *out = NULL and one line in ERR such
 * as "'policy.jwt.keys' kid 'k1': '/etc/k1.pem': not a PEM public key" (a key file) or
 * "'policy': out of memory". Secrets and key bytes are never put in ERR.
 */
int sg_policy_new(const sg_conf_t *conf, sg_policy_t **out, char *err, size_t errlen);

/* Drop the policy: frees its keys (secrets wiped) and unrefs the configuration. NULL ok. */
void sg_policy_free(sg_policy_t *p);

/* The configuration the policy was built from (still referenced by it). */
const sg_conf_t *sg_policy_conf(const sg_policy_t *p);

typedef struct {
    const char *subject, *tenant, *token_id; /* token_id: static token id, or JWT kid */
    const char *auth;                        /* "static" or "jwt" */
    const char **roles; /* role names as presented; unknown ones grant nothing */
    size_t nroles;
    long long exp;            /* JWT exp, seconds since the epoch (0 for static tokens) */
    const char *cnf_x5t_s256; /* JWT cnf.x5t#S256 if present, else NULL */
} sg_principal_t;
/*
 * Strings of a principal filled by sg_pol_authenticate() live in the pool passed in or in
 * the policy itself (static token fields, kids), so they are valid while both the pool
 * and the policy are. Nothing in a principal is secret: the token is never kept.
 */

/*
 * Authenticate TOKEN[0..N) (the bytes after "Bearer ", not NUL-terminated; any bytes).
 *
 * The SHA-256 of the token is first compared with every configured static token hash in
 * constant time; otherwise, when policy.jwt is configured and the token contains a '.',
 * it is verified as a compact JWS JWT at time NOW (seconds since the epoch).
 *
 * Returns:
 *   0          *who filled; *reason = NULL.
 *   -1         (SG_ERR) not authenticated; *who zeroed; *reason a static string for the
 *              audit log: "empty token", "token too large", "unknown static token",
 *              "jwt malformed", "jwt duplicate member", "jwt unsupported alg",
 *              "jwt alg none refused", "jwt missing kid", "jwt unknown kid",
 *              "jwt alg does not match key", "jwt crit header refused",
 *              "jwt key in header refused", "jwt bad signature", "jwt missing exp",
 *              "jwt bad exp", "jwt expired", "jwt bad nbf", "jwt not yet valid",
 *              "jwt missing issuer", "jwt wrong issuer", "jwt missing audience",
 *              "jwt wrong audience", "jwt missing subject", "jwt missing tenant",
 *              "jwt bad roles claim", "jwt bad cnf claim", "jwt unsupported cnf".
 *   SG_ENOMEM  the pool or OpenSSL ran out of memory; *reason = "out of memory". The
 *              caller answers this request only with a 503, not NotAuthenticated.
 * Never logs, never keeps or copies the token, never reads a file.
 */
int sg_pol_authenticate(const sg_policy_t *p, sg_pool_t *pool, const char *token, size_t n,
                        long long now, sg_principal_t *who, const char **reason);

/* The same for a caller that already holds H, the token's sg_pol_token_hash() (a cache
 * key): the token is not hashed a second time. */
int sg_pol_authenticate_hashed(const sg_policy_t *p, sg_pool_t *pool, const char *token,
                               size_t n, const unsigned char h[32], long long now,
                               sg_principal_t *who, const char **reason);

/* What a request does, as the policy judges it (filters/ops.c names the action of each
 * replication operation): stop a test failover (ConfigureService, force may need more);
 * query a task (View or ConfigureService); change replication groups (ConfigureService);
 * query them (View or ConfigureService). */
enum {
    SG_POL_STOP_TEST = 1,
    SG_POL_TASK_QUERY = 2,
    SG_POL_GROUP_CHANGE = 3,
    SG_POL_GROUP_QUERY = 4
};

typedef struct {
    int action;                    /* SG_POL_* above */
    const char *upstream;          /* the vCenter the request goes to (its upstream's name);
                                      NULL matches no scope, so a forgotten one denies */
    sg_str_t provider;             /* VasaProvider moId; empty for a plain task query */
    const sg_str_t *fault_domains; /* every faultDomainId.id of the body ("*": a query of
                                      every group, covered only by a scope of every one) */
    size_t nfault_domains;
    int force; /* the body's force */
    /* The privilege the deployment requires for this operation instead of the action's
     * (operations.privilege); NULL: the action's. */
    const char *privilege;
} sg_pol_request_t;

typedef struct {
    int allow;
    const char *privilege_id; /* the missing privilege (NoPermission privilegeId); NULL on allow */
    const char *reason;       /* exact reason for the audit log (pool or static string), e.g.
                                 "fault domain 'fd-9' outside tenant 't1' on upstream
                                 'vc-east'" */
} sg_pol_decision_t;

/*
 * Decide whether WHO may do REQ:
 *   - its roles (names looked up in policy.roles; unknown names grant nothing) grant
 *     StorageViews.ConfigureService for SG_POL_STOP_TEST, plus policy.force_privilege when
 *     the request has force set and that key is not ""; StorageViews.ConfigureService
 *     for SG_POL_GROUP_CHANGE; StorageViews.View or StorageViews.ConfigureService for
 *     SG_POL_TASK_QUERY and SG_POL_GROUP_QUERY; when REQ->privilege is set, a role that
 *     lists exactly that name instead, whatever the action (the deny then names it:
 *     "no role of 'alice' grants 'Custom.Failover'");
 *   - its tenant exists and has a scope (policy.tenants.scopes; the tenant-level
 *     providers/fault_domains are its scope on "default") on the request's upstream, for
 *     both actions: a tenant reaches no vCenter it has no scope on;
 *   - that scope covers the provider (always needed but for a task query, where only one
 *     given is checked) and every fault domain. A pattern "x" matches x exactly,
 *     "x*" any id starting with x (x included), "*" every id.
 * Privileges are checked before the tenant, so a caller without the privilege learns
 * nothing about tenants from the answer. Deny reasons name what is outside, e.g.
 * "upstream 'vc-west' outside tenant 't1'", "provider 'x' outside tenant 't1' on upstream
 * 'vc-east'"; an allow reads "granted by role 'R' in tenant 'T'".
 *
 * Returns 0 with the decision in *out (allow, or deny with privilege_id and reason), or a
 * negative code with *out a deny (fail closed): SG_ENOMEM when the pool cannot hold the
 * reason (reason "out of memory"), SG_ERR for an unknown action (reason "unknown action").
 * Long ids from the request are cut to 128 bytes (and "...") in the reason.
 */
int sg_pol_authorize(const sg_policy_t *p, sg_pool_t *pool, const sg_principal_t *who,
                     const sg_pol_request_t *req, sg_pol_decision_t *out);

/*
 * RFC 8705 3.1: a principal that carries cnf.x5t#S256 was issued for one client
 * certificate and must be presented over a connection authenticated with it.
 * Returns 0 when WHO has no such claim, or when it equals base64url(SHA-256(CERT_DER))
 * (CERT_DER may be NULL when there is no client certificate); -1 otherwise (no
 * certificate, another certificate, or a hash failure).
 */
int sg_pol_check_cert_binding(const sg_principal_t *who, const unsigned char *cert_der, size_t len);

/*
 * SHA-256 of TOKEN[0..N), for caches keyed by token hash. Returns 0, or SG_ENOMEM when
 * OpenSSL cannot allocate its context: OUT is then all zero and must not be used as a key
 * (two failed hashes would collide).
 */
int sg_pol_token_hash(const char *token, size_t n, unsigned char out[32]);

/*
 * Deep copies of a principal, for the JWT cache.
 * sg_pol_principal_dup(): one malloc'd block holding the principal and all its strings,
 * released with free(); NULL on ENOMEM.
 * sg_pol_principal_copy(): *dst = a copy of *src whose strings live in POOL; returns 0 or
 * SG_ENOMEM.
 */
sg_principal_t *sg_pol_principal_dup(const sg_principal_t *src);
int sg_pol_principal_copy(sg_pool_t *pool, sg_principal_t *dst, const sg_principal_t *src);

#endif
