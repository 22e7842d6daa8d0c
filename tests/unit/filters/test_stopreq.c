/*
 * Unit tests for filters/stopreq.c: every body the stop-test route may receive,
 * with the fault it gets (type and invalidProperty) or the exact body forwarded;
 * the slices batch splitting asks for; the SmsTask query bodies; and the
 * Content-Type values that announce them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/stopreq.h"

#define L(s) (s), (sizeof(s) - 1) /* a literal with its length (it may hold NUL) */

#define FD(id) "\"faultDomainId\":{\"id\":\"" id "\"}"
#define DG(id) "\"deviceGroupId\":{\"id\":\"" id "\"}"
#define G1 "{" FD("fd-1") "," DG("dg-1") "}"
#define G2 "{" FD("fd-2") "," DG("dg-2") "}"
#define TN_ROOT "\"_typeName\":\"TestFailoverReplicationGroupStopRequestType\""
#define TN_METHOD "\"_typeName\":\"TestFailoverReplicationGroupStop_Task\""
/* _this as govmomi writes it: the MoRef of type t, value v */
#define THIS(t, v)                                                                               \
    "\"_this\":{\"_typeName\":\"ManagedObjectReference\",\"type\":\"" t "\",\"value\":\"" v "\"}"
#define THIS_OK THIS("VasaProvider", "vasa-1")
#define TAIL ",\"groupId\":[" G1 "],\"force\":false}" /* the rest of a valid body */

/* The moId of the path every stop-test body here is posted to. */
static const sg_str_t moid = {"vasa-1", 6};

typedef struct {
    const char *name;
    const char *body;
    size_t len;
    const char *type; /* expected fault type; NULL: accepted */
    const char *prop; /* expected invalidProperty (NULL for InvalidRequest) */
    const char *out;  /* accepted: the exact forwarded body */
} body_case_t;

#define REQ(name, body) {name, L(body), "InvalidRequest", NULL, NULL}
#define ARG(name, body, prop) {name, L(body), "InvalidArgument", prop, NULL}
#define OK(name, body, out) {name, L(body), NULL, NULL, out}

