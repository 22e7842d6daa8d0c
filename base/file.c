/*
 * base/file.c - sg_file_read: open, check, read to EOF, or fail (see file.h).
 */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/defs.h"

void sg_secret_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    explicit_bzero(p, n); /* not optimised away as a dead store before free() */
    free(p);
}

void sg_file_dispose(sg_file_t *f)
{
    if (f->data != NULL) {
        if (f->flags & SG_FILE_SECRET)
            sg_secret_free(f->data, f->len + 1);
        else
            free(f->data);
    }
    f->data = NULL;
    f->len = 0;
}

int sg_file_read(sg_file_t *f, const char *path, size_t max, unsigned flags, const char **why)
{
    struct stat st;
    size_t size = 0;
    ssize_t r;
    int fd, rv = SG_ERR;

    f->data = NULL;
    f->len = 0;
    f->flags = flags;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0) {
        *why = strerror(errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file";
        goto out;
    }
    if ((unsigned long long)st.st_size > max) {
        *why = "file too large";
        rv = SG_ETOOBIG;
        goto out;
    }
    size = (size_t)st.st_size;
    if ((f->data = malloc(size + 1)) == NULL) {
        *why = "out of memory";
        rv = SG_ENOMEM;
        goto out;
    }
    /* Read to EOF, not to st_size, with room for one byte more: a file that grew under us
     * is refused instead of silently cut at its old size. */
    while (f->len <= size) {
        r = read(fd, f->data + f->len, size + 1 - f->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = strerror(errno);
            goto out;
        }
        if (r == 0)
            break;
        f->len += (size_t)r;
    }
    if (f->len > size) {
        *why = "changed while being read";
        goto out;
    }
    f->data[f->len] = '\0';
    rv = SG_OK;
out:
    if (fd >= 0)
        close(fd);
    if (rv != SG_OK && f->data != NULL) {
        /* Whatever was read may be part of a secret. */
        if (flags & SG_FILE_SECRET)
            explicit_bzero(f->data, size + 1);
        free(f->data);
        f->data = NULL;
        f->len = 0;
    }
    return rv;
}
