/*
 * audit/chain.c - the audit log's hash chain (see chain.h for the line format).
 *
 * Owns: the line prefix, Ed25519 checkpoints, finding the chain head in the tail of an existing
 * file, and the streaming verifier behind `smsguard-audit verify`. Leaves to proxy/audit.c the
 * file itself (opening, appending, syncing, rotation) and to filters/flt_audit.c what a record
 * says.
 *
 * Why a hash chain and not a MAC per line: anyone can check it with sha256sum and no secret,
 * and an edit, deletion, insertion or reordering anywhere breaks the link to the next line.
 * What the chain alone cannot show is a tail rewritten with recomputed hashes; the signed
 * checkpoints cover that up to the last checkpoint.
 */
#include "audit/chain.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/rfc5424.h"
#include "base/json.h"

#define AC_KEYID_HEX 16 /* "key": the first 16 hex of SHA-256(SubjectPublicKeyInfo DER) */
#define AC_SIG_LEN 64   /* Ed25519 */
#define AC_SIG_B64 86   /* base64url of 64 bytes, no padding */
#define AC_MAX_SEQ_DIGITS 20
#define AC_READ_CHUNK 65536
#define AC_PEM_MAX (1u << 20) /* an Ed25519 key PEM is about 120 bytes; no PEM is near 1 MiB */

