/*
 * proxy/headers.c - header lists and the rules for which headers cross the proxy.
 *
 * The rules are the same for both front ends: hop-by-hop headers (RFC 9110
 * 7.6.1, plus every token listed in Connection) are dropped, and so are the
 * headers smsguard sets itself or must never forward (DESIGN.md "Details":
 * Authorization, Proxy-*, X-Forwarded-*; Host is the upstream's).
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

static int hdr_in(const char *name, size_t n, const char *const *set)
{
    for (; *set != NULL; set++)
        if (sg_strcaseeq(name, n, *set, strlen(*set)))
            return 1;
    return 0;
}

int sg_hdr_is_request_hop(const char *name, size_t n)
{
    static const char *const drop[] = {
        "connection",        "keep-alive",      "te",
        "trailer",           "transfer-encoding", "upgrade",
        "host",              "content-length",  "expect",
        "authorization",     "x-forwarded-for", "x-forwarded-proto",
        "x-forwarded-host",  "http2-settings",  "forwarded",
        NULL,
    };

    /* Proxy-Authorization, Proxy-Connection and every other Proxy-* header. */
    if (n >= 6 && strncasecmp(name, "proxy-", 6) == 0)
        return 1;
    return hdr_in(name, n, drop);
}

int sg_hdr_is_response_hop(const char *name, size_t n)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "proxy-connection", NULL,
    };

    return hdr_in(name, n, drop);
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
