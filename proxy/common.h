/*
 * proxy/common.h - error codes, logging, bounded buffers and per-request pools.
 *
 * Everything on the data path allocates from an sg_pool_t (one per connection,
 * one per request) or appends to an sg_buf_t whose maximum is set at init from
 * a limits.* key (curl dynbuf). Functions return 0 or a negative SG_E* code.
 */
#ifndef SG_COMMON_H
#define SG_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "conf/conf.h"

enum {
    SG_OK = 0,
    SG_ERR = -1,      /* generic failure; details logged where it happened */
    SG_ENOMEM = -2,   /* allocation failed */
    SG_ETOOBIG = -3,  /* a bounded buffer would exceed its maximum */
    SG_EAGAIN = -4,   /* would block; try again when the socket is ready */
    SG_ECLOSED = -5,  /* peer closed the connection */
    SG_EPROTO = -6,   /* peer violated the protocol */
    SG_ETIMEDOUT = -7 /* a deadline passed */
};

#define SG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- logging (stderr, one line per event; never format a secret) ----
 *
 * sg__log passes the formatted message through sg_log_escape (below), so the strings a
 * message quotes (paths, reasons naming a client's ids or a token's subject) can never
 * split the line, colour the terminal or reorder what a viewer shows. */

extern sg_log_level_t sg_log_level;

#define sg_log(lvl, ...)                                                                         \
    do {                                                                                         \
        if ((lvl) <= sg_log_level)                                                               \
            sg__log((lvl), __VA_ARGS__);                                                         \
    } while (0)
