/*
 * tests/unit/policy/test_jwt.c - JWT authentication through sg_pol_authenticate():
 * every algorithm, every time and audience rule, the classic JWT attacks (alg none,
 * algorithm confusion, kid injection, keys in the header, crit), malformed encodings and
 * JSON that two parsers would read differently, and certificate-bound tokens.
 *
 * Tokens are signed here with OpenSSL by keys generated at run time (fixture.h).
 */
#include "tests/unit/policy/fixture.h"

#include <openssl/err.h>

#define ISS "\"https://idp.test\""
#define HDR(alg, kid) "{\"alg\":\"" alg "\",\"kid\":\"" kid "\",\"typ\":\"JWT\"}"

static sg_policy_t *pol;

static const char *const conf_text = FX_BASE
    "policy = {\n"
    "  jwt = { issuer = \"https://idp.test\"; audience = [\"smsguard\", \"smsguard-b\"];\n"
    "          leeway_s = 60;\n"
    "          keys = ( { kid = \"rs\"; alg = \"RS256\"; public_key = \"rsa.pub\"; },\n"
    "                   { kid = \"es\"; alg = \"ES256\"; public_key = \"ec.pub\"; },\n"
    "                   { kid = \"ed\"; alg = \"EdDSA\"; public_key = \"ed.pub\"; },\n"
    "                   { kid = \"hs\"; alg = \"HS256\"; secret_file = \"hs.key\"; } ); };\n"
    "  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );\n"
    "  tenants = ( { name = \"t1\"; providers = [\"vasa-1\"]; fault_domains = [\"fd-1\"]; } );\n"
    "};\n";

static int setup(void **state)
{
    (void)state;
    if (fx_setup_keys() != 0)
        return -1;
    pol = fx_policy(conf_text);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sg_policy_free(pol);
    return fx_teardown_keys();
}

/* ---- helpers ----------------------------------------------------------------------- */

/* Claims as raw JSON fragments; NULL leaves the member out. */
typedef struct {
    const char *iss, *aud, *sub, *tenant, *roles, *exp, *nbf, *extra;
} claims_t;

static claims_t claims(void)
{
    claims_t c = {
        .iss = ISS,
        .aud = "\"smsguard\"",
        .sub = "\"bob\"",
        .tenant = "\"t1\"",
        .roles = "[\"dr-operator\"]",
        .exp = "1700000300",
    };
    return c;
}

static const char *payload(const claims_t *c)
{
    static char buf[8192];
    const char *names[] = {"iss", "aud", "sub", "tenant", "roles", "exp", "nbf"};
    const char *vals[] = {c->iss, c->aud, c->sub, c->tenant, c->roles, c->exp, c->nbf};
    size_t o = 0;

    buf[o++] = '{';
    for (size_t i = 0; i < SG_ARRAY_SIZE(names); i++)
        if (vals[i] != NULL)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"%s\":%s", o > 1 ? "," : "",
                                  names[i], vals[i]);
    if (c->extra != NULL)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o > 1 ? "," : "", c->extra);
    snprintf(buf + o, sizeof(buf) - o, "}");
    return buf;
}

/* Authenticate TOK[0..N); returns NULL on success, else the reason. Checks the contract. */
static const char *auth_n(const char *tok, size_t n, sg_principal_t *who, sg_pool_t *pool)
{
    const char *reason = "unset";
    int rc = sg_pol_authenticate(pol, pool, tok, n, FX_NOW, who, &reason);

    if (rc == 0) {
        assert_null(reason);
        return NULL;
    }
    assert_int_equal(rc, -1);
    assert_non_null(reason);
    assert_null(who->subject);
    assert_null(who->tenant);
    assert_null(who->auth);
    return reason;
}

static void expect_reject(char *tok, const char *reason)
{
    sg_principal_t who;
    sg_pool_t pool;
    const char *got;

    sg_pool_init(&pool, 1024);
    got = auth_n(tok, strlen(tok), &who, &pool);
    if (got == NULL)
        fail_msg("accepted: %s", tok);
    assert_string_equal(got, reason);
    sg_pool_dispose(&pool);
    free(tok);
}

static void expect_accept(char *tok)
{
    sg_principal_t who;
    sg_pool_t pool;
    const char *got;

    sg_pool_init(&pool, 1024);
    got = auth_n(tok, strlen(tok), &who, &pool);
    if (got != NULL)
        fail_msg("refused (%s): %s", got, tok);
    sg_pool_dispose(&pool);
    free(tok);
}

static char *signed_claims(const claims_t *c)
{
    return fx_jwt(HDR("HS256", "hs"), payload(c), FX_HS256);
}

/* ---- each algorithm ---------------------------------------------------------------- */

