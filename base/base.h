/*
 * base/base.h - the ground floor, whole: what every other folder may use.
 *
 * base/ knows nothing of requests, configuration or sockets: return codes (defs.h), the
 * error log (log.h), per-request pools (pool.h), bounded buffers (buf.h), strings, UTF-8
 * and the one escaper (str.h), clocks (clock.h), base64url (b64.h), the bounded file
 * reader (file.h) and the one strict JSON reader (json.h). Nothing in base/ includes a file
 * of another folder (scripts/floors.cmake checks it); every other folder includes this
 * header or one of its parts.
 */
#ifndef SG_BASE_H
#define SG_BASE_H

/* The standard headers nearly every file needs with the above. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "base/defs.h"

#include "base/b64.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/pool.h"
#include "base/str.h"

#endif
