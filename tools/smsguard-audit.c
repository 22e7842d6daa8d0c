/*
 * tools/smsguard-audit.c - checks an audit log's hash chain and checkpoint signatures, and
 * reports what it records.
 *
 *   smsguard-audit verify FILE... [--key PUB] [--syslog]
 *                                               files in chain order (oldest rotated first);
 *                                               options may come anywhere after "verify";
 *                                               --syslog: the files hold the RFC 5424 copies
 *                                               a syslog receiver wrote (audit/rfc5424.h),
 *                                               which a file starting with '<' is taken for
 *   smsguard-audit report FILE... [--key PUB] [filters] [--csv|--json] [--summary]
 *   smsguard-audit --version
 *
 * verify: 0 the chain holds ("ok: N records, M checkpoints (signatures checked|not checked)"
 * and notes on stdout); 1 the first bad line ("FILE:LINE: why" on stdout); 2 usage or I/O
 * error ("FILE: reason" on stderr).
 *
 * report: one row per decision record that passes the filters, with the outcome records of
 * the same request_id joined to it; the chain is verified as the files are read (audit/chain.c
 * hands over only the lines it vouches for). 0 the chain holds; 1 it does not: the rows before
 * the first bad line are printed and "FILE:LINE: why" goes to stderr; 2 usage or I/O error.
 * The rows are kept in memory until the end, because a request's outcomes come after its
 * decision, interleaved with other requests' records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "base/json.h"

#ifndef SG_VERSION
#define SG_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: smsguard-audit verify FILE... [--key PUB] [--syslog]\n"
            "       smsguard-audit report FILE... [--key PUB] [--from T] [--to T] [--tenant NAME]\n"
            "                [--principal SUBJECT] [--upstream NAME] [--provider MOID]\n"
            "                [--operation METHOD] [--decision allow|deny] [--csv|--json]\n"
            "                [--summary]\n"
            "       smsguard-audit --version\n");
}

static int cmd_verify(int argc, char **argv)
{
    const char **files = calloc((size_t)argc + 1, sizeof(*files));
    const char *key = NULL;
    size_t nfiles = 0;
    sg_audit_verify_result_t res;
    unsigned flags = 0;
    int rv, dashdash = 0;

    if (files == NULL) {
        perror("smsguard-audit");
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = 1;
        } else if (!dashdash && strcmp(a, "--key") == 0) {
            if (i + 1 >= argc || key != NULL)
                goto usage;
            key = argv[++i];
        } else if (!dashdash && strcmp(a, "--syslog") == 0) {
            flags |= SG_AUDIT_VERIFY_SYSLOG;
        } else if (!dashdash && strncmp(a, "--key=", 6) == 0) {
            if (key != NULL || a[6] == '\0')
                goto usage;
            key = a + 6;
        } else if (!dashdash && a[0] == '-' && a[1] != '\0') {
            goto usage;
        } else {
            files[nfiles++] = a;
        }
    }
    if (nfiles == 0)
        goto usage;

    rv = sg_audit_verify_ex(files, nfiles, key, flags, NULL, NULL, &res);
    if (rv < 0) {
        fprintf(stderr, "%s: %s\n", res.file != NULL ? res.file : "smsguard-audit", res.why);
        free(files);
        return 2;
    }
    if (rv == 0)
        printf("ok: %llu records, %llu checkpoints (signatures %s)\n", res.records, res.checkpoints,
               key != NULL ? "checked" : "not checked");
    else
        printf("%s:%llu: %s\n", res.file, res.line, res.why);
    if (res.notes[0] != '\0')
        printf("%s\n", res.notes);
    free(files);
    return rv == 0 ? 0 : 1;
usage:
    usage(stderr);
    free(files);
    return 2;
}

/* ---- report ---- */

/* What today's records are about: the one guarded method. A record that names its method
 * (member "operation") is taken at its word. */
#define RP_DEFAULT_OPERATION "TestFailoverReplicationGroupStop_Task"