static void check_principal(const char *hdr, fx_alg_t alg, const char *kid)
{
    claims_t c = claims();
    char *tok;
    sg_principal_t who;
    sg_pool_t pool;

    c.roles = "[\"dr-operator\",\"other\"]";
    tok = fx_jwt(hdr, payload(&c), alg);
    sg_pool_init(&pool, 1024);
    assert_null(auth_n(tok, strlen(tok), &who, &pool));
    assert_string_equal(who.subject, "bob");
    assert_string_equal(who.tenant, "t1");
    assert_string_equal(who.token_id, kid);
    assert_string_equal(who.auth, "jwt");
    assert_int_equal(who.nroles, 2);
    assert_string_equal(who.roles[0], "dr-operator");
    assert_string_equal(who.roles[1], "other");
    assert_int_equal(who.exp, 1700000300);
    assert_null(who.cnf_x5t_s256);
    sg_pool_dispose(&pool);
    free(tok);
}

static void accepts_valid_rs256_token(void **state)
{
    check_principal(HDR("RS256", "rs"), FX_RS256, "rs");
}

static void accepts_valid_es256_token(void **state)
{
    check_principal(HDR("ES256", "es"), FX_ES256, "es");
}

static void accepts_es256_signatures_whatever_their_leading_bytes(void **state)
{
    /* R and S with the high bit set or leading zeros take other DER forms. */
    char extra[64];
    claims_t c = claims();

    for (int i = 0; i < 64; i++) {
        snprintf(extra, sizeof(extra), "\"jti\":\"%d\"", i);
        c.extra = extra;
        expect_accept(fx_jwt(HDR("ES256", "es"), payload(&c), FX_ES256));
    }
}

static void accepts_valid_eddsa_token(void **state)
{
    check_principal(HDR("EdDSA", "ed"), FX_EDDSA, "ed");
}

static void accepts_valid_hs256_token(void **state)
{
    check_principal(HDR("HS256", "hs"), FX_HS256, "hs");
}

static void accepts_header_without_typ_and_with_whitespace(void **state)
{
    claims_t c = claims();

    expect_accept(fx_jwt(" { \"kid\" : \"hs\" ,\n\"alg\":\"HS256\" } ", payload(&c), FX_HS256));
}

/* ---- time ------------------------------------------------------------------------ */

static void rejects_expired_token(void **state)
{
    claims_t c = claims();

    c.exp = "1699999000";
    expect_reject(signed_claims(&c), "jwt expired");
    c.exp = "1699999940"; /* exp + leeway == now: no longer valid */
    expect_reject(signed_claims(&c), "jwt expired");
}

static void accepts_token_expired_within_leeway(void **state)
{
    claims_t c = claims();

    c.exp = "1699999970";
    expect_accept(signed_claims(&c));
    c.exp = "1699999941.5";
    expect_accept(signed_claims(&c));
}

static void rejects_token_without_exp(void **state)
{
    claims_t c = claims();

    c.exp = NULL;
    expect_reject(signed_claims(&c), "jwt missing exp");
}

static void rejects_exp_that_is_not_a_date(void **state)
{
    claims_t c = claims();

    c.exp = "\"1700000300\"";
    expect_reject(signed_claims(&c), "jwt bad exp");
    c.exp = "-1";
    expect_reject(signed_claims(&c), "jwt bad exp");
    c.exp = "1e300";
    expect_reject(signed_claims(&c), "jwt bad exp");
    c.exp = "null";
    expect_reject(signed_claims(&c), "jwt bad exp");
}

static void rejects_token_not_yet_valid(void **state)
{
    claims_t c = claims();

    c.nbf = "1700000061";
    expect_reject(signed_claims(&c), "jwt not yet valid");
    c.nbf = "\"soon\"";
    expect_reject(signed_claims(&c), "jwt bad nbf");
}

static void accepts_nbf_within_leeway(void **state)
{
    claims_t c = claims();

    c.nbf = "1700000060";
    expect_accept(signed_claims(&c));
    c.nbf = "1690000000";
    expect_accept(signed_claims(&c));
}

/* ---- issuer, audience, principal claims -------------------------------------------- */

static void rejects_wrong_issuer(void **state)
{
    claims_t c = claims();

    c.iss = "\"https://evil.test\"";
    expect_reject(signed_claims(&c), "jwt wrong issuer");
    c.iss = "\"https://idp.test/\"";
    expect_reject(signed_claims(&c), "jwt wrong issuer");
    c.iss = "[\"https://idp.test\"]";
    expect_reject(signed_claims(&c), "jwt wrong issuer");
    c.iss = NULL;
    expect_reject(signed_claims(&c), "jwt missing issuer");
}

