/*
 * tests/unit/policy/test_rules.c - sg_pol_authorize(): roles grant privileges, tenants
 * cover providers and fault domains through their scope on the request's vCenter, force
 * may need its own privilege; every deny names the missing privilege and the exact reason.
 */
#include "tests/unit/policy/fixture.h"
#include "policy/policy-int.h"

static sg_policy_t *pol;   /* force_privilege = "" */
static sg_policy_t *pol_f; /* force_privilege = "SMS.ForceStop" */
static sg_policy_t *pol_m; /* three vCenters, tenants scoped on some of them */

#define POLICY_BODY                                                                                \
    "  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; },\n" \
    "            { name = \"dr-viewer\"; privileges = [\"StorageViews.View\"]; },\n"               \
    "            { name = \"dr-forcer\"; privileges = [\"StorageViews.ConfigureService\",\n"       \
    "                                                  \"SMS.ForceStop\"]; },\n"                   \
    "            { name = \"force-only\"; privileges = [\"SMS.ForceStop\"]; },\n"                  \
    "            { name = \"nothing\"; privileges = []; },\n"                                      \
    "            { name = \"custom\"; privileges = [\"Custom.Failover\"]; } );\n"                 \
    "  tenants = ( { name = \"t1\"; providers = [\"vasa-1\"]; fault_domains = [\"fd-1\", "         \
    "\"fd-2*\"]; },\n"                                                                             \
    "              { name = \"t2\"; providers = [\"vasa-*\"]; fault_domains = [\"*\"]; },\n"       \
    "              { name = \"t3\"; providers = [\"*\"]; fault_domains = []; } );\n"

/*
 * Several vCenters. "east" reaches vc-east only; "both" has a scope on each, with other
 * providers and fault domains; "legacy" has only the tenant-level lists (its scope on
 * "default"); "mixed" has both forms, the tenant-level lists for "default".
 */
static const char multi_conf[] =
    FX_LISTEN
    "upstreams = ( { name = \"vc-east\"; url = \"http://127.0.0.1:9443\"; },\n"
    "              { name = \"vc-west\"; url = \"http://127.0.0.1:9444\"; },\n"
    "              { name = \"default\"; url = \"http://127.0.0.1:9445\"; } );\n"
    "policy = {\n"
    "  roles = ( { name = \"dr-operator\";\n"
    "              privileges = [\"StorageViews.ConfigureService\"]; },\n"
    "            { name = \"dr-viewer\"; privileges = [\"StorageViews.View\"]; } );\n"
    "  tenants = (\n"
    "    { name = \"east\";\n"
    "      scopes = ( { upstream = \"vc-east\"; providers = [\"vasa-1\"];\n"
    "                   fault_domains = [\"fd-*\"]; } ); },\n"
    "    { name = \"both\";\n"
    "      scopes = ( { upstream = \"vc-east\"; providers = [\"vasa-e*\"];\n"
    "                   fault_domains = [\"fd-e*\"]; },\n"
    "                 { upstream = \"vc-west\"; providers = [\"vasa-w*\"];\n"
    "                   fault_domains = [\"fd-w*\"]; } ); },\n"
    "    { name = \"legacy\"; providers = [\"vasa-1\"]; fault_domains = [\"fd-1\"]; },\n"
    "    { name = \"mixed\"; providers = [\"vasa-d\"]; fault_domains = [\"*\"];\n"
    "      scopes = ( { upstream = \"vc-west\"; providers = [\"vasa-1\"];\n"
    "                   fault_domains = [\"fd-1\"]; } ); } );\n"
    "};\n";

