#!/usr/bin/env bash
# 92_two_instances: two smsguard instances behind HAProxy (issue 9, docs/operations.md
# "Scale-out behind an L4 balancer").
#   - HAProxy (mode tcp, balance roundrobin, 127.0.0.1, health checks on each instance's
#     /healthz) in front of two instances sharing batch.task_key_file, each with its own
#     audit file; one simulator behind both
#   - a 10-group stop-test through HAProxy gives a composite handle (batch.max_size 4); the
#     audit files tell which instance made it; the other instance, asked directly, answers
#     QuerySmsTaskInfo for it until success, and QuerySmsTaskResult through both instances
#     and through HAProxy is the same 10 entries; every part is queried upstream
#   - a rolling reload (SIGHUP instance 1, then instance 2, each with a changed limit) while
#     h2load sends 6000 requests through HAProxy: none fails, every one is 2xx and reaches
#     the simulator, and both instances served some
#   - each instance records its own stop-tests in its own audit file, a chain from seq 1
#     that smsguard-audit verify accepts
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
[[ -x $HAPROXY ]] || skip "HAPROXY=$HAPROXY is not an executable (scripts/deps.sh --test installs haproxy)"
need h2load nghttp2-client
VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
ST=/sdk/vim25/8.0.3.0/sms/SmsTask
M=TestFailoverReplicationGroupStop_Task
N=6000
mkdir -p "$WORK/r"
head -c 32 /dev/urandom >"$WORK/task.key"

