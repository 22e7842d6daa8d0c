/*
 * policy/policy-int.h - internals shared by the files of policy/ (not for other modules).
 *
 * The layout of sg_policy_t, built by keys.c and only read afterwards, and the sg__pol_
 * helpers one file of policy/ provides to another.
 */
#ifndef SG_POLICY_INT_H
#define SG_POLICY_INT_H

#include <openssl/evp.h>

#include "policy/policy.h"

/* Bits of sg_pol_role_t.grants: the privileges a decision needs, resolved once. */
#define SG_POL_G_CONFIGURE 0x1u /* StorageViews.ConfigureService */
#define SG_POL_G_VIEW 0x2u      /* StorageViews.View */
#define SG_POL_G_FORCE 0x4u     /* policy.force_privilege (when set) */

typedef struct {
    const char *kid;       /* the configuration's string */
    sg_jwt_alg_t alg;      /* the only alg a token with this kid may use */
    EVP_PKEY *pkey;        /* RS256, ES256, EdDSA: the public key */
    unsigned char *secret; /* HS256: the raw secret (wiped on free) */
    size_t secret_len;
} sg_pol_key_t;

typedef struct {
    const char *name;
    unsigned grants; /* SG_POL_G_* */
    /* Every privilege name the role lists, for an operation whose privilege a deployment
     * overrides (operations.privilege): any name, so it cannot be a bit. */
    const sg_conf_strv_t *privileges;
} sg_pol_role_t;

struct sg_policy_s {
    sg_conf_t *conf; /* referenced; every string below points into it */

    const sg_conf_token_t *tokens; /* static tokens, conf order */
    size_t ntokens;

    int jwt_enabled;
    sg_pol_key_t *keys; /* sorted by kid (strcmp) for bsearch */
    size_t nkeys;
    long long leeway_s;

    sg_pol_role_t *roles; /* sorted by name */
    size_t nroles;
    const sg_conf_tenant_t **tenants; /* sorted by name */
    size_t ntenants;
    const char *force_privilege; /* NULL when "" (off) */
};

/* SHA-256 through a digest fetched once per process (an implicit fetch per call costs more
 * than the hash of a short token). Returns 0, or SG_ENOMEM with OUT zeroed. */
int sg__pol_sha256(const void *p, size_t n, unsigned char out[32]);
/* The SHA-256 digest fetched once (EVP_sha256() if the fetch failed). */
const EVP_MD *sg__pol_md_sha256(void);

/* jwt.c: verify a compact JWS and fill *who; return codes as sg_pol_authenticate(). */
int sg__pol_jwt_authenticate(const sg_policy_t *p, sg_pool_t *pool, const char *tok, size_t n,
                             long long now, sg_principal_t *who, const char **reason);

/* keys.c: the key for KID[0..N) or NULL. */
const sg_pol_key_t *sg__pol_key_find(const sg_policy_t *p, const char *kid, size_t n);

/* rules.c: tenant pattern match ("x", "x*", "*") of ID[0..N). */
int sg__pol_pattern_match(const char *pattern, const char *id, size_t n);

#endif