/* The columns of the table and the CSV, in order. */
enum {
    RP_TIME,
    RP_REQUEST_ID,
    RP_TENANT,
    RP_PRINCIPAL,
    RP_UPSTREAM,
    RP_PROVIDER,
    RP_OPERATION,
    RP_GROUPS,
    RP_FORCE,
    RP_DECISION,
    RP_FAULT,
    RP_OUTCOME,
    RP_REASON,
    RP_NCOLS
};

/* The CSV header, and the table's in capitals. */
static const char *const rp_col_names[RP_NCOLS] = {
    "time",   "request_id", "tenant",   "principal", "upstream", "provider", "operation",
    "groups", "force",      "decision", "fault",     "outcome",  "reason"};
static const char *const rp_col_heads[RP_NCOLS] = {
    "TIME",   "REQUEST_ID", "TENANT",   "PRINCIPAL", "UPSTREAM", "PROVIDER", "OPERATION",
    "GROUPS", "FORCE",      "DECISION", "FAULT",     "OUTCOME",  "REASON"};

/* One outcome record joined to a row. */
typedef struct rp_out_s {
    struct rp_out_s *next;
    const char *line; /* the record as written, for --json */
    size_t n;
    const char *reason; /* "answered", "upstream failed", ...; NULL when it has none */
} rp_out_t;

/* One decision record that passed the filters. */
typedef struct rp_row_s {
    struct rp_row_s *next;     /* in chain order */
    const char *col[RP_NCOLS]; /* decoded values; NULL for null or absent (RP_OUTCOME: later) */
    const char *line;          /* the record as written, for --json */
    size_t n;
    rp_out_t *outs, **outs_tail;
    size_t nouts;
    unsigned long long parts; /* "parts" of a split request's outcomes; 0 for one piece */
} rp_row_t;

typedef struct {
    /* the filters; NULL: any */
    const char *tenant, *principal, *upstream, *provider, *operation, *decision;
    long long from_us, to_us; /* [from, to): microseconds since the epoch */
    int has_from, has_to;
    int csv, json, summary;

    sg_pool_t pool;    /* rows, their strings and the join table, until the end */
    sg_pool_t scratch; /* one line's JSON tree */
    rp_row_t *rows, **rows_tail;
    size_t nrows;
    rp_row_t **slots; /* open addressing by request_id: the latest decision of that id */
    size_t nslots, nused;
    const char *err; /* why the reader stopped */
} rp_report_t;

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil): UTC arithmetic without timegm and the process's time zone. */
static long long rp_days(long long y, unsigned m, unsigned d)
{
    long long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* n decimal digits at *p into *v; advances *p. Returns 0, or -1 when they are not digits. */
static int rp_digits(const char **p, int n, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        *v = *v * 10 + (unsigned)(**p - '0');
    }
    return 0;
}

/* Parses an RFC 3339 date-time ("2026-12-08T03:17:07.123456Z", any fraction, Z or an offset)
 * or, with date_ok, a full-date alone ("2026-12-08", midnight UTC; *is_date set). Returns 0
 * with *us the microseconds since the epoch (a fraction beyond them is cut), or -1. */
