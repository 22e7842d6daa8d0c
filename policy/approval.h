/*
 * policy/approval.h - four-eyes approvals (NIST SP 800-53 CM-5(4) dual authorisation):
 * a second person, an approver, signs a statement that binds one exact operation; the
 * gateway forwards the operation only with a valid statement by an approver who is not the
 * requester, once.
 *
 * Pure: no configuration, no clock, no file. The caller passes the parsed operation, the
 * approvers' PEM public keys, the current time and its limits; smsguard-approve(1) uses the
 * same digest and the same JWS form to make the statement.
 *
 * THE OPERATION DIGEST is SHA-256 over this text (the version line first; each line ends
 * with one LF, 0x0A, the last one too; no CR; "<len>" is the decimal number of bytes of the
 * value right after its colon, without leading zeros, so a value may hold any byte,
 * newlines and colons included, and no two operations have the same text):
 *
 *   smsguard-approval-v1
 *   upstream:<len>:<upstream name, as in the configuration's upstreams>
 *   release:<len>:<release segment of the canonical path>
 *   provider:<len>:<VasaProvider moId of the canonical path>
 *   method:<len>:<method, e.g. TestFailoverReplicationGroupStop_Task>
 *   force:<true or false>
 *   ticket:<len>:<change ticket; "ticket:0:" when there is none>
 *   groups:<number of group lines below>
 *   group:<len>:<faultDomainId.id>/<len>:<deviceGroupId.id>      one line per group
 *
 * The canonical path is /sdk/vim25/{release}/sms/VasaProvider/{moId}/{method}, as
 * filters/canon.c spells it. Groups are the body's (faultDomainId.id, deviceGroupId.id)
 * pairs, each once (a pair repeated in the body is one line), sorted by the fault domain's
 * id and then the device group's, each compared byte by byte as unsigned bytes, a prefix
 * first (Python: sorted(set((fd.encode(), dg.encode()) for ...)). Every value is its UTF-8
 * bytes as decoded from the JSON body (escapes resolved), not as spelled in it.
 * smsguard-approve --digest prints the digest as 64 lowercase hex digits.
 *
 * THE STATEMENT is a compact JWS (RFC 7515) whose protected header is
 *   {"alg": "EdDSA" (Ed25519, RFC 8037) or "ES256" (P-256, R || S), "kid": <approver name>,
 *    "typ": "smsguard-approval+jwt"}
 * with no other member (a "crit", "jwk", "jku", "x5u" or "x5c" is refused as such) and
 * whose payload is
 *   {"dig": <base64url of the 32-byte digest, no padding>, "iat": <NumericDate>,
 *    "exp": <NumericDate>, "jti": <1..128 bytes, no control character>,
 *    "sub": <approver name> (optional)}
 * with no other member: a claim we do not enforce (an "nbf", say) must not look honoured.
 * The explicit "typ" (RFC 8725 3.11) keeps a statement from being read as any other JWT
 * signed with the same key, and the other way round.
 */
#ifndef SG_POLICY_APPROVAL_H
#define SG_POLICY_APPROVAL_H

#include <pthread.h>
#include <stddef.h>

#include "base/base.h"

#define SG_APPROVAL_TYP "smsguard-approval+jwt"
#define SG_APPROVAL_MAX 4096    /* bytes of a statement (an X-Change-Approval header value) */
#define SG_APPROVAL_JTI_MAX 128 /* bytes of a jti */
#define SG_APPROVAL_NAME_MAX 128 /* bytes of an approver name */

/* One replication group, as the body names it (bytes need not be NUL-terminated). */
typedef struct {
    sg_str_t fault_domain; /* faultDomainId.id */
    sg_str_t device_group; /* deviceGroupId.id */
} sg_approval_group_t;

/* The operation a statement approves; strings are NUL-terminated but for the groups. */
typedef struct {
    const char *upstream;
    const char *release;
    const char *provider; /* the VasaProvider moId */
    const char *method;
    const sg_approval_group_t *groups; /* any order, repeats allowed */
    size_t ngroups;
    int force;          /* 0 or 1 */
    const char *ticket; /* NULL or "" when the request carries none */
} sg_approval_op_t;

/*
 * Appends the canonical text above to out. Returns SG_OK, SG_ENOMEM or SG_ETOOBIG (out's
 * maximum); out may then hold part of the text.
 */
int sg_approval_canonical(const sg_approval_op_t *op, sg_buf_t *out);

/* The digest of op: SHA-256 of sg_approval_canonical(). Returns SG_OK or SG_ENOMEM. */
int sg_approval_digest(const sg_approval_op_t *op, unsigned char out[32]);

/* ---- approvers ----------------------------------------------------------------------- */

typedef struct sg_approvers_s sg_approvers_t;

