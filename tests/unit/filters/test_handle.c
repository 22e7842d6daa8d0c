/*
 * Unit tests for filters/handle.c: composite SmsTask handles (docs/design.md "Batch splitting and
 * composite tasks"). Round trips first, then every way a handle can be forged, altered or
 * malformed, then the bounds. Forged payloads are signed here with OpenSSL directly so that
 * the decoder's payload checks are reached behind a valid MAC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "filters/handle.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[32] = "0123456789abcdef0123456789abcdeF";

#define FAULT_PLAIN "{\"_typeName\":\"ProviderBusy\",\"faultMessage\":[]}"
#define FAULT_TRICKY                                                                               \
    "{\"_typeName\":\"InvalidArgument\",\"invalidProperty\":\"groupId\","                          \
    "\"faultMessage\":[{\"key\":\"q\\\"uote\\\\back\",\"message\":\"gr\xc3\xbc\xc3\x9f "          \
    "\xe2\x82\xac \xf0\x9f\x98\x80 \\u0001\"}]}"

typedef struct {
    sg_pool_t pool;
    sg_buf_t out;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    sg_pool_init(&fx->pool, 4096);
    sg_buf_init(&fx->out, 1 << 20);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *fx = *state;

    sg_buf_dispose(&fx->out);
    sg_pool_dispose(&fx->pool);
    free(fx);
    return 0;
}

/* Encodes h under key into a NUL-terminated string in fx->out; asserts success. */
static const char *encode_ok(fx_t *fx, const sg_handle_t *h)
{
    sg_buf_reset(&fx->out);
    assert_int_equal(sg_handle_encode(h, key, sizeof(key), &fx->out), SG_OK);
    assert_int_equal(sg_buf_append(&fx->out, "", 1), SG_OK);
    fx->out.len--;
    return fx->out.data;
}

static int decode(fx_t *fx, const char *s, size_t n, const unsigned char *k, sg_handle_t *h,
                  const char **why)
{
    *why = NULL;
    return sg_handle_decode(&fx->pool, s, n, k, 32, h, why);
}

static void assert_url_safe(const char *s)
{
    for (; *s; s++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *s));
}

static void assert_same(const sg_handle_t *a, const sg_handle_t *b)
{
    size_t i;

    assert_string_equal(a->upstream, b->upstream);
    assert_string_equal(a->provider, b->provider);
    assert_string_equal(a->release, b->release);
    assert_string_equal(a->tenant, b->tenant);
    assert_int_equal(a->nparts, b->nparts);
    for (i = 0; i < a->nparts; i++) {
        const sg_handle_part_t *x = &a->parts[i], *y = &b->parts[i];

        assert_int_equal(x->count, y->count);
        if (x->fault != NULL) {
            assert_null(y->type);
            assert_null(y->value);
            assert_string_equal(x->fault, y->fault);
        } else {
            assert_null(y->fault);
            assert_string_equal(x->type, y->type);
            assert_string_equal(x->value, y->value);
        }
    }
}

/* A handle with n parts: every third one failed, alternating fault texts and task types. */
static sg_handle_t make(size_t n, sg_handle_part_t *parts, char (*ids)[32])
{
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, n};
    size_t i;

    for (i = 0; i < n; i++) {
        memset(&parts[i], 0, sizeof(parts[i]));
        parts[i].count = i % 5 + 1;
        if (i % 3 == 2) {
            parts[i].fault = i % 2 ? FAULT_TRICKY : FAULT_PLAIN;
        } else {
            snprintf(ids[i], sizeof(ids[i]), "SmsTask-%zu", 1000 + i);
            parts[i].type = i % 2 ? "Task" : "SmsTask";
            parts[i].value = ids[i];
        }
    }
    return h;
}

static void round_trip(void **state, size_t n)
{
    fx_t *fx = *state;
    sg_handle_part_t parts[32];
    char ids[32][32];
    sg_handle_t h = make(n, parts, ids), got;
    const char *s, *why;

    s = encode_ok(fx, &h);
    assert_true(sg_handle_is_composite(s, strlen(s)));
    assert_url_safe(s);
    assert_true(strlen(s) <= SG_HANDLE_MAX);
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
    assert_same(&h, &got);
}

static void round_trips_one_part(void **state) { round_trip(state, 1); }
static void round_trips_two_parts(void **state) { round_trip(state, 2); }
static void round_trips_25_parts_with_failed_ones(void **state) { round_trip(state, 25); }

static void round_trips_a_failed_part_with_quotes_and_unicode(void **state)
{
    fx_t *fx = *state;
    sg_handle_part_t parts[2] = {{NULL, NULL, FAULT_TRICKY, 4},
                                 {"SmsTask", "SmsTask-\"7\xc3\xa9", NULL, 3}};
    sg_handle_t h = {"vc-east", "vasa-\xe2\x82\xac", "8.0.3.0", "t\"1", parts, 2}, got;
    const char *s, *why;

    s = encode_ok(fx, &h);
    assert_url_safe(s);
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
    assert_same(&h, &got);
}

