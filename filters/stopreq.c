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

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define STR_LIT(s) (s), (sizeof(s) - 1)

#define TN_MOREF "ManagedObjectReference"

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

/* Where the walk is: a chain of frames from the value up to the root, each a member
 * ("failoverParam", written ".name" below the root) or an index ("[3]"). Built on the
 * stack as the walk descends; a string only when a fault names it. */
typedef struct path_s {
    const struct path_s *up;
    const char *name; /* a member; NULL for an index */
    size_t idx;
} path_t;

#define PATH_MAX_FRAMES 16 /* deeper than SG_STOPREQ_MAX_DEPTH allows */

/*
 * The path at + ".leaf" (leaf optional: a client's member name) from the pool, e.g.
 * "groupId[3].faultDomainId.id"; just the leaf when at is NULL (a root member).
 * NULL on ENOMEM.
 */
static const char *path_new(sg_pool_t *pool, const path_t *at, const sg_str_t *leaf)
{
    const path_t *f[PATH_MAX_FRAMES];
    size_t nf = 0, max = SG_STOPREQ_NAME_MAX + 3;
    char *buf, *o;

    for (const path_t *p = at; p != NULL && nf < PATH_MAX_FRAMES; p = p->up) {
        f[nf++] = p;
        max += p->name != NULL ? strlen(p->name) + 1 : 24;
    }
    if ((buf = o = sg_pool_alloc(pool, max)) == NULL)
        return NULL;
    while (nf > 0) {
        const path_t *p = f[--nf];

        if (p->name == NULL) {
            o += snprintf(o, 24, "[%zu]", p->idx);
            continue;
        }
        if (o != buf)
            *o++ = '.';
        o = (char *)memcpy(o, p->name, strlen(p->name)) + strlen(p->name);
    }
    if (leaf != NULL) {
        if (o != buf)
            *o++ = '.';
        o += path_put_name(o, leaf);
    }
    *o = '\0';
    return buf;
}

/* An InvalidArgument for a path built with path_new(); -2 if that fails. */
static int fault_path(sg_pool_t *pool, sg_stopreq_fault_t *fault, const path_t *at,
                      const sg_str_t *leaf, const char *message)
{
    const char *prop = path_new(pool, at, leaf);

    if (prop == NULL)
        return SG_ENOMEM;
    return fault_arg(fault, prop, message);
}

static const sg_str_t leaf_typename = {STR_LIT("_typeName")};

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

/* ---- the schema walk (the schemas are filters/ops.c's) ---- */

/* 1 when the string v holds no C0 control or DEL and at most SG_STOPREQ_MAX_ID bytes (the
 * parser already guarantees UTF-8 without NUL); an id must not be empty either. */
static int string_ok(const sg_json_t *v, int nonempty)
{
    const sg_str_t *s = &v->str;

    if ((nonempty && s->n == 0) || s->n > SG_STOPREQ_MAX_ID)
        return 0;
    if (v->str_plain)
        return 1; /* the parser found only printable ASCII (base/str.h sg_json_plain) */
    for (size_t i = 0; i < s->n; i++)
        if ((unsigned char)s->p[i] < 0x20 || s->p[i] == 0x7F)
            return 0;
    return 1;
}

/* 1 when v is a JSON number written as an integer within int32 (xsd:int). */
static int int_ok(const sg_json_t *v)
{
    const char *p = v->str.p;
    size_t n = v->str.n, i = n > 0 && p[0] == '-';
    long long x = 0;

    if (v->type != SG_JSON_NUMBER || i == n || n - i > 10)
        return 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0; /* a fraction or an exponent */
        x = x * 10 + (p[i] - '0');
    }
    return p[0] == '-' ? -x >= INT32_MIN : x <= INT32_MAX;
}

