/*
 * conf/keys.c - the one table of configuration keys (see conf/keys.h).
 *
 * This file owns the names, types, bounds, defaults and reload flags of every key; the
 * loader owns reading them (conf/walk.c) and the checks named here by id (conf/check.c).
 * docs/design.md "Configuration" and conf/smsguard.conf document the same keys in the
 * same order: change all three together.
 *
 * Reload (SIGHUP): listen and admin addresses, certificates, vhosts, upstreams (a
 * kept upstream keeps its pooled connections: proxy/upstream.c), limits, routes, log,
 * policy and batch are reloadable (proxy/gen.c, loop.c and admin.c
 * re-bind changed addresses before committing). What the process is built around is
 * not: a change to the worker count or to the audit writer's file, sync mode or
 * signing key refuses the whole reload ("file: 'key' changed, needs a restart",
 * sg_gen_restart_needed); audit.checkpoint_every and audit.syslog are kept until a
 * restart.
 */
#include <openssl/ssl.h>
#include <string.h>
#include <syslog.h>

#include "conf/conf.h"
#include "conf/keys.h"

static const sg_conf_enum_t ke_tls_versions[] = {
    {"TLSv1.2", TLS1_2_VERSION},
    {"TLSv1.3", TLS1_3_VERSION},
    {NULL, 0},
};

static const sg_conf_enum_t ke_unmatched[] = {
    {"forward", SG_ROUTE_FORWARD},
    {"deny", SG_ROUTE_DENY},
    {NULL, 0},
};

static const sg_conf_enum_t ke_log_levels[] = {
    {"error", SG_LOG_ERROR},
    {"warn", SG_LOG_WARN},
    {"info", SG_LOG_INFO},
    {"debug", SG_LOG_DEBUG},
    {NULL, 0},
};

static const sg_conf_enum_t ke_jwt_algs[] = {
    {"RS256", SG_JWT_RS256},
    {"ES256", SG_JWT_ES256},
    {"EdDSA", SG_JWT_EDDSA},
    {"HS256", SG_JWT_HS256},
    {NULL, 0},
};

static const sg_conf_enum_t ke_audit_sync[] = {
    {"always", SG_AUDIT_SYNC_ALWAYS},
    {"batch", SG_AUDIT_SYNC_BATCH},
    {"none", SG_AUDIT_SYNC_NONE},
    {NULL, 0},
};

static const sg_conf_enum_t ke_facilities[] = {
    {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},     {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},     {NULL, 0},
};

/* One row per line reads better than any wrapping. */
// clang-format off
/* Offsets: C() into sg_conf_t, E(T, f) into the element struct T of the enclosing list. */
#define C(f) offsetof(sg_conf_t, f)
#define E(T, f) offsetof(T, f)
#define U sg_conf_upstream_t
#define L(f) offsetof(sg_conf_t, legacy_upstream.f)

#define R SG_K_RELOADABLE
#define Q SG_K_REQUIRED
#define P SG_K_PATH
#define NE SG_K_NONEMPTY

#define GROUP(p, fl, presence, ck) \
    {.path = (p), .type = SG_KT_GROUP, .flags = (fl), .off = (presence), .check = (ck)}
#define LIST(p, fl, lo, hi, arr, cnt, T, ck)                                                  \
    {.path = (p), .type = SG_KT_LIST, .flags = (fl), .min = (lo), .max = (hi), .off = (arr), \
     .off_n = (cnt), .elem_size = sizeof(T), .check = (ck)}
#define INT(p, fl, lo, hi, d, o)                                                            \
    {.path = (p), .type = SG_KT_INT, .flags = (fl), .min = (lo), .max = (hi), .def = (d), \
     .off = (o)}
#define BOOL(p, fl, d, o) {.path = (p), .type = SG_KT_BOOL, .flags = (fl), .def = (d), .off = (o)}
#define STR(p, fl, d, o, ck) \
    {.path = (p), .type = SG_KT_STR, .flags = (fl), .def_str = (d), .off = (o), .check = (ck)}
#define ENUM(p, fl, e, d, o) \
    {.path = (p), .type = SG_KT_ENUM, .flags = (fl), .enums = (e), .def = (d), .off = (o)}
#define STRV(p, fl, o) {.path = (p), .type = SG_KT_STRV, .flags = (fl), .off = (o)}
#define STRV_CK(p, fl, o, ck) \
    {.path = (p), .type = SG_KT_STRV, .flags = (fl), .off = (o), .check = (ck)}