static const body_case_t cases[] = {
    /* Not one JSON object: InvalidRequest. */
    REQ("empty body", ""),
    REQ("whitespace only", " \r\n\t "),
    REQ("an array", "[]"),
    REQ("an empty string", "\"\""),
    REQ("null", "null"),
    REQ("a number", "42"),
    REQ("duplicate groupId, valid first", "{\"groupId\":[" G1 "],\"groupId\":[],\"force\":false}"),
    REQ("duplicate groupId, empty first", "{\"groupId\":[],\"groupId\":[" G1 "],\"force\":false}"),
    REQ("duplicate force", "{\"groupId\":[" G1 "],\"force\":true,\"force\":false}"),
    REQ("duplicate nested id",
        "{\"groupId\":[{\"faultDomainId\":{\"id\":\"fd-1\",\"id\":\"fd-2\"}," DG(
            "dg") "}],"
                  "\"force\":false}"),
    REQ("duplicate deviceGroupId",
        "{\"groupId\":[{" FD("f") "," DG("a") "," DG("b") "}],\"force\":false}"),
    REQ("trailing word", "{\"groupId\":[" G1 "],\"force\":false} x"),
    REQ("two objects",
        "{\"groupId\":[" G1 "],\"force\":false}{\"groupId\":[" G2 "],\"force\":false}"),
    REQ("byte order mark", "\xEF\xBB\xBF{\"groupId\":[" G1 "],\"force\":false}"),
    REQ("invalid UTF-8 in an id",
        "{\"groupId\":[{" FD("fd-\xC0\xAF") "," DG("dg") "}],\"force\":false}"),
    REQ("encoded surrogate in an id",
        "{\"groupId\":[{" FD("f") "," DG("\xED\xA0\x80") "}],\"force\":false}"),
    REQ("escaped NUL in an id",
        "{\"groupId\":[{" FD("fd\\u0000x") "," DG("dg") "}],\"force\":false}"),
    REQ("lone surrogate in an id",
        "{\"groupId\":[{" FD("fd\\ud800") "," DG("dg") "}],\"force\":false}"),
    REQ("raw tab in an id", "{\"groupId\":[{" FD("fd\tx") "," DG("dg") "}],\"force\":false}"),
    REQ("trailing comma", "{\"groupId\":[" G1 ",],\"force\":false}"),
    REQ("comment", "{\"groupId\":[" G1 "],/* no */\"force\":false}"),
    REQ("NaN force", "{\"groupId\":[" G1 "],\"force\":NaN}"),
    REQ("leading zero", "{\"groupId\":[" G1 "],\"force\":01}"),
    REQ("unterminated", "{\"groupId\":[" G1 "],\"force\":false"),

    /* Root members, in the fixed order: unknown names, _typeName, groupId, elements, force. */
    ARG("no members", "{}", "groupId"),
    ARG("groupId null", "{\"groupId\":null,\"force\":false}", "groupId"),
    ARG("groupId empty", "{\"groupId\":[],\"force\":false}", "groupId"),
    ARG("groupId an object", "{\"groupId\":{},\"force\":false}", "groupId"),
    ARG("groupId a string", "{\"groupId\":\"fd-1\",\"force\":false}", "groupId"),
    ARG("groupId missing", "{\"force\":false}", "groupId"),
    ARG("unknown root member", "{\"groupId\":[" G1 "],\"force\":false,\"color\":\"red\"}", "color"),
    ARG("unknown root member first", "{\"color\":1,\"groupId\":[],\"force\":\"x\"}", "color"),
    ARG("names are case-sensitive", "{\"GroupId\":[" G1 "],\"force\":false}", "GroupId"),
    ARG("escaped control in a member name", "{\"a\\u000ab\":1}", "a?b"),
    ARG("empty member name", "{\"groupId\":[{" FD("f") "," DG("d") ",\"\":1}],\"force\":false}",
        "groupId[0].\"\""),
    ARG("wrong root _typeName", "{\"_typeName\":\"Other\",\"groupId\":[" G1 "],\"force\":false}",
        "_typeName"),
    ARG("root _typeName a number", "{\"_typeName\":1,\"groupId\":[" G1 "],\"force\":false}",
        "_typeName"),
    ARG("groupId before force", "{\"groupId\":[],\"force\":null}", "groupId"),
    ARG("elements before force", "{\"force\":\"no\",\"groupId\":[" G1 ",{}]}",
        "groupId[1].faultDomainId"),
    ARG("force a string", "{\"groupId\":[" G1 "],\"force\":\"false\"}", "force"),
    ARG("force missing", "{\"groupId\":[" G1 "]}", "force"),
    ARG("force null", "{\"groupId\":[" G1 "],\"force\":null}", "force"),
    ARG("force a number", "{\"groupId\":[" G1 "],\"force\":0}", "force"),

    /* The root _typeName: the schema's name (vim_rs) or the method's (govmomi). */
    ARG("another method as root _typeName",
        "{\"_typeName\":\"TestFailoverReplicationGroupStart_Task\",\"groupId\":[" G1 "],"
        "\"force\":false}",
        "_typeName"),
    ARG("the method name in other case as root _typeName",
        "{\"_typeName\":\"testFailoverReplicationGroupStop_Task\",\"groupId\":[" G1 "],"
        "\"force\":false}",
        "_typeName"),
    ARG("the method name without _Task as root _typeName",
        "{\"_typeName\":\"TestFailoverReplicationGroupStop\",\"groupId\":[" G1 "],"
        "\"force\":false}",
        "_typeName"),

    /* _this: the path's VasaProvider, exactly, or refused naming _this. */
    ARG("_this naming another provider",
        "{" THIS("VasaProvider", "vasa-2") TAIL, "_this"),
    ARG("_this naming a prefix of the provider",
        "{" THIS("VasaProvider", "vasa-") TAIL, "_this"),
    ARG("_this naming a longer provider",
        "{" THIS("VasaProvider", "vasa-10") TAIL, "_this"),
    ARG("_this naming the provider in other case",
        "{" THIS("VasaProvider", "VASA-1") TAIL, "_this"),
    ARG("_this naming an empty value",
        "{" THIS("VasaProvider", "") TAIL, "_this"),
    ARG("_this naming the provider with a trailing space",
        "{" THIS("VasaProvider", "vasa-1 ") TAIL, "_this"),
    ARG("_this of another type", "{" THIS("SmsTask", "vasa-1") TAIL,
        "_this"),
    ARG("_this of the type in other case",
        "{" THIS("vasaProvider", "vasa-1") TAIL, "_this"),
    ARG("_this with serverGuid",
        "{\"_this\":{\"type\":\"VasaProvider\",\"value\":\"vasa-1\",\"serverGuid\":\"g\"},"
        "\"groupId\":[" G1 "],\"force\":false}",
        "_this"),
    ARG("_this with an unknown member first",
        "{\"_this\":{\"x\":1,\"type\":\"VasaProvider\",\"value\":\"vasa-1\"},\"groupId\":[" G1
        "],\"force\":false}",
        "_this"),
    ARG("_this with another _typeName",
        "{\"_this\":{\"_typeName\":\"ManagedObject\",\"type\":\"VasaProvider\","
        "\"value\":\"vasa-1\"},"
        "\"groupId\":[" G1 "],\"force\":false}",
        "_this"),
    ARG("_this without value", "{\"_this\":{\"type\":\"VasaProvider\"}" TAIL,
        "_this"),
    ARG("_this without type", "{\"_this\":{\"value\":\"vasa-1\"}" TAIL,
        "_this"),
    ARG("_this value a number",
        "{\"_this\":{\"type\":\"VasaProvider\",\"value\":1},\"groupId\":[" G1 "],\"force\":false}",
        "_this"),
    ARG("_this value an object",
        "{\"_this\":{\"type\":\"VasaProvider\",\"value\":{\"value\":\"vasa-1\"}},\"groupId\":[" G1
        "],\"force\":false}",
        "_this"),
    ARG("_this type null",
        "{\"_this\":{\"type\":null,\"value\":\"vasa-1\"},\"groupId\":[" G1 "],\"force\":false}",
        "_this"),
    ARG("_this a string", "{\"_this\":\"vasa-1\"" TAIL, "_this"),
    ARG("_this null", "{\"_this\":null,\"groupId\":[" G1 "],\"force\":false}", "_this"),
    ARG("_this an array", "{\"_this\":[\"VasaProvider\",\"vasa-1\"]" TAIL,
        "_this"),
    ARG("_this empty", "{\"_this\":{},\"groupId\":[" G1 "],\"force\":false}", "_this"),
    ARG("_this in other case is an unknown member",
        "{\"_This\":{\"type\":\"VasaProvider\",\"value\":\"vasa-1\"}" TAIL,
        "_This"),
    ARG("_this in an element is an unknown member",
        "{\"groupId\":[{" FD("f") "," DG("d") "," THIS_OK "}],\"force\":false}",
        "groupId[0]._this"),
    ARG("_this before groupId",
        "{\"groupId\":[]," THIS("VasaProvider", "vasa-2") ",\"force\":false}",
        "_this"),
    ARG("_typeName before _this",
        "{" THIS("VasaProvider", "vasa-2") ",\"_typeName\":\"X\"" TAIL,
        "_typeName"),
    ARG("unknown members before _this",
        "{" THIS("VasaProvider", "vasa-2") ",\"color\":1,\"groupId\":[" G1 "],\"force\":false}",
        "color"),
    REQ("duplicate _this, the path's first",
        "{" THIS_OK "," THIS("VasaProvider", "vasa-2") TAIL),
    REQ("duplicate _this, the same twice", "{" THIS_OK "," THIS_OK TAIL),
    REQ("duplicate value in _this",
        "{\"_this\":{\"type\":\"VasaProvider\",\"value\":\"vasa-1\",\"value\":\"vasa-2\"},"
        "\"groupId\":[" G1 "],\"force\":false}"),
    REQ("duplicate _this spelt with an escape",
        "{" THIS_OK ",\"_thi\\u0073\":{\"type\":\"VasaProvider\",\"value\":\"vasa-2\"},"
        "\"groupId\":[" G1
        "],\"force\":false}"),
    REQ("NUL in the _this value",
        "{\"_this\":{\"type\":\"VasaProvider\",\"value\":\"vasa-1\\u0000x\"},\"groupId\":[" G1
        "],\"force\":false}"),

    /* Elements. */
    ARG("null element", "{\"groupId\":[null],\"force\":false}", "groupId[0]"),
    ARG("array element", "{\"groupId\":[" G1 ",[]],\"force\":false}", "groupId[1]"),
    ARG("empty element", "{\"groupId\":[{}],\"force\":false}", "groupId[0].faultDomainId"),
    ARG("unknown member in an element",
        "{\"groupId\":[{" FD("f") "," DG("d") ",\"color\":1}],\"force\":false}",
        "groupId[0].color"),
    ARG("unknown member in faultDomainId",
        "{\"groupId\":[{\"faultDomainId\":{\"id\":\"f\",\"color\":1}," DG(
            "d") "}],\"force\":false}",
        "groupId[0].faultDomainId.color"),
    ARG("unknown member in the second deviceGroupId",
        "{\"groupId\":[" G1 ",{" FD("f") ",\"deviceGroupId\":{\"x\":1,\"id\":\"d\"}}],"
                                         "\"force\":false}",
        "groupId[1].deviceGroupId.x"),
    ARG("wrong element _typeName",
        "{\"groupId\":[{\"_typeName\":\"GroupId\"," FD("f") "," DG("d") "}],\"force\":false}",
        "groupId[0]._typeName"),
    ARG("wrong faultDomainId _typeName",
        "{\"groupId\":[{\"faultDomainId\":{\"_typeName\":\"DeviceGroupId\",\"id\":\"f\"}," DG(
            "d") "}],\"force\":false}",
        "groupId[0].faultDomainId._typeName"),
    ARG("wrong deviceGroupId _typeName",
        "{\"groupId\":[{" FD("f") ",\"deviceGroupId\":{\"_typeName\":null,\"id\":\"d\"}}],"
                                  "\"force\":false}",
        "groupId[0].deviceGroupId._typeName"),
    ARG("faultDomainId a string",
        "{\"groupId\":[{\"faultDomainId\":\"f\"," DG("d") "}],\"force\":false}",
        "groupId[0].faultDomainId"),
    ARG("deviceGroupId missing", "{\"groupId\":[{" FD("f") "}],\"force\":false}",
        "groupId[0].deviceGroupId"),
    ARG("number as an id",
        "{\"groupId\":[{\"faultDomainId\":{\"id\":7}," DG("d") "}],\"force\":false}",
        "groupId[0].faultDomainId.id"),
    ARG("null as an id",
        "{\"groupId\":[{" FD("f") ",\"deviceGroupId\":{\"id\":null}}],\"force\":false}",
        "groupId[0].deviceGroupId.id"),
    ARG("object as an id",
        "{\"groupId\":[{\"faultDomainId\":{\"id\":{\"id\":\"f\"}}," DG("d") "}],\"force\":false}",
        "groupId[0].faultDomainId.id"),
    ARG("id missing", "{\"groupId\":[{" FD("f") ",\"deviceGroupId\":{}}],\"force\":false}",
        "groupId[0].deviceGroupId.id"),
    ARG("empty id", "{\"groupId\":[" G1 ",{" FD("") "," DG("d") "}],\"force\":false}",
        "groupId[1].faultDomainId.id"),
    ARG("escaped control character in an id",
        "{\"groupId\":[{" FD("fd\\u0001") "," DG("dg") "}],\"force\":false}",
        "groupId[0].faultDomainId.id"),
    ARG("escaped newline in an id", "{\"groupId\":[{" FD("f") "," DG("d\\n") "}],\"force\":false}",
        "groupId[0].deviceGroupId.id"),
    ARG("DEL in an id", "{\"groupId\":[{" FD("f") "," DG("d\x7F") "}],\"force\":false}",
        "groupId[0].deviceGroupId.id"),

    /* Accepted: the forwarded body is compact, in the client's member order. */
    OK("minimal body", "{\"groupId\":[" G1 "],\"force\":false}",
       "{\"groupId\":[" G1 "],\"force\":false}"),
    OK("force true and two groups", "{\"groupId\":[" G1 "," G2 "],\"force\":true}",
       "{\"groupId\":[" G1 "," G2 "],\"force\":true}"),
    OK("force first", "{\"force\":false,\"groupId\":[" G1 "]}",
       "{\"force\":false,\"groupId\":[" G1 "]}"),
    OK("root _typeName kept", "{" TN_ROOT ",\"groupId\":[" G1 "],\"force\":false}",
       "{" TN_ROOT ",\"groupId\":[" G1 "],\"force\":false}"),
    OK("root _typeName last", "{\"groupId\":[" G1 "],\"force\":false," TN_ROOT "}",
       "{\"groupId\":[" G1 "],\"force\":false," TN_ROOT "}"),
    OK("every _typeName of the API example",
       "{\n  \"groupId\": [\n    {\n      \"_typeName\": \"ReplicationGroupId\",\n"
       "      \"faultDomainId\": { \"_typeName\": \"FaultDomainId\", \"id\": \"fd-east-01\" },\n"
       "      \"deviceGroupId\": { \"_typeName\": \"DeviceGroupId\", \"id\": \"rg-0007\" }\n"
       "    }\n  ],\n  \"force\": false\n}\n",
       "{\"groupId\":[{\"_typeName\":\"ReplicationGroupId\",\"faultDomainId\":{\"_typeName\":"
       "\"FaultDomainId\",\"id\":\"fd-east-01\"},\"deviceGroupId\":{\"_typeName\":"
       "\"DeviceGroupId\",\"id\":\"rg-0007\"}}],\"force\":false}"),
    OK("whitespace everywhere",
       " \t{ \"groupId\" :\r\n [ { \"deviceGroupId\" : { \"id\" : \"d\" } , \"faultDomainId\" :"
       " { \"id\" : \"f\" } } ] ,\n\"force\" : true } \r\n",
       "{\"groupId\":[{\"deviceGroupId\":{\"id\":\"d\"},\"faultDomainId\":{\"id\":\"f\"}}],"
       "\"force\":true}"),
    OK("unicode escapes in ids become UTF-8",
       "{\"groupId\":[{" FD("fd-\\u00e9") "," DG("\\ud83d\\ude00\\u20ac") "}],\"force\":false}",
       "{\"groupId\":[{" FD("fd-\xC3\xA9") "," DG(
           "\xF0\x9F\x98\x80\xE2\x82\xAC") "}],\"force\":false}"),
    OK("quotes and backslashes in ids are re-escaped",
       "{\"groupId\":[{" FD("a\\\"b\\\\c\\/d") "," DG("d") "}],\"force\":false}",
       "{\"groupId\":[{" FD("a\\\"b\\\\c/d") "," DG("d") "}],\"force\":false}"),
    OK("escaped member names are decoded", "{\"\\u0066orce\":false,\"groupId\":[" G1 "]}",
       "{\"force\":false,\"groupId\":[" G1 "]}"),
    OK("govmomi's root _typeName is kept", "{" TN_METHOD ",\"groupId\":[" G1 "],\"force\":false}",
       "{" TN_METHOD ",\"groupId\":[" G1 "],\"force\":false}"),
    OK("govmomi's body: _this checked and not forwarded",
       "{\"_typeName\":\"TestFailoverReplicationGroupStop_Task\",\"_this\":{\"_typeName\":"
       "\"ManagedObjectReference\",\"type\":\"VasaProvider\",\"value\":\"vasa-1\"},\"groupId\":"
       "[{\"_typeName\":\"ReplicationGroupId\",\"faultDomainId\":{\"_typeName\":\"FaultDomainId\","
       "\"id\":\"fd-1\"},\"deviceGroupId\":{\"_typeName\":\"DeviceGroupId\",\"id\":\"dg-1\"}}],"
       "\"force\":false}\n",
       "{\"_typeName\":\"TestFailoverReplicationGroupStop_Task\",\"groupId\":"
       "[{\"_typeName\":\"ReplicationGroupId\",\"faultDomainId\":{\"_typeName\":\"FaultDomainId\","
       "\"id\":\"fd-1\"},\"deviceGroupId\":{\"_typeName\":\"DeviceGroupId\",\"id\":\"dg-1\"}}],"
       "\"force\":false}"),
    OK("_this without _typeName",
       "{\"_this\":{\"type\":\"VasaProvider\",\"value\":\"vasa-1\"},\"groupId\":[" G1
       "],\"force\":true}",
       "{\"groupId\":[" G1 "],\"force\":true}"),
    OK("_this last, members in any order",
       "{\"force\":false,\"groupId\":[" G1 "],\"_this\":{\"value\":\"vasa-1\",\"_typeName\":"
       "\"ManagedObjectReference\",\"type\":\"VasaProvider\"}}",
       "{\"force\":false,\"groupId\":[" G1 "]}"),
    OK("_this value spelt with escapes",
       "{\"_this\":{\"type\":\"Vasa\\u0050rovider\",\"value\":\"vasa\\u002d1\"},\"groupId\":[" G1
       "],\"force\":false}",
       "{\"groupId\":[" G1 "],\"force\":false}"),
    OK("raw UTF-8 id", "{\"groupId\":[{" FD("\xE6\x9D\xB1") "," DG("d") "}],\"force\":false}",
       "{\"groupId\":[{" FD("\xE6\x9D\xB1") "," DG("d") "}],\"force\":false}"),
};

