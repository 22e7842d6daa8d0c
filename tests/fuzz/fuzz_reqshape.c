/*
 * tests/fuzz/fuzz_reqshape.c - a structure-aware fuzzer of request shapes. The input is not
 * sent as it is: it is read as a small program that GENERATES requests, so that mutations
 * are spent on the shapes a request can take (which pseudo-headers, in which order, which
 * method, authority, target and header fields) rather than on framing and HPACK. The
 * requests are then driven through the real front end (HTTP/2: HEADERS and CONTINUATION
 * frames whose blocks come from nghttp2's own HPACK deflater; HTTP/1.1: request lines and
 * header lines), the whole filter chain and the upstream client, with the front harness
 * (tests/fuzz/front_harness.h) as fuzz_h1 and fuzz_h2 use it.
 *
 * What is asserted, for any input (besides what the harness checks: no crash, leak,
 * sanitizer report or livelock, the connection ends, nothing left counted or queued):
 *
 *  1. The request model (docs/design.md "The request model", proxy/reqcheck.c): every
 *     request that reaches the filter chain (the seam sg__req_chain_hook in proxy/req.c)
 *     has a method, a scheme, an authority and a path, all present and non-empty; the path
 *     starts with '/' (origin form: never asterisk, absolute or authority form); the method
 *     is a token and neither CONNECT nor TRACE (methods are case-sensitive, RFC 9110 9.1);
 *     the authority names one of the listener's server_names, with at most a numeric port;
 *     no field carries a byte that would end or split a line upstream.
 *  2. What reaches the upstream (docs/design.md "Headers that reach the upstream"; the seam
 *     sg__up_request_hook in proxy/upstream.c, which sees every request head built for the
 *     upstream): it parses as exactly one HTTP/1.1 request head whose method and target are
 *     those the chain judged; Host is the upstream's, once; X-Forwarded-For and -Proto are
 *     the gateway's, once; X-Forwarded-Host, when sent, is once and the request's checked
 *     authority; no hop-by-hop field, no credentials (Authorization, Proxy-*), no identity
 *     or target/method override the client invented, nothing its Connection header named,
 *     on any route; and on a guarded route nothing beyond the allowlist below.
 *
 * The program (every byte string is a valid one; missing bytes read as 0):
 *
 *   byte 0   the harness's control byte (how the bytes are cut into reads, how the
 *            connection ends; FZ_RAW is ignored: the HTTP/2 preface is always sent)
 *   byte 1   bit 0: HTTP/1.1 (else HTTP/2); bits 1-2: number of requests - 1
 *   then one record per request:
 *
 *   HTTP/2:  PRESENT REPEAT ORDER METHOD SCHEME AUTHORITY PATH PROTOCOL ALT NHDR
 *            (NAME VALUE) x (NHDR % 16)  FRAMES [LEN BYTES]
 *     PRESENT  which pseudo-headers are sent: 0x01 :method, 0x02 :scheme, 0x04
 *              :authority, 0x08 :path, 0x10 :protocol, 0x20 an unknown :foo, 0x40 the
 *              response pseudo-header :status; 0x80: the last pseudo-header goes after
 *              the regular fields (RFC 9113 8.3 forbids it)
 *     REPEAT   the same bits: that pseudo-header is sent twice, the second time with the
 *              table entry ALT further on
 *     ORDER    the pseudo-headers are rotated by ORDER & 0x7f places; 0x80 reverses them
 *     METHOD .. PROTOCOL  indexes into the tables below
 *     NAME VALUE  a regular field: NAME indexes rs_names; VALUE & 0x3f indexes rs_values
 *              (0: the natural value for that name), VALUE & 0x40 upper-cases the name's
 *              first letter, VALUE & 0x80 asks HPACK for a never-indexed literal
 *     FRAMES   bits 0-1: 0 END_STREAM on HEADERS, 1 one DATA with END_STREAM, 2 two DATA
 *              frames (the body split), 3 DATA without END_STREAM (the stream stays
 *              open); bits 2-4: the body (rs_bodies, 3: LEN BYTES from the input);
 *              0x20 RST_STREAM(CANCEL) after; 0x40 the header block split over HEADERS
 *              and CONTINUATION; 0x80 the stream id reused (a protocol error)
 *
 *   HTTP/1.1: METHOD FORM PATH AUTHORITY SCHEME VERSION HOST NHDR (NAME VALUE) x (NHDR % 16)
 *             BODY [LEN BYTES]
 *     FORM     % 6: origin (PATH), absolute (SCHEME://AUTHORITY PATH), authority form
 *              (AUTHORITY), asterisk, empty, PATH without its leading '/'
 *     HOST     bits 0-1: no Host, Host = AUTHORITY, Host = another authority (the entry
 *              1 + bits 2-5 further on), both Host lines; 0x40 Connection: close; 0x80
 *              bare LF line ends
 *     NAME VALUE  as for HTTP/2 (VALUE & 0x80 unused)
 *     BODY     bits 0-1: none, Content-Length, chunked, a Content-Length one byte short;
 *              bits 2-4: the body as for HTTP/2; 0x20 Expect: 100-continue
 *
 * Seeds (tests/fuzz/corpus/reqshape/) hold the crash this target was written for
 * (CONNECT with :authority and no :path, then DATA), extended CONNECT, TRACE, OPTIONS *, a missing
 * :scheme, and valid guarded and forwarded requests that reach the upstream.
 */
