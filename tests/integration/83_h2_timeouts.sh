#!/usr/bin/env bash
# 83_h2_timeouts: HTTP/2 per-stream timeouts (docs/design.md: totals, not idle timers).
# limits.body_timeout_ms runs from a stream's complete header block to its END_STREAM: a
# stream that never sends its body, and one that trickles it a byte at a time, each get
# the vSphere-shaped 408 when the total runs out, then RST_STREAM NO_ERROR, and the same
# connection serves another stream. limits.header_timeout_ms runs from the HEADERS frame
# to END_HEADERS, and for a connection's first stream from accept: a header block left
# open, or trickled over CONTINUATION frames, blocks the whole connection (RFC 9113 6.10),
# so it ends with GOAWAY ENHANCE_YOUR_CALM. Every cut is counted in
# smsguard_http2_abuse_total{kind="stream_timeout"}, nothing of it reaches the simulator,
# and another connection is served. Also limits.max_requests_per_connection (5 here):
# HTTP/2 sends GOAWAY NO_ERROR naming the 5th stream, answers the five and closes;
# HTTP/1.1 answers the 5th with Connection: close.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GUARD_SETTINGS=("limits=header_timeout_ms = 2000; body_timeout_ms = 1500; max_body_bytes = 65536;
    max_requests_per_connection = 5;"
    log_level=debug)
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" "$SG_ADMIN_URL" <<'PY'
import json, socket, ssl, sys, time
from h2raw import check, expect, failed, Conn, get, frame, abuse, HEADERS, CONTINUATION, END_HEADERS

port, ca, admin = int(sys.argv[1]), sys.argv[2], sys.argv[3]
HEADER_S, BODY_S = 2.0, 1.5

def post(path, cl):
    return [(":method", "POST"), (":scheme", "https"), (":authority", "127.0.0.1"),
            (":path", path), ("content-length", str(cl)), ("content-type", "application/json")]

def wait_408(c, sid, t0, what):
    """Stream SID is answered 408 with an InvalidRequest fault about BODY_S after t0."""
    got = c.outcome(sid, BODY_S + 8)
    took = time.monotonic() - t0
    body = c.bodies.get(sid, b"")
    print("   %s: %s after %.2f s; body %s" % (what, got, took, body[:120]), flush=True)
    expect(got == "status 408", "%s: got %s, expected status 408" % (what, got))
    try:
        fault = json.loads(body)
    except ValueError:
        fault = {}
    expect(fault.get("_typeName") == "InvalidRequest" and "faultstring" in fault,
           "%s: the 408 is not an InvalidRequest fault: %r" % (what, body[:200]))
    # a total, not an idle timer: never before BODY_S, and not much later (loaded machine)
    expect(BODY_S - 0.1 <= took <= BODY_S + 3, "%s: cut after %.2f s, body_timeout is %.1f s"
           % (what, took, BODY_S))
    # RFC 9113 8.1: the request half is reset (NO_ERROR) once the answer is complete
    c.read_frames(lambda c: sid in c.resets or c.goaway is not None, 2)
    expect(c.resets.get(sid) == "NO_ERROR", "%s: expected RST_STREAM NO_ERROR after the 408, got %s"
           % (what, c.resets.get(sid)))

def serves(c, sid, tag):
    c.request(sid, get("/sim/echo/h2ok-" + tag))
    got = c.outcome(sid, 10)
    expect(got == "status 200", "%s: the connection did not serve another stream: %s" % (tag, got))
    return got

# ---------------------------------------------------------------------------------------
check("a stream that never sends its announced body: 408 after body_timeout_ms")
before = abuse(admin, "stream_timeout")
c = Conn(port, ca)
c.request(1, post("/sim/echo/to-nobody", 10), end_stream=False)
t0 = time.monotonic()
wait_408(c, 1, t0, "no body")
print("   then on the same connection: %s" % serves(c, 3, "after-nobody"))
c.close()
after = abuse(admin, "stream_timeout")
expect(after >= before + 1, "no body: stream_timeout not counted (%d -> %d)" % (before, after))

