/*
 * filters/ops.c - the table of guarded replication-group operations and the schemas of
 * their bodies (filters/ops.h).
 *
 * The shapes are the SMS API's request types (sms-api.md 2.7; member names and types as
 * govmomi's sms/types and the VI/JSON specification give them). A member a type declares
 * optional is optional here too, so no body a real client writes is refused; what vCenter
 * itself refuses as InvalidArgument ("groupId null or empty", "pitName null",
 * "failoverParam null or invalid") is refused here first, before anything is forwarded.
 * The groups a failover or promote names are required as well: a change whose groups are
 * not named cannot be held to a tenant's scope.
 */
#include "filters/ops.h"
#include "policy/policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(s) {(s), sizeof(s) - 1}
#define NAMES(...) ((const sg_str_t[]){__VA_ARGS__, {NULL, 0}})
/* A member or method name and its length. */
#define NM(s) (s), sizeof(s) - 1

static const sg_opt_t t_bool = {.kind = SG_OPT_BOOL};
static const sg_opt_t t_id = {.kind = SG_OPT_ID};
static const sg_opt_t t_string = {.kind = SG_OPT_STRING};
static const sg_opt_t t_int = {.kind = SG_OPT_INT};
static const sg_opt_t t_strings = {.kind = SG_OPT_ARRAY, .elem = &t_string};

/* ---- vim identity types ---- */

static const char msg_id[] = "An id must be a non-empty string of at most 1024 bytes "
                             "without control characters.";
static const char msg_holder[] = "A replication group needs faultDomainId and deviceGroupId "
                                 "objects.";

static const sg_opt_member_t m_id[] = {{NM("id"), &t_id, SG_OPT_REQUIRED, msg_id}};

static const sg_opt_t t_fault_domain_of_group = {
    .kind = SG_OPT_OBJECT, .names = NAMES(S("FaultDomainId")), .members = m_id,
    .nmembers = N(m_id)};
static const sg_opt_t t_device_group = {
    .kind = SG_OPT_OBJECT, .names = NAMES(S("DeviceGroupId")), .members = m_id,
    .nmembers = N(m_id)};
/* A FaultDomainId on its own (QueryReplicationPeer): a scope of its own. */
static const sg_opt_t t_fault_domain = {
    .kind = SG_OPT_OBJECT, .names = NAMES(S("FaultDomainId")), .members = m_id,
    .nmembers = N(m_id), .role = SG_OPT_ROLE_FAULT_DOMAIN};
static const sg_opt_t t_fault_domains = {.kind = SG_OPT_ARRAY, .elem = &t_fault_domain};

static const sg_opt_member_t m_group[] = {
    {NM("faultDomainId"), &t_fault_domain_of_group, SG_OPT_REQUIRED, msg_holder},
    {NM("deviceGroupId"), &t_device_group, SG_OPT_REQUIRED, msg_holder},
};
static const sg_opt_t t_group = {.kind = SG_OPT_OBJECT, .names = NAMES(S("ReplicationGroupId")),
                                 .members = m_group, .nmembers = N(m_group),
                                 .role = SG_OPT_ROLE_GROUP};
static const sg_opt_t t_groups = {.kind = SG_OPT_ARRAY, .elem = &t_group};

/* MoRef (PolicyAssociation.datastore). */
static const sg_opt_member_t m_moref[] = {
    {NM("type"), &t_id, SG_OPT_REQUIRED, NULL},
    {NM("value"), &t_id, SG_OPT_REQUIRED, NULL},
};
static const sg_opt_t t_moref = {.kind = SG_OPT_OBJECT, .names = NAMES(S("ManagedObjectReference")),
                                 .members = m_moref, .nmembers = N(m_moref)};

/* ---- sms types ---- */

