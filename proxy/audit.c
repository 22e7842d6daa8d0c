/*
 * proxy/audit.c - the single audit writer of the process (docs/design.md "Audit log").
 *
 * Workers hand records over through a lock-free stack (one atomic exchange per
 * push) and an eventfd; the writer thread takes everything queued at once,
 * chains the lines (seq, prev = SHA-256 of the previous line, audit/chain.c),
 * writes them with one write(2) and makes them durable with one
 * fdatasync(2): many requests share one sync (group commit) and no event loop
 * ever waits on the disk. A record that asked for it is then handed back to its
 * worker (another lock-free stack and an ev_async), whose callback resumes the
 * request, or refuses it when the record could not be written and fail_closed
 * is on.
 *
 * A failed write or sync cuts the file back to the last good line, so the chain
 * on disk never contains a line that was not acknowledged as durable, and the
 * next batch tries again. SIGUSR1 reopens the file (log rotation); the new file
 * continues the chain from the last hash. A torn tail left by a crash is cut at
 * start-up and reported in the log.
 */
#include "proxy/proxy.h"
#include "audit/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct sg_audit_item_s {
    sg_audit_item_t *next;
    sg_worker_t *w;  /* where the callback runs; NULL: nobody waits */
    sg_req_t *r;     /* cleared by sg_req_free when the request goes first */
    sg_audit_cb cb;
    int status;      /* 0, or a negative SG_E* */
    size_t len;
    char data[];     /* the members after prev: "time":...,"stage":... (no braces) */
};

typedef struct {
    const sg_conf_t *conf; /* the configuration the writer started with (audit is not reloadable) */
    sg_conf_t *conf_ref;
    char *path;
    int fd;
    int efd;               /* eventfd: workers -> writer */
    pthread_t thread;
    int started;
    sg_audit_item_t *head; /* atomic: pushed by workers */
    int stop, reopen;      /* atomic flags from the main thread */
    int failing;           /* atomic: the last write or sync failed */
    unsigned long long lost; /* records not written with fail_closed off */
    unsigned long long seq;
    char prev[SG_AUDIT_HASH_HEX + 1];
    off_t size;            /* bytes of good lines in the file */
    unsigned since_checkpoint;
    sg_audit_signer_t *signer;
    int syslog_fd;
    unsigned long long syncs; /* fdatasync calls, for the performance notes */
    sg_audit_item_t *retry;   /* records nobody waits for that a failed batch could not write */
    size_t nretry;
    sg_buf_t out;
} audit_t;

static audit_t audit = {.fd = -1, .efd = -1, .syslog_fd = -1};

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
    sg_audit_hash_hex(audit.out.data + start, audit.out.len - start, audit.prev);
    audit.seq++;
    return sg_buf_lit(&audit.out, "\n");
}

