/*
 * proxy/loop.c - worker threads: one libev loop each, its listening sockets,
 * graceful draining and the deferred free of closed connections.
 *
 * Each worker binds its own socket per listen entry with SO_REUSEPORT, so the
 * kernel spreads connections over workers and no accept lock exists. The main
 * thread only starts, stops (ev_async) and joins workers.
 *
 * Reload changes the listen addresses without closing any socket that stays: the
 * main thread binds the added addresses for every worker before the reload is
 * committed (a port taken elsewhere refuses the whole reload), and each worker swaps
 * to its new set in one callback, keeping the sockets, and so the accept queues, of
 * the addresses kept (nginx and nghttpx re-use inherited sockets the same way).
 */
#include "proxy/proxy.h"
#include "filters/filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Blocks (4 KiB) a worker keeps for its requests' pools and buffers (base/pool.h): a request
 * holds two or three, so this covers about a hundred in flight; what a larger burst frees
 * goes back to malloc. */
#define SG_WORKER_BLOCKS 256

void sg__conn_free_dead(sg_worker_t *w);
void sg__up_free_dead(sg_worker_t *w);

static int loop_bind(const char *addr, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    char portstr[16];
    int fd = -1, one = 1, rv;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if ((rv = getaddrinfo(addr, portstr, &hints, &ai)) != 0) {
        snprintf(err, errlen, "listen %s:%d: %s", addr, port, gai_strerror(rv));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
        snprintf(err, errlen, "listen %s:%d: %s", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void loop_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sg_worker_t *w = ev_userdata(loop);
    size_t li = (size_t)(io - w->ls.io);
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd;

    /* Accept a bounded batch per wake-up so one busy listener cannot starve the loop. */
    for (int i = 0; i < 64; i++) {
        sl = sizeof(ss);
        fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                sg_log(SG_LOG_ERROR, "worker=%d accept: %s", w->id, strerror(errno));
            return;
        }
        if (__atomic_add_fetch(&w->px->nconns, 1, __ATOMIC_RELAXED) >
            w->conf->limits.max_connections) {
            /* Refuse promptly (limits.max_connections) rather than let it queue. */
            __atomic_sub_fetch(&w->px->nconns, 1, __ATOMIC_RELAXED);
            sg_m_inc(&w->m.conns_refused);
            close(fd);
            continue;
        }
        sg_conn_accept(w, fd, (struct sockaddr *)&ss, w->gen->tls[li].ctx, li);
    }
}

/* Runs once per loop iteration before the loop sleeps: nothing is on the stack
 * any more, so closed objects can go (Redis beforeSleep). */
static void loop_defer_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    sg_worker_t *w = ev_userdata(loop);

    sg__subreq_run_done(w);
    sg__conn_free_dead(w);
    sg__up_free_dead(w);
    if (w->draining && w->conns == NULL)
        ev_break(loop, EVBREAK_ALL);
}

static void loop_drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_worker_t *w = ev_userdata(loop);

    sg_log(SG_LOG_WARN, "worker=%d drain timeout: closing %zu connection(s)", w->id, w->nconns);
    while (w->conns != NULL)
        sg_conn_close(w->conns);
    ev_break(loop, EVBREAK_ALL);
}

static int lset_has(const sg_lset_t *ls, int fd)
{
    for (size_t i = 0; i < ls->n; i++)
        if (ls->fds[i] == fd)
            return 1;
    return 0;
}

static void lset_free(sg_lset_t *ls)
{
    free(ls->fds);
    free(ls->io);
    memset(ls, 0, sizeof(*ls));
}

/* Stop accepting: every listening socket of the worker goes. Caller holds reload_mu. */
static void loop_close_listeners(sg_worker_t *w)
{
    for (size_t i = 0; i < w->ls.n; i++) {
        if (w->ls.fds[i] < 0)
            continue;
        ev_io_stop(w->loop, &w->ls.io[i]);
        close(w->ls.fds[i]);
        w->ls.fds[i] = -1;
    }
}

