#!/usr/bin/env bash
# 81_h2_malformed: malformed HTTP/2 requests sent as raw frames (tests/integration/lib/
# h2raw.py: field values with CR/LF/NUL, uppercase or spaced names, connection-specific
# fields, te other than "trailers", pseudo-headers out of order, missing or duplicate
# pseudo-headers, :authority and Host disagreeing, DATA beyond or short of content-length;
# CONNECT with :authority and no :path then DATA, which once killed the process, and the
# shapes around it: CONNECT with :path, extended CONNECT, TRACE, OPTIONS *, no :scheme or
# :authority) are refused per stream (RST_STREAM PROTOCOL_ERROR from nghttp2, or a 400/405
# InvalidRequest from smsguard), nothing of them reaches the simulator, and the same
# connection (or a new one after a connection error) still serves a valid request; after
# each of the CONNECT-class cases, and at the end, the same process serves a new connection.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

check "each malformed request is refused on its stream, and the connection serves the next"
PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" "$SIM_RECORD" <<'PY'
import sys, time
from h2raw import Conn, get, record_paths, DATA, HEADERS, frame, END_STREAM, END_HEADERS

port, ca, record = int(sys.argv[1]), sys.argv[2], sys.argv[3]
failed = []

def post(path, extra=()):
    return [(":method", "POST"), (":scheme", "https"), (":authority", "127.0.0.1"),
            (":path", path)] + list(extra)

def P(name):
    return "/sim/echo/h2bad-" + name

# name -> (headers, end_stream, data frames [(bytes, end_stream)], accepted outcomes)
REFUSED = ("rst PROTOCOL_ERROR", "status 400")
cases = [
    ("value-cr", get(P("value-cr")) + [("x-a", "a\rb")], True, [], REFUSED),
    ("value-lf", get(P("value-lf")) + [("x-a", "a\nb")], True, [], REFUSED),
    ("value-nul", get(P("value-nul")) + [("x-a", "a\0b")], True, [], REFUSED),
    ("value-crlf-inject", get(P("value-crlf-inject")) + [("x-a", "a\r\nx-injected: 1")], True, [], REFUSED),
    ("path-crlf", get(P("path-crlf") + "\r\nx: y"), True, [], REFUSED),
    ("name-uppercase", get(P("name-uppercase")) + [("X-Upper", "1")], True, [], REFUSED),
    ("name-space", get(P("name-space")) + [("x a", "1")], True, [], REFUSED),
    ("name-colon", get(P("name-colon")) + [("x:a", "1")], True, [], REFUSED),
    ("name-empty", get(P("name-empty")) + [("", "1")], True, [], REFUSED),
    ("connection", get(P("connection")) + [("connection", "close")], True, [], REFUSED),
    ("keep-alive", get(P("keep-alive")) + [("keep-alive", "timeout=5")], True, [], REFUSED),
    ("proxy-connection", get(P("proxy-connection")) + [("proxy-connection", "keep-alive")], True, [], REFUSED),
    ("transfer-encoding", post(P("transfer-encoding"), [("transfer-encoding", "chunked")]), False,
     [(b"5\r\nhello\r\n0\r\n\r\n", True)], REFUSED),
    ("upgrade", get(P("upgrade")) + [("upgrade", "websocket")], True, [], REFUSED),
    ("te-gzip", get(P("te-gzip")) + [("te", "gzip")], True, [], REFUSED),
    ("te-trailers-gzip", get(P("te-trailers-gzip")) + [("te", "trailers, gzip")], True, [], REFUSED),
    ("pseudo-after-regular", [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"),
                              ("x-a", "1"), (":path", P("pseudo-after-regular"))], True, [], REFUSED),
    ("missing-path", [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"),
                      ("x-case", "h2bad-missing-path")], True, [], REFUSED),
    ("missing-method", [(":scheme", "https"), (":authority", "127.0.0.1"),
                        (":path", P("missing-method"))], True, [], REFUSED),
    ("missing-scheme", [(":method", "GET"), (":authority", "127.0.0.1"),
                        (":path", P("missing-scheme"))], True, [], REFUSED),
    ("empty-path", [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"),
                    (":path", ""), ("x-case", "h2bad-empty-path")], True, [], REFUSED),
    ("duplicate-path", get(P("duplicate-path")) + [(":path", "/sim/echo/h2bad-duplicate-path-2")], True, [], REFUSED),
    ("unknown-pseudo", get(P("unknown-pseudo")) + [(":foo", "bar")], True, [], REFUSED),
    ("response-pseudo", get(P("response-pseudo")) + [(":status", "200")], True, [], REFUSED),
    ("authority-host-disagree", get(P("authority-host-disagree")) + [("host", "evil.example")], True, [],
     ("status 400",)),
    ("data-beyond-cl", post(P("data-beyond-cl"), [("content-length", "5")]), False,
     [(b"hello!", True)], REFUSED),
    ("data-split-beyond-cl", post(P("data-split-beyond-cl"), [("content-length", "5")]), False,
     [(b"hel", False), (b"lo!", True)], REFUSED),
    ("data-short-of-cl", post(P("data-short-of-cl"), [("content-length", "10")]), False,
     [(b"hello", True)], REFUSED),
    ("cl-not-number", post(P("cl-not-number"), [("content-length", "5a")]), False,
     [(b"hello", True)], REFUSED),
    ("two-content-lengths", post(P("two-content-lengths"), [("content-length", "5"), ("content-length", "6")]),
     False, [(b"hello", True)], REFUSED),
]