static const char ac_zero_hash[SG_AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";
static const char ac_hex[] = "0123456789abcdef";

/* ---- hashing and encodings ---- */

static void ac_to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = ac_hex[p[i] >> 4];
        out[2 * i + 1] = ac_hex[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int sg_audit_hasher_init(sg_audit_hasher_t *h)
{
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (h->md == NULL || h->ctx == NULL) {
        sg_audit_hasher_dispose(h);
        ERR_clear_error();
        return SG_ENOMEM;
    }
    return SG_OK;
}

void sg_audit_hasher_dispose(sg_audit_hasher_t *h)
{
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    h->ctx = NULL;
    h->md = NULL;
}

void sg_audit_hasher_hex(sg_audit_hasher_t *h, const char *line, size_t n,
                         char out[SG_AUDIT_HASH_HEX + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    /* Reinitialising a context with the digest it already holds keeps the provider's state
     * allocated (EVP_DigestInit_ex2 frees it only for another digest), so a line costs the
     * hash and nothing else. SHA-256 cannot fail short of memory exhaustion inside OpenSSL;
     * a zeroed digest then simply breaks the chain, which the verifier reports. */
    if (h->ctx == NULL || EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1 ||
        EVP_DigestUpdate(h->ctx, line, n) != 1 || EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1 ||
        mdlen != sizeof(md)) {
        memset(md, 0, sizeof(md));
        ERR_clear_error();
    }
    ac_to_hex(md, sizeof(md), out);
}

void sg_audit_hash_hex(const char *line, size_t n, char out[SG_AUDIT_HASH_HEX + 1])
{
    sg_audit_hasher_t h = {NULL, NULL};

    if (sg_audit_hasher_init(&h) != SG_OK)
        h.ctx = NULL; /* hashes as zeros, as a failed digest always has */
    sg_audit_hasher_hex(&h, line, n, out);
    sg_audit_hasher_dispose(&h);
}

static int ac_is_hash_hex(const char *p)
{
    for (size_t i = 0; i < SG_AUDIT_HASH_HEX; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

/* Key id of an Ed25519 key (public or private): first 16 hex of SHA-256 of its DER
 * SubjectPublicKeyInfo, so the verifier can tell "wrong key" from "bad signature". */
static int ac_key_id(EVP_PKEY *pkey, char out[AC_KEYID_HEX + 1])
{
    unsigned char *der = NULL;
    char full[SG_AUDIT_HASH_HEX + 1];
    int n = i2d_PUBKEY(pkey, &der);

    if (n <= 0)
        return -1;
    sg_audit_hash_hex((const char *)der, (size_t)n, full);
    OPENSSL_free(der);
    memcpy(out, full, AC_KEYID_HEX);
    out[AC_KEYID_HEX] = '\0';
    return 0;
}

/* ---- the prefix ---- */

int sg_audit_prefix(sg_buf_t *b, unsigned long long seq, const char *prev_hex)
{
    static const char head[] = "{\"seq\":", mid[] = ",\"prev\":\"";
    size_t digits = 1;
    int rv;

    /* Room for the whole prefix first, so that the appends below cannot fail half-way and b
     * is unchanged on failure; then no printf (the writer prefixes every line). */
    for (unsigned long long v = seq; v >= 10; v /= 10)
        digits++;
    rv = sg_buf_reserve(b, sizeof(head) - 1 + digits + sizeof(mid) - 1 + SG_AUDIT_HASH_HEX + 2);
    if (rv != SG_OK)
        return rv;
    sg_buf_append(b, head, sizeof(head) - 1);
    sg_buf_append_u64(b, seq);
    sg_buf_append(b, mid, sizeof(mid) - 1);
    sg_buf_append(b, prev_hex, SG_AUDIT_HASH_HEX);
    return sg_buf_lit(b, "\",");
}

/* Parses the exact prefix {"seq":N,"prev":"H", at the start of line[0..n): N decimal, 1 to 20
 * digits, no leading zero, no overflow; H 64 lowercase hex. Returns the prefix length, or 0. */
static size_t ac_parse_prefix(const char *line, size_t n, unsigned long long *seq,
                              const char **prev)
{
    static const char head[] = "{\"seq\":", mid[] = ",\"prev\":\"";
    unsigned long long v = 0;
    size_t i = sizeof(head) - 1, d0;

    if (n < i || memcmp(line, head, i) != 0)
        return 0;
    for (d0 = i; i < n && line[i] >= '0' && line[i] <= '9'; i++) {
        unsigned digit = (unsigned)(line[i] - '0');
        if (i - d0 >= AC_MAX_SEQ_DIGITS || v > (~0ULL - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    if (i == d0 || (line[d0] == '0' && i - d0 > 1))
        return 0;
    if (n - i < sizeof(mid) - 1 + SG_AUDIT_HASH_HEX + 2 ||
        memcmp(line + i, mid, sizeof(mid) - 1) != 0)
        return 0;
    i += sizeof(mid) - 1;
    if (!ac_is_hash_hex(line + i) || line[i + SG_AUDIT_HASH_HEX] != '"' ||
        line[i + SG_AUDIT_HASH_HEX + 1] != ',')
        return 0;
    *seq = v;
    *prev = line + i;
    return i + SG_AUDIT_HASH_HEX + 2;
}

/* ---- signing ---- */

struct sg_audit_signer_s {
    EVP_PKEY *pkey;
    char key_id[AC_KEYID_HEX + 1];
};

static void ac_openssl_err(char *err, size_t errlen, const char *path, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char lib[256] = "";

    if (e != 0)
        ERR_error_string_n(e, lib, sizeof(lib));
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s%s%s", path, what, lib[0] ? ": " : "", lib);
}

/* Reads the PEM key at path whole with base/'s file reader (a regular file only; with secret,
 * the copy is wiped before it is freed, so a private key never lingers in stdio's buffer) and
 * decodes it from memory: the private key when secret, else the public key. Returns the key,
 * or NULL with *why set to the reader's reason, or to "" when the bytes hold no such key
 * (OpenSSL's reason is then in its error queue). */
static EVP_PKEY *ac_read_pem(const char *path, int secret, const char **why)
{
    sg_file_t f = {NULL, 0, 0};
    EVP_PKEY *pkey = NULL;
    BIO *bio;

    *why = "";
    if (sg_file_read(&f, path, AC_PEM_MAX, secret ? SG_FILE_SECRET : 0, why) != SG_OK)
        return NULL;
    if ((bio = BIO_new_mem_buf(f.data, (int)f.len)) == NULL) {
        *why = "out of memory";
    } else {
        pkey = secret ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                      : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    sg_file_dispose(&f);
    return pkey;
}

int sg_audit_signer_new(const char *pem_path, sg_audit_signer_t **out, char *err, size_t errlen)
{
    sg_audit_signer_t *s = NULL;
    EVP_PKEY *pkey;
    const char *why;

    *out = NULL;
    pkey = ac_read_pem(pem_path, 1, &why);
    if (pkey == NULL && why[0] != '\0') {
        snprintf(err, errlen, "%s: %s", pem_path, why);
        return -1;
    }
    if (pkey == NULL) {
        ac_openssl_err(err, errlen, pem_path, "not a private key PEM");
        return -1;
    }
    if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
        snprintf(err, errlen, "%s: not an Ed25519 key", pem_path);
        goto fail;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        snprintf(err, errlen, "%s: out of memory", pem_path);
        goto fail;
    }
    if (ac_key_id(pkey, s->key_id) != 0) {
        ac_openssl_err(err, errlen, pem_path, "cannot encode the public key");
        goto fail;
    }
    s->pkey = pkey;
    *out = s;
    return 0;
fail:
    free(s);
    EVP_PKEY_free(pkey);
    return -1;
}

void sg_audit_signer_free(sg_audit_signer_t *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->pkey);
    free(s);
}

/* The time is copied between quotes without escaping, so it must not be able to end the
 * string: RFC 3339 needs digits, letters (T, Z), ':', '.', '+' and '-' only. */
static int ac_time_ok(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == ':' || c == '.' || c == '+' || c == '-'))
            return 0;
    }
    return 1;
}

int sg_audit_checkpoint(const sg_audit_signer_t *s, sg_buf_t *b, unsigned long long seq,
                        const char *prev_hex, const char *time_rfc3339)
{
    unsigned char sig[AC_SIG_LEN];
    size_t siglen = sizeof(sig);
    char sig64[AC_SIG_B64 + 4];
    char line[512];
    EVP_MD_CTX *ctx;
    int ok, n;

    if (!ac_is_hash_hex(prev_hex) || !ac_time_ok(time_rfc3339))
        return SG_ERR;
    /* Ed25519 is one-shot (no digest): sign the 64 ASCII characters of the previous line's
     * hash, i.e. exactly what this line's "prev" holds. */
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        return SG_ENOMEM;
    ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pkey) == 1 &&
         EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)prev_hex, SG_AUDIT_HASH_HEX) ==
             1 &&
         siglen == AC_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        return SG_ERR;
    }
    *sg_b64url_put(sig64, sig, sizeof(sig)) = '\0';
    n = snprintf(line, sizeof(line),
                 "{\"seq\":%llu,\"prev\":\"%.64s\",\"time\":\"%s\",\"stage\":\"checkpoint\","
                 "\"key\":\"%s\",\"sig\":\"%s\"}",
                 seq, prev_hex, time_rfc3339, s->key_id, sig64);
    if (n < 0 || (size_t)n >= sizeof(line))
        return SG_ERR;
    return sg_buf_append(b, line, (size_t)n); /* one append: b unchanged on failure */
}

