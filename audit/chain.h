/*
 * audit/chain.h - the audit log's hash chain: line prefix, checkpoints, recovery of the
 * chain head at start-up, and verification (docs/design.md "Audit log").
 *
 * The line format, shared by the writer (proxy/audit.c, filters/flt_audit.c) and the verifier
 * (tools/smsguard-audit.c):
 *
 *   - One JSON object per line, '\n'-terminated. Every line starts exactly with
 *     {"seq":N,"prev":"H",  where N is decimal without leading zeros (1 for the first line of a
 *     new chain, then +1 for every line, checkpoints included, across rotated files) and H is 64
 *     lowercase hex: the SHA-256 of the previous line's exact bytes without its '\n' (64 '0's
 *     for the first line of a new chain). The other members follow ("time", "stage", ...).
 *   - A checkpoint line:
 *     {"seq":N,"prev":"H","time":"<RFC 3339 UTC, microseconds>","stage":"checkpoint",
 *      "key":"<first 16 hex of SHA-256 of the public key's DER SubjectPublicKeyInfo>",
 *      "sig":"<base64url without padding of the Ed25519 signature over the 64 ASCII bytes of H>"}
 *
 * Everything here is pure except the PEM loading (sg_audit_signer_new, and sg_audit_verify which
 * reads the files and the public key). It allocates with malloc, never from a request pool,
 * because the writer and the command-line tool use it outside any request.
 */
#ifndef SG_AUDIT_CHAIN_H
#define SG_AUDIT_CHAIN_H

#include <stddef.h>

#include "base/base.h"

#define SG_AUDIT_HASH_HEX 64
#define SG_AUDIT_MAX_LINE (1024 * 1024) /* longest line the verifier accepts, without '\n' */

/* Hex SHA-256 of line[0..n) (no newline) into out[65] (NUL-terminated, lowercase). One-shot:
 * for a line now and then (the chain head at start-up, a key id). */
void sg_audit_hash_hex(const char *line, size_t n, char out[SG_AUDIT_HASH_HEX + 1]);

/* The same hash for a stream of lines (the writer, the verifier): SHA-256 fetched once and one
 * digest context reused, where sg_audit_hash_hex pays an implicit fetch and a context
 * allocation per line, more than hashing a record costs. Caller storage; one thread at a time. */
typedef struct {
    struct evp_md_st *md;      /* SHA-256, fetched at init */
    struct evp_md_ctx_st *ctx; /* reinitialised for every line */
} sg_audit_hasher_t;

/* Returns SG_OK or SG_ENOMEM (h then holds nothing to dispose). */
int sg_audit_hasher_init(sg_audit_hasher_t *h);
void sg_audit_hasher_dispose(sg_audit_hasher_t *h);
/* sg_audit_hash_hex with h: the same contract and output. */
void sg_audit_hasher_hex(sg_audit_hasher_t *h, const char *line, size_t n,
                         char out[SG_AUDIT_HASH_HEX + 1]);

/* Appends the line prefix {"seq":N,"prev":"H", to b; prev_hex is 64 lowercase hex characters.
 * Returns SG_OK, SG_ENOMEM or SG_ETOOBIG (b's maximum); b unchanged on failure. */
int sg_audit_prefix(sg_buf_t *b, unsigned long long seq, const char *prev_hex);

/* ---- signing ---- */

typedef struct sg_audit_signer_s sg_audit_signer_t;

/* Loads an Ed25519 private key PEM from pem_path. Returns 0 with *out set (free it with
 * sg_audit_signer_free), or -1 with a message in err (the path and OpenSSL's reason; never key
 * bytes) when the file cannot be read or does not hold an Ed25519 private key. */
int sg_audit_signer_new(const char *pem_path, sg_audit_signer_t **out, char *err, size_t errlen);
void sg_audit_signer_free(sg_audit_signer_t *s);

/* Appends a complete checkpoint line (without '\n') for seq, prev_hex (the hash of the line
 * before it) and time_rfc3339 (copied verbatim between quotes) to b. Returns SG_OK, SG_ENOMEM,
 * SG_ETOOBIG or SG_ERR (signing failed); b unchanged on failure. Thread-safe for one signer as
 * long as it is not freed meanwhile. */
int sg_audit_checkpoint(const sg_audit_signer_t *s, sg_buf_t *b, unsigned long long seq,
                        const char *prev_hex, const char *time_rfc3339);

