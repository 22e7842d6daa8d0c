/*
 * tools/smsguard-approve.c - signs a four-eyes approval for one operation, or prints its
 * digest (policy/approval.h defines both; man/smsguard-approve.1 tells how).
 *
 *   smsguard-approve --key FILE --name NAME --upstream NAME [--ticket T]
 *                    [--expires-in SECONDS] [--jti ID] PATH [BODYFILE|-]
 *   smsguard-approve --digest|--canonical --upstream NAME [--ticket T] PATH [BODYFILE|-]
 *   smsguard-approve --version | --help
 *
 * The path and the body go through the gateway's own code (filters/canon.c, the row of
 * filters/ops.c for the path's method, filters/stopreq.c with that row's schema, then
 * filters/flt_change.c's sg_change_approval_op()), so what is signed is what the gateway
 * will compute from the same request, and a request the gateway would refuse is refused
 * here with the same fault.
 *
 * Exit codes: 0 the statement (or digest, or canonical text) on stdout; 1 the request is
 * not one the gateway would accept (the reason on stderr); 2 usage, key or I/O error.
 */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "filters/canon.h"
#include "filters/flt_change.h"
#include "filters/ops.h"
#include "filters/stopreq.h"
#include "policy/approval.h"

#ifndef SG_VERSION
#define SG_VERSION "unknown"
#endif

#define APPROVE_BODY_MAX (64u << 20)      /* far above any body the gateway accepts */
#define APPROVE_KEY_MAX (1u << 20)
#define APPROVE_EXPIRES_DEFAULT 3600      /* the gateway's max_approval_s may be shorter */
#define APPROVE_EXPIRES_MAX (366LL * 86400)

enum { OUT_JWS, OUT_DIGEST, OUT_CANONICAL };

typedef struct {
    const char *key, *name, *upstream, *ticket, *jti, *path, *body;
    long long expires_in;
    int out;
} approve_args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: smsguard-approve --key FILE --name NAME --upstream NAME [--ticket T]\n"
            "                        [--expires-in SECONDS] [--jti ID] PATH [BODYFILE|-]\n"
            "       smsguard-approve --digest|--canonical --upstream NAME [--ticket T] PATH\n"
            "                        [BODYFILE|-]\n"
            "       smsguard-approve --version\n"
            "The body is read from BODYFILE, or from standard input when it is - or absent.\n");
}

