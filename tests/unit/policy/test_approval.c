/*
 * tests/unit/policy/test_approval.c - four-eyes approvals (policy/approval.c): the
 * operation digest's canonical text, statements signed here with keys generated at run
 * time (Ed25519, P-256) and every refusal, the approver list, and the jti replay cache
 * (times passed in; no clock is read).
 */
#include "tests/unit/policy/fixture.h"
#include <openssl/err.h>

#include "policy/approval.h"

#define NOW 1700000000LL
#define MAX_S 900
#define LEEWAY 60

static EVP_PKEY *ed, *ed_other, *ec;
static sg_approvers_t *approvers;
static unsigned char dig[32]; /* of op_base() */

static const sg_approval_group_t groups_base[] = {
    {{"fd-2", 4}, {"dg-1", 4}},
    {{"fd-1", 4}, {"dg-9", 4}},
    {{"fd-2", 4}, {"dg-1", 4}}, /* a repeat: one line */
};

static sg_approval_op_t op_base(void)
{
    return (sg_approval_op_t){.upstream = "vc-east",
                              .release = "8.0.1.0",
                              .provider = "vasa-1",
                              .method = "TestFailoverReplicationGroupStop_Task",
                              .groups = groups_base,
                              .ngroups = 3,
                              .force = 0,
                              .ticket = "CHG-1"};
}

static char *pub_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *out;
    long n;

    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    n = BIO_get_mem_data(b, &p);
    out = strndup(p, (size_t)n);
    BIO_free(b);
    assert_non_null(out);
    return out;
}

static int add(sg_approvers_t *a, const char *name, EVP_PKEY *k, const char *tenant, char *err)
{
    char *pem = pub_pem(k);
    const char *tenants[] = {tenant};
    int rc = sg_approvers_add(a, name, pem, strlen(pem), tenants, 1, err, 256);

    free(pem);
    return rc;
}

static int setup(void **state)
{
    char err[256];
    sg_approval_op_t op = op_base();

    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ed_other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ec = EVP_EC_gen("P-256");
    approvers = sg_approvers_new();
    if (!ed || !ed_other || !ec || !approvers)
        return -1;
    if (add(approvers, "alice", ed, "t1", err) != 0 || add(approvers, "bob", ec, "t*", err) != 0)
        return -1;
    return sg_approval_digest(&op, dig) == SG_OK ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(ed);
    EVP_PKEY_free(ed_other);
    EVP_PKEY_free(ec);
    sg_approvers_free(approvers);
    return 0;
}

/* A statement with header {"alg":alg,"kid":kid,"typ":...} and the given payload. */
static char *stmt_raw(const char *header, const char *payload, fx_alg_t alg, EVP_PKEY *k)
{
    static const unsigned char secret[32] = {1};

    return fx_jwt_with(header, payload, alg, k, secret, sizeof(secret));
}

static char *header_for(const char *alg, const char *kid)
{
    static char h[256];

    snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"" SG_APPROVAL_TYP "\"}",
             alg, kid);
    return h;
}

static char *payload_for(const unsigned char d[32], long long iat, long long exp, const char *jti)
{
    static char p[512];
    char *b = fx_b64url(d, 32);

    snprintf(p, sizeof(p), "{\"dig\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}", b, iat,
             exp, jti);
    free(b);
    return p;
}

/* alice's (Ed25519) statement for dig with the given times and jti. */
static char *alice(long long iat, long long exp, const char *jti)
{
    return stmt_raw(header_for("EdDSA", "alice"), payload_for(dig, iat, exp, jti), FX_EDDSA, ed);
}

static sg_approval_check_t check_base(void)
{
    return (sg_approval_check_t){.digest = dig,
                                 .requester = "carol",
                                 .tenant = "t1",
                                 .now = NOW,
                                 .max_s = MAX_S,
                                 .leeway_s = LEEWAY,
                                 .jtis = NULL};
}

/* The reason of sg_approval_verify(), "ok" when accepted; frees s. */
static const char *verdict(char *s, const sg_approval_check_t *chk)
{
    sg_approval_t out;
    const char *why = NULL;
    int rc = sg_approval_verify(approvers, s, strlen(s), chk, &out, &why);

    free(s);
    if (rc == SG_OK) {
        assert_null(why);
        return "ok";
    }
    assert_int_equal(rc, SG_ERR);
    assert_non_null(why);
    return why;
}