static void rejects_wrong_audience(void **state)
{
    claims_t c = claims();

    c.aud = "\"other-service\"";
    expect_reject(signed_claims(&c), "jwt wrong audience");
    c.aud = "\"SMSGUARD\"";
    expect_reject(signed_claims(&c), "jwt wrong audience");
    c.aud = "[\"a\",\"b\"]";
    expect_reject(signed_claims(&c), "jwt wrong audience");
    c.aud = "[]";
    expect_reject(signed_claims(&c), "jwt wrong audience");
    c.aud = NULL;
    expect_reject(signed_claims(&c), "jwt missing audience");
    c.aud = "[\"smsguard\", 5]";
    expect_reject(signed_claims(&c), "jwt malformed");
    c.aud = "{\"smsguard\":1}";
    expect_reject(signed_claims(&c), "jwt malformed");
}

static void accepts_audience_array_holding_one_of_ours(void **state)
{
    claims_t c = claims();

    c.aud = "[\"other\",\"smsguard-b\"]";
    expect_accept(signed_claims(&c));
    c.aud = "\"smsguard-b\"";
    expect_accept(signed_claims(&c));
}

static void rejects_token_without_tenant_or_subject(void **state)
{
    claims_t c = claims();

    c.tenant = NULL;
    expect_reject(signed_claims(&c), "jwt missing tenant");
    c.tenant = "\"\"";
    expect_reject(signed_claims(&c), "jwt missing tenant");
    c.tenant = "[\"t1\"]";
    expect_reject(signed_claims(&c), "jwt missing tenant");
    c = claims();
    c.sub = NULL;
    expect_reject(signed_claims(&c), "jwt missing subject");
}

static void takes_roles_as_string_array_or_absent(void **state)
{
    claims_t c = claims();
    sg_principal_t who;
    sg_pool_t pool;
    char *tok;

    sg_pool_init(&pool, 1024);
    c.roles = "\"dr-operator\"";
    tok = signed_claims(&c);
    assert_null(auth_n(tok, strlen(tok), &who, &pool));
    assert_int_equal(who.nroles, 1);
    assert_string_equal(who.roles[0], "dr-operator");
    free(tok);
    c.roles = NULL;
    tok = signed_claims(&c);
    assert_null(auth_n(tok, strlen(tok), &who, &pool));
    assert_int_equal(who.nroles, 0);
    free(tok);
    c.roles = "[]";
    tok = signed_claims(&c);
    assert_null(auth_n(tok, strlen(tok), &who, &pool));
    assert_int_equal(who.nroles, 0);
    free(tok);
    sg_pool_dispose(&pool);
    c.roles = "[\"dr-operator\", 1]";
    expect_reject(signed_claims(&c), "jwt bad roles claim");
    c.roles = "{\"dr-operator\":true}";
    expect_reject(signed_claims(&c), "jwt bad roles claim");
}

static void reads_the_configured_claim_names(void **state)
{
    sg_policy_t *p = fx_policy(
        FX_BASE
        "policy = { jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\";\n"
        "  keys = ( { kid = \"hs\"; alg = \"HS256\"; secret_file = \"hs.key\"; } );\n"
        "  subject_claim = \"upn\"; tenant_claim = \"org\"; roles_claim = \"grp\"; }; };\n");
    claims_t c = claims();
    sg_principal_t who;
    sg_pool_t pool;
    const char *reason;
    char *tok;

    c.extra = "\"upn\":\"carol\",\"org\":\"t7\",\"grp\":\"r9\"";
    tok = signed_claims(&c);
    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_pol_authenticate(p, &pool, tok, strlen(tok), FX_NOW, &who, &reason), 0);
    assert_string_equal(who.subject, "carol");
    assert_string_equal(who.tenant, "t7");
    assert_int_equal(who.nroles, 1);
    assert_string_equal(who.roles[0], "r9");
    free(tok);
    c.extra = "\"upn\":\"carol\",\"grp\":\"r9\""; /* "tenant" is present but not "org" */
    tok = signed_claims(&c);
    assert_int_equal(sg_pol_authenticate(p, &pool, tok, strlen(tok), FX_NOW, &who, &reason), -1);
    assert_string_equal(reason, "jwt missing tenant");
    free(tok);
    sg_pool_dispose(&pool);
    sg_policy_free(p);
}

/* Replace segment I of TOK (malloc'd) by SEG. */
static char *with_segment(char *tok, int i, const char *seg)
{
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char *out = malloc(strlen(tok) + strlen(seg) + 1);

    assert_non_null(out);
    if (i == 0)
        sprintf(out, "%s%s", seg, d1);
    else if (i == 1)
        sprintf(out, "%.*s.%s%s", (int)(d1 - tok), tok, seg, d2);
    else
        sprintf(out, "%.*s.%s", (int)(d2 - tok), tok, seg);
    free(tok);
    return out;
}

/* ---- signatures and algorithms ------------------------------------------------------ */