/* ---- recovery ---- */

int sg_audit_tail(const char *buf, size_t n, unsigned long long *seq, char hash_hex[65],
                  size_t *torn_bytes)
{
    const char *end, *start, *prev;
    size_t len;

    *seq = 0;
    memcpy(hash_hex, ac_zero_hash, sizeof(ac_zero_hash));
    *torn_bytes = 0;
    end = n > 0 ? memrchr(buf, '\n', n) : NULL;
    if (end == NULL) {
        /* Nothing complete: an empty file, or one whose only line was torn by a crash (the
         * writer dies before the first '\n'). The chain starts afresh after the cut. A caller
         * that read only the end of a bigger file must not trust this (see the header). */
        *torn_bytes = n;
        return 0;
    }
    *torn_bytes = n - (size_t)(end - buf) - 1;
    start = end > buf ? memrchr(buf, '\n', (size_t)(end - buf)) : NULL;
    start = start != NULL ? start + 1 : buf;
    len = (size_t)(end - start);
    /* Writers escape '"' inside strings, so {"seq":N,"prev":"H", cannot occur in the middle of
     * a line: a line found at buf[0] that starts with it is a whole line. */
    if (ac_parse_prefix(start, len, seq, &prev) == 0)
        return -1;
    sg_audit_hash_hex(start, len, hash_hex);
    return 0;
}