static const char *verdict_now(char *s)
{
    sg_approval_check_t chk = check_base();

    return verdict(s, &chk);
}

/* ---- digest ------------------------------------------------------------------------ */

static void canonical_text_is_the_documented_one(void **state)
{
    sg_approval_op_t op = op_base();
    sg_buf_t b;
    unsigned char d[32], h[32];

    sg_buf_init(&b, 1 << 20);
    assert_int_equal(sg_approval_canonical(&op, &b), SG_OK);
    assert_int_equal(sg_buf_avail(&b), strlen("smsguard-approval-v1\n"
                                              "upstream:7:vc-east\n"
                                              "release:7:8.0.1.0\n"
                                              "provider:6:vasa-1\n"
                                              "method:37:TestFailoverReplicationGroupStop_Task\n"
                                              "force:false\n"
                                              "ticket:5:CHG-1\n"
                                              "groups:2\n"
                                              "group:4:fd-1/4:dg-9\n"
                                              "group:4:fd-2/4:dg-1\n"));
    assert_memory_equal(sg_buf_head(&b),
                        "smsguard-approval-v1\nupstream:7:vc-east\nrelease:7:8.0.1.0\n"
                        "provider:6:vasa-1\nmethod:37:TestFailoverReplicationGroupStop_Task\n"
                        "force:false\nticket:5:CHG-1\ngroups:2\ngroup:4:fd-1/4:dg-9\n"
                        "group:4:fd-2/4:dg-1\n",
                        sg_buf_avail(&b));
    /* The digest is SHA-256 of exactly that text. */
    SHA256((const unsigned char *)sg_buf_head(&b), sg_buf_avail(&b), h);
    assert_int_equal(sg_approval_digest(&op, d), SG_OK);
    assert_memory_equal(d, h, 32);
    sg_buf_dispose(&b);

    /* No ticket is the empty one; force is the word. */
    op.ticket = NULL;
    op.force = 1;
    sg_buf_init(&b, 1 << 20);
    assert_int_equal(sg_approval_canonical(&op, &b), SG_OK);
    assert_non_null(memmem(sg_buf_head(&b), sg_buf_avail(&b), "\nforce:true\nticket:0:\n", 22));
    sg_buf_dispose(&b);
}

static void digest_ignores_the_order_and_repeats_of_groups(void **state)
{
    static const sg_approval_group_t other_order[] = {
        {{"fd-1", 4}, {"dg-9", 4}},
        {{"fd-2", 4}, {"dg-1", 4}},
    };
    sg_approval_op_t op = op_base();
    unsigned char d[32];

    op.groups = other_order;
    op.ngroups = 2;
    assert_int_equal(sg_approval_digest(&op, d), SG_OK);
    assert_memory_equal(d, dig, 32);
}

static void digest_binds_every_part_of_the_operation(void **state)
{
    static const sg_approval_group_t fewer[] = {{{"fd-1", 4}, {"dg-9", 4}}};
    static const sg_approval_group_t split1[] = {{{"a/b", 3}, {"c", 1}}};
    static const sg_approval_group_t split2[] = {{{"a", 1}, {"b/c", 3}}};
    sg_approval_op_t ops[10];
    unsigned char d[10][32];
    size_t i, j;

    for (i = 0; i < 10; i++)
        ops[i] = op_base();
    ops[1].groups = fewer, ops[1].ngroups = 1;
    ops[2].force = 1;
    ops[3].ticket = "CHG-2";
    ops[4].upstream = "vc-west";
    ops[5].release = "8.0.2.0";
    ops[6].provider = "vasa-2";
    ops[7].method = "FailoverReplicationGroup_Task";
    /* Ids holding the separator: the lengths keep the two apart. */
    ops[8].groups = split1, ops[8].ngroups = 1;
    ops[9].groups = split2, ops[9].ngroups = 1;
    for (i = 0; i < 10; i++)
        assert_int_equal(sg_approval_digest(&ops[i], d[i]), SG_OK);
    for (i = 0; i < 10; i++)
        for (j = i + 1; j < 10; j++)
            assert_memory_not_equal(d[i], d[j], 32);
    /* A ticket that is empty and one that is absent are the same. */
    ops[0].ticket = "";
    ops[1] = op_base();
    ops[1].ticket = NULL;
    assert_int_equal(sg_approval_digest(&ops[0], d[0]), SG_OK);
    assert_int_equal(sg_approval_digest(&ops[1], d[1]), SG_OK);
    assert_memory_equal(d[0], d[1], 32);
}

