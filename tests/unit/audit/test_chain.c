/*
 * Unit tests for audit/chain.c: chains are built with the API itself (prefix,
 * checkpoints signed by Ed25519 keys generated at run time), written to files in a mkdtemp
 * directory, tampered with the way an intruder would, and verified. Each tampering test checks
 * the line reported and the reason, not only that verification fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit/chain.h"
#include "tests/common/tmpdir.h"

#define MAX_LINES 64
#define TIME "2024-05-01T12:00:00.123456Z"

static char tdir[64];
static char priv_a[256], pub_a[256], priv_b[256], pub_b[256], pub_rsa[256];
static sg_audit_signer_t *signer_a, *signer_b;

/* ---- fixtures ---- */

static const char *path_in(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *p = bufs[next++ % 8];

    snprintf(p, 256, "%s/%s", tdir, name);
    return p;
}

static void write_key_pair(EVP_PKEY *k, char *priv, char *pub, const char *tag)
{
    FILE *f;

    snprintf(priv, 256, "%s/%s.key", tdir, tag);
    snprintf(pub, 256, "%s/%s.pub", tdir, tag);
    assert_non_null(f = fopen(priv, "w"));
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    assert_non_null(f = fopen(pub, "w"));
    assert_int_equal(PEM_write_PUBKEY(f, k), 1);
    fclose(f);
}

static int setup(void **state)
{
    char err[256];
    EVP_PKEY *a, *b, *r;

    (void)state;
    if (sg_test_mkdtemp(tdir, sizeof(tdir), "sg-audit-test") == NULL)
        return -1;
    a = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    r = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (a == NULL || b == NULL || r == NULL)
        return -1;
    write_key_pair(a, priv_a, pub_a, "a");
    write_key_pair(b, priv_b, pub_b, "b");
    write_key_pair(r, err, pub_rsa, "rsa");
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(r);
    if (sg_audit_signer_new(priv_a, &signer_a, err, sizeof(err)) != 0 ||
        sg_audit_signer_new(priv_b, &signer_b, err, sizeof(err)) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];

    (void)state;
    sg_audit_signer_free(signer_a);
    sg_audit_signer_free(signer_b);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- chains as arrays of lines (without '\n') ---- */

typedef struct {
    char *lines[MAX_LINES];
    size_t n;
    unsigned long long seq;
    char hash[SG_AUDIT_HASH_HEX + 1];
} chain_t;

static void chain_init(chain_t *c)
{
    memset(c, 0, sizeof(*c));
    memset(c->hash, '0', SG_AUDIT_HASH_HEX);
}

static void chain_free(chain_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i]);
}

static void chain_push(chain_t *c, sg_buf_t *b)
{
    assert_true(c->n < MAX_LINES);
    c->lines[c->n] = strndup(sg_buf_head(b), sg_buf_avail(b));
    sg_audit_hash_hex(sg_buf_head(b), sg_buf_avail(b), c->hash);
    c->n++;
    sg_buf_dispose(b);
}

static void chain_record(chain_t *c)
{
    sg_buf_t b;

    sg_buf_init(&b, 4096);
    assert_int_equal(sg_audit_prefix(&b, ++c->seq, c->hash), SG_OK);
    assert_int_equal(sg_buf_appendf(&b,
                                    "\"time\":\"" TIME "\",\"stage\":\"decision\","
                                    "\"request_id\":\"req-%llu\",\"decision\":\"allow\"}",
                                    c->seq),
                     SG_OK);
    chain_push(c, &b);
}

static void chain_checkpoint(chain_t *c, const sg_audit_signer_t *s)
{
    sg_buf_t b;

    sg_buf_init(&b, 4096);
    assert_int_equal(sg_audit_checkpoint(s, &b, ++c->seq, c->hash, TIME), SG_OK);
    chain_push(c, &b);
}

/* n records with a checkpoint after every `every` records (0: none). */
static void chain_build(chain_t *c, size_t n, size_t every, const sg_audit_signer_t *s)
{
    chain_init(c);
    for (size_t i = 1; i <= n; i++) {
        chain_record(c);
        if (every > 0 && i % every == 0)
            chain_checkpoint(c, s);
    }
}

/* What an intruder with sha256sum does after editing line i: recompute every later prev (and
 * nothing else: checkpoint signatures cannot be recomputed without the key). */
