/*
 * tests/fuzz/fuzz_handle.c - composite SmsTask handles (filters/handle.c).
 *
 * Every input is first decoded as it is, under a fixed key: whatever the bytes, no crash, no
 * leak, and a refusal carries a reason. The first byte then picks one more mode:
 *   0x01 PAYLOAD     the harness signs PAYLOAD with the key and decodes the handle, so the
 *                    fuzzer reaches the payload checks that a random MAC never would; an
 *                    accepted payload must re-encode, and decode again to the same handle.
 *   0x02 STRUCTURE   a sg_handle_t is built from the bytes (below) and encoded; when encoding
 *                    succeeds the handle must be URL-safe, within SG_HANDLE_MAX, decode to
 *                    the same fields, and re-encode to the same bytes.
 *   0x03 UPSTREAM    the same, with the upstream name taken from the bytes too (0x02 uses
 *                    "default"): a name the encoder takes must come back as it went.
 * STRUCTURE is NUL-separated fields: (0x03 only: upstream,) provider, release, tenant, then per
 * part one flag byte (bit 0x80: failed, low bits: count % 8, bit 0x40: type "Task") and a
 * string (the task id, or the fault JSON text for a failed part). A version-1 payload (no
 * upstream) must decode as made on SG_HANDLE_V1_UPSTREAM.
 * Any violation aborts.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/handle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_handle: check failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* 32 bytes, as batch.task_key_file needs at least; the seeds with valid MACs use it. */
static const unsigned char fz_key[32] = "fuzz-task-key-0123456789abcdefgh";

static const char fz_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void fz_b64_append(sg_buf_t *b, const unsigned char *p, size_t n)
{
    uint32_t acc = 0;
    size_t i;
    int bits = 0;

    for (i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            FUZZ_CHECK(sg_buf_append(b, &fz_b64[(acc >> bits) & 63], 1) == SG_OK);
        }
    }
    if (bits > 0)
        FUZZ_CHECK(sg_buf_append(b, &fz_b64[(acc << (6 - bits)) & 63], 1) == SG_OK);
}

static void fz_url_safe(const sg_buf_t *b)
{
    size_t i;

    FUZZ_CHECK(b->len <= SG_HANDLE_MAX);
    FUZZ_CHECK(sg_handle_is_composite(b->data, b->len));
    for (i = 0; i < b->len; i++) {
        char c = b->data[i];

        FUZZ_CHECK(c == '.' || (c != '\0' && strchr(fz_b64, c) != NULL));
    }
}