/* ---- statements -------------------------------------------------------------------- */

static void accepts_eddsa_and_es256(void **state)
{
    sg_approval_check_t chk = check_base();
    sg_approval_t out;
    const char *why = "x";
    char *s = alice(NOW - 10, NOW + 600, "j1");

    assert_int_equal(sg_approval_verify(approvers, s, strlen(s), &chk, &out, &why), SG_OK);
    assert_null(why);
    assert_string_equal(out.approver, "alice");
    assert_int_equal(out.exp, NOW + 600);
    assert_int_equal(out.iat, NOW - 10);
    free(s);
    assert_string_equal(verdict_now(stmt_raw(header_for("ES256", "bob"),
                                             payload_for(dig, NOW, NOW + 600, "j2"), FX_ES256,
                                             ec)),
                        "ok");
    /* sub, when present, names the approver. */
    assert_string_equal(
        verdict_now(stmt_raw(header_for("EdDSA", "alice"),
                             "{\"dig\":\"x\",\"iat\":1,\"exp\":2,\"jti\":\"j\",\"sub\":\"mallory\"}",
                             FX_EDDSA, ed)),
        "approval sub is not the approver");
}

static void refuses_bad_signatures_and_unknown_keys(void **state)
{
    char *s = alice(NOW, NOW + 600, "j");
    size_t n = strlen(s);

    /* One signature bit flipped (the last character carries no spare bits for Ed25519's
     * 64 bytes: 86 characters, 4 spare bits; change a middle one). */
    s[n - 10] = s[n - 10] == 'A' ? 'B' : 'A';
    assert_string_equal(verdict_now(s), "approval bad signature");
    /* Another key under alice's name. */
    assert_string_equal(verdict_now(stmt_raw(header_for("EdDSA", "alice"),
                                             payload_for(dig, NOW, NOW + 600, "j"), FX_EDDSA,
                                             ed_other)),
                        "approval bad signature");
    assert_string_equal(verdict_now(stmt_raw(header_for("EdDSA", "mallory"),
                                             payload_for(dig, NOW, NOW + 600, "j"), FX_EDDSA,
                                             ed_other)),
                        "approval unknown approver");
    /* The payload of a valid statement under another statement's signature. */
    {
        char *a = alice(NOW, NOW + 600, "j1"), *b = alice(NOW, NOW + 300, "j2");
        char *sa = strrchr(a, '.'), *sb = strrchr(b, '.');
        char *mix = malloc(strlen(b) + strlen(sa) + 1);

        assert_non_null(mix);
        memcpy(mix, b, (size_t)(sb - b));
        strcpy(mix + (sb - b), sa);
        assert_string_equal(verdict_now(mix), "approval bad signature");
        free(a);
        free(b);
    }
}

static void refuses_algs_that_are_not_the_keys(void **state)
{
    const char *p = payload_for(dig, NOW, NOW + 600, "j");
    char pay[512];

    strcpy(pay, p);
    assert_string_equal(verdict_now(stmt_raw("{\"alg\":\"none\",\"kid\":\"alice\",\"typ\":\"" SG_APPROVAL_TYP "\"}",
                                             pay, FX_HS256, NULL)),
                        "approval alg none refused");
    assert_string_equal(verdict_now(stmt_raw("{\"alg\":\"NoNe\",\"kid\":\"alice\",\"typ\":\"" SG_APPROVAL_TYP "\"}",
                                             pay, FX_HS256, NULL)),
                        "approval alg none refused");
    /* An unsigned statement has an empty signature: not even three segments' worth. */
    assert_string_equal(verdict_now(stmt_raw(header_for("none", "alice"), pay, FX_UNSIGNED, NULL)),
                        "approval malformed");
    assert_string_equal(verdict_now(stmt_raw(header_for("HS256", "alice"), pay, FX_HS256, NULL)),
                        "approval unsupported alg");
    assert_string_equal(verdict_now(stmt_raw(header_for("RS256", "alice"), pay, FX_HS256, NULL)),
                        "approval unsupported alg");
    assert_string_equal(verdict_now(stmt_raw(header_for("PS256", "alice"), pay, FX_HS256, NULL)),
                        "approval unsupported alg");
    /* alice's key is Ed25519: an ES256 statement under her name is not hers. */
    assert_string_equal(verdict_now(stmt_raw(header_for("ES256", "alice"), pay, FX_ES256, ec)),
                        "approval alg does not match key");
}

