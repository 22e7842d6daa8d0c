/*
 * filters/flt_authn.c - authenticate the caller of a guarded route (docs/design.md "The
 * chain on guarded routes"), from the request headers alone, so that the body of an unknown
 * caller is never parsed.
 *
 * `Authorization: Bearer <token>`: a static token or a JWT, decided by
 * policy/ (pure). A verified JWT is cached per worker thread by the SHA-256 of
 * the token until it expires, so a repeated token costs one hash and one
 * lookup; no lock is taken. The Authorization header itself is never forwarded
 * (proxy/headers.c drops it for every request).
 */
#include "filters/flt_authn.h"
#include "filters/canon.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define AUTHN_CACHE_SLOTS 4096 /* direct-mapped; a collision simply replaces the entry */

typedef struct {
    unsigned char key[32];         /* SHA-256 of the token */
    uint64_t gen;                  /* generation whose policy verified it (never reused) */
    long long valid_until;         /* exp + leeway */
    sg_principal_t *who;           /* one malloc'd block */
} authn_slot_t;

static _Thread_local authn_slot_t *authn_cache;

typedef struct {
    sg_principal_t who; /* valid when authenticated; its strings are in r->pool */
    int authenticated;
} authn_ctx_t;

/* The generation's policy: keys, static tokens and rules, built once per configuration. */
static int authn_gen_init(sg_gen_t *g, void **fgen, char *err, size_t errlen)
{
    char why[SG_CONF_ERR_MAX];

    if (sg_policy_new(g->conf, (sg_policy_t **)fgen, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", g->conf->file, why);
        return SG_ERR;
    }
    return SG_OK;
}

static void authn_gen_deinit(void *fgen)
{
    if (fgen != NULL)
        sg_policy_free(fgen);
}

const sg_policy_t *sg_flt_authn_policy(const sg_req_t *r)
{
    return sg_flt_gen(r, &sg_flt_authn);
}

const sg_principal_t *sg_flt_authn_principal(const sg_req_t *r)
{
    const authn_ctx_t *ctx = sg_flt_ctx_peek(r, &sg_flt_authn);

    return ctx != NULL && ctx->authenticated ? &ctx->who : NULL;
}

static void authn_thread_exit(void)
{
    if (authn_cache == NULL)
        return;
    for (size_t i = 0; i < AUTHN_CACHE_SLOTS; i++)
        free(authn_cache[i].who);
    free(authn_cache);
    authn_cache = NULL;
}

/* The token of `Authorization: Bearer <token>` (RFC 6750 2.1), or NULL with *why. */
static const char *authn_bearer(sg_req_t *r, size_t *n, const char **why)
{
    const sg_header_t *h = sg_headers_get(&r->headers, "authorization");
    const char *p, *e;

    if (h == NULL) {
        *why = "no Authorization header";
        return NULL;
    }
    if (sg_headers_count(&r->headers, "authorization") != 1) {
        *why = "more than one Authorization header";
        return NULL;
    }
    p = h->value.p;
    e = p + h->value.n;
    if (e - p < 7 || !sg_strcaseeq(p, 7, "bearer ", 7)) {
        *why = "Authorization is not a Bearer token";
        return NULL;
    }
    p += 7;
    while (p < e && *p == ' ')
        p++;
    if (p == e) {
        *why = "empty Bearer token";
        return NULL;
    }
    *n = (size_t)(e - p);
    return p;
}

static int authn_refuse(sg_req_t *r, const char *why)
{
    sg_fault_t f = {.type = "NotAuthenticated",
                    .message = "The session is not authenticated.",
                    .privilege_id = "",
                    .object_type = r->route == SG_ROUTE_STOP_TEST ? "VasaProvider" : "SmsTask",
                    .object_value = r->moid.p};

    /* The client learns only that it is not authenticated; the audit record and the
     * debug log say why. The token is never logged. */
    r->reason = why;
    r->decision = SG_DECISION_DENY;
    r->term = "PA";
    sg_log(SG_LOG_DEBUG, "req=%s not authenticated: %s", r->request_id, why);
    sg_req_fault_ex(r, 500, &f);
    return SG_FLT_REPLIED;
}

static int authn_on_request_headers(sg_req_t *r, void *vctx)
{
    authn_ctx_t *ctx = vctx;
    const sg_policy_t *pol = sg_flt_authn_policy(r);
    unsigned char key[32];
    int hashed = 0;
    sg_principal_t who, *cached;
    authn_slot_t *slot = NULL;
    const char *token, *why = NULL;
    long long now = (long long)time(NULL);
    size_t n = 0;
    int rv;

    if (!r->guarded)
        return SG_FLT_NEXT;
    if ((token = authn_bearer(r, &n, &why)) == NULL)
        return authn_refuse(r, why);

    if (authn_cache == NULL)
        authn_cache = calloc(AUTHN_CACHE_SLOTS, sizeof(*authn_cache));
    if (authn_cache != NULL && sg_pol_token_hash(token, n, key) == 0) {
        hashed = 1;
        slot = &authn_cache[(key[0] | (unsigned)key[1] << 8) % AUTHN_CACHE_SLOTS];
        if (slot->who != NULL && slot->gen == r->gen->id && now < slot->valid_until &&
            CRYPTO_memcmp(slot->key, key, sizeof(key)) == 0) {
            cached = slot->who;
            rv = sg_pol_principal_copy(&r->pool, &who, cached);
            if (rv != 0)
                return SG_ENOMEM;
            goto authenticated;
        }
    }
    /* The cache key is the token's hash, the one a static token is compared by. */
    rv = hashed ? sg_pol_authenticate_hashed(pol, &r->pool, token, n, key, now, &who, &why)
                : sg_pol_authenticate(pol, &r->pool, token, n, now, &who, &why);
    if (rv == SG_ENOMEM)
        return SG_ENOMEM;
    if (rv != 0)
        return authn_refuse(r, why);
    if (slot != NULL && who.exp > 0) {
        /* Only JWTs are worth caching: a static token is one hash and a compare. */
        free(slot->who);
        slot->who = sg_pol_principal_dup(&who);
        memcpy(slot->key, key, sizeof(key));
        slot->gen = r->gen->id;
        slot->valid_until = who.exp + r->conf->policy.jwt.leeway_s;
    }

authenticated:
    if (who.cnf_x5t_s256 != NULL) {
        /* RFC 8705: a certificate-bound token is only good over its own certificate. */
        X509 *cert = SSL_get0_peer_certificate(r->conn->ssl);
        unsigned char *der = NULL;
        int len = cert != NULL ? i2d_X509(cert, &der) : 0;

        rv = sg_pol_check_cert_binding(&who, len > 0 ? der : NULL, len > 0 ? (size_t)len : 0);
        OPENSSL_free(der);
        if (rv != 0)
            return authn_refuse(r, "jwt bound to another client certificate");
    }
    ctx->who = who;
    ctx->authenticated = 1;
    r->subject = who.subject; /* the summary metrics and the access log read */
    r->tenant = who.tenant;
    return SG_FLT_NEXT;
}

const sg_filter_ops_t sg_flt_authn = {
    .name = "authenticate",
    .ctx_size = sizeof(authn_ctx_t),
    .gen_init = authn_gen_init,
    .gen_deinit = authn_gen_deinit,
    .on_request_headers = authn_on_request_headers,
    .thread_exit = authn_thread_exit,
};
