/*
 * tests/unit/policy/test_token.c - static bearer tokens (SHA-256, constant-time compare),
 * the authenticate contract around them, token hashes and principal copies.
 */
#include "tests/unit/policy/fixture.h"

#define TOK_OPS "ops-token-0123456789abcdef0123456789abcdef"
#define TOK_AUDIT "audit-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define TOK_NUL "nul\0inside" /* 10 bytes; its hash is configured below */

static sg_policy_t *pol;   /* static tokens only */
static sg_policy_t *pol_j; /* static tokens and JWT */

static const char *static_tokens(void)
{
    static char buf[2048];
    unsigned char h[32];
    char nulhex[65];

    SHA256((const unsigned char *)TOK_NUL, sizeof(TOK_NUL) - 1, h);
    for (int i = 0; i < 32; i++)
        snprintf(nulhex + 2 * i, 3, "%02x", h[i]);
    snprintf(
        buf, sizeof(buf),
        "  tokens = (\n"
        "    { id = \"ops-1\"; sha256 = \"%s\"; subject = \"alice\"; tenant = \"t1\";\n"
        "      roles = [\"dr-operator\", \"dr-viewer\"]; },\n"
        "    { id = \"audit-1\"; sha256 = \"%s\"; subject = \"auditor\"; tenant = \"t2\";\n"
        "      roles = [\"dr-viewer\"]; },\n"
        "    { id = \"nul-1\"; sha256 = \"%s\"; subject = \"nul\"; tenant = \"t1\"; roles = []; }\n"
        "  );\n"
        "  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; "
        "},\n"
        "            { name = \"dr-viewer\"; privileges = [\"StorageViews.View\"]; } );\n"
        "  tenants = ( { name = \"t1\"; providers = [\"vasa-1\"]; fault_domains = [\"fd-1\"]; },\n"
        "              { name = \"t2\"; providers = [\"vasa-2\"]; fault_domains = [\"fd-2\"]; } "
        ");\n",
        fx_sha256_hex(TOK_OPS), fx_sha256_hex(TOK_AUDIT), nulhex);
    return buf;
}

static int setup(void **state)
{
    char text[8192];

    (void)state;
    if (fx_setup_keys() != 0)
        return -1;
    snprintf(text, sizeof(text), FX_BASE "policy = {\n%s};\n", static_tokens());
    pol = fx_policy(text);
    snprintf(text, sizeof(text),
             FX_BASE
             "policy = {\n%s"
             "  jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\";\n"
             "    keys = ( { kid = \"hs\"; alg = \"HS256\"; secret_file = \"hs.key\"; } ); };\n"
             "};\n",
             static_tokens());
    pol_j = fx_policy(text);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sg_policy_free(pol);
    sg_policy_free(pol_j);
    return fx_teardown_keys();
}

/* Authenticate TOK[0..N) against P; returns the reason, NULL when accepted. */
static const char *auth(const sg_policy_t *p, const char *tok, size_t n, sg_principal_t *who)
{
    const char *reason = "unset";
    sg_pool_t pool;
    int rc;

    sg_pool_init(&pool, 512);
    rc = sg_pol_authenticate(p, &pool, tok, n, FX_NOW, who, &reason);
    sg_pool_dispose(&pool); /* static principals need no pool */
    if (rc == 0) {
        assert_null(reason);
        return NULL;
    }
    assert_int_equal(rc, -1);
    assert_null(who->subject);
    return reason;
}

static void accepts_the_right_static_token(void **state)
{
    sg_principal_t who;

    assert_null(auth(pol, TOK_OPS, strlen(TOK_OPS), &who));
    assert_string_equal(who.subject, "alice");
    assert_string_equal(who.tenant, "t1");
    assert_string_equal(who.token_id, "ops-1");
    assert_string_equal(who.auth, "static");
    assert_int_equal(who.nroles, 2);
    assert_string_equal(who.roles[0], "dr-operator");
    assert_string_equal(who.roles[1], "dr-viewer");
    assert_int_equal(who.exp, 0);
    assert_null(who.cnf_x5t_s256);
}

static void finds_each_configured_token_not_just_the_first(void **state)
{
    sg_principal_t who;

    assert_null(auth(pol, TOK_AUDIT, strlen(TOK_AUDIT), &who));
    assert_string_equal(who.token_id, "audit-1");
    assert_string_equal(who.tenant, "t2");
    assert_null(auth(pol, TOK_NUL, sizeof(TOK_NUL) - 1, &who));
    assert_string_equal(who.token_id, "nul-1");
    assert_int_equal(who.nroles, 0);
}

static void rejects_a_wrong_static_token(void **state)
{
    sg_principal_t who;

    assert_string_equal(auth(pol, "not-a-token", 11, &who), "unknown static token");
    assert_string_equal(auth(pol, "Bearer " TOK_OPS, strlen(TOK_OPS) + 7, &who),
                        "unknown static token");
}

static void rejects_a_static_token_wrong_by_one_byte(void **state)
{
    char t[128];
    size_t n = strlen(TOK_OPS);
    sg_principal_t who;

    for (size_t i = 0; i < n; i++) {
        memcpy(t, TOK_OPS, n);
        t[i] ^= 0x01;
        assert_string_equal(auth(pol, t, n, &who), "unknown static token");
    }
    memcpy(t, TOK_OPS, n);
    assert_string_equal(auth(pol, t, n - 1, &who), "unknown static token"); /* one short */
    t[n] = 'x';
    assert_string_equal(auth(pol, t, n + 1, &who), "unknown static token"); /* one long */
    t[n] = '\0';
    assert_string_equal(auth(pol, t, n + 1, &who), "unknown static token"); /* NUL added */
    /* The token with a NUL inside is not its prefix. */
    assert_string_equal(auth(pol, TOK_NUL, 3, &who), "unknown static token");
}