static void refuses_by_time(void **state)
{
    sg_approval_check_t chk = check_base();

    /* exp: valid until exp + leeway. */
    assert_string_equal(verdict_now(alice(NOW - 700, NOW - LEEWAY, "j")), "approval expired");
    assert_string_equal(verdict_now(alice(NOW - 700, NOW - LEEWAY + 1, "j")), "ok");
    /* At most max_s (+ leeway) from now. */
    assert_string_equal(verdict_now(alice(NOW, NOW + MAX_S + LEEWAY + 1, "j")),
                        "approval exp too far");
    assert_string_equal(verdict_now(alice(NOW, NOW + MAX_S + LEEWAY, "j")), "ok");
    /* iat: not beyond the leeway in the future. */
    assert_string_equal(verdict_now(alice(NOW + LEEWAY + 1, NOW + 600, "j")),
                        "approval issued in the future");
    assert_string_equal(verdict_now(alice(NOW + LEEWAY, NOW + 600, "j")), "ok");
    /* exp before iat, dates that are not dates. */
    assert_string_equal(verdict_now(alice(NOW, NOW, "j")), "approval bad dates");
    assert_string_equal(
        verdict_now(stmt_raw(header_for("EdDSA", "alice"),
                             "{\"dig\":\"x\",\"iat\":\"1\",\"exp\":2,\"jti\":\"j\"}", FX_EDDSA, ed)),
        "approval bad dates");
    assert_string_equal(
        verdict_now(stmt_raw(header_for("EdDSA", "alice"),
                             "{\"dig\":\"x\",\"iat\":1,\"exp\":1e300,\"jti\":\"j\"}", FX_EDDSA, ed)),
        "approval bad dates");
    /* A shorter maximum at the gateway. */
    chk.max_s = 60;
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j"), &chk), "approval exp too far");
}

static void refuses_another_operation(void **state)
{
    sg_approval_op_t ops[4];
    unsigned char d[32];
    static const sg_approval_group_t fewer[] = {{{"fd-1", 4}, {"dg-9", 4}}};

    for (int i = 0; i < 4; i++)
        ops[i] = op_base();
    ops[0].groups = fewer, ops[0].ngroups = 1;
    ops[1].force = 1;
    ops[2].ticket = "CHG-2";
    ops[3].upstream = "vc-west";
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sg_approval_digest(&ops[i], d), SG_OK);
        assert_string_equal(verdict_now(stmt_raw(header_for("EdDSA", "alice"),
                                                 payload_for(d, NOW, NOW + 600, "j"), FX_EDDSA,
                                                 ed)),
                            "approval digest mismatch");
    }
    /* A digest that is not 43 characters. */
    assert_string_equal(
        verdict_now(stmt_raw(header_for("EdDSA", "alice"),
                             "{\"dig\":\"\",\"iat\":1700000000,\"exp\":1700000600,\"jti\":\"j\"}",
                             FX_EDDSA, ed)),
        "approval digest mismatch");
}

static void refuses_tenants_and_self_approval(void **state)
{
    sg_approval_check_t chk = check_base();

    chk.tenant = "t2"; /* alice approves for t1 only */
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j"), &chk),
                        "approver may not approve for the tenant");
    /* bob for "t*". */
    assert_string_equal(verdict(stmt_raw(header_for("ES256", "bob"),
                                         payload_for(dig, NOW, NOW + 600, "j"), FX_ES256, ec),
                                &chk),
                        "ok");
    chk.tenant = "other";
    assert_string_equal(verdict(stmt_raw(header_for("ES256", "bob"),
                                         payload_for(dig, NOW, NOW + 600, "j"), FX_ES256, ec),
                                &chk),
                        "approver may not approve for the tenant");
    chk = check_base();
    chk.requester = "alice";
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j"), &chk), "approval by the requester");
}