static void chain_rehash_from(chain_t *c, size_t i)
{
    char h[SG_AUDIT_HASH_HEX + 1];

    for (size_t k = i; k + 1 < c->n; k++) {
        char *next = c->lines[k + 1], *prev = strstr(next, "\"prev\":\"") + 8;
        sg_audit_hash_hex(c->lines[k], strlen(c->lines[k]), h);
        memcpy(prev, h, SG_AUDIT_HASH_HEX);
    }
}

static void chain_remove(chain_t *c, size_t i)
{
    free(c->lines[i]);
    memmove(&c->lines[i], &c->lines[i + 1], (c->n - i - 1) * sizeof(char *));
    c->n--;
}

static void chain_insert(chain_t *c, size_t i, const char *line)
{
    memmove(&c->lines[i + 1], &c->lines[i], (c->n - i) * sizeof(char *));
    c->lines[i] = strdup(line);
    c->n++;
}

/* Changes one byte of line i: the first occurrence of `from` becomes `to`. */
static void chain_edit(chain_t *c, size_t i, const char *from, const char *to)
{
    char *p = strstr(c->lines[i], from);

    assert_non_null(p);
    assert_int_equal(strlen(from), strlen(to));
    memcpy(p, to, strlen(to));
}

/* Writes lines [from, to) with sep after each one, and tail (may be NULL) at the end. */
static const char *write_lines(const char *name, const chain_t *c, size_t from, size_t to,
                               const char *sep, const char *tail)
{
    const char *p = path_in(name);
    FILE *f = fopen(p, "wb");

    assert_non_null(f);
    for (size_t i = from; i < to; i++)
        fprintf(f, "%s%s", c->lines[i], sep);
    if (tail != NULL)
        fputs(tail, f);
    fclose(f);
    return p;
}

static const char *write_chain(const char *name, const chain_t *c)
{
    return write_lines(name, c, 0, c->n, "\n", NULL);
}

static int verify1(const char *file, const char *key, sg_audit_verify_result_t *res)
{
    return sg_audit_verify(&file, 1, key, res);
}

static void assert_fails_at(int rv, const sg_audit_verify_result_t *res, const char *file,
                            unsigned long long line, const char *why)
{
    if (rv != 1 || res->line != line || strcmp(res->why, why) != 0)
        print_error("got rv %d at %s:%llu: %s\n", rv, res->file ? res->file : "-", res->line,
                    res->why);
    assert_int_equal(rv, 1);
    assert_string_equal(res->file, file);
    assert_int_equal(res->line, line);
    assert_string_equal(res->why, why);
}

/* ---- format ---- */

static void prefix_has_the_exact_shape(void **state)
{
    sg_buf_t b;
    char zeros[SG_AUDIT_HASH_HEX + 1];

    (void)state;
    memset(zeros, '0', SG_AUDIT_HASH_HEX);
    zeros[SG_AUDIT_HASH_HEX] = '\0';
    sg_buf_init(&b, 1024);
    assert_int_equal(sg_audit_prefix(&b, 18446744073709551615ULL, zeros), SG_OK);
    assert_int_equal(sg_buf_avail(&b), strlen("{\"seq\":18446744073709551615,\"prev\":\"\",") + 64);
    assert_memory_equal(sg_buf_head(&b), "{\"seq\":18446744073709551615,\"prev\":\"0000", 40);
    assert_memory_equal(sg_buf_head(&b) + sg_buf_avail(&b) - 2, "\",", 2);
    sg_buf_dispose(&b);
}

