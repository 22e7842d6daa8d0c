/*
 * tests/sim/sim_sms.c - what the simulator answers.
 *
 * Routes one complete request to its handler and writes the answer into a
 * sim_res_t: what a VI/JSON client calls before logging in (release
 * negotiation, ServiceContent), SessionManager Login/Logout, VasaProvider
 * TestFailoverReplicationGroupStop_Task with vCenter's own checks, the
 * SmsTask queries, and the /sim/ helpers the proxy's tests use. Faults are
 * vSphere's VI/JSON shape (the Web Services SDK guide's JSON chapter): HTTP 500, the fault object
 * itself as the body. Sessions and tasks live here, in bounded rings.
 * Nothing here touches a socket; output JSON is written with sim_buf_t so that
 * client strings (including NULs and bad UTF-8) are escaped exactly once.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#define SIM_MAX_SEGS 8            /* path segments of the longest route */
#define SIM_FAULT_MAX (64 * 1024) /* a fault body; client strings in it are short */

typedef struct {
    const char *p;
    size_t n;
} sim_str_t;

typedef struct {
    char *fault_domain; /* faultDomainId.id */
    char *device_group; /* deviceGroupId.id */
} sim_group_t;

typedef struct {
    uint64_t n;     /* the task is "SmsTask-<n>" */
    char *provider; /* VasaProvider moId from the path */
    sim_group_t *groups;
    size_t ngroups;
    struct timespec started; /* wall clock, for startTime */
    int64_t started_ms;      /* monotonic, for state and progress */
    int toomany;             /* --task-max-batch: ends in a TooMany error, without result */
} sim_task_t;

struct sim_app_s {
    const sim_conf_t *conf;
    char sessions[SIM_MAX_SESSIONS][SIM_SESSION_ID_LEN + 1]; /* ring; "" = free */
    size_t next_session;
    sim_task_t **tasks; /* ring: task n sits at n % SIM_MAX_TASKS */
    uint64_t last_task;
};

typedef int (*sim_handler_t)(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg,
                             sim_res_t *res);

/* ---- answers --------------------------------------------------------------- */

void sim_res_dispose(sim_res_t *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}

/* Sets a JSON answer from b (taken over). Returns 0, or -1 when b failed. */
static int sim_res_json(sim_res_t *res, int status, sim_buf_t *b)
{
    res->status = status;
    res->ctype = "application/json";
    res->body = sim_buf_steal(b, &res->body_len);
    sim_buf_dispose(b);
    return res->body != NULL ? 0 : -1;
}

/* Starts a fault object: _typeName, faultstring and one LocalizableMessage
 * with the same text. The caller adds its own members and the closing brace,
 * then calls sim_res_json(res, 500, b). */
static void sim_fault_open(sim_buf_t *b, const char *type, const char *msg)
{
    sim_buf_init(b, SIM_FAULT_MAX);
    sim_buf_addf(b, "{\"_typeName\":\"%s\",\"faultstring\":", type);
    sim_buf_add_jstr(b, msg, strlen(msg));
    sim_buf_addf(b,
                 ",\"faultMessage\":[{\"_typeName\":\"LocalizableMessage\","
                 "\"key\":\"sms-sim.fault.%s\",\"message\":",
                 type);
    sim_buf_add_jstr(b, msg, strlen(msg));
    sim_buf_adds(b, "}]");
}

/* A fault with no members of its own. */
static int sim_fault(sim_res_t *res, const char *type, const char *msg)
{
    sim_buf_t b;

    sim_fault_open(&b, type, msg);
    sim_buf_adds(&b, "}");
    return sim_res_json(res, 500, &b);
}

/* InvalidArgument naming the parameter, as vCenter does for an empty groupId. */
static int sim_fault_invalid_argument(sim_res_t *res, const char *property)
{
    sim_buf_t b;
    char msg[128];

    snprintf(msg, sizeof(msg), "A specified parameter was not correct: %s", property);
    sim_fault_open(&b, "InvalidArgument", msg);
    sim_buf_addf(&b, ",\"invalidProperty\":\"%s\"}", property);
    return sim_res_json(res, 500, &b);
}

/* A non-fault error (404, 405): a small InvalidRequest body, no faultMessage. */
static int sim_res_error(sim_res_t *res, int status, const char *msg)
{
    sim_buf_t b;

    sim_buf_init(&b, 1024);
    sim_buf_addf(&b, "{\"_typeName\":\"InvalidRequest\",\"faultstring\":\"%s\"}", msg);
    return sim_res_json(res, status, &b);
}

static void sim_add_moref(sim_buf_t *b, const char *type, const char *value, size_t len)
{
    sim_buf_addf(b, "{\"_typeName\":\"ManagedObjectReference\",\"type\":\"%s\",\"value\":", type);
    sim_buf_add_jstr(b, value, len);
    sim_buf_adds(b, "}");
}

/* ---- request bodies ------------------------------------------------------- */

/* Parses a whole body as one JSON value. cJSON stops at the end of the value
 * and would ignore what follows; vCenter would not, so trailing bytes other
 * than whitespace make it invalid. Returns the tree or NULL. */
static cJSON *sim_json_parse(const sim_req_t *req)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);

    if (root == NULL)
        return NULL;
    while (end < req->body + req->body_len &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != req->body + req->body_len) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The string member `key` of obj (exact case, unlike cJSON_GetObjectItem), or NULL. */