/* ---- verification ---- */

/* A buffered line reader over a FILE: bounded memory however long the file is. */
typedef struct {
    FILE *f;
    char *chunk; /* AC_READ_CHUNK bytes */
    size_t pos, len;
    int eof;
} ac_reader_t;

enum { AC_LINE = 1, AC_TORN = 2, AC_EOF = 0, AC_IOERR = -1, AC_TOOLONG = -2 };

/* Reads the next line into line[0..*n) without its '\n'. Returns AC_LINE (terminated), AC_TORN
 * (bytes up to end of file without '\n'), AC_EOF, AC_IOERR (errno set) or AC_TOOLONG (more than
 * SG_AUDIT_MAX_LINE bytes before the '\n'). */
static int ac_read_line(ac_reader_t *rd, char *line, size_t *n)
{
    *n = 0;
    for (;;) {
        if (rd->pos == rd->len) {
            if (rd->eof)
                return *n > 0 ? AC_TORN : AC_EOF;
            rd->pos = 0;
            rd->len = fread(rd->chunk, 1, AC_READ_CHUNK, rd->f);
            if (rd->len < AC_READ_CHUNK) {
                if (ferror(rd->f))
                    return AC_IOERR;
                rd->eof = 1;
            }
            continue;
        }
        const char *p = rd->chunk + rd->pos;
        size_t avail = rd->len - rd->pos;
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl != NULL ? (size_t)(nl - p) : avail;

        if (*n + take > SG_AUDIT_MAX_LINE)
            return AC_TOOLONG;
        memcpy(line + *n, p, take);
        *n += take;
        rd->pos += take + (nl != NULL);
        if (nl != NULL)
            return AC_LINE;
    }
}

/* Where a line is, for reports. */
typedef struct {
    const char *file;
    unsigned long long line;
} ac_loc_t;

/* A failure that needs one more line to be told apart: whether a broken link means the line
 * before was edited or this one, and whether a seq jump is a deletion or a swap. */
enum { AC_PEND_NONE = 0, AC_PEND_EDIT, AC_PEND_JUMP };

typedef struct {
    sg_audit_verify_result_t *res;
    EVP_PKEY *pub; /* NULL: checkpoints not checked */
    char key_id[AC_KEYID_HEX + 1];
    sg_pool_t pool; /* per line: the JSON tree */
    sg_audit_hasher_t hasher;
    int have_prev;
    unsigned long long seq;           /* of the previous complete line */
    char hash[SG_AUDIT_HASH_HEX + 1]; /* of the previous complete line */
    ac_loc_t loc;                     /* of the previous complete line */
    ac_loc_t before;                  /* of the line before that (AC_PEND_EDIT) */
    int pending;
    unsigned long long since_cp; /* records after the last checkpoint */
    char *line;                  /* the line being read: SG_AUDIT_MAX_LINE bytes */
    sg_audit_line_cb cb;         /* NULL: nobody reads the lines */
    void *cb_arg;
    char *held; /* with cb: the last good line, until the next one links to it */
    size_t held_n;
    ac_loc_t held_loc; /* file NULL: nothing held */
    unsigned flags;              /* SG_AUDIT_VERIFY_* */
    sg_buf_t sd;                 /* the structured data a syslog copy should carry */
} ac_verifier_t;

