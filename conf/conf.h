/*
 * conf/conf.h - the one immutable configuration object.
 *
 * sg_conf_load() reads a libconfig file, checks every key against the key table
 * (conf/keys.c) and every referenced file (certificates, keys, secrets), and
 * returns a refcounted sg_conf_t whose strings live in the object's own arena.
 * Nothing here knows about sockets; proxy/ and filters/ only read the object.
 * A configuration is never modified after sg_conf_load() returns; a reload
 * builds a new one and swaps pointers (docs/design.md "Threads").
 */
#ifndef SG_CONF_H
#define SG_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "base/log.h" /* sg_log_level_t, the type of log.level */

#define SG_CONF_ERR_MAX 512

typedef enum { SG_ROUTE_FORWARD = 0, SG_ROUTE_DENY = 1 } sg_route_unmatched_t;
typedef enum { SG_JWT_RS256 = 1, SG_JWT_ES256, SG_JWT_EDDSA, SG_JWT_HS256 } sg_jwt_alg_t;
typedef enum { SG_AUDIT_SYNC_ALWAYS = 0, SG_AUDIT_SYNC_BATCH, SG_AUDIT_SYNC_NONE } sg_audit_sync_t;
/* audit.syslog.address's transport: a datagram socket (the local /dev/log), UDP, TCP. */
typedef enum { SG_SYSLOG_UNIX = 0, SG_SYSLOG_UDP, SG_SYSLOG_TCP } sg_syslog_transport_t;

typedef struct {
    char **v; /* NULL-terminated is not guaranteed: use n */
    size_t n;
} sg_conf_strv_t;

/* One vCenter (upstreams[] or the one-vCenter form `upstream`, named "default"). */
typedef struct {
    char *name;        /* unique; [A-Za-z0-9_.-], at most SG_CONF_NAME_MAX bytes */
    char *url;         /* as written */
    int tls;           /* 1 for https:// */
    char *host;        /* host part of url (brackets stripped for IPv6) */
    int port;          /* explicit or 80/443 */
    char *authority;   /* Host header value sent upstream: server_name or url's host[:port] */
    char *ca_file;     /* "" = system default store */
    int verify;        /* verify certificate and host name */
    char *server_name; /* "" = host from url; used for SNI, Host and name check */
    int connect_timeout_ms;
    int response_timeout_ms;
    int max_idle;        /* idle keep-alive connections kept per worker */
    int max_connections; /* open connections per worker; more requests wait in order */
    int check_interval_ms; /* the main thread's TCP reachability check; 0 = none */
} sg_conf_upstream_t;

#define SG_CONF_NAME_MAX 64

/* A virtual host of a listener: the names a client may ask for (SNI, Host), the
 * certificate it gets for them, and the vCenter the requests go to. */
typedef struct {
    sg_conf_strv_t server_names; /* lower case: "name" or "*.suffix" (one label) */
    char *upstream;              /* as written */
    size_t up;                   /* index into sg_conf_t.upstreams */
    char *certificate;           /* NULL: the listener's */
    char *private_key;
} sg_conf_vhost_t;

typedef struct {
    char *address;     /* numeric IPv4/IPv6 address to bind */
    int port;          /* 1..65535 */
    char *certificate; /* PEM path (required) */
    char *private_key; /* PEM path (required) */
    int min_version;   /* TLS1_2_VERSION or TLS1_3_VERSION (OpenSSL constants) */
    char *client_ca;   /* "" = no mTLS; else PEM path of CAs for client certificates */
    /* Names Host/:authority may carry (proxy/reqcheck.c), lower case: "name", "*.suffix"
     * (one label) or the single entry "*" (no check). Default: the certificate's DNS and
     * IP names (its CN when it has none). */
    sg_conf_strv_t server_names;
    /* Where requests for server_names go: "" = the first upstream when there are no
     * vhosts, none (the names only select the default certificate) when there are. */
    char *upstream;
    size_t up;        /* index into sg_conf_t.upstreams, valid when has_up */
    int has_up;
    sg_conf_vhost_t *vhosts; /* tried in order, before the listener's own names */
    size_t nvhosts;
} sg_conf_listen_t;

