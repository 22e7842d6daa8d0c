/*
 * tests/fuzz/fuzz_h2.c - frames from a client into a real nghttp2 server session with
 * smsguard's callbacks (proxy/h2_server.c), and from there through requests, the whole
 * filter chain and the upstream client up to its failed connect, with the answers going
 * back through nghttp2_session_mem_send after every read.
 *
 * Input: one control byte (tests/fuzz/front_harness.h: how the input is cut into reads
 * and how the connection ends), then the client's bytes. Unless the control byte has
 * FZ_RAW, the harness puts the client connection preface and an empty SETTINGS frame in
 * front, so that mutations are spent on frames rather than on the 24-byte magic.
 *
 * For any input: no crash, leak, sanitizer report or livelock, the connection ends and
 * everything it held is freed. What it wrote must be whole frames, starting with our
 * SETTINGS, and every header block in it must decode (HPACK, connection-wide state) into
 * a response that starts with a 3-digit :status and holds no connection-specific field
 * (RFC 9113 8.2.2) and no upper-case name.
 */
#include <nghttp2/nghttp2.h>

#include "tests/fuzz/front_harness.h"

static const char fz_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00"; /* SETTINGS, empty */
#define FZ_PREFACE_LEN (sizeof(fz_preface) - 1)

static int is_conn_specific(const uint8_t *n, size_t len)
{
    static const char *const bad[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "upgrade"};

    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++)
        if (len == strlen(bad[i]) && memcmp(n, bad[i], len) == 0)
            return 1;
    return 0;
}

/* One complete header block of ours: a response head, or trailers we never send. */
static void check_block(nghttp2_hd_inflater *inf, const uint8_t *p, size_t n)
{
    nghttp2_nv nv;
    int flags, first = 1;
    ssize_t rv;

    for (;;) {
        flags = 0;
        rv = nghttp2_hd_inflate_hd2(inf, &nv, &flags, p, n, 1);
        FZ_CHECK(rv >= 0);
        p += rv;
        n -= (size_t)rv;
        if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            if (first) {
                FZ_CHECK(nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0);
                FZ_CHECK(nv.valuelen == 3 && nv.value[0] >= '1' && nv.value[0] <= '5' &&
                         nv.value[1] >= '0' && nv.value[1] <= '9' && nv.value[2] >= '0' &&
                         nv.value[2] <= '9');
            } else {
                FZ_CHECK(nv.namelen > 0 && nv.name[0] != ':');
                FZ_CHECK(!is_conn_specific(nv.name, nv.namelen));
                for (size_t i = 0; i < nv.namelen; i++)
                    FZ_CHECK(!(nv.name[i] >= 'A' && nv.name[i] <= 'Z'));
            }
            first = 0;
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(inf);
            break;
        }
        if (rv == 0 && n == 0)
            break;
    }
    FZ_CHECK(n == 0 && !first);
}

static void check_output(void)
{
    static uint8_t block[1 << 16];
    const uint8_t *p = fz.out, *end = fz.out + fz.out_len;
    nghttp2_hd_inflater *inf;
    size_t blen = 0, len;
    int in_block = 0, nframes = 0;

    if (fz.out_total != fz.out_len || fz.out_len == 0)
        return; /* more than we kept: frames cut at FZ_OUT_MAX */
    FZ_CHECK(nghttp2_hd_inflate_new(&inf) == 0);
    while (p < end) {
        uint8_t type, flags;
        const uint8_t *pl;

        FZ_CHECK(end - p >= 9);
        len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
        type = p[3];
        flags = p[4];
        pl = p + 9;
        FZ_CHECK((size_t)(end - pl) >= len);
        if (fz.verbose)
            fprintf(stderr, "fuzz_h2: sent frame type %u flags 0x%02x stream %u length %zu\n",
                    type, flags,
                    (unsigned)((p[5] & 0x7f) << 24 | p[6] << 16 | p[7] << 8 | p[8]), len);
        if (nframes++ == 0)
            FZ_CHECK(type == NGHTTP2_SETTINGS && !(flags & NGHTTP2_FLAG_ACK));
        /* Nothing may interleave with a header block (RFC 9113 6.10). */
        FZ_CHECK(!in_block || type == NGHTTP2_CONTINUATION);
        if (type == NGHTTP2_HEADERS || type == NGHTTP2_CONTINUATION) {
            size_t off = 0, pad = 0;

            FZ_CHECK(type == NGHTTP2_HEADERS || in_block);
            if (type == NGHTTP2_HEADERS) {
                blen = 0;
                if (flags & NGHTTP2_FLAG_PADDED) {
                    FZ_CHECK(len >= 1);
                    pad = pl[0];
                    off = 1;
                }
                if (flags & NGHTTP2_FLAG_PRIORITY)
                    off += 5;
                FZ_CHECK(off + pad <= len);
            }
            FZ_CHECK(blen + len - off - pad <= sizeof(block));
            memcpy(block + blen, pl + off, len - off - pad);
            blen += len - off - pad;
            in_block = !(flags & NGHTTP2_FLAG_END_HEADERS);
            if (!in_block)
                check_block(inf, block, blen);
        }
        p = pl + len;
    }
    FZ_CHECK(!in_block);
    nghttp2_hd_inflate_del(inf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *buf;
    static size_t cap;
    size_t n;

    if (!fz.ready)
        fz_init();
    if (size == 0)
        return 0;
    if (data[0] & FZ_RAW) {
        fz_run(&sg_h2_proto, data + 1, size - 1, data[0]);
    } else {
        n = FZ_PREFACE_LEN + size - 1;
        if (n > cap) {
            free(buf);
            cap = n * 2;
            if ((buf = malloc(cap)) == NULL)
                abort();
        }
        memcpy(buf, fz_preface, FZ_PREFACE_LEN);
        memcpy(buf + FZ_PREFACE_LEN, data + 1, size - 1);
        fz_run(&sg_h2_proto, buf, n, data[0]);
    }
    check_output();
    return 0;
}
