/*
 * base/b64.h - base64url without padding (RFC 4648 section 5, RFC 7515 section 2): JWT
 * segments (policy/jwt.c), composite task handles (filters/handle.c) and checkpoint
 * signatures (audit/chain.c).
 *
 * The decoder is strict, because every user compares or authenticates what it decodes: the
 * alphabet only (no '=', '+', '/', whitespace or NUL), no impossible length (n % 4 == 1),
 * and the unused low bits of the last character zero, so that each byte string has exactly
 * one accepted spelling.
 */
#ifndef SG_BASE_B64_H
#define SG_BASE_B64_H

#include <stddef.h>

/* Characters of the encoding of n bytes. */
static inline size_t sg_b64url_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }
/* Bytes that n characters decode to at most: the room sg_b64url_decode needs. */
static inline size_t sg_b64url_decoded_max(size_t n) { return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0); }

/* Writes the encoding of p[0, n) at o (sg_b64url_len(n) bytes, no NUL); returns the end. */
char *sg_b64url_put(char *o, const unsigned char *p, size_t n);
/* Decodes s[0, n) into out (room for sg_b64url_decoded_max(n) bytes). Returns the decoded
 * length, or -1 when s is not the one spelling of some bytes (see above). */
long sg_b64url_decode(unsigned char *out, const char *s, size_t n);
/* 1 when sg_b64url_decode would accept s[0, n), else 0; decodes nothing. */
int sg_b64url_valid(const char *s, size_t n);

#endif