static void writes_fault_back_compactly(void **state)
{
    fx_t *fx = *state;
    sg_handle_part_t parts[2] = {
        {NULL, NULL, " { \"_typeName\" : \"ProviderBusy\" ,\n\"a\":[ 1 ] } ", 2},
        {"Task", "task-9", NULL, 2}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 2}, got;
    const char *s, *why;

    s = encode_ok(fx, &h);
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
    assert_string_equal(got.parts[0].fault, "{\"_typeName\":\"ProviderBusy\",\"a\":[1]}");
    assert_string_equal(got.parts[1].type, "Task");
}

static void returns_the_other_tenant_for_the_caller_to_refuse(void **state)
{
    fx_t *fx = *state;
    sg_handle_part_t parts[2] = {{"SmsTask", "SmsTask-1", NULL, 4},
                                 {"SmsTask", "SmsTask-2", NULL, 1}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "tenant-b", parts, 2}, got;
    const char *s, *why;

    s = encode_ok(fx, &h);
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
    assert_string_equal(got.tenant, "tenant-b");
}

/* The vCenter is the caller's to compare with the request's: the handle says which it was made
 * on, whatever the name looks like within the upstream name rules. */
static void returns_the_upstream_it_was_made_on(void **state)
{
    fx_t *fx = *state;
    static const char *const names[] = {"vc-west", "default", "A", "vc_1.east-2",
                                        "0123456789012345678901234567890123456789012345678901"
                                        "234567890123"};
    sg_handle_part_t parts[2] = {{"SmsTask", "SmsTask-1", NULL, 4}, {NULL, NULL, FAULT_PLAIN, 1}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 2}, got;
    const char *s, *why;
    size_t i;

    assert_int_equal(strlen(names[4]), SG_HANDLE_UPSTREAM_MAX);
    for (i = 0; i < SG_ARRAY_SIZE(names); i++) {
        h.upstream = names[i];
        s = encode_ok(fx, &h);
        assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
        assert_same(&h, &got);
    }
}

static void refuses_to_encode_without_an_upstream_name(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {NULL, "", "vc east", "vc\"1", "vc/1", "vc-\xc3\xa9",
                                      "0123456789012345678901234567890123456789012345678901"
                                      "2345678901234"};
    sg_handle_part_t parts[1] = {{"SmsTask", "SmsTask-1", NULL, 4}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 1};
    size_t i;

    for (i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        h.upstream = bad[i];
        sg_buf_reset(&fx->out);
        if (sg_handle_encode(&h, key, sizeof(key), &fx->out) != SG_ERR)
            fail_msg("encoded upstream %zu", i);
        assert_int_equal(fx->out.len, 0);
        assert_int_equal(sg_handle_capacity(bad[i], "vasa-1", "8.0.3.0", "t1", 4), 0);
    }
}

/* ---- forged and altered handles ---- */

static const char *forge(fx_t *fx, const char *payload);

/* A handle of vc-east made into one of vc-west by rewriting the name in its payload: the MAC
 * covers the upstream, so only the key holder can say which vCenter a handle belongs to. */
static void rejects_a_handle_moved_to_another_upstream(void **state)
{
    fx_t *fx = *state;
    sg_handle_part_t parts[2] = {{"SmsTask", "SmsTask-1", NULL, 4}, {NULL, NULL, FAULT_PLAIN, 4}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 2}, got;
    unsigned char payload[SG_HANDLE_MAX];
    char s[SG_HANDLE_MAX + 1], moved[SG_HANDLE_MAX + 1], *dot, *at;
    const char *why;
    long n;

    strcpy(s, encode_ok(fx, &h));
    dot = strchr(s + strlen(SG_HANDLE_PREFIX), '.');
    assert_non_null(dot);
    n = sg_b64url_decode(payload, s + strlen(SG_HANDLE_PREFIX),
                         (size_t)(dot - s) - strlen(SG_HANDLE_PREFIX));
    assert_true(n > 0);
    payload[n] = '\0';
    at = strstr((char *)payload, "\"u\":\"vc-east\"");
    assert_non_null(at);
    memcpy(at + 8, "west", 4); /* "u":"vc-east" -> "u":"vc-west", same length */
    strcpy(moved, SG_HANDLE_PREFIX);
    *sg_b64url_put(moved + strlen(SG_HANDLE_PREFIX), payload, (size_t)n) = '\0';
    strcat(moved, dot); /* the original MAC */
    assert_int_equal(decode(fx, moved, strlen(moved), key, &got, &why), SG_ERR);
    assert_string_equal(why, "bad signature");
    /* Signed again under the key (what only the key holder can do), it is vc-west's. */
    strcpy(s, forge(fx, (const char *)payload));
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
    assert_string_equal(got.upstream, "vc-west");
}

static void encode_two(fx_t *fx, char *s, size_t cap)
{
    sg_handle_part_t parts[2] = {{"SmsTask", "SmsTask-1", NULL, 4}, {NULL, NULL, FAULT_PLAIN, 4}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 2};
    const char *e = encode_ok(fx, &h);

    assert_true(strlen(e) < cap);
    strcpy(s, e);
}

/* Another base64url character with the same value in the low bits that matter (so the string
 * changes but is still in the alphabet). */
static char flip(char c) { return c == 'A' ? 'B' : 'A'; }

