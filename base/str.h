/*
 * base/str.h - strings: sg_str_t, comparisons, the one UTF-8 decoder and the one escaper.
 */
#ifndef SG_BASE_STR_H
#define SG_BASE_STR_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* A byte string that is not NUL-terminated: p[0, n). */
typedef struct {
    const char *p;
    size_t n;
} sg_str_t;

/* 1 when a[0, an) and b[0, bn) are equal ignoring ASCII case, else 0. */
int sg_strcaseeq(const char *a, size_t an, const char *b, size_t bn);

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
 * Each is written as \u followed by four hex digits (lowercase hex), in JSON and in the error log alike. Any other
 * valid UTF-8, non-ASCII included, is copied as it is, so ordinary text stays readable.
 *
 * Bytes that are not UTF-8 (RFC 3629: stray continuation bytes, overlong forms, surrogates,
 * code points above U+10FFFF, sequences cut short) become \ufffd, one per byte: the
 * replacement character says "a byte was here that was not text", where \u00XX of the byte's
 * value would forge a different, valid character (0xFF is not U+00FF) and a raw byte would
 * make the line unreadable to a strict parser. The one exception is SG_ESC_RAW_INVALID,
 * for the JSON serializer only (base/json.c). */

/* Length of the UTF-8 character at p[0, avail) (avail > 0): 1..4, with its code point in
 * *cp; 0 when the bytes there are not a well-formed UTF-8 sequence (RFC 3629 section 4). */
size_t sg_utf8_char(const unsigned char *p, size_t avail, uint32_t *cp);
/* 1 when code point cp is one of the characters listed above, never written raw. */
int sg_cp_unsafe(uint32_t cp);

/* Flags of sg_json_str_size/_put. SG_ESC_RAW_INVALID: bytes that are not UTF-8 are copied
 * as they are instead of becoming \ufffd. Only for writers whose input a strict parser has
 * already checked (base/json.c's serializer), so that one that was handed other bytes
 * writes JSON a strict reader refuses (filters/handle.c re-parses what it signs) instead of
 * a silently different string. */
#define SG_ESC_RAW_INVALID 1u

/* 1 for the bytes a JSON string carries as they are, in the source and in what the escaper
 * writes: printable ASCII except '"' and '\\'. Everything else (controls, DEL, the two
 * specials, every byte of a multi-byte character) takes the careful path. */
extern const unsigned char sg_json_plain[256];

/* The first byte in [p, e) that is not plain: the scanners' inner loop, so that the common
 * run of plain ASCII costs a table load and a compare per byte. */
static inline const unsigned char *sg_json_plain_run(const unsigned char *p,
                                                     const unsigned char *e)
{
    while (e - p >= 4 && sg_json_plain[p[0]] & sg_json_plain[p[1]] & sg_json_plain[p[2]] &
                             sg_json_plain[p[3]])
        p += 4;
    while (p < e && sg_json_plain[*p])
        p++;
    return p;
}

/* s[0, n) as a quoted JSON string (RFC 8259 section 7): '"' and '\\' as \" and \\, the
 * characters above as \u followed by four hex digits, the rest as it is. sg_json_str_size is the exact number of
 * bytes sg_json_str_put stores at o (the caller provides the room); _put returns the end.
 * s may be NULL when n is 0. */
size_t sg_json_str_size(const char *s, size_t n, unsigned flags);
char *sg_json_str_put(char *o, const char *s, size_t n, unsigned flags);

/* s[0, n) escaped for the text of an error log line: the characters above as \u followed by four hex digits and
 * '\\' as \\ (so that an escape in the log is never text a client wrote), invalid UTF-8
 * as \ufffd, everything else, quotes included, as it is. Stores at most room bytes at o and
 * stops before a character whose escape would not fit: never half a character or half an
 * escape. Returns the bytes stored. */
size_t sg_log_escape(char *o, size_t room, const char *s, size_t n);

/* Append s[0, n) as a JSON string escaped for a log (sg_json_str_put above, flags 0); NULL
 * appends null. Returns SG_OK, SG_ENOMEM or SG_ETOOBIG; b unchanged on failure. */
int sg_buf_json_str(sg_buf_t *b, const char *s, size_t n);
/* The same for a NUL-terminated string or NULL. */
int sg_buf_json_cstr(sg_buf_t *b, const char *s);

/* An error message for a caller's buffer: fmt into err (truncated to errlen; nothing when err
 * is NULL or errlen 0). Returns SG_ERR, so that a check can end with "return sg_errf(...)". */
__attribute__((format(printf, 3, 4))) int sg_errf(char *err, size_t errlen, const char *fmt,
                                                  ...);

#endif
