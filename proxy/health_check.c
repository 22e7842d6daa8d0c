/*
 * proxy/health_check.c - the active reachability check. On the main thread, every
 * check_interval_ms, a non-blocking TCP connect to each upstream of the running
 * generation, at the address the generation resolved, bounded by its connect_timeout_ms.
 * The verdict goes to health.c as a worker's connect would: a refused, unreachable or
 * timed-out connect marks the upstream down, a completed one brings it back at once. So
 * /healthz knows about an upstream no request has tried yet, and a vCenter that comes back
 * serves again without waiting for a client's request to be the probe.
 *
 * Reachability is TCP's only, as in upstream.c: nothing is sent, the connection is closed
 * as soon as it is made (HAProxy's plain "check"). One probe per upstream with one socket
 * at most: a configuration's 256 upstreams cost at most 256 sockets, and no thread.
 * A reload replaces the probes; the health records are by name and outlive it.
 */
#include "proxy/proxy.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    ev_timer timer; /* the next check, or the deadline of the connect in progress */
    ev_io io;       /* the connect in progress */
    int fd;         /* -1 between checks */
    const sg_gen_up_t *up;
    const sg_conf_upstream_t *uc;
} hc_probe_t;

static struct {
    struct ev_loop *loop;
    sg_proxy_t *px;
    sg_gen_t *gen; /* referenced: the probes point into it */
    hc_probe_t *probes;
    size_t n;
} hc;

static void hc_schedule(hc_probe_t *p, double after_s)
{
    ev_timer_stop(hc.loop, &p->timer);
    ev_timer_set(&p->timer, after_s, 0.);
    ev_timer_start(hc.loop, &p->timer);
}

/* The check ended: WHY is NULL when the connect completed, else the failure (a static
 * string, kept by health.c). LOCAL: the failure was ours (no socket, no local port), which
 * says nothing about the upstream. */
static void hc_done(hc_probe_t *p, const char *why, int local)
{
    ev_io_stop(hc.loop, &p->io);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    if (why == NULL)
        sg_health_ok(p->up->health);
    else if (!local)
        sg_health_failed(p->up->health, sg_now_ms(), why);
    else
        sg_log(SG_LOG_DEBUG, "upstream %s: reachability check not made: %s", p->uc->name, why);
    hc_schedule(p, p->uc->check_interval_ms / 1000.);
}

static void hc_connect(hc_probe_t *p)
{
    const struct sockaddr *sa = (const struct sockaddr *)&p->up->addr;

    p->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        hc_done(p, "no socket", 1);
        return;
    }
    if (connect(p->fd, sa, p->up->addrlen) == 0) {
        hc_done(p, NULL, 0);
        return;
    }
    if (errno == EAGAIN || errno == EADDRNOTAVAIL || errno == ENOBUFS) {
        hc_done(p, "no local port", 1);
        return;
    }
    if (errno != EINPROGRESS) {
        hc_done(p, "upstream unreachable", 0); /* the words upstream.c uses */
        return;
    }
    ev_io_set(&p->io, p->fd, EV_WRITE);
    ev_io_start(hc.loop, &p->io);
    hc_schedule(p, p->uc->connect_timeout_ms / 1000.);
}

static void hc_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    hc_probe_t *p = t->data;

    if (p->fd >= 0)
        hc_done(p, "upstream timeout", 0);
    else
        hc_connect(p);
}

static void hc_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    hc_probe_t *p = io->data;
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    hc_done(p, err == 0 ? NULL : "upstream unreachable", 0);
}

static void hc_clear(void)
{
    for (size_t i = 0; i < hc.n; i++) {
        hc_probe_t *p = &hc.probes[i];

        ev_timer_stop(hc.loop, &p->timer);
        ev_io_stop(hc.loop, &p->io);
        if (p->fd >= 0)
            close(p->fd);
    }
    free(hc.probes);
    hc.probes = NULL;
    hc.n = 0;
    sg_gen_unref(hc.gen);
    hc.gen = NULL;
}

void sg_hcheck_reload(void)
{
    sg_gen_t *g = hc.px != NULL ? hc.px->gen : NULL;

    hc_clear();
    if (g == NULL || g->nups == 0)
        return;
    hc.probes = calloc(g->nups, sizeof(*hc.probes));
    if (hc.probes == NULL) {
        sg_log(SG_LOG_ERROR, "upstream reachability checks off: out of memory");
        return;
    }
    hc.gen = sg_gen_ref(g);
    hc.n = g->nups;
    for (size_t i = 0; i < hc.n; i++) {
        hc_probe_t *p = &hc.probes[i];

        p->fd = -1;
        p->up = &g->ups[i];
        p->uc = &g->conf->upstreams[i];
        ev_init(&p->timer, hc_timer_cb);
        p->timer.data = p;
        ev_init(&p->io, hc_io_cb);
        p->io.data = p;
        /* The first check at once: /healthz is right from the start, and after a reload
         * for an upstream it adds. */
        if (p->uc->check_interval_ms > 0)
            hc_schedule(p, 0.);
    }
}

void sg_hcheck_start(sg_proxy_t *px, struct ev_loop *loop)
{
    hc.px = px;
    hc.loop = loop;
    sg_hcheck_reload();
}

void sg_hcheck_stop(void)
{
    if (hc.loop != NULL)
        hc_clear();
    hc.px = NULL;
}
