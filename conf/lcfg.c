/*
 * conf/lcfg.c - reading the configuration file with libconfig, and what libconfig 1.5
 * (Debian 12) gets wrong.
 *
 * This file owns the file's bytes until libconfig has parsed them: the read (with
 * base/'s bounded reader, for an errno libconfig does not give), the directory every
 * relative path and @include resolves against, and a lexical scan of the text before and
 * after the parse (below). It leaves the tree to walk.c.
 */
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "conf/conf-int.h"

#define CK_INCLUDE_DEPTH 10 /* libconfig's own @include limit */

/* ---- @include'd files and 32-bit integer literals ------------------------------------ */

/*
 * libconfig 1.5 (Debian 12) silently wraps an integer literal that does not fit in 32
 * bits (5000000000 reads as 705032704, well inside most ranges). So the file's text is
 * scanned once after a successful parse, with libconfig's lexical rules (comments,
 * strings, names, @include), and any integer literal outside int32 without the 'L'
 * suffix is an error at its own line (ints = 1).
 *
 * The same scan runs once before the parse with ints = 0, only to check that every
 * @include'd file is a regular file we can read: libconfig fopen()s the name itself, and
 * when reading then fails (a directory: EISDIR) its flex scanner calls exit(2) ("input in
 * flex scanner failed"), which would end the whole process on a SIGHUP reload. A NUL byte
 * is refused first (ck_text): the scan stops at one, libconfig does not.
 */
static int ck_scan(ck_t *ck, const char *file, const char *p, int depth, int ints);

/* B, read from FILE, is text: no NUL byte. Returns 0, or -1 with the error at its line. */
static int ck_text(ck_t *ck, const char *file, const sg_file_t *b)
{
    const unsigned char *nul = memchr(b->data, '\0', b->len);
    int line = 1;

    if (nul == NULL)
        return 0;
    for (const unsigned char *q = b->data; q < nul; q++)
        line += *q == '\n';
    return ck_errat(ck, file, line, "NUL byte in the file");
}

static int ck_scan_include(ck_t *ck, const char *file, int line, const char *name, int depth,
                           int ints)
{
    sg_file_t b = {NULL, 0, 0};
    char *path = NULL;
    const char *why;
    int rc = -1;

    if (depth >= CK_INCLUDE_DEPTH)
        return ck_errat(ck, file, line, "@include nested too deeply");
    /* The same name libconfig opened (include_dir + "/" + name). */
    if (asprintf(&path, "%s/%s", ck->dir, name) < 0) {
        path = NULL;
        ck_err(ck, NULL, "out of memory");
        goto out;
    }
    if (sg_file_read(&b, path, CK_FILE_MAX, 0, &why) != SG_OK) {
        ck_errat(ck, file, line, "cannot read '%s': %s", path, why);
        goto out;
    }
    if (ck_text(ck, path, &b) != 0)
        goto out;
    rc = ck_scan(ck, path, (const char *)b.data, depth + 1, ints);
out:
    sg_file_dispose(&b);
    free(path);
    return rc;
}

static int ck_scan(ck_t *ck, const char *file, const char *p, int depth, int ints)
{
    char name[PATH_MAX];
    const char *q;
    long long v;
    size_t n;
    int line = 1, hex;

    while (*p != '\0') {
        if (*p == '\n') {
            line++;
            p++;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
                line += *p == '\n';
            p += *p != '\0' ? 2 : 0;
        } else if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                line += *p == '\n';
            }
            p += *p != '\0';
        } else if (strncmp(p, "@include", 8) == 0) {
            for (p += 8; *p == ' ' || *p == '\t'; p++)
                ;
            if (*p != '"')
                continue; /* libconfig refuses it */
            /* Exactly the name libconfig will open, or refused: its escapes and line
             * breaks in a name are its own business, and the name must be the one
             * checked here. */
            for (p++, n = 0; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
                    return ck_errat(ck, file, line,
                                    "@include: a file name with '\\' or a control character");
                if (n + 1 >= sizeof(name))
                    return ck_errat(ck, file, line, "@include: file name too long");
                name[n++] = *p;
            }
            name[n] = '\0';
            if (*p != '"')
                continue; /* unterminated: libconfig refuses it */
            p++;
            if (ck_scan_include(ck, file, line, name, depth, ints) != 0)
                return -1;
        } else if (isalpha((unsigned char)*p) || *p == '*') {
            while (isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '*')
                p++;
        } else if (isdigit((unsigned char)*p) ||
                   ((*p == '-' || *p == '+') && isdigit((unsigned char)p[1]))) {
            q = p + (*p == '-' || *p == '+');
            hex = q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
            for (q += hex ? 2 : 0; hex ? isxdigit((unsigned char)*q) : isdigit((unsigned char)*q);)
                q++;
            if (!hex && (*q == '.' || *q == 'e' || *q == 'E')) {
                while (*q != '\0' && strchr("0123456789.eE+-", *q) != NULL)
                    q++; /* a float: not ours to check */
            } else if (*q == 'L') {
                q++; /* an explicit 64-bit integer: libconfig reads those right */
            } else {
                errno = 0;
                v = strtoll(p, NULL, hex ? 16 : 10);
                /* libconfig takes 0x80000000..0xFFFFFFFF as negative: refuse those too. */
                if (ints && (errno == ERANGE || v < INT_MIN || v > INT_MAX))
                    return ck_errat(ck, file, line, "integer '%.*s' is out of range",
                                    (int)(q - p > 40 ? 40 : q - p), p);
            }
            p = q;
        } else {
            p++;
        }
    }
    return 0;
}

/* ---- reading the file ---------------------------------------------------------------- */

/* ck->dir: the absolute directory of the configuration file. */
static int ck_dir(ck_t *ck)
{
    char *copy = strdup(ck->file), *slash;
    const char *dir;
    int rc = -1;

    if (copy == NULL)
        return ck_err(ck, NULL, "out of memory");
    slash = strrchr(copy, '/');
    if (slash == NULL)
        dir = ".";
    else if (slash == copy)
        dir = "/";
    else {
        *slash = '\0';
        dir = copy;
    }
    ck->dir = realpath(dir, NULL);
    if (ck->dir == NULL) {
        ck_err(ck, NULL, "cannot resolve directory '%s': %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

int ck_read(ck_t *ck)
{
    char name[PATH_MAX];
    sg_file_t b = {NULL, 0, 0};
    const char *why;
    int rc = -1;

    /* Read it ourselves first: libconfig says only "file I/O error", without errno. */
    if (sg_file_read(&b, ck->file, CK_FILE_MAX, 0, &why) != SG_OK) {
        ck_err(ck, NULL, "cannot read: %s", why);
        goto out;
    }
    if (ck_dir(ck) != 0)
        goto out;
    config_set_include_dir(ck->cf, ck->dir); /* @include resolves like the file paths */
    if (ck_text(ck, ck->file, &b) != 0 || ck_scan(ck, ck->file, (const char *)b.data, 0, 0) != 0)
        goto out; /* an @include libconfig cannot read safely */
    if (config_read_file(ck->cf, ck->file) != CONFIG_TRUE) {
        ck_errat(ck, ck_file_name(ck, config_error_file(ck->cf), name, sizeof(name)),
                 config_error_line(ck->cf), "%s", config_error_text(ck->cf));
        goto out;
    }
    if (ck_scan(ck, ck->file, (const char *)b.data, 0, 1) != 0)
        goto out;
    rc = 0;
out:
    sg_file_dispose(&b);
    return rc;
}
