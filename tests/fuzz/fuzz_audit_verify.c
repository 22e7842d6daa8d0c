/*
 * tests/fuzz/fuzz_audit_verify.c - audit log files through sg_audit_verify(),
 * sg_audit_verify_each() and sg_audit_tail().
 *
 * The input is split at NUL bytes into up to four files (a NUL is never valid inside a
 * record, so this costs the fuzzer nothing), written to memfds and verified in order, once
 * without a key and once with a fixed Ed25519 test key, so that seeds can carry checkpoints
 * that verify and mutations reach the paths after a good signature. sg_audit_tail() sees the
 * whole input as the end of a file. Nothing may crash, leak or read out of bounds; the
 * invariants checked are the documented return codes, that a failure names a line, and that
 * a reader gets the same result, each line once, in order, all of a chain that holds and
 * none at or after the line a failure names.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit/chain.h"

#define FZ_FILES 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test-only key: the seeds' checkpoints are signed with its private half, which is
 *   MC4CAQAwBQYDK2VwBCIEIJE2tHbs9Dw8QcdMnK9hyJVe+kvyEK2S1LfxadFJ21vv
 * (PKCS#8 PEM body); never use it for anything else. */
static const char fz_pub_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                 "MCowBQYDK2VwAyEACd7uyeZnnCLkA/WXfbcF/C8X/q1YpnKxsO+mdCtLop8=\n"
                                 "-----END PUBLIC KEY-----\n";

static int fz_fd[FZ_FILES] = {-1, -1, -1, -1}, fz_key_fd = -1;
static char fz_path[FZ_FILES][64], fz_key_path[64];

static int fz_memfd(const char *name, char path[64])
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

static void fz_fill(int fd, const uint8_t *p, size_t n)
{
    if (ftruncate(fd, 0) != 0 || (n > 0 && pwrite(fd, p, n, 0) != (ssize_t)n))
        abort();
}

static void fz_init(void)
{
    if (fz_key_fd >= 0)
        return;
    for (int i = 0; i < FZ_FILES; i++)
        fz_fd[i] = fz_memfd("audit", fz_path[i]);
    fz_key_fd = fz_memfd("audit-key", fz_key_path);
    fz_fill(fz_key_fd, (const uint8_t *)fz_pub_pem, sizeof(fz_pub_pem) - 1);
}

static void fz_check(int rv, const sg_audit_verify_result_t *res)
{
    if (rv == 1 && (res->file == NULL || res->line == 0 || res->why[0] == '\0'))
        abort();
    if (rv != 0 && rv != 1)
        abort(); /* memfds do not fail to read */
    if (memchr(res->notes, '\0', sizeof(res->notes)) == NULL)
        abort();
}

/* Where the reader is: the position (file index, line) of the last line handed over. */
typedef struct {
    const char *const *files;
    size_t nfiles, file;
    unsigned long long line, count;
} fz_seen_t;

static size_t fz_file_index(const fz_seen_t *s, const char *file)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i] == file)
            return i;
    abort();
}

static int fz_seen_cb(void *arg, const char *line, size_t n, const char *file,
                      unsigned long long lineno)
{
    fz_seen_t *s = arg;
    size_t f = fz_file_index(s, file);

    if (n > SG_AUDIT_MAX_LINE || memchr(line, '\n', n) != NULL || lineno == 0 ||
        (s->count > 0 && (f < s->file || (f == s->file && lineno <= s->line))))
        abort();
    s->file = f;
    s->line = lineno;
    s->count++;
    return 0;
}

static void fz_check_each(const char *const *files, size_t nfiles, const char *key)
{
    sg_audit_verify_result_t res, res_each;
    fz_seen_t seen = {files, nfiles, 0, 0, 0};
    int rv = sg_audit_verify(files, nfiles, key, &res);
    int rv_each = sg_audit_verify_each(files, nfiles, key, fz_seen_cb, &seen, &res_each);

    fz_check(rv_each, &res_each);
    if (rv != rv_each || res.line != res_each.line || strcmp(res.why, res_each.why) != 0)
        abort();
    if (rv == 0 && seen.count != res.records + res.checkpoints)
        abort();
    if (rv == 1 && seen.count > 0) {
        size_t f = fz_file_index(&seen, res_each.file);
        if (seen.file > f || (seen.file == f && seen.line >= res_each.line))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *files[FZ_FILES];
    sg_audit_verify_result_t res;
    unsigned long long seq;
    char hash[SG_AUDIT_HASH_HEX + 1];
    size_t nfiles = 0, off = 0, torn;

    fz_init();
    if (sg_audit_tail((const char *)data, size, &seq, hash, &torn) == 0 &&
        (torn > size || strlen(hash) != SG_AUDIT_HASH_HEX))
        abort();

    while (nfiles < FZ_FILES) {
        const uint8_t *nul = nfiles + 1 < FZ_FILES ? memchr(data + off, 0, size - off) : NULL;
        size_t n = nul != NULL ? (size_t)(nul - (data + off)) : size - off;

        fz_fill(fz_fd[nfiles], data + off, n);
        files[nfiles] = fz_path[nfiles];
        nfiles++;
        if (nul == NULL)
            break;
        off += n + 1;
    }
    fz_check(sg_audit_verify(files, nfiles, NULL, &res), &res);
    fz_check(sg_audit_verify(files, nfiles, fz_key_path, &res), &res);
    fz_check_each(files, nfiles, NULL);
    fz_check_each(files, nfiles, fz_key_path);
    return 0;
}