static void check_case(const body_case_t *c)
{
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    sg_buf_t out;
    int rv;

    sg_pool_init(&pool, 1024);
    sg_buf_init(&out, 1 << 20);
    rv = sg_stopreq_parse(&pool, c->body, c->len, &moid, &req, &fault);
    if (c->type != NULL) {
        if (rv != -1 || fault.status != 500 || fault.type == NULL ||
            strcmp(fault.type, c->type) != 0 ||
            (c->prop == NULL) != (fault.invalid_property == NULL) ||
            (c->prop != NULL && strcmp(c->prop, fault.invalid_property) != 0))
            fail_msg("case \"%s\": rv %d, %s \"%s\" (%s); expected %s \"%s\"", c->name, rv,
                     fault.type ? fault.type : "-",
                     fault.invalid_property ? fault.invalid_property : "(null)",
                     fault.message ? fault.message : "-", c->type, c->prop ? c->prop : "(null)");
        assert_non_null(fault.message);
    } else {
        if (rv != 0)
            fail_msg("case \"%s\": refused: %s \"%s\" (%s)", c->name, fault.type,
                     fault.invalid_property ? fault.invalid_property : "(null)", fault.message);
        assert_int_equal(sg_stopreq_serialize(&req, 0, req.ngroups, &out), SG_OK);
        if (out.len != strlen(c->out) || memcmp(out.data, c->out, out.len) != 0)
            fail_msg("case \"%s\": forwarded %.*s", c->name, (int)out.len, out.data);
    }
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

static void answers_each_body_with_its_fault_or_forwarded_form(void **state)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++)
        check_case(&cases[i]);
}

