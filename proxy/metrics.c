/*
 * proxy/metrics.c - the counters behind GET /metrics (Prometheus text format
 * 0.0.4) and the access log (docs/design.md log.access).
 *
 * Writers are the data path's owners (metrics.h): each worker counts into its
 * own sg_metrics_t, the audit writer into sg_metrics_audit. The admin listener
 * renders the sum over workers here. Label values come from small fixed tables
 * and the configuration's upstream names (at most SG_M_UP_NAMES of them, the rest
 * as one), so a client can never create a new time series.
 *
 * The access log is one JSON object per finished request (not sub-requests),
 * buffered per worker and written by that worker with write(2) to its own
 * O_APPEND fd: past 16 KiB, on a 100 ms timer and when the worker ends.
 * SIGUSR1 bumps a generation; each worker reopens its fd on its next tick.
 */
#include "proxy/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#define ACCESS_FLUSH_BYTES 16384
#define ACCESS_BUF_MAX (1024 * 1024) /* lines beyond this while the disk is stuck are dropped */
#define METRICS_TICK_S 0.1

sg_metrics_audit_t sg_metrics_audit;
static unsigned access_reopen_gen; /* atomic: bumped by SIGUSR1 */

/* Upper bounds in seconds, as printed in le="...". */
static const char *const m_le[SG_M_NBUCKETS] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                                "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                                "2.5",   "5",      "10",    "30"};
static const uint64_t m_le_us[SG_M_NBUCKETS] = {1000,   2500,    5000,    10000,   25000,
                                                50000,  100000,  250000,  500000,  1000000,
                                                2500000, 5000000, 10000000, 30000000};

static const char *const m_protos[SG_M_NPROTO] = {"h1", "h2"};
static const char *const m_decisions[SG_M_NDECISION] = {"none", "allow", "deny"};
static const char *const m_dry_decisions[2] = {"allow", "deny"}; /* sg_metrics_t.dry_runs */
/* Codes smsguard answers itself plus the common upstream ones; the rest is "other". */
static const int m_status_codes[SG_M_NSTATUS - 2] = {200, 201, 202, 204, 304, 400, 401, 403,
                                                     404, 405, 408, 413, 500, 502, 503, 504};
static const char *const m_faults[SG_M_NFAULTS] = {
    "InvalidRequest", "InvalidArgument", "NotAuthenticated", "NoPermission", "TooMany",
    "ManagedObjectNotFound", "SystemError", "ProviderUnavailable", "other"};
static const char *const m_h2_abuse[SG_M_NH2ABUSE] = {
    "protocol_error", "flood", "bad_preface", "continuation_flood", "rapid_reset",
    "settings_flood", "ping_flood", "priority_flood", "window_update_flood", "empty_data_flood",
    "header_list", "stream_timeout", "send_timeout"};
static const char *const m_hdr_drop[SG_M_NHDROP] = {"identity", "override", "unlisted"};
static const char *const m_refuse[SG_M_NREFUSE] = {"method", "target", "authority",
                                                    "misdirected"};

/* ---- upstream slots ---- */

/* Main thread only: gen.c gives the slots, the renderer reads the names. A worker only
 * ever sees slot numbers, which reach it inside a generation. */
static char m_up_names[SG_M_UP_NAMES][SG_CONF_NAME_MAX + 1];
static int m_up_nnames;

int sg_metrics_up_slot(const char *name)
{
    for (int i = 0; i < m_up_nnames; i++)
        if (strcmp(m_up_names[i], name) == 0)
            return i + 1;
    if (m_up_nnames == SG_M_UP_NAMES || strlen(name) > SG_CONF_NAME_MAX)
        return SG_M_UP_OTHER;
    strcpy(m_up_names[m_up_nnames], name);
    return ++m_up_nnames;
}

static const char *m_up_label(int slot)
{
    if (slot == SG_M_UP_NONE)
        return "";
    return slot == SG_M_UP_OTHER ? "(other)" : m_up_names[slot - 1];
}

/* The worker's counters for SLOT, made on first use. NULL: out of memory, not counted. */
static sg_m_up_t *m_up(sg_worker_t *w, int slot)
{
    sg_m_up_t *m;

    if (slot < 0 || slot >= SG_M_NUP)
        slot = SG_M_UP_OTHER;
    if ((m = __atomic_load_n(&w->m.up[slot], __ATOMIC_RELAXED)) != NULL)
        return m;
    /* Zeroed before it is published: the renderer never sees it half made. */
    if ((m = calloc(1, sizeof(*m))) != NULL)
        __atomic_store_n(&w->m.up[slot], m, __ATOMIC_RELEASE);
    return m;
}

