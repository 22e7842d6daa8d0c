/*
 * tests/sim/sim_util.c - small helpers shared by the simulator's files:
 * bounded buffers, JSON string escaping, the request-as-JSON members used by
 * both the record file and /sim/echo, header lookup, time stamps and logging.
 * Nothing here knows about sockets or vSphere.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* Allocations start here and double; a buffer reset keeps at most this much,
 * so one 8 MiB body does not stay pinned to a keep-alive connection. */
#define SIM_BUF_MIN 256
#define SIM_BUF_KEEP (64 * 1024)

void sim_buf_init(sim_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void sim_buf_dispose(sim_buf_t *b)
{
    free(b->p);
    sim_buf_init(b, b->max);
}

void sim_buf_reset(sim_buf_t *b)
{
    if (b->cap > SIM_BUF_KEEP) {
        sim_buf_dispose(b);
        return;
    }
    b->len = 0;
    b->err = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

/* Makes room for `need` more bytes plus the NUL. Returns 0, or -1 (sticky)
 * when that would pass b->max or memory runs out. */
static int sim_buf_reserve(sim_buf_t *b, size_t need)
{
    size_t want, cap;
    char *p;
    int rc = -1;

    if (b->err)
        goto out;
    if (need > b->max - b->len)
        goto fail;
    want = b->len + need + 1;
    if (want <= b->cap) {
        rc = 0;
        goto out;
    }
    cap = b->cap != 0 ? b->cap : SIM_BUF_MIN;
    while (cap < want)
        cap *= 2; /* cannot overflow: want <= max + 1, and max is far below SIZE_MAX/2 */
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->p, cap);
    if (p == NULL)
        goto fail;
    b->p = p;
    b->cap = cap;
    rc = 0;
    goto out;
fail:
    b->err = 1;
out:
    return rc;
}

int sim_buf_add(sim_buf_t *b, const void *p, size_t n)
{
    if (sim_buf_reserve(b, n) != 0)
        return -1;
    if (n != 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int sim_buf_adds(sim_buf_t *b, const char *s)
{
    return sim_buf_add(b, s, strlen(s));
}

int sim_buf_addf(sim_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc = -1;

    /* Measure first, then print into reserved room: two passes over a short
     * format are cheaper than guessing and retrying. */
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = 1;
        goto out;
    }
    if (sim_buf_reserve(b, (size_t)n) != 0)
        goto out;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    rc = 0;
out:
    return rc;
}

/* Hands the content (never NULL on success) to the caller, who frees it. */
char *sim_buf_steal(sim_buf_t *b, size_t *len)
{
    char *p = NULL;

    if (sim_buf_reserve(b, 0) != 0)
        goto out;
    p = b->p;
    *len = b->len;
    sim_buf_init(b, b->max);
out:
    return p;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 when the bytes are not one. */
static size_t sim_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;

    if (c < 0x80)
        return 1;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xf0 && p[1] < 0x90)) /* overlong */
        return 0;
    if (c == 0xed && p[1] >= 0xa0) /* UTF-16 surrogate */
        return 0;
    if (c == 0xf4 && p[1] >= 0x90) /* above U+10FFFF */
        return 0;
    return len;
}

int sim_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t k;

    for (size_t i = 0; i < n; i += k)
        if ((k = sim_utf8_seq(p + i, n - i)) == 0)
            return 0;
    return 1;
}

/*
 * Appends s[0..n) as a quoted JSON string. Well-formed UTF-8 passes through;
 * quote, backslash, control bytes, DEL and NUL are escaped, so the exact bytes
 * come back from any JSON parser. A byte that is not part of well-formed UTF-8
 * becomes \u00XX: the output stays valid JSON, at the price of being ambiguous
 * with U+0080..U+00FF (callers that must be exact add a base64 copy).
 */
