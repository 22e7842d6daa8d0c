/*
 * filters/stopreq.c - parse, validate and re-serialise the guarded bodies.
 *
 * The JSON grammar (duplicates, UTF-8, trailing bytes, depth) is base/json.c's
 * job; this file owns the schema of TestFailoverReplicationGroupStopRequestType,
 * the shape of the SmsTask query bodies, the _this member both may carry, the
 * media type that announces them, and the fault each violation maps to. The
 * checks run in a fixed order so that a body with several problems always gets
 * the same fault. Building the vSphere fault object and deciding what to do
 * with the request are flt_validate.c's.
 */
#include "filters/stopreq.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define STR_LIT(s) (s), (sizeof(s) - 1)

/* Type names the API allows (the VI/JSON OpenAPI specification). The root's is tolerated
 * because real clients send one: vim_rs the schema's name, govmomi the method's
 * (the Go type of its request is named after the method). */
#define TN_ROOT "TestFailoverReplicationGroupStopRequestType"
#define TN_ROOT_METHOD "TestFailoverReplicationGroupStop_Task"
#define TN_MOREF "ManagedObjectReference"
#define TN_GROUP "ReplicationGroupId"
#define TN_FAULT_DOMAIN "FaultDomainId"
#define TN_DEVICE_GROUP "DeviceGroupId"

/* Which part of an element a path names ("groupId[i]" + this). */
typedef struct {
    const char *member;   /* "faultDomainId" or "deviceGroupId" */
    const char *typename; /* the _typeName it may carry */
    size_t typename_len;
} stopreq_holder_t;

static const stopreq_holder_t stopreq_fault_domain = {"faultDomainId", STR_LIT(TN_FAULT_DOMAIN)};
static const stopreq_holder_t stopreq_device_group = {"deviceGroupId", STR_LIT(TN_DEVICE_GROUP)};

static int name_is(const sg_json_t *v, const char *s, size_t n)
{
    return v->name.n == n && memcmp(v->name.p, s, n) == 0;
}

/* ---- faults ---- */

static int fault_set(sg_stopreq_fault_t *fault, const char *type, const char *prop,
                     const char *message)
{
    fault->status = 500; /* vCenter answers every fault with 500 (docs/design.md "Answers") */
    fault->type = type;
    fault->invalid_property = prop;
    fault->message = message;
    return SG_ERR;
}

static int fault_arg(sg_stopreq_fault_t *fault, const char *prop, const char *message)
{
    return fault_set(fault, "InvalidArgument", prop, message);
}

/*
 * Copies a client's member name for a fault path: at most SG_STOPREQ_NAME_MAX
 * bytes, cut on a character boundary, control bytes shown as '?', the empty name
 * as "" (two quote characters). The fault body
 * is escaped by its builder, but the name may also reach logs, which must not
 * get a client's line breaks.
 */
