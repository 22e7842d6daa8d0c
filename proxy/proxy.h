/*
 * proxy/proxy.h - the data path's types and the calls between its parts.
 *
 * One sg_worker_t per thread owns a libev loop, its listening sockets
 * (SO_REUSEPORT), its client connections (sg_conn_t) and its upstream pool
 * (sg_up_t). Nothing here is shared between workers except the immutable
 * configuration, the SSL_CTXs (OpenSSL makes them safe to share) and a few
 * atomic counters, so the request path takes no lock.
 *
 * Data flows one way: listener -> conn (TLS) -> h1/h2 front end -> sg_req_t ->
 * filter chain -> upstream -> the same front end, through sg_front_ops_t.
 */
#ifndef SG_PROXY_H
#define SG_PROXY_H

#include <ev.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/base.h"
#include "conf/conf.h"
#include "proxy/metrics.h"

typedef struct sg_proxy_s sg_proxy_t;
typedef struct sg_worker_s sg_worker_t;
typedef struct sg_conn_s sg_conn_t;
typedef struct sg_req_s sg_req_t;
typedef struct sg_up_s sg_up_t;
typedef struct sg_upool_s sg_upool_t;
typedef struct sg_health_s sg_health_t;

/* ---- headers ---- */

typedef struct {
    sg_str_t name;
    sg_str_t value;
} sg_header_t;

typedef struct {
    sg_header_t *v;
    size_t n, cap;
} sg_headers_t;

/* Appends a copy of name/value (allocated from pool). SG_ENOMEM on failure. */
int sg_headers_add(sg_pool_t *pool, sg_headers_t *h, const char *name, size_t nlen,
                   const char *value, size_t vlen);
/* First header named `name` (case-insensitive), or NULL. */
const sg_header_t *sg_headers_get(const sg_headers_t *h, const char *name);
/* How many header lines are named `name`: checks on one value must see them all. */
size_t sg_headers_count(const sg_headers_t *h, const char *name);
/* Hop-by-hop and proxy-private headers that never cross the proxy (RFC 9110 7.6.1;
 * docs/design.md "Configuration"): Connection, Keep-Alive, Proxy-*, TE, Trailer,
 * Transfer-Encoding, Upgrade, Host, Content-Length (recomputed), Expect,
 * Authorization, X-Forwarded-{For,Proto,Host} (replaced), HTTP2-Settings. */
int sg_hdr_is_request_hop(const char *name, size_t n);
/* What becomes of a client request header on its way upstream: the one decision, its
 * rules written down in headers.c. guarded: r->guarded (batch parts included); drop:
 * routes.drop_headers. Returns one of SG_HDR_*; the caller still drops headers named by
 * Connection (sg_hdr_connection_lists). */
enum {
    SG_HDR_KEEP = 0,
    SG_HDR_DROP_HOP,      /* hop-by-hop, a credential, or set by the gateway: routine */
    SG_HDR_DROP_IDENTITY, /* claims who the caller is */
    SG_HDR_DROP_OVERRIDE, /* rewrites the target or the method, or a name with _ */
    SG_HDR_DROP_UNLISTED, /* guarded routes: not on the allowlist */
};
int sg_hdr_upstream_class(const char *name, size_t n, int guarded, const sg_conf_strv_t *drop);
/* Response headers not passed back to the client (framing and hop-by-hop). */
int sg_hdr_is_response_hop(const char *name, size_t n);
/* True when `name` is one of the comma-separated tokens of any Connection header. */
int sg_hdr_connection_lists(const sg_headers_t *h, const char *name, size_t n);

/* ---- a generation: configuration and what is built from it (gen.c) ---- */

/* What a generation built for conf->upstreams[i]. */
typedef struct {
    SSL_CTX *ssl; /* NULL for an http:// upstream */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    sg_health_t *health; /* process-wide, by name (health.c); NULL: not tracked */
    int mslot;           /* its metrics slot, by name (metrics.h) */
} sg_gen_up_t;

/* A listener's TLS: its own context (the default certificate, and the SNI callback that
 * picks a vhost's) and one per vhost with a certificate of its own (NULL: the default). */
typedef struct {
    const sg_conf_listen_t *l;
    SSL_CTX *ctx;
    SSL_CTX **vhost; /* l->nvhosts of them */
} sg_gen_tls_t;

