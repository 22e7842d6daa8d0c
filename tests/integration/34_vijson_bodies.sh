#!/usr/bin/env bash
# 34_vijson_bodies: the guarded bodies real VI/JSON clients send are accepted, strictly
# (issue 15 item 1). govmomi's JSON transport sends no Content-Type, the method name as the
# root _typeName and the target again as "_this"; vim_rs the request type's name and no
# body at all for the SmsTask queries. Over HTTP/1.1 and HTTP/2:
#   - govmomi's exact stop-test body without Content-Type is forwarded re-serialised,
#     without _this, labelled application/json; its audit decision record says "this";
#   - a _this naming another provider, another type or holding more than a MoRef is a
#     500 InvalidArgument naming _this, and nothing is forwarded;
#   - application/json with a UTF-8 charset parameter is accepted; text/plain, another
#     charset and two Content-Type lines are refused (500 InvalidRequest);
#   - QuerySmsTaskInfo/Result with govmomi's body ({"_typeName", "_this"}) or none
#     (vim_rs) reach the task; a _this naming another task is refused, nothing forwarded.
# Ends by proving the same smsguard process still serves.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AUDIT=$WORK/audit.log
GUARD_SETTINGS=("extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };")
start_all
PID0=$SG_PID

R=8.0.3.0
VP=/sdk/vim25/$R/sms/VasaProvider
ST=/sdk/vim25/$R/sms/SmsTask
M=TestFailoverReplicationGroupStop_Task
PROTOS=(http1.1 http2)
declare -a REFUSED=() # markers that must never reach the simulator
declare -A TASK=()    # protocol tag -> the SmsTask id of its accepted govmomi stop-test

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# body_govmomi MOID THIS_TYPE THIS_VALUE: the stop-test body govmomi v0.38 writes, member
# for member, for provider MOID with _this {THIS_TYPE, THIS_VALUE}, as json.Encoder ends
# it (a newline).
body_govmomi() {
    printf '{"_typeName":"%s","_this":{"_typeName":"ManagedObjectReference","type":"%s","value":"%s"},"groupId":[{"_typeName":"ReplicationGroupId","faultDomainId":{"_typeName":"FaultDomainId","id":"fd-1"},"deviceGroupId":{"_typeName":"DeviceGroupId","id":"dg-%s"}}],"force":false}\n' \
        "$M" "$2" "$3" "$1"
}

# forwarded_of MOID: what the simulator must receive for body_govmomi MOID ...: the same
# members in the same order, without _this, compact.
forwarded_of() {
    printf '{"_typeName":"%s","groupId":[{"_typeName":"ReplicationGroupId","faultDomainId":{"_typeName":"FaultDomainId","id":"fd-1"},"deviceGroupId":{"_typeName":"DeviceGroupId","id":"dg-%s"}}],"force":false}' \
        "$M" "$1"
}

# stop PROTO MOID BODYFILE [curl args...]: POST BODYFILE to MOID's stop-test path, with no
# Content-Type unless the args give one (curl's form default is removed).
stop() {
    local proto=$1 mk=$2 body=$3 ct=(-H 'Content-Type:')
    shift 3
    [[ " $* " == *" Content-Type: "* ]] && ct=()
    sg_req "$proto" POST "$VP/$mk/$M" "$WORK/$mk" "${ct[@]+"${ct[@]}"}" "$@" --data-binary @"$body"
    [[ $REQ_CODE != 000 ]] || fail "$mk over $proto: no answer ($(head -c 300 "$WORK/$mk.err"))"
    assert_eq "$([[ $proto == http2 ]] && echo 2 || echo 1.1)" "$REQ_VER" "$mk: HTTP version of the answer"
}

# accepted MK PROTO BODYFILE EXPECTED: the stop-test for provider MK was answered with the
# simulator's SmsTask and forwarded once, its body exactly EXPECTED, labelled
# application/json, without Authorization. Prints the task id.
accepted() {
    local mk=$1 proto=$2
    assert_eq 200 "$REQ_CODE" "$mk over $proto: status; body $(head -c 300 "$WORK/$mk.body")"
    assert_eq "ManagedObjectReference SmsTask" \
        "$(json_eval "$WORK/$mk.body" 'd["_typeName"] + " " + d["type"]')" "$mk: answer"
    assert_eq "POST $VP/$mk/$M" "$(record_grep "$VP/$mk/")" "$mk over $proto: what the simulator received"
    record_get_to "$VP/$mk/$M" "$WORK/$mk.rec"
    echo_body_to "$WORK/$mk.rec" "$WORK/$mk.rec.body"
    assert_eq "$4" "$(cat "$WORK/$mk.rec.body")" "$mk over $proto: forwarded body"
    assert_eq application/json "$(echo_header "$WORK/$mk.rec" content-type)" "$mk over $proto: forwarded Content-Type"
    assert_eq 0 "$(echo_header_count "$WORK/$mk.rec" authorization)" "$mk over $proto: Authorization forwarded"
}

