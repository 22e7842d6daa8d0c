/*
 * tests/sim/sms_sim.c - sms-sim's main: the command line, the listening
 * socket, the TLS context, signals and the --record file.
 *
 *   sms-sim --listen ADDR:PORT [--tls-cert F --tls-key F] [--max-batch N]
 *           [--no-batch-size] [--task-ms N] [--task-max-batch N] [--delay-ms N]
 *           [--record FILE] [--require-session] [--login USER:PASS]
 *
 * Connections are sim_conn.c's, answers sim_sms.c's; see tests/sim/README.md
 * for what the simulator answers. Once listening it prints one line,
 * "sms-sim listening on ADDR:PORT" with the port actually bound (so tests can
 * pass port 0), and runs until SIGTERM or SIGINT, then exits 0.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <openssl/err.h>

#define SIM_ACCEPT_PAUSE_S 0.1 /* back-off when out of file descriptors */

/* The listener and its watchers; lives in main()'s frame. */
typedef struct {
    sim_srv_t *srv;
    int fd;
    ev_io accept;
    ev_timer resume; /* restarts accept after EMFILE */
    ev_signal sigterm, sigint;
} sim_listener_t;

/* ---- the record file ------------------------------------------------------ */

/*
 * Appends the request as one JSON line and flushes it, before the request is
 * answered, so a test that has its answer can read the record:
 * {"time":..,"conn":N,"method":..,"path":..,"headers":[[n,v],..],"body":..}.
 * A failure is logged and the request still answered.
 */
void sim_record(sim_srv_t *srv, const sim_req_t *req)
{
    struct timespec ts;
    char now[64];
    sim_buf_t b;

    if (srv->record == NULL)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    sim_time_fmt(now, sizeof(now), &ts, 1);
    sim_buf_init(&b, SIM_MAX_JSON_BYTES);
    sim_buf_addf(&b, "{\"time\":\"%s\",\"conn\":%llu,", now, (unsigned long long)req->conn);
    sim_buf_add_req_json(&b, req);
    sim_buf_adds(&b, "}\n");
    if (b.err)
        sim_log("conn=%llu: request not recorded: out of memory", (unsigned long long)req->conn);
    else if (fwrite(b.p, 1, b.len, srv->record) != b.len || fflush(srv->record) != 0)
        sim_log("cannot write the record file: %s", strerror(errno));
    sim_buf_dispose(&b);
}

/* ---- TLS ------------------------------------------------------------------ */

/* Offers http/1.1 by ALPN. A client offering only h2 gets no ALPN answer and
 * is expected to fall back (RFC 7301 allows either; refusing would only hide
 * the proxy's own fallback logic from tests). */
static int sim_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel;

    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void sim_log_openssl(const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char msg[256] = "unknown error";

    if (e != 0)
        ERR_error_string_n(e, msg, sizeof(msg));
    sim_log("%s %s: %s", what, file, msg);
    ERR_clear_error();
}