typedef struct sg_gen_s {
    int refcnt; /* atomic: main thread, workers, requests, upstream connections */
    uint64_t id; /* unique per process: caches key on it, never on the address */
    sg_conf_t *conf;
    void **flt_gen;       /* each filter's state for this generation (filters/filter.h) */
    size_t nflt_gen;
    sg_gen_tls_t *tls; /* one per conf->listen entry */
    size_t nlisten;
    sg_gen_up_t *ups; /* one per conf->upstreams entry */
    size_t nups;
} sg_gen_t;

/* Load FILE and build everything from it. 0, or SG_ERR with "file:line: reason" in err.
 * resolve = 0 skips DNS (configuration test). */
int sg_gen_new(const char *file, int resolve, sg_gen_t **out, char *err, size_t errlen);
sg_gen_t *sg_gen_ref(sg_gen_t *g);
void sg_gen_unref(sg_gen_t *g);
/* The first key that differs and needs a restart ("workers", "audit.file", "audit.sync",
 * "audit.signing_key"), or NULL. Listen and admin addresses are re-bound instead. */
const char *sg_gen_restart_needed(const sg_gen_t *old, const sg_gen_t *g);

/* ---- the process ---- */

struct sg_proxy_s {
    sg_gen_t *gen;  /* main thread's current generation */
    sg_conf_t *conf; /* == gen->conf */
    sg_worker_t *workers;
    int nworkers;
    int draining;          /* atomic: set once on SIGTERM/SIGINT */
    int nconns;            /* atomic: open client connections, for max_connections */
    uint64_t next_req_id;  /* atomic */
};

/* ---- a worker thread ---- */

/* One worker's listening sockets: fds[i] (SO_REUSEPORT) and its watcher io[i] serve the
 * generation's conf->listen[i] and listen_ssl[i]. */
typedef struct {
    int *fds;
    ev_io *io;
    size_t n;
} sg_lset_t;

struct sg_worker_s {
    sg_proxy_t *px;
    int id;
    pthread_t thread;
    struct ev_loop *loop;
    sg_gen_t *gen;   /* the generation new connections and requests use */
    sg_conf_t *conf; /* == gen->conf */
    sg_gen_t *pending_gen;  /* handed over by the main thread on reload (reload_mu) */
    sg_lset_t pending_ls;   /* its listening sockets (reload_mu) */
    pthread_mutex_t reload_mu; /* the hand-over only: never taken on the request path */
    ev_async reload_async;

    sg_lset_t ls; /* listening sockets, one per gen->conf->listen entry (changed under reload_mu) */

    ev_async stop_async; /* main thread -> worker: start draining */
    ev_timer drain_timer;
    ev_prepare defer; /* frees closed objects once per loop iteration, before sleeping */
    int draining;
    int started; /* the thread runs */
    int exited;  /* atomic: the loop has ended (main thread polls it) */

    sg_conn_t *conns; /* all open client connections (doubly linked) */
    sg_conn_t *dead;  /* closed, freed by defer_check */
    size_t nconns;
    /* Open connections with nothing in flight and nothing to write, oldest first: their
     * buffers are given back once they stayed so for CONN_QUIET_MS (conn.c). */
    sg_conn_t *quiet, *quiet_tail;
    ev_timer quiet_timer;

    /* Upstream connection pools (upstream.c), one per upstream of the current generation
     * (upool[i] for gen->conf->upstreams[i]), plus pools of earlier generations' upstreams
     * that still have connections or waiting requests; all on the upools list. */
    sg_upool_t *upools;
    sg_upool_t **upool;
    size_t nupool;
    size_t nidle;    /* idle upstream connections, all pools (metrics) */
    size_t nup;      /* open upstream connections, idle included, all pools */
    sg_up_t *dead_up;

    sg_req_t *sub_done; /* finished sub-requests, run by the prepare watcher */
    /* proxy/audit.c: this iteration's records, handed to the writer by audit_flush */
    struct sg_audit_batch_s *audit_batch;
    struct sg_audit_batch_s *audit_free; /* emptied batches for reuse (audit_nfree of them) */
    unsigned audit_nfree;
    struct sg_audit_batch_s *audit_done;  /* atomic: back from the writer, requests wait */
    struct sg_audit_batch_s *audit_spare; /* atomic: back from the writer, nobody waits */
    ev_async audit_async;   /* the writer -> worker: audit_done has batches */
    ev_prepare audit_flush; /* after every other prepare watcher (EV_MINPRI) */

