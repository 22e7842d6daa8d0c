/*
 * tests/unit/policy/fixture.h - shared fixtures of the policy/ unit tests (included by
 * each tests/unit/policy/test_*.c; not a test itself).
 *
 * Keys and certificates are generated at run time with OpenSSL's C API into a mkdtemp()
 * directory, a configuration file is written next to them and loaded with sg_conf_load(),
 * exactly as smsguard does, and JWTs are signed here for every algorithm.
 */
#ifndef SG_TEST_POLICY_FIXTURE_H
#define SG_TEST_POLICY_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "policy/policy.h"
#include "tests/common/selfsigned.h"
#include "tests/common/tmpdir.h"
#include "base/base.h"

#define FX_UNUSED __attribute__((unused))

#define FX_NOW 1700000000LL /* the "current time" every test uses */

static char fx_dir[PATH_MAX]; /* realpath of the fixture directory */

/* Keys: private halves sign in the tests, public halves are in the configuration. */
static EVP_PKEY *fx_rsa, *fx_rsa_other, *fx_ec, *fx_ed;
static unsigned char fx_hs_secret[32];

FX_UNUSED static const char *fx_at(const char *name)
{
    static char buf[4][PATH_MAX];
    static int i;

    i = (i + 1) % 4;
    if ((size_t)snprintf(buf[i], sizeof(buf[i]), "%s/%s", fx_dir, name) >= sizeof(buf[i]))
        fail_msg("path too long: %s", name);
    return buf[i];
}