static void rejects_every_altered_payload_byte(void **state)
{
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1];
    const char *why, *dot;
    sg_handle_t got;
    size_t i, n;

    encode_two(fx, s, sizeof(s));
    n = strlen(s);
    dot = strchr(s + 5, '.');
    for (i = 5; i < (size_t)(dot - s); i++) {
        char c = s[i];

        s[i] = flip(c);
        assert_int_equal(decode(fx, s, n, key, &got, &why), SG_ERR);
        assert_true(strcmp(why, "bad signature") == 0 || strcmp(why, "malformed") == 0);
        s[i] = c;
    }
    assert_int_equal(decode(fx, s, n, key, &got, &why), SG_OK);
}

static void rejects_every_altered_mac_byte(void **state)
{
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1];
    const char *why, *dot;
    sg_handle_t got;
    size_t i, n;

    encode_two(fx, s, sizeof(s));
    n = strlen(s);
    dot = strchr(s + 5, '.');
    for (i = (size_t)(dot - s) + 1; i < n; i++) {
        char c = s[i];

        s[i] = flip(c);
        assert_int_equal(decode(fx, s, n, key, &got, &why), SG_ERR);
        /* The last character carries 2 unused bits: some flips are non-canonical. */
        assert_true(strcmp(why, "bad signature") == 0 || strcmp(why, "malformed") == 0);
        s[i] = c;
    }
}

static void rejects_non_canonical_last_characters(void **state)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1];
    const char *why;
    sg_handle_t got;
    size_t n, v, low;

    encode_two(fx, s, sizeof(s));
    n = strlen(s);
    /* 43 characters carry 258 bits for 256: setting either unused bit gives another string
     * that a lenient decoder maps to the same MAC. */
    v = (size_t)(strchr(a, s[n - 1]) - a);

    assert_int_equal(v & 3, 0);
    for (low = 1; low < 4; low++) {
        s[n - 1] = a[v | low];
        assert_int_equal(decode(fx, s, n, key, &got, &why), SG_ERR);
        assert_string_equal(why, "malformed");
    }
    s[n - 1] = a[v];
    assert_int_equal(decode(fx, s, n, key, &got, &why), SG_OK);
}

static void rejects_swapped_halves(void **state)
{
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1], w[SG_HANDLE_MAX + 16];
    const char *why, *dot;
    sg_handle_t got;

    encode_two(fx, s, sizeof(s));
    dot = strchr(s + 5, '.');
    snprintf(w, sizeof(w), "sgc1.%s.%.*s", dot + 1, (int)(dot - s - 5), s + 5);
    assert_int_equal(decode(fx, w, strlen(w), key, &got, &why), SG_ERR);
    assert_string_equal(why, "malformed");
}

static void rejects_truncated_handles(void **state)
{
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1];
    const char *why;
    sg_handle_t got;
    size_t n, i;

    encode_two(fx, s, sizeof(s));
    n = strlen(s);
    for (i = 0; i < n; i++) {
        assert_int_equal(decode(fx, s, i, key, &got, &why), SG_ERR);
        assert_non_null(why);
    }
    assert_string_equal(why, "malformed");
}

static void rejects_padding_and_other_alphabets(void **state)
{
    static const char *const junk[] = {"=", "==", "+", "/", " ", "\n", ".", "%3D", "\xc3\xa9"};
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1], w[SG_HANDLE_MAX + 16];
    const char *why, *dot;
    sg_handle_t got;
    size_t i, n, pl;

    encode_two(fx, s, sizeof(s));
    n = strlen(s);
    dot = strchr(s + 5, '.');
    pl = (size_t)(dot - s);
    for (i = 0; i < SG_ARRAY_SIZE(junk); i++) {
        /* After the MAC (trailing junk), after the payload, and in place of a character. */
        snprintf(w, sizeof(w), "%s%s", s, junk[i]);
        assert_int_equal(decode(fx, w, strlen(w), key, &got, &why), SG_ERR);
        assert_string_equal(why, "malformed");
        snprintf(w, sizeof(w), "%.*s%s%s", (int)pl, s, junk[i], dot);
        assert_int_equal(decode(fx, w, strlen(w), key, &got, &why), SG_ERR);
        assert_string_equal(why, "malformed");
        snprintf(w, sizeof(w), "%.*s%s%s", (int)pl - 1, s, junk[i], dot);
        assert_int_equal(decode(fx, w, strlen(w), key, &got, &why), SG_ERR);
    }
    /* '+' and '/' in place of '-' and '_' (standard base64), wherever they occur. */
    memcpy(w, s, n + 1);
    for (i = 5; i < n; i++)
        if (w[i] == '-' || w[i] == '_') {
            w[i] = w[i] == '-' ? '+' : '/';
            assert_int_equal(decode(fx, w, n, key, &got, &why), SG_ERR);
            assert_string_equal(why, "malformed");
            w[i] = s[i];
        }
    /* A NUL inside the length given is junk too. */
    memcpy(w, s, n + 1);
    w[n] = '\0';
    assert_int_equal(decode(fx, w, n + 1, key, &got, &why), SG_ERR);
    assert_string_equal(why, "malformed");
}

