/*
 * proxy/loop.c - worker threads: one libev loop each, its listening sockets,
 * graceful draining and the deferred free of closed connections.
 *
 * Each worker binds its own socket per listen entry with SO_REUSEPORT, so the
 * kernel spreads connections over workers and no accept lock exists. The main
 * thread only starts, stops (ev_async) and joins workers.
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
    size_t li = (size_t)(io - w->lio);
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
            close(fd);
            continue;
        }
        sg_conn_accept(w, fd, (struct sockaddr *)&ss, w->gen->listen_ssl[li]);
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

static void loop_stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sg_worker_t *w = ev_userdata(loop);
    sg_conn_t *c, *cn;

    if (w->draining)
        return;
    w->draining = 1;
    for (size_t i = 0; i < w->nl; i++) {
        ev_io_stop(loop, &w->lio[i]);
        close(w->lfds[i]);
        w->lfds[i] = -1;
    }
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

/* A new generation from the main thread: new connections and requests use it from
 * now on; idle upstream connections belong to the old upstream settings and go. */
static void loop_reload_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sg_worker_t *w = ev_userdata(loop);
    sg_gen_t *g = __atomic_exchange_n(&w->pending_gen, NULL, __ATOMIC_ACQ_REL);

    if (g == NULL)
        return;
    sg_up_close_idle(w);
    if (w->up_session != NULL) {
        SSL_SESSION_free(w->up_session); /* the upstream may be another server now */
        w->up_session = NULL;
    }
    sg_gen_unref(w->gen);
    w->gen = g;
    w->conf = g->conf;
}

void sg_worker_reload(sg_worker_t *w, sg_gen_t *g)
{
    sg_gen_t *old = __atomic_exchange_n(&w->pending_gen, g, __ATOMIC_ACQ_REL);

    if (old != NULL)
        sg_gen_unref(old); /* two reloads before the worker woke: the newer wins */
    ev_async_send(w->loop, &w->reload_async);
}

int sg_worker_init(sg_worker_t *w, sg_proxy_t *px, int id)
{
    sg_conf_t *conf = px->conf;
    char err[256];

    memset(w, 0, sizeof(*w));
    w->px = px;
    w->id = id;
    w->gen = sg_gen_ref(px->gen);
    w->conf = w->gen->conf;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL) {
        sg_log(SG_LOG_ERROR, "worker=%d: cannot create an event loop", id);
        return SG_ERR;
    }
    ev_set_userdata(w->loop, w);
    sg_metrics_worker_start(w);
    w->nl = conf->nlisten;
    w->lfds = calloc(w->nl, sizeof(*w->lfds));
    w->lio = calloc(w->nl, sizeof(*w->lio));
    if (w->lfds == NULL || w->lio == NULL)
        return SG_ENOMEM;
    for (size_t i = 0; i < w->nl; i++)
        w->lfds[i] = -1;
    for (size_t i = 0; i < w->nl; i++) {
        w->lfds[i] = loop_bind(conf->listen[i].address, conf->listen[i].port, err, sizeof(err));
        if (w->lfds[i] < 0) {
            sg_log(SG_LOG_ERROR, "%s", err);
            return SG_ERR;
        }
        ev_io_init(&w->lio[i], loop_accept_cb, w->lfds[i], EV_READ);
        ev_io_start(w->loop, &w->lio[i]);
    }
    ev_async_init(&w->stop_async, loop_stop_cb);
    ev_async_start(w->loop, &w->stop_async);
    ev_async_init(&w->reload_async, loop_reload_cb);
    ev_async_start(w->loop, &w->reload_async);
    ev_async_init(&w->audit_async, sg__audit_done_cb);
    ev_async_start(w->loop, &w->audit_async);
    ev_prepare_init(&w->defer, loop_defer_cb);
    ev_prepare_start(w->loop, &w->defer);
    return SG_OK;
}

static void *loop_thread(void *arg)
{
    sg_worker_t *w = arg;

    ev_run(w->loop, 0);
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
        for (size_t i = 0; i < w->nl; i++)
            if (w->lfds[i] >= 0)
                close(w->lfds[i]);
        ev_loop_destroy(w->loop);
        w->loop = NULL;
    }
    if (w->up_session != NULL)
        SSL_SESSION_free(w->up_session);
    sg__audit_free_done(w);
    free(w->lfds);
    free(w->lio);
    sg_gen_unref(__atomic_exchange_n(&w->pending_gen, NULL, __ATOMIC_ACQ_REL));
    sg_gen_unref(w->gen);
    w->gen = NULL;
    w->conf = NULL;
}
