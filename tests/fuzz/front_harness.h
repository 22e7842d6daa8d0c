/*
 * tests/fuzz/front_harness.h - a worker and a client connection without sockets or TLS,
 * shared by fuzz_h1, fuzz_h2 and fuzz_reqshape.
 *
 * What is real: the configuration (conf/conf.c, written to a temporary directory at
 * start), the generation and the filters' state built with it (proxy/gen.c, gen_init in
 * filters/), a libev loop, the front end under test (proxy/h1_server.c or
 * proxy/h2_server.c), requests (proxy/req.c), the whole filter chain
 * (filters/), sub-requests of a split batch (proxy/subreq.c) and the upstream client up to
 * the request it would send (proxy/upstream.c: the request is built for every forwarded
 * request, then its connect fails).
 *
 * What is not: the socket and TLS of proxy/conn.c. The connection is built here as
 * sg_conn_accept() builds it, with c->ssl NULL and c->fd -1, and its I/O watcher is
 * never started, only fed events; its callback (fz_io_cb) does what conn_io_cb does, in
 * the same order (advance, read, write, the close decision), with the fuzz input as the
 * bytes SSL_read would return and the write buffer drained into fz.out. The upstream
 * address is left unset (sg_gen_new with resolve = 0: AF_UNSPEC), so each upstream
 * connection fails in socket(2) with EAFNOSUPPORT and, as for any failed connect, the
 * failure arrives from the loop: 502/ProviderUnavailable goes back through the front end.
 * No socket is made, no thread is started (audit is off: the audit filter passes, so no
 * audit record is built here), no timer runs on the wall clock: the harness fires the
 * connection timer itself once the input is used up. upstream.max_connections is 1, so
 * that concurrent requests (h2 streams, batch parts) wait in the worker's queue for a
 * connection. The fixed tokens FZ_TOKEN_* authenticate (the dictionaries carry them).
 *
 * Driving: the loop runs with EVRUN_NOWAIT; each iteration hands the connection at most
 * one chunk of input (as one TLS record would arrive), so partial headers, frames split
 * anywhere and pipelining are all exercised. Once the input is used up, the ending the
 * control byte chose follows: client EOF, or time passing (the connection timer fires),
 * or a graceful shutdown (on_drain). A connection still open after all of that, with
 * nothing pending, is a finding (it would never close); then everything it held must be
 * freed (LeakSanitizer).
 *
 * The proxy's log goes to stdio's stderr: the harness points `stderr` at /dev/null while
 * an input runs (FUZZ_VERBOSE=1 in the environment keeps it). libFuzzer and the
 * sanitizers write their reports through their own descriptors, so nothing of theirs is
 * lost.
 */
#ifndef SG_FUZZ_FRONT_HARNESS_H
#define SG_FUZZ_FRONT_HARNESS_H

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

#include "filters/filter.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "tests/common/selfsigned.h"
#include "tests/common/tmpdir.h"

/* Not in proxy.h: loop.c's deferred-free queue calls them. */
void sg__conn_free_dead(sg_worker_t *w);
void sg__up_free_dead(sg_worker_t *w);
/* Test seams, NULL unless a target sets them (fuzz_reqshape.c): proxy/req.c calls the
 * first with each request that passed the request model (sg_req_check), just before the
 * filter chain first runs on it; proxy/upstream.c the second with every request head it
 * built for the upstream, before it is sent. */
