/*
 * policy/approval.c - four-eyes approvals: the operation digest, the approvers, the jti
 * replay cache and the verification of a statement (policy/approval.h).
 *
 * Verification follows jwt.c's order, for the same reason: nothing an attacker controls is
 * interpreted before it has to be. Structure and base64url, then the protected header
 * (strict JSON), then the approver, chosen by kid from the caller's list only and required
 * to have a key of the header's alg, then the signature over the bytes as received, and
 * only then the payload. The JOSE pieces are policy/jose.c, shared with jwt.c.
 */
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/pkey.h"
#include "policy/approval.h"
#include "policy/jose.h"

#define APPROVAL_SCRATCH_CHUNK 2048 /* header and payload trees of a statement */
#define APPROVAL_DIG_B64 43         /* base64url characters of 32 bytes */

/* ---- the operation digest ------------------------------------------------------------ */

/* "<key>:<len>:<value>\n" */
static void approval_field(sg_buf_t *b, const char *key, const char *v, size_t n)
{
    sg_buf_append(b, key, strlen(key));
    sg_buf_lit(b, ":");
    sg_buf_append_u64(b, n);
    sg_buf_lit(b, ":");
    sg_buf_append(b, v, n);
    sg_buf_lit(b, "\n");
}

/* Unsigned bytes, a prefix first: memcmp over the common length, then the length. */
static int approval_str_cmp(sg_str_t a, sg_str_t b)
{
    int c = a.n == 0 || b.n == 0 ? 0 : memcmp(a.p, b.p, SG_MIN(a.n, b.n));

    if (c != 0)
        return c;
    return (a.n > b.n) - (a.n < b.n);
}

static int approval_group_cmp(const void *x, const void *y)
{
    const sg_approval_group_t *a = *(const sg_approval_group_t *const *)x;
    const sg_approval_group_t *b = *(const sg_approval_group_t *const *)y;
    int c = approval_str_cmp(a->fault_domain, b->fault_domain);

    return c != 0 ? c : approval_str_cmp(a->device_group, b->device_group);
}

int sg_approval_canonical(const sg_approval_op_t *op, sg_buf_t *out)
{
    const sg_approval_group_t **v = NULL;
    const char *ticket = op->ticket != NULL ? op->ticket : "";
    size_t i, nuniq = 0;
    sg_buf_t b;
    int rc;

    /* Sorted pointers: the caller's array stays in the client's order. */
    if (op->ngroups > 0) {
        v = malloc(op->ngroups * sizeof(*v));
        if (v == NULL)
            return SG_ENOMEM;
        for (i = 0; i < op->ngroups; i++)
            v[i] = &op->groups[i];
        qsort(v, op->ngroups, sizeof(*v), approval_group_cmp);
        for (i = 0; i < op->ngroups; i++)
            if (i == 0 || approval_group_cmp(&v[i - 1], &v[i]) != 0)
                v[nuniq++] = v[i];
    }
    /* Sticky: one check at the end; then appended to out in one piece. */
    sg_buf_init_sticky(&b, out->max);
    sg_buf_lit(&b, "smsguard-approval-v1\n");
    approval_field(&b, "upstream", op->upstream, strlen(op->upstream));
    approval_field(&b, "release", op->release, strlen(op->release));
    approval_field(&b, "provider", op->provider, strlen(op->provider));
    approval_field(&b, "method", op->method, strlen(op->method));
    if (op->force)
        sg_buf_lit(&b, "force:true\n");
    else
        sg_buf_lit(&b, "force:false\n");
    approval_field(&b, "ticket", ticket, strlen(ticket));
    sg_buf_lit(&b, "groups:");
    sg_buf_append_u64(&b, nuniq);
    sg_buf_lit(&b, "\n");
    for (i = 0; i < nuniq; i++) {
        sg_buf_lit(&b, "group:");
        sg_buf_append_u64(&b, v[i]->fault_domain.n);
        sg_buf_lit(&b, ":");
        sg_buf_append(&b, v[i]->fault_domain.p, v[i]->fault_domain.n);
        sg_buf_lit(&b, "/");
        sg_buf_append_u64(&b, v[i]->device_group.n);
        sg_buf_lit(&b, ":");
        sg_buf_append(&b, v[i]->device_group.p, v[i]->device_group.n);
        sg_buf_lit(&b, "\n");
    }
    free(v);
    rc = sg_buf_err(&b);
    if (rc == SG_OK)
        rc = sg_buf_append(out, sg_buf_head(&b), sg_buf_avail(&b));
    sg_buf_dispose(&b);
    return rc;
}

