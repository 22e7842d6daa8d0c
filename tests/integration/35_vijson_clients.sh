#!/usr/bin/env bash
# 35_vijson_clients: whole VI/JSON client sessions through the gateway (issue 15 item 2), as
# the two clients in use send them, replayed by lib/vijson.py (its docstring names the source
# of every byte), each over HTTP/1.1 and over HTTP/2 on one kept-alive connection, against
# sms-sim --require-session --login (only the Login's session opens the SMS calls upstream):
#   - govmomi v0.38 JSON transport: RetrieveServiceContent, Login, the stop call with no
#     Content-Type, the method name as root _typeName and _this = the VasaProvider, the task
#     queries with _this = the SmsTask, Logout, then the stop call again: vCenter's
#     NotAuthenticated comes back (the session really ended upstream)
#   - a vim_rs-style client: hello (release negotiation: 8.0.3.0 out of 9.0.0.0, 8.0.3.0, ...),
#     GET ServiceInstance content, Login, the stop call with Content-Type application/json and
#     root _typeName TestFailoverReplicationGroupStopRequestType, the task queries without a
#     body, Logout
#   - refused with 500 InvalidArgument naming _this and nothing forwarded: a stop call whose
#     _this names another provider than the path, or an SmsTask; a task query whose _this
#     names another task
# Every step's answer is checked as the client reads it, and so is what the simulator received:
# one request per forwarded step, the session header unchanged, never an Authorization, the
# guarded bodies re-serialised (compact, the client's order, _this dropped) as
# application/json, the other bodies as sent. Then: no token anywhere in the record, and the
# same smsguard still serves a new connection.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VI_USER=administrator@vsphere.local
VI_PASS=sim-pass-$$-$RANDOM

start_sim --require-session --login "$VI_USER:$VI_PASS"
guard_conf "$WORK/smsguard.conf"
start_guard "$WORK/smsguard.conf"

for client in govmomi vimrs; do
    for proto in h1 h2; do
        check "$client over $proto: one connection, the whole session"
        python3 "$SG_SOURCE_DIR/tests/integration/lib/vijson.py" "$client" "$proto" "$SG_PORT" \
            "$CA_CRT" "$SG_TOKEN" "$VI_USER" "$VI_PASS" "vasa-$client-$proto" "$SIM_RECORD" ||
            fail "$client over $proto: see the FAILED lines above"
    done
done

check "the simulator never saw the gateway's token"
record_none_of "$SG_TOKEN" "Bearer"
echo "   $(record_count) requests recorded, none with the token or Authorization"

check "the same smsguard still serves new connections"
assert_serving "after the sessions and the refused _this"
echo "   pid $SG_PID, 200 over HTTP/2 and HTTP/1.1"

echo "PASS: $TEST_NAME"
