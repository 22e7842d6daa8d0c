/*
 * proxy/conn.c - a client connection: TLS handshake, non-blocking reads and
 * writes through OpenSSL, the connection timer, and hand-off to the protocol
 * chosen by ALPN (h2, else HTTP/1.1).
 *
 * Re-entrancy rule: front-end send_* calls only queue output and call
 * sg_conn_kick(); the actual work runs from conn_io_cb, never from inside
 * another object's callback. Closed connections are freed by the worker's
 * prepare watcher (loop.c), when no callback can still hold them.
 */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void sg__conn_free_dead(sg_worker_t *w);

#define CONN_WBUF_MAX (4u * 1024 * 1024) /* far above the high-water marks of h1/h2 */
#define CONN_LINGER_MS 2000             /* lingering close: at most this long */
#define CONN_QUIET_S 0.1                /* quiet this long: buffers are given back */

/* TLS record sizes (one record per SSL_write: SSL_MODE_ENABLE_PARTIAL_WRITE). A record
 * is decrypted only once all of it has arrived, so the first bytes of a burst go in
 * records that fit one TCP segment (1400 + TLS overhead < 1460 - TCP options) and
 * reach the client within the initial congestion window; once CONN_WARMUP_BYTES have
 * gone (h2o's threshold) the window has grown and full records cost less CPU and
 * framing. A connection whose output paused for CONN_BURST_GAP_S starts small again
 * (nghttpx's tls-dyn-rec-idle-timeout). */
#define CONN_RECORD_SMALL 1400
#define CONN_RECORD_FULL 16384
#define CONN_WARMUP_BYTES (64u * 1024)
#define CONN_BURST_GAP_S 1.0

static uint64_t conn_next_id;

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void conn_wtimer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void conn_quiet_cb(struct ev_loop *loop, ev_timer *t, int revents);

/* ---- the socket under OpenSSL ----
 *
 * A socket BIO of our own, for one reason: it remembers that the last recv()
 * returned less than OpenSSL asked for, so the socket is empty, and answers
 * "retry" without a syscall until the loop reports EV_READ again. With
 * read-ahead (tls.c) OpenSSL asks for a whole buffer at once, so a readable
 * event costs one recv() instead of a header read, a body read and an EAGAIN,
 * and a kick (an answer to send) costs no read at all. Writes are plain send().
 * BIO_eof and the retry flags behave as in OpenSSL's socket BIO. */

static BIO_METHOD *conn_bio_method;
static pthread_once_t conn_bio_once = PTHREAD_ONCE_INIT;

static int conn_bio_read(BIO *b, char *buf, int len)
{
    sg_conn_t *c = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (c->rdrained) {
        BIO_set_retry_read(b);
        return -1;
    }
    n = recv(c->fd, buf, (size_t)len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            c->rdrained = errno == EAGAIN;
            BIO_set_retry_read(b);
        }
        return -1;
    }
    if (n == 0)
        c->rd_eof = 1;
    else if (n < len)
        c->rdrained = 1;
    return (int)n;
}

static int conn_bio_write(BIO *b, const char *buf, int len)
{
    sg_conn_t *c = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)n;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    sg_conn_t *c = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return c != NULL && c->rd_eof;
    default:
        return 0;
    }
}

static int conn_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void conn_bio_init_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "smsguard conn");

    if (m == NULL || BIO_meth_set_read(m, conn_bio_read) != 1 ||
        BIO_meth_set_write(m, conn_bio_write) != 1 || BIO_meth_set_ctrl(m, conn_bio_ctrl) != 1 ||
        BIO_meth_set_create(m, conn_bio_create) != 1) {
        BIO_meth_free(m);
        return;
    }
    conn_bio_method = m;
}

static int conn_attach_bio(sg_conn_t *c)
{
    BIO *b;

    pthread_once(&conn_bio_once, conn_bio_init_method);
    if (conn_bio_method == NULL || (b = BIO_new(conn_bio_method)) == NULL)
        return SG_ENOMEM;
    BIO_set_data(b, c);
    SSL_set_bio(c->ssl, b, b); /* one reference, owned by the SSL from here */
    return SG_OK;
}