static int setup(void **state)
{
    (void)state;
    if (fx_setup_keys() != 0)
        return -1;
    pol = fx_policy(FX_BASE "policy = {\n" POLICY_BODY "};\n");
    pol_f = fx_policy(FX_BASE "policy = {\n" POLICY_BODY
                              "  force_privilege = \"SMS.ForceStop\";\n};\n");
    pol_m = fx_policy(multi_conf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sg_policy_free(pol);
    sg_policy_free(pol_f);
    sg_policy_free(pol_m);
    return fx_teardown_keys();
}

/* ---- helpers ----------------------------------------------------------------------- */

static sg_principal_t principal(const char *tenant, const char **roles, size_t nroles)
{
    sg_principal_t w = {"alice", tenant, "ops-1", "static", roles, nroles, 0, NULL};
    return w;
}

static sg_str_t S(const char *s)
{
    sg_str_t v = {s, strlen(s)};
    return v;
}

static const char *op_roles[] = {"dr-operator"};
static const char *viewer_roles[] = {"dr-viewer"};
static const char *forcer_roles[] = {"dr-forcer"};

/* Decide for a request to UPSTREAM whose operation needs PRIVILEGE (NULL: the action's);
 * returns the decision (reason copied out of the pool into a static buffer). */
static sg_pol_decision_t decide_priv(const sg_policy_t *p, const char *upstream,
                                     const sg_principal_t *who, int action, const char *privilege,
                                     const char *provider, const char *const *fds, size_t nfds,
                                     int force)
{
    static char reason[512];
    sg_str_t fd[16];
    sg_pol_request_t req = {.action = action,
                            .upstream = upstream,
                            .provider = S(provider),
                            .fault_domains = fd,
                            .nfault_domains = nfds,
                            .force = force,
                            .privilege = privilege};
    sg_pol_decision_t d;
    sg_pool_t pool;

    assert_true(nfds <= SG_ARRAY_SIZE(fd));
    for (size_t i = 0; i < nfds; i++)
        fd[i] = S(fds[i]);
    sg_pool_init(&pool, 256);
    assert_int_equal(sg_pol_authorize(p, &pool, who, &req, &d), 0);
    assert_non_null(d.reason);
    snprintf(reason, sizeof(reason), "%s", d.reason);
    d.reason = reason;
    if (d.allow)
        assert_null(d.privilege_id);
    else
        assert_non_null(d.privilege_id);
    sg_pool_dispose(&pool);
    return d;
}

static sg_pol_decision_t decide_on(const sg_policy_t *p, const char *upstream,
                                   const sg_principal_t *who, int action, const char *provider,
                                   const char *const *fds, size_t nfds, int force)
{
    return decide_priv(p, upstream, who, action, NULL, provider, fds, nfds, force);
}

/* The same on the one-vCenter gateway's upstream, "default". */
static sg_pol_decision_t decide(const sg_policy_t *p, const sg_principal_t *who, int action,
                                const char *provider, const char *const *fds, size_t nfds,
                                int force)
{
    return decide_on(p, "default", who, action, provider, fds, nfds, force);
}

static void expect_deny(sg_pol_decision_t d, const char *privilege, const char *reason)
{
    assert_int_equal(d.allow, 0);
    assert_string_equal(d.privilege_id, privilege);
    assert_string_equal(d.reason, reason);
}

/* ---- privileges ------------------------------------------------------------------------- */

static void allows_stop_test_inside_the_tenant(void **state)
{
    sg_principal_t w = principal("t1", op_roles, 1);
    const char *fds[] = {"fd-1", "fd-2", "fd-2a"};
    sg_pol_decision_t d = decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 3, 0);

    assert_int_equal(d.allow, 1);
    assert_string_equal(d.reason, "granted by role 'dr-operator' in tenant 't1'");
}

static void denies_stop_test_without_configure_service(void **state)
{
    sg_principal_t w = principal("t1", viewer_roles, 1);
    const char *fds[] = {"fd-1"};

    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService",
                "no role of 'alice' grants 'StorageViews.ConfigureService'");
    w = principal("t1", NULL, 0);
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService",
                "no role of 'alice' grants 'StorageViews.ConfigureService'");
}

