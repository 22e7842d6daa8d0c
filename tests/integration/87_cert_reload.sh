#!/usr/bin/env bash
# 87_cert_reload: the listener's certificate and key are reloaded on SIGHUP (issue 8;
# docs/design.md "Command line"). Start with certificate A; one HTTP/2 connection is opened and kept;
# the files are replaced by certificate B (another serial and CN) and SIGHUP is sent:
#   - new handshakes present B (openssl s_client: SHA-256 fingerprint and serial)
#   - the connection opened before still works for a new request (it keeps A's session)
#   - a SIGHUP with a key that does not match the certificate, then one with the key file
#     missing, then one with a certificate file that is not PEM, are each refused with
#     `file:line: reason` in the log, and new handshakes still present B
#   - putting B back and SIGHUP reloads again
#   - the simulator's record shows every request; smsguard exits 0 on SIGTERM.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_certs
gen_cert ca certa cert-a
gen_cert ca certb cert-b
LIVE_CRT=$WORK/live.crt
LIVE_KEY=$WORK/live.key
cp "$WORK/certa.crt" "$LIVE_CRT"
cp "$WORK/certa.key" "$LIVE_KEY"

fp_file() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
serial_file() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# served_cert OUT: the certificate a new handshake presents, in OUT (PEM)
served_cert() {
    timeout 10 openssl s_client -connect "127.0.0.1:$SG_PORT" -servername localhost \
        -showcerts </dev/null 2>/dev/null | openssl x509 -out "$1" 2>/dev/null ||
        fail "openssl s_client got no certificate from 127.0.0.1:$SG_PORT"
}
FP_A=$(fp_file "$WORK/certa.crt")
FP_B=$(fp_file "$WORK/certb.crt")
assert_ne "$FP_A" "$FP_B" "fingerprints of A and B"
assert_ne "$(serial_file "$WORK/certa.crt")" "$(serial_file "$WORK/certb.crt")" "serials of A and B"

GUARD_SETTINGS=("cert=$LIVE_CRT" "key=$LIVE_KEY")
start_all
CONF=$WORK/smsguard.conf

check "before SIGHUP, handshakes present A"
served_cert "$WORK/served0.pem"
assert_eq "$FP_A" "$(fp_file "$WORK/served0.pem")" "fingerprint served at start"

check "an HTTP/2 connection opened with A, kept open across the reload"
mkfifo "$WORK/go"
PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" "$WORK/go" \
    >"$WORK/old-conn.out" 2>"$WORK/old-conn.err" <<'PY' &
import hashlib, sys
from h2raw import Conn, get
port, ca, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Conn(port, ca)
fp = hashlib.sha256(c.sock.getpeercert(binary_form=True)).hexdigest().upper()
c.request(1, get("/sim/echo/reload-old-1"))
print("fp", ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)), flush=True)
print("req1", c.outcome(1, 10), flush=True)
open(go).read()          # the test writes a line once the reload is done
c.request(3, get("/sim/echo/reload-old-2"))
print("req2", c.outcome(3, 10), "closed" if c.closed else "open", flush=True)
c.close()
PY
HOLDER=$!
track_pid "$HOLDER" "h2 connection holder"
deadline=$((SECONDS + 10))
until grep -q '^req1 ' "$WORK/old-conn.out"; do
    is_alive "$HOLDER" || { cat "$WORK/old-conn.err" >&2; fail "the h2 connection holder died"; }
    ((SECONDS < deadline)) || fail "no answer on the held h2 connection"
    sleep 0.05
done
assert_eq "status 200" "$(sed -n 's/^req1 //p' "$WORK/old-conn.out")" "first request on the held connection"
assert_eq "$FP_A" "$(sed -n 's/^fp //p' "$WORK/old-conn.out")" "certificate of the held connection"

check "replace the files with B, SIGHUP: new handshakes present B"
cp "$WORK/certb.crt" "$LIVE_CRT"
cp "$WORK/certb.key" "$LIVE_KEY"
hup_and_wait "reloaded "
served_cert "$WORK/served1.pem"
assert_eq "$FP_B" "$(fp_file "$WORK/served1.pem")" "fingerprint served after the reload"
assert_eq "$(serial_file "$WORK/certb.crt")" "$(serial_file "$WORK/served1.pem")" "serial served after the reload"
code=$(sg_curl -o /dev/null -w '%{http_code}' --http2 "$SG_URL/sim/echo/reload-new-b")
assert_eq 200 "$code" "new request over a new connection (B)"

check "the connection opened with A still works for a new request"
echo go >"$WORK/go"
wait "$HOLDER" || { cat "$WORK/old-conn.err" >&2; fail "the h2 connection holder failed"; }
forget_pid "$HOLDER"
assert_eq "status 200 open" "$(sed -n 's/^req2 //p' "$WORK/old-conn.out")" "second request on the held connection"

check "SIGHUP with a key that does not match the certificate: refused, B stays"
cp "$WORK/certa.key" "$LIVE_KEY"
hup_and_wait "reload refused.*$CONF:[0-9]+: .*does not match the certificate"
served_cert "$WORK/served2.pem"
assert_eq "$FP_B" "$(fp_file "$WORK/served2.pem")" "fingerprint served after the refused reload (mismatch)"

check "SIGHUP with the key file missing: refused, B stays"
rm -f "$LIVE_KEY"
hup_and_wait "reload refused.*$CONF:[0-9]+: .*private_key"
served_cert "$WORK/served3.pem"
assert_eq "$FP_B" "$(fp_file "$WORK/served3.pem")" "fingerprint served after the refused reload (missing key)"

check "SIGHUP with a certificate file that is not PEM: refused, B stays"
cp "$WORK/certb.key" "$LIVE_KEY"
echo "not a certificate" >"$LIVE_CRT"
hup_and_wait "reload refused.*$CONF:[0-9]+: .*not a PEM certificate"
served_cert "$WORK/served4.pem"
assert_eq "$FP_B" "$(fp_file "$WORK/served4.pem")" "fingerprint served after the refused reload (bad PEM)"
code=$(sg_curl -o /dev/null -w '%{http_code}' --http1.1 "$SG_URL/sim/echo/reload-still-b")
assert_eq 200 "$code" "request after the refused reloads"

check "B put back, SIGHUP: reloaded"
cp "$WORK/certb.crt" "$LIVE_CRT"
hup_and_wait "reloaded "
served_cert "$WORK/served5.pem"
assert_eq "$FP_B" "$(fp_file "$WORK/served5.pem")" "fingerprint served after the last reload"

check "the simulator received every request"
for p in reload-old-1 reload-old-2 reload-new-b reload-still-b; do
    record_has_path "/sim/echo/$p" || fail "the simulator did not receive /sim/echo/$p"
done
echo "   $(record_count) requests recorded"
stop_guard_term

echo "PASS: $TEST_NAME"