void sg_conn_accept(sg_worker_t *w, int fd, const struct sockaddr *sa, SSL_CTX *ctx, size_t li)
{
    sg_conn_t *c;
    int one = 1;

    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->ssl = SSL_new(ctx)) == NULL || conn_attach_bio(c) != SG_OK) {
        sg_log(SG_LOG_ERROR, "worker=%d: out of memory accepting a connection", w->id);
        if (c != NULL)
            SSL_free(c->ssl);
        free(c);
        close(fd);
        __atomic_sub_fetch(&w->px->nconns, 1, __ATOMIC_RELAXED);
        return;
    }
    c->w = w;
    c->conf = sg_conf_ref(w->conf);
    c->listen = &c->conf->listen[li];
    /* Until the handshake is done: the SNI callback reads the generation's vhost table. */
    c->hs_gen = sg_gen_ref(w->gen);
    c->fd = fd; /* the BIO reads c->fd from here on */
    c->counted = 1;
    c->id = __atomic_add_fetch(&conn_next_id, 1, __ATOMIC_RELAXED);
    c->accept_ms = sg_now_ms();
    c->state = SG_CONN_HANDSHAKE;
    /* The pool holds the protocol's state (h1_t, h2_t) and little else: small chunks, so
     * an idle connection carries no empty chunk space (larger objects get a chunk of
     * their own size, base/pool.c). */
    sg_pool_init(&c->pool, 512);
    sg_buf_init(&c->wbuf, CONN_WBUF_MAX);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof(c->peer));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
                  sizeof(c->peer));
    SSL_set_accept_state(c->ssl);

    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;

    ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
    /* Below every other watcher: in a loop iteration, the upstream reads, timers and
     * audit completions that queue output for this connection run first, and its one
     * conn_io_cb then writes all of it (one write round per iteration, not per event;
     * libev runs everything pending, by priority, before it polls again). */
    ev_set_priority(&c->io, EV_MINPRI);
    c->io.data = c;
    c->io_events = EV_READ;
    ev_io_start(w->loop, &c->io);
    ev_init(&c->timer, conn_timer_cb);
    c->timer.data = c;
    ev_init(&c->wtimer, conn_wtimer_cb);
    c->wtimer.data = c;
    if (ev_cb(&w->quiet_timer) == NULL) {
        ev_init(&w->quiet_timer, conn_quiet_cb);
        w->quiet_timer.data = w;
    }
    /* header_timeout_ms runs from accept, TLS handshake included (docs/design.md "Configuration"). */
    sg_conn_set_timer(c, c->accept_ms + (uint64_t)c->conf->limits.header_timeout_ms);
}

void sg_conn_set_timer(sg_conn_t *c, uint64_t at_ms)
{
    uint64_t now;

    ev_timer_stop(c->w->loop, &c->timer);
    if (at_ms == 0)
        return;
    now = sg_now_ms();
    ev_timer_set(&c->timer, at_ms > now ? (double)(at_ms - now) / 1000.0 : 0.0, 0.);
    ev_timer_start(c->w->loop, &c->timer);
}

/* limits.send_timeout_ms: a client that takes no byte of what waits in wbuf for that
 * long is cut. The timer runs only while wbuf holds bytes and is not re-armed on every
 * write: it fires at the first deadline and looks at wlast_ms (libev's lazy timer), so
 * a fast client costs a clock read per TLS record and nothing else. Whatever wbuf
 * holds is bounded by the protocols' high-water marks (h1: the upstream pauses at
 * SG_RES_HIGH_WATER; h2: H2_FILL_TARGET), so a client that does not read costs that
 * much memory until it is cut. */
static void conn_watch_send(sg_conn_t *c)
{
    if (sg_buf_avail(&c->wbuf) == 0) {
        if (ev_is_active(&c->wtimer))
            ev_timer_stop(c->w->loop, &c->wtimer);
        return;
    }
    if (ev_is_active(&c->wtimer))
        return;
    c->wlast_ms = sg_now_ms(); /* the clock starts when bytes start waiting */
    ev_timer_set(&c->wtimer, (double)c->conf->limits.send_timeout_ms / 1000.0, 0.);
    ev_timer_start(c->w->loop, &c->wtimer);
}

