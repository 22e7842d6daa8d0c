/*
 * policy/jose.h - the compact JWS pieces (RFC 7515, 7518) shared by the login tokens
 * (jwt.c) and the four-eyes approvals (approval.c): splitting a token into its segments,
 * reading a segment as one strict JSON object, checking a protected header's generic
 * members and choosing its alg, verifying a signature with a configured key, reading a
 * NumericDate. Internal to policy/.
 *
 * The functions return codes, not messages: each caller names its refusals in its own
 * words ("jwt malformed", "approval malformed"), so the logs say which statement failed.
 */
#ifndef SG_POLICY_JOSE_H
#define SG_POLICY_JOSE_H

#include "base/json.h"
#include "policy/policy-int.h"

#define SG_JOSE_JSON_DEPTH 32   /* claims are shallow; the top-level object is level 1 */
#define SG_JOSE_SIG_MAX 1024    /* RSA 8192 bits; larger keys are not configured */
/*
 * Characters in a number. Dates are read as doubles; a longer text has more digits than a
 * double holds, and issuers' libraries round (or cut) those differently from strtod.
 */
#define SG_JOSE_NUMBER_MAX 32

/* The segments of a compact JWS, pointing into the token. */
typedef struct {
    const char *h, *p, *s; /* header, payload, signature (base64url) */
    size_t hn, pn, sn;
    size_t signed_len; /* the signing input: tok[0, signed_len), "header.payload" as received */
} sg_jose_parts_t;

/*
 * Splits tok[0, n) into exactly three non-empty segments (RFC 7515 7.1) whose payload and
 * signature are base64url (the header is checked when decoded). An empty signature is
 * "alg":"none" in disguise. Returns 0, or -1 when the token is malformed.
 */
int sg__jose_split(const char *tok, size_t n, sg_jose_parts_t *out);

/*
 * Decodes segment s[0, n) into buf (room for sg_b64url_decoded_max(n) bytes) and parses it
 * into scratch as exactly one JSON object (RFC 7515 4, RFC 7519 7.2 step 10) with the
 * limits above. Returns SG_OK with *out set; SG_ERR, with *duplicate 1 when the refusal was
 * a repeated member name (RFC 7515 5.2 step 4: a reader keeping one of two equal names may
 * keep the one the signer did not mean); or SG_ENOMEM.
 */
int sg__jose_json(sg_pool_t *scratch, const char *s, size_t n, unsigned char *buf,
                  const sg_json_t **out, int *duplicate);

/* What sg__jose_header() found wrong; callers name each in their own words. */
typedef enum {
    SG_JOSE_HDR_OK = 0,
    SG_JOSE_HDR_CRIT,       /* a "crit" member: we implement no extension */
    SG_JOSE_HDR_KEY,        /* jwk, jku, x5u or x5c: the token would vouch for itself */
    SG_JOSE_HDR_MALFORMED,  /* alg missing or not a string */
    SG_JOSE_HDR_ALG_NONE,   /* "none" in any case */
    SG_JOSE_HDR_ALG_UNKNOWN /* an alg we do not implement */
} sg_jose_hdr_t;

/*
 * Checks a protected header's members that every JWS use shares (RFC 7515 4.1.11, RFC 8725
 * 3.1, 3.2, 3.10) and sets *alg to the alg it names. Which key verifies it, and whether
 * that key's alg is *alg, is the caller's business (RFC 8725 3.1: the alg is the key's).
 */
sg_jose_hdr_t sg__jose_header(const sg_json_t *h, sg_jwt_alg_t *alg);

/* The JWS name of alg ("ES256"...), or "" for a value that names none. */
const char *sg__jose_alg_name(sg_jwt_alg_t alg);

/*
 * Verifies sig[0, sn) over data[0, n) with k, the only alg being k's (RFC 7518 3: ES256
 * signatures as R || S, 64 bytes; EdDSA Ed25519, 64 bytes; RS256 as long as the modulus;
 * HS256 compared in constant time). Returns 1 valid, 0 invalid, SG_ENOMEM when OpenSSL
 * could not allocate its context. Errors refused signatures leave in OpenSSL's queue are
 * the caller's to drop.
 */
int sg__jose_verify(const sg_pol_key_t *k, const unsigned char *data, size_t n,
                    const unsigned char *sig, size_t sn);

/*
 * A NumericDate (RFC 7519 2): a finite number in [0, year 9999]. The reader kept the
 * number's text, checked against the RFC 8259 grammar and SG_JOSE_NUMBER_MAX long.
 * Returns 0 with *out set, or -1.
 */
int sg__jose_date(const sg_json_t *c, double *out);

#endif