static void rejects_an_empty_token(void **state)
{
    sg_principal_t who;

    assert_string_equal(auth(pol, "", 0, &who), "empty token");
    assert_string_equal(auth(pol, NULL, 0, &who), "empty token");
}

static void rejects_a_token_over_8_kib_before_hashing(void **state)
{
    char *big = malloc(SG_POL_TOKEN_MAX + 1);
    sg_principal_t who;

    memset(big, 'a', SG_POL_TOKEN_MAX + 1);
    assert_string_equal(auth(pol, big, SG_POL_TOKEN_MAX + 1, &who), "token too large");
    assert_string_equal(auth(pol, big, SG_POL_TOKEN_MAX, &who), "unknown static token");
    free(big);
}

static void keeps_static_tokens_working_with_jwt_on(void **state)
{
    sg_principal_t who;

    assert_null(auth(pol_j, TOK_OPS, strlen(TOK_OPS), &who));
    assert_string_equal(who.auth, "static");
    assert_string_equal(auth(pol_j, "opaque", 6, &who), "unknown static token");
    assert_string_equal(auth(pol_j, "a.b.c", 5, &who), "jwt malformed");
}

static void treats_dotted_tokens_as_static_when_jwt_is_off(void **state)
{
    sg_principal_t who;

    assert_string_equal(auth(pol, "eyJhbGciOiJIUzI1NiJ9.e30.AAAA", 29, &who),
                        "unknown static token");
}

static void hashes_tokens_with_sha256(void **state)
{
    unsigned char h[32], want[32];

    assert_int_equal(sg_pol_token_hash(TOK_OPS, strlen(TOK_OPS), h), 0);
    SHA256((const unsigned char *)TOK_OPS, strlen(TOK_OPS), want);
    assert_memory_equal(h, want, 32);
    assert_int_equal(sg_pol_token_hash("", 0, h), 0);
    SHA256((const unsigned char *)"", 0, want);
    assert_memory_equal(h, want, 32);
}

/* A caller holding the token's hash (flt_authn's cache key) gets the same answers. */
static void authenticates_with_a_hash_the_caller_holds(void **state)
{
    unsigned char h[32];
    const char *reason = "unset";
    sg_principal_t who;
    sg_pool_t pool;

    (void)state;
    sg_pool_init(&pool, 512);
    assert_int_equal(sg_pol_token_hash(TOK_OPS, strlen(TOK_OPS), h), 0);
    assert_int_equal(sg_pol_authenticate_hashed(pol, &pool, TOK_OPS, strlen(TOK_OPS), h, FX_NOW,
                                                &who, &reason),
                     0);
    assert_null(reason);
    assert_string_equal(who.token_id, "ops-1");
    assert_int_equal(sg_pol_token_hash("wrong", 5, h), 0);
    assert_int_equal(
        sg_pol_authenticate_hashed(pol, &pool, "wrong", 5, h, FX_NOW, &who, &reason), -1);
    assert_string_equal(reason, "unknown static token");
    assert_null(who.subject);
    assert_int_equal(sg_pol_authenticate_hashed(pol, &pool, "", 0, h, FX_NOW, &who, &reason), -1);
    assert_string_equal(reason, "empty token");
    sg_pool_dispose(&pool);
}

static void copies_a_principal_into_a_pool_and_a_single_block(void **state)
{
    const char *roles[] = {"r1", "role-two"};
    sg_principal_t src = {"sub", "ten", "kid", "jwt", roles, 2, 1700000300, "thumb"};
    sg_principal_t *dup, cp;
    sg_pool_t pool;

    dup = sg_pol_principal_dup(&src);
    assert_non_null(dup);
    sg_pool_init(&pool, 64);
    assert_int_equal(sg_pol_principal_copy(&pool, &cp, dup), 0);
    free(dup); /* the pool copy stands alone */
    assert_string_equal(cp.subject, "sub");
    assert_string_equal(cp.tenant, "ten");
    assert_string_equal(cp.token_id, "kid");
    assert_string_equal(cp.auth, "jwt");
    assert_int_equal(cp.nroles, 2);
    assert_string_equal(cp.roles[0], "r1");
    assert_string_equal(cp.roles[1], "role-two");
    assert_true(cp.roles != roles);
    assert_int_equal(cp.exp, 1700000300);
    assert_string_equal(cp.cnf_x5t_s256, "thumb");
    sg_pool_dispose(&pool);

    src.nroles = 0;
    src.roles = NULL;
    src.cnf_x5t_s256 = NULL;
    dup = sg_pol_principal_dup(&src);
    assert_non_null(dup);
    assert_null(dup->roles);
    assert_null(dup->cnf_x5t_s256);
    assert_string_equal(dup->subject, "sub");
    free(dup);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_the_right_static_token),
        cmocka_unit_test(finds_each_configured_token_not_just_the_first),
        cmocka_unit_test(rejects_a_wrong_static_token),
        cmocka_unit_test(rejects_a_static_token_wrong_by_one_byte),
        cmocka_unit_test(rejects_an_empty_token),
        cmocka_unit_test(rejects_a_token_over_8_kib_before_hashing),
        cmocka_unit_test(keeps_static_tokens_working_with_jwt_on),
        cmocka_unit_test(treats_dotted_tokens_as_static_when_jwt_is_off),
        cmocka_unit_test(hashes_tokens_with_sha256),
        cmocka_unit_test(authenticates_with_a_hash_the_caller_holds),
        cmocka_unit_test(copies_a_principal_into_a_pool_and_a_single_block),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