static void rejects_bad_signature(void **state)
{
    claims_t c = claims();
    char *tok;

    /* Another RSA key of the right size. */
    expect_reject(fx_jwt_with(HDR("RS256", "rs"), payload(&c), FX_RS256, fx_rsa_other, NULL, 0),
                  "jwt bad signature");
    /* Another HMAC secret. */
    expect_reject(fx_jwt_with(HDR("HS256", "hs"), payload(&c), FX_HS256, NULL,
                              "0123456789abcdef0123456789abcdef", 32),
                  "jwt bad signature");
    /* The payload changed after signing (another tenant). */
    tok = fx_jwt(HDR("ES256", "es"), payload(&c), FX_ES256);
    c.tenant = "\"t2\"";
    {
        char *seg = fx_b64url(payload(&c), strlen(payload(&c)));

        expect_reject(with_segment(tok, 1, seg), "jwt bad signature");
        free(seg);
    }
    c = claims();
    /* One bit of an Ed25519 signature flipped. */
    tok = fx_jwt(HDR("EdDSA", "ed"), payload(&c), FX_EDDSA);
    tok[strlen(tok) - 5] = tok[strlen(tok) - 5] == 'A' ? 'B' : 'A';
    expect_reject(tok, "jwt bad signature");
}

static void rejects_es256_signature_in_der_form(void **state)
{
    /* A DER ECDSA signature is 70-72 bytes: only R||S (64) is JWS (RFC 7518 3.4). */
    claims_t c = claims();
    char *h = fx_b64url(HDR("ES256", "es"), strlen(HDR("ES256", "es")));
    char *p = fx_b64url(payload(&c), strlen(payload(&c)));
    char input[2048], tok[4096];
    unsigned char der[128];
    size_t dn = sizeof(der);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *s;

    snprintf(input, sizeof(input), "%s.%s", h, p);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, fx_ec), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &dn, (unsigned char *)input, strlen(input)), 1);
    s = fx_b64url(der, dn);
    snprintf(tok, sizeof(tok), "%s.%s", input, s);
    expect_reject(strdup(tok), "jwt bad signature");
    EVP_MD_CTX_free(ctx);
    free(h);
    free(p);
    free(s);
}

static void rejects_alg_none(void **state)
{
    claims_t c = claims();
    char *tok = fx_jwt(HDR("none", "rs"), payload(&c), FX_UNSIGNED);

    /* The classic form: empty signature. */
    expect_reject(tok, "jwt malformed");
    /* With any signature at all, and in other spellings. */
    expect_reject(fx_jwt(HDR("none", "rs"), payload(&c), FX_HS256), "jwt alg none refused");
    expect_reject(fx_jwt(HDR("None", "hs"), payload(&c), FX_HS256), "jwt alg none refused");
    expect_reject(fx_jwt(HDR("NONE", "hs"), payload(&c), FX_HS256), "jwt alg none refused");
    expect_reject(fx_jwt("{\"alg\":\"none\"}", payload(&c), FX_HS256), "jwt alg none refused");
}

static void rejects_unsupported_and_missing_alg(void **state)
{
    claims_t c = claims();

    expect_reject(fx_jwt(HDR("HS512", "hs"), payload(&c), FX_HS256), "jwt unsupported alg");
    expect_reject(fx_jwt(HDR("PS256", "rs"), payload(&c), FX_HS256), "jwt unsupported alg");
    expect_reject(fx_jwt(HDR("hs256", "hs"), payload(&c), FX_HS256), "jwt unsupported alg");
    expect_reject(fx_jwt("{\"kid\":\"hs\"}", payload(&c), FX_HS256), "jwt malformed");
    expect_reject(fx_jwt("{\"alg\":256,\"kid\":\"hs\"}", payload(&c), FX_HS256), "jwt malformed");
}

static void rejects_hs256_signed_with_the_rsa_public_key(void **state)
{
    /*
     * Algorithm confusion: the attacker knows the RS256 public key (it is public) and
     * uses its PEM as an HMAC secret, hoping the verifier takes the alg from the token.
     */
    FILE *f = fopen(fx_at("rsa.pub"), "rb");
    char pem[4096];
    size_t n;
    claims_t c = claims();

    assert_non_null(f);
    n = fread(pem, 1, sizeof(pem), f);
    fclose(f);
    expect_reject(fx_jwt_with(HDR("HS256", "rs"), payload(&c), FX_HS256, NULL, pem, n),
                  "jwt alg does not match key");
    /* Nor the other way: an asymmetric alg on the HMAC kid. */
    expect_reject(fx_jwt(HDR("RS256", "hs"), payload(&c), FX_RS256), "jwt alg does not match key");
}

static void rejects_alg_that_does_not_match_its_kid(void **state)
{
    claims_t c = claims();

    expect_reject(fx_jwt(HDR("ES256", "rs"), payload(&c), FX_ES256), "jwt alg does not match key");
    expect_reject(fx_jwt(HDR("EdDSA", "es"), payload(&c), FX_EDDSA), "jwt alg does not match key");
    expect_reject(fx_jwt(HDR("RS256", "ed"), payload(&c), FX_RS256), "jwt alg does not match key");
}

