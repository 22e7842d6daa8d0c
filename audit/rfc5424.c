/*
 * audit/rfc5424.c - RFC 5424 messages carrying audit lines (see audit/rfc5424.h).
 */
#include <string.h>

#include "audit/rfc5424.h"
#include "base/json.h"
#include "base/pool.h"

/* SD-PARAM value (RFC 5424 6.3.3): '"', '\' and ']' escaped with a backslash. A control
 * character becomes '?': a raw line end would split the message for a receiver that frames
 * by line, and the exact value is in the MSG anyway. */
static void sd_value(sg_buf_t *b, const char *p, size_t n)
{
    size_t i, run = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c != '"' && c != '\\' && c != ']' && c >= 0x20 && c != 0x7f)
            continue;
        sg_buf_append(b, p + run, i - run);
        if (c < 0x20 || c == 0x7f) {
            sg_buf_lit(b, "?");
        } else {
            sg_buf_lit(b, "\\");
            sg_buf_append(b, &p[i], 1);
        }
        run = i + 1;
    }
    sg_buf_append(b, p + run, n - run);
}

/* name="value" for a string or number v; nothing for a missing member or another type. */
static void sd_param(sg_buf_t *b, const char *name, const sg_json_t *v)
{
    if (v == NULL || (v->type != SG_JSON_STRING && v->type != SG_JSON_NUMBER))
        return;
    sg_buf_lit(b, " ");
    sg_buf_append(b, name, strlen(name));
    sg_buf_lit(b, "=\"");
    sd_value(b, v->str.p, v->str.n);
    sg_buf_lit(b, "\"");
}

#define MEMBER(o, lit) sg_json_get((o), lit, sizeof(lit) - 1)

/* The SD-ELEMENT of the parsed record root into the sticky buffer b. */
static void sd_element(sg_buf_t *b, const sg_json_t *root)
{
    const sg_json_t *who = MEMBER(root, "principal"), *up = MEMBER(root, "upstream");

    /* The decision names the upstream; an outcome has {"name": ...} and the result. */
    if (up != NULL && up->type == SG_JSON_OBJECT)
        up = MEMBER(up, "name");
    sg_buf_lit(b, "[" SG_RFC5424_SD_ID);
    sd_param(b, "seq", MEMBER(root, "seq"));
    sd_param(b, "stage", MEMBER(root, "stage"));
    sd_param(b, "request_id", MEMBER(root, "request_id"));
    sd_param(b, "tenant", MEMBER(who, "tenant"));
    sd_param(b, "subject", MEMBER(who, "subject"));
    sd_param(b, "upstream", up);
    sd_param(b, "decision", MEMBER(root, "decision"));
    sg_buf_lit(b, "]");
}

/* Parses line[0..n) into pool and appends what fn makes of it to b, all or nothing. */
static int with_record(sg_buf_t *b, const char *line, size_t n, int whole, int pri,
                       const char *hostname, const char *app_name, long procid)
{
    /* Records nest three deep (decision.principal, outcome.upstream); a document of many
     * groups has many values, bounded by the line, which the writer bounds. */
    static const sg_json_limits_t lim = {.max_depth = 8};
    sg_buf_t out;
    sg_pool_t pool;
    const sg_json_t *root = NULL, *t;
    sg_json_err_t jerr;
    int rv;

    sg_pool_init(&pool, 4096);
    rv = sg_json_parse(&pool, line, n, &lim, (sg_json_t **)&root, &jerr);
    if (rv == SG_OK && root->type != SG_JSON_OBJECT)
        rv = SG_EPROTO;
    if (rv != SG_OK) {
        sg_pool_dispose(&pool);
        return rv;
    }
    /* Built apart and appended once, so that b is unchanged on failure. */
    sg_buf_init_sticky(&out, b->max);
    if (whole) {
        t = MEMBER(root, "time");
        sg_buf_lit(&out, "<");
        sg_buf_append_u64(&out, (unsigned long long)pri);
        sg_buf_lit(&out, ">1 ");
        /* The writer's time is RFC 3339 UTC with microseconds, which is an RFC 5424
         * TIMESTAMP as it stands; anything else there is replaced by NILVALUE. */
        if (t != NULL && t->type == SG_JSON_STRING && t->str.n >= 20 && t->str.n <= 32 &&
            strspn(t->str.p, "0123456789-:.TZ+") == t->str.n)
            sg_buf_append(&out, t->str.p, t->str.n);
        else
            sg_buf_lit(&out, "-");
        sg_buf_lit(&out, " ");
        sg_buf_append(&out, hostname, strlen(hostname));
        sg_buf_lit(&out, " ");
        sg_buf_append(&out, app_name, strlen(app_name));
        sg_buf_lit(&out, " ");
        sg_buf_append_u64(&out, (unsigned long long)procid);
        sg_buf_lit(&out, " " SG_RFC5424_MSGID " ");
    }
    sd_element(&out, root);
    if (whole) {
        sg_buf_lit(&out, " ");
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)line[i] > 0x7f) {
                sg_buf_lit(&out, "\xEF\xBB\xBF");
                break;
            }
        sg_buf_append(&out, line, n);
    }
    rv = sg_buf_err(&out);
    if (rv == SG_OK)
        rv = sg_buf_append(b, out.data, out.len);
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
    return rv;
}

