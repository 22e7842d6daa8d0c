/*
 * policy/jwt.c - JSON Web Tokens: compact JWS verification and claims (RFC 7515, 7519,
 * 8725), and certificate-bound tokens (RFC 8705).
 *
 * The order is chosen so that nothing an attacker controls is interpreted before it has
 * to be: structure and base64url, then the protected header (strict JSON), then the key,
 * chosen by kid from the configuration only and required to be of the header's alg, then
 * the signature over the bytes as received, and only then the payload and its claims.
 *
 * JSON is checked twice: by a strict validator here (RFC 8259 grammar, UTF-8, no
 * "\u0000", bounded depth) and then parsed by cJSON, whose tree is searched for duplicate
 * member names. cJSON alone accepts invalid UTF-8, cuts strings at \u0000, keeps both of
 * two equal names and is lenient with numbers (docs/design.md "Dependencies");
 * any of these lets two parsers (the issuer's and ours) read one token differently.
 *
 * Memory: decoded segments live in one stack buffer (a token is at most SG_POL_TOKEN_MAX
 * bytes); the principal's strings go to the caller's pool; cJSON trees and OpenSSL
 * contexts are freed before returning.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

#include "policy/policy-int.h"

#define JWT_JSON_DEPTH 32           /* claims are shallow; bounds recursion here and in cJSON */
#define JWT_SIG_MAX 1024            /* RSA 8192 bits; larger keys are not configured */
#define JWT_DATE_MAX 253402300799.0 /* 9999-12-31T23:59:59Z: beyond is not a date */
#define JWT_NUMBER_MAX 32           /* cJSON reads at most 63 characters of a number */

/* ---- strict JSON validation (RFC 8259) --------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
    int depth;
} jwt_json_t;

static void jwt_json_ws(jwt_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int jwt_hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;

        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = (v << 4) | d;
    }
    *out = v;
    return 0;
}

static int jwt_json_string(jwt_json_t *j)
{
    unsigned u, lo;
    uint32_t cp;
    size_t k;

    j->p++; /* '"' */
    while (j->p < j->end) {
        unsigned c = *j->p;

        if (c == '"') {
            j->p++;
            return 0;
        }
        if (c < 0x20)
            return -1; /* raw control characters must be escaped */
        if (c >= 0x80) {
            /* Shortest form, no surrogates, nothing above U+10FFFF (base/str.h). */
            if ((k = sg_utf8_char(j->p, (size_t)(j->end - j->p), &cp)) == 0)
                return -1;
            j->p += k;
            continue;
        }
        if (c != '\\') {
            j->p++;
            continue;
        }
        if (j->end - j->p < 2)
            return -1;
        switch (j->p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            j->p += 2;
            continue;
        case 'u':
            break;
        default:
            return -1;
        }
        if (j->end - j->p < 6 || jwt_hex4(j->p + 2, &u) != 0)
            return -1;
        j->p += 6;
        /* \u0000 would cut the string in cJSON: "admin\u0000x" read as "admin". */
        if (u == 0)
            return -1;
        if (u >= 0xdc00 && u <= 0xdfff)
            return -1; /* lone low surrogate */
        if (u >= 0xd800 && u <= 0xdbff) {
            if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                jwt_hex4(j->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                return -1; /* a high surrogate must be followed by a low one */
            j->p += 6;
        }
    }
    return -1;
}

static int jwt_json_digits(jwt_json_t *j)
{
    const unsigned char *s = j->p;

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s ? 0 : -1;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? : no "+1", "01", "1.", ".5", "NaN". */
static int jwt_json_number(jwt_json_t *j)
{
    const unsigned char *start = j->p;

    if (*j->p == '-')
        j->p++;
    if (j->p >= j->end)
        return -1;
    if (*j->p == '0')
        j->p++;
    else if (jwt_json_digits(j) != 0)
        return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (jwt_json_digits(j) != 0)
            return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (jwt_json_digits(j) != 0)
            return -1;
    }
    /* Longer numbers would be cut by cJSON and read differently from what was signed. */
    return j->p - start <= JWT_NUMBER_MAX ? 0 : -1;
}

static int jwt_json_literal(jwt_json_t *j, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return -1;
    j->p += n;
    return 0;
}

