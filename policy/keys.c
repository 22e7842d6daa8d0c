/*
 * policy/keys.c - building an sg_policy_t from a loaded configuration, and freeing it.
 *
 * This file owns the only I/O of policy/: reading the policy.jwt.keys files (PEM public
 * keys, raw HS256 secrets) when a policy is built, at start-up and at every reload. It
 * also turns the configuration's lists into lookup tables (keys by kid, roles by name with
 * their privileges resolved to bits, tenants by name) so that a decision does no string
 * scan over the whole configuration. Verifying and deciding are token.c, jwt.c, rules.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy-int.h"

#define KEYS_FILE_MAX (1u << 20) /* no PEM public key or HMAC secret is near 1 MiB */
#define KEYS_SECRET_MIN 32       /* RFC 7518 3.2: an HS256 key has at least 256 bits */
#define KEYS_RSA_MIN_BITS 2048   /* as conf/conf.c; RFC 7518 3.3 */

__attribute__((format(printf, 3, 4))) static int keys_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * Read PATH whole into a malloc'd buffer (NUL-terminated, *n without the NUL). Returns 0,
 * or -1 with WHY set to a static string or strerror(). The caller wipes and frees.
 */
static int keys_read_file(const char *path, unsigned char **out, size_t *n, const char **why)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    ssize_t r;
    int fd, rc = -1;

    *out = NULL;
    *n = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        *why = strerror(errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        goto out;
    }
    if ((unsigned long long)st.st_size > KEYS_FILE_MAX) {
        *why = "larger than 1 MiB";
        goto out;
    }
    buf = OPENSSL_malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        *why = "out of memory";
        goto out;
    }
    /* Read to EOF, not to st_size: the file may be growing or shrinking under us. */
    while (got <= (size_t)st.st_size) {
        r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = strerror(errno);
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > (size_t)st.st_size) {
        *why = "changed while being read";
        goto out;
    }
    buf[got] = '\0';
    *out = buf;
    *n = got;
    buf = NULL;
    rc = 0;
out:
    if (buf != NULL)
        OPENSSL_clear_free(buf, (size_t)st.st_size + 1);
    close(fd);
    return rc;
}

/* Load and check the key of one policy.jwt.keys element. */
static int keys_load_one(const sg_conf_jwt_key_t *ck, sg_pol_key_t *k, char *err, size_t errlen)
{
    const char *path = ck->alg == SG_JWT_HS256 ? ck->secret_file : ck->public_key;
    const char *why = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    char group[64];
    int rc = -1;

    k->kid = ck->kid;
    k->alg = ck->alg;
    if (path == NULL || path[0] == '\0')
        return keys_err(err, errlen, "'policy.jwt.keys' kid '%s': no %s", ck->kid,
                        ck->alg == SG_JWT_HS256 ? "secret_file" : "public_key");
    if (keys_read_file(path, &buf, &n, &why) != 0) {
        keys_err(err, errlen, "'policy.jwt.keys' kid '%s': '%s': %s", ck->kid, path, why);
        goto out;
    }
    if (ck->alg == SG_JWT_HS256) {
        /* A short HMAC key can be brute-forced offline from one token (RFC 7518 3.2). */
        if (n < KEYS_SECRET_MIN) {
            keys_err(err, errlen, "'policy.jwt.keys' kid '%s': '%s': shorter than %d bytes",
                     ck->kid, path, KEYS_SECRET_MIN);
            goto out;
        }
        k->secret = buf;
        k->secret_len = n;
        buf = NULL;
        rc = 0;
        goto out;
    }
    bio = BIO_new_mem_buf(buf, (int)n);
    if (bio == NULL) {
        keys_err(err, errlen, "'policy.jwt.keys' kid '%s': out of memory", ck->kid);
        goto out;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pkey == NULL) {
        keys_err(err, errlen, "'policy.jwt.keys' kid '%s': '%s': not a PEM public key", ck->kid,
                 path);
        goto out;
    }
    /*
     * The key type is checked against the alg again: the file may have been replaced since
     * sg_conf_load(), and a key of the wrong type is how algorithm confusion starts.
     */
    switch (ck->alg) {
    case SG_JWT_RS256:
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            why = "not an RSA public key (alg RS256)";
        else if (EVP_PKEY_get_bits(pkey) < KEYS_RSA_MIN_BITS)
            why = "RSA key shorter than 2048 bits";
        break;
    case SG_JWT_ES256:
        if (!EVP_PKEY_is_a(pkey, "EC") ||
            EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 ||
            strcmp(group, "prime256v1") != 0)
            why = "not an EC P-256 public key (alg ES256)";
        break;
    case SG_JWT_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519"))
            why = "not an Ed25519 public key (alg EdDSA)";
        break;
    default:
        why = "unsupported alg";
        break;
    }
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
        keys_err(err, errlen, "'policy.jwt.keys' kid '%s': '%s': %s", ck->kid, path, why);
        goto out;
    }
    k->pkey = pkey;
    pkey = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    if (buf != NULL)
        OPENSSL_clear_free(buf, n + 1);
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
        return keys_err(err, errlen, "'policy': no configuration");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return keys_err(err, errlen, "'policy': out of memory");
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
            keys_err(err, errlen, "'policy': out of memory");
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
                keys_err(err, errlen, "'policy.jwt.keys' kid '%s': duplicate kid", p->keys[i].kid);
                goto fail;
            }
    }

    if (conf->policy.nroles > 0) {
        p->roles = calloc(conf->policy.nroles, sizeof(*p->roles));
        if (p->roles == NULL) {
            keys_err(err, errlen, "'policy': out of memory");
            goto fail;
        }
        for (i = 0; i < conf->policy.nroles; i++) {
            p->roles[i].name = conf->policy.roles[i].name;
            p->roles[i].grants = keys_role_grants(&conf->policy.roles[i], p->force_privilege);
        }
        p->nroles = conf->policy.nroles;
        qsort(p->roles, p->nroles, sizeof(*p->roles), keys_cmp_role);
    }

    if (conf->policy.ntenants > 0) {
        p->tenants = calloc(conf->policy.ntenants, sizeof(*p->tenants));
        if (p->tenants == NULL) {
            keys_err(err, errlen, "'policy': out of memory");
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
            OPENSSL_clear_free(p->keys[i].secret, p->keys[i].secret_len + 1);
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