extern void (*sg__req_chain_hook)(const sg_req_t *r);
extern void (*sg__up_request_hook)(const sg_req_t *r, const char *head, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                         \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(fz.real_stderr ? fz.real_stderr : stderr,                                  \
                    "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The tokens the configuration knows (the dictionaries and seeds carry them). */
#define FZ_TOKEN_OPERATOR "fuzz-operator-token" /* tenant t1, dr-operator */
#define FZ_TOKEN_VIEWER "fuzz-viewer-token"     /* tenant t2, viewer */
#define FZ_TOKEN_FORCE "fuzz-force-token"       /* tenant t2, dr-operator + SMS.Force */

#define FZ_OUT_MAX (1u << 20) /* output kept for the checks; the rest is only counted */
#define FZ_MAX_ITER 200000    /* loop iterations per input: more is a livelock */

/* The control byte (first input byte). */
enum {
    FZ_CHUNK_MASK = 0x07, /* 0: all at once; 1: one byte per read; else sizes up to 4 << n */
    FZ_END_TIMEOUT = 0x08, /* input used up: let time pass (timer) before the client's EOF */
    FZ_END_DRAIN = 0x10,   /* input used up: graceful shutdown (on_drain) first */
    FZ_RAW = 0x20,         /* h2: no automatic client preface + SETTINGS */
    FZ_DRAIN_EARLY = 0x40, /* graceful shutdown after the first read */
};

static struct {
    int ready;
    char dir[PATH_MAX];
    sg_proxy_t px;
    sg_worker_t w;
    ev_prepare defer;
    FILE *devnull, *real_stderr;
    int verbose;
    int allow_stall; /* FUZZ_ALLOW_STALL=1: close a stalled connection instead of aborting */
    uint64_t next_conn_id;

    /* the input being run */
    const uint8_t *in;
    size_t in_len, in_pos;
    uint32_t rng;
    unsigned ctl;
    int give_eof; /* the next read returns EOF */

    /* what the connection wrote */
    unsigned char *out;
    size_t out_len, out_total;
} fz;

static int fz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void fz_die(const char *what)
{
    fprintf(fz.real_stderr ? fz.real_stderr : stderr, "fuzz harness: %s\n", what);
    abort();
}

static const char *fz_at(const char *name)
{
    static char buf[PATH_MAX + 64];

    if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", fz.dir, name) >= sizeof(buf))
        fz_die("path too long");
    return buf;
}

static void fz_write_file(const char *name, const void *p, size_t n)
{
    FILE *f = fopen(fz_at(name), "wb");

    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        fz_die("cannot write a fixture file");
}

static void fz_token_hex(const char *token, char hex[65])
{
    unsigned char h[32];

    if (sg_pol_token_hash(token, strlen(token), h) != 0)
        fz_die("token hash");
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

static void fz_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x;
    FILE *f;

    if (k == NULL)
        fz_die("key generation");
    if ((x = sg_test_self_signed(k, "localhost")) == NULL)
        fz_die("certificate");
    if ((f = fopen(fz_at("server.crt"), "w")) == NULL || PEM_write_X509(f, x) != 1 ||
        fclose(f) != 0)
        fz_die("server.crt");
    if ((f = fopen(fz_at("server.key"), "w")) == NULL ||
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
        fz_die("server.key");
    X509_free(x);
    EVP_PKEY_free(k);
}

static void fz_defer_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    sg_worker_t *w = ev_userdata(loop);

    /* loop.c's loop_defer_cb, without the draining exit (the harness ends the loop). */
    sg__subreq_run_done(w);
    sg__conn_free_dead(w);
    sg__up_free_dead(w);
}

static void fz_cleanup(void)
{
    sg_worker_t *w = &fz.w;

    if (!fz.ready)
        return;
    fz.ready = 0;
    if (w->loop != NULL) {
        while (w->conns != NULL)
            sg_conn_close(w->conns);
        sg_up_close_idle(w);
        sg__subreq_run_done(w);
        sg__conn_free_dead(w);
        sg__up_free_dead(w);
        sg_up_dispose(w);
        ev_prepare_stop(w->loop, &fz.defer);
        ev_loop_destroy(w->loop);
        w->loop = NULL;
    }
    sg_chain_thread_exit();
    sg_gen_unref(w->gen);
    sg_gen_unref(fz.px.gen);
    free(fz.out);
    if (fz.dir[0] != '\0')
        nftw(fz.dir, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (fz.devnull != NULL)
        fclose(fz.devnull);
}

static void fz_init(void)
{
    static const char conf_fmt[] =
        "workers = 1;\n"
        /* server_names: the seeds of fuzz_h1 and fuzz_h2 name vc.example; fuzz_reqshape
         * mostly the certificate's localhost (proxy/reqcheck.c answers 421 to others). */
        "listen = ( { port = 8443; server_names = [\"localhost\", \"vc.example\"];\n"
        "             tls = { certificate = \"server.crt\"; private_key = \"server.key\"; }; } );\n"
        /* Never connected: the harness leaves the address unresolved (see the file head). */
        "upstream = { url = \"http://vcenter.invalid:443\"; connect_timeout_ms = 600000;\n"
        "             response_timeout_ms = 3600000; max_idle = 4;\n"
        /* One, so that requests (h2 streams, batch parts) queue for a connection. */
        "             max_connections = 1; };\n"
        /* Small limits, so that the fuzzer reaches every one of them. */
        "limits = { max_header_bytes = 2048; max_body_bytes = 4096; max_streams = 8;\n"
        "           header_timeout_ms = 3600000; body_timeout_ms = 3600000;\n"
        "           idle_timeout_ms = 3600000; max_connections = 100; };\n"
        "routes = { unmatched = \"forward\"; };\n"
        "policy = {\n"
        "  tokens = ( { id = \"op\"; sha256 = \"%s\"; subject = \"alice\"; tenant = \"t1\";\n"
        "               roles = [\"dr-operator\"]; },\n"
        "             { id = \"view\"; sha256 = \"%s\"; subject = \"bob\"; tenant = \"t2\";\n"
        "               roles = [\"viewer\"]; },\n"
        "             { id = \"force\"; sha256 = \"%s\"; subject = \"carol\"; tenant = \"t2\";\n"
        "               roles = [\"dr-operator\", \"forcer\"]; } );\n"
        "  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\",\n"
        "                                                    \"StorageViews.View\"]; },\n"
        "            { name = \"viewer\"; privileges = [\"StorageViews.View\"]; },\n"
        "            { name = \"forcer\"; privileges = [\"SMS.Force\"]; } );\n"
        "  tenants = ( { name = \"t1\"; providers = [\"vasa-1\"]; fault_domains = [\"fd-1\", "
        "\"fd-2*\"]; },\n"
        "              { name = \"t2\"; providers = [\"vasa-*\"]; fault_domains = [\"fd-*\"]; } );\n"
        "  force_privilege = \"SMS.Force\";\n"
        "};\n"
        "batch = { max_size = 3; providers = ( { moid = \"vasa-1\"; max_size = 2; } );\n"
        "          max_parallel = 2; max_parts = 8; task_key_file = \"task.key\"; };\n";
    char tmpl[64], text[8192], err[SG_CONF_ERR_MAX], h1[65], h2[65], h3[65];
    sg_worker_t *w = &fz.w;

    fz.real_stderr = stderr;
    fz.verbose = getenv("FUZZ_VERBOSE") != NULL;
    fz.allow_stall = getenv("FUZZ_ALLOW_STALL") != NULL;
    if ((fz.devnull = fopen("/dev/null", "w")) == NULL)
        fz_die("/dev/null");
    if (sg_test_mkdtemp(tmpl, sizeof(tmpl), "sg-fuzz-front") == NULL ||
        realpath(tmpl, fz.dir) == NULL)
        fz_die("mkdtemp");
    fz.ready = 1;
    atexit(fz_cleanup);
    fz_cert();
    fz_write_file("task.key", "fuzz-task-key-0123456789abcdef-0123456789", 41);
    fz_token_hex(FZ_TOKEN_OPERATOR, h1);
    fz_token_hex(FZ_TOKEN_VIEWER, h2);
    fz_token_hex(FZ_TOKEN_FORCE, h3);
    snprintf(text, sizeof(text), conf_fmt, h1, h2, h3);
    fz_write_file("fuzz.conf", text, strlen(text));
    sg_chain_compose(sg_chain_order); /* the gateway's chain, as main.c composes it */
    if (sg_gen_new(fz_at("fuzz.conf"), 0, &fz.px.gen, err, sizeof(err)) != SG_OK)
        fz_die(err);
    fz.px.conf = fz.px.gen->conf;
    /* Every connect fails here: left tracked, the first failure would mark the upstream
     * down and later inputs would take another path than when run alone (health.c). */
    for (size_t i = 0; i < fz.px.gen->nups; i++)
        fz.px.gen->ups[i].health = NULL;
    fz.px.nworkers = 1;
    fz.px.workers = w;
    sg_log_level = fz.verbose ? SG_LOG_DEBUG : SG_LOG_ERROR;

    /* sg_worker_init() without listeners or threads. */
    w->px = &fz.px;
    w->gen = sg_gen_ref(fz.px.gen);
    w->conf = w->gen->conf;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL)
        fz_die("ev_loop_new");
    ev_set_userdata(w->loop, w);
    if (sg_up_reload(w) != SG_OK)
        fz_die("out of memory");
    ev_prepare_init(&fz.defer, fz_defer_cb);
    ev_prepare_start(w->loop, &fz.defer);
    if ((fz.out = malloc(FZ_OUT_MAX)) == NULL)
        fz_die("out of memory");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!fz.ready)
        fz_init();
    return 0;
}

/* ---- the connection ---- */

/* The next read's size: the control byte picks the pattern, a tiny PRNG the sizes. */
static size_t fz_chunk(void)
{
    unsigned mode = fz.ctl & FZ_CHUNK_MASK;
    size_t left = fz.in_len - fz.in_pos, k;

    if (mode == 0)
        return left;
    if (mode == 1)
        return 1;
    fz.rng ^= fz.rng << 13;
    fz.rng ^= fz.rng >> 17;
    fz.rng ^= fz.rng << 5;
    k = 1 + fz.rng % (4u << mode);
    return k < left ? k : left;
}

/* conn_write without the socket: everything the protocol produces is taken at once. */
static int fz_write(sg_conn_t *c)
{
    size_t n;
    int rv;

    for (;;) {
        if (sg_buf_avail(&c->wbuf) == 0) {
            if (c->state == SG_CONN_OPEN && (rv = c->proto->fill(c)) < 0)
                return rv;
            if (sg_buf_avail(&c->wbuf) == 0)
                return SG_OK;
        }
        n = sg_buf_avail(&c->wbuf);
        if (fz.out_len < FZ_OUT_MAX) {
            size_t k = SG_MIN(n, FZ_OUT_MAX - fz.out_len);

            memcpy(fz.out + fz.out_len, sg_buf_head(&c->wbuf), k);
            fz.out_len += k;
        }
        fz.out_total += n;
        sg_buf_consume(&c->wbuf, n);
    }
}

/* conn_read without TLS: one chunk per wake-up, then EOF when the harness says so. */
static int fz_read(sg_conn_t *c)
{
    size_t k;
    int rv;

    if (c->state != SG_CONN_OPEN || c->eof || !c->proto->want_read(c))
        return SG_OK;
    if (fz.in_pos < fz.in_len) {
        k = fz_chunk();
        rv = c->proto->on_data(c, (const char *)fz.in + fz.in_pos, k);
        fz.in_pos += k;
        return rv;
    }
    if (fz.give_eof)
        c->eof = 1;
    return SG_OK;
}

/* conn_io_cb's order: advance, read, write, then close when done. */
static void fz_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sg_conn_t *c = io->data;
    int rv = SG_OK;

    (void)loop, (void)revents;
    c->kicked = 0;
    if (c->proto->advance != NULL)
        c->proto->advance(c);
    if (c->state == SG_CONN_OPEN)
        rv = fz_read(c);
    if (rv == SG_OK && c->state == SG_CONN_OPEN)
        rv = fz_write(c);
    if (c->state != SG_CONN_OPEN)
        return;
    if (rv < 0 || (sg_buf_avail(&c->wbuf) == 0 &&
                   (c->close_after_flush || ((c->eof || c->w->draining) && c->proto->done(c))))) {
        sg_conn_close(c);
        return;
    }
    /* conn.c's quiet release, here at every quiet wake-up instead of CONN_QUIET_S later:
     * whatever comes next must work on buffers given back. */
    if (!c->eof && !c->close_after_flush && sg_buf_avail(&c->wbuf) == 0 && c->proto->done(c)) {
        sg_buf_dispose(&c->wbuf);
        if (c->proto->release != NULL)
            c->proto->release(c);
    }
}

