/*
 * base/json.h - a small strict JSON (RFC 8259) parser and compact serializer: the one
 * reader of every JSON text the gateway parses (request bodies, JWT headers and claims,
 * upstream task answers, composite task handles, audit records).
 *
 * Everything is parsed here rather than with cJSON because cJSON keeps
 * duplicate keys, matches keys case-insensitively, ignores trailing bytes, cuts
 * strings at \u0000 and accepts invalid UTF-8 (docs/design.md "Performance and
 * robustness"); any of those lets a body mean one thing to smsguard and another
 * to vCenter. This parser refuses all of them, in one pass, allocating only from
 * the caller's sg_pool_t, without recursion, and in O(n log n) at worst (the
 * duplicate-name check sorts large objects; everything else is linear).
 *
 * The tree is read-only once built: sg_json_serialize() writes it back compactly
 * with the members in their original order. What the values mean is left to the
 * callers (filters/stopreq.c for the stop-test body, policy/jwt.c for tokens).
 */
#ifndef SG_BASE_JSON_H
#define SG_BASE_JSON_H

#include "base/buf.h"
#include "base/defs.h"
#include "base/pool.h"
#include "base/str.h"

typedef enum {
    SG_JSON_NULL = 0,
    SG_JSON_FALSE,
    SG_JSON_TRUE,
    SG_JSON_NUMBER, /* str: the source text, valid per the RFC 8259 grammar */
    SG_JSON_STRING, /* str: the decoded UTF-8 bytes (never contain NUL) */
    SG_JSON_ARRAY,  /* kids: the items, in order */
    SG_JSON_OBJECT  /* kids: the members, in order; each kid's name is its member name */
} sg_json_type_t;

typedef struct sg_json_s sg_json_t;

struct sg_json_s {
    sg_json_type_t type;
    /* 1 when name / str (a STRING's) holds only sg_json_plain bytes, as the parser found
     * them: the serializer copies those without running the escaper. 0 is always safe. */
    unsigned char name_plain, str_plain;
    sg_str_t name; /* member name (decoded, NUL-terminated) when the parent is an object */
    union {
        sg_str_t str; /* NUMBER and STRING; NUL-terminated */
        struct {
            sg_json_t **kids; /* ARRAY and OBJECT; NULL when empty */
            size_t nkids;
        };
    };
};

typedef struct {
    unsigned max_depth; /* nested arrays/objects allowed; the top-level container is depth 1 */
    size_t max_values;  /* values in the whole document (0 = bounded by the input only); caps
                         * the tree's memory for bodies such as [0,0,0,...] */
    size_t max_number_len; /* characters in one number's text (0 = unbounded): a caller that
                            * reads numbers as doubles refuses the ones two readers of the
                            * same signed text could round differently (RFC 8259 section 6) */
} sg_json_limits_t;

typedef struct {
    const char *why; /* static text, never client bytes */
    size_t off;      /* byte offset in the input where the problem was found */
} sg_json_err_t;

/* err.why of a duplicate member name, for callers that report it apart from other faults
 * (a JWT's "jwt duplicate member"): compare the pointers. */
extern const char sg_json_why_duplicate[];

/*
 * Parses buf[0, len) as exactly one JSON value followed by optional whitespace.
 * The tree and every string in it live in `pool`; buf may be released afterwards.
 *
 * Refused, with err set: a UTF-8 byte order mark, invalid UTF-8 anywhere (overlong
 * forms, UTF-16 surrogates, code points above U+10FFFF), raw control characters
 * in strings, \u0000, unpaired \u surrogates, invalid escapes, leading zeros and
 * other number-grammar errors, NaN/Infinity, comments, trailing commas, a
 * duplicate member name in any object (exact bytes after unescaping; err.off is
 * then the offset of the object's closing brace), nesting deeper than
 * lim->max_depth, more than lim->max_values values, a number longer than
 * lim->max_number_len characters, empty input and any
 * non-whitespace byte after the value.
 *
 * Returns SG_OK (*out set), SG_EPROTO (the input is not acceptable JSON; err set)
 * or SG_ENOMEM (the pool failed; what was allocated stays in the pool).
 */
int sg_json_parse(sg_pool_t *pool, const char *buf, size_t len, const sg_json_limits_t *lim,
                  sg_json_t **out, sg_json_err_t *err);

/*
 * Appends v compactly to out: members in their order, strings re-escaped by the
 * gateway's one escaper (base/str.h sg_json_str_put: '"' and '\\' as \" and \\,
 * C0, DEL, C1, U+2028, U+2029 and the bidi controls as \u followed by four hex digits, other UTF-8 raw),
 * numbers as their source text. Measures first and grows out once. Recurses once
 * per level, so as deep as the parser allowed. Returns SG_OK, SG_ENOMEM or
 * SG_ETOOBIG (out's maximum); on failure out holds what it held before.
 */
int sg_json_serialize(const sg_json_t *v, sg_buf_t *out);

/* Appends p[0, n) as a quoted JSON string, escaped as above (p should be valid
 * UTF-8: bytes that are not are copied raw, so a strict re-parse refuses them).
 * Returns SG_OK, SG_ENOMEM or SG_ETOOBIG; out unchanged on failure. */
int sg_json_write_string(sg_buf_t *out, const char *p, size_t n);

/* The building blocks, for callers that assemble one output from several trees
 * and want a single reservation (filters/stopreq.c): the exact number of bytes
 * sg_json_serialize(v) / sg_json_write_string(p, n) would append, and writers that
 * store exactly that many bytes at o (the caller guarantees the room) and return
 * the end. */
size_t sg_json_size(const sg_json_t *v);
char *sg_json_put(char *o, const sg_json_t *v);
size_t sg_json_string_size(const char *p, size_t n);
char *sg_json_put_string(char *o, const char *p, size_t n);
/* The same for the quoted member name of k (a kid of an object), without the colon. */
size_t sg_json_name_size(const sg_json_t *k);
char *sg_json_put_name(char *o, const sg_json_t *k);

/* The member of obj named exactly name (byte comparison), or NULL; NULL too when obj
 * is not an object. Linear in the number of members. */
const sg_json_t *sg_json_get(const sg_json_t *obj, const char *name, size_t name_len);

/* 1 when v is a string whose bytes are exactly s[0, n), else 0. */
int sg_json_is_string(const sg_json_t *v, const char *s, size_t n);

#endif
