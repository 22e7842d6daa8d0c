/*
 * tests/fuzz/fuzz_conf.c - configuration loading (conf/conf.c on libconfig) from any
 * bytes, and the policy built from an accepted configuration (policy/keys.c).
 *
 * sg_conf_load() reads files only, so each input is written to fuzz.conf in a temporary
 * directory made at start. The directory also holds what a configuration may name, so
 * that the fuzzer reaches the file checks with real contents: server.crt/server.key (a
 * matching EC P-256 pair), other.key (not matching), rsa.pub (RSA 2048), ec.pub, ed.pub,
 * ed.key (Ed25519), secret32/secret8 (HS256 and task keys, long enough and not), empty,
 * garbage.txt, a logs/ directory, and inc.conf (a valid fragment for @include).
 *
 * For any input: no crash, leak or sanitizer report, and
 *   - an accepted configuration has at least one listener and an upstream, survives a
 *     reference round trip, and sg_policy_new() accepts it (conf and policy agree);
 *   - a refused one leaves *out NULL and says why in one line that names a file: the
 *     configuration's "<file>:<line>: <reason>" with 1 <= line <= the lines it has (+1 for
 *     libconfig's end-of-input), an @include'd file's "<path>:<line>: <reason>", or
 *     "<file>: <reason>" only for what no line can be blamed for (a required top-level key
 *     that is missing).
 */
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "conf/conf.h"
#include "policy/policy.h"
#include "tests/common/selfsigned.h"
#include "tests/common/tmpdir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                         \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_conf: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/*
 * libconfig 1.5 (Debian 12) leaks the string of a TOK_STRING that its parser discards on a
 * syntax error (`""` alone is enough): hyperrealm/libconfig#142, fixed upstream in 1.7.3 by
 * a bison %destructor (PR #155). Nothing in conf.c can free it, and LeakSanitizer's fast
 * unwinder cannot see into libconfig to suppress it by name. So this target tells that
 * leak apart precisely: conf.c's call to config_read_file() is wrapped (-Wl,--wrap in
 * tests/fuzz/fuzz.cmake), the sanitizer's malloc/free hooks record what is allocated
 * inside it, and what is still allocated once a refused load has returned (conf.c has run
 * config_destroy() by then) is libconfig's own leak and is freed here. Anything conf.c
 * allocates, and anything left behind by an accepted load, is still checked.
 */
int __real_config_read_file(config_t *config, const char *filename);
int __wrap_config_read_file(config_t *config, const char *filename);
__attribute__((weak)) int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t), void (*free_hook)(const volatile void *));
__attribute__((weak)) int __sanitizer_get_ownership(const volatile void *p);

/* What libconfig's parse allocated and nobody freed yet: a set of pointers, open
 * addressing (the free hook sees every free of the process, so lookups must be cheap). */
#define FZ_LC_BITS 14
#define FZ_LC_SLOTS (1u << FZ_LC_BITS)
static struct {
    int parsing;  /* inside libconfig's config_read_file() */
    int overflow; /* more than the set holds: nothing is ignored for this input */
    size_t n;
    const void *slot[FZ_LC_SLOTS];
} fz_lc;

#if defined(__clang__) && __clang_major__ >= 13
#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage"))) /* not the code under test */
#else
#define FZ_NO_COVERAGE
#endif

