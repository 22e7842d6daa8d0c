/*
 * proxy/main.c - the smsguard command: parse the command line, compose the
 * filter chain, load the configuration, build the TLS contexts, start the
 * workers and the admin listener, and turn signals into a graceful stop.
 *
 *     smsguard -c FILE        run in the foreground, logging to stderr
 *     smsguard -t -c FILE     check the configuration: exit 0, or file:line: reason and exit 1
 *     smsguard --version
 */
#include "proxy/proxy.h"
#include "filters/filter.h"

#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

static sg_proxy_t px;
static struct ev_loop *main_loop;
static ev_timer join_timer;

static void usage(FILE *f)
{
    fprintf(f, "usage: smsguard -c FILE [-t]\n"
               "       smsguard --version\n"
               "  -c, --config FILE  configuration file (libconfig)\n"
               "  -t, --test         check the configuration and exit\n");
}

/* Polls until every worker has left its loop, then ends the main loop. The admin
 * listener keeps answering 503 meanwhile. */
static void join_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    for (int i = 0; i < px.nworkers; i++)
        if (!__atomic_load_n(&px.workers[i].exited, __ATOMIC_ACQUIRE))
            return;
    ev_break(loop, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    if (__atomic_exchange_n(&px.draining, 1, __ATOMIC_RELAXED))
        return;
    sg_log(SG_LOG_INFO, "signal %d: draining (up to %d ms for in-flight requests)", s->signum,
           px.conf->limits.drain_timeout_ms);
    for (int i = 0; i < px.nworkers; i++)
        sg_worker_stop(&px.workers[i]);
    ev_timer_init(&join_timer, join_cb, 0.05, 0.05);
    ev_timer_start(loop, &join_timer);
}

/* SIGUSR1: reopen the audit and access logs after rotation (logrotate's copy-less
 * scheme). Each worker reopens its own access-log fd within 100 ms. */
static void usr1_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    sg_audit_reopen();
    sg_access_reopen();
}

/* Whether conf has a listen entry at exactly l's address and port. */
static int listen_has(const sg_conf_t *conf, const sg_conf_listen_t *l)
{
    for (size_t i = 0; i < conf->nlisten; i++)
        if (conf->listen[i].port == l->port && strcmp(conf->listen[i].address, l->address) == 0)
            return 1;
    return 0;
}

/* SIGHUP: load the file again, off the data path, and hand the result to every worker.
 * Everything that can fail is done before anything is committed: loading, then binding
 * the listen and admin addresses the new file adds. A configuration that fails, or
 * changes what needs a restart, is refused and the running one stays (nginx, nghttpx). */
static void hup_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    char err[SG_CONF_ERR_MAX], why[SG_CONF_ERR_MAX];
    const char *key;
    sg_lset_t *sets;
    sg_gen_t *g, *old = px.gen;
    int admin_fd;

    if (__atomic_load_n(&px.draining, __ATOMIC_RELAXED))
        return;
    if (sg_gen_new(px.conf->file, 1, &g, err, sizeof(err)) != SG_OK) {
        sg_log(SG_LOG_ERROR, "reload refused, the running configuration stays: %s", err);
        return;
    }
    if ((key = sg_gen_restart_needed(px.gen, g)) != NULL) {
        sg_log(SG_LOG_ERROR, "reload refused, the running configuration stays: %s: '%s' "
                             "changed, needs a restart", g->conf->file, key);
        sg_gen_unref(g);
        return;
    }
    if (sg_workers_listen_prepare(&px, g->conf, &sets, why, sizeof(why)) != SG_OK) {
        sg_log(SG_LOG_ERROR, "reload refused, the running configuration stays: %s: %s",
               g->conf->file, why);
        sg_gen_unref(g);
        return;
    }
    if (sg_admin_prepare(px.conf, g->conf, &admin_fd, why, sizeof(why)) != SG_OK) {
        sg_log(SG_LOG_ERROR, "reload refused, the running configuration stays: %s: %s",
               g->conf->file, why);
        sg_workers_listen_abort(&px, sets);
        sg_gen_unref(g);
        return;
    }
    /* Committed from here on: nothing below can fail. */
    for (int i = 0; i < px.nworkers; i++)
        sg_worker_reload(&px.workers[i], sg_gen_ref(g), &sets[i]);
    free(sets);
    sg_admin_commit(admin_fd);
    px.gen = g;
    px.conf = g->conf;
    sg_hcheck_reload();
    sg_log_level = g->conf->log.level;
    for (size_t i = 0; i < g->conf->nlisten; i++)
        if (!listen_has(old->conf, &g->conf->listen[i]))
            sg_log(SG_LOG_INFO, "listening on %s:%d (TLS, h2 and http/1.1)",
                   g->conf->listen[i].address, g->conf->listen[i].port);
    for (size_t i = 0; i < old->conf->nlisten; i++)
        if (!listen_has(g->conf, &old->conf->listen[i]))
            sg_log(SG_LOG_INFO, "no longer listening on %s:%d", old->conf->listen[i].address,
                   old->conf->listen[i].port);
    if (admin_fd >= 0)
        sg_log(SG_LOG_INFO, "admin listener on %s:%d", g->conf->admin.address,
               g->conf->admin.port);
    else if (admin_fd == -1)
        sg_log(SG_LOG_INFO, "admin listener closed");
    sg_gen_unref(old);
    sg_log(SG_LOG_INFO, "reloaded %s: new requests use the new configuration", g->conf->file);
}