static size_t path_put_name(char *o, const sg_str_t *name)
{
    size_t n = name->n;

    if (n == 0) {
        /* An empty member name is legal JSON; an empty invalidProperty says nothing. */
        memcpy(o, "\"\"", 2);
        return 2;
    }
    if (n > SG_STOPREQ_NAME_MAX) {
        n = SG_STOPREQ_NAME_MAX;
        while (n > 0 && ((unsigned char)name->p[n] & 0xC0) == 0x80)
            n--; /* name->p[n] continues a character: cut before it starts */
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name->p[i];

        o[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    return n;
}

/*
 * The path "groupId[idx]" + ".holder" + ".leaf" (holder and leaf optional) from
 * the pool, or just the leaf when idx is SIZE_MAX (a root member). NULL on ENOMEM.
 */
static const char *path_new(sg_pool_t *pool, size_t idx, const char *holder, const sg_str_t *leaf)
{
    size_t max = 32 + (holder ? strlen(holder) + 1 : 0) + SG_STOPREQ_NAME_MAX + 2;
    char *buf = sg_pool_alloc(pool, max), *o = buf;

    if (buf == NULL)
        return NULL;
    if (idx != SIZE_MAX)
        o += snprintf(o, 32, "groupId[%zu]", idx);
    if (holder != NULL)
        o += snprintf(o, max - (size_t)(o - buf), ".%s", holder);
    if (leaf != NULL) {
        if (o != buf)
            *o++ = '.';
        o += path_put_name(o, leaf);
    }
    *o = '\0';
    return buf;
}

/* An InvalidArgument for a path built with path_new(); -2 if that fails. */
static int fault_path(sg_pool_t *pool, sg_stopreq_fault_t *fault, size_t idx, const char *holder,
                      const sg_str_t *leaf, const char *message)
{
    const char *prop = path_new(pool, idx, holder, leaf);

    if (prop == NULL)
        return SG_ENOMEM;
    return fault_arg(fault, prop, message);
}

static const sg_str_t leaf_typename = {STR_LIT("_typeName")};
static const sg_str_t leaf_id = {STR_LIT("id")};

/* InvalidRequest for JSON the parser refused; the message has the parser's static
 * reason and an offset, never the client's bytes. */
static int fault_malformed(sg_pool_t *pool, sg_stopreq_fault_t *fault, const sg_json_err_t *err)
{
    static const char prefix[] = "The request body is not valid JSON";
    size_t max = sizeof(prefix) + 48 + strlen(err->why);
    char *msg = sg_pool_alloc(pool, max);

    if (msg == NULL)
        return SG_ENOMEM;
    snprintf(msg, max, "%s (at byte %zu: %s).", prefix, err->off, err->why);
    return fault_set(fault, "InvalidRequest", NULL, msg);
}

/* ---- the schema ---- */

/* 1 when s is a usable id: 1..SG_STOPREQ_MAX_ID bytes, no C0 control or DEL (the
 * parser already guarantees UTF-8 without NUL). */
static int id_ok(const sg_str_t *s)
{
    if (s->n == 0 || s->n > SG_STOPREQ_MAX_ID)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if ((unsigned char)s->p[i] < 0x20 || s->p[i] == 0x7F)
            return 0;
    return 1;
}

/* faultDomainId or deviceGroupId of element idx: {"id": "...", "_typeName"?: "..."}. */
static int check_holder(sg_pool_t *pool, const sg_json_t *v, size_t idx,
                        const stopreq_holder_t *h, sg_str_t *id, unsigned char *plain,
                        sg_stopreq_fault_t *fault)
{
    const sg_json_t *idv = NULL, *tn = NULL;

    if (v == NULL || v->type != SG_JSON_OBJECT)
        return fault_path(pool, fault, idx, h->member, NULL,
                          "A replication group needs faultDomainId and deviceGroupId objects.");
    for (size_t i = 0; i < v->nkids; i++) {
        const sg_json_t *k = v->kids[i];

        if (name_is(k, STR_LIT("id")))
            idv = k;
        else if (name_is(k, STR_LIT("_typeName")))
            tn = k;
        else
            return fault_path(pool, fault, idx, h->member, &k->name, "Unknown member.");
    }
    if (tn != NULL && !sg_json_is_string(tn, h->typename, h->typename_len))
        return fault_path(pool, fault, idx, h->member, &leaf_typename, "Wrong _typeName.");
    if (idv == NULL || idv->type != SG_JSON_STRING || !id_ok(&idv->str))
        return fault_path(pool, fault, idx, h->member, &leaf_id,
                          "An id must be a non-empty string of at most 1024 bytes "
                          "without control characters.");
    *id = idv->str;
    *plain = idv->str_plain;
    return SG_OK;
}

/* groupId[idx]: {"faultDomainId": {..}, "deviceGroupId": {..}, "_typeName"?: ..}. */
static int check_group(sg_pool_t *pool, sg_json_t *v, size_t idx, sg_group_t *g,
                       sg_stopreq_fault_t *fault)
{
    const sg_json_t *fd = NULL, *dg = NULL, *tn = NULL;
    int rv;

    if (v->type != SG_JSON_OBJECT)
        return fault_path(pool, fault, idx, NULL, NULL,
                          "Each groupId element must be a ReplicationGroupId object.");
    for (size_t i = 0; i < v->nkids; i++) {
        const sg_json_t *k = v->kids[i];

        if (name_is(k, STR_LIT("faultDomainId")))
            fd = k;
        else if (name_is(k, STR_LIT("deviceGroupId")))
            dg = k;
        else if (name_is(k, STR_LIT("_typeName")))
            tn = k;
        else
            return fault_path(pool, fault, idx, NULL, &k->name, "Unknown member.");
    }
    if (tn != NULL && !sg_json_is_string(tn, STR_LIT(TN_GROUP)))
        return fault_path(pool, fault, idx, NULL, &leaf_typename, "Wrong _typeName.");
    if ((rv = check_holder(pool, fd, idx, &stopreq_fault_domain, &g->fault_domain,
                           &g->fault_domain_plain, fault)) != 0 ||
        (rv = check_holder(pool, dg, idx, &stopreq_device_group, &g->device_group,
                           &g->device_group_plain, fault)) != 0)
        return rv;
    g->node = v;
    return SG_OK;
}

static int check_groups(sg_pool_t *pool, const sg_json_t *gid, sg_stopreq_t *out,
                        sg_stopreq_fault_t *fault)
{
    int rv;

    if (gid == NULL || gid->type != SG_JSON_ARRAY || gid->nkids == 0)
        return fault_arg(fault, "groupId", "groupId must be a non-empty array.");
    if (gid->nkids > SG_STOPREQ_MAX_GROUPS)
        return fault_arg(fault, "groupId", "groupId has too many elements.");
    if ((out->groups = sg_pool_alloc(pool, gid->nkids * sizeof(*out->groups))) == NULL)
        return SG_ENOMEM;
    for (size_t i = 0; i < gid->nkids; i++)
        if ((rv = check_group(pool, gid->kids[i], i, &out->groups[i], fault)) != SG_OK)
            return rv;
    out->ngroups = gid->nkids;
    return SG_OK;
}

/*
 * _this, the target a client may repeat from the path (govmomi sends its whole
 * SOAP request struct): {"_typeName"?: "ManagedObjectReference", "type": type,
 * "value": moid} and nothing else, every string compared byte for byte. Each
 * problem names "_this". A _this naming another object than the path is
 * refused, not ignored: checked, authorised and audited for one provider, the
 * request could be acted on for another by an upstream that reads the body.
 * _typeName is optional (vCenter's own fault bodies carry MoRefs without one);
 * serverGuid, which govmomi omits when empty, has no meaning for a target this
 * gateway already knows, and is refused with the other members.
 */
static int check_this(const sg_json_t *v, const char *type, const sg_str_t *moid,
                      sg_stopreq_fault_t *fault)
{
    const sg_json_t *tv = NULL, *vv = NULL, *tn = NULL;

    if (v->type != SG_JSON_OBJECT)
        return fault_arg(fault, "_this", "_this must be a ManagedObjectReference.");
    for (size_t i = 0; i < v->nkids; i++) {
        const sg_json_t *k = v->kids[i];

        if (name_is(k, STR_LIT("type")))
            tv = k;
        else if (name_is(k, STR_LIT("value")))
            vv = k;
        else if (name_is(k, STR_LIT("_typeName")))
            tn = k;
        else
            return fault_arg(fault, "_this",
                             "_this holds a member a ManagedObjectReference does not have.");
    }
    if ((tn != NULL && !sg_json_is_string(tn, STR_LIT(TN_MOREF))) || tv == NULL ||
        tv->type != SG_JSON_STRING || vv == NULL || vv->type != SG_JSON_STRING)
        return fault_arg(fault, "_this", "_this must be a ManagedObjectReference.");
    if (!sg_json_is_string(tv, type, strlen(type)) || !sg_json_is_string(vv, moid->p, moid->n))
        return fault_arg(fault, "_this", "_this must name the object of the request path.");
    return SG_OK;
}

/*
 * Allows at most one JSON value per this many body bytes. The smallest valid group,
 * {"faultDomainId":{"id":"a"},"deviceGroupId":{"id":"b"}}, is 5 values in 56
 * bytes, so a valid body never needs more than one value per 11 bytes; bodies
 * such as [0,0,0,...] (one per 2 bytes) are refused before they cost tens of
 * bytes of tree per input byte.
 */
#define STOPREQ_BYTES_PER_VALUE 8

/* body[0, n) as one JSON object within the limits above, or the fault. */
static int parse_object(sg_pool_t *pool, const char *body, size_t n, sg_json_t **root,
                        sg_stopreq_fault_t *fault)
{
    const sg_json_limits_t lim = {.max_depth = SG_STOPREQ_MAX_DEPTH,
                                  .max_values = n / STOPREQ_BYTES_PER_VALUE + 16};
    sg_json_err_t err;
    int rv;

    rv = sg_json_parse(pool, body, n, &lim, root, &err);
    if (rv == SG_ENOMEM)
        return SG_ENOMEM;
    if (rv != SG_OK)
        return fault_malformed(pool, fault, &err);
    if ((*root)->type != SG_JSON_OBJECT)
        return fault_set(fault, "InvalidRequest", NULL, "The request body must be a JSON object.");
    return SG_OK;
}

int sg_stopreq_parse(sg_pool_t *pool, const char *body, size_t n, const sg_str_t *moid,
                     sg_stopreq_t *out, sg_stopreq_fault_t *fault)
{
    const sg_json_t *gid = NULL, *force = NULL, *tn = NULL, *th = NULL;
    sg_json_t *root;
    int rv;

    memset(out, 0, sizeof(*out));
    memset(fault, 0, sizeof(*fault));
    if ((rv = parse_object(pool, body, n, &root, fault)) != SG_OK)
        return rv;

    /* 1. Root members: names first, then the root _typeName. */
    for (size_t i = 0; i < root->nkids; i++) {
        const sg_json_t *k = root->kids[i];

        if (name_is(k, STR_LIT("groupId")))
            gid = k;
        else if (name_is(k, STR_LIT("force")))
            force = k;
        else if (name_is(k, STR_LIT("_typeName")))
            tn = k;
        else if (name_is(k, STR_LIT("_this")))
            th = k;
        else
            return fault_path(pool, fault, SIZE_MAX, NULL, &k->name, "Unknown member.");
    }
    if (tn != NULL && !sg_json_is_string(tn, STR_LIT(TN_ROOT)) &&
        !sg_json_is_string(tn, STR_LIT(TN_ROOT_METHOD)))
        return fault_arg(fault, "_typeName", "Wrong _typeName.");
    /* 2. The target, before anything is read for it. */
    if (th != NULL && (rv = check_this(th, "VasaProvider", moid, fault)) != SG_OK)
        return rv;
    /* 3 and 4. groupId and its elements. */
    if ((rv = check_groups(pool, gid, out, fault)) != SG_OK)
        return rv;
    /* 5. force. */
    if (force == NULL || (force->type != SG_JSON_TRUE && force->type != SG_JSON_FALSE))
        return fault_arg(fault, "force", "force is required and must be a boolean.");
    out->force = force->type == SG_JSON_TRUE;
    out->has_this = th != NULL;
    out->root = root;
    return SG_OK;
}

/* 1 when v is the string method or method + "RequestType": the two names clients
 * give a request (govmomi the method's, the OpenAPI schema the request type's). */
static int names_method(const sg_json_t *v, const char *method)
{
    static const char suffix[] = "RequestType";
    size_t n = strlen(method);

    if (v->type != SG_JSON_STRING || v->str.n < n || memcmp(v->str.p, method, n) != 0)
        return 0;
    return v->str.n == n ||
           (v->str.n == n + sizeof(suffix) - 1 && memcmp(v->str.p + n, suffix, v->str.n - n) == 0);
}

int sg_stopreq_query_parse(sg_pool_t *pool, const char *body, size_t n, const char *method,
                           const sg_str_t *moid, sg_stopreq_query_t *out,
                           sg_stopreq_fault_t *fault)
{
    const sg_json_t *tn, *th;
    sg_json_t *root;
    int rv;

    memset(out, 0, sizeof(*out));
    memset(fault, 0, sizeof(*fault));
    if (n == 0)
        return SG_OK; /* vim_rs: a method without parameters is posted without a body */
    if ((rv = parse_object(pool, body, n, &root, fault)) != SG_OK)
        return rv;
    /* Exact names and no duplicates (the parser's), so this is the one each member is. */
    tn = sg_json_get(root, STR_LIT("_typeName"));
    th = sg_json_get(root, STR_LIT("_this"));
    if (tn != NULL && !names_method(tn, method))
        return fault_arg(fault, "_typeName", "Wrong _typeName.");
    if (th != NULL && (rv = check_this(th, "SmsTask", moid, fault)) != SG_OK)
        return rv;
    out->root = root;
    out->has_this = th != NULL;
    return SG_OK;
}

/* ---- the media type ---- */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int sg_stopreq_media_type_ok(const char *value, size_t n)
{
    const char *p = value, *e = value + n;

    while (p < e && is_ows(*p))
        p++;
    if ((size_t)(e - p) < 16 || strncasecmp(p, "application/json", 16) != 0)
        return 0;
    p += 16;
    /* parameters = *( OWS ";" OWS [ parameter ] ) (RFC 9110 5.6.6) */
    for (;;) {
        const char *name, *val;
        size_t name_n, val_n;

        while (p < e && is_ows(*p))
            p++;
        if (p == e)
            return 1;
        if (*p++ != ';')
            return 0; /* "application/jsonx", "application/json, text/plain" */
        while (p < e && is_ows(*p))
            p++;
        if (p == e || *p == ';')
            continue;
        for (name = p; p < e && is_tchar(*p); p++)
            ;
        name_n = (size_t)(p - name);
        if (name_n == 0 || p == e || *p++ != '=')
            return 0;
        if (p < e && *p == '"') {
            /* quoted-string: qdtext and quoted-pairs, no control byte but HTAB */
            for (val = ++p; p < e && *p != '"'; p++) {
                if (*p == '\\' && ++p == e)
                    return 0;
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7F)
                    return 0;
            }
            if (p == e)
                return 0;
            val_n = (size_t)(p++ - val);
        } else {
            for (val = p; p < e && is_tchar(*p); p++)
                ;
            val_n = (size_t)(p - val);
            if (val_n == 0)
                return 0;
        }
        if (name_n == 7 && strncasecmp(name, "charset", 7) == 0 &&
            !(val_n == 5 && strncasecmp(val, "utf-8", 5) == 0))
            return 0;
    }
}

/* ---- re-serialisation ----
 *
 * Measured first, then written through one pointer into one reservation: the
 * body of 10,000 groups is one sg_buf_reserve, not hundreds of thousands of
 * appends. The schema left only groupId, force, _typeName and _this at the root
 * of a stop-test body; a query body may hold anything but was parsed as strictly.
 */

static int is_groupid(const sg_json_t *k)
{
    return name_is(k, STR_LIT("groupId"));
}

/* The root members forwarded: all but _this. The path names the target, and only
 * the path: one place that was checked, so none that could disagree with it. */
static int is_forwarded(const sg_json_t *k)
{
    return !name_is(k, STR_LIT("_this"));
}

/* The size of root written with groupId holding groups [first, first + count) when
 * groups is set (a stop-test body), as it came otherwise (a query body). */
static size_t body_size(const sg_json_t *root, const sg_group_t *groups, size_t first,
                        size_t count)
{
    size_t size = 2, members = 0; /* braces */

    for (size_t i = 0; i < root->nkids; i++) {
        const sg_json_t *k = root->kids[i];

        if (!is_forwarded(k))
            continue;
        size += (members++ > 0) + sg_json_name_size(k) + 1;
        if (groups == NULL || !is_groupid(k)) {
            size += sg_json_size(k);
            continue;
        }
        size += 2 + count - 1; /* brackets and commas */
        for (size_t g = first; g < first + count; g++)
            size += sg_json_size(groups[g].node);
    }
    return size;
}

static char *body_put(char *o, const sg_json_t *root, const sg_group_t *groups, size_t first,
                      size_t count)
{
    size_t members = 0;

    *o++ = '{';
    for (size_t i = 0; i < root->nkids; i++) {
        const sg_json_t *k = root->kids[i];

        if (!is_forwarded(k))
            continue;
        if (members++ > 0)
            *o++ = ',';
        o = sg_json_put_name(o, k);
        *o++ = ':';
        if (groups == NULL || !is_groupid(k)) {
            o = sg_json_put(o, k);
            continue;
        }
        *o++ = '[';
        for (size_t g = first; g < first + count; g++) {
            if (g > first)
                *o++ = ',';
            o = sg_json_put(o, groups[g].node);
        }
        *o++ = ']';
    }
    *o++ = '}';
    return o;
}

static int body_write(sg_buf_t *out, const sg_json_t *root, const sg_group_t *groups,
                      size_t first, size_t count)
{
    size_t size = body_size(root, groups, first, count);
    int rv;

    if ((rv = sg_buf_reserve(out, size)) != SG_OK)
        return rv;
    body_put(out->data + out->len, root, groups, first, count);
    out->len += size;
    return SG_OK;
}

int sg_stopreq_serialize(const sg_stopreq_t *req, size_t first, size_t count, sg_buf_t *out)
{
    /* An empty groupId would reach vCenter as the very request this proxy refuses. */
    if (req->root == NULL || count == 0 || first >= req->ngroups || count > req->ngroups - first)
        return SG_ERR;
    return body_write(out, req->root, req->groups, first, count);
}

int sg_stopreq_query_serialize(const sg_stopreq_query_t *q, sg_buf_t *out)
{
    return q->root == NULL ? SG_OK : body_write(out, q->root, NULL, 0, 0);
}
