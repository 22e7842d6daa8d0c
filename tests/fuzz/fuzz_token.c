/*
 * tests/fuzz/fuzz_token.c - bearer tokens through sg_pol_authenticate() (and, for those
 * accepted, sg_pol_authorize(), the certificate binding and principal copies).
 *
 * The policy is built once from a configuration written into a temporary directory:
 * a static token, an HS256 key with a fixed secret (so that seeds can carry valid
 * signatures) and an RS256 key generated at start. Inputs come in two forms:
 *   - any bytes: the token as received after "Bearer ";
 *   - 0x01, header JSON, '\n', payload JSON: the harness base64url-encodes both and signs
 *     them with the HS256 key (kid "hs"), so the fuzzer reaches the claim checks that a
 *     random signature never would.
 * With libFuzzer, LLVMFuzzerInitialize builds the policy; the replay runner (replay_main.c)
 * does not call it, so the first input does.
 */
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
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

#define FUZZ_NOW 1700000000LL
#define FUZZ_HS_SECRET "fuzz-hs256-secret-0123456789abcd" /* 32 bytes, as the seeds use */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sg_policy_t *fz_pol;
static char fz_dir[PATH_MAX];

static int fz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void fz_cleanup(void)
{
    sg_policy_free(fz_pol);
    fz_pol = NULL;
    if (fz_dir[0] != '\0')
        nftw(fz_dir, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *fz_at(const char *name)
{
    static char buf[PATH_MAX + 64];

    if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", fz_dir, name) >= sizeof(buf))
        abort();
    return buf;
}

static void fz_die(const char *what)
{
    fprintf(stderr, "fuzz_token: %s\n", what);
    abort();
}

static void fz_write(const char *name, const void *p, size_t n)
{
    FILE *f = fopen(fz_at(name), "wb");

    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        fz_die("cannot write a fixture file");
}

static void fz_init(void)
{
    static const char conf_text[] =
        "listen = ( { port = 8443; tls = { certificate = \"server.crt\"; private_key = "
        "\"server.key\"; }; } );\n"
        "upstream = { url = \"http://127.0.0.1:9443\"; };\n"
        "policy = {\n"
        "  tokens = ( { id = \"static-1\"; sha256 = "
        "\"%s\"; subject = \"alice\"; tenant = \"t1\"; roles = [\"dr-operator\"]; } );\n"
        "  jwt = { issuer = \"https://idp.fuzz\"; audience = [\"smsguard\"]; leeway_s = 60;\n"
        "    keys = ( { kid = \"hs\"; alg = \"HS256\"; secret_file = \"hs.key\"; },\n"
        "             { kid = \"rs\"; alg = \"RS256\"; public_key = \"rs.pub\"; } ); };\n"
        "  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; "
        "},\n"
        "            { name = \"viewer\"; privileges = [\"StorageViews.View\"]; } );\n"
        "  tenants = ( { name = \"t1\"; providers = [\"vasa-1\"]; fault_domains = [\"fd-1\", "
        "\"fd-2*\"]; } );\n"
        "  force_privilege = \"SMS.Force\";\n"
        "};\n";
    char tmpl[64], text[4096], err[SG_CONF_ERR_MAX], hex[65];
    unsigned char h[32];
    EVP_PKEY *server = EVP_EC_gen("P-256"), *rsa = EVP_RSA_gen(2048);
    X509 *x = NULL;
    sg_conf_t *c = NULL;
    FILE *f;

    if (sg_test_mkdtemp(tmpl, sizeof(tmpl), "sg-fuzz-token") == NULL || realpath(tmpl, fz_dir) == NULL)
        fz_die("mkdtemp");
    atexit(fz_cleanup);
    if (server == NULL || rsa == NULL)
        fz_die("key generation");
    if ((x = sg_test_self_signed(server, "localhost")) == NULL)
        fz_die("certificate");
    if ((f = fopen(fz_at("server.crt"), "w")) == NULL || PEM_write_X509(f, x) != 1)
        fz_die("server.crt");
    fclose(f);
    if ((f = fopen(fz_at("server.key"), "w")) == NULL ||
        PEM_write_PrivateKey(f, server, NULL, NULL, 0, NULL, NULL) != 1)
        fz_die("server.key");
    fclose(f);
    if ((f = fopen(fz_at("rs.pub"), "w")) == NULL || PEM_write_PUBKEY(f, rsa) != 1)
        fz_die("rs.pub");
    fclose(f);
    fz_write("hs.key", FUZZ_HS_SECRET, strlen(FUZZ_HS_SECRET));
    if (sg_pol_token_hash("fuzz-static-token", 17, h) != 0)
        fz_die("hash");
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(text, sizeof(text), conf_text, hex);
    fz_write("t.conf", text, strlen(text));
    if (sg_conf_load(fz_at("t.conf"), &c, err, sizeof(err)) != 0)
        fz_die(err);
    if (sg_policy_new(c, &fz_pol, err, sizeof(err)) != 0)
        fz_die(err);
    sg_conf_unref(c);
    X509_free(x);
    EVP_PKEY_free(server);
    EVP_PKEY_free(rsa);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (fz_pol == NULL)
        fz_init();
    return 0;
}

static size_t fz_b64url(const unsigned char *p, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    size_t o = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = tab[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = tab[(acc << (6 - bits)) & 63];
    return o;
}

/* 0x01 header '\n' payload -> a correctly HS256-signed compact JWS in a malloc'd buffer. */
static char *fz_sign(const uint8_t *data, size_t size, size_t *n)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hn = nl != NULL ? (size_t)(nl - data) : size;
    size_t pn = nl != NULL ? size - hn - 1 : 0;
    char *tok = malloc((size + 2) * 4 / 3 + 64);
    unsigned char mac[32];
    unsigned int maclen = 0;
    size_t o;

    if (tok == NULL)
        return NULL;
    o = fz_b64url(data, hn, tok);
    tok[o++] = '.';
    o += fz_b64url(nl != NULL ? nl + 1 : data, pn, tok + o);
    if (HMAC(EVP_sha256(), FUZZ_HS_SECRET, 32, (unsigned char *)tok, o, mac, &maclen) == NULL) {
        free(tok);
        return NULL;
    }
    tok[o++] = '.';
    o += fz_b64url(mac, maclen, tok + o);
    *n = o;
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sg_str_t fds[] = {{"fd-1", 4}, {"fd-20", 5}};
    sg_pol_request_t req = {.action = SG_POL_STOP_TEST,
                            .upstream = "default",
                            .provider = {"vasa-1", 6},
                            .fault_domains = fds,
                            .nfault_domains = 2,
                            .force = 1};
    sg_principal_t who, *dup;
    sg_pol_decision_t d;
    const char *reason;
    char *signed_tok = NULL;
    const char *tok = (const char *)data;
    size_t n = size;
    sg_pool_t pool;
    int rc;

    if (fz_pol == NULL)
        fz_init();
    if (size > 0 && data[0] == 0x01) {
        signed_tok = fz_sign(data + 1, size - 1, &n);
        if (signed_tok == NULL)
            return 0;
        tok = signed_tok;
    }
    sg_pool_init(&pool, 1024);
    rc = sg_pol_authenticate(fz_pol, &pool, tok, n, FUZZ_NOW, &who, &reason);
    /*
     * Nothing runs out of memory here: SG_ENOMEM would mean the strict reader (base/json.h)
     * or OpenSSL failed on a token it should have read or refused.
     */
    if (rc == SG_ENOMEM)
        abort();
    if (rc == 0) {
        if (who.subject == NULL || who.tenant == NULL || who.auth == NULL || who.token_id == NULL)
            abort();
        sg_pol_authorize(fz_pol, &pool, &who, &req, &d);
        if (d.reason == NULL || (!d.allow && d.privilege_id == NULL))
            abort();
        req.action = SG_POL_TASK_QUERY;
        sg_pol_authorize(fz_pol, &pool, &who, &req, &d);
        sg_pol_check_cert_binding(&who, data, size);
        dup = sg_pol_principal_dup(&who);
        free(dup);
    } else if (reason == NULL) {
        abort();
    }
    sg_pool_dispose(&pool);
    free(signed_tok);
    return 0;
}