__attribute__((format(printf, 2, 3))) static int die(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("smsguard-approve: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* --opt VALUE or --opt=VALUE at argv[*i]; 1 when it was opt (*val set), 0 when not, -1 on
 * a missing or repeated value. */
static int opt_value(int argc, char **argv, int *i, const char *opt, const char **val)
{
    size_t n = strlen(opt);
    const char *a = argv[*i];

    if (strncmp(a, opt, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (*val != NULL)
        return -1;
    if (a[n] == '=')
        *val = a + n + 1;
    else if (*i + 1 < argc)
        *val = argv[++*i];
    else
        return -1;
    return **val != '\0' ? 1 : -1;
}

static int parse_args(int argc, char **argv, approve_args_t *a)
{
    static const char *const names[] = {"--key", "--name", "--upstream", "--ticket",
                                        "--expires-in", "--jti"};
    const char *expires = NULL, *pos[2] = {NULL, NULL};
    const char **vals[] = {&a->key, &a->name, &a->upstream, &a->ticket, &expires, &a->jti};
    int npos = 0, dashdash = 0;

    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int hit = 0;

        if (!dashdash && strcmp(s, "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (!dashdash && (strcmp(s, "--digest") == 0 || strcmp(s, "--canonical") == 0)) {
            if (a->out != OUT_JWS)
                return -1;
            a->out = s[2] == 'd' ? OUT_DIGEST : OUT_CANONICAL;
            continue;
        }
        if (!dashdash && s[0] == '-' && s[1] == '-') {
            for (size_t k = 0; k < SG_ARRAY_SIZE(names) && hit == 0; k++)
                hit = opt_value(argc, argv, &i, names[k], vals[k]);
            if (hit != 1)
                return -1;
            continue;
        }
        if (npos == 2)
            return -1;
        pos[npos++] = s;
    }
    if (npos == 0 || a->upstream == NULL)
        return -1;
    a->path = pos[0];
    a->body = pos[1] != NULL ? pos[1] : "-";
    if (a->out == OUT_JWS && (a->key == NULL || a->name == NULL))
        return -1;
    if (a->out != OUT_JWS && (a->key != NULL || a->name != NULL || expires != NULL ||
                              a->jti != NULL))
        return -1;
    a->expires_in = APPROVE_EXPIRES_DEFAULT;
    if (expires != NULL) {
        char *end;

        errno = 0;
        a->expires_in = strtoll(expires, &end, 10);
        if (errno != 0 || *end != '\0' || a->expires_in < 1 ||
            a->expires_in > APPROVE_EXPIRES_MAX)
            return die(-1, "--expires-in: 1 to %lld seconds", APPROVE_EXPIRES_MAX);
    }
    return 0;
}

/* The body: BODYFILE, or standard input for "-". */
static int read_body(const char *name, sg_buf_t *out)
{
    char chunk[65536];
    sg_file_t f = {NULL, 0, 0};
    const char *why = NULL;
    size_t n;

    if (strcmp(name, "-") != 0) {
        if (sg_file_read(&f, name, APPROVE_BODY_MAX, 0, &why) != SG_OK)
            return die(2, "%s: %s", name, why);
        n = sg_buf_append(out, f.data, f.len) == SG_OK ? 0 : 1;
        sg_file_dispose(&f);
        return n == 0 ? 0 : die(2, "%s: too large", name);
    }
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (sg_buf_append(out, chunk, n) != SG_OK)
            return die(2, "standard input: larger than %u bytes", APPROVE_BODY_MAX);
    if (ferror(stdin))
        return die(2, "standard input: %s", strerror(errno));
    return 0;
}

/*
 * Parses the path and the body as the gateway does and fills op (strings in pool). Returns
 * 0, 1 (the gateway would refuse the request: said on stderr) or 2.
 */
static int parse_request(sg_pool_t *pool, const approve_args_t *a, const sg_buf_t *body,
                         sg_approval_op_t *op)
{
    sg_canon_t canon;
    sg_stopreq_t req;
    sg_stopreq_fault_t fault;
    const sg_op_t *row;
    const char *why = NULL;
    int rc;

    rc = sg_canon_target(pool, a->path, strlen(a->path), &canon, &why);
    if (rc == SG_ENOMEM)
        return die(2, "out of memory");
    if (rc != 0)
        return die(1, "%s: refused by the gateway: %s", a->path, why);
    /* Every row of the operation table (filters/ops.c) is one the gateway may require an
     * approval for; its schema is the one the gateway checks the body against. */
    if ((row = sg_op_of_route(canon.route)) == NULL)
        return die(1, "%s: not an operation that takes an approval (a VasaProvider method of "
                      "the replication family, /sdk/vim25/{release}/sms/VasaProvider/{moId}/"
                      "{method})",
                   a->path);
    rc = sg_stopreq_parse_op(pool, row, sg_buf_head(body), sg_buf_avail(body), &canon.moid,
                             &req, &fault);
    if (rc == -2)
        return die(2, "out of memory");
    if (rc != 0)
        return die(1, "%s: refused by the gateway: %s%s%s: %s",
                   strcmp(a->body, "-") == 0 ? "standard input" : a->body, fault.type,
                   fault.invalid_property != NULL ? " " : "",
                   fault.invalid_property != NULL ? fault.invalid_property : "", fault.message);
    /* The gateway's own function (filters/flt_change.c): the same inputs, the same digest. */
    if (sg_change_approval_op(pool, a->upstream, canon.release, canon.moid, &req, a->ticket,
                              op) != SG_OK)
        return die(2, "out of memory");
    return 0;
}

/* ---- signing ------------------------------------------------------------------------- */

static int load_key(const char *path, EVP_PKEY **out, const char **alg)
{
    sg_file_t f = {NULL, 0, 0};
    const char *why = NULL;
    char group[32] = "";
    BIO *bio;
    EVP_PKEY *k = NULL;

    if (sg_file_read(&f, path, APPROVE_KEY_MAX, SG_FILE_SECRET, &why) != SG_OK)
        return die(2, "%s: %s", path, why);
    bio = BIO_new_mem_buf(f.data, (int)f.len);
    if (bio != NULL)
        k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    sg_file_dispose(&f);
    if (k == NULL)
        return die(2, "%s: not a PEM private key (unencrypted)", path);
    if (EVP_PKEY_is_a(k, "ED25519")) {
        *alg = "EdDSA";
    } else if (EVP_PKEY_is_a(k, "EC") &&
               EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) == 1 &&
               (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
        *alg = "ES256";
    } else {
        EVP_PKEY_free(k);
        return die(2, "%s: not an Ed25519 or P-256 private key", path);
    }
    *out = k;
    return 0;
}

/* Signs in[0, n) as alg; the signature, in JWS form, to sig (64 bytes). */
static int sign(EVP_PKEY *k, const char *alg, const char *in, size_t n, unsigned char sig[64])
{
    unsigned char der[128];
    const unsigned char *p = der;
    size_t len = sizeof(der);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    int ok, ed = strcmp(alg, "EdDSA") == 0;

    ok = ctx != NULL &&
         EVP_DigestSignInit(ctx, NULL, ed ? NULL : EVP_sha256(), NULL, k) == 1 &&
         EVP_DigestSign(ctx, ed ? sig : der, &len, (const unsigned char *)in, n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    if (ed)
        return len == 64 ? 0 : -1;
    /* RFC 7518 3.4: R || S, each 32 bytes big-endian, not OpenSSL's DER. */
    es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    ok = es != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32 &&
         BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32;
    ECDSA_SIG_free(es);
    return ok ? 0 : -1;
}

static int b64_append(sg_buf_t *b, const void *p, size_t n)
{
    char tmp[512];

    if (sg_b64url_len(n) > sizeof(tmp))
        return SG_ETOOBIG;
    return sg_buf_append(b, tmp, (size_t)(sg_b64url_put(tmp, p, n) - tmp));
}

static int make_jws(const approve_args_t *a, const unsigned char digest[32], sg_buf_t *jws)
{
    unsigned char rnd[16], sig[64];
    char jti[32];
    const char *alg = NULL;
    EVP_PKEY *k = NULL;
    long long now = (long long)time(NULL);
    sg_buf_t hdr, pay;
    int rc;

    if (strlen(a->name) > SG_APPROVAL_NAME_MAX)
        return die(2, "--name: at most %d bytes", SG_APPROVAL_NAME_MAX);
    if (a->jti != NULL && strlen(a->jti) > SG_APPROVAL_JTI_MAX)
        return die(2, "--jti: at most %d bytes", SG_APPROVAL_JTI_MAX);
    if ((rc = load_key(a->key, &k, &alg)) != 0)
        return rc;
    /* 128 random bits: no two approvals share a jti by chance. */
    if (a->jti == NULL) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            EVP_PKEY_free(k);
            return die(2, "no random bytes for the jti");
        }
        *sg_b64url_put(jti, rnd, sizeof(rnd)) = '\0';
    }
    sg_buf_init_sticky(&hdr, 4096);
    sg_buf_init_sticky(&pay, 4096);
    sg_buf_appendf(&hdr, "{\"alg\":\"%s\",\"kid\":", alg);
    sg_json_write_string(&hdr, a->name, strlen(a->name));
    sg_buf_lit(&hdr, ",\"typ\":\"" SG_APPROVAL_TYP "\"}");
    sg_buf_lit(&pay, "{\"dig\":\"");
    b64_append(&pay, digest, 32);
    sg_buf_appendf(&pay, "\",\"iat\":%lld,\"exp\":%lld,\"jti\":", now, now + a->expires_in);
    sg_json_write_string(&pay, a->jti != NULL ? a->jti : jti,
                         strlen(a->jti != NULL ? a->jti : jti));
    sg_buf_lit(&pay, ",\"sub\":");
    sg_json_write_string(&pay, a->name, strlen(a->name));
    sg_buf_lit(&pay, "}");
    rc = sg_buf_err(&hdr) != SG_OK || sg_buf_err(&pay) != SG_OK ||
         b64_append(jws, sg_buf_head(&hdr), sg_buf_avail(&hdr)) != SG_OK ||
         sg_buf_lit(jws, ".") != SG_OK ||
         b64_append(jws, sg_buf_head(&pay), sg_buf_avail(&pay)) != SG_OK;
    sg_buf_dispose(&hdr);
    sg_buf_dispose(&pay);
    if (rc == 0 && sign(k, alg, sg_buf_head(jws), sg_buf_avail(jws), sig) != 0)
        rc = die(2, "%s: signing failed", a->key);
    else if (rc == 0 && (sg_buf_lit(jws, ".") != SG_OK || b64_append(jws, sig, 64) != SG_OK))
        rc = die(2, "out of memory");
    else if (rc != 0)
        rc = die(2, "--name or --jti too long for a statement");
    EVP_PKEY_free(k);
    return rc;
}

int main(int argc, char **argv)
{
    approve_args_t a = {0};
    sg_approval_op_t op = {0};
    unsigned char digest[32];
    sg_buf_t body, out;
    sg_pool_t pool;
    int rc;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("smsguard-approve %s\n", SG_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (parse_args(argc, argv, &a) != 0) {
        usage(stderr);
        return 2;
    }
    sg_buf_init(&body, APPROVE_BODY_MAX);
    /* The canonical text holds each distinct group once, in fewer bytes than its JSON. */
    sg_buf_init(&out, APPROVE_BODY_MAX);
    sg_pool_init(&pool, 65536);
    rc = read_body(a.body, &body);
    if (rc == 0)
        rc = parse_request(&pool, &a, &body, &op);
    if (rc == 0 && a.out == OUT_CANONICAL) {
        if (sg_approval_canonical(&op, &out) != SG_OK)
            rc = die(2, "out of memory");
    } else if (rc == 0) {
        if (sg_approval_digest(&op, digest) != SG_OK)
            rc = die(2, "out of memory");
        else if (a.out == OUT_DIGEST)
            for (size_t i = 0; i < 32; i++)
                sg_buf_appendf(&out, "%02x", digest[i]);
        else
            rc = make_jws(&a, digest, &out);
        if (rc == 0)
            sg_buf_lit(&out, "\n");
    }
    if (rc == 0 && (fwrite(sg_buf_head(&out), 1, sg_buf_avail(&out), stdout) !=
                        sg_buf_avail(&out) ||
                    fflush(stdout) != 0))
        rc = die(2, "standard output: %s", strerror(errno));
    sg_pool_dispose(&pool);
    sg_buf_dispose(&body);
    sg_buf_dispose(&out);
    ERR_clear_error();
    return rc;
}