    sg_pool_cache_t blocks; /* request pools' chunks and buffers, recycled (base/pool.h) */
    sg_metrics_t m;     /* written by this worker only (metrics.h) */
    sg_access_t alog;   /* log.access, this worker's buffer and fd */
};

int sg_worker_init(sg_worker_t *w, sg_proxy_t *px, int id);
int sg_worker_start(sg_worker_t *w);
void sg_worker_stop(sg_worker_t *w); /* thread-safe: asks the worker to drain and exit */
/* Main thread, on reload, before anything is committed: every worker's sockets for
 * conf's listen entries, the running socket for an address kept and a new one bound
 * for an address added. SG_OK with *out (px->nworkers sets), or SG_ERR with err
 * ("listen ADDR:PORT: reason") and nothing left bound. */
int sg_workers_listen_prepare(sg_proxy_t *px, const sg_conf_t *conf, sg_lset_t **out, char *err,
                              size_t errlen);
/* The reload was refused after sg_workers_listen_prepare: close what it bound, free sets. */
void sg_workers_listen_abort(sg_proxy_t *px, sg_lset_t *sets);
/* Thread-safe: hand a new generation (one reference) and its listening sockets (*ls, from
 * sg_workers_listen_prepare) to the worker, which owns both from now on. The worker
 * keeps the sockets of addresses kept, closes the others and watches the new ones. */
void sg_worker_reload(sg_worker_t *w, sg_gen_t *g, sg_lset_t *ls);
void sg_worker_join(sg_worker_t *w);
void sg_worker_dispose(sg_worker_t *w);

/* ---- TLS contexts (tls.c) ---- */

/* A listener's context with the certificate and key given (a vhost's, or the listener's
 * own when both are NULL). */
SSL_CTX *sg_tls_server_ctx(const sg_conf_listen_t *l, const char *certificate,
                           const char *private_key, char *err, size_t errlen);
/* The listener's SNI callback: the first vhost whose names match the server name gets the
 * connection (its context, when it has one). */
void sg_tls_set_vhosts(sg_gen_tls_t *t);
SSL_CTX *sg_tls_client_ctx(const sg_conf_upstream_t *u, char *err, size_t errlen);
/* HOST (lower case) against one server name: exact, or "*.suffix" for exactly one more
 * label, as a certificate's wildcard matches (RFC 6125 6.4.3). */
int sg_tls_name_matches(const char *host, const char *name);
/* HOST against a list of such names (a vhost's, a listener's): 1 when one matches. The TLS
 * SNI callback and sg_req_check's routing use the same names in the same order. */
int sg_tls_names_match(const sg_conf_strv_t *names, const char *host);
/* The OpenSSL error queue as one line (and cleared), for logs. */
const char *sg_tls_errstr(char *buf, size_t len);

/* ---- client connections (conn.c) ---- */

typedef struct {
    const char *name;
    int (*init)(sg_conn_t *c);
    /* Called first on every wake-up: finish completed exchanges (may be NULL). */
    void (*advance)(sg_conn_t *c);
    /* Bytes read from the client. <0: close the connection now. */
    int (*on_data)(sg_conn_t *c, const char *p, size_t n);
    /* Produce more output into c->wbuf (h2: nghttp2_session_mem_send). */
    int (*fill)(sg_conn_t *c);
    /* Whether the protocol wants more input now (back-pressure on pipelining). */
    int (*want_read)(sg_conn_t *c);
    /* Whether the connection is finished: nothing in flight, close after flush. */
    int (*done)(sg_conn_t *c);
    void (*on_timeout)(sg_conn_t *c);
    void (*on_drain)(sg_conn_t *c); /* graceful shutdown started */
    void (*on_close)(sg_conn_t *c); /* free streams, abort upstream requests */
    /* The connection has been quiet for a while (done() and nothing to write): give back
     * buffers that the next request allocates again (may be NULL). */
    void (*release)(sg_conn_t *c);
} sg_proto_ops_t;

/* SG_CONN_LINGER: the protocol is done and freed, our FIN is sent, and client input is
 * read and dropped until its EOF or a short timeout (conn.c, lingering close). */
enum { SG_CONN_HANDSHAKE, SG_CONN_OPEN, SG_CONN_CLOSED, SG_CONN_LINGER };

