/*
 * proxy/audit.c - the single audit writer of the process (docs/design.md "Audit log").
 *
 * Workers build records straight into a per-worker batch (sg_audit_record: the buffer, no
 * copy, no allocation per record) and hand the batch over once per loop iteration, from an
 * ev_prepare watcher that runs after every other one: one push onto a lock-free stack and at
 * most one eventfd write per iteration, however many records it made. The writer thread
 * takes everything queued at once, chains the lines (seq, prev = SHA-256 of the previous
 * line, audit/chain.c, with one digest context reused), writes them with one write(2) and
 * makes them durable with one fdatasync(2): many requests share one sync (group commit) and
 * no event loop ever waits on the disk. Each batch then goes back to its worker for reuse;
 * one holding a record that somebody waits for comes back through another lock-free stack
 * and an ev_async, whose callback resumes those requests, or refuses them when the batch
 * could not be written and fail_closed is on. Batches nobody waits on come back without a
 * wake-up and are reused when the worker next needs one.
 *
 * A failed write or sync cuts the file back to the last good line, so the chain on disk
 * never contains a line that was not acknowledged as durable, and the next batch tries
 * again. SIGUSR1 reopens the file (log rotation); the new file continues the chain from the
 * last hash. A torn tail left by a crash is cut at start-up and reported in the log.
 *
 * Every line on disk is also copied to syslog when audit.syslog is on (audit/rfc5424.h), by
 * this thread, after the write, never in its way: the socket is non-blocking, a TCP stream
 * goes out of a bounded queue as the receiver takes it (octet counting, RFC 6587 3.4.1), and
 * what cannot be sent is dropped whole and counted (smsguard_audit_syslog_dropped_total).
 */
#include "proxy/proxy.h"
#include "audit/chain.h"
#include "audit/rfc5424.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* One record of a batch: its bytes end at data[end], after the previous record's. */
typedef struct {
    size_t end;
    sg_req_t *r;    /* the request that waits for it; cleared by sg_audit_forget */
    sg_audit_cb cb; /* NULL: nobody waits (an outcome, a refusal) */
} audit_rec_t;

struct sg_audit_batch_s {
    sg_audit_batch_t *next; /* the writer's queue, the lists back to the worker, its free list */
    sg_worker_t *w;         /* the worker it belongs to; NULL: the writer's retry batch */
    int status;             /* the writer's verdict: 0, or a negative SG_E* */
    size_t mark;            /* where the record being built starts */
    size_t nwait;           /* records with a callback */
    audit_rec_t *recs;
    size_t nrecs, caprecs;
    sg_buf_t data; /* the records back to back, each the members after prev ("time":...,
                    * "stage":...) without braces; sticky for workers' batches */
};

/* A batch is handed over early once it holds this much (a loop iteration that finishes
 * thousands of requests), which also bounds what a recycled batch keeps. */
#define AUDIT_BATCH_SEAL (256u * 1024)
#define AUDIT_BATCH_MAX (64u * 1024 * 1024) /* one record: its groups are bounded by max_body */
#define AUDIT_FREE_MAX 4                    /* batches a worker keeps for reuse */

typedef struct {
    const sg_conf_t *conf; /* the configuration the writer started with (audit is not reloadable) */
    sg_conf_t *conf_ref;
    char *path;
    int fd;
    int efd;               /* eventfd: workers -> writer */
    pthread_t thread;
    int started;
    sg_audit_batch_t *head; /* atomic: pushed by workers */
    int stop, reopen;      /* atomic flags from the main thread */
    int failing;           /* atomic: the last write or sync failed */
    unsigned long long lost; /* records not written with fail_closed off */
    unsigned long long seq;
    char prev[SG_AUDIT_HASH_HEX + 1];
    off_t size;            /* bytes of good lines in the file */
    unsigned since_checkpoint;
    sg_audit_signer_t *signer;
    unsigned long long syncs; /* fdatasync calls, for the performance notes */
    sg_audit_batch_t retry; /* records nobody waits for that a failed batch could not write */
    sg_audit_hasher_t hasher;
    sg_buf_t out;
} audit_t;

static audit_t audit = {.fd = -1, .efd = -1};

/* The syslog copy: the writer thread's alone, like everything above. */
#define SYSLOG_QUEUE_MAX (4u * 1024 * 1024) /* TCP: framed messages the receiver has not taken */
#define SYSLOG_BACKOFF_MIN_MS 200
#define SYSLOG_BACKOFF_MAX_MS 30000

typedef struct {
    int on;
    int fd;         /* -1: down (TCP and unix: until retry_at) */
    int connecting; /* TCP: connect(2) in progress */
    sg_syslog_addr_t addr;
    struct sockaddr_storage sa; /* resolved once at start: never a DNS wait in this thread */
    socklen_t salen;
    const char *address; /* the configured value, for the log */
    const char *app_name;
    char hostname[256];  /* RFC 5424 HOSTNAME, or "-" */
    int pri;
    long pid;
    sg_buf_t msg;        /* the message being built */
    sg_buf_t q;          /* TCP: whole frames not yet sent; the first may be partly sent */
    unsigned long long qmsgs; /* frames in q */
    size_t head_left;         /* bytes of q's first frame not sent yet; 0: none begun */
    uint64_t retry_at;   /* sg_m_now_us() of the next connect while down */
    unsigned backoff_ms;
    char down_why[128];  /* why the socket is down, for the outage's log line */
    int outage;          /* messages are being dropped: logged once when it starts and ends */
    unsigned long long outage_drops;
} syslog_t;