int sim_buf_add_jstr(sim_buf_t *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    char esc[8];

    sim_buf_add(b, "\"", 1);
    while (p < end) {
        unsigned char c = *p;
        size_t k;

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            p++;
            continue;
        }
        if (c >= 0x80 && (k = sim_utf8_seq(p, (size_t)(end - p))) != 0) {
            p += k;
            continue;
        }
        /* Copy the plain run in one go: bodies can be megabytes. */
        sim_buf_add(b, run, (size_t)(p - run));
        switch (c) {
        case '"': sim_buf_add(b, "\\\"", 2); break;
        case '\\': sim_buf_add(b, "\\\\", 2); break;
        case '\n': sim_buf_add(b, "\\n", 2); break;
        case '\r': sim_buf_add(b, "\\r", 2); break;
        case '\t': sim_buf_add(b, "\\t", 2); break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            sim_buf_add(b, esc, 6);
            break;
        }
        run = ++p;
    }
    sim_buf_add(b, run, (size_t)(p - run));
    sim_buf_add(b, "\"", 1);
    return b->err ? -1 : 0;
}

/*
 * Appends the members "method", "path", "headers" and "body" (no braces), the
 * shape shared by --record lines and /sim/echo answers. When the body is not
 * UTF-8, "body_base64" follows with its exact bytes.
 */
int sim_buf_add_req_json(sim_buf_t *b, const sim_req_t *req)
{
    size_t n64, len;

    sim_buf_adds(b, "\"method\":");
    sim_buf_add_jstr(b, req->method, strlen(req->method));
    sim_buf_adds(b, ",\"path\":");
    sim_buf_add_jstr(b, req->target, req->target_len);
    sim_buf_adds(b, ",\"headers\":[");
    for (size_t i = 0; i < req->nhdrs; i++) {
        sim_buf_adds(b, i == 0 ? "[" : ",[");
        sim_buf_add_jstr(b, req->hdrs[i].name, req->hdrs[i].name_len);
        sim_buf_adds(b, ",");
        sim_buf_add_jstr(b, req->hdrs[i].value, req->hdrs[i].value_len);
        sim_buf_adds(b, "]");
    }
    sim_buf_adds(b, "],\"body\":");
    sim_buf_add_jstr(b, req->body, req->body_len);
    if (!sim_utf8_valid(req->body, req->body_len)) {
        /* EVP_EncodeBlock writes 4 characters per 3 bytes, then a NUL. */
        n64 = (req->body_len + 2) / 3 * 4;
        sim_buf_adds(b, ",\"body_base64\":\"");
        len = b->len;
        if (sim_buf_reserve(b, n64) == 0) {
            EVP_EncodeBlock((unsigned char *)b->p + len, (const unsigned char *)req->body,
                            (int)req->body_len);
            b->len = len + n64;
        }
        sim_buf_adds(b, "\"");
    }
    return b->err ? -1 : 0;
}

/* ASCII case-insensitive comparison of a counted string with a C string;
 * header names are ASCII tokens, and the C library's versions follow the locale. */
int sim_mem_ieq(const char *a, size_t alen, const char *b)
{
    size_t i;

    for (i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

        if (y == '\0')
            return 0;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return 0;
    }
    return b[i] == '\0';
}

/* The first header called `name` (any case), or NULL. */
const sim_hdr_t *sim_req_header(const sim_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nhdrs; i++)
        if (sim_mem_ieq(req->hdrs[i].name, req->hdrs[i].name_len, name))
            return &req->hdrs[i];
    return NULL;
}

/* RFC 3339 in UTC with milliseconds (VI/JSON's dateTime) or, with usec set,
 * microseconds (the record file), e.g. 2026-11-25T02:00:00.123456Z. */
void sim_time_fmt(char *out, size_t n, const struct timespec *ts, int usec)
{
    struct tm tm;

    gmtime_r(&ts->tv_sec, &tm);
    if (usec)
        snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000);
    else
        snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000);
}

/* Milliseconds on the monotonic clock: task ages must not jump with the wall clock. */
int64_t sim_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_log(const char *fmt, ...)
{
    va_list ap;

    fputs("sms-sim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