static const char *sim_json_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* ---- sessions ------------------------------------------------------------- */

static void sim_hex(char *out, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* NotAuthenticated as vCenter sends it (ref §1.6), naming the object in the path. */
static int sim_fault_not_authenticated(sim_res_t *res, const char *type, const sim_str_t *moid)
{
    sim_buf_t b;

    sim_fault_open(&b, "NotAuthenticated", "The session is not authenticated.");
    sim_buf_adds(&b, ",\"object\":");
    sim_add_moref(&b, type, moid->p, moid->n);
    sim_buf_adds(&b, ",\"privilegeId\":\"System.View\"}");
    return sim_res_json(res, 500, &b);
}

/* Whether the request's vmware-api-session-id names a session issued here. */
static int sim_session_valid(const sim_app_t *app, const sim_req_t *req)
{
    const sim_hdr_t *h = sim_req_header(req, "vmware-api-session-id");

    if (h == NULL || h->value_len != SIM_SESSION_ID_LEN)
        return 0;
    for (size_t i = 0; i < SIM_MAX_SESSIONS; i++)
        if (memcmp(app->sessions[i], h->value, SIM_SESSION_ID_LEN) == 0)
            return 1;
    return 0;
}

/* POST .../SessionManager/{moId}/Login {"userName","password"[,"locale"]}. */
static int sim_login(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg, sim_res_t *res)
{
    const sim_conf_t *conf = app->conf;
    cJSON *root = sim_json_parse(req);
    const char *user, *pass, *locale;
    const sim_hdr_t *agent;
    unsigned char rnd[SIM_SESSION_ID_LEN / 2 + 16];
    char id[SIM_SESSION_ID_LEN + 1], key[33], now[64];
    struct timespec ts;
    sim_buf_t b;
    int rc = -1;

    if (!cJSON_IsObject(root)) {
        rc = sim_fault(res, "InvalidArgument", "A specified parameter was not correct: body");
        goto out;
    }
    user = sim_json_str(root, "userName");
    pass = sim_json_str(root, "password");
    locale = sim_json_str(root, "locale");
    if (user == NULL || pass == NULL) {
        rc = sim_fault_invalid_argument(res, user == NULL ? "userName" : "password");
        goto out;
    }
    if (conf->login_user != NULL &&
        (strcmp(user, conf->login_user) != 0 || strcmp(pass, conf->login_pass) != 0)) {
        rc = sim_fault(res, "InvalidLogin",
                       "Cannot complete login due to an incorrect user name or password.");
        goto out;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto out;
    sim_hex(id, rnd, SIM_SESSION_ID_LEN / 2);
    sim_hex(key, rnd + SIM_SESSION_ID_LEN / 2, 16);
    memcpy(app->sessions[app->next_session], id, sizeof(id));
    app->next_session = (app->next_session + 1) % SIM_MAX_SESSIONS;

    clock_gettime(CLOCK_REALTIME, &ts);
    sim_time_fmt(now, sizeof(now), &ts, 0);
    agent = sim_req_header(req, "user-agent");
    sim_buf_init(&b, SIM_FAULT_MAX);
    sim_buf_addf(&b,
                 "{\"_typeName\":\"UserSession\",\"key\":\"%.8s-%.4s-%.4s-%.4s-%.12s\","
                 "\"userName\":",
                 key, key + 8, key + 12, key + 16, key + 20);
    sim_buf_add_jstr(&b, user, strlen(user));
    sim_buf_adds(&b, ",\"fullName\":");
    sim_buf_add_jstr(&b, user, strlen(user));
    sim_buf_addf(&b, ",\"loginTime\":\"%s\",\"lastActiveTime\":\"%s\",\"locale\":", now, now);
    sim_buf_add_jstr(&b, locale != NULL ? locale : "en", strlen(locale != NULL ? locale : "en"));
    sim_buf_adds(&b, ",\"messageLocale\":");
    sim_buf_add_jstr(&b, locale != NULL ? locale : "en", strlen(locale != NULL ? locale : "en"));
    sim_buf_adds(&b, ",\"extensionSession\":false,\"ipAddress\":");
    sim_buf_add_jstr(&b, req->peer, strlen(req->peer));
    sim_buf_adds(&b, ",\"userAgent\":");
    sim_buf_add_jstr(&b, agent != NULL ? agent->value : "", agent != NULL ? agent->value_len : 0);
    sim_buf_adds(&b, ",\"callCount\":0}");
    snprintf(res->hdrs, sizeof(res->hdrs), "vmware-api-session-id: %s\r\n", id);
    rc = sim_res_json(res, 200, &b);
out:
    cJSON_Delete(root);
    return rc;
}

/* POST .../SessionManager/{moId}/Logout: ends the caller's session; 204. */
static int sim_logout(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg, sim_res_t *res)
{
    const sim_hdr_t *h = sim_req_header(req, "vmware-api-session-id");

    if (h != NULL && h->value_len == SIM_SESSION_ID_LEN)
        for (size_t i = 0; i < SIM_MAX_SESSIONS; i++)
            if (memcmp(app->sessions[i], h->value, SIM_SESSION_ID_LEN) == 0)
                memset(app->sessions[i], 0, sizeof(app->sessions[i]));
    res->status = 204;
    return 0;
}

/* ---- what a client does before it logs in --------------------------------- */

/* The releases this vCenter (8.0 Update 3) serves over VI/JSON; SMS itself is
 * there from 8.0.3.0 on (the VI/JSON OpenAPI specification). */
static const char *const sim_api_releases[] = {"8.0.1.0", "8.0.2.0", "8.0.3.0"};

/* A vSphere Automation (/api) error: 400 with the vAPI error shape, which is
 * not a VI/JSON fault. */
static int sim_vapi_invalid_argument(sim_res_t *res, const char *msg)
{
    sim_buf_t b;

    sim_buf_init(&b, 1024);
    sim_buf_adds(&b, "{\"error_type\":\"INVALID_ARGUMENT\",\"messages\":[{\"args\":[],"
                     "\"default_message\":");
    sim_buf_add_jstr(&b, msg, strlen(msg));
    sim_buf_adds(&b, ",\"id\":\"sms-sim.system.hello.invalid\"}]}");
    return sim_res_json(res, 400, &b);
}

/* Whether the query string of the target holds the parameter `param`
 * ("name=value") exactly. */
static int sim_query_has(const sim_req_t *req, const char *param)
{
    const char *q = memchr(req->target, '?', req->target_len), *end, *amp;
    size_t n = strlen(param);

    if (q == NULL)
        return 0;
    end = req->target + req->target_len;
    for (q++; q < end; q = amp + 1) {
        amp = memchr(q, '&', (size_t)(end - q));
        if (amp == NULL)
            amp = end;
        if ((size_t)(amp - q) == n && memcmp(q, param, n) == 0)
            return 1;
    }
    return 0;
}

/* POST /api/vcenter/system?action=hello {"api_releases":[..]}: release
 * negotiation (ref §1.1). The answer is the first release in the client's
 * order that this server serves, or "" when there is none. No session. */
static int sim_hello(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg, sim_res_t *res)
{
    cJSON *root = NULL;
    const cJSON *list, *item;
    const char *chosen = "";
    sim_buf_t b;
    int rc;

    if (!sim_query_has(req, "action=hello"))
        return sim_vapi_invalid_argument(res, "The operation is not known: action=hello expected.");
    root = sim_json_parse(req);
    list = cJSON_GetObjectItemCaseSensitive(root, "api_releases");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(list)) {
        rc = sim_vapi_invalid_argument(res, "api_releases must be a list of strings.");
        goto out;
    }
    cJSON_ArrayForEach(item, list)
    {
        if (!cJSON_IsString(item)) {
            rc = sim_vapi_invalid_argument(res, "api_releases must be a list of strings.");
            goto out;
        }
    }
    cJSON_ArrayForEach(item, list)
    {
        for (size_t i = 0; i < sizeof(sim_api_releases) / sizeof(sim_api_releases[0]); i++)
            if (strcmp(item->valuestring, sim_api_releases[i]) == 0)
                chosen = sim_api_releases[i];
        if (*chosen != '\0')
            break;
    }
    sim_buf_init(&b, 1024);
    sim_buf_addf(&b, "{\"api_release\":\"%s\"}", chosen);
    rc = sim_res_json(res, 200, &b);
out:
    cJSON_Delete(root);
    return rc;
}

/* GET .../ServiceInstance/ServiceInstance/content (vim_rs and the other
 * OpenAPI clients) and POST .../RetrieveServiceContent (govmomi, whose JSON
 * transport turns every call into a method): the ServiceContent, no session
 * needed (ref §1.4). Clients read sessionManager.value to find Login; the rest
 * is what their decoders expect of a vCenter (rootFolder, propertyCollector
 * and about are required in the schema). */
static int sim_content(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg, sim_res_t *res)
{
    static const char *const mo[][3] = {
        /* member, type, value */
        {"rootFolder", "Folder", "group-d1"},
        {"propertyCollector", "PropertyCollector", "propertyCollector"},
        {"viewManager", "ViewManager", "ViewManager"},
        {"setting", "OptionManager", "VpxSettings"},
        {"userDirectory", "UserDirectory", "UserDirectory"},
        {"sessionManager", "SessionManager", "SessionManager"},
        {"authorizationManager", "AuthorizationManager", "AuthorizationManager"},
        {"taskManager", "TaskManager", "TaskManager"},
        {"eventManager", "EventManager", "EventManager"},
        {"searchIndex", "SearchIndex", "SearchIndex"},
    };
    sim_buf_t b;

    sim_buf_init(&b, 8192);
    sim_buf_adds(&b, "{\"_typeName\":\"ServiceContent\"");
    for (size_t i = 0; i < sizeof(mo) / sizeof(mo[0]); i++) {
        sim_buf_addf(&b, ",\"%s\":", mo[i][0]);
        sim_add_moref(&b, mo[i][1], mo[i][2], strlen(mo[i][2]));
        if (i == 1)
            sim_buf_adds(&b, ",\"about\":{\"_typeName\":\"AboutInfo\","
                             "\"name\":\"VMware vCenter Server\","
                             "\"fullName\":\"VMware vCenter Server 8.0.3 build-0 (sms-sim)\","
                             "\"vendor\":\"VMware, Inc.\",\"version\":\"8.0.3\",\"build\":\"0\","
                             "\"localeVersion\":\"INTL\",\"localeBuild\":\"000\","
                             "\"osType\":\"linux-x64\",\"productLineId\":\"vpx\","
                             "\"apiType\":\"VirtualCenter\",\"apiVersion\":\"8.0.3.0\","
                             "\"instanceUuid\":\"5e1d0c4a-0000-4000-8000-5315a5170000\","
                             "\"licenseProductName\":\"VMware VirtualCenter Server\","
                             "\"licenseProductVersion\":\"8.0\"}");
    }
    sim_buf_adds(&b, "}");
    return sim_res_json(res, 200, &b);
}

/* ---- tasks ---------------------------------------------------------------- */

static void sim_task_free(sim_task_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ngroups; i++) {
        free(t->groups[i].fault_domain);
        free(t->groups[i].device_group);
    }
    free(t->groups);
    free(t->provider);
    free(t);
}