static void fills_groups_and_force_from_the_body(void **state)
{
    static const char body[] = "{\"groupId\":[" G1 ",{" FD("fd-\\u00e9") "," DG("x")
                               "}],\"force\":true}";
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &moid, &req, &fault), 0);
    assert_int_equal(req.ngroups, 2);
    assert_int_equal(req.force, 1);
    assert_non_null(req.root);
    assert_string_equal(req.groups[0].fault_domain.p, "fd-1");
    assert_int_equal(req.groups[0].fault_domain.n, 4);
    assert_string_equal(req.groups[0].device_group.p, "dg-1");
    assert_string_equal(req.groups[1].fault_domain.p, "fd-\xC3\xA9");
    assert_int_equal(req.groups[1].fault_domain.n, 5);
    assert_ptr_equal(req.groups[1].node, req.root->kids[0]->kids[1]);
    /* The audit copies a plain id and escapes the others (filters/flt_audit.c). */
    assert_int_equal(req.groups[0].fault_domain_plain, 1);
    assert_int_equal(req.groups[0].device_group_plain, 1);
    assert_int_equal(req.groups[1].fault_domain_plain, 0);
    assert_int_equal(req.groups[1].device_group_plain, 1);
    sg_pool_dispose(&pool);
}

static void never_echoes_client_bytes_in_a_malformed_body_message(void **state)
{
    static const char body[] =
        "{\"groupId\":[{" FD("secret-\xFF") "," DG("d") "}],\"force\":false}";
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &moid, &req, &fault), -1);
    assert_string_equal(fault.type, "InvalidRequest");
    assert_null(fault.invalid_property);
    assert_null(strstr(fault.message, "secret"));
    assert_non_null(strstr(fault.message, "invalid UTF-8"));
    assert_non_null(strstr(fault.message, "at byte 43"));
    sg_pool_dispose(&pool);
}