#include <nghttp2/nghttp2.h>
#include <strings.h>

#include "tests/fuzz/front_harness.h"

/* ---- what the program picks from ---- */

#define RS_STOP_PATH "/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/TestFailoverReplicationGroupStop_Task"
#define RS_STOP_BODY                                                                           \
    "{\"groupId\":[{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"dg-1\"}}]," \
    "\"force\":false}"
#define RS_BIG 2000 /* a field close to limits.max_header_bytes (2048 in the harness) */

/* A table entry: bytes and length (some hold a NUL). L_BIG is the table's big entry, filled
 * in by rs_init_tables: a field about as large as the harness's limits allow, or more. */
typedef struct {
    const char *p;
    size_t n;
} rs_lit_t;

#define L(s) {s, sizeof(s) - 1}
#define L_BIG {NULL, 0}

static char rs_big_a[RS_BIG], rs_big_token[RS_BIG], rs_big_host[255];

static const rs_lit_t rs_methods[] = {
    L("GET"), L("POST"), L("HEAD"), L("OPTIONS"), L("CONNECT"), L("TRACE"), L("PUT"),
    L("DELETE"), L("PATCH"), L("get"), L("post"), L("connect"), L("trace"), L("PRI"),
    L("M-SEARCH"), L(""), L("G ET"), L("GET\r\n"), L("POST\0"), L_BIG,
};
static const rs_lit_t rs_schemes[] = {L("https"), L("http"), L(""), L("HTTPS"),
                                      L("ftp"), L("https:"), L("h ttps")};
static const rs_lit_t rs_authorities[] = {
    L("localhost"), L("localhost:8443"), L("LOCALHOST"), L("localhost."), L("127.0.0.1"),
    L("[::1]"), L("[::1]:8443"), L(""), L("user@localhost"), L("user:pw@localhost"),
    L("evil.example"), L("vc.example"), L("vcenter.invalid:443"), L("localhost:"),
    L("localhost:99999"), L("localhost:0"), L("local host"), L("localhost/x"),
    L("localhost?x"), L("[::1"), L("%6cocalhost"), L("localhost\r\nx-injected: 1"),
    L("localhost\0.evil.example"), L_BIG,
};
static const rs_lit_t rs_paths[] = {
    L("/"), L("/sim/echo/x"), L(RS_STOP_PATH),
    L("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/testfailoverreplicationgroupstop_task"),
    L("/SDK/vim25/8.0.3.0/SMS/vasaprovider/vasa-1/TestFailoverReplicationGroupStop_Task"),
    L("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/%54estFailoverReplicationGroupStop_Task"),
    L("/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa%2D1/TestFailoverReplicationGroupStop_Task"),
    L(RS_STOP_PATH "?x=1"), L(RS_STOP_PATH ";x"), L("/" RS_STOP_PATH), L("/x/.." RS_STOP_PATH),
    L("/sdk/vim25/8.0.3.0/sms/SmsTask/SmsTask-1/QuerySmsTaskInfo"),
    L("/sdk/vim25/8.0.3.0/sms/SmsTask/SmsTask-1/QuerySmsTaskResult"), L("*"), L(""),
    L("sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/TestFailoverReplicationGroupStop_Task"),
    L("https://localhost" RS_STOP_PATH), L("http://evil.example/sim/echo/x"),
    L("localhost:8443"), L("/\0"), L("/a b"), L("/\x7f"), L("/#frag"), L("?q"),
    L("/sim/echo/x\r\nx-injected: 1"), L_BIG,
};
static const rs_lit_t rs_protocols[] = {L("websocket"), L(""), L("connect-udp"), L("h2c")};
static const rs_lit_t rs_names[] = {
    L("host"), L("content-type"), L("content-length"), L("authorization"), L("te"),
    L("connection"), L("keep-alive"), L("proxy-connection"), L("transfer-encoding"),
    L("upgrade"), L("x-forwarded-for"), L("x-forwarded-host"), L("x-forwarded-proto"),
    L("forwarded"), L("x-remote-user"), L("remote-user"), L("x-forwarded-user"),
    L("x-authenticated-user"), L("x-smsguard-tenant"), L("x-original-url"),
    L("x-rewrite-url"), L("x-http-method-override"), L("x-http-method"),
    L("x-method-override"), L("vmware-api-session-id"), L("accept"), L("user-agent"),
    L("x-request-id"), L("cookie"), L("expect"), L("x-invented"), L("x-fuzz-1"),
    L("content-encoding"), L("proxy-authorization"), L("http2-settings"), L(""), L("x a"),
    L("x:a"), L("x-real-ip"), L("x-forwarded-prefix"), L("accept-language"),
    L("x-remote-group"), L_BIG,
};
static const rs_lit_t rs_values[] = {
    {NULL, 0}, /* never read: VALUE 0 is the natural value for the name (rs_natural) */
    L(""), L("1"), L("trailers"), L("close"), L("chunked"), L("application/json"),
    L("Bearer " FZ_TOKEN_OPERATOR), L("Bearer " FZ_TOKEN_VIEWER), L("Bearer " FZ_TOKEN_FORCE),
    L("localhost"), L("evil.example"), L(RS_STOP_PATH), L("POST"), L("alice"), L("5"), L("0"),
    L("-1"), L("a\r\nx-injected: 1"), L("a\nb"), L("a\0b"), L("websocket"),
    L("100-continue"), L("gzip"), L("keep-alive, x-fuzz-1"), L("s1"), L_BIG,
};
static const rs_lit_t rs_bodies[] = {L(""), L(RS_STOP_BODY), L("{}"), L_BIG /* from the input */,
                                     L("{\"groupId\":[]}"), L("x"), L("\0"),
                                     L(RS_STOP_BODY RS_STOP_BODY)};