struct sg_conn_s {
    sg_worker_t *w;
    sg_conf_t *conf; /* the configuration this connection started with */
    sg_gen_t *hs_gen; /* its generation, held while the TLS handshake runs (tls.c SNI) */
    int fd;
    SSL *ssl;
    int state;
    ev_io io;
    ev_timer timer;
    ev_timer wtimer;   /* limits.send_timeout_ms while wbuf holds bytes (conn.c) */
    uint64_t wlast_ms; /* last time a write took bytes, or wbuf filled from empty */
    int io_events;
    const sg_proto_ops_t *proto;
    void *pd; /* protocol state (h1 or h2) */
    sg_buf_t wbuf;
    sg_pool_t pool; /* connection lifetime */
    uint64_t id;
    uint64_t accept_ms;
    const sg_conf_listen_t *listen; /* the listen entry it came in on (conf's) */
    char peer[64];      /* client address, numeric */
    const char *tls_version;
    unsigned read_wants_write : 1, write_wants_read : 1, close_after_flush : 1, eof : 1,
        counted : 1, kicked : 1,
        rdrained : 1,     /* the socket gave less than asked: no read until EV_READ */
        rd_eof : 1,       /* the socket read returned 0 (what BIO_eof reports) */
        read_blocked : 1, /* conn_read stopped because the protocol wanted no input */
        linger : 1,       /* the protocol ends the connection on a client still sending */
        quiet : 1;        /* on the worker's quiet list */
    ev_tstamp quiet_since; /* when it went quiet (loop time) */
    size_t burst;          /* bytes written since the output last paused (TLS record size) */
    ev_tstamp burst_at;    /* the last write that took bytes (loop time) */
    unsigned wpend;        /* length of an SSL_write to retry (0: none) */
    sg_conn_t *prev, *next;
    sg_conn_t *qprev, *qnext; /* the worker's quiet list */
};

/* LI: the index of the listen entry in w->conf the socket belongs to. */
void sg_conn_accept(sg_worker_t *w, int fd, const struct sockaddr *sa, SSL_CTX *ctx, size_t li);
/* Schedule the connection's I/O callback (advance, read, write) from the loop:
 * front ends call this after queueing output or making room for input. */
void sg_conn_kick(sg_conn_t *c);
void sg_conn_close(sg_conn_t *c);
/* Arm the connection timer to fire at accept_ms/now + ms (0: stop it). */
void sg_conn_set_timer(sg_conn_t *c, uint64_t at_ms);

extern const sg_proto_ops_t sg_h1_proto;
extern const sg_proto_ops_t sg_h2_proto;

/* ---- requests (req.c) ---- */

typedef struct {
    int (*send_headers)(sg_req_t *r);                    /* r->res is complete */
    int (*send_body)(sg_req_t *r, const char *p, size_t n);
    int (*send_end)(sg_req_t *r);
    size_t (*backlog)(sg_req_t *r); /* response bytes queued, not yet written */
    void (*abort)(sg_req_t *r);     /* response cannot be completed: reset it */
} sg_front_ops_t;

enum {
    SG_DECISION_NONE = 0, /* not subject to a decision */
    SG_DECISION_ALLOW,
    SG_DECISION_DENY,
};

struct sg_req_s {
    sg_pool_t pool;
    sg_conn_t *conn;
    sg_gen_t *gen;   /* referenced for the request's life (reload-safe) */
    sg_conf_t *conf; /* == gen->conf */
    const sg_front_ops_t *fe;
    void *fe_data; /* h2 stream */
    uint64_t id;
    char request_id[24];
    uint64_t start_ms;
    int http_major, http_minor; /* client's version (2.0 for h2) */

    /* request, identical for h1 and h2; sg_req_check() guarantees all four to the chain */
    sg_str_t method;
    sg_str_t scheme;    /* :scheme, the absolute-form's, or "https" (the listener is TLS) */
    sg_str_t path;      /* origin-form target, as forwarded */
    sg_str_t authority; /* Host or :authority, verified against listen.server_names */
    /* The vCenter it goes to (sg_req_check, from the vhost): conf->upstreams[up_idx].
     * NULL until then: a request refused before (400, 421) went to no vCenter. */
    const sg_conf_upstream_t *upstream;
    size_t up_idx;
    sg_headers_t headers;
    sg_buf_t body; /* complete before the chain runs past on_request_headers */
    int64_t content_length; /* -1: not given */
    unsigned head : 1, guarded : 1, body_complete : 1,
        h2_protocol : 1; /* an HTTP/2 :protocol pseudo-header (extended CONNECT) */