/* A TLS 1.2+ server context from PEM files, or NULL (logged). */
static SSL_CTX *sim_tls_new(const char *cert, const char *key)
{
    static const unsigned char sid_ctx[] = "sms-sim";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        sim_log_openssl("cannot create a TLS context for", cert);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A client that drops the connection without close_notify is an EOF,
     * not an error; renegotiation is a DoS lever no test needs. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    /* Session resumption, so the proxy's upstream resumption can be tested. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, sim_alpn_cb, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        sim_log_openssl("cannot load certificate", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        sim_log_openssl("cannot load private key", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        sim_log_openssl("private key does not match certificate", cert);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- the listener ---------------------------------------------------------- */

/*
 * Binds and listens on "ADDR:PORT" or "[ADDR6]:PORT" (numeric only).
 * Writes the address actually bound, in the same form, to `bound`.
 * Returns the non-blocking socket, or -1 (logged).
 */
static int sim_listen(const char *spec, char *bound, size_t boundlen)
{
    char host[256], hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
    const char *arg = spec, *port, *colon;
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    size_t hlen;
    int fd = -1, one = 1, rv;

    if (spec[0] == '[') {
        colon = strstr(spec, "]:");
        hlen = colon != NULL ? (size_t)(colon - spec - 1) : 0;
        port = colon != NULL ? colon + 2 : NULL;
        spec++;
    } else {
        colon = strrchr(spec, ':');
        hlen = colon != NULL ? (size_t)(colon - spec) : 0;
        port = colon != NULL ? colon + 1 : NULL;
    }
    if (port == NULL || hlen == 0 || hlen >= sizeof(host) || *port == '\0') {
        sim_log("--listen wants ADDR:PORT or [ADDR6]:PORT, not \"%s\"", arg);
        goto fail;
    }
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    rv = getaddrinfo(host, port, &hints, &ai);
    if (rv != 0) {
        sim_log("--listen %s:%s: %s", host, port, gai_strerror(rv));
        goto fail;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        sim_log("cannot listen on %s:%s: %s", host, port, strerror(errno));
        goto fail;
    }
    rv = getnameinfo((struct sockaddr *)&ss, sslen, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                     NI_NUMERICHOST | NI_NUMERICSERV);
    if (rv != 0) {
        sim_log("cannot name the listening address: %s", gai_strerror(rv));
        goto fail;
    }
    snprintf(bound, boundlen, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, pbuf);
    freeaddrinfo(ai);
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    if (ai != NULL)
        freeaddrinfo(ai);
    return -1;
}

static void sim_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    sim_listener_t *l = w->data;

    ev_io_start(loop, &l->accept);
}

static void sim_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sim_listener_t *l = w->data;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd;

    for (;;) {
        sslen = sizeof(ss);
        fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            sim_conn_accept(l->srv, fd, (struct sockaddr *)&ss, sslen);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The pending connection stays queued and the listener stays
             * readable: without a pause this would spin at 100% CPU. */
            sim_log("accept: %s; pausing accept", strerror(errno));
            ev_io_stop(loop, &l->accept);
            ev_timer_set(&l->resume, SIM_ACCEPT_PAUSE_S, 0.);
            ev_timer_start(loop, &l->resume);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            sim_log("accept: %s", strerror(errno));
        }
        return;
    }
}

static void sim_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* ---- the command line ------------------------------------------------------ */

static void sim_usage(FILE *f)
{
    fputs("usage: sms-sim --listen ADDR:PORT [--tls-cert F --tls-key F] [--max-batch N]\n"
          "               [--no-batch-size] [--task-ms N] [--task-max-batch N] [--delay-ms N]\n"
          "               [--record FILE] [--require-session] [--login USER:PASS]\n",
          f);
}

