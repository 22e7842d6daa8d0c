/*
 * tools/smsguard-audit.c - checks an audit log's hash chain and checkpoint signatures.
 *
 *   smsguard-audit verify FILE... [--key PUB] [--syslog]
 *                                               files in chain order (oldest rotated first);
 *                                               options may come anywhere after "verify";
 *                                               --syslog: the files hold the RFC 5424 copies
 *                                               a syslog receiver wrote (audit/rfc5424.h),
 *                                               which a file starting with '<' is taken for
 *   smsguard-audit --version
 *
 * Exit codes: 0 the chain holds ("ok: N records, M checkpoints (signatures checked|not
 * checked)" and notes on stdout); 1 the first bad line ("FILE:LINE: why" on stdout); 2 usage or
 * I/O error ("FILE: reason" on stderr). The checking itself is audit/chain.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"

#ifndef SG_VERSION
#define SG_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out, "usage: smsguard-audit verify FILE... [--key PUB] [--syslog]\n"
                 "       smsguard-audit --version\n");
}

static int cmd_verify(int argc, char **argv)
{
    const char **files = calloc((size_t)argc + 1, sizeof(*files));
    const char *key = NULL;
    size_t nfiles = 0;
    sg_audit_verify_result_t res;
    unsigned flags = 0;
    int rv, dashdash = 0;

    if (files == NULL) {
        perror("smsguard-audit");
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = 1;
        } else if (!dashdash && strcmp(a, "--key") == 0) {
            if (i + 1 >= argc || key != NULL)
                goto usage;
            key = argv[++i];
        } else if (!dashdash && strcmp(a, "--syslog") == 0) {
            flags |= SG_AUDIT_VERIFY_SYSLOG;
        } else if (!dashdash && strncmp(a, "--key=", 6) == 0) {
            if (key != NULL || a[6] == '\0')
                goto usage;
            key = a + 6;
        } else if (!dashdash && a[0] == '-' && a[1] != '\0') {
            goto usage;
        } else {
            files[nfiles++] = a;
        }
    }
    if (nfiles == 0)
        goto usage;

    rv = sg_audit_verify_ex(files, nfiles, key, flags, &res);
    if (rv < 0) {
        fprintf(stderr, "%s: %s\n", res.file != NULL ? res.file : "smsguard-audit", res.why);
        free(files);
        return 2;
    }
    if (rv == 0)
        printf("ok: %llu records, %llu checkpoints (signatures %s)\n", res.records, res.checkpoints,
               key != NULL ? "checked" : "not checked");
    else
        printf("%s:%llu: %s\n", res.file, res.line, res.why);
    if (res.notes[0] != '\0')
        printf("%s\n", res.notes);
    free(files);
    return rv == 0 ? 0 : 1;
usage:
    usage(stderr);
    free(files);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("smsguard-audit %s\n", SG_VERSION);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    usage(stderr);
    return 2;
}
