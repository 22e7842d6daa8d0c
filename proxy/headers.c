/*
 * proxy/headers.c - header lists and the rules for which headers cross the proxy.
 *
 * The rules are the same for both front ends. Which client request header reaches the
 * upstream is decided in one place, sg_hdr_upstream_class() below, where the rules are
 * written down; upstream.c only applies its answer. Response headers lose their framing
 * and hop-by-hop fields (sg_hdr_is_response_hop).
 */
#include "proxy/proxy.h"

#include <strings.h>

int sg_headers_add(sg_pool_t *pool, sg_headers_t *h, const char *name, size_t nlen,
                   const char *value, size_t vlen)
{
    sg_header_t *nv;
    char *p;

    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 16;

        nv = sg_pool_alloc(pool, ncap * sizeof(*nv));
        if (nv == NULL)
            return SG_ENOMEM;
        if (h->n)
            memcpy(nv, h->v, h->n * sizeof(*nv));
        h->v = nv;
        h->cap = ncap;
    }
    /* One allocation for both strings, each NUL-terminated for convenience. */
    p = sg_pool_alloc(pool, nlen + vlen + 2);
    if (p == NULL)
        return SG_ENOMEM;
    memcpy(p, name, nlen);
    p[nlen] = '\0';
    memcpy(p + nlen + 1, value, vlen);
    p[nlen + 1 + vlen] = '\0';
    h->v[h->n].name.p = p;
    h->v[h->n].name.n = nlen;
    h->v[h->n].value.p = p + nlen + 1;
    h->v[h->n].value.n = vlen;
    h->n++;
    return SG_OK;
}

const sg_header_t *sg_headers_get(const sg_headers_t *h, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < h->n; i++)
        if (sg_strcaseeq(h->v[i].name.p, h->v[i].name.n, name, n))
            return &h->v[i];
    return NULL;
}

size_t sg_headers_count(const sg_headers_t *h, const char *name)
{
    size_t n = strlen(name), count = 0;

    for (size_t i = 0; i < h->n; i++)
        count += sg_strcaseeq(h->v[i].name.p, h->v[i].name.n, name, n);
    return count;
}

/* ---- the upstream header policy ----
 *
 * Every client request header gets exactly one of these answers, tried in this order
 * (docs/design.md "Headers that reach the upstream"):
 *
 * 1. SG_HDR_DROP_HOP: hop-by-hop (RFC 9110 7.6.1: Connection, Keep-Alive, Proxy-*, TE,
 *    Trailer, Transfer-Encoding, Upgrade, HTTP2-Settings), Expect (the gateway has read
 *    the body already), credentials meant for the gateway (Authorization, Proxy-
 *    Authorization), and what the gateway writes itself (Host is the upstream's,
 *    Content-Length is recomputed from the body sent, X-Forwarded-For/-Proto/-Host and
 *    Forwarded are replaced, never appended to), and what only the gateway acts on
 *    (X-Dry-Run: a rehearsal ends at the gateway, filters/flt_route.c; off the
 *    replication operations it is refused, or dropped here when "false"). Routine, not
 *    counted. Headers named in a Connection header are hop-by-hop too; that needs the
 *    whole list and is checked by the caller (sg_hdr_connection_lists).
 * 2. SG_HDR_DROP_IDENTITY, on every route: a claim about who the caller is, which only
 *    the gateway could vouch for and which an upstream or a proxy in front of it may
 *    trust (the header-injection class of auth bypass): Remote-User, X-Remote-* (X-Remote-
 *    User, -Group, -Extra-* of authenticating proxies), X-Forwarded-User/-Email/-Groups/
 *    -Preferred-Username, X-Authenticated-*, X-Smsguard-* (the gateway's own namespace),
 *    the client-address claims X-Real-IP, X-Client-IP and True-Client-IP, and every
 *    routes.drop_headers entry (a name, or "prefix*"). Identity reaches vCenter only
 *    through vmware-api-session-id (docs/design.md). The change-control statements
 *    X-Change-Ticket and X-Change-Approval (and a configured operations.ticket_header,
 *    which conf/conf.c adds to routes.drop_headers) are the gateway's too.
 * 3. SG_HDR_DROP_OVERRIDE, on every route: a target or method override that frameworks
 *    honour over the request line, so that the upstream would run another method or path
 *    than the one the filter chain checked: X-Original-URL, X-Rewrite-URL, X-Original-URI,
 *    X-Original-Method, X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, and
 *    every other X-Forwarded-* (Prefix, Port, Scheme, Uri, Server, ...: claims about the
 *    original request that only the gateway, the proxy, may make).
 * 4. SG_HDR_DROP_UNLISTED, on guarded routes only: whatever is not on the allowlist.
 *    A guarded request reaches vCenter with the gateway's own Host, Content-Length and
 *    X-Forwarded-For/-Proto/-Host, plus these client headers:
 *      Content-Type           the body's type; flt_validate allows one, JSON, or none
 *      vmware-api-session-id  the vCenter session, the one identity vCenter sees; unchanged
 *      Accept                 content negotiation; the answer is JSON either way
 *      Accept-Language        only picks the language of fault messages, never parsed here
 *      User-Agent             shows up in vCenter's logs, decides nothing
 *      X-Request-Id           correlation with the client's logs, decides nothing
 *    Left out on purpose: Cookie (the VI/JSON API authenticates with vmware-api-session-id
 *    only; vmware_soap_session is the SOAP endpoints' session, /sdk and /sms/sdk, which are
 *    forwarded routes where Cookie crosses: one credential, one channel), Accept-Encoding
 *    (the gateway parses guarded answers for the audit record and the batch merge, so they
 *    must come back unencoded), Content-Encoding and the conditional and range headers (the
 *    body and the method that were checked are exactly what vCenter executes).
 * 5. SG_HDR_KEEP: everything else, on forwarded routes.
 */