static const rs_lit_t rs_versions[] = {L("HTTP/1.1"), L("HTTP/1.0"), L("HTTP/2.0"),
                                       L("HTTP/1.2"), L("HTTP/0.9"), L("http/1.1"),
                                       L("HTTP/1.1 "), L("")};

#define RS_N(a) (sizeof(a) / sizeof((a)[0]))

/* Entry i of a table (modulo its size), BIG for its L_BIG entry. */
static rs_lit_t rs_pick_(const rs_lit_t *t, size_t n, unsigned i, const char *big, size_t bign)
{
    rs_lit_t e = t[i % n];

    return e.p != NULL ? e : (rs_lit_t){big, bign};
}
#define rs_pick(t, i, big) rs_pick_(t, RS_N(t), i, big, sizeof(big))

static void rs_init_tables(void)
{
    memset(rs_big_a, 'a', sizeof(rs_big_a));
    for (size_t i = 0; i < sizeof(rs_big_token); i++)
        rs_big_token[i] = "abcdefghijklmnopqrstuvwxyz-0123456789"[i % 37];
    /* 63-byte labels: the longest name DNS allows (RFC 1035 2.3.4) */
    memset(rs_big_host, 'h', sizeof(rs_big_host));
    for (size_t i = 63; i < sizeof(rs_big_host); i += 64)
        rs_big_host[i] = '.';
}

/* ---- reading the program ---- */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} rs_rd_t;

static unsigned rs_u8(rs_rd_t *rd)
{
    return rd->i < rd->n ? rd->p[rd->i++] : 0;
}

/* ---- the bytes the client sends ---- */

static struct {
    uint8_t *p;
    size_t n, cap;
} rs_out;

static void rs_put(const void *p, size_t n)
{
    if (rs_out.n + n > rs_out.cap) {
        size_t cap = (rs_out.n + n) * 2;
        uint8_t *np = realloc(rs_out.p, cap);

        if (np == NULL)
            fz_die("out of memory");
        rs_out.p = np;
        rs_out.cap = cap;
    }
    if (n > 0)
        memcpy(rs_out.p + rs_out.n, p, n);
    rs_out.n += n;
}

static void rs_puts(const char *s)
{
    rs_put(s, strlen(s));
}

static void rs_putl(rs_lit_t l)
{
    rs_put(l.p, l.n);
}

static void rs_frame(uint8_t type, uint8_t flags, uint32_t sid, const void *p, size_t n)
{
    uint8_t h[9] = {(uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, type, flags,
                    (uint8_t)(sid >> 24 & 0x7f), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8),
                    (uint8_t)sid};

    rs_put(h, 9);
    rs_put(p, n);
}

/* The body a record asks for: a table entry, or LEN bytes of the input. */
static rs_lit_t rs_body(rs_rd_t *rd, unsigned idx)
{
    rs_lit_t b = rs_bodies[idx % RS_N(rs_bodies)];

    if (b.p == NULL) {
        b.n = rs_u8(rd);
        if (b.n > rd->n - rd->i)
            b.n = rd->n - rd->i;
        b.p = (const char *)rd->p + rd->i;
        rd->i += b.n;
    }
    return b;
}

/* One regular field of a record. */
typedef struct {
    char name[RS_BIG + 1];
    char num[24];
    rs_lit_t value;
    size_t nlen;
    int never_index, natural_cl; /* the natural Content-Length: the body's, filled in later */
} rs_field_t;