/* The request's upstream slot: "" until sg_req_check routed it. */
static int m_req_slot(const sg_req_t *r)
{
    if (r->upstream == NULL)
        return SG_M_UP_NONE;
    return r->gen != NULL && r->up_idx < r->gen->nups ? r->gen->ups[r->up_idx].mslot
                                                      : SG_M_UP_OTHER;
}

/* ---- counting ---- */

uint64_t sg_m_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void sg_m_observe(sg_hist_t *h, uint64_t us)
{
    size_t i = 0;

    while (i < SG_M_NBUCKETS && us > m_le_us[i])
        i++;
    if (i < SG_M_NBUCKETS)
        sg_m_inc(&h->bucket[i]);
    sg_m_add(&h->sum_us, us);
    sg_m_inc(&h->count); /* last: a scrape never sees more in the buckets than counted */
}

void sg_metrics_h2_abuse(sg_worker_t *w, int rv)
{
    int k = SG_H2A_PROTOCOL_ERROR;

    if (rv == NGHTTP2_ERR_FLOODED)
        k = SG_H2A_FLOOD;
    else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
        k = SG_H2A_BAD_PREFACE;
#ifdef SG_HAVE_NGHTTP2_MAX_CONTINUATIONS
    else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        k = SG_H2A_CONTINUATION_FLOOD;
#endif

    if (rv == NGHTTP2_ERR_NOMEM || rv == NGHTTP2_ERR_CALLBACK_FAILURE)
        return; /* our failure, not the peer's */
    sg_m_inc(&w->m.h2_abuse[k]);
}

void sg_metrics_h2_abuse_kind(sg_worker_t *w, int kind)
{
    if (kind >= 0 && kind < SG_M_NH2ABUSE)
        sg_m_inc(&w->m.h2_abuse[kind]);
}

void sg_metrics_hdr_dropped(sg_worker_t *w, int cls)
{
    switch (cls) {
    case SG_HDR_DROP_IDENTITY:
        sg_m_inc(&w->m.hdr_dropped[SG_HDROP_IDENTITY]);
        break;
    case SG_HDR_DROP_OVERRIDE:
        sg_m_inc(&w->m.hdr_dropped[SG_HDROP_OVERRIDE]);
        break;
    case SG_HDR_DROP_UNLISTED:
        sg_m_inc(&w->m.hdr_dropped[SG_HDROP_UNLISTED]);
        break;
    default:
        break; /* hop-by-hop, credentials, the gateway's own: every request has some */
    }
}

void sg_metrics_refused(sg_worker_t *w, int reason)
{
    if (reason >= 0 && reason < SG_M_NREFUSE)
        sg_m_inc(&w->m.refused[reason]);
}

void sg_metrics_up_connect_failed(sg_worker_t *w, int mslot)
{
    sg_m_up_t *m = m_up(w, mslot);

    if (m != NULL)
        sg_m_inc(&m->up_connect_failures);
}

void sg_metrics_batch_part(sg_req_t *r)
{
    sg_m_up_t *m = m_up(r->conn->w, m_req_slot(r));

    if (m != NULL)
        sg_m_inc(&m->batch_parts);
}

static int m_status_index(int status)
{
    if (status == 0)
        return SG_M_NSTATUS - 1; /* no answer: "none" */
    for (int i = 0; i < SG_M_NSTATUS - 2; i++)
        if (m_status_codes[i] == status)
            return i;
    return SG_M_NSTATUS - 2; /* "other" */
}

static const char *m_status_label(int i, char buf[8])
{
    if (i == SG_M_NSTATUS - 1)
        return "none";
    if (i == SG_M_NSTATUS - 2)
        return "other";
    snprintf(buf, 8, "%d", m_status_codes[i]);
    return buf;
}

static int m_fault_index(const char *type)
{
    for (int i = 0; i < SG_M_NFAULTS - 1; i++)
        if (strcmp(m_faults[i], type) == 0)
            return i;
    return SG_M_NFAULTS - 1;
}

/* allow: authorised by policy; deny: a guarded (or stop-test-looking) request refused, or
 * a refusal by authentication or route policy (r->decision, set by the filters); none: not
 * subject to a decision. */