static void ac_note(ac_verifier_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ac_note(ac_verifier_t *v, const char *fmt, ...)
{
    char *notes = v->res->notes;
    size_t used = strlen(notes), room = sizeof(v->res->notes) - used;
    va_list ap;

    if (used > 0 && room > 1) {
        notes[used++] = '\n';
        notes[used] = '\0';
        room--;
    }
    va_start(ap, fmt);
    vsnprintf(notes + used, room, fmt, ap); /* truncates quietly: notes are advisory */
    va_end(ap);
}

static int ac_fail(ac_verifier_t *v, ac_loc_t at, const char *why)
{
    v->res->file = at.file;
    v->res->line = at.line;
    snprintf(v->res->why, sizeof(v->res->why), "%s", why);
    return 1;
}

/* Settles a pending failure once the line after the suspect one is known (or, with next NULL,
 * when there is none): the suspect is v->loc, the line before it v->before. */
static int ac_settle(ac_verifier_t *v, const unsigned long long *next_seq, const char *next_prev)
{
    int link_ok = next_prev != NULL && memcmp(next_prev, v->hash, SG_AUDIT_HASH_HEX) == 0;
    int seq_ok = next_seq != NULL && *next_seq == v->seq + 1;

    if (v->pending == AC_PEND_JUMP) {
        /* A jump followed by a step back is a swap or an insertion, not a deletion. */
        if (next_seq != NULL && *next_seq <= v->seq)
            return ac_fail(v, v->loc, "inserted or reordered");
        return ac_fail(v, v->loc, "deleted line(s) before this one");
    }
    /* AC_PEND_EDIT: the suspect's prev is not the hash of the line before it although its seq
     * follows on. If the next line links to the suspect, the suspect is intact and the line
     * before it was edited; if the next line does not link either, the suspect changed. */
    if (next_seq == NULL || (link_ok && seq_ok))
        return ac_fail(v, v->before, "edited");
    if (*next_seq <= v->seq)
        return ac_fail(v, v->loc, "inserted or reordered");
    if (seq_ok)
        return ac_fail(v, v->loc, "edited");
    return ac_fail(v, v->before, "edited");
}

/* Hands the held line to the reader. Returns 0, or -1 (why set, unless keep_why) when the
 * reader stops. */
static int ac_hand_over(ac_verifier_t *v, int keep_why)
{
    ac_loc_t at = v->held_loc;

    v->held_loc.file = NULL;
    if (v->cb(v->cb_arg, v->held, v->held_n, at.file, at.line) == 0)
        return 0;
    if (!keep_why) {
        v->res->file = NULL;
        snprintf(v->res->why, sizeof(v->res->why), "stopped by the reader");
    }
    return -1;
}

/* With a reader, after v->line at `at` was found to link to the line before it: that line is
 * vouched for now, so it goes to the reader, and this one is held until the next line (or the
 * end of a chain that holds) vouches for it. The buffers swap: nothing is copied. */
static int ac_hold(ac_verifier_t *v, size_t n, ac_loc_t at)
{
    char *t;

    if (v->held_loc.file != NULL && ac_hand_over(v, 0) != 0)
        return -1;
    t = v->held;
    v->held = v->line;
    v->line = t;
    v->held_n = n;
    v->held_loc = at;
    return 0;
}

/* Checks a checkpoint's key id and signature against v->pub. Returns 1 when it verifies. */
static int ac_checkpoint_ok(ac_verifier_t *v, const sg_json_t *doc, const char *prev)
{
    const sg_json_t *key = sg_json_get(doc, "key", 3), *sig = sg_json_get(doc, "sig", 3);
    unsigned char raw[AC_SIG_LEN];
    EVP_MD_CTX *ctx;
    int ok;

    if (key == NULL || sig == NULL || key->type != SG_JSON_STRING || sig->type != SG_JSON_STRING ||
        !sg_json_is_string(key, v->key_id, AC_KEYID_HEX) ||
        sig->str.n != AC_SIG_B64 || sg_b64url_decode(raw, sig->str.p, sig->str.n) != AC_SIG_LEN)
        return 0;
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, v->pub) == 1 &&
         EVP_DigestVerify(ctx, raw, sizeof(raw), (const unsigned char *)prev, SG_AUDIT_HASH_HEX) ==
             1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* One complete line at `at`. Returns 0 to go on, 1 on a failure (res filled), -1 when the
 * reader stopped. */
static int ac_check_line(ac_verifier_t *v, const char *line, size_t n, ac_loc_t at)
{
    static const sg_json_limits_t lim = {.max_depth = 32, .max_values = 0};
    unsigned long long seq = 0;
    const char *prev = NULL;
    sg_json_t *doc = NULL;
    const sg_json_t *stage;
    sg_json_err_t jerr;
    int is_cp, cp_valid = 0, rv;
    char hash[SG_AUDIT_HASH_HEX + 1];

    /* The writer escapes every control character, so a raw CR can only come from a tool that
     * converted line endings: say so rather than "edited" on the line after. */
    if (n > 0 && line[n - 1] == '\r')
        return v->pending ? ac_settle(v, NULL, NULL)
                          : ac_fail(v, at, "not a record (CRLF line ending: file converted?)");
    if (ac_parse_prefix(line, n, &seq, &prev) == 0 ||
        sg_json_parse(&v->pool, line, n, &lim, &doc, &jerr) != SG_OK ||
        doc->type != SG_JSON_OBJECT) {
        sg_pool_dispose(&v->pool);
        return v->pending ? ac_settle(v, NULL, NULL) : ac_fail(v, at, "not a record");
    }
    stage = sg_json_get(doc, "stage", 5);
    is_cp = stage != NULL && sg_json_is_string(stage, "checkpoint", 10);
    rv = 0;
    if (v->pending) {
        rv = ac_settle(v, &seq, prev);
        goto out;
    }
    /* A checkpoint that verifies makes its prev authentic, so a broken link to the line
     * before it proves that line edited without waiting for the next one. */
    if (is_cp && v->pub != NULL) {
        if (!ac_checkpoint_ok(v, doc, prev)) {
            rv = ac_fail(v, at, "bad checkpoint signature");
            goto out;
        }
        cp_valid = 1;
    }
    if (!v->have_prev) {
        if (seq != 1 || memcmp(prev, ac_zero_hash, SG_AUDIT_HASH_HEX) != 0)
            ac_note(v,
                    "%s:%llu: chain starts at seq %llu with prev %.12s... (a rotated file, "
                    "or earlier lines are missing)",
                    at.file, at.line, seq, prev);
    } else {
        int link_ok = memcmp(prev, v->hash, SG_AUDIT_HASH_HEX) == 0;
        if (link_ok && seq != v->seq + 1) {
            rv = ac_fail(v, at, "edited"); /* the link holds, so only the seq changed */
            goto out;
        }
        if (!link_ok) {
            if (seq <= v->seq) {
                rv = ac_fail(v, at, "inserted or reordered");
                goto out;
            }
            if (seq == v->seq + 1 && cp_valid) {
                rv = ac_fail(v, v->loc, "edited");
                goto out;
            }
            v->pending = seq == v->seq + 1 ? AC_PEND_EDIT : AC_PEND_JUMP;
        }
    }
    sg_audit_hasher_hex(&v->hasher, line, n, hash);
    v->before = v->loc;
    v->loc = at;
    v->seq = seq;
    memcpy(v->hash, hash, sizeof(hash));
    v->have_prev = 1;
    if (is_cp) {
        v->res->checkpoints++;
        v->since_cp = 0;
    } else {
        v->res->records++;
        v->since_cp++;
    }
    /* A pending failure names this line or the one before: neither is handed over. */
    if (v->cb != NULL && !v->pending)
        rv = ac_hold(v, n, at);
out:
    sg_pool_dispose(&v->pool);
    return rv;
}

static int ac_load_pub(ac_verifier_t *v, const char *path)
{
    sg_audit_verify_result_t *res = v->res;
    const char *why;

    res->file = path;
    v->pub = ac_read_pem(path, 0, &why);
    ERR_clear_error();
    if (v->pub == NULL && why[0] != '\0') {
        snprintf(res->why, sizeof(res->why), "%s", why);
        return -1;
    }
    if (v->pub == NULL || EVP_PKEY_get_id(v->pub) != EVP_PKEY_ED25519 ||
        ac_key_id(v->pub, v->key_id) != 0) {
        snprintf(res->why, sizeof(res->why), "not an Ed25519 public key PEM");
        return -1;
    }
    res->file = NULL;
    return 0;
}

/* Runs one file through the verifier. Returns 0, 1 (failure) or -1 (I/O error). */
static int ac_verify_file(ac_verifier_t *v, ac_reader_t *rd, const char *file, int last)
{
    unsigned long long lineno = 0;
    size_t n;
    int rv = 0, is_syslog = -1; /* -1: the first line tells (an RFC 5424 message starts with '<') */

    rd->pos = rd->len = 0;
    rd->eof = 0;
    if ((rd->f = fopen(file, "rb")) == NULL) {
        v->res->file = file;
        snprintf(v->res->why, sizeof(v->res->why), "%s", strerror(errno));
        return -1;
    }
    for (;;) {
        int r = ac_read_line(rd, v->line, &n);
        ac_loc_t at = {file, ++lineno};

        if (r == AC_EOF)
            break;
        if (r == AC_IOERR) {
            v->res->file = file;
            snprintf(v->res->why, sizeof(v->res->why), "%s", strerror(errno ? errno : EIO));
            rv = -1;
            break;
        }
        if (r == AC_TOOLONG) {
            rv = v->pending ? ac_settle(v, NULL, NULL) : ac_fail(v, at, "line too long");
            break;
        }
        if (r == AC_TORN) {
            if (!last) {
                rv = v->pending ? ac_settle(v, NULL, NULL)
                                : ac_fail(v, at, "truncated in the middle");
                break;
            }
            /* A crash while appending leaves this; the writer cuts it at the next start. */
            ac_note(v, "%s:%llu: torn last line (crash while writing): not counted", file, lineno);
            break;
        }
        if (is_syslog < 0)
            is_syslog = (v->flags & SG_AUDIT_VERIFY_SYSLOG) || (n > 0 && v->line[0] == '<');
        if (is_syslog) {
            sg_rfc5424_msg_t m;
            const char *why = NULL;

            int parsed = sg_rfc5424_parse(v->line, n, &m, &why) == 0;

            if (parsed && !sg_rfc5424_is_audit(&m)) {
                v->res->other++; /* another program's message in the same file */
                continue;
            }
            /* The structured data is what a SIEM indexes: it must say what the line says.
             * A line that is no record is left to ac_check_line to name. */
            sg_buf_reset(&v->sd);
            if (parsed && sg_rfc5424_audit_sd(&v->sd, m.msg, m.msg_len) == SG_OK &&
                (m.sd_len < v->sd.len || memcmp(m.sd, v->sd.data, v->sd.len) != 0 ||
                 (m.sd_len > v->sd.len && m.sd[v->sd.len] != '[')))
                why = "structured data does not match the record";
            if (why != NULL) {
                rv = v->pending ? ac_settle(v, NULL, NULL) : ac_fail(v, at, why);
                break;
            }
            /* The record to the start of the buffer: a reader is handed v->line. */
            memmove(v->line, m.msg, m.msg_len);
            if ((rv = ac_check_line(v, v->line, m.msg_len, at)) != 0)
                break;
            continue;
        }
        if ((rv = ac_check_line(v, v->line, n, at)) != 0)
            break;
    }
    fclose(rd->f);
    rd->f = NULL;
    return rv;
}

int sg_audit_verify(const char *const *files, size_t nfiles, const char *pubkey_pem_or_null,
                    sg_audit_verify_result_t *res)
{
    return sg_audit_verify_ex(files, nfiles, pubkey_pem_or_null, 0, NULL, NULL, res);
}

int sg_audit_verify_each(const char *const *files, size_t nfiles, const char *pubkey_pem_or_null,
                         sg_audit_line_cb cb, void *arg, sg_audit_verify_result_t *res)
{
    return sg_audit_verify_ex(files, nfiles, pubkey_pem_or_null, 0, cb, arg, res);
}

int sg_audit_verify_ex(const char *const *files, size_t nfiles, const char *pubkey_pem_or_null,
                       unsigned flags, sg_audit_line_cb cb, void *arg,
                       sg_audit_verify_result_t *res)
{
    ac_verifier_t v;
    ac_reader_t rd;
    int rv = 0;

    memset(res, 0, sizeof(*res));
    memset(&v, 0, sizeof(v));
    memset(&rd, 0, sizeof(rd));
    v.res = res;
    v.cb = cb;
    v.cb_arg = arg;
    v.flags = flags;
    sg_buf_init(&v.sd, SG_AUDIT_MAX_LINE);
    sg_pool_init(&v.pool, 16384);
    if (pubkey_pem_or_null != NULL && ac_load_pub(&v, pubkey_pem_or_null) != 0) {
        rv = -1;
        goto out;
    }
    v.line = malloc(SG_AUDIT_MAX_LINE);
    v.held = cb != NULL ? malloc(SG_AUDIT_MAX_LINE) : NULL;
    rd.chunk = malloc(AC_READ_CHUNK);
    if (v.line == NULL || (cb != NULL && v.held == NULL) || rd.chunk == NULL ||
        sg_audit_hasher_init(&v.hasher) != SG_OK) {
        snprintf(res->why, sizeof(res->why), "%s", strerror(ENOMEM));
        rv = -1;
        goto out;
    }
    for (size_t i = 0; i < nfiles && rv == 0; i++)
        rv = ac_verify_file(&v, &rd, files[i], i + 1 == nfiles);
    if (rv == 0 && v.pending)
        rv = ac_settle(&v, NULL, NULL);
    /* The last line held is vouched for by the end of a chain that holds, or by a failure
     * named after it; not when the failure names it (which stays the result). */
    if (v.held_loc.file != NULL && rv == 0)
        rv = ac_hand_over(&v, 0);
    else if (v.held_loc.file != NULL && rv == 1 &&
             !(v.held_loc.file == res->file && v.held_loc.line == res->line))
        (void)ac_hand_over(&v, 1);
    if (rv != 0)
        goto out;
    if (res->other > 0)
        ac_note(&v, "%llu message(s) of other programs skipped", res->other);
    if (v.pub == NULL && res->checkpoints > 0)
        ac_note(&v, "%llu checkpoint signature(s) not checked (no --key)", res->checkpoints);
    else if (v.pub != NULL && res->checkpoints == 0 && res->records > 0)
        ac_note(&v, "no checkpoint: nothing is covered by a signature");
    else if (v.pub != NULL && v.since_cp > 0)
        ac_note(&v, "%llu record(s) after the last checkpoint are not covered by a signature",
                v.since_cp);
out:
    free(v.line);
    free(v.held);
    free(rd.chunk);
    EVP_PKEY_free(v.pub);
    sg_audit_hasher_dispose(&v.hasher);
    sg_pool_dispose(&v.pool);
    sg_buf_dispose(&v.sd);
    return rv;
}
