#!/usr/bin/env bash
# 86_mtls: optional client certificates (listen.tls.client_ca; issue 8). With client_ca set:
#   - a client certificate from that CA (clientAuth) gets through over HTTP/1.1 and HTTP/2;
#     the audit decision record's client.cert_subject carries its subject
#   - a session resumed (TLS 1.2 and 1.3) is accepted and keeps the certificate's subject
#   - no certificate, a certificate from another CA, an expired certificate from the right
#     CA: the handshake is refused (curl fails), the simulator receives nothing and no
#     audit record is written for them
# With client_ca empty (the default): requests pass without a certificate and
# cert_subject is null. smsguard-audit verify passes on both audit files.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider

# gen_client CA NAME SUBJECT [START END]: a client certificate (extendedKeyUsage clientAuth)
# signed by CA, $WORK/NAME.crt/.key; the subject is kept as given (-preserveDN); START/END
# (YYYYMMDDHHMMSSZ) make certificates that are not valid now.
gen_client() {
    local ca=$1 name=$2 subj=$3 start=${4:-} end=${5:-}
    mkdir -p "$WORK/ca-$ca"
    : >"$WORK/ca-$ca/index.txt"
    cat >"$WORK/ca-$ca/ca.cnf" <<EOT
[ca]
default_ca = tca
[tca]
database = $WORK/ca-$ca/index.txt
new_certs_dir = $WORK/ca-$ca
serial = $WORK/ca-$ca/serial
default_md = sha256
default_days = 30
policy = anything
unique_subject = no
[anything]
commonName = supplied
organizationName = optional
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
    openssl rand -hex 8 >"$WORK/ca-$ca/serial"
    { openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$WORK/$name.key" -out "$WORK/$name.csr" -subj "$subj" &&
        openssl ca -batch -notext -preserveDN -config "$WORK/ca-$ca/ca.cnf" \
            -cert "$WORK/$ca.crt" -keyfile "$WORK/$ca.key" -extensions client_ext \
            ${start:+-startdate "$start"} ${end:+-enddate "$end"} \
            -in "$WORK/$name.csr" -out "$WORK/$name.crt"; } >"$WORK/openssl.out" 2>&1 ||
        { cat "$WORK/openssl.out" >&2; fail "openssl could not make client certificate $name"; }
}

setup_certs
gen_ca clientca
gen_ca otherca
gen_client clientca robot "/O=Example/CN=dr-robot"
gen_client otherca intruder "/O=Example/CN=dr-robot"
gen_client clientca old "/O=Example/CN=old-robot" 20200101000000Z 20200201000000Z
openssl x509 -in "$WORK/old.crt" -noout -checkend 0 >/dev/null 2>&1 &&
    fail "the 'expired' client certificate is valid now"

start_sim
AUDIT=$WORK/audit-mtls.log
guard_conf "$WORK/mtls.conf" \
    "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };"
# guard_conf has no client_ca setting: add it to the listener's tls block
sed -i "s|^\(\s*private_key = .*;\)$|\1\n      client_ca = \"$WORK/clientca.crt\";|" "$WORK/mtls.conf"
grep -q 'client_ca = ' "$WORK/mtls.conf" || fail "could not add client_ca to the configuration"
start_guard "$WORK/mtls.conf"

check "a certificate from client_ca gets through (h1 and h2)"
for proto in http1.1 http2; do
    stop_post "$proto" "vasa-mtls-ok-$proto" "$WORK/ok-$proto" "" \
        --cert "$WORK/robot.crt" --key "$WORK/robot.key"
    [[ $REQ_CODE == 200 ]] || fail "$proto with the client certificate: status $REQ_CODE ($(cat "$WORK/ok-$proto.err"))"
    assert_eq "${proto#http}" "$([[ $REQ_VER == 2 ]] && echo 2 || echo "1.1")" "$proto: protocol used"
    record_has_path "$VP/vasa-mtls-ok-$proto/TestFailoverReplicationGroupStop_Task" ||
        fail "$proto: the simulator did not receive the request"
done

check "a resumed session keeps the client certificate (TLS 1.2 and TLS 1.3)"
# stop_raw MOID: a stop-test request as raw HTTP/1.1 bytes (Connection: close)
stop_raw() {
    local body="{\"groupId\":[{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"dg-$1\"}}],\"force\":false}"
    printf 'POST %s/%s/TestFailoverReplicationGroupStop_Task HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "$VP" "$1" "$SG_TOKEN" "${#body}" "$body"
}
for v in 1.2 1.3; do
    for step in first resumed; do
        sess=(-sess_out "$WORK/sess-$v")
        [[ $step == resumed ]] && sess=(-sess_in "$WORK/sess-$v")
        # -ign_eof: read the answer (and TLS 1.3's tickets, sent after the handshake) to the end
        stop_raw "vasa-mtls-$step-tls$v" | timeout 15 openssl s_client -connect "127.0.0.1:$SG_PORT" \
            -servername localhost -CAfile "$CA_CRT" -cert "$WORK/robot.crt" -key "$WORK/robot.key" \
            "-tls1_${v#1.}" -alpn http/1.1 -ign_eof "${sess[@]}" >"$WORK/sc-$step-$v.out" 2>&1 || true
        grep -q 'HTTP/1.1 200 ' "$WORK/sc-$step-$v.out" ||
            { grep -E '^(New|Reused),|alert|error|^HTTP/' "$WORK/sc-$step-$v.out" | sed 's/^/   | /' >&2; fail "TLS $v $step: no 200 answer"; }
    done
    grep -q "^Reused, TLSv$v" "$WORK/sc-resumed-$v.out" ||
        fail "TLS $v: the second connection did not resume the session ($(grep -E '^(New|Reused),' "$WORK/sc-resumed-$v.out"))"
    echo "   TLS $v: $(grep -E '^(New|Reused),' "$WORK/sc-resumed-$v.out" | head -1)"
    record_has_path "$VP/vasa-mtls-resumed-tls$v/TestFailoverReplicationGroupStop_Task" ||
        fail "TLS $v: the simulator did not receive the request of the resumed session"