static syslog_t sl = {.fd = -1};

int sg_audit_enabled(void)
{
    return audit.started;
}

int sg_audit_failing(void)
{
    return __atomic_load_n(&audit.failing, __ATOMIC_RELAXED);
}

/* ---- the file ---- */

/* Open (or reopen) the file and learn where the chain stands. Called at start with no
 * thread running, and from the writer thread on SIGUSR1. */
static int audit_open(char *err, size_t errlen, int first)
{
    char tail[65536], hash[SG_AUDIT_HASH_HEX + 1];
    unsigned long long seq = 0;
    size_t torn = 0;
    ssize_t n;
    off_t size, from;
    int fd;

    fd = open(audit.path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "audit file '%s': %s", audit.path, strerror(errno));
        return SG_ERR;
    }
    size = lseek(fd, 0, SEEK_END);
    from = size > (off_t)sizeof(tail) ? size - (off_t)sizeof(tail) : 0;
    n = size > 0 ? pread(fd, tail, (size_t)(size - from), from) : 0;
    if (n < 0 || sg_audit_tail(tail, (size_t)n, &seq, hash, &torn) != 0) {
        snprintf(err, errlen, "audit file '%s': %s", audit.path,
                 n < 0 ? strerror(errno) : "the last line is not an audit record");
        close(fd);
        return SG_ERR;
    }
    if (torn > 0 && torn == (size_t)n && from > 0) {
        /* No line end in the last 64 KiB: not a torn record but a file we do not know. */
        snprintf(err, errlen, "audit file '%s': no complete record in its last 64 KiB", audit.path);
        close(fd);
        return SG_ERR;
    }
    if (torn > 0) {
        /* A crash cut the last line short: it was never acknowledged, so nothing was
         * forwarded on its strength. Cut it so that the chain goes on cleanly. */
        sg_log(SG_LOG_WARN, "audit file '%s': removing a torn last line of %zu bytes", audit.path,
               torn);
        if (ftruncate(fd, size - (off_t)torn) != 0) {
            snprintf(err, errlen, "audit file '%s': %s", audit.path, strerror(errno));
            close(fd);
            return SG_ERR;
        }
        size -= (off_t)torn;
    }
    if (audit.fd >= 0)
        close(audit.fd);
    audit.fd = fd;
    audit.size = size;
    if (size > 0 || first) {
        /* A file with records continues its own chain; a new empty file after
         * rotation continues the chain of the file before it. */
        if (size > 0 || seq > 0) {
            audit.seq = seq;
            memcpy(audit.prev, hash, sizeof(hash));
        } else if (first) {
            audit.seq = 0;
            memset(audit.prev, '0', SG_AUDIT_HASH_HEX);
            audit.prev[SG_AUDIT_HASH_HEX] = '\0';
        }
    }
    return SG_OK;
}

/* Append one chained line to audit.out; advances seq/prev. */
static int audit_line(const char *data, size_t len, int is_checkpoint)
{
    size_t start = audit.out.len;
    char t[SG_TIME_LEN];
    int rv;

    if (is_checkpoint) {
        sg_time_rfc3339(t);
        rv = sg_audit_checkpoint(audit.signer, &audit.out, audit.seq + 1, audit.prev, t);
    } else {
        rv = sg_audit_prefix(&audit.out, audit.seq + 1, audit.prev);
        if (rv == SG_OK)
            rv = sg_buf_append(&audit.out, data, len);
        if (rv == SG_OK)
            rv = sg_buf_lit(&audit.out, "}");
    }
    if (rv != SG_OK)
        return rv;
    sg_audit_hasher_hex(&audit.hasher, audit.out.data + start, audit.out.len - start, audit.prev);
    audit.seq++;
    return sg_buf_lit(&audit.out, "\n");
}

/* ---- the syslog copy ---- */

static void syslog_drop(unsigned long long n, const char *why)
{
    if (n == 0)
        return;
    sg_m_add(&sg_metrics_audit.syslog_dropped, n);
    sl.outage_drops += n;
    if (!sl.outage) {
        sl.outage = 1;
        sg_log(SG_LOG_WARN,
               "audit: syslog copy to %s failing (%s): copies are dropped until it recovers; the "
               "audit file has every record",
               sl.address, why);
    }
}

static void syslog_recovered(void)
{
    if (!sl.outage)
        return;
    sg_log(SG_LOG_INFO, "audit: syslog copy to %s working again; %llu cop%s dropped meanwhile",
           sl.address, sl.outage_drops, sl.outage_drops == 1 ? "y was" : "ies were");
    sl.outage = 0;
    sl.outage_drops = 0;
}

/* Closes the socket; what TCP had queued is lost with the connection (a frame cut in the
 * middle cannot be resumed on another one, and the ones after it would reach the receiver
 * late and out of time order). The next attempt is after the back-off. */