static void grants_nothing_for_unknown_roles(void **state)
{
    /* A JWT may name any role: only configured ones count, and exactly spelled. */
    const char *roles[] = {"admin", "DR-OPERATOR", "dr-operator ", "nothing"};
    sg_principal_t w = principal("t1", roles, 4);
    const char *fds[] = {"fd-1"};

    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService",
                "no role of 'alice' grants 'StorageViews.ConfigureService'");
}

static void combines_privileges_of_several_roles(void **state)
{
    const char *roles[] = {"unknown", "nothing", "dr-viewer", "dr-operator", "force-only"};
    sg_principal_t w = principal("t1", roles, 5);
    const char *fds[] = {"fd-1"};
    sg_pol_decision_t d = decide(pol_f, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 1);

    assert_int_equal(d.allow, 1);
    assert_string_equal(d.reason, "granted by role 'dr-operator' in tenant 't1'");
}

static void denies_force_without_force_privilege(void **state)
{
    sg_principal_t w = principal("t1", op_roles, 1);
    const char *fds[] = {"fd-1"};

    expect_deny(decide(pol_f, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 1), "SMS.ForceStop",
                "force=true needs privilege 'SMS.ForceStop', which no role of 'alice' grants");
    /* force=false needs only ConfigureService. */
    assert_int_equal(decide(pol_f, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0).allow, 1);
    /* The force privilege alone is not ConfigureService. */
    {
        const char *roles[] = {"force-only"};
        sg_principal_t f = principal("t1", roles, 1);

        expect_deny(decide(pol_f, &f, SG_POL_STOP_TEST, "vasa-1", fds, 1, 1),
                    "StorageViews.ConfigureService",
                    "no role of 'alice' grants 'StorageViews.ConfigureService'");
    }
}

static void allows_force_with_force_privilege_or_when_none_is_set(void **state)
{
    sg_principal_t w = principal("t1", forcer_roles, 1);
    sg_principal_t o = principal("t1", op_roles, 1);
    const char *fds[] = {"fd-1"};

    assert_int_equal(decide(pol_f, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 1).allow, 1);
    assert_int_equal(decide(pol, &o, SG_POL_STOP_TEST, "vasa-1", fds, 1, 1).allow, 1);
}

static void allows_task_query_with_view_only(void **state)
{
    sg_principal_t w = principal("t1", viewer_roles, 1);
    sg_principal_t o = principal("t1", op_roles, 1);
    sg_pol_decision_t d = decide(pol, &w, SG_POL_TASK_QUERY, "", NULL, 0, 0);

    assert_int_equal(d.allow, 1);
    assert_string_equal(d.reason, "granted by role 'dr-viewer' in tenant 't1'");
    assert_int_equal(decide(pol, &o, SG_POL_TASK_QUERY, "", NULL, 0, 0).allow, 1);
    assert_int_equal(decide(pol, &w, SG_POL_TASK_QUERY, "vasa-1", NULL, 0, 0).allow, 1);
    /* force plays no part in a query. */
    assert_int_equal(decide(pol_f, &w, SG_POL_TASK_QUERY, "", NULL, 0, 1).allow, 1);
}

static void denies_task_query_without_view_or_configure(void **state)
{
    const char *roles[] = {"nothing", "force-only"};
    sg_principal_t w = principal("t1", roles, 2);

    expect_deny(decide(pol_f, &w, SG_POL_TASK_QUERY, "", NULL, 0, 0), "StorageViews.View",
                "no role of 'alice' grants 'StorageViews.View' or "
                "'StorageViews.ConfigureService'");
}

static void denies_task_query_for_a_provider_outside_the_tenant(void **state)
{
    sg_principal_t w = principal("t1", viewer_roles, 1);

    expect_deny(decide(pol, &w, SG_POL_TASK_QUERY, "vasa-2", NULL, 0, 0), "StorageViews.View",
                "provider 'vasa-2' outside tenant 't1' on upstream 'default'");
}