int sg_approval_digest(const sg_approval_op_t *op, unsigned char out[32])
{
    sg_buf_t b;
    int rc;

    sg_buf_init(&b, (size_t)-1);
    rc = sg_approval_canonical(op, &b);
    if (rc == SG_OK)
        rc = sg__pol_sha256(sg_buf_head(&b), sg_buf_avail(&b), out);
    sg_buf_dispose(&b);
    return rc == SG_OK ? SG_OK : SG_ENOMEM;
}

/* ---- approvers ----------------------------------------------------------------------- */

typedef struct {
    sg_pol_key_t key; /* key.kid is the approver's name */
    char **tenants;   /* patterns */
    size_t ntenants;
} approval_approver_t;

struct sg_approvers_s {
    approval_approver_t *v;
    size_t n;
};

sg_approvers_t *sg_approvers_new(void)
{
    return calloc(1, sizeof(sg_approvers_t));
}

static void approval_approver_dispose(approval_approver_t *ap)
{
    free((char *)ap->key.kid);
    EVP_PKEY_free(ap->key.pkey);
    for (size_t i = 0; i < ap->ntenants; i++)
        free(ap->tenants[i]);
    free(ap->tenants);
}

void sg_approvers_free(sg_approvers_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        approval_approver_dispose(&a->v[i]);
    free(a->v);
    free(a);
}

/* 1 when s[0, n) holds no byte below 0x20 and no DEL: names and jtis go to audit records. */
static int approval_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static const approval_approver_t *approval_find(const sg_approvers_t *a, const char *name,
                                                size_t n)
{
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->v[i].key.kid) == n && memcmp(a->v[i].key.kid, name, n) == 0)
            return &a->v[i];
    return NULL;
}