FZ_NO_COVERAGE static size_t fz_lc_hash(const void *p)
{
    return (size_t)(((uint64_t)(uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> (64 - FZ_LC_BITS));
}

FZ_NO_COVERAGE static void fz_malloc_hook(const volatile void *ptr, size_t size)
{
    size_t i;

    (void)size;
    if (!fz_lc.parsing)
        return;
    if (fz_lc.n >= FZ_LC_SLOTS / 2) {
        fz_lc.overflow = 1;
        return;
    }
    for (i = fz_lc_hash((const void *)ptr); fz_lc.slot[i] != NULL; i = (i + 1) & (FZ_LC_SLOTS - 1))
        ;
    fz_lc.slot[i] = (const void *)ptr;
    fz_lc.n++;
}

FZ_NO_COVERAGE static void fz_free_hook(const volatile void *ptr)
{
    size_t i, j, k;

    if (fz_lc.n == 0)
        return;
    for (i = fz_lc_hash((const void *)ptr); fz_lc.slot[i] != (const void *)ptr;
         i = (i + 1) & (FZ_LC_SLOTS - 1))
        if (fz_lc.slot[i] == NULL)
            return;
    /* Delete with a backward shift, so that no probe chain is broken (Knuth 6.4 R). */
    fz_lc.slot[i] = NULL;
    fz_lc.n--;
    for (j = (i + 1) & (FZ_LC_SLOTS - 1); fz_lc.slot[j] != NULL; j = (j + 1) & (FZ_LC_SLOTS - 1)) {
        k = fz_lc_hash(fz_lc.slot[j]);
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            fz_lc.slot[i] = fz_lc.slot[j];
            fz_lc.slot[j] = NULL;
            i = j;
        }
    }
}

/*
 * After a load: what the parse left allocated when the file was refused is lost to
 * libconfig (the config_t is destroyed, nothing points there any more). It is freed here
 * rather than only ignored, so that mallocs and frees balance again and libFuzzer does not
 * run a full leak scan after every such input (a tenth of the speed). If libconfig did
 * still use it, ASan would report the use after free.
 */
static void fz_lc_settle(int refused)
{
    const void *p;

    for (size_t i = 0; i < FZ_LC_SLOTS && fz_lc.n > 0; i++) {
        if ((p = fz_lc.slot[i]) == NULL)
            continue;
        fz_lc.slot[i] = NULL;
        fz_lc.n--;
        /* Only what the allocator still counts as allocated: a run of the fuzzer once
         * found a pointer here that config_destroy() had freed (seen after @include with
         * a refused key; not reproduced alone), and freeing it again would be the
         * harness's own double free, not a finding. */
        if (refused && !fz_lc.overflow &&
            (__sanitizer_get_ownership == NULL || __sanitizer_get_ownership(p)))
            free((void *)p);
    }
    fz_lc.overflow = 0;
}

int __wrap_config_read_file(config_t *config, const char *filename)
{
    int rc;

    fz_lc.parsing = 1;
    rc = __real_config_read_file(config, filename);
    fz_lc.parsing = 0;
    return rc;
}

static char fz_dir[PATH_MAX];
static char fz_file[PATH_MAX + 16];

static int fz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void fz_cleanup(void)
{
    if (fz_dir[0] != '\0')
        nftw(fz_dir, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fz_die(const char *what)
{
    fprintf(stderr, "fuzz_conf: %s\n", what);
    abort();
}

static FILE *fz_open(const char *name)
{
    char path[PATH_MAX + 64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fz_dir, name);
    if ((f = fopen(path, "wb")) == NULL)
        fz_die("cannot write a fixture");
    return f;
}

static void fz_write(const char *name, const void *p, size_t n)
{
    FILE *f = fz_open(name);

    if (fwrite(p, 1, n, f) != n || fclose(f) != 0)
        fz_die("cannot write a fixture");
}

static void fz_key(const char *name, EVP_PKEY *k, int pub)
{
    FILE *f = fz_open(name);

    if ((pub ? PEM_write_PUBKEY(f, k) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) !=
            1 ||
        fclose(f) != 0)
        fz_die(name);
}

static void fz_init(void)
{
    static const char inc[] = "limits = { max_streams = 10; };\n";
    EVP_PKEY *ec = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256"), *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    unsigned char secret[32];
    char tmpl[64], logs[PATH_MAX + 8];
    X509 *x = NULL;
    FILE *f;

    if (sg_test_mkdtemp(tmpl, sizeof(tmpl), "sg-fuzz-conf") == NULL ||
        realpath(tmpl, fz_dir) == NULL)
        fz_die("mkdtemp");
    atexit(fz_cleanup);
    if (__sanitizer_install_malloc_and_free_hooks != NULL &&
        __sanitizer_install_malloc_and_free_hooks(fz_malloc_hook, fz_free_hook) == 0)
        fz_die("cannot install the malloc hooks");
    snprintf(fz_file, sizeof(fz_file), "%s/fuzz.conf", fz_dir);
    if (ec == NULL || other == NULL || rsa == NULL || ed == NULL)
        fz_die("key generation");
    if ((x = sg_test_self_signed(ec, "localhost")) == NULL)
        fz_die("certificate");
    f = fz_open("server.crt");
    if (PEM_write_X509(f, x) != 1 || fclose(f) != 0)
        fz_die("server.crt");
    fz_key("server.key", ec, 0);
    fz_key("other.key", other, 0);
    fz_key("ec.pub", ec, 1);
    fz_key("rsa.pub", rsa, 1);
    fz_key("ed.pub", ed, 1);
    fz_key("ed.key", ed, 0);
    memset(secret, 0x5a, sizeof(secret));
    fz_write("secret32", secret, sizeof(secret));
    fz_write("secret8", secret, 8);
    fz_write("empty", "", 0);
    fz_write("garbage.txt", "not PEM\n", 8);
    fz_write("inc.conf", inc, sizeof(inc) - 1);
    snprintf(logs, sizeof(logs), "%s/logs", fz_dir);
    if (mkdir(logs, 0700) != 0)
        fz_die("logs/");
    X509_free(x);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(other);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (fz_dir[0] == '\0')
        fz_init();
    return 0;
}

/* The error's shape (see the file head). */
static void check_error(const char *err, const uint8_t *data, size_t size)
{
    size_t flen = strlen(fz_file), nlines = 1;
    const char *p, *colon;
    long line;
    char *end;

    for (size_t i = 0; i < size; i++)
        nlines += data[i] == '\n';
    FZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    if (strncmp(err, fz_file, flen) == 0 && err[flen] == ':') {
        p = err + flen + 1;
        if (p[0] == ' ') {
            /* No line: only for a required top-level key that is absent. */
            FZ_CHECK(strncmp(p, " missing required key '", 23) == 0 &&
                     strchr(p + 23, '.') == NULL);
            return;
        }
        line = strtol(p, &end, 10);
        FZ_CHECK(end != p && line >= 1 && (size_t)line <= nlines + 1);
        FZ_CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
        return;
    }
    /* Something an @include named: "<path>:<line>: <reason>" all the same. */
    colon = strstr(err, ": ");
    FZ_CHECK(colon != NULL && colon[2] != '\0');
    for (p = colon - 1; p > err && *p >= '0' && *p <= '9'; p--)
        ;
    FZ_CHECK(p > err && *p == ':' && p + 1 < colon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SG_CONF_ERR_MAX], why[SG_CONF_ERR_MAX];
    sg_conf_t *c = (sg_conf_t *)&c; /* must be set to NULL on failure */
    sg_policy_t *pol = NULL;
    FILE *f;
    int rc;

    if (fz_dir[0] == '\0')
        fz_init();
    f = fopen(fz_file, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        fz_die("cannot write the configuration");
    err[0] = 'x';
    rc = sg_conf_load(fz_file, &c, err, sizeof(err));
    fz_lc_settle(rc != 0); /* what libconfig's parser left allocated: its leak */
    if (rc != 0) {
        FZ_CHECK(c == NULL);
        check_error(err, data, size);
        return 0;
    }
    FZ_CHECK(c != NULL && err[0] == '\0');
    FZ_CHECK(c->nlisten >= 1 && c->listen != NULL && c->nupstreams >= 1);
    for (size_t i = 0; i < c->nupstreams; i++)
        FZ_CHECK(c->upstreams[i].name != NULL && c->upstreams[i].url != NULL &&
                 c->upstreams[i].host != NULL && c->upstreams[i].authority != NULL);
    FZ_CHECK(c->workers >= 1 && c->limits.max_header_bytes >= 1024);
    FZ_CHECK(sg_conf_ref(c) == c);
    sg_conf_unref(c);
    if (sg_policy_new(c, &pol, why, sizeof(why)) != 0) {
        fprintf(stderr, "fuzz_conf: accepted configuration refused by the policy: %s\n", why);
        abort();
    }
    sg_policy_free(pol);
    sg_conf_unref(c);
    return 0;
}
