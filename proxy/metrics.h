/*
 * proxy/metrics.h - lock-free counters for GET /metrics and the access log.
 *
 * Each worker owns one sg_metrics_t (inside sg_worker_t) and is the only thread
 * that writes it; the audit writer thread owns sg_metrics_audit. Writers use a
 * relaxed load + store (a plain add on x86, no locked instruction), readers (the
 * admin listener on the main thread) use relaxed loads and sum over workers, so
 * there is no lock and no data race. A scrape may see one counter of a request
 * moved and another not yet: Prometheus tolerates that.
 *
 * The access log (one JSON line per finished request, docs/design.md log.access) is
 * buffered per worker and written by the worker itself (metrics.c).
 */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <ev.h>
#include <stdint.h>

#include "base/base.h"
#include "filters/canon.h" /* sg_route_id_t: one counter per route */

/* Histogram upper bounds in seconds (the +Inf bucket is the count). */
#define SG_M_NBUCKETS 14

typedef struct {
    uint64_t bucket[SG_M_NBUCKETS]; /* not cumulative: observations in (le[i-1], le[i]] */
    uint64_t count;
    uint64_t sum_us; /* microseconds */
} sg_hist_t;

enum { SG_M_NROUTES = SG_ROUTE_COUNT }; /* every sg_route_id_t (filters/canon.h) */
enum { SG_M_NPROTO = 2 };     /* h1, h2 */
enum { SG_M_NDECISION = 3 };  /* none, allow, deny */
enum { SG_M_NSTATUS = 18 };   /* metrics.c m_status_codes, "other" and "none" */
enum { SG_M_NFAULTS = 9 };    /* metrics.c m_faults, "other" last */
/* smsguard_http2_abuse_total{kind}: metrics.c m_h2_abuse names them, in this order. */
enum {
    SG_H2A_PROTOCOL_ERROR,      /* nghttp2 ended the session (its GOAWAY or mem_recv error) */
    SG_H2A_FLOOD,               /* nghttp2's outbound ACK queue limit (SETTINGS/PING unread) */
    SG_H2A_BAD_PREFACE,
    SG_H2A_CONTINUATION_FLOOD,  /* nghttp2's max_continuations */
    SG_H2A_RAPID_RESET,         /* the rest are smsguard's own counters (h2_server.c) */
    SG_H2A_SETTINGS_FLOOD,
    SG_H2A_PING_FLOOD,
    SG_H2A_PRIORITY_FLOOD,
    SG_H2A_WINDOW_UPDATE_FLOOD,
    SG_H2A_EMPTY_DATA_FLOOD,
    SG_H2A_HEADER_LIST,         /* a stream refused with 431 (the connection serves on) */
    SG_H2A_STREAM_TIMEOUT,      /* header_timeout_ms / body_timeout_ms on one stream */
    SG_H2A_SEND_TIMEOUT,        /* send_timeout_ms: window held at 0 or socket not read */
    SG_M_NH2ABUSE
};
/* smsguard_request_headers_dropped_total{class}: client headers kept from the upstream
 * because of what they claim (sg_hdr_upstream_class, headers.c). Hop-by-hop and
 * Authorization drops are routine and not counted. metrics.c m_hdr_drop names them, in
 * this order. */
enum {
    SG_HDROP_IDENTITY, /* a user identity (X-Remote-User, X-Authenticated-*, routes.drop_headers) */
    SG_HDROP_OVERRIDE, /* a target or method override (X-Original-URL, X-HTTP-Method-Override) */
    SG_HDROP_UNLISTED, /* not on a guarded route's allowlist */
    SG_M_NHDROP
};
/* smsguard_requests_refused_total{reason}: requests refused before the filter chain
 * (proxy/reqcheck.c). metrics.c m_refuse names them, in this order. */
enum {
    SG_REFUSE_METHOD,      /* CONNECT (plain or extended), TRACE: 405 */
    SG_REFUSE_TARGET,      /* asterisk-form or otherwise unusable target: 400 */
    SG_REFUSE_AUTHORITY,   /* missing or malformed Host/:authority: 400 */
    SG_REFUSE_MISDIRECTED, /* authority not a listen.server_names entry or not the SNI: 421 */
    SG_M_NREFUSE
};

/* The families labelled upstream="<name>" keep one sg_m_up_t per upstream slot. A slot
 * is a number the main thread gives each upstream name once for the life of the process
 * (sg_metrics_up_slot, stored in sg_gen_up_t.mslot), so a worker finds its counters by an
 * index, without a lookup or a lock, and a reload that keeps a name keeps its series.
 * Slot 0 is upstream="" (a request refused before routing chose its vCenter); names past
 * the first SG_M_UP_NAMES share the last slot, upstream="(other)" (no name can be that). */
#define SG_M_UP_NAMES 256
enum { SG_M_UP_NONE = 0, SG_M_UP_OTHER = SG_M_UP_NAMES + 1, SG_M_NUP };