void sg__log(sg_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- sg_buf_t: growable byte buffer with a hard maximum ---- */

typedef struct {
    char *data;
    size_t off; /* bytes already consumed from the front */
    size_t len; /* bytes in use, including the consumed prefix */
    size_t cap;
    size_t max; /* sg_buf_append fails with SG_ETOOBIG beyond this */
} sg_buf_t;

void sg_buf_init(sg_buf_t *b, size_t max);
void sg_buf_dispose(sg_buf_t *b);
int sg_buf_reserve(sg_buf_t *b, size_t extra);
int sg_buf_append(sg_buf_t *b, const void *p, size_t n);
/* Append a string literal (its length is taken at compile time). */
#define sg_buf_lit(b, lit) sg_buf_append((b), "" lit, sizeof(lit) - 1)
int sg_buf_appendf(sg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s[0, n) as a JSON string escaped for a log (sg_json_str_put below, flags 0); NULL
 * appends null. Returns SG_OK, SG_ENOMEM or SG_ETOOBIG; b unchanged on failure. */
int sg_buf_json_str(sg_buf_t *b, const char *s, size_t n);
/* The same for a NUL-terminated string or NULL. */
int sg_buf_json_cstr(sg_buf_t *b, const char *s);
/* Unread bytes. */
static inline size_t sg_buf_avail(const sg_buf_t *b) { return b->len - b->off; }
/* An empty buffer that never allocated has no head: NULL, not NULL + 0 (undefined in C,
 * and what an empty request body would otherwise hand to every parser). */
static inline char *sg_buf_head(const sg_buf_t *b)
{
    return b->data != NULL ? b->data + b->off : NULL;
}
/* Mark n unread bytes as consumed; resets to empty when everything is consumed. */
void sg_buf_consume(sg_buf_t *b, size_t n);
static inline void sg_buf_reset(sg_buf_t *b) { b->off = b->len = 0; }

/* ---- the one escaper for strings from clients and tokens ----
 *
 * Every string a client or a token chose (paths, methods, subjects, tenants, group ids,
 * reasons quoting them, certificate subjects) reaches the audit log, the access log, the
 * error log, a fault body and the re-serialised body sent upstream through this one code.
 * The characters it never writes raw are those that let a string split a line, rewrite
 * what a terminal shows, or reorder text in a log viewer:
 *   - C0 controls U+0000..U+001F and DEL U+007F (line breaks, ANSI escape sequences);
 *   - C1 controls U+0080..U+009F (NEL U+0085 is a line break to some readers, CSI U+009B
 *     starts an escape sequence on some terminals);
 *   - U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (line breaks in JavaScript before
 *     ES2019 and in many viewers);
 *   - every character with the Unicode property Bidi_Control (UAX #9): U+061C, U+200E,
 *     U+200F, U+202A..U+202E and U+2066..U+2069, which reorder what is displayed around them
 *     ("Trojan Source", CVE-2021-42574): a log line must read in the order it was written.
 * Each is written as \uXXXX (lowercase hex), in JSON and in the error log alike. Any other
 * valid UTF-8, non-ASCII included, is copied as it is, so ordinary text stays readable.
 *
 * Bytes that are not UTF-8 (RFC 3629: stray continuation bytes, overlong forms, surrogates,
 * code points above U+10FFFF, sequences cut short) become \ufffd, one per byte: the
 * replacement character says "a byte was here that was not text", where \u00XX of the byte's
 * value would forge a different, valid character (0xFF is not U+00FF) and a raw byte would
 * make the line unreadable to a strict parser. The one exception is SG_ESC_RAW_INVALID,
 * for the JSON serializer only (filters/json.c). */

/* Length of the UTF-8 character at p[0, avail) (avail > 0): 1..4, with its code point in
 * *cp; 0 when the bytes there are not a well-formed UTF-8 sequence (RFC 3629 section 4). */
size_t sg_utf8_char(const unsigned char *p, size_t avail, uint32_t *cp);
/* 1 when code point cp is one of the characters listed above, never written raw. */
int sg_cp_unsafe(uint32_t cp);

/* Flags of sg_json_str_size/_put. SG_ESC_RAW_INVALID: bytes that are not UTF-8 are copied
 * as they are instead of becoming \ufffd. Only for writers whose input a strict parser has
 * already checked (filters/json.c's serializer), so that one that was handed other bytes
 * writes JSON a strict reader refuses (filters/handle.c re-parses what it signs) instead of
 * a silently different string. */
#define SG_ESC_RAW_INVALID 1u

/* s[0, n) as a quoted JSON string (RFC 8259 section 7): '"' and '\\' as \" and \\, the
 * characters above as \uXXXX, the rest as it is. sg_json_str_size is the exact number of
 * bytes sg_json_str_put stores at o (the caller provides the room); _put returns the end.
 * s may be NULL when n is 0. */
size_t sg_json_str_size(const char *s, size_t n, unsigned flags);
char *sg_json_str_put(char *o, const char *s, size_t n, unsigned flags);

/* s[0, n) escaped for the text of an error log line: the characters above as \uXXXX and
 * '\\' as \\ (so that an escape in the log is never text a client wrote), invalid UTF-8
 * as \ufffd, everything else, quotes included, as it is. Stores at most room bytes at o and
 * stops before a character whose escape would not fit: never half a character or half an
 * escape. Returns the bytes stored. */
size_t sg_log_escape(char *o, size_t room, const char *s, size_t n);

/* ---- sg_pool_t: bump allocator with cleanups, freed all at once ---- */

typedef struct sg_pool_chunk_s sg_pool_chunk_t;
typedef struct sg_pool_cleanup_s sg_pool_cleanup_t;
typedef void (*sg_pool_cleanup_cb)(void *data);

typedef struct {
    sg_pool_chunk_t *chunks;
    sg_pool_cleanup_t *cleanups;
    size_t chunk_size;
} sg_pool_t;

void sg_pool_init(sg_pool_t *p, size_t chunk_size);
/* Runs cleanups (last added first) and frees every chunk; the pool can be reused. */
void sg_pool_dispose(sg_pool_t *p);
void *sg_pool_alloc(sg_pool_t *p, size_t n);     /* 16-byte aligned; NULL on ENOMEM */
void *sg_pool_calloc(sg_pool_t *p, size_t n);
char *sg_pool_strndup(sg_pool_t *p, const char *s, size_t n); /* NUL-terminated copy */
int sg_pool_cleanup_add(sg_pool_t *p, sg_pool_cleanup_cb cb, void *data);

/* ---- small helpers ---- */

typedef struct {
    const char *p;
    size_t n;
} sg_str_t;

int sg_strcaseeq(const char *a, size_t an, const char *b, size_t bn);
/* The wall clock as RFC 3339 UTC with microseconds ("2026-11-25T04:00:00.123456Z"), the
 * audit log's time format; out needs SG_TIME_LEN bytes. */
#define SG_TIME_LEN 32
void sg_time_rfc3339(char out[SG_TIME_LEN]);
/* Monotonic milliseconds. */
uint64_t sg_now_ms(void);
int sg_set_nonblock(int fd);

#endif
