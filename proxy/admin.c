/*
 * proxy/admin.c - the admin listener on the main thread: GET /healthz answers
 * 200 while serving and 503 while draining, so a balancer stops sending before
 * the process goes away. Plain HTTP on a loopback address by configuration;
 * one request per connection, bounded input, a short timeout.
 *
 * /healthz also lists each upstream of the running configuration, up or down
 * (health.c, kept current by health_check.c), but one vCenter down leaves the
 * status 200: the gateway still serves the others. GET /healthz/NAME (or
 * /healthz?upstream=NAME) is one upstream's own check: 200 up, 503 down.
 *
 * GET /metrics renders the Prometheus text exposition (metrics.c) by summing the
 * workers' counters with relaxed atomic loads: no lock, no call into a worker.
 * A large answer the socket cannot take at once is written as the socket drains.
 *
 * On reload the main thread binds a moved admin address before committing
 * (sg_admin_prepare) and swaps listeners after (sg_admin_commit); connections
 * already accepted are not touched.
 */
#include "proxy/proxy.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ADMIN_MAX_REQUEST 8192
#define ADMIN_TIMEOUT_S 5.0

typedef struct {
    ev_io io;
    ev_timer timer;
    http_parser parser;
    char url[256];
    size_t url_len;
    size_t got;
    int complete;
    sg_buf_t out; /* an answer not yet sent whole (GET /metrics) */
} admin_conn_t;

static struct {
    sg_proxy_t *px;
    struct ev_loop *loop;
    int fd;
    ev_io io;
} admin;

static void admin_close(admin_conn_t *a)
{
    ev_io_stop(admin.loop, &a->io);
    ev_timer_stop(admin.loop, &a->timer);
    close(a->io.fd);
    sg_buf_dispose(&a->out);
    free(a);
}

static int admin_on_url(http_parser *p, const char *at, size_t n)
{
    admin_conn_t *a = p->data;

    if (a->url_len + n >= sizeof(a->url))
        return -1;
    memcpy(a->url + a->url_len, at, n);
    a->url_len += n;
    return 0;
}

static int admin_on_complete(http_parser *p)
{
    admin_conn_t *a = p->data;

    a->complete = 1;
    return 0;
}

static const http_parser_settings admin_settings = {
    .on_url = admin_on_url,
    .on_message_complete = admin_on_complete,
};

static void admin_reply(admin_conn_t *a, int status, const char *reason, const char *body)
{
    char out[512];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n%s",
                     status, reason, strlen(body), body);

    /* Small enough for any socket buffer; a client that cannot take it loses it. */
    if (send(a->io.fd, out, (size_t)n, MSG_NOSIGNAL) < 0)
        sg_log(SG_LOG_DEBUG, "admin: send: %s", strerror(errno));
}

/* Send what a->out holds. 1 when all of it went, 0 when the socket is full, -1 on error. */
static int admin_send_out(admin_conn_t *a)
{
    while (sg_buf_avail(&a->out) > 0) {
        ssize_t k = send(a->io.fd, sg_buf_head(&a->out), sg_buf_avail(&a->out), MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return 0;
        if (k <= 0)
            return -1;
        sg_buf_consume(&a->out, (size_t)k);
    }
    return 1;
}

static void admin_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    admin_conn_t *a = io->data;

    if (admin_send_out(a) != 0)
        admin_close(a);
}

/* Answer with BODY (rv: how it was made; no body for HEAD), any length. Returns 1 when
 * the connection is done, 0 when the rest is written as the socket drains. */
static int admin_answer(admin_conn_t *a, int rv, int status, const char *reason,
                        const char *ctype, sg_buf_t *body)
{
    sg_buf_init(&a->out, sg_buf_avail(body) + 512);
    if (rv == SG_OK)
        rv = sg_buf_appendf(&a->out,
                            "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                            "cache-control: no-store\r\nconnection: close\r\n\r\n",
                            status, reason, ctype, sg_buf_avail(body));
    if (rv == SG_OK && a->parser.method != HTTP_HEAD)
        rv = sg_buf_append(&a->out, sg_buf_head(body), sg_buf_avail(body));
    sg_buf_dispose(body);
    if (rv != SG_OK) {
        admin_reply(a, 500, "Internal Server Error", "out of memory\n");
        return 1;
    }
    if (admin_send_out(a) != 0)
        return 1;
    ev_io_stop(admin.loop, &a->io);
    ev_io_init(&a->io, admin_write_cb, a->io.fd, EV_WRITE);
    a->io.data = a;
    ev_io_start(admin.loop, &a->io);
    return 0;
}

