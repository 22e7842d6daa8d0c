/*
 * proxy/h1_msg.h - the HTTP/1 message rules both directions share: the client's requests
 * (proxy/h1_server.c) and the upstream's responses (proxy/upstream.c).
 *
 * Debian's http_parser is built without HTTP_PARSER_STRICT: it takes field names with
 * spaces ("Host :"), joins obs-fold lines into one value, takes any two bytes for the CRLF
 * after chunk data and skips anything up to a CR in a chunk extension. What is checked on
 * top of it lives here, once, so that a message refused from a client is refused from the
 * upstream too:
 *   - sg_h1_hdr_t gathers one field from http_parser's name and value callbacks into a
 *     bounded buffer and notices obs-fold; sg_h1_hdr_take() trims and validates the field;
 *   - sg_h1_token_valid() and sg_h1_value_valid(): RFC 9110 5.1, 5.5;
 *   - sg_h1_framing_t counts the fields that frame a message (Content-Length,
 *     Transfer-Encoding, Host) and judges them (RFC 9112 3.2, 6.1, 6.3);
 *   - sg_h1_chunk_t checks chunked framing byte by byte (RFC 9112 7.1) against a limit.
 * Reading the socket, the parser itself, statuses and messages stay with the callers.
 * Nothing here allocates but the accumulator's buffer, which is kept between messages.
 */
#ifndef SG_H1_MSG_H
#define SG_H1_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* One header field as taken from the accumulator: pointers into its buffer. */
typedef struct {
    const char *name, *value;
    size_t nlen, vlen;
} sg_h1_field_t;

/* ---- field syntax ---- */

/* RFC 9110 5.1: a field name is a token (5.6.2), never empty. */
int sg_h1_token_valid(const char *p, size_t n);
/* RFC 9110 5.5: a field value holds no CTL but HTAB: no NUL, CR, LF or DEL. */
int sg_h1_value_valid(const char *p, size_t n);

/* ---- one field from http_parser's callbacks ----
 *
 * http_parser hands a name or a value over in pieces: one per read that splits it, and
 * one per line of an obs-fold value. Pieces of a value that do not end where the caller's
 * input ended are therefore a fold (RFC 9112 5.2), which both directions refuse. */

typedef struct {
    sg_buf_t buf;         /* the field's name, then its value */
    size_t name_len;      /* bytes of buf that are the name */
    const char *exec_end; /* end of the bytes given to http_parser_execute (sg_h1_hdr_input) */
    unsigned in_value : 1,  /* a value piece came: the name is complete */
        val_at_end : 1;     /* the last value piece ended at exec_end */
} sg_h1_hdr_t;

/* max bounds one field (name and value); the buffer grows to it on demand. */
void sg_h1_hdr_init(sg_h1_hdr_t *a, size_t max);
void sg_h1_hdr_dispose(sg_h1_hdr_t *a);
/* Forgets a half-gathered field: at the start of a message. */
void sg_h1_hdr_reset(sg_h1_hdr_t *a);

/* Before each http_parser_execute(p, n): the end of its input (NULL when n is 0). */
static inline void sg_h1_hdr_input(sg_h1_hdr_t *a, const char *end) { a->exec_end = end; }

/* In the name callback: a name piece after a value means the field before it is whole,
 * and must be taken (sg_h1_hdr_take) before the piece is added. */
static inline int sg_h1_hdr_complete(const sg_h1_hdr_t *a) { return a->in_value; }

/* In on_headers_complete: anything gathered is the last field, to be taken. */
static inline int sg_h1_hdr_pending(const sg_h1_hdr_t *a) { return sg_buf_avail(&a->buf) > 0; }

/* A piece of a field name. SG_OK, or SG_ETOOBIG / SG_ENOMEM from the buffer. */
int sg_h1_hdr_name(sg_h1_hdr_t *a, const char *at, size_t n);
/* A piece of a field value. SG_OK; SG_EPROTO with *why set when it continues an obs-fold
 * line; SG_ETOOBIG / SG_ENOMEM from the buffer. */
