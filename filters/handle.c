/*
 * filters/handle.c - encodes, signs, verifies and decodes composite SmsTask handles.
 *
 * The format is described in handle.h. What this file leaves to others: loading the key
 * (conf/, batch.task_key_file), deciding when a handle is needed and merging task states
 * (flt_batch), and checking the decoded upstream, tenant and provider against the request (the
 * caller).
 *
 * Why it is built this way:
 *   - The MAC covers the exact payload bytes and is compared in constant time before the JSON
 *     parser sees a single byte, so the parser is never an attack surface for unauthenticated
 *     input (the handle arrives in a URL path from anyone who can reach us).
 *   - Base64url is decoded strictly (base/b64.c): the alphabet only, no padding, and the unused
 *     low bits of the last character must be zero. A lenient decoder maps several strings to one
 *     payload; then "altered handle still verifies" and handle-keyed caches or audit records
 *     could be fooled by cosmetic variants.
 *   - Encoding parses what it just wrote with the decoder's own checks, so every handle we sign
 *     is one we can read back (invalid UTF-8 from upstream, a stray fault text, ...).
 */
#include "filters/handle.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

#define HANDLE_PREFIX_LEN (sizeof(SG_HANDLE_PREFIX) - 1)
#define HANDLE_MAC_LEN 32        /* HMAC-SHA256 */
#define HANDLE_MAC_B64 43        /* base64url characters of 32 bytes, unpadded */
#define HANDLE_COUNT_MAX 1000000 /* groups in one part; far above what limits.max_body allows */
/* Base64url characters left for the payload, and the most payload bytes they can carry. */
#define HANDLE_PAYLOAD_B64_MAX (SG_HANDLE_MAX - HANDLE_PREFIX_LEN - 1 - HANDLE_MAC_B64)
#define HANDLE_PAYLOAD_MAX (HANDLE_PAYLOAD_B64_MAX * 3 / 4) /* 6107 */
/* Nesting: payload object, parts array, part object, then the fault's own levels. */
#define HANDLE_JSON_DEPTH 24
#define HANDLE_FAULT_DEPTH (HANDLE_JSON_DEPTH - 3)
#define HANDLE_JSON_VALUES 8192 /* > any payload of HANDLE_PAYLOAD_MAX bytes can hold */

static int handle_mac(const unsigned char *key, size_t keylen, const unsigned char *p, size_t n,
                      unsigned char mac[HANDLE_MAC_LEN])
{
    unsigned int maclen = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, p, n, mac, &maclen) == NULL ||
        maclen != HANDLE_MAC_LEN)
        return SG_ERR;
    return SG_OK;
}

/* Parses a decimal JSON number as a count in [1, HANDLE_COUNT_MAX]; 0 when it is not one. */
static size_t handle_count(const sg_json_t *v)
{
    size_t i, c = 0;

    if (v == NULL || v->type != SG_JSON_NUMBER || v->str.n == 0 || v->str.n > 7)
        return 0;
    for (i = 0; i < v->str.n; i++) {
        if (v->str.p[i] < '0' || v->str.p[i] > '9')
            return 0; /* '-', fraction or exponent: a count is a plain integer */
        c = c * 10 + (size_t)(v->str.p[i] - '0');
    }
    return c >= 1 && c <= HANDLE_COUNT_MAX ? c : 0;
}

static int handle_is_type(const char *s, size_t n)
{
    return (n == 7 && memcmp(s, "SmsTask", 7) == 0) || (n == 4 && memcmp(s, "Task", 4) == 0);
}

/* 1 when s[0,n) can be an upstream's name (conf/: [A-Za-z0-9_.-], 1 to SG_HANDLE_UPSTREAM_MAX
 * bytes). Its JSON form is itself, which sg_handle_capacity() counts on. */