/* conn_timer_cb. */
static void fz_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_conn_t *c = t->data;

    (void)loop, (void)revents;
    if (c->proto->on_timeout == NULL) {
        sg_conn_close(c);
        return;
    }
    c->proto->on_timeout(c);
}

/* sg_conn_accept() after its TLS handshake, without a socket. */
static sg_conn_t *fz_conn_new(const sg_proto_ops_t *proto)
{
    sg_worker_t *w = &fz.w;
    sg_conn_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        fz_die("out of memory");
    c->w = w;
    c->conf = sg_conf_ref(w->conf);
    c->listen = &c->conf->listen[0];
    c->fd = -1;
    c->id = ++fz.next_conn_id;
    c->accept_ms = sg_now_ms();
    c->state = SG_CONN_OPEN;
    c->tls_version = "TLSv1.3";
    snprintf(c->peer, sizeof(c->peer), "192.0.2.7");
    sg_pool_init(&c->pool, 2048);
    sg_buf_init(&c->wbuf, 4u * 1024 * 1024);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    ev_init(&c->io, fz_io_cb);
    c->io.data = c;
    c->io_events = EV_READ;
    ev_init(&c->timer, fz_timer_cb);
    c->timer.data = c;
    sg_conn_set_timer(c, c->accept_ms + (uint64_t)c->conf->limits.header_timeout_ms);
    c->proto = proto;
    if (proto->init(c) != SG_OK)
        sg_conn_close(c);
    return c;
}

