/*
 * policy/jwt.c - JSON Web Tokens: compact JWS verification and claims (RFC 7515, 7519,
 * 8725), and certificate-bound tokens (RFC 8705).
 *
 * The order is chosen so that nothing an attacker controls is interpreted before it has
 * to be: structure and base64url, then the protected header (strict JSON), then the key,
 * chosen by kid from the configuration only and required to be of the header's alg, then
 * the signature over the bytes as received, and only then the payload and its claims.
 *
 * Header and payload are read by the gateway's one strict JSON reader (base/json.h), the
 * same that reads request bodies: it refuses invalid UTF-8, "\u0000", duplicate member
 * names, trailing bytes and any other departure from RFC 8259, each of which lets two
 * parsers (the issuer's and ours) read one token differently (RFC 8259 4 and 8).
 *
 * Memory: decoded segments live in one stack buffer (a token is at most SG_POL_TOKEN_MAX
 * bytes); the two JSON trees in a scratch pool disposed before returning, so a hostile
 * header costs nothing after its refusal; the principal's strings go to the caller's pool;
 * OpenSSL contexts are freed before returning.
 *
 * Splitting, segment decoding, the header's generic checks and the signature itself are
 * policy/jose.c, shared with the four-eyes approvals (policy/approval.c).
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "policy/jose.h"
#include "policy/policy-int.h"

/* The scratch pool's chunk: one holds the header and claims trees of an ordinary token
 * (about 2.7 KiB for ten claims), so a verification costs one malloc, not one a node. */
#define JWT_SCRATCH_CHUNK 4096

/* The member NAME of object O, or NULL. */
static const sg_json_t *jwt_get(const sg_json_t *o, const char *name)
{
    return sg_json_get(o, name, strlen(name));
}

static int jwt_is_string(const sg_json_t *v)
{
    return v != NULL && v->type == SG_JSON_STRING;
}

/*
 * Decode segment S[0..N) into BUF and parse it into SCRATCH as exactly one JSON object
 * (policy/jose.h). Returns SG_OK with *out set, SG_ERR with *reason set, or SG_ENOMEM.
 */
static int jwt_json_segment(sg_pool_t *scratch, const char *s, size_t n, unsigned char *buf,
                            const sg_json_t **out, const char **reason)
{
    int dup, rc = sg__jose_json(scratch, s, n, buf, out, &dup);

    if (rc == SG_ENOMEM)
        *reason = "out of memory";
    else if (rc != SG_OK)
        *reason = dup ? "jwt duplicate member" : "jwt malformed";
    return rc;
}

/* ---- header ------------------------------------------------------------------------ */

/* What sg__jose_header() refused, in this file's words. */
static const char *const jwt_header_why[] = {
    [SG_JOSE_HDR_CRIT] = "jwt crit header refused",
    [SG_JOSE_HDR_KEY] = "jwt key in header refused",
    [SG_JOSE_HDR_MALFORMED] = "jwt malformed",
    [SG_JOSE_HDR_ALG_NONE] = "jwt alg none refused",
    [SG_JOSE_HDR_ALG_UNKNOWN] = "jwt unsupported alg",
};

/*
 * Check the protected header and choose the key. Returns the key, or NULL with *reason.
 */
static const sg_pol_key_t *jwt_header(const sg_policy_t *p, const sg_json_t *h,
                                      const char **reason)
{
    const sg_json_t *kid = jwt_get(h, "kid");
    const sg_pol_key_t *k;
    sg_jwt_alg_t alg = 0;
    sg_jose_hdr_t bad = sg__jose_header(h, &alg);

    if (bad != SG_JOSE_HDR_OK) {
        *reason = jwt_header_why[bad];
        return NULL;
    }
    /*
     * The kid selects a key from the table and nothing else: it is never a path, URL or
     * query ("../../etc/passwd" is just an unknown kid).
     */
    if (kid == NULL) {
        *reason = "jwt missing kid";
        return NULL;
    }
    if (!jwt_is_string(kid)) {
        *reason = "jwt malformed";
        return NULL;
    }
    k = sg__pol_key_find(p, kid->str.p, kid->str.n);
    if (k == NULL) {
        *reason = "jwt unknown kid";
        return NULL;
    }
    /*
     * RFC 8725 3.1: the alg is the key's, not the token's. Without this, an RS256 public
     * key (public by definition) used as an HS256 secret forges any token.
     */
    if (k->alg != alg) {
        *reason = "jwt alg does not match key";
        return NULL;
    }
    return k;
}

/* ---- claims (RFC 7519 4.1) --------------------------------------------------------- */

static char *jwt_pool_str(sg_pool_t *pool, const sg_json_t *s)
{
    return sg_pool_strndup(pool, s->str.p, s->str.n);
}

/* RFC 7519 4.1.3: "aud" is a string or an array of strings; one must be ours. */
static int jwt_aud_is_ours(const sg_policy_t *p, const sg_json_t *aud)
{
    const sg_conf_strv_t *want = &p->conf->policy.jwt.audience;

    for (size_t i = 0; i < want->n; i++)
        if (sg_json_is_string(aud, want->v[i], strlen(want->v[i])))
            return 1;
    return 0;
}