static void rejects_a_handle_signed_with_another_key(void **state)
{
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1];
    const char *why;
    sg_handle_t got;

    encode_two(fx, s, sizeof(s));
    assert_int_equal(decode(fx, s, strlen(s), key2, &got, &why), SG_ERR);
    assert_string_equal(why, "bad signature");
}

static void refuses_short_keys(void **state)
{
    fx_t *fx = *state;
    char s[SG_HANDLE_MAX + 1];
    sg_handle_part_t parts[1] = {{"SmsTask", "SmsTask-1", NULL, 4}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 1}, got;
    const char *why = NULL;

    sg_buf_reset(&fx->out);
    assert_int_equal(sg_handle_encode(&h, key, 31, &fx->out), SG_ERR);
    assert_int_equal(sg_handle_encode(&h, key, 0, &fx->out), SG_ERR);
    assert_int_equal(fx->out.len, 0);
    encode_two(fx, s, sizeof(s));
    assert_int_equal(sg_handle_decode(&fx->pool, s, strlen(s), key, 31, &got, &why), SG_ERR);
    assert_string_equal(why, "bad signature");
}

/* Signs payload under key and returns the handle in fx->out (NUL-terminated). */
static const char *forge(fx_t *fx, const char *payload)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char mac[32];
    unsigned int maclen;
    const unsigned char *parts[2] = {(const unsigned char *)payload, mac};
    size_t lens[2], j, i;

    assert_non_null(HMAC(EVP_sha256(), key, 32, parts[0], strlen(payload), mac, &maclen));
    lens[0] = strlen(payload);
    lens[1] = 32;
    sg_buf_reset(&fx->out);
    assert_int_equal(sg_buf_lit(&fx->out, SG_HANDLE_PREFIX), SG_OK);
    for (j = 0; j < 2; j++) {
        const unsigned char *p = parts[j];
        uint32_t acc = 0;
        int bits = 0;

        if (j == 1)
            assert_int_equal(sg_buf_lit(&fx->out, "."), SG_OK);
        for (i = 0; i < lens[j]; i++) {
            acc = acc << 8 | p[i];
            bits += 8;
            while (bits >= 6) {
                bits -= 6;
                assert_int_equal(sg_buf_append(&fx->out, &a[(acc >> bits) & 63], 1), SG_OK);
            }
        }
        if (bits > 0)
            assert_int_equal(sg_buf_append(&fx->out, &a[(acc << (6 - bits)) & 63], 1), SG_OK);
    }
    assert_int_equal(sg_buf_append(&fx->out, "", 1), SG_OK);
    fx->out.len--;
    return fx->out.data;
}

static void accepts_a_payload_signed_by_hand(void **state)
{
    fx_t *fx = *state;
    const char *s, *why;
    sg_handle_t got;

    /* Members in another order than the encoder writes: still the format. */
    s = forge(fx, "{\"parts\":[{\"n\":2,\"id\":\"x\",\"type\":\"Task\"}],\"t\":\"\",\"r\":\"\","
                  "\"p\":\"v\",\"u\":\"vc-west\",\"v\":2}");
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
    assert_string_equal(got.upstream, "vc-west");
    assert_int_equal(got.nparts, 1);
    assert_int_equal(got.parts[0].count, 2);
    assert_string_equal(got.parts[0].value, "x");
}

/* Version 1, made before handles carried their vCenter (every gateway had one, the
 * one-vCenter form's "default"): still answered, as made on "default", so an upgrade does not
 * orphan the tasks clients hold. Re-encoded it becomes version 2 with that name. */
static void reads_a_version_1_handle_as_made_on_default(void **state)
{
    fx_t *fx = *state;
    const char *s, *why;
    sg_handle_t got;
    char again[SG_HANDLE_MAX + 1];

    s = forge(fx, "{\"v\":1,\"p\":\"vasa-1\",\"r\":\"8.0.3.0\",\"t\":\"t1\",\"parts\":["
                  "{\"type\":\"SmsTask\",\"id\":\"SmsTask-7\",\"n\":4},"
                  "{\"fault\":{\"_typeName\":\"ProviderBusy\"},\"n\":4}]}");
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_OK);
    assert_string_equal(got.upstream, SG_HANDLE_V1_UPSTREAM);
    assert_string_equal(got.upstream, "default");
    assert_string_equal(got.provider, "vasa-1");
    assert_string_equal(got.tenant, "t1");
    assert_int_equal(got.nparts, 2);
    assert_string_equal(got.parts[0].value, "SmsTask-7");
    strcpy(again, encode_ok(fx, &got));
    assert_int_equal(decode(fx, again, strlen(again), key, &got, &why), SG_OK);
    assert_string_equal(got.upstream, "default");
    /* base64url of {"v":2,"u */
    assert_int_equal(strncmp(again, SG_HANDLE_PREFIX "eyJ2IjoyLCJ1", 17), 0);
}

/* The payload up to the parts array, and a task part's members before "n". */
#define HEAD "{\"v\":1,\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":"
#define TASK_X "{\"type\":\"Task\",\"id\":\"x\","