static int rs_is(rs_lit_t l, const char *s)
{
    return l.n == strlen(s) && memcmp(l.p, s, l.n) == 0;
}

/* The natural value of a field: what a client sending it would mean. */
static rs_lit_t rs_natural(rs_lit_t name, rs_lit_t authority)
{
    static const struct {
        const char *name;
        rs_lit_t value;
    } nat[] = {
        {"content-type", L("application/json")},
        {"authorization", L("Bearer " FZ_TOKEN_OPERATOR)},
        {"te", L("trailers")},
        {"x-forwarded-host", L("evil.example")},
        {"forwarded", L("for=192.0.2.1;host=evil.example")},
        {"x-original-url", L(RS_STOP_PATH)},
        {"x-rewrite-url", L(RS_STOP_PATH)},
        {"x-http-method-override", L("DELETE")},
        {"x-http-method", L("DELETE")},
        {"x-method-override", L("DELETE")},
        {"x-remote-user", L("administrator@vsphere.local")},
        {"remote-user", L("administrator@vsphere.local")},
        {"x-forwarded-user", L("administrator@vsphere.local")},
        {"x-authenticated-user", L("administrator@vsphere.local")},
        {"x-smsguard-tenant", L("t2")},
        {"x-remote-group", L("Administrators")},
        {"x-real-ip", L("10.0.0.1")},
        {"x-forwarded-prefix", L("/sdk")},
    };

    if (rs_is(name, "host"))
        return authority;
    for (size_t i = 0; i < RS_N(nat); i++)
        if (rs_is(name, nat[i].name))
            return nat[i].value;
    return (rs_lit_t)L("x-fuzz-value");
}

static void rs_field(rs_rd_t *rd, rs_field_t *f, rs_lit_t authority)
{
    unsigned ni = rs_u8(rd), vi = rs_u8(rd);
    rs_lit_t name = rs_pick(rs_names, ni, rs_big_token);

    f->nlen = name.n;
    memcpy(f->name, name.p, name.n);
    f->name[name.n] = '\0';
    if ((vi & 0x40) && f->nlen > 0 && f->name[0] >= 'a' && f->name[0] <= 'z')
        f->name[0] = (char)(f->name[0] - 'a' + 'A');
    f->never_index = (vi & 0x80) != 0;
    f->natural_cl = 0;
    vi &= 0x3f;
    if (vi % RS_N(rs_values) == 0) {
        f->natural_cl = rs_is(name, "content-length");
        f->value = rs_natural(name, authority);
    } else {
        f->value = rs_pick(rs_values, vi, rs_big_a);
    }
}

/* The natural Content-Length, once the body is known. */
static void rs_field_body(rs_field_t *f, size_t body_len)
{
    if (f->natural_cl) {
        snprintf(f->num, sizeof(f->num), "%zu", body_len);
        f->value = (rs_lit_t){f->num, strlen(f->num)};
    }
}

/* ---- HTTP/2 ---- */

enum { P_METHOD, P_SCHEME, P_AUTHORITY, P_PATH, P_PROTOCOL, P_FOO, P_STATUS, P_N };

#define RS_MAX_FIELDS 15
#define RS_FRAME_MAX 16384 /* SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 6.5.2) */