/* Run the loop until nothing is pending. Returns 0 when it settled. */
static int fz_settle(void)
{
    struct ev_loop *loop = fz.w.loop;

    for (int i = 0; i < FZ_MAX_ITER; i++) {
        ev_run(loop, EVRUN_NOWAIT);
        if (ev_pending_count(loop) == 0 && fz.w.sub_done == NULL && fz.w.dead == NULL &&
            fz.w.dead_up == NULL)
            return 0;
    }
    return -1;
}

/* Wake the connection as its socket would (readable). */
static void fz_wake(sg_conn_t *c)
{
    if (fz.w.conns == c && c->state == SG_CONN_OPEN)
        ev_feed_event(fz.w.loop, &c->io, EV_READ);
}

static int fz_is_open(void)
{
    return fz.w.conns != NULL;
}

/*
 * Run one connection of PROTO over IN (the control byte already taken off). Returns how
 * the connection ended: 0 it closed by itself, 1 the harness had to close it (stalled).
 */
static int fz_run(const sg_proto_ops_t *proto, const uint8_t *in, size_t n, unsigned ctl)
{
    sg_conn_t *c;
    int stalled = 0;

    fz.in = in;
    fz.in_len = n;
    fz.in_pos = 0;
    fz.ctl = ctl;
    fz.rng = 0x9e3779b9u ^ (ctl * 0x01000193u) ^ (uint32_t)n;
    fz.give_eof = 0;
    fz.out_len = fz.out_total = 0;
    fz.w.draining = 0;
    if (!fz.verbose)
        stderr = fz.devnull;

    c = fz_conn_new(proto);
    /* Input: one chunk per wake-up while the protocol wants it. */
    for (int i = 0; fz_is_open() && fz.in_pos < fz.in_len; i++) {
        FZ_CHECK(i < FZ_MAX_ITER);
        if (!c->proto->want_read(c)) {
            /* Waiting for its own answers (h1 pipelining, h2 back-pressure). */
            FZ_CHECK(fz_settle() == 0);
            if (fz_is_open() && !c->proto->want_read(c))
                break; /* stuck: nothing pending would ever read more */
            continue;
        }
        fz_wake(c);
        ev_run(fz.w.loop, EVRUN_NOWAIT);
        if (i == 0 && (ctl & FZ_DRAIN_EARLY) && fz_is_open()) {
            fz.w.draining = 1;
            if (c->proto->on_drain != NULL)
                c->proto->on_drain(c);
        }
    }
    FZ_CHECK(fz_settle() == 0);

    /* The input is used up: time passes, or the server shuts down, then the client goes. */
    if (fz_is_open() && (ctl & FZ_END_TIMEOUT)) {
        for (int i = 0; i < 3 && fz_is_open() && ev_is_active(&c->timer); i++) {
            ev_timer_stop(fz.w.loop, &c->timer);
            ev_feed_event(fz.w.loop, &c->timer, EV_TIMEOUT);
            FZ_CHECK(fz_settle() == 0);
            fz_wake(c);
            FZ_CHECK(fz_settle() == 0);
        }
    }
    if (fz_is_open() && (ctl & FZ_END_DRAIN) && !fz.w.draining) {
        fz.w.draining = 1;
        if (c->proto->on_drain != NULL)
            c->proto->on_drain(c);
        fz_wake(c);
        FZ_CHECK(fz_settle() == 0);
    }
    if (fz_is_open()) {
        fz.give_eof = 1;
        fz_wake(c);
        FZ_CHECK(fz_settle() == 0);
    }
    if (fz_is_open()) {
        /* Still open after the client's EOF with nothing pending: in the proxy it would
         * stay until a drain timeout, holding its slot of limits.max_connections. Nothing
         * here waits on an upstream (connects fail at once), so that is a leak. */
        stalled = 1;
        if (!fz.allow_stall) {
            fprintf(fz.real_stderr, "fuzz harness: the connection is still open after the "
                                    "client's EOF, with nothing pending\n");
            abort();
        }
        sg_conn_close(c);
        FZ_CHECK(fz_settle() == 0);
    }
    FZ_CHECK(fz.w.conns == NULL && fz.w.nconns == 0 && fz.w.dead == NULL &&
             fz.w.sub_done == NULL && fz.w.dead_up == NULL);
    /* Upstream connections never succeed here, so none may be pooled; and nothing may be
     * left counted or queued (a count that leaks would end all forwarding one day). */
    FZ_CHECK(fz.w.nidle == 0 && fz.w.nup == 0 && sg_up_queued(&fz.w) == 0);
    stderr = fz.real_stderr;
    if (fz.verbose)
        fprintf(stderr, "fuzz harness: %zu input bytes, %zu used, %zu output bytes%s\n", n,
                fz.in_pos, fz.out_total, stalled ? ", stalled after EOF" : "");
    return stalled;
}

#endif