typedef struct {
    uint64_t requests[SG_M_NROUTES][SG_M_NPROTO][SG_M_NDECISION][SG_M_NSTATUS];
    sg_hist_t req_duration, up_duration;
    uint64_t up_connect_failures;
    uint64_t batch_parts;
    /* gauges the worker publishes from its 100 ms timer (the pools' own counts are not
     * atomic) */
    uint64_t up_open, up_idle;
} sg_m_up_t;

typedef struct {
    /* Allocated by the worker on the slot's first use and published with a release store;
     * the renderer loads it with acquire. Freed with the worker (sg_metrics_worker_end). */
    sg_m_up_t *up[SG_M_NUP];
    uint64_t refusals[SG_M_NFAULTS];
    uint64_t tls_handshakes, tls_handshake_failures;
    uint64_t h2_abuse[SG_M_NH2ABUSE];
    uint64_t hdr_dropped[SG_M_NHDROP];
    uint64_t refused[SG_M_NREFUSE];
    uint64_t send_timeouts; /* client connections cut by limits.send_timeout_ms (h1 and h2) */
    uint64_t conns_refused; /* accepted and closed at once: limits.max_connections reached */
    uint64_t dry_runs[2];   /* X-Dry-Run requests: [0] answered with the plan, [1] refused */
} sg_metrics_t;

typedef struct {
    uint64_t records;        /* records (and checkpoints) written */
    uint64_t write_failures; /* batches that could not be written or synced */
    uint64_t syslog_dropped; /* audit.syslog copies not sent (receiver down, slow, too long) */
    sg_hist_t sync;          /* fdatasync(2) durations */
} sg_metrics_audit_t;

/* A worker's access log: whole lines buffered, written with write(2) past 16 KiB or
 * from the 100 ms timer, so a line can be up to 100 ms late and a crash loses at most
 * the last 100 ms (the audit log is the durable record). Each worker has its own fd
 * (O_APPEND), so lines of different workers never interleave. */
typedef struct {
    int fd;              /* -1: off (or the file could not be opened) */
    char *path;          /* the log.access value fd belongs to (malloc), NULL when off */
    unsigned reopen_gen; /* sg_access_reopen() generation the fd was opened at */
    int failing;         /* the last write failed: logged once until one succeeds */
    sg_buf_t buf;
    ev_timer timer;
} sg_access_t;

extern sg_metrics_audit_t sg_metrics_audit; /* written by the audit writer thread only */

/* Owner thread only. */
static inline void sg_m_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
#define sg_m_inc(c) sg_m_add((c), 1)
void sg_m_observe(sg_hist_t *h, uint64_t us); /* owner thread only */
uint64_t sg_m_now_us(void);                  /* monotonic microseconds */

struct sg_worker_s;
struct sg_req_s;
struct sg_proxy_s;

/* h2_server.c: nghttp2_session_mem_recv failed with rv (an nghttp2 error code); NOMEM
 * and CALLBACK_FAILURE are smsguard's own trouble and not counted. */
void sg_metrics_h2_abuse(struct sg_worker_s *w, int rv);
/* h2_server.c: smsguard's own detection, kind one of SG_H2A_*. */
void sg_metrics_h2_abuse_kind(struct sg_worker_s *w, int kind);
/* upstream.c: one client header was not forwarded, cls its SG_HDR_DROP_* class
 * (proxy.h); SG_HDR_DROP_HOP is routine and not counted. */
void sg_metrics_hdr_dropped(struct sg_worker_s *w, int cls);
/* reqcheck.c: a request was refused before the filter chain, reason one of SG_REFUSE_*. */
void sg_metrics_refused(struct sg_worker_s *w, int reason);
/* Main thread (gen.c): the slot of upstream NAME, given on first sight (metrics.h). */
int sg_metrics_up_slot(const char *name);
/* upstream.c: a connection to the upstream of slot MSLOT failed to connect or to complete
 * its TLS handshake. */
void sg_metrics_up_connect_failed(struct sg_worker_s *w, int mslot);
/* subreq.c: r is one part of a batch (or of a composite task query) sent upstream. */
void sg_metrics_batch_part(struct sg_req_s *r);
/* req.c: the upstream's answer ended (or failed) for r: upstream_duration_seconds. */
void sg_metrics_up_end(struct sg_req_s *r);
/* req.c: the request ends (counted, and logged when log.access is on). */
void sg_metrics_req_end(struct sg_req_s *r);

/* The worker's 100 ms timer (gauges, access-log flush and reopen) and its end. */
void sg_metrics_worker_start(struct sg_worker_s *w);
void sg_metrics_worker_end(struct sg_worker_s *w); /* flush and close the access log */
/* SIGUSR1 (main thread): every worker reopens its access-log file within 100 ms. */
void sg_access_reopen(void);

/* The Prometheus text exposition (format 0.0.4) of the whole process into b. */
int sg_metrics_render(struct sg_proxy_s *px, sg_buf_t *b);

#endif