    /* The annotation: what the chain concluded, in neutral terms, for metrics, the access
     * log and the audit. Filters write it; the core never asks which filter did. */
    int route;             /* sg_route_id_t (filters/canon.h); 0 = not a guarded route */
    sg_str_t release, moid; /* guarded routes: from the canonical path */
    int decision;          /* SG_DECISION_*: what the policy (or route policy) said */
    const char *subject, *tenant; /* who the caller authenticated as; NULL: nobody */
    const char *reason;    /* why it was refused or allowed, for the audit log */
    const char *fault_type; /* _typeName of the fault answered locally, if any */
    /* Change control (filters/flt_change.c): the change ticket the request carried, the
     * approver who signed its approval (also when refused, once identified), the change
     * window it was judged against (its name; refused: the names it was outside of). */
    const char *ticket, *approver, *window;
    unsigned stop_attempt : 1; /* refused target that names a guarded replication method */
    unsigned routed : 1;       /* the target was canonicalised: route says what it is */
    /* X-Dry-Run: true on a replication operation (filters/flt_route.c): every check runs,
     * the decision is audited, nothing is forwarded (docs/design.md "Dry run") */
    unsigned dry_run : 1;
    unsigned capture : 1;      /* keep a copy of the response body (bounded) */
    sg_buf_t res_body;         /* that copy, for the audit outcome */
    void *audit_wait;          /* proxy/audit.c: the batch holding the record r waits for */

    /* sub-requests (subreq.c) */
    unsigned is_child : 1, sub_done : 1;
    sg_req_t *parent, *children, *sub_sibling, *sub_next;
    size_t nchildren;
    void (*sub_cb)(sg_req_t *parent, sg_req_t *child, void *arg);
    void *sub_arg;

    /* filter chain */
    unsigned flt_next;
    int flt_phase;
    void *flt_ctx; /* every filter's context, one block (filters/chain.c) */

    /* upstream */
    sg_up_t *up;
    sg_upool_t *upool; /* the pool it waits in, or was last sent through */
    int up_tries;
    unsigned up_queued : 1;          /* waiting in the worker's upq for a connection */
    unsigned hdrs_counted : 1; /* its dropped headers are counted (once, not per retry/part) */
    sg_req_t *upq_prev, *upq_next;

    /* response */
    struct {
        int status;
        sg_headers_t headers;
        int64_t content_length; /* -1: unknown (streamed) */
        int no_body;            /* HEAD, 1xx, 204, 304 */
    } res;
    unsigned res_started : 1, res_ended : 1, res_paused : 1, aborted : 1, local_reply : 1;
    /* Direct mode (sg_subreq_direct): the upstream's answer, or its failure, is held from
     * the client and handed to the chain (filters/filter.h on_response). */
    unsigned res_hold : 1;
    const char *term; /* 2-char termination code (HAProxy style), "--" when clean */
    uint64_t up_start_ms, up_end_ms; /* first sg_up_forward, upstream answer end (0: none) */
    uint64_t bytes_out;              /* response body bytes handed to the front end */
    const char *up_error; /* why the upstream exchange failed ("upstream reset", ...), for
                             the log and the audit outcome; NULL when it answered */
};

sg_req_t *sg_req_new(sg_conn_t *c, const sg_front_ops_t *fe);
/* reqcheck.c: the request model every filter relies on, for both front ends. SG_OK, or
 * the request was answered (400, 405 or 421; r->local_reply) and counted. */
int sg_req_check(sg_req_t *r);
/* Tests only (the fuzz harness): called with each request that passed sg_req_check,
 * just before its first filter runs. NULL in the gateway. */
extern void (*sg__req_chain_hook)(const sg_req_t *r);
void sg_req_free(sg_req_t *r);
/* Headers are complete: run the header hooks of the chain. */
void sg_req_headers_done(sg_req_t *r);
/* Body is complete: run the rest of the chain and forward. */
void sg_req_body_done(sg_req_t *r);
/* The client went away: stop upstream work and free the request. */
void sg_req_abort(sg_req_t *r);
/* A local answer (fault or admin). body may be NULL. */
int sg_req_reply(sg_req_t *r, int status, const char *ctype, const char *body, size_t blen);
/* A vSphere fault (docs/design.md "Answers"): the fault object itself is the body. Members
 * left NULL/0 are omitted. */