static void conn_wtimer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_conn_t *c = t->data;
    uint64_t now = sg_now_ms(), limit = (uint64_t)c->conf->limits.send_timeout_ms;

    (void)revents;
    if (c->state != SG_CONN_OPEN || sg_buf_avail(&c->wbuf) == 0)
        return;
    if (now - c->wlast_ms < limit) {
        ev_timer_set(t, (double)(c->wlast_ms + limit - now) / 1000.0, 0.);
        ev_timer_start(loop, t);
        return;
    }
    sg_log(SG_LOG_DEBUG,
           "conn=%" PRIu64 " took no output for %" PRIu64 " ms (%zu bytes waiting): closed",
           c->id, now - c->wlast_ms, sg_buf_avail(&c->wbuf));
    sg_m_inc(&c->w->m.send_timeouts);
    if (c->proto == &sg_h2_proto)
        sg_metrics_h2_abuse_kind(c->w, SG_H2A_SEND_TIMEOUT);
    sg_conn_close(c);
}

static void conn_update_events(sg_conn_t *c)
{
    int ev = 0;

    if (c->state == SG_CONN_CLOSED)
        return;
    if ((!c->eof && (c->state == SG_CONN_HANDSHAKE || c->proto->want_read(c))) ||
        c->write_wants_read)
        ev |= EV_READ;
    if (sg_buf_avail(&c->wbuf) > 0 || c->read_wants_write)
        ev |= EV_WRITE;
    conn_watch_send(c);
    if (ev == c->io_events)
        return;
    ev_io_stop(c->w->loop, &c->io); /* also drops a pending kick: re-feed it below */
    c->io_events = ev;
    if (ev) {
        ev_io_set(&c->io, c->fd, ev);
        ev_io_start(c->w->loop, &c->io);
    }
    if (c->kicked)
        ev_feed_event(c->w->loop, &c->io, EV_CUSTOM);
}

/* ---- quiet connections give their buffers back ----
 *
 * An idle connection should cost its socket, its SSL and protocol state, and no buffer:
 * OpenSSL's record layer alone holds about 33 KiB of read and write buffers once a
 * connection has read and written. A connection with nothing in flight and nothing to
 * write joins the worker's quiet list (oldest first); one still quiet CONN_QUIET_S later
 * gives back wbuf, OpenSSL's buffers (SSL_free_buffers, which refuses while a record is
 * half read or half written) and its protocol's (proto->release). The next request
 * allocates them again. The delay is what keeps a busy keep-alive connection (HTTP/1.1
 * is quiet between every two requests) from a malloc and free per request: while busy,
 * joining and leaving the list is a few pointer writes. */

static void conn_quiet_unlink(sg_conn_t *c)
{
    sg_worker_t *w = c->w;

    if (c->qprev != NULL)
        c->qprev->qnext = c->qnext;
    else
        w->quiet = c->qnext;
    if (c->qnext != NULL)
        c->qnext->qprev = c->qprev;
    else
        w->quiet_tail = c->qprev;
    c->qprev = c->qnext = NULL;
    c->quiet = 0;
}

/* The timer runs for the oldest quiet connection, and only while there is one. */
static void conn_quiet_arm(sg_worker_t *w)
{
    ev_tstamp after;

    if (w->quiet == NULL || ev_is_active(&w->quiet_timer) || ev_is_pending(&w->quiet_timer))
        return;
    after = w->quiet->quiet_since + CONN_QUIET_S - ev_now(w->loop);
    ev_timer_set(&w->quiet_timer, after > 0 ? after : 0., 0.);
    ev_timer_start(w->loop, &w->quiet_timer);
}

static int conn_is_quiet(sg_conn_t *c)
{
    return c->state == SG_CONN_OPEN && !c->eof && !c->close_after_flush &&
           sg_buf_avail(&c->wbuf) == 0 && c->proto->done(c);
}

static void conn_quiet_link(sg_conn_t *c)
{
    sg_worker_t *w = c->w;

    c->quiet = 1;
    c->quiet_since = ev_now(w->loop);
    c->qnext = NULL;
    c->qprev = w->quiet_tail;
    if (w->quiet_tail != NULL)
        w->quiet_tail->qnext = c;
    else
        w->quiet = c;
    w->quiet_tail = c;
    conn_quiet_arm(w);
}