static int m_decision(const sg_req_t *r)
{
    if (r->decision == SG_DECISION_ALLOW)
        return SG_DECISION_ALLOW;
    if (r->guarded || r->stop_attempt)
        return SG_DECISION_DENY;
    return r->decision;
}

/* ---- the access log ---- */

static void access_close(sg_access_t *a)
{
    if (a->fd > 2)
        close(a->fd);
    a->fd = -1;
    free(a->path);
    a->path = NULL;
}

/* Open log.access as it is now (a reload may have changed it). */
static void access_open(sg_worker_t *w)
{
    sg_access_t *a = &w->alog;
    const char *want = w->conf->log.access;

    access_close(a);
    a->reopen_gen = __atomic_load_n(&access_reopen_gen, __ATOMIC_ACQUIRE);
    if (want == NULL || strcmp(want, "off") == 0)
        return;
    a->path = strdup(want);
    if (a->path == NULL)
        return;
    if (strcmp(want, "stderr") == 0) {
        a->fd = STDERR_FILENO;
        return;
    }
    a->fd = open(want, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (a->fd < 0)
        sg_log(SG_LOG_ERROR, "worker=%d access log '%s': %s", w->id, want, strerror(errno));
}

static void access_flush(sg_worker_t *w)
{
    sg_access_t *a = &w->alog;
    size_t n = sg_buf_avail(&a->buf);
    ssize_t k;

    while (n > 0 && a->fd >= 0) {
        k = write(a->fd, sg_buf_head(&a->buf), n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (!a->failing)
                sg_log(SG_LOG_ERROR, "worker=%d access log '%s': %s: lines dropped", w->id,
                       a->path, k == 0 ? "short write" : strerror(errno));
            a->failing = 1;
            break;
        }
        a->failing = 0;
        sg_buf_consume(&a->buf, (size_t)k);
        n -= (size_t)k;
    }
    sg_buf_reset(&a->buf);
}

static void access_line(sg_worker_t *w, sg_req_t *r, int decision, uint64_t end_ms)
{
    sg_buf_t *b = &w->alog.buf;
    char t[SG_TIME_LEN];
    size_t mark = b->len;
    int rv;

    sg_time_rfc3339(t);
    rv = sg_buf_appendf(b, "{\"time\":\"%s\",\"request_id\":\"%s\",\"peer\":", t, r->request_id);
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, r->conn->peer);
    if (rv == SG_OK)
        rv = sg_buf_appendf(b, ",\"protocol\":\"%s\",\"method\":",
                            r->http_major == 2 ? "HTTP/2" : "HTTP/1.1");
    if (rv == SG_OK)
        rv = sg_buf_json_str(b, r->method.p ? r->method.p : "", r->method.n);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, ",\"path\":");
    if (rv == SG_OK)
        rv = sg_buf_json_str(b, r->path.p ? r->path.p : "", r->path.n);
    if (rv == SG_OK)
        rv = sg_buf_appendf(b, ",\"route\":\"%s\",\"subject\":",
                            sg_route_label(r->route >= 0 && r->route < SG_M_NROUTES ? r->route : 0));
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, r->subject);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, ",\"tenant\":");
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, r->tenant);
    /* null: refused before sg_req_check routed it (400, 421), no vCenter was chosen */
    if (rv == SG_OK)
        rv = sg_buf_lit(b, ",\"upstream\":");
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, r->upstream != NULL ? r->upstream->name : NULL);
    /* the change ticket the request carried (filters/flt_change.c), null when none */
    if (rv == SG_OK)
        rv = sg_buf_lit(b, ",\"ticket\":");
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, r->ticket);
    if (rv == SG_OK)
        rv = sg_buf_appendf(b, ",\"decision\":\"%s\",\"status\":%d,\"fault\":",
                            m_decisions[decision], r->res.status);
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, r->fault_type);
    if (rv == SG_OK)
        rv = sg_buf_appendf(b, ",\"duration_ms\":%" PRIu64 ",\"upstream_ms\":",
                            end_ms - r->start_ms);
    if (rv == SG_OK)
        rv = r->up_start_ms != 0 && r->up_end_ms >= r->up_start_ms
                 ? sg_buf_appendf(b, "%" PRIu64, r->up_end_ms - r->up_start_ms)
                 : sg_buf_lit(b, "null");
    if (rv == SG_OK)
        rv = sg_buf_appendf(b, ",\"bytes_in\":%zu,\"bytes_out\":%" PRIu64 ",\"term\":",
                            r->body.len, r->bytes_out);
    if (rv == SG_OK)
        rv = sg_buf_json_cstr(b, r->term);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "}\n");
    if (rv != SG_OK) {
        b->len = mark; /* never a partial line */
        return;
    }
    if (sg_buf_avail(b) >= ACCESS_FLUSH_BYTES)
        access_flush(w);
}