# conf NAME [limits]: instance NAME's configuration (ports kept across rewrites).
declare -A PORT=() APORT=() PID=() LOG=()
conf() {
    local extra="batch = { max_size = 4; max_parallel = 2; task_key_file = \"$WORK/task.key\"; };
audit = { file = \"$WORK/$1.audit\"; sync = \"batch\"; };"
    local args=("extra=$extra" "limits=${2:-max_body_bytes = 1048576;}")
    [[ -n ${PORT[$1]:-} ]] && args+=("listen_port=${PORT[$1]}" "admin_port=${APORT[$1]}")
    guard_conf "$WORK/$1.conf" "${args[@]}"
}

# q URL HANDLE METHOD OUT: POST URL$ST/HANDLE/METHOD with body {}; sets REQ_CODE.
q() {
    local u=$SG_URL
    SG_URL=$1
    sg_post http2 "$ST/$2/$3" "$4" -H "Authorization: Bearer $SG_TOKEN" \
        -H 'Content-Type: application/json' --data-binary '{}'
    SG_URL=$u
}

# metric_requests NAME: smsguard_requests_total summed over its series, on instance NAME.
metric_requests() {
    curl -sS --max-time 5 "http://127.0.0.1:${APORT[$1]}/metrics" |
        awk '/^smsguard_requests_total[{ ]/ { s += $NF } END { printf "%d\n", s }'
}

setup_certs
start_sim --task-ms 1500
for g in g1 g2; do
    conf "$g"
    start_guard "$WORK/$g.conf"
    PORT[$g]=$SG_PORT
    APORT[$g]=$SG_ADMIN_PORT
    PID[$g]=$SG_PID
    LOG[$g]=$SG_LOG
done

check "HAProxy in front: mode tcp, balance roundrobin, health checks on /healthz"
free_port HP
cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 512
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend smsguard
    bind 127.0.0.1:$HP
    default_backend smsguard
backend smsguard
    balance roundrobin
    retries 2
    option redispatch 1
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 200ms fall 2 rise 1
    server g1 127.0.0.1:${PORT[g1]} port ${APORT[g1]}
    server g2 127.0.0.1:${PORT[g2]} port ${APORT[g2]}
EOF
"$HAPROXY" -c -f "$WORK/haproxy.cfg" >"$WORK/haproxy-check.out" 2>&1 ||
    fail "haproxy -c: $(cat "$WORK/haproxy-check.out")"
"$HAPROXY" -f "$WORK/haproxy.cfg" -db </dev/null >"$WORK/haproxy.out" 2>"$WORK/haproxy.err" &
HA_PID=$!
track_pid "$HA_PID" haproxy
wait_port "$HP" "$HA_PID" haproxy "$WORK/haproxy.err"
LB=https://127.0.0.1:$HP
sleep 0.5 # the first health checks

check "a 10-group stop-test through HAProxy gives a composite handle"
b='{"groupId":['
sep=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    b+="$sep{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"rg-$i\"}}"
    sep=,
done
b+='],"force":false}'
SG_URL=$LB
sg_req http2 POST "$VP/vasa-92/$M" "$WORK/r/create" -H 'Content-Type: application/json' \
    --data-binary "$b"
assert_eq 200 "$REQ_CODE" "create: status; body $(head -c 400 "$WORK/r/create.body")"
H=$(json_eval "$WORK/r/create.body" 'd["value"] if d.get("_typeName") == "ManagedObjectReference" and d.get("type") == "SmsTask" else "BAD"')
assert_match '^sgc1\.[A-Za-z0-9_.~-]+$' "$H" "the task reference's value"
assert_eq 3 "$(record_paths | grep -c "^$VP/vasa-92/$M\$" || true)" "parts sent upstream"

# Which instance made it: its audit file has the decision (sync batch: within a second).
MAKER=""
for _ in $(seq 1 40); do
    for g in g1 g2; do
        [[ -s $WORK/$g.audit ]] && grep -q '"provider":"vasa-92"' "$WORK/$g.audit" && MAKER=$g
    done
    [[ -n $MAKER ]] && break
    sleep 0.05
done
[[ -n $MAKER ]] || fail "neither instance's audit file has the stop-test"
OTHER=g1
[[ $MAKER == g1 ]] && OTHER=g2
! grep -q '"provider":"vasa-92"' "$WORK/$OTHER.audit" 2>/dev/null ||
    fail "both audit files have the stop-test"
echo "   made by $MAKER; now asking $OTHER directly"

check "the other instance answers QuerySmsTaskInfo for the handle until success"
deadline=$((SECONDS + 15))
polls=0
while :; do
    polls=$((polls + 1))
    before=$(record_count)
    q "https://127.0.0.1:${PORT[$OTHER]}" "$H" QuerySmsTaskInfo "$WORK/r/info"
    assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo on $OTHER (poll $polls); body $(head -c 400 "$WORK/r/info.body")"
    assert_eq 3 "$(($(record_count) - before))" "part queries upstream for one QuerySmsTaskInfo"
    assert_eq "SmsTaskInfo $H" "$(json_eval "$WORK/r/info.body" 'd["_typeName"] + " " + d["key"]')" \
        "QuerySmsTaskInfo's answer"
    st=$(json_eval "$WORK/r/info.body" 'd.get("state")')
    [[ $st == success ]] && break
    [[ $st == running || $st == queued ]] || fail "QuerySmsTaskInfo on $OTHER: state '$st'"
    ((SECONDS < deadline)) || fail "the composite task is still $st after 15 s"
    sleep 0.3
done
echo "   success after $polls poll(s)"

check "QuerySmsTaskResult: the same 10 entries from either instance and through HAProxy"
norm='json.dumps(d, sort_keys=True)'
q "https://127.0.0.1:${PORT[$OTHER]}" "$H" QuerySmsTaskResult "$WORK/r/res-other"
assert_eq 200 "$REQ_CODE" "QuerySmsTaskResult on $OTHER; body $(head -c 400 "$WORK/r/res-other.body")"
assert_eq 10 "$(json_eval "$WORK/r/res-other.body" 'len(d["_value"])')" "entries in the result"
q "https://127.0.0.1:${PORT[$MAKER]}" "$H" QuerySmsTaskResult "$WORK/r/res-maker"
assert_eq 200 "$REQ_CODE" "QuerySmsTaskResult on $MAKER"
assert_eq "$(json_eval "$WORK/r/res-other.body" "$norm")" "$(json_eval "$WORK/r/res-maker.body" "$norm")" \
    "the two instances' results"
assert_eq "$(json_eval "$WORK/r/info.body" 'json.dumps(d["result"], sort_keys=True)')" \
    "$(json_eval "$WORK/r/res-other.body" "$norm")" "QuerySmsTaskResult against QuerySmsTaskInfo's result"
for i in 1 2; do
    q "$LB" "$H" QuerySmsTaskResult "$WORK/r/res-lb$i"
    assert_eq 200 "$REQ_CODE" "QuerySmsTaskResult through HAProxy ($i)"
    assert_eq "$(json_eval "$WORK/r/res-other.body" "$norm")" "$(json_eval "$WORK/r/res-lb$i.body" "$norm")" \
        "the result through HAProxy ($i)"
done
record_none_of "$H"

check "rolling reload (instance 1, then 2) while h2load sends $N requests through HAProxy"
R0=$(metric_requests g1)
R1=$(metric_requests g2)
BASE=$(record_count)
h2load -n "$N" -c 4 -m 4 --rps 150 "$LB/sim/echo/rolling" >"$WORK/h2load.out" 2>&1 &
HL=$!
track_pid "$HL" h2load
deadline=$((SECONDS + 20))
while (($(record_count) < BASE + 1000)); do
    ((SECONDS < deadline)) || fail "the load did not start: $(($(record_count) - BASE)) requests"
    sleep 0.1
done
for g in g1 g2; do
    conf "$g" "max_body_bytes = 65536; max_header_bytes = 32768;"
    hup_and_wait reloaded "${PID[$g]}" "${LOG[$g]}"
    echo "   $g reloaded at $(($(record_count) - BASE)) requests"
    sleep 0.5
done
is_alive "$HL" || fail "h2load ended before the rolling reload was over: raise N or lower the rate"
wait "$HL" || fail "h2load exited non-zero: $(cat "$WORK/h2load.out")"
forget_pid "$HL"
h2load_check "$WORK/h2load.out" "$N"
assert_match " 0 failed, 0 errored, 0 timeout" "$(grep '^requests:' "$WORK/h2load.out")" "h2load failures"
assert_eq "$N" "$(record_paths | grep -cx /sim/echo/rolling || true)" "requests the simulator received"
D0=$(($(metric_requests g1) - R0))
D1=$(($(metric_requests g2) - R1))
echo "   requests served: g1 $D0, g2 $D1"
assert_lt 0 "$D0" "requests instance 1 served"
assert_lt 0 "$D1" "requests instance 2 served"
for g in g1 g2; do
    assert_eq 0 "$(grep -c 'reload refused' "${LOG[$g]}" || true)" "$g: refused reloads"
done

check "each instance's audit file is its own verified chain"
for g in g1 g2; do
    SG_URL=https://127.0.0.1:${PORT[$g]}
    stop_post http2 "vasa-direct-$g" "$WORK/r/direct-$g"
    assert_eq 200 "$REQ_CODE" "a stop-test sent to $g directly"
done
for g in g1 g2; do
    stop_guard_term "${PID[$g]}"
    audit_verify "$WORK/$g.audit"
    echo "   $g: $AV_OUT"
    assert_eq 0 "$AV_RC" "$g: smsguard-audit verify"
    grep -q "\"provider\":\"vasa-direct-$g\"" "$WORK/$g.audit" || fail "$g's audit file lacks its own stop-test"
    other=g1
    [[ $g == g1 ]] && other=g2
    ! grep -q "\"provider\":\"vasa-direct-$other\"" "$WORK/$g.audit" || fail "$g's audit file has $other's stop-test"
    head -n 1 "$WORK/$g.audit" >"$WORK/$g.first"
    assert_eq "1 1" "$(json_eval "$WORK/$g.first" 'str(d["seq"]) + " " + str(int(d["prev"] == "0" * 64))')" \
        "$g: its chain starts at seq 1"
done

echo "PASS: $TEST_NAME"