static int jwt_json_value(jwt_json_t *j);

/* Object or array at j->p; CLOSE is '}' or ']'. */
static int jwt_json_container(jwt_json_t *j, int object)
{
    unsigned char close = object ? '}' : ']';

    if (++j->depth > JWT_JSON_DEPTH)
        return -1;
    j->p++;
    jwt_json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        if (object) {
            if (j->p >= j->end || *j->p != '"' || jwt_json_string(j) != 0)
                return -1;
            jwt_json_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return -1;
            j->p++;
        }
        if (jwt_json_value(j) != 0)
            return -1;
        if (j->p >= j->end)
            return -1;
        if (*j->p == ',') {
            j->p++;
            jwt_json_ws(j);
            continue;
        }
        if (*j->p != close)
            return -1;
        j->p++;
        j->depth--;
        return 0;
    }
}

static int jwt_json_value(jwt_json_t *j)
{
    int rc;

    jwt_json_ws(j);
    if (j->p >= j->end)
        return -1;
    switch (*j->p) {
    case '{':
        rc = jwt_json_container(j, 1);
        break;
    case '[':
        rc = jwt_json_container(j, 0);
        break;
    case '"':
        rc = jwt_json_string(j);
        break;
    case 't':
        rc = jwt_json_literal(j, "true");
        break;
    case 'f':
        rc = jwt_json_literal(j, "false");
        break;
    case 'n':
        rc = jwt_json_literal(j, "null");
        break;
    default:
        rc = (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) ? jwt_json_number(j) : -1;
        break;
    }
    if (rc == 0)
        jwt_json_ws(j);
    return rc;
}

/* P[0..N) is exactly one JSON object (RFC 7515 4, RFC 7519 7.2 step 10), and valid JSON. */
static int jwt_json_check(const unsigned char *p, size_t n)
{
    jwt_json_t j = {p, p + n, 0};

    jwt_json_ws(&j);
    if (j.p >= j.end || *j.p != '{')
        return -1;
    return jwt_json_value(&j) == 0 && j.p == j.end ? 0 : -1;
}

/* Members an object can have in a decoded segment: "\"\":0," is 5 bytes each. */
#define JWT_MEMBERS_MAX (SG_POL_TOKEN_MAX * 3 / 4 / 5 + 1)

static int jwt_cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * 1 when some object in the tree has two members of the same name (RFC 7515 5.2 step 4,
 * RFC 8259 4). Names are sorted in SCRATCH (room for JWT_MEMBERS_MAX) rather than compared
 * pairwise: the header is checked before any signature, and a quadratic check would let a
 * 6 KiB header of short names cost milliseconds per unauthenticated request.
 */
static int jwt_json_has_dup(const cJSON *node, int depth, const char **scratch)
{
    const cJSON *a;
    size_t n = 0;

    if (depth > JWT_JSON_DEPTH)
        return 1;
    if (cJSON_IsObject(node)) {
        for (a = node->child; a != NULL; a = a->next) {
            if (n == JWT_MEMBERS_MAX)
                return 1; /* cannot happen within SG_POL_TOKEN_MAX; refuse if it does */
            scratch[n++] = a->string;
        }
        qsort(scratch, n, sizeof(*scratch), jwt_cmp_name);
        for (size_t i = 1; i < n; i++)
            if (strcmp(scratch[i - 1], scratch[i]) == 0)
                return 1;
    }
    /* SCRATCH is free again: children reuse it one after the other. */
    for (a = node->child; a != NULL; a = a->next)
        if (a->child != NULL && jwt_json_has_dup(a, depth + 1, scratch))
            return 1;
    return 0;
}

/*
 * Decode segment S[0..N) into BUF (NUL-terminated) and parse it as a JSON object.
 * Returns the tree (cJSON_Delete by the caller), or NULL with *reason set; *oom set when
 * cJSON failed for lack of memory after the validator accepted the text.
 */