static int jwt_audience(const sg_policy_t *p, const sg_json_t *aud, const char **reason)
{
    int ours = 0;

    if (aud == NULL) {
        *reason = "jwt missing audience";
        return -1;
    }
    if (aud->type == SG_JSON_STRING) {
        ours = jwt_aud_is_ours(p, aud);
    } else if (aud->type == SG_JSON_ARRAY) {
        for (size_t i = 0; i < aud->nkids; i++) {
            if (aud->kids[i]->type != SG_JSON_STRING) {
                *reason = "jwt malformed";
                return -1;
            }
            ours |= jwt_aud_is_ours(p, aud->kids[i]);
        }
    } else {
        *reason = "jwt malformed";
        return -1;
    }
    if (!ours) {
        /* RFC 8725 3.9: a token minted for another service is not for us. */
        *reason = "jwt wrong audience";
        return -1;
    }
    return 0;
}

/* Roles claim: absent (no roles), a string, or an array of strings. */
static int jwt_roles(sg_pool_t *pool, const sg_json_t *c, sg_principal_t *who,
                     const char **reason)
{
    const sg_json_t *const *v;
    size_t n;

    if (c == NULL)
        return 0;
    if (c->type == SG_JSON_STRING) {
        v = &c, n = 1;
    } else if (c->type == SG_JSON_ARRAY) {
        v = (const sg_json_t *const *)c->kids, n = c->nkids;
        for (size_t i = 0; i < n; i++)
            if (v[i]->type != SG_JSON_STRING) {
                *reason = "jwt bad roles claim";
                return SG_ERR;
            }
    } else {
        *reason = "jwt bad roles claim";
        return SG_ERR;
    }
    if (n == 0)
        return 0;
    who->roles = sg_pool_alloc(pool, n * sizeof(*who->roles));
    if (who->roles == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if ((who->roles[i] = jwt_pool_str(pool, v[i])) == NULL)
            goto nomem;
    who->nroles = n;
    return 0;
nomem:
    *reason = "out of memory";
    return SG_ENOMEM;
}

/* Check the verified payload and fill *who (strings in POOL). Returns 0, SG_ERR, SG_ENOMEM. */
static int jwt_claims(const sg_policy_t *p, sg_pool_t *pool, const sg_json_t *c, long long now,
                      sg_principal_t *who, const char **reason)
{
    const char *issuer = p->conf->policy.jwt.issuer;
    const sg_json_t *exp = jwt_get(c, "exp");
    const sg_json_t *nbf = jwt_get(c, "nbf");
    const sg_json_t *iss = jwt_get(c, "iss");
    const sg_json_t *sub = jwt_get(c, p->conf->policy.jwt.subject_claim);
    const sg_json_t *ten = jwt_get(c, p->conf->policy.jwt.tenant_claim);
    const sg_json_t *cnf = jwt_get(c, "cnf");
    const sg_json_t *x5t = NULL;
    double t_exp, t_nbf, t_now = (double)now, leeway = (double)p->leeway_s;
    int rc;

    /* docs/design.md "Configuration": exp is required; a token that never expires is a password. */
    if (exp == NULL) {
        *reason = "jwt missing exp";
        return SG_ERR;
    }
    if (sg__jose_date(exp, &t_exp) != 0) {
        *reason = "jwt bad exp";
        return SG_ERR;
    }
    /* RFC 7519 4.1.4: valid only while now is before exp (leeway for clock skew). */
    if (t_now >= t_exp + leeway) {
        *reason = "jwt expired";
        return SG_ERR;
    }
    if (nbf != NULL) {
        if (sg__jose_date(nbf, &t_nbf) != 0) {
            *reason = "jwt bad nbf";
            return SG_ERR;
        }
        if (t_now + leeway < t_nbf) {
            *reason = "jwt not yet valid";
            return SG_ERR;
        }
    }
    /* RFC 8725 3.8: only our issuer; another issuer's keys may share a kid. */
    if (iss == NULL) {
        *reason = "jwt missing issuer";
        return SG_ERR;
    }
    if (!sg_json_is_string(iss, issuer, strlen(issuer))) {
        *reason = "jwt wrong issuer";
        return SG_ERR;
    }
    if (jwt_audience(p, jwt_get(c, "aud"), reason) != 0)
        return SG_ERR;
    /* The audit record names who did it: no anonymous principal. */
    if (!jwt_is_string(sub) || sub->str.n == 0) {
        *reason = "jwt missing subject";
        return SG_ERR;
    }
    /* No tenant, no scope: never fall back to "everything". */
    if (!jwt_is_string(ten) || ten->str.n == 0) {
        *reason = "jwt missing tenant";
        return SG_ERR;
    }
    /*
     * RFC 8705 3.1 / RFC 7800: a sender-constrained token must not be usable as a plain
     * bearer token. We can enforce x5t#S256 only; any other confirmation method (a DPoP
     * "jkt", a "jwk") is one we cannot check, so the token is refused.
     */
    if (cnf != NULL) {
        if (cnf->type != SG_JSON_OBJECT) {
            *reason = "jwt bad cnf claim";
            return SG_ERR;
        }
        x5t = jwt_get(cnf, "x5t#S256");
        if (x5t == NULL || cnf->nkids != 1) {
            *reason = "jwt unsupported cnf";
            return SG_ERR;
        }
        if (!jwt_is_string(x5t) || x5t->str.n == 0) {
            *reason = "jwt bad cnf claim";
            return SG_ERR;
        }
    }
    rc = jwt_roles(pool, jwt_get(c, p->conf->policy.jwt.roles_claim), who, reason);
    if (rc != 0)
        return rc;
    who->subject = jwt_pool_str(pool, sub);
    who->tenant = jwt_pool_str(pool, ten);
    who->cnf_x5t_s256 = x5t != NULL ? jwt_pool_str(pool, x5t) : NULL;
    if (who->subject == NULL || who->tenant == NULL || (x5t != NULL && who->cnf_x5t_s256 == NULL)) {
        *reason = "out of memory";
        return SG_ENOMEM;
    }
    who->auth = "jwt";
    who->exp = (long long)t_exp; /* floor: t_exp is non-negative */
    return 0;
}

/* ---- entry ------------------------------------------------------------------------- */

static int jwt_authenticate(const sg_policy_t *p, sg_pool_t *pool, const char *tok, size_t n,
                            long long now, sg_principal_t *who, const char **reason)
{
    /* Decoded header, signature and payload together are at most 3/4 of the token. */
    unsigned char buf[SG_POL_TOKEN_MAX];
    sg_jose_parts_t t;
    const sg_json_t *hdr, *claims;
    const sg_pol_key_t *k;
    sg_pool_t scratch;
    long siglen;
    int rc = SG_ERR, v;

    if (n > SG_POL_TOKEN_MAX) {
        *reason = "token too large";
        return SG_ERR;
    }
    if (sg__jose_split(tok, n, &t) != 0) {
        *reason = "jwt malformed";
        return SG_ERR;
    }

    sg_pool_init(&scratch, JWT_SCRATCH_CHUNK);
    if ((rc = jwt_json_segment(&scratch, t.h, t.hn, buf, &hdr, reason)) != SG_OK)
        goto out;
    rc = SG_ERR;
    k = jwt_header(p, hdr, reason);
    if (k == NULL)
        goto out;
    who->token_id = k->kid;

    if (t.sn > SG_JOSE_SIG_MAX * 4 / 3 + 3 || (siglen = sg_b64url_decode(buf, t.s, t.sn)) <= 0) {
        *reason = "jwt malformed";
        goto out;
    }
    /* RFC 7515 5.2 step 8: the signing input is the two segments exactly as received. */
    v = sg__jose_verify(k, (const unsigned char *)tok, t.signed_len, buf, (size_t)siglen);
    if (v < 0) {
        rc = v;
        *reason = "out of memory";
        goto out;
    }
    if (v != 1) {
        *reason = "jwt bad signature";
        goto out;
    }

    /* Only a payload whose signature holds is parsed. */
    if ((rc = jwt_json_segment(&scratch, t.p, t.pn, buf, &claims, reason)) != SG_OK)
        goto out;
    rc = jwt_claims(p, pool, claims, now, who, reason);
out:
    sg_pool_dispose(&scratch);
    if (rc != 0)
        memset(who, 0, sizeof(*who));
    else
        *reason = NULL;
    return rc;
}

int sg__pol_jwt_authenticate(const sg_policy_t *p, sg_pool_t *pool, const char *tok, size_t n,
                             long long now, sg_principal_t *who, const char **reason)
{
    int rc;

    /*
     * A refused signature leaves errors in this thread's OpenSSL queue; left there, the
     * next SSL_get_error() on the worker would report them against an unrelated TLS
     * connection. Whatever was queued before stays as it was.
     */
    ERR_set_mark();
    rc = jwt_authenticate(p, pool, tok, n, now, who, reason);
    ERR_pop_to_mark();
    return rc;
}

/* ---- certificate-bound tokens (RFC 8705 3.1) --------------------------------------- */

int sg_pol_check_cert_binding(const sg_principal_t *who, const unsigned char *cert_der, size_t len)
{
    unsigned char h[32];
    char b64[48];
    size_t n, want;

    if (who->cnf_x5t_s256 == NULL)
        return 0;
    if (cert_der == NULL || len == 0)
        return -1; /* bound to a certificate, presented without one */
    if (sg__pol_sha256(cert_der, len, h) != 0)
        return -1;
    n = (size_t)(sg_b64url_put(b64, h, sizeof(h)) - b64);
    want = strlen(who->cnf_x5t_s256);
    return want == n && CRYPTO_memcmp(b64, who->cnf_x5t_s256, n) == 0 ? 0 : -1;
}