/* GET /metrics. Returns 1 when the connection is done, 0 when it waits to write. */
static int admin_metrics(admin_conn_t *a)
{
    sg_buf_t body;

    sg_buf_init(&body, 4u * 1024 * 1024);
    return admin_answer(a, sg_metrics_render(admin.px, &body), 200, "OK",
                        "text/plain; version=0.0.4; charset=utf-8", &body);
}

/* One upstream's state, "up" or "down (WHY, for Ns)", without a newline. */
static int admin_up_state(sg_buf_t *b, const sg_gen_up_t *gu, uint64_t now_ms)
{
    uint64_t since;
    const char *why;

    if (!sg_health_down(gu->health, &since, &why))
        return sg_buf_lit(b, "up");
    return sg_buf_appendf(b, "down (%s, for %" PRIu64 "s)", why != NULL ? why : "unreachable",
                          now_ms > since ? (now_ms - since) / 1000 : 0);
}

/* GET /healthz: the gateway's state and a line per upstream; NAME (N bytes, not NULL):
 * that upstream's state alone. Returns as admin_answer. */
static int admin_healthz(admin_conn_t *a, const char *name, size_t n)
{
    const sg_gen_t *g = admin.px->gen;
    uint64_t now = sg_now_ms();
    int status = 200, rv;
    const char *head = "ok\n";
    sg_buf_t body;

    sg_buf_init(&body, 64u * 1024);
    if (name != NULL) {
        for (size_t i = 0; i < g->nups; i++) {
            if (strlen(g->conf->upstreams[i].name) != n ||
                memcmp(g->conf->upstreams[i].name, name, n) != 0)
                continue;
            rv = admin_up_state(&body, &g->ups[i], now);
            if (rv == SG_OK)
                rv = sg_buf_lit(&body, "\n");
            status = sg_health_down(g->ups[i].health, NULL, NULL) ? 503 : 200;
            return admin_answer(a, rv, status, status == 200 ? "OK" : "Service Unavailable",
                                "text/plain", &body);
        }
        rv = sg_buf_lit(&body, "unknown upstream\n");
        return admin_answer(a, rv, 404, "Not Found", "text/plain", &body);
    }
    if (__atomic_load_n(&admin.px->draining, __ATOMIC_RELAXED)) {
        status = 503;
        head = "draining\n";
    } else if (sg_audit_failing() && admin.px->conf->audit.fail_closed) {
        status = 503;
        head = "audit log failing\n";
    } else if (sg_audit_failing()) {
        head = "ok (audit log failing, requests go on unrecorded)\n";
    }
    rv = sg_buf_append(&body, head, strlen(head));
    for (size_t i = 0; rv == SG_OK && i < g->nups; i++) {
        rv = sg_buf_appendf(&body, "upstream %s: ", g->conf->upstreams[i].name);
        if (rv == SG_OK)
            rv = admin_up_state(&body, &g->ups[i], now);
        if (rv == SG_OK)
            rv = sg_buf_lit(&body, "\n");
    }
    return admin_answer(a, rv, status, status == 200 ? "OK" : "Service Unavailable",
                        "text/plain", &body);
}

/* The upstream name URL asks about: "/healthz/NAME" or "/healthz?upstream=NAME". */
static int admin_healthz_name(const admin_conn_t *a, const char **name, size_t *n)
{
    static const char *const pfx[] = {"/healthz/", "/healthz?upstream="};

    for (size_t i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++) {
        size_t k = strlen(pfx[i]);

        if (a->url_len > k && memcmp(a->url, pfx[i], k) == 0) {
            *name = a->url + k;
            *n = a->url_len - k;
            return 1;
        }
    }
    return 0;
}

