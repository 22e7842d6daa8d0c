/*
 * policy/jose.c - compact JWS pieces shared by jwt.c (login tokens) and approval.c
 * (four-eyes approvals): see policy/jose.h.
 *
 * JSON goes through the gateway's one strict reader (base/json.h), the same that reads
 * request bodies: it refuses invalid UTF-8, "\u0000", duplicate member names, trailing
 * bytes and any other departure from RFC 8259, each of which lets two parsers (the
 * signer's and ours) read one statement differently (RFC 8259 4 and 8).
 */
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/jose.h"

#define JOSE_DATE_MAX 253402300799.0 /* 9999-12-31T23:59:59Z: beyond is not a date */

/* ---- structure --------------------------------------------------------------------- */

int sg__jose_split(const char *tok, size_t n, sg_jose_parts_t *out)
{
    const char *d1 = memchr(tok, '.', n);
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;

    if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) != NULL)
        return -1; /* RFC 7515 7.1: exactly three segments */
    out->h = tok, out->hn = (size_t)(d1 - tok);
    out->p = d1 + 1, out->pn = (size_t)(d2 - out->p);
    out->s = d2 + 1, out->sn = n - (size_t)(out->s - tok);
    out->signed_len = (size_t)(d2 - tok);
    /*
     * An empty signature is "alg":"none" in disguise; empty header/payload are not JSON.
     * All three encodings are checked before any signature work is spent on the token.
     */
    if (out->hn == 0 || out->pn == 0 || out->sn == 0 || !sg_b64url_valid(out->p, out->pn) ||
        !sg_b64url_valid(out->s, out->sn))
        return -1;
    return 0;
}

int sg__jose_json(sg_pool_t *scratch, const char *s, size_t n, unsigned char *buf,
                  const sg_json_t **out, int *duplicate)
{
    static const sg_json_limits_t lim = {.max_depth = SG_JOSE_JSON_DEPTH,
                                         .max_number_len = SG_JOSE_NUMBER_MAX};
    long len = sg_b64url_decode(buf, s, n);
    sg_json_err_t err;
    sg_json_t *root;
    int rc;

    *duplicate = 0;
    if (len <= 0)
        return SG_ERR;
    rc = sg_json_parse(scratch, (const char *)buf, (size_t)len, &lim, &root, &err);
    if (rc == SG_ENOMEM)
        return SG_ENOMEM;
    if (rc != SG_OK) {
        *duplicate = err.why == sg_json_why_duplicate;
        return SG_ERR;
    }
    if (root->type != SG_JSON_OBJECT)
        return SG_ERR;
    *out = root;
    return SG_OK;
}

/* ---- header ------------------------------------------------------------------------ */

static const char *const jose_alg_names[] = {
    [SG_JWT_RS256] = "RS256",
    [SG_JWT_ES256] = "ES256",
    [SG_JWT_EDDSA] = "EdDSA",
    [SG_JWT_HS256] = "HS256",
};

const char *sg__jose_alg_name(sg_jwt_alg_t alg)
{
    if ((size_t)alg == 0 || (size_t)alg >= SG_ARRAY_SIZE(jose_alg_names))
        return "";
    return jose_alg_names[alg];
}

sg_jose_hdr_t sg__jose_header(const sg_json_t *h, sg_jwt_alg_t *alg)
{
    static const char *const key_params[] = {"jwk", "jku", "x5u", "x5c"};
    const sg_json_t *a = sg_json_get(h, "alg", 3);
    size_t i;

    /*
     * RFC 7515 4.1.11: we implement no extension, so any "crit" is refused: accepting it
     * would ignore a rule the signer declared mandatory (e.g. "b64": false).
     */
    if (sg_json_get(h, "crit", 4) != NULL)
        return SG_JOSE_HDR_CRIT;
    /*
     * RFC 8725 3.10: a key (or a URL or certificate to fetch one from) in the token lets
     * the token vouch for itself. Keys come from the configuration only.
     */
    for (i = 0; i < SG_ARRAY_SIZE(key_params); i++)
        if (sg_json_get(h, key_params[i], strlen(key_params[i])) != NULL)
            return SG_JOSE_HDR_KEY;
    if (a == NULL || a->type != SG_JSON_STRING)
        return SG_JOSE_HDR_MALFORMED;
    /* RFC 8725 3.1/3.2: "none" (in any case) never; an unsigned token proves nothing.
     * Strings from the reader hold no NUL, so C string functions see all of them. */
    if (strcasecmp(a->str.p, "none") == 0)
        return SG_JOSE_HDR_ALG_NONE;
    for (i = 1; i < SG_ARRAY_SIZE(jose_alg_names); i++)
        if (strcmp(a->str.p, jose_alg_names[i]) == 0) {
            *alg = (sg_jwt_alg_t)i;
            return SG_JOSE_HDR_OK;
        }
    return SG_JOSE_HDR_ALG_UNKNOWN;
}

/* ---- signatures (RFC 7518 3) ------------------------------------------------------- */

/* Append a DER INTEGER holding the unsigned big-endian P[0..32) to OUT; returns its size. */
static size_t jose_der_uint(const unsigned char *p, unsigned char *out)
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
static size_t jose_es256_der(const unsigned char sig[64], unsigned char der[80])
{
    unsigned char body[72];
    size_t n = jose_der_uint(sig, body);

    n += jose_der_uint(sig + 32, body + n);
    der[0] = 0x30;
    der[1] = (unsigned char)n; /* < 128: short form */
    memcpy(der + 2, body, n);
    return n + 2;
}

int sg__jose_verify(const sg_pol_key_t *k, const unsigned char *data, size_t n,
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
        sn = jose_es256_der(sig, der);
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

/* ---- claims ------------------------------------------------------------------------ */

int sg__jose_date(const sg_json_t *c, double *out)
{
    double d;

    if (c->type != SG_JSON_NUMBER)
        return -1;
    d = strtod(c->str.p, NULL);
    if (!isfinite(d) || d < 0 || d > JOSE_DATE_MAX)
        return -1;
    *out = d;
    return 0;
}