typedef struct {
    const char *type;             /* _typeName: InvalidArgument, NoPermission, ... */
    const char *message;          /* faultstring and the LocalizableMessage */
    const char *invalid_property; /* InvalidArgument */
    const char *privilege_id;     /* NoPermission, NotAuthenticated */
    const char *object_key;       /* member name of the MoRef: NULL = "object" ("obj" for
                                     ManagedObjectNotFound) */
    const char *object_type;      /* NoPermission: the MoRef of the object */
    const char *object_value;
    long long max_batch_size;     /* TooMany; 0 = absent */
    int missing_privileges;       /* NoPermission: add missingPrivileges for object */
} sg_fault_t;

int sg_req_fault_ex(sg_req_t *r, int status, const sg_fault_t *f);
/* The fault object alone, appended to b: for faults carried elsewhere (a batch part's,
 * inside a composite task). SG_OK, or SG_ENOMEM/SG_ETOOBIG with b as it was. */
int sg_fault_write(sg_buf_t *b, const sg_fault_t *f);
/* Shorthand for a fault with a type and a message only. */
int sg_req_fault(sg_req_t *r, int status, const char *type, const char *message);
/* The front end's backlog fell: let the upstream read again. */
void sg_req_res_drained(sg_req_t *r);

/* called by upstream.c */
void sg_req_up_headers(sg_req_t *r);
/* Returns 1 when the upstream should stop reading (client is slow), -1 when the
 * answer cannot be taken (a buffered sub-request answer over its limit): the
 * upstream then fails the exchange. */
int sg_req_up_body(sg_req_t *r, const char *p, size_t n);
void sg_req_up_done(sg_req_t *r);
void sg_req_up_fail(sg_req_t *r, int status, const char *why);

/* ---- sub-requests (subreq.c) ---- */

/* The child's answer is in child->res.status, child->res.headers and child->res_body
 * (child->aborted when there is none). Runs from the loop; the child is freed after. */
typedef void (*sg_subreq_cb)(sg_req_t *parent, sg_req_t *child, void *arg);
/* POST path with body upstream on parent's behalf (headers as the parent's). NULL on ENOMEM.
 * Never calls cb before returning. */
sg_req_t *sg_subreq_spawn(sg_req_t *parent, const char *path, size_t pathlen, const char *body,
                          size_t bodylen, sg_subreq_cb cb, void *arg);
/* A batch's only part goes upstream as r itself, not as a sub-request (the chain then
 * returns SG_FLT_NEXT). What a sub-request gives its parent still holds: nothing of the
 * answer reaches the client as it comes; it is gathered whole in r->res_body, within a
 * sub-request's bound, and the chain's on_response hook gets it (or the failure) at its
 * end, to answer as it would for a part: the answer as it came, the part's fault, or a
 * re-split after TooMany. */
void sg_subreq_direct(sg_req_t *r);
/* parent is going away: its children are cancelled, their callbacks never run. */
void sg_subreq_orphan_all(sg_req_t *parent);
void sg__subreq_run_done(sg_worker_t *w);

/* ---- upstream (upstream.c) ---- */

/* Send r upstream on an idle or new connection. Never calls back synchronously:
 * failures arrive through sg_req_up_fail from the loop. */
void sg_up_forward(sg_req_t *r);
/* Detach from r and close (the response was not read to its end). */
void sg_up_abort(sg_up_t *u);
/* r is going away: stop waiting for a connection (no-op unless r->up_queued). */
void sg_up_unqueue(sg_req_t *r);
void sg_up_resume(sg_up_t *u);
void sg_up_close_idle(sg_worker_t *w);
/* The worker took a new generation: pools for its upstreams (kept for an upstream whose
 * connection settings did not change), idle connections of the others closed. SG_OK or
 * SG_ENOMEM (the worker then keeps using the pools it had, by name). */
int sg_up_reload(sg_worker_t *w);
/* The worker ends: every pool freed (no connection or request left). */
void sg_up_dispose(sg_worker_t *w);
/* Requests waiting for a connection, all pools (the fuzz harness checks none is left). */
size_t sg_up_queued(const sg_worker_t *w);
/* The worker's open and idle upstream connections added into open[] and idle[], indexed
 * by the metrics slot of each pool's upstream (SG_M_NUP entries each). */