/* ---- tenants ---------------------------------------------------------------------------- */

static void denies_provider_outside_the_tenant(void **state)
{
    sg_principal_t w = principal("t1", op_roles, 1);
    const char *fds[] = {"fd-1"};

    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-2", fds, 1, 0),
                "StorageViews.ConfigureService",
                "provider 'vasa-2' outside tenant 't1' on upstream 'default'");
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-10", fds, 1, 0),
                "StorageViews.ConfigureService",
                "provider 'vasa-10' outside tenant 't1' on upstream 'default'");
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "VASA-1", fds, 1, 0),
                "StorageViews.ConfigureService",
                "provider 'VASA-1' outside tenant 't1' on upstream 'default'");
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "", fds, 1, 0), "StorageViews.ConfigureService",
                "no provider");
}

static void denies_when_one_fault_domain_of_five_is_outside(void **state)
{
    sg_principal_t w = principal("t1", op_roles, 1);
    const char *fds[] = {"fd-1", "fd-2", "fd-21", "fd-9", "fd-2x"};

    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 5, 0),
                "StorageViews.ConfigureService",
                "fault domain 'fd-9' outside tenant 't1' on upstream 'default'");
    fds[3] = "fd-22";
    assert_int_equal(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 5, 0).allow, 1);
    fds[4] = "fd-3"; /* the last one */
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 5, 0),
                "StorageViews.ConfigureService",
                "fault domain 'fd-3' outside tenant 't1' on upstream 'default'");
}

static void matches_patterns_at_their_edges(void **state)
{
    sg_principal_t w = principal("t1", op_roles, 1);
    struct {
        const char *fd;
        int allow;
    } cases[] = {
        {"fd-2", 1}, /* "fd-2*" covers fd-2 itself */
        {"fd-20", 1}, {"fd-2-x", 1}, {"fd-", 0}, {"fd-3", 0}, {"fd", 0},    {"fd-1", 1}, /* exact */
        {"fd-10", 0}, /* "fd-1" is not a prefix pattern */
        {"fd-1 ", 0}, {"FD-2", 0},   {"", 0},    {"fd-*", 0}, {"xfd-2", 0},
    };

    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++) {
        const char *fds[] = {cases[i].fd};
        sg_pol_decision_t d = decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0);

        if (d.allow != cases[i].allow)
            fail_msg("fault domain '%s': allow %d, want %d (%s)", cases[i].fd, d.allow,
                     cases[i].allow, d.reason);
    }
}

static void matches_patterns_as_bytes(void **state)
{
    assert_true(sg__pol_pattern_match("*", "", 0));
    assert_true(sg__pol_pattern_match("*", "anything", 8));
    assert_true(sg__pol_pattern_match("fd-2*", "fd-2", 4));
    assert_false(sg__pol_pattern_match("fd-2*", "fd-", 3));
    assert_false(sg__pol_pattern_match("fd-1", "fd-1\0x", 6)); /* embedded NUL */
    assert_true(sg__pol_pattern_match("fd-1", "fd-1\0x", 4));
    assert_false(sg__pol_pattern_match("", "x", 1));
    assert_true(sg__pol_pattern_match("", "", 0));
    assert_false(sg__pol_pattern_match("a*b", "axb", 3)); /* only a final '*' is a wildcard */
    assert_true(sg__pol_pattern_match("a*b", "a*b", 3));
}

static void covers_everything_with_star_patterns(void **state)
{
    sg_principal_t w = principal("t2", op_roles, 1);
    const char *fds[] = {"fd-1", "anything", "x"};

    assert_int_equal(decide(pol, &w, SG_POL_STOP_TEST, "vasa-77", fds, 3, 0).allow, 1);
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa", fds, 3, 0),
                "StorageViews.ConfigureService",
                "provider 'vasa' outside tenant 't2' on upstream 'default'");
}