/* ---- generated bodies ---- */

typedef struct {
    char *p;
    size_t n, cap;
} text_t;

static void text_add(text_t *t, const char *s, size_t n)
{
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
}

static void text_adds(text_t *t, const char *s)
{
    text_add(t, s, strlen(s));
}

/* {"groupId":[ n groups "fd-i"/"dg-i" ],"force":false} */
static text_t groups_body(size_t n)
{
    text_t t = {0};
    char g[128];

    text_adds(&t, "{\"groupId\":[");
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(g, sizeof(g), "%s{\"faultDomainId\":{\"id\":\"fd-%zu\"},"
                         "\"deviceGroupId\":{\"id\":\"dg-%zu\"}}", i ? "," : "", i, i);
        text_add(&t, g, (size_t)k);
    }
    text_adds(&t, "],\"force\":false}");
    return t;
}

static void refuses_two_hundred_levels_of_nesting_as_malformed(void **state)
{
    text_t t = {0};
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    text_adds(&t, "{\"groupId\":");
    for (int i = 0; i < 200; i++)
        text_adds(&t, "[");
    for (int i = 0; i < 200; i++)
        text_adds(&t, "]");
    text_adds(&t, ",\"force\":false}");
    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &moid, &req, &fault), -1);
    assert_string_equal(fault.type, "InvalidRequest");
    assert_null(fault.invalid_property);
    assert_non_null(strstr(fault.message, "nesting too deep"));
    sg_pool_dispose(&pool);
    free(t.p);
}

static void accepts_ten_thousand_groups_and_forwards_them_all(void **state)
{
    text_t t = groups_body(10000);
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    sg_buf_t out;

    sg_pool_init(&pool, 16384);
    sg_buf_init(&out, t.n);
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &moid, &req, &fault), 0);
    assert_int_equal(req.ngroups, 10000);
    assert_string_equal(req.groups[9999].fault_domain.p, "fd-9999");
    assert_string_equal(req.groups[4321].device_group.p, "dg-4321");
    assert_int_equal(sg_stopreq_serialize(&req, 0, req.ngroups, &out), SG_OK);
    assert_int_equal(out.len, t.n); /* the body was already compact */
    assert_memory_equal(out.data, t.p, t.n);
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
    free(t.p);
}

static void refuses_more_than_the_group_limit(void **state)
{
    text_t t = groups_body(SG_STOPREQ_MAX_GROUPS + 1);
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    sg_pool_init(&pool, 65536);
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &moid, &req, &fault), -1);
    assert_string_equal(fault.type, "InvalidArgument");
    assert_string_equal(fault.invalid_property, "groupId");
    sg_pool_dispose(&pool);
    free(t.p);
}

static void refuses_a_body_of_many_tiny_values_before_building_it(void **state)
{
    text_t t = {0};
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    text_adds(&t, "{\"groupId\":[0");
    for (int i = 0; i < 100000; i++)
        text_adds(&t, ",0");
    text_adds(&t, "],\"force\":false}");
    sg_pool_init(&pool, 4096);
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &moid, &req, &fault), -1);
    assert_string_equal(fault.type, "InvalidRequest");
    assert_non_null(strstr(fault.message, "too many values"));
    sg_pool_dispose(&pool);
    free(t.p);
}

/* Body with one group whose fault domain (which == 0) or device group id is n bytes. */
static int parse_with_id_of(size_t n, int which, sg_stopreq_fault_t *fault)
{
    text_t t = {0};
    char *id = malloc(n + 1);
    sg_stopreq_t req;
    sg_pool_t pool;
    int rv;

    memset(id, 'a', n);
    id[n] = '\0';
    text_adds(&t, "{\"groupId\":[{\"faultDomainId\":{\"id\":\"");
    text_adds(&t, which == 0 ? id : "f");
    text_adds(&t, "\"},\"deviceGroupId\":{\"id\":\"");
    text_adds(&t, which == 0 ? "d" : id);
    text_adds(&t, "\"}}],\"force\":false}");
    sg_pool_init(&pool, 1024);
    rv = sg_stopreq_parse(&pool, t.p, t.n, &moid, &req, fault);
    if (rv == 0)
        assert_int_equal(which == 0 ? req.groups[0].fault_domain.n : req.groups[0].device_group.n,
                         n);
    sg_pool_dispose(&pool); /* fault strings are only compared by the caller when static */
    free(id);
    free(t.p);
    return rv;
}

