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
 */
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/json.h"
#include "policy/policy-int.h"

#define JWT_JSON_DEPTH 32           /* claims are shallow; the top-level object is level 1 */
#define JWT_SIG_MAX 1024            /* RSA 8192 bits; larger keys are not configured */
#define JWT_DATE_MAX 253402300799.0 /* 9999-12-31T23:59:59Z: beyond is not a date */
/*
 * Characters in a number. Dates are read as doubles; a longer text has more digits than a
 * double holds, and issuers' libraries round (or cut) those differently from strtod.
 */
#define JWT_NUMBER_MAX 32
/* The scratch pool's chunk: one holds the header and claims trees of an ordinary token
 * (about 2.7 KiB for ten claims), so a verification costs one malloc, not one a node. */
#define JWT_SCRATCH_CHUNK 4096

/* ---- JSON (base/json.h) ------------------------------------------------------------ */

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
 * (RFC 7515 4, RFC 7519 7.2 step 10). Returns SG_OK with *out set, SG_ERR with *reason
 * set, or SG_ENOMEM.
 */
static int jwt_json_segment(sg_pool_t *scratch, const char *s, size_t n, unsigned char *buf,
                            const sg_json_t **out, const char **reason)
{
    static const sg_json_limits_t lim = {.max_depth = JWT_JSON_DEPTH,
                                         .max_number_len = JWT_NUMBER_MAX};
    long len = sg_b64url_decode(buf, s, n);
    sg_json_err_t err;
    sg_json_t *root;
    int rc;

    if (len <= 0) {
        *reason = "jwt malformed";
        return SG_ERR;
    }
    rc = sg_json_parse(scratch, (const char *)buf, (size_t)len, &lim, &root, &err);
    if (rc == SG_ENOMEM) {
        *reason = "out of memory";
        return SG_ENOMEM;
    }
    if (rc != SG_OK) {
        /* RFC 7515 5.2 step 4: a reader that keeps one of two equal names answers with the
         * first or the last; the issuer may have meant the other. */
        *reason = err.why == sg_json_why_duplicate ? "jwt duplicate member" : "jwt malformed";
        return SG_ERR;
    }
    if (root->type != SG_JSON_OBJECT) {
        *reason = "jwt malformed";
        return SG_ERR;
    }
    *out = root;
    return SG_OK;
}

/* ---- signatures (RFC 7518 3) ------------------------------------------------------- */

/* Append a DER INTEGER holding the unsigned big-endian P[0..32) to OUT; returns its size. */
static size_t jwt_der_uint(const unsigned char *p, unsigned char *out)
{
    size_t i = 0, n, o = 0;

    while (i < 31 && p[i] == 0)
        i++;
    n = 32 - i;
    out[o++] = 0x02;
    out[o++] = (unsigned char)(n + (p[i] >= 0x80));
    if (p[i] >= 0x80)
        out[o++] = 0x00; /* keep it positive */
    memcpy(out + o, p + i, n);
    return o + n;
}

/*
 * RFC 7518 3.4: an ES256 signature is R || S, 32 bytes each. OpenSSL wants DER
 * (SEQUENCE of two INTEGERs); at most 2 + 2 * 35 = 72 bytes, built here without BIGNUMs.
 */
static size_t jwt_es256_der(const unsigned char sig[64], unsigned char der[80])
{
    unsigned char body[72];
    size_t n = jwt_der_uint(sig, body);

    n += jwt_der_uint(sig + 32, body + n);
    der[0] = 0x30;
    der[1] = (unsigned char)n; /* < 128: short form */
    memcpy(der + 2, body, n);
    return n + 2;
}

/*
 * Verify SIG over DATA with K, the only alg being K's. Returns 1 valid, 0 invalid,
 * SG_ENOMEM when OpenSSL could not allocate its context.
 */
static int jwt_verify(const sg_pol_key_t *k, const unsigned char *data, size_t n,
                      const unsigned char *sig, size_t sn)
{
    unsigned char mac[EVP_MAX_MD_SIZE], der[80];
    unsigned int maclen = 0;
    const EVP_MD *md = sg__pol_md_sha256();
    EVP_MD_CTX *ctx;
    int rc;

    switch (k->alg) {
    case SG_JWT_HS256:
        if (sn != 32)
            return 0;
        if (HMAC(md, k->secret, (int)k->secret_len, data, n, mac, &maclen) == NULL)
            return SG_ENOMEM;
        /* Constant time: a byte-wise compare leaks how much of a forged MAC is right. */
        rc = maclen == 32 && CRYPTO_memcmp(mac, sig, 32) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        return rc;
    case SG_JWT_RS256:
        /* RFC 8017 8.2.2: the signature is exactly as long as the modulus. */
        if (sn != (size_t)EVP_PKEY_get_size(k->pkey))
            return 0;
        break;
    case SG_JWT_ES256:
        /* DER or any other length is not a JWS ES256 signature (RFC 7518 3.4). */
        if (sn != 64)
            return 0;
        sn = jwt_es256_der(sig, der);
        sig = der;
        break;
    case SG_JWT_EDDSA:
        if (sn != 64)
            return 0;
        md = NULL; /* Ed25519 hashes internally (RFC 8037 3.1) */
        break;
    default:
        return 0;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return SG_ENOMEM;
    /* RSA keys default to PKCS#1 v1.5 padding: RS256, never PSS. */
    if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) != 1)
        rc = 0;
    else
        rc = EVP_DigestVerify(ctx, sig, sn, data, n) == 1;
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- header ------------------------------------------------------------------------ */