static void rejects_signed_payloads_outside_the_format(void **state)
{
    static const char *const bad[] = {
        "",
        "null",
        "[]",
        "{}",
        HEAD "[{\"type\":\"Task\",\"id\":\"x\"",
        /* version, and the upstream only in version 2, an upstream name */
        "{\"v\":2,\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":1,\"u\":\"vc\",\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":3,\"u\":\"vc\",\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":2,\"u\":\"\",\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":2,\"u\":null,\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":2,\"u\":\"vc 1\",\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":["
        TASK_X "\"n\":1}]}",
        "{\"v\":2,\"u\":\"vc\\u0000\",\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":["
        TASK_X "\"n\":1}]}",
        "{\"v\":2,\"u\":\"0123456789012345678901234567890123456789012345678901234567890123"
        "4\",\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":2,\"u\":\"vc\",\"x\":1,\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":\"1\",\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":1.0,\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        /* empty provider, wrong field types, missing and extra members */
        "{\"v\":1,\"p\":\"\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":1,\"p\":1,\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":1,\"p\":\"v\",\"r\":null,\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        "{\"v\":1,\"p\":\"v\",\"r\":\"r\",\"parts\":[{\"type\":\"Task\",\"id\":\"x\",\"n\":1}]}",
        "{\"v\":1,\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"x\":0,\"parts\":[" TASK_X "\"n\":1}]}",
        HEAD "{}}",
        HEAD "[]}",
        HEAD "[1]}",
        /* counts */
        HEAD "[" TASK_X "\"n\":0}]}",
        HEAD "[" TASK_X "\"n\":-1}]}",
        HEAD "[" TASK_X "\"n\":1.5}]}",
        HEAD "[" TASK_X "\"n\":1e2}]}",
        HEAD "[" TASK_X "\"n\":\"1\"}]}",
        HEAD "[" TASK_X "\"n\":99999999999999999999}]}",
        HEAD "[{\"type\":\"Task\",\"id\":\"x\"}]}",
        /* parts: types, ids, faults */
        HEAD "[{\"type\":\"Folder\",\"id\":\"x\",\"n\":1}]}",
        HEAD "[{\"type\":\"Task\",\"id\":\"\",\"n\":1}]}",
        HEAD "[{\"type\":\"Task\",\"id\":7,\"n\":1}]}",
        HEAD "[{\"id\":\"x\",\"n\":1}]}",
        HEAD "[" TASK_X "\"n\":1,\"z\":1}]}",
        HEAD "[{\"n\":1}]}",
        HEAD "[{\"fault\":\"busy\",\"n\":1}]}",
        HEAD "[{\"fault\":null,\"n\":1}]}",
        HEAD "[{\"fault\":{},\"id\":\"x\",\"n\":1}]}",
        /* strict JSON behind the MAC too */
        "{\"v\":1,\"v\":1,\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
        HEAD "[" TASK_X "\"n\":1}]} x",
        "{\"v\":1,\"p\":\"\xff\",\"r\":\"r\",\"t\":\"t\",\"parts\":[" TASK_X "\"n\":1}]}",
    };
    fx_t *fx = *state;
    const char *s, *why;
    sg_handle_t got;
    size_t i;

    for (i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        s = forge(fx, bad[i]);
        if (decode(fx, s, strlen(s), key, &got, &why) != SG_ERR)
            fail_msg("accepted payload %zu: %s", i, bad[i]);
        if (strcmp(why, bad[i][0] == '\0' ? "malformed" : "bad payload") != 0)
            fail_msg("payload %zu: %s", i, why);
    }
}

static void rejects_deeply_nested_faults(void **state)
{
    fx_t *fx = *state;
    char payload[512], *o = payload;
    const char *s, *why;
    sg_handle_t got;
    int i;

    o += sprintf(o, "{\"v\":1,\"p\":\"v\",\"r\":\"r\",\"t\":\"t\",\"parts\":[{\"n\":1,\"fault\":");
    for (i = 0; i < 40; i++)
        o += sprintf(o, "{\"a\":");
    o += sprintf(o, "1");
    for (i = 0; i < 40; i++)
        o += sprintf(o, "}");
    sprintf(o, "}]}");
    s = forge(fx, payload);
    assert_int_equal(decode(fx, s, strlen(s), key, &got, &why), SG_ERR);
    assert_string_equal(why, "bad payload");
}

/* ---- what is not a handle, and the bounds ---- */

static void tells_composite_handles_from_task_ids(void **state)
{
    fx_t *fx = *state;
    const char *why;
    sg_handle_t got;

    assert_true(sg_handle_is_composite("sgc1.", 5));
    assert_true(sg_handle_is_composite("sgc1.abc.def", 12));
    assert_false(sg_handle_is_composite("sgc1", 4));
    assert_false(sg_handle_is_composite("sgc1.x", 4));
    assert_false(sg_handle_is_composite("SGC1.x", 6));
    assert_false(sg_handle_is_composite("SmsTask-12", 10));
    assert_false(sg_handle_is_composite("", 0));
    assert_false(sg_handle_is_composite(NULL, 0));
    assert_int_equal(decode(fx, "SmsTask-12", 10, key, &got, &why), SG_ERR);
    assert_string_equal(why, "not a composite handle");
    assert_int_equal(decode(fx, "sgc1.", 5, key, &got, &why), SG_ERR);
    assert_string_equal(why, "malformed");
}

static void rejects_oversize_handles_before_looking_inside(void **state)
{
    fx_t *fx = *state;
    char *s = malloc(SG_HANDLE_MAX + 2);
    const char *why;
    sg_handle_t got;

    assert_non_null(s);
    memset(s, 'A', SG_HANDLE_MAX + 1);
    memcpy(s, SG_HANDLE_PREFIX, 5);
    s[SG_HANDLE_MAX + 1] = '\0';
    assert_int_equal(decode(fx, s, SG_HANDLE_MAX + 1, key, &got, &why), SG_ERR);
    assert_string_equal(why, "too large");
    free(s);
}

static void refuses_to_encode_over_the_size_limit(void **state)
{
    fx_t *fx = *state;
    static char big[SG_HANDLE_MAX];
    sg_handle_part_t parts[2] = {{"SmsTask", big, NULL, 1}, {"SmsTask", "SmsTask-2", NULL, 1}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 2};

    memset(big, 'x', sizeof(big) - 1);
    sg_buf_reset(&fx->out);
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ETOOBIG);
    assert_int_equal(fx->out.len, 0);
}

static void encodes_up_to_exactly_the_size_limit(void **state)
{
    fx_t *fx = *state;
    static char id[SG_HANDLE_MAX];
    sg_handle_part_t parts[1] = {{"SmsTask", id, NULL, 1}};
    sg_handle_t h = {"vc-east", "v", "", "", parts, 1}, got;
    const char *why;
    size_t n, len = 0;
    int rv;

    /* Grow the id until encoding fails: the last success is within SG_HANDLE_MAX and decodes. */
    for (n = 5800; n < 6200; n++) {
        memset(id, 'x', n);
        id[n] = '\0';
        sg_buf_reset(&fx->out);
        rv = sg_handle_encode(&h, key, sizeof(key), &fx->out);
        if (rv == SG_ETOOBIG)
            break;
        assert_int_equal(rv, SG_OK);
        len = fx->out.len;
        assert_true(len <= SG_HANDLE_MAX);
        assert_int_equal(decode(fx, fx->out.data, len, key, &got, &why), SG_OK);
    }
    assert_true(n < 6200);
    assert_true(len > SG_HANDLE_MAX - 4);
}

static void refuses_1025_parts_at_encode(void **state)
{
    fx_t *fx = *state;
    sg_handle_part_t *parts = calloc(SG_HANDLE_MAX_PARTS + 1, sizeof(*parts));
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, SG_HANDLE_MAX_PARTS + 1};
    size_t i;

    assert_non_null(parts);
    for (i = 0; i < SG_HANDLE_MAX_PARTS + 1; i++)
        parts[i] = (sg_handle_part_t){"Task", "t", NULL, 1};
    sg_buf_reset(&fx->out);
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ETOOBIG);
    assert_int_equal(fx->out.len, 0);
    free(parts);
}