static void refuses_a_replayed_jti(void **state)
{
    sg_approval_jtis_t jtis;
    sg_approval_check_t chk = check_base();
    sg_approval_t out;
    const char *why;
    char *s;

    assert_int_equal(sg_approval_jtis_init(&jtis, 16), SG_OK);
    chk.jtis = &jtis;
    /* A statement refused for another reason does not use up its jti. */
    chk.requester = "alice";
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "approval by the requester");
    assert_int_equal(sg_approval_jtis_count(&jtis), 0);
    chk.requester = "carol";
    s = alice(NOW, NOW + 600, "j1");
    assert_int_equal(sg_approval_verify(approvers, s, strlen(s), &chk, &out, &why), SG_OK);
    assert_int_equal(sg_approval_verify(approvers, s, strlen(s), &chk, &out, &why), SG_ERR);
    assert_string_equal(why, "approval replayed");
    assert_string_equal(out.approver, "alice"); /* the record names who signed */
    free(s);
    /* The same jti in another statement of alice's is still the same jti... */
    assert_string_equal(verdict(alice(NOW - 5, NOW + 500, "j1"), &chk), "approval replayed");
    /* ...but bob's j1 is another. */
    assert_string_equal(verdict(stmt_raw(header_for("ES256", "bob"),
                                         payload_for(dig, NOW, NOW + 600, "j1"), FX_ES256, ec),
                                &chk),
                        "ok");
    /* Once no clock within the leeway accepts alice's statement, its jti is forgotten, and
     * the statement is refused as expired, not as a replay. */
    chk.now = NOW + 600 + LEEWAY;
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "approval expired");
    assert_int_equal(sg_approval_jtis_count(&jtis), 2);
    sg_approval_jtis_dispose(&jtis);
}

static void replay_cache_is_bounded_and_expires(void **state)
{
    sg_approval_jtis_t c;

    assert_int_equal(sg_approval_jtis_init(&c, 2), SG_OK);
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "a", 1, 100, 10), SG_OK);
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "b", 1, 200, 10), SG_OK);
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "a", 1, 100, 10), SG_ERR);
    /* Full of live entries: refused, nothing evicted. */
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "c", 1, 300, 99), SG_ETOOBIG);
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "a", 1, 100, 99), SG_ERR);
    assert_int_equal(sg_approval_jtis_count(&c), 2);
    /* At 100, "a" has expired: its slot is free, and "a" may be used again. */
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "c", 1, 300, 100), SG_OK);
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "a", 1, 400, 100), SG_ETOOBIG);
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "a", 1, 400, 200), SG_OK);
    assert_int_equal(sg_approval_jtis_count(&c), 2);
    /* At 400 everything has expired. (approver, jti) pairs that concatenate alike differ. */
    assert_int_equal(sg_approval_jtis_use(&c, "ab", "c", 1, 1000, 400), SG_OK);
    assert_int_equal(sg_approval_jtis_use(&c, "a", "bc", 2, 1000, 400), SG_OK);
    assert_int_equal(sg_approval_jtis_use(&c, "ab", "c", 1, 1000, 400), SG_ERR);
    sg_approval_jtis_dispose(&c);
}

static void replay_lookup_records_nothing(void **state)
{
    sg_approval_jtis_t c;

    assert_int_equal(sg_approval_jtis_init(&c, 1), SG_OK);
    assert_int_equal(sg_approval_jtis_seen(&c, "alice", "a", 1, 10), SG_OK);
    assert_int_equal(sg_approval_jtis_count(&c), 0);
    assert_int_equal(sg_approval_jtis_use(&c, "alice", "a", 1, 100, 10), SG_OK);
    assert_int_equal(sg_approval_jtis_seen(&c, "alice", "a", 1, 99), SG_ERR);
    assert_int_equal(sg_approval_jtis_seen(&c, "bob", "a", 1, 99), SG_OK);
    assert_int_equal(sg_approval_jtis_seen(&c, "alice", "b", 1, 99), SG_OK);
    assert_int_equal(sg_approval_jtis_count(&c), 1);
    /* At 100 the entry is past its time: not seen, and still not dropped by a lookup. */
    assert_int_equal(sg_approval_jtis_seen(&c, "alice", "a", 1, 100), SG_OK);
    assert_int_equal(c.n, 1);
    sg_approval_jtis_dispose(&c);
}