/* Checks one groupId element: an object whose faultDomainId and
 * deviceGroupId are objects with a string id. Copies the ids into g. Returns
 * 1 when well-formed, 0 when not, -1 when memory runs out. */
static int sim_group_parse(const cJSON *item, sim_group_t *g)
{
    const cJSON *fd = cJSON_GetObjectItemCaseSensitive(item, "faultDomainId");
    const cJSON *dg = cJSON_GetObjectItemCaseSensitive(item, "deviceGroupId");
    const char *fd_id = sim_json_str(fd, "id"), *dg_id = sim_json_str(dg, "id");

    if (!cJSON_IsObject(item) || fd_id == NULL || dg_id == NULL)
        return 0;
    g->fault_domain = strdup(fd_id);
    g->device_group = strdup(dg_id);
    return g->fault_domain != NULL && g->device_group != NULL ? 1 : -1;
}

/* Task n, or NULL when it never existed or was evicted. */
static sim_task_t *sim_task_find(sim_app_t *app, const sim_str_t *id)
{
    uint64_t n = 0;
    sim_task_t *t;

    if (id->n <= 8 || id->n > 8 + 19 || memcmp(id->p, "SmsTask-", 8) != 0)
        return NULL;
    for (size_t i = 8; i < id->n; i++) {
        if (id->p[i] < '0' || id->p[i] > '9')
            return NULL;
        n = n * 10 + (uint64_t)(id->p[i] - '0'); /* 19 digits cannot overflow */
    }
    t = app->tasks[n % SIM_MAX_TASKS];
    return t != NULL && t->n == n ? t : NULL;
}