static void rejects_unknown_kid(void **state)
{
    claims_t c = claims();

    expect_reject(fx_jwt(HDR("HS256", "k9"), payload(&c), FX_HS256), "jwt unknown kid");
    expect_reject(fx_jwt(HDR("HS256", "HS"), payload(&c), FX_HS256), "jwt unknown kid");
    expect_reject(fx_jwt(HDR("HS256", ""), payload(&c), FX_HS256), "jwt unknown kid");
    expect_reject(fx_jwt(HDR("HS256", "hs\\u0020"), payload(&c), FX_HS256), "jwt unknown kid");
    expect_reject(fx_jwt("{\"alg\":\"HS256\"}", payload(&c), FX_HS256), "jwt missing kid");
    expect_reject(fx_jwt("{\"alg\":\"HS256\",\"kid\":1}", payload(&c), FX_HS256), "jwt malformed");
}

static void rejects_kid_with_path_characters(void **state)
{
    /* A kid is looked up in the table, never opened: the file exists and is still unknown. */
    claims_t c = claims();
    char hdr[PATH_MAX + 64];

    expect_reject(fx_jwt(HDR("HS256", "../../etc/passwd"), payload(&c), FX_HS256),
                  "jwt unknown kid");
    expect_reject(fx_jwt_with(HDR("HS256", "/dev/null"), payload(&c), FX_HS256, NULL, "", 0),
                  "jwt unknown kid");
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"kid\":\"%s\"}", fx_at("hs.key"));
    expect_reject(fx_jwt(hdr, payload(&c), FX_HS256), "jwt unknown kid");
    expect_reject(fx_jwt(HDR("HS256", "hs' OR '1'='1"), payload(&c), FX_HS256), "jwt unknown kid");
}

static void rejects_keys_carried_in_the_header(void **state)
{
    claims_t c = claims();

    expect_reject(
        fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AA\"}}",
               payload(&c), FX_HS256),
        "jwt key in header refused");
    expect_reject(fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"jku\":\"https://evil/jwks\"}",
                         payload(&c), FX_HS256),
                  "jwt key in header refused");
    expect_reject(fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"x5u\":\"https://evil/c.pem\"}",
                         payload(&c), FX_HS256),
                  "jwt key in header refused");
    expect_reject(
        fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"x5c\":[\"MIIB\"]}", payload(&c), FX_HS256),
        "jwt key in header refused");
}

static void rejects_crit_header(void **state)
{
    claims_t c = claims();

    expect_reject(fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"crit\":[\"exp\"],\"exp\":1}",
                         payload(&c), FX_HS256),
                  "jwt crit header refused");
    expect_reject(fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"b64\":false,\"crit\":[\"b64\"]}",
                         payload(&c), FX_HS256),
                  "jwt crit header refused");
    expect_reject(fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"crit\":[]}", payload(&c), FX_HS256),
                  "jwt crit header refused");
}

/* ---- encodings ------------------------------------------------------------------------ */

static void rejects_truncated_segments(void **state)
{
    claims_t c = claims();
    char *tok = fx_jwt(HDR("RS256", "rs"), payload(&c), FX_RS256);
    size_t n = strlen(tok);
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    sg_principal_t who;
    sg_pool_t pool;

    sg_pool_init(&pool, 1024);
    /* Two segments, one, the signature cut at every length. */
    assert_string_equal(auth_n(tok, (size_t)(d2 - tok), &who, &pool), "jwt malformed");
    assert_string_equal(auth_n(tok, (size_t)(d2 - tok) + 1, &who, &pool), "jwt malformed");
    assert_string_equal(auth_n(tok, (size_t)(d1 - tok) + 1, &who, &pool), "jwt malformed");
    assert_string_equal(auth_n(tok, (size_t)(d1 - tok), &who, &pool), "unknown static token");
    for (size_t cut = (size_t)(d2 - tok) + 2; cut < n; cut++) {
        const char *r = auth_n(tok, cut, &who, &pool);

        assert_non_null(r);
        assert_true(strcmp(r, "jwt malformed") == 0 || strcmp(r, "jwt bad signature") == 0);
    }
    /* Empty header or payload. */
    assert_string_equal(auth_n(d1, n - (size_t)(d1 - tok), &who, &pool), "jwt malformed");
    memmove(d1 + 1, d2, strlen(d2) + 1);
    assert_string_equal(auth_n(tok, strlen(tok), &who, &pool), "jwt malformed");
    assert_string_equal(auth_n("..", 2, &who, &pool), "jwt malformed");
    sg_pool_dispose(&pool);
    free(tok);
}

static void rejects_four_segments(void **state)
{
    claims_t c = claims();
    char *tok = fx_jwt(HDR("HS256", "hs"), payload(&c), FX_HS256);
    char *more = malloc(strlen(tok) + 8);

    sprintf(more, "%s.AAAA", tok);
    expect_reject(more, "jwt malformed"); /* RFC 7515 7.1: exactly three */
    free(tok);
}