static void dry_run_refuses_a_used_jti_and_uses_none(void **state)
{
    sg_approval_jtis_t jtis;
    sg_approval_check_t chk = check_base();

    assert_int_equal(sg_approval_jtis_init(&jtis, 16), SG_OK);
    chk.jtis = &jtis;
    chk.dry_run = 1;
    /* Rehearsed twice, still unused; then used for real; then a rehearsal says replay. */
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "ok");
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "ok");
    assert_int_equal(sg_approval_jtis_count(&jtis), 0);
    chk.dry_run = 0;
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "ok");
    chk.dry_run = 1;
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "approval replayed");
    /* A statement wrong in another way is refused for that, before the cache is asked. */
    chk.requester = "alice";
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "approval by the requester");
    assert_int_equal(sg_approval_jtis_count(&jtis), 1);
    sg_approval_jtis_dispose(&jtis);
}

static void refuses_when_the_replay_cache_is_full(void **state)
{
    sg_approval_jtis_t jtis;
    sg_approval_check_t chk = check_base();

    assert_int_equal(sg_approval_jtis_init(&jtis, 1), SG_OK);
    chk.jtis = &jtis;
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j1"), &chk), "ok");
    assert_string_equal(verdict(alice(NOW, NOW + 600, "j2"), &chk), "approval replay cache full");
    sg_approval_jtis_dispose(&jtis);
}

static void refuses_malformed_statements(void **state)
{
    char *good = alice(NOW, NOW + 600, "j");
    char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    char buf[SG_APPROVAL_MAX + 16];
    const char *h = header_for("EdDSA", "alice");
    char hdr[256];

    strcpy(hdr, h);
    /* Two segments, four, an empty one. */
    snprintf(buf, sizeof(buf), "%.*s", (int)(d2 - good), good);
    assert_string_equal(verdict_now(strdup(buf)), "approval malformed");
    snprintf(buf, sizeof(buf), "%s.%s", good, d2 + 1);
    assert_string_equal(verdict_now(strdup(buf)), "approval malformed");
    snprintf(buf, sizeof(buf), "%.*s.", (int)(d2 - good), good);
    assert_string_equal(verdict_now(strdup(buf)), "approval malformed");
    snprintf(buf, sizeof(buf), ".%s", d1 + 1);
    assert_string_equal(verdict_now(strdup(buf)), "approval malformed");
    /* Not base64url: padding, the standard alphabet. */
    snprintf(buf, sizeof(buf), "%s=", good);
    assert_string_equal(verdict_now(strdup(buf)), "approval malformed");
    snprintf(buf, sizeof(buf), "%s", good);
    buf[d1 - good + 3] = '+';
    assert_string_equal(verdict_now(strdup(buf)), "approval malformed");
    free(good);
    /* Too large. */
    memset(buf, 'A', SG_APPROVAL_MAX + 1);
    buf[10] = '.', buf[20] = '.', buf[SG_APPROVAL_MAX + 1] = '\0';
    assert_string_equal(verdict_now(strdup(buf)), "approval too large");

    /* Headers. */
    assert_string_equal(verdict_now(stmt_raw("[1]", "{}", FX_EDDSA, ed)), "approval malformed");
    assert_string_equal(verdict_now(stmt_raw("{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}", "{}",
                                             FX_EDDSA, ed)),
                        "approval duplicate member");
    assert_string_equal(verdict_now(stmt_raw("{\"alg\":\"EdDSA\",\"kid\":\"alice\",\"typ\":\"JWT\"}",
                                             "{}", FX_EDDSA, ed)),
                        "approval wrong typ");
    assert_string_equal(verdict_now(stmt_raw("{\"alg\":\"EdDSA\",\"kid\":\"alice\"}", "{}",
                                             FX_EDDSA, ed)),
                        "approval wrong typ");
    assert_string_equal(
        verdict_now(stmt_raw("{\"alg\":\"EdDSA\",\"kid\":\"alice\",\"typ\":\"" SG_APPROVAL_TYP
                             "\",\"x\":1}",
                             "{}", FX_EDDSA, ed)),
        "approval malformed");
    assert_string_equal(
        verdict_now(stmt_raw("{\"alg\":\"EdDSA\",\"kid\":\"alice\",\"typ\":\"" SG_APPROVAL_TYP
                             "\",\"crit\":[\"b64\"]}",
                             "{}", FX_EDDSA, ed)),
        "approval crit header refused");
    assert_string_equal(
        verdict_now(stmt_raw("{\"alg\":\"EdDSA\",\"kid\":\"alice\",\"typ\":\"" SG_APPROVAL_TYP
                             "\",\"jwk\":{}}",
                             "{}", FX_EDDSA, ed)),
        "approval key in header refused");
    assert_string_equal(verdict_now(stmt_raw("{\"alg\":\"EdDSA\",\"kid\":7,\"typ\":\"" SG_APPROVAL_TYP
                                             "\"}",
                                             "{}", FX_EDDSA, ed)),
                        "approval malformed");

    /* Payloads, signed by alice. */
    assert_string_equal(verdict_now(stmt_raw(hdr, "not json", FX_EDDSA, ed)), "approval malformed");
    assert_string_equal(verdict_now(stmt_raw(hdr, "{\"jti\":\"a\",\"jti\":\"b\"}", FX_EDDSA, ed)),
                        "approval duplicate member");
    assert_string_equal(verdict_now(stmt_raw(hdr, "{\"dig\":\"x\",\"iat\":1,\"exp\":2}", FX_EDDSA,
                                             ed)),
                        "approval missing claim");
    assert_string_equal(
        verdict_now(stmt_raw(hdr, "{\"dig\":\"x\",\"iat\":1,\"exp\":2,\"jti\":\"j\",\"nbf\":1}",
                             FX_EDDSA, ed)),
        "approval unknown claim");
    assert_string_equal(verdict_now(stmt_raw(hdr, payload_for(dig, NOW, NOW + 600, ""), FX_EDDSA,
                                             ed)),
                        "approval bad jti");
    assert_string_equal(verdict_now(stmt_raw(hdr, payload_for(dig, NOW, NOW + 600, "a\\nb"),
                                             FX_EDDSA, ed)),
                        "approval bad jti");
}