static const char *const jwt_alg_names[] = {
    [SG_JWT_RS256] = "RS256",
    [SG_JWT_ES256] = "ES256",
    [SG_JWT_EDDSA] = "EdDSA",
    [SG_JWT_HS256] = "HS256",
};

/*
 * Check the protected header and choose the key. Returns the key, or NULL with *reason.
 * Strings from the reader hold no NUL, so C string functions see all of them.
 */
static const sg_pol_key_t *jwt_header(const sg_policy_t *p, const sg_json_t *h,
                                      const char **reason)
{
    static const char *const key_params[] = {"jwk", "jku", "x5u", "x5c"};
    const sg_json_t *alg = jwt_get(h, "alg");
    const sg_json_t *kid = jwt_get(h, "kid");
    const sg_pol_key_t *k;
    size_t i;

    /*
     * RFC 7515 4.1.11: we implement no extension, so any "crit" is refused: accepting it
     * would ignore a rule the issuer declared mandatory (e.g. "b64": false).
     */
    if (jwt_get(h, "crit") != NULL) {
        *reason = "jwt crit header refused";
        return NULL;
    }
    /*
     * RFC 8725 3.10: a key (or a URL or certificate to fetch one from) in the token lets
     * the token vouch for itself. Keys come from the configuration only.
     */
    for (i = 0; i < SG_ARRAY_SIZE(key_params); i++)
        if (jwt_get(h, key_params[i]) != NULL) {
            *reason = "jwt key in header refused";
            return NULL;
        }
    if (!jwt_is_string(alg)) {
        *reason = "jwt malformed";
        return NULL;
    }
    /* RFC 8725 3.1/3.2: "none" (in any case) never; an unsigned token proves nothing. */
    if (strcasecmp(alg->str.p, "none") == 0) {
        *reason = "jwt alg none refused";
        return NULL;
    }
    for (i = 1; i < SG_ARRAY_SIZE(jwt_alg_names); i++)
        if (strcmp(alg->str.p, jwt_alg_names[i]) == 0)
            break;
    if (i == SG_ARRAY_SIZE(jwt_alg_names)) {
        *reason = "jwt unsupported alg";
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
    if ((size_t)k->alg != i) {
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

/*
 * A NumericDate (RFC 7519 2): a finite number in [0, year 9999]. The reader kept the
 * number's text, checked against the RFC 8259 grammar and JWT_NUMBER_MAX long.
 */
static int jwt_date(const sg_json_t *c, double *out)
{
    double d;

    if (c->type != SG_JSON_NUMBER)
        return -1;
    d = strtod(c->str.p, NULL);
    if (!isfinite(d) || d < 0 || d > JWT_DATE_MAX)
        return -1;
    *out = d;
    return 0;
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
    if (jwt_date(exp, &t_exp) != 0) {
        *reason = "jwt bad exp";
        return SG_ERR;
    }
    /* RFC 7519 4.1.4: valid only while now is before exp (leeway for clock skew). */
    if (t_now >= t_exp + leeway) {
        *reason = "jwt expired";
        return SG_ERR;
    }
    if (nbf != NULL) {
        if (jwt_date(nbf, &t_nbf) != 0) {
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
    const char *d1, *d2, *hs, *ps, *ss;
    size_t hn, pn, sn;
    const sg_json_t *hdr, *claims;
    const sg_pol_key_t *k;
    sg_pool_t scratch;
    long siglen;
    int rc = SG_ERR, v;

    if (n > SG_POL_TOKEN_MAX) {
        *reason = "token too large";
        return SG_ERR;
    }
    d1 = memchr(tok, '.', n);
    d2 = d1 != NULL ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) != NULL) {
        *reason = "jwt malformed"; /* RFC 7515 7.1: exactly three segments */
        return SG_ERR;
    }
    hs = tok, hn = (size_t)(d1 - tok);
    ps = d1 + 1, pn = (size_t)(d2 - ps);
    ss = d2 + 1, sn = n - (size_t)(ss - tok);
    /*
     * An empty signature is "alg":"none" in disguise; empty header/payload are not JSON.
     * All three encodings are checked before any signature work is spent on the token.
     */
    if (hn == 0 || pn == 0 || sn == 0 || !sg_b64url_valid(ps, pn) || !sg_b64url_valid(ss, sn)) {
        *reason = "jwt malformed";
        return SG_ERR;
    }

    sg_pool_init(&scratch, JWT_SCRATCH_CHUNK);
    if ((rc = jwt_json_segment(&scratch, hs, hn, buf, &hdr, reason)) != SG_OK)
        goto out;
    rc = SG_ERR;
    k = jwt_header(p, hdr, reason);
    if (k == NULL)
        goto out;
    who->token_id = k->kid;

    if (sn > JWT_SIG_MAX * 4 / 3 + 3 || (siglen = sg_b64url_decode(buf, ss, sn)) <= 0) {
        *reason = "jwt malformed";
        goto out;
    }
    /* RFC 7515 5.2 step 8: the signing input is the two segments exactly as received. */
    v = jwt_verify(k, (const unsigned char *)tok, (size_t)(d2 - tok), buf, (size_t)siglen);
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
    if ((rc = jwt_json_segment(&scratch, ps, pn, buf, &claims, reason)) != SG_OK)
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