/* Stores t as the next task, evicting the oldest when the ring is full. */
static void sim_task_add(sim_app_t *app, sim_task_t *t)
{
    sim_task_t **slot;

    t->n = ++app->last_task;
    slot = &app->tasks[t->n % SIM_MAX_TASKS];
    sim_task_free(*slot);
    *slot = t;
}

/* POST .../sms/VasaProvider/{moId}/TestFailoverReplicationGroupStop_Task. */
static int sim_stop(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg, sim_res_t *res)
{
    const sim_conf_t *conf = app->conf;
    cJSON *root = sim_json_parse(req);
    const cJSON *gid, *force, *item;
    sim_task_t *t = NULL;
    sim_buf_t b;
    char msg[160], value[32];
    int ngroups, ok, rc = -1;

    /* The checks run in the order the method's VI/JSON reference page gives them. */
    if (!cJSON_IsObject(root)) {
        rc = sim_fault(res, "InvalidRequest", "The request body is not a JSON object.");
        goto out;
    }
    gid = cJSON_GetObjectItemCaseSensitive(root, "groupId");
    ngroups = cJSON_GetArraySize(gid);
    if (!cJSON_IsArray(gid) || ngroups == 0) {
        rc = sim_fault_invalid_argument(res, "groupId");
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->groups = calloc((size_t)ngroups, sizeof(*t->groups))) == NULL)
        goto out;
    cJSON_ArrayForEach(item, gid)
    {
        ok = sim_group_parse(item, &t->groups[t->ngroups++]);
        if (ok < 0)
            goto out;
        if (ok == 0) {
            rc = sim_fault_invalid_argument(res, "groupId");
            goto out;
        }
    }
    force = cJSON_GetObjectItemCaseSensitive(root, "force");
    if (!cJSON_IsBool(force)) {
        rc = sim_fault_invalid_argument(res, "force");
        goto out;
    }
    if (conf->max_batch > 0 && ngroups > conf->max_batch) {
        snprintf(msg, sizeof(msg),
                 "Too many replication groups in one request: %d given, at most %ld allowed.",
                 ngroups, conf->max_batch);
        sim_fault_open(&b, "TooMany", msg);
        if (!conf->no_batch_size)
            sim_buf_addf(&b, ",\"maxBatchSize\":%ld", conf->max_batch);
        sim_buf_adds(&b, "}");
        rc = sim_res_json(res, 500, &b);
        goto out;
    }
    t->provider = strndup(seg[5].p, seg[5].n);
    if (t->provider == NULL)
        goto out;
    clock_gettime(CLOCK_REALTIME, &t->started);
    t->started_ms = sim_mono_ms();
    t->toomany = conf->task_max_batch > 0 && ngroups > conf->task_max_batch;
    sim_task_add(app, t);
    snprintf(value, sizeof(value), "SmsTask-%llu", (unsigned long long)t->n);
    t = NULL; /* the ring owns it now */
    sim_buf_init(&b, 1024);
    sim_add_moref(&b, "SmsTask", value, strlen(value));
    rc = sim_res_json(res, 200, &b);