static void rs_h2_request(rs_rd_t *rd, nghttp2_hd_deflater *def, uint32_t *last_sid)
{
    static const char *const pnames[P_N] = {":method", ":scheme", ":authority", ":path",
                                           ":protocol", ":foo", ":status"};
    static rs_field_t fields[RS_MAX_FIELDS];
    static uint8_t block[1 << 17];
    unsigned present = rs_u8(rd), repeat = rs_u8(rd), order = rs_u8(rd);
    unsigned idx[P_PROTOCOL + 1], alt, nhdr, frames;
    rs_lit_t pv[P_N][2], body;
    nghttp2_nv pseudo[2 * P_N], nva[2 * P_N + RS_MAX_FIELDS];
    size_t npseudo = 0, nnv, blen, piece;
    uint32_t sid;
    uint8_t hflags;
    ssize_t rv;

    for (int i = 0; i <= P_PROTOCOL; i++)
        idx[i] = rs_u8(rd);
    alt = rs_u8(rd);
    nhdr = rs_u8(rd) % (RS_MAX_FIELDS + 1);
    for (int k = 0; k < 2; k++) {
        unsigned d = k == 0 ? 0 : alt;

        pv[P_METHOD][k] = rs_pick(rs_methods, idx[P_METHOD] + d, rs_big_token);
        pv[P_SCHEME][k] = rs_schemes[(idx[P_SCHEME] + d) % RS_N(rs_schemes)];
        pv[P_AUTHORITY][k] = rs_pick(rs_authorities, idx[P_AUTHORITY] + d, rs_big_host);
        pv[P_PATH][k] = rs_pick(rs_paths, idx[P_PATH] + d, rs_big_a);
        pv[P_PROTOCOL][k] = rs_protocols[(idx[P_PROTOCOL] + d) % RS_N(rs_protocols)];
        pv[P_FOO][k] = (rs_lit_t)L("bar");
        pv[P_STATUS][k] = (rs_lit_t)L("200");
    }
    for (unsigned i = 0; i < nhdr; i++)
        rs_field(rd, &fields[i], pv[P_AUTHORITY][0]);
    frames = rs_u8(rd);
    body = rs_body(rd, frames >> 2 & 7);

    for (int p = 0; p < P_N; p++)
        for (int k = 0; (present >> p & 1) && k < ((repeat >> p & 1) ? 2 : 1); k++)
            pseudo[npseudo++] = (nghttp2_nv){(uint8_t *)pnames[p], (uint8_t *)pv[p][k].p,
                                             strlen(pnames[p]), pv[p][k].n, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < npseudo; i++)
        nva[i] = pseudo[(i + (order & 0x7f)) % npseudo];
    for (size_t i = 0; (order & 0x80) && i < npseudo / 2; i++) {
        nghttp2_nv t = nva[i];

        nva[i] = nva[npseudo - 1 - i];
        nva[npseudo - 1 - i] = t;
    }
    nnv = npseudo;
    for (unsigned i = 0; i < nhdr; i++) {
        rs_field_t *f = &fields[i];

        rs_field_body(f, body.n);
        nva[nnv++] = (nghttp2_nv){(uint8_t *)f->name, (uint8_t *)f->value.p, f->nlen, f->value.n,
                                  f->never_index ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE};
    }
    if ((present & 0x80) && npseudo > 0 && nnv > npseudo) {
        /* The last pseudo-header after the regular fields (RFC 9113 8.3: malformed). */
        nghttp2_nv t = nva[npseudo - 1];

        memmove(&nva[npseudo - 1], &nva[npseudo], (nnv - npseudo) * sizeof(nva[0]));
        nva[nnv - 1] = t;
    }
    rv = nghttp2_hd_deflate_hd(def, block, sizeof(block), nva, nnv);
    if (rv < 0)
        fz_die("nghttp2_hd_deflate_hd");
    blen = (size_t)rv;

    /* Client streams are odd and increasing (RFC 9113 5.1.1); 0x80 reuses the last one. */
    sid = (frames & 0x80) && *last_sid != 0 ? *last_sid : *last_sid + (*last_sid ? 2 : 1);
    *last_sid = sid;
    hflags = (frames & 3) == 0 ? NGHTTP2_FLAG_END_STREAM : 0;
    piece = (frames & 0x40) ? blen / 2 + 1 : RS_FRAME_MAX;
    piece = SG_MIN(piece, (size_t)RS_FRAME_MAX);
    for (size_t off = 0, k; off < blen || off == 0; off += k) {
        k = SG_MIN(piece, blen - off);
        rs_frame(off == 0 ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION,
                 (uint8_t)((off == 0 ? hflags : 0) |
                           (off + k == blen ? NGHTTP2_FLAG_END_HEADERS : 0)),
                 sid, block + off, k);
        if (blen == 0)
            break;
    }
    switch (frames & 3) {
    case 1:
        rs_frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, sid, body.p, body.n);
        break;
    case 2:
        rs_frame(NGHTTP2_DATA, 0, sid, body.p, body.n / 2);
        rs_frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, sid, body.p + body.n / 2,
                 body.n - body.n / 2);
        break;
    case 3:
        rs_frame(NGHTTP2_DATA, 0, sid, body.p, body.n);
        break;
    }
    if (frames & 0x20) {
        static const uint8_t cancel[4] = {0, 0, 0, NGHTTP2_CANCEL};

        rs_frame(NGHTTP2_RST_STREAM, 0, sid, cancel, 4);
    }
}