#define MS_HOUR 3600000LL

const sg_conf_key_t sg__conf_keys[] = {
    /* Threads are created once; a reload cannot add or remove one. */
    INT("workers", 0, 0, 1024, 1, C(workers)),

    /* Added addresses are bound on SIGHUP before it commits; kept ones keep their sockets. */
    LIST("listen", Q | R, 1, 64, C(listen), C(nlisten), sg_conf_listen_t, SG_CK_LISTEN),
    STR("listen.address", R, "127.0.0.1", E(sg_conf_listen_t, address), SG_CK_ADDRESS),
    INT("listen.port", Q | R, 1, 65535, 0, E(sg_conf_listen_t, port)),
    GROUP("listen.tls", Q | R, SG_KOFF_NONE, SG_CK_NONE),
    STR("listen.tls.certificate", Q | R | P | NE, NULL, E(sg_conf_listen_t, certificate),
        SG_CK_NONE),
    STR("listen.tls.private_key", Q | R | P | NE, NULL, E(sg_conf_listen_t, private_key),
        SG_CK_NONE),
    ENUM("listen.tls.min_version", R, ke_tls_versions, TLS1_2_VERSION,
         E(sg_conf_listen_t, min_version)),
    STR("listen.tls.client_ca", R | P, "", E(sg_conf_listen_t, client_ca), SG_CK_CA_FILE),
    /* Checked, and defaulted from the certificate, by SG_CK_LISTEN. */
    STRV("listen.server_names", R, E(sg_conf_listen_t, server_names)),
    /* Names an upstream (conf.c resolves it); "" = the first one when there are no vhosts. */
    STR("listen.upstream", R, "", E(sg_conf_listen_t, upstream), SG_CK_NONE),
    /* Checked (names, certificate and key) by SG_CK_VHOST; upstream resolved by conf.c. */
    LIST("listen.vhosts", R, 0, 1000, E(sg_conf_listen_t, vhosts), E(sg_conf_listen_t, nvhosts),
         sg_conf_vhost_t, SG_CK_VHOST),
    STRV("listen.vhosts.server_names", Q | R | NE | SG_K_SCALAR_OK,
         E(sg_conf_vhost_t, server_names)),
    STR("listen.vhosts.upstream", Q | R | NE, NULL, E(sg_conf_vhost_t, upstream), SG_CK_NONE),
    STR("listen.vhosts.certificate", R | P | NE, NULL, E(sg_conf_vhost_t, certificate),
        SG_CK_NONE),
    STR("listen.vhosts.private_key", R | P | NE, NULL, E(sg_conf_vhost_t, private_key),
        SG_CK_NONE),

    GROUP("admin", R, C(admin.enabled), SG_CK_NONE),
    STR("admin.address", R, "127.0.0.1", C(admin.address), SG_CK_ADDRESS),
    INT("admin.port", Q | R, 1, 65535, 0, C(admin.port)),

    /* The vCenters: a list of named ones, or the one-vCenter form (named "default"); conf.c
     * wants exactly one of the two. Same members, same bounds. */
    LIST("upstreams", R, 1, 256, C(upstreams), C(nupstreams), sg_conf_upstream_t, SG_CK_UPSTREAM),
    STR("upstreams.name", Q | R | NE, NULL, E(U, name), SG_CK_NAME),
    STR("upstreams.url", Q | R | NE, NULL, E(U, url), SG_CK_NONE),
    STR("upstreams.ca_file", R | P, "", E(U, ca_file), SG_CK_CA_FILE),
    BOOL("upstreams.verify", R, 1, E(U, verify)),
    STR("upstreams.server_name", R, "", E(U, server_name), SG_CK_SERVER_NAME),
    INT("upstreams.connect_timeout_ms", R, 1, 10 * 60000LL, 2000, E(U, connect_timeout_ms)),
    INT("upstreams.response_timeout_ms", R, 1, MS_HOUR, 30000, E(U, response_timeout_ms)),
    INT("upstreams.max_idle", R, 0, 10000, 32, E(U, max_idle)),
    INT("upstreams.max_connections", R, 1, 100000, 256, E(U, max_connections)),
    INT("upstreams.check_interval_ms", R, 0, MS_HOUR, 5000, E(U, check_interval_ms)),

    GROUP("upstream", R, C(legacy_upstream_set), SG_CK_UPSTREAM),
    STR("upstream.url", Q | R | NE, NULL, L(url), SG_CK_NONE),
    STR("upstream.ca_file", R | P, "", L(ca_file), SG_CK_CA_FILE),
    BOOL("upstream.verify", R, 1, L(verify)),
    STR("upstream.server_name", R, "", L(server_name), SG_CK_SERVER_NAME),
    INT("upstream.connect_timeout_ms", R, 1, 10 * 60000LL, 2000, L(connect_timeout_ms)),
    INT("upstream.response_timeout_ms", R, 1, MS_HOUR, 30000, L(response_timeout_ms)),
    INT("upstream.max_idle", R, 0, 10000, 32, L(max_idle)),
    INT("upstream.max_connections", R, 1, 100000, 256, L(max_connections)),
    INT("upstream.check_interval_ms", R, 0, MS_HOUR, 5000, L(check_interval_ms)),

    GROUP("limits", R, SG_KOFF_NONE, SG_CK_NONE),
    INT("limits.max_header_bytes", R, 1024, 1 << 20, 16384, C(limits.max_header_bytes)),
    INT("limits.max_body_bytes", R, 1, 256 << 20, 1 << 20, C(limits.max_body_bytes)),
    INT("limits.max_streams", R, 1, 10000, 100, C(limits.max_streams)),
    INT("limits.header_timeout_ms", R, 1, MS_HOUR, 10000, C(limits.header_timeout_ms)),
    INT("limits.body_timeout_ms", R, 1, MS_HOUR, 30000, C(limits.body_timeout_ms)),
    INT("limits.idle_timeout_ms", R, 1, 24 * MS_HOUR, 60000, C(limits.idle_timeout_ms)),
    INT("limits.send_timeout_ms", R, 1, MS_HOUR, 30000, C(limits.send_timeout_ms)),
    INT("limits.max_requests_per_connection", R, 1, 1000000000, 10000,
        C(limits.max_requests_per_connection)),
    INT("limits.max_connections", R, 1, 1000000, 10000, C(limits.max_connections)),
    INT("limits.drain_timeout_ms", R, 0, MS_HOUR, 10000, C(limits.drain_timeout_ms)),

    GROUP("routes", R, SG_KOFF_NONE, SG_CK_NONE),
    ENUM("routes.unmatched", R, ke_unmatched, SG_ROUTE_FORWARD, C(routes.unmatched)),
    /* Identity headers of the site, dropped on every route as the built-in ones are. */
    STRV_CK("routes.drop_headers", R, C(routes.drop_headers), SG_CK_DROP_HEADERS),

    GROUP("log", R, SG_KOFF_NONE, SG_CK_NONE),
    STR("log.access", R, "off", C(log.access), SG_CK_LOG_ACCESS),
    ENUM("log.level", R, ke_log_levels, SG_LOG_INFO, C(log.level)),

    GROUP("policy", R, SG_KOFF_NONE, SG_CK_NONE),
    LIST("policy.tokens", R, 0, 10000, C(policy.tokens), C(policy.ntokens), sg_conf_token_t,
         SG_CK_NONE),
    STR("policy.tokens.id", Q | R | NE, NULL, E(sg_conf_token_t, id), SG_CK_NONE),
    /* Decoded into the token's uint8_t[32] by the check, never stored as text. */
    STR("policy.tokens.sha256", Q | R | NE, NULL, SG_KOFF_NONE, SG_CK_SHA256),
    STR("policy.tokens.subject", Q | R | NE, NULL, E(sg_conf_token_t, subject), SG_CK_NONE),
    STR("policy.tokens.tenant", Q | R | NE, NULL, E(sg_conf_token_t, tenant), SG_CK_NONE),
    STRV("policy.tokens.roles", R, E(sg_conf_token_t, roles)),
    /* RFC 8725 3.8/3.9: a JWT is only accepted for a known issuer and our audience. */
    GROUP("policy.jwt", R, C(policy.jwt.enabled), SG_CK_NONE),
    STR("policy.jwt.issuer", Q | R | NE, "", C(policy.jwt.issuer), SG_CK_NONE),
    STRV("policy.jwt.audience", Q | R | NE | SG_K_SCALAR_OK, C(policy.jwt.audience)),
    INT("policy.jwt.leeway_s", R, 0, 3600, 60, C(policy.jwt.leeway_s)),
    LIST("policy.jwt.keys", Q | R, 1, 1000, C(policy.jwt.keys), C(policy.jwt.nkeys),
         sg_conf_jwt_key_t, SG_CK_JWT_KEY),
    STR("policy.jwt.keys.kid", Q | R | NE, NULL, E(sg_conf_jwt_key_t, kid), SG_CK_NONE),
    ENUM("policy.jwt.keys.alg", Q | R, ke_jwt_algs, 0, E(sg_conf_jwt_key_t, alg)),
    STR("policy.jwt.keys.public_key", R | P | NE, NULL, E(sg_conf_jwt_key_t, public_key),
        SG_CK_NONE),
    STR("policy.jwt.keys.secret_file", R | P | NE, NULL, E(sg_conf_jwt_key_t, secret_file),
        SG_CK_NONE),
    STR("policy.jwt.subject_claim", R | NE, "sub", C(policy.jwt.subject_claim), SG_CK_NONE),
    STR("policy.jwt.tenant_claim", R | NE, "tenant", C(policy.jwt.tenant_claim), SG_CK_NONE),
    STR("policy.jwt.roles_claim", R | NE, "roles", C(policy.jwt.roles_claim), SG_CK_NONE),
    LIST("policy.roles", R, 0, 10000, C(policy.roles), C(policy.nroles), sg_conf_role_t,
         SG_CK_NONE),
    STR("policy.roles.name", Q | R | NE, NULL, E(sg_conf_role_t, name), SG_CK_NONE),
    STRV("policy.roles.privileges", R, E(sg_conf_role_t, privileges)),
    LIST("policy.tenants", R, 0, 10000, C(policy.tenants), C(policy.ntenants), sg_conf_tenant_t,
         SG_CK_TENANT),
    STR("policy.tenants.name", Q | R | NE, NULL, E(sg_conf_tenant_t, name), SG_CK_NONE),
    STRV("policy.tenants.providers", R, E(sg_conf_tenant_t, providers)),
    STRV("policy.tenants.fault_domains", R, E(sg_conf_tenant_t, fault_domains)),
    LIST("policy.tenants.scopes", R, 0, 256, E(sg_conf_tenant_t, scopes),
         E(sg_conf_tenant_t, nscopes), sg_conf_scope_t, SG_CK_NONE),
    STR("policy.tenants.scopes.upstream", Q | R | NE, NULL, E(sg_conf_scope_t, upstream),
        SG_CK_NONE),
    STRV("policy.tenants.scopes.providers", R, E(sg_conf_scope_t, providers)),
    STRV("policy.tenants.scopes.fault_domains", R, E(sg_conf_scope_t, fault_domains)),
    /* Names of change_windows (conf.c resolves them); the operation's must hold too. */
    STRV("policy.tenants.windows", R, E(sg_conf_tenant_t, windows)),
    STR("policy.tenants.ticket", R, "", E(sg_conf_tenant_t, ticket), SG_CK_NONE),
    STR("policy.force_privilege", R, "", C(policy.force_privilege), SG_CK_NONE),
    /* Four-eyes approvals (filters/flt_change.c reads the keys when a generation is built). */
    LIST("policy.approvers", R, 0, 1000, C(policy.approvers), C(policy.napprovers),
         sg_conf_approver_t, SG_CK_APPROVER),
    STR("policy.approvers.name", Q | R | NE, NULL, E(sg_conf_approver_t, name), SG_CK_NONE),
    STR("policy.approvers.public_key", Q | R | P | NE, NULL, E(sg_conf_approver_t, public_key),
        SG_CK_NONE),
    STRV("policy.approvers.tenants", Q | R | NE | SG_K_SCALAR_OK, E(sg_conf_approver_t, tenants)),
    INT("policy.max_approval_s", R, 1, 86400, 3600, C(policy.max_approval_s)),

    /* Change control (filters/flt_change.c): windows, and per-operation overrides. */
    LIST("change_windows", R, 0, 1000, C(change_windows), C(nchange_windows), sg_conf_window_t,
         SG_CK_WINDOW),
    STR("change_windows.name", Q | R | NE, NULL, E(sg_conf_window_t, name), SG_CK_NONE),
    STR("change_windows.timezone", Q | R | NE, NULL, E(sg_conf_window_t, timezone), SG_CK_NONE),
    STRV("change_windows.days", Q | R | NE | SG_K_SCALAR_OK, E(sg_conf_window_t, days)),
    STR("change_windows.from", Q | R | NE, NULL, E(sg_conf_window_t, from), SG_CK_NONE),
    STR("change_windows.to", Q | R | NE, NULL, E(sg_conf_window_t, to), SG_CK_NONE),
    LIST("operations", R, 0, 64, C(operations), C(noperations), sg_conf_operation_t,
         SG_CK_OPERATION),
    STR("operations.method", Q | R | NE, NULL, E(sg_conf_operation_t, method), SG_CK_NONE),
    BOOL("operations.enabled", R, 1, E(sg_conf_operation_t, enabled)),
    STR("operations.privilege", R | NE, NULL, E(sg_conf_operation_t, privilege), SG_CK_NONE),
    STRV("operations.windows", R | SG_K_SCALAR_OK, E(sg_conf_operation_t, windows)),
    STR("operations.ticket", R, "", E(sg_conf_operation_t, ticket), SG_CK_NONE),
    STR("operations.ticket_header", R | NE, "X-Change-Ticket",
        E(sg_conf_operation_t, ticket_header), SG_CK_NONE),
    BOOL("operations.approval", R, 0, E(sg_conf_operation_t, approval)),
    BOOL("operations.force_approval", R, 0, E(sg_conf_operation_t, force_approval)),

    GROUP("batch", R, SG_KOFF_NONE, SG_CK_NONE),
    INT("batch.max_size", R, 1, 100000, 16, C(batch.max_size)),
    LIST("batch.providers", R, 0, 10000, C(batch.providers), C(batch.nproviders),
         sg_conf_batch_provider_t, SG_CK_NONE),
    STR("batch.providers.upstream", R, "", E(sg_conf_batch_provider_t, upstream), SG_CK_NONE),
    STR("batch.providers.moid", Q | R | NE, NULL, E(sg_conf_batch_provider_t, moid), SG_CK_NONE),
    INT("batch.providers.max_size", Q | R, 1, 100000, 0, E(sg_conf_batch_provider_t, max_size)),
    BOOL("batch.learn_from_toomany", R, 1, C(batch.learn_from_toomany)),
    INT("batch.max_parallel", R, 1, 1024, 4, C(batch.max_parallel)),
    INT("batch.max_parts", R, 1, 100000, 64, C(batch.max_parts)),
    STR("batch.task_key_file", R | P, "", C(batch.task_key_file), SG_CK_TASK_KEY),
    /* The key before the last rotation: handles it signed are still answered. */
    STR("batch.task_key_previous_file", R | P, "", C(batch.task_key_previous_file),
        SG_CK_TASK_KEY),

    /* The audit writer thread is started once with these; only fail_closed follows SIGHUP. */
    GROUP("audit", 0, SG_KOFF_NONE, SG_CK_NONE),
    STR("audit.file", P, "", C(audit.file), SG_CK_AUDIT_FILE),
    ENUM("audit.sync", 0, ke_audit_sync, SG_AUDIT_SYNC_ALWAYS, C(audit.sync)),
    BOOL("audit.fail_closed", R, 1, C(audit.fail_closed)),
    STR("audit.signing_key", P, "", C(audit.signing_key), SG_CK_SIGNING_KEY),
    INT("audit.checkpoint_every", 0, 1, 1000000, 1000, C(audit.checkpoint_every)),
    GROUP("audit.syslog", 0, SG_KOFF_NONE, SG_CK_NONE),
    BOOL("audit.syslog.enabled", 0, 0, C(audit.syslog.enabled)),
    ENUM("audit.syslog.facility", 0, ke_facilities, LOG_AUTHPRIV, C(audit.syslog.facility)),
    STR("audit.syslog.address", 0, "unix:/dev/log", C(audit.syslog.address),
        SG_CK_SYSLOG_ADDRESS),
    STR("audit.syslog.app_name", NE, "smsguard", C(audit.syslog.app_name), SG_CK_APP_NAME),
};

// clang-format on

const size_t sg__conf_nkeys = sizeof(sg__conf_keys) / sizeof(sg__conf_keys[0]);

const sg_conf_key_t *sg__conf_key_find(const char *path)
{
    /* ~70 rows, looked up once per setting at load time: a linear scan is plenty. */
    for (size_t i = 0; i < sg__conf_nkeys; i++)
        if (strcmp(sg__conf_keys[i].path, path) == 0)
            return &sg__conf_keys[i];
    return NULL;
}