static void accepts_ids_of_1024_bytes_and_refuses_1025(void **state)
{
    sg_stopreq_fault_t fault;

    assert_int_equal(parse_with_id_of(1024, 0, &fault), 0);
    assert_int_equal(parse_with_id_of(1024, 1, &fault), 0);
    assert_int_equal(parse_with_id_of(1025, 0, &fault), -1);
    assert_string_equal(fault.type, "InvalidArgument");
    assert_int_equal(parse_with_id_of(1025, 1, &fault), -1);
    assert_string_equal(fault.type, "InvalidArgument");
}

static void names_the_path_of_an_oversized_id(void **state)
{
    static char body[2048];
    char id[1026];
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    int n;

    memset(id, 'x', 1025);
    id[1025] = '\0';
    n = snprintf(body, sizeof(body), "{\"groupId\":[" G1 ",{" FD("f") ",\"deviceGroupId\":"
                 "{\"id\":\"%s\"}}],\"force\":false}", id);
    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, body, (size_t)n, &moid, &req, &fault), -1);
    assert_string_equal(fault.invalid_property, "groupId[1].deviceGroupId.id");
    sg_pool_dispose(&pool);
}

static void cuts_a_long_unknown_member_name_on_a_character_boundary(void **state)
{
    text_t t = {0};
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    text_adds(&t, "{\"groupId\":[" G1 ",{" FD("f") "," DG("d") ",\"");
    for (int i = 0; i < 127; i++)
        text_adds(&t, "n");
    text_adds(&t, "\xC3\xA9\xC3\xA9\":1}],\"force\":false}"); /* é spans bytes 128-129 */
    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &moid, &req, &fault), -1);
    assert_string_equal(fault.type, "InvalidArgument");
    assert_int_equal(strlen(fault.invalid_property), strlen("groupId[1].") + 127);
    assert_memory_equal(fault.invalid_property, "groupId[1].nnn", 14);
    sg_pool_dispose(&pool);
    free(t.p);
}

/* ---- slices ---- */

static void serializes_slices_with_the_clients_root_members(void **state)
{
    static const char body[] = "{" TN_ROOT ",\"force\":true,\"groupId\":[" G1 "," G2 ",{" FD("fd-3")
                               "," DG("dg-3") "}]}";
    static const struct {
        size_t first, count;
        const char *out;
    } slices[] = {
        {0, 1, "{" TN_ROOT ",\"force\":true,\"groupId\":[" G1 "]}"},
        {1, 2, "{" TN_ROOT ",\"force\":true,\"groupId\":[" G2 ",{" FD("fd-3") "," DG("dg-3") "}]}"},
        {2, 1, "{" TN_ROOT ",\"force\":true,\"groupId\":[{" FD("fd-3") "," DG("dg-3") "}]}"},
        {0, 3, "{" TN_ROOT ",\"force\":true,\"groupId\":[" G1 "," G2 ",{" FD("fd-3") ","
               DG("dg-3") "}]}"},
    };
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &moid, &req, &fault), 0);
    for (size_t i = 0; i < SG_ARRAY_SIZE(slices); i++) {
        sg_buf_t out;

        sg_buf_init(&out, 4096);
        assert_int_equal(sg_stopreq_serialize(&req, slices[i].first, slices[i].count, &out),
                         SG_OK);
        if (out.len != strlen(slices[i].out) || memcmp(out.data, slices[i].out, out.len) != 0)
            fail_msg("slice %zu: %.*s", i, (int)out.len, out.data);
        sg_buf_dispose(&out);
    }
    sg_pool_dispose(&pool);
}

static void refuses_empty_and_out_of_range_slices(void **state)
{
    static const char body[] = "{\"groupId\":[" G1 "," G2 "],\"force\":false}";
    static const struct {
        size_t first, count;
    } bad[] = {{0, 0}, {2, 1}, {1, 2}, {0, 3}, {1, SIZE_MAX}, {SIZE_MAX, 1}, {3, 0}};
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    sg_buf_t out;

    sg_pool_init(&pool, 1024);
    sg_buf_init(&out, 4096);
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &moid, &req, &fault), 0);
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        assert_int_equal(sg_stopreq_serialize(&req, bad[i].first, bad[i].count, &out), SG_ERR);
        assert_int_equal(out.len, 0);
    }
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

static void leaves_the_buffer_as_it_was_when_the_body_does_not_fit(void **state)
{
    static const char body[] = "{\"groupId\":[" G1 "," G2 "],\"force\":false}";
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    sg_buf_t out;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &moid, &req, &fault), 0);
    /* One byte short of the unread "b" plus the body. */
    sg_buf_init(&out, sizeof(body) - 1);
    assert_int_equal(sg_buf_append(&out, "ab", 2), SG_OK);
    sg_buf_consume(&out, 1);
    assert_int_equal(sg_stopreq_serialize(&req, 0, 2, &out), SG_ETOOBIG);
    assert_int_equal(sg_buf_avail(&out), 1);
    assert_memory_equal(sg_buf_head(&out), "b", 1);
    out.max = sizeof(body); /* exactly enough */
    assert_int_equal(sg_stopreq_serialize(&req, 0, 2, &out), SG_OK);
    assert_int_equal(sg_buf_avail(&out), sizeof(body));
    assert_memory_equal(sg_buf_head(&out) + 1, body, sizeof(body) - 1);
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