static void conn_quiet_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_worker_t *w = t->data;
    ev_tstamp now = ev_now(loop) + 0.001; /* a millisecond early is as good: no re-arm */
    sg_conn_t *c;

    (void)revents;
    while ((c = w->quiet) != NULL && c->quiet_since + CONN_QUIET_S <= now) {
        conn_quiet_unlink(c);
        if (!conn_is_quiet(c))
            continue; /* output was queued since: its kick is pending and relinks it */
        sg_buf_dispose(&c->wbuf);
        if (c->ssl != NULL)
            SSL_free_buffers(c->ssl);
        if (c->proto->release != NULL)
            c->proto->release(c);
    }
    conn_quiet_arm(w);
}

/* Map an SSL_read/SSL_write failure; logs only what is worth an operator's time. */
/* SSL_get_error(3) reads the thread's error queue, so the queue must hold nothing from
 * an earlier call when SSL_read, SSL_write, SSL_do_handshake or SSL_shutdown is made.
 * It almost always holds nothing already (conn_ssl_error empties it after an error), and
 * OpenSSL 3's ERR_clear_error resets every slot of the queue whatever it holds (about a
 * thousand instructions): look before clearing. ERR_peek_error is 0 exactly when the
 * queue holds no error that SSL_get_error could see. */
static void conn_err_clear(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static int conn_ssl_error(sg_conn_t *c, int n, const char *while_)
{
    char ebuf[256];
    int e = SSL_get_error(c->ssl, n);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return e;
    case SSL_ERROR_ZERO_RETURN:
        return SG_ECLOSED;
    case SSL_ERROR_SYSCALL:
        if (errno != 0 && errno != ECONNRESET && errno != EPIPE)
            sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " %s while %s", c->id, strerror(errno), while_);
        ERR_clear_error();
        return SG_ECLOSED;
    default:
        sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " TLS error while %s: %s", c->id, while_,
               sg_tls_errstr(ebuf, sizeof(ebuf)));
        return SG_EPROTO;
    }
}

static int conn_read(sg_conn_t *c)
{
    char buf[16384];
    int n, rv;

    c->read_wants_write = 0;
    c->read_blocked = 0;
    while (c->state == SG_CONN_OPEN && !c->eof) {
        if (!c->proto->want_read(c)) {
            c->read_blocked = 1; /* resumed by conn_io_cb when the protocol wants more */
            return SG_OK;
        }
        conn_err_clear();
        n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            if ((rv = c->proto->on_data(c, buf, (size_t)n)) < 0)
                return rv;
            continue;
        }
        rv = conn_ssl_error(c, n, "reading");
        if (rv == SSL_ERROR_WANT_READ)
            return SG_OK;
        if (rv == SSL_ERROR_WANT_WRITE) {
            c->read_wants_write = 1;
            return SG_OK;
        }
        if (rv == SG_ECLOSED) {
            /* Clean or abrupt EOF: in-flight requests may still be answered if the
             * client only half-closed; the protocol's done() decides when to close. */
            c->eof = 1;
            return SG_OK;
        }
        return rv;
    }
    return SG_OK;
}

static int conn_write(sg_conn_t *c)
{
    size_t len;
    int n, rv;

    c->write_wants_read = 0;
    for (;;) {
        if (sg_buf_avail(&c->wbuf) == 0) {
            if (c->state == SG_CONN_OPEN && (rv = c->proto->fill(c)) < 0)
                return rv;
            if (sg_buf_avail(&c->wbuf) == 0)
                return SG_OK;
        }
        if (c->wpend > 0) {
            /* OpenSSL's retry rule: after WANT_WRITE or WANT_READ, the same bytes and at
             * least the same length. Nothing was consumed from wbuf and it only grows at
             * the tail; its head may move (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
            len = c->wpend;
        } else {
            if (c->burst > 0 && ev_now(c->w->loop) - c->burst_at >= CONN_BURST_GAP_S)
                c->burst = 0;
            len = SG_MIN(sg_buf_avail(&c->wbuf),
                         c->burst < CONN_WARMUP_BYTES ? CONN_RECORD_SMALL : CONN_RECORD_FULL);
        }
        conn_err_clear();
        n = SSL_write(c->ssl, sg_buf_head(&c->wbuf), (int)len);
        if (n > 0) {
            c->wpend = 0;
            sg_buf_consume(&c->wbuf, (size_t)n);
            c->burst += (size_t)n;
            c->burst_at = ev_now(c->w->loop);
            c->wlast_ms = sg_now_ms();
            continue;
        }
        rv = conn_ssl_error(c, n, "writing");
        if (rv == SSL_ERROR_WANT_WRITE) {
            c->wpend = (unsigned)len;
            return SG_OK; /* EV_WRITE is armed by conn_update_events */
        }
        if (rv == SSL_ERROR_WANT_READ) {
            c->wpend = (unsigned)len;
            c->write_wants_read = 1;
            return SG_OK;
        }
        return rv;
    }
}

