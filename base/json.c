/*
 * base/json.c - strict JSON parser into a pool-allocated tree, and its serializer.
 *
 * The parser is an explicit state machine over one input pass (no recursion, so
 * the C stack does not grow with the input). Each open array or object is a
 * frame; the values completed inside it are pushed onto one shared stack of
 * pointers and moved into an exactly sized array when the container closes.
 * That same stack slice is then free scratch space for the duplicate-name check,
 * which sorts it (heapsort: O(n log n), in place, no allocation, no worst case an
 * attacker can pick, unlike an unseeded hash table).
 *
 * Memory comes only from the caller's pool. Nodes and short strings are carved
 * from blocks that double in size, so a small body costs little and a large one
 * does not pay the pool's 16-byte rounding per node and per string.
 */
#include "base/json.h"

#include <stdint.h>
#include <string.h>

/* ---- allocation ---- */

#define JSON_NODES_MIN 8     /* first node block; doubles up to JSON_NODES_MAX */
#define JSON_NODES_MAX 256
#define JSON_BYTES_MIN 256   /* first string block; doubles up to JSON_BYTES_MAX */
#define JSON_BYTES_MAX 8192
#define JSON_KIDS_MIN 32     /* first size of the shared value stack */

typedef struct {
    sg_json_t *node; /* the open container */
    size_t base;     /* where its values start on the value stack */
} json_frame_t;

typedef struct {
    sg_pool_t *pool;
    const unsigned char *start, *s, *end; /* input and cursor */
    size_t max_depth, values_left;        /* limits still available */
    size_t max_number;                    /* SIZE_MAX when unbounded */

    json_frame_t *frames; /* open containers, innermost last */
    size_t nframes, cap_frames;
    sg_json_t **stack; /* completed values of every open container */
    size_t nstack, cap_stack;

    sg_json_t *nodes; /* current node block */
    size_t nodes_left, nodes_next;
    char *bytes; /* current string block */
    size_t bytes_left, bytes_next;
    /* The input, copied into the pool at the first string without escapes: such a string
     * is a slice of it, its closing quote overwritten by the NUL (json_copy_str). */
    char *copy;

    sg_str_t name; /* member name waiting for its value */
    int name_plain; /* its sg_json_t.name_plain */
    sg_json_err_t *err;
} json_parser_t;

static int json_fail(json_parser_t *p, const unsigned char *at, const char *why)
{
    p->err->why = why;
    p->err->off = (size_t)(at - p->start);
    return SG_EPROTO;
}

static sg_json_t *json_node_new(json_parser_t *p, sg_json_type_t type)
{
    sg_json_t *v;

    if (p->nodes_left == 0) {
        p->nodes = sg_pool_alloc(p->pool, p->nodes_next * sizeof(sg_json_t));
        if (p->nodes == NULL)
            return NULL;
        p->nodes_left = p->nodes_next;
        if (p->nodes_next < JSON_NODES_MAX)
            p->nodes_next *= 2;
    }
    v = p->nodes++;
    p->nodes_left--;
    memset(v, 0, sizeof(*v));
    v->type = type;
    v->name = p->name;
    v->name_plain = (unsigned char)p->name_plain;
    p->name.p = NULL;
    p->name.n = 0;
    p->name_plain = 0;
    return v;
}

/* Room for n bytes plus a NUL, byte-aligned: strings need no alignment. */
static char *json_bytes(json_parser_t *p, size_t n)
{
    char *r;

    n++;
    if (n > p->bytes_left) {
        /* Large for the next block: its own allocation, so a block always fits
         * what is carved from it. */
        if (n > p->bytes_next / 2)
            return sg_pool_alloc(p->pool, n);
        p->bytes = sg_pool_alloc(p->pool, p->bytes_next);
        if (p->bytes == NULL)
            return NULL;
        p->bytes_left = p->bytes_next;
        if (p->bytes_next < JSON_BYTES_MAX)
            p->bytes_next *= 2;
    }
    r = p->bytes;
    p->bytes += n;
    p->bytes_left -= n;
    return r;
}

/* Grows a pool array geometrically (to `first` elements when it has none); the old
 * copy stays in the pool, so what is wasted is less than the final size. */
