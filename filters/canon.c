/*
 * filters/canon.c - canonicalisation and route matching of request targets.
 *
 * Owns the byte rules, the percent-decoding policy, the segment rules and the table of
 * guarded SMS routes (docs/design.md "Routes"). Leaves to
 * others: splitting an absolute-form target or :authority (front ends), the HTTP method
 * (405 is the route filter's), and the answer itself (the fault builder).
 *
 * Why so strict: smsguard and the upstream must agree on which method a path names. Every
 * place where two HTTP stacks are known to disagree (encoded slashes and backslashes, dot
 * segments, path parameters, double encoding, case, merged slashes, whitespace trimming,
 * suffix matching) is either folded into one spelling here or refused, so no spelling of
 * the stop-test path can reach vCenter without passing the filter chain. The output is what
 * is matched, audited and forwarded, never the client's bytes.
 *
 * One pass over the target writes the canonical form into a single pool buffer of n + 1
 * bytes: decoding only ever shrinks a byte run (three bytes become one) or keeps its length
 * (a reserved byte stays "%XX"), so the output can never outgrow the input.
 */
#include "filters/canon.h"
#include "filters/ops.h"

#define CANON_ROUTE_SEGS 7 /* sdk / vim25 / {release} / sms / {type} / {id} / {method} */
#define CANON_LIT(s) {(s), sizeof(s) - 1}
#define canon_refuse(reason)                                                                     \
    do {                                                                                         \
        *why = (reason);                                                                         \
        rv = SG_ERR;                                                                             \
        goto out;                                                                                \
    } while (0)

typedef struct {
    size_t off; /* into the output buffer */
    size_t len;
} canon_seg_t;

/* The guarded SmsTask routes. The VasaProvider ones are the rows of sg_ops[] (filters/ops.c). */
static const struct {
    sg_str_t type;
    sg_str_t method;
    sg_route_id_t route;
    const char *label;
} canon_routes[] = {
    {CANON_LIT("SmsTask"), CANON_LIT("QuerySmsTaskInfo"), SG_ROUTE_TASK_INFO, "task_info"},
    {CANON_LIT("SmsTask"), CANON_LIT("QuerySmsTaskResult"), SG_ROUTE_TASK_RESULT, "task_result"},
};

static const sg_str_t canon_vasa_provider = CANON_LIT("VasaProvider");

static const sg_str_t canon_sdk = CANON_LIT("sdk");
static const sg_str_t canon_vim25 = CANON_LIT("vim25");
static const sg_str_t canon_sms = CANON_LIT("sms");

static const char canon_hexdigits[] = "0123456789ABCDEF";

static inline int canon_hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

/* RFC 3986 section 2.3: the only bytes whose encoded and literal spellings are equivalent,
 * so the only ones decoded (section 6.2.2.2). */