out:
    sim_task_free(t);
    cJSON_Delete(root);
    return rc;
}

/* ---- the rest of the replication family (sms-api.md 2.7) ------------------- */

static int sim_seg_is(sim_str_t s, const char *lit);

/* Where a family method's groups are: the root member `param` (NULL: the groups are at
 * the root), its array `list`, each element holding the ReplicationGroupId in `inner`
 * (NULL: the element is one). `required`: a missing or empty list is InvalidArgument
 * naming `fault_property`, as vCenter's reference pages say; otherwise it means every
 * group. `task`: answers an SmsTask (the _Task methods), else an array at once. */
static const struct {
    const char *method;
    const char *param, *list, *inner;
    int required, task;
    const char *fault_property;
} sim_family[] = {
    {"TestFailoverReplicationGroupStart_Task", "testFailoverParam", "replicationGroupsToFailover",
     "groupId", 1, 1, "testFailoverParam"},
    {"FailoverReplicationGroup_Task", "failoverParam", "replicationGroupsToFailover", "groupId", 1,
     1, "failoverParam"},
    {"PrepareFailoverReplicationGroup_Task", NULL, "groupId", NULL, 1, 1, "groupId"},
    {"PromoteReplicationGroup_Task", "promoteParam", "replicationGroupsToPromote", NULL, 1, 1,
     "promoteParam"},
    {"SyncReplicationGroup_Task", NULL, "groupId", NULL, 1, 1, "groupId"},
    {"ReverseReplicateGroup_Task", NULL, "groupId", NULL, 1, 1, "groupId"},
    {"QueryReplicationGroup", NULL, "groupId", NULL, 0, 0, "groupId"},
    {"QueryPointInTimeReplica", NULL, "groupId", NULL, 0, 0, "groupId"},
};

/* Appends a ReplicationGroupId. */
static void sim_add_group(sim_buf_t *b, const sim_group_t *g)
{
    sim_buf_adds(b, "{\"_typeName\":\"ReplicationGroupId\",\"faultDomainId\":{\"_typeName\":"
                    "\"FaultDomainId\",\"id\":");
    sim_buf_add_jstr(b, g->fault_domain, strlen(g->fault_domain));
    sim_buf_adds(b, "},\"deviceGroupId\":{\"_typeName\":\"DeviceGroupId\",\"id\":");
    sim_buf_add_jstr(b, g->device_group, strlen(g->device_group));
    sim_buf_adds(b, "}}");
}

/* POST .../sms/VasaProvider/{moId}/{one of sim_family}: the groups checked as the
 * stop-test's are, then a task (its result one GroupOperationResult per group, as for
 * the stop-test) or, for a query, an array of one result per group. */
static int sim_family_call(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg,
                           sim_res_t *res)
{
    cJSON *root = sim_json_parse(req);
    const cJSON *holder, *list, *item;
    sim_task_t *t = NULL;
    size_t f = 0;
    sim_buf_t b;
    char value[32];
    int ngroups, ok, rc = -1;

    while (f < sizeof(sim_family) / sizeof(sim_family[0]) &&
           !sim_seg_is(seg[6], sim_family[f].method))
        f++;
    if (f == sizeof(sim_family) / sizeof(sim_family[0])) {
        cJSON_Delete(root);
        return sim_res_error(res, 404, "no such path"); /* sim_routes names only these */
    }
    if (!cJSON_IsObject(root)) {
        rc = sim_fault(res, "InvalidRequest", "The request body is not a JSON object.");
        goto out;
    }
    holder = sim_family[f].param != NULL
                 ? cJSON_GetObjectItemCaseSensitive(root, sim_family[f].param)
                 : root;
    if (!cJSON_IsObject(holder)) {
        rc = sim_fault_invalid_argument(res, sim_family[f].fault_property);
        goto out;
    }
    list = cJSON_GetObjectItemCaseSensitive(holder, sim_family[f].list);
    ngroups = cJSON_GetArraySize(list);
    if ((list != NULL && !cJSON_IsArray(list)) || (sim_family[f].required && ngroups == 0)) {
        rc = sim_fault_invalid_argument(res, sim_family[f].fault_property);
        goto out;
    }
    if (strcmp(sim_family[f].method, "SyncReplicationGroup_Task") == 0 &&
        sim_json_str(root, "pitName") == NULL) {
        rc = sim_fault_invalid_argument(res, "pitName");
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->groups = calloc((size_t)ngroups + 1, sizeof(*t->groups))) == NULL)
        goto out;
    cJSON_ArrayForEach(item, list)
    {
        const cJSON *g = sim_family[f].inner != NULL
                             ? cJSON_GetObjectItemCaseSensitive(item, sim_family[f].inner)
                             : item;

        ok = sim_group_parse(g, &t->groups[t->ngroups++]);
        if (ok < 0)
            goto out;
        if (ok == 0) {
            rc = sim_fault_invalid_argument(res, sim_family[f].fault_property);
            goto out;
        }
    }
    if (!sim_family[f].task) {
        sim_buf_init(&b, 1024 + 512 * t->ngroups);
        sim_buf_adds(&b, "[");
        for (size_t i = 0; i < t->ngroups; i++) {
            sim_buf_adds(&b, i ? ",{\"_typeName\":\"GroupOperationResult\",\"groupId\":"
                               : "{\"_typeName\":\"GroupOperationResult\",\"groupId\":");
            sim_add_group(&b, &t->groups[i]);
            sim_buf_adds(&b, "}");
        }
        sim_buf_adds(&b, "]");
        rc = sim_res_json(res, 200, &b);
        goto out;
    }
    t->provider = strndup(seg[5].p, seg[5].n);
    if (t->provider == NULL)
        goto out;
    clock_gettime(CLOCK_REALTIME, &t->started);
    t->started_ms = sim_mono_ms();
    sim_task_add(app, t);
    snprintf(value, sizeof(value), "SmsTask-%llu", (unsigned long long)t->n);
    t = NULL; /* the ring owns it now */
    sim_buf_init(&b, 1024);
    sim_add_moref(&b, "SmsTask", value, strlen(value));
    rc = sim_res_json(res, 200, &b);