static void audit_syslog(const char *line, size_t n)
{
    static const int facility_default = 10; /* authpriv */
    char msg[8192], t[SG_TIME_LEN];
    int facility = audit.conf->audit.syslog.facility ? audit.conf->audit.syslog.facility >> 3
                                                     : facility_default;
    int k;

    if (audit.syslog_fd < 0)
        return;
    sg_time_rfc3339(t);
    /* RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG; severity notice. */
    k = snprintf(msg, sizeof(msg), "<%d>1 %s - smsguard %d audit - ", facility * 8 + 5, t,
                 (int)getpid());
    if (k < 0 || (size_t)k + n > sizeof(msg))
        return; /* too long for a datagram to the local socket: the file has it */
    memcpy(msg + k, line, n);
    if (send(audit.syslog_fd, msg, (size_t)k + n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        sg_log(SG_LOG_DEBUG, "audit: syslog copy: %s", strerror(errno));
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

/* ---- the writer thread ---- */

static void audit_complete(sg_audit_item_t *it, int status)
{
    sg_worker_t *w = it->w;
    sg_audit_item_t *old;

    if (w == NULL || it->cb == NULL) {
        free(it);
        return;
    }
    it->status = status;
    old = __atomic_load_n(&w->audit_done, __ATOMIC_RELAXED);
    do
        it->next = old;
    while (!__atomic_compare_exchange_n(&w->audit_done, &old, it, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
    ev_async_send(w->loop, &w->audit_async);
}

#define AUDIT_RETRY_MAX 100000 /* records kept for a retry while the disk is failing */

static void audit_batch(sg_audit_item_t *list)
{
    unsigned long long seq0 = audit.seq;
    char prev0[SG_AUDIT_HASH_HEX + 1];
    sg_audit_item_t *it, *next;
    int rv = SG_OK;

    memcpy(prev0, audit.prev, sizeof(prev0));
    /* Records a failed batch kept go first: their order is older. */
    if (audit.retry != NULL) {
        sg_audit_item_t *last = audit.retry;

        while (last->next != NULL)
            last = last->next;
        last->next = list;
        list = audit.retry;
        audit.retry = NULL;
        audit.nretry = 0;
    }
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
    for (it = list; it != NULL && rv == SG_OK; it = it->next) {
        rv = audit_line(it->data, it->len, 0);
        if (rv == SG_OK && audit.signer != NULL &&
            ++audit.since_checkpoint >= (unsigned)audit.conf->audit.checkpoint_every) {
            audit.since_checkpoint = 0;
            rv = audit_line(NULL, 0, 1);
        }
    }
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
        if (audit.syslog_fd >= 0) {
            const char *p = audit.out.data, *e = p + audit.out.len, *nl;

            for (; p < e; p = nl + 1) {
                nl = memchr(p, '\n', (size_t)(e - p));
                audit_syslog(p, (size_t)(nl - p));
            }
        }
    }
    for (it = list; it != NULL; it = next) {
        next = it->next;
        if (rv != SG_OK && it->cb == NULL && audit.nretry < AUDIT_RETRY_MAX) {
            /* Nobody waits for it (an outcome, a refusal): keep it for the next try. The
             * list is rebuilt in order: prepend, then reverse below. */
            it->next = audit.retry;
            audit.retry = it;
            audit.nretry++;
            continue;
        }
        if (rv != SG_OK)
            audit.lost++;
        audit_complete(it, rv);
    }
    if (audit.retry != NULL) {
        sg_audit_item_t *rev = NULL;

        for (it = audit.retry; it != NULL; it = next) {
            next = it->next;
            it->next = rev;
            rev = it;
        }
        audit.retry = rev;
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

static void *audit_thread(void *arg)
{
    struct pollfd pfd = {.fd = audit.efd, .events = POLLIN};
    sg_audit_item_t *list, *rev, *next;
    uint64_t v;
    char err[256];

    for (;;) {
        /* sync = "batch": the file is synced once a second, not per record; kept
         * records are retried once a second too. */
        int timeout = audit.conf->audit.sync == SG_AUDIT_SYNC_BATCH || audit.retry ? 1000 : -1;

        if (poll(&pfd, 1, timeout) == 0) {
            if (audit.retry != NULL)
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
        if (rev != NULL || audit.retry != NULL)
            audit_batch(rev);
        if (__atomic_load_n(&audit.stop, __ATOMIC_ACQUIRE) &&
            __atomic_load_n(&audit.head, __ATOMIC_ACQUIRE) == NULL)
            break;
    }
    audit_checkpoint_now();
    if (audit.conf->audit.sync != SG_AUDIT_SYNC_NONE)
        audit_sync();
    while ((list = audit.retry) != NULL) {
        audit.retry = list->next;
        audit.lost++; /* the disk never came back: the log says so at stop */
        free(list);
    }
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
    if (conf->audit.syslog.enabled) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        snprintf(sun.sun_path, sizeof(sun.sun_path), "/dev/log");
        audit.syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (audit.syslog_fd >= 0 &&
            connect(audit.syslog_fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
            sg_log(SG_LOG_WARN, "audit: syslog copy off: /dev/log: %s", strerror(errno));
            close(audit.syslog_fd);
            audit.syslog_fd = -1;
        }
    }
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
    if (audit.syslog_fd >= 0)
        close(audit.syslog_fd);
    audit.fd = audit.efd = audit.syslog_fd = -1;
    sg_audit_signer_free(audit.signer);
    audit.signer = NULL;
    sg_buf_dispose(&audit.out);
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

int sg_audit_submit(sg_req_t *r, const char *data, size_t len, sg_audit_cb cb)
{
    sg_audit_item_t *it, *old;

    if (!audit.started)
        return SG_ERR;
    it = malloc(sizeof(*it) + len);
    if (it == NULL)
        return SG_ENOMEM;
    memcpy(it->data, data, len);
    it->len = len;
    it->cb = cb;
    it->r = cb != NULL ? r : NULL;
    it->w = cb != NULL ? r->conn->w : NULL;
    it->status = 0;
    if (cb != NULL)
        r->audit_wait = it;
    old = __atomic_load_n(&audit.head, __ATOMIC_RELAXED);
    do
        it->next = old;
    while (!__atomic_compare_exchange_n(&audit.head, &old, it, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
    /* Only the push onto an empty stack wakes the writer: one syscall per batch. */
    if (old == NULL)
        audit_wake();
    return SG_OK;
}

void sg_audit_forget(sg_req_t *r)
{
    sg_audit_item_t *it = r->audit_wait;

    if (it != NULL)
        it->r = NULL; /* the completion still arrives, and only frees the item */
    r->audit_wait = NULL;
}

/* Worker side: completions from the writer. */
void sg__audit_done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sg_worker_t *w = ev_userdata(loop);
    sg_audit_item_t *it = __atomic_exchange_n(&w->audit_done, NULL, __ATOMIC_ACQUIRE), *next;

    for (; it != NULL; it = next) {
        next = it->next;
        if (it->r != NULL) {
            it->r->audit_wait = NULL;
            it->cb(it->r, it->status);
        }
        free(it);
    }
}

void sg__audit_free_done(sg_worker_t *w)
{
    sg_audit_item_t *it = __atomic_exchange_n(&w->audit_done, NULL, __ATOMIC_ACQUIRE), *next;

    for (; it != NULL; it = next) {
        next = it->next;
        free(it);
    }
}