static void refuses_to_encode_what_it_could_not_decode(void **state)
{
    fx_t *fx = *state;
    sg_handle_part_t ok = {"SmsTask", "SmsTask-1", NULL, 1};
    sg_handle_part_t bad[] = {
        {"SmsTask", "SmsTask-1", NULL, 0},     /* no groups */
        {"Folder", "SmsTask-1", NULL, 1},      /* not a task type */
        {NULL, "SmsTask-1", NULL, 1},          /* no type */
        {"SmsTask", "", NULL, 1},              /* empty id */
        {"SmsTask", NULL, NULL, 1},            /* neither id nor fault */
        {"SmsTask", "x", FAULT_PLAIN, 1},      /* both */
        {NULL, NULL, "\"busy\"", 1},           /* fault not an object */
        {NULL, NULL, "{\"a\":1", 1},           /* fault not JSON */
        {NULL, NULL, "{}},{\"type\":\"Task\",\"id\":\"x\",\"n\":1", 1}, /* fault smuggling */
        {NULL, NULL, "{\"a\":\"\xff\"}", 1},   /* fault not UTF-8 */
        {"SmsTask", "id-\xc3", NULL, 1},       /* id not UTF-8 */
    };
    sg_handle_part_t parts[2];
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 2};
    size_t i;

    for (i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        parts[0] = ok;
        parts[1] = bad[i];
        sg_buf_reset(&fx->out);
        if (sg_handle_encode(&h, key, sizeof(key), &fx->out) != SG_ERR)
            fail_msg("encoded part %zu", i);
        assert_int_equal(fx->out.len, 0);
    }
    parts[1] = ok;
    h.provider = "";
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ERR);
    h.provider = NULL;
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ERR);
    h.provider = "vasa-\xff";
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ERR);
    h.provider = "vasa-1";
    h.tenant = NULL;
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ERR);
    h.tenant = "t1";
    h.nparts = 0;
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ERR);
    assert_int_equal(fx->out.len, 0);
}