static void rs_h2_program(rs_rd_t *rd, unsigned nreq)
{
    nghttp2_hd_deflater *def;
    uint32_t last_sid = 0;

    /* One deflater for the connection: HPACK's dynamic table is connection state. */
    if (nghttp2_hd_deflate_new(&def, 4096) != 0)
        fz_die("nghttp2_hd_deflate_new");
    rs_puts("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    rs_frame(NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    for (unsigned i = 0; i < nreq; i++)
        rs_h2_request(rd, def, &last_sid);
    nghttp2_hd_deflate_del(def);
}

/* ---- HTTP/1.1 ---- */

static void rs_h1_request(rs_rd_t *rd)
{
    static rs_field_t fields[RS_MAX_FIELDS];
    unsigned mi = rs_u8(rd), form = rs_u8(rd) % 6, pi = rs_u8(rd), ai = rs_u8(rd),
             si = rs_u8(rd), vi = rs_u8(rd), host = rs_u8(rd),
             nhdr = rs_u8(rd) % (RS_MAX_FIELDS + 1), bodyb;
    rs_lit_t method = rs_pick(rs_methods, mi, rs_big_token);
    rs_lit_t path = rs_pick(rs_paths, pi, rs_big_a);
    rs_lit_t auth = rs_pick(rs_authorities, ai, rs_big_host);
    rs_lit_t auth2 = rs_pick(rs_authorities, ai + 1 + (host >> 2 & 15), rs_big_host);
    const char *eol = (host & 0x80) ? "\n" : "\r\n";
    rs_lit_t body;
    char num[48];

    for (unsigned i = 0; i < nhdr; i++)
        rs_field(rd, &fields[i], auth);
    bodyb = rs_u8(rd);
    body = rs_body(rd, bodyb >> 2 & 7);

    rs_putl(method);
    rs_puts(" ");
    switch (form) {
    case 0: /* origin form */
        rs_putl(path);
        break;
    case 1: /* absolute form (RFC 9112 3.2.2) */
        rs_putl(rs_schemes[si % RS_N(rs_schemes)]);
        rs_puts("://");
        rs_putl(auth);
        rs_putl(path);
        break;
    case 2: /* authority form (CONNECT's, RFC 9112 3.2.3) */
        rs_putl(auth);
        break;
    case 3: /* asterisk form (OPTIONS', RFC 9112 3.2.4) */
        rs_puts("*");
        break;
    case 4: /* none */
        break;
    default: /* relative, no leading '/' */
        if (path.n > 0 && path.p[0] == '/')
            path.p++, path.n--;
        rs_putl(path);
        break;
    }
    rs_puts(" ");
    rs_putl(rs_versions[vi % RS_N(rs_versions)]);
    rs_puts(eol);
    if ((host & 3) == 1 || (host & 3) == 3) {
        rs_puts("Host: ");
        rs_putl(auth);
        rs_puts(eol);
    }
    if ((host & 3) >= 2) {
        rs_puts("Host: ");
        rs_putl(auth2);
        rs_puts(eol);
    }
    if (host & 0x40) {
        rs_puts("Connection: close");
        rs_puts(eol);
    }
    for (unsigned i = 0; i < nhdr; i++) {
        rs_field_body(&fields[i], body.n);
        rs_put(fields[i].name, fields[i].nlen);
        rs_puts(": ");
        rs_putl(fields[i].value);
        rs_puts(eol);
    }
    if (bodyb & 0x20) {
        rs_puts("Expect: 100-continue");
        rs_puts(eol);
    }
    switch (bodyb & 3) {
    case 0:
        rs_puts(eol);
        break;
    case 1:
    case 3: /* 3: one byte short: the rest of the body is taken for the next request */
        snprintf(num, sizeof(num), "Content-Length: %zu%s%s", (bodyb & 3) == 1 ? body.n : body.n + 1,
                 eol, eol);
        rs_puts(num);
        rs_putl(body);
        break;
    case 2:
        rs_puts("Transfer-Encoding: chunked");
        rs_puts(eol);
        rs_puts(eol);
        if (body.n > 0) {
            snprintf(num, sizeof(num), "%zx\r\n", body.n);
            rs_puts(num);
            rs_putl(body);
            rs_puts("\r\n");
        }
        rs_puts("0\r\n\r\n");
        break;
    }
}

/* ---- the invariants ---- */

static struct {
    size_t chained, forwarded, forwarded_guarded; /* over the whole run, for FUZZ_VERBOSE */
} rs_stats;

static int rs_str_is(sg_str_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* RFC 9110 5.6.2 tchar. */
static int rs_is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int rs_is_token(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!rs_is_tchar((unsigned char)p[i]))
            return 0;
    return n > 0;
}

/* Visible ASCII only: no byte that ends, splits or hides a line or a field upstream. */
static int rs_is_visible(sg_str_t s)
{
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] <= 0x20 || (unsigned char)s.p[i] >= 0x7f)
            return 0;
    return 1;
}

/* The authority names one of the harness listener's server_names (front_harness.h), with
 * at most a numeric port: what X-Forwarded-Host may then carry (any other gets a 421). */
static int rs_authority_ok(sg_str_t a)
{
    static const char *const names[] = {"localhost", "vc.example"};
    const char *colon = memchr(a.p, ':', a.n);
    size_t hn = colon != NULL ? (size_t)(colon - a.p) : a.n;

    for (const char *q = colon != NULL ? colon + 1 : a.p + a.n; q < a.p + a.n; q++)
        if (*q < '0' || *q > '9')
            return 0;
    if (hn > 1 && a.p[hn - 1] == '.')
        hn--; /* "localhost." is the same name (RFC 1034 3.1) */
    for (size_t i = 0; i < RS_N(names); i++)
        if (sg_strcaseeq(a.p, hn, names[i], strlen(names[i])))
            return 1;
    return 0;
}