/* DeviceId is abstract: the _typeName names the concrete type. */
static const sg_opt_member_t m_vvol[] = {{NM("id"), &t_id, SG_OPT_REQUIRED, NULL}};
static const sg_opt_member_t m_vasa_disk[] = {{NM("diskId"), &t_id, SG_OPT_REQUIRED, NULL}};
static const sg_opt_member_t m_disk_key[] = {
    {NM("vmInstanceUUID"), &t_id, SG_OPT_REQUIRED, NULL},
    {NM("deviceKey"), &t_int, SG_OPT_REQUIRED, NULL},
};
static const sg_opt_member_t m_disk_moid[] = {
    {NM("vcUuid"), &t_string, 0, NULL},
    {NM("vmMoid"), &t_id, SG_OPT_REQUIRED, NULL},
    {NM("diskKey"), &t_id, SG_OPT_REQUIRED, NULL},
};
static const sg_opt_member_t m_vm_path[] = {
    {NM("vcUuid"), &t_string, 0, NULL},
    {NM("dsUrl"), &t_id, SG_OPT_REQUIRED, NULL},
    {NM("vmxPath"), &t_id, SG_OPT_REQUIRED, NULL},
};
static const sg_opt_member_t m_vm_moid[] = {
    {NM("vcUuid"), &t_string, 0, NULL},
    {NM("vmMoid"), &t_id, SG_OPT_REQUIRED, NULL},
};
static const sg_opt_member_t m_vm_uuid[] = {{NM("vmInstanceUUID"), &t_id, SG_OPT_REQUIRED, NULL}};

#define DEVICE(var, name, m)                                                                     \
    static const sg_opt_t var = {                                                                \
        .kind = SG_OPT_OBJECT, .names = NAMES(S(name)), .members = m, .nmembers = N(m)}
DEVICE(t_vvol, "VVolId", m_vvol);
DEVICE(t_vasa_disk, "VasaVirtualDiskId", m_vasa_disk);
DEVICE(t_disk_key, "VirtualDiskKey", m_disk_key);
DEVICE(t_disk_moid, "VirtualDiskMoId", m_disk_moid);
DEVICE(t_vm_path, "VirtualMachineFilePath", m_vm_path);
DEVICE(t_vm_moid, "VirtualMachineMoId", m_vm_moid);
DEVICE(t_vm_uuid, "VirtualMachineUUID", m_vm_uuid);
#undef DEVICE

static const sg_opt_t t_device = {
    .kind = SG_OPT_OBJECT,
    .variants = (const sg_opt_t *const[]){&t_vvol, &t_vasa_disk, &t_disk_key, &t_disk_moid,
                                          &t_vm_path, &t_vm_moid, &t_vm_uuid, NULL}};

static const sg_opt_member_t m_policy_assoc[] = {
    {NM("id"), &t_device, SG_OPT_REQUIRED, NULL},
    {NM("policyId"), &t_string, SG_OPT_REQUIRED, NULL},
    {NM("datastore"), &t_moref, SG_OPT_REQUIRED, NULL},
};
static const sg_opt_t t_policy_assoc = {.kind = SG_OPT_OBJECT,
                                        .names = NAMES(S("PolicyAssociation")),
                                        .members = m_policy_assoc,
                                        .nmembers = N(m_policy_assoc)};
static const sg_opt_t t_policy_assocs = {.kind = SG_OPT_ARRAY, .elem = &t_policy_assoc};

static const sg_opt_t t_pit_id = {.kind = SG_OPT_OBJECT, .names = NAMES(S("PointInTimeReplicaId")),
                                  .members = m_id, .nmembers = N(m_id)};

static const sg_opt_member_t m_group_data[] = {
    {NM("groupId"), &t_group, SG_OPT_REQUIRED, NULL},
    {NM("pitId"), &t_pit_id, 0, NULL},
};
static const sg_opt_t t_group_data = {.kind = SG_OPT_OBJECT,
                                      .names = NAMES(S("ReplicationGroupData")),
                                      .members = m_group_data, .nmembers = N(m_group_data)};