static void leaves_out_untouched_when_out_is_full(void **state)
{
    sg_handle_part_t parts[1] = {{"SmsTask", "SmsTask-1", NULL, 1}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 1};
    sg_buf_t small;

    sg_buf_init(&small, 64);
    assert_int_equal(sg_buf_lit(&small, "x"), SG_OK);
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &small), SG_ETOOBIG);
    assert_int_equal(small.len, 1);
    sg_buf_dispose(&small);
}

/* ---- what the batch filter decides before sending ---- */

static void takes_only_short_printable_task_ids(void **state)
{
    char id[SG_HANDLE_ID_MAX + 2];

    (void)state;
    memset(id, 'x', sizeof(id) - 1);
    id[SG_HANDLE_ID_MAX + 1] = '\0';
    assert_false(sg_handle_id_ok(id));
    id[SG_HANDLE_ID_MAX] = '\0';
    assert_true(sg_handle_id_ok(id));
    assert_true(sg_handle_id_ok("SmsTask-42"));
    assert_true(sg_handle_id_ok("task-1 ~x"));
    assert_false(sg_handle_id_ok(""));
    assert_false(sg_handle_id_ok(NULL));
    assert_false(sg_handle_id_ok("a\"b"));
    assert_false(sg_handle_id_ok("a\\b"));
    assert_false(sg_handle_id_ok("a\nb"));
    assert_false(sg_handle_id_ok("a\x7f"));
    assert_false(sg_handle_id_ok("gr\xc3\xbc\xc3\x9f"));
}

/* A fault bigger than any handle, with a type of exactly SG_HANDLE_TYPE_MAX characters. */
static char *worst_fault(void)
{
    size_t n = SG_HANDLE_MAX + 200;
    char *f = malloc(n + 100), *o = f;

    assert_non_null(f);
    o += sprintf(o, "{\"_typeName\":\"");
    memset(o, 'T', SG_HANDLE_TYPE_MAX);
    o += SG_HANDLE_TYPE_MAX;
    o += sprintf(o, "\",\"faultstring\":\"");
    memset(o, 'f', n);
    o += n;
    strcpy(o, "\"}");
    return f;
}

/* capacity parts of the largest kinds (every other one a fault far too big to carry whole)
 * encode, and decode; one more of the largest accepted kind does not fit. */
static void assert_capacity_is_exact(fx_t *fx, const char *upstream, const char *provider,
                                     const char *tenant, size_t max_count)
{
    size_t cap = sg_handle_capacity(upstream, provider, "8.0.3.0", tenant, max_count), i;
    sg_handle_part_t *parts = calloc(cap + 1, sizeof(*parts));
    char id[SG_HANDLE_ID_MAX + 1], *fault = worst_fault();
    sg_handle_t h = {upstream, provider, "8.0.3.0", tenant, parts, cap}, got;
    const char *why;

    assert_true(cap > 0);
    assert_non_null(parts);
    memset(id, '~', SG_HANDLE_ID_MAX);
    id[SG_HANDLE_ID_MAX] = '\0';
    for (i = 0; i <= cap; i++)
        parts[i] = i % 2 ? (sg_handle_part_t){NULL, NULL, fault, max_count}
                         : (sg_handle_part_t){"SmsTask", id, NULL, max_count};
    sg_buf_reset(&fx->out);
    assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_OK);
    assert_true(fx->out.len <= SG_HANDLE_MAX);
    assert_int_equal(decode(fx, fx->out.data, fx->out.len, key, &got, &why), SG_OK);
    assert_int_equal(got.nparts, cap);
    if (cap < SG_HANDLE_MAX_PARTS) {
        for (i = 0; i <= cap; i++)
            parts[i] = (sg_handle_part_t){"SmsTask", id, NULL, max_count};
        h.nparts = cap + 1;
        sg_buf_reset(&fx->out);
        assert_int_equal(sg_handle_encode(&h, key, sizeof(key), &fx->out), SG_ETOOBIG);
    }
    free(fault);
    free(parts);
}

static void capacity_holds_the_worst_parts_and_not_one_more(void **state)
{
    fx_t *fx = *state;
    char provider[3001], upstream[SG_HANDLE_UPSTREAM_MAX + 1];

    memset(upstream, 'u', sizeof(upstream) - 1);
    upstream[sizeof(upstream) - 1] = '\0';
    assert_capacity_is_exact(fx, "vc-east", "vasa-1", "t1", 1);
    assert_capacity_is_exact(fx, "vc-east", "vasa-1", "t1", 17);
    assert_capacity_is_exact(fx, "default", "vasa-1", "", 12345);
    assert_capacity_is_exact(fx, upstream, "vasa-1", "t1", 17);
    assert_capacity_is_exact(fx, "v", "vasa-\xe2\x80\xa8-1", "tenant \"quoted\"", 99);
    memset(provider, 'p', sizeof(provider) - 1);
    provider[sizeof(provider) - 1] = '\0';
    assert_capacity_is_exact(fx, "vc-east", provider, "t1", 500);
    assert_capacity_is_exact(fx, upstream, provider, "t1", 500);
    /* a longer provider leaves room for fewer parts */
    assert_true(sg_handle_capacity("vc-east", provider, "8.0.3.0", "t1", 500) <
                sg_handle_capacity("vc-east", "vasa-1", "8.0.3.0", "t1", 500));
}