static int fz_streq(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static void fz_same(const sg_handle_t *a, const sg_handle_t *b)
{
    size_t i;

    FUZZ_CHECK(fz_streq(a->upstream, b->upstream) && fz_streq(a->provider, b->provider) &&
               fz_streq(a->release, b->release) &&
               fz_streq(a->tenant, b->tenant) && a->nparts == b->nparts);
    for (i = 0; i < a->nparts; i++) {
        FUZZ_CHECK(fz_streq(a->parts[i].type, b->parts[i].type));
        FUZZ_CHECK(fz_streq(a->parts[i].value, b->parts[i].value));
        FUZZ_CHECK(a->parts[i].count == b->parts[i].count);
        FUZZ_CHECK((a->parts[i].fault == NULL) == (b->parts[i].fault == NULL));
    }
}

/* h was decoded (so its faults are compact): it must encode, and round trip exactly. */
static void fz_round_trip(sg_pool_t *pool, const sg_handle_t *h)
{
    sg_buf_t a, b;
    sg_handle_t d;
    const char *why = NULL;
    size_t i;
    int rv;

    sg_buf_init(&a, SG_HANDLE_MAX);
    sg_buf_init(&b, SG_HANDLE_MAX);
    rv = sg_handle_encode(h, fz_key, sizeof(fz_key), &a);
    /* A payload we accept may still be too large once the encoder writes it its own way
     * (e.g. escapes); nothing else may fail. */
    FUZZ_CHECK(rv == SG_OK || rv == SG_ETOOBIG);
    if (rv == SG_OK) {
        fz_url_safe(&a);
        FUZZ_CHECK(sg_handle_decode(pool, a.data, a.len, fz_key, sizeof(fz_key), &d, &why) ==
                   SG_OK);
        fz_same(h, &d);
        for (i = 0; i < h->nparts; i++)
            FUZZ_CHECK(fz_streq(h->parts[i].fault, d.parts[i].fault));
        FUZZ_CHECK(sg_handle_encode(&d, fz_key, sizeof(fz_key), &b) == SG_OK);
        FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    }
    sg_buf_dispose(&a);
    sg_buf_dispose(&b);
}

static void fz_signed(sg_pool_t *pool, const uint8_t *p, size_t n)
{
    unsigned char mac[32];
    unsigned int maclen = 0;
    sg_handle_t h;
    sg_buf_t b;
    const char *why = NULL;
    int rv;

    FUZZ_CHECK(HMAC(EVP_sha256(), fz_key, sizeof(fz_key), p, n, mac, &maclen) != NULL);
    sg_buf_init(&b, 4 * SG_HANDLE_MAX);
    FUZZ_CHECK(sg_buf_lit(&b, SG_HANDLE_PREFIX) == SG_OK);
    fz_b64_append(&b, p, n);
    FUZZ_CHECK(sg_buf_lit(&b, ".") == SG_OK);
    fz_b64_append(&b, mac, sizeof(mac));
    rv = sg_handle_decode(pool, b.data, b.len, fz_key, sizeof(fz_key), &h, &why);
    FUZZ_CHECK(rv == SG_OK || (rv == SG_ERR && why != NULL));
    if (rv == SG_ERR && b.len <= SG_HANDLE_MAX && n > 0)
        FUZZ_CHECK(strcmp(why, "bad payload") == 0); /* the MAC is right */
    if (rv == SG_OK) {
        /* Version 2 needs a member "u" (even escaped, \u0075 holds a 'u'): a payload without
         * the letter is version 1, made on SG_HANDLE_V1_UPSTREAM. */
        FUZZ_CHECK(h.upstream != NULL && h.upstream[0] != '\0');
        if (memchr(p, 'u', n) == NULL)
            FUZZ_CHECK(strcmp(h.upstream, SG_HANDLE_V1_UPSTREAM) == 0);
        fz_round_trip(pool, &h);
    }
    sg_buf_dispose(&b);
}

/* Next NUL-terminated field of p[*off, n) copied into pool; "" when the input ran out. */
static const char *fz_field(sg_pool_t *pool, const uint8_t *p, size_t n, size_t *off)
{
    const uint8_t *end = *off < n ? memchr(p + *off, 0, n - *off) : NULL;
    size_t len = *off < n ? (end ? (size_t)(end - (p + *off)) : n - *off) : 0;
    char *s = sg_pool_strndup(pool, (const char *)p + SG_MIN(*off, n), len);

    FUZZ_CHECK(s != NULL);
    *off += len + 1;
    return s;
}

static void fz_structure(sg_pool_t *pool, const uint8_t *p, size_t n, int with_upstream)
{
    sg_handle_part_t *parts;
    sg_handle_t h, d;
    sg_buf_t b;
    const char *why = NULL;
    size_t off = 0, max = SG_HANDLE_MAX_PARTS + 2;
    int rv;

    h.upstream = with_upstream ? fz_field(pool, p, n, &off) : SG_HANDLE_V1_UPSTREAM;
    h.provider = fz_field(pool, p, n, &off);
    h.release = fz_field(pool, p, n, &off);
    h.tenant = fz_field(pool, p, n, &off);
    parts = sg_pool_calloc(pool, max * sizeof(*parts));
    FUZZ_CHECK(parts != NULL);
    h.parts = parts;
    h.nparts = 0;
    while (off < n && h.nparts < max) {
        sg_handle_part_t *hp = &parts[h.nparts++];
        uint8_t flag = p[off++];
        const char *s = fz_field(pool, p, n, &off);

        hp->count = flag & 7;
        if (flag & 0x80) {
            hp->fault = s;
        } else {
            hp->type = flag & 0x40 ? "Task" : "SmsTask";
            hp->value = s;
        }
    }
    sg_buf_init(&b, SG_HANDLE_MAX * 2);
    rv = sg_handle_encode(&h, fz_key, sizeof(fz_key), &b);
    FUZZ_CHECK(rv == SG_OK || rv == SG_ERR || rv == SG_ETOOBIG);
    FUZZ_CHECK(rv == SG_OK || b.len == 0);
    if (h.nparts > SG_HANDLE_MAX_PARTS)
        FUZZ_CHECK(rv == SG_ETOOBIG);
    if (rv == SG_OK) {
        fz_url_safe(&b);
        FUZZ_CHECK(sg_handle_decode(pool, b.data, b.len, fz_key, sizeof(fz_key), &d, &why) ==
                   SG_OK);
        fz_same(&h, &d);
        fz_round_trip(pool, &d);
    }
    sg_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_pool_t pool;
    sg_handle_t h;
    const char *why = NULL;
    int rv;

    if (size > 4 * SG_HANDLE_MAX)
        return 0;
    sg_pool_init(&pool, 4096);
    rv = sg_handle_decode(&pool, (const char *)data, size, fz_key, sizeof(fz_key), &h, &why);
    FUZZ_CHECK(rv == SG_OK || (rv == SG_ERR && why != NULL));
    if (rv == SG_OK)
        fz_round_trip(&pool, &h);
    if (size > 0 && data[0] == 0x01)
        fz_signed(&pool, data + 1, size - 1);
    else if (size > 0 && (data[0] == 0x02 || data[0] == 0x03))
        fz_structure(&pool, data + 1, size - 1, data[0] == 0x03);
    sg_pool_dispose(&pool);
    return 0;
}