# ---------------------------------------------------------------------------------------
check("a body trickled one byte every 200 ms (the idle gap is small, the total is not): 408")
before = abuse(admin, "stream_timeout")
c = Conn(port, ca)
c.request(1, post("/sim/echo/to-trickle", 40), end_stream=False)
t0 = time.monotonic()
sent = 0
while sent < 40 and 1 not in c.ended and 1 not in c.resets and time.monotonic() - t0 < BODY_S + 5:
    try:
        c.data(1, b"x")
    except OSError:
        break
    sent += 1
    c.read_frames(lambda c: 1 in c.ended or 1 in c.resets, 0.2)
print("   %d bytes of 40 sent" % sent)
expect(sent < 40, "trickle: the whole body went in before the cut")
wait_408(c, 1, t0, "trickled body")
print("   then on the same connection: %s" % serves(c, 3, "after-trickle"))
c.close()
after = abuse(admin, "stream_timeout")
expect(after >= before + 1, "trickle: stream_timeout not counted (%d -> %d)" % (before, after))

# ---------------------------------------------------------------------------------------
check("the first stream's header clock starts at accept: HEADERS without END_HEADERS sent "
      "1.5 s after connecting is cut at header_timeout_ms from accept")
before = abuse(admin, "stream_timeout")
t_conn = time.monotonic()
c = Conn(port, ca)
# SETTINGS exchanged first: a SETTINGS ACK inside the open header block would be a
# protocol error of the client's own
c.read_frames(lambda c: any(f[0] == 4 for f in c.frames_seen), 5)
time.sleep(max(0, 1.5 - (time.monotonic() - t_conn)))
blk = c.block(get("/sim/echo/to-open-block") + [("x-pad", "p" * 50)])
c.send(frame(HEADERS, 0, 1, blk[:10]))      # END_STREAM and END_HEADERS both clear
c.read_frames(lambda c: c.goaway is not None and c.closed, HEADER_S + 8)
took = time.monotonic() - t_conn
print("   GOAWAY %s, closed %s, %.2f s after connecting" % (c.goaway, c.closed, took), flush=True)
expect(c.goaway is not None and c.goaway[1] == "ENHANCE_YOUR_CALM",
       "open header block: expected GOAWAY ENHANCE_YOUR_CALM, got %s" % (c.goaway,))
expect(c.closed, "open header block: the connection was not closed")
# from accept: about HEADER_S; a clock started by the HEADERS frame would say 1.5 + HEADER_S
expect(HEADER_S - 0.1 <= took < 1.5 + HEADER_S - 0.3,
       "open header block: cut %.2f s after connecting, header_timeout is %.1f s from accept"
       % (took, HEADER_S))
c.close()
after = abuse(admin, "stream_timeout")
expect(after >= before + 1, "open header block: stream_timeout not counted (%d -> %d)" % (before, after))

# ---------------------------------------------------------------------------------------
check("a later stream: its header block trickled over CONTINUATION frames every 300 ms is "
      "cut header_timeout_ms after its HEADERS frame")
c = Conn(port, ca)
print("   a first stream: %s" % serves(c, 1, "before-continuation-trickle"))
blk = c.block(get("/sim/echo/to-cont-trickle") + [("x-pad", "q" * 200)])
t0 = time.monotonic()
c.send(frame(HEADERS, 0, 3, blk[:3]))
i = 3
while i < len(blk) and not c.closed and c.goaway is None and time.monotonic() - t0 < HEADER_S + 5:
    try:
        c.send(frame(CONTINUATION, 0, 3, blk[i:i + 1]))   # never END_HEADERS in time
    except OSError:
        break
    i += 1
    # slow enough to stay under nghttp2's 8 CONTINUATION frames in HEADER_S
    c.read_frames(lambda c: c.goaway is not None, 0.3)