static void conn_handshake(sg_conn_t *c)
{
    const unsigned char *alpn = NULL;
    unsigned alpnlen = 0;
    int n, rv;

    conn_err_clear();
    n = SSL_do_handshake(c->ssl);
    if (n != 1) {
        rv = conn_ssl_error(c, n, "handshaking");
        if (rv == SSL_ERROR_WANT_READ || rv == SSL_ERROR_WANT_WRITE) {
            int ev = rv == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;

            if (ev != c->io_events) {
                ev_io_stop(c->w->loop, &c->io);
                ev_io_set(&c->io, c->fd, ev);
                ev_io_start(c->w->loop, &c->io);
                c->io_events = ev;
            }
            return;
        }
        sg_m_inc(&c->w->m.tls_handshake_failures);
        sg_conn_close(c);
        return;
    }
    sg_m_inc(&c->w->m.tls_handshakes);
    c->tls_version = SSL_get_version(c->ssl);
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpnlen);
    c->proto = (alpnlen == 2 && memcmp(alpn, "h2", 2) == 0) ? &sg_h2_proto : &sg_h1_proto;
    c->state = SG_CONN_OPEN;
    sg_gen_unref(c->hs_gen);
    c->hs_gen = NULL;
    if (c->proto->init(c) != SG_OK) {
        sg_conn_close(c);
        return;
    }
    if (c->w->draining && c->proto->on_drain != NULL)
        c->proto->on_drain(c);
}

/* ---- lingering close (RFC 9112 9.6; nginx's lingering_close) ----
 *
 * Closing a socket that holds unread input makes the kernel send a RST, and a RST can
 * destroy what we wrote last (a 413 sent before the body was read, an HTTP/2 GOAWAY to
 * a client that floods) before the client has read it. So when the client may still
 * be sending, the connection is ended in two steps: the protocol is closed and freed,
 * TLS close_notify and a FIN follow the last answer, and input is read and dropped
 * (plain recv, no TLS) until the client's EOF or CONN_LINGER_MS. */

static void conn_linger_read(sg_conn_t *c)
{
    char buf[16384];
    ssize_t n;

    for (int i = 0; i < 64; i++) { /* 1 MiB per wake-up, then others get a turn */
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        sg_conn_close(c); /* EOF or error: the client is done */
        return;
    }
}

/* Whether the client may still be sending: the protocol said so, or input is waiting
 * (in OpenSSL's buffer or in the socket). */
static int conn_client_sending(sg_conn_t *c)
{
    char b;

    if (c->eof || c->ssl == NULL)
        return 0;
    return c->linger || SSL_has_pending(c->ssl) ||
           recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void conn_linger_start(sg_conn_t *c)
{
    c->state = SG_CONN_LINGER; /* first, as in sg_conn_close: kicks from on_close are void */
    if (c->quiet)
        conn_quiet_unlink(c);
    c->proto->on_close(c);
    conn_err_clear();
    SSL_shutdown(c->ssl); /* close_notify, through our BIO straight to the socket */
    conn_err_clear();
    shutdown(c->fd, SHUT_WR);
    ev_timer_stop(c->w->loop, &c->wtimer);
    sg_conn_set_timer(c, sg_now_ms() + CONN_LINGER_MS);
    ev_io_stop(c->w->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ);
    c->io_events = EV_READ;
    ev_io_start(c->w->loop, &c->io);
    conn_linger_read(c);
}

/* Everything a connection does happens here: handshake, protocol advance, read,
 * write, and the decision to close. */
static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sg_conn_t *c = io->data;
    int rv = SG_OK;

    if (c->quiet)
        conn_quiet_unlink(c);
    if (revents & EV_READ)
        c->rdrained = 0; /* the socket has bytes again */
    if (c->state == SG_CONN_LINGER) {
        conn_linger_read(c);
        return;
    }
    if (c->state == SG_CONN_HANDSHAKE) {
        conn_handshake(c);
        if (c->state != SG_CONN_OPEN)
            return;
    }
    c->kicked = 0; /* everything a kick asks for happens now */
    if (c->proto->advance != NULL)
        c->proto->advance(c);
    if (c->state == SG_CONN_OPEN)
        rv = conn_read(c);
    if (rv == SG_OK && c->state == SG_CONN_OPEN)
        rv = conn_write(c);
    /* Writing may have reopened the input (h2's output high-water mark): records
     * that OpenSSL already holds raise no EV_READ, so read them now. */
    if (rv == SG_OK && c->state == SG_CONN_OPEN && c->read_blocked && !c->eof &&
        c->proto->want_read(c) && SSL_has_pending(c->ssl)) {
        rv = conn_read(c);
        if (rv == SG_OK && c->state == SG_CONN_OPEN)
            rv = conn_write(c);
    }
    if (c->state != SG_CONN_OPEN)
        return;
    if (rv < 0 || (sg_buf_avail(&c->wbuf) == 0 &&
                   (c->close_after_flush || ((c->eof || c->w->draining) && c->proto->done(c))))) {
        if (rv == SG_OK && conn_client_sending(c))
            conn_linger_start(c);
        else
            sg_conn_close(c);
        return;
    }
    conn_update_events(c);
    if (conn_is_quiet(c))
        conn_quiet_link(c);
}