/* Point 1: the request the chain is about to see (proxy/req.c). */
static void rs_chain_hook(const sg_req_t *r)
{
    FZ_CHECK(r->method.p != NULL && rs_is_token(r->method.p, r->method.n));
    FZ_CHECK(!rs_str_is(r->method, "CONNECT") && !rs_str_is(r->method, "TRACE"));
    FZ_CHECK(r->scheme.p != NULL && r->scheme.n > 0 && rs_is_visible(r->scheme));
    FZ_CHECK(r->authority.p != NULL && r->authority.n > 0 && rs_is_visible(r->authority));
    FZ_CHECK(rs_authority_ok(r->authority));
    FZ_CHECK(r->path.p != NULL && r->path.n > 0 && r->path.p[0] == '/' &&
             rs_is_visible(r->path));
    rs_stats.chained++;
}

static int rs_in(const char *n, size_t len, const char *const *set)
{
    for (; *set != NULL; set++)
        if (sg_strcaseeq(n, len, *set, strlen(*set)))
            return 1;
    return 0;
}

/* Never forwarded, on any route: hop-by-hop and framing (recomputed), credentials, what
 * the gateway sets itself (the three X-Forwarded-* it writes are checked apart), identity
 * claims and target or method overrides (the rules are written down in proxy/headers.c,
 * sg_hdr_upstream_class). */
static int rs_never_forwarded(const char *n, size_t len)
{
    static const char *const never[] = {
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "expect",
        "authorization", "http2-settings", "forwarded", "remote-user", "x-real-ip",
        "x-client-ip", "true-client-ip", "x-original-url", "x-rewrite-url", "x-original-uri",
        "x-original-method", "x-http-method-override", "x-http-method", "x-method-override",
        NULL};
    static const char *const prefixes[] = {"proxy-", "x-remote-", "x-authenticated-",
                                           "x-smsguard-", NULL};
    static const char *const ours[] = {"x-forwarded-for", "x-forwarded-proto",
                                       "x-forwarded-host", NULL};

    if (rs_in(n, len, never))
        return 1;
    if (len >= 12 && strncasecmp(n, "x-forwarded-", 12) == 0 && !rs_in(n, len, ours))
        return 1; /* X-Forwarded-User, -Prefix, -Port, ...: only the gateway may claim */
    for (const char *const *p = prefixes; *p != NULL; p++)
        if (len >= strlen(*p) && strncasecmp(n, *p, strlen(*p)) == 0)
            return 1;
    return 0;
}

/* A guarded route's upstream request carries these and nothing else:
 * the gateway's own fields, and the short documented list of harmless client fields
 * (proxy/headers.c). */
static const char *const rs_guarded_allow[] = {
    "host", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "content-type", "vmware-api-session-id", "accept", "accept-language", "user-agent",
    "x-request-id", NULL};

/* Whether the client's Connection header(s) named NAME: then it is hop-by-hop too
 * (RFC 9110 7.6.1) and never forwarded. */
static int rs_connection_names(const sg_req_t *r, sg_str_t name)
{
    for (size_t i = 0; i < r->headers.n; i++) {
        const sg_header_t *h = &r->headers.v[i];
        const char *p = h->value.p, *e = p + h->value.n, *tok;

        if (!sg_strcaseeq(h->name.p, h->name.n, "connection", 10))
            continue;
        while (p < e) {
            while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            for (tok = p; p < e && *p != ',' && *p != ' ' && *p != '\t'; p++)
                ;
            if (p > tok && sg_strcaseeq(tok, (size_t)(p - tok), name.p, name.n))
                return 1;
        }
    }
    return 0;
}

static void rs_up_fail(const char *why, const char *head, size_t n)
{
    fprintf(fz.real_stderr, "fuzz_reqshape: upstream request: %s:\n%.*s\n", why, (int)n, head);
    abort();
}

/* The next line of the head, without its CRLF; a bare CR or LF, or a NUL, is a failure. */
static int rs_line(const char **p, const char *end, const char *head, sg_str_t *line)
{
    const char *s = *p;

    for (const char *q = s; q < end; q++) {
        if (*q == '\r' && q + 1 < end && q[1] == '\n') {
            *line = (sg_str_t){s, (size_t)(q - s)};
            *p = q + 2;
            return 1;
        }
        if (*q == '\r' || *q == '\n' || *q == '\0')
            rs_up_fail("a bare CR, LF or NUL", head, (size_t)(end - head));
    }
    return 0;
}

/* Point 3: the request head proxy/upstream.c built, before it goes on the wire. It is
 * read strictly (RFC 9112 3 and 5): one request line, field lines, an empty line. */
