/*
 * filters/handle.h - composite SmsTask handles (docs/design.md "Batch splitting and composite
 * tasks").
 *
 * When flt_batch splits a stop-test batch into several upstream calls, the client gets one SmsTask
 * reference whose value is a handle carrying everything needed to answer for it later: the
 * upstream (vCenter) it was made on, provider, release, tenant and, per part, the upstream task
 * (with the type the upstream gave) or the fault it failed with at submission. The handle is
 * signed with HMAC-SHA256 under batch.task_key_file, so any instance holding the key answers
 * for it, after restarts too, and nobody can forge one.
 *
 * Format (all of it URL-safe: only RFC 3986 unreserved characters, no padding):
 *
 *   "sgc1." base64url(PAYLOAD) "." base64url(HMAC-SHA256(key, PAYLOAD))
 *
 * PAYLOAD is compact JSON, exactly these members (any order on input, this order on output):
 *
 *   {"v":2,"u":UPSTREAM,"p":PROVIDER,"r":RELEASE,"t":TENANT,"parts":[PART,...]}
 *   PART = {"type":"SmsTask"|"Task","id":TASK_ID,"n":COUNT}   a part the upstream accepted
 *        | {"fault":{...},"n":COUNT}                          a part that failed at submission
 *
 * UPSTREAM is the name of the vCenter the parts were sent to (an upstream name of the
 * configuration: 1 to SG_HANDLE_UPSTREAM_MAX of [A-Za-z0-9_.-]); PROVIDER and TASK_ID are
 * non-empty; COUNT is the number of the client's groups (in order) the part carried, 1 or more.
 * Version 1, written before there were several vCenters, is the same without "u" and is read as
 * made on SG_HANDLE_V1_UPSTREAM. What the fields mean to a request (is this the caller's tenant
 * and vCenter?) is the caller's to check; this module only guarantees the bytes are ours and
 * well-formed.
 *
 * Pure: no proxy types and no I/O; OpenSSL for the MAC only.
 */
#ifndef SG_HANDLE_H
#define SG_HANDLE_H

#include <stddef.h>

#include "base/base.h"

#define SG_HANDLE_PREFIX "sgc1." /* starts every composite handle; never an upstream task id */
#define SG_HANDLE_MAX 8192       /* bytes of an encoded handle, at most */
#define SG_HANDLE_MAX_PARTS 1024
#define SG_HANDLE_KEY_MIN 32 /* bytes of HMAC key, at least (RFC 7518 3.2, as conf.c checks) */
#define SG_HANDLE_ID_MAX 64   /* bytes of an upstream task id a handle carries (sg_handle_id_ok) */
#define SG_HANDLE_TYPE_MAX 64 /* bytes of a fault type kept when faults are cut to their type */
#define SG_HANDLE_UPSTREAM_MAX 64 /* bytes of an upstream name (SG_CONF_NAME_MAX) */
/* The upstream a version-1 handle (no "u") was made on: handles issued before several vCenters
 * existed came from the one-vCenter form, whose upstream conf/ names "default". Reading them
 * so keeps a one-vCenter deployment answering the handles it gave out before an upgrade; on a
 * gateway without an upstream of that name they are another vCenter's, refused as such. */
#define SG_HANDLE_V1_UPSTREAM "default"

typedef struct {
    const char *type;  /* "SmsTask" or "Task": the type the upstream gave; NULL when failed */
    const char *value; /* the upstream task id; NULL when the part failed at submission */
    const char *fault; /* when failed at submission: the fault object as compact JSON text, else
                        * NULL */
    size_t count;      /* how many of the client's groups (in order) this part carried */
} sg_handle_part_t;

typedef struct {
    const char *upstream; /* the vCenter's name (SG_HANDLE_UPSTREAM_MAX of [A-Za-z0-9_.-]) */
    const char *provider, *release, *tenant; /* provider non-empty; release, tenant may be "" */
    sg_handle_part_t *parts;
    size_t nparts;
} sg_handle_t;