static inline int canon_is_unreserved(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Bytes refused raw anywhere in the target: NUL and controls (request splitting, C-string
 * truncation upstream), space (trimmed or re-split by lenient parsers), DEL, and every
 * non-ASCII byte (overlong UTF-8 and Unicode case folding such as U+017F -> 's' would let
 * another spelling of a fixed segment through a Unicode-aware upstream). */
static inline int canon_is_bad_byte(unsigned c)
{
    return c < 0x21 || c >= 0x7F;
}

/* The bytes a path copies as they are with no other look: printable ASCII except the ones
 * canon_path() and canon_raw_check() act on ('/', '?', '%', '#', '\\', ';'). A table built
 * by the compiler, so that the common run of a segment costs one load and test per byte. */
#define CANON_P(c)                                                                               \
    ((c) > 0x20 && (c) < 0x7F && (c) != '/' && (c) != '?' && (c) != '%' && (c) != '#' &&        \
     (c) != '\\' && (c) != ';')
#define CANON_P4(c) CANON_P(c), CANON_P((c) + 1), CANON_P((c) + 2), CANON_P((c) + 3)
#define CANON_P16(c) CANON_P4(c), CANON_P4((c) + 4), CANON_P4((c) + 8), CANON_P4((c) + 12)
#define CANON_P64(c) CANON_P16(c), CANON_P16((c) + 16), CANON_P16((c) + 32), CANON_P16((c) + 48)
static const unsigned char canon_plain[256] = {CANON_P64(0), CANON_P64(64), CANON_P64(128),
                                               CANON_P64(192)};

static inline unsigned canon_lower(unsigned c)
{
    return (c >= 'A' && c <= 'Z') ? c | 0x20 : c;
}

/* ASCII-only, locale-independent: strncasecmp may fold more under some locales. */
static int canon_caseeq(const char *p, size_t n, const sg_str_t *lit)
{
    if (n != lit->n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (canon_lower((unsigned char)p[i]) != canon_lower((unsigned char)lit->p[i]))
            return 0;
    return 1;
}

/* Whether a segment is a fixed route segment in any case; clears *exact when its case
 * differs from the canonical one. The exact spelling, by far the common one, costs one
 * memcmp. */
static inline int canon_match(const char *buf, const canon_seg_t *s, const sg_str_t *lit,
                              int *exact)
{
    if (s->len != lit->n)
        return 0;
    if (memcmp(buf + s->off, lit->p, lit->n) == 0)
        return 1;
    if (!canon_caseeq(buf + s->off, s->len, lit))
        return 0;
    *exact = 0;
    return 1;
}

/* A release is four dot-separated decimal numbers of 1-5 digits ("8.0.3.0"). */
static int canon_release_ok(const char *p, size_t n)
{
    size_t dots = 0, digits = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            if (++digits > 5)
                return 0;
        } else if (p[i] == '.') {
            if (digits == 0 || ++dots > 3)
                return 0;
            digits = 0;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits > 0;
}

static inline int canon_is_ident(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Whether a canonical segment holds a guarded VasaProvider method name (any row of
 * sg_ops[]) as a word: in any case, with
 * no identifier byte ([A-Za-z0-9_]) on either side ("x.TestFailover..._Task.json",
 * "%20TestFailover..._Task", "+testfailover..._task-"). Case-insensitive routers, suffix
 * pattern matching ("/m" also serves "/m.*", Spring MVC before 5.3), whitespace trimming of
 * path tokens (Spring's trimTokens, CVE-2016-5007) and '+'-as-space decoding would all
 * dispatch such a segment to the method, so outside its canonical route it is refused
 * rather than forwarded unchecked. In canonical output every '%' starts an escape of a
 * byte that is not unreserved, hence not an identifier byte: "%XX" is a word boundary.
 * Linear: a candidate is only tried after a boundary, and a partial match consumes
 * identifier bytes, which cannot start the next candidate. */
static int canon_names_method(const char *p, size_t n, const sg_str_t *m)
{
    for (size_t i = 0; n - i >= m->n; i++) {
        if (i > 0 && canon_is_ident((unsigned char)p[i - 1]) && !(i >= 3 && p[i - 3] == '%'))
            continue;
        if (!canon_caseeq(p + i, m->n, m))
            continue;
        if (i + m->n == n || !canon_is_ident((unsigned char)p[i + m->n]))
            return 1;
    }
    return 0;
}

static int canon_names_guarded_method(const char *p, size_t n)
{
    for (size_t k = 0; k < sg_nops; k++) {
        const sg_str_t m = {sg_ops[k].method, sg_ops[k].method_len};

        if (n >= m.n && canon_names_method(p, n, &m))
            return 1;
    }
    return 0;
}

/* Segment rules, applied to the decoded segment so that every spelling of a dot ("%2e",
 * "%2E") is caught: dot segments are resolved by some stacks and not others
 * ("/a/../sdk/..." reaches a different method upstream than the one matched here), and empty
 * segments are merged by some (envoy merge_slashes, Tomcat) and not others. */
static const char *canon_seg_check(const char *s, size_t len)
{
    if (len == 0)
        return "empty path segment";
    if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
        return "dot segment in path";
    return NULL;
}

/* The state of one canonicalisation: the target, the output written so far, and the
 * segments the route match needs. */
typedef struct {
    const unsigned char *t; /* the target, n bytes */
    size_t n;
    size_t i;  /* into t; once the path is done, the query's '?' or n */
    char *buf; /* output, n + 1 bytes */
    size_t o;  /* bytes written to buf */
    canon_seg_t seg[CANON_ROUTE_SEGS]; /* the first segments, for the route match */
    canon_seg_t last;                  /* the last segment, for canon_names_guarded_method() */
    size_t nseg;                       /* all segments, also those past seg[] */
} canon_state_t;

/* The escape at p[0] ('%'), LEFT bytes from the end of the target: an unreserved byte
 * decoded, another reserved byte kept encoded in one spelling, anything else refused.
 * Writes to buf[*o] on. Returns NULL or the reason. */
static inline const char *canon_escape(const unsigned char *p, size_t left, char *buf, size_t *o)
{
    int hi, lo;
    unsigned c;

    if (left < 3 || (hi = canon_hexval(p[1])) < 0 || (lo = canon_hexval(p[2])) < 0)
        return "malformed percent-encoding in path";
    c = (unsigned)(hi << 4 | lo);
    if (canon_is_unreserved(c)) {
        buf[(*o)++] = (char)c; /* "vasa%2D1" and "vasa-1" are the same moId */
        return NULL;
    }
    /* An encoded '/' or '\' is one segment here and two after an upstream decodes it;
     * "%25" survives one decode as a new '%' escape (double encoding). */
    if (c == '/' || c == '\\' || c == '%')
        return "percent-encoded '/', '\\' or '%' in path";
    /* Same reasons as for raw bytes (canon_raw_check). An encoded space stays encoded: it is
     * common in datastore paths ("/folder/My%20VM/..."), and the one attack it carries,
     * trimming, is handled by canon_names_guarded_method(). */
    if (c < 0x20 || c >= 0x7F)
        return "percent-encoded control or non-ASCII byte in path";
    /* A decode-then-parse upstream would treat these as a path parameter, the start of
     * the query or a fragment, cutting "..._Task%3Bx" back to the method name. */
    if (c == ';' || c == '?' || c == '#')
        return "percent-encoded ';', '?' or '#' in path";
    /* Any other reserved byte keeps its meaning only while encoded (RFC 3986 2.2):
     * keep it encoded, in one spelling (upper-case hex, section 6.2.2.1). */
    buf[(*o)++] = '%';
    buf[(*o)++] = canon_hexdigits[c >> 4];
    buf[(*o)++] = canon_hexdigits[c & 0xF];
    return NULL;
}

/* A raw byte of the path: NULL when it is copied as it is, else the reason. */
static inline const char *canon_raw_check(unsigned c)
{
    if (canon_is_bad_byte(c))
        return "control, space or non-ASCII byte in request target";
    if (c == '#')
        return "fragment in request target"; /* never sent by a conforming client */
    if (c == '\\')
        return "backslash in path"; /* a separator on some stacks, not on others */
    if (c == ';')
        return "';' path parameter in path"; /* "/x;y" is "/x" on Tomcat/Jetty */
    return NULL;
}

/* The path, t[1] up to the query's '?' or the end, into buf[0, o) in canonical form, with
 * its segments noted; i is left on the '?' or n. Returns NULL or the reason. */
static const char *canon_path(canon_state_t *st)
{
    const unsigned char *t = st->t;
    char *buf = st->buf;
    size_t n = st->n, i, o = 1, start = 1;
    const char *reason = NULL;
    unsigned c;

    buf[0] = '/';
    for (i = 1; i <= n; i++) {
        while (i < n && canon_plain[t[i]])
            buf[o++] = (char)t[i++];
        c = i < n ? t[i] : '?'; /* the end of the target ends the path like a '?' */

        if (c == '/' || c == '?') {
            /* End of a segment. "/" alone (root, nothing decoded) is the one empty path. */
            if (c == '?' && o == 1)
                break;
            if ((reason = canon_seg_check(buf + start, o - start)) != NULL)
                break;
            st->last.off = start;
            st->last.len = o - start;
            if (st->nseg < CANON_ROUTE_SEGS)
                st->seg[st->nseg] = st->last;
            st->nseg++;
            if (c == '?')
                break;
            buf[o++] = '/';
            start = o;
            continue;
        }
        if (c == '%') {
            if ((reason = canon_escape(t + i, n - i, buf, &o)) != NULL)
                break;
            i += 2;
            continue;
        }
        if ((reason = canon_raw_check(c)) != NULL)
            break;
        buf[o++] = (char)c;
    }
    st->i = i;
    st->o = o;
    return reason;
}

/* A canonical route found: fills *out. Returns NULL, or the reason it is refused. */
static const char *canon_found(const canon_state_t *st, sg_canon_t *out, sg_route_id_t route,
                               int exact)
{
    const canon_seg_t *seg = st->seg;
    char *buf = st->buf;

    /* A case-insensitive upstream would run the method for "/SDK/.../vasaprovider/..";
     * forwarding such a spelling as "other" would skip every check, and rewriting
     * it would forward what the client did not send. */
    if (!exact)
        return "spelling differs from the canonical case";
    /* Every release is guarded, even one the upstream may not know. */
    if (!canon_release_ok(buf + seg[2].off, seg[2].len))
        return "release is not four dot-separated numbers";
    /* The methods take no query; a query could carry parameters the upstream
     * reads and the chain never saw. */
    if (st->i < st->n)
        return "query string on a guarded route";
    buf[st->o] = '\0';
    out->route = route;
    out->path = buf;
    out->path_len = st->o;
    out->release.p = buf + seg[2].off;
    out->release.n = seg[2].len;
    out->moid.p = buf + seg[5].off;
    out->moid.n = seg[5].len;
    return NULL;
}

/*
 * The guarded routes: a canonical path of sdk/vim25/{release}/sms/{type}/{id}/{method}
 * naming one of canon_routes[] or a row of sg_ops[] (type VasaProvider) fills *out
 * (out->path set); any other path leaves *out as it is. Returns NULL, or the reason a
 * guarded route is refused.
 */
static const char *canon_guarded(const canon_state_t *st, sg_canon_t *out)
{
    const canon_seg_t *seg = st->seg;
    char *buf = st->buf;
    int exact = 1;

    if (st->nseg != CANON_ROUTE_SEGS || !canon_match(buf, &seg[0], &canon_sdk, &exact) ||
        !canon_match(buf, &seg[1], &canon_vim25, &exact) ||
        !canon_match(buf, &seg[3], &canon_sms, &exact))
        return NULL;
    if (canon_match(buf, &seg[4], &canon_vasa_provider, &exact)) {
        for (size_t k = 0; k < sg_nops; k++) {
            const sg_str_t m = {sg_ops[k].method, sg_ops[k].method_len};
            int ex = exact;

            if (canon_match(buf, &seg[6], &m, &ex))
                return canon_found(st, out, sg_ops[k].route, ex);
        }
        return NULL;
    }
    for (size_t k = 0; k < SG_ARRAY_SIZE(canon_routes); k++) {
        int ex = exact;

        if (canon_match(buf, &seg[4], &canon_routes[k].type, &ex) &&
            canon_match(buf, &seg[6], &canon_routes[k].method, &ex))
            return canon_found(st, out, canon_routes[k].route, ex);
    }
    return NULL;
}

const char *sg_route_label(int route)
{
    const sg_op_t *op = sg_op_of_route(route);

    if (op != NULL)
        return op->label;
    for (size_t k = 0; k < SG_ARRAY_SIZE(canon_routes); k++)
        if ((int)canon_routes[k].route == route)
            return canon_routes[k].label;
    return "other";
}

/* Other paths keep their query verbatim after the byte checks: only the path is matched,
 * but a raw control byte or '#' would still split or cut the request line. Returns NULL
 * or the reason. */
static const char *canon_query(canon_state_t *st)
{
    unsigned c;

    for (; st->i < st->n; st->i++) {
        c = st->t[st->i];
        if (canon_is_bad_byte(c))
            return "control, space or non-ASCII byte in request target";
        if (c == '#')
            return "fragment in request target";
        st->buf[st->o++] = (char)c;
    }
    return NULL;
}

int sg_canon_mentions_stop(sg_pool_t *pool, const char *target, size_t n)
{
    char *buf = sg_pool_alloc(pool, n + 1);
    size_t o = 0;

    if (buf == NULL)
        return 1;
    for (size_t i = 0; i < n && target[i] != '?' && target[i] != '#'; i++) {
        int hi, lo;

        if (target[i] == '%' && i + 2 < n && (hi = canon_hexval((unsigned char)target[i + 1])) >= 0 &&
            (lo = canon_hexval((unsigned char)target[i + 2])) >= 0) {
            unsigned c = (unsigned)(hi << 4 | lo);

            buf[o++] = c != 0 ? (char)c : '%'; /* a decoded NUL would end the search */
            i += 2;
        } else {
            buf[o++] = target[i] != '\0' ? target[i] : '%';
        }
    }
    buf[o] = '\0';
    for (size_t k = 0; k < sg_nops; k++) {
        const char *m = sg_ops[k].method;
        size_t mn = sg_ops[k].method_len;
        char name[128];

        if (mn > 5 && strcmp(m + mn - 5, "_Task") == 0)
            mn -= 5; /* "...Stop" also finds "...Stop_Task" and "...StopRequestType" */
        if (mn >= sizeof(name))
            continue; /* no row has such a name */
        memcpy(name, m, mn);
        name[mn] = '\0';
        if (strcasestr(buf, name) != NULL)
            return 1;
    }
    return 0;
}

int sg_canon_target(sg_pool_t *pool, const char *target, size_t n, sg_canon_t *out,
                    const char **why)
{
    canon_state_t st = {.t = (const unsigned char *)target, .n = n};
    const char *reason;
    int rv = SG_OK;

    memset(out, 0, sizeof(*out));
    if (n == 0 || target[0] != '/')
        canon_refuse("request target does not start with '/'");
    if (n >= SIZE_MAX - 16) /* cannot happen for a received target; keeps n + 1 exact */
        canon_refuse("request target too long");
    st.buf = sg_pool_alloc(pool, n + 1);
    if (st.buf == NULL) {
        rv = SG_ENOMEM;
        goto out;
    }
    if ((reason = canon_path(&st)) != NULL || (reason = canon_guarded(&st, out)) != NULL)
        canon_refuse(reason);
    if (out->path != NULL)
        goto out; /* a guarded route */

    /* A guarded method under another shape (another type or namespace, a suffix, another
     * case) has no legitimate use and would reach the method on a lenient upstream. */
    if (st.nseg > 0 && canon_names_guarded_method(st.buf + st.last.off, st.last.len))
        canon_refuse("guarded method name outside its canonical route");
    if ((reason = canon_query(&st)) != NULL)
        canon_refuse(reason);
    st.buf[st.o] = '\0';
    out->route = SG_ROUTE_OTHER;
    out->path = st.buf;
    out->path_len = st.o;

out:
    if (rv != SG_OK)
        memset(out, 0, sizeof(*out));
    return rv;
}
