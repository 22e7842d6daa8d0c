/*
 * base/file.h - the one bounded whole-file reader: configuration files, certificates,
 * keys and secrets, read at start-up and at every reload, never on the data path.
 *
 * One rule set for every caller: only a regular file (a FIFO or a device named by mistake
 * must neither hang nor flood the loader), at most a maximum the caller gives, read whole
 * or not at all, and a buffer that held a secret wiped before it is freed.
 */
#ifndef SG_BASE_FILE_H
#define SG_BASE_FILE_H

#include <stddef.h>

/* Flags of sg_file_read. SG_FILE_SECRET: the bytes are a key or a secret; every copy the
 * reader made is wiped before it is freed, on failure and by sg_file_dispose. */
#define SG_FILE_SECRET 1u

typedef struct {
    unsigned char *data; /* len bytes and a NUL (for text scanners) */
    size_t len;
    unsigned flags;
} sg_file_t;

/*
 * Reads path whole into f (malloc'd; sg_file_dispose frees it). Returns SG_OK, or SG_ERR,
 * SG_ETOOBIG (larger than max bytes) or SG_ENOMEM with f empty and *why a static string
 * or strerror()'s: open(2)'s error, "Is a directory", "not a regular file", "file too
 * large", "changed while being read" (it grew past its size while being read; a file that
 * shrank is read to its new end) or "out of memory".
 */
int sg_file_read(sg_file_t *f, const char *path, size_t max, unsigned flags, const char **why);
/* Frees f's bytes, wiped first when it was read with SG_FILE_SECRET; f is empty again. */
void sg_file_dispose(sg_file_t *f);
/* explicit_bzero(p, n) then free(p): for a secret kept after its sg_file_t (p may be NULL). */
void sg_secret_free(void *p, size_t n);

#endif
