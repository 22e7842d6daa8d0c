/*
 * proxy/reqcheck.c - the request model: what every request must be before any filter
 * sees it (the role of Envoy's header validator), for both front ends.
 *
 * The front ends turn bytes into an sg_req_t and enforce their protocol's framing
 * (http_parser plus h1_server.c's smuggling rules; nghttp2's RFC 9113 messaging rules
 * plus h2_server.c's limits). What they accept still differs in shape: HTTP/2 allows a
 * CONNECT with no :path (RFC 9113 8.5), a request with no :authority and no Host, and
 * an HTTP/1.0 request may have no Host. This file is the one place that turns "what a
 * protocol library accepted" into "what the gateway proxies", so that no filter ever
 * meets a missing field and no rule is written twice:
 *
 *   1. method: a token (RFC 9110 5.6.2); CONNECT (plain or extended, RFC 8441/9220) and
 *      TRACE are not proxied (405; TRACE would echo the client's credentials, CONNECT
 *      would turn the gateway into a tunnel past every check);
 *   2. scheme: "https" or "http" (the listener is TLS; absent means "https");
 *   3. target: origin-form, present, starting with '/', visible ASCII only; the
 *      asterisk-form ("OPTIONS *", RFC 9112 3.2.4) concerns the gateway itself, not
 *      vCenter, and is refused (400);
 *   4. authority: present (HTTP/1.0 without Host takes the SNI), a host (reg-name or
 *      IP literal) with an optional numeric port and no userinfo (RFC 9110 4.2.4);
 *      one Host at most, equal to :authority on HTTP/2 (RFC 9113 8.3.1: 400) and to an
 *      absolute-form target's authority on HTTP/1.1 (421);
 *   5. the authority names one of this listener's vhosts (listen.vhosts, in order) or
 *      the listener itself (listen.server_names, when it has an upstream) and, when the
 *      client sent SNI, the same host as the SNI (421 Misdirected Request, RFC 9110
 *      15.5.20): X-Forwarded-Host then only ever carries a name the gateway verified,
 *      an HTTP/2 connection cannot be reused for another host (RFC 9113 9.1.1), and
 *      the name decides the vCenter (r->upstream).
 *
 * A refusal is an InvalidRequest fault (405 with Allow), counted in
 * smsguard_requests_refused_total{reason}; a refused request whose target names the
 * stop-test method is audited by filters/flt_audit.c's on_done, as every refusal of
 * the chain is.
 */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <strings.h>

void (*sg__req_chain_hook)(const sg_req_t *r);

/* RFC 9110 5.6.2 tchar. */
static int rc_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int rc_is_token(const sg_str_t *s)
{
    if (s->p == NULL || s->n == 0)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (!rc_tchar((unsigned char)s->p[i]))
            return 0;
    return 1;
}

static int rc_method_is(const sg_req_t *r, const char *m)
{
    return r->method.n == strlen(m) && memcmp(r->method.p, m, r->method.n) == 0;
}

/* The host of an authority: [v6] without brackets, or a reg-name / IPv4, lower-cased
 * into OUT (OUTLEN > 1). 0, or -1 when the authority is malformed. */
static int rc_host(const char *p, size_t n, char *out, size_t outlen)
{
    const char *e = p + n, *h, *he;
    int v6 = n > 0 && *p == '[';
    unsigned char a[16];
    size_t len;

    if (v6) {
        h = p + 1;
        if ((he = memchr(h, ']', n - 1)) == NULL)
            return -1;
        p = he + 1;
    } else {
        h = p;
        if ((he = memchr(p, ':', n)) == NULL)
            he = e;
        p = he;
    }
    if (p < e) {
        /* ":port": digits only; an empty port is allowed (RFC 3986 3.2.3). */
        if (*p++ != ':' || e - p > 5)
            return -1;
        for (; p < e; p++)
            if (*p < '0' || *p > '9')
                return -1;
    }
    len = (size_t)(he - h);
    if (len == 0 || len >= outlen)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)h[i];

        /* Host names as DNS spells them: no percent-encoding, no sub-delims, no '@',
         * nothing a second parser could read as another host; ':' only inside brackets. */
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
              (v6 && ch == ':')))
            return -1;
        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[len] = '\0';
    if (v6 && inet_pton(AF_INET6, out, a) != 1)
        return -1;
    /* One trailing dot is the same name (RFC 1034 3.1: "example." is fully qualified). */
    if (len > 1 && out[len - 1] == '.')
        out[len - 1] = '\0';
    return 0;
}

static int rc_refuse(sg_req_t *r, int status, int reason, const char *why)
{
    r->term = "CR";
    r->reason = why;
    /* The stop-test audit (flt_audit.c on_done) looks for the method in the raw target. */
    sg_metrics_refused(r->conn->w, reason);
    sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " req=%s refused: %d %s", r->conn->id, r->request_id,
           status, why);
    if (status == 405 && sg_headers_add(&r->pool, &r->res.headers, "allow", 5,
                                        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
                                        44) != SG_OK)
        return SG_ENOMEM;
    sg_req_fault(r, status, "InvalidRequest", why);
    return SG_ERR;
}

/*
 * Rule 5: the verified host is the SNI's, and a vhost's or the listener's name; that
 * vhost's upstream is where the request goes. The listen entry is the connection's (its
 * configuration), the upstream is named in the request's: after a reload the two may
 * differ, and an upstream the new configuration dropped serves no new request.
 */
