/*
 * audit/rfc5424.h - the audit log's syslog copy: one RFC 5424 message per audit line, and
 * reading those messages back (docs/design.md "Audit log", "The syslog copy").
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID audit [smsguard@32473 seq=".." stage=".."
 *   request_id=".." tenant=".." subject=".." upstream=".." decision=".."] LINE
 *
 * The MSG is the audit line exactly as written to the file (without its '\n'), so that whoever
 * receives the messages can check the hash chain (smsguard-audit verify --syslog); it starts
 * with a UTF-8 BOM only when the line holds a byte above 0x7f (RFC 5424 6.4: MSG-UTF8; an
 * ASCII line is MSG-ANY). The structured data repeats the main fields for a SIEM to index
 * and is a function of the line alone: the verifier rebuilds it and compares. A member the
 * record does not have (the outcome has no decision, a refusal before authentication no
 * subject) is left out. TIMESTAMP is the record's own "time".
 *
 * Pure: no I/O, no global state. The writer (proxy/audit.c) and the verifier (audit/chain.c)
 * share it.
 */
#ifndef SG_AUDIT_RFC5424_H
#define SG_AUDIT_RFC5424_H

#include <stddef.h>

#include "base/base.h"

/* 32473 is the private enterprise number RFC 5612 reserves for documentation and examples:
 * an SD-ID with '@' needs one, and smsguard has none of its own. */
#define SG_RFC5424_SD_ID "smsguard@32473"
#define SG_RFC5424_MSGID "audit"

/* Appends the SD-ELEMENT for the audit line[0..n) to b. Returns SG_OK, SG_ENOMEM, SG_ETOOBIG
 * or SG_EPROTO (the line is not a JSON object); b unchanged on failure. */
int sg_rfc5424_audit_sd(sg_buf_t *b, const char *line, size_t n);

/* Appends the whole message for the audit line[0..n) to b. pri is facility * 8 + severity;
 * hostname and app_name are printable ASCII without spaces (checked by the caller, or "-").
 * Returns as sg_rfc5424_audit_sd. */
int sg_rfc5424_audit(sg_buf_t *b, int pri, const char *hostname, const char *app_name, long procid,
                     const char *line, size_t n);

/* A received message, split: pointers into it. */
typedef struct {
    const char *app_name, *sd, *msg;
    size_t app_name_len, sd_len, msg_len; /* msg without a leading BOM */
} sg_rfc5424_msg_t;

/* Splits msg[0..n) (one message without its trailer or octet count). Returns 0, or -1 with
 * *why (static) when it is not an RFC 5424 message. */
int sg_rfc5424_parse(const char *msg, size_t n, sg_rfc5424_msg_t *out, const char **why);

/* 1 when the SD of m holds an element with the SD-ID SG_RFC5424_SD_ID (a copy of an audit
 * line), 0 for another program's message. */
int sg_rfc5424_is_audit(const sg_rfc5424_msg_t *m);

#endif
