#!/usr/bin/env bash
# 43_reload_under_load: two reloads while h2load runs (issue 9), and not one request fails.
#   - h2load over h2 (20000 requests, 8 connections x 4 streams) and h2load --h1 (6000
#     requests, 8 connections) against /sim/echo, both at a bounded rate (about 10 s)
#   - meanwhile SIGHUP with a changed limit and policy (limits.max_body_bytes 1 MiB -> 200;
#     a new token), then the certificate and key replaced by a new pair and SIGHUP again
#   - h2load: every request succeeded with 2xx, none failed or errored; the simulator
#     received every one of them
#   - after the reloads: the new limit and token hold for new requests, and a new TLS
#     connection is served the new certificate
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need h2load nghttp2-client

N2=20000
N1=6000
TOKEN_B=token-b-$$-$RANDOM

# wait_records N: wait until the simulator recorded at least N requests (20 s at most).
wait_records() {
    local deadline=$((SECONDS + 20))
    while (($(record_count) < $1)); do
        ((SECONDS < deadline)) || fail "the simulator recorded $(record_count) requests, not $1, in 20 s"
        sleep 0.1
    done
}

# cert_fp: SHA-256 fingerprint of the certificate a new TLS connection is served.
cert_fp() {
    openssl s_client -connect "127.0.0.1:$SG_PORT" -servername localhost </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}

# post300 TOKEN: POST 300 bytes to /sim/echo/body with TOKEN; prints the status.
post300() {
    head -c 300 /dev/zero | tr '\0' 'x' >"$WORK/b300"
    sg_curl -o /dev/null -w '%{http_code}' --data-binary @"$WORK/b300" \
        -H "authorization: Bearer $1" "$SG_URL/sim/echo/body-$RANDOM" || true
}

# stop TOKEN: a stop-test with TOKEN; prints the status.
stop() {
    sg_curl -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
        -H "authorization: Bearer $1" \
        --data-binary '{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}],"force":false}' \
        "$SG_URL/sdk/vim25/8.0.3.0/sms/VasaProvider/vp-1/TestFailoverReplicationGroupStop_Task" || true
}

policy_for() { # policy_for TOKEN
    cat <<EOP
policy = {
  tokens = ( { id = "t"; sha256 = "$(printf '%s' "$1" | sha256sum | cut -c1-64)";
               subject = "tester"; tenant = "all"; roles = ["op"]; } );
  roles = ( { name = "op"; privileges = ["StorageViews.ConfigureService"]; } );
  tenants = ( { name = "all"; providers = ["*"]; fault_domains = ["*"]; } );
};
EOP
}

setup_certs
start_sim
guard_conf "$WORK/sg.conf" workers=2 policy="$(policy_for "$SG_TOKEN")"
start_guard "$WORK/sg.conf"
FP_OLD=$(cert_fp)

check "before: a 300-byte body passes, the first token works"
assert_eq 200 "$(post300 "$SG_TOKEN")" "300-byte POST"
assert_eq 200 "$(stop "$SG_TOKEN")" "stop-test with the first token"
BASE=$(record_count)

check "h2load over h2 ($N2 requests, -c 8 -m 4) and over HTTP/1.1 ($N1, -c 8), about 10 s each"
h2load -n "$N2" -c 8 -m 4 --rps 250 "$SG_URL/sim/echo/load-h2" >"$WORK/h2.out" 2>&1 &
H2=$!
track_pid "$H2" "h2load h2"
h2load --h1 -n "$N1" -c 8 --rps 75 "$SG_URL/sim/echo/load-h1" >"$WORK/h1.out" 2>&1 &
H1=$!
track_pid "$H1" "h2load h1"

check "under load: SIGHUP with max_body_bytes 200 and a new token"
wait_records $((BASE + 4000))
guard_conf "$WORK/sg.conf" workers=2 listen_port="$SG_PORT" admin_port="$SG_ADMIN_PORT" \
    limits="max_body_bytes = 200;" policy="$(policy_for "$TOKEN_B")"
hup_and_wait "reloaded"
echo "   reloaded with $(($(record_count) - BASE)) requests recorded"

check "under load: a new certificate and key, SIGHUP again"
wait_records $((BASE + 10000))
gen_cert ca server2 reloaded-cert
cp "$WORK/server2.key" "$WORK/server.key.new"
cp "$WORK/server2.crt" "$WORK/server.crt.new"
mv "$WORK/server.key.new" "$WORK/server.key"
mv "$WORK/server.crt.new" "$WORK/server.crt"
hup_and_wait "reloaded"
echo "   reloaded with $(($(record_count) - BASE)) requests recorded"
is_alive "$H2" || fail "h2load (h2) ended before the second reload: raise N2 or lower the rate"
is_alive "$H1" || fail "h2load (h1) ended before the second reload: raise N1 or lower the rate"

check "h2load: every request succeeded with 2xx, none failed or errored"
wait "$H2" || fail "h2load (h2) exited non-zero: $(cat "$WORK/h2.out")"
forget_pid "$H2"
wait "$H1" || fail "h2load (h1) exited non-zero: $(cat "$WORK/h1.out")"
forget_pid "$H1"
grep -q 'Application protocol: h2' "$WORK/h2.out" || fail "h2load did not use h2: $(cat "$WORK/h2.out")"
grep -q 'Application protocol: http/1.1' "$WORK/h1.out" || fail "h2load --h1 did not use http/1.1"
h2load_check "$WORK/h2.out" "$N2"
assert_match " 0 failed, 0 errored, 0 timeout" "$(grep '^requests:' "$WORK/h2.out")" "h2 failures"
h2load_check "$WORK/h1.out" "$N1"
assert_match " 0 failed, 0 errored, 0 timeout" "$(grep '^requests:' "$WORK/h1.out")" "h1 failures"
assert_eq "$N2" "$(record_paths | grep -cx /sim/echo/load-h2 || true)" "h2 requests the simulator received"
assert_eq "$N1" "$(record_paths | grep -cx /sim/echo/load-h1 || true)" "h1 requests the simulator received"

check "after the reloads: the new limit and token hold, the new certificate is served"
assert_eq 413 "$(post300 "$TOKEN_B")" "300-byte POST with max_body_bytes 200"
assert_eq 200 "$(stop "$TOKEN_B")" "stop-test with the new token"
assert_eq 500 "$(stop "$SG_TOKEN")" "stop-test with the old token (NotAuthenticated)"
FP_NEW=$(cert_fp)
FP_WANT=$(openssl x509 -in "$WORK/server2.crt" -noout -fingerprint -sha256 | cut -d= -f2)
echo "   certificate before: $FP_OLD"
echo "   certificate after:  $FP_NEW"
assert_ne "$FP_OLD" "$FP_NEW" "the certificate served after the reload"
assert_eq "$FP_WANT" "$FP_NEW" "the certificate served is the new one"
assert_eq 0 "$(grep -c 'reload refused' "$SG_LOG" || true)" "refused reloads"

echo "PASS: $TEST_NAME"