static void rejects_bad_base64url(void **state)
{
    claims_t c = claims();
    /* ">>>" and "???" encode to '-' and '_' in base64url, '+' and '/' in base64. */
    char *tok =
        fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"x\":\">>>>>>??????\"}", payload(&c), FX_HS256);
    char *std = strdup(tok), *p;
    int swapped = 0;

    for (p = std; *p != '.'; p++)
        if (*p == '-' || *p == '_') {
            *p = *p == '-' ? '+' : '/';
            swapped++;
        }
    assert_true(swapped >= 2);
    expect_reject(std, "jwt malformed");
    expect_accept(strdup(tok));
    expect_reject(with_segment(strdup(tok), 0, "eyJhbGciOiJIUzI1NiJ9!"), "jwt malformed");
    expect_reject(with_segment(strdup(tok), 1, "e yJ"), "jwt malformed");
    expect_reject(with_segment(strdup(tok), 2, "AAAA\n"), "jwt malformed");
    expect_reject(with_segment(strdup(tok), 2, "A"), "jwt malformed"); /* length 4k+1 */
    /* Non-zero unused bits: "QR" would decode to "A" (as "QQ") if they were ignored. */
    expect_reject(with_segment(strdup(tok), 0, "QR"), "jwt malformed");
    expect_reject(with_segment(strdup(tok), 2, "QR"), "jwt malformed");
    free(tok);
}

static void rejects_padding(void **state)
{
    claims_t c = claims();
    char *tok = fx_jwt(HDR("HS256", "hs"), payload(&c), FX_HS256);
    char *padded = malloc(strlen(tok) + 4);

    /* The HS256 signature is 32 bytes: 43 characters, 44 with standard padding. */
    sprintf(padded, "%s=", tok);
    expect_reject(padded, "jwt malformed");
    expect_reject(with_segment(strdup(tok), 0, "e30="), "jwt malformed");
    expect_reject(with_segment(strdup(tok), 0, "e30"), "jwt malformed"); /* "{}": no alg */
    free(tok);
}

static void rejects_huge_header(void **state)
{
    claims_t c = claims();
    size_t n = 16 * 1024;
    char *hdr = malloc(n + 64);
    char *tok;

    snprintf(hdr, n + 64, "{\"alg\":\"HS256\",\"kid\":\"hs\",\"x\":\"%0*d\"}", (int)n, 0);
    tok = fx_jwt(hdr, payload(&c), FX_HS256);
    expect_reject(tok, "token too large");
    free(hdr);
}

static void rejects_deeply_nested_json(void **state)
{
    claims_t c = claims();
    char extra[512];
    size_t o;

    o = (size_t)snprintf(extra, sizeof(extra), "\"deep\":");
    for (int i = 0; i < 40; i++)
        extra[o++] = '[';
    for (int i = 0; i < 40; i++)
        extra[o++] = ']';
    extra[o] = '\0';
    c.extra = extra;
    expect_reject(signed_claims(&c), "jwt malformed");
}

static void rejects_duplicate_claim(void **state)
{
    claims_t c = claims();

    /* cJSON would read the first tenant; the issuer may have meant the second. */
    c.extra = "\"tenant\":\"t2\"";
    expect_reject(signed_claims(&c), "jwt duplicate member");
    c.extra = "\"t\\u0065nant\":\"t2\""; /* the same name, spelled with an escape */
    expect_reject(signed_claims(&c), "jwt duplicate member");
    c.extra = "\"x\":{\"a\":1,\"b\":[{\"c\":1,\"c\":2}]}";
    expect_reject(signed_claims(&c), "jwt duplicate member");
    c.extra = "\"x\":[{\"c\":1},{\"c\":2}]"; /* equal names in different objects are fine */
    expect_accept(signed_claims(&c));
    expect_reject(
        fx_jwt("{\"alg\":\"HS256\",\"kid\":\"hs\",\"alg\":\"none\"}", payload(&c), FX_HS256),
        "jwt duplicate member");
}

static void finds_a_duplicate_among_many_members(void **state)
{
    claims_t c = claims();
    char *extra = malloc(8192);
    size_t o = 0;

    for (int i = 0; i < 400; i++)
        o += (size_t)snprintf(extra + o, 8192 - o, "%s\"m%d\":%d", i ? "," : "", i, i);
    c.extra = extra;
    expect_accept(signed_claims(&c));
    snprintf(extra + o, 8192 - o, ",\"m317\":0");
    expect_reject(signed_claims(&c), "jwt duplicate member");
    free(extra);
}

static void leaves_no_openssl_error_behind(void **state)
{
    /* A worker's next SSL_get_error() must not see a JWT's failed verification. */
    claims_t c = claims();

    ERR_clear_error();
    expect_reject(fx_jwt_with(HDR("RS256", "rs"), payload(&c), FX_RS256, fx_rsa_other, NULL, 0),
                  "jwt bad signature");
    expect_reject(fx_jwt(HDR("ES256", "es"), payload(&c), FX_EDDSA), "jwt bad signature");
    assert_int_equal(ERR_peek_error(), 0);
}

