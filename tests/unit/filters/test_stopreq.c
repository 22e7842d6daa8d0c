/*
 * Unit tests for filters/stopreq.c: every body the stop-test route may receive,
 * with the fault it gets (type and invalidProperty) or the exact body forwarded;
 * and the slices batch splitting asks for.
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
    rv = sg_stopreq_parse(&pool, c->body, c->len, &req, &fault);
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
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &req, &fault), 0);
    assert_int_equal(req.ngroups, 2);
    assert_int_equal(req.force, 1);
    assert_non_null(req.root);
    assert_string_equal(req.groups[0].fault_domain.p, "fd-1");
    assert_int_equal(req.groups[0].fault_domain.n, 4);
    assert_string_equal(req.groups[0].device_group.p, "dg-1");
    assert_string_equal(req.groups[1].fault_domain.p, "fd-\xC3\xA9");
    assert_int_equal(req.groups[1].fault_domain.n, 5);
    assert_ptr_equal(req.groups[1].node, req.root->kids[0]->kids[1]);
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
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &req, &fault), -1);
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
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &req, &fault), -1);
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
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &req, &fault), 0);
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
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &req, &fault), -1);
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
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &req, &fault), -1);
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
    rv = sg_stopreq_parse(&pool, t.p, t.n, &req, fault);
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
    assert_int_equal(sg_stopreq_parse(&pool, body, (size_t)n, &req, &fault), -1);
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
    assert_int_equal(sg_stopreq_parse(&pool, t.p, t.n, &req, &fault), -1);
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
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &req, &fault), 0);
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
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &req, &fault), 0);
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
    assert_int_equal(sg_stopreq_parse(&pool, body, sizeof(body) - 1, &req, &fault), 0);
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
