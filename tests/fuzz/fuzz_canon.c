/*
 * tests/fuzz/fuzz_canon.c - fuzz target for filters/canon.c (sg_canon_target).
 *
 * Feeds the input bytes as a request target, each time into a fresh pool, and aborts when
 * an accepted output breaks a property the proxy relies on:
 *   - it holds only bytes 0x21..0x7E, is NUL-terminated and no longer than the input;
 *   - its path has no empty, "." or ".." segment, no '\', ';' or '#', and every escape left
 *     in it is "%XX" with upper-case hex for a byte that is neither unreserved nor one of
 *     '/', '\', '%', ';', '?', '#', a control or non-ASCII byte (so no %2F or %25);
 *   - canonicalising it again gives the same route and the same bytes (a fixed point);
 *   - a guarded route has no query and is exactly the canonical route string around its
 *     release and moId, with the release four dot-separated numbers;
 *   - independently of the matcher: if the path, fully percent-decoded and compared without
 *     case, has the stop-test shape, the result is SG_ROUTE_STOP_TEST, and the last segment
 *     of an "other" path never holds the stop-test method name as a word.
 * A refusal must come with a reason and leave the output empty.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "filters/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_canon: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#define FUZZ_STOP_M "TestFailoverReplicationGroupStop_Task"

static int fuzz_hex(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1; /* lower case is not canonical */
}

static int fuzz_unreserved(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static int fuzz_ident(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int fuzz_ieq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);

    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++) {
        unsigned x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (x != y)
            return 0;
    }
    return 1;
}

/* Checks the path part (before any '?') segment by segment and escape by escape. */
static void fuzz_check_path(const char *p, size_t n)
{
    size_t start = 1;

    FUZZ_CHECK(n >= 1 && p[0] == '/');
    if (n == 1)
        return; /* the root */
    for (size_t i = 1; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t len = i - start;
            FUZZ_CHECK(len > 0);
            FUZZ_CHECK(!(len == 1 && p[start] == '.'));
            FUZZ_CHECK(!(len == 2 && p[start] == '.' && p[start + 1] == '.'));
            start = i + 1;
            continue;
        }
        FUZZ_CHECK(p[i] != '\\' && p[i] != ';' && p[i] != '#' && p[i] != '?');
        if (p[i] == '%') {
            int hi, lo;
            unsigned c;
            FUZZ_CHECK(i + 2 < n);
            hi = fuzz_hex((unsigned char)p[i + 1]);
            lo = fuzz_hex((unsigned char)p[i + 2]);
            FUZZ_CHECK(hi >= 0 && lo >= 0);
            c = (unsigned)(hi << 4 | lo);
            FUZZ_CHECK(!fuzz_unreserved(c));
            FUZZ_CHECK(c != '/' && c != '\\' && c != '%' && c != ';' && c != '?' && c != '#');
            FUZZ_CHECK(c >= 0x20 && c < 0x7F); /* "%20" stays encoded */
            i += 2;
        }
    }
}

/* Independent of canon.c's matcher: decode every escape, split, compare without case. */
static void fuzz_check_route(const sg_canon_t *c, size_t plen)
{
    char *d = malloc(plen + 1);
    const char *seg[7], *last = NULL;
    size_t segn[7], lastn = 0, nseg = 0, dn = 0, start = 1;

    FUZZ_CHECK(d != NULL);
    for (size_t i = 0; i < plen; i++) {
        if (c->path[i] == '%') {
            d[dn++] = (char)(fuzz_hex((unsigned char)c->path[i + 1]) << 4 |
                             fuzz_hex((unsigned char)c->path[i + 2]));
            i += 2;
        } else {
            d[dn++] = c->path[i];
        }
    }
    /* The decoded path holds no '/' but the separators (no %2F survives), so splitting it
     * gives the segments the upstream sees. */
    for (size_t i = 1; i <= dn && dn > 1; i++) {
        if (i == dn || d[i] == '/') {
            last = d + start;
            lastn = i - start;
            if (nseg < 7) {
                seg[nseg] = last;
                segn[nseg] = lastn;
            }
            nseg++;
            start = i + 1;
        }
    }
    if (nseg == 7 && fuzz_ieq(seg[0], segn[0], "sdk") && fuzz_ieq(seg[1], segn[1], "vim25") &&
        fuzz_ieq(seg[3], segn[3], "sms") && fuzz_ieq(seg[4], segn[4], "VasaProvider") &&
        fuzz_ieq(seg[6], segn[6], FUZZ_STOP_M))
        FUZZ_CHECK(c->route == SG_ROUTE_STOP_TEST);
    if (c->route == SG_ROUTE_OTHER && last != NULL) {
        size_t mn = strlen(FUZZ_STOP_M);
        for (size_t i = 0; i + mn <= lastn; i++) {
            if ((i == 0 || !fuzz_ident((unsigned char)last[i - 1])) &&
                (i + mn == lastn || !fuzz_ident((unsigned char)last[i + mn])))
                FUZZ_CHECK(!fuzz_ieq(last + i, mn, FUZZ_STOP_M));
        }
    }
    free(d);
}