# refused MK PROTO TYPE PROP: the answer is a 500 fault of TYPE (for InvalidArgument naming
# PROP); MK goes on the list of markers never forwarded.
refused() {
    local mk=$1 proto=$2
    assert_eq 500 "$REQ_CODE" "$mk over $proto: status; body $(head -c 300 "$WORK/$mk.body")"
    assert_vim_fault "$WORK/$mk.body" "$WORK/$mk.hdr" "$3" "$mk over $proto"
    [[ $3 != InvalidArgument ]] || assert_eq "$4" "$FAULT_PROP" "$mk over $proto: invalidProperty"
    echo "   $(tag "$proto") 500 $FAULT_TYPE${FAULT_PROP:+ invalidProperty=$FAULT_PROP}  ($mk)"
    REFUSED+=("$mk")
}

# ---------------------------------------------------------------------------------------
check "govmomi's stop-test body without Content-Type: accepted, forwarded without _this"
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    mk=gv-$t
    body_govmomi "$mk" VasaProvider "$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req"
    accepted "$mk" "$proto" "$WORK/$mk.req" "$(forwarded_of "$mk")"
    TASK[$t]=$(json_eval "$WORK/$mk.body" 'd["value"]')
    echo "   $t 200 ${TASK[$t]}  (no Content-Type, _typeName $M, _this $mk)"
done

check "the same with Content-Type application/json; charset=utf-8 (any case): the label forwarded is application/json"
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    for c in "cs|application/json; charset=utf-8" "cs-case|Application/JSON;Charset=\"UTF-8\""; do
        mk=${c%%|*}-$t
        body_govmomi "$mk" VasaProvider "$mk" >"$WORK/$mk.req"
        stop "$proto" "$mk" "$WORK/$mk.req" -H "Content-Type: ${c#*|}"
        accepted "$mk" "$proto" "$WORK/$mk.req" "$(forwarded_of "$mk")"
        echo "   $t 200  (Content-Type: ${c#*|})"
    done
done

check "a vim_rs-style body (the request type's name, no _this) is accepted as before"
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    mk=vr-$t
    printf '{"_typeName":"TestFailoverReplicationGroupStopRequestType","groupId":[{"_typeName":"ReplicationGroupId","faultDomainId":{"_typeName":"FaultDomainId","id":"fd-1"},"deviceGroupId":{"_typeName":"DeviceGroupId","id":"dg-%s"}}],"force":true}' \
        "$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req" -H 'Content-Type: application/json'
    accepted "$mk" "$proto" "$WORK/$mk.req" "$(cat "$WORK/$mk.req")"
    echo "   $t 200  (vim_rs)"
done

check "a _this that is not the path's VasaProvider: 500 InvalidArgument naming _this, nothing forwarded"
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    # another provider: the differential an attacker wants (checked for one, acted on for another)
    mk=xo-$t
    body_govmomi "$mk" VasaProvider "other-$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req"
    refused "$mk" "$proto" InvalidArgument _this
    REFUSED+=("other-$mk")
    # the path's value under another type, and the provider's id cut short
    mk=xt-$t
    body_govmomi "$mk" SmsTask "$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req"
    refused "$mk" "$proto" InvalidArgument _this
    mk=xp-$t
    body_govmomi "$mk" VasaProvider "${mk%?}" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req" -H 'Content-Type: application/json'
    refused "$mk" "$proto" InvalidArgument _this
    # more than a MoRef, and not an object
    mk=xs-$t
    body_govmomi "$mk" VasaProvider "$mk" | sed -e 's/"value":"xs-'"$t"'"}/"value":"xs-'"$t"'","serverGuid":"g"}/' >"$WORK/$mk.req"
    grep -q serverGuid "$WORK/$mk.req" || fail "$mk: the serverGuid body was not built"
    stop "$proto" "$mk" "$WORK/$mk.req"
    refused "$mk" "$proto" InvalidArgument _this
    mk=xn-$t
    printf '{"_this":"%s","groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}],"force":false}' \
        "$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req"
    refused "$mk" "$proto" InvalidArgument _this
    # two _this: malformed like every duplicate member
    mk=xd-$t
    printf '{"_this":{"type":"VasaProvider","value":"%s"},"_this":{"type":"VasaProvider","value":"other-%s"},"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}],"force":false}' \
        "$mk" "$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req"
    refused "$mk" "$proto" InvalidRequest -
    # another method's name at the root
    mk=xm-$t
    body_govmomi "$mk" VasaProvider "$mk" | sed -e 's/"TestFailoverReplicationGroupStop_Task"/"TestFailoverReplicationGroupStart_Task"/' >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req"
    refused "$mk" "$proto" InvalidArgument _typeName