static void leaves_no_openssl_error_behind(void **state)
{
    char *s = stmt_raw(header_for("EdDSA", "alice"), payload_for(dig, NOW, NOW + 600, "j"),
                       FX_EDDSA, ed_other);

    ERR_clear_error();
    assert_string_equal(verdict_now(s), "approval bad signature");
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- approvers ----------------------------------------------------------------------- */

static void approver_list_refuses_bad_entries(void **state)
{
    sg_approvers_t *a = sg_approvers_new();
    EVP_PKEY *rsa = EVP_RSA_gen(1024), *p384 = EVP_EC_gen("P-384");
    const char *tenants[] = {"t1"};
    char err[256];

    assert_non_null(a);
    assert_non_null(rsa);
    assert_non_null(p384);
    assert_int_equal(add(a, "alice", ed, "t1", err), 0);
    assert_int_equal(add(a, "alice", ec, "t1", err), -1);
    assert_non_null(strstr(err, "named twice"));
    assert_int_equal(add(a, "r", rsa, "t1", err), -1);
    assert_non_null(strstr(err, "not an Ed25519 or P-256 public key"));
    assert_int_equal(add(a, "p", p384, "t1", err), -1);
    assert_non_null(strstr(err, "'p'"));
    assert_int_equal(add(a, "", ed, "t1", err), -1);
    assert_int_equal(add(a, "a\nb", ed, "t1", err), -1);
    assert_int_equal(sg_approvers_add(a, "x", "junk", 4, tenants, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a PEM public key"));
    assert_int_equal(sg_approvers_add(a, "x", "junk", 4, tenants, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no tenants"));
    assert_int_equal(ERR_peek_error(), 0);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
    sg_approvers_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical_text_is_the_documented_one),
        cmocka_unit_test(digest_ignores_the_order_and_repeats_of_groups),
        cmocka_unit_test(digest_binds_every_part_of_the_operation),
        cmocka_unit_test(accepts_eddsa_and_es256),
        cmocka_unit_test(refuses_bad_signatures_and_unknown_keys),
        cmocka_unit_test(refuses_algs_that_are_not_the_keys),
        cmocka_unit_test(refuses_by_time),
        cmocka_unit_test(refuses_another_operation),
        cmocka_unit_test(refuses_tenants_and_self_approval),
        cmocka_unit_test(refuses_a_replayed_jti),
        cmocka_unit_test(replay_cache_is_bounded_and_expires),
        cmocka_unit_test(replay_lookup_records_nothing),
        cmocka_unit_test(dry_run_refuses_a_used_jti_and_uses_none),
        cmocka_unit_test(refuses_when_the_replay_cache_is_full),
        cmocka_unit_test(refuses_malformed_statements),
        cmocka_unit_test(leaves_no_openssl_error_behind),
        cmocka_unit_test(approver_list_refuses_bad_entries),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