static void rs_up_hook(const sg_req_t *r, const char *head, size_t n)
{
    const char *p = head, *end = head + n, *sp1, *sp2;
    const char *auth = r->upstream->authority;
    int host = 0, xff = 0, xfp = 0, xfh = 0, guarded = r->guarded || r->is_child;
    sg_str_t line;

    if (!rs_line(&p, end, head, &line))
        rs_up_fail("no request line", head, n);
    sp1 = memchr(line.p, ' ', line.n);
    sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(line.p + line.n - sp1 - 1)) : NULL;
    if (sp2 == NULL || memchr(sp2 + 1, ' ', (size_t)(line.p + line.n - sp2 - 1)) != NULL)
        rs_up_fail("the request line is not METHOD SP TARGET SP VERSION", head, n);
    /* What the chain judged is what goes: method and origin-form target, byte for byte. */
    FZ_CHECK((size_t)(sp1 - line.p) == r->method.n && memcmp(line.p, r->method.p, r->method.n) == 0);
    FZ_CHECK(rs_is_token(line.p, (size_t)(sp1 - line.p)));
    FZ_CHECK((size_t)(sp2 - sp1 - 1) == r->path.n && memcmp(sp1 + 1, r->path.p, r->path.n) == 0);
    FZ_CHECK(sp1[1] == '/');
    FZ_CHECK(line.p + line.n - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0);
    for (;;) {
        const char *colon;
        sg_str_t name, v;

        if (!rs_line(&p, end, head, &line))
            rs_up_fail("no empty line at the end", head, n);
        if (line.n == 0)
            break;
        colon = memchr(line.p, ':', line.n);
        if (colon == NULL || !rs_is_token(line.p, (size_t)(colon - line.p)))
            rs_up_fail("a field line without a token name and a colon", head, n);
        name = (sg_str_t){line.p, (size_t)(colon - line.p)};
        v = (sg_str_t){colon + 1, (size_t)(line.p + line.n - colon - 1)};
        while (v.n > 0 && v.p[0] == ' ')
            v.p++, v.n--;
        if (rs_never_forwarded(name.p, name.n) || rs_connection_names(r, name) ||
            (guarded && !rs_in(name.p, name.n, rs_guarded_allow))) {
            fprintf(fz.real_stderr, "fuzz_reqshape: '%.*s' reached the upstream%s\n",
                    (int)name.n, name.p, guarded ? " on a guarded route" : "");
            rs_up_fail("a field the client invented", head, n);
        }
        if (sg_strcaseeq(name.p, name.n, "host", 4)) {
            host++;
            FZ_CHECK(v.n == strlen(auth) && memcmp(v.p, auth, v.n) == 0);
        } else if (sg_strcaseeq(name.p, name.n, "x-forwarded-for", 15)) {
            xff++;
            FZ_CHECK(v.n == strlen(r->conn->peer) && memcmp(v.p, r->conn->peer, v.n) == 0);
        } else if (sg_strcaseeq(name.p, name.n, "x-forwarded-proto", 17)) {
            xfp++;
            FZ_CHECK(rs_str_is(v, "https"));
        } else if (sg_strcaseeq(name.p, name.n, "x-forwarded-host", 16)) {
            /* Only the authority the request model checked (listen.server_names). */
            xfh++;
            FZ_CHECK(v.n == r->authority.n && memcmp(v.p, r->authority.p, v.n) == 0);
        }
    }
    FZ_CHECK(p == end);
    FZ_CHECK(host == 1 && xff == 1 && xfp == 1 && xfh <= 1);
    rs_stats.forwarded++;
    rs_stats.forwarded_guarded += guarded;
}

/* ---- the target ---- */

static void rs_report(void)
{
    if (fz.verbose)
        fprintf(fz.real_stderr, "fuzz_reqshape: %zu request(s) reached the chain, %zu the "
                                "upstream (%zu on guarded routes)\n",
                rs_stats.chained, rs_stats.forwarded, rs_stats.forwarded_guarded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    rs_rd_t rd = {data, size, 0};
    unsigned ctl, mode, nreq;

    if (!fz.ready)
        fz_init();
    if (!ready) {
        ready = 1;
        rs_init_tables();
        sg__req_chain_hook = rs_chain_hook;
        sg__up_request_hook = rs_up_hook;
        atexit(rs_report);
    }
    if (size < 2)
        return 0;
    ctl = rs_u8(&rd) & ~(unsigned)FZ_RAW;
    mode = rs_u8(&rd);
    nreq = 1 + (mode >> 1 & 3);
    rs_out.n = 0;
    if (mode & 1) {
        for (unsigned i = 0; i < nreq; i++)
            rs_h1_request(&rd);
        fz_run(&sg_h1_proto, rs_out.p, rs_out.n, ctl);
    } else {
        rs_h2_program(&rd, nreq);
        fz_run(&sg_h2_proto, rs_out.p, rs_out.n, ctl);
    }
    return 0;
}