static void says_whether_the_body_named_its_target(void **state)
{
    static const char with[] = "{" TN_METHOD "," THIS_OK ",\"groupId\":[" G1 "],\"force\":true}";
    static const char without[] = "{\"groupId\":[" G1 "],\"force\":true}";
    static const sg_str_t other = {"vasa-2", 6};
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_stopreq_parse(&pool, with, sizeof(with) - 1, &moid, &req, &fault), 0);
    assert_int_equal(req.has_this, 1);
    assert_int_equal(sg_stopreq_parse(&pool, without, sizeof(without) - 1, &moid, &req, &fault), 0);
    assert_int_equal(req.has_this, 0);
    /* The same body posted to another provider's path names the wrong one. */
    assert_int_equal(sg_stopreq_parse(&pool, with, sizeof(with) - 1, &other, &req, &fault), -1);
    assert_string_equal(fault.type, "InvalidArgument");
    assert_string_equal(fault.invalid_property, "_this");
    assert_null(strstr(fault.message, "vasa"));
    sg_pool_dispose(&pool);
}

static void leaves_this_out_of_every_slice(void **state)
{
    static const char body[] = "{" THIS_OK "," TN_METHOD ",\"force\":true,\"groupId\":[" G1 "," G2
                               "]," "\"_x\":0}";
    static const char body_ok[] = "{" THIS_OK "," TN_METHOD ",\"force\":true,\"groupId\":[" G1 ","
                                  G2 "]}";
    sg_stopreq_fault_t fault;
    sg_stopreq_t req;
    sg_pool_t pool;
    sg_buf_t out;

    sg_pool_init(&pool, 1024);
    sg_buf_init(&out, 4096);
    /* an unknown member is still refused with _this present */
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &moid, &req, &fault), -1);
    assert_string_equal(fault.invalid_property, "_x");
    assert_int_equal(sg_stopreq_parse(&pool, body_ok, sizeof(body_ok) - 1, &moid, &req, &fault), 0);
    assert_int_equal(sg_stopreq_serialize(&req, 1, 1, &out), SG_OK);
    assert_int_equal(out.len, strlen("{" TN_METHOD ",\"force\":true,\"groupId\":[" G2 "]}"));
    assert_memory_equal(out.data, "{" TN_METHOD ",\"force\":true,\"groupId\":[" G2 "]}", out.len);
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

/* ---- SmsTask queries ---- */

typedef struct {
    const char *name;
    const char *method;
    const char *body;
    size_t len;
    const char *type; /* expected fault type; NULL: accepted */
    const char *prop; /* expected invalidProperty (NULL for InvalidRequest) */
    const char *out;  /* accepted: the exact forwarded body ("" for none) */
} query_case_t;

#define QI "QuerySmsTaskInfo"
#define QR "QuerySmsTaskResult"
#define TASK_THIS(t, v)                                                                          \
    "\"_this\":{\"_typeName\":\"ManagedObjectReference\",\"type\":\"" t "\",\"value\":\"" v "\"}"
#define QREQ(name, m, body) {name, m, L(body), "InvalidRequest", NULL, NULL}
#define QARG(name, m, body, prop) {name, m, L(body), "InvalidArgument", prop, NULL}
#define QOK(name, m, body, out) {name, m, L(body), NULL, NULL, out}

static const query_case_t query_cases[] = {
    /* What clients send: vim_rs nothing, govmomi the method and _this. */
    QOK("no body", QI, "", ""),
    QOK("no body for the result", QR, "", ""),
    QOK("govmomi's QuerySmsTaskInfo",
        QI, "{\"_typeName\":\"QuerySmsTaskInfo\"," TASK_THIS("SmsTask", "SmsTask-7") "}\n",
        "{\"_typeName\":\"QuerySmsTaskInfo\"}"),
    QOK("govmomi's QuerySmsTaskResult",
        QR, "{\"_typeName\":\"QuerySmsTaskResult\"," TASK_THIS("SmsTask", "SmsTask-7") "}",
        "{\"_typeName\":\"QuerySmsTaskResult\"}"),
    QOK("the request type's name", QI, "{\"_typeName\":\"QuerySmsTaskInfoRequestType\"}",
        "{\"_typeName\":\"QuerySmsTaskInfoRequestType\"}"),
    QOK("only _this", QR, "{\"_this\":{\"type\":\"SmsTask\",\"value\":\"SmsTask-7\"}}", "{}"),
    QOK("an empty object", QI, " { } ", "{}"),
    QOK("other members are passed on, compact", QI, "{ \"marker\" : \"m-1\" }",
        "{\"marker\":\"m-1\"}"),

    /* The target must be the path's task. */
    QARG("_this naming another task", QI,
         "{\"_typeName\":\"QuerySmsTaskInfo\"," TASK_THIS("SmsTask", "SmsTask-8") "}", "_this"),
    QARG("_this naming the provider", QR, "{" TASK_THIS("VasaProvider", "SmsTask-7") "}",
         "_this"),
    QARG("_this of type Task", QI, "{" TASK_THIS("Task", "SmsTask-7") "}", "_this"),
    QARG("_this with an unknown member", QI,
         "{\"_this\":{\"type\":\"SmsTask\",\"value\":\"SmsTask-7\",\"key\":1}}", "_this"),
    QARG("_this a string", QI, "{\"_this\":\"SmsTask-7\"}", "_this"),
    QARG("_this checked whatever else is there", QI,
         "{\"marker\":1," TASK_THIS("SmsTask", "SmsTask-70") "}", "_this"),
    QARG("the other query's name", QI, "{\"_typeName\":\"QuerySmsTaskResult\"}", "_typeName"),
    QARG("the stop-test's name", QR,
         "{\"_typeName\":\"TestFailoverReplicationGroupStop_Task\"}", "_typeName"),
    QARG("a longer name", QI, "{\"_typeName\":\"QuerySmsTaskInfoRequestTypeX\"}", "_typeName"),
    QARG("a cut name", QI, "{\"_typeName\":\"QuerySmsTaskInfoRequest\"}", "_typeName"),
    QARG("a name that is not a string", QI, "{\"_typeName\":null}", "_typeName"),

    /* One strict JSON object, as for the stop-test. */
    QREQ("whitespace only", QI, " \r\n"),
    QREQ("an array", QI, "[]"),
    QREQ("null", QR, "null"),
    QREQ("trailing bytes", QI, "{} {}"),
    QREQ("duplicate _this", QI,
         "{" TASK_THIS("SmsTask", "SmsTask-7") "," TASK_THIS("SmsTask", "SmsTask-8") "}"),
    QREQ("duplicate _typeName", QI,
         "{\"_typeName\":\"QuerySmsTaskInfo\",\"_typeName\":\"QuerySmsTaskResult\"}"),
    QREQ("invalid UTF-8", QI, "{\"marker\":\"\xff\"}"),
};