typedef struct {
    char *id;
    uint8_t sha256[32]; /* SHA-256 of the token, decoded from 64 hex digits */
    char *subject;
    char *tenant;
    sg_conf_strv_t roles;
} sg_conf_token_t;

typedef struct {
    char *kid;
    sg_jwt_alg_t alg;
    char *public_key;  /* PEM path for RS256/ES256/EdDSA, else NULL */
    char *secret_file; /* raw secret path for HS256, else NULL */
} sg_conf_jwt_key_t;

typedef struct {
    char *name;
    sg_conf_strv_t privileges;
} sg_conf_role_t;

/* What a tenant may touch on one vCenter. */
typedef struct {
    char *upstream;               /* as written */
    size_t up;                    /* index into sg_conf_t.upstreams */
    sg_conf_strv_t providers;     /* exact names or "prefix*" */
    sg_conf_strv_t fault_domains; /* exact names or "prefix*" */
} sg_conf_scope_t;

typedef struct {
    char *name;
    /* Change control for the tenant's guarded operations (filters/flt_change.c), on top of
     * the operation's own: inside one of these windows (none: any time), and a ticket
     * matching this POSIX ERE ("" = none needed; compiled at load into ticket_re). */
    sg_conf_strv_t windows;
    char *ticket;
    void *ticket_re; /* regex_t *, NULL when ticket is ""; freed with the configuration */
    char *at;        /* "file:line" of the entry, for errors found when a generation is built */
    /* The file's tenant-level providers/fault_domains: a scope on the upstream "default".
     * After loading they are scopes[nscopes - 1]; read scopes only. */
    sg_conf_strv_t providers;
    sg_conf_strv_t fault_domains;
    sg_conf_scope_t *scopes;
    size_t nscopes;
} sg_conf_tenant_t;

/* A change window (policy/window.h): built by filters/flt_change.c for each generation,
 * where policy/ may be reached; at names the entry for its errors. */
typedef struct {
    char *name; /* unique */
    char *timezone;
    sg_conf_strv_t days;
    char *from, *to;
    char *at; /* "file:line" */
} sg_conf_window_t;

/* A deployment's override of one row of the operation table (filters/ops.c). */
typedef struct {
    char *method;          /* a row's method (checked by filters/flt_change.c); unique */
    int enabled;           /* 0: refused with NoPermission */
    char *privilege;       /* the privilege a role must list instead of the row's; NULL: the row's */
    sg_conf_strv_t windows; /* names of change_windows; none: any time */
    char *ticket;          /* POSIX ERE the ticket must match; "" = no ticket needed */
    void *ticket_re;       /* regex_t *, NULL when ticket is "" */
    char *ticket_header;   /* where the ticket is */
    int approval;          /* a four-eyes approval is needed */
    int force_approval;    /* force = true needs one (the stop call) */
    char *at;              /* "file:line" */
} sg_conf_operation_t;

/* policy.approvers: who may sign an X-Change-Approval statement, for which tenants. */
typedef struct {
    char *name;
    char *public_key; /* PEM path (Ed25519 or P-256) */
    sg_conf_strv_t tenants; /* "t", "t*", "*" */
    char *at;         /* "file:line" */
} sg_conf_approver_t;

typedef struct {
    char *upstream; /* "" = this moid on every upstream */
    size_t up;      /* index into sg_conf_t.upstreams, when upstream is set */
    char *moid;
    int max_size;
} sg_conf_batch_provider_t;