/* ---- the end of a request ---- */

void sg_metrics_up_end(sg_req_t *r)
{
    sg_req_t *p = r->parent;
    sg_m_up_t *m;

    r->up_end_ms = sg_now_ms();
    if (r->up_start_ms == 0)
        return;
    if ((m = m_up(r->conn->w, m_req_slot(r))) != NULL)
        sg_m_observe(&m->up_duration, (r->up_end_ms - r->up_start_ms) * 1000);
    /* A part of a split batch: the parent's upstream_ms (access log) spans its parts. */
    if (r->is_child && p != NULL) {
        if (p->up_start_ms == 0 || r->up_start_ms < p->up_start_ms)
            p->up_start_ms = r->up_start_ms;
        if (r->up_end_ms > p->up_end_ms)
            p->up_end_ms = r->up_end_ms;
    }
}

void sg_metrics_req_end(sg_req_t *r)
{
    sg_worker_t *w = r->conn->w;
    uint64_t now = sg_now_ms();
    int route = r->route >= 0 && r->route < SG_M_NROUTES ? r->route : 0;
    int decision = m_decision(r);
    sg_m_up_t *m;

    if (r->is_child)
        return; /* a part of a split batch: counted in batch_parts_total */
    if ((m = m_up(w, m_req_slot(r))) != NULL) {
        int st = m_status_index(r->res.status);

        sg_m_inc(&m->requests[route][r->http_major == 2][decision][st]);
        sg_m_observe(&m->req_duration, (now - r->start_ms) * 1000);
    }
    if (r->fault_type != NULL && r->local_reply)
        sg_m_inc(&w->m.refusals[m_fault_index(r->fault_type)]);
    /* A dry run is answered 200 only with its plan (filters/flt_batch.c): every other
     * status is the refusal the real request would have met. */
    if (r->dry_run)
        sg_m_inc(&w->m.dry_runs[r->res.status != 200]);
    if (w->alog.fd >= 0 && w->alog.path != NULL)
        access_line(w, r, decision, now);
}

/* ---- the worker's tick ---- */

static void metrics_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_worker_t *w = ev_userdata(loop);
    sg_access_t *a = &w->alog;
    const char *want = w->conf->log.access;
    uint64_t open[SG_M_NUP] = {0}, idle[SG_M_NUP] = {0};

    sg_up_pool_gauges(w, open, idle);
    for (int s = 0; s < SG_M_NUP; s++) {
        /* A slot that never had a connection needs no counters made for its zeros. */
        sg_m_up_t *m = open[s] != 0 || idle[s] != 0 ? m_up(w, s) : w->m.up[s];

        if (m != NULL) {
            __atomic_store_n(&m->up_open, open[s], __ATOMIC_RELAXED);
            __atomic_store_n(&m->up_idle, idle[s], __ATOMIC_RELAXED);
        }
    }
    access_flush(w);
    /* SIGUSR1, or a reload that changed log.access. */
    if (a->reopen_gen != __atomic_load_n(&access_reopen_gen, __ATOMIC_ACQUIRE) ||
        (a->path == NULL) != (strcmp(want, "off") == 0) ||
        (a->path != NULL && strcmp(a->path, want) != 0))
        access_open(w);
}

void sg_metrics_worker_start(sg_worker_t *w)
{
    w->alog.fd = -1;
    sg_buf_init(&w->alog.buf, ACCESS_BUF_MAX);
    access_open(w);
    ev_timer_init(&w->alog.timer, metrics_tick_cb, METRICS_TICK_S, METRICS_TICK_S);
    ev_timer_start(w->loop, &w->alog.timer);
}

void sg_metrics_worker_end(sg_worker_t *w)
{
    access_flush(w);
    access_close(&w->alog);
    sg_buf_dispose(&w->alog.buf);
    /* The thread is joined and the renderer runs on this (the main) thread. */
    for (int s = 0; s < SG_M_NUP; s++) {
        free(w->m.up[s]);
        w->m.up[s] = NULL;
    }
}