c.read_frames(lambda c: c.goaway is not None and c.closed, 5)
took = time.monotonic() - t0
print("   GOAWAY %s, closed %s, %.2f s after HEADERS, %d CONTINUATION frames sent"
      % (c.goaway, c.closed, took, i - 3), flush=True)
expect(c.goaway is not None and c.goaway[1] == "ENHANCE_YOUR_CALM",
       "CONTINUATION trickle: expected GOAWAY ENHANCE_YOUR_CALM, got %s" % (c.goaway,))
expect(c.closed, "CONTINUATION trickle: the connection was not closed")
expect(HEADER_S - 0.1 <= took <= HEADER_S + 3,
       "CONTINUATION trickle: cut after %.2f s, header_timeout is %.1f s" % (took, HEADER_S))
c.close()

# ---------------------------------------------------------------------------------------
check("another connection is served, and a body sent in time is not cut")
c = Conn(port, ca)
serves(c, 1, "after-timeouts")
c.request(3, post("/sim/echo/h2ok-slow-but-in-time", 4), end_stream=False)
for b in (b"{", b'"', b'"', b"}"):
    time.sleep(0.2)
    c.data(3, b)
c.data(3, b"", end_stream=True)
got = c.outcome(3, 10)
print("   body in 0.8 s (body_timeout 1.5 s): %s" % got)
expect(got == "status 200", "a body sent in time: got %s" % got)
c.close()

# ---------------------------------------------------------------------------------------
check("HTTP/2 request budget (5): 7 streams at once -> GOAWAY NO_ERROR naming stream 9, "
      "five answers, connection closed")
c = Conn(port, ca)
c.read_frames(lambda c: any(f[0] == 4 for f in c.frames_seen), 5)
c.send(b"".join(c.headers_frame(2 * i + 1, get("/sim/echo/%s-%d" % (
    "h2ok-budget" if i < 5 else "budget-over", i))) for i in range(7)))
c.read_frames(lambda c: c.closed, 10)
answered = sorted(sid for sid in c.status if sid in c.ended)
print("   answered %s; GOAWAY %s; closed %s" % (answered, c.goaway, c.closed))
expect(answered == [1, 3, 5, 7, 9] and all(c.status[s] == 200 for s in answered),
       "h2 budget: answered %s" % answered)
expect(c.goaway == (9, "NO_ERROR"), "h2 budget: GOAWAY %s, expected (9, NO_ERROR)" % (c.goaway,))
expect(c.closed, "h2 budget: the connection was not closed")
c.close()

check("HTTP/1.1 request budget (5): the 5th answer says Connection: close, then EOF")
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 10), server_hostname="127.0.0.1")
buf, seen = b"", []
for i in range(5):
    s.sendall(b"GET /sim/echo/h1ok-budget-%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % i)
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    hdrs = dict(l.split(": ", 1) for l in lines[1:])
    hdrs = {k.lower(): v for k, v in hdrs.items()}
    n = int(hdrs.get("content-length", "0"))
    while len(buf) < n:
        buf += s.recv(65536)
    buf = buf[n:]
    seen.append((lines[0], hdrs.get("connection")))
s.settimeout(5)
try:
    eof = s.recv(100) == b""
except (OSError, ssl.SSLError):
    eof = True
print("   %s; then EOF: %s" % (seen, eof))
expect(all(l.startswith("HTTP/1.1 200") for l, _ in seen), "h1 budget: not all 200: %s" % seen)
expect([cn for _, cn in seen] == [None, None, None, None, "close"],
       "h1 budget: Connection headers %s" % [cn for _, cn in seen])
expect(eof, "h1 budget: the connection was not closed after the 5th answer")
s.close()

for msg in failed:
    print("FAIL: " + msg)
sys.exit(1 if failed else 0)
PY

check "nothing that timed out reached the simulator; the ones in time did"
record_none_of to- budget-over
record_has_path /sim/echo/h2ok-slow-but-in-time || fail "the in-time request was not forwarded"

check "the same smsguard process still serves new connections"
assert_serving "after the stalled and slow clients"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