/* Take the generation and sockets the main thread handed over, if any. New connections
 * and requests use the generation from now on; upstream pools follow it (sg_up_reload:
 * kept for an upstream whose connection settings did not change). A socket kept from the old set is watched again at
 * once: its accept queue never closed. Caller holds reload_mu. */
static void loop_apply_pending(sg_worker_t *w)
{
    sg_gen_t *g = w->pending_gen;
    sg_lset_t old = w->ls;

    if (g == NULL)
        return;
    w->pending_gen = NULL;
    for (size_t i = 0; i < old.n; i++) {
        if (old.fds[i] < 0)
            continue;
        ev_io_stop(w->loop, &old.io[i]);
        if (!lset_has(&w->pending_ls, old.fds[i]))
            close(old.fds[i]); /* an address the new configuration dropped */
    }
    w->ls = w->pending_ls;
    memset(&w->pending_ls, 0, sizeof(w->pending_ls));
    lset_free(&old);
    for (size_t i = 0; i < w->ls.n; i++) {
        ev_io_init(&w->ls.io[i], loop_accept_cb, w->ls.fds[i], EV_READ);
        ev_io_start(w->loop, &w->ls.io[i]);
    }
    sg_gen_unref(w->gen);
    w->gen = g;
    w->conf = g->conf;
    if (sg_up_reload(w) != SG_OK)
        sg_log(SG_LOG_ERROR, "worker=%d: out of memory: upstream pools found per request", w->id);
}

static void loop_stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sg_worker_t *w = ev_userdata(loop);
    sg_conn_t *c, *cn;

    if (w->draining)
        return;
    w->draining = 1;
    /* A reload handed over just before the stop: take it, so that its sockets are
     * closed here with the others and its generation is the one drained. */
    pthread_mutex_lock(&w->reload_mu);
    loop_apply_pending(w);
    loop_close_listeners(w);
    pthread_mutex_unlock(&w->reload_mu);
    for (c = w->conns; c != NULL; c = cn) {
        cn = c->next;
        if (c->state == SG_CONN_OPEN && c->proto->on_drain != NULL)
            c->proto->on_drain(c);
        else if (c->state == SG_CONN_HANDSHAKE)
            sg_conn_close(c);
    }
    sg_up_close_idle(w);
    ev_timer_init(&w->drain_timer, loop_drain_timeout_cb,
                  (double)w->conf->limits.drain_timeout_ms / 1000.0, 0.);
    ev_timer_start(loop, &w->drain_timer);
}

static void loop_reload_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sg_worker_t *w = ev_userdata(loop);

    pthread_mutex_lock(&w->reload_mu);
    loop_apply_pending(w);
    if (w->draining)
        loop_close_listeners(w); /* never accept again once draining */
    pthread_mutex_unlock(&w->reload_mu);
}

void sg_worker_reload(sg_worker_t *w, sg_gen_t *g, sg_lset_t *ls)
{
    pthread_mutex_lock(&w->reload_mu);
    if (w->pending_gen != NULL) {
        /* Two reloads before the worker woke: the newer wins. Sockets the older one bound
         * that neither the newer nor the running set holds are nobody's now. */
        for (size_t i = 0; i < w->pending_ls.n; i++) {
            int fd = w->pending_ls.fds[i];

            if (!lset_has(ls, fd) && !lset_has(&w->ls, fd))
                close(fd);
        }
        lset_free(&w->pending_ls);
        sg_gen_unref(w->pending_gen);
    }
    w->pending_gen = g;
    w->pending_ls = *ls;
    memset(ls, 0, sizeof(*ls));
    pthread_mutex_unlock(&w->reload_mu);
    ev_async_send(w->loop, &w->reload_async);
}