out:
    sim_task_free(t);
    cJSON_Delete(root);
    return rc;
}

/* POST .../sms/VasaProvider/{moId}/QueryReplicationPeer: for each fault domain asked
 * about (none: an empty array), a QueryReplicationPeerResult naming
 * "peer-of-<id>" as its target domain. */
static int sim_query_peer(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg,
                          sim_res_t *res)
{
    cJSON *root = sim_json_parse(req);
    const cJSON *list, *item;
    sim_buf_t b;
    int n = 0, rc;

    (void)app;
    (void)seg;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sim_fault(res, "InvalidRequest", "The request body is not a JSON object.");
    }
    list = cJSON_GetObjectItemCaseSensitive(root, "faultDomainId");
    if (list != NULL && !cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return sim_fault_invalid_argument(res, "faultDomainId");
    }
    sim_buf_init(&b, 1024 + 256 * (size_t)cJSON_GetArraySize(list));
    sim_buf_adds(&b, "[");
    cJSON_ArrayForEach(item, list)
    {
        const char *id = sim_json_str(item, "id");
        char *peer;

        if (id == NULL) {
            sim_buf_dispose(&b);
            cJSON_Delete(root);
            return sim_fault_invalid_argument(res, "faultDomainId");
        }
        sim_buf_adds(&b, n++ ? "," : "");
        sim_buf_adds(&b, "{\"_typeName\":\"QueryReplicationPeerResult\",\"sourceDomain\":"
                         "{\"_typeName\":\"FaultDomainId\",\"id\":");
        sim_buf_add_jstr(&b, id, strlen(id));
        sim_buf_adds(&b, "},\"targetDomain\":[{\"_typeName\":\"FaultDomainId\",\"id\":");
        peer = malloc(strlen(id) + 9);
        if (peer == NULL) {
            sim_buf_dispose(&b);
            cJSON_Delete(root);
            return -1;
        }
        snprintf(peer, strlen(id) + 9, "peer-of-%s", id);
        sim_buf_add_jstr(&b, peer, strlen(peer));
        free(peer);
        sim_buf_adds(&b, "}]}");
    }
    sim_buf_adds(&b, "]");
    rc = sim_res_json(res, 200, &b);
    cJSON_Delete(root);
    return rc;
}

/* Appends the task's result: one GroupOperationResult per group, in request
 * order; a deviceGroupId.id starting with "fail-" gets a GroupErrorResult. */
static void sim_task_result_json(sim_buf_t *b, const sim_task_t *t)
{
    const sim_group_t *g;
    int fail;

    sim_buf_adds(b, "{\"_typeName\":\"ArrayOfGroupOperationResult\",\"_value\":[");
    for (size_t i = 0; i < t->ngroups; i++) {
        g = &t->groups[i];
        fail = strncmp(g->device_group, "fail-", 5) == 0;
        sim_buf_addf(b,
                     "%s{\"_typeName\":\"%s\",\"groupId\":{\"_typeName\":\"ReplicationGroupId\","
                     "\"faultDomainId\":{\"_typeName\":\"FaultDomainId\",\"id\":",
                     i == 0 ? "" : ",", fail ? "GroupErrorResult" : "GroupOperationResult");
        sim_buf_add_jstr(b, g->fault_domain, strlen(g->fault_domain));
        sim_buf_adds(b, "},\"deviceGroupId\":{\"_typeName\":\"DeviceGroupId\",\"id\":");
        sim_buf_add_jstr(b, g->device_group, strlen(g->device_group));
        sim_buf_adds(b, "}}");
        if (fail) {
            sim_buf_adds(b, ",\"error\":[{\"_typeName\":\"SmsReplicationFault\","
                            "\"faultstring\":\"Test failover stop failed for this replication "
                            "group.\"}]");
        }
        sim_buf_adds(b, "}");
    }
    sim_buf_adds(b, "]}");
}

/* ManagedObjectNotFound for an SmsTask id that is not (or no longer) known. */
static int sim_fault_no_task(sim_res_t *res, const sim_str_t *id)
{
    sim_buf_t b, msg;
    int rc = -1;

    sim_buf_init(&msg, 1024);
    sim_buf_adds(&msg, "The object 'SmsTask:");
    sim_buf_add(&msg, id->p, id->n > 256 ? 256 : id->n);
    sim_buf_adds(&msg, "' has already been deleted or has not been completely created");
    if (msg.err)
        goto out;
    sim_fault_open(&b, "ManagedObjectNotFound", msg.p);
    sim_buf_adds(&b, ",\"obj\":");
    sim_add_moref(&b, "SmsTask", id->p, id->n);
    sim_buf_adds(&b, "}");
    rc = sim_res_json(res, 500, &b);
out:
    sim_buf_dispose(&msg);
    return rc;
}