static void rejects_strings_with_nul_or_bad_utf8(void **state)
{
    claims_t c = claims();

    c.tenant = "\"t1\\u0000evil\"";
    expect_reject(signed_claims(&c), "jwt malformed");
    c.tenant = "\"t1\xc0\xaf\""; /* overlong '/' */
    expect_reject(signed_claims(&c), "jwt malformed");
    c.tenant = "\"t1\xed\xa0\x80\""; /* UTF-8 encoded surrogate */
    expect_reject(signed_claims(&c), "jwt malformed");
    c.tenant = "\"t1\\ud800\""; /* lone surrogate escape */
    expect_reject(signed_claims(&c), "jwt malformed");
    c.tenant = "\"t1\xff\"";
    expect_reject(signed_claims(&c), "jwt malformed");
    c.tenant = "\"t1\x01\""; /* raw control character */
    expect_reject(signed_claims(&c), "jwt malformed");
    c = claims();
    c.sub = "\"b\xc3\xb6\\ud83d\\ude00b\""; /* valid: U+00F6 and a surrogate pair */
    expect_accept(signed_claims(&c));
}

static void rejects_json_that_is_not_one_strict_object(void **state)
{
    const char *bad[] = {
        "[1]",
        "\"x\"",
        "{\"iss\":1} {}",
        "{\"iss\":1,}",
        "{\"exp\":+1700000300}",
        "{\"exp\":01700000300}",
        "{\"exp\":1700000300.}",
        "{'iss':1}",
        "{\"a\":tru}",
        "{\"a\":NaN}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":1e}",
        "{\"a\":[1 2]}",
        "{\"a\":123456789012345678901234567890123}",
    };

    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        char *tok = fx_jwt(HDR("HS256", "hs"), bad[i], FX_HS256);

        expect_reject(tok, "jwt malformed");
    }
    /* A raw NUL inside the decoded payload (the string form above cannot hold one). */
    {
        char *h = fx_b64url(HDR("HS256", "hs"), strlen(HDR("HS256", "hs")));
        const char raw[] = "{\"exp\":1}\0{\"x\":1}";
        char *p = fx_b64url(raw, sizeof(raw) - 1);
        char input[512], tok[1024 + 64];
        unsigned char sig[64];
        size_t sn;
        char *s;

        snprintf(input, sizeof(input), "%s.%s", h, p);
        sn = fx_sign(FX_HS256, NULL, fx_hs_secret, sizeof(fx_hs_secret), input, sig);
        s = fx_b64url(sig, sn);
        snprintf(tok, sizeof(tok), "%s.%s", input, s);
        expect_reject(strdup(tok), "jwt malformed");
        free(h);
        free(p);
        free(s);
    }
}

/* ---- certificate-bound tokens (RFC 8705) ---------------------------------------------- */

static void binds_token_to_the_client_certificate(void **state)
{
    X509 *cert = fx_self_signed(fx_ec, "client"), *other = fx_self_signed(fx_rsa_other, "other");
    unsigned char *der = NULL, *oder = NULL, h[32];
    int dn = i2d_X509(cert, &der), on = i2d_X509(other, &oder);
    char *thumb, extra[128];
    claims_t c = claims();
    sg_principal_t who;
    sg_pool_t pool;
    char *tok;

    assert_true(dn > 0 && on > 0);
    SHA256(der, (size_t)dn, h);
    thumb = fx_b64url(h, sizeof(h));
    snprintf(extra, sizeof(extra), "\"cnf\":{\"x5t#S256\":\"%s\"}", thumb);
    c.extra = extra;
    tok = signed_claims(&c);
    sg_pool_init(&pool, 1024);
    assert_null(auth_n(tok, strlen(tok), &who, &pool));
    assert_string_equal(who.cnf_x5t_s256, thumb);
    assert_int_equal(sg_pol_check_cert_binding(&who, der, (size_t)dn), 0);
    assert_int_equal(sg_pol_check_cert_binding(&who, oder, (size_t)on), -1);
    assert_int_equal(sg_pol_check_cert_binding(&who, NULL, 0), -1);
    free(tok);
    /* Without cnf any certificate, or none, is fine. */
    c.extra = NULL;
    tok = signed_claims(&c);
    assert_null(auth_n(tok, strlen(tok), &who, &pool));
    assert_null(who.cnf_x5t_s256);
    assert_int_equal(sg_pol_check_cert_binding(&who, NULL, 0), 0);
    assert_int_equal(sg_pol_check_cert_binding(&who, der, (size_t)dn), 0);
    free(tok);
    sg_pool_dispose(&pool);
    /* A confirmation method we cannot enforce makes the token unusable, not a bearer token. */
    c.extra = "\"cnf\":{\"jkt\":\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"}";
    expect_reject(signed_claims(&c), "jwt unsupported cnf");
    snprintf(extra, sizeof(extra), "\"cnf\":{\"x5t#S256\":\"%s\",\"jkt\":\"x\"}", thumb);
    c.extra = extra;
    expect_reject(signed_claims(&c), "jwt unsupported cnf");
    c.extra = "\"cnf\":\"x\"";
    expect_reject(signed_claims(&c), "jwt bad cnf claim");
    c.extra = "\"cnf\":{\"x5t#S256\":5}";
    expect_reject(signed_claims(&c), "jwt bad cnf claim");
    free(thumb);
    OPENSSL_free(der);
    OPENSSL_free(oder);
    X509_free(cert);
    X509_free(other);
}