void sg_access_reopen(void)
{
    __atomic_add_fetch(&access_reopen_gen, 1, __ATOMIC_RELEASE);
}

/* ---- rendering ---- */

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static int render_head(sg_buf_t *b, const char *name, const char *type, const char *help)
{
    return sg_buf_appendf(b, "# HELP smsguard_%s %s\n# TYPE smsguard_%s %s\n", name, help, name,
                          type);
}

static int render_counter(sg_buf_t *b, const char *name, const char *help, uint64_t v,
                          const char *type)
{
    int rv = render_head(b, name, type, help);

    return rv == SG_OK ? sg_buf_appendf(b, "smsguard_%s %" PRIu64 "\n", name, v) : rv;
}

/* H's counters added into ACC. */
static void hist_add(sg_hist_t *acc, const sg_hist_t *h)
{
    acc->count += LD(h->count); /* first: buckets may have moved on since, never back */
    for (int i = 0; i < SG_M_NBUCKETS; i++)
        acc->bucket[i] += LD(h->bucket[i]);
    acc->sum_us += LD(h->sum_us);
}

/* One histogram series; LABELS is "" or `name="value"`. */
static int render_hist(sg_buf_t *b, const char *name, const char *labels, const sg_hist_t *h)
{
    int any = *labels != '\0';
    const char *sep = any ? "," : "", *open = any ? "{" : "", *close = any ? "}" : "";
    uint64_t count = h->count, cum = 0;
    int rv = SG_OK;

    for (int i = 0; rv == SG_OK && i < SG_M_NBUCKETS; i++) {
        cum += h->bucket[i];
        rv = sg_buf_appendf(b, "smsguard_%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels,
                            sep, m_le[i], cum);
    }
    if (count < cum)
        count = cum; /* an observation between the two reads: keep +Inf == _count >= buckets */
    if (rv == SG_OK)
        rv = sg_buf_appendf(b,
                            "smsguard_%s_bucket{%s%sle=\"+Inf\"} %" PRIu64
                            "\nsmsguard_%s_sum%s%s%s %" PRIu64 ".%06" PRIu64
                            "\nsmsguard_%s_count%s%s%s %" PRIu64 "\n",
                            name, labels, sep, count, name, open, labels, close,
                            h->sum_us / 1000000, h->sum_us % 1000000, name, open, labels, close,
                            count);
    return rv;
}

/* The sum over the NW workers of W of the counter at offset OFF in sg_worker_t. */
static uint64_t w_sum(const sg_worker_t *W, int nw, size_t off)
{
    uint64_t v = 0;

    for (int i = 0; i < nw; i++)
        v += __atomic_load_n((const uint64_t *)((const char *)&W[i] + off), __ATOMIC_RELAXED);
    return v;
}

/* The single-valued families: a per-worker counter (summed; GLOBAL NULL) or a process-wide
 * one (GLOBAL). */
typedef struct {
    const char *name, *type, *help;
    size_t woff;
    const uint64_t *global;
} m_plain_t;

#define M_WORKER(name, type, field, help) {name, type, help, offsetof(sg_worker_t, m.field), NULL}
#define M_GLOBAL(name, type, var, help) {name, type, help, 0, &(var)}

static const m_plain_t m_plain[] = {
    M_GLOBAL("audit_records_total", "counter", sg_metrics_audit.records,
             "Audit log lines written (records and checkpoints)."),
    M_GLOBAL("audit_write_failures_total", "counter", sg_metrics_audit.write_failures,
             "Audit log batches that could not be written or synced."),
    M_GLOBAL("audit_syslog_dropped_total", "counter", sg_metrics_audit.syslog_dropped,
             "Audit records whose audit.syslog copy was not sent (receiver down or slow)."),
    M_WORKER("tls_handshakes_total", "counter", tls_handshakes,
             "Client TLS handshakes completed."),
    M_WORKER("tls_handshake_failures_total", "counter", tls_handshake_failures,
             "Client TLS handshakes that failed or timed out."),
    M_WORKER("client_send_timeouts_total", "counter", send_timeouts,
             "Client connections closed because they took no byte of a waiting answer for "
             "limits.send_timeout_ms."),
    M_WORKER("connections_refused_total", "counter", conns_refused,
             "Client connections closed at accept because limits.max_connections were open."),
};