#define HDR_LIT(s) {(s), sizeof(s) - 1}

static const sg_str_t hdr_hop[] = {
    HDR_LIT("connection"),       HDR_LIT("keep-alive"),        HDR_LIT("te"),
    HDR_LIT("trailer"),          HDR_LIT("transfer-encoding"), HDR_LIT("upgrade"),
    HDR_LIT("host"),             HDR_LIT("content-length"),    HDR_LIT("expect"),
    HDR_LIT("authorization"),    HDR_LIT("x-forwarded-for"),   HDR_LIT("x-forwarded-proto"),
    HDR_LIT("x-forwarded-host"), HDR_LIT("http2-settings"),    HDR_LIT("forwarded"),
    HDR_LIT("x-dry-run"),
};
static const sg_str_t hdr_hop_prefix[] = {HDR_LIT("proxy-")};

static const sg_str_t hdr_identity[] = {
    HDR_LIT("remote-user"),        HDR_LIT("x-forwarded-user"),
    HDR_LIT("x-forwarded-email"),  HDR_LIT("x-forwarded-groups"),
    HDR_LIT("x-forwarded-preferred-username"),
    HDR_LIT("x-real-ip"),          HDR_LIT("x-client-ip"),
    HDR_LIT("true-client-ip"),
};
/* The change-control headers (filters/flt_change.c): statements to the gateway, which it
 * checks and records; vCenter has no use for them, and an approval is a credential. A
 * configured operations.ticket_header joins routes.drop_headers (conf/conf.c). */
static const sg_str_t hdr_change[] = {
    HDR_LIT("x-change-ticket"),
    HDR_LIT("x-change-approval"),
};
static const sg_str_t hdr_identity_prefix[] = {
    HDR_LIT("x-remote-"), HDR_LIT("x-authenticated-"), HDR_LIT("x-smsguard-"),
};

static const sg_str_t hdr_override[] = {
    HDR_LIT("x-original-url"),         HDR_LIT("x-rewrite-url"),
    HDR_LIT("x-original-uri"),         HDR_LIT("x-original-method"),
    HDR_LIT("x-http-method-override"), HDR_LIT("x-http-method"),
    HDR_LIT("x-method-override"),
};
/* After hdr_hop and hdr_identity: the X-Forwarded-* the gateway sets or counts as
 * identity are taken by then. */
static const sg_str_t hdr_override_prefix[] = {HDR_LIT("x-forwarded-")};

static const sg_str_t hdr_guarded_allow[] = {
    HDR_LIT("content-type"),    HDR_LIT("vmware-api-session-id"), HDR_LIT("accept"),
    HDR_LIT("accept-language"), HDR_LIT("user-agent"),            HDR_LIT("x-request-id"),
};

