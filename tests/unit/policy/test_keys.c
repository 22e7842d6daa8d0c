/*
 * tests/unit/policy/test_keys.c - sg_policy_new(): the configuration reference, and key
 * files that changed between sg_conf_load() and the policy build (missing, not PEM, of
 * the wrong type, a short secret), each reported as "'policy.jwt.keys' kid '<kid>': ...".
 */
#include "tests/unit/policy/fixture.h"

static const char *const conf_text =
    FX_BASE "policy = { jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\";\n"
            "  keys = ( { kid = \"rs\"; alg = \"RS256\"; public_key = \"k-rs.pub\"; },\n"
            "           { kid = \"es\"; alg = \"ES256\"; public_key = \"k-es.pub\"; },\n"
            "           { kid = \"ed\"; alg = \"EdDSA\"; public_key = \"k-ed.pub\"; },\n"
            "           { kid = \"hs\"; alg = \"HS256\"; secret_file = \"k-hs.key\"; } ); }; };\n";

static int setup(void **state)
{
    (void)state;
    return fx_setup_keys();
}

static int teardown(void **state)
{
    (void)state;
    return fx_teardown_keys();
}

/* Write the four key files the configuration names, all good. */
static void good_keys(void)
{
    fx_write_pub("k-rs.pub", fx_rsa);
    fx_write_pub("k-es.pub", fx_ec);
    fx_write_pub("k-ed.pub", fx_ed);
    fx_write_bytes("k-hs.key", fx_hs_secret, sizeof(fx_hs_secret));
}

/* Load the configuration with good keys, let BREAK change the files, build the policy. */
static void expect_build_error(void (*brk)(void), const char *kid, const char *file,
                               const char *why)
{
    sg_conf_t *c;
    sg_policy_t *p = (sg_policy_t *)&p;
    char err[512], want[1024];

    good_keys();
    c = fx_conf(conf_text);
    brk();
    assert_int_equal(sg_policy_new(c, &p, err, sizeof(err)), -1);
    assert_null(p);
    snprintf(want, sizeof(want), "'policy.jwt.keys' kid '%s': '%s': %s", kid, fx_at(file), why);
    assert_string_equal(err, want);
    assert_int_equal(c->refcnt, 1); /* a failed build keeps no reference */
    sg_conf_unref(c);
}

static void builds_with_every_alg_and_holds_the_configuration(void **state)
{
    sg_conf_t *c;
    sg_policy_t *p = NULL;
    char err[256] = "";

    good_keys();
    c = fx_conf(conf_text);
    assert_int_equal(sg_policy_new(c, &p, err, sizeof(err)), 0);
    assert_non_null(p);
    assert_int_equal(c->refcnt, 2);
    assert_ptr_equal(sg_policy_conf(p), c);
    sg_conf_unref(c); /* the policy keeps it alive */
    assert_int_equal(sg_policy_conf(p)->policy.jwt.nkeys, 4);
    sg_policy_free(p);
    sg_policy_free(NULL);
}

static void brk_missing(void)
{
    unlink(fx_at("k-rs.pub"));
}

static void reports_a_key_file_that_disappeared(void **state)
{
    expect_build_error(brk_missing, "rs", "k-rs.pub", "No such file or directory");
}

static void brk_garbage(void)
{
    fx_write_text("k-es.pub", "SECRET-LOOKING-TEXT not a key\n");
}

static void reports_a_key_file_that_is_not_pem(void **state)
{
    expect_build_error(brk_garbage, "es", "k-es.pub", "not a PEM public key");
}

static void brk_swap_rs(void)
{
    fx_write_pub("k-rs.pub", fx_ec);
}

static void brk_swap_es(void)
{
    EVP_PKEY *p384 = EVP_EC_gen("P-384");

    fx_write_pub("k-es.pub", p384);
    EVP_PKEY_free(p384);
}

static void brk_swap_ed(void)
{
    fx_write_pub("k-ed.pub", fx_rsa);
}

static void brk_small_rsa(void)
{
    EVP_PKEY *small = EVP_RSA_gen(1024);

    fx_write_pub("k-rs.pub", small);
    EVP_PKEY_free(small);
}

static void reports_a_key_of_the_wrong_type_for_its_alg(void **state)
{
    expect_build_error(brk_swap_rs, "rs", "k-rs.pub", "not an RSA public key (alg RS256)");
    expect_build_error(brk_small_rsa, "rs", "k-rs.pub", "RSA key shorter than 2048 bits");
    expect_build_error(brk_swap_es, "es", "k-es.pub", "not an EC P-256 public key (alg ES256)");
    expect_build_error(brk_swap_ed, "ed", "k-ed.pub", "not an Ed25519 public key (alg EdDSA)");
}

static void brk_short_secret(void)
{
    fx_write_bytes("k-hs.key", fx_hs_secret, 31);
}

static void brk_secret_dir(void)
{
    unlink(fx_at("k-hs.key"));
    mkdir(fx_at("k-hs.key"), 0700);
}

static void reports_a_short_or_unreadable_secret(void **state)
{
    expect_build_error(brk_short_secret, "hs", "k-hs.key", "shorter than 32 bytes");
    expect_build_error(brk_secret_dir, "hs", "k-hs.key", "Is a directory");
    rmdir(fx_at("k-hs.key"));
}

static void builds_without_jwt_or_any_policy(void **state)
{
    sg_policy_t *p = fx_policy(FX_BASE);
    sg_principal_t who;
    sg_pool_t pool;
    const char *reason;

    sg_pool_init(&pool, 256);
    assert_int_equal(sg_pol_authenticate(p, &pool, "x.y.z", 5, FX_NOW, &who, &reason), -1);
    assert_string_equal(reason, "unknown static token");
    sg_pool_dispose(&pool);
    sg_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builds_with_every_alg_and_holds_the_configuration),
        cmocka_unit_test(reports_a_key_file_that_disappeared),
        cmocka_unit_test(reports_a_key_file_that_is_not_pem),
        cmocka_unit_test(reports_a_key_of_the_wrong_type_for_its_alg),
        cmocka_unit_test(reports_a_short_or_unreadable_secret),
        cmocka_unit_test(builds_without_jwt_or_any_policy),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