/* The families with one label over a per-worker array of counters: every value is printed,
 * zero included, so an alert on a rate needs no "absent" clause. */
typedef struct {
    const char *name, *label, *help;
    const char *const *values; /* label values, n of them */
    size_t n, woff;            /* woff: offset of the array's first counter in sg_worker_t */
} m_labelled_t;

#define M_LABELLED(name, label, field, values, help)                                          \
    {name, label, help, values, sizeof(values) / sizeof(values[0]), offsetof(sg_worker_t, m.field)}

static const m_labelled_t m_labelled[] = {
    M_LABELLED("refusals_total", "fault", refusals, m_faults,
               "Requests answered locally with a vSphere fault, by the fault's _typeName."),
    M_LABELLED("dry_runs_total", "decision", dry_runs, m_dry_decisions,
               "Requests with X-Dry-Run: true on a replication operation: answered with the "
               "plan (allow) or with the refusal the real request would have met (deny). "
               "They are counted in requests_total as well."),
    M_LABELLED("requests_refused_total", "reason", refused, m_refuse,
               "Requests refused before the filter chain: a method the gateway does not proxy "
               "(method), an unusable target (target) or authority (authority), an authority "
               "that is not one of the listener's server names or not the TLS SNI "
               "(misdirected)."),
    M_LABELLED("request_headers_dropped_total", "class", hdr_dropped, m_hdr_drop,
               "Client request headers not forwarded upstream because they claim an identity "
               "(identity), override the target or method (override), or are not on a guarded "
               "route's allowlist (unlisted)."),
    M_LABELLED("http2_abuse_total", "kind", h2_abuse, m_h2_abuse,
               "HTTP/2 abuse: connections ended for a protocol error, a flood, a bad preface or "
               "a send timeout; streams cut for a timeout or refused for their header list "
               "(header_list, stream_timeout)."),
};

/* Worker W's counters for SLOT, NULL when it never used the slot. */
static const sg_m_up_t *w_up(const sg_worker_t *W, int slot)
{
    return __atomic_load_n(&W->m.up[slot], __ATOMIC_ACQUIRE);
}

/* The per-upstream families with one value per upstream: counters and gauges. */
typedef struct {
    const char *name, *type, *help;
    size_t off; /* of the uint64_t in sg_m_up_t */
} m_per_up_t;

#define M_UP(name, type, field, help) {name, type, help, offsetof(sg_m_up_t, field)}

static const m_per_up_t m_per_up[] = {
    M_UP("upstream_connections_open", "gauge", up_open,
         "Open upstream connections, idle ones included, by upstream (up to 100 ms old)."),
    M_UP("upstream_connections_idle", "gauge", up_idle,
         "Idle upstream connections in the pools, by upstream (up to 100 ms old)."),
    M_UP("upstream_connect_failures_total", "counter", up_connect_failures,
         "Upstream connections that failed to connect or to complete the TLS handshake, or "
         "timed out doing so, by upstream."),
    M_UP("batch_parts_total", "counter", batch_parts,
         "Parts of stop-test batches sent upstream (one per request of one part), and "
         "composite task queries' parts, by upstream."),
};

