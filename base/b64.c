/*
 * base/b64.c - the one base64url codec (see b64.h for the rules the decoder enforces).
 */
#include "base/b64.h"

#include <stdint.h>

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* value + 1; 0 = not in the alphabet */
static const unsigned char b64_val[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

char *sg_b64url_put(char *o, const unsigned char *p, size_t n)
{
    size_t i;
    uint32_t v;

    for (i = 0; i + 3 <= n; i += 3) {
        v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_chars[v >> 18];
        *o++ = b64_chars[(v >> 12) & 63];
        *o++ = b64_chars[(v >> 6) & 63];
        *o++ = b64_chars[v & 63];
    }
    if (n - i == 1) {
        v = (uint32_t)p[i] << 16;
        *o++ = b64_chars[v >> 18];
        *o++ = b64_chars[(v >> 12) & 63];
    } else if (n - i == 2) {
        v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64_chars[v >> 18];
        *o++ = b64_chars[(v >> 12) & 63];
        *o++ = b64_chars[(v >> 6) & 63];
    }
    return o;
}

long sg_b64url_decode(unsigned char *out, const char *s, size_t n)
{
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0, v;

    if (n % 4 == 1)
        return -1;
    for (i = 0; i < n; i++) {
        if ((v = b64_val[(unsigned char)s[i]]) == 0)
            return -1;
        acc = (acc << 6 | (uint32_t)(v - 1)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Non-zero unused bits: a second spelling of the same bytes. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

int sg_b64url_valid(const char *s, size_t n)
{
    unsigned last = 0;

    if (n % 4 == 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((last = b64_val[(unsigned char)s[i]]) == 0)
            return 0;
    /* 2 or 3 characters left over carry 4 or 2 unused bits, which must be zero. */
    return n % 4 == 0 || ((last - 1) & (n % 4 == 2 ? 0x0f : 0x03)) == 0;
}