for name, hdrs, end_stream, datas, want in cases:
    c = Conn(port, ca)
    c.request(1, hdrs, end_stream)
    for payload, es in datas:
        c.data(1, payload, es)
    got = c.outcome(1)
    body1 = c.bodies.get(1, b"")
    ok = got in want
    # the connection goes on: a valid request on stream 3 is answered 200
    if c.goaway is None and not c.closed:
        c.request(3, get("/sim/echo/h2ok-after-" + name))
        after = c.outcome(3)
        where = "same connection"
    else:
        c.close()
        c = Conn(port, ca)
        c.request(1, get("/sim/echo/h2ok-after-" + name))
        after = c.outcome(1)
        where = "new connection after GOAWAY"
    c.close()
    print("   %-28s -> %-20s then %s on the %s" % (name, got, after, where))
    if not ok:
        failed.append("%s: expected one of %s, got %s" % (name, want, got))
    if got == "status 400" and b'"_typeName":"InvalidRequest"' not in body1.replace(b" ", b""):
        failed.append("%s: the 400 has no InvalidRequest fault body: %r" % (name, body1))
    if after != "status 200":
        failed.append("%s: the valid request after it got %s" % (name, after))

# positive controls: what must still pass
for name, hdrs in [("te-trailers", get("/sim/echo/h2ok-te-trailers") + [("te", "trailers")]),
                   ("host-agrees", get("/sim/echo/h2ok-host-agrees") + [("host", "127.0.0.1")])]:
    c = Conn(port, ca)
    c.request(1, hdrs)
    got = c.outcome(1)
    c.close()
    print("   %-28s -> %s (control)" % (name, got))
    if got != "status 200":
        failed.append("control %s: expected status 200, got %s" % (name, got))

time.sleep(0.2)
bad = [p for p in record_paths(record) if "h2bad-" in p]
if bad:
    failed.append("malformed requests reached the simulator: %s" % bad)
for msg in failed:
    print("FAIL: " + msg)
sys.exit(1 if failed else 0)
PY

# The request that once killed the process (issue 14: CONNECT with :authority and no :path,
# then DATA; RFC 9113 8.5 allows that shape) and the shapes around it, outside the request
# model (proxy/reqcheck.c): each must be refused on its stream (RST_STREAM from nghttp2, or
# 405/400 from smsguard), reach nothing upstream, and leave the same process serving.
check "CONNECT (with DATA, with :path, extended), TRACE, OPTIONS *, no :scheme or :authority: refused on the stream, nothing forwarded, the same process serves after each"
for case in connect-then-data connect-then-open-data connect-with-path extended-connect \
    extended-connect-get trace options-star missing-scheme missing-authority; do
    got=$(pyrun "$SG_SOURCE_DIR/tests/integration/lib" "$SG_PORT" "$CA_CRT" "$case" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from h2raw import Conn

port, ca, case = int(sys.argv[2]), sys.argv[3], sys.argv[4]
mark = ("x-case", "h2bad-" + case)  # found by record_none_of wherever it would land
A, S = (":authority", "127.0.0.1"), (":scheme", "https")
P = (":path", "/sim/echo/h2bad-" + case)
REFUSED = ("rst PROTOCOL_ERROR", "status 405", "status 400")
# name: (header list, DATA payload or None, END_STREAM on that DATA)
cases = {
    "connect-then-data": ([(":method", "CONNECT"), A, mark], b"h2bad-body", True),
    "connect-then-open-data": ([(":method", "CONNECT"), A, mark], b"h2bad-body", False),
    "connect-with-path": ([(":method", "CONNECT"), S, A, P, mark], b"h2bad-body", True),
    "extended-connect": ([(":method", "CONNECT"), (":protocol", "websocket"), S, A, P, mark],
                         b"h2bad-body", True),
    "extended-connect-get": ([(":method", "GET"), (":protocol", "websocket"), S, A, P, mark],
                             None, True),
    "trace": ([(":method", "TRACE"), S, A, P, mark], None, True),
    "options-star": ([(":method", "OPTIONS"), S, A, (":path", "*"), mark], None, True),
    "missing-scheme": ([(":method", "POST"), A, P, mark], b"h2bad-body", True),
    "missing-authority": ([(":method", "POST"), S, P, mark], b"h2bad-body", True),
}
hdrs, data, es = cases[case]
c = Conn(port, ca)
c.request(1, hdrs, end_stream=data is None)
if data is not None:
    c.data(1, data, es)
got = c.outcome(1)
c.close()
print(got)
sys.exit(0 if got in REFUSED else 1)
PY
    ) || fail "$case: expected RST_STREAM PROTOCOL_ERROR or a 405/400 answer, got '$got'"
    echo "   $case -> $got"
    record_none_of "h2bad-$case"
    assert_serving "after $case"
done

check "nothing of them was forwarded (no marker anywhere in the simulator's record)"
record_none_of h2bad- x-injected evil.example
record_has_path /sim/echo/h2ok-te-trailers || fail "the te: trailers control was not forwarded"
record_get_to /sim/echo/h2ok-te-trailers "$WORK/te.json"
assert_eq 0 "$(echo_header_count "$WORK/te.json" te)" "te headers forwarded"

check "smsguard still serves curl over h2 and h1"
assert_serving "after the malformed requests"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