static const sg_opt_t t_groups_data = {.kind = SG_OPT_ARRAY, .elem = &t_group_data};

static const sg_opt_member_t m_failover_param[] = {
    {NM("isPlanned"), &t_bool, SG_OPT_REQUIRED, NULL},
    {NM("checkOnly"), &t_bool, SG_OPT_REQUIRED, NULL},
    {NM("replicationGroupsToFailover"), &t_groups_data, SG_OPT_REQUIRED | SG_OPT_NONEMPTY, NULL},
    {NM("policyAssociations"), &t_policy_assocs, 0, NULL},
};
/* failoverParam is a BaseFailoverParam: a TestFailoverParam is one too. */
static const sg_opt_t t_failover_param = {
    .kind = SG_OPT_OBJECT, .names = NAMES(S("FailoverParam"), S("TestFailoverParam")),
    .members = m_failover_param, .nmembers = N(m_failover_param)};
static const sg_opt_t t_test_failover_param = {
    .kind = SG_OPT_OBJECT, .names = NAMES(S("TestFailoverParam")), .members = m_failover_param,
    .nmembers = N(m_failover_param)};

static const sg_opt_member_t m_promote_param[] = {
    {NM("isPlanned"), &t_bool, SG_OPT_REQUIRED, NULL},
    {NM("replicationGroupsToPromote"), &t_groups, SG_OPT_REQUIRED | SG_OPT_NONEMPTY, NULL},
};
static const sg_opt_t t_promote_param = {.kind = SG_OPT_OBJECT, .names = NAMES(S("PromoteParam")),
                                         .members = m_promote_param,
                                         .nmembers = N(m_promote_param)};

static const sg_opt_member_t m_interval[] = {
    {NM("fromDate"), &t_id, 0, NULL},
    {NM("toDate"), &t_id, 0, NULL},
    {NM("number"), &t_int, 0, NULL},
};
static const sg_opt_t t_interval = {.kind = SG_OPT_OBJECT,
                                    .names = NAMES(S("ReplicaQueryIntervalParam")),
                                    .members = m_interval, .nmembers = N(m_interval)};
static const sg_opt_member_t m_pit_query[] = {
    {NM("replicaTimeQueryParam"), &t_interval, 0, NULL},
    {NM("pitName"), &t_string, 0, NULL},
    {NM("tags"), &t_strings, 0, NULL},
    {NM("preferDetails"), &t_bool, 0, NULL},
};
static const sg_opt_t t_pit_query = {.kind = SG_OPT_OBJECT,
                                     .names = NAMES(S("QueryPointInTimeReplicaParam")),
                                     .members = m_pit_query, .nmembers = N(m_pit_query)};

/* ---- the request bodies ---- */

static const char msg_groups[] = "groupId must be a non-empty array.";

static const sg_opt_member_t b_stop[] = {
    {NM("groupId"), &t_groups, SG_OPT_REQUIRED | SG_OPT_NONEMPTY, msg_groups},
    {NM("force"), &t_bool, SG_OPT_REQUIRED, "force is required and must be a boolean."},
};
static const sg_opt_member_t b_groups[] = {
    {NM("groupId"), &t_groups, SG_OPT_REQUIRED | SG_OPT_NONEMPTY, msg_groups},
};
static const sg_opt_member_t b_sync[] = {
    {NM("groupId"), &t_groups, SG_OPT_REQUIRED | SG_OPT_NONEMPTY, msg_groups},
    {NM("pitName"), &t_id, SG_OPT_REQUIRED, "pitName is required and must be a non-empty string."},
};
static const sg_opt_member_t b_test_failover[] = {
    {NM("testFailoverParam"), &t_test_failover_param, SG_OPT_REQUIRED,
     "testFailoverParam is required and must be a TestFailoverParam object."},
};
static const sg_opt_member_t b_failover[] = {
    {NM("failoverParam"), &t_failover_param, SG_OPT_REQUIRED,
     "failoverParam is required and must be a FailoverParam object."},
};
static const sg_opt_member_t b_promote[] = {
    {NM("promoteParam"), &t_promote_param, SG_OPT_REQUIRED,
     "promoteParam is required and must be a PromoteParam object."},
};
static const sg_opt_member_t b_query_groups[] = {{NM("groupId"), &t_groups, 0, NULL}};
static const sg_opt_member_t b_query_pit[] = {
    {NM("groupId"), &t_groups, 0, NULL},
    {NM("queryParam"), &t_pit_query, 0, NULL},
};
static const sg_opt_member_t b_query_peer[] = {{NM("faultDomainId"), &t_fault_domains, 0, NULL}};