int sg_h1_hdr_value(sg_h1_hdr_t *a, const char *at, size_t n, const char **why);
/* The field gathered so far, trailing whitespace cut from its value (RFC 9110 5.5), into
 * f. SG_OK, after which the accumulator is empty again and f stays valid until the next
 * piece is added; SG_EPROTO with *why set when the name is not a token or the value holds
 * a CTL. */
int sg_h1_hdr_take(sg_h1_hdr_t *a, sg_h1_field_t *f, const char **why);
/* What sg_h1_hdr_take does to a field, for one that came whole in a single piece of
 * input and is taken from there without gathering (proxy/upstream.c): trailing whitespace
 * cut from f's value; SG_OK, or SG_EPROTO with *why set as above. */
int sg_h1_field_check(sg_h1_field_t *f, const char **why);

/* ---- framing fields ---- */

typedef struct {
    unsigned n_cl, n_te, n_host; /* Content-Length, Transfer-Encoding, Host fields seen */
    unsigned te_not_chunked;      /* Transfer-Encoding fields other than exactly "chunked" */
    unsigned te_then_chunked : 1; /* one of those is "<codings>, chunked" */
} sg_h1_framing_t;

/* What sg_h1_framing_judge finds, in the order it looks. */
enum {
    SG_H1_FRAMING_OK = 0,
    SG_H1_FRAMING_TE_CODING, /* one "<codings>, chunked": framed, but a coding we do not decode */
    SG_H1_FRAMING_TE_BAD,    /* Transfer-Encoding not one "chunked" alone, with Content-Length,
                                or in HTTP/1.0 */
    SG_H1_FRAMING_CL_DUP,    /* Content-Length more than once */
    SG_H1_FRAMING_HOST,      /* an HTTP/1.1 request without exactly one Host */
};

static inline void sg_h1_framing_reset(sg_h1_framing_t *fr) { *fr = (sg_h1_framing_t){0}; }
/* Counts f if it is one of the framing fields. */
void sg_h1_framing_count(sg_h1_framing_t *fr, const sg_h1_field_t *f);
/* The framing the counted fields declare, for a message of HTTP/1.<http_minor>; request:
 * 1 for a request (Host is checked), 0 for a response. One of SG_H1_FRAMING_*. Only a
 * single "chunked" is accepted: any other list is a smuggling vector between two parsers
 * (RFC 9112 6.1, 6.3); one field "<codings>, chunked" is well framed but asks for a coding
 * smsguard does not implement, which a server answers with 501, so it is told apart. */
int sg_h1_framing_judge(const sg_h1_framing_t *fr, int http_minor, int request);

/* ---- chunked framing (RFC 9112 7.1) ----
 *
 * Fed the body bytes in order, from the first byte after the header section (which may be
 * the section's last LF again: a parser paused in on_headers_complete gives it back), up
 * to the end of the trailer section; bytes after that are not looked at. */

typedef struct {
    int state;      /* 0: off; else where in the grammar (h1_msg.c) */
    int digits;     /* significant digits of the chunk size so far */
    uint64_t left;  /* data bytes of the current chunk still to come */
    uint64_t total; /* data bytes of the body so far */
} sg_h1_chunk_t;

/* After the header section of a chunked message. */
void sg_h1_chunk_start(sg_h1_chunk_t *ck);
static inline void sg_h1_chunk_off(sg_h1_chunk_t *ck) { ck->state = 0; }
/* Started for this message (and still so once its body ended). */
static inline int sg_h1_chunk_on(const sg_h1_chunk_t *ck) { return ck->state != 0; }
/* The last CRLF of the body has been seen. */
int sg_h1_chunk_done(const sg_h1_chunk_t *ck);

/* Checks the next n bytes. max: data bytes the whole body may hold. SG_OK; SG_EPROTO with
 * *why set when the framing is not valid; SG_ETOOBIG when a chunk-size line declares more
 * than max less the data before it, or a size of more than 16 significant hex digits:
 * found on the size line, before any of that chunk's data. */
int sg_h1_chunk_check(sg_h1_chunk_t *ck, const char *p, size_t n, uint64_t max,
                      const char **why);

#endif