static void fuzz_check_guarded(const sg_canon_t *c)
{
    static const char *const shape[][2] = {
        {"VasaProvider", FUZZ_STOP_M},
        {"SmsTask", "QuerySmsTaskInfo"},
        {"SmsTask", "QuerySmsTaskResult"},
    };
    const char *const *s = shape[c->route - SG_ROUTE_STOP_TEST];
    char want[4096];
    size_t dots = 0;
    int n;

    FUZZ_CHECK(memchr(c->path, '?', c->path_len) == NULL);
    FUZZ_CHECK(c->release.p > c->path && c->release.p + c->release.n <= c->path + c->path_len);
    FUZZ_CHECK(c->moid.p > c->path && c->moid.p + c->moid.n <= c->path + c->path_len);
    for (size_t i = 0; i < c->release.n; i++) {
        FUZZ_CHECK((c->release.p[i] >= '0' && c->release.p[i] <= '9') || c->release.p[i] == '.');
        dots += c->release.p[i] == '.';
    }
    FUZZ_CHECK(dots == 3);
    if (c->path_len >= sizeof(want))
        return;
    n = snprintf(want, sizeof(want), "/sdk/vim25/%.*s/sms/%s/%.*s/%s", (int)c->release.n,
                 c->release.p, s[0], (int)c->moid.n, c->moid.p, s[1]);
    FUZZ_CHECK(n >= 0 && (size_t)n == c->path_len && memcmp(want, c->path, c->path_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_pool_t pool;
    sg_canon_t a, b;
    const char *why = NULL;
    const char *q;
    size_t plen;
    int rv;

    sg_pool_init(&pool, 1024);
    rv = sg_canon_target(&pool, (const char *)data, size, &a, &why);
    if (rv != SG_OK) {
        FUZZ_CHECK(rv == SG_ERR && why != NULL && a.path == NULL && a.path_len == 0);
        goto out;
    }

    FUZZ_CHECK(a.path != NULL && a.path_len <= size && a.path[a.path_len] == '\0');
    for (size_t i = 0; i < a.path_len; i++) {
        unsigned c = (unsigned char)a.path[i];
        FUZZ_CHECK(c >= 0x21 && c <= 0x7E && c != '#');
    }
    q = memchr(a.path, '?', a.path_len);
    plen = q != NULL ? (size_t)(q - a.path) : a.path_len;
    fuzz_check_path(a.path, plen);
    fuzz_check_route(&a, plen);
    if (a.route != SG_ROUTE_OTHER)
        fuzz_check_guarded(&a);
    else
        FUZZ_CHECK(a.release.p == NULL && a.moid.p == NULL);

    rv = sg_canon_target(&pool, a.path, a.path_len, &b, &why);
    FUZZ_CHECK(rv == SG_OK);
    FUZZ_CHECK(b.route == a.route && b.path_len == a.path_len);
    FUZZ_CHECK(memcmp(a.path, b.path, a.path_len) == 0);
    FUZZ_CHECK(b.release.n == a.release.n && b.moid.n == a.moid.n);

out:
    sg_pool_dispose(&pool);
    return 0;
}