static void hash_is_lowercase_hex_sha256(void **state)
{
    char h[SG_AUDIT_HASH_HEX + 1];

    (void)state;
    sg_audit_hash_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sg_audit_hash_hex("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void prefix_leaves_a_full_buffer_unchanged(void **state)
{
    sg_buf_t b;
    char zeros[SG_AUDIT_HASH_HEX + 1];

    (void)state;
    memset(zeros, '0', SG_AUDIT_HASH_HEX);
    zeros[SG_AUDIT_HASH_HEX] = '\0';
    sg_buf_init(&b, 1 + 83); /* "x" and the prefix of seq 1, not that of a longer seq */
    assert_int_equal(sg_buf_lit(&b, "x"), SG_OK);
    assert_int_equal(sg_audit_prefix(&b, 10, zeros), SG_ETOOBIG);
    assert_int_equal(sg_buf_avail(&b), 1);
    assert_int_equal(sg_audit_prefix(&b, 1, zeros), SG_OK);
    assert_int_equal(sg_buf_avail(&b), 1 + 83);
    sg_buf_dispose(&b);
}

/* The writer and the verifier hash line after line with one context: every line must hash
 * as the one-shot function does, whatever came before (no state carried over). */
static void reused_hasher_matches_the_one_shot_hash_line_after_line(void **state)
{
    sg_audit_hasher_t h;
    char line[3000], want[SG_AUDIT_HASH_HEX + 1], got[SG_AUDIT_HASH_HEX + 1];

    (void)state;
    assert_int_equal(sg_audit_hasher_init(&h), SG_OK);
    for (size_t i = 0; i < sizeof(line); i++)
        line[i] = (char)('a' + i * 7 % 26);
    for (size_t n = 0; n < sizeof(line); n += 37) {
        sg_audit_hash_hex(line, n, want);
        sg_audit_hasher_hex(&h, line, n, got);
        assert_string_equal(got, want);
    }
    sg_audit_hasher_hex(&h, "abc", 3, got);
    assert_string_equal(got, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sg_audit_hasher_dispose(&h);
    sg_audit_hasher_dispose(&h); /* idempotent, as the writer's stop may run twice */
}

static void checkpoint_line_has_key_id_and_unpadded_base64url_signature(void **state)
{
    chain_t c;
    const char *l, *k, *s;

    (void)state;
    chain_build(&c, 1, 1, signer_a);
    l = c.lines[1];
    assert_non_null(strstr(l, "\"time\":\"" TIME "\",\"stage\":\"checkpoint\",\"key\":\""));
    assert_non_null(k = strstr(l, "\"key\":\""));
    assert_int_equal(strchr(k + 7, '"') - (k + 7), 16);
    assert_non_null(s = strstr(l, "\"sig\":\""));
    assert_int_equal(strchr(s + 7, '"') - (s + 7), 86);
    assert_null(strpbrk(s + 7, "=+/"));
    assert_string_equal(s + 7 + 86, "\"}");
    chain_free(&c);
}

static void checkpoint_refuses_a_time_that_could_end_the_string(void **state)
{
    sg_buf_t b;
    char zeros[SG_AUDIT_HASH_HEX + 1];

    (void)state;
    memset(zeros, '0', SG_AUDIT_HASH_HEX);
    zeros[SG_AUDIT_HASH_HEX] = '\0';
    sg_buf_init(&b, 4096);
    assert_int_equal(sg_audit_checkpoint(signer_a, &b, 1, zeros, "2024\",\"x\":\"y"), SG_ERR);
    assert_int_equal(sg_buf_avail(&b), 0);
    sg_buf_dispose(&b);
}

static void signer_refuses_missing_and_non_ed25519_keys(void **state)
{
    sg_audit_signer_t *s = (sg_audit_signer_t *)1;
    char err[256];

    (void)state;
    assert_int_equal(sg_audit_signer_new(path_in("nope.key"), &s, err, sizeof(err)), -1);
    assert_null(s);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(sg_audit_signer_new(path_in("rsa.key"), &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not an Ed25519 key"));
    assert_int_equal(sg_audit_signer_new(pub_a, &s, err, sizeof(err)), -1);
}

/* ---- intact chains ---- */

static void intact_chain_in_one_file_verifies(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 10, 4, signer_a);
    f = write_chain("one.log", &c);
    assert_int_equal(verify1(f, NULL, &res), 0);
    assert_int_equal(res.records, 10);
    assert_int_equal(res.checkpoints, 2);
    assert_non_null(strstr(res.notes, "2 checkpoint signature(s) not checked"));
    assert_int_equal(verify1(f, pub_a, &res), 0);
    assert_int_equal(res.records, 10);
    assert_int_equal(res.checkpoints, 2);
    assert_non_null(strstr(res.notes, "2 record(s) after the last checkpoint"));
    chain_free(&c);
}

static void rotated_files_continue_the_chain(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *files[3];

    (void)state;
    chain_build(&c, 12, 3, signer_a); /* 16 lines */
    files[0] = write_lines("rot.1", &c, 0, 5, "\n", NULL);
    files[1] = write_lines("rot.2", &c, 5, 11, "\n", NULL);
    files[2] = write_lines("rot.3", &c, 11, c.n, "\n", NULL);
    assert_int_equal(sg_audit_verify(files, 3, pub_a, &res), 0);
    assert_int_equal(res.records, 12);
    assert_int_equal(res.checkpoints, 4);
    assert_string_equal(res.notes, "");

    /* A rotated file alone holds, with a note on where it starts. */
    assert_int_equal(sg_audit_verify(files + 1, 1, pub_a, &res), 0);
    assert_non_null(strstr(res.notes, "rot.2:1: chain starts at seq 6"));

    /* Out of order, the link between the files breaks. */
    const char *swapped[2] = {files[1], files[0]};
    assert_int_equal(sg_audit_verify(swapped, 2, NULL, &res), 1);
    assert_string_equal(res.file, files[0]);
    assert_int_equal(res.line, 1);
    assert_string_equal(res.why, "inserted or reordered");
    chain_free(&c);
}

static void empty_file_verifies_with_no_records(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_init(&c);
    f = write_chain("empty.log", &c);
    assert_int_equal(verify1(f, NULL, &res), 0);
    assert_int_equal(res.records, 0);
    assert_int_equal(res.checkpoints, 0);
    assert_int_equal(verify1(f, pub_a, &res), 0);
}

/* ---- handing the lines to a reader ---- */

/* What sg_audit_verify_each handed over: the line numbers, and that each line was the one in
 * the file (c->lines[lineno - 1] before any tampering of that line). */
typedef struct {
    const chain_t *c;
    unsigned long long lines[MAX_LINES];
    size_t n;
    size_t stop_after; /* 0: never stop */
} seen_t;

static int seen_cb(void *arg, const char *line, size_t n, const char *file,
                   unsigned long long lineno)
{
    seen_t *s = arg;

    (void)file;
    assert_true(lineno >= 1 && lineno <= s->c->n && s->n < MAX_LINES);
    assert_int_equal(n, strlen(s->c->lines[lineno - 1]));
    assert_memory_equal(line, s->c->lines[lineno - 1], n);
    s->lines[s->n++] = lineno;
    return s->stop_after != 0 && s->n == s->stop_after;
}

static void assert_seen_up_to(const seen_t *s, unsigned long long last)
{
    assert_int_equal(s->n, last);
    for (size_t i = 0; i < s->n; i++)
        assert_int_equal(s->lines[i], i + 1);
}

static void reader_gets_every_line_of_a_chain_that_holds(void **state)
{
    sg_audit_verify_result_t res;
    seen_t seen = {0};
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 9, 4, signer_a); /* 9 records, 2 checkpoints */
    f = write_chain("each-ok.log", &c);
    seen.c = &c;
    assert_int_equal(sg_audit_verify_each(&f, 1, pub_a, seen_cb, &seen, &res), 0);
    assert_seen_up_to(&seen, 11);
    assert_int_equal(res.records, 9);
    chain_free(&c);
}

static void reader_gets_the_lines_before_the_first_bad_one_only(void **state)
{
    sg_audit_verify_result_t res;
    seen_t seen = {0};
    chain_t c, orig;
    const char *f;

    (void)state;
    /* An edit of line 5 is found on line 6: lines 1-4 only, never the edited one. */
    chain_build(&c, 9, 0, NULL);
    chain_build(&orig, 9, 0, NULL);
    chain_edit(&c, 4, "req-5", "req-7");
    f = write_chain("each-edit.log", &c);
    seen.c = &orig;
    assert_fails_at(sg_audit_verify_each(&f, 1, NULL, seen_cb, &seen, &res), &res, f, 5, "edited");
    assert_seen_up_to(&seen, 4);

    /* The last line's prev changed: with no line after it the verifier names the line before
     * (it cannot tell which of the two changed); neither is handed over. */
    chain_free(&c);
    chain_build(&c, 9, 0, NULL);
    c.lines[8][strlen("{\"seq\":9,\"prev\":\"") + 3] ^= 1;
    f = write_chain("each-edit-end.log", &c);
    memset(&seen, 0, sizeof(seen));
    seen.c = &orig;
    assert_fails_at(sg_audit_verify_each(&f, 1, NULL, seen_cb, &seen, &res), &res, f, 8, "edited");
    assert_seen_up_to(&seen, 7);

    /* A deletion after line 3: lines 1-3. */
    chain_free(&c);
    chain_build(&c, 8, 0, NULL);
    chain_remove(&c, 3);
    f = write_chain("each-delete.log", &c);
    memset(&seen, 0, sizeof(seen));
    seen.c = &c;
    assert_fails_at(sg_audit_verify_each(&f, 1, NULL, seen_cb, &seen, &res), &res, f, 4,
                    "deleted line(s) before this one");
    assert_seen_up_to(&seen, 3);
    chain_free(&c);
    chain_free(&orig);
}

static void reader_that_stops_ends_the_verification(void **state)
{
    sg_audit_verify_result_t res;
    seen_t seen = {0};
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 6, 0, NULL);
    f = write_chain("each-stop.log", &c);
    seen.c = &c;
    seen.stop_after = 2;
    assert_int_equal(sg_audit_verify_each(&f, 1, NULL, seen_cb, &seen, &res), -1);
    assert_string_equal(res.why, "stopped by the reader");
    assert_seen_up_to(&seen, 2);

    /* Stopping at the very last line is reported too. */
    memset(&seen, 0, sizeof(seen));
    seen.c = &c;
    seen.stop_after = 6;
    assert_int_equal(sg_audit_verify_each(&f, 1, NULL, seen_cb, &seen, &res), -1);
    assert_seen_up_to(&seen, 6);
    chain_free(&c);
}

/* ---- tampering ---- */

static void edit_of_the_first_line_is_reported_at_that_line(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 5, 0, NULL);
    chain_edit(&c, 0, "allow", "allox");
    f = write_chain("edit-first.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 1, "edited");
    chain_free(&c);
}

static void edit_of_a_middle_line_is_reported_at_that_line(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 9, 0, NULL);
    chain_edit(&c, 4, "req-5", "req-7");
    f = write_chain("edit-mid.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 5, "edited");

    /* An edit of a line's own prev breaks its link and the next one: still that line. */
    chain_free(&c);
    chain_build(&c, 9, 0, NULL);
    c.lines[6][strlen("{\"seq\":7,\"prev\":\"") + 10] ^= 1;
    f = write_chain("edit-prev.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 7, "edited");

    /* An edit of the seq alone keeps the link: that line. */
    chain_free(&c);
    chain_build(&c, 9, 0, NULL);
    chain_edit(&c, 3, "{\"seq\":4", "{\"seq\":8");
    f = write_chain("edit-seq.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 4, "edited");
    chain_free(&c);
}

static void edit_of_the_last_record_before_a_checkpoint_is_reported_at_that_record(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 6, 6, signer_a); /* records 1-6, checkpoint line 7 */
    chain_edit(&c, 5, "allow", "Allow");
    f = write_chain("edit-last.log", &c);
    assert_fails_at(verify1(f, pub_a, &res), &res, f, 6, "edited");
    assert_fails_at(verify1(f, NULL, &res), &res, f, 6, "edited");
    chain_free(&c);
}

static void deleted_line_is_reported_on_the_line_after_it(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 8, 0, NULL);
    chain_remove(&c, 3);
    f = write_chain("delete.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 4, "deleted line(s) before this one");

    /* Deleting the very last line before the end of the file: still seen from the jump. */
    chain_free(&c);
    chain_build(&c, 8, 0, NULL);
    chain_remove(&c, 6);
    f = write_chain("delete-end.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 7, "deleted line(s) before this one");
    chain_free(&c);
}

static void swapped_lines_are_reported_as_reordered(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;
    char *t;

    (void)state;
    chain_build(&c, 8, 0, NULL);
    t = c.lines[2], c.lines[2] = c.lines[3], c.lines[3] = t;
    f = write_chain("swap.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 3, "inserted or reordered");

    /* Swapped last two lines. */
    chain_free(&c);
    chain_build(&c, 8, 0, NULL);
    t = c.lines[6], c.lines[6] = c.lines[7], c.lines[7] = t;
    f = write_chain("swap-end.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 7, "inserted or reordered");
    chain_free(&c);
}

static void inserted_line_is_reported_at_the_insertion(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    /* A copy of an earlier line (a replay). */
    chain_build(&c, 8, 0, NULL);
    chain_insert(&c, 5, c.lines[1]);
    f = write_chain("insert-copy.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 6, "inserted or reordered");
    chain_free(&c);

    /* A forged line that takes the next seq and even links to the line before it. */
    chain_build(&c, 8, 0, NULL);
    {
        sg_buf_t b;
        char h[SG_AUDIT_HASH_HEX + 1];
        sg_audit_hash_hex(c.lines[4], strlen(c.lines[4]), h);
        sg_buf_init(&b, 4096);
        assert_int_equal(sg_audit_prefix(&b, 6, h), SG_OK);
        assert_int_equal(sg_buf_appendf(&b, "\"stage\":\"decision\",\"request_id\":\"forged\"}"),
                         SG_OK);
        sg_buf_append(&b, "", 1);
        chain_insert(&c, 5, sg_buf_head(&b));
        sg_buf_dispose(&b);
    }
    f = write_chain("insert-forged.log", &c);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 7, "inserted or reordered");
    chain_free(&c);
}

static void truncated_middle_line_is_reported(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *files[2];

    (void)state;
    chain_build(&c, 8, 0, NULL);
    /* The end of a rotated file cut off: an unterminated line before the next file. */
    c.lines[3][20] = '\0';
    files[0] = write_lines("trunc.1", &c, 0, 3, "\n", c.lines[3]);
    files[1] = write_lines("trunc.2", &c, 4, c.n, "\n", NULL);
    assert_int_equal(sg_audit_verify(files, 2, NULL, &res), 1);
    assert_string_equal(res.file, files[0]);
    assert_int_equal(res.line, 4);
    assert_string_equal(res.why, "truncated in the middle");

    /* Inside one file the cut line keeps a newline and is no longer a record. */
    files[0] = write_chain("trunc-one.log", &c);
    assert_fails_at(verify1(files[0], NULL, &res), &res, files[0], 4, "not a record");
    chain_free(&c);
}

static void torn_last_line_is_a_note_not_a_failure(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 4, 0, NULL);
    f = write_lines("torn.log", &c, 0, c.n, "\n", "{\"seq\":5,\"prev\":\"ab");
    assert_int_equal(verify1(f, NULL, &res), 0);
    assert_int_equal(res.records, 4);
    assert_non_null(strstr(res.notes, "torn.log:5: torn last line (crash while writing): "
                                      "not counted"));
    chain_free(&c);
}

static void rewritten_tail_is_caught_with_the_key_only(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 12, 4, signer_a); /* checkpoints at lines 5, 10, 15 */
    chain_edit(&c, 6, "allow", "deny!");
    chain_rehash_from(&c, 6);
    f = write_chain("rewrite.log", &c);
    assert_int_equal(verify1(f, NULL, &res), 0);
    assert_fails_at(verify1(f, pub_a, &res), &res, f, 10, "bad checkpoint signature");
    chain_free(&c);
}

static void wrong_key_fails_the_first_checkpoint(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 6, 3, signer_a);
    f = write_chain("wrongkey.log", &c);
    assert_fails_at(verify1(f, pub_b, &res), &res, f, 4, "bad checkpoint signature");
    chain_free(&c);
}

static void checkpoint_signed_by_another_key_is_refused(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;
    char *ka, *kb;
    chain_t other;

    (void)state;
    /* An intruder with key B writes a checkpoint whose key id claims to be A. */
    chain_build(&c, 3, 0, NULL);
    chain_checkpoint(&c, signer_b);
    chain_build(&other, 1, 1, signer_a);
    ka = strstr(other.lines[1], "\"key\":\"");
    kb = strstr(c.lines[3], "\"key\":\"");
    memcpy(kb, ka, 7 + 16);
    chain_record(&c);
    chain_rehash_from(&c, 3);
    f = write_chain("otherkey.log", &c);
    assert_fails_at(verify1(f, pub_a, &res), &res, f, 4, "bad checkpoint signature");
    assert_int_equal(verify1(f, NULL, &res), 0);
    /* With its own key id it fails too. */
    chain_free(&c);
    chain_build(&c, 3, 3, signer_b);
    f = write_chain("otherkey2.log", &c);
    assert_fails_at(verify1(f, pub_a, &res), &res, f, 4, "bad checkpoint signature");
    assert_int_equal(verify1(f, pub_b, &res), 0);
    chain_free(&c);
    chain_free(&other);
}

static void checkpoint_signature_with_a_flipped_character_is_refused(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;
    char *s;

    (void)state;
    chain_build(&c, 2, 2, signer_a);
    s = strstr(c.lines[2], "\"sig\":\"") + 7;
    s[10] = s[10] == 'A' ? 'B' : 'A';
    f = write_chain("badsig.log", &c);
    assert_fails_at(verify1(f, pub_a, &res), &res, f, 3, "bad checkpoint signature");
    chain_free(&c);
}

static void crlf_line_endings_are_refused(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 3, 0, NULL);
    f = write_lines("crlf.log", &c, 0, c.n, "\r\n", NULL);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 1,
                    "not a record (CRLF line ending: file converted?)");
    chain_free(&c);
}

static void non_json_line_is_not_a_record(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;

    (void)state;
    chain_build(&c, 3, 0, NULL);
    f = write_lines("garbage.log", &c, 0, c.n, "\n", "hello world\n");
    assert_fails_at(verify1(f, NULL, &res), &res, f, 4, "not a record");
    f = write_lines("badjson.log", &c, 0, c.n, "\n",
                    "{\"seq\":4,\"prev\":\"0000000000000000000000000000000000000000000000000000"
                    "000000000000\",\"x\":}\n");
    assert_fails_at(verify1(f, NULL, &res), &res, f, 4, "not a record");
    chain_free(&c);
}

static void line_over_one_mib_is_refused(void **state)
{
    sg_audit_verify_result_t res;
    chain_t c;
    const char *f;
    char *big;
    size_t n = SG_AUDIT_MAX_LINE + 10;

    (void)state;
    chain_build(&c, 2, 0, NULL);
    assert_non_null(big = malloc(n + 2));
    memset(big, 'x', n);
    big[n] = '\n';
    big[n + 1] = '\0';
    f = write_lines("big.log", &c, 0, c.n, "\n", big);
    assert_fails_at(verify1(f, NULL, &res), &res, f, 3, "line too long");
    free(big);
    chain_free(&c);
}

static void missing_file_and_bad_key_are_io_errors(void **state)
{
    sg_audit_verify_result_t res;
    const char *f = path_in("does-not-exist.log");
    chain_t c;

    (void)state;
    assert_int_equal(verify1(f, NULL, &res), -1);
    assert_string_equal(res.file, f);
    assert_non_null(strstr(res.why, "No such file"));
    chain_build(&c, 1, 0, NULL);
    f = write_chain("keyerr.log", &c);
    assert_int_equal(verify1(f, pub_rsa, &res), -1);
    assert_string_equal(res.file, pub_rsa);
    assert_int_equal(verify1(f, priv_a, &res), -1);
    chain_free(&c);
}

/* ---- sg_audit_tail ---- */

static void tail_of_an_empty_file_starts_a_new_chain(void **state)
{
    unsigned long long seq = 99;
    char h[65];
    size_t torn = 99;

    (void)state;
    assert_int_equal(sg_audit_tail("", 0, &seq, h, &torn), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(torn, 0);
    assert_string_equal(h, "0000000000000000000000000000000000000000000000000000000000000000");
}

static void tail_of_one_line_returns_its_seq_and_hash(void **state)
{
    unsigned long long seq;
    char h[65];
    size_t torn;
    chain_t c;
    char buf[1024];

    (void)state;
    chain_build(&c, 1, 0, NULL);
    snprintf(buf, sizeof(buf), "%s\n", c.lines[0]);
    assert_int_equal(sg_audit_tail(buf, strlen(buf), &seq, h, &torn), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(torn, 0);
    assert_string_equal(h, c.hash);
    chain_free(&c);
}

static void tail_reports_the_torn_bytes_and_the_line_before(void **state)
{
    unsigned long long seq;
    char h[65];
    size_t torn;
    chain_t c;
    char buf[4096];

    (void)state;
    chain_build(&c, 3, 3, signer_a);
    snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%s\n{\"seq\":5,\"pr", c.lines[0], c.lines[1],
             c.lines[2], c.lines[3]);
    assert_int_equal(sg_audit_tail(buf, strlen(buf), &seq, h, &torn), 0);
    assert_int_equal(seq, 4);
    assert_int_equal(torn, strlen("{\"seq\":5,\"pr"));
    assert_string_equal(h, c.hash);
    /* The writer read only the end of the file: the buffer starts mid-line. */
    const char *mid = strstr(buf, c.lines[2]) + 5;
    assert_int_equal(sg_audit_tail(mid, strlen(mid), &seq, h, &torn), 0);
    assert_int_equal(seq, 4);
    /* Only a torn line: a fresh chain after the cut. */
    assert_int_equal(sg_audit_tail("{\"seq\":1,\"pr", 12, &seq, h, &torn), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(torn, 12);
    chain_free(&c);
}

static void tail_of_garbage_fails(void **state)
{
    unsigned long long seq;
    char h[65];
    size_t torn;
    static const char badprev[] = "{\"seq\":1,\"prev\":\"0\",\"x\":1}\n";
    static const char zero[] = "{\"seq\":01,\"prev\":\"0000000000000000000000000000000000000000000"
                               "000000000000000000000\",\"x\":1}\n";

    (void)state;
    assert_int_equal(sg_audit_tail("hello\nworld\n", 12, &seq, h, &torn), -1);
    assert_int_equal(sg_audit_tail("\n", 1, &seq, h, &torn), -1);
    assert_int_equal(sg_audit_tail(badprev, sizeof(badprev) - 1, &seq, h, &torn), -1);
    assert_int_equal(sg_audit_tail(zero, sizeof(zero) - 1, &seq, h, &torn), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefix_has_the_exact_shape),
        cmocka_unit_test(hash_is_lowercase_hex_sha256),
        cmocka_unit_test(prefix_leaves_a_full_buffer_unchanged),
        cmocka_unit_test(reused_hasher_matches_the_one_shot_hash_line_after_line),
        cmocka_unit_test(checkpoint_line_has_key_id_and_unpadded_base64url_signature),
        cmocka_unit_test(checkpoint_refuses_a_time_that_could_end_the_string),
        cmocka_unit_test(signer_refuses_missing_and_non_ed25519_keys),
        cmocka_unit_test(intact_chain_in_one_file_verifies),
        cmocka_unit_test(rotated_files_continue_the_chain),
        cmocka_unit_test(empty_file_verifies_with_no_records),
        cmocka_unit_test(reader_gets_every_line_of_a_chain_that_holds),
        cmocka_unit_test(reader_gets_the_lines_before_the_first_bad_one_only),
        cmocka_unit_test(reader_that_stops_ends_the_verification),
        cmocka_unit_test(edit_of_the_first_line_is_reported_at_that_line),
        cmocka_unit_test(edit_of_a_middle_line_is_reported_at_that_line),
        cmocka_unit_test(edit_of_the_last_record_before_a_checkpoint_is_reported_at_that_record),
        cmocka_unit_test(deleted_line_is_reported_on_the_line_after_it),
        cmocka_unit_test(swapped_lines_are_reported_as_reordered),
        cmocka_unit_test(inserted_line_is_reported_at_the_insertion),
        cmocka_unit_test(truncated_middle_line_is_reported),
        cmocka_unit_test(torn_last_line_is_a_note_not_a_failure),
        cmocka_unit_test(rewritten_tail_is_caught_with_the_key_only),
        cmocka_unit_test(wrong_key_fails_the_first_checkpoint),
        cmocka_unit_test(checkpoint_signed_by_another_key_is_refused),
        cmocka_unit_test(checkpoint_signature_with_a_flipped_character_is_refused),
        cmocka_unit_test(crlf_line_endings_are_refused),
        cmocka_unit_test(non_json_line_is_not_a_record),
        cmocka_unit_test(line_over_one_mib_is_refused),
        cmocka_unit_test(missing_file_and_bad_key_are_io_errors),
        cmocka_unit_test(tail_of_an_empty_file_starts_a_new_chain),
        cmocka_unit_test(tail_of_one_line_returns_its_seq_and_hash),
        cmocka_unit_test(tail_reports_the_torn_bytes_and_the_line_before),
        cmocka_unit_test(tail_of_garbage_fails),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
