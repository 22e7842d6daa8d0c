/*
 * tests/unit/conf/test_conf.c - sg_conf_load(): defaults, every error class with its
 * exact "file:line: reason", the file checks, upstream URL parsing, token hashes,
 * refcounting, and the shipped example conf/smsguard.conf.
 *
 * Every fixture is written at run time into a mkdtemp() directory, certificates and keys
 * included (generated with OpenSSL's C API): nothing secret is checked in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/common/selfsigned.h"
#include "tests/common/tmpdir.h"

#ifndef SG_TEST_SOURCE_DIR
#error "SG_TEST_SOURCE_DIR must name the repository root"
#endif

static char tmp[PATH_MAX]; /* realpath of the fixture directory */

/* ---- fixtures ---------------------------------------------------------------------- */

static const char *at(const char *name)
{
    static char buf[4][PATH_MAX];
    static int i;

    i = (i + 1) % 4;
    if ((size_t)snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name) >= sizeof(buf[i]))
        fail_msg("path too long: %s", name);
    return buf[i];
}

static void write_bytes(const char *name, const void *p, size_t n)
{
    FILE *f = fopen(at(name), "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text)
{
    write_bytes(name, text, strlen(text));
}

static FILE *open_for(const char *name)
{
    FILE *f = fopen(at(name), "w");

    assert_non_null(f);
    return f;
}

static void write_key(const char *name, EVP_PKEY *k)
{
    FILE *f = open_for(name);

    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void write_pub(const char *name, EVP_PKEY *k)
{
    FILE *f = open_for(name);

    assert_int_equal(PEM_write_PUBKEY(f, k), 1);
    fclose(f);
}

static X509 *self_signed(EVP_PKEY *k)
{
    X509 *x = sg_test_self_signed(k, "localhost");

    assert_non_null(x);
    return x;
}

static void write_cert(const char *name, X509 *x)
{
    FILE *f = open_for(name);

    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

/* A matching server.crt and server.key in directory DIR_NAME (under tmp). */
static void write_pair(const char *dir_name)
{
    char crt[PATH_MAX], key[PATH_MAX];
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x;

    assert_non_null(k);
    x = self_signed(k);
    snprintf(crt, sizeof(crt), "%s/server.crt", dir_name);
    snprintf(key, sizeof(key), "%s/server.key", dir_name);
    write_cert(crt, x);
    write_key(key, k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    char dir[64];
    EVP_PKEY *server, *other, *rsa, *rsa1024, *p384, *ed, *enc;
    X509 *x;
    FILE *f;
    unsigned char secret[32];

    if (sg_test_mkdtemp(dir, sizeof(dir), "sg-test-conf") == NULL || realpath(dir, tmp) == NULL)
        return -1;
    server = EVP_EC_gen("P-256");
    other = EVP_EC_gen("P-256");
    rsa = EVP_RSA_gen(2048);
    rsa1024 = EVP_RSA_gen(1024);
    p384 = EVP_EC_gen("P-384");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    enc = EVP_EC_gen("P-256");
    if (!server || !other || !rsa || !rsa1024 || !p384 || !ed || !enc)
        return -1;
    x = self_signed(server);
    write_cert("server.crt", x);
    write_key("server.key", server);
    write_key("other.key", other);
    write_key("rsa.key", rsa);
    write_key("ed25519.key", ed);
    write_pub("ec256.pub", server);
    write_pub("rsa.pub", rsa);
    write_pub("rsa1024.pub", rsa1024);
    write_pub("ec384.pub", p384);
    write_pub("ed25519.pub", ed);
    f = open_for("encrypted.key");
    PEM_write_PrivateKey(f, enc, EVP_aes_256_cbc(), (unsigned char *)"pass", 4, NULL, NULL);
    fclose(f);
    memset(secret, 0x5a, sizeof(secret));
    write_bytes("secret32.bin", secret, sizeof(secret));
    write_bytes("secret31.bin", secret, sizeof(secret) - 1);
    write_bytes("empty.bin", "", 0);
    write_text("garbage.txt", "TOPSECRET-DO-NOT-PRINT this is not PEM\n");
    mkdir(at("logs"), 0700);
    X509_free(x);
    EVP_PKEY_free(server);
    EVP_PKEY_free(other);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(enc);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    return nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ----------------------------------------------------------------------- */

/* The minimal valid configuration: two lines, so fixtures append from line 3. */
#define BASE_LISTEN                                                                                \
    "listen = ( { port = 8443; tls = { certificate = \"server.crt\"; private_key = "               \
    "\"server.key\"; }; } );\n"
#define BASE_UPSTREAM "upstream = { url = \"http://127.0.0.1:9443\"; };\n"
#define BASE BASE_LISTEN BASE_UPSTREAM

static sg_conf_t *load_ok(const char *text)
{
    char err[SG_CONF_ERR_MAX] = "";
    sg_conf_t *c = NULL;

    write_text("t.conf", text);
    if (sg_conf_load(at("t.conf"), &c, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(c);
    return c;
}

/* Loading TEXT fails with exactly "<tmp>/t.conf:LINE: REASON" ("<tmp>/t.conf: REASON" at 0). */
__attribute__((format(printf, 3, 4))) static void expect_error(const char *text, int line,
                                                               const char *fmt, ...)
{
    char err[SG_CONF_ERR_MAX], reason[SG_CONF_ERR_MAX], want[SG_CONF_ERR_MAX + PATH_MAX];
    sg_conf_t *c = (sg_conf_t *)&c; /* must be reset to NULL */
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(want, sizeof(want), "%s:%d: %s", at("t.conf"), line, reason);
    else
        snprintf(want, sizeof(want), "%s: %s", at("t.conf"), reason);
    write_text("t.conf", text);
    assert_int_equal(sg_conf_load(at("t.conf"), &c, err, sizeof(err)), -1);
    assert_null(c);
    assert_string_equal(err, want);
}

/* ---- defaults and paths ------------------------------------------------------------ */

static void loads_minimal_config_with_documented_defaults(void **state)
{
    sg_conf_t *c = load_ok(BASE);

    assert_int_equal(c->refcnt, 1);
    assert_string_equal(c->file, at("t.conf"));
    assert_int_equal(c->workers, 1);
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].address, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 8443);
    assert_int_equal(c->listen[0].min_version, 0x0303); /* TLS1_2_VERSION */
    assert_string_equal(c->listen[0].client_ca, "");
    assert_int_equal(c->admin.enabled, 0);
    assert_string_equal(c->upstreams[0].url, "http://127.0.0.1:9443");
    assert_int_equal(c->upstreams[0].tls, 0);
    assert_string_equal(c->upstreams[0].host, "127.0.0.1");
    assert_int_equal(c->upstreams[0].port, 9443);
    assert_string_equal(c->upstreams[0].authority, "127.0.0.1:9443");
    assert_string_equal(c->upstreams[0].ca_file, "");
    assert_int_equal(c->upstreams[0].verify, 1);
    assert_string_equal(c->upstreams[0].server_name, "");
    assert_int_equal(c->upstreams[0].connect_timeout_ms, 2000);
    assert_int_equal(c->upstreams[0].response_timeout_ms, 30000);
    assert_int_equal(c->upstreams[0].max_idle, 32);
    assert_int_equal(c->limits.max_header_bytes, 16384);
    assert_int_equal(c->limits.max_body_bytes, 1048576);
    assert_int_equal(c->limits.max_streams, 100);
    assert_int_equal(c->limits.header_timeout_ms, 10000);
    assert_int_equal(c->limits.body_timeout_ms, 30000);
    assert_int_equal(c->limits.idle_timeout_ms, 60000);
    assert_int_equal(c->limits.max_connections, 10000);
    assert_int_equal(c->limits.drain_timeout_ms, 10000);
    assert_int_equal(c->routes.unmatched, SG_ROUTE_FORWARD);
    assert_string_equal(c->log.access, "off");
    assert_int_equal(c->log.level, SG_LOG_INFO);
    assert_int_equal(c->policy.ntokens, 0);
    assert_int_equal(c->policy.jwt.enabled, 0);
    assert_int_equal(c->policy.jwt.leeway_s, 60);
    assert_int_equal(c->policy.jwt.audience.n, 0);
    assert_int_equal(c->policy.jwt.nkeys, 0);
    assert_string_equal(c->policy.jwt.subject_claim, "sub");
    assert_string_equal(c->policy.jwt.tenant_claim, "tenant");
    assert_string_equal(c->policy.jwt.roles_claim, "roles");
    assert_int_equal(c->policy.nroles, 0);
    assert_int_equal(c->policy.ntenants, 0);
    assert_string_equal(c->policy.force_privilege, "");
    assert_int_equal(c->batch.max_size, 16);
    assert_int_equal(c->batch.nproviders, 0);
    assert_int_equal(c->batch.learn_from_toomany, 1);
    assert_int_equal(c->batch.max_parallel, 4);
    assert_int_equal(c->batch.max_parts, 64);
    assert_string_equal(c->batch.task_key_file, "");
    assert_string_equal(c->audit.file, "");
    assert_int_equal(c->audit.sync, SG_AUDIT_SYNC_ALWAYS);
    assert_int_equal(c->audit.fail_closed, 1);
    assert_string_equal(c->audit.signing_key, "");
    assert_int_equal(c->audit.checkpoint_every, 1000);
    assert_int_equal(c->audit.syslog.enabled, 0);
    assert_int_equal(c->audit.syslog.facility, LOG_AUTHPRIV);
    assert_string_equal(c->audit.syslog.address, "unix:/dev/log");
    assert_string_equal(c->audit.syslog.app_name, "smsguard");
    sg_conf_unref(c);
}

static void resolves_relative_paths_against_the_config_directory(void **state)
{
    char cwd[PATH_MAX], err[SG_CONF_ERR_MAX] = "";
    sg_conf_t *c = NULL;

    /* Loaded by a relative name from elsewhere: paths still resolve against tmp. */
    write_text("t.conf", BASE "audit = { file = \"logs/audit.jsonl\"; };\n"
                              "log = { access = \"logs/access.log\"; };\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmp), 0);
    assert_int_equal(sg_conf_load("t.conf", &c, err, sizeof(err)), 0);
    assert_int_equal(chdir("/"), 0);
    assert_string_equal(c->file, "t.conf");
    assert_string_equal(c->listen[0].certificate, at("server.crt"));
    assert_string_equal(c->listen[0].private_key, at("server.key"));
    assert_string_equal(c->audit.file, at("logs/audit.jsonl"));
    assert_string_equal(c->log.access, at("logs/access.log"));
    sg_conf_unref(c);

    /* Errors name the file as it was given. */
    write_text("t.conf", BASE "colour = 1;\n");
    assert_int_equal(chdir(tmp), 0);
    assert_int_equal(sg_conf_load("t.conf", &c, err, sizeof(err)), -1);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(err, "t.conf:3: unknown key 'colour'");
}

static void keeps_absolute_paths_and_special_log_values(void **state)
{
    char text[2048];
    sg_conf_t *c;

    snprintf(text, sizeof(text),
             "listen = ( { port = 8443; tls = { certificate = \"%s\"; private_key = \"%s\"; }; } "
             ");\n" BASE_UPSTREAM "log = { access = \"stderr\"; level = \"debug\"; };\n",
             at("server.crt"), at("server.key"));
    c = load_ok(text);
    assert_string_equal(c->listen[0].certificate, at("server.crt"));
    assert_string_equal(c->log.access, "stderr");
    assert_int_equal(c->log.level, SG_LOG_DEBUG);
    sg_conf_unref(c);
}

static void resolves_workers_zero_to_the_online_cpus(void **state)
{
    sg_conf_t *c = load_ok("workers = 0;\n" BASE);
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    assert_int_equal(c->workers, n < 1 ? 1 : n);
    sg_conf_unref(c);
}

static void loads_every_section_when_all_are_set(void **state)
{
    sg_conf_t *c = load_ok(
        "workers = 3;\n"
        "listen = ( { address = \"::1\"; port = 8443; tls = { certificate = \"server.crt\";\n"
        "             private_key = \"server.key\"; min_version = \"TLSv1.3\";\n"
        "             client_ca = \"server.crt\"; }; },\n"
        "           { port = 8444; tls = { certificate = \"server.crt\"; private_key = "
        "\"server.key\"; }; } );\n"
        "admin = { port = 9901; };\n"
        "upstream = { url = \"https://vc.example/\"; ca_file = \"server.crt\"; verify = false;\n"
        "             connect_timeout_ms = 1; response_timeout_ms = 2; max_idle = 0; };\n"
        "routes = { unmatched = \"deny\"; };\n"
        "policy = {\n"
        "  tokens = ( { id = \"a\"; sha256 = \""
        "00000000000000000000000000000000"
        "00000000000000000000000000000001\"; subject = \"s\"; tenant = \"t1\";\n"
        "               roles = [\"r1\", \"r2\"]; } );\n"
        "  jwt = { issuer = \"https://idp\"; audience = [\"a1\", \"a2\"]; leeway_s = 0;\n"
        "          keys = ( { kid = \"k1\"; alg = \"RS256\"; public_key = \"rsa.pub\"; },\n"
        "                   { kid = \"k2\"; alg = \"ES256\"; public_key = \"ec256.pub\"; },\n"
        "                   { kid = \"k3\"; alg = \"EdDSA\"; public_key = \"ed25519.pub\"; },\n"
        "                   { kid = \"k4\"; alg = \"HS256\"; secret_file = \"secret32.bin\"; } );\n"
        "          subject_claim = \"email\"; tenant_claim = \"org\"; roles_claim = \"groups\"; "
        "};\n"
        "  roles = ( { name = \"r1\"; privileges = [\"StorageViews.ConfigureService\"]; },\n"
        "            { name = \"r2\"; } );\n"
        "  tenants = ( { name = \"t1\"; providers = [\"vasa-1\"]; fault_domains = [\"fd-1\", "
        "\"fd-2*\"]; } );\n"
        "  force_privilege = \"Force\";\n"
        "};\n"
        "batch = { max_size = 8; providers = ( { moid = \"vasa-1\"; max_size = 4; } );\n"
        "          learn_from_toomany = false; max_parallel = 2; max_parts = 9;\n"
        "          task_key_file = \"secret32.bin\"; };\n"
        "audit = { file = \"logs/a.jsonl\"; sync = \"batch\"; fail_closed = false;\n"
        "          signing_key = \"ed25519.key\"; checkpoint_every = 5;\n"
        "          syslog = { enabled = true; facility = \"local3\"; }; };\n");

    assert_int_equal(c->workers, 3);
    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[0].address, "::1");
    assert_int_equal(c->listen[0].min_version, 0x0304);
    assert_string_equal(c->listen[0].client_ca, at("server.crt"));
    assert_string_equal(c->listen[1].address, "127.0.0.1");
    assert_int_equal(c->listen[1].port, 8444);
    assert_int_equal(c->admin.enabled, 1);
    assert_string_equal(c->admin.address, "127.0.0.1");
    assert_int_equal(c->admin.port, 9901);
    assert_int_equal(c->upstreams[0].tls, 1);
    assert_int_equal(c->upstreams[0].port, 443);
    assert_string_equal(c->upstreams[0].authority, "vc.example");
    assert_int_equal(c->upstreams[0].verify, 0);
    assert_int_equal(c->routes.unmatched, SG_ROUTE_DENY);
    assert_int_equal(c->policy.ntokens, 1);
    assert_int_equal(c->policy.tokens[0].sha256[31], 1);
    assert_int_equal(c->policy.tokens[0].roles.n, 2);
    assert_string_equal(c->policy.tokens[0].roles.v[1], "r2");
    assert_int_equal(c->policy.jwt.enabled, 1);
    assert_int_equal(c->policy.jwt.audience.n, 2);
    assert_string_equal(c->policy.jwt.audience.v[1], "a2");
    assert_int_equal(c->policy.jwt.nkeys, 4);
    assert_int_equal(c->policy.jwt.keys[0].alg, SG_JWT_RS256);
    assert_string_equal(c->policy.jwt.keys[0].public_key, at("rsa.pub"));
    assert_null(c->policy.jwt.keys[0].secret_file);
    assert_int_equal(c->policy.jwt.keys[2].alg, SG_JWT_EDDSA);
    assert_int_equal(c->policy.jwt.keys[3].alg, SG_JWT_HS256);
    assert_null(c->policy.jwt.keys[3].public_key);
    assert_string_equal(c->policy.jwt.keys[3].secret_file, at("secret32.bin"));
    assert_string_equal(c->policy.jwt.roles_claim, "groups");
    assert_int_equal(c->policy.nroles, 2);
    assert_int_equal(c->policy.roles[1].privileges.n, 0);
    assert_string_equal(c->policy.tenants[0].fault_domains.v[1], "fd-2*");
    assert_string_equal(c->policy.force_privilege, "Force");
    assert_int_equal(c->batch.providers[0].max_size, 4);
    assert_int_equal(c->batch.learn_from_toomany, 0);
    assert_string_equal(c->batch.task_key_file, at("secret32.bin"));
    assert_int_equal(c->audit.sync, SG_AUDIT_SYNC_BATCH);
    assert_int_equal(c->audit.fail_closed, 0);
    assert_int_equal(c->audit.checkpoint_every, 5);
    assert_int_equal(c->audit.syslog.enabled, 1);
    assert_int_equal(c->audit.syslog.facility, LOG_LOCAL3);
    sg_conf_unref(c);
}

static void takes_a_single_string_as_the_jwt_audience(void **state)
{
    sg_conf_t *c = load_ok(
        BASE
        "policy = { jwt = { issuer = \"i\"; audience = \"smsguard\";\n"
        "  keys = ( { kid = \"k\"; alg = \"EdDSA\"; public_key = \"ed25519.pub\"; } ); }; };\n");

    assert_int_equal(c->policy.jwt.audience.n, 1);
    assert_string_equal(c->policy.jwt.audience.v[0], "smsguard");
    sg_conf_unref(c);
}

/* ---- structure errors -------------------------------------------------------------- */

static void rejects_unknown_key_with_its_line(void **state)
{
    expect_error(BASE "limits = {\n  max_bodyy = 1;\n};\n", 4, "unknown key 'limits.max_bodyy'");
    expect_error(BASE "colour = \"blue\";\n", 3, "unknown key 'colour'");
    expect_error("listen = ( { port = 8443;\n"
                 "  tls = { certificate = \"server.crt\"; private_key = \"server.key\";\n"
                 "          ciphers = \"ALL\"; }; } );\n" BASE_UPSTREAM,
                 3, "unknown key 'listen.tls.ciphers'");
    expect_error(BASE "policy = { tokens = ( { id = \"a\";\n  secret = \"x\"; } ); };\n", 4,
                 "unknown key 'policy.tokens.secret'");
}

static void rejects_wrong_type_with_its_line(void **state)
{
    expect_error(BASE "limits = {\n  max_body_bytes = \"1M\";\n};\n", 4,
                 "'limits.max_body_bytes' must be an integer");
    expect_error(BASE "limits = { max_body_bytes = 1.5; };\n", 3,
                 "'limits.max_body_bytes' must be an integer");
    expect_error("workers = true;\n" BASE, 1, "'workers' must be an integer");
    expect_error(BASE_LISTEN "upstream = { url = \"http://h\"; verify = \"yes\"; };\n", 2,
                 "'upstream.verify' must be true or false");
    expect_error(BASE_LISTEN "upstream = { url = 80; };\n", 2, "'upstream.url' must be a string");
    expect_error(BASE "limits = 5;\n", 3, "'limits' must be a group { ... }");
    expect_error("listen = { port = 8443; };\n" BASE_UPSTREAM, 1,
                 "'listen' must be a list ( { ... }, ... )");
    expect_error("listen = ( 8443 );\n" BASE_UPSTREAM, 1,
                 "'listen' entries must be groups { ... }");
    expect_error(BASE "policy = { roles = ( { name = \"r\"; privileges = \"x\"; } ); };\n", 3,
                 "'policy.roles.privileges' must be a list of strings");
    expect_error(BASE "policy = { tenants = ( { name = \"t\";\n  providers = (\"a\", 1); } ); };\n",
                 4, "'policy.tenants.providers' must be a list of strings");
    expect_error(BASE "policy = { tenants = ( { name = \"t\"; providers = [\"\"]; } ); };\n", 3,
                 "'policy.tenants.providers' must not contain empty strings");
    expect_error(BASE "policy = { jwt = { issuer = \"i\"; audience = 5; keys = (); }; };\n", 3,
                 "'policy.jwt.audience' must be a string or a list of strings");
    expect_error(BASE "policy = { tokens = ( { id = \"\"; } ); };\n", 3,
                 "'policy.tokens.id' must not be empty");
}

static void rejects_out_of_range_values(void **state)
{
    expect_error(BASE "limits = { max_body_bytes = 0; };\n", 3,
                 "'limits.max_body_bytes' must be between 1 and 268435456");
    expect_error("workers = -1;\n" BASE, 1, "'workers' must be between 0 and 1024");
    expect_error("listen = ( { port = 70000; tls = { certificate = \"server.crt\"; "
                 "private_key = \"server.key\"; }; } );\n" BASE_UPSTREAM,
                 1, "'listen.port' must be between 1 and 65535");
    expect_error(BASE "batch = { max_parallel = 0; };\n", 3,
                 "'batch.max_parallel' must be between 1 and 1024");
    expect_error(BASE "limits = { max_header_bytes = 100; };\n", 3,
                 "'limits.max_header_bytes' must be between 1024 and 1048576");
}

static void rejects_integers_that_libconfig_would_wrap(void **state)
{
    /* libconfig 1.5 reads 4294968320 as 1024: that must not pass as 1024. */
    expect_error(BASE "# 99999999999 in a comment is fine\n"
                      "limits = { max_header_bytes = 4294968320; };\n",
                 4, "integer '4294968320' is out of range");
    expect_error(BASE "limits = {\n  max_streams = 0xFFFFFFFF; };\n", 4,
                 "integer '0xFFFFFFFF' is out of range");
    expect_error("workers = -5000000000;\n" BASE, 1, "integer '-5000000000' is out of range");
    /* Floats are libconfig's to reject, even as the file's last bytes. */
    expect_error(BASE "workers = 1.5e+3", 3, "'workers' must be an integer");
    /* Strings and names holding digits are not integers. */
    sg_conf_unref(load_ok(BASE "policy = { force_privilege = \"99999999999\"; };\n"
                               "audit = { syslog = { facility = \"local7\"; }; };\n"));
}

static void rejects_bad_enum_values(void **state)
{
    expect_error(BASE "log = { level = \"verbose\"; };\n", 3,
                 "'log.level' must be one of error, warn, info, debug");
    expect_error(BASE "routes = { unmatched = \"drop\"; };\n", 3,
                 "'routes.unmatched' must be one of forward, deny");
    expect_error(BASE "audit = { sync = true; };\n", 3,
                 "'audit.sync' must be one of always, batch, none");
    expect_error(
        "listen = ( { port = 1; tls = { certificate = \"server.crt\";\n"
        "  private_key = \"server.key\"; min_version = \"TLSv1.1\"; }; } );\n" BASE_UPSTREAM,
        2, "'listen.tls.min_version' must be one of TLSv1.2, TLSv1.3");
    expect_error(BASE "policy = { jwt = { issuer = \"i\"; audience = \"a\";\n"
                      "  keys = ( { kid = \"k\"; alg = \"none\"; } ); }; };\n",
                 4, "'policy.jwt.keys.alg' must be one of RS256, ES256, EdDSA, HS256");
    expect_error(BASE "audit = { syslog = { facility = \"local8\"; }; };\n", 3,
                 "'audit.syslog.facility' must be one of auth, authpriv, daemon, local0, local1, "
                 "local2, local3, local4, local5, local6, local7");
}

/* audit.syslog.address: the one parser the check and the audit writer share. */
static void splits_syslog_addresses(void **state)
{
    static const struct {
        const char *in;
        int transport;
        const char *host, *port, *why;
    } cases[] = {
        {"unix:/dev/log", SG_SYSLOG_UNIX, "/dev/log", "", NULL},
        {"udp:127.0.0.1:514", SG_SYSLOG_UDP, "127.0.0.1", "514", NULL},
        {"tcp:siem-relay.example.com:6514", SG_SYSLOG_TCP, "siem-relay.example.com", "6514", NULL},
        {"tcp:[::1]:601", SG_SYSLOG_TCP, "::1", "601", NULL},
        {"tcp:[fe80::1%eth0]:601", 0, NULL, NULL, "bad IPv6 address"},
        {"tcp:[::1]601", 0, NULL, NULL, "bad IPv6 address"},
        {"tcp:::1:601", 0, NULL, NULL, "bad host name"},
        {"tcp:host", 0, NULL, NULL, "missing :PORT"},
        {"tcp::514", 0, NULL, NULL, "bad host name"},
        {"tcp:host:0", 0, NULL, NULL, "bad port (1-65535)"},
        {"tcp:host:65536", 0, NULL, NULL, "bad port (1-65535)"},
        {"tcp:host:+514", 0, NULL, NULL, "bad port (1-65535)"},
        {"tcp:host:514x", 0, NULL, NULL, "bad port (1-65535)"},
        {"udp:host:", 0, NULL, NULL, "bad port (1-65535)"},
        {"unix:dev/log", 0, NULL, NULL,
         "a unix socket needs an absolute path of at most 107 bytes"},
        {"tls:host:6514", 0, NULL, NULL,
         "must be \"unix:PATH\", \"udp:HOST:PORT\" or \"tcp:HOST:PORT\""},
        {"/dev/log", 0, NULL, NULL,
         "must be \"unix:PATH\", \"udp:HOST:PORT\" or \"tcp:HOST:PORT\""},
    };
    sg_syslog_addr_t a;
    const char *why;
    char longpath[160];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        if (cases[i].why == NULL) {
            assert_int_equal(sg_conf_syslog_address(cases[i].in, &a, &why), 0);
            assert_int_equal(a.transport, cases[i].transport);
            assert_string_equal(a.host, cases[i].host);
            assert_string_equal(a.port, cases[i].port);
        } else {
            assert_int_equal(sg_conf_syslog_address(cases[i].in, &a, &why), -1);
            assert_string_equal(why, cases[i].why);
        }
    }
    /* sun_path holds 107 bytes and the NUL. */
    memcpy(longpath, "unix:/", 6);
    memset(longpath + 6, 'a', 106);
    longpath[112] = '\0';
    assert_int_equal(sg_conf_syslog_address(longpath, &a, &why), 0);
    assert_int_equal(strlen(a.host), 107);
    longpath[112] = 'a';
    longpath[113] = '\0';
    assert_int_equal(sg_conf_syslog_address(longpath, &a, &why), -1);
    (void)state;
}

static void rejects_bad_syslog_keys_at_their_line(void **state)
{
    sg_conf_t *c = load_ok(BASE "audit = { syslog = { enabled = true;\n"
                                "  address = \"tcp:[::1]:601\";\n"
                                "  app_name = \"smsguard-east\"; }; };\n");

    assert_string_equal(c->audit.syslog.address, "tcp:[::1]:601");
    assert_string_equal(c->audit.syslog.app_name, "smsguard-east");
    sg_conf_unref(c);
    expect_error(BASE "audit = { syslog = {\n  address = \"tcp:host\"; }; };\n", 4,
                 "'audit.syslog.address': missing :PORT");
    expect_error(BASE "audit = { syslog = { app_name = \"sms guard\"; }; };\n", 3,
                 "'audit.syslog.app_name' must be 1 to 48 printable ASCII characters without "
                 "spaces");
    expect_error(BASE "audit = { syslog = { app_name = \"a123456789012345678901234567890123456789"
                      "012345678\"; }; };\n",
                 3,
                 "'audit.syslog.app_name' must be 1 to 48 printable ASCII characters without "
                 "spaces");
    expect_error(BASE "audit = { syslog = { app_name = \"\"; }; };\n", 3,
                 "'audit.syslog.app_name' must not be empty");
    (void)state;
}

static void rejects_missing_required_keys_at_the_enclosing_group(void **state)
{
    expect_error("listen = (\n  {\n    tls = { certificate = \"server.crt\"; private_key = "
                 "\"server.key\"; };\n"
                 "  }\n);\n" BASE_UPSTREAM,
                 2, "missing required key 'listen.port'");
    expect_error("listen = ( { port = 8443; } );\n" BASE_UPSTREAM, 1,
                 "missing required key 'listen.tls'");
    expect_error("listen = ( { port = 8443;\n  tls = { certificate = \"server.crt\"; }; } "
                 ");\n" BASE_UPSTREAM,
                 2, "missing required key 'listen.tls.private_key'");
    expect_error(BASE_LISTEN "upstream = {\n  verify = true;\n};\n", 2,
                 "missing required key 'upstream.url'");
    expect_error(BASE_LISTEN, 0, "missing required key 'upstream'");
    expect_error(BASE_UPSTREAM, 0, "missing required key 'listen'");
    expect_error("listen = ();\n" BASE_UPSTREAM, 1, "'listen' must have at least 1 entry");
    expect_error(BASE "admin = { address = \"127.0.0.1\"; };\n", 3,
                 "missing required key 'admin.port'");
    expect_error(BASE "batch = { providers = ( { moid = \"v\"; } ); };\n", 3,
                 "missing required key 'batch.providers.max_size'");
    expect_error(
        BASE
        "policy = { jwt = { audience = \"a\";\n"
        "  keys = ( { kid = \"k\"; alg = \"EdDSA\"; public_key = \"ed25519.pub\"; } ); }; };\n",
        3, "missing required key 'policy.jwt.issuer'");
    expect_error(BASE "policy = { jwt = { issuer = \"i\"; audience = \"a\"; keys = (); }; };\n", 3,
                 "'policy.jwt.keys' must have at least 1 entry");
    expect_error(
        BASE
        "policy = { jwt = { issuer = \"i\"; audience = [];\n"
        "  keys = ( { kid = \"k\"; alg = \"EdDSA\"; public_key = \"ed25519.pub\"; } ); }; };\n",
        3, "'policy.jwt.audience' must not be empty");
}

static void reports_syntax_errors_with_libconfigs_text(void **state)
{
    expect_error(BASE "workers = ;\n", 3, "syntax error");
    expect_error(BASE "workers = 1;\nworkers = 2;\n", 4, "duplicate setting name");
}

static void reports_an_unreadable_config_file_without_a_line(void **state)
{
    char err[SG_CONF_ERR_MAX], want[PATH_MAX + 64];
    sg_conf_t *c = NULL;

    assert_int_equal(sg_conf_load(at("missing.conf"), &c, err, sizeof(err)), -1);
    assert_null(c);
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", at("missing.conf"));
    assert_string_equal(err, want);

    assert_int_equal(sg_conf_load(tmp, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmp);
    assert_string_equal(err, want);
}

static void truncates_errors_to_the_buffer_it_is_given(void **state)
{
    char err[8];
    sg_conf_t *c = NULL;

    assert_int_equal(sg_conf_load(at("missing.conf"), &c, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_int_equal(sg_conf_load(at("missing.conf"), &c, NULL, 0), -1);
}

static void names_included_files_in_errors(void **state)
{
    char want[PATH_MAX + 128], err[SG_CONF_ERR_MAX];
    sg_conf_t *c = NULL;

    write_text("inc.conf", "limits = {\n  max_streams = 5000000000;\n};\n");
    write_text("t.conf", BASE "@include \"inc.conf\"\n");
    assert_int_equal(sg_conf_load(at("t.conf"), &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: integer '5000000000' is out of range", at("inc.conf"));
    assert_string_equal(err, want);

    write_text("inc.conf", "limits = {\n  max_streamz = 5;\n};\n");
    assert_int_equal(sg_conf_load(at("t.conf"), &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: unknown key 'limits.max_streamz'", at("inc.conf"));
    assert_string_equal(err, want);

    write_text("inc.conf", "limits = {\n  max_streams = ;\n};\n");
    assert_int_equal(sg_conf_load(at("t.conf"), &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: syntax error", at("inc.conf"));
    assert_string_equal(err, want);

    write_text("inc.conf", "limits = { max_streams = 5; };\n");
    assert_int_equal(sg_conf_load(at("t.conf"), &c, err, sizeof(err)), 0);
    assert_int_equal(c->limits.max_streams, 5);
    sg_conf_unref(c);
}

/* libconfig's scanner exit()s the process when it cannot read an included file (found by
 * tests/fuzz/fuzz_conf.c): such an @include is refused before libconfig opens it. */
static void refuses_an_include_it_cannot_read_without_exiting(void **state)
{
    expect_error(BASE "# logs/ is a directory\n@include \"logs\"\n", 4,
                 "cannot read '%s': Is a directory", at("logs"));
    expect_error(BASE "@include \"absent.conf\"\n", 3,
                 "cannot read '%s': No such file or directory", at("absent.conf"));
    /* A name whose escapes libconfig would read otherwise than the check. */
    expect_error(BASE "@include \"lo\\\\gs\"\n", 3,
                 "@include: a file name with '\\' or a control character");
}

/* A line break in a string value (a path here) must not split the error line. */
static void keeps_every_error_on_one_line(void **state)
{
    expect_error("listen = ( { port = 8443; tls = { certificate = \"a\\nb\";\n"
                 "  private_key = \"server.key\"; }; } );\n" BASE_UPSTREAM,
                 1, "'listen.tls.certificate': cannot read '%s/a?b': No such file or directory",
                 tmp);
}

/* A NUL byte would hide the rest of the file from those checks (libconfig reads past it). */
static void refuses_a_nul_byte_at_its_line(void **state)
{
    static const char text[] = BASE "# a\0b\n@include \"logs\"\n";
    char want[PATH_MAX + 64], err[SG_CONF_ERR_MAX];
    sg_conf_t *c = NULL;

    write_bytes("t.conf", text, sizeof(text) - 1);
    assert_int_equal(sg_conf_load(at("t.conf"), &c, err, sizeof(err)), -1);
    assert_null(c);
    snprintf(want, sizeof(want), "%s:3: NUL byte in the file", at("t.conf"));
    assert_string_equal(err, want);
}

/* ---- files ------------------------------------------------------------------------- */

static void rejects_a_missing_certificate_at_its_line(void **state)
{
    expect_error("listen = ( { port = 8443; tls = {\n  certificate = \"nope.crt\";\n"
                 "  private_key = \"server.key\"; }; } );\n" BASE_UPSTREAM,
                 2, "'listen.tls.certificate': cannot read '%s': No such file or directory",
                 at("nope.crt"));
}

static void rejects_files_that_do_not_hold_what_they_should(void **state)
{
    expect_error("listen = ( { port = 8443; tls = {\n  certificate = \"garbage.txt\";\n"
                 "  private_key = \"server.key\"; }; } );\n" BASE_UPSTREAM,
                 2, "'listen.tls.certificate': '%s': not a PEM certificate", at("garbage.txt"));
    expect_error("listen = ( { port = 8443; tls = {\n  certificate = \".\";\n"
                 "  private_key = \"server.key\"; }; } );\n" BASE_UPSTREAM,
                 2, "'listen.tls.certificate': cannot read '%s/.': Is a directory", tmp);
    expect_error("listen = ( { port = 8443; tls = { certificate = \"server.crt\";\n"
                 "  private_key = \"server.crt\"; }; } );\n" BASE_UPSTREAM,
                 2, "'listen.tls.private_key': '%s': not a PEM private key", at("server.crt"));
    expect_error("listen = ( { port = 8443; tls = { certificate = \"server.crt\";\n"
                 "  private_key = \"encrypted.key\"; }; } );\n" BASE_UPSTREAM,
                 2, "'listen.tls.private_key': '%s': encrypted private keys are not supported",
                 at("encrypted.key"));
    expect_error(
        "listen = ( { port = 8443; tls = { certificate = \"server.crt\";\n"
        "  private_key = \"server.key\";\n  client_ca = \"server.key\"; }; } );\n" BASE_UPSTREAM,
        3, "'listen.tls.client_ca': '%s': no PEM certificate found", at("server.key"));
    expect_error(BASE_LISTEN "upstream = { url = \"https://h\";\n  ca_file = \"nope.pem\"; };\n", 3,
                 "'upstream.ca_file': cannot read '%s': No such file or directory", at("nope.pem"));
}

static void rejects_a_private_key_that_does_not_match_the_certificate(void **state)
{
    expect_error("listen = ( { port = 8443; tls = { certificate = \"server.crt\";\n"
                 "  private_key = \"other.key\"; }; } );\n" BASE_UPSTREAM,
                 2, "'listen.tls.private_key': '%s': does not match the certificate '%s'",
                 at("other.key"), at("server.crt"));
}

static void rejects_an_unreadable_file(void **state)
{
    if (geteuid() == 0) {
        /* root reads a mode-000 file anyway (CAP_DAC_OVERRIDE), and the tests run as
         * root in CI: there is no unreadable regular file to show it with. */
        skip();
    }
    write_text("unreadable.crt", "x");
    assert_int_equal(chmod(at("unreadable.crt"), 0), 0);
    expect_error("listen = ( { port = 8443; tls = {\n  certificate = \"unreadable.crt\";\n"
                 "  private_key = \"server.key\"; }; } );\n" BASE_UPSTREAM,
                 2, "'listen.tls.certificate': cannot read '%s': Permission denied",
                 at("unreadable.crt"));
}

static void never_puts_file_contents_in_errors(void **state)
{
    char err[SG_CONF_ERR_MAX];
    sg_conf_t *c = NULL;
    const char *texts[] = {
        "listen = ( { port = 8443; tls = { certificate = \"garbage.txt\"; private_key = "
        "\"server.key\"; }; } );\n" BASE_UPSTREAM,
        "listen = ( { port = 8443; tls = { certificate = \"server.crt\"; private_key = "
        "\"garbage.txt\"; }; } );\n" BASE_UPSTREAM,
        BASE "policy = { jwt = { issuer = \"i\"; audience = \"a\"; keys = ( { kid = \"k\"; alg = "
             "\"RS256\"; public_key = \"garbage.txt\"; } ); }; };\n",
        BASE "audit = { signing_key = \"garbage.txt\"; };\n",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        write_text("t.conf", texts[i]);
        assert_int_equal(sg_conf_load(at("t.conf"), &c, err, sizeof(err)), -1);
        assert_null(strstr(err, "TOPSECRET"));
    }
}

static void checks_jwt_keys_against_their_alg(void **state)
{
#define JWT(keys)                                                                                  \
    BASE "policy = { jwt = { issuer = \"i\"; audience = \"a\"; keys = (\n" keys " ); }; };\n"
    expect_error(JWT("  { kid = \"k\"; alg = \"RS256\";\n    public_key = \"ec256.pub\"; }"), 5,
                 "'policy.jwt.keys.public_key': '%s': not an RSA public key (alg RS256)",
                 at("ec256.pub"));
    expect_error(JWT("  { kid = \"k\"; alg = \"RS256\"; public_key = \"rsa1024.pub\"; }"), 4,
                 "'policy.jwt.keys.public_key': '%s': RSA key shorter than 2048 bits",
                 at("rsa1024.pub"));
    expect_error(JWT("  { kid = \"k\"; alg = \"ES256\"; public_key = \"ec384.pub\"; }"), 4,
                 "'policy.jwt.keys.public_key': '%s': not an EC P-256 public key (alg ES256)",
                 at("ec384.pub"));
    expect_error(JWT("  { kid = \"k\"; alg = \"EdDSA\"; public_key = \"rsa.pub\"; }"), 4,
                 "'policy.jwt.keys.public_key': '%s': not an Ed25519 public key (alg EdDSA)",
                 at("rsa.pub"));
    expect_error(JWT("  { kid = \"k\"; alg = \"RS256\"; public_key = \"rsa.key\"; }"), 4,
                 "'policy.jwt.keys.public_key': '%s': not a PEM public key", at("rsa.key"));
    expect_error(JWT("  { kid = \"k\"; alg = \"RS256\"; }"), 4,
                 "missing required key 'policy.jwt.keys.public_key' (alg RS256)");
    expect_error(JWT("  { kid = \"k\"; alg = \"RS256\"; public_key = \"rsa.pub\";\n"
                     "    secret_file = \"secret32.bin\"; }"),
                 5, "'policy.jwt.keys.secret_file' is not allowed with alg RS256");
    expect_error(JWT("  { kid = \"k\"; alg = \"HS256\"; }"), 4,
                 "missing required key 'policy.jwt.keys.secret_file' (alg HS256)");
    expect_error(JWT("  { kid = \"k\"; alg = \"HS256\"; secret_file = \"secret32.bin\";\n"
                     "    public_key = \"rsa.pub\"; }"),
                 5, "'policy.jwt.keys.public_key' is not allowed with alg HS256");
    expect_error(JWT("  { kid = \"k\"; alg = \"HS256\"; secret_file = \"secret31.bin\"; }"), 4,
                 "'policy.jwt.keys.secret_file': '%s': shorter than 32 bytes", at("secret31.bin"));
    expect_error(JWT("  { kid = \"k\"; alg = \"HS256\"; secret_file = \"empty.bin\"; }"), 4,
                 "'policy.jwt.keys.secret_file': '%s': empty", at("empty.bin"));
    expect_error(JWT("  { kid = \"k\"; alg = \"HS256\"; secret_file = \"\"; }"), 4,
                 "'policy.jwt.keys.secret_file' must not be empty");
#undef JWT
}

static void checks_the_task_key_signing_key_and_log_files(void **state)
{
    sg_conf_t *c;

    expect_error(BASE "batch = {\n  task_key_file = \"secret31.bin\"; };\n", 4,
                 "'batch.task_key_file': '%s': shorter than 32 bytes", at("secret31.bin"));
    expect_error(BASE "audit = { signing_key = \"rsa.key\"; };\n", 3,
                 "'audit.signing_key': '%s': not an Ed25519 private key", at("rsa.key"));
    expect_error(BASE "audit = { signing_key = \"ed25519.pub\"; };\n", 3,
                 "'audit.signing_key': '%s': not a PEM private key", at("ed25519.pub"));
    expect_error(BASE "audit = { file = \"nodir/audit.jsonl\"; };\n", 3,
                 "'audit.file': directory '%s': No such file or directory", at("nodir"));
    expect_error(BASE "audit = { file = \"garbage.txt/audit.jsonl\"; };\n", 3,
                 "'audit.file': directory '%s': Not a directory", at("garbage.txt"));
    expect_error(BASE "audit = { file = \"logs\"; };\n", 3, "'audit.file': '%s': Is a directory",
                 at("logs"));
    expect_error(BASE "log = { access = \"nodir/access.log\"; };\n", 3,
                 "'log.access': directory '%s': No such file or directory", at("nodir"));
    expect_error(BASE "log = { access = \"\"; };\n", 3,
                 "'log.access' must be \"off\", \"stderr\" or a file path");

    /* An existing audit file is fine (it is appended to). */
    c = load_ok(BASE "audit = { file = \"garbage.txt\"; signing_key = \"ed25519.key\"; };\n");
    assert_string_equal(c->audit.file, at("garbage.txt"));
    assert_string_equal(c->audit.signing_key, at("ed25519.key"));
    sg_conf_unref(c);
}

/* ---- upstream ---------------------------------------------------------------------- */

static sg_conf_t *load_upstream(const char *url, const char *server_name)
{
    char text[1024];

    snprintf(text, sizeof(text),
             BASE_LISTEN "upstream = { url = \"%s\"; server_name = \"%s\"; };\n", url, server_name);
    return load_ok(text);
}

static void parses_upstream_urls_with_default_and_explicit_ports(void **state)
{
    static const struct {
        const char *url, *server_name;
        int tls;
        const char *host;
        int port;
        const char *authority;
    } cases[] = {
        {"http://127.0.0.1:9443", "", 0, "127.0.0.1", 9443, "127.0.0.1:9443"},
        {"http://sim.local", "", 0, "sim.local", 80, "sim.local"},
        {"http://sim.local:80/", "", 0, "sim.local", 80, "sim.local"},
        {"https://vcenter.example", "", 1, "vcenter.example", 443, "vcenter.example"},
        {"https://vcenter.example:443/", "", 1, "vcenter.example", 443, "vcenter.example"},
        {"https://vcenter.example:80", "", 1, "vcenter.example", 80, "vcenter.example:80"},
        {"HTTPS://VC.Example:8443", "", 1, "VC.Example", 8443, "VC.Example:8443"},
        {"http://[::1]:9443", "", 0, "::1", 9443, "[::1]:9443"},
        {"https://[2001:db8::1]/", "", 1, "2001:db8::1", 443, "[2001:db8::1]"},
        {"https://10.0.0.5:8443", "vc.example", 1, "10.0.0.5", 8443, "vc.example"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sg_conf_t *c = load_upstream(cases[i].url, cases[i].server_name);

        assert_string_equal(c->upstreams[0].url, cases[i].url);
        assert_int_equal(c->upstreams[0].tls, cases[i].tls);
        assert_string_equal(c->upstreams[0].host, cases[i].host);
        assert_int_equal(c->upstreams[0].port, cases[i].port);
        assert_string_equal(c->upstreams[0].authority, cases[i].authority);
        assert_string_equal(c->upstreams[0].server_name, cases[i].server_name);
        sg_conf_unref(c);
    }
}

static void rejects_upstream_urls_that_are_not_one_origin(void **state)
{
    static const struct {
        const char *url, *why;
    } cases[] = {
        {"ftp://vc.example", "scheme must be http:// or https://"},
        {"vc.example:443", "scheme must be http:// or https://"},
        {"https:/vc.example", "scheme must be http:// or https://"},
        {"https://", "missing host"},
        {"https://:443", "missing host"},
        {"https://admin:hunter2@vc.example", "user info is not allowed"},
        {"https://vc.example/sdk", "a path other than \"/\" is not allowed"},
        {"https://vc.example//", "a path other than \"/\" is not allowed"},
        {"https://vc.example/?a=b", "a query or fragment is not allowed"},
        {"https://vc.example#x", "a query or fragment is not allowed"},
        {"https://vc.example:0", "bad port (1-65535)"},
        {"https://vc.example:65536", "bad port (1-65535)"},
        {"https://vc.example:", "bad port (1-65535)"},
        {"https://vc.example:44x", "bad port (1-65535)"},
        {"https://vc.example:000443", "bad port (1-65535)"},
        {"https://[::1", "bad IPv6 address"},
        {"https://[vc.example]", "bad IPv6 address"},
        {"https://[::1]x", "bad port (1-65535)"},
        {"https://vc example", "bad host name"},
        {"https://vc%2eexample", "bad host name"},
    };
    char text[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), BASE_LISTEN "upstream = {\n  url = \"%s\"; };\n",
                 cases[i].url);
        expect_error(text, 3, "'upstream.url': %s", cases[i].why);
    }
    expect_error(BASE_LISTEN
                 "upstream = { url = \"https://h\";\n  server_name = \"vc\\r\\nX: y\"; };\n",
                 3, "'upstream.server_name' must be a host name");
}

/* ---- policy ------------------------------------------------------------------------ */

#define POLICY_TAIL                                                                                \
    "  roles = ( { name = \"r\"; } );\n"                                                           \
    "  tenants = ( { name = \"t\"; } );\n"                                                         \
    "};\n"

static void decodes_token_sha256_from_hex_in_either_case(void **state)
{
    /* SHA-256 of "dev-token-please-change", mixed case. */
    static const char hex[] = "4A815133c7d7e3be0cf9e6279ae0d2ac83dd4f96ad99a87dbaada1da608060F8";
    char text[1024];
    uint8_t want[32];
    sg_conf_t *c;

    SHA256((const unsigned char *)"dev-token-please-change", 23, want);
    snprintf(text, sizeof(text),
             BASE "policy = {\n  tokens = ( { id = \"a\"; sha256 = \"%s\"; subject = \"s\";\n"
                  "    tenant = \"t\"; roles = [\"r\"]; } );\n" POLICY_TAIL,
             hex);
    c = load_ok(text);
    assert_memory_equal(c->policy.tokens[0].sha256, want, 32);
    assert_string_equal(c->policy.tokens[0].id, "a");
    assert_string_equal(c->policy.tokens[0].subject, "s");
    assert_string_equal(c->policy.tokens[0].tenant, "t");
    assert_int_equal(c->policy.tokens[0].roles.n, 1);
    sg_conf_unref(c);
}

static void rejects_token_hashes_that_are_not_64_hex_digits(void **state)
{
    const char *bad[] = {
        "4a815133c7d7e3be0cf9e6279ae0d2ac83dd4f96ad99a87dbaada1da608060f",   /* 63 */
        "4a815133c7d7e3be0cf9e6279ae0d2ac83dd4f96ad99a87dbaada1da608060f8a", /* 65 */
        "4a815133c7d7e3be0cf9e6279ae0d2ac83dd4f96ad99a87dbaada1da608060g8",  /* 'g' */
        "dev-token-please-change",                                           /* the token */
    };
    char text[1024];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 BASE "policy = {\n  tokens = ( { id = \"a\";\n    sha256 = \"%s\";\n"
                      "    subject = \"s\"; tenant = \"t\"; } );\n" POLICY_TAIL,
                 bad[i]);
        expect_error(text, 5,
                     "'policy.tokens.sha256' must be 64 hex digits (the SHA-256 of the token)");
    }
}

#define TOKEN(id, last)                                                                            \
    "  { id = \"" id                                                                               \
    "\"; sha256 = \"000000000000000000000000000000000000000000000000000000000000000" last          \
    "\"; subject = \"s\"; tenant = \"t\"; roles = [\"r\"]; }"

static void rejects_duplicate_names_in_every_list(void **state)
{
    expect_error(
        BASE "policy = { tokens = (\n" TOKEN("a", "1") ",\n" TOKEN("a", "2") " );\n" POLICY_TAIL, 5,
        "duplicate token id 'a' (first at line 4)");
    expect_error(
        BASE "policy = { tokens = (\n" TOKEN("a", "1") ",\n" TOKEN("b", "1") " );\n" POLICY_TAIL, 5,
        "duplicate token sha256 (first at line 4)");
    expect_error(BASE "policy = { roles = (\n  { name = \"r\"; },\n  { name = \"r\"; } ); };\n", 5,
                 "duplicate role name 'r' (first at line 4)");
    expect_error(BASE "policy = { tenants = (\n  { name = \"t\"; },\n  { name = \"t\"; } ); };\n",
                 5, "duplicate tenant name 't' (first at line 4)");
    expect_error(BASE "policy = { jwt = { issuer = \"i\"; audience = \"a\"; keys = (\n"
                      "  { kid = \"k\"; alg = \"EdDSA\"; public_key = \"ed25519.pub\"; },\n"
                      "  { kid = \"k\"; alg = \"ES256\"; public_key = \"ec256.pub\"; } ); }; };\n",
                 5, "duplicate jwt kid 'k' (first at line 4)");
    expect_error(BASE "batch = { providers = (\n  { moid = \"v\"; max_size = 1; },\n"
                      "  { moid = \"v\"; max_size = 2; } ); };\n",
                 5, "duplicate batch provider moid 'v' (first at line 4)");
    expect_error("listen = (\n"
                 "  { address = \"::1\"; port = 8443; tls = { certificate = \"server.crt\"; "
                 "private_key = \"server.key\"; }; },\n"
                 "  { address = \"0:0::1\"; port = 8443; tls = { certificate = \"server.crt\"; "
                 "private_key = \"server.key\"; }; }\n"
                 ");\n" BASE_UPSTREAM,
                 3, "duplicate listen address 0:0::1 port 8443 (first at line 2)");
    expect_error(BASE "admin = {\n  port = 8443; };\n", 4,
                 "'admin' address 127.0.0.1 port 8443 is also a listen address (line 1)");
    expect_error(
        "listen = ( { address = \"localhost\"; port = 1; tls = { certificate = \"server.crt\"; "
        "private_key = \"server.key\"; }; } );\n" BASE_UPSTREAM,
        1, "'listen.address' must be a numeric IPv4 or IPv6 address");
}

static void rejects_tokens_naming_undefined_roles_or_tenants(void **state)
{
    expect_error(BASE "policy = { tokens = ( { id = \"a\"; sha256 = \""
                      "00000000000000000000000000000000"
                      "00000000000000000000000000000000\";\n  subject = \"s\";\n  tenant = \"t9\"; "
                      "} );\n" POLICY_TAIL,
                 5, "'policy.tokens.tenant': unknown tenant 't9'");
    expect_error(BASE "policy = { tokens = ( { id = \"a\"; sha256 = \""
                      "00000000000000000000000000000000"
                      "00000000000000000000000000000000\";\n  subject = \"s\"; tenant = \"t\";\n"
                      "  roles = [\"r\", \"admin\"]; } );\n" POLICY_TAIL,
                 5, "'policy.tokens.roles': unknown role 'admin'");
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void counts_references_and_frees_on_the_last_unref(void **state)
{
    sg_conf_t *c = load_ok(BASE);

    assert_ptr_equal(sg_conf_ref(c), c);
    assert_int_equal(c->refcnt, 2);
    sg_conf_unref(c);
    assert_int_equal(c->refcnt, 1);
    sg_conf_unref(c); /* ASan/LSan catch a leak or a use after this */
    assert_null(sg_conf_ref(NULL));
    sg_conf_unref(NULL);
}

static void handles_many_list_entries(void **state)
{
    /* Enough roles to need several arena chunks and a big block of its own. */
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    sg_conf_t *c;

    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "%s", BASE "policy = { roles = (\n");
    for (int i = 0; i < 2000; i++)
        len +=
            (size_t)snprintf(text + len, cap - len,
                             "%s{ name = \"role-%d\"; privileges = [\"p\"]; }\n", i ? "," : "", i);
    snprintf(text + len, cap - len, "); };\n");
    c = load_ok(text);
    free(text);
    assert_int_equal(c->policy.nroles, 2000);
    assert_string_equal(c->policy.roles[1999].name, "role-1999");
    sg_conf_unref(c);
}

/* ---- the shipped example ----------------------------------------------------------- */

static void loads_the_shipped_example_configuration(void **state)
{
    char src[PATH_MAX], err[SG_CONF_ERR_MAX] = "";
    uint8_t want[32];
    FILE *in, *out;
    sg_conf_t *c = NULL;
    char buf[4096];
    size_t n;

    /* <tmp>/ex/conf/smsguard.conf with <tmp>/ex/.dev/ beside it, as in the repository. */
    mkdir(at("ex"), 0700);
    mkdir(at("ex/conf"), 0700);
    mkdir(at("ex/.dev"), 0700);
    write_pair("ex/.dev");
    snprintf(src, sizeof(src), "%s/conf/smsguard.conf", SG_TEST_SOURCE_DIR);
    in = fopen(src, "r");
    assert_non_null(in);
    out = open_for("ex/conf/smsguard.conf");
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);

    if (sg_conf_load(at("ex/conf/smsguard.conf"), &c, err, sizeof(err)) != 0)
        fail_msg("conf/smsguard.conf: %s", err);
    assert_int_equal(c->workers, 1);
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].address, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 8443);
    assert_string_equal(c->listen[0].certificate, at("ex/conf/../.dev/server.crt"));
    assert_int_equal(c->admin.enabled, 1);
    assert_int_equal(c->admin.port, 9901);
    assert_string_equal(c->upstreams[0].authority, "127.0.0.1:9443");
    assert_int_equal(c->policy.ntokens, 1);
    SHA256((const unsigned char *)"dev-token-please-change", 23, want);
    assert_memory_equal(c->policy.tokens[0].sha256, want, 32);
    assert_string_equal(c->policy.tokens[0].subject, "alice");
    assert_string_equal(c->policy.tokens[0].tenant, "t1");
    assert_string_equal(c->policy.tokens[0].roles.v[0], "dr-operator");
    assert_int_equal(c->policy.jwt.enabled, 0);
    assert_int_equal(c->policy.ntenants, 1);
    assert_string_equal(c->policy.tenants[0].providers.v[0], "vasa-1");
    assert_int_equal(c->policy.tenants[0].fault_domains.n, 2);
    assert_string_equal(c->policy.tenants[0].fault_domains.v[1], "fd-2*");
    assert_string_equal(c->batch.task_key_file, "");
    assert_string_equal(c->audit.file, at("ex/conf/../.dev/audit.jsonl"));
    sg_conf_unref(c);
}

/* ---- listen.server_names ----------------------------------------------------------- */

static void takes_the_server_names_from_the_certificate_by_default(void **state)
{
    sg_conf_t *c = load_ok(BASE);

    /* The test certificate has no subjectAltName: its CN is the name. */
    assert_int_equal(c->listen[0].server_names.n, 1);
    assert_string_equal(c->listen[0].server_names.v[0], "localhost");
    sg_conf_unref(c);
}

#define LISTEN_NAMES(names)                                                                        \
    "listen = ( { port = 8443; tls = { certificate = \"server.crt\"; private_key = "               \
    "\"server.key\"; };\n server_names = " names "; } );\n" BASE_UPSTREAM

static void keeps_configured_server_names_in_lower_case(void **state)
{
    sg_conf_t *c = load_ok(LISTEN_NAMES("[\"VC.Example\", \"*.East.example\", \"10.0.0.1\", \"::1\"]"));

    assert_int_equal(c->listen[0].server_names.n, 4);
    assert_string_equal(c->listen[0].server_names.v[0], "vc.example");
    assert_string_equal(c->listen[0].server_names.v[1], "*.east.example");
    assert_string_equal(c->listen[0].server_names.v[2], "10.0.0.1");
    assert_string_equal(c->listen[0].server_names.v[3], "::1");
    sg_conf_unref(c);
    c = load_ok(LISTEN_NAMES("[\"*\"]"));
    assert_int_equal(c->listen[0].server_names.n, 1);
    assert_string_equal(c->listen[0].server_names.v[0], "*");
    sg_conf_unref(c);
}

static void rejects_server_names_that_are_not_host_names(void **state)
{
    static const char *const bad[] = {"\"vc example\"", "\"user@vc\"", "\"vc.example:443\"",
                                      "\"*vc.example\"", "\"a.*.example\""};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], v[64];

        snprintf(text, sizeof(text), LISTEN_NAMES("[%s]"), bad[i]);
        snprintf(v, sizeof(v), "%.*s", (int)strlen(bad[i]) - 2, bad[i] + 1);
        expect_error(text, 2,
                     "'listen.server_names': '%s' is not a host name, '*.suffix', an IP "
                     "address, or '*' alone",
                     v);
    }
    expect_error(LISTEN_NAMES("[\"*\", \"vc.example\"]"), 2,
                 "'listen.server_names': '*' is not a host name, '*.suffix', an IP address, "
                 "or '*' alone");
}

/* ---- several vCenters -------------------------------------------------------------- */

/* Two named upstreams on lines 2 and 3, after BASE_LISTEN: fixtures append from line 4. */
#define TWO_UPSTREAMS                                                                              \
    "upstreams = ( { name = \"vc-east\"; url = \"http://127.0.0.1:9443\"; },\n"                    \
    "              { name = \"vc-west\"; url = \"http://127.0.0.1:9444\"; } );\n"

/* A listener whose vhosts (line 2 on) are VHOSTS; upstreams on the lines after. */
#define LISTEN_VHOSTS(vhosts)                                                                      \
    "listen = ( { port = 8443; tls = { certificate = \"server.crt\"; private_key = "               \
    "\"server.key\"; };\n" vhosts " } );\n" TWO_UPSTREAMS

static void resolves_scopes_and_folds_tenant_lists_into_the_scope_on_default(void **state)
{
    sg_conf_t *c = load_ok(BASE_LISTEN
                           "upstreams = (\n"
                           "  { name = \"vc-east\"; url = \"http://127.0.0.1:9443\"; },\n"
                           "  { name = \"default\"; url = \"http://127.0.0.1:9444\"; } );\n"
                           "policy = { tenants = ( { name = \"t\";\n"
                           "  providers = [\"vasa-d\"]; fault_domains = [\"fd-d\"];\n"
                           "  scopes = ( { upstream = \"vc-east\"; providers = [\"vasa-e*\"];\n"
                           "               fault_domains = [\"fd-1\", \"fd-2\"]; } ); },\n"
                           "  { name = \"none\"; } ); };\n");
    const sg_conf_tenant_t *t = &c->policy.tenants[0];

    assert_int_equal(c->nupstreams, 2);
    assert_string_equal(c->upstreams[0].name, "vc-east");
    assert_string_equal(c->upstreams[1].name, "default");
    assert_int_equal(t->nscopes, 2);
    assert_string_equal(t->scopes[0].upstream, "vc-east");
    assert_int_equal(t->scopes[0].up, 0);
    assert_string_equal(t->scopes[0].providers.v[0], "vasa-e*");
    assert_int_equal(t->scopes[0].fault_domains.n, 2);
    /* The tenant-level lists come last, as the scope on "default", wherever it is listed. */
    assert_string_equal(t->scopes[1].upstream, "default");
    assert_int_equal(t->scopes[1].up, 1);
    assert_string_equal(t->scopes[1].providers.v[0], "vasa-d");
    assert_string_equal(t->scopes[1].fault_domains.v[0], "fd-d");
    /* A tenant with nothing has no scope at all, not an empty one on "default". */
    assert_int_equal(c->policy.tenants[1].nscopes, 0);
    sg_conf_unref(c);

    /* The one-vCenter form: the tenant lists are the scope on its upstream, "default". */
    c = load_ok(BASE "policy = { tenants = ( { name = \"t\"; providers = [\"vasa-1\"]; } ); };\n");
    assert_int_equal(c->nupstreams, 1);
    assert_string_equal(c->upstreams[0].name, "default");
    assert_int_equal(c->policy.tenants[0].nscopes, 1);
    assert_string_equal(c->policy.tenants[0].scopes[0].upstream, "default");
    assert_int_equal(c->policy.tenants[0].scopes[0].up, 0);
    assert_int_equal(c->policy.tenants[0].scopes[0].fault_domains.n, 0);
    sg_conf_unref(c);
}

static void rejects_scopes_on_unknown_or_repeated_upstreams(void **state)
{
    expect_error(BASE_LISTEN TWO_UPSTREAMS "policy = { tenants = ( { name = \"t\";\n"
                                           "  scopes = ( { providers = [\"v\"];\n"
                                           "    upstream = \"vc-north\"; } ); } ); };\n",
                 6, "'policy.tenants.scopes.upstream': unknown upstream 'vc-north'");
    /* Names are exact: no case folding. */
    expect_error(BASE_LISTEN TWO_UPSTREAMS "policy = { tenants = ( { name = \"t\";\n"
                                           "  scopes = ( { upstream = \"VC-EAST\"; } ); } ); };\n",
                 5, "'policy.tenants.scopes.upstream': unknown upstream 'VC-EAST'");
    expect_error(BASE_LISTEN TWO_UPSTREAMS "policy = { tenants = ( { name = \"t\"; scopes = (\n"
                                           "  { upstream = \"vc-east\"; providers = [\"a\"]; },\n"
                                           "  { upstream = \"vc-west\"; providers = [\"b\"]; },\n"
                                           "  { upstream = \"vc-east\"; providers = [\"c\"]; } );\n"
                                           "} ); };\n",
                 7, "tenant 't' has two scopes on upstream 'vc-east'");
    /* The tenant-level lists are the scope on "default": a second one there is the same. */
    expect_error(BASE "policy = { tenants = ( { name = \"t\";\n"
                      "  providers = [\"a\"];\n"
                      "  scopes = ( { upstream = \"default\"; providers = [\"b\"]; } ); } ); };\n",
                 4,
                 "tenant 't': 'providers'/'fault_domains' are its scope on upstream 'default', "
                 "which 'scopes' names too");
    expect_error(BASE "policy = { tenants = ( { name = \"t\";\n"
                      "  scopes = ( { upstream = \"default\"; providers = [\"b\"]; } );\n"
                      "  fault_domains = [\"a\"]; } ); };\n",
                 5,
                 "tenant 't': 'providers'/'fault_domains' are its scope on upstream 'default', "
                 "which 'scopes' names too");
    expect_error(BASE "policy = { tenants = ( { name = \"t\";\n"
                      "  scopes = ( { upstream = \"\"; } ); } ); };\n",
                 4, "'policy.tenants.scopes.upstream' must not be empty");
}

/* Change control: defaults, where each entry is (for the errors found when a generation
 * builds it), ticket patterns compiled at load, window names resolved, a ticket header of
 * one's own never forwarded. */
static void reads_change_control(void **state)
{
    sg_conf_t *c = load_ok(BASE "change_windows = ( { name = \"w\"; timezone = \"UTC\";\n"
                                "  days = \"Sat\"; from = \"22:00\"; to = \"06:00\"; } );\n"
                                "operations = ( { method = \"M\"; windows = \"w\";\n"
                                "  ticket = \"^CHG[0-9]{7}$\"; ticket_header = \"X-Chg\";\n"
                                "  privilege = \"Custom.Failover\"; } );\n"
                                "policy = { tenants = ( { name = \"t\"; windows = [\"w\"]; } );\n"
                                "  approvers = ( { name = \"a\"; public_key = \"ed25519.pub\";\n"
                                "                  tenants = \"t*\"; } ); };\n");
    char want[PATH_MAX + 16];

    assert_int_equal(c->nchange_windows, 1);
    assert_int_equal(c->change_windows[0].days.n, 1);
    snprintf(want, sizeof(want), "%s:3", at("t.conf"));
    assert_string_equal(c->change_windows[0].at, want);
    assert_int_equal(c->noperations, 1);
    assert_int_equal(c->operations[0].enabled, 1);
    assert_int_equal(c->operations[0].approval, 0);
    assert_int_equal(c->operations[0].force_approval, 0);
    assert_string_equal(c->operations[0].privilege, "Custom.Failover");
    assert_non_null(c->operations[0].ticket_re);
    assert_null(c->policy.tenants[0].ticket_re);
    assert_int_equal(c->policy.max_approval_s, 3600);
    assert_string_equal(c->policy.approvers[0].public_key, at("ed25519.pub"));
    assert_int_equal(c->routes.drop_headers.n, 1);
    assert_string_equal(c->routes.drop_headers.v[0], "X-Chg");
    sg_conf_unref(c);
    /* The built-in header is dropped anyway: not added a second time. */
    c = load_ok(BASE "operations = ( { method = \"M\"; ticket = \"x\"; } );\n");
    assert_string_equal(c->operations[0].ticket_header, "X-Change-Ticket");
    assert_null(c->operations[0].privilege); /* the row's */
    assert_int_equal(c->routes.drop_headers.n, 0);
    sg_conf_unref(c);
}

/* The C library's words for what is wrong with PATTERN (they differ between libcs). */
static const char *re_why(const char *pattern)
{
    static char why[128];
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);

    assert_int_not_equal(rc, 0);
    regerror(rc, &re, why, sizeof(why));
    return why;
}

static void rejects_bad_change_control(void **state)
{
    expect_error(BASE "operations = ( { method = \"M\";\n"
                      "  ticket = \"CHG[0-9\"; } );\n",
                 4, "'operations.ticket': 'CHG[0-9' is not a POSIX extended regular expression: %s",
                 re_why("CHG[0-9"));
    expect_error(BASE "policy = { tenants = ( { name = \"t\";\n"
                      "  ticket = \"(\"; } ); };\n",
                 4, "'policy.tenants.ticket': '(' is not a POSIX extended regular expression: %s",
                 re_why("("));
    expect_error(BASE "operations = ( { method = \"M\"; windows = [\"w\"]; } );\n", 3,
                 "'operations.windows': unknown change window 'w'");
    expect_error(BASE "policy = { tenants = ( { name = \"t\";\n"
                      "  windows = [\"w\"]; } ); };\n",
                 4, "'policy.tenants.windows': unknown change window 'w'");
    expect_error(BASE "operations = ( { method = \"M\"; },\n"
                      "  { method = \"M\"; } );\n",
                 4, "duplicate operation 'M' (first at line 3)");
    expect_error(BASE "change_windows = ( { name = \"w\"; timezone = \"UTC\"; days = \"Sat\";\n"
                      "  from = \"22:00\"; to = \"06:00\"; },\n"
                      "  { name = \"w\"; timezone = \"UTC\"; days = \"Sun\";\n"
                      "  from = \"22:00\"; to = \"06:00\"; } );\n",
                 5, "duplicate change window name 'w' (first at line 3)");
    expect_error(BASE "operations = ( { method = \"M\";\n"
                      "  ticket_header = \"X Chg\"; } );\n",
                 4, "'operations.ticket_header': 'X Chg' is not a header name");
    expect_error(BASE "operations = ( { method = \"M\";\n"
                      "  privilege = \"\"; } );\n",
                 4, "'operations.privilege' must not be empty");
    expect_error(BASE "policy = { max_approval_s = 86401; };\n", 3,
                 "'policy.max_approval_s' must be between 1 and 86400");
    expect_error(BASE "policy = { approvers = ( { name = \"a\"; tenants = [\"t\"]; } ); };\n", 3,
                 "missing required key 'policy.approvers.public_key'");
}

static void rejects_tenant_lists_without_an_upstream_named_default(void **state)
{
    expect_error(BASE_LISTEN TWO_UPSTREAMS "policy = { tenants = ( { name = \"t\";\n"
                                           "  providers = [\"a\"]; } ); };\n",
                 5, "'policy.tenants.providers': unknown upstream 'default'");
    expect_error(BASE_LISTEN TWO_UPSTREAMS "policy = { tenants = ( { name = \"t\";\n"
                                           "  fault_domains = [\"fd-1\"]; } ); };\n",
                 5, "'policy.tenants.providers': unknown upstream 'default'");
}

static void rejects_upstream_and_upstreams_together_and_bad_upstream_names(void **state)
{
    expect_error(BASE_LISTEN BASE_UPSTREAM TWO_UPSTREAMS, 2,
                 "'upstream' and 'upstreams' exclude each other: list every vCenter in "
                 "'upstreams'");
    expect_error(BASE_LISTEN TWO_UPSTREAMS "upstream = { url = \"http://127.0.0.1:9445\"; };\n", 4,
                 "'upstream' and 'upstreams' exclude each other: list every vCenter in "
                 "'upstreams'");
    expect_error(BASE_LISTEN "upstreams = (\n"
                             "  { name = \"vc-east\"; url = \"http://127.0.0.1:9443\"; },\n"
                             "  { name = \"vc-east\"; url = \"http://127.0.0.1:9444\"; } );\n",
                 4, "duplicate upstream name 'vc-east' (first at line 3)");
    expect_error(BASE_LISTEN "upstreams = (\n"
                             "  { name = \"vc east\"; url = \"http://127.0.0.1:9443\"; } );\n",
                 3,
                 "'upstreams.name': 'vc east' must be at most 64 letters, digits, '_', '-' or "
                 "'.'");
    expect_error(BASE_LISTEN "upstreams = ();\n", 2, "'upstreams' must have at least 1 entry");
}

static void resolves_vhost_upstreams_and_rejects_unknown_ones(void **state)
{
    sg_conf_t *c = load_ok(LISTEN_VHOSTS(
        "  vhosts = ( { server_names = [\"East.Example\"]; upstream = \"vc-east\"; },\n"
        "             { server_names = [\"west.example\", \"*.west.example\"];\n"
        "               upstream = \"vc-west\";\n"
        "               certificate = \"server.crt\"; private_key = \"server.key\"; } );"));
    const sg_conf_listen_t *l = &c->listen[0];

    assert_int_equal(l->nvhosts, 2);
    assert_string_equal(l->vhosts[0].server_names.v[0], "east.example");
    assert_int_equal(l->vhosts[0].up, 0);
    assert_null(l->vhosts[0].certificate);
    assert_int_equal(l->vhosts[1].up, 1);
    assert_string_equal(l->vhosts[1].certificate, at("server.crt"));
    /* vhosts and no listener upstream: the listener's own names route nowhere. */
    assert_int_equal(l->has_up, 0);
    sg_conf_unref(c);

    expect_error(LISTEN_VHOSTS("  vhosts = ( { server_names = [\"east.example\"];\n"
                               "    upstream = \"vc-north\"; } );"),
                 3, "'listen.vhosts.upstream': unknown upstream 'vc-north'");
    expect_error("listen = ( { port = 8443; tls = { certificate = \"server.crt\"; private_key = "
                 "\"server.key\"; };\n  upstream = \"vc-north\"; } );\n" TWO_UPSTREAMS,
                 2, "'listen.upstream': unknown upstream 'vc-north'");
    expect_error(LISTEN_VHOSTS("  vhosts = ( { upstream = \"vc-east\"; } );"), 2,
                 "missing required key 'listen.vhosts.server_names'");
}

static void rejects_a_vhost_certificate_without_its_key(void **state)
{
    expect_error(LISTEN_VHOSTS("  vhosts = ( { server_names = [\"east.example\"];\n"
                               "    upstream = \"vc-east\";\n"
                               "    certificate = \"server.crt\"; } );"),
                 4, "'listen.vhosts': 'certificate' and 'private_key' go together");
    expect_error(LISTEN_VHOSTS("  vhosts = ( { server_names = [\"east.example\"];\n"
                               "    upstream = \"vc-east\";\n"
                               "    private_key = \"server.key\"; } );"),
                 2, "'listen.vhosts': 'certificate' and 'private_key' go together");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_minimal_config_with_documented_defaults),
        cmocka_unit_test(resolves_relative_paths_against_the_config_directory),
        cmocka_unit_test(keeps_absolute_paths_and_special_log_values),
        cmocka_unit_test(resolves_workers_zero_to_the_online_cpus),
        cmocka_unit_test(loads_every_section_when_all_are_set),
        cmocka_unit_test(takes_a_single_string_as_the_jwt_audience),
        cmocka_unit_test(rejects_unknown_key_with_its_line),
        cmocka_unit_test(rejects_wrong_type_with_its_line),
        cmocka_unit_test(rejects_out_of_range_values),
        cmocka_unit_test(rejects_integers_that_libconfig_would_wrap),
        cmocka_unit_test(rejects_bad_enum_values),
        cmocka_unit_test(splits_syslog_addresses),
        cmocka_unit_test(rejects_bad_syslog_keys_at_their_line),
        cmocka_unit_test(rejects_missing_required_keys_at_the_enclosing_group),
        cmocka_unit_test(reports_syntax_errors_with_libconfigs_text),
        cmocka_unit_test(reports_an_unreadable_config_file_without_a_line),
        cmocka_unit_test(truncates_errors_to_the_buffer_it_is_given),
        cmocka_unit_test(names_included_files_in_errors),
        cmocka_unit_test(refuses_an_include_it_cannot_read_without_exiting),
        cmocka_unit_test(refuses_a_nul_byte_at_its_line),
        cmocka_unit_test(keeps_every_error_on_one_line),
        cmocka_unit_test(rejects_a_missing_certificate_at_its_line),
        cmocka_unit_test(rejects_files_that_do_not_hold_what_they_should),
        cmocka_unit_test(rejects_a_private_key_that_does_not_match_the_certificate),
        cmocka_unit_test(rejects_an_unreadable_file),
        cmocka_unit_test(never_puts_file_contents_in_errors),
        cmocka_unit_test(checks_jwt_keys_against_their_alg),
        cmocka_unit_test(checks_the_task_key_signing_key_and_log_files),
        cmocka_unit_test(parses_upstream_urls_with_default_and_explicit_ports),
        cmocka_unit_test(rejects_upstream_urls_that_are_not_one_origin),
        cmocka_unit_test(decodes_token_sha256_from_hex_in_either_case),
        cmocka_unit_test(rejects_token_hashes_that_are_not_64_hex_digits),
        cmocka_unit_test(rejects_duplicate_names_in_every_list),
        cmocka_unit_test(rejects_tokens_naming_undefined_roles_or_tenants),
        cmocka_unit_test(counts_references_and_frees_on_the_last_unref),
        cmocka_unit_test(handles_many_list_entries),
        cmocka_unit_test(loads_the_shipped_example_configuration),
        cmocka_unit_test(takes_the_server_names_from_the_certificate_by_default),
        cmocka_unit_test(keeps_configured_server_names_in_lower_case),
        cmocka_unit_test(rejects_server_names_that_are_not_host_names),
        cmocka_unit_test(resolves_scopes_and_folds_tenant_lists_into_the_scope_on_default),
        cmocka_unit_test(rejects_scopes_on_unknown_or_repeated_upstreams),
        cmocka_unit_test(rejects_tenant_lists_without_an_upstream_named_default),
        cmocka_unit_test(reads_change_control),
        cmocka_unit_test(rejects_bad_change_control),
        cmocka_unit_test(rejects_upstream_and_upstreams_together_and_bad_upstream_names),
        cmocka_unit_test(resolves_vhost_upstreams_and_rejects_unknown_ones),
        cmocka_unit_test(rejects_a_vhost_certificate_without_its_key),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