/* Milliseconds the task has run, and whether it is done (--task-ms). */
static int sim_task_done(const sim_app_t *app, const sim_task_t *t, int64_t *elapsed)
{
    *elapsed = sim_mono_ms() - t->started_ms;
    return *elapsed >= app->conf->task_ms;
}

/* POST .../sms/SmsTask/{id}/QuerySmsTaskInfo: the SmsTaskInfo of ref §2.5. */
static int sim_task_info(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg, sim_res_t *res)
{
    const sim_task_t *t = sim_task_find(app, &seg[5]);
    char value[32], start[64], end[64];
    struct timespec done_at;
    int64_t elapsed;
    sim_buf_t b;
    int done;

    if (t == NULL)
        return sim_fault_no_task(res, &seg[5]);
    done = sim_task_done(app, t, &elapsed);
    snprintf(value, sizeof(value), "SmsTask-%llu", (unsigned long long)t->n);
    sim_time_fmt(start, sizeof(start), &t->started, 0);
    sim_buf_init(&b, SIM_MAX_JSON_BYTES);
    sim_buf_addf(&b, "{\"_typeName\":\"SmsTaskInfo\",\"key\":\"%s\",\"task\":", value);
    sim_add_moref(&b, "SmsTask", value, strlen(value));
    sim_buf_adds(&b, ",\"object\":");
    sim_add_moref(&b, "VasaProvider", t->provider, strlen(t->provider));
    sim_buf_addf(&b, ",\"state\":\"%s\",\"startTime\":\"%s\"",
                 !done ? "running" : t->toomany ? "error" : "success", start);
    if (done) {
        /* Completed exactly --task-ms after the start, however late we look. */
        done_at = t->started;
        done_at.tv_sec += app->conf->task_ms / 1000;
        done_at.tv_nsec += (app->conf->task_ms % 1000) * 1000000;
        if (done_at.tv_nsec >= 1000000000) {
            done_at.tv_sec++;
            done_at.tv_nsec -= 1000000000;
        }
        sim_time_fmt(end, sizeof(end), &done_at, 0);
        sim_buf_addf(&b, ",\"completionTime\":\"%s\"", end);
        if (t->toomany) {
            /* The provider's limit reported through the task (ref §2.5), not the call. */
            sim_buf_adds(&b, ",\"error\":{\"_typeName\":\"TooMany\",\"faultstring\":"
                             "\"Too many replication groups in one request.\"");
            if (!app->conf->no_batch_size)
                sim_buf_addf(&b, ",\"maxBatchSize\":%ld", app->conf->task_max_batch);
            sim_buf_adds(&b, "}");
        } else {
            sim_buf_adds(&b, ",\"result\":");
            sim_task_result_json(&b, t);
        }
    } else {
        sim_buf_addf(&b, ",\"progress\":%d", (int)(elapsed * 100 / app->conf->task_ms));
    }
    sim_buf_adds(&b, "}");
    return sim_res_json(res, 200, &b);
}

/* POST .../sms/SmsTask/{id}/QuerySmsTaskResult: the result once done; while
 * running there is none, which VI/JSON clients read from a 204. */
static int sim_task_result(sim_app_t *app, const sim_req_t *req, const sim_str_t *seg,
                           sim_res_t *res)
{
    const sim_task_t *t = sim_task_find(app, &seg[5]);
    int64_t elapsed;
    sim_buf_t b;

    if (t == NULL)
        return sim_fault_no_task(res, &seg[5]);
    if (!sim_task_done(app, t, &elapsed) || t->toomany) {
        res->status = 204; /* an error task never gets a result */
        return 0;
    }
    sim_buf_init(&b, SIM_MAX_JSON_BYTES);
    sim_task_result_json(&b, t);
    return sim_res_json(res, 200, &b);
}

/* ---- test helpers ---------------------------------------------------------- */

/* ANY /sim/echo...: the request as the simulator saw it. */
static int sim_echo(const sim_req_t *req, sim_res_t *res)
{
    sim_buf_t b;

    sim_buf_init(&b, SIM_MAX_JSON_BYTES);
    sim_buf_adds(&b, "{");
    sim_buf_add_req_json(&b, req);
    sim_buf_adds(&b, "}");
    return sim_res_json(res, 200, &b);
}

/* A decimal byte count of at most SIM_MAX_GEN_BYTES; -1 when s is not one. */
static int sim_parse_count(sim_str_t s, uint64_t *n)
{
    *n = 0;
    if (s.n == 0 || s.n > 13) /* 2^40 has 13 digits */
        return -1;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        *n = *n * 10 + (uint64_t)(s.p[i] - '0');
    }
    return *n <= SIM_MAX_GEN_BYTES ? 0 : -1;
}

/* ---- routing -------------------------------------------------------------- */

/* Splits "/a/b/c" into its segments. Returns the count, or -1 for a path that
 * is not absolute, has an empty segment or more than max segments. */
static int sim_split_path(const char *path, size_t len, sim_str_t *seg, int max)
{
    size_t i = 1, j;
    int n = 0;

    if (len == 0 || path[0] != '/')
        return -1;
    for (;;) {
        for (j = i; j < len && path[j] != '/'; j++)
            ;
        if (j == i || n == max)
            return -1;
        seg[n].p = path + i;
        seg[n].n = j - i;
        n++;
        if (j == len)
            return n;
        i = j + 1;
    }
}