int sg_rfc5424_audit_sd(sg_buf_t *b, const char *line, size_t n)
{
    return with_record(b, line, n, 0, 0, NULL, NULL, 0);
}

int sg_rfc5424_audit(sg_buf_t *b, int pri, const char *hostname, const char *app_name, long procid,
                     const char *line, size_t n)
{
    return with_record(b, line, n, 1, pri, hostname, app_name, procid);
}

/* The header field at *p (1*PRINTUSASCII or NILVALUE) up to a space; advances past the
 * space. Returns its length, 0 when there is none. */
static size_t field(const char **p, const char *e, const char **start)
{
    const char *q = *p;

    *start = q;
    while (q < e && *q > 32 && *q < 127)
        q++;
    if (q == *start || q == e || *q != ' ')
        return 0;
    *p = q + 1;
    return (size_t)(q - *start);
}

int sg_rfc5424_parse(const char *msg, size_t n, sg_rfc5424_msg_t *out, const char **why)
{
    const char *p = msg, *e = msg + n, *f;
    size_t digits = 0;

    memset(out, 0, sizeof(*out));
    /* PRI = "<" 1*3DIGIT ">", VERSION "1" */
    if (p == e || *p++ != '<')
        goto bad;
    while (p < e && *p >= '0' && *p <= '9' && digits < 4)
        p++, digits++;
    if (digits == 0 || digits > 3 || e - p < 3 || p[0] != '>' || p[1] != '1' || p[2] != ' ')
        goto bad;
    p += 3;
    /* TIMESTAMP HOSTNAME APP-NAME PROCID MSGID */
    for (int i = 0; i < 5; i++) {
        size_t len = field(&p, e, &f);

        if (len == 0)
            goto bad;
        if (i == 2) {
            out->app_name = f;
            out->app_name_len = len;
        }
    }
    /* STRUCTURED-DATA: NILVALUE or SD-ELEMENTs, whose values may hold escaped '"' and ']'. */
    out->sd = p;
    if (p < e && *p == '-') {
        p++;
    } else {
        if (p == e || *p != '[')
            goto bad;
        while (p < e && *p == '[') {
            int quoted = 0;

            for (p++; p < e; p++) {
                if (quoted && *p == '\\' && p + 1 < e)
                    p++;
                else if (*p == '"')
                    quoted = !quoted;
                else if (!quoted && *p == ']')
                    break;
            }
            if (p == e)
                goto bad;
            p++;
        }
    }
    out->sd_len = (size_t)(p - out->sd);
    if (p < e && *p++ != ' ')
        goto bad;
    if (e - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    out->msg = p;
    out->msg_len = (size_t)(e - p);
    return 0;
bad:
    *why = "not an RFC 5424 message";
    return -1;
}

int sg_rfc5424_is_audit(const sg_rfc5424_msg_t *m)
{
    static const char id[] = "[" SG_RFC5424_SD_ID " ";
    static const char bare[] = "[" SG_RFC5424_SD_ID "]";

    /* Ours is the first element, as the writer puts it; an element that merely mentions the
     * id inside a quoted value does not count. */
    return (m->sd_len >= sizeof(id) - 1 && memcmp(m->sd, id, sizeof(id) - 1) == 0) ||
           (m->sd_len >= sizeof(bare) - 1 && memcmp(m->sd, bare, sizeof(bare) - 1) == 0);
}