static cJSON *jwt_json_segment(const char *s, size_t n, unsigned char *buf, const char **reason,
                               int *oom)
{
    long len = sg_b64url_decode(buf, s, n);
    const char *end = NULL, *scratch[JWT_MEMBERS_MAX];
    cJSON *root;

    *oom = 0;
    if (len <= 0) {
        *reason = "jwt malformed";
        return NULL;
    }
    buf[len] = '\0';
    /* A raw NUL would end cJSON's input early and hide the bytes after it. */
    if (memchr(buf, '\0', (size_t)len) != NULL || jwt_json_check(buf, (size_t)len) != 0) {
        *reason = "jwt malformed";
        return NULL;
    }
    root = cJSON_ParseWithOpts((const char *)buf, &end, 1);
    if (root == NULL) {
        /* The validator accepted the text, so cJSON failing means it ran out of memory. */
        *oom = 1;
        *reason = "out of memory";
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        *reason = "jwt malformed";
        return NULL;
    }
    if (jwt_json_has_dup(root, 0, scratch)) {
        /* cJSON keeps both and answers with the first; the issuer may have meant the last. */
        cJSON_Delete(root);
        *reason = "jwt duplicate member";
        return NULL;
    }
    return root;
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
 */
static const sg_pol_key_t *jwt_header(const sg_policy_t *p, const cJSON *h, const char **reason)
{
    static const char *const key_params[] = {"jwk", "jku", "x5u", "x5c"};
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
    const sg_pol_key_t *k;
    size_t i;

    /*
     * RFC 7515 4.1.11: we implement no extension, so any "crit" is refused: accepting it
     * would ignore a rule the issuer declared mandatory (e.g. "b64": false).
     */
    if (cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL) {
        *reason = "jwt crit header refused";
        return NULL;
    }
    /*
     * RFC 8725 3.10: a key (or a URL or certificate to fetch one from) in the token lets
     * the token vouch for itself. Keys come from the configuration only.
     */
    for (i = 0; i < SG_ARRAY_SIZE(key_params); i++)
        if (cJSON_GetObjectItemCaseSensitive(h, key_params[i]) != NULL) {
            *reason = "jwt key in header refused";
            return NULL;
        }
    if (!cJSON_IsString(alg)) {
        *reason = "jwt malformed";
        return NULL;
    }
    /* RFC 8725 3.1/3.2: "none" (in any case) never; an unsigned token proves nothing. */
    if (strcasecmp(alg->valuestring, "none") == 0) {
        *reason = "jwt alg none refused";
        return NULL;
    }
    for (i = 1; i < SG_ARRAY_SIZE(jwt_alg_names); i++)
        if (strcmp(alg->valuestring, jwt_alg_names[i]) == 0)
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
    if (!cJSON_IsString(kid)) {
        *reason = "jwt malformed";
        return NULL;
    }
    k = sg__pol_key_find(p, kid->valuestring, strlen(kid->valuestring));
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

static char *jwt_pool_str(sg_pool_t *pool, const char *s)
{
    return sg_pool_strndup(pool, s, strlen(s));
}

/* A NumericDate (RFC 7519 2): a finite number in [0, year 9999]. */
static int jwt_date(const cJSON *c, double *out)
{
    if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || c->valuedouble < 0 ||
        c->valuedouble > JWT_DATE_MAX)
        return -1;
    *out = c->valuedouble;
    return 0;
}

/* RFC 7519 4.1.3: "aud" is a string or an array of strings; one must be ours. */
static int jwt_aud_is_ours(const sg_policy_t *p, const char *aud)
{
    const sg_conf_strv_t *want = &p->conf->policy.jwt.audience;

    for (size_t i = 0; i < want->n; i++)
        if (strcmp(aud, want->v[i]) == 0)
            return 1;
    return 0;
}

static int jwt_audience(const sg_policy_t *p, const cJSON *aud, const char **reason)
{
    const cJSON *e;
    int ours = 0;

    if (aud == NULL) {
        *reason = "jwt missing audience";
        return -1;
    }
    if (cJSON_IsString(aud)) {
        ours = jwt_aud_is_ours(p, aud->valuestring);
    } else if (cJSON_IsArray(aud)) {
        cJSON_ArrayForEach(e, aud)
        {
            if (!cJSON_IsString(e)) {
                *reason = "jwt malformed";
                return -1;
            }
            ours |= jwt_aud_is_ours(p, e->valuestring);
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
static int jwt_roles(sg_pool_t *pool, const cJSON *c, sg_principal_t *who, const char **reason)
{
    const cJSON *e;
    size_t n = 0, i = 0;

    if (c == NULL)
        return 0;
    if (cJSON_IsString(c)) {
        n = 1;
    } else if (cJSON_IsArray(c)) {
        cJSON_ArrayForEach(e, c)
        {
            if (!cJSON_IsString(e)) {
                *reason = "jwt bad roles claim";
                return SG_ERR;
            }
            n++;
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
    if (cJSON_IsString(c)) {
        if ((who->roles[i++] = jwt_pool_str(pool, c->valuestring)) == NULL)
            goto nomem;
    } else {
        cJSON_ArrayForEach(e, c)
        {
            if ((who->roles[i++] = jwt_pool_str(pool, e->valuestring)) == NULL)
                goto nomem;
        }
    }
    who->nroles = n;
    return 0;
nomem:
    *reason = "out of memory";
    return SG_ENOMEM;
}

/* Check the verified payload and fill *who (strings in POOL). Returns 0, SG_ERR, SG_ENOMEM. */
static int jwt_claims(const sg_policy_t *p, sg_pool_t *pool, const cJSON *c, long long now,
                      sg_principal_t *who, const char **reason)
{
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(c, "nbf");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(c, "iss");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(c, p->conf->policy.jwt.subject_claim);
    const cJSON *ten = cJSON_GetObjectItemCaseSensitive(c, p->conf->policy.jwt.tenant_claim);
    const cJSON *cnf = cJSON_GetObjectItemCaseSensitive(c, "cnf");
    const cJSON *x5t = NULL;
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
    if (!cJSON_IsString(iss) || strcmp(iss->valuestring, p->conf->policy.jwt.issuer) != 0) {
        *reason = "jwt wrong issuer";
        return SG_ERR;
    }
    if (jwt_audience(p, cJSON_GetObjectItemCaseSensitive(c, "aud"), reason) != 0)
        return SG_ERR;
    /* The audit record names who did it: no anonymous principal. */
    if (!cJSON_IsString(sub) || sub->valuestring[0] == '\0') {
        *reason = "jwt missing subject";
        return SG_ERR;
    }
    /* No tenant, no scope: never fall back to "everything". */
    if (!cJSON_IsString(ten) || ten->valuestring[0] == '\0') {
        *reason = "jwt missing tenant";
        return SG_ERR;
    }
    /*
     * RFC 8705 3.1 / RFC 7800: a sender-constrained token must not be usable as a plain
     * bearer token. We can enforce x5t#S256 only; any other confirmation method (a DPoP
     * "jkt", a "jwk") is one we cannot check, so the token is refused.
     */
    if (cnf != NULL) {
        if (!cJSON_IsObject(cnf)) {
            *reason = "jwt bad cnf claim";
            return SG_ERR;
        }
        x5t = cJSON_GetObjectItemCaseSensitive(cnf, "x5t#S256");
        if (x5t == NULL || cnf->child != x5t || x5t->next != NULL) {
            *reason = "jwt unsupported cnf";
            return SG_ERR;
        }
        if (!cJSON_IsString(x5t) || x5t->valuestring[0] == '\0') {
            *reason = "jwt bad cnf claim";
            return SG_ERR;
        }
    }
    rc = jwt_roles(pool, cJSON_GetObjectItemCaseSensitive(c, p->conf->policy.jwt.roles_claim), who,
                   reason);
    if (rc != 0)
        return rc;
    who->subject = jwt_pool_str(pool, sub->valuestring);
    who->tenant = jwt_pool_str(pool, ten->valuestring);
    who->cnf_x5t_s256 = x5t != NULL ? jwt_pool_str(pool, x5t->valuestring) : NULL;
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
    cJSON *hdr = NULL, *claims = NULL;
    const sg_pol_key_t *k;
    long siglen;
    int rc = SG_ERR, oom, v;

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

    hdr = jwt_json_segment(hs, hn, buf, reason, &oom);
    if (hdr == NULL) {
        rc = oom ? SG_ENOMEM : SG_ERR;
        goto out;
    }
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
    claims = jwt_json_segment(ps, pn, buf, reason, &oom);
    if (claims == NULL) {
        rc = oom ? SG_ENOMEM : SG_ERR;
        goto out;
    }
    rc = jwt_claims(p, pool, claims, now, who, reason);
out:
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
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
