#!/usr/bin/env bash
# 36_request_model: the request model of proxy/reqcheck.c, from both front ends.
# - HTTP/2: CONNECT with :authority and no :path followed by DATA (the request that once
#   killed the process), extended CONNECT (:protocol), TRACE, OPTIONS *, no authority at
#   all, an authority with userinfo, a host that is not one of listen.server_names, and
#   one that differs from the connection's SNI (coalescing): each refused on its stream
#   (405, 400, 421 or RST_STREAM), nothing forwarded, the same connection serves on.
# - HTTP/1.1: CONNECT, TRACE, OPTIONS *, a foreign Host, an absolute-form target whose
#   host differs from Host, HTTP/1.0 without Host: refused with 405/400/421.
# - Refusals are counted (smsguard_requests_refused_total{reason}) and, on the stop-test
#   route, audited.
# - Python's http.client reuses one connection across a refusal given before the body
#   was read (the answer says "Connection: close") and across one given after it (the
#   connection stays open).
# Every case ends with the same process (PID) serving a new connection.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AUDIT=$WORK/audit.jsonl
GUARD_SETTINGS=("extra=audit = { file = \"$AUDIT\"; sync = \"always\"; };")
start_all
PID0=$SG_PID
STOP=/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/TestFailoverReplicationGroupStop_Task

check "HTTP/2: every request shape outside the model is refused on its stream"
PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" "$SIM_RECORD" \
    "$SG_ADMIN_URL" "$STOP" <<'PY'
import sys
from h2raw import Conn, get, record_paths, metric, check, expect, failed, another_served

port, ca, record, admin, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

def refused(reason):
    return metric(admin, "smsguard_requests_refused_total", {"reason": reason})

before = {k: refused(k) for k in ("method", "target", "authority", "misdirected")}
A = (":authority", "127.0.0.1")
cases = [
    # name, headers, DATA after HEADERS, accepted outcomes, reason counted (None: nghttp2's)
    ("connect-then-data", [(":method", "CONNECT"), A], b"x" * 10,
     ("status 405", "rst PROTOCOL_ERROR"), "method"),
    ("connect-with-path", [(":method", "CONNECT"), (":scheme", "https"), A,
                           (":path", "/sim/echo/m-connect-path")], None,
     ("status 405", "rst PROTOCOL_ERROR"), None),
    ("extended-connect", [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                          A, (":path", "/sim/echo/m-ext-connect")], None,
     ("status 405", "rst PROTOCOL_ERROR"), None),
    ("trace", [(":method", "TRACE"), (":scheme", "https"), A, (":path", "/sim/echo/m-trace")],
     None, ("status 405",), "method"),
    ("options-asterisk", [(":method", "OPTIONS"), (":scheme", "https"), A, (":path", "*")], None,
     ("status 400", "rst PROTOCOL_ERROR"), None),
    ("no-authority", [(":method", "GET"), (":scheme", "https"), (":path", "/sim/echo/m-noauth")],
     None, ("status 400", "rst PROTOCOL_ERROR"), None),
    ("userinfo", [(":method", "GET"), (":scheme", "https"), (":authority", "u:p@127.0.0.1"),
                  (":path", "/sim/echo/m-userinfo")], None, ("status 400", "rst PROTOCOL_ERROR"),
     None),
    ("scheme-ftp", [(":method", "GET"), (":scheme", "ftp"), A, (":path", "/sim/echo/m-ftp")], None,
     ("status 400",), "target"),
    ("foreign-host", [(":method", "GET"), (":scheme", "https"), (":authority", "evil.example"),
                      (":path", "/sim/echo/m-foreign")], None, ("status 421",), "misdirected"),
    ("foreign-host-stop", [(":method", "POST"), (":scheme", "https"),
                           (":authority", "evil.example:443"), (":path", stop),
                           ("content-type", "application/json")],
     b'{"groupId":[],"force":false}', ("status 421",), "misdirected"),
    ("host-disagrees", get("/sim/echo/m-hostdiff") + [("host", "localhost")], None,
     ("status 400", "rst PROTOCOL_ERROR"), None),
]
c = Conn(port, ca)
sid = 1
for name, headers, data, ok, reason in cases:
    check("h2 " + name)
    c.request(sid, headers, end_stream=data is None)
    if data is not None:
        c.data(sid, data, end_stream=True)
    got = c.outcome(sid, 5)
    expect(got in ok, "%s: got %s, expected one of %s" % (name, got, ok))
    if c.goaway is not None or c.closed:
        c = Conn(port, ca)  # a connection error is allowed; a crash is not (below)
        sid = 1
    else:
        sid += 2
    another_served(port, ca, "/sim/echo/after-" + name)
after = {k: refused(k) for k in before}
for name, headers, data, ok, reason in cases:
    if reason is not None:
        expect(after[reason] > before[reason], "%s: not counted as %s" % (name, reason))

check("h2: a request for the SNI's host is served; another of the server names is misdirected")
c = Conn(port, ca, sni="localhost")
c.request(1, [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
              (":path", "/sim/echo/m-sni-ok")])
got = c.outcome(1)
expect(got == "status 200", "SNI localhost, :authority localhost: %s" % got)
c.request(3, get("/sim/echo/m-sni-coalesced"))  # :authority 127.0.0.1 on localhost's connection
got = c.outcome(3)
expect(got == "status 421", "SNI localhost, :authority 127.0.0.1: %s" % got)
c.close()

paths = record_paths(record)
leaked = [p for p in paths if p.startswith("/sim/echo/m-") and p != "/sim/echo/m-sni-ok"
          or "TestFailover" in p]