/* 1 when s[0,n) starts with SG_HANDLE_PREFIX. */
int sg_handle_is_composite(const char *s, size_t n);

/* 1 when id can be a part's task id: 1 to SG_HANDLE_ID_MAX bytes of printable ASCII other than
 * '"' and '\\' (its JSON form is itself, which sg_handle_capacity() counts on). vCenter's ids
 * ("SmsTask-42", "task-1234") are far shorter; a part whose id is not carried is the caller's to
 * report as a part whose answer was lost. */
int sg_handle_id_ok(const char *id);

/*
 * The most parts a handle for upstream, provider, release and tenant can carry whatever the
 * parts turn out to be: task ids that pass sg_handle_id_ok(), faults of any size
 * (sg_handle_encode() cuts them to their type when the whole would not fit), counts up to
 * max_count. sg_handle_encode() of such a
 * handle with at most this many parts never returns SG_ETOOBIG, so a caller that checks this
 * before sending anything never has to refuse a request after sending it. Also bounded by
 * SG_HANDLE_MAX_PARTS. 0 when not even one part fits (a provider id of kilobytes), when
 * provider, release or tenant are not valid UTF-8, or upstream is not an upstream name (no
 * handle can be made for them).
 */
size_t sg_handle_capacity(const char *upstream, const char *provider, const char *release,
                          const char *tenant, size_t max_count);

/*
 * Appends the handle: SG_HANDLE_PREFIX + base64url(payload) + "." +
 * base64url(HMAC-SHA256(key, payload)), URL-safe (only unreserved characters), no padding.
 * Faults are carried whole when the handle fits SG_HANDLE_MAX that way; otherwise every fault is
 * cut to {"_typeName":TYPE} (TYPE its own when at most SG_HANDLE_TYPE_MAX letters, digits, '_'
 * or '.', else "SystemError"), which is what sg_handle_capacity() counts with.
 *
 * Returns SG_OK, SG_ETOOBIG (over SG_HANDLE_MAX even with faults cut, more than
 * SG_HANDLE_MAX_PARTS parts, or out's own maximum), SG_ENOMEM, or SG_ERR when h is not
 * something sg_handle_decode() would return: no parts, an upstream that is not an upstream name,
 * a NULL or empty provider, NULL release/tenant, a count of 0, a part that is neither
 * (type "SmsTask"/"Task" + non-empty value) nor (fault text holding exactly one JSON object),
 * strings that are not valid UTF-8, or keylen < SG_HANDLE_KEY_MIN. The fault text is parsed and
 * written back compactly, so a fault cannot smuggle members into the payload. out is unchanged
 * on failure. Uses malloc for scratch memory, freed before it returns.
 */
int sg_handle_encode(const sg_handle_t *h, const unsigned char *key, size_t keylen, sg_buf_t *out);

/*
 * Verifies s[0,n) (constant-time MAC compare, before any payload byte is parsed) and decodes it
 * into *out; every string and the parts array live in pool.
 *
 * Returns SG_OK, SG_ENOMEM, or SG_ERR with *why one of these static reasons:
 *   "not a composite handle"  no SG_HANDLE_PREFIX
 *   "too large"               n > SG_HANDLE_MAX
 *   "malformed"               not two '.'-separated base64url parts (canonical, unpadded, no
 *                             other character, nothing after the MAC)
 *   "bad signature"           the MAC does not verify under key (or keylen < SG_HANDLE_KEY_MIN)
 *   "bad payload"             signed, but not the JSON described above (a bug or an old key)
 * *out is only meaningful on SG_OK; out->upstream is SG_HANDLE_V1_UPSTREAM for a version-1
 * handle.
 */
int sg_handle_decode(sg_pool_t *pool, const char *s, size_t n, const unsigned char *key,
                     size_t keylen, sg_handle_t *out, const char **why);

#endif