static void admin_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    admin_conn_t *a = io->data;
    char buf[2048];
    ssize_t n = read(io->fd, buf, sizeof(buf));
    size_t used, nlen = 0;
    const char *name = NULL;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        admin_close(a);
        return;
    }
    a->got += (size_t)n;
    used = http_parser_execute(&a->parser, &admin_settings, buf, (size_t)n);
    if (HTTP_PARSER_ERRNO(&a->parser) != HPE_OK || used != (size_t)n ||
        a->got > ADMIN_MAX_REQUEST) {
        if (!a->complete)
            admin_reply(a, 400, "Bad Request", "bad request\n");
        admin_close(a);
        return;
    }
    if (!a->complete)
        return;
    if ((a->url_len == 8 && memcmp(a->url, "/healthz", 8) == 0) ||
        admin_healthz_name(a, &name, &nlen)) {
        if (a->parser.method != HTTP_GET && a->parser.method != HTTP_HEAD)
            admin_reply(a, 405, "Method Not Allowed", "method not allowed\n");
        else if (!admin_healthz(a, name, nlen))
            return; /* the rest is written as the socket drains (admin_write_cb) */
    } else if (a->url_len == 8 && memcmp(a->url, "/metrics", 8) == 0) {
        if (a->parser.method != HTTP_GET && a->parser.method != HTTP_HEAD)
            admin_reply(a, 405, "Method Not Allowed", "method not allowed\n");
        else if (!admin_metrics(a))
            return; /* the rest is written as the socket drains (admin_write_cb) */
    } else {
        admin_reply(a, 404, "Not Found", "not found\n");
    }
    admin_close(a);
}

static void admin_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    admin_close(t->data);
}

static void admin_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    admin_conn_t *a;
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return;
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        close(fd);
        return;
    }
    http_parser_init(&a->parser, HTTP_REQUEST);
    a->parser.data = a;
    ev_io_init(&a->io, admin_read_cb, fd, EV_READ);
    a->io.data = a;
    ev_timer_init(&a->timer, admin_timeout_cb, ADMIN_TIMEOUT_S, 0.);
    a->timer.data = a;
    ev_io_start(loop, &a->io);
    ev_timer_start(loop, &a->timer);
}

/* A listening socket for conf's admin address, or -1 with err. */
static int admin_bind(const sg_conf_t *conf, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    char port[16];
    int fd, one = 1, rv;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    snprintf(port, sizeof(port), "%d", conf->admin.port);
    if ((rv = getaddrinfo(conf->admin.address, port, &hints, &ai)) != 0) {
        snprintf(err, errlen, "admin %s:%d: %s", conf->admin.address, conf->admin.port,
                 gai_strerror(rv));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        snprintf(err, errlen, "admin %s:%d: %s", conf->admin.address, conf->admin.port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void admin_listen_on(int fd)
{
    admin.fd = fd;
    if (fd < 0)
        return;
    ev_io_init(&admin.io, admin_accept_cb, fd, EV_READ);
    ev_io_start(admin.loop, &admin.io);
}

int sg_admin_start(sg_proxy_t *px, struct ev_loop *loop, char *err, size_t errlen)
{
    const sg_conf_t *conf = px->conf;
    int fd;

    admin.px = px;
    admin.loop = loop;
    admin.fd = -1;
    if (!conf->admin.enabled)
        return SG_OK;
    if ((fd = admin_bind(conf, err, errlen)) < 0)
        return SG_ERR;
    admin_listen_on(fd);
    return SG_OK;
}

int sg_admin_prepare(const sg_conf_t *old, const sg_conf_t *conf, int *fd, char *err,
                     size_t errlen)
{
    *fd = SG_ADMIN_SAME;
    if (old->admin.enabled == conf->admin.enabled &&
        (!conf->admin.enabled || (old->admin.port == conf->admin.port &&
                                  strcmp(old->admin.address, conf->admin.address) == 0)))
        return SG_OK;
    if (!conf->admin.enabled) {
        *fd = -1;
        return SG_OK;
    }
    /* Bound while the old one still listens: the same port on another address of this
     * host may be refused (EADDRINUSE) and then needs two reloads or a restart. */
    if ((*fd = admin_bind(conf, err, errlen)) < 0)
        return SG_ERR;
    return SG_OK;
}

void sg_admin_commit(int fd)
{
    if (fd == SG_ADMIN_SAME)
        return;
    /* Connections already accepted keep their own sockets and finish as they are. */
    sg_admin_stop();
    admin_listen_on(fd);
}

void sg_admin_stop(void)
{
    if (admin.fd >= 0) {
        ev_io_stop(admin.loop, &admin.io);
        close(admin.fd);
        admin.fd = -1;
    }
}