/* The sockets most recently handed to w, with the configuration they were bound for:
 * the pending set when the worker has not taken it yet. Caller holds reload_mu. */
static const sg_lset_t *loop_latest(sg_worker_t *w, const sg_conf_t **conf)
{
    if (w->pending_gen != NULL) {
        *conf = w->pending_gen->conf;
        return &w->pending_ls;
    }
    *conf = w->gen->conf;
    return &w->ls;
}

static int lset_alloc(sg_lset_t *ls, size_t n)
{
    ls->n = n;
    ls->fds = malloc(n * sizeof(*ls->fds));
    ls->io = calloc(n, sizeof(*ls->io));
    if (ls->fds == NULL || ls->io == NULL) {
        lset_free(ls);
        return SG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ls->fds[i] = -1;
    return SG_OK;
}

int sg_workers_listen_prepare(sg_proxy_t *px, const sg_conf_t *conf, sg_lset_t **out, char *err,
                              size_t errlen)
{
    sg_lset_t *sets = calloc((size_t)px->nworkers, sizeof(*sets));

    *out = NULL;
    if (sets == NULL)
        goto nomem;
    for (int wi = 0; wi < px->nworkers; wi++) {
        sg_worker_t *w = &px->workers[wi];
        const sg_conf_t *cur;
        const sg_lset_t *have;

        if (lset_alloc(&sets[wi], conf->nlisten) != SG_OK)
            goto nomem;
        /* Kept addresses: the running socket, matched by the address as written. */
        pthread_mutex_lock(&w->reload_mu);
        have = loop_latest(w, &cur);
        for (size_t i = 0; i < conf->nlisten; i++)
            for (size_t j = 0; j < have->n && j < cur->nlisten; j++)
                if (have->fds[j] >= 0 && cur->listen[j].port == conf->listen[i].port &&
                    strcmp(cur->listen[j].address, conf->listen[i].address) == 0)
                    sets[wi].fds[i] = have->fds[j];
        pthread_mutex_unlock(&w->reload_mu);
        for (size_t i = 0; i < conf->nlisten; i++) {
            if (sets[wi].fds[i] >= 0)
                continue;
            sets[wi].fds[i] = loop_bind(conf->listen[i].address, conf->listen[i].port, err, errlen);
            if (sets[wi].fds[i] < 0)
                goto fail;
        }
    }
    *out = sets;
    return SG_OK;
nomem:
    snprintf(err, errlen, "listen: out of memory");
fail:
    if (sets != NULL)
        sg_workers_listen_abort(px, sets);
    return SG_ERR;
}

void sg_workers_listen_abort(sg_proxy_t *px, sg_lset_t *sets)
{
    for (int wi = 0; wi < px->nworkers; wi++) {
        sg_worker_t *w = &px->workers[wi];
        const sg_conf_t *cur;

        pthread_mutex_lock(&w->reload_mu);
        for (size_t i = 0; i < sets[wi].n; i++)
            if (sets[wi].fds[i] >= 0 && !lset_has(loop_latest(w, &cur), sets[wi].fds[i]))
                close(sets[wi].fds[i]); /* bound by the refused reload */
        pthread_mutex_unlock(&w->reload_mu);
        lset_free(&sets[wi]);
    }
    free(sets);
}

int sg_worker_init(sg_worker_t *w, sg_proxy_t *px, int id)
{
    sg_conf_t *conf = px->conf;
    char err[256];

    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->reload_mu, NULL);
    w->px = px; /* also says, for dispose, that reload_mu was initialised */
    w->id = id;
    w->gen = sg_gen_ref(px->gen);
    w->conf = w->gen->conf;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL) {
        sg_log(SG_LOG_ERROR, "worker=%d: cannot create an event loop", id);
        return SG_ERR;
    }
    ev_set_userdata(w->loop, w);
    sg_pool_cache_init(&w->blocks, SG_WORKER_BLOCKS);
    sg_metrics_worker_start(w);
    if (sg_up_reload(w) != SG_OK)
        return SG_ENOMEM;
    if (lset_alloc(&w->ls, conf->nlisten) != SG_OK)
        return SG_ENOMEM;
    for (size_t i = 0; i < w->ls.n; i++) {
        w->ls.fds[i] = loop_bind(conf->listen[i].address, conf->listen[i].port, err, sizeof(err));
        if (w->ls.fds[i] < 0) {
            sg_log(SG_LOG_ERROR, "%s", err);
            return SG_ERR;
        }
        ev_io_init(&w->ls.io[i], loop_accept_cb, w->ls.fds[i], EV_READ);
        ev_io_start(w->loop, &w->ls.io[i]);
    }
    ev_async_init(&w->stop_async, loop_stop_cb);
    ev_async_start(w->loop, &w->stop_async);
    ev_async_init(&w->reload_async, loop_reload_cb);
    ev_async_start(w->loop, &w->reload_async);
    ev_async_init(&w->audit_async, sg__audit_done_cb);
    ev_async_start(w->loop, &w->audit_async);
    /* Lowest priority: it runs after every other prepare watcher, so records made there
     * (sub-requests finished, connections freed) still leave in this iteration. */
    ev_prepare_init(&w->audit_flush, sg__audit_flush_cb);
    ev_set_priority(&w->audit_flush, EV_MINPRI);
    ev_prepare_start(w->loop, &w->audit_flush);
    ev_prepare_init(&w->defer, loop_defer_cb);
    ev_prepare_start(w->loop, &w->defer);
    return SG_OK;
}