static void *json_grow(sg_pool_t *pool, void *old, size_t elem, size_t used, size_t *cap,
                       size_t first)
{
    size_t ncap = *cap ? *cap * 2 : first;
    void *n;

    if (ncap < *cap || ncap > SIZE_MAX / elem)
        return NULL;
    if ((n = sg_pool_alloc(pool, ncap * elem)) == NULL)
        return NULL;
    if (used > 0)
        memcpy(n, old, used * elem);
    *cap = ncap;
    return n;
}

static int json_push_value(json_parser_t *p, sg_json_t *v)
{
    if (p->nstack == p->cap_stack) {
        sg_json_t **n = json_grow(p->pool, p->stack, sizeof(*n), p->nstack, &p->cap_stack,
                                   JSON_KIDS_MIN);

        if (n == NULL)
            return SG_ENOMEM;
        p->stack = n;
    }
    p->stack[p->nstack++] = v;
    return SG_OK;
}

/* ---- lexing helpers ---- */

static void json_skip_ws(json_parser_t *p)
{
    /* Every whitespace byte is below '!': one compare for the common case of none. */
    if (p->s < p->end && *p->s > ' ')
        return;
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t'))
        p->s++;
}

static int json_hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;

        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t json_put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decodes the \u escape at s (pointing at the backslash, 6 bytes known to be
 * present and hex-checked by the scan) into o, consuming a following low
 * surrogate escape when s holds a high one. Sets *used to the input consumed.
 */
static int json_decode_u(json_parser_t *p, const unsigned char *s, const unsigned char *end,
                         char *o, size_t *used, size_t *wrote)
{
    unsigned cp = 0, lo = 0;

    (void)json_hex4(s + 2, &cp); /* checked by the scan */
    if (cp == 0)
        return json_fail(p, s, "\\u0000 in string"); /* cJSON would cut the string here */
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return json_fail(p, s, "unpaired surrogate escape");
    *used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - s < 12 || s[6] != '\\' || s[7] != 'u' || json_hex4(s + 8, &lo) != 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return json_fail(p, s, "unpaired surrogate escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *used = 12;
    }
    *wrote = json_put_utf8(o, cp);
    return SG_OK;
}

/* Second pass over a string that holds escapes: s..end is the content between the
 * quotes, already checked for UTF-8, raw controls and escape letters. */