static int rp_parse_time(const char *s, int date_ok, long long *us, int *is_date)
{
    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, frac = 0;
    long long off = 0;
    const char *p = s;

    *is_date = 0;
    if (rp_digits(&p, 4, &y) || *p++ != '-' || rp_digits(&p, 2, &mo) || *p++ != '-' ||
        rp_digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
        return -1;
    if (*p == '\0' && date_ok) {
        *is_date = 1;
        *us = rp_days(y, mo, d) * 86400LL * 1000000;
        return 0;
    }
    if ((*p != 'T' && *p != 't') || (p++, rp_digits(&p, 2, &h)) || *p++ != ':' ||
        rp_digits(&p, 2, &mi) || *p++ != ':' || rp_digits(&p, 2, &sec))
        return -1;
    if (h > 23 || mi > 59 || sec > 60) /* 60: a leap second, counted as the next one */
        return -1;
    if (*p == '.') {
        int k = 0;
        if (p[1] < '0' || p[1] > '9')
            return -1;
        for (p++; *p >= '0' && *p <= '9'; p++, k++)
            if (k < 6)
                frac = frac * 10 + (unsigned)(*p - '0');
        for (; k < 6; k++)
            frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int neg = *p++ == '-';
        if (rp_digits(&p, 2, &oh) || *p++ != ':' || rp_digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (long long)(oh * 60 + om) * 60 * (neg ? -1 : 1);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    *us = ((rp_days(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec) - off) * 1000000 + frac;
    return 0;
}

/* FNV-1a: request ids are the gateway's own, not chosen by a client. */
static size_t rp_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static rp_row_t **rp_slot(rp_report_t *rp, const char *id)
{
    size_t i = rp_hash(id) & (rp->nslots - 1);

    while (rp->slots[i] != NULL && strcmp(rp->slots[i]->col[RP_REQUEST_ID], id) != 0)
        i = (i + 1) & (rp->nslots - 1);
    return &rp->slots[i];
}

/* Indexes row by its request_id; a later decision with the same id (a restart) takes it over.
 * Returns 0 or -1 (out of memory). */
static int rp_index(rp_report_t *rp, rp_row_t *row)
{
    rp_row_t **slot;

    if ((rp->nused + 1) * 2 > rp->nslots) {
        rp_row_t **old = rp->slots;
        size_t oldn = rp->nslots, n = oldn ? oldn * 2 : 1024;

        if ((rp->slots = calloc(n, sizeof(*rp->slots))) == NULL) {
            rp->slots = old;
            return -1;
        }
        rp->nslots = n;
        for (size_t i = 0; i < oldn; i++)
            if (old[i] != NULL)
                *rp_slot(rp, old[i]->col[RP_REQUEST_ID]) = old[i];
        free(old);
    }
    slot = rp_slot(rp, row->col[RP_REQUEST_ID]);
    if (*slot == NULL)
        rp->nused++;
    *slot = row;
    return 0;
}

/* The string member name of obj (in the line's tree: NUL-terminated, no NUL inside); NULL
 * when it is absent or not a string (null). */
static const char *rp_str(const sg_json_t *obj, const char *name)
{
    const sg_json_t *v = sg_json_get(obj, name, strlen(name));

    return v != NULL && v->type == SG_JSON_STRING ? v->str.p : NULL;
}

/* The groups as "fault_domain/device_group" separated by spaces (for reading: --json has the
 * exact values); NULL when the record has none (a body that was not validated). */
static const char *rp_groups(rp_report_t *rp, const sg_json_t *doc, int *oom)
{
    const sg_json_t *g = sg_json_get(doc, "groups", 6);
    sg_buf_t b;
    const char *out = NULL;

    if (g == NULL || g->type != SG_JSON_ARRAY)
        return NULL;
    sg_buf_init_sticky(&b, SG_AUDIT_MAX_LINE);
    for (size_t i = 0; i < g->nkids; i++) {
        const sg_json_t *fd = sg_json_get(g->kids[i], "fault_domain", 12);
        const sg_json_t *dg = sg_json_get(g->kids[i], "device_group", 12);
        if (i > 0)
            sg_buf_lit(&b, " ");
        if (fd != NULL && fd->type == SG_JSON_STRING)
            sg_buf_append(&b, fd->str.p, fd->str.n);
        sg_buf_lit(&b, "/");
        if (dg != NULL && dg->type == SG_JSON_STRING)
            sg_buf_append(&b, dg->str.p, dg->str.n);
    }
    if (sg_buf_err(&b) != SG_OK ||
        (out = sg_pool_strndup(&rp->pool, sg_buf_head(&b), sg_buf_avail(&b))) == NULL)
        *oom = 1;
    sg_buf_dispose(&b);
    return out;
}

static int rp_match(const char *want, const char *have)
{
    return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

/* A decision record: a row when it passes the filters. Only a row is copied out of the
 * line's tree, so memory grows with what is reported, not with the files. Returns 0 or -1
 * (out of memory). */
static int rp_decision(rp_report_t *rp, const sg_json_t *doc, const char *line, size_t n)
{
    const sg_json_t *who = sg_json_get(doc, "principal", 9), *force;
    const char *col[RP_NCOLS] = {NULL};
    rp_row_t *row;
    char *copy;
    int oom = 0, is_date;
    long long t;

    col[RP_TIME] = rp_str(doc, "time");
    col[RP_REQUEST_ID] = rp_str(doc, "request_id");
    if (who != NULL && who->type == SG_JSON_OBJECT) {
        col[RP_TENANT] = rp_str(who, "tenant");
        col[RP_PRINCIPAL] = rp_str(who, "subject");
    }
    col[RP_UPSTREAM] = rp_str(doc, "upstream");
    col[RP_PROVIDER] = rp_str(doc, "provider");
    col[RP_OPERATION] = rp_str(doc, "operation");
    if (col[RP_OPERATION] == NULL)
        col[RP_OPERATION] = RP_DEFAULT_OPERATION;
    col[RP_DECISION] = rp_str(doc, "decision");
    col[RP_FAULT] = rp_str(doc, "fault");
    col[RP_REASON] = rp_str(doc, "reason");
    if (!rp_match(rp->tenant, col[RP_TENANT]) || !rp_match(rp->principal, col[RP_PRINCIPAL]) ||
        !rp_match(rp->upstream, col[RP_UPSTREAM]) || !rp_match(rp->provider, col[RP_PROVIDER]) ||
        !rp_match(rp->operation, col[RP_OPERATION]) || !rp_match(rp->decision, col[RP_DECISION]))
        return 0;
    if (rp->has_from || rp->has_to) {
        if (col[RP_TIME] == NULL || rp_parse_time(col[RP_TIME], 0, &t, &is_date) != 0 ||
            (rp->has_from && t < rp->from_us) || (rp->has_to && t >= rp->to_us))
            return 0;
    }
    if ((row = sg_pool_calloc(&rp->pool, sizeof(*row))) == NULL)
        return -1;
    for (size_t c = 0; c < RP_NCOLS; c++)
        if (col[c] != NULL &&
            (row->col[c] = sg_pool_strndup(&rp->pool, col[c], strlen(col[c]))) == NULL)
            return -1;
    force = sg_json_get(doc, "force", 5);
    if (force != NULL && force->type == SG_JSON_TRUE)
        row->col[RP_FORCE] = "true";
    else if (force != NULL && force->type == SG_JSON_FALSE)
        row->col[RP_FORCE] = "false";
    row->col[RP_GROUPS] = rp_groups(rp, doc, &oom);
    if (oom || (copy = sg_pool_strndup(&rp->pool, line, n)) == NULL)
        return -1;
    row->line = copy;
    row->n = n;
    row->outs_tail = &row->outs;
    if (row->col[RP_REQUEST_ID] != NULL && rp_index(rp, row) != 0)
        return -1;
    *rp->rows_tail = row;
    rp->rows_tail = &row->next;
    rp->nrows++;
    return 0;
}

/* An outcome record: joined to the row of its request_id, if that row was kept. Returns 0 or
 * -1 (out of memory). */
static int rp_outcome(rp_report_t *rp, const sg_json_t *doc, const char *line, size_t n)
{
    const sg_json_t *id = sg_json_get(doc, "request_id", 10), *parts;
    rp_row_t *row;
    rp_out_t *o;

    if (id == NULL || id->type != SG_JSON_STRING || rp->nslots == 0 ||
        (row = *rp_slot(rp, id->str.p)) == NULL)
        return 0;
    if ((o = sg_pool_calloc(&rp->pool, sizeof(*o))) == NULL ||
        (o->line = sg_pool_strndup(&rp->pool, line, n)) == NULL)
        return -1;
    o->n = n;
    if ((o->reason = rp_str(doc, "reason")) != NULL &&
        (o->reason = sg_pool_strndup(&rp->pool, o->reason, strlen(o->reason))) == NULL)
        return -1;
    parts = sg_json_get(doc, "parts", 5);
    if (parts != NULL && parts->type == SG_JSON_NUMBER)
        row->parts = strtoull(parts->str.p, NULL, 10);
    *row->outs_tail = o;
    row->outs_tail = &o->next;
    row->nouts++;
    return 0;
}

/* sg_audit_verify_each's reader: every line the chain vouches for, in order. */
static int rp_line(void *arg, const char *line, size_t n, const char *file,
                   unsigned long long lineno)
{
    static const sg_json_limits_t lim = {.max_depth = 32, .max_values = 0};
    rp_report_t *rp = arg;
    const sg_json_t *stage;
    sg_json_t *doc;
    sg_json_err_t jerr;
    int rv = 0;

    (void)file;
    (void)lineno;
    /* The verifier parsed the same bytes already: this cannot fail but for memory. */
    if (sg_json_parse(&rp->scratch, line, n, &lim, &doc, &jerr) != SG_OK) {
        sg_pool_dispose(&rp->scratch);
        rp->err = "out of memory";
        return -1;
    }
    stage = sg_json_get(doc, "stage", 5);
    if (stage != NULL && sg_json_is_string(stage, "decision", 8))
        rv = rp_decision(rp, doc, line, n);
    else if (stage != NULL && sg_json_is_string(stage, "outcome", 7))
        rv = rp_outcome(rp, doc, line, n);
    sg_pool_dispose(&rp->scratch);
    if (rv != 0)
        rp->err = "out of memory";
    return rv;
}

/* The outcome column: the reason of the one outcome record; for a split request each reason
 * with how many parts had it and the number of parts ("answered (3 parts)", "answered x2,
 * upstream failed x1 (3 parts)"); "none" for an allowed request without an outcome record (the
 * gateway stopped before it answered, or the file ends first); NULL for a refused one. */
static const char *rp_outcome_col(rp_report_t *rp, const rp_row_t *row)
{
    sg_buf_t b;
    const char *out;

    if (row->nouts == 0)
        return rp_match("allow", row->col[RP_DECISION]) ? "none" : NULL;
    if (row->nouts == 1 && row->parts == 0)
        return row->outs->reason;
    sg_buf_init_sticky(&b, SG_AUDIT_MAX_LINE);
    for (const rp_out_t *o = row->outs; o != NULL; o = o->next) {
        size_t k = 0;
        const rp_out_t *q;
        const char *r = o->reason != NULL ? o->reason : "-";

        for (q = row->outs; q != o; q = q->next) /* said already */
            if (strcmp(q->reason != NULL ? q->reason : "-", r) == 0)
                break;
        if (q != o)
            continue;
        for (q = o; q != NULL; q = q->next)
            k += strcmp(q->reason != NULL ? q->reason : "-", r) == 0;
        sg_buf_appendf(&b, "%s%s", sg_buf_avail(&b) > 0 ? ", " : "", r);
        if (k != row->nouts)
            sg_buf_appendf(&b, " x%zu", k);
    }
    sg_buf_appendf(&b, " (%llu parts)",
                   row->parts > 0 ? row->parts : (unsigned long long)row->nouts);
    out = sg_buf_err(&b) == SG_OK ? sg_pool_strndup(&rp->pool, sg_buf_head(&b), sg_buf_avail(&b))
                                  : NULL;
    sg_buf_dispose(&b);
    return out != NULL ? out : "?";
}

/* A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote, CR or
 * LF; the bytes as they are otherwise. NULL: an empty field. */
static void rp_csv_field(const char *s, int last)
{
    if (s != NULL && strpbrk(s, ",\"\r\n") != NULL) {
        putchar('"');
        for (; *s != '\0'; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else if (s != NULL) {
        fputs(s, stdout);
    }
    fputs(last ? "\r\n" : ",", stdout);
}

/* Characters on screen of UTF-8 s: what the table aligns on. */
static size_t rp_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* s as a table cell: the log escaper's form (base/str.h sg_log_escape: control and bidi
 * characters as \u and four hex digits, invalid UTF-8 as \ufffd, '\\' as \\), so that no
 * value can break a row or reorder what a terminal shows; "-" for NULL. */
static const char *rp_cell(rp_report_t *rp, const char *s)
{
    size_t n, room;
    char *o;

    if (s == NULL)
        return "-";
    n = strlen(s);
    room = n * 6 + 1;
    if ((o = sg_pool_alloc(&rp->pool, room)) == NULL)
        return NULL;
    o[sg_log_escape(o, room - 1, s, n)] = '\0';
    return o;
}

/* Prints cells[nrows][ncols] (row 0 the header) left-aligned, two spaces between columns, no
 * padding after the last. */
static void rp_table(const char **cells, size_t nrows, size_t ncols)
{
    size_t width[RP_NCOLS] = {0};

    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t w = rp_width(cells[r * ncols + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c];
            if (c + 1 == ncols)
                printf("%s\n", s);
            else
                printf("%s%*s", s, (int)(width[c] - rp_width(s) + 2), "");
        }
}

/* The rows in the chosen form. Returns 0 or -1 (out of memory). */
static int rp_print_rows(rp_report_t *rp)
{
    const char **cells;
    size_t r = 1;

    if (rp->json) {
        for (const rp_row_t *row = rp->rows; row != NULL; row = row->next) {
            printf("%.*s\n", (int)row->n, row->line);
            for (const rp_out_t *o = row->outs; o != NULL; o = o->next)
                printf("%.*s\n", (int)o->n, o->line);
        }
        return 0;
    }
    for (rp_row_t *row = rp->rows; row != NULL; row = row->next)
        row->col[RP_OUTCOME] = rp_outcome_col(rp, row);
    if (rp->csv) {
        for (size_t c = 0; c < RP_NCOLS; c++)
            rp_csv_field(rp_col_names[c], c + 1 == RP_NCOLS);
        for (const rp_row_t *row = rp->rows; row != NULL; row = row->next)
            for (size_t c = 0; c < RP_NCOLS; c++)
                rp_csv_field(row->col[c], c + 1 == RP_NCOLS);
        return 0;
    }
    if ((cells = sg_pool_alloc(&rp->pool, (rp->nrows + 1) * RP_NCOLS * sizeof(*cells))) == NULL)
        return -1;
    for (size_t c = 0; c < RP_NCOLS; c++)
        cells[c] = rp_col_heads[c];
    for (const rp_row_t *row = rp->rows; row != NULL; row = row->next, r++)
        for (size_t c = 0; c < RP_NCOLS; c++)
            if ((cells[r * RP_NCOLS + c] = rp_cell(rp, row->col[c])) == NULL)
                return -1;
    rp_table(cells, rp->nrows + 1, RP_NCOLS);
    return 0;
}

typedef struct {
    const char *operation, *decision;
    unsigned long long count;
} rp_count_t;

static int rp_count_cmp(const void *a, const void *b)
{
    const rp_count_t *x = a, *y = b;
    int c = strcmp(x->operation, y->operation);

    return c != 0 ? c : strcmp(x->decision, y->decision);
}

/* --summary: rows counted per operation and decision, sorted by both. Returns 0 or -1. */
static int rp_print_summary(rp_report_t *rp)
{
    rp_count_t *counts = sg_pool_alloc(&rp->pool, (rp->nrows + 1) * sizeof(*counts));
    size_t n = 0, i;
    const char **cells;

    if (counts == NULL)
        return -1;
    for (const rp_row_t *row = rp->rows; row != NULL; row = row->next) {
        const char *d = row->col[RP_DECISION] != NULL ? row->col[RP_DECISION] : "-";
        for (i = 0; i < n; i++)
            if (strcmp(counts[i].operation, row->col[RP_OPERATION]) == 0 &&
                strcmp(counts[i].decision, d) == 0)
                break;
        if (i == n)
            counts[n++] = (rp_count_t){row->col[RP_OPERATION], d, 0};
        counts[i].count++;
    }
    qsort(counts, n, sizeof(*counts), rp_count_cmp);
    if (rp->json) {
        sg_buf_t b;
        int bad;

        sg_buf_init_sticky(&b, SG_AUDIT_MAX_LINE);
        for (i = 0; i < n; i++) {
            sg_buf_reset(&b);
            sg_buf_lit(&b, "{\"operation\":");
            sg_json_write_string(&b, counts[i].operation, strlen(counts[i].operation));
            sg_buf_lit(&b, ",\"decision\":");
            sg_json_write_string(&b, counts[i].decision, strlen(counts[i].decision));
            sg_buf_appendf(&b, ",\"count\":%llu}\n", counts[i].count);
            if (sg_buf_err(&b) != SG_OK)
                break;
            fwrite(sg_buf_head(&b), 1, sg_buf_avail(&b), stdout);
        }
        bad = sg_buf_err(&b) != SG_OK;
        sg_buf_dispose(&b);
        return bad ? -1 : 0;
    }
    if (rp->csv) {
        printf("operation,decision,count\r\n");
        for (i = 0; i < n; i++) {
            rp_csv_field(counts[i].operation, 0);
            rp_csv_field(counts[i].decision, 0);
            printf("%llu\r\n", counts[i].count);
        }
        return 0;
    }
    if ((cells = sg_pool_alloc(&rp->pool, (n + 1) * 3 * sizeof(*cells))) == NULL)
        return -1;
    cells[0] = "OPERATION";
    cells[1] = "DECISION";
    cells[2] = "COUNT";
    for (i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof(num), "%llu", counts[i].count);
        if ((cells[3 * (i + 1)] = rp_cell(rp, counts[i].operation)) == NULL ||
            (cells[3 * (i + 1) + 1] = rp_cell(rp, counts[i].decision)) == NULL ||
            (cells[3 * (i + 1) + 2] = sg_pool_strndup(&rp->pool, num, strlen(num))) == NULL)
            return -1;
    }
    rp_table(cells, n + 1, 3);
    return 0;
}

/* The value of option name at argv[*i] ("--name VALUE" or "--name=VALUE") into *slot.
 * Returns 1 when argv[*i] is that option (and *i moved past its value), 0 when it is another
 * argument, -1 on a usage error (no value, or the option given twice). */
static int rp_opt(int argc, char **argv, int *i, const char *name, const char **slot)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (*slot != NULL) {
        fprintf(stderr, "smsguard-audit: %s given twice\n", name);
        return -1;
    }
    if (a[n] == '=') {
        *slot = a + n + 1;
    } else if (*i + 1 < argc) {
        *slot = argv[++*i];
    } else {
        fprintf(stderr, "smsguard-audit: %s needs a value\n", name);
        return -1;
    }
    if ((*slot)[0] == '\0') {
        fprintf(stderr, "smsguard-audit: %s needs a value\n", name);
        return -1;
    }
    return 1;
}

static int cmd_report(int argc, char **argv)
{
    const char **files = calloc((size_t)argc + 1, sizeof(*files));
    const char *key = NULL, *from = NULL, *to = NULL;
    sg_audit_verify_result_t res;
    rp_report_t rp;
    size_t nfiles = 0;
    int rv, out_rv, dashdash = 0, is_date;

    memset(&rp, 0, sizeof(rp));
    sg_pool_init(&rp.pool, 65536);
    sg_pool_init(&rp.scratch, 16384);
    rp.rows_tail = &rp.rows;
    if (files == NULL) {
        perror("smsguard-audit");
        rv = 2;
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int k = 0;

        if (dashdash || a[0] != '-' || a[1] == '\0') {
            files[nfiles++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (strcmp(a, "--csv") == 0 || strcmp(a, "--json") == 0 || strcmp(a, "--summary") == 0) {
            int *flag = a[2] == 'c' ? &rp.csv : a[2] == 'j' ? &rp.json : &rp.summary;
            if (*flag)
                goto usage;
            *flag = 1;
            continue;
        }
        if ((k = rp_opt(argc, argv, &i, "--key", &key)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--from", &from)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--to", &to)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--tenant", &rp.tenant)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--principal", &rp.principal)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--upstream", &rp.upstream)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--provider", &rp.provider)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--operation", &rp.operation)) == 0 &&
            (k = rp_opt(argc, argv, &i, "--decision", &rp.decision)) == 0) {
            fprintf(stderr, "smsguard-audit: unknown option %s\n", a);
            goto usage;
        }
        if (k < 0)
            goto usage;
    }
    if (rp.csv && rp.json) {
        fprintf(stderr, "smsguard-audit: --csv or --json, not both\n");
        goto usage;
    }
    if (nfiles == 0)
        goto usage;
    if (rp.decision != NULL && strcmp(rp.decision, "allow") != 0 &&
        strcmp(rp.decision, "deny") != 0) {
        fprintf(stderr, "smsguard-audit: --decision is allow or deny\n");
        goto usage;
    }
    if (from != NULL) {
        if (rp_parse_time(from, 1, &rp.from_us, &is_date) != 0) {
            fprintf(stderr, "smsguard-audit: --from: not an RFC 3339 time or YYYY-MM-DD\n");
            goto usage;
        }
        rp.has_from = 1;
    }
    if (to != NULL) {
        /* --to is inclusive: a time up to its microsecond, a date to the end of that day. */
        if (rp_parse_time(to, 1, &rp.to_us, &is_date) != 0) {
            fprintf(stderr, "smsguard-audit: --to: not an RFC 3339 time or YYYY-MM-DD\n");
            goto usage;
        }
        rp.to_us += is_date ? 86400LL * 1000000 : 1;
        rp.has_to = 1;
    }
    if (rp.has_from && rp.has_to && rp.from_us >= rp.to_us) {
        fprintf(stderr, "smsguard-audit: --from is after --to\n");
        goto usage;
    }

    rv = sg_audit_verify_each(files, nfiles, key, rp_line, &rp, &res);
    if (rv < 0) {
        fprintf(stderr, "%s: %s\n", res.file != NULL ? res.file : "smsguard-audit",
                rp.err != NULL ? rp.err : res.why);
        rv = 2;
        goto out;
    }
    /* What the chain vouched for is printed even when it breaks later: the message says
     * where the report ends. */
    out_rv = rp.err == NULL ? (rp.summary ? rp_print_summary(&rp) : rp_print_rows(&rp)) : -1;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("smsguard-audit: standard output");
        rv = 2;
        goto out;
    }
    if (out_rv != 0) {
        fprintf(stderr, "smsguard-audit: %s\n", rp.err != NULL ? rp.err : "out of memory");
        rv = 2;
        goto out;
    }
    if (rv == 1)
        fprintf(stderr, "%s:%llu: %s (the report stops before this line)\n", res.file, res.line,
                res.why);
    else if (res.notes[0] != '\0')
        fprintf(stderr, "%s\n", res.notes);
    goto out;
usage:
    usage(stderr);
    rv = 2;
out:
    free(files);
    free(rp.slots);
    sg_pool_dispose(&rp.scratch);
    sg_pool_dispose(&rp.pool);
    return rv;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("smsguard-audit %s\n", SG_VERSION);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "report") == 0)
        return cmd_report(argc - 2, argv + 2);
    usage(stderr);
    return 2;
}