static int handle_upstream_ok(const char *s, size_t n)
{
    size_t i;

    if (s == NULL || n == 0 || n > SG_HANDLE_UPSTREAM_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* The string member name of obj, or NULL when absent or not a string. */
static const sg_json_t *handle_str(const sg_json_t *obj, const char *name)
{
    const sg_json_t *v = sg_json_get(obj, name, strlen(name));

    return v != NULL && v->type == SG_JSON_STRING ? v : NULL;
}

/*
 * Checks a parsed payload against the format in handle.h and, when out is not NULL, fills it
 * with pool copies (the tree's strings already live in pool; faults are written back as
 * text). Returns SG_OK, SG_ERR (not the format) or SG_ENOMEM.
 */
static int handle_check(sg_pool_t *pool, const sg_json_t *root, sg_handle_t *out)
{
    const sg_json_t *v, *u, *p, *r, *t, *parts;
    const char *upstream;
    sg_handle_part_t *hp = NULL;
    size_t i;

    if (root->type != SG_JSON_OBJECT)
        return SG_ERR;
    /* Exactly v, u, p, r, t, parts (version 1: no u): a new member means a new "v". */
    v = sg_json_get(root, "v", 1);
    if (v == NULL || v->type != SG_JSON_NUMBER || v->str.n != 1)
        return SG_ERR;
    if (v->str.p[0] == '1' && root->nkids == 5) {
        upstream = SG_HANDLE_V1_UPSTREAM; /* made before several vCenters: handle.h */
    } else if (v->str.p[0] == '2' && root->nkids == 6 && (u = handle_str(root, "u")) != NULL &&
               handle_upstream_ok(u->str.p, u->str.n)) {
        upstream = u->str.p;
    } else {
        return SG_ERR;
    }
    p = handle_str(root, "p");
    r = handle_str(root, "r");
    t = handle_str(root, "t");
    parts = sg_json_get(root, "parts", 5);
    if (p == NULL || p->str.n == 0 || r == NULL || t == NULL || parts == NULL ||
        parts->type != SG_JSON_ARRAY || parts->nkids == 0 || parts->nkids > SG_HANDLE_MAX_PARTS)
        return SG_ERR;
    if (out != NULL && (hp = sg_pool_calloc(pool, parts->nkids * sizeof(*hp))) == NULL)
        return SG_ENOMEM;
    for (i = 0; i < parts->nkids; i++) {
        const sg_json_t *part = parts->kids[i], *type, *id, *fault;
        size_t count;

        if (part->type != SG_JSON_OBJECT || (count = handle_count(sg_json_get(part, "n", 1))) == 0)
            return SG_ERR;
        fault = sg_json_get(part, "fault", 5);
        if (fault != NULL) {
            /* Failed at submission: the fault object and the count, nothing else. */
            if (fault->type != SG_JSON_OBJECT || part->nkids != 2)
                return SG_ERR;
            if (hp != NULL) {
                size_t len = sg_json_size(fault);
                char *txt = sg_pool_alloc(pool, len + 1);

                if (txt == NULL)
                    return SG_ENOMEM;
                *sg_json_put(txt, fault) = '\0';
                hp[i].fault = txt;
            }
        } else {
            type = handle_str(part, "type");
            id = handle_str(part, "id");
            if (type == NULL || !handle_is_type(type->str.p, type->str.n) || id == NULL ||
                id->str.n == 0 || part->nkids != 3)
                return SG_ERR;
            if (hp != NULL) {
                hp[i].type = type->str.p;
                hp[i].value = id->str.p;
            }
        }
        if (hp != NULL)
            hp[i].count = count;
    }
    if (out != NULL) {
        out->upstream = upstream;
        out->provider = p->str.p;
        out->release = r->str.p;
        out->tenant = t->str.p;
        out->parts = hp;
        out->nparts = parts->nkids;
    }
    return SG_OK;
}

static int handle_parse(sg_pool_t *pool, const char *buf, size_t len, unsigned depth,
                        const sg_json_t **out)
{
    sg_json_limits_t lim = {.max_depth = depth, .max_values = HANDLE_JSON_VALUES};
    sg_json_err_t err;
    sg_json_t *root;
    int rv = sg_json_parse(pool, buf, len, &lim, &root, &err);

    if (rv == SG_EPROTO)
        return SG_ERR;
    *out = root;
    return rv;
}

int sg_handle_is_composite(const char *s, size_t n)
{
    return s != NULL && n >= HANDLE_PREFIX_LEN &&
           memcmp(s, SG_HANDLE_PREFIX, HANDLE_PREFIX_LEN) == 0;
}

int sg_handle_id_ok(const char *id)
{
    size_t i;

    for (i = 0; id != NULL && id[i] != '\0'; i++)
        if (i == SG_HANDLE_ID_MAX || id[i] < 0x20 || id[i] > 0x7e || id[i] == '"' ||
            id[i] == '\\')
            return 0;
    return i > 0;
}

/* 1 when s is valid UTF-8 (what the encoder's read-back demands of every string). */
static int handle_utf8(const char *s)
{
    size_t n = strlen(s), i = 0, k;
    uint32_t cp;

    for (; i < n; i += k)
        if ((k = sg_utf8_char((const unsigned char *)s + i, n - i, &cp)) == 0)
            return 0;
    return 1;
}

size_t sg_handle_capacity(const char *upstream, const char *provider, const char *release,
                          const char *tenant, size_t max_count)
{
    /* The payload of handle_payload(), counted: the fixed part around the strings, and the
     * larger of the two worst parts, an accepted one with the longest id sg_handle_id_ok()
     * lets through and a fault cut to the longest type handle_cut_type() keeps. */
    static const size_t fixed =
        sizeof("{\"v\":2,\"u\":\"\",\"p\":,\"r\":,\"t\":,\"parts\":[]}") - 1;
    static const size_t task = sizeof("{\"type\":\"SmsTask\",\"id\":\"\",\"n\":}") - 1 +
                               SG_HANDLE_ID_MAX;
    static const size_t fault = sizeof("{\"fault\":{\"_typeName\":\"\"},\"n\":}") - 1 +
                                SG_HANDLE_TYPE_MAX;
    size_t digits = 1, head, part, n;

    if (upstream == NULL || !handle_upstream_ok(upstream, strlen(upstream)) || provider == NULL ||
        release == NULL || tenant == NULL || provider[0] == '\0' || !handle_utf8(provider) ||
        !handle_utf8(release) || !handle_utf8(tenant))
        return 0;
    for (max_count = SG_MIN(max_count, (size_t)HANDLE_COUNT_MAX); max_count >= 10; max_count /= 10)
        digits++;
    head = fixed + strlen(upstream) + sg_json_string_size(provider, strlen(provider)) +
           sg_json_string_size(release, strlen(release)) +
           sg_json_string_size(tenant, strlen(tenant));
    part = SG_MAX(task, fault) + digits + 1; /* + the comma before it; the first has none */
    if (head + 1 > HANDLE_PAYLOAD_MAX)
        return 0;
    n = (HANDLE_PAYLOAD_MAX - head + 1) / part;
    return SG_MIN(n, (size_t)SG_HANDLE_MAX_PARTS);
}

/* The type a cut fault keeps: its own _typeName when that is a short plain name (so that its
 * JSON form is itself and sg_handle_capacity() holds), else "SystemError". */
static const char *handle_cut_type(const sg_json_t *f, size_t *n)
{
    const sg_json_t *t = handle_str(f, "_typeName");

    if (t != NULL && t->str.n > 0 && t->str.n <= SG_HANDLE_TYPE_MAX) {
        size_t i;

        for (i = 0; i < t->str.n; i++) {
            char c = t->str.p[i];

            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.'))
                break;
        }
        if (i == t->str.n) {
            *n = t->str.n;
            return t->str.p;
        }
    }
    *n = 11;
    return "SystemError";
}

/* Appends the payload JSON for h to pl, every fault cut to its type when cut is set. The
 * scratch pool holds parsed fault trees. */
static int handle_payload(sg_pool_t *scratch, const sg_handle_t *h, int cut, sg_buf_t *pl)
{
    size_t i;
    int rv;

    if ((rv = sg_buf_lit(pl, "{\"v\":2,\"u\":")) != SG_OK ||
        (rv = sg_json_write_string(pl, h->upstream, strlen(h->upstream))) != SG_OK ||
        (rv = sg_buf_lit(pl, ",\"p\":")) != SG_OK ||
        (rv = sg_json_write_string(pl, h->provider, strlen(h->provider))) != SG_OK ||
        (rv = sg_buf_lit(pl, ",\"r\":")) != SG_OK ||
        (rv = sg_json_write_string(pl, h->release, strlen(h->release))) != SG_OK ||
        (rv = sg_buf_lit(pl, ",\"t\":")) != SG_OK ||
        (rv = sg_json_write_string(pl, h->tenant, strlen(h->tenant))) != SG_OK ||
        (rv = sg_buf_lit(pl, ",\"parts\":[")) != SG_OK)
        return rv;
    for (i = 0; i < h->nparts; i++) {
        const sg_handle_part_t *hp = &h->parts[i];

        if (i > 0 && (rv = sg_buf_lit(pl, ",")) != SG_OK)
            return rv;
        if (hp->count == 0 || hp->count > HANDLE_COUNT_MAX)
            return SG_ERR;
        if (hp->fault != NULL) {
            const sg_json_t *f;

            /* Parsed as one value and written back from the tree: a fault text such as
             * '{}},{"type":"Task","id":"x","n":1' cannot add parts to what we sign. */
            if (hp->value != NULL || hp->type != NULL)
                return SG_ERR;
            if ((rv = handle_parse(scratch, hp->fault, strlen(hp->fault), HANDLE_FAULT_DEPTH,
                                   &f)) != SG_OK)
                return rv;
            if (f->type != SG_JSON_OBJECT)
                return SG_ERR;
            if ((rv = sg_buf_lit(pl, "{\"fault\":")) != SG_OK)
                return rv;
            if (cut) {
                size_t tn;
                const char *t = handle_cut_type(f, &tn);

                if ((rv = sg_buf_lit(pl, "{\"_typeName\":")) != SG_OK ||
                    (rv = sg_json_write_string(pl, t, tn)) != SG_OK ||
                    (rv = sg_buf_lit(pl, "}")) != SG_OK)
                    return rv;
            } else if ((rv = sg_json_serialize(f, pl)) != SG_OK) {
                return rv;
            }
        } else {
            if (hp->value == NULL || hp->value[0] == '\0' || hp->type == NULL ||
                !handle_is_type(hp->type, strlen(hp->type)))
                return SG_ERR;
            if ((rv = sg_buf_lit(pl, "{\"type\":")) != SG_OK ||
                (rv = sg_json_write_string(pl, hp->type, strlen(hp->type))) != SG_OK ||
                (rv = sg_buf_lit(pl, ",\"id\":")) != SG_OK ||
                (rv = sg_json_write_string(pl, hp->value, strlen(hp->value))) != SG_OK)
                return rv;
        }
        if ((rv = sg_buf_appendf(pl, ",\"n\":%zu}", hp->count)) != SG_OK)
            return rv;
    }
    return sg_buf_lit(pl, "]}");
}

int sg_handle_encode(const sg_handle_t *h, const unsigned char *key, size_t keylen, sg_buf_t *out)
{
    unsigned char mac[HANDLE_MAC_LEN];
    sg_pool_t scratch;
    sg_buf_t pl, hb;
    const sg_json_t *root;
    char *o;
    size_t total;
    int rv;

    if (h->nparts > SG_HANDLE_MAX_PARTS)
        return SG_ETOOBIG;
    if (h->nparts == 0 || h->parts == NULL || h->upstream == NULL ||
        !handle_upstream_ok(h->upstream, strlen(h->upstream)) || h->provider == NULL ||
        h->provider[0] == '\0' || h->release == NULL || h->tenant == NULL || key == NULL ||
        keylen < SG_HANDLE_KEY_MIN)
        return SG_ERR;

    sg_pool_init(&scratch, 4096);
    sg_buf_init(&pl, HANDLE_PAYLOAD_MAX);
    sg_buf_init(&hb, SG_HANDLE_MAX);
    /* HANDLE_PAYLOAD_MAX is exactly what SG_HANDLE_MAX can carry: a payload that fits pl fits
     * the handle. Whole faults first; cut to their types when they are what does not fit. */
    rv = handle_payload(&scratch, h, 0, &pl);
    if (rv == SG_ETOOBIG) {
        sg_buf_reset(&pl);
        rv = handle_payload(&scratch, h, 1, &pl);
    }
    if (rv != SG_OK)
        goto out;
    /* Read back with the decoder's checks: catches invalid UTF-8 and anything else the
     * decoder would refuse, so we never hand out a handle that cannot be answered for. */
    if ((rv = handle_parse(&scratch, pl.data, pl.len, HANDLE_JSON_DEPTH, &root)) != SG_OK ||
        (rv = handle_check(&scratch, root, NULL)) != SG_OK)
        goto out;
    if ((rv = handle_mac(key, keylen, (const unsigned char *)pl.data, pl.len, mac)) != SG_OK)
        goto out;

    total = HANDLE_PREFIX_LEN + sg_b64url_len(pl.len) + 1 + HANDLE_MAC_B64;
    if (total > SG_HANDLE_MAX) {
        rv = SG_ETOOBIG;
        goto out;
    }
    /* Built whole in hb and appended once, so out is untouched on any failure. */
    if ((rv = sg_buf_reserve(&hb, total)) != SG_OK)
        goto out;
    o = hb.data;
    memcpy(o, SG_HANDLE_PREFIX, HANDLE_PREFIX_LEN);
    o = sg_b64url_put(o + HANDLE_PREFIX_LEN, (const unsigned char *)pl.data, pl.len);
    *o++ = '.';
    o = sg_b64url_put(o, mac, sizeof(mac));
    rv = sg_buf_append(out, hb.data, (size_t)(o - hb.data));

out:
    OPENSSL_cleanse(mac, sizeof(mac));
    sg_buf_dispose(&hb);
    sg_buf_dispose(&pl);
    sg_pool_dispose(&scratch);
    return rv;
}

int sg_handle_decode(sg_pool_t *pool, const char *s, size_t n, const unsigned char *key,
                     size_t keylen, sg_handle_t *out, const char **why)
{
    unsigned char want[HANDLE_MAC_LEN], got[HANDLE_MAC_LEN + 2];
    unsigned char *payload;
    const char *b64, *dot, *macb64;
    const sg_json_t *root;
    size_t b64n;
    long len;
    int rv;

    if (!sg_handle_is_composite(s, n)) {
        *why = "not a composite handle";
        return SG_ERR;
    }
    if (n > SG_HANDLE_MAX) {
        *why = "too large";
        return SG_ERR;
    }
    b64 = s + HANDLE_PREFIX_LEN;
    /* The MAC is the last HANDLE_MAC_B64 characters, after the only '.'; anything after it
     * (a second '.', a query string, padding) lands in the MAC and fails the alphabet check. */
    dot = memchr(b64, '.', n - HANDLE_PREFIX_LEN);
    if (dot == NULL || (size_t)(s + n - (dot + 1)) != HANDLE_MAC_B64) {
        *why = "malformed";
        return SG_ERR;
    }
    b64n = (size_t)(dot - b64);
    macb64 = dot + 1;
    if (b64n == 0 || sg_b64url_decode(got, macb64, HANDLE_MAC_B64) != HANDLE_MAC_LEN) {
        *why = "malformed";
        return SG_ERR;
    }
    /* b64n < SG_HANDLE_MAX, so this is at most ~6 KiB, from the request's pool. */
    if ((payload = sg_pool_alloc(pool, sg_b64url_decoded_max(b64n))) == NULL)
        return SG_ENOMEM;
    if ((len = sg_b64url_decode(payload, b64, b64n)) < 0) {
        *why = "malformed";
        return SG_ERR;
    }
    if (key == NULL || keylen < SG_HANDLE_KEY_MIN ||
        handle_mac(key, keylen, payload, (size_t)len, want) != SG_OK ||
        CRYPTO_memcmp(want, got, HANDLE_MAC_LEN) != 0) {
        *why = "bad signature";
        return SG_ERR;
    }
    /* Authentic from here on: the payload is one we wrote, so "bad payload" means a bug or a
     * key shared with something that is not smsguard. */
    rv = handle_parse(pool, (const char *)payload, (size_t)len, HANDLE_JSON_DEPTH, &root);
    if (rv == SG_OK)
        rv = handle_check(pool, root, out);
    if (rv == SG_ERR)
        *why = "bad payload";
    return rv;
}