static int json_decode(json_parser_t *p, const unsigned char *s, const unsigned char *end,
                       sg_str_t *out)
{
    /* Escapes only shrink (\uHHHH is 6 bytes for at most 3, a pair 12 for 4). */
    char *buf = json_bytes(p, (size_t)(end - s)), *o = buf;
    size_t used, wrote;
    int rv;

    if (buf == NULL)
        return SG_ENOMEM;
    while (s < end) {
        const unsigned char *bs = memchr(s, '\\', (size_t)(end - s));
        size_t run = (bs ? bs : end) - s;

        memcpy(o, s, run);
        o += run;
        s += run;
        if (s == end)
            break;
        switch (s[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: /* 'u', the only other letter the scan lets through */
            if ((rv = json_decode_u(p, s, end, o, &used, &wrote)) != SG_OK)
                return rv;
            o += wrote;
            s += used;
            continue;
        }
        s += 2;
    }
    *o = '\0';
    out->p = buf;
    out->n = (size_t)(o - buf);
    return SG_OK;
}

/* A string without escapes, src[0, n) (src[n] its closing quote): its decoded bytes are
 * its source bytes, which the copy of the input already holds. One copy of the input
 * instead of one allocation and copy per string, the common case (member names, ids). */
static int json_copy_str(json_parser_t *p, const unsigned char *src, size_t n, sg_str_t *out)
{
    char *buf;

    if (p->copy == NULL) {
        size_t len = (size_t)(p->end - p->start);

        if ((p->copy = sg_pool_alloc(p->pool, len)) == NULL)
            return SG_ENOMEM;
        memcpy(p->copy, p->start, len);
    }
    buf = p->copy + (src - p->start);
    buf[n] = '\0'; /* the closing quote's byte in the copy */
    out->p = buf;
    out->n = n;
    return SG_OK;
}

/*
 * The rest of a string whose scan stopped at s, on a byte that is not sg_json_plain (an
 * escape, a control, a quote or a non-ASCII byte): everything that does not need decoding
 * is checked here; only strings with escapes get the second, decoding pass, the others are
 * copied as they are. Apart from json_string() so that the common plain string does not
 * pay for this path's registers.
 */
static __attribute__((noinline)) int json_string_special(json_parser_t *p,
                                                         const unsigned char *s,
                                                         sg_str_t *out, int *plain)
{
    const unsigned char *open = p->s, *end = p->end;
    int escaped = 0;
    size_t n;
    uint32_t cp;

    for (;;) {
        unsigned char c;

        if ((s = sg_json_plain_run(s, end)) == end)
            return json_fail(p, open, "unterminated string");
        c = *s;
        if (c == '"')
            break;
        if (c == '\\') {
            escaped = 1;
            if (end - s < 2)
                return json_fail(p, open, "unterminated string");
            if (s[1] == 'u') {
                unsigned ignored;

                if (end - s < 6 || json_hex4(s + 2, &ignored) != 0)
                    return json_fail(p, s, "invalid \\u escape");
                s += 6;
                continue;
            }
            if (strchr("\"\\/bfnrt", s[1]) == NULL || s[1] == '\0')
                return json_fail(p, s, "invalid escape");
            s += 2;
            continue;
        }
        if (c < 0x20)
            return json_fail(p, s, "control character in string");
        if (c < 0x80) {
            s++;
            continue;
        }
        /* RFC 3629 section 4: no overlong forms, surrogates or code points above U+10FFFF. */
        if ((n = sg_utf8_char(s, (size_t)(end - s), &cp)) == 0)
            return json_fail(p, s, "invalid UTF-8");
        s += n;
    }
    p->s = s + 1;
    *plain = 0; /* the scan left sg_json_plain before the closing quote */
    if (escaped)
        return json_decode(p, open + 1, s, out);
    return json_copy_str(p, open + 1, (size_t)(s - (open + 1)), out);
}

/* String at p->s (the opening quote). Plain: the decoded bytes are the source bytes and
 * all sg_json_plain, so writing them back is a copy. */
static int json_string(json_parser_t *p, sg_str_t *out, int *plain)
{
    const unsigned char *open = p->s, *s = sg_json_plain_run(open + 1, p->end);

    if (s == p->end || *s != '"')
        return json_string_special(p, s, out, plain);
    p->s = s + 1;
    *plain = 1;
    return json_copy_str(p, open + 1, (size_t)(s - (open + 1)), out);
}

static const unsigned char *json_digits(const unsigned char *s, const unsigned char *end)
{
    while (s < end && *s >= '0' && *s <= '9')
        s++;
    return s;
}

/* Number at p->s: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, kept as text. */
static int json_number(json_parser_t *p, sg_str_t *out)
{
    const unsigned char *s = p->s, *end = p->end, *q = s, *d;
    char *buf;

    if (*q == '-')
        q++;
    if (q == end || *q < '0' || *q > '9')
        return json_fail(p, q, "invalid number");
    if (*q == '0') {
        q++;
        if (q < end && *q >= '0' && *q <= '9')
            return json_fail(p, q - 1, "leading zero in number");
    } else {
        q = json_digits(q, end);
    }
    if (q < end && *q == '.') {
        if ((d = json_digits(q + 1, end)) == q + 1)
            return json_fail(p, q, "invalid number");
        q = d;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if ((d = json_digits(q, end)) == q)
            return json_fail(p, q, "invalid number");
        q = d;
    }
    if ((size_t)(q - s) > p->max_number)
        return json_fail(p, s, "number too long");
    if ((buf = json_bytes(p, (size_t)(q - s))) == NULL)
        return SG_ENOMEM;
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = '\0';
    out->p = buf;
    out->n = (size_t)(q - s);
    p->s = q;
    return SG_OK;
}

/* ---- duplicate member names ---- */

const char sg_json_why_duplicate[] = "duplicate member name";

static int json_name_cmp(const sg_json_t *a, const sg_json_t *b)
{
    /* Length first: cheaper, and any total order will do for finding equal pairs. */
    if (a->name.n != b->name.n)
        return a->name.n < b->name.n ? -1 : 1;
    return memcmp(a->name.p, b->name.p, a->name.n);
}

static void json_sift_down(sg_json_t **v, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        sg_json_t *t;

        if (child >= n)
            return;
        if (child + 1 < n && json_name_cmp(v[child], v[child + 1]) < 0)
            child++;
        if (json_name_cmp(v[root], v[child]) >= 0)
            return;
        t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

/* 1 when two members of v[0, n) share a name. v is scratch: it gets reordered. */
static int json_has_duplicate(sg_json_t **v, size_t n)
{
    if (n <= 8) {
        /* The common case (every object of the stop-test body): no sorting needed. */
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (json_name_cmp(v[i], v[j]) == 0)
                    return 1;
        return 0;
    }
    for (size_t i = n / 2; i-- > 0;)
        json_sift_down(v, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        sg_json_t *t = v[0];

        v[0] = v[end];
        v[end] = t;
        json_sift_down(v, 0, end);
    }
    for (size_t i = 1; i < n; i++)
        if (json_name_cmp(v[i - 1], v[i]) == 0)
            return 1;
    return 0;
}

/* ---- the state machine ---- */

/* Closes the innermost container (p->s is just past its bracket) into *done. */
static int json_close(json_parser_t *p, sg_json_t **done)
{
    json_frame_t *f = &p->frames[--p->nframes];
    sg_json_t *c = f->node;
    size_t n = p->nstack - f->base;

    if (n > 0) {
        if ((c->kids = sg_pool_alloc(p->pool, n * sizeof(*c->kids))) == NULL)
            return SG_ENOMEM;
        memcpy(c->kids, p->stack + f->base, n * sizeof(*c->kids));
        c->nkids = n;
        if (c->type == SG_JSON_OBJECT && json_has_duplicate(p->stack + f->base, n))
            return json_fail(p, p->s - 1, sg_json_why_duplicate);
    }
    p->nstack = f->base;
    *done = c;
    return SG_OK;
}

/* Member name and colon, p->s at the name's opening quote (whitespace skipped). */
static int json_member_name(json_parser_t *p)
{
    int rv;

    if (p->s == p->end)
        return json_fail(p, p->s, "unexpected end of input");
    if (*p->s != '"')
        return json_fail(p, p->s, "expected a member name");
    if ((rv = json_string(p, &p->name, &p->name_plain)) != SG_OK)
        return rv;
    json_skip_ws(p);
    if (p->s == p->end)
        return json_fail(p, p->s, "unexpected end of input");
    if (*p->s != ':')
        return json_fail(p, p->s, "expected ':'");
    p->s++;
    return SG_OK;
}

/*
 * Opens a container at p->s. Sets *done when it closes at once ("[]", "{}"),
 * else leaves it open with p->s where its first value (or member name) starts.
 */
static int json_open(json_parser_t *p, sg_json_type_t type, sg_json_t **done)
{
    char close = type == SG_JSON_OBJECT ? '}' : ']';
    sg_json_t *c;

    if (p->nframes == p->max_depth)
        return json_fail(p, p->s, "nesting too deep");
    if (p->nframes == p->cap_frames) {
        json_frame_t *n = json_grow(p->pool, p->frames, sizeof(*n), p->nframes, &p->cap_frames,
                                    SG_MIN(p->max_depth, 8));

        if (n == NULL)
            return SG_ENOMEM;
        p->frames = n;
    }
    if ((c = json_node_new(p, type)) == NULL)
        return SG_ENOMEM;
    p->frames[p->nframes].node = c;
    p->frames[p->nframes].base = p->nstack;
    p->nframes++;
    p->s++;
    json_skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        return json_close(p, done);
    }
    *done = NULL;
    return type == SG_JSON_OBJECT ? json_member_name(p) : SG_OK;
}

static int json_literal(json_parser_t *p, const char *word, size_t n)
{
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n) != 0)
        return json_fail(p, p->s, "invalid literal");
    p->s += n;
    return SG_OK;
}