static void capacity_is_zero_when_no_handle_can_be_made(void **state)
{
    char provider[SG_HANDLE_MAX];

    (void)state;
    memset(provider, 'p', sizeof(provider) - 1);
    provider[sizeof(provider) - 1] = '\0';
    assert_int_equal(sg_handle_capacity("vc-east", provider, "8.0.3.0", "t1", 1), 0);
    assert_int_equal(sg_handle_capacity("vc-east", "", "8.0.3.0", "t1", 1), 0);
    assert_int_equal(sg_handle_capacity("vc-east", NULL, "8.0.3.0", "t1", 1), 0);
    assert_int_equal(sg_handle_capacity("vc-east", "vasa-1", "8.0.3.0", "t\xff", 1), 0);
    assert_int_equal(sg_handle_capacity("", "vasa-1", "8.0.3.0", "t1", 1), 0);
    assert_int_equal(sg_handle_capacity(NULL, "vasa-1", "8.0.3.0", "t1", 1), 0);
    assert_int_equal(
        sg_handle_capacity("vc-east", "vasa-1", "8.0.3.0", "t1", 1) <= SG_HANDLE_MAX_PARTS, 1);
}

static void cuts_faults_to_their_type_only_when_whole_ones_do_not_fit(void **state)
{
    fx_t *fx = *state;
    char *big = worst_fault(), odd[200];
    sg_handle_part_t parts[3] = {{"SmsTask", "SmsTask-1", NULL, 4},
                                 {NULL, NULL, FAULT_PLAIN, 4},
                                 {NULL, NULL, big, 4}};
    sg_handle_t h = {"vc-east", "vasa-1", "8.0.3.0", "t1", parts, 2}, got;
    const char *why;

    /* fits whole: kept whole */
    encode_ok(fx, &h);
    assert_int_equal(decode(fx, fx->out.data, fx->out.len, key, &got, &why), SG_OK);
    assert_string_equal(got.parts[1].fault, FAULT_PLAIN);
    /* one fault too big: every fault cut to its type */
    h.nparts = 3;
    encode_ok(fx, &h);
    assert_int_equal(decode(fx, fx->out.data, fx->out.len, key, &got, &why), SG_OK);
    assert_string_equal(got.parts[0].value, "SmsTask-1");
    assert_string_equal(got.parts[1].fault, "{\"_typeName\":\"ProviderBusy\"}");
    assert_int_equal(strncmp(got.parts[2].fault, "{\"_typeName\":\"TTTT", 18), 0);
    assert_int_equal(strlen(got.parts[2].fault), 16 + SG_HANDLE_TYPE_MAX);
    /* a type that is not a short plain name becomes SystemError when cut */
    snprintf(odd, sizeof(odd), "{\"_typeName\":\"a\\\"b\"}");
    parts[1].fault = odd;
    encode_ok(fx, &h);
    assert_int_equal(decode(fx, fx->out.data, fx->out.len, key, &got, &why), SG_OK);
    assert_string_equal(got.parts[1].fault, "{\"_typeName\":\"SystemError\"}");
    free(big);
}

static void encodes_the_same_handle_twice_identically(void **state)
{
    fx_t *fx = *state;
    sg_handle_part_t parts[25];
    char ids[25][32], first[SG_HANDLE_MAX + 1];
    sg_handle_t h = make(25, parts, ids);

    strcpy(first, encode_ok(fx, &h));
    assert_string_equal(first, encode_ok(fx, &h));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(round_trips_one_part),
        T(round_trips_two_parts),
        T(round_trips_25_parts_with_failed_ones),
        T(round_trips_a_failed_part_with_quotes_and_unicode),
        T(writes_fault_back_compactly),
        T(returns_the_other_tenant_for_the_caller_to_refuse),
        T(returns_the_upstream_it_was_made_on),
        T(refuses_to_encode_without_an_upstream_name),
        T(rejects_a_handle_moved_to_another_upstream),
        T(rejects_every_altered_payload_byte),
        T(rejects_every_altered_mac_byte),
        T(rejects_non_canonical_last_characters),
        T(rejects_swapped_halves),
        T(rejects_truncated_handles),
        T(rejects_padding_and_other_alphabets),
        T(rejects_a_handle_signed_with_another_key),
        T(refuses_short_keys),
        T(accepts_a_payload_signed_by_hand),
        T(reads_a_version_1_handle_as_made_on_default),
        T(rejects_signed_payloads_outside_the_format),
        T(rejects_deeply_nested_faults),
        T(tells_composite_handles_from_task_ids),
        T(rejects_oversize_handles_before_looking_inside),
        T(refuses_to_encode_over_the_size_limit),
        T(encodes_up_to_exactly_the_size_limit),
        T(refuses_1025_parts_at_encode),
        T(refuses_to_encode_what_it_could_not_decode),
        T(leaves_out_untouched_when_out_is_full),
        T(encodes_the_same_handle_twice_identically),
        T(takes_only_short_printable_task_ids),
        T(capacity_holds_the_worst_parts_and_not_one_more),
        T(capacity_is_zero_when_no_handle_can_be_made),
        T(cuts_faults_to_their_type_only_when_whole_ones_do_not_fit),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
