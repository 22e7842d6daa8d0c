/*
 * base/defs.h - the return codes and the few macros every file of smsguard uses.
 *
 * Functions return 0 or a negative SG_E* code, as in libuv and nghttp2.
 */
#ifndef SG_BASE_DEFS_H
#define SG_BASE_DEFS_H

enum {
    SG_OK = 0,
    SG_ERR = -1,      /* generic failure; details logged where it happened */
    SG_ENOMEM = -2,   /* allocation failed */
    SG_ETOOBIG = -3,  /* a bounded buffer would exceed its maximum */
    SG_EAGAIN = -4,   /* would block; try again when the socket is ready */
    SG_ECLOSED = -5,  /* peer closed the connection */
    SG_EPROTO = -6,   /* peer violated the protocol */
    SG_ETIMEDOUT = -7 /* a deadline passed */
};

#define SG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SG_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