/* The command line into *file and *test. Returns -1 to go on, else the exit status: 0 after
 * --version or --help, 2 after a usage error. */
static int parse_args(int argc, char **argv, const char **file, int *test)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': *file = optarg; break;
        case 't': *test = 1; break;
        case 'V':
            printf("smsguard %s (nghttp2 %s, %s)\n", SG_VERSION, nghttp2_version(0)->version_str,
                   OpenSSL_version(OPENSSL_VERSION));
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (*file == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Start what serves CONF: the audit writer, the admin listener on the main loop, then the
 * workers. Returns SG_OK, or an error (logged when there is something to say); what did
 * start is stopped by serve_stop(). */
static int serve_start(sg_conf_t *conf)
{
    char err[SG_CONF_ERR_MAX];

    if (sg_audit_start(conf, err, sizeof(err)) != SG_OK) {
        sg_log(SG_LOG_ERROR, "%s", err);
        return SG_ERR;
    }
    if (sg_admin_start(&px, main_loop, err, sizeof(err)) != SG_OK) {
        sg_log(SG_LOG_ERROR, "%s", err);
        return SG_ERR;
    }
    sg_hcheck_start(&px, main_loop);
    px.nworkers = conf->workers;
    px.workers = calloc((size_t)px.nworkers, sizeof(*px.workers));
    if (px.workers == NULL)
        return SG_ENOMEM;
    /* Bind every worker's sockets before starting any, so a bad address fails fast. */
    for (int i = 0; i < px.nworkers; i++)
        if (sg_worker_init(&px.workers[i], &px, i) != SG_OK)
            return SG_ERR;
    for (int i = 0; i < px.nworkers; i++)
        if (sg_worker_start(&px.workers[i]) != SG_OK)
            return SG_ERR;
    return SG_OK;
}

/* SIGTERM and SIGINT drain, SIGHUP reloads, SIGUSR1 reopens the logs: all on the main
 * loop, so the handlers run as ordinary callbacks, never inside a worker. */
static void signals_start(struct ev_loop *loop)
{
    static ev_signal sig_term, sig_int, sig_hup, sig_usr1;

    ev_signal_init(&sig_term, stop_cb, SIGTERM);
    ev_signal_init(&sig_int, stop_cb, SIGINT);
    ev_signal_init(&sig_hup, hup_cb, SIGHUP);
    ev_signal_start(loop, &sig_term);
    ev_signal_start(loop, &sig_int);
    ev_signal_start(loop, &sig_hup);
    ev_signal_init(&sig_usr1, usr1_cb, SIGUSR1);
    ev_signal_start(loop, &sig_usr1);
}

/* Undo serve_start(): after a failed start (FAILED), first stop the workers that did
 * start; then flush the audit log and free the workers, the admin listener and the
 * generation. */
static void serve_stop(int failed)
{
    if (px.workers != NULL && failed) {
        for (int i = 0; i < px.nworkers; i++)
            if (px.workers[i].started) {
                sg_worker_stop(&px.workers[i]);
                sg_worker_join(&px.workers[i]);
            }
    }
    /* Workers are gone: write what they queued, checkpoint, sync (docs/design.md: SIGTERM
     * flushes the audit log). */
    sg_audit_stop();
    if (px.workers != NULL) {
        for (int i = 0; i < px.nworkers; i++)
            sg_worker_dispose(&px.workers[i]);
        free(px.workers);
    }
    sg_admin_stop();
    sg_hcheck_stop();
    sg_gen_unref(px.gen);
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    char err[SG_CONF_ERR_MAX];
    int test = 0, rc;
    sg_conf_t *conf = NULL;

    if ((rc = parse_args(argc, argv, &file, &test)) >= 0)
        return rc;
    rc = 1;
    /* The gateway's filters in their one order: the core runs whatever it is given, and
     * every generation builds each filter's state (filters/filter.h). */
    sg_chain_compose(sg_chain_order);
    if (sg_gen_new(file, !test, &px.gen, err, sizeof(err)) != SG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    px.conf = conf = px.gen->conf;
    sg_log_level = conf->log.level;
    if (test) {
        fprintf(stderr, "%s: configuration is valid\n", file);
        rc = 0;
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    main_loop = ev_default_loop(EVFLAG_AUTO);
    if (serve_start(conf) != SG_OK)
        goto out;
    signals_start(main_loop);
    sg_log(SG_LOG_INFO, "smsguard %s: %d worker(s), %zu listener(s), %zu upstream(s)", SG_VERSION,
           px.nworkers, conf->nlisten, conf->nupstreams);
    for (size_t i = 0; i < conf->nupstreams; i++)
        sg_log(SG_LOG_INFO, "upstream %s: %s", conf->upstreams[i].name, conf->upstreams[i].url);
    for (size_t i = 0; i < conf->nlisten; i++)
        sg_log(SG_LOG_INFO, "listening on %s:%d (TLS, h2 and http/1.1)", conf->listen[i].address,
               conf->listen[i].port);

    ev_run(main_loop, 0);

    for (int i = 0; i < px.nworkers; i++)
        sg_worker_join(&px.workers[i]);
    sg_log(SG_LOG_INFO, "stopped");
    rc = 0;
out:
    serve_stop(rc != 0);
    return rc;
}