FX_UNUSED static void fx_write_bytes(const char *name, const void *p, size_t n)
{
    FILE *f = fopen(fx_at(name), "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

FX_UNUSED static void fx_write_text(const char *name, const char *text)
{
    fx_write_bytes(name, text, strlen(text));
}

FX_UNUSED static void fx_write_pub(const char *name, EVP_PKEY *k)
{
    FILE *f = fopen(fx_at(name), "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, k), 1);
    fclose(f);
}

FX_UNUSED static void fx_write_priv(const char *name, EVP_PKEY *k)
{
    FILE *f = fopen(fx_at(name), "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A self-signed certificate for K (the listener's, and the client certificate of the
 * certificate-binding tests). */
FX_UNUSED static X509 *fx_self_signed(EVP_PKEY *k, const char *cn)
{
    X509 *x = sg_test_self_signed(k, cn);

    assert_non_null(x);
    return x;
}

FX_UNUSED static int fx_setup_keys(void)
{
    char dir[64];
    EVP_PKEY *server;
    X509 *x;
    FILE *f;

    if (sg_test_mkdtemp(dir, sizeof(dir), "sg-test-policy") == NULL ||
        realpath(dir, fx_dir) == NULL)
        return -1;
    server = EVP_EC_gen("P-256");
    fx_rsa = EVP_RSA_gen(2048);
    fx_rsa_other = EVP_RSA_gen(2048);
    fx_ec = EVP_EC_gen("P-256");
    fx_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!server || !fx_rsa || !fx_rsa_other || !fx_ec || !fx_ed)
        return -1;
    x = fx_self_signed(server, "localhost");
    f = fopen(fx_at("server.crt"), "w");
    if (f == NULL || PEM_write_X509(f, x) != 1)
        return -1;
    fclose(f);
    fx_write_priv("server.key", server);
    fx_write_pub("rsa.pub", fx_rsa);
    fx_write_pub("ec.pub", fx_ec);
    fx_write_pub("ed.pub", fx_ed);
    for (size_t i = 0; i < sizeof(fx_hs_secret); i++)
        fx_hs_secret[i] = (unsigned char)(0xa5 ^ (i * 7));
    fx_write_bytes("hs.key", fx_hs_secret, sizeof(fx_hs_secret));
    X509_free(x);
    EVP_PKEY_free(server);
    return 0;
}

FX_UNUSED static int fx_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

FX_UNUSED static int fx_teardown_keys(void)
{
    EVP_PKEY_free(fx_rsa);
    EVP_PKEY_free(fx_rsa_other);
    EVP_PKEY_free(fx_ec);
    EVP_PKEY_free(fx_ed);
    return nftw(fx_dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- configuration ------------------------------------------------------------------ */

/* A listener; FX_BASE adds the one-vCenter upstream (named "default"). */
#define FX_LISTEN                                                                                  \
    "listen = ( { port = 8443; tls = { certificate = \"server.crt\"; private_key = "               \
    "\"server.key\"; }; } );\n"
#define FX_BASE FX_LISTEN "upstream = { url = \"http://127.0.0.1:9443\"; };\n"

/* Lowercase hex SHA-256 of S, as policy.tokens.sha256 wants it. */
FX_UNUSED static const char *fx_sha256_hex(const char *s)
{
    static char hex[4][65];
    static int k;
    unsigned char h[32];

    k = (k + 1) % 4;
    SHA256((const unsigned char *)s, strlen(s), h);
    for (int i = 0; i < 32; i++)
        snprintf(hex[k] + 2 * i, 3, "%02x", h[i]);
    return hex[k];
}

/* Write TEXT as t.conf, load it; fails the test with the loader's message on error. */
FX_UNUSED static sg_conf_t *fx_conf(const char *text)
{
    char err[SG_CONF_ERR_MAX] = "";
    sg_conf_t *c = NULL;

    fx_write_text("t.conf", text);
    if (sg_conf_load(fx_at("t.conf"), &c, err, sizeof(err)) != 0)
        fail_msg("config does not load: %s", err);
    return c;
}

/* A policy from TEXT; the configuration is referenced by the policy only. */
FX_UNUSED static sg_policy_t *fx_policy(const char *text)
{
    char err[256] = "";
    sg_conf_t *c = fx_conf(text);
    sg_policy_t *p = NULL;

    if (sg_policy_new(c, &p, err, sizeof(err)) != 0)
        fail_msg("policy does not build: %s", err);
    sg_conf_unref(c);
    assert_non_null(p);
    return p;
}

/* ---- JWTs ---------------------------------------------------------------------------- */

FX_UNUSED static char *fx_b64url(const void *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = p;
    char *out = malloc(n * 4 / 3 + 4);
    uint32_t acc = 0;
    size_t o = 0;
    int bits = 0;

    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | s[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = tab[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = tab[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return out;
}

typedef enum { FX_RS256, FX_ES256, FX_EDDSA, FX_HS256, FX_UNSIGNED } fx_alg_t;

/* Raw JWS signature of DATA: RSA PKCS#1 v1.5, ES256 as R||S, Ed25519, or HMAC with SECRET. */
FX_UNUSED static size_t fx_sign(fx_alg_t alg, EVP_PKEY *k, const void *secret, size_t secret_len,
                                const char *data, unsigned char *sig)
{
    unsigned char der[256];
    size_t n = 1024, dn = sizeof(der);
    unsigned int hn = 0;
    EVP_MD_CTX *ctx;

    switch (alg) {
    case FX_HS256:
        assert_non_null(HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)data,
                             strlen(data), sig, &hn));
        return hn;
    case FX_UNSIGNED:
        return 0;
    default:
        break;
    }
    ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, alg == FX_EDDSA ? NULL : EVP_sha256(), NULL, k),
                     1);
    if (alg == FX_ES256) {
        ECDSA_SIG *es;
        const unsigned char *q = der;
        const BIGNUM *r, *s;

        assert_int_equal(EVP_DigestSign(ctx, der, &dn, (const unsigned char *)data, strlen(data)),
                         1);
        es = d2i_ECDSA_SIG(NULL, &q, (long)dn);
        assert_non_null(es);
        ECDSA_SIG_get0(es, &r, &s);
        assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
        assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
        ECDSA_SIG_free(es);
        n = 64;
    } else {
        assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const unsigned char *)data, strlen(data)),
                         1);
    }
    EVP_MD_CTX_free(ctx);
    return n;
}

/* header.payload.signature from JSON texts (malloc'd; free() it). */
FX_UNUSED static char *fx_jwt_with(const char *header, const char *payload, fx_alg_t alg,
                                   EVP_PKEY *k, const void *secret, size_t secret_len)
{
    char *h = fx_b64url(header, strlen(header)), *p = fx_b64url(payload, strlen(payload)), *s;
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n), *out;
    unsigned char sig[1024];
    size_t sn;

    assert_non_null(input);
    snprintf(input, n, "%s.%s", h, p);
    sn = fx_sign(alg, k, secret, secret_len, input, sig);
    s = fx_b64url(sig, sn);
    out = malloc(n + strlen(s) + 1);
    assert_non_null(out);
    sprintf(out, "%s.%s", input, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return out;
}

/* Signed with the configured key of ALG. */
FX_UNUSED static char *fx_jwt(const char *header, const char *payload, fx_alg_t alg)
{
    EVP_PKEY *k = alg == FX_RS256   ? fx_rsa
                  : alg == FX_ES256 ? fx_ec
                  : alg == FX_EDDSA ? fx_ed
                                    : NULL;

    return fx_jwt_with(header, payload, alg, k, fx_hs_secret, sizeof(fx_hs_secret));
}

#endif