/* ---- recovery at start-up ----
 *
 * buf[0..n) is the end of an existing file (the writer reads the last <= 64 KiB). Finds the last
 * '\n'-terminated line and returns its seq and the hash of its bytes; *torn_bytes is the length
 * of an unterminated tail after it (a crash while writing), which the writer cuts before
 * appending. Returns 0 (an empty buffer, or one holding only a torn tail: *seq = 0 and hash_hex
 * 64 zeros, so the chain starts afresh), or -1 when the last complete line has no valid
 * {"seq":N,"prev":"H", prefix or is not wholly inside buf (then the writer must not guess). */
int sg_audit_tail(const char *buf, size_t n, unsigned long long *seq, char hash_hex[65],
                  size_t *torn_bytes);

/* ---- verification ---- */

typedef struct {
    const char *file;           /* the file of the first failure (one of the caller's strings) */
    unsigned long long line;    /* 1-based line number in that file */
    char why[256];              /* the reason, e.g. "edited"; "" when the chain holds */
    char notes[1024];           /* not failures, one per '\n'-separated line ("FILE:LINE: ..."):
                                 * torn last line, unchecked signatures, chain start */
    unsigned long long records; /* complete lines checked that are not checkpoints */
    unsigned long long checkpoints; /* checkpoint lines checked (signatures only with a key) */
    unsigned long long other;       /* syslog messages of other programs, skipped */
} sg_audit_verify_result_t;

/* Verifies files[0..nfiles) in order as one chain, streaming (memory O(longest line)).
 * pubkey_pem_or_null: path of the Ed25519 public key PEM; NULL checks the chain only.
 *
 * Returns 0 when the chain holds (a torn last line of the last file is reported in notes, not
 * counted, and is not a failure); 1 at the first bad line with file, line and why set; -1 on an
 * I/O error (file set, why = strerror text or the key problem). The reasons:
 *   "edited"                           this line's hash is not the next line's prev, and the
 *                                      next seq follows on (reported at the edited line)
 *   "deleted line(s) before this one"  seq jumps forward
 *   "inserted or reordered"            seq not greater than the previous one
 *   "truncated in the middle"          an unterminated line that is not the end of the last file
 *   "not a record"                     not a JSON object with the {"seq":N,"prev":"H", prefix
 *   "line too long"                    more than SG_AUDIT_MAX_LINE bytes
 *   "bad checkpoint signature"         (with a key) wrong key id, bad sig, or prev not the hash
 *                                      of the previous line
 * Without a key, checkpoints are chained but their signatures are not checked (in notes). */
int sg_audit_verify(const char *const *files, size_t nfiles, const char *pubkey_pem_or_null,
                    sg_audit_verify_result_t *res);

/* A reader of the verified lines (smsguard-audit report): called with each complete line
 * (checkpoints included; without its '\n'), its file and 1-based line number, in chain order,
 * once the chain vouches for it: after the next line has been found to link to it, or at the
 * end of a chain that holds. So a reader never sees the line a failure names, nor one a later
 * line shows edited; it sees every line before the first bad one. Whatever follows the last
 * checkpoint can still have been rewritten with recomputed hashes: only a key tells. line is
 * valid during the call only. Returns 0 to go on; anything else stops the verification. */
typedef int (*sg_audit_line_cb)(void *arg, const char *line, size_t n, const char *file,
                                unsigned long long lineno);

/* sg_audit_verify, handing the lines to cb (never NULL) as it goes. The same returns, and -1
 * with why "stopped by the reader" when cb returned non-zero. One more line buffer (1 MiB). */
int sg_audit_verify_each(const char *const *files, size_t nfiles, const char *pubkey_pem_or_null,
                         sg_audit_line_cb cb, void *arg, sg_audit_verify_result_t *res);

/* sg_audit_verify with flags. SG_AUDIT_VERIFY_SYSLOG: every file holds RFC 5424 messages, one
 * a line, as a syslog receiver wrote them (audit/rfc5424.h; rsyslog's "%rawmsg%\n" or
 * RSYSLOG_SyslogProtocol23Format): the chain is checked on their MSG parts. Without the flag
 * a file whose first byte is '<' is read so too. Messages without the smsguard SD-ID are
 * skipped (counted in res->other); one whose structured data is not the one its record
 * gives fails with "structured data does not match the record", one that is not an RFC 5424
 * message with "not an RFC 5424 message". */
#define SG_AUDIT_VERIFY_SYSLOG 0x1u
/* The one general form: flags as above, and cb/arg as for sg_audit_verify_each (cb may be
 * NULL). */
int sg_audit_verify_ex(const char *const *files, size_t nfiles, const char *pubkey_pem_or_null,
                       unsigned flags, sg_audit_line_cb cb, void *arg,
                       sg_audit_verify_result_t *res);

#endif