int sg_metrics_render(sg_proxy_t *px, sg_buf_t *b)
{
    sg_worker_t *W = px->workers;
    int nw = W != NULL ? px->nworkers : 0, rv;
    /* The slots shown: the running configuration's upstreams (zeros included, so a rate
     * needs no "absent" clause) and every slot a worker has counted in. */
    char shown[SG_M_NUP] = {0};
    char lab[sizeof("upstream=\"\"") + SG_CONF_NAME_MAX];
    uint64_t v;
    char sb[8];

    for (size_t i = 0; px->gen != NULL && i < px->gen->nups; i++)
        shown[px->gen->ups[i].mslot] = 1;
    for (int s = 0; s < SG_M_NUP; s++)
        for (int k = 0; !shown[s] && k < nw; k++)
            shown[s] = w_up(&W[k], s) != NULL;

    rv = render_head(b, "requests_total", "counter",
                     "Client requests answered or ended, by upstream (\"\" when refused before "
                     "routing), route, protocol, policy decision and HTTP status (split-batch "
                     "parts not included).");
    for (int s = 0; rv == SG_OK && s < SG_M_NUP; s++) {
        if (!shown[s])
            continue;
        for (int ro = 0; rv == SG_OK && ro < SG_M_NROUTES; ro++)
            for (int p = 0; rv == SG_OK && p < SG_M_NPROTO; p++)
                for (int d = 0; rv == SG_OK && d < SG_M_NDECISION; d++)
                    for (int st = 0; rv == SG_OK && st < SG_M_NSTATUS; st++) {
                        v = 0;
                        for (int k = 0; k < nw; k++) {
                            const sg_m_up_t *m = w_up(&W[k], s);

                            v += m != NULL ? LD(m->requests[ro][p][d][st]) : 0;
                        }
                        if (v == 0)
                            continue; /* series appear once they have happened */
                        rv = sg_buf_appendf(
                            b,
                            "smsguard_requests_total{upstream=\"%s\",route=\"%s\","
                            "protocol=\"%s\",decision=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                            m_up_label(s), sg_route_label(ro), m_protos[p], m_decisions[d],
                            m_status_label(st, sb), v);
                    }
    }
    for (int h = 0; h < 2 && rv == SG_OK; h++) {
        const char *name = h == 0 ? "request_duration_seconds" : "upstream_duration_seconds";

        rv = render_head(b, name, "histogram",
                         h == 0 ? "Time from a client request's start to the end of its answer, "
                                  "by upstream."
                                : "Time from forwarding a request (or batch part) upstream to "
                                  "the end of the upstream's answer, by upstream.");
        for (int s = 0; rv == SG_OK && s < SG_M_NUP; s++) {
            sg_hist_t sum = {0};

            if (!shown[s])
                continue;
            for (int k = 0; k < nw; k++) {
                const sg_m_up_t *m = w_up(&W[k], s);

                if (m != NULL)
                    hist_add(&sum, h == 0 ? &m->req_duration : &m->up_duration);
            }
            snprintf(lab, sizeof(lab), "upstream=\"%s\"", m_up_label(s));
            rv = render_hist(b, name, lab, &sum);
        }
    }
    if (rv == SG_OK) {
        sg_hist_t sum = {0};

        hist_add(&sum, &sg_metrics_audit.sync);
        rv = render_head(b, "audit_sync_duration_seconds", "histogram",
                         "Duration of the audit writer's fdatasync(2) calls.");
        if (rv == SG_OK)
            rv = render_hist(b, "audit_sync_duration_seconds", "", &sum);
    }
    for (size_t i = 0; rv == SG_OK && i < sizeof(m_per_up) / sizeof(m_per_up[0]); i++) {
        const m_per_up_t *mu = &m_per_up[i];

        rv = render_head(b, mu->name, mu->type, mu->help);
        for (int s = 0; rv == SG_OK && s < SG_M_NUP; s++) {
            if (!shown[s])
                continue;
            v = 0;
            for (int k = 0; k < nw; k++) {
                const sg_m_up_t *m = w_up(&W[k], s);

                v += m != NULL ? LD(*(const uint64_t *)((const char *)m + mu->off)) : 0;
            }
            rv = sg_buf_appendf(b, "smsguard_%s{upstream=\"%s\"} %" PRIu64 "\n", mu->name,
                                m_up_label(s), v);
        }
    }
    for (size_t i = 0; rv == SG_OK && i < sizeof(m_plain) / sizeof(m_plain[0]); i++) {
        const m_plain_t *mp = &m_plain[i];

        v = mp->global != NULL ? LD(*mp->global) : w_sum(W, nw, mp->woff);
        rv = render_counter(b, mp->name, mp->help, v, mp->type);
    }
    for (size_t i = 0; rv == SG_OK && i < sizeof(m_labelled) / sizeof(m_labelled[0]); i++) {
        const m_labelled_t *ml = &m_labelled[i];

        rv = render_head(b, ml->name, "counter", ml->help);
        for (size_t k = 0; rv == SG_OK && k < ml->n; k++)
            rv = sg_buf_appendf(b, "smsguard_%s{%s=\"%s\"} %" PRIu64 "\n", ml->name, ml->label,
                                ml->values[k], w_sum(W, nw, ml->woff + k * sizeof(uint64_t)));
    }
    if (rv == SG_OK)
        rv = render_counter(b, "connections_open",
                            "Open client connections (TLS handshakes included).",
                            (uint64_t)__atomic_load_n(&px->nconns, __ATOMIC_RELAXED), "gauge");
    return rv;
}