/* The key's alg (EdDSA for Ed25519, ES256 for P-256), or NULL with the reason. */
static EVP_PKEY *approval_load_key(const char *pem, size_t n, sg_jwt_alg_t *alg, const char **why)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)SG_MIN(n, (size_t)1 << 20));
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *ctx = NULL;

    BIO_free(bio);
    if (pkey == NULL) {
        *why = "not a PEM public key";
        return NULL;
    }
    *alg = EVP_PKEY_is_a(pkey, "ED25519") ? SG_JWT_EDDSA : SG_JWT_ES256;
    if (!EVP_PKEY_is_a(pkey, "ED25519") && !EVP_PKEY_is_a(pkey, "EC"))
        *why = "not an Ed25519 or P-256 public key";
    else
        *why = sg_conf_jwt_key_why(pkey, *alg); /* EC: on P-256 */
    /*
     * One verification set up now, while the list is built: a key decoded from PEM may be
     * exported to its provider lazily, and that cache is filled here rather than raced for
     * by the workers (as policy/keys.c does).
     */
    if (*why == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL)
            *why = "out of memory";
        else if (EVP_DigestVerifyInit(ctx, NULL,
                                      *alg == SG_JWT_EDDSA ? NULL : sg__pol_md_sha256(), NULL,
                                      pkey) != 1)
            *why = "key cannot verify signatures";
        EVP_MD_CTX_free(ctx);
    }
    if (*why != NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

int sg_approvers_add(sg_approvers_t *a, const char *name, const char *pem, size_t n,
                     const char *const *tenants, size_t ntenants, char *err, size_t errlen)
{
    approval_approver_t ap = {0}, *grown;
    const char *why = NULL;
    size_t len = strlen(name);

    if (len == 0 || len > SG_APPROVAL_NAME_MAX || !approval_printable(name, len))
        return sg_errf(err, errlen, "approver name must be 1 to %d printable bytes",
                            SG_APPROVAL_NAME_MAX);
    if (approval_find(a, name, len) != NULL)
        return sg_errf(err, errlen, "approver '%s': named twice", name);
    if (ntenants == 0)
        return sg_errf(err, errlen, "approver '%s': no tenants", name);
    ap.key.pkey = approval_load_key(pem, n, &ap.key.alg, &why);
    ERR_clear_error(); /* the caller reports through err, not the OpenSSL queue */
    if (ap.key.pkey == NULL)
        return sg_errf(err, errlen, "approver '%s': %s", name, why);
    ap.key.kid = strdup(name);
    ap.tenants = calloc(ntenants, sizeof(*ap.tenants));
    if (ap.key.kid == NULL || ap.tenants == NULL)
        goto nomem;
    for (; ap.ntenants < ntenants; ap.ntenants++)
        if ((ap.tenants[ap.ntenants] = strdup(tenants[ap.ntenants])) == NULL)
            goto nomem;
    grown = realloc(a->v, (a->n + 1) * sizeof(*a->v));
    if (grown == NULL)
        goto nomem;
    a->v = grown;
    a->v[a->n++] = ap;
    return 0;
nomem:
    approval_approver_dispose(&ap);
    return sg_errf(err, errlen, "approver '%s': out of memory", name);
}

static int approval_may_approve(const approval_approver_t *ap, const char *tenant)
{
    for (size_t i = 0; i < ap->ntenants; i++)
        if (sg__pol_pattern_match(ap->tenants[i], tenant, strlen(tenant)))
            return 1;
    return 0;
}

/* ---- replay cache -------------------------------------------------------------------- */

struct sg_approval_jti_s {
    unsigned char id[32]; /* SHA-256 of approver NUL jti: fixed size, whatever their lengths */
    long long until;
};

int sg_approval_jtis_init(sg_approval_jtis_t *c, size_t capacity)
{
    c->n = 0;
    c->capacity = capacity;
    c->v = calloc(capacity > 0 ? capacity : 1, sizeof(*c->v));
    if (c->v == NULL)
        return SG_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    return SG_OK;
}

void sg_approval_jtis_dispose(sg_approval_jtis_t *c)
{
    free(c->v);
    c->v = NULL;
    c->n = c->capacity = 0;
    pthread_mutex_destroy(&c->lock);
}

/* Drops the entries whose time has come; the caller holds the lock. */
static void approval_jtis_expire(sg_approval_jtis_t *c, long long now)
{
    size_t i = 0;

    while (i < c->n)
        if (c->v[i].until <= now)
            c->v[i] = c->v[--c->n];
        else
            i++;
}

/* The cache's key of (approver, jti): SG_OK, SG_ERR (longer than any statement holds) or
 * SG_ENOMEM. */
static int approval_jti_id(const char *approver, const char *jti, size_t jti_len,
                           unsigned char id[32])
{
    unsigned char key[SG_APPROVAL_NAME_MAX + 1 + SG_APPROVAL_JTI_MAX];
    size_t an = strlen(approver);

    if (an > SG_APPROVAL_NAME_MAX || jti_len > SG_APPROVAL_JTI_MAX)
        return SG_ERR; /* never issued: approval.h bounds both */
    memcpy(key, approver, an);
    key[an] = '\0'; /* names hold no NUL: ("a", "bc") and ("ab", "c") differ */
    memcpy(key + an + 1, jti, jti_len);
    return sg__pol_sha256(key, an + 1 + jti_len, id) != 0 ? SG_ENOMEM : SG_OK;
}

int sg_approval_jtis_use(sg_approval_jtis_t *c, const char *approver, const char *jti,
                         size_t jti_len, long long until, long long now)
{
    unsigned char id[32];
    int rc = approval_jti_id(approver, jti, jti_len, id);

    if (rc != SG_OK)
        return rc;
    pthread_mutex_lock(&c->lock);
    approval_jtis_expire(c, now);
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(c->v[i].id, id, sizeof(id)) == 0) {
            rc = SG_ERR;
            goto out;
        }
    if (c->n == c->capacity) {
        rc = SG_ETOOBIG;
        goto out;
    }
    memcpy(c->v[c->n].id, id, sizeof(id));
    c->v[c->n++].until = until;
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int sg_approval_jtis_seen(sg_approval_jtis_t *c, const char *approver, const char *jti,
                          size_t jti_len, long long now)
{
    unsigned char id[32];
    int rc = approval_jti_id(approver, jti, jti_len, id);

    if (rc != SG_OK)
        return rc;
    /* Nothing is dropped here: an entry whose time has come is only not counted. */
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n && rc == SG_OK; i++)
        if (c->v[i].until > now && memcmp(c->v[i].id, id, sizeof(id)) == 0)
            rc = SG_ERR;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

size_t sg_approval_jtis_count(sg_approval_jtis_t *c)
{
    size_t n;

    pthread_mutex_lock(&c->lock);
    n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* ---- verification -------------------------------------------------------------------- */

static const char *const approval_header_why[] = {
    [SG_JOSE_HDR_CRIT] = "approval crit header refused",
    [SG_JOSE_HDR_KEY] = "approval key in header refused",
    [SG_JOSE_HDR_MALFORMED] = "approval malformed",
    [SG_JOSE_HDR_ALG_NONE] = "approval alg none refused",
    [SG_JOSE_HDR_ALG_UNKNOWN] = "approval unsupported alg",
};

/* 1 when every member of object o is named in names[0, n). */
static int approval_only(const sg_json_t *o, const char *const *names, size_t n)
{
    for (size_t i = 0; i < o->nkids; i++) {
        size_t j = 0;

        while (j < n && strcmp(o->kids[i]->name.p, names[j]) != 0)
            j++;
        if (j == n)
            return 0;
    }
    return 1;
}

static int approval_segment(sg_pool_t *scratch, const char *s, size_t n, unsigned char *buf,
                            const sg_json_t **out, const char **reason)
{
    int dup, rc = sg__jose_json(scratch, s, n, buf, out, &dup);

    if (rc == SG_ENOMEM)
        *reason = "out of memory";
    else if (rc != SG_OK)
        *reason = dup ? "approval duplicate member" : "approval malformed";
    return rc;
}

/* The header: returns the approver, or NULL with *reason. */
static const approval_approver_t *approval_header(const sg_approvers_t *a, const sg_json_t *h,
                                                  const char **reason)
{
    static const char *const members[] = {"alg", "kid", "typ"};
    const sg_json_t *kid = sg_json_get(h, "kid", 3);
    const sg_json_t *typ = sg_json_get(h, "typ", 3);
    const approval_approver_t *ap;
    sg_jwt_alg_t alg = 0;
    sg_jose_hdr_t bad = sg__jose_header(h, &alg);

    if (bad != SG_JOSE_HDR_OK) {
        *reason = approval_header_why[bad];
        return NULL;
    }
    /* Approver keys are public keys: an HMAC or RSA statement is none of ours. */
    if (alg != SG_JWT_EDDSA && alg != SG_JWT_ES256) {
        *reason = "approval unsupported alg";
        return NULL;
    }
    if (!approval_only(h, members, SG_ARRAY_SIZE(members))) {
        *reason = "approval malformed";
        return NULL;
    }
    /* RFC 8725 3.11: explicitly typed, so no other JWT by the same key passes for one. */
    if (!sg_json_is_string(typ, SG_APPROVAL_TYP, strlen(SG_APPROVAL_TYP))) {
        *reason = "approval wrong typ";
        return NULL;
    }
    if (kid == NULL || kid->type != SG_JSON_STRING) {
        *reason = "approval malformed";
        return NULL;
    }
    ap = approval_find(a, kid->str.p, kid->str.n);
    if (ap == NULL) {
        *reason = "approval unknown approver";
        return NULL;
    }
    /* RFC 8725 3.1: the alg is the key's. */
    if (ap->key.alg != alg) {
        *reason = "approval alg does not match key";
        return NULL;
    }
    return ap;
}

/* The payload, after the signature held. */
static int approval_claims(const approval_approver_t *ap, const sg_json_t *c,
                           const sg_approval_check_t *chk, sg_approval_t *out,
                           const char **reason)
{
    static const char *const members[] = {"dig", "iat", "exp", "jti", "sub"};
    const sg_json_t *dig = sg_json_get(c, "dig", 3);
    const sg_json_t *iat = sg_json_get(c, "iat", 3);
    const sg_json_t *exp = sg_json_get(c, "exp", 3);
    const sg_json_t *jti = sg_json_get(c, "jti", 3);
    const sg_json_t *sub = sg_json_get(c, "sub", 3);
    char want[APPROVAL_DIG_B64];
    double t_exp, t_iat;
    long long now = chk->now, leeway = chk->leeway_s;
    int rc;

    if (!approval_only(c, members, SG_ARRAY_SIZE(members))) {
        *reason = "approval unknown claim";
        return SG_ERR;
    }
    if (dig == NULL || dig->type != SG_JSON_STRING || iat == NULL || exp == NULL ||
        jti == NULL || jti->type != SG_JSON_STRING) {
        *reason = "approval missing claim";
        return SG_ERR;
    }
    if (sg__jose_date(exp, &t_exp) != 0 || sg__jose_date(iat, &t_iat) != 0 || t_exp <= t_iat) {
        *reason = "approval bad dates";
        return SG_ERR;
    }
    if (jti->str.n == 0 || jti->str.n > SG_APPROVAL_JTI_MAX ||
        !approval_printable(jti->str.p, jti->str.n)) {
        *reason = "approval bad jti";
        return SG_ERR;
    }
    if (sub != NULL && !sg_json_is_string(sub, ap->key.kid, strlen(ap->key.kid))) {
        *reason = "approval sub is not the approver";
        return SG_ERR;
    }
    out->exp = (long long)t_exp; /* floor: non-negative */
    out->iat = (long long)t_iat;
    if ((double)now >= t_exp + (double)leeway) {
        *reason = "approval expired";
        return SG_ERR;
    }
    /* The statement's life is bounded by the gateway, not by the signer's choice. */
    if (t_exp > (double)now + (double)chk->max_s + (double)leeway) {
        *reason = "approval exp too far";
        return SG_ERR;
    }
    if (t_iat > (double)now + (double)leeway) {
        *reason = "approval issued in the future";
        return SG_ERR;
    }
    sg_b64url_put(want, chk->digest, 32);
    if (dig->str.n != APPROVAL_DIG_B64 || CRYPTO_memcmp(dig->str.p, want, sizeof(want)) != 0) {
        *reason = "approval digest mismatch";
        return SG_ERR;
    }
    if (!approval_may_approve(ap, chk->tenant)) {
        *reason = "approver may not approve for the tenant";
        return SG_ERR;
    }
    /* Four eyes are two people: the approver's name is compared with the requester's
     * subject, the two names an operator gives one person. */
    if (strcmp(ap->key.kid, chk->requester) == 0) {
        *reason = "approval by the requester";
        return SG_ERR;
    }
    if (chk->jtis == NULL)
        return SG_OK;
    /* Kept until no clock within the leeway would accept the statement again. A dry run
     * only looks: it tells whether the real request would be refused as a replay. */
    rc = chk->dry_run ? sg_approval_jtis_seen(chk->jtis, ap->key.kid, jti->str.p, jti->str.n,
                                              now)
                      : sg_approval_jtis_use(chk->jtis, ap->key.kid, jti->str.p, jti->str.n,
                                             out->exp + 1 + leeway, now);
    if (rc == SG_ENOMEM) {
        *reason = "out of memory";
        return SG_ENOMEM;
    }
    if (rc != SG_OK) {
        *reason = rc == SG_ETOOBIG ? "approval replay cache full" : "approval replayed";
        return SG_ERR;
    }
    return SG_OK;
}

static int approval_verify(const sg_approvers_t *a, const char *s, size_t n,
                           const sg_approval_check_t *chk, sg_approval_t *out,
                           const char **reason)
{
    unsigned char buf[SG_APPROVAL_MAX];
    sg_jose_parts_t t;
    const sg_json_t *hdr, *claims;
    const approval_approver_t *ap;
    sg_pool_t scratch;
    long siglen;
    int rc, v;

    if (n > SG_APPROVAL_MAX) {
        *reason = "approval too large";
        return SG_ERR;
    }
    if (sg__jose_split(s, n, &t) != 0) {
        *reason = "approval malformed";
        return SG_ERR;
    }
    sg_pool_init(&scratch, APPROVAL_SCRATCH_CHUNK);
    if ((rc = approval_segment(&scratch, t.h, t.hn, buf, &hdr, reason)) != SG_OK)
        goto out;
    rc = SG_ERR;
    if ((ap = approval_header(a, hdr, reason)) == NULL)
        goto out;
    out->approver = ap->key.kid;
    if ((siglen = sg_b64url_decode(buf, t.s, t.sn)) <= 0) {
        *reason = "approval malformed";
        goto out;
    }
    /* RFC 7515 5.2 step 8: the signing input is the two segments exactly as received. */
    v = sg__jose_verify(&ap->key, (const unsigned char *)s, t.signed_len, buf, (size_t)siglen);
    if (v < 0) {
        rc = v;
        *reason = "out of memory";
        goto out;
    }
    if (v != 1) {
        *reason = "approval bad signature";
        goto out;
    }
    if ((rc = approval_segment(&scratch, t.p, t.pn, buf, &claims, reason)) != SG_OK)
        goto out;
    rc = approval_claims(ap, claims, chk, out, reason);
out:
    sg_pool_dispose(&scratch);
    return rc;
}

int sg_approval_verify(const sg_approvers_t *a, const char *s, size_t n,
                       const sg_approval_check_t *chk, sg_approval_t *out, const char **reason)
{
    int rc;

    memset(out, 0, sizeof(*out));
    *reason = NULL;
    /* A refused signature leaves errors in this thread's OpenSSL queue; a worker's next
     * SSL_get_error() would read them against an unrelated connection. */
    ERR_set_mark();
    rc = approval_verify(a, s, n, chk, out, reason);
    ERR_pop_to_mark();
    if (rc == SG_OK)
        *reason = NULL;
    return rc;
}