expect(not leaked, "forwarded although refused: %s" % leaked)
sys.exit(1 if failed else 0)
PY
[[ $? -eq 0 ]] || fail "HTTP/2 request model (see above)"
assert_eq "$PID0" "$SG_PID" "smsguard PID"
assert_serving "after the HTTP/2 cases"

check "HTTP/1.1: CONNECT, TRACE, OPTIONS *, foreign hosts, absolute-form against Host"
h1case() { # NAME STATUS REQUEST
    printf '%s' "$3" >"$WORK/h1-$1.in"
    tls_raw "$SG_PORT" "$WORK/h1-$1.in" "$WORK/h1-$1.out" 3 >/dev/null
    local st
    st=$(head -c 12 "$WORK/h1-$1.out" | cut -d' ' -f2)
    assert_eq "$2" "$st" "HTTP/1.1 $1"
    assert_serving "after HTTP/1.1 $1"
}
h1case connect 400 $'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n'
h1case trace 405 $'TRACE /sim/echo/m1-trace HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
h1case options-asterisk 400 $'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
h1case foreign-host 421 $'GET /sim/echo/m1-foreign HTTP/1.1\r\nHost: evil.example\r\n\r\n'
h1case absolute-vs-host 421 \
    "GET https://localhost:$SG_PORT/sim/echo/m1-abs HTTP/1.1"$'\r\n'"Host: 127.0.0.1:$SG_PORT"$'\r\n\r\n'
h1case absolute-foreign 421 \
    $'GET https://evil.example/sim/echo/m1-abs2 HTTP/1.1\r\nHost: evil.example\r\n\r\n'
h1case http10-no-host 400 $'GET /sim/echo/m1-nohost HTTP/1.0\r\n\r\n'
h1case userinfo 400 $'GET https://u@127.0.0.1/sim/echo/m1-ui HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
h1case stop-foreign 421 "POST $STOP HTTP/1.1"$'\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
h1case absolute-ok 200 \
    "GET https://127.0.0.1:$SG_PORT/sim/echo/m1-okabs HTTP/1.1"$'\r\n'"Host: 127.0.0.1:$SG_PORT"$'\r\n\r\n'
assert_contains "$(cat "$WORK/h1-trace.out")" "llow: " "405 names what is allowed"
record_none_of "/sim/echo/m1-trace" "/sim/echo/m1-foreign" "/sim/echo/m1-abs" "/sim/echo/m1-abs2" \
    "/sim/echo/m1-nohost" "/sim/echo/m1-ui" "$STOP"
record_has_path /sim/echo/m1-okabs || fail "the absolute-form request for 127.0.0.1 was not forwarded"

check "a misdirected stop-test request leaves its audit record, however the method is spelled"
h1case stop-foreign-encoded 421 "POST ${STOP/TestFailover/%54estFailover} HTTP/1.1"$'\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
wait_file "$AUDIT" "audit file"
n=$(grep -c '"reason":"This host is not served on this connection."' "$AUDIT" || true)
assert_le 3 "$n" "audited 421 stop-test requests (h1, h2, h1 with %54)"

check "a forwarded request that only mentions the method (query, another folder) gets no audit record"
n0=$(grep -c . "$AUDIT")
for p in "/sim/echo/mention?op=TestFailoverReplicationGroupStop_Task" \
    "/sim/echo/docs/TestFailoverReplicationGroupStop_Task/readme"; do
    code=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' "$SG_URL$p")
    assert_eq 200 "$code" "forwarded $p"
done
assert_eq "$n0" "$(grep -c . "$AUDIT")" "audit lines after two forwarded requests"

check "http.client reuses its connection across refusals, as a stock client does"
pyrun "$SG_PORT" "$CA_CRT" "$STOP" <<'PY' || fail "http.client across refusals (see above)"
import http.client, json, ssl, sys
port, ca, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
body = json.dumps({"groupId": [{"faultDomainId": {"id": "fd-1"},
                                "deviceGroupId": {"id": "dg-1"}}], "force": False})
bad = []
# 1. no token: refused from the headers, before the body was read -> Connection: close
conn.request("POST", stop, body=body, headers={"Content-Type": "application/json"})
r = conn.getresponse(); r.read()
if r.status != 500 or (r.getheader("connection") or "").lower() != "close":
    bad.append("refusal before the body: %d connection=%r" % (r.status, r.getheader("connection")))
# 2. the same HTTPSConnection object: http.client opens a new socket because it was told
conn.request("GET", "/sim/echo/reuse-1")
r = conn.getresponse(); r.read()
if r.status != 200:
    bad.append("request after the refusal: %d" % r.status)
sock = conn.sock
# 3. a refusal of a request without a body (405 on the stop route): nothing is unread,
#    the connection stays open and serves the next request on the same socket
conn.request("GET", stop, headers={"Authorization": "Bearer x"})
r = conn.getresponse(); r.read()
if r.status != 405 or (r.getheader("connection") or "").lower() == "close":
    bad.append("bodyless refusal: %d connection=%r" % (r.status, r.getheader("connection")))
conn.request("GET", "/sim/echo/reuse-2")
r = conn.getresponse(); r.read()
if r.status != 200 or conn.sock is not sock:
    bad.append("after a bodyless refusal: %d, same socket %s" % (r.status, conn.sock is sock))
for b in bad:
    print("   FAILED: " + b)
sys.exit(1 if bad else 0)
PY

check "the same process serves after everything"
assert_eq "$PID0" "$SG_PID" "smsguard PID"
assert_serving "at the end"
echo "PASS"
