/*
 * filters/stopreq.c - parse, validate and re-serialise the stop-test body.
 *
 * The JSON grammar (duplicates, UTF-8, trailing bytes, depth) is filters/json.c's
 * job; this file owns the schema of TestFailoverReplicationGroupStopRequestType
 * and the fault each violation maps to. The checks run in a fixed order so that
 * a body with several problems always gets the same fault. Building the vSphere
 * fault object and deciding what to do with the request are flt_validate.c's.
 */
#include "filters/stopreq.h"

#include <stdio.h>
#include <string.h>

#define STR_LIT(s) (s), (sizeof(s) - 1)

/* Type names the API allows (ref/sms-api.md section 1.2): the root's is tolerated
 * because real clients (govmomi, vim_rs) send it. */
#define TN_ROOT "TestFailoverReplicationGroupStopRequestType"
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
    fault->status = 500; /* vCenter answers every fault with 500 (DESIGN.md point 6) */
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
                        const stopreq_holder_t *h, sg_str_t *id, sg_stopreq_fault_t *fault)
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
    if ((rv = check_holder(pool, fd, idx, &stopreq_fault_domain, &g->fault_domain, fault)) != 0 ||
        (rv = check_holder(pool, dg, idx, &stopreq_device_group, &g->device_group, fault)) != 0)
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
 * Allows at most one JSON value per this many body bytes. The smallest valid group,
 * {"faultDomainId":{"id":"a"},"deviceGroupId":{"id":"b"}}, is 5 values in 56
 * bytes, so a valid body never needs more than one value per 11 bytes; bodies
 * such as [0,0,0,...] (one per 2 bytes) are refused before they cost tens of
 * bytes of tree per input byte.
 */
#define STOPREQ_BYTES_PER_VALUE 8

int sg_stopreq_parse(sg_pool_t *pool, const char *body, size_t n, sg_stopreq_t *out,
                     sg_stopreq_fault_t *fault)
{
    const sg_json_limits_t lim = {.max_depth = SG_STOPREQ_MAX_DEPTH,
                                  .max_values = n / STOPREQ_BYTES_PER_VALUE + 16};
    const sg_json_t *gid = NULL, *force = NULL, *tn = NULL;
    sg_json_err_t err;
    sg_json_t *root;
    int rv;

    memset(out, 0, sizeof(*out));
    memset(fault, 0, sizeof(*fault));
    rv = sg_json_parse(pool, body, n, &lim, &root, &err);
    if (rv == SG_ENOMEM)
        return SG_ENOMEM;
    if (rv != SG_OK)
        return fault_malformed(pool, fault, &err);
    if (root->type != SG_JSON_OBJECT)
        return fault_set(fault, "InvalidRequest", NULL, "The request body must be a JSON object.");

    /* 1. Root members: names first, then the root _typeName. */
    for (size_t i = 0; i < root->nkids; i++) {
        const sg_json_t *k = root->kids[i];

        if (name_is(k, STR_LIT("groupId")))
            gid = k;
        else if (name_is(k, STR_LIT("force")))
            force = k;
        else if (name_is(k, STR_LIT("_typeName")))
            tn = k;
        else
            return fault_path(pool, fault, SIZE_MAX, NULL, &k->name, "Unknown member.");
    }
    if (tn != NULL && !sg_json_is_string(tn, STR_LIT(TN_ROOT)))
        return fault_arg(fault, "_typeName", "Wrong _typeName.");
    /* 2 and 3. groupId and its elements. */
    if ((rv = check_groups(pool, gid, out, fault)) != SG_OK)
        return rv;
    /* 4. force. */
    if (force == NULL || (force->type != SG_JSON_TRUE && force->type != SG_JSON_FALSE))
        return fault_arg(fault, "force", "force is required and must be a boolean.");
    out->force = force->type == SG_JSON_TRUE;
    out->root = root;
    return SG_OK;
}

/* ---- re-serialisation ----
 *
 * Measured first, then written through one pointer into one reservation: the
 * body of 10,000 groups is one sg_buf_reserve, not hundreds of thousands of
 * appends. The schema left only groupId, force and _typeName at the root.
 */

static int is_groupid(const sg_json_t *k)
{
    return name_is(k, STR_LIT("groupId"));
}

static size_t body_size(const sg_stopreq_t *req, size_t first, size_t count)
{
    const sg_json_t *root = req->root;
    size_t size = 2 + root->nkids - 1; /* braces and commas; the schema needs groupId */

    for (size_t i = 0; i < root->nkids; i++) {
        const sg_json_t *k = root->kids[i];

        size += sg_json_string_size(k->name.p, k->name.n) + 1;
        if (!is_groupid(k)) {
            size += sg_json_size(k);
            continue;
        }
        size += 2 + count - 1; /* brackets and commas */
        for (size_t g = first; g < first + count; g++)
            size += sg_json_size(req->groups[g].node);
    }
    return size;
}

static char *body_put(char *o, const sg_stopreq_t *req, size_t first, size_t count)
{
    const sg_json_t *root = req->root;

    *o++ = '{';
    for (size_t i = 0; i < root->nkids; i++) {
        const sg_json_t *k = root->kids[i];

        if (i > 0)
            *o++ = ',';
        o = sg_json_put_string(o, k->name.p, k->name.n);
        *o++ = ':';
        if (!is_groupid(k)) {
            o = sg_json_put(o, k);
            continue;
        }
        *o++ = '[';
        for (size_t g = first; g < first + count; g++) {
            if (g > first)
                *o++ = ',';
            o = sg_json_put(o, req->groups[g].node);
        }
        *o++ = ']';
    }
    *o++ = '}';
    return o;
}

int sg_stopreq_serialize(const sg_stopreq_t *req, size_t first, size_t count, sg_buf_t *out)
{
    size_t size;
    int rv;

    /* An empty groupId would reach vCenter as the very request this proxy refuses. */
    if (req->root == NULL || count == 0 || first >= req->ngroups || count > req->ngroups - first)
        return SG_ERR;
    size = body_size(req, first, count);
    if ((rv = sg_buf_reserve(out, size)) != SG_OK)
        return rv;
    body_put(out->data + out->len, req, first, count);
    out->len += size;
    return SG_OK;
}