static int rc_route(sg_req_t *r, const char *host)
{
    const sg_conf_listen_t *l = r->conn->listen;
    const sg_conf_upstream_t *u = NULL;
    const char *sni;

    sni = r->conn->ssl != NULL ? SSL_get_servername(r->conn->ssl, TLSEXT_NAMETYPE_host_name)
                               : NULL;
    if (sni != NULL && strcasecmp(sni, host) != 0)
        return SG_ERR; /* another host than the connection's (RFC 9113 9.1.1) */
    for (size_t j = 0; j < l->nvhosts && u == NULL; j++)
        if (sg_tls_names_match(&l->vhosts[j].server_names, host))
            u = &r->conn->conf->upstreams[l->vhosts[j].up];
    if (u == NULL && l->has_up &&
        ((l->server_names.n == 1 && strcmp(l->server_names.v[0], "*") == 0) ||
         sg_tls_names_match(&l->server_names, host)))
        u = &r->conn->conf->upstreams[l->up];
    if (u == NULL)
        return SG_ERR;
    if (r->conn->conf == r->conf) {
        r->upstream = u;
        r->up_idx = (size_t)(u - r->conf->upstreams);
        return SG_OK;
    }
    for (size_t i = 0; i < r->conf->nupstreams; i++) {
        if (strcmp(r->conf->upstreams[i].name, u->name) == 0) {
            r->upstream = &r->conf->upstreams[i];
            r->up_idx = i;
            return SG_OK;
        }
    }
    return SG_ERR;
}

int sg_req_check(sg_req_t *r)
{
    const sg_header_t *hh;
    char host[256];
    size_t nhost;

    /* 1. method */
    if (!rc_is_token(&r->method))
        return rc_refuse(r, 400, SG_REFUSE_METHOD, "The request method is not valid.");
    if (rc_method_is(r, "CONNECT") || r->h2_protocol)
        return rc_refuse(r, 405, SG_REFUSE_METHOD, "CONNECT is not proxied here.");
    if (rc_method_is(r, "TRACE"))
        return rc_refuse(r, 405, SG_REFUSE_METHOD, "TRACE is not proxied here.");

    /* 2. scheme */
    if (r->scheme.p == NULL) {
        r->scheme.p = "https";
        r->scheme.n = 5;
    } else if (!sg_strcaseeq(r->scheme.p, r->scheme.n, "https", 5) &&
               !sg_strcaseeq(r->scheme.p, r->scheme.n, "http", 4)) {
        return rc_refuse(r, 400, SG_REFUSE_TARGET, "The request scheme is not http or https.");
    }

    /* 3. target */
    if (r->path.p == NULL || r->path.n == 0)
        return rc_refuse(r, 400, SG_REFUSE_TARGET, "The request has no target.");
    if (r->path.n == 1 && r->path.p[0] == '*')
        return rc_refuse(r, 400, SG_REFUSE_TARGET, "The asterisk-form target is not proxied.");
    if (r->path.p[0] != '/')
        return rc_refuse(r, 400, SG_REFUSE_TARGET, "The request target is not valid.");
    for (size_t i = 0; i < r->path.n; i++) {
        unsigned char ch = (unsigned char)r->path.p[i];

        /* Visible ASCII only (RFC 3986 has no room for the rest; a second parser could
         * split or truncate the line at any of it). */
        if (ch <= 0x20 || ch >= 0x7f)
            return rc_refuse(r, 400, SG_REFUSE_TARGET, "The request target is not valid.");
    }

    /* 4. authority */
    nhost = sg_headers_count(&r->headers, "host");
    hh = nhost > 0 ? sg_headers_get(&r->headers, "host") : NULL;
    if (nhost > 1)
        return rc_refuse(r, 400, SG_REFUSE_AUTHORITY, "A request needs exactly one Host header.");
    if (r->authority.p != NULL && hh != NULL &&
        !sg_strcaseeq(hh->value.p, hh->value.n, r->authority.p, r->authority.n)) {
        if (r->http_major == 2)
            /* RFC 9113 8.3.1: two parsers could route the request differently. */
            return rc_refuse(r, 400, SG_REFUSE_AUTHORITY, ":authority and Host disagree.");
        /* RFC 9112 3.2.2 has the absolute-form win; a gateway must not let the two name
         * different hosts, or the checks and the upstream's logs could disagree. */
        return rc_refuse(r, 421, SG_REFUSE_MISDIRECTED,
                         "The request target and Host name different hosts.");
    }
    if (r->authority.p == NULL && hh != NULL)
        r->authority = hh->value;
    if (r->authority.p == NULL && r->http_major == 1 && r->http_minor == 0 &&
        r->conn->ssl != NULL) {
        /* HTTP/1.0 may omit Host (RFC 9112 3.2): the name the client asked TLS for. */
        const char *sni = SSL_get_servername(r->conn->ssl, TLSEXT_NAMETYPE_host_name);

        if (sni != NULL) {
            r->authority.p = sg_pool_strndup(&r->pool, sni, strlen(sni));
            r->authority.n = strlen(sni);
            if (r->authority.p == NULL)
                return SG_ENOMEM;
        }
    }
    if (r->authority.p == NULL || r->authority.n == 0)
        return rc_refuse(r, 400, SG_REFUSE_AUTHORITY, "The request names no host.");
    if (rc_host(r->authority.p, r->authority.n, host, sizeof(host)) != 0)
        return rc_refuse(r, 400, SG_REFUSE_AUTHORITY, "The request's host is not valid.");

    /* 5. this listener's names, and the SNI's: the vhost, and so the upstream */
    if (rc_route(r, host) != SG_OK)
        return rc_refuse(r, 421, SG_REFUSE_MISDIRECTED,
                         "This host is not served on this connection.");
    return SG_OK;
}