static int sim_seg_is(sim_str_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* The vCenter routes, segment by segment; "*" matches any one segment
 * ({release}, {moId}). `get` routes answer GET and HEAD, the others POST; the
 * /sms/ ones need a session under --require-session (pat[4] is then the
 * object type a NotAuthenticated fault names). */
static const struct {
    const char *pat[SIM_MAX_SEGS]; /* NULL after the last segment */
    int get;                       /* GET/HEAD, else POST */
    sim_handler_t fn;
} sim_routes[] = {
    {{"api", "vcenter", "system"}, 0, sim_hello},
    {{"sdk", "vim25", "*", "ServiceInstance", "ServiceInstance", "content"}, 1, sim_content},
    {{"sdk", "vim25", "*", "ServiceInstance", "ServiceInstance", "RetrieveServiceContent"},
     0,
     sim_content},
    {{"sdk", "vim25", "*", "SessionManager", "*", "Login"}, 0, sim_login},
    {{"sdk", "vim25", "*", "SessionManager", "*", "Logout"}, 0, sim_logout},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "TestFailoverReplicationGroupStop_Task"},
     0,
     sim_stop},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "QueryReplicationPeer"}, 0, sim_query_peer},
    /* The other replication methods (sim_family). */
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "TestFailoverReplicationGroupStart_Task"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "FailoverReplicationGroup_Task"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "PrepareFailoverReplicationGroup_Task"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "PromoteReplicationGroup_Task"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "SyncReplicationGroup_Task"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "ReverseReplicateGroup_Task"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "QueryReplicationGroup"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "VasaProvider", "*", "QueryPointInTimeReplica"},
     0,
     sim_family_call},
    {{"sdk", "vim25", "*", "sms", "SmsTask", "*", "QuerySmsTaskInfo"}, 0, sim_task_info},
    {{"sdk", "vim25", "*", "sms", "SmsTask", "*", "QuerySmsTaskResult"}, 0, sim_task_result},
};

/* 405, naming the methods the path allows. */
static int sim_method_not_allowed(sim_res_t *res, const char *allow)
{
    snprintf(res->hdrs, sizeof(res->hdrs), "Allow: %s\r\n", allow);
    return sim_res_error(res, 405, "method not allowed");
}

/*
 * Answers one request. Order: route (404), method (405), session when the
 * route is under /sms/ and --require-session is on (NotAuthenticated), then
 * the handler. Returns 0 with res set, or -1 when memory runs out.
 */
int sim_app_handle(sim_app_t *app, const sim_req_t *req, sim_res_t *res)
{
    sim_str_t seg[SIM_MAX_SEGS];
    size_t len = strcspn(req->target, "?#");
    int nseg, post = strcmp(req->method, "POST") == 0;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    uint64_t count;

    if (len >= 9 && memcmp(req->target, "/sim/echo", 9) == 0)
        return sim_echo(req, res);
    nseg = sim_split_path(req->target, len, seg, SIM_MAX_SEGS);
    if (nseg == 3 && sim_seg_is(seg[0], "sim") &&
        (sim_seg_is(seg[1], "bytes") || sim_seg_is(seg[1], "chunked")) &&
        sim_parse_count(seg[2], &count) == 0) {
        if (!get)
            return sim_method_not_allowed(res, "GET, HEAD");
        res->status = 200;
        res->ctype = "text/plain";
        res->gen_len = count;
        res->gen_chunked = sim_seg_is(seg[1], "chunked");
        return 0;
    }
    for (size_t r = 0; r < sizeof(sim_routes) / sizeof(sim_routes[0]); r++) {
        const char *const *pat = sim_routes[r].pat;
        int i;

        for (i = 0; i < nseg && pat[i] != NULL; i++)
            if (strcmp(pat[i], "*") != 0 && !sim_seg_is(seg[i], pat[i]))
                break;
        if (i != nseg || (i < SIM_MAX_SEGS && pat[i] != NULL))
            continue;
        if (sim_routes[r].get ? !get : !post)
            return sim_method_not_allowed(res, sim_routes[r].get ? "GET, HEAD" : "POST");
        if (app->conf->require_session && pat[3] != NULL && strcmp(pat[3], "sms") == 0 &&
            !sim_session_valid(app, req))
            return sim_fault_not_authenticated(res, pat[4], &seg[5]);
        return sim_routes[r].fn(app, req, seg, res);
    }
    return sim_res_error(res, 404, "no such path");
}

/* ---- life cycle ----------------------------------------------------------- */

sim_app_t *sim_app_new(const sim_conf_t *conf)
{
    sim_app_t *app = calloc(1, sizeof(*app));

    if (app == NULL)
        return NULL;
    app->conf = conf;
    app->tasks = calloc(SIM_MAX_TASKS, sizeof(*app->tasks));
    if (app->tasks == NULL) {
        free(app);
        return NULL;
    }
    return app;
}

void sim_app_free(sim_app_t *app)
{
    if (app == NULL)
        return;
    for (size_t i = 0; i < SIM_MAX_TASKS; i++)
        sim_task_free(app->tasks[i]);
    free(app->tasks);
    free(app);
}