done

check "any other media type, another charset, or two Content-Type lines: 500 InvalidRequest, nothing forwarded"
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    n=0
    for c in "text/plain" "application/x-www-form-urlencoded" "application/json; charset=iso-8859-1" \
        "application/json, text/plain" "application/jsonx"; do
        n=$((n + 1))
        mk=xc$n-$t
        body_govmomi "$mk" VasaProvider "$mk" >"$WORK/$mk.req"
        stop "$proto" "$mk" "$WORK/$mk.req" -H "Content-Type: $c"
        refused "$mk" "$proto" InvalidRequest -
    done
    mk=xc2l-$t
    body_govmomi "$mk" VasaProvider "$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req" -H 'Content-Type: application/json' -H 'Content-Type: application/json'
    refused "$mk" "$proto" InvalidRequest -
done

check "the audit decision records say which target the body named"
sleep 0.2
pyrun "$AUDIT" <<'PY' || fail "audit decision records"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], "rb") if l.strip()]
dec = {r["provider"]: r for r in recs if r.get("stage") == "decision"}
bad = []
for t in ("h1", "h2"):
    for mk, this, decision, fault in (("gv-" + t, "gv-" + t, "allow", None),
                                      ("cs-" + t, "cs-" + t, "allow", None),
                                      ("vr-" + t, None, "allow", None),
                                      ("xo-" + t, None, "deny", "InvalidArgument"),
                                      ("xc1-" + t, None, "deny", "InvalidRequest")):
        r = dec.get(mk)
        if r is None:
            bad.append("%s: no decision record" % mk); continue
        got = (r.get("this", "<missing>"), r.get("decision"), r.get("fault"))
        if got != (this, decision, fault):
            bad.append("%s: this/decision/fault %r, expected %r" % (mk, got, (this, decision, fault)))
        print("   %s: this=%s decision=%s reason=%s" % (mk, json.dumps(r.get("this")), r.get("decision"),
                                                    json.dumps(r.get("reason"))))
    r = dec.get("xo-" + t) or {}
    if "_this" not in (r.get("reason") or ""):
        bad.append("xo-%s: reason %r does not say _this" % (t, r.get("reason")))
if bad:
    print("\n".join("   " + b for b in bad)); sys.exit(1)
PY

