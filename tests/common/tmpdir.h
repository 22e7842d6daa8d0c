/*
 * tests/common/tmpdir.h - one scratch directory per test program, for the keys,
 * certificates and configuration files the tests generate at run time (nothing
 * secret is ever checked in).
 */
#ifndef SG_TEST_TMPDIR_H
#define SG_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mkdtemp(3) on "/tmp/<prefix>-" plus its six-character template; the path is written
 * into buf (n bytes). Returns buf, or NULL when the directory cannot be made. */
static inline char *sg_test_mkdtemp(char *buf, size_t n, const char *prefix)
{
    int k = snprintf(buf, n, "/tmp/%s-", prefix);

    if (k < 0 || (size_t)k + 7 > n)
        return NULL;
    memset(buf + k, 'X', 6); /* the template mkdtemp fills in */
    buf[k + 6] = '\0';
    return mkdtemp(buf);
}

#endif