static void denies_every_fault_domain_for_a_tenant_without_any(void **state)
{
    sg_principal_t w = principal("t3", op_roles, 1);
    const char *fds[] = {"fd-1"};

    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService",
                "fault domain 'fd-1' outside tenant 't3' on upstream 'default'");
}

static void denies_an_unknown_or_missing_tenant(void **state)
{
    sg_principal_t w = principal("t9", op_roles, 1);
    const char *fds[] = {"fd-1"};

    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService", "unknown tenant 't9'");
    w = principal(NULL, op_roles, 1);
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService", "unknown tenant ''");
    w = principal("T1", viewer_roles, 1);
    expect_deny(decide(pol, &w, SG_POL_TASK_QUERY, "", NULL, 0, 0), "StorageViews.View",
                "unknown tenant 'T1'");
}

static void checks_privileges_before_tenants(void **state)
{
    sg_principal_t w = principal("t9", viewer_roles, 1);
    const char *fds[] = {"fd-9"};

    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-9", fds, 1, 0),
                "StorageViews.ConfigureService",
                "no role of 'alice' grants 'StorageViews.ConfigureService'");
}

/* operations.privilege: a role must list exactly the deployment's name, for a change or a
 * query alike; the row's own privilege no longer suffices. */
static void allows_an_overridden_privilege_only_to_a_role_listing_it(void **state)
{
    const char *custom[] = {"nothing", "custom"}, *both[] = {"dr-operator", "custom"};
    sg_principal_t w = principal("t1", custom, 2);
    const char *fds[] = {"fd-1"};
    sg_pol_decision_t d;

    d = decide_priv(pol, "default", &w, SG_POL_GROUP_CHANGE, "Custom.Failover", "vasa-1", fds,
                    1, 0);
    assert_int_equal(d.allow, 1);
    assert_string_equal(d.reason, "granted by role 'custom' in tenant 't1'");
    d = decide_priv(pol, "default", &w, SG_POL_GROUP_QUERY, "Custom.Failover", "vasa-1", fds, 1,
                    0);
    assert_int_equal(d.allow, 1);
    /* Without the override the same principal holds nothing. */
    expect_deny(decide(pol, &w, SG_POL_GROUP_CHANGE, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService",
                "no role of 'alice' grants 'StorageViews.ConfigureService'");
    /* The scope still holds, and its deny names the overridden privilege. */
    expect_deny(decide_priv(pol, "default", &w, SG_POL_GROUP_CHANGE, "Custom.Failover", "vasa-2",
                            fds, 1, 0),
                "Custom.Failover", "provider 'vasa-2' outside tenant 't1' on upstream 'default'");
    w = principal("t1", both, 2);
    d = decide_priv(pol, "default", &w, SG_POL_GROUP_CHANGE, "Custom.Failover", "vasa-1", fds,
                    1, 0);
    assert_string_equal(d.reason, "granted by role 'custom' in tenant 't1'");
}

static void denies_an_overridden_privilege_no_role_lists(void **state)
{
    const char *all[] = {"dr-forcer", "dr-viewer", "force-only", "unknown"};
    sg_principal_t w = principal("t1", all, 4);
    const char *fds[] = {"fd-1"};

    /* The row's ConfigureService (or View for a query) is not the deployment's privilege. */
    expect_deny(decide_priv(pol, "default", &w, SG_POL_GROUP_CHANGE, "Custom.Failover", "vasa-1",
                            fds, 1, 0),
                "Custom.Failover", "no role of 'alice' grants 'Custom.Failover'");
    expect_deny(decide_priv(pol, "default", &w, SG_POL_GROUP_QUERY, "Custom.Failover", "vasa-1",
                            fds, 1, 0),
                "Custom.Failover", "no role of 'alice' grants 'Custom.Failover'");
    /* Exactly the name: no prefix, no case folding. */
    expect_deny(decide_priv(pol, "default", &w, SG_POL_GROUP_CHANGE, "custom.failover", "vasa-1",
                            fds, 1, 0),
                "custom.failover", "no role of 'alice' grants 'custom.failover'");
    expect_deny(decide_priv(pol, "default", &w, SG_POL_GROUP_CHANGE, "Custom.Fail", "vasa-1",
                            fds, 1, 0),
                "Custom.Fail", "no role of 'alice' grants 'Custom.Fail'");
}

static void cuts_long_ids_in_the_reason(void **state)
{
    sg_principal_t w = principal("t1", op_roles, 1);
    char id[300], want[400];
    const char *fds[] = {id};

    memset(id, 'z', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    snprintf(want, sizeof(want),
             "fault domain '%.128s...' outside tenant 't1' on upstream 'default'", id);
    expect_deny(decide(pol, &w, SG_POL_STOP_TEST, "vasa-1", fds, 1, 0),
                "StorageViews.ConfigureService", want);
}

/* ---- vCenters ---------------------------------------------------------------------------- */

static void confines_a_tenant_to_the_upstreams_it_has_scopes_on(void **state)
{
    sg_principal_t w = principal("east", op_roles, 1);
    sg_principal_t v = principal("east", viewer_roles, 1);
    const char *fds[] = {"fd-1", "fd-7"};
    sg_pol_decision_t d = decide_on(pol_m, "vc-east", &w, SG_POL_STOP_TEST, "vasa-1", fds, 2, 0);

    assert_int_equal(d.allow, 1);
    assert_string_equal(d.reason, "granted by role 'dr-operator' in tenant 'east'");
    /* The same provider and fault domains on another vCenter are another vCenter's. */
    expect_deny(decide_on(pol_m, "vc-west", &w, SG_POL_STOP_TEST, "vasa-1", fds, 2, 0),
                "StorageViews.ConfigureService", "upstream 'vc-west' outside tenant 'east'");
    expect_deny(decide_on(pol_m, "default", &w, SG_POL_STOP_TEST, "vasa-1", fds, 2, 0),
                "StorageViews.ConfigureService", "upstream 'default' outside tenant 'east'");
    /* Task queries are judged on the request's vCenter the same way. */
    assert_int_equal(decide_on(pol_m, "vc-east", &v, SG_POL_TASK_QUERY, "", NULL, 0, 0).allow, 1);
    expect_deny(decide_on(pol_m, "vc-west", &v, SG_POL_TASK_QUERY, "", NULL, 0, 0),
                "StorageViews.View", "upstream 'vc-west' outside tenant 'east'");
    /* Privileges still come first: a viewer learns nothing about scopes from a stop. */
    expect_deny(decide_on(pol_m, "vc-west", &v, SG_POL_STOP_TEST, "vasa-1", fds, 2, 0),
                "StorageViews.ConfigureService",
                "no role of 'alice' grants 'StorageViews.ConfigureService'");
}

static void judges_each_upstream_by_its_own_scope(void **state)
{
    sg_principal_t w = principal("both", op_roles, 1);
    sg_principal_t v = principal("both", viewer_roles, 1);
    const char *east[] = {"fd-e1", "fd-e2"}, *west[] = {"fd-w1"}, *cross[] = {"fd-e1", "fd-w1"};
    sg_pol_decision_t d = decide_on(pol_m, "vc-west", &w, SG_POL_STOP_TEST, "vasa-w1", west, 1, 0);

    assert_int_equal(d.allow, 1);
    assert_string_equal(d.reason, "granted by role 'dr-operator' in tenant 'both'");
    assert_int_equal(
        decide_on(pol_m, "vc-east", &w, SG_POL_STOP_TEST, "vasa-e1", east, 2, 0).allow, 1);
    /* One vCenter's providers are not covered on the other: the scopes are not merged. */
    expect_deny(decide_on(pol_m, "vc-east", &w, SG_POL_STOP_TEST, "vasa-w1", east, 2, 0),
                "StorageViews.ConfigureService",
                "provider 'vasa-w1' outside tenant 'both' on upstream 'vc-east'");
    expect_deny(decide_on(pol_m, "vc-west", &w, SG_POL_STOP_TEST, "vasa-e1", west, 1, 0),
                "StorageViews.ConfigureService",
                "provider 'vasa-e1' outside tenant 'both' on upstream 'vc-west'");
    /* Fault domains too, each checked against the scope of the request's vCenter. */
    expect_deny(decide_on(pol_m, "vc-east", &w, SG_POL_STOP_TEST, "vasa-e1", cross, 2, 0),
                "StorageViews.ConfigureService",
                "fault domain 'fd-w1' outside tenant 'both' on upstream 'vc-east'");
    expect_deny(decide_on(pol_m, "vc-west", &w, SG_POL_STOP_TEST, "vasa-w1", east, 2, 0),
                "StorageViews.ConfigureService",
                "fault domain 'fd-e1' outside tenant 'both' on upstream 'vc-west'");
    expect_deny(decide_on(pol_m, "vc-east", &v, SG_POL_TASK_QUERY, "vasa-w1", NULL, 0, 0),
                "StorageViews.View",
                "provider 'vasa-w1' outside tenant 'both' on upstream 'vc-east'");
    expect_deny(decide_on(pol_m, "default", &w, SG_POL_STOP_TEST, "vasa-e1", east, 2, 0),
                "StorageViews.ConfigureService", "upstream 'default' outside tenant 'both'");
}

static void reads_tenant_providers_as_the_scope_on_default(void **state)
{
    sg_principal_t l = principal("legacy", op_roles, 1);
    sg_principal_t m = principal("mixed", op_roles, 1);
    const char *fd1[] = {"fd-1"}, *fd9[] = {"fd-9"};

    assert_int_equal(decide_on(pol_m, "default", &l, SG_POL_STOP_TEST, "vasa-1", fd1, 1, 0).allow,
                     1);
    expect_deny(decide_on(pol_m, "vc-east", &l, SG_POL_STOP_TEST, "vasa-1", fd1, 1, 0),
                "StorageViews.ConfigureService", "upstream 'vc-east' outside tenant 'legacy'");
    expect_deny(decide_on(pol_m, "default", &l, SG_POL_STOP_TEST, "vasa-1", fd9, 1, 0),
                "StorageViews.ConfigureService",
                "fault domain 'fd-9' outside tenant 'legacy' on upstream 'default'");
    /* Both forms in one tenant: the tenant-level lists on "default", the scope elsewhere. */
    assert_int_equal(decide_on(pol_m, "default", &m, SG_POL_STOP_TEST, "vasa-d", fd9, 1, 0).allow,
                     1);
    assert_int_equal(decide_on(pol_m, "vc-west", &m, SG_POL_STOP_TEST, "vasa-1", fd1, 1, 0).allow,
                     1);
    expect_deny(decide_on(pol_m, "default", &m, SG_POL_STOP_TEST, "vasa-1", fd1, 1, 0),
                "StorageViews.ConfigureService",
                "provider 'vasa-1' outside tenant 'mixed' on upstream 'default'");
    expect_deny(decide_on(pol_m, "vc-west", &m, SG_POL_STOP_TEST, "vasa-1", fd9, 1, 0),
                "StorageViews.ConfigureService",
                "fault domain 'fd-9' outside tenant 'mixed' on upstream 'vc-west'");
    expect_deny(decide_on(pol_m, "vc-east", &m, SG_POL_STOP_TEST, "vasa-d", fd1, 1, 0),
                "StorageViews.ConfigureService", "upstream 'vc-east' outside tenant 'mixed'");
}

static void denies_a_request_without_a_known_upstream(void **state)
{
    sg_principal_t w = principal("both", op_roles, 1);
    sg_principal_t v = principal("both", viewer_roles, 1);
    const char *fds[] = {"fd-e1"};

    /* A caller that forgot the upstream gets a deny, never some default scope, even on
     * the one-vCenter gateway. */
    expect_deny(decide_on(pol_m, NULL, &w, SG_POL_STOP_TEST, "vasa-e1", fds, 1, 0),
                "StorageViews.ConfigureService", "no upstream");
    expect_deny(decide_on(pol_m, NULL, &v, SG_POL_TASK_QUERY, "", NULL, 0, 0),
                "StorageViews.View", "no upstream");
    {
        sg_principal_t t1 = principal("t1", viewer_roles, 1);

        expect_deny(decide_on(pol, NULL, &t1, SG_POL_TASK_QUERY, "", NULL, 0, 0),
                    "StorageViews.View", "no upstream");
    }
    /* Names are compared exactly. */
    expect_deny(decide_on(pol_m, "VC-EAST", &w, SG_POL_STOP_TEST, "vasa-e1", fds, 1, 0),
                "StorageViews.ConfigureService", "upstream 'VC-EAST' outside tenant 'both'");
    expect_deny(decide_on(pol_m, "vc-east ", &w, SG_POL_STOP_TEST, "vasa-e1", fds, 1, 0),
                "StorageViews.ConfigureService", "upstream 'vc-east ' outside tenant 'both'");
    expect_deny(decide_on(pol_m, "", &w, SG_POL_STOP_TEST, "vasa-e1", fds, 1, 0),
                "StorageViews.ConfigureService", "upstream '' outside tenant 'both'");
}

static void fails_closed_on_an_unknown_action(void **state)
{
    sg_principal_t w = principal("t1", op_roles, 1);
    sg_pol_request_t req = {.action = 99, .upstream = "default", .provider = S("vasa-1")};
    sg_pol_decision_t d;
    sg_pool_t pool;

    sg_pool_init(&pool, 256);
    assert_int_equal(sg_pol_authorize(pol, &pool, &w, &req, &d), SG_ERR);
    assert_int_equal(d.allow, 0);
    assert_string_equal(d.reason, "unknown action");
    sg_pool_dispose(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allows_stop_test_inside_the_tenant),
        cmocka_unit_test(denies_stop_test_without_configure_service),
        cmocka_unit_test(grants_nothing_for_unknown_roles),
        cmocka_unit_test(combines_privileges_of_several_roles),
        cmocka_unit_test(denies_force_without_force_privilege),
        cmocka_unit_test(allows_force_with_force_privilege_or_when_none_is_set),
        cmocka_unit_test(allows_task_query_with_view_only),
        cmocka_unit_test(denies_task_query_without_view_or_configure),
        cmocka_unit_test(denies_task_query_for_a_provider_outside_the_tenant),
        cmocka_unit_test(denies_provider_outside_the_tenant),
        cmocka_unit_test(denies_when_one_fault_domain_of_five_is_outside),
        cmocka_unit_test(matches_patterns_at_their_edges),
        cmocka_unit_test(matches_patterns_as_bytes),
        cmocka_unit_test(covers_everything_with_star_patterns),
        cmocka_unit_test(denies_every_fault_domain_for_a_tenant_without_any),
        cmocka_unit_test(denies_an_unknown_or_missing_tenant),
        cmocka_unit_test(checks_privileges_before_tenants),
        cmocka_unit_test(allows_an_overridden_privilege_only_to_a_role_listing_it),
        cmocka_unit_test(denies_an_overridden_privilege_no_role_lists),
        cmocka_unit_test(cuts_long_ids_in_the_reason),
        cmocka_unit_test(confines_a_tenant_to_the_upstreams_it_has_scopes_on),
        cmocka_unit_test(judges_each_upstream_by_its_own_scope),
        cmocka_unit_test(reads_tenant_providers_as_the_scope_on_default),
        cmocka_unit_test(denies_a_request_without_a_known_upstream),
        cmocka_unit_test(fails_closed_on_an_unknown_action),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