# ---------------------------------------------------------------------------------------
check "SmsTask queries: govmomi's body (the method and _this) without Content-Type, and vim_rs's none"
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    task=${TASK[$t]}
    for qm in QuerySmsTaskInfo QuerySmsTaskResult; do
        printf '{"_typeName":"%s","_this":{"_typeName":"ManagedObjectReference","type":"SmsTask","value":"%s"}}\n' \
            "$qm" "$task" >"$WORK/q-$qm-$t.req"
        before=$(record_count)
        sg_req "$proto" POST "$ST/$task/$qm" "$WORK/q-$qm-$t" -H 'Content-Type:' \
            --data-binary @"$WORK/q-$qm-$t.req"
        [[ $REQ_CODE == 200 || ($qm == QuerySmsTaskResult && $REQ_CODE == 204) ]] ||
            fail "govmomi $qm over $proto: status $REQ_CODE; body $(head -c 300 "$WORK/q-$qm-$t.body")"
        [[ $qm != QuerySmsTaskInfo ]] ||
            assert_eq "SmsTaskInfo $task" "$(json_eval "$WORK/q-$qm-$t.body" 'd["_typeName"] + " " + d["key"]')" \
                "govmomi $qm over $proto: answer"
        assert_eq $((before + 1)) "$(record_count)" "govmomi $qm over $proto: requests forwarded"
        record_last_to "$WORK/q-$qm-$t.rec"
        assert_eq "$ST/$task/$qm" "$(json_eval "$WORK/q-$qm-$t.rec" 'd["path"]')" "govmomi $qm over $proto: path forwarded"
        echo_body_to "$WORK/q-$qm-$t.rec" "$WORK/q-$qm-$t.rec.body"
        assert_eq "{\"_typeName\":\"$qm\"}" "$(cat "$WORK/q-$qm-$t.rec.body")" "govmomi $qm over $proto: forwarded body"
        assert_eq application/json "$(echo_header "$WORK/q-$qm-$t.rec" content-type)" \
            "govmomi $qm over $proto: forwarded Content-Type"
        echo "   $t $REQ_CODE $qm (govmomi) -> forwarded $(cat "$WORK/q-$qm-$t.rec.body")"

        # vim_rs: a bare POST, no body and no Content-Type
        before=$(record_count)
        sg_req "$proto" POST "$ST/$task/$qm" "$WORK/q0-$qm-$t"
        [[ $REQ_CODE == 200 || ($qm == QuerySmsTaskResult && $REQ_CODE == 204) ]] ||
            fail "bare $qm over $proto: status $REQ_CODE; body $(head -c 300 "$WORK/q0-$qm-$t.body")"
        assert_eq $((before + 1)) "$(record_count)" "bare $qm over $proto: requests forwarded"
        record_last_to "$WORK/q0-$qm-$t.rec"
        echo_body_to "$WORK/q0-$qm-$t.rec" "$WORK/q0-$qm-$t.rec.body"
        assert_eq 0 "$(stat -c %s "$WORK/q0-$qm-$t.rec.body")" "bare $qm over $proto: forwarded body length"
        echo "   $t $REQ_CODE $qm (no body) -> forwarded an empty body"
    done
done

check "SmsTask queries whose _this is not the path's task: 500 InvalidArgument naming _this, nothing forwarded"
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    task=${TASK[$t]}
    n=0
    for this in "SmsTask other-$task" "VasaProvider $task" "Task $task"; do
        n=$((n + 1))
        printf '{"_typeName":"QuerySmsTaskInfo","_this":{"_typeName":"ManagedObjectReference","type":"%s","value":"%s"}}' \
            "${this% *}" "${this#* }" >"$WORK/qx$n-$t.req"
        before=$(record_count)
        sg_req "$proto" POST "$ST/$task/QuerySmsTaskInfo" "$WORK/qx$n-$t" -H 'Content-Type:' \
            --data-binary @"$WORK/qx$n-$t.req"
        assert_eq 500 "$REQ_CODE" "query with _this $this over $proto: status; body $(head -c 300 "$WORK/qx$n-$t.body")"
        assert_vim_fault "$WORK/qx$n-$t.body" "$WORK/qx$n-$t.hdr" InvalidArgument "query with _this $this over $proto"
        assert_eq _this "$FAULT_PROP" "query with _this $this over $proto: invalidProperty"
        sleep 0.05
        assert_eq "$before" "$(record_count)" "query with _this $this over $proto: requests forwarded"
        echo "   $t 500 InvalidArgument invalidProperty=_this  (query, _this $this)"
    done
    before=$(record_count)
    sg_req "$proto" POST "$ST/$task/QuerySmsTaskResult" "$WORK/qxt-$t" -H 'Content-Type: text/plain' \
        --data-binary '{}'
    assert_eq 500 "$REQ_CODE" "query as text/plain over $proto: status"
    assert_vim_fault "$WORK/qxt-$t.body" "$WORK/qxt-$t.hdr" InvalidRequest "query as text/plain over $proto"
    sleep 0.05
    assert_eq "$before" "$(record_count)" "query as text/plain over $proto: requests forwarded"
    echo "   $t 500 InvalidRequest  (query as text/plain)"
done

check "nothing refused reached the simulator"
sleep 0.2
record_none_of "${REFUSED[@]}"
echo "   ${#REFUSED[@]} refused stop-tests, none forwarded"

check "the same smsguard process still serves, on new connections, over both protocols"
assert_eq "$PID0" "$SG_PID" "smsguard PID"
assert_serving "after the refusals"
for proto in "${PROTOS[@]}"; do
    mk=end-$(tag "$proto")
    body_govmomi "$mk" VasaProvider "$mk" >"$WORK/$mk.req"
    stop "$proto" "$mk" "$WORK/$mk.req"
    accepted "$mk" "$proto" "$WORK/$mk.req" "$(forwarded_of "$mk")"
done

echo "PASS: $TEST_NAME"