/* A whole decimal number in [lo, hi], or -1 after logging. */
static int sim_parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        sim_log("%s wants a number from %ld to %ld, not \"%s\"", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Fills conf from argv. Returns 0, 1 after --help, or -1 after logging. */
static int sim_parse_args(int argc, char **argv, sim_conf_t *conf)
{
    enum { O_LISTEN = 256, O_CERT, O_KEY, O_MAXB, O_NOBS, O_TASK, O_TMAXB, O_DELAY, O_REC, O_REQS, O_LOGIN, O_HELP };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"tls-cert", required_argument, NULL, O_CERT},
        {"tls-key", required_argument, NULL, O_KEY},
        {"max-batch", required_argument, NULL, O_MAXB},
        {"no-batch-size", no_argument, NULL, O_NOBS},
        {"task-ms", required_argument, NULL, O_TASK},
        {"task-max-batch", required_argument, NULL, O_TMAXB},
        {"delay-ms", required_argument, NULL, O_DELAY},
        {"record", required_argument, NULL, O_REC},
        {"require-session", no_argument, NULL, O_REQS},
        {"login", required_argument, NULL, O_LOGIN},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *colon;
    int o;

    memset(conf, 0, sizeof(*conf));
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_LISTEN: conf->listen = optarg; break;
        case O_CERT: conf->tls_cert = optarg; break;
        case O_KEY: conf->tls_key = optarg; break;
        case O_MAXB:
            if (sim_parse_long("--max-batch", optarg, 1, 1000000, &conf->max_batch) != 0)
                return -1;
            break;
        case O_NOBS: conf->no_batch_size = 1; break;
        case O_TASK:
            if (sim_parse_long("--task-ms", optarg, 0, 86400000, &conf->task_ms) != 0)
                return -1;
            break;
        case O_TMAXB:
            if (sim_parse_long("--task-max-batch", optarg, 1, 1000000, &conf->task_max_batch) != 0)
                return -1;
            break;
        case O_DELAY:
            if (sim_parse_long("--delay-ms", optarg, 0, SIM_MAX_DELAY_MS, &conf->delay_ms) != 0)
                return -1;
            break;
        case O_REC: conf->record = optarg; break;
        case O_REQS: conf->require_session = 1; break;
        case O_LOGIN:
            colon = strchr(optarg, ':');
            if (colon == NULL || colon == optarg) {
                sim_log("--login wants USER:PASS");
                return -1;
            }
            free(conf->login_user);
            conf->login_user = strndup(optarg, (size_t)(colon - optarg));
            conf->login_pass = colon + 1;
            if (conf->login_user == NULL)
                return -1;
            break;
        case O_HELP: sim_usage(stdout); return 1;
        default: sim_log("unknown or incomplete option \"%s\"", argv[optind - 1]); return -1;
        }
    }
    if (optind != argc) {
        sim_log("unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    if (conf->listen == NULL) {
        sim_log("--listen is required");
        return -1;
    }
    if ((conf->tls_cert == NULL) != (conf->tls_key == NULL)) {
        sim_log("--tls-cert and --tls-key go together");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    sim_conf_t conf;
    sim_srv_t srv;
    sim_listener_t l;
    char bound[NI_MAXHOST + NI_MAXSERV + 4];
    int rc = 1;

    memset(&srv, 0, sizeof(srv));
    memset(&l, 0, sizeof(l));
    l.fd = -1;
    switch (sim_parse_args(argc, argv, &conf)) {
    case 0: break;
    case 1: rc = 0; goto out;
    default:
        sim_usage(stderr);
        rc = 2;
        goto out;
    }
    /* A peer that resets mid-write must not kill the process (SSL_write
     * cannot pass MSG_NOSIGNAL). */
    signal(SIGPIPE, SIG_IGN);
    srv.loop = ev_default_loop(EVFLAG_AUTO);
    srv.conf = &conf;
    if (srv.loop == NULL) {
        sim_log("cannot create the event loop");
        goto out;
    }
    if (conf.tls_cert != NULL && (srv.ssl_ctx = sim_tls_new(conf.tls_cert, conf.tls_key)) == NULL)
        goto out;
    if (conf.record != NULL) {
        srv.record = fopen(conf.record, "ae"); /* "e": close-on-exec */
        if (srv.record == NULL) {
            sim_log("cannot open --record %s: %s", conf.record, strerror(errno));
            goto out;
        }
    }
    srv.app = sim_app_new(&conf);
    if (srv.app == NULL) {
        sim_log("out of memory");
        goto out;
    }
    l.srv = &srv;
    l.fd = sim_listen(conf.listen, bound, sizeof(bound));
    if (l.fd < 0)
        goto out;
    ev_io_init(&l.accept, sim_accept_cb, l.fd, EV_READ);
    l.accept.data = &l;
    ev_io_start(srv.loop, &l.accept);
    ev_timer_init(&l.resume, sim_resume_cb, SIM_ACCEPT_PAUSE_S, 0.);
    l.resume.data = &l;
    ev_signal_init(&l.sigterm, sim_signal_cb, SIGTERM);
    ev_signal_start(srv.loop, &l.sigterm);
    ev_signal_init(&l.sigint, sim_signal_cb, SIGINT);
    ev_signal_start(srv.loop, &l.sigint);

    fprintf(stderr, "sms-sim listening on %s\n", bound);
    ev_run(srv.loop, 0);
    rc = 0;
out:
    sim_conn_free_all(&srv);
    if (l.fd >= 0)
        close(l.fd);
    sim_app_free(srv.app);
    if (srv.record != NULL && fclose(srv.record) != 0) {
        sim_log("cannot write the record file: %s", strerror(errno));
        rc = 1;
    }
    SSL_CTX_free(srv.ssl_ctx);
    if (srv.loop != NULL)
        ev_loop_destroy(srv.loop);
    free(conf.login_user);
    return rc;
}