static void accepts_a_jwt_shaped_static_token_before_jwt_rules(void **state)
{
    /* Static tokens are checked first, whatever their shape. */
    char text[4096];
    sg_policy_t *p;
    sg_principal_t who;
    sg_pool_t pool;
    const char *reason;

    snprintf(text, sizeof(text),
             FX_BASE
             "policy = {\n"
             "  tokens = ( { id = \"dotted\"; sha256 = \"%s\"; subject = \"s\"; tenant = "
             "\"t1\"; roles = []; } );\n"
             "  jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\";\n"
             "    keys = ( { kid = \"hs\"; alg = \"HS256\"; secret_file = \"hs.key\"; } ); };\n"
             "  tenants = ( { name = \"t1\"; providers = [\"*\"]; fault_domains = [\"*\"]; } );\n"
             "};\n",
             fx_sha256_hex("a.b.c"));
    p = fx_policy(text);
    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_pol_authenticate(p, &pool, "a.b.c", 5, FX_NOW, &who, &reason), 0);
    assert_string_equal(who.auth, "static");
    assert_string_equal(who.token_id, "dotted");
    assert_int_equal(sg_pol_authenticate(p, &pool, "a.b.d", 5, FX_NOW, &who, &reason), -1);
    assert_string_equal(reason, "jwt malformed");
    sg_pool_dispose(&pool);
    sg_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_valid_rs256_token),
        cmocka_unit_test(accepts_valid_es256_token),
        cmocka_unit_test(accepts_es256_signatures_whatever_their_leading_bytes),
        cmocka_unit_test(accepts_valid_eddsa_token),
        cmocka_unit_test(accepts_valid_hs256_token),
        cmocka_unit_test(accepts_header_without_typ_and_with_whitespace),
        cmocka_unit_test(rejects_expired_token),
        cmocka_unit_test(accepts_token_expired_within_leeway),
        cmocka_unit_test(rejects_token_without_exp),
        cmocka_unit_test(rejects_exp_that_is_not_a_date),
        cmocka_unit_test(rejects_token_not_yet_valid),
        cmocka_unit_test(accepts_nbf_within_leeway),
        cmocka_unit_test(rejects_wrong_issuer),
        cmocka_unit_test(rejects_wrong_audience),
        cmocka_unit_test(accepts_audience_array_holding_one_of_ours),
        cmocka_unit_test(rejects_token_without_tenant_or_subject),
        cmocka_unit_test(takes_roles_as_string_array_or_absent),
        cmocka_unit_test(reads_the_configured_claim_names),
        cmocka_unit_test(rejects_bad_signature),
        cmocka_unit_test(rejects_es256_signature_in_der_form),
        cmocka_unit_test(rejects_alg_none),
        cmocka_unit_test(rejects_unsupported_and_missing_alg),
        cmocka_unit_test(rejects_hs256_signed_with_the_rsa_public_key),
        cmocka_unit_test(rejects_alg_that_does_not_match_its_kid),
        cmocka_unit_test(rejects_unknown_kid),
        cmocka_unit_test(rejects_kid_with_path_characters),
        cmocka_unit_test(rejects_keys_carried_in_the_header),
        cmocka_unit_test(rejects_crit_header),
        cmocka_unit_test(rejects_truncated_segments),
        cmocka_unit_test(rejects_four_segments),
        cmocka_unit_test(rejects_bad_base64url),
        cmocka_unit_test(rejects_padding),
        cmocka_unit_test(rejects_huge_header),
        cmocka_unit_test(rejects_deeply_nested_json),
        cmocka_unit_test(rejects_duplicate_claim),
        cmocka_unit_test(finds_a_duplicate_among_many_members),
        cmocka_unit_test(leaves_no_openssl_error_behind),
        cmocka_unit_test(rejects_strings_with_nul_or_bad_utf8),
        cmocka_unit_test(rejects_json_that_is_not_one_strict_object),
        cmocka_unit_test(binds_token_to_the_client_certificate),
        cmocka_unit_test(accepts_a_jwt_shaped_static_token_before_jwt_rules),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
