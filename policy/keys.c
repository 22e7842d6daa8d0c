/*
 * policy/keys.c - building an sg_policy_t from a loaded configuration, and freeing it.
 *
 * This file owns the only I/O of policy/: reading the policy.jwt.keys files (PEM public
 * keys, raw HS256 secrets) when a policy is built, at start-up and at every reload. It
 * also turns the configuration's lists into lookup tables (keys by kid, roles by name with
 * their privileges resolved to bits, tenants by name) so that a decision does no string
 * scan over the whole configuration. Verifying and deciding are token.c, jwt.c, rules.c.
 */
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/pkey.h"
#include "policy/policy-int.h"

#define KEYS_FILE_MAX (1u << 20) /* no PEM public key or HMAC secret is near 1 MiB */
#define KEYS_SECRET_MIN 32       /* RFC 7518 3.2: an HS256 key has at least 256 bits */

/* Load and check the key of one policy.jwt.keys element. */
static int keys_load_one(const sg_conf_jwt_key_t *ck, sg_pol_key_t *k, char *err, size_t errlen)
{
    const char *path = ck->alg == SG_JWT_HS256 ? ck->secret_file : ck->public_key;
    const char *why = NULL;
    sg_file_t f = {NULL, 0, 0};
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    k->kid = ck->kid;
    k->alg = ck->alg;
    if (path == NULL || path[0] == '\0')
        return sg_errf(err, errlen, "'policy.jwt.keys' kid '%s': no %s", ck->kid,
                        ck->alg == SG_JWT_HS256 ? "secret_file" : "public_key");
    if (sg_file_read(&f, path, KEYS_FILE_MAX, SG_FILE_SECRET, &why) != SG_OK) {
        sg_errf(err, errlen, "'policy.jwt.keys' kid '%s': '%s': %s", ck->kid, path, why);
        goto out;
    }
    if (ck->alg == SG_JWT_HS256) {
        /* A short HMAC key can be brute-forced offline from one token (RFC 7518 3.2). */
        if (f.len < KEYS_SECRET_MIN) {
            sg_errf(err, errlen, "'policy.jwt.keys' kid '%s': '%s': shorter than %d bytes",
                     ck->kid, path, KEYS_SECRET_MIN);
            goto out;
        }
        k->secret = f.data; /* sg_secret_free() in sg_policy_free() */
        k->secret_len = f.len;
        f.data = NULL;
        rc = 0;
        goto out;
    }
    bio = BIO_new_mem_buf(f.data, (int)f.len);
    if (bio == NULL) {
        sg_errf(err, errlen, "'policy.jwt.keys' kid '%s': out of memory", ck->kid);
        goto out;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pkey == NULL) {
        sg_errf(err, errlen, "'policy.jwt.keys' kid '%s': '%s': not a PEM public key", ck->kid,
                 path);
        goto out;
    }
    /*
     * The key type is checked against the alg again, with sg_conf_load()'s own check: the
     * file may have been replaced since, and a key of the wrong type is how algorithm
     * confusion starts.
     */
    why = sg_conf_jwt_key_why(pkey, ck->alg);
    /*
     * Set up one verification now, while single-threaded: a key decoded from PEM may be
     * exported to its provider lazily, and that cache is filled here rather than raced for
     * by the workers. It also proves the key is usable before the first request.
     */
    if (why == NULL) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        if (ctx == NULL)
            why = "out of memory";
        else if (EVP_DigestVerifyInit(ctx, NULL,
                                      ck->alg == SG_JWT_EDDSA ? NULL : sg__pol_md_sha256(), NULL,
                                      pkey) != 1)
            why = "key cannot verify signatures";
        EVP_MD_CTX_free(ctx);
    }
    if (why != NULL) {
        sg_errf(err, errlen, "'policy.jwt.keys' kid '%s': '%s': %s", ck->kid, path, why);
        goto out;
    }
    k->pkey = pkey;
    pkey = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    sg_file_dispose(&f);
    ERR_clear_error(); /* the caller reports through ERR, not the OpenSSL queue */
    return rc;
}

static int keys_cmp_key(const void *a, const void *b)
{
    return strcmp(((const sg_pol_key_t *)a)->kid, ((const sg_pol_key_t *)b)->kid);
}

static int keys_cmp_role(const void *a, const void *b)
{
    return strcmp(((const sg_pol_role_t *)a)->name, ((const sg_pol_role_t *)b)->name);
}

static int keys_cmp_tenant(const void *a, const void *b)
{
    return strcmp((*(const sg_conf_tenant_t *const *)a)->name,
                  (*(const sg_conf_tenant_t *const *)b)->name);
}