typedef struct sg_conf_s {
    int refcnt;  /* atomic; sg_conf_ref/unref */
    char *file;  /* path given to sg_conf_load */

    int workers; /* resolved: 0 in the file becomes the number of online CPUs */

    sg_conf_listen_t *listen;
    size_t nlisten;

    struct {
        int enabled; /* 0 when the admin section is absent */
        char *address;
        int port;
    } admin;

    /* The vCenters. The one-vCenter form `upstream = { }` is read into legacy_upstream
     * and becomes upstreams[0], named "default"; nothing else reads legacy_upstream. */
    sg_conf_upstream_t *upstreams;
    size_t nupstreams;
    sg_conf_upstream_t legacy_upstream;
    int legacy_upstream_set;

    struct {
        int max_header_bytes;
        int max_body_bytes;
        int max_streams;
        int header_timeout_ms;
        int body_timeout_ms;
        int idle_timeout_ms;
        int send_timeout_ms; /* no byte of a pending answer written: cut the client */
        int max_requests_per_connection; /* h1: Connection: close on the last; h2: GOAWAY */
        int max_connections; /* per process */
        int drain_timeout_ms; /* SIGTERM: how long in-flight requests may finish */
    } limits;

    struct {
        sg_route_unmatched_t unmatched;
        /* More identity headers dropped on every route (proxy/headers.c): names, or
         * "prefix*"; header-name characters only, at most 64 entries (SG_CK_DROP_HEADERS). */
        sg_conf_strv_t drop_headers;
    } routes;

    struct {
        char *access; /* "off", "stderr" or a path */
        sg_log_level_t level;
    } log;

    struct {
        sg_conf_token_t *tokens;
        size_t ntokens;
        struct {
            int enabled; /* 1 when the jwt section is present */
            char *issuer;
            sg_conf_strv_t audience; /* string or list in the file */
            int leeway_s;
            sg_conf_jwt_key_t *keys;
            size_t nkeys;
            char *subject_claim;
            char *tenant_claim;
            char *roles_claim;
        } jwt;
        sg_conf_role_t *roles;
        size_t nroles;
        sg_conf_tenant_t *tenants;
        size_t ntenants;
        char *force_privilege; /* "" = off */
        sg_conf_approver_t *approvers;
        size_t napprovers;
        int max_approval_s; /* an approval's exp may be at most this far ahead */
    } policy;

    sg_conf_window_t *change_windows;
    size_t nchange_windows;
    sg_conf_operation_t *operations;
    size_t noperations;

    struct {
        int max_size;
        sg_conf_batch_provider_t *providers;
        size_t nproviders;
        int learn_from_toomany;
        int max_parallel;
        int max_parts;       /* a request may not expand into more parts than this */
        char *task_key_file; /* "" = off; else at least 32 bytes of raw secret */
        char *task_key_previous_file; /* "" = off; verifies handles only (key rotation) */
    } batch;

    struct {
        char *file; /* "" = off */
        sg_audit_sync_t sync;
        int fail_closed;
        char *signing_key; /* "" = off; Ed25519 private key PEM */
        int checkpoint_every;
        struct {
            int enabled;
            int facility; /* LOG_AUTHPRIV etc. from <syslog.h> */
            char *address;  /* "unix:PATH", "udp:HOST:PORT" or "tcp:HOST:PORT" */
            char *app_name; /* RFC 5424 APP-NAME */
        } syslog;
    } audit;

    void *arena; /* private: owns every string and array above */
} sg_conf_t;

/*
 * Load and validate FILE. Returns 0 and a new configuration (refcount 1) in
 * *out, or -1 with "file:line: reason" (or "file: reason" when no line applies)
 * in err. Never prints; never exits.
 */
int sg_conf_load(const char *file, sg_conf_t **out, char *err, size_t errlen);

/* audit.syslog.address split: the check that refuses a bad one and the audit writer that
 * connects use this one parser. */
typedef struct {
    sg_syslog_transport_t transport;
    char host[256]; /* unix: the socket's path; else a name or address (IPv6 without []) */
    char port[6];   /* decimal 1-65535; "" for unix */
} sg_syslog_addr_t;

/* Returns 0, or -1 with *why (static text). */
int sg_conf_syslog_address(const char *v, sg_syslog_addr_t *out, const char **why);

sg_conf_t *sg_conf_ref(sg_conf_t *c);
void sg_conf_unref(sg_conf_t *c);

#endif