/*
 * One value at p->s (whitespace skipped). *done is the finished value, or NULL
 * when a container was opened and its contents come next.
 */
static int json_value(json_parser_t *p, sg_json_t **done)
{
    sg_json_type_t type;
    sg_str_t text = {NULL, 0};
    int rv, plain = 0;

    if (p->s == p->end)
        return json_fail(p, p->s, "unexpected end of input");
    if (p->values_left-- == 0)
        return json_fail(p, p->s, "too many values");
    switch (*p->s) {
    case '{':
        return json_open(p, SG_JSON_OBJECT, done);
    case '[':
        return json_open(p, SG_JSON_ARRAY, done);
    case '"':
        type = SG_JSON_STRING;
        rv = json_string(p, &text, &plain);
        break;
    case 't':
        type = SG_JSON_TRUE;
        rv = json_literal(p, "true", 4);
        break;
    case 'f':
        type = SG_JSON_FALSE;
        rv = json_literal(p, "false", 5);
        break;
    case 'n':
        type = SG_JSON_NULL;
        rv = json_literal(p, "null", 4);
        break;
    default:
        if (*p->s != '-' && (*p->s < '0' || *p->s > '9'))
            return json_fail(p, p->s, "unexpected character");
        type = SG_JSON_NUMBER;
        rv = json_number(p, &text);
        break;
    }
    if (rv != SG_OK)
        return rv;
    if ((*done = json_node_new(p, type)) == NULL)
        return SG_ENOMEM;
    (*done)->str = text;
    (*done)->str_plain = (unsigned char)plain;
    return SG_OK;
}