#define CONFIGURE SG_POL_PRIV_CONFIGURE, SG_POL_GROUP_CHANGE
#define VIEW SG_POL_PRIV_VIEW, SG_POL_GROUP_QUERY
#define BODY(b) b, N(b)

/* In the order of the route ids (sg_op_of_route). */
const sg_op_t sg_ops[] = {
    /* method, route, label, privilege, action, body, split, all, empty fault, property */
    {NM("TestFailoverReplicationGroupStop_Task"), SG_ROUTE_STOP_TEST, "stop_test",
     SG_POL_PRIV_CONFIGURE, SG_POL_STOP_TEST, BODY(b_stop), "groupId", 0, "InvalidArgument",
     "groupId"},
    {NM("TestFailoverReplicationGroupStart_Task"), SG_ROUTE_TEST_FAILOVER_START,
     "test_failover_start", CONFIGURE, BODY(b_test_failover), NULL, 0, "InvalidArgument",
     "testFailoverParam"},
    {NM("FailoverReplicationGroup_Task"), SG_ROUTE_FAILOVER, "failover", CONFIGURE,
     BODY(b_failover), NULL, 0, "InvalidArgument", "failoverParam"},
    {NM("PrepareFailoverReplicationGroup_Task"), SG_ROUTE_PREPARE_FAILOVER, "prepare_failover",
     CONFIGURE, BODY(b_groups), "groupId", 0, "InvalidArgument", "groupId"},
    {NM("PromoteReplicationGroup_Task"), SG_ROUTE_PROMOTE, "promote", CONFIGURE, BODY(b_promote),
     NULL, 0, "InvalidArgument", "promoteParam"},
    {NM("SyncReplicationGroup_Task"), SG_ROUTE_SYNC, "sync", CONFIGURE, BODY(b_sync), "groupId", 0,
     "InvalidArgument", "groupId"},
    {NM("ReverseReplicateGroup_Task"), SG_ROUTE_REVERSE, "reverse", CONFIGURE, BODY(b_groups),
     "groupId", 0, "InvalidArgument", "groupId"},
    {NM("QueryReplicationGroup"), SG_ROUTE_QUERY_GROUP, "query_group", VIEW, BODY(b_query_groups),
     NULL, 1, NULL, NULL},
    {NM("QueryPointInTimeReplica"), SG_ROUTE_QUERY_PIT, "query_pit", VIEW, BODY(b_query_pit), NULL,
     1, NULL, NULL},
    {NM("QueryReplicationPeer"), SG_ROUTE_QUERY_PEER, "query_peer", VIEW, BODY(b_query_peer), NULL,
     1, NULL, NULL},
};
const size_t sg_nops = N(sg_ops);

const sg_op_t *sg_op_of_route(int route)
{
    /* The rows are in route order: the stop-test, then every route from
     * SG_ROUTE_TEST_FAILOVER_START on (test_ops.c holds the table to it). */
    size_t i = route == SG_ROUTE_STOP_TEST ? 0
               : route >= SG_ROUTE_TEST_FAILOVER_START && route < SG_ROUTE_COUNT
                   ? (size_t)(route - SG_ROUTE_TEST_FAILOVER_START) + 1
                   : sg_nops;

    return i < sg_nops ? &sg_ops[i] : NULL;
}