static void answers_each_query_body_with_its_fault_or_forwarded_form(void **state)
{
    static const sg_str_t task = {"SmsTask-7", 9};

    for (size_t i = 0; i < SG_ARRAY_SIZE(query_cases); i++) {
        const query_case_t *c = &query_cases[i];
        sg_stopreq_fault_t fault;
        sg_stopreq_query_t q;
        sg_pool_t pool;
        sg_buf_t out;
        int rv;

        sg_pool_init(&pool, 1024);
        sg_buf_init(&out, 4096);
        rv = sg_stopreq_query_parse(&pool, c->body, c->len, c->method, &task, &q, &fault);
        if (c->type != NULL) {
            if (rv != -1 || fault.status != 500 || strcmp(fault.type, c->type) != 0 ||
                (c->prop == NULL) != (fault.invalid_property == NULL) ||
                (c->prop != NULL && strcmp(c->prop, fault.invalid_property) != 0))
                fail_msg("query case \"%s\": rv %d, %s \"%s\"; expected %s \"%s\"", c->name, rv,
                         fault.type ? fault.type : "-",
                         fault.invalid_property ? fault.invalid_property : "(null)", c->type,
                         c->prop ? c->prop : "(null)");
            assert_non_null(fault.message);
        } else {
            if (rv != 0)
                fail_msg("query case \"%s\": refused: %s \"%s\" (%s)", c->name, fault.type,
                         fault.invalid_property ? fault.invalid_property : "(null)",
                         fault.message);
            assert_int_equal(q.has_this, strstr(c->body, "\"_this\"") != NULL);
            assert_int_equal(sg_stopreq_query_serialize(&q, &out), SG_OK);
            if (out.len != strlen(c->out) || (out.len > 0 && memcmp(out.data, c->out, out.len)))
                fail_msg("query case \"%s\": forwarded %.*s", c->name, (int)out.len, out.data);
        }
        sg_buf_dispose(&out);
        sg_pool_dispose(&pool);
    }
}

/* ---- Content-Type ---- */

static void accepts_application_json_with_or_without_parameters(void **state)
{
    static const char *const ok[] = {
        "application/json",
        "Application/JSON",
        "APPLICATION/JSON;CHARSET=UTF-8",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json ; charset=\"utf-8\"",
        "application/json;\tcharset=utf-8 ",
        "application/json; foo=bar; charset=utf-8",
        "application/json; foo=\"a;b \\\"c\\\"\"",
        "application/json;",
        "application/json; ;",
        " application/json ",
    };

    for (size_t i = 0; i < SG_ARRAY_SIZE(ok); i++)
        if (!sg_stopreq_media_type_ok(ok[i], strlen(ok[i])))
            fail_msg("refused Content-Type \"%s\"", ok[i]);
}

static void refuses_every_other_media_type_and_a_charset_but_utf8(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/json-seq",
        "application/vnd.api+json",
        "application/jso",
        "application/json x",
        "application/json, text/plain",
        "application/json,application/json",
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "application/json; charset=utf8",
        "application/json; charset=\"utf-8 \"",
        "application/json; charset=utf-8; charset=iso-8859-1",
        "application/json; charset",
        "application/json; charset=",
        "application/json; =utf-8",
        "application/json; charset=\"utf-8",
        "application/json; a=\"b\\",
        "application/json; a=\"\x01\"",
        "application/json; a=b c",
        "application/json; a=b=c",
        "application/json; a@=b",
    };

    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++)
        if (sg_stopreq_media_type_ok(bad[i], strlen(bad[i])))
            fail_msg("accepted Content-Type \"%s\"", bad[i]);
    /* The length rules, not a NUL: a value is not a C string. */
    assert_false(sg_stopreq_media_type_ok("application/json\0; charset=latin1", 33));
    assert_true(sg_stopreq_media_type_ok("application/json; charset=latin1", 16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers_each_body_with_its_fault_or_forwarded_form),
        cmocka_unit_test(fills_groups_and_force_from_the_body),
        cmocka_unit_test(never_echoes_client_bytes_in_a_malformed_body_message),
        cmocka_unit_test(refuses_two_hundred_levels_of_nesting_as_malformed),
        cmocka_unit_test(accepts_ten_thousand_groups_and_forwards_them_all),
        cmocka_unit_test(refuses_more_than_the_group_limit),
        cmocka_unit_test(refuses_a_body_of_many_tiny_values_before_building_it),
        cmocka_unit_test(accepts_ids_of_1024_bytes_and_refuses_1025),
        cmocka_unit_test(names_the_path_of_an_oversized_id),
        cmocka_unit_test(cuts_a_long_unknown_member_name_on_a_character_boundary),
        cmocka_unit_test(serializes_slices_with_the_clients_root_members),
        cmocka_unit_test(refuses_empty_and_out_of_range_slices),
        cmocka_unit_test(leaves_the_buffer_as_it_was_when_the_body_does_not_fit),
        cmocka_unit_test(says_whether_the_body_named_its_target),
        cmocka_unit_test(leaves_this_out_of_every_slice),
        cmocka_unit_test(answers_each_query_body_with_its_fault_or_forwarded_form),
        cmocka_unit_test(accepts_application_json_with_or_without_parameters),
        cmocka_unit_test(refuses_every_other_media_type_and_a_charset_but_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