/* A message made in the pool; NULL on ENOMEM. */
static const char *pool_printf(sg_pool_t *pool, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *pool_printf(sg_pool_t *pool, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (s = sg_pool_alloc(pool, (size_t)n + 1)) == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* What a value of type t must be, for messages: "a boolean", "a FailoverParam object". */
static const char *kind_text(sg_pool_t *pool, const sg_opt_t *t)
{
    switch (t->kind) {
    case SG_OPT_BOOL:
        return "a boolean";
    case SG_OPT_ID:
        return "a non-empty string of at most 1024 bytes without control characters";
    case SG_OPT_STRING:
        return "a string of at most 1024 bytes without control characters";
    case SG_OPT_INT:
        return "a 32-bit integer";
    case SG_OPT_ARRAY:
        return "an array";
    case SG_OPT_OBJECT:
        break;
    }
    if (t->names == NULL)
        return "an object";
    return pool_printf(pool, "a %s object", t->names[0].p);
}

typedef struct {
    sg_pool_t *pool;
    sg_stopreq_fault_t *fault;
    sg_stopreq_t *out;
    size_t cap; /* out->groups' room */
} walk_t;

/* The fault for the value at `at`: message, or one made from the schema only now (a
 * valid body costs no message): "Each groupId element must be a ReplicationGroupId
 * object." for an element, "pitName is required and must be ..." for a missing member,
 * "isPlanned must be a boolean." for one of another kind. */
enum { WALK_MEMBER = 0, WALK_ELEMENT = 1, WALK_MISSING = 2 };

static int walk_fault(walk_t *w, const path_t *at, const char *message, const char *name,
                      const sg_opt_t *t, int how)
{
    const char *kind = message == NULL ? kind_text(w->pool, t) : NULL;

    if (message == NULL && kind != NULL)
        message = how == WALK_ELEMENT
                      ? pool_printf(w->pool, "Each %s element must be %s.", name, kind)
                  : how == WALK_MISSING
                      ? pool_printf(w->pool, "%s is required and must be %s.", name, kind)
                      : pool_printf(w->pool, "%s must be %s.", name, kind);
    if (message == NULL)
        return SG_ENOMEM;
    return fault_path(w->pool, w->fault, at, NULL, message);
}

/* 1 when k is named name[0, len) (len > 0): the first byte before the call. */
static inline int member_is(const sg_json_t *k, const char *name, size_t len)
{
    return k->name.n == len && k->name.p[0] == name[0] && memcmp(k->name.p, name, len) == 0;
}

/*
 * One pass over the members of the object v: found[m] (all NULL on entry) becomes the
 * client's member for members[m] (the tree is ours, so not const: a group's node is kept
 * for re-serialisation), *tn its _typeName and, when th is given (the root), *th its
 * _this. Returns NULL, or the first member (in the client's order) that is none of them.
 * The parser refused duplicate names, so a slot is filled at most once.
 */
static inline const sg_json_t *members_sort(const sg_json_t *v, const sg_opt_member_t *members,
                                            size_t n, sg_json_t **found, const sg_json_t **tn,
                                            const sg_json_t **th)
{
    *tn = NULL;
    if (th != NULL)
        *th = NULL;
    for (size_t i = 0; i < v->nkids; i++) {
        sg_json_t *k = v->kids[i];
        size_t m = 0;

        while (m < n && !member_is(k, members[m].name, members[m].len))
            m++;
        if (m < n)
            found[m] = k;
        else if (name_is(k, STR_LIT("_typeName")))
            *tn = k;
        else if (th != NULL && name_is(k, STR_LIT("_this")))
            *th = k;
        else
            return k;
    }
    return NULL;
}

/* The id member of a checked FaultDomainId or DeviceGroupId (it has one, a string). */
static const sg_json_t *id_of(const sg_json_t *o)
{
    size_t i = 0;

    while (!member_is(o->kids[i], STR_LIT("id")))
        i++;
    return o->kids[i];
}

/* Notes a ReplicationGroupId (its ids were checked; found: its faultDomainId and
 * deviceGroupId, the type's members in that order, ops.h) or a bare FaultDomainId. */
static int walk_note(walk_t *w, sg_json_t *v, int role, sg_json_t *const *found)
{
    const sg_json_t *fd = role == SG_OPT_ROLE_GROUP ? found[0] : v;
    const sg_json_t *dg = role == SG_OPT_ROLE_GROUP ? found[1] : NULL;
    sg_stopreq_t *out = w->out;
    sg_group_t *g;

    if (out->ngroups == SG_STOPREQ_MAX_GROUPS)
        return SG_ERR;
    if (out->ngroups == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 8;
        sg_group_t *ng = sg_pool_alloc(w->pool, ncap * sizeof(*ng));

        if (ng == NULL)
            return SG_ENOMEM;
        if (out->ngroups)
            memcpy(ng, out->groups, out->ngroups * sizeof(*ng));
        out->groups = ng;
        w->cap = ncap;
    }
    g = &out->groups[out->ngroups++];
    memset(g, 0, sizeof(*g));
    fd = id_of(fd);
    g->fault_domain = fd->str;
    g->fault_domain_plain = fd->str_plain;
    if (dg != NULL) {
        dg = id_of(dg);
        g->device_group = dg->str;
        g->device_group_plain = dg->str_plain;
    }
    g->node = v;
    return SG_OK;
}

static int walk_value(walk_t *w, sg_json_t *v, const sg_opt_t *t, const path_t *at,
                      const char *name, const char *message, unsigned flags, int elem);

/* 1 when v (not NULL, not null) is a valid value of the scalar type t (not an object or
 * an array). */
static inline int scalar_ok(const sg_json_t *v, const sg_opt_t *t)
{
    switch (t->kind) {
    case SG_OPT_BOOL:
        return v->type == SG_JSON_TRUE || v->type == SG_JSON_FALSE;
    case SG_OPT_ID:
    case SG_OPT_STRING:
        return v->type == SG_JSON_STRING && string_ok(v, t->kind == SG_OPT_ID);
    case SG_OPT_INT:
        return int_ok(v);
    case SG_OPT_OBJECT:
    case SG_OPT_ARRAY:
        break;
    }
    return 0;
}

static inline int is_scalar(const sg_opt_t *t)
{
    return t->kind != SG_OPT_OBJECT && t->kind != SG_OPT_ARRAY;
}

/* 1 when v names the object type t, or one of its subtypes, in _typeName. */
static int names_type(const sg_json_t *v, const sg_opt_t *t)
{
    if (v->type != SG_JSON_STRING)
        return 0;
    for (const sg_str_t *n = t->names; n != NULL && n->p != NULL; n++)
        if (v->str.n == n->n && memcmp(v->str.p, n->p, n->n) == 0)
            return 1;
    return 0;
}

/* An object of type t at `at`: its unknown members first, then its _typeName, then its
 * members in the schema's order. */
static int walk_object(walk_t *w, sg_json_t *v, const sg_opt_t *t, const path_t *at)
{
    sg_json_t *found[SG_OPT_MAX_MEMBERS] = {NULL};
    const sg_json_t *tn, *unknown;
    int rv;

    if (t->variants != NULL) {
        /* Abstract: the concrete type is the one the _typeName names, and it must. */
        const sg_opt_t *const *c = t->variants;

        tn = sg_json_get(v, STR_LIT("_typeName"));
        while (*c != NULL && (tn == NULL || !names_type(tn, *c)))
            c++;
        if (*c == NULL)
            return fault_path(w->pool, w->fault, at, &leaf_typename,
                              tn == NULL ? "The _typeName of the concrete type is required."
                                         : "Wrong _typeName.");
        t = *c;
    }
    if ((unknown = members_sort(v, t->members, t->nmembers, found, &tn, NULL)) != NULL)
        return fault_path(w->pool, w->fault, at, &unknown->name, "Unknown member.");
    if (tn != NULL && !names_type(tn, t))
        return fault_path(w->pool, w->fault, at, &leaf_typename, "Wrong _typeName.");
    for (size_t m = 0; m < t->nmembers; m++) {
        const sg_opt_member_t *mb = &t->members[m];
        const path_t here = {at, mb->name, 0};

        /* A valid scalar (an id, most often) is judged here, without a frame. */
        if (found[m] != NULL && is_scalar(mb->type) && scalar_ok(found[m], mb->type))
            continue;
        rv = walk_value(w, found[m], mb->type, &here, mb->name, mb->message, mb->flags, 0);
        if (rv != SG_OK)
            return rv;
    }
    if (t->role != SG_OPT_ROLE_NONE && (rv = walk_note(w, v, t->role, found)) != SG_OK)
        return rv == SG_ERR ? fault_path(w->pool, w->fault, at, NULL, "Too many groups.") : rv;
    return SG_OK;
}

/*
 * The value v (NULL: absent) of type t at `at`, named name in messages (elem: an element
 * of the array name). A member that is absent or null is refused when required and
 * passed over otherwise; message, when set, is the fault for it missing, of another kind
 * or (SG_OPT_NONEMPTY) empty.
 */
static int walk_value(walk_t *w, sg_json_t *v, const sg_opt_t *t, const path_t *at,
                      const char *name, const char *message, unsigned flags, int elem)
{
    int how = elem ? WALK_ELEMENT : WALK_MEMBER, rv;

    if (v == NULL || v->type == SG_JSON_NULL) {
        if (!(flags & SG_OPT_REQUIRED))
            return SG_OK;
        return walk_fault(w, at, message, name, t, elem ? WALK_ELEMENT : WALK_MISSING);
    }
    switch (t->kind) {
    case SG_OPT_BOOL:
    case SG_OPT_ID:
    case SG_OPT_STRING:
    case SG_OPT_INT:
        return scalar_ok(v, t) ? SG_OK : walk_fault(w, at, message, name, t, how);
    case SG_OPT_OBJECT:
        if (v->type != SG_JSON_OBJECT)
            return walk_fault(w, at, message, name, t, how);
        return walk_object(w, v, t, at);
    case SG_OPT_ARRAY:
        break;
    }
    if (v->type != SG_JSON_ARRAY || (v->nkids == 0 && (flags & SG_OPT_NONEMPTY)))
        return walk_fault(w, at, message, name, t, how);
    if (v->nkids > SG_STOPREQ_MAX_GROUPS) {
        const char *msg = pool_printf(w->pool, "%s has too many elements.", name);

        return msg == NULL ? SG_ENOMEM : fault_path(w->pool, w->fault, at, NULL, msg);
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const path_t here = {at, NULL, i};

        /* An element is never optional: a null in an array is of the wrong kind. */
        if ((rv = walk_value(w, v->kids[i], t->elem, &here, name, NULL, SG_OPT_REQUIRED, 1)) !=
            SG_OK)
            return rv;
    }
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

/* 1 when v names the root of op's request: the method's name (govmomi: the Go type of
 * its request is named after the method) or the schema's, the name without "_Task" and
 * "RequestType" after it (vim_rs, the OpenAPI specification). */
static int names_request(const sg_json_t *v, const sg_op_t *op)
{
    static const char suffix[] = "RequestType";
    const char *method = op->method;
    size_t n = op->method_len;

    if (v->type != SG_JSON_STRING)
        return 0;
    if (v->str.n == n && memcmp(v->str.p, method, n) == 0)
        return 1;
    if (n > 5 && memcmp(method + n - 5, "_Task", 5) == 0)
        n -= 5;
    return v->str.n == n + sizeof(suffix) - 1 && memcmp(v->str.p, method, n) == 0 &&
           memcmp(v->str.p + n, suffix, sizeof(suffix) - 1) == 0;
}

/* The stop-test's force flag (out->force). */
static int member_is_force(const sg_opt_member_t *mb)
{
    return mb->len == 5 && memcmp(mb->name, "force", 5) == 0 && mb->type->kind == SG_OPT_BOOL;
}

int sg_stopreq_parse_op(sg_pool_t *pool, const sg_op_t *op, const char *body, size_t n,
                        const sg_str_t *moid, sg_stopreq_t *out, sg_stopreq_fault_t *fault)
{
    walk_t w = {.pool = pool, .fault = fault, .out = out};
    sg_json_t *found[SG_OPT_MAX_MEMBERS] = {NULL};
    const sg_json_t *tn, *th, *unknown, *force = NULL;
    sg_json_t *root;
    int rv;

    memset(out, 0, sizeof(*out));
    memset(fault, 0, sizeof(*fault));
    if ((rv = parse_object(pool, body, n, &root, fault)) != SG_OK)
        return rv;

    /* 1. Root members: names first, then the root _typeName. */
    if ((unknown = members_sort(root, op->members, op->nmembers, found, &tn, &th)) != NULL)
        return fault_path(pool, fault, NULL, &unknown->name, "Unknown member.");
    if (tn != NULL && !names_request(tn, op))
        return fault_arg(fault, "_typeName", "Wrong _typeName.");
    /* 2. The target, before anything is read for it. */
    if (th != NULL && (rv = check_this(th, "VasaProvider", moid, fault)) != SG_OK)
        return rv;
    /* 3-5. The row's members, in its order, in depth. */
    for (size_t m = 0; m < op->nmembers; m++) {
        const sg_opt_member_t *mb = &op->members[m];
        const path_t here = {NULL, mb->name, 0};
        sg_json_t *v = found[m];

        if ((rv = walk_value(&w, v, mb->type, &here, mb->name, mb->message, mb->flags, 0)) !=
            SG_OK)
            return rv;
        if (member_is_force(mb)) {
            out->has_force = 1;
            force = v;
        }
    }
    out->force = force != NULL && force->type == SG_JSON_TRUE;
    out->all = op->empty_means_all && out->ngroups == 0;
    out->has_this = th != NULL;
    out->root = root;
    out->op = op;
    return SG_OK;
}

int sg_stopreq_parse(sg_pool_t *pool, const char *body, size_t n, const sg_str_t *moid,
                     sg_stopreq_t *out, sg_stopreq_fault_t *fault)
{
    return sg_stopreq_parse_op(pool, sg_op_of_route(SG_ROUTE_STOP_TEST), body, n, moid, out,
                               fault);
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

/* The root members forwarded: all but _this. The path names the target, and only
 * the path: one place that was checked, so none that could disagree with it. */
static int is_forwarded(const sg_json_t *k)
{
    return !name_is(k, STR_LIT("_this"));
}

/* The size of root written with groupId holding groups [first, first + count) when
 * groups is set (a stop-test body), as it came otherwise (a query body). */
static size_t body_size(const sg_json_t *root, const sg_json_t *split, const sg_group_t *groups,
                        size_t first, size_t count)
{
    size_t size = 2, members = 0; /* braces */

    for (size_t i = 0; i < root->nkids; i++) {
        const sg_json_t *k = root->kids[i];

        if (!is_forwarded(k))
            continue;
        size += (members++ > 0) + sg_json_name_size(k) + 1;
        if (groups == NULL || k != split) {
            size += sg_json_size(k);
            continue;
        }
        size += 2 + count - 1; /* brackets and commas */
        for (size_t g = first; g < first + count; g++)
            size += sg_json_size(groups[g].node);
    }
    return size;
}

static char *body_put(char *o, const sg_json_t *root, const sg_json_t *split,
                      const sg_group_t *groups, size_t first, size_t count)
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
        if (groups == NULL || k != split) {
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

static int body_write(sg_buf_t *out, const sg_json_t *root, const sg_json_t *split,
                      const sg_group_t *groups, size_t first, size_t count)
{
    size_t size = body_size(root, split, groups, first, count);
    int rv;

    if ((rv = sg_buf_reserve(out, size)) != SG_OK)
        return rv;
    body_put(out->data + out->len, root, split, groups, first, count);
    out->len += size;
    return SG_OK;
}

int sg_stopreq_serialize(const sg_stopreq_t *req, size_t first, size_t count, sg_buf_t *out)
{
    if (req->root == NULL || req->op == NULL)
        return SG_ERR;
    if (req->op->split == NULL)
        /* Never split: only ever written whole, as it was checked. */
        return first == 0 && count == req->ngroups ? body_write(out, req->root, NULL, NULL, 0, 0)
                                                   : SG_ERR;
    /* An empty groupId would reach vCenter as the very request this proxy refuses. */
    if (count == 0 || first >= req->ngroups || count > req->ngroups - first)
        return SG_ERR;
    /* The root member to slice, found once rather than compared by name per member. */
    return body_write(out, req->root,
                      sg_json_get(req->root, req->op->split, strlen(req->op->split)),
                      req->groups, first, count);
}

int sg_stopreq_query_serialize(const sg_stopreq_query_t *q, sg_buf_t *out)
{
    return q->root == NULL ? SG_OK : body_write(out, q->root, NULL, NULL, 0, 0);
}