void sg_conn_kick(sg_conn_t *c)
{
    /* Run conn_io_cb soon, from the loop, not from the caller's stack. */
    if (c->state == SG_CONN_OPEN && !c->kicked) {
        c->kicked = 1;
        ev_feed_event(c->w->loop, &c->io, EV_CUSTOM);
    }
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_conn_t *c = t->data;

    if (c->state == SG_CONN_LINGER) {
        sg_conn_close(c); /* the client kept sending: enough */
        return;
    }
    if (c->state == SG_CONN_HANDSHAKE || c->proto->on_timeout == NULL) {
        sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " timed out during the TLS handshake", c->id);
        if (c->state == SG_CONN_HANDSHAKE)
            sg_m_inc(&c->w->m.tls_handshake_failures);
        sg_conn_close(c);
        return;
    }
    c->proto->on_timeout(c);
}

void sg_conn_close(sg_conn_t *c)
{
    sg_worker_t *w = c->w;
    int was_open = c->state == SG_CONN_OPEN; /* LINGER: closed and shut down already */

    if (c->state == SG_CONN_CLOSED)
        return;
    c->state = SG_CONN_CLOSED;
    if (c->quiet)
        conn_quiet_unlink(c);
    if (was_open)
        c->proto->on_close(c);
    /* Best effort close_notify; never wait for the peer's. (No SSL: a connection the
     * front-end fuzzers build without a socket, tests/fuzz/front_harness.h.) */
    if (was_open && c->ssl != NULL) {
        SSL_set_quiet_shutdown(c->ssl, c->eof);
        conn_err_clear();
        SSL_shutdown(c->ssl);
        conn_err_clear();
    }
    ev_io_stop(w->loop, &c->io);
    ev_clear_pending(w->loop, &c->io);
    ev_timer_stop(w->loop, &c->timer);
    ev_clear_pending(w->loop, &c->timer);
    ev_timer_stop(w->loop, &c->wtimer);
    ev_clear_pending(w->loop, &c->wtimer);
    close(c->fd);
    c->fd = -1;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    c->next = w->dead;
    c->prev = NULL;
    w->dead = c;
    if (c->counted)
        __atomic_sub_fetch(&w->px->nconns, 1, __ATOMIC_RELAXED);
    /* The last connection of a draining worker may close after the prepare watcher
     * looked: end the loop here too, or it would sleep until the drain timeout. */
    if (w->draining && w->conns == NULL)
        ev_break(w->loop, EVBREAK_ALL);
}

void sg__conn_free_dead(sg_worker_t *w)
{
    sg_conn_t *c;

    while ((c = w->dead) != NULL) {
        w->dead = c->next;
        SSL_free(c->ssl);
        sg_buf_dispose(&c->wbuf);
        sg_pool_dispose(&c->pool);
        sg_conf_unref(c->conf);
        sg_gen_unref(c->hs_gen);
        free(c);
    }
}