done

check "refused in the handshake: no certificate, another CA, expired"
before=$(record_count)
refused=(none intruder old)
for who in "${refused[@]}"; do
    for proto in http1.1 http2; do
        args=()
        [[ $who == none ]] || args=(--cert "$WORK/$who.crt" --key "$WORK/$who.key")
        stop_post "$proto" "vasa-mtls-$who-$proto" "$WORK/$who-$proto" "" "${args[@]+"${args[@]}"}"
        assert_eq 000 "$REQ_CODE" "$who over $proto: curl must get no HTTP answer"
        echo "   $who/$proto: $(head -c 160 "$WORK/$who-$proto.err")"
    done
done
# the server's refusal of a TLS 1.3 client certificate reaches curl after its Finished:
# let any request that slipped through reach the simulator before counting
sleep 0.3
assert_eq "$before" "$(record_count)" "requests recorded by the simulator after the refused clients"
record_none_of vasa-mtls-none vasa-mtls-intruder vasa-mtls-old
is_alive "$SG_PID" || fail "smsguard died"
stop_guard_term

check "audit (client_ca set): cert_subject of the allowed requests, no record for refused clients"
python3 - "$AUDIT" <<'PY' || fail "audit records (client_ca set)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
ok = True
# RFC 2253 form, most specific first (flt_audit.c audit_subject)
SUBJECTS = ("CN=dr-robot,O=Example",)
for moid in ("vasa-mtls-ok-http1.1", "vasa-mtls-ok-http2", "vasa-mtls-first-tls1.2",
             "vasa-mtls-resumed-tls1.2", "vasa-mtls-first-tls1.3", "vasa-mtls-resumed-tls1.3"):
    proto = moid[len("vasa-mtls-"):]
    dec = [r for r in recs if r.get("provider") == moid and r.get("stage") == "decision"]
    out = [r for r in recs if r.get("provider") == moid and r.get("stage") == "outcome"]
    if len(dec) != 1 or len(out) != 1:
        print("   %s: %d decision and %d outcome records, want 1 and 1" % (moid, len(dec), len(out)))
        ok = False
        continue
    subj = dec[0]["client"]["cert_subject"]
    print("   %s: decision %s, cert_subject %r, tls %s" % (proto, dec[0].get("decision"), subj,
                                                         dec[0]["client"]["tls"]))
    if subj not in SUBJECTS:
        print("   %s: cert_subject %r is not the client certificate's subject" % (proto, subj))
        ok = False
for r in recs:
    p = r.get("provider") or ""
    if p.startswith(("vasa-mtls-none", "vasa-mtls-intruder", "vasa-mtls-old")):
        print("   record for a refused client: %r" % r)
        ok = False
sys.exit(0 if ok else 1)
PY
audit_verify "$AUDIT"
assert_eq 0 "$AV_RC" "smsguard-audit verify (client_ca set): $AV_OUT"

check "client_ca empty (default): no certificate asked, cert_subject null"
AUDIT2=$WORK/audit-plain.log
guard_conf "$WORK/plain.conf" \
    "extra=audit = { file = \"$AUDIT2\"; sync = \"always\"; fail_closed = true; };"
grep -q client_ca "$WORK/plain.conf" && fail "the default configuration sets client_ca"
start_guard "$WORK/plain.conf"
stop_post http2 vasa-plain-h2 "$WORK/plain-h2"
assert_eq 200 "$REQ_CODE" "without client_ca, no certificate (h2)"
stop_post http1.1 vasa-plain-h1 "$WORK/plain-h1" "" --cert "$WORK/robot.crt" --key "$WORK/robot.key"
assert_eq 200 "$REQ_CODE" "without client_ca, a client holding a certificate (h1)"
stop_guard_term
python3 - "$AUDIT2" <<'PY' || fail "audit records (client_ca empty)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
dec = [r for r in recs if r.get("stage") == "decision"
       and r.get("provider") in ("vasa-plain-h2", "vasa-plain-h1")]
print("   %d decision records, cert_subject %s" % (len(dec), [r["client"]["cert_subject"] for r in dec]))
sys.exit(0 if len(dec) == 2 and all(r["client"]["cert_subject"] is None for r in dec) else 1)
PY
audit_verify "$AUDIT2"
assert_eq 0 "$AV_RC" "smsguard-audit verify (client_ca empty): $AV_OUT"

echo "PASS: $TEST_NAME"
