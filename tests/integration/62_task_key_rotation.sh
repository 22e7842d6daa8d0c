#!/usr/bin/env bash
# 62_task_key_rotation: rotating batch.task_key_file with batch.task_key_previous_file
# (docs/operations.md "Rotating the task key"), by SIGHUP:
#   - a composite handle made under key A is answered after the rotation (task_key_file = B,
#     task_key_previous_file = A); a handle made after it is signed with B only (an instance
#     that knows only A refuses it, one that knows only B accepts it)
#   - once the previous key is cleared, the A handle answers 500 ManagedObjectNotFound and
#     nothing is forwarded; the B handle still works
#   - a previous key file shorter than 32 bytes is refused with file:line, the running
#     configuration stays
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
ST=/sdk/vim25/8.0.3.0/sms/SmsTask
head -c 32 /dev/urandom >"$WORK/a.key"
head -c 32 /dev/urandom >"$WORK/b.key"
head -c 16 /dev/urandom >"$WORK/short.key"
BODY='{"groupId":['
SEP=""
for i in 0 1 2 3 4 5; do
    BODY+="$SEP{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"rg-$i\"}}"
    SEP=,
done
BODY+='],"force":false}'

batch() { # batch KEY [PREVIOUS]
    echo "batch = { max_size = 4; task_key_file = \"$1\"; task_key_previous_file = \"${2:-}\"; };"
}

# create OUT: a 6-group stop-test split in two parts; sets HANDLE to the composite handle.
create() {
    sg_req http2 POST "$VP/vasa-rot/TestFailoverReplicationGroupStop_Task" "$1" \
        -H 'Content-Type: application/json' -H 'vmware-api-session-id: sess-rot' --data-binary "$BODY"
    assert_eq 200 "$REQ_CODE" "stop-test status; body $(head -c 300 "$1.body")"
    HANDLE=$(json_eval "$1.body" 'd["value"] if d.get("type") == "SmsTask" else "BAD"')
}

# info HANDLE OUT: QuerySmsTaskInfo on HANDLE; sets INFO to "STATUS TYPE" (TYPE: the
# answer's _typeName) and QNEW to the number of requests the simulator received meanwhile.
info() {
    local before
    before=$(record_count)
    sg_req http1.1 POST "$ST/$1/QuerySmsTaskInfo" "$2" -H 'Content-Type: application/json' \
        -H 'vmware-api-session-id: sess-rot' --data-binary '{}'
    QNEW=$(($(record_count) - before))
    INFO="$REQ_CODE $(json_eval "$2.body" 'd.get("_typeName")')"
}

start_sim --task-ms 300
guard_conf "$WORK/sg.conf" "extra=$(batch "$WORK/a.key")"
start_guard "$WORK/sg.conf"

check "a composite task under key A is answered"
create "$WORK/ca"
HA=$HANDLE
assert_match '^sgc1\.' "$HA" "handle under A"
info "$HA" "$WORK/ia0"
assert_eq "200 SmsTaskInfo" "$INFO" "QuerySmsTaskInfo under A"
assert_eq 2 "$QNEW" "part queries forwarded"

check "rotation: task_key_file = B, task_key_previous_file = A, SIGHUP: the A handle still works"
guard_conf "$WORK/sg.conf" "listen_port=$SG_PORT" "admin_port=$SG_ADMIN_PORT" \
    "extra=$(batch "$WORK/b.key" "$WORK/a.key")"
hup_and_wait reloaded
info "$HA" "$WORK/ia1"
assert_eq "200 SmsTaskInfo" "$INFO" "QuerySmsTaskInfo on the A handle after the rotation"
assert_eq 2 "$QNEW" "part queries forwarded"
create "$WORK/cb"
HB=$HANDLE
info "$HB" "$WORK/ib1"
assert_eq "200 SmsTaskInfo" "$INFO" "QuerySmsTaskInfo on a handle made after the rotation"

check "a previous key shorter than 32 bytes: reload refused with file:line, old keys stay"
guard_conf "$WORK/sg.conf" "listen_port=$SG_PORT" "admin_port=$SG_ADMIN_PORT" \
    "extra=$(batch "$WORK/b.key" "$WORK/short.key")"
hup_and_wait "reload refused.*sg\.conf:[0-9]+: .*task_key_previous_file"
info "$HA" "$WORK/ia2"
assert_eq "200 SmsTaskInfo" "$INFO" "the A handle after the refused reload"

check "the handle made after the rotation is signed with B only"
guard_conf "$WORK/sg.conf" "listen_port=$SG_PORT" "admin_port=$SG_ADMIN_PORT" \
    "extra=$(batch "$WORK/a.key")"
hup_and_wait reloaded
info "$HB" "$WORK/ib2"
assert_eq "500 ManagedObjectNotFound" "$INFO" "the B handle where only A is known"
assert_eq 0 "$QNEW" "requests forwarded for a handle that does not verify"

check "previous key cleared (only B): the A handle is refused, nothing forwarded; B works"
guard_conf "$WORK/sg.conf" "listen_port=$SG_PORT" "admin_port=$SG_ADMIN_PORT" \
    "extra=$(batch "$WORK/b.key")"
hup_and_wait reloaded
info "$HA" "$WORK/ia3"
assert_eq "500 ManagedObjectNotFound" "$INFO" "the A handle once A is gone"
assert_eq 0 "$QNEW" "requests forwarded for the A handle"
info "$HB" "$WORK/ib3"
assert_eq "200 SmsTaskInfo" "$INFO" "the B handle"
record_none_of sgc1.

echo "PASS: $TEST_NAME"