/* The privileges of one role that decisions ask about, as SG_POL_G_* bits. */
static unsigned keys_role_grants(const sg_conf_role_t *r, const char *force_privilege)
{
    unsigned g = 0;

    for (size_t i = 0; i < r->privileges.n; i++) {
        const char *pv = r->privileges.v[i];

        if (strcmp(pv, SG_POL_PRIV_CONFIGURE) == 0)
            g |= SG_POL_G_CONFIGURE;
        if (strcmp(pv, SG_POL_PRIV_VIEW) == 0)
            g |= SG_POL_G_VIEW;
        if (force_privilege != NULL && strcmp(pv, force_privilege) == 0)
            g |= SG_POL_G_FORCE;
    }
    return g;
}

int sg_policy_new(const sg_conf_t *conf, sg_policy_t **out, char *err, size_t errlen)
{
    sg_policy_t *p;
    size_t i;

    *out = NULL;
    if (conf == NULL)
        return sg_errf(err, errlen, "'policy': no configuration");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return sg_errf(err, errlen, "'policy': out of memory");
    /* The configuration is immutable and refcounted; the cast only takes a reference. */
    p->conf = sg_conf_ref((sg_conf_t *)conf);
    p->tokens = conf->policy.tokens;
    p->ntokens = conf->policy.ntokens;
    p->force_privilege =
        conf->policy.force_privilege != NULL && conf->policy.force_privilege[0] != '\0'
            ? conf->policy.force_privilege
            : NULL;

    p->jwt_enabled = conf->policy.jwt.enabled;
    p->leeway_s = conf->policy.jwt.leeway_s;
    if (p->jwt_enabled && conf->policy.jwt.nkeys > 0) {
        p->keys = calloc(conf->policy.jwt.nkeys, sizeof(*p->keys));
        if (p->keys == NULL) {
            sg_errf(err, errlen, "'policy': out of memory");
            goto fail;
        }
        for (i = 0; i < conf->policy.jwt.nkeys; i++) {
            if (keys_load_one(&conf->policy.jwt.keys[i], &p->keys[i], err, errlen) != 0)
                goto fail;
            p->nkeys++;
        }
        qsort(p->keys, p->nkeys, sizeof(*p->keys), keys_cmp_key);
        for (i = 1; i < p->nkeys; i++)
            if (strcmp(p->keys[i - 1].kid, p->keys[i].kid) == 0) {
                /* Two keys for one kid would make the choice depend on the token. */
                sg_errf(err, errlen, "'policy.jwt.keys' kid '%s': duplicate kid", p->keys[i].kid);
                goto fail;
            }
    }

    if (conf->policy.nroles > 0) {
        p->roles = calloc(conf->policy.nroles, sizeof(*p->roles));
        if (p->roles == NULL) {
            sg_errf(err, errlen, "'policy': out of memory");
            goto fail;
        }
        for (i = 0; i < conf->policy.nroles; i++) {
            p->roles[i].name = conf->policy.roles[i].name;
            p->roles[i].grants = keys_role_grants(&conf->policy.roles[i], p->force_privilege);
            p->roles[i].privileges = &conf->policy.roles[i].privileges;
        }
        p->nroles = conf->policy.nroles;
        qsort(p->roles, p->nroles, sizeof(*p->roles), keys_cmp_role);
    }

    if (conf->policy.ntenants > 0) {
        p->tenants = calloc(conf->policy.ntenants, sizeof(*p->tenants));
        if (p->tenants == NULL) {
            sg_errf(err, errlen, "'policy': out of memory");
            goto fail;
        }
        for (i = 0; i < conf->policy.ntenants; i++)
            p->tenants[i] = &conf->policy.tenants[i];
        p->ntenants = conf->policy.ntenants;
        qsort(p->tenants, p->ntenants, sizeof(*p->tenants), keys_cmp_tenant);
    }

    *out = p;
    return 0;
fail:
    sg_policy_free(p);
    return -1;
}

void sg_policy_free(sg_policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nkeys; i++) {
        EVP_PKEY_free(p->keys[i].pkey);
        if (p->keys[i].secret != NULL)
            sg_secret_free(p->keys[i].secret, p->keys[i].secret_len + 1);
    }
    free(p->keys);
    free(p->roles);
    free(p->tenants);
    sg_conf_unref(p->conf);
    free(p);
}

const sg_conf_t *sg_policy_conf(const sg_policy_t *p)
{
    return p->conf;
}

const sg_pol_key_t *sg__pol_key_find(const sg_policy_t *p, const char *kid, size_t n)
{
    size_t lo = 0, hi = p->nkeys;

    /* Exact bytes: a kid with a NUL or any other spelling of a configured kid is unknown. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = p->keys[mid].kid;
        size_t kn = strlen(k);
        int c = memcmp(kid, k, n < kn ? n : kn);

        if (c == 0)
            c = n < kn ? -1 : n > kn ? 1 : 0;
        if (c == 0)
            return &p->keys[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