void sg_up_pool_gauges(const sg_worker_t *w, uint64_t *open, uint64_t *idle);

/* ---- upstream health (health.c) ---- */

/* Process-wide, one per upstream name, never freed: workers mark connection failures and
 * successes; while an upstream is down its requests fail at once, one probe per hold-down
 * period goes through. Lock-free (atomics). */
sg_health_t *sg_health_get(const char *name); /* main thread (gen.c); NULL when full */
/* Worker: may a request be sent now? 1 = yes (maybe as the probe), 0 = fail it at once. */
int sg_health_admit(sg_health_t *h, uint64_t now_ms);
void sg_health_failed(sg_health_t *h, uint64_t now_ms, const char *why);
void sg_health_ok(sg_health_t *h);
/* For /healthz: whether it is down now, and since when (ms, 0 = up) and the last error. */
int sg_health_down(const sg_health_t *h, uint64_t *since_ms, const char **why);

/* ---- the active reachability check (health_check.c) ---- */

/* Main thread: every check_interval_ms, a non-blocking TCP connect to each upstream of
 * px->gen, reported to health.c. Start once the generation is loaded, reload after px->gen
 * changed, stop before the loop ends. */
void sg_hcheck_start(sg_proxy_t *px, struct ev_loop *loop);
void sg_hcheck_reload(void);
void sg_hcheck_stop(void);

/* ---- audit writer (audit.c) ---- */

typedef struct sg_audit_batch_s sg_audit_batch_t;
/* Runs on r's worker once the record is written as audit.sync says (status 0) or could
 * not be written (negative SG_E*). Not called when r was freed first. */
typedef void (*sg_audit_cb)(sg_req_t *r, int status);

/* Start the writer thread when audit.file is set (0), or SG_ERR with err. */
int sg_audit_start(sg_conf_t *conf, char *err, size_t errlen);
/* Write what is queued, a final checkpoint, sync, and end the thread. */
void sg_audit_stop(void);
void sg_audit_reopen(void); /* SIGUSR1: log rotation */
int sg_audit_enabled(void);
int sg_audit_failing(void);
/* One record, built in place: sg_audit_record returns the (sticky, base/buf.h) buffer of
 * the batch of r's worker, to append the members after seq and prev ("time":...,
 * "stage":...) without braces or '\n'; sg_audit_commit then takes it, or drops it alone
 * and returns the buffer's error. sg_audit_record returns NULL when the writer is not
 * running or without memory (nothing to commit then). The batch goes to the writer at the
 * end of the loop iteration. With cb, r waits: cb(r, status) runs on r's worker later,
 * never before sg_audit_commit returns. */
sg_buf_t *sg_audit_record(sg_req_t *r);
int sg_audit_commit(sg_req_t *r, sg_audit_cb cb);
/* r is going away: a pending completion only recycles its batch. */
void sg_audit_forget(sg_req_t *r);
void sg__audit_done_cb(struct ev_loop *loop, ev_async *a, int revents);
void sg__audit_flush_cb(struct ev_loop *loop, ev_prepare *p, int revents);
/* The worker's loop ended: hand over what its last iteration recorded. */
void sg__audit_flush(sg_worker_t *w);
/* Batches that came back after the worker's loop ended (their requests are gone), and the
 * worker's spare ones. */
void sg__audit_free_done(sg_worker_t *w);

/* ---- admin listener (admin.c), on the main thread's loop ---- */

int sg_admin_start(sg_proxy_t *px, struct ev_loop *loop, char *err, size_t errlen);
void sg_admin_stop(void);
/* Reload: bind the admin listener conf asks for when it differs from the running one.
 * SG_OK with *fd (a new socket, -1 for "no admin listener", SG_ADMIN_SAME when it does
 * not change), or SG_ERR with err and nothing bound. */
#define SG_ADMIN_SAME (-2)
int sg_admin_prepare(const sg_conf_t *old, const sg_conf_t *conf, int *fd, char *err,
                     size_t errlen);
void sg_admin_commit(int fd); /* serve on fd from now on, closing the old listener */

/* Response bytes above which the upstream stops reading, and below which it resumes. */
#define SG_RES_HIGH_WATER (256 * 1024)
#define SG_RES_LOW_WATER (64 * 1024)

#endif