sg_approvers_t *sg_approvers_new(void);
void sg_approvers_free(sg_approvers_t *a);

/*
 * Adds the approver name (1..SG_APPROVAL_NAME_MAX bytes, unique in a) with the PEM public
 * key pem[0, n) (Ed25519 for EdDSA or P-256 for ES256: the key decides the alg a statement
 * must name) who may approve for the tenants matching one of tenants[0, ntenants) ("x"
 * exactly, "x*" by prefix, "*" any: the patterns of tenant scopes). Strings are copied.
 * Returns 0, or -1 with a message in err (naming the approver, never key bytes).
 */
int sg_approvers_add(sg_approvers_t *a, const char *name, const char *pem, size_t n,
                     const char *const *tenants, size_t ntenants, char *err, size_t errlen);

/* ---- replay cache -------------------------------------------------------------------- */

/*
 * The jtis accepted by this process, each kept until its statement could no longer be
 * accepted anyway (exp plus the leeway), so that a statement is used once. Bounded: when
 * every slot holds a live jti a new statement is refused ("approval replay cache full"),
 * never an entry evicted early, which would let its statement be replayed. Thread-safe: a
 * mutex, held for one scan of at most `capacity` entries; approvals are rare, operator-
 * driven requests, far off the proxy's hot path. No clock is read: times are passed in.
 */
typedef struct {
    pthread_mutex_t lock;
    struct sg_approval_jti_s *v;
    size_t n, capacity;
} sg_approval_jtis_t;

int sg_approval_jtis_init(sg_approval_jtis_t *c, size_t capacity); /* SG_OK or SG_ENOMEM */
void sg_approval_jtis_dispose(sg_approval_jtis_t *c);
/*
 * Records (approver, jti) as used until `until`. Entries whose time is <= now are dropped
 * first. Returns SG_OK (recorded), SG_ERR when the pair is recorded already (a replay) or
 * SG_ETOOBIG when the cache is full of live entries.
 */
int sg_approval_jtis_use(sg_approval_jtis_t *c, const char *approver, const char *jti,
                         size_t jti_len, long long until, long long now);
/*
 * Whether (approver, jti) is recorded and live at now, without recording or dropping
 * anything: SG_ERR when it is (the statement would be a replay), SG_OK when not,
 * SG_ENOMEM. A dry run asks this; the real request then calls sg_approval_jtis_use().
 */
int sg_approval_jtis_seen(sg_approval_jtis_t *c, const char *approver, const char *jti,
                          size_t jti_len, long long now);
/* Live entries (for metrics and tests). */
size_t sg_approval_jtis_count(sg_approval_jtis_t *c);

/* ---- verification -------------------------------------------------------------------- */

/* What the request is, and the limits. */
typedef struct {
    const unsigned char *digest; /* sg_approval_digest() of the request's operation */
    const char *requester;       /* the authenticated principal's subject */
    const char *tenant;          /* the requester's tenant */
    long long now;               /* Unix seconds */
    long long max_s;             /* exp may be at most now + max_s (+ leeway) */
    long long leeway_s;          /* clock skew allowed on exp and iat */
    sg_approval_jtis_t *jtis;    /* the replay cache; NULL: not checked (tests, tools) */
    int dry_run;                 /* 1: jtis is only looked up (sg_approval_jtis_seen), a
                                  * used jti refused, a new one left unused */
} sg_approval_check_t;

/* What a valid statement said. */
typedef struct {
    const char *approver; /* the approver's name (owned by the list), also when refused after
                           * the key was found: the audit record names who signed */
    long long exp, iat;
} sg_approval_t;

/*
 * Verifies the statement s[0, n) against the approvers and the check, in this order:
 * size and structure, header (strict JSON, typ, alg, kid an approver's name, alg the
 * key's), signature over the bytes as received, payload (strict JSON, dig, iat, exp, jti,
 * sub), expiry ("approval expired" when now >= exp + leeway), the expiry's distance
 * ("approval exp too far" when exp > now + max_s + leeway), iat ("approval issued in the
 * future" when iat > now + leeway; exp must follow iat), the digest ("approval digest
 * mismatch"), the tenant ("approver may not approve for the tenant"), the requester
 * ("approval by the requester"), and last the replay cache, so that only a statement
 * valid in every other way uses up its jti ("approval replayed", "approval replay cache
 * full"; a dry run looks the jti up only, so "approval replayed" alone).
 *
 * Returns SG_OK (out filled, *reason NULL), SG_ERR (refused: *reason a static message;
 * out->approver set when the signer was identified) or SG_ENOMEM. Leaves OpenSSL's error
 * queue of this thread as it found it.
 */
int sg_approval_verify(const sg_approvers_t *a, const char *s, size_t n,
                       const sg_approval_check_t *chk, sg_approval_t *out, const char **reason);

#endif