static const sg_str_t hdr_response_hop[] = {
    HDR_LIT("connection"),        HDR_LIT("keep-alive"), HDR_LIT("te"),
    HDR_LIT("trailer"),           HDR_LIT("transfer-encoding"), HDR_LIT("upgrade"),
    HDR_LIT("content-length"),    HDR_LIT("proxy-connection"),
};

/* Every header of every request and response is looked up in these lists, most of them
 * in all of them: the length and the first letter (the lists are lowercase letters first)
 * settle nearly every entry before a strncasecmp is called. */
static int hdr_is(const char *name, size_t n, const sg_str_t *set, size_t count)
{
    int c0 = n > 0 ? name[0] | 0x20 : 0;

    for (size_t i = 0; i < count; i++)
        if (set[i].n == n && set[i].p[0] == c0 && strncasecmp(name, set[i].p, n) == 0)
            return 1;
    return 0;
}

static int hdr_has_prefix(const char *name, size_t n, const sg_str_t *set, size_t count)
{
    int c0 = n > 0 ? name[0] | 0x20 : 0;

    for (size_t i = 0; i < count; i++)
        if (n >= set[i].n && set[i].p[0] == c0 && strncasecmp(name, set[i].p, set[i].n) == 0)
            return 1;
    return 0;
}

/* routes.drop_headers: names, or "prefix*" (conf.c checked the syntax). */
static int hdr_in_conf(const char *name, size_t n, const sg_conf_strv_t *drop)
{
    for (size_t i = 0; drop != NULL && i < drop->n; i++) {
        const char *e = drop->v[i];
        size_t len = strlen(e);

        if (len > 0 && e[len - 1] == '*' ? n >= len - 1 && strncasecmp(name, e, len - 1) == 0
                                         : sg_strcaseeq(name, n, e, len))
            return 1;
    }
    return 0;
}

int sg_hdr_is_request_hop(const char *name, size_t n)
{
    return hdr_is(name, n, hdr_hop, SG_ARRAY_SIZE(hdr_hop)) ||
           hdr_has_prefix(name, n, hdr_hop_prefix, SG_ARRAY_SIZE(hdr_hop_prefix));
}

int sg_hdr_upstream_class(const char *name, size_t n, int guarded, const sg_conf_strv_t *drop)
{
    if (sg_hdr_is_request_hop(name, n))
        return SG_HDR_DROP_HOP;
    /* '_' is a token character, but CGI/WSGI (HTTP_X_ORIGINAL_URL), nginx with
     * underscores_in_headers and others read it as '-': "X_Remote_User" or
     * "X-Original_URL" would be the identity or override header these lists drop. Names
     * with '_' are dropped on every route, as nginx does by default. */
    if (memchr(name, '_', n) != NULL)
        return SG_HDR_DROP_OVERRIDE;
    if (hdr_is(name, n, hdr_identity, SG_ARRAY_SIZE(hdr_identity)) ||
        hdr_is(name, n, hdr_change, SG_ARRAY_SIZE(hdr_change)) ||
        hdr_has_prefix(name, n, hdr_identity_prefix, SG_ARRAY_SIZE(hdr_identity_prefix)) ||
        hdr_in_conf(name, n, drop))
        return SG_HDR_DROP_IDENTITY;
    if (hdr_is(name, n, hdr_override, SG_ARRAY_SIZE(hdr_override)) ||
        hdr_has_prefix(name, n, hdr_override_prefix, SG_ARRAY_SIZE(hdr_override_prefix)))
        return SG_HDR_DROP_OVERRIDE;
    if (guarded && !hdr_is(name, n, hdr_guarded_allow, SG_ARRAY_SIZE(hdr_guarded_allow)))
        return SG_HDR_DROP_UNLISTED;
    return SG_HDR_KEEP;
}

int sg_hdr_is_response_hop(const char *name, size_t n)
{
    return hdr_is(name, n, hdr_response_hop, SG_ARRAY_SIZE(hdr_response_hop));
}

int sg_hdr_connection_lists(const sg_headers_t *h, const char *name, size_t n)
{
    for (size_t i = 0; i < h->n; i++) {
        const char *p, *e, *tok;

        if (!sg_strcaseeq(h->v[i].name.p, h->v[i].name.n, "connection", 10))
            continue;
        p = h->v[i].value.p;
        e = p + h->v[i].value.n;
        while (p < e) {
            while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            tok = p;
            while (p < e && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p > tok && sg_strcaseeq(tok, (size_t)(p - tok), name, n))
                return 1;
        }
    }
    return 0;
}
