/*
 * policy/token.c - bearer token dispatch, static tokens, token hashes, principal copies.
 *
 * A presented token is hashed once; the hash is compared with every configured static
 * token hash in constant time; a token that matches none and looks like a compact JWS goes
 * to jwt.c. The configuration holds only hashes (docs/design.md "Configuration"), so neither a
 * configuration leak nor this process's memory gives a usable static token away.
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy-int.h"

static pthread_once_t tok_sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *tok_sha256_md; /* fetched once, kept for the life of the process */

static void tok_sha256_fetch(void)
{
    tok_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *sg__pol_md_sha256(void)
{
    pthread_once(&tok_sha256_once, tok_sha256_fetch);
    return tok_sha256_md != NULL ? tok_sha256_md : EVP_sha256();
}

int sg__pol_sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 0;

    if (EVP_Digest(p, n, out, &len, sg__pol_md_sha256(), NULL) != 1 || len != 32) {
        memset(out, 0, 32);
        ERR_clear_error(); /* leave no error behind for SSL_get_error() on this thread */
        return SG_ENOMEM;
    }
    return 0;
}

int sg_pol_token_hash(const char *token, size_t n, unsigned char out[32])
{
    return sg__pol_sha256(token, n, out);
}

/* 1 when x == 0, else 0, without a branch on x. */
static uint32_t tok_ct_is_zero(uint32_t x)
{
    return (~(x | (0u - x))) >> 31;
}

/*
 * The index of the static token whose hash is H, or SIZE_MAX. Every entry is compared in
 * full and the loop never exits early: the time taken does not depend on whether, or
 * where, the token matched, so it cannot be used to find a token byte by byte or to learn
 * which entry is valid. (conf/conf.c refuses duplicate hashes, so at most one matches.)
 */
static size_t tok_static_find(const sg_policy_t *p, const unsigned char h[32])
{
    size_t idx = 0, found = 0;

    for (size_t i = 0; i < p->ntokens; i++) {
        size_t eq = (size_t)tok_ct_is_zero((uint32_t)CRYPTO_memcmp(h, p->tokens[i].sha256, 32));
        size_t mask = (size_t)0 - eq; /* all ones on a match */

        idx = (idx & ~mask) | (i & mask);
        found |= eq;
    }
    return found ? idx : SIZE_MAX;
}

/* The checks every token gets before its hash is used: the reason, or NULL. */
static const char *tok_refused(const char *token, size_t n)
{
    if (token == NULL || n == 0)
        return "empty token";
    /* Bounded before any work: hashing or parsing megabytes per request is a cheap DoS. */
    if (n > SG_POL_TOKEN_MAX)
        return "token too large";
    return NULL;
}

int sg_pol_authenticate(const sg_policy_t *p, sg_pool_t *pool, const char *token, size_t n,
                        long long now, sg_principal_t *who, const char **reason)
{
    unsigned char h[32];
    int rv;

    memset(who, 0, sizeof(*who));
    if ((*reason = tok_refused(token, n)) != NULL)
        return SG_ERR;
    if (sg__pol_sha256(token, n, h) != 0) {
        *reason = "out of memory";
        return SG_ENOMEM;
    }
    rv = sg_pol_authenticate_hashed(p, pool, token, n, h, now, who, reason);
    OPENSSL_cleanse(h, sizeof(h)); /* as good as the token against a static entry */
    return rv;
}

int sg_pol_authenticate_hashed(const sg_policy_t *p, sg_pool_t *pool, const char *token,
                               size_t n, const unsigned char h[32], long long now,
                               sg_principal_t *who, const char **reason)
{
    size_t i;

    memset(who, 0, sizeof(*who));
    if ((*reason = tok_refused(token, n)) != NULL)
        return SG_ERR;
    i = tok_static_find(p, h);
    if (i != SIZE_MAX) {
        const sg_conf_token_t *t = &p->tokens[i];

        /* Strings of the policy's configuration: no allocation on the static path. */
        who->subject = t->subject;
        who->tenant = t->tenant;
        who->token_id = t->id;
        who->auth = "static";
        who->roles = (const char **)t->roles.v;
        who->nroles = t->roles.n;
        return 0;
    }
    /*
     * Static tokens are opaque; JWTs are dotted (RFC 7515 7.1). A dotted token that is no
     * static token goes to jwt.c, which names what is wrong with it (a truncated JWT is
     * "jwt malformed", not "unknown static token").
     */
    if (p->jwt_enabled && memchr(token, '.', n) != NULL)
        return sg__pol_jwt_authenticate(p, pool, token, n, now, who, reason);
    *reason = "unknown static token";
    return SG_ERR;
}

/* ---- copies of a principal (JWT cache) -------------------------------------------- */

/* Bytes the strings of SRC need, NULs included. */
static size_t tok_principal_strings(const sg_principal_t *src)
{
    const char *s[] = {src->subject, src->tenant, src->token_id, src->auth, src->cnf_x5t_s256};
    size_t need = 0;

    for (size_t i = 0; i < SG_ARRAY_SIZE(s); i++)
        if (s[i] != NULL)
            need += strlen(s[i]) + 1;
    for (size_t i = 0; i < src->nroles; i++)
        need += strlen(src->roles[i]) + 1;
    return need;
}

/* Copy S to *cur (advancing it); NULL stays NULL. */
static const char *tok_put(char **cur, const char *s)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = *cur;
    memcpy(d, s, n);
    *cur += n;
    return d;
}

/* Lay out a copy of SRC in BLOCK: the roles array first, then the strings. */
static void tok_principal_fill(sg_principal_t *dst, const sg_principal_t *src, void *block)
{
    const char **roles = block;
    char *cur = (char *)(roles + src->nroles);

    *dst = *src;
    dst->roles = src->nroles > 0 ? roles : NULL;
    for (size_t i = 0; i < src->nroles; i++)
        roles[i] = tok_put(&cur, src->roles[i]);
    dst->subject = tok_put(&cur, src->subject);
    dst->tenant = tok_put(&cur, src->tenant);
    dst->token_id = tok_put(&cur, src->token_id);
    dst->auth = tok_put(&cur, src->auth);
    dst->cnf_x5t_s256 = tok_put(&cur, src->cnf_x5t_s256);
}

sg_principal_t *sg_pol_principal_dup(const sg_principal_t *src)
{
    size_t need =
        sizeof(sg_principal_t) + src->nroles * sizeof(char *) + tok_principal_strings(src);
    sg_principal_t *dst = malloc(need);

    if (dst == NULL)
        return NULL;
    tok_principal_fill(dst, src, dst + 1);
    return dst;
}

int sg_pol_principal_copy(sg_pool_t *pool, sg_principal_t *dst, const sg_principal_t *src)
{
    size_t need = src->nroles * sizeof(char *) + tok_principal_strings(src);
    void *block = sg_pool_alloc(pool, need > 0 ? need : 1);

    if (block == NULL)
        return SG_ENOMEM;
    tok_principal_fill(dst, src, block);
    return 0;
}