/*
 * A value just finished inside the innermost container: store it, then read the
 * separator. Sets *done when the container closed too (the caller loops on it),
 * else leaves p->s at the next value.
 */
static int json_after_value(json_parser_t *p, sg_json_t *v, sg_json_t **done)
{
    json_frame_t *f = &p->frames[p->nframes - 1];
    int obj = f->node->type == SG_JSON_OBJECT;
    int rv;

    if ((rv = json_push_value(p, v)) != SG_OK)
        return rv;
    json_skip_ws(p);
    *done = NULL;
    if (p->s == p->end)
        return json_fail(p, p->s, "unexpected end of input");
    if (*p->s == ',') {
        p->s++;
        json_skip_ws(p);
        return obj ? json_member_name(p) : SG_OK;
    }
    if (*p->s == (obj ? '}' : ']')) {
        p->s++;
        return json_close(p, done);
    }
    return json_fail(p, p->s, obj ? "expected ',' or '}'" : "expected ',' or ']'");
}

static void json_parser_init(json_parser_t *p, sg_pool_t *pool, const char *buf, size_t len,
                             const sg_json_limits_t *lim, sg_json_err_t *err)
{
    /* The frames and the value stack start empty and are grown from the pool on first
     * use, so a scalar costs nothing extra. */
    memset(p, 0, sizeof(*p));
    p->pool = pool;
    p->start = p->s = (const unsigned char *)buf;
    p->end = p->start + len;
    p->max_depth = lim->max_depth;
    p->values_left = lim->max_values ? lim->max_values : SIZE_MAX;
    p->max_number = lim->max_number_len ? lim->max_number_len : SIZE_MAX;
    p->nodes_next = JSON_NODES_MIN;
    p->bytes_next = JSON_BYTES_MIN;
    p->err = err;
}

int sg_json_parse(sg_pool_t *pool, const char *buf, size_t len, const sg_json_limits_t *lim,
                  sg_json_t **out, sg_json_err_t *err)
{
    json_parser_t p;
    sg_json_t *v;
    int rv;

    if (buf == NULL)
        buf = ""; /* an empty body comes as (NULL, 0), and NULL + 0 is undefined */
    json_parser_init(&p, pool, buf, len, lim, err);
    err->why = NULL;
    err->off = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        return json_fail(&p, p.s, "byte order mark"); /* RFC 8259 section 8.1 */
    json_skip_ws(&p);
    if (p.s == p.end)
        return json_fail(&p, p.s, "empty input");
    if ((rv = json_value(&p, &v)) != SG_OK)
        return rv;
    for (;;) {
        /* Either v is a finished value, or a container was opened and p.s is at its
         * first value; each turn consumes input, so the loop ends. */
        while (v == NULL) {
            json_skip_ws(&p);
            if ((rv = json_value(&p, &v)) != SG_OK)
                return rv;
        }
        if (p.nframes == 0)
            break;
        if ((rv = json_after_value(&p, v, &v)) != SG_OK)
            return rv;
    }
    json_skip_ws(&p);
    if (p.s != p.end)
        return json_fail(&p, p.s, "unexpected bytes after the value");
    *out = v;
    return SG_OK;
}

/* ---- serializer ----
 *
 * Two walks: the first adds up the exact output size, so the buffer is grown
 * (or refused with SG_ETOOBIG) once; the second writes through a plain pointer.
 * Appending token by token through sg_buf_append cost more than parsing did.
 */

/* Strings go through the gateway's one escaper (base/str.h): the characters it never
 * writes raw (controls, U+2028/U+2029, bidi controls) are escaped here too, so what vCenter
 * receives and may log is as safe as our own logs, and is the same JSON value (RFC 8259
 * section 7 lets any character be escaped). Other strings get only '"', '\\', C0 and DEL
 * escaped, so ordinary text is written exactly as it was parsed. SG_ESC_RAW_INVALID: the
 * input is parser output (valid UTF-8); a caller that hands other bytes gets them back raw,
 * for its strict re-parse to refuse (filters/handle.c), never a string silently changed to
 * U+FFFD. */