static void syslog_down(const char *why)
{
    if (sl.fd >= 0)
        close(sl.fd);
    sl.fd = -1;
    sl.connecting = 0;
    snprintf(sl.down_why, sizeof(sl.down_why), "%s", why);
    syslog_drop(sl.qmsgs, why);
    sl.qmsgs = 0;
    sl.head_left = 0;
    sg_buf_reset(&sl.q);
    sl.retry_at = sg_m_now_us() + (uint64_t)sl.backoff_ms * 1000;
    sl.backoff_ms = sl.backoff_ms * 2 > SYSLOG_BACKOFF_MAX_MS ? SYSLOG_BACKOFF_MAX_MS
                                                               : sl.backoff_ms * 2;
}

static void syslog_connect(void)
{
    int tcp = sl.addr.transport == SG_SYSLOG_TCP;

    sl.fd = socket(sl.sa.ss_family,
                   (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sl.fd < 0) {
        syslog_down(strerror(errno));
        return;
    }
    if (connect(sl.fd, (struct sockaddr *)&sl.sa, sl.salen) == 0) {
        if (!tcp)
            return; /* a datagram socket: recovered once a message goes through */
        syslog_recovered();
        return;
    }
    if (tcp && errno == EINPROGRESS) {
        sl.connecting = 1;
        return;
    }
    syslog_down(strerror(errno));
}

/* Takes k sent bytes off q, counting the frames that are now wholly sent: each starts with
 * its decimal length and a space, which q always holds whole (frames go in whole). */
static void syslog_consume(size_t k)
{
    while (k > 0) {
        size_t take;

        if (sl.head_left == 0) {
            const char *p = sg_buf_head(&sl.q);
            size_t len = 0, i = 0;

            for (; p[i] != ' '; i++)
                len = len * 10 + (size_t)(p[i] - '0');
            sl.head_left = i + 1 + len;
        }
        take = k < sl.head_left ? k : sl.head_left;
        sg_buf_consume(&sl.q, take);
        sl.head_left -= take;
        k -= take;
        if (sl.head_left == 0)
            sl.qmsgs--;
    }
}

/* Hands q to the kernel as far as it takes it. */
static void syslog_send(void)
{
    while (sg_buf_avail(&sl.q) > 0) {
        ssize_t k =
            send(sl.fd, sg_buf_head(&sl.q), sg_buf_avail(&sl.q), MSG_DONTWAIT | MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* POLLOUT tells when there is room */
        if (k <= 0) {
            syslog_down(k == 0 ? "connection closed" : strerror(errno));
            return;
        }
        sl.backoff_ms = SYSLOG_BACKOFF_MIN_MS; /* the receiver takes data: a good link */
        syslog_consume((size_t)k);
    }
}

/* One line of the file (without its '\n') to syslog. */
static void syslog_copy(const char *line, size_t n)
{
    int rv;

    sg_buf_reset(&sl.msg);
    rv = sg_rfc5424_audit(&sl.msg, sl.pri, sl.hostname, sl.app_name, sl.pid, line, n);
    if (rv != SG_OK) {
        syslog_drop(1, rv == SG_ETOOBIG ? "a record too long" : "out of memory");
        return;
    }
    if (sl.addr.transport != SG_SYSLOG_TCP) {
        if (sl.fd < 0) {
            syslog_drop(1, sl.down_why);
            return;
        }
        int err;

        if (send(sl.fd, sl.msg.data, sl.msg.len, MSG_DONTWAIT | MSG_NOSIGNAL) ==
            (ssize_t)sl.msg.len) {
            syslog_recovered();
            return;
        }
        err = errno;
        syslog_drop(1, strerror(err));
        /* A restarted local daemon made a new socket: connect to it after the back-off. UDP
         * errors (an ICMP unreachable, a full buffer) pass with the next datagram. */
        if (sl.addr.transport == SG_SYSLOG_UNIX &&
            (err == ECONNREFUSED || err == ENOTCONN || err == ENOENT))
            syslog_down(strerror(err));
        return;
    }
    if (sl.fd < 0) {
        syslog_drop(1, sl.down_why);
        return;
    }
    /* RFC 6587 3.4.1: MSG-LEN SP SYSLOG-MSG. A frame goes into q whole or not at all. */
    {
        char len[24];
        int k = snprintf(len, sizeof(len), "%zu ", sl.msg.len);

        /* Room for both parts first: a length without its message would corrupt the stream. */
        if (sg_buf_avail(&sl.q) + (size_t)k + sl.msg.len > SYSLOG_QUEUE_MAX ||
            sg_buf_reserve(&sl.q, (size_t)k + sl.msg.len) != SG_OK ||
            sg_buf_append(&sl.q, len, (size_t)k) != SG_OK ||
            sg_buf_append(&sl.q, sl.msg.data, sl.msg.len) != SG_OK) {
            syslog_drop(1, "the receiver does not keep up");
            return;
        }
        sl.qmsgs++;
    }
}

/* The writer's poll entry for the syslog socket, and how long until it wants a reconnect. */
static int syslog_poll(struct pollfd *pfd)
{
    uint64_t now;

    pfd->fd = -1;
    pfd->events = 0;
    pfd->revents = 0;
    if (!sl.on)
        return -1;
    if (sl.fd < 0) {
        now = sg_m_now_us();
        return sl.retry_at > now ? (int)((sl.retry_at - now + 999) / 1000) : 0;
    }
    if (sl.addr.transport != SG_SYSLOG_TCP)
        return -1;
    pfd->fd = sl.fd;
    /* POLLIN while connected: a receiver never sends, so readable means it closed. */
    pfd->events = sl.connecting ? POLLOUT : POLLIN | (sg_buf_avail(&sl.q) > 0 ? POLLOUT : 0);
    return -1;
}

static void syslog_service(short revents)
{
    char sink[512];
    int err = 0;
    socklen_t len = sizeof(err);

    if (!sl.on)
        return;
    if (sl.fd < 0) {
        if (sg_m_now_us() >= sl.retry_at)
            syslog_connect();
        return;
    }
    if (revents == 0)
        return;
    if (sl.connecting) {
        if (getsockopt(sl.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            syslog_down(strerror(err));
            return;
        }
        sl.connecting = 0;
        syslog_recovered();
        syslog_send();
        return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t k = recv(sl.fd, sink, sizeof(sink), MSG_DONTWAIT);

        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            syslog_down(k == 0 ? "connection closed" : strerror(errno));
            return;
        }
    }
    if (revents & POLLOUT)
        syslog_send();
}

/* Resolves the address and makes the first connection attempt. A failure to connect is not
 * one to start: the copy comes up when the receiver does. */
static int syslog_start(const sg_conf_t *conf, char *err, size_t errlen)
{
    const char *why;
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV}, *ai = NULL;
    int rv;

    memset(&sl, 0, sizeof(sl));
    sl.fd = -1;
    if (!conf->audit.syslog.enabled)
        return SG_OK;
    sl.address = conf->audit.syslog.address;
    sl.app_name = conf->audit.syslog.app_name;
    if (sg_conf_syslog_address(sl.address, &sl.addr, &why) != 0) {
        snprintf(err, errlen, "audit.syslog.address: %s", why);
        return SG_ERR;
    }
    if (sl.addr.transport == SG_SYSLOG_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&sl.sa;

        sun->sun_family = AF_UNIX;
        /* The check allowed at most 107 bytes: the path and its NUL fit. */
        memcpy(sun->sun_path, sl.addr.host, strnlen(sl.addr.host, sizeof(sun->sun_path) - 1));
        sl.salen = sizeof(*sun);
    } else {
        hints.ai_socktype = sl.addr.transport == SG_SYSLOG_TCP ? SOCK_STREAM : SOCK_DGRAM;
        if ((rv = getaddrinfo(sl.addr.host, sl.addr.port, &hints, &ai)) != 0) {
            snprintf(err, errlen, "audit.syslog.address '%s': %s", sl.address, gai_strerror(rv));
            return SG_ERR;
        }
        memcpy(&sl.sa, ai->ai_addr, ai->ai_addrlen);
        sl.salen = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    /* RFC 5424 6.2.4: HOSTNAME is printable ASCII without spaces, at most 255 bytes. */
    if (gethostname(sl.hostname, sizeof(sl.hostname) - 1) != 0 || sl.hostname[0] == '\0')
        snprintf(sl.hostname, sizeof(sl.hostname), "-");
    for (char *p = sl.hostname; *p; p++)
        if (*p < 33 || *p > 126)
            *p = '_';
    /* LOG_AUTHPRIV etc. are the facility already shifted left by 3 (<syslog.h>); notice. */
    sl.pri = conf->audit.syslog.facility + 5;
    sl.pid = (long)getpid();
    sg_buf_init(&sl.msg, SG_AUDIT_MAX_LINE + 4096);
    sg_buf_init(&sl.q, SYSLOG_QUEUE_MAX);
    sl.backoff_ms = SYSLOG_BACKOFF_MIN_MS;
    sl.on = 1;
    syslog_connect();
    sg_log(SG_LOG_INFO, "audit: a copy of every record goes to syslog at %s", sl.address);
    return SG_OK;
}

/* At stop: what TCP still holds gets up to half a second. */
static void syslog_finish(void)
{
    uint64_t until = sg_m_now_us() + 500000;
    struct pollfd pfd;

    while (sl.on && sl.fd >= 0 && sg_buf_avail(&sl.q) > 0 && sg_m_now_us() < until) {
        syslog_poll(&pfd);
        if (pfd.fd >= 0 && poll(&pfd, 1, 100) > 0)
            syslog_service(pfd.revents);
    }
    if (sl.fd >= 0)
        close(sl.fd);
    syslog_drop(sl.qmsgs, "stopping");
    sl.fd = -1;
    sl.qmsgs = 0;
    sg_buf_dispose(&sl.msg);
    sg_buf_dispose(&sl.q);
    sl.on = 0;
}

/* fdatasync(2), counted and timed for smsguard_audit_sync_duration_seconds. */
static int audit_sync(void)
{
    uint64_t t0 = sg_m_now_us();
    int rv = fdatasync(audit.fd);

    audit.syncs++;
    sg_m_observe(&sg_metrics_audit.sync, sg_m_now_us() - t0);
    return rv;
}

/* Write audit.out (whole lines) and make it durable as audit.sync says. */
static int audit_flush(void)
{
    size_t off = 0, n = audit.out.len;
    ssize_t k = -1; /* a failed sync with nothing written reports errno */

    while (off < n) {
        k = write(audit.fd, audit.out.data + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            goto fail;
        off += (size_t)k;
    }
    if (audit.conf->audit.sync == SG_AUDIT_SYNC_ALWAYS && audit_sync() != 0)
        goto fail;
    audit.size += (off_t)n;
    {
        uint64_t lines = 0;

        for (const char *q = audit.out.data, *e = q + n; (q = memchr(q, '\n', (size_t)(e - q)));
             q++)
            lines++;
        sg_m_add(&sg_metrics_audit.records, lines);
    }
    /* Only what is on disk is copied, so the copies are a chain too (the file's own). */
    if (sl.on) {
        const char *p = audit.out.data, *e = p + n, *nl;

        for (; p < e; p = nl + 1) {
            nl = memchr(p, '\n', (size_t)(e - p));
            syslog_copy(p, (size_t)(nl - p));
        }
        if (sl.fd >= 0 && !sl.connecting && sg_buf_avail(&sl.q) > 0)
            syslog_send();
    }
    return SG_OK;
fail:
    sg_log(SG_LOG_ERROR, "audit file '%s': %s while writing %zu record byte(s)", audit.path,
           k == 0 ? "short write" : strerror(errno), n);
    /* Never leave a half-written or unsynced line in the chain. */
    if (ftruncate(audit.fd, audit.size) != 0)
        sg_log(SG_LOG_ERROR, "audit file '%s': cannot cut back to the last good line: %s",
               audit.path, strerror(errno));
    return SG_ERR;
}

/* ---- batches ---- */

/* Room for one more record entry. Returns SG_OK or SG_ENOMEM. */
static int audit_recs_reserve(sg_audit_batch_t *b)
{
    audit_rec_t *n;
    size_t cap;

    if (b->nrecs < b->caprecs)
        return SG_OK;
    cap = b->caprecs ? 2 * b->caprecs : 32;
    if ((n = realloc(b->recs, cap * sizeof(*n))) == NULL)
        return SG_ENOMEM;
    b->recs = n;
    b->caprecs = cap;
    return SG_OK;
}

static void audit_batch_free(sg_audit_batch_t *b)
{
    sg_buf_dispose(&b->data);
    free(b->recs);
    free(b);
}

/* Appends the record bytes[0..n) to the writer's retry batch. Returns SG_OK or SG_ENOMEM. */
static int audit_retry_keep(const char *bytes, size_t n)
{
    sg_audit_batch_t *rb = &audit.retry;
    int rv = audit_recs_reserve(rb);

    if (rv == SG_OK)
        rv = sg_buf_append(&rb->data, bytes, n);
    if (rv != SG_OK)
        return rv;
    rb->recs[rb->nrecs].end = rb->data.len;
    rb->recs[rb->nrecs].r = NULL;
    rb->recs[rb->nrecs].cb = NULL;
    rb->nrecs++;
    return SG_OK;
}

/* ---- the writer thread ---- */

/* b goes back to its worker: through audit_done and a wake-up when a request waits for one
 * of its records, else quietly onto audit_spare for the worker's next batch. */
static void audit_complete(sg_audit_batch_t *b, int status)
{
    sg_worker_t *w = b->w;
    sg_audit_batch_t **list = b->nwait > 0 ? &w->audit_done : &w->audit_spare, *old;

    b->status = status;
    old = __atomic_load_n(list, __ATOMIC_RELAXED);
    do
        b->next = old;
    while (!__atomic_compare_exchange_n(list, &old, b, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (b->nwait > 0)
        ev_async_send(w->loop, &w->audit_async);
}

#define AUDIT_RETRY_MAX 100000 /* records kept for a retry while the disk is failing */

/* Chains every record of b into audit.out, with the checkpoints they call for. */
static int audit_lines(const sg_audit_batch_t *b)
{
    size_t start = 0;
    int rv = SG_OK;

    for (size_t i = 0; i < b->nrecs && rv == SG_OK; start = b->recs[i++].end) {
        rv = audit_line(b->data.data + start, b->recs[i].end - start, 0);
        if (rv == SG_OK && audit.signer != NULL &&
            ++audit.since_checkpoint >= (unsigned)audit.conf->audit.checkpoint_every) {
            audit.since_checkpoint = 0;
            rv = audit_line(NULL, 0, 1);
        }
    }
    return rv;
}

/* Writes the kept records, then the batches of list (in arrival order), as one group
 * commit, and hands every batch back with the outcome. */
static void audit_batch(sg_audit_batch_t *list)
{
    unsigned long long seq0 = audit.seq;
    char prev0[SG_AUDIT_HASH_HEX + 1];
    sg_audit_batch_t *b, *next;
    int rv = SG_OK;

    memcpy(prev0, audit.prev, sizeof(prev0));
    /* The file was removed (or rotated without SIGUSR1): never write into an unlinked
     * file nobody can read. Reopen at its path; the chain continues. */
    {
        struct stat st;
        char err[256];

        if (fstat(audit.fd, &st) == 0 && st.st_nlink == 0) {
            sg_log(SG_LOG_WARN, "audit file '%s' was removed: reopening it", audit.path);
            if (audit_open(err, sizeof(err), 0) != SG_OK)
                sg_log(SG_LOG_ERROR, "%s", err);
        }
    }
    sg_buf_reset(&audit.out);
    /* Records a failed batch kept go first: their order is older. */
    rv = audit_lines(&audit.retry);
    for (b = list; b != NULL && rv == SG_OK; b = b->next)
        rv = audit_lines(b);
    if (rv == SG_OK)
        rv = audit_flush();
    if (rv != SG_OK) {
        /* The batch is not on disk: the chain stays where it was. */
        audit.seq = seq0;
        memcpy(audit.prev, prev0, sizeof(prev0));
        sg_m_inc(&sg_metrics_audit.write_failures);
        if (!__atomic_exchange_n(&audit.failing, 1, __ATOMIC_RELAXED))
            sg_log(SG_LOG_ERROR, "audit log failing: %s", audit.conf->audit.fail_closed
                                                              ? "stop-test requests are refused"
                                                              : "requests go on unrecorded");
    } else {
        if (__atomic_exchange_n(&audit.failing, 0, __ATOMIC_RELAXED))
            sg_log(SG_LOG_INFO, "audit log writable again");
        audit.retry.nrecs = 0;
        sg_buf_reset(&audit.retry.data);
    }
    for (b = list; b != NULL; b = next) {
        next = b->next;
        if (rv != SG_OK) {
            size_t start = 0;

            /* Nobody waits for a record without a callback (an outcome, a refusal): keep
             * it for the next try, after the ones kept before. One that a request waited
             * for is refused now (fail_closed) or went on unrecorded: it is lost. */
            for (size_t i = 0; i < b->nrecs; start = b->recs[i++].end)
                if (b->recs[i].cb != NULL || audit.retry.nrecs >= AUDIT_RETRY_MAX ||
                    audit_retry_keep(b->data.data + start, b->recs[i].end - start) != SG_OK)
                    audit.lost++;
        }
        audit_complete(b, rv);
    }
}

static void audit_checkpoint_now(void)
{
    if (audit.signer == NULL || audit.since_checkpoint == 0)
        return;
    sg_buf_reset(&audit.out);
    if (audit_line(NULL, 0, 1) == SG_OK && audit_flush() == SG_OK)
        audit.since_checkpoint = 0;
}

/* Every guarded request waits for this thread (the decision record is write-ahead), and
 * it shares its CPU with the event loops, which are busy exactly when records pile up: at
 * equal weight the scheduler lets a busy loop keep the CPU while the writer, woken by the
 * eventfd or back from fdatasync, waits its turn, and every request of the batch waits with
 * it. Measured (bench set-up, 20000 req/s over HTTP/2, all threads on one CPU): nice -10
 * took the mean time a guarded request spends in smsguard from 2.7-3.9 ms to 1.7-2.5 ms
 * and the client's p99 from 8.5-16.7 ms to 5.9-9.4 ms. The writer uses little CPU of its
 * own (hashing and two syscalls per batch), so the weight costs the loops next to nothing.
 * Lowering a nice value needs CAP_SYS_NICE (root, or the capability given by the service
 * manager); without it the writer runs at the process's priority, as before. */
#define AUDIT_WRITER_NICE (-10)

static void audit_priority(void)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);

    if (setpriority(PRIO_PROCESS, (id_t)tid, AUDIT_WRITER_NICE) == 0)
        sg_log(SG_LOG_INFO, "audit writer at nice %d", AUDIT_WRITER_NICE);
    else
        sg_log(SG_LOG_INFO, "audit writer at the process's priority (nice %d: %s)",
               AUDIT_WRITER_NICE, strerror(errno));
}

static void *audit_thread(void *arg)
{
    struct pollfd pfd[2] = {{.fd = audit.efd, .events = POLLIN}};
    sg_audit_batch_t *list, *rev, *next;
    uint64_t v, tick_at = 0;
    char err[256];

    audit_priority();
    for (;;) {
        /* sync = "batch": the file is synced once a second without records, not per record;
         * kept records are retried once a second too. tick_at keeps that second when the
         * syslog socket wakes the loop meanwhile. */
        int tick = audit.conf->audit.sync == SG_AUDIT_SYNC_BATCH || audit.retry.nrecs;
        int timeout = -1, sl_timeout = syslog_poll(&pfd[1]);
        uint64_t now = sg_m_now_us();

        if (!tick) {
            tick_at = 0;
        } else {
            if (tick_at == 0)
                tick_at = now + 1000000;
            timeout = tick_at > now ? (int)((tick_at - now + 999) / 1000) : 0;
        }
        if (sl_timeout >= 0 && (timeout < 0 || sl_timeout < timeout))
            timeout = sl_timeout;
        pfd[0].revents = 0;
        poll(pfd, 2, timeout);
        syslog_service(pfd[1].revents);
        if (pfd[0].revents & POLLIN) {
            tick_at = 0; /* records came: the second starts again, as a poll timeout did */
        } else {
            if (tick_at == 0 || sg_m_now_us() < tick_at)
                continue; /* the syslog socket's business, or EINTR */
            tick_at = 0;
            if (audit.retry.nrecs > 0)
                audit_batch(NULL);
            else if (audit.size > 0)
                audit_sync();
            if (!__atomic_load_n(&audit.stop, __ATOMIC_ACQUIRE))
                continue;
        }
        if (read(audit.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            continue;
        if (__atomic_exchange_n(&audit.reopen, 0, __ATOMIC_ACQ_REL)) {
            audit_checkpoint_now();
            if (audit_open(err, sizeof(err), 0) != SG_OK)
                sg_log(SG_LOG_ERROR, "audit reopen failed, still writing the old file: %s", err);
            else
                sg_log(SG_LOG_INFO, "audit file '%s' reopened at seq %llu", audit.path, audit.seq);
        }
        list = __atomic_exchange_n(&audit.head, NULL, __ATOMIC_ACQUIRE);
        /* The stack gives newest first; the file wants arrival order. */
        for (rev = NULL; list != NULL; list = next) {
            next = list->next;
            list->next = rev;
            rev = list;
        }
        if (rev != NULL || audit.retry.nrecs > 0)
            audit_batch(rev);
        if (__atomic_load_n(&audit.stop, __ATOMIC_ACQUIRE) &&
            __atomic_load_n(&audit.head, __ATOMIC_ACQUIRE) == NULL)
            break;
    }
    audit_checkpoint_now();
    if (audit.conf->audit.sync != SG_AUDIT_SYNC_NONE)
        audit_sync();
    syslog_finish();
    audit.lost += audit.retry.nrecs; /* the disk never came back: the log says so at stop */
    audit.retry.nrecs = 0;
    return NULL;
}

static void audit_wake(void)
{
    uint64_t one = 1;

    if (write(audit.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        sg_log(SG_LOG_ERROR, "audit: cannot wake the writer: %s", strerror(errno));
}

/* ---- the API ---- */

int sg_audit_start(sg_conf_t *conf, char *err, size_t errlen)
{
    if (conf->audit.file == NULL || conf->audit.file[0] == '\0')
        return SG_OK;
    audit.conf_ref = sg_conf_ref(conf);
    audit.conf = conf;
    audit.path = conf->audit.file;
    sg_buf_init(&audit.out, 64u * 1024 * 1024);
    sg_buf_init(&audit.retry.data, 64u * 1024 * 1024);
    if (sg_audit_hasher_init(&audit.hasher) != SG_OK) {
        snprintf(err, errlen, "audit: cannot set up SHA-256");
        return SG_ERR;
    }
    if (conf->audit.signing_key != NULL && conf->audit.signing_key[0] != '\0' &&
        sg_audit_signer_new(conf->audit.signing_key, &audit.signer, err, errlen) != 0)
        return SG_ERR;
    if (audit_open(err, errlen, 1) != SG_OK)
        return SG_ERR;
    audit.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (audit.efd < 0) {
        snprintf(err, errlen, "audit: eventfd: %s", strerror(errno));
        return SG_ERR;
    }
    if (syslog_start(conf, err, errlen) != SG_OK)
        return SG_ERR;
    if (pthread_create(&audit.thread, NULL, audit_thread, NULL) != 0) {
        snprintf(err, errlen, "audit: cannot start the writer thread");
        return SG_ERR;
    }
    audit.started = 1;
    sg_log(SG_LOG_INFO, "audit log '%s' at seq %llu (sync %s%s)", audit.path, audit.seq,
           conf->audit.sync == SG_AUDIT_SYNC_ALWAYS  ? "always"
           : conf->audit.sync == SG_AUDIT_SYNC_BATCH ? "batch"
                                                     : "none",
           audit.signer ? ", signed checkpoints" : "");
    return SG_OK;
}

void sg_audit_stop(void)
{
    if (audit.started) {
        __atomic_store_n(&audit.stop, 1, __ATOMIC_RELEASE);
        audit_wake();
        pthread_join(audit.thread, NULL);
        audit.started = 0;
        sg_log(SG_LOG_INFO, "audit log closed at seq %llu after %llu sync(s)%s", audit.seq,
               audit.syncs, audit.lost ? "; some records were lost" : "");
    }
    if (audit.fd >= 0)
        close(audit.fd);
    if (audit.efd >= 0)
        close(audit.efd);
    audit.fd = audit.efd = -1;
    sg_audit_signer_free(audit.signer);
    audit.signer = NULL;
    sg_buf_dispose(&audit.out);
    sg_buf_dispose(&audit.retry.data);
    free(audit.retry.recs);
    memset(&audit.retry, 0, sizeof(audit.retry));
    sg_audit_hasher_dispose(&audit.hasher);
    if (audit.conf_ref != NULL)
        sg_conf_unref(audit.conf_ref);
    audit.conf_ref = NULL;
}

void sg_audit_reopen(void)
{
    if (!audit.started)
        return;
    __atomic_store_n(&audit.reopen, 1, __ATOMIC_RELEASE);
    audit_wake();
}

/* ---- the worker side ---- */

/* b is back on its worker: kept for the next batch (emptied; a buffer that grew past the
 * seal gives its memory back), or freed when the worker keeps enough. */
static void audit_recycle(sg_worker_t *w, sg_audit_batch_t *b)
{
    if (w->audit_nfree >= AUDIT_FREE_MAX) {
        audit_batch_free(b);
        return;
    }
    b->nrecs = b->nwait = 0;
    b->status = 0;
    if (b->data.cap > 2 * AUDIT_BATCH_SEAL)
        sg_buf_dispose(&b->data);
    else
        sg_buf_reset(&b->data);
    b->next = w->audit_free;
    w->audit_free = b;
    w->audit_nfree++;
}

/* An empty batch for w: one it used before when there is one. NULL without memory. */
static sg_audit_batch_t *audit_batch_get(sg_worker_t *w)
{
    sg_audit_batch_t *b, *next;

    if (w->audit_free == NULL) {
        for (b = __atomic_exchange_n(&w->audit_spare, NULL, __ATOMIC_ACQUIRE); b; b = next) {
            next = b->next;
            audit_recycle(w, b);
        }
    }
    if ((b = w->audit_free) != NULL) {
        w->audit_free = b->next;
        w->audit_nfree--;
        return b;
    }
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return NULL;
    b->w = w;
    sg_buf_init_sticky(&b->data, AUDIT_BATCH_MAX);
    return b;
}

/* Hands w's batch to the writer: one push, and one eventfd write when the writer's queue
 * was empty (otherwise a wake-up is already on its way). */
static void audit_handover(sg_worker_t *w)
{
    sg_audit_batch_t *b = w->audit_batch, *old;

    if (b == NULL || b->nrecs == 0)
        return;
    w->audit_batch = NULL;
    old = __atomic_load_n(&audit.head, __ATOMIC_RELAXED);
    do
        b->next = old;
    while (!__atomic_compare_exchange_n(&audit.head, &old, b, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
    if (old == NULL)
        audit_wake();
}

sg_buf_t *sg_audit_record(sg_req_t *r)
{
    sg_worker_t *w = r->conn->w;
    sg_audit_batch_t *b = w->audit_batch;

    if (!audit.started)
        return NULL;
    if (b != NULL && b->data.len >= AUDIT_BATCH_SEAL) {
        audit_handover(w);
        b = NULL;
    }
    if (b == NULL && (b = w->audit_batch = audit_batch_get(w)) == NULL)
        return NULL;
    b->mark = b->data.len;
    return &b->data;
}

int sg_audit_commit(sg_req_t *r, sg_audit_cb cb)
{
    sg_audit_batch_t *b = r->conn->w->audit_batch;
    int rv = sg_buf_err(&b->data);

    if (rv == SG_OK && b->data.len == b->mark)
        rv = SG_ERR; /* an empty record: a caller's mistake, never a line */
    if (rv == SG_OK)
        rv = audit_recs_reserve(b);
    if (rv != SG_OK) {
        /* Only this record goes: the batch keeps the others and takes new ones. */
        b->data.len = b->mark;
        b->data.err = SG_OK;
        return rv;
    }
    b->recs[b->nrecs].end = b->data.len;
    b->recs[b->nrecs].r = cb != NULL ? r : NULL;
    b->recs[b->nrecs].cb = cb;
    b->nrecs++;
    if (cb != NULL) {
        b->nwait++;
        r->audit_wait = b;
    }
    return SG_OK;
}

void sg_audit_forget(sg_req_t *r)
{
    sg_audit_batch_t *b = r->audit_wait;

    if (b == NULL)
        return;
    /* The completion still arrives and only recycles the batch. The writer never reads r,
     * so clearing it while the batch is in the writer's hands races with nothing. */
    for (size_t i = 0; i < b->nrecs; i++)
        if (b->recs[i].r == r)
            b->recs[i].r = NULL;
    r->audit_wait = NULL;
}

void sg__audit_flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    audit_handover(ev_userdata(loop));
}

void sg__audit_flush(sg_worker_t *w)
{
    audit_handover(w);
}

/* Worker side: batches with waiting records, back from the writer. */
void sg__audit_done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sg_worker_t *w = ev_userdata(loop);
    sg_audit_batch_t *b = __atomic_exchange_n(&w->audit_done, NULL, __ATOMIC_ACQUIRE), *rev, *next;

    /* The stack gives newest first: resume in the order the requests asked. */
    for (rev = NULL; b != NULL; b = next) {
        next = b->next;
        b->next = rev;
        rev = b;
    }
    for (b = rev; b != NULL; b = next) {
        next = b->next;
        /* Re-read every entry: a callback may free another waiting request of the batch
         * (its connection closed), and sg_audit_forget clears that one. */
        for (size_t i = 0; i < b->nrecs; i++) {
            sg_req_t *r = b->recs[i].r;

            if (r != NULL) {
                b->recs[i].r = NULL;
                r->audit_wait = NULL;
                b->recs[i].cb(r, b->status);
            }
        }
        audit_recycle(w, b);
    }
}

void sg__audit_free_done(sg_worker_t *w)
{
    sg_audit_batch_t *lists[] = {
        __atomic_exchange_n(&w->audit_done, NULL, __ATOMIC_ACQUIRE),
        __atomic_exchange_n(&w->audit_spare, NULL, __ATOMIC_ACQUIRE),
        w->audit_free,
        w->audit_batch,
    };
    sg_audit_batch_t *b, *next;

    w->audit_free = w->audit_batch = NULL;
    w->audit_nfree = 0;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        for (b = lists[i]; b != NULL; b = next) {
            next = i == 3 ? NULL : b->next;
            audit_batch_free(b);
        }
}