static void *loop_thread(void *arg)
{
    sg_worker_t *w = arg;

    ev_run(w->loop, 0);
    sg__audit_flush(w); /* an ev_break from a timer skips the last prepare watchers */
    sg_chain_thread_exit();
    __atomic_store_n(&w->exited, 1, __ATOMIC_RELEASE);
    return NULL;
}

int sg_worker_start(sg_worker_t *w)
{
    if (pthread_create(&w->thread, NULL, loop_thread, w) != 0) {
        sg_log(SG_LOG_ERROR, "worker=%d: pthread_create failed", w->id);
        return SG_ERR;
    }
    w->started = 1;
    return SG_OK;
}

void sg_worker_stop(sg_worker_t *w)
{
    ev_async_send(w->loop, &w->stop_async);
}

void sg_worker_join(sg_worker_t *w)
{
    pthread_join(w->thread, NULL);
}

void sg_worker_dispose(sg_worker_t *w)
{
    if (w->loop != NULL) {
        while (w->conns != NULL)
            sg_conn_close(w->conns);
        sg_up_close_idle(w);
        sg__conn_free_dead(w);
        sg__up_free_dead(w);
        sg_metrics_worker_end(w); /* after the last request's access-log line */
        for (size_t i = 0; i < w->ls.n; i++)
            if (w->ls.fds[i] >= 0)
                close(w->ls.fds[i]);
        ev_loop_destroy(w->loop);
        w->loop = NULL;
    }
    sg_up_dispose(w);
    sg__audit_free_done(w);
    sg_pool_cache_dispose(&w->blocks); /* after the last request went */
    /* A reload the worker never took (it had already exited): close its new sockets. */
    for (size_t i = 0; i < w->pending_ls.n; i++)
        if (w->pending_ls.fds[i] >= 0 && !lset_has(&w->ls, w->pending_ls.fds[i]))
            close(w->pending_ls.fds[i]);
    lset_free(&w->pending_ls);
    lset_free(&w->ls);
    sg_gen_unref(w->pending_gen);
    w->pending_gen = NULL;
    if (w->px != NULL) {
        pthread_mutex_destroy(&w->reload_mu);
        w->px = NULL;
    }
    sg_gen_unref(w->gen);
    w->gen = NULL;
    w->conf = NULL;
}