size_t sg_json_string_size(const char *p, size_t n)
{
    return sg_json_str_size(p, n, SG_ESC_RAW_INVALID);
}

char *sg_json_put_string(char *o, const char *p, size_t n)
{
    return sg_json_str_put(o, p, n, SG_ESC_RAW_INVALID);
}

/* A parsed string: a plain one (nothing to escape) is copied between its quotes. */
static char *json_put_str(char *o, const char *p, size_t n, int plain)
{
    if (!plain)
        return sg_json_put_string(o, p, n);
    *o++ = '"';
    memcpy(o, p, n);
    o[n] = '"';
    return o + n + 1;
}

size_t sg_json_name_size(const sg_json_t *k)
{
    return k->name_plain ? k->name.n + 2 : sg_json_string_size(k->name.p, k->name.n);
}

char *sg_json_put_name(char *o, const sg_json_t *k)
{
    return json_put_str(o, k->name.p, k->name.n, k->name_plain);
}

size_t sg_json_size(const sg_json_t *v)
{
    size_t size;

    switch (v->type) {
    case SG_JSON_NULL:
    case SG_JSON_TRUE: return 4;
    case SG_JSON_FALSE: return 5;
    case SG_JSON_NUMBER: return v->str.n;
    case SG_JSON_STRING: return v->str_plain ? v->str.n + 2 : sg_json_string_size(v->str.p, v->str.n);
    case SG_JSON_ARRAY:
    case SG_JSON_OBJECT: break;
    }
    /* Brackets and the commas between kids; for objects each name and its colon. */
    size = 2 + (v->nkids ? v->nkids - 1 : 0);
    for (size_t i = 0; i < v->nkids; i++) {
        const sg_json_t *k = v->kids[i];

        if (v->type == SG_JSON_OBJECT)
            size += sg_json_name_size(k) + 1;
        size += sg_json_size(k);
    }
    return size;
}

char *sg_json_put(char *o, const sg_json_t *v)
{
    int obj = v->type == SG_JSON_OBJECT;

    switch (v->type) {
    case SG_JSON_NULL: memcpy(o, "null", 4); return o + 4;
    case SG_JSON_TRUE: memcpy(o, "true", 4); return o + 4;
    case SG_JSON_FALSE: memcpy(o, "false", 5); return o + 5;
    case SG_JSON_NUMBER: memcpy(o, v->str.p, v->str.n); return o + v->str.n;
    case SG_JSON_STRING: return json_put_str(o, v->str.p, v->str.n, v->str_plain);
    case SG_JSON_ARRAY:
    case SG_JSON_OBJECT: break;
    }
    *o++ = obj ? '{' : '[';
    for (size_t i = 0; i < v->nkids; i++) {
        const sg_json_t *k = v->kids[i];

        if (i > 0)
            *o++ = ',';
        if (obj) {
            o = sg_json_put_name(o, k);
            *o++ = ':';
        }
        o = sg_json_put(o, k);
    }
    *o++ = obj ? '}' : ']';
    return o;
}

int sg_json_write_string(sg_buf_t *out, const char *p, size_t n)
{
    size_t size = sg_json_string_size(p, n);
    int rv;

    if ((rv = sg_buf_reserve(out, size)) != SG_OK)
        return rv;
    sg_json_put_string(out->data + out->len, p, n);
    out->len += size;
    return SG_OK;
}

int sg_json_serialize(const sg_json_t *v, sg_buf_t *out)
{
    size_t size = sg_json_size(v);
    int rv;

    if ((rv = sg_buf_reserve(out, size)) != SG_OK)
        return rv;
    sg_json_put(out->data + out->len, v);
    out->len += size;
    return SG_OK;
}

/* ---- lookups ---- */

const sg_json_t *sg_json_get(const sg_json_t *obj, const char *name, size_t name_len)
{
    if (obj == NULL || obj->type != SG_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->nkids; i++) {
        const sg_json_t *k = obj->kids[i];

        if (k->name.n == name_len && memcmp(k->name.p, name, name_len) == 0)
            return k;
    }
    return NULL;
}

int sg_json_is_string(const sg_json_t *v, const char *s, size_t n)
{
    return v != NULL && v->type == SG_JSON_STRING && v->str.n == n && memcmp(v->str.p, s, n) == 0;
}
