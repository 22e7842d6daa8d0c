#!/usr/bin/env bash
# 25_upstream_https: an https upstream is verified against upstream.ca_file: the right CA
# works; a wrong CA, or a server_name the certificate does not cover, gives 502 and nothing
# reaches the simulator as an HTTP request.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_certs
gen_ca upca          # the upstream's CA
gen_cert upca upsrv  # the simulator's certificate (127.0.0.1, localhost)
gen_ca wrongca       # a CA that did not sign it
start_sim --tls-cert "$WORK/upsrv.crt" --tls-key "$WORK/upsrv.key"

check "the simulator itself answers over TLS (sanity)"
out=$(curl -sS --max-time 10 --cacert "$WORK/upca.crt" -o /dev/null -w '%{http_code}' \
    "https://127.0.0.1:$SIM_PORT/sim/echo/direct")
assert_eq 200 "$out" "direct status"

check "upstream https with the right ca_file: 200"
guard_conf "$WORK/good.conf" "upstream_url=https://127.0.0.1:$SIM_PORT" "ca_file=$WORK/upca.crt"
start_guard "$WORK/good.conf"
GOOD_URL=$SG_URL
out=$(sg_curl -o "$WORK/ok.json" -w '%{http_code}' "$GOOD_URL/sim/echo/tls-ok")
assert_eq 200 "$out" "status"
assert_eq /sim/echo/tls-ok "$(json_eval "$WORK/ok.json" 'd["path"]')" "echoed path"
assert_eq "127.0.0.1:$SIM_PORT" "$(echo_header "$WORK/ok.json" host)" "Host upstream"
record_has_path /sim/echo/tls-ok || fail "request not recorded by the simulator"
out=$(sg_curl --http2 -o "$WORK/big" -w '%{http_code} %{size_download}' "$GOOD_URL/sim/bytes/100000")
assert_eq "200 100000" "$out" "big response over an https upstream"

check "server_name = localhost (covered by the certificate) works too"
guard_conf "$WORK/sni.conf" "upstream_url=https://127.0.0.1:$SIM_PORT" "ca_file=$WORK/upca.crt" \
    server_name=localhost
start_guard "$WORK/sni.conf"
out=$(sg_curl -o "$WORK/sni.json" -w '%{http_code}' "$SG_URL/sim/echo/tls-sni")
assert_eq 200 "$out" "status with server_name = localhost"

check "upstream https with a wrong CA: 502, nothing forwarded"
guard_conf "$WORK/wrong.conf" "upstream_url=https://127.0.0.1:$SIM_PORT" "ca_file=$WORK/wrongca.crt"
start_guard "$WORK/wrong.conf"
before=$(record_count)
out=$(sg_curl -o "$WORK/wrong.out" -w '%{http_code}' "$SG_URL/sim/echo/tls-wrong-ca" || true)
assert_eq 502 "$out" "status with a wrong CA"
out=$(sg_curl --http2 -o "$WORK/wrong2.out" -w '%{http_code}' \
    --data-binary '{"a":1}' "$SG_URL/sim/echo/tls-wrong-ca-post" || true)
assert_eq 502 "$out" "status with a wrong CA (h2 POST)"
sleep 0.2
assert_eq "$before" "$(record_count)" "requests recorded by the simulator"
! record_has_path /sim/echo/tls-wrong-ca || fail "request through a wrongly verified upstream was forwarded"

check "upstream https with a server_name the certificate does not cover: 502, nothing forwarded"
guard_conf "$WORK/name.conf" "upstream_url=https://127.0.0.1:$SIM_PORT" "ca_file=$WORK/upca.crt" \
    server_name=other.example
start_guard "$WORK/name.conf"
out=$(sg_curl -o "$WORK/name.out" -w '%{http_code}' "$SG_URL/sim/echo/tls-wrong-name" || true)
assert_eq 502 "$out" "status with a wrong server_name"
sleep 0.2
assert_eq "$before" "$(record_count)" "requests recorded by the simulator"

check "the good smsguard still works afterwards"
out=$(sg_curl -o /dev/null -w '%{http_code}' "$GOOD_URL/sim/echo/tls-ok-again")
assert_eq 200 "$out" "status"

echo "PASS: $TEST_NAME"
